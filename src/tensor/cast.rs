//! Element conversion between every pair of dtypes, as TensorFlow's CPU Cast kernel performs it
//! (C++ `static_cast` as compiled for x86-64):
//!
//! - integer → integer wraps (keeps the low bits); integer → float rounds to nearest;
//! - float → int32/int64 truncates toward zero; NaN and out-of-range values give the most
//!   negative integer (what `cvttss2si` returns); float → uint8 goes through int32 and keeps
//!   the low 8 bits (300.0 → 44, -1.0 → 255);
//! - float64 → float32 rounds to nearest, or toward zero when the `Truncate` attr is true;
//! - number → bool is `x != 0` (NaN is true); bool → number is 0 or 1.

use super::{DType, Element, Tensor};
use crate::{with_dtype, Result};

/// Conversion of one element to `D`, as TensorFlow's Cast does it.
pub(crate) trait CastTo<D>: Copy {
    fn cast_to(self) -> D;
}

/// Plain `as` conversions: every int/float pair where C++ and Rust agree.
macro_rules! cast_as {
    ($($s:ty => $($d:ty),*;)*) => {$($(
        impl CastTo<$d> for $s {
            #[inline(always)]
            fn cast_to(self) -> $d {
                self as $d
            }
        }
    )*)*};
}
cast_as! {
    f32 => f32, f64;
    f64 => f32, f64;
    i32 => f32, f64, i32, i64, u8;
    i64 => f32, f64, i32, i64, u8;
    u8 => f32, f64, i32, i64, u8;
}

/// float → integer with x86-64 `static_cast` results for NaN and out-of-range values.
macro_rules! cast_float_to_int {
    ($($s:ty),*) => {$(
        impl CastTo<i32> for $s {
            #[inline(always)]
            fn cast_to(self) -> i32 {
                // Inside (-2^31 - 1, 2^31) truncation fits; NaN fails both comparisons.
                if self > -2147483649.0 && self < 2147483648.0 {
                    self as i32
                } else {
                    i32::MIN
                }
            }
        }
        impl CastTo<i64> for $s {
            #[inline(always)]
            fn cast_to(self) -> i64 {
                if (-9223372036854775808.0..9223372036854775808.0).contains(&self) {
                    self as i64
                } else {
                    i64::MIN
                }
            }
        }
        impl CastTo<u8> for $s {
            #[inline(always)]
            fn cast_to(self) -> u8 {
                CastTo::<i32>::cast_to(self) as u8
            }
        }
    )*};
}
cast_float_to_int!(f32, f64);

macro_rules! cast_bool {
    ($($t:ty),*) => {$(
        impl CastTo<bool> for $t {
            #[inline(always)]
            fn cast_to(self) -> bool {
                self != (0 as $t)
            }
        }
        impl CastTo<$t> for bool {
            #[inline(always)]
            fn cast_to(self) -> $t {
                u8::from(self) as $t
            }
        }
    )*};
}
cast_bool!(f32, f64);
cast_bool!(i32, i64, u8);

impl CastTo<bool> for bool {
    #[inline(always)]
    fn cast_to(self) -> bool {
        self
    }
}

/// float64 → float32 rounding toward zero (`Truncate = true`): clearing the 29 mantissa
/// bits float32 drops makes the nearest-rounding conversion exact, as TF's LSBZeroSetter.
pub(crate) fn truncate_f64(x: f64) -> f32 {
    const DROPPED: u64 = (1 << 29) - 1;
    if x.is_nan() {
        x as f32
    } else {
        f64::from_bits(x.to_bits() & !DROPPED) as f32
    }
}

/// Converts every element of `x` to `D`.
fn convert<S: Element + CastTo<D>, D: Element>(x: &Tensor) -> Result<Tensor> {
    let out: Vec<D> = x.as_slice::<S>()?.iter().map(|&v| v.cast_to()).collect();
    Ok(Tensor::from_parts(x.shape().to_vec(), out))
}

impl Tensor {
    /// Converts every element to another dtype with TensorFlow's `Cast` semantics (see the
    /// module documentation); the same dtype returns a shared copy.
    pub fn cast(&self, dtype: DType) -> Result<Tensor> {
        if dtype == self.dtype() {
            return Ok(self.clone());
        }
        with_dtype!(any, self.dtype(), S => with_dtype!(any, dtype, D => convert::<S, D>(self)))
    }
}

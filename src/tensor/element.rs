//! Rust element types behind each [`DType`] and the numeric traits kernels are written against.

use super::alloc::Storage;
use super::{Buffer, DType};
use std::fmt::Debug;
use std::ops::{Add, Div, Mul, Sub};
use std::sync::Arc;

mod sealed {
    /// Implemented by exactly the six element types: kernels (`device::cpu::map`) rely on
    /// each dtype having one Rust type, so no other crate may add one.
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
    impl Sealed for i32 {}
    impl Sealed for i64 {}
    impl Sealed for u8 {}
    impl Sealed for bool {}
}

/// A Rust type that can be stored in a [`Tensor`](super::Tensor): `f32`, `f64`, `i32`,
/// `i64`, `u8` and `bool`, one per [`DType`]. The trait is sealed: code may rely on
/// `T::DTYPE == U::DTYPE` meaning `T` and `U` are the same type.
pub trait Element:
    sealed::Sealed + Copy + Send + Sync + PartialEq + PartialOrd + Debug + Default + 'static
{
    /// The dtype this type stores as.
    const DTYPE: DType;
    /// Wraps a vector as a tensor buffer.
    fn into_buffer(data: Arc<Storage<Self>>) -> Buffer;
    /// Borrows the buffer's vector when the dtype matches.
    fn from_buffer(buffer: &Buffer) -> Option<&Arc<Storage<Self>>>;
    /// Mutably borrows the buffer's vector when the dtype matches.
    fn from_buffer_mut(buffer: &mut Buffer) -> Option<&mut Arc<Storage<Self>>>;
    /// Converts through f64 (TensorFlow `Cast` semantics for floats; integers truncate toward zero).
    fn to_f64(self) -> f64;
    /// Converts from f64, truncating toward zero and saturating for integers.
    fn from_f64(v: f64) -> Self;
    /// Converts to i64 exactly (bool is 0/1, floats truncate).
    fn to_i64(self) -> i64;
    /// Converts from i64 (wrapping for narrower integers, as C casts do).
    fn from_i64(v: i64) -> Self;
}

macro_rules! element {
    ($t:ty, $dt:ident, $var:ident) => {
        impl Element for $t {
            const DTYPE: DType = DType::$dt;
            fn into_buffer(data: Arc<Storage<Self>>) -> Buffer {
                Buffer::$var(data)
            }
            fn from_buffer(buffer: &Buffer) -> Option<&Arc<Storage<Self>>> {
                match buffer {
                    Buffer::$var(v) => Some(v),
                    _ => None,
                }
            }
            fn from_buffer_mut(buffer: &mut Buffer) -> Option<&mut Arc<Storage<Self>>> {
                match buffer {
                    Buffer::$var(v) => Some(v),
                    _ => None,
                }
            }
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            fn to_i64(self) -> i64 {
                self as i64
            }
            fn from_i64(v: i64) -> Self {
                v as $t
            }
        }
    };
}
element!(f32, Float32, F32);
element!(f64, Float64, F64);
element!(i32, Int32, I32);
element!(i64, Int64, I64);
element!(u8, UInt8, U8);

impl Element for bool {
    const DTYPE: DType = DType::Bool;
    fn into_buffer(data: Arc<Storage<Self>>) -> Buffer {
        Buffer::Bool(data)
    }
    fn from_buffer(buffer: &Buffer) -> Option<&Arc<Storage<Self>>> {
        match buffer {
            Buffer::Bool(v) => Some(v),
            _ => None,
        }
    }
    fn from_buffer_mut(buffer: &mut Buffer) -> Option<&mut Arc<Storage<Self>>> {
        match buffer {
            Buffer::Bool(v) => Some(v),
            _ => None,
        }
    }
    fn to_f64(self) -> f64 {
        self as u8 as f64
    }
    fn from_f64(v: f64) -> Self {
        v != 0.0
    }
    fn to_i64(self) -> i64 {
        self as i64
    }
    fn from_i64(v: i64) -> Self {
        v != 0
    }
}

/// Element types with arithmetic: every dtype but bool.
///
/// Integer arithmetic wraps on overflow (as TensorFlow's C++ kernels do) and never panics;
/// floats follow IEEE rules.
pub trait Number: Element {
    /// Additive identity.
    const ZERO: Self;
    /// Multiplicative identity.
    const ONE: Self;
    /// Smallest value (negative infinity for floats), the identity of `Max`.
    const LOWEST: Self;
    /// Largest value (infinity for floats), the identity of `Min`.
    const HIGHEST: Self;
    /// `a + b` (wrapping for integers).
    fn add(self, b: Self) -> Self;
    /// `a - b` (wrapping for integers).
    fn sub(self, b: Self) -> Self;
    /// `a * b` (wrapping for integers).
    fn mul(self, b: Self) -> Self;
    /// `a / b`; `None` for integer division by zero (truncating toward zero for integers).
    fn div(self, b: Self) -> Option<Self>;
    /// The larger of two values (NaN propagates for floats).
    fn max_of(self, b: Self) -> Self;
    /// The smaller of two values (NaN propagates for floats).
    fn min_of(self, b: Self) -> Self;
}

macro_rules! number_int {
    ($t:ty) => {
        impl Number for $t {
            const ZERO: Self = 0;
            const ONE: Self = 1;
            const LOWEST: Self = <$t>::MIN;
            const HIGHEST: Self = <$t>::MAX;
            fn add(self, b: Self) -> Self {
                self.wrapping_add(b)
            }
            fn sub(self, b: Self) -> Self {
                self.wrapping_sub(b)
            }
            fn mul(self, b: Self) -> Self {
                self.wrapping_mul(b)
            }
            fn div(self, b: Self) -> Option<Self> {
                if b == 0 {
                    None
                } else {
                    Some(self.wrapping_div(b))
                }
            }
            fn max_of(self, b: Self) -> Self {
                Ord::max(self, b)
            }
            fn min_of(self, b: Self) -> Self {
                Ord::min(self, b)
            }
        }
    };
}
number_int!(i32);
number_int!(i64);
number_int!(u8);

macro_rules! number_float {
    ($t:ty) => {
        impl Number for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const LOWEST: Self = <$t>::NEG_INFINITY;
            const HIGHEST: Self = <$t>::INFINITY;
            fn add(self, b: Self) -> Self {
                self + b
            }
            fn sub(self, b: Self) -> Self {
                self - b
            }
            fn mul(self, b: Self) -> Self {
                self * b
            }
            fn div(self, b: Self) -> Option<Self> {
                Some(self / b)
            }
            fn max_of(self, b: Self) -> Self {
                if self.is_nan() || b.is_nan() {
                    <$t>::NAN
                } else if self >= b {
                    self
                } else {
                    b
                }
            }
            fn min_of(self, b: Self) -> Self {
                if self.is_nan() || b.is_nan() {
                    <$t>::NAN
                } else if self <= b {
                    self
                } else {
                    b
                }
            }
        }
    };
}
number_float!(f32);
number_float!(f64);

/// float32 and float64: the transcendental functions kernels need.
pub trait Float:
    Number
    + std::ops::Neg<Output = Self>
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
{
    /// Converts a literal.
    fn lit(v: f64) -> Self;
    /// e^x
    fn exp(self) -> Self;
    /// natural log
    fn ln(self) -> Self;
    /// ln(1 + x)
    fn ln_1p(self) -> Self;
    /// e^x - 1
    fn exp_m1(self) -> Self;
    /// square root
    fn sqrt(self) -> Self;
    /// hyperbolic tangent
    fn tanh(self) -> Self;
    /// x^y
    fn powf(self, y: Self) -> Self;
    /// |x|
    fn abs(self) -> Self;
    /// largest integer <= x
    fn floor(self) -> Self;
    /// true for NaN
    fn is_nan(self) -> bool;
}

macro_rules! float {
    ($t:ty) => {
        impl Float for $t {
            fn lit(v: f64) -> Self {
                v as $t
            }
            fn exp(self) -> Self {
                <$t>::exp(self)
            }
            fn ln(self) -> Self {
                <$t>::ln(self)
            }
            fn ln_1p(self) -> Self {
                <$t>::ln_1p(self)
            }
            fn exp_m1(self) -> Self {
                <$t>::exp_m1(self)
            }
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            fn tanh(self) -> Self {
                <$t>::tanh(self)
            }
            fn powf(self, y: Self) -> Self {
                <$t>::powf(self, y)
            }
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
            fn floor(self) -> Self {
                <$t>::floor(self)
            }
            fn is_nan(self) -> bool {
                <$t>::is_nan(self)
            }
        }
    };
}
float!(f32);
float!(f64);

/// Runs `$body` with `$T` bound to the Rust type of a dtype in the listed family.
///
/// Families: `float` (f32, f64), `number` (floats and integers), `int` (i32, i64, u8),
/// `any` (every dtype). An unlisted dtype returns an `InvalidArgument` error from the
/// enclosing function.
#[macro_export]
macro_rules! with_dtype {
    (float, $dt:expr, $T:ident => $body:expr) => {
        $crate::with_dtype!(@arms $dt, $T => $body, [Float32 => f32, Float64 => f64])
    };
    (number, $dt:expr, $T:ident => $body:expr) => {
        $crate::with_dtype!(@arms $dt, $T => $body,
            [Float32 => f32, Float64 => f64, Int32 => i32, Int64 => i64, UInt8 => u8])
    };
    (int, $dt:expr, $T:ident => $body:expr) => {
        $crate::with_dtype!(@arms $dt, $T => $body, [Int32 => i32, Int64 => i64, UInt8 => u8])
    };
    (signed, $dt:expr, $T:ident => $body:expr) => {
        $crate::with_dtype!(@arms $dt, $T => $body,
            [Float32 => f32, Float64 => f64, Int32 => i32, Int64 => i64])
    };
    (any, $dt:expr, $T:ident => $body:expr) => {
        $crate::with_dtype!(@arms $dt, $T => $body,
            [Float32 => f32, Float64 => f64, Int32 => i32, Int64 => i64, UInt8 => u8, Bool => bool])
    };
    (@arms $dt:expr, $T:ident => $body:expr, [$($var:ident => $ty:ty),*]) => {{
        #[allow(unreachable_patterns)]
        match $dt {
            $($crate::DType::$var => { type $T = $ty; $body })*
            other => return Err($crate::tensor::UnsupportedDType(other).into()),
        }
    }};
}

/// Error value of [`with_dtype!`] for a dtype outside the requested family; converts into
/// both [`crate::Error`] and the `String` messages of shape inference.
#[derive(Debug, Clone, Copy)]
pub struct UnsupportedDType(pub DType);

impl From<UnsupportedDType> for crate::Error {
    fn from(e: UnsupportedDType) -> Self {
        crate::Error::InvalidArgument(format!("dtype {} is not supported here", e.0))
    }
}

impl From<UnsupportedDType> for String {
    fn from(e: UnsupportedDType) -> Self {
        format!("dtype {} is not supported here", e.0)
    }
}

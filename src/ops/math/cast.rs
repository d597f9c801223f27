//! Cast between every pair of dtypes, with the conversions TensorFlow's CPU kernel performs
//! (C++ `static_cast` as compiled for x86-64):
//!
//! - integer → integer wraps (keeps the low bits); integer → float rounds to nearest;
//! - float → int32/int64 truncates toward zero; NaN and out-of-range values give the most
//!   negative integer (what `cvttss2si` returns); float → uint8 goes through int32 and keeps
//!   the low 8 bits (300.0 → 44, -1.0 → 255);
//! - float64 → float32 rounds to nearest, or toward zero when the `Truncate` attr is true;
//! - number → bool is `x != 0` (NaN is true); bool → number is 0 or 1.

use super::{kernel_fn, InferCtx, InferResult, KernelBuildCtx, KernelResult};
use crate::graph::{AttrsExt, Graph, Output, TensorSpec};
use crate::ops::{GradCtx, Op, Registry};
use crate::tensor::{DType, Element, Tensor};
use crate::{with_dtype, Result};

/// Conversion of one element to `D`, as TensorFlow's Cast does it.
trait CastTo<D>: Copy {
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
fn truncate_f64(x: f64) -> f32 {
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

fn infer_cast(ctx: &InferCtx<'_>) -> InferResult {
    ctx.expect_inputs(1)?;
    let dst = ctx.attrs().dtype("DstT")?;
    if let Ok(src) = ctx.attrs().dtype("SrcT") {
        if src != ctx.dtype(0) {
            return Err(format!(
                "attr SrcT is {src} but the input is {}",
                ctx.dtype(0)
            ));
        }
    }
    ctx.attrs().bool_or("Truncate", false)?;
    Ok(vec![TensorSpec::new(dst, ctx.shape(0).clone())])
}

fn cast_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let (src, dst) = (ctx.input_dtype(0), ctx.output_dtype(0));
    if src == dst {
        return kernel_fn(|k| {
            let x = k.take_input(0)?;
            k.push_output(x);
            Ok(())
        });
    }
    if src == DType::Float64 && dst == DType::Float32 && ctx.attrs().bool_or("Truncate", false)? {
        return kernel_fn(|k| {
            let x = k.input(0)?;
            let out: Vec<f32> = x
                .as_slice::<f64>()?
                .iter()
                .map(|&v| truncate_f64(v))
                .collect();
            k.push_output(Tensor::from_parts(x.shape().to_vec(), out));
            Ok(())
        });
    }
    with_dtype!(any, src, S => with_dtype!(any, dst, D => kernel_fn(|k| {
        let out = convert::<S, D>(k.input(0)?)?;
        k.push_output(out);
        Ok(())
    })))
}

/// TensorFlow's `_CastGrad`: a float-to-float Cast passes the gradient back Cast to the
/// source dtype; a Cast from or to any other dtype passes nothing.
fn cast_grad(ctx: &mut GradCtx<'_>) -> Result<Vec<Option<Output>>> {
    let (x, grad) = (ctx.input(0), ctx.grad(0));
    let g = &mut *ctx.graph;
    let (src, dst) = (g.dtype(x), g.dtype(grad));
    if src.is_float() && dst.is_float() {
        Ok(vec![Some(g.cast(grad, src)?)])
    } else {
        Ok(vec![None])
    }
}

pub(super) fn register(r: &mut Registry) {
    r.add(
        Op::new("Cast", infer_cast, cast_kernel)
            .grad(cast_grad)
            .defaults(|| vec![("Truncate", false.into())]),
    );
}

impl Graph {
    /// Converts to another dtype (`tf.cast`): floats truncate toward zero when converted to
    /// integers, integers wrap, anything non-zero becomes true.
    pub fn cast(&mut self, x: Output, dtype: DType) -> Result<Output> {
        let src = self.dtype(x);
        self.op("Cast")
            .input(x)
            .attr("SrcT", src)
            .attr("DstT", dtype)
            .attr("Truncate", false)
            .build_output()
    }
}

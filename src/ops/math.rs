//! Elementwise math: arithmetic with NumPy broadcasting, unary functions, comparisons,
//! logic, Select, Cast and AddN. Each op is one line in a submodule's `register`, built
//! from a few generic pieces defined here: an inference rule per arity and a kernel that
//! maps a closure over [`cpu::map`] or [`cpu::zip`].
//!
//! Submodules: `arith` (binary arithmetic, AddN), `unary` (unary functions), `activation`
//! (Relu, Relu6, Elu, Softplus), `compare` (comparisons and logic), `select` (Select,
//! SelectV2) and `cast`; for gradients, `broadcast` (BroadcastGradientArgs and the
//! reduction of a broadcast operand's gradient) and `cwise_grad` (TanhGrad, ReluGrad and
//! the other elementwise gradient kernels). Each op's gradient sits next to its kernel.

use super::{kernel_fn, InferCtx, InferResult, KernelBuildCtx, KernelResult, Registry};
use crate::device::cpu;
use crate::graph::{Graph, Output, TensorSpec};
use crate::tensor::{DType, Element, Tensor};
use crate::{Error, Result};
use std::cell::Cell;

/// Dtype families an op accepts, as TensorFlow registers kernels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Family {
    /// float32, float64
    Float,
    /// floats and signed integers
    Signed,
    /// every numeric dtype
    Number,
    /// bool only (logical ops)
    Bool,
    /// every dtype, bool included (Equal, NotEqual)
    All,
}

impl Family {
    pub(crate) fn dtypes(self) -> &'static [DType] {
        use DType::*;
        match self {
            Family::Float => &[Float32, Float64],
            Family::Signed => &[Float32, Float64, Int32, Int64],
            Family::Number => &[Float32, Float64, Int32, Int64, UInt8],
            Family::Bool => &[Bool],
            Family::All => &[Float32, Float64, Int32, Int64, UInt8, Bool],
        }
    }
}

/// Checks input `i` against a family, with TensorFlow's hint to Cast integers first.
pub(crate) fn check_family(
    ctx: &InferCtx<'_>,
    i: usize,
    family: Family,
) -> std::result::Result<DType, String> {
    let dt = ctx.dtype(i);
    if family.dtypes().contains(&dt) {
        return Ok(dt);
    }
    let allowed = family
        .dtypes()
        .iter()
        .map(|d| d.name())
        .collect::<Vec<_>>()
        .join(", ");
    if family == Family::Float && dt.is_integer() {
        Err(format!(
            "input {i} has dtype {dt}, but this op needs a floating-point tensor (allowed: {allowed}); \
             Cast it first, e.g. g.cast(x, DType::Float32) (tf.cast(x, tf.float32))"
        ))
    } else {
        Err(format!(
            "input {i} has dtype {dt}, which is not allowed (allowed: {allowed})"
        ))
    }
}

/// One input of the family; the output has the same dtype and shape.
pub(crate) fn infer_unary(ctx: &InferCtx<'_>, family: Family) -> InferResult {
    ctx.expect_inputs(1)?;
    let dt = check_family(ctx, 0, family)?;
    ctx.check_t_attr(dt)?;
    Ok(vec![ctx.input(0).clone()])
}

/// Two inputs of one dtype in the family, broadcast together; `out` overrides the output
/// dtype (bool for comparisons).
pub(crate) fn infer_binary(ctx: &InferCtx<'_>, family: Family, out: Option<DType>) -> InferResult {
    ctx.expect_inputs(2)?;
    let dt = ctx.same_dtype()?;
    check_family(ctx, 0, family)?;
    ctx.check_t_attr(dt)?;
    let shape = ctx.shape(0).broadcast(ctx.shape(1))?;
    Ok(vec![TensorSpec::new(out.unwrap_or(dt), shape)])
}

/// Defines the inference and kernel functions of a binary op over a dtype family.
macro_rules! binary_op {
    ($infer:ident, $kernel:ident, $family:ident, $out:expr, $bound:ident, |$x:ident, $y:ident| $e:expr) => {
        fn $infer(ctx: &InferCtx<'_>) -> InferResult {
            infer_binary(ctx, Family::$family, $out)
        }
        fn $kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
            with_dtype!($bound, ctx.input_dtype(0), T => kernel_fn(|k| {
                let (a, b) = (k.take_input(0)?, k.take_input(1)?);
                k.push_output(cpu::zip(a, b, |$x: T, $y: T| $e)?);
                Ok(())
            }))
        }
    };
}

/// Defines the inference and kernel functions of a unary op over a dtype family.
macro_rules! unary_op {
    ($infer:ident, $kernel:ident, $family:ident, $bound:ident, |$x:ident| $e:expr) => {
        fn $infer(ctx: &InferCtx<'_>) -> InferResult {
            infer_unary(ctx, Family::$family)
        }
        fn $kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
            with_dtype!($bound, ctx.input_dtype(0), T => kernel_fn(|k| {
                let a = k.take_input(0)?;
                k.push_output(cpu::map(a, |$x: T| $e)?);
                Ok(())
            }))
        }
    };
}

/// Like [`binary_op!`] for ops that can fail on some values (integer division by zero):
/// the closure returns `None` there and the kernel fails with `$msg`, as TensorFlow's
/// error-flag functors do.
macro_rules! fallible_binary_op {
    ($infer:ident, $kernel:ident, $family:ident, $bound:ident, $msg:expr, |$x:ident, $y:ident| $e:expr) => {
        fn $infer(ctx: &InferCtx<'_>) -> InferResult {
            infer_binary(ctx, Family::$family, None)
        }
        fn $kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
            with_dtype!($bound, ctx.input_dtype(0), T => kernel_fn(|k| {
                let (a, b) = (k.take_input(0)?, k.take_input(1)?);
                let out = $crate::ops::math::zip_checked(a, b, $msg, |$x: T, $y: T| $e)?;
                k.push_output(out);
                Ok(())
            }))
        }
    };
}

pub(crate) mod activation;
mod arith;
mod broadcast;
mod cast;
mod clip;
mod compare;
pub(crate) mod cwise_grad;
pub(crate) mod fusion;
#[cfg(test)]
mod grad_cases;
#[cfg(test)]
mod grad_tests;
mod select;
mod transcendental;
mod unary;

#[cfg(test)]
mod tests;

/// [`cpu::zip`] with a closure that returns `None` on values it cannot handle; any `None`
/// turns into an `InvalidArgument` error carrying `msg`.
pub(crate) fn zip_checked<T: Element, U: Element>(
    a: Tensor,
    b: Tensor,
    msg: &str,
    f: impl Fn(T, T) -> Option<U>,
) -> Result<Tensor> {
    let failed = Cell::new(false);
    let out = cpu::zip(a, b, |x: T, y: T| {
        f(x, y).unwrap_or_else(|| {
            failed.set(true);
            U::default()
        })
    })?;
    if failed.get() {
        return Err(Error::invalid(msg));
    }
    Ok(out)
}

pub(crate) fn register(r: &mut Registry) {
    arith::register(r);
    unary::register(r);
    activation::register(r);
    compare::register(r);
    select::register(r);
    clip::register(r);
    cast::register(r);
    broadcast::register(r);
    cwise_grad::register(r);
}

/// Adds a binary op with the `T` attr set from `x`.
pub(crate) fn binary(g: &mut Graph, op: &str, x: Output, y: Output) -> Result<Output> {
    let t = g.dtype(x);
    g.op(op).input(x).input(y).attr("T", t).build_output()
}

/// Adds a unary op with the `T` attr set from `x`.
pub(crate) fn unary(g: &mut Graph, op: &str, x: Output) -> Result<Output> {
    let t = g.dtype(x);
    g.op(op).input(x).attr("T", t).build_output()
}

/// Gradient checks of this family's differentiable ops (run by `autodiff::tests`).
#[cfg(test)]
pub(crate) fn gradient_cases() -> Vec<crate::test_util::GradCase> {
    grad_cases::cases()
}

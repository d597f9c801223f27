//! Activation functions: Relu and Relu6 (every number type), Elu and Softplus (floats).
//! Their input is named `features` in TensorFlow; the single input is all that matters here.
//! Their gradients use the gradient kernels of `cwise_grad` (TensorFlow's `nn_grad.py`).

use super::{
    cpu, infer_unary, kernel_fn, unary, Family, InferCtx, InferResult, KernelBuildCtx, KernelResult,
};
use crate::graph::{Graph, Output};
use crate::ops::{GradCtx, Op, Registry};
use crate::tensor::{DType, Element, Float, Number};
use crate::{with_dtype, Result};

/// `max(x, 0)`; NaN stays NaN, as in TensorFlow.
pub(crate) fn relu<T: Number>(x: T) -> T {
    if x < T::ZERO {
        T::ZERO
    } else {
        x
    }
}

/// `min(max(x, 0), 6)`; NaN stays NaN.
pub(crate) fn relu6<T: Number>(x: T) -> T {
    let six = T::from_i64(6);
    if x < T::ZERO {
        T::ZERO
    } else if x > six {
        six
    } else {
        x
    }
}

/// `x` for `x >= 0`, `e^x - 1` below (computed with `exp_m1`, which keeps tiny negative
/// inputs that TensorFlow's `exp(x) - 1` rounds to 0).
fn elu<T: Float>(x: T) -> T {
    if x < T::ZERO {
        x.exp_m1()
    } else {
        x
    }
}

/// `ln(1 + e^x)` with TensorFlow's cut-offs: `x` itself above `-threshold` and `e^x` below
/// `threshold`, where `threshold = ln(epsilon) + 2`; in between `ln_1p(e^x)` (TensorFlow
/// writes `log(e^x + 1)`, which loses digits for small `e^x`).
fn softplus<T: Float>(x: T, threshold: T) -> T {
    if x > -threshold {
        x
    } else if x < threshold {
        x.exp()
    } else {
        x.exp().ln_1p()
    }
}

unary_op!(infer_relu, relu_kernel, Number, number, |x| relu(x));
unary_op!(infer_relu6, relu6_kernel, Number, number, |x| relu6(x));
unary_op!(infer_elu, elu_kernel, Float, float, |x| elu(x));

fn infer_softplus(ctx: &InferCtx<'_>) -> InferResult {
    infer_unary(ctx, Family::Float)
}

fn softplus_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    with_dtype!(float, ctx.input_dtype(0), T => {
        let epsilon = if T::DTYPE == DType::Float32 {
            f64::from(f32::EPSILON)
        } else {
            f64::EPSILON
        };
        let threshold = T::lit(epsilon.ln() + 2.0);
        kernel_fn(move |k| {
            let a = k.take_input(0)?;
            k.push_output(cpu::map(a, |x: T| softplus(x, threshold))?);
            Ok(())
        })
    })
}

type GradResult = Result<Vec<Option<Output>>>;

/// TensorFlow's `_ReluGrad`: `ReluGrad(grad, y)`.
fn relu_grad(ctx: &mut GradCtx<'_>) -> GradResult {
    let (y, grad) = (ctx.output(0), ctx.grad(0));
    Ok(vec![Some(ctx.graph.relu_grad(grad, y)?)])
}

/// TensorFlow's `_Relu6Grad`: `Relu6Grad(grad, y)` (the output is in (0, 6) exactly where
/// the input is).
fn relu6_grad(ctx: &mut GradCtx<'_>) -> GradResult {
    let (y, grad) = (ctx.output(0), ctx.grad(0));
    Ok(vec![Some(ctx.graph.relu6_grad(grad, y)?)])
}

/// TensorFlow's `_EluGrad`: `EluGrad(grad, y)`.
fn elu_grad(ctx: &mut GradCtx<'_>) -> GradResult {
    let (y, grad) = (ctx.output(0), ctx.grad(0));
    Ok(vec![Some(ctx.graph.elu_grad(grad, y)?)])
}

/// TensorFlow 1's `_SoftplusGrad`: `SoftplusGrad(grad, x)` (TensorFlow 2 writes the same
/// value as `grad * sigmoid(x)`).
fn softplus_grad(ctx: &mut GradCtx<'_>) -> GradResult {
    let (x, grad) = (ctx.input(0), ctx.grad(0));
    Ok(vec![Some(ctx.graph.softplus_grad(grad, x)?)])
}

pub(super) fn register(r: &mut Registry) {
    r.add(Op::new("Relu", infer_relu, relu_kernel).grad(relu_grad));
    r.add(Op::new("Relu6", infer_relu6, relu6_kernel).grad(relu6_grad));
    r.add(Op::new("Elu", infer_elu, elu_kernel).grad(elu_grad));
    r.add(Op::new("Softplus", infer_softplus, softplus_kernel).grad(softplus_grad));
}

impl Graph {
    /// `max(x, 0)` (`tf.nn.relu`).
    pub fn relu(&mut self, x: Output) -> Result<Output> {
        unary(self, "Relu", x)
    }
    /// `min(max(x, 0), 6)` (`tf.nn.relu6`).
    pub fn relu6(&mut self, x: Output) -> Result<Output> {
        unary(self, "Relu6", x)
    }
    /// Exponential linear unit: `x` if `x >= 0`, else `e^x - 1` (`tf.nn.elu`).
    pub fn elu(&mut self, x: Output) -> Result<Output> {
        unary(self, "Elu", x)
    }
    /// `ln(1 + e^x)` without overflow (`tf.nn.softplus`).
    pub fn softplus(&mut self, x: Output) -> Result<Output> {
        unary(self, "Softplus", x)
    }
}

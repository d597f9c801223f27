//! Activation functions: Relu and Relu6 (every number type), Elu, Softplus, LeakyRelu,
//! Selu and Softsign (floats).
//! Their input is named `features` in TensorFlow; the single input is all that matters here.
//! Their gradients use the gradient kernels of `cwise_grad` (TensorFlow's `nn_grad.py`).

use super::{
    cpu, infer_unary, kernel_fn, unary, Family, InferCtx, InferResult, KernelBuildCtx, KernelResult,
};
use crate::graph::{AttrValue, AttrsExt, Graph, Output};
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

/// SELU's constants (Klambauer et al.; TensorFlow's `selu` functor).
const SELU_SCALE: f64 = 1.050_700_987_355_480_5;
const SELU_ALPHA: f64 = 1.673_263_242_354_377_3;

/// `scale * x` above 0, `scale * alpha * (e^x - 1)` below.
fn selu<T: Float>(x: T) -> T {
    if x > T::ZERO {
        T::lit(SELU_SCALE) * x
    } else {
        T::lit(SELU_SCALE * SELU_ALPHA) * x.exp_m1()
    }
}

/// `x / (1 + |x|)`.
fn softsign<T: Float>(x: T) -> T {
    x / (T::ONE + x.abs())
}

unary_op!(infer_selu, selu_kernel, Float, float, |x| selu(x));
unary_op!(infer_softsign, softsign_kernel, Float, float, |x| softsign(
    x
));

fn infer_leaky_relu(ctx: &InferCtx<'_>) -> InferResult {
    ctx.attrs().float_or("alpha", 0.2)?;
    infer_unary(ctx, Family::Float)
}

/// `x` above 0, `alpha * x` below (`alpha` is a float32 attr, as in TensorFlow).
fn leaky_relu_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let alpha = f64::from(ctx.attrs().float_or("alpha", 0.2)?);
    with_dtype!(float, ctx.input_dtype(0), T => {
        let alpha = T::lit(alpha);
        kernel_fn(move |k| {
            let a = k.take_input(0)?;
            k.push_output(cpu::map(a, |x: T| if x > T::ZERO { x } else { alpha * x })?);
            Ok(())
        })
    })
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

/// TensorFlow's `LeakyReluGrad`: `grad` where `x > 0`, `alpha * grad` elsewhere.
fn leaky_relu_grad(ctx: &mut GradCtx<'_>) -> GradResult {
    let (x, grad) = (ctx.input(0), ctx.grad(0));
    let alpha = f64::from(
        ctx.attrs()
            .float_or("alpha", 0.2)
            .map_err(crate::Error::invalid)?,
    );
    let g = &mut *ctx.graph;
    let dt = g.dtype(x);
    let zero = g.scalar_like(dt, 0.0)?;
    let positive = g.greater(x, zero)?;
    let a = g.scalar_like(dt, alpha)?;
    let scaled = g.mul(grad, a)?;
    Ok(vec![Some(g.where_v2(positive, grad, scaled)?)])
}

/// TensorFlow's `SeluGrad`: `grad * scale` where `y > 0`, `grad * (y + scale * alpha)`
/// elsewhere.
fn selu_grad(ctx: &mut GradCtx<'_>) -> GradResult {
    let (y, grad) = (ctx.output(0), ctx.grad(0));
    let g = &mut *ctx.graph;
    let dt = g.dtype(y);
    let zero = g.scalar_like(dt, 0.0)?;
    let positive = g.greater(y, zero)?;
    let scale = g.scalar_like(dt, SELU_SCALE)?;
    let above = g.mul(grad, scale)?;
    let sa = g.scalar_like(dt, SELU_SCALE * SELU_ALPHA)?;
    let slope = g.add(y, sa)?;
    let below = g.mul(grad, slope)?;
    Ok(vec![Some(g.where_v2(positive, above, below)?)])
}

/// TensorFlow's `SoftsignGrad`: `grad / (1 + |x|)^2`.
fn softsign_grad(ctx: &mut GradCtx<'_>) -> GradResult {
    let (x, grad) = (ctx.input(0), ctx.grad(0));
    let g = &mut *ctx.graph;
    let one = g.scalar_like(g.dtype(x), 1.0)?;
    let ax = g.abs(x)?;
    let d = g.add(one, ax)?;
    let d2 = g.square(d)?;
    Ok(vec![Some(g.div(grad, d2)?)])
}

pub(super) fn register(r: &mut Registry) {
    r.add(
        Op::new("LeakyRelu", infer_leaky_relu, leaky_relu_kernel)
            .grad(leaky_relu_grad)
            .defaults(|| vec![("alpha", AttrValue::Float(0.2))]),
    );
    r.add(Op::new("Selu", infer_selu, selu_kernel).grad(selu_grad));
    r.add(Op::new("Softsign", infer_softsign, softsign_kernel).grad(softsign_grad));
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
    /// `x` above 0, `alpha * x` below (`tf.nn.leaky_relu`).
    pub fn leaky_relu(&mut self, x: Output, alpha: f32) -> Result<Output> {
        let t = self.dtype(x);
        self.op("LeakyRelu")
            .input(x)
            .attr("T", t)
            .attr("alpha", alpha)
            .build_output()
    }
    /// Scaled exponential linear unit (`tf.nn.selu`).
    pub fn selu(&mut self, x: Output) -> Result<Output> {
        unary(self, "Selu", x)
    }
    /// `x / (1 + |x|)` (`tf.nn.softsign`).
    pub fn softsign(&mut self, x: Output) -> Result<Output> {
        unary(self, "Softsign", x)
    }
    /// `ln(1 + e^x)` without overflow (`tf.nn.softplus`).
    pub fn softplus(&mut self, x: Output) -> Result<Output> {
        unary(self, "Softplus", x)
    }
}

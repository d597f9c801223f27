//! Unary elementwise functions: Neg, Abs, Sign, Square (numbers) and Exp, Log, Log1p, Sqrt,
//! Rsqrt, Reciprocal, Tanh, Sigmoid, Erf (floats; integers must be Cast first, as in
//! TensorFlow),
//! with their gradients (TensorFlow's `math_grad.py`).

use super::transcendental::Transcendental;
use super::{
    cpu, infer_unary, kernel_fn, unary, Family, InferCtx, InferResult, KernelBuildCtx, KernelResult,
};
use crate::graph::{Graph, Output};
use crate::ops::{GradCtx, Op, Registry};
use crate::tensor::{Element, Float, Number};
use crate::{with_dtype, Result};

/// Absolute value and sign for floats and signed integers.
trait SignedExt: Number {
    /// `|x|`, wrapping for the most negative integer (which stays itself, as in C++).
    fn magnitude(self) -> Self;
    /// -1, 0 or 1 (NaN stays NaN; -0.0 gives 0).
    fn sign(self) -> Self;
}

macro_rules! signed_int {
    ($t:ty) => {
        impl SignedExt for $t {
            fn magnitude(self) -> Self {
                self.wrapping_abs()
            }
            fn sign(self) -> Self {
                self.signum()
            }
        }
    };
}
signed_int!(i32);
signed_int!(i64);

macro_rules! signed_float {
    ($t:ty) => {
        impl SignedExt for $t {
            fn magnitude(self) -> Self {
                self.abs()
            }
            fn sign(self) -> Self {
                if self > 0.0 {
                    1.0
                } else if self < 0.0 {
                    -1.0
                } else if self == 0.0 {
                    0.0
                } else {
                    self
                }
            }
        }
    };
}
signed_float!(f32);
signed_float!(f64);

unary_op!(infer_neg, neg_kernel, Signed, signed, |x| T::ZERO.sub(x));
unary_op!(infer_abs, abs_kernel, Signed, signed, |x| x.magnitude());
unary_op!(infer_sign, sign_kernel, Signed, signed, |x| x.sign());
unary_op!(infer_square, square_kernel, Number, number, |x| x.mul(x));
unary_op!(infer_exp, exp_kernel, Float, float, |x| x.exp());
unary_op!(infer_log, log_kernel, Float, float, |x| x.ln());
unary_op!(infer_log1p, log1p_kernel, Float, float, |x| x.ln_1p());
unary_op!(infer_sqrt, sqrt_kernel, Float, float, |x| x.sqrt());
unary_op!(infer_rsqrt, rsqrt_kernel, Float, float, |x| T::ONE
    / x.sqrt());
unary_op!(
    infer_reciprocal,
    reciprocal_kernel,
    Float,
    float,
    |x| T::ONE / x
);
unary_op!(infer_tanh, tanh_kernel, Float, float, |x| x.tanh_fn());
unary_op!(infer_sigmoid, sigmoid_kernel, Float, float, |x| x
    .sigmoid_fn());
// The error function, evaluated in float64 by libm (exact to float32's precision).
unary_op!(infer_erf, erf_kernel, Float, float, |x| T::lit(libm::erf(
    x.to_f64()
)));

type GradResult = Result<Vec<Option<Output>>>;

/// TensorFlow's `_NegGrad`: `-grad`.
fn neg_grad(ctx: &mut GradCtx<'_>) -> GradResult {
    let grad = ctx.grad(0);
    Ok(vec![Some(ctx.graph.neg(grad)?)])
}

/// TensorFlow's `_AbsGrad`: `grad * sign(x)`.
fn abs_grad(ctx: &mut GradCtx<'_>) -> GradResult {
    let (x, grad) = (ctx.input(0), ctx.grad(0));
    let s = ctx.graph.sign(x)?;
    Ok(vec![Some(ctx.graph.mul(grad, s)?)])
}

/// TensorFlow's `_SignGrad`: `zeros_like(x)`.
fn sign_grad(ctx: &mut GradCtx<'_>) -> GradResult {
    let x = ctx.input(0);
    Ok(vec![Some(ctx.graph.zeros_like(x)?)])
}

/// TensorFlow's `_SquareGrad`: `grad * (x * 2)`.
fn square_grad(ctx: &mut GradCtx<'_>) -> GradResult {
    let (x, grad) = (ctx.input(0), ctx.grad(0));
    let g = &mut *ctx.graph;
    let two = g.scalar_like(g.dtype(x), 2.0)?;
    let x2 = g.mul(x, two)?;
    Ok(vec![Some(g.mul(grad, x2)?)])
}

/// TensorFlow's `_ExpGrad`: `grad * y`.
fn exp_grad(ctx: &mut GradCtx<'_>) -> GradResult {
    let (y, grad) = (ctx.output(0), ctx.grad(0));
    Ok(vec![Some(ctx.graph.mul(grad, y)?)])
}

/// TensorFlow's `_LogGrad`: `grad * reciprocal(x)`.
fn log_grad(ctx: &mut GradCtx<'_>) -> GradResult {
    let (x, grad) = (ctx.input(0), ctx.grad(0));
    let r = ctx.graph.reciprocal(x)?;
    Ok(vec![Some(ctx.graph.mul(grad, r)?)])
}

/// TensorFlow's `_Log1pGrad`: `grad * reciprocal(1 + x)`.
fn log1p_grad(ctx: &mut GradCtx<'_>) -> GradResult {
    let (x, grad) = (ctx.input(0), ctx.grad(0));
    let g = &mut *ctx.graph;
    let one = g.scalar_like(g.dtype(x), 1.0)?;
    let s = g.add(one, x)?;
    let r = g.reciprocal(s)?;
    Ok(vec![Some(g.mul(grad, r)?)])
}

/// The gradients that are one kernel of the output and the incoming gradient:
/// TensorFlow's `_SqrtGrad`, `_RsqrtGrad`, `_ReciprocalGrad`, `_TanhGrad`, `_SigmoidGrad`.
macro_rules! output_grad {
    ($name:ident, $method:ident) => {
        fn $name(ctx: &mut GradCtx<'_>) -> GradResult {
            let (y, grad) = (ctx.output(0), ctx.grad(0));
            Ok(vec![Some(ctx.graph.$method(y, grad)?)])
        }
    };
}
output_grad!(sqrt_grad, sqrt_grad);
output_grad!(rsqrt_grad, rsqrt_grad);
output_grad!(reciprocal_grad, reciprocal_grad);
output_grad!(tanh_grad, tanh_grad);
output_grad!(sigmoid_grad, sigmoid_grad);

/// TensorFlow's `_ErfGrad`: `grad * 2/sqrt(pi) * e^(-x^2)`.
fn erf_grad(ctx: &mut GradCtx<'_>) -> GradResult {
    let (x, grad) = (ctx.input(0), ctx.grad(0));
    let g = &mut *ctx.graph;
    let c = g.scalar_like(g.dtype(x), std::f64::consts::FRAC_2_SQRT_PI)?;
    let x2 = g.square(x)?;
    let nx2 = g.neg(x2)?;
    let e = g.exp(nx2)?;
    let ce = g.mul(c, e)?;
    Ok(vec![Some(g.mul(grad, ce)?)])
}

pub(super) fn register(r: &mut Registry) {
    r.add(Op::new("Erf", infer_erf, erf_kernel).grad(erf_grad));
    r.add(Op::new("Neg", infer_neg, neg_kernel).grad(neg_grad));
    r.add(Op::new("Abs", infer_abs, abs_kernel).grad(abs_grad));
    r.add(Op::new("Sign", infer_sign, sign_kernel).grad(sign_grad));
    r.add(Op::new("Square", infer_square, square_kernel).grad(square_grad));
    r.add(Op::new("Exp", infer_exp, exp_kernel).grad(exp_grad));
    r.add(Op::new("Log", infer_log, log_kernel).grad(log_grad));
    r.add(Op::new("Log1p", infer_log1p, log1p_kernel).grad(log1p_grad));
    r.add(Op::new("Sqrt", infer_sqrt, sqrt_kernel).grad(sqrt_grad));
    r.add(Op::new("Rsqrt", infer_rsqrt, rsqrt_kernel).grad(rsqrt_grad));
    r.add(Op::new("Reciprocal", infer_reciprocal, reciprocal_kernel).grad(reciprocal_grad));
    r.add(Op::new("Tanh", infer_tanh, tanh_kernel).grad(tanh_grad));
    r.add(Op::new("Sigmoid", infer_sigmoid, sigmoid_kernel).grad(sigmoid_grad));
}

impl Graph {
    /// `-x` (`tf.negative`).
    pub fn neg(&mut self, x: Output) -> Result<Output> {
        unary(self, "Neg", x)
    }
    /// `|x|` (`tf.abs`); the most negative integer stays itself.
    pub fn abs(&mut self, x: Output) -> Result<Output> {
        unary(self, "Abs", x)
    }
    /// -1, 0 or 1 by the sign of `x`; NaN stays NaN (`tf.sign`).
    pub fn sign(&mut self, x: Output) -> Result<Output> {
        unary(self, "Sign", x)
    }
    /// `x * x` (`tf.square`; integers wrap).
    pub fn square(&mut self, x: Output) -> Result<Output> {
        unary(self, "Square", x)
    }
    /// `e^x` (`tf.exp`).
    pub fn exp(&mut self, x: Output) -> Result<Output> {
        unary(self, "Exp", x)
    }
    /// Natural log (`tf.math.log`); integers must be Cast first, as in TensorFlow.
    pub fn log(&mut self, x: Output) -> Result<Output> {
        unary(self, "Log", x)
    }
    /// `ln(1 + x)`, accurate for small `x` (`tf.math.log1p`).
    pub fn log1p(&mut self, x: Output) -> Result<Output> {
        unary(self, "Log1p", x)
    }
    /// Square root (`tf.sqrt`); integers must be Cast first.
    pub fn sqrt(&mut self, x: Output) -> Result<Output> {
        unary(self, "Sqrt", x)
    }
    /// `1 / sqrt(x)` (`tf.math.rsqrt`).
    pub fn rsqrt(&mut self, x: Output) -> Result<Output> {
        unary(self, "Rsqrt", x)
    }
    /// `1 / x` for floats (`tf.math.reciprocal`, op Reciprocal).
    pub fn reciprocal(&mut self, x: Output) -> Result<Output> {
        unary(self, "Reciprocal", x)
    }
    /// Hyperbolic tangent (`tf.tanh`).
    pub fn tanh(&mut self, x: Output) -> Result<Output> {
        unary(self, "Tanh", x)
    }
    /// The error function (`tf.math.erf`, used by GELU).
    pub fn erf(&mut self, x: Output) -> Result<Output> {
        unary(self, "Erf", x)
    }
    /// Logistic function `1 / (1 + e^-x)` (`tf.sigmoid`).
    pub fn sigmoid(&mut self, x: Output) -> Result<Output> {
        unary(self, "Sigmoid", x)
    }
}

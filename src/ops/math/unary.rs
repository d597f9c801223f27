//! Unary elementwise functions: Neg, Abs, Sign, Square (numbers) and Exp, Log, Log1p, Sqrt,
//! Rsqrt, Tanh, Sigmoid (floats; integers must be Cast first, as in TensorFlow).

use super::{
    cpu, infer_unary, kernel_fn, unary, Family, InferCtx, InferResult, KernelBuildCtx, KernelResult,
};
use crate::graph::{Graph, Output};
use crate::ops::{Op, Registry};
use crate::tensor::{Float, Number};
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

/// `1 / (1 + e^-x)`, evaluated so that neither branch overflows.
fn sigmoid<T: Float>(x: T) -> T {
    if x >= T::ZERO {
        T::ONE / (T::ONE + (-x).exp())
    } else {
        let e = x.exp();
        e / (T::ONE + e)
    }
}

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
unary_op!(infer_tanh, tanh_kernel, Float, float, |x| x.tanh());
unary_op!(infer_sigmoid, sigmoid_kernel, Float, float, |x| sigmoid(x));

pub(super) fn register(r: &mut Registry) {
    r.add(Op::new("Neg", infer_neg, neg_kernel));
    r.add(Op::new("Abs", infer_abs, abs_kernel));
    r.add(Op::new("Sign", infer_sign, sign_kernel));
    r.add(Op::new("Square", infer_square, square_kernel));
    r.add(Op::new("Exp", infer_exp, exp_kernel));
    r.add(Op::new("Log", infer_log, log_kernel));
    r.add(Op::new("Log1p", infer_log1p, log1p_kernel));
    r.add(Op::new("Sqrt", infer_sqrt, sqrt_kernel));
    r.add(Op::new("Rsqrt", infer_rsqrt, rsqrt_kernel));
    r.add(Op::new("Tanh", infer_tanh, tanh_kernel));
    r.add(Op::new("Sigmoid", infer_sigmoid, sigmoid_kernel));
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
    /// Hyperbolic tangent (`tf.tanh`).
    pub fn tanh(&mut self, x: Output) -> Result<Output> {
        unary(self, "Tanh", x)
    }
    /// Logistic function `1 / (1 + e^-x)` (`tf.sigmoid`).
    pub fn sigmoid(&mut self, x: Output) -> Result<Output> {
        unary(self, "Sigmoid", x)
    }
}

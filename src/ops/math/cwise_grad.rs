//! TensorFlow's elementwise gradient kernels, which the gradients of the unary functions
//! and activations are built from, each with its own gradient (TensorFlow's
//! `math_grad.py`/`nn_grad.py`) so that second derivatives work:
//!
//! - `TanhGrad(y, dy)`, `SigmoidGrad(y, dy)`, `SqrtGrad(y, dy)`, `RsqrtGrad(y, dy)`,
//!   `ReciprocalGrad(y, dy)` (floats): `y` is the forward op's output;
//! - `ReluGrad(gradients, features)`, `Relu6Grad(gradients, features)` (every number type),
//!   `EluGrad(gradients, outputs)`, `SoftplusGrad(gradients, features)` (floats).
//!
//! Both inputs have one shape (no broadcasting), as in TensorFlow.

use super::{
    binary, check_family, cpu, kernel_fn, Family, InferCtx, InferResult, KernelBuildCtx,
    KernelResult,
};
use crate::graph::{Graph, Output, TensorSpec};
use crate::ops::{GradCtx, Op, Registry};
use crate::tensor::{Float, Number, Tensor};
use crate::{with_dtype, Error, Result};

/// Two inputs of one dtype in the family and compatible shapes; the output has that shape.
fn infer_same_shape(ctx: &InferCtx<'_>, family: Family) -> InferResult {
    ctx.expect_inputs(2)?;
    let dt = ctx.same_dtype()?;
    check_family(ctx, 0, family)?;
    ctx.check_t_attr(dt)?;
    let shape = ctx
        .shape(0)
        .merge(ctx.shape(1))
        .map_err(|e| format!("both inputs must have the same shape (no broadcasting): {e}"))?;
    Ok(vec![TensorSpec::new(dt, shape)])
}

/// TensorFlow's cwise check: the same number of elements; the output takes input 0's shape.
fn same_size(a: &Tensor, b: Tensor) -> Result<Tensor> {
    if a.len() != b.len() {
        return Err(Error::invalid(format!(
            "The two arguments to a cwise op must have same number of elements, got {} and {}",
            a.len(),
            b.len()
        )));
    }
    b.reshape(a.shape())
}

/// The activation-gradient check (TensorFlow's `ValidateSameShape`).
fn same_shape(op: &str, a: &Tensor, b: Tensor) -> Result<Tensor> {
    if a.shape() != b.shape() {
        return Err(Error::invalid(format!(
            "Inputs to operation {op} of type {op} must have the same size and shape.  \
             Input 0: {:?} != input 1: {:?}",
            a.shape(),
            b.shape()
        )));
    }
    Ok(b)
}

/// Defines the inference and kernel of a gradient op; `$check` validates the shapes.
macro_rules! grad_op {
    ($infer:ident, $kernel:ident, $family:ident, $bound:ident, $check:expr,
     |$a:ident, $b:ident| $e:expr) => {
        fn $infer(ctx: &InferCtx<'_>) -> InferResult {
            infer_same_shape(ctx, Family::$family)
        }
        fn $kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
            with_dtype!($bound, ctx.input_dtype(0), T => kernel_fn(|k| {
                let a = k.take_input(0)?;
                let b = $check(&a, k.take_input(1)?)?;
                k.push_output(cpu::zip(a, b, |$a: T, $b: T| $e)?);
                Ok(())
            }))
        }
    };
}

/// `1` where `on`, else `0`.
fn indicator<T: Number>(on: bool) -> T {
    if on {
        T::ONE
    } else {
        T::ZERO
    }
}

grad_op!(
    infer_tanh_grad,
    tanh_grad_kernel,
    Float,
    float,
    same_size,
    |y, dy| dy * (T::ONE - y * y)
);
grad_op!(
    infer_sigmoid_grad,
    sigmoid_grad_kernel,
    Float,
    float,
    same_size,
    |y, dy| dy * y * (T::ONE - y)
);
grad_op!(
    infer_sqrt_grad,
    sqrt_grad_kernel,
    Float,
    float,
    same_size,
    |y, dy| T::lit(0.5) * dy / y
);
grad_op!(
    infer_rsqrt_grad,
    rsqrt_grad_kernel,
    Float,
    float,
    same_size,
    |y, dy| T::lit(-0.5) * (dy * y) * (y * y)
);
grad_op!(
    infer_reciprocal_grad,
    reciprocal_grad_kernel,
    Float,
    float,
    same_size,
    |y, dy| -y * y * dy
);
/// ReluGrad of one element: `gradients * (features > 0)`, so a NaN gradient stays NaN
/// even where the unit is off.
pub(crate) fn relu_grad<T: Number>(g: T, f: T) -> T {
    g.mul(indicator::<T>(f > T::ZERO))
}

/// Relu6Grad of one element: `gradients * (0 < features < 6)`.
pub(crate) fn relu6_grad<T: Number>(g: T, f: T) -> T {
    g.mul(indicator::<T>(f > T::ZERO && f < T::from_i64(6)))
}

grad_op!(
    infer_relu_grad,
    relu_grad_kernel,
    Number,
    number,
    |a: &Tensor, b| same_shape("ReluGrad", a, b),
    |g, f| relu_grad(g, f)
);
grad_op!(
    infer_relu6_grad,
    relu6_grad_kernel,
    Number,
    number,
    |a: &Tensor, b| same_shape("Relu6Grad", a, b),
    |g, f| relu6_grad(g, f)
);
grad_op!(
    infer_elu_grad,
    elu_grad_kernel,
    Float,
    float,
    |a: &Tensor, b| same_shape("EluGrad", a, b),
    |g, y| if y < T::ZERO { g * (y + T::ONE) } else { g }
);
grad_op!(
    infer_softplus_grad,
    softplus_grad_kernel,
    Float,
    float,
    |a: &Tensor, b| same_shape("SoftplusGrad", a, b),
    |g, x| g / ((-x).exp() + T::ONE)
);

type GradResult = Result<Vec<Option<Output>>>;

/// A float constant of `like`'s dtype.
fn lit(g: &mut Graph, like: Output, v: f64) -> Result<Output> {
    let dt = g.dtype(like);
    g.scalar_like(dt, v)
}

/// The gradient of `TanhGrad(y, dy)` and `ReciprocalGrad(y, dy)`, which share a form
/// (TensorFlow's `_TanhGradGrad`, `_ReciprocalGradGrad`): `(grad * -2 * dy * y, op(y, grad))`.
fn minus_two_grad_grad(
    ctx: &mut GradCtx<'_>,
    op: fn(&mut Graph, Output, Output) -> Result<Output>,
) -> GradResult {
    let (a, b, grad) = (ctx.input(0), ctx.input(1), ctx.grad(0));
    let g = &mut *ctx.graph;
    let m2 = lit(g, grad, -2.0)?;
    let t = g.mul(grad, m2)?;
    let t = g.mul(t, b)?;
    let ga = g.mul(t, a)?;
    Ok(vec![Some(ga), Some(op(g, a, grad)?)])
}

/// TensorFlow's `_TanhGradGrad`.
fn tanh_grad_grad(ctx: &mut GradCtx<'_>) -> GradResult {
    minus_two_grad_grad(ctx, Graph::tanh_grad)
}

/// TensorFlow's `_SigmoidGradGrad`: with `gb = grad * dy`, `(gb - 2 * gb * y,
/// SigmoidGrad(y, grad))`.
fn sigmoid_grad_grad(ctx: &mut GradCtx<'_>) -> GradResult {
    let (a, b, grad) = (ctx.input(0), ctx.input(1), ctx.grad(0));
    let g = &mut *ctx.graph;
    let gb = g.mul(grad, b)?;
    let two = lit(g, grad, 2.0)?;
    let t = g.mul(two, gb)?;
    let t = g.mul(t, a)?;
    let ga = g.sub(gb, t)?;
    Ok(vec![Some(ga), Some(g.sigmoid_grad(a, grad)?)])
}

/// TensorFlow's `_SqrtGradGrad`: with `ga = grad / y`, `(-ga * out, 0.5 * ga)` where `out`
/// is this op's output.
fn sqrt_grad_grad(ctx: &mut GradCtx<'_>) -> GradResult {
    let (a, out, grad) = (ctx.input(0), ctx.output(0), ctx.grad(0));
    let g = &mut *ctx.graph;
    let ga = g.div(grad, a)?;
    let neg = g.neg(ga)?;
    let first = g.mul(neg, out)?;
    let half = lit(g, grad, 0.5)?;
    let second = g.mul(half, ga)?;
    Ok(vec![Some(first), Some(second)])
}

/// TensorFlow's `_RsqrtGradGrad`: `(-1.5 * grad * dy * y², RsqrtGrad(y, grad))`.
fn rsqrt_grad_grad(ctx: &mut GradCtx<'_>) -> GradResult {
    let (a, b, grad) = (ctx.input(0), ctx.input(1), ctx.grad(0));
    let g = &mut *ctx.graph;
    let c = lit(g, grad, -1.5)?;
    let t = g.mul(c, grad)?;
    let t = g.mul(t, b)?;
    let sq = g.square(a)?;
    let ga = g.mul(t, sq)?;
    Ok(vec![Some(ga), Some(g.rsqrt_grad(a, grad)?)])
}

/// TensorFlow's `_ReciprocalGradGrad`.
fn reciprocal_grad_grad(ctx: &mut GradCtx<'_>) -> GradResult {
    minus_two_grad_grad(ctx, Graph::reciprocal_grad)
}

/// TensorFlow's `_ReluGradGrad`: `(ReluGrad(grad, features), zeros_like(features))`.
fn relu_grad_grad(ctx: &mut GradCtx<'_>) -> GradResult {
    let (x, grad) = (ctx.input(1), ctx.grad(0));
    let g = &mut *ctx.graph;
    Ok(vec![Some(g.relu_grad(grad, x)?), Some(g.zeros_like(x)?)])
}

/// TensorFlow's `_Relu6GradGrad`: `(Relu6Grad(grad, features), zeros_like(features))`.
fn relu6_grad_grad(ctx: &mut GradCtx<'_>) -> GradResult {
    let (x, grad) = (ctx.input(1), ctx.grad(0));
    let g = &mut *ctx.graph;
    Ok(vec![Some(g.relu6_grad(grad, x)?), Some(g.zeros_like(x)?)])
}

/// TensorFlow's `_EluGradGrad`: `(EluGrad(grad, outputs),
/// Select(outputs < 0, grad * gradients, zeros_like(outputs)))`.
fn elu_grad_grad(ctx: &mut GradCtx<'_>) -> GradResult {
    let (dy, y, grad) = (ctx.input(0), ctx.input(1), ctx.grad(0));
    let g = &mut *ctx.graph;
    let first = g.elu_grad(grad, y)?;
    let zero = lit(g, y, 0.0)?;
    let negative = g.less(y, zero)?;
    let t = g.mul(grad, dy)?;
    let zeros = g.zeros_like(y)?;
    Ok(vec![Some(first), Some(g.select(negative, t, zeros)?)])
}

/// TensorFlow's `_SoftplusGradGrad`: `(SoftplusGrad(grad, x),
/// grad * dy / (e^-x + 2 + e^x))`.
fn softplus_grad_grad(ctx: &mut GradCtx<'_>) -> GradResult {
    let (dy, x, grad) = (ctx.input(0), ctx.input(1), ctx.grad(0));
    let g = &mut *ctx.graph;
    let ddy = g.softplus_grad(grad, x)?;
    let num = g.mul(grad, dy)?;
    let nx = g.neg(x)?;
    let e_nx = g.exp(nx)?;
    let two = lit(g, x, 2.0)?;
    let d = g.add(e_nx, two)?;
    let e_x = g.exp(x)?;
    let d = g.add(d, e_x)?;
    Ok(vec![Some(ddy), Some(g.div(num, d)?)])
}

pub(super) fn register(r: &mut Registry) {
    r.add(Op::new("TanhGrad", infer_tanh_grad, tanh_grad_kernel).grad(tanh_grad_grad));
    r.add(Op::new("SigmoidGrad", infer_sigmoid_grad, sigmoid_grad_kernel).grad(sigmoid_grad_grad));
    r.add(Op::new("SqrtGrad", infer_sqrt_grad, sqrt_grad_kernel).grad(sqrt_grad_grad));
    r.add(Op::new("RsqrtGrad", infer_rsqrt_grad, rsqrt_grad_kernel).grad(rsqrt_grad_grad));
    r.add(
        Op::new(
            "ReciprocalGrad",
            infer_reciprocal_grad,
            reciprocal_grad_kernel,
        )
        .grad(reciprocal_grad_grad),
    );
    r.add(Op::new("ReluGrad", infer_relu_grad, relu_grad_kernel).grad(relu_grad_grad));
    r.add(Op::new("Relu6Grad", infer_relu6_grad, relu6_grad_kernel).grad(relu6_grad_grad));
    r.add(Op::new("EluGrad", infer_elu_grad, elu_grad_kernel).grad(elu_grad_grad));
    r.add(
        Op::new("SoftplusGrad", infer_softplus_grad, softplus_grad_kernel).grad(softplus_grad_grad),
    );
}

impl Graph {
    /// `dy * (1 - y²)` for `y = tanh(x)` (`tf.raw_ops.TanhGrad`).
    pub fn tanh_grad(&mut self, y: Output, dy: Output) -> Result<Output> {
        binary(self, "TanhGrad", y, dy)
    }
    /// `dy * y * (1 - y)` for `y = sigmoid(x)` (`tf.raw_ops.SigmoidGrad`).
    pub fn sigmoid_grad(&mut self, y: Output, dy: Output) -> Result<Output> {
        binary(self, "SigmoidGrad", y, dy)
    }
    /// `0.5 * dy / y` for `y = sqrt(x)` (`tf.raw_ops.SqrtGrad`).
    pub fn sqrt_grad(&mut self, y: Output, dy: Output) -> Result<Output> {
        binary(self, "SqrtGrad", y, dy)
    }
    /// `-0.5 * dy * y³` for `y = rsqrt(x)` (`tf.raw_ops.RsqrtGrad`).
    pub fn rsqrt_grad(&mut self, y: Output, dy: Output) -> Result<Output> {
        binary(self, "RsqrtGrad", y, dy)
    }
    /// `-dy * y²` for `y = 1 / x` (`tf.raw_ops.ReciprocalGrad`).
    pub fn reciprocal_grad(&mut self, y: Output, dy: Output) -> Result<Output> {
        binary(self, "ReciprocalGrad", y, dy)
    }
    /// `gradients` where `features > 0`, else 0 (`tf.raw_ops.ReluGrad`).
    pub fn relu_grad(&mut self, gradients: Output, features: Output) -> Result<Output> {
        binary(self, "ReluGrad", gradients, features)
    }
    /// `gradients` where `0 < features < 6`, else 0 (`tf.raw_ops.Relu6Grad`).
    pub fn relu6_grad(&mut self, gradients: Output, features: Output) -> Result<Output> {
        binary(self, "Relu6Grad", gradients, features)
    }
    /// `gradients * (outputs + 1)` where the Elu `outputs < 0`, else `gradients`
    /// (`tf.raw_ops.EluGrad`).
    pub fn elu_grad(&mut self, gradients: Output, outputs: Output) -> Result<Output> {
        binary(self, "EluGrad", gradients, outputs)
    }
    /// `gradients / (1 + e^-features)` (`tf.raw_ops.SoftplusGrad`).
    pub fn softplus_grad(&mut self, gradients: Output, features: Output) -> Result<Output> {
        binary(self, "SoftplusGrad", gradients, features)
    }
}

#[cfg(test)]
mod tests {
    use crate::{DType, Graph, Output, PartialShape, Session, Tensor};

    type Builder = fn(&mut Graph, Output, Output) -> crate::Result<Output>;

    fn run2(f: Builder, a: Tensor, b: Tensor) -> crate::Result<Tensor> {
        let mut g = Graph::new();
        let (a, b) = (g.constant(a)?, g.constant(b)?);
        let y = f(&mut g, a, b)?;
        Ok(Session::new(&g).run(&[], &[y], &[])?.remove(0))
    }

    #[test]
    fn values_match_tensorflow() {
        let nan = f64::NAN;
        // Each row: tf.raw_ops.<Op>(first, second) in TensorFlow 2.21, float64.
        // (op, first input, second input, expected)
        type Case = (Builder, Vec<f64>, Vec<f64>, Vec<f64>);
        let cases: Vec<Case> = vec![
            // ReluGrad(gradients=[nan,1,2,3], features=[-1,0,1,nan]) = [nan,0,2,0]
            (
                Graph::relu_grad,
                vec![nan, 1.0, 2.0, 3.0],
                vec![-1.0, 0.0, 1.0, nan],
                vec![nan, 0.0, 2.0, 0.0],
            ),
            // Relu6Grad(gradients=[nan,1,2,3,4], features=[-1,0,6,5.9,nan]) = [nan,0,0,3,0]
            (
                Graph::relu6_grad,
                vec![nan, 1.0, 2.0, 3.0, 4.0],
                vec![-1.0, 0.0, 6.0, 5.9, nan],
                vec![nan, 0.0, 0.0, 3.0, 0.0],
            ),
            // EluGrad(gradients=[1.5,2,3], outputs=[-0.5,0,2]) = [0.75,2,3]
            (
                Graph::elu_grad,
                vec![1.5, 2.0, 3.0],
                vec![-0.5, 0.0, 2.0],
                vec![0.75, 2.0, 3.0],
            ),
            // SoftplusGrad(gradients=[1.5,2,3], features=[-0.5,0,2]) in float64
            (
                Graph::softplus_grad,
                vec![1.5, 2.0, 3.0],
                vec![-0.5, 0.0, 2.0],
                vec![0.5663110031972182, 1.0, 2.642391233933647],
            ),
            // TanhGrad(y=[0.5,-0.25], dy=[2,3]) = [1.5, 2.8125]
            (
                Graph::tanh_grad,
                vec![0.5, -0.25],
                vec![2.0, 3.0],
                vec![1.5, 2.8125],
            ),
            // SigmoidGrad(y=[0.5,0.25], dy=[2,3]) = [0.5, 0.5625]
            (
                Graph::sigmoid_grad,
                vec![0.5, 0.25],
                vec![2.0, 3.0],
                vec![0.5, 0.5625],
            ),
            // SqrtGrad(y=[0.5,4], dy=[2,3]) = [2, 0.375]
            (
                Graph::sqrt_grad,
                vec![0.5, 4.0],
                vec![2.0, 3.0],
                vec![2.0, 0.375],
            ),
            // RsqrtGrad(y=[0.5,4], dy=[2,3]) = [-0.125, -96]
            (
                Graph::rsqrt_grad,
                vec![0.5, 4.0],
                vec![2.0, 3.0],
                vec![-0.125, -96.0],
            ),
            // ReciprocalGrad(y=[0.5,4], dy=[2,3]) = [-0.5, -48]
            (
                Graph::reciprocal_grad,
                vec![0.5, 4.0],
                vec![2.0, 3.0],
                vec![-0.5, -48.0],
            ),
        ];
        for (f, a, b, want) in cases {
            for dt in [DType::Float64, DType::Float32] {
                let cast = |v: &[f64]| Tensor::vector(v.to_vec()).cast(dt).unwrap();
                let got = run2(f, cast(&a), cast(&b)).unwrap();
                assert_eq!(got.dtype(), dt);
                let tol = if dt == DType::Float32 { 1e-6 } else { 1e-14 };
                for (g, w) in got.to_f64_vec().iter().zip(&want) {
                    assert!(
                        (w.is_nan() && g.is_nan()) || (g - w).abs() <= tol * w.abs().max(1.0),
                        "{got:?} vs {want:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn relu_grads_on_integers() {
        // ReluGrad(gradients=int32 [5,6,7], features=[-1,0,2]) = [0,0,7]
        let got = run2(
            Graph::relu_grad,
            Tensor::from([5i32, 6, 7]),
            Tensor::from([-1i32, 0, 2]),
        )
        .unwrap();
        assert_eq!(got, Tensor::from([0i32, 0, 7]));
        let got = run2(
            Graph::relu6_grad,
            Tensor::from([5u8, 6, 7]),
            Tensor::from([0u8, 6, 2]),
        )
        .unwrap();
        assert_eq!(got, Tensor::from([0u8, 0, 7]));
    }

    #[test]
    fn shape_checks() {
        // Build time: incompatible shapes, wrong dtypes.
        let mut g = Graph::new();
        let a = g.constant(Tensor::from([1.0f32, 2.0])).unwrap();
        let b = g.constant(Tensor::from([1.0f32, 2.0, 3.0])).unwrap();
        let err = g.tanh_grad(a, b).unwrap_err().to_string();
        assert!(err.contains("same shape"), "{err}");
        let i = g.constant(Tensor::from([1i32, 2])).unwrap();
        let err = g.tanh_grad(i, i).unwrap_err().to_string();
        assert!(err.contains("floating-point"), "{err}");
        let err = g.relu_grad(a, i).unwrap_err().to_string();
        assert!(err.contains("dtype"), "{err}");
        // Run time: TensorFlow's messages.
        let p = g
            .placeholder(DType::Float32, PartialShape::unknown(), "p")
            .unwrap();
        let q = g
            .placeholder(DType::Float32, PartialShape::unknown(), "q")
            .unwrap();
        let t = g.tanh_grad(p, q).unwrap();
        let r = g.relu_grad(p, q).unwrap();
        let feeds = [
            (p, Tensor::from([1.0f32, 2.0])),
            (q, Tensor::from([1.0f32, 2.0, 3.0])),
        ];
        let sess = Session::new(&g);
        let err = sess.run(&feeds, &[t], &[]).unwrap_err().to_string();
        assert!(
            err.contains("must have same number of elements, got 2 and 3"),
            "{err}"
        );
        let err = sess.run(&feeds, &[r], &[]).unwrap_err().to_string();
        assert!(err.contains("Input 0: [2] != input 1: [3]"), "{err}");
        // Same element count, different shapes: the cwise ops take input 0's shape.
        let feeds = [
            (p, Tensor::from([[0.5f32, 0.5]])),
            (q, Tensor::from([2.0f32, 2.0])),
        ];
        let out = sess.run(&feeds, &[t], &[]).unwrap();
        assert_eq!(out[0], Tensor::from([[1.5f32, 1.5]]));
    }
}

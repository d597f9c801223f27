//! Binary arithmetic with NumPy broadcasting (AddV2, Sub, Mul, RealDiv, FloorDiv, FloorMod,
//! TruncateMod, Pow, Maximum, Minimum) and AddN over a list of same-shaped tensors.
//!
//! Integer arithmetic wraps on overflow, as TensorFlow's C++ kernels do in practice.
//!
//! Gradients follow TensorFlow 1's `math_grad.py`: each side's gradient is summed over the
//! axes broadcasting stretched and reshaped back (see `broadcast::reduce_to_operands`).

use super::broadcast::{reduce_to_operands, shapes_fully_specified_and_equal};
use super::{
    binary, check_family, cpu, infer_binary, kernel_fn, Family, InferCtx, InferResult,
    KernelBuildCtx, KernelResult,
};
use crate::graph::{AttrsExt, Graph, Output, TensorSpec};
use crate::ops::{GradCtx, Op, Registry};
use crate::tensor::{DType, Number, Tensor};
use crate::{with_dtype, Error, Result};

/// The integer and floating-point semantics TensorFlow gives FloorDiv, FloorMod and Pow.
trait FloorPow: Number {
    /// `floor(x / y)`; `None` on integer division by zero.
    fn floor_div(self, y: Self) -> Option<Self>;
    /// `x - floor(x / y) * y`, which has the sign of `y` (Python's `%`); `None` on integer
    /// division by zero.
    fn floor_mod(self, y: Self) -> Option<Self>;
    /// `x - trunc(x / y) * y`, which has the sign of `x` (C's `%` and `fmod`); `None` on
    /// integer division by zero.
    fn truncate_mod(self, y: Self) -> Option<Self>;
    /// `x^y`; `None` for an integer raised to a negative power.
    fn power(self, y: Self) -> Option<Self>;
}

/// `x^e` by squaring, wrapping on overflow, for a non-negative exponent.
macro_rules! int_pow {
    ($t:ty, $x:expr, $e:expr) => {{
        let (mut base, mut e, mut acc): ($t, $t, $t) = ($x, $e, 1);
        while e > 0 {
            if e & 1 == 1 {
                acc = acc.wrapping_mul(base);
            }
            e >>= 1;
            base = base.wrapping_mul(base);
        }
        acc
    }};
}

macro_rules! floor_pow_signed {
    ($t:ty) => {
        impl FloorPow for $t {
            fn floor_div(self, y: Self) -> Option<Self> {
                if y == 0 {
                    return None;
                }
                // Truncating division, one step down when inexact with mixed signs.
                let q = self.wrapping_div(y);
                let inexact = self.wrapping_rem(y) != 0;
                Some(if inexact && ((self < 0) != (y < 0)) {
                    q.wrapping_sub(1)
                } else {
                    q
                })
            }
            fn floor_mod(self, y: Self) -> Option<Self> {
                if y == 0 {
                    return None;
                }
                let m = self.wrapping_rem(y);
                Some(if m != 0 && ((y < 0) != (m < 0)) {
                    m.wrapping_add(y)
                } else {
                    m
                })
            }
            fn truncate_mod(self, y: Self) -> Option<Self> {
                if y == 0 {
                    None
                } else {
                    Some(self.wrapping_rem(y))
                }
            }
            fn power(self, y: Self) -> Option<Self> {
                if y < 0 {
                    None
                } else {
                    Some(int_pow!($t, self, y))
                }
            }
        }
    };
}
floor_pow_signed!(i32);
floor_pow_signed!(i64);

impl FloorPow for u8 {
    fn floor_div(self, y: Self) -> Option<Self> {
        self.checked_div(y)
    }
    fn floor_mod(self, y: Self) -> Option<Self> {
        self.checked_rem(y)
    }
    fn truncate_mod(self, y: Self) -> Option<Self> {
        self.checked_rem(y)
    }
    fn power(self, y: Self) -> Option<Self> {
        Some(int_pow!(u8, self, y))
    }
}

macro_rules! floor_pow_float {
    ($t:ty) => {
        impl FloorPow for $t {
            fn floor_div(self, y: Self) -> Option<Self> {
                Some((self / y).floor())
            }
            fn floor_mod(self, y: Self) -> Option<Self> {
                // `%` is C's fmod (truncated); shift it into y's sign as TF's floor_fmod.
                let m = self % y;
                Some(if m != 0.0 && ((y < 0.0) != (m < 0.0)) {
                    m + y
                } else {
                    m
                })
            }
            fn truncate_mod(self, y: Self) -> Option<Self> {
                Some(self % y)
            }
            fn power(self, y: Self) -> Option<Self> {
                Some(self.powf(y))
            }
        }
    };
}
floor_pow_float!(f32);
floor_pow_float!(f64);

const DIV_BY_ZERO: &str = "Integer division by zero";
const NEGATIVE_POW: &str = "Integers to negative integer powers are not allowed";

binary_op!(infer_add, add_kernel, Number, None, number, |x, y| x.add(y));
binary_op!(infer_sub, sub_kernel, Number, None, number, |x, y| x.sub(y));
binary_op!(infer_mul, mul_kernel, Number, None, number, |x, y| x.mul(y));
binary_op!(infer_realdiv, realdiv_kernel, Float, None, float, |x, y| x
    / y);
binary_op!(
    infer_maximum,
    maximum_kernel,
    Number,
    None,
    number,
    |x, y| x.max_of(y)
);
binary_op!(
    infer_minimum,
    minimum_kernel,
    Number,
    None,
    number,
    |x, y| x.min_of(y)
);
fallible_binary_op!(
    infer_floordiv,
    floordiv_kernel,
    Number,
    number,
    DIV_BY_ZERO,
    |x, y| x.floor_div(y)
);
fallible_binary_op!(
    infer_floormod,
    floormod_kernel,
    Number,
    number,
    DIV_BY_ZERO,
    |x, y| x.floor_mod(y)
);
fallible_binary_op!(
    infer_truncatemod,
    truncatemod_kernel,
    Signed,
    signed,
    DIV_BY_ZERO,
    |x, y| x.truncate_mod(y)
);
fallible_binary_op!(
    infer_pow,
    pow_kernel,
    Signed,
    signed,
    NEGATIVE_POW,
    |x, y| x.power(y)
);

/// `N` tensors of one dtype and shape.
fn infer_add_n(ctx: &InferCtx<'_>) -> InferResult {
    ctx.expect_min_inputs(1)?;
    let n = ctx.attrs().int_or("N", ctx.num_inputs() as i64)?;
    if n != ctx.num_inputs() as i64 {
        return Err(format!(
            "attr N is {n} but {} inputs were given",
            ctx.num_inputs()
        ));
    }
    let dt = ctx.same_dtype()?;
    // Lists add item by item (gradients of TensorLists).
    if dt != DType::Variant {
        check_family(ctx, 0, Family::Number)?;
    }
    ctx.check_t_attr(dt)?;
    let mut shape = ctx.shape(0).clone();
    for i in 1..ctx.num_inputs() {
        shape = shape
            .merge(ctx.shape(i))
            .map_err(|e| format!("all inputs must have the same shape, but input {i}: {e}"))?;
    }
    Ok(vec![TensorSpec::new(dt, shape)])
}

/// The element-wise sum of tensors of one shape (at least one).
fn sum_tensors(tensors: Vec<Tensor>) -> Result<Tensor> {
    let mut tensors = tensors.into_iter();
    let first = tensors
        .next()
        .ok_or_else(|| Error::invalid("AddN needs at least one input"))?;
    with_dtype!(number, first.dtype(), T => {
        let shape = first.shape().to_vec();
        let mut acc = first.into_vec::<T>()?;
        for (i, x) in tensors.enumerate() {
            if x.shape() != shape.as_slice() {
                return Err(Error::invalid(format!(
                    "Inputs to operation AddN must have the same size and shape. \
                     Input 0: {shape:?} != input {}: {:?}",
                    i + 1,
                    x.shape()
                )));
            }
            acc.iter_mut()
                .zip(x.as_slice::<T>()?)
                .for_each(|(a, &b)| *a = a.add(b));
        }
        Ok(Tensor::from_parts(shape, acc))
    })
}

/// `AddN`: dense tensors, or TensorLists item by item (the gradients of lists).
fn add_n_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    if ctx.input_dtype(0) == DType::Variant {
        return crate::ops::list::arith::add_n_kernel(sum_tensors);
    }
    kernel_fn(|k| {
        let inputs = (0..k.num_inputs())
            .map(|i| k.take_input(i))
            .collect::<Result<Vec<_>>>()?;
        k.push_output(sum_tensors(inputs)?);
        Ok(())
    })
}

type GradResult = Result<Vec<Option<Output>>>;

/// The node's two operands and the incoming gradient.
fn operands(ctx: &GradCtx<'_>) -> (Output, Output, Output) {
    (ctx.input(0), ctx.input(1), ctx.grad(0))
}

/// TensorFlow's `_AddGrad`: `grad` to both sides, summed over broadcast axes.
fn add_grad(ctx: &mut GradCtx<'_>) -> GradResult {
    let (x, y, grad) = operands(ctx);
    let g = &mut *ctx.graph;
    if shapes_fully_specified_and_equal(g, x, y, grad) {
        return Ok(vec![Some(grad), Some(grad)]);
    }
    reduce_to_operands(g, x, y, Some(grad), Some(grad), None)
}

/// TensorFlow's `_SubGrad`: `grad` and `-grad` (negated after the reduction, as TensorFlow 1
/// writes it).
fn sub_grad(ctx: &mut GradCtx<'_>) -> GradResult {
    let (x, y, grad) = operands(ctx);
    let g = &mut *ctx.graph;
    if shapes_fully_specified_and_equal(g, x, y, grad) {
        return Ok(vec![Some(grad), Some(g.neg(grad)?)]);
    }
    reduce_to_operands(g, x, y, Some(grad), Some(grad), Some(Graph::neg))
}

/// TensorFlow's `_MulGrad`: `grad * y` and `x * grad`. TensorFlow takes the shortcut
/// without the reduction for int32 and float32 only (the other dtypes it has include
/// complex ones, which need a conjugate); here it applies to every dtype, all of them real,
/// so that float64 gradients need no Reshape either.
fn mul_grad(ctx: &mut GradCtx<'_>) -> GradResult {
    let (x, y, grad) = operands(ctx);
    let g = &mut *ctx.graph;
    if shapes_fully_specified_and_equal(g, x, y, grad) {
        return Ok(vec![Some(g.mul(grad, y)?), Some(g.mul(grad, x)?)]);
    }
    let gx = g.mul(grad, y)?;
    let gy = g.mul(x, grad)?;
    reduce_to_operands(g, x, y, Some(gx), Some(gy), None)
}

/// TensorFlow's `_RealDivGrad`: `grad / y` and `grad * ((-x / y) / y)`.
fn realdiv_grad(ctx: &mut GradCtx<'_>) -> GradResult {
    let (x, y, grad) = operands(ctx);
    let g = &mut *ctx.graph;
    let gx = g.div(grad, y)?;
    let nx = g.neg(x)?;
    let q = g.div(nx, y)?;
    let q = g.div(q, y)?;
    let gy = g.mul(grad, q)?;
    reduce_to_operands(g, x, y, Some(gx), Some(gy), None)
}

/// TensorFlow's `_FloorModGrad`: `grad` and `grad * -floor_div(x, y)`.
fn floormod_grad(ctx: &mut GradCtx<'_>) -> GradResult {
    let (x, y, grad) = operands(ctx);
    let g = &mut *ctx.graph;
    let q = g.floordiv(x, y)?;
    let nq = g.neg(q)?;
    let gy = g.mul(grad, nq)?;
    reduce_to_operands(g, x, y, Some(grad), Some(gy), None)
}

/// TensorFlow's `_PowGrad`: `grad * y * x^(y-1)` and `grad * z * log(x)` where `x > 0`, 0
/// elsewhere (log taken of a safe `x` so that no NaN reaches second derivatives).
fn pow_grad(ctx: &mut GradCtx<'_>) -> GradResult {
    let (x, y, grad) = operands(ctx);
    let z = ctx.output(0);
    let g = &mut *ctx.graph;
    let dt = g.dtype(x);
    let t = g.mul(grad, y)?;
    let one = g.scalar_like(dt, 1.0)?;
    let ym1 = g.sub(y, one)?;
    let p = g.pow(x, ym1)?;
    let gx = g.mul(t, p)?;
    let zero = g.scalar_like(dt, 0.0)?;
    let mask = g.greater(x, zero)?;
    let ones = g.ones_like(x)?;
    let safe_x = g.select(mask, x, ones)?;
    let log = g.log(safe_x)?;
    let zeros = g.zeros_like(x)?;
    let log_x = g.select(mask, log, zeros)?;
    let t = g.mul(grad, z)?;
    let gy = g.mul(t, log_x)?;
    reduce_to_operands(g, x, y, Some(gx), Some(gy), None)
}

/// TensorFlow 1's `_MaximumMinimumGrad`: the gradient goes to `x` where `select(x, y)`
/// holds (`x >= y` for Maximum, `x <= y` for Minimum, so ties go to `x`), to `y` elsewhere.
fn maximum_minimum_grad(
    ctx: &mut GradCtx<'_>,
    select: fn(&mut Graph, Output, Output) -> Result<Output>,
) -> GradResult {
    let (x, y, grad) = operands(ctx);
    let g = &mut *ctx.graph;
    let shape = g.shape_of(grad)?;
    let zero = g.scalar_like(g.dtype(grad), 0.0)?;
    let zeros = g.fill(shape, zero)?;
    let mask = select(g, x, y)?;
    let gx = g.select(mask, grad, zeros)?;
    let gy = g.select(mask, zeros, grad)?;
    reduce_to_operands(g, x, y, Some(gx), Some(gy), None)
}

/// TensorFlow's `_MaximumGrad`.
fn maximum_grad(ctx: &mut GradCtx<'_>) -> GradResult {
    maximum_minimum_grad(ctx, Graph::greater_equal)
}

/// TensorFlow's `_MinimumGrad`.
fn minimum_grad(ctx: &mut GradCtx<'_>) -> GradResult {
    maximum_minimum_grad(ctx, Graph::less_equal)
}

/// TensorFlow's `_AddNGrad`: the gradient, unchanged, to every input.
fn add_n_grad(ctx: &mut GradCtx<'_>) -> GradResult {
    let n = ctx.graph.node(ctx.node).inputs().len();
    Ok(vec![Some(ctx.grad(0)); n])
}

pub(super) fn register(r: &mut Registry) {
    r.add(Op::new("AddV2", infer_add, add_kernel).grad(add_grad));
    r.add(Op::new("Sub", infer_sub, sub_kernel).grad(sub_grad));
    r.add(Op::new("Mul", infer_mul, mul_kernel).grad(mul_grad));
    r.add(Op::new("RealDiv", infer_realdiv, realdiv_kernel).grad(realdiv_grad));
    // TensorFlow's FloorDiv gradient returns None for both inputs.
    r.add(Op::new("FloorDiv", infer_floordiv, floordiv_kernel).no_grad());
    r.add(Op::new("FloorMod", infer_floormod, floormod_kernel).grad(floormod_grad));
    // TensorFlow registers no gradient for TruncateMod: differentiating through it is an
    // error.
    r.add(Op::new(
        "TruncateMod",
        infer_truncatemod,
        truncatemod_kernel,
    ));
    r.add(Op::new("Pow", infer_pow, pow_kernel).grad(pow_grad));
    r.add(Op::new("Maximum", infer_maximum, maximum_kernel).grad(maximum_grad));
    r.add(Op::new("Minimum", infer_minimum, minimum_kernel).grad(minimum_grad));
    r.add(Op::new("AddN", infer_add_n, add_n_kernel).grad(add_n_grad));
}

impl Graph {
    /// `x + y` with broadcasting (`tf.add`, op AddV2).
    pub fn add(&mut self, x: Output, y: Output) -> Result<Output> {
        binary(self, "AddV2", x, y)
    }
    /// `x - y` (`tf.subtract`).
    pub fn sub(&mut self, x: Output, y: Output) -> Result<Output> {
        binary(self, "Sub", x, y)
    }
    /// `x * y` (`tf.multiply`).
    pub fn mul(&mut self, x: Output, y: Output) -> Result<Output> {
        binary(self, "Mul", x, y)
    }
    /// `x / y` for floats (`tf.divide`, op RealDiv).
    pub fn div(&mut self, x: Output, y: Output) -> Result<Output> {
        binary(self, "RealDiv", x, y)
    }
    /// `floor(x / y)` (`tf.math.floordiv`, op FloorDiv); integer division by zero fails at
    /// run time.
    pub fn floordiv(&mut self, x: Output, y: Output) -> Result<Output> {
        binary(self, "FloorDiv", x, y)
    }
    /// Python-style remainder with the sign of `y` (`tf.math.floormod`, op FloorMod), so that
    /// `floordiv(x, y) * y + floormod(x, y) == x`.
    pub fn floormod(&mut self, x: Output, y: Output) -> Result<Output> {
        binary(self, "FloorMod", x, y)
    }
    /// C-style remainder with the sign of `x` (`tf.truncatemod`, op TruncateMod); integer
    /// division by zero fails at run time. It has no gradient, as in TensorFlow.
    pub fn truncatemod(&mut self, x: Output, y: Output) -> Result<Output> {
        binary(self, "TruncateMod", x, y)
    }
    /// `x^y` (`tf.pow`); an integer raised to a negative power fails at run time.
    pub fn pow(&mut self, x: Output, y: Output) -> Result<Output> {
        binary(self, "Pow", x, y)
    }
    /// Elementwise larger value; NaN wins (`tf.maximum`).
    pub fn maximum(&mut self, x: Output, y: Output) -> Result<Output> {
        binary(self, "Maximum", x, y)
    }
    /// Elementwise smaller value; NaN wins (`tf.minimum`).
    pub fn minimum(&mut self, x: Output, y: Output) -> Result<Output> {
        binary(self, "Minimum", x, y)
    }
    /// Sum of same-shaped tensors (`tf.math.add_n`, op AddN with attr `N`).
    pub fn add_n(&mut self, inputs: &[Output]) -> Result<Output> {
        let Some(&first) = inputs.first() else {
            return Err(Error::invalid("add_n needs at least one input"));
        };
        let t = self.dtype(first);
        self.op("AddN")
            .inputs(inputs)
            .attr("N", inputs.len() as i64)
            .attr("T", t)
            .build_output()
    }
}

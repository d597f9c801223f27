//! Comparisons (bool output, NumPy broadcasting) and logical ops on bool tensors. None of
//! them is differentiable (TensorFlow registers them with `NotDifferentiable`).

use super::{
    binary, check_family, cpu, infer_binary, infer_unary, kernel_fn, Family, InferCtx, InferResult,
    KernelBuildCtx, KernelResult,
};
use crate::graph::{AttrsExt, Graph, Output, TensorSpec};
use crate::ops::{Op, Registry};
use crate::tensor::{DType, PartialShape, Tensor};
use crate::{with_dtype, Result};

const INCOMPATIBLE_SHAPE_ERROR: &str = "incompatible_shape_error";

/// Equal / NotEqual: any dtype. With `incompatible_shape_error = false`, shapes that do not
/// broadcast give a scalar (false for Equal, true for NotEqual) instead of an error, so the
/// output shape is only known when both input shapes are.
fn infer_equality(ctx: &InferCtx<'_>) -> InferResult {
    if ctx.attrs().bool_or(INCOMPATIBLE_SHAPE_ERROR, true)? {
        return infer_binary(ctx, Family::All, Some(DType::Bool));
    }
    ctx.expect_inputs(2)?;
    let dt = ctx.same_dtype()?;
    check_family(ctx, 0, Family::All)?;
    ctx.check_t_attr(dt)?;
    let (a, b) = (ctx.shape(0), ctx.shape(1));
    let shape = match a.broadcast(b) {
        Err(_) => PartialShape::scalar(),
        Ok(s) if a.is_fully_defined() && b.is_fully_defined() => s,
        Ok(_) => PartialShape::unknown(),
    };
    Ok(vec![TensorSpec::new(DType::Bool, shape)])
}

/// Equal (`equal = true`) or NotEqual (`equal = false`).
fn equality_kernel(ctx: &KernelBuildCtx<'_>, equal: bool) -> KernelResult {
    let strict = ctx.attrs().bool_or(INCOMPATIBLE_SHAPE_ERROR, true)?;
    with_dtype!(any, ctx.input_dtype(0), T => kernel_fn(move |k| {
        let (a, b) = (k.take_input(0)?, k.take_input(1)?);
        if !strict && cpu::broadcast_shape(a.shape(), b.shape()).is_err() {
            k.push_output(Tensor::scalar(!equal));
            return Ok(());
        }
        k.push_output(cpu::zip(a, b, |x: T, y: T| (x == y) == equal)?);
        Ok(())
    }))
}

fn equal_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    equality_kernel(ctx, true)
}

fn not_equal_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    equality_kernel(ctx, false)
}

const BOOL: Option<DType> = Some(DType::Bool);
binary_op!(infer_less, less_kernel, Number, BOOL, number, |x, y| x < y);
binary_op!(
    infer_less_equal,
    less_equal_kernel,
    Number,
    BOOL,
    number,
    |x, y| x <= y
);
binary_op!(
    infer_greater,
    greater_kernel,
    Number,
    BOOL,
    number,
    |x, y| x > y
);
binary_op!(
    infer_greater_equal,
    greater_equal_kernel,
    Number,
    BOOL,
    number,
    |x, y| x >= y
);

fn infer_logical_binary(ctx: &InferCtx<'_>) -> InferResult {
    infer_binary(ctx, Family::Bool, None)
}

fn logical_and_kernel(_: &KernelBuildCtx<'_>) -> KernelResult {
    kernel_fn(|k| {
        let (a, b) = (k.take_input(0)?, k.take_input(1)?);
        k.push_output(cpu::zip(a, b, |x: bool, y: bool| x & y)?);
        Ok(())
    })
}

fn logical_or_kernel(_: &KernelBuildCtx<'_>) -> KernelResult {
    kernel_fn(|k| {
        let (a, b) = (k.take_input(0)?, k.take_input(1)?);
        k.push_output(cpu::zip(a, b, |x: bool, y: bool| x | y)?);
        Ok(())
    })
}

fn infer_logical_not(ctx: &InferCtx<'_>) -> InferResult {
    infer_unary(ctx, Family::Bool)
}

fn logical_not_kernel(_: &KernelBuildCtx<'_>) -> KernelResult {
    kernel_fn(|k| {
        let a = k.take_input(0)?;
        k.push_output(cpu::map(a, |x: bool| !x)?);
        Ok(())
    })
}

pub(super) fn register(r: &mut Registry) {
    let equality_defaults = || vec![(INCOMPATIBLE_SHAPE_ERROR, true.into())];
    r.add(
        Op::new("Equal", infer_equality, equal_kernel)
            .no_grad()
            .defaults(equality_defaults),
    );
    r.add(
        Op::new("NotEqual", infer_equality, not_equal_kernel)
            .no_grad()
            .defaults(equality_defaults),
    );
    r.add(Op::new("Less", infer_less, less_kernel).no_grad());
    r.add(Op::new("LessEqual", infer_less_equal, less_equal_kernel).no_grad());
    r.add(Op::new("Greater", infer_greater, greater_kernel).no_grad());
    r.add(Op::new("GreaterEqual", infer_greater_equal, greater_equal_kernel).no_grad());
    r.add(Op::new("LogicalAnd", infer_logical_binary, logical_and_kernel).no_grad());
    r.add(Op::new("LogicalOr", infer_logical_binary, logical_or_kernel).no_grad());
    r.add(Op::new("LogicalNot", infer_logical_not, logical_not_kernel).no_grad());
}

/// Adds Equal or NotEqual with the attrs TensorFlow's Python wrapper sets.
fn equality(g: &mut Graph, op: &str, x: Output, y: Output) -> Result<Output> {
    let t = g.dtype(x);
    g.op(op)
        .input(x)
        .input(y)
        .attr("T", t)
        .attr(INCOMPATIBLE_SHAPE_ERROR, true)
        .build_output()
}

impl Graph {
    /// `x == y` elementwise with broadcasting, any dtype (`tf.equal`); NaN is never equal.
    pub fn equal(&mut self, x: Output, y: Output) -> Result<Output> {
        equality(self, "Equal", x, y)
    }
    /// `x != y` elementwise (`tf.not_equal`).
    pub fn not_equal(&mut self, x: Output, y: Output) -> Result<Output> {
        equality(self, "NotEqual", x, y)
    }
    /// `x < y` elementwise (`tf.less`).
    pub fn less(&mut self, x: Output, y: Output) -> Result<Output> {
        binary(self, "Less", x, y)
    }
    /// `x <= y` elementwise (`tf.less_equal`).
    pub fn less_equal(&mut self, x: Output, y: Output) -> Result<Output> {
        binary(self, "LessEqual", x, y)
    }
    /// `x > y` elementwise (`tf.greater`).
    pub fn greater(&mut self, x: Output, y: Output) -> Result<Output> {
        binary(self, "Greater", x, y)
    }
    /// `x >= y` elementwise (`tf.greater_equal`).
    pub fn greater_equal(&mut self, x: Output, y: Output) -> Result<Output> {
        binary(self, "GreaterEqual", x, y)
    }
    /// `x && y` on bool tensors with broadcasting (`tf.logical_and`).
    pub fn logical_and(&mut self, x: Output, y: Output) -> Result<Output> {
        self.op("LogicalAnd").input(x).input(y).build_output()
    }
    /// `x || y` on bool tensors with broadcasting (`tf.logical_or`).
    pub fn logical_or(&mut self, x: Output, y: Output) -> Result<Output> {
        self.op("LogicalOr").input(x).input(y).build_output()
    }
    /// `!x` on a bool tensor (`tf.logical_not`).
    pub fn logical_not(&mut self, x: Output) -> Result<Output> {
        self.op("LogicalNot").input(x).build_output()
    }
}

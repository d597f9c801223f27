//! Elementwise math: arithmetic with NumPy broadcasting, unary functions, comparisons,
//! logic, Select, Cast and AddN. Each op is one line in [`register`], built from a few
//! generic pieces: an inference rule per arity and a kernel that maps a closure over
//! [`cpu::map`] or [`cpu::zip`].

use super::{kernel_fn, InferCtx, KernelBuildCtx, Op, Registry};
use crate::device::cpu;
use crate::graph::{AttrsExt, Graph, Output, TensorSpec};
use crate::tensor::{DType, Number};
use crate::{with_dtype, Result};

pub(crate) type InferResult = std::result::Result<Vec<TensorSpec>, String>;
pub(crate) type KernelResult = std::result::Result<Box<dyn super::Kernel>, String>;

/// Dtype families an op accepts, as TensorFlow registers kernels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Family {
    /// float32, float64
    Float,
    /// floats and signed integers
    Signed,
    /// every numeric dtype
    Number,
}

impl Family {
    pub(crate) fn dtypes(self) -> &'static [DType] {
        use DType::*;
        match self {
            Family::Float => &[Float32, Float64],
            Family::Signed => &[Float32, Float64, Int32, Int64],
            Family::Number => &[Float32, Float64, Int32, Int64, UInt8],
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

binary_op!(infer_add, add_kernel, Number, None, number, |x, y| x.add(y));
binary_op!(infer_sub, sub_kernel, Number, None, number, |x, y| x.sub(y));
binary_op!(infer_mul, mul_kernel, Number, None, number, |x, y| x.mul(y));
binary_op!(infer_realdiv, realdiv_kernel, Float, None, float, |x, y| x
    / y);

unary_op!(infer_neg, neg_kernel, Signed, signed, |x| T::ZERO.sub(x));
unary_op!(infer_exp, exp_kernel, Float, float, |x| x.exp());
unary_op!(infer_log, log_kernel, Float, float, |x| x.ln());

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
    Ok(vec![TensorSpec::new(dst, ctx.shape(0).clone())])
}

fn cast_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let dst = ctx.output_dtype(0);
    kernel_fn(move |k| {
        let x = k.take_input(0)?;
        k.push_output(x.cast(dst)?);
        Ok(())
    })
}

pub(crate) fn register(r: &mut Registry) {
    r.add(Op::new("AddV2", infer_add, add_kernel));
    r.add(Op::new("Sub", infer_sub, sub_kernel));
    r.add(Op::new("Mul", infer_mul, mul_kernel));
    r.add(Op::new("RealDiv", infer_realdiv, realdiv_kernel));
    r.add(Op::new("Neg", infer_neg, neg_kernel));
    r.add(Op::new("Exp", infer_exp, exp_kernel));
    r.add(Op::new("Log", infer_log, log_kernel));
    r.add(Op::new("Cast", infer_cast, cast_kernel).defaults(|| vec![("Truncate", false.into())]));
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
    /// `-x` (`tf.negative`).
    pub fn neg(&mut self, x: Output) -> Result<Output> {
        unary(self, "Neg", x)
    }
    /// `e^x` (`tf.exp`).
    pub fn exp(&mut self, x: Output) -> Result<Output> {
        unary(self, "Exp", x)
    }
    /// Natural log (`tf.math.log`); integers must be Cast first, as in TensorFlow.
    pub fn log(&mut self, x: Output) -> Result<Output> {
        unary(self, "Log", x)
    }
    /// Converts to another dtype (`tf.cast`).
    pub fn cast(&mut self, x: Output, dtype: DType) -> Result<Output> {
        let src = self.dtype(x);
        self.op("Cast")
            .input(x)
            .attr("SrcT", src)
            .attr("DstT", dtype)
            .build_output()
    }
}

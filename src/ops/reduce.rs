//! Reductions: Sum, Mean, Max, Min, Prod over a set of axes (`reduction_indices`), and
//! ArgMax / ArgMin along one dimension. The kernels share one engine (`engine`); their
//! gradients are in `grad`. Also the ops those gradients are built from: Cumsum and Cumprod
//! (`scan`) and DynamicStitch (`stitch`).

pub(crate) mod engine;
mod grad;
#[cfg(test)]
mod grad_cases;
#[cfg(test)]
mod grad_tests;
mod scan;
mod stitch;
#[cfg(test)]
mod tests;

use super::math::{check_family, Family};
use super::{kernel_fn, InferCtx, KernelBuildCtx, KernelBuildFn, Op, Registry};
use crate::graph::{AttrValue, AttrsExt, Graph, Output, TensorSpec};
use crate::ops::{InferResult, KernelResult};
use crate::tensor::{DType, PartialShape, Tensor};
use crate::{with_dtype, Error, Result};
use engine::{
    arg_reduce, reduce, reduced_axes, reduced_shape, AnyReduction, Max, Mean, Min, Prod, Sum,
};

/// Checks an int32/int64 index input (`reduction_indices`, `dimension`) against its type
/// attr (`Tidx`).
fn check_index_input(ctx: &InferCtx<'_>, i: usize, what: &str) -> std::result::Result<(), String> {
    let dt = ctx.dtype(i);
    if dt != DType::Int32 && dt != DType::Int64 {
        return Err(format!(
            "{what} (input {i}) must be int32 or int64, got {dt}"
        ));
    }
    let tidx = ctx.attrs().dtype_or("Tidx", dt)?;
    if tidx != dt {
        return Err(format!(
            "attr Tidx is {tidx} but {what} (input {i}) is {dt}"
        ));
    }
    Ok(())
}

/// Sum, Mean, Max, Min, Prod: `input` of a numeric dtype, `reduction_indices` a scalar or
/// vector of axes. The output shape is known when the axes are a build-time constant; with
/// `keep_dims` its rank is known regardless.
fn infer_reduction(ctx: &InferCtx<'_>) -> InferResult {
    ctx.expect_inputs(2)?;
    let dt = check_family(ctx, 0, Family::Number)?;
    ctx.check_t_attr(dt)?;
    check_index_input(ctx, 1, "reduction_indices")?;
    let keep_dims = ctx.attrs().bool_or("keep_dims", false)?;
    if let Some(r) = ctx.shape(1).rank().filter(|&r| r > 1) {
        return Err(format!(
            "reduction_indices must be a scalar or a vector of axes, but has rank {r} (shape {})",
            ctx.shape(1)
        ));
    }
    let shape = match (ctx.constant_ints(1), ctx.shape(0).dims()) {
        (Some(axes), Some(dims)) => {
            let reduced = reduced_axes(&axes, dims.len())?;
            PartialShape::new(reduced_shape(dims, &reduced, keep_dims, Some(1)))
        }
        (_, Some(dims)) if keep_dims => PartialShape::with_rank(dims.len()),
        _ => PartialShape::unknown(),
    };
    Ok(vec![TensorSpec::new(dt, shape)])
}

/// A reduction kernel for reduction `R`, `keep_dims` resolved once.
fn reduction_kernel<R: AnyReduction>(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let keep_dims = ctx.attrs().bool_or("keep_dims", false)?;
    with_dtype!(number, ctx.input_dtype(0), T => kernel_fn(move |k| {
        let axes = k.input(1)?.to_i64_vec()?;
        let x = k.take_input(0)?;
        k.push_output(reduce::<T, R>(x, &axes, keep_dims)?);
        Ok(())
    }))
}

/// ArgMax / ArgMin: `input` of any numeric dtype or bool, `dimension` a scalar.
fn infer_arg(ctx: &InferCtx<'_>) -> InferResult {
    ctx.expect_inputs(2)?;
    let dt = check_family(ctx, 0, Family::All)?;
    ctx.check_t_attr(dt)?;
    check_index_input(ctx, 1, "dimension")?;
    let out = ctx.attrs().dtype_or("output_type", DType::Int64)?;
    if out != DType::Int32 && out != DType::Int64 {
        return Err(format!(
            "attr output_type must be int32 or int64, got {out}"
        ));
    }
    if let Some(r) = ctx.shape(1).rank().filter(|&r| r != 0) {
        return Err(format!(
            "dimension must be a scalar, but has rank {r} (shape {})",
            ctx.shape(1)
        ));
    }
    let shape = match (ctx.shape(0).dims(), ctx.constant_ints(1)) {
        (None, _) => PartialShape::unknown(),
        (Some([]), _) => {
            return Err("input must have at least one dimension to take an index along".into())
        }
        (Some(dims), None) => PartialShape::with_rank(dims.len() - 1),
        (Some(dims), Some(axis)) => {
            let rank = dims.len() as i64;
            let a = match axis.as_slice() {
                [a] if (-rank..rank).contains(a) => {
                    if *a < 0 {
                        a + rank
                    } else {
                        *a
                    }
                }
                _ => {
                    return Err(format!(
                        "dimension {axis:?} must be in the range [{}, {rank}), where {rank} is \
                         the number of dimensions in the input",
                        -rank
                    ))
                }
            };
            let mut kept = dims.to_vec();
            kept.remove(a as usize);
            PartialShape::new(kept)
        }
    };
    Ok(vec![TensorSpec::new(out, shape)])
}

/// ArgMax (`max = true`) or ArgMin.
fn arg_kernel(ctx: &KernelBuildCtx<'_>, max: bool) -> KernelResult {
    let out = ctx.output_dtype(0);
    with_dtype!(any, ctx.input_dtype(0), T => kernel_fn(move |k| {
        let dim = k.input(1)?;
        if dim.rank() != 0 {
            return Err(Error::invalid(format!(
                "dim must be a scalar, but received tensor of shape: {:?}",
                dim.shape()
            )));
        }
        let axis = dim.to_i64_vec()?[0];
        let x = k.input(0)?;
        let result = match out {
            DType::Int32 => arg_reduce::<T, i32>(x, axis, max)?,
            _ => arg_reduce::<T, i64>(x, axis, max)?,
        };
        k.push_output(result);
        Ok(())
    }))
}

fn argmax_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    arg_kernel(ctx, true)
}

fn argmin_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    arg_kernel(ctx, false)
}

fn reduction_defaults() -> Vec<(&'static str, AttrValue)> {
    vec![("keep_dims", false.into()), ("Tidx", DType::Int32.into())]
}

fn arg_defaults() -> Vec<(&'static str, AttrValue)> {
    vec![
        ("Tidx", DType::Int32.into()),
        ("output_type", DType::Int64.into()),
    ]
}

pub(crate) fn register(r: &mut Registry) {
    let reduction = |name: &'static str, kernel: KernelBuildFn| {
        Op::new(name, infer_reduction, kernel).defaults(reduction_defaults)
    };
    r.add(reduction("Sum", reduction_kernel::<Sum>).grad(grad::sum_grad));
    r.add(reduction("Mean", reduction_kernel::<Mean>).grad(grad::mean_grad));
    r.add(reduction("Max", reduction_kernel::<Max>).grad(grad::min_or_max_grad));
    r.add(reduction("Min", reduction_kernel::<Min>).grad(grad::min_or_max_grad));
    r.add(reduction("Prod", reduction_kernel::<Prod>).grad(grad::prod_grad));
    // TensorFlow's ArgMax/ArgMin gradients return None for both inputs.
    r.add(
        Op::new("ArgMax", infer_arg, argmax_kernel)
            .no_grad()
            .defaults(arg_defaults),
    );
    r.add(
        Op::new("ArgMin", infer_arg, argmin_kernel)
            .no_grad()
            .defaults(arg_defaults),
    );
    scan::register(r);
    stitch::register(r);
}

/// `v` as an int32, or an error naming it.
fn to_int32(v: i64) -> Result<i32> {
    i32::try_from(v).map_err(|_| Error::invalid(format!("{v} does not fit in int32")))
}

/// An int32 vector constant: the `reduction_indices` TensorFlow's Python makes, and the
/// shapes the gradients compute while building.
fn int32_vector(g: &mut Graph, values: &[i64]) -> Result<Output> {
    let v = values
        .iter()
        .map(|&a| to_int32(a))
        .collect::<Result<Vec<i32>>>()?;
    g.constant(Tensor::vector(v))
}

/// An int32 scalar constant (an axis).
fn int32_scalar(g: &mut Graph, value: i64) -> Result<Output> {
    let v = to_int32(value)?;
    g.constant(v)
}

/// Adds a reduction node with the attrs TensorFlow's Python wrapper sets.
fn reduction(g: &mut Graph, op: &str, x: Output, axes: Output, keep_dims: bool) -> Result<Output> {
    let (t, tidx) = (g.dtype(x), g.dtype(axes));
    g.op(op)
        .input(x)
        .input(axes)
        .attr("keep_dims", keep_dims)
        .attr("T", t)
        .attr("Tidx", tidx)
        .build_output()
}

/// Adds ArgMax or ArgMin along `axis` (an int32 constant).
fn arg(g: &mut Graph, op: &str, x: Output, axis: i64, output_type: DType) -> Result<Output> {
    let dim = int32_scalar(g, axis)?;
    let t = g.dtype(x);
    g.op(op)
        .input(x)
        .input(dim)
        .attr("T", t)
        .attr("Tidx", DType::Int32)
        .attr("output_type", output_type)
        .build_output()
}

impl Graph {
    /// Sum over `axes` (negative counts from the end; an empty list reduces nothing, so list
    /// every axis to reduce all), as `tf.reduce_sum` (op Sum). Integers wrap; float32 sums
    /// accumulate pairwise in float32.
    pub fn reduce_sum(&mut self, x: Output, axes: &[i64], keep_dims: bool) -> Result<Output> {
        let axes = int32_vector(self, axes)?;
        self.reduce_sum_t(x, axes, keep_dims)
    }
    /// [`Graph::reduce_sum`] with the axes given by an int32/int64 tensor.
    pub fn reduce_sum_t(&mut self, x: Output, axes: Output, keep_dims: bool) -> Result<Output> {
        reduction(self, "Sum", x, axes, keep_dims)
    }
    /// Mean over `axes` (`tf.reduce_mean`, op Mean): integer means divide truncating toward
    /// zero; the mean of nothing is NaN for floats and 0 for integers.
    pub fn reduce_mean(&mut self, x: Output, axes: &[i64], keep_dims: bool) -> Result<Output> {
        let axes = int32_vector(self, axes)?;
        self.reduce_mean_t(x, axes, keep_dims)
    }
    /// [`Graph::reduce_mean`] with the axes given by a tensor.
    pub fn reduce_mean_t(&mut self, x: Output, axes: Output, keep_dims: bool) -> Result<Output> {
        reduction(self, "Mean", x, axes, keep_dims)
    }
    /// Maximum over `axes` (`tf.reduce_max`, op Max); NaN propagates, the maximum of nothing
    /// is -inf (the lowest integer).
    pub fn reduce_max(&mut self, x: Output, axes: &[i64], keep_dims: bool) -> Result<Output> {
        let axes = int32_vector(self, axes)?;
        self.reduce_max_t(x, axes, keep_dims)
    }
    /// [`Graph::reduce_max`] with the axes given by a tensor.
    pub fn reduce_max_t(&mut self, x: Output, axes: Output, keep_dims: bool) -> Result<Output> {
        reduction(self, "Max", x, axes, keep_dims)
    }
    /// Minimum over `axes` (`tf.reduce_min`, op Min); NaN propagates, the minimum of nothing
    /// is +inf (the highest integer).
    pub fn reduce_min(&mut self, x: Output, axes: &[i64], keep_dims: bool) -> Result<Output> {
        let axes = int32_vector(self, axes)?;
        self.reduce_min_t(x, axes, keep_dims)
    }
    /// [`Graph::reduce_min`] with the axes given by a tensor.
    pub fn reduce_min_t(&mut self, x: Output, axes: Output, keep_dims: bool) -> Result<Output> {
        reduction(self, "Min", x, axes, keep_dims)
    }
    /// Product over `axes` (`tf.reduce_prod`, op Prod); integers wrap, the product of
    /// nothing is 1.
    pub fn reduce_prod(&mut self, x: Output, axes: &[i64], keep_dims: bool) -> Result<Output> {
        let axes = int32_vector(self, axes)?;
        self.reduce_prod_t(x, axes, keep_dims)
    }
    /// [`Graph::reduce_prod`] with the axes given by a tensor.
    pub fn reduce_prod_t(&mut self, x: Output, axes: Output, keep_dims: bool) -> Result<Output> {
        reduction(self, "Prod", x, axes, keep_dims)
    }
    /// Index of the largest value along `axis` (`tf.math.argmax`, op ArgMax), the first on
    /// ties; NaN is never picked. `output_type` is int32 or int64 (TensorFlow's default).
    pub fn argmax(&mut self, x: Output, axis: i64, output_type: DType) -> Result<Output> {
        arg(self, "ArgMax", x, axis, output_type)
    }
    /// Index of the smallest value along `axis` (`tf.math.argmin`, op ArgMin).
    pub fn argmin(&mut self, x: Output, axis: i64, output_type: DType) -> Result<Output> {
        arg(self, "ArgMin", x, axis, output_type)
    }
}

/// Gradient checks of this family's differentiable ops (run by `autodiff::tests`).
#[cfg(test)]
pub(crate) fn gradient_cases() -> Vec<crate::test_util::GradCase> {
    grad_cases::cases()
}

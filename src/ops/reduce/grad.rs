//! Gradients of the reductions, as TensorFlow 1's `math_grad.py` builds them: the incoming
//! gradient is reshaped to the keep-dims shape of the reduction (TensorFlow's
//! `reduced_shape`) and tiled back over the input.
//!
//! Where TensorFlow computes shapes with graph ops that its constant folding turns into
//! constants, the same values are computed here while building when the input shape and the
//! axes are known then; otherwise the shape ops are built exactly as TensorFlow does
//! (`reduced_shape` with DynamicStitch, `_safe_shape_div` with FloorDiv and Maximum).

use super::engine::{reduced_axes, reduced_shape};
use super::int32_vector;
use crate::graph::{Graph, Output};
use crate::ops::GradCtx;
use crate::tensor::DType;
use crate::{Error, Result};

type GradResult = Result<Vec<Option<Output>>>;

/// The reduction's input, axes and incoming gradient.
fn operands(ctx: &GradCtx<'_>) -> (Output, Output, Output) {
    (ctx.input(0), ctx.input(1), ctx.grad(0))
}

/// The axes when they are a build-time constant.
fn constant_axes(g: &Graph, axes: Output) -> Result<Option<Vec<i64>>> {
    g.constant_value(axes).map(|t| t.to_i64_vec()).transpose()
}

/// `Tile(x, multiples)` with a multiples tensor.
fn tile_t(g: &mut Graph, x: Output, multiples: Output) -> Result<Output> {
    let (t, tm) = (g.dtype(x), g.dtype(multiples));
    g.op("Tile")
        .input(x)
        .input(multiples)
        .attr("T", t)
        .attr("Tmultiples", tm)
        .build_output()
}

/// TensorFlow's `_safe_shape_div(x, y)`: `x // max(y, 1)` on int32 shapes.
fn safe_shape_div(g: &mut Graph, x: Output, y: Output) -> Result<Output> {
    let one = g.constant(1i32)?;
    let m = g.maximum(y, one)?;
    g.floordiv(x, m)
}

/// TensorFlow's `math_ops.reduced_shape(input_shape, axes)`: `input_shape` with a 1 at each
/// reduced axis, as `DynamicStitch([range(rank), axes mod rank], [input_shape, ones])`.
fn reduced_shape_op(g: &mut Graph, input_shape: Output, axes: Output) -> Result<Output> {
    let axes = if g.dtype(axes) == DType::Int32 {
        axes
    } else {
        g.cast(axes, DType::Int32)?
    };
    let rank = g.size(input_shape)?;
    let shifted = g.add(axes, rank)?;
    let axes = g.floormod(shifted, rank)?;
    let axes_shape = g.shape_of(axes)?;
    let zero = g.constant(0i32)?;
    let one = g.constant(1i32)?;
    let range = g.range(zero, rank, one)?;
    let ones = g.fill(axes_shape, one)?;
    g.dynamic_stitch(&[range, axes], &[input_shape, ones])
}

/// The keep-dims shape of reducing `x` over `axes`, and the multiples that tile it back to
/// `x`'s shape: constants when both are known at build time.
fn kept_dims_and_scaling(g: &mut Graph, x: Output, axes: Output) -> Result<(Output, Output)> {
    if let (Some(dims), Some(a)) = (g.shape(x).to_known(), constant_axes(g, axes)?) {
        let reduced = reduced_axes(&a, dims.len()).map_err(Error::invalid)?;
        let kept = reduced_shape(&dims, &reduced, true, 1);
        let scaling: Vec<i64> = dims
            .iter()
            .zip(&kept)
            .map(|(&d, &k)| (d / k.max(1)) as i64)
            .collect();
        let kept: Vec<i64> = kept.iter().map(|&k| k as i64).collect();
        return Ok((int32_vector(g, &kept)?, int32_vector(g, &scaling)?));
    }
    let input_shape = g.shape_of(x)?;
    let kept = reduced_shape_op(g, input_shape, axes)?;
    let scaling = safe_shape_div(g, input_shape, kept)?;
    Ok((kept, scaling))
}

/// `grad` reshaped to the keep-dims shape and tiled over `x`.
fn tile_to_input(g: &mut Graph, x: Output, axes: Output, grad: Output) -> Result<Output> {
    let (kept, scaling) = kept_dims_and_scaling(g, x, axes)?;
    let grad = g.reshape_t(grad, kept)?;
    tile_t(g, grad, scaling)
}

/// The gradient of `Sum(x, axes)` (TensorFlow's `_SumGrad`), with its shortcut for a sum
/// over every axis of a tensor of known rank: `Tile(Reshape(grad, [1, ..]), Shape(x))`.
fn sum_grad_value(g: &mut Graph, x: Output, axes: Output, grad: Output) -> Result<Output> {
    let rank = g.shape(x).rank();
    let axes_t = g.constant_value(axes);
    if let (Some(rank), Some(a)) = (rank, axes_t) {
        if a.rank() == 1 && a.to_i64_vec()?.into_iter().eq(0..rank as i64) {
            let grad = g.reshape(grad, &vec![1; rank])?;
            let input_shape = match g.shape(x).to_known() {
                Some(d) => int32_vector(g, &d.iter().map(|&v| v as i64).collect::<Vec<_>>())?,
                None => g.shape_of(x)?,
            };
            return tile_t(g, grad, input_shape);
        }
    }
    tile_to_input(g, x, axes, grad)
}

/// TensorFlow's `_SumGrad`.
pub(super) fn sum_grad(ctx: &mut GradCtx<'_>) -> GradResult {
    let (x, axes, grad) = operands(ctx);
    Ok(vec![Some(sum_grad_value(ctx.graph, x, axes, grad)?), None])
}

/// TensorFlow's `_MeanGrad`: the Sum gradient divided by the number of elements averaged
/// (`size(x) // max(size(y), 1)`, a constant when both shapes are known).
pub(super) fn mean_grad(ctx: &mut GradCtx<'_>) -> GradResult {
    let (x, axes, grad) = operands(ctx);
    let y = ctx.output(0);
    let g = &mut *ctx.graph;
    let sum_grad = sum_grad_value(g, x, axes, grad)?;
    let dt = g.dtype(sum_grad);
    let factor = match (g.shape(x).num_elements(), g.shape(y).num_elements()) {
        (Some(i), Some(o)) => g.scalar_like(dt, (i / o.max(1)) as f64)?,
        _ => {
            let xs = g.shape_of(x)?;
            let ys = g.shape_of(y)?;
            let xn = g.reduce_prod(xs, &[0], false)?;
            let yn = g.reduce_prod(ys, &[0], false)?;
            let f = safe_shape_div(g, xn, yn)?;
            g.cast(f, dt)?
        }
    };
    Ok(vec![Some(g.div(sum_grad, factor)?), None])
}

/// TensorFlow's `_MinOrMaxGrad`: the gradient goes to the elements equal to the result,
/// split equally among ties.
pub(super) fn min_or_max_grad(ctx: &mut GradCtx<'_>) -> GradResult {
    let (x, axes, grad) = operands(ctx);
    let y = ctx.output(0);
    let g = &mut *ctx.graph;
    let kept = match (g.shape(x).to_known(), constant_axes(g, axes)?) {
        (Some(_), Some(_)) => kept_dims_and_scaling(g, x, axes)?.0,
        _ => {
            let input_shape = g.shape_of(x)?;
            reduced_shape_op(g, input_shape, axes)?
        }
    };
    let y = g.reshape_t(y, kept)?;
    let grad = g.reshape_t(grad, kept)?;
    let eq = g.equal(y, x)?;
    let indicators = g.cast(eq, g.dtype(grad))?;
    let count = g.reduce_sum_t(indicators, axes, false)?;
    let num_selected = g.reshape_t(count, kept)?;
    let share = g.div(indicators, num_selected)?;
    Ok(vec![Some(g.mul(share, grad)?), None])
}

/// TensorFlow's `_ProdGrad`: the product of all other elements of each reduced group, as
/// the product of an exclusive Cumprod from the front and one from the back over the group
/// (the reduced axes moved to the front and flattened), so zeros in the input are handled.
///
/// TensorFlow computes the permutation with ListDiff and InvertPermutation at run time;
/// here it is computed while building, so the input's rank and the axes must be known then.
pub(super) fn prod_grad(ctx: &mut GradCtx<'_>) -> GradResult {
    let (x, axes, grad) = operands(ctx);
    let g = &mut *ctx.graph;
    let (Some(rank), Some(axes_v)) = (g.shape(x).rank(), constant_axes(g, axes)?) else {
        return Err(Error::invalid(
            "the gradient of Prod needs the input's rank and the reduction axes to be known \
             when the graph is built",
        ));
    };
    let flags = reduced_axes(&axes_v, rank).map_err(Error::invalid)?;
    let r = rank as i64;
    let reduced: Vec<i64> = axes_v
        .iter()
        .map(|&a| if a < 0 { a + r } else { a })
        .collect();
    let other: Vec<i64> = (0..r).filter(|&i| !flags[i as usize]).collect();
    let perm: Vec<i64> = reduced.iter().chain(&other).copied().collect();
    let mut inverse = vec![0i64; rank];
    for (i, &p) in perm.iter().enumerate() {
        inverse[p as usize] = i as i64;
    }

    let grad = tile_to_input(g, x, axes, grad)?;
    let permuted = g.transpose(x, &perm)?;
    let (pair, permuted_shape, input_shape) = match g.shape(x).to_known() {
        Some(d) => {
            let count = |idx: &[i64]| idx.iter().map(|&i| d[i as usize] as i64).product::<i64>();
            let pair = int32_vector(g, &[count(&reduced), count(&other)])?;
            let pd: Vec<i64> = perm.iter().map(|&p| d[p as usize] as i64).collect();
            let dims: Vec<i64> = d.iter().map(|&v| v as i64).collect();
            (pair, int32_vector(g, &pd)?, int32_vector(g, &dims)?)
        }
        None => {
            let shape = g.shape_of(x)?;
            let mut counts = Vec::with_capacity(2);
            for idx in [&reduced, &other] {
                let i = int32_vector(g, idx)?;
                let dims = g.gather(shape, i, 0)?;
                counts.push(g.reduce_prod(dims, &[0], false)?);
            }
            let pair = g.stack(&counts, 0)?;
            (pair, g.shape_of(permuted)?, shape)
        }
    };
    let reshaped = g.reshape_t(permuted, pair)?;
    let left = g.cumprod(reshaped, 0, true, false)?;
    let right = g.cumprod(reshaped, 0, true, true)?;
    let others = g.mul(left, right)?;
    let y = g.reshape_t(others, permuted_shape)?;
    let y = g.transpose(y, &inverse)?;
    let out = g.mul(grad, y)?;
    Ok(vec![Some(g.reshape_t(out, input_shape)?), None])
}

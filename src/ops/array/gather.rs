//! Index lookups: GatherV2 (rows of `params` picked by `indices` along an axis) and OneHot.

use super::{
    check_index, check_rank, check_type_attr, index_const, normalize_axis, read_ints,
    scalar_index_const, shape_value, shaped_like, size_value, StridedSliceMasks,
};
use crate::graph::{Attrs, AttrsExt, Graph, Output, TensorSpec};
use crate::ops::{kernel_fn, GradCtx, InferCtx, KernelBuildCtx, Op, Registry};
use crate::ops::{InferResult, KernelResult};
use crate::tensor::{alloc, DType, Element, PartialShape, Tensor};
use crate::{with_dtype, Error, Result};

/// Formats flat element `i` of a tensor of `shape` as a multi-index: `[1,0]`.
pub(super) fn multi_index(mut i: usize, shape: &[usize]) -> String {
    let mut idx = vec![0usize; shape.len()];
    for (slot, &d) in idx.iter_mut().zip(shape).rev() {
        if d > 0 {
            *slot = i % d;
            i /= d;
        }
    }
    let parts: Vec<String> = idx.iter().map(|v| v.to_string()).collect();
    parts.join(",")
}

/// `batch_dims` must be 0: batched gathers are not supported.
fn check_batch_dims(attrs: &Attrs) -> std::result::Result<(), String> {
    match attrs.int_or("batch_dims", 0)? {
        0 => Ok(()),
        b => Err(format!(
            "batch_dims = {b} is not supported; only batch_dims = 0 is"
        )),
    }
}

fn infer_gather(ctx: &InferCtx<'_>) -> InferResult {
    ctx.expect_inputs(3)?;
    check_type_attr(ctx, "Tparams", ctx.dtype(0))?;
    check_index(ctx, 1, "Tindices")?;
    check_index(ctx, 2, "Taxis")?;
    check_rank(ctx, 2, 0, "axis")?;
    check_batch_dims(ctx.attrs())?;
    let (p, q) = (ctx.shape(0), ctx.shape(1));
    if p.rank() == Some(0) {
        return Err("params must be at least 1 dimensional".into());
    }
    let axis = match ctx.constant_ints(2).as_deref() {
        Some(&[a]) => Some(a),
        _ => None,
    };
    let out = match (p.dims(), q.dims(), axis) {
        (Some(pd), Some(qd), Some(a)) => {
            let a = normalize_axis(a, pd.len(), "axis")?;
            let mut d = pd[..a].to_vec();
            d.extend_from_slice(qd);
            d.extend_from_slice(&pd[a + 1..]);
            PartialShape::new(d)
        }
        (Some(pd), q, Some(a)) => {
            normalize_axis(a, pd.len(), "axis")?;
            match q {
                Some(qd) => PartialShape::with_rank(pd.len() + qd.len() - 1),
                None => PartialShape::unknown(),
            }
        }
        (Some(pd), Some(qd), None) => PartialShape::with_rank(pd.len() + qd.len() - 1),
        _ => PartialShape::unknown(),
    };
    Ok(vec![TensorSpec::new(ctx.dtype(0), out)])
}

/// Gathers `params` along `axis` at `indices`, erroring on an index outside the axis.
fn gather<T: Element>(params: &Tensor, indices: &Tensor, axis: usize) -> Result<Tensor> {
    let ps = params.shape();
    let outer: usize = ps[..axis].iter().product();
    let dim = ps[axis];
    let inner: usize = ps[axis + 1..].iter().product();
    let idx = indices.to_i64_vec()?;
    let mut rows = Vec::with_capacity(idx.len());
    for (j, &i) in idx.iter().enumerate() {
        match usize::try_from(i) {
            Ok(r) if r < dim => rows.push(r),
            _ => {
                return Err(Error::invalid(format!(
                    "indices[{}] = {i} is not in [0, {dim})",
                    multi_index(j, indices.shape())
                )))
            }
        }
    }
    let mut shape = ps[..axis].to_vec();
    shape.extend_from_slice(indices.shape());
    shape.extend_from_slice(&ps[axis + 1..]);
    let src = params.as_slice::<T>()?;
    let mut out = alloc::try_with_capacity::<T>(&shape)?;
    for o in 0..outer {
        for &r in &rows {
            let start = (o * dim + r) * inner;
            out.extend_from_slice(&src[start..start + inner]);
        }
    }
    Tensor::new(&shape, out)
}

fn gather_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    check_batch_dims(ctx.attrs())?;
    with_dtype!(any, ctx.input_dtype(0), T => kernel_fn(|k| {
        let axis = read_ints(k.input(2)?, "axis", 0)?;
        let (params, indices) = (k.input(0)?, k.input(1)?);
        if params.rank() == 0 {
            return Err(Error::invalid("params must be at least 1 dimensional"));
        }
        let axis = match axis[..] {
            [a] => normalize_axis(a, params.rank(), "axis").map_err(Error::invalid)?,
            _ => return Err(Error::invalid("axis must be a scalar")),
        };
        let out = gather::<T>(params, indices, axis)?;
        k.push_output(out);
        Ok(())
    }))
}

/// `v[begin:end]` (or `v[begin]` when `shrink`) of a vector, as TensorFlow's
/// `Tensor.__getitem__` builds it: a StridedSlice whose `begin`/`end` (one-element int32
/// vectors) are masked when `None`.
fn vector_slice(
    g: &mut Graph,
    v: Output,
    begin: Option<Output>,
    end: Option<Output>,
    shrink: bool,
) -> Result<Output> {
    let masks = StridedSliceMasks {
        begin: i64::from(begin.is_none()),
        end: i64::from(end.is_none()),
        shrink_axis: i64::from(shrink),
        ..StridedSliceMasks::default()
    };
    let zero = index_const(g, &[0])?;
    let one = index_const(g, &[1])?;
    g.strided_slice_t(v, begin.unwrap_or(zero), end.unwrap_or(zero), one, masks)
}

/// TensorFlow's `_GatherV2Grad` for `batch_dims = 0`, with the IndexedSlices made dense
/// as `_IndexedSlicesToTensorNoWarning` does: the gradient rows are summed into the rows
/// they were gathered from with UnsortedSegmentSum. For an axis other than a constant 0
/// the gathered axis is first transposed to the front, and the sum transposed back (the
/// permutations computed with Range and ConcatV2, as TensorFlow does; its empty batch
/// pieces are left out).
fn gather_grad(ctx: &mut GradCtx<'_>) -> Result<Vec<Option<Output>>> {
    let (params, indices, axis, grad) = (ctx.input(0), ctx.input(1), ctx.input(2), ctx.grad(0));
    let g = &mut *ctx.graph;
    let params_shape = shape_value(g, params, DType::Int32)?;
    let size = size_value(g, indices)?;
    let indices_size = g.expand_dims(size, 0)?;
    let axis_static = g.constant_value(axis).and_then(|t| t.to_i64_vec().ok());
    let dx = if axis_static.as_deref() == Some(&[0]) {
        let one = index_const(g, &[1])?;
        let tail = vector_slice(g, params_shape, Some(one), None, false)?;
        let values_shape = g.concat(&[indices_size, tail], 0)?;
        let values = g.reshape_t(grad, values_shape)?;
        let flat = g.reshape_t(indices, indices_size)?;
        let (zero, one) = (index_const(g, &[0])?, index_const(g, &[1])?);
        let rows = vector_slice(g, params_shape, Some(zero), Some(one), true)?;
        g.unsorted_segment_sum(values, flat, rows)?
    } else {
        let axis = if g.dtype(axis) == DType::Int32 {
            axis
        } else {
            g.cast(axis, DType::Int32)?
        };
        let one = g.constant(1i32)?;
        let axis_vec = g.stack(&[axis], 0)?;
        let outer_shape = vector_slice(g, params_shape, None, Some(axis_vec), false)?;
        let from_axis = vector_slice(g, params_shape, Some(axis_vec), None, false)?;
        let one_vec = index_const(g, &[1])?;
        let inner_shape = vector_slice(g, from_axis, Some(one_vec), None, false)?;
        let minus_one = index_const(g, &[-1])?;
        let values_shape = g.concat(&[outer_shape, minus_one, inner_shape], 0)?;
        let values_dims = size_value(g, values_shape)?;
        let axis_dims = size_value(g, outer_shape)?;
        let zero = g.constant(0i32)?;
        let batch_axis_indices = g.range(zero, axis_dims, one)?;
        let after_axis = g.add(axis_dims, one)?;
        let inner_axes_indices = g.range(after_axis, values_dims, one)?;
        let values = g.reshape_t(grad, values_shape)?;
        // Move values[axis] to the front.
        let axis_dims_vec = g.stack(&[axis_dims], 0)?;
        let transpose_dims =
            g.concat(&[axis_dims_vec, batch_axis_indices, inner_axes_indices], 0)?;
        let values_transpose = g.transpose_t(values, transpose_dims)?;
        let axis_plus_one = g.add(axis, one)?;
        let axis_end = g.stack(&[axis_plus_one], 0)?;
        let gather_dim_size = vector_slice(g, params_shape, Some(axis_vec), Some(axis_end), true)?;
        let flat = g.reshape_t(indices, indices_size)?;
        let params_grad = g.unsorted_segment_sum(values_transpose, flat, gather_dim_size)?;
        // Move the front dim back to `axis`.
        let shifted = g.add(batch_axis_indices, one)?;
        let front = index_const(g, &[0])?;
        let invert_transpose_dims = g.concat(&[shifted, front, inner_axes_indices], 0)?;
        let params_grad = g.transpose_t(params_grad, invert_transpose_dims)?;
        // Prevents mismatches in shapes when some tensor dimensions are zero.
        let shape = shape_value(g, params, DType::Int32)?;
        g.reshape_t(params_grad, shape)?
    };
    Ok(vec![Some(shaped_like(g, dx, params)?), None, None])
}

/// TensorFlow's OneHot index dtypes (TI).
const ONE_HOT_INDEX_TYPES: &[DType] = &[DType::UInt8, DType::Int32, DType::Int64];

/// Where the depth dim goes for indices of `rank`, from the `axis` attr (-1 = last).
fn one_hot_axis(axis: i64, rank: usize) -> std::result::Result<usize, String> {
    if axis == -1 {
        return Ok(rank);
    }
    usize::try_from(axis)
        .ok()
        .filter(|&a| a <= rank)
        .ok_or_else(|| {
            format!("Expected axis to be -1 or between [0, {rank}].  But received: {axis}")
        })
}

fn infer_one_hot(ctx: &InferCtx<'_>) -> InferResult {
    ctx.expect_inputs(4)?;
    let ti = ctx.check_dtype(0, ONE_HOT_INDEX_TYPES)?;
    check_type_attr(ctx, "TI", ti)?;
    ctx.check_dtype(1, &[DType::Int32])?;
    check_rank(ctx, 1, 0, "depth")?;
    check_rank(ctx, 2, 0, "on_value")?;
    check_rank(ctx, 3, 0, "off_value")?;
    let t = ctx.dtype(2);
    if ctx.dtype(3) != t {
        return Err(format!(
            "on_value is {t} but off_value is {}; they must have one dtype",
            ctx.dtype(3)
        ));
    }
    check_type_attr(ctx, "T", t)?;
    let axis = ctx.attrs().int_or("axis", -1)?;
    if axis < -1 {
        return Err(format!("axis must be >= -1, got {axis}"));
    }
    let depth = match ctx.constant_ints(1).as_deref() {
        Some(&[d]) if d < 0 => return Err(format!("depth must be non-negative, got: {d}")),
        Some(&[d]) => Some(d as usize),
        _ => None,
    };
    let out = match ctx.shape(0).dims() {
        Some(dims) => {
            let at = one_hot_axis(axis, dims.len())?;
            let mut d = dims.to_vec();
            d.insert(at, depth);
            PartialShape::new(d)
        }
        None => PartialShape::unknown(),
    };
    Ok(vec![TensorSpec::new(t, out)])
}

fn one_hot_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let axis = ctx.attrs().int_or("axis", -1)?;
    with_dtype!(any, ctx.input_dtype(2), T => kernel_fn(move |k| {
        let indices = k.input(0)?;
        let depth = k.input(1)?.scalar_value::<i32>()?;
        let depth = usize::try_from(depth).map_err(|_| {
            Error::invalid(format!("depth must be non-negative, got: {depth}"))
        })?;
        let on = k.input(2)?.scalar_value::<T>()?;
        let off = k.input(3)?.scalar_value::<T>()?;
        let at = one_hot_axis(axis, indices.rank()).map_err(Error::invalid)?;
        let suffix: usize = indices.shape()[at..].iter().product();
        let mut shape = indices.shape().to_vec();
        shape.insert(at, depth);
        let mut out = alloc::try_filled(&shape, off)?;
        for (j, &i) in indices.to_i64_vec()?.iter().enumerate() {
            if let Ok(i) = usize::try_from(i) {
                if i < depth {
                    let (p, s) = (j / suffix, j % suffix);
                    out[(p * depth + i) * suffix + s] = on;
                }
            }
        }
        k.push_output(Tensor::new(&shape, out)?);
        Ok(())
    }))
}

pub(super) fn register(r: &mut Registry) {
    r.add(
        Op::new("GatherV2", infer_gather, gather_kernel)
            .grad(gather_grad)
            .defaults(|| vec![("batch_dims", 0i64.into())]),
    );
    r.add(
        Op::new("OneHot", infer_one_hot, one_hot_kernel)
            .no_grad()
            .defaults(|| vec![("axis", (-1i64).into()), ("TI", DType::Int64.into())]),
    );
}

impl Graph {
    /// Slices of `params` along `axis` at `indices` (`tf.gather`, op GatherV2): the output
    /// shape is `params.shape[:axis] + indices.shape + params.shape[axis+1:]`. An index
    /// outside the axis is a run-time error, as on TensorFlow's CPU.
    pub fn gather(&mut self, params: Output, indices: Output, axis: i64) -> Result<Output> {
        let a = scalar_index_const(self, axis)?;
        let (tp, ti, ta) = (self.dtype(params), self.dtype(indices), self.dtype(a));
        self.op("GatherV2")
            .input(params)
            .input(indices)
            .input(a)
            .attr("Tparams", tp)
            .attr("Tindices", ti)
            .attr("Taxis", ta)
            .attr("batch_dims", 0i64)
            .build_output()
    }

    /// One-hot encoding of integer `indices` with `depth` classes (`tf.one_hot`): the new
    /// dim goes at `axis` (-1 = last) and holds `on_value` at the index, `off_value`
    /// elsewhere; indices outside `[0, depth)` give an all-`off_value` row.
    pub fn one_hot(
        &mut self,
        indices: Output,
        depth: i64,
        on_value: Output,
        off_value: Output,
        axis: i64,
    ) -> Result<Output> {
        let depth = i32::try_from(depth)
            .map_err(|_| Error::invalid(format!("depth {depth} does not fit int32")))?;
        let d = self.constant(depth)?;
        let (t, ti) = (self.dtype(on_value), self.dtype(indices));
        self.op("OneHot")
            .input(indices)
            .input(d)
            .input(on_value)
            .input(off_value)
            .attr("T", t)
            .attr("TI", ti)
            .attr("axis", axis)
            .build_output()
    }
}

#[cfg(test)]
mod tests {
    use crate::test_util::{iota, run, run_err, run_fed, t};
    use crate::{DType, Graph, Tensor};

    #[test]
    fn gathers_along_axes() {
        let mut g = Graph::new();
        let x = g.constant(iota(&[3, 4])).unwrap();
        let rows = g.constant(Tensor::from([2i32, 0, 2])).unwrap();
        let cols = g.constant(Tensor::from([[3i64], [1]])).unwrap();
        let a0 = g.gather(x, rows, 0).unwrap();
        let a1 = g.gather(x, cols, -1).unwrap();
        assert_eq!(g.shape(a1).to_known(), Some(vec![3, 2, 1]));
        let s = g.constant(1i32).unwrap();
        let one = g.gather(x, s, 0).unwrap();
        assert_eq!(g.shape(one).to_known(), Some(vec![4]));
        let e = g.constant(Tensor::vector(Vec::<i32>::new())).unwrap();
        let none = g.gather(x, e, 1).unwrap();
        let b = g.constant(Tensor::from([true, false, true])).unwrap();
        let bg = g.gather(b, rows, 0).unwrap();
        let out = run(&g, &[a0, a1, one, none, bg]);
        // np.take(np.arange(12).reshape(3,4), [2,0,2], axis=0)
        assert_eq!(
            out[0],
            t(&[3, 4], &[8, 9, 10, 11, 0, 1, 2, 3, 8, 9, 10, 11])
        );
        // np.take(np.arange(12).reshape(3,4), [[3],[1]], axis=-1)
        assert_eq!(out[1], t(&[3, 2, 1], &[3, 1, 7, 5, 11, 9]));
        assert_eq!(out[2], t(&[4], &[4, 5, 6, 7]));
        assert_eq!(out[3].shape(), &[3, 0]);
        assert_eq!(out[4], Tensor::from([true, true, true]));
    }

    #[test]
    fn gather_errors() {
        let mut g = Graph::new();
        let x = g.constant(iota(&[2, 3])).unwrap();
        let i = g.placeholder(DType::Int32, [None, Some(2)], "i").unwrap();
        let y = g.gather(x, i, 1).unwrap();
        assert_eq!(g.shape(y).to_string(), "[2,?,2]");
        let msg = run_err(&g, &[(i, t(&[2, 2], &[0, 1, 3, 0]))], y);
        assert!(msg.contains("indices[1,0] = 3 is not in [0, 3)"), "{msg}");
        let msg = run_err(&g, &[(i, t(&[1, 2], &[-1, 0]))], y);
        assert!(msg.contains("= -1 is not in"), "{msg}");
        let msg = g.gather(x, i, 2).unwrap_err().to_string();
        assert!(msg.contains("axis 2 is out of range"), "{msg}");
        let s = g.constant(1.0f32).unwrap();
        let z = g.constant(0i32).unwrap();
        let msg = g.gather(s, z, 0).unwrap_err().to_string();
        assert!(msg.contains("at least 1 dimensional"), "{msg}");
        let f = g.constant(Tensor::from([0.0f32])).unwrap();
        assert!(g.gather(x, f, 0).is_err());
        let zero = g.constant(0i32).unwrap();
        let msg = g
            .op("GatherV2")
            .input(x)
            .input(i)
            .input(zero)
            .attr("batch_dims", 1i64)
            .build()
            .unwrap_err()
            .to_string();
        assert!(msg.contains("batch_dims"), "{msg}");
        let out = run_fed(&g, &[(i, t(&[1, 2], &[2, 2]))], &[y]);
        assert_eq!(out[0], t(&[2, 1, 2], &[2, 2, 5, 5]));
    }

    #[test]
    fn one_hot_encodes() {
        let mut g = Graph::new();
        let idx = g.constant(Tensor::from([0i64, 2, -1, 5])).unwrap();
        let on = g.constant(1.0f32).unwrap();
        let off = g.constant(0.0f32).unwrap();
        let y = g.one_hot(idx, 3, on, off, -1).unwrap();
        assert_eq!(g.shape(y).to_known(), Some(vec![4, 3]));
        let y0 = g.one_hot(idx, 3, on, off, 0).unwrap();
        assert_eq!(g.shape(y0).to_known(), Some(vec![3, 4]));
        let m = g.constant(Tensor::from([[1u8, 0], [2, 1]])).unwrap();
        let bon = g.constant(true).unwrap();
        let boff = g.constant(false).unwrap();
        let yb = g.one_hot(m, 2, bon, boff, 1).unwrap();
        assert_eq!(g.shape(yb).to_known(), Some(vec![2, 2, 2]));
        let out = run(&g, &[y, y0, yb]);
        // tf.one_hot([0,2,-1,5], 3)
        let want = [1., 0., 0., 0., 0., 1., 0., 0., 0., 0., 0., 0.];
        assert_eq!(
            out[0],
            Tensor::new(&[4, 3], want.to_vec())
                .unwrap()
                .cast(DType::Float32)
                .unwrap()
        );
        // tf.one_hot([0,2,-1,5], 3, axis=0)
        let want0 = [1., 0., 0., 0., 0., 0., 0., 0., 0., 1., 0., 0.];
        assert_eq!(
            out[1],
            Tensor::new(&[3, 4], want0.to_vec())
                .unwrap()
                .cast(DType::Float32)
                .unwrap()
        );
        // tf.one_hot([[1,0],[2,1]], 2, True, False, axis=1)
        let wantb = [false, true, true, false, false, false, false, true];
        assert_eq!(out[2], Tensor::new(&[2, 2, 2], wantb.to_vec()).unwrap());
    }

    #[test]
    fn one_hot_errors() {
        let mut g = Graph::new();
        let idx = g.constant(Tensor::from([0i32, 1])).unwrap();
        let on = g.constant(1.0f32).unwrap();
        let off = g.constant(0.0f64).unwrap();
        let msg = g.one_hot(idx, 3, on, off, -1).unwrap_err().to_string();
        assert!(msg.contains("one dtype"), "{msg}");
        let off = g.constant(0.0f32).unwrap();
        let msg = g.one_hot(idx, 3, on, off, -2).unwrap_err().to_string();
        assert!(msg.contains("axis must be >= -1"), "{msg}");
        let msg = g.one_hot(idx, 3, on, off, 2).unwrap_err().to_string();
        assert!(msg.contains("between [0, 1]"), "{msg}");
        let msg = g.one_hot(idx, -1, on, off, -1).unwrap_err().to_string();
        assert!(msg.contains("depth must be non-negative"), "{msg}");
        let fidx = g.constant(Tensor::from([0.0f32])).unwrap();
        assert!(g.one_hot(fidx, 3, on, off, -1).is_err());
    }
}

//! UnsortedSegmentSum: sums the slices of `data` that share a segment id (the dense form of
//! GatherV2's gradient).

use super::gather::multi_index;
use super::{
    check_index, check_rank, fmt_dims, index_tensor, rank_value, shape_value, shaped_like,
};
use crate::graph::{Graph, Output, TensorSpec};
use crate::ops::math::{check_family, Family};
use crate::ops::{kernel_fn, GradCtx, InferCtx, KernelBuildCtx, Op, Registry};
use crate::ops::{InferResult, KernelResult};
use crate::tensor::{alloc, DType, Number, PartialShape, Tensor};
use crate::{with_dtype, Error, Result};

/// TensorFlow's message for data whose shape does not start with the ids' shape.
fn prefix_error(data: impl std::fmt::Display, ids: impl std::fmt::Display) -> String {
    format!("data.shape = {data} does not start with segment_ids.shape = {ids}")
}

fn negative_segments(n: i64) -> String {
    format!("Input num_segments == {n} must not be negative.")
}

fn infer_unsorted_segment_sum(ctx: &InferCtx<'_>) -> InferResult {
    ctx.expect_inputs(3)?;
    let t = check_family(ctx, 0, Family::Number)?;
    ctx.check_t_attr(t)?;
    check_index(ctx, 1, "Tindices")?;
    check_index(ctx, 2, "Tnumsegments")?;
    check_rank(ctx, 2, 0, "num_segments")?;
    let num = match ctx.constant_ints(2).as_deref() {
        Some(&[n]) if n < 0 => return Err(negative_segments(n)),
        Some(&[n]) => Some(n as usize),
        _ => None,
    };
    let (data, ids) = (ctx.shape(0), ctx.shape(1));
    let out = match (data.dims(), ids.dims()) {
        (Some(d), Some(i)) => {
            if i.len() > d.len() {
                return Err(prefix_error(data, ids));
            }
            PartialShape::new(d[..i.len()].to_vec())
                .merge(ids)
                .map_err(|_| prefix_error(data, ids))?;
            let mut dims = vec![num];
            dims.extend_from_slice(&d[i.len()..]);
            PartialShape::new(dims)
        }
        _ => PartialShape::unknown(),
    };
    Ok(vec![TensorSpec::new(t, out)])
}

/// Sums the `[ids.len(), inner]` rows of `data` into `n` rows by id; negative ids are
/// dropped, ids at or above `n` are an error.
fn segment_sum<T: Number>(data: &Tensor, ids: &Tensor, n: usize) -> Result<Tensor> {
    let ds = data.shape();
    if !ds.starts_with(ids.shape()) {
        return Err(Error::invalid(prefix_error(
            fmt_dims(ds),
            fmt_dims(ids.shape()),
        )));
    }
    let tail = &ds[ids.rank()..];
    let inner: usize = tail.iter().product();
    let mut shape = vec![n];
    shape.extend_from_slice(tail);
    let mut out = alloc::try_filled(&shape, T::ZERO)?;
    let src = data.as_slice::<T>()?;
    for (i, &id) in ids.to_i64_vec()?.iter().enumerate() {
        if id < 0 {
            continue;
        }
        let row = usize::try_from(id).ok().filter(|&r| r < n).ok_or_else(|| {
            Error::invalid(format!(
                "segment_ids[{}] = {id} is out of range [0, {n})",
                multi_index(i, ids.shape())
            ))
        })?;
        let dst = &mut out[row * inner..(row + 1) * inner];
        for (a, &b) in dst.iter_mut().zip(&src[i * inner..(i + 1) * inner]) {
            *a = a.add(b);
        }
    }
    Tensor::new(&shape, out)
}

fn unsorted_segment_sum_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    with_dtype!(number, ctx.input_dtype(0), T => kernel_fn(|k| {
        let n = k.input(2)?;
        if n.rank() != 0 {
            return Err(Error::invalid(format!(
                "num_segments should be a scalar, not shape {:?}",
                n.shape()
            )));
        }
        let n = n.to_i64_vec()?[0];
        let n = usize::try_from(n).map_err(|_| Error::invalid(negative_segments(n)))?;
        let out = segment_sum::<T>(k.input(0)?, k.input(1)?, n)?;
        k.push_output(out);
        Ok(())
    }))
}

/// TensorFlow's `_UnsortedSegmentSumGrad` (`_GatherDropNegatives`): each data slice gets
/// the gradient row of its segment, zeros where the id is negative.
fn unsorted_segment_sum_grad(ctx: &mut GradCtx<'_>) -> Result<Vec<Option<Output>>> {
    let (data, ids, grad) = (ctx.input(0), ctx.input(1), ctx.grad(0));
    let g = &mut *ctx.graph;
    let id_zeros = g.zeros_like(ids)?;
    let clipped = g.maximum(ids, id_zeros)?;
    let gathered = g.gather(grad, clipped, 0)?;
    let zero = g.constant(index_tensor(vec![0], g.dtype(ids), &[])?)?;
    let is_positive = g.greater_equal(ids, zero)?;
    // Reshape the mask to broadcast against the gathered rows, then give it their shape.
    let mask_shape = shape_value(g, is_positive, DType::Int32)?;
    let (gathered_rank, mask_rank) = (rank_value(g, gathered)?, rank_value(g, is_positive)?);
    let extra = g.sub(gathered_rank, mask_rank)?;
    let extra = g.stack(&[extra], 0)?;
    let one = g.constant(1i32)?;
    let ones = g.fill(extra, one)?;
    let broadcastable = g.concat(&[mask_shape, ones], 0)?;
    let is_positive = g.reshape_t(is_positive, broadcastable)?;
    let gathered_shape = shape_value(g, gathered, DType::Int32)?;
    let yes = g.constant(true)?;
    let all = g.fill(gathered_shape, yes)?;
    let is_positive = g.logical_and(is_positive, all)?;
    let zero_slice = g.zeros_like(gathered)?;
    let dx = g.where_v2(is_positive, gathered, zero_slice)?;
    Ok(vec![Some(shaped_like(g, dx, data)?), None, None])
}

pub(super) fn register(r: &mut Registry) {
    r.add(
        Op::new(
            "UnsortedSegmentSum",
            infer_unsorted_segment_sum,
            unsorted_segment_sum_kernel,
        )
        .grad(unsorted_segment_sum_grad)
        .defaults(|| vec![("Tnumsegments", DType::Int32.into())]),
    );
}

impl Graph {
    /// Sums the slices `data[i...]` into row `segment_ids[i...]` of a result with
    /// `num_segments` rows (`tf.math.unsorted_segment_sum`): the output shape is
    /// `[num_segments] + data.shape[segment_ids.rank:]`, rows no id names are zero, and
    /// negative ids are dropped. `data.shape` must start with `segment_ids.shape`.
    pub fn unsorted_segment_sum(
        &mut self,
        data: Output,
        segment_ids: Output,
        num_segments: Output,
    ) -> Result<Output> {
        let (t, ti, tn) = (
            self.dtype(data),
            self.dtype(segment_ids),
            self.dtype(num_segments),
        );
        self.op("UnsortedSegmentSum")
            .input(data)
            .input(segment_ids)
            .input(num_segments)
            .attr("T", t)
            .attr("Tindices", ti)
            .attr("Tnumsegments", tn)
            .build_output()
    }
}

#[cfg(test)]
mod tests {
    use crate::test_util::{run, run_err, run_fed, t};
    use crate::{DType, Graph, PartialShape, Tensor};

    #[test]
    fn sums_rows_by_segment() {
        let mut g = Graph::new();
        let data = g
            .constant(Tensor::from([[1.0f32, 2.], [3., 4.], [5., 6.], [7., 8.]]))
            .unwrap();
        let ids = g.constant(Tensor::from([2i32, 0, 2, -1])).unwrap();
        let three = g.constant(3i32).unwrap();
        let a = g.unsorted_segment_sum(data, ids, three).unwrap();
        assert_eq!(g.shape(a).to_known(), Some(vec![3, 2]));
        let idata = g.constant(t(&[2, 2], &[1, 2, 3, 4])).unwrap();
        let ids2 = g.constant(Tensor::from([[1i64, 0], [1, 1]])).unwrap();
        let two = g.constant(2i64).unwrap();
        let b = g.unsorted_segment_sum(idata, ids2, two).unwrap();
        assert_eq!(g.shape(b).to_known(), Some(vec![2]));
        let v = g.constant(t(&[2], &[1, 2])).unwrap();
        let one = g.constant(1i32).unwrap();
        let c = g.unsorted_segment_sum(v, one, three).unwrap();
        assert_eq!(g.shape(c).to_known(), Some(vec![3, 2]));
        let u = g.constant(Tensor::from([200u8, 100, 7])).unwrap();
        let uid = g.constant(Tensor::from([0i32, 0, 1])).unwrap();
        let d = g.unsorted_segment_sum(u, uid, two).unwrap();
        let out = run(&g, &[a, b, c, d]);
        // tf.math.unsorted_segment_sum([[1.,2],[3,4],[5,6],[7,8]], [2,0,2,-1], 3)
        assert_eq!(out[0], Tensor::from([[3.0f32, 4.], [0., 0.], [6., 8.]]));
        // tf.math.unsorted_segment_sum([[1,2],[3,4]], [[1,0],[1,1]], 2)
        assert_eq!(out[1], t(&[2], &[2, 8]));
        // tf.math.unsorted_segment_sum([1,2], 1, 3)
        assert_eq!(out[2], t(&[3, 2], &[0, 0, 1, 2, 0, 0]));
        // uint8 wraps: 200 + 100 = 44 (mod 256)
        assert_eq!(out[3], Tensor::from([44u8, 7]));
    }

    #[test]
    fn errors() {
        let mut g = Graph::new();
        let data = g.constant(t(&[2, 2], &[1, 2, 3, 4])).unwrap();
        let two = g.constant(2i32).unwrap();
        let long = g.constant(t(&[3], &[0, 1, 0])).unwrap();
        let msg = g
            .unsorted_segment_sum(data, long, two)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("data.shape = [2,2] does not start with segment_ids.shape = [3]"),
            "{msg}"
        );
        let ids = g.constant(t(&[2], &[0, 1])).unwrap();
        let minus = g.constant(-1i32).unwrap();
        let msg = g
            .unsorted_segment_sum(data, ids, minus)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("Input num_segments == -1 must not be negative."),
            "{msg}"
        );
        let b = g.constant(Tensor::from([true, false])).unwrap();
        let msg = g.unsorted_segment_sum(b, ids, two).unwrap_err().to_string();
        assert!(msg.contains("bool"), "{msg}");
        let fids = g.constant(Tensor::from([0.0f32, 1.0])).unwrap();
        assert!(g.unsorted_segment_sum(data, fids, two).is_err());
        let vec_n = g.constant(t(&[1], &[2])).unwrap();
        let msg = g
            .unsorted_segment_sum(data, ids, vec_n)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("num_segments must be rank 0"), "{msg}");
        // run-time checks with TensorFlow's messages
        let p = g.placeholder(DType::Int32, [None], "p").unwrap();
        let n = g
            .placeholder(DType::Int64, PartialShape::scalar(), "n")
            .unwrap();
        let y = g.unsorted_segment_sum(data, p, n).unwrap();
        assert_eq!(g.shape(y).to_string(), "[?,2]");
        let feed = |ids: &[i32], v: i64| vec![(p, t(&[ids.len()], ids)), (n, Tensor::scalar(v))];
        let msg = run_err(&g, &feed(&[0, 3], 2), y);
        assert!(
            msg.contains("segment_ids[1] = 3 is out of range [0, 2)"),
            "{msg}"
        );
        let msg = run_err(&g, &feed(&[0, 1, 0], 2), y);
        assert!(msg.contains("does not start with"), "{msg}");
        let msg = run_err(&g, &feed(&[0, 1], -3), y);
        assert!(msg.contains("num_segments == -3"), "{msg}");
        let out = run_fed(&g, &feed(&[1, -5], 2), &[y]);
        assert_eq!(out[0], t(&[2, 2], &[0, 0, 1, 2]));
        let empty = run_fed(&g, &feed(&[-1, -1], 0), &[y]);
        assert_eq!(empty[0].shape(), &[0, 2]);
    }
}

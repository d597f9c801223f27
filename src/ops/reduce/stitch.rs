//! DynamicStitch: interleaves the rows of several tensors into one by index. Reduction
//! gradients build TensorFlow's `reduced_shape` (the keep-dims shape of a reduction) with it
//! when shapes or axes are only known at run time, which is why it lives here.

use super::super::{kernel_fn, GradCtx, InferCtx, KernelBuildCtx, Op, Registry};
use crate::graph::{AttrsExt, Graph, Output, TensorSpec};
use crate::ops::{InferResult, KernelResult};
use crate::tensor::{alloc, num_elements, DType, Element, PartialShape, Tensor};
use crate::{with_dtype, Error, Result};

/// Checks attr `N` against the input count and returns it.
fn stitch_count(ctx: &InferCtx<'_>) -> std::result::Result<usize, String> {
    let total = ctx.num_inputs();
    if total < 2 || !total.is_multiple_of(2) {
        return Err(format!(
            "expects N index tensors followed by N data tensors (N >= 1), got {total} inputs"
        ));
    }
    let n = total / 2;
    let attr = ctx.attrs().int_or("N", n as i64)?;
    if attr != n as i64 {
        return Err(format!("attr N is {attr} but {total} inputs were given"));
    }
    Ok(n)
}

/// `indices` (N int32 tensors) and `data` (N tensors of one dtype, `data[i].shape =
/// indices[i].shape + rest`): the output is `[max index + 1] + rest`, its first dim known
/// when every index tensor is a build-time constant.
fn infer_dynamic_stitch(ctx: &InferCtx<'_>) -> InferResult {
    let n = stitch_count(ctx)?;
    let dt = ctx.dtype(n);
    ctx.check_t_attr(dt)?;
    let mut rest: Option<PartialShape> = None;
    let mut max_index: Option<i64> = Some(-1);
    for i in 0..n {
        if ctx.dtype(i) != DType::Int32 {
            return Err(format!("indices[{i}] must be int32, got {}", ctx.dtype(i)));
        }
        if ctx.dtype(n + i) != dt {
            return Err(format!(
                "data[{i}] has dtype {} but data[0] has dtype {dt}",
                ctx.dtype(n + i)
            ));
        }
        if let (Some(idx), Some(data)) = (ctx.shape(i).dims(), ctx.shape(n + i).dims()) {
            let prefix = PartialShape::new(data.iter().take(idx.len()).copied().collect());
            if data.len() < idx.len() || prefix.merge(ctx.shape(i)).is_err() {
                return Err(format!(
                    "data[{i}].shape = {} does not start with indices[{i}].shape = {}",
                    ctx.shape(n + i),
                    ctx.shape(i)
                ));
            }
            let r = PartialShape::new(data[idx.len()..].to_vec());
            rest = Some(match rest {
                None => r,
                Some(prev) => prev.merge(&r).map_err(|e| {
                    format!("data[{i}] has inner dims {r}, but earlier data have {prev}: {e}")
                })?,
            });
        }
        max_index = match (max_index, ctx.constant_ints(i)) {
            (Some(m), Some(v)) => Some(v.into_iter().fold(m, i64::max)),
            _ => None,
        };
    }
    let first = max_index.map(|m| (m + 1) as usize);
    let shape = match rest.as_ref().and_then(|r| r.dims()) {
        Some(r) => PartialShape::new(std::iter::once(first).chain(r.iter().copied()).collect()),
        None => PartialShape::unknown(),
    };
    Ok(vec![TensorSpec::new(dt, shape)])
}

/// Copies `data` rows into a zero-filled output at their indices (a later row wins).
fn stitch<T: Element>(indices: &[&Tensor], data: &[&Tensor]) -> Result<Tensor> {
    let mut rest: Option<&[usize]> = None;
    let mut first = 0usize;
    for (i, (idx, d)) in indices.iter().zip(data).enumerate() {
        if !d.shape().starts_with(idx.shape()) {
            return Err(Error::invalid(format!(
                "data[{i}].shape = {:?} does not start with indices[{i}].shape = {:?}",
                d.shape(),
                idx.shape()
            )));
        }
        let r = &d.shape()[idx.rank()..];
        match rest {
            Some(prev) if prev != r => {
                return Err(Error::invalid(format!(
                    "Need data[0].shape[{}:] = data[{i}].shape[{}:], got data[0].shape = {:?}, \
                     data[{i}].shape = {:?}",
                    indices[0].rank(),
                    idx.rank(),
                    data[0].shape(),
                    d.shape()
                )))
            }
            _ => rest = Some(r),
        }
        for &v in idx.as_slice::<i32>()? {
            if v >= 0 {
                first = first.max(v as usize + 1);
            }
        }
    }
    let rest = rest.unwrap_or(&[]).to_vec();
    let row = num_elements(&rest);
    let mut shape = vec![first];
    shape.extend_from_slice(&rest);
    let mut out = alloc::try_filled(&shape, T::default())?;
    for (idx, d) in indices.iter().zip(data) {
        let src = d.as_slice::<T>()?;
        for (j, &v) in idx.as_slice::<i32>()?.iter().enumerate() {
            if v < 0 {
                return Err(Error::invalid(format!("indices[{j}] is out of range")));
            }
            let at = v as usize * row;
            out[at..at + row].copy_from_slice(&src[j * row..(j + 1) * row]);
        }
    }
    Ok(Tensor::from_parts(shape, out))
}

fn dynamic_stitch_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let n = ctx.node.inputs().len() / 2;
    with_dtype!(any, ctx.input_dtype(n), T => kernel_fn(move |k| {
        let indices = (0..n).map(|i| k.input(i)).collect::<Result<Vec<_>>>()?;
        let data = (n..2 * n).map(|i| k.input(i)).collect::<Result<Vec<_>>>()?;
        let out = stitch::<T>(&indices, &data)?;
        k.push_output(out);
        Ok(())
    }))
}

/// TensorFlow's `_DynamicStitchGrads`: each data tensor gets `Gather(grad, indices[i])`;
/// the indices get nothing. (A row overwritten by a later duplicate index still receives
/// the gradient, as in TensorFlow.)
fn dynamic_stitch_grad(ctx: &mut GradCtx<'_>) -> Result<Vec<Option<Output>>> {
    let n = ctx.graph.node(ctx.node).inputs().len() / 2;
    let grad = ctx.grad(0);
    let mut grads = vec![None; n];
    for i in 0..n {
        let idx = ctx.input(i);
        grads.push(Some(ctx.graph.gather(grad, idx, 0)?));
    }
    Ok(grads)
}

pub(super) fn register(r: &mut Registry) {
    r.add(
        Op::new("DynamicStitch", infer_dynamic_stitch, dynamic_stitch_kernel)
            .grad(dynamic_stitch_grad),
    );
}

impl Graph {
    /// Interleaves `data` by `indices` (`tf.dynamic_stitch`): `out[indices[m][i], ...] =
    /// data[m][i, ...]`, where `data[m].shape = indices[m].shape + rest`; the output has
    /// `max index + 1` rows, rows no index names are zero, and a later duplicate wins.
    pub fn dynamic_stitch(&mut self, indices: &[Output], data: &[Output]) -> Result<Output> {
        let Some(&first) = data.first() else {
            return Err(Error::invalid(
                "dynamic_stitch needs at least one data tensor",
            ));
        };
        if indices.len() != data.len() {
            return Err(Error::invalid(format!(
                "dynamic_stitch needs as many index tensors as data tensors, got {} and {}",
                indices.len(),
                data.len()
            )));
        }
        let t = self.dtype(first);
        self.op("DynamicStitch")
            .inputs(indices)
            .inputs(data)
            .attr("N", data.len() as i64)
            .attr("T", t)
            .build_output()
    }
}

#[cfg(test)]
mod tests {
    use crate::{DType, Graph, Output, PartialShape, Session, Tensor};

    fn eval(g: &Graph, o: Output) -> crate::Result<Tensor> {
        Ok(Session::new(g).run(&[], &[o], &[])?.remove(0))
    }

    #[test]
    fn stitches_like_tensorflow() {
        let mut g = Graph::new();
        // tf.dynamic_stitch([[0,2], [[3],[1]]], [[[1,2],[3,4]], [[[5,6]],[[7,8]]]])
        //   = [[1,2],[7,8],[3,4],[5,6]]
        let i0 = g.constant(Tensor::from([0i32, 2])).unwrap();
        let i1 = g.constant(Tensor::from([[3i32], [1]])).unwrap();
        let d0 = g
            .constant(Tensor::from([[1.0f32, 2.0], [3.0, 4.0]]))
            .unwrap();
        let d1 = g
            .constant(Tensor::from([[[5.0f32, 6.0]], [[7.0, 8.0]]]))
            .unwrap();
        let s = g.dynamic_stitch(&[i0, i1], &[d0, d1]).unwrap();
        assert_eq!(g.shape(s), &PartialShape::known(&[4, 2]));
        assert_eq!(
            eval(&g, s).unwrap(),
            Tensor::from([[1.0f32, 2.0], [7.0, 8.0], [3.0, 4.0], [5.0, 6.0]])
        );
        // Duplicates (the later wins), a scalar index, and a gap filled with zeros:
        // tf.dynamic_stitch([[0,2,0], 4], [[1,2,3], 9]) = [3,0,2,0,9]
        let j0 = g.constant(Tensor::from([0i32, 2, 0])).unwrap();
        let j1 = g.constant(4i32).unwrap();
        let e0 = g.constant(Tensor::from([1i64, 2, 3])).unwrap();
        let e1 = g.constant(9i64).unwrap();
        let s = g.dynamic_stitch(&[j0, j1], &[e0, e1]).unwrap();
        assert_eq!(g.shape(s), &PartialShape::known(&[5]));
        assert_eq!(eval(&g, s).unwrap(), Tensor::from([3i64, 0, 2, 0, 9]));
        // Bool data and empty indices.
        let k0 = g.constant(Tensor::vector(Vec::<i32>::new())).unwrap();
        let b0 = g.constant(Tensor::vector(Vec::<bool>::new())).unwrap();
        let k1 = g.constant(Tensor::from([1i32])).unwrap();
        let b1 = g.constant(Tensor::from([true])).unwrap();
        let s = g.dynamic_stitch(&[k0, k1], &[b0, b1]).unwrap();
        assert_eq!(eval(&g, s).unwrap(), Tensor::from([false, true]));
    }

    #[test]
    fn errors() {
        let mut g = Graph::new();
        let i = g.constant(Tensor::from([0i32, 1])).unwrap();
        let d = g.constant(Tensor::from([1.0f32, 2.0, 3.0])).unwrap();
        let err = g.dynamic_stitch(&[i], &[d]).unwrap_err().to_string();
        assert!(
            err.contains("does not start with indices[0].shape"),
            "{err}"
        );
        let l = g.constant(Tensor::from([0i64, 1])).unwrap();
        let err = g.dynamic_stitch(&[l], &[d]).unwrap_err().to_string();
        assert!(err.contains("must be int32"), "{err}");
        let d2 = g.constant(Tensor::from([[1.0f32], [2.0]])).unwrap();
        let d3 = g.constant(Tensor::from([1.0f32, 2.0])).unwrap();
        let err = g
            .dynamic_stitch(&[i, i], &[d2, d3])
            .unwrap_err()
            .to_string();
        assert!(err.contains("inner dims"), "{err}");
        let d4 = g.constant(Tensor::from([1.0f64, 2.0])).unwrap();
        let err = g
            .dynamic_stitch(&[i, i], &[d3, d4])
            .unwrap_err()
            .to_string();
        assert!(err.contains("dtype"), "{err}");
        // A negative index fed at run time: TF's "indices[1] is out of range".
        let p = g.placeholder(DType::Int32, [2], "p").unwrap();
        let s = g.dynamic_stitch(&[p], &[d3]).unwrap();
        assert_eq!(g.shape(s), &PartialShape::new(vec![None]));
        let err = Session::new(&g)
            .run(&[(p, Tensor::from([0i32, -1]))], &[s], &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("indices[1] is out of range"), "{err}");
    }
}

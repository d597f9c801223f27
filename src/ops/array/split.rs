//! Splitting along an axis: Split (`num_split` equal parts) and SplitV (parts of given
//! sizes, one of which may be -1 for the rest), as `tf.split` writes them. Their gradient
//! is the output gradients concatenated along the axis (TensorFlow's `_SplitGrad`,
//! `_SplitVGrad`; outputs without a gradient count as zeros).

use super::{check_index, check_rank, normalize_axis, read_ints, scalar_index_const};
use crate::graph::{AttrsExt, Graph, Output, TensorSpec};
use crate::ops::{kernel_fn, GradCtx, InferCtx, KernelBuildCtx, Op, Registry};
use crate::ops::{InferResult, KernelResult};
use crate::tensor::{DType, Dim, Element, PartialShape, Tensor};
use crate::{with_dtype, Error, Result};

/// The `num_split` attr, at least 1.
fn num_split(ctx_attrs: &crate::graph::Attrs) -> std::result::Result<usize, String> {
    let n = ctx_attrs.int("num_split")?;
    usize::try_from(n)
        .ok()
        .filter(|&n| n >= 1)
        .ok_or_else(|| format!("attr num_split must be at least 1, got {n}"))
}

/// The output specs: `x`'s shape with the axis dim replaced by each size (`None` unknown).
fn split_specs(
    dt: DType,
    shape: &PartialShape,
    axis: Option<i64>,
    sizes: &[Dim],
) -> std::result::Result<Vec<TensorSpec>, String> {
    let Some(dims) = shape.dims() else {
        return Ok(vec![
            TensorSpec::new(dt, PartialShape::unknown());
            sizes.len()
        ]);
    };
    let Some(axis) = axis else {
        return Ok(vec![
            TensorSpec::new(dt, PartialShape::with_rank(dims.len()));
            sizes.len()
        ]);
    };
    let a = normalize_axis(axis, dims.len(), "split axis")?;
    Ok(sizes
        .iter()
        .map(|&s| {
            let mut d = dims.to_vec();
            d[a] = s;
            TensorSpec::new(dt, PartialShape::new(d))
        })
        .collect())
}

fn constant_axis(ctx: &InferCtx<'_>, i: usize) -> Option<i64> {
    match ctx.constant_ints(i).as_deref() {
        Some(&[a]) => Some(a),
        _ => None,
    }
}

/// Split(axis, value): `num_split` equal parts.
fn infer_split(ctx: &InferCtx<'_>) -> InferResult {
    ctx.expect_inputs(2)?;
    let n = num_split(ctx.attrs())?;
    if ctx.dtype(0) != DType::Int32 {
        return Err(format!("split_dim must be int32, got {}", ctx.dtype(0)));
    }
    check_rank(ctx, 0, 0, "split_dim")?;
    ctx.check_t_attr(ctx.dtype(1))?;
    let axis = constant_axis(ctx, 0);
    let mut size = None;
    if let (Some(a), Some(dims)) = (axis, ctx.shape(1).dims()) {
        let at = normalize_axis(a, dims.len(), "split axis")?;
        if let Some(d) = dims[at] {
            if d % n != 0 {
                return Err(format!(
                    "Number of ways to split should evenly divide the split dimension, but got \
                     split_dim {a} (size = {d}) and num_split {n}"
                ));
            }
            size = Some(d / n);
        }
    }
    split_specs(ctx.dtype(1), ctx.shape(1), axis, &vec![size; n])
}

/// SplitV(value, size_splits, axis).
fn infer_split_v(ctx: &InferCtx<'_>) -> InferResult {
    ctx.expect_inputs(3)?;
    let n = num_split(ctx.attrs())?;
    ctx.check_t_attr(ctx.dtype(0))?;
    check_index(ctx, 1, "Tlen")?;
    check_rank(ctx, 1, 1, "size_splits")?;
    if ctx.dtype(2) != DType::Int32 {
        return Err(format!("split_dim must be int32, got {}", ctx.dtype(2)));
    }
    check_rank(ctx, 2, 0, "split_dim")?;
    let axis = constant_axis(ctx, 2);
    let sizes: Vec<Dim> = match ctx.constant_ints(1) {
        Some(sizes) => {
            if sizes.len() != n {
                return Err(format!(
                    "size_splits has {} values but num_split is {n}",
                    sizes.len()
                ));
            }
            let dim = match (axis, ctx.shape(0).dims()) {
                (Some(a), Some(dims)) => dims[normalize_axis(a, dims.len(), "split axis")?],
                _ => None,
            };
            match resolve_sizes(&sizes, dim) {
                Ok(s) => s.into_iter().map(Some).collect(),
                // The rest (-1) is unknown while the axis dim is.
                Err(_) if dim.is_none() => sizes.iter().map(|&s| usize::try_from(s).ok()).collect(),
                Err(e) => return Err(e),
            }
        }
        None => vec![None; n],
    };
    split_specs(ctx.dtype(0), ctx.shape(0), axis, &sizes)
}

/// The sizes of SplitV's parts along an axis of `dim` elements (`None` when unknown): at
/// most one -1, which takes the rest; the sizes must add up to the dim.
fn resolve_sizes(sizes: &[i64], dim: Option<usize>) -> std::result::Result<Vec<usize>, String> {
    let unknown: Vec<usize> = (0..sizes.len()).filter(|&i| sizes[i] == -1).collect();
    if unknown.len() > 1 {
        return Err(format!(
            "size_splits {sizes:?} holds more than one -1 (only one size may be inferred)"
        ));
    }
    if let Some(&bad) = sizes.iter().find(|&&s| s < -1) {
        return Err(format!(
            "size_splits {sizes:?} holds the invalid size {bad}"
        ));
    }
    let known: i64 = sizes.iter().filter(|&&s| s >= 0).sum();
    let Some(dim) = dim else {
        return Err("the split dimension is unknown".into());
    };
    let mut out: Vec<usize> = sizes.iter().map(|&s| s.max(0) as usize).collect();
    match unknown.first() {
        Some(&i) if known <= dim as i64 => out[i] = dim - known as usize,
        None if known == dim as i64 => {}
        _ => {
            return Err(format!(
                "Determined shape must either match input shape along split_dim exactly if \
                 fully specified, or be less than the size of the input along split_dim if not \
                 fully specified. Got: {known} (size_splits {sizes:?}, dimension {dim})"
            ))
        }
    }
    Ok(out)
}

/// Copies `x`'s parts of `sizes` along `axis` into new tensors.
fn split_parts<T: Element>(x: &Tensor, axis: usize, sizes: &[usize]) -> Result<Vec<Tensor>> {
    let s = x.shape();
    let dim = s[axis];
    let outer: usize = s[..axis].iter().product();
    let inner: usize = s[axis + 1..].iter().product();
    let data = x.as_slice::<T>()?;
    let mut out = Vec::with_capacity(sizes.len());
    let mut offset = 0;
    for &size in sizes {
        let mut v = Vec::with_capacity(outer * size * inner);
        for r in 0..outer {
            let start = (r * dim + offset) * inner;
            v.extend_from_slice(&data[start..start + size * inner]);
        }
        let mut shape = s.to_vec();
        shape[axis] = size;
        out.push(Tensor::new(&shape, v)?);
        offset += size;
    }
    Ok(out)
}

/// The shared kernel: `value`, `sizes` (`None` for equal parts) and `axis` input indices.
fn split_kernel(
    ctx: &KernelBuildCtx<'_>,
    value: usize,
    sizes: Option<usize>,
    axis: usize,
) -> KernelResult {
    let n = num_split(ctx.attrs())?;
    let name = ctx.node.name().to_string();
    with_dtype!(any, ctx.input_dtype(value), T => kernel_fn(move |k| {
        let bad = |e: String| Error::invalid(format!("node '{name}': {e}"));
        let a = read_ints(k.input(axis)?, "split_dim", 0)?[0];
        let x = k.input(value)?;
        let at = normalize_axis(a, x.rank(), "split axis").map_err(bad)?;
        let dim = x.shape()[at];
        let parts = match sizes {
            Some(i) => resolve_sizes(&read_ints(k.input(i)?, "size_splits", 1)?, Some(dim))
                .map_err(bad)?,
            None => {
                if dim % n != 0 {
                    return Err(bad(format!(
                        "Number of ways to split should evenly divide the split dimension, but \
                         got split_dim {a} (size = {dim}) and num_split {n}"
                    )));
                }
                vec![dim / n; n]
            }
        };
        if parts.len() != n {
            return Err(bad(format!("size_splits has {} values but num_split is {n}", parts.len())));
        }
        for t in split_parts::<T>(x, at, &parts)? {
            k.push_output(t);
        }
        Ok(())
    }))
}

/// The output gradients concatenated along the split axis (input `axis`).
fn split_grad(
    ctx: &mut GradCtx<'_>,
    axis: usize,
    n_inputs: usize,
    value: usize,
) -> Result<Vec<Option<Output>>> {
    let axis = ctx.input(axis);
    let grads = ctx.grads.clone();
    let g = &mut *ctx.graph;
    let t = g.dtype(grads[0]);
    let joined = if grads.len() == 1 {
        g.identity(grads[0])?
    } else {
        g.op("ConcatV2")
            .inputs(&grads)
            .input(axis)
            .attr("N", grads.len() as i64)
            .attr("T", t)
            .attr("Tidx", DType::Int32)
            .build_output()?
    };
    let mut out = vec![None; n_inputs];
    out[value] = Some(joined);
    Ok(out)
}

pub(super) fn register(r: &mut Registry) {
    r.add(
        Op::new("Split", infer_split, |ctx| split_kernel(ctx, 1, None, 0))
            .grad(|ctx| split_grad(ctx, 0, 2, 1)),
    );
    r.add(
        Op::new("SplitV", infer_split_v, |ctx| {
            split_kernel(ctx, 0, Some(1), 2)
        })
        .grad(|ctx| split_grad(ctx, 2, 3, 0))
        .defaults(|| vec![("Tlen", DType::Int64.into())]),
    );
}

impl Graph {
    /// Splits `x` into `num` equal parts along `axis` (`tf.split` with a number, op Split).
    pub fn split(&mut self, x: Output, num: usize, axis: i64) -> Result<Vec<Output>> {
        let a = self.constant(Tensor::scalar(
            i32::try_from(axis).map_err(|_| Error::invalid(format!("axis {axis} is too large")))?,
        ))?;
        let t = self.dtype(x);
        let id = self
            .op("Split")
            .input(a)
            .input(x)
            .attr("T", t)
            .attr("num_split", num as i64)
            .build()?;
        Ok((0..num).map(|i| id.output(i)).collect())
    }

    /// Splits `x` along `axis` into parts of `sizes` (one may be -1: the rest; `tf.split`
    /// with a list, op SplitV).
    pub fn split_v(&mut self, x: Output, sizes: &[i64], axis: i64) -> Result<Vec<Output>> {
        let s = self.constant(Tensor::vector(sizes.to_vec()))?;
        let a = scalar_index_const(self, axis)?;
        if self.dtype(a) != DType::Int32 {
            return Err(Error::invalid(format!("axis {axis} is too large")));
        }
        let t = self.dtype(x);
        let id = self
            .op("SplitV")
            .input(x)
            .input(s)
            .input(a)
            .attr("T", t)
            .attr("Tlen", DType::Int64)
            .attr("num_split", sizes.len() as i64)
            .build()?;
        Ok((0..sizes.len()).map(|i| id.output(i)).collect())
    }
}

#[cfg(test)]
mod tests {
    use crate::test_util::{iota, run, t};
    use crate::{DType, Graph, PartialShape};

    #[test]
    fn split_and_split_v_match_tensorflow() {
        let mut g = Graph::new();
        let x = g.constant(iota(&[2, 6])).unwrap();
        // tf.split(tf.reshape(tf.range(12), [2, 6]), 3, axis=1)
        let parts = g.split(x, 3, 1).unwrap();
        let out = run(&g, &parts);
        assert_eq!(out[0], t(&[2, 2], &[0, 1, 6, 7]));
        assert_eq!(out[2], t(&[2, 2], &[4, 5, 10, 11]));
        // tf.split(x, [1, -1, 2], axis=-1)
        let parts = g.split_v(x, &[1, -1, 2], -1).unwrap();
        assert_eq!(g.shape(parts[1]).to_string(), "[2,3]");
        let out = run(&g, &parts);
        assert_eq!(out[0], t(&[2, 1], &[0, 6]));
        assert_eq!(out[1], t(&[2, 3], &[1, 2, 3, 7, 8, 9]));
        assert_eq!(out[2], t(&[2, 2], &[4, 5, 10, 11]));
        let rows = g.split(x, 2, 0).unwrap();
        assert_eq!(run(&g, &rows[1..])[0], t(&[1, 6], &[6, 7, 8, 9, 10, 11]));
    }

    #[test]
    fn bad_splits_are_errors() {
        let mut g = Graph::new();
        let x = g.constant(iota(&[2, 6])).unwrap();
        let e = g.split(x, 4, 1).unwrap_err().to_string();
        assert!(e.contains("evenly divide"), "{e}");
        let e = g.split_v(x, &[-1, -1], 1).unwrap_err().to_string();
        assert!(e.contains("more than one -1"), "{e}");
        let e = g.split_v(x, &[2, 2], 1).unwrap_err().to_string();
        assert!(e.contains("Determined shape"), "{e}");
        // Unknown dims are checked when the op runs.
        let p = g
            .placeholder(DType::Int32, PartialShape::unknown(), "p")
            .unwrap();
        let parts = g.split(p, 4, 0).unwrap();
        let e = crate::test_util::run_err(&g, &[(p, iota(&[6]))], parts[0]);
        assert!(e.contains("evenly divide"), "{e}");
    }
}

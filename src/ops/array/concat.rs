//! Joining and splitting along an axis: ConcatV2, Pack (stack) and Unpack (unstack), and
//! ConcatOffset, which ConcatV2's gradient uses.
//!
//! All three view their tensors as `[outer, inner]` rows around the axis and copy whole
//! rows ([`interleave_rows`]).

use super::layout::interleave_rows;
use super::{
    check_index, check_len_attr, check_rank, check_type_attr, index_tensor, normalize_axis,
    rank_value, read_ints, scalar_index_const, shape_value, shaped_like,
};
use crate::graph::{AttrsExt, Graph, Output, TensorSpec};
use crate::ops::{kernel_fn, GradCtx, InferCtx, KernelBuildCtx, Op, Registry};
use crate::ops::{InferResult, KernelResult};
use crate::tensor::{DType, Dim, Element, PartialShape, Tensor};
use crate::{with_dtype, Error, Result};

/// Errors unless the first `n` inputs share one dtype (and the `T` attr); returns it.
fn values_dtype(ctx: &InferCtx<'_>, n: usize) -> std::result::Result<DType, String> {
    let dt = ctx.dtype(0);
    for i in 1..n {
        if ctx.dtype(i) != dt {
            return Err(format!(
                "value {i} has dtype {} but value 0 has dtype {dt}; insert a Cast so they match",
                ctx.dtype(i)
            ));
        }
    }
    check_type_attr(ctx, "T", dt)?;
    Ok(dt)
}

/// The output dims of concatenating `shapes` (of one rank) along `axis` (`None` when the
/// axis is unknown): other dims must agree, the axis dim is the sum.
fn concat_dims(shapes: &[&[Dim]], axis: Option<i64>) -> std::result::Result<Vec<Dim>, String> {
    let first = shapes[0];
    let rank = first.len();
    if rank == 0 {
        return Err("Can't concatenate scalars (use tf.stack instead)".into());
    }
    let axis = axis
        .map(|a| normalize_axis(a, rank, "ConcatV2 axis"))
        .transpose()?;
    let mut out = if axis.is_some() {
        first.to_vec()
    } else {
        vec![None; rank]
    };
    for (i, s) in shapes.iter().enumerate().skip(1) {
        if s.len() != rank {
            return Err(format!(
                "Ranks of all input tensors should match: value 0 has rank {rank} but value \
                 {i} has rank {}",
                s.len()
            ));
        }
        for d in 0..rank {
            out[d] = match (axis, out[d], s[d]) {
                (Some(a), Some(x), Some(y)) if a == d => Some(x + y),
                (Some(a), _, _) if a == d => None,
                // Any dim may be the axis, so no dim is known.
                (None, _, _) => None,
                (Some(a), Some(x), Some(y)) if x != y => {
                    return Err(format!(
                        "Dimension {d} in both shapes must be equal, but are {x} and {y}: \
                         value 0 and value {i} do not match outside axis {a}"
                    ))
                }
                (Some(_), x, y) => x.or(y),
            };
        }
    }
    Ok(out)
}

fn infer_concat(ctx: &InferCtx<'_>) -> InferResult {
    ctx.expect_min_inputs(3)?;
    let n = ctx.num_inputs() - 1;
    check_len_attr(ctx, "N", n)?;
    let dt = values_dtype(ctx, n)?;
    check_index(ctx, n, "Tidx")?;
    check_rank(ctx, n, 0, "axis")?;
    let axis = match ctx.constant_ints(n).as_deref() {
        Some(&[a]) => Some(a),
        _ => None,
    };
    let known: Vec<&[Dim]> = (0..n).filter_map(|i| ctx.shape(i).dims()).collect();
    let out = if known.is_empty() {
        PartialShape::unknown()
    } else if known.len() < n {
        // Some ranks unknown: validate what is known; the axis dim stays unknown.
        let mut dims = concat_dims(&known, axis)?;
        if let Some(a) = axis {
            let at = normalize_axis(a, dims.len(), "ConcatV2 axis")?;
            dims[at] = None;
        }
        PartialShape::new(dims)
    } else {
        PartialShape::new(concat_dims(&known, axis)?)
    };
    Ok(vec![TensorSpec::new(dt, out)])
}

/// Concatenates tensors of one dtype along `axis` (already in range of their rank).
fn concat<T: Element>(values: &[&Tensor], axis: usize) -> Result<Tensor> {
    let first = values[0].shape();
    let outer: usize = first[..axis].iter().product();
    let mut shape = first.to_vec();
    shape[axis] = 0;
    let mut parts = Vec::with_capacity(values.len());
    for (i, v) in values.iter().enumerate() {
        let s = v.shape();
        if s.len() != first.len()
            || s.iter()
                .zip(first)
                .enumerate()
                .any(|(d, (a, b))| d != axis && a != b)
        {
            return Err(Error::invalid(format!(
                "ConcatOp : Dimensions of inputs should match: shape[0] = {first:?} vs. \
                 shape[{i}] = {s:?}"
            )));
        }
        shape[axis] += s[axis];
        parts.push((v.as_slice::<T>()?, s[axis..].iter().product::<usize>()));
    }
    Tensor::new(&shape, interleave_rows(&parts, outer))
}

fn concat_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    with_dtype!(any, ctx.input_dtype(0), T => kernel_fn(|k| {
        let n = k.num_inputs() - 1;
        let axis = read_ints(k.input(n)?, "axis", 0)?;
        let values = (0..n).map(|i| k.input(i)).collect::<Result<Vec<_>>>()?;
        let rank = values[0].rank();
        if rank == 0 {
            return Err(Error::invalid("Can't concatenate scalars (use tf.stack instead)"));
        }
        let axis = match axis[..] {
            [a] => normalize_axis(a, rank, "ConcatV2 axis").map_err(Error::invalid)?,
            _ => return Err(Error::invalid("axis must be a scalar")),
        };
        let out = concat::<T>(&values, axis)?;
        k.push_output(out);
        Ok(())
    }))
}

/// Where Pack inserts the new dim among values of `rank`: `axis` in `[-(rank+1), rank]`.
fn pack_axis(axis: i64, rank: usize) -> std::result::Result<usize, String> {
    normalize_axis(axis, rank + 1, "axis").map_err(|_| {
        format!(
            "Pack axis {axis} is out of range [{}, {}) for values of rank {rank}",
            -(rank as i64) - 1,
            rank + 1
        )
    })
}

fn infer_pack(ctx: &InferCtx<'_>) -> InferResult {
    ctx.expect_min_inputs(1)?;
    let n = ctx.num_inputs();
    check_len_attr(ctx, "N", n)?;
    let dt = values_dtype(ctx, n)?;
    let mut shape = ctx.shape(0).clone();
    for i in 1..n {
        shape = shape
            .merge(ctx.shape(i))
            .map_err(|e| format!("Shapes of all inputs must match: value 0 and value {i}: {e}"))?;
    }
    let axis = ctx.attrs().int_or("axis", 0)?;
    let out = match shape.dims() {
        Some(dims) => {
            let at = pack_axis(axis, dims.len())?;
            let mut d = dims.to_vec();
            d.insert(at, Some(n));
            PartialShape::new(d)
        }
        None => PartialShape::unknown(),
    };
    Ok(vec![TensorSpec::new(dt, out)])
}

fn pack_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let axis = ctx.attrs().int_or("axis", 0)?;
    with_dtype!(any, ctx.input_dtype(0), T => kernel_fn(move |k| {
        let values = (0..k.num_inputs()).map(|i| k.input(i)).collect::<Result<Vec<_>>>()?;
        let first = values[0].shape();
        let at = pack_axis(axis, first.len()).map_err(Error::invalid)?;
        let mut shape = first.to_vec();
        shape.insert(at, 1);
        let outer: usize = first[..at].iter().product();
        let inner: usize = first[at..].iter().product();
        let mut parts = Vec::with_capacity(values.len());
        for (i, v) in values.iter().enumerate() {
            if v.shape() != first {
                return Err(Error::invalid(format!(
                    "Shapes of all inputs must match: values[0].shape = {first:?} != \
                     values[{i}].shape = {:?}",
                    v.shape()
                )));
            }
            parts.push((v.as_slice::<T>()?, inner));
        }
        shape[at] = values.len();
        let out = Tensor::new(&shape, interleave_rows(&parts, outer))?;
        k.push_output(out);
        Ok(())
    }))
}

fn infer_unpack(ctx: &InferCtx<'_>) -> InferResult {
    ctx.expect_inputs(1)?;
    ctx.check_t_attr(ctx.dtype(0))?;
    let num = ctx.attrs().int("num")?;
    let num = usize::try_from(num).map_err(|_| format!("attr num must be >= 0, got {num}"))?;
    let axis = ctx.attrs().int_or("axis", 0)?;
    let out = match ctx.shape(0).dims() {
        Some(dims) => {
            let a = normalize_axis(axis, dims.len(), "Unpack axis")?;
            if let Some(d) = dims[a] {
                if d != num {
                    return Err(format!("Dimension must be {num} but is {d}"));
                }
            }
            let mut d = dims.to_vec();
            d.remove(a);
            PartialShape::new(d)
        }
        None => PartialShape::unknown(),
    };
    Ok(vec![TensorSpec::new(ctx.dtype(0), out); num])
}

fn unpack_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let axis = ctx.attrs().int_or("axis", 0)?;
    let num = ctx.node.outputs().len();
    with_dtype!(any, ctx.input_dtype(0), T => kernel_fn(move |k| {
        let x = k.input(0)?;
        let a = normalize_axis(axis, x.rank(), "Unpack axis").map_err(Error::invalid)?;
        let s = x.shape();
        if s[a] != num {
            return Err(Error::invalid(format!(
                "Input shape axis {a} must equal {num}, got shape {s:?}"
            )));
        }
        let outer: usize = s[..a].iter().product();
        let inner: usize = s[a + 1..].iter().product();
        let mut shape = s.to_vec();
        shape.remove(a);
        let data = x.as_slice::<T>()?;
        let mut outs = Vec::with_capacity(num);
        for j in 0..num {
            let mut v = Vec::with_capacity(outer * inner);
            for r in 0..outer {
                let start = (r * num + j) * inner;
                v.extend_from_slice(&data[start..start + inner]);
            }
            outs.push(Tensor::new(&shape, v)?);
        }
        for t in outs {
            k.push_output(t);
        }
        Ok(())
    }))
}

/// TensorFlow's `_ConcatGradHelper` for a dense gradient: each value's gradient is the
/// slice of `grad` at its offset along the axis (`ConcatOffset`) with the value's shape.
/// TensorFlow switches to `Split` above 16 values; the slices give the same result.
fn concat_grad(ctx: &mut GradCtx<'_>) -> Result<Vec<Option<Output>>> {
    let n = ctx.graph.node(ctx.node).inputs().len() - 1;
    let values: Vec<Output> = (0..n).map(|i| ctx.input(i)).collect();
    let (axis, grad) = (ctx.input(n), ctx.grad(0));
    let g = &mut *ctx.graph;
    // concat_dim % rank(values[0]), in the axis dtype; ConcatOffset takes int32.
    let axis_dt = g.dtype(axis);
    let mut rank = rank_value(g, values[0])?;
    if axis_dt != DType::Int32 {
        rank = g.cast(rank, axis_dt)?;
    }
    let mut non_neg_axis = g.floormod(axis, rank)?;
    if axis_dt != DType::Int32 {
        non_neg_axis = g.cast(non_neg_axis, DType::Int32)?;
    }
    // `_ExtractInputShapes`: constants when every shape is known, ShapeN otherwise.
    let sizes = if values.iter().all(|&v| g.shape(v).is_fully_defined()) {
        values
            .iter()
            .map(|&v| shape_value(g, v, DType::Int32))
            .collect::<Result<Vec<_>>>()?
    } else {
        g.shape_n(&values)?
    };
    let offsets = g.concat_offset(non_neg_axis, &sizes)?;
    let mut grads = Vec::with_capacity(n + 1);
    for ((&offset, &size), &v) in offsets.iter().zip(&sizes).zip(&values) {
        let dv = g.slice_t(grad, offset, size)?;
        grads.push(Some(shaped_like(g, dv, v)?));
    }
    grads.push(None);
    Ok(grads)
}

/// TensorFlow's `_PackGrad`: the gradient unstacked along the axis.
fn pack_grad(ctx: &mut GradCtx<'_>) -> Result<Vec<Option<Output>>> {
    let n = ctx.graph.node(ctx.node).inputs().len();
    let axis = ctx.attrs().int_or("axis", 0).map_err(Error::invalid)?;
    let grads = ctx.graph.unstack(ctx.grad(0), Some(n), axis)?;
    Ok(grads.into_iter().map(Some).collect())
}

/// TensorFlow's `_UnpackGrad`: the output gradients stacked along the axis (the gradient
/// pass gives outputs without a gradient zeros).
fn unpack_grad(ctx: &mut GradCtx<'_>) -> Result<Vec<Option<Output>>> {
    let axis = ctx.attrs().int_or("axis", 0).map_err(Error::invalid)?;
    let grads = ctx.grads.clone();
    Ok(vec![Some(ctx.graph.stack(&grads, axis)?)])
}

fn infer_concat_offset(ctx: &InferCtx<'_>) -> InferResult {
    ctx.expect_min_inputs(3)?;
    let n = ctx.num_inputs() - 1;
    check_len_attr(ctx, "N", n)?;
    if ctx.dtype(0) != DType::Int32 {
        return Err(format!("concat_dim must be int32, but is {}", ctx.dtype(0)));
    }
    check_rank(ctx, 0, 0, "concat_dim")?;
    let dt = check_index(ctx, 1, "shape_type")?;
    let mut len = PartialShape::with_rank(1);
    for i in 1..=n {
        if ctx.dtype(i) != dt {
            return Err(format!(
                "shape {} is {} but shape 0 is {dt}; they must have one dtype",
                i - 1,
                ctx.dtype(i)
            ));
        }
        len = len.merge(ctx.shape(i)).map_err(|e| {
            format!(
                "every shape must be a vector of one length: shape {}: {e}",
                i - 1
            )
        })?;
    }
    Ok(vec![TensorSpec::new(dt, len); n])
}

/// The offset of each shape along `axis` when tensors of `shapes` are concatenated there,
/// with TensorFlow's checks and messages (`axis` may be negative).
fn concat_offsets(axis: i64, shapes: &[Vec<i64>]) -> Result<Vec<Vec<i64>>> {
    let dims = shapes[0].len();
    let a = normalize_axis(axis, dims, "Concat dim")
        .map_err(|_| Error::invalid(format!("Concat dim is out of range: {axis} vs. {dims}")))?;
    let mut offset = 0i64;
    let mut out = Vec::with_capacity(shapes.len());
    for (i, s) in shapes.iter().enumerate() {
        if s.len() != dims {
            return Err(Error::invalid(format!(
                "input {i} should contain {dims} elements, but got {}",
                s.len()
            )));
        }
        let mut o = vec![0i64; dims];
        for j in 0..dims {
            if j == a {
                o[j] = offset;
                offset = offset
                    .checked_add(s[j])
                    .ok_or_else(|| Error::invalid("concatenated size overflows"))?;
            } else if s[j] != shapes[0][j] {
                return Err(Error::invalid(format!(
                    "All dimensions except {a} must match. Input {i} has shape {} and doesn't \
                     match input 0 with shape {}.",
                    super::fmt_ints(s),
                    super::fmt_ints(&shapes[0])
                )));
            }
        }
        out.push(o);
    }
    Ok(out)
}

fn concat_offset_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let dt = ctx.output_dtype(0);
    kernel_fn(move |k| {
        let axis = k.input(0)?;
        if axis.rank() != 0 {
            return Err(Error::invalid(format!(
                "Concat dim tensor should be a scalar integer, but got shape {:?}",
                axis.shape()
            )));
        }
        let axis = axis.to_i64_vec()?[0];
        let shapes = (1..k.num_inputs())
            .map(|i| {
                let s = k.input(i)?;
                if s.rank() != 1 {
                    return Err(Error::invalid(format!(
                        "input {i} should be a vector, but got shape {:?}",
                        s.shape()
                    )));
                }
                s.to_i64_vec()
            })
            .collect::<Result<Vec<_>>>()?;
        for o in concat_offsets(axis, &shapes)? {
            let len = o.len();
            k.push_output(index_tensor(o, dt, &[len])?);
        }
        Ok(())
    })
}

pub(super) fn register(r: &mut Registry) {
    r.add(
        Op::new("ConcatV2", infer_concat, concat_kernel)
            .grad(concat_grad)
            .defaults(|| vec![("Tidx", DType::Int32.into())]),
    );
    r.add(
        Op::new("Pack", infer_pack, pack_kernel)
            .grad(pack_grad)
            .defaults(|| vec![("axis", 0i64.into())]),
    );
    r.add(
        Op::new("Unpack", infer_unpack, unpack_kernel)
            .grad(unpack_grad)
            .defaults(|| vec![("axis", 0i64.into())]),
    );
    r.add(
        Op::new("ConcatOffset", infer_concat_offset, concat_offset_kernel)
            .no_grad()
            .defaults(|| vec![("shape_type", DType::Int32.into())]),
    );
}

impl Graph {
    /// Joins tensors along an existing `axis` (`tf.concat`, op ConcatV2). A single value is
    /// returned through an Identity, as TensorFlow does.
    pub fn concat(&mut self, values: &[Output], axis: i64) -> Result<Output> {
        let Some(&first) = values.first() else {
            return Err(Error::invalid("concat needs at least one tensor"));
        };
        if values.len() == 1 {
            return self.identity(first);
        }
        let a = scalar_index_const(self, axis)?;
        let (t, ta) = (self.dtype(first), self.dtype(a));
        self.op("ConcatV2")
            .inputs(values)
            .input(a)
            .attr("N", values.len() as i64)
            .attr("T", t)
            .attr("Tidx", ta)
            .build_output()
    }

    /// Stacks tensors of one shape along a new `axis` in `[-(rank+1), rank]` (`tf.stack`,
    /// op Pack).
    pub fn stack(&mut self, values: &[Output], axis: i64) -> Result<Output> {
        let Some(&first) = values.first() else {
            return Err(Error::invalid("stack needs at least one tensor"));
        };
        let t = self.dtype(first);
        self.op("Pack")
            .inputs(values)
            .attr("N", values.len() as i64)
            .attr("T", t)
            .attr("axis", axis)
            .build_output()
    }

    /// Where each of the tensors of `shapes` (int32 or int64 vectors) starts when they are
    /// concatenated along `concat_dim` (an int32 scalar; op ConcatOffset, used by ConcatV2's
    /// gradient): zero except at the axis, where it is the running sum of the sizes.
    pub fn concat_offset(&mut self, concat_dim: Output, shapes: &[Output]) -> Result<Vec<Output>> {
        let Some(&first) = shapes.first() else {
            return Err(Error::invalid("concat_offset needs at least one shape"));
        };
        let st = self.dtype(first);
        let id = self
            .op("ConcatOffset")
            .input(concat_dim)
            .inputs(shapes)
            .attr("N", shapes.len() as i64)
            .attr("shape_type", st)
            .build()?;
        Ok((0..shapes.len()).map(|i| id.output(i)).collect())
    }

    /// Splits `x` along `axis` into its slices (`tf.unstack`, op Unpack). `num` defaults to
    /// the axis dim, which must then be known.
    pub fn unstack(&mut self, x: Output, num: Option<usize>, axis: i64) -> Result<Vec<Output>> {
        let num = match num {
            Some(n) => n,
            None => {
                let s = self.shape(x);
                let dim = s
                    .rank()
                    .and_then(|r| normalize_axis(axis, r, "axis").ok())
                    .and_then(|a| s.dim(a));
                dim.ok_or_else(|| {
                    Error::invalid(format!("Cannot infer argument `num` from shape {s}"))
                })?
            }
        };
        let t = self.dtype(x);
        let id = self
            .op("Unpack")
            .input(x)
            .attr("T", t)
            .attr("num", num as i64)
            .attr("axis", axis)
            .build()?;
        Ok((0..num).map(|i| id.output(i)).collect())
    }
}

#[cfg(test)]
mod tests {
    use crate::test_util::{iota, run, run_err, run_fed, t};
    use crate::{DType, Graph, PartialShape, Tensor};

    #[test]
    fn concat_along_axes() {
        let mut g = Graph::new();
        let a = g.constant(iota(&[2, 2])).unwrap();
        let b = g.constant(t(&[2, 1], &[10, 11])).unwrap();
        let c1 = g.concat(&[a, b], 1).unwrap();
        let cm1 = g.concat(&[b, a, b], -1).unwrap();
        assert_eq!(g.shape(c1).to_known(), Some(vec![2, 3]));
        assert_eq!(g.shape(cm1).to_known(), Some(vec![2, 4]));
        let c0 = g.concat(&[a, a], 0).unwrap();
        let f = g.constant(Tensor::from([[1.5f32]])).unwrap();
        let fe = g.constant(Tensor::zeros(DType::Float32, &[0, 1])).unwrap();
        let fc = g.concat(&[fe, f, fe], 0).unwrap();
        assert_eq!(g.shape(fc).to_known(), Some(vec![1, 1]));
        let single = g.concat(&[a], 0).unwrap();
        assert_eq!(g.node(single.node).op_type(), "Identity");
        let out = run(&g, &[c1, cm1, c0, fc]);
        // np.concatenate([np.arange(4).reshape(2,2), [[10],[11]]], 1)
        assert_eq!(out[0], t(&[2, 3], &[0, 1, 10, 2, 3, 11]));
        assert_eq!(out[1], t(&[2, 4], &[10, 0, 1, 10, 11, 2, 3, 11]));
        assert_eq!(out[2], t(&[4, 2], &[0, 1, 2, 3, 0, 1, 2, 3]));
        assert_eq!(out[3], Tensor::from([[1.5f32]]));
    }

    #[test]
    fn concat_build_errors() {
        let mut g = Graph::new();
        let a = g.constant(iota(&[2, 3])).unwrap();
        let v = g.constant(iota(&[2])).unwrap();
        let msg = g.concat(&[a, v], 0).unwrap_err().to_string();
        assert!(msg.contains("ConcatV2") && msg.contains("Ranks"), "{msg}");
        let b = g.constant(iota(&[2, 4])).unwrap();
        let msg = g.concat(&[a, b], 0).unwrap_err().to_string();
        assert!(
            msg.contains("Dimension 1") && msg.contains("3 and 4"),
            "{msg}"
        );
        let msg = g.concat(&[a, b], 2).unwrap_err().to_string();
        assert!(msg.contains("axis 2 is out of range"), "{msg}");
        let s = g.constant(1i32).unwrap();
        let msg = g.concat(&[s, s], 0).unwrap_err().to_string();
        assert!(msg.contains("scalars"), "{msg}");
        let f = g.constant(Tensor::zeros(DType::Float32, &[2, 3])).unwrap();
        let msg = g.concat(&[a, f], 0).unwrap_err().to_string();
        assert!(msg.contains("float32") && msg.contains("Cast"), "{msg}");
    }

    #[test]
    fn concat_unknown_dims_checked_at_run_time() {
        let mut g = Graph::new();
        let p = g.placeholder(DType::Bool, [None, None], "p").unwrap();
        let c = g.constant(Tensor::from([[true, false]])).unwrap();
        let y = g.concat(&[p, c], 0).unwrap();
        assert_eq!(g.shape(y).to_string(), "[?,2]");
        let ok = Tensor::from([[false, false]]);
        let out = run_fed(&g, &[(p, ok)], &[y]);
        assert_eq!(out[0], Tensor::from([[false, false], [true, false]]));
        let msg = run_err(&g, &[(p, Tensor::from([[true]]))], y);
        assert!(msg.contains("Dimensions of inputs should match"), "{msg}");
        // a run-time axis
        let ax = g
            .placeholder(DType::Int64, PartialShape::scalar(), "ax")
            .unwrap();
        let z = g
            .op("ConcatV2")
            .input(c)
            .input(c)
            .input(ax)
            .attr("N", 2i64)
            .attr("T", DType::Bool)
            .attr("Tidx", DType::Int64)
            .build_output()
            .unwrap();
        // with the axis unknown, every dim may be the concatenated one
        assert_eq!(g.shape(z).to_string(), "[?,?]");
        let out = run_fed(&g, &[(ax, Tensor::scalar(-1i64))], &[z]);
        assert_eq!(out[0], Tensor::from([[true, false, true, false]]));
    }

    #[test]
    fn stack_and_unstack() {
        let mut g = Graph::new();
        let a = g.constant(t(&[3], &[1, 2, 3])).unwrap();
        let b = g.constant(t(&[3], &[4, 5, 6])).unwrap();
        let s0 = g.stack(&[a, b], 0).unwrap();
        let s1 = g.stack(&[a, b], -1).unwrap();
        assert_eq!(g.shape(s1).to_known(), Some(vec![3, 2]));
        let msg = g.stack(&[a, b], 2).unwrap_err().to_string();
        assert!(
            msg.contains("Pack axis 2 is out of range [-2, 2) for values of rank 1"),
            "{msg}"
        );
        let c = g.constant(t(&[2], &[1, 2])).unwrap();
        let msg = g.stack(&[a, c], 0).unwrap_err().to_string();
        assert!(msg.contains("Shapes of all inputs must match"), "{msg}");
        let x = g.constant(iota(&[2, 3])).unwrap();
        let cols = g.unstack(x, None, 1).unwrap();
        assert_eq!(cols.len(), 3);
        assert_eq!(g.shape(cols[2]).to_known(), Some(vec![2]));
        let rows = g.unstack(x, Some(2), -2).unwrap();
        let msg = g.unstack(x, Some(4), 0).unwrap_err().to_string();
        assert!(msg.contains("Dimension must be 4 but is 2"), "{msg}");
        let out = run(&g, &[s0, s1, cols[0], cols[2], rows[1]]);
        // np.stack([[1,2,3],[4,5,6]], -1)
        assert_eq!(out[0], t(&[2, 3], &[1, 2, 3, 4, 5, 6]));
        assert_eq!(out[1], t(&[3, 2], &[1, 4, 2, 5, 3, 6]));
        // np.arange(6).reshape(2,3)[:, 0], [:, 2], [1, :]
        assert_eq!(out[2], t(&[2], &[0, 3]));
        assert_eq!(out[3], t(&[2], &[2, 5]));
        assert_eq!(out[4], t(&[3], &[3, 4, 5]));
    }

    #[test]
    fn stack_scalars_and_unstack_unknown() {
        let mut g = Graph::new();
        let a = g.constant(1.0f64).unwrap();
        let b = g.constant(2.0f64).unwrap();
        let s = g.stack(&[a, b, a], 0).unwrap();
        let p = g.placeholder(DType::UInt8, [None, Some(2)], "p").unwrap();
        let msg = g.unstack(p, None, 0).unwrap_err().to_string();
        assert!(msg.contains("Cannot infer argument `num`"), "{msg}");
        let parts = g.unstack(p, Some(2), 0).unwrap();
        let v = Tensor::new(&[2, 2], vec![1u8, 2, 3, 4]).unwrap();
        let out = run_fed(&g, &[(p, v.clone())], &[s, parts[0], parts[1]]);
        assert_eq!(out[0], Tensor::from([1.0f64, 2.0, 1.0]));
        assert_eq!(out[1], Tensor::from([1u8, 2]));
        assert_eq!(out[2], Tensor::from([3u8, 4]));
        let three = Tensor::new(&[3, 2], vec![0u8; 6]).unwrap();
        let msg = run_err(&g, &[(p, three)], parts[0]);
        assert!(msg.contains("must equal 2"), "{msg}");
    }

    #[test]
    fn concat_offset() {
        let mut g = Graph::new();
        let one = g.constant(1i32).unwrap();
        let minus_two = g.constant(-2i32).unwrap();
        let zero = g.constant(0i32).unwrap();
        let a = g.constant(t(&[3], &[2, 3, 7])).unwrap();
        let b = g.constant(t(&[3], &[2, 4, 7])).unwrap();
        let c = g.constant(t(&[3], &[2, 1, 7])).unwrap();
        let o = g.concat_offset(one, &[a, b, c]).unwrap();
        assert_eq!(g.shape(o[2]).to_known(), Some(vec![3]));
        let on = g.concat_offset(minus_two, &[a, b]).unwrap();
        let d = g.constant(Tensor::from([2i64, 3])).unwrap();
        let e = g.constant(Tensor::from([5i64, 3])).unwrap();
        let o64 = g.concat_offset(zero, &[d, e]).unwrap();
        assert_eq!(g.dtype(o64[1]), DType::Int64);
        let out = run(&g, &[o[0], o[1], o[2], on[0], on[1], o64[0], o64[1]]);
        // tf.raw_ops.ConcatOffset(concat_dim=1, shape=[[2,3,7],[2,4,7],[2,1,7]])
        assert_eq!(out[0], t(&[3], &[0, 0, 0]));
        assert_eq!(out[1], t(&[3], &[0, 3, 0]));
        assert_eq!(out[2], t(&[3], &[0, 7, 0]));
        // concat_dim=-2: [[0,0,0],[0,3,0]]; int64 shapes at 0: [[0,0],[2,0]]
        assert_eq!(out[3], t(&[3], &[0, 0, 0]));
        assert_eq!(out[4], t(&[3], &[0, 3, 0]));
        assert_eq!(out[5], Tensor::from([0i64, 0]));
        assert_eq!(out[6], Tensor::from([2i64, 0]));
    }

    #[test]
    fn concat_offset_errors() {
        let mut g = Graph::new();
        let a = g.constant(t(&[3], &[2, 3, 7])).unwrap();
        let d = g.constant(Tensor::from([2i64, 3, 7])).unwrap();
        let one = g.constant(1i32).unwrap();
        let msg = g.concat_offset(one, &[a, d]).unwrap_err().to_string();
        assert!(msg.contains("one dtype"), "{msg}");
        let msg = g.concat_offset(one, &[a]).unwrap_err().to_string();
        assert!(msg.contains("at least 3 inputs"), "{msg}");
        let one64 = g.constant(1i64).unwrap();
        let msg = g.concat_offset(one64, &[a, a]).unwrap_err().to_string();
        assert!(msg.contains("concat_dim must be int32"), "{msg}");
        let short = g.constant(t(&[2], &[3, 4])).unwrap();
        let msg = g.concat_offset(one, &[a, short]).unwrap_err().to_string();
        assert!(msg.contains("one length"), "{msg}");
        // run-time checks, with TensorFlow's messages
        let dim = g
            .placeholder(DType::Int32, PartialShape::scalar(), "dim")
            .unwrap();
        let p = g.placeholder(DType::Int32, [None], "p").unwrap();
        let o = g.concat_offset(dim, &[a, p]).unwrap();
        let feed = |d: i32, s: &[i32]| vec![(dim, Tensor::scalar(d)), (p, t(&[s.len()], s))];
        let msg = run_err(&g, &feed(3, &[2, 4, 7]), o[0]);
        assert!(msg.contains("Concat dim is out of range: 3 vs. 3"), "{msg}");
        let msg = run_err(&g, &feed(1, &[3, 4, 7]), o[0]);
        assert!(
            msg.contains(
                "All dimensions except 1 must match. Input 1 has shape [3,4,7] and doesn't \
                 match input 0 with shape [2,3,7]."
            ),
            "{msg}"
        );
        let msg = run_err(&g, &feed(1, &[3, 4]), o[0]);
        assert!(
            msg.contains("input 1 should contain 3 elements, but got 2"),
            "{msg}"
        );
        let out = run_fed(&g, &feed(-1, &[2, 3, 1]), &[o[1]]);
        assert_eq!(out[0], t(&[3], &[0, 0, 7]));
    }
}

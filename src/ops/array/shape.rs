//! Ops that only look at or re-view a shape: Reshape, ExpandDims and Squeeze (which share
//! the input's buffer through [`Tensor::reshape`]), and Shape, ShapeN, Size and Rank.

use super::{
    check_index, check_len_attr, concrete_dims, fmt_ints, index_const, index_tensor, known_dims,
    out_type_attr, read_ints, scalar_index_const, shape_value,
};
use crate::graph::{AttrsExt, Graph, Output, TensorSpec};
use crate::ops::{kernel_fn, Cost, GradCtx, InferCtx, KernelBuildCtx, Op, Registry};
use crate::ops::{InferResult, KernelResult};
use crate::tensor::{DType, Dim, PartialShape, Tensor};
use crate::{Error, Result};

/// Output dims of reshaping a tensor of `n` elements (`None` when unknown) to `spec`, the
/// `shape` input with at most one -1. A -1 that cannot be inferred stays `None`.
fn reshape_dims(n: Option<usize>, spec: &[i64]) -> std::result::Result<Vec<Dim>, String> {
    let mut infer_at = None;
    let mut known = 1usize;
    for (i, &d) in spec.iter().enumerate() {
        if d == -1 {
            if let Some(j) = infer_at {
                return Err(format!(
                    "Only one input size may be -1, not both {j} and {i}"
                ));
            }
            infer_at = Some(i);
        } else if d < 0 {
            return Err(format!("Size {i} must be non-negative, not {d}"));
        } else {
            known = known
                .checked_mul(d as usize)
                .ok_or_else(|| format!("shape {} has too many elements", fmt_ints(spec)))?;
        }
    }
    let mut dims: Vec<Dim> = spec.iter().map(|&d| usize::try_from(d).ok()).collect();
    match (n, infer_at) {
        (Some(n), None) if n != known => Err(format!(
            "Cannot reshape a tensor with {n} elements to shape {} ({known} elements)",
            fmt_ints(spec)
        )),
        (Some(n), Some(i)) if known > 0 => {
            if n % known != 0 {
                return Err(format!(
                    "Cannot reshape a tensor with {n} elements to shape {}: the requested shape \
                     requires a multiple of {known}",
                    fmt_ints(spec)
                ));
            }
            dims[i] = Some(n / known);
            Ok(dims)
        }
        _ => Ok(dims),
    }
}

fn infer_reshape(ctx: &InferCtx<'_>) -> InferResult {
    ctx.expect_inputs(2)?;
    ctx.check_t_attr(ctx.dtype(0))?;
    check_index(ctx, 1, "Tshape")?;
    let shape_rank = ctx.shape(1).rank();
    if shape_rank.is_some_and(|r| r > 1) {
        return Err(format!(
            "shape must be a vector, but has shape {}",
            ctx.shape(1)
        ));
    }
    let out = match ctx.constant_ints(1) {
        Some(spec) => PartialShape::new(reshape_dims(ctx.shape(0).num_elements(), &spec)?),
        None => match shape_rank {
            Some(0) => PartialShape::with_rank(1),
            _ => match ctx.shape(1).dim(0) {
                Some(n) => PartialShape::with_rank(n),
                None => PartialShape::unknown(),
            },
        },
    };
    Ok(vec![TensorSpec::new(ctx.dtype(0), out)])
}

fn reshape_kernel(_: &KernelBuildCtx<'_>) -> KernelResult {
    kernel_fn(|k| {
        let spec = read_ints(k.input(1)?, "shape", 1)?;
        let x = k.take_input(0)?;
        let dims = reshape_dims(Some(x.len()), &spec).map_err(Error::invalid)?;
        if dims.contains(&None) {
            return Err(Error::invalid(format!(
                "Reshape cannot infer the missing input size for an empty tensor unless all \
                 specified input sizes are non-zero (shape {})",
                fmt_ints(&spec)
            )));
        }
        k.push_output(x.reshape(&concrete_dims(dims)?)?);
        Ok(())
    })
}

/// Dims with a 1 inserted at `axis` in `[-(rank+1), rank]`.
fn expand_dims(dims: &[Dim], axis: &[i64]) -> std::result::Result<Vec<Dim>, String> {
    let [axis] = axis else {
        return Err(format!(
            "'dim' must be a tensor with a single value, got {}",
            fmt_ints(axis)
        ));
    };
    let r = dims.len() as i64;
    if *axis < -r - 1 || *axis > r {
        return Err(format!("dim {axis} not in the interval [{}, {r}]", -r - 1));
    }
    let at = if *axis < 0 { axis + r + 1 } else { *axis } as usize;
    let mut out = dims.to_vec();
    out.insert(at, Some(1));
    Ok(out)
}

/// Errors unless input `i` is a scalar or a one-element vector (when known); `what` names it.
fn check_single_value(ctx: &InferCtx<'_>, i: usize, what: &str) -> std::result::Result<(), String> {
    let s = ctx.shape(i);
    match s.rank() {
        Some(0) | None => Ok(()),
        Some(1) if s.dim(0).is_none_or(|d| d == 1) => Ok(()),
        _ => Err(format!("{what} must be a scalar, but has shape {s}")),
    }
}

fn infer_expand_dims(ctx: &InferCtx<'_>) -> InferResult {
    ctx.expect_inputs(2)?;
    ctx.check_t_attr(ctx.dtype(0))?;
    check_index(ctx, 1, "Tdim")?;
    check_single_value(ctx, 1, "dim")?;
    let out = match (ctx.shape(0).dims(), ctx.constant_ints(1)) {
        (Some(dims), Some(axis)) => PartialShape::new(expand_dims(dims, &axis)?),
        (Some(dims), None) => PartialShape::with_rank(dims.len() + 1),
        (None, _) => PartialShape::unknown(),
    };
    Ok(vec![TensorSpec::new(ctx.dtype(0), out)])
}

fn expand_dims_kernel(_: &KernelBuildCtx<'_>) -> KernelResult {
    kernel_fn(|k| {
        let axis = read_ints(k.input(1)?, "dim", 1)?;
        let x = k.take_input(0)?;
        let dims = expand_dims(&known_dims(x.shape()), &axis).map_err(Error::invalid)?;
        k.push_output(x.reshape(&concrete_dims(dims)?)?);
        Ok(())
    })
}

/// Dims with the listed size-1 axes removed (every size-1 axis when `axes` is empty).
/// `None` when the result rank is unknown: no axes listed and some dim unknown.
fn squeeze_dims(dims: &[Dim], axes: &[i64]) -> std::result::Result<Option<Vec<Dim>>, String> {
    let r = dims.len() as i64;
    let mut drop = vec![false; dims.len()];
    for &a in axes {
        if a < -r || a >= r {
            return Err(format!(
                "Tried to squeeze dim index {a} for tensor with {r} dimensions."
            ));
        }
        let i = if a < 0 { a + r } else { a } as usize;
        if let Some(d) = dims[i] {
            if d != 1 {
                return Err(format!(
                    "Can not squeeze dim[{i}], expected a dimension of 1, got {d}"
                ));
            }
        }
        drop[i] = true;
    }
    if axes.is_empty() {
        if dims.contains(&None) {
            return Ok(None);
        }
        for (flag, d) in drop.iter_mut().zip(dims) {
            *flag = *d == Some(1);
        }
    }
    Ok(Some(
        dims.iter()
            .zip(&drop)
            .filter(|(_, &dropped)| !dropped)
            .map(|(&d, _)| d)
            .collect(),
    ))
}

fn infer_squeeze(ctx: &InferCtx<'_>) -> InferResult {
    ctx.expect_inputs(1)?;
    ctx.check_t_attr(ctx.dtype(0))?;
    let axes = ctx.attrs().ints_or("squeeze_dims", &[])?;
    let out = match ctx.shape(0).dims() {
        Some(dims) => match squeeze_dims(dims, &axes)? {
            Some(d) => PartialShape::new(d),
            None => PartialShape::unknown(),
        },
        None => PartialShape::unknown(),
    };
    Ok(vec![TensorSpec::new(ctx.dtype(0), out)])
}

fn squeeze_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let axes = ctx.attrs().ints_or("squeeze_dims", &[])?;
    kernel_fn(move |k| {
        let x = k.take_input(0)?;
        let dims = squeeze_dims(&known_dims(x.shape()), &axes)
            .map_err(Error::invalid)?
            .unwrap_or_default(); // never None: every dim is known here
        k.push_output(x.reshape(&concrete_dims(dims)?)?);
        Ok(())
    })
}

fn infer_shape(ctx: &InferCtx<'_>) -> InferResult {
    ctx.expect_inputs(1)?;
    ctx.check_t_attr(ctx.dtype(0))?;
    let out = out_type_attr(ctx.attrs())?;
    Ok(vec![TensorSpec::new(
        out,
        PartialShape::new(vec![ctx.shape(0).rank()]),
    )])
}

/// The shape of `x` as an int32 or int64 vector.
fn shape_tensor(x: &Tensor, out: DType) -> Result<Tensor> {
    let dims: Vec<i64> = x.shape().iter().map(|&d| d as i64).collect();
    index_tensor(dims, out, &[x.rank()])
}

fn shape_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let out = ctx.output_dtype(0);
    kernel_fn(move |k| {
        let s = shape_tensor(k.input(0)?, out)?;
        k.push_output(s);
        Ok(())
    })
}

fn infer_shape_n(ctx: &InferCtx<'_>) -> InferResult {
    ctx.expect_min_inputs(1)?;
    let dt = ctx.same_dtype()?;
    ctx.check_t_attr(dt)?;
    check_len_attr(ctx, "N", ctx.num_inputs())?;
    let out = out_type_attr(ctx.attrs())?;
    Ok(ctx
        .inputs()
        .iter()
        .map(|s| TensorSpec::new(out, PartialShape::new(vec![s.shape.rank()])))
        .collect())
}

fn shape_n_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let out = ctx.output_dtype(0);
    kernel_fn(move |k| {
        for i in 0..k.num_inputs() {
            let s = shape_tensor(k.input(i)?, out)?;
            k.push_output(s);
        }
        Ok(())
    })
}

fn infer_size(ctx: &InferCtx<'_>) -> InferResult {
    ctx.expect_inputs(1)?;
    ctx.check_t_attr(ctx.dtype(0))?;
    Ok(vec![TensorSpec::new(
        out_type_attr(ctx.attrs())?,
        PartialShape::scalar(),
    )])
}

fn size_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let out = ctx.output_dtype(0);
    kernel_fn(move |k| {
        let n = k.input(0)?.len() as i64;
        k.push_output(index_tensor(vec![n], out, &[])?);
        Ok(())
    })
}

fn infer_rank(ctx: &InferCtx<'_>) -> InferResult {
    ctx.expect_inputs(1)?;
    ctx.check_t_attr(ctx.dtype(0))?;
    Ok(vec![TensorSpec::new(DType::Int32, PartialShape::scalar())])
}

fn rank_kernel(_: &KernelBuildCtx<'_>) -> KernelResult {
    kernel_fn(|k| {
        let r = k.input(0)?.rank() as i64;
        k.push_output(index_tensor(vec![r], DType::Int32, &[])?);
        Ok(())
    })
}

/// `grad` reshaped to the shape of input 0 (TensorFlow's `_ReshapeToInput`).
fn reshape_to_input(ctx: &mut GradCtx<'_>) -> Result<Output> {
    let (x, grad) = (ctx.input(0), ctx.grad(0));
    let shape = shape_value(ctx.graph, x, DType::Int32)?;
    ctx.graph.reshape_t(grad, shape)
}

/// TensorFlow's `_ReshapeGrad`: the gradient reshaped back to the input's shape. When
/// exactly one dim of a known rank is unknown (and no dim is 0), that dim becomes -1 so
/// no Shape op is needed.
fn reshape_grad(ctx: &mut GradCtx<'_>) -> Result<Vec<Option<Output>>> {
    let (x, grad) = (ctx.input(0), ctx.grad(0));
    if let Some(dims) = ctx.graph.shape(x).dims().map(<[Dim]>::to_vec) {
        let unknown = dims.iter().filter(|d| d.is_none()).count();
        if unknown == 1 && !dims.contains(&Some(0)) {
            let spec: Vec<i64> = dims.iter().map(|d| d.map_or(-1, |d| d as i64)).collect();
            return Ok(vec![Some(ctx.graph.reshape(grad, &spec)?), None]);
        }
    }
    Ok(vec![Some(reshape_to_input(ctx)?), None])
}

/// TensorFlow's `_ExpandDimsGrad`: the gradient reshaped to the input's shape.
fn expand_dims_grad(ctx: &mut GradCtx<'_>) -> Result<Vec<Option<Output>>> {
    Ok(vec![Some(reshape_to_input(ctx)?), None])
}

/// TensorFlow's `_SqueezeGrad`: the gradient reshaped to the input's shape.
fn squeeze_grad(ctx: &mut GradCtx<'_>) -> Result<Vec<Option<Output>>> {
    Ok(vec![Some(reshape_to_input(ctx)?)])
}

pub(super) fn register(r: &mut Registry) {
    r.add(
        Op::new("Reshape", infer_reshape, reshape_kernel)
            .cost(Cost::Cheap)
            .grad(reshape_grad)
            .defaults(|| vec![("Tshape", DType::Int32.into())]),
    );
    r.add(
        Op::new("ExpandDims", infer_expand_dims, expand_dims_kernel)
            .cost(Cost::Cheap)
            .grad(expand_dims_grad)
            .defaults(|| vec![("Tdim", DType::Int32.into())]),
    );
    r.add(
        Op::new("Squeeze", infer_squeeze, squeeze_kernel)
            .cost(Cost::Cheap)
            .grad(squeeze_grad)
            .defaults(|| vec![("squeeze_dims", Vec::<i64>::new().into())]),
    );
    let out_type = || vec![("out_type", DType::Int32.into())];
    r.add(
        Op::new("Shape", infer_shape, shape_kernel)
            .cost(Cost::Cheap)
            .no_grad()
            .defaults(out_type),
    );
    r.add(
        Op::new("ShapeN", infer_shape_n, shape_n_kernel)
            .cost(Cost::Cheap)
            .no_grad()
            .defaults(out_type),
    );
    r.add(
        Op::new("Size", infer_size, size_kernel)
            .cost(Cost::Cheap)
            .no_grad()
            .defaults(out_type),
    );
    r.add(
        Op::new("Rank", infer_rank, rank_kernel)
            .cost(Cost::Cheap)
            .no_grad(),
    );
}

impl Graph {
    /// `x` with a new shape holding the same elements (`tf.reshape`); one dim may be -1 to
    /// be inferred. Shares the buffer, no copy.
    pub fn reshape(&mut self, x: Output, shape: &[i64]) -> Result<Output> {
        let s = index_const(self, shape)?;
        self.reshape_t(x, s)
    }

    /// [`Graph::reshape`] with the shape given by a tensor (int32 or int64 vector).
    pub fn reshape_t(&mut self, x: Output, shape: Output) -> Result<Output> {
        let (t, ts) = (self.dtype(x), self.dtype(shape));
        self.op("Reshape")
            .input(x)
            .input(shape)
            .attr("T", t)
            .attr("Tshape", ts)
            .build_output()
    }

    /// Inserts a size-1 dim at `axis` in `[-(rank+1), rank]` (`tf.expand_dims`).
    pub fn expand_dims(&mut self, x: Output, axis: i64) -> Result<Output> {
        let a = scalar_index_const(self, axis)?;
        let (t, ta) = (self.dtype(x), self.dtype(a));
        self.op("ExpandDims")
            .input(x)
            .input(a)
            .attr("T", t)
            .attr("Tdim", ta)
            .build_output()
    }

    /// Removes the listed size-1 dims, or every size-1 dim when `axes` is empty
    /// (`tf.squeeze`).
    pub fn squeeze(&mut self, x: Output, axes: &[i64]) -> Result<Output> {
        let t = self.dtype(x);
        self.op("Squeeze")
            .input(x)
            .attr("T", t)
            .attr("squeeze_dims", axes.to_vec())
            .build_output()
    }

    /// The shape of `x` as an int32 vector (`tf.shape`, op Shape).
    pub fn shape_of(&mut self, x: Output) -> Result<Output> {
        self.shape_of_as(x, DType::Int32)
    }

    /// The shape of `x` as an `out_type` (int32 or int64) vector.
    pub fn shape_of_as(&mut self, x: Output, out_type: DType) -> Result<Output> {
        let t = self.dtype(x);
        self.op("Shape")
            .input(x)
            .attr("T", t)
            .attr("out_type", out_type)
            .build_output()
    }

    /// The shapes of several tensors of one dtype as int32 vectors (`tf.shape_n`).
    pub fn shape_n(&mut self, xs: &[Output]) -> Result<Vec<Output>> {
        let t = xs
            .first()
            .map(|&x| self.dtype(x))
            .ok_or_else(|| Error::invalid("shape_n needs at least one tensor"))?;
        let id = self
            .op("ShapeN")
            .inputs(xs)
            .attr("N", xs.len() as i64)
            .attr("T", t)
            .attr("out_type", DType::Int32)
            .build()?;
        Ok((0..xs.len()).map(|i| id.output(i)).collect())
    }

    /// The number of elements of `x` as an int32 scalar (`tf.size`).
    pub fn size(&mut self, x: Output) -> Result<Output> {
        let t = self.dtype(x);
        self.op("Size")
            .input(x)
            .attr("T", t)
            .attr("out_type", DType::Int32)
            .build_output()
    }

    /// The rank of `x` as an int32 scalar (`tf.rank`).
    pub fn rank(&mut self, x: Output) -> Result<Output> {
        let t = self.dtype(x);
        self.op("Rank").input(x).attr("T", t).build_output()
    }
}

#[cfg(test)]
mod tests {
    use crate::test_util::{iota, run, run_err, run_fed, t};
    use crate::{DType, Graph, PartialShape, Tensor};

    #[test]
    fn reshape_infers_minus_one_and_shares_the_buffer() {
        let mut g = Graph::new();
        let x = g.constant(iota(&[2, 3])).unwrap();
        let r = g.reshape(x, &[3, -1]).unwrap();
        assert_eq!(g.shape(r).to_known(), Some(vec![3, 2]));
        let flat = g.reshape(x, &[-1]).unwrap();
        let out = run(&g, &[x, r, flat]);
        // np.arange(6).reshape(3, -1)
        assert_eq!(out[1], t(&[3, 2], &[0, 1, 2, 3, 4, 5]));
        assert_eq!(out[2], t(&[6], &[0, 1, 2, 3, 4, 5]));
        assert!(out[1].shares_buffer_with(&out[0]));
        // a scalar is a reshape of a one-element tensor
        let one = g.constant(Tensor::from([7u8])).unwrap();
        let s = g.reshape(one, &[]).unwrap();
        assert_eq!(g.shape(s).rank(), Some(0));
        assert_eq!(run(&g, &[s])[0], Tensor::scalar(7u8));
    }

    #[test]
    fn reshape_errors_name_the_sizes() {
        let mut g = Graph::new();
        let x = g.constant(iota(&[2, 3])).unwrap();
        let msg = g.reshape(x, &[4]).unwrap_err().to_string();
        assert!(
            msg.contains("Reshape") && msg.contains("6 elements") && msg.contains("[4]"),
            "{msg}"
        );
        let msg = g.reshape(x, &[-1, -1]).unwrap_err().to_string();
        assert!(msg.contains("Only one input size may be -1"), "{msg}");
        let msg = g.reshape(x, &[4, -1]).unwrap_err().to_string();
        assert!(msg.contains("multiple of 4"), "{msg}");
        let msg = g.reshape(x, &[-2, 3]).unwrap_err().to_string();
        assert!(msg.contains("non-negative"), "{msg}");
        // Unknown at build time: checked when run.
        let p = g.placeholder(DType::Float32, [None, Some(3)], "p").unwrap();
        let r = g.reshape(p, &[-1, 2]).unwrap();
        assert_eq!(g.shape(r).to_string(), "[?,2]");
        let msg = run_err(&g, &[(p, Tensor::zeros(DType::Float32, &[3, 3]))], r);
        assert!(
            msg.contains("9 elements") && msg.contains("multiple of 2"),
            "{msg}"
        );
        // an empty tensor cannot infer a -1 next to a 0
        let e = g.reshape(p, &[0, -1]).unwrap();
        assert_eq!(g.shape(e).to_string(), "[0,?]");
        let msg = run_err(&g, &[(p, Tensor::zeros(DType::Float32, &[0, 3]))], e);
        assert!(msg.contains("empty tensor"), "{msg}");
    }

    #[test]
    fn reshape_with_runtime_shape_tensor() {
        let mut g = Graph::new();
        let x = g.constant(iota(&[2, 3])).unwrap();
        let s = g.placeholder(DType::Int64, [2], "s").unwrap();
        let r = g.reshape_t(x, s).unwrap();
        assert_eq!(g.shape(r).to_string(), "[?,?]");
        let out = run_fed(&g, &[(s, Tensor::from([-1i64, 1]))], &[r]);
        assert_eq!(out[0], t(&[6, 1], &[0, 1, 2, 3, 4, 5]));
        // the shape of another tensor, known while building
        let y = g.constant(Tensor::zeros(DType::Bool, &[3, 2])).unwrap();
        let sy = g.shape_of(y).unwrap();
        let r2 = g.reshape_t(x, sy).unwrap();
        assert_eq!(g.shape(r2).to_known(), Some(vec![3, 2]));
        let f = g.constant(1.5f32).unwrap();
        assert!(g
            .reshape_t(x, f)
            .unwrap_err()
            .to_string()
            .contains("int32 or int64"));
    }

    #[test]
    fn expand_dims_and_squeeze() {
        let mut g = Graph::new();
        let x = g.constant(Tensor::from([[true, false, true]])).unwrap();
        let e0 = g.expand_dims(x, 0).unwrap();
        let e_last = g.expand_dims(x, -1).unwrap();
        let e_mid = g.expand_dims(x, -2).unwrap();
        assert_eq!(g.shape(e0).to_known(), Some(vec![1, 1, 3]));
        assert_eq!(g.shape(e_last).to_known(), Some(vec![1, 3, 1]));
        assert_eq!(g.shape(e_mid).to_known(), Some(vec![1, 1, 3]));
        let msg = g.expand_dims(x, 3).unwrap_err().to_string();
        assert!(msg.contains("dim 3 not in the interval [-3, 2]"), "{msg}");
        let msg = g.expand_dims(x, -4).unwrap_err().to_string();
        assert!(msg.contains("dim -4"), "{msg}");
        let s_all = g.squeeze(x, &[]).unwrap();
        let s0 = g.squeeze(x, &[-2]).unwrap();
        assert_eq!(g.shape(s_all).to_known(), Some(vec![3]));
        assert_eq!(g.shape(s0).to_known(), Some(vec![3]));
        let msg = g.squeeze(x, &[1]).unwrap_err().to_string();
        assert!(
            msg.contains("Can not squeeze dim[1], expected a dimension of 1, got 3"),
            "{msg}"
        );
        let msg = g.squeeze(x, &[2]).unwrap_err().to_string();
        assert!(msg.contains("squeeze dim index 2"), "{msg}");
        let out = run(&g, &[x, e_last, s_all]);
        assert_eq!(
            out[1],
            Tensor::new(&[1, 3, 1], vec![true, false, true]).unwrap()
        );
        assert_eq!(out[2], Tensor::from([true, false, true]));
        assert!(out[1].shares_buffer_with(&out[0]) && out[2].shares_buffer_with(&out[0]));
    }

    #[test]
    fn squeeze_checks_unknown_dims_at_run_time() {
        let mut g = Graph::new();
        let p = g
            .placeholder(DType::Float64, [None, Some(1), None], "p")
            .unwrap();
        let all = g.squeeze(p, &[]).unwrap();
        assert_eq!(g.shape(all).rank(), None);
        let first = g.squeeze(p, &[0]).unwrap();
        assert_eq!(g.shape(first).to_string(), "[1,?]");
        let v = Tensor::new(&[1, 1, 2], vec![1.0f64, 2.0]).unwrap();
        let out = run_fed(&g, &[(p, v.clone())], &[all, first]);
        assert_eq!(out[0], Tensor::from([1.0f64, 2.0]));
        assert_eq!(out[1].shape(), &[1, 2]);
        let bad = Tensor::new(&[2, 1, 1], vec![1.0f64, 2.0]).unwrap();
        let msg = run_err(&g, &[(p, bad)], first);
        assert!(msg.contains("Can not squeeze dim[0]"), "{msg}");
        // expand_dims of an unknown-rank input with a known axis
        let u = g
            .placeholder(DType::Int32, PartialShape::unknown(), "u")
            .unwrap();
        let e = g.expand_dims(u, -1).unwrap();
        assert_eq!(g.shape(e).rank(), None);
        let out = run_fed(&g, &[(u, Tensor::scalar(4i32))], &[e]);
        assert_eq!(out[0], t(&[1], &[4]));
    }

    #[test]
    fn shape_size_rank() {
        let mut g = Graph::new();
        let p = g
            .placeholder(DType::UInt8, [None, Some(0), Some(4)], "p")
            .unwrap();
        let s = g.shape_of(p).unwrap();
        let s64 = g.shape_of_as(p, DType::Int64).unwrap();
        let n = g.size(p).unwrap();
        let r = g.rank(p).unwrap();
        let q = g.constant(Tensor::zeros(DType::UInt8, &[2])).unwrap();
        let sn = g.shape_n(&[p, q]).unwrap();
        assert_eq!(g.shape(s).to_known(), Some(vec![3]));
        assert_eq!(g.dtype(s64), DType::Int64);
        assert_eq!(g.shape(n).rank(), Some(0));
        assert_eq!(g.dtype(r), DType::Int32);
        assert_eq!(g.shape(sn[1]).to_known(), Some(vec![1]));
        let v = Tensor::zeros(DType::UInt8, &[5, 0, 4]);
        let out = run_fed(&g, &[(p, v)], &[s, s64, n, r, sn[0], sn[1]]);
        assert_eq!(out[0], t(&[3], &[5, 0, 4]));
        assert_eq!(out[1], Tensor::from([5i64, 0, 4]));
        assert_eq!(out[2], Tensor::scalar(0i32));
        assert_eq!(out[3], Tensor::scalar(3i32));
        assert_eq!(out[4], t(&[3], &[5, 0, 4]));
        assert_eq!(out[5], t(&[1], &[2]));
        let msg = g
            .op("Shape")
            .input(p)
            .attr("out_type", DType::Float32)
            .build()
            .unwrap_err()
            .to_string();
        assert!(msg.contains("out_type"), "{msg}");
        let f = g.constant(1.0f32).unwrap();
        let msg = g.shape_n(&[p, f]).unwrap_err().to_string();
        assert!(msg.contains("float32"), "{msg}");
    }

    #[test]
    fn shape_ops_are_cheap_and_not_differentiable() {
        use crate::ops::{registry, Cost, Gradient};
        for name in [
            "Reshape",
            "ExpandDims",
            "Squeeze",
            "Shape",
            "ShapeN",
            "Size",
            "Rank",
        ] {
            assert_eq!(
                registry::lookup(name).unwrap().cost(),
                Cost::Cheap,
                "{name}"
            );
        }
        for name in ["Shape", "ShapeN", "Size", "Rank"] {
            let op = registry::lookup(name).unwrap();
            assert!(
                matches!(op.gradient(), Gradient::NotDifferentiable),
                "{name}"
            );
        }
    }
}

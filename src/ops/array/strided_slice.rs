//! StridedSlice: NumPy-style basic indexing (`x[1:, ::-1, tf.newaxis, ..., 0]`), with
//! TensorFlow's five masks, negative strides and clamping; and StridedSliceGrad, its
//! gradient, which writes a slice's values back into zeros of the input's shape.
//!
//! [`plan`] follows TensorFlow's `ValidateStridedSliceOp`: the sparse spec (one entry per
//! index in begin/end/strides) is expanded into a dense spec (one entry per input dim) by
//! filling in the ellipsis, then every dense dim gets a canonical begin, stride and length.
//! Shape inference runs the same function on partial shapes.

use super::layout::{strided_gather, strided_scatter, strides};
use super::{
    check_index, check_rank, concrete_dims, fmt_dims, fmt_ints, index_const, known_dims, read_ints,
    shape_value, shaped_like, to_dims,
};
use crate::graph::{Attrs, AttrsExt, Graph, OpBuilder, Output, TensorSpec};
use crate::ops::{kernel_fn, GradCtx, InferCtx, KernelBuildCtx, KernelCtx, Op, Registry};
use crate::ops::{InferResult, KernelResult};
use crate::tensor::{alloc, Dim, Element, PartialShape, Tensor};
use crate::{with_dtype, Error, Result};

/// The masks of a StridedSlice; bit `i` applies to index `i` of begin/end/strides.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StridedSliceMasks {
    /// Ignore `begin[i]`: start from the first element (the last for negative strides).
    pub begin: i64,
    /// Ignore `end[i]`: run to the end (the start for negative strides).
    pub end: i64,
    /// Index `i` is an ellipsis (`...`), standing for as many full dims as needed.
    pub ellipsis: i64,
    /// Index `i` inserts a new size-1 dim (`tf.newaxis`).
    pub new_axis: i64,
    /// Index `i` takes the single element `begin[i]` and removes the dim (`x[3]`).
    pub shrink_axis: i64,
}

impl StridedSliceMasks {
    fn from_attrs(attrs: &Attrs) -> std::result::Result<Self, String> {
        Ok(StridedSliceMasks {
            begin: attrs.int_or("begin_mask", 0)?,
            end: attrs.int_or("end_mask", 0)?,
            ellipsis: attrs.int_or("ellipsis_mask", 0)?,
            new_axis: attrs.int_or("new_axis_mask", 0)?,
            shrink_axis: attrs.int_or("shrink_axis_mask", 0)?,
        })
    }

    /// Sets the five mask attrs on a node being built.
    fn set_attrs<'g>(&self, b: OpBuilder<'g>) -> OpBuilder<'g> {
        b.attr("begin_mask", self.begin)
            .attr("end_mask", self.end)
            .attr("ellipsis_mask", self.ellipsis)
            .attr("new_axis_mask", self.new_axis)
            .attr("shrink_axis_mask", self.shrink_axis)
    }
}

/// Bit `i` of a mask.
fn bit(mask: i64, i: usize) -> bool {
    i < 64 && (mask >> i) & 1 != 0
}

/// Where a final output dim comes from.
#[derive(Clone, Copy)]
enum FinalDim {
    /// Dense (input) dim `d`.
    Dense(usize),
    /// A new size-1 dim.
    NewAxis,
}

/// One input dim's slice: first index, step and length (`None` when unknown).
#[derive(Clone, Copy)]
struct DimSlice {
    begin: i64,
    stride: i64,
    len: Dim,
}

/// The canonical slice of every input dim and the final output dims.
struct Plan {
    dims: Vec<DimSlice>,
    final_shape: Vec<Dim>,
}

/// One dense (per input dim) slice spec before canonicalization.
#[derive(Clone, Copy)]
struct DenseDim {
    begin: i64,
    end: i64,
    stride: i64,
    begin_masked: bool,
    end_masked: bool,
    shrink: bool,
}

/// Canonicalizes a strided slice of `input` (dims may be unknown). `begin` and `end` are
/// `None` when not known (shape inference); the kernel always has them.
fn plan(
    input: &[Dim],
    begin: Option<&[i64]>,
    end: Option<&[i64]>,
    strides: &[i64],
    m: StridedSliceMasks,
) -> std::result::Result<Plan, String> {
    let n = strides.len();
    if begin.is_some_and(|b| b.len() != n) || end.is_some_and(|e| e.len() != n) || n >= 32 {
        let show = |v: Option<&[i64]>| v.map_or("?".to_string(), |v| format!("[{}]", v.len()));
        return Err(format!(
            "Expected begin, end, and strides to be 1D equal size tensors of fewer than 32 \
             elements, but got shapes {}, {}, and [{n}] instead.",
            show(begin),
            show(end)
        ));
    }
    if m.ellipsis & m.ellipsis.wrapping_sub(1) != 0 {
        return Err("Multiple ellipses in slice spec not allowed".into());
    }
    // Step 1: count the new axes after the ellipsis; add an implicit ellipsis at the end.
    let mut ellipsis = m.ellipsis;
    let mut sparse_dims = n;
    let mut ellipsis_seen = false;
    let mut new_axis_after_ellipsis = 0i64;
    for i in 0..n {
        if ellipsis_seen && bit(m.new_axis, i) {
            new_axis_after_ellipsis += 1;
        }
        ellipsis_seen |= bit(ellipsis, i);
    }
    if !ellipsis_seen {
        ellipsis |= 1 << n;
        sparse_dims += 1;
    }
    // Step 2: the dense spec, one entry per input dim.
    let rank = input.len();
    let full = DenseDim {
        begin: 0,
        end: 0,
        stride: 1,
        begin_masked: true,
        end_masked: true,
        shrink: false,
    };
    let mut dense = vec![full; rank];
    let mut gather = Vec::with_capacity(sparse_dims + rank);
    let mut full_index = 0usize;
    for i in 0..sparse_dims {
        if bit(ellipsis, i) {
            let next = (rank as i64 - (sparse_dims - i) as i64 + 1 + new_axis_after_ellipsis)
                .min(rank as i64);
            while (full_index as i64) < next {
                dense[full_index] = full;
                gather.push(Some(FinalDim::Dense(full_index)));
                full_index += 1;
            }
        } else if bit(m.new_axis, i) {
            gather.push(Some(FinalDim::NewAxis));
        } else {
            if full_index == rank {
                return Err(format!(
                    "Index out of range using input dim {full_index}; input has only {rank} dims"
                ));
            }
            let shrink = bit(m.shrink_axis, i);
            dense[full_index] = DenseDim {
                begin: begin.map_or(0, |b| b[i]),
                end: end.map_or(0, |e| e[i]),
                stride: strides[i],
                begin_masked: bit(m.begin, i),
                end_masked: bit(m.end, i),
                shrink,
            };
            gather.push((!shrink).then_some(FinalDim::Dense(full_index)));
            full_index += 1;
        }
    }
    // Step 3: canonical begin and length of every dense dim, with bounds checks.
    let known_range = begin.is_some() && end.is_some();
    let mut dims = Vec::with_capacity(rank);
    for (i, (s, &dim)) in dense.iter().zip(input).enumerate() {
        let stride = s.stride;
        if stride == 0 {
            return Err(format!("strides[{i}] must be non-zero"));
        }
        if s.shrink && stride <= 0 {
            return Err("only stride 1 allowed on non-range indexing.".into());
        }
        let Some(d) = dim else {
            let len = if s.shrink { Some(1) } else { None };
            dims.push(DimSlice {
                begin: 0,
                stride,
                len,
            });
            continue;
        };
        let d = d as i64;
        let (mut b, mut e) = (s.begin, s.end);
        let interval = if known_range {
            if s.shrink {
                let x = if b < 0 { d.saturating_add(b) } else { b };
                if x < 0 || x >= d {
                    return Err(format!("slice index {b} of dimension {i} out of bounds."));
                }
                b = x;
                e = x + 1;
            } else {
                // Masked ends take the whole range; others count negatives from the end
                // and are clamped to [0, d] (forward) or [-1, d - 1] (backward).
                let (lo, hi) = if stride > 0 { (0, d) } else { (-1, d - 1) };
                let canonical = |x: i64, masked: bool, is_end: bool| {
                    if masked {
                        if (stride > 0) != is_end {
                            lo
                        } else {
                            hi
                        }
                    } else {
                        let fwd = if x < 0 { d.saturating_add(x) } else { x };
                        fwd.clamp(lo, hi)
                    }
                };
                b = canonical(b, s.begin_masked, false);
                e = canonical(e, s.end_masked, true);
            }
            Some(e - b)
        } else if s.shrink {
            Some(1)
        } else if s.begin_masked && s.end_masked {
            Some(if stride < 0 { -d } else { d })
        } else {
            None
        };
        let len = interval.map(|len| {
            if len == 0 || (len < 0) != (stride < 0) {
                0
            } else {
                // ceil(len / stride), both of one sign
                (len / stride + i64::from(len % stride != 0)) as usize
            }
        });
        dims.push(DimSlice {
            begin: b,
            stride,
            len,
        });
    }
    // Step 4: the final shape drops shrunk dims and adds new axes.
    let final_shape = gather
        .iter()
        .flatten()
        .map(|g| match *g {
            FinalDim::Dense(d) => dims[d].len,
            FinalDim::NewAxis => Some(1),
        })
        .collect();
    Ok(Plan { dims, final_shape })
}

/// Checks inputs 1, 2 and 3 (begin, end, strides: vectors of one index dtype and one
/// length) and the masks; returns the slice's output shape for an input of shape `input`.
fn check_spec(
    ctx: &InferCtx<'_>,
    input: &PartialShape,
) -> std::result::Result<PartialShape, String> {
    let it = check_index(ctx, 1, "Index")?;
    for (i, name) in [(1, "begin"), (2, "end"), (3, "strides")] {
        if check_index(ctx, i, "Index")? != it {
            return Err(format!(
                "begin, end and strides must have one dtype; {name} is {}",
                ctx.dtype(i)
            ));
        }
        check_rank(ctx, i, 1, name)?;
    }
    let lens = PartialShape::with_rank(1)
        .merge(ctx.shape(1))
        .and_then(|s| s.merge(ctx.shape(2)))
        .and_then(|s| s.merge(ctx.shape(3)))
        .map_err(|e| format!("begin, end and strides must have one length: {e}"))?;
    let m = StridedSliceMasks::from_attrs(ctx.attrs())?;
    Ok(match (input.dims(), ctx.constant_ints(3), lens.dim(0)) {
        (Some(dims), Some(strides), Some(_)) => {
            let (b, e) = (ctx.constant_ints(1), ctx.constant_ints(2));
            PartialShape::new(plan(dims, b.as_deref(), e.as_deref(), &strides, m)?.final_shape)
        }
        _ => PartialShape::unknown(),
    })
}

fn infer_strided_slice(ctx: &InferCtx<'_>) -> InferResult {
    ctx.expect_inputs(4)?;
    ctx.check_t_attr(ctx.dtype(0))?;
    let out = check_spec(ctx, ctx.shape(0))?;
    Ok(vec![TensorSpec::new(ctx.dtype(0), out)])
}

/// A slice's elements as an affine view of a row-major buffer.
struct View {
    /// Per-dim lengths.
    lens: Vec<usize>,
    /// Address of the first element.
    offset: isize,
    /// Per-dim steps.
    steps: Vec<isize>,
}

/// The view of the slice a plan describes in a buffer of `shape` (the plan's input
/// shape); `None` when the slice is empty.
fn view(plan: &Plan, shape: &[usize]) -> Result<Option<View>> {
    let lens = concrete_dims(plan.dims.iter().map(|s| s.len).collect())?;
    if lens.contains(&0) {
        return Ok(None);
    }
    let st = strides(shape);
    let offset: i64 = plan
        .dims
        .iter()
        .zip(&st)
        .map(|(s, &k)| s.begin * k as i64)
        .sum();
    // A dim of length 1 never steps (its stride may be huge: `x[::2**62]`); longer ones
    // step at most across the dim, so the product fits.
    let steps: Vec<isize> = plan
        .dims
        .iter()
        .zip(&st)
        .map(|(s, &k)| match s.len {
            Some(len) if len > 1 => (s.stride * k as i64) as isize,
            _ => 0,
        })
        .collect();
    Ok(Some(View {
        lens,
        offset: offset as isize,
        steps,
    }))
}

/// Applies a plan made for `x`'s concrete shape.
fn strided_slice<T: Element>(x: Tensor, plan: Plan) -> Result<Tensor> {
    let out_shape = concrete_dims(plan.final_shape.clone())?;
    let is_identity = plan
        .dims
        .iter()
        .zip(x.shape())
        .all(|(s, &d)| s.begin == 0 && s.stride == 1 && s.len == Some(d));
    if is_identity {
        return x.reshape(&out_shape);
    }
    let data = match view(&plan, x.shape())? {
        Some(v) => strided_gather(x.as_slice::<T>()?, v.offset, &v.lens, &v.steps),
        None => Vec::new(),
    };
    Tensor::new(&out_shape, data)
}

/// Zeros of `shape` with `dy` written into the slice a plan made for `shape` describes.
fn scatter_slice<T: Element>(shape: &[usize], plan: Plan, dy: &Tensor) -> Result<Tensor> {
    let mut out = alloc::try_filled(shape, T::default())?;
    if let Some(v) = view(&plan, shape)? {
        strided_scatter(&mut out, v.offset, &v.lens, &v.steps, dy.as_slice::<T>()?);
    }
    Tensor::new(shape, out)
}

/// Reads run-time begin, end and strides (inputs 1 to 3) and plans the slice of a tensor
/// of `shape`.
fn run_plan(k: &KernelCtx<'_>, shape: &[usize], m: StridedSliceMasks) -> Result<Plan> {
    let begin = read_ints(k.input(1)?, "begin", 1)?;
    let end = read_ints(k.input(2)?, "end", 1)?;
    let strides = read_ints(k.input(3)?, "strides", 1)?;
    plan(&known_dims(shape), Some(&begin), Some(&end), &strides, m).map_err(|e| {
        Error::invalid(format!(
            "{e} (begin {}, end {}, strides {})",
            fmt_ints(&begin),
            fmt_ints(&end),
            fmt_ints(&strides)
        ))
    })
}

fn strided_slice_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let m = StridedSliceMasks::from_attrs(ctx.attrs())?;
    with_dtype!(any, ctx.input_dtype(0), T => kernel_fn(move |k| {
        let x = k.take_input(0)?;
        let p = run_plan(k, x.shape(), m)?;
        k.push_output(strided_slice::<T>(x, p)?);
        Ok(())
    }))
}

fn infer_strided_slice_grad(ctx: &InferCtx<'_>) -> InferResult {
    ctx.expect_inputs(5)?;
    let t = ctx.dtype(4);
    ctx.check_t_attr(t)?;
    check_index(ctx, 0, "Index")?;
    check_rank(ctx, 0, 1, "shape")?;
    if ctx.dtype(0) != ctx.dtype(1) {
        return Err(format!(
            "shape is {} but begin is {}; shape, begin, end and strides must have one dtype",
            ctx.dtype(0),
            ctx.dtype(1)
        ));
    }
    let out = match ctx.constant_ints(0) {
        Some(dims) => {
            if let Some(d) = dims.iter().find(|&&d| d < 0) {
                return Err(format!("shape {} has a negative dim {d}", fmt_ints(&dims)));
            }
            PartialShape::from_i64(&dims)
        }
        None => match ctx.shape(0).dim(0) {
            Some(r) => PartialShape::with_rank(r),
            None => PartialShape::unknown(),
        },
    };
    let sliced = check_spec(ctx, &out)?;
    if sliced.merge(ctx.shape(4)).is_err() {
        return Err(format!(
            "shape of dy was {} instead of {sliced}",
            ctx.shape(4)
        ));
    }
    Ok(vec![TensorSpec::new(t, out)])
}

fn strided_slice_grad_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let m = StridedSliceMasks::from_attrs(ctx.attrs())?;
    with_dtype!(any, ctx.input_dtype(4), T => kernel_fn(move |k| {
        let shape = to_dims(&read_ints(k.input(0)?, "shape", 1)?, "shape")?;
        let p = run_plan(k, &shape, m)?;
        let dy = k.input(4)?;
        let want = concrete_dims(p.final_shape.clone())?;
        if dy.shape() != want {
            return Err(Error::invalid(format!(
                "shape of dy was {} instead of {}",
                fmt_dims(dy.shape()),
                fmt_dims(&want)
            )));
        }
        let out = scatter_slice::<T>(&shape, p, dy)?;
        k.push_output(out);
        Ok(())
    }))
}

/// TensorFlow's `_StridedSliceGrad`: StridedSliceGrad of the input's shape with the
/// slice's begin, end, strides and masks writes the gradient back into zeros.
fn strided_slice_grad(ctx: &mut GradCtx<'_>) -> Result<Vec<Option<Output>>> {
    let (x, begin, end, strides) = (ctx.input(0), ctx.input(1), ctx.input(2), ctx.input(3));
    let (grad, m) = (
        ctx.grad(0),
        StridedSliceMasks::from_attrs(&ctx.attrs()).map_err(Error::invalid)?,
    );
    let g = &mut *ctx.graph;
    let shape = shape_value(g, x, g.dtype(begin))?;
    let dx = g.strided_slice_grad(shape, begin, end, strides, grad, m)?;
    Ok(vec![Some(shaped_like(g, dx, x)?), None, None, None])
}

/// TensorFlow's `_StridedSliceGradGrad`: the same slice of the gradient, for `dy`.
fn strided_slice_grad_grad(ctx: &mut GradCtx<'_>) -> Result<Vec<Option<Output>>> {
    let (begin, end, strides) = (ctx.input(1), ctx.input(2), ctx.input(3));
    let (grad, m) = (
        ctx.grad(0),
        StridedSliceMasks::from_attrs(&ctx.attrs()).map_err(Error::invalid)?,
    );
    let ddy = ctx.graph.strided_slice_t(grad, begin, end, strides, m)?;
    Ok(vec![None, None, None, None, Some(ddy)])
}

/// TensorFlow's default mask attrs.
fn mask_defaults() -> Vec<(&'static str, crate::graph::AttrValue)> {
    vec![
        ("begin_mask", 0i64.into()),
        ("end_mask", 0i64.into()),
        ("ellipsis_mask", 0i64.into()),
        ("new_axis_mask", 0i64.into()),
        ("shrink_axis_mask", 0i64.into()),
    ]
}

pub(super) fn register(r: &mut Registry) {
    r.add(
        Op::new("StridedSlice", infer_strided_slice, strided_slice_kernel)
            .grad(strided_slice_grad)
            .defaults(mask_defaults),
    );
    r.add(
        Op::new(
            "StridedSliceGrad",
            infer_strided_slice_grad,
            strided_slice_grad_kernel,
        )
        .grad(strided_slice_grad_grad)
        .defaults(mask_defaults),
    );
}

impl Graph {
    /// NumPy-style slicing `x[begin:end:strides]` with TensorFlow's masks
    /// (`tf.strided_slice`): `x[1:, ::-1, tf.newaxis, ..., 0]` is begin `[1, 0, 0, 0, 0]`,
    /// end `[0, 0, 0, 0, 1]`, strides `[1, -1, 1, 1, 1]` with masks begin `0b00010`, end
    /// `0b00011`, new_axis `0b00100`, ellipsis `0b01000` and shrink_axis `0b10000`.
    pub fn strided_slice(
        &mut self,
        x: Output,
        begin: &[i64],
        end: &[i64],
        strides: &[i64],
        masks: StridedSliceMasks,
    ) -> Result<Output> {
        let all: Vec<i64> = begin.iter().chain(end).chain(strides).copied().collect();
        let wide = all.iter().any(|&v| i32::try_from(v).is_err());
        let make = |g: &mut Graph, v: &[i64]| {
            if wide {
                g.constant(Tensor::vector(v.to_vec()))
            } else {
                index_const(g, v)
            }
        };
        let (b, e, s) = (make(self, begin)?, make(self, end)?, make(self, strides)?);
        self.strided_slice_t(x, b, e, s, masks)
    }

    /// [`Graph::strided_slice`] with begin, end and strides given by tensors (int32 or
    /// int64 vectors of one dtype and length).
    pub fn strided_slice_t(
        &mut self,
        x: Output,
        begin: Output,
        end: Output,
        strides: Output,
        masks: StridedSliceMasks,
    ) -> Result<Output> {
        let (t, ti) = (self.dtype(x), self.dtype(begin));
        let b = self
            .op("StridedSlice")
            .input(x)
            .input(begin)
            .input(end)
            .input(strides)
            .attr("T", t)
            .attr("Index", ti);
        masks.set_attrs(b).build_output()
    }

    /// The gradient of a strided slice (op StridedSliceGrad): zeros of `shape` (an int32 or
    /// int64 vector) with `dy` written where `x[begin:end:strides]` with these masks reads
    /// from a tensor of that shape; `dy` must have the slice's shape.
    pub fn strided_slice_grad(
        &mut self,
        shape: Output,
        begin: Output,
        end: Output,
        strides: Output,
        dy: Output,
        masks: StridedSliceMasks,
    ) -> Result<Output> {
        let (t, ti) = (self.dtype(dy), self.dtype(shape));
        let b = self
            .op("StridedSliceGrad")
            .input(shape)
            .input(begin)
            .input(end)
            .input(strides)
            .input(dy)
            .attr("T", t)
            .attr("Index", ti);
        masks.set_attrs(b).build_output()
    }
}

#[cfg(test)]
mod tests {
    use super::StridedSliceMasks;
    use crate::test_util::{iota, run, run_err, run_fed, t};
    use crate::{DType, Graph, PartialShape, Tensor};

    /// `[begin, end, ellipsis, new_axis, shrink_axis]` masks.
    fn masks(m: [i64; 5]) -> StridedSliceMasks {
        StridedSliceMasks {
            begin: m[0],
            end: m[1],
            ellipsis: m[2],
            new_axis: m[3],
            shrink_axis: m[4],
        }
    }

    type Case = (
        &'static str,
        &'static [i64],
        &'static [i64],
        &'static [i64],
        [i64; 5],
        &'static [usize],
        &'static [i32],
    );

    /// Slices of `x = np.arange(24).reshape(2, 3, 4)`: begin/end/strides/masks as
    /// TensorFlow's `Tensor.__getitem__` builds them for the expression, values from NumPy
    /// (`tf.newaxis` = `None`).
    const CASES: &[Case] = &[
        (
            "x[1:, ::-1, tf.newaxis, ..., 0]",
            &[1, 0, 0, 0, 0],
            &[0, 0, 0, 0, 1],
            &[1, -1, 1, 1, 1],
            [2, 3, 8, 4, 16],
            &[1, 3, 1],
            &[20, 16, 12],
        ),
        (
            "x[..., 1]",
            &[0, 1],
            &[0, 2],
            &[1, 1],
            [0, 0, 1, 0, 2],
            &[2, 3],
            &[1, 5, 9, 13, 17, 21],
        ),
        (
            "x[-1]",
            &[-1],
            &[0],
            &[1],
            [0, 0, 0, 0, 1],
            &[3, 4],
            &[12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23],
        ),
        (
            "x[:, -2:, ::2]",
            &[0, -2, 0],
            &[0, 0, 0],
            &[1, 1, 2],
            [5, 7, 0, 0, 0],
            &[2, 2, 2],
            &[4, 6, 8, 10, 16, 18, 20, 22],
        ),
        (
            "x[::-1, 1:-1:1, 3:0:-2]",
            &[0, 1, 3],
            &[0, -1, 0],
            &[-1, 1, -2],
            [1, 1, 0, 0, 0],
            &[2, 1, 2],
            &[19, 17, 7, 5],
        ),
        (
            "x[tf.newaxis, 0, ..., tf.newaxis]",
            &[0, 0, 0, 0],
            &[0, 1, 0, 0],
            &[1, 1, 1, 1],
            [0, 0, 4, 9, 2],
            &[1, 3, 4, 1],
            &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
        ),
        (
            "x[5:, 10:-10]",
            &[5, 10],
            &[0, -10],
            &[1, 1],
            [0, 1, 0, 0, 0],
            &[0, 0, 4],
            &[],
        ),
        (
            "x[:, :, -100:100]",
            &[0, 0, -100],
            &[0, 0, 100],
            &[1, 1, 1],
            [3, 3, 0, 0, 0],
            &[2, 3, 4],
            &[
                0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
                23,
            ],
        ),
        (
            "x[0, 1, 2]",
            &[0, 1, 2],
            &[1, 2, 3],
            &[1, 1, 1],
            [0, 0, 0, 0, 7],
            &[],
            &[6],
        ),
        (
            "x[..., ::-3]",
            &[0, 0],
            &[0, 0],
            &[1, -3],
            [2, 2, 1, 0, 0],
            &[2, 3, 2],
            &[3, 0, 7, 4, 11, 8, 15, 12, 19, 16, 23, 20],
        ),
        ("x[1:0]", &[1], &[0], &[1], [0, 0, 0, 0, 0], &[0, 3, 4], &[]),
        (
            "x[:, tf.newaxis, ..., tf.newaxis, 1]",
            &[0, 0, 0, 0, 1],
            &[0, 0, 0, 0, 2],
            &[1, 1, 1, 1, 1],
            [1, 1, 4, 10, 16],
            &[2, 1, 3, 1],
            &[1, 5, 9, 13, 17, 21],
        ),
    ];

    #[test]
    fn matches_numpy_slicing() {
        let mut g = Graph::new();
        let x = g.constant(iota(&[2, 3, 4])).unwrap();
        let p = g
            .placeholder(DType::Int32, PartialShape::unknown(), "p")
            .unwrap();
        let mut fetches = Vec::new();
        for &(expr, b, e, s, m, shape, _) in CASES {
            let y = g.strided_slice(x, b, e, s, masks(m)).unwrap();
            assert_eq!(g.shape(y).to_known().as_deref(), Some(shape), "{expr}");
            // the same slice of a tensor whose shape is only known when it is fed
            let z = g.strided_slice(p, b, e, s, masks(m)).unwrap();
            assert_eq!(g.shape(z).rank(), None, "{expr}");
            fetches.extend([y, z]);
        }
        let out = run_fed(&g, &[(p, iota(&[2, 3, 4]))], &fetches);
        for (i, &(expr, _, _, _, _, shape, vals)) in CASES.iter().enumerate() {
            let want = t(shape, vals);
            assert_eq!(out[2 * i], want, "{expr}");
            assert_eq!(out[2 * i + 1], want, "{expr} (fed)");
        }
    }

    /// StridedSliceGrad writes each slice of `np.arange(24).reshape(2, 3, 4)` back into
    /// zeros: the reference is `z = np.zeros(24); z[vals] = vals`, since every value of
    /// `x` is its own flat index.
    #[test]
    fn grad_writes_slices_back() {
        let mut g = Graph::new();
        let shape = g.constant(Tensor::from([2i64, 3, 4])).unwrap();
        let mut fetches = Vec::new();
        for &(expr, b, e, s, m, out_shape, vals) in CASES {
            let v = |g: &mut Graph, x: &[i64]| g.constant(Tensor::vector(x.to_vec())).unwrap();
            let (b, e, s) = (v(&mut g, b), v(&mut g, e), v(&mut g, s));
            let dy = g.constant(t(out_shape, vals)).unwrap();
            let y = g.strided_slice_grad(shape, b, e, s, dy, masks(m)).unwrap();
            assert_eq!(g.shape(y).to_known(), Some(vec![2, 3, 4]), "{expr}");
            fetches.push(y);
        }
        let out = run(&g, &fetches);
        for (o, &(expr, .., vals)) in out.iter().zip(CASES) {
            let want: Vec<i32> = (0..24)
                .map(|i| if vals.contains(&i) { i } else { 0 })
                .collect();
            assert_eq!(*o, t(&[2, 3, 4], &want), "{expr}");
        }
    }

    #[test]
    fn grad_floats_and_errors() {
        let mut g = Graph::new();
        let v = |g: &mut Graph, x: &[i32]| g.constant(t(&[x.len()], x)).unwrap();
        let (shape, zero, minus_two) = (v(&mut g, &[5]), v(&mut g, &[0]), v(&mut g, &[-2]));
        let dy = g.constant(Tensor::from([1.0f32, 2.0, 3.0])).unwrap();
        let m = masks([1, 1, 0, 0, 0]);
        let y = g
            .strided_slice_grad(shape, zero, zero, minus_two, dy, m)
            .unwrap();
        // tf.raw_ops.StridedSliceGrad(shape=[5], begin=[0], end=[0], strides=[-2],
        //     dy=[1.,2,3], begin_mask=1, end_mask=1)
        assert_eq!(run(&g, &[y])[0], Tensor::from([3.0f32, 0.0, 2.0, 0.0, 1.0]));
        // dy of the wrong shape: TensorFlow's message, at build time and at run time
        let short = g.constant(Tensor::from([1.0f32, 2.0])).unwrap();
        let msg = g
            .strided_slice_grad(shape, zero, zero, minus_two, short, m)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("shape of dy was [2] instead of [3]"), "{msg}");
        let p = g.placeholder(DType::Float32, [None], "p").unwrap();
        let y = g
            .strided_slice_grad(shape, zero, zero, minus_two, p, m)
            .unwrap();
        let msg = run_err(&g, &[(p, Tensor::from([1.0f32]))], y);
        assert!(msg.contains("shape of dy was [1] instead of [3]"), "{msg}");
        let neg = v(&mut g, &[-5]);
        let msg = g
            .strided_slice_grad(neg, zero, zero, minus_two, dy, m)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("negative dim -5"), "{msg}");
        let wide = g.constant(Tensor::from([5i64])).unwrap();
        let msg = g
            .strided_slice_grad(wide, zero, zero, minus_two, dy, m)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("one dtype"), "{msg}");
        // a run-time shape
        let sp = g.placeholder(DType::Int32, [1], "sp").unwrap();
        let y = g
            .strided_slice_grad(sp, zero, zero, minus_two, dy, m)
            .unwrap();
        assert_eq!(g.shape(y).to_string(), "[?]");
        let out = run_fed(&g, &[(sp, t(&[1], &[6]))], &[y]);
        // np.zeros(6)[::-2] = [1, 2, 3]
        assert_eq!(out[0], Tensor::from([0.0f32, 3.0, 0.0, 2.0, 0.0, 1.0]));
        let msg = run_err(&g, &[(sp, t(&[1], &[-1]))], y);
        assert!(msg.contains("shape[0] = -1 must be non-negative"), "{msg}");
    }

    #[test]
    fn partial_shapes_and_runtime_begin() {
        let mut g = Graph::new();
        let p = g.placeholder(DType::Float32, [None, Some(5)], "p").unwrap();
        // p[:, 1:4], p[0], p[..., ::-2]
        let a = g
            .strided_slice(p, &[0, 1], &[0, 4], &[1, 1], masks([1, 1, 0, 0, 0]))
            .unwrap();
        let b = g
            .strided_slice(p, &[0], &[1], &[1], masks([0, 0, 0, 0, 1]))
            .unwrap();
        let c = g
            .strided_slice(p, &[0, 0], &[0, 0], &[1, -2], masks([2, 2, 1, 0, 0]))
            .unwrap();
        assert_eq!(g.shape(a).to_string(), "[?,3]");
        assert_eq!(g.shape(b).to_string(), "[5]");
        assert_eq!(g.shape(c).to_string(), "[?,3]");
        // begin unknown while building: only fully masked or shrunk dims are known
        let begin = g.placeholder(DType::Int32, [2], "begin").unwrap();
        let end = g.constant(Tensor::from([0i32, 0])).unwrap();
        let strides = g.constant(Tensor::from([1i32, 1])).unwrap();
        let d = g
            .op("StridedSlice")
            .input(p)
            .input(begin)
            .input(end)
            .input(strides)
            .attr("Index", DType::Int32)
            .attr("begin_mask", 0i64)
            .attr("end_mask", 3i64)
            .attr("shrink_axis_mask", 1i64)
            .build_output()
            .unwrap();
        assert_eq!(g.shape(d).to_string(), "[?]");
        let v = Tensor::new(&[2, 5], (0..10).map(|i| i as f32).collect()).unwrap();
        let out = run_fed(
            &g,
            &[(p, v.clone()), (begin, Tensor::from([1i32, 2]))],
            &[a, b, c, d],
        );
        // np.arange(10.).reshape(2,5): [:, 1:4], [0], [..., ::-2], [1, 2:]
        let f = |s: &[usize], v: &[f32]| Tensor::new(s, v.to_vec()).unwrap();
        assert_eq!(out[0], f(&[2, 3], &[1., 2., 3., 6., 7., 8.]));
        assert_eq!(out[1], f(&[5], &[0., 1., 2., 3., 4.]));
        assert_eq!(out[2], f(&[2, 3], &[4., 2., 0., 9., 7., 5.]));
        assert_eq!(out[3], f(&[3], &[7., 8., 9.]));
        let msg = run_err(&g, &[(p, v), (begin, Tensor::from([2i32, 0]))], d);
        assert!(
            msg.contains("slice index 2 of dimension 0 out of bounds"),
            "{msg}"
        );
    }

    #[test]
    fn other_dtypes_and_identity() {
        let mut g = Graph::new();
        let b = g
            .constant(Tensor::from([[true, false, true], [false, false, true]]))
            .unwrap();
        let u = g.constant(Tensor::from([1u8, 2, 3, 4, 5])).unwrap();
        let f = g.constant(Tensor::from([1.5f64, 2.5])).unwrap();
        // b[:, ::-1], u[-2:], u[::-2], f[1], b[:] (identity)
        let bs = g
            .strided_slice(b, &[0, 0], &[0, 0], &[1, -1], masks([3, 3, 0, 0, 0]))
            .unwrap();
        let us = g
            .strided_slice(u, &[-2], &[0], &[1], masks([0, 1, 0, 0, 0]))
            .unwrap();
        let ur = g
            .strided_slice(u, &[0], &[0], &[-2], masks([1, 1, 0, 0, 0]))
            .unwrap();
        let fs = g
            .strided_slice(f, &[1], &[2], &[1], masks([0, 0, 0, 0, 1]))
            .unwrap();
        let all = g
            .strided_slice(b, &[0], &[0], &[1], masks([1, 1, 0, 0, 0]))
            .unwrap();
        // b[::2**62, ::-2**62]: one element per dim
        let huge = 1i64 << 62;
        let far = g
            .strided_slice(b, &[0, 0], &[0, 0], &[huge, -huge], masks([3, 3, 0, 0, 0]))
            .unwrap();
        assert_eq!(g.shape(far).to_known(), Some(vec![1, 1]));
        let out = run(&g, &[bs, us, ur, fs, all, b, far]);
        assert_eq!(
            out[0],
            Tensor::from([[true, false, true], [true, false, false]])
        );
        assert_eq!(out[1], Tensor::from([4u8, 5]));
        assert_eq!(out[2], Tensor::from([5u8, 3, 1]));
        assert_eq!(out[3], Tensor::scalar(2.5f64));
        assert!(out[4].shares_buffer_with(&out[5]));
        // np.array([[1,0,1],[0,0,1]], bool)[::2**62, ::-2**62]
        assert_eq!(out[6], Tensor::from([[true]]));
    }

    /// CPython's `slice(start, stop, step).indices(n)` walk, the reference for 1-D slices.
    fn python_slice(n: i64, start: Option<i64>, stop: Option<i64>, step: i64) -> Vec<i64> {
        let (lower, upper) = if step < 0 { (-1, n - 1) } else { (0, n) };
        let fix = |v: Option<i64>, default: i64| match v {
            None => default,
            Some(v) if v < 0 => (v + n).max(lower),
            Some(v) => v.min(upper),
        };
        let start = fix(start, if step < 0 { upper } else { lower });
        let stop = fix(stop, if step < 0 { lower } else { upper });
        let mut out = Vec::new();
        let mut i = start;
        while (step > 0 && i < stop) || (step < 0 && i > stop) {
            out.push(i);
            i += step;
        }
        out
    }

    #[test]
    fn every_one_dimensional_slice_matches_python() {
        let n = 5usize;
        let mut g = Graph::new();
        let x = g
            .constant(Tensor::vector((0..n as u8).collect::<Vec<u8>>()))
            .unwrap();
        let bounds: Vec<Option<i64>> = std::iter::once(None).chain((-7..=7).map(Some)).collect();
        let mut cases = Vec::new();
        for &b in &bounds {
            for &e in &bounds {
                for step in [-3i64, -2, -1, 1, 2, 3] {
                    let m = masks([i64::from(b.is_none()), i64::from(e.is_none()), 0, 0, 0]);
                    let y = g
                        .strided_slice(x, &[b.unwrap_or(0)], &[e.unwrap_or(0)], &[step], m)
                        .unwrap();
                    let want = python_slice(n as i64, b, e, step);
                    assert_eq!(
                        g.shape(y).to_known(),
                        Some(vec![want.len()]),
                        "{b:?}:{e:?}:{step}"
                    );
                    cases.push((y, want));
                }
            }
        }
        let fetches: Vec<_> = cases.iter().map(|c| c.0).collect();
        let out = run(&g, &fetches);
        for (t, (_, want)) in out.iter().zip(&cases) {
            let want: Vec<u8> = want.iter().map(|&i| i as u8).collect();
            assert_eq!(t.as_slice::<u8>().unwrap(), &want[..]);
        }
    }

    #[test]
    fn build_errors() {
        let mut g = Graph::new();
        let x = g.constant(iota(&[2, 3])).unwrap();
        let none = masks([0; 5]);
        let msg = g
            .strided_slice(x, &[5], &[6], &[1], masks([0, 0, 0, 0, 1]))
            .unwrap_err();
        assert!(
            msg.to_string()
                .contains("slice index 5 of dimension 0 out of bounds"),
            "{msg}"
        );
        let msg = g
            .strided_slice(x, &[0, 0], &[1, 1], &[1, 1], masks([0, 0, 3, 0, 0]))
            .unwrap_err();
        assert!(msg.to_string().contains("Multiple ellipses"), "{msg}");
        let msg = g
            .strided_slice(x, &[0, 0, 0], &[1, 1, 1], &[1, 1, 1], none)
            .unwrap_err();
        assert!(
            msg.to_string()
                .contains("Index out of range using input dim 2"),
            "{msg}"
        );
        let msg = g.strided_slice(x, &[0], &[1], &[0], none).unwrap_err();
        assert!(
            msg.to_string().contains("strides[0] must be non-zero"),
            "{msg}"
        );
        let msg = g
            .strided_slice(x, &[0, 0], &[1], &[1, 1], none)
            .unwrap_err();
        assert!(msg.to_string().contains("one length"), "{msg}");
        let msg = g
            .strided_slice(x, &[1], &[0], &[-1], masks([0, 0, 0, 0, 1]))
            .unwrap_err();
        assert!(msg.to_string().contains("only stride 1"), "{msg}");
    }
}

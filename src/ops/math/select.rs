//! Select (TF1 `tf.where` with three arguments) and SelectV2 (`tf.where` with NumPy
//! broadcasting of all three inputs): pick `t` where the condition is true, `e` elsewhere.
//! The gradient goes to `t` where the condition holds and to `e` elsewhere (TensorFlow's
//! `_SelectGrad`, `_SelectGradV2`).

use super::{kernel_fn, InferCtx, InferResult, KernelBuildCtx, KernelResult};
use crate::device::cpu::{broadcast_shape, broadcast_strides};
use crate::graph::{Graph, Output, TensorSpec};
use crate::ops::{GradCtx, Op, Registry};
use crate::tensor::{alloc, num_elements, DType, Element, Tensor};
use crate::{with_dtype, Error, Result};

/// Checks the dtypes shared by Select and SelectV2: a bool condition, `t` and `e` alike.
fn check_select_dtypes(ctx: &InferCtx<'_>) -> std::result::Result<DType, String> {
    ctx.expect_inputs(3)?;
    if ctx.dtype(0) != DType::Bool {
        return Err(format!(
            "condition (input 0) must be bool, got {}; compare first, e.g. g.greater(x, zero)",
            ctx.dtype(0)
        ));
    }
    let dt = ctx.dtype(1);
    if ctx.dtype(2) != dt {
        return Err(format!(
            "'t' (input 1) and 'e' (input 2) must have the same dtype, got {dt} and {}",
            ctx.dtype(2)
        ));
    }
    ctx.check_t_attr(dt)?;
    Ok(dt)
}

/// TensorFlow's Select shape function: `t` and `e` have one shape; the condition is a
/// scalar, has that shape too, or is a vector matching its first dimension.
fn infer_select(ctx: &InferCtx<'_>) -> InferResult {
    let dt = check_select_dtypes(ctx)?;
    let data = ctx
        .shape(1)
        .merge(ctx.shape(2))
        .map_err(|e| format!("'t' and 'e' must have the same shape: {e}"))?;
    let cond = ctx.shape(0);
    let shape = match (cond.rank(), data.rank()) {
        (None, _) | (_, None) | (Some(0), _) => data,
        (Some(1), Some(r)) if r > 0 => {
            if let (Some(c), Some(d)) = (cond.dim(0), data.dim(0)) {
                if c != d {
                    return Err(format!(
                        "condition is a vector of {c} elements, but 't' and 'e' have {d} rows \
                         (dimension 0); it must match the first dimension"
                    ));
                }
            }
            data
        }
        _ => data.merge(cond).map_err(|e| {
            format!(
                "condition must be a scalar, a vector matching dimension 0 of 't', \
                 or have the shape of 't': {e}"
            )
        })?,
    };
    Ok(vec![TensorSpec::new(dt, shape)])
}

/// `t` with the rows (blocks of `inner` elements) where `c` is false replaced from `e`;
/// reuses `t`'s buffer when nothing else holds it.
fn select_rows<T: Element>(c: &[bool], t: Tensor, e: &Tensor, inner: usize) -> Result<Tensor> {
    let shape = t.shape().to_vec();
    let mut out = t.into_vec::<T>()?;
    let es = e.as_slice::<T>()?;
    if inner == 1 {
        out.iter_mut()
            .zip(es)
            .zip(c)
            .for_each(|((o, &x), &keep)| *o = if keep { *o } else { x });
    } else if inner > 1 {
        for ((o, x), &keep) in out.chunks_mut(inner).zip(es.chunks(inner)).zip(c) {
            if !keep {
                o.copy_from_slice(x);
            }
        }
    }
    Ok(Tensor::from_parts(shape, out))
}

fn select_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    with_dtype!(any, ctx.input_dtype(1), T => kernel_fn(|k| {
        let (cond, t, e) = (k.take_input(0)?, k.take_input(1)?, k.take_input(2)?);
        if t.shape() != e.shape() {
            return Err(Error::invalid(format!(
                "'then' and 'else' must have the same size. but received: {:?} vs. {:?}",
                t.shape(),
                e.shape()
            )));
        }
        let out = if cond.rank() == 0 {
            if cond.scalar_value::<bool>()? { t } else { e }
        } else if cond.rank() == 1 && t.rank() != 1 {
            let Some(&rows) = t.shape().first() else {
                return Err(Error::invalid(format!(
                    "'then' must be at least a vector, but saw shape: {:?}",
                    t.shape()
                )));
            };
            if cond.len() != rows {
                return Err(Error::invalid(format!(
                    "Number of batches of 'then' must match size of 'cond', but saw: {rows} vs. {}",
                    cond.len()
                )));
            }
            let inner = t.len().checked_div(rows).unwrap_or(0);
            select_rows::<T>(cond.as_slice::<bool>()?, t, &e, inner)?
        } else {
            if cond.shape() != t.shape() {
                return Err(Error::invalid(format!(
                    "'cond' and 'then' must have the same shape (or 'cond' must be a scalar or \
                     a vector matching dimension 0): {:?} vs. {:?}",
                    cond.shape(),
                    t.shape()
                )));
            }
            select_rows::<T>(cond.as_slice::<bool>()?, t, &e, 1)?
        };
        k.push_output(out);
        Ok(())
    }))
}

/// SelectV2: the output shape broadcasts all three inputs.
fn infer_select_v2(ctx: &InferCtx<'_>) -> InferResult {
    let dt = check_select_dtypes(ctx)?;
    let shape = ctx
        .shape(0)
        .broadcast(&ctx.shape(1).broadcast(ctx.shape(2))?)?;
    Ok(vec![TensorSpec::new(dt, shape)])
}

/// Walks the broadcast output of shape `shape` (rank >= 1, non-empty), reading each input
/// through its broadcast strides.
fn select_broadcast<T: Element>(
    shape: &[usize],
    (c, cs): (&[bool], &[usize]),
    (t, ts): (&[T], &[usize]),
    (e, es): (&[T], &[usize]),
) -> Vec<T> {
    let rank = shape.len();
    let last = rank - 1;
    let mut out = Vec::with_capacity(num_elements(shape));
    let mut index = vec![0usize; last];
    let (mut oc, mut ot, mut oe) = (0usize, 0usize, 0usize);
    loop {
        out.extend((0..shape[last]).map(|k| {
            if c[oc + k * cs[last]] {
                t[ot + k * ts[last]]
            } else {
                e[oe + k * es[last]]
            }
        }));
        // Odometer over the outer axes.
        let mut axis = last;
        loop {
            if axis == 0 {
                return out;
            }
            axis -= 1;
            index[axis] += 1;
            oc += cs[axis];
            ot += ts[axis];
            oe += es[axis];
            if index[axis] < shape[axis] {
                break;
            }
            oc -= cs[axis] * shape[axis];
            ot -= ts[axis] * shape[axis];
            oe -= es[axis] * shape[axis];
            index[axis] = 0;
        }
    }
}

fn select_v2_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    with_dtype!(any, ctx.input_dtype(1), T => kernel_fn(|k| {
        let (cond, t, e) = (k.take_input(0)?, k.take_input(1)?, k.take_input(2)?);
        let shape = broadcast_shape(cond.shape(), &broadcast_shape(t.shape(), e.shape())?)?;
        if cond.len() == 1 {
            let picked = if cond.as_slice::<bool>()?[0] { &t } else { &e };
            if picked.shape() == shape.as_slice() {
                k.push_output(picked.clone());
                return Ok(());
            }
        } else if cond.shape() == shape.as_slice()
            && t.shape() == shape.as_slice()
            && e.shape() == shape.as_slice()
        {
            k.push_output(select_rows::<T>(cond.as_slice::<bool>()?, t, &e, 1)?);
            return Ok(());
        }
        let n = alloc::checked_len(T::DTYPE, &shape)?;
        let out = if n == 0 {
            Vec::new()
        } else {
            // A rank-0 output only arises from three single elements; view it as rank 1.
            let walk = if shape.is_empty() { vec![1] } else { shape.clone() };
            let strides = |s: &[usize]| broadcast_strides(s, &walk);
            select_broadcast(
                &walk,
                (cond.as_slice::<bool>()?, &strides(cond.shape())),
                (t.as_slice::<T>()?, &strides(t.shape())),
                (e.as_slice::<T>()?, &strides(e.shape())),
            )
        };
        k.push_output(Tensor::from_parts(shape, out));
        Ok(())
    }))
}

type GradResult = Result<Vec<Option<Output>>>;

/// TensorFlow's `_SelectGrad`: `(None, Select(c, grad, 0), Select(c, 0, grad))`.
fn select_grad(ctx: &mut GradCtx<'_>) -> GradResult {
    let (c, x, grad) = (ctx.input(0), ctx.input(1), ctx.grad(0));
    let g = &mut *ctx.graph;
    let zeros = g.zeros_like(x)?;
    let gx = g.select(c, grad, zeros)?;
    let gy = g.select(c, zeros, grad)?;
    Ok(vec![None, Some(gx), Some(gy)])
}

/// `grad` summed over the axes along which `x` was broadcast to the output `z`, reshaped to
/// `x`'s shape (the tail of TensorFlow's `_SelectGradV2`).
fn reduce_to(g: &mut Graph, grad: Output, x: Output, z: Output) -> Result<Output> {
    let x_shape = g.shape_of(x)?;
    let z_shape = g.shape_of(z)?;
    let [reduce_x, _] = g.broadcast_gradient_args(x_shape, z_shape)?;
    let s = g.reduce_sum_t(grad, reduce_x, true)?;
    g.reshape_t(s, x_shape)
}

/// TensorFlow's `_SelectGradV2`: `SelectV2(c, grad, 0)` and `SelectV2(c, 0, grad)` reduced
/// to the shapes of `x` and `y`.
fn select_v2_grad(ctx: &mut GradCtx<'_>) -> GradResult {
    let (c, x, y, grad) = (ctx.input(0), ctx.input(1), ctx.input(2), ctx.grad(0));
    let z = ctx.output(0);
    let g = &mut *ctx.graph;
    let zero = g.scalar_like(g.dtype(grad), 0.0)?;
    let gx = g.where_v2(c, grad, zero)?;
    let gx = reduce_to(g, gx, x, z)?;
    let gy = g.where_v2(c, zero, grad)?;
    let gy = reduce_to(g, gy, y, z)?;
    Ok(vec![None, Some(gx), Some(gy)])
}

pub(super) fn register(r: &mut Registry) {
    r.add(Op::new("Select", infer_select, select_kernel).grad(select_grad));
    r.add(Op::new("SelectV2", infer_select_v2, select_v2_kernel).grad(select_v2_grad));
}

/// Adds Select or SelectV2 with the `T` attr set from `t`.
fn select_op(g: &mut Graph, op: &str, cond: Output, t: Output, e: Output) -> Result<Output> {
    let dt = g.dtype(t);
    g.op(op)
        .input(cond)
        .input(t)
        .input(e)
        .attr("T", dt)
        .build_output()
}

impl Graph {
    /// `t` where `cond` is true, `e` elsewhere (TF1 `tf.where(cond, t, e)`, op Select).
    /// `t` and `e` have one shape; `cond` is a scalar, has that shape, or is a vector
    /// choosing whole rows along dimension 0.
    pub fn select(&mut self, cond: Output, t: Output, e: Output) -> Result<Output> {
        select_op(self, "Select", cond, t, e)
    }
    /// `x` where `cond` is true, `y` elsewhere, broadcasting all three (`tf.where`, op
    /// SelectV2).
    pub fn where_v2(&mut self, cond: Output, x: Output, y: Output) -> Result<Output> {
        select_op(self, "SelectV2", cond, x, y)
    }
}

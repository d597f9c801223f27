//! ClipByValue (`tf.clip_by_value`): `min(max(t, clip_value_min), clip_value_max)` for
//! numbers, each bound a scalar or of `t`'s shape, as TensorFlow's kernel requires. The
//! gradient is TensorFlow's `_ClipByValueGrad`: `t` gets the gradient where it was inside
//! the bounds, each bound where it clipped (summed to the bound's shape).

use super::broadcast::reduce_to_operands;
use super::{check_family, kernel_fn, Family, InferCtx, InferResult, KernelBuildCtx, KernelResult};
use crate::graph::{Graph, Output};
use crate::ops::{GradCtx, Op, Registry};
use crate::tensor::Tensor;
use crate::{with_dtype, Error, Result};

fn infer_clip(ctx: &InferCtx<'_>) -> InferResult {
    ctx.expect_inputs(3)?;
    let dt = ctx.same_dtype()?;
    check_family(ctx, 0, Family::Number)?;
    ctx.check_t_attr(dt)?;
    for (i, name) in [(1, "clip_value_min"), (2, "clip_value_max")] {
        let s = ctx.shape(i);
        if s.rank() != Some(0) && s.merge(ctx.shape(0)).is_err() {
            return Err(format!(
                "{name} must be a scalar or have t's shape {}, but has shape {s}",
                ctx.shape(0)
            ));
        }
    }
    Ok(vec![ctx.input(0).clone()])
}

/// The bound for element `i`: a scalar's only value, else the element itself.
fn at<T: Copy>(bound: &[T], i: usize) -> T {
    if bound.len() == 1 {
        bound[0]
    } else {
        bound[i]
    }
}

fn clip_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let name = ctx.node.name().to_string();
    with_dtype!(number, ctx.input_dtype(0), T => kernel_fn(move |k| {
        let (t, lo, hi) = (k.input(0)?, k.input(1)?, k.input(2)?);
        for (b, what) in [(lo, "clip_value_min"), (hi, "clip_value_max")] {
            if b.rank() != 0 && b.shape() != t.shape() {
                return Err(Error::invalid(format!(
                    "ClipByValue '{name}': {what} must be a scalar or have t's shape {:?}, \
                     got {:?}",
                    t.shape(),
                    b.shape()
                )));
            }
        }
        let (lo, hi) = (lo.as_slice::<T>()?, hi.as_slice::<T>()?);
        let v: Vec<T> = t
            .as_slice::<T>()?
            .iter()
            .enumerate()
            .map(|(i, &x)| {
                let (l, h) = (at(lo, i), at(hi, i));
                if x < l {
                    l
                } else if x > h {
                    h
                } else {
                    x
                }
            })
            .collect();
        let out = Tensor::new(t.shape(), v)?;
        k.push_output(out);
        Ok(())
    }))
}

fn clip_grad(ctx: &mut GradCtx<'_>) -> Result<Vec<Option<Output>>> {
    let (x, lo, hi, grad) = (ctx.input(0), ctx.input(1), ctx.input(2), ctx.grad(0));
    let g = &mut *ctx.graph;
    let zeros = g.zeros_like(grad)?;
    let below = g.less(x, lo)?;
    let above = g.greater(x, hi)?;
    let outside = g.logical_or(below, above)?;
    let gx = g.where_v2(outside, zeros, grad)?;
    let g_lo = g.where_v2(below, grad, zeros)?;
    let g_hi = g.where_v2(above, grad, zeros)?;
    let lo_grad = reduce_to_operands(g, x, lo, None, Some(g_lo), None)?
        .pop()
        .flatten();
    let hi_grad = reduce_to_operands(g, x, hi, None, Some(g_hi), None)?
        .pop()
        .flatten();
    Ok(vec![Some(gx), lo_grad, hi_grad])
}

pub(super) fn register(r: &mut Registry) {
    r.add(Op::new("ClipByValue", infer_clip, clip_kernel).grad(clip_grad));
}

impl Graph {
    /// `min(max(t, lo), hi)` (`tf.clip_by_value`); each bound a scalar or of `t`'s shape.
    pub fn clip_by_value(&mut self, t: Output, lo: Output, hi: Output) -> Result<Output> {
        let dt = self.dtype(t);
        self.op("ClipByValue")
            .input(t)
            .input(lo)
            .input(hi)
            .attr("T", dt)
            .build_output()
    }
}

#[cfg(test)]
mod tests {
    use crate::{Graph, Session, Tensor};

    #[test]
    fn clips_with_scalar_and_elementwise_bounds() {
        let mut g = Graph::new();
        let t = g.constant(Tensor::from([-3f32, 0.5, 2.0, 9.0])).unwrap();
        let (lo, hi) = (g.constant(-1f32).unwrap(), g.constant(1.5f32).unwrap());
        let a = g.clip_by_value(t, lo, hi).unwrap();
        let his = g.constant(Tensor::from([0f32, 0.0, 5.0, 5.0])).unwrap();
        let b = g.clip_by_value(t, lo, his).unwrap();
        let ints = g.constant(Tensor::from([1i32, 7])).unwrap();
        let (l, h) = (g.constant(2i32).unwrap(), g.constant(5i32).unwrap());
        let c = g.clip_by_value(ints, l, h).unwrap();
        let out = Session::new(&g).run(&[], &[a, b, c], &[]).unwrap();
        assert_eq!(out[0], Tensor::from([-1f32, 0.5, 1.5, 1.5]));
        assert_eq!(out[1], Tensor::from([-1f32, 0.0, 2.0, 5.0]));
        assert_eq!(out[2], Tensor::from([2i32, 5]));
        let short = g.constant(Tensor::from([1f32, 2.0])).unwrap();
        let e = g.clip_by_value(t, short, hi).unwrap_err().to_string();
        assert!(e.contains("clip_value_min must be a scalar"), "{e}");
    }
}

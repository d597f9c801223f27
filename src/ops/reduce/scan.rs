//! Cumulative sums and products along one axis (Cumsum, Cumprod) with TensorFlow's
//! `exclusive` and `reverse` attrs. The Prod gradient is built from exclusive Cumprods.

use super::super::math::{check_family, Family};
use super::super::{kernel_fn, GradCtx, InferCtx, KernelBuildCtx, Op, Registry};
use super::check_index_input;
use crate::graph::{AttrValue, AttrsExt, Graph, Output};
use crate::ops::{InferResult, KernelResult};
use crate::tensor::{DType, Number, Tensor};
use crate::{with_dtype, Error, Result};

/// `x` of a numeric dtype, `axis` an int32/int64 scalar; the output is shaped like `x`.
fn infer_scan(ctx: &InferCtx<'_>) -> InferResult {
    ctx.expect_inputs(2)?;
    let dt = check_family(ctx, 0, Family::Number)?;
    ctx.check_t_attr(dt)?;
    check_index_input(ctx, 1, "axis")?;
    ctx.attrs().bool_or("exclusive", false)?;
    ctx.attrs().bool_or("reverse", false)?;
    if let Some(r) = ctx.shape(1).rank().filter(|&r| r != 0) {
        return Err(format!(
            "axis must be a scalar, but has rank {r} (shape {})",
            ctx.shape(1)
        ));
    }
    if let (Some(rank), Some(axis)) = (ctx.shape(0).rank(), ctx.constant_ints(1)) {
        let rank = rank as i64;
        if let Some(&a) = axis.first().filter(|&&a| a < -rank || a >= rank) {
            return Err(format!(
                "axis {a} is out of range: expected a scan axis in [-{rank}, {rank})"
            ));
        }
    }
    Ok(vec![ctx.input(0).clone()])
}

/// Scans `x` in place along `axis` with `combine` starting from `identity`.
fn scan<T: Number>(
    x: Tensor,
    axis: i64,
    exclusive: bool,
    reverse: bool,
    identity: T,
    combine: impl Fn(T, T) -> T,
) -> Result<Tensor> {
    let shape = x.shape().to_vec();
    let rank = shape.len() as i64;
    if axis < -rank || axis >= rank {
        return Err(Error::invalid(format!(
            "ScanOp: Expected scan axis in the range [{}, {rank}), but got {axis}",
            -rank
        )));
    }
    let a = (if axis < 0 { axis + rank } else { axis }) as usize;
    let (n, inner) = (shape[a], shape[a + 1..].iter().product::<usize>());
    let mut buf = x.into_vec::<T>()?;
    let block = n * inner;
    if block > 0 {
        let mut acc = vec![identity; inner];
        for chunk in buf.chunks_mut(block) {
            acc.iter_mut().for_each(|v| *v = identity);
            for j in 0..n {
                let j = if reverse { n - 1 - j } else { j };
                let row = &mut chunk[j * inner..(j + 1) * inner];
                for (v, s) in row.iter_mut().zip(acc.iter_mut()) {
                    let x = *v;
                    if exclusive {
                        *v = *s;
                        *s = combine(*s, x);
                    } else {
                        *s = combine(*s, x);
                        *v = *s;
                    }
                }
            }
        }
    }
    Ok(Tensor::from_parts(shape, buf))
}

/// A Cumsum (`product = false`) or Cumprod kernel with its attrs resolved.
fn scan_kernel(ctx: &KernelBuildCtx<'_>, product: bool) -> KernelResult {
    let exclusive = ctx.attrs().bool_or("exclusive", false)?;
    let reverse = ctx.attrs().bool_or("reverse", false)?;
    with_dtype!(number, ctx.input_dtype(0), T => kernel_fn(move |k| {
        let axis = k.input(1)?;
        if axis.rank() != 0 {
            return Err(Error::invalid(format!(
                "ScanOp: axis must be a scalar, not {:?}",
                axis.shape()
            )));
        }
        let axis = axis.to_i64_vec()?[0];
        let x = k.take_input(0)?;
        let out = if product {
            scan::<T>(x, axis, exclusive, reverse, T::ONE, <T as Number>::mul)?
        } else {
            scan::<T>(x, axis, exclusive, reverse, T::ZERO, <T as Number>::add)?
        };
        k.push_output(out);
        Ok(())
    }))
}

fn cumsum_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    scan_kernel(ctx, false)
}

fn cumprod_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    scan_kernel(ctx, true)
}

/// The node's `exclusive` and `reverse` attrs.
fn scan_attrs(ctx: &GradCtx<'_>) -> Result<(bool, bool)> {
    let attrs = ctx.attrs();
    Ok((
        attrs.bool_or("exclusive", false).map_err(Error::invalid)?,
        attrs.bool_or("reverse", false).map_err(Error::invalid)?,
    ))
}

/// TensorFlow's `_CumsumGrad`: the cumulative sum of `grad` in the other direction.
fn cumsum_grad(ctx: &mut GradCtx<'_>) -> Result<Vec<Option<Output>>> {
    let (exclusive, reverse) = scan_attrs(ctx)?;
    let (axis, grad) = (ctx.input(1), ctx.grad(0));
    let g = ctx.graph.cumsum_t(grad, axis, exclusive, !reverse)?;
    Ok(vec![Some(g), None])
}

/// TensorFlow 1's `_CumprodGrad`: `cumsum(cumprod(x) * grad, reversed) / x`. Like
/// TensorFlow's, it is not defined where `x` has zeros (TensorFlow 2 returns 0 there via
/// DivNoNan).
fn cumprod_grad(ctx: &mut GradCtx<'_>) -> Result<Vec<Option<Output>>> {
    let (exclusive, reverse) = scan_attrs(ctx)?;
    let (x, axis, grad) = (ctx.input(0), ctx.input(1), ctx.grad(0));
    let g = &mut *ctx.graph;
    let prod = g.cumprod_t(x, axis, exclusive, reverse)?;
    let t = g.mul(prod, grad)?;
    let out = g.cumsum_t(t, axis, exclusive, !reverse)?;
    Ok(vec![Some(g.div(out, x)?), None])
}

fn scan_defaults() -> Vec<(&'static str, AttrValue)> {
    vec![
        ("exclusive", false.into()),
        ("reverse", false.into()),
        ("Tidx", DType::Int32.into()),
    ]
}

pub(super) fn register(r: &mut Registry) {
    r.add(
        Op::new("Cumsum", infer_scan, cumsum_kernel)
            .grad(cumsum_grad)
            .defaults(scan_defaults),
    );
    r.add(
        Op::new("Cumprod", infer_scan, cumprod_kernel)
            .grad(cumprod_grad)
            .defaults(scan_defaults),
    );
}

/// Adds a Cumsum or Cumprod node with the attrs TensorFlow's Python wrapper sets.
fn scan_op(
    g: &mut Graph,
    op: &str,
    x: Output,
    axis: Output,
    exclusive: bool,
    reverse: bool,
) -> Result<Output> {
    let (t, tidx) = (g.dtype(x), g.dtype(axis));
    g.op(op)
        .input(x)
        .input(axis)
        .attr("exclusive", exclusive)
        .attr("reverse", reverse)
        .attr("T", t)
        .attr("Tidx", tidx)
        .build_output()
}

impl Graph {
    /// Cumulative sum along `axis` (`tf.math.cumsum`): `exclusive` leaves the current
    /// element out (`[0, a, a+b]`), `reverse` runs from the end. Integers wrap.
    pub fn cumsum(
        &mut self,
        x: Output,
        axis: i64,
        exclusive: bool,
        reverse: bool,
    ) -> Result<Output> {
        let a = super::int32_scalar(self, axis)?;
        self.cumsum_t(x, a, exclusive, reverse)
    }
    /// [`Graph::cumsum`] with the axis given by an int32/int64 scalar tensor.
    pub fn cumsum_t(
        &mut self,
        x: Output,
        axis: Output,
        exclusive: bool,
        reverse: bool,
    ) -> Result<Output> {
        scan_op(self, "Cumsum", x, axis, exclusive, reverse)
    }
    /// Cumulative product along `axis` (`tf.math.cumprod`), with `exclusive` and `reverse`
    /// as in [`Graph::cumsum`]. Integers wrap.
    pub fn cumprod(
        &mut self,
        x: Output,
        axis: i64,
        exclusive: bool,
        reverse: bool,
    ) -> Result<Output> {
        let a = super::int32_scalar(self, axis)?;
        self.cumprod_t(x, a, exclusive, reverse)
    }
    /// [`Graph::cumprod`] with the axis given by a tensor.
    pub fn cumprod_t(
        &mut self,
        x: Output,
        axis: Output,
        exclusive: bool,
        reverse: bool,
    ) -> Result<Output> {
        scan_op(self, "Cumprod", x, axis, exclusive, reverse)
    }
}

#[cfg(test)]
mod tests {
    use crate::{DType, Graph, Output, PartialShape, Session, Tensor};

    fn eval(g: &Graph, o: Output) -> crate::Result<Tensor> {
        Ok(Session::new(g).run(&[], &[o], &[])?.remove(0))
    }

    #[test]
    fn scans_match_tensorflow() {
        let mut g = Graph::new();
        let x = g
            .constant(Tensor::from([[1.0f32, 2.0, 3.0], [4.0, 5.0, 6.0]]))
            .unwrap();
        // tf.math.cumsum(x, 1) = [[1,3,6],[4,9,15]]
        let a = g.cumsum(x, 1, false, false).unwrap();
        // tf.math.cumsum(x, 1, exclusive=True) = [[0,1,3],[0,4,9]]
        let b = g.cumsum(x, 1, true, false).unwrap();
        // tf.math.cumsum(x, 0, reverse=True) = [[5,7,9],[4,5,6]]
        let c = g.cumsum(x, 0, false, true).unwrap();
        // tf.math.cumprod(x, -1, exclusive=True, reverse=True) = [[6,3,1],[30,6,1]]
        let d = g.cumprod(x, -1, true, true).unwrap();
        assert_eq!(g.shape(d), &PartialShape::known(&[2, 3]));
        assert_eq!(
            eval(&g, a).unwrap(),
            Tensor::from([[1.0f32, 3.0, 6.0], [4.0, 9.0, 15.0]])
        );
        assert_eq!(
            eval(&g, b).unwrap(),
            Tensor::from([[0.0f32, 1.0, 3.0], [0.0, 4.0, 9.0]])
        );
        assert_eq!(
            eval(&g, c).unwrap(),
            Tensor::from([[5.0f32, 7.0, 9.0], [4.0, 5.0, 6.0]])
        );
        assert_eq!(
            eval(&g, d).unwrap(),
            Tensor::from([[6.0f32, 3.0, 1.0], [30.0, 6.0, 1.0]])
        );
        // Integers wrap: cumprod([65536, 65536, 3]) in int32 = [65536, 0, 0];
        // tf.math.cumsum(int32 [1,2,3]) = [1,3,6].
        let i = g.constant(Tensor::from([65536i32, 65536, 3])).unwrap();
        let p = g.cumprod(i, 0, false, false).unwrap();
        assert_eq!(eval(&g, p).unwrap(), Tensor::from([65536i32, 0, 0]));
        let u = g.constant(Tensor::from([1u8, 2, 3])).unwrap();
        let s = g.cumsum(u, 0, false, false).unwrap();
        assert_eq!(eval(&g, s).unwrap(), Tensor::from([1u8, 3, 6]));
        // Empty input, and an int64 axis tensor.
        let e = g.constant(Tensor::zeros(DType::Float64, &[2, 0])).unwrap();
        let ax = g.constant(1i64).unwrap();
        let s = g.cumsum_t(e, ax, false, false).unwrap();
        assert_eq!(eval(&g, s).unwrap().shape(), &[2, 0]);
    }

    #[test]
    fn errors() {
        let mut g = Graph::new();
        let x = g.constant(Tensor::from([[1.0f32, 2.0]])).unwrap();
        let err = g.cumsum(x, 2, false, false).unwrap_err().to_string();
        assert!(err.contains("out of range"), "{err}");
        let v = g.constant(Tensor::from([0i32])).unwrap();
        let err = g.cumsum_t(x, v, false, false).unwrap_err().to_string();
        assert!(err.contains("must be a scalar"), "{err}");
        let b = g.constant(Tensor::from([true])).unwrap();
        assert!(g.cumsum(b, 0, false, false).is_err());
        // Run time: TF's "ScanOp: Expected scan axis in the range [-2, 2), but got 2" and the
        // scalar case "[0, 0), but got 0".
        let p = g
            .placeholder(DType::Int32, PartialShape::scalar(), "p")
            .unwrap();
        let s = g.cumsum_t(x, p, false, false).unwrap();
        let err = Session::new(&g)
            .run(&[(p, Tensor::scalar(2i32))], &[s], &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("Expected scan axis in the range [-2, 2), but got 2"),
            "{err}"
        );
        let q = g
            .placeholder(DType::Float32, PartialShape::unknown(), "q")
            .unwrap();
        let s = g.cumsum(q, 0, false, false).unwrap();
        let err = Session::new(&g)
            .run(&[(q, Tensor::scalar(3.0f32))], &[s], &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("Expected scan axis in the range [0, 0), but got 0"),
            "{err}"
        );
    }
}

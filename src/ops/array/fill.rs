//! Tensors made from a shape or a few scalars: Fill, ZerosLike, OnesLike and Range.

use super::{check_index, check_rank, index_const, read_ints, to_dims};
use crate::device::cpu;
use crate::graph::{Graph, Output, TensorSpec};
use crate::ops::{kernel_fn, GradCtx, InferCtx, KernelBuildCtx, Op, Registry};
use crate::ops::{InferResult, KernelResult};
use crate::tensor::{alloc, DType, Element, Number, PartialShape, Tensor};
use crate::{with_dtype, Error, Result};

fn infer_fill(ctx: &InferCtx<'_>) -> InferResult {
    ctx.expect_inputs(2)?;
    check_index(ctx, 0, "index_type")?;
    check_rank(ctx, 0, 1, "dims")?;
    check_rank(ctx, 1, 0, "value")?;
    let t = ctx.dtype(1);
    ctx.check_t_attr(t)?;
    let out = match ctx.constant_ints(0) {
        Some(dims) => {
            if dims.iter().any(|&d| d < 0) {
                return Err(format!(
                    "Fill dimensions must be >= 0, got {}",
                    super::fmt_ints(&dims)
                ));
            }
            PartialShape::from_i64(&dims)
        }
        None => match ctx.shape(0).dim(0) {
            Some(r) => PartialShape::with_rank(r),
            None => PartialShape::unknown(),
        },
    };
    Ok(vec![TensorSpec::new(t, out)])
}

fn fill_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    with_dtype!(any, ctx.input_dtype(1), T => kernel_fn(|k| {
        let dims = to_dims(&read_ints(k.input(0)?, "dims", 1)?, "dims")?;
        let value = k.input(1)?.scalar_value::<T>()?;
        k.push_output(Tensor::try_full(&dims, value)?);
        Ok(())
    }))
}

fn infer_like(ctx: &InferCtx<'_>) -> InferResult {
    ctx.expect_inputs(1)?;
    ctx.check_t_attr(ctx.dtype(0))?;
    Ok(vec![ctx.input(0).clone()])
}

/// `ZerosLike`: zeros of a dense tensor, or of a TensorList (the gradient of a list that
/// got none).
fn zeros_like_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    if ctx.input_dtype(0) == DType::Variant {
        return crate::ops::list::arith::zeros_like_kernel();
    }
    with_dtype!(any, ctx.input_dtype(0), T => kernel_fn(|k| {
        let x = k.take_input(0)?;
        k.push_output(cpu::map(x, |_: T| T::default())?);
        Ok(())
    }))
}

fn ones_like_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    with_dtype!(any, ctx.input_dtype(0), T => kernel_fn(|k| {
        let x = k.take_input(0)?;
        k.push_output(cpu::map(x, |_: T| T::from_i64(1))?);
        Ok(())
    }))
}

/// Range's dtypes among ours (TensorFlow's Tidx has no uint8).
const RANGE_TYPES: &[DType] = &[DType::Float32, DType::Float64, DType::Int32, DType::Int64];

/// The number of elements of `range(start, limit, delta)`, with TensorFlow's checks.
fn range_len<T: Number>(start: T, limit: T, delta: T) -> std::result::Result<usize, String> {
    if delta == T::ZERO {
        return Err(format!("Requires delta != 0: {delta:?}"));
    }
    if delta > T::ZERO && start > limit {
        return Err(format!(
            "Requires start <= limit when delta > 0: {start:?}/{limit:?}"
        ));
    }
    if delta < T::ZERO && start < limit {
        return Err(format!(
            "Requires start >= limit when delta < 0: {start:?}/{limit:?}"
        ));
    }
    let too_big = || format!("Requires ((limit - start) / delta) <= {}", i64::MAX);
    if T::DTYPE.is_float() {
        // ceil(|(limit - start) / delta|), the quotient in T's precision as TensorFlow does.
        let q = limit
            .sub(start)
            .div(delta)
            .unwrap_or(T::ZERO)
            .to_f64()
            .abs()
            .ceil();
        if q.is_nan() || q > i64::MAX as f64 {
            return Err(too_big());
        }
        Ok(q as usize)
    } else {
        let (s, l, d) = (
            start.to_i64() as i128,
            limit.to_i64() as i128,
            delta.to_i64() as i128,
        );
        let n = ((l - s).abs() + d.abs() - 1) / d.abs();
        usize::try_from(n).map_err(|_| too_big())
    }
}

/// `start + i * delta` for `i` in `0..n`.
fn range_values<T: Number>(start: T, delta: T, n: usize) -> Vec<T> {
    (0..n)
        .map(|i| start.add(T::from_i64(i as i64).mul(delta)))
        .collect()
}

fn infer_range(ctx: &InferCtx<'_>) -> InferResult {
    ctx.expect_inputs(3)?;
    let t = ctx.same_dtype()?;
    ctx.check_dtype(0, RANGE_TYPES)?;
    super::check_type_attr(ctx, "Tidx", t)?;
    for (i, name) in ["start", "limit", "delta"].iter().enumerate() {
        check_rank(ctx, i, 0, name)?;
    }
    let consts: Option<Vec<Tensor>> = (0..3).map(|i| ctx.constant_input(i)).collect();
    let len = match consts {
        Some(c) => with_dtype!(signed, t, T => {
            let v = |i: usize| c[i].scalar_value::<T>().map_err(|e| e.to_string());
            Some(range_len(v(0)?, v(1)?, v(2)?)?)
        }),
        None => None,
    };
    Ok(vec![TensorSpec::new(t, PartialShape::new(vec![len]))])
}

fn range_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    with_dtype!(signed, ctx.input_dtype(0), T => kernel_fn(|k| {
        let start = k.input(0)?.scalar_value::<T>()?;
        let limit = k.input(1)?.scalar_value::<T>()?;
        let delta = k.input(2)?.scalar_value::<T>()?;
        let n = range_len(start, limit, delta).map_err(Error::invalid)?;
        alloc::checked_len(T::DTYPE, &[n])?;
        k.push_output(Tensor::vector(range_values(start, delta, n)));
        Ok(())
    }))
}

/// TensorFlow's `_FillGrad`: the value's gradient is the sum of the gradient over every
/// axis (`reduce_sum` with no axes: a constant `range(rank)` when the rank is known, a
/// Range op otherwise); `dims` gets none.
fn fill_grad(ctx: &mut GradCtx<'_>) -> Result<Vec<Option<Output>>> {
    let grad = ctx.grad(0);
    let g = &mut *ctx.graph;
    let axes = match g.shape(grad).rank() {
        Some(r) => index_const(g, &(0..r as i64).collect::<Vec<_>>())?,
        None => {
            let (zero, one) = (g.constant(0i32)?, g.constant(1i32)?);
            let rank = g.rank(grad)?;
            g.range(zero, rank, one)?
        }
    };
    Ok(vec![None, Some(g.reduce_sum_t(grad, axes, false)?)])
}

pub(super) fn register(r: &mut Registry) {
    r.add(
        Op::new("Fill", infer_fill, fill_kernel)
            .grad(fill_grad)
            .defaults(|| vec![("index_type", DType::Int32.into())]),
    );
    r.add(Op::new("ZerosLike", infer_like, zeros_like_kernel).no_grad());
    r.add(Op::new("OnesLike", infer_like, ones_like_kernel).no_grad());
    r.add(
        Op::new("Range", infer_range, range_kernel)
            .no_grad()
            .defaults(|| vec![("Tidx", DType::Int32.into())]),
    );
}

impl Graph {
    /// A tensor of shape `dims` (an int32 or int64 vector) filled with the scalar `value`
    /// (`tf.fill`).
    pub fn fill(&mut self, dims: Output, value: Output) -> Result<Output> {
        let (t, ti) = (self.dtype(value), self.dtype(dims));
        self.op("Fill")
            .input(dims)
            .input(value)
            .attr("T", t)
            .attr("index_type", ti)
            .build_output()
    }

    /// A tensor of zeros (false for bool) of a known shape (`tf.zeros`, a Fill).
    pub fn zeros(&mut self, dtype: DType, shape: &[usize]) -> Result<Output> {
        self.filled(dtype, shape, 0.0)
    }

    /// A tensor of ones (true for bool) of a known shape (`tf.ones`, a Fill).
    pub fn ones(&mut self, dtype: DType, shape: &[usize]) -> Result<Output> {
        self.filled(dtype, shape, 1.0)
    }

    fn filled(&mut self, dtype: DType, shape: &[usize], v: f64) -> Result<Output> {
        let dims: Vec<i64> = shape
            .iter()
            .map(|&d| i64::try_from(d).map_err(|_| Error::invalid("dim too large")))
            .collect::<Result<_>>()?;
        let d = index_const(self, &dims)?;
        let value = self.scalar_like(dtype, v)?;
        self.fill(d, value)
    }

    /// Zeros of `x`'s shape and dtype (`tf.zeros_like`).
    pub fn zeros_like(&mut self, x: Output) -> Result<Output> {
        let t = self.dtype(x);
        self.op("ZerosLike").input(x).attr("T", t).build_output()
    }

    /// Ones of `x`'s shape and dtype (`tf.ones_like`).
    pub fn ones_like(&mut self, x: Output) -> Result<Output> {
        let t = self.dtype(x);
        self.op("OnesLike").input(x).attr("T", t).build_output()
    }

    /// `[start, start + delta, ...]` up to but excluding `limit` (`tf.range`): three
    /// scalars of one dtype (int32, int64, float32 or float64).
    pub fn range(&mut self, start: Output, limit: Output, delta: Output) -> Result<Output> {
        let t = self.dtype(start);
        self.op("Range")
            .input(start)
            .input(limit)
            .input(delta)
            .attr("Tidx", t)
            .build_output()
    }
}

#[cfg(test)]
mod tests {
    use crate::test_util::{run, run_err, run_fed, t};
    use crate::{DType, Graph, PartialShape, Tensor};

    #[test]
    fn fill_zeros_ones() {
        let mut g = Graph::new();
        let d = g.constant(Tensor::from([2i64, 3])).unwrap();
        let v = g.constant(7u8).unwrap();
        let f = g.fill(d, v).unwrap();
        assert_eq!(g.shape(f).to_known(), Some(vec![2, 3]));
        let z = g.zeros(DType::Float64, &[2]).unwrap();
        let o = g.ones(DType::Bool, &[1, 2]).unwrap();
        let e = g.ones(DType::Int32, &[0, 5]).unwrap();
        let s = g.zeros(DType::Int64, &[]).unwrap();
        let out = run(&g, &[f, z, o, e, s]);
        assert_eq!(out[0], Tensor::new(&[2, 3], vec![7u8; 6]).unwrap());
        assert_eq!(out[1], Tensor::from([0.0f64, 0.0]));
        assert_eq!(out[2], Tensor::from([[true, true]]));
        assert_eq!(out[3].shape(), &[0, 5]);
        assert_eq!(out[4], Tensor::scalar(0i64));
    }

    #[test]
    fn fill_errors() {
        let mut g = Graph::new();
        let d = g.constant(Tensor::from([-1i32, 2])).unwrap();
        let v = g.constant(1.0f32).unwrap();
        let msg = g.fill(d, v).unwrap_err().to_string();
        assert!(msg.contains("Fill dimensions must be >= 0"), "{msg}");
        let ok = g.constant(Tensor::from([1i32])).unwrap();
        let vv = g.constant(Tensor::from([1.0f32])).unwrap();
        let msg = g.fill(ok, vv).unwrap_err().to_string();
        assert!(msg.contains("value must be rank 0"), "{msg}");
        let p = g.placeholder(DType::Int32, [2], "p").unwrap();
        let f = g.fill(p, v).unwrap();
        assert_eq!(g.shape(f).to_string(), "[?,?]");
        let msg = run_err(&g, &[(p, t(&[2], &[3, -4]))], f);
        assert!(msg.contains("dims[1] = -4"), "{msg}");
        let out = run_fed(&g, &[(p, t(&[2], &[1, 2]))], &[f]);
        assert_eq!(out[0], Tensor::from([[1.0f32, 1.0]]));
    }

    #[test]
    fn zeros_like_ones_like_every_family() {
        let mut g = Graph::new();
        let b = g.constant(Tensor::from([true, false])).unwrap();
        let u = g.constant(Tensor::from([[3u8, 4]])).unwrap();
        let f = g.constant(Tensor::from([-1.5f32])).unwrap();
        let outs = [
            g.zeros_like(b).unwrap(),
            g.ones_like(b).unwrap(),
            g.zeros_like(u).unwrap(),
            g.ones_like(u).unwrap(),
            g.ones_like(f).unwrap(),
        ];
        let out = run(&g, &outs);
        assert_eq!(out[0], Tensor::from([false, false]));
        assert_eq!(out[1], Tensor::from([true, true]));
        assert_eq!(out[2], Tensor::from([[0u8, 0]]));
        assert_eq!(out[3], Tensor::from([[1u8, 1]]));
        assert_eq!(out[4], Tensor::from([1.0f32]));
    }

    #[test]
    fn range_ints_and_floats() {
        let mut g = Graph::new();
        let c = |g: &mut Graph, v: i32| g.constant(v).unwrap();
        let (s, l, d) = (c(&mut g, 3), c(&mut g, 10), c(&mut g, 3));
        let r = g.range(s, l, d).unwrap();
        assert_eq!(g.shape(r).to_known(), Some(vec![3]));
        let (s2, l2, d2) = (c(&mut g, 5), c(&mut g, -2), c(&mut g, -2));
        let down = g.range(s2, l2, d2).unwrap();
        let (s3, l3) = (c(&mut g, 4), c(&mut g, 4));
        let empty = g.range(s3, l3, d).unwrap();
        let fs = g.constant(1.0f32).unwrap();
        let fl = g.constant(10.0f32).unwrap();
        let fd = g.constant(0.7f32).unwrap();
        let fr = g.range(fs, fl, fd).unwrap();
        assert_eq!(g.shape(fr).to_known(), Some(vec![13]));
        let out = run(&g, &[r, down, empty, fr]);
        assert_eq!(out[0], t(&[3], &[3, 6, 9]));
        // np.arange(5, -2, -2)
        assert_eq!(out[1], t(&[4], &[5, 3, 1, -1]));
        assert_eq!(out[2].shape(), &[0]);
        // tf.range(1.0, 10.0, 0.7) (float32), computed as start + i * delta: element 9 is
        // 7.2999997 where np.arange gives 7.3000002
        let want = [
            1.0f32, 1.7, 2.4, 3.1, 3.8, 4.5, 5.2, 5.9, 6.6, 7.2999997, 8.0, 8.7, 9.4,
        ];
        assert_eq!(out[3], Tensor::from(want));
    }

    #[test]
    fn range_errors() {
        let mut g = Graph::new();
        let a = g.constant(5i64).unwrap();
        let b = g.constant(1i64).unwrap();
        let msg = g.range(a, b, b).unwrap_err().to_string();
        assert!(
            msg.contains("Requires start <= limit when delta > 0: 5/1"),
            "{msg}"
        );
        let z = g.constant(0i64).unwrap();
        let msg = g.range(a, b, z).unwrap_err().to_string();
        assert!(msg.contains("Requires delta != 0"), "{msg}");
        let u = g.constant(1u8).unwrap();
        assert!(g.range(u, u, u).is_err());
        let f = g.constant(1.0f32).unwrap();
        assert!(g.range(a, f, b).unwrap_err().to_string().contains("Cast"));
        let p = g
            .placeholder(DType::Float64, PartialShape::scalar(), "p")
            .unwrap();
        let one = g.constant(1.0f64).unwrap();
        let zero = g.constant(0.0f64).unwrap();
        let r = g.range(zero, p, one).unwrap();
        assert_eq!(g.shape(r).to_string(), "[?]");
        let msg = run_err(&g, &[(p, Tensor::scalar(f64::NAN))], r);
        assert!(msg.contains("Requires ((limit - start) / delta)"), "{msg}");
        let out = run_fed(&g, &[(p, Tensor::scalar(2.5f64))], &[r]);
        assert_eq!(out[0], Tensor::from([0.0f64, 1.0, 2.0]));
    }

    #[test]
    fn creation_ops_gradients_follow_tensorflow() {
        use crate::ops::{registry, Gradient};
        for name in ["ZerosLike", "OnesLike", "Range"] {
            let op = registry::lookup(name).unwrap();
            assert!(
                matches!(op.gradient(), Gradient::NotDifferentiable),
                "{name}"
            );
        }
        let fill = registry::lookup("Fill").unwrap();
        assert!(matches!(fill.gradient(), Gradient::Defined(_)));
    }
}

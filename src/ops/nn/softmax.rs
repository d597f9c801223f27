//! Softmax, LogSoftmax and the fused cross-entropy losses
//! SoftmaxCrossEntropyWithLogits and SparseSoftmaxCrossEntropyWithLogits. Every row is
//! shifted by its maximum first, so large logits never overflow.

use super::grad_is_filled_zeros;
use crate::device::cpu::{broadcast_shape, broadcast_strides};
use crate::device::gemm::zeroed;
use crate::graph::{AttrsExt, Graph, Output, TensorSpec};
use crate::ops::math::{check_family, Family};
use crate::ops::{kernel_fn, GradCtx, InferCtx, KernelBuildCtx, KernelCtx};
use crate::ops::{InferResult, KernelResult};
use crate::tensor::{DType, Float, Number, PartialShape, Tensor};
use crate::{with_dtype, Error, Result};

fn infer_softmax(ctx: &InferCtx<'_>) -> InferResult {
    ctx.expect_inputs(1)?;
    let dt = check_family(ctx, 0, Family::Float)?;
    ctx.check_t_attr(dt)?;
    if ctx.shape(0).rank() == Some(0) {
        return Err("logits must have >= 1 dimension, got a scalar (shape [])".to_string());
    }
    Ok(vec![ctx.input(0).clone()])
}

/// The largest element (negative infinity for an empty row).
#[inline]
fn row_max<T: Float>(row: impl Iterator<Item = T>) -> T {
    row.fold(T::LOWEST, |m, v| if v > m { v } else { m })
}

/// Softmax (or log-softmax) of every row of `n` elements, in place.
fn softmax_rows<T: Float>(data: &mut [T], n: usize, log: bool) {
    for row in data.chunks_exact_mut(n) {
        let m = row_max(row.iter().copied());
        if log {
            let lse = row.iter().fold(T::ZERO, |s, &v| s + (v - m).exp()).ln();
            row.iter_mut().for_each(|v| *v = *v - m - lse);
        } else {
            let mut sum = T::ZERO;
            for v in row.iter_mut() {
                *v = (*v - m).exp();
                sum = sum + *v;
            }
            row.iter_mut().for_each(|v| *v = *v / sum);
        }
    }
}

/// Kernel of Softmax (`log` false) and LogSoftmax, reusing the input buffer.
fn softmax_kernel_for(ctx: &KernelBuildCtx<'_>, log: bool) -> KernelResult {
    with_dtype!(float, ctx.input_dtype(0), T => kernel_fn(move |k: &mut KernelCtx<'_>| {
        let x = k.take_input(0)?;
        let shape = x.shape().to_vec();
        let Some(&n) = shape.last() else {
            return Err(Error::invalid("logits must have >= 1 dimension, got a scalar"));
        };
        let mut v = x.into_vec::<T>()?;
        if n > 0 {
            softmax_rows(&mut v, n, log);
        }
        k.push_output(Tensor::from_parts(shape, v));
        Ok(())
    }))
}

fn softmax_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    softmax_kernel_for(ctx, false)
}

fn log_softmax_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    softmax_kernel_for(ctx, true)
}

fn infer_xent(ctx: &InferCtx<'_>) -> InferResult {
    ctx.expect_inputs(2)?;
    let dt = ctx.same_dtype()?;
    check_family(ctx, 0, Family::Float)?;
    ctx.check_t_attr(dt)?;
    // Same-shape matrices (the usual case), else TensorFlow's broadcasting rule.
    let shape = match PartialShape::with_rank(2)
        .merge(ctx.shape(0))
        .and_then(|s| s.merge(ctx.shape(1)))
    {
        Ok(s) => s,
        Err(_) => {
            let b = ctx
                .shape(0)
                .broadcast(ctx.shape(1))
                .map_err(|e| format!("logits and labels must be broadcastable: {e}"))?;
            match b.rank() {
                Some(2) => b,
                Some(r) => {
                    return Err(format!(
                    "Shape must be broadcasted with rank 2, but is rank {r} (logits {}, labels {})",
                    ctx.shape(0),
                    ctx.shape(1)
                ))
                }
                None => {
                    return Err(
                        "Shape must be broadcasted with rank 2, but is rank is unknown."
                            .to_string(),
                    )
                }
            }
        }
    };
    Ok(vec![
        TensorSpec::new(dt, PartialShape::new(vec![shape.dim(0)])),
        TensorSpec::new(dt, shape),
    ])
}

/// Loss and backprop of one row: `loss = Σ labels·(lse − shifted)`,
/// `backprop = softmax − labels`, with `shifted = logits − max`. `back` first receives
/// the shifted logits.
#[inline]
fn xent_row<T: Float>(back: &mut [T], label: impl Fn(usize) -> T) -> T {
    let m = row_max(back.iter().copied());
    back.iter_mut().for_each(|v| *v = *v - m);
    let sum = back.iter().fold(T::ZERO, |s, &v| s + v.exp());
    let lse = sum.ln();
    let mut loss = T::ZERO;
    for (j, v) in back.iter_mut().enumerate() {
        let l = label(j);
        loss = loss + l * (lse - *v);
        *v = v.exp() / sum - l;
    }
    loss
}

fn xent_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    with_dtype!(float, ctx.input_dtype(0), T => kernel_fn(|k: &mut KernelCtx<'_>| {
        let (f, l) = (k.input(0)?, k.input(1)?);
        let shape = broadcast_shape(f.shape(), l.shape()).map_err(|_| Error::invalid(format!(
            "logits and labels must be broadcastable: logits_size={:?} labels_size={:?}",
            f.shape(), l.shape()
        )))?;
        let [b, c] = <[usize; 2]>::try_from(shape.as_slice()).map_err(|_| Error::invalid(format!(
            "logits and labels must be either 2-dimensional, or broadcasted to be 2-dimensional: logits_size={:?} labels_size={:?}",
            f.shape(), l.shape()
        )))?;
        let (fs, ls) = (broadcast_strides(f.shape(), &shape), broadcast_strides(l.shape(), &shape));
        let (fx, lx) = (f.as_slice::<T>()?, l.as_slice::<T>()?);
        let mut loss = zeroed::<T>(b);
        let mut back = zeroed::<T>(b * c);
        if c > 0 {
            for (i, (row, out)) in back.chunks_exact_mut(c).zip(loss.iter_mut()).enumerate() {
                row.iter_mut().enumerate().for_each(|(j, v)| *v = fx[i * fs[0] + j * fs[1]]);
                *out = xent_row(row, |j| lx[i * ls[0] + j * ls[1]]);
            }
        }
        k.push_output(Tensor::from_parts(vec![b], loss));
        k.push_output(Tensor::from_parts(shape, back));
        Ok(())
    }))
}

fn infer_sparse_xent(ctx: &InferCtx<'_>) -> InferResult {
    ctx.expect_inputs(2)?;
    let dt = check_family(ctx, 0, Family::Float)?;
    ctx.check_t_attr(dt)?;
    let lt = ctx.dtype(1);
    if !matches!(lt, DType::Int32 | DType::Int64) {
        return Err(format!("labels must be int32 or int64, got {lt}"));
    }
    let tl = ctx.attrs().dtype_or("Tlabels", DType::Int64)?;
    if tl != lt {
        return Err(format!("attr Tlabels is {tl} but the labels are {lt}"));
    }
    let features = PartialShape::with_rank(2)
        .merge(ctx.shape(0))
        .map_err(|_| format!("logits must be 2-D, but got shape {}", ctx.shape(0)))?;
    let labels = PartialShape::with_rank(1)
        .merge(ctx.shape(1))
        .map_err(|_| format!("labels must be 1-D, but got shape {}", ctx.shape(1)))?;
    let batch = match (features.dim(0), labels.dim(0)) {
        (Some(x), Some(y)) if x != y => {
            return Err(format!(
                "logits and labels must have the same first dimension, got logits shape {} and labels shape {}",
                ctx.shape(0),
                ctx.shape(1)
            ))
        }
        (x, y) => x.or(y),
    };
    Ok(vec![
        TensorSpec::new(dt, PartialShape::new(vec![batch])),
        TensorSpec::new(dt, PartialShape::new(vec![batch, features.dim(1)])),
    ])
}

fn sparse_xent_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    with_dtype!(float, ctx.input_dtype(0), T => kernel_fn(|k: &mut KernelCtx<'_>| {
        let (f, l) = (k.input(0)?, k.input(1)?);
        let [b, c] = <[usize; 2]>::try_from(f.shape())
            .map_err(|_| Error::invalid(format!("logits must be 2-D, but got shape {:?}", f.shape())))?;
        if l.shape() != [b] {
            return Err(Error::invalid(format!(
                "logits and labels must have the same first dimension, got logits shape {:?} and labels shape {:?}",
                f.shape(), l.shape()
            )));
        }
        if c == 0 && b > 0 {
            return Err(Error::invalid(format!(
                "Must have at least one class, but got logits shape {:?}", f.shape()
            )));
        }
        let labels = l.to_i64_vec()?;
        if let Some(&bad) = labels.iter().find(|&&v| v < 0 || v as u64 >= c as u64) {
            let all: Vec<String> = labels.iter().map(|v| v.to_string()).collect();
            return Err(Error::invalid(format!(
                "Received a label value of {bad} which is outside the valid range of [0, {c}).  Label values: {}",
                all.join(" ")
            )));
        }
        let mut back = f.to_vec::<T>()?;
        let mut loss = zeroed::<T>(b);
        if c > 0 {
            for ((row, out), &label) in back.chunks_exact_mut(c).zip(loss.iter_mut()).zip(&labels) {
                let label = label as usize;
                *out = xent_row(row, |j| if j == label { T::ONE } else { T::ZERO });
            }
        }
        k.push_output(Tensor::from_parts(vec![b], loss));
        k.push_output(Tensor::from_parts(vec![b, c], back));
        Ok(())
    }))
}

/// TensorFlow's `_SoftmaxGrad`: `(g − sum(g·y, -1, keepdims)) · y`.
fn softmax_grad(ctx: &mut GradCtx<'_>) -> Result<Vec<Option<Output>>> {
    let (y, dy) = (ctx.output(0), ctx.grad(0));
    let g = &mut *ctx.graph;
    let prod = g.mul(dy, y)?;
    let sum = g.reduce_sum(prod, &[-1], true)?;
    let diff = g.sub(dy, sum)?;
    Ok(vec![Some(g.mul(diff, y)?)])
}

/// TensorFlow's `_LogSoftmaxGrad`: `g − sum(g, -1, keepdims) · exp(y)`.
fn log_softmax_grad(ctx: &mut GradCtx<'_>) -> Result<Vec<Option<Output>>> {
    let (y, dy) = (ctx.output(0), ctx.grad(0));
    let g = &mut *ctx.graph;
    let softmax = g.exp(y)?;
    let sum = g.reduce_sum(dy, &[-1], true)?;
    let scaled = g.mul(sum, softmax)?;
    Ok(vec![Some(g.sub(dy, scaled)?)])
}

/// `vec[..., newaxis] · mat` (TensorFlow's `_BroadcastMul`).
fn broadcast_mul(g: &mut Graph, vec: Output, mat: Output) -> Result<Output> {
    let v = g.expand_dims(vec, -1)?;
    g.mul(v, mat)
}

/// The logits gradient shared by both cross-entropies (TensorFlow's
/// `_SoftmaxCrossEntropyWithLogitsGrad`): `grad_loss[:, newaxis] · backprop`, plus, when
/// the backprop output itself receives a gradient `gg`, the softmax derivative
/// `(gg − gg·softmaxᵀ) · softmax` (so second derivatives work).
fn xent_logits_grad(ctx: &mut GradCtx<'_>) -> Result<Output> {
    let skip_second = grad_is_filled_zeros(ctx, 1);
    let (logits, backprop) = (ctx.input(0), ctx.output(1));
    let (grad_loss, grad_grad) = (ctx.grad(0), ctx.grad(1));
    let g = &mut *ctx.graph;
    let grad = broadcast_mul(g, grad_loss, backprop)?;
    if skip_second {
        return Ok(grad);
    }
    let softmax = g.softmax(logits)?;
    let row = g.expand_dims(grad_grad, 1)?;
    let col = g.expand_dims(softmax, 2)?;
    let dot = g.batch_matmul(row, col, false, false)?;
    let dot = g.squeeze(dot, &[1])?;
    let diff = g.sub(grad_grad, dot)?;
    let second = g.mul(diff, softmax)?;
    g.add(grad, second)
}

/// TensorFlow's `_SoftmaxCrossEntropyWithLogitsGrad`; the labels get
/// `grad_loss[:, newaxis] · −log_softmax(logits)` (as in TensorFlow, the gradient
/// flowing into the backprop output does not reach the labels).
fn xent_grad(ctx: &mut GradCtx<'_>) -> Result<Vec<Option<Output>>> {
    let dlogits = xent_logits_grad(ctx)?;
    let (logits, grad_loss) = (ctx.input(0), ctx.grad(0));
    let g = &mut *ctx.graph;
    let log_softmax = g.log_softmax(logits)?;
    let neg = g.neg(log_softmax)?;
    let dlabels = broadcast_mul(g, grad_loss, neg)?;
    Ok(vec![Some(dlogits), Some(dlabels)])
}

/// TensorFlow's `_SparseSoftmaxCrossEntropyWithLogitsGrad`: the logits gradient of the
/// dense loss; the integer labels get none.
fn sparse_xent_grad(ctx: &mut GradCtx<'_>) -> Result<Vec<Option<Output>>> {
    Ok(vec![Some(xent_logits_grad(ctx)?), None])
}

pub(super) fn register(r: &mut crate::ops::Registry) {
    use crate::ops::Op;
    r.add(Op::new("Softmax", infer_softmax, softmax_kernel).grad(softmax_grad));
    r.add(Op::new("LogSoftmax", infer_softmax, log_softmax_kernel).grad(log_softmax_grad));
    r.add(Op::new("SoftmaxCrossEntropyWithLogits", infer_xent, xent_kernel).grad(xent_grad));
    r.add(
        Op::new(
            "SparseSoftmaxCrossEntropyWithLogits",
            infer_sparse_xent,
            sparse_xent_kernel,
        )
        .grad(sparse_xent_grad)
        .defaults(|| vec![("Tlabels", DType::Int64.into())]),
    );
}

impl Graph {
    /// Softmax over the last axis (`tf.nn.softmax`).
    pub fn softmax(&mut self, logits: Output) -> Result<Output> {
        crate::ops::math::unary(self, "Softmax", logits)
    }

    /// Log-softmax over the last axis (`tf.nn.log_softmax`).
    pub fn log_softmax(&mut self, logits: Output) -> Result<Output> {
        crate::ops::math::unary(self, "LogSoftmax", logits)
    }

    /// Softmax cross-entropy of `[batch, classes]` logits against a probability
    /// distribution per row (op SoftmaxCrossEntropyWithLogits); `labels` may broadcast
    /// against `features`. Returns `(loss [batch], backprop [batch, classes])`.
    pub fn softmax_cross_entropy_with_logits(
        &mut self,
        features: Output,
        labels: Output,
    ) -> Result<(Output, Output)> {
        let t = self.dtype(features);
        let id = self
            .op("SoftmaxCrossEntropyWithLogits")
            .input(features)
            .input(labels)
            .attr("T", t)
            .build()?;
        Ok((id.output(0), id.output(1)))
    }

    /// Softmax cross-entropy of `[batch, classes]` logits against int32/int64 class
    /// indices `[batch]` (op SparseSoftmaxCrossEntropyWithLogits); an index outside
    /// `[0, classes)` fails at run time. Returns `(loss, backprop)`.
    pub fn sparse_softmax_cross_entropy_with_logits(
        &mut self,
        features: Output,
        labels: Output,
    ) -> Result<(Output, Output)> {
        let (t, tl) = (self.dtype(features), self.dtype(labels));
        let id = self
            .op("SparseSoftmaxCrossEntropyWithLogits")
            .input(features)
            .input(labels)
            .attr("T", t)
            .attr("Tlabels", tl)
            .build()?;
        Ok((id.output(0), id.output(1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{assert_close, f64s, fetch_err, run};

    /// Gradient nodes of type `op`.
    fn gradient_nodes(g: &Graph, op: &str) -> usize {
        g.nodes()
            .filter(|(_, n)| n.op_type() == op && n.name().starts_with("gradients"))
            .count()
    }

    #[test]
    fn xent_gradient_adds_the_second_order_term_only_when_needed() {
        let mut g = Graph::new();
        let logits = g.placeholder(DType::Float64, [2, 3], "logits").unwrap();
        let labels = g
            .constant(Tensor::from([[0.2f64, 0.3, 0.5], [1.0, 0.0, 0.0]]))
            .unwrap();
        let (loss, backprop) = g.softmax_cross_entropy_with_logits(logits, labels).unwrap();
        let from_loss = g.gradients(&[loss], &[logits]).unwrap()[0].unwrap();
        assert_eq!(gradient_nodes(&g, "BatchMatMulV2"), 0);
        let from_backprop = g.gradients(&[backprop], &[logits]).unwrap()[0].unwrap();
        assert_eq!(gradient_nodes(&g, "BatchMatMulV2"), 1);
        let x = Tensor::from([[0.5f64, -1.0, 2.0], [0.0, 0.3, -0.2]]);
        let out = crate::Session::new(&g)
            .run(&[(logits, x)], &[from_loss, from_backprop], &[])
            .unwrap();
        // tf.gradients(softmax_cross_entropy_with_logits(labels=l, logits=x), x)
        // = softmax(x) - l
        let want = [[0.5f64, -1.0, 2.0], [0.0, 0.3, -0.2]]
            .iter()
            .zip([[0.2, 0.3, 0.5], [1.0, 0.0, 0.0]])
            .flat_map(|(row, l)| {
                let sum: f64 = row.iter().map(|v| v.exp()).sum();
                (0..3).map(move |j| row[j].exp() / sum - l[j])
            })
            .collect::<Vec<_>>();
        assert_close(&f64s(&out[0]), &want, 1e-12);
        // Every row of the backprop output sums to 0 whatever the logits.
        assert_close(&f64s(&out[1]), &[0.0; 6], 1e-12);
    }

    #[test]
    fn softmax_of_large_logits_does_not_overflow() {
        let mut g = Graph::new();
        let x = g.constant(Tensor::from([1000f32, 1001., 1002.])).unwrap();
        let (s, l) = (g.softmax(x).unwrap(), g.log_softmax(x).unwrap());
        let out = run(&g, &[s, l]);
        // tf.nn.softmax / tf.nn.log_softmax of [1000., 1001., 1002.]
        assert_close(&f64s(&out[0]), &[0.09003057, 0.24472848, 0.6652409], 1e-6);
        assert_close(&f64s(&out[1]), &[-2.407606, -1.4076059, -0.40760595], 1e-6);
    }

    #[test]
    fn softmax_works_on_the_last_axis_of_any_rank() {
        let mut g = Graph::new();
        // tf.nn.softmax([[-1000., 0., 3.], [1., 1., 1.]]) (float64)
        let x = g
            .constant(Tensor::from([[[-1000f64, 0., 3.], [1., 1., 1.]]]))
            .unwrap();
        let s = g.softmax(x).unwrap();
        let l = g.log_softmax(x).unwrap();
        let e = g.constant(Tensor::zeros(DType::Float32, &[2, 0])).unwrap();
        let se = g.softmax(e).unwrap();
        let out = run(&g, &[s, l, se]);
        assert_eq!(out[0].shape(), &[1, 2, 3]);
        let third = 1.0 / 3.0;
        // exp(-3)/(1+exp(-3)) = 0.04742587317756678
        let want = [
            0.0,
            0.04742587317756678,
            0.9525741268224334,
            third,
            third,
            third,
        ];
        assert_close(&f64s(&out[0]), &want, 1e-12);
        // log-softmax: -1003 - log(1 + e^-3) = -1003.0485873515737, ...
        let lw = [
            -1003.0485873515737,
            -3.048587351573742,
            -0.04858735157374206,
        ];
        assert_close(&f64s(&out[1])[..3], &lw, 1e-12);
        assert_close(&f64s(&out[1])[3..], &[-(3f64.ln()); 3], 1e-12);
        assert_eq!(out[2].shape(), &[2, 0]);
    }

    #[test]
    fn softmax_refuses_scalars_and_integers() {
        let mut g = Graph::new();
        let s = g.constant(Tensor::scalar(1f32)).unwrap();
        let msg = g.softmax(s).unwrap_err().to_string();
        assert!(msg.contains(">= 1 dimension"), "{msg}");
        let i = g.constant(Tensor::from([1i32, 2])).unwrap();
        assert!(g.log_softmax(i).unwrap_err().to_string().contains("Cast"));
    }

    #[test]
    fn cross_entropy_with_broadcast_logits() {
        let mut g = Graph::new();
        let f = g.constant(Tensor::from([[1f32, 2., 3.]])).unwrap();
        let l = g
            .constant(Tensor::from([[0.2f32, 0.3, 0.5], [1., 0., 0.]]))
            .unwrap();
        let (loss, back) = g.softmax_cross_entropy_with_logits(f, l).unwrap();
        assert_eq!(g.shape(loss), &PartialShape::known(&[2]));
        assert_eq!(g.shape(back), &PartialShape::known(&[2, 3]));
        // tf.raw_ops.SoftmaxCrossEntropyWithLogits(features=[[1.,2.,3.]],
        //     labels=[[0.2,0.3,0.5],[1.,0,0]])
        let out = run(&g, &[loss, back]);
        assert_close(&f64s(&out[0]), &[1.1076059, 2.407606], 1e-6);
        let want = [
            -0.10996943,
            -0.05527154,
            0.16524094,
            -0.90996945,
            0.24472848,
            0.66524094,
        ];
        assert_close(&f64s(&out[1]), &want, 1e-6);
    }

    #[test]
    fn cross_entropy_of_extreme_logits_and_no_classes() {
        let mut g = Graph::new();
        // features=[[1000., 0., -1000.]], labels=[[0., 0., 1.]] -> loss 2000, backprop [1,0,-1]
        let f = g.constant(Tensor::from([[1000f64, 0., -1000.]])).unwrap();
        let l = g.constant(Tensor::from([[0f64, 0., 1.]])).unwrap();
        let (loss, back) = g.softmax_cross_entropy_with_logits(f, l).unwrap();
        let e = g.constant(Tensor::zeros(DType::Float32, &[2, 0])).unwrap();
        let (le, be) = g.softmax_cross_entropy_with_logits(e, e).unwrap();
        let out = run(&g, &[loss, back, le, be]);
        assert_close(&f64s(&out[0]), &[2000.0], 1e-12);
        assert_close(&f64s(&out[1]), &[1.0, 0.0, -1.0], 1e-12);
        assert_eq!(f64s(&out[2]), vec![0.0, 0.0]);
        assert_eq!(out[3].shape(), &[2, 0]);
    }

    #[test]
    fn cross_entropy_shape_errors() {
        let mut g = Graph::new();
        let f = g.placeholder(DType::Float32, [2, 3], "f").unwrap();
        let l = g.placeholder(DType::Float32, [2, 4], "l").unwrap();
        let msg = g
            .softmax_cross_entropy_with_logits(f, l)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("broadcastable"), "{msg}");
        let l3 = g.placeholder(DType::Float32, [1, 2, 3], "l3").unwrap();
        let msg = g
            .softmax_cross_entropy_with_logits(f, l3)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("rank 2"), "{msg}");
    }

    #[test]
    fn sparse_cross_entropy_matches_tensorflow() {
        let mut g = Graph::new();
        let f = g
            .constant(Tensor::from([[2f32, 1., 0.1], [0.5, 2.5, -1.]]))
            .unwrap();
        let l32 = g.constant(Tensor::from([0i32, 2])).unwrap();
        let l64 = g.constant(Tensor::from([0i64, 2])).unwrap();
        let (a, ab) = g.sparse_softmax_cross_entropy_with_logits(f, l32).unwrap();
        let (b, bb) = g.sparse_softmax_cross_entropy_with_logits(f, l64).unwrap();
        assert_eq!(g.shape(ab), &PartialShape::known(&[2, 3]));
        // tf.raw_ops.SparseSoftmaxCrossEntropyWithLogits(features=fe, labels=[0, 2])
        let out = run(&g, &[a, ab, b, bb]);
        let (loss, back) = (
            [0.41702995, 3.6531782],
            [
                -0.34099883,
                0.242433,
                0.0985659,
                0.11611453,
                0.8579768,
                -0.97409135,
            ],
        );
        for i in [0, 2] {
            assert_close(&f64s(&out[i]), &loss, 1e-6);
            assert_close(&f64s(&out[i + 1]), &back, 1e-6);
        }
    }

    #[test]
    fn sparse_labels_are_checked() {
        let mut g = Graph::new();
        let f = g.constant(Tensor::zeros(DType::Float32, &[2, 3])).unwrap();
        let bad = g.constant(Tensor::from([0i32, 5])).unwrap();
        let (loss, _) = g.sparse_softmax_cross_entropy_with_logits(f, bad).unwrap();
        assert_eq!(
            fetch_err(&g, loss),
            "node 'SparseSoftmaxCrossEntropyWithLogits' (op SparseSoftmaxCrossEntropyWithLogits) failed: \
             Received a label value of 5 which is outside the valid range of [0, 3).  Label values: 0 5"
        );
        let neg = g.constant(Tensor::from([-1i64, 0])).unwrap();
        let (loss, _) = g.sparse_softmax_cross_entropy_with_logits(f, neg).unwrap();
        assert!(fetch_err(&g, loss).contains("label value of -1"));
        let none = g.constant(Tensor::zeros(DType::Float32, &[2, 0])).unwrap();
        let ok = g.constant(Tensor::from([0i32, 0])).unwrap();
        let (loss, _) = g
            .sparse_softmax_cross_entropy_with_logits(none, ok)
            .unwrap();
        assert!(fetch_err(&g, loss).contains("at least one class"));
        // build time: batch mismatch, float labels, Tlabels disagreeing with the labels
        let three = g.constant(Tensor::from([0i32, 1, 2])).unwrap();
        let msg = g
            .sparse_softmax_cross_entropy_with_logits(f, three)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("[2,3]") && msg.contains("[3]"), "{msg}");
        let fl = g.constant(Tensor::from([0f32, 1.])).unwrap();
        assert!(g.sparse_softmax_cross_entropy_with_logits(f, fl).is_err());
        let msg = g
            .op("SparseSoftmaxCrossEntropyWithLogits")
            .input(f)
            .input(ok)
            .attr("T", DType::Float32)
            .build()
            .unwrap_err()
            .to_string();
        assert!(msg.contains("Tlabels is int64"), "{msg}");
    }
}

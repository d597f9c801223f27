//! Softmax, LogSoftmax and the fused cross-entropy losses
//! SoftmaxCrossEntropyWithLogits and SparseSoftmaxCrossEntropyWithLogits. Every row is
//! shifted by its maximum first, so large logits never overflow.

use crate::device::cpu::{broadcast_shape, broadcast_strides};
use crate::device::gemm::zeroed;
use crate::graph::{AttrsExt, Graph, Output, TensorSpec};
use crate::ops::math::{check_family, Family, InferResult, KernelResult};
use crate::ops::{kernel_fn, InferCtx, KernelBuildCtx, KernelCtx};
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
                Some(r) => return Err(format!(
                    "Shape must be broadcasted with rank 2, but is rank {r} (logits {}, labels {})",
                    ctx.shape(0),
                    ctx.shape(1)
                )),
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

pub(super) fn register(r: &mut crate::ops::Registry) {
    use crate::ops::Op;
    r.add(Op::new("Softmax", infer_softmax, softmax_kernel));
    r.add(Op::new("LogSoftmax", infer_softmax, log_softmax_kernel));
    r.add(Op::new(
        "SoftmaxCrossEntropyWithLogits",
        infer_xent,
        xent_kernel,
    ));
    r.add(
        Op::new(
            "SparseSoftmaxCrossEntropyWithLogits",
            infer_sparse_xent,
            sparse_xent_kernel,
        )
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

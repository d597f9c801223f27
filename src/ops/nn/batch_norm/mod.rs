//! FusedBatchNorm, FusedBatchNormV2 and FusedBatchNormV3 (`tf.compat.v1.layers`/tf.keras 2
//! batch normalization): `y = (x - mean) * scale / sqrt(variance + epsilon) + offset` per
//! channel (the last axis for NHWC, axis 1 for NCHW).
//!
//! With `is_training = false` (inference) `mean` and `variance` are the given moving
//! statistics; with `is_training = true` they are the batch's (over every axis but the
//! channel), and outputs 1 and 2 are the new moving statistics: the batch mean and the
//! unbiased batch variance, averaged into the given ones with `exponential_avg_factor`
//! (V3; 1 replaces them). Outputs 3 and 4 (`reserve_space_*`) hold the batch mean and the
//! biased batch variance; V3's output 5 is an empty placeholder (TensorFlow's CPU kernel
//! writes nothing meaningful there either).
//! The gradient (FusedBatchNormGrad, V2, V3) is in `grad.rs`.

pub(super) mod grad;

use super::window::DataFormat;
use crate::graph::{AttrValue, AttrsExt, TensorSpec};
use crate::ops::{kernel_fn, InferCtx, KernelBuildCtx, Op, Registry};
use crate::ops::{InferResult, KernelResult};
use crate::tensor::{Float, PartialShape, Tensor};
use crate::{with_dtype, Error};

fn infer(ctx: &InferCtx<'_>, outputs: usize) -> InferResult {
    ctx.expect_inputs(5)?;
    let dt = ctx.dtype(0);
    if !dt.is_float() {
        return Err(format!("x must be float32 or float64, got {dt}"));
    }
    for (i, name) in [(1, "scale"), (2, "offset"), (3, "mean"), (4, "variance")] {
        if ctx.dtype(i) != dt {
            return Err(format!("{name} has dtype {} but x has {dt}", ctx.dtype(i)));
        }
        if let Some(r) = ctx.shape(i).rank() {
            if r != 1 {
                return Err(format!(
                    "{name} must be 1-D, but has shape {}",
                    ctx.shape(i)
                ));
            }
        }
    }
    let format = DataFormat::from_attrs(ctx.attrs())?;
    let attrs = ctx.attrs();
    attrs.float_or("epsilon", 1e-4)?;
    attrs.float_or("exponential_avg_factor", 1.0)?;
    attrs.bool_or("is_training", true)?;
    let channels = channels(ctx, ctx.shape(0), format, 1..5)?;
    let stats = TensorSpec::new(dt, PartialShape::new(vec![channels]));
    let mut out = vec![
        ctx.input(0).clone(),
        stats.clone(),
        stats.clone(),
        stats.clone(),
        stats,
    ];
    if outputs == 6 {
        out.push(TensorSpec::new(dt, PartialShape::unknown()));
    }
    Ok(out)
}

/// The channel count of the 4-D `x` (`format`), checked against the 1-D per-channel
/// inputs `params`, from which it comes when x's is unknown.
pub(super) fn channels(
    ctx: &InferCtx<'_>,
    x: &PartialShape,
    format: DataFormat,
    params: std::ops::Range<usize>,
) -> std::result::Result<Option<usize>, String> {
    let mut channels = None;
    if let Some(dims) = x.dims() {
        if dims.len() != 4 {
            return Err(format!("x must be 4-dimensional, but has shape {x}"));
        }
        channels = dims[format.axes()[3]];
    }
    for i in params {
        match (channels, ctx.shape(i).dim(0)) {
            (Some(c), Some(d)) if c != d => {
                return Err(format!(
                    "input {i} has {d} values but x has {c} channels (shape {x})"
                ))
            }
            (None, d) => channels = d,
            _ => {}
        }
    }
    Ok(channels)
}

/// The statistics a batch norm step uses, per channel.
struct Stats<T> {
    mean: Vec<T>,
    /// Biased variance (what normalizes).
    variance: Vec<T>,
}

/// Mean and biased variance of each channel of `x`, viewed as `[outer, c, inner]`.
fn batch_stats<T: Float>(x: &[T], outer: usize, c: usize, inner: usize) -> Stats<T> {
    let n = T::lit((outer * inner) as f64);
    let mut mean = vec![T::ZERO; c];
    for o in 0..outer {
        for (ch, m) in mean.iter_mut().enumerate() {
            let base = (o * c + ch) * inner;
            for &v in &x[base..base + inner] {
                *m = *m + v;
            }
        }
    }
    mean.iter_mut().for_each(|m| *m = *m / n);
    let mut variance = vec![T::ZERO; c];
    for o in 0..outer {
        for (ch, s) in variance.iter_mut().enumerate() {
            let base = (o * c + ch) * inner;
            for &v in &x[base..base + inner] {
                let d = v - mean[ch];
                *s = *s + d * d;
            }
        }
    }
    variance.iter_mut().for_each(|s| *s = *s / n);
    Stats { mean, variance }
}

/// `x · mul[ch] + add[ch]` for `x` viewed as `[outer, c, inner]` (`c` = `mul.len()`),
/// a whole channel row at a time for NHWC (`inner` 1), so the loop vectorises.
fn normalize<T: Float>(x: &[T], mul: &[T], add: &[T], inner: usize) -> Vec<T> {
    let c = mul.len();
    let mut y = Vec::with_capacity(x.len());
    if inner == 1 {
        for row in x.chunks_exact(c.max(1)) {
            y.extend(row.iter().zip(mul).zip(add).map(|((&v, &m), &a)| v * m + a));
        }
    } else {
        for (block, (&m, &a)) in x
            .chunks_exact(inner.max(1))
            .zip(mul.iter().zip(add).cycle())
        {
            y.extend(block.iter().map(|&v| v * m + a));
        }
    }
    y
}

fn kernel(ctx: &KernelBuildCtx<'_>, outputs: usize) -> KernelResult {
    let attrs = ctx.attrs();
    let format = DataFormat::from_attrs(attrs)?;
    let epsilon = f64::from(attrs.float_or("epsilon", 1e-4)?);
    let factor = f64::from(attrs.float_or("exponential_avg_factor", 1.0)?);
    let training = attrs.bool_or("is_training", true)?;
    let name = ctx.node.name().to_string();
    with_dtype!(float, ctx.input_dtype(0), T => kernel_fn(move |k| {
        let x = k.input(0)?;
        let s = x.shape().to_vec();
        if s.len() != 4 {
            return Err(Error::invalid(format!(
                "FusedBatchNorm '{name}': x must be 4-dimensional, got shape {s:?}"
            )));
        }
        let c = s[format.axes()[3]];
        let (outer, inner) = match format {
            DataFormat::Nhwc => (s[0] * s[1] * s[2], 1),
            DataFormat::Nchw => (s[0], s[2] * s[3]),
        };
        let mut params = Vec::with_capacity(4);
        for (i, what) in [(1, "scale"), (2, "offset"), (3, "mean"), (4, "variance")] {
            let v = k.input(i)?.as_slice::<T>()?;
            if v.len() != c && !(training && i >= 3 && v.is_empty()) {
                return Err(Error::invalid(format!(
                    "FusedBatchNorm '{name}': {what} must have {c} values (x has shape \
                     {s:?}), got {}",
                    v.len()
                )));
            }
            params.push(v.to_vec());
        }
        let xs = x.as_slice::<T>()?;
        let stats = if training {
            batch_stats(xs, outer, c, inner)
        } else {
            Stats { mean: params[2].clone(), variance: params[3].clone() }
        };
        let eps = T::lit(epsilon);
        let mul: Vec<T> = (0..c)
            .map(|ch| params[0][ch] / (stats.variance[ch] + eps).sqrt())
            .collect();
        let add: Vec<T> = (0..c).map(|ch| params[1][ch] - stats.mean[ch] * mul[ch]).collect();
        let y = normalize(xs, &mul, &add, inner);
        let (batch_mean, batch_var) = if training {
            let n = (outer * inner) as f64;
            let correction = T::lit(if n > 1.0 { n / (n - 1.0) } else { 1.0 });
            let f = T::lit(factor);
            let keep = T::lit(1.0 - factor);
            let running = |old: &[T], new: T, ch: usize| {
                if factor == 1.0 || old.is_empty() { new } else { keep * old[ch] + f * new }
            };
            (
                (0..c).map(|ch| running(&params[2], stats.mean[ch], ch)).collect(),
                (0..c)
                    .map(|ch| running(&params[3], stats.variance[ch] * correction, ch))
                    .collect(),
            )
        } else {
            (params[2].clone(), params[3].clone())
        };
        k.push_output(Tensor::new(&s, y)?);
        k.push_output(Tensor::vector(batch_mean));
        k.push_output(Tensor::vector(batch_var));
        k.push_output(Tensor::vector(stats.mean));
        k.push_output(Tensor::vector(stats.variance));
        if outputs == 6 {
            k.push_output(Tensor::vector(Vec::<T>::new()));
        }
        Ok(())
    }))
}

fn defaults() -> Vec<(&'static str, AttrValue)> {
    vec![
        ("epsilon", AttrValue::Float(1e-4)),
        ("data_format", AttrValue::from("NHWC")),
        ("is_training", AttrValue::Bool(true)),
        ("exponential_avg_factor", AttrValue::Float(1.0)),
    ]
}

pub(super) fn register(r: &mut Registry) {
    let grad = grad::fused_batch_norm_grad;
    r.add(
        Op::new("FusedBatchNorm", |c| infer(c, 5), |c| kernel(c, 5))
            .defaults(defaults)
            .grad(grad),
    );
    r.add(
        Op::new("FusedBatchNormV2", |c| infer(c, 5), |c| kernel(c, 5))
            .defaults(defaults)
            .grad(grad),
    );
    r.add(
        Op::new("FusedBatchNormV3", |c| infer(c, 6), |c| kernel(c, 6))
            .defaults(defaults)
            .grad(grad),
    );
}

/// The `FusedBatchNormV3` node a test builds (`U` is the statistics' dtype).
#[cfg(test)]
pub(super) fn fused_batch_norm(
    g: &mut crate::Graph,
    inputs: &[crate::Output],
    training: bool,
    format: &str,
) -> crate::Result<crate::graph::NodeId> {
    let t = g.dtype(inputs[0]);
    g.op("FusedBatchNormV3")
        .inputs(inputs)
        .attr("T", t)
        .attr("U", t)
        .attr("epsilon", 0.001f32)
        .attr("is_training", training)
        .attr("data_format", format)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Graph, Session};

    /// x of shape [1, 2, 2, 2] (NHWC) and per-channel parameters.
    fn inputs(g: &mut Graph) -> Vec<crate::Output> {
        let x = Tensor::new(
            &[1, 2, 2, 2],
            vec![1f32, -2.0, 3.0, 0.5, -1.0, 4.0, 2.0, 1.5],
        )
        .unwrap();
        [
            x,
            Tensor::from([1.5f32, 0.5]),
            Tensor::from([0.1f32, -0.2]),
            Tensor::from([0.5f32, 1.0]),
            Tensor::from([2.0f32, 0.25]),
        ]
        .into_iter()
        .map(|t| g.constant(t).unwrap())
        .collect()
    }

    fn run(g: &Graph, n: crate::graph::NodeId, outputs: usize) -> Vec<Vec<f64>> {
        let fetches: Vec<_> = (0..outputs).map(|i| n.output(i)).collect();
        Session::new(g)
            .run(&[], &fetches, &[])
            .unwrap()
            .iter()
            .map(|t| t.to_f64_vec())
            .collect()
    }

    fn close(a: &[f64], b: &[f64]) {
        assert_eq!(a.len(), b.len(), "{a:?} vs {b:?}");
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() <= 1e-5 * y.abs().max(1.0), "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn inference_and_training_match_tensorflow() {
        let mut g = Graph::new();
        let ins = inputs(&mut g);
        // tf.raw_ops.FusedBatchNormV3(..., epsilon=0.001, is_training=False), TF 2.21
        let n = fused_batch_norm(&mut g, &ins, false, "NHWC").unwrap();
        let out = run(&g, n, 6);
        close(
            &out[0],
            &[
                0.6301975846290588,
                -3.1940181255340576,
                2.7509877681732178,
                -0.6990030407905579,
                -1.4905925989151,
                2.794018030166626,
                1.690592646598816,
                0.299003005027771,
            ],
        );
        close(&out[1], &[0.5, 1.0]);
        close(&out[2], &[2.0, 0.25]);
        // is_training=True: batch statistics, unbiased variance for the moving average.
        let n = fused_batch_norm(&mut g, &ins, true, "NHWC").unwrap();
        let out = run(&g, n, 6);
        close(
            &out[0],
            &[
                -0.1534883677959442,
                -0.8974103927612305,
                1.8744186162948608,
                -0.3162350654602051,
                -2.1813952922821045,
                0.4974104166030884,
                0.8604651093482971,
                -0.0837649330496788,
            ],
        );
        close(&out[1], &[1.25, 1.0]);
        close(&out[2], &[2.9166667, 6.1666665]);
        close(&out[3], &[1.25, 1.0]);
        close(&out[4], &[2.1875, 4.625]);
    }

    #[test]
    fn nchw_equals_nhwc_transposed_and_bad_shapes_fail() {
        let mut g = Graph::new();
        let ins = inputs(&mut g);
        let nhwc = fused_batch_norm(&mut g, &ins, false, "NHWC").unwrap();
        let x = g.transpose(ins[0], &[0, 3, 1, 2]).unwrap();
        let mut nchw_ins = ins.clone();
        nchw_ins[0] = x;
        let nchw = fused_batch_norm(&mut g, &nchw_ins, false, "NCHW").unwrap();
        let y = g.transpose(nchw.output(0), &[0, 2, 3, 1]).unwrap();
        let s = Session::new(&g);
        let out = s.run(&[], &[nhwc.output(0), y], &[]).unwrap();
        close(&out[1].to_f64_vec(), &out[0].to_f64_vec());
        let short = g.constant(Tensor::from([1f32, 2.0, 3.0])).unwrap();
        let mut bad = ins.clone();
        bad[1] = short;
        let e = fused_batch_norm(&mut g, &bad, false, "NHWC")
            .unwrap_err()
            .to_string();
        assert!(e.contains("3 values") && e.contains("2 channels"), "{e}");
    }
}

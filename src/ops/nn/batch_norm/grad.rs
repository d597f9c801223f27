//! The gradient of batch normalization: FusedBatchNormGrad, FusedBatchNormGradV2 and
//! FusedBatchNormGradV3 (TensorFlow's kernels), and the symbolic gradient of
//! FusedBatchNorm(V2/V3) that uses them (`nn_grad.py`'s `_BaseFusedBatchNormGrad`).
//!
//! Inputs: `y_backprop`, `x`, `scale`, `reserve_space_1`, `reserve_space_2` (V3 also
//! `reserve_space_3`, unused). Per channel, with `rstd = 1 / sqrt(reserve_space_2 +
//! epsilon)` and `xc = x - reserve_space_1`:
//! * `offset_backprop = Σ dy`, `scale_backprop = Σ dy·xc · rstd`;
//! * training (`reserve_space_*` are the batch mean and biased variance, which depend on
//!   x): `x_backprop = scale·rstd · (dy - Σdy/N - xc·rstd²·Σ(dy·xc)/N)`;
//! * inference (`reserve_space_*` are the population mean and variance, constants):
//!   `x_backprop = dy · scale · rstd`.
//!
//! Outputs 3 and 4 are empty vectors, as TensorFlow's CPU kernel writes them. The forward
//! op's gradient takes the batch statistics from its outputs 3 and 4 in training and the
//! given mean and variance (inputs 3 and 4) in inference; only `y`'s gradient flows back
//! (as in TensorFlow, the other outputs' gradients are ignored), and the mean and
//! variance inputs get none.

use crate::graph::{AttrValue, AttrsExt, TensorSpec};
use crate::ops::nn::window::DataFormat;
use crate::ops::{kernel_fn, GradCtx, InferCtx, KernelBuildCtx, Op, Registry};
use crate::ops::{InferResult, KernelResult};
use crate::tensor::{Float, Number, PartialShape, Tensor};
use crate::{with_dtype, Error, Output, Result};

/// The gradient op of each forward op, and how many reserve-space inputs it takes.
const GRAD_OPS: [(&str, &str, usize); 3] = [
    ("FusedBatchNorm", "FusedBatchNormGrad", 2),
    ("FusedBatchNormV2", "FusedBatchNormGradV2", 2),
    ("FusedBatchNormV3", "FusedBatchNormGradV3", 3),
];

fn infer(ctx: &InferCtx<'_>, reserves: usize) -> InferResult {
    ctx.expect_inputs(3 + reserves)?;
    let dt = ctx.dtype(0);
    if !dt.is_float() {
        return Err(format!("y_backprop must be float32 or float64, got {dt}"));
    }
    for i in 1..3 + reserves {
        if ctx.dtype(i) != dt {
            return Err(format!(
                "input {i} has dtype {} but y_backprop has {dt}",
                ctx.dtype(i)
            ));
        }
    }
    let format = DataFormat::from_attrs(ctx.attrs())?;
    ctx.attrs().float_or("epsilon", 1e-4)?;
    ctx.attrs().bool_or("is_training", true)?;
    let shape = ctx.shape(0).merge(ctx.shape(1)).map_err(|_| {
        format!(
            "y_backprop has shape {} but x has shape {}",
            ctx.shape(0),
            ctx.shape(1)
        )
    })?;
    let channels = super::channels(ctx, &shape, format, 2..5)?;
    let stats = TensorSpec::new(dt, PartialShape::new(vec![channels]));
    let empty = TensorSpec::new(dt, PartialShape::known(&[0]));
    Ok(vec![
        TensorSpec::new(dt, shape),
        stats.clone(),
        stats,
        empty.clone(),
        empty,
    ])
}

fn kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let attrs = ctx.attrs();
    let format = DataFormat::from_attrs(attrs)?;
    let epsilon = f64::from(attrs.float_or("epsilon", 1e-4)?);
    let training = attrs.bool_or("is_training", true)?;
    let what = format!("{} '{}'", ctx.node.op_type(), ctx.node.name());
    with_dtype!(float, ctx.input_dtype(0), T => kernel_fn(move |k| {
        let (dy, x) = (k.input(0)?, k.input(1)?);
        let s = x.shape().to_vec();
        if s.len() != 4 || dy.shape() != s.as_slice() {
            return Err(Error::invalid(format!(
                "{what}: x must be 4-dimensional and y_backprop of its shape, got {s:?} and \
                 {:?}",
                dy.shape()
            )));
        }
        let c = s[format.axes()[3]];
        let (outer, inner) = match format {
            DataFormat::Nhwc => (s[0] * s[1] * s[2], 1),
            DataFormat::Nchw => (s[0], s[2] * s[3]),
        };
        let mut params = Vec::with_capacity(3);
        for (i, name) in [(2, "scale"), (3, "reserve_space_1"), (4, "reserve_space_2")] {
            let v = k.input(i)?.as_slice::<T>()?;
            if v.len() != c {
                return Err(Error::invalid(format!(
                    "{what}: {name} must have {c} values (x has shape {s:?}), got {}",
                    v.len()
                )));
            }
            params.push(v);
        }
        let (scale, mean, variance) = (params[0], params[1], params[2]);
        let (dy, x) = (dy.as_slice::<T>()?, x.as_slice::<T>()?);
        let eps = T::lit(epsilon);
        let rstd: Vec<T> = variance.iter().map(|&v| T::ONE / (v + eps).sqrt()).collect();
        let (mut sum_dy, mut sum_dy_xc) = (vec![T::ZERO; c], vec![T::ZERO; c]);
        for o in 0..outer {
            for ch in 0..c {
                let base = (o * c + ch) * inner;
                for j in base..base + inner {
                    sum_dy[ch] += dy[j];
                    sum_dy_xc[ch] += dy[j] * (x[j] - mean[ch]);
                }
            }
        }
        let n = T::lit((outer * inner) as f64);
        let mut dx = Vec::with_capacity(x.len());
        for o in 0..outer {
            for ch in 0..c {
                let base = (o * c + ch) * inner;
                let k = scale[ch] * rstd[ch];
                if training {
                    let (mean_dy, mean_dy_xc) = (sum_dy[ch] / n, sum_dy_xc[ch] / n);
                    let r2 = rstd[ch] * rstd[ch];
                    dx.extend((base..base + inner).map(|j| {
                        k * (dy[j] - mean_dy - (x[j] - mean[ch]) * r2 * mean_dy_xc)
                    }));
                } else {
                    dx.extend(dy[base..base + inner].iter().map(|&d| d * k));
                }
            }
        }
        let dscale: Vec<T> = sum_dy_xc.iter().zip(&rstd).map(|(&a, &r)| a * r).collect();
        k.push_output(Tensor::new(&s, dx)?);
        k.push_output(Tensor::vector(dscale));
        k.push_output(Tensor::vector(sum_dy));
        k.push_output(Tensor::vector(Vec::<T>::new()));
        k.push_output(Tensor::vector(Vec::<T>::new()));
        Ok(())
    }))
}

/// The gradient of FusedBatchNorm(V2/V3) with respect to x, scale and offset.
pub(super) fn fused_batch_norm_grad(ctx: &mut GradCtx<'_>) -> Result<Vec<Option<Output>>> {
    let attrs = ctx.attrs();
    let forward = ctx.graph.node(ctx.node).op_type();
    let &(_, grad_op, reserves) = GRAD_OPS
        .iter()
        .find(|(op, ..)| *op == forward)
        .ok_or_else(|| Error::invalid(format!("{forward} has no batch norm gradient")))?;
    let training = attrs.bool_or("is_training", true).map_err(Error::invalid)?;
    // Training: the batch statistics the forward op used (its outputs 3 and 4);
    // inference: the given population statistics (its inputs 3 and 4).
    let (mean, variance) = if training {
        (ctx.output(3), ctx.output(4))
    } else {
        (ctx.input(3), ctx.input(4))
    };
    let mut inputs = vec![ctx.grad(0), ctx.input(0), ctx.input(1), mean, variance];
    if reserves == 3 {
        inputs.push(ctx.output(5));
    }
    let t = ctx.graph.dtype(ctx.input(0));
    let mut b = ctx.graph.op(grad_op).inputs(&inputs).attr("T", t);
    if reserves == 3 || forward == "FusedBatchNormV2" {
        b = b.attr("U", t);
    }
    for name in ["epsilon", "data_format", "is_training"] {
        if let Some(v) = attrs.get(name) {
            b = b.attr(name, v.clone());
        }
    }
    let grad = b.build()?;
    Ok(vec![
        Some(grad.output(0)),
        Some(grad.output(1)),
        Some(grad.output(2)),
        None,
        None,
    ])
}

fn defaults() -> Vec<(&'static str, AttrValue)> {
    vec![
        ("epsilon", AttrValue::Float(1e-4)),
        ("data_format", AttrValue::from("NHWC")),
        ("is_training", AttrValue::Bool(true)),
    ]
}

pub(in crate::ops::nn) fn register(r: &mut Registry) {
    r.add(Op::new("FusedBatchNormGrad", |c| infer(c, 2), kernel).defaults(defaults));
    r.add(Op::new("FusedBatchNormGradV2", |c| infer(c, 2), kernel).defaults(defaults));
    r.add(Op::new("FusedBatchNormGradV3", |c| infer(c, 3), kernel).defaults(defaults));
}

/// Gradient checks of the forward ops, training and inference, NHWC and NCHW.
#[cfg(test)]
pub(in crate::ops::nn) fn gradient_cases() -> Vec<crate::test_util::GradCase> {
    use crate::test_util::{test_input, GradCase};
    use crate::Graph;
    /// `op` over x, scale and offset (fed) and fixed positive statistics.
    fn bn(g: &mut Graph, x: &[Output], op: &str, training: bool, format: &str) -> Result<Output> {
        let mean = g.constant(Tensor::from([0.2f64, -0.1, 0.3]))?;
        let variance = g.constant(Tensor::from([0.5f64, 1.5, 0.8]))?;
        let mut b = g
            .op(op)
            .inputs(&[x[0], x[1], x[2], mean, variance])
            .attr("T", crate::DType::Float64)
            .attr("epsilon", 0.001f32)
            .attr("is_training", training)
            .attr("data_format", format);
        if op != "FusedBatchNorm" {
            b = b.attr("U", crate::DType::Float64);
        }
        b.build_output()
    }
    let nhwc = || {
        vec![
            test_input(&[2, 2, 2, 3], 71),
            test_input(&[3], 72),
            test_input(&[3], 73),
        ]
    };
    let nchw = || {
        vec![
            test_input(&[2, 3, 2, 2], 74),
            test_input(&[3], 75),
            test_input(&[3], 76),
        ]
    };
    vec![
        GradCase::new("FusedBatchNormV3", nhwc(), |g, x| {
            bn(g, x, "FusedBatchNormV3", true, "NHWC")
        }),
        GradCase::new("FusedBatchNormV3", nhwc(), |g, x| {
            bn(g, x, "FusedBatchNormV3", false, "NHWC")
        }),
        GradCase::new("FusedBatchNormV3", nchw(), |g, x| {
            bn(g, x, "FusedBatchNormV3", true, "NCHW")
        }),
        GradCase::new("FusedBatchNormV3", nchw(), |g, x| {
            bn(g, x, "FusedBatchNormV3", false, "NCHW")
        }),
        GradCase::new("FusedBatchNormV2", nhwc(), |g, x| {
            bn(g, x, "FusedBatchNormV2", true, "NHWC")
        }),
        GradCase::new("FusedBatchNorm", nchw(), |g, x| {
            bn(g, x, "FusedBatchNorm", false, "NCHW")
        }),
    ]
}

#[cfg(test)]
mod tests {
    use crate::{Graph, Session, Tensor};

    /// FusedBatchNormGradV3 on the forward test's inputs against TensorFlow 2.21's
    /// `tf.raw_ops.FusedBatchNormGradV3` (epsilon 0.001), in both modes.
    #[test]
    fn matches_tensorflow_in_training_and_inference() {
        let mut g = Graph::new();
        let c = |g: &mut Graph, t: Tensor| g.constant(t).unwrap();
        let shape = [1, 2, 2, 2];
        let x = c(
            &mut g,
            Tensor::new(&shape, vec![1f32, -2.0, 3.0, 0.5, -1.0, 4.0, 2.0, 1.5]).unwrap(),
        );
        let dy = c(
            &mut g,
            Tensor::new(&shape, vec![0.3f32, -0.7, 1.1, 0.2, -0.4, 0.9, 0.6, -1.3]).unwrap(),
        );
        let scale = c(&mut g, Tensor::from([1.5f32, 0.5]));
        let offset = c(&mut g, Tensor::from([0.1f32, -0.2]));
        let mean = c(&mut g, Tensor::from([0.5f32, 1.0]));
        let variance = c(&mut g, Tensor::from([2.0f32, 0.25]));
        let forward = super::super::fused_batch_norm(
            &mut g,
            &[x, scale, offset, mean, variance],
            true,
            "NHWC",
        )
        .unwrap();
        let grad = |g: &mut Graph, r1, r2, training: bool| {
            g.op("FusedBatchNormGradV3")
                .inputs(&[dy, x, scale, r1, r2, forward.output(5)])
                .attr("T", crate::DType::Float32)
                .attr("U", crate::DType::Float32)
                .attr("epsilon", 0.001f32)
                .attr("is_training", training)
                .build()
                .unwrap()
        };
        let train = grad(&mut g, forward.output(3), forward.output(4), true);
        let infer = grad(&mut g, mean, variance, false);
        let fetches: Vec<_> = [train, infer]
            .iter()
            .flat_map(|n| (0..5).map(|i| n.output(i)))
            .collect();
        let out: Vec<Vec<f64>> = Session::new(&g)
            .run(&[], &fetches, &[])
            .unwrap()
            .iter()
            .map(|t| t.to_f64_vec())
            .collect();
        let close = |a: &[f64], b: &[f64]| {
            assert_eq!(a.len(), b.len(), "{a:?} vs {b:?}");
            for (x, y) in a.iter().zip(b) {
                assert!((x - y).abs() <= 1e-5 * y.abs().max(1.0), "{a:?} vs {b:?}");
            }
        };
        close(
            &out[0],
            &[
                -0.008733405731618404,
                0.04221998527646065,
                0.061133649200201035,
                0.12424036860466003,
                0.022794833406805992,
                0.10888560861349106,
                -0.07519522309303284,
                -0.27534595131874084,
            ],
        );
        close(&out[1], &[2.1631007194519043, 1.8830081224441528]);
        close(&out[2], &[1.6000001430511475, -0.8999999761581421]);
        assert!(out[3].is_empty() && out[4].is_empty());
        close(
            &out[5],
            &[
                0.31811854243278503,
                -0.6986042261123657,
                1.166434645652771,
                0.1996012181043625,
                -0.4241580665111542,
                0.8982053995132446,
                0.6362370848655701,
                -1.297407865524292,
            ],
        );
        close(&out[6], &[3.110492467880249, 8.083847999572754]);
        close(&out[7], &[1.6000001430511475, -0.8999999761581421]);
    }
}

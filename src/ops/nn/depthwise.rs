//! DepthwiseConv2dNative (`tf.nn.depthwise_conv2d`, Keras `DepthwiseConv2D`): each input
//! channel `c` is convolved with its own `channel_multiplier` filters; output channel
//! `c * multiplier + q` is input channel `c` with filter `[:, :, c, q]`. Input NHWC, filter
//! `[k_h, k_w, in_c, multiplier]`, strides, SAME/VALID/EXPLICIT padding and dilations as
//! Conv2D. The backprops (DepthwiseConv2dNativeBackpropInput/Filter) are not implemented
//! yet: differentiating through it is an error.

use super::window::{nhwc_dims, DataFormat, Geometry, Window2d};
use crate::graph::TensorSpec;
use crate::ops::{kernel_fn, InferCtx, KernelBuildCtx, Op, Registry};
use crate::ops::{InferResult, KernelResult};
use crate::tensor::{DType, Element, Number, PartialShape, Tensor};
use crate::{with_dtype, Error};

fn infer(ctx: &InferCtx<'_>) -> InferResult {
    ctx.expect_inputs(2)?;
    let dt = ctx.same_dtype()?;
    ctx.check_dtype(0, &[DType::Float32, DType::Float64])?;
    ctx.check_t_attr(dt)?;
    let window = Window2d::conv(ctx.attrs())?;
    if window.format != DataFormat::Nhwc {
        return Err("DepthwiseConv2dNative supports only data_format NHWC on the CPU".into());
    }
    let [n, h, w, c] = window.nhwc_dims(ctx.shape(0), "input")?;
    let [kh, kw, fc, m] = nhwc_dims(DataFormat::Nhwc, ctx.shape(1), "filter")?;
    if let (Some(c), Some(f)) = (c, fc) {
        if c != f {
            return Err(format!(
                "input depth {c} must equal the filter's in_channels {f} (input shape {}, \
                 filter shape {})",
                ctx.shape(0),
                ctx.shape(1)
            ));
        }
    }
    let oh = window.out_dim(0, h, kh)?;
    let ow = window.out_dim(1, w, kw)?;
    let out_c = match (c.or(fc), m) {
        (Some(c), Some(m)) => Some(c * m),
        _ => None,
    };
    Ok(vec![TensorSpec::new(
        dt,
        PartialShape::new(vec![n, oh, ow, out_c]),
    )])
}

/// The forward pass on NHWC data.
fn depthwise<T: Number>(x: &[T], f: &[T], geo: &Geometry, m: usize) -> Vec<T> {
    let (c, out_c) = (geo.in_c, geo.out_c);
    let mut y = vec![T::ZERO; geo.batch * geo.out_h * geo.out_w * out_c];
    for b in 0..geo.batch {
        let image = &x[b * geo.in_image()..(b + 1) * geo.in_image()];
        for oh in 0..geo.out_h {
            for ow in 0..geo.out_w {
                let at = ((b * geo.out_h + oh) * geo.out_w + ow) * out_c;
                let out = &mut y[at..at + out_c];
                for i in 0..geo.k_h {
                    let Some(r) = geo.in_row(oh, i) else { continue };
                    for j in 0..geo.k_w {
                        let Some(col) = geo.in_col(ow, j) else {
                            continue;
                        };
                        let px = &image[(r * geo.in_w + col) * c..][..c];
                        let taps = &f[(i * geo.k_w + j) * out_c..][..out_c];
                        for (ch, &v) in px.iter().enumerate() {
                            for q in 0..m {
                                let o = ch * m + q;
                                out[o] = out[o].add(v.mul(taps[o]));
                            }
                        }
                    }
                }
            }
        }
    }
    y
}

fn kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let window = Window2d::conv(ctx.attrs())?;
    let name = ctx.node.name().to_string();
    with_dtype!(float, ctx.input_dtype(0), T => kernel_fn(move |k| {
        let (x, f) = (k.input(0)?, k.input(1)?);
        let bad = |e: String| Error::invalid(format!("DepthwiseConv2dNative '{name}': {e}"));
        let (&[n, h, w, c], &[kh, kw, fc, m]) = (x.shape(), f.shape()) else {
            return Err(bad(format!(
                "input and filter must be 4-D, got {:?} and {:?}",
                x.shape(),
                f.shape()
            )));
        };
        if fc != c {
            return Err(bad(format!("input depth {c} must equal the filter's in_channels {fc}")));
        }
        let out_c = c.checked_mul(m).ok_or_else(|| bad("too many channels".into()))?;
        let geo = Geometry::new(&window, [n, h, w, c], [kh, kw], out_c).map_err(bad)?;
        geo.check_memory(T::DTYPE)?;
        let y = depthwise(x.as_slice::<T>()?, f.as_slice::<T>()?, &geo, m);
        let out = Tensor::new(&geo.out_shape(), y)?;
        k.push_output(out);
        Ok(())
    }))
}

pub(super) fn register(r: &mut Registry) {
    r.add(
        Op::new("DepthwiseConv2dNative", infer, kernel).defaults(|| {
            vec![
                ("data_format", "NHWC".into()),
                ("dilations", vec![1i64, 1, 1, 1].into()),
                ("explicit_paddings", Vec::<i64>::new().into()),
            ]
        }),
    );
}

#[cfg(test)]
mod tests {
    use crate::{DType, Graph, Session, Tensor};

    #[test]
    fn matches_tensorflow() {
        // tf.nn.depthwise_conv2d(x, f, [1, 1, 1, 1], "SAME"), x = arange(18)/10 in
        // [1, 3, 3, 2], f = arange(16)/8 - 1 in [2, 2, 2, 2] (TensorFlow 2.21)
        let x: Vec<f32> = (0..18).map(|v| v as f32 / 10.0).collect();
        let f: Vec<f32> = (0..16).map(|v| v as f32 / 8.0 - 1.0).collect();
        let mut g = Graph::new();
        let xo = g.constant(Tensor::new(&[1, 3, 3, 2], x).unwrap()).unwrap();
        let fo = g.constant(Tensor::new(&[2, 2, 2, 2], f).unwrap()).unwrap();
        let y = g
            .op("DepthwiseConv2dNative")
            .input(xo)
            .input(fo)
            .attr("T", DType::Float32)
            .attr("strides", vec![1i64, 1, 1, 1])
            .attr("padding", "SAME")
            .build_output()
            .unwrap();
        assert_eq!(g.shape(y).to_string(), "[1,3,3,4]");
        let got = Session::new(&g).run(&[], &[y], &[]).unwrap()[0].to_f64_vec();
        let want = EXPECTED;
        assert_eq!(got.len(), want.len());
        for (a, b) in got.iter().zip(want) {
            assert!((a - b).abs() < 1e-5, "{got:?}");
        }
    }

    const EXPECTED: [f64; 36] = [
        0.30000001192092896,
        0.5,
        0.6999999284744263,
        0.9499999284744263,
        0.09999999403953552,
        0.4000000059604645,
        0.7000000476837158,
        1.0499999523162842,
        -0.4000000059604645,
        -0.22499999403953552,
        -0.09999999403953552,
        0.10000002384185791,
        -0.30000001192092896,
        0.19999992847442627,
        0.699999988079071,
        1.25,
        -0.4999999403953552,
        0.09999996423721313,
        0.7000001668930054,
        1.3500001430511475,
        -1.0,
        -0.675000011920929,
        -0.40000003576278687,
        -0.04999995231628418,
        -1.9000000953674316,
        -1.5750000476837158,
        -1.3499999046325684,
        -1.0,
        -2.200000047683716,
        -1.8250000476837158,
        -1.5499999523162842,
        -1.149999976158142,
        -1.600000023841858,
        -1.399999976158142,
        -1.2750000953674316,
        -1.0625,
    ];
}

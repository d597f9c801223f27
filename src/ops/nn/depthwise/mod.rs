//! DepthwiseConv2dNative (`tf.nn.depthwise_conv2d`, Keras `DepthwiseConv2D`): each input
//! channel `c` is convolved with its own `channel_multiplier` filters; output channel
//! `c * multiplier + q` is input channel `c` with filter `[:, :, c, q]`. Input NHWC, filter
//! `[k_h, k_w, in_c, multiplier]`, strides, SAME/VALID/EXPLICIT padding and dilations as
//! Conv2D. Its gradients are TensorFlow's DepthwiseConv2dNativeBackpropInput (`input_sizes`
//! int32, filter, out_backprop) and DepthwiseConv2dNativeBackpropFilter (input,
//! `filter_sizes` int32, out_backprop), with the forward op's attrs (`_DepthwiseConv2dNativeGrad`).
//! Kernels in [`cpu`].

mod cpu;

use super::conv2d::{
    backprop_dtype_and_window, check_out_backprop, constant_sizes, forward_shapes, merge_sizes,
    ConvFamily, FILTER_SIZES_DISAGREE,
};
use super::window::{nhwc_dims, DataFormat, Window2d};
use crate::graph::{Output, TensorSpec};
use crate::ops::{InferCtx, InferResult, Op, Registry};
use crate::tensor::{DType, Dim, PartialShape};
use crate::Result;
/// The dtypes of the depthwise ops on the CPU.
const FLOATS: &[DType] = &[DType::Float32, DType::Float64];

fn infer(ctx: &InferCtx<'_>) -> InferResult {
    let (dt, window, [n, h, w, c], [kh, kw, fc, m]) = forward_shapes(ctx, FLOATS)?;
    nhwc_only(&window, "DepthwiseConv2dNative")?;
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

/// Refuses NCHW, which the CPU kernels do not run.
fn nhwc_only(window: &Window2d, op: &str) -> std::result::Result<(), String> {
    if window.format != DataFormat::Nhwc {
        return Err(format!("{op} supports only data_format NHWC on the CPU"));
    }
    Ok(())
}

/// The dims of a depthwise filter `[k_h, k_w, in_c, multiplier]` seen as a convolution's
/// `[k_h, k_w, in_c, in_c · multiplier]`.
fn as_conv_filter([kh, kw, c, m]: [Dim; 4]) -> [Dim; 4] {
    [kh, kw, c, c.zip(m).map(|(c, m)| c * m)]
}

fn infer_backprop_input(ctx: &InferCtx<'_>) -> InferResult {
    let (dt, window) = backprop_dtype_and_window(ctx, 1, "filter", FLOATS)?;
    nhwc_only(&window, "DepthwiseConv2dNativeBackpropInput")?;
    let filter = nhwc_dims(DataFormat::Nhwc, ctx.shape(1), "filter")?;
    let dy = window.nhwc_dims(ctx.shape(2), "out_backprop")?;
    let mut input = [dy[0], None, None, filter[2]];
    if let Some(sizes) = constant_sizes(ctx, 0, "input_sizes")? {
        let what = "input_sizes and the filter/out_backprop shapes";
        merge_sizes(&mut input, &sizes, "input_sizes", what)?;
    }
    check_out_backprop(&window, input, as_conv_filter(filter), dy)?;
    Ok(vec![TensorSpec::new(dt, PartialShape::new(input.to_vec()))])
}

fn infer_backprop_filter(ctx: &InferCtx<'_>) -> InferResult {
    let (dt, window) = backprop_dtype_and_window(ctx, 0, "input", FLOATS)?;
    nhwc_only(&window, "DepthwiseConv2dNativeBackpropFilter")?;
    let input = window.nhwc_dims(ctx.shape(0), "input")?;
    let dy = window.nhwc_dims(ctx.shape(2), "out_backprop")?;
    let multiplier = match (input[3], dy[3]) {
        (Some(c), Some(o)) if c > 0 => Some(o / c),
        _ => None,
    };
    let mut filter = [None, None, input[3], multiplier];
    if let Some(sizes) = constant_sizes(ctx, 1, "filter_sizes")? {
        merge_sizes(&mut filter, &sizes, "filter_sizes", FILTER_SIZES_DISAGREE)?;
    }
    check_out_backprop(&window, input, as_conv_filter(filter), dy)?;
    Ok(vec![TensorSpec::new(
        dt,
        PartialShape::new(filter.to_vec()),
    )])
}

/// DepthwiseConv2dNative and its backprops: their gradients are TensorFlow's
/// `_DepthwiseConv2dNativeGrad` and the backprops', written as Conv2D's.
const DEPTHWISE: ConvFamily = ConvFamily {
    forward: "DepthwiseConv2dNative",
    backprop_input: "DepthwiseConv2dNativeBackpropInput",
    backprop_filter: "DepthwiseConv2dNativeBackpropFilter",
    attrs: &[
        "T",
        "strides",
        "padding",
        "explicit_paddings",
        "data_format",
        "dilations",
    ],
};

/// The attrs TensorFlow declares with defaults for the depthwise ops.
fn defaults() -> Vec<(&'static str, crate::graph::AttrValue)> {
    vec![
        ("data_format", "NHWC".into()),
        ("dilations", vec![1i64, 1, 1, 1].into()),
        ("explicit_paddings", Vec::<i64>::new().into()),
    ]
}

pub(super) fn register(r: &mut Registry) {
    r.add(
        Op::new("DepthwiseConv2dNative", infer, cpu::forward_kernel)
            .grad(|ctx| DEPTHWISE.grad(ctx))
            .defaults(defaults),
    );
    r.add(
        Op::new(
            "DepthwiseConv2dNativeBackpropInput",
            infer_backprop_input,
            cpu::backprop_input_kernel,
        )
        .grad(|ctx| DEPTHWISE.backprop_input_grad(ctx))
        .defaults(defaults),
    );
    r.add(
        Op::new(
            "DepthwiseConv2dNativeBackpropFilter",
            infer_backprop_filter,
            cpu::backprop_filter_kernel,
        )
        .grad(|ctx| DEPTHWISE.backprop_filter_grad(ctx))
        .defaults(defaults),
    );
}

impl crate::Graph {
    /// Depthwise 2-D convolution of NHWC `x` with `filter` `[k_h, k_w, in_c, multiplier]`
    /// (`tf.nn.depthwise_conv2d`, op DepthwiseConv2dNative).
    pub fn depthwise_conv2d(
        &mut self,
        x: Output,
        filter: Output,
        strides: &[i64],
        padding: &str,
        dilations: &[i64],
    ) -> Result<Output> {
        let t = self.dtype(x);
        self.op("DepthwiseConv2dNative")
            .input(x)
            .input(filter)
            .attr("T", t)
            .attr("strides", strides.to_vec())
            .attr("padding", padding)
            .attr("dilations", dilations.to_vec())
            .build_output()
    }
}

/// Adds a depthwise node (`op`) on `inputs` with float64 data, the given strides and
/// padding (tests).
#[cfg(test)]
fn depthwise_op(
    g: &mut crate::Graph,
    op: &str,
    inputs: &[Output],
    strides: &[i64],
    padding: &str,
) -> Result<Output> {
    let t = g.dtype(
        inputs[if op == "DepthwiseConv2dNativeBackpropInput" {
            1
        } else {
            0
        }],
    );
    g.op(op)
        .inputs(inputs)
        .attr("T", t)
        .attr("strides", strides.to_vec())
        .attr("padding", padding)
        .build_output()
}

/// Gradient checks of the depthwise ops (run by `autodiff::tests`).
#[cfg(test)]
pub(super) fn gradient_cases() -> Vec<crate::test_util::GradCase> {
    use crate::test_util::{test_input, GradCase};
    use crate::Tensor;
    const S2: [i64; 4] = [1, 2, 2, 1];
    vec![
        GradCase::new(
            "DepthwiseConv2dNative",
            vec![test_input(&[2, 5, 5, 2], 61), test_input(&[3, 3, 2, 2], 62)],
            |g, x| depthwise_op(g, "DepthwiseConv2dNative", x, &S2, "SAME"),
        ),
        GradCase::new(
            "DepthwiseConv2dNative",
            vec![test_input(&[1, 5, 4, 3], 63), test_input(&[2, 2, 3, 1], 64)],
            |g, x| depthwise_op(g, "DepthwiseConv2dNative", x, &[1; 4], "VALID"),
        ),
        GradCase::new(
            "DepthwiseConv2dNativeBackpropInput",
            vec![test_input(&[3, 3, 2, 2], 65), test_input(&[2, 3, 3, 4], 66)],
            |g, x| {
                let sizes = g.constant(Tensor::from([2i32, 5, 5, 2]))?;
                let ins = [sizes, x[0], x[1]];
                depthwise_op(g, "DepthwiseConv2dNativeBackpropInput", &ins, &S2, "SAME")
            },
        ),
        GradCase::new(
            "DepthwiseConv2dNativeBackpropFilter",
            vec![test_input(&[1, 5, 4, 3], 67), test_input(&[1, 4, 3, 3], 68)],
            |g, x| {
                let sizes = g.constant(Tensor::from([2i32, 2, 3, 1]))?;
                let ins = [x[0], sizes, x[1]];
                depthwise_op(
                    g,
                    "DepthwiseConv2dNativeBackpropFilter",
                    &ins,
                    &[1; 4],
                    "VALID",
                )
            },
        ),
    ]
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

    /// x = arange(50)/10 - 2 in [1, 5, 5, 2], f = arange(24)/8 - 1 in [2, 2, 2, 3], dy =
    /// arange(size)/7 - 1 in the output's shape: TensorFlow 2.21's
    /// DepthwiseConv2dNativeBackpropInput / BackpropFilter for (strides, padding).
    #[test]
    fn backprops_match_tensorflow() {
        let x: Vec<f32> = (0..50).map(|v| v as f32 / 10.0 - 2.0).collect();
        let f: Vec<f32> = (0..24).map(|v| v as f32 / 8.0 - 1.0).collect();
        for (strides, padding, out, want_dx, want_df) in [
            (
                [1i64, 2, 2, 1],
                "SAME",
                [1usize, 3, 3, 6],
                &SAME_S2_DX[..],
                &SAME_S2_DF[..],
            ),
            (
                [1, 1, 1, 1],
                "VALID",
                [1, 4, 4, 6],
                &VALID_DX[..],
                &VALID_DF[..],
            ),
        ] {
            let size: usize = out.iter().product();
            let dy: Vec<f32> = (0..size).map(|v| v as f32 / 7.0 - 1.0).collect();
            let mut g = Graph::new();
            let xo = g
                .constant(Tensor::new(&[1, 5, 5, 2], x.clone()).unwrap())
                .unwrap();
            let fo = g
                .constant(Tensor::new(&[2, 2, 2, 3], f.clone()).unwrap())
                .unwrap();
            let dyo = g.constant(Tensor::new(&out, dy).unwrap()).unwrap();
            let xs = g.constant(Tensor::from([1i32, 5, 5, 2])).unwrap();
            let fs = g.constant(Tensor::from([2i32, 2, 2, 3])).unwrap();
            let op = |g: &mut Graph, name: &str, ins: &[crate::Output]| {
                g.op(name)
                    .inputs(ins)
                    .attr("T", DType::Float32)
                    .attr("strides", strides.to_vec())
                    .attr("padding", padding)
                    .build_output()
                    .unwrap()
            };
            let dx = op(&mut g, "DepthwiseConv2dNativeBackpropInput", &[xs, fo, dyo]);
            let df = op(
                &mut g,
                "DepthwiseConv2dNativeBackpropFilter",
                &[xo, fs, dyo],
            );
            assert_eq!(g.shape(dx).to_string(), "[1,5,5,2]");
            assert_eq!(g.shape(df).to_string(), "[2,2,2,3]");
            let got = Session::new(&g).run(&[], &[dx, df], &[]).unwrap();
            for (t, want) in got.iter().zip([want_dx, want_df]) {
                let t = t.to_f64_vec();
                assert_eq!(t.len(), want.len());
                for (a, b) in t.iter().zip(want) {
                    assert!((a - b).abs() < 1e-4 * (1.0 + b.abs()), "{padding}: {t:?}");
                }
            }
        }
    }

    #[test]
    fn backprop_shapes_are_checked_when_built() {
        let mut g = Graph::new();
        let f = g.constant(Tensor::full(&[2, 2, 2, 3], 1.0f32)).unwrap();
        let dy = g.constant(Tensor::full(&[1, 4, 4, 5], 1.0f32)).unwrap();
        let sizes = g.constant(Tensor::from([1i32, 5, 5, 2])).unwrap();
        let err = g
            .op("DepthwiseConv2dNativeBackpropInput")
            .inputs(&[sizes, f, dy])
            .attr("T", DType::Float32)
            .attr("strides", vec![1i64, 1, 1, 1])
            .attr("padding", "VALID")
            .build_output()
            .unwrap_err()
            .to_string();
        assert!(err.contains("depth"), "{err}");
    }

    const SAME_S2_DX: [f64; 50] = [
        2.28571, 0.678571, 0.357143, -0.285714, 0.0357142, -0.607143, 0.0357143, 0.357143,
        -2.21429, -1.89286, -1.57143, -1.25, -3.5, -2.21429, 0.0357143, 1.32143, 0.0357144,
        2.28571, 1.64286, 3.89286, -4.46429, -3.17857, -0.607143, 1.64286, -6.71429, -4.46429,
        -0.928571, 2.28571, -8.96429, -5.75, 3.25, 6.46429, 7.10714, 11.2857, 4.85714, 9.03571,
        10.6429, 15.7857, 6.46429, 11.6071, -11.2143, -7.03571, -1.57143, 3.57143, -13.4643,
        -8.32143, -1.89286, 4.21429, -15.7143, -9.60714,
    ];
    const SAME_S2_DF: [f64; 24] = [
        41.6571, 42.1714, 42.6857, 45.7714, 46.4143, 47.0571, 25.8857, 26.2286, 26.5714, 28.3714,
        28.8, 29.2286, 11.8286, 12.1714, 12.5143, 13.8, 14.2286, 14.6571, 6.62857, 6.85714,
        7.08571, 7.77143, 8.05714, 8.34286,
    ];
    const VALID_DX: [f64; 50] = [
        2.28571, 0.678571, 0.392857, -0.892857, -2.17857, -1.53571, -4.75, -2.17857, -0.607143,
        1.64286, -8.28571, -5.71429, -13.3571, -4.35714, -10.7857, 2.07143, -8.21428, 8.5, 5.21429,
        15.5, -10.8571, -0.571429, -3.07143, 21.3571, -0.5, 27.7857, 2.07143, 34.2143, 18.0714,
        36.0714, -13.4286, 4.57143, 7.21428, 47.0714, 9.78572, 53.5, 12.3571, 59.9286, 30.9286,
        56.6429, 17.7143, 29.6071, 58.25, 83.9643, 63.3929, 91.0357, 68.5357, 98.1071, 49.5357,
        65.2857,
    ];
    const VALID_DF: [f64; 24] = [
        54.6286, 54.1714, 53.7143, 62.6286, 62.4, 62.1714, 72.0, 72.0, 72.0, 81.3714, 81.6,
        81.8286, 141.486, 143.314, 145.143, 156.343, 158.4, 160.457, 158.857, 161.143, 163.429,
        175.086, 177.6, 180.114,
    ];

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

//! 2-D convolution: Conv2D (input NHWC, filter HWIO) and its two backprops,
//! Conv2DBackpropInput and Conv2DBackpropFilter. All three lower to matrix products with
//! the crate's [`gemm`]: im2col turns a block of output pixels into a patch matrix
//! `[pixels, k_h·k_w·in_c]` whose product with the filter `[k_h·k_w·in_c, out_c]` is the
//! block of output rows; the input backprop scatters `dy · filterᵀ` back with col2im and
//! the filter backprop sums `patchesᵀ · dy`. Blocks of rows (or whole images, where
//! writes would overlap) are spread over the intra-op threads. Short patches (a first
//! convolution's 3×3×1) are read in place from the input instead (`taps.rs`), and f32
//! stride-1 convolutions with longer patches run as implicit products on CPUs with
//! AVX-512, reading the patches where they lie (`implicit.rs`).

pub(super) mod cpu;
mod finish;
pub(crate) mod fusion;
mod implicit;
mod taps;

use super::op_with_attrs;
use super::window::{nhwc_dims, DataFormat, Window2d};
use crate::graph::{Graph, Output, TensorSpec};
use crate::ops::{GradCtx, InferCtx, InferResult};
use crate::tensor::{DType, Dim, PartialShape};
use crate::Result;

/// Dtypes of Conv2D and Conv2DBackpropInput on CPU.
const CONV_TYPES: &[DType] = &[DType::Float32, DType::Float64, DType::Int32];
/// What disagrees when `filter_sizes` does not fit the input and `out_backprop`.
pub(super) const FILTER_SIZES_DISAGREE: &str = "filter_sizes and the input/out_backprop depths";
/// Dtypes of Conv2DBackpropFilter on CPU.
const CONV_FILTER_GRAD_TYPES: &[DType] = &[DType::Float32, DType::Float64];
/// Checks the filter's input depth against the input's channels; the message names both
/// shapes.
fn check_depth(
    in_c: Dim,
    filter_in: Dim,
    input: &PartialShape,
    filter: &PartialShape,
) -> std::result::Result<(), String> {
    match (in_c, filter_in) {
        (Some(c), Some(f)) if c != f => {
            if f == 0 || c % f != 0 {
                Err(format!(
                    "Depth of input ({c}) is not a multiple of input depth of filter ({f}): input shape {input}, filter shape {filter}"
                ))
            } else {
                Err(format!(
                    "grouped convolutions are not supported: input depth {c} is {} times the filter's input depth {f} (input shape {input}, filter shape {filter})",
                    c / f
                ))
            }
        }
        _ => Ok(()),
    }
}

/// The four dims of a rank-4 filter (`[k_h, k_w, in_c, out_c]`).
fn filter_dims(shape: &PartialShape) -> std::result::Result<[Dim; 4], String> {
    nhwc_dims(DataFormat::Nhwc, shape, "filter")
}

/// The output shape in the node's layout.
fn layout_shape(format: DataFormat, dims: [Dim; 4]) -> PartialShape {
    PartialShape::new(format.shape(dims).to_vec())
}

/// The checks a forward convolution (Conv2D, DepthwiseConv2dNative) starts with: two
/// inputs of one dtype among `types` agreeing with `T`, the window attrs, a rank-4 input
/// and filter; gives the dtype, the window, the input's (batch, height, width,
/// channels) and the filter's four dims.
pub(super) type ForwardShapes = (DType, Window2d, [Dim; 4], [Dim; 4]);

/// See [`ForwardShapes`].
pub(super) fn forward_shapes(
    ctx: &InferCtx<'_>,
    types: &[DType],
) -> std::result::Result<ForwardShapes, String> {
    ctx.expect_inputs(2)?;
    let dt = ctx.same_dtype()?;
    ctx.check_dtype(0, types)?;
    ctx.check_t_attr(dt)?;
    let window = Window2d::conv(ctx.attrs())?;
    let input = window.nhwc_dims(ctx.shape(0), "input")?;
    let filter = filter_dims(ctx.shape(1))?;
    Ok((dt, window, input, filter))
}

/// Merges the sizes given by a constant `input_sizes` / `filter_sizes` input (`name`,
/// which must have 4) into `dims`; `what` names the shapes that disagree.
pub(super) fn merge_sizes(
    dims: &mut [Dim; 4],
    sizes: &[usize],
    name: &str,
    what: &str,
) -> std::result::Result<(), String> {
    if sizes.len() != 4 {
        return Err(format!("{name} must have 4 elements, got {sizes:?}"));
    }
    for (d, &s) in dims.iter_mut().zip(sizes) {
        *d = merge_dim(*d, Some(s), what)?;
    }
    Ok(())
}

fn infer_conv2d(ctx: &InferCtx<'_>) -> InferResult {
    let (dt, window, [n, h, w, c], [kh, kw, fin, fout]) = forward_shapes(ctx, CONV_TYPES)?;
    check_depth(c, fin, ctx.shape(0), ctx.shape(1))?;
    let oh = window.out_dim(0, h, kh)?;
    let ow = window.out_dim(1, w, kw)?;
    Ok(vec![TensorSpec::new(
        dt,
        layout_shape(window.format, [n, oh, ow, fout]),
    )])
}

/// A build-time-constant int32 sizes input (`input_sizes`, `filter_sizes`), as dims.
pub(super) fn constant_sizes(
    ctx: &InferCtx<'_>,
    i: usize,
    name: &str,
) -> std::result::Result<Option<Vec<usize>>, String> {
    if ctx.dtype(i) != DType::Int32 {
        return Err(format!("{name} must be int32, got {}", ctx.dtype(i)));
    }
    if let Some(r) = ctx.shape(i).rank() {
        if r != 1 {
            return Err(format!(
                "{name} must be a vector, got shape {}",
                ctx.shape(i)
            ));
        }
    }
    ctx.constant_ints(i)
        .map(|v| sizes_from_ints(&v, name))
        .transpose()
}

/// Sizes from int values, refusing negatives.
pub(super) fn sizes_from_ints(v: &[i64], name: &str) -> std::result::Result<Vec<usize>, String> {
    v.iter()
        .map(|&d| usize::try_from(d).map_err(|_| format!("{name} must be non-negative, got {v:?}")))
        .collect()
}

/// Merges a computed dim with a known one, naming what disagrees.
pub(super) fn merge_dim(a: Dim, b: Dim, what: &str) -> std::result::Result<Dim, String> {
    match (a, b) {
        (Some(x), Some(y)) if x != y => Err(format!("{what} do not match: {x} vs. {y}")),
        _ => Ok(a.or(b)),
    }
}

/// Checks that `out_backprop` has the size the forward convolution would produce.
pub(super) fn check_out_backprop(
    window: &Window2d,
    [n, h, w, _]: [Dim; 4],
    [kh, kw, _, fout]: [Dim; 4],
    dy: [Dim; 4],
) -> std::result::Result<(), String> {
    merge_dim(n, dy[0], "batch sizes of the input and out_backprop")?;
    merge_dim(
        window.out_dim(0, h, kh)?,
        dy[1],
        "out_backprop height and the height computed from the input and filter",
    )?;
    merge_dim(
        window.out_dim(1, w, kw)?,
        dy[2],
        "out_backprop width and the width computed from the input and filter",
    )?;
    merge_dim(fout, dy[3], "filter output depth and out_backprop depth")?;
    Ok(())
}

/// The checks both convolution gradients start with: three inputs, `out_backprop`
/// (input 2) of the dtype of input `value` (named `what`), one of `types` and the `T`
/// attr; gives that dtype and the window.
pub(super) fn backprop_dtype_and_window(
    ctx: &InferCtx<'_>,
    value: usize,
    what: &str,
    types: &[DType],
) -> std::result::Result<(DType, Window2d), String> {
    ctx.expect_inputs(3)?;
    let dt = ctx.dtype(value);
    if ctx.dtype(2) != dt {
        return Err(format!(
            "{what} is {dt} but out_backprop is {}; insert a Cast so they match",
            ctx.dtype(2)
        ));
    }
    ctx.check_dtype(value, types)?;
    ctx.check_t_attr(dt)?;
    Ok((dt, Window2d::conv(ctx.attrs())?))
}

fn infer_conv2d_backprop_input(ctx: &InferCtx<'_>) -> InferResult {
    let (dt, window) = backprop_dtype_and_window(ctx, 1, "filter", CONV_TYPES)?;
    let filter = filter_dims(ctx.shape(1))?;
    let dy = window.nhwc_dims(ctx.shape(2), "out_backprop")?;
    let mut input = [dy[0], None, None, filter[2]];
    if let Some(sizes) = constant_sizes(ctx, 0, "input_sizes")? {
        let given = input_size_dims(&window, &sizes)?;
        for (d, g) in input.iter_mut().zip(given) {
            *d = merge_dim(*d, g, "input_sizes and the filter/out_backprop shapes")?;
        }
    }
    check_out_backprop(&window, input, filter, dy)?;
    Ok(vec![TensorSpec::new(
        dt,
        layout_shape(window.format, input),
    )])
}

/// The (batch, height, width, channels) that `input_sizes` gives: 4 sizes in layout
/// order, or just the 2 spatial sizes.
fn input_size_dims(window: &Window2d, sizes: &[usize]) -> std::result::Result<[Dim; 4], String> {
    match sizes.len() {
        4 => Ok(window.format.axes().map(|a| Some(sizes[a]))),
        2 => Ok([None, Some(sizes[0]), Some(sizes[1]), None]),
        n => Err(format!(
            "input_sizes must have 4 elements (or 2 spatial sizes), got {n}: {sizes:?}"
        )),
    }
}

fn infer_conv2d_backprop_filter(ctx: &InferCtx<'_>) -> InferResult {
    let (dt, window) = backprop_dtype_and_window(ctx, 0, "input", CONV_FILTER_GRAD_TYPES)?;
    let input = window.nhwc_dims(ctx.shape(0), "input")?;
    let dy = window.nhwc_dims(ctx.shape(2), "out_backprop")?;
    let mut filter = [None, None, input[3], dy[3]];
    if let Some(sizes) = constant_sizes(ctx, 1, "filter_sizes")? {
        merge_sizes(&mut filter, &sizes, "filter_sizes", FILTER_SIZES_DISAGREE)?;
        check_depth(
            input[3],
            filter[2],
            ctx.shape(0),
            &PartialShape::known(&sizes),
        )?;
    }
    check_out_backprop(&window, input, filter, dy)?;
    Ok(vec![TensorSpec::new(
        dt,
        PartialShape::new(filter.to_vec()),
    )])
}

/// The attrs TensorFlow declares with defaults for the convolution ops.
pub(super) fn conv_defaults() -> Vec<(&'static str, crate::graph::AttrValue)> {
    vec![
        ("use_cudnn_on_gpu", true.into()),
        ("explicit_paddings", Vec::<i64>::new().into()),
        ("data_format", "NHWC".into()),
        ("dilations", vec![1i64; 4].into()),
    ]
}

/// A convolution op and its two backprops, with the attrs TensorFlow's gradients pass
/// through unchanged: the gradients of all three, shared by Conv2D and
/// DepthwiseConv2dNative (`nn_grad.py` writes them alike).
pub(super) struct ConvFamily {
    /// The forward op (`Conv2D`).
    pub forward: &'static str,
    /// Its input gradient (`Conv2DBackpropInput`).
    pub backprop_input: &'static str,
    /// Its filter gradient (`Conv2DBackpropFilter`).
    pub backprop_filter: &'static str,
    /// The attrs the gradients copy from the node they differentiate.
    pub attrs: &'static [&'static str],
}

impl ConvFamily {
    /// TensorFlow's `_Conv2DGrad`: `BackpropInput(Shape(input), filter, g)` and
    /// `BackpropFilter(input, Shape(filter), g)` with the forward attrs (the shapes from
    /// one ShapeN).
    pub(super) fn grad(&self, ctx: &mut GradCtx<'_>) -> Result<Vec<Option<Output>>> {
        let (attrs, input, filter, dy) = (ctx.attrs(), ctx.input(0), ctx.input(1), ctx.grad(0));
        let g = &mut *ctx.graph;
        let shapes = g.shape_n(&[input, filter])?;
        let inputs = [shapes[0], filter, dy];
        let dx = op_with_attrs(g, self.backprop_input, &inputs, &attrs, self.attrs)?;
        let inputs = [input, shapes[1], dy];
        let df = op_with_attrs(g, self.backprop_filter, &inputs, &attrs, self.attrs)?;
        Ok(vec![Some(dx), Some(df)])
    }

    /// TensorFlow's `_Conv2DBackpropInputGrad`: the input backprop is linear in the filter
    /// and in `out_backprop`; their gradients are `BackpropFilter(g, Shape(filter),
    /// out_backprop)` and `forward(g, filter)`. `input_sizes` gets none.
    pub(super) fn backprop_input_grad(&self, ctx: &mut GradCtx<'_>) -> Result<Vec<Option<Output>>> {
        let (attrs, filter, dy, grad) = (ctx.attrs(), ctx.input(1), ctx.input(2), ctx.grad(0));
        let g = &mut *ctx.graph;
        let filter_shape = g.shape_of(filter)?;
        let inputs = [grad, filter_shape, dy];
        let df = op_with_attrs(g, self.backprop_filter, &inputs, &attrs, self.attrs)?;
        let ddy = op_with_attrs(g, self.forward, &[grad, filter], &attrs, self.attrs)?;
        Ok(vec![None, Some(df), Some(ddy)])
    }

    /// TensorFlow's `_Conv2DBackpropFilterGrad`: the input gets
    /// `BackpropInput(Shape(input), g, out_backprop)`, `out_backprop` gets
    /// `forward(input, g)`, `filter_sizes` none.
    pub(super) fn backprop_filter_grad(
        &self,
        ctx: &mut GradCtx<'_>,
    ) -> Result<Vec<Option<Output>>> {
        let (attrs, input, dy, grad) = (ctx.attrs(), ctx.input(0), ctx.input(2), ctx.grad(0));
        let g = &mut *ctx.graph;
        let input_shape = g.shape_of(input)?;
        let inputs = [input_shape, grad, dy];
        let dx = op_with_attrs(g, self.backprop_input, &inputs, &attrs, self.attrs)?;
        let ddy = op_with_attrs(g, self.forward, &[input, grad], &attrs, self.attrs)?;
        Ok(vec![Some(dx), None, Some(ddy)])
    }
}

/// Conv2D and its backprops.
const CONV2D: ConvFamily = ConvFamily {
    forward: "Conv2D",
    backprop_input: "Conv2DBackpropInput",
    backprop_filter: "Conv2DBackpropFilter",
    attrs: &[
        "T",
        "strides",
        "padding",
        "explicit_paddings",
        "use_cudnn_on_gpu",
        "data_format",
        "dilations",
    ],
};

pub(super) fn register(r: &mut crate::ops::Registry) {
    use crate::ops::{Cost, Op};
    r.add(
        Op::new("Conv2D", infer_conv2d, cpu::conv2d_kernel)
            .cost(Cost::Contraction)
            .grad(|ctx| CONV2D.grad(ctx))
            .defaults(conv_defaults),
    );
    r.add(
        Op::new(
            "Conv2DBackpropInput",
            infer_conv2d_backprop_input,
            cpu::conv2d_backprop_input_kernel,
        )
        .cost(Cost::Expensive)
        .grad(|ctx| CONV2D.backprop_input_grad(ctx))
        .defaults(conv_defaults),
    );
    r.add(
        Op::new(
            "Conv2DBackpropFilter",
            infer_conv2d_backprop_filter,
            cpu::conv2d_backprop_filter_kernel,
        )
        .cost(Cost::Expensive)
        .grad(|ctx| CONV2D.backprop_filter_grad(ctx))
        .defaults(conv_defaults),
    );
}

/// Adds a convolution-family node with TensorFlow's Python-wrapper attrs (NHWC).
fn conv_op(
    g: &mut Graph,
    op: &str,
    inputs: &[Output],
    t: DType,
    strides: &[i64],
    padding: &str,
    dilations: &[i64],
) -> Result<Output> {
    g.op(op)
        .inputs(inputs)
        .attr("T", t)
        .attr("strides", strides.to_vec())
        .attr("padding", padding)
        .attr("dilations", dilations.to_vec())
        .attr("data_format", "NHWC")
        .attr("use_cudnn_on_gpu", true)
        .attr("explicit_paddings", Vec::<i64>::new())
        .build_output()
}

impl Graph {
    /// 2-D convolution (`tf.nn.conv2d`, op Conv2D): `input` is NHWC, `filter` is
    /// `[height, width, in_channels, out_channels]`; `strides` has 4 entries (batch and
    /// channel strides 1) and `padding` is `"SAME"` or `"VALID"`.
    pub fn conv2d(
        &mut self,
        input: Output,
        filter: Output,
        strides: &[i64],
        padding: &str,
    ) -> Result<Output> {
        self.conv2d_dilated(input, filter, strides, padding, &[1; 4])
    }

    /// [`Graph::conv2d`] with dilation rates (4 entries, batch and channel 1).
    pub fn conv2d_dilated(
        &mut self,
        input: Output,
        filter: Output,
        strides: &[i64],
        padding: &str,
        dilations: &[i64],
    ) -> Result<Output> {
        let t = self.dtype(input);
        conv_op(
            self,
            "Conv2D",
            &[input, filter],
            t,
            strides,
            padding,
            dilations,
        )
    }

    /// Gradient of Conv2D with respect to its input (op Conv2DBackpropInput):
    /// `input_sizes` is an int32 vector with the input's NHWC shape.
    pub fn conv2d_backprop_input(
        &mut self,
        input_sizes: Output,
        filter: Output,
        out_backprop: Output,
        strides: &[i64],
        padding: &str,
        dilations: &[i64],
    ) -> Result<Output> {
        let t = self.dtype(filter);
        conv_op(
            self,
            "Conv2DBackpropInput",
            &[input_sizes, filter, out_backprop],
            t,
            strides,
            padding,
            dilations,
        )
    }

    /// Gradient of Conv2D with respect to its filter (op Conv2DBackpropFilter):
    /// `filter_sizes` is an int32 vector with the filter's HWIO shape.
    pub fn conv2d_backprop_filter(
        &mut self,
        input: Output,
        filter_sizes: Output,
        out_backprop: Output,
        strides: &[i64],
        padding: &str,
        dilations: &[i64],
    ) -> Result<Output> {
        let t = self.dtype(input);
        conv_op(
            self,
            "Conv2DBackpropFilter",
            &[input, filter_sizes, out_backprop],
            t,
            strides,
            padding,
            dilations,
        )
    }
}

/// Gradient checks of Conv2D and its backprops (run by `autodiff::tests`).
#[cfg(test)]
pub(super) fn gradient_cases() -> Vec<crate::test_util::GradCase> {
    use crate::test_util::{test_input, GradCase};
    use crate::Tensor;
    vec![
        GradCase::new(
            "Conv2D",
            vec![test_input(&[2, 5, 5, 2], 19), test_input(&[3, 3, 2, 3], 20)],
            |g, x| g.conv2d(x[0], x[1], &[1, 2, 2, 1], "SAME"),
        ),
        GradCase::new(
            "Conv2D",
            vec![test_input(&[1, 6, 5, 2], 21), test_input(&[2, 3, 2, 2], 22)],
            |g, x| g.conv2d(x[0], x[1], &[1, 2, 2, 1], "VALID"),
        ),
        GradCase::new(
            "Conv2D",
            vec![test_input(&[1, 5, 6, 2], 23), test_input(&[2, 2, 2, 2], 24)],
            |g, x| g.conv2d_dilated(x[0], x[1], &[1, 1, 1, 1], "SAME", &[1, 2, 2, 1]),
        ),
        GradCase::new(
            "Conv2DBackpropInput",
            vec![test_input(&[3, 3, 2, 3], 25), test_input(&[2, 3, 3, 3], 26)],
            |g, x| {
                let sizes = g.constant(Tensor::from([2i32, 5, 5, 2]))?;
                g.conv2d_backprop_input(sizes, x[0], x[1], &[1, 2, 2, 1], "SAME", &[1; 4])
            },
        ),
        GradCase::new(
            "Conv2DBackpropInput",
            vec![test_input(&[2, 2, 2, 2], 27), test_input(&[1, 3, 4, 2], 28)],
            |g, x| {
                let sizes = g.constant(Tensor::from([1i32, 5, 6, 2]))?;
                g.conv2d_backprop_input(sizes, x[0], x[1], &[1; 4], "VALID", &[1, 2, 2, 1])
            },
        ),
        GradCase::new(
            "Conv2DBackpropFilter",
            vec![test_input(&[2, 5, 5, 2], 29), test_input(&[2, 3, 3, 3], 30)],
            |g, x| {
                let sizes = g.constant(Tensor::from([3i32, 3, 2, 3]))?;
                g.conv2d_backprop_filter(x[0], sizes, x[1], &[1, 2, 2, 1], "SAME", &[1; 4])
            },
        ),
        GradCase::new(
            "Conv2DBackpropFilter",
            vec![test_input(&[1, 5, 6, 2], 31), test_input(&[1, 3, 4, 2], 32)],
            |g, x| {
                let sizes = g.constant(Tensor::from([2i32, 2, 2, 2]))?;
                g.conv2d_backprop_filter(x[0], sizes, x[1], &[1; 4], "VALID", &[1, 2, 2, 1])
            },
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::cpu::{conv2d_backprop_filter, conv2d_forward, runtime_geometry};
    use super::*;
    use crate::ops::nn::window::Geometry;
    use crate::tensor::Tensor;
    use crate::test_util::{assert_close, f64s, fetch_err, random, run, run_with, values};

    /// A direct convolution written from the definition (NHWC × HWIO), with TensorFlow's
    /// SAME rule `pad_before = max((out-1)·s + (k-1)·d + 1 - in, 0) / 2`.
    fn naive_conv(
        x: &[f64],
        [n, h, w, c]: [usize; 4],
        f: &[f64],
        [kh, kw, _, co]: [usize; 4],
        s: [usize; 2],
        d: [usize; 2],
        same: bool,
    ) -> (Vec<f64>, Vec<usize>) {
        let size = |i: usize, k: usize, s: usize, d: usize| -> (usize, isize) {
            let eff = (k - 1) * d + 1;
            if same {
                let o = i.div_ceil(s);
                let total = ((o - 1) * s + eff).saturating_sub(i);
                (o, (total / 2) as isize)
            } else {
                ((i + 1).saturating_sub(eff).div_ceil(s), 0)
            }
        };
        let ((oh, ph), (ow, pw)) = (size(h, kh, s[0], d[0]), size(w, kw, s[1], d[1]));
        let mut out = vec![0.0; n * oh * ow * co];
        for b in 0..n {
            for y in 0..oh {
                for xx in 0..ow {
                    for o in 0..co {
                        let mut acc = 0.0;
                        for i in 0..kh {
                            for j in 0..kw {
                                let iy = (y * s[0] + i * d[0]) as isize - ph;
                                let ix = (xx * s[1] + j * d[1]) as isize - pw;
                                if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                    continue;
                                }
                                for ch in 0..c {
                                    let xv = x[((b * h + iy as usize) * w + ix as usize) * c + ch];
                                    acc += xv * f[((i * kw + j) * c + ch) * co + o];
                                }
                            }
                        }
                        out[((b * oh + y) * ow + xx) * co + o] = acc;
                    }
                }
            }
        }
        (out, vec![n, oh, ow, co])
    }

    fn conv_graph(
        x: &Tensor,
        f: &Tensor,
        s: [i64; 2],
        d: [i64; 2],
        padding: &str,
    ) -> (Graph, Output) {
        let mut g = Graph::new();
        let (xi, fi) = (
            g.constant(x.clone()).unwrap(),
            g.constant(f.clone()).unwrap(),
        );
        let y = g
            .conv2d_dilated(xi, fi, &[1, s[0], s[1], 1], padding, &[1, d[0], d[1], 1])
            .unwrap();
        (g, y)
    }

    #[test]
    fn sums_of_windows_match_tensorflow() {
        // tf.nn.conv2d(tf.reshape(tf.range(1., 37.), [1,6,6,1]), tf.ones([3,3,1,1]),
        //              [1,2,2,1], "SAME" / "VALID")
        let x = Tensor::new(&[1, 6, 6, 1], (1..=36).map(|v| v as f32).collect()).unwrap();
        let f = Tensor::full(&[3, 3, 1, 1], 1f32);
        let cases: [(&str, &[f64], [usize; 4]); 2] = [
            (
                "SAME",
                &[72., 90., 69., 180., 198., 141., 174., 186., 130.],
                [1, 3, 3, 1],
            ),
            ("VALID", &[72., 90., 180., 198.], [1, 2, 2, 1]),
        ];
        for (padding, want, shape) in cases {
            let (g, y) = conv_graph(&x, &f, [2, 2], [1, 1], padding);
            assert_eq!(g.shape(y), &PartialShape::known(&shape));
            let out = run(&g, &[y]);
            assert_eq!(out[0].shape(), shape);
            assert_close(&f64s(&out[0]), want, 0.0);
        }
    }

    #[test]
    fn matches_a_direct_convolution() {
        let (xs, fs) = ([2, 7, 6, 3], [3, 2, 3, 4]);
        let (x, f) = (random(&xs, 1), random(&fs, 2));
        for (s, d, same) in [
            ([2, 2], [1, 1], true),
            ([2, 2], [1, 1], false),
            ([1, 2], [1, 1], true),
            ([1, 1], [2, 1], true),
            ([2, 1], [2, 2], false),
            ([3, 3], [1, 1], true),
        ] {
            let padding = if same { "SAME" } else { "VALID" };
            let (g, y) = conv_graph(&x, &f, s.map(|v| v as i64), d.map(|v| v as i64), padding);
            let out = run(&g, &[y]);
            let (want, shape) = naive_conv(&f64s(&x), xs, &f64s(&f), fs, s, d, same);
            assert_eq!(out[0].shape(), shape.as_slice(), "{s:?} {d:?} {padding}");
            assert_eq!(g.shape(y), &PartialShape::known(&shape));
            assert_close(&f64s(&out[0]), &want, 1e-12);
        }
    }

    #[test]
    fn pointwise_float32_and_int32_convolutions() {
        // 1×1 filters read the input directly as the patch matrix.
        let (x, f) = (random(&[2, 3, 4, 5], 3), random(&[1, 1, 5, 2], 4));
        let (want, _) = naive_conv(
            &f64s(&x),
            [2, 3, 4, 5],
            &f64s(&f),
            [1, 1, 5, 2],
            [1, 1],
            [1, 1],
            true,
        );
        let (x32, f32_) = (
            x.cast(DType::Float32).unwrap(),
            f.cast(DType::Float32).unwrap(),
        );
        let (g, y) = conv_graph(&x32, &f32_, [1, 1], [1, 1], "VALID");
        assert_close(&f64s(&run(&g, &[y])[0]), &want, 1e-5);
        // int32: exact, small integers
        let xi = Tensor::new(
            &[1, 4, 4, 2],
            (0..32).map(|v| v % 7 - 3).collect::<Vec<i32>>(),
        )
        .unwrap();
        let fi = Tensor::new(
            &[2, 2, 2, 3],
            (0..24).map(|v| v % 5 - 2).collect::<Vec<i32>>(),
        )
        .unwrap();
        let (g, y) = conv_graph(&xi, &fi, [2, 1], [1, 1], "SAME");
        let out = run(&g, &[y]);
        assert_eq!(out[0].dtype(), DType::Int32);
        let (want, shape) = naive_conv(
            &f64s(&xi),
            [1, 4, 4, 2],
            &f64s(&fi),
            [2, 2, 2, 3],
            [2, 1],
            [1, 1],
            true,
        );
        assert_eq!(out[0].shape(), shape.as_slice());
        assert_eq!(f64s(&out[0]), want);
    }

    #[test]
    fn explicit_padding() {
        let (x, f) = (random(&[1, 4, 3, 2], 5), random(&[2, 2, 2, 1], 6));
        let mut g = Graph::new();
        let (xi, fi) = (
            g.constant(x.clone()).unwrap(),
            g.constant(f.clone()).unwrap(),
        );
        let y = g
            .op("Conv2D")
            .input(xi)
            .input(fi)
            .attr("T", DType::Float64)
            .attr("strides", vec![1i64, 1, 1, 1])
            .attr("padding", "EXPLICIT")
            .attr("explicit_paddings", vec![0i64, 0, 1, 0, 0, 2, 0, 0])
            .build_output()
            .unwrap();
        // Pad by hand (1 row on top, 2 columns on the right), then convolve VALID.
        let xv = f64s(&x);
        let mut padded = vec![0.0; 5 * 5 * 2];
        for r in 0..4 {
            for c in 0..3 {
                for ch in 0..2 {
                    padded[((r + 1) * 5 + c) * 2 + ch] = xv[(r * 3 + c) * 2 + ch];
                }
            }
        }
        let (want, shape) = naive_conv(
            &padded,
            [1, 5, 5, 2],
            &f64s(&f),
            [2, 2, 2, 1],
            [1, 1],
            [1, 1],
            false,
        );
        assert_eq!(g.shape(y), &PartialShape::known(&shape));
        assert_close(&f64s(&run(&g, &[y])[0]), &want, 1e-12);
        // A 1×1 filter with padding only after the input is not a plain matrix product.
        let f1 = g
            .constant(Tensor::new(&[1, 1, 2, 1], vec![2.0f64, 3.0]).unwrap())
            .unwrap();
        let explicit = |g: &mut Graph, f: Output, pads: Vec<i64>| {
            g.op("Conv2D")
                .input(xi)
                .input(f)
                .attr("T", DType::Float64)
                .attr("strides", vec![1i64, 1, 1, 1])
                .attr("padding", "EXPLICIT")
                .attr("explicit_paddings", pads)
                .build_output()
                .unwrap()
        };
        let y1 = explicit(&mut g, f1, vec![0, 0, 0, 1, 0, 2, 0, 0]);
        let out = &run(&g, &[y1])[0];
        assert_eq!(out.shape(), &[1, 5, 5, 1]);
        let got = f64s(out);
        for r in 0..5 {
            for c in 0..5 {
                let want = if r < 4 && c < 3 {
                    2.0 * xv[(r * 3 + c) * 2] + 3.0 * xv[(r * 3 + c) * 2 + 1]
                } else {
                    0.0
                };
                assert!((got[r * 5 + c] - want).abs() < 1e-12);
            }
        }
        // Padding that would make an impossible output is a run-time error, not a crash.
        let huge = i32::MAX as i64;
        let y2 = explicit(&mut g, f1, vec![0, 0, huge, huge, huge, huge, 0, 0]);
        assert!(fetch_err(&g, y2).contains("too large"));
    }

    #[test]
    fn threaded_blocks_match_a_single_thread() {
        // Large enough to be split over threads and into several im2col blocks.
        let (xs, fs) = ([4, 32, 32, 16], [3, 3, 16, 32]);
        let (x, f) = (random(&xs, 7), random(&fs, 8));
        for (s, same) in [([1, 1], true), ([2, 2], true)] {
            let padding = if same { "SAME" } else { "VALID" };
            let (g, y) = conv_graph(&x, &f, s.map(|v| v as i64), [1, 1], padding);
            let (want, _) = naive_conv(&f64s(&x), xs, &f64s(&f), fs, s, [1, 1], same);
            assert_close(&f64s(&run_with(&g, &[y], 4)[0]), &want, 1e-12);
            // The backprops with threads agree with one thread.
            let mut g2 = g.clone();
            let dy = g2
                .constant(random(g.shape(y).to_known().unwrap().as_slice(), 9))
                .unwrap();
            let xsz = g2.constant(Tensor::from(xs.map(|v| v as i32))).unwrap();
            let fsz = g2.constant(Tensor::from(fs.map(|v| v as i32))).unwrap();
            let (xi, fi) = (
                g2.constant(x.clone()).unwrap(),
                g2.constant(f.clone()).unwrap(),
            );
            let st = [1, s[0] as i64, s[1] as i64, 1];
            let dx = g2
                .conv2d_backprop_input(xsz, fi, dy, &st, padding, &[1; 4])
                .unwrap();
            let dw = g2
                .conv2d_backprop_filter(xi, fsz, dy, &st, padding, &[1; 4])
                .unwrap();
            let (one, four) = (run(&g2, &[dx, dw]), run_with(&g2, &[dx, dw], 4));
            assert_close(&f64s(&four[0]), &f64s(&one[0]), 1e-12);
            assert_close(&f64s(&four[1]), &f64s(&one[1]), 1e-12);
        }
    }

    /// The patch matrix of `g` over `x`, built from the definition (zeros for padding).
    fn patch_matrix(g: &Geometry, x: &[f32]) -> Vec<f32> {
        let mut patches = Vec::new();
        for b in 0..g.batch {
            for oy in 0..g.out_h {
                for ox in 0..g.out_w {
                    for i in 0..g.k_h {
                        for j in 0..g.k_w {
                            for ch in 0..g.in_c {
                                patches.push(match (g.in_row(oy, i), g.in_col(ox, j)) {
                                    (Some(y), Some(xx)) => {
                                        x[((b * g.in_h + y) * g.in_w + xx) * g.in_c + ch]
                                    }
                                    _ => 0.0,
                                });
                            }
                        }
                    }
                }
            }
        }
        patches
    }

    #[test]
    fn short_patches_read_in_place_match_the_patch_matrix_product_bit_for_bit() {
        use crate::device::gemm::{gemm, GemmDims};
        // (input, filter, strides, dilations, padding): a first convolution's 3×3×1
        // windows, strided, dilated, VALID and explicit; two channels (k = 8); column
        // counts that leave a remainder after blocks of 16; pixel counts that are not a
        // multiple of four; and one large enough to be split over two threads.
        let explicit = vec![0i64, 0, 2, 0, 1, 3, 0, 0];
        type Case = ([usize; 4], [usize; 4], i64, i64, &'static str);
        let cases: [Case; 7] = [
            ([1, 28, 28, 1], [3, 3, 1, 32], 1, 1, "SAME"),
            ([3, 7, 9, 1], [3, 3, 1, 37], 2, 1, "SAME"),
            ([2, 9, 6, 1], [3, 3, 1, 8], 1, 2, "SAME"),
            ([2, 7, 5, 1], [3, 2, 1, 5], 1, 1, "VALID"),
            ([1, 5, 4, 2], [2, 2, 2, 17], 1, 1, "VALID"),
            ([2, 6, 5, 1], [3, 3, 1, 16], 1, 1, "EXPLICIT"),
            ([8, 64, 64, 1], [3, 3, 1, 32], 1, 1, "SAME"),
        ];
        for (xs, fs, s, d, padding) in cases {
            let mut attrs: crate::graph::Attrs = [
                ("strides".to_string(), vec![1i64, s, s, 1].into()),
                ("dilations".to_string(), vec![1i64, d, d, 1].into()),
                ("padding".to_string(), padding.into()),
            ]
            .into_iter()
            .collect();
            if padding == "EXPLICIT" {
                attrs.insert("explicit_paddings".to_string(), explicit.clone().into());
            }
            let geom = runtime_geometry::<f32>(&Window2d::conv(&attrs).unwrap(), &xs, &fs).unwrap();
            assert!(geom.reads_taps_in_place(), "{xs:?} {fs:?}");
            let x: Vec<f32> = values(xs.iter().product(), 20)
                .iter()
                .map(|&v| v as f32)
                .collect();
            let f: Vec<f32> = values(fs.iter().product(), 21)
                .iter()
                .map(|&v| v as f32)
                .collect();
            let (patches, k) = (patch_matrix(&geom, &x), fs[0] * fs[1] * fs[2]);
            let dims = GemmDims {
                m: patches.len() / k,
                n: fs[3],
                k,
                trans_a: false,
                trans_b: false,
            };
            let mut want = vec![0f32; dims.m * dims.n];
            gemm(dims, &patches, &f, &mut want, 1);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            for threads in [1, 2] {
                let got = conv2d_forward(&geom, &x, &f, threads, None);
                assert_eq!(bits(&got), bits(&want), "{xs:?} {fs:?} {padding} {threads}");
            }
            // In float64, against the definition.
            let (x64, f64_) = (
                x.iter().map(|&v| f64::from(v)).collect::<Vec<_>>(),
                f.iter().map(|&v| f64::from(v)).collect::<Vec<_>>(),
            );
            let got = conv2d_forward(&geom, &x64, &f64_, 1, None);
            let want: Vec<f64> = patches
                .chunks_exact(dims.k)
                .flat_map(|p| {
                    (0..dims.n).map(|o| {
                        p.iter()
                            .enumerate()
                            .map(|(t, &v)| f64::from(v) * f64_[t * dims.n + o])
                            .sum::<f64>()
                    })
                })
                .collect();
            assert_close(&got, &want, 1e-12);
            // The filter gradient read in place, in float64, against Σ patchᵀ · dy.
            let dy = values(dims.m * dims.n, 22);
            let want: Vec<f64> = (0..k * dims.n)
                .map(|i| {
                    let (t, o) = (i / dims.n, i % dims.n);
                    (0..dims.m)
                        .map(|p| f64::from(patches[p * k + t]) * dy[p * dims.n + o])
                        .sum::<f64>()
                })
                .collect();
            for threads in [1, 2] {
                let got = conv2d_backprop_filter(&geom, &x64, &dy, threads);
                assert_close(&got, &want, 1e-9);
            }
        }
    }

    /// Central finite differences of `L = Σ w · conv2d(x, f)` through the forward kernel.
    fn fd_grads(g: &Geometry, x: &[f64], f: &[f64], w: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let loss = |x: &[f64], f: &[f64]| -> f64 {
            conv2d_forward(g, x, f, 1, None)
                .iter()
                .zip(w)
                .map(|(a, b)| a * b)
                .sum()
        };
        let eps = 1e-4;
        let grad = |v: &[f64], at_x: bool| -> Vec<f64> {
            (0..v.len())
                .map(|i| {
                    let (mut p, mut m) = (v.to_vec(), v.to_vec());
                    p[i] += eps;
                    m[i] -= eps;
                    let (lp, lm) = if at_x {
                        (loss(&p, f), loss(&m, f))
                    } else {
                        (loss(x, &p), loss(x, &m))
                    };
                    (lp - lm) / (2.0 * eps)
                })
                .collect()
        };
        (grad(x, true), grad(f, false))
    }

    #[test]
    fn backprops_match_finite_differences() {
        let (xs, fs) = ([2, 5, 6, 3], [3, 2, 3, 2]);
        let (x, f) = (random(&xs, 10), random(&fs, 11));
        for (s, d, padding) in [
            ([1, 1], [1, 1], "SAME"),
            ([2, 2], [1, 1], "VALID"),
            ([2, 2], [1, 1], "SAME"),
            ([1, 1], [2, 2], "SAME"),
            ([2, 1], [1, 2], "VALID"),
        ] {
            let attrs: crate::graph::Attrs = [
                ("strides".to_string(), vec![1i64, s[0], s[1], 1].into()),
                ("dilations".to_string(), vec![1i64, d[0], d[1], 1].into()),
                ("padding".to_string(), padding.into()),
            ]
            .into_iter()
            .collect();
            let geom = runtime_geometry::<f32>(&Window2d::conv(&attrs).unwrap(), &xs, &fs).unwrap();
            let w = values(geom.out_shape().iter().product(), 12);
            let (want_dx, want_dw) = fd_grads(&geom, &f64s(&x), &f64s(&f), &w);

            let mut g = Graph::new();
            let (xi, fi) = (
                g.constant(x.clone()).unwrap(),
                g.constant(f.clone()).unwrap(),
            );
            let dy = g
                .constant(Tensor::new(&geom.out_shape(), w).unwrap())
                .unwrap();
            let xsz = g.constant(Tensor::from(xs.map(|v| v as i32))).unwrap();
            let fsz = g.constant(Tensor::from(fs.map(|v| v as i32))).unwrap();
            let (st, dl) = ([1, s[0], s[1], 1], [1, d[0], d[1], 1]);
            let dx = g
                .conv2d_backprop_input(xsz, fi, dy, &st, padding, &dl)
                .unwrap();
            let dw = g
                .conv2d_backprop_filter(xi, fsz, dy, &st, padding, &dl)
                .unwrap();
            assert_eq!(g.shape(dx), &PartialShape::known(&xs));
            assert_eq!(g.shape(dw), &PartialShape::known(&fs));
            let out = run(&g, &[dx, dw]);
            assert_close(&f64s(&out[0]), &want_dx, 1e-7);
            assert_close(&f64s(&out[1]), &want_dw, 1e-7);
        }
    }

    #[test]
    fn backprop_input_accepts_spatial_sizes_only() {
        let mut g = Graph::new();
        let f = g.constant(random(&[2, 2, 3, 4], 1)).unwrap();
        let dy = g.constant(random(&[2, 3, 3, 4], 2)).unwrap();
        let sizes = g.constant(Tensor::from([5i32, 6])).unwrap();
        let dx = g
            .conv2d_backprop_input(sizes, f, dy, &[1, 2, 2, 1], "SAME", &[1; 4])
            .unwrap();
        assert_eq!(g.shape(dx), &PartialShape::known(&[2, 5, 6, 3]));
        assert_eq!(run(&g, &[dx])[0].shape(), &[2, 5, 6, 3]);
        // out_backprop of the wrong size for these input sizes
        let bad = g.constant(Tensor::from([9i32, 6])).unwrap();
        let msg = g
            .conv2d_backprop_input(bad, f, dy, &[1, 2, 2, 1], "VALID", &[1; 4])
            .unwrap_err()
            .to_string();
        assert!(msg.contains("height"), "{msg}");
    }

    #[test]
    fn channel_mismatch_is_a_build_error_naming_both_shapes() {
        let mut g = Graph::new();
        let x = g.placeholder(DType::Float32, [1, 5, 5, 3], "x").unwrap();
        let f = g.placeholder(DType::Float32, [3, 3, 2, 4], "f").unwrap();
        let msg = g
            .conv2d(x, f, &[1, 1, 1, 1], "SAME")
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("[1,5,5,3]") && msg.contains("[3,3,2,4]") && msg.contains("Depth"),
            "{msg}"
        );
        let f2 = g.placeholder(DType::Float32, [3, 3, 1, 4], "f2").unwrap();
        let msg = g
            .conv2d(x, f2, &[1, 1, 1, 1], "SAME")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("grouped"), "{msg}");
        let f3 = g.placeholder(DType::Float32, [3, 3, 4], "f3").unwrap();
        let msg = g
            .conv2d(x, f3, &[1, 1, 1, 1], "SAME")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("filter must be 4-dimensional"), "{msg}");
        let fi = g.placeholder(DType::Int64, [3, 3, 3, 4], "fi").unwrap();
        assert!(g.conv2d(x, fi, &[1, 1, 1, 1], "SAME").is_err());
        let msg = g.conv2d(x, f, &[1, 1, 1], "SAME").unwrap_err().to_string();
        assert!(msg.contains("strides"), "{msg}");
        // Unknown dims stay unknown; known ones are computed.
        let xu = g
            .placeholder(DType::Float32, [None, Some(9), None, Some(3)], "xu")
            .unwrap();
        let f4 = g.placeholder(DType::Float32, [3, 3, 3, 8], "f4").unwrap();
        let y = g.conv2d(xu, f4, &[1, 2, 2, 1], "VALID").unwrap();
        assert_eq!(
            g.shape(y),
            &PartialShape::new(vec![None, Some(4), None, Some(8)])
        );
    }

    #[test]
    fn nchw_builds_but_does_not_run_on_cpu() {
        let mut g = Graph::new();
        let x = g.constant(random(&[1, 3, 5, 5], 1)).unwrap();
        let f = g.constant(random(&[3, 3, 3, 2], 2)).unwrap();
        let y = g
            .op("Conv2D")
            .input(x)
            .input(f)
            .attr("T", DType::Float64)
            .attr("strides", vec![1i64, 1, 2, 2])
            .attr("padding", "SAME")
            .attr("data_format", "NCHW")
            .build_output()
            .unwrap();
        assert_eq!(g.shape(y), &PartialShape::known(&[1, 2, 3, 3]));
        let msg = fetch_err(&g, y);
        assert!(msg.contains("NHWC"), "{msg}");
    }

    #[test]
    fn empty_inputs_give_empty_or_zero_outputs() {
        let mut g = Graph::new();
        let x = g
            .constant(Tensor::zeros(DType::Float32, &[0, 4, 4, 2]))
            .unwrap();
        let f = g
            .constant(random(&[2, 2, 2, 3], 1).cast(DType::Float32).unwrap())
            .unwrap();
        let y = g.conv2d(x, f, &[1, 1, 1, 1], "SAME").unwrap();
        let x2 = g
            .constant(Tensor::zeros(DType::Float32, &[1, 4, 4, 0]))
            .unwrap();
        let f2 = g
            .constant(Tensor::zeros(DType::Float32, &[2, 2, 0, 3]))
            .unwrap();
        let y2 = g.conv2d(x2, f2, &[1, 1, 1, 1], "VALID").unwrap();
        let fsz = g.constant(Tensor::from([2i32, 2, 0, 3])).unwrap();
        let dy = g
            .constant(Tensor::zeros(DType::Float32, &[1, 3, 3, 3]))
            .unwrap();
        let dw = g
            .conv2d_backprop_filter(x2, fsz, dy, &[1; 4], "VALID", &[1; 4])
            .unwrap();
        let xsz = g.constant(Tensor::from([1i32, 4, 4, 0])).unwrap();
        let dx = g
            .conv2d_backprop_input(xsz, f2, dy, &[1; 4], "VALID", &[1; 4])
            .unwrap();
        let out = run(&g, &[y, y2, dw, dx]);
        assert_eq!(
            (out[2].shape(), out[3].shape()),
            (&[2, 2, 0, 3][..], &[1, 4, 4, 0][..])
        );
        assert_eq!(out[0].shape(), &[0, 4, 4, 3]);
        assert_eq!(out[1].shape(), &[1, 3, 3, 3]);
        assert!(f64s(&out[1]).iter().all(|&v| v == 0.0));
    }
}

//! 2-D convolution: Conv2D (input NHWC, filter HWIO) and its two backprops,
//! Conv2DBackpropInput and Conv2DBackpropFilter. All three lower to matrix products with
//! the crate's [`gemm`]: im2col turns a block of output pixels into a patch matrix
//! `[pixels, k_h·k_w·in_c]` whose product with the filter `[k_h·k_w·in_c, out_c]` is the
//! block of output rows; the input backprop scatters `dy · filterᵀ` back with col2im and
//! the filter backprop sums `patchesᵀ · dy`. Blocks of rows (or whole images, where
//! writes would overlap) are spread over the intra-op threads.

use super::window::{nhwc_dims, DataFormat, Geometry, Window2d};
use crate::device::gemm::{gemm, zeroed, GemmDims, GemmElement};
use crate::device::parallel::{for_each_units, split_range, threads_for};
use crate::graph::{Graph, Output, TensorSpec};
use crate::ops::math::{InferResult, KernelResult};
use crate::ops::{kernel_fn, InferCtx, KernelBuildCtx, KernelCtx};
use crate::tensor::{DType, Dim, Number, PartialShape, Tensor};
use crate::{with_dtype, Error, Result};
use std::ops::Range;

/// Dtypes of Conv2D and Conv2DBackpropInput on CPU.
const CONV_TYPES: &[DType] = &[DType::Float32, DType::Float64, DType::Int32];
/// Dtypes of Conv2DBackpropFilter on CPU.
const CONV_FILTER_GRAD_TYPES: &[DType] = &[DType::Float32, DType::Float64];

/// Patch-matrix elements per block: big enough for an efficient product, small enough
/// to stay in cache.
const BLOCK_ELEMENTS: usize = 1 << 17;

/// Rows of the patch matrix built at once for `k` columns.
fn block_rows(k: usize) -> usize {
    (BLOCK_ELEMENTS / k.max(1)).max(16)
}

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

fn infer_conv2d(ctx: &InferCtx<'_>) -> InferResult {
    ctx.expect_inputs(2)?;
    let dt = ctx.same_dtype()?;
    ctx.check_dtype(0, CONV_TYPES)?;
    ctx.check_t_attr(dt)?;
    let window = Window2d::conv(ctx.attrs())?;
    let [n, h, w, c] = window.nhwc_dims(ctx.shape(0), "input")?;
    let [kh, kw, fin, fout] = filter_dims(ctx.shape(1))?;
    check_depth(c, fin, ctx.shape(0), ctx.shape(1))?;
    let oh = window.out_dim(0, h, kh)?;
    let ow = window.out_dim(1, w, kw)?;
    Ok(vec![TensorSpec::new(
        dt,
        layout_shape(window.format, [n, oh, ow, fout]),
    )])
}

/// A build-time-constant int32 sizes input (`input_sizes`, `filter_sizes`), as dims.
fn constant_sizes(
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
fn sizes_from_ints(v: &[i64], name: &str) -> std::result::Result<Vec<usize>, String> {
    v.iter()
        .map(|&d| usize::try_from(d).map_err(|_| format!("{name} must be non-negative, got {v:?}")))
        .collect()
}

/// Merges a computed dim with a known one, naming what disagrees.
fn merge_dim(a: Dim, b: Dim, what: &str) -> std::result::Result<Dim, String> {
    match (a, b) {
        (Some(x), Some(y)) if x != y => Err(format!("{what} do not match: {x} vs. {y}")),
        _ => Ok(a.or(b)),
    }
}

/// Checks that `out_backprop` has the size the forward convolution would produce.
fn check_out_backprop(
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

fn infer_conv2d_backprop_input(ctx: &InferCtx<'_>) -> InferResult {
    ctx.expect_inputs(3)?;
    let dt = ctx.dtype(1);
    if ctx.dtype(2) != dt {
        return Err(format!(
            "filter is {dt} but out_backprop is {}; insert a Cast so they match",
            ctx.dtype(2)
        ));
    }
    ctx.check_dtype(1, CONV_TYPES)?;
    ctx.check_t_attr(dt)?;
    let window = Window2d::conv(ctx.attrs())?;
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
    ctx.expect_inputs(3)?;
    let dt = ctx.dtype(0);
    if ctx.dtype(2) != dt {
        return Err(format!(
            "input is {dt} but out_backprop is {}; insert a Cast so they match",
            ctx.dtype(2)
        ));
    }
    ctx.check_dtype(0, CONV_FILTER_GRAD_TYPES)?;
    ctx.check_t_attr(dt)?;
    let window = Window2d::conv(ctx.attrs())?;
    let input = window.nhwc_dims(ctx.shape(0), "input")?;
    let dy = window.nhwc_dims(ctx.shape(2), "out_backprop")?;
    let mut filter = [None, None, input[3], dy[3]];
    if let Some(sizes) = constant_sizes(ctx, 1, "filter_sizes")? {
        if sizes.len() != 4 {
            return Err(format!("filter_sizes must have 4 elements, got {sizes:?}"));
        }
        for (d, &s) in filter.iter_mut().zip(&sizes) {
            *d = merge_dim(
                *d,
                Some(s),
                "filter_sizes and the input/out_backprop depths",
            )?;
        }
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

/// Resolves attrs once and refuses NCHW, which TensorFlow's CPU kernels do not run.
fn nhwc_window(ctx: &KernelBuildCtx<'_>) -> std::result::Result<Window2d, String> {
    let window = Window2d::conv(ctx.attrs())?;
    if window.format != DataFormat::Nhwc {
        return Err(format!(
            "The {} op currently only supports the NHWC tensor format on the CPU. The op was given the format: NCHW",
            ctx.node.op_type()
        ));
    }
    Ok(window)
}

/// Four sizes from a runtime shape, or an error naming the tensor.
fn rank4(shape: &[usize], what: &str) -> Result<[usize; 4]> {
    <[usize; 4]>::try_from(shape)
        .map_err(|_| Error::invalid(format!("{what} must be 4-dimensional: {shape:?}")))
}

/// Runtime geometry from an NHWC input shape and an HWIO filter shape.
fn runtime_geometry(window: &Window2d, input: &[usize], filter: &[usize]) -> Result<Geometry> {
    let [n, h, w, c] = rank4(input, "input")?;
    let [kh, kw, fin, fout] = rank4(filter, "filter")?;
    if c != fin {
        return Err(Error::invalid(format!(
            "input depth must be evenly divisible by filter depth, and grouped convolutions are not supported: input {input:?}, filter {filter:?}"
        )));
    }
    Geometry::new(window, [n, h, w, c], [kh, kw], fout).map_err(Error::invalid)
}

/// Checks `out_backprop` against the geometry's output shape.
fn check_dy(g: &Geometry, dy: &Tensor) -> Result<()> {
    if dy.shape() != g.out_shape().as_slice() {
        return Err(Error::invalid(format!(
            "out_backprop has shape {:?}, but the input and filter give an output of shape {:?}",
            dy.shape(),
            g.out_shape()
        )));
    }
    Ok(())
}

/// Sizes from a runtime `input_sizes` / `filter_sizes` tensor.
fn runtime_sizes(t: &Tensor, name: &str) -> Result<Vec<usize>> {
    if t.rank() != 1 {
        return Err(Error::invalid(format!(
            "{name} must be a vector, got shape {:?}",
            t.shape()
        )));
    }
    sizes_from_ints(&t.to_i64_vec()?, name).map_err(Error::invalid)
}

impl Geometry {
    /// Columns of the patch matrix.
    fn patch_len(&self) -> usize {
        self.k_h * self.k_w * self.in_c
    }

    /// Rows of the patch matrix (output pixels).
    fn pixels(&self) -> usize {
        self.batch * self.out_h * self.out_w
    }

    /// A 1×1 window with stride 1 and no padding: the input already is the patch matrix.
    fn is_pointwise(&self) -> bool {
        self.k_h == 1 && self.k_w == 1 && self.stride == [1, 1] && self.pad == [0, 0]
    }

    /// (image, output row, output column) of patch row `r`.
    #[inline]
    fn pixel(&self, r: usize) -> (usize, usize, usize) {
        let per_image = self.out_h * self.out_w;
        let (b, p) = (r / per_image, r % per_image);
        (b, p / self.out_w, p % self.out_w)
    }

    /// Fills `patches` with rows `rows` of the patch matrix (zeros for padding).
    fn im2col<T: Number>(&self, input: &[T], rows: Range<usize>, patches: &mut Vec<T>) {
        let (c, k) = (self.in_c, self.patch_len());
        let span = self.k_w * c;
        patches.resize(rows.len() * k, T::ZERO);
        for (r, dst) in rows.zip(patches.chunks_exact_mut(k)) {
            let (b, oy, ox) = self.pixel(r);
            let image = &input[b * self.in_image()..(b + 1) * self.in_image()];
            for (i, drow) in dst.chunks_exact_mut(span).enumerate() {
                let Some(y) = self.in_row(oy, i) else {
                    drow.fill(T::ZERO);
                    continue;
                };
                let line = &image[y * self.in_w * c..(y + 1) * self.in_w * c];
                // The whole row of taps inside the input: one copy.
                if let (1, Some(x0), Some(_)) = (
                    self.dilation[1],
                    self.in_col(ox, 0),
                    self.in_col(ox, self.k_w - 1),
                ) {
                    drow.copy_from_slice(&line[x0 * c..x0 * c + span]);
                    continue;
                }
                for (j, d) in drow.chunks_exact_mut(c).enumerate() {
                    match self.in_col(ox, j) {
                        Some(x) => d.copy_from_slice(&line[x * c..(x + 1) * c]),
                        None => d.fill(T::ZERO),
                    }
                }
            }
        }
    }

    /// Adds patch rows `rows` back into the images they came from; `dx` holds the images
    /// from `first_image` on.
    fn col2im_add<T: Number>(
        &self,
        cols: &[T],
        rows: Range<usize>,
        dx: &mut [T],
        first_image: usize,
    ) {
        let (c, k) = (self.in_c, self.patch_len());
        for (r, src) in rows.zip(cols.chunks_exact(k)) {
            let (b, oy, ox) = self.pixel(r);
            let start = (b - first_image) * self.in_image();
            let image = &mut dx[start..start + self.in_image()];
            for (i, srow) in src.chunks_exact(self.k_w * c).enumerate() {
                let Some(y) = self.in_row(oy, i) else {
                    continue;
                };
                let line = &mut image[y * self.in_w * c..(y + 1) * self.in_w * c];
                for (j, s) in srow.chunks_exact(c).enumerate() {
                    if let Some(x) = self.in_col(ox, j) {
                        for (d, &v) in line[x * c..(x + 1) * c].iter_mut().zip(s) {
                            *d = d.add(v);
                        }
                    }
                }
            }
        }
    }
}

/// Threads over pieces of the work, and the threads left for each product.
fn split_threads(work: usize, units: usize, threads: usize) -> (usize, usize) {
    let outer = threads_for(work, units, threads);
    (outer, (threads / outer).max(1))
}

/// `output = conv2d(input, filter)`, NHWC × HWIO → NHWC.
fn conv2d_forward<T: GemmElement>(
    g: &Geometry,
    input: &[T],
    filter: &[T],
    threads: usize,
) -> Vec<T> {
    let (k, oc) = (g.patch_len(), g.out_c);
    let mut out = zeroed::<T>(g.pixels() * oc);
    if k == 0 {
        return out;
    }
    let block = block_rows(k);
    let (outer, inner) = split_threads(
        g.pixels().saturating_mul(k).saturating_mul(oc),
        g.pixels(),
        threads,
    );
    for_each_units(&mut out, oc, outer, |rows, chunk| {
        let mut patches = Vec::new();
        for start in rows.clone().step_by(block) {
            let end = (start + block).min(rows.end);
            let dst = &mut chunk[(start - rows.start) * oc..(end - rows.start) * oc];
            let a = if g.is_pointwise() {
                &input[start * k..end * k]
            } else {
                g.im2col(input, start..end, &mut patches);
                &patches
            };
            let dims = GemmDims {
                m: end - start,
                n: oc,
                k,
                trans_a: false,
                trans_b: false,
            };
            gemm(dims, a, filter, dst, inner);
        }
    });
    out
}

/// Gradient of conv2d with respect to its input: `col2im(dy · filterᵀ)`.
fn conv2d_backprop_input<T: GemmElement>(
    g: &Geometry,
    filter: &[T],
    dy: &[T],
    threads: usize,
) -> Vec<T> {
    let (k, oc) = (g.patch_len(), g.out_c);
    let per_image = g.out_h * g.out_w;
    let mut dx = zeroed::<T>(g.batch * g.in_image());
    let block = block_rows(k);
    let (outer, inner) = split_threads(
        g.pixels().saturating_mul(k).saturating_mul(oc),
        g.batch,
        threads,
    );
    for_each_units(&mut dx, g.in_image(), outer, |images, chunk| {
        let mut cols = Vec::new();
        let rows = images.start * per_image..images.end * per_image;
        for start in rows.clone().step_by(block) {
            let end = (start + block).min(rows.end);
            cols.resize((end - start) * k, T::ZERO);
            let dims = GemmDims {
                m: end - start,
                n: k,
                k: oc,
                trans_a: false,
                trans_b: true,
            };
            gemm(dims, &dy[start * oc..end * oc], filter, &mut cols, inner);
            g.col2im_add(&cols, start..end, chunk, images.start);
        }
    });
    dx
}

/// Gradient of conv2d with respect to its filter: `Σ patchesᵀ · dy`, one partial sum
/// per thread.
fn conv2d_backprop_filter<T: GemmElement>(
    g: &Geometry,
    input: &[T],
    dy: &[T],
    threads: usize,
) -> Vec<T> {
    let (k, oc) = (g.patch_len(), g.out_c);
    let size = k * oc;
    let block = block_rows(k);
    let (outer, inner) = split_threads(g.pixels().saturating_mul(size), g.pixels(), threads);
    let mut partials = zeroed::<T>(outer * size);
    for_each_units(&mut partials, size, outer, |parts, chunk| {
        let (mut patches, mut tmp) = (Vec::new(), zeroed::<T>(size));
        for (part, acc) in parts.zip(chunk.chunks_exact_mut(size)) {
            let rows = split_range(g.pixels(), part, outer);
            for start in rows.clone().step_by(block) {
                let end = (start + block).min(rows.end);
                let a = if g.is_pointwise() {
                    &input[start * k..end * k]
                } else {
                    g.im2col(input, start..end, &mut patches);
                    &patches
                };
                let dims = GemmDims {
                    m: k,
                    n: oc,
                    k: end - start,
                    trans_a: true,
                    trans_b: false,
                };
                gemm(dims, a, &dy[start * oc..end * oc], &mut tmp, inner);
                acc.iter_mut().zip(&tmp).for_each(|(x, &y)| *x = x.add(y));
            }
        }
    });
    let (first, rest) = partials.split_at_mut(size.min(outer * size));
    for part in rest.chunks_exact(size.max(1)) {
        first.iter_mut().zip(part).for_each(|(x, &y)| *x = x.add(y));
    }
    partials.truncate(size);
    partials
}

fn conv2d_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let window = nhwc_window(ctx)?;
    with_dtype!(signed, ctx.input_dtype(0), T => kernel_fn(move |k: &mut KernelCtx<'_>| {
        let (input, filter) = (k.input(0)?, k.input(1)?);
        let g = runtime_geometry(&window, input.shape(), filter.shape())?;
        let out = conv2d_forward(&g, input.as_slice::<T>()?, filter.as_slice::<T>()?, k.intra_op_threads());
        k.push_output(Tensor::from_parts(g.out_shape(), out));
        Ok(())
    }))
}

fn conv2d_backprop_input_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let window = nhwc_window(ctx)?;
    with_dtype!(signed, ctx.input_dtype(1), T => kernel_fn(move |k: &mut KernelCtx<'_>| {
        let (sizes, filter, dy) = (k.input(0)?, k.input(1)?, k.input(2)?);
        let sizes = runtime_sizes(sizes, "input_sizes")?;
        let [n, h, w, c] = match sizes.len() {
            4 => [sizes[0], sizes[1], sizes[2], sizes[3]],
            2 => [dy.shape().first().copied().unwrap_or(0), sizes[0], sizes[1], filter.shape().get(2).copied().unwrap_or(0)],
            _ => return Err(Error::invalid(format!("input_sizes must have 4 elements (or 2 spatial sizes), got {sizes:?}"))),
        };
        let g = runtime_geometry(&window, &[n, h, w, c], filter.shape())?;
        check_dy(&g, dy)?;
        let dx = conv2d_backprop_input(&g, filter.as_slice::<T>()?, dy.as_slice::<T>()?, k.intra_op_threads());
        k.push_output(Tensor::from_parts(vec![n, h, w, c], dx));
        Ok(())
    }))
}

fn conv2d_backprop_filter_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let window = nhwc_window(ctx)?;
    with_dtype!(float, ctx.input_dtype(0), T => kernel_fn(move |k: &mut KernelCtx<'_>| {
        let (input, sizes, dy) = (k.input(0)?, k.input(1)?, k.input(2)?);
        let sizes = runtime_sizes(sizes, "filter_sizes")?;
        let g = runtime_geometry(&window, input.shape(), &sizes)?;
        check_dy(&g, dy)?;
        let dw = conv2d_backprop_filter(&g, input.as_slice::<T>()?, dy.as_slice::<T>()?, k.intra_op_threads());
        k.push_output(Tensor::from_parts(sizes, dw));
        Ok(())
    }))
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

pub(super) fn register(r: &mut crate::ops::Registry) {
    use crate::ops::{Cost, Op};
    r.add(
        Op::new("Conv2D", infer_conv2d, conv2d_kernel)
            .cost(Cost::Expensive)
            .defaults(conv_defaults),
    );
    r.add(
        Op::new(
            "Conv2DBackpropInput",
            infer_conv2d_backprop_input,
            conv2d_backprop_input_kernel,
        )
        .cost(Cost::Expensive)
        .defaults(conv_defaults),
    );
    r.add(
        Op::new(
            "Conv2DBackpropFilter",
            infer_conv2d_backprop_filter,
            conv2d_backprop_filter_kernel,
        )
        .cost(Cost::Expensive)
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

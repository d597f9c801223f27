//! Conv2D's CPU kernels: the convolution and both backprops as blocked products of patch
//! matrices (im2col) with the filter, split over intra-op threads.

use super::finish::BiasActivation;
use super::implicit;
use super::sizes_from_ints;
use super::taps::{direct_block, direct_filter_grad, DIRECT_BLOCK_ELEMENTS};
use crate::device::gemm::{gemm, zeroed, GemmDims, GemmElement};
use crate::device::parallel::{
    split_range, sum_of_parts, threads_for, zeroed_blocks, zeroed_units, MIN_PRODUCT_WORK,
};
use crate::graph::Node;
use crate::ops::linalg::matmul::cpu::Activation;
use crate::ops::nn::window::{DataFormat, Geometry, Window2d};
use crate::ops::{kernel_fn, KernelBuildCtx, KernelCtx, KernelResult};
use crate::tensor::{DType, Element, Number, Tensor};
use crate::{with_dtype, Error, Result};
use std::ops::Range;

/// Patch-matrix elements per block: big enough for an efficient product, small enough
/// to stay in cache.
const BLOCK_ELEMENTS: usize = 1 << 17;

/// Output elements per block of a convolution: the block is zeroed, written and finished
/// (bias, activation) while it is in the cache.
const OUTPUT_BLOCK_ELEMENTS: usize = 1 << 15;

/// Rows of the patch matrix built at once for `k` columns.
fn block_rows(k: usize) -> usize {
    (BLOCK_ELEMENTS / k.max(1)).max(16)
}

/// Resolves a convolution node's attrs once and refuses NCHW, which TensorFlow's CPU
/// kernels do not run.
pub(in crate::ops::nn) fn nhwc_window(node: &Node) -> std::result::Result<Window2d, String> {
    let window = Window2d::conv(node.attrs())?;
    if window.format != DataFormat::Nhwc {
        return Err(format!(
            "The {} op currently only supports the NHWC tensor format on the CPU. The op was given the format: NCHW",
            node.op_type()
        ));
    }
    Ok(window)
}

/// Four sizes from a runtime shape, or an error naming the tensor.
pub(in crate::ops::nn) fn rank4(shape: &[usize], what: &str) -> Result<[usize; 4]> {
    <[usize; 4]>::try_from(shape)
        .map_err(|_| Error::invalid(format!("{what} must be 4-dimensional: {shape:?}")))
}

/// Runtime geometry from an NHWC input shape and an HWIO filter shape.
pub(super) fn runtime_geometry<T: Element>(
    window: &Window2d,
    input: &[usize],
    filter: &[usize],
) -> Result<Geometry> {
    let [n, h, w, c] = rank4(input, "input")?;
    let [kh, kw, fin, fout] = rank4(filter, "filter")?;
    if c != fin {
        return Err(Error::invalid(format!(
            "input depth must be evenly divisible by filter depth, and grouped convolutions are not supported: input {input:?}, filter {filter:?}"
        )));
    }
    let g = Geometry::new(window, [n, h, w, c], [kh, kw], fout).map_err(Error::invalid)?;
    g.check_memory(T::DTYPE)?;
    Ok(g)
}

/// Checks `out_backprop` against the geometry's output shape.
pub(in crate::ops::nn) fn check_dy(g: &Geometry, dy: &Tensor) -> Result<()> {
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
pub(in crate::ops::nn) fn runtime_sizes(t: &Tensor, name: &str) -> Result<Vec<usize>> {
    if t.rank() != 1 {
        return Err(Error::invalid(format!(
            "{name} must be a vector, got shape {:?}",
            t.shape()
        )));
    }
    sizes_from_ints(&t.to_i64_vec()?, name).map_err(Error::invalid)
}

impl Geometry {
    /// Threads for this convolution (or either of its backprops, which do as many
    /// multiply-adds): the session's intra-op threads when the work is worth splitting.
    fn conv_threads(&self, k: &KernelCtx<'_>) -> usize {
        let work = self
            .pixels()
            .saturating_mul(self.patch_len())
            .saturating_mul(self.out_c);
        k.threads_for_work(work, MIN_PRODUCT_WORK)
    }

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
        self.k_h == 1
            && self.k_w == 1
            && self.stride == [1, 1]
            && self.pad == [0, 0]
            && (self.out_h, self.out_w) == (self.in_h, self.in_w)
    }

    /// (image, output row, output column) of patch row `r`.
    #[inline]
    pub(super) fn pixel(&self, r: usize) -> (usize, usize, usize) {
        let per_image = self.out_h * self.out_w;
        let (b, p) = (r / per_image, r % per_image);
        (b, p / self.out_w, p % self.out_w)
    }

    /// (image, output row, output column) of each patch row in `rows`, stepped along
    /// rather than divided out per row.
    pub(super) fn pixels_of(
        &self,
        rows: Range<usize>,
    ) -> impl Iterator<Item = (usize, usize, usize)> {
        let g = *self;
        let next = move |&(b, oy, ox): &(usize, usize, usize)| {
            Some(if ox + 1 < g.out_w {
                (b, oy, ox + 1)
            } else if oy + 1 < g.out_h {
                (b, oy + 1, 0)
            } else {
                (b + 1, 0, 0)
            })
        };
        std::iter::successors(Some(self.pixel(rows.start)), next).take(rows.len())
    }

    /// Rows `rows` of the patch matrix: the input itself for a pointwise window, else
    /// built in `patches` by [`Geometry::im2col`].
    fn patch_rows<'a, T: Number>(
        &self,
        input: &'a [T],
        rows: Range<usize>,
        patches: &'a mut Vec<T>,
    ) -> &'a [T] {
        if self.is_pointwise() {
            let k = self.patch_len();
            &input[rows.start * k..rows.end * k]
        } else {
            self.im2col(input, rows, patches);
            patches
        }
    }

    /// Fills `patches` with rows `rows` of the patch matrix (zeros for padding), each
    /// element written once: no zero-fill of the buffer ahead of the copies.
    fn im2col<T: Number>(&self, input: &[T], rows: Range<usize>, patches: &mut Vec<T>) {
        let (c, k) = (self.in_c, self.patch_len());
        let span = self.k_w * c;
        patches.clear();
        patches.reserve(rows.len() * k);
        let zeros = |patches: &mut Vec<T>, n: usize| patches.resize(patches.len() + n, T::ZERO);
        for (b, oy, ox) in self.pixels_of(rows) {
            let image = &input[b * self.in_image()..(b + 1) * self.in_image()];
            // The first input column of the window when its whole row of taps lies inside
            // the input: each row of taps is then one copy.
            let whole_row = match (self.in_col(ox, 0), self.in_col(ox, self.k_w - 1)) {
                (Some(x0), Some(_)) if self.dilation[1] == 1 => Some(x0),
                _ => None,
            };
            for i in 0..self.k_h {
                let Some(y) = self.in_row(oy, i) else {
                    zeros(patches, span);
                    continue;
                };
                let line = &image[y * self.in_w * c..(y + 1) * self.in_w * c];
                if let Some(x0) = whole_row {
                    push_span(patches, &line[x0 * c..x0 * c + span]);
                    continue;
                }
                for j in 0..self.k_w {
                    match self.in_col(ox, j) {
                        Some(x) => push_span(patches, &line[x * c..(x + 1) * c]),
                        None => zeros(patches, c),
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

/// `dst.extend_from_slice(src)`, with the short spans of few-channel inputs (a first
/// convolution's 3 taps of 1 channel) copied inline rather than by a `memcpy` call each.
#[inline(always)]
fn push_span<T: Copy>(dst: &mut Vec<T>, src: &[T]) {
    /// Appends `N` elements, a length the compiler knows.
    #[inline(always)]
    fn fixed<const N: usize, T: Copy>(dst: &mut Vec<T>, src: &[T]) {
        dst.extend_from_slice(&src[..N]);
    }
    match src.len() {
        1 => fixed::<1, T>(dst, src),
        2 => fixed::<2, T>(dst, src),
        3 => fixed::<3, T>(dst, src),
        4 => fixed::<4, T>(dst, src),
        6 => fixed::<6, T>(dst, src),
        8 => fixed::<8, T>(dst, src),
        9 => fixed::<9, T>(dst, src),
        12 => fixed::<12, T>(dst, src),
        _ => dst.extend_from_slice(src),
    }
}

/// Threads over pieces of the work, and the threads left for each product.
fn split_threads(work: usize, units: usize, threads: usize) -> (usize, usize) {
    let outer = threads_for(work, MIN_PRODUCT_WORK, units, threads);
    (outer, (threads / outer).max(1))
}

/// `output = conv2d(input, filter)`, NHWC × HWIO → NHWC, each output pixel then finished
/// by `finish` (if any) right after the product writes it, on the thread that wrote it:
/// block by block while the block is in cache, or (the implicit path) tile by tile while
/// the sums are in registers.
pub(super) fn conv2d_forward<T: GemmElement>(
    g: &Geometry,
    input: &[T],
    filter: &[T],
    threads: usize,
    finish: Option<BiasActivation<'_, T>>,
) -> Vec<T> {
    let epilogue = |_: Range<usize>, pixels: &mut [T]| {
        if let Some(f) = &finish {
            f.apply(pixels)
        }
    };
    let (k, oc) = (g.patch_len(), g.out_c);
    if k == 0 {
        // No terms: every sum is zero, and a fused step still adds its bias (activation).
        let mut out = zeroed::<T>(g.pixels() * oc);
        epilogue(0..g.pixels(), &mut out);
        return out;
    }
    if g.reads_taps_in_place() {
        let padded = g.padded_input(input);
        let offsets = g.tap_offsets(&padded);
        let block = (DIRECT_BLOCK_ELEMENTS / oc).max(4);
        let outer = threads_for(g.pixels() * k * oc, MIN_PRODUCT_WORK, g.pixels(), threads);
        return zeroed_blocks(g.pixels(), oc, block, outer, |starts, rows, dst| {
            direct_block(g, &padded, &offsets, filter, rows.clone(), starts, dst);
            epilogue(rows, dst);
        });
    }
    if g.runs_implicit::<T>() {
        let padded = g.padded_input(input);
        let rows = g.batch * g.out_h;
        let outer = threads_for(g.pixels() * k * oc, MIN_PRODUCT_WORK, rows, threads);
        return implicit::forward(g, &padded, filter, outer, finish);
    }
    let block = block_rows(k).min((OUTPUT_BLOCK_ELEMENTS / oc.max(1)).max(16));
    let (outer, inner) = split_threads(
        g.pixels().saturating_mul(k).saturating_mul(oc),
        g.pixels(),
        threads,
    );
    zeroed_blocks(g.pixels(), oc, block, outer, |patches, rows, dst| {
        let a = g.patch_rows(input, rows.clone(), patches);
        let dims = GemmDims {
            m: rows.len(),
            n: oc,
            k,
            trans_a: false,
            trans_b: false,
        };
        gemm(dims, a, filter, dst, inner);
        epilogue(rows, dst);
    })
}

/// Gradient of conv2d with respect to its input: `col2im(dy · filterᵀ)`.
pub(super) fn conv2d_backprop_input<T: GemmElement>(
    g: &Geometry,
    filter: &[T],
    dy: &[T],
    threads: usize,
) -> Vec<T> {
    let (k, oc) = (g.patch_len(), g.out_c);
    if g.backprop_input_runs_implicit::<T>() {
        let outer = threads_for(g.pixels() * k * oc, MIN_PRODUCT_WORK, g.batch, threads);
        return implicit::backprop_input(g, filter, dy, outer);
    }
    let per_image = g.out_h * g.out_w;
    let block = block_rows(k);
    let (outer, inner) = split_threads(
        g.pixels().saturating_mul(k).saturating_mul(oc),
        g.batch,
        threads,
    );
    zeroed_units(g.batch, g.in_image(), outer, |images, chunk| {
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
    })
}

/// Gradient of conv2d with respect to its filter: `Σ patchesᵀ · dy`, one partial sum
/// per thread; short patches are read in place (`taps.rs`).
pub(super) fn conv2d_backprop_filter<T: GemmElement>(
    g: &Geometry,
    input: &[T],
    dy: &[T],
    threads: usize,
) -> Vec<T> {
    let (k, oc) = (g.patch_len(), g.out_c);
    let size = k * oc;
    if size == 0 {
        return Vec::new();
    }
    if g.reads_taps_in_place() {
        let padded = g.padded_input(input);
        let offsets = g.tap_offsets(&padded);
        let outer = threads_for(g.pixels() * size, MIN_PRODUCT_WORK, g.pixels(), threads);
        return sum_of_parts(size, outer, outer, |part, acc: &mut [T]| {
            let pixels = split_range(g.pixels(), part, outer);
            direct_filter_grad(g, &padded, &offsets, dy, pixels, acc);
        });
    }
    if g.runs_implicit::<T>() {
        let padded = g.padded_input(input);
        let outer = threads_for(g.pixels() * size, MIN_PRODUCT_WORK, g.batch, threads);
        return implicit::backprop_filter(g, &padded, dy, outer);
    }
    let block = block_rows(k);
    let (outer, inner) = split_threads(g.pixels().saturating_mul(size), g.pixels(), threads);
    sum_of_parts(size, outer, outer, |part, acc: &mut [T]| {
        let (mut patches, mut tmp) = (Vec::new(), zeroed::<T>(size));
        let rows = split_range(g.pixels(), part, outer);
        for start in rows.clone().step_by(block) {
            let end = (start + block).min(rows.end);
            let a = g.patch_rows(input, start..end, &mut patches);
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
    })
}

pub(super) fn conv2d_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let window = nhwc_window(ctx.node)?;
    with_dtype!(signed, ctx.input_dtype(0), T => kernel_fn(move |k: &mut KernelCtx<'_>| {
        let (input, filter) = (k.input(0)?, k.input(1)?);
        let g = runtime_geometry::<T>(&window, input.shape(), filter.shape())?;
        let out = conv2d_forward(&g, input.as_slice::<T>()?, filter.as_slice::<T>()?, g.conv_threads(k), None);
        k.push_output(Tensor::from_parts(g.out_shape(), out));
        Ok(())
    }))
}

/// `Conv2D` and the BiasAdd (and activation) that reads it as one step (built by the
/// plan like TensorFlow's remapper; see `fusion.rs`): each block of output pixels gets
/// its bias and activation right after the product writes it. Inputs: the Conv2D's input
/// and filter, then the bias; `product` is the Conv2D node and `dtype` its type.
pub(super) fn fused_conv2d_kernel(
    product: &Node,
    dtype: DType,
    activation: Activation,
) -> KernelResult {
    let window = nhwc_window(product)?;
    let product_name = product.name().to_string();
    with_dtype!(signed, dtype, T => kernel_fn(move |k: &mut KernelCtx<'_>| {
        let (input, filter, bias) = (k.input(0)?, k.input(1)?, k.input(2)?);
        let in_product = |e: Error| Error::invalid(format!("in its product {product_name}: {e}"));
        let g = runtime_geometry::<T>(&window, input.shape(), filter.shape()).map_err(in_product)?;
        if bias.shape() != [g.out_c] {
            return Err(Error::invalid(format!(
                "Must provide as many biases as the channel dimension of the input tensor: {:?} vs. {:?}",
                bias.shape(),
                g.out_shape()
            )));
        }
        let (input, filter, bias) = (input.as_slice::<T>()?, filter.as_slice::<T>()?, bias.as_slice::<T>()?);
        let threads = g.conv_threads(k);
        let out = conv2d_forward(&g, input, filter, threads, Some(BiasActivation { bias, activation }));
        k.push_output(Tensor::from_parts(g.out_shape(), out));
        Ok(())
    }))
}

pub(super) fn conv2d_backprop_input_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let window = nhwc_window(ctx.node)?;
    with_dtype!(signed, ctx.input_dtype(1), T => kernel_fn(move |k: &mut KernelCtx<'_>| {
        let (sizes, filter, dy) = (k.input(0)?, k.input(1)?, k.input(2)?);
        let sizes = runtime_sizes(sizes, "input_sizes")?;
        let [n, h, w, c] = match sizes.len() {
            4 => [sizes[0], sizes[1], sizes[2], sizes[3]],
            2 => [dy.shape().first().copied().unwrap_or(0), sizes[0], sizes[1], filter.shape().get(2).copied().unwrap_or(0)],
            _ => return Err(Error::invalid(format!("input_sizes must have 4 elements (or 2 spatial sizes), got {sizes:?}"))),
        };
        let g = runtime_geometry::<T>(&window, &[n, h, w, c], filter.shape())?;
        check_dy(&g, dy)?;
        let dx = conv2d_backprop_input(&g, filter.as_slice::<T>()?, dy.as_slice::<T>()?, g.conv_threads(k));
        k.push_output(Tensor::from_parts(vec![n, h, w, c], dx));
        Ok(())
    }))
}

pub(super) fn conv2d_backprop_filter_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let window = nhwc_window(ctx.node)?;
    with_dtype!(float, ctx.input_dtype(0), T => kernel_fn(move |k: &mut KernelCtx<'_>| {
        let (input, sizes, dy) = (k.input(0)?, k.input(1)?, k.input(2)?);
        let sizes = runtime_sizes(sizes, "filter_sizes")?;
        let g = runtime_geometry::<T>(&window, input.shape(), &sizes)?;
        check_dy(&g, dy)?;
        let dw = conv2d_backprop_filter(&g, input.as_slice::<T>()?, dy.as_slice::<T>()?, g.conv_threads(k));
        k.push_output(Tensor::from_parts(sizes, dw));
        Ok(())
    }))
}

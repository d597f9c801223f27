//! Spatial pooling over NHWC images: MaxPool, AvgPool, their gradients MaxPoolGrad and
//! AvgPoolGrad, and MaxPoolGradGrad (the gradient of MaxPoolGrad). Windows are clipped to
//! the input (SAME padding never contributes a value); AvgPool divides by the number of
//! input elements in each window, and MaxPoolGrad routes each gradient to the first
//! maximum of its window in row-major order, as TensorFlow's CPU kernels do;
//! MaxPoolGradGrad reads the gradient at that same element.

pub(crate) mod fusion;

use super::op_with_attrs;
use super::window::{DataFormat, Geometry, Window2d};
use crate::device::parallel::{threads_for, written_units, zeroed_blocks, MIN_LOOP_WORK};
use crate::graph::{Graph, Node, Output, TensorSpec};
use crate::ops::math::cwise_grad::{relu6_grad, relu_grad};
use crate::ops::math::{check_family, Family};
use crate::ops::{kernel_fn, GradCtx, InferCtx, KernelBuildCtx, KernelCtx};
use crate::ops::{InferResult, KernelResult};
use crate::tensor::{DType, Dim, Element, Float, Number, PartialShape, Tensor};
use crate::{with_dtype, Error, Result};
use fusion::ActivationGrad;
use std::mem::MaybeUninit;
use std::ops::Range;
use std::sync::Mutex;

/// Output dims (batch, height, width, channels) of a pooling window over `input`.
fn pooled_dims(
    window: &Window2d,
    ksize: [usize; 2],
    input: [Dim; 4],
) -> std::result::Result<[Dim; 4], String> {
    let [n, h, w, c] = input;
    Ok([
        n,
        window.out_dim(0, h, Some(ksize[0]))?,
        window.out_dim(1, w, Some(ksize[1]))?,
        c,
    ])
}

fn infer_pool(ctx: &InferCtx<'_>, family: Family) -> InferResult {
    ctx.expect_inputs(1)?;
    let dt = check_family(ctx, 0, family)?;
    ctx.check_t_attr(dt)?;
    let (window, ksize) = Window2d::pool(ctx.attrs())?;
    let out = pooled_dims(&window, ksize, window.nhwc_dims(ctx.shape(0), "input")?)?;
    Ok(vec![TensorSpec::new(
        dt,
        PartialShape::new(window.format.shape(out).to_vec()),
    )])
}

fn infer_max_pool(ctx: &InferCtx<'_>) -> InferResult {
    infer_pool(ctx, Family::Number)
}

fn infer_avg_pool(ctx: &InferCtx<'_>) -> InferResult {
    infer_pool(ctx, Family::Float)
}

/// Checks that `grad` (and `orig_output`) have the pooled shape of `input`.
fn check_pooled(
    ctx: &InferCtx<'_>,
    window: &Window2d,
    ksize: [usize; 2],
    input: [Dim; 4],
    grads: &[usize],
) -> std::result::Result<(), String> {
    let want = PartialShape::new(
        window
            .format
            .shape(pooled_dims(window, ksize, input)?)
            .to_vec(),
    );
    for &i in grads {
        want.merge(ctx.shape(i)).map_err(|_| {
            format!(
                "input {i} has shape {}, but pooling the input gives shape {want}",
                ctx.shape(i)
            )
        })?;
    }
    Ok(())
}

fn infer_max_pool_grad(ctx: &InferCtx<'_>) -> InferResult {
    ctx.expect_inputs(3)?;
    let dt = ctx.same_dtype()?;
    check_family(ctx, 0, Family::Number)?;
    ctx.check_t_attr(dt)?;
    let (window, ksize) = Window2d::pool(ctx.attrs())?;
    let input = window.nhwc_dims(ctx.shape(0), "orig_input")?;
    check_pooled(ctx, &window, ksize, input, &[1, 2])?;
    Ok(vec![ctx.input(0).clone()])
}

fn infer_max_pool_grad_grad(ctx: &InferCtx<'_>) -> InferResult {
    ctx.expect_inputs(3)?;
    let dt = ctx.same_dtype()?;
    check_family(ctx, 0, Family::Number)?;
    ctx.check_t_attr(dt)?;
    let (window, ksize) = Window2d::pool(ctx.attrs())?;
    let input = window.nhwc_dims(ctx.shape(0), "orig_input")?;
    check_pooled(ctx, &window, ksize, input, &[1])?;
    ctx.shape(0).merge(ctx.shape(2)).map_err(|_| {
        format!(
            "grad has shape {}, but orig_input has shape {}",
            ctx.shape(2),
            ctx.shape(0)
        )
    })?;
    let pooled = window.format.shape(pooled_dims(&window, ksize, input)?);
    let out = PartialShape::new(pooled.to_vec()).merge(ctx.shape(1))?;
    Ok(vec![TensorSpec::new(dt, out)])
}

fn infer_avg_pool_grad(ctx: &InferCtx<'_>) -> InferResult {
    ctx.expect_inputs(2)?;
    if ctx.dtype(0) != DType::Int32 {
        return Err(format!(
            "orig_input_shape must be int32, got {}",
            ctx.dtype(0)
        ));
    }
    let dt = check_family(ctx, 1, Family::Float)?;
    ctx.check_t_attr(dt)?;
    let (window, ksize) = Window2d::pool(ctx.attrs())?;
    let grad = window.nhwc_dims(ctx.shape(1), "grad")?;
    let input = match ctx.constant_ints(0) {
        Some(v) if v.len() == 4 => {
            let dims = window.format.axes().map(|a| usize::try_from(v[a]).ok());
            if dims.iter().any(Option::is_none) {
                return Err(format!("orig_input_shape must be non-negative, got {v:?}"));
            }
            dims
        }
        Some(v) => return Err(format!("orig_input_shape must have 4 elements, got {v:?}")),
        None => [grad[0], None, None, grad[3]],
    };
    check_pooled(ctx, &window, ksize, input, &[1])?;
    Ok(vec![TensorSpec::new(
        dt,
        PartialShape::new(window.format.shape(input).to_vec()),
    )])
}

/// Resolves a pooling node's attrs once, refusing NCHW as TensorFlow's CPU kernels do.
fn nhwc_pool(node: &Node) -> std::result::Result<(Window2d, [usize; 2]), String> {
    let (window, ksize) = Window2d::pool(node.attrs())?;
    if window.format != DataFormat::Nhwc {
        return Err(format!(
            "Default {} only supports NHWC on device type CPU",
            node.op_type()
        ));
    }
    Ok((window, ksize))
}

/// Runtime geometry of pooling an NHWC input of `shape`.
fn geometry(window: &Window2d, ksize: [usize; 2], shape: &[usize], what: &str) -> Result<Geometry> {
    let dims = <[usize; 4]>::try_from(shape)
        .map_err(|_| Error::invalid(format!("{what} must be 4-dimensional: {shape:?}")))?;
    Geometry::new(window, dims, ksize, dims[3]).map_err(Error::invalid)
}

/// Errors unless `t` has the pooled output shape.
fn check_shape(g: &Geometry, t: &Tensor, what: &str) -> Result<()> {
    if t.shape() != g.out_shape().as_slice() {
        return Err(Error::invalid(format!(
            "{what} has shape {:?}, but pooling the input gives shape {:?}",
            t.shape(),
            g.out_shape()
        )));
    }
    Ok(())
}

/// Calls `f(output_element_offset, window_rows, window_cols)` for every output pixel of
/// every image, one output row per work unit, spread over threads; `f` fills the
/// `channels` outputs of one pixel.
fn pool_forward<T: Number>(
    g: &Geometry,
    threads: usize,
    f: impl Fn(&mut [T], usize, Range<usize>, Range<usize>) + Sync,
) -> Vec<T> {
    let c = g.in_c;
    let outer = threads_for(g.work(), MIN_LOOP_WORK, g.batch * g.out_h, threads);
    // An image's rows at a time, each zeroed right before it is filled (in cache).
    let rows = g.batch * g.out_h;
    zeroed_blocks(rows, g.out_w * c, g.out_h, outer, |(), units, chunk| {
        for (u, orow) in units.zip(chunk.chunks_exact_mut(g.out_w * c)) {
            let (b, oy) = (u / g.out_h, u % g.out_h);
            for (ox, o) in orow.chunks_exact_mut(c).enumerate() {
                f(o, b, g.row_taps(oy), g.col_taps(ox));
            }
        }
    })
}

impl Geometry {
    /// Loads and compares of a pooling pass (forward or backward) over every window.
    fn work(&self) -> usize {
        (self.batch * self.out_h * self.out_w * self.in_c).saturating_mul(self.k_h * self.k_w)
    }

    /// Threads for a pooling pass: the session's intra-op threads when it is worth splitting.
    fn pool_threads(&self, k: &KernelCtx<'_>) -> usize {
        k.threads_for_work(self.work(), MIN_LOOP_WORK)
    }
}

/// `out[c] = max(out[c], src[c])`, keeping `out[c]` unless `src[c]` is greater (NaN never
/// is), as a select the compiler turns into vector compares and blends.
#[inline(always)]
fn max_into<T: Number>(out: &mut [T], src: &[T]) {
    for (d, &v) in out.iter_mut().zip(src) {
        *d = if v > *d { v } else { *d };
    }
}

/// The rows `rows` of one image, each cut to the columns `cols` of a window: one slice of
/// `cols.len() * channels` elements per row.
#[inline(always)]
fn window_rows<'a, T>(
    g: &Geometry,
    image: &'a [T],
    rows: Range<usize>,
    cols: &Range<usize>,
) -> impl Iterator<Item = &'a [T]> {
    let (c, w, lo, hi) = (g.in_c, g.in_w, cols.start, cols.end);
    rows.map(move |y| &image[(y * w + lo) * c..(y * w + hi) * c])
}

fn max_pool<T: Number>(g: &Geometry, x: &[T], threads: usize) -> Vec<T> {
    let outer = threads_for(g.work(), MIN_LOOP_WORK, g.batch * g.out_h, threads);
    // An image's rows at a time, each zeroed right before it is filled (in cache).
    let rows = g.batch * g.out_h;
    zeroed_blocks(
        rows,
        g.out_w * g.in_c,
        g.out_h,
        outer,
        |(), units, chunk| {
            for (u, orow) in units.zip(chunk.chunks_exact_mut(g.out_w * g.in_c)) {
                let (b, oy) = (u / g.out_h, u % g.out_h);
                let image = &x[b * g.in_image()..(b + 1) * g.in_image()];
                max_pool_row(g, image, oy, orow);
            }
        },
    )
}

/// Output row `oy` of a max pooling of one image into `orow`, compiled for AVX2 where
/// the CPU has it.
fn max_pool_row<T: Number>(g: &Geometry, image: &[T], oy: usize, orow: &mut [T]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        return unsafe { max_pool_row_avx2(g, image, oy, orow) };
    }
    max_pool_row_body::<16, T>(g, image, oy, orow)
}

/// [`max_pool_row_body`] compiled with AVX2: 32 channels are four registers.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn max_pool_row_avx2<T: Number>(g: &Geometry, image: &[T], oy: usize, orow: &mut [T]) {
    max_pool_row_body::<32, T>(g, image, oy, orow)
}

/// The body of [`max_pool_row`]: each window's maximum `W` channels at a time, kept in
/// registers over the window's taps, then the channels left over. Every output starts
/// at the lowest value and takes a tap only when it is greater (NaN never is), in the
/// taps' row-major order, whatever `W`.
#[inline(always)]
fn max_pool_row_body<const W: usize, T: Number>(
    g: &Geometry,
    image: &[T],
    oy: usize,
    orow: &mut [T],
) {
    let c = g.in_c;
    let window_rows = g.row_taps(oy);
    // Where each of the window's rows starts in `image`.
    let line = |y: usize| y * g.in_w * c;
    for (ox, o) in orow.chunks_exact_mut(c.max(1)).enumerate() {
        let cols = g.col_taps(ox);
        let mut ch = 0;
        while ch + W <= c {
            let mut best = [T::LOWEST; W];
            for y in window_rows.clone() {
                for at in cols.clone().map(|xx| line(y) + xx * c + ch) {
                    let src: &[T; W] = image[at..at + W].try_into().expect("W channels");
                    max_into(&mut best, src);
                }
            }
            o[ch..ch + W].copy_from_slice(&best);
            ch += W;
        }
        let rest = &mut o[ch..];
        rest.fill(T::LOWEST);
        for y in window_rows.clone() {
            for at in cols.clone().map(|xx| line(y) + xx * c) {
                max_into(rest, &image[at + ch..at + c]);
            }
        }
    }
}

fn avg_pool<T: Float>(g: &Geometry, x: &[T], threads: usize) -> Vec<T> {
    let c = g.in_c;
    pool_forward(g, threads, |o: &mut [T], b, rows, cols| {
        let image = &x[b * g.in_image()..(b + 1) * g.in_image()];
        let count = T::lit((rows.len() * cols.len()) as f64);
        for line in window_rows(g, image, rows, &cols) {
            for src in line.chunks_exact(c) {
                o.iter_mut().zip(src).for_each(|(d, &v)| *d = *d + v);
            }
        }
        o.iter_mut().for_each(|d| *d = *d / count);
    })
}

/// MaxPoolGrad, passed through an activation's gradient: each output gradient goes to the
/// first maximum of its window (a tap replaces the best only when greater, so ties and
/// NaNs keep the earlier tap), and each element `d` of the input gradient becomes
/// `act(d, features[i])` once complete (`act(d, _) = d` for a plain MaxPoolGrad; the
/// activation gradients fused into it give `act(+0, _) = +0`). Split over threads by image
/// (windows of one image may overlap, images do not); see [`max_pool_grad_image`].
///
/// With `channel_sums`, also returns the input gradient summed over every axis but the
/// channels (a BiasAddGrad of it, fused): each thread adds the pixels of its images in
/// order as each image is complete (still in cache; see [`add_pixels`]), from zero, and
/// the threads' sums are added in thread order. That is BiasAddGrad's order wherever it splits the pixels where
/// the images are split (on one thread, always).
fn max_pool_grad<T: Number>(
    g: &Geometry,
    x: &[T],
    dy: &[T],
    features: &[T],
    act: impl Fn(T, T) -> T + Sync,
    channel_sums: bool,
    threads: usize,
) -> (Vec<T>, Option<Vec<T>>) {
    let outer = threads_for(g.work(), MIN_LOOP_WORK, g.batch, threads);
    let (image, pooled, c) = (g.in_image(), g.out_h * g.out_w * g.in_c, g.in_c);
    let tiled = g.windows_tile();
    // Each thread's channel sums, by its first image.
    let parts: Mutex<Vec<(usize, Vec<T>)>> = Mutex::new(Vec::new());
    let write = |images: Range<usize>, dimgs: &mut [MaybeUninit<T>]| {
        let first = images.start;
        let mut sums = channel_sums.then(|| vec![T::ZERO; c]);
        for (b, dimg) in images.zip(dimgs.chunks_exact_mut(image.max(1))) {
            if !tiled {
                // Zeroed right before its gradient is added up (in cache).
                dimg.fill(MaybeUninit::new(T::ZERO));
            }
            let (at, out) = (b * image..(b + 1) * image, b * pooled..(b + 1) * pooled);
            let image = ImageIn {
                x: &x[at.clone()],
                dy: &dy[out],
                features: &features[at],
            };
            let sums = sums.as_deref_mut();
            // SAFETY: `dimg` was zeroed unless the windows tile the image.
            unsafe { max_pool_grad_image(g, image, &act, dimg, tiled, sums) };
        }
        if let Some(sums) = sums {
            parts
                .lock()
                .expect("no thread panics holding it")
                .push((first, sums));
        }
    };
    // SAFETY: `write` writes every element of each image: by its window where the windows
    // tile the image, else by the zeroing.
    let dx = unsafe { written_units(g.batch, image, outer, write) };
    let sums = channel_sums.then(|| {
        let mut parts = parts.into_inner().expect("no thread panicked holding it");
        parts.sort_by_key(|&(first, _)| first);
        let mut parts = parts.into_iter().map(|(_, sums)| sums);
        let total = parts.next().unwrap_or_else(|| vec![T::ZERO; c]);
        parts.fold(total, |mut total, part| {
            total.iter_mut().zip(part).for_each(|(t, v)| *t = t.add(v));
            total
        })
    });
    (dx, sums)
}

/// `values` seen as possibly uninitialized: writing initialized values through it (all
/// that this file does) keeps it initialized.
#[cfg(test)]
fn as_uninit<T>(values: &mut [T]) -> &mut [MaybeUninit<T>] {
    // SAFETY: `MaybeUninit<T>` has the layout of `T`, and nothing writes an
    // uninitialized value through the view.
    unsafe { &mut *(values as *mut [T] as *mut [MaybeUninit<T>]) }
}

impl Geometry {
    /// Whether the pooling windows tile the input: each input element lies in exactly
    /// one window (2×2 windows with stride 2, VALID over even sizes or SAME over any:
    /// windows that start at the first element, side by side, clipped at the far edge).
    fn windows_tile(&self) -> bool {
        self.stride == [self.k_h, self.k_w]
            && self.pad == [0, 0]
            && self.out_h * self.k_h >= self.in_h
            && self.out_w * self.k_w >= self.in_w
    }
}

/// One image's inputs to [`max_pool_grad`]: the pooling's input, the gradient of its
/// output, and the features of the activation whose gradient is fused.
#[derive(Clone, Copy)]
struct ImageIn<'a, T> {
    x: &'a [T],
    dy: &'a [T],
    features: &'a [T],
}

/// One image of [`max_pool_grad`] into its gradient `dimg`, then its pixels added into
/// `sums` if given, compiled for AVX-512 or AVX2 where the CPU has it.
///
/// # Safety
/// `dimg` is initialized (zeroed) unless `tiled`, and `tiled` only where the windows
/// tile the image.
unsafe fn max_pool_grad_image<T: Number>(
    g: &Geometry,
    image: ImageIn<'_, T>,
    act: &impl Fn(T, T) -> T,
    dimg: &mut [MaybeUninit<T>],
    tiled: bool,
    sums: Option<&mut [T]>,
) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512 F, checked just above; the caller vouches
            // for `dimg`.
            return unsafe { max_pool_grad_image_avx512(g, image, act, dimg, tiled, sums) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above; the caller vouches for
            // `dimg`.
            return unsafe { max_pool_grad_image_avx2(g, image, act, dimg, tiled, sums) };
        }
    }
    // SAFETY: the caller vouches for `dimg`.
    unsafe { max_pool_grad_image_body::<8, T>(g, image, act, dimg, tiled, sums) }
}

/// [`max_pool_grad_image_body`] compiled with AVX-512: 32 channels are two registers.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn max_pool_grad_image_avx512<T: Number>(
    g: &Geometry,
    image: ImageIn<'_, T>,
    act: &impl Fn(T, T) -> T,
    dimg: &mut [MaybeUninit<T>],
    tiled: bool,
    sums: Option<&mut [T]>,
) {
    // SAFETY: the caller vouches for `dimg`.
    unsafe { max_pool_grad_image_body::<32, T>(g, image, act, dimg, tiled, sums) }
}

/// [`max_pool_grad_image_body`] compiled with AVX2: 16 channels are two registers.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn max_pool_grad_image_avx2<T: Number>(
    g: &Geometry,
    image: ImageIn<'_, T>,
    act: &impl Fn(T, T) -> T,
    dimg: &mut [MaybeUninit<T>],
    tiled: bool,
    sums: Option<&mut [T]>,
) {
    // SAFETY: the caller vouches for `dimg`.
    unsafe { max_pool_grad_image_body::<16, T>(g, image, act, dimg, tiled, sums) }
}

/// The body of [`max_pool_grad_image`]: every window `W` channels at a time, then 8, then
/// one. Where windows cannot overlap (strides at least the window), each gradient element
/// is final when its window writes it and goes through `act` there; where they tile the
/// image, that write is the element's only one (nothing is read back, so `dimg` need
/// not be zeroed first); otherwise the windows add into the image, which then goes
/// through `act` in one pass. Results do not depend on `W`.
///
/// # Safety
/// As for [`max_pool_grad_image`].
#[inline(always)]
unsafe fn max_pool_grad_image_body<const W: usize, T: Number>(
    g: &Geometry,
    image: ImageIn<'_, T>,
    act: &impl Fn(T, T) -> T,
    dimg: &mut [MaybeUninit<T>],
    tiled: bool,
    sums: Option<&mut [T]>,
) {
    let ImageIn { x, dy, features } = image;
    let disjoint = g.stride[0] >= g.k_h && g.stride[1] >= g.k_w;
    let c = g.in_c;
    for oy in 0..g.out_h {
        let rows = g.row_taps(oy);
        for ox in 0..g.out_w {
            let cols = g.col_taps(ox);
            if rows.is_empty() || cols.is_empty() {
                continue;
            }
            let grad = &dy[(oy * g.out_w + ox) * c..(oy * g.out_w + ox + 1) * c];
            let w = Window {
                g,
                rows: rows.clone(),
                cols,
                x,
                grad,
                features,
            };
            // SAFETY (each call): as for this function.
            unsafe {
                if tiled {
                    let ch = w.grad::<W, true, true>(0, act, dimg);
                    let ch = w.grad::<8, true, true>(ch, act, dimg);
                    w.grad::<1, true, true>(ch, act, dimg);
                } else if disjoint {
                    let ch = w.grad::<W, true, false>(0, act, dimg);
                    let ch = w.grad::<8, true, false>(ch, act, dimg);
                    w.grad::<1, true, false>(ch, act, dimg);
                } else {
                    let ch = w.grad::<W, false, false>(0, act, dimg);
                    let ch = w.grad::<8, false, false>(ch, act, dimg);
                    w.grad::<1, false, false>(ch, act, dimg);
                }
            }
        }
    }
    if !disjoint {
        dimg.iter_mut().zip(features).for_each(|(d, &f)| {
            // SAFETY: `dimg` was zeroed (the windows overlap, so they do not tile it).
            *d = MaybeUninit::new(act(unsafe { d.assume_init() }, f))
        });
    }
    if let Some(sums) = sums {
        // SAFETY: every element of `dimg` is written by now.
        let ch = unsafe { add_pixels::<W, T>(dimg, c, 0, sums) };
        // SAFETY: as above.
        let ch = unsafe { add_pixels::<8, T>(dimg, c, ch, sums) };
        // SAFETY: as above.
        unsafe { add_pixels::<1, T>(dimg, c, ch, sums) };
    }
}

/// Adds every pixel of `image` (`c` channels each) into `sums`, channels `ch..` `W` at a
/// time while `W` are left, in pixel order with the sums in registers; returns the first
/// channel not done. Each channel's sum takes the pixels in order whatever `W`.
///
/// # Safety
/// `image` is initialized.
#[inline(always)]
unsafe fn add_pixels<const W: usize, T: Number>(
    image: &[MaybeUninit<T>],
    c: usize,
    mut ch: usize,
    sums: &mut [T],
) -> usize {
    while ch + W <= c {
        let mut acc: [T; W] = sums[ch..ch + W].try_into().expect("W channels");
        for pixel in image.chunks_exact(c) {
            let values: &[MaybeUninit<T>; W] = pixel[ch..ch + W].try_into().expect("W channels");
            for i in 0..W {
                // SAFETY: the caller vouches for `image`.
                acc[i] = acc[i].add(unsafe { values[i].assume_init() });
            }
        }
        sums[ch..ch + W].copy_from_slice(&acc);
        ch += W;
    }
    ch
}

/// One pooling window of one image, for [`max_pool_grad_image_body`]: its input rows and
/// columns (inside the image), the image and its features, and the window's gradient.
struct Window<'a, T> {
    g: &'a Geometry,
    rows: Range<usize>,
    cols: Range<usize>,
    x: &'a [T],
    grad: &'a [T],
    features: &'a [T],
}

impl<T: Number> Window<'_, T> {
    /// Adds the window's gradient to `dimg` at its first maximum, channels `ch..` `W` at a
    /// time while `W` are left, with the maximum and its tap in registers; returns the
    /// first channel not done. `FINAL`: `dimg` gets nothing from other windows, so each
    /// element goes through `act` as it is written. `TILED`: nor has it before, so each
    /// element is written from zero without being read.
    ///
    /// # Safety
    /// Unless `TILED`, the window's elements of `dimg` are initialized.
    #[inline(always)]
    unsafe fn grad<const W: usize, const FINAL: bool, const TILED: bool>(
        &self,
        mut ch: usize,
        act: &impl Fn(T, T) -> T,
        dimg: &mut [MaybeUninit<T>],
    ) -> usize {
        let (c, width) = (self.g.in_c, self.g.in_w);
        while ch + W <= c {
            let tap = |y: usize, xx: usize| (y * width + xx) * c + ch;
            let first = tap(self.rows.start, self.cols.start);
            let mut best: [T; W] = self.x[first..first + W].try_into().expect("W channels");
            let mut arg = [0u32; W];
            let mut t = 0u32;
            for y in self.rows.clone() {
                for at in self.cols.clone().map(|xx| tap(y, xx)) {
                    let src: &[T; W] = self.x[at..at + W].try_into().expect("W channels");
                    for i in 0..W {
                        // (Tap 0 is never greater than itself.) The tap is picked
                        // with masks, not `if`: LLVM turned that `if` into a masked
                        // store of `arg` to the stack, reloaded whole after the loop,
                        // a store-forwarding stall that held 38 % of the kernel's
                        // samples (conv1's in `train/cnn_step`, 1 thread: 915–957 →
                        // 809–840 µs, per-node minima).
                        let greater = src[i] > best[i];
                        let take = 0u32.wrapping_sub(u32::from(greater));
                        arg[i] = (arg[i] & !take) | (t & take);
                        best[i] = if greater { src[i] } else { best[i] };
                    }
                    t += 1;
                }
            }
            let grad: &[T; W] = self.grad[ch..ch + W].try_into().expect("W channels");
            let mut t = 0u32;
            for y in self.rows.clone() {
                for at in self.cols.clone().map(|xx| tap(y, xx)) {
                    let dst: &mut [MaybeUninit<T>; W] =
                        (&mut dimg[at..at + W]).try_into().expect("W channels");
                    let feats: &[T; W] = self.features[at..at + W].try_into().expect("W channels");
                    for i in 0..W {
                        // SAFETY: the caller vouches for the element unless `TILED`.
                        let old = if TILED {
                            T::ZERO
                        } else {
                            unsafe { dst[i].assume_init() }
                        };
                        // Adding zero keeps `d`: it starts at +0 and no sum makes it -0.
                        let d = old.add(if arg[i] == t { grad[i] } else { T::ZERO });
                        dst[i] = MaybeUninit::new(if FINAL { act(d, feats[i]) } else { d });
                    }
                    t += 1;
                }
            }
            ch += W;
        }
        ch
    }
}

/// For every output pixel and channel, `grad` at the first maximum of its window of `x`
/// (row-major, as [`max_pool_grad`] picks it): MaxPoolGradGrad, the adjoint of
/// MaxPoolGrad in its gradient.
fn max_pool_grad_grad<T: Number>(g: &Geometry, x: &[T], grad: &[T], threads: usize) -> Vec<T> {
    let c = g.in_c;
    pool_forward(g, threads, |o: &mut [T], b, rows, cols| {
        let image = b * g.in_image()..(b + 1) * g.in_image();
        let (xs, gs) = (&x[image.clone()], &grad[image]);
        for (ch, d) in o.iter_mut().enumerate() {
            let mut best: Option<(T, usize)> = None;
            for y in rows.clone() {
                for xx in cols.clone() {
                    let i = (y * g.in_w + xx) * c + ch;
                    if best.is_none_or(|(v, _)| xs[i] > v) {
                        best = Some((xs[i], i));
                    }
                }
            }
            if let Some((_, i)) = best {
                *d = gs[i];
            }
        }
    })
}

/// AvgPoolGrad: each tap of a window gets the window's gradient over its size, split over
/// threads by image (windows of one image overlap, images do not).
fn avg_pool_grad<T: Float>(g: &Geometry, dy: &[T], threads: usize) -> Vec<T> {
    let c = g.in_c;
    let outer = threads_for(g.work(), MIN_LOOP_WORK, g.batch, threads);
    // An image at a time, zeroed right before its gradient is added up (in cache).
    zeroed_blocks(
        g.batch,
        g.in_image(),
        1,
        outer,
        |share: &mut Vec<T>, images, dimg| {
            for b in images {
                for oy in 0..g.out_h {
                    for ox in 0..g.out_w {
                        let (rows, cols) = (g.row_taps(oy), g.col_taps(ox));
                        let at = ((b * g.out_h + oy) * g.out_w + ox) * c;
                        // The pixel's gradient over the window's size, divided once.
                        let count = T::lit((rows.len() * cols.len()) as f64);
                        share.clear();
                        share.extend(dy[at..at + c].iter().map(|&gv| gv / count));
                        for y in rows {
                            let line = &mut dimg
                                [(y * g.in_w + cols.start) * c..(y * g.in_w + cols.end) * c];
                            for dst in line.chunks_exact_mut(c) {
                                dst.iter_mut()
                                    .zip(share.iter())
                                    .for_each(|(d, &v)| *d = *d + v);
                            }
                        }
                    }
                }
            }
        },
    )
}

fn max_pool_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let (window, ksize) = nhwc_pool(ctx.node)?;
    with_dtype!(number, ctx.input_dtype(0), T => kernel_fn(move |k: &mut KernelCtx<'_>| {
        let x = k.input(0)?;
        let g = geometry(&window, ksize, x.shape(), "input")?;
        let out = max_pool(&g, x.as_slice::<T>()?, g.pool_threads(k));
        k.push_output(Tensor::from_parts(g.out_shape(), out));
        Ok(())
    }))
}

fn avg_pool_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let (window, ksize) = nhwc_pool(ctx.node)?;
    with_dtype!(float, ctx.input_dtype(0), T => kernel_fn(move |k: &mut KernelCtx<'_>| {
        let x = k.input(0)?;
        let g = geometry(&window, ksize, x.shape(), "value")?;
        let out = avg_pool(&g, x.as_slice::<T>()?, g.pool_threads(k));
        k.push_output(Tensor::from_parts(g.out_shape(), out));
        Ok(())
    }))
}

fn max_pool_grad_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let (window, ksize) = nhwc_pool(ctx.node)?;
    with_dtype!(number, ctx.input_dtype(0), T => kernel_fn(move |k: &mut KernelCtx<'_>| {
        let (x, y, dy) = (k.input(0)?, k.input(1)?, k.input(2)?);
        let g = geometry(&window, ksize, x.shape(), "orig_input")?;
        check_shape(&g, y, "orig_output")?;
        check_shape(&g, dy, "grad")?;
        let x_values = x.as_slice::<T>()?;
        let (dx, _) = max_pool_grad(&g, x_values, dy.as_slice::<T>()?, x_values, |d, _| d, false, g.pool_threads(k));
        k.push_output(Tensor::from_parts(x.shape().to_vec(), dx));
        Ok(())
    }))
}

/// `MaxPoolGrad` and the ReluGrad (or Relu6Grad) that reads it as one step (built by the
/// plan; see `fusion.rs`): each image's input gradient goes through the activation's
/// gradient as soon as it is complete, while in cache. Inputs: the MaxPoolGrad's three,
/// then the activation's features; `pool` is the MaxPoolGrad node and `dtype` its type.
/// With `bias_grad`, a second output: the BiasAddGrad (NHWC) of the first, summed as each
/// image is complete (see [`max_pool_grad`]).
pub(super) fn fused_max_pool_grad_kernel(
    pool: &Node,
    dtype: DType,
    activation_grad: ActivationGrad,
    bias_grad: bool,
) -> KernelResult {
    let (window, ksize) = nhwc_pool(pool)?;
    with_dtype!(number, dtype, T => kernel_fn(move |k: &mut KernelCtx<'_>| {
        let (x, y, dy, features) = (k.input(0)?, k.input(1)?, k.input(2)?, k.input(3)?);
        let g = geometry(&window, ksize, x.shape(), "orig_input")?;
        check_shape(&g, y, "orig_output")?;
        check_shape(&g, dy, "grad")?;
        if features.shape() != x.shape() {
            return Err(Error::invalid(format!(
                "Incompatible shapes: {:?} vs. {:?} (gradients and features)",
                x.shape(),
                features.shape()
            )));
        }
        let shape = x.shape().to_vec();
        let (x, dy, features) = (x.as_slice::<T>()?, dy.as_slice::<T>()?, features.as_slice::<T>()?);
        let threads = g.pool_threads(k);
        let (dx, sums) = match activation_grad {
            ActivationGrad::Relu => max_pool_grad(&g, x, dy, features, relu_grad::<T>, bias_grad, threads),
            ActivationGrad::Relu6 => max_pool_grad(&g, x, dy, features, relu6_grad::<T>, bias_grad, threads),
        };
        k.push_output(Tensor::from_parts(shape, dx));
        if let Some(sums) = sums {
            k.push_output(Tensor::from_parts(vec![g.in_c], sums));
        }
        Ok(())
    }))
}

fn avg_pool_grad_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let (window, ksize) = nhwc_pool(ctx.node)?;
    with_dtype!(float, ctx.input_dtype(1), T => kernel_fn(move |k: &mut KernelCtx<'_>| {
        let (shape, dy) = (k.input(0)?, k.input(1)?);
        let shape = shape
            .to_i64_vec()?
            .iter()
            .map(|&d| usize::try_from(d))
            .collect::<std::result::Result<Vec<usize>, _>>()
            .map_err(|_| Error::invalid(format!("orig_input_shape must be non-negative: {shape:?}")))?;
        let g = geometry(&window, ksize, &shape, "orig_input_shape")?;
        g.check_memory(T::DTYPE)?;
        check_shape(&g, dy, "grad")?;
        let dx = avg_pool_grad(&g, dy.as_slice::<T>()?, g.pool_threads(k));
        k.push_output(Tensor::from_parts(shape, dx));
        Ok(())
    }))
}

fn max_pool_grad_grad_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let (window, ksize) = nhwc_pool(ctx.node)?;
    with_dtype!(number, ctx.input_dtype(0), T => kernel_fn(move |k: &mut KernelCtx<'_>| {
        let (x, y, grad) = (k.input(0)?, k.input(1)?, k.input(2)?);
        let g = geometry(&window, ksize, x.shape(), "orig_input")?;
        check_shape(&g, y, "orig_output")?;
        if grad.shape() != x.shape() {
            return Err(Error::invalid(format!(
                "grad has shape {:?}, but orig_input has shape {:?}",
                grad.shape(),
                x.shape()
            )));
        }
        let out = max_pool_grad_grad(&g, x.as_slice::<T>()?, grad.as_slice::<T>()?, g.pool_threads(k));
        k.push_output(Tensor::from_parts(g.out_shape(), out));
        Ok(())
    }))
}

/// The attrs the pooling gradients pass through (TensorFlow's `_MaxPoolGrad`, `_AvgPoolGrad`).
const POOL_ATTRS: &[&str] = &[
    "T",
    "ksize",
    "strides",
    "padding",
    "explicit_paddings",
    "data_format",
];
/// The attrs passed between MaxPoolGrad and MaxPoolGradGrad (no explicit paddings).
const POOL_GRAD_GRAD_ATTRS: &[&str] = &["T", "ksize", "strides", "padding", "data_format"];

/// TensorFlow's `_MaxPoolGrad`: `MaxPoolGrad(x, MaxPool(x), g)`.
fn max_pool_gradient(ctx: &mut GradCtx<'_>) -> Result<Vec<Option<Output>>> {
    let (attrs, inputs) = (ctx.attrs(), [ctx.input(0), ctx.output(0), ctx.grad(0)]);
    let dx = op_with_attrs(ctx.graph, "MaxPoolGrad", &inputs, &attrs, POOL_ATTRS)?;
    Ok(vec![Some(dx)])
}

/// The gradient of MaxPoolGrad (TensorFlow's `_MaxPoolGradGrad`) or of MaxPoolGradGrad
/// (`_MaxPoolGradGradGrad`): zeros for the original input and output (the routing is
/// piecewise constant in them) and `op(orig_input, orig_output, g)` for the gradient,
/// where `op` is the other of the pair.
fn max_pool_grad_pair_gradient(ctx: &mut GradCtx<'_>, op: &str) -> Result<Vec<Option<Output>>> {
    let (attrs, x, y, grad) = (ctx.attrs(), ctx.input(0), ctx.input(1), ctx.grad(0));
    let g = &mut *ctx.graph;
    let (zx, zy) = (g.zeros_like(x)?, g.zeros_like(y)?);
    let dgrad = op_with_attrs(g, op, &[x, y, grad], &attrs, POOL_GRAD_GRAD_ATTRS)?;
    Ok(vec![Some(zx), Some(zy), Some(dgrad)])
}

fn max_pool_grad_gradient(ctx: &mut GradCtx<'_>) -> Result<Vec<Option<Output>>> {
    max_pool_grad_pair_gradient(ctx, "MaxPoolGradGrad")
}

fn max_pool_grad_grad_gradient(ctx: &mut GradCtx<'_>) -> Result<Vec<Option<Output>>> {
    max_pool_grad_pair_gradient(ctx, "MaxPoolGrad")
}

/// TensorFlow's `_AvgPoolGrad`: `AvgPoolGrad(Shape(x), g)`.
fn avg_pool_gradient(ctx: &mut GradCtx<'_>) -> Result<Vec<Option<Output>>> {
    let (attrs, x, grad) = (ctx.attrs(), ctx.input(0), ctx.grad(0));
    let shape = ctx.graph.shape_of(x)?;
    let dx = op_with_attrs(ctx.graph, "AvgPoolGrad", &[shape, grad], &attrs, POOL_ATTRS)?;
    Ok(vec![Some(dx)])
}

/// TensorFlow's `_AvgPoolGradGrad`: AvgPoolGrad is linear in its gradient input, whose
/// gradient is `AvgPool(g)`; the int32 shape input gets none (TensorFlow returns a
/// stop-gradient of the shape itself there, which carries nothing).
fn avg_pool_grad_gradient(ctx: &mut GradCtx<'_>) -> Result<Vec<Option<Output>>> {
    let (attrs, grad) = (ctx.attrs(), ctx.grad(0));
    let dgrad = op_with_attrs(ctx.graph, "AvgPool", &[grad], &attrs, POOL_ATTRS)?;
    Ok(vec![None, Some(dgrad)])
}

pub(super) fn register(r: &mut crate::ops::Registry) {
    use crate::ops::Op;
    fn max_defaults() -> Vec<(&'static str, crate::graph::AttrValue)> {
        vec![
            ("T", DType::Float32.into()),
            ("explicit_paddings", Vec::<i64>::new().into()),
            ("data_format", "NHWC".into()),
        ]
    }
    fn format_defaults() -> Vec<(&'static str, crate::graph::AttrValue)> {
        vec![("data_format", "NHWC".into())]
    }
    r.add(
        Op::new("MaxPool", infer_max_pool, max_pool_kernel)
            .grad(max_pool_gradient)
            .defaults(max_defaults),
    );
    r.add(
        Op::new("AvgPool", infer_avg_pool, avg_pool_kernel)
            .grad(avg_pool_gradient)
            .defaults(format_defaults),
    );
    r.add(
        Op::new("MaxPoolGrad", infer_max_pool_grad, max_pool_grad_kernel)
            .grad(max_pool_grad_gradient)
            .defaults(max_defaults),
    );
    r.add(
        Op::new(
            "MaxPoolGradGrad",
            infer_max_pool_grad_grad,
            max_pool_grad_grad_kernel,
        )
        .grad(max_pool_grad_grad_gradient)
        .defaults(format_defaults),
    );
    r.add(
        Op::new("AvgPoolGrad", infer_avg_pool_grad, avg_pool_grad_kernel)
            .grad(avg_pool_grad_gradient)
            .defaults(format_defaults),
    );
}

/// Adds a pooling-family node with the attrs TensorFlow's Python wrappers set (NHWC).
fn pool_op(
    g: &mut Graph,
    op: &str,
    inputs: &[Output],
    t: DType,
    ksize: &[i64],
    strides: &[i64],
    padding: &str,
) -> Result<Output> {
    g.op(op)
        .inputs(inputs)
        .attr("T", t)
        .attr("ksize", ksize.to_vec())
        .attr("strides", strides.to_vec())
        .attr("padding", padding)
        .attr("data_format", "NHWC")
        .build_output()
}

impl Graph {
    /// Max pooling over NHWC images (`tf.nn.max_pool2d`, op MaxPool): `ksize` and
    /// `strides` have 4 entries (batch and channel 1), `padding` is `"SAME"` or `"VALID"`.
    pub fn max_pool(
        &mut self,
        input: Output,
        ksize: &[i64],
        strides: &[i64],
        padding: &str,
    ) -> Result<Output> {
        let t = self.dtype(input);
        pool_op(self, "MaxPool", &[input], t, ksize, strides, padding)
    }

    /// Average pooling over NHWC images (`tf.nn.avg_pool2d`, op AvgPool); with SAME
    /// padding each output averages only the input elements its window covers.
    pub fn avg_pool(
        &mut self,
        value: Output,
        ksize: &[i64],
        strides: &[i64],
        padding: &str,
    ) -> Result<Output> {
        let t = self.dtype(value);
        pool_op(self, "AvgPool", &[value], t, ksize, strides, padding)
    }

    /// Gradient of MaxPool (op MaxPoolGrad): routes `grad` to the first maximum of each
    /// window of `orig_input`.
    pub fn max_pool_grad(
        &mut self,
        orig_input: Output,
        orig_output: Output,
        grad: Output,
        ksize: &[i64],
        strides: &[i64],
        padding: &str,
    ) -> Result<Output> {
        let t = self.dtype(orig_input);
        pool_op(
            self,
            "MaxPoolGrad",
            &[orig_input, orig_output, grad],
            t,
            ksize,
            strides,
            padding,
        )
    }

    /// Gradient of MaxPoolGrad with respect to its `grad` input (op MaxPoolGradGrad):
    /// for each pooled element, `grad` (shaped like `orig_input`) at the first maximum of
    /// its window of `orig_input`.
    pub fn max_pool_grad_grad(
        &mut self,
        orig_input: Output,
        orig_output: Output,
        grad: Output,
        ksize: &[i64],
        strides: &[i64],
        padding: &str,
    ) -> Result<Output> {
        let t = self.dtype(orig_input);
        pool_op(
            self,
            "MaxPoolGradGrad",
            &[orig_input, orig_output, grad],
            t,
            ksize,
            strides,
            padding,
        )
    }

    /// Gradient of AvgPool (op AvgPoolGrad): `orig_input_shape` is an int32 vector with
    /// the input's NHWC shape.
    pub fn avg_pool_grad(
        &mut self,
        orig_input_shape: Output,
        grad: Output,
        ksize: &[i64],
        strides: &[i64],
        padding: &str,
    ) -> Result<Output> {
        let t = self.dtype(grad);
        pool_op(
            self,
            "AvgPoolGrad",
            &[orig_input_shape, grad],
            t,
            ksize,
            strides,
            padding,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{assert_close, f64s, fetch_err, random, run, run_with, values};

    fn ones4(v: i64) -> Vec<i64> {
        vec![1, v, v, 1]
    }

    #[test]
    fn pooling_matches_tensorflow_at_the_edges() {
        // x5 = tf.reshape(tf.range(1., 26.), [1,5,5,1])
        let x = Tensor::new(&[1, 5, 5, 1], (1..=25).map(|v| v as f32).collect()).unwrap();
        let mut g = Graph::new();
        let xi = g.constant(x).unwrap();
        let cases = [
            // tf.nn.max_pool2d(x5, 2, 2, "SAME")
            (
                "max",
                2,
                "SAME",
                vec![7., 9., 10., 17., 19., 20., 22., 24., 25.],
            ),
            // tf.nn.max_pool2d(x5, 3, 2, "VALID")
            ("max", 3, "VALID", vec![13., 15., 23., 25.]),
            // tf.nn.avg_pool2d(x5, 2, 2, "SAME"): edge windows average only real elements
            (
                "avg",
                2,
                "SAME",
                vec![4., 6., 7.5, 14., 16., 17.5, 21.5, 23.5, 25.],
            ),
            // tf.nn.avg_pool2d(x5, 3, 2, "SAME")
            (
                "avg",
                3,
                "SAME",
                vec![4., 5.5, 7., 11.5, 13., 14.5, 19., 20.5, 22.],
            ),
        ];
        for (kind, k, padding, want) in cases {
            let y = if kind == "max" {
                g.max_pool(xi, &ones4(k), &ones4(2), padding)
            } else {
                g.avg_pool(xi, &ones4(k), &ones4(2), padding)
            }
            .unwrap();
            let side = if want.len() == 9 { 3 } else { 2 };
            assert_eq!(g.shape(y), &PartialShape::known(&[1, side, side, 1]));
            let out = run(&g, &[y]);
            assert_eq!(out[0].dtype(), DType::Float32);
            assert_close(&f64s(&out[0]), &want, 1e-6);
        }
    }

    #[test]
    fn max_pool_of_integers_and_channels() {
        // Two channels pooled independently: channel 1 is the negation of channel 0.
        let data: Vec<i32> = (0..16).flat_map(|v| [v, -v]).collect();
        let mut g = Graph::new();
        let x = g
            .constant(Tensor::new(&[1, 4, 4, 2], data).unwrap())
            .unwrap();
        let y = g.max_pool(x, &ones4(2), &ones4(2), "VALID").unwrap();
        let out = run(&g, &[y]);
        // windows {0,1,4,5}, {2,3,6,7}, {8,9,12,13}, {10,11,14,15}
        assert_eq!(
            out[0],
            Tensor::new(&[1, 2, 2, 2], vec![5, 0, 7, -2, 13, -8, 15, -10]).unwrap()
        );
    }

    #[test]
    fn max_pool_grad_routes_to_the_first_maximum() {
        // t = [[1,3,3,2],[3,0,1,3]] as [1,2,4,1]
        let t = Tensor::new(&[1, 2, 4, 1], vec![1f32, 3., 3., 2., 3., 0., 1., 3.]).unwrap();
        let mut g = Graph::new();
        let x = g.constant(t).unwrap();
        // tf.raw_ops.MaxPoolGrad(orig_input=t, orig_output=max_pool2d(t,2,2,"VALID"),
        //   grad=[[[[10.],[20.]]]], ksize=[1,2,2,1], strides=[1,2,2,1], padding="VALID")
        let y = g.max_pool(x, &ones4(2), &ones4(2), "VALID").unwrap();
        let dy = g
            .constant(Tensor::new(&[1, 1, 2, 1], vec![10f32, 20.]).unwrap())
            .unwrap();
        let dx = g
            .max_pool_grad(x, y, dy, &ones4(2), &ones4(2), "VALID")
            .unwrap();
        // the same with overlapping SAME windows, stride 1, grad = 1..8
        let y1 = g.max_pool(x, &ones4(2), &ones4(1), "SAME").unwrap();
        let dy1 = g
            .constant(Tensor::new(&[1, 2, 4, 1], (1..=8).map(|v| v as f32).collect()).unwrap())
            .unwrap();
        let dx1 = g
            .max_pool_grad(x, y1, dy1, &ones4(2), &ones4(1), "SAME")
            .unwrap();
        let out = run(&g, &[dx, y1, dx1]);
        assert_eq!(f64s(&out[0]), vec![0., 10., 20., 0., 0., 0., 0., 0.]);
        assert_eq!(f64s(&out[1]), vec![3., 3., 3., 3., 3., 1., 3., 3.]);
        assert_eq!(f64s(&out[2]), vec![0., 3., 3., 0., 5., 0., 6., 19.]);
    }

    /// Central finite differences of `Σ w · pool(x)` through the forward kernel.
    fn fd(f: impl Fn(&[f64]) -> Vec<f64>, x: &[f64], w: &[f64]) -> Vec<f64> {
        let loss = |x: &[f64]| -> f64 { f(x).iter().zip(w).map(|(a, b)| a * b).sum() };
        let eps = 1e-6;
        (0..x.len())
            .map(|i| {
                let (mut p, mut m) = (x.to_vec(), x.to_vec());
                p[i] += eps;
                m[i] -= eps;
                (loss(&p) - loss(&m)) / (2.0 * eps)
            })
            .collect()
    }

    #[test]
    fn pool_grads_match_finite_differences() {
        let shape = [2, 5, 6, 3];
        let x = random(&shape, 21);
        for (k, s, padding) in [
            ([3, 2], [2, 2], "SAME"),
            ([3, 2], [2, 2], "VALID"),
            ([2, 2], [1, 1], "SAME"),
        ] {
            let (ks, st) = ([1, k[0], k[1], 1], [1, s[0], s[1], 1]);
            let attrs: crate::graph::Attrs = [
                ("ksize".to_string(), ks.to_vec().into()),
                ("strides".to_string(), st.to_vec().into()),
                ("padding".to_string(), padding.into()),
            ]
            .into_iter()
            .collect();
            let (window, ksize) = Window2d::pool(&attrs).unwrap();
            let geom = geometry(&window, ksize, &shape, "input").unwrap();
            let w = values(geom.out_shape().iter().product(), 22);
            let want_max = fd(|v| max_pool(&geom, v, 1), &f64s(&x), &w);
            let want_avg = fd(|v| avg_pool(&geom, v, 1), &f64s(&x), &w);

            let mut g = Graph::new();
            let xi = g.constant(x.clone()).unwrap();
            let dy = g
                .constant(Tensor::new(&geom.out_shape(), w).unwrap())
                .unwrap();
            let y = g.max_pool(xi, &ks, &st, padding).unwrap();
            let dmax = g.max_pool_grad(xi, y, dy, &ks, &st, padding).unwrap();
            let sz = g.constant(Tensor::from(shape.map(|v| v as i32))).unwrap();
            let davg = g.avg_pool_grad(sz, dy, &ks, &st, padding).unwrap();
            assert_eq!(g.shape(davg), &PartialShape::known(&shape));
            let out = run(&g, &[dmax, davg]);
            assert_close(&f64s(&out[0]), &want_max, 1e-6);
            assert_close(&f64s(&out[1]), &want_avg, 1e-6);
        }
    }

    /// Pooling written the plain way, one output element at a time: for every output
    /// pixel and channel, the window's taps in row-major order. Returns MaxPool, AvgPool,
    /// MaxPoolGrad (to the first maximum: a tap wins only when greater than the best so
    /// far) and AvgPoolGrad of `x` with output gradient `dy`.
    fn naive_pooling(g: &Geometry, x: &[f32], dy: &[f32]) -> [Vec<f32>; 4] {
        let c = g.in_c;
        let n_out = g.batch * g.out_h * g.out_w * c;
        let (mut mx, mut avg) = (vec![0f32; n_out], vec![0f32; n_out]);
        let (mut dmax, mut davg) = (vec![0f32; x.len()], vec![0f32; x.len()]);
        for b in 0..g.batch {
            for oy in 0..g.out_h {
                for ox in 0..g.out_w {
                    for ch in 0..c {
                        let o = ((b * g.out_h + oy) * g.out_w + ox) * c + ch;
                        let taps: Vec<usize> = g
                            .row_taps(oy)
                            .flat_map(|y| {
                                g.col_taps(ox)
                                    .map(move |xx| ((b * g.in_h + y) * g.in_w + xx) * c + ch)
                            })
                            .collect();
                        let (mut m, mut sum) = (f32::MIN, 0f32);
                        let mut arg = taps[0];
                        for &i in &taps {
                            if x[i] > m {
                                m = x[i];
                            }
                            if x[i] > x[arg] {
                                arg = i;
                            }
                            sum += x[i];
                        }
                        let count = taps.len() as f32;
                        (mx[o], avg[o]) = (m, sum / count);
                        dmax[arg] += dy[o];
                        for &i in &taps {
                            davg[i] += dy[o] / count;
                        }
                    }
                }
            }
        }
        [mx, avg, dmax, davg]
    }

    #[test]
    fn pooling_kernels_match_the_plain_loops_bit_for_bit() {
        // Values from {0, 1, 2} (many ties within a window), a NaN or two, channels 1 to
        // 33, 2x2 and 3x3 windows, strides 1 and 2, VALID and SAME, on 1 and 2 threads (the
        // last case is big enough to be split).
        let cases: [([usize; 4], usize, usize, &str); 9] = [
            ([2, 8, 8, 32], 2, 2, "VALID"),
            ([2, 7, 9, 3], 2, 2, "SAME"),
            ([1, 7, 9, 1], 2, 2, "VALID"),
            ([2, 6, 5, 33], 3, 2, "SAME"),
            ([2, 7, 7, 8], 3, 2, "VALID"),
            ([1, 6, 7, 5], 3, 1, "SAME"),
            ([3, 5, 6, 4], 2, 1, "VALID"),
            ([2, 5, 5, 16], 2, 1, "SAME"),
            ([2, 32, 32, 64], 3, 1, "SAME"),
        ];
        for (case, (shape, k, s, padding)) in cases.into_iter().enumerate() {
            let n: usize = shape.iter().product();
            let mut x: Vec<f32> = values(n, case as u64)
                .iter()
                .map(|v| ((v + 1.0) * 1.5).floor().clamp(0.0, 2.0) as f32)
                .collect();
            x[n / 3] = f32::NAN;
            x[0] = f32::NAN;
            let attrs: crate::graph::Attrs = [
                ("ksize".to_string(), ones4(k as i64).into()),
                ("strides".to_string(), ones4(s as i64).into()),
                ("padding".to_string(), padding.into()),
            ]
            .into_iter()
            .collect();
            let (window, ksize) = Window2d::pool(&attrs).unwrap();
            let geom = geometry(&window, ksize, &shape, "input").unwrap();
            let dy: Vec<f32> = values(geom.out_shape().iter().product(), 99)
                .iter()
                .map(|&v| v as f32)
                .collect();
            let want = naive_pooling(&geom, &x, &dy);
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            for threads in [1, 2] {
                let got = [
                    max_pool(&geom, &x, threads),
                    avg_pool(&geom, &x, threads),
                    max_pool_grad(&geom, &x, &dy, &x, |d, _| d, false, threads).0,
                    avg_pool_grad(&geom, &dy, threads),
                ];
                for (what, (a, b)) in ["max", "avg", "max grad", "avg grad"]
                    .iter()
                    .zip(got.iter().zip(&want))
                {
                    assert_eq!(bits(a), bits(b), "{what} of case {case}, {threads} threads");
                }
            }
            // The baseline path's 16 channels at a time (what a CPU without AVX2 runs).
            let width = geom.out_w * geom.in_c;
            let mut narrow = vec![0f32; geom.batch * geom.out_h * width];
            for (u, orow) in narrow.chunks_exact_mut(width).enumerate() {
                let (b, oy) = (u / geom.out_h, u % geom.out_h);
                let image = &x[b * geom.in_image()..(b + 1) * geom.in_image()];
                max_pool_row_body::<16, f32>(&geom, image, oy, orow);
            }
            assert_eq!(
                bits(&narrow),
                bits(&want[0]),
                "16 channels at a time, case {case}"
            );
            // Its channel sums (a fused BiasAddGrad) add the pixels in order, as BiasAddGrad
            // does on one thread.
            let mut in_order = vec![0f32; geom.in_c];
            for pixel in want[2].chunks_exact(geom.in_c) {
                in_order.iter_mut().zip(pixel).for_each(|(s, &v)| *s += v);
            }
            let (dx, sums) = max_pool_grad(&geom, &x, &dy, &x, |d, _| d, true, 1);
            assert_eq!(bits(&dx), bits(&want[2]), "grad with sums, case {case}");
            assert_eq!(bits(&sums.unwrap()), bits(&in_order), "sums, case {case}");
            // MaxPoolGrad 8 and 16 channels at a time (no AVX2 and AVX2), with sums.
            let (image, pooled) = (geom.in_image(), geom.out_h * geom.out_w * geom.in_c);
            type Body = unsafe fn(
                &Geometry,
                ImageIn<'_, f32>,
                &fn(f32, f32) -> f32,
                &mut [MaybeUninit<f32>],
                bool,
                Option<&mut [f32]>,
            );
            let bodies: [(usize, Body); 2] = [
                (8, max_pool_grad_image_body::<8, f32>),
                (16, max_pool_grad_image_body::<16, f32>),
            ];
            let act: fn(f32, f32) -> f32 = |d, _| d;
            for (width, body) in bodies {
                let mut dx = vec![0f32; x.len()];
                let mut sums = vec![0f32; geom.in_c];
                for (b, dimg) in dx.chunks_exact_mut(image).enumerate() {
                    let xs = &x[b * image..(b + 1) * image];
                    let image = ImageIn {
                        x: xs,
                        dy: &dy[b * pooled..(b + 1) * pooled],
                        features: xs,
                    };
                    let (dimg, tiled) = (as_uninit(dimg), geom.windows_tile());
                    // SAFETY: `dimg` is zeroed.
                    unsafe { body(&geom, image, &act, dimg, tiled, Some(&mut sums)) };
                }
                assert_eq!(bits(&dx), bits(&want[2]), "grad {width} wide, case {case}");
                assert_eq!(
                    bits(&sums),
                    bits(&in_order),
                    "sums {width} wide, case {case}"
                );
            }
            // Windows that tile the input (cases 0 and 1) write every element without zeros.
            assert_eq!(geom.windows_tile(), case < 2, "case {case}");
        }
    }

    #[test]
    fn threaded_pooling_matches_one_thread() {
        // Big enough to be split over threads.
        let shape = [8, 32, 32, 16];
        let mut g = Graph::new();
        let x = g.constant(random(&shape, 31)).unwrap();
        let (ks, st) = (ones4(3), ones4(1));
        let y = g.max_pool(x, &ks, &st, "SAME").unwrap();
        let a = g.avg_pool(x, &ks, &st, "SAME").unwrap();
        let dy = g.constant(random(&shape, 32)).unwrap();
        let dmax = g.max_pool_grad(x, y, dy, &ks, &st, "SAME").unwrap();
        let sz = g.constant(Tensor::from(shape.map(|v| v as i32))).unwrap();
        let davg = g.avg_pool_grad(sz, dy, &ks, &st, "SAME").unwrap();
        let fetches = [y, a, dmax, davg];
        let (one, four) = (run(&g, &fetches), run_with(&g, &fetches, 4));
        for (o, f) in one.iter().zip(&four) {
            assert_eq!(o, f);
        }
    }

    #[test]
    fn bad_pooling_is_refused() {
        let mut g = Graph::new();
        let x = g.placeholder(DType::Float32, [1, 4, 4, 2], "x").unwrap();
        let msg = g
            .max_pool(x, &[2, 2, 2, 1], &ones4(1), "SAME")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("batch and depth"), "{msg}");
        let msg = g
            .max_pool(x, &ones4(6), &ones4(1), "VALID")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("negative"), "{msg}");
        let i = g.placeholder(DType::Int32, [1, 4, 4, 2], "i").unwrap();
        let msg = g
            .avg_pool(i, &ones4(2), &ones4(2), "SAME")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("Cast"), "{msg}");
        let y = g.max_pool(x, &ones4(2), &ones4(2), "VALID").unwrap();
        let wrong = g
            .placeholder(DType::Float32, [1, 3, 3, 2], "wrong")
            .unwrap();
        let msg = g
            .max_pool_grad(x, y, wrong, &ones4(2), &ones4(2), "VALID")
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("[1,3,3,2]") && msg.contains("[1,2,2,2]"),
            "{msg}"
        );
    }

    #[test]
    fn max_pool_grad_grad_reads_the_first_maximum() {
        // Ties in several windows; values from
        // x = [[1,3,3,0],[3,2,1,5],[0,5,5,2],[4,1,2,5]] as [1,4,4,1],
        // g = tf.reshape(tf.range(1., 17.), [1,4,4,1]) * 10,
        // gen_nn_ops.max_pool_grad_grad(x, max_pool2d(x,k,s,p), g, [1,k,k,1], [1,s,s,1], p)
        let xv = vec![
            1f32, 3., 3., 0., 3., 2., 1., 5., 0., 5., 5., 2., 4., 1., 2., 5.,
        ];
        let mut g = Graph::new();
        let x = g.constant(Tensor::new(&[1, 4, 4, 1], xv).unwrap()).unwrap();
        let gv: Vec<f32> = (1..=16).map(|v| v as f32 * 10.).collect();
        let gg = g.constant(Tensor::new(&[1, 4, 4, 1], gv).unwrap()).unwrap();
        let y = g.max_pool(x, &ones4(2), &ones4(2), "VALID").unwrap();
        let r = g
            .max_pool_grad_grad(x, y, gg, &ones4(2), &ones4(2), "VALID")
            .unwrap();
        assert_eq!(g.shape(r), &PartialShape::known(&[1, 2, 2, 1]));
        let y3 = g.max_pool(x, &ones4(3), &ones4(1), "SAME").unwrap();
        let r3 = g
            .max_pool_grad_grad(x, y3, gg, &ones4(3), &ones4(1), "SAME")
            .unwrap();
        let out = run(&g, &[r, r3]);
        assert_eq!(f64s(&out[0]), vec![20., 80., 100., 110.]);
        let want = [
            20., 20., 80., 80., 100., 100., 80., 80., 100., 100., 80., 80., 100., 100., 100., 110.,
        ];
        assert_eq!(f64s(&out[1]), want);
    }

    #[test]
    fn max_pool_grad_grad_is_the_adjoint_of_max_pool_grad() {
        // <MaxPoolGrad(x, y, d), h> = <d, MaxPoolGradGrad(x, y, h)> for overlapping
        // windows, over several images and channels, on 1 and 4 threads.
        let (xv, d, h) = (
            random(&[3, 7, 6, 4], 1),
            random(&[3, 4, 3, 4], 2),
            random(&[3, 7, 6, 4], 3),
        );
        let mut g = Graph::new();
        let (x, d, h) = (
            g.constant(xv).unwrap(),
            g.constant(d).unwrap(),
            g.constant(h).unwrap(),
        );
        let (k, s) = (ones4(3), ones4(2));
        let y = g.max_pool(x, &k, &s, "SAME").unwrap();
        let dx = g.max_pool_grad(x, y, d, &k, &s, "SAME").unwrap();
        let hy = g.max_pool_grad_grad(x, y, h, &k, &s, "SAME").unwrap();
        for threads in [1, 4] {
            let out = run_with(&g, &[dx, h, d, hy], threads);
            let dot = |a: &Tensor, b: &Tensor| -> f64 {
                f64s(a).iter().zip(f64s(b)).map(|(p, q)| p * q).sum()
            };
            let (lhs, rhs) = (dot(&out[0], &out[1]), dot(&out[2], &out[3]));
            assert!(
                (lhs - rhs).abs() < 1e-12 * lhs.abs().max(1.0),
                "{lhs} vs {rhs}"
            );
        }
    }

    #[test]
    fn bad_max_pool_grad_grad_is_refused() {
        let mut g = Graph::new();
        let x = g.placeholder(DType::Float32, [1, 4, 4, 2], "x").unwrap();
        let y = g.max_pool(x, &ones4(2), &ones4(2), "VALID").unwrap();
        let small = g
            .placeholder(DType::Float32, [1, 2, 2, 2], "small")
            .unwrap();
        let msg = g
            .max_pool_grad_grad(x, y, small, &ones4(2), &ones4(2), "VALID")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("grad has shape [1,2,2,2]"), "{msg}");
        let msg = g
            .max_pool_grad_grad(x, small, x, &ones4(3), &ones4(1), "SAME")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("pooling the input gives shape"), "{msg}");
        // At run time: fed tensors of the wrong shapes.
        let (xa, ya, ga) = (
            g.placeholder(DType::Float64, PartialShape::unknown(), "xa")
                .unwrap(),
            g.placeholder(DType::Float64, PartialShape::unknown(), "ya")
                .unwrap(),
            g.placeholder(DType::Float64, PartialShape::unknown(), "ga")
                .unwrap(),
        );
        let r = g
            .max_pool_grad_grad(xa, ya, ga, &ones4(2), &ones4(2), "VALID")
            .unwrap();
        let sess = crate::Session::new(&g);
        let feed = |shapes: [&[usize]; 3]| {
            let feeds: Vec<_> = [xa, ya, ga]
                .into_iter()
                .zip(shapes)
                .map(|(p, s)| (p, random(s, 4)))
                .collect();
            sess.run(&feeds, &[r], &[]).unwrap_err().to_string()
        };
        let msg = feed([&[1, 4, 4, 1], &[1, 2, 2, 1], &[1, 4, 3, 1]]);
        assert!(msg.contains("grad has shape [1, 4, 3, 1]"), "{msg}");
        let msg = feed([&[1, 4, 4, 1], &[1, 3, 2, 1], &[1, 4, 4, 1]]);
        assert!(msg.contains("orig_output has shape"), "{msg}");
        let msg = feed([&[4, 4, 1], &[1, 2, 2, 1], &[4, 4, 1]]);
        assert!(msg.contains("4-dimensional"), "{msg}");
    }

    #[test]
    fn nchw_pooling_builds_but_does_not_run_on_cpu() {
        let mut g = Graph::new();
        let x = g.constant(random(&[1, 2, 4, 4], 1)).unwrap();
        let y = g
            .op("MaxPool")
            .input(x)
            .attr("T", DType::Float64)
            .attr("ksize", vec![1i64, 1, 2, 2])
            .attr("strides", vec![1i64, 1, 2, 2])
            .attr("padding", "VALID")
            .attr("data_format", "NCHW")
            .build_output()
            .unwrap();
        assert_eq!(g.shape(y), &PartialShape::known(&[1, 2, 2, 2]));
        let msg = fetch_err(&g, y);
        assert!(msg.contains("only supports NHWC"), "{msg}");
    }
}

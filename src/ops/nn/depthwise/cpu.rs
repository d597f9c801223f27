//! DepthwiseConv2dNative's CPU kernels on NHWC data: the forward pass and its two
//! backprops (DepthwiseConv2dNativeBackpropInput / BackpropFilter), each a walk over the
//! same (output pixel, filter tap, input pixel) triples.
//!
//! With one filter per channel (`channel_multiplier` 1, every Keras `DepthwiseConv2D` of
//! MobileNet-style nets) the channels of a pixel are independent lanes: the forward pass
//! keeps blocks of [`BLOCK`] channels of an output pixel in registers while it walks the
//! taps, the backprops run slice by slice over the channels, all three compiled for AVX2
//! where the CPU has it and split over the intra-op threads (output rows, images, or
//! parts of the filter's sum). Each output element sums its terms in the same order as
//! the generic walk (other multipliers), so the results are bit-identical to it, except the
//! filter backprop split over threads, which adds the parts' sums at the end.

use crate::device::parallel::{split_range, sum_of_parts, zeroed_units, MIN_LOOP_WORK};
use crate::kernel::KernelCtx;
use crate::ops::nn::conv2d::cpu::{check_dy, nhwc_window, rank4, runtime_sizes};
use crate::ops::nn::window::Geometry;
use crate::ops::{kernel_fn, KernelBuildCtx, KernelResult};
use crate::tensor::{Element, Number, Tensor};
use crate::{with_dtype, Error, Result};
use std::ops::Range;

/// Channels of one output pixel the multiplier-1 forward pass sums in registers at once.
const BLOCK: usize = 8;

/// Calls `visit(y, taps)` for every output pixel of the output rows `rows` (indices into
/// batch × out_h): `y` the offset of the pixel's first channel, `taps` the (input pixel,
/// filter tap) offsets of its first channel for each tap that reads an input pixel, in
/// tap order.
#[inline(always)]
fn for_each_pixel(
    geo: &Geometry,
    rows: Range<usize>,
    mut visit: impl FnMut(usize, &[(usize, usize)]),
) {
    let mut taps = Vec::with_capacity(geo.k_h * geo.k_w);
    for row in rows {
        let (b, oh) = (row / geo.out_h, row % geo.out_h);
        for ow in 0..geo.out_w {
            taps.clear();
            for i in 0..geo.k_h {
                let Some(r) = geo.in_row(oh, i) else { continue };
                for j in 0..geo.k_w {
                    let Some(col) = geo.in_col(ow, j) else {
                        continue;
                    };
                    let x = ((b * geo.in_h + r) * geo.in_w + col) * geo.in_c;
                    taps.push((x, (i * geo.k_w + j) * geo.out_c));
                }
            }
            visit((row * geo.out_w + ow) * geo.out_c, &taps);
        }
    }
}

/// Calls `visit(y, x, f)` for every output pixel and filter tap that reads an input pixel:
/// the offsets of the output pixel's first channel, the input pixel's first channel and
/// the tap's first entry.
fn for_each_tap(geo: &Geometry, mut visit: impl FnMut(usize, usize, usize)) {
    for_each_pixel(geo, 0..geo.batch * geo.out_h, |y, taps| {
        for &(x, f) in taps {
            visit(y, x, f);
        }
    });
}

/// Defines each function twice from one body: compiled for AVX2 (used where the CPU has
/// it: the same code, eight lanes of f32 wide) and for the baseline. The body is written
/// inside both so that its closures, which the compiler builds as functions of their own,
/// get AVX2 too.
macro_rules! avx2_or_baseline {
    ($(
        $(#[$doc:meta])*
        fn $name:ident<T: Number>($($arg:ident: $ty:ty),*) $body:block
    )*) => {$(
        $(#[$doc])*
        fn $name<T: Number>($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2")]
                unsafe fn avx2<T: Number>($($arg: $ty),*) $body
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU has AVX2, checked just above.
                    return unsafe { avx2($($arg),*) };
                }
            }
            $body
        }
    )*};
}

avx2_or_baseline! {
    /// Multiplier 1: the output rows `rows` (indices into batch × out_h) into `out`,
    /// their elements; each pixel's channels summed [`BLOCK`] at a time in registers,
    /// tap by tap.
    fn forward_rows<T: Number>(
        x: &[T],
        f: &[T],
        geo: &Geometry,
        rows: Range<usize>,
        out: &mut [T]
    ) {
        let c = geo.out_c;
        let first = rows.start * geo.out_w * c;
        for_each_pixel(geo, rows, |y, taps| {
            let mut blocks = out[y - first..][..c].chunks_exact_mut(BLOCK);
            let mut c0 = 0;
            for block in &mut blocks {
                let mut acc = [T::ZERO; BLOCK];
                for &(xo, fo) in taps {
                    let (xs, fs) = (&x[xo + c0..][..BLOCK], &f[fo + c0..][..BLOCK]);
                    for ((a, &v), &w) in acc.iter_mut().zip(xs).zip(fs) {
                        *a = a.add(v.mul(w));
                    }
                }
                block.copy_from_slice(&acc);
                c0 += BLOCK;
            }
            for (ch, y) in (c0..).zip(blocks.into_remainder()) {
                *y = taps
                    .iter()
                    .fold(T::ZERO, |a, &(xo, fo)| a.add(x[xo + ch].mul(f[fo + ch])));
            }
        });
    }

    /// Multiplier 1: the input gradient of the images `images` into `dx`, their elements.
    fn backprop_input_images<T: Number>(
        dy: &[T],
        f: &[T],
        geo: &Geometry,
        images: Range<usize>,
        dx: &mut [T]
    ) {
        let c = geo.in_c;
        let first = images.start * geo.in_image();
        let rows = images.start * geo.out_h..images.end * geo.out_h;
        for_each_pixel(geo, rows, |y, taps| {
            let g = &dy[y..][..c];
            for &(xo, fo) in taps {
                let d = &mut dx[xo - first..][..c];
                for ((d, &g), &w) in d.iter_mut().zip(g).zip(&f[fo..][..c]) {
                    *d = d.add(g.mul(w));
                }
            }
        });
    }

    /// Multiplier 1: adds the filter gradient of the output rows `rows` into `df`.
    fn backprop_filter_rows<T: Number>(
        x: &[T],
        dy: &[T],
        geo: &Geometry,
        rows: Range<usize>,
        df: &mut [T]
    ) {
        let c = geo.in_c;
        for_each_pixel(geo, rows, |y, taps| {
            let g = &dy[y..][..c];
            for &(xo, fo) in taps {
                for ((d, &v), &g) in df[fo..][..c].iter_mut().zip(&x[xo..][..c]).zip(g) {
                    *d = d.add(v.mul(g));
                }
            }
        });
    }
}

/// `y[.., c·m + q] += x[.., c] · f[.., c, q]`, over `threads` threads when `m` is 1.
fn forward<T: Number>(x: &[T], f: &[T], geo: &Geometry, m: usize, threads: usize) -> Vec<T> {
    let row = geo.out_w * geo.out_c;
    if m == 1 {
        return zeroed_units(geo.batch * geo.out_h, row, threads, |rows, out| {
            forward_rows(x, f, geo, rows, out)
        });
    }
    let mut y = vec![T::ZERO; geo.batch * geo.out_h * row];
    for_each_tap(geo, |yo, xo, fo| {
        for ch in 0..geo.in_c {
            let v = x[xo + ch];
            for o in ch * m..(ch + 1) * m {
                y[yo + o] = y[yo + o].add(v.mul(f[fo + o]));
            }
        }
    });
    y
}

/// `dx[.., c] += dy[.., c·m + q] · f[.., c, q]`, over `threads` threads (by image) when
/// `m` is 1.
fn backprop_input<T: Number>(
    dy: &[T],
    f: &[T],
    geo: &Geometry,
    m: usize,
    threads: usize,
) -> Vec<T> {
    if m == 1 {
        return zeroed_units(geo.batch, geo.in_image(), threads, |images, dx| {
            backprop_input_images(dy, f, geo, images, dx)
        });
    }
    let mut dx = vec![T::ZERO; geo.batch * geo.in_image()];
    for_each_tap(geo, |yo, xo, fo| {
        for ch in 0..geo.in_c {
            let mut acc = dx[xo + ch];
            for o in ch * m..(ch + 1) * m {
                acc = acc.add(dy[yo + o].mul(f[fo + o]));
            }
            dx[xo + ch] = acc;
        }
    });
    dx
}

/// `df[.., c, q] += x[.., c] · dy[.., c·m + q]`; when `m` is 1, as the sum of `threads`
/// parts (consecutive output rows), each summed on its own thread.
fn backprop_filter<T: Number>(
    x: &[T],
    dy: &[T],
    geo: &Geometry,
    m: usize,
    threads: usize,
) -> Vec<T> {
    let len = geo.k_h * geo.k_w * geo.out_c;
    if m == 1 {
        let rows = geo.batch * geo.out_h;
        return sum_of_parts(len, threads, threads, |part, df| {
            backprop_filter_rows(x, dy, geo, split_range(rows, part, threads), df)
        });
    }
    let mut df = vec![T::ZERO; len];
    for_each_tap(geo, |yo, xo, fo| {
        for ch in 0..geo.in_c {
            let v = x[xo + ch];
            for o in ch * m..(ch + 1) * m {
                df[fo + o] = df[fo + o].add(v.mul(dy[yo + o]));
            }
        }
    });
    df
}

/// Threads for a pass over `geo`: the session's intra-op threads when the multiplier is 1
/// (the paths that split) and the multiply-adds are worth splitting, else 1.
fn pass_threads(k: &KernelCtx<'_>, geo: &Geometry, m: usize) -> usize {
    if m != 1 {
        return 1;
    }
    let work = [geo.out_h, geo.out_w, geo.out_c, geo.k_h, geo.k_w]
        .iter()
        .fold(geo.batch, |w, &d| w.saturating_mul(d));
    k.threads_for_work(work, MIN_LOOP_WORK)
}

/// The geometry of an NHWC `input` shape convolved depthwise with a `[k_h, k_w, in_c,
/// multiplier]` `filter` shape, and the multiplier.
fn geometry<T: Element>(
    window: &crate::ops::nn::window::Window2d,
    input: &[usize],
    filter: &[usize],
) -> Result<(Geometry, usize)> {
    let [n, h, w, c] = rank4(input, "input")?;
    let [kh, kw, fc, m] = rank4(filter, "filter")?;
    if fc != c {
        return Err(Error::invalid(format!(
            "input depth {c} must equal the filter's in_channels {fc} (input {input:?}, \
             filter {filter:?})"
        )));
    }
    let out_c = c
        .checked_mul(m)
        .ok_or_else(|| Error::invalid("too many channels"))?;
    let geo = Geometry::new(window, [n, h, w, c], [kh, kw], out_c).map_err(Error::invalid)?;
    geo.check_memory(T::DTYPE)?;
    Ok((geo, m))
}

/// Which of the three ops a kernel runs.
#[derive(Clone, Copy)]
enum Pass {
    Forward,
    BackpropInput,
    BackpropFilter,
}

/// The kernel of `pass`: errors name the node.
fn kernel(ctx: &KernelBuildCtx<'_>, pass: Pass) -> KernelResult {
    let window = nhwc_window(ctx.node)?;
    let name = format!("{} '{}'", ctx.node.op_type(), ctx.node.name());
    let dtype_input = match pass {
        Pass::BackpropInput => 1,
        _ => 0,
    };
    with_dtype!(float, ctx.input_dtype(dtype_input), T => kernel_fn(move |k| {
        let named = |e: Error| Error::invalid(format!("{name}: {e}"));
        let (a, b) = (k.input(0)?, k.input(1)?);
        let out = match pass {
            Pass::Forward => {
                let (geo, m) = geometry::<T>(&window, a.shape(), b.shape()).map_err(named)?;
                let threads = pass_threads(k, &geo, m);
                let y = forward(a.as_slice::<T>()?, b.as_slice::<T>()?, &geo, m, threads);
                Tensor::new(&geo.out_shape(), y)?
            }
            Pass::BackpropInput => {
                let sizes = runtime_sizes(a, "input_sizes").map_err(named)?;
                let (geo, m) = geometry::<T>(&window, &sizes, b.shape()).map_err(named)?;
                let dy = k.input(2)?;
                check_dy(&geo, dy).map_err(named)?;
                let threads = pass_threads(k, &geo, m);
                let dx = backprop_input(dy.as_slice::<T>()?, b.as_slice::<T>()?, &geo, m, threads);
                Tensor::new(&sizes, dx)?
            }
            Pass::BackpropFilter => {
                let sizes = runtime_sizes(b, "filter_sizes").map_err(named)?;
                let (geo, m) = geometry::<T>(&window, a.shape(), &sizes).map_err(named)?;
                let dy = k.input(2)?;
                check_dy(&geo, dy).map_err(named)?;
                let threads = pass_threads(k, &geo, m);
                let df = backprop_filter(a.as_slice::<T>()?, dy.as_slice::<T>()?, &geo, m, threads);
                Tensor::new(&sizes, df)?
            }
        };
        k.push_output(out);
        Ok(())
    }))
}

/// DepthwiseConv2dNative's kernel.
pub(super) fn forward_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    kernel(ctx, Pass::Forward)
}

/// DepthwiseConv2dNativeBackpropInput's kernel.
pub(super) fn backprop_input_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    kernel(ctx, Pass::BackpropInput)
}

/// DepthwiseConv2dNativeBackpropFilter's kernel.
pub(super) fn backprop_filter_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    kernel(ctx, Pass::BackpropFilter)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{AttrValue, Attrs};
    use crate::ops::nn::window::Window2d;

    /// Deterministic values in [-1, 1).
    fn values(n: usize, seed: usize) -> Vec<f32> {
        (0..n)
            .map(|i| ((i * 7919 + seed * 104_729) % 2000) as f32 / 1000.0 - 1.0)
            .collect()
    }

    fn geometry_of(
        input: [usize; 4],
        k: usize,
        stride: i64,
        padding: &str,
        dilation: i64,
    ) -> Geometry {
        let attrs: Attrs = [
            ("strides", AttrValue::from(vec![1i64, stride, stride, 1])),
            ("padding", padding.into()),
            ("dilations", vec![1i64, dilation, dilation, 1].into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let window = Window2d::conv(&attrs).unwrap();
        Geometry::new(&window, input, [k, k], input[3]).unwrap()
    }

    /// Multiplier 1 by the definition, each sum in tap order from zero (the generic walk's
    /// order): output, input gradient and filter gradient.
    fn reference(x: &[f32], f: &[f32], dy: &[f32], g: &Geometry) -> [Vec<f32>; 3] {
        let mut y = vec![0f32; g.batch * g.out_h * g.out_w * g.out_c];
        let mut dx = vec![0f32; g.batch * g.in_image()];
        let mut df = vec![0f32; g.k_h * g.k_w * g.in_c];
        for b in 0..g.batch {
            for oh in 0..g.out_h {
                for ow in 0..g.out_w {
                    for i in 0..g.k_h {
                        for j in 0..g.k_w {
                            let r =
                                (oh * g.stride[0] + i * g.dilation[0]) as isize - g.pad[0] as isize;
                            let s =
                                (ow * g.stride[1] + j * g.dilation[1]) as isize - g.pad[1] as isize;
                            if r < 0 || s < 0 || r >= g.in_h as isize || s >= g.in_w as isize {
                                continue;
                            }
                            for c in 0..g.in_c {
                                let yi = ((b * g.out_h + oh) * g.out_w + ow) * g.out_c + c;
                                let xi =
                                    ((b * g.in_h + r as usize) * g.in_w + s as usize) * g.in_c + c;
                                let fi = (i * g.k_w + j) * g.in_c + c;
                                y[yi] += x[xi] * f[fi];
                                dx[xi] += dy[yi] * f[fi];
                                df[fi] += x[xi] * dy[yi];
                            }
                        }
                    }
                }
            }
        }
        [y, dx, df]
    }

    /// The channel-vectorised multiplier-1 paths, on 1 and 3 threads, against the
    /// definition: bit-identical, except the filter gradient split in parts (1e-5).
    #[test]
    fn multiplier_one_paths_match_the_definition() {
        let cases = [
            ([2, 7, 6, 19], 3, 1, "SAME", 1),
            ([3, 9, 8, 16], 3, 2, "SAME", 1),
            ([1, 8, 9, 5], 3, 2, "VALID", 1),
            ([2, 6, 7, 24], 5, 1, "SAME", 1),
            ([1, 9, 9, 11], 3, 1, "VALID", 2),
        ];
        for (n, (input, k, stride, padding, dilation)) in cases.into_iter().enumerate() {
            let g = geometry_of(input, k, stride, padding, dilation);
            let x = values(g.batch * g.in_image(), n);
            let f = values(k * k * g.in_c, n + 10);
            let dy = values(g.batch * g.out_h * g.out_w * g.out_c, n + 20);
            let [y, dx, df] = reference(&x, &f, &dy, &g);
            for threads in [1, 3] {
                let what = format!("case {n}, {threads} threads");
                assert_eq!(forward(&x, &f, &g, 1, threads), y, "forward, {what}");
                assert_eq!(backprop_input(&dy, &f, &g, 1, threads), dx, "input, {what}");
                let got = backprop_filter(&x, &dy, &g, 1, threads);
                if threads == 1 {
                    assert_eq!(got, df, "filter, {what}");
                }
                for (a, b) in got.iter().zip(&df) {
                    assert!((a - b).abs() <= 1e-5 * b.abs().max(1.0), "filter, {what}");
                }
            }
        }
    }
}

//! Convolutions with short patches (`k_h·k_w·in_c` ≤ [`SHORT_CONTRACTION`], a first
//! convolution's 3×3×1) computed straight from the input: each patch row of the product
//! is read in place from a zero-padded copy of the input (the input itself when it needs
//! no padding) by [`short_product`], so no im2col buffer is built. The terms are the
//! im2col path's, added in the same order, so the results are bit-identical to it. The
//! filter gradient of such a convolution sums `patchᵀ · dy` over the pixels the same way,
//! reading the patches in place ([`direct_filter_grad`]).

use crate::device::gemm::{short_product, ShortLhs, Store, SHORT_CONTRACTION};
use crate::ops::nn::window::Geometry;
use crate::tensor::Number;
use std::borrow::Cow;
use std::ops::Range;

/// Output elements per block of a direct convolution: the block is zeroed, written and
/// finished (bias, activation) while it is in the first-level cache.
pub(super) const DIRECT_BLOCK_ELEMENTS: usize = 1 << 11;

/// The input as the patches' rows read it: zero-padded so that every tap of every
/// window lies inside, `height × width` pixels of `in_c` channels per image.
pub(super) struct PaddedInput<'a, T: Clone> {
    pub(super) data: Cow<'a, [T]>,
    pub(super) height: usize,
    pub(super) width: usize,
}

impl Geometry {
    /// Whether the forward convolution reads its patches in place: short patches, and a
    /// padded input no larger than the patch matrix an im2col would build.
    pub(super) fn reads_taps_in_place(&self) -> bool {
        let k = self.k_h * self.k_w * self.in_c;
        let [h, w] = self.padded_size();
        let padded = self.batch.saturating_mul(h).saturating_mul(w);
        let patches = (self.batch * self.out_h * self.out_w).saturating_mul(k);
        k > 0
            && k <= SHORT_CONTRACTION
            && self.out_c > 0
            && padded.saturating_mul(self.in_c) <= patches
    }

    /// Rows and columns of the padded input: from the first padding row (column) to the
    /// last tap of the last window.
    fn padded_size(&self) -> [usize; 2] {
        let span = |out: usize, k: usize, s: usize, d: usize| {
            if out == 0 || k == 0 {
                0
            } else {
                (out - 1) * s + (k - 1) * d + 1
            }
        };
        [
            span(self.out_h, self.k_h, self.stride[0], self.dilation[0]),
            span(self.out_w, self.k_w, self.stride[1], self.dilation[1]),
        ]
    }

    /// `input` zero-padded as [`PaddedInput`] says (borrowed when no padding is needed).
    pub(super) fn padded_input<'a, T: Number>(&self, input: &'a [T]) -> PaddedInput<'a, T> {
        let [height, width] = self.padded_size();
        let c = self.in_c;
        if self.pad == [0, 0] && height == self.in_h && width == self.in_w {
            return PaddedInput {
                data: Cow::Borrowed(input),
                height,
                width,
            };
        }
        let mut data = Vec::with_capacity(self.batch * height * width * c);
        // The padded columns that hold input columns.
        let cols = self.pad[1].min(width)..(self.pad[1] + self.in_w).min(width);
        let size = self.in_image();
        for image in (0..self.batch).map(|b| &input[b * size..(b + 1) * size]) {
            for py in 0..height {
                let row = py
                    .checked_sub(self.pad[0])
                    .filter(|&y| y < self.in_h)
                    .filter(|_| !cols.is_empty());
                let Some(y) = row else {
                    data.resize(data.len() + width * c, T::ZERO);
                    continue;
                };
                // (The first of those is input column 0.)
                data.resize(data.len() + cols.start * c, T::ZERO);
                let line = &image[y * self.in_w * c..];
                data.extend_from_slice(&line[..cols.len() * c]);
                data.resize(data.len() + (width - cols.end) * c, T::ZERO);
            }
        }
        PaddedInput {
            data: Cow::Owned(data),
            height,
            width,
        }
    }

    /// The offset of each tap (row, column, channel of the window) from its window's
    /// first element in the padded input.
    pub(super) fn tap_offsets<T: Clone>(&self, padded: &PaddedInput<'_, T>) -> Vec<usize> {
        let (c, w) = (self.in_c, padded.width);
        let mut offsets = Vec::with_capacity(self.k_h * self.k_w * c);
        for i in 0..self.k_h {
            for j in 0..self.k_w {
                let start = (i * self.dilation[0] * w + j * self.dilation[1]) * c;
                offsets.extend(start..start + c);
            }
        }
        offsets
    }

    /// Writes the window start of each output pixel in `pixels` into `starts`.
    fn window_starts<T: Clone>(
        &self,
        padded: &PaddedInput<'_, T>,
        pixels: Range<usize>,
        starts: &mut Vec<usize>,
    ) {
        let c = self.in_c;
        let image = padded.height * padded.width * c;
        let row = |b: usize, oy: usize| b * image + oy * self.stride[0] * padded.width * c;
        let step = self.stride[1] * c;
        starts.clear();
        if pixels.is_empty() {
            return;
        }
        // Stepped along the output row by row (a loop the compiler keeps tight, where an
        // iterator of pixels cost ~20 cycles each).
        let (mut b, mut oy, first) = self.pixel(pixels.start);
        let mut left = pixels.len();
        let mut ox = first;
        while left > 0 {
            let n = (self.out_w - ox).min(left);
            let at = row(b, oy) + ox * step;
            starts.extend((0..n).map(|i| at + i * step));
            left -= n;
            ox = 0;
            oy += 1;
            if oy == self.out_h {
                (b, oy) = (b + 1, 0);
            }
        }
    }
}

/// The patch rows of a block of output pixels, read in place (a [`ShortLhs`]).
pub(super) struct Taps<'a, T> {
    data: &'a [T],
    starts: &'a [usize],
    offsets: &'a [usize],
}

impl<T: Sync> ShortLhs<T> for Taps<'_, T> {
    fn data(&self) -> &[T] {
        self.data
    }
    fn k(&self) -> usize {
        self.offsets.len()
    }
    fn rows(&self) -> usize {
        self.starts.len()
    }
    #[inline(always)]
    fn start(&self, r: usize) -> usize {
        self.starts[r]
    }
    #[inline(always)]
    fn offset(&self, t: usize) -> usize {
        self.offsets[t]
    }
}

/// Writes the output pixels `pixels` (`dst`, `pixels.len() × out_c`) of the convolution
/// of the padded input with `filter`; `starts` is scratch for the window starts.
pub(super) fn direct_block<T: Number>(
    g: &Geometry,
    padded: &PaddedInput<'_, T>,
    offsets: &[usize],
    filter: &[T],
    pixels: Range<usize>,
    starts: &mut Vec<usize>,
    dst: &mut [T],
) {
    g.window_starts(padded, pixels, starts);
    let taps = Taps {
        data: &padded.data,
        starts,
        offsets,
    };
    short_product(&taps, filter, dst, Store::Replace);
}

/// Output pixels a filter gradient takes at once: their rows of the output gradient stay
/// in the first-level cache while each group of taps is summed over them.
const FILTER_GRAD_BLOCK: usize = 128;

/// Adds the filter gradient `Σ patch(p)ᵀ · dy(p)` over the output pixels `pixels` into
/// `acc` (`k_h·k_w·in_c × out_c`), the patches read in place from the padded input; `dy`
/// holds every pixel's `out_c` gradients.
pub(super) fn direct_filter_grad<T: Number>(
    g: &Geometry,
    padded: &PaddedInput<'_, T>,
    offsets: &[usize],
    dy: &[T],
    pixels: Range<usize>,
    acc: &mut [T],
) {
    let oc = g.out_c;
    let mut starts = Vec::with_capacity(FILTER_GRAD_BLOCK);
    for first in pixels.clone().step_by(FILTER_GRAD_BLOCK) {
        let block = first..(first + FILTER_GRAD_BLOCK).min(pixels.end);
        g.window_starts(padded, block.clone(), &mut starts);
        let taps = Taps {
            data: &padded.data,
            starts: &starts,
            offsets,
        };
        taps_transposed_product(&taps, &dy[block.start * oc..block.end * oc], acc);
    }
}

/// `acc += aᵀ · b` for the taps `a` (`rows × k`) and a row-major `b` (`rows × n`, `n =
/// acc.len() / k`), compiled for AVX-512 or AVX2 where the CPU has it.
fn taps_transposed_product<T: Number>(a: &Taps<'_, T>, b: &[T], acc: &mut [T]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512 F, checked just above.
            return unsafe { taps_transposed_product_avx512(a, b, acc) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            return unsafe { taps_transposed_product_avx2(a, b, acc) };
        }
    }
    taps_transposed_product_body::<8, 4, T>(a, b, acc)
}

/// [`taps_transposed_product_body`] compiled with AVX-512: 32 columns are two registers,
/// and nine taps (a first convolution's 3×3×1) are summed in one pass over `b` (18
/// registers of sums). On the 2-core Xeon, conv1's filter gradient in `train/cnn_step`
/// read its 6.4 MB output gradient three times in groups of four, four and one taps,
/// the first pass from the third-level cache.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn taps_transposed_product_avx512<T: Number>(a: &Taps<'_, T>, b: &[T], acc: &mut [T]) {
    taps_transposed_product_body::<32, 9, T>(a, b, acc)
}

/// [`taps_transposed_product_body`] compiled with AVX2: 16 columns are two registers.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn taps_transposed_product_avx2<T: Number>(a: &Taps<'_, T>, b: &[T], acc: &mut [T]) {
    taps_transposed_product_body::<16, 4, T>(a, b, acc)
}

/// The body of [`taps_transposed_product`]: the taps `G` (at least four; then four, two,
/// one) at a time, and the columns `W` (then 8, then one) at a time, each group's sums
/// kept in registers over all the rows and then added into `acc`. Each sum takes the
/// rows in order whatever `G` and `W`, so the results do not depend on them.
#[inline(always)]
fn taps_transposed_product_body<const W: usize, const G: usize, T: Number>(
    a: &Taps<'_, T>,
    b: &[T],
    acc: &mut [T],
) {
    let k = a.offsets.len();
    let n = acc.len().checked_div(k).unwrap_or(0);
    let mut t = 0;
    while t < k {
        t += match k - t {
            left if left >= G => tap_group::<G, W, T>(a, b, n, t, acc),
            4.. => tap_group::<4, W, T>(a, b, n, t, acc),
            2 | 3 => tap_group::<2, W, T>(a, b, n, t, acc),
            _ => tap_group::<1, W, T>(a, b, n, t, acc),
        };
    }
}

/// Taps `t..t + G` of [`taps_transposed_product_body`], every column; returns `G`.
#[inline(always)]
fn tap_group<const G: usize, const W: usize, T: Number>(
    a: &Taps<'_, T>,
    b: &[T],
    n: usize,
    t: usize,
    acc: &mut [T],
) -> usize {
    let j = columns::<G, W, T>(a, b, n, t, 0, acc);
    let j = columns::<G, 8, T>(a, b, n, t, j, acc);
    columns::<G, 1, T>(a, b, n, t, j, acc);
    G
}

/// Rows of `b` ahead of the one being summed whose first columns [`columns`] asks the
/// CPU to fetch: conv1's output gradient (6.4 MB in `train/cnn_step`) comes from the
/// third-level cache, and the sums waited on its loads.
const PREFETCH_ROWS: usize = 16;

/// Asks the CPU to bring the cache lines of `values[at..]`'s first 128 bytes into the
/// first-level cache: a hint, which reads nothing (an `at` past the end is fine).
#[inline(always)]
fn prefetch<T>(values: &[T], at: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let p: *const i8 = values.as_ptr().wrapping_add(at).cast();
        // SAFETY: a prefetch reads nothing and cannot fault, whatever the address; SSE
        // is part of x86-64.
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>(p);
            _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(64));
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (values, at);
}

/// Columns `j..` of taps `t..t + G`, `W` at a time while `W` are left; returns the first
/// column not done.
#[inline(always)]
fn columns<const G: usize, const W: usize, T: Number>(
    a: &Taps<'_, T>,
    b: &[T],
    n: usize,
    t: usize,
    mut j: usize,
    acc: &mut [T],
) -> usize {
    let offsets: [usize; G] = std::array::from_fn(|g| a.offsets[t + g]);
    while j + W <= n {
        let mut sums = [[T::ZERO; W]; G];
        for (r, (&start, row)) in a.starts.iter().zip(b.chunks_exact(n)).enumerate() {
            prefetch(b, (r + PREFETCH_ROWS) * n + j);
            let bj: &[T; W] = row[j..j + W].try_into().expect("W columns");
            for (s, &o) in sums.iter_mut().zip(&offsets) {
                let v = a.data[start + o];
                for i in 0..W {
                    s[i] = s[i].add(v.mul(bj[i]));
                }
            }
        }
        for (g, s) in sums.iter().enumerate() {
            let out = &mut acc[(t + g) * n + j..(t + g) * n + j + W];
            out.iter_mut().zip(s).for_each(|(o, &v)| *o = o.add(v));
        }
        j += W;
    }
    j
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::nn::window::Window2d;
    use crate::test_util::values;

    #[test]
    fn filter_gradients_of_every_width_agree_bit_for_bit() {
        // 37 output channels: blocks of 32 (or 16, or 8), then 8, then single columns.
        let attrs: crate::graph::Attrs = [
            ("strides".to_string(), vec![1i64, 1, 1, 1].into()),
            ("padding".to_string(), "SAME".into()),
        ]
        .into_iter()
        .collect();
        let window = Window2d::conv(&attrs).unwrap();
        let (xs, oc) = ([2, 9, 7, 1], 37);
        let g = Geometry::new(&window, xs, [3, 3], oc).unwrap();
        let x = values(xs.iter().product(), 3);
        let pixels = g.batch * g.out_h * g.out_w;
        let dy = values(pixels * oc, 4);
        let padded = g.padded_input(&x);
        let offsets = g.tap_offsets(&padded);
        let mut starts = Vec::new();
        g.window_starts(&padded, 0..pixels, &mut starts);
        let taps = Taps {
            data: &padded.data,
            starts: &starts,
            offsets: &offsets,
        };
        let mut want = vec![0.0; 9 * oc];
        taps_transposed_product(&taps, &dy, &mut want);
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        for (width, group) in [(8, 4), (16, 4), (32, 4), (32, 9), (8, 9)] {
            let mut got = vec![0.0; 9 * oc];
            match (width, group) {
                (8, 4) => taps_transposed_product_body::<8, 4, f64>(&taps, &dy, &mut got),
                (16, 4) => taps_transposed_product_body::<16, 4, f64>(&taps, &dy, &mut got),
                (32, 4) => taps_transposed_product_body::<32, 4, f64>(&taps, &dy, &mut got),
                (32, _) => taps_transposed_product_body::<32, 9, f64>(&taps, &dy, &mut got),
                _ => taps_transposed_product_body::<8, 9, f64>(&taps, &dy, &mut got),
            }
            assert_eq!(
                bits(&got),
                bits(&want),
                "{width} columns and {group} taps at a time"
            );
        }
    }
}

//! Stride-1, undilated f32 convolutions on CPUs with AVX-512, as implicit products: the
//! patches are read where they lie in the (zero-padded) input, the output gradient or
//! the output gradient's rows, so no patch matrix is built (no im2col, no col2im), and a
//! 12 × 32 tile of each result is kept in 24 vector registers while its whole
//! contraction runs.
//!
//! For stride 1 the taps `(j, channel)` of one row of a window are consecutive in the
//! input, and the windows of consecutive output columns are `in_c` elements apart. So:
//! - the convolution's output row `(b, oy)` is, for each filter row `i`, the product of
//!   the input row `oy + i` read as a matrix with rows `in_c` apart (one per output
//!   column) and `k_w·in_c` columns, with the filter's rows for `i`;
//! - the input gradient adds, for each tap `(i, j)`, `dy(b, oy) · filter(i, j)ᵀ` into the
//!   input row `oy + i` from column `j` on;
//! - the filter gradient of filter row `i` sums, over the output rows, the input row
//!   `oy + i` read transposed (rows: the `k_w·in_c` taps, consecutive; contraction: the
//!   output columns, `in_c` apart) times that output row's gradient.
//!
//! Each is one [`tile`] kernel over a two-level list of contraction segments. The sums run
//! in a different order from the patch-matrix path's products, so the results agree with
//! them (and with the float64 definition) to rounding, not bit for bit.

use super::finish::BiasActivation;
use super::taps::PaddedInput;
use crate::device::gemm::has_avx512f;
use crate::device::parallel::{split_range, sum_of_parts, written_units, zeroed_units};
use crate::ops::linalg::matmul::cpu::Activation;
use crate::ops::nn::window::Geometry;
use crate::tensor::Number;
use std::mem::MaybeUninit;
use std::ops::Range;

/// Result rows a tile keeps in registers.
const MR: usize = 12;
/// Result columns of a tile: two 16-lane vectors.
const NR: usize = 32;
/// Images whose filter gradient is summed tile by tile at once: their input and output
/// gradient stay in the second-level cache while every tile runs over them.
const FILTER_GRAD_IMAGES: usize = 4;
/// Rows of the output gradient ahead of the one a filter gradient tile reads that it
/// prefetches: the output gradient's rows stream from the second-level cache (a tile's
/// 4 images × 144 rows × 128 bytes do not fit the first). On the 2-core Xeon, conv2 of
/// `train/cnn_step` (per-node minima of 8 traced steps, 2026-12-08, alternated in one
/// binary): 2215 / 2224 / 2215 µs without, 2043 / 2155 / 2098 with 8 rows ahead (4:
/// 2082, 12: 2142) at 1 thread; 1215 / 1123 → 1152 / 1049 µs at 2.
const FILTER_GRAD_PREFETCH_ROWS: usize = 8;

impl Geometry {
    /// Whether this convolution of `T`s runs here: f32, stride 1, no dilation, patches too
    /// long to read by taps (`taps.rs` takes those), a nonempty output, on a CPU with
    /// AVX-512 F.
    pub(super) fn runs_implicit<T: 'static>(&self) -> bool {
        std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>()
            && self.stride == [1, 1]
            && self.dilation == [1, 1]
            && !self.reads_taps_in_place()
            && self.out_c > 0
            && self.batch * self.out_h * self.out_w > 0
            && self.k_h * self.k_w * self.in_c > 0
            && has_avx512f()
    }
}

/// `values` as f32s, for a `T` that [`Geometry::runs_implicit`] said is f32.
fn as_f32<T: 'static>(values: &[T]) -> &[f32] {
    assert_eq!(std::any::TypeId::of::<T>(), std::any::TypeId::of::<f32>());
    // SAFETY: `T` is f32, checked just above.
    unsafe { std::slice::from_raw_parts(values.as_ptr().cast(), values.len()) }
}

/// [`as_f32`] for a mutable slice.
fn as_f32_mut<T: 'static>(values: &mut [T]) -> &mut [f32] {
    assert_eq!(std::any::TypeId::of::<T>(), std::any::TypeId::of::<f32>());
    // SAFETY: `T` is f32, checked just above.
    unsafe { std::slice::from_raw_parts_mut(values.as_mut_ptr().cast(), values.len()) }
}

/// [`as_f32_mut`] for a slice whose elements may be uninitialized.
fn as_f32_uninit<T: 'static>(values: &mut [MaybeUninit<T>]) -> &mut [MaybeUninit<f32>] {
    assert_eq!(std::any::TypeId::of::<T>(), std::any::TypeId::of::<f32>());
    // SAFETY: `T` is f32, checked just above.
    unsafe { std::slice::from_raw_parts_mut(values.as_mut_ptr().cast(), values.len()) }
}

/// The padded input of f32s that `padded` is.
fn padded_f32<'a, T: 'static + Clone>(padded: &'a PaddedInput<'_, T>) -> PaddedInput<'a, f32> {
    PaddedInput {
        data: std::borrow::Cow::Borrowed(as_f32(&padded.data)),
        height: padded.height,
        width: padded.width,
    }
}

/// Segments of a tile's contraction: `count` of them, `a` and `b` advancing by the steps
/// from one to the next.
#[derive(Clone, Copy)]
struct Segments {
    count: usize,
    a_step: usize,
    b_step: usize,
}

impl Segments {
    const ONE: Segments = Segments {
        count: 1,
        a_step: 0,
        b_step: 0,
    };
}

/// One tile's operands, as element offsets: result row `r` (of `rows` ≤ [`MR`]) and
/// column `j` (of `cols` ≤ [`NR`]) is `c[c_at + r·ldc + j] (=|+=) Σ a[..]·b[..]` over the
/// outer segments, the inner segments and `kc` terms each, where term `k` of segment
/// start `(sa, sb)` is `a[sa + r·ar + k·ak] · b[sb + k·ldb + j]`.
#[derive(Clone, Copy)]
struct Tile {
    rows: usize,
    cols: usize,
    a_at: usize,
    ar: usize,
    ak: usize,
    kc: usize,
    b_at: usize,
    ldb: usize,
    outer: Segments,
    inner: Segments,
    c_at: usize,
    ldc: usize,
    /// Add to the result rather than overwrite it.
    add: bool,
    /// Elements of `b` ahead of each term's row whose first 128 bytes to prefetch into
    /// the first-level cache (0: none); only full tiles with consecutive rows (`ar` 1:
    /// the filter gradient's) do.
    prefetch: usize,
}

impl Tile {
    /// The last element of `a` and of `b` a tile reads, plus one.
    fn extents(&self) -> (usize, usize) {
        let last = |s: &Segments| s.count.saturating_sub(1);
        let (o, i, k) = (
            last(&self.outer),
            last(&self.inner),
            self.kc.saturating_sub(1),
        );
        let a = self.a_at
            + o * self.outer.a_step
            + i * self.inner.a_step
            + (self.rows - 1) * self.ar
            + k * self.ak;
        let b = self.b_at + o * self.outer.b_step + i * self.inner.b_step + k * self.ldb;
        (a + 1, b + self.cols)
    }

    /// Runs the tile on `a`, `b` and `c`, checking that it stays inside them.
    fn run(&self, a: &[f32], b: &[f32], c: &mut [f32]) {
        // SAFETY: `c` is `c.len()` initialized elements, to read and write.
        unsafe { self.launch(a, b, (c.as_mut_ptr(), c.len()), None) }
    }

    /// Runs a tile that overwrites its result (not [`Tile::add`]) in `c`, whose elements
    /// may be uninitialized, finishing each sum as `finish` says: its column's bias (the
    /// tile's columns of `bias`, from its first on) added, then the activation, while the
    /// sums are in registers. The results are those of [`BiasActivation`]'s pass over the
    /// stored sums, bit for bit.
    fn write(
        &self,
        a: &[f32],
        b: &[f32],
        c: &mut [MaybeUninit<f32>],
        finish: Option<(&[f32], Activation)>,
    ) {
        assert!(!self.add);
        let finish = finish.map(|(bias, activation)| {
            assert!(bias.len() >= self.cols);
            (bias.as_ptr(), activation)
        });
        // SAFETY: `c` is `c.len()` elements to write, and the tile does not read them.
        unsafe { self.launch(a, b, (c.as_mut_ptr().cast(), c.len()), finish) }
    }

    /// Runs the tile on `a`, `b` and the `c.1` elements at `c.0`, checking that it stays
    /// inside them; `finish` as [`Tile::write`] takes it, its bias `cols` long.
    ///
    /// # Safety
    /// `c.0` is valid for writing `c.1` elements, and for reading them if the tile adds.
    unsafe fn launch(
        &self,
        a: &[f32],
        b: &[f32],
        (c, c_len): (*mut f32, usize),
        finish: Option<(*const f32, Activation)>,
    ) {
        assert!((1..=MR).contains(&self.rows) && (1..=NR).contains(&self.cols));
        assert!(self.outer.count > 0 && self.inner.count > 0 && self.kc > 0);
        let (a_end, b_end) = self.extents();
        let c_end = self.c_at + (self.rows - 1) * self.ldc + self.cols;
        assert!(a_end <= a.len() && b_end <= b.len() && c_end <= c_len);
        assert!(has_avx512f());
        #[cfg(target_arch = "x86_64")]
        // SAFETY: AVX-512 F is present and every element read or written lies inside the
        // slices and `c` (checked just above; `c` as the caller vouches).
        unsafe {
            let (a, b) = (a.as_ptr(), b.as_ptr());
            type Kernel = unsafe fn(&Tile, *const f32, *const f32, *mut f32, Option<Finish>);
            let kernel: Kernel = match self.rows {
                MR if self.prefetch > 0 && self.ar == 1 => tile::<MR, 1, true>,
                MR => match self.ar {
                    1 => tile::<MR, 1, false>,
                    16 => tile::<MR, 16, false>,
                    32 => tile::<MR, 32, false>,
                    64 => tile::<MR, 64, false>,
                    128 => tile::<MR, 128, false>,
                    _ => tile::<MR, 0, false>,
                },
                11 => tile::<11, 0, false>,
                10 => tile::<10, 0, false>,
                9 => tile::<9, 0, false>,
                8 => tile::<8, 0, false>,
                7 => tile::<7, 0, false>,
                6 => tile::<6, 0, false>,
                5 => tile::<5, 0, false>,
                4 => tile::<4, 0, false>,
                3 => tile::<3, 0, false>,
                2 => tile::<2, 0, false>,
                _ => tile::<1, 0, false>,
            };
            kernel(self, a, b, c, finish)
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (a, b, c, finish);
    }
}

/// A tile's bias (its first column's) and activation, as [`Tile::write`] applies them.
type Finish = (*const f32, Activation);

/// The tile kernel: `R` rows of two vectors of sums in registers over the whole
/// contraction (fused multiply-adds), then stored once. A nonzero `AR` is the tile's
/// `ar`, known when compiled: each row's operand is then a constant displacement from
/// one pointer, and the loop spends no integer instructions on addresses beside the
/// fused multiply-adds. On the 2-core Xeon, conv2 of `train/cnn_step` (1 thread,
/// per-node minima of 5–6 traced steps, alternated with main's runtime-`ar` kernel, four
/// sittings, 2026-12-07) took 1808–2052 µs for the input gradient against 1942–2106,
/// 1884–2136 for the filter gradient against 2035–2302 and 1858–2152 for the forward
/// against 1852–2164: a few per cent, near the noise of the shared machine.
///
/// At the store, `finish` (if any) adds the columns' biases, read at its pointer, and
/// applies its activation: `max(0, x)` as `_mm512_max_ps(0, x)` picks it (`x` when NaN
/// or −0, like [`crate::ops::math::activation::relu`]), Relu6 then `min(6, ·)` the same
/// way.
///
/// # Safety
/// AVX-512 F is present; every element the tile reads or writes lies in the buffers at
/// `a`, `b` and `c`, and `finish`'s bias has the tile's `cols` elements (see
/// [`Tile::launch`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn tile<const R: usize, const AR: usize, const PF: bool>(
    t: &Tile,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    finish: Option<Finish>,
) {
    use std::arch::x86_64::{
        _mm512_add_ps, _mm512_fmadd_ps, _mm512_mask_storeu_ps, _mm512_maskz_loadu_ps,
        _mm512_max_ps, _mm512_min_ps, _mm512_set1_ps, _mm512_setzero_ps, _mm_prefetch, _MM_HINT_T0,
    };
    let lanes = |n: usize| if n >= 16 { 0xffffu16 } else { (1u16 << n) - 1 };
    let (m0, m1) = (lanes(t.cols), lanes(t.cols.saturating_sub(16)));
    let ar = if AR == 0 { t.ar } else { AR };
    let mut acc = [[_mm512_setzero_ps(); 2]; R];
    for o in 0..t.outer.count {
        for s in 0..t.inner.count {
            let sa = a.add(t.a_at + o * t.outer.a_step + s * t.inner.a_step);
            let sb = b.add(t.b_at + o * t.outer.b_step + s * t.inner.b_step);
            for k in 0..t.kc {
                let bk = sb.add(k * t.ldb);
                if PF {
                    let ahead: *const i8 = bk.wrapping_add(t.prefetch).cast();
                    _mm_prefetch::<_MM_HINT_T0>(ahead);
                    _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(64));
                }
                let (b0, b1) = (
                    _mm512_maskz_loadu_ps(m0, bk),
                    _mm512_maskz_loadu_ps(m1, bk.add(16)),
                );
                let ak = sa.add(k * t.ak);
                for (r, sums) in acc.iter_mut().enumerate() {
                    let v = _mm512_set1_ps(*ak.add(r * ar));
                    sums[0] = _mm512_fmadd_ps(v, b0, sums[0]);
                    sums[1] = _mm512_fmadd_ps(v, b1, sums[1]);
                }
            }
        }
    }
    let bias = finish.map(|(at, _)| {
        (
            _mm512_maskz_loadu_ps(m0, at),
            _mm512_maskz_loadu_ps(m1, at.add(16)),
        )
    });
    let activation = finish.map_or(Activation::Linear, |(_, act)| act);
    let (zero, six) = (_mm512_setzero_ps(), _mm512_set1_ps(6.0));
    for (r, sums) in acc.iter().enumerate() {
        let cr = c.add(t.c_at + r * t.ldc);
        let mut s = [sums[0], sums[1]];
        if t.add {
            s[0] = _mm512_add_ps(_mm512_maskz_loadu_ps(m0, cr), s[0]);
            s[1] = _mm512_add_ps(_mm512_maskz_loadu_ps(m1, cr.add(16)), s[1]);
        }
        if let Some((b0, b1)) = bias {
            s = [_mm512_add_ps(s[0], b0), _mm512_add_ps(s[1], b1)];
        }
        for v in &mut s {
            *v = match activation {
                Activation::Linear => *v,
                Activation::Relu => _mm512_max_ps(zero, *v),
                Activation::Relu6 => _mm512_min_ps(six, _mm512_max_ps(zero, *v)),
            };
        }
        _mm512_mask_storeu_ps(cr, m0, s[0]);
        _mm512_mask_storeu_ps(cr.add(16), m1, s[1]);
    }
}

/// The column blocks of a result `n` wide: ([`NR`]-wide) starts and widths.
fn column_blocks(n: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..n).step_by(NR).map(move |j| (j, NR.min(n - j)))
}

/// The row blocks of `n` result rows: ([`MR`]-high) starts and heights.
fn row_blocks(n: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..n).step_by(MR).map(move |r| (r, MR.min(n - r)))
}

/// The convolution's output rows `rows` (`b·out_h + oy`) into `dst` (`rows.len() ×
/// out_w × out_c`, every element written), read from the padded input, each finished as
/// `finish` says.
fn forward_rows(
    g: &Geometry,
    padded: &PaddedInput<'_, f32>,
    filter: &[f32],
    finish: Option<(&[f32], Activation)>,
    rows: Range<usize>,
    dst: &mut [MaybeUninit<f32>],
) {
    let (c, oc, ow) = (g.in_c, g.out_c, g.out_w);
    let line = padded.width * c;
    let image = padded.height * line;
    let span = g.k_w * c;
    for (j0, cols) in column_blocks(oc) {
        for (u, first) in rows.clone().zip((0..dst.len()).step_by(ow * oc)) {
            let (b, oy) = (u / g.out_h, u % g.out_h);
            for (ox, n) in row_blocks(ow) {
                let t = Tile {
                    rows: n,
                    cols,
                    a_at: b * image + oy * line + ox * c,
                    ar: c,
                    ak: 1,
                    kc: span,
                    b_at: j0,
                    ldb: oc,
                    outer: Segments::ONE,
                    inner: Segments {
                        count: g.k_h,
                        a_step: line,
                        b_step: span * oc,
                    },
                    c_at: first + ox * oc + j0,
                    ldc: oc,
                    add: false,
                    prefetch: 0,
                };
                let finish = finish.map(|(bias, act)| (&bias[j0..j0 + cols], act));
                t.write(&padded.data, filter, dst, finish);
            }
        }
    }
}

/// `conv2d(input, filter)` as [`super::cpu::conv2d_forward`] computes it, for a geometry
/// that [`Geometry::runs_implicit`], each output element finished by `finish` in
/// registers: the output is written once, never zeroed, and never read back.
pub(super) fn forward<T: 'static + Copy + Send>(
    g: &Geometry,
    padded: &PaddedInput<'_, T>,
    filter: &[T],
    threads: usize,
    finish: Option<BiasActivation<'_, T>>,
) -> Vec<T> {
    let padded = padded_f32(padded);
    let filter = as_f32(filter);
    let finish = finish.map(|f| (as_f32(f.bias), f.activation));
    let row = g.out_w * g.out_c;
    // Output rows per block: about 32 Ki elements, written column block by column block
    // while the block stays in cache.
    let block = ((1 << 15) / row.max(1)).max(1);
    // SAFETY: `forward_rows` writes every element of the rows it is given (its tiles
    // cover each row's column blocks and row blocks), and the blocks cover each chunk.
    unsafe {
        written_units(g.batch * g.out_h, row, threads, |rows, chunk| {
            let out = as_f32_uninit(chunk);
            for (first, dst) in rows.step_by(block).zip(out.chunks_mut(block * row)) {
                let rows = first..first + dst.len() / row;
                forward_rows(g, &padded, filter, finish, rows, dst);
            }
        })
    }
}

impl Geometry {
    /// Whether the input gradient runs here: [`Geometry::runs_implicit`] and every tap of
    /// every window lies in the input (no padding).
    pub(super) fn backprop_input_runs_implicit<T: 'static>(&self) -> bool {
        self.runs_implicit::<T>()
            && self.pad == [0, 0]
            && self.out_h + self.k_h <= self.in_h + 1
            && self.out_w + self.k_w <= self.in_w + 1
    }
}

/// The gradient of the convolution with respect to its input, for a geometry that
/// [`Geometry::backprop_input_runs_implicit`], split over threads by image: for each
/// filter column `j`, each input row `y` is one tile per block of columns summing
/// `dy(b, y − i) · filter(i, j)ᵀ` over every filter row `i` that reaches it (the
/// transposed filter is kept with its rows reversed, so both operands advance as `i`
/// falls), added into the zeroed image from column `j` on. With `j` outside `y`, the
/// filter column's taps (24 KB for conv2's 3×3×32→64) stay in the first-level cache
/// over the image's rows, where the whole filter (73 KB) came from the second-level
/// cache for each row; each element still takes its terms in the order of `j`, so the
/// results are those of the `y`-outside order bit for bit.
pub(super) fn backprop_input<T: 'static + Copy + Default + Send>(
    g: &Geometry,
    filter: &[T],
    dy: &[T],
    threads: usize,
) -> Vec<T> {
    let (filter, dy) = (as_f32(filter), as_f32(dy));
    let (c, oc) = (g.in_c, g.out_c);
    let tap_len = c * oc;
    // Tap `(k_h − 1 − i, j)` holds filter tap `(i, j)` transposed: `out_c × in_c`.
    let mut transposed = vec![0f32; filter.len()];
    for (tap, src) in filter.chunks_exact(tap_len).enumerate() {
        let (i, j) = (tap / g.k_w, tap % g.k_w);
        let at = ((g.k_h - 1 - i) * g.k_w + j) * tap_len;
        let dst = &mut transposed[at..at + tap_len];
        for (ch, row) in src.chunks_exact(oc).enumerate() {
            for (o, &v) in row.iter().enumerate() {
                dst[o * c + ch] = v;
            }
        }
    }
    let (dy_row, per_image) = (g.out_w * oc, g.out_h * g.out_w * oc);
    zeroed_units(g.batch, g.in_image(), threads, |images, chunk: &mut [T]| {
        let chunk = as_f32_mut(chunk);
        for (b, dimg) in images.zip(chunk.chunks_exact_mut(g.in_image())) {
            let dyi = &dy[b * per_image..(b + 1) * per_image];
            for j in 0..g.k_w {
                for y in 0..g.in_h {
                    // The filter rows `i` with `0 ≤ y − i < out_h`, from the highest down.
                    let top = y.min(g.k_h - 1);
                    let count = (top + 1).saturating_sub((y + 1).saturating_sub(g.out_h));
                    if count == 0 {
                        continue;
                    }
                    for (j0, cols) in column_blocks(c) {
                        for (ox, n) in row_blocks(g.out_w) {
                            let t = Tile {
                                rows: n,
                                cols,
                                a_at: (y - top) * dy_row + ox * oc,
                                ar: oc,
                                ak: 1,
                                kc: oc,
                                b_at: ((g.k_h - 1 - top) * g.k_w + j) * tap_len + j0,
                                ldb: c,
                                outer: Segments::ONE,
                                inner: Segments {
                                    count,
                                    a_step: dy_row,
                                    b_step: g.k_w * tap_len,
                                },
                                c_at: (y * g.in_w + ox + j) * c + j0,
                                ldc: c,
                                add: true,
                                prefetch: 0,
                            };
                            t.run(dyi, &transposed, dimg);
                        }
                    }
                }
            }
        }
    })
}

/// The gradient of the convolution with respect to its filter (`k_h·k_w·in_c × out_c`),
/// for a geometry that [`Geometry::runs_implicit`]: one partial sum per thread over its
/// images, [`FILTER_GRAD_IMAGES`] at a time, added in order.
pub(super) fn backprop_filter<T: 'static + Number>(
    g: &Geometry,
    padded: &PaddedInput<'_, T>,
    dy: &[T],
    parts: usize,
) -> Vec<T> {
    let padded = padded_f32(padded);
    let dy = as_f32(dy);
    let (c, oc) = (g.in_c, g.out_c);
    let line = padded.width * c;
    let image = padded.height * line;
    let (span, out_image) = (g.k_w * c, g.out_h * g.out_w * oc);
    let size = g.k_h * span * oc;
    sum_of_parts(size, parts, parts, |part, acc: &mut [T]| {
        let acc = as_f32_mut(acc);
        let images = split_range(g.batch, part, parts);
        for first in images.clone().step_by(FILTER_GRAD_IMAGES) {
            let count = FILTER_GRAD_IMAGES.min(images.end - first);
            for i in 0..g.k_h {
                for (m, n) in row_blocks(span) {
                    for (j0, cols) in column_blocks(oc) {
                        let t = Tile {
                            rows: n,
                            cols,
                            a_at: first * image + i * line + m,
                            ar: 1,
                            ak: c,
                            kc: g.out_w,
                            b_at: first * out_image + j0,
                            ldb: oc,
                            outer: Segments {
                                count,
                                a_step: image,
                                b_step: out_image,
                            },
                            inner: Segments {
                                count: g.out_h,
                                a_step: line,
                                b_step: g.out_w * oc,
                            },
                            c_at: (i * span + m) * oc + j0,
                            ldc: oc,
                            add: true,
                            prefetch: FILTER_GRAD_PREFETCH_ROWS * oc,
                        };
                        t.run(&padded.data, dy, acc);
                    }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::super::cpu::{conv2d_backprop_filter, conv2d_backprop_input, conv2d_forward};
    use super::*;
    use crate::ops::math::activation::{relu, relu6};
    use crate::ops::nn::window::Window2d;

    /// `n` deterministic f32s in [-1, 1).
    fn values(n: usize, seed: u64) -> Vec<f32> {
        crate::test_util::values(n, seed)
            .into_iter()
            .map(|v| v as f32)
            .collect()
    }

    /// The input element under tap `(i, j)` of output pixel `(b, oy, ox)`, channel `ch`
    /// (zero in the padding), in float64.
    fn tap(
        g: &Geometry,
        x: &[f32],
        (b, oy, ox): (usize, usize, usize),
        i: usize,
        j: usize,
        ch: usize,
    ) -> f64 {
        match (g.in_row(oy, i), g.in_col(ox, j)) {
            (Some(y), Some(xx)) => x[((b * g.in_h + y) * g.in_w + xx) * g.in_c + ch] as f64,
            _ => 0.0,
        }
    }

    fn close(got: &[f32], want: &[f64], what: &str) {
        assert_eq!(got.len(), want.len(), "{what}");
        for (e, (&o, &w)) in got.iter().zip(want).enumerate() {
            assert!(
                (o as f64 - w).abs() <= 1e-5 * w.abs().max(1.0),
                "{what} [{e}]: {o} vs {w}"
            );
        }
    }

    /// A stride-1 convolution's window with `padding`.
    fn g_window(padding: &str) -> Window2d {
        let attrs: crate::graph::Attrs = [
            ("strides".to_string(), vec![1i64, 1, 1, 1].into()),
            ("padding".to_string(), padding.into()),
        ]
        .into_iter()
        .collect();
        Window2d::conv(&attrs).unwrap()
    }

    #[test]
    fn implicit_products_match_the_float64_definitions() {
        // Output widths of one tile, several tiles and a remainder; channel counts below
        // one vector, between one and two, and of whole tiles (each row stride a full
        // tile is compiled for: 1, 16, 32, 64, 128); SAME and VALID padding.
        for (xs, [kh, kw], oc, padding) in [
            ([2, 9, 14, 5], [3, 2], 37, "SAME"),
            ([3, 14, 14, 32], [3, 3], 64, "VALID"),
            ([1, 6, 27, 3], [2, 3], 9, "VALID"),
            ([2, 5, 13, 17], [1, 2], 20, "SAME"),
            // Whole tiles whose rows are 16 and 128 elements apart.
            ([1, 4, 13, 16], [2, 2], 128, "VALID"),
        ] {
            let g = Geometry::new(&g_window(padding), xs, [kh, kw], oc).unwrap();
            let c = g.in_c;
            let what = format!("{xs:?} {kh}x{kw}x{oc} {padding}");
            // An input smaller than the window: no output, a zero filter gradient.
            let small = Geometry::new(&g_window(padding), [2, 2, 9, c], [3, 3], oc).unwrap();
            assert!(!small.runs_implicit::<f32>() || padding == "SAME", "{what}");
            let dy0 = values(small.batch * small.out_h * small.out_w * oc, 5);
            let x0 = values(2 * 2 * 9 * c, 6);
            let dw0 = conv2d_backprop_filter(&small, &x0, &dy0, 2);
            assert_eq!(dw0.len(), 9 * c * oc);
            assert_eq!(g.runs_implicit::<f32>(), has_avx512f(), "{what}");
            assert!(!g.runs_implicit::<f64>());
            let x = values(xs.iter().product(), 1);
            let f = values(kh * kw * c * oc, 2);
            let pixels: Vec<_> = g.pixels_of(0..g.batch * g.out_h * g.out_w).collect();
            let dy = values(pixels.len() * oc, 3);
            let mut want_y = vec![0.0; pixels.len() * oc];
            let mut want_dx = vec![0.0; x.len()];
            let mut want_dw = vec![0.0; f.len()];
            for (p, &pixel) in pixels.iter().enumerate() {
                for (i, j, ch) in (0..kh)
                    .flat_map(|i| (0..kw).flat_map(move |j| (0..c).map(move |ch| (i, j, ch))))
                {
                    let v = tap(&g, &x, pixel, i, j, ch);
                    let w = ((i * kw + j) * c + ch) * oc;
                    for o in 0..oc {
                        want_y[p * oc + o] += v * f[w + o] as f64;
                        want_dw[w + o] += v * dy[p * oc + o] as f64;
                    }
                    let (b, oy, ox) = pixel;
                    if let (Some(y), Some(xx)) = (g.in_row(oy, i), g.in_col(ox, j)) {
                        let at = ((b * g.in_h + y) * g.in_w + xx) * c + ch;
                        want_dx[at] += (0..oc)
                            .map(|o| dy[p * oc + o] as f64 * f[w + o] as f64)
                            .sum::<f64>();
                    }
                }
            }
            for threads in [1, 2] {
                let y = conv2d_forward(&g, &x, &f, threads, None);
                close(&y, &want_y, &format!("forward {what}"));
                close(
                    &conv2d_backprop_input(&g, &f, &dy, threads),
                    &want_dx,
                    &format!("input gradient {what}"),
                );
                close(
                    &conv2d_backprop_filter(&g, &x, &dy, threads),
                    &want_dw,
                    &format!("filter gradient {what}"),
                );
            }
        }
    }

    #[test]
    fn bias_and_activation_in_registers_match_the_pass_over_the_stored_sums() {
        // Widths and channel counts that leave partial tiles; a NaN input (it reaches a
        // few outputs), a NaN bias (a whole channel), negative sums for the activations.
        for (xs, oc, padding) in [
            ([2, 9, 14, 5], 37, "SAME"),
            ([1, 7, 13, 3], 9, "VALID"),
            ([2, 6, 16, 32], 64, "VALID"),
        ] {
            let g = Geometry::new(&g_window(padding), xs, [3, 3], oc).unwrap();
            assert_eq!(g.runs_implicit::<f32>(), has_avx512f());
            let mut x = values(xs.iter().product(), 1);
            x[17] = f32::NAN;
            let f = values(9 * g.in_c * oc, 2);
            let mut bias = values(oc, 3);
            bias[oc / 2] = f32::NAN;
            type Scalar = fn(f32) -> f32;
            let activations: [(Activation, Scalar); 3] = [
                (Activation::Linear, |v| v),
                (Activation::Relu, relu),
                (Activation::Relu6, relu6),
            ];
            for (activation, act) in activations {
                for threads in [1, 2] {
                    let mut want = conv2d_forward(&g, &x, &f, threads, None);
                    for (e, v) in want.iter_mut().enumerate() {
                        *v = act(*v + bias[e % oc]);
                    }
                    let finish = BiasActivation {
                        bias: &bias,
                        activation,
                    };
                    let got = conv2d_forward(&g, &x, &f, threads, Some(finish));
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&got), bits(&want), "{xs:?} {activation:?} {threads}");
                    assert!(got.iter().any(|v| v.is_nan()));
                    if activation != Activation::Linear {
                        assert!(got.contains(&0.0), "{xs:?} {activation:?}");
                    }
                }
            }
        }
    }
}

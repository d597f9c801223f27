//! f32 matrix products with AVX-512 (x86-64 CPUs that have it, detected at run time):
//! packed panels and a 12 × 32 register-blocked kernel, in the layout of BLIS.
//!
//! `op(a)` is cut into blocks of [`MC`] rows × `kc` contracted elements and `op(b)` into
//! blocks of `kc` × [`NC`] columns (`kc` ≤ [`KC`], the contracted length split into
//! near-equal parts); each block is copied ("packed") into panels the kernel reads
//! front to back: `a` in panels of [`MR`] rows stored by contracted index, `b` in panels
//! of [`NR`] columns. The kernel keeps a 12 × 32 tile of the result in 24 vector
//! registers while it runs through one panel of each, then writes the tile once. On the
//! 2-core Intel Xeon (Sapphire Rapids class, 234 GFLOP/s AVX-512 FMA peak per core) that
//! builds this project, it runs a dense layer's weight gradient (784..1024 × 256ᵀ · 256 ×
//! 1024) at 203–207 GFLOP/s on one thread, against 143–189 for faer's kernels; [`suits`]
//! says which products it takes (faer's are as fast or faster for the others).
//!
//! Every element of the result is the sum over the contracted index in increasing
//! order, in register, within each `kc` block, the blocks added to the result in order;
//! the blocking does not depend on how the result is split over threads, so every split
//! gives the same bits.

use super::{GemmDims, Store};
use std::arch::x86_64::{
    __m512, __m512i, _mm512_add_ps, _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_mask_i32gather_ps,
    _mm512_mask_storeu_ps, _mm512_maskz_loadu_ps, _mm512_mul_ps, _mm512_mullo_epi32,
    _mm512_set1_epi32, _mm512_set1_ps, _mm512_set_epi32, _mm512_setzero_ps, _mm512_storeu_ps,
    _mm_prefetch, _MM_HINT_T0,
};
use std::cell::RefCell;
use std::ops::Range;
use std::sync::OnceLock;

/// Rows of the result tile the kernel keeps in registers.
const MR: usize = 12;
/// Columns of that tile: two 16-lane vectors.
const NR: usize = 32;
/// The longest contracted block (a `kc × NR` panel of `b`, 40 KiB, stays in L1).
const KC: usize = 320;
/// Rows of `op(a)` packed at a time (`MC × KC` floats, 240 KiB, stay in L2).
const MC: usize = 192;
/// Columns of `op(b)` packed at a time (`KC × NC` floats, 1.25 MiB).
const NC: usize = 1024;

/// Stored rows of a transposed `a` that [`pack_a`] fetches ahead of the one it copies.
const PACK_AHEAD: usize = 8;

/// The most floats of a scaled update's product (see [`SUMS`]) a thread keeps between
/// products (16 MiB: a 2048 × 2048 weight gradient); a larger one gets a buffer of its own.
const KEPT_SUMS: usize = 1 << 22;

/// Result columns (of the block a thread computes) below which faer's kernels are faster:
/// its 96-row tiles suit a narrow result with many rows. A convolution's 9216 × 288 ·
/// 288 × 64 product ran at 192 GFLOP/s with faer and 165–180 here (reading the patches in
/// place or packed), its filter gradient (288 × 9216 · 9216 × 64) at 162 against 135.
const MIN_COLUMNS: usize = 128;

/// Multiply-adds below which faer's kernels (no packing for small products) are faster:
/// the digits MLP's 32 × 64 × 128 products took its SGD epoch from 0.94–1.02 to 1.07 ms.
const MIN_WORK: usize = 1 << 24;

/// Whether a block of `cols` columns of the product `d` is faster here than with faer
/// (measured on the 2-core Xeon): a product whose `b` is stored as is (a weight gradient
/// `xᵀ·dy`, a batch times a weight) of at least [`MIN_WORK`] multiply-adds and
/// [`MIN_COLUMNS`] columns. The MLP's 784 × 256ᵀ · 256 × 1024 took 1.99 ms here against
/// 2.18 with faer, its 1024 × 256ᵀ · 256 × 1024 2.63 against 3.48–3.76 (quiet, best of
/// 40). The forward products came level with faer's standalone while `a` as is was packed
/// one float at a time; with its rows gathered, the MLP 784-1024-1024-10 step's five
/// products in step order (1 thread, 2026-12-07 23:35 UTC, loaded, four alternated rounds
/// of 120) summed their minima to 15.6–16.9 ms against 16.9–17.4 with the forward ones on
/// faer, the first layer's 256 × 784 · 784 × 1024 2.48–2.78 against 2.86–2.95 ms; a square
/// 1024³ product is level (14.27 / 14.72 against 14.24 / 14.90 ms). dz·Wᵀ (`b`
/// transposed, its columns gathered) stays with faer: level standalone, 0.3 ms slower in
/// the step (3.99 → 4.29 ms, an earlier sitting).
pub fn suits(d: GemmDims, cols: usize) -> bool {
    !d.trans_b && cols >= MIN_COLUMNS && d.work() >= MIN_WORK
}

/// Whether this CPU runs the AVX-512 kernels (checked once).
pub fn available() -> bool {
    static AVX512F: OnceLock<bool> = OnceLock::new();
    *AVX512F.get_or_init(|| std::arch::is_x86_feature_detected!("avx512f"))
}

/// A strided view of a matrix: element `(i, j)` is at `base + i·rs + j·cs`.
#[derive(Clone, Copy)]
struct View {
    base: *const f32,
    rs: usize,
    cs: usize,
}

/// Stores rows `rows` and columns `cols` of `op(a) · op(b)` (dims `d`, operands stored
/// row-major as [`GemmDims`] says) into the block at `out`, whose element `(i, j)`
/// (relative to the block) is `out[i·ldc + j]`, as `store` says. Returns false, doing
/// nothing, where the CPU has no AVX-512.
///
/// # Safety
/// `out` addresses `rows.len()` rows of stride `ldc ≥ cols.len()`, each with
/// `cols.len()` elements that nothing else reads or writes during the call.
#[allow(clippy::too_many_arguments)]
pub unsafe fn product(
    d: GemmDims,
    a: &[f32],
    b: &[f32],
    rows: Range<usize>,
    cols: Range<usize>,
    out: *mut f32,
    ldc: usize,
    store: Store<f32>,
) -> bool {
    // A transposed `b`'s columns and an `a` as is's rows are gathered with 32-bit
    // offsets (`15·k` at most).
    if !available() || ((d.trans_b || !d.trans_a) && d.k > i32::MAX as usize / 16) {
        return false;
    }
    let (m, n, k) = (d.m, d.n, d.k);
    assert!(a.len() >= m * k && b.len() >= k * n, "gemm operand lengths");
    assert!(
        rows.end <= m && cols.end <= n && ldc >= cols.len(),
        "gemm block bounds"
    );
    let (r, c) = (rows.len(), cols.len());
    if r == 0 || c == 0 {
        return true;
    }
    if k == 0 {
        if store == Store::Replace {
            for i in 0..r {
                std::ptr::write_bytes(out.add(i * ldc), 0, c);
            }
        }
        return true;
    }
    let a_view = if d.trans_a {
        View {
            base: a[rows.start..].as_ptr(),
            rs: 1,
            cs: m,
        }
    } else {
        View {
            base: a[rows.start * k..].as_ptr(),
            rs: k,
            cs: 1,
        }
    };
    let b_view = if d.trans_b {
        View {
            base: b[cols.start * k..].as_ptr(),
            rs: 1,
            cs: k,
        }
    } else {
        View {
            base: b[cols.start..].as_ptr(),
            rs: n,
            cs: 1,
        }
    };
    let tile = match store {
        Store::Replace => Tile::Replace,
        // AddScaled scales the whole sum once, as an unfused product followed by its
        // update would: with more than one contracted block, the product goes through a
        // buffer first.
        Store::AddScaled(alpha) if k > KC => {
            let add = |sums: &mut [f32]| {
                // SAFETY (here and below): AVX-512F is present; the views cover `r × k`
                // and `k × c` elements inside `a` and `b` (bounds asserted above); `sums`
                // holds `r × c` (each written by the first contracted block before it is
                // read) and the caller vouches for `out`.
                blocked_product(r, c, k, a_view, b_view, sums.as_mut_ptr(), c, Tile::Replace);
                for (i, row) in sums.chunks_exact(c).enumerate() {
                    let o = out.add(i * ldc);
                    for (j, &s) in row.iter().enumerate() {
                        *o.add(j) += alpha * s;
                    }
                }
            };
            if r * c <= KEPT_SUMS {
                SUMS.with_borrow_mut(|sums| {
                    sums.resize(KEPT_SUMS.min(sums.len().max(r * c)), 0.0);
                    add(&mut sums[..r * c]);
                });
            } else {
                add(&mut vec![0.0; r * c]);
            }
            return true;
        }
        Store::AddScaled(alpha) => Tile::AddScaled(alpha),
    };
    blocked_product(r, c, k, a_view, b_view, out, ldc, tile);
    true
}

/// How the kernel writes a tile's sums of one contracted block.
#[derive(Clone, Copy, PartialEq)]
enum Tile {
    /// The first block overwrites the result, later ones add to it.
    Replace,
    /// `out += alpha · sums` (only with one contracted block).
    AddScaled(f32),
}

thread_local! {
    /// Each thread's packing buffers (`a` block, `b` block), kept between products.
    static PACKED: RefCell<(Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
    /// Each thread's buffer for a scaled update's product of several contracted blocks
    /// (a weight gradient over a batch of more than [`KC`] rows), kept between products
    /// up to [`KEPT_SUMS`] floats.
    static SUMS: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// `out (=|+=) op(a) · op(b)` for an `m × n` result with `k` contracted elements.
///
/// # Safety
/// AVX-512F is present; `a` covers `m × k` elements, `b` `k × n`, and `out` `m` rows of
/// stride `ldc` with `n ≤ ldc` elements each; `m, n, k > 0`.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f")]
unsafe fn blocked_product(
    m: usize,
    n: usize,
    k: usize,
    a: View,
    b: View,
    out: *mut f32,
    ldc: usize,
    tile: Tile,
) {
    let blocks = k.div_ceil(KC);
    let kc_max = k.div_ceil(blocks);
    PACKED.with_borrow_mut(|(pa, pb)| {
        pa.resize(kc_max * MC.min(m).div_ceil(MR) * MR, 0.0);
        pb.resize(kc_max * NC.min(n).div_ceil(NR) * NR, 0.0);
        for jc in (0..n).step_by(NC) {
            let nc = (n - jc).min(NC);
            for (block, pc) in (0..k).step_by(kc_max).enumerate() {
                let kc = (k - pc).min(kc_max);
                pack_b(b, pc, kc, jc, nc, pb.as_mut_ptr());
                let mode = match tile {
                    Tile::Replace if block > 0 => Mode::Add,
                    Tile::Replace => Mode::Overwrite,
                    Tile::AddScaled(alpha) => Mode::AddScaled(alpha),
                };
                for ic in (0..m).step_by(MC) {
                    let mc = (m - ic).min(MC);
                    pack_a(a, ic, mc, pc, kc, pa.as_mut_ptr());
                    for jp in 0..nc.div_ceil(NR) {
                        let cols = (nc - jp * NR).min(NR);
                        let panel_b = pb.as_ptr().add(jp * NR * kc);
                        let tiles = mc.div_ceil(MR);
                        for ip in 0..tiles {
                            let rows = (mc - ip * MR).min(MR);
                            let panel_a = pa.as_ptr().add(ip * MR * kc);
                            let c = out.add((ic + ip * MR) * ldc + jc + jp * NR);
                            // The tile computed next: its result rows are fetched while
                            // this one's sums run.
                            let next = if ip + 1 < tiles {
                                Some((c.wrapping_add(MR * ldc), (mc - (ip + 1) * MR).min(MR)))
                            } else if (jp + 1) * NR < nc {
                                Some((out.wrapping_add(ic * ldc + jc + (jp + 1) * NR), mc.min(MR)))
                            } else {
                                None
                            };
                            let t = TileOut {
                                c,
                                ldc,
                                rows,
                                masks: masks(cols),
                                mode,
                                next,
                            };
                            match panel_rows(rows) {
                                4 => kernel::<4>(kc, panel_a, panel_b, t),
                                8 => kernel::<8>(kc, panel_a, panel_b, t),
                                _ => kernel::<MR>(kc, panel_a, panel_b, t),
                            }
                        }
                    }
                }
            }
        }
    });
}

/// The rows a packed panel of `a` holding `rows` rows is padded to: a short last panel
/// is packed (and computed) 4 or 8 rows tall rather than 12.
fn panel_rows(rows: usize) -> usize {
    match rows {
        0..=4 => 4,
        5..=8 => 8,
        _ => MR,
    }
}

/// Lane masks of the two vectors of a tile row holding `cols` (1..=32) columns.
fn masks(cols: usize) -> [u16; 2] {
    let lanes = |c: usize| {
        if c >= 16 {
            u16::MAX
        } else {
            ((1u32 << c) - 1) as u16
        }
    };
    [lanes(cols), lanes(cols.saturating_sub(16))]
}

/// How one contracted block's sums meet the result.
#[derive(Clone, Copy)]
enum Mode {
    Overwrite,
    Add,
    AddScaled(f32),
}

/// Where a kernel writes its tile.
#[derive(Clone, Copy)]
struct TileOut {
    c: *mut f32,
    ldc: usize,
    /// Rows of the tile that are in the result.
    rows: usize,
    /// Columns of the tile in the result, as lane masks of its two vectors.
    masks: [u16; 2],
    mode: Mode,
    /// The result rows of the tile computed next (its first element and row count), to
    /// prefetch.
    next: Option<(*mut f32, usize)>,
}

/// Packs rows `i0..i0 + mc` × contracted `p0..p0 + kc` of `a` into panels of [`MR`]
/// rows (a short last panel of [`panel_rows`] rows, zero-padded): panel `ip` starts at
/// `ip · MR · kc` and holds `a(i, p)` at `p · rows + (i − i0 − ip · MR)`.
///
/// A transposed `a` (each contracted index's rows consecutive) is read one stored row at
/// a time, front to back, each panel's part of it copied with one masked load and store,
/// the row [`PACK_AHEAD`] further on fetched meanwhile (in a batch of a wide layer's
/// activations each is on a page of its own); an `a` as is has its panel rows gathered,
/// one contracted index at a time.
///
/// # Safety
/// AVX-512F is present; the view covers the block (with `rs ≤ i32::MAX / 16` when
/// `cs == 1`); `dst` holds `mc.div_ceil(MR) · MR · kc` floats.
#[target_feature(enable = "avx512f")]
unsafe fn pack_a(a: View, i0: usize, mc: usize, p0: usize, kc: usize, dst: *mut f32) {
    let panels = mc.div_ceil(MR);
    // A panel's lanes read (its rows) and written (its padded height), and that height.
    let panel_lanes = |ip: usize| {
        let rows = (mc - ip * MR).min(MR);
        (masks(rows)[0], masks(panel_rows(rows))[0], panel_rows(rows))
    };
    if a.rs == 1 {
        for p in 0..kc {
            let src = a.base.add((p0 + p) * a.cs + i0);
            if p + PACK_AHEAD < kc {
                let next = src.add(PACK_AHEAD * a.cs);
                for line in (0..mc).step_by(16) {
                    _mm_prefetch::<_MM_HINT_T0>(next.add(line).cast());
                }
            }
            for ip in 0..panels {
                let (load, store, stride) = panel_lanes(ip);
                let v = _mm512_maskz_loadu_ps(load, src.add(ip * MR));
                _mm512_mask_storeu_ps(dst.add(ip * MR * kc + p * stride), store, v);
            }
        }
    } else {
        let offsets = lane_offsets(a.rs);
        for ip in 0..panels {
            let (load, store, stride) = panel_lanes(ip);
            let src = a.base.add((i0 + ip * MR) * a.rs + p0 * a.cs);
            let panel = dst.add(ip * MR * kc);
            for p in 0..kc {
                let v = _mm512_mask_i32gather_ps::<4>(
                    _mm512_setzero_ps(),
                    load,
                    offsets,
                    src.add(p * a.cs).cast(),
                );
                _mm512_mask_storeu_ps(panel.add(p * stride), store, v);
            }
        }
    }
}

/// Offsets `0, stride, …, 15·stride` of the sixteen lanes of a gather (`stride ≤
/// i32::MAX / 16`, so none overflows).
#[target_feature(enable = "avx512f")]
unsafe fn lane_offsets(stride: usize) -> __m512i {
    _mm512_mullo_epi32(
        _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
        _mm512_set1_epi32(stride as i32),
    )
}

/// Packs contracted `p0..p0 + kc` × columns `first..first + cols` of `b` into panels of
/// [`NR`] columns (the last zero-padded) at `dst`: panel `jp` starts at `jp · NR · kc` and
/// holds `b(p, j)` at `(p − p0) · NR + (j − first − jp · NR)`.
///
/// A `b` as is is read one stored row at a time, front to back (a row of a 1024-wide
/// weight is a 4 KiB page of its own: read panel by panel, every contracted index would
/// start a new page); a transposed `b` has each contracted index's 32 columns gathered.
///
/// # Safety
/// AVX-512F is present; the view covers the block (with `cs ≤ i32::MAX / 16` when
/// `rs == 1`); `dst` holds `cols.div_ceil(NR) · NR · kc` floats.
#[target_feature(enable = "avx512f")]
unsafe fn pack_b(b: View, p0: usize, kc: usize, first: usize, cols: usize, dst: *mut f32) {
    let panels = cols.div_ceil(NR);
    let panel_masks = |jp: usize| masks((cols - jp * NR).min(NR));
    if b.cs == 1 {
        for p in 0..kc {
            let src = b.base.add((p0 + p) * b.rs + first);
            for jp in 0..panels {
                let [m0, m1] = panel_masks(jp);
                let (s, d) = (src.add(jp * NR), dst.add(jp * NR * kc + p * NR));
                _mm512_storeu_ps(d, _mm512_maskz_loadu_ps(m0, s));
                _mm512_storeu_ps(d.add(16), _mm512_maskz_loadu_ps(m1, s.add(16)));
            }
        }
    } else {
        // Transposed: column `j`'s contracted elements are consecutive; gather each
        // contracted index's 32 columns (`cs` apart).
        let offsets = lane_offsets(b.cs);
        let zero = _mm512_setzero_ps();
        for jp in 0..panels {
            let panel = dst.add(jp * NR * kc);
            for p in 0..kc {
                let src = b.base.add((first + jp * NR) * b.cs + (p0 + p) * b.rs);
                for (h, mask) in panel_masks(jp).into_iter().enumerate() {
                    let v = _mm512_mask_i32gather_ps::<4>(
                        zero,
                        mask,
                        offsets,
                        src.add(16 * h * b.cs).cast(),
                    );
                    _mm512_storeu_ps(panel.add(p * NR + 16 * h), v);
                }
            }
        }
    }
}

/// Adds one contracted index's terms to an `R × 32` tile: `R` floats of `a` times the 32
/// of `b`.
///
/// # Safety
/// AVX-512F is present; `a` holds `R` floats and `b` 32.
#[inline(always)]
unsafe fn multiply_add<const R: usize>(sums: &mut [[__m512; 2]; R], a: *const f32, b: *const f32) {
    let b0 = _mm512_loadu_ps(b);
    let b1 = _mm512_loadu_ps(b.add(16));
    for (r, sum) in sums.iter_mut().enumerate() {
        let x = _mm512_set1_ps(*a.add(r));
        sum[0] = _mm512_fmadd_ps(x, b0, sum[0]);
        sum[1] = _mm512_fmadd_ps(x, b1, sum[1]);
    }
}

/// Sums an `R × 32` tile over `kc` contracted elements from packed panels `a` (`R`
/// floats per index) and `b` (32 per index), then writes it as `t` says.
///
/// # Safety
/// AVX-512F is present; the panels hold `kc` indices; `t` addresses `t.rows ≤ R` rows
/// with the columns its masks allow.
#[target_feature(enable = "avx512f")]
unsafe fn kernel<const R: usize>(kc: usize, a: *const f32, b: *const f32, t: TileOut) {
    let mut sums: [[__m512; 2]; R] = [[_mm512_setzero_ps(); 2]; R];
    // The next tile's result rows, one cache line per contracted index at first: their
    // misses overlap the multiply-adds without crowding the fill buffers. With the result
    // in huge pages (see `tensor::alloc::back_by_huge_pages`), the MLP's two weight
    // updates in step order took 3.17 and 2.80 ms without, 3.01 and 2.33 with (minima of
    // 40, 1 thread).
    let mut start = 0;
    if let Some((next, rows)) = t.next {
        start = (2 * rows).min(kc);
        for p in 0..start {
            _mm_prefetch::<_MM_HINT_T0>(next.wrapping_add((p / 2) * t.ldc + (p % 2) * 16).cast());
            multiply_add(&mut sums, a.add(p * R), b.add(p * NR));
        }
    }
    for p in start..kc {
        multiply_add(&mut sums, a.add(p * R), b.add(p * NR));
    }
    for (r, sum) in sums.iter().enumerate().take(t.rows) {
        let c = t.c.add(r * t.ldc);
        for (h, (&v, &mask)) in sum.iter().zip(&t.masks).enumerate() {
            let c = c.add(16 * h);
            let v = match t.mode {
                Mode::Overwrite => v,
                Mode::Add => _mm512_add_ps(_mm512_maskz_loadu_ps(mask, c), v),
                Mode::AddScaled(alpha) => _mm512_add_ps(
                    _mm512_maskz_loadu_ps(mask, c),
                    _mm512_mul_ps(_mm512_set1_ps(alpha), v),
                ),
            };
            _mm512_mask_storeu_ps(c, mask, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `op(a) · op(b)` in f64 from operands stored as `d` says, and each element's sum of
    /// absolute terms (to bound f32 rounding).
    fn reference(d: GemmDims, a: &[f32], b: &[f32]) -> (Vec<f64>, Vec<f64>) {
        let (m, n, k) = (d.m, d.n, d.k);
        let at = |i: usize, p: usize| {
            f64::from(if d.trans_a {
                a[p * m + i]
            } else {
                a[i * k + p]
            })
        };
        let bt = |p: usize, j: usize| {
            f64::from(if d.trans_b {
                b[j * k + p]
            } else {
                b[p * n + j]
            })
        };
        let mut sums = vec![0.0; m * n];
        let mut sizes = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                for p in 0..k {
                    sums[i * n + j] += at(i, p) * bt(p, j);
                    sizes[i * n + j] += (at(i, p) * bt(p, j)).abs();
                }
            }
        }
        (sums, sizes)
    }

    fn operands(d: GemmDims) -> (Vec<f32>, Vec<f32>) {
        let a = (0..d.m * d.k).map(|i| (i as f32 * 0.37).sin()).collect();
        let b = (0..d.k * d.n).map(|i| (i as f32 * 0.71).cos()).collect();
        (a, b)
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    #[test]
    fn products_match_a_float64_product_in_every_layout() {
        if !available() {
            return;
        }
        // One element; edges of every block (12-row tiles with 4- and 8-row remainders,
        // 32-column tiles with masked tails, more rows than MC, more columns than NC,
        // contracted lengths over KC split in near-equal blocks).
        let shapes = [
            (1, 1, 1),
            (13, 33, 7),
            (4, 16, 3),
            (8, 47, 300),
            (200, 1100, 20),
            (25, 40, 520),
        ];
        for (m, n, k) in shapes {
            for (trans_a, trans_b) in [(false, false), (true, false), (false, true), (true, true)] {
                let d = GemmDims {
                    m,
                    n,
                    k,
                    trans_a,
                    trans_b,
                };
                let (a, b) = operands(d);
                let (want, sizes) = reference(d, &a, &b);
                let mut out = vec![f32::NAN; m * n];
                // SAFETY: `out` holds the whole `m × n` result.
                let done =
                    unsafe { product(d, &a, &b, 0..m, 0..n, out.as_mut_ptr(), n, Store::Replace) };
                assert!(done);
                for ((o, w), s) in out.iter().zip(&want).zip(&sizes) {
                    let bound = 1e-6 * (k as f64).sqrt().max(1.0) * s.max(1e-30);
                    assert!((f64::from(*o) - w).abs() <= bound, "{d:?}: {o} vs {w}");
                }
            }
        }
    }

    #[test]
    fn a_scaled_update_adds_the_rounded_product_once() {
        if !available() {
            return;
        }
        // As a product followed by `start + alpha · product`, bit for bit, with one
        // contracted block and with several (through a buffer).
        for k in [200, 700] {
            let d = GemmDims {
                m: 30,
                n: 50,
                k,
                trans_a: true,
                trans_b: false,
            };
            let (a, b) = operands(d);
            let mut product_alone = vec![0.0f32; 30 * 50];
            let start: Vec<f32> = (0..30 * 50).map(|i| (i as f32 * 0.13).cos()).collect();
            let mut updated = start.clone();
            // SAFETY: both buffers hold the whole result.
            unsafe {
                product(
                    d,
                    &a,
                    &b,
                    0..30,
                    0..50,
                    product_alone.as_mut_ptr(),
                    50,
                    Store::Replace,
                );
                product(
                    d,
                    &a,
                    &b,
                    0..30,
                    0..50,
                    updated.as_mut_ptr(),
                    50,
                    Store::AddScaled(-0.25),
                );
            }
            let want: Vec<f32> = start
                .iter()
                .zip(&product_alone)
                .map(|(s, p)| s + -0.25 * p)
                .collect();
            assert_eq!(bits(&updated), bits(&want), "k = {k}");
        }
    }

    #[test]
    fn blocks_of_the_result_give_the_bits_of_the_whole() {
        if !available() {
            return;
        }
        // Rows and columns computed apart (as threads do) sum each element the same way,
        // in every layout.
        for (trans_a, trans_b) in [(false, false), (true, false), (false, true), (true, true)] {
            let d = GemmDims {
                m: 50,
                n: 90,
                k: 600,
                trans_a,
                trans_b,
            };
            let (a, b) = operands(d);
            let mut whole = vec![0.0f32; 50 * 90];
            let mut parts = vec![0.0f32; 50 * 90];
            // SAFETY: each call writes its own rows and columns of a 50 × 90 buffer.
            unsafe {
                product(
                    d,
                    &a,
                    &b,
                    0..50,
                    0..90,
                    whole.as_mut_ptr(),
                    90,
                    Store::Replace,
                );
                product(
                    d,
                    &a,
                    &b,
                    0..50,
                    0..37,
                    parts.as_mut_ptr(),
                    90,
                    Store::Replace,
                );
                product(
                    d,
                    &a,
                    &b,
                    0..17,
                    37..90,
                    parts.as_mut_ptr().add(37),
                    90,
                    Store::Replace,
                );
                product(
                    d,
                    &a,
                    &b,
                    17..50,
                    37..90,
                    parts.as_mut_ptr().add(17 * 90 + 37),
                    90,
                    Store::Replace,
                );
            }
            assert_eq!(bits(&whole), bits(&parts));
        }
    }

    #[test]
    fn nothing_to_contract_writes_zeros_or_adds_nothing() {
        if !available() {
            return;
        }
        let d = GemmDims {
            m: 3,
            n: 5,
            k: 0,
            trans_a: false,
            trans_b: false,
        };
        let mut out = vec![7.0f32; 15];
        // SAFETY: `out` holds the 3 × 5 result.
        unsafe {
            product(
                d,
                &[],
                &[],
                0..3,
                0..5,
                out.as_mut_ptr(),
                5,
                Store::AddScaled(2.0),
            )
        };
        assert_eq!(out, vec![7.0; 15]);
        // SAFETY: as above.
        unsafe { product(d, &[], &[], 0..3, 0..5, out.as_mut_ptr(), 5, Store::Replace) };
        assert_eq!(out, vec![0.0; 15]);
    }

    /// Views of one matrix stored as is (`rows` of `row_len`) and stored transposed
    /// (`columns` of `column_len`).
    fn both_layouts(rows: &[f32], row_len: usize, columns: &[f32], column_len: usize) -> [View; 2] {
        [
            View {
                base: rows.as_ptr(),
                rs: row_len,
                cs: 1,
            },
            View {
                base: columns.as_ptr(),
                rs: 1,
                cs: column_len,
            },
        ]
    }

    #[test]
    fn row_panels_hold_each_row_in_order_then_zeros() {
        if !available() {
            return;
        }
        // 29 rows from row 3: panels of 12, 12 and 5 (packed 8 tall), contracted 4..34 of
        // 40, from `a` as is and stored transposed.
        let (m, k, i0, mc, p0, kc) = (40, 40, 3, 29usize, 4, 30);
        let a: Vec<f32> = (0..m * k).map(|i| i as f32 + 1.0).collect();
        let at = |i: usize, p: usize| a[i * k + p];
        let stored_t: Vec<f32> = (0..k * m).map(|e| at(e % m, e / m)).collect();
        let views = both_layouts(&a, k, &stored_t, m);
        for view in views {
            let mut panels = vec![f32::NAN; mc.div_ceil(MR) * MR * kc];
            // SAFETY: AVX-512F is present; the view covers rows 3..32 × indices 4..34;
            // `panels` holds 3 · 12 · 30 floats.
            unsafe { pack_a(view, i0, mc, p0, kc, panels.as_mut_ptr()) };
            for ip in 0..mc.div_ceil(MR) {
                let rows = (mc - ip * MR).min(MR);
                let stride = panel_rows(rows);
                for p in 0..kc {
                    for r in 0..stride {
                        let got = panels[ip * MR * kc + p * stride + r];
                        let i = i0 + ip * MR + r;
                        let want = if r < rows { at(i, p0 + p) } else { 0.0 };
                        assert_eq!(got, want, "row {i}, index {p} (rs {})", view.rs);
                    }
                }
            }
        }
    }

    #[test]
    fn column_panels_hold_each_column_in_order_then_zeros() {
        if !available() {
            return;
        }
        // Columns 2..47 of 50 (panels of 32 and 13, zero-padded), contracted 5..35 of 40,
        // from `b` as is and stored transposed.
        let (k, n, first, cols) = (40, 50, 2, 45);
        let bt = |p: usize, j: usize| (p * n + j) as f32 + 1.0;
        let stored: Vec<f32> = (0..k * n).map(|e| bt(e / n, e % n)).collect();
        let stored_t: Vec<f32> = (0..n * k).map(|e| bt(e % k, e / k)).collect();
        let views = both_layouts(&stored, n, &stored_t, k);
        for view in views {
            let mut panels = vec![f32::NAN; 2 * NR * 30];
            // SAFETY: AVX-512F is present; the view covers columns 2..47 × indices 5..35;
            // `panels` holds 2 · 32 · 30 floats.
            unsafe { pack_b(view, 5, 30, first, cols, panels.as_mut_ptr()) };
            for (jp, panel) in panels.chunks_exact(NR * 30).enumerate() {
                for p in 0..30 {
                    for t in 0..NR {
                        let j = first + jp * NR + t;
                        let want = if j < first + cols { bt(5 + p, j) } else { 0.0 };
                        assert_eq!(panel[p * NR + t], want, "column {j}, index {p}");
                    }
                }
            }
        }
    }
}

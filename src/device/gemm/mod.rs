//! Matrix products on row-major slices: this crate's AVX-512 kernel for f32 where the CPU
//! has it ([`avx512`]), faer for other floats, a cache-friendly loop for integers.

#[cfg(target_arch = "x86_64")]
mod avx512;
mod row;

/// Whether the CPU runs AVX-512 F code (checked once): the kernels written for it here and
/// elsewhere (`ops::nn::conv2d::implicit`) ask this.
pub fn has_avx512f() -> bool {
    #[cfg(target_arch = "x86_64")]
    return avx512::available();
    #[cfg(not(target_arch = "x86_64"))]
    false
}

use super::parallel::{
    for_each_piece, for_each_units, split_range, zeroed_units, MIN_PRODUCT_WORK,
};
use crate::tensor::{Element, Number};
use faer::{Accum, MatMut, MatRef, Par};
use std::mem::MaybeUninit;
use std::ops::Range;

/// Result widths up to which a product with a transposed lhs is computed column-major
/// and transposed back (see the float `product_rows`).
const NARROW_COLUMNS: usize = 32;

/// Result widths up to which one row times a matrix is [`row_times_narrow_matrix`]
/// rather than faer's matrix-vector product.
const NARROW_VECTOR_PRODUCT: usize = 64;

/// Contracted lengths up to which a product is a [`short_product`] rather than a faer
/// product: a first convolution's 3×3×1 patches (k = 9) times its filter, where faer's
/// packing and blocking cost more than the few multiply-adds.
pub const SHORT_CONTRACTION: usize = 16;

/// Result columns each thread gets, at least, when a product is split by columns.
const MIN_COLUMNS_PER_PART: usize = 64;

/// Sizes of one product `out[m×n] = op(a) · op(b)`: `a` is stored `m×k` (`k×m` when
/// `trans_a`), `b` is stored `k×n` (`n×k` when `trans_b`), all row-major.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GemmDims {
    /// Rows of the result.
    pub m: usize,
    /// Columns of the result.
    pub n: usize,
    /// The contracted dimension.
    pub k: usize,
    /// `a` is stored transposed.
    pub trans_a: bool,
    /// `b` is stored transposed.
    pub trans_b: bool,
}

impl GemmDims {
    /// Multiply-adds of the product.
    pub fn work(&self) -> usize {
        self.m.saturating_mul(self.n).saturating_mul(self.k)
    }

    /// Threads for this product: `threads` when it has at least [`MIN_PRODUCT_WORK`]
    /// multiply-adds, else 1.
    fn threads(&self, threads: usize) -> usize {
        if self.work() >= MIN_PRODUCT_WORK {
            threads
        } else {
            1
        }
    }

    /// Whether a product split over `parts` threads is split by blocks of result columns
    /// rather than rows. faer transposes (packs) a transposed rhs for each block of rows
    /// it computes, so split by rows every thread transposes the whole of `b`; split by
    /// columns, each transposes only its own rows of `b`. dz·Wᵀ (256×1024 · 1024×1024ᵀ,
    /// a dense layer's input gradient) on two threads: 415–422 → 451–458 GFLOP/s. A
    /// result with fewer rows than columns (a batch through a wide layer) is split by
    /// columns too, so each thread reads only its part of the larger `b`: the MLP
    /// 784-1024-1024-10 training step on two threads (AMD EPYC, Zen 3), alternated
    /// three times: 19.2–19.8 → 18.2–18.4 ms.
    fn splits_columns(&self, parts: usize) -> bool {
        parts > 1 && (self.trans_b || self.m < self.n) && self.n >= MIN_COLUMNS_PER_PART * parts
    }
}

/// How a product is written into its output.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Store<T> {
    /// `out = op(a) · op(b)`.
    Replace,
    /// `out += alpha · op(a) · op(b)` (a gradient step computed into the variable).
    AddScaled(T),
}

/// Writes `op(a) · op(b)` into `out` (length `m*n`), using up to `threads` threads.
pub fn gemm<T: GemmElement>(d: GemmDims, a: &[T], b: &[T], out: &mut [T], threads: usize) {
    gemm_store(d, a, b, out, Store::Replace, threads);
}

/// Stores `op(a) · op(b)` into `out` (length `m*n`) as `store` says, using up to
/// `threads` threads.
pub fn gemm_store<T: GemmElement>(
    d: GemmDims,
    a: &[T],
    b: &[T],
    out: &mut [T],
    store: Store<T>,
    threads: usize,
) {
    check_lengths(d, a, b);
    assert_eq!(out.len(), d.m * d.n, "gemm output length");
    let parts = d.threads(threads);
    if d.splits_columns(parts) {
        let whole = MatMut::from_row_major_slice_mut(out, d.m, d.n);
        for_each_column_block(whole, parts, |cols, block| {
            T::product_columns(d, a, b, cols, block, store)
        });
    } else {
        for_each_units(out, d.n, parts, |rows, block| {
            T::product_rows(d, a, b, rows, block, store)
        });
    }
}

/// Runs `f(cols, block)` for `parts` near-equal blocks of consecutive columns of `whole`,
/// on the calling thread and the intra-op helpers.
fn for_each_column_block<T, F>(whole: MatMut<'_, T>, parts: usize, f: F)
where
    T: Send,
    F: Fn(Range<usize>, MatMut<'_, T>) + Sync,
{
    let n = whole.ncols();
    let mut blocks = Vec::with_capacity(parts);
    let mut rest = whole;
    for part in 0..parts {
        let cols = split_range(n, part, parts);
        let (block, tail) = rest.split_at_col_mut(cols.len());
        rest = tail;
        blocks.push((cols, block));
    }
    for_each_piece(blocks, |(cols, block)| f(cols, block));
}

/// `op(a) · op(b)` in a new buffer, using up to `threads` threads. Each thread zero-fills
/// its own block of the result right before computing it (in parallel, and leaving the
/// block in its cache) instead of the caller filling the whole buffer first.
pub fn gemm_to_vec<T: GemmElement>(d: GemmDims, a: &[T], b: &[T], threads: usize) -> Vec<T> {
    product_in_new_buffer(d, a, b, threads, None)
}

/// [`gemm_to_vec`], then `finish(rows, block)` on each block of whole rows (`block` holds
/// rows `rows`, `rows.len() × n`, row-major), right after the product wrote it where the
/// product is split by rows: on the thread that computed it, while the block is still in
/// its cache, so a bias and activation added this way cost no pass of their own.
pub fn gemm_to_vec_then<T: GemmElement>(
    d: GemmDims,
    a: &[T],
    b: &[T],
    threads: usize,
    finish: impl Fn(Range<usize>, &mut [T]) + Sync,
) -> Vec<T> {
    product_in_new_buffer(d, a, b, threads, Some(&finish))
}

/// A pass over each block of whole rows of a new product (see [`gemm_to_vec_then`]).
type FinishRows<'a, T> = &'a (dyn Fn(Range<usize>, &mut [T]) + Sync);

fn product_in_new_buffer<T: GemmElement>(
    d: GemmDims,
    a: &[T],
    b: &[T],
    threads: usize,
    finish: Option<FinishRows<'_, T>>,
) -> Vec<T> {
    check_lengths(d, a, b);
    let len = d.m * d.n;
    let parts = d.threads(threads);
    // A row times a matrix small enough for one thread (a batch-1 dense layer): written
    // straight into the new buffer. Larger ones stay split over the threads below.
    if parts == 1 {
        if let Some(out) = row::product_in_new_buffer(d, a, b, finish) {
            return out;
        }
    }
    if d.splits_columns(parts) {
        let mut out: Vec<T> = Vec::with_capacity(len);
        let spare = &mut out.spare_capacity_mut()[..len];
        let whole = MatMut::from_row_major_slice_mut(spare, d.m, d.n);
        for_each_column_block(whole, parts, |cols, mut block| {
            block.fill(MaybeUninit::new(T::ZERO));
            // SAFETY: every element of `block` was initialized just above, and
            // `MaybeUninit<T>` has the layout of `T`.
            let block = unsafe {
                MatMut::from_raw_parts_mut(
                    block.as_ptr_mut().cast::<T>(),
                    block.nrows(),
                    block.ncols(),
                    block.row_stride(),
                    block.col_stride(),
                )
            };
            T::product_columns(d, a, b, cols, block, Store::Replace);
        });
        // SAFETY: the column blocks cover all `len` elements (or `len` is 0), and each
        // block was initialized by its call above.
        unsafe { out.set_len(len) };
        if let Some(finish) = finish {
            for_each_units(&mut out, d.n, parts, finish);
        }
        return out;
    }
    zeroed_units(d.m, d.n, parts, |rows, block| {
        T::product_rows(d, a, b, rows.clone(), block, Store::Replace);
        if let Some(finish) = finish {
            finish(rows, block);
        }
    })
}

fn check_lengths<T>(d: GemmDims, a: &[T], b: &[T]) {
    assert_eq!(a.len(), d.m * d.k, "gemm lhs length");
    assert_eq!(b.len(), d.k * d.n, "gemm rhs length");
}

/// Element types with a matrix product.
pub trait GemmElement: Number {
    /// Stores rows `rows` of `op(a) · op(b)` into `block` (`rows.len() × n`, row-major) as
    /// `store` says, on the calling thread.
    fn product_rows(
        d: GemmDims,
        a: &[Self],
        b: &[Self],
        rows: Range<usize>,
        block: &mut [Self],
        store: Store<Self>,
    );

    /// Stores columns `cols` of `op(a) · op(b)` into `block`, the output's `m × cols.len()`
    /// view of those columns, as `store` says, on the calling thread.
    fn product_columns(
        d: GemmDims,
        a: &[Self],
        b: &[Self],
        cols: Range<usize>,
        block: MatMut<'_, Self>,
        store: Store<Self>,
    );
}

/// Whether f32 products use this crate's own kernels where the CPU runs them: unless the
/// environment variable `RUSTFLOW_GEMM` is `faer` (read once), which makes every float
/// product faer's (to compare the two).
#[cfg(target_arch = "x86_64")]
fn own_kernels_enabled() -> bool {
    static ENABLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ENABLED.get_or_init(|| std::env::var("RUSTFLOW_GEMM").map_or(true, |v| v != "faer"))
}

/// A product kernel of this crate's own for an element type, used before faer's where
/// the CPU runs it.
trait OwnKernel: Sized {
    /// Stores rows `rows` and columns `cols` of `op(a) · op(b)` into the block at `out`
    /// (element `(i, j)` of the block at `out[i·ldc + j]`) as `store` says; false, doing
    /// nothing, where there is no such kernel (the default: faer's for every product).
    ///
    /// # Safety
    /// `out` addresses `rows.len()` rows of stride `ldc ≥ cols.len()`, each with
    /// `cols.len()` elements that nothing else reads or writes during the call.
    #[allow(clippy::too_many_arguments)]
    unsafe fn own_product(
        _: GemmDims,
        _: &[Self],
        _: &[Self],
        _: Range<usize>,
        _: Range<usize>,
        _: *mut Self,
        _: usize,
        _: Store<Self>,
    ) -> bool {
        false
    }
}

impl OwnKernel for f32 {
    #[allow(clippy::too_many_arguments)]
    unsafe fn own_product(
        d: GemmDims,
        a: &[f32],
        b: &[f32],
        rows: Range<usize>,
        cols: Range<usize>,
        out: *mut f32,
        ldc: usize,
        store: Store<f32>,
    ) -> bool {
        #[cfg(target_arch = "x86_64")]
        if own_kernels_enabled() && avx512::suits(d, cols.len()) {
            // SAFETY: the caller vouches for `out`.
            return unsafe { avx512::product(d, a, b, rows, cols, out, ldc, store) };
        }
        let _ = (d, a, b, rows, cols, out, ldc, store);
        false
    }
}

impl OwnKernel for f64 {}

/// `op(a)` and `op(b)` as faer matrices.
fn faer_operands<'a, T>(d: GemmDims, a: &'a [T], b: &'a [T]) -> (MatRef<'a, T>, MatRef<'a, T>) {
    let GemmDims {
        m,
        n,
        k,
        trans_a,
        trans_b,
    } = d;
    let lhs = if trans_a {
        MatRef::from_row_major_slice(a, k, m).transpose()
    } else {
        MatRef::from_row_major_slice(a, m, k)
    };
    let rhs = if trans_b {
        MatRef::from_row_major_slice(b, n, k).transpose()
    } else {
        MatRef::from_row_major_slice(b, k, n)
    };
    (lhs, rhs)
}

/// `dst (=|+=) alpha · lhs · rhs` on the calling thread, as `store` says.
fn faer_product<T: faer::traits::ComplexField + From<f32>>(
    dst: MatMut<'_, T>,
    lhs: MatRef<'_, T>,
    rhs: MatRef<'_, T>,
    store: Store<T>,
) {
    let (accum, alpha) = match store {
        Store::Replace => (Accum::Replace, T::from(1.0)),
        Store::AddScaled(alpha) => (Accum::Add, alpha),
    };
    faer::linalg::matmul::matmul(dst, accum, lhs, rhs, alpha, Par::Seq);
    clear_upper_vector_state();
}

// Blocks of rows on separate threads, each a one-thread faer product: on two cores this
// measured faster than faer's own parallel product (`Par::rayon`): 256² ~400 vs ~230-250
// GFLOP/s, 1024² ~490 vs ~440-490.
macro_rules! faer_gemm {
    ($t:ty) => {
        impl GemmElement for $t {
            fn product_rows(
                d: GemmDims,
                a: &[Self],
                b: &[Self],
                rows: Range<usize>,
                block: &mut [Self],
                store: Store<Self>,
            ) {
                let plain = !d.trans_a && !d.trans_b && d.n > 0;
                let a_rows = &a[rows.start * d.k..rows.end * d.k];
                if plain && d.k <= SHORT_CONTRACTION {
                    return short_contraction(a_rows, b, d.k, block, store);
                }
                if plain && rows.len() == 1 && d.n <= NARROW_VECTOR_PRODUCT {
                    return row_times_narrow_matrix(a_rows, b, block, store, d.n);
                }
                let (lhs, rhs) = faer_operands(d, a, b);
                let (r, n) = (rows.len(), d.n);
                let lhs = lhs.subrows(rows.start, r);
                // (With k = 0, faer writes zeros, or adds nothing.)
                if d.trans_a && (1..=NARROW_COLUMNS).contains(&n) {
                    // A narrow result from a column-major lhs (a weight gradient xᵀ·dy
                    // with few outputs): faer is much faster writing it column-major
                    // (1024×256ᵀ · 256×10: 41 µs against 134), and it is small to transpose.
                    let mut tmp = vec![0.0; r * n];
                    let dst = MatMut::from_column_major_slice_mut(&mut tmp, r, n);
                    faer::linalg::matmul::matmul(dst, Accum::Replace, lhs, rhs, 1.0, Par::Seq);
                    clear_upper_vector_state();
                    for (i, row) in block.chunks_exact_mut(n).enumerate() {
                        for (j, o) in row.iter_mut().enumerate() {
                            let p = tmp[j * r + i];
                            *o = match store {
                                Store::Replace => p,
                                Store::AddScaled(alpha) => *o + alpha * p,
                            };
                        }
                    }
                } else {
                    // SAFETY: `block` holds the `r × n` rows, row-major, and is ours.
                    let own = unsafe {
                        <$t>::own_product(d, a, b, rows, 0..n, block.as_mut_ptr(), n, store)
                    };
                    if !own {
                        let dst = MatMut::from_row_major_slice_mut(block, r, n);
                        faer_product(dst, lhs, rhs, store);
                    }
                }
            }

            fn product_columns(
                d: GemmDims,
                a: &[Self],
                b: &[Self],
                cols: Range<usize>,
                block: MatMut<'_, Self>,
                store: Store<Self>,
            ) {
                let (ldc, out) = (block.row_stride(), block.as_ptr_mut());
                if ldc > 0 && block.col_stride() == 1 {
                    // SAFETY: the block is `m` rows of stride `ldc` with `cols.len()`
                    // elements each, borrowed mutably for this call.
                    let ldc = ldc as usize;
                    if unsafe { <$t>::own_product(d, a, b, 0..d.m, cols.clone(), out, ldc, store) }
                    {
                        return;
                    }
                }
                let (lhs, rhs) = faer_operands(d, a, b);
                faer_product(block, lhs, rhs.subcols(cols.start, cols.len()), store);
            }
        }
    };
}
faer_gemm!(f32);
faer_gemm!(f64);

/// Zeroes the upper halves of the vector registers (`vzeroupper`) after faer's hand-written
/// AVX-512 kernels, which return without doing so. Left dirty, they slow every later
/// SSE-encoded instruction of the thread: one 32×32 product on the main thread made each
/// following 784-1024-1024-10 training step 0.5-0.7 ms slower (6.2 → 6.9 ms, 2 threads).
pub fn clear_upper_vector_state() {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx") {
        // SAFETY: the CPU supports AVX, checked just above.
        unsafe { zero_upper() }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn zero_upper() {
    // The compiler knows what this intrinsic clobbers: no live value is lost.
    std::arch::x86_64::_mm256_zeroupper();
}

/// `out (=|+=) a_row · b` for a row-major `b` whose rows are `stride` apart and have
/// `out.len()` columns: a batch-1 dense layer with few outputs. Columns are taken 16 (then
/// 8, 4, 2, 1) at a time with their sums in registers while `a_row` streams by; faer's
/// matrix-vector path took 21 µs for 1×2304 · 2304×10 on the build machine.
fn row_times_narrow_matrix<T: Number>(
    a_row: &[T],
    b: &[T],
    out: &mut [T],
    store: Store<T>,
    stride: usize,
) {
    /// Sums of columns `j0..j0 + W` in `W` registers.
    #[inline(always)]
    fn columns<const W: usize, T: Number>(a_row: &[T], b: &[T], n: usize, j0: usize) -> [T; W] {
        let mut acc = [T::ZERO; W];
        for (t, &av) in a_row.iter().enumerate() {
            let b_cols: &[T; W] = b[t * n + j0..t * n + j0 + W].try_into().expect("W columns");
            for (s, &bv) in acc.iter_mut().zip(b_cols) {
                *s = s.add(av.mul(bv));
            }
        }
        acc
    }
    let mut j0 = 0;
    while j0 < out.len() {
        let sums: &[T] = match out.len() - j0 {
            16.. => &columns::<16, T>(a_row, b, stride, j0),
            8.. => &columns::<8, T>(a_row, b, stride, j0),
            4.. => &columns::<4, T>(a_row, b, stride, j0),
            2.. => &columns::<2, T>(a_row, b, stride, j0),
            _ => &columns::<1, T>(a_row, b, stride, j0),
        };
        store_sums(&mut out[j0..j0 + sums.len()], sums, store);
        j0 += sums.len();
    }
}

/// The lhs of a short product, read in place: term `t` of row `r` is
/// `data()[start(r) + offset(t)]`. A row-major matrix is one ([`RowMajor`]); so are a
/// convolution's patches read straight from its input, without an im2col copy.
pub trait ShortLhs<T>: Sync {
    /// The elements the rows are read from.
    fn data(&self) -> &[T];
    /// The contracted length `k` (terms per row).
    fn k(&self) -> usize;
    /// The number of rows.
    fn rows(&self) -> usize;
    /// Where row `r` starts in [`ShortLhs::data`].
    fn start(&self, r: usize) -> usize;
    /// Where term `t` of each row lies from the row's start.
    fn offset(&self, t: usize) -> usize;
}

/// A row-major `rows × k` matrix as a [`ShortLhs`].
struct RowMajor<'a, T> {
    a: &'a [T],
    k: usize,
}

impl<T: Sync> ShortLhs<T> for RowMajor<'_, T> {
    fn data(&self) -> &[T] {
        self.a
    }
    fn k(&self) -> usize {
        self.k
    }
    fn rows(&self) -> usize {
        self.a.len().checked_div(self.k).unwrap_or(0)
    }
    #[inline(always)]
    fn start(&self, r: usize) -> usize {
        r * self.k
    }
    #[inline(always)]
    fn offset(&self, t: usize) -> usize {
        t
    }
}

/// `out (=|+=) a · b` for row-major `a` (`rows × k`, `k` short) and `b` (`k × n`): see
/// [`short_product`].
fn short_contraction<T: Number>(a: &[T], b: &[T], k: usize, out: &mut [T], store: Store<T>) {
    short_product(&RowMajor { a, k }, b, out, store)
}

/// `out (=|+=) a · b` for a short lhs `a` (`rows × k`, `k` ≤ [`SHORT_CONTRACTION`]) and a
/// row-major `b` (`k × n`, `n = out.len() / rows`): four rows and 16 (or 8) columns at a
/// time with their sums in registers, compiled for AVX2 where the CPU has it. The terms
/// of each sum are added in the order of `k` whatever the path, so results do not depend
/// on the CPU, on how rows are grouped or on where the rows are read from. With AVX-512,
/// 32 columns at a time: a first convolution's 3×3×1 × 32 product (cnn_step's conv1) is
/// one register-wide block per row.
pub fn short_product<T: Number, L: ShortLhs<T>>(a: &L, b: &[T], out: &mut [T], store: Store<T>) {
    assert!(a.k() <= SHORT_CONTRACTION, "short product of k = {}", a.k());
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512 F, checked just above.
            return unsafe { short_product_avx512(a, b, out, store) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            return unsafe { short_product_avx2(a, b, out, store) };
        }
    }
    short_product_rows::<8, T, L>(a, b, out, store)
}

/// [`short_product_rows`] compiled with AVX-512: 32 columns are two registers.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn short_product_avx512<T: Number, L: ShortLhs<T>>(
    a: &L,
    b: &[T],
    out: &mut [T],
    store: Store<T>,
) {
    short_product_rows::<32, T, L>(a, b, out, store)
}

/// [`short_product_rows`] compiled with AVX2: 16 columns are two registers.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn short_product_avx2<T: Number, L: ShortLhs<T>>(
    a: &L,
    b: &[T],
    out: &mut [T],
    store: Store<T>,
) {
    short_product_rows::<16, T, L>(a, b, out, store)
}

/// The body of [`short_product`], `W` columns at a time.
#[inline(always)]
fn short_product_rows<const W: usize, T: Number, L: ShortLhs<T>>(
    a: &L,
    b: &[T],
    out: &mut [T],
    store: Store<T>,
) {
    let (k, rows) = (a.k(), a.rows());
    let n = out.len().checked_div(rows).unwrap_or(0);
    if k == 0 || n == 0 {
        if store == Store::Replace {
            out.fill(T::ZERO);
        }
        return;
    }
    assert_eq!(b.len(), k * n, "short product rhs length");
    // One row's terms gathered, for the columns and rows left over from the blocks.
    let row = |r: usize| -> [T; SHORT_CONTRACTION] {
        let mut terms = [T::ZERO; SHORT_CONTRACTION];
        for (t, v) in terms[..k].iter_mut().enumerate() {
            *v = a.data()[a.start(r) + a.offset(t)];
        }
        terms
    };
    let mut out_groups = out.chunks_exact_mut(4 * n);
    for (g, out4) in (&mut out_groups).enumerate() {
        let r0 = 4 * g;
        let starts = [r0, r0 + 1, r0 + 2, r0 + 3].map(|r| a.start(r));
        let mut j0 = 0;
        while j0 + W <= n {
            four_rows::<W, T, L>(a, starts, b, n, j0, out4, store);
            j0 += W;
        }
        if j0 < n {
            for (r, out_row) in (r0..r0 + 4).zip(out4.chunks_exact_mut(n)) {
                let terms = row(r);
                row_times_narrow_matrix(&terms[..k], &b[j0..], &mut out_row[j0..], store, n);
            }
        }
    }
    let done = rows - rows % 4;
    for (r, out_row) in (done..rows).zip(out_groups.into_remainder().chunks_exact_mut(n)) {
        let terms = row(r);
        row_times_narrow_matrix(&terms[..k], b, out_row, store, n);
    }
}

/// Columns `j0..j0 + W` of the four rows of `a · b` that start at `starts`, stored into
/// `out4` (four rows of `n`).
#[inline(always)]
fn four_rows<const W: usize, T: Number, L: ShortLhs<T>>(
    a: &L,
    starts: [usize; 4],
    b: &[T],
    n: usize,
    j0: usize,
    out4: &mut [T],
    store: Store<T>,
) {
    let data = a.data();
    let (mut s0, mut s1, mut s2, mut s3) = ([T::ZERO; W], [T::ZERO; W], [T::ZERO; W], [T::ZERO; W]);
    for t in 0..a.k() {
        let bt: &[T; W] = b[t * n + j0..t * n + j0 + W].try_into().expect("W columns");
        let o = a.offset(t);
        let (v0, v1, v2, v3) = (
            data[starts[0] + o],
            data[starts[1] + o],
            data[starts[2] + o],
            data[starts[3] + o],
        );
        for i in 0..W {
            s0[i] = s0[i].add(v0.mul(bt[i]));
            s1[i] = s1[i].add(v1.mul(bt[i]));
            s2[i] = s2[i].add(v2.mul(bt[i]));
            s3[i] = s3[i].add(v3.mul(bt[i]));
        }
    }
    for (r, sums) in [s0, s1, s2, s3].iter().enumerate() {
        store_sums(&mut out4[r * n + j0..r * n + j0 + W], sums, store);
    }
}

/// `out (=|+=) sums` as `store` says.
#[inline(always)]
fn store_sums<T: Number>(out: &mut [T], sums: &[T], store: Store<T>) {
    for (o, &s) in out.iter_mut().zip(sums) {
        *o = match store {
            Store::Replace => s,
            Store::AddScaled(alpha) => o.add(alpha.mul(s)),
        };
    }
}

/// Integer product rows: i-k-j loop order so the inner loop streams rows of `b` and `out`.
fn int_product_rows<T: Number>(
    d: GemmDims,
    a: &[T],
    b: &[T],
    rows: Range<usize>,
    block: &mut [T],
    store: Store<T>,
) {
    let GemmDims {
        m,
        n,
        k,
        trans_a,
        trans_b,
    } = d;
    let scale = match store {
        Store::Replace => {
            block.fill(T::ZERO);
            T::ONE
        }
        Store::AddScaled(alpha) => alpha,
    };
    for (i, row) in rows.zip(block.chunks_exact_mut(n.max(1))) {
        for p in 0..k {
            let av = scale.mul(if trans_a { a[p * m + i] } else { a[i * k + p] });
            if trans_b {
                for (j, o) in row.iter_mut().enumerate() {
                    *o = o.add(av.mul(b[j * k + p]));
                }
            } else {
                for (o, &bv) in row.iter_mut().zip(&b[p * n..(p + 1) * n]) {
                    *o = o.add(av.mul(bv));
                }
            }
        }
    }
}

/// Integer product columns: one dot product per element (integer products are rare and
/// small; this only has to be right).
fn int_product_columns<T: Number>(
    d: GemmDims,
    a: &[T],
    b: &[T],
    cols: Range<usize>,
    mut block: MatMut<'_, T>,
    store: Store<T>,
) {
    let GemmDims {
        m,
        n,
        k,
        trans_a,
        trans_b,
    } = d;
    for i in 0..m {
        for (c, j) in cols.clone().enumerate() {
            let sum = (0..k).fold(T::ZERO, |sum, p| {
                let x = if trans_a { a[p * m + i] } else { a[i * k + p] };
                let y = if trans_b { b[j * k + p] } else { b[p * n + j] };
                sum.add(x.mul(y))
            });
            let o = &mut block[(i, c)];
            *o = match store {
                Store::Replace => sum,
                Store::AddScaled(alpha) => o.add(alpha.mul(sum)),
            };
        }
    }
}

macro_rules! int_gemm {
    ($t:ty) => {
        impl GemmElement for $t {
            fn product_rows(
                d: GemmDims,
                a: &[Self],
                b: &[Self],
                rows: Range<usize>,
                block: &mut [Self],
                store: Store<Self>,
            ) {
                int_product_rows(d, a, b, rows, block, store)
            }

            fn product_columns(
                d: GemmDims,
                a: &[Self],
                b: &[Self],
                cols: Range<usize>,
                block: MatMut<'_, Self>,
                store: Store<Self>,
            ) {
                int_product_columns(d, a, b, cols, block, store)
            }
        }
    };
}
int_gemm!(i32);
int_gemm!(i64);
int_gemm!(u8);

/// A zero-filled buffer for a kernel's output.
pub fn zeroed<T: Element>(len: usize) -> Vec<T> {
    vec![T::default(); len]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks every transpose case of an `m×k · k×n` product on `threads` threads
    /// against a naive sum, for floats and integers.
    fn check_products(m: usize, n: usize, k: usize, threads: usize) {
        let a: Vec<f64> = (0..m * k).map(|i| (i as f64 * 0.37).sin()).collect();
        let b: Vec<f64> = (0..k * n).map(|i| (i as f64 * 0.71).cos()).collect();
        let mut want = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                want[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            }
        }
        let transpose = |x: &[f64], r: usize, c: usize| -> Vec<f64> {
            (0..c)
                .flat_map(|j| (0..r).map(move |i| x[i * c + j]))
                .collect()
        };
        let (at, bt) = (transpose(&a, m, k), transpose(&b, k, n));
        for (trans_a, trans_b) in [(false, false), (true, false), (false, true), (true, true)] {
            let d = GemmDims {
                m,
                n,
                k,
                trans_a,
                trans_b,
            };
            let mut out = vec![0.0; m * n];
            let (x, y) = (
                if trans_a { &at } else { &a },
                if trans_b { &bt } else { &b },
            );
            gemm(d, x, y, &mut out, threads);
            for (o, w) in out.iter().zip(&want) {
                assert!((o - w).abs() < 1e-12, "{d:?} on {threads} threads");
            }
            assert_eq!(gemm_to_vec(d, x, y, threads), out);
            let start: Vec<f64> = (0..m * n).map(|i| i as f64).collect();
            let mut updated = start.clone();
            gemm_store(d, x, y, &mut updated, Store::AddScaled(-0.5), threads);
            for ((u, s), w) in updated.iter().zip(&start).zip(&want) {
                assert!(
                    (u - (s - 0.5 * w)).abs() < 1e-12 * s.abs().max(1.0),
                    "{d:?} added on {threads} threads"
                );
            }
            // A finishing pass sees every row once, after the product.
            let finished = gemm_to_vec_then(d, x, y, threads, |rows, block| {
                for (i, row) in rows.zip(block.chunks_exact_mut(n.max(1))) {
                    row.iter_mut().for_each(|v| *v = 2.0 * *v + i as f64);
                }
            });
            let want_finished: Vec<f64> =
                (0..m * n).map(|e| 2.0 * out[e] + (e / n) as f64).collect();
            assert_eq!(
                finished, want_finished,
                "{d:?} finished on {threads} threads"
            );
            let xi: Vec<i64> = x.iter().map(|v| (v * 10.0) as i64).collect();
            let yi: Vec<i64> = y.iter().map(|v| (v * 10.0) as i64).collect();
            let mut oi = vec![0i64; m * n];
            gemm(d, &xi, &yi, &mut oi, threads);
            assert_eq!(gemm_to_vec(d, &xi, &yi, threads), oi);
            let mut of = vec![0.0f64; m * n];
            let xf: Vec<f64> = xi.iter().map(|&v| v as f64).collect();
            let yf: Vec<f64> = yi.iter().map(|&v| v as f64).collect();
            gemm(d, &xf, &yf, &mut of, 1);
            assert_eq!(oi, of.iter().map(|&v| v as i64).collect::<Vec<_>>());
            let mut added: Vec<i64> = (0..m * n).map(|i| i as i64).collect();
            gemm_store(d, &xi, &yi, &mut added, Store::AddScaled(-3), threads);
            let want_added: Vec<i64> = oi
                .iter()
                .enumerate()
                .map(|(i, v)| i as i64 - 3 * v)
                .collect();
            assert_eq!(added, want_added);
        }
    }

    #[test]
    fn all_transpose_cases_match_a_naive_product() {
        check_products(3, 4, 5, 1);
        // empty products: no rows, no columns, nothing to contract (zeros)
        check_products(0, 4, 5, 1);
        check_products(3, 0, 5, 1);
        check_products(3, 4, 0, 1);
        // one row times a narrow matrix: column blocks of 16, 8, 4, 2 and 1 (31), the
        // widest such product (64), and one just wider (faer's)
        check_products(1, 31, 40, 1);
        check_products(1, 64, 9, 1);
        check_products(1, 65, 9, 1);
        // short contractions (k ≤ 16): groups of four rows and a remainder, column blocks
        // of 16 or 8 and a narrower tail
        check_products(7, 37, 9, 1);
        check_products(4, 32, 1, 1);
        check_products(5, 8, 16, 1);
        check_products(8000, 32, 9, 2);
    }

    #[test]
    fn short_contractions_add_in_the_same_order_on_every_path() {
        // The vector widths of the AVX-512, AVX2 and baseline paths, and a row alone, give the
        // same bits: each sum runs over k in order.
        let (m, n, k) = (9, 40, 9);
        let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.71).cos() * 1e3).collect();
        let mut dispatched = vec![0.0f32; m * n];
        short_contraction(&a, &b, k, &mut dispatched, Store::Replace);
        let mut narrow = vec![0.0f32; m * n];
        short_product_rows::<8, f32, _>(&RowMajor { a: &a, k }, &b, &mut narrow, Store::Replace);
        let mut wide = vec![0.0f32; m * n];
        short_product_rows::<32, f32, _>(&RowMajor { a: &a, k }, &b, &mut wide, Store::Replace);
        let mut single = vec![0.0f32; m * n];
        for (a_row, out) in a.chunks_exact(k).zip(single.chunks_exact_mut(n)) {
            row_times_narrow_matrix(a_row, &b, out, Store::Replace, n);
        }
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&dispatched), bits(&narrow));
        assert_eq!(bits(&dispatched), bits(&wide));
        assert_eq!(bits(&dispatched), bits(&single));
    }

    #[test]
    fn a_scaled_update_spanning_huge_pages_keeps_its_values() {
        // An output spanning 2 MiB pages, collapsed into huge pages first as a tensor
        // buffer that large is: the values after the update are what they would be in 4
        // KiB pages (a `xᵀ·dy` update, this crate's kernel where the CPU has it).
        let (m, n, k) = (1024, 1100, 3);
        assert!(m * n * 4 >= 2 * crate::tensor::alloc::HUGE_PAGE);
        let d = GemmDims {
            m,
            n,
            k,
            trans_a: true,
            trans_b: false,
        };
        let a: Vec<f32> = (0..k * m).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.71).cos()).collect();
        let start: Vec<f32> = (0..m * n).map(|i| (i % 1000) as f32 * 0.5).collect();
        let mut out = start.clone();
        crate::tensor::alloc::back_by_huge_pages(&out);
        gemm_store(d, &a, &b, &mut out, Store::AddScaled(-0.5), 2);
        for i in 0..m {
            for j in 0..n {
                let p: f64 = (0..k)
                    .map(|t| f64::from(a[t * m + i]) * f64::from(b[t * n + j]))
                    .sum();
                let want = f64::from(start[i * n + j]) - 0.5 * p;
                let got = f64::from(out[i * n + j]);
                assert!(
                    (got - want).abs() <= 1e-4 * (1.0 + want.abs()),
                    "({i}, {j})"
                );
            }
        }
    }

    #[test]
    fn products_split_over_threads_match_a_naive_product() {
        // Above MIN_PRODUCT_WORK, in two and three uneven parts of rows, or with a
        // transposed rhs or fewer rows than columns, and enough columns, of columns.
        for (m, n, k) in [(151, 170, 90), (1, 5000, 500), (300, 10, 700)] {
            assert!(m * n * k >= MIN_PRODUCT_WORK);
            let d = |trans_b| GemmDims {
                m,
                n,
                k,
                trans_a: false,
                trans_b,
            };
            assert_eq!(d(false).splits_columns(2), m < n && n >= 128);
            assert_eq!(d(true).splits_columns(2), n >= 128);
            for threads in [2, 3] {
                check_products(m, n, k, threads);
            }
        }
    }
}

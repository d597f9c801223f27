//! One row times a matrix in a new buffer: the f32 product of a batch-1 dense layer
//! (`1×k · k×n`, both stored as they are), which a model server runs on every request.
//!
//! Each result element is written once, straight from registers, into the buffer's
//! uninitialized room: no zero-fill, no packing, none of faer's matrix-vector set-up.
//! With AVX-512 (detected at run time) 128 columns at a time are eight accumulators, one
//! fused multiply-add each per contracted element (enough independent sums to keep both
//! FMA units busy), each element the sum over the contracted index in increasing order;
//! then 16 at a time with a mask for the last ones, each summed in four parts (every
//! fourth term) added at the end, so that a narrow layer (the digits MLP's 128 × 10) is
//! not one chain of dependent multiply-adds. Without AVX-512, or with
//! `RUSTFLOW_GEMM=faer`, the product takes the general path (`product_rows`). The digits
//! MLP's first layer (1×64 · 64×128) took 0.47 µs in faer's matrix-vector product.

use super::{FinishRows, GemmDims};
use std::any::TypeId;

/// `op(a) · op(b)` in a new buffer, then `finish(0..1, row)`, when `d` is one f32 row
/// times a matrix stored as is (`m = 1`, neither operand transposed, `n ≥ 1`) and the
/// kernel runs here (see [`row_times_matrix`]); `None` leaves every other product to the
/// caller.
pub(super) fn product_in_new_buffer<T: 'static>(
    d: GemmDims,
    a: &[T],
    b: &[T],
    finish: Option<FinishRows<'_, T>>,
) -> Option<Vec<T>> {
    if d.m != 1 || d.trans_a || d.trans_b || d.n == 0 || TypeId::of::<T>() != TypeId::of::<f32>() {
        return None;
    }
    assert!(
        a.len() == d.k && b.len() == d.k * d.n,
        "gemm operand lengths"
    );
    // SAFETY: `T` is `f32` (checked just above), so the slices are `f32` slices.
    let (a32, b32) = unsafe {
        (
            std::slice::from_raw_parts(a.as_ptr().cast::<f32>(), a.len()),
            std::slice::from_raw_parts(b.as_ptr().cast::<f32>(), b.len()),
        )
    };
    let mut out = row_times_matrix(a32, b32, d.n)?;
    if let Some(finish) = finish {
        // SAFETY: `T` is `f32`, so the row is a `[T]` of the same length.
        let row = unsafe { std::slice::from_raw_parts_mut(out.as_mut_ptr().cast::<T>(), d.n) };
        finish(0..1, row);
    }
    let mut out = std::mem::ManuallyDrop::new(out);
    // SAFETY: `T` is `f32`: the same layout, and the allocation was made for it.
    Some(unsafe { Vec::from_raw_parts(out.as_mut_ptr().cast::<T>(), out.len(), out.capacity()) })
}

/// `a · b` for a row `a` (length `k`) and a row-major `b` (`k × n`), where the CPU runs
/// AVX-512 F and this crate's own kernels are on (`RUSTFLOW_GEMM` is not `faer`).
fn row_times_matrix(a: &[f32], b: &[f32], n: usize) -> Option<Vec<f32>> {
    #[cfg(target_arch = "x86_64")]
    if super::own_kernels_enabled() && super::has_avx512f() {
        let mut out = Vec::with_capacity(n);
        // SAFETY: the CPU runs AVX-512 F (checked just above); `b` holds `a.len() × n`
        // elements (asserted by the caller) and `out` has room for `n`, all written.
        unsafe {
            row_avx512(a, b, n, out.as_mut_ptr());
            out.set_len(n);
        }
        return Some(out);
    }
    let _ = (a, b, n);
    None
}

/// Writes `a · b` (`b` row-major, `a.len() × n`) into `out[..n]`.
///
/// # Safety
/// The CPU runs AVX-512 F; `b` holds `a.len() × n` elements; `out` has room for `n`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn row_avx512(a: &[f32], b: &[f32], n: usize, out: *mut f32) {
    use std::arch::x86_64::{
        _mm512_add_ps, _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_mask_storeu_ps,
        _mm512_maskz_loadu_ps, _mm512_set1_ps, _mm512_setzero_ps, _mm512_storeu_ps,
    };
    const LANES: usize = 16;
    const WIDE: usize = 8;
    const CHAINS: usize = 4;
    let b = b.as_ptr();
    let mut j = 0;
    while j + WIDE * LANES <= n {
        let mut s = [_mm512_setzero_ps(); WIDE];
        for (t, &x) in a.iter().enumerate() {
            let x = _mm512_set1_ps(x);
            let row = b.add(t * n + j);
            for (v, s) in s.iter_mut().enumerate() {
                *s = _mm512_fmadd_ps(x, _mm512_loadu_ps(row.add(v * LANES)), *s);
            }
        }
        for (v, s) in s.iter().enumerate() {
            _mm512_storeu_ps(out.add(j + v * LANES), *s);
        }
        j += WIDE * LANES;
    }
    while j < n {
        // One register of columns: its sum in [`CHAINS`] parts (term `t` in part
        // `t % CHAINS`), so that the multiply-adds do not each wait for the one before.
        let mask = u16::MAX >> (LANES - (n - j).min(LANES));
        let mut s = [_mm512_setzero_ps(); CHAINS];
        let term = |t: usize, x: f32, sum| {
            let column = _mm512_maskz_loadu_ps(mask, b.add(t * n + j));
            _mm512_fmadd_ps(_mm512_set1_ps(x), column, sum)
        };
        let mut terms = a.chunks_exact(CHAINS);
        for (c, xs) in (&mut terms).enumerate() {
            for (p, (&x, part)) in xs.iter().zip(&mut s).enumerate() {
                *part = term(c * CHAINS + p, x, *part);
            }
        }
        let done = a.len() - terms.remainder().len();
        for (p, (&x, part)) in terms.remainder().iter().zip(&mut s).enumerate() {
            *part = term(done + p, x, *part);
        }
        let sum = _mm512_add_ps(_mm512_add_ps(s[0], s[1]), _mm512_add_ps(s[2], s[3]));
        _mm512_mask_storeu_ps(out.add(j), mask, sum);
        j += LANES;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether the AVX-512 kernel should have taken the products (else every test here
    /// checks that it declined them).
    fn kernel_runs_here() -> bool {
        #[cfg(target_arch = "x86_64")]
        return crate::device::gemm::own_kernels_enabled() && crate::device::gemm::has_avx512f();
        #[cfg(not(target_arch = "x86_64"))]
        false
    }

    /// Odd sizes: no column block, one, one and a masked tail, k = 0 and 1.
    const SIZES: [(usize, usize); 8] = [
        (1, 1),
        (0, 5),
        (64, 128),
        (7, 13),
        (33, 129),
        (65, 300),
        (3, 16),
        (130, 145),
    ];

    /// Small integers and halves: the products and their sums are exact in f32.
    fn operands(k: usize, n: usize) -> (Vec<f32>, Vec<f32>) {
        let v = |i: usize, m: usize| ((i * 7 + m) % 11) as f32 * 0.5 - 2.0;
        (
            (0..k).map(|i| v(i, 3)).collect(),
            (0..k * n).map(|i| v(i, 5)).collect(),
        )
    }

    /// The f64 definition: `Σ_t a[t]·b[t·n + j]`.
    fn reference(a: &[f32], b: &[f32], n: usize) -> Vec<f64> {
        (0..n)
            .map(|j| {
                a.iter()
                    .enumerate()
                    .map(|(t, &x)| f64::from(x) * f64::from(b[t * n + j]))
                    .sum()
            })
            .collect()
    }

    #[test]
    fn matches_the_f64_definition_for_odd_sizes() {
        for (k, n) in SIZES {
            let (a, b) = operands(k, n);
            let Some(got) = row_times_matrix(&a, &b, n) else {
                return assert!(!kernel_runs_here());
            };
            let want = reference(&a, &b, n);
            assert_eq!(got.len(), n);
            for (j, (&g, &w)) in got.iter().zip(&want).enumerate() {
                assert_eq!(f64::from(g), w, "k={k} n={n} column {j}");
            }
        }
    }

    #[test]
    fn rounding_stays_within_the_f64_definitions_bound() {
        // Values that do not sum exactly: each result within k·ε·Σ|a·b| of the f64 sum.
        for (k, n) in SIZES {
            let a: Vec<f32> = (0..k).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.11).cos() / 3.0).collect();
            let Some(got) = row_times_matrix(&a, &b, n) else {
                return assert!(!kernel_runs_here());
            };
            for (j, (&g, w)) in got.iter().zip(reference(&a, &b, n)).enumerate() {
                let size: f64 = (0..k)
                    .map(|t| (f64::from(a[t]) * f64::from(b[t * n + j])).abs())
                    .sum();
                let bound = (k as f64 + 1.0) * f64::from(f32::EPSILON) * size;
                assert!(
                    (f64::from(g) - w).abs() <= bound,
                    "k={k} n={n} column {j}: {g} vs {w}"
                );
            }
        }
    }

    #[test]
    fn takes_only_one_f32_row_as_is_and_finishes_it() {
        let (a, b) = operands(5, 20);
        let d = GemmDims {
            m: 1,
            n: 20,
            k: 5,
            trans_a: false,
            trans_b: false,
        };
        let plus_one = |rows: std::ops::Range<usize>, row: &mut [f32]| {
            assert_eq!(rows, 0..1);
            row.iter_mut().for_each(|x| *x += 1.0);
        };
        let got = product_in_new_buffer(d, &a, &b, Some(&plus_one));
        assert_eq!(got.is_some(), kernel_runs_here());
        if let Some(got) = got {
            let want: Vec<f32> = reference(&a, &b, 20)
                .iter()
                .map(|&x| x as f32 + 1.0)
                .collect();
            assert_eq!(got, want);
        }
        for other in [
            GemmDims { m: 2, ..d },
            GemmDims { trans_a: true, ..d },
            GemmDims { trans_b: true, ..d },
            GemmDims { n: 0, ..d },
        ] {
            assert!(product_in_new_buffer(other, &a, &b, None).is_none());
        }
        let a64: Vec<f64> = a.iter().map(|&x| f64::from(x)).collect();
        let b64: Vec<f64> = b.iter().map(|&x| f64::from(x)).collect();
        assert!(product_in_new_buffer(d, &a64, &b64, None).is_none());
    }
}

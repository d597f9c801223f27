//! Matrix products on row-major slices: faer for floats, a cache-friendly loop for integers.

use crate::tensor::{Element, Number};
use faer::{Accum, MatMut, MatRef, Par};

/// Products smaller than this many multiply-adds run on the calling thread: handing them
/// to a pool costs more than the product.
pub const PARALLEL_MIN_FLOPS: usize = 1 << 21;

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
    /// True when the product is large enough for several threads to pay off.
    pub fn worth_threads(&self) -> bool {
        self.m.saturating_mul(self.n).saturating_mul(self.k) >= PARALLEL_MIN_FLOPS
    }
}

/// Writes `op(a) · op(b)` into `out` (length `m*n`), using up to `threads` threads.
pub fn gemm<T: GemmElement>(d: GemmDims, a: &[T], b: &[T], out: &mut [T], threads: usize) {
    debug_assert_eq!(a.len(), d.m * d.k);
    debug_assert_eq!(b.len(), d.k * d.n);
    debug_assert_eq!(out.len(), d.m * d.n);
    T::gemm(d, a, b, out, threads)
}

/// Element types with a matrix product.
pub trait GemmElement: Number {
    /// See [`gemm`].
    fn gemm(d: GemmDims, a: &[Self], b: &[Self], out: &mut [Self], threads: usize);
}

fn par_for(d: GemmDims, threads: usize) -> Par {
    if threads > 1 && d.worth_threads() {
        Par::rayon(threads)
    } else {
        Par::Seq
    }
}

macro_rules! faer_gemm {
    ($t:ty) => {
        impl GemmElement for $t {
            fn gemm(d: GemmDims, a: &[Self], b: &[Self], out: &mut [Self], threads: usize) {
                let GemmDims {
                    m,
                    n,
                    k,
                    trans_a,
                    trans_b,
                } = d;
                if m == 0 || n == 0 {
                    return;
                }
                if k == 0 {
                    out.fill(0.0);
                    return;
                }
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
                let dst = MatMut::from_row_major_slice_mut(out, m, n);
                faer::linalg::matmul::matmul(
                    dst,
                    Accum::Replace,
                    lhs,
                    rhs,
                    1.0,
                    par_for(d, threads),
                );
            }
        }
    };
}
faer_gemm!(f32);
faer_gemm!(f64);

/// Integer product: i-k-j loop order so the inner loop streams rows of `b` and `out`.
fn int_gemm<T: Number>(d: GemmDims, a: &[T], b: &[T], out: &mut [T]) {
    let GemmDims {
        m,
        n,
        k,
        trans_a,
        trans_b,
    } = d;
    out.fill(T::ZERO);
    for i in 0..m {
        let row = &mut out[i * n..(i + 1) * n];
        for p in 0..k {
            let av = if trans_a { a[p * m + i] } else { a[i * k + p] };
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

macro_rules! int_gemm {
    ($t:ty) => {
        impl GemmElement for $t {
            fn gemm(d: GemmDims, a: &[Self], b: &[Self], out: &mut [Self], _threads: usize) {
                int_gemm(d, a, b, out)
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

    #[test]
    fn all_transpose_cases_match_a_naive_product() {
        let (m, n, k) = (3, 4, 5);
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
            gemm(d, x, y, &mut out, 1);
            for (o, w) in out.iter().zip(&want) {
                assert!((o - w).abs() < 1e-12);
            }
            let xi: Vec<i64> = x.iter().map(|v| (v * 10.0) as i64).collect();
            let yi: Vec<i64> = y.iter().map(|v| (v * 10.0) as i64).collect();
            let mut oi = vec![0i64; m * n];
            gemm(d, &xi, &yi, &mut oi, 1);
            let mut of = vec![0.0f64; m * n];
            let xf: Vec<f64> = xi.iter().map(|&v| v as f64).collect();
            let yf: Vec<f64> = yi.iter().map(|&v| v as f64).collect();
            gemm(d, &xf, &yf, &mut of, 1);
            assert_eq!(oi, of.iter().map(|&v| v as i64).collect::<Vec<_>>());
        }
    }
}

//! Tests of the linear algebra ops.

use super::batch_matmul::static_reduction_axes;
use crate::tensor::{DType, PartialShape, Tensor};
use crate::test_util::{assert_close, f64s, random, run, run_with};
use crate::Graph;

/// `x · y` of row-major matrices, from the definition.
fn naive_matmul(x: &[f64], y: &[f64], m: usize, k: usize, n: usize) -> Vec<f64> {
    let mut out = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            out[i * n + j] = (0..k).map(|p| x[i * k + p] * y[p * n + j]).sum();
        }
    }
    out
}

/// Transposes the last two dims of a batch of `r×c` matrices.
fn transpose_last(x: &[f64], r: usize, c: usize) -> Vec<f64> {
    x.chunks(r * c)
        .flat_map(|mat| (0..c).flat_map(move |j| (0..r).map(move |i| mat[i * c + j])))
        .collect()
}

#[test]
fn batch_matmul_broadcasts_batch_dims() {
    let (x, y) = (random(&[2, 1, 2, 3], 1), random(&[3, 3, 4], 2));
    let mut g = Graph::new();
    let (xi, yi) = (
        g.constant(x.clone()).unwrap(),
        g.constant(y.clone()).unwrap(),
    );
    let z = g.batch_matmul(xi, yi, false, false).unwrap();
    assert_eq!(g.shape(z), &PartialShape::known(&[2, 3, 2, 4]));
    // adjoint flags: feed the transposes and ask for them back
    let xt = Tensor::new(&[2, 1, 3, 2], transpose_last(&f64s(&x), 2, 3)).unwrap();
    let yt = Tensor::new(&[3, 4, 3], transpose_last(&f64s(&y), 3, 4)).unwrap();
    let (xti, yti) = (g.constant(xt).unwrap(), g.constant(yt).unwrap());
    let za = g.batch_matmul(xti, yti, true, true).unwrap();
    let out = run(&g, &[z, za]);
    let (xv, yv) = (f64s(&x), f64s(&y));
    let mut want = Vec::new();
    for a in 0..2 {
        for b in 0..3 {
            want.extend(naive_matmul(
                &xv[a * 6..a * 6 + 6],
                &yv[b * 12..b * 12 + 12],
                2,
                3,
                4,
            ));
        }
    }
    assert_close(&f64s(&out[0]), &want, 1e-12);
    assert_close(&f64s(&out[1]), &want, 1e-12);
}

#[test]
fn batch_matmul_of_integers_threads_and_empty_batches() {
    let mut g = Graph::new();
    // [[1,2],[3,4]] · [[5,6],[7,8]] = [[19,22],[43,50]]; the second batch doubles x.
    let x = g
        .constant(Tensor::new(&[2, 2, 2], vec![1i32, 2, 3, 4, 2, 4, 6, 8]).unwrap())
        .unwrap();
    let y = g.constant(Tensor::from([[5i32, 6], [7, 8]])).unwrap();
    let z = g.batch_matmul(x, y, false, false).unwrap();
    let big_x = random(&[64, 32, 64], 3);
    let big_y = random(&[64, 48], 4);
    let (bx, by) = (
        g.constant(big_x.clone()).unwrap(),
        g.constant(big_y.clone()).unwrap(),
    );
    let bz = g.batch_matmul(bx, by, false, false).unwrap();
    let ex = g
        .constant(Tensor::zeros(DType::Float32, &[0, 2, 3]))
        .unwrap();
    let ey = g.constant(Tensor::zeros(DType::Float32, &[3, 4])).unwrap();
    let ez = g.batch_matmul(ex, ey, false, false).unwrap();
    let out = run_with(&g, &[z, bz, ez], 4);
    assert_eq!(
        out[0],
        Tensor::new(&[2, 2, 2], vec![19i32, 22, 43, 50, 38, 44, 86, 100]).unwrap()
    );
    let (xv, yv) = (f64s(&big_x), f64s(&big_y));
    let want: Vec<f64> = xv
        .chunks(32 * 64)
        .flat_map(|m| naive_matmul(m, &yv, 32, 64, 48))
        .collect();
    assert_close(&f64s(&out[1]), &want, 1e-12);
    assert_eq!(out[2].shape(), &[0, 2, 4]);
}

#[test]
fn batch_matmul_shape_errors() {
    let mut g = Graph::new();
    let a = g.placeholder(DType::Float32, [2, 2, 3], "a").unwrap();
    let b = g.placeholder(DType::Float32, [3, 3, 4], "b").unwrap();
    let msg = g.batch_matmul(a, b, false, false).unwrap_err().to_string();
    assert!(msg.contains("compatible batch dimensions"), "{msg}");
    let c = g.placeholder(DType::Float32, [2, 2, 4], "c").unwrap();
    let msg = g.batch_matmul(a, c, false, false).unwrap_err().to_string();
    assert!(msg.contains("Matrix size-incompatible"), "{msg}");
    let v = g.placeholder(DType::Float32, [3], "v").unwrap();
    let msg = g.batch_matmul(v, c, false, false).unwrap_err().to_string();
    assert!(msg.contains("In[0] ndims must be >= 2: 1"), "{msg}");
    // Empty inputs whose broadcast batch could never be allocated: an error, no crash.
    let ex = g
        .constant(Tensor::zeros(DType::Float32, &[1 << 33, 1, 0, 5]))
        .unwrap();
    let ey = g
        .constant(Tensor::zeros(DType::Float32, &[1, 1 << 33, 5, 0]))
        .unwrap();
    let ez = g.batch_matmul(ex, ey, false, false).unwrap();
    let sx = g
        .constant(Tensor::zeros(DType::Float32, &[1 << 40, 0]))
        .unwrap();
    let (_, su, _) = g.svd(sx, true, true).unwrap();
    for t in [ez, su] {
        let msg = crate::Session::new(&g)
            .run(&[], &[t], &[])
            .unwrap_err()
            .to_string();
        assert!(msg.contains("too large"), "{msg}");
    }
    // adj_x makes [2,2,3] a batch of 3×2 matrices: contracted 2 vs 2
    let ok = g.batch_matmul(a, c, true, false).unwrap();
    assert_eq!(g.shape(ok), &PartialShape::known(&[2, 3, 4]));
}

#[test]
fn static_reduction_axes_match_broadcast_gradient_args() {
    // tf.raw_ops.BroadcastGradientArgs(s0=a, s1=b) for each pair
    assert_eq!(static_reduction_axes(&[2, 1], &[3]), [vec![1], vec![0]]);
    assert_eq!(
        static_reduction_axes(&[1, 1], &[1]),
        [vec![0, 1], vec![0, 1]]
    );
    assert_eq!(static_reduction_axes(&[], &[2, 3]), [vec![0, 1], vec![]]);
    assert_eq!(
        static_reduction_axes(&[4, 2], &[4, 2]),
        [Vec::<i32>::new(), vec![]]
    );
}

#[test]
fn batch_matmul_gradient_sums_broadcast_batches() {
    // d/dy sum(x · y) with x [2,1,2,3] broadcast against y [3,4]: every batch's
    // xᵀ·1 summed, i.e. column sums of x over all batches, repeated over 4 columns.
    let xv = random(&[2, 1, 2, 3], 1);
    let mut g = Graph::new();
    let x = g.constant(xv.clone()).unwrap();
    let y = g.placeholder(DType::Float64, [3, 4], "y").unwrap();
    let z = g.batch_matmul(x, y, false, false).unwrap();
    let dy = g.gradients(&[z], &[y]).unwrap()[0].unwrap();
    assert_eq!(g.shape(dy), &PartialShape::known(&[3, 4]));
    let out = crate::Session::new(&g)
        .run(&[(y, random(&[3, 4], 2))], &[dy], &[])
        .unwrap();
    let xs = f64s(&xv);
    let col: Vec<f64> = (0..3)
        .map(|k| (0..4).map(|r| xs[r * 3 + k]).sum())
        .collect();
    let want: Vec<f64> = col.iter().flat_map(|&c| [c; 4]).collect();
    assert_close(&f64s(&out[0]), &want, 1e-12);
}

#[test]
fn svd_gradients_refused_as_in_tensorflow() {
    let mut g = Graph::new();
    let x = g.placeholder(DType::Float64, [2, 5], "x").unwrap();
    let (_, u, _) = g.svd(x, true, true).unwrap();
    let msg = g.gradients(&[u], &[x]).unwrap_err().to_string();
    assert!(msg.contains("abs(m - n) > 1"), "{msg}");
    let y = g.placeholder(DType::Float64, [None, Some(3)], "y").unwrap();
    let (s, _, _) = g.svd(y, false, true).unwrap();
    let msg = g.gradients(&[s], &[y]).unwrap_err().to_string();
    assert!(msg.contains("unknown inner matrix shape"), "{msg}");
}

#[test]
fn svd_seed_values() {
    let mut g = Graph::new();
    let x = g
        .constant(Tensor::from([[19f32, 22.], [43., 50.]]))
        .unwrap();
    let (s, u, v) = g.svd(x, false, true).unwrap();
    let out = run(&g, &[s, u, v]);
    // tf.linalg.svd(tf.constant([[19.,22.],[43.,50.]])) -> s = [7.206939e+01, 5.550127e-02]
    let sv = f64s(&out[0]);
    assert!((sv[0] - 72.06939).abs() <= 1e-5 * 72.06939, "{sv:?}");
    assert!((sv[1] - 0.05550127).abs() <= 1e-3 * 0.05550127, "{sv:?}");
    let (uv, vv) = (f64s(&out[1]), f64s(&out[2]));
    // u · diag(s) · vᵀ reconstructs the input.
    for (i, j) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
        let r: f64 = (0..2).map(|p| uv[i * 2 + p] * sv[p] * vv[j * 2 + p]).sum();
        let want = [[19., 22.], [43., 50.]][i][j];
        assert!((r - want).abs() < 1e-4, "({i},{j}): {r}");
    }
}

/// Checks shapes, order, orthonormal columns and `u · diag(s) · vᵀ = a` for one
/// batch of `m×n` matrices.
fn check_svd(a: &Tensor, full: bool) {
    let shape = a.shape().to_vec();
    let (m, n) = (shape[shape.len() - 2], shape[shape.len() - 1]);
    let (p, batch) = (m.min(n), a.len() / (m * n));
    let mut g = Graph::new();
    let x = g.constant(a.clone()).unwrap();
    let (s, u, v) = g.svd(x, full, true).unwrap();
    let out = run(&g, &[s, u, v]);
    let (uc, vc) = if full { (m, n) } else { (p, p) };
    for (t, o) in [s, u, v].iter().zip(&out) {
        assert_eq!(g.shape(*t), &PartialShape::known(o.shape()));
    }
    assert_eq!(out[1].shape()[shape.len() - 2..], [m, uc]);
    assert_eq!(out[2].shape()[shape.len() - 2..], [n, vc]);
    let (av, sv, uv, vv) = (f64s(a), f64s(&out[0]), f64s(&out[1]), f64s(&out[2]));
    for b in 0..batch {
        let (sb, ub, vb) = (
            &sv[b * p..][..p],
            &uv[b * m * uc..][..m * uc],
            &vv[b * n * vc..][..n * vc],
        );
        assert!(sb.windows(2).all(|w| w[0] >= w[1]) && sb.iter().all(|&x| x >= 0.0));
        for i in 0..m {
            for j in 0..n {
                let r: f64 = (0..p)
                    .map(|q| ub[i * uc + q] * sb[q] * vb[j * vc + q])
                    .sum();
                assert!((r - av[b * m * n + i * n + j]).abs() < 1e-10);
            }
        }
        for (mat, rows, cols) in [(ub, m, uc), (vb, n, vc)] {
            for c1 in 0..cols {
                for c2 in 0..cols {
                    let dot: f64 = (0..rows)
                        .map(|r| mat[r * cols + c1] * mat[r * cols + c2])
                        .sum();
                    let want = if c1 == c2 { 1.0 } else { 0.0 };
                    assert!((dot - want).abs() < 1e-10, "columns {c1},{c2}: {dot}");
                }
            }
        }
    }
}

#[test]
fn svd_of_batches_wide_and_tall() {
    for shape in [[2, 4, 3], [3, 2, 5]] {
        let a = random(&shape, 7);
        check_svd(&a, false);
        check_svd(&a, true);
    }
}

#[test]
fn svd_without_vectors_and_of_empty_matrices() {
    let mut g = Graph::new();
    let a = random(&[2, 3, 2], 9).cast(DType::Float32).unwrap();
    let x = g.constant(a).unwrap();
    let (s, u, v) = g.svd(x, false, false).unwrap();
    let (s2, _, _) = g.svd(x, true, true).unwrap();
    assert_eq!(g.shape(u), &PartialShape::known(&[0]));
    let e = g.constant(Tensor::zeros(DType::Float64, &[0, 3])).unwrap();
    let (es, eu, ev) = g.svd(e, true, true).unwrap();
    let out = run(&g, &[s, u, v, s2, es, eu, ev]);
    assert_eq!(out[0].shape(), &[2, 2]);
    assert_eq!((out[1].shape(), out[2].shape()), (&[0][..], &[0][..]));
    assert_close(&f64s(&out[0]), &f64s(&out[3]), 1e-5);
    // tf.linalg.svd(tf.zeros([0,3]), full_matrices=True): s [0], u [0,0], v = eye(3)
    assert_eq!(out[4].shape(), &[0]);
    assert_eq!(out[5].shape(), &[0, 0]);
    assert_eq!(f64s(&out[6]), vec![1., 0., 0., 0., 1., 0., 0., 0., 1.]);
    let i = g.constant(Tensor::from([[1i32]])).unwrap();
    assert!(g
        .svd(i, false, true)
        .unwrap_err()
        .to_string()
        .contains("Cast"));
    let r1 = g.constant(Tensor::from([1f32])).unwrap();
    assert!(g
        .svd(r1, false, true)
        .unwrap_err()
        .to_string()
        .contains("rank 2"));
}

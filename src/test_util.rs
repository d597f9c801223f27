//! Helpers shared by the crate's unit tests: running a graph, deterministic inputs, and
//! the gradient cases each op family declares next to its ops (run by `autodiff::tests`).

use crate::{Graph, Output, Result, Session, SessionOptions, Tensor};

/// Runs `fetches` on a session with `threads` intra- and inter-op threads.
pub(crate) fn run_with(g: &Graph, fetches: &[Output], threads: usize) -> Vec<Tensor> {
    Session::with_options(g, SessionOptions::with_threads(threads))
        .run(&[], fetches, &[])
        .unwrap()
}

/// Runs `fetches` on a single-threaded session.
pub(crate) fn run(g: &Graph, fetches: &[Output]) -> Vec<Tensor> {
    run_with(g, fetches, 1)
}

/// Runs the graph with feeds and returns the fetched values.
pub(crate) fn run_fed(g: &Graph, feeds: &[(Output, Tensor)], fetches: &[Output]) -> Vec<Tensor> {
    Session::new(g).run(feeds, fetches, &[]).unwrap()
}

/// Runs one fetch and returns the run error's message.
pub(crate) fn fetch_err(g: &Graph, fetch: Output) -> String {
    run_err(g, &[], fetch)
}

/// Runs the graph with feeds and returns the error message.
pub(crate) fn run_err(g: &Graph, feeds: &[(Output, Tensor)], fetch: Output) -> String {
    Session::new(g)
        .run(feeds, &[fetch], &[])
        .unwrap_err()
        .to_string()
}

/// A tensor of `shape` holding 0, 1, 2, ... (`np.arange(n).reshape(shape)`).
pub(crate) fn iota(shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    Tensor::new(shape, (0..n as i32).collect::<Vec<i32>>()).unwrap()
}

/// A tensor of `shape` from i32 values.
pub(crate) fn t(shape: &[usize], v: &[i32]) -> Tensor {
    Tensor::new(shape, v.to_vec()).unwrap()
}

/// `n` deterministic values in [-1, 1) (a linear congruential sequence).
pub(crate) fn values(n: usize, seed: u64) -> Vec<f64> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        })
        .collect()
}

/// A float64 tensor of deterministic values.
pub(crate) fn random(shape: &[usize], seed: u64) -> Tensor {
    let n = shape.iter().product();
    Tensor::new(shape, values(n, seed)).unwrap()
}

/// Asserts elementwise `|a - b| <= tol · max(1, |b|)`.
pub(crate) fn assert_close(a: &[f64], b: &[f64], tol: f64) {
    assert_eq!(a.len(), b.len(), "lengths differ");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= tol * y.abs().max(1.0),
            "element {i}: {x} vs {y}\n got {a:?}\nwant {b:?}"
        );
    }
}

/// A tensor's elements as f64 (any numeric dtype).
pub(crate) fn f64s(t: &Tensor) -> Vec<f64> {
    t.cast(crate::DType::Float64)
        .unwrap()
        .as_slice::<f64>()
        .unwrap()
        .to_vec()
}

/// One gradient check of an op, declared next to the op (see `gradient_cases` in each op
/// family) and run by the registry-wide test in `autodiff::tests`.
pub(crate) struct GradCase {
    /// The op type this case covers.
    pub op: &'static str,
    /// float64 inputs; `build` receives them as placeholders.
    pub inputs: Vec<Tensor>,
    /// Builds the function whose gradient is checked (non-float inputs such as shapes and
    /// indices are made as constants inside).
    pub build: fn(&mut Graph, &[Output]) -> Result<Output>,
}

impl GradCase {
    /// A case for `op` at `inputs`.
    pub fn new(
        op: &'static str,
        inputs: Vec<Tensor>,
        build: fn(&mut Graph, &[Output]) -> Result<Output>,
    ) -> Self {
        GradCase { op, inputs, build }
    }
}

/// Deterministic float64 test values in about [-1, 1], away from 0 (so |x|, ReLU and
/// friends are differentiable there).
pub(crate) fn test_input(shape: &[usize], seed: u64) -> Tensor {
    let n: usize = shape.iter().product();
    let v: Vec<f64> = (0..n as u64)
        .map(|i| {
            let h = (i + 1)
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                .wrapping_add(seed.wrapping_mul(0xBF58_476D_1CE4_E5B9));
            let u = ((h >> 11) as f64) / ((1u64 << 53) as f64); // [0, 1)
            let x = 0.15 + 0.85 * u; // [0.15, 1)
            if (h >> 7) & 1 == 1 {
                -x
            } else {
                x
            }
        })
        .collect();
    Tensor::new(shape, v).expect("sizes match")
}

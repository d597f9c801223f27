//! Neural-network ops, named and attributed as in TensorFlow: BiasAdd, Softmax,
//! LogSoftmax, the softmax cross-entropy losses, Conv2D, MaxPool, AvgPool, and the
//! gradient kernels TensorFlow graphs use for them (BiasAddGrad, Conv2DBackpropInput,
//! Conv2DBackpropFilter, MaxPoolGrad, AvgPoolGrad).

mod bias;
mod conv;
mod pool;
mod softmax;
mod window;

use super::Registry;

pub(crate) fn register(r: &mut Registry) {
    bias::register(r);
    softmax::register(r);
    conv::register(r);
    pool::register(r);
}

/// Helpers shared by the nn and linalg unit tests.
/// Gradient checks of this family's differentiable ops (run by `autodiff::tests`).
#[cfg(test)]
pub(crate) fn gradient_cases() -> Vec<crate::autodiff::check::GradCase> {
    Vec::new()
}

#[cfg(test)]
pub(crate) mod test_util {
    use crate::{Graph, Output, Session, SessionOptions, Tensor};

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

    /// Runs one fetch and returns the run error's message.
    pub(crate) fn run_err(g: &Graph, fetch: Output) -> String {
        Session::new(g)
            .run(&[], &[fetch], &[])
            .unwrap_err()
            .to_string()
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
}

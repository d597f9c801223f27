//! Stateful random ops seeded as TensorFlow seeds them: `RandomUniform`,
//! `RandomStandardNormal` and `TruncatedNormal`, with the builders `g.random_uniform`,
//! `g.random_normal`, `g.truncated_normal` and `g.glorot_uniform`.
//!
//! Each node's kernel owns a [`Philox`] generator keyed by its `seed` and `seed2` attrs
//! (both zero: a nondeterministic key). The ops are stateful, so a session keeps the
//! kernel and successive runs continue the sequence, while a fresh session starts it over.
//! Each run reserves `256` Philox blocks per output value, as TensorFlow's
//! `GuardedPhiloxRandom::ReserveRandomOutputs` does, so the values match TensorFlow's.

pub mod philox;

use super::math::Family;
use super::{kernel_fn, InferCtx, KernelBuildCtx, Op, Registry};
use crate::graph::{AttrValue, AttrsExt, Graph, Output, TensorSpec};
use crate::ops::{InferResult, KernelResult};
use crate::tensor::{alloc, DType, PartialShape, Tensor};
use crate::{with_dtype, Error, Result};
use philox::{Distribution, Philox};
use std::sync::Mutex;

/// The graph seed used when only an op seed is given (`random_seed.DEFAULT_GRAPH_SEED`).
pub const DEFAULT_GRAPH_SEED: i64 = 87_654_321;
/// Seeds are reduced modulo this (`random_seed._MAXINT32`).
const MAXINT32: i64 = (1 << 31) - 1;

fn infer_random(ctx: &InferCtx<'_>) -> InferResult {
    ctx.expect_inputs(1)?;
    let attrs = ctx.attrs();
    let dtype = attrs.dtype("dtype")?;
    if !Family::Float.dtypes().contains(&dtype) {
        return Err(format!(
            "attr dtype is {dtype}, but this op makes float32 or float64 values"
        ));
    }
    attrs.int_or("seed", 0)?;
    attrs.int_or("seed2", 0)?;
    let t = ctx.check_dtype(0, &[DType::Int32, DType::Int64])?;
    ctx.check_t_attr(t)?;
    if let Some(r) = ctx.shape(0).rank() {
        if r != 1 {
            return Err(format!(
                "the shape input must be a vector (rank 1), got shape {}",
                ctx.shape(0)
            ));
        }
    }
    let shape = match ctx.constant_ints(0) {
        Some(dims) => {
            if dims.iter().any(|&d| d < 0) {
                return Err(format!("the shape {dims:?} has a negative dimension"));
            }
            PartialShape::from_i64(&dims)
        }
        None => match ctx.shape(0).dim(0) {
            Some(rank) => PartialShape::with_rank(rank),
            None => PartialShape::unknown(),
        },
    };
    Ok(vec![TensorSpec::new(dtype, shape)])
}

/// The output dims a run-time shape tensor asks for, and their product.
fn output_dims(shape: &Tensor) -> Result<(Vec<usize>, usize)> {
    if shape.rank() != 1 {
        return Err(Error::invalid(format!(
            "the shape input must be a vector, got shape {:?}",
            shape.shape()
        )));
    }
    let dims = shape
        .to_i64_vec()?
        .into_iter()
        .map(|d| usize::try_from(d).ok())
        .collect::<Option<Vec<usize>>>()
        .ok_or_else(|| {
            Error::invalid(format!(
                "the shape {:?} has a negative dimension",
                shape.to_i64_vec().unwrap_or_default()
            ))
        })?;
    let n = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| Error::invalid(format!("the shape {dims:?} has too many elements")))?;
    Ok((dims, n))
}

/// A nondeterministic 64-bit value (TensorFlow's `random::New64`), from the OS-seeded keys
/// of std's `RandomState` mixed with the time.
fn entropy() -> u64 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one(std::time::SystemTime::now())
}

/// The generator of one random node: keyed by its seeds, or randomly when both are zero
/// (`GuardedPhiloxRandom::Init`).
fn generator(ctx: &KernelBuildCtx<'_>) -> std::result::Result<Philox, String> {
    let seed = ctx.attrs().int_or("seed", 0)?;
    let seed2 = ctx.attrs().int_or("seed2", 0)?;
    Ok(if seed == 0 && seed2 == 0 {
        Philox::new(entropy(), entropy())
    } else {
        Philox::new(seed as u64, seed2 as u64)
    })
}

fn random_kernel(ctx: &KernelBuildCtx<'_>, dist: Distribution) -> KernelResult {
    let state = Mutex::new(generator(ctx)?);
    with_dtype!(float, ctx.output_dtype(0), T => kernel_fn(move |k| {
        let (dims, n) = output_dims(k.input(0)?)?;
        let start = {
            let mut gen = state.lock().unwrap_or_else(|p| p.into_inner());
            let start = *gen;
            gen.skip((n as u64).wrapping_mul(philox::BLOCKS_PER_OUTPUT));
            start
        };
        let mut out = alloc::try_filled(&[n], T::default())?;
        philox::fill(start, dist, &mut out);
        k.push_output(Tensor::new(&dims, out)?);
        Ok(())
    }))
}

fn uniform_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    random_kernel(ctx, Distribution::Uniform)
}

fn normal_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    random_kernel(ctx, Distribution::Normal)
}

fn truncated_normal_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    random_kernel(ctx, Distribution::TruncatedNormal)
}

fn seed_defaults() -> Vec<(&'static str, AttrValue)> {
    vec![("seed", AttrValue::Int(0)), ("seed2", AttrValue::Int(0))]
}

pub(crate) fn register(r: &mut Registry) {
    r.add(
        Op::new("RandomUniform", infer_random, uniform_kernel)
            .stateful()
            .no_grad()
            .defaults(seed_defaults),
    );
    r.add(
        Op::new("RandomStandardNormal", infer_random, normal_kernel)
            .stateful()
            .no_grad()
            .defaults(seed_defaults),
    );
    r.add(
        Op::new("TruncatedNormal", infer_random, truncated_normal_kernel)
            .stateful()
            .no_grad()
            .defaults(seed_defaults),
    );
}

/// TensorFlow's `random_seed._truncate_seed`: Python's `seed % (2**31 - 1)`.
fn truncate_seed(seed: i64) -> i64 {
    seed.rem_euclid(MAXINT32)
}

/// A constant shape vector: int32 when every dim fits, else int64 (`shape_tensor`).
fn shape_constant(g: &mut Graph, shape: &[i64]) -> Result<Output> {
    let small: std::result::Result<Vec<i32>, _> = shape.iter().map(|&d| i32::try_from(d)).collect();
    match small {
        Ok(dims) => g.constant_named(Tensor::vector(dims), "shape"),
        Err(_) => g.constant_named(Tensor::vector(shape.to_vec()), "shape"),
    }
}

/// Adds random op `op` of `shape` and `dtype` seeded from `seed` and the graph seed.
fn random_op(
    g: &mut Graph,
    op: &str,
    shape: &[i64],
    dtype: DType,
    seed: Option<i64>,
) -> Result<Output> {
    let shape = shape_constant(g, shape)?;
    let (seed, seed2) = g.get_seed(seed);
    let t = g.dtype(shape);
    g.op(op)
        .input(shape)
        .attr("dtype", dtype)
        .attr("seed", seed)
        .attr("seed2", seed2)
        .attr("T", t)
        .build_output()
}

/// TensorFlow's `_compute_fans` for a weight shape: `(fan_in, fan_out)`, multiplied by the
/// receptive field size for convolution kernels.
fn compute_fans(shape: &[i64]) -> (f64, f64) {
    let dims: Vec<f64> = shape.iter().map(|&d| d as f64).collect();
    match dims.as_slice() {
        [] => (1.0, 1.0),
        [n] => (*n, *n),
        [spatial @ .., fan_in, fan_out] => {
            let receptive: f64 = spatial.iter().product();
            (fan_in * receptive, fan_out * receptive)
        }
    }
}

impl Graph {
    /// The `(seed, seed2)` attrs of a new random op given its op-level seed, as TensorFlow's
    /// `random_seed.get_seed` computes them in graph mode:
    /// - graph seed set: `(graph seed, op seed)`; without an op seed, the op seed is a
    ///   per-graph counter of such ops (0, 1, 2, ...; TensorFlow 1.x used the graph's last
    ///   op id instead, TensorFlow 2's `tf.compat.v1` uses the counter);
    /// - only an op seed: `(DEFAULT_GRAPH_SEED, op seed)`;
    /// - neither: `(0, 0)`, which makes the kernel pick a nondeterministic key.
    ///
    /// Seeds are reduced modulo `2^31 - 1`, and a computed `(0, 0)` becomes `(0, 2^31 - 1)`
    /// so that it stays deterministic.
    pub fn get_seed(&mut self, op_seed: Option<i64>) -> (i64, i64) {
        let seeds = match (self.seed(), op_seed) {
            (Some(graph), op) => {
                let op = op.unwrap_or_else(|| self.next_op_seed());
                (truncate_seed(graph), truncate_seed(op))
            }
            (None, Some(op)) => (DEFAULT_GRAPH_SEED, truncate_seed(op)),
            (None, None) => return (0, 0),
        };
        if seeds == (0, 0) {
            (0, MAXINT32)
        } else {
            seeds
        }
    }

    /// Standard normal values of `shape` (`tf.random.normal` with mean 0 and stddev 1;
    /// op RandomStandardNormal under scope `random_normal`). `seed` is the op-level seed,
    /// combined with the graph seed by [`Graph::get_seed`].
    pub fn random_normal(
        &mut self,
        shape: &[i64],
        dtype: DType,
        seed: Option<i64>,
    ) -> Result<Output> {
        self.name_scope("random_normal", |g| {
            random_op(g, "RandomStandardNormal", shape, dtype, seed)
        })
    }

    /// Uniform values in `[0, 1)` (`tf.random.uniform`; op RandomUniform under scope
    /// `random_uniform`). Seeded as [`Graph::random_normal`].
    pub fn random_uniform(
        &mut self,
        shape: &[i64],
        dtype: DType,
        seed: Option<i64>,
    ) -> Result<Output> {
        self.name_scope("random_uniform", |g| {
            random_op(g, "RandomUniform", shape, dtype, seed)
        })
    }

    /// Standard normal values, redrawn until within two standard deviations
    /// (`tf.random.truncated_normal`; op TruncatedNormal under scope `truncated_normal`).
    /// Seeded as [`Graph::random_normal`].
    pub fn truncated_normal(
        &mut self,
        shape: &[i64],
        dtype: DType,
        seed: Option<i64>,
    ) -> Result<Output> {
        self.name_scope("truncated_normal", |g| {
            random_op(g, "TruncatedNormal", shape, dtype, seed)
        })
    }

    /// Glorot (Xavier) uniform initial values (`tf.compat.v1.glorot_uniform_initializer`):
    /// uniform in `[-limit, limit)` with `limit = sqrt(6 / (fan_in + fan_out))`, for
    /// `shape = [fan_in, fan_out]` (convolution kernels: fans times the receptive field).
    /// Built as TensorFlow builds it: `RandomUniform * (max - min) + min`.
    pub fn glorot_uniform(
        &mut self,
        shape: &[i64],
        dtype: DType,
        seed: Option<i64>,
    ) -> Result<Output> {
        let (fan_in, fan_out) = compute_fans(shape);
        // VarianceScaling(scale=1, mode="fan_avg", distribution="uniform").
        let scale = 1.0 / f64::max(1.0, (fan_in + fan_out) / 2.0);
        let limit = (3.0 * scale).sqrt();
        self.name_scope("random_uniform", |g| {
            let min = g.scalar_like(dtype, -limit)?;
            let max = g.scalar_like(dtype, limit)?;
            let unit = random_op(g, "RandomUniform", shape, dtype, seed)?;
            let range = g.sub(max, min)?;
            let scaled = g.mul(unit, range)?;
            g.add(scaled, min)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{DEFAULT_GRAPH_SEED, MAXINT32};
    use crate::graph::AttrsExt;
    use crate::{DType, Graph, Output, PartialShape, Session, Tensor};

    /// Values of two successive runs of `out` in one session.
    fn two_runs(g: &Graph, out: Output) -> [Tensor; 2] {
        let sess = Session::new(g);
        let a = sess.run(&[], &[out], &[]).unwrap().remove(0);
        let b = sess.run(&[], &[out], &[]).unwrap().remove(0);
        [a, b]
    }

    fn seeds(g: &Graph, o: Output) -> (i64, i64) {
        let a = g.node(o.node).attrs();
        (a.int("seed").unwrap(), a.int("seed2").unwrap())
    }

    fn check<T: crate::tensor::Element + PartialEq + std::fmt::Debug>(t: &Tensor, want: &[T]) {
        assert_eq!(t.as_slice::<T>().unwrap(), want);
    }

    // Reference values: TensorFlow 2.21 in graph mode, e.g.
    //   tf1 = tf.compat.v1; tf1.disable_eager_execution(); g = tf.Graph()
    //   with g.as_default():
    //       tf1.set_random_seed(2); t = tf1.random.normal([5], seed=1, dtype=tf.float32)
    //       with tf1.Session() as s: [s.run(t).tolist() for _ in range(2)]
    // (float32 values written in their shortest round-trip form, `str(np.float32(x))`)
    // (random.normal multiplies by stddev 1 and adds mean 0, which leaves values unchanged).

    #[test]
    fn normal_matches_tensorflow() {
        let mut g = Graph::new();
        g.set_seed(2);
        let x = g.random_normal(&[5], DType::Float32, Some(1)).unwrap();
        assert_eq!(seeds(&g, x), (2, 1));
        assert_eq!(g.node(x.node).name(), "random_normal/RandomStandardNormal");
        assert_eq!(g.shape(x).to_known(), Some(vec![5]));
        let [a, b] = two_runs(&g, x);
        check(
            &a,
            &[1.1882794f32, -1.20643, 0.04821338, 1.0647926, 0.23481536],
        );
        check(
            &b,
            &[
                -0.5291213f32,
                -0.024766622,
                0.15805048,
                0.26972198,
                -0.7490826,
            ],
        );
        // A fresh session starts the sequence over.
        assert_eq!(two_runs(&g, x)[0], a);

        // tf1.random.normal([5], seed=1, dtype=tf.float64) after tf1.set_random_seed(2)
        let y = g.random_normal(&[5], DType::Float64, Some(1)).unwrap();
        let [a, b] = two_runs(&g, y);
        check(
            &a,
            &[
                -0.09083660023969786f64,
                -0.43157702430387945,
                -0.19200153548849583,
                -0.18259706527776912,
                0.12852997916787115,
            ],
        );
        check(
            &b,
            &[
                -0.2106010160181279f64,
                -0.22860908802283209,
                -0.8244801068161225,
                0.4231624209170209,
                -0.1601518954788862,
            ],
        );
    }

    #[test]
    fn normal_with_only_an_op_seed_matches_tensorflow() {
        // No graph seed: tf1.random.normal([2, 3], seed=3) -> seeds (87654321, 3).
        let mut g = Graph::new();
        let x = g.random_normal(&[2, 3], DType::Float32, Some(3)).unwrap();
        assert_eq!(seeds(&g, x), (DEFAULT_GRAPH_SEED, 3));
        let [a, b] = two_runs(&g, x);
        assert_eq!(a.shape(), &[2, 3]);
        check(
            &a,
            &[
                1.0616621f32,
                -0.8785783,
                0.11187216,
                0.18511717,
                0.90922564,
                -0.73787236,
            ],
        );
        check(
            &b,
            &[
                -1.2204427f32,
                -1.0294424,
                -0.07638637,
                0.34612936,
                -2.2719715,
                0.7736749,
            ],
        );
    }

    #[test]
    fn uniform_matches_tensorflow() {
        // tf1.random.uniform([5], seed=1, dtype=...) after tf1.set_random_seed(2)
        let mut g = Graph::new();
        g.set_seed(2);
        let x = g.random_uniform(&[5], DType::Float32, Some(1)).unwrap();
        let y = g.random_uniform(&[5], DType::Float64, Some(1)).unwrap();
        assert_eq!(g.node(x.node).name(), "random_uniform/RandomUniform");
        let [a, b] = two_runs(&g, x);
        check(
            &a,
            &[0.23841548f32, 0.37620628, 0.566627, 0.0072015524, 0.8706882],
        );
        check(
            &b,
            &[0.869105f32, 0.74255586, 0.9523097, 0.08435905, 0.70636106],
        );
        let [a, b] = two_runs(&g, y);
        check(
            &a,
            &[
                0.9073246016655234f64,
                0.5330163799360423,
                0.9655058298751491,
                0.6289948189181269,
                0.3566192489551472,
            ],
        );
        check(
            &b,
            &[
                0.9528407896730227f64,
                0.6184781344316137,
                0.650888490821468,
                0.8254695902033533,
                0.028601061913927417,
            ],
        );
    }

    #[test]
    fn truncated_normal_matches_tensorflow() {
        // tf1.random.truncated_normal([7], seed=1, dtype=...) after tf1.set_random_seed(2)
        let mut g = Graph::new();
        g.set_seed(2);
        let x = g.truncated_normal(&[7], DType::Float32, Some(1)).unwrap();
        let y = g.truncated_normal(&[7], DType::Float64, Some(1)).unwrap();
        let [a, b] = two_runs(&g, x);
        check(
            &a,
            &[
                1.1882794f32,
                -1.20643,
                0.04821338,
                1.0647926,
                -0.17631088,
                0.17998374,
                -0.8754528,
            ],
        );
        check(
            &b,
            &[
                -0.46983227f32,
                0.3067076,
                0.66066986,
                0.121592514,
                -1.7037451,
                -0.5098821,
                0.45858017,
            ],
        );
        let [a, b] = two_runs(&g, y);
        check(
            &a,
            &[
                -0.09083660023969786f64,
                -0.43157702430387945,
                1.333525286497469,
                -0.23639503427724265,
                -0.27579973148965425,
                0.7064803772836046,
                0.7488534273437194,
            ],
        );
        check(
            &b,
            &[
                1.4666176524393582f64,
                1.2775554631855577,
                0.15297704115892302,
                -0.6286739767335819,
                -0.014706754873649749,
                -0.9354527370724592,
                0.31869903325074594,
            ],
        );
        // tf1.random.truncated_normal([3, 5], seed=7, dtype=tf.float64) after
        // tf1.set_random_seed(11): some draws are rejected here.
        let mut g = Graph::new();
        g.set_seed(11);
        let z = g
            .truncated_normal(&[3, 5], DType::Float64, Some(7))
            .unwrap();
        let [a, b] = two_runs(&g, z);
        check(
            &a,
            &[
                -0.6575362520855911f64,
                -1.222075020347626,
                -1.2599644909600718,
                1.0382355794701135,
                -0.9300913269938341,
                0.19155898280382286,
                -0.35974894085616005,
                -0.9474090285936628,
                -1.0676575087665354,
                -0.6950444468529395,
                -1.0145429147251297,
                0.4890383204818835,
                0.6385052434970222,
                -1.95225902081743,
                -0.30465786476949036,
            ],
        );
        check(
            &b,
            &[
                1.592168947261157f64,
                1.9612346784014847,
                -0.5821385408602708,
                0.992211208329711,
                0.10495119015267873,
                1.1048631911541162,
                -0.8935705923478091,
                0.0617860013690752,
                0.5775008025675332,
                0.01554506358369933,
                -0.767248433358035,
                0.6074433608265742,
                0.8577981050636794,
                1.6961172321820448,
                1.239784538805331,
            ],
        );
    }

    #[test]
    fn glorot_uniform_matches_tensorflow() {
        // tf1.set_random_seed(2); tf1.glorot_uniform_initializer(seed=1)(shape=[3, 4])
        let mut g = Graph::new();
        g.set_seed(2);
        let w = g.glorot_uniform(&[3, 4], DType::Float32, Some(1)).unwrap();
        assert_eq!(g.node(w.node).op_type(), "AddV2");
        assert_eq!(g.shape(w).to_known(), Some(vec![3, 4]));
        let [a, _] = two_runs(&g, w);
        check(
            &a,
            &[
                -0.48436043f32,
                -0.22922146,
                0.123369336,
                -0.9124854,
                0.6863812,
                -0.13630265,
                0.6084939,
                -0.78537387,
                0.31399632,
                -0.1420117,
                0.23475635,
                -0.8226958,
            ],
        );
        // Bounds for a larger float64 kernel: limit = sqrt(6 / (20 + 30)).
        let k = g.glorot_uniform(&[20, 30], DType::Float64, None).unwrap();
        let v = two_runs(&g, k)[0].to_vec::<f64>().unwrap();
        let limit = (6.0f64 / 50.0).sqrt();
        assert!(v.iter().all(|x| (-limit..limit).contains(x)));
        assert!(v.iter().any(|&x| x < -0.9 * limit) && v.iter().any(|&x| x > 0.9 * limit));
    }

    #[test]
    fn seeds_follow_tensorflow_get_seed() {
        // tf1.set_random_seed(0); normal([2]), uniform([2]), normal([2], seed=0) get
        // (0, 2147483647), (0, 1), (0, 2147483647).
        let mut g = Graph::new();
        g.set_seed(0);
        let a = g.random_normal(&[2], DType::Float32, None).unwrap();
        let b = g.random_uniform(&[2], DType::Float32, None).unwrap();
        let c = g.random_normal(&[2], DType::Float32, Some(0)).unwrap();
        assert_eq!(seeds(&g, a), (0, MAXINT32));
        assert_eq!(seeds(&g, b), (0, 1));
        assert_eq!(seeds(&g, c), (0, MAXINT32));
        let out = Session::new(&g).run(&[], &[a, c], &[]).unwrap();
        assert_eq!(out[0], out[1]);
        // No graph seed: tf1.random.normal([2], seed=2**31 + 5) gets (87654321, 6).
        let mut g = Graph::new();
        let x = g
            .random_normal(&[2], DType::Float32, Some((1 << 31) + 5))
            .unwrap();
        assert_eq!(seeds(&g, x), (DEFAULT_GRAPH_SEED, 6));
        let neg = g.random_normal(&[2], DType::Float32, Some(-1)).unwrap();
        assert_eq!(seeds(&g, neg), (DEFAULT_GRAPH_SEED, MAXINT32 - 1));
        // Neither seed: (0, 0), and each session draws a different key.
        let r = g.random_uniform(&[64], DType::Float64, None).unwrap();
        assert_eq!(seeds(&g, r), (0, 0));
        let first = Session::new(&g).run(&[], &[r], &[]).unwrap().remove(0);
        let second = Session::new(&g).run(&[], &[r], &[]).unwrap().remove(0);
        assert_ne!(first, second);
    }

    /// Mean and variance of a sample.
    fn moments(v: &[f64]) -> (f64, f64) {
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let var = v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
        (mean, var)
    }

    #[test]
    fn large_samples_have_the_right_moments() {
        let mut g = Graph::new();
        g.set_seed(42);
        let n = 100_000usize;
        let dims = [n as i64];
        let u = g.random_uniform(&dims, DType::Float32, None).unwrap();
        let z = g.random_normal(&dims, DType::Float64, None).unwrap();
        let t = g.truncated_normal(&dims, DType::Float32, None).unwrap();
        let out = Session::new(&g).run(&[], &[u, z, t], &[]).unwrap();
        let u = out[0].to_f64_vec();
        let z = out[1].to_f64_vec();
        let t = out[2].to_f64_vec();
        // Standard errors of the mean are ~0.001 (uniform) and ~0.003 (normal): 5 sigma.
        let (m, v) = moments(&u);
        assert!(u.iter().all(|x| (0.0..1.0).contains(x)));
        assert!(
            (m - 0.5).abs() < 0.005 && (v - 1.0 / 12.0).abs() < 0.002,
            "{m} {v}"
        );
        let (m, v) = moments(&z);
        assert!(m.abs() < 0.016 && (v - 1.0).abs() < 0.03, "{m} {v}");
        assert!(z.iter().any(|x| x.abs() > 3.0));
        // Normal truncated to (-2, 2): variance 0.7737413.
        let (m, v) = moments(&t);
        assert!(t.iter().all(|x| x.abs() < 2.0));
        assert!(m.abs() < 0.014 && (v - 0.7737413).abs() < 0.02, "{m} {v}");
    }

    #[test]
    fn shapes_from_fed_tensors_and_edge_cases() {
        let mut g = Graph::new();
        let shape = g.placeholder(DType::Int64, [2], "shape").unwrap();
        let x = g
            .op("RandomUniform")
            .input(shape)
            .attr("dtype", DType::Float64)
            .attr("seed", 5i64)
            .attr("seed2", 9i64)
            .attr("T", DType::Int64)
            .build_output()
            .unwrap();
        assert_eq!(g.shape(x), &PartialShape::with_rank(2));
        // Empty and scalar outputs.
        let e = g.random_normal(&[3, 0], DType::Float32, Some(1)).unwrap();
        let s = g.random_normal(&[], DType::Float64, Some(1)).unwrap();
        let sess = Session::new(&g);
        let out = sess
            .run(&[(shape, Tensor::from([2i64, 3]))], &[x, e, s], &[])
            .unwrap();
        assert_eq!(out[0].shape(), &[2, 3]);
        assert_eq!(out[1].shape(), &[3, 0]);
        assert_eq!(out[2].shape(), &[] as &[usize]);
        let err = sess
            .run(&[(shape, Tensor::from([2i64, -3]))], &[x], &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("negative") && err.contains("-3"), "{err}");
    }

    #[test]
    fn build_time_errors() {
        let mut g = Graph::new();
        let msg = g
            .random_normal(&[2], DType::Int32, Some(1))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("int32") && msg.contains("float32"), "{msg}");
        let msg = g
            .random_uniform(&[2, -1], DType::Float32, Some(1))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("negative"), "{msg}");
        let m = g.constant(Tensor::from([[2i32]])).unwrap();
        let msg = g
            .op("TruncatedNormal")
            .input(m)
            .attr("dtype", DType::Float32)
            .build()
            .unwrap_err()
            .to_string();
        assert!(msg.contains("vector") && msg.contains("[1,1]"), "{msg}");
        let f = g.constant(Tensor::from([2.0f32])).unwrap();
        let msg = g
            .op("RandomUniform")
            .input(f)
            .attr("dtype", DType::Float32)
            .build()
            .unwrap_err()
            .to_string();
        assert!(msg.contains("float32") && msg.contains("int32"), "{msg}");
    }
}

//! Keras's weight initializers (`keras.initializers`), drawn by the graph's random ops.

use crate::graph::{Graph, Output};
use crate::tensor::{DType, Tensor};
use crate::{Error, Result};
use serde_json::{json, Value};

/// An initializer with Keras's name and defaults.
#[derive(Clone, Debug, PartialEq)]
pub enum Initializer {
    /// Uniform in `±sqrt(6 / (fan_in + fan_out))` (Keras's default for kernels).
    GlorotUniform {
        /// Op-level seed of the random values (`None`: derived from the graph seed).
        seed: Option<i64>,
    },
    /// Truncated normal with stddev `sqrt(2 / (fan_in + fan_out))`.
    GlorotNormal {
        /// Op-level seed of the random values (`None`: derived from the graph seed).
        seed: Option<i64>,
    },
    /// Truncated normal with stddev `sqrt(2 / fan_in)`.
    HeNormal {
        /// Op-level seed of the random values (`None`: derived from the graph seed).
        seed: Option<i64>,
    },
    /// Uniform in `±sqrt(6 / fan_in)`.
    HeUniform {
        /// Op-level seed of the random values (`None`: derived from the graph seed).
        seed: Option<i64>,
    },
    /// Normal with the given mean and stddev (Keras's defaults 0 and 0.05).
    RandomNormal {
        /// Mean of the normal distribution.
        mean: f64,
        /// Standard deviation of the normal distribution.
        stddev: f64,
        /// Op-level seed of the random values (`None`: derived from the graph seed).
        seed: Option<i64>,
    },
    /// Uniform in `[minval, maxval)` (Keras's defaults -0.05 and 0.05).
    RandomUniform {
        /// Lower bound of the uniform range (inclusive).
        minval: f64,
        /// Upper bound of the uniform range (exclusive).
        maxval: f64,
        /// Op-level seed of the random values (`None`: derived from the graph seed).
        seed: Option<i64>,
    },
    /// A random orthogonal matrix of the shape flattened to `(prod(shape[:-1]),
    /// shape[-1])`, times `gain` (Keras's default for recurrent kernels). The orthogonal
    /// factor is the polar factor `u·vᵀ` of a standard normal matrix's SVD, which is
    /// distributed as Keras's sign-corrected QR factor (Haar).
    Orthogonal {
        /// Multiplies the orthogonal matrix.
        gain: f64,
        /// Op-level seed of the random values (`None`: derived from the graph seed).
        seed: Option<i64>,
    },
    /// All zeros (Keras's default for biases).
    Zeros,
    /// All ones.
    Ones,
    /// Every entry `value`.
    Constant(f64),
}

/// `(fan_in, fan_out)` as Keras computes them (receptive field times channels for
/// convolution kernels).
fn fans(shape: &[usize]) -> (f64, f64) {
    match shape {
        [] => (1.0, 1.0),
        [n] => (*n as f64, *n as f64),
        [a, b] => (*a as f64, *b as f64),
        _ => {
            let receptive: usize = shape[..shape.len() - 2].iter().product();
            let n = shape.len();
            (
                (shape[n - 2] * receptive) as f64,
                (shape[n - 1] * receptive) as f64,
            )
        }
    }
}

/// A random orthogonal matrix for [`Initializer::Orthogonal`]: the polar factor `u·vᵀ` of
/// the SVD of a standard normal `(rows, cols)` matrix, reshaped to `shape`, times `gain`.
fn orthogonal(
    g: &mut Graph,
    shape: &[usize],
    dtype: DType,
    gain: f64,
    seed: Option<i64>,
) -> Result<Output> {
    let Some((&cols, inner)) = shape.split_last().filter(|_| shape.len() >= 2) else {
        return Err(Error::invalid(format!(
            "The Orthogonal initializer needs a shape of rank >= 2, got {shape:?}"
        )));
    };
    let rows: usize = inner.iter().product();
    let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
    g.name_scope("orthogonal", |g| {
        let a = g.random_normal(&[rows as i64, cols as i64], dtype, seed)?;
        let (_, u, v) = g.svd(a, false, true)?;
        let q = g.matmul_t(u, v, false, true)?;
        let q = g.reshape(q, &dims)?;
        let gain = g.scalar_like(dtype, gain)?;
        g.mul(q, gain)
    })
}

/// Keras's constant that turns a truncated normal's stddev into the wanted one.
const TRUNCATED_STDDEV: f64 = 0.879_625_661_034_239_8;

impl Initializer {
    /// The initializer Keras knows by `name` (`"glorot_uniform"`, `"zeros"`, …).
    pub fn get(name: &str) -> Result<Initializer> {
        Ok(match name {
            "glorot_uniform" => Initializer::GlorotUniform { seed: None },
            "glorot_normal" => Initializer::GlorotNormal { seed: None },
            "he_normal" => Initializer::HeNormal { seed: None },
            "he_uniform" => Initializer::HeUniform { seed: None },
            "random_normal" => Initializer::RandomNormal {
                mean: 0.0,
                stddev: 0.05,
                seed: None,
            },
            "random_uniform" => Initializer::RandomUniform {
                minval: -0.05,
                maxval: 0.05,
                seed: None,
            },
            "orthogonal" => Initializer::Orthogonal {
                gain: 1.0,
                seed: None,
            },
            "zeros" => Initializer::Zeros,
            "ones" => Initializer::Ones,
            other => {
                return Err(Error::invalid(format!(
                    "Could not interpret initializer identifier: '{other}'"
                )))
            }
        })
    }

    /// A graph tensor of `shape` holding the initial value.
    pub fn create(&self, g: &mut Graph, shape: &[usize], dtype: DType) -> Result<Output> {
        let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
        let (fan_in, fan_out) = fans(shape);
        let scaled = |g: &mut Graph, x: Output, mul: f64, add: f64| -> Result<Output> {
            let m = g.scalar_like(dtype, mul)?;
            let y = g.mul(x, m)?;
            if add == 0.0 {
                return Ok(y);
            }
            let a = g.scalar_like(dtype, add)?;
            g.add(y, a)
        };
        match *self {
            Initializer::GlorotUniform { seed } => g.glorot_uniform(&dims, dtype, seed),
            Initializer::GlorotNormal { seed } => {
                let std = (2.0 / (fan_in + fan_out)).sqrt() / TRUNCATED_STDDEV;
                let x = g.truncated_normal(&dims, dtype, seed)?;
                scaled(g, x, std, 0.0)
            }
            Initializer::HeNormal { seed } => {
                let std = (2.0 / fan_in).sqrt() / TRUNCATED_STDDEV;
                let x = g.truncated_normal(&dims, dtype, seed)?;
                scaled(g, x, std, 0.0)
            }
            Initializer::HeUniform { seed } => {
                let lim = (6.0 / fan_in).sqrt();
                let x = g.random_uniform(&dims, dtype, seed)?;
                scaled(g, x, 2.0 * lim, -lim)
            }
            Initializer::RandomNormal { mean, stddev, seed } => {
                let x = g.random_normal(&dims, dtype, seed)?;
                scaled(g, x, stddev, mean)
            }
            Initializer::RandomUniform {
                minval,
                maxval,
                seed,
            } => {
                let x = g.random_uniform(&dims, dtype, seed)?;
                scaled(g, x, maxval - minval, minval)
            }
            Initializer::Orthogonal { gain, seed } => orthogonal(g, shape, dtype, gain, seed),
            Initializer::Zeros => g.constant(Tensor::zeros(dtype, shape)),
            Initializer::Ones => g.constant(Tensor::full(shape, 1.0f64).cast(dtype)?),
            Initializer::Constant(v) => g.constant(Tensor::full(shape, v).cast(dtype)?),
        }
    }

    /// The initializer in Keras 3's serialized form.
    pub fn to_config(&self) -> Value {
        let (class, config) = match *self {
            Initializer::GlorotUniform { seed } => ("GlorotUniform", json!({"seed": seed})),
            Initializer::GlorotNormal { seed } => ("GlorotNormal", json!({"seed": seed})),
            Initializer::HeNormal { seed } => ("HeNormal", json!({"seed": seed})),
            Initializer::HeUniform { seed } => ("HeUniform", json!({"seed": seed})),
            Initializer::RandomNormal { mean, stddev, seed } => (
                "RandomNormal",
                json!({"seed": seed, "mean": mean, "stddev": stddev}),
            ),
            Initializer::RandomUniform {
                minval,
                maxval,
                seed,
            } => (
                "RandomUniform",
                json!({"seed": seed, "minval": minval, "maxval": maxval}),
            ),
            Initializer::Orthogonal { gain, seed } => {
                ("Orthogonal", json!({"seed": seed, "gain": gain}))
            }
            Initializer::Zeros => ("Zeros", json!({})),
            Initializer::Ones => ("Ones", json!({})),
            Initializer::Constant(v) => ("Constant", json!({"value": v})),
        };
        json!({
            "module": "keras.initializers",
            "class_name": class,
            "config": config,
            "registered_name": null
        })
    }

    /// Reads an initializer from a Keras config: a name or a `{"class_name", "config"}`
    /// object.
    pub fn from_config(v: &Value) -> Result<Initializer> {
        if let Some(name) = v.as_str() {
            return Initializer::get(name);
        }
        let class = v
            .get("class_name")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::invalid(format!("initializer config without class_name: {v}")))?;
        let cfg = v.get("config").cloned().unwrap_or(json!({}));
        let seed = cfg.get("seed").and_then(Value::as_i64);
        let num = |k: &str, d: f64| cfg.get(k).and_then(Value::as_f64).unwrap_or(d);
        Ok(match class {
            "GlorotUniform" => Initializer::GlorotUniform { seed },
            "GlorotNormal" => Initializer::GlorotNormal { seed },
            "HeNormal" => Initializer::HeNormal { seed },
            "HeUniform" => Initializer::HeUniform { seed },
            "RandomNormal" => Initializer::RandomNormal {
                mean: num("mean", 0.0),
                stddev: num("stddev", 0.05),
                seed,
            },
            "RandomUniform" => Initializer::RandomUniform {
                minval: num("minval", -0.05),
                maxval: num("maxval", 0.05),
                seed,
            },
            "Orthogonal" => Initializer::Orthogonal {
                gain: num("gain", 1.0),
                seed,
            },
            "Zeros" => Initializer::Zeros,
            "Ones" => Initializer::Ones,
            "Constant" => Initializer::Constant(num("value", 0.0)),
            other => {
                return Err(Error::invalid(format!(
                    "Could not interpret initializer identifier: '{other}'"
                )))
            }
        })
    }
}

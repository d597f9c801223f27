//! Keras's activations by name (`keras.activations.get`), composed from graph ops as
//! Keras's TensorFlow backend composes them.

use crate::graph::{Graph, Output};
use crate::keras::layer::{layer_error, Layer};
use crate::{Error, Result};

/// One of Keras's activations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// Identity (`None` / `"linear"`).
    Linear,
    /// `max(x, 0)`.
    Relu,
    /// `min(max(x, 0), 6)`.
    Relu6,
    /// Softmax over the last axis.
    Softmax,
    /// `1 / (1 + exp(-x))`.
    Sigmoid,
    /// Hyperbolic tangent.
    Tanh,
    /// `x` above 0, `exp(x) - 1` below.
    Elu,
    /// Scaled ELU with Keras's constants.
    Selu,
    /// `log(1 + exp(x))`.
    Softplus,
    /// `x * sigmoid(x)` (also called silu).
    Swish,
    /// `x * Φ(x) = 0.5 x (1 + erf(x / √2))`, the exact form (Keras's default
    /// `approximate=False`).
    Gelu,
    /// `relu6(x + 3) / 6` (Keras 3's piecewise-linear sigmoid).
    HardSigmoid,
}

const NAMES: &[(&str, Activation)] = &[
    ("linear", Activation::Linear),
    ("relu", Activation::Relu),
    ("relu6", Activation::Relu6),
    ("softmax", Activation::Softmax),
    ("sigmoid", Activation::Sigmoid),
    ("tanh", Activation::Tanh),
    ("elu", Activation::Elu),
    ("selu", Activation::Selu),
    ("softplus", Activation::Softplus),
    ("swish", Activation::Swish),
    ("silu", Activation::Swish),
    ("gelu", Activation::Gelu),
    ("hard_sigmoid", Activation::HardSigmoid),
];

impl Activation {
    /// The activation Keras knows by `name`; an error lists the known names.
    pub fn get(name: &str) -> Result<Activation> {
        NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, a)| *a)
            .ok_or_else(|| {
                let known: Vec<&str> = NAMES.iter().map(|(n, _)| *n).collect();
                Error::invalid(format!(
                    "Could not interpret activation function identifier: '{name}' (known: {})",
                    known.join(", ")
                ))
            })
    }

    /// Keras's name of the activation, as written in a model config.
    pub fn name(self) -> &'static str {
        NAMES
            .iter()
            .find(|(_, a)| *a == self)
            .map(|(n, _)| *n)
            .unwrap_or("linear")
    }

    /// Applies the activation to `x`.
    pub fn apply(self, g: &mut Graph, x: Output) -> Result<Output> {
        match self {
            Activation::Linear => Ok(x),
            Activation::Relu => g.relu(x),
            Activation::Relu6 => g.relu6(x),
            Activation::Softmax => g.softmax(x),
            Activation::Sigmoid => g.sigmoid(x),
            Activation::Tanh => g.tanh(x),
            Activation::Elu => g.elu(x),
            Activation::Softplus => g.softplus(x),
            Activation::Selu => {
                // scale * (relu(x) + alpha * min(elu(x), 0)): elu's negative part is
                // exp(x) - 1.
                const ALPHA: f64 = 1.673_263_242_354_377_3;
                const SCALE: f64 = 1.050_700_987_355_480_5;
                let dt = g.dtype(x);
                let pos = g.relu(x)?;
                let elu = g.elu(x)?;
                let zero = g.scalar_like(dt, 0.0)?;
                let neg = g.minimum(elu, zero)?;
                let alpha = g.scalar_like(dt, ALPHA)?;
                let neg = g.mul(alpha, neg)?;
                let sum = g.add(pos, neg)?;
                let scale = g.scalar_like(dt, SCALE)?;
                g.mul(scale, sum)
            }
            Activation::HardSigmoid => {
                let dt = g.dtype(x);
                let three = g.scalar_like(dt, 3.0)?;
                let shifted = g.add(x, three)?;
                let r = g.relu6(shifted)?;
                let six = g.scalar_like(dt, 6.0)?;
                g.div(r, six)
            }
            Activation::Swish => {
                let s = g.sigmoid(x)?;
                g.mul(x, s)
            }
            Activation::Gelu => {
                // tf.nn.gelu(x, approximate=False): 0.5 * x * (1 + erf(x / sqrt(2))).
                let dt = g.dtype(x);
                let r = g.scalar_like(dt, std::f64::consts::FRAC_1_SQRT_2)?;
                let scaled = g.mul(x, r)?;
                let e = g.erf(scaled)?;
                let one = g.scalar_like(dt, 1.0)?;
                let e1 = g.add(one, e)?;
                let half = g.scalar_like(dt, 0.5)?;
                let hx = g.mul(half, x)?;
                g.mul(hx, e1)
            }
        }
    }
}

/// An activation a layer was given by name: a known one, or the unknown name, reported
/// when the layer is built (as Keras reports it when the layer is made).
#[derive(Clone, Debug)]
pub(crate) struct ActivationArg(std::result::Result<Activation, String>);

impl ActivationArg {
    /// The activation Keras knows by `name`, or the name kept for the error.
    pub fn new(name: &str) -> ActivationArg {
        ActivationArg(Activation::get(name).map_err(|_| name.to_string()))
    }

    /// The activation, or an error naming `layer` and the unknown name.
    pub fn checked(&self, layer: &dyn Layer) -> Result<Activation> {
        match &self.0 {
            Ok(a) => Ok(*a),
            Err(name) => Err(layer_error(
                layer,
                format!("Could not interpret activation function identifier: '{name}'"),
            )),
        }
    }

    /// The name as given (Keras's name for a known activation).
    pub fn name(&self) -> String {
        match &self.0 {
            Ok(a) => a.name().to_string(),
            Err(n) => n.clone(),
        }
    }
}

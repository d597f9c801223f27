//! `Dense`: `activation(x · kernel + bias)` over the last axis.

use crate::graph::{Graph, Output};
use crate::keras::activations::ActivationArg;
use crate::keras::layer::{
    base_config, format_shape, layer_error, unique_name, CallContext, Layer, Shape, Weight,
};
use crate::keras::layers::args::Args;
use crate::keras::layers::kernel::{kernel_bias_builders, KernelBias};
use crate::Result;
use serde_json::{Map, Value};

/// A densely connected layer (`keras.layers.Dense`).
#[derive(Debug)]
pub struct Dense {
    name: String,
    units: usize,
    activation: ActivationArg,
    kb: KernelBias,
}

impl Dense {
    /// `Dense(units)`: no activation, a bias, Glorot-uniform kernel, zero bias.
    pub fn new(units: usize) -> Dense {
        Dense {
            name: unique_name("dense"),
            units,
            activation: ActivationArg::new("linear"),
            kb: KernelBias::new("kernel"),
        }
    }

    kernel_bias_builders!("kernel", kernel_initializer, kernel_regularizer);

    /// Sets the activation by Keras's name (`"relu"`, `"softmax"`, …); an unknown name is
    /// reported when the layer is added to a model or built.
    pub fn activation(mut self, name: &str) -> Dense {
        self.activation = ActivationArg::new(name);
        self
    }

    /// Replaces the automatic name.
    pub fn named(mut self, name: &str) -> Dense {
        self.name = name.to_string();
        self
    }

    /// The layer a Keras config describes.
    pub(crate) fn from_args(a: &Args<'_>) -> Result<Dense> {
        let mut d = Dense::new(a.positive("units")?);
        d.activation = a.activation("activation")?;
        d.kb.read_args(a)?;
        Ok(match a.name() {
            Some(n) => d.named(n),
            None => d,
        })
    }

    /// Number of output units.
    pub fn units(&self) -> usize {
        self.units
    }

    fn input_dim(&self, input_shape: &[Option<usize>]) -> Result<usize> {
        if input_shape.len() < 2 {
            return Err(layer_error(
                self,
                format!(
                    "expected an input of rank >= 2, got shape {}",
                    format_shape(input_shape)
                ),
            ));
        }
        input_shape[input_shape.len() - 1].ok_or_else(|| {
            layer_error(
                self,
                format!(
                    "The last dimension of the inputs to a Dense layer should be defined. \
                     Found None (input shape {})",
                    format_shape(input_shape)
                ),
            )
        })
    }
}

impl Layer for Dense {
    fn name(&self) -> &str {
        &self.name
    }

    fn class_name(&self) -> &'static str {
        "Dense"
    }

    fn built(&self) -> bool {
        self.kb.kernel.is_some()
    }

    fn build(&mut self, g: &mut Graph, input_shape: &[Option<usize>]) -> Result<()> {
        if self.units == 0 {
            return Err(layer_error(
                self,
                "Received an invalid value for `units`, expected a positive integer. \
                 Received: units=0",
            ));
        }
        self.activation.checked(self)?;
        let fan_in = self.input_dim(input_shape)?;
        let scope = self.name.clone();
        self.kb
            .build(g, &scope, "kernel", &[fan_in, self.units], &[self.units])
    }

    fn compute_output_shape(&self, input_shape: &[Option<usize>]) -> Result<Shape> {
        self.input_dim(input_shape)?;
        let mut out = input_shape.to_vec();
        *out.last_mut().expect("rank checked") = Some(self.units);
        Ok(out)
    }

    fn call(&self, g: &mut Graph, x: Output, ctx: &mut CallContext) -> Result<Output> {
        let kernel = self.kb.kernel(self)?;
        let want = kernel.shape[0];
        let rank = g.shape(x).rank();
        let last = rank
            .and_then(|r| r.checked_sub(1))
            .and_then(|i| g.shape(x).dim(i));
        if matches!(last, Some(d) if d != want) || rank.is_some_and(|r| r < 2) {
            return Err(layer_error(
                self,
                format!(
                    "Input 0 of layer \"{}\" is incompatible with the layer: expected axis -1 \
                     of input shape to have value {want}, but received input with shape {}",
                    self.name,
                    g.shape(x)
                ),
            ));
        }
        let activation = self.activation.checked(self)?;
        let name = self.name.clone();
        let kernel = kernel.var.read;
        self.kb.regularize(g, ctx)?;
        g.name_scope(&name, |g| {
            let z = if rank == Some(2) {
                g.matmul(x, kernel)?
            } else {
                g.batch_matmul(x, kernel, false, false)?
            };
            let z = self.kb.add_bias(g, z)?;
            activation.apply(g, z)
        })
    }

    fn weights(&self) -> Vec<Weight> {
        self.kb.weights(None)
    }

    fn get_config(&self) -> Map<String, Value> {
        let mut m = base_config(&self.name);
        m.insert("units".into(), Value::from(self.units));
        m.insert("activation".into(), Value::from(self.activation.name()));
        self.kb.write_config(&mut m);
        m.insert("quantization_config".into(), Value::Null);
        m
    }
}

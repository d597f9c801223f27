//! `Dense`: `activation(x · kernel + bias)` over the last axis.

use crate::graph::{Graph, Output};
use crate::keras::activations::ActivationArg;
use crate::keras::initializers::Initializer;
use crate::keras::layer::{
    add_weight, base_config, format_shape, layer_error, regularize, unique_name, CallContext,
    Layer, Shape, Weight,
};
use crate::keras::regularizers::Regularizer;
use crate::tensor::DType;
use crate::Result;
use serde_json::{Map, Value};

/// A densely connected layer (`keras.layers.Dense`).
#[derive(Debug)]
pub struct Dense {
    name: String,
    units: usize,
    activation: ActivationArg,
    use_bias: bool,
    kernel_initializer: Initializer,
    bias_initializer: Initializer,
    kernel_regularizer: Option<Regularizer>,
    bias_regularizer: Option<Regularizer>,
    kernel: Option<Weight>,
    bias: Option<Weight>,
}

impl Dense {
    /// `Dense(units)`: no activation, a bias, Glorot-uniform kernel, zero bias.
    pub fn new(units: usize) -> Dense {
        Dense {
            name: unique_name("dense"),
            units,
            activation: ActivationArg::new("linear"),
            use_bias: true,
            kernel_initializer: Initializer::GlorotUniform { seed: None },
            bias_initializer: Initializer::Zeros,
            kernel_regularizer: None,
            bias_regularizer: None,
            kernel: None,
            bias: None,
        }
    }

    /// Sets the activation by Keras's name (`"relu"`, `"softmax"`, …); an unknown name is
    /// reported when the layer is added to a model or built.
    pub fn activation(mut self, name: &str) -> Dense {
        self.activation = ActivationArg::new(name);
        self
    }

    /// A penalty on the kernel added to the training loss (`kernel_regularizer`).
    pub fn kernel_regularizer(mut self, r: Regularizer) -> Dense {
        self.kernel_regularizer = Some(r);
        self
    }

    /// A penalty on the bias added to the training loss (`bias_regularizer`).
    pub fn bias_regularizer(mut self, r: Regularizer) -> Dense {
        self.bias_regularizer = Some(r);
        self
    }

    /// Whether to add a bias (default true).
    pub fn use_bias(mut self, use_bias: bool) -> Dense {
        self.use_bias = use_bias;
        self
    }

    /// The kernel's initializer (default `glorot_uniform`).
    pub fn kernel_initializer(mut self, init: Initializer) -> Dense {
        self.kernel_initializer = init;
        self
    }

    /// The bias's initializer (default `zeros`).
    pub fn bias_initializer(mut self, init: Initializer) -> Dense {
        self.bias_initializer = init;
        self
    }

    /// Replaces the automatic name.
    pub fn named(mut self, name: &str) -> Dense {
        self.name = name.to_string();
        self
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
        self.kernel.is_some()
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
        let k0 = self
            .kernel_initializer
            .create(g, &[fan_in, self.units], DType::Float32)?;
        self.kernel = Some(add_weight(g, &self.name, "kernel", k0, true)?);
        if self.use_bias {
            let b0 = self
                .bias_initializer
                .create(g, &[self.units], DType::Float32)?;
            self.bias = Some(add_weight(g, &self.name, "bias", b0, true)?);
        }
        Ok(())
    }

    fn compute_output_shape(&self, input_shape: &[Option<usize>]) -> Result<Shape> {
        self.input_dim(input_shape)?;
        let mut out = input_shape.to_vec();
        *out.last_mut().expect("rank checked") = Some(self.units);
        Ok(out)
    }

    fn call(&self, g: &mut Graph, x: Output, ctx: &mut CallContext) -> Result<Output> {
        let kernel = self
            .kernel
            .as_ref()
            .ok_or_else(|| layer_error(self, "called before it was built"))?;
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
        regularize(g, ctx, Some(kernel), self.kernel_regularizer)?;
        regularize(g, ctx, self.bias.as_ref(), self.bias_regularizer)?;
        let (kernel, bias) = (kernel.var.read, self.bias.as_ref().map(|b| b.var.read));
        g.name_scope(&name, |g| {
            let z = if rank == Some(2) {
                g.matmul(x, kernel)?
            } else {
                g.batch_matmul(x, kernel, false, false)?
            };
            let z = match bias {
                Some(b) => g.bias_add(z, b)?,
                None => z,
            };
            activation.apply(g, z)
        })
    }

    fn weights(&self) -> Vec<Weight> {
        self.kernel
            .iter()
            .chain(self.bias.iter())
            .cloned()
            .collect()
    }

    fn get_config(&self) -> Map<String, Value> {
        let mut m = base_config(&self.name);
        m.insert("units".into(), Value::from(self.units));
        m.insert("activation".into(), Value::from(self.activation.name()));
        m.insert("use_bias".into(), Value::from(self.use_bias));
        m.insert(
            "kernel_initializer".into(),
            self.kernel_initializer.to_config(),
        );
        m.insert("bias_initializer".into(), self.bias_initializer.to_config());
        m.insert(
            "kernel_regularizer".into(),
            Regularizer::serialize(self.kernel_regularizer),
        );
        m.insert(
            "bias_regularizer".into(),
            Regularizer::serialize(self.bias_regularizer),
        );
        for k in [
            "kernel_constraint",
            "bias_constraint",
            "quantization_config",
        ] {
            m.insert(k.into(), Value::Null);
        }
        m
    }
}

//! Layers without weights: `Activation`, `Dropout`, `Flatten`.

use crate::graph::{Graph, Output};
use crate::keras::activations::ActivationArg;
use crate::keras::layer::{
    base_config, format_shape, layer_error, unique_name, CallContext, Layer, Shape,
};
use crate::tensor::DType;
use crate::Result;
use serde_json::{Map, Value};

/// Applies an activation (`keras.layers.Activation("relu")`).
#[derive(Debug)]
pub struct Activation {
    name: String,
    activation: ActivationArg,
}

impl Activation {
    /// The activation Keras knows by `name`; an unknown name is reported at build.
    pub fn new(name: &str) -> Activation {
        Activation {
            name: unique_name("activation"),
            activation: ActivationArg::new(name),
        }
    }

    /// Replaces the automatic name.
    pub fn named(mut self, name: &str) -> Activation {
        self.name = name.to_string();
        self
    }
}

impl Layer for Activation {
    fn name(&self) -> &str {
        &self.name
    }
    fn class_name(&self) -> &'static str {
        "Activation"
    }
    fn built(&self) -> bool {
        true
    }
    fn build(&mut self, _g: &mut Graph, _input_shape: &[Option<usize>]) -> Result<()> {
        self.activation.checked(self).map(|_| ())
    }
    fn compute_output_shape(&self, input_shape: &[Option<usize>]) -> Result<Shape> {
        Ok(input_shape.to_vec())
    }
    fn call(&self, g: &mut Graph, x: Output, _ctx: &mut CallContext) -> Result<Output> {
        let act = self.activation.checked(self)?;
        let name = self.name.clone();
        g.name_scope(&name, |g| act.apply(g, x))
    }
    fn get_config(&self) -> Map<String, Value> {
        let mut m = base_config(&self.name);
        m.insert("activation".into(), Value::from(self.activation.name()));
        m
    }
}

/// A fresh dropout mask shaped as `like`: 0 with probability `rate`, `1 / (1 - rate)`
/// otherwise (Dropout's, and the recurrent layers' `dropout` / `recurrent_dropout`).
pub(crate) fn dropout_mask(
    g: &mut Graph,
    like: Output,
    rate: f64,
    seed: Option<i64>,
) -> Result<Output> {
    let shape = g.shape_of(like)?;
    let (s1, s2) = g.get_seed(seed);
    let u = g
        .op("RandomUniform")
        .input(shape)
        .attr("dtype", DType::Float32)
        .attr("seed", s1)
        .attr("seed2", s2)
        .attr("T", DType::Int32)
        .build_output()?;
    let r = g.scalar_like(DType::Float32, rate)?;
    let keep = g.greater_equal(u, r)?;
    let keep = g.cast(keep, DType::Float32)?;
    let scale = g.scalar_like(DType::Float32, 1.0 / (1.0 - rate))?;
    g.mul(keep, scale)
}

/// Sets a fraction `rate` of the inputs to 0 in training and scales the rest by
/// `1 / (1 - rate)`; the identity in inference (`keras.layers.Dropout(rate)`).
#[derive(Debug)]
pub struct Dropout {
    name: String,
    rate: f64,
    seed: Option<i64>,
}

impl Dropout {
    /// Drops a fraction `rate` (in `[0, 1)`).
    pub fn new(rate: f64) -> Dropout {
        Dropout {
            name: unique_name("dropout"),
            rate,
            seed: None,
        }
    }

    /// Replaces the automatic name.
    pub fn named(mut self, name: &str) -> Dropout {
        self.name = name.to_string();
        self
    }

    /// The op-level seed of the dropout mask.
    pub fn seed(mut self, seed: i64) -> Dropout {
        self.seed = Some(seed);
        self
    }
}

impl Layer for Dropout {
    fn name(&self) -> &str {
        &self.name
    }
    fn class_name(&self) -> &'static str {
        "Dropout"
    }
    fn built(&self) -> bool {
        true
    }
    fn build(&mut self, _g: &mut Graph, _input_shape: &[Option<usize>]) -> Result<()> {
        if !(0.0..1.0).contains(&self.rate) {
            return Err(layer_error(
                self,
                format!(
                    "Invalid value received for argument `rate`. Expected a float value \
                     between 0 and 1. Received: rate={}",
                    self.rate
                ),
            ));
        }
        Ok(())
    }
    fn compute_output_shape(&self, input_shape: &[Option<usize>]) -> Result<Shape> {
        Ok(input_shape.to_vec())
    }
    fn call(&self, g: &mut Graph, x: Output, ctx: &mut CallContext) -> Result<Output> {
        if !ctx.training || self.rate == 0.0 {
            return Ok(x);
        }
        let (name, rate, seed) = (self.name.clone(), self.rate, self.seed);
        g.name_scope(&name, |g| {
            let mask = dropout_mask(g, x, rate, seed)?;
            g.mul(x, mask)
        })
    }
    fn has_training_behavior(&self) -> bool {
        true
    }
    fn get_config(&self) -> Map<String, Value> {
        let mut m = base_config(&self.name);
        m.insert("rate".into(), Value::from(self.rate));
        m.insert("seed".into(), self.seed.map_or(Value::Null, Value::from));
        m.insert("noise_shape".into(), Value::Null);
        m
    }
}

/// Flattens each sample to one axis (`keras.layers.Flatten()`).
#[derive(Debug)]
pub struct Flatten {
    name: String,
}

impl Flatten {
    /// A Flatten layer.
    pub fn new() -> Flatten {
        Flatten {
            name: unique_name("flatten"),
        }
    }
}

impl Default for Flatten {
    fn default() -> Self {
        Self::new()
    }
}

impl Layer for Flatten {
    fn name(&self) -> &str {
        &self.name
    }
    fn class_name(&self) -> &'static str {
        "Flatten"
    }
    fn built(&self) -> bool {
        true
    }
    fn build(&mut self, _g: &mut Graph, _input_shape: &[Option<usize>]) -> Result<()> {
        Ok(())
    }
    fn compute_output_shape(&self, input_shape: &[Option<usize>]) -> Result<Shape> {
        if input_shape.is_empty() {
            return Err(layer_error(self, "needs an input with a batch axis"));
        }
        let inner: Option<usize> = input_shape[1..]
            .iter()
            .try_fold(1usize, |a, d| d.map(|d| a * d));
        Ok(vec![input_shape[0], inner])
    }
    fn call(&self, g: &mut Graph, x: Output, _ctx: &mut CallContext) -> Result<Output> {
        let shape: Shape = g
            .shape(x)
            .dims()
            .map(|d| d.to_vec())
            .ok_or_else(|| layer_error(self, "needs an input of known rank"))?;
        let out = self.compute_output_shape(&shape)?;
        let inner = out[1].map_or(-1, |d| d as i64);
        if inner == -1 && shape.len() > 2 {
            return Err(layer_error(
                self,
                format!(
                    "needs the inner dimensions known, got {}",
                    format_shape(&shape)
                ),
            ));
        }
        let name = self.name.clone();
        g.name_scope(&name, |g| g.reshape(x, &[-1, inner]))
    }
    fn get_config(&self) -> Map<String, Value> {
        let mut m = base_config(&self.name);
        m.insert("data_format".into(), Value::from("channels_last"));
        m
    }
}

//! `BatchNormalization` (batch statistics and moving averages) and `LayerNormalization`
//! (statistics over each sample's features), built from reductions so that gradients
//! flow through the statistics as in Keras.

use crate::graph::{Graph, Output};
use crate::keras::initializers::Initializer;
use crate::keras::layer::{
    add_weight, base_config, format_shape, layer_error, unique_name, CallContext, Layer, Shape,
    Weight,
};
use crate::keras::layers::args::Args;
use crate::tensor::DType;
use crate::Result;
use serde_json::{Map, Value};

/// `tf.nn.moments` (with the reduced axes kept): the mean over `axes` and the mean
/// squared deviation from it (the mean's gradient is not taken through the deviation,
/// as TensorFlow does).
fn moments(g: &mut Graph, x: Output, axes: &[i64]) -> Result<(Output, Output)> {
    let mean = g.reduce_mean(x, axes, true)?;
    let fixed = g.stop_gradient(mean)?;
    let dev = g.sub(x, fixed)?;
    let sq = g.square(dev)?;
    let var = g.reduce_mean(sq, axes, true)?;
    Ok((mean, var))
}

/// `tf.nn.batch_normalization`: `x * inv + (beta - mean * inv)` with
/// `inv = gamma / sqrt(var + epsilon)`.
fn normalize(
    g: &mut Graph,
    x: Output,
    (mean, var): (Output, Output),
    gamma: Option<Output>,
    beta: Option<Output>,
    epsilon: f64,
) -> Result<Output> {
    let eps = g.scalar_like(DType::Float32, epsilon)?;
    let v = g.add(var, eps)?;
    let mut inv = g.rsqrt(v)?;
    if let Some(gamma) = gamma {
        inv = g.mul(inv, gamma)?;
    }
    let m = g.mul(mean, inv)?;
    let shift = match beta {
        Some(beta) => g.sub(beta, m)?,
        None => g.neg(m)?,
    };
    let y = g.mul(x, inv)?;
    g.add(y, shift)
}

/// An error unless `axis` names the last axis of `shape` (the one these layers support),
/// or the feature count when it does.
fn last_axis(layer: &dyn Layer, axis: i64, shape: &[Option<usize>]) -> Result<usize> {
    let rank = shape.len() as i64;
    if rank < 2 || (axis != -1 && axis != rank - 1) {
        return Err(layer_error(
            layer,
            format!(
                "axis {axis} is not supported for an input of shape {} (only the last axis, \
                 -1, of an input of rank >= 2)",
                format_shape(shape)
            ),
        ));
    }
    shape[shape.len() - 1].ok_or_else(|| {
        layer_error(
            layer,
            format!(
                "Axis -1 of input tensor should have a defined dimension but the layer \
                 received an input with shape {}",
                format_shape(shape)
            ),
        )
    })
}

/// The shared arguments: `axis`, `epsilon`, `center`, `scale`, and the two initializers.
#[derive(Clone, Debug)]
struct Affine {
    axis: i64,
    epsilon: f64,
    center: bool,
    scale: bool,
    beta_initializer: Initializer,
    gamma_initializer: Initializer,
}

impl Affine {
    fn new() -> Affine {
        Affine {
            axis: -1,
            epsilon: 1e-3,
            center: true,
            scale: true,
            beta_initializer: Initializer::Zeros,
            gamma_initializer: Initializer::Ones,
        }
    }

    fn from_args(a: &Args<'_>) -> Result<Affine> {
        a.unsupported(&[
            "beta_regularizer",
            "gamma_regularizer",
            "beta_constraint",
            "gamma_constraint",
        ])?;
        let axis = match a.raw("axis") {
            Some(Value::Array(v)) if v.len() == 1 => v[0].as_i64(),
            Some(v) => v.as_i64(),
            None => Some(-1),
        }
        .ok_or_else(|| a.err("'axis' must be one integer"))?;
        Ok(Affine {
            axis,
            epsilon: a.f64_or("epsilon", 1e-3)?,
            center: a.bool_or("center", true)?,
            scale: a.bool_or("scale", true)?,
            beta_initializer: a.initializer("beta_initializer", Initializer::Zeros)?,
            gamma_initializer: a.initializer("gamma_initializer", Initializer::Ones)?,
        })
    }

    /// Creates `gamma` and `beta` of `n` features (when scaled and centered).
    fn build(&self, g: &mut Graph, scope: &str, n: usize) -> Result<[Option<Weight>; 2]> {
        let mut make = |on: bool, init: &Initializer, name: &str| -> Result<Option<Weight>> {
            if !on {
                return Ok(None);
            }
            let v = init.create(g, &[n], DType::Float32)?;
            add_weight(g, scope, name, v, true).map(Some)
        };
        Ok([
            make(self.scale, &self.gamma_initializer, "gamma")?,
            make(self.center, &self.beta_initializer, "beta")?,
        ])
    }

    fn config(&self, m: &mut Map<String, Value>) {
        m.insert("axis".into(), Value::from(self.axis));
        m.insert("epsilon".into(), Value::from(self.epsilon));
        m.insert("center".into(), Value::from(self.center));
        m.insert("scale".into(), Value::from(self.scale));
        m.insert("beta_initializer".into(), self.beta_initializer.to_config());
        m.insert(
            "gamma_initializer".into(),
            self.gamma_initializer.to_config(),
        );
        for k in [
            "beta_regularizer",
            "gamma_regularizer",
            "beta_constraint",
            "gamma_constraint",
        ] {
            m.insert(k.into(), Value::Null);
        }
    }
}

/// Normalizes each feature with the batch's statistics in training and with moving
/// averages of them in inference (`keras.layers.BatchNormalization`): momentum 0.99,
/// epsilon 1e-3, over the last axis.
#[derive(Debug)]
pub struct BatchNormalization {
    name: String,
    affine: Affine,
    momentum: f64,
    moving_mean_initializer: Initializer,
    moving_variance_initializer: Initializer,
    /// gamma, beta.
    params: [Option<Weight>; 2],
    /// moving_mean, moving_variance.
    moving: Option<[Weight; 2]>,
}

impl BatchNormalization {
    /// Keras's defaults.
    pub fn new() -> BatchNormalization {
        BatchNormalization {
            name: unique_name("batch_normalization"),
            affine: Affine::new(),
            momentum: 0.99,
            moving_mean_initializer: Initializer::Zeros,
            moving_variance_initializer: Initializer::Ones,
            params: [None, None],
            moving: None,
        }
    }

    /// Weight of the old moving statistics in each update (default 0.99).
    pub fn momentum(mut self, momentum: f64) -> Self {
        self.momentum = momentum;
        self
    }

    /// Added to the variance before its square root (default 1e-3).
    pub fn epsilon(mut self, epsilon: f64) -> Self {
        self.affine.epsilon = epsilon;
        self
    }

    /// Whether to add `beta` (default true).
    pub fn center(mut self, center: bool) -> Self {
        self.affine.center = center;
        self
    }

    /// Whether to multiply by `gamma` (default true).
    pub fn scale(mut self, scale: bool) -> Self {
        self.affine.scale = scale;
        self
    }

    /// Replaces the automatic name.
    pub fn named(mut self, name: &str) -> Self {
        self.name = name.to_string();
        self
    }

    /// The layer a Keras config describes.
    pub(crate) fn from_args(a: &Args<'_>) -> Result<Self> {
        for k in ["renorm", "synchronized"] {
            if a.bool_or(k, false)? {
                return Err(a.err(format!("'{k}' is not supported")));
            }
        }
        let mut b = BatchNormalization::new().momentum(a.f64_or("momentum", 0.99)?);
        b.affine = Affine::from_args(a)?;
        b.moving_mean_initializer = a.initializer("moving_mean_initializer", Initializer::Zeros)?;
        b.moving_variance_initializer =
            a.initializer("moving_variance_initializer", Initializer::Ones)?;
        Ok(match a.name() {
            Some(n) => b.named(n),
            None => b,
        })
    }
}

impl Default for BatchNormalization {
    fn default() -> Self {
        Self::new()
    }
}

impl Layer for BatchNormalization {
    fn name(&self) -> &str {
        &self.name
    }
    fn class_name(&self) -> &'static str {
        "BatchNormalization"
    }
    fn built(&self) -> bool {
        self.moving.is_some()
    }
    fn build(&mut self, g: &mut Graph, input_shape: &[Option<usize>]) -> Result<()> {
        let n = last_axis(self, self.affine.axis, input_shape)?;
        self.params = self.affine.build(g, &self.name, n)?;
        let mm = self
            .moving_mean_initializer
            .create(g, &[n], DType::Float32)?;
        let mv = self
            .moving_variance_initializer
            .create(g, &[n], DType::Float32)?;
        self.moving = Some([
            add_weight(g, &self.name, "moving_mean", mm, false)?,
            add_weight(g, &self.name, "moving_variance", mv, false)?,
        ]);
        Ok(())
    }
    fn compute_output_shape(&self, input_shape: &[Option<usize>]) -> Result<Shape> {
        last_axis(self, self.affine.axis, input_shape)?;
        Ok(input_shape.to_vec())
    }
    fn call(&self, g: &mut Graph, x: Output, ctx: &mut CallContext) -> Result<Output> {
        let [mm, mv] = self
            .moving
            .clone()
            .ok_or_else(|| layer_error(self, "called before it was built"))?;
        let shape: Shape = g.shape(x).dims().map_or_else(Vec::new, <[_]>::to_vec);
        let n = last_axis(self, self.affine.axis, &shape)?;
        if n != mm.shape[0] {
            return Err(layer_error(
                self,
                format!(
                    "was built for {} features, but received input with shape {}",
                    mm.shape[0],
                    format_shape(&shape)
                ),
            ));
        }
        let [gamma, beta] = self.params.clone().map(|w| w.map(|w| w.var.read));
        let (eps, momentum, training) = (self.affine.epsilon, self.momentum, ctx.training);
        let name = self.name.clone();
        let (y, updates) = g.name_scope(&name, |g| -> Result<(Output, Vec<Output>)> {
            if !training {
                let stats = (mm.var.read, mv.var.read);
                return Ok((normalize(g, x, stats, gamma, beta, eps)?, Vec::new()));
            }
            let axes: Vec<i64> = (0..shape.len() as i64 - 1).collect();
            let stats = moments(g, x, &axes)?;
            let m = g.scalar_like(DType::Float32, momentum)?;
            let m1 = g.scalar_like(DType::Float32, 1.0 - momentum)?;
            let mut updates = Vec::new();
            for (w, batch) in [(&mm, stats.0), (&mv, stats.1)] {
                let old = g.mul(w.var.read, m)?;
                let batch = g.reshape(batch, &[n as i64])?;
                let new = g.mul(batch, m1)?;
                let value = g.add(old, new)?;
                updates.push(g.assign(w.var.var, value)?);
            }
            Ok((normalize(g, x, stats, gamma, beta, eps)?, updates))
        })?;
        ctx.updates.extend(updates.iter().map(|u| u.node));
        Ok(y)
    }
    fn weights(&self) -> Vec<Weight> {
        let moving = self.moving.iter().flatten();
        self.params
            .iter()
            .flatten()
            .chain(moving)
            .cloned()
            .collect()
    }
    fn has_training_behavior(&self) -> bool {
        true
    }
    fn get_config(&self) -> Map<String, Value> {
        let mut m = base_config(&self.name);
        self.affine.config(&mut m);
        m.insert("momentum".into(), Value::from(self.momentum));
        m.insert(
            "moving_mean_initializer".into(),
            self.moving_mean_initializer.to_config(),
        );
        m.insert(
            "moving_variance_initializer".into(),
            self.moving_variance_initializer.to_config(),
        );
        m.insert("synchronized".into(), Value::from(false));
        m.insert("renorm".into(), Value::from(false));
        m.insert("renorm_clipping".into(), Value::Null);
        m.insert("renorm_momentum".into(), Value::from(0.99));
        m
    }
}

/// Normalizes each sample over its last axis (`keras.layers.LayerNormalization`):
/// epsilon 1e-3, then `gamma` and `beta`.
#[derive(Debug)]
pub struct LayerNormalization {
    name: String,
    affine: Affine,
    params: Option<[Option<Weight>; 2]>,
}

impl LayerNormalization {
    /// Keras's defaults.
    pub fn new() -> LayerNormalization {
        LayerNormalization {
            name: unique_name("layer_normalization"),
            affine: Affine::new(),
            params: None,
        }
    }

    /// Added to the variance before its square root (default 1e-3).
    pub fn epsilon(mut self, epsilon: f64) -> Self {
        self.affine.epsilon = epsilon;
        self
    }

    /// Whether to add `beta` (default true).
    pub fn center(mut self, center: bool) -> Self {
        self.affine.center = center;
        self
    }

    /// Whether to multiply by `gamma` (default true).
    pub fn scale(mut self, scale: bool) -> Self {
        self.affine.scale = scale;
        self
    }

    /// Replaces the automatic name.
    pub fn named(mut self, name: &str) -> Self {
        self.name = name.to_string();
        self
    }

    /// The layer a Keras config describes.
    pub(crate) fn from_args(a: &Args<'_>) -> Result<Self> {
        if a.bool_or("rms_scaling", false)? {
            return Err(a.err("'rms_scaling' is not supported"));
        }
        let mut l = LayerNormalization::new();
        l.affine = Affine::from_args(a)?;
        Ok(match a.name() {
            Some(n) => l.named(n),
            None => l,
        })
    }
}

impl Default for LayerNormalization {
    fn default() -> Self {
        Self::new()
    }
}

impl Layer for LayerNormalization {
    fn name(&self) -> &str {
        &self.name
    }
    fn class_name(&self) -> &'static str {
        "LayerNormalization"
    }
    fn built(&self) -> bool {
        self.params.is_some()
    }
    fn build(&mut self, g: &mut Graph, input_shape: &[Option<usize>]) -> Result<()> {
        let n = last_axis(self, self.affine.axis, input_shape)?;
        self.params = Some(self.affine.build(g, &self.name, n)?);
        Ok(())
    }
    fn compute_output_shape(&self, input_shape: &[Option<usize>]) -> Result<Shape> {
        last_axis(self, self.affine.axis, input_shape)?;
        Ok(input_shape.to_vec())
    }
    fn call(&self, g: &mut Graph, x: Output, _ctx: &mut CallContext) -> Result<Output> {
        let params = self
            .params
            .clone()
            .ok_or_else(|| layer_error(self, "called before it was built"))?;
        let shape: Shape = g.shape(x).dims().map_or_else(Vec::new, <[_]>::to_vec);
        last_axis(self, self.affine.axis, &shape)?;
        let [gamma, beta] = params.map(|w| w.map(|w| w.var.read));
        let eps = self.affine.epsilon;
        let last = shape.len() as i64 - 1;
        let name = self.name.clone();
        g.name_scope(&name, |g| {
            let stats = moments(g, x, &[last])?;
            normalize(g, x, stats, gamma, beta, eps)
        })
    }
    fn weights(&self) -> Vec<Weight> {
        self.params.iter().flatten().flatten().cloned().collect()
    }
    fn get_config(&self) -> Map<String, Value> {
        let mut m = base_config(&self.name);
        self.affine.config(&mut m);
        // Keras 3 writes LayerNormalization's axis as a list.
        m.insert("axis".into(), Value::from(vec![self.affine.axis]));
        m.insert("rms_scaling".into(), Value::from(false));
        m
    }
}

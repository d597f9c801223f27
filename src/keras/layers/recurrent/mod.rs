//! Recurrent layers (`keras.layers.LSTM`, `keras.layers.GRU`): a cell stepped over the
//! time axis of `(batch, time, features)` inputs. The time axis must be known (as with
//! `Input((T, F))`): the loop is unrolled into ordinary graph ops (MatMul, Split,
//! Sigmoid/Tanh, Unpack, Pack), so gradients and training work unchanged.
//!
//! What both layers share lives in [`Rnn`]: sizes, activations, initializers,
//! regularizers, what a call returns (`return_sequences`, `return_state`,
//! `go_backwards`) and the unrolled loop; a [`Cell`] adds its gates.

mod gru;
mod lstm;

pub use gru::GruCell;
pub use lstm::LstmCell;

use crate::graph::{Graph, Output};
use crate::keras::activations::{Activation, ActivationArg};
use crate::keras::initializers::Initializer;
use crate::keras::layer::{
    add_weight, base_config, format_shape, layer_error, regularize, unique_name, CallContext,
    Layer, Shape, Weight,
};
use crate::keras::layers::args::Args;
use crate::keras::layers::core::dropout_mask;
use crate::keras::layers::kernel::{kernel_bias_builders, KernelBias};
use crate::keras::regularizers::Regularizer;
use crate::tensor::DType;
use crate::Result;
use serde_json::{Map, Value};
use std::fmt::Debug;

/// A long short-term memory layer (`keras.layers.LSTM`): state `(h, c)`, gates `i, f, c,
/// o`.
pub type LSTM = Rnn<LstmCell>;

/// A gated recurrent unit layer (`keras.layers.GRU`, `reset_after=True` by default as in
/// Keras 3): state `h`, gates `z, r, h`.
pub type GRU = Rnn<GruCell>;

/// The weights a cell step reads, and its activations.
pub struct StepWeights {
    /// `recurrent_kernel`, `(units, gates * units)`.
    pub recurrent: Output,
    /// `bias`, when the layer has one.
    pub bias: Option<Output>,
    /// Number of units.
    pub units: usize,
    /// The activation of the candidate and the output (`activation`).
    pub activation: Activation,
    /// The activation of the gates (`recurrent_activation`).
    pub recurrent_activation: Activation,
    /// In training with `recurrent_dropout`, the mask (batch, units) multiplying the
    /// previous output where the recurrent kernel reads it (the same at every step).
    pub recurrent_mask: Option<Output>,
}

impl StepWeights {
    /// The previous output `h` as the recurrent kernel reads it (masked in training with
    /// `recurrent_dropout`).
    pub fn recurrent_input(&self, g: &mut Graph, h: Output) -> Result<Output> {
        match self.recurrent_mask {
            Some(m) => g.mul(h, m),
            None => Ok(h),
        }
    }
}

/// What distinguishes LSTM from GRU: the gates of one step and the shape of the bias.
pub trait Cell: Debug + Send + 'static {
    /// Keras's class name (`LSTM`).
    const CLASS: &'static str;
    /// The prefix of automatic layer names (`lstm`).
    const PREFIX: &'static str;
    /// The name of the cell, the scope of the weights (`lstm_cell`).
    const CELL: &'static str;
    /// Gates computed by the kernels (their columns are `gates * units`).
    const GATES: usize;
    /// State tensors carried from step to step (`h` first).
    const STATES: usize;
    /// The config key of the cell's one option (`unit_forget_bias`, `reset_after`; both
    /// default to true), which the layer keeps and hands to [`Cell::bias`] and
    /// [`Cell::step`].
    const OPTION: &'static str;

    /// The initial bias of a layer of `units` from its `bias_initializer`.
    fn bias(g: &mut Graph, option: bool, init: &Initializer, units: usize) -> Result<Output>;

    /// One step: the new states (`h` first) from `xw` (this step's `x · kernel`) and the
    /// previous states.
    fn step(
        g: &mut Graph,
        option: bool,
        w: &StepWeights,
        xw: Output,
        state: &[Output],
    ) -> Result<Vec<Output>>;
}

/// A recurrent layer of cell `C` (see [`LSTM`] and [`GRU`]).
#[derive(Debug)]
pub struct Rnn<C: Cell> {
    name: String,
    units: usize,
    activation: ActivationArg,
    recurrent_activation: ActivationArg,
    return_sequences: bool,
    return_state: bool,
    go_backwards: bool,
    kb: KernelBias,
    recurrent_initializer: Initializer,
    recurrent_regularizer: Option<Regularizer>,
    recurrent_kernel: Option<Weight>,
    /// The cell's option ([`Cell::OPTION`]).
    option: bool,
    /// Fractions of the inputs and of the recurrent state dropped in training.
    dropout: f64,
    recurrent_dropout: f64,
    seed: Option<i64>,
    cell: std::marker::PhantomData<C>,
}

impl<C: Cell> Rnn<C> {
    /// A layer of `units` with Keras's defaults: activation `tanh`, recurrent activation
    /// `sigmoid`, a bias, Glorot-uniform kernel, orthogonal recurrent kernel, zero bias,
    /// returning the last output only.
    pub fn new(units: usize) -> Self {
        Rnn {
            name: unique_name(C::PREFIX),
            units,
            activation: ActivationArg::new("tanh"),
            recurrent_activation: ActivationArg::new("sigmoid"),
            return_sequences: false,
            return_state: false,
            go_backwards: false,
            kb: KernelBias::new("kernel"),
            recurrent_initializer: Initializer::Orthogonal {
                gain: 1.0,
                seed: None,
            },
            recurrent_regularizer: None,
            recurrent_kernel: None,
            option: true,
            dropout: 0.0,
            recurrent_dropout: 0.0,
            seed: None,
            cell: std::marker::PhantomData,
        }
    }

    kernel_bias_builders!("input kernel", kernel_initializer, kernel_regularizer);

    /// The activation of the candidate state and the output (default `tanh`).
    pub fn activation(mut self, name: &str) -> Self {
        self.activation = ActivationArg::new(name);
        self
    }

    /// The activation of the gates (default `sigmoid`).
    pub fn recurrent_activation(mut self, name: &str) -> Self {
        self.recurrent_activation = ActivationArg::new(name);
        self
    }

    /// Return the output of every step, `(batch, time, units)`, instead of the last
    /// `(batch, units)`.
    pub fn return_sequences(mut self, on: bool) -> Self {
        self.return_sequences = on;
        self
    }

    /// Return the final states after the output (`[output, h, c]` for LSTM, `[output, h]`
    /// for GRU); the layer must then be called with
    /// [`LayerRef::call_outputs`](crate::keras::LayerRef::call_outputs).
    pub fn return_state(mut self, on: bool) -> Self {
        self.return_state = on;
        self
    }

    /// Process the sequence from its last step to its first (outputs in that order).
    pub fn go_backwards(mut self, on: bool) -> Self {
        self.go_backwards = on;
        self
    }

    /// The recurrent kernel's initializer (default `orthogonal`).
    pub fn recurrent_initializer(mut self, init: Initializer) -> Self {
        self.recurrent_initializer = init;
        self
    }

    /// A penalty on the recurrent kernel added to the training loss.
    pub fn recurrent_regularizer(mut self, r: Regularizer) -> Self {
        self.recurrent_regularizer = Some(r);
        self
    }

    /// Drops a fraction `rate` (in `[0, 1)`) of the inputs in training, with one mask
    /// for all the time steps of a batch.
    pub fn dropout(mut self, rate: f64) -> Self {
        self.dropout = rate;
        self
    }

    /// Drops a fraction `rate` (in `[0, 1)`) of the previous output where the recurrent
    /// kernel reads it, in training, with one mask for all the time steps of a batch.
    pub fn recurrent_dropout(mut self, rate: f64) -> Self {
        self.recurrent_dropout = rate;
        self
    }

    /// The seed of the dropout masks.
    pub fn seed(mut self, seed: i64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Replaces the automatic name.
    pub fn named(mut self, name: &str) -> Self {
        self.name = name.to_string();
        self
    }

    /// Number of units.
    pub fn units(&self) -> usize {
        self.units
    }

    /// The layer a Keras config describes.
    pub(crate) fn from_args(a: &Args<'_>) -> Result<Self> {
        a.unsupported(&["recurrent_constraint"])?;
        if a.bool_or("stateful", false)? {
            return Err(a.err("'stateful' is not supported"));
        }
        let mut l = Rnn::<C>::new(a.positive("units")?);
        l.dropout = a.f64_or("dropout", 0.0)?;
        l.recurrent_dropout = a.f64_or("recurrent_dropout", 0.0)?;
        l.seed = a.raw("seed").and_then(Value::as_i64);
        l.activation = a.activation_or("activation", "tanh")?;
        l.recurrent_activation = a.activation_or("recurrent_activation", "sigmoid")?;
        l.return_sequences = a.bool_or("return_sequences", false)?;
        l.return_state = a.bool_or("return_state", false)?;
        l.go_backwards = a.bool_or("go_backwards", false)?;
        l.kb.read_args(a)?;
        l.recurrent_initializer =
            a.initializer("recurrent_initializer", l.recurrent_initializer)?;
        l.recurrent_regularizer = a.regularizer("recurrent_regularizer")?;
        l.option = a.bool_or(C::OPTION, true)?;
        Ok(match a.name() {
            Some(n) => l.named(n),
            None => l,
        })
    }

    /// `(time, features)` of an input shape, which must be `(batch, time, features)`
    /// with both known.
    fn time_and_features(&self, input_shape: &[Option<usize>]) -> Result<(usize, usize)> {
        match input_shape {
            [_, Some(t), Some(f)] if *t > 0 => Ok((*t, *f)),
            _ => Err(layer_error(
                self,
                format!(
                    "expected an input of shape (batch, time, features) with the time steps \
                     and features known, got shape {}",
                    format_shape(input_shape)
                ),
            )),
        }
    }

    /// The output shapes of a call: the output, then each state when `return_state`.
    fn output_shapes(&self, input_shape: &[Option<usize>]) -> Result<Vec<Shape>> {
        let (t, _) = self.time_and_features(input_shape)?;
        if self.units == 0 {
            return Err(layer_error(
                self,
                "Received an invalid value for `units`, expected a positive integer. \
                 Received: units=0",
            ));
        }
        let batch = input_shape[0];
        let out = if self.return_sequences {
            vec![batch, Some(t), Some(self.units)]
        } else {
            vec![batch, Some(self.units)]
        };
        let states = if self.return_state { C::STATES } else { 0 };
        Ok(std::iter::once(out)
            .chain((0..states).map(|_| vec![batch, Some(self.units)]))
            .collect())
    }

    /// The unrolled loop: the output, then the final states when `return_state`.
    fn run(&self, g: &mut Graph, x: Output, ctx: &mut CallContext) -> Result<Vec<Output>> {
        let (Some(kernel), Some(recurrent)) = (&self.kb.kernel, &self.recurrent_kernel) else {
            return Err(layer_error(self, "called before it was built"));
        };
        let want = [kernel.shape[0]];
        let shape = g.shape(x);
        let fits = shape.rank() == Some(3)
            && shape.dim(1).is_some()
            && shape.dim(2).is_none_or(|f| want[0] == f);
        if !fits {
            return Err(layer_error(
                self,
                format!(
                    "Input 0 of layer \"{}\" is incompatible with the layer: expected shape \
                     (batch, time, {}) with the time steps known, but received input with \
                     shape {shape}",
                    self.name, want[0]
                ),
            ));
        }
        let steps = shape.dim(1).expect("checked above");
        for (k, rate) in [
            ("dropout", self.dropout),
            ("recurrent_dropout", self.recurrent_dropout),
        ] {
            if !(0.0..1.0).contains(&rate) {
                return Err(layer_error(
                    self,
                    format!("`{k}` must be in [0, 1), got {rate}"),
                ));
            }
        }
        let training = |rate: f64| ctx.training && rate > 0.0;
        let (drop_x, drop_h) = (training(self.dropout), training(self.recurrent_dropout));
        self.kb.regularize(g, ctx)?;
        regularize(g, ctx, Some(recurrent), self.recurrent_regularizer)?;
        let w = StepWeights {
            recurrent: recurrent.var.read,
            bias: self.kb.bias_read(),
            units: self.units,
            activation: self.activation.checked(self)?,
            recurrent_activation: self.recurrent_activation.checked(self)?,
            recurrent_mask: None,
        };
        let kernel = kernel.var.read;
        let name = self.name.clone();
        g.name_scope(&name, |g| {
            let mut xs = g.unstack(x, Some(steps), 1)?;
            if self.go_backwards {
                xs.reverse();
            }
            let x_mask = match drop_x {
                true => Some(dropout_mask(g, xs[0], self.dropout, self.seed)?),
                false => None,
            };
            let mut w = w;
            let mut state: Vec<Output> = Vec::new();
            let mut outputs = Vec::with_capacity(steps);
            for x_t in xs {
                let x_t = match x_mask {
                    Some(m) => g.mul(x_t, m)?,
                    None => x_t,
                };
                let xw = g.matmul(x_t, kernel)?;
                if state.is_empty() {
                    // The initial states are zeros of shape (batch, units).
                    let first = g.split(xw, C::GATES, 1)?[0];
                    let zero = g.zeros_like(first)?;
                    state = vec![zero; C::STATES];
                    if drop_h {
                        let m = dropout_mask(g, zero, self.recurrent_dropout, self.seed)?;
                        w.recurrent_mask = Some(m);
                    }
                }
                state = C::step(g, self.option, &w, xw, &state)?;
                outputs.push(state[0]);
            }
            let out = if self.return_sequences {
                g.stack(&outputs, 1)?
            } else {
                state[0]
            };
            let mut all = vec![out];
            if self.return_state {
                all.extend(state);
            }
            Ok(all)
        })
    }
}

impl<C: Cell> Layer for Rnn<C> {
    fn name(&self) -> &str {
        &self.name
    }

    fn class_name(&self) -> &'static str {
        C::CLASS
    }

    fn built(&self) -> bool {
        self.kb.kernel.is_some()
    }

    fn build(&mut self, g: &mut Graph, input_shape: &[Option<usize>]) -> Result<()> {
        self.output_shapes(input_shape)?;
        self.activation.checked(self)?;
        self.recurrent_activation.checked(self)?;
        let (_, features) = self.time_and_features(input_shape)?;
        let (u, cols) = (self.units, C::GATES * self.units);
        let scope = format!("{}/{}", self.name, C::CELL);
        self.kb
            .build_kernel(g, &scope, "kernel", &[features, cols])?;
        let r0 = self
            .recurrent_initializer
            .create(g, &[u, cols], DType::Float32)?;
        self.recurrent_kernel = Some(add_weight(g, &scope, "recurrent_kernel", r0, true)?);
        let option = self.option;
        self.kb
            .build_bias(g, &scope, |g, init| C::bias(g, option, init, u))
    }

    fn compute_output_shape(&self, input_shape: &[Option<usize>]) -> Result<Shape> {
        Ok(self.output_shapes(input_shape)?.remove(0))
    }

    fn call(&self, g: &mut Graph, x: Output, ctx: &mut CallContext) -> Result<Output> {
        if self.return_state {
            return Err(layer_error(
                self,
                "returns several tensors (return_state=True): call it in the functional \
                 API with `call_outputs`",
            ));
        }
        Ok(self.run(g, x, ctx)?.remove(0))
    }

    fn has_training_behavior(&self) -> bool {
        self.dropout > 0.0 || self.recurrent_dropout > 0.0
    }

    fn num_outputs(&self) -> usize {
        1 + if self.return_state { C::STATES } else { 0 }
    }

    fn compute_output_shapes(&self, input_shapes: &[Shape]) -> Result<Vec<Shape>> {
        match input_shapes {
            [one] => self.output_shapes(one),
            _ => Err(layer_error(
                self,
                format!("takes one input, but was called on {}", input_shapes.len()),
            )),
        }
    }

    fn call_outputs(
        &self,
        g: &mut Graph,
        xs: &[Output],
        ctx: &mut CallContext,
    ) -> Result<Vec<Output>> {
        match xs {
            [x] => self.run(g, *x, ctx),
            _ => Err(layer_error(
                self,
                format!("takes one input, but was called on {}", xs.len()),
            )),
        }
    }

    fn weights(&self) -> Vec<Weight> {
        self.kb.weights(self.recurrent_kernel.clone())
    }

    fn get_config(&self) -> Map<String, Value> {
        let mut m = base_config(&self.name);
        m.insert("return_sequences".into(), self.return_sequences.into());
        m.insert("return_state".into(), self.return_state.into());
        m.insert("go_backwards".into(), self.go_backwards.into());
        m.insert("stateful".into(), false.into());
        m.insert("unroll".into(), false.into());
        m.insert("zero_output_for_mask".into(), false.into());
        m.insert("units".into(), self.units.into());
        m.insert("activation".into(), self.activation.name().into());
        m.insert(
            "recurrent_activation".into(),
            self.recurrent_activation.name().into(),
        );
        self.kb.write_config(&mut m);
        m.insert(
            "recurrent_initializer".into(),
            self.recurrent_initializer.to_config(),
        );
        m.insert(
            "recurrent_regularizer".into(),
            Regularizer::serialize(self.recurrent_regularizer),
        );
        m.insert("activity_regularizer".into(), Value::Null);
        m.insert("recurrent_constraint".into(), Value::Null);
        m.insert("dropout".into(), self.dropout.into());
        m.insert("recurrent_dropout".into(), self.recurrent_dropout.into());
        m.insert(C::OPTION.into(), self.option.into());
        m.insert("seed".into(), self.seed.map_or(Value::Null, Value::from));
        m
    }
}

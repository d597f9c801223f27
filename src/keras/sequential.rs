//! `Sequential`: a stack of layers, built lazily from the first input shape it sees
//! (`build`, the first call on data, or `fit`), or at once when it starts with an
//! [`Input`].

use crate::data::Dataset;
use crate::graph::{Graph, NodeId, Output};
use crate::keras::callbacks::{CallbackModel, History, Logs};
use crate::keras::layer::{
    format_shape, next_seed, session_options, unique_name, CallContext, Layer, Shape, Weight,
};
use crate::keras::losses::{IntoLoss, Loss};
use crate::keras::metrics::{IntoMetric, NamedMetric};
use crate::keras::network::Network;
use crate::keras::optimizers::{IntoOptimizer, Optimizer};
use crate::keras::summary;
use crate::keras::trainer::{self, Compiled, FitOptions, HeadSpec, Trainable};
use crate::session::{Callable, SessionOptions};
use crate::tensor::{DType, Tensor};
use crate::{Error, Result};
use std::path::Path;

/// A linear stack of layers (`keras.Sequential`).
pub struct Sequential {
    name: String,
    layers: Vec<Box<dyn Layer>>,
    /// Name, batch shape and dtype of a declared input.
    input: Option<(String, Shape, DType)>,
    options: SessionOptions,
    net: Option<Network>,
    /// Each layer's output shape, once built.
    shapes: Vec<Shape>,
    compiled: Option<Compiled>,
    /// The arguments of the last `compile`, applied again after a rebuild.
    compile_args: Option<CompileArgs>,
    predict_step: Option<Callable>,
}

type CompileArgs = (Optimizer, Loss, Vec<NamedMetric>);

/// What one pass through the layers added to the graph.
struct Forward {
    output: Output,
    shapes: Vec<Shape>,
    updates: Vec<NodeId>,
    losses: Vec<Output>,
}

impl Sequential {
    /// A model of `layers`, in order (`keras.Sequential([...])`). When the first is an
    /// [`Input`] the model is built at once; otherwise it stays unbuilt until it sees an
    /// input shape.
    pub fn new(layers: Vec<Box<dyn Layer>>) -> Result<Sequential> {
        let mut model = Sequential {
            name: unique_name("sequential"),
            layers: Vec::new(),
            input: None,
            options: session_options(),
            net: None,
            shapes: Vec::new(),
            compiled: None,
            compile_args: None,
            predict_step: None,
        };
        for layer in layers {
            model.add(layer)?;
        }
        Ok(model)
    }

    /// Replaces the automatic name (`sequential`, `sequential_1`, …).
    pub fn named(mut self, name: &str) -> Sequential {
        self.name = name.to_string();
        self
    }

    /// The model's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The layers, without the input layer (`model.layers`); `{:?}` prints Keras's repr,
    /// `[<Dense name=dense, built=False>, ...]`.
    pub fn layers(&self) -> &[Box<dyn Layer>] {
        &self.layers
    }

    /// Whether the variables exist.
    pub fn built(&self) -> bool {
        self.net.is_some()
    }

    /// Appends a layer (`model.add`). An [`Input`] is accepted only first. A built model
    /// is rebuilt with the new layer (and must be compiled again).
    pub fn add(&mut self, layer: impl Into<Box<dyn Layer>>) -> Result<()> {
        let layer = layer.into();
        if let Some((shape, dtype)) = layer.input_spec() {
            if !self.layers.is_empty() || self.input.is_some() {
                return Err(Error::invalid(format!(
                    "Sequential model '{}': an Input ('{}') can only be the first layer",
                    self.name,
                    layer.name()
                )));
            }
            self.input = Some((layer.name().to_string(), shape.clone(), dtype));
            return self.build(&shape);
        }
        if self.layers.iter().any(|l| l.name() == layer.name()) {
            return Err(Error::invalid(format!(
                "All layers added to a Sequential model should have unique names. Name '{}' \
                 is already the name of a layer in this model.",
                layer.name()
            )));
        }
        self.layers.push(layer);
        self.rebuild()
    }

    /// Removes the last layer (`model.pop`); a built model is rebuilt without it.
    pub fn pop(&mut self) -> Result<Box<dyn Layer>> {
        let layer = self.layers.pop().ok_or_else(|| {
            Error::invalid(format!(
                "Sequential model '{}' has no layers to pop",
                self.name
            ))
        })?;
        self.rebuild()?;
        Ok(layer)
    }

    /// Rebuilds a built model after its layers changed.
    fn rebuild(&mut self) -> Result<()> {
        if let Some(net) = &self.net {
            let shape = net.input_shape.clone();
            return self.build(&shape);
        }
        if let Some(shape) = self.input.as_ref().map(|i| i.1.clone()) {
            return self.build(&shape);
        }
        Ok(())
    }

    /// Builds the model for inputs of `input_shape` (batch axis first, usually `None`):
    /// creates every layer's variables (`model.build((None, 64))`).
    pub fn build(&mut self, input_shape: &[Option<usize>]) -> Result<()> {
        if input_shape.len() < 2 {
            return Err(Error::invalid(format!(
                "Sequential model '{}': an input shape needs a batch axis and at least one \
                 more, got {}",
                self.name,
                format_shape(input_shape)
            )));
        }
        if let Some(net) = &self.net {
            let same = net.input_shape.len() == input_shape.len()
                && net.input_shape[1..] == input_shape[1..];
            if !same {
                return Err(Error::invalid(format!(
                    "Sequential model '{}' was built for inputs of shape {}; it cannot be \
                     built again for {}",
                    self.name,
                    format_shape(&net.input_shape),
                    format_shape(input_shape)
                )));
            }
        }
        let mut shape = input_shape.to_vec();
        shape[0] = None;
        // Reuse the graph (and the variables) of a built model; otherwise start one.
        let (mut graph, input, session, input_name, synced) = match self.net.take() {
            Some(net) => {
                let synced = net.synced();
                (net.graph, net.input, net.session, net.input_name, synced)
            }
            None => {
                let input_name = match &self.input {
                    Some(i) => i.0.clone(),
                    None => unique_name("input_layer"),
                };
                let seed = (next_seed() & (i64::MAX as u64)) as i64;
                let spec = (input_name.as_str(), shape.as_slice(), self.input_dtype());
                let (g, x, s) = Network::start(spec, self.options.clone(), Some(seed))?;
                (g, x, s, input_name, (0, 0))
            }
        };
        let inference = self.forward(&mut graph, input, &shape, false)?;
        let training = if self.layers.iter().any(|l| l.has_training_behavior()) {
            self.forward(&mut graph, input, &shape, true)?
        } else {
            Forward {
                output: inference.output,
                shapes: Vec::new(),
                updates: Vec::new(),
                losses: inference.losses.clone(),
            }
        };
        let output_shape = inference
            .shapes
            .last()
            .cloned()
            .unwrap_or_else(|| shape.clone());
        self.shapes = inference.shapes;
        self.compiled = None;
        self.predict_step = None;
        self.net = Some(Network::assemble(
            graph,
            session,
            input,
            shape,
            input_name,
            inference.output,
            training.output,
            output_shape,
            training.updates,
            training.losses,
            synced,
        )?);
        if self.compile_args.is_some() {
            self.finish_compile()?;
        }
        Ok(())
    }

    /// Builds the layers that are not built and calls them all on `input`.
    fn forward(
        &mut self,
        g: &mut Graph,
        input: Output,
        input_shape: &[Option<usize>],
        training: bool,
    ) -> Result<Forward> {
        let mut ctx = CallContext::new(training);
        let mut x = input;
        let mut shape = input_shape.to_vec();
        let mut shapes = Vec::with_capacity(self.layers.len());
        for layer in self.layers.iter_mut() {
            if !layer.built() {
                layer.build(g, &shape)?;
            }
            x = layer.call(g, x, &mut ctx)?;
            shape = layer.compute_output_shape(&shape)?;
            shapes.push(shape.clone());
        }
        Ok(Forward {
            output: x,
            shapes,
            updates: ctx.updates,
            losses: ctx.losses,
        })
    }

    fn net(&self) -> Result<&Network> {
        self.net.as_ref().ok_or_else(|| {
            Error::FailedPrecondition(format!(
                "Sequential model '{}' has not been built yet: call build(), call it on data, \
                 or start it with an Input",
                self.name
            ))
        })
    }

    fn ensure_built_for(&mut self, x: &Tensor) -> Result<()> {
        if self.net.is_none() {
            if x.rank() < 2 {
                return Err(Error::invalid(format!(
                    "Sequential model '{}': inputs need a batch axis, got a tensor of shape {:?}",
                    self.name,
                    x.shape()
                )));
            }
            let mut shape: Shape = x.shape().iter().map(|&d| Some(d)).collect();
            shape[0] = None;
            self.build(&shape)?;
        }
        Ok(())
    }

    fn first_layer(&self) -> String {
        self.layers.first().map_or_else(
            || {
                self.net
                    .as_ref()
                    .map_or(String::new(), |n| n.input_name.clone())
            },
            |l| l.name().to_string(),
        )
    }

    /// Runs the model on a batch in inference mode (`model(x)`), building it first when
    /// needed.
    pub fn call(&mut self, x: &Tensor) -> Result<Tensor> {
        self.predict_batched(x, usize::MAX)
    }

    /// Runs the model on a batch in training mode (`model(x, training=True)`): Dropout
    /// drops, and BatchNormalization normalizes with the batch's statistics and updates
    /// its moving averages.
    pub fn call_training(&mut self, x: &Tensor) -> Result<Tensor> {
        self.ensure_built_for(x)?;
        let first = self.first_layer();
        let net = self.net.as_ref().expect("built above");
        let x = net.check_input(x, &first)?;
        let mut out = net
            .session
            .run(&[(net.input, x)], &[net.train_output], &net.updates)?;
        Ok(out.remove(0))
    }

    /// `model.predict(x)`: the outputs for all samples, in batches of 32.
    pub fn predict(&mut self, x: &Tensor) -> Result<Tensor> {
        self.predict_batched(x, 32)
    }

    /// `model.predict(x, batch_size=...)`.
    pub fn predict_batched(&mut self, x: &Tensor, batch_size: usize) -> Result<Tensor> {
        self.ensure_built_for(x)?;
        let first = self.first_layer();
        let net = self.net.as_ref().expect("built above");
        let x = net.check_input(x, &first)?;
        if self.predict_step.is_none() {
            self.predict_step = Some(net.session.make_callable(
                &[net.input],
                &[net.output],
                &[],
            )?);
        }
        let step = self.predict_step.as_ref().expect("made above");
        trainer::predict(net, step, &x, batch_size.max(1))
    }

    /// The layers' weights in Keras's order (`model.weights`); empty before build.
    pub fn weights(&self) -> Vec<Weight> {
        self.layers.iter().flat_map(|l| l.weights()).collect()
    }

    /// Number of scalars in the layers' weights.
    pub fn count_params(&self) -> usize {
        self.layers.iter().map(|l| l.count_params()).sum()
    }

    /// The weights' values in Keras's order (`model.get_weights()`).
    pub fn get_weights(&self) -> Result<Vec<Tensor>> {
        self.net()?.read(&self.weights())
    }

    /// Sets the weights from values in Keras's order (`model.set_weights`); every shape
    /// is checked before anything is written.
    pub fn set_weights(&mut self, values: &[Tensor]) -> Result<()> {
        let weights = self.weights();
        self.net()?.write(&weights, values)
    }

    /// Keras's summary table (what `model.summary()` prints): layer name and type, output
    /// shape with `None` for the batch, parameter count, then the totals.
    pub fn summary(&self) -> String {
        let rows: Vec<summary::Row> = self
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| summary::Row::of(l.as_ref(), self.shapes.get(i).cloned()))
            .collect();
        let weights = self.weights();
        let optimizer = match (&self.compiled, &self.net) {
            (Some(_), Some(net)) => Some(net.optimizer_params(&weights)),
            _ => None,
        };
        summary::summary(&self.name, &rows, &weights, optimizer)
    }

    /// Configures training (`model.compile(optimizer, loss, metrics)`): appends the loss,
    /// metrics, gradients and updates to the graph. The model must be built (or start
    /// with an `Input`); otherwise compiling waits for the first `fit`.
    pub fn compile<M: IntoMetric>(
        &mut self,
        optimizer: impl IntoOptimizer,
        loss: impl IntoLoss,
        metrics: impl IntoIterator<Item = M>,
    ) -> Result<()> {
        let optimizer = optimizer.into_optimizer()?;
        let loss = loss.into_loss()?;
        let metrics = metrics
            .into_iter()
            .map(IntoMetric::into_metric)
            .collect::<Result<Vec<_>>>()?;
        self.compile_args = Some((optimizer, loss, metrics));
        if self.net.is_some() {
            self.finish_compile()?;
        }
        Ok(())
    }

    /// Appends the training graph for the stored compile arguments.
    fn finish_compile(&mut self) -> Result<()> {
        let (optimizer, loss, metrics) = self.compile_args.clone().expect("compile() called");
        let trainable: Vec<Weight> = self.weights().into_iter().filter(|w| w.trainable).collect();
        let net = self.net.as_mut().expect("built");
        self.compiled = None;
        let head = HeadSpec {
            name: String::new(),
            loss,
            weight: 1.0,
            metrics,
        };
        self.compiled = Some(trainer::compile(net, &trainable, optimizer, vec![head])?);
        Ok(())
    }

    /// Whether `compile` has been called.
    pub fn compiled(&self) -> bool {
        self.compile_args.is_some()
    }

    /// Trains the model (`model.fit(x, y, epochs=..., batch_size=..., ...)`); returns
    /// the history of each epoch's logs. Builds the model from `x`'s shape when needed.
    pub fn fit(&mut self, x: &Tensor, y: &Tensor, options: FitOptions<'_>) -> Result<History> {
        trainer::fit(
            self,
            std::slice::from_ref(x),
            std::slice::from_ref(y),
            options,
        )
    }

    /// `model.fit(dataset, epochs=...)`: trains on the `(x, y)` batches of a
    /// [`Dataset`], one pass per epoch (batching and shuffling are the dataset's).
    pub fn fit_dataset(&mut self, ds: &Dataset, options: FitOptions<'_>) -> Result<History> {
        trainer::fit_dataset(self, ds, options)
    }

    /// `model.evaluate(dataset)`: the loss and metrics over a dataset's `(x, y)` batches.
    pub fn evaluate_dataset(&mut self, ds: &Dataset) -> Result<Logs> {
        trainer::evaluate_dataset(self, ds)
    }

    /// `model.predict(dataset)`: the outputs for every batch of a dataset of inputs (an
    /// element may also be an `(x, y)` pair; `y` is ignored), stacked.
    pub fn predict_dataset(&mut self, ds: &Dataset) -> Result<Tensor> {
        let mut parts = Vec::new();
        for e in ds {
            let e = e?;
            let x = match e.pair() {
                Ok((x, _)) => x.clone(),
                Err(_) => e.tensor()?.clone(),
            };
            parts.push(self.predict_batched(&x, usize::MAX)?);
        }
        trainer::stack_rows(&parts)
    }

    /// `model.evaluate(x, y)`: the loss and metrics over all samples (batches of 32,
    /// silent).
    pub fn evaluate(&mut self, x: &Tensor, y: &Tensor) -> Result<Logs> {
        trainer::evaluate(
            self,
            std::slice::from_ref(x),
            std::slice::from_ref(y),
            32,
            0,
        )
    }

    /// `model.evaluate(x, y, batch_size=..., verbose=...)`.
    pub fn evaluate_with(
        &mut self,
        x: &Tensor,
        y: &Tensor,
        batch_size: usize,
        verbose: u8,
    ) -> Result<Logs> {
        trainer::evaluate(
            self,
            std::slice::from_ref(x),
            std::slice::from_ref(y),
            batch_size,
            verbose,
        )
    }

    /// `model.train_on_batch(x, y)`: one update on one batch; its loss and metrics.
    pub fn train_on_batch(&mut self, x: &Tensor, y: &Tensor) -> Result<Logs> {
        trainer::train_on_batch(self, std::slice::from_ref(x), std::slice::from_ref(y))
    }

    /// The optimizer's current learning rate (the model must be compiled and built).
    pub fn learning_rate(&self) -> Result<f64> {
        let (net, c) = self.compiled_parts()?;
        c.learning_rate(net)
    }

    /// The built network.
    pub(crate) fn network(&self) -> Result<&Network> {
        self.net()
    }

    /// The declared or built input shape.
    pub(crate) fn input_shape(&self) -> Option<Shape> {
        match &self.net {
            Some(net) => Some(net.input_shape.clone()),
            None => self.input.as_ref().map(|i| i.1.clone()),
        }
    }

    /// The input's dtype: the built placeholder's, the declared `Input`'s, or float32.
    pub(crate) fn input_dtype(&self) -> DType {
        match (&self.net, &self.input) {
            (Some(net), _) => net.graph.dtype(net.input),
            (None, Some(i)) => i.2,
            (None, None) => DType::Float32,
        }
    }

    /// The input layer's name (empty until known).
    pub(crate) fn input_name(&self) -> String {
        match (&self.net, &self.input) {
            (Some(net), _) => net.input_name.clone(),
            (None, Some(i)) => i.0.clone(),
            (None, None) => String::new(),
        }
    }

    /// Output shape of layer `i`, once built.
    pub(crate) fn layer_output_shape(&self, i: usize) -> Option<Shape> {
        self.shapes.get(i).cloned()
    }

    /// The arguments of `compile`, if it was called.
    pub(crate) fn compile_settings(&self) -> Option<(&Optimizer, &Loss, &[NamedMetric])> {
        self.compile_args
            .as_ref()
            .map(|(o, l, m)| (o, l, m.as_slice()))
    }

    /// Sets every variable of the graph that the checkpoint holds (weights and optimizer
    /// state), checking shapes.
    pub(crate) fn restore(&mut self, reader: &crate::saved_model::BundleReader) -> Result<()> {
        self.net()?.restore(reader)?;
        if let Some(c) = self.compiled.as_mut() {
            let net = self.net.as_ref().expect("checked");
            c.reload_iterations(net)?;
        }
        Ok(())
    }

    fn compiled_parts(&self) -> Result<(&Network, &Compiled)> {
        let c = self.compiled.as_ref().ok_or_else(not_compiled)?;
        Ok((self.net()?, c))
    }
}

fn not_compiled() -> Error {
    Error::FailedPrecondition(
        "You must call `compile()` before using the model (fit, evaluate, train_on_batch)".into(),
    )
}

impl Trainable for Sequential {
    fn parts(&mut self) -> Result<(&mut Network, &mut Compiled)> {
        if self.compiled.is_none() {
            return Err(not_compiled());
        }
        let net = self.net.as_mut().ok_or_else(not_compiled)?;
        Ok((net, self.compiled.as_mut().expect("checked")))
    }

    fn ensure_built(&mut self, x: &Tensor) -> Result<()> {
        if self.compile_args.is_none() {
            return Err(not_compiled());
        }
        self.ensure_built_for(x)
    }

    fn first_layer_name(&self) -> String {
        self.first_layer()
    }
}

impl CallbackModel for Sequential {
    fn get_weights(&self) -> Result<Vec<Tensor>> {
        Sequential::get_weights(self)
    }

    fn set_weights(&mut self, weights: &[Tensor]) -> Result<()> {
        Sequential::set_weights(self, weights)
    }

    fn learning_rate(&self) -> Result<f64> {
        Sequential::learning_rate(self)
    }

    fn set_learning_rate(&mut self, lr: f64) -> Result<()> {
        let (net, c) = self.compiled_parts()?;
        c.set_learning_rate(net, lr)
    }

    fn stop_training(&mut self) {
        if let Some(net) = self.net.as_mut() {
            net.stop_training = true;
        }
    }

    fn save(&self, dir: &Path) -> Result<()> {
        Sequential::save(self, dir)
    }

    fn named_weights(&self) -> Result<Vec<(String, Tensor)>> {
        let weights = self.weights();
        let values = self.net()?.read(&weights)?;
        Ok(weights.into_iter().map(|w| w.path).zip(values).collect())
    }

    fn graph(&self) -> Option<&Graph> {
        self.net.as_ref().map(|net| &net.graph)
    }
}

//! The functional API: symbolic tensors from [`Input::tensor`], layers called on them
//! ([`LayerRef::call`], [`Apply::on`]), and a [`Model`] of the graph of calls between
//! its inputs and outputs (`keras.Model(inputs, outputs)`). A layer called twice shares
//! its variables. The model trains with the same trainer as [`crate::keras::Sequential`].

use crate::data::Dataset;
use crate::graph::{Graph, NodeId, Output};
use crate::keras::callbacks::{CallbackModel, History, Logs};
use crate::keras::layer::{
    format_shape, next_seed, session_options, unique_name, CallContext, Layer, Shape, Weight,
};
use crate::keras::layers::Input;
use crate::keras::losses::{IntoLoss, Loss};
use crate::keras::metrics::IntoMetric;
use crate::keras::network::{check_batch, InputSpec, Network};
use crate::keras::optimizers::IntoOptimizer;
use crate::keras::summary;
use crate::keras::trainer::{self, Compiled, FitOptions, HeadSpec, Trainable};
use crate::session::Callable;
use crate::tensor::rows::gather_rows;
use crate::tensor::{DType, Tensor};
use crate::{Error, Result};
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// A layer that can be called on symbolic tensors, once or several times (each call
/// uses the same variables): `keras.layers.Dense(4)` held to be shared.
#[derive(Clone)]
pub struct LayerRef(Arc<Mutex<Box<dyn Layer>>>);

impl LayerRef {
    /// Holds `layer` for calls on symbolic tensors.
    pub fn new(layer: impl Into<Box<dyn Layer>>) -> LayerRef {
        LayerRef(Arc::new(Mutex::new(layer.into())))
    }

    /// The layer, locked.
    pub(crate) fn lock_layer(&self) -> Result<std::sync::MutexGuard<'_, Box<dyn Layer>>> {
        self.lock()
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Box<dyn Layer>>> {
        self.0
            .lock()
            .map_err(|_| Error::Internal("a layer's lock was poisoned by a panic".into()))
    }

    /// The layer's name.
    pub fn name(&self) -> String {
        self.lock()
            .map(|l| l.name().to_string())
            .unwrap_or_default()
    }

    /// Calls the layer on one symbolic tensor (`layer(x)`): the output's shape is worked
    /// out now, so a shape the layer rejects is an error here.
    pub fn call(&self, x: &KerasTensor) -> Result<KerasTensor> {
        self.call_many(&[x])
    }

    /// Calls the layer on several symbolic tensors (merge layers: `Add()([a, b])`).
    pub fn call_many(&self, xs: &[&KerasTensor]) -> Result<KerasTensor> {
        let mut outs = self.call_outputs(xs)?;
        if outs.len() != 1 {
            return Err(Error::invalid(format!(
                "layer '{}' returns {} tensors: call it with `call_outputs`",
                self.name(),
                outs.len()
            )));
        }
        Ok(outs.remove(0))
    }

    /// Calls the layer on symbolic tensors, returning every tensor of the call
    /// (`output, h, c = LSTM(4, return_state=True)(x)`).
    pub fn call_outputs(&self, xs: &[&KerasTensor]) -> Result<Vec<KerasTensor>> {
        let shapes: Vec<Shape> = xs.iter().map(|x| x.shape.clone()).collect();
        let out_shapes = self.lock()?.compute_output_shapes(&shapes)?;
        let node = Arc::new(Node::Call {
            layer: self.clone(),
            inputs: xs.iter().map(|&x| x.clone()).collect(),
        });
        Ok(out_shapes
            .into_iter()
            .enumerate()
            .map(|(index, shape)| KerasTensor {
                node: node.clone(),
                index,
                shape,
            })
            .collect())
    }

    fn ptr(&self) -> *const Mutex<Box<dyn Layer>> {
        Arc::as_ptr(&self.0)
    }
}

/// Calling a layer that is used once on symbolic tensors: `Dense::new(4).on(&x)?`.
pub trait Apply {
    /// `layer(x)`.
    fn on(self, x: &KerasTensor) -> Result<KerasTensor>;
    /// `layer([a, b, ...])`.
    fn on_many(self, xs: &[&KerasTensor]) -> Result<KerasTensor>;
}

impl<L: Layer + 'static> Apply for L {
    fn on(self, x: &KerasTensor) -> Result<KerasTensor> {
        LayerRef::new(self).call(x)
    }
    fn on_many(self, xs: &[&KerasTensor]) -> Result<KerasTensor> {
        LayerRef::new(self).call_many(xs)
    }
}

/// Where a symbolic tensor comes from.
enum Node {
    Input {
        name: String,
        dtype: DType,
    },
    Call {
        layer: LayerRef,
        inputs: Vec<KerasTensor>,
    },
}

/// A symbolic tensor: an input of a functional model or one output of a layer call,
/// with its Keras shape (batch first, `None` for the batch).
#[derive(Clone)]
pub struct KerasTensor {
    node: Arc<Node>,
    /// Which of the call's tensors it is (0 but for layers returning several).
    index: usize,
    shape: Shape,
}

/// Where a symbolic tensor comes from, as its config names it.
pub(crate) enum Origin<'a> {
    /// The input of this name.
    Input(String),
    /// A call of a layer on tensors.
    Call(&'a LayerRef, &'a [KerasTensor]),
}

impl KerasTensor {
    /// The shape, batch first.
    pub fn shape(&self) -> &Shape {
        &self.shape
    }

    /// The dtype: an input's own, float32 for a layer's output.
    pub fn dtype(&self) -> DType {
        match &*self.node {
            Node::Input { dtype, .. } => *dtype,
            Node::Call { .. } => DType::Float32,
        }
    }

    /// The input or call that makes the tensor.
    pub(crate) fn origin(&self) -> Origin<'_> {
        match &*self.node {
            Node::Input { name, .. } => Origin::Input(name.clone()),
            Node::Call { layer, inputs } => Origin::Call(layer, inputs),
        }
    }

    /// Which of its call's tensors it is.
    pub(crate) fn index(&self) -> usize {
        self.index
    }

    /// An identity shared by the tensors of one call.
    pub(crate) fn id(&self) -> *const () {
        self.ptr() as *const ()
    }

    fn ptr(&self) -> *const Node {
        Arc::as_ptr(&self.node)
    }
}

impl fmt::Debug for KerasTensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match &*self.node {
            Node::Input { name, .. } => name.clone(),
            Node::Call { layer, .. } => layer.name(),
        };
        write!(
            f,
            "<KerasTensor shape={}, name={name}>",
            format_shape(&self.shape)
        )
    }
}

impl Input {
    /// The symbolic tensor of this input (`keras.Input(shape, name=...)`), to call layers
    /// on and to give to [`Model::new`].
    pub fn tensor(&self) -> KerasTensor {
        KerasTensor {
            node: Arc::new(Node::Input {
                name: self.name().to_string(),
                dtype: self.input_spec().map_or(DType::Float32, |s| s.1),
            }),
            index: 0,
            shape: self.batch_shape().clone(),
        }
    }
}

/// What one pass over the calls added to the graph.
struct Forward {
    outputs: Vec<Output>,
    updates: Vec<NodeId>,
    losses: Vec<Output>,
    /// Output shape of each layer's first call.
    shapes: HashMap<*const Mutex<Box<dyn Layer>>, Shape>,
}

/// A model of the calls between symbolic inputs and outputs (`keras.Model(inputs,
/// outputs)`), built at once (the inputs' shapes are known).
pub struct Model {
    name: String,
    inputs: Vec<KerasTensor>,
    outputs: Vec<KerasTensor>,
    /// The calls, each after the calls it reads.
    calls: Vec<KerasTensor>,
    /// The distinct layers, in the order of their first call.
    layers: Vec<LayerRef>,
    layer_shapes: Vec<Shape>,
    net: Network,
    placeholders: Vec<Output>,
    /// Every output of the inference pass (the network holds the first).
    output_ops: Vec<Output>,
    compiled: Option<Compiled>,
    predict_step: Option<Callable>,
}

impl Model {
    /// The model computing `outputs` from `inputs`; every layer is built and its
    /// variables created. An error names a needed input that is not among `inputs`.
    pub fn new(inputs: &[KerasTensor], outputs: &[KerasTensor]) -> Result<Model> {
        if inputs.is_empty() || outputs.is_empty() {
            return Err(Error::invalid(
                "a functional Model needs at least one input and one output",
            ));
        }
        let mut input_names = Vec::new();
        for x in inputs {
            match &*x.node {
                Node::Input { name, .. } => input_names.push(name.clone()),
                Node::Call { layer, .. } => {
                    return Err(Error::invalid(format!(
                        "Model inputs must come from `Input`; got the output of layer '{}'",
                        layer.name()
                    )))
                }
            }
        }
        let known: HashSet<*const Node> = inputs.iter().map(KerasTensor::ptr).collect();
        let mut calls = Vec::new();
        let mut seen = HashSet::new();
        for out in outputs {
            order(out, &known, &mut seen, &mut calls)?;
        }
        let mut layers: Vec<LayerRef> = Vec::new();
        for c in &calls {
            if let Node::Call { layer, .. } = &*c.node {
                if !layers.iter().any(|l| l.ptr() == layer.ptr()) {
                    layers.push(layer.clone());
                }
            }
        }
        let seed = (next_seed() & (i64::MAX as u64)) as i64;
        let specs: Vec<InputSpec<'_>> = input_names
            .iter()
            .zip(inputs)
            .map(|(n, x)| (n.as_str(), x.shape.as_slice(), x.dtype()))
            .collect();
        let (mut graph, placeholders, session) =
            Network::start_many(&specs, session_options(), Some(seed))?;
        let mut model_calls = ModelCalls {
            inputs,
            placeholders: &placeholders,
            calls: &calls,
        };
        let inference = model_calls.forward(&mut graph, outputs, false)?;
        let training = if layers
            .iter()
            .any(|l| l.lock().map(|l| l.has_training_behavior()).unwrap_or(false))
        {
            model_calls.forward(&mut graph, outputs, true)?
        } else {
            Forward {
                outputs: inference.outputs.clone(),
                updates: Vec::new(),
                losses: inference.losses.clone(),
                shapes: HashMap::new(),
            }
        };
        let layer_shapes = layers
            .iter()
            .map(|l| inference.shapes.get(&l.ptr()).cloned().unwrap_or_default())
            .collect();
        let mut net = Network::assemble(
            graph,
            session,
            placeholders[0],
            inputs[0].shape.clone(),
            input_names[0].clone(),
            inference.outputs[0],
            training.outputs[0],
            outputs[0].shape.clone(),
            training.updates,
            training.losses,
            (0, 0),
        )?;
        net.extra_outputs = (1..outputs.len())
            .map(|i| {
                (
                    inference.outputs[i],
                    training.outputs[i],
                    outputs[i].shape.clone(),
                )
            })
            .collect();
        net.extra_inputs = (1..inputs.len())
            .map(|i| {
                (
                    placeholders[i],
                    inputs[i].shape.clone(),
                    input_names[i].clone(),
                )
            })
            .collect();
        Ok(Model {
            name: unique_name("functional"),
            inputs: inputs.to_vec(),
            outputs: outputs.to_vec(),
            calls,
            layers,
            layer_shapes,
            net,
            placeholders,
            output_ops: inference.outputs,
            compiled: None,
            predict_step: None,
        })
    }

    /// Replaces the automatic name (`functional`, `functional_1`, …).
    pub fn named(mut self, name: &str) -> Model {
        self.name = name.to_string();
        self
    }

    /// The model's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The distinct layers, in the order of their first call (without the inputs).
    pub fn layers(&self) -> &[LayerRef] {
        &self.layers
    }

    /// The model's inputs.
    pub fn inputs(&self) -> &[KerasTensor] {
        &self.inputs
    }

    /// The model's outputs.
    pub fn outputs(&self) -> &[KerasTensor] {
        &self.outputs
    }

    /// The calls, each after the calls it reads.
    pub(crate) fn calls(&self) -> &[KerasTensor] {
        &self.calls
    }

    /// Each distinct layer with the tensors of its first call.
    pub(crate) fn layers_with_first_inputs(&self) -> Vec<(LayerRef, Vec<KerasTensor>)> {
        self.layers
            .iter()
            .map(|l| {
                let first = self.calls.iter().find_map(|c| match &*c.node {
                    Node::Call { layer, inputs } if layer.ptr() == l.ptr() => Some(inputs.clone()),
                    _ => None,
                });
                (l.clone(), first.unwrap_or_default())
            })
            .collect()
    }

    /// Number of calls in the model (a shared layer counts once per call).
    pub fn num_calls(&self) -> usize {
        self.calls.len()
    }

    /// The layers' weights in Keras's order (each shared layer once).
    pub fn weights(&self) -> Vec<Weight> {
        self.layers
            .iter()
            .flat_map(|l| l.lock().map(|l| l.weights()).unwrap_or_default())
            .collect()
    }

    /// Number of scalars in the weights.
    pub fn count_params(&self) -> usize {
        self.weights().iter().map(Weight::size).sum()
    }

    /// The weights' values in Keras's order (`model.get_weights()`).
    pub fn get_weights(&self) -> Result<Vec<Tensor>> {
        self.net.read(&self.weights())
    }

    /// Sets the weights from values in Keras's order (`model.set_weights`).
    pub fn set_weights(&mut self, values: &[Tensor]) -> Result<()> {
        self.net.write(&self.weights(), values)
    }

    /// Whether the model is a plain chain, which Keras summarizes as a Sequential one
    /// (no "Connected to" column): one input, one output, every call on one tensor, no
    /// layer called twice and no tensor read twice.
    fn chain_like(&self) -> bool {
        let mut reads: HashMap<(*const (), usize), usize> = HashMap::new();
        let mut layers = Vec::new();
        for call in &self.calls {
            let Node::Call { layer, inputs } = &*call.node else {
                continue;
            };
            if inputs.len() != 1 || layers.contains(&layer.ptr()) {
                return false;
            }
            layers.push(layer.ptr());
            *reads.entry((inputs[0].id(), inputs[0].index)).or_default() += 1;
        }
        self.inputs.len() == 1 && self.outputs.len() == 1 && reads.values().all(|&n| n == 1)
    }

    /// Keras's summary table: the inputs, then each layer with the output shape of its
    /// first call and its parameter count (and what it is connected to, for a model that
    /// is not a plain chain), then the totals.
    pub fn summary(&self) -> String {
        let connections = (!self.chain_like()).then(|| self.connections());
        let mut rows: Vec<summary::Row> = self
            .inputs
            .iter()
            .zip(self.input_names())
            .map(|(x, name)| summary::Row {
                title: format!("{name} (InputLayer)"),
                shape: Some(x.shape.clone()),
                params: Some(0),
                connected: connections.as_ref().map(|_| "-".to_string()),
            })
            .collect();
        for (l, shape) in self.layers.iter().zip(&self.layer_shapes) {
            if let Ok(l) = l.lock() {
                let mut row = summary::Row::of(l.as_ref(), Some(shape.clone()));
                row.connected = connections
                    .as_ref()
                    .map(|c| c.get(l.name()).cloned().unwrap_or_else(|| "-".into()));
                rows.push(row);
            }
        }
        let weights = self.weights();
        let optimizer = self
            .compiled
            .as_ref()
            .map(|_| self.net.optimizer_params(&weights));
        summary::summary(&self.name, &rows, &weights, optimizer)
    }

    /// Runs the model on one batch per input in inference mode; one tensor per output,
    /// in batches of `batch_size`.
    pub fn predict_many(&mut self, xs: &[Tensor], batch_size: usize) -> Result<Vec<Tensor>> {
        if xs.len() != self.inputs.len() {
            return Err(Error::invalid(format!(
                "model '{}' has {} inputs, but {} arrays were given",
                self.name,
                self.inputs.len(),
                xs.len()
            )));
        }
        let mut fed = Vec::with_capacity(xs.len());
        for ((x, input), name) in xs.iter().zip(&self.inputs).zip(self.input_names()) {
            fed.push(check_batch(x, &input.shape, input.dtype(), &name)?);
        }
        let n = fed[0].shape()[0];
        if fed.iter().any(|x| x.shape()[0] != n) {
            let sizes: Vec<usize> = fed.iter().map(|x| x.shape()[0]).collect();
            return Err(Error::invalid(format!(
                "Data cardinality is ambiguous: the inputs have {sizes:?} samples"
            )));
        }
        let step = self
            .net
            .session
            .make_callable(&self.placeholders, &self.output_ops, &[])?;
        let all: Vec<usize> = (0..n).collect();
        let mut parts: Vec<Vec<Tensor>> = vec![Vec::new(); self.output_ops.len()];
        for idx in all.chunks(batch_size.max(1)) {
            let batch = fed
                .iter()
                .map(|x| gather_rows(x, idx))
                .collect::<Result<Vec<_>>>()?;
            for (p, out) in parts
                .iter_mut()
                .zip(self.net.session.run_callable(&step, batch)?)
            {
                p.push(out);
            }
        }
        parts.iter().map(|p| trainer::stack_rows(p)).collect()
    }

    /// `model.predict(x)` for a model of one input and one output, in batches of 32.
    pub fn predict(&mut self, x: &Tensor) -> Result<Tensor> {
        self.single_io("predict")?;
        let x = self.net.check_input(x, &self.first_layer_name())?;
        if self.predict_step.is_none() {
            let net = &self.net;
            self.predict_step = Some(net.session.make_callable(
                &[net.input],
                &[net.output],
                &[],
            )?);
        }
        let step = self.predict_step.as_ref().expect("made above");
        trainer::predict(&self.net, step, &x, 32)
    }

    fn input_names(&self) -> Vec<String> {
        self.inputs
            .iter()
            .map(|x| match &*x.node {
                Node::Input { name, .. } => name.clone(),
                Node::Call { layer, .. } => layer.name(),
            })
            .collect()
    }

    /// An error unless the model has one input and one output (what `predict` on one
    /// array takes).
    fn single_io(&self, what: &str) -> Result<()> {
        if self.inputs.len() == 1 && self.outputs.len() == 1 {
            return Ok(());
        }
        Err(Error::invalid(format!(
            "{what} on model '{}' with {} inputs and {} outputs takes one array: use \
             predict_many",
            self.name,
            self.inputs.len(),
            self.outputs.len()
        )))
    }

    /// Configures training (`model.compile(optimizer, loss, metrics)`), with the same
    /// trainer as `Sequential`; a model of several outputs uses `loss` and `metrics` for
    /// each of them (see [`Model::compile_outputs`]).
    pub fn compile<M: IntoMetric>(
        &mut self,
        optimizer: impl IntoOptimizer,
        loss: impl IntoLoss,
        metrics: impl IntoIterator<Item = M>,
    ) -> Result<()> {
        let metrics: Vec<M> = metrics.into_iter().collect();
        self.compile_outputs(
            optimizer,
            PerOutput::All(loss),
            PerOutput::All(1.0),
            PerOutput::All(metrics),
        )
    }

    /// Configures training of a model of several outputs, as Keras's `compile` with a
    /// loss, loss weight and metrics list per output: each given for all outputs
    /// ([`PerOutput::All`]), by position or by output name (the output layer's name).
    /// The training loss is the weighted sum of the outputs' losses; the logs are
    /// `loss`, `<output>_loss` and `<output>_<metric>`, as Keras 3 names them.
    pub fn compile_outputs<L: IntoLoss, M: IntoMetric>(
        &mut self,
        optimizer: impl IntoOptimizer,
        losses: PerOutput<L>,
        loss_weights: PerOutput<f64>,
        metrics: PerOutput<Vec<M>>,
    ) -> Result<()> {
        let names = self.output_names();
        let optimizer = optimizer.into_optimizer()?;
        let losses = losses.map(IntoLoss::into_loss).transpose()?.resolve(
            &names,
            "loss",
            None::<fn() -> Loss>,
        )?;
        let weights = loss_weights.resolve(&names, "loss_weights", Some(|| 1.0))?;
        let metrics = metrics
            .map(|ms| {
                ms.into_iter()
                    .map(IntoMetric::into_metric)
                    .collect::<Result<Vec<_>>>()
            })
            .transpose()?
            .resolve(&names, "metrics", Some(Vec::new))?;
        let specs = names
            .into_iter()
            .zip(losses)
            .zip(weights)
            .zip(metrics)
            .map(|(((name, loss), weight), metrics)| HeadSpec {
                name,
                loss,
                weight,
                metrics,
            })
            .collect();
        let trainable: Vec<Weight> = self.weights().into_iter().filter(|w| w.trainable).collect();
        self.compiled = None;
        self.compiled = Some(trainer::compile(
            &mut self.net,
            &trainable,
            optimizer,
            specs,
        )?);
        Ok(())
    }

    /// The outputs' names: each output layer's name (Keras's keys for per-output losses
    /// and logs).
    pub fn output_names(&self) -> Vec<String> {
        self.outputs
            .iter()
            .map(|t| match &*t.node {
                Node::Input { name, .. } => name.clone(),
                Node::Call { layer, .. } => layer.name(),
            })
            .collect()
    }

    /// Trains a model of several inputs or outputs (`model.fit([x1, x2], [y1, y2])`):
    /// one array per input and one target per output, in the model's order.
    pub fn fit_outputs(
        &mut self,
        xs: &[Tensor],
        ys: &[Tensor],
        options: FitOptions<'_>,
    ) -> Result<History> {
        trainer::fit(self, xs, ys, options)
    }

    /// `model.fit(dataset, epochs=...)`: trains on the `(x, y)` batches of a [`Dataset`]
    /// (`x` a tensor or a tuple of one per input, `y` one per output, in the model's
    /// order), one pass per epoch.
    pub fn fit_dataset(&mut self, ds: &Dataset, options: FitOptions<'_>) -> Result<History> {
        trainer::fit_dataset(self, ds, options)
    }

    /// `model.evaluate(dataset)`: the loss and metrics over a dataset's `(x, y)` batches.
    pub fn evaluate_dataset(&mut self, ds: &Dataset) -> Result<Logs> {
        trainer::evaluate_dataset(self, ds)
    }

    /// `model.evaluate([x1, ...], [y1, ...])` for a model of several inputs or outputs.
    pub fn evaluate_outputs(&mut self, xs: &[Tensor], ys: &[Tensor]) -> Result<Logs> {
        trainer::evaluate(self, xs, ys, 32, 0)
    }

    /// `model.train_on_batch([x1, ...], [y1, ...])` for a model of several inputs or
    /// outputs.
    pub fn train_on_batch_outputs(&mut self, xs: &[Tensor], ys: &[Tensor]) -> Result<Logs> {
        trainer::train_on_batch(self, xs, ys)
    }

    /// Trains a model of one input (`model.fit(x, y, ...)`).
    pub fn fit(&mut self, x: &Tensor, y: &Tensor, options: FitOptions<'_>) -> Result<History> {
        trainer::fit(
            self,
            std::slice::from_ref(x),
            std::slice::from_ref(y),
            options,
        )
    }

    /// Trains a model of several inputs (`model.fit([x1, x2], y, ...)`): one array per
    /// input, in the model's order.
    pub fn fit_many(
        &mut self,
        xs: &[Tensor],
        y: &Tensor,
        options: FitOptions<'_>,
    ) -> Result<History> {
        trainer::fit(self, xs, std::slice::from_ref(y), options)
    }

    /// `model.evaluate(x, y)`: the loss and metrics over all samples.
    pub fn evaluate(&mut self, x: &Tensor, y: &Tensor) -> Result<Logs> {
        trainer::evaluate(
            self,
            std::slice::from_ref(x),
            std::slice::from_ref(y),
            32,
            0,
        )
    }

    /// `model.evaluate([x1, x2], y)` for a model of several inputs.
    pub fn evaluate_many(&mut self, xs: &[Tensor], y: &Tensor) -> Result<Logs> {
        trainer::evaluate(self, xs, std::slice::from_ref(y), 32, 0)
    }

    /// `model.train_on_batch(x, y)`.
    pub fn train_on_batch(&mut self, x: &Tensor, y: &Tensor) -> Result<Logs> {
        trainer::train_on_batch(self, std::slice::from_ref(x), std::slice::from_ref(y))
    }

    /// `model.train_on_batch([x1, x2], y)` for a model of several inputs.
    pub fn train_on_batch_many(&mut self, xs: &[Tensor], y: &Tensor) -> Result<Logs> {
        trainer::train_on_batch(self, xs, std::slice::from_ref(y))
    }

    /// The graph inputs' names and placeholders, and the inference outputs (what
    /// [`Model::save`] signs).
    pub(crate) fn serving_ends(&self) -> (Vec<String>, &[Output], &[Output]) {
        (self.input_names(), &self.placeholders, &self.output_ops)
    }

    /// The network (graph and session).
    pub(crate) fn network(&self) -> &Network {
        &self.net
    }

    /// The compiled training state, once compiled.
    pub(crate) fn compiled(&self) -> Option<&Compiled> {
        self.compiled.as_ref()
    }

    /// Sets every variable the checkpoint holds (weights and optimizer state).
    pub(crate) fn restore(&mut self, reader: &crate::saved_model::BundleReader) -> Result<()> {
        self.net.restore(reader)?;
        if let Some(c) = self.compiled.as_mut() {
            c.reload_iterations(&self.net)?;
        }
        Ok(())
    }

    fn compiled_parts(&self) -> Result<(&Network, &Compiled)> {
        let c = self.compiled.as_ref().ok_or_else(not_compiled)?;
        Ok((&self.net, c))
    }
}

/// Something given for each output of a model (a loss, a loss weight, metrics), as
/// Keras's `compile` takes it: one for all outputs, a list in the outputs' order, or by
/// output name.
#[derive(Clone, Debug)]
pub enum PerOutput<T> {
    /// The same for every output.
    All(T),
    /// One per output, in the model's order.
    List(Vec<T>),
    /// By output name (the output layer's name); outputs not named get the default
    /// (loss weight 1, no metrics; a loss must be given for each).
    Named(Vec<(String, T)>),
}

impl<T> PerOutput<T> {
    /// Applies `f` to each value.
    fn map<U>(self, mut f: impl FnMut(T) -> U) -> PerOutput<U> {
        match self {
            PerOutput::All(v) => PerOutput::All(f(v)),
            PerOutput::List(v) => PerOutput::List(v.into_iter().map(f).collect()),
            PerOutput::Named(v) => {
                PerOutput::Named(v.into_iter().map(|(n, x)| (n, f(x))).collect())
            }
        }
    }

    /// One value per output name; `default` for outputs a [`PerOutput::Named`] leaves
    /// out (an error when there is none). `what` names the argument in errors.
    fn resolve(
        self,
        names: &[String],
        what: &str,
        default: Option<impl Fn() -> T>,
    ) -> Result<Vec<T>>
    where
        T: Clone,
    {
        match self {
            PerOutput::All(v) => Ok(vec![v; names.len()]),
            PerOutput::List(v) if v.len() == names.len() => Ok(v),
            PerOutput::List(v) => Err(Error::invalid(format!(
                "`{what}` has {} entries, but the model has {} outputs {names:?}",
                v.len(),
                names.len()
            ))),
            PerOutput::Named(v) => {
                if let Some((n, _)) = v.iter().find(|(n, _)| !names.contains(n)) {
                    return Err(Error::invalid(format!(
                        "`{what}` names output '{n}', but the model's outputs are {names:?}"
                    )));
                }
                names
                    .iter()
                    .map(|name| match v.iter().find(|(n, _)| n == name) {
                        Some((_, x)) => Ok(x.clone()),
                        None => default.as_ref().map(|d| d()).ok_or_else(|| {
                            Error::invalid(format!("`{what}` gives nothing for output '{name}'"))
                        }),
                    })
                    .collect()
            }
        }
    }
}

impl<T> PerOutput<Result<T>> {
    /// The values, or the first error.
    fn transpose(self) -> Result<PerOutput<T>> {
        Ok(match self {
            PerOutput::All(v) => PerOutput::All(v?),
            PerOutput::List(v) => PerOutput::List(v.into_iter().collect::<Result<_>>()?),
            PerOutput::Named(v) => PerOutput::Named(
                v.into_iter()
                    .map(|(n, x)| x.map(|x| (n, x)))
                    .collect::<Result<_>>()?,
            ),
        })
    }
}

fn not_compiled() -> Error {
    Error::FailedPrecondition(
        "You must call `compile()` before using the model (fit, evaluate, train_on_batch)".into(),
    )
}

/// Appends the calls `t` needs, after the calls they need, once each.
fn order(
    t: &KerasTensor,
    inputs: &HashSet<*const Node>,
    seen: &mut HashSet<*const Node>,
    calls: &mut Vec<KerasTensor>,
) -> Result<()> {
    if !seen.insert(t.ptr()) {
        return Ok(());
    }
    match &*t.node {
        Node::Input { name, .. } if !inputs.contains(&t.ptr()) => Err(Error::invalid(format!(
            "Graph disconnected: cannot obtain value for tensor of input '{name}' (shape {}): \
             it is not among the model's inputs",
            format_shape(&t.shape)
        ))),
        Node::Input { .. } => Ok(()),
        Node::Call { inputs: xs, .. } => {
            for x in xs {
                order(x, inputs, seen, calls)?;
            }
            calls.push(t.clone());
            Ok(())
        }
    }
}

/// The graph tensor made for symbolic tensor `x` (its call made first).
fn value(values: &HashMap<*const Node, Vec<Output>>, x: &KerasTensor) -> Result<Output> {
    values
        .get(&x.ptr())
        .and_then(|ys| ys.get(x.index))
        .copied()
        .ok_or_else(|| {
            Error::Internal(format!(
                "tensor {x:?} (output {}) was not made before its use",
                x.index
            ))
        })
}

/// The calls of a model and the placeholders of its inputs.
struct ModelCalls<'a> {
    inputs: &'a [KerasTensor],
    placeholders: &'a [Output],
    calls: &'a [KerasTensor],
}

impl ModelCalls<'_> {
    /// Builds the layers not built yet and adds every call to `g`, in inference or
    /// training mode.
    fn forward(
        &mut self,
        g: &mut Graph,
        outputs: &[KerasTensor],
        training: bool,
    ) -> Result<Forward> {
        let mut ctx = CallContext::new(training);
        let mut values: HashMap<*const Node, Vec<Output>> = self
            .inputs
            .iter()
            .map(KerasTensor::ptr)
            .zip(self.placeholders.iter().map(|&p| vec![p]))
            .collect();
        let mut shapes = HashMap::new();
        for call in self.calls {
            let Node::Call { layer, inputs } = &*call.node else {
                continue;
            };
            let xs: Vec<Output> = inputs
                .iter()
                .map(|x| value(&values, x))
                .collect::<Result<_>>()?;
            let in_shapes: Vec<Shape> = inputs.iter().map(|x| x.shape.clone()).collect();
            let mut l = layer.lock()?;
            if !l.built() {
                l.build_multi(g, &in_shapes)?;
            }
            let ys = l.call_outputs(g, &xs, &mut ctx)?;
            shapes
                .entry(layer.ptr())
                .or_insert_with(|| call.shape.clone());
            values.insert(call.ptr(), ys);
        }
        Ok(Forward {
            outputs: outputs
                .iter()
                .map(|o| value(&values, o))
                .collect::<Result<_>>()?,
            updates: ctx.updates,
            losses: ctx.losses,
            shapes,
        })
    }
}

impl Trainable for Model {
    fn parts(&mut self) -> Result<(&mut Network, &mut Compiled)> {
        let c = self.compiled.as_mut().ok_or_else(not_compiled)?;
        Ok((&mut self.net, c))
    }

    fn ensure_built(&mut self, _x: &Tensor) -> Result<()> {
        self.compiled.as_ref().map(|_| ()).ok_or_else(not_compiled)
    }

    fn first_layer_name(&self) -> String {
        self.input_names().remove(0)
    }
}

impl CallbackModel for Model {
    fn get_weights(&self) -> Result<Vec<Tensor>> {
        Model::get_weights(self)
    }

    fn set_weights(&mut self, weights: &[Tensor]) -> Result<()> {
        Model::set_weights(self, weights)
    }

    fn learning_rate(&self) -> Result<f64> {
        let (net, c) = self.compiled_parts()?;
        c.learning_rate(net)
    }

    fn set_learning_rate(&mut self, lr: f64) -> Result<()> {
        let (net, c) = self.compiled_parts()?;
        c.set_learning_rate(net, lr)
    }

    fn stop_training(&mut self) {
        self.net.stop_training = true;
    }

    fn save(&self, dir: &Path) -> Result<()> {
        Model::save(self, dir)
    }

    fn named_weights(&self) -> Result<Vec<(String, Tensor)>> {
        let weights = self.weights();
        let values = self.net.read(&weights)?;
        Ok(weights.into_iter().map(|w| w.path).zip(values).collect())
    }

    fn graph(&self) -> Option<&Graph> {
        Some(&self.net.graph)
    }
}

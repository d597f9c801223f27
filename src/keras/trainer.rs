//! `compile`, `fit`, `evaluate`, `predict` and `train_on_batch` over a built network.
//!
//! `compile` appends the loss, the metrics' batch statistics, the gradients and the
//! optimizer's updates to the model's graph once; every step then feeds one batch into
//! a prepared session callable (no graph work per step), as a hand-written TensorFlow 1
//! loop does.

use crate::data::{Cardinality, Dataset, Element};
use crate::graph::{NodeId, Output};
use crate::keras::callbacks::{Callback, CallbackModel, History, Logs};
use crate::keras::layer::{next_seed, Shape, Weight};
use crate::keras::losses::Loss;
use crate::keras::metrics::{Metric, NamedMetric};
use crate::keras::network::Network;
use crate::keras::optimizers::Optimizer;
use crate::keras::progress::Progress;
use crate::session::Callable;
use crate::tensor::rows::gather_rows;
use crate::tensor::{DType, Tensor};
use crate::{Error, Result};
use serde_json::Value;

/// One output's part of training: its loss, metrics and target.
struct Head {
    /// The output's name (its layer's).
    name: String,
    /// The weight of its loss in the total.
    weight: f64,
    /// Prefix of its logs: `<output layer>_` when the model has several outputs, else
    /// empty.
    prefix: String,
    loss: Loss,
    /// Log name and concrete metric, with how many statistics each adds.
    metrics: Vec<(String, Metric, usize)>,
    target_dtype: DType,
    output_shape: Shape,
}

/// What `compile` asks of one output: its name (the output layer's), loss, loss weight
/// and metrics.
pub(crate) struct HeadSpec {
    pub name: String,
    pub loss: Loss,
    pub weight: f64,
    pub metrics: Vec<NamedMetric>,
}

/// An output's name, loss, loss weight and metrics (as a `compile_config` lists them).
pub(crate) type OutputSettings<'a> = (&'a str, &'a Loss, f64, Vec<Value>);

/// A compiled model's training graph and prepared steps.
pub(crate) struct Compiled {
    pub optimizer: Optimizer,
    heads: Vec<Head>,
    train_step: Callable,
    eval_step: Callable,
    /// Steps run so far (the optimizer's `iteration`).
    iterations: u64,
}

/// The total loss (each output's mean loss times its weight, plus the layers'
/// penalties) and, for a model of several outputs, each output's own loss.
fn losses(
    g: &mut crate::Graph,
    specs: &[HeadSpec],
    targets: &[Output],
    outputs: &[Output],
    layer_losses: &[Output],
) -> Result<(Output, Vec<Output>)> {
    let mut per = Vec::with_capacity(specs.len());
    let mut total: Option<Output> = None;
    for ((spec, &target), &output) in specs.iter().zip(targets).zip(outputs) {
        let l = spec.loss.mean(g, target, output)?;
        per.push(l);
        let weighted = if spec.weight == 1.0 {
            l
        } else {
            let w = g.scalar_like(g.dtype(l), spec.weight)?;
            g.mul(l, w)?
        };
        total = Some(match total {
            None => weighted,
            Some(t) => g.add(t, weighted)?,
        });
    }
    let mut total =
        total.ok_or_else(|| Error::Internal("compile: a model without outputs".into()))?;
    // The layers' penalties (regularization) count in the loss of training and of
    // evaluation alike, as Keras reports them.
    for &extra in layer_losses {
        total = g.add(total, extra)?;
    }
    if specs.len() == 1 {
        per.clear();
    }
    Ok((total, per))
}

/// Appends the training graph for each output's loss and metrics to `net` (one
/// [`HeadSpec`] per output, in order), with `optimizer` updating `trainable`.
pub(crate) fn compile(
    net: &mut Network,
    trainable: &[Weight],
    mut optimizer: Optimizer,
    specs: Vec<HeadSpec>,
) -> Result<Compiled> {
    let outputs = net.heads();
    if specs.len() != outputs.len() {
        return Err(Error::Internal(format!(
            "compile: {} loss specs for {} outputs",
            specs.len(),
            outputs.len()
        )));
    }
    let several = specs.len() > 1;
    let g = &mut net.graph;
    let mut targets = Vec::with_capacity(specs.len());
    for (i, (spec, (_, _, shape))) in specs.iter().zip(&outputs).enumerate() {
        let (dtype, target_shape) = spec.loss.target_spec(shape);
        let name = if several {
            format!("target_{i}")
        } else {
            "target".to_string()
        };
        targets.push(g.placeholder(dtype, target_shape, &name)?);
    }
    let train_outputs: Vec<Output> = outputs.iter().map(|o| o.1).collect();
    let eval_outputs: Vec<Output> = outputs.iter().map(|o| o.0).collect();
    let same = train_outputs == eval_outputs;
    let layer_losses = net.layer_losses.clone();
    let (train_loss, train_per) = g.name_scope("loss", |g| {
        losses(g, &specs, &targets, &train_outputs, &layer_losses)
    })?;
    let (eval_loss, eval_per) = if same {
        (train_loss, train_per.clone())
    } else {
        g.name_scope("eval_loss", |g| {
            losses(g, &specs, &targets, &eval_outputs, &layer_losses)
        })?
    };
    let mut train_fetches = vec![train_loss];
    train_fetches.extend(train_per);
    let mut eval_fetches = vec![eval_loss];
    eval_fetches.extend(eval_per);
    let mut heads = Vec::with_capacity(specs.len());
    for (((spec, &target), (out, train_out, shape)), _) in
        specs.into_iter().zip(&targets).zip(outputs).zip(0..)
    {
        let units = shape.last().copied().flatten();
        let prefix = if several {
            format!("{}_", spec.name)
        } else {
            String::new()
        };
        let mut metrics = Vec::new();
        for m in &spec.metrics {
            let metric = m.metric.resolve(&spec.loss, units);
            let scope = format!("{prefix}{}", m.name);
            let stats = g.name_scope(&scope, |g| metric.statistics(g, target, train_out))?;
            let eval_stats = if same {
                stats.clone()
            } else {
                g.name_scope(&scope, |g| metric.statistics(g, target, out))?
            };
            metrics.push((m.name.clone(), metric, stats.len()));
            train_fetches.extend(stats);
            eval_fetches.extend(eval_stats);
        }
        heads.push(Head {
            name: spec.name,
            weight: spec.weight,
            prefix,
            target_dtype: g.dtype(target),
            loss: spec.loss,
            metrics,
            output_shape: shape,
        });
    }
    let vars: Vec<_> = trainable.iter().map(|w| w.var).collect();
    let xs: Vec<Output> = vars.iter().map(|v| v.var).collect();
    let grads = g.gradients(&[train_loss], &xs)?;
    let grads_and_vars: Vec<_> = grads.into_iter().zip(vars).collect();
    // A model without trainable weights trains nothing, as in Keras (the step counter
    // still advances).
    let mut train_op: NodeId = if grads_and_vars.iter().any(|(gr, _)| gr.is_some()) {
        optimizer.apply(g, &grads_and_vars)?
    } else {
        optimizer.count_step(g)?
    };
    if !net.updates.is_empty() {
        let mut deps = net.updates.clone();
        deps.push(train_op);
        train_op = g.group(&deps, "train_step")?;
    }
    net.sync()?;
    let mut feeds = net.inputs();
    feeds.extend(targets);
    let train_step = net
        .session
        .make_callable(&feeds, &train_fetches, &[train_op])?;
    let eval_step = net.session.make_callable(&feeds, &eval_fetches, &[])?;
    let mut compiled = Compiled {
        optimizer,
        heads,
        train_step,
        eval_step,
        iterations: 0,
    };
    compiled.reload_iterations(net)?;
    Ok(compiled)
}

impl Compiled {
    /// Each output's name, loss, loss weight and metrics as a `compile_config` lists them,
    /// as compiled.
    pub fn outputs(&self) -> Vec<OutputSettings<'_>> {
        self.heads
            .iter()
            .map(|h| {
                let metrics = h
                    .metrics
                    .iter()
                    .map(|(name, metric, _)| {
                        let m = NamedMetric {
                            metric: metric.clone(),
                            name: name.clone(),
                        };
                        m.to_json()
                    })
                    .collect();
                (h.name.as_str(), &h.loss, h.weight, metrics)
            })
            .collect()
    }

    /// The learning-rate variable's node name.
    fn lr_name(&self, net: &Network) -> String {
        let (_, lr) = self.optimizer.variables().expect("built by compile");
        net.graph.node(lr.var.node).name().to_string()
    }

    /// The optimizer's current learning rate.
    pub fn learning_rate(&self, net: &Network) -> Result<f64> {
        Ok(net.read_var(&self.lr_name(net))?.scalar_value::<f32>()? as f64)
    }

    /// Sets the learning rate from the host.
    pub fn set_learning_rate(&self, net: &Network, lr: f64) -> Result<()> {
        net.write_var(&self.lr_name(net), Tensor::scalar(lr as f32))
    }

    /// Reads the optimizer's step counter back from the session (after a restore).
    pub fn reload_iterations(&mut self, net: &Network) -> Result<()> {
        let (iteration, _) = self.optimizer.variables().expect("built by compile");
        let name = net.graph.node(iteration.var.node).name().to_string();
        self.iterations = net.read_var(&name)?.scalar_value::<i64>()? as u64;
        Ok(())
    }
}

/// Running sums of the losses (the total, then each output's when there are several)
/// and the metrics' statistics over the batches of a pass.
struct Totals {
    samples: f64,
    losses: Vec<f64>,
    stats: Vec<Vec<f64>>,
}

impl Totals {
    fn new(c: &Compiled) -> Totals {
        let losses = if c.heads.len() > 1 {
            1 + c.heads.len()
        } else {
            1
        };
        Totals {
            samples: 0.0,
            losses: vec![0.0; losses],
            stats: vec![Vec::new(); c.heads.iter().flat_map(|h| &h.metrics).map(|m| m.2).sum()],
        }
    }

    fn add(&mut self, batch: usize, out: &[Tensor]) -> Result<()> {
        self.samples += batch as f64;
        let k = self.losses.len();
        for (l, t) in self.losses.iter_mut().zip(out) {
            *l += t.scalar_value::<f32>()? as f64 * batch as f64;
        }
        for (s, t) in self.stats.iter_mut().zip(&out[k..]) {
            let v = t.to_f64_vec();
            if s.is_empty() {
                *s = v;
            } else if s.len() == v.len() {
                s.iter_mut().zip(v).for_each(|(s, v)| *s += v);
            } else {
                return Err(Error::invalid(format!(
                    "a metric statistic changed size between batches: {} vs {}",
                    s.len(),
                    v.len()
                )));
            }
        }
        Ok(())
    }

    /// The logs (`loss`, then `<output>_loss` and `<output>_<metric>` for a model of
    /// several outputs), each value rounded to float32 as Keras's metrics hold it.
    fn logs(&self, c: &Compiled, prefix: &str) -> Logs {
        let mut logs = Logs::new();
        let f32v = |v: f64| v as f32 as f64;
        let n = self.samples.max(1.0);
        logs.insert(format!("{prefix}loss"), f32v(self.losses[0] / n));
        if self.losses.len() > 1 {
            for (h, l) in c.heads.iter().zip(&self.losses[1..]) {
                logs.insert(format!("{prefix}{}loss", h.prefix), f32v(l / n));
            }
        }
        let mut at = 0;
        for h in &c.heads {
            for (name, metric, n) in &h.metrics {
                let value = metric.result(&self.stats[at..at + n]);
                logs.insert(format!("{prefix}{}{name}", h.prefix), f32v(value));
                at += n;
            }
        }
        logs
    }
}

/// A model `fit` and friends can drive: its network, its compiled state, and what
/// callbacks may do to it.
pub(crate) trait Trainable: CallbackModel {
    /// The network and compiled state, or an error when not built or not compiled.
    fn parts(&mut self) -> Result<(&mut Network, &mut Compiled)>;
    /// Builds the model for inputs shaped like `x` if it is not built yet.
    fn ensure_built(&mut self, x: &Tensor) -> Result<()>;
    /// Name of the first layer, for error messages about the input.
    fn first_layer_name(&self) -> String;
}

/// Checks the inputs `xs` (one array per model input) and the targets `ys` (one per
/// model output) against the model and converts them to what the graph is fed.
fn prepare(
    net: &Network,
    c: &Compiled,
    first: &str,
    xs: &[Tensor],
    ys: &[Tensor],
) -> Result<(Vec<Tensor>, Vec<Tensor>)> {
    let xs = net.check_inputs(xs, first)?;
    if ys.len() != c.heads.len() {
        return Err(Error::invalid(format!(
            "the model has {} outputs, but {} target arrays were given",
            c.heads.len(),
            ys.len()
        )));
    }
    let n = ys[0].shape().first();
    if ys.iter().any(|y| y.rank() == 0 || y.shape().first() != n)
        || xs.iter().any(|x| x.shape().first() != n)
    {
        let sizes = |ts: &[Tensor]| -> Vec<usize> {
            ts.iter()
                .filter_map(|t| t.shape().first().copied())
                .collect()
        };
        return Err(Error::invalid(format!(
            "Data cardinality is ambiguous: x sizes: {:?}, y sizes: {:?}. Make sure all \
             arrays contain the same number of samples.",
            sizes(&xs),
            sizes(ys)
        )));
    }
    let ys = c
        .heads
        .iter()
        .zip(ys)
        .map(|(h, y)| target(h, y))
        .collect::<Result<_>>()?;
    Ok((xs, ys))
}

/// `y` checked against an output's loss and cast to its target's dtype.
fn target(h: &Head, y: &Tensor) -> Result<Tensor> {
    let shape = h.loss.check_labels(&h.output_shape, y.shape())?;
    let mut y = y.reshape(&shape)?;
    if y.dtype() != h.target_dtype {
        if h.target_dtype == DType::Int32 && y.dtype().is_float() {
            let v = y.to_f64_vec();
            if v.iter().any(|l| l.fract() != 0.0) {
                return Err(Error::invalid(format!(
                    "loss '{}' needs integer class labels",
                    h.loss.name()
                )));
            }
        }
        y = y.cast(h.target_dtype)?;
    }
    Ok(y)
}

/// SplitMix64, for the batch order.
struct Shuffler(u64);

impl Shuffler {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut v: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
        v
    }
}

/// Arguments of `fit` besides the data, with Keras's defaults (1 epoch, batches of
/// 32, shuffled, `verbose` 1).
pub struct FitOptions<'a> {
    pub(crate) epochs: usize,
    pub(crate) initial_epoch: usize,
    pub(crate) batch_size: usize,
    pub(crate) validation_split: f64,
    pub(crate) validation_data: Option<Arrays>,
    pub(crate) shuffle: bool,
    pub(crate) verbose: u8,
    pub(crate) callbacks: Vec<&'a mut dyn Callback>,
}

impl Default for FitOptions<'_> {
    fn default() -> Self {
        FitOptions {
            epochs: 1,
            initial_epoch: 0,
            batch_size: 32,
            validation_split: 0.0,
            validation_data: None,
            shuffle: true,
            verbose: 1,
            callbacks: Vec::new(),
        }
    }
}

impl<'a> FitOptions<'a> {
    /// Keras's defaults.
    pub fn new() -> Self {
        Self::default()
    }
    /// Number of epochs (the last epoch's index + 1, as in Keras).
    pub fn epochs(mut self, epochs: usize) -> Self {
        self.epochs = epochs;
        self
    }
    /// The epoch to start at (to resume training).
    pub fn initial_epoch(mut self, epoch: usize) -> Self {
        self.initial_epoch = epoch;
        self
    }
    /// Samples per step (default 32).
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size;
        self
    }
    /// Holds out the last `fraction` of the samples (before shuffling) for validation.
    pub fn validation_split(mut self, fraction: f64) -> Self {
        self.validation_split = fraction;
        self
    }
    /// Validates on `(x, y)` after each epoch.
    pub fn validation_data(mut self, x: Tensor, y: Tensor) -> Self {
        self.validation_data = Some((vec![x], vec![y]));
        self
    }
    /// Validates on one array per model input and one target per output (a functional
    /// model of several inputs or outputs) after each epoch.
    pub fn validation_data_outputs(mut self, xs: Vec<Tensor>, ys: Vec<Tensor>) -> Self {
        self.validation_data = Some((xs, ys));
        self
    }
    /// Shuffle the training samples before each epoch (default true).
    pub fn shuffle(mut self, shuffle: bool) -> Self {
        self.shuffle = shuffle;
        self
    }
    /// 0 silent, 1 progress bar (one line per epoch when not on a terminal), 2 one line
    /// per epoch.
    pub fn verbose(mut self, verbose: u8) -> Self {
        self.verbose = verbose;
        self
    }
    /// Adds a callback.
    pub fn callback(mut self, callback: &'a mut dyn Callback) -> Self {
        self.callbacks.push(callback);
        self
    }
}

/// Runs one training step on a batch; returns the fetched loss and statistics.
fn train_step(
    net: &Network,
    c: &mut Compiled,
    mut feeds: Vec<Tensor>,
    ys: Vec<Tensor>,
) -> Result<Vec<Tensor>> {
    if c.optimizer.schedule().is_schedule() {
        let lr = c.optimizer.schedule().at(c.iterations);
        c.set_learning_rate(net, lr)?;
    }
    feeds.extend(ys);
    let out = net.session.run_callable(&c.train_step, feeds)?;
    c.iterations += 1;
    Ok(out)
}

/// `model.fit(x, y, ...)`: `xs` holds one array per model input, `ys` one per output.
pub(crate) fn fit<M: Trainable>(
    model: &mut M,
    xs: &[Tensor],
    ys: &[Tensor],
    mut opts: FitOptions<'_>,
) -> Result<History> {
    let x0 = xs
        .first()
        .ok_or_else(|| Error::invalid("fit: no input arrays"))?;
    model.ensure_built(x0)?;
    let first = model.first_layer_name();
    let (xs, ys, val) = {
        let (net, c) = model.parts()?;
        let (xs, ys) = prepare(net, c, &first, xs, ys)?;
        if !(0.0..1.0).contains(&opts.validation_split) {
            return Err(Error::invalid(format!(
                "validation_split must be in [0, 1), got {}",
                opts.validation_split
            )));
        }
        let val = match opts.validation_data.take() {
            Some((vx, vy)) => Some(prepare(net, c, &first, &vx, &vy)?),
            None if opts.validation_split > 0.0 => {
                let n = ys[0].shape()[0];
                let split = (n as f64 * (1.0 - opts.validation_split)).floor() as usize;
                let tail: Vec<usize> = (split..n).collect();
                let head: Vec<usize> = (0..split).collect();
                let rows = |idx: &[usize]| -> Result<(Vec<Tensor>, Vec<Tensor>)> {
                    Ok((take_rows(&xs, idx)?, take_rows(&ys, idx)?))
                };
                let val = rows(&tail)?;
                let (hx, hy) = rows(&head)?;
                return fit_prepared(model, Source::Arrays(hx, hy), Some(val), opts);
            }
            None => None,
        };
        (xs, ys, val)
    };
    fit_prepared(model, Source::Arrays(xs, ys), val, opts)
}

/// Rows `idx` of each array.
fn take_rows(arrays: &[Tensor], idx: &[usize]) -> Result<Vec<Tensor>> {
    arrays.iter().map(|a| gather_rows(a, idx)).collect()
}

/// Inputs and targets (one array per model input, one per output).
type Arrays = (Vec<Tensor>, Vec<Tensor>);

/// One batch: the inputs, the targets, and whether they were checked already.
type Batch = (Vec<Tensor>, Vec<Tensor>, bool);

/// Where `fit` takes its batches from.
enum Source<'d> {
    /// Checked arrays (one per model input, and one target per output), cut into
    /// batches (shuffled each epoch when asked).
    Arrays(Vec<Tensor>, Vec<Tensor>),
    /// A dataset of `(x, y)` batches, checked batch by batch.
    Dataset(&'d Dataset),
}

impl Source<'_> {
    /// Batches per epoch, when known.
    fn steps(&self, batch_size: usize) -> Option<usize> {
        match self {
            Source::Arrays(_, ys) => Some(ys[0].shape()[0].div_ceil(batch_size)),
            Source::Dataset(ds) => match ds.cardinality() {
                Cardinality::Finite(n) => Some(n),
                _ => None,
            },
        }
    }

    /// One epoch's batches: `(xs, y, checked)`.
    fn epoch(
        &self,
        batch_size: usize,
        order: Option<Vec<usize>>,
    ) -> Box<dyn Iterator<Item = Result<Batch>> + '_> {
        match self {
            Source::Arrays(xs, ys) => {
                let n = ys[0].shape()[0];
                let order = order.unwrap_or_else(|| (0..n).collect());
                Box::new((0..n.div_ceil(batch_size)).map(move |s| {
                    let idx = &order[s * batch_size..((s + 1) * batch_size).min(n)];
                    Ok((take_rows(xs, idx)?, take_rows(ys, idx)?, true))
                }))
            }
            Source::Dataset(ds) => Box::new(ds.iter().map(|e| {
                let (xs, ys) = xy_arrays(&e?)?;
                Ok((xs, ys, false))
            })),
        }
    }
}

fn fit_prepared<M: Trainable>(
    model: &mut M,
    source: Source<'_>,
    val: Option<Arrays>,
    mut opts: FitOptions<'_>,
) -> Result<History> {
    if let Source::Arrays(_, ys) = &source {
        if ys[0].shape()[0] == 0 {
            return Err(Error::invalid("fit: the training data has no samples"));
        }
    }
    if opts.batch_size == 0 {
        return Err(Error::invalid("fit: batch_size must be positive"));
    }
    let first = model.first_layer_name();
    let steps = source.steps(opts.batch_size);
    let mut rng = Shuffler(next_seed());
    let mut history = History::default();
    model.parts()?.0.stop_training = false;
    for cb in opts.callbacks.iter_mut() {
        cb.on_train_begin(model)?;
    }
    for epoch in opts.initial_epoch..opts.epochs {
        for cb in opts.callbacks.iter_mut() {
            cb.on_epoch_begin(epoch, model)?;
        }
        if opts.verbose > 0 {
            println!("Epoch {}/{}", epoch + 1, opts.epochs);
        }
        let order = match &source {
            Source::Arrays(_, ys) if opts.shuffle => Some(rng.permutation(ys[0].shape()[0])),
            _ => None,
        };
        let mut logs = {
            let (net, c) = model.parts()?;
            let progress = Progress::new(opts.verbose, steps);
            let mut totals = Totals::new(c);
            let mut done = 0;
            for batch in source.epoch(opts.batch_size, order) {
                let (bx, by, checked) = batch?;
                let (bx, by) = if checked {
                    (bx, by)
                } else {
                    prepare(net, c, &first, &bx, &by)?
                };
                let n = by[0].shape()[0];
                let out = train_step(net, c, bx, by)?;
                totals.add(n, &out)?;
                done += 1;
                if progress.draws_steps() {
                    progress.update(done, &totals.logs(c, ""));
                }
            }
            if done == 0 {
                return Err(Error::invalid("fit: the dataset yielded no batches"));
            }
            let mut logs = totals.logs(c, "");
            if let Some(val) = &val {
                logs.extend(evaluate_prepared(net, c, val, opts.batch_size, "val_")?);
            }
            progress.finish(&logs, done);
            logs
        };
        for cb in opts.callbacks.iter_mut() {
            cb.on_epoch_end(epoch, &mut logs, model)?;
        }
        history.record(epoch, &logs);
        if model.parts()?.0.stop_training {
            break;
        }
    }
    for cb in opts.callbacks.iter_mut() {
        cb.on_train_end(model)?;
    }
    Ok(history)
}

/// The inputs and targets of an `(x, y)` dataset element: `x` one tensor or a tuple of
/// one per model input, `y` one tensor or a tuple of one per output, in the model's
/// order.
fn xy_arrays(e: &Element) -> Result<Arrays> {
    let part = |e: &Element, what: &str| -> Result<Vec<Tensor>> {
        match e {
            Element::Tensor(t) => Ok(vec![t.clone()]),
            Element::Tuple(v) if !v.is_empty() => {
                v.iter().map(|e| Ok(e.tensor()?.clone())).collect()
            }
            other => Err(Error::invalid(format!(
                "fit: the dataset's {what} must be a tensor or a tuple of tensors (one per \
                 model {what}), got {}",
                other.kind()
            ))),
        }
    };
    match e {
        Element::Tuple(v) if v.len() == 2 => Ok((part(&v[0], "input")?, part(&v[1], "output")?)),
        other => Err(Error::invalid(format!(
            "expected an (x, y) tuple element, got {}",
            other.kind()
        ))),
    }
}

/// `model.fit(dataset, ...)`: trains on the `(x, y)` batches of `ds`, one pass per
/// epoch (`batch_size`, `shuffle` and `validation_split` are the dataset's business).
pub(crate) fn fit_dataset<M: Trainable>(
    model: &mut M,
    ds: &Dataset,
    mut opts: FitOptions<'_>,
) -> Result<History> {
    let first = ds
        .iter()
        .next()
        .ok_or_else(|| Error::invalid("fit: the dataset yielded no batches"))??;
    let (xs0, _) = xy_arrays(&first)?;
    model.ensure_built(&xs0[0])?;
    let name = model.first_layer_name();
    let val = match opts.validation_data.take() {
        Some((vx, vy)) => {
            let (net, c) = model.parts()?;
            Some(prepare(net, c, &name, &vx, &vy)?)
        }
        None => None,
    };
    fit_prepared(model, Source::Dataset(ds), val, opts)
}

/// `model.evaluate(dataset)`: the loss and metrics over the `(x, y)` batches of `ds`.
pub(crate) fn evaluate_dataset<M: Trainable>(model: &mut M, ds: &Dataset) -> Result<Logs> {
    let name = model.first_layer_name();
    let mut built = false;
    let mut totals = None;
    for e in ds {
        let (xs, ys) = xy_arrays(&e?)?;
        if !built {
            model.ensure_built(&xs[0])?;
            built = true;
        }
        let (net, c) = model.parts()?;
        let (mut feeds, ys) = prepare(net, c, &name, &xs, &ys)?;
        let n = ys[0].shape()[0];
        feeds.extend(ys);
        let out = net.session.run_callable(&c.eval_step, feeds)?;
        totals.get_or_insert_with(|| Totals::new(c)).add(n, &out)?;
    }
    let (_, c) = model.parts()?;
    let totals =
        totals.ok_or_else(|| Error::invalid("evaluate: the dataset yielded no batches"))?;
    Ok(totals.logs(c, ""))
}

fn evaluate_prepared(
    net: &Network,
    c: &Compiled,
    (xs, ys): &Arrays,
    batch_size: usize,
    prefix: &str,
) -> Result<Logs> {
    let n = ys[0].shape()[0];
    let mut totals = Totals::new(c);
    let all: Vec<usize> = (0..n).collect();
    for idx in all.chunks(batch_size.max(1)) {
        let mut feeds = take_rows(xs, idx)?;
        feeds.extend(take_rows(ys, idx)?);
        let out = net.session.run_callable(&c.eval_step, feeds)?;
        totals.add(idx.len(), &out)?;
    }
    Ok(totals.logs(c, prefix))
}

/// `model.evaluate(x, y, batch_size)`: the loss and metrics over all samples; `xs`
/// holds one array per model input, `ys` one per output.
pub(crate) fn evaluate<M: Trainable>(
    model: &mut M,
    xs: &[Tensor],
    ys: &[Tensor],
    batch_size: usize,
    verbose: u8,
) -> Result<Logs> {
    let x0 = xs
        .first()
        .ok_or_else(|| Error::invalid("evaluate: no input arrays"))?;
    model.ensure_built(x0)?;
    let first = model.first_layer_name();
    let (net, c) = model.parts()?;
    let data = prepare(net, c, &first, xs, ys)?;
    let steps = data.1[0].shape()[0].div_ceil(batch_size.max(1));
    let progress = Progress::new(verbose, Some(steps));
    let logs = evaluate_prepared(net, c, &data, batch_size, "")?;
    progress.finish(&logs, steps);
    Ok(logs)
}

/// `model.train_on_batch(x, y)`: one update; the batch's loss and metrics.
pub(crate) fn train_on_batch<M: Trainable>(
    model: &mut M,
    xs: &[Tensor],
    ys: &[Tensor],
) -> Result<Logs> {
    let x0 = xs
        .first()
        .ok_or_else(|| Error::invalid("train_on_batch: no input arrays"))?;
    model.ensure_built(x0)?;
    let first = model.first_layer_name();
    let (net, c) = model.parts()?;
    let (xs, ys) = prepare(net, c, &first, xs, ys)?;
    let n = ys[0].shape()[0];
    let out = train_step(net, c, xs, ys)?;
    let mut totals = Totals::new(c);
    totals.add(n, &out)?;
    Ok(totals.logs(c, ""))
}

/// `model.predict(x, batch_size)`: the outputs of all samples, run in batches.
pub(crate) fn predict(
    net: &Network,
    predict_step: &Callable,
    x: &Tensor,
    batch_size: usize,
) -> Result<Tensor> {
    let n = x.shape()[0];
    if n <= batch_size {
        return Ok(net
            .session
            .run_callable(predict_step, vec![x.clone()])?
            .remove(0));
    }
    let all: Vec<usize> = (0..n).collect();
    let parts = all
        .chunks(batch_size.max(1))
        .map(|idx| {
            Ok(net
                .session
                .run_callable(predict_step, vec![gather_rows(x, idx)?])?
                .remove(0))
        })
        .collect::<Result<Vec<_>>>()?;
    stack_rows(&parts)
}

/// Float32 batches stacked along the first axis.
pub(crate) fn stack_rows(parts: &[Tensor]) -> Result<Tensor> {
    let first = parts
        .first()
        .ok_or_else(|| Error::invalid("predict: no batches to stack"))?;
    let mut shape = first.shape().to_vec();
    shape[0] = parts.iter().map(|p| p.shape()[0]).sum();
    let mut data: Vec<f32> = Vec::with_capacity(shape.iter().product());
    for p in parts {
        data.extend_from_slice(p.as_slice::<f32>()?);
    }
    Tensor::new(&shape, data)
}

//! `compile`, `fit`, `evaluate`, `predict` and `train_on_batch` over a built network.
//!
//! `compile` appends the loss, the metrics' batch statistics, the gradients and the
//! optimizer's updates to the model's graph once; every step then feeds one batch into
//! a prepared session callable (no graph work per step), as a hand-written TensorFlow 1
//! loop does.

use crate::data::{Cardinality, Dataset};
use crate::graph::{NodeId, Output};
use crate::keras::callbacks::{Callback, CallbackModel, History, Logs};
use crate::keras::layer::{next_seed, Weight};
use crate::keras::losses::Loss;
use crate::keras::metrics::{Metric, NamedMetric};
use crate::keras::network::Network;
use crate::keras::optimizers::Optimizer;
use crate::keras::progress::Progress;
use crate::session::Callable;
use crate::tensor::rows::gather_rows;
use crate::tensor::{DType, Tensor};
use crate::{Error, Result};

/// A compiled model's training graph and prepared steps.
pub(crate) struct Compiled {
    pub optimizer: Optimizer,
    pub loss: Loss,
    /// Log name and concrete metric, with how many statistics each adds.
    metrics: Vec<(String, Metric, usize)>,
    target_dtype: DType,
    train_step: Callable,
    eval_step: Callable,
    /// Steps run so far (the optimizer's `iteration`).
    iterations: u64,
}

/// Appends the training graph for `loss` and `metrics` to `net`, with `optimizer`
/// updating `trainable`.
pub(crate) fn compile(
    net: &mut Network,
    trainable: &[Weight],
    mut optimizer: Optimizer,
    loss: Loss,
    metric_specs: Vec<NamedMetric>,
) -> Result<Compiled> {
    let (target_dtype, target_shape) = loss.target_spec(&net.output_shape);
    let g = &mut net.graph;
    let target = g.placeholder(target_dtype, target_shape, "target")?;
    // The layers' penalties (regularization) count in the loss of training and of
    // evaluation alike, as Keras reports them.
    let total = |g: &mut crate::Graph, output: Output| -> Result<Output> {
        let mut total = loss.mean(g, target, output)?;
        for &extra in &net.layer_losses {
            total = g.add(total, extra)?;
        }
        Ok(total)
    };
    let train_loss = g.name_scope("loss", |g| total(g, net.train_output))?;
    let eval_loss = if net.train_output == net.output {
        train_loss
    } else {
        g.name_scope("eval_loss", |g| total(g, net.output))?
    };
    let units = net.output_shape.last().copied().flatten();
    let mut metrics = Vec::new();
    let mut train_fetches = vec![train_loss];
    let mut eval_fetches = vec![eval_loss];
    for spec in &metric_specs {
        let metric = spec.metric.resolve(&loss, units);
        let stats = g.name_scope(&spec.name, |g| {
            metric.statistics(g, target, net.train_output)
        })?;
        let eval_stats = if net.train_output == net.output {
            stats.clone()
        } else {
            g.name_scope(&spec.name, |g| metric.statistics(g, target, net.output))?
        };
        metrics.push((spec.name.clone(), metric, stats.len()));
        train_fetches.extend(stats);
        eval_fetches.extend(eval_stats);
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
    let train_step =
        net.session
            .make_callable(&[net.input, target], &train_fetches, &[train_op])?;
    let eval_step = net
        .session
        .make_callable(&[net.input, target], &eval_fetches, &[])?;
    let mut compiled = Compiled {
        optimizer,
        loss,
        metrics,
        target_dtype,
        train_step,
        eval_step,
        iterations: 0,
    };
    compiled.reload_iterations(net)?;
    Ok(compiled)
}

impl Compiled {
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

/// Running sums of the loss and the metrics' statistics over the batches of a pass.
struct Totals {
    samples: f64,
    loss: f64,
    stats: Vec<f64>,
}

impl Totals {
    fn new(c: &Compiled) -> Totals {
        Totals {
            samples: 0.0,
            loss: 0.0,
            stats: vec![0.0; c.metrics.iter().map(|m| m.2).sum()],
        }
    }

    fn add(&mut self, batch: usize, out: &[Tensor]) -> Result<()> {
        self.samples += batch as f64;
        self.loss += out[0].scalar_value::<f32>()? as f64 * batch as f64;
        for (s, t) in self.stats.iter_mut().zip(&out[1..]) {
            *s += t.scalar_value::<f32>()? as f64;
        }
        Ok(())
    }

    /// The logs, each value rounded to float32 as Keras's metrics hold it.
    fn logs(&self, c: &Compiled, prefix: &str) -> Logs {
        let mut logs = Logs::new();
        let f32v = |v: f64| v as f32 as f64;
        logs.insert(
            format!("{prefix}loss"),
            f32v(self.loss / self.samples.max(1.0)),
        );
        let mut at = 0;
        for (name, metric, n) in &c.metrics {
            let value = metric.result(&self.stats[at..at + n]);
            logs.insert(format!("{prefix}{name}"), f32v(value));
            at += n;
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

/// Checks `x` and `y` against the model and converts them to what the graph is fed.
fn prepare(
    net: &Network,
    c: &Compiled,
    first: &str,
    x: &Tensor,
    y: &Tensor,
) -> Result<(Tensor, Tensor)> {
    let x = net.check_input(x, first)?;
    if x.rank() == 0 || y.rank() == 0 || x.shape()[0] != y.shape()[0] {
        return Err(Error::invalid(format!(
            "Data cardinality is ambiguous: x sizes: {:?}, y sizes: {:?}. Make sure all arrays \
             contain the same number of samples.",
            x.shape().first(),
            y.shape().first()
        )));
    }
    let shape = c.loss.check_labels(&net.output_shape, y.shape())?;
    let mut y = y.reshape(&shape)?;
    if y.dtype() != c.target_dtype {
        if c.target_dtype == DType::Int32 && y.dtype().is_float() {
            let v = y.to_f64_vec();
            if v.iter().any(|l| l.fract() != 0.0) {
                return Err(Error::invalid(format!(
                    "loss '{}' needs integer class labels",
                    c.loss.name()
                )));
            }
        }
        y = y.cast(c.target_dtype)?;
    }
    Ok((x, y))
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
    pub(crate) validation_data: Option<(Tensor, Tensor)>,
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
        self.validation_data = Some((x, y));
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
fn train_step(net: &Network, c: &mut Compiled, bx: Tensor, by: Tensor) -> Result<Vec<Tensor>> {
    if c.optimizer.schedule().is_schedule() {
        let lr = c.optimizer.schedule().at(c.iterations);
        c.set_learning_rate(net, lr)?;
    }
    let out = net.session.run_callable(&c.train_step, vec![bx, by])?;
    c.iterations += 1;
    Ok(out)
}

/// `model.fit(x, y, ...)`.
pub(crate) fn fit<M: Trainable>(
    model: &mut M,
    x: &Tensor,
    y: &Tensor,
    mut opts: FitOptions<'_>,
) -> Result<History> {
    model.ensure_built(x)?;
    let first = model.first_layer_name();
    let (x, y, val) = {
        let (net, c) = model.parts()?;
        let (x, y) = prepare(net, c, &first, x, y)?;
        if !(0.0..1.0).contains(&opts.validation_split) {
            return Err(Error::invalid(format!(
                "validation_split must be in [0, 1), got {}",
                opts.validation_split
            )));
        }
        let val = match opts.validation_data.take() {
            Some((vx, vy)) => Some(prepare(net, c, &first, &vx, &vy)?),
            None if opts.validation_split > 0.0 => {
                let n = x.shape()[0];
                let split = (n as f64 * (1.0 - opts.validation_split)).floor() as usize;
                let tail: Vec<usize> = (split..n).collect();
                let head: Vec<usize> = (0..split).collect();
                let val = (gather_rows(&x, &tail)?, gather_rows(&y, &tail)?);
                let train = Source::Arrays(gather_rows(&x, &head)?, gather_rows(&y, &head)?);
                return fit_prepared(model, train, Some(val), opts);
            }
            None => None,
        };
        (x, y, val)
    };
    fit_prepared(model, Source::Arrays(x, y), val, opts)
}

/// Where `fit` takes its batches from.
enum Source<'d> {
    /// Checked arrays, cut into batches (shuffled each epoch when asked).
    Arrays(Tensor, Tensor),
    /// A dataset of `(x, y)` batches, checked batch by batch.
    Dataset(&'d Dataset),
}

impl Source<'_> {
    /// Batches per epoch, when known.
    fn steps(&self, batch_size: usize) -> Option<usize> {
        match self {
            Source::Arrays(x, _) => Some(x.shape()[0].div_ceil(batch_size)),
            Source::Dataset(ds) => match ds.cardinality() {
                Cardinality::Finite(n) => Some(n),
                _ => None,
            },
        }
    }

    /// One epoch's batches: `(x, y, checked)`.
    fn epoch(
        &self,
        batch_size: usize,
        order: Option<Vec<usize>>,
    ) -> Box<dyn Iterator<Item = Result<(Tensor, Tensor, bool)>> + '_> {
        match self {
            Source::Arrays(x, y) => {
                let n = x.shape()[0];
                let order = order.unwrap_or_else(|| (0..n).collect());
                Box::new((0..n.div_ceil(batch_size)).map(move |s| {
                    let idx = &order[s * batch_size..((s + 1) * batch_size).min(n)];
                    Ok((gather_rows(x, idx)?, gather_rows(y, idx)?, true))
                }))
            }
            Source::Dataset(ds) => Box::new(ds.iter().map(|e| {
                let e = e?;
                let (x, y) = e.pair()?;
                Ok((x.clone(), y.clone(), false))
            })),
        }
    }
}

fn fit_prepared<M: Trainable>(
    model: &mut M,
    source: Source<'_>,
    val: Option<(Tensor, Tensor)>,
    mut opts: FitOptions<'_>,
) -> Result<History> {
    if let Source::Arrays(x, _) = &source {
        if x.shape()[0] == 0 {
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
            Source::Arrays(x, _) if opts.shuffle => Some(rng.permutation(x.shape()[0])),
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
                let n = bx.shape()[0];
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
            if let Some((vx, vy)) = &val {
                logs.extend(evaluate_prepared(net, c, vx, vy, opts.batch_size, "val_")?);
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
    let (x0, _) = first.pair()?;
    model.ensure_built(x0)?;
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
        let e = e?;
        let (x, y) = e.pair()?;
        if !built {
            model.ensure_built(x)?;
            built = true;
        }
        let (net, c) = model.parts()?;
        let (x, y) = prepare(net, c, &name, x, y)?;
        let n = x.shape()[0];
        let out = net.session.run_callable(&c.eval_step, vec![x, y])?;
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
    x: &Tensor,
    y: &Tensor,
    batch_size: usize,
    prefix: &str,
) -> Result<Logs> {
    let n = x.shape()[0];
    let mut totals = Totals::new(c);
    let all: Vec<usize> = (0..n).collect();
    for idx in all.chunks(batch_size.max(1)) {
        let out = net.session.run_callable(
            &c.eval_step,
            vec![gather_rows(x, idx)?, gather_rows(y, idx)?],
        )?;
        totals.add(idx.len(), &out)?;
    }
    Ok(totals.logs(c, prefix))
}

/// `model.evaluate(x, y, batch_size)`: the loss and metrics over all samples.
pub(crate) fn evaluate<M: Trainable>(
    model: &mut M,
    x: &Tensor,
    y: &Tensor,
    batch_size: usize,
    verbose: u8,
) -> Result<Logs> {
    model.ensure_built(x)?;
    let first = model.first_layer_name();
    let (net, c) = model.parts()?;
    let (x, y) = prepare(net, c, &first, x, y)?;
    let steps = x.shape()[0].div_ceil(batch_size.max(1));
    let progress = Progress::new(verbose, Some(steps));
    let logs = evaluate_prepared(net, c, &x, &y, batch_size, "")?;
    progress.finish(&logs, steps);
    Ok(logs)
}

/// `model.train_on_batch(x, y)`: one update; the batch's loss and metrics.
pub(crate) fn train_on_batch<M: Trainable>(model: &mut M, x: &Tensor, y: &Tensor) -> Result<Logs> {
    model.ensure_built(x)?;
    let first = model.first_layer_name();
    let (net, c) = model.parts()?;
    let (x, y) = prepare(net, c, &first, x, y)?;
    let n = x.shape()[0];
    let out = train_step(net, c, x, y)?;
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

//! Callbacks for `fit` (`keras.callbacks`): `EarlyStopping`, `ModelCheckpoint`,
//! `ReduceLROnPlateau`, `LearningRateScheduler`, `CSVLogger`, `TensorBoard`, the
//! [`History`] `fit` returns, and the [`Callback`] trait for your own.

use crate::graph::Graph;
use crate::tensor::Tensor;
use crate::{Error, Result};
use serde_json::json;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

pub use super::tensorboard::TensorBoard;

/// Metric values by name (`loss`, `accuracy`, `val_loss`, …), sorted as Keras logs them.
pub type Logs = BTreeMap<String, f64>;

/// What a callback may do to the model being trained.
pub trait CallbackModel {
    /// The weights in Keras's order.
    fn get_weights(&self) -> Result<Vec<Tensor>>;
    /// Sets the weights in Keras's order.
    fn set_weights(&mut self, weights: &[Tensor]) -> Result<()>;
    /// The optimizer's current learning rate.
    fn learning_rate(&self) -> Result<f64>;
    /// Sets the optimizer's learning rate (from the next step on).
    fn set_learning_rate(&mut self, lr: f64) -> Result<()>;
    /// Ends training after the current epoch (`model.stop_training = True`).
    fn stop_training(&mut self);
    /// Saves the model (`model.save`).
    fn save(&self, dir: &Path) -> Result<()>;
    /// Each weight's path (`dense/kernel`) and value, in Keras's order.
    fn named_weights(&self) -> Result<Vec<(String, Tensor)>>;
    /// The graph the model runs in, once built.
    fn graph(&self) -> Option<&Graph>;

    /// Saves the weights alone (no optimizer state, no config) as a TensorFlow checkpoint
    /// at `prefix` (`prefix.index` and `prefix.data-00000-of-00001`), keyed by position
    /// as tf.keras's `model.save_weights(prefix)` keys its TensorFlow-format checkpoints
    /// (`layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE`), so any model of the
    /// same architecture loads them whatever its layers are named.
    fn save_weights(&self, prefix: &Path) -> Result<()> {
        let named = self.named_weights()?;
        let keys = checkpoint_keys(&named);
        let weights = keys
            .into_iter()
            .zip(named.into_iter().map(|(_, t)| t))
            .collect();
        crate::saved_model::write_bundle(prefix, &weights)
    }

    /// Loads weights written by [`CallbackModel::save_weights`] of a model of the same
    /// architecture (`model.load_weights(prefix)`); a missing weight or another shape is an
    /// error naming it, and no weight changes then.
    fn load_weights(&mut self, prefix: &Path) -> Result<()> {
        let reader = crate::saved_model::BundleReader::open(prefix)?;
        let named = self.named_weights()?;
        let weights = checkpoint_keys(&named)
            .iter()
            .zip(&named)
            .map(|(key, (name, current))| {
                let t = reader.read(key)?;
                if t.shape() != current.shape() || t.dtype() != current.dtype() {
                    return Err(Error::invalid(format!(
                        "{}: '{key}' is {} {:?} in the checkpoint but weight '{name}' of the \
                         model is {} {:?}",
                        prefix.display(),
                        t.dtype(),
                        t.shape(),
                        current.dtype(),
                        current.shape()
                    )));
                }
                Ok(t)
            })
            .collect::<Result<Vec<_>>>()?;
        self.set_weights(&weights)
    }
}

/// The checkpoint key of each weight (paths such as `dense_3/kernel`, in Keras's order):
/// `layer_with_weights-<i>/<name>/.ATTRIBUTES/VARIABLE_VALUE`, `i` counting the layers
/// that own weights in order, as TensorFlow's object-based checkpoints of Keras models.
fn checkpoint_keys(named: &[(String, Tensor)]) -> Vec<String> {
    let mut layers: Vec<&str> = Vec::new();
    named
        .iter()
        .map(|(path, _)| {
            let (layer, weight) = path.split_once('/').unwrap_or(("", path));
            let i = match layers.iter().position(|l| *l == layer) {
                Some(i) => i,
                None => {
                    layers.push(layer);
                    layers.len() - 1
                }
            };
            format!("layer_with_weights-{i}/{weight}/.ATTRIBUTES/VARIABLE_VALUE")
        })
        .collect()
}

/// A hook into `fit`. Every method has a default that does nothing.
pub trait Callback {
    /// Before the first epoch.
    fn on_train_begin(&mut self, _model: &mut dyn CallbackModel) -> Result<()> {
        Ok(())
    }
    /// Before each epoch (0-based).
    fn on_epoch_begin(&mut self, _epoch: usize, _model: &mut dyn CallbackModel) -> Result<()> {
        Ok(())
    }
    /// After each epoch, with its logs (training and validation metrics); a callback may
    /// add entries (`learning_rate`).
    fn on_epoch_end(
        &mut self,
        _epoch: usize,
        _logs: &mut Logs,
        _model: &mut dyn CallbackModel,
    ) -> Result<()> {
        Ok(())
    }
    /// After the last epoch.
    fn on_train_end(&mut self, _model: &mut dyn CallbackModel) -> Result<()> {
        Ok(())
    }
}

/// What `fit` returns: each epoch's logs (`model.fit(...).history`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    /// The epochs run (0-based).
    pub epoch: Vec<usize>,
    /// Each metric's value per epoch.
    pub history: BTreeMap<String, Vec<f64>>,
}

impl History {
    /// Appends one epoch's logs.
    pub(crate) fn record(&mut self, epoch: usize, logs: &Logs) {
        self.epoch.push(epoch);
        for (k, v) in logs {
            self.history.entry(k.clone()).or_default().push(*v);
        }
    }

    /// The values of one metric, if it was logged.
    pub fn get(&self, key: &str) -> Option<&[f64]> {
        self.history.get(key).map(Vec::as_slice)
    }

    /// The history as JSON: `{"accuracy": [...], "loss": [...], ...}`.
    pub fn to_json(&self) -> String {
        json!(self.history).to_string()
    }
}

/// Whether larger values of `monitor` are better, as Keras's `mode="auto"` decides.
fn higher_is_better(monitor: &str) -> bool {
    ["acc", "auc", "precision", "recall"]
        .iter()
        .any(|k| monitor.contains(k))
        && !monitor.contains("loss")
}

/// Keras's `mode`: `"auto"`, `"min"` or `"max"`.
fn mode_is_max(mode: &str, monitor: &str) -> Result<bool> {
    match mode {
        "auto" => Ok(higher_is_better(monitor)),
        "max" => Ok(true),
        "min" => Ok(false),
        other => Err(Error::invalid(format!(
            "mode '{other}' is unknown; use 'auto', 'min' or 'max'"
        ))),
    }
}

/// The worst possible value of a monitored quantity: where tracking its best starts.
fn worst(max: bool) -> f64 {
    if max {
        f64::NEG_INFINITY
    } else {
        f64::INFINITY
    }
}

/// Whether `current` beats `best` by more than `min_delta` in the direction `max` says.
fn improves(max: bool, current: f64, best: f64, min_delta: f64) -> bool {
    if max {
        current > best + min_delta
    } else {
        current < best - min_delta
    }
}

/// The value of `monitor` in this epoch's logs, or an error naming the callback and the
/// keys that are there.
fn monitored(logs: &Logs, monitor: &str, callback: &str) -> Result<f64> {
    logs.get(monitor).copied().ok_or_else(|| {
        Error::invalid(format!(
            "{callback}: monitor '{monitor}' is not in the logs (available: {})",
            logs.keys().cloned().collect::<Vec<_>>().join(", ")
        ))
    })
}

/// `EarlyStopping`: stops when `monitor` has not improved by `min_delta` for `patience`
/// epochs; with `restore_best_weights`, puts back the weights of the best epoch.
#[derive(Debug)]
pub struct EarlyStopping {
    monitor: String,
    min_delta: f64,
    patience: usize,
    mode: String,
    restore_best_weights: bool,
    wait: usize,
    best: f64,
    best_weights: Option<Vec<Tensor>>,
    /// The epoch training stopped at (0 when it ran to the end).
    pub stopped_epoch: usize,
    /// The best epoch seen.
    pub best_epoch: usize,
}

impl EarlyStopping {
    /// Keras's defaults: monitor `val_loss`, min_delta 0, patience 0, mode auto.
    pub fn new() -> Self {
        EarlyStopping {
            monitor: "val_loss".into(),
            min_delta: 0.0,
            patience: 0,
            mode: "auto".into(),
            restore_best_weights: false,
            wait: 0,
            best: f64::INFINITY,
            best_weights: None,
            stopped_epoch: 0,
            best_epoch: 0,
        }
    }
    /// The logged quantity to watch.
    pub fn monitor(mut self, monitor: &str) -> Self {
        self.monitor = monitor.into();
        self
    }
    /// Epochs without improvement before stopping.
    pub fn patience(mut self, patience: usize) -> Self {
        self.patience = patience;
        self
    }
    /// Smallest change that counts as an improvement.
    pub fn min_delta(mut self, min_delta: f64) -> Self {
        self.min_delta = min_delta.abs();
        self
    }
    /// `"auto"`, `"min"` or `"max"`.
    pub fn mode(mut self, mode: &str) -> Self {
        self.mode = mode.into();
        self
    }
    /// Restore the best epoch's weights when stopping.
    pub fn restore_best_weights(mut self, restore: bool) -> Self {
        self.restore_best_weights = restore;
        self
    }
}

impl Default for EarlyStopping {
    fn default() -> Self {
        Self::new()
    }
}

impl Callback for EarlyStopping {
    fn on_train_begin(&mut self, _model: &mut dyn CallbackModel) -> Result<()> {
        let max = mode_is_max(&self.mode, &self.monitor)?;
        self.wait = 0;
        self.stopped_epoch = 0;
        self.best_epoch = 0;
        self.best_weights = None;
        self.best = worst(max);
        Ok(())
    }

    fn on_epoch_end(
        &mut self,
        epoch: usize,
        logs: &mut Logs,
        model: &mut dyn CallbackModel,
    ) -> Result<()> {
        let current = monitored(logs, &self.monitor, "EarlyStopping")?;
        let max = mode_is_max(&self.mode, &self.monitor)?;
        if self.restore_best_weights && self.best_weights.is_none() {
            self.best_weights = Some(model.get_weights()?);
        }
        self.wait += 1;
        let improved = improves(max, current, self.best, self.min_delta);
        if improved {
            self.best = current;
            self.best_epoch = epoch;
            if self.restore_best_weights {
                self.best_weights = Some(model.get_weights()?);
            }
            self.wait = 0;
            return Ok(());
        }
        if self.wait >= self.patience && epoch > 0 {
            self.stopped_epoch = epoch;
            model.stop_training();
            if let Some(w) = self
                .best_weights
                .as_ref()
                .filter(|_| self.restore_best_weights)
            {
                model.set_weights(w)?;
            }
        }
        Ok(())
    }
}

/// `ModelCheckpoint`: saves the model after each epoch to `filepath` (`{epoch}` and
/// `{epoch:02d}` are replaced by the 1-based epoch), or with `save_best_only` only when
/// `monitor` improved.
#[derive(Debug)]
pub struct ModelCheckpoint {
    filepath: String,
    monitor: String,
    mode: String,
    save_best_only: bool,
    save_weights_only: bool,
    best: Option<f64>,
    /// Directories written, in order.
    pub saved: Vec<PathBuf>,
}

impl ModelCheckpoint {
    /// Saves every epoch to `filepath`, monitoring `val_loss`.
    pub fn new(filepath: impl Into<String>) -> Self {
        ModelCheckpoint {
            filepath: filepath.into(),
            monitor: "val_loss".into(),
            mode: "auto".into(),
            save_best_only: false,
            save_weights_only: false,
            best: None,
            saved: Vec::new(),
        }
    }
    /// The logged quantity to watch.
    pub fn monitor(mut self, monitor: &str) -> Self {
        self.monitor = monitor.into();
        self
    }
    /// Save only when the monitored value improved.
    pub fn save_best_only(mut self, on: bool) -> Self {
        self.save_best_only = on;
        self
    }
    /// Saves only the weights, as a TensorFlow checkpoint at the path used as a prefix
    /// ([`CallbackModel::save_weights`]), not the whole model.
    pub fn save_weights_only(mut self, on: bool) -> Self {
        self.save_weights_only = on;
        self
    }
    /// `"auto"`, `"min"` or `"max"`.
    pub fn mode(mut self, mode: &str) -> Self {
        self.mode = mode.into();
        self
    }

    fn path(&self, epoch: usize) -> PathBuf {
        let e = epoch + 1;
        PathBuf::from(
            self.filepath
                .replace("{epoch:02d}", &format!("{e:02}"))
                .replace("{epoch}", &e.to_string()),
        )
    }
}

impl Callback for ModelCheckpoint {
    fn on_epoch_end(
        &mut self,
        epoch: usize,
        logs: &mut Logs,
        model: &mut dyn CallbackModel,
    ) -> Result<()> {
        if self.save_best_only {
            let current = monitored(logs, &self.monitor, "ModelCheckpoint")?;
            let max = mode_is_max(&self.mode, &self.monitor)?;
            let better = self.best.is_none_or(|b| improves(max, current, b, 0.0));
            if !better {
                return Ok(());
            }
            self.best = Some(current);
        }
        let path = self.path(epoch);
        if self.save_weights_only {
            model.save_weights(&path)?;
        } else {
            model.save(&path)?;
        }
        self.saved.push(path);
        Ok(())
    }
}

/// `ReduceLROnPlateau`: multiplies the learning rate by `factor` when `monitor` has not
/// improved for `patience` epochs (Keras's defaults: factor 0.1, patience 10, min_delta
/// 1e-4, cooldown 0, min_lr 0). Adds `learning_rate` to the logs.
#[derive(Debug)]
pub struct ReduceLROnPlateau {
    monitor: String,
    factor: f64,
    patience: usize,
    mode: String,
    min_delta: f64,
    cooldown: usize,
    min_lr: f64,
    wait: usize,
    cooldown_counter: usize,
    best: f64,
}

impl ReduceLROnPlateau {
    /// Keras's defaults.
    pub fn new() -> Self {
        ReduceLROnPlateau {
            monitor: "val_loss".into(),
            factor: 0.1,
            patience: 10,
            mode: "auto".into(),
            min_delta: 1e-4,
            cooldown: 0,
            min_lr: 0.0,
            wait: 0,
            cooldown_counter: 0,
            best: f64::INFINITY,
        }
    }
    /// The logged quantity to watch.
    pub fn monitor(mut self, monitor: &str) -> Self {
        self.monitor = monitor.into();
        self
    }
    /// Factor applied to the learning rate (must be below 1).
    pub fn factor(mut self, factor: f64) -> Self {
        self.factor = factor;
        self
    }
    /// Epochs without improvement before reducing.
    pub fn patience(mut self, patience: usize) -> Self {
        self.patience = patience;
        self
    }
    /// Epochs to wait after a reduction.
    pub fn cooldown(mut self, cooldown: usize) -> Self {
        self.cooldown = cooldown;
        self
    }
    /// Lower bound of the learning rate.
    pub fn min_lr(mut self, min_lr: f64) -> Self {
        self.min_lr = min_lr;
        self
    }
    /// Smallest change that counts as an improvement.
    pub fn min_delta(mut self, min_delta: f64) -> Self {
        self.min_delta = min_delta;
        self
    }
}

impl Default for ReduceLROnPlateau {
    fn default() -> Self {
        Self::new()
    }
}

impl Callback for ReduceLROnPlateau {
    fn on_train_begin(&mut self, _model: &mut dyn CallbackModel) -> Result<()> {
        if self.factor >= 1.0 {
            return Err(Error::invalid(format!(
                "ReduceLROnPlateau does not support a factor >= 1.0. Received factor={}",
                self.factor
            )));
        }
        let max = mode_is_max(&self.mode, &self.monitor)?;
        self.best = worst(max);
        self.wait = 0;
        self.cooldown_counter = 0;
        Ok(())
    }

    fn on_epoch_end(
        &mut self,
        _epoch: usize,
        logs: &mut Logs,
        model: &mut dyn CallbackModel,
    ) -> Result<()> {
        let lr = model.learning_rate()?;
        logs.insert("learning_rate".into(), lr);
        let current = monitored(logs, &self.monitor, "ReduceLROnPlateau")?;
        let max = mode_is_max(&self.mode, &self.monitor)?;
        let in_cooldown = self.cooldown_counter > 0;
        if in_cooldown {
            self.cooldown_counter -= 1;
            self.wait = 0;
        }
        let improved = improves(max, current, self.best, self.min_delta);
        if improved {
            self.best = current;
            self.wait = 0;
        } else if !in_cooldown {
            self.wait += 1;
            if self.wait >= self.patience && lr > self.min_lr {
                model.set_learning_rate((lr * self.factor).max(self.min_lr))?;
                self.cooldown_counter = self.cooldown;
                self.wait = 0;
            }
        }
        Ok(())
    }
}

/// `LearningRateScheduler`: before each epoch, sets the learning rate to
/// `schedule(epoch, current_lr)`; adds `learning_rate` to the logs.
pub struct LearningRateScheduler<F: FnMut(usize, f64) -> f64> {
    schedule: F,
}

impl<F: FnMut(usize, f64) -> f64> LearningRateScheduler<F> {
    /// With the schedule `f(epoch, lr) -> lr`.
    pub fn new(schedule: F) -> Self {
        LearningRateScheduler { schedule }
    }
}

impl<F: FnMut(usize, f64) -> f64> Callback for LearningRateScheduler<F> {
    fn on_epoch_begin(&mut self, epoch: usize, model: &mut dyn CallbackModel) -> Result<()> {
        let lr = (self.schedule)(epoch, model.learning_rate()?);
        if !lr.is_finite() {
            return Err(Error::invalid(format!(
                "LearningRateScheduler: the schedule returned {lr} for epoch {epoch}"
            )));
        }
        model.set_learning_rate(lr)
    }

    fn on_epoch_end(
        &mut self,
        _epoch: usize,
        logs: &mut Logs,
        model: &mut dyn CallbackModel,
    ) -> Result<()> {
        logs.insert("learning_rate".into(), model.learning_rate()?);
        Ok(())
    }
}

/// `CSVLogger`: one CSV row per epoch (`epoch` then the logs, sorted by name).
#[derive(Debug)]
pub struct CSVLogger {
    path: PathBuf,
    separator: char,
    append: bool,
    keys: Option<Vec<String>>,
}

impl CSVLogger {
    /// Writes to `path`, replacing it.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        CSVLogger {
            path: path.into(),
            separator: ',',
            append: false,
            keys: None,
        }
    }
    /// Appends to an existing file instead (no second header).
    pub fn append(mut self, append: bool) -> Self {
        self.append = append;
        self
    }
    /// Field separator (default `,`).
    pub fn separator(mut self, separator: char) -> Self {
        self.separator = separator;
        self
    }

    fn write(&self, text: &str, truncate: bool) -> Result<()> {
        let mut opts = std::fs::OpenOptions::new();
        opts.create(true);
        if truncate {
            opts.write(true).truncate(true);
        } else {
            opts.append(true);
        }
        opts.open(&self.path)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .map_err(|e| Error::Io(format!("{}: {e}", self.path.display())))
    }
}

impl Callback for CSVLogger {
    fn on_train_begin(&mut self, _model: &mut dyn CallbackModel) -> Result<()> {
        let has_content = self.append
            && std::fs::metadata(&self.path)
                .map(|m| m.len() > 0)
                .unwrap_or(false);
        self.keys = None;
        if !has_content {
            self.write("", true)?;
        } else {
            self.keys = Some(Vec::new());
        }
        Ok(())
    }

    fn on_epoch_end(
        &mut self,
        epoch: usize,
        logs: &mut Logs,
        _model: &mut dyn CallbackModel,
    ) -> Result<()> {
        let sep = self.separator.to_string();
        let mut text = String::new();
        if self.keys.is_none() {
            let keys: Vec<String> = logs.keys().cloned().collect();
            text.push_str(&format!("epoch{sep}{}\n", keys.join(&sep)));
            self.keys = Some(keys);
        }
        let row: Vec<String> = logs.values().map(|v| v.to_string()).collect();
        text.push_str(&format!("{epoch}{sep}{}\n", row.join(&sep)));
        self.write(&text, false)
    }
}

/// A callback made of a closure called at the end of each epoch with the logs
/// (`keras.callbacks.LambdaCallback(on_epoch_end=...)`).
pub struct LambdaCallback<F: FnMut(usize, &Logs)> {
    on_epoch_end: F,
}

impl<F: FnMut(usize, &Logs)> LambdaCallback<F> {
    /// Calls `f(epoch, logs)` after each epoch.
    pub fn on_epoch_end(f: F) -> Self {
        LambdaCallback { on_epoch_end: f }
    }
}

impl<F: FnMut(usize, &Logs)> Callback for LambdaCallback<F> {
    fn on_epoch_end(
        &mut self,
        epoch: usize,
        logs: &mut Logs,
        _model: &mut dyn CallbackModel,
    ) -> Result<()> {
        (self.on_epoch_end)(epoch, logs);
        Ok(())
    }
}

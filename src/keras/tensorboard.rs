//! The `TensorBoard` callback (`keras.callbacks.TensorBoard`): per-epoch metrics, weight
//! histograms and the graph, in the layout Keras writes.

use super::callbacks::{Callback, CallbackModel, Logs};
use crate::summary::FileWriter;
use crate::Result;
use std::path::PathBuf;

/// Writes TensorBoard logs while `fit` runs, laid out as Keras lays them out:
/// `log_dir/train` holds the graph, every training metric as `epoch_<name>` (`epoch_loss`,
/// `epoch_accuracy`, `epoch_learning_rate`) and, every `histogram_freq` epochs, a histogram
/// of each weight (`<layer>/<weight>/histogram`, e.g. `dense/kernel/histogram`);
/// `log_dir/validation` holds the validation metrics under the same names (`val_loss` is
/// `epoch_loss` there). Steps are epochs (0-based). View with `tensorboard --logdir DIR`.
///
/// The files are opened when training begins and flushed after every epoch.
#[derive(Debug)]
pub struct TensorBoard {
    log_dir: PathBuf,
    histogram_freq: usize,
    write_graph: bool,
    writers: Option<(FileWriter, FileWriter)>,
}

impl TensorBoard {
    /// `TensorBoard(log_dir)`: metrics and the graph, no histograms (Keras's defaults).
    pub fn new(log_dir: impl Into<PathBuf>) -> TensorBoard {
        TensorBoard {
            log_dir: log_dir.into(),
            histogram_freq: 0,
            write_graph: true,
            writers: None,
        }
    }

    /// Weight histograms every `freq` epochs (0: none).
    pub fn histogram_freq(mut self, freq: usize) -> TensorBoard {
        self.histogram_freq = freq;
        self
    }

    /// Whether to write the graph (default true).
    pub fn write_graph(mut self, write: bool) -> TensorBoard {
        self.write_graph = write;
        self
    }
}

impl Callback for TensorBoard {
    fn on_train_begin(&mut self, model: &mut dyn CallbackModel) -> Result<()> {
        let mut train = FileWriter::new(self.log_dir.join("train"))?;
        let validation = FileWriter::new(self.log_dir.join("validation"))?;
        if self.write_graph {
            if let Some(g) = model.graph() {
                train.add_graph(g)?;
            }
        }
        self.writers = Some((train, validation));
        Ok(())
    }

    fn on_epoch_end(
        &mut self,
        epoch: usize,
        logs: &mut Logs,
        model: &mut dyn CallbackModel,
    ) -> Result<()> {
        if self.writers.is_none() {
            self.on_train_begin(model)?;
        }
        let Some((train, validation)) = self.writers.as_mut() else {
            return Ok(());
        };
        let step = epoch as i64;
        for (name, &value) in logs.iter() {
            match name.strip_prefix("val_") {
                Some(metric) => {
                    validation.add_scalar(&format!("epoch_{metric}"), value as f32, step)?
                }
                None => train.add_scalar(&format!("epoch_{name}"), value as f32, step)?,
            }
        }
        if !logs.contains_key("learning_rate") {
            if let Ok(lr) = model.learning_rate() {
                train.add_scalar("epoch_learning_rate", lr as f32, step)?;
            }
        }
        if self.histogram_freq > 0 && epoch.is_multiple_of(self.histogram_freq) {
            for (path, value) in model.named_weights()? {
                train.add_tensor_histogram(&format!("{path}/histogram"), &value, step)?;
            }
        }
        train.flush()?;
        validation.flush()
    }

    fn on_train_end(&mut self, _model: &mut dyn CallbackModel) -> Result<()> {
        if let Some((mut train, mut validation)) = self.writers.take() {
            train.flush()?;
            validation.flush()?;
        }
        Ok(())
    }
}

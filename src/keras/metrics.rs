//! Keras's metrics (`keras.metrics`). Each metric adds, per batch, a few scalar
//! statistics to the graph (sums and counts, true and false positives); the trainer adds
//! them up over the epoch on the host and reports their ratio, as Keras's stateful
//! metrics do.

use crate::graph::{Graph, Output};
use crate::keras::losses::Loss;
use crate::session::{Session, SessionOptions};
use crate::tensor::{DType, Tensor};
use crate::{Error, Result};

/// A metric with Keras's name and defaults.
#[derive(Clone, Debug, PartialEq)]
pub enum Metric {
    /// `"accuracy"`: binary, categorical or sparse categorical accuracy, picked from the
    /// loss and the shapes as Keras picks it.
    Accuracy,
    /// Share of predictions on the right side of `threshold` (default 0.5).
    BinaryAccuracy {
        /// Predictions above it count as positive.
        threshold: f64,
    },
    /// Share of samples whose arg-max matches the one-hot label's.
    CategoricalAccuracy,
    /// Share of samples whose arg-max equals the integer label.
    SparseCategoricalAccuracy,
    /// Mean absolute error.
    MeanAbsoluteError,
    /// Mean squared error.
    MeanSquaredError,
    /// `tp / (tp + fp)` of predictions above `threshold` (default 0.5).
    Precision {
        /// Predictions above it count as positive.
        threshold: f64,
    },
    /// `tp / (tp + fn)` of predictions above `threshold` (default 0.5).
    Recall {
        /// Predictions above it count as positive.
        threshold: f64,
    },
}

/// A metric and the name it is logged under (`accuracy`, `mae`, `precision`, …).
#[derive(Clone, Debug, PartialEq)]
pub struct NamedMetric {
    /// The metric.
    pub metric: Metric,
    /// Its key in the logs and the history.
    pub name: String,
}

/// What `compile` takes as a metric: a [`Metric`] or Keras's name of one.
pub trait IntoMetric {
    /// The metric and its log name, or an error for an unknown name.
    fn into_metric(self) -> Result<NamedMetric>;
}

impl IntoMetric for Metric {
    fn into_metric(self) -> Result<NamedMetric> {
        let name = self.default_name().to_string();
        Ok(NamedMetric { metric: self, name })
    }
}

impl IntoMetric for NamedMetric {
    fn into_metric(self) -> Result<NamedMetric> {
        Ok(self)
    }
}

impl IntoMetric for &str {
    fn into_metric(self) -> Result<NamedMetric> {
        Ok(NamedMetric {
            metric: Metric::get(self)?,
            name: self.to_string(),
        })
    }
}

impl Metric {
    /// The metric Keras knows by `name`.
    pub fn get(name: &str) -> Result<Metric> {
        Ok(match name {
            "accuracy" | "acc" => Metric::Accuracy,
            "binary_accuracy" => Metric::BinaryAccuracy { threshold: 0.5 },
            "categorical_accuracy" => Metric::CategoricalAccuracy,
            "sparse_categorical_accuracy" => Metric::SparseCategoricalAccuracy,
            "mae" | "mean_absolute_error" => Metric::MeanAbsoluteError,
            "mse" | "mean_squared_error" => Metric::MeanSquaredError,
            "precision" => Metric::Precision { threshold: 0.5 },
            "recall" => Metric::Recall { threshold: 0.5 },
            other => {
                return Err(Error::invalid(format!(
                    "Could not interpret metric identifier: '{other}' (known: accuracy, \
                     binary_accuracy, categorical_accuracy, sparse_categorical_accuracy, mae, \
                     mse, precision, recall)"
                )))
            }
        })
    }

    /// The name Keras gives the metric object.
    pub fn default_name(&self) -> &'static str {
        match self {
            Metric::Accuracy => "accuracy",
            Metric::BinaryAccuracy { .. } => "binary_accuracy",
            Metric::CategoricalAccuracy => "categorical_accuracy",
            Metric::SparseCategoricalAccuracy => "sparse_categorical_accuracy",
            Metric::MeanAbsoluteError => "mean_absolute_error",
            Metric::MeanSquaredError => "mean_squared_error",
            Metric::Precision { .. } => "precision",
            Metric::Recall { .. } => "recall",
        }
    }

    /// `Accuracy` made concrete as Keras makes it: binary when the output has one unit or
    /// the loss is binary cross-entropy, sparse when the labels are class indices,
    /// categorical otherwise.
    pub(crate) fn resolve(&self, loss: &Loss, pred_units: Option<usize>) -> Metric {
        match self {
            Metric::Accuracy => {
                if matches!(loss, Loss::BinaryCrossentropy { .. }) || pred_units == Some(1) {
                    Metric::BinaryAccuracy { threshold: 0.5 }
                } else if loss.sparse_labels() {
                    Metric::SparseCategoricalAccuracy
                } else {
                    Metric::CategoricalAccuracy
                }
            }
            m => m.clone(),
        }
    }

    /// The metric of `y_pred` against `y_true` over one batch, evaluated at once
    /// (`m.update_state(y_true, y_pred); m.result()` in Keras). `Accuracy` is picked from
    /// the shapes: sparse when the labels have one axis fewer, binary for one unit.
    pub fn compute(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<f64> {
        let metric = match self {
            Metric::Accuracy if y_true.rank() < y_pred.rank() => Metric::SparseCategoricalAccuracy,
            Metric::Accuracy if y_pred.shape().last() == Some(&1) => {
                Metric::BinaryAccuracy { threshold: 0.5 }
            }
            Metric::Accuracy => Metric::CategoricalAccuracy,
            m => m.clone(),
        };
        let mut g = Graph::new();
        let t = g.constant(y_true.clone())?;
        let p = g.constant(y_pred.cast(DType::Float32)?)?;
        let stats = metric.statistics(&mut g, t, p)?;
        let out =
            Session::with_options(&g, SessionOptions::with_threads(1)).run(&[], &stats, &[])?;
        let sums = out
            .iter()
            .map(|t| t.scalar_value::<f32>().map(f64::from))
            .collect::<Result<Vec<_>>>()?;
        Ok(metric.result(&sums))
    }

    /// The batch statistics (float32 scalars) whose sums over an epoch give the metric.
    pub(crate) fn statistics(
        &self,
        g: &mut Graph,
        y_true: Output,
        y_pred: Output,
    ) -> Result<Vec<Output>> {
        let rank = g.shape(y_pred).rank().unwrap_or(2) as i64;
        let last = rank - 1;
        let as_float = |g: &mut Graph, x: Output| -> Result<Output> {
            if g.dtype(x) == DType::Float32 {
                Ok(x)
            } else {
                g.cast(x, DType::Float32)
            }
        };
        let sum_count = |g: &mut Graph, values: Output| -> Result<Vec<Output>> {
            let r = g.shape(values).rank().unwrap_or(1) as i64;
            let axes: Vec<i64> = (0..r).collect();
            let sum = g.reduce_sum(values, &axes, false)?;
            let n = g.size(values)?;
            let n = g.cast(n, DType::Float32)?;
            Ok(vec![sum, n])
        };
        match *self {
            Metric::Accuracy => Err(Error::invalid(
                "the accuracy metric must be resolved against the loss first",
            )),
            Metric::BinaryAccuracy { threshold } => {
                let t = g.scalar_like(DType::Float32, threshold)?;
                let pred = g.greater(y_pred, t)?;
                let pred = as_float(g, pred)?;
                let truth = as_float(g, y_true)?;
                let eq = g.equal(pred, truth)?;
                let eq = as_float(g, eq)?;
                sum_count(g, eq)
            }
            Metric::CategoricalAccuracy => {
                let a = g.argmax(y_true, last, DType::Int64)?;
                let b = g.argmax(y_pred, last, DType::Int64)?;
                let eq = g.equal(a, b)?;
                let eq = as_float(g, eq)?;
                sum_count(g, eq)
            }
            Metric::SparseCategoricalAccuracy => {
                let b = g.argmax(y_pred, last, DType::Int32)?;
                let labels = if g.dtype(y_true) == DType::Int32 {
                    y_true
                } else {
                    g.cast(y_true, DType::Int32)?
                };
                let eq = g.equal(labels, b)?;
                let eq = as_float(g, eq)?;
                sum_count(g, eq)
            }
            Metric::MeanAbsoluteError | Metric::MeanSquaredError => {
                let truth = as_float(g, y_true)?;
                let d = g.sub(y_pred, truth)?;
                let e = if *self == Metric::MeanAbsoluteError {
                    g.abs(d)?
                } else {
                    g.square(d)?
                };
                let per_sample = g.reduce_mean(e, &[last], false)?;
                sum_count(g, per_sample)
            }
            Metric::Precision { threshold } | Metric::Recall { threshold } => {
                let t = g.scalar_like(DType::Float32, threshold)?;
                let pred = g.greater(y_pred, t)?;
                let pred = as_float(g, pred)?;
                let truth = as_float(g, y_true)?;
                let half = g.scalar_like(DType::Float32, 0.5)?;
                let truth = g.greater(truth, half)?;
                let truth = as_float(g, truth)?;
                let axes: Vec<i64> = (0..rank).collect();
                let tp = g.mul(pred, truth)?;
                let tp = g.reduce_sum(tp, &axes, false)?;
                // fp = Σ pred - tp; fn = Σ truth - tp.
                let other = if matches!(self, Metric::Precision { .. }) {
                    pred
                } else {
                    truth
                };
                let total = g.reduce_sum(other, &axes, false)?;
                let miss = g.sub(total, tp)?;
                Ok(vec![tp, miss])
            }
        }
    }

    /// The metric from its statistics summed over the batches seen.
    pub(crate) fn result(&self, sums: &[f64]) -> f64 {
        match self {
            Metric::Precision { .. } | Metric::Recall { .. } => {
                let denom = sums[0] + sums[1];
                if denom > 0.0 {
                    sums[0] / denom
                } else {
                    0.0
                }
            }
            _ if sums[1] > 0.0 => sums[0] / sums[1],
            _ => 0.0,
        }
    }
}

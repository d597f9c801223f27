//! Keras's metrics (`keras.metrics`). Each metric adds, per batch, a few statistics to
//! the graph (sums and counts, true and false positives; vectors of them per threshold
//! for AUC); the trainer adds them up element by element over the epoch on the host and
//! computes the metric from the totals, as Keras's stateful metrics do.

use crate::graph::{Graph, Output};
use crate::keras::losses::Loss;
use crate::session::{Session, SessionOptions};
use crate::tensor::{DType, Tensor};
use crate::{Error, Result};
use serde_json::{json, Value};

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
    /// Area under the ROC or precision-recall curve (`keras.metrics.AUC`), from the
    /// confusion counts at `num_thresholds` thresholds as Keras places them: `i / (n-1)`
    /// inside (0, 1) and one just below 0 and just above 1.
    Auc(Auc),
}

/// Which curve [`Metric::Auc`] measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AucCurve {
    /// False-positive rate against recall (`"ROC"`, the default).
    Roc,
    /// Recall against precision (`"PR"`).
    Pr,
}

/// How [`Metric::Auc`] sums the area between two thresholds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AucSummation {
    /// Trapezoids (`"interpolation"`, the default; for PR, Davis & Goadrich's
    /// interpolation as Keras computes it).
    Interpolation,
    /// Rectangles of the lower height (`"minoring"`).
    Minoring,
    /// Rectangles of the higher height (`"majoring"`).
    Majoring,
}

/// The options of [`Metric::Auc`], with Keras's defaults from [`Auc::new`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Auc {
    /// Number of thresholds (more than 1; default 200).
    pub num_thresholds: usize,
    /// The curve (default ROC).
    pub curve: AucCurve,
    /// The summation (default interpolation).
    pub summation_method: AucSummation,
    /// Whether predictions are logits (a sigmoid is applied first).
    pub from_logits: bool,
}

impl Default for Auc {
    fn default() -> Self {
        Auc::new()
    }
}

impl Auc {
    /// `AUC()`: 200 thresholds, ROC, interpolation, probabilities.
    pub fn new() -> Auc {
        Auc {
            num_thresholds: 200,
            curve: AucCurve::Roc,
            summation_method: AucSummation::Interpolation,
            from_logits: false,
        }
    }

    /// The curve.
    pub fn curve(mut self, curve: AucCurve) -> Auc {
        self.curve = curve;
        self
    }

    /// The summation method.
    pub fn summation_method(mut self, m: AucSummation) -> Auc {
        self.summation_method = m;
        self
    }

    /// The number of thresholds.
    pub fn num_thresholds(mut self, n: usize) -> Auc {
        self.num_thresholds = n;
        self
    }

    /// Whether predictions are logits.
    pub fn from_logits(mut self, on: bool) -> Auc {
        self.from_logits = on;
        self
    }

    /// The batch statistics: true and false positives per threshold (vectors of
    /// `num_thresholds`), then the positive and negative labels. A prediction `p`
    /// (clipped to [0, 1]) is positive at threshold `i` when `p·(n-1) > i`, always at the
    /// threshold below 0 and never at the one above 1: Keras's bucketing of evenly spaced
    /// thresholds.
    fn statistics(&self, g: &mut Graph, y_true: Output, y_pred: Output) -> Result<Vec<Output>> {
        let n = self.num_thresholds;
        if n < 2 {
            return Err(Error::invalid(format!(
                "AUC: Argument `num_thresholds` must be an integer > 1. Received: \
                 num_thresholds={n}"
            )));
        }
        let p = if self.from_logits {
            g.sigmoid(y_pred)?
        } else {
            y_pred
        };
        let p = g.reshape(p, &[1, -1])?;
        let (zero, one) = (
            g.scalar_like(DType::Float32, 0.0)?,
            g.scalar_like(DType::Float32, 1.0)?,
        );
        let p = g.clip_by_value(p, zero, one)?;
        let steps = g.scalar_like(DType::Float32, (n - 1) as f64)?;
        let scaled = g.mul(p, steps)?;
        let marks: Vec<f32> = (0..n)
            .map(|i| if i == 0 { -1.0 } else { i as f32 })
            .collect();
        let marks = g.constant(Tensor::new(&[n, 1], marks)?)?;
        let positive = g.greater(scaled, marks)?;
        let positive = g.cast(positive, DType::Float32)?;
        let truth = g.reshape(y_true, &[1, -1])?;
        let truth = if g.dtype(truth) == DType::Float32 {
            truth
        } else {
            g.cast(truth, DType::Float32)?
        };
        let truth = g.not_equal(truth, zero)?;
        let truth = g.cast(truth, DType::Float32)?;
        let hits = g.mul(positive, truth)?;
        let tp = g.reduce_sum(hits, &[1], false)?;
        let predicted = g.reduce_sum(positive, &[1], false)?;
        let fp = g.sub(predicted, tp)?;
        let labels = g.reduce_sum(truth, &[0, 1], false)?;
        let count = g.size(truth)?;
        let count = g.cast(count, DType::Float32)?;
        let negatives = g.sub(count, labels)?;
        Ok(vec![tp, fp, labels, negatives])
    }

    /// The area from the totals of [`Auc::statistics`].
    fn result(&self, tp: &[f64], fp: &[f64], positives: f64, negatives: f64) -> f64 {
        let div = |a: f64, b: f64| if b == 0.0 { 0.0 } else { a / b };
        let pairs = tp.len().min(fp.len()).saturating_sub(1);
        if self.curve == AucCurve::Pr && self.summation_method == AucSummation::Interpolation {
            // Keras's interpolate_pr_auc: precision varies along each interval as
            // TP and TP + FP vary linearly.
            return (0..pairs)
                .map(|i| {
                    let dtp = tp[i] - tp[i + 1];
                    let (p0, p1) = (tp[i] + fp[i], tp[i + 1] + fp[i + 1]);
                    let slope = div(dtp, (p0 - p1).max(0.0));
                    let intercept = tp[i + 1] - slope * p1;
                    let ratio = if p0 > 0.0 && p1 > 0.0 {
                        div(p0, p1.max(0.0))
                    } else {
                        1.0
                    };
                    let fn1 = positives - tp[i + 1];
                    div(
                        slope * (dtp + intercept * ratio.ln()),
                        (tp[i + 1] + fn1).max(0.0),
                    )
                })
                .sum();
        }
        let point = |i: usize| {
            let recall = div(tp[i], positives);
            match self.curve {
                AucCurve::Roc => (div(fp[i], negatives), recall),
                AucCurve::Pr => (recall, div(tp[i], tp[i] + fp[i])),
            }
        };
        (0..pairs)
            .map(|i| {
                let ((x0, y0), (x1, y1)) = (point(i), point(i + 1));
                let height = match self.summation_method {
                    AucSummation::Interpolation => (y0 + y1) / 2.0,
                    AucSummation::Minoring => y0.min(y1),
                    AucSummation::Majoring => y0.max(y1),
                };
                (x0 - x1) * height
            })
            .sum()
    }
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

impl NamedMetric {
    /// As Keras writes the metric in a `compile_config`: its name when the name alone
    /// gives it back, else (AUC with options) the serialized `keras.metrics.AUC`.
    pub(crate) fn to_json(&self) -> Value {
        match self.metric {
            Metric::Auc(a) if Metric::get(&self.name).ok() != Some(self.metric.clone()) => {
                json!({
                    "module": "keras.metrics",
                    "class_name": "AUC",
                    "config": {
                        "name": self.name,
                        "dtype": "float32",
                        "num_thresholds": a.num_thresholds,
                        "curve": match a.curve {
                            AucCurve::Roc => "ROC",
                            AucCurve::Pr => "PR",
                        },
                        "summation_method": match a.summation_method {
                            AucSummation::Interpolation => "interpolation",
                            AucSummation::Minoring => "minoring",
                            AucSummation::Majoring => "majoring",
                        },
                        "multi_label": false,
                        "num_labels": null,
                        "label_weights": null,
                        "from_logits": a.from_logits,
                    },
                    "registered_name": null
                })
            }
            _ => Value::from(self.name.clone()),
        }
    }

    /// The metric a `compile_config` entry names: a name, or a serialized
    /// `keras.metrics.AUC` (single-label, evenly spaced thresholds).
    pub(crate) fn from_json(v: &Value) -> Result<NamedMetric> {
        if let Some(name) = v.as_str() {
            return name.into_metric();
        }
        let bad = |why: &str| Error::invalid(format!("unsupported metric config {v}: {why}"));
        if v.get("class_name").and_then(Value::as_str) != Some("AUC") {
            return Err(bad("only names and AUC objects are read"));
        }
        let c = v
            .get("config")
            .and_then(Value::as_object)
            .ok_or_else(|| bad("no config"))?;
        let text = |k: &str| c.get(k).and_then(Value::as_str);
        let on = |k: &str| c.get(k).and_then(Value::as_bool).unwrap_or(false);
        if on("multi_label") || c.get("thresholds").is_some_and(|t| !t.is_null()) {
            return Err(bad("multi_label and explicit thresholds are not supported"));
        }
        let curve = match text("curve").unwrap_or("ROC") {
            "ROC" => AucCurve::Roc,
            "PR" => AucCurve::Pr,
            _ => return Err(bad("curve must be ROC or PR")),
        };
        let summation_method = match text("summation_method").unwrap_or("interpolation") {
            "interpolation" => AucSummation::Interpolation,
            "minoring" => AucSummation::Minoring,
            "majoring" => AucSummation::Majoring,
            _ => return Err(bad("unknown summation_method")),
        };
        let num_thresholds = match c.get("num_thresholds") {
            None => 200,
            Some(n) => n
                .as_u64()
                .filter(|&n| n > 1)
                .ok_or_else(|| bad("num_thresholds must be an integer > 1"))?
                as usize,
        };
        Ok(NamedMetric {
            metric: Metric::Auc(Auc {
                num_thresholds,
                curve,
                summation_method,
                from_logits: on("from_logits"),
            }),
            name: text("name").unwrap_or("auc").to_string(),
        })
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
            "AUC" | "auc" => Metric::Auc(Auc::new()),
            other => {
                return Err(Error::invalid(format!(
                    "Could not interpret metric identifier: '{other}' (known: accuracy, \
                     binary_accuracy, categorical_accuracy, sparse_categorical_accuracy, mae, \
                     mse, precision, recall, AUC)"
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
            Metric::Auc(_) => "auc",
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
        let sums: Vec<Vec<f64>> = out.iter().map(Tensor::to_f64_vec).collect();
        Ok(metric.result(&sums))
    }

    /// The batch statistics (float32 tensors, scalars but for AUC's per-threshold
    /// vectors) whose element-wise sums over an epoch give the metric.
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
            Metric::Auc(auc) => auc.statistics(g, y_true, y_pred),
        }
    }

    /// The metric from its statistics summed over the batches seen (each as many values
    /// as [`Metric::statistics`] gives; 0 where nothing was seen).
    pub(crate) fn result(&self, sums: &[Vec<f64>]) -> f64 {
        let first = |i: usize| sums.get(i).and_then(|v| v.first()).copied().unwrap_or(0.0);
        match self {
            Metric::Auc(auc) => match sums {
                [tp, fp, ..] => auc.result(tp, fp, first(2), first(3)),
                _ => 0.0,
            },
            Metric::Precision { .. } | Metric::Recall { .. } => {
                let denom = first(0) + first(1);
                if denom > 0.0 {
                    first(0) / denom
                } else {
                    0.0
                }
            }
            _ if first(1) > 0.0 => first(0) / first(1),
            _ => 0.0,
        }
    }
}

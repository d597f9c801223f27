//! Keras's losses (`keras.losses`), with the numerics of Keras 3's TensorFlow backend:
//! probabilities clipped to `[1e-7, 1 - 1e-7]`, and the logits of a `Softmax` (`Sigmoid`)
//! output used directly, as Keras does when it sees the op that made the output.
//! Each loss is averaged over the batch (`sum_over_batch_size`).

use crate::graph::{Graph, Output};
use crate::keras::layer::{format_shape, Shape};
use crate::session::{Session, SessionOptions};
use crate::tensor::{DType, PartialShape, Tensor};
use crate::{Error, Result};

/// Keras's fuzz factor (`keras.config.epsilon()`).
pub const EPSILON: f64 = 1e-7;

/// A loss with Keras's name and defaults.
#[derive(Clone, Debug, PartialEq)]
pub enum Loss {
    /// Integer labels against class probabilities (or logits).
    SparseCategoricalCrossentropy {
        /// Whether predictions are logits (unnormalized) rather than probabilities.
        from_logits: bool,
    },
    /// One-hot labels against class probabilities (or logits).
    CategoricalCrossentropy {
        /// Whether predictions are logits (unnormalized) rather than probabilities.
        from_logits: bool,
    },
    /// 0/1 labels against probabilities (or logits), averaged over the last axis.
    BinaryCrossentropy {
        /// Whether predictions are logits (unnormalized) rather than probabilities.
        from_logits: bool,
    },
    /// Mean of squared errors over the last axis.
    MeanSquaredError,
    /// Mean of absolute errors over the last axis.
    MeanAbsoluteError,
    /// Quadratic below `delta`, linear above (Keras's default delta 1).
    Huber {
        /// Where the loss turns from quadratic to linear.
        delta: f64,
    },
}

/// What `compile` takes as a loss: a [`Loss`] or Keras's name of one.
pub trait IntoLoss {
    /// The loss, or an error for an unknown name.
    fn into_loss(self) -> Result<Loss>;
}

impl IntoLoss for Loss {
    fn into_loss(self) -> Result<Loss> {
        Ok(self)
    }
}

impl IntoLoss for &str {
    fn into_loss(self) -> Result<Loss> {
        Loss::get(self)
    }
}

impl Loss {
    /// The loss Keras knows by `name`.
    pub fn get(name: &str) -> Result<Loss> {
        Ok(match name {
            "sparse_categorical_crossentropy" => {
                Loss::SparseCategoricalCrossentropy { from_logits: false }
            }
            "categorical_crossentropy" => Loss::CategoricalCrossentropy { from_logits: false },
            "binary_crossentropy" => Loss::BinaryCrossentropy { from_logits: false },
            "mse" | "mean_squared_error" => Loss::MeanSquaredError,
            "mae" | "mean_absolute_error" => Loss::MeanAbsoluteError,
            "huber" | "huber_loss" => Loss::Huber { delta: 1.0 },
            other => {
                return Err(Error::invalid(format!(
                    "Could not interpret loss identifier: '{other}' (known: \
                     sparse_categorical_crossentropy, categorical_crossentropy, \
                     binary_crossentropy, mean_squared_error, mean_absolute_error, huber)"
                )))
            }
        })
    }

    /// Keras's name of the loss function.
    pub fn name(&self) -> &'static str {
        match self {
            Loss::SparseCategoricalCrossentropy { .. } => "sparse_categorical_crossentropy",
            Loss::CategoricalCrossentropy { .. } => "categorical_crossentropy",
            Loss::BinaryCrossentropy { .. } => "binary_crossentropy",
            Loss::MeanSquaredError => "mean_squared_error",
            Loss::MeanAbsoluteError => "mean_absolute_error",
            Loss::Huber { .. } => "huber",
        }
    }

    /// Whether the labels are class indices (one axis fewer than the predictions).
    pub fn sparse_labels(&self) -> bool {
        matches!(self, Loss::SparseCategoricalCrossentropy { .. })
    }

    /// The dtype and shape of the labels for predictions of `pred` shape.
    pub(crate) fn target_spec(&self, pred: &[Option<usize>]) -> (DType, PartialShape) {
        if self.sparse_labels() {
            (
                DType::Int32,
                PartialShape::new(pred[..pred.len() - 1].to_vec()),
            )
        } else {
            let mut s = pred.to_vec();
            s[0] = None;
            (DType::Float32, PartialShape::new(s))
        }
    }

    /// Checks that labels of `labels` shape fit predictions of `pred` shape; returns the
    /// shape to feed them as (sparse labels of shape `(batch, 1)` are squeezed, as Keras
    /// squeezes them).
    pub(crate) fn check_labels(&self, pred: &Shape, labels: &[usize]) -> Result<Vec<usize>> {
        let mut labels = labels.to_vec();
        if self.sparse_labels() && labels.len() == pred.len() && labels.last() == Some(&1) {
            labels.pop();
        }
        let want: Vec<Option<usize>> = if self.sparse_labels() {
            pred[..pred.len() - 1].to_vec()
        } else {
            pred.clone()
        };
        let fits = labels.len() == want.len()
            && labels
                .iter()
                .zip(&want)
                .skip(1)
                .all(|(l, w)| w.is_none_or(|w| w == *l));
        if !fits {
            let shown: Vec<Option<usize>> = labels.iter().map(|&d| Some(d)).collect();
            return Err(Error::invalid(format!(
                "loss '{}': labels of shape {} do not fit the model's output of shape {} \
                 (expected labels of shape {})",
                self.name(),
                format_shape(&shown),
                format_shape(pred),
                format_shape(&want)
            )));
        }
        Ok(labels)
    }

    /// The per-sample losses of `y_pred` against `y_true` (one value per sample, or per
    /// position for sequence outputs).
    pub fn per_sample(&self, g: &mut Graph, y_true: Output, y_pred: Output) -> Result<Output> {
        let rank = g.shape(y_pred).rank().unwrap_or(2) as i64;
        let last = rank - 1;
        match *self {
            Loss::SparseCategoricalCrossentropy { from_logits } => {
                let (logits, is_logits) = logits_of(g, y_pred, from_logits, "Softmax");
                let logits = if is_logits {
                    logits
                } else {
                    log_clipped(g, logits)?
                };
                let labels = if g.dtype(y_true) == DType::Int32 || g.dtype(y_true) == DType::Int64 {
                    y_true
                } else {
                    g.cast(y_true, DType::Int32)?
                };
                if rank == 2 {
                    return Ok(g
                        .sparse_softmax_cross_entropy_with_logits(logits, labels)?
                        .0);
                }
                // Sequences: flatten to rows, then restore the label shape.
                let classes = g.shape(y_pred).dim(last as usize).map_or(-1, |d| d as i64);
                let flat = g.reshape(logits, &[-1, classes])?;
                let flat_labels = g.reshape(labels, &[-1])?;
                let xent = g
                    .sparse_softmax_cross_entropy_with_logits(flat, flat_labels)?
                    .0;
                let shape = g.shape_of(labels)?;
                g.reshape_t(xent, shape)
            }
            Loss::CategoricalCrossentropy { from_logits } => {
                let (out, is_logits) = logits_of(g, y_pred, from_logits, "Softmax");
                if is_logits && rank == 2 {
                    return Ok(g.softmax_cross_entropy_with_logits(out, y_true)?.0);
                }
                let probs = if is_logits {
                    g.softmax(out)?
                } else {
                    let sum = g.reduce_sum(out, &[last], true)?;
                    g.div(out, sum)?
                };
                let log = log_clipped(g, probs)?;
                let prod = g.mul(y_true, log)?;
                let sum = g.reduce_sum(prod, &[last], false)?;
                g.neg(sum)
            }
            Loss::BinaryCrossentropy { from_logits } => {
                let (out, is_logits) = logits_of(g, y_pred, from_logits, "Sigmoid");
                let bce = if is_logits {
                    // max(x, 0) - x·z + log(1 + exp(-|x|))
                    let zero = g.scalar_like(DType::Float32, 0.0)?;
                    let relu = g.maximum(out, zero)?;
                    let xz = g.mul(out, y_true)?;
                    let a = g.sub(relu, xz)?;
                    let abs = g.abs(out)?;
                    let neg = g.neg(abs)?;
                    let e = g.exp(neg)?;
                    let l = g.log1p(e)?;
                    g.add(a, l)?
                } else {
                    let p = clip(g, out)?;
                    let one = g.scalar_like(DType::Float32, 1.0)?;
                    let log_p = g.log(p)?;
                    let pos = g.mul(y_true, log_p)?;
                    let one_t = g.sub(one, y_true)?;
                    let one_p = g.sub(one, p)?;
                    let log_q = g.log(one_p)?;
                    let neg = g.mul(one_t, log_q)?;
                    let sum = g.add(pos, neg)?;
                    g.neg(sum)?
                };
                g.reduce_mean(bce, &[last], false)
            }
            Loss::MeanSquaredError => {
                let d = g.sub(y_pred, y_true)?;
                let sq = g.square(d)?;
                g.reduce_mean(sq, &[last], false)
            }
            Loss::MeanAbsoluteError => {
                let d = g.sub(y_pred, y_true)?;
                let a = g.abs(d)?;
                g.reduce_mean(a, &[last], false)
            }
            Loss::Huber { delta } => {
                let err = g.sub(y_pred, y_true)?;
                let abs = g.abs(err)?;
                let half = g.scalar_like(DType::Float32, 0.5)?;
                let d = g.scalar_like(DType::Float32, delta)?;
                let sq = g.square(err)?;
                let quad = g.mul(half, sq)?;
                let lin = g.mul(d, abs)?;
                let off = g.scalar_like(DType::Float32, 0.5 * delta * delta)?;
                let lin = g.sub(lin, off)?;
                let small = g.less_equal(abs, d)?;
                let h = g.where_v2(small, quad, lin)?;
                g.reduce_mean(h, &[last], false)
            }
        }
    }

    /// The loss of `y_pred` against `y_true`, evaluated at once (`loss_fn(y_true, y_pred)`
    /// in Keras).
    pub fn compute(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<f64> {
        let pred: Shape = y_pred.shape().iter().map(|&d| Some(d)).collect();
        let shape = self.check_labels(&pred, y_true.shape())?;
        let (dtype, _) = self.target_spec(&pred);
        let mut g = Graph::new();
        let t = g.constant(y_true.reshape(&shape)?.cast(dtype)?)?;
        let p = g.constant(y_pred.cast(DType::Float32)?)?;
        let loss = self.mean(&mut g, t, p)?;
        let out =
            Session::with_options(&g, SessionOptions::with_threads(1)).run(&[], &[loss], &[])?;
        Ok(out[0].scalar_value::<f32>()? as f64)
    }

    /// The scalar loss: per-sample losses averaged over all samples.
    pub fn mean(&self, g: &mut Graph, y_true: Output, y_pred: Output) -> Result<Output> {
        let per = self.per_sample(g, y_true, y_pred)?;
        let rank = g.shape(per).rank().unwrap_or(1) as i64;
        let axes: Vec<i64> = (0..rank).collect();
        g.reduce_mean(per, &axes, false)
    }
}

/// `(logits, true)` when `from_logits` or when `y_pred` is made by the op `activation`
/// (then its input), as Keras's TensorFlow backend does; otherwise `(y_pred, false)`.
fn logits_of(g: &Graph, y_pred: Output, from_logits: bool, activation: &str) -> (Output, bool) {
    if from_logits {
        return (y_pred, true);
    }
    let node = g.node(y_pred.node);
    if node.op_type() == activation {
        (node.inputs()[0], true)
    } else {
        (y_pred, false)
    }
}

/// `clip(x, eps, 1 - eps)`.
fn clip(g: &mut Graph, x: Output) -> Result<Output> {
    let lo = g.scalar_like(DType::Float32, EPSILON)?;
    let hi = g.scalar_like(DType::Float32, 1.0 - EPSILON)?;
    let x = g.maximum(x, lo)?;
    g.minimum(x, hi)
}

/// `log(clip(x, eps, 1 - eps))`.
fn log_clipped(g: &mut Graph, x: Output) -> Result<Output> {
    let c = clip(g, x)?;
    g.log(c)
}

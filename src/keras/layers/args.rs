//! What several layers take: sizes given as one number or a pair, `padding`, the output
//! length of a sliding window, and reading arguments back from a Keras config.

use crate::keras::activations::ActivationArg;
use crate::keras::initializers::Initializer;
use crate::keras::regularizers::Regularizer;
use crate::{Error, Result};
use serde_json::{Map, Value};

/// A (height, width) pair, given as one number for both or as a pair, as Keras takes
/// `kernel_size`, `strides`, `pool_size` and `dilation_rate`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Size2(pub [usize; 2]);

impl From<usize> for Size2 {
    fn from(v: usize) -> Self {
        Size2([v, v])
    }
}

impl From<(usize, usize)> for Size2 {
    fn from(v: (usize, usize)) -> Self {
        Size2([v.0, v.1])
    }
}

impl From<[usize; 2]> for Size2 {
    fn from(v: [usize; 2]) -> Self {
        Size2(v)
    }
}

impl Size2 {
    /// As Keras writes a tuple in a config: `[h, w]`.
    pub(crate) fn to_json(self) -> Value {
        Value::from(self.0.to_vec())
    }

    /// The NHWC attribute form `[1, h, w, 1]`.
    pub(crate) fn nhwc(self) -> [i64; 4] {
        [1, self.0[0] as i64, self.0[1] as i64, 1]
    }
}

/// Keras's `padding`: `"valid"` (no padding) or `"same"` (outputs `ceil(in / stride)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Padding {
    /// No padding.
    Valid,
    /// Zero padding so that the output has `ceil(in / stride)` positions.
    Same,
}

impl Padding {
    /// Parses Keras's name (case-insensitive, as Keras standardizes it).
    pub fn parse(s: &str) -> std::result::Result<Padding, String> {
        match s.to_ascii_lowercase().as_str() {
            "valid" => Ok(Padding::Valid),
            "same" => Ok(Padding::Same),
            _ => Err(format!(
                "The `padding` argument must be a string, one of \"valid\", \"same\". \
                 Received: padding={s}"
            )),
        }
    }

    /// Keras's name.
    pub fn name(self) -> &'static str {
        match self {
            Padding::Valid => "valid",
            Padding::Same => "same",
        }
    }

    /// TensorFlow's attribute value.
    pub(crate) fn tf(self) -> &'static str {
        match self {
            Padding::Valid => "VALID",
            Padding::Same => "SAME",
        }
    }

    /// Output length of a window of `kernel` taps spaced `dilation` apart, moved by
    /// `stride` over `len` positions (`None` stays unknown); `None` inside the error
    /// when a valid window does not fit.
    pub(crate) fn output_len(
        self,
        len: Option<usize>,
        kernel: usize,
        stride: usize,
        dilation: usize,
    ) -> std::result::Result<Option<usize>, String> {
        let Some(len) = len else { return Ok(None) };
        let span = dilation * (kernel - 1) + 1;
        match self {
            Padding::Same => Ok(Some(len.div_ceil(stride))),
            Padding::Valid if len >= span => Ok(Some((len - span) / stride + 1)),
            Padding::Valid => Err(format!(
                "Computed output size would be negative: an input of length {len} is shorter \
                 than the window ({span})"
            )),
        }
    }
}

/// Reads a layer's arguments from its Keras config; errors name the layer.
pub(crate) struct Args<'a> {
    class: &'a str,
    cfg: &'a Map<String, Value>,
}

impl<'a> Args<'a> {
    pub fn new(class: &'a str, cfg: &'a Map<String, Value>) -> Args<'a> {
        Args { class, cfg }
    }

    /// The layer's name, when the config has one.
    pub fn name(&self) -> Option<&'a str> {
        self.cfg.get("name").and_then(Value::as_str)
    }

    /// An error about the layer.
    pub fn err(&self, msg: impl std::fmt::Display) -> Error {
        Error::invalid(format!(
            "layer '{}' ({}): {msg}",
            self.name().unwrap_or("?"),
            self.class
        ))
    }

    /// The entry under `k`, unless absent or null.
    pub fn raw(&self, k: &str) -> Option<&'a Value> {
        self.get(k)
    }

    fn get(&self, k: &str) -> Option<&'a Value> {
        self.cfg.get(k).filter(|v| !v.is_null())
    }

    /// A required positive integer.
    pub fn positive(&self, k: &str) -> Result<usize> {
        self.get(k)
            .and_then(Value::as_u64)
            .filter(|&u| u > 0)
            .map(|u| u as usize)
            .ok_or_else(|| {
                self.err(format!(
                    "Received an invalid value for `{k}`, expected a positive integer. \
                     Received: {k}={}",
                    self.cfg.get(k).unwrap_or(&Value::Null)
                ))
            })
    }

    /// A number, or `default` when absent.
    pub fn f64_or(&self, k: &str, default: f64) -> Result<f64> {
        match self.get(k) {
            None => Ok(default),
            Some(v) => v
                .as_f64()
                .ok_or_else(|| self.err(format!("'{k}' must be a number, got {v}"))),
        }
    }

    /// A boolean, or `default` when absent.
    pub fn bool_or(&self, k: &str, default: bool) -> Result<bool> {
        match self.get(k) {
            None => Ok(default),
            Some(v) => v
                .as_bool()
                .ok_or_else(|| self.err(format!("'{k}' must be true or false, got {v}"))),
        }
    }

    /// An integer (maybe negative), or `default` when absent.
    pub fn i64_or(&self, k: &str, default: i64) -> Result<i64> {
        match self.get(k) {
            None => Ok(default),
            Some(v) => v
                .as_i64()
                .ok_or_else(|| self.err(format!("'{k}' must be an integer, got {v}"))),
        }
    }

    /// A size given as one positive number or a list of two, or `None` when absent.
    pub fn size2(&self, k: &str) -> Result<Option<Size2>> {
        let Some(v) = self.get(k) else {
            return Ok(None);
        };
        let bad = || self.err(format!("'{k}' must be a positive integer or two, got {v}"));
        let dims: Vec<usize> = match v {
            Value::Array(a) => a
                .iter()
                .map(|d| d.as_u64().filter(|&d| d > 0).map(|d| d as usize))
                .collect::<Option<_>>()
                .ok_or_else(bad)?,
            _ => vec![v.as_u64().filter(|&d| d > 0).ok_or_else(bad)? as usize; 2],
        };
        match dims.as_slice() {
            [h, w] => Ok(Some(Size2([*h, *w]))),
            _ => Err(bad()),
        }
    }

    /// `padding`, `"valid"` when absent.
    pub fn padding(&self) -> Result<Padding> {
        match self.get("padding") {
            None => Ok(Padding::Valid),
            Some(Value::String(s)) => Padding::parse(s).map_err(|m| self.err(m)),
            Some(v) => Err(self.err(format!("'padding' must be a string, got {v}"))),
        }
    }

    /// `data_format`, which must be `channels_last` (the layers run NHWC).
    pub fn channels_last(&self) -> Result<()> {
        match self.get("data_format").and_then(Value::as_str) {
            None | Some("channels_last") => Ok(()),
            Some(other) => Err(self.err(format!(
                "data_format '{other}' is not supported (only 'channels_last')"
            ))),
        }
    }

    /// The activation named by `k` (`"linear"` when absent).
    pub fn activation(&self, k: &str) -> Result<ActivationArg> {
        self.activation_or(k, "linear")
    }

    /// The activation named by `k` (`default` when absent).
    pub fn activation_or(&self, k: &str, default: &str) -> Result<ActivationArg> {
        match self.get(k) {
            None => Ok(ActivationArg::new(default)),
            Some(Value::String(s)) => Ok(ActivationArg::new(s)),
            Some(v) => Err(self.err(format!("activation must be a name, got {v}"))),
        }
    }

    /// The initializer under `k`, or `default` when absent.
    pub fn initializer(&self, k: &str, default: Initializer) -> Result<Initializer> {
        match self.get(k) {
            None => Ok(default),
            Some(v) => Initializer::from_config(v).map_err(|e| self.err(e)),
        }
    }

    /// The regularizer under `k`, if any.
    pub fn regularizer(&self, k: &str) -> Result<Option<Regularizer>> {
        match self.get(k) {
            None => Ok(None),
            Some(v) => Regularizer::from_config(v).map_err(|e| self.err(e)),
        }
    }

    /// An error for any of `keys` set (to something other than null): options the layer
    /// does not support.
    pub fn unsupported(&self, keys: &[&str]) -> Result<()> {
        match keys.iter().find(|k| self.get(k).is_some()) {
            Some(k) => Err(self.err(format!("'{k}' is not supported"))),
            None => Ok(()),
        }
    }
}

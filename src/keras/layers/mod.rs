//! The layers, and reading one back from its Keras config.

mod core;
mod dense;
mod input;

pub use self::core::{Activation, Dropout, Flatten};
pub use dense::Dense;
pub use input::Input;

use crate::keras::layer::Layer;
use crate::{Error, Result};
use serde_json::{Map, Value};

/// The layer a Keras config describes (`class_name` and its `config`); an error names the
/// layer and what Keras would reject.
pub fn from_config(class_name: &str, config: &Map<String, Value>) -> Result<Box<dyn Layer>> {
    let name = config.get("name").and_then(Value::as_str);
    let bad = |msg: String| {
        Error::invalid(format!(
            "layer '{}' ({class_name}): {msg}",
            name.unwrap_or("?")
        ))
    };
    let num = |k: &str| config.get(k).and_then(Value::as_f64);
    let act = |k: &str| -> Result<String> {
        match config.get(k) {
            None | Some(Value::Null) => Ok("linear".into()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(v) => Err(bad(format!("activation must be a name, got {v}"))),
        }
    };
    for k in [
        "kernel_regularizer",
        "bias_regularizer",
        "activity_regularizer",
        "kernel_constraint",
        "bias_constraint",
    ] {
        if config.get(k).is_some_and(|v| !v.is_null()) {
            return Err(bad(format!("'{k}' is not supported")));
        }
    }
    let layer: Box<dyn Layer> = match class_name {
        "InputLayer" => {
            let dims = config
                .get("batch_shape")
                .or_else(|| config.get("batch_input_shape"))
                .and_then(Value::as_array)
                .ok_or_else(|| bad("needs 'batch_shape'".into()))?;
            let inner = dims[1..]
                .iter()
                .map(|d| d.as_u64().map(|d| d as usize))
                .collect::<Option<Vec<usize>>>()
                .ok_or_else(|| bad(format!("needs known inner dimensions, got {dims:?}")))?;
            let input = Input::new(&inner);
            Box::new(match name {
                Some(n) => input.named(n),
                None => input,
            })
        }
        "Dense" => {
            let units = config
                .get("units")
                .and_then(Value::as_u64)
                .filter(|&u| u > 0)
                .ok_or_else(|| {
                    bad(format!(
                        "Received an invalid value for `units`, expected a positive integer. \
                         Received: units={}",
                        config.get("units").unwrap_or(&Value::Null)
                    ))
                })?;
            let mut d = Dense::new(units as usize)
                .activation(&act("activation")?)
                .use_bias(
                    config
                        .get("use_bias")
                        .and_then(Value::as_bool)
                        .unwrap_or(true),
                );
            if let Some(v) = config.get("kernel_initializer") {
                d = d.kernel_initializer(crate::keras::initializers::Initializer::from_config(v)?);
            }
            if let Some(v) = config.get("bias_initializer") {
                d = d.bias_initializer(crate::keras::initializers::Initializer::from_config(v)?);
            }
            Box::new(match name {
                Some(n) => d.named(n),
                None => d,
            })
        }
        "Activation" => {
            let a = Activation::new(&act("activation")?);
            Box::new(match name {
                Some(n) => a.named(n),
                None => a,
            })
        }
        "Dropout" => {
            let rate = num("rate").ok_or_else(|| bad("needs 'rate'".into()))?;
            let d = Dropout::new(rate);
            let d = match config.get("seed").and_then(Value::as_i64) {
                Some(s) => d.seed(s),
                None => d,
            };
            Box::new(match name {
                Some(n) => d.named(n),
                None => d,
            })
        }
        "Flatten" => Box::new(Flatten::new()),
        other => {
            return Err(Error::invalid(format!(
                "layer '{}': class '{other}' is not supported (supported: InputLayer, Dense, \
                 Activation, Dropout, Flatten)",
                name.unwrap_or("?")
            )))
        }
    };
    Ok(layer)
}

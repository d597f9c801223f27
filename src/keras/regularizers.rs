//! Keras's weight regularizers (`keras.regularizers.l1`, `l2`, `l1_l2`): penalties on a
//! layer's kernel or bias that the layer adds to the model's training loss.

use crate::graph::{Graph, Output};
use crate::{Error, Result};
use serde_json::{json, Value};

/// `l1 * sum(|w|) + l2 * sum(w²)` (`keras.regularizers.L1L2`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Regularizer {
    /// Factor of the absolute values' sum.
    pub l1: f64,
    /// Factor of the squares' sum.
    pub l2: f64,
}

impl Regularizer {
    /// `keras.regularizers.l1(l1)` (Keras's default factor is 0.01).
    pub fn l1(l1: f64) -> Regularizer {
        Regularizer { l1, l2: 0.0 }
    }

    /// `keras.regularizers.l2(l2)` (Keras's default factor is 0.01).
    pub fn l2(l2: f64) -> Regularizer {
        Regularizer { l1: 0.0, l2 }
    }

    /// `keras.regularizers.l1_l2(l1, l2)`.
    pub fn l1_l2(l1: f64, l2: f64) -> Regularizer {
        Regularizer { l1, l2 }
    }

    /// The regularizer Keras knows by `name` (`"l1"`, `"l2"`, `"l1_l2"`, each with its
    /// factors 0.01).
    pub fn get(name: &str) -> Result<Regularizer> {
        match name {
            "l1" => Ok(Regularizer::l1(0.01)),
            "l2" => Ok(Regularizer::l2(0.01)),
            "l1_l2" => Ok(Regularizer::l1_l2(0.01, 0.01)),
            other => Err(Error::invalid(format!(
                "Could not interpret regularizer identifier: '{other}' (known: l1, l2, l1_l2)"
            ))),
        }
    }

    /// The penalty on `w` as a float32 scalar.
    pub fn penalty(&self, g: &mut Graph, w: Output) -> Result<Output> {
        let dt = g.dtype(w);
        let rank = g
            .shape(w)
            .rank()
            .ok_or_else(|| Error::invalid("a regularized weight needs a known rank".to_string()))?;
        let all: Vec<i64> = (0..rank as i64).collect();
        let mut terms = Vec::new();
        if self.l1 != 0.0 {
            let a = g.abs(w)?;
            let s = g.reduce_sum(a, &all, false)?;
            let f = g.scalar_like(dt, self.l1)?;
            terms.push(g.mul(f, s)?);
        }
        if self.l2 != 0.0 {
            let sq = g.square(w)?;
            let s = g.reduce_sum(sq, &all, false)?;
            let f = g.scalar_like(dt, self.l2)?;
            terms.push(g.mul(f, s)?);
        }
        match terms.len() {
            0 => g.scalar_like(dt, 0.0),
            1 => Ok(terms[0]),
            _ => g.add(terms[0], terms[1]),
        }
    }

    /// Keras 3's serialized form: class `L1`, `L2` or `L1L2`.
    pub fn to_config(&self) -> Value {
        let (class, config) = match (self.l1 != 0.0, self.l2 != 0.0) {
            (true, false) => ("L1", json!({"l1": self.l1})),
            (false, true) => ("L2", json!({"l2": self.l2})),
            _ => ("L1L2", json!({"l1": self.l1, "l2": self.l2})),
        };
        json!({
            "module": "keras.regularizers",
            "class_name": class,
            "config": config,
            "registered_name": null
        })
    }

    /// A layer's optional regularizer as its config entry: the serialized form or `null`.
    pub(crate) fn serialize(r: Option<Regularizer>) -> Value {
        r.map_or(Value::Null, |r| r.to_config())
    }

    /// Reads a regularizer from a Keras config: `null`, a name, or a
    /// `{"class_name", "config"}` object.
    pub fn from_config(v: &Value) -> Result<Option<Regularizer>> {
        if v.is_null() {
            return Ok(None);
        }
        if let Some(name) = v.as_str() {
            return Regularizer::get(name).map(Some);
        }
        let class = v
            .get("class_name")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::invalid(format!("regularizer config without class_name: {v}")))?;
        let factor = |k: &str| -> Result<f64> {
            match v.get("config").and_then(|c| c.get(k)) {
                None | Some(Value::Null) => Ok(0.0),
                Some(x) => x.as_f64().filter(|f| *f >= 0.0).ok_or_else(|| {
                    Error::invalid(format!(
                        "regularizer {class}: '{k}' must be a non-negative number, got {x}"
                    ))
                }),
            }
        };
        Ok(Some(match class {
            "L1" => Regularizer::l1(factor("l1")?),
            "L2" => Regularizer::l2(factor("l2")?),
            "L1L2" => Regularizer::l1_l2(factor("l1")?, factor("l2")?),
            other => {
                return Err(Error::invalid(format!(
                    "Could not interpret regularizer identifier: '{other}'"
                )))
            }
        }))
    }
}

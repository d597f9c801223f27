//! `Input` / `InputLayer`: declares a model's input shape up front.

use crate::graph::{Graph, Output};
use crate::keras::layer::{format_shape, unique_name, CallContext, Layer, Shape};
use crate::{Error, Result};
use serde_json::{Map, Value};

/// `keras.Input(shape)`: the shape of one sample (no batch axis). Put first in a
/// `Sequential` to build it at once.
#[derive(Clone, Debug)]
pub struct Input {
    name: String,
    batch_shape: Shape,
}

impl Input {
    /// An input of samples shaped `shape` (the batch axis is added, unknown).
    pub fn new(shape: &[usize]) -> Input {
        let mut batch_shape = vec![None];
        batch_shape.extend(shape.iter().map(|&d| Some(d)));
        Input {
            name: unique_name("input_layer"),
            batch_shape,
        }
    }

    /// An input named `name` of batch shape `batch_shape` (batch first).
    pub(crate) fn from_batch_shape(batch_shape: &[Option<usize>], name: &str) -> Input {
        Input {
            name: name.to_string(),
            batch_shape: batch_shape.to_vec(),
        }
    }

    /// Replaces the automatic name.
    pub fn named(mut self, name: &str) -> Input {
        self.name = name.to_string();
        self
    }

    /// `(None, *shape)`.
    pub fn batch_shape(&self) -> &Shape {
        &self.batch_shape
    }
}

impl Layer for Input {
    fn name(&self) -> &str {
        &self.name
    }

    fn class_name(&self) -> &'static str {
        "InputLayer"
    }

    fn built(&self) -> bool {
        true
    }

    fn build(&mut self, _g: &mut Graph, _input_shape: &[Option<usize>]) -> Result<()> {
        Ok(())
    }

    fn compute_output_shape(&self, input_shape: &[Option<usize>]) -> Result<Shape> {
        if input_shape.len() != self.batch_shape.len() {
            return Err(Error::invalid(format!(
                "input '{}' expects shape {}, got {}",
                self.name,
                format_shape(&self.batch_shape),
                format_shape(input_shape)
            )));
        }
        Ok(self.batch_shape.clone())
    }

    fn call(&self, _g: &mut Graph, x: Output, _ctx: &mut CallContext) -> Result<Output> {
        Ok(x)
    }

    fn input_batch_shape(&self) -> Option<Shape> {
        Some(self.batch_shape.clone())
    }

    fn get_config(&self) -> Map<String, Value> {
        let mut m = Map::new();
        let dims: Vec<Value> = self
            .batch_shape
            .iter()
            .map(|d| d.map_or(Value::Null, Value::from))
            .collect();
        m.insert("batch_shape".into(), Value::from(dims));
        m.insert("dtype".into(), Value::from("float32"));
        m.insert("sparse".into(), Value::from(false));
        m.insert("ragged".into(), Value::from(false));
        m.insert("name".into(), Value::from(self.name.clone()));
        m.insert("optional".into(), Value::from(false));
        m
    }
}

//! `Input` / `InputLayer`: declares a model's input shape up front.

use crate::graph::{Graph, Output};
use crate::keras::layer::{format_shape, unique_name, CallContext, Layer, Shape};
use crate::keras::layers::args::Args;
use crate::tensor::DType;
use crate::{Error, Result};
use serde_json::{Map, Value};

/// `keras.Input(shape, dtype, name)`: the shape of one sample (no batch axis) and its
/// dtype (float32 unless [`Input::dtype`] says otherwise; int32 or int64 ids feed an
/// `Embedding` as they are). Put first in a `Sequential` to build it at once.
#[derive(Clone, Debug)]
pub struct Input {
    name: String,
    batch_shape: Shape,
    dtype: DType,
}

impl Input {
    /// An input of samples shaped `shape` (the batch axis is added, unknown).
    pub fn new(shape: &[usize]) -> Input {
        let mut batch_shape = vec![None];
        batch_shape.extend(shape.iter().map(|&d| Some(d)));
        Input {
            name: unique_name("input_layer"),
            batch_shape,
            dtype: DType::Float32,
        }
    }

    /// The dtype of the input (default float32): the model's placeholder has it, arrays
    /// given to `fit`/`predict` are cast to it, and a saved model's signature declares it.
    pub fn dtype(mut self, dtype: DType) -> Input {
        self.dtype = dtype;
        self
    }

    /// The layer a Keras `InputLayer` config describes (`batch_shape` with known inner
    /// dimensions, `dtype`, `name`).
    pub(crate) fn from_args(a: &Args<'_>) -> Result<Input> {
        let dims = a
            .raw("batch_shape")
            .or_else(|| a.raw("batch_input_shape"))
            .and_then(Value::as_array)
            .filter(|d| !d.is_empty())
            .ok_or_else(|| a.err("needs 'batch_shape'"))?;
        let inner = dims[1..]
            .iter()
            .map(|d| d.as_u64().map(|d| d as usize))
            .collect::<Option<Vec<usize>>>()
            .ok_or_else(|| a.err(format!("needs known inner dimensions, got {dims:?}")))?;
        let mut input = Input::new(&inner);
        if let Some(v) = a.raw("dtype") {
            // Keras 3 writes a name; a policy object (`{"config": {"name": ..}}`) also.
            let name = v
                .as_str()
                .or_else(|| v.pointer("/config/name").and_then(Value::as_str));
            input.dtype = name
                .and_then(DType::from_name)
                .filter(|d| d.is_numeric())
                .ok_or_else(|| a.err(format!("unsupported input dtype {v}")))?;
        }
        Ok(match a.name() {
            Some(n) => input.named(n),
            None => input,
        })
    }

    /// An input named `name` of batch shape `batch_shape` (batch first).
    pub(crate) fn from_batch_shape(batch_shape: &[Option<usize>], name: &str) -> Input {
        Input {
            name: name.to_string(),
            batch_shape: batch_shape.to_vec(),
            dtype: DType::Float32,
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

    fn input_spec(&self) -> Option<(Shape, DType)> {
        Some((self.batch_shape.clone(), self.dtype))
    }

    fn get_config(&self) -> Map<String, Value> {
        let mut m = Map::new();
        let dims: Vec<Value> = self
            .batch_shape
            .iter()
            .map(|d| d.map_or(Value::Null, Value::from))
            .collect();
        m.insert("batch_shape".into(), Value::from(dims));
        m.insert("dtype".into(), Value::from(self.dtype.name()));
        m.insert("sparse".into(), Value::from(false));
        m.insert("ragged".into(), Value::from(false));
        m.insert("name".into(), Value::from(self.name.clone()));
        m.insert("optional".into(), Value::from(false));
        m
    }
}

//! `Embedding`: looks up a trained vector for each integer index.

use crate::graph::{Graph, Output};
use crate::keras::initializers::Initializer;
use crate::keras::layer::{
    add_weight, base_config, format_shape, layer_error, regularize, unique_name, CallContext,
    Layer, Shape, Weight,
};
use crate::keras::layers::args::Args;
use crate::keras::regularizers::Regularizer;
use crate::tensor::DType;
use crate::Result;
use serde_json::{Map, Value};

/// Maps indices in `[0, input_dim)` to rows of an `(input_dim, output_dim)` table
/// (`keras.layers.Embedding`); float inputs are cast to int32 as Keras does.
#[derive(Debug)]
pub struct Embedding {
    name: String,
    input_dim: usize,
    output_dim: usize,
    initializer: Initializer,
    regularizer: Option<Regularizer>,
    embeddings: Option<Weight>,
}

impl Embedding {
    /// A table of `input_dim` vectors of `output_dim` values, initialized uniformly in
    /// ±0.05.
    pub fn new(input_dim: usize, output_dim: usize) -> Embedding {
        Embedding {
            name: unique_name("embedding"),
            input_dim,
            output_dim,
            initializer: Initializer::RandomUniform {
                minval: -0.05,
                maxval: 0.05,
                seed: None,
            },
            regularizer: None,
            embeddings: None,
        }
    }

    /// The table's initializer (`embeddings_initializer`).
    pub fn embeddings_initializer(mut self, init: Initializer) -> Self {
        self.initializer = init;
        self
    }

    /// A penalty on the table added to the training loss (`embeddings_regularizer`).
    pub fn embeddings_regularizer(mut self, r: Regularizer) -> Self {
        self.regularizer = Some(r);
        self
    }

    /// Replaces the automatic name.
    pub fn named(mut self, name: &str) -> Self {
        self.name = name.to_string();
        self
    }

    /// The layer a Keras config describes.
    pub(crate) fn from_args(a: &Args<'_>) -> Result<Self> {
        a.unsupported(&["activity_regularizer", "embeddings_constraint"])?;
        if a.bool_or("mask_zero", false)? {
            return Err(a.err("'mask_zero' is not supported"));
        }
        let mut e = Embedding::new(a.positive("input_dim")?, a.positive("output_dim")?);
        e.initializer = a.initializer("embeddings_initializer", e.initializer.clone())?;
        e.regularizer = a.regularizer("embeddings_regularizer")?;
        Ok(match a.name() {
            Some(n) => e.named(n),
            None => e,
        })
    }
}

impl Layer for Embedding {
    fn name(&self) -> &str {
        &self.name
    }
    fn class_name(&self) -> &'static str {
        "Embedding"
    }
    fn built(&self) -> bool {
        self.embeddings.is_some()
    }
    fn build(&mut self, g: &mut Graph, input_shape: &[Option<usize>]) -> Result<()> {
        self.compute_output_shape(input_shape)?;
        let table =
            self.initializer
                .create(g, &[self.input_dim, self.output_dim], DType::Float32)?;
        self.embeddings = Some(add_weight(g, &self.name, "embeddings", table, true)?);
        Ok(())
    }
    fn compute_output_shape(&self, input_shape: &[Option<usize>]) -> Result<Shape> {
        if self.input_dim == 0 || self.output_dim == 0 {
            return Err(layer_error(
                self,
                format!(
                    "input_dim and output_dim must be positive, got {} and {}",
                    self.input_dim, self.output_dim
                ),
            ));
        }
        if input_shape.is_empty() {
            return Err(layer_error(
                self,
                format!(
                    "needs an input with a batch axis, got shape {}",
                    format_shape(input_shape)
                ),
            ));
        }
        let mut out = input_shape.to_vec();
        out.push(Some(self.output_dim));
        Ok(out)
    }
    fn call(&self, g: &mut Graph, x: Output, ctx: &mut CallContext) -> Result<Output> {
        let table = self
            .embeddings
            .as_ref()
            .ok_or_else(|| layer_error(self, "called before it was built"))?;
        regularize(g, ctx, Some(table), self.regularizer)?;
        let read = table.var.read;
        let name = self.name.clone();
        g.name_scope(&name, |g| {
            let ids = match g.dtype(x) {
                DType::Int32 | DType::Int64 => x,
                _ => g.cast(x, DType::Int32)?,
            };
            g.gather(read, ids, 0)
        })
    }
    fn weights(&self) -> Vec<Weight> {
        self.embeddings.iter().cloned().collect()
    }
    fn get_config(&self) -> Map<String, Value> {
        let mut m = base_config(&self.name);
        m.insert("input_dim".into(), Value::from(self.input_dim));
        m.insert("output_dim".into(), Value::from(self.output_dim));
        m.insert(
            "embeddings_initializer".into(),
            self.initializer.to_config(),
        );
        m.insert(
            "embeddings_regularizer".into(),
            Regularizer::serialize(self.regularizer),
        );
        for k in ["activity_regularizer", "embeddings_constraint"] {
            m.insert(k.into(), Value::Null);
        }
        m.insert("mask_zero".into(), Value::from(false));
        m.insert("quantization_config".into(), Value::Null);
        m
    }
}

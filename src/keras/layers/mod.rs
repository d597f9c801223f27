//! The layers, and reading one back from its Keras config.

mod args;
mod conv;
mod core;
mod dense;
mod depthwise;
mod embedding;
mod input;
mod kernel;
mod merge;
mod normalization;
mod pooling;
mod recurrent;
mod reshaping;

pub use self::core::{Activation, Dropout, Flatten};
pub use args::{Padding, Size2};
pub use conv::Conv2D;
pub use dense::Dense;
pub use depthwise::{
    Depthwise, DepthwiseConv2D, NoPointwise, Pointwise, PointwisePart, SeparableConv2D,
};
pub use embedding::Embedding;
pub use input::Input;
pub use merge::{Add, Concatenate, Elementwise, Merge, Multiply, Product, Sum};
pub use normalization::{BatchNormalization, LayerNormalization};
pub use pooling::{
    Average, AveragePooling2D, GlobalAveragePooling1D, GlobalAveragePooling2D, GlobalMaxPooling1D,
    GlobalMaxPooling2D, GlobalPooling, Max, MaxPooling2D, Pooling2D, Reduction,
};
pub use recurrent::{Cell, GruCell, LstmCell, Rnn, StepWeights, GRU, LSTM};
pub use reshaping::{Reshape, ZeroPadding2D};

use crate::keras::layer::Layer;
use crate::{Error, Result};
use args::Args;
use serde_json::{Map, Value};

/// The classes [`from_config`] reads.
const SUPPORTED: &str = "InputLayer, Dense, Activation, Dropout, Flatten, Reshape, Conv2D, \
     DepthwiseConv2D, SeparableConv2D, \
     MaxPooling2D, AveragePooling2D, GlobalAveragePooling1D, GlobalAveragePooling2D, \
     GlobalMaxPooling1D, GlobalMaxPooling2D, ZeroPadding2D, BatchNormalization, \
     LayerNormalization, Embedding, LSTM, GRU, Add, Multiply, Concatenate";

/// `layer`, renamed to the config's `name` when it has one.
fn named<L: Layer + 'static>(layer: L, a: &Args<'_>, rename: fn(L, &str) -> L) -> Box<dyn Layer> {
    Box::new(match a.name() {
        Some(n) => rename(layer, n),
        None => layer,
    })
}

/// The layer a Keras config describes (`class_name` and its `config`); an error names the
/// layer and what Keras would reject.
pub fn from_config(class_name: &str, config: &Map<String, Value>) -> Result<Box<dyn Layer>> {
    let a = Args::new(class_name, config);
    let layer: Box<dyn Layer> = match class_name {
        "InputLayer" => Box::new(Input::from_args(&a)?),
        "Dense" => Box::new(Dense::from_args(&a)?),
        "Activation" => named(
            Activation::new(&a.activation("activation")?.name()),
            &a,
            Activation::named,
        ),
        "Dropout" => {
            let rate = a
                .raw("rate")
                .and_then(Value::as_f64)
                .ok_or_else(|| a.err("needs 'rate'"))?;
            let d = Dropout::new(rate);
            let d = match a.raw("seed").and_then(Value::as_i64) {
                Some(s) => d.seed(s),
                None => d,
            };
            named(d, &a, Dropout::named)
        }
        "Flatten" => {
            a.channels_last()?;
            Box::new(Flatten::new())
        }
        "Reshape" => Box::new(Reshape::from_args(&a)?),
        "Conv2D" => Box::new(Conv2D::from_args(&a)?),
        "DepthwiseConv2D" => Box::new(DepthwiseConv2D::from_args(&a)?),
        "SeparableConv2D" => Box::new(SeparableConv2D::from_args(&a)?),
        "MaxPooling2D" => Box::new(MaxPooling2D::from_args(&a)?),
        "AveragePooling2D" => Box::new(AveragePooling2D::from_args(&a)?),
        "GlobalAveragePooling1D" => Box::new(GlobalAveragePooling1D::from_args(&a)?),
        "GlobalAveragePooling2D" => Box::new(GlobalAveragePooling2D::from_args(&a)?),
        "GlobalMaxPooling1D" => Box::new(GlobalMaxPooling1D::from_args(&a)?),
        "GlobalMaxPooling2D" => Box::new(GlobalMaxPooling2D::from_args(&a)?),
        "ZeroPadding2D" => Box::new(ZeroPadding2D::from_args(&a)?),
        "BatchNormalization" => Box::new(BatchNormalization::from_args(&a)?),
        "LayerNormalization" => Box::new(LayerNormalization::from_args(&a)?),
        "Embedding" => Box::new(Embedding::from_args(&a)?),
        "LSTM" => Box::new(LSTM::from_args(&a)?),
        "GRU" => Box::new(GRU::from_args(&a)?),
        "Add" => Box::new(Add::from_args(&a)?),
        "Multiply" => Box::new(Multiply::from_args(&a)?),
        "Concatenate" => Box::new(Concatenate::from_args(&a)?),
        other => {
            return Err(Error::invalid(format!(
                "layer '{}': class '{other}' is not supported (supported: {SUPPORTED})",
                a.name().unwrap_or("?")
            )))
        }
    };
    Ok(layer)
}

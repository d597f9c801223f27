//! Reading the features of a serialized `tf.train.Example` by a spec, shared by the
//! `ParseExample` op and [`ExampleParser`](crate::data::ExampleParser).

use super::wire::{self, Values};
use crate::tensor::{DType, Tensor};
use crate::{Error, Result};

/// How one feature is read (`tf.io.FixedLenFeature` / `tf.io.VarLenFeature`). The dtype
/// picks the list: float32 a `FloatList`, int64 an `Int64List`, string a `BytesList` (one
/// string per value, as TensorFlow reads it); uint8 reads a `BytesList` holding one byte
/// string as a 1-D uint8 tensor of its bytes (a raw image, say).
#[derive(Clone, Debug, PartialEq)]
pub enum FeatureSpec {
    /// Exactly `shape`'s number of values, reshaped to `shape`; `default` when the feature
    /// is missing (an error without one).
    FixedLen {
        /// float32, int64, string or uint8.
        dtype: DType,
        /// The value's shape.
        shape: Vec<usize>,
        /// Used when the record lacks the feature.
        default: Option<Tensor>,
    },
    /// Any number of values as a 1-D tensor (empty when missing); TensorFlow gives a
    /// `SparseTensor`, batch these with `padded_batch`.
    VarLen {
        /// float32, int64, string or uint8.
        dtype: DType,
    },
}

impl FeatureSpec {
    /// A required feature of `dtype` and `shape`.
    pub fn fixed_len(dtype: DType, shape: &[usize]) -> FeatureSpec {
        FeatureSpec::FixedLen {
            dtype,
            shape: shape.to_vec(),
            default: None,
        }
    }

    /// A feature of any length.
    pub fn var_len(dtype: DType) -> FeatureSpec {
        FeatureSpec::VarLen { dtype }
    }

    /// The value used when a record lacks this (fixed-length) feature.
    pub fn with_default(self, value: Tensor) -> FeatureSpec {
        match self {
            FeatureSpec::FixedLen { dtype, shape, .. } => FeatureSpec::FixedLen {
                dtype,
                shape,
                default: Some(value),
            },
            var => var,
        }
    }
}

/// Reads `features` (name and spec, names in ascending order) from one serialized
/// `tf.train.Example`: one tensor per feature, in order. Errors say which feature and why.
pub fn parse_features(record: &[u8], features: &[(&str, &FeatureSpec)]) -> Result<Vec<Tensor>> {
    let bad = |m: String| Error::Parse(format!("not a serialized tf.train.Example: {m}"));
    let mut found = vec![None; features.len()];
    let slot = |name: &str| features.binary_search_by(|(n, _)| (*n).cmp(name)).ok();
    wire::find_features(record, slot, &mut found).map_err(bad)?;
    features
        .iter()
        .zip(found)
        .map(|((name, spec), feature)| {
            let values = feature.map(wire::feature_values).transpose().map_err(bad)?;
            read_feature(values, spec)
                .map_err(|m| Error::Parse(format!("tf.train.Example feature '{name}': {m}")))
        })
        .collect()
}

/// The values of a feature as a flat tensor of `dtype`, or a message saying why not.
fn values(feature: Option<Values>, dtype: DType) -> std::result::Result<Tensor, String> {
    match (feature, dtype) {
        (Some(Values::Float(v)), DType::Float32) => Ok(Tensor::vector(v)),
        (Some(Values::Int64(v)), DType::Int64) => Ok(Tensor::vector(v)),
        (Some(Values::Bytes(v)), DType::String) => {
            Tensor::from_strings(&[v.len()], v.iter().map(|b| b.to_vec()).collect())
                .map_err(|e| e.to_string())
        }
        (Some(Values::Bytes(v)), DType::UInt8) if v.len() == 1 => Ok(Tensor::vector(v[0].to_vec())),
        (Some(Values::Bytes(v)), DType::UInt8) => Err(format!(
            "a uint8 feature reads one byte string, the record has {}",
            v.len()
        )),
        (None, DType::Float32 | DType::Int64 | DType::String) => Ok(Tensor::zeros(dtype, &[0])),
        (None, DType::UInt8) => Err("the feature has no value list".into()),
        (Some(kind), DType::Float32 | DType::Int64 | DType::String | DType::UInt8) => {
            let found = match kind {
                Values::Bytes(_) => "bytes_list",
                Values::Float(_) => "float_list",
                Values::Int64(_) => "int64_list",
            };
            Err(format!("expected {dtype} values, the record has a {found}"))
        }
        (_, other) => Err(format!(
            "dtype {other} is not a tf.train.Example type (float32, int64, string, uint8 bytes)"
        )),
    }
}

fn read_feature(
    feature: Option<Option<Values>>,
    spec: &FeatureSpec,
) -> std::result::Result<Tensor, String> {
    match (spec, feature) {
        (FeatureSpec::VarLen { dtype }, None) => match dtype {
            DType::Float32 | DType::Int64 | DType::String | DType::UInt8 => {
                Ok(Tensor::zeros(*dtype, &[0]))
            }
            other => Err(format!("dtype {other} is not a tf.train.Example type")),
        },
        (FeatureSpec::VarLen { dtype }, Some(f)) => values(f, *dtype),
        (FeatureSpec::FixedLen { default, .. }, None) => default
            .clone()
            .ok_or_else(|| "missing from the record, and the spec has no default".into()),
        (FeatureSpec::FixedLen { dtype, shape, .. }, Some(f)) => {
            let v = values(f, *dtype)?;
            if *dtype == DType::UInt8 {
                return Ok(v);
            }
            let want: usize = shape.iter().product();
            if v.len() != want {
                return Err(format!(
                    "expected {want} values for shape {shape:?}, the record has {}",
                    v.len()
                ));
            }
            v.reshape(shape).map_err(|e| e.to_string())
        }
    }
}

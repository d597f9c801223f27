//! `tf.train.Example` records: decoding (`tf.io.parse_single_example`) into a dict element
//! of tensors by a feature spec, and building them for writing.

use super::Element;
use crate::proto::tf;
use crate::tensor::{DType, Tensor};
use crate::{Error, Result};
use prost::Message;
use std::collections::BTreeMap;

/// How one feature is read (`tf.io.FixedLenFeature` / `tf.io.VarLenFeature`). The dtype
/// picks the list: float32 a `FloatList`, int64 an `Int64List`, uint8 a `BytesList`
/// holding one byte string (read as a 1-D uint8 tensor of its bytes).
#[derive(Clone, Debug, PartialEq)]
pub enum FeatureSpec {
    /// Exactly `shape`'s number of values, reshaped to `shape`; `default` when the feature
    /// is missing (an error without one).
    FixedLen {
        /// float32, int64 or uint8.
        dtype: DType,
        /// The value's shape.
        shape: Vec<usize>,
        /// Used when the record lacks the feature.
        default: Option<Tensor>,
    },
    /// Any number of values as a 1-D tensor (empty when missing); TensorFlow gives a
    /// `SparseTensor`, batch these with `padded_batch`.
    VarLen {
        /// float32, int64 or uint8.
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

/// Decodes one serialized `tf.train.Example`.
pub fn decode_example(record: &[u8]) -> Result<tf::Example> {
    tf::Example::decode(record)
        .map_err(|e| Error::Parse(format!("not a serialized tf.train.Example: {e}")))
}

/// Parses serialized `tf.train.Example` records into dict elements of tensors, one entry
/// per feature of the spec (`tf.io.parse_single_example(record, features)`).
///
/// ```
/// use rustflow::data::{ExampleBuilder, ExampleParser, FeatureSpec};
/// use rustflow::{DType, Tensor};
/// let record = ExampleBuilder::new().float("x", &[1.0, 2.0]).int64("label", &[7]).to_bytes();
/// let parser = ExampleParser::new()
///     .feature("x", FeatureSpec::fixed_len(DType::Float32, &[2]))
///     .feature("label", FeatureSpec::fixed_len(DType::Int64, &[]));
/// let e = parser.parse(&record).unwrap();
/// assert_eq!(e.get("x").unwrap().tensor().unwrap(), &Tensor::from([1f32, 2.0]));
/// assert_eq!(e.get("label").unwrap().tensor().unwrap(), &Tensor::scalar(7i64));
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ExampleParser {
    features: BTreeMap<String, FeatureSpec>,
}

impl ExampleParser {
    /// A parser of no features.
    pub fn new() -> ExampleParser {
        ExampleParser::default()
    }

    /// Adds a feature to read.
    pub fn feature(mut self, name: &str, spec: FeatureSpec) -> ExampleParser {
        self.features.insert(name.to_string(), spec);
        self
    }

    /// Parses one serialized record.
    pub fn parse(&self, record: &[u8]) -> Result<Element> {
        let mut example = decode_example(record)?;
        let mut found = example
            .features
            .take()
            .map(|f| f.feature)
            .unwrap_or_default();
        self.features
            .iter()
            .map(|(name, spec)| {
                let t = read_feature(found.remove(name), spec)
                    .map_err(|m| Error::Parse(format!("tf.train.Example feature '{name}': {m}")))?;
                Ok((name.clone(), Element::Tensor(t)))
            })
            .collect::<Result<BTreeMap<_, _>>>()
            .map(Element::Dict)
    }

    /// Parses a record given as a 1-D uint8 tensor (an element of
    /// [`Dataset::from_tfrecord`](super::Dataset::from_tfrecord)), for use in `map`.
    pub fn parse_element(&self, record: &Element) -> Result<Element> {
        self.parse(record.tensor()?.as_slice::<u8>()?)
    }
}

/// The values of a feature as a flat tensor of `dtype`, or a message saying why not.
fn values(feature: tf::Feature, dtype: DType) -> std::result::Result<Tensor, String> {
    use tf::feature::Kind;
    match (feature.kind, dtype) {
        (Some(Kind::FloatList(l)), DType::Float32) => Ok(Tensor::vector(l.value)),
        (Some(Kind::Int64List(l)), DType::Int64) => Ok(Tensor::vector(l.value)),
        (Some(Kind::BytesList(mut l)), DType::UInt8) if l.value.len() == 1 => {
            Ok(Tensor::vector(l.value.remove(0)))
        }
        (Some(Kind::BytesList(l)), DType::UInt8) => Err(format!(
            "a uint8 feature reads one byte string, the record has {}",
            l.value.len()
        )),
        (None, DType::Float32 | DType::Int64) => Ok(Tensor::zeros(dtype, &[0])),
        (None, DType::UInt8) => Err("the feature has no value list".into()),
        (Some(kind), DType::Float32 | DType::Int64 | DType::UInt8) => {
            let found = match kind {
                Kind::BytesList(_) => "bytes_list",
                Kind::FloatList(_) => "float_list",
                Kind::Int64List(_) => "int64_list",
            };
            Err(format!("expected {dtype} values, the record has a {found}"))
        }
        (_, other) => Err(format!(
            "dtype {other} is not a tf.train.Example type (float32, int64, uint8 bytes)"
        )),
    }
}

fn read_feature(
    feature: Option<tf::Feature>,
    spec: &FeatureSpec,
) -> std::result::Result<Tensor, String> {
    match (spec, feature) {
        (FeatureSpec::VarLen { dtype }, None) => match dtype {
            DType::Float32 | DType::Int64 | DType::UInt8 => Ok(Tensor::zeros(*dtype, &[0])),
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

/// Builds a `tf.train.Example` feature by feature (what `tf.train.Example(features=...)`
/// builds in Python), for [`TFRecordWriter`](super::TFRecordWriter).
#[derive(Clone, Debug, Default)]
pub struct ExampleBuilder {
    features: BTreeMap<String, tf::Feature>,
}

impl ExampleBuilder {
    /// An example with no features.
    pub fn new() -> ExampleBuilder {
        ExampleBuilder::default()
    }

    fn with(mut self, name: &str, kind: tf::feature::Kind) -> ExampleBuilder {
        self.features
            .insert(name.to_string(), tf::Feature { kind: Some(kind) });
        self
    }

    /// A `FloatList` feature.
    pub fn float(self, name: &str, values: &[f32]) -> ExampleBuilder {
        let l = tf::FloatList {
            value: values.to_vec(),
        };
        self.with(name, tf::feature::Kind::FloatList(l))
    }

    /// An `Int64List` feature.
    pub fn int64(self, name: &str, values: &[i64]) -> ExampleBuilder {
        let l = tf::Int64List {
            value: values.to_vec(),
        };
        self.with(name, tf::feature::Kind::Int64List(l))
    }

    /// A `BytesList` feature.
    pub fn bytes(self, name: &str, values: &[&[u8]]) -> ExampleBuilder {
        let l = tf::BytesList {
            value: values.iter().map(|v| v.to_vec()).collect(),
        };
        self.with(name, tf::feature::Kind::BytesList(l))
    }

    /// The example message.
    pub fn build(self) -> tf::Example {
        tf::Example {
            features: Some(tf::Features {
                feature: self.features,
            }),
        }
    }

    /// The serialized example (a TFRecord's data).
    pub fn to_bytes(self) -> Vec<u8> {
        self.build().encode_to_vec()
    }
}

//! `tf.train.Example` records: decoding (`tf.io.parse_single_example`) into a dict element
//! of tensors by a feature spec, and building them for writing.

use super::Element;
use crate::ops::parsing::parse_features;
pub use crate::ops::parsing::FeatureSpec;
use crate::proto::tf;
use crate::{Error, Result};
use prost::Message;
use std::collections::BTreeMap;

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
        let features: Vec<(&str, &FeatureSpec)> =
            self.features.iter().map(|(n, s)| (n.as_str(), s)).collect();
        let tensors = parse_features(record, &features)?;
        Ok(Element::Dict(
            self.features
                .keys()
                .cloned()
                .zip(tensors.into_iter().map(Element::Tensor))
                .collect(),
        ))
    }

    /// Parses a record given as a 1-D uint8 tensor (an element of
    /// [`Dataset::from_tfrecord`](super::Dataset::from_tfrecord)), for use in `map`.
    pub fn parse_element(&self, record: &Element) -> Result<Element> {
        self.parse(record.tensor()?.as_slice::<u8>()?)
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

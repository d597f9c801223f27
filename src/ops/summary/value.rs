//! `Summary.Value`s as TensorFlow 1's summary ops write them: a scalar as `simple_value`, a
//! histogram as `histo`, text as a string tensor for TensorBoard's text plugin.

use super::histogram::Histogram;
use crate::pb::tf;

/// A scalar, as `tf.compat.v1.summary.scalar` writes it (`simple_value`).
pub fn scalar(tag: &str, value: f32) -> tf::summary::Value {
    tagged(tag, tf::summary::value::Value::SimpleValue(value))
}

/// A histogram, as `tf.compat.v1.summary.histogram` writes it (`histo`).
pub fn histogram(tag: &str, h: &Histogram) -> tf::summary::Value {
    tagged(tag, tf::summary::value::Value::Histo(h.to_proto()))
}

/// Text (Markdown), as `tf.compat.v1.summary.text` writes it: a rank-0 `DT_STRING` tensor
/// with `plugin_name: "text"` metadata.
pub fn text(tag: &str, text: &str) -> tf::summary::Value {
    let tensor = tf::TensorProto {
        dtype: tf::DataType::DtString as i32,
        // A scalar: no dims.
        tensor_shape: Some(tf::TensorShapeProto::default()),
        string_val: vec![text.as_bytes().to_vec()],
        ..Default::default()
    };
    tf::summary::Value {
        metadata: Some(tf::SummaryMetadata {
            plugin_data: Some(tf::summary_metadata::PluginData {
                plugin_name: "text".into(),
                content: Vec::new(),
            }),
            ..Default::default()
        }),
        ..tagged(tag, tf::summary::value::Value::Tensor(tensor))
    }
}

fn tagged(tag: &str, value: tf::summary::value::Value) -> tf::summary::Value {
    tf::summary::Value {
        tag: tag.to_string(),
        value: Some(value),
        ..Default::default()
    }
}

//! Input pipelines in the style of `tf.data` and PyTorch's `DataLoader`.
//!
//! A [`Dataset`] is a source (tensors in memory, `.npy`, CSV or TFRecord files) followed by
//! transformations (`shuffle`, `batch`, `map`, `prefetch`, ...); iterating it yields
//! [`Element`]s: a tensor, or a tuple or dict of them, batched or not.
//!
//! ```
//! use rustflow::data::Dataset;
//! use rustflow::Tensor;
//! // tf.data.Dataset.range(10).shuffle(10, seed=1).batch(2).prefetch(2)
//! let ds = Dataset::range(10).shuffle(10, Some(1), true).batch(2, false).prefetch(2);
//! let mut seen = Vec::new();
//! for batch in &ds {
//!     seen.extend(batch.unwrap().tensor().unwrap().to_vec::<i64>().unwrap());
//! }
//! seen.sort();
//! assert_eq!(seen, (0..10).collect::<Vec<i64>>());
//! ```

mod batch;
mod csv;
mod dataset;
mod element;
mod example;
mod graph_fn;
mod loader;
mod npy;
mod parallel;
mod queue;
mod shuffle;
mod sources;
mod tfrecord;
mod transform;

pub use batch::Padding;
pub use csv::CsvOptions;
pub use dataset::{Cardinality, Dataset, DatasetOp, ElementIter, Iter};
pub use element::Element;
pub use example::{decode_example, ExampleBuilder, ExampleParser, FeatureSpec};
pub use graph_fn::GraphFunction;
pub use loader::{DataLoader, Sampler};
pub use parallel::{MapOptions, MAX_MAP_THREADS};
pub use tfrecord::{write_framed, Compression, TFRecordReader, TFRecordWriter};
pub use transform::MapFn;

#[cfg(test)]
mod tests;

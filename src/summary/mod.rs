//! TensorBoard event files, as TensorFlow 1's `tf.summary` writes them.
//!
//! A [`FileWriter`] writes `events.out.tfevents.<seconds>.<host>` in a log directory:
//! TFRecord-framed `Event` protos ([`crate::data::write_framed`]), the first holding `file_version:
//! "brain.Event:2"`, then scalars, histograms with TensorFlow's buckets ([`Histogram`]),
//! text and the graph. `tensorboard --logdir DIR` shows them; [`read_events`] reads them back.

mod reader;
mod writer;

pub use crate::ops::summary::histogram::{default_bucket_limits, Histogram};
pub use crate::ops::summary::value;
pub use reader::read_events;
pub use writer::{FileWriter, FILE_VERSION};

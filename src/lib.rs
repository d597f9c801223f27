//! rustflow: a TensorFlow-1-style static dataflow graph engine.
//!
//! Build a [`Graph`] of TensorFlow-named ops (dtype and shape checked as each node is
//! added), then run it with a multi-threaded [`Session`].
//!
//! ```
//! use rustflow::{Graph, Session, Tensor};
//! let mut g = Graph::new();
//! let a = g.constant(Tensor::from([[1i32, 2], [3, 4]])).unwrap();
//! let b = g.constant(Tensor::from([[5i32, 6], [7, 8]])).unwrap();
//! let c = g.matmul(a, b).unwrap();
//! let sess = Session::new(&g);
//! let out = sess.run(&[], &[c], &[]).unwrap();
//! assert_eq!(out[0].as_slice::<i32>().unwrap(), &[19, 22, 43, 50]);
//! ```

#![warn(missing_docs)]

pub mod autodiff;
mod crc;
pub mod data;
pub mod device;
mod error;
pub mod graph;
pub mod keras;
pub mod kernel;
pub mod ops;
pub mod passes;
pub mod pb;
pub mod proto;
pub mod saved_model;
pub mod serving;
pub mod session;
pub mod summary;
pub mod tensor;
#[cfg(test)]
mod test_util;
pub mod train;
mod util;

pub use error::{Error, Result};
pub use graph::VariableHandle;
pub use graph::{AttrValue, Graph, NodeId, Output, TensorSpec};
pub use session::{Session, SessionOptions};
pub use tensor::{DType, PartialShape, Tensor};
pub use util::atomic_write;

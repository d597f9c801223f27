//! Graph functions for [`Dataset::map_graph`]: `tf.data`'s traced `map` function. The
//! function is built once as a graph of TensorFlow ops over placeholders standing for the
//! element's tensors, and a one-thread session runs it for each element, so a pipeline can
//! use any op the engine has (and the same op semantics as a model) without writing a
//! closure over tensors by hand.

use super::dataset::Dataset;
use super::element::Element;
use crate::graph::{Graph, Output, TensorSpec};
use crate::session::{Callable, Session, SessionOptions};
use crate::tensor::Tensor;
use crate::{Error, Result};
use std::sync::Arc;

/// A function of tensors built as a graph, run element by element (`tf.function` traced by
/// `Dataset.map`). Cheap to clone; clones share one session, which may run on several
/// threads at once (see [`Dataset::map_with`]).
///
/// ```
/// use rustflow::data::{Dataset, GraphFunction};
/// use rustflow::{DType, PartialShape, Tensor, TensorSpec};
/// // ds.map(lambda x, y: (tf.cast(x, tf.float32) / 255.0, y))
/// let scale = GraphFunction::new(
///     &[TensorSpec::new(DType::UInt8, [Some(2)]), TensorSpec::new(DType::Int64, PartialShape::scalar())],
///     |g, args| {
///         let x = g.cast(args[0], DType::Float32)?;
///         let k = g.constant(Tensor::scalar(255.0f32))?;
///         Ok(vec![g.div(x, k)?, args[1]])
///     },
/// )?;
/// let x = Tensor::new(&[2, 2], vec![0u8, 255, 51, 102])?;
/// let y = Tensor::from([3i64, 4]);
/// let ds = Dataset::from_tensor_slices((x, y))?.map_graph(&scale);
/// let first = ds.iter().next().unwrap()?;
/// assert_eq!(first.at(0)?.tensor()?, &Tensor::from([0.0f32, 1.0]));
/// # Ok::<(), rustflow::Error>(())
/// ```
#[derive(Clone)]
pub struct GraphFunction {
    inner: Arc<Compiled>,
}

struct Compiled {
    session: Session,
    callable: Callable,
    signature: Vec<TensorSpec>,
    outputs: usize,
}

impl GraphFunction {
    /// Builds the function: `build` gets a fresh graph and one placeholder per entry of
    /// `signature` (named `arg0`, `arg1`, ...) and returns the outputs. An element of one
    /// tensor matches a one-entry signature; a tuple of tensors matches entry by entry.
    /// One output gives a tensor element, several a tuple.
    pub fn new<F>(signature: &[TensorSpec], build: F) -> Result<GraphFunction>
    where
        F: FnOnce(&mut Graph, &[Output]) -> Result<Vec<Output>>,
    {
        if signature.is_empty() {
            return Err(Error::invalid(
                "a dataset graph function needs at least one input in its signature",
            ));
        }
        let mut g = Graph::new();
        let args = signature
            .iter()
            .enumerate()
            .map(|(i, spec)| g.placeholder(spec.dtype, spec.shape.clone(), &format!("arg{i}")))
            .collect::<Result<Vec<_>>>()?;
        let outputs = build(&mut g, &args)?;
        if outputs.is_empty() {
            return Err(Error::invalid(
                "a dataset graph function must return at least one output",
            ));
        }
        let session = Session::with_options(&g, SessionOptions::with_threads(1));
        let callable = session.make_callable(&args, &outputs, &[])?;
        Ok(GraphFunction {
            inner: Arc::new(Compiled {
                session,
                callable,
                signature: signature.to_vec(),
                outputs: outputs.len(),
            }),
        })
    }

    /// Runs the function on one element.
    pub fn call(&self, element: Element) -> Result<Element> {
        let f = &self.inner;
        let n = f.signature.len();
        let args: Vec<Tensor> = match element {
            Element::Tensor(t) if n == 1 => vec![t],
            Element::Tuple(items) if items.len() == n => items
                .into_iter()
                .map(Element::into_tensor)
                .collect::<Result<_>>()
                .map_err(|e| self.mismatch(&e.to_string()))?,
            other => return Err(self.mismatch(&format!("got a {} element", other.kind()))),
        };
        let mut out = f
            .session
            .run_callable(&f.callable, args)
            .map_err(|e| Error::invalid(format!("in a dataset graph function: {e}")))?;
        Ok(if f.outputs == 1 {
            Element::Tensor(out.remove(0))
        } else {
            Element::Tuple(out.into_iter().map(Element::Tensor).collect())
        })
    }

    fn mismatch(&self, what: &str) -> Error {
        let specs: Vec<String> = self.inner.signature.iter().map(|s| s.to_string()).collect();
        Error::invalid(format!(
            "a dataset graph function taking ({}) {what}",
            specs.join(", ")
        ))
    }
}

impl Dataset {
    /// Applies a graph function to every element (`Dataset.map` with a traced function).
    /// For worker threads, pass `move |e| f.call(e)` to [`Dataset::map_with`].
    pub fn map_graph(&self, f: &GraphFunction) -> Dataset {
        let f = f.clone();
        self.map(move |e| f.call(e))
    }
}

//! A GradientTape-style API over the symbolic gradient pass.

use super::{GradientOptions, Unconnected};
use crate::graph::{Graph, Output};
use crate::Result;

/// Records the ops created after it starts; [`GradientTape::gradient`] differentiates
/// through those ops only, as `tf.GradientTape` does.
///
/// ```
/// use rustflow::{autodiff::GradientTape, Graph, Session};
/// let mut g = Graph::new();
/// let x = g.constant(3.0f32).unwrap();
/// let mut tape = GradientTape::new(&g);
/// tape.watch(x);
/// let y = g.mul(x, x).unwrap();                 // y = x²
/// let dy_dx = tape.gradient(&mut g, y, &[x]).unwrap()[0].unwrap();
/// let out = Session::new(&g).run(&[], &[dy_dx], &[]).unwrap();
/// assert_eq!(out[0].scalar_value::<f32>().unwrap(), 6.0);
/// ```
#[derive(Clone, Debug)]
pub struct GradientTape {
    start: usize,
    watched: Vec<Output>,
}

impl GradientTape {
    /// Starts recording: every op added to `graph` from now on is on the tape.
    pub fn new(graph: &Graph) -> Self {
        GradientTape {
            start: graph.next_node_index(),
            watched: Vec::new(),
        }
    }

    /// Watches a tensor made before the tape started, so gradients with respect to it exist.
    pub fn watch(&mut self, x: Output) {
        self.watched.push(x);
    }

    /// Gradients of `y` with respect to each source; `None` for a source that is not
    /// watched, not a variable and not made on the tape, or that `y` does not depend on.
    pub fn gradient(
        &self,
        graph: &mut Graph,
        y: Output,
        sources: &[Output],
    ) -> Result<Vec<Option<Output>>> {
        let opts = GradientOptions {
            recorded_from: self.start,
            unconnected: Unconnected::None,
            ..GradientOptions::default()
        };
        let grads = graph.gradients_with(&[y], sources, &opts)?;
        Ok(grads
            .into_iter()
            .zip(sources)
            .map(|(gr, &x)| if self.is_watched(graph, x) { gr } else { None })
            .collect())
    }

    fn is_watched(&self, graph: &Graph, x: Output) -> bool {
        if x.node.index() >= self.start || self.watched.contains(&x) {
            return true;
        }
        // Variables are watched automatically: the VariableV2 itself or its `read` Identity.
        let node = graph.node(x.node);
        node.op_type() == "VariableV2"
            || (node.op_type() == "Identity"
                && graph.node(node.inputs()[0].node).op_type() == "VariableV2")
    }
}

//! Functions of a graph's library: the bodies, conditions and branches that functional
//! control flow (`While`, `If`) runs, each a graph of its own with placeholders for its
//! arguments. A kernel finds them by name through [`Graph::function`] and runs them
//! through the session (see `kernel::FunctionLibrary`).

use super::{Graph, NodeId, Output};
use std::collections::BTreeMap;
use std::sync::Arc;

/// One function: its graph, whose `args` are fed and whose `rets` are fetched per call.
pub struct Function {
    /// The function's name in the library (`while_body_3559`).
    pub name: String,
    /// The body.
    pub graph: Graph,
    /// The argument placeholders, in signature order.
    pub args: Vec<Output>,
    /// The return values, in signature order.
    pub rets: Vec<Output>,
    /// Nodes run for their effects on every call (the function's control outputs).
    pub targets: Vec<NodeId>,
}

/// A graph's functions by name; clones of a graph share them.
pub(super) type Library = Arc<BTreeMap<String, Arc<Function>>>;

impl Graph {
    /// Adds (or replaces) a function of the graph's library.
    pub fn add_function(&mut self, function: Function) {
        Arc::make_mut(&mut self.functions).insert(function.name.clone(), Arc::new(function));
    }

    /// The library function named `name`.
    pub fn function(&self, name: &str) -> Option<&Arc<Function>> {
        self.functions.get(name)
    }

    /// The library's functions, by name.
    pub fn functions(&self) -> impl Iterator<Item = &Arc<Function>> {
        self.functions.values()
    }
}

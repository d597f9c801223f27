//! Calling the functions of a graph's library from a kernel (`While`, `If`): the session
//! compiles each function once per plan into a plan of its own ([`FunctionLibrary`]), and
//! the kernel calls it per iteration or branch ([`FunctionCall`]) inside its step.

use crate::graph::Graph;
use crate::tensor::Tensor;
use crate::Result;
use std::sync::Arc;

/// A compiled function, called with its arguments in signature order.
pub trait FunctionCall: Send + Sync {
    /// Runs the function once. Errors name the function and the node that failed in it.
    fn call(&self, args: Vec<Tensor>) -> Result<Vec<Tensor>>;
}

/// What a session lends kernels that run functions.
pub trait FunctionLibrary {
    /// The function `name` of `graph`'s library, compiled with the session's state
    /// (variables, devices, stateful kernels).
    fn instantiate(&self, graph: &Graph, name: &str) -> Result<Arc<dyn FunctionCall>>;

    /// The most iterations one loop may run in a step (the session's
    /// `max_loop_iterations`), or `None` for no bound.
    fn max_loop_iterations(&self) -> Option<u64>;
}

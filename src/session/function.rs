//! The session side of functional control flow: each function a `While` or `If` kernel
//! calls is compiled once per plan into a plan of its own, with the session's variables,
//! devices and stateful kernels, and run on the calling thread per call (an iteration, a
//! branch) without building anything again.

use super::executor::{self, Threads};
use super::plan::Plan;
use super::Session;
use crate::device::cores::CoreBudget;
use crate::graph::Graph;
use crate::kernel::function::{FunctionCall, FunctionLibrary};
use crate::passes::PassCtx;
use crate::tensor::alloc::MemoryBudget;
use crate::tensor::Tensor;
use crate::{Error, Result};
use std::sync::Arc;

/// How deeply functions may call functions (a body whose loop runs a loop ...): deeper
/// is taken for recursion, which a graph cannot express.
pub(crate) const MAX_FUNCTION_DEPTH: usize = 32;

/// Compiles functions for the kernels of one plan; `depth` counts the enclosing
/// functions.
pub(crate) struct SessionFunctions<'a> {
    pub(crate) session: &'a Session,
    pub(crate) depth: usize,
}

impl FunctionLibrary for SessionFunctions<'_> {
    fn instantiate(&self, graph: &Graph, name: &str) -> Result<Arc<dyn FunctionCall>> {
        let function = graph.function(name).ok_or_else(|| {
            Error::NotFound(format!(
                "function '{name}' is not in the graph's function library"
            ))
        })?;
        if self.depth >= MAX_FUNCTION_DEPTH {
            return Err(Error::invalid(format!(
                "functions nest more than {MAX_FUNCTION_DEPTH} deep at function '{name}'; a \
                 function that runs itself (recursion) is not supported"
            )));
        }
        let session = self.session;
        let inner = SessionFunctions {
            session,
            depth: self.depth + 1,
        };
        let plan = Plan::build(&PassCtx {
            graph: &function.graph,
            feeds: &function.args,
            fetches: &function.rets,
            targets: &function.targets,
            resources: &session.resources,
            devices: &session.devices,
            stateful_kernels: &session.stateful_kernels,
            allow_soft_placement: session.options.allow_soft_placement,
            functions: &inner,
        })?;
        Ok(Arc::new(CompiledFunction {
            name: name.to_string(),
            plan,
            budget: Arc::clone(&session.cores),
            intra_op: session.options.intra_op_threads,
            memory: Arc::clone(&session.memory),
            max_loop_iterations: session.options.max_loop_iterations,
        }))
    }

    fn max_loop_iterations(&self) -> Option<u64> {
        self.session.options.max_loop_iterations
    }
}

/// A function's plan, run on the calling thread (by the frame executor when it holds
/// TensorFlow 1 control flow).
struct CompiledFunction {
    name: String,
    plan: Plan,
    budget: Arc<CoreBudget>,
    intra_op: usize,
    memory: Arc<MemoryBudget>,
    max_loop_iterations: Option<u64>,
}

impl FunctionCall for CompiledFunction {
    fn call(&self, args: Vec<Tensor>) -> Result<Vec<Tensor>> {
        let slots = &self.plan.feed_slots;
        if args.len() != slots.len() {
            return Err(Error::invalid(format!(
                "function '{}' takes {} arguments, {} given",
                self.name,
                slots.len(),
                args.len()
            )));
        }
        for (i, (t, (_, spec, arg))) in args.iter().zip(slots).enumerate() {
            if t.dtype() != spec.dtype {
                return Err(Error::invalid(format!(
                    "function '{}': argument {i} ('{arg}') is {}, given a {} tensor",
                    self.name,
                    spec.dtype,
                    t.dtype()
                )));
            }
        }
        let threads = Threads {
            budget: &self.budget,
            intra_op: self.intra_op,
            memory: &self.memory,
            // A function body runs inside its calling node, whose time the trace records.
            trace: None,
        };
        let result = match &self.plan.frames {
            Some(frames) => super::frames::run_frames(
                &self.plan,
                frames,
                args,
                threads,
                self.max_loop_iterations,
            ),
            None => executor::run_sequential(&self.plan, args, threads),
        };
        result.map_err(|e| Error::invalid(format!("in function '{}': {e}", self.name)))
    }
}

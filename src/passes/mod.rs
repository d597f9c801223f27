//! Plan-time passes: what happens between "run these fetches" and an executable plan.
//!
//! [`prune`] makes a [`Draft`] of the nodes one (feeds, fetches, targets) signature needs,
//! in topological order; each [`Pass`] then rewrites it in turn:
//!
//! | pass | does |
//! | --- | --- |
//! | [`FoldConstants`] | `Const` nodes become values the plan holds, not steps |
//! | [`Place`] | each step gets a device: its node's `device` string, its variable's device, soft placement onto the CPU |
//! | [`Fuse`] | a few nodes become one step, by the fusion rules declared beside their kernels |
//! | [`SelectKernels`] | each step gets its kernel from the registry of (op, device, dtype) |
//! | [`InsertCopies`] | a copy step wherever a value crosses devices |
//!
//! The session lowers the finished draft to slots and edges (`session::plan`).

mod copies;
mod fold;
mod fuse;
mod kernels;
mod place;
mod prune;

pub use copies::InsertCopies;
pub use fold::FoldConstants;
pub use fuse::Fuse;
pub use kernels::SelectKernels;
pub use place::Place;
pub use prune::prune;

use crate::device::DeviceSet;
use crate::graph::{Cost, Graph, NodeId, Output, TensorSpec};
use crate::kernel::function::FunctionLibrary;
use crate::kernel::resource::Resources;
use crate::kernel::Kernel;
use crate::tensor::Tensor;
use crate::Result;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Everything a pass may read: the signature, the graph, the session's state.
pub struct PassCtx<'a> {
    /// The session's graph.
    pub graph: &'a Graph,
    /// Fed tensors, in feed order.
    pub feeds: &'a [Output],
    /// Fetched tensors, in fetch order.
    pub fetches: &'a [Output],
    /// Nodes run for their effects.
    pub targets: &'a [NodeId],
    /// The session's variables.
    pub resources: &'a Arc<Resources>,
    /// The session's devices.
    pub devices: &'a DeviceSet,
    /// Kernels of stateful nodes, kept for the session's lifetime (random generators
    /// advance across runs), by node and device.
    pub stateful_kernels: &'a StatefulKernels,
    /// Whether placement may move a node whose device is missing, or has no kernel for
    /// it, to the CPU (else that is an error).
    pub allow_soft_placement: bool,
    /// Compiles the functions that control-flow kernels call.
    pub functions: &'a dyn FunctionLibrary,
}

/// Kernels of stateful nodes by (node, device), kept by a session for its lifetime.
pub type StatefulKernels = Mutex<HashMap<(NodeId, usize), Arc<dyn Kernel>>>;

/// One plan-time pass over a draft.
pub trait Pass {
    /// A short name, for errors and logs.
    fn name(&self) -> &'static str;
    /// Rewrites the draft.
    fn run(&self, draft: &mut Draft, ctx: &PassCtx<'_>) -> Result<()>;
}

/// A value a step reads or the plan returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    /// A graph node's output (a fed tensor, a folded constant, or a step's output).
    Output(Output),
    /// The output of copy `i` (see [`StepKind::Copy`]).
    Copy(usize),
}

/// What a step computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepKind {
    /// A node's op (or a fusion keyed by the node): its outputs are the node's.
    Node(NodeId),
    /// Copy `id`: `from`, moved to the step's device.
    Copy {
        /// Which copy (the [`Source::Copy`] index of its value).
        id: usize,
        /// The value copied.
        from: Source,
    },
}

/// One step of a draft.
pub struct DraftStep {
    /// What it computes.
    pub kind: StepKind,
    /// Step name (its node's name; for a copy, the value's with the device).
    pub name: String,
    /// Op name (a fusion's `_Fused…` name; `_Copy` for copies).
    pub op: &'static str,
    /// Inputs in order; `None` for a reference input (the kernel holds its variable).
    pub inputs: Vec<Option<Source>>,
    /// Specs of its outputs.
    pub outputs: Vec<TensorSpec>,
    /// Cost class, for the executor's inline-or-dispatch choice.
    pub cost: Cost,
    /// Inputs whose sizes a contraction's cost is judged by.
    pub operands: [usize; 2],
    /// Index of its device in the session's [`DeviceSet`].
    pub device: usize,
    /// Its kernel, once a pass has chosen or built it.
    pub kernel: Option<Arc<dyn Kernel>>,
    /// Nodes whose work it also does (a fusion's), which get no step of their own.
    pub absorbed: Vec<NodeId>,
    /// Outputs of absorbed nodes it produces after its node's own (a fusion's).
    pub also_produces: Vec<Output>,
    /// Inputs its kernel reads in host memory wherever it runs (from its `KernelDef`).
    pub host_inputs: &'static [usize],
    /// Whether its kernel leaves its outputs in host memory wherever it runs.
    pub host_outputs: bool,
}

impl DraftStep {
    /// The node it is keyed by, unless it is a copy.
    pub fn node(&self) -> Option<NodeId> {
        match self.kind {
            StepKind::Node(n) => Some(n),
            StepKind::Copy { .. } => None,
        }
    }

    /// The values it produces, in output order.
    pub fn produces(&self) -> Vec<Source> {
        match self.kind {
            StepKind::Node(n) => {
                let own = self.outputs.len() - self.also_produces.len();
                (0..own)
                    .map(|i| n.output(i))
                    .chain(self.also_produces.iter().copied())
                    .map(Source::Output)
                    .collect()
            }
            StepKind::Copy { id, .. } => vec![Source::Copy(id)],
        }
    }
}

/// A plan in the making: the steps one signature needs, in topological order.
pub struct Draft {
    /// The steps.
    pub steps: Vec<DraftStep>,
    /// Fed tensors, by the feed's position.
    pub fed: HashMap<Output, usize>,
    /// Values of folded constants (see [`FoldConstants`]), by node.
    pub constants: Vec<(NodeId, Tensor)>,
    /// Where each fetch is read from, in fetch order.
    pub fetches: Vec<Source>,
    /// Copies made so far (the next copy's id).
    pub copies: usize,
}

impl Draft {
    /// The device (index in the session's set) each value lives on: its step's device
    /// (the host for a kernel with host outputs); fed values and folded constants are on
    /// the host.
    pub fn devices_of_values(&self) -> HashMap<Source, usize> {
        let mut on = HashMap::new();
        for step in &self.steps {
            let device = match step.kind {
                StepKind::Node(_) if step.host_outputs => DeviceSet::HOST,
                _ => step.device,
            };
            for value in step.produces() {
                on.insert(value, device);
            }
        }
        on
    }
}

/// Runs `passes` over `draft` in order.
pub fn run_all(draft: &mut Draft, ctx: &PassCtx<'_>, passes: &[&dyn Pass]) -> Result<()> {
    for pass in passes {
        pass.run(draft, ctx)?;
    }
    Ok(())
}

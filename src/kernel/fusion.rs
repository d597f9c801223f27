//! Fusion rules: a few nodes computed by one step, as TensorFlow's Grappler remapper does.
//! A rule is declared beside the fused kernel it makes (see
//! `ops::linalg::matmul::fusion`, `ops::training`); the plan's fusion pass
//! (`passes::fuse`) finds the rules of a node's op type with [`rules_for`] and asks each
//! in turn. The graph keeps TensorFlow's ops (it exports and differentiates as before);
//! only the plan of one signature changes.

use super::resource::Resources;
use super::Kernel;
use crate::device::Device;
use crate::graph::{Graph, Node, NodeId, Output};
use std::sync::Arc;

/// One step standing for several nodes: the node it is keyed by (which names the step
/// and gives its outputs) and `absorbed`, whose outputs only the step reads, or which the
/// step produces besides its node's (`also_produces`).
pub struct Fusion {
    /// The nodes whose work the step also does; they get no step of their own.
    pub absorbed: Vec<NodeId>,
    /// Outputs of absorbed nodes that the step produces after its node's own, in this
    /// order; their readers and fetches read them there.
    pub also_produces: Vec<Output>,
    /// The step's inputs in order; `None` for a reference input.
    pub inputs: Vec<Option<Output>>,
    /// Positions in `inputs` of the two operands the step contracts (its cost is judged
    /// as a contraction of them).
    pub operands: [usize; 2],
    /// The step's op name (a TensorFlow-style internal name, `_Fused…`).
    pub op: &'static str,
    /// The fused kernel.
    pub kernel: Arc<dyn Kernel>,
}

/// What a rule sees of the plan it may rewrite.
pub trait FusionSite {
    /// The graph.
    fn graph(&self) -> &Graph;
    /// The session's variables (for a fused update of one).
    fn resources(&self) -> &Arc<Resources>;
    /// The device the fused step runs on.
    fn device(&self) -> &Arc<dyn Device>;
    /// The node producing `o`, when it is of `op_type` and may be absorbed into a step of
    /// `into`: the plan reads `o` there only (no other reader, no fetch, no control edge,
    /// not a target, not fed), it has no control inputs, and it runs on the same device.
    fn sole_source(&self, o: Output, op_type: &str, into: NodeId) -> Option<&Node>;
    /// A node of `op_type` whose only input is `o`, when a step of `into` may absorb it
    /// and produce its outputs: the plan runs it on the same device, none of its outputs
    /// is fed, it is not a target, no node waits for it by a control edge, and it has no
    /// control inputs.
    fn absorbable_reader(&self, o: Output, op_type: &str, into: NodeId) -> Option<NodeId>;
}

/// Builds a fusion rooted at a node, or `None` when the pattern is not there; an `Err`
/// message says why a matching pattern cannot be fused (the pass names the node).
pub type FuseFn = fn(&dyn FusionSite, NodeId) -> std::result::Result<Option<Fusion>, String>;

/// One fusion rule: the op types of the node a fused step is keyed by (the last node of
/// the pattern), and the function that matches the pattern there and builds the step.
#[derive(Clone, Copy)]
pub struct FusionRule {
    /// Op types the pattern ends with.
    pub root: &'static [&'static str],
    /// The fused step's op name.
    pub op: &'static str,
    /// Matches and builds.
    pub fuse: FuseFn,
}

impl FusionRule {
    /// Whether the rule may apply at a node of `op_type`.
    pub fn applies_to(&self, op_type: &str) -> bool {
        self.root.contains(&op_type)
    }
}

//! Placement: each step gets a device of the session's set, as TensorFlow's placer
//! chooses one:
//!
//! - a node's `device` string (`/device:GPU:0`, set by `Graph::device` scopes or imported
//!   from a GraphDef) picks the first matching device; a node without one runs on the CPU;
//! - an op with a reference input (`Assign`, `ApplyAdam`, ...) runs where its variable
//!   does, so a variable's value never leaves its device;
//! - soft placement: a node whose requested device does not exist, or has no kernel for
//!   the node's op and dtype, runs on the CPU instead, and says so once per (op, device)
//!   on standard error.

use super::{Draft, Pass, PassCtx, StepKind};
use crate::device::{DeviceSet, DeviceSpec};
use crate::graph::NodeId;
use crate::kernel::{node_dtype, KernelRegistry};
use crate::{Error, Result};
use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, OnceLock};

/// Gives every step a device.
pub struct Place;

impl Pass for Place {
    fn name(&self) -> &'static str {
        "place"
    }

    fn run(&self, draft: &mut Draft, ctx: &PassCtx<'_>) -> Result<()> {
        if ctx.devices.devices().len() == 1 {
            return Ok(()); // Only the CPU: every step is on the host already.
        }
        let kernels = crate::ops::registry::kernels();
        let mut placed = HashMap::new();
        for step in &mut draft.steps {
            if let StepKind::Node(n) = step.kind {
                step.device = place_node(ctx, &kernels, n, &mut placed)?;
            }
        }
        Ok(())
    }
}

fn place_node(
    ctx: &PassCtx<'_>,
    kernels: &KernelRegistry,
    n: NodeId,
    placed: &mut HashMap<NodeId, usize>,
) -> Result<usize> {
    if let Some(&d) = placed.get(&n) {
        return Ok(d);
    }
    let graph = ctx.graph;
    let node = graph.node(n);
    let wanted = match node.op().ref_inputs().first() {
        Some(&r) => place_node(ctx, kernels, node.inputs()[r].node, placed)?,
        None => {
            let spec = DeviceSpec::parse(node.device())
                .map_err(|e| Error::invalid(format!("node '{}': {e}", node.name())))?;
            if spec.is_any() {
                DeviceSet::HOST
            } else {
                match ctx.devices.find(&spec) {
                    Some(d) => d,
                    None => {
                        log_soft_placement(
                            node.op_type(),
                            node.device(),
                            node.name(),
                            "no such device",
                        );
                        DeviceSet::HOST
                    }
                }
            }
        }
    };
    let device = ctx.devices.get(wanted);
    let has_kernel = wanted == DeviceSet::HOST
        || kernels
            .find(
                node.op().kernel_op(),
                device.device_type(),
                node_dtype(graph, node),
            )
            .is_some();
    let chosen = if has_kernel {
        wanted
    } else {
        log_soft_placement(
            node.op_type(),
            device.name(),
            node.name(),
            "no kernel for its op and dtype there",
        );
        DeviceSet::HOST
    };
    placed.insert(n, chosen);
    Ok(chosen)
}

/// One line on standard error per (op, device) that soft placement moved to the CPU.
fn log_soft_placement(op: &str, device: &str, node: &str, why: &str) {
    static LOGGED: OnceLock<Mutex<HashSet<(String, String)>>> = OnceLock::new();
    let mut logged = LOGGED
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if logged.insert((op.to_string(), device.to_string())) {
        eprintln!(
            "rustflow: node '{node}' (op {op}) asked for device '{device}' ({why}); it and \
             every {op} node like it run on /device:CPU:0 (soft placement)"
        );
    }
}

//! Placement: each step gets a device of the session's set, as TensorFlow's placer
//! chooses one:
//!
//! - a node's `device` string (`/device:GPU:0`, set by `Graph::device` scopes or imported
//!   from a GraphDef) picks the first matching device; a node without one runs on the CPU;
//! - an op with a reference input (`Assign`, `ApplyAdam`, ...) runs where its variable
//!   does, so a variable's value never leaves its device;
//! - soft placement: a node whose requested device does not exist (`/device:GPU:0` in a
//!   build without the `cuda` feature, or on a machine without a GPU), or has no kernel for
//!   the node's op and dtype, runs on the CPU instead, and says so once per (op, device)
//!   on standard error. With `SessionOptions::allow_soft_placement` off it is an error
//!   naming the node, the device and the session's devices.

use super::{Draft, Pass, PassCtx, StepKind};
use crate::device::{DeviceSet, DeviceSpec};
use crate::graph::{Node, NodeId};
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
                        soft_place(ctx, None, node, node.device(), || {
                            let have: Vec<&str> =
                                ctx.devices.devices().iter().map(|d| d.name()).collect();
                            format!("no such device; the session has {}", have.join(", "))
                        })?;
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
        soft_place(ctx, Some(node.op_type()), node, device.name(), || {
            format!(
                "no {} kernel of op {} for dtype {} there",
                device.device_type(),
                node.op().kernel_op(),
                node_dtype(graph, node).map_or("?".to_string(), |d| d.to_string())
            )
        })?;
        DeviceSet::HOST
    };
    placed.insert(n, chosen);
    Ok(chosen)
}

/// Moves a node to the CPU (soft placement: one line on standard error per device that is
/// missing, and per (op, device) without a kernel), or, with soft placement off, the error
/// saying why it cannot run where it asked. `kernel_op` is the op lacking a kernel, or
/// `None` when the device is missing.
fn soft_place(
    ctx: &PassCtx<'_>,
    kernel_op: Option<&str>,
    node: &Node,
    device: &str,
    why: impl FnOnce() -> String,
) -> Result<()> {
    let why = why();
    let (op, node) = (node.op_type(), node.name());
    if !ctx.allow_soft_placement {
        return Err(Error::invalid(format!(
            "cannot place node '{node}' (op {op}) on device '{device}': {why} (soft \
             placement is off; turn SessionOptions::allow_soft_placement on to run it on \
             /device:CPU:0)"
        )));
    }
    static LOGGED: OnceLock<Mutex<HashSet<(String, String)>>> = OnceLock::new();
    let mut logged = LOGGED
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if logged.insert((kernel_op.unwrap_or("").to_string(), device.to_string())) {
        let who = match kernel_op {
            Some(op) => format!("every {op} node like it"),
            None => "every node asking for that device".to_string(),
        };
        eprintln!(
            "rustflow: warning: node '{node}' (op {op}) asked for device '{device}' ({why}); \
             it and {who} run on /device:CPU:0 (soft placement)"
        );
    }
    Ok(())
}

//! Kernel selection: each step gets the kernel registered for its op, its device's type
//! and its dtype, built once from the node's attrs. Stateful nodes (variables, random ops)
//! keep one kernel per device for the session's lifetime, so random generators advance
//! across runs.

use super::{Draft, Pass, PassCtx, StepKind};
use crate::graph::NodeId;
use crate::kernel::{node_dtype, Kernel, KernelBuildCtx, KernelDef};
use crate::{Error, Result};
use std::sync::Arc;

/// Finds and builds every step's kernel (fusions and copies come with theirs).
pub struct SelectKernels;

impl Pass for SelectKernels {
    fn name(&self) -> &'static str {
        "select-kernels"
    }

    fn run(&self, draft: &mut Draft, ctx: &PassCtx<'_>) -> Result<()> {
        for step in &mut draft.steps {
            if step.kernel.is_some() {
                continue;
            }
            if let StepKind::Node(n) = step.kind {
                let (kernel, def) = kernel_for(ctx, n, step.device)?;
                step.kernel = Some(kernel);
                step.host_inputs = def.host_inputs;
                step.host_outputs = def.host_outputs;
            }
        }
        Ok(())
    }
}

/// The node's kernel on `device` and the registration it came from.
fn kernel_for(
    ctx: &PassCtx<'_>,
    id: NodeId,
    device: usize,
) -> Result<(Arc<dyn Kernel>, KernelDef)> {
    let graph = ctx.graph;
    let node = graph.node(id);
    let op = node.op();
    let dev = ctx.devices.get(device);
    let failed = |msg: String| Error::Run {
        node: node.name().to_string(),
        op: op.name().to_string(),
        msg,
    };
    let def = crate::ops::registry::kernels()
        .find(op.kernel_op(), dev.device_type(), node_dtype(graph, node))
        .copied()
        .ok_or_else(|| {
            failed(format!(
                "no kernel of op {} is registered for device {} and this dtype",
                op.kernel_op(),
                dev.name()
            ))
        })?;
    let build = || -> Result<Arc<dyn Kernel>> {
        let ctx = KernelBuildCtx {
            node,
            id,
            graph,
            resources: ctx.resources,
            device: dev,
            functions: Some(ctx.functions),
        };
        (def.build)(&ctx).map(Arc::from).map_err(failed)
    };
    if !op.is_stateful() {
        return Ok((build()?, def));
    }
    let mut cache = ctx
        .stateful_kernels
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(k) = cache.get(&(id, device)) {
        return Ok((Arc::clone(k), def));
    }
    let k = build()?;
    cache.insert((id, device), Arc::clone(&k));
    Ok((k, def))
}

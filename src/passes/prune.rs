//! Pruning: the nodes a signature needs (feeds cut the graph; reference inputs are not
//! evaluated), in topological order, as the first draft of a plan.

use super::{Draft, DraftStep, PassCtx, Source, StepKind};
use crate::device::DeviceSet;
use crate::graph::{NodeId, Output};
use crate::{Error, Result};
use std::collections::{HashMap, HashSet};

/// The draft of one signature: every node the fetches and targets need, each a step on the
/// host until [`Place`](super::Place) says otherwise. A needed placeholder that is not fed
/// is an error naming it.
pub fn prune(ctx: &PassCtx<'_>) -> Result<Draft> {
    let graph = ctx.graph;
    for (i, &o) in ctx.feeds.iter().enumerate() {
        graph.check_output(o, &format!("feed {i}"))?;
    }
    for (i, &o) in ctx.fetches.iter().enumerate() {
        graph.check_output(o, &format!("fetch {i}"))?;
    }
    for (i, &t) in ctx.targets.iter().enumerate() {
        graph.check_node(t, &format!("target {i}"))?;
    }
    let mut fed: HashMap<Output, usize> = HashMap::with_capacity(ctx.feeds.len());
    for (i, &o) in ctx.feeds.iter().enumerate() {
        if let Some(first) = fed.insert(o, i) {
            return Err(Error::invalid(format!(
                "tensor '{}' is fed twice (feeds {first} and {i})",
                graph.output_name(o)
            )));
        }
    }
    let mut needed: HashSet<NodeId> = HashSet::new();
    let mut stack: Vec<NodeId> = ctx
        .fetches
        .iter()
        .filter(|o| !fed.contains_key(o))
        .map(|o| o.node)
        .chain(ctx.targets.iter().copied())
        .collect();
    while let Some(n) = stack.pop() {
        if !needed.insert(n) {
            continue;
        }
        let node = graph.node(n);
        let refs = node.op().ref_inputs();
        for (i, inp) in node.inputs().iter().enumerate() {
            if !refs.contains(&i) && !fed.contains_key(inp) {
                stack.push(inp.node);
            }
        }
        stack.extend(node.control_inputs().iter().copied());
    }
    // Node ids grow in insertion order, and inputs always exist before their consumers.
    let mut order: Vec<NodeId> = needed.into_iter().collect();
    order.sort();
    let placeholder = graph.op_registry().lookup("Placeholder").ok();
    let mut steps = Vec::with_capacity(order.len());
    for n in order {
        let node = graph.node(n);
        let op = node.op();
        // (An unsupported node kept from a GraphDef may carry the name; its kernel
        // explains why it cannot run.)
        if placeholder.is_some_and(|p| std::ptr::addr_eq(p, op)) {
            let spec = &node.outputs()[0];
            return Err(Error::FailedPrecondition(format!(
                "You must feed a value for placeholder tensor '{}' with dtype {} and shape {}",
                node.name(),
                spec.dtype,
                spec.shape
            )));
        }
        let refs = op.ref_inputs();
        steps.push(DraftStep {
            kind: StepKind::Node(n),
            name: node.name().to_string(),
            op: op.name(),
            inputs: node
                .inputs()
                .iter()
                .enumerate()
                .map(|(i, &o)| (!refs.contains(&i)).then_some(Source::Output(o)))
                .collect(),
            outputs: node.outputs().to_vec(),
            cost: op.cost(),
            operands: [0, 1],
            device: DeviceSet::HOST,
            kernel: None,
            absorbed: Vec::new(),
            also_produces: Vec::new(),
            host_inputs: &[],
            host_outputs: false,
        });
    }
    Ok(Draft {
        steps,
        fed,
        constants: Vec::new(),
        fetches: ctx.fetches.iter().map(|&o| Source::Output(o)).collect(),
        copies: 0,
    })
}

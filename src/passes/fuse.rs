//! Fusion: a few nodes computed by one step, by the rules each op family declares beside
//! its fused kernels (`crate::ops::fusion_rules`). A node is absorbed into a step only when
//! the plan reads its output nowhere else, and only on the host (the fused kernels are the
//! CPU's).

use super::{Draft, Pass, PassCtx, Source, StepKind};
use crate::device::{Device, DeviceSet};
use crate::graph::{Cost, Graph, Node, NodeId, Output};
use crate::kernel::fusion::{Fusion, FusionSite};
use crate::kernel::resource::Resources;
use crate::{Error, Result};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Applies the fusion rules.
pub struct Fuse;

struct Site<'a> {
    ctx: &'a PassCtx<'a>,
    /// Device of each step's node.
    device_of: HashMap<NodeId, usize>,
    readers: HashMap<Output, usize>,
    /// The steps' nodes reading each value.
    reader_nodes: HashMap<Output, Vec<NodeId>>,
    controls: HashSet<NodeId>,
    fed: &'a HashMap<Output, usize>,
}

impl FusionSite for Site<'_> {
    fn graph(&self) -> &Graph {
        self.ctx.graph
    }
    fn resources(&self) -> &Arc<Resources> {
        self.ctx.resources
    }
    fn device(&self) -> &Arc<dyn Device> {
        self.ctx.devices.get(DeviceSet::HOST)
    }
    fn sole_source(&self, o: Output, op_type: &str, into: NodeId) -> Option<&Node> {
        let node = self.ctx.graph.node(o.node);
        let absorbable = node.op_type() == op_type
            && self.device_of.contains_key(&o.node)
            && self.device_of.get(&o.node) == self.device_of.get(&into)
            && !self.fed.contains_key(&o)
            && self.readers.get(&o) == Some(&1)
            && !self.controls.contains(&o.node)
            && node.control_inputs().is_empty();
        absorbable.then_some(node)
    }
    fn absorbable_reader(&self, o: Output, op_type: &str, into: NodeId) -> Option<NodeId> {
        let graph = self.ctx.graph;
        let reader = *self.reader_nodes.get(&o)?.iter().find(|&&r| {
            let node = graph.node(r);
            node.op_type() == op_type && node.inputs() == [o]
        })?;
        let node = graph.node(reader);
        let absorbable = self.device_of.get(&reader) == self.device_of.get(&into)
            && !self.controls.contains(&reader)
            && node.control_inputs().is_empty()
            && (0..node.outputs().len()).all(|i| !self.fed.contains_key(&reader.output(i)));
        absorbable.then_some(reader)
    }
}

impl Pass for Fuse {
    fn name(&self) -> &'static str {
        "fuse"
    }

    fn run(&self, draft: &mut Draft, ctx: &PassCtx<'_>) -> Result<()> {
        let graph = ctx.graph;
        let mut readers: HashMap<Output, usize> = HashMap::new();
        let mut controls: HashSet<NodeId> = ctx.targets.iter().copied().collect();
        let mut device_of = HashMap::new();
        let mut reader_nodes: HashMap<Output, Vec<NodeId>> = HashMap::new();
        for step in &draft.steps {
            if let StepKind::Node(n) = step.kind {
                let node = graph.node(n);
                for inp in node.inputs() {
                    *readers.entry(*inp).or_default() += 1;
                    reader_nodes.entry(*inp).or_default().push(n);
                }
                controls.extend(node.control_inputs());
                device_of.insert(n, step.device);
            }
        }
        for f in ctx.fetches {
            *readers.entry(*f).or_default() += 1;
        }
        let site = Site {
            ctx,
            device_of,
            readers,
            reader_nodes,
            controls,
            fed: &draft.fed,
        };
        let rules = crate::ops::fusion_rules();
        let mut fusions: HashMap<NodeId, Fusion> = HashMap::new();
        for step in &draft.steps {
            let StepKind::Node(n) = step.kind else {
                continue;
            };
            if step.device != DeviceSet::HOST {
                continue;
            }
            let op_type = graph.node(n).op_type();
            for rule in rules.iter().flat_map(|r| r.iter()) {
                if !rule.applies_to(op_type) {
                    continue;
                }
                let fusion = (rule.fuse)(&site, n).map_err(|msg| Error::Run {
                    node: step.name.clone(),
                    op: rule.op.to_string(),
                    msg,
                })?;
                if let Some(f) = fusion {
                    fusions.insert(n, f);
                    break;
                }
            }
        }
        // A BiasAdd under a fused activation is that fusion's, not one of its own.
        let absorbed: HashSet<NodeId> = fusions.values().flat_map(|f| f.absorbed.clone()).collect();
        fusions.retain(|n, _| !absorbed.contains(n));
        draft
            .steps
            .retain(|s| s.node().is_none_or(|n| !absorbed.contains(&n)));
        for step in &mut draft.steps {
            let Some(f) = step.node().and_then(|n| fusions.remove(&n)) else {
                continue;
            };
            step.op = f.op;
            step.outputs
                .extend(f.also_produces.iter().map(|&o| graph.spec(o).clone()));
            step.also_produces = f.also_produces;
            step.inputs = f.inputs.iter().map(|i| i.map(Source::Output)).collect();
            step.cost = Cost::Contraction;
            step.operands = f.operands;
            step.kernel = Some(f.kernel);
            step.absorbed = f.absorbed;
        }
        Ok(())
    }
}

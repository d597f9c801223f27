//! Execution plans: the graph pruned to what one (feeds, fetches, targets) signature needs,
//! ordered, with kernels created and every name resolved to a slot index.

pub(super) mod frame_plan;

use crate::graph::{Cost, NodeId, TensorSpec};
use crate::kernel::Kernel;
use crate::passes::{
    self, Draft, FoldConstants, Fuse, InsertCopies, PassCtx, Place, SelectKernels, Source, StepKind,
};
use crate::tensor::Tensor;
use crate::{Error, Result};
use frame_plan::{needs_frames, FramePlan};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Where a step reads one input from.
#[derive(Clone, Copy, Debug)]
pub(crate) enum InputSource {
    /// A value slot; `last` is true when this is the slot's final reader in plan order.
    Slot { slot: usize, last: bool },
    /// A `Const` folded into the plan: index into [`Plan::constants`].
    Constant(usize),
    /// A reference input: the kernel resolved its variable when it was built.
    Ref,
}

/// Where a fetched value comes from.
#[derive(Clone, Copy, Debug)]
pub(crate) enum FetchSource {
    /// A value slot (a feed or a step's output).
    Slot(usize),
    /// A folded constant.
    Constant(usize),
}

/// One node of the plan.
pub(crate) struct Step {
    pub name: String,
    pub op: &'static str,
    pub kernel: Arc<dyn Kernel>,
    pub inputs: Vec<InputSource>,
    pub output_specs: Vec<TensorSpec>,
    /// First slot of this step's outputs.
    pub out_start: usize,
    /// Steps to notify when this one finishes (one entry per data or control edge).
    pub out_edges: Vec<usize>,
    /// Number of in-edges from other steps.
    pub pending: usize,
    /// Run inline in the parallel executor, without holding a core (see [`Step::is_cheap`]).
    cheap: AtomicBool,
    /// For a step whose size was unknown when the plan was built (a batch dimension fed at
    /// run time): the cost class `cheap` is judged by again after each run.
    judged_at_run: Option<Cost>,
    /// Inputs whose sizes a contraction's cost is judged by.
    operands: [usize; 2],
    /// Expensive steps on the longest path from this step to the end of the plan (itself
    /// included): the parallel executor runs the readiest step with the most first.
    pub priority: usize,
}

/// A pruned, ordered, compiled subgraph.
pub(crate) struct Plan {
    pub steps: Vec<Step>,
    pub num_slots: usize,
    /// Slot of each feed, in feed order, with the spec the fed value must fit.
    pub feed_slots: Vec<(usize, TensorSpec, String)>,
    /// Source of each fetch, in fetch order.
    pub fetches: Vec<FetchSource>,
    /// Values of `Const` nodes, which need no step: readers clone them directly.
    pub constants: Vec<Tensor>,
    /// Number of readers of each slot (data edges plus fetches).
    pub slot_uses: Vec<usize>,
    /// Largest input and output counts of any step (buffer sizes).
    pub max_inputs: usize,
    pub max_outputs: usize,
    /// True when some expensive steps are independent, so threads can help.
    pub parallel: bool,
    /// How long the last run took, in nanoseconds (0 before the first).
    last_run_nanos: AtomicU64,
    /// The frame structure of a plan with TensorFlow 1 control flow, which the frame
    /// executor runs (`None`: the plain executors do).
    pub frames: Option<Box<FramePlan>>,
}

/// Elements above which a linear-cost op is worth dispatching to another thread.
const EXPENSIVE_ELEMENTS: usize = 1 << 15;

/// Runs shorter than this stay on the calling thread (see [`Plan::worth_threads`]).
const PARALLEL_MIN_RUN: Duration = Duration::from_micros(200);

/// Multiply-adds above which a contraction is worth dispatching to another thread (some
/// microseconds of work, more than the hand-over costs).
const EXPENSIVE_PRODUCT: usize = 1 << 20;

impl Plan {
    /// The plan of one signature: the passes' draft (see [`crate::passes`]), lowered to
    /// slots and edges.
    pub(crate) fn build(ctx: &PassCtx<'_>) -> Result<Plan> {
        let mut draft = passes::prune(ctx)?;
        passes::run_all(
            &mut draft,
            ctx,
            &[&FoldConstants, &Place, &Fuse, &SelectKernels, &InsertCopies],
        )?;
        Plan::lower(ctx, draft)
    }

    /// Numbers every value a slot, resolves each step's inputs to slots (or constants),
    /// and counts the edges between steps and the readers of each slot.
    fn lower(ctx: &PassCtx<'_>, draft: Draft) -> Result<Plan> {
        let graph = ctx.graph;
        let Draft {
            steps: drafts,
            fed,
            constants,
            fetches,
            ..
        } = draft;
        let constant_of: HashMap<NodeId, usize> = constants
            .iter()
            .enumerate()
            .map(|(i, (n, _))| (*n, i))
            .collect();
        let constants: Vec<Tensor> = constants.into_iter().map(|(_, t)| t).collect();
        // The step producing each value, and the first slot of each step's outputs.
        let mut producer: HashMap<Source, (usize, usize)> = HashMap::new();
        let mut step_of_node: HashMap<NodeId, usize> = HashMap::new();
        let mut out_start = Vec::with_capacity(drafts.len());
        let mut num_slots = ctx.feeds.len();
        for (si, s) in drafts.iter().enumerate() {
            out_start.push(num_slots);
            if let StepKind::Node(n) = s.kind {
                step_of_node.insert(n, si);
            }
            for (i, value) in s.produces().into_iter().enumerate() {
                producer.insert(value, (si, num_slots + i));
            }
            num_slots += s.outputs.len();
        }
        let source_of = |src: &Source| -> Result<FetchSource> {
            if let Source::Output(o) = src {
                if let Some(&f) = fed.get(o) {
                    return Ok(FetchSource::Slot(f));
                }
                if let Some(&c) = constant_of.get(&o.node) {
                    return Ok(FetchSource::Constant(c));
                }
            }
            producer
                .get(src)
                .map(|&(_, slot)| FetchSource::Slot(slot))
                .ok_or_else(|| Error::invalid(format!("the plan has no producer of {src:?}")))
        };
        let spec_of = |src: &Source| -> &TensorSpec {
            match src {
                Source::Output(o) => graph.spec(*o),
                Source::Copy(_) => &drafts[producer[src].0].outputs[0],
            }
        };

        let mut steps = Vec::with_capacity(drafts.len());
        let mut slot_uses = vec![0usize; num_slots];
        let mut last_reader = vec![usize::MAX; num_slots];
        for (si, d) in drafts.iter().enumerate() {
            let mut inputs = Vec::with_capacity(d.inputs.len());
            for inp in &d.inputs {
                inputs.push(match inp {
                    Some(src) => match source_of(src)? {
                        FetchSource::Constant(c) => InputSource::Constant(c),
                        FetchSource::Slot(slot) => {
                            slot_uses[slot] += 1;
                            last_reader[slot] = si;
                            InputSource::Slot { slot, last: false }
                        }
                    },
                    None => InputSource::Ref,
                });
            }
            let elements = |spec: &TensorSpec| spec.shape.num_elements();
            let operand_sizes = d.operands.map(|i| {
                let input = d.inputs.get(i).copied().flatten();
                input.and_then(|src| elements(spec_of(&src)))
            });
            // A linear op whose first operand's size is unknown (a reduction of a batch)
            // is judged at run time even when its outputs are small.
            let first_unknown = matches!(
                d.inputs.get(d.operands[0]),
                Some(Some(src)) if elements(spec_of(src)).is_none()
            );
            let judged = judge(d.cost, operand_sizes, d.outputs.iter().map(elements))
                .filter(|&expensive| expensive || d.cost != Cost::Linear || !first_unknown);
            let kernel = d.kernel.clone().ok_or_else(|| Error::Run {
                node: d.name.clone(),
                op: d.op.to_string(),
                msg: "no pass gave the step a kernel".into(),
            })?;
            steps.push(Step {
                name: d.name.clone(),
                op: d.op,
                kernel,
                inputs,
                output_specs: d.outputs.clone(),
                out_start: out_start[si],
                out_edges: Vec::new(),
                pending: 0,
                // Unknown sizes count as large until a run shows them.
                cheap: AtomicBool::new(judged == Some(false)),
                judged_at_run: judged.is_none().then_some(d.cost),
                operands: d.operands,
                priority: 0,
            });
        }
        // Edges between steps, for the parallel executor's pending counts: one per input
        // read from another step, and one per control input.
        let mut controls: Vec<Vec<usize>> = vec![Vec::new(); drafts.len()];
        for (si, d) in drafts.iter().enumerate() {
            let mut from: Vec<usize> = d
                .inputs
                .iter()
                .flatten()
                .filter(|src| !matches!(src, Source::Output(o) if fed.contains_key(o)))
                .filter_map(|src| producer.get(src).map(|&(s, _)| s))
                .collect();
            if let StepKind::Node(n) = d.kind {
                controls[si].extend(
                    graph
                        .node(n)
                        .control_inputs()
                        .iter()
                        .filter_map(|c| step_of_node.get(c).copied()),
                );
                from.extend(&controls[si]);
            }
            for f in from {
                steps[f].out_edges.push(si);
                steps[si].pending += 1;
            }
        }
        // Steps are in topological order: a step's successors come after it.
        for si in (0..steps.len()).rev() {
            let after = steps[si]
                .out_edges
                .iter()
                .map(|&t| steps[t].priority)
                .max()
                .unwrap_or(0);
            steps[si].priority = after + usize::from(!steps[si].is_cheap());
        }
        let fetch_sources: Vec<FetchSource> =
            fetches.iter().map(source_of).collect::<Result<_>>()?;
        for src in &fetch_sources {
            if let FetchSource::Slot(s) = *src {
                slot_uses[s] += 1;
                last_reader[s] = usize::MAX;
            }
        }
        for (si, step) in steps.iter_mut().enumerate() {
            for inp in &mut step.inputs {
                if let InputSource::Slot { slot, last } = inp {
                    *last = last_reader[*slot] == si;
                }
            }
        }
        // The last reader of a slot read twice by one step must be the step's last read.
        for step in &mut steps {
            let mut seen = HashSet::new();
            for inp in step.inputs.iter_mut().rev() {
                if let InputSource::Slot { slot, last } = inp {
                    if !seen.insert(*slot) {
                        *last = false;
                    }
                }
            }
        }
        let feed_slots = ctx
            .feeds
            .iter()
            .enumerate()
            .map(|(i, &o)| (i, graph.spec(o).clone(), graph.output_name(o)))
            .collect();
        let parallel = has_independent_expensive_steps(&steps);
        let frames = if steps.iter().any(|s| needs_frames(s.op)) {
            let nodes: Vec<Option<NodeId>> = drafts.iter().map(|d| d.node()).collect();
            let plan = FramePlan::build(graph, &steps, &nodes, &controls, &fetch_sources)?;
            Some(Box::new(plan))
        } else {
            None
        };
        Ok(Plan {
            max_inputs: steps.iter().map(|s| s.inputs.len()).max().unwrap_or(0),
            max_outputs: steps
                .iter()
                .map(|s| s.output_specs.len())
                .max()
                .unwrap_or(0),
            steps,
            num_slots,
            feed_slots,
            fetches: fetch_sources,
            constants,
            slot_uses,
            parallel,
            last_run_nanos: AtomicU64::new(0),
            frames,
        })
    }
}

/// Whether work of these sizes (element counts of the two operands, contracted ones for a
/// contraction, and of the outputs) is worth handing to another thread; `None` when an
/// unknown size decides. A linear op's work is the larger of its first operand and its
/// outputs: a reduction (BiasAddGrad of a convolution's output, say) reads megabytes to
/// write a few values, and run inline without a core it would share one with a split
/// kernel.
fn judge(
    cost: Cost,
    operands: [Option<usize>; 2],
    mut outputs: impl Iterator<Item = Option<usize>> + Clone,
) -> Option<bool> {
    match cost {
        Cost::Cheap => Some(false),
        Cost::Expensive => Some(true),
        Cost::Linear => {
            let sizes = outputs.clone().chain([operands[0]]);
            if sizes.flatten().any(|e| e >= EXPENSIVE_ELEMENTS) {
                Some(true)
            } else {
                outputs.all(|o| o.is_some()).then_some(false)
            }
        }
        Cost::Contraction => match (operands, outputs.next().flatten()) {
            ([Some(a), Some(b)], Some(out)) => {
                Some((a as f64) * (b as f64) * (out as f64) >= (EXPENSIVE_PRODUCT as f64).powi(2))
            }
            _ => None,
        },
    }
}

impl Step {
    /// Whether the parallel executor runs this step inline, without holding a core.
    pub(crate) fn is_cheap(&self) -> bool {
        self.cheap.load(Ordering::Relaxed)
    }

    /// Judges a step whose size was unknown at build time again, from this run's inputs
    /// and outputs, for its next run.
    pub(crate) fn observe(&self, inputs: &[Option<Tensor>], outputs: &[Tensor]) {
        if let Some(cost) = self.judged_at_run {
            let operands = self
                .operands
                .map(|i| inputs.get(i).and_then(Option::as_ref).map(Tensor::len));
            let sizes = outputs.iter().map(|t| Some(t.len()));
            let expensive = judge(cost, operands, sizes).unwrap_or(true);
            self.cheap.store(!expensive, Ordering::Relaxed);
        }
    }
}

impl Plan {
    /// True when the parallel executor should run this plan: its last run took long
    /// enough that handing steps to other threads can save more than the hand-over costs.
    /// (Shapes fed at run time decide how much work a plan is: a batch of 32 rows through
    /// a small network takes microseconds, and is fastest on the calling thread alone.)
    pub(crate) fn worth_threads(&self) -> bool {
        self.last_run_nanos.load(Ordering::Relaxed) >= PARALLEL_MIN_RUN.as_nanos() as u64
    }

    /// Records how long a run took, for [`Plan::worth_threads`].
    pub(crate) fn record_run(&self, took: Duration) {
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.last_run_nanos.store(nanos, Ordering::Relaxed);
    }
}

/// True when two expensive steps sit at the same depth (longest path from a root), so
/// neither can depend on the other and a second thread can run one while the first runs.
fn has_independent_expensive_steps(steps: &[Step]) -> bool {
    let mut depth = vec![0usize; steps.len()];
    let mut seen_at_depth: HashSet<usize> = HashSet::new();
    for (i, s) in steps.iter().enumerate() {
        if !s.is_cheap() && !seen_at_depth.insert(depth[i]) {
            return true;
        }
        let next = depth[i] + usize::from(!s.is_cheap());
        for &t in &s.out_edges {
            depth[t] = depth[t].max(next);
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{Graph, Output};
    use crate::Session;
    use crate::SessionOptions;

    fn independent_products(n: usize) -> (Graph, Output, Output) {
        let mut g = Graph::new();
        let m = g
            .constant(Tensor::new(&[n, n], vec![1.0f32; n * n]).unwrap())
            .unwrap();
        let a = g.matmul(m, m).unwrap();
        let b = g.matmul(m, m).unwrap();
        (g, a, b)
    }

    fn plan_for(g: &Graph, fetches: &[Output]) -> Plan {
        let sess = Session::with_options(g, SessionOptions::with_threads(2));
        sess.plan_of(&[], fetches, &[]).unwrap()
    }

    #[test]
    fn small_products_run_inline_and_large_ones_in_parallel() {
        let (g, a, b) = independent_products(8);
        let plan = plan_for(&g, &[a, b]);
        assert!(plan.steps.iter().all(|s| s.is_cheap()));
        assert!(!plan.parallel);
        let (g, a, b) = independent_products(128);
        let plan = plan_for(&g, &[a, b]);
        assert!(plan.steps.iter().all(|s| !s.is_cheap()));
        assert!(plan.parallel);
    }

    #[test]
    fn steps_of_unknown_size_are_judged_by_their_last_run() {
        let mut g = Graph::new();
        let x = g
            .placeholder(crate::DType::Float32, [None, Some(4)], "x")
            .unwrap();
        let y = g.relu(x).unwrap();
        let sess = Session::new(&g);
        let plan = sess.plan_of(&[x], &[y], &[]).unwrap();
        let relu = plan.steps.iter().find(|s| s.op == "Relu").unwrap();
        assert!(!relu.is_cheap(), "unknown sizes count as large");
        for (rows, cheap) in [(2, true), (EXPENSIVE_ELEMENTS, false), (3, true)] {
            let input = Tensor::new(&[rows, 4], vec![1.0f32; rows * 4]).unwrap();
            let output = Tensor::new(&[rows, 4], vec![1.0f32; rows * 4]).unwrap();
            relu.observe(&[Some(input)], &[output]);
            assert_eq!(relu.is_cheap(), cheap, "{rows} rows");
        }
    }

    #[test]
    fn reductions_are_judged_by_what_they_read() {
        let mut g = Graph::new();
        let x = g
            .placeholder(crate::DType::Float32, [None, Some(4)], "x")
            .unwrap();
        let y = g.reduce_mean(x, &[0], false).unwrap();
        let rows = Some(EXPENSIVE_ELEMENTS);
        let big = g
            .placeholder(crate::DType::Float32, [rows, Some(2)], "big")
            .unwrap();
        let z = g.reduce_mean(big, &[0], false).unwrap();
        let sess = Session::new(&g);
        let plan = sess.plan_of(&[x, big], &[y, z], &[]).unwrap();
        let mean = |name: &str| plan.steps.iter().find(|s| s.name == name).unwrap();
        assert!(
            !mean("Mean_1").is_cheap(),
            "2^16 elements read for 2 written"
        );
        let mean = mean("Mean");
        assert!(!mean.is_cheap(), "an unknown input counts as large");
        for (rows, cheap) in [(2, true), (EXPENSIVE_ELEMENTS, false), (3, true)] {
            let input = Tensor::new(&[rows, 4], vec![1.0f32; rows * 4]).unwrap();
            mean.observe(
                &[Some(input)],
                &[Tensor::new(&[4], vec![1.0f32; 4]).unwrap()],
            );
            assert_eq!(mean.is_cheap(), cheap, "{rows} rows");
        }
    }

    #[test]
    fn only_runs_that_took_long_go_to_the_pool() {
        let (g, a, b) = independent_products(128);
        let plan = plan_for(&g, &[a, b]);
        assert!(
            !plan.worth_threads(),
            "the first run is measured on one thread"
        );
        plan.record_run(PARALLEL_MIN_RUN * 2);
        assert!(plan.worth_threads());
        plan.record_run(PARALLEL_MIN_RUN / 2);
        assert!(!plan.worth_threads());
    }

    #[test]
    fn the_longest_chain_of_expensive_steps_goes_first() {
        let mut g = Graph::new();
        let m = g
            .constant(Tensor::new(&[128, 128], vec![1.0f32; 128 * 128]).unwrap())
            .unwrap();
        let short = g.matmul(m, m).unwrap();
        let long = g.matmul(m, m).unwrap();
        let long = g.matmul(long, m).unwrap();
        let plan = plan_for(&g, &[short, long]);
        let priority = |name: &str| plan.steps.iter().find(|s| s.name == name).unwrap().priority;
        assert_eq!(priority("MatMul"), 1);
        assert_eq!(priority("MatMul_1"), 2);
        assert_eq!(priority("MatMul_2"), 1);
    }
}

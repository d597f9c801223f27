//! TensorFlow 1 control flow in the executor: frames, iterations and dead tensors, for
//! plans holding `Enter`, `Exit`, `Switch`, `Merge` or `NextIteration` steps (see
//! `ops::control_flow::frames`). Plans without them never come here: the choice is made
//! when the plan is built, so the plain executor pays nothing for it.
//!
//! As TensorFlow's executor does: every step runs in a frame (the root frame, or the frame
//! a loop's `Enter` names, nested by the frame it was entered from). A loop frame runs
//! once per (parent frame, parent iteration) that enters it, as an *instance*, and each
//! instance runs iterations 0, 1, ...: an `Enter` feeds iteration 0 (a constant one feeds
//! every iteration), a `NextIteration` the next iteration, an `Exit` the parent. At most
//! `parallel_iterations` iterations of an instance are live at once (later ones wait).
//! A `Switch` sends its value to the taken output and a *dead* tensor to the other; a step
//! with a dead input (data or control) does not run and its outputs are dead; a `Merge`
//! runs on its first live input (outputting it and its index) and is dead when all the
//! inputs that can arrive in its iteration are dead. A dead `NextIteration` ends its
//! iteration's line; when an instance ends, each `Exit` that sent no live value sends a
//! dead one. Steps run on the calling thread, kernels with their intra-op threads.

use super::executor::{compute, Threads};
use super::plan::{FetchSource, InputSource, Step};
use crate::graph::{AttrsExt, Graph, NodeId};
use crate::ops::control_flow::frames::switch_taken;
use crate::tensor::Tensor;
use crate::{Error, Result};
use std::collections::{HashMap, VecDeque};

/// Whether a plan with a step of this op needs the frame executor.
pub(crate) fn needs_frames(op: &str) -> bool {
    matches!(op, "Enter" | "Exit" | "Switch" | "Merge" | "NextIteration")
}

/// What a step does to frames.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Plain,
    /// Moves its value into frame `frame` (to every iteration when `constant`).
    Enter {
        frame: usize,
        constant: bool,
    },
    Exit,
    NextIteration,
    Switch,
    Merge,
}

/// Where a step's input comes from, as the frame executor reads it.
#[derive(Clone, Copy, Debug)]
enum In {
    /// Another step's output, delivered to the input's entry of the step's iteration.
    Edge,
    /// A fed value (slot), read by every frame.
    Feed(usize),
    /// A folded constant, read by every frame.
    Constant(usize),
    /// A reference input (the kernel holds its variable).
    Ref,
}

/// One out-edge of a step: to input `input` of `dst` (`None`: a control edge), carrying
/// output `output`.
#[derive(Clone, Copy, Debug)]
struct OutEdge {
    dst: usize,
    output: usize,
    input: Option<usize>,
}

/// A loop frame of the plan (frame 0 is the root).
struct StaticFrame {
    name: String,
    parent: usize,
    /// `Enter` steps into it: an instance's first iteration is complete only after all ran.
    enters: usize,
    parallel_iterations: usize,
    /// Its `Exit` steps.
    exits: Vec<usize>,
    /// Per step of the frame (by local index): the first input entry and the initial
    /// pending count.
    steps: Vec<usize>,
    entries: usize,
}

/// The control-flow structure of a plan, worked out when it is built.
pub(crate) struct FramePlan {
    kind: Vec<Kind>,
    /// Index of each step among its frame's steps.
    local: Vec<usize>,
    /// First input entry of each step in its iteration's entries.
    entry: Vec<usize>,
    inputs: Vec<Vec<In>>,
    edges: Vec<Vec<OutEdge>>,
    /// In-edges a step waits for (for a `Merge`: its control in-edges only).
    pending: Vec<u32>,
    /// For a `Merge`: data inputs arriving in an instance's first iteration (all but the
    /// back edges) and in later ones (the back edges).
    merge_inputs: Vec<[u32; 2]>,
    frames: Vec<StaticFrame>,
    /// Per step: (output, fetch index) of its fetched outputs.
    fetched: Vec<Vec<(usize, usize)>>,
}

const UNASSIGNED: usize = usize::MAX;

fn step_error(step: &Step, msg: String) -> Error {
    Error::Run {
        node: step.name.clone(),
        op: step.op.to_string(),
        msg,
    }
}

impl FramePlan {
    /// The frame structure of `steps` (in plan order, reading slots and constants as the
    /// plan lowered them): `controls[s]` are the steps that `s` has control edges from,
    /// `nodes[s]` the node behind step `s`. Malformed frames (an `Exit` outside any loop, a
    /// `NextIteration` feeding something other than a `Merge`, a step reading values of two
    /// frames) are errors naming the step.
    pub(crate) fn build(
        graph: &Graph,
        steps: &[Step],
        nodes: &[Option<NodeId>],
        controls: &[Vec<usize>],
        fetches: &[FetchSource],
    ) -> Result<FramePlan> {
        let n = steps.len();
        let mut owner: HashMap<usize, (usize, usize)> = HashMap::new();
        for (s, step) in steps.iter().enumerate() {
            for k in 0..step.output_specs.len() {
                owner.insert(step.out_start + k, (s, k));
            }
        }
        let mut inputs = Vec::with_capacity(n);
        let mut edges: Vec<Vec<OutEdge>> = vec![Vec::new(); n];
        let mut pending = vec![0u32; n];
        for (s, step) in steps.iter().enumerate() {
            let mut ins = Vec::with_capacity(step.inputs.len());
            for (i, src) in step.inputs.iter().enumerate() {
                ins.push(match *src {
                    InputSource::Slot { slot, .. } => match owner.get(&slot) {
                        Some(&(from, output)) => {
                            edges[from].push(OutEdge {
                                dst: s,
                                output,
                                input: Some(i),
                            });
                            pending[s] += 1;
                            In::Edge
                        }
                        None => In::Feed(slot),
                    },
                    InputSource::Constant(c) => In::Constant(c),
                    InputSource::Ref => In::Ref,
                });
            }
            inputs.push(ins);
            for &from in &controls[s] {
                edges[from].push(OutEdge {
                    dst: s,
                    output: 0,
                    input: None,
                });
                pending[s] += 1;
            }
        }
        let mut kind = Vec::with_capacity(n);
        let mut frames = vec![StaticFrame {
            name: "(root)".into(),
            parent: UNASSIGNED,
            enters: 0,
            parallel_iterations: 1,
            exits: Vec::new(),
            steps: Vec::new(),
            entries: 0,
        }];
        let mut frame_ids: HashMap<String, usize> = HashMap::new();
        let mut enter_of: Vec<Option<(String, usize)>> = vec![None; n];
        for (s, step) in steps.iter().enumerate() {
            kind.push(match step.op {
                "Enter" => {
                    let attrs = nodes[s].map(|id| graph.node(id).attrs());
                    let read = |a: &crate::graph::Attrs| -> std::result::Result<_, String> {
                        Ok((
                            a.string_or("frame_name", "")?,
                            a.bool_or("is_constant", false)?,
                            a.int_or("parallel_iterations", 10)?,
                        ))
                    };
                    let (name, constant, parallel) = attrs
                        .map(read)
                        .transpose()
                        .map_err(|e| step_error(step, e))?
                        .ok_or_else(|| step_error(step, "an Enter step has no node".into()))?;
                    enter_of[s] = Some((name, parallel.max(1) as usize));
                    Kind::Enter { frame: 0, constant }
                }
                "Exit" => Kind::Exit,
                "NextIteration" => Kind::NextIteration,
                "Switch" => Kind::Switch,
                "Merge" => Kind::Merge,
                _ => Kind::Plain,
            });
        }
        // Frames by a walk from the steps that wait for nothing, as TensorFlow's
        // BuildControlFlowInfo assigns them.
        let mut frame = vec![UNASSIGNED; n];
        let mut queue: VecDeque<usize> = (0..n).filter(|&s| pending[s] == 0).collect();
        for &s in &queue {
            frame[s] = 0;
        }
        while let Some(s) = queue.pop_front() {
            let here = frame[s];
            let out = match kind[s] {
                Kind::Enter { .. } => {
                    let (name, parallel) = enter_of[s].clone().unwrap_or_default();
                    let id = *frame_ids.entry(name.clone()).or_insert_with(|| {
                        frames.push(StaticFrame {
                            name: name.clone(),
                            parent: here,
                            enters: 0,
                            parallel_iterations: parallel,
                            exits: Vec::new(),
                            steps: Vec::new(),
                            entries: 0,
                        });
                        frames.len() - 1
                    });
                    if frames[id].parent != here {
                        return Err(step_error(
                            &steps[s],
                            format!(
                                "it enters loop frame '{name}' from frame '{}', but another \
                                 Enter enters it from frame '{}'",
                                frames[here].name, frames[frames[id].parent].name
                            ),
                        ));
                    }
                    frames[id].enters += 1;
                    frames[id].parallel_iterations = frames[id].parallel_iterations.min(parallel);
                    if let Kind::Enter { frame, .. } = &mut kind[s] {
                        *frame = id;
                    }
                    id
                }
                Kind::Exit if here == 0 => {
                    return Err(step_error(
                        &steps[s],
                        "an Exit outside any loop frame: no Enter leads to it".into(),
                    ))
                }
                Kind::Exit => {
                    frames[here].exits.push(s);
                    frames[here].parent
                }
                Kind::NextIteration if here == 0 => {
                    return Err(step_error(
                        &steps[s],
                        "a NextIteration outside any loop frame: no Enter leads to it".into(),
                    ))
                }
                _ => here,
            };
            for e in &edges[s] {
                let dst = &steps[e.dst];
                if kind[s] == Kind::NextIteration
                    && (kind[e.dst] != Kind::Merge || e.input.is_none())
                {
                    return Err(step_error(
                        &steps[s],
                        format!(
                            "a NextIteration must feed the data input of its loop's Merge, not \
                             '{}' (op {})",
                            dst.name, dst.op
                        ),
                    ));
                }
                if frame[e.dst] == UNASSIGNED {
                    frame[e.dst] = out;
                    queue.push_back(e.dst);
                } else if frame[e.dst] != out {
                    return Err(step_error(
                        dst,
                        format!(
                            "it reads values of two frames, '{}' and '{}' (a value enters a \
                             loop through an Enter and leaves it through an Exit)",
                            frames[frame[e.dst]].name, frames[out].name
                        ),
                    ));
                }
            }
        }
        if let Some(s) = (0..n).find(|&s| frame[s] == UNASSIGNED) {
            return Err(step_error(
                &steps[s],
                "it is on a cycle that no Enter enters (a loop's Merge reads an Enter and \
                 its NextIteration)"
                    .into(),
            ));
        }
        // Merges: which inputs arrive in the first iteration and which later.
        let mut merge_inputs = vec![[0u32; 2]; n];
        for s in 0..n {
            for e in &edges[s] {
                if kind[e.dst] == Kind::Merge && e.input.is_some() {
                    merge_inputs[e.dst][usize::from(kind[s] == Kind::NextIteration)] += 1;
                }
            }
        }
        for s in 0..n {
            if kind[s] == Kind::Merge {
                if !inputs[s].iter().all(|i| matches!(i, In::Edge)) {
                    return Err(step_error(
                        &steps[s],
                        "a Merge reading a constant or fed value directly is not supported \
                         (it would always be live)"
                            .into(),
                    ));
                }
                pending[s] = controls[s].len() as u32;
            }
        }
        let mut local = vec![0; n];
        let mut entry = vec![0; n];
        for s in 0..n {
            let f = &mut frames[frame[s]];
            local[s] = f.steps.len();
            entry[s] = f.entries;
            f.steps.push(s);
            f.entries += steps[s].inputs.len();
        }
        // The frame a step's outputs land in.
        let out_frame = |s: usize| match kind[s] {
            Kind::Enter { frame, .. } => frame,
            Kind::Exit => frames[frame[s]].parent,
            _ => frame[s],
        };
        let mut fetched = vec![Vec::new(); n];
        for (i, src) in fetches.iter().enumerate() {
            if let FetchSource::Slot(slot) = *src {
                if let Some(&(s, k)) = owner.get(&slot) {
                    if out_frame(s) != 0 {
                        return Err(step_error(
                            &steps[s],
                            format!(
                                "output {k} is fetched, but it is computed inside loop frame \
                                 '{}'; fetch what the loop's Exit returns",
                                frames[out_frame(s)].name
                            ),
                        ));
                    }
                    fetched[s].push((k, i));
                }
            }
        }
        Ok(FramePlan {
            kind,
            local,
            entry,
            inputs,
            edges,
            pending,
            merge_inputs,
            frames,
            fetched,
        })
    }
}

/// A value waiting in an input entry.
#[derive(Clone, Debug, Default)]
enum Entry {
    #[default]
    Empty,
    Value(Tensor),
    Dead,
}

/// Merge flags: a live input has arrived; the step has been made ready.
const LIVE: u8 = 1;
const FIRED: u8 = 2;

/// The per-step state of one iteration of a frame instance.
struct Iteration {
    entries: Vec<Entry>,
    pending: Vec<u32>,
    /// Dead inputs received (for a `Merge`: dead data inputs).
    dead: Vec<u32>,
    merge: Vec<u8>,
    /// Steps of this iteration ready or running.
    outstanding: usize,
    /// Instances of child frames entered from this iteration and not finished.
    children: usize,
}

/// One run of a loop frame, entered from one iteration of its parent's instance.
struct Instance {
    frame: usize,
    parent: (usize, u64),
    /// Live iterations, the first being number `first`.
    iterations: VecDeque<Iteration>,
    first: u64,
    /// `Enter`s that have not run yet.
    pending_enters: usize,
    /// Values of constant `Enter`s, given to every iteration.
    invariants: Vec<(usize, Entry)>,
    /// `NextIteration` values waiting for an iteration (more than `parallel_iterations`
    /// were live).
    deferred: Vec<(usize, Entry)>,
    /// `Exit`s that sent a live value.
    live_exits: Vec<usize>,
}

struct Run<'a> {
    plan: &'a super::plan::Plan,
    fp: &'a FramePlan,
    feeds: &'a [Tensor],
    instances: Vec<Option<Instance>>,
    children: HashMap<(usize, u64, usize), usize>,
    ready: VecDeque<(usize, u64, usize)>,
    /// Fetched values, with the step that made each.
    results: Vec<Option<(Entry, usize)>>,
    max_iterations: Option<u64>,
    /// Finished iterations' state, by frame, for the next ones.
    spare: Vec<Vec<Iteration>>,
}

impl Run<'_> {
    fn new_iteration(&mut self, frame: usize) -> Iteration {
        let f = &self.fp.frames[frame];
        let mut it = self.spare[frame].pop().unwrap_or_else(|| Iteration {
            entries: Vec::new(),
            pending: Vec::new(),
            dead: Vec::new(),
            merge: Vec::new(),
            outstanding: 0,
            children: 0,
        });
        it.entries.clear();
        it.entries.resize(f.entries, Entry::Empty);
        it.pending.clear();
        it.pending
            .extend(f.steps.iter().map(|&s| self.fp.pending[s]));
        it.dead.clear();
        it.dead.resize(f.steps.len(), 0);
        it.merge.clear();
        it.merge.resize(f.steps.len(), 0);
        it.outstanding = 0;
        it.children = 0;
        it
    }

    fn instance(&mut self, inst: usize) -> &mut Instance {
        self.instances[inst]
            .as_mut()
            .expect("a frame instance is used only while it runs")
    }

    fn iteration(&mut self, inst: usize, iter: u64) -> &mut Iteration {
        let i = self.instance(inst);
        let k = (iter - i.first) as usize;
        &mut i.iterations[k]
    }

    /// Appends iteration `first + len` to `inst`, with the loop invariants delivered.
    fn add_iteration(&mut self, inst: usize) -> Result<u64> {
        let frame = self.instance(inst).frame;
        let i = self.instance(inst);
        let number = i.first + i.iterations.len() as u64;
        if let Some(max) = self.max_iterations {
            if number > max {
                return Err(Error::invalid(format!(
                    "while loop frame '{}' ran more than {max} iterations (the session's \
                     max_loop_iterations) and its LoopCond is still true",
                    self.fp.frames[frame].name
                )));
            }
        }
        let it = self.new_iteration(frame);
        self.instance(inst).iterations.push_back(it);
        let invariants = self.instance(inst).invariants.clone();
        for (enter, value) in invariants {
            self.deliver(inst, number, enter, &[value], false);
        }
        Ok(number)
    }

    /// Sends `outputs` of `step` along its out-edges into iteration `iter` of `inst`.
    /// Values landing in the root frame are kept when fetched.
    fn deliver(&mut self, inst: usize, iter: u64, step: usize, outputs: &[Entry], dead: bool) {
        let fp = self.fp;
        if inst == 0 {
            for &(k, f) in &fp.fetched[step] {
                self.results[f] = Some((outputs[k].clone(), step));
            }
        }
        for e in &fp.edges[step] {
            let dst = e.dst;
            let local = fp.local[dst];
            let it = self.iteration(inst, iter);
            let ready = if fp.kind[dst] == Kind::Merge {
                match e.input {
                    None => it.pending[local] -= 1,
                    Some(i) => match &outputs[e.output] {
                        Entry::Value(t) if it.merge[local] & LIVE == 0 => {
                            it.entries[fp.entry[dst] + i] = Entry::Value(t.clone());
                            it.merge[local] |= LIVE;
                        }
                        Entry::Value(_) => {}
                        _ => it.dead[local] += 1,
                    },
                }
                let expected = fp.merge_inputs[dst][usize::from(iter > 0)];
                let fire = it.merge[local] & FIRED == 0
                    && it.pending[local] == 0
                    && (it.merge[local] & LIVE != 0 || it.dead[local] == expected);
                if fire {
                    it.merge[local] |= FIRED;
                }
                fire
            } else {
                match e.input {
                    Some(i) => {
                        let v = outputs[e.output].clone();
                        if matches!(v, Entry::Dead) {
                            it.dead[local] += 1;
                        }
                        it.entries[fp.entry[dst] + i] = v;
                        continue_pending(it, local)
                    }
                    None => {
                        if dead {
                            it.dead[local] += 1;
                        }
                        continue_pending(it, local)
                    }
                }
            };
            if ready {
                it.outstanding += 1;
                self.ready.push_back((inst, iter, dst));
            }
        }
    }

    /// The instance of frame `frame` entered from iteration `iter` of `inst`, started
    /// (with its first iteration) when this is the first `Enter` into it.
    fn child(&mut self, inst: usize, iter: u64, frame: usize) -> Result<usize> {
        if let Some(&c) = self.children.get(&(inst, iter, frame)) {
            return Ok(c);
        }
        let id = self.instances.len();
        self.instances.push(Some(Instance {
            frame,
            parent: (inst, iter),
            iterations: VecDeque::new(),
            first: 0,
            pending_enters: self.fp.frames[frame].enters,
            invariants: Vec::new(),
            deferred: Vec::new(),
            live_exits: Vec::new(),
        }));
        self.children.insert((inst, iter, frame), id);
        self.iteration(inst, iter).children += 1;
        self.add_iteration(id)?;
        Ok(id)
    }

    /// Runs one ready step of iteration `iter` of `inst`.
    fn process(&mut self, inst: usize, iter: u64, s: usize, threads: Threads<'_>) -> Result<()> {
        let (fp, plan, feeds) = (self.fp, self.plan, self.feeds);
        let step = &plan.steps[s];
        let local = fp.local[s];
        let base = fp.entry[s];
        let mut inputs: Vec<Option<Tensor>> = Vec::with_capacity(step.inputs.len());
        let it = self.iteration(inst, iter);
        let dead = match fp.kind[s] {
            Kind::Merge => it.merge[local] & LIVE == 0,
            _ => it.dead[local] > 0,
        };
        for (i, src) in fp.inputs[s].iter().enumerate() {
            inputs.push(match *src {
                In::Edge => match std::mem::take(&mut it.entries[base + i]) {
                    Entry::Value(t) => Some(t),
                    _ => None,
                },
                In::Feed(slot) => Some(feeds[slot].clone()),
                In::Constant(c) => Some(plan.constants[c].clone()),
                In::Ref => None,
            });
        }
        let outputs: Vec<Entry> = if dead {
            vec![Entry::Dead; step.output_specs.len()]
        } else {
            let taken = match (fp.kind[s], inputs.get(1)) {
                (Kind::Switch, Some(Some(pred))) => {
                    Some(switch_taken(pred).map_err(|e| step_error(step, e.to_string()))?)
                }
                _ => None,
            };
            let mut out = Vec::with_capacity(step.output_specs.len());
            compute(step, &mut inputs, &mut out, threads)?;
            let mut out: Vec<Entry> = out.into_iter().map(Entry::Value).collect();
            if let Some(taken) = taken {
                out[1 - taken] = Entry::Dead;
            }
            out
        };
        match fp.kind[s] {
            Kind::Enter { frame, constant } => {
                let child = self.child(inst, iter, frame)?;
                if constant {
                    self.instance(child)
                        .invariants
                        .push((s, outputs[0].clone()));
                    let (first, len) = {
                        let c = self.instance(child);
                        (c.first, c.iterations.len() as u64)
                    };
                    for i in first..first + len {
                        self.deliver(child, i, s, &outputs, dead);
                    }
                } else {
                    let first = self.instance(child).first;
                    self.deliver(child, first, s, &outputs, dead);
                }
                self.instance(child).pending_enters -= 1;
                self.cleanup(child)?;
            }
            Kind::Exit if !dead => {
                let (parent, parent_iter) = self.instance(inst).parent;
                self.instance(inst).live_exits.push(s);
                self.deliver(parent, parent_iter, s, &outputs, false);
            }
            Kind::Exit => {}
            Kind::NextIteration if !dead => self.next_iteration(inst, iter, s, outputs)?,
            Kind::NextIteration => {}
            _ => self.deliver(inst, iter, s, &outputs, dead),
        }
        self.iteration(inst, iter).outstanding -= 1;
        self.cleanup(inst)
    }

    /// Sends a `NextIteration`'s live value to the next iteration, starting it when fewer
    /// than `parallel_iterations` are live, else keeping it until one finishes.
    fn next_iteration(&mut self, inst: usize, iter: u64, s: usize, out: Vec<Entry>) -> Result<()> {
        let parallel = self.fp.frames[self.instance(inst).frame].parallel_iterations;
        let i = self.instance(inst);
        let last = i.first + i.iterations.len() as u64 - 1;
        if iter < last {
            self.deliver(inst, iter + 1, s, &out, false);
        } else if i.iterations.len() < parallel {
            let next = self.add_iteration(inst)?;
            self.deliver(inst, next, s, &out, false);
        } else {
            let value = out.into_iter().next().unwrap_or_default();
            self.instance(inst).deferred.push((s, value));
        }
        Ok(())
    }

    /// Retires the finished iterations at the front of `inst` (starting deferred ones),
    /// and when the instance is done, sends its dead exits to the parent and retires the
    /// parent's iterations in turn.
    fn cleanup(&mut self, mut inst: usize) -> Result<()> {
        while inst != 0 {
            loop {
                let i = self.instance(inst);
                let done = match i.iterations.front() {
                    Some(it) => {
                        it.outstanding == 0
                            && it.children == 0
                            && (i.first > 0 || i.pending_enters == 0)
                    }
                    None => false,
                };
                if !done {
                    break;
                }
                let frame = i.frame;
                let it = i.iterations.pop_front().expect("checked above");
                i.first += 1;
                self.spare[frame].push(it);
                if !self.instance(inst).deferred.is_empty() {
                    let deferred = std::mem::take(&mut self.instance(inst).deferred);
                    let next = self.add_iteration(inst)?;
                    for (s, value) in deferred {
                        self.deliver(inst, next, s, &[value], false);
                    }
                }
            }
            let i = self.instance(inst);
            if !i.iterations.is_empty() || i.pending_enters > 0 {
                return Ok(());
            }
            let Some(done) = self.instances[inst].take() else {
                return Ok(());
            };
            let (parent, parent_iter) = done.parent;
            self.children.remove(&(parent, parent_iter, done.frame));
            for &exit in &self.fp.frames[done.frame].exits {
                if !done.live_exits.contains(&exit) {
                    self.deliver(parent, parent_iter, exit, &[Entry::Dead], true);
                }
            }
            self.iteration(parent, parent_iter).children -= 1;
            inst = parent;
        }
        Ok(())
    }
}

/// Decrements a non-Merge step's pending count: true when it has all its inputs.
fn continue_pending(it: &mut Iteration, local: usize) -> bool {
    it.pending[local] -= 1;
    it.pending[local] == 0
}

/// Runs a plan with frames (see the module docs) on the calling thread.
pub(crate) fn run_frames(
    plan: &super::plan::Plan,
    fp: &FramePlan,
    feeds: Vec<Tensor>,
    threads: Threads<'_>,
    max_iterations: Option<u64>,
) -> Result<Vec<Tensor>> {
    let mut run = Run {
        plan,
        fp,
        feeds: &feeds,
        instances: Vec::new(),
        children: HashMap::new(),
        ready: VecDeque::new(),
        results: vec![None; plan.fetches.len()],
        max_iterations,
        spare: (0..fp.frames.len()).map(|_| Vec::new()).collect(),
    };
    let root = run.new_iteration(0);
    run.instances.push(Some(Instance {
        frame: 0,
        parent: (0, 0),
        iterations: VecDeque::from([root]),
        first: 0,
        pending_enters: 0,
        invariants: Vec::new(),
        deferred: Vec::new(),
        live_exits: Vec::new(),
    }));
    for &s in &fp.frames[0].steps {
        if fp.pending[s] == 0 && fp.kind[s] != Kind::Merge {
            run.iteration(0, 0).outstanding += 1;
            run.ready.push_back((0, 0, s));
        }
    }
    while let Some((inst, iter, s)) = run.ready.pop_front() {
        run.process(inst, iter, s, threads)?;
    }
    if let Some(i) = run.instances.iter().skip(1).flatten().next() {
        return Err(Error::invalid(format!(
            "while loop frame '{}' did not finish: some step in it never received all its \
             inputs (a malformed loop)",
            fp.frames[i.frame].name
        )));
    }
    plan.fetches
        .iter()
        .zip(run.results)
        .map(|(src, got)| match (*src, got) {
            (FetchSource::Constant(c), _) => Ok(plan.constants[c].clone()),
            (_, Some((Entry::Value(t), _))) => Ok(t),
            (FetchSource::Slot(slot), None) if slot < feeds.len() => Ok(feeds[slot].clone()),
            (_, Some((Entry::Dead, s))) => Err(step_error(
                &plan.steps[s],
                "its fetched output is dead: it depends on the branch of a Switch that was \
                 not taken"
                    .into(),
            )),
            _ => Err(Error::invalid("a fetched value was not produced")),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::{DType, Graph, PartialShape, Session, Tensor};

    #[test]
    fn only_plans_with_control_flow_steps_get_a_frame_plan() {
        let mut g = Graph::new();
        let x = g.constant(Tensor::vector(vec![1.0f32, 2.0])).unwrap();
        let p = g
            .placeholder(DType::Bool, PartialShape::scalar(), "p")
            .unwrap();
        let plain = g.add(x, x).unwrap();
        let switch = g.op("Switch").inputs(&[plain, p]).build().unwrap();
        let sess = Session::new(&g);
        assert!(sess.plan_of(&[], &[plain], &[]).unwrap().frames.is_none());
        let plan = sess.plan_of(&[p], &[switch.output(1)], &[]).unwrap();
        assert!(plan.frames.is_some());
    }
}

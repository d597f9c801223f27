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
use super::plan::frame_plan::{step_error, FramePlan, In, Kind};
use super::plan::FetchSource;
use crate::ops::control_flow::frames::switch_taken;
use crate::tensor::Tensor;
use crate::{Error, Result};
use std::collections::{HashMap, VecDeque};

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
    // What the steps make is charged to the run's memory budget.
    crate::tensor::alloc::with_budget(threads.memory, || {
        while let Some((inst, iter, s)) = run.ready.pop_front() {
            run.process(inst, iter, s, threads)?;
        }
        Ok::<(), Error>(())
    })?;
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

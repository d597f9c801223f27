//! Runs a [`Plan`]: on the calling thread in plan order, or across the inter-op pool with
//! per-step pending counts (cheap steps inline, expensive ones dispatched).

use super::plan::{FetchSource, InputSource, Plan, Step};
use super::pool::Pool;
use super::trace::Tracer;
use crate::device::cores::CoreBudget;
use crate::kernel::KernelCtx;
use crate::tensor::alloc::{self, MemoryBudget};
use crate::tensor::Tensor;
use crate::{Error, Result};
use crossbeam_channel::{bounded, select, Sender};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Wraps a kernel error with the node's name and op (memory running out stays
/// [`Error::ResourceExhausted`], naming the node, as TensorFlow's OOM errors do).
fn node_error(step: &Step, e: Error) -> Error {
    let msg = match e {
        Error::InvalidArgument(m) | Error::FailedPrecondition(m) | Error::NotFound(m) => m,
        Error::ResourceExhausted(m) => {
            return Error::ResourceExhausted(format!("node '{}' (op {}): {m}", step.name, step.op))
        }
        Error::Run { .. } => return e,
        other => other.to_string(),
    };
    Error::Run {
        node: step.name.clone(),
        op: step.op.to_string(),
        msg,
    }
}

/// Thread settings of one run: the session's core budget, how many threads one kernel
/// may use, the memory budget its live tensors are charged to, and where its step
/// timings go when it is traced.
#[derive(Clone, Copy)]
pub(crate) struct Threads<'a> {
    pub(crate) budget: &'a CoreBudget,
    pub(crate) intra_op: usize,
    pub(crate) memory: &'a Arc<MemoryBudget>,
    pub(crate) trace: Option<&'a Arc<Tracer>>,
}

/// Runs one step's kernel on gathered inputs and checks its outputs. An expensive step
/// computes while holding a core of the budget; a cheap one runs on one thread.
pub(super) fn compute(
    step: &Step,
    inputs: &mut [Option<Tensor>],
    outputs: &mut Vec<Tensor>,
    threads: Threads<'_>,
) -> Result<()> {
    outputs.clear();
    let mut clock = threads.trace.map(|t| t.begin());
    let cores = (!step.is_cheap()).then(|| threads.budget.acquire());
    let mut ctx = KernelCtx::new(inputs, outputs, threads.intra_op, cores.as_ref());
    if let Some(c) = &mut clock {
        c.kernel_started();
    }
    // The run's memory budget is this thread's (set once per run or task, not per step).
    let result = step
        .kernel
        .compute(&mut ctx)
        .and_then(|()| threads.memory.check());
    if let Some(c) = &mut clock {
        c.kernel_ended(cores.as_ref().map_or(0, |c| c.held()));
    }
    step.observe(inputs, outputs);
    // Let go of the inputs now: a variable update further on writes in place only when
    // no finished step still holds the old value.
    inputs.iter_mut().for_each(|input| *input = None);
    result.map_err(|e| node_error(step, e))?;
    drop(cores);
    if outputs.len() != step.output_specs.len() {
        return Err(node_error(
            step,
            Error::invalid(format!(
                "kernel produced {} outputs, expected {}",
                outputs.len(),
                step.output_specs.len()
            )),
        ));
    }
    for (i, (t, spec)) in outputs.iter().zip(&step.output_specs).enumerate() {
        if t.dtype() != spec.dtype || !spec.shape.is_compatible_with(t.shape()) {
            return Err(node_error(
                step,
                Error::invalid(format!(
                    "output {i} is {:?} {} but the graph promised {spec}",
                    t.shape(),
                    t.dtype()
                )),
            ));
        }
    }
    if let (Some(tracer), Some(c)) = (threads.trace, &clock) {
        tracer.record(&step.name, step.op, c);
    }
    Ok(())
}

/// Runs every step on the calling thread, in plan order, charging what they make to the
/// run's memory budget.
pub(crate) fn run_sequential(
    plan: &Plan,
    feeds: Vec<Tensor>,
    threads: Threads<'_>,
) -> Result<Vec<Tensor>> {
    alloc::with_budget(threads.memory, || run_steps(plan, feeds, threads))
}

/// [`run_sequential`] inside the run's memory budget.
fn run_steps(plan: &Plan, feeds: Vec<Tensor>, threads: Threads<'_>) -> Result<Vec<Tensor>> {
    let mut slots: Vec<Option<Tensor>> = Vec::with_capacity(plan.num_slots);
    slots.extend(feeds.into_iter().map(Some));
    slots.resize(plan.num_slots, None);
    let mut inputs: Vec<Option<Tensor>> = Vec::with_capacity(plan.max_inputs);
    let mut outputs: Vec<Tensor> = Vec::with_capacity(plan.max_outputs);
    for step in &plan.steps {
        inputs.clear();
        for src in &step.inputs {
            inputs.push(match *src {
                InputSource::Slot { slot, last: true } => slots[slot].take(),
                InputSource::Slot { slot, last: false } => slots[slot].clone(),
                InputSource::Constant(c) => Some(plan.constants[c].clone()),
                InputSource::Ref => None,
            });
        }
        compute(step, &mut inputs, &mut outputs, threads)?;
        while let Some(t) = outputs.pop() {
            let slot = step.out_start + outputs.len();
            if plan.slot_uses[slot] > 0 {
                slots[slot] = Some(t);
            }
        }
    }
    collect_fetches(plan, |s| slots[s].clone())
}

fn collect_fetches(
    plan: &Plan,
    mut get: impl FnMut(usize) -> Option<Tensor>,
) -> Result<Vec<Tensor>> {
    plan.fetches
        .iter()
        .map(|src| match *src {
            FetchSource::Constant(c) => Ok(plan.constants[c].clone()),
            FetchSource::Slot(s) => {
                get(s).ok_or_else(|| Error::invalid("a fetched value was not produced"))
            }
        })
        .collect()
}

/// A slot shared between threads: its value and how many readers have yet to take it.
struct SharedSlot {
    value: Option<Tensor>,
    remaining: usize,
}

struct RunState {
    plan: Arc<Plan>,
    slots: Vec<Mutex<SharedSlot>>,
    pending: Vec<AtomicUsize>,
    outstanding: AtomicUsize,
    error: Mutex<Option<Error>>,
    done: Sender<()>,
    budget: Arc<CoreBudget>,
    intra_op_threads: usize,
    memory: Arc<MemoryBudget>,
    trace: Option<Arc<Tracer>>,
}

impl RunState {
    fn read_input(&self, slot: usize) -> Option<Tensor> {
        let mut s = self.slots[slot].lock().unwrap_or_else(|p| p.into_inner());
        s.remaining = s.remaining.saturating_sub(1);
        if s.remaining == 0 {
            s.value.take()
        } else {
            s.value.clone()
        }
    }

    fn record_error(&self, e: Error) {
        let mut err = self.error.lock().unwrap_or_else(|p| p.into_inner());
        if err.is_none() {
            *err = Some(e);
        }
    }

    /// Runs `first` and every cheap step it readies on this thread; expensive ready steps
    /// go to the pool, except one that this thread keeps when it has nothing else to do.
    fn process(self: &Arc<Self>, pool: &Arc<Pool>, first: usize) {
        alloc::with_budget(&self.memory, || self.process_steps(pool, first));
    }

    /// [`RunState::process`] inside the run's memory budget.
    fn process_steps(self: &Arc<Self>, pool: &Arc<Pool>, first: usize) {
        let mut inline = vec![first];
        let mut inputs: Vec<Option<Tensor>> = Vec::with_capacity(self.plan.max_inputs);
        let mut outputs: Vec<Tensor> = Vec::with_capacity(self.plan.max_outputs);
        let mut expensive: Vec<usize> = Vec::new();
        while let Some(si) = inline.pop() {
            let step = &self.plan.steps[si];
            inputs.clear();
            for src in &step.inputs {
                inputs.push(match *src {
                    InputSource::Slot { slot, .. } => self.read_input(slot),
                    InputSource::Constant(c) => Some(self.plan.constants[c].clone()),
                    InputSource::Ref => None,
                });
            }
            let failed = self.error.lock().map(|e| e.is_some()).unwrap_or(true);
            let result = if failed {
                Err(Error::invalid("cancelled"))
            } else {
                let threads = Threads {
                    budget: &self.budget,
                    intra_op: self.intra_op_threads,
                    memory: &self.memory,
                    trace: self.trace.as_ref(),
                };
                compute(step, &mut inputs, &mut outputs, threads)
            };
            let mut readied = 0;
            match result {
                Ok(()) => {
                    for (k, t) in outputs.drain(..).enumerate() {
                        let slot = step.out_start + k;
                        if self.plan.slot_uses[slot] > 0 {
                            self.slots[slot]
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .value = Some(t);
                        }
                    }
                    for &t in &step.out_edges {
                        if self.pending[t].fetch_sub(1, Ordering::AcqRel) == 1 {
                            readied += 1;
                            if self.plan.steps[t].is_cheap() {
                                inline.push(t);
                            } else {
                                expensive.push(t);
                            }
                        }
                    }
                }
                Err(e) => {
                    if !failed {
                        self.record_error(e);
                    }
                }
            }
            if readied > 0 {
                self.outstanding.fetch_add(readied, Ordering::AcqRel);
            }
            // Most urgent last: kept on this thread when it has nothing else to do, else
            // queued first.
            expensive.sort_by_key(|&t| self.plan.steps[t].priority);
            let keep = if inline.is_empty() {
                expensive.pop()
            } else {
                None
            };
            expensive.reverse();
            for t in expensive.drain(..) {
                let state = Arc::clone(self);
                let p = Arc::clone(pool);
                pool.submit(Box::new(move || state.process(&p, t)));
            }
            if let Some(t) = keep {
                inline.push(t);
            }
            if self.outstanding.fetch_sub(1, Ordering::AcqRel) == 1 {
                let _ = self.done.send(());
            }
        }
    }
}

/// Runs the plan across the pool; the calling thread works too and helps with queued jobs
/// while it waits.
pub(crate) fn run_parallel(
    plan: Arc<Plan>,
    feeds: Vec<Tensor>,
    pool: &Arc<Pool>,
    budget: Arc<CoreBudget>,
    threads: Threads<'_>,
) -> Result<Vec<Tensor>> {
    let (done_tx, done_rx) = bounded::<()>(1);
    let mut values: Vec<Option<Tensor>> = feeds.into_iter().map(Some).collect();
    values.resize(plan.num_slots, None);
    let slots = values
        .into_iter()
        .zip(&plan.slot_uses)
        .map(|(value, &remaining)| Mutex::new(SharedSlot { value, remaining }))
        .collect();
    let roots: Vec<usize> = (0..plan.steps.len())
        .filter(|&i| plan.steps[i].pending == 0)
        .collect();
    let state = Arc::new(RunState {
        pending: plan
            .steps
            .iter()
            .map(|s| AtomicUsize::new(s.pending))
            .collect(),
        plan: Arc::clone(&plan),
        slots,
        outstanding: AtomicUsize::new(roots.len()),
        error: Mutex::new(None),
        done: done_tx,
        budget,
        intra_op_threads: threads.intra_op,
        memory: Arc::clone(threads.memory),
        trace: threads.trace.cloned(),
    });
    let (cheap, expensive): (Vec<usize>, Vec<usize>) =
        roots.into_iter().partition(|&r| plan.steps[r].is_cheap());
    for &r in &expensive {
        let s = Arc::clone(&state);
        let p = Arc::clone(pool);
        pool.submit(Box::new(move || s.process(&p, r)));
    }
    for r in cheap {
        state.process(pool, r);
    }
    loop {
        select! {
            recv(done_rx) -> _ => break,
            recv(pool.queue()) -> job => {
                if let Ok(job) = job {
                    job();
                }
            }
        }
    }
    if let Some(e) = state.error.lock().unwrap_or_else(|p| p.into_inner()).take() {
        return Err(e);
    }
    collect_fetches(&plan, |s| {
        state.slots[s]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .value
            .clone()
    })
}

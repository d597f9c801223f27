//! Step timings of a traced run, as TensorFlow's `RunOptions(trace_level=FULL_TRACE)` fills
//! `RunMetadata.step_stats`: when each node's kernel started and ended, on which thread,
//! and how long it waited for a core first. [`RunMetadata`] gives them as TensorFlow's
//! `StepStats` protobuf, as a Chrome trace (what TensorFlow's `timeline.Timeline` writes,
//! for `chrome://tracing` or Perfetto) and as totals per op type.

use crate::pb::tf as pb;
use serde_json::json;
use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How much of a run to record (TensorFlow's `RunOptions.TraceLevel`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TraceLevel {
    /// Record nothing (the default): a run costs what [`super::Session::run`] costs.
    #[default]
    NoTrace,
    /// Record every executed node's timings.
    FullTrace,
}

/// Options of one run (TensorFlow's `RunOptions`).
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Whether to record step timings in the returned [`RunMetadata`].
    pub trace_level: TraceLevel,
}

impl RunOptions {
    /// Options that record every node's timings.
    pub fn full_trace() -> Self {
        RunOptions {
            trace_level: TraceLevel::FullTrace,
        }
    }
}

/// One executed node's timings, as offsets from the start of the run.
#[derive(Clone, Debug)]
pub struct NodeTiming {
    /// The node's name.
    pub node: String,
    /// Its op type.
    pub op: &'static str,
    /// The thread that ran it: 0 for the first thread that ran a traced node in this
    /// process, 1 for the next, and so on.
    pub thread: u32,
    /// When the executor began the node (before waiting for a core, for an expensive one).
    pub start: Duration,
    /// When its kernel started computing.
    pub kernel_start: Duration,
    /// When its kernel returned.
    pub kernel_end: Duration,
    /// When its outputs were checked and handed on.
    pub end: Duration,
    /// Cores its kernel held at the end (its own and those it claimed to split its work):
    /// 0 for a cheap step, which holds none.
    pub cores: usize,
}

impl NodeTiming {
    /// How long the kernel computed.
    pub fn kernel_time(&self) -> Duration {
        self.kernel_end.saturating_sub(self.kernel_start)
    }
}

/// Totals of one op type over a traced run (see [`RunMetadata::op_totals`]).
#[derive(Clone, Debug, PartialEq)]
pub struct OpTotal {
    /// The op type.
    pub op: &'static str,
    /// How many of its nodes ran.
    pub count: usize,
    /// Their kernel time added up.
    pub kernel_time: Duration,
}

/// What a run recorded besides its fetched values (TensorFlow's `RunMetadata`): with
/// [`TraceLevel::FullTrace`], every executed node's timings in the order they finished.
#[derive(Clone, Debug)]
pub struct RunMetadata {
    /// When the run started.
    pub started_at: SystemTime,
    /// The executed nodes (empty when the run was not traced).
    pub nodes: Vec<NodeTiming>,
}

/// The device name TensorFlow gives the host CPU in step stats.
const CPU_DEVICE: &str = "/job:localhost/replica:0/task:0/device:CPU:0";

impl RunMetadata {
    /// Kernel time per op type, largest first (ties by op name).
    pub fn op_totals(&self) -> Vec<OpTotal> {
        let mut by_op: BTreeMap<&'static str, (usize, Duration)> = BTreeMap::new();
        for n in &self.nodes {
            let e = by_op.entry(n.op).or_default();
            e.0 += 1;
            e.1 += n.kernel_time();
        }
        let mut totals: Vec<OpTotal> = by_op
            .into_iter()
            .map(|(op, (count, kernel_time))| OpTotal {
                op,
                count,
                kernel_time,
            })
            .collect();
        totals.sort_by_key(|t| std::cmp::Reverse(t.kernel_time));
        totals
    }

    /// The timings as TensorFlow's `StepStats` (one device: the host CPU), with the
    /// microsecond and nanosecond fields TensorFlow fills.
    pub fn step_stats(&self) -> pb::StepStats {
        let origin = self
            .started_at
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let micros = |d: Duration| i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
        let nanos = |d: Duration| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
        let node_stats = self
            .nodes
            .iter()
            .map(|n| {
                let start = origin + n.start;
                let rel = |t: Duration| t.saturating_sub(n.start);
                pb::NodeExecStats {
                    node_name: n.node.clone(),
                    all_start_micros: micros(start),
                    op_start_rel_micros: micros(rel(n.kernel_start)),
                    op_end_rel_micros: micros(rel(n.kernel_end)),
                    all_end_rel_micros: micros(rel(n.end)),
                    timeline_label: format!("{} = {}()", n.node, n.op),
                    scheduled_micros: 0,
                    thread_id: n.thread,
                    all_start_nanos: nanos(start),
                    op_start_rel_nanos: nanos(rel(n.kernel_start)),
                    op_end_rel_nanos: nanos(rel(n.kernel_end)),
                    all_end_rel_nanos: nanos(rel(n.end)),
                    scheduled_nanos: 0,
                }
            })
            .collect();
        let thread_names = self
            .nodes
            .iter()
            .map(|n| (n.thread, format!("thread {}", n.thread)))
            .collect();
        pb::StepStats {
            dev_stats: vec![pb::DeviceStepStats {
                device: CPU_DEVICE.to_string(),
                node_stats,
                thread_names,
            }],
        }
    }

    /// The timings in the Chrome trace event format, as TensorFlow's
    /// `timeline.Timeline(step_stats).generate_chrome_trace_format()` lays them out: one
    /// complete event per kernel (name: the op, args: the node), one track per thread,
    /// times in microseconds from the start of the run.
    pub fn chrome_trace(&self) -> String {
        let us = |d: Duration| d.as_nanos() as f64 / 1e3;
        let mut events = vec![json!({
            "name": "process_name", "ph": "M", "pid": 0,
            "args": {"name": format!("{CPU_DEVICE} Compute")},
        })];
        let threads: BTreeMap<u32, ()> = self.nodes.iter().map(|n| (n.thread, ())).collect();
        events.extend(threads.keys().map(|t| {
            json!({"name": "thread_name", "ph": "M", "pid": 0, "tid": t,
                   "args": {"name": format!("thread {t}")}})
        }));
        events.extend(self.nodes.iter().map(|n| {
            json!({
                "name": n.op, "cat": "Op", "ph": "X", "pid": 0, "tid": n.thread,
                "ts": us(n.kernel_start), "dur": us(n.kernel_time()),
                "args": {"name": n.node, "op": n.op, "cores": n.cores},
            })
        }));
        json!({ "traceEvents": events }).to_string()
    }
}

/// Collects the timings of one traced run; shared by the threads that run its steps.
pub(crate) struct Tracer {
    started_at: SystemTime,
    origin: Instant,
    nodes: Mutex<Vec<NodeTiming>>,
}

/// The instants of one step being run, taken by [`Tracer::begin`] and its methods.
pub(crate) struct StepClock {
    start: Instant,
    kernel_start: Instant,
    kernel_end: Instant,
    cores: usize,
}

impl Tracer {
    pub(crate) fn new() -> Self {
        Tracer {
            started_at: SystemTime::now(),
            origin: Instant::now(),
            nodes: Mutex::new(Vec::new()),
        }
    }

    /// The clock of a step the executor begins now.
    pub(crate) fn begin(&self) -> StepClock {
        let now = Instant::now();
        StepClock {
            start: now,
            kernel_start: now,
            kernel_end: now,
            cores: 0,
        }
    }

    /// Records a finished step.
    pub(crate) fn record(&self, node: &str, op: &'static str, clock: &StepClock) {
        let since = |t: Instant| t.saturating_duration_since(self.origin);
        let timing = NodeTiming {
            node: node.to_string(),
            op,
            thread: thread_index(),
            start: since(clock.start),
            kernel_start: since(clock.kernel_start),
            kernel_end: since(clock.kernel_end),
            end: since(Instant::now()),
            cores: clock.cores,
        };
        self.nodes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(timing);
    }

    /// What was recorded (taken out: a pool thread may still hold the tracer for a moment
    /// after the run's last step).
    pub(crate) fn finish(&self) -> RunMetadata {
        let mut nodes = self.nodes.lock().unwrap_or_else(|p| p.into_inner());
        RunMetadata {
            started_at: self.started_at,
            nodes: std::mem::take(&mut *nodes),
        }
    }
}

impl StepClock {
    /// Marks the kernel starting.
    pub(crate) fn kernel_started(&mut self) {
        self.kernel_start = Instant::now();
    }

    /// Marks the kernel returning, having held `cores` cores.
    pub(crate) fn kernel_ended(&mut self, cores: usize) {
        self.kernel_end = Instant::now();
        self.cores = cores;
    }
}

/// A small stable number for the calling thread (thread ids in step stats).
fn thread_index() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    thread_local! {
        static INDEX: Cell<Option<u32>> = const { Cell::new(None) };
    }
    INDEX.with(|i| match i.get() {
        Some(v) => v,
        None => {
            let v = NEXT.fetch_add(1, Ordering::Relaxed);
            i.set(Some(v));
            v
        }
    })
}

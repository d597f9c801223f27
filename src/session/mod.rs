//! `Session`: runs fetches of a graph with fed values, TensorFlow 1 style. Variables live
//! here and persist across runs; plans are cached per (feeds, fetches, targets).

mod executor;
mod frames;
mod function;
#[cfg(test)]
mod fusion_tests;
mod plan;
mod pool;
mod trace;

pub use crate::kernel::resource::{Resources, Variable};
pub use trace::{NodeTiming, OpTotal, RunMetadata, RunOptions, TraceLevel};

use crate::device::cores::CoreBudget;
use crate::device::DeviceSet;
use crate::graph::{Graph, NodeId, Output};
use crate::passes::{PassCtx, StatefulKernels};
use crate::tensor::alloc::MemoryBudget;
use crate::tensor::Tensor;
use crate::{Error, Result};
use executor::Threads;
use plan::Plan;
use pool::Pool;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;
use trace::Tracer;

/// Thread and placement settings, as TensorFlow's `ConfigProto`.
#[derive(Clone, Debug)]
pub struct SessionOptions {
    /// Threads that run independent ops at once (the caller counts as one).
    pub inter_op_threads: usize,
    /// Threads one op (a matrix product, a convolution) may use internally.
    pub intra_op_threads: usize,
    /// TensorFlow's `allow_soft_placement` (on by default here, as in TensorFlow 2): a node
    /// asking for a device the session lacks, or one without a kernel for it, runs on the
    /// CPU with one warning; off, building its plan fails naming the node and the device.
    pub allow_soft_placement: bool,
    /// The most iterations one `While` loop may run in a step: more is an error naming
    /// the loop (TensorFlow has no such guard; `None`, the default, sets no bound).
    pub max_loop_iterations: Option<u64>,
    /// The most bytes the live tensors made by the session's kernels may take together
    /// (default: the machine's memory), counted as [`crate::tensor::alloc`] describes:
    /// intermediates until the executor frees them, fetched values until the caller drops
    /// them, variables' values while they hold them. A kernel asking for more than is left
    /// (a `Fill` of dims `[1 << 40]`), or whose outputs bring the total over, fails with
    /// [`Error::ResourceExhausted`] naming the node (and the dtype, shape and bytes), and
    /// the session stays usable: what that run held is given back.
    pub max_memory_bytes: usize,
}

impl Default for SessionOptions {
    fn default() -> Self {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        SessionOptions {
            inter_op_threads: cores,
            intra_op_threads: cores,
            allow_soft_placement: true,
            max_loop_iterations: None,
            max_memory_bytes: crate::tensor::alloc::physical_memory(),
        }
    }
}

impl SessionOptions {
    /// The same number of inter-op and intra-op threads.
    pub fn with_threads(threads: usize) -> Self {
        SessionOptions {
            inter_op_threads: threads.max(1),
            intra_op_threads: threads.max(1),
            ..SessionOptions::default()
        }
    }
}

type PlanKey = (Vec<Output>, Vec<Output>, Vec<NodeId>);
/// Plans by hash of their key; a hash collision keeps both entries. Looked up on every
/// `run`, so keys are hashed with foldhash rather than std's SipHash (a third of a scalar
/// op's run time went to hashing).
type PlanCache = HashMap<u64, Vec<(PlanKey, Arc<Plan>)>, foldhash::fast::FixedState>;

/// Executes a graph. Cheap to share: `run` takes `&self` and may be called from several
/// threads at once.
pub struct Session {
    /// Tells this session's callables from other sessions'.
    id: u64,
    graph: RwLock<Arc<Graph>>,
    resources: Arc<Resources>,
    plans: RwLock<PlanCache>,
    stateful_kernels: StatefulKernels,
    devices: DeviceSet,
    pool: Option<Arc<Pool>>,
    cores: Arc<CoreBudget>,
    /// What the live tensors made by this session's kernels may take together.
    memory: Arc<MemoryBudget>,
    options: SessionOptions,
}

fn plan_hash(feeds: &[Output], fetches: &[Output], targets: &[NodeId]) -> u64 {
    let mut h = foldhash::fast::FixedState::default().build_hasher();
    feeds.hash(&mut h);
    fetches.hash(&mut h);
    targets.hash(&mut h);
    h.finish()
}

impl Session {
    /// A session over a snapshot of `graph` with default options.
    pub fn new(graph: &Graph) -> Session {
        Session::with_options(graph, SessionOptions::default())
    }

    /// A session with explicit thread settings.
    pub fn with_options(graph: &Graph, options: SessionOptions) -> Session {
        crate::device::memory::keep_freed_buffers();
        let options = SessionOptions {
            inter_op_threads: options.inter_op_threads.max(1),
            intra_op_threads: options.intra_op_threads.max(1),
            ..options
        };
        let pool = (options.inter_op_threads > 1)
            .then(|| Arc::new(Pool::new(options.inter_op_threads - 1)));
        static NEXT_SESSION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Session {
            id: NEXT_SESSION.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            graph: RwLock::new(Arc::new(graph.clone())),
            resources: Arc::new(Resources::default()),
            plans: RwLock::new(PlanCache::default()),
            stateful_kernels: Mutex::new(HashMap::new()),
            devices: DeviceSet::new(),
            pool,
            cores: Arc::new(CoreBudget::new(
                options.inter_op_threads.max(options.intra_op_threads),
            )),
            memory: MemoryBudget::new(options.max_memory_bytes),
            options,
        }
    }

    /// Replaces the session's graph by a newer version of the same graph (nodes added since
    /// the session was made). Variables and stateful kernels are kept.
    pub fn extend(&self, graph: &Graph) -> Result<()> {
        let mut current = self.graph.write().map_err(|_| poisoned())?;
        if graph.id() != current.id() {
            return Err(Error::invalid(
                "Session::extend needs a newer version of the session's own graph, not another graph",
            ));
        }
        for (id, node) in current.nodes() {
            if !graph.contains(id) || graph.node(id).name() != node.name() {
                return Err(Error::invalid(format!(
                    "Session::extend needs a graph that still holds node '{}'",
                    node.name()
                )));
            }
        }
        *current = Arc::new(graph.clone());
        self.plans.write().map_err(|_| poisoned())?.clear();
        Ok(())
    }

    /// The session's graph snapshot.
    pub fn graph(&self) -> Arc<Graph> {
        self.graph
            .read()
            .map(|g| Arc::clone(&g))
            .unwrap_or_else(|p| Arc::clone(&p.into_inner()))
    }

    /// The options in effect.
    pub fn options(&self) -> &SessionOptions {
        &self.options
    }

    /// The bytes the live tensors made by this session's kernels take now (those of at
    /// least [`crate::tensor::alloc::CHARGED_BYTES`]), out of `max_memory_bytes`.
    pub fn memory_in_use(&self) -> usize {
        self.memory.in_use()
    }

    /// The session's variables.
    pub fn resources(&self) -> &Arc<Resources> {
        &self.resources
    }

    /// Runs the graph: feeds replace the given tensors, the fetched values are returned in
    /// order, and targets are run for their effects.
    pub fn run(
        &self,
        feeds: &[(Output, Tensor)],
        fetches: &[Output],
        targets: &[NodeId],
    ) -> Result<Vec<Tensor>> {
        let feed_keys: Vec<Output> = feeds.iter().map(|(o, _)| *o).collect();
        let plan = self.plan(&feed_keys, fetches, targets)?;
        self.execute(plan, feeds.iter().map(|(_, t)| t.clone()).collect(), None)
    }

    /// [`Session::run`] with options, returning what the run recorded too (TensorFlow's
    /// `session.run(..., options=, run_metadata=)`): with [`TraceLevel::FullTrace`], the
    /// timings of every node it executed.
    pub fn run_with_options(
        &self,
        feeds: &[(Output, Tensor)],
        fetches: &[Output],
        targets: &[NodeId],
        options: &RunOptions,
    ) -> Result<(Vec<Tensor>, RunMetadata)> {
        let feed_keys: Vec<Output> = feeds.iter().map(|(o, _)| *o).collect();
        let plan = self.plan(&feed_keys, fetches, targets)?;
        let feeds = feeds.iter().map(|(_, t)| t.clone()).collect();
        self.execute_with_options(plan, feeds, options)
    }

    /// [`Session::run`] with tensors and nodes named as TensorFlow names them (`x:0`, `train`).
    pub fn run_by_name(
        &self,
        feeds: &[(&str, Tensor)],
        fetches: &[&str],
        targets: &[&str],
    ) -> Result<Vec<Tensor>> {
        let graph = self.graph();
        let feeds = feeds
            .iter()
            .map(|(n, t)| Ok((graph.output_by_name(n)?, t.clone())))
            .collect::<Result<Vec<_>>>()?;
        let fetches = fetches
            .iter()
            .map(|n| graph.output_by_name(n))
            .collect::<Result<Vec<_>>>()?;
        let targets = targets
            .iter()
            .map(|n| {
                graph
                    .node_by_name(n.strip_prefix('^').unwrap_or(n))
                    .ok_or_else(|| Error::NotFound(format!("no node named '{n}' in the graph")))
            })
            .collect::<Result<Vec<_>>>()?;
        self.run(&feeds, &fetches, &targets)
    }

    /// A handle that runs one fixed signature without looking the plan up again
    /// (TensorFlow's `Session::MakeCallable`).
    pub fn make_callable(
        &self,
        feeds: &[Output],
        fetches: &[Output],
        targets: &[NodeId],
    ) -> Result<Callable> {
        Ok(Callable {
            plan: self.plan(feeds, fetches, targets)?,
            session: self.id,
        })
    }

    /// Runs a callable made by this session with feed values in its feed order.
    /// A callable of another session is an error (its plan holds that session's state).
    pub fn run_callable(&self, callable: &Callable, feeds: Vec<Tensor>) -> Result<Vec<Tensor>> {
        self.check_callable(callable)?;
        self.execute(Arc::clone(&callable.plan), feeds, None)
    }

    /// [`Session::run_callable`] with options, returning what the run recorded too (see
    /// [`Session::run_with_options`]).
    pub fn run_callable_with_options(
        &self,
        callable: &Callable,
        feeds: Vec<Tensor>,
        options: &RunOptions,
    ) -> Result<(Vec<Tensor>, RunMetadata)> {
        self.check_callable(callable)?;
        self.execute_with_options(Arc::clone(&callable.plan), feeds, options)
    }

    fn check_callable(&self, callable: &Callable) -> Result<()> {
        if callable.session != self.id {
            return Err(Error::invalid(
                "this callable was made by another session; make one with this session's \
                 make_callable",
            ));
        }
        Ok(())
    }

    fn execute_with_options(
        &self,
        plan: Arc<Plan>,
        feeds: Vec<Tensor>,
        options: &RunOptions,
    ) -> Result<(Vec<Tensor>, RunMetadata)> {
        let tracer = Arc::new(Tracer::new());
        let trace = (options.trace_level == TraceLevel::FullTrace).then_some(&tracer);
        let fetched = self.execute(plan, feeds, trace)?;
        Ok((fetched, tracer.finish()))
    }

    fn execute(
        &self,
        plan: Arc<Plan>,
        feeds: Vec<Tensor>,
        trace: Option<&Arc<Tracer>>,
    ) -> Result<Vec<Tensor>> {
        if feeds.len() != plan.feed_slots.len() {
            return Err(Error::invalid(format!(
                "{} feed values given for {} fed tensors",
                feeds.len(),
                plan.feed_slots.len()
            )));
        }
        for (t, (_, spec, name)) in feeds.iter().zip(&plan.feed_slots) {
            if t.dtype() != spec.dtype {
                return Err(Error::invalid(format!(
                    "cannot feed a {} tensor to '{name}', which has dtype {}",
                    t.dtype(),
                    spec.dtype
                )));
            }
            if !spec.shape.is_compatible_with(t.shape()) {
                return Err(Error::invalid(format!(
                    "cannot feed a value of shape {:?} to '{name}', which has shape {}",
                    t.shape(),
                    spec.shape
                )));
            }
        }
        let threads = Threads {
            budget: &self.cores,
            intra_op: self.options.intra_op_threads,
            memory: &self.memory,
            trace,
        };
        if let Some(frames) = &plan.frames {
            let max = self.options.max_loop_iterations;
            return frames::run_frames(&plan, frames, feeds, threads, max);
        }
        match &self.pool {
            Some(pool) if plan.parallel => {
                let start = Instant::now();
                let result = if plan.worth_threads() {
                    let budget = Arc::clone(&self.cores);
                    executor::run_parallel(Arc::clone(&plan), feeds, pool, budget, threads)
                } else {
                    executor::run_sequential(&plan, feeds, threads)
                };
                plan.record_run(start.elapsed());
                result
            }
            _ => executor::run_sequential(&plan, feeds, threads),
        }
    }

    fn plan(&self, feeds: &[Output], fetches: &[Output], targets: &[NodeId]) -> Result<Arc<Plan>> {
        let key_hash = plan_hash(feeds, fetches, targets);
        {
            let plans = self.plans.read().map_err(|_| poisoned())?;
            if let Some(list) = plans.get(&key_hash) {
                for ((f, o, t), plan) in list {
                    if f == feeds && o == fetches && t == targets {
                        return Ok(Arc::clone(plan));
                    }
                }
            }
        }
        let plan = Arc::new(self.plan_of(feeds, fetches, targets)?);
        let key = (feeds.to_vec(), fetches.to_vec(), targets.to_vec());
        self.plans
            .write()
            .map_err(|_| poisoned())?
            .entry(key_hash)
            .or_default()
            .push((key, Arc::clone(&plan)));
        Ok(plan)
    }

    /// Builds (without caching) the plan of one signature.
    pub(crate) fn plan_of(
        &self,
        feeds: &[Output],
        fetches: &[Output],
        targets: &[NodeId],
    ) -> Result<Plan> {
        let graph = self.graph();
        let plan = Plan::build(&PassCtx {
            graph: &graph,
            feeds,
            fetches,
            targets,
            resources: &self.resources,
            devices: &self.devices,
            stateful_kernels: &self.stateful_kernels,
            allow_soft_placement: self.options.allow_soft_placement,
            functions: &function::SessionFunctions {
                session: self,
                depth: 0,
            },
        })?;
        // Handles are session state, as in TensorFlow 2's signatures: never fed or fetched.
        for (what, list) in [("feed", feeds), ("fetch", fetches)] {
            if let Some(&o) = list
                .iter()
                .find(|&&o| graph.dtype(o) == crate::DType::Resource)
            {
                return Err(Error::invalid(format!(
                    "cannot {what} '{}': it is a resource handle, which refers to a variable \
                     of the session; {what} the variable's value (ReadVariableOp) instead",
                    graph.output_name(o)
                )));
            }
        }
        Ok(plan)
    }

    /// The session's devices: the CPU, then those of every registered device type.
    pub fn devices(&self) -> &DeviceSet {
        &self.devices
    }

    /// `t` in host memory: itself when it is there, else a copy from the session's device
    /// holding it (a variable's value on a GPU, say).
    pub fn to_host(&self, t: &Tensor) -> Result<Tensor> {
        if t.is_host() {
            return Ok(t.clone());
        }
        let device = self
            .devices
            .devices()
            .iter()
            .find(|d| d.name() == t.location())
            .ok_or_else(|| {
                Error::invalid(format!(
                    "the tensor is on {}, which is not a device of this session",
                    t.location()
                ))
            })?;
        device.copy_to_host(t)
    }
}

fn poisoned() -> Error {
    Error::FailedPrecondition("session state is poisoned by a panic in another thread".into())
}

/// A prepared signature of one session (see [`Session::make_callable`]).
pub struct Callable {
    plan: Arc<Plan>,
    session: u64,
}

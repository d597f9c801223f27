//! Kernels: the compiled, ready-to-run form of one node on one device, and the registry
//! that finds a node's kernel by (op type, device type, dtype), as TensorFlow's
//! `REGISTER_KERNEL_BUILDER(Name(op).Device(DEVICE_CPU).TypeConstraint<T>("T"))` does.
//!
//! This layer sits between the graph (what to compute) and the op families (how): it
//! defines what a kernel is given when it is built ([`KernelBuildCtx`]) and when it runs
//! ([`KernelCtx`]), and the session state kernels use ([`resource`]: variables). The op
//! families register their kernels here; the plan looks them up once, when it is built.

pub mod function;
pub mod fusion;
pub mod resource;

use crate::device::cores::Cores;
use crate::device::Device;
use crate::graph::{Attrs, AttrsExt, Graph, Node, NodeId};
use crate::tensor::{DType, Tensor};
use crate::{Error, Result};
use function::{FunctionCall, FunctionLibrary};
use resource::{Resources, Variable};
use std::collections::HashMap;
use std::sync::Arc;

/// TensorFlow's `DEVICE_CPU`: the device type of the host's kernels.
pub const DEVICE_CPU: &str = crate::device::CPU;

/// A compiled, ready-to-run kernel for one node.
pub trait Kernel: Send + Sync {
    /// Reads the inputs and pushes every output, in order.
    fn compute(&self, ctx: &mut KernelCtx<'_>) -> Result<()>;
}

impl<F> Kernel for F
where
    F: Fn(&mut KernelCtx<'_>) -> Result<()> + Send + Sync,
{
    fn compute(&self, ctx: &mut KernelCtx<'_>) -> Result<()> {
        self(ctx)
    }
}

/// What building a kernel returns: the kernel, or a message saying why the node cannot
/// run (the plan adds the node's name and op).
pub type KernelResult = std::result::Result<Box<dyn Kernel>, String>;

/// Builds a node's kernel from its attrs, once per plan (see [`KernelDef`]).
pub type KernelBuildFn = fn(&KernelBuildCtx<'_>) -> KernelResult;

/// Boxes a closure as a kernel (saves the type annotation at every op).
pub fn kernel_fn<F>(f: F) -> KernelResult
where
    F: Fn(&mut KernelCtx<'_>) -> Result<()> + Send + Sync + 'static,
{
    Ok(Box::new(f))
}

/// One registered kernel: which op it runs, on which device type, for which dtypes.
#[derive(Clone, Copy)]
pub struct KernelDef {
    /// The op type it runs (`"MatMul"`).
    pub op: &'static str,
    /// The device type it runs on ([`DEVICE_CPU`], `"GPU"`, or a test device's).
    pub device_type: &'static str,
    /// The dtypes of the node ([`node_dtype`]) it handles; empty for every dtype.
    pub dtypes: &'static [DType],
    /// Builds the kernel of one node.
    pub build: KernelBuildFn,
    /// Inputs the kernel reads in host memory although it runs on a device (TensorFlow's
    /// `HostMemory`: a reduction's axes, a reshape's shape); copies bring them to the host.
    pub host_inputs: &'static [usize],
    /// Whether its outputs are in host memory although it runs on a device (`Shape`).
    pub host_outputs: bool,
}

impl KernelDef {
    /// A kernel of `op` on `device_type` for every dtype.
    pub fn new(op: &'static str, device_type: &'static str, build: KernelBuildFn) -> KernelDef {
        KernelDef {
            op,
            device_type,
            dtypes: &[],
            build,
            host_inputs: &[],
            host_outputs: false,
        }
    }

    /// A CPU kernel of `op` for every dtype (the kernel checks the dtype itself).
    pub fn cpu(op: &'static str, build: KernelBuildFn) -> KernelDef {
        KernelDef::new(op, DEVICE_CPU, build)
    }

    /// Restricts the kernel to nodes of these dtypes (TensorFlow's `TypeConstraint`).
    pub fn type_constraint(mut self, dtypes: &'static [DType]) -> KernelDef {
        self.dtypes = dtypes;
        self
    }

    /// Marks inputs the kernel reads in host memory (TensorFlow's `HostMemory("axis")`).
    pub fn host_memory(mut self, inputs: &'static [usize]) -> KernelDef {
        self.host_inputs = inputs;
        self
    }

    /// Marks the kernel's outputs as made in host memory.
    pub fn host_outputs(mut self) -> KernelDef {
        self.host_outputs = true;
        self
    }

    fn handles(&self, dtype: Option<DType>) -> bool {
        self.dtypes.is_empty() || dtype.is_some_and(|d| self.dtypes.contains(&d))
    }
}

/// The dtype a kernel's type constraint is checked against: the node's `T` attr, else its
/// `dtype` attr, else the dtype of its first input, else of its first output.
pub fn node_dtype(graph: &Graph, node: &Node) -> Option<DType> {
    let attrs = node.attrs();
    for name in ["T", "dtype"] {
        if attrs.value(name).is_some() {
            if let Ok(dt) = attrs.dtype(name) {
                return Some(dt);
            }
        }
    }
    node.inputs()
        .first()
        .map(|&o| graph.dtype(o))
        .or_else(|| node.outputs().first().map(|s| s.dtype))
}

/// Kernels by op type, each for one device type and a set of dtypes.
#[derive(Default)]
pub struct KernelRegistry {
    kernels: HashMap<&'static str, Vec<KernelDef>>,
}

impl KernelRegistry {
    /// Registers a kernel. A later registration for the same op, device type and dtypes is
    /// found first (a device may override a kernel).
    pub fn add(&mut self, def: KernelDef) {
        self.kernels.entry(def.op).or_default().insert(0, def);
    }

    /// The kernel of `op` on `device_type` that handles `dtype`.
    pub fn find(&self, op: &str, device_type: &str, dtype: Option<DType>) -> Option<&KernelDef> {
        self.kernels
            .get(op)?
            .iter()
            .find(|k| k.device_type == device_type && k.handles(dtype))
    }

    /// The device types that have some kernel of `op`.
    pub fn device_types(&self, op: &str) -> Vec<&'static str> {
        let mut v: Vec<&'static str> = self
            .kernels
            .get(op)
            .map(|ks| ks.iter().map(|k| k.device_type).collect())
            .unwrap_or_default();
        v.sort_unstable();
        v.dedup();
        v
    }
}

/// What a kernel is built from, once per plan (or once per session for stateful ops).
pub struct KernelBuildCtx<'a> {
    /// The node.
    pub node: &'a Node,
    /// Its id.
    pub id: NodeId,
    /// The graph.
    pub graph: &'a Graph,
    /// The session's state (variables).
    pub resources: &'a Arc<Resources>,
    /// The device the kernel runs on.
    pub device: &'a Arc<dyn Device>,
    /// The session's functions, for kernels that call them (`None` where none can be
    /// called: a fusion's kernel).
    pub functions: Option<&'a dyn FunctionLibrary>,
}

impl KernelBuildCtx<'_> {
    /// The node's attrs.
    pub fn attrs(&self) -> &Attrs {
        self.node.attrs()
    }
    /// Dtype of output `i`.
    pub fn output_dtype(&self, i: usize) -> DType {
        self.node.outputs()[i].dtype
    }
    /// Dtype of input `i`.
    pub fn input_dtype(&self, i: usize) -> DType {
        self.graph.dtype(self.node.inputs()[i])
    }
    /// The function named by the node's `func` attr `attr`, compiled to call.
    pub fn function(&self, attr: &str) -> std::result::Result<Arc<dyn FunctionCall>, String> {
        let name = self.attrs().func(attr)?;
        self.call_function(name)
    }

    /// The function `name` of the graph's library, compiled to call.
    pub fn call_function(&self, name: &str) -> std::result::Result<Arc<dyn FunctionCall>, String> {
        let library = self
            .functions
            .ok_or_else(|| format!("function '{name}' cannot be called from here"))?;
        library
            .instantiate(self.graph, name)
            .map_err(|e| format!("function '{name}': {e}"))
    }

    /// The variable a reference input points at (a `VariableV2` node).
    pub fn variable(&self, input: usize) -> std::result::Result<Arc<Variable>, String> {
        let src = self.node.inputs()[input].node;
        let var = self.graph.node(src);
        if var.op_type() != "VariableV2" {
            return Err(format!(
                "input {input} must be a variable (VariableV2), but '{}' is a {}",
                var.name(),
                var.op_type()
            ));
        }
        Ok(self.resources.variable_for(var))
    }
}

/// Run-time view of one node's execution.
pub struct KernelCtx<'a> {
    inputs: &'a mut [Option<Tensor>],
    outputs: &'a mut Vec<Tensor>,
    intra_op_threads: usize,
    cores: Option<&'a Cores<'a>>,
}

impl<'a> KernelCtx<'a> {
    pub(crate) fn new(
        inputs: &'a mut [Option<Tensor>],
        outputs: &'a mut Vec<Tensor>,
        intra_op_threads: usize,
        cores: Option<&'a Cores<'a>>,
    ) -> Self {
        KernelCtx {
            inputs,
            outputs,
            intra_op_threads,
            cores,
        }
    }

    /// Number of inputs.
    pub fn num_inputs(&self) -> usize {
        self.inputs.len()
    }

    /// Input `i`.
    pub fn input(&self, i: usize) -> Result<&Tensor> {
        self.inputs
            .get(i)
            .and_then(|t| t.as_ref())
            .ok_or_else(|| Error::invalid(format!("input {i} is missing")))
    }

    /// Takes input `i` by value so its buffer can be reused when nothing else holds it.
    pub fn take_input(&mut self, i: usize) -> Result<Tensor> {
        self.inputs
            .get_mut(i)
            .and_then(|t| t.take())
            .ok_or_else(|| Error::invalid(format!("input {i} is missing")))
    }

    /// Appends the next output.
    pub fn push_output(&mut self, t: Tensor) {
        self.outputs.push(t);
    }

    /// Runs another kernel on `inputs` with this step's threads and returns its outputs: how
    /// a device's kernel delegates to another (a device whose memory the host can map runs
    /// a CPU kernel on it, say).
    pub fn compute_with(
        &self,
        kernel: &dyn Kernel,
        mut inputs: Vec<Option<Tensor>>,
    ) -> Result<Vec<Tensor>> {
        let mut outputs = Vec::new();
        let mut ctx = KernelCtx {
            inputs: &mut inputs,
            outputs: &mut outputs,
            intra_op_threads: self.intra_op_threads,
            cores: self.cores,
        };
        kernel.compute(&mut ctx)?;
        Ok(outputs)
    }

    /// Threads a kernel may use internally (matrix products, convolutions): the session's
    /// `intra_op_threads`. Call it only once the kernel knows its work is large enough to
    /// split: it waits until the session has that many cores free for this kernel, and
    /// they stay claimed until the kernel returns.
    pub fn intra_op_threads(&self) -> usize {
        match self.cores {
            Some(cores) => cores.claim(self.intra_op_threads),
            None => 1,
        }
    }

    /// [`intra_op_threads`](Self::intra_op_threads) when `work` reaches `min_work`, else 1
    /// (without claiming cores).
    pub fn threads_for_work(&self, work: usize, min_work: usize) -> usize {
        if work >= min_work {
            self.intra_op_threads()
        } else {
            1
        }
    }
}

//! Ops: the [`OpDef`] trait every TensorFlow op type implements, the contexts it works
//! in (build-time inference, plan-time kernel creation, run-time compute, gradient
//! construction), and the op families.
//!
//! Each op lives in one place: its inference, its kernel, its gradient and its builder
//! method on [`Graph`].

pub mod array;
pub mod core;
pub mod linalg;
pub mod math;
pub mod nn;
pub mod random;
pub mod reduce;
pub mod registry;

pub use registry::Registry;
pub mod state;
pub mod train;

use crate::graph::{Attrs, AttrsExt, Graph, Node, NodeId, Output, TensorSpec};
use crate::session::{Cores, Resources, Variable};
use crate::tensor::{DType, PartialShape, Tensor};
use crate::{Error, Result};
use std::sync::Arc;

/// How costly one execution of an op is; the executor runs cheap ops inline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cost {
    /// Constant time regardless of size (Const, Identity, Shape, NoOp, variable reads).
    Cheap,
    /// Linear in the data (elementwise, reductions, copies).
    Linear,
    /// A product contracting its first two inputs (MatMul, BatchMatMulV2, Conv2D): about
    /// √(|a|·|b|·|output|) multiply-adds, exact for a matrix product.
    Contraction,
    /// Superlinear work worth a thread of its own whatever the size (Svd, convolution
    /// backprops).
    Expensive,
}

/// How an op's gradient is defined.
#[derive(Clone, Copy)]
pub enum Gradient {
    /// No gradient is registered: differentiating through it is an error.
    Missing,
    /// The op is not differentiable (`tf.no_gradient`): its inputs receive no gradient.
    NotDifferentiable,
    /// The gradient function.
    Defined(GradFn),
}

/// Builds the gradients of one node's inputs from the gradients of its outputs.
pub type GradFn = fn(&mut GradCtx<'_>) -> Result<Vec<Option<Output>>>;

/// One TensorFlow op type. Implementations are registered once in [`registry`].
pub trait OpDef: Send + Sync + 'static {
    /// The TensorFlow op type (`"MatMul"`).
    fn name(&self) -> &'static str;

    /// Infers output dtypes and shapes from the inputs and attrs; an `Err` message explains
    /// what is wrong (the graph adds the node name and the input shapes).
    fn infer(&self, ctx: &InferCtx<'_>) -> std::result::Result<Vec<TensorSpec>, String>;

    /// Creates the CPU kernel for one node, resolving attrs once, when a plan is built.
    fn kernel(&self, ctx: &KernelBuildCtx<'_>) -> std::result::Result<Box<dyn Kernel>, String>;

    /// The op's gradient.
    fn gradient(&self) -> Gradient {
        Gradient::Missing
    }

    /// Stateful ops (variables, random) keep one kernel per session and are never folded.
    fn is_stateful(&self) -> bool {
        false
    }

    /// Execution cost class.
    fn cost(&self) -> Cost {
        Cost::Linear
    }

    /// Inputs that take a variable reference rather than a value (Assign's `ref`).
    fn ref_inputs(&self) -> &'static [usize] {
        &[]
    }

    /// Attrs with their TensorFlow default values (left out when exporting a GraphDef).
    fn default_attrs(&self) -> Vec<(&'static str, crate::graph::AttrValue)> {
        Vec::new()
    }
}

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

/// Boxes a closure as a kernel (saves the type annotation at every op).
pub fn kernel_fn<F>(f: F) -> std::result::Result<Box<dyn Kernel>, String>
where
    F: Fn(&mut KernelCtx<'_>) -> Result<()> + Send + Sync + 'static,
{
    Ok(Box::new(f))
}

/// What shape inference sees: the new node's inputs and attrs.
pub struct InferCtx<'a> {
    graph: &'a Graph,
    node_name: &'a str,
    inputs: &'a [Output],
    specs: &'a [TensorSpec],
    attrs: &'a Attrs,
}

impl<'a> InferCtx<'a> {
    pub(crate) fn new(
        graph: &'a Graph,
        node_name: &'a str,
        inputs: &'a [Output],
        specs: &'a [TensorSpec],
        attrs: &'a Attrs,
    ) -> Self {
        InferCtx {
            graph,
            node_name,
            inputs,
            specs,
            attrs,
        }
    }

    /// The name the node will get.
    pub fn node_name(&self) -> &str {
        self.node_name
    }
    /// The node producing input `i` (reference inputs must come from a `VariableV2`).
    pub fn input_node(&self, i: usize) -> &Node {
        self.graph.node(self.inputs[i].node)
    }
    /// Number of data inputs.
    pub fn num_inputs(&self) -> usize {
        self.specs.len()
    }
    /// Errors unless there are exactly `n` inputs.
    pub fn expect_inputs(&self, n: usize) -> std::result::Result<(), String> {
        if self.specs.len() == n {
            Ok(())
        } else {
            Err(format!("expects {n} inputs, got {}", self.specs.len()))
        }
    }
    /// Errors unless there are at least `n` inputs.
    pub fn expect_min_inputs(&self, n: usize) -> std::result::Result<(), String> {
        if self.specs.len() >= n {
            Ok(())
        } else {
            Err(format!(
                "expects at least {n} inputs, got {}",
                self.specs.len()
            ))
        }
    }
    /// Spec of input `i` (call `expect_inputs` first).
    pub fn input(&self, i: usize) -> &TensorSpec {
        &self.specs[i]
    }
    /// All input specs.
    pub fn inputs(&self) -> &[TensorSpec] {
        self.specs
    }
    /// Dtype of input `i`.
    pub fn dtype(&self, i: usize) -> DType {
        self.specs[i].dtype
    }
    /// Shape of input `i`.
    pub fn shape(&self, i: usize) -> &PartialShape {
        &self.specs[i].shape
    }
    /// The attrs.
    pub fn attrs(&self) -> &Attrs {
        self.attrs
    }
    /// The value of input `i` when it is known at build time (a Const, or the Shape of a
    /// fully known tensor).
    pub fn constant_input(&self, i: usize) -> Option<Tensor> {
        self.graph.constant_value(self.inputs[i])
    }
    /// Integer values of a build-time-constant input.
    pub fn constant_ints(&self, i: usize) -> Option<Vec<i64>> {
        self.constant_input(i)?.to_i64_vec().ok()
    }
    /// Errors unless input `i` has one of `allowed` dtypes; the message lists them.
    pub fn check_dtype(&self, i: usize, allowed: &[DType]) -> std::result::Result<DType, String> {
        let dt = self.dtype(i);
        if allowed.contains(&dt) {
            Ok(dt)
        } else {
            Err(format!(
                "input {i} has dtype {dt}, which is not allowed; allowed: {}",
                allowed
                    .iter()
                    .map(|d| d.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        }
    }
    /// Errors unless every input has the same dtype; returns it.
    pub fn same_dtype(&self) -> std::result::Result<DType, String> {
        let dt = self.dtype(0);
        for (i, s) in self.specs.iter().enumerate().skip(1) {
            if s.dtype != dt {
                return Err(format!(
                    "input {i} has dtype {} but input 0 has dtype {dt}; insert a Cast so they match",
                    s.dtype
                ));
            }
        }
        Ok(dt)
    }
    /// The optional `T` attr must agree with the inferred dtype.
    pub fn check_t_attr(&self, dt: DType) -> std::result::Result<(), String> {
        match self.attrs.value("T") {
            None => Ok(()),
            Some(_) => {
                let t = self.attrs.dtype("T")?;
                if t == dt {
                    Ok(())
                } else {
                    Err(format!("attr T is {t} but the inputs are {dt}"))
                }
            }
        }
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

/// Context for building one node's gradient.
pub struct GradCtx<'a> {
    /// The graph gradient nodes are appended to.
    pub graph: &'a mut Graph,
    /// The node being differentiated.
    pub node: NodeId,
    /// Gradient flowing into each of the node's outputs.
    pub grads: Vec<Output>,
}

impl GradCtx<'_> {
    /// Input `i` of the node being differentiated.
    pub fn input(&self, i: usize) -> Output {
        self.graph.node(self.node).inputs()[i]
    }
    /// Output `i` of the node being differentiated.
    pub fn output(&self, i: usize) -> Output {
        self.node.output(i)
    }
    /// Gradient of output `i`.
    pub fn grad(&self, i: usize) -> Output {
        self.grads[i]
    }
    /// The node's attrs.
    pub fn attrs(&self) -> Attrs {
        self.graph.node(self.node).attrs().clone()
    }
}

/// Infers output specs (see [`OpDef::infer`]).
pub type InferFn = fn(&InferCtx<'_>) -> std::result::Result<Vec<TensorSpec>, String>;
/// Builds a kernel (see [`OpDef::kernel`]).
pub type KernelBuildFn = fn(&KernelBuildCtx<'_>) -> std::result::Result<Box<dyn Kernel>, String>;

/// An [`OpDef`] assembled from plain functions: the usual way to define an op.
///
/// ```ignore
/// r.add(Op::new("Relu", infer_unary, relu_kernel).grad(relu_grad));
/// ```
#[derive(Clone, Copy)]
pub struct Op {
    name: &'static str,
    infer: InferFn,
    kernel: KernelBuildFn,
    gradient: Gradient,
    cost: Cost,
    stateful: bool,
    ref_inputs: &'static [usize],
    defaults: fn() -> Vec<(&'static str, crate::graph::AttrValue)>,
}

impl Op {
    /// An op with the given inference and kernel, no gradient, linear cost, stateless.
    pub fn new(name: &'static str, infer: InferFn, kernel: KernelBuildFn) -> Op {
        Op {
            name,
            infer,
            kernel,
            gradient: Gradient::Missing,
            cost: Cost::Linear,
            stateful: false,
            ref_inputs: &[],
            defaults: Vec::new,
        }
    }
    /// Sets the gradient function.
    pub fn grad(mut self, f: GradFn) -> Op {
        self.gradient = Gradient::Defined(f);
        self
    }
    /// Marks the op not differentiable.
    pub fn no_grad(mut self) -> Op {
        self.gradient = Gradient::NotDifferentiable;
        self
    }
    /// Sets the cost class.
    pub fn cost(mut self, cost: Cost) -> Op {
        self.cost = cost;
        self
    }
    /// Marks the op stateful.
    pub fn stateful(mut self) -> Op {
        self.stateful = true;
        self
    }
    /// Declares reference inputs.
    pub fn ref_inputs(mut self, inputs: &'static [usize]) -> Op {
        self.ref_inputs = inputs;
        self
    }
    /// Declares TensorFlow's default attr values.
    pub fn defaults(mut self, f: fn() -> Vec<(&'static str, crate::graph::AttrValue)>) -> Op {
        self.defaults = f;
        self
    }
}

impl OpDef for Op {
    fn name(&self) -> &'static str {
        self.name
    }
    fn infer(&self, ctx: &InferCtx<'_>) -> std::result::Result<Vec<TensorSpec>, String> {
        (self.infer)(ctx)
    }
    fn kernel(&self, ctx: &KernelBuildCtx<'_>) -> std::result::Result<Box<dyn Kernel>, String> {
        (self.kernel)(ctx)
    }
    fn gradient(&self) -> Gradient {
        self.gradient
    }
    fn is_stateful(&self) -> bool {
        self.stateful
    }
    fn cost(&self) -> Cost {
        self.cost
    }
    fn ref_inputs(&self) -> &'static [usize] {
        self.ref_inputs
    }
    fn default_attrs(&self) -> Vec<(&'static str, crate::graph::AttrValue)> {
        (self.defaults)()
    }
}

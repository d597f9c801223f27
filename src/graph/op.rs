//! What the graph knows of an op type: the [`OpDef`] trait (signature checks and shape
//! inference, gradient, statefulness, cost class, TensorFlow's default attrs), the contexts
//! inference and gradients work in, and the [`OpRegistry`] a graph looks op types up in.
//!
//! The graph owns these definitions but not their implementations: the op families in
//! `crate::ops` implement [`OpDef`] and fill an [`OpRegistry`], which a graph is given
//! when it is made (dependency inversion: the graph never imports the ops). Kernels are
//! not part of an op's definition here; they are registered per device in
//! `crate::kernel`.

use super::{Attrs, AttrsExt, Graph, Node, NodeId, Output, TensorSpec};
use crate::tensor::{DType, PartialShape, Tensor};
use crate::{Error, Result};
use std::collections::HashMap;

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

/// What shape inference returns: the output specs, or a message saying what is wrong
/// (the graph adds the node's name, op and input specs).
pub type InferResult = std::result::Result<Vec<TensorSpec>, String>;

/// Infers output specs (see [`OpDef::infer`]).
pub type InferFn = fn(&InferCtx<'_>) -> InferResult;

/// One TensorFlow op type, as the graph sees it. Implementations are registered once in
/// an [`OpRegistry`].
pub trait OpDef: Send + Sync + 'static {
    /// The TensorFlow op type (`"MatMul"`).
    fn name(&self) -> &'static str;

    /// Infers output dtypes and shapes from the inputs and attrs; an `Err` message explains
    /// what is wrong (the graph adds the node name and the input shapes).
    fn infer(&self, ctx: &InferCtx<'_>) -> InferResult;

    /// The op type whose kernels run this op: its own name, except for an alias (TF1's
    /// `Add`, run as `AddV2`).
    fn kernel_op(&self) -> &'static str {
        self.name()
    }

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
    fn default_attrs(&self) -> Vec<(&'static str, super::AttrValue)> {
        Vec::new()
    }
}

/// Op definitions by TensorFlow op type name. A [`Graph`] is made with one (the standard
/// one holds every op of `crate::ops`) and looks each new node's op type up in it.
#[derive(Default)]
pub struct OpRegistry {
    ops: HashMap<&'static str, &'static dyn OpDef>,
}

impl OpRegistry {
    /// Registers an op (each op type once); the definition lives for the program.
    pub fn add(&mut self, op: impl OpDef) {
        let op: &'static dyn OpDef = Box::leak(Box::new(op));
        let previous = self.ops.insert(op.name(), op);
        assert!(previous.is_none(), "op {} registered twice", op.name());
    }

    /// The op registered under a TensorFlow op type name.
    pub fn lookup(&self, op_type: &str) -> Result<&'static dyn OpDef> {
        self.ops
            .get(op_type)
            .copied()
            .ok_or_else(|| Error::NotFound(format!("Op type not registered '{op_type}'")))
    }

    /// Every registered op, sorted by name.
    pub fn all(&self) -> Vec<&'static dyn OpDef> {
        let mut v: Vec<_> = self.ops.values().copied().collect();
        v.sort_by_key(|o| o.name());
        v
    }
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

/// The gradient pass, lent to gradient functions that differentiate function bodies
/// (`If`, `While`): appends to `graph` the gradients of `ys` (weighted by `grad_ys`) with
/// respect to each of `xs`, `None` where no path connects them.
pub type GradientsFn = fn(
    graph: &mut Graph,
    ys: &[Output],
    xs: &[Output],
    grad_ys: &[Output],
) -> Result<Vec<Option<Output>>>;

/// Context for building one node's gradient.
pub struct GradCtx<'a> {
    /// The graph gradient nodes are appended to.
    pub graph: &'a mut Graph,
    /// The node being differentiated.
    pub node: NodeId,
    /// Gradient flowing into each of the node's outputs.
    pub grads: Vec<Output>,
    /// The gradient pass itself, for the bodies of control-flow ops.
    pub gradients: GradientsFn,
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

//! The op families: each TensorFlow op type's definition (signature and attrs, shape
//! inference, gradient, builder method on [`Graph`], tests) in one place, with its CPU
//! kernel beside it, and the registries that hold them.
//!
//! An op is registered with [`Registry::add`]: its definition goes to the graph's
//! [`OpRegistry`](crate::graph::OpRegistry), its CPU kernel to the
//! [`KernelRegistry`](crate::kernel::KernelRegistry) under (op, `CPU`, dtypes). Another
//! device adds its kernels beside the op with [`Registry::kernel`] (or, from outside the
//! crate, [`register_kernel`]).
//!
//! Families: `plumbing` (Const, Placeholder, Identity, NoOp, ...), `math` (elementwise),
//! `reduce`, `array`, `control_flow` (While, If, Case), `list` (TensorList*), `linalg` (MatMul, BatchMatMulV2, Svd), `nn`, `random`, `state`
//! (variables), `resource` (TensorFlow 2 resource variables), `summary` (ScalarSummary,
//! HistogramSummary, MergeSummary), `parsing` (ParseExample) and `training` (the
//! optimizers' in-place updates).

pub mod array;
pub(crate) mod control_flow;
#[cfg(feature = "cuda")]
mod cuda;
pub mod linalg;
pub mod list;
pub mod math;
pub mod nn;
pub mod parsing;
pub mod plumbing;
pub mod random;
pub mod reduce;
pub mod registry;
mod resource;
pub mod state;
pub mod summary;
pub mod training;

pub use crate::graph::{Cost, GradCtx, GradFn, Gradient, InferCtx, InferFn, InferResult, OpDef};
pub use crate::kernel::{
    kernel_fn, Kernel, KernelBuildCtx, KernelBuildFn, KernelCtx, KernelDef, KernelResult,
};
pub use registry::{register_kernel, Registry};

use crate::graph::{AttrValue, Graph};
use crate::kernel::fusion::FusionRule;

/// Every plan-time fusion rule, each declared beside the fused kernel it makes: the table
/// the fusion pass (`passes::Fuse`) tries at each node, in this order.
pub fn fusion_rules() -> &'static [&'static [FusionRule]] {
    &[
        linalg::matmul::fusion::FUSION_RULES,
        math::fusion::FUSION_RULES,
        nn::conv2d::fusion::FUSION_RULES,
        nn::pool::fusion::FUSION_RULES,
        training::FUSION_RULES,
    ]
}

impl Graph {
    /// An empty graph whose nodes may use every op type of this crate (the standard
    /// [`OpRegistry`](crate::graph::OpRegistry)).
    pub fn new() -> Self {
        Graph::with_ops(registry::op_registry())
    }
}

impl Default for Graph {
    fn default() -> Self {
        Graph::new()
    }
}

/// An op assembled from plain functions: the usual way to define an op. Registering it
/// ([`Registry::add`]) registers its definition and its CPU kernel.
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
    defaults: fn() -> Vec<(&'static str, AttrValue)>,
}

impl Op {
    /// An op with the given inference and CPU kernel, no gradient, linear cost, stateless.
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
    pub fn defaults(mut self, f: fn() -> Vec<(&'static str, AttrValue)>) -> Op {
        self.defaults = f;
        self
    }
    /// The CPU kernel's builder.
    pub fn cpu_kernel(&self) -> KernelBuildFn {
        self.kernel
    }
}

impl OpDef for Op {
    fn name(&self) -> &'static str {
        self.name
    }
    fn infer(&self, ctx: &InferCtx<'_>) -> InferResult {
        (self.infer)(ctx)
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
    fn default_attrs(&self) -> Vec<(&'static str, AttrValue)> {
        (self.defaults)()
    }
}

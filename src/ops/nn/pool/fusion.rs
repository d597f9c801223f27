//! Plan-time fusion rules that end in a fused MaxPoolGrad kernel (`mod.rs`):
//!
//! - `ReluGrad(MaxPoolGrad(x, y, dy), features)` (or `Relu6Grad`) becomes one step that
//!   passes each image's input gradient through the activation's gradient as soon as it
//!   is complete (backpropagation through a convolutional layer's ReLU and pooling),
//!   sparing a pass over the activations.

use super::fused_max_pool_grad_kernel;
use crate::graph::NodeId;
use crate::kernel::fusion::{Fusion, FusionRule, FusionSite};
use std::sync::Arc;

/// Op name of the fused MaxPoolGrad + ReluGrad (or Relu6Grad) step.
pub(crate) const FUSED_MAX_POOL_GRAD: &str = "_FusedMaxPoolGradActivationGrad";

/// The gradient of the activation a fused MaxPoolGrad applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ActivationGrad {
    /// ReluGrad.
    Relu,
    /// Relu6Grad.
    Relu6,
}

/// The rules, in the order they are tried.
pub(crate) const FUSION_RULES: &[FusionRule] = &[FusionRule {
    root: &["ReluGrad", "Relu6Grad"],
    op: FUSED_MAX_POOL_GRAD,
    fuse: fuse_pool_activation_grad,
}];

fn fuse_pool_activation_grad(site: &dyn FusionSite, n: NodeId) -> Result<Option<Fusion>, String> {
    let graph = site.graph();
    let node = graph.node(n);
    let (gradients, features) = (node.inputs()[0], node.inputs()[1]);
    let Some(pool) = site.sole_source(gradients, "MaxPoolGrad", n) else {
        return Ok(None);
    };
    let activation_grad = if node.op_type() == "ReluGrad" {
        ActivationGrad::Relu
    } else {
        ActivationGrad::Relu6
    };
    let kernel = fused_max_pool_grad_kernel(pool, graph.dtype(gradients), activation_grad)?;
    let [x, y, dy] = [0, 1, 2].map(|i| Some(pool.inputs()[i]));
    Ok(Some(Fusion {
        absorbed: vec![gradients.node],
        inputs: vec![x, y, dy, Some(features)],
        operands: [0, 2],
        op: FUSED_MAX_POOL_GRAD,
        kernel: Arc::from(kernel),
    }))
}

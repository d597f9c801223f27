//! Plan-time fusion rules that end in a fused MaxPoolGrad kernel (`mod.rs`):
//!
//! - `ReluGrad(MaxPoolGrad(x, y, dy), features)` (or `Relu6Grad`) becomes one step that
//!   passes each image's input gradient through the activation's gradient as soon as it
//!   is complete (backpropagation through a convolutional layer's ReLU and pooling),
//!   sparing a pass over the activations.
//! - When a `BiasAddGrad` (NHWC) reads that input gradient, the same step also gives the
//!   bias gradient as its second output, summed as each image's gradient is complete
//!   (while in cache), sparing another pass. TensorFlow has no such fusion.

use super::fused_max_pool_grad_kernel;
use crate::graph::NodeId;
use crate::kernel::fusion::{Fusion, FusionRule, FusionSite};
use crate::ops::linalg::matmul::fusion::activation_grad_of;
use crate::ops::nn::window::DataFormat;
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
    let Some(grad) = activation_grad_of(site, n, "MaxPoolGrad") else {
        return Ok(None);
    };
    let activation_grad = if grad.relu6 {
        ActivationGrad::Relu6
    } else {
        ActivationGrad::Relu
    };
    let (pool, gradients, features) = (grad.source, grad.gradients, grad.features);
    // The layer's bias gradient, when it is NHWC (channels last, as the pooling's).
    let bias_grad = site
        .absorbable_reader(n.output(0), "BiasAddGrad", n)
        .filter(|&b| DataFormat::from_attrs(site.graph().node(b).attrs()) == Ok(DataFormat::Nhwc));
    let kernel =
        fused_max_pool_grad_kernel(pool, grad.dtype, activation_grad, bias_grad.is_some())?;
    let [x, y, dy] = [0, 1, 2].map(|i| Some(pool.inputs()[i]));
    Ok(Some(Fusion {
        absorbed: [gradients.node].into_iter().chain(bias_grad).collect(),
        also_produces: bias_grad.map(|b| b.output(0)).into_iter().collect(),
        inputs: vec![x, y, dy, Some(features)],
        operands: [0, 2],
        op: FUSED_MAX_POOL_GRAD,
        kernel: Arc::from(kernel),
    }))
}

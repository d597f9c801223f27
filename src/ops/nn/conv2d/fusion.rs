//! Plan-time fusion rules that end in a fused Conv2D kernel (`cpu.rs`), as TensorFlow's
//! Grappler remapper makes them (see `ops::linalg::matmul::fusion` for the dense ones).
//!
//! - `BiasAdd(Conv2D(input, filter), bias)`, optionally under `Relu` or `Relu6`, becomes
//!   one `_FusedConv2D` step: each block of output pixels gets its bias and activation
//!   right after the product writes it, while still in cache (a convolutional layer's
//!   forward pass), sparing two passes over the activations.

use super::cpu::fused_conv2d_kernel;
use crate::graph::NodeId;
use crate::kernel::fusion::{Fusion, FusionRule, FusionSite};
use crate::ops::linalg::matmul::fusion::bias_activation;
use std::sync::Arc;

/// Op name of the fused Conv2D + BiasAdd (+ Relu or Relu6) step, TensorFlow's name for it.
pub(crate) const FUSED_CONV2D: &str = "_FusedConv2D";

/// The rules, in the order they are tried.
pub(crate) const FUSION_RULES: &[FusionRule] = &[FusionRule {
    root: &["Relu", "Relu6", "BiasAdd"],
    op: FUSED_CONV2D,
    fuse: fuse_conv_layer,
}];

fn fuse_conv_layer(site: &dyn FusionSite, n: NodeId) -> Result<Option<Fusion>, String> {
    let Some(layer) = bias_activation(site, n, "Conv2D") else {
        return Ok(None);
    };
    let kernel = fused_conv2d_kernel(layer.product, layer.dtype, layer.activation)?;
    let (input, filter) = (layer.product.inputs()[0], layer.product.inputs()[1]);
    Ok(Some(Fusion {
        absorbed: layer.absorbed,
        also_produces: Vec::new(),
        inputs: vec![Some(input), Some(filter), Some(layer.bias)],
        operands: [0, 1],
        op: FUSED_CONV2D,
        kernel: Arc::from(kernel),
    }))
}

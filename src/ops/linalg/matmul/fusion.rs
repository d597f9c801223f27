//! Plan-time fusion rules that end in a fused MatMul kernel (`cpu.rs`), as TensorFlow's
//! Grappler remapper makes them. A node is absorbed only when the plan reads its output
//! nowhere else (see [`FusionSite::sole_source`]).
//!
//! - `BiasAdd(MatMul(a, b), bias)`, optionally under `Relu` or `Relu6`, becomes one product
//!   whose rows get their bias and activation while still in cache (a dense layer's
//!   forward pass), sparing two passes over the activations.
//! - `ReluGrad(MatMul(a, b), features)` (or `Relu6Grad`) becomes one product whose rows are
//!   masked by the features as they are written (backpropagation into a Relu layer).

use super::cpu::{fused_matmul_kernel, Activation, Epilogue};
use crate::graph::{Node, NodeId, Output};
use crate::kernel::fusion::{Fusion, FusionRule, FusionSite};
use crate::tensor::DType;
use std::sync::Arc;

/// Op name of the fused MatMul + BiasAdd (+ Relu or Relu6) step, TensorFlow's name for it.
pub(crate) const FUSED_MATMUL: &str = "_FusedMatMul";

/// Op name of the fused MatMul + ReluGrad (or Relu6Grad) step.
pub(crate) const FUSED_MATMUL_ACTIVATION_GRAD: &str = "_FusedMatMulActivationGrad";

/// The rules, in the order they are tried.
pub(crate) const FUSION_RULES: &[FusionRule] = &[
    FusionRule {
        root: &["Relu", "Relu6", "BiasAdd"],
        op: FUSED_MATMUL,
        fuse: fuse_dense_layer,
    },
    FusionRule {
        root: &["ReluGrad", "Relu6Grad"],
        op: FUSED_MATMUL_ACTIVATION_GRAD,
        fuse: fuse_activation_grad,
    },
];

/// A matched `BiasAdd(product, bias)` (optionally under `Relu` or `Relu6`) whose product
/// and BiasAdd only the pattern reads.
pub(crate) struct BiasActivation<'a> {
    /// The product node (MatMul, Conv2D).
    pub product: &'a Node,
    /// The bias input of the BiasAdd.
    pub bias: Output,
    /// The activation over the sum.
    pub activation: Activation,
    /// The element type of the product.
    pub dtype: DType,
    /// The nodes the fused step absorbs: the product, and the BiasAdd when the pattern
    /// ends in an activation.
    pub absorbed: Vec<NodeId>,
}

/// Matches `BiasAdd(product, bias)` or `Relu(BiasAdd(...))` / `Relu6(BiasAdd(...))` at
/// node `n` with a product of op type `product_op` (the dense and convolutional layers'
/// forward pass).
pub(crate) fn bias_activation<'a>(
    site: &'a dyn FusionSite,
    n: NodeId,
    product_op: &str,
) -> Option<BiasActivation<'a>> {
    let graph = site.graph();
    let node = graph.node(n);
    let (bias_add, activation) = match node.op_type() {
        "BiasAdd" => (n, Activation::Linear),
        op => {
            site.sole_source(node.inputs()[0], "BiasAdd", n)?;
            let activation = if op == "Relu" {
                Activation::Relu
            } else {
                Activation::Relu6
            };
            (node.inputs()[0].node, activation)
        }
    };
    let bias_add_node = graph.node(bias_add);
    let product = site.sole_source(bias_add_node.inputs()[0], product_op, n)?;
    let mut absorbed = vec![bias_add_node.inputs()[0].node];
    if bias_add != n {
        absorbed.push(bias_add);
    }
    Some(BiasActivation {
        product,
        bias: bias_add_node.inputs()[1],
        activation,
        dtype: graph.dtype(bias_add_node.inputs()[0]),
        absorbed,
    })
}

fn fuse_dense_layer(site: &dyn FusionSite, n: NodeId) -> Result<Option<Fusion>, String> {
    let Some(layer) = bias_activation(site, n, "MatMul") else {
        return Ok(None);
    };
    let kernel = fused_matmul_kernel(
        layer.product,
        layer.dtype,
        Epilogue::BiasAdd(layer.activation),
    )?;
    let (a, b) = (layer.product.inputs()[0], layer.product.inputs()[1]);
    Ok(Some(Fusion {
        absorbed: layer.absorbed,
        also_produces: Vec::new(),
        inputs: vec![Some(a), Some(b), Some(layer.bias)],
        operands: [0, 1],
        op: FUSED_MATMUL,
        kernel: Arc::from(kernel),
    }))
}

/// A matched `ReluGrad(gradients, features)` or `Relu6Grad(...)` whose gradients only the
/// pattern reads.
pub(crate) struct ActivationGradOf<'a> {
    /// The node producing the gradients.
    pub source: &'a Node,
    /// The gradients input.
    pub gradients: Output,
    /// The features input.
    pub features: Output,
    /// Whether the op is Relu6Grad (else ReluGrad).
    pub relu6: bool,
    /// The element type of the gradients.
    pub dtype: DType,
}

/// Matches `ReluGrad` / `Relu6Grad` at node `n` with gradients from a node of op type
/// `source_op` (backpropagation into a Relu layer through a product or a pooling).
pub(crate) fn activation_grad_of<'a>(
    site: &'a dyn FusionSite,
    n: NodeId,
    source_op: &str,
) -> Option<ActivationGradOf<'a>> {
    let graph = site.graph();
    let node = graph.node(n);
    let (gradients, features) = (node.inputs()[0], node.inputs()[1]);
    let source = site.sole_source(gradients, source_op, n)?;
    Some(ActivationGradOf {
        source,
        gradients,
        features,
        relu6: node.op_type() == "Relu6Grad",
        dtype: graph.dtype(gradients),
    })
}

fn fuse_activation_grad(site: &dyn FusionSite, n: NodeId) -> Result<Option<Fusion>, String> {
    let Some(grad) = activation_grad_of(site, n, "MatMul") else {
        return Ok(None);
    };
    let epilogue = if grad.relu6 {
        Epilogue::Relu6Grad
    } else {
        Epilogue::ReluGrad
    };
    let (product, gradients, features) = (grad.source, grad.gradients, grad.features);
    let kernel = fused_matmul_kernel(product, grad.dtype, epilogue)?;
    let (a, b) = (product.inputs()[0], product.inputs()[1]);
    Ok(Some(Fusion {
        absorbed: vec![gradients.node],
        also_produces: Vec::new(),
        inputs: vec![Some(a), Some(b), Some(features)],
        operands: [0, 1],
        op: FUSED_MATMUL_ACTIVATION_GRAD,
        kernel: Arc::from(kernel),
    }))
}

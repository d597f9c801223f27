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
use crate::graph::NodeId;
use crate::kernel::fusion::{Fusion, FusionRule, FusionSite};
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

fn fuse_dense_layer(site: &dyn FusionSite, n: NodeId) -> Result<Option<Fusion>, String> {
    let graph = site.graph();
    let node = graph.node(n);
    let (bias_add, activation) = match node.op_type() {
        "BiasAdd" => (n, Activation::Linear),
        op => match site.sole_source(node.inputs()[0], "BiasAdd", n) {
            Some(_) if op == "Relu" => (node.inputs()[0].node, Activation::Relu),
            Some(_) => (node.inputs()[0].node, Activation::Relu6),
            None => return Ok(None),
        },
    };
    let bias_add_node = graph.node(bias_add);
    let Some(product) = site.sole_source(bias_add_node.inputs()[0], "MatMul", n) else {
        return Ok(None);
    };
    let dtype = graph.dtype(bias_add_node.inputs()[0]);
    let kernel = fused_matmul_kernel(product, dtype, Epilogue::BiasAdd(activation))?;
    let (a, b) = (product.inputs()[0], product.inputs()[1]);
    let bias = bias_add_node.inputs()[1];
    let mut absorbed = vec![bias_add_node.inputs()[0].node];
    if bias_add != n {
        absorbed.push(bias_add);
    }
    Ok(Some(Fusion {
        absorbed,
        inputs: vec![Some(a), Some(b), Some(bias)],
        operands: [0, 1],
        op: FUSED_MATMUL,
        kernel: Arc::from(kernel),
    }))
}

fn fuse_activation_grad(site: &dyn FusionSite, n: NodeId) -> Result<Option<Fusion>, String> {
    let graph = site.graph();
    let node = graph.node(n);
    let (gradients, features) = (node.inputs()[0], node.inputs()[1]);
    let Some(product) = site.sole_source(gradients, "MatMul", n) else {
        return Ok(None);
    };
    let epilogue = if node.op_type() == "ReluGrad" {
        Epilogue::ReluGrad
    } else {
        Epilogue::Relu6Grad
    };
    let kernel = fused_matmul_kernel(product, graph.dtype(gradients), epilogue)?;
    let (a, b) = (product.inputs()[0], product.inputs()[1]);
    Ok(Some(Fusion {
        absorbed: vec![gradients.node],
        inputs: vec![Some(a), Some(b), Some(features)],
        operands: [0, 1],
        op: FUSED_MATMUL_ACTIVATION_GRAD,
        kernel: Arc::from(kernel),
    }))
}

//! Neural-network ops, named and attributed as in TensorFlow: BiasAdd, Softmax,
//! LogSoftmax, the softmax cross-entropy losses, Conv2D, MaxPool, AvgPool, and the
//! gradient kernels TensorFlow graphs use for them (BiasAddGrad, Conv2DBackpropInput,
//! Conv2DBackpropFilter, MaxPoolGrad, MaxPoolGradGrad, AvgPoolGrad), each with
//! TensorFlow's symbolic gradient (`nn_grad.py`), built from graph ops so it can be
//! differentiated again; DepthwiseConv2dNative with its two backprops; FusedBatchNorm
//! (V2/V3), whose gradient is FusedBatchNormGrad(V2/V3) (not differentiable again); and,
//! forward only so far (differentiating through them is an error), ResizeBilinear and
//! ResizeNearestNeighbor.

mod batch_norm;
mod bias;
pub(crate) mod conv2d;
mod depthwise;
pub(crate) mod pool;
mod resize;
mod softmax;
pub(crate) mod window;

use super::{GradCtx, Registry};
use crate::graph::{Attrs, Graph, Output};
use crate::Result;

pub(crate) fn register(r: &mut Registry) {
    bias::register(r);
    batch_norm::register(r);
    batch_norm::grad::register(r);
    softmax::register(r);
    conv2d::register(r);
    depthwise::register(r);
    pool::register(r);
    resize::register(r);
}

/// Adds an `op` node on `inputs` with the attrs named in `names` copied from `attrs` (those
/// present), the way TensorFlow's gradient functions pass `op.get_attr(..)` through.
pub(crate) fn op_with_attrs(
    g: &mut Graph,
    op: &str,
    inputs: &[Output],
    attrs: &Attrs,
    names: &[&str],
) -> Result<Output> {
    let mut b = g.op(op).inputs(inputs);
    for &name in names {
        if let Some(v) = attrs.get(name) {
            b = b.attr(name, v.clone());
        }
    }
    b.build_output()
}

/// Whether the gradient of output `i` is the zeros the gradient pass filled in for an
/// output nothing used (TensorFlow's `_is_zeros_tensor`): a ZerosLike of that output
/// created in this gradient's own name scope.
pub(crate) fn grad_is_filled_zeros(ctx: &mut GradCtx<'_>, i: usize) -> bool {
    let scopes = ctx.graph.take_name_scopes();
    let prefix = scopes.last().map(|s| format!("{s}/"));
    ctx.graph.restore_name_scopes(scopes);
    let node = ctx.graph.node(ctx.grad(i).node);
    node.op_type() == "ZerosLike"
        && node.inputs() == [ctx.output(i)]
        && prefix.is_some_and(|p| node.name().starts_with(&p))
}

/// Gradient checks of this family's differentiable ops (run by `autodiff::tests`).
#[cfg(test)]
pub(crate) fn gradient_cases() -> Vec<crate::test_util::GradCase> {
    use crate::test_util::{test_input, GradCase};
    use crate::{DType, Tensor};
    /// The NCHW variant of a bias op on `inputs`.
    fn nchw(g: &mut Graph, op: &str, inputs: &[Output]) -> Result<Output> {
        g.op(op)
            .inputs(inputs)
            .attr("T", DType::Float64)
            .attr("data_format", "NCHW")
            .build_output()
    }
    /// Stride 2 in both spatial dims.
    const S2: [i64; 4] = [1, 2, 2, 1];
    let mut cases = conv2d::gradient_cases();
    cases.extend(depthwise::gradient_cases());
    cases.extend(batch_norm::grad::gradient_cases());
    cases.extend(vec![
        GradCase::new(
            "BiasAdd",
            vec![test_input(&[2, 3], 1), test_input(&[3], 2)],
            |g, x| g.bias_add(x[0], x[1]),
        ),
        GradCase::new(
            "BiasAdd",
            vec![test_input(&[2, 2, 2, 3], 3), test_input(&[3], 4)],
            |g, x| g.bias_add(x[0], x[1]),
        ),
        GradCase::new(
            "BiasAdd",
            vec![test_input(&[2, 3, 2], 5), test_input(&[3], 6)],
            |g, x| nchw(g, "BiasAdd", x),
        ),
        GradCase::new("BiasAddGrad", vec![test_input(&[2, 3], 7)], |g, x| {
            g.bias_add_grad(x[0])
        }),
        GradCase::new("BiasAddGrad", vec![test_input(&[2, 2, 2, 3], 8)], |g, x| {
            g.bias_add_grad(x[0])
        }),
        GradCase::new("BiasAddGrad", vec![test_input(&[2, 3, 2, 2], 9)], |g, x| {
            nchw(g, "BiasAddGrad", x)
        }),
        GradCase::new("Softmax", vec![test_input(&[2, 4], 10)], |g, x| {
            g.softmax(x[0])
        }),
        GradCase::new("Softmax", vec![test_input(&[2, 2, 3], 11)], |g, x| {
            g.softmax(x[0])
        }),
        GradCase::new("LogSoftmax", vec![test_input(&[2, 4], 12)], |g, x| {
            g.log_softmax(x[0])
        }),
        GradCase::new("LogSoftmax", vec![test_input(&[2, 2, 3], 13)], |g, x| {
            g.log_softmax(x[0])
        }),
        // The loss with respect to logits and (float) labels; the labels are
        // distributions (rows summing to 1), which the logits gradient assumes.
        GradCase::new(
            "SoftmaxCrossEntropyWithLogits",
            vec![
                test_input(&[3, 4], 14),
                Tensor::from([
                    [0.1f64, 0.2, 0.3, 0.4],
                    [0.7, 0.1, 0.15, 0.05],
                    [0.25, 0.25, 0.25, 0.25],
                ]),
            ],
            |g, x| Ok(g.softmax_cross_entropy_with_logits(x[0], x[1])?.0),
        ),
        // The backprop output: the second-order term (labels are constants here, since
        // TensorFlow's labels gradient ignores the backprop output's gradient).
        GradCase::new(
            "SoftmaxCrossEntropyWithLogits",
            vec![test_input(&[3, 4], 16)],
            |g, x| {
                let labels = g.constant(Tensor::from([
                    [0.1f64, 0.2, 0.3, 0.4],
                    [1.0, 0.0, 0.0, 0.0],
                    [0.25, 0.25, 0.25, 0.25],
                ]))?;
                Ok(g.softmax_cross_entropy_with_logits(x[0], labels)?.1)
            },
        ),
        GradCase::new(
            "SparseSoftmaxCrossEntropyWithLogits",
            vec![test_input(&[3, 4], 17)],
            |g, x| {
                let labels = g.constant(Tensor::from([2i32, 0, 3]))?;
                Ok(g.sparse_softmax_cross_entropy_with_logits(x[0], labels)?.0)
            },
        ),
        GradCase::new(
            "SparseSoftmaxCrossEntropyWithLogits",
            vec![test_input(&[3, 4], 18)],
            |g, x| {
                let labels = g.constant(Tensor::from([1i64, 3, 0]))?;
                Ok(g.sparse_softmax_cross_entropy_with_logits(x[0], labels)?.1)
            },
        ),
        // Overlapping 3×3 windows at stride 2 (the inputs have no ties).
        GradCase::new("MaxPool", vec![test_input(&[2, 5, 5, 2], 33)], |g, x| {
            g.max_pool(x[0], &[1, 3, 3, 1], &S2, "SAME")
        }),
        GradCase::new("MaxPool", vec![test_input(&[1, 4, 5, 2], 34)], |g, x| {
            g.max_pool(x[0], &[1, 2, 3, 1], &[1, 1, 2, 1], "VALID")
        }),
        // Gradients reach orig_input and orig_output as zeros, and grad linearly.
        GradCase::new(
            "MaxPoolGrad",
            vec![
                test_input(&[1, 5, 5, 2], 35),
                test_input(&[1, 3, 3, 2], 36),
                test_input(&[1, 3, 3, 2], 37),
            ],
            |g, x| g.max_pool_grad(x[0], x[1], x[2], &[1, 3, 3, 1], &S2, "SAME"),
        ),
        GradCase::new(
            "MaxPoolGradGrad",
            vec![
                test_input(&[1, 5, 5, 2], 38),
                test_input(&[1, 3, 3, 2], 39),
                test_input(&[1, 5, 5, 2], 40),
            ],
            |g, x| g.max_pool_grad_grad(x[0], x[1], x[2], &[1, 3, 3, 1], &S2, "SAME"),
        ),
        GradCase::new("AvgPool", vec![test_input(&[2, 5, 5, 2], 41)], |g, x| {
            g.avg_pool(x[0], &[1, 3, 3, 1], &S2, "SAME")
        }),
        GradCase::new("AvgPool", vec![test_input(&[1, 4, 5, 2], 42)], |g, x| {
            g.avg_pool(x[0], &[1, 2, 3, 1], &[1, 1, 2, 1], "VALID")
        }),
        GradCase::new(
            "AvgPoolGrad",
            vec![test_input(&[1, 3, 3, 2], 43)],
            |g, x| {
                let shape = g.constant(Tensor::from([1i32, 5, 5, 2]))?;
                g.avg_pool_grad(shape, x[0], &[1, 3, 3, 1], &S2, "SAME")
            },
        ),
    ]);
    cases
}

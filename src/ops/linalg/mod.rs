//! Linear algebra: MatMul, BatchMatMulV2, Svd, MatrixBandPart, Einsum (forward only), with TensorFlow's gradients (`math_grad.py`,
//! `linalg_grad.py`). One module per op; MatMul, the heaviest, has a folder with its CPU
//! kernels (the plain product and the fused products the plan's fusion rules make).

mod band_part;
mod batch_matmul;
mod einsum;
pub(crate) mod matmul;
mod svd;
#[cfg(test)]
mod tests;

use crate::graph::{Graph, Output};
use crate::ops::Registry;
use crate::tensor::{DType, Dim, PartialShape};
use crate::Result;

pub(crate) use matmul::matmul_dims;

const MATMUL_TYPES: &[DType] = &[
    DType::Float32,
    DType::Float64,
    DType::Int32,
    DType::Int64,
    DType::UInt8,
];

/// `tf.matmul` as TensorFlow's Python wrapper builds it: MatMul when both operands are
/// known to be matrices, else BatchMatMulV2 with `adjoint` flags; `grad` sets its
/// `grad_x`/`grad_y` hints (products made by a gradient).
fn matmul_any(
    g: &mut Graph,
    a: Output,
    b: Output,
    adjoint: [bool; 2],
    grad: [bool; 2],
) -> Result<Output> {
    if g.shape(a).rank() == Some(2) && g.shape(b).rank() == Some(2) {
        return g.matmul_t(a, b, adjoint[0], adjoint[1]);
    }
    let t = g.dtype(a);
    g.op("BatchMatMulV2")
        .input(a)
        .input(b)
        .attr("T", t)
        .attr("adj_x", adjoint[0])
        .attr("adj_y", adjoint[1])
        .attr("grad_x", grad[0])
        .attr("grad_y", grad[1])
        .build_output()
}

/// Splits a partial shape of rank >= 2 into its batch dims and its two matrix dims.
fn split_matrix_dims(
    shape: &PartialShape,
    i: usize,
) -> std::result::Result<Option<(PartialShape, Dim, Dim)>, String> {
    let Some(dims) = shape.dims() else {
        return Ok(None);
    };
    if dims.len() < 2 {
        return Err(format!("In[{i}] ndims must be >= 2: {}", dims.len()));
    }
    let r = dims.len();
    Ok(Some((
        PartialShape::new(dims[..r - 2].to_vec()),
        dims[r - 2],
        dims[r - 1],
    )))
}

/// Elements of a tensor of `dims`, or an error when they overflow.
fn output_len<T: crate::tensor::Element>(dims: &[usize]) -> Result<usize> {
    crate::tensor::alloc::checked_len(T::DTYPE, dims)
}

pub(crate) fn register(r: &mut Registry) {
    matmul::register(r);
    batch_matmul::register(r);
    svd::register(r);
    band_part::register(r);
    einsum::register(r);
}

/// Gradient checks of this family's differentiable ops (run by `autodiff::tests`).
#[cfg(test)]
pub(crate) fn gradient_cases() -> Vec<crate::test_util::GradCase> {
    use crate::test_util::{test_input, GradCase};
    let (a, b) = (test_input(&[2, 3], 1), test_input(&[3, 4], 2));
    vec![
        GradCase::new(
            "MatrixBandPart",
            vec![test_input(&[2, 3, 4], 11)],
            |g, x| {
                let (lower, upper) = (g.constant(1i32)?, g.constant(-1i32)?);
                g.matrix_band_part(x[0], lower, upper)
            },
        ),
        GradCase::new("MatMul", vec![a.clone(), b.clone()], |g, x| {
            g.matmul(x[0], x[1])
        }),
        GradCase::new(
            "MatMul",
            vec![test_input(&[3, 2], 3), test_input(&[4, 3], 4)],
            |g, x| g.matmul_t(x[0], x[1], true, true),
        ),
        GradCase::new("MatMul", vec![a, test_input(&[4, 3], 5)], |g, x| {
            g.matmul_t(x[0], x[1], false, true)
        }),
        GradCase::new("MatMul", vec![test_input(&[3, 2], 6), b], |g, x| {
            g.matmul_t(x[0], x[1], true, false)
        }),
        // Broadcast batch dims on both sides: [2,1] against [3].
        GradCase::new(
            "BatchMatMulV2",
            vec![test_input(&[2, 1, 2, 3], 7), test_input(&[3, 3, 4], 8)],
            |g, x| g.batch_matmul(x[0], x[1], false, false),
        ),
        // Equal batch dims, both adjoint.
        GradCase::new(
            "BatchMatMulV2",
            vec![test_input(&[2, 3, 2], 9), test_input(&[2, 4, 3], 10)],
            |g, x| g.batch_matmul(x[0], x[1], true, true),
        ),
        // A plain matrix against a batch, each adjoint flag alone.
        GradCase::new(
            "BatchMatMulV2",
            vec![test_input(&[2, 2, 3], 11), test_input(&[4, 3], 12)],
            |g, x| g.batch_matmul(x[0], x[1], false, true),
        ),
        GradCase::new(
            "BatchMatMulV2",
            vec![test_input(&[3, 2], 13), test_input(&[2, 3, 4], 14)],
            |g, x| g.batch_matmul(x[0], x[1], true, false),
        ),
        GradCase::new("Svd", vec![test_input(&[3, 2], 15)], |g, x| {
            Ok(g.svd(x[0], false, false)?.0)
        }),
        GradCase::new("Svd", vec![test_input(&[2, 2, 4], 16)], |g, x| {
            Ok(g.svd(x[0], false, false)?.0)
        }),
        // compute_uv=true: each output alone, square, wide, tall, batched, and full
        // matrices with |m - n| = 1. Inputs are picked where faer's sign choice for the
        // singular vectors does not flip within the finite-difference step (for many
        // tall inputs it does: all of u and v change sign between x - h and x + h).
        GradCase::new("Svd", vec![test_input(&[3, 3], 17)], |g, x| {
            Ok(g.svd(x[0], false, true)?.0)
        }),
        GradCase::new("Svd", vec![test_input(&[3, 3], 18)], |g, x| {
            Ok(g.svd(x[0], false, true)?.1)
        }),
        GradCase::new("Svd", vec![test_input(&[2, 2, 4], 19)], |g, x| {
            Ok(g.svd(x[0], false, true)?.2)
        }),
        GradCase::new("Svd", vec![test_input(&[4, 2], 22)], |g, x| {
            Ok(g.svd(x[0], false, true)?.1)
        }),
        GradCase::new("Svd", vec![test_input(&[4, 2], 24)], |g, x| {
            Ok(g.svd(x[0], false, true)?.2)
        }),
        GradCase::new("Svd", vec![test_input(&[2, 3], 22)], |g, x| {
            Ok(g.svd(x[0], true, true)?.2)
        }),
        GradCase::new("Svd", vec![test_input(&[3, 2], 21)], |g, x| {
            Ok(g.svd(x[0], true, true)?.1)
        }),
    ]
}

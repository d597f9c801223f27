//! Linear algebra: MatMul, BatchMatMulV2, Svd, with TensorFlow's gradients (`math_grad.py`,
//! `linalg_grad.py`).

use super::math::activation::{relu, relu6};
use super::math::cwise_grad::{relu6_grad, relu_grad};
use super::math::{check_family, Family, InferResult, KernelResult};
use super::{kernel_fn, Cost, GradCtx, InferCtx, KernelBuildCtx, KernelCtx, Op, Registry};
use crate::device::cpu::{broadcast_shape, broadcast_strides};
use crate::device::gemm::{
    gemm, gemm_to_vec, gemm_to_vec_then, zeroed, GemmDims, PARALLEL_MIN_FLOPS,
};
use crate::device::parallel::{for_each_units, threads_for, MIN_GEMM_WORK};
use crate::graph::{AttrsExt, Graph, Node, Output, TensorSpec};
use crate::tensor::Number;
use crate::tensor::{num_elements, DType, Dim, PartialShape, Tensor};
use crate::{with_dtype, Error, Result};
use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::svd::{svd_scratch, ComputeSvdVectors};
use faer::traits::ComplexField;
use faer::{ColMut, MatMut, MatRef, Par};
use std::ops::Range;

const MATMUL_TYPES: &[DType] = &[
    DType::Float32,
    DType::Float64,
    DType::Int32,
    DType::Int64,
    DType::UInt8,
];

fn infer_matmul(ctx: &InferCtx<'_>) -> InferResult {
    ctx.expect_inputs(2)?;
    let dt = ctx.same_dtype()?;
    ctx.check_dtype(0, MATMUL_TYPES)?;
    ctx.check_t_attr(dt)?;
    let ta = ctx.attrs().bool_or("transpose_a", false)?;
    let tb = ctx.attrs().bool_or("transpose_b", false)?;
    for i in 0..2 {
        if let Some(r) = ctx.shape(i).rank() {
            if r != 2 {
                return Err(format!(
                    "Shape must be rank 2 but is rank {r} for input {i}"
                ));
            }
        }
    }
    let (a, b) = (ctx.shape(0), ctx.shape(1));
    let (m, ka) = if ta {
        (a.dim(1), a.dim(0))
    } else {
        (a.dim(0), a.dim(1))
    };
    let (kb, n) = if tb {
        (b.dim(1), b.dim(0))
    } else {
        (b.dim(0), b.dim(1))
    };
    if let (Some(x), Some(y)) = (ka, kb) {
        if x != y {
            return Err(format!("Dimensions must be equal, but are {x} and {y}"));
        }
    }
    Ok(vec![TensorSpec::new(dt, PartialShape::new(vec![m, n]))])
}

fn matmul_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let ta = ctx.attrs().bool_or("transpose_a", false)?;
    let tb = ctx.attrs().bool_or("transpose_b", false)?;
    with_dtype!(number, ctx.input_dtype(0), T => kernel_fn(move |k| {
        let (a, b) = (k.input(0)?, k.input(1)?);
        let dims = matmul_dims(a.shape(), b.shape(), ta, tb)?;
        let threads = k.threads_for_work(dims.work(), PARALLEL_MIN_FLOPS);
        let out = gemm_to_vec(dims, a.as_slice::<T>()?, b.as_slice::<T>()?, threads);
        k.push_output(Tensor::from_parts(vec![dims.m, dims.n], out));
        Ok(())
    }))
}

/// The activation a fused product applies after its bias.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Activation {
    /// None: MatMul + BiasAdd only.
    Linear,
    Relu,
    Relu6,
}

/// What a fused product does to each block of rows it writes, with its third input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Epilogue {
    /// `BiasAdd(product, bias)`, then the activation (a dense layer's forward pass).
    BiasAdd(Activation),
    /// `ReluGrad(product, features)` (backpropagation into a Relu layer).
    ReluGrad,
    /// `Relu6Grad(product, features)`.
    Relu6Grad,
}

/// `MatMul` and the op that reads its product, as one step (built by the plan like
/// TensorFlow's remapper; see `session::fusion`): each block of rows of the product gets
/// `epilogue` right after the product writes it, on the thread that wrote it, instead of
/// in passes of their own. Inputs: the MatMul's a and b, then the second input of the
/// epilogue's op (the bias, or the features); `product` is the MatMul node and `dtype`
/// its type.
pub(crate) fn fused_matmul_kernel(
    product: &Node,
    dtype: DType,
    epilogue: Epilogue,
) -> KernelResult {
    let ta = product.attrs().bool_or("transpose_a", false)?;
    let tb = product.attrs().bool_or("transpose_b", false)?;
    let product_name = product.name().to_string();
    with_dtype!(number, dtype, T => kernel_fn(move |k| {
        let (a, b, other) = (k.input(0)?, k.input(1)?, k.input(2)?);
        let in_product = |e: Error| Error::invalid(format!("in its product {product_name}: {e}"));
        let dims = matmul_dims(a.shape(), b.shape(), ta, tb).map_err(in_product)?;
        let (a, b) = (a.as_slice::<T>()?, b.as_slice::<T>()?);
        let threads = k.threads_for_work(dims.work(), PARALLEL_MIN_FLOPS);
        let (m, n) = (dims.m, dims.n);
        let out = match epilogue {
            Epilogue::BiasAdd(activation) => {
                if other.shape() != [n] {
                    return Err(Error::invalid(format!(
                        "Must provide as many biases as the channel dimension of the input tensor: {:?} vs. [{m}, {n}]",
                        other.shape(),
                    )));
                }
                let bias = other.as_slice::<T>()?;
                match activation {
                    Activation::Linear => {
                        gemm_to_vec_then(dims, a, b, threads, add_bias_then(bias, |x| x))
                    }
                    Activation::Relu => gemm_to_vec_then(dims, a, b, threads, add_bias_then(bias, relu)),
                    Activation::Relu6 => {
                        gemm_to_vec_then(dims, a, b, threads, add_bias_then(bias, relu6))
                    }
                }
            }
            Epilogue::ReluGrad | Epilogue::Relu6Grad => {
                if other.shape() != [m, n] {
                    return Err(Error::invalid(format!(
                        "Incompatible shapes: [{m}, {n}] vs. {:?} (gradients and features)",
                        other.shape()
                    )));
                }
                let features = other.as_slice::<T>()?;
                if epilogue == Epilogue::ReluGrad {
                    gemm_to_vec_then(dims, a, b, threads, backprop_through(features, n, relu_grad))
                } else {
                    gemm_to_vec_then(dims, a, b, threads, backprop_through(features, n, relu6_grad))
                }
            }
        };
        k.push_output(Tensor::from_parts(vec![m, n], out));
        Ok(())
    }))
}

/// A pass over rows of a product: `row[j] = f(row[j] + bias[j])`.
fn add_bias_then<'a, T: Number>(
    bias: &'a [T],
    f: impl Fn(T) -> T + Sync + 'a,
) -> impl Fn(Range<usize>, &mut [T]) + Sync + 'a {
    move |_, rows| {
        for row in rows.chunks_exact_mut(bias.len().max(1)) {
            row.iter_mut()
                .zip(bias)
                .for_each(|(x, &b)| *x = f(x.add(b)));
        }
    }
}

/// A pass over rows of a product (the gradient of an activation's output, `n` columns
/// wide): `grad = f(grad, features)` element by element, with the same rows of `features`.
fn backprop_through<'a, T: Number>(
    features: &'a [T],
    n: usize,
    f: impl Fn(T, T) -> T + Sync + 'a,
) -> impl Fn(Range<usize>, &mut [T]) + Sync + 'a {
    move |rows, grads| {
        let features = &features[rows.start * n..rows.end * n];
        grads
            .iter_mut()
            .zip(features)
            .for_each(|(g, &x)| *g = f(*g, x));
    }
}

/// The sizes of MatMul's product of matrices shaped `sa` and `sb` (TensorFlow's errors
/// when they are not matrices or do not contract).
pub(crate) fn matmul_dims(sa: &[usize], sb: &[usize], ta: bool, tb: bool) -> Result<GemmDims> {
    if sa.len() != 2 || sb.len() != 2 {
        return Err(Error::invalid(format!(
            "In[0] and In[1] must be matrices: {sa:?}, {sb:?}"
        )));
    }
    let (m, ka) = if ta { (sa[1], sa[0]) } else { (sa[0], sa[1]) };
    let (kb, n) = if tb { (sb[1], sb[0]) } else { (sb[0], sb[1]) };
    if ka != kb {
        return Err(Error::invalid(format!(
            "Matrix size-incompatible: In[0]: {sa:?}, In[1]: {sb:?}"
        )));
    }
    Ok(GemmDims {
        m,
        n,
        k: ka,
        trans_a: ta,
        trans_b: tb,
    })
}

fn matmul_grad(ctx: &mut GradCtx<'_>) -> Result<Vec<Option<Output>>> {
    let attrs = ctx.attrs();
    let ta = attrs
        .bool_or("transpose_a", false)
        .map_err(Error::invalid)?;
    let tb = attrs
        .bool_or("transpose_b", false)
        .map_err(Error::invalid)?;
    let (a, b, g) = (ctx.input(0), ctx.input(1), ctx.grad(0));
    let graph = &mut *ctx.graph;
    // TensorFlow's _MatMulGrad: the four transpose cases.
    let (ga, gb) = match (ta, tb) {
        (false, false) => (
            graph.matmul_t(g, b, false, true)?,
            graph.matmul_t(a, g, true, false)?,
        ),
        (false, true) => (
            graph.matmul_t(g, b, false, false)?,
            graph.matmul_t(g, a, true, false)?,
        ),
        (true, false) => (
            graph.matmul_t(b, g, false, true)?,
            graph.matmul_t(a, g, false, false)?,
        ),
        (true, true) => (
            graph.matmul_t(b, g, true, true)?,
            graph.matmul_t(g, a, true, true)?,
        ),
    };
    Ok(vec![Some(ga), Some(gb)])
}

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

/// What BroadcastGradientArgs computes, for batch shapes known at build time: the axes
/// of the broadcast shape that each operand's gradient is summed over (those where the
/// operand, padded with leading 1s, has size 1).
fn static_reduction_axes(a: &[usize], b: &[usize]) -> [Vec<i32>; 2] {
    let rank = a.len().max(b.len());
    let padded = |s: &[usize], i: usize| {
        let lead = rank - s.len();
        if i < lead {
            1
        } else {
            s[i - lead]
        }
    };
    [a, b].map(|s| {
        (0..rank)
            .filter(|&i| padded(s, i) == 1)
            .map(|i| i as i32)
            .collect()
    })
}

/// `x[..., :-2]`-style prefix: the batch part of a shape vector.
fn batch_part(g: &mut Graph, shape: Output) -> Result<Output> {
    let masks = crate::ops::array::StridedSliceMasks {
        begin: 1,
        ..Default::default()
    };
    g.strided_slice(shape, &[0], &[-2], &[1], masks)
}

/// The batch dims of a shape when all of them are known.
fn known_batch(shape: &PartialShape) -> Option<Vec<usize>> {
    let dims = shape.dims()?;
    let batch = dims.get(..dims.len().checked_sub(2)?)?;
    batch.iter().copied().collect()
}

/// TensorFlow's `_BatchMatMulV2`: the four adjoint cases of the product rule, then, where
/// the batch dims were broadcast, a Sum over the broadcast axes and a Reshape back to
/// each operand's shape. The axes come from the batch shapes when both are known at
/// build time, else from a BroadcastGradientArgs node.
fn batch_matmul_grad(ctx: &mut GradCtx<'_>) -> Result<Vec<Option<Output>>> {
    let attrs = ctx.attrs();
    let adj_x = attrs.bool_or("adj_x", false).map_err(Error::invalid)?;
    let adj_y = attrs.bool_or("adj_y", false).map_err(Error::invalid)?;
    let (x, y, grad) = (ctx.input(0), ctx.input(1), ctx.grad(0));
    let g = &mut *ctx.graph;
    let (gx, gy) = match (adj_x, adj_y) {
        (false, false) => (
            matmul_any(g, grad, y, [false, true], [true, false])?,
            matmul_any(g, x, grad, [true, false], [false, true])?,
        ),
        (false, true) => (
            matmul_any(g, grad, y, [false, false], [true, false])?,
            matmul_any(g, grad, x, [true, false], [false, true])?,
        ),
        (true, false) => (
            matmul_any(g, y, grad, [false, true], [true, false])?,
            matmul_any(g, x, grad, [false, false], [false, true])?,
        ),
        (true, true) => (
            matmul_any(g, y, grad, [true, true], [true, false])?,
            matmul_any(g, grad, x, [true, true], [false, true])?,
        ),
    };
    let (sx, sy) = (g.shape(x).clone(), g.shape(y).clone());
    let may_have_batch = [&sx, &sy].iter().any(|s| s.rank().is_none_or(|r| r > 2));
    let (bx, by) = (known_batch(&sx), known_batch(&sy));
    if !may_have_batch || (bx.is_some() && bx == by) {
        return Ok(vec![Some(gx), Some(gy)]);
    }
    let (shape_x, shape_y) = (g.shape_of(x)?, g.shape_of(y)?);
    let (rx, ry) = match (bx, by) {
        (Some(bx), Some(by)) => {
            let [rx, ry] = static_reduction_axes(&bx, &by);
            (
                g.constant(Tensor::vector(rx))?,
                g.constant(Tensor::vector(ry))?,
            )
        }
        _ => {
            let (px, py) = (batch_part(g, shape_x)?, batch_part(g, shape_y)?);
            let args = g
                .op("BroadcastGradientArgs")
                .input(px)
                .input(py)
                .attr("T", DType::Int32)
                .build()?;
            (args.output(0), args.output(1))
        }
    };
    let sum_x = g.reduce_sum_t(gx, rx, false)?;
    let sum_y = g.reduce_sum_t(gy, ry, false)?;
    Ok(vec![
        Some(g.reshape_t(sum_x, shape_x)?),
        Some(g.reshape_t(sum_y, shape_y)?),
    ])
}

/// TensorFlow's `_SvdGrad`. With `compute_uv=false` a fresh thin Svd of the input gives
/// `u` and `v`, and the gradient is `u · diag(grad_s) · vᵀ`; with `compute_uv=true` it is
/// TensorFlow's formula (Giles; Townsend for the thin case) through the node's own
/// outputs, for inner dims known at build time (and `|m − n| ≤ 1` with full matrices).
/// Products with diagonal matrices are built as broadcast Muls (`X · diag(s)` scales
/// the columns of `X`), `diag(grad_s)` as an identity times `grad_s`, and TensorFlow's
/// MatrixSetDiag of `f` is left out: `f`'s diagonal is already exactly 0.
fn svd_grad(ctx: &mut GradCtx<'_>) -> Result<Vec<Option<Output>>> {
    let attrs = ctx.attrs();
    let compute_uv = attrs.bool_or("compute_uv", true).map_err(Error::invalid)?;
    let full = attrs
        .bool_or("full_matrices", false)
        .map_err(Error::invalid)?;
    let (a, grad_s) = (ctx.input(0), ctx.grad(0));
    if !compute_uv {
        let g = &mut *ctx.graph;
        let (_, u, v) = g.svd(a, false, true)?;
        let row = g.expand_dims(grad_s, -2)?;
        let scaled = g.mul(u, row)?;
        return Ok(vec![Some(matmul_any(
            g,
            scaled,
            v,
            [false, true],
            [false, false],
        )?)]);
    }
    let outputs = [ctx.output(0), ctx.output(1), ctx.output(2)];
    let grads = [grad_s, ctx.grad(1), ctx.grad(2)];
    let grad_a = svd_grad_with_vectors(ctx.graph, a, outputs, grads, full)?;
    Ok(vec![Some(grad_a)])
}

/// The `compute_uv=true` part of [`svd_grad`].
fn svd_grad_with_vectors(
    g: &mut Graph,
    a: Output,
    [s, u, v]: [Output; 3],
    [grad_s, grad_u, grad_v]: [Output; 3],
    full: bool,
) -> Result<Output> {
    let dims = g.shape(a).dims().map(<[Dim]>::to_vec).unwrap_or_default();
    let (Some(&Some(m)), Some(&Some(n))) = (dims.iter().rev().nth(1), dims.last()) else {
        return Err(Error::invalid(
            "SVD gradient has not been implemented for input with unknown inner matrix shape.",
        ));
    };
    // A tall input: differentiate Aᵀ = V·Sᵀ·Uᵀ and transpose at the end.
    let adjoint = m > n;
    let (m, n, u, v, grad_u, grad_v) = if adjoint {
        (n, m, v, u, grad_v, grad_u)
    } else {
        (m, n, u, v, grad_u, grad_v)
    };
    if full && n - m > 1 {
        return Err(Error::invalid(
            "svd gradient is not implemented for abs(m - n) > 1 when full_matrices is True",
        ));
    }
    let rank = dims.len() as i64;
    let perm: Vec<i64> = (0..rank - 2).chain([rank - 1, rank - 2]).collect();
    let dt = g.dtype(a);
    // _SafeReciprocal: x / (x² + 1e-20).
    let eps = g.scalar_like(dt, 1e-20)?;
    let safe_reciprocal = |g: &mut Graph, x: Output| -> Result<Output> {
        let sq = g.mul(x, x)?;
        let den = g.add(sq, eps)?;
        g.div(x, den)
    };
    // v[..., :, lo:hi]
    let columns = |g: &mut Graph, x: Output, lo: usize, hi: usize| {
        let masks = crate::ops::array::StridedSliceMasks {
            ellipsis: 0b001,
            begin: 0b010,
            end: 0b010,
            ..Default::default()
        };
        g.strided_slice(x, &[0, 0, lo as i64], &[0, 0, hi as i64], &[1, 1, 1], masks)
    };
    let eye: Vec<f64> = (0..m * m)
        .map(|i| if i % (m + 1) == 0 { 1.0 } else { 0.0 })
        .collect();
    let eye = g.constant(Tensor::new(&[m, m], eye)?.cast(dt)?)?;
    let s_row = g.expand_dims(s, -2)?;
    let s_col = g.expand_dims(s, -1)?;
    let s2 = g.mul(s, s)?;
    let s2_row = g.expand_dims(s2, -2)?;
    let s2_col = g.expand_dims(s2, -1)?;
    let diff = g.sub(s2_row, s2_col)?;
    let f = safe_reciprocal(g, diff)?;
    let v1 = columns(g, v, 0, m)?;
    let grad_v1 = columns(g, grad_v, 0, m)?;
    let u_gu = matmul_any(g, u, grad_u, [true, false], [false, false])?;
    let v_gv = matmul_any(g, v1, grad_v1, [true, false], [false, false])?;
    let f_u = g.mul(f, u_gu)?;
    let f_v = g.mul(f, v_gv)?;
    // grad_s_mat + (f_u + f_uᵀ)·S + S·(f_v + f_vᵀ)
    let gs_row = g.expand_dims(grad_s, -2)?;
    let grad_s_mat = g.mul(eye, gs_row)?;
    let f_ut = g.transpose(f_u, &perm)?;
    let sym_u = g.add(f_u, f_ut)?;
    let left = g.mul(sym_u, s_row)?;
    let f_vt = g.transpose(f_v, &perm)?;
    let sym_v = g.add(f_v, f_vt)?;
    let right = g.mul(s_col, sym_v)?;
    let sum = g.add(grad_s_mat, left)?;
    let term1_nouv = g.add(sum, right)?;
    let inner = matmul_any(g, term1_nouv, v1, [false, true], [false, false])?;
    let mut grad_a = matmul_any(g, u, inner, [false, false], [false, false])?;
    if m != n {
        let gv1t = g.transpose(grad_v1, &perm)?;
        let gv1t_v1 = matmul_any(g, gv1t, v1, [false, false], [false, false])?;
        let proj = matmul_any(g, gv1t_v1, v1, [false, true], [false, false])?;
        let mut term2_nous = g.sub(gv1t, proj)?;
        if full {
            let v2 = columns(g, v, m, n)?;
            let grad_v2 = columns(g, grad_v, m, n)?;
            let v1t_gv2 = matmul_any(g, v1, grad_v2, [true, false], [false, false])?;
            let proj2 = matmul_any(g, v1t_gv2, v2, [false, true], [false, false])?;
            term2_nous = g.sub(term2_nous, proj2)?;
        }
        let s_inv = safe_reciprocal(g, s)?;
        let s_inv_row = g.expand_dims(s_inv, -2)?;
        let u_s_inv = g.mul(u, s_inv_row)?;
        let term2 = matmul_any(g, u_s_inv, term2_nous, [false, false], [false, false])?;
        grad_a = g.add(grad_a, term2)?;
    }
    if adjoint {
        grad_a = g.transpose(grad_a, &perm)?;
    }
    Ok(grad_a)
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

fn infer_batch_matmul(ctx: &InferCtx<'_>) -> InferResult {
    ctx.expect_inputs(2)?;
    let dt = ctx.same_dtype()?;
    ctx.check_dtype(0, MATMUL_TYPES)?;
    ctx.check_t_attr(dt)?;
    let adj_x = ctx.attrs().bool_or("adj_x", false)?;
    let adj_y = ctx.attrs().bool_or("adj_y", false)?;
    let (x, y) = (
        split_matrix_dims(ctx.shape(0), 0)?,
        split_matrix_dims(ctx.shape(1), 1)?,
    );
    let (Some((bx, xr, xc)), Some((by, yr, yc))) = (x, y) else {
        return Ok(vec![TensorSpec::new(dt, PartialShape::unknown())]);
    };
    let batch = bx.broadcast(&by).map_err(|_| {
        format!(
            "In[0] and In[1] must have compatible batch dimensions: {} vs. {}",
            ctx.shape(0),
            ctx.shape(1)
        )
    })?;
    let (m, kx) = if adj_x { (xc, xr) } else { (xr, xc) };
    let (ky, n) = if adj_y { (yc, yr) } else { (yr, yc) };
    if let (Some(a), Some(b)) = (kx, ky) {
        if a != b {
            return Err(format!(
                "Matrix size-incompatible: In[0]: {}, In[1]: {} (contracted dimensions {a} and {b})",
                ctx.shape(0),
                ctx.shape(1)
            ));
        }
    }
    let mut dims = batch.dims().map(<[Dim]>::to_vec).unwrap_or_default();
    dims.extend([m, n]);
    Ok(vec![TensorSpec::new(dt, PartialShape::new(dims))])
}

/// For every element of the broadcast batch shape `out`, the index of the matrix of a
/// tensor with batch shape `shape` that it reads.
fn batch_offsets(shape: &[usize], out: &[usize]) -> Vec<usize> {
    let strides = broadcast_strides(shape, out);
    (0..num_elements(out))
        .map(|mut i| {
            let mut offset = 0;
            for (&d, &s) in out.iter().zip(&strides).rev() {
                offset += (i % d) * s;
                i /= d;
            }
            offset
        })
        .collect()
}

/// Elements of an output of shape `dims`, or an error when it could never be allocated.
fn output_len(dims: &[usize]) -> Result<usize> {
    dims.iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .filter(|&n| n <= isize::MAX as usize / 8)
        .ok_or_else(|| Error::invalid(format!("an output of shape {dims:?} is too large")))
}

fn batch_matmul_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let adj_x = ctx.attrs().bool_or("adj_x", false)?;
    let adj_y = ctx.attrs().bool_or("adj_y", false)?;
    with_dtype!(number, ctx.input_dtype(0), T => kernel_fn(move |k: &mut KernelCtx<'_>| {
        let (x, y) = (k.input(0)?, k.input(1)?);
        let (sx, sy) = (x.shape(), y.shape());
        for (i, s) in [sx, sy].into_iter().enumerate() {
            if s.len() < 2 {
                return Err(Error::invalid(format!("In[{i}] ndims must be >= 2: {}", s.len())));
            }
        }
        let (bx, by) = (&sx[..sx.len() - 2], &sy[..sy.len() - 2]);
        let batch = broadcast_shape(bx, by).map_err(|_| Error::invalid(format!(
            "In[0] and In[1] must have compatible batch dimensions: {sx:?} vs. {sy:?}"
        )))?;
        let (xr, xc) = (sx[sx.len() - 2], sx[sx.len() - 1]);
        let (yr, yc) = (sy[sy.len() - 2], sy[sy.len() - 1]);
        let (m, kx) = if adj_x { (xc, xr) } else { (xr, xc) };
        let (ky, n) = if adj_y { (yc, yr) } else { (yr, yc) };
        if kx != ky {
            return Err(Error::invalid(format!(
                "Matrix size-incompatible: In[0]: {sx:?}, In[1]: {sy:?}"
            )));
        }
        let mut shape = batch.clone();
        shape.extend([m, n]);
        let mut out = zeroed::<T>(output_len(&shape)?);
        if out.is_empty() {
            k.push_output(Tensor::from_parts(shape, out));
            return Ok(());
        }
        let (ox, oy) = (batch_offsets(bx, &batch), batch_offsets(by, &batch));
        let (xs, ys) = (x.as_slice::<T>()?, y.as_slice::<T>()?);
        let work = out.len().saturating_mul(kx);
        let dims = GemmDims { m, n, k: kx, trans_a: adj_x, trans_b: adj_y };
        let threads = k.threads_for_work(work, PARALLEL_MIN_FLOPS);
        let outer = threads_for(work, MIN_GEMM_WORK, ox.len(), threads);
        let inner = (threads / outer).max(1);
        for_each_units(&mut out, m * n, outer, |batches, chunk| {
            for (b, dst) in batches.zip(chunk.chunks_exact_mut(m * n)) {
                let a = &xs[ox[b] * m * kx..(ox[b] + 1) * m * kx];
                let c = &ys[oy[b] * kx * n..(oy[b] + 1) * kx * n];
                gemm(dims, a, c, dst, inner);
            }
        });
        k.push_output(Tensor::from_parts(shape, out));
        Ok(())
    }))
}

fn infer_svd(ctx: &InferCtx<'_>) -> InferResult {
    ctx.expect_inputs(1)?;
    let dt = check_family(ctx, 0, Family::Float)?;
    ctx.check_t_attr(dt)?;
    let compute_uv = ctx.attrs().bool_or("compute_uv", true)?;
    let full = ctx.attrs().bool_or("full_matrices", false)?;
    let Some((batch, m, n)) = split_matrix_dims(ctx.shape(0), 0)
        .map_err(|_| format!("Shape must be at least rank 2 but is {}", ctx.shape(0)))?
    else {
        let uv = if compute_uv {
            PartialShape::unknown()
        } else {
            PartialShape::known(&[0])
        };
        return Ok(vec![
            TensorSpec::new(dt, PartialShape::unknown()),
            TensorSpec::new(dt, uv.clone()),
            TensorSpec::new(dt, uv),
        ]);
    };
    let p = match (m, n) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (Some(0), None) | (None, Some(0)) => Some(0),
        _ => None,
    };
    let with = |tail: [Dim; 2]| {
        let mut d = batch.dims().map(<[Dim]>::to_vec).unwrap_or_default();
        d.extend(tail);
        PartialShape::new(d)
    };
    let mut s = batch.dims().map(<[Dim]>::to_vec).unwrap_or_default();
    s.push(p);
    let (u, v) = if !compute_uv {
        (PartialShape::known(&[0]), PartialShape::known(&[0]))
    } else if full {
        (with([m, m]), with([n, n]))
    } else {
        (with([m, p]), with([n, p]))
    };
    Ok(vec![
        TensorSpec::new(dt, PartialShape::new(s)),
        TensorSpec::new(dt, u),
        TensorSpec::new(dt, v),
    ])
}

/// Singular value decompositions of `count` row-major `m×n` matrices stored one after
/// another in `xs` (faer's SVD, on up to `threads` threads): writes the descending
/// singular values to `s` (`count×p`) and, when `uv` is given, `U` (`m×m` full, `m×p`
/// thin) and `V` (`n×n` or `n×p`) row-major, one matrix after another.
fn svd_batch<T>(
    xs: &[T],
    [count, m, n]: [usize; 3],
    s: &mut [T],
    uv: Option<(&mut [T], &mut [T], bool)>,
    threads: usize,
) -> Result<()>
where
    T: Number + ComplexField,
{
    let p = m.min(n);
    if count == 0 || p == 0 {
        // Nothing to decompose: full U and V are identities, the rest is empty.
        if let Some((u, v, _)) = uv {
            for (x, d) in [(u, m), (v, n)] {
                for mat in x.chunks_exact_mut((d * d).max(1)) {
                    mat.iter_mut().step_by(d + 1).for_each(|e| *e = T::ONE);
                }
            }
        }
        return Ok(());
    }
    let par = if threads > 1 {
        Par::rayon(threads)
    } else {
        Par::Seq
    };
    let compute = match uv {
        None => ComputeSvdVectors::No,
        Some((_, _, true)) => ComputeSvdVectors::Full,
        Some((_, _, false)) => ComputeSvdVectors::Thin,
    };
    let mut scratch = MemBuffer::new(svd_scratch::<T>(
        m,
        n,
        compute,
        compute,
        par,
        Default::default(),
    ));
    let (uc, vc) = if compute == ComputeSvdVectors::Full {
        (m, n)
    } else {
        (p, p)
    };
    let (mut us, mut vs) = match uv {
        Some((u, v, _)) => (
            Some(u.chunks_exact_mut(m * uc)),
            Some(v.chunks_exact_mut(n * vc)),
        ),
        None => (None, None),
    };
    for (a, sb) in xs.chunks_exact(m * n).zip(s.chunks_exact_mut(p)) {
        let u = us.as_mut().and_then(Iterator::next);
        let v = vs.as_mut().and_then(Iterator::next);
        let u = u.map(|u| MatMut::from_row_major_slice_mut(u, m, uc));
        let v = v.map(|v| MatMut::from_row_major_slice_mut(v, n, vc));
        faer::linalg::svd::svd(
            MatRef::from_row_major_slice(a, m, n),
            ColMut::from_slice_mut(sb).as_diagonal_mut(),
            u,
            v,
            par,
            MemStack::new(&mut scratch),
            Default::default(),
        )
        .map_err(|_| Error::invalid("Svd: the SVD algorithm did not converge"))?;
    }
    crate::device::gemm::clear_upper_vector_state();
    Ok(())
}

fn svd_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let compute_uv = ctx.attrs().bool_or("compute_uv", true)?;
    let full = ctx.attrs().bool_or("full_matrices", false)?;
    with_dtype!(float, ctx.input_dtype(0), T => kernel_fn(move |k: &mut KernelCtx<'_>| {
        let x = k.take_input(0)?;
        let shape = x.shape();
        if shape.len() < 2 {
            return Err(Error::invalid(format!("Svd: input must have rank >= 2, got shape {shape:?}")));
        }
        let (batch, m, n) = (&shape[..shape.len() - 2], shape[shape.len() - 2], shape[shape.len() - 1]);
        let (p, count) = (m.min(n), num_elements(batch));
        let (uc, vc) = if full { (m, n) } else { (p, p) };
        let mut s = zeroed::<T>(count * p);
        let (mut u, mut v) = if compute_uv {
            (zeroed::<T>(output_len(&[count, m, uc])?), zeroed::<T>(output_len(&[count, n, vc])?))
        } else {
            (Vec::new(), Vec::new())
        };
        let uv = compute_uv.then_some((&mut u[..], &mut v[..], full));
        svd_batch(x.as_slice::<T>()?, [count, m, n], &mut s, uv, k.intra_op_threads())?;
        let with = |tail: [usize; 2]| [batch, &tail].concat();
        k.push_output(Tensor::from_parts([batch, &[p]].concat(), s));
        if compute_uv {
            k.push_output(Tensor::from_parts(with([m, uc]), u));
            k.push_output(Tensor::from_parts(with([n, vc]), v));
        } else {
            k.push_output(Tensor::from_parts(vec![0], u));
            k.push_output(Tensor::from_parts(vec![0], v));
        }
        Ok(())
    }))
}

pub(crate) fn register(r: &mut Registry) {
    r.add(
        Op::new("MatMul", infer_matmul, matmul_kernel)
            .cost(Cost::Contraction)
            .grad(matmul_grad)
            .defaults(|| vec![("transpose_a", false.into()), ("transpose_b", false.into())]),
    );
    r.add(
        Op::new("BatchMatMulV2", infer_batch_matmul, batch_matmul_kernel)
            .cost(Cost::Contraction)
            .grad(batch_matmul_grad)
            .defaults(|| {
                vec![
                    ("adj_x", false.into()),
                    ("adj_y", false.into()),
                    ("grad_x", false.into()),
                    ("grad_y", false.into()),
                ]
            }),
    );
    r.add(
        Op::new("Svd", infer_svd, svd_kernel)
            .cost(Cost::Expensive)
            .grad(svd_grad)
            .defaults(|| vec![("compute_uv", true.into()), ("full_matrices", false.into())]),
    );
}

impl Graph {
    /// Matrix product `a · b` (`tf.matmul`).
    pub fn matmul(&mut self, a: Output, b: Output) -> Result<Output> {
        self.matmul_t(a, b, false, false)
    }

    /// Matrix product with either side transposed first.
    pub fn matmul_t(
        &mut self,
        a: Output,
        b: Output,
        transpose_a: bool,
        transpose_b: bool,
    ) -> Result<Output> {
        let t = self.dtype(a);
        self.op("MatMul")
            .input(a)
            .input(b)
            .attr("T", t)
            .attr("transpose_a", transpose_a)
            .attr("transpose_b", transpose_b)
            .build_output()
    }

    /// Batched matrix product with NumPy broadcasting of the batch dims
    /// (`tf.linalg.matmul` on rank > 2, op BatchMatMulV2); `adj_x`/`adj_y` transpose the
    /// last two dims of `x`/`y` first.
    pub fn batch_matmul(
        &mut self,
        x: Output,
        y: Output,
        adj_x: bool,
        adj_y: bool,
    ) -> Result<Output> {
        let t = self.dtype(x);
        self.op("BatchMatMulV2")
            .input(x)
            .input(y)
            .attr("T", t)
            .attr("adj_x", adj_x)
            .attr("adj_y", adj_y)
            .build_output()
    }

    /// Singular value decomposition of the inner matrices of `x` (`tf.linalg.svd`, op Svd):
    /// returns `(s, u, v)` with `x = u · diag(s) · vᵀ` and `s` descending. Without
    /// `compute_uv`, `u` and `v` are empty tensors of shape `[0]`.
    pub fn svd(
        &mut self,
        x: Output,
        full_matrices: bool,
        compute_uv: bool,
    ) -> Result<(Output, Output, Output)> {
        let t = self.dtype(x);
        let id = self
            .op("Svd")
            .input(x)
            .attr("T", t)
            .attr("compute_uv", compute_uv)
            .attr("full_matrices", full_matrices)
            .build()?;
        Ok((id.output(0), id.output(1), id.output(2)))
    }
}

/// Gradient checks of this family's differentiable ops (run by `autodiff::tests`).
#[cfg(test)]
pub(crate) fn gradient_cases() -> Vec<crate::autodiff::check::GradCase> {
    use crate::autodiff::check::{test_input, GradCase};
    let (a, b) = (test_input(&[2, 3], 1), test_input(&[3, 4], 2));
    vec![
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::nn::test_util::{assert_close, f64s, random, run, run_with};

    /// `x · y` of row-major matrices, from the definition.
    fn naive_matmul(x: &[f64], y: &[f64], m: usize, k: usize, n: usize) -> Vec<f64> {
        let mut out = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                out[i * n + j] = (0..k).map(|p| x[i * k + p] * y[p * n + j]).sum();
            }
        }
        out
    }

    /// Transposes the last two dims of a batch of `r×c` matrices.
    fn transpose_last(x: &[f64], r: usize, c: usize) -> Vec<f64> {
        x.chunks(r * c)
            .flat_map(|mat| (0..c).flat_map(move |j| (0..r).map(move |i| mat[i * c + j])))
            .collect()
    }

    #[test]
    fn batch_matmul_broadcasts_batch_dims() {
        let (x, y) = (random(&[2, 1, 2, 3], 1), random(&[3, 3, 4], 2));
        let mut g = Graph::new();
        let (xi, yi) = (
            g.constant(x.clone()).unwrap(),
            g.constant(y.clone()).unwrap(),
        );
        let z = g.batch_matmul(xi, yi, false, false).unwrap();
        assert_eq!(g.shape(z), &PartialShape::known(&[2, 3, 2, 4]));
        // adjoint flags: feed the transposes and ask for them back
        let xt = Tensor::new(&[2, 1, 3, 2], transpose_last(&f64s(&x), 2, 3)).unwrap();
        let yt = Tensor::new(&[3, 4, 3], transpose_last(&f64s(&y), 3, 4)).unwrap();
        let (xti, yti) = (g.constant(xt).unwrap(), g.constant(yt).unwrap());
        let za = g.batch_matmul(xti, yti, true, true).unwrap();
        let out = run(&g, &[z, za]);
        let (xv, yv) = (f64s(&x), f64s(&y));
        let mut want = Vec::new();
        for a in 0..2 {
            for b in 0..3 {
                want.extend(naive_matmul(
                    &xv[a * 6..a * 6 + 6],
                    &yv[b * 12..b * 12 + 12],
                    2,
                    3,
                    4,
                ));
            }
        }
        assert_close(&f64s(&out[0]), &want, 1e-12);
        assert_close(&f64s(&out[1]), &want, 1e-12);
    }

    #[test]
    fn batch_matmul_of_integers_threads_and_empty_batches() {
        let mut g = Graph::new();
        // [[1,2],[3,4]] · [[5,6],[7,8]] = [[19,22],[43,50]]; the second batch doubles x.
        let x = g
            .constant(Tensor::new(&[2, 2, 2], vec![1i32, 2, 3, 4, 2, 4, 6, 8]).unwrap())
            .unwrap();
        let y = g.constant(Tensor::from([[5i32, 6], [7, 8]])).unwrap();
        let z = g.batch_matmul(x, y, false, false).unwrap();
        let big_x = random(&[64, 32, 64], 3);
        let big_y = random(&[64, 48], 4);
        let (bx, by) = (
            g.constant(big_x.clone()).unwrap(),
            g.constant(big_y.clone()).unwrap(),
        );
        let bz = g.batch_matmul(bx, by, false, false).unwrap();
        let ex = g
            .constant(Tensor::zeros(DType::Float32, &[0, 2, 3]))
            .unwrap();
        let ey = g.constant(Tensor::zeros(DType::Float32, &[3, 4])).unwrap();
        let ez = g.batch_matmul(ex, ey, false, false).unwrap();
        let out = run_with(&g, &[z, bz, ez], 4);
        assert_eq!(
            out[0],
            Tensor::new(&[2, 2, 2], vec![19i32, 22, 43, 50, 38, 44, 86, 100]).unwrap()
        );
        let (xv, yv) = (f64s(&big_x), f64s(&big_y));
        let want: Vec<f64> = xv
            .chunks(32 * 64)
            .flat_map(|m| naive_matmul(m, &yv, 32, 64, 48))
            .collect();
        assert_close(&f64s(&out[1]), &want, 1e-12);
        assert_eq!(out[2].shape(), &[0, 2, 4]);
    }

    #[test]
    fn batch_matmul_shape_errors() {
        let mut g = Graph::new();
        let a = g.placeholder(DType::Float32, [2, 2, 3], "a").unwrap();
        let b = g.placeholder(DType::Float32, [3, 3, 4], "b").unwrap();
        let msg = g.batch_matmul(a, b, false, false).unwrap_err().to_string();
        assert!(msg.contains("compatible batch dimensions"), "{msg}");
        let c = g.placeholder(DType::Float32, [2, 2, 4], "c").unwrap();
        let msg = g.batch_matmul(a, c, false, false).unwrap_err().to_string();
        assert!(msg.contains("Matrix size-incompatible"), "{msg}");
        let v = g.placeholder(DType::Float32, [3], "v").unwrap();
        let msg = g.batch_matmul(v, c, false, false).unwrap_err().to_string();
        assert!(msg.contains("In[0] ndims must be >= 2: 1"), "{msg}");
        // Empty inputs whose broadcast batch could never be allocated: an error, no crash.
        let ex = g
            .constant(Tensor::zeros(DType::Float32, &[1 << 33, 1, 0, 5]))
            .unwrap();
        let ey = g
            .constant(Tensor::zeros(DType::Float32, &[1, 1 << 33, 5, 0]))
            .unwrap();
        let ez = g.batch_matmul(ex, ey, false, false).unwrap();
        let sx = g
            .constant(Tensor::zeros(DType::Float32, &[1 << 40, 0]))
            .unwrap();
        let (_, su, _) = g.svd(sx, true, true).unwrap();
        for t in [ez, su] {
            let msg = crate::Session::new(&g)
                .run(&[], &[t], &[])
                .unwrap_err()
                .to_string();
            assert!(msg.contains("too large"), "{msg}");
        }
        // adj_x makes [2,2,3] a batch of 3×2 matrices: contracted 2 vs 2
        let ok = g.batch_matmul(a, c, true, false).unwrap();
        assert_eq!(g.shape(ok), &PartialShape::known(&[2, 3, 4]));
    }

    #[test]
    fn static_reduction_axes_match_broadcast_gradient_args() {
        // tf.raw_ops.BroadcastGradientArgs(s0=a, s1=b) for each pair
        assert_eq!(static_reduction_axes(&[2, 1], &[3]), [vec![1], vec![0]]);
        assert_eq!(
            static_reduction_axes(&[1, 1], &[1]),
            [vec![0, 1], vec![0, 1]]
        );
        assert_eq!(static_reduction_axes(&[], &[2, 3]), [vec![0, 1], vec![]]);
        assert_eq!(
            static_reduction_axes(&[4, 2], &[4, 2]),
            [Vec::<i32>::new(), vec![]]
        );
    }

    #[test]
    fn batch_matmul_gradient_sums_broadcast_batches() {
        // d/dy sum(x · y) with x [2,1,2,3] broadcast against y [3,4]: every batch's
        // xᵀ·1 summed, i.e. column sums of x over all batches, repeated over 4 columns.
        let xv = random(&[2, 1, 2, 3], 1);
        let mut g = Graph::new();
        let x = g.constant(xv.clone()).unwrap();
        let y = g.placeholder(DType::Float64, [3, 4], "y").unwrap();
        let z = g.batch_matmul(x, y, false, false).unwrap();
        let dy = g.gradients(&[z], &[y]).unwrap()[0].unwrap();
        assert_eq!(g.shape(dy), &PartialShape::known(&[3, 4]));
        let out = crate::Session::new(&g)
            .run(&[(y, random(&[3, 4], 2))], &[dy], &[])
            .unwrap();
        let xs = f64s(&xv);
        let col: Vec<f64> = (0..3)
            .map(|k| (0..4).map(|r| xs[r * 3 + k]).sum())
            .collect();
        let want: Vec<f64> = col.iter().flat_map(|&c| [c; 4]).collect();
        assert_close(&f64s(&out[0]), &want, 1e-12);
    }

    #[test]
    fn svd_gradients_refused_as_in_tensorflow() {
        let mut g = Graph::new();
        let x = g.placeholder(DType::Float64, [2, 5], "x").unwrap();
        let (_, u, _) = g.svd(x, true, true).unwrap();
        let msg = g.gradients(&[u], &[x]).unwrap_err().to_string();
        assert!(msg.contains("abs(m - n) > 1"), "{msg}");
        let y = g.placeholder(DType::Float64, [None, Some(3)], "y").unwrap();
        let (s, _, _) = g.svd(y, false, true).unwrap();
        let msg = g.gradients(&[s], &[y]).unwrap_err().to_string();
        assert!(msg.contains("unknown inner matrix shape"), "{msg}");
    }

    #[test]
    fn svd_seed_values() {
        let mut g = Graph::new();
        let x = g
            .constant(Tensor::from([[19f32, 22.], [43., 50.]]))
            .unwrap();
        let (s, u, v) = g.svd(x, false, true).unwrap();
        let out = run(&g, &[s, u, v]);
        // tf.linalg.svd(tf.constant([[19.,22.],[43.,50.]])) -> s = [7.206939e+01, 5.550127e-02]
        let sv = f64s(&out[0]);
        assert!((sv[0] - 72.06939).abs() <= 1e-5 * 72.06939, "{sv:?}");
        assert!((sv[1] - 0.05550127).abs() <= 1e-3 * 0.05550127, "{sv:?}");
        let (uv, vv) = (f64s(&out[1]), f64s(&out[2]));
        // u · diag(s) · vᵀ reconstructs the input.
        for (i, j) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
            let r: f64 = (0..2).map(|p| uv[i * 2 + p] * sv[p] * vv[j * 2 + p]).sum();
            let want = [[19., 22.], [43., 50.]][i][j];
            assert!((r - want).abs() < 1e-4, "({i},{j}): {r}");
        }
    }

    /// Checks shapes, order, orthonormal columns and `u · diag(s) · vᵀ = a` for one
    /// batch of `m×n` matrices.
    fn check_svd(a: &Tensor, full: bool) {
        let shape = a.shape().to_vec();
        let (m, n) = (shape[shape.len() - 2], shape[shape.len() - 1]);
        let (p, batch) = (m.min(n), a.len() / (m * n));
        let mut g = Graph::new();
        let x = g.constant(a.clone()).unwrap();
        let (s, u, v) = g.svd(x, full, true).unwrap();
        let out = run(&g, &[s, u, v]);
        let (uc, vc) = if full { (m, n) } else { (p, p) };
        for (t, o) in [s, u, v].iter().zip(&out) {
            assert_eq!(g.shape(*t), &PartialShape::known(o.shape()));
        }
        assert_eq!(out[1].shape()[shape.len() - 2..], [m, uc]);
        assert_eq!(out[2].shape()[shape.len() - 2..], [n, vc]);
        let (av, sv, uv, vv) = (f64s(a), f64s(&out[0]), f64s(&out[1]), f64s(&out[2]));
        for b in 0..batch {
            let (sb, ub, vb) = (
                &sv[b * p..][..p],
                &uv[b * m * uc..][..m * uc],
                &vv[b * n * vc..][..n * vc],
            );
            assert!(sb.windows(2).all(|w| w[0] >= w[1]) && sb.iter().all(|&x| x >= 0.0));
            for i in 0..m {
                for j in 0..n {
                    let r: f64 = (0..p)
                        .map(|q| ub[i * uc + q] * sb[q] * vb[j * vc + q])
                        .sum();
                    assert!((r - av[b * m * n + i * n + j]).abs() < 1e-10);
                }
            }
            for (mat, rows, cols) in [(ub, m, uc), (vb, n, vc)] {
                for c1 in 0..cols {
                    for c2 in 0..cols {
                        let dot: f64 = (0..rows)
                            .map(|r| mat[r * cols + c1] * mat[r * cols + c2])
                            .sum();
                        let want = if c1 == c2 { 1.0 } else { 0.0 };
                        assert!((dot - want).abs() < 1e-10, "columns {c1},{c2}: {dot}");
                    }
                }
            }
        }
    }

    #[test]
    fn svd_of_batches_wide_and_tall() {
        for shape in [[2, 4, 3], [3, 2, 5]] {
            let a = random(&shape, 7);
            check_svd(&a, false);
            check_svd(&a, true);
        }
    }

    #[test]
    fn svd_without_vectors_and_of_empty_matrices() {
        let mut g = Graph::new();
        let a = random(&[2, 3, 2], 9).cast(DType::Float32).unwrap();
        let x = g.constant(a).unwrap();
        let (s, u, v) = g.svd(x, false, false).unwrap();
        let (s2, _, _) = g.svd(x, true, true).unwrap();
        assert_eq!(g.shape(u), &PartialShape::known(&[0]));
        let e = g.constant(Tensor::zeros(DType::Float64, &[0, 3])).unwrap();
        let (es, eu, ev) = g.svd(e, true, true).unwrap();
        let out = run(&g, &[s, u, v, s2, es, eu, ev]);
        assert_eq!(out[0].shape(), &[2, 2]);
        assert_eq!((out[1].shape(), out[2].shape()), (&[0][..], &[0][..]));
        assert_close(&f64s(&out[0]), &f64s(&out[3]), 1e-5);
        // tf.linalg.svd(tf.zeros([0,3]), full_matrices=True): s [0], u [0,0], v = eye(3)
        assert_eq!(out[4].shape(), &[0]);
        assert_eq!(out[5].shape(), &[0, 0]);
        assert_eq!(f64s(&out[6]), vec![1., 0., 0., 0., 1., 0., 0., 0., 1.]);
        let i = g.constant(Tensor::from([[1i32]])).unwrap();
        assert!(g
            .svd(i, false, true)
            .unwrap_err()
            .to_string()
            .contains("Cast"));
        let r1 = g.constant(Tensor::from([1f32])).unwrap();
        assert!(g
            .svd(r1, false, true)
            .unwrap_err()
            .to_string()
            .contains("rank 2"));
    }
}

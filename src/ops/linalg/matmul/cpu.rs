//! MatMul's CPU kernels: the product (faer for floats, a blocked loop for integers), and
//! the fused products the plan makes of MatMul and the op that reads it.

use super::matmul_dims;
use crate::device::gemm::{gemm_to_vec, gemm_to_vec_then};
use crate::device::parallel::MIN_PRODUCT_WORK;
use crate::graph::{AttrsExt, Node};
use crate::ops::math::activation::{relu, relu6};
use crate::ops::math::cwise_grad::{relu6_grad, relu_grad};
use crate::ops::{kernel_fn, KernelBuildCtx, KernelResult};
use crate::tensor::{alloc, DType, Element, Number, Tensor};
use crate::{with_dtype, Error};
use std::ops::Range;

pub(super) fn matmul_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let ta = ctx.attrs().bool_or("transpose_a", false)?;
    let tb = ctx.attrs().bool_or("transpose_b", false)?;
    with_dtype!(number, ctx.input_dtype(0), T => kernel_fn(move |k| {
        let (a, b) = (k.input(0)?, k.input(1)?);
        let dims = matmul_dims(a.shape(), b.shape(), ta, tb)?;
        alloc::checked_len(T::DTYPE, &[dims.m, dims.n])?;
        let threads = k.threads_for_work(dims.work(), MIN_PRODUCT_WORK);
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
        alloc::checked_len(T::DTYPE, &[dims.m, dims.n])?;
        let (a, b) = (a.as_slice::<T>()?, b.as_slice::<T>()?);
        let threads = k.threads_for_work(dims.work(), MIN_PRODUCT_WORK);
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
pub(crate) fn add_bias_then<'a, T: Number>(
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

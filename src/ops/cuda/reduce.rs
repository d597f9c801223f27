//! Reductions on the GPU (Sum, Mean, Max, Min, Prod over any axes; BiasAddGrad): the
//! template in `reduce.cu` with each reduction's initial value, combine step and final
//! step (a table below), one block per output element.

use super::{c_type, gpu, launch, per_block, source, unsupported, Dims8, FLOATS, GPU};
use crate::device::cuda::{cuda_error, Gpu};
use crate::graph::AttrsExt;
use crate::kernel::{kernel_fn, KernelBuildCtx, KernelDef, KernelResult};
use crate::ops::nn::window::DataFormat;
use crate::ops::reduce::engine::{reduced_axes, reduced_shape};
use crate::ops::Registry;
use crate::tensor::{DType, Tensor};
use crate::{Error, Result};
use cudarc::driver::CudaFunction;
use std::sync::Arc;

const TEMPLATE: &str = include_str!("reduce.cu");

/// Reductions: (op, initial value, combine of `a` and `b`, final value of `acc` and
/// `count`). `$LOWEST`/`$HIGHEST` are the dtype's infinities.
const REDUCTIONS: &[(&str, &str, &str, &str)] = &[
    ("Sum", "0", "a + b", "acc"),
    ("Mean", "0", "a + b", "acc / ($T)count"),
    ("Max", "$LOWEST", "a > b ? a : b", "acc"),
    ("Min", "$HIGHEST", "a < b ? a : b", "acc"),
    ("Prod", "1", "a * b", "acc"),
];

pub(super) fn register(r: &mut Registry) {
    for &(op, ..) in REDUCTIONS {
        r.kernel(
            KernelDef::new(op, GPU, reduce_kernel)
                .type_constraint(FLOATS)
                .host_memory(&[1]),
        );
    }
    r.kernel(KernelDef::new("BiasAddGrad", GPU, bias_add_grad_kernel).type_constraint(FLOATS));
}

/// The source of reduction `op` on `dt`.
fn generated(op: &str, dt: DType) -> Option<String> {
    let &(_, init, combine, fin) = REDUCTIONS.iter().find(|r| r.0 == op)?;
    let inf = "(($T)INFINITY)";
    let init = init
        .replace("$LOWEST", &format!("-{inf}"))
        .replace("$HIGHEST", inf);
    Some(source(
        TEMPLATE,
        &[
            ("INIT", &init),
            ("COMBINE", combine),
            ("FINAL", fin),
            ("T", c_type(dt)),
        ],
    ))
}

fn function(gpu: &Gpu, op: &str, dt: DType) -> std::result::Result<CudaFunction, String> {
    let src = generated(op, dt).ok_or_else(|| unsupported(op, dt))?;
    gpu.function(&format!("reduce/{op}/{dt}"), "k", || src)
        .map_err(|e| e.to_string())
}

/// Reduces `x` over the axes flagged in `reduced` into a tensor of `out_shape` (which has
/// the kept axes' elements in order).
fn reduce(
    gpu: &Arc<Gpu>,
    f: &CudaFunction,
    x: &Tensor,
    reduced: &[bool],
    out_shape: &[usize],
) -> Result<Tensor> {
    gpu.bind()?;
    let (out, po) = gpu.alloc(x.dtype(), out_shape)?;
    let outputs = out.len();
    if outputs == 0 {
        return Ok(out);
    }
    let shape = x.shape();
    let mut strides = vec![1usize; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        strides[i] = strides[i + 1] * shape[i + 1];
    }
    let pick = |keep: bool| -> (Vec<usize>, Vec<usize>) {
        (0..shape.len())
            .filter(|&i| reduced[i] != keep)
            .map(|i| (shape[i], strides[i]))
            .unzip()
    };
    let (kdims, kstrides) = pick(true);
    let (rdims, rstrides) = pick(false);
    let count: usize = rdims.iter().product();
    // An empty input reduces to the initial value (its address is never read).
    let px = if x.is_empty() { 0 } else { gpu.address(x)? };
    let (outputs64, count64) = (outputs as i64, count as i64);
    let (krank, rrank) = (kdims.len() as i32, rdims.len() as i32);
    let (kd, ks) = (Dims8::new(&kdims)?, Dims8::new(&kstrides)?);
    let (rd, rs) = (Dims8::new(&rdims)?, Dims8::new(&rstrides)?);
    launch!(
        gpu,
        f,
        per_block(outputs),
        "reduction kernel",
        [&px, &po, &outputs64, &count64, &krank, &kd, &ks, &rrank, &rd, &rs]
    );
    Ok(out)
}

fn reduce_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let op = ctx.node.op().kernel_op();
    let dt = ctx.input_dtype(0);
    let keep_dims = ctx.attrs().bool_or("keep_dims", false)?;
    let gpu = gpu(ctx)?;
    let f = function(&gpu, op, dt)?;
    kernel_fn(move |k| {
        let x = k.input(0)?;
        let axes = k.input(1)?.to_i64_vec()?;
        let reduced = reduced_axes(&axes, x.rank()).map_err(Error::invalid)?;
        let out_shape = reduced_shape(x.shape(), &reduced, keep_dims, 1);
        let out = reduce(&gpu, &f, x, &reduced, &out_shape)?;
        k.push_output(out);
        Ok(())
    })
}

/// Whether the node's `data_format` puts channels at axis 1 (`NCHW`).
pub(super) fn channels_first(ctx: &KernelBuildCtx<'_>) -> std::result::Result<bool, String> {
    Ok(DataFormat::from_attrs(ctx.attrs())? == DataFormat::Nchw)
}

/// The channel axis of a rank-`rank` BiasAdd operand.
pub(super) fn channel_axis(rank: usize, channels_first: bool) -> Result<usize> {
    if rank < 2 {
        return Err(Error::invalid(format!(
            "Input tensor must be at least 2D, but has rank {rank}"
        )));
    }
    Ok(if channels_first { 1 } else { rank - 1 })
}

/// BiasAddGrad: the sum over every axis but the channel axis.
fn bias_add_grad_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let dt = ctx.input_dtype(0);
    let channels_first = channels_first(ctx)?;
    let gpu = gpu(ctx)?;
    let f = function(&gpu, "Sum", dt)?;
    kernel_fn(move |k| {
        let x = k.input(0)?;
        let axis = channel_axis(x.rank(), channels_first)?;
        let reduced: Vec<bool> = (0..x.rank()).map(|i| i != axis).collect();
        let out = reduce(&gpu, &f, x, &reduced, &[x.shape()[axis]])?;
        k.push_output(out);
        Ok(())
    })
}

/// Every source this family generates, by cache key (for the NVRTC test).
#[cfg(test)]
pub(super) fn all_sources() -> Vec<(String, String)> {
    let mut v = Vec::new();
    for &(op, ..) in REDUCTIONS {
        for &dt in FLOATS {
            v.push((format!("reduce/{op}/{dt}"), generated(op, dt).unwrap()));
        }
    }
    v
}

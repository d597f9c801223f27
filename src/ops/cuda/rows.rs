//! Row-wise GPU kernels over the last axis: Softmax, LogSoftmax and both softmax
//! cross-entropies (`rows.cu`, one block per row).

use super::{c_type, gpu, launch, per_block, section, source, FLOATS, GPU};
use crate::device::cuda::{cuda_error, Gpu};
use crate::kernel::{kernel_fn, KernelBuildCtx, KernelDef, KernelResult};
use crate::ops::Registry;
use crate::tensor::{DType, Tensor};
use crate::{Error, Result};
use cudarc::driver::CudaFunction;

const TEMPLATE: &str = include_str!("rows.cu");

/// Label dtypes of SparseSoftmaxCrossEntropyWithLogits.
const LABELS: &[DType] = &[DType::Int32, DType::Int64];

pub(super) fn register(r: &mut Registry) {
    for op in ["Softmax", "LogSoftmax"] {
        r.kernel(KernelDef::new(op, GPU, softmax_kernel).type_constraint(FLOATS));
    }
    for op in [
        "SparseSoftmaxCrossEntropyWithLogits",
        "SoftmaxCrossEntropyWithLogits",
    ] {
        r.kernel(KernelDef::new(op, GPU, xent_kernel).type_constraint(FLOATS));
    }
}

fn generated(family: &str, dt: DType, labels: DType) -> String {
    source(
        section(TEMPLATE, family),
        &[("T", c_type(dt)), ("L", c_type(labels))],
    )
}

fn function(
    gpu: &Gpu,
    family: &str,
    dt: DType,
    labels: DType,
) -> std::result::Result<CudaFunction, String> {
    gpu.function(&format!("rows/{family}/{dt}/{labels}"), "k", || {
        generated(family, dt, labels)
    })
    .map_err(|e| e.to_string())
}

/// Rows and columns of a `[..., cols]` tensor (rank at least 1).
fn rows_cols(op: &str, x: &Tensor) -> Result<(usize, usize)> {
    let cols = *x
        .shape()
        .last()
        .ok_or_else(|| Error::invalid(format!("{op} needs logits of rank at least 1")))?;
    let rows = x.shape()[..x.rank() - 1].iter().product();
    Ok((rows, cols))
}

fn softmax_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let log = ctx.node.op().kernel_op() == "LogSoftmax";
    let dt = ctx.input_dtype(0);
    let gpu = gpu(ctx)?;
    let f = function(&gpu, "softmax", dt, dt)?;
    kernel_fn(move |k| {
        let x = k.input(0)?;
        let (rows, cols) = rows_cols("Softmax", x)?;
        gpu.bind()?;
        let (out, po) = gpu.alloc(dt, x.shape())?;
        if rows * cols > 0 {
            let px = gpu.address(x)?;
            let (r64, c64, l) = (rows as i64, cols as i64, log as i32);
            launch!(
                gpu,
                f,
                per_block(rows),
                "softmax kernel",
                [&px, &po, &r64, &c64, &l]
            );
        }
        k.push_output(out);
        Ok(())
    })
}

/// Both softmax cross-entropies: the loss of each row of 2-D logits and the backprop;
/// the labels are one class index per row (sparse) or a distribution per row.
fn xent_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let sparse = ctx.node.op().kernel_op() == "SparseSoftmaxCrossEntropyWithLogits";
    let (dt, lt) = (ctx.input_dtype(0), ctx.input_dtype(1));
    if sparse && !LABELS.contains(&lt) {
        return Err(format!("labels must be int32 or int64, got {lt}"));
    }
    let gpu = gpu(ctx)?;
    let f = function(&gpu, if sparse { "sparse_xent" } else { "xent" }, dt, lt)?;
    kernel_fn(move |k| {
        let (x, labels) = (k.input(0)?, k.input(1)?);
        let labels_fit = if sparse {
            x.rank() == 2 && labels.shape() == [x.shape()[0]]
        } else {
            x.rank() == 2 && labels.shape() == x.shape()
        };
        if !labels_fit {
            return Err(Error::invalid(format!(
                "the GPU kernel needs 2-D logits and {}: logits {:?}, labels {:?}",
                if sparse {
                    "one label per row"
                } else {
                    "labels of the same shape"
                },
                x.shape(),
                labels.shape()
            )));
        }
        let (rows, cols) = (x.shape()[0], x.shape()[1]);
        gpu.bind()?;
        let (loss, pl) = gpu.alloc(dt, &[rows])?;
        let (back, pb) = gpu.alloc(dt, x.shape())?;
        if rows > 0 {
            // Empty operands (no classes: every loss is an empty sum) are never read.
            let px = if x.is_empty() { 0 } else { gpu.address(x)? };
            let py = if labels.is_empty() {
                0
            } else {
                gpu.address(labels)?
            };
            let (r64, c64) = (rows as i64, cols as i64);
            launch!(
                gpu,
                f,
                per_block(rows),
                "cross-entropy kernel",
                [&px, &py, &pl, &pb, &r64, &c64]
            );
        }
        k.push_output(loss);
        k.push_output(back);
        Ok(())
    })
}

/// Every source this family generates, by cache key (for the NVRTC test).
#[cfg(test)]
pub(super) fn all_sources() -> Vec<(String, String)> {
    let mut v = Vec::new();
    for &dt in FLOATS {
        v.push((format!("rows/softmax/{dt}"), generated("softmax", dt, dt)));
        v.push((format!("rows/xent/{dt}"), generated("xent", dt, dt)));
        for &lt in LABELS {
            v.push((
                format!("rows/sparse_xent/{dt}/{lt}"),
                generated("sparse_xent", dt, lt),
            ));
        }
    }
    v
}

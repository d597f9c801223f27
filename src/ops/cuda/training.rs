//! Optimizer updates on the GPU (ApplyGradientDescent, ApplyAdam): the variables'
//! device memory is updated in place by one kernel of `training.cu`; the hyper-parameters
//! are read on the device (no host round trip).

use super::{c_type, gpu, grid, launch, section, source, FLOATS, GPU};
use crate::device::cuda::{cuda_error, Gpu};
use crate::graph::AttrsExt;
use crate::kernel::resource::Variable;
use crate::kernel::{kernel_fn, KernelBuildCtx, KernelCtx, KernelDef, KernelResult};
use crate::ops::Registry;
use crate::tensor::{DType, Tensor};
use crate::{Error, Result};
use cudarc::driver::CudaFunction;
use std::sync::Arc;

const TEMPLATE: &str = include_str!("training.cu");

pub(super) fn register(r: &mut Registry) {
    r.kernel(KernelDef::new("ApplyGradientDescent", GPU, gd_kernel).type_constraint(FLOATS));
    r.kernel(KernelDef::new("ApplyAdam", GPU, adam_kernel).type_constraint(FLOATS));
}

fn generated(family: &str, dt: DType) -> String {
    source(section(TEMPLATE, family), &[("T", c_type(dt))])
}

fn function(gpu: &Gpu, family: &str, dt: DType) -> std::result::Result<CudaFunction, String> {
    gpu.function(&format!("training/{family}/{dt}"), "k", || {
        generated(family, dt)
    })
    .map_err(|e| e.to_string())
}

/// Runs `f` on the address of `var`'s value, updated in place: copied first when another
/// tensor still shares it (copy on write, as `Tensor::modify` does on the host).
fn in_place(
    gpu: &Arc<Gpu>,
    var: &Variable,
    f: impl FnOnce(u64, &Tensor) -> Result<()>,
) -> Result<Tensor> {
    var.update(|t| {
        if !t.is_unique() {
            *t = gpu.duplicate(t)?;
        }
        let address = gpu.address(t)?;
        f(address, t)
    })
}

/// The address of input `i`, which must have `shape` (a gradient or slot) or be a scalar.
fn operand(gpu: &Gpu, k: &KernelCtx<'_>, i: usize, shape: Option<&[usize]>) -> Result<u64> {
    let t = k.input(i)?;
    let ok = match shape {
        Some(s) => t.shape() == s,
        None => t.len() == 1,
    };
    if !ok {
        return Err(Error::invalid(format!(
            "input {i} has shape {:?}, but {} is needed",
            t.shape(),
            shape.map_or("a scalar".to_string(), |s| format!("{s:?}"))
        )));
    }
    gpu.address(t)
}

fn gd_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let var = ctx.variable(0)?;
    let dt = ctx.input_dtype(1);
    let gpu = gpu(ctx)?;
    let f = function(&gpu, "sgd", dt)?;
    kernel_fn(move |k| {
        gpu.bind()?;
        let out = in_place(&gpu, &var, |pv, t| {
            let pa = operand(&gpu, k, 1, None)?;
            let pd = operand(&gpu, k, 2, Some(t.shape()))?;
            let n = t.len() as i64;
            if n > 0 {
                launch!(
                    gpu,
                    f,
                    grid(t.len()),
                    "gradient descent kernel",
                    [&pv, &pa, &pd, &n]
                );
            }
            Ok(())
        })?;
        k.push_output(out);
        Ok(())
    })
}

fn adam_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let vars: Vec<Arc<Variable>> = (0..3)
        .map(|i| ctx.variable(i))
        .collect::<std::result::Result<_, _>>()?;
    let nesterov = i32::from(ctx.attrs().bool_or("use_nesterov", false)?);
    let dt = ctx.input_dtype(3);
    let gpu = gpu(ctx)?;
    let f = function(&gpu, "adam", dt)?;
    kernel_fn(move |k| {
        gpu.bind()?;
        let (var, m, v) = (&vars[0], &vars[1], &vars[2]);
        let shape = var.read()?.shape().to_vec();
        let mut slots = [0u64; 2];
        for (slot, address) in [m, v].into_iter().zip(&mut slots) {
            in_place(&gpu, slot, |p, t| {
                if t.shape() != shape {
                    return Err(Error::invalid(format!(
                        "slot {} has shape {:?}, which does not match var {shape:?}",
                        slot.name(),
                        t.shape()
                    )));
                }
                *address = p;
                Ok(())
            })?;
        }
        let [pm, pv_] = slots;
        let out = in_place(&gpu, var, |pv, t| {
            let scalars = (3..9)
                .map(|i| operand(&gpu, k, i, None))
                .collect::<Result<Vec<u64>>>()?;
            let pg = operand(&gpu, k, 9, Some(t.shape()))?;
            let n = t.len() as i64;
            if n > 0 {
                launch!(
                    gpu,
                    f,
                    grid(t.len()),
                    "Adam kernel",
                    [
                        &pv,
                        &pm,
                        &pv_,
                        &scalars[0],
                        &scalars[1],
                        &scalars[2],
                        &scalars[3],
                        &scalars[4],
                        &scalars[5],
                        &pg,
                        &n,
                        &nesterov
                    ]
                );
            }
            Ok(())
        })?;
        k.push_output(out);
        Ok(())
    })
}

/// Every source this family generates, by cache key (for the NVRTC test).
#[cfg(test)]
pub(super) fn all_sources() -> Vec<(String, String)> {
    let mut v = Vec::new();
    for &dt in FLOATS {
        for family in ["sgd", "adam"] {
            v.push((format!("training/{family}/{dt}"), generated(family, dt)));
        }
    }
    v
}

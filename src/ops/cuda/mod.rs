//! Kernels of the `GPU` device type (feature `cuda`), registered in the same
//! [`KernelRegistry`](crate::kernel::KernelRegistry) as the CPU kernels.
//!
//! Elementwise, reduction, row-wise (softmax, cross-entropy) and optimizer kernels are CUDA
//! C generated from one template per family (`*.cu` beside this file, sections between
//! `$BEGIN name` and `$END`) and an op table (op → C expression) in each family's module;
//! NVRTC compiles each (op, dtype) once per process when a plan first needs it
//! (`Gpu::function`). Matrix products call cuBLAS. Kernels that only look at shapes
//! (Reshape, Shape, Identity, variables) reuse the CPU kernels: they never read elements.
//!
//! Integer ops stay on the CPU (as TensorFlow keeps int32 in host memory): they compute
//! shapes and indices, and moving them to the GPU would add round trips.

mod elementwise;
mod matmul;
mod plumbing;
mod reduce;
mod rows;
mod training;

use super::Registry;
use crate::device::cuda::{Gpu, GpuDevice};
use crate::kernel::KernelBuildCtx;
use crate::tensor::DType;
use crate::{Error, Result};
use cudarc::driver::{DeviceRepr, LaunchConfig};
use std::sync::Arc;

pub use crate::device::cuda::GPU;

/// Element types of the float kernels.
const FLOATS: &[DType] = &[DType::Float32, DType::Float64];

/// Every element type GPU memory holds (strings and resource handles stay on the host).
const ELEMENTS: &[DType] = &[
    DType::Float32,
    DType::Float64,
    DType::Int32,
    DType::Int64,
    DType::UInt8,
    DType::Bool,
];

/// What every generated kernel starts with.
const COMMON: &str = include_str!("common.cuh");

/// Registers every GPU kernel.
pub(super) fn register(r: &mut Registry) {
    elementwise::register(r);
    reduce::register(r);
    matmul::register(r);
    rows::register(r);
    training::register(r);
    plumbing::register(r);
}

/// Up to eight dimensions or strides, passed to a kernel by value (`Dims8` in
/// `common.cuh`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Dims8 {
    v: [i64; 8],
}

// SAFETY: a plain `#[repr(C)]` array of i64, the layout of `struct Dims8` in common.cuh.
unsafe impl DeviceRepr for Dims8 {}

/// The largest rank the generated kernels index.
const MAX_RANK: usize = 8;

impl Dims8 {
    fn new(values: &[usize]) -> Result<Dims8> {
        if values.len() > MAX_RANK {
            return Err(Error::invalid(format!(
                "GPU kernels handle tensors of rank at most {MAX_RANK}, not {}",
                values.len()
            )));
        }
        let mut d = Dims8::default();
        for (slot, &x) in d.v.iter_mut().zip(values) {
            *slot = x as i64;
        }
        Ok(d)
    }
}

/// The CUDA C name of an element type of [`ELEMENTS`] (every kernel's type constraint
/// keeps strings away from the GPU).
fn c_type(dtype: DType) -> &'static str {
    match dtype {
        DType::String | DType::Resource | DType::Variant => {
            unreachable!("no GPU kernel is registered for strings or resource handles")
        }
        DType::Float32 => "float",
        DType::Float64 => "double",
        DType::Int32 => "int",
        DType::Int64 => "long long",
        DType::UInt8 => "unsigned char",
        DType::Bool => "bool",
    }
}

/// The section `name` of a template file (between `// $BEGIN name` and `// $END`).
fn section<'a>(file: &'a str, name: &str) -> &'a str {
    let begin = format!("// $BEGIN {name}\n");
    let start = file
        .find(&begin)
        .map(|i| i + begin.len())
        .unwrap_or_else(|| panic!("template section {name} is missing"));
    let len = file[start..].find("// $END").expect("every section ends");
    &file[start..start + len]
}

/// A kernel source: the common header, then `template` with every `$KEY` replaced (longer
/// keys first, so `$TA` is not read as `$T` followed by `A`).
fn source(template: &str, subs: &[(&str, &str)]) -> String {
    let mut subs = subs.to_vec();
    subs.sort_by_key(|(k, _)| std::cmp::Reverse(k.len()));
    let mut body = template.to_string();
    for (k, v) in subs {
        body = body.replace(&format!("${k}"), v);
    }
    format!("{COMMON}\n{body}")
}

/// The GPU a kernel is being built for.
fn gpu(ctx: &KernelBuildCtx<'_>) -> std::result::Result<Arc<Gpu>, String> {
    GpuDevice::of(ctx.device)
}

/// Threads per block of every kernel (the block reductions assume it).
const BLOCK: u32 = 256;

/// A grid-stride launch over `n` elements.
fn grid(n: usize) -> LaunchConfig {
    let blocks = n.div_ceil(BLOCK as usize).clamp(1, 1 << 16) as u32;
    LaunchConfig {
        grid_dim: (blocks, 1, 1),
        block_dim: (BLOCK, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// One block per item (row or output element), up to 65,535 blocks striding over the rest.
fn per_block(items: usize) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (items.clamp(1, 65_535) as u32, 1, 1),
        block_dim: (BLOCK, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// Queues a launch built by `args` (which pushes the kernel's arguments) on the GPU's
/// stream.
macro_rules! launch {
    ($gpu:expr, $f:expr, $cfg:expr, $what:expr, [$($arg:expr),* $(,)?]) => {{
        use cudarc::driver::PushKernelArg;
        let mut b = $gpu.stream().launch_builder(&$f);
        $( b.arg($arg); )*
        // SAFETY: the arguments match the generated kernel's parameters (its template),
        // device addresses are live chunks of this GPU, and the element counts bound
        // every index the kernel reads or writes.
        unsafe { b.launch($cfg) }.map_err(|e| cuda_error($what, e))?;
    }};
}
use launch;

/// A kernel's error for a dtype it was not generated for.
fn unsupported(op: &str, dtype: DType) -> String {
    format!("no GPU kernel of {op} for dtype {dtype}")
}

/// Every generated source of every family, by cache key: what the NVRTC test compiles.
#[cfg(test)]
pub(crate) fn all_sources() -> Vec<(String, String)> {
    let mut v = elementwise::all_sources();
    v.extend(reduce::all_sources());
    v.extend(rows::all_sources());
    v.extend(training::all_sources());
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_cut_into_sections_and_filled_longest_key_first() {
        let t = "x\n// $BEGIN a\n$TA $T\n// $END\n// $BEGIN b\nno\n// $END\n";
        assert_eq!(section(t, "a"), "$TA $T\n");
        let s = source(section(t, "a"), &[("T", "float"), ("TA", "int")]);
        assert!(s.ends_with("int float\n"), "{s}");
        assert!(s.starts_with(COMMON));
    }

    /// Every generated kernel compiles with NVRTC (run where libnvrtc loads; a GPU is not
    /// needed). `gpu/check.sh` runs it on the lent machine; here it runs when
    /// LD_LIBRARY_PATH holds libnvrtc.so.13 (pip's `nvidia-cuda-nvrtc` wheel has it).
    #[test]
    fn every_generated_kernel_compiles_with_nvrtc() {
        // SAFETY: only tries to load the library.
        if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
            println!(
                "skipped: libnvrtc.so.13 not found (set LD_LIBRARY_PATH to check the kernels)"
            );
            return;
        }
        let sources = all_sources();
        assert!(sources.len() > 100, "{}", sources.len());
        let failed: Vec<String> = sources
            .iter()
            .filter_map(|(key, src)| {
                cudarc::nvrtc::compile_ptx(src)
                    .err()
                    .map(|e| format!("{key}: {e:?}"))
            })
            .collect();
        assert!(
            failed.is_empty(),
            "{} of {} failed:\n{}",
            failed.len(),
            sources.len(),
            failed.join("\n")
        );
        println!("{} generated kernels compiled", sources.len());
    }
}

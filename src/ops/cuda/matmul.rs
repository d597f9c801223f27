//! Matrix products on the GPU through cuBLAS: MatMul (`transpose_a`/`transpose_b`) and
//! BatchMatMulV2 (`adj_x`/`adj_y`, batch dims broadcast when one side has a single batch).
//!
//! cuBLAS is column-major and our tensors row-major: a row-major `C = op(A)·op(B)` is the
//! column-major `Cᵀ = op(B)ᵀ·op(A)ᵀ`, and a row-major matrix read column-major is its
//! transpose, so the call passes B before A with the same transpose flags and the
//! dimensions swapped (no copy). TF32 is off unless `RUSTFLOW_GPU_TF32=1`.

use super::{gpu, GPU};
use crate::device::cpu::broadcast_shape;
use crate::device::cuda::{cuda_error, Gpu};
use crate::graph::AttrsExt;
use crate::kernel::{kernel_fn, KernelBuildCtx, KernelDef, KernelResult};
use crate::ops::Registry;
use crate::tensor::{DType, Tensor};
use crate::{Error, Result};
use cudarc::cublas::{result as blas, sys};
use cudarc::driver::result as drv;
use std::sync::Arc;

const TYPES: &[DType] = &[DType::Float32, DType::Float64];

pub(super) fn register(r: &mut Registry) {
    r.kernel(KernelDef::new("MatMul", GPU, matmul_kernel).type_constraint(TYPES));
    r.kernel(KernelDef::new("BatchMatMulV2", GPU, batch_matmul_kernel).type_constraint(TYPES));
}

/// One (batched) product: `batch` row-major products `[m, k]·[k, n]`, operands stored as
/// `[rows, cols]` matrices (transposed when the flag says so), `stride_*` elements apart
/// (0: the same matrix for every product).
struct Gemm {
    m: usize,
    n: usize,
    k: usize,
    trans_a: bool,
    trans_b: bool,
    batch: usize,
    stride_a: usize,
    stride_b: usize,
}

fn op(t: bool) -> sys::cublasOperation_t {
    if t {
        sys::cublasOperation_t::CUBLAS_OP_T
    } else {
        sys::cublasOperation_t::CUBLAS_OP_N
    }
}

fn int(x: usize, what: &str) -> Result<i32> {
    i32::try_from(x).map_err(|_| Error::invalid(format!("{what} {x} is too large for cuBLAS")))
}

/// Queues the product into `c` (`batch·m·n` elements).
fn gemm(gpu: &Gpu, g: &Gemm, dt: DType, a: u64, b: u64, c: u64) -> Result<()> {
    let (m, n, k) = (int(g.m, "m")?, int(g.n, "n")?, int(g.k, "k")?);
    // Leading dimensions of the stored row-major matrices: their column counts.
    let lda = int(if g.trans_a { g.m } else { g.k }.max(1), "lda")?;
    let ldb = int(if g.trans_b { g.k } else { g.n }.max(1), "ldb")?;
    let ldc = int(g.n.max(1), "ldc")?;
    let batch = int(g.batch, "batch")?;
    let (sa, sb, sc) = (g.stride_a as i64, g.stride_b as i64, (g.m * g.n) as i64);
    if g.k == 0 {
        // An empty sum: zeros (cuBLAS is not asked to read empty operands).
        let bytes = g.batch * g.m * g.n * dt.size();
        // SAFETY: `c` holds `bytes` bytes on this GPU; stream-ordered.
        return unsafe { drv::memset_d8_async(c, 0, bytes, gpu.stream().cu_stream()) }
            .map_err(|e| cuda_error("cuMemsetD8Async", e));
    }
    gpu.with_blas(|h| {
        let h = *h.handle();
        let (ta, tb) = (op(g.trans_a), op(g.trans_b));
        // SAFETY: the operands hold the elements these dimensions and strides address
        // (checked by the callers from the tensors' shapes); the handle is bound to the
        // session's stream.
        unsafe {
            match dt {
                DType::Float32 => {
                    let (one, zero) = (1f32, 0f32);
                    blas::sgemm_strided_batched(
                        h,
                        tb,
                        ta,
                        n,
                        m,
                        k,
                        &one,
                        b as *const f32,
                        ldb,
                        sb,
                        a as *const f32,
                        lda,
                        sa,
                        &zero,
                        c as *mut f32,
                        ldc,
                        sc,
                        batch,
                    )
                }
                _ => {
                    let (one, zero) = (1f64, 0f64);
                    blas::dgemm_strided_batched(
                        h,
                        tb,
                        ta,
                        n,
                        m,
                        k,
                        &one,
                        b as *const f64,
                        ldb,
                        sb,
                        a as *const f64,
                        lda,
                        sa,
                        &zero,
                        c as *mut f64,
                        ldc,
                        sc,
                        batch,
                    )
                }
            }
        }
        .map_err(|e| cuda_error("cublasGemmStridedBatched", e))
    })
}

/// Runs `g` on tensors `a` and `b` into a new tensor of `out_shape`.
fn product(
    gpu: &Arc<Gpu>,
    g: &Gemm,
    a: &Tensor,
    b: &Tensor,
    out_shape: &[usize],
) -> Result<Tensor> {
    gpu.bind()?;
    let (out, pc) = gpu.alloc(a.dtype(), out_shape)?;
    if out.is_empty() {
        return Ok(out);
    }
    let pa = if a.is_empty() { 0 } else { gpu.address(a)? };
    let pb = if b.is_empty() { 0 } else { gpu.address(b)? };
    gemm(gpu, g, a.dtype(), pa, pb, pc)?;
    Ok(out)
}

fn matmul_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let trans_a = ctx.attrs().bool_or("transpose_a", false)?;
    let trans_b = ctx.attrs().bool_or("transpose_b", false)?;
    let gpu = gpu(ctx)?;
    kernel_fn(move |k| {
        let (a, b) = (k.input(0)?, k.input(1)?);
        let (sa, sb) = (a.shape(), b.shape());
        if sa.len() != 2 || sb.len() != 2 {
            return Err(Error::invalid(format!(
                "In[0] and In[1] must be matrices: {sa:?} {sb:?}"
            )));
        }
        let (m, ka) = if trans_a {
            (sa[1], sa[0])
        } else {
            (sa[0], sa[1])
        };
        let (kb, n) = if trans_b {
            (sb[1], sb[0])
        } else {
            (sb[0], sb[1])
        };
        if ka != kb {
            return Err(Error::invalid(format!(
                "Matrix size-incompatible: In[0]: {sa:?}, In[1]: {sb:?}"
            )));
        }
        let g = Gemm {
            m,
            n,
            k: ka,
            trans_a,
            trans_b,
            batch: 1,
            stride_a: 0,
            stride_b: 0,
        };
        let out = product(&gpu, &g, a, b, &[m, n])?;
        k.push_output(out);
        Ok(())
    })
}

fn batch_matmul_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let adj_x = ctx.attrs().bool_or("adj_x", false)?;
    let adj_y = ctx.attrs().bool_or("adj_y", false)?;
    let gpu = gpu(ctx)?;
    kernel_fn(move |k| {
        let (a, b) = (k.input(0)?, k.input(1)?);
        let (sa, sb) = (a.shape(), b.shape());
        if sa.len() < 2 || sb.len() < 2 {
            return Err(Error::invalid(format!(
                "BatchMatMulV2 needs operands of rank at least 2: {sa:?} {sb:?}"
            )));
        }
        let (ba, ma) = sa.split_at(sa.len() - 2);
        let (bb, mb) = sb.split_at(sb.len() - 2);
        let (m, ka) = if adj_x {
            (ma[1], ma[0])
        } else {
            (ma[0], ma[1])
        };
        let (kb, n) = if adj_y {
            (mb[1], mb[0])
        } else {
            (mb[0], mb[1])
        };
        if ka != kb {
            return Err(Error::invalid(format!(
                "Matrix size-incompatible: In[0]: {sa:?}, In[1]: {sb:?}"
            )));
        }
        let batch_shape = broadcast_shape(ba, bb)?;
        let batch: usize = batch_shape.iter().product();
        let (na, nb): (usize, usize) = (ba.iter().product(), bb.iter().product());
        // One side's matrices repeat for every product when it has a single batch; other
        // broadcasts would need a gather first.
        if (na != batch && na != 1) || (nb != batch && nb != 1) {
            return Err(Error::invalid(format!(
                "the GPU BatchMatMulV2 broadcasts a batch only when one side has a single \
                 matrix: {sa:?} {sb:?}"
            )));
        }
        let g = Gemm {
            m,
            n,
            k: ka,
            trans_a: adj_x,
            trans_b: adj_y,
            batch,
            stride_a: if na == 1 { 0 } else { m * ka },
            stride_b: if nb == 1 { 0 } else { ka * n },
        };
        let mut out_shape = batch_shape;
        out_shape.extend([m, n]);
        let out = product(&gpu, &g, a, b, &out_shape)?;
        k.push_output(out);
        Ok(())
    })
}

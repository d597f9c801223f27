//! Linear algebra: MatMul, BatchMatMulV2, Svd.

use super::math::{check_family, Family, InferResult, KernelResult};
use super::{kernel_fn, Cost, GradCtx, InferCtx, KernelBuildCtx, KernelCtx, Op, Registry};
use crate::device::cpu::{broadcast_shape, broadcast_strides};
use crate::device::gemm::{gemm, zeroed, GemmDims};
use crate::device::parallel::{for_each_units, threads_for};
use crate::graph::{AttrsExt, Graph, Output, TensorSpec};
use crate::tensor::{num_elements, DType, Dim, PartialShape, Tensor};
use crate::{with_dtype, Error, Result};
use faer::MatRef;

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
        let (sa, sb) = (a.shape(), b.shape());
        if sa.len() != 2 || sb.len() != 2 {
            return Err(Error::invalid(format!("In[0] and In[1] must be matrices: {sa:?}, {sb:?}")));
        }
        let (m, ka) = if ta { (sa[1], sa[0]) } else { (sa[0], sa[1]) };
        let (kb, n) = if tb { (sb[1], sb[0]) } else { (sb[0], sb[1]) };
        if ka != kb {
            return Err(Error::invalid(format!(
                "Matrix size-incompatible: In[0]: {sa:?}, In[1]: {sb:?}"
            )));
        }
        let mut out = zeroed::<T>(m * n);
        let dims = GemmDims { m, n, k: ka, trans_a: ta, trans_b: tb };
        gemm(dims, a.as_slice::<T>()?, b.as_slice::<T>()?, &mut out, k.intra_op_threads());
        k.push_output(Tensor::from_parts(vec![m, n], out));
        Ok(())
    }))
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
        let (ox, oy) = (batch_offsets(bx, &batch), batch_offsets(by, &batch));
        let (xs, ys) = (x.as_slice::<T>()?, y.as_slice::<T>()?);
        let mut out = zeroed::<T>(ox.len() * m * n);
        let work = out.len().saturating_mul(kx);
        let outer = threads_for(work, ox.len(), k.intra_op_threads());
        let inner = (k.intra_op_threads() / outer).max(1);
        let dims = GemmDims { m, n, k: kx, trans_a: adj_x, trans_b: adj_y };
        for_each_units(&mut out, m * n, outer, |batches, chunk| {
            for (b, dst) in batches.zip(chunk.chunks_exact_mut(m * n)) {
                let a = &xs[ox[b] * m * kx..(ox[b] + 1) * m * kx];
                let c = &ys[oy[b] * kx * n..(oy[b] + 1) * kx * n];
                gemm(dims, a, c, dst, inner);
            }
        });
        let mut shape = batch;
        shape.extend([m, n]);
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

/// Element types with a singular value decomposition (via faer).
trait SvdElement: crate::tensor::Float {
    /// Decomposes the row-major `m×n` matrix `a`: writes the descending singular values
    /// to `s`, and when `uv` is given, `U` (`m×m` or `m×p`) and `V` (`n×n` or `n×p`),
    /// row-major.
    fn svd(
        a: &[Self],
        m: usize,
        n: usize,
        s: &mut [Self],
        uv: Option<(&mut [Self], &mut [Self], bool)>,
    ) -> Result<()>;
}

/// Copies a faer matrix into a row-major slice.
fn copy_row_major<T: Copy>(src: MatRef<'_, T>, dst: &mut [T]) {
    let cols = src.ncols();
    for (i, row) in dst
        .chunks_exact_mut(cols.max(1))
        .enumerate()
        .take(src.nrows())
    {
        for (j, d) in row.iter_mut().enumerate().take(cols) {
            *d = *src.get(i, j);
        }
    }
}

macro_rules! svd_element {
    ($t:ty) => {
        impl SvdElement for $t {
            fn svd(
                a: &[Self],
                m: usize,
                n: usize,
                s: &mut [Self],
                uv: Option<(&mut [Self], &mut [Self], bool)>,
            ) -> Result<()> {
                let not_converged = |_| Error::invalid("Svd: the SVD algorithm did not converge");
                if m == 0 || n == 0 {
                    // Nothing to decompose: full U and V are identities, the rest is empty.
                    if let Some((u, v, _)) = uv {
                        for (x, d) in [(u, m), (v, n)] {
                            x.fill(0.0);
                            x.iter_mut().step_by(d + 1).for_each(|e| *e = 1.0);
                        }
                    }
                    return Ok(());
                }
                let mat = MatRef::from_row_major_slice(a, m, n);
                match uv {
                    None => s.copy_from_slice(&mat.singular_values().map_err(not_converged)?),
                    Some((u, v, full)) => {
                        let d =
                            if full { mat.svd() } else { mat.thin_svd() }.map_err(not_converged)?;
                        for (x, &y) in s.iter_mut().zip(d.S().column_vector().iter()) {
                            *x = y;
                        }
                        copy_row_major(d.U(), u);
                        copy_row_major(d.V(), v);
                    }
                }
                Ok(())
            }
        }
    };
}
svd_element!(f32);
svd_element!(f64);

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
            (zeroed::<T>(count * m * uc), zeroed::<T>(count * n * vc))
        } else {
            (Vec::new(), Vec::new())
        };
        let xs = x.as_slice::<T>()?;
        for b in 0..count {
            let a = &xs[b * m * n..(b + 1) * m * n];
            let sb = &mut s[b * p..(b + 1) * p];
            let uv = compute_uv.then(|| {
                (&mut u[b * m * uc..(b + 1) * m * uc], &mut v[b * n * vc..(b + 1) * n * vc], full)
            });
            T::svd(a, m, n, sb, uv)?;
        }
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
            .cost(Cost::Expensive)
            .grad(matmul_grad)
            .defaults(|| vec![("transpose_a", false.into()), ("transpose_b", false.into())]),
    );
    r.add(
        Op::new("BatchMatMulV2", infer_batch_matmul, batch_matmul_kernel)
            .cost(Cost::Expensive)
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

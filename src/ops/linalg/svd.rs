//! Svd: singular value decomposition of the inner matrices (faer), with TensorFlow's
//! gradient (`linalg_grad.py`).

use super::{matmul_any, output_len, split_matrix_dims};
use crate::device::gemm::zeroed;
use crate::graph::{AttrsExt, Graph, Output, TensorSpec};
use crate::ops::math::{check_family, Family};
use crate::ops::{kernel_fn, Cost, GradCtx, InferCtx, KernelBuildCtx, KernelCtx, Op, Registry};
use crate::ops::{InferResult, KernelResult};
use crate::tensor::Number;
use crate::tensor::{num_elements, Dim, PartialShape, Tensor};
use crate::{with_dtype, Error, Result};
use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::svd::{svd_scratch, ComputeSvdVectors};
use faer::traits::ComplexField;
use faer::{ColMut, MatMut, MatRef, Par};

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
            (zeroed::<T>(output_len::<T>(&[count, m, uc])?), zeroed::<T>(output_len::<T>(&[count, n, vc])?))
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

pub(super) fn register(r: &mut Registry) {
    r.add(
        Op::new("Svd", infer_svd, svd_kernel)
            .cost(Cost::Expensive)
            .grad(svd_grad)
            .defaults(|| vec![("compute_uv", true.into()), ("full_matrices", false.into())]),
    );
}

impl Graph {
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

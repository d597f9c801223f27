//! BatchMatMulV2: batched matrix products with NumPy broadcasting of the batch dims.

use super::{matmul_any, output_len, split_matrix_dims, MATMUL_TYPES};
use crate::device::cpu::{broadcast_shape, broadcast_strides};
use crate::device::gemm::{gemm, zeroed, GemmDims};
use crate::device::parallel::{for_each_units, threads_for, MIN_PRODUCT_WORK};
use crate::graph::{AttrsExt, Graph, Output, TensorSpec};
use crate::ops::{kernel_fn, Cost, GradCtx, InferCtx, KernelBuildCtx, KernelCtx, Op, Registry};
use crate::ops::{InferResult, KernelResult};
use crate::tensor::{num_elements, DType, Dim, PartialShape, Tensor};
use crate::{with_dtype, Error, Result};

/// What BroadcastGradientArgs computes, for batch shapes known at build time: the axes
/// of the broadcast shape that each operand's gradient is summed over (those where the
/// operand, padded with leading 1s, has size 1).
pub(super) fn static_reduction_axes(a: &[usize], b: &[usize]) -> [Vec<i32>; 2] {
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
        let mut shape = batch.clone();
        shape.extend([m, n]);
        let mut out = zeroed::<T>(output_len::<T>(&shape)?);
        if out.is_empty() {
            k.push_output(Tensor::from_parts(shape, out));
            return Ok(());
        }
        let (ox, oy) = (batch_offsets(bx, &batch), batch_offsets(by, &batch));
        let (xs, ys) = (x.as_slice::<T>()?, y.as_slice::<T>()?);
        let work = out.len().saturating_mul(kx);
        let dims = GemmDims { m, n, k: kx, trans_a: adj_x, trans_b: adj_y };
        let threads = k.threads_for_work(work, MIN_PRODUCT_WORK);
        let outer = threads_for(work, MIN_PRODUCT_WORK, ox.len(), threads);
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

pub(super) fn register(r: &mut Registry) {
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
}

impl Graph {
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
}

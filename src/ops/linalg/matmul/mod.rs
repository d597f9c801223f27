//! MatMul: definition (shape inference, gradient, builder), with its CPU kernels in
//! `cpu.rs` and the plan-time fusion rules that end in them in `fusion.rs`.

pub(crate) mod cpu;
pub(crate) mod fusion;

use super::MATMUL_TYPES;
use crate::device::gemm::GemmDims;
use crate::graph::{AttrsExt, Graph, Output, TensorSpec};
use crate::ops::{Cost, GradCtx, InferCtx, InferResult, Op, Registry};
use crate::tensor::PartialShape;
use crate::{Error, Result};

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

pub(super) fn register(r: &mut Registry) {
    r.add(
        Op::new("MatMul", infer_matmul, cpu::matmul_kernel)
            .cost(Cost::Contraction)
            .grad(matmul_grad)
            .defaults(|| vec![("transpose_a", false.into()), ("transpose_b", false.into())]),
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
}

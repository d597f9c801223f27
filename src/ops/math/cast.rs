//! The Cast op: element conversion as `Tensor::cast` performs it (TensorFlow's x86-64
//! `static_cast` results, see `tensor::cast`), plus the `Truncate` attr, which rounds
//! float64 → float32 toward zero.

use super::{kernel_fn, InferCtx, InferResult, KernelBuildCtx, KernelResult};
use crate::graph::{AttrsExt, Graph, Output, TensorSpec};
use crate::ops::{GradCtx, Op, Registry};
use crate::tensor::cast::truncate_f64;
use crate::tensor::{DType, Tensor};
use crate::Result;

fn infer_cast(ctx: &InferCtx<'_>) -> InferResult {
    ctx.expect_inputs(1)?;
    let dst = ctx.attrs().dtype("DstT")?;
    if let Ok(src) = ctx.attrs().dtype("SrcT") {
        if src != ctx.dtype(0) {
            return Err(format!(
                "attr SrcT is {src} but the input is {}",
                ctx.dtype(0)
            ));
        }
    }
    ctx.attrs().bool_or("Truncate", false)?;
    Ok(vec![TensorSpec::new(dst, ctx.shape(0).clone())])
}

fn cast_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let (src, dst) = (ctx.input_dtype(0), ctx.output_dtype(0));
    if src == dst {
        return kernel_fn(|k| {
            let x = k.take_input(0)?;
            k.push_output(x);
            Ok(())
        });
    }
    if src == DType::Float64 && dst == DType::Float32 && ctx.attrs().bool_or("Truncate", false)? {
        return kernel_fn(|k| {
            let x = k.input(0)?;
            let out: Vec<f32> = x
                .as_slice::<f64>()?
                .iter()
                .map(|&v| truncate_f64(v))
                .collect();
            k.push_output(Tensor::from_parts(x.shape().to_vec(), out));
            Ok(())
        });
    }
    kernel_fn(move |k| {
        let out = k.input(0)?.cast(dst)?;
        k.push_output(out);
        Ok(())
    })
}

/// TensorFlow's `_CastGrad`: a float-to-float Cast passes the gradient back Cast to the
/// source dtype; a Cast from or to any other dtype passes nothing.
fn cast_grad(ctx: &mut GradCtx<'_>) -> Result<Vec<Option<Output>>> {
    let (x, grad) = (ctx.input(0), ctx.grad(0));
    let g = &mut *ctx.graph;
    let (src, dst) = (g.dtype(x), g.dtype(grad));
    if src.is_float() && dst.is_float() {
        Ok(vec![Some(g.cast(grad, src)?)])
    } else {
        Ok(vec![None])
    }
}

pub(super) fn register(r: &mut Registry) {
    r.add(
        Op::new("Cast", infer_cast, cast_kernel)
            .grad(cast_grad)
            .defaults(|| vec![("Truncate", false.into())]),
    );
}

impl Graph {
    /// Converts to another dtype (`tf.cast`): floats truncate toward zero when converted to
    /// integers, integers wrap, anything non-zero becomes true.
    pub fn cast(&mut self, x: Output, dtype: DType) -> Result<Output> {
        let src = self.dtype(x);
        self.op("Cast")
            .input(x)
            .attr("SrcT", src)
            .attr("DstT", dtype)
            .attr("Truncate", false)
            .build_output()
    }
}

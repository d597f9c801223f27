//! TensorFlow 1 control flow, as `tf.compat.v1.while_loop` and `tf.compat.v1.cond` build it
//! with control flow v2 off: `Enter`, `Exit`, `Switch`, `Merge`, `NextIteration` and
//! `LoopCond`. A loop is a cycle in the graph (`Merge` reads its `NextIteration`, see
//! [`Graph::connect_back_edge`](crate::graph::Graph::connect_back_edge)) that the session
//! runs with TensorFlow's frame semantics (`session::frames`): `Enter` moves a value into
//! the loop's frame, `NextIteration` into the next iteration, `Exit` out to the parent
//! frame; `Switch` sends its value to one output and a dead tensor to the other, and
//! `Merge` forwards the first live one of its inputs. The kernels below compute the live
//! values; which outputs are dead is the executor's business.
//!
//! Shapes follow TensorFlow's shape functions: a non-constant `Enter` has an unknown
//! shape (the loop may change it), `Merge` keeps only what all its inputs agree on.
//!
//! Gradients through these frames (TensorFlow's `control_flow_grad.py`: a mirrored
//! gradient loop with stacks of the forward values) are not supported: the gradient pass
//! stops at the first such node on a path with an error naming it.

use super::{kernel_fn, Cost, InferCtx, InferResult, KernelBuildCtx, KernelResult, Op, Registry};
use crate::graph::{AttrValue, AttrsExt, GradCtx, Output, TensorSpec};
use crate::tensor::{DType, PartialShape};
use crate::{Error, Result};

fn infer_enter(ctx: &InferCtx<'_>) -> InferResult {
    ctx.expect_inputs(1)?;
    ctx.check_t_attr(ctx.dtype(0))?;
    let frame = ctx.attrs().string_or("frame_name", "")?;
    if frame.is_empty() {
        return Err("attr frame_name is empty; an Enter names the loop frame it enters".into());
    }
    let constant = ctx.attrs().bool_or("is_constant", false)?;
    if ctx.attrs().int_or("parallel_iterations", 10)? < 1 {
        return Err("attr parallel_iterations must be at least 1".into());
    }
    let shape = if constant {
        ctx.shape(0).clone()
    } else {
        PartialShape::unknown()
    };
    Ok(vec![TensorSpec::new(ctx.dtype(0), shape)])
}

/// `Exit`, `NextIteration`: the input, unchanged.
fn infer_forward(ctx: &InferCtx<'_>) -> InferResult {
    ctx.expect_inputs(1)?;
    ctx.check_t_attr(ctx.dtype(0))?;
    Ok(vec![ctx.input(0).clone()])
}

/// Errors unless input `i` is a bool that may be a scalar.
fn check_predicate(ctx: &InferCtx<'_>, i: usize) -> std::result::Result<(), String> {
    ctx.check_dtype(i, &[DType::Bool])?;
    match ctx.shape(i).rank() {
        Some(r) if r != 0 => Err(format!(
            "input {i} (the predicate) must be a scalar, not of shape {}",
            ctx.shape(i)
        )),
        _ => Ok(()),
    }
}

fn infer_loop_cond(ctx: &InferCtx<'_>) -> InferResult {
    ctx.expect_inputs(1)?;
    check_predicate(ctx, 0)?;
    Ok(vec![TensorSpec::new(DType::Bool, PartialShape::scalar())])
}

fn infer_switch(ctx: &InferCtx<'_>) -> InferResult {
    ctx.expect_inputs(2)?;
    ctx.check_t_attr(ctx.dtype(0))?;
    check_predicate(ctx, 1)?;
    Ok(vec![ctx.input(0).clone(), ctx.input(0).clone()])
}

fn infer_merge(ctx: &InferCtx<'_>) -> InferResult {
    ctx.expect_min_inputs(1)?;
    let dtype = ctx.same_dtype()?;
    ctx.check_t_attr(dtype)?;
    let n = ctx.attrs().int_or("N", ctx.num_inputs() as i64)?;
    if n != ctx.num_inputs() as i64 {
        return Err(format!(
            "attr N is {n} but the node has {} inputs",
            ctx.num_inputs()
        ));
    }
    // TensorFlow's MergeShape: the first input's dims where every input agrees.
    let mut shape = ctx.shape(0).clone();
    for s in &ctx.inputs()[1..] {
        shape = match (shape.dims(), s.shape.dims()) {
            (Some(a), Some(b)) if a.len() == b.len() => PartialShape::new(
                a.iter()
                    .zip(b)
                    .map(|(x, y)| if x == y { *x } else { None })
                    .collect(),
            ),
            _ => PartialShape::unknown(),
        };
    }
    Ok(vec![
        TensorSpec::new(dtype, shape),
        TensorSpec::new(DType::Int32, PartialShape::scalar()),
    ])
}

/// `Enter`, `Exit`, `NextIteration`, `LoopCond`: the input, moved on (to another frame or
/// iteration, which the executor sees to).
fn forward_kernel(_: &KernelBuildCtx<'_>) -> KernelResult {
    kernel_fn(|k| {
        let t = k.take_input(0)?;
        k.push_output(t);
        Ok(())
    })
}

/// `Switch`: the data on both outputs (`output_false`, `output_true`) once the predicate
/// is checked to be a bool scalar; the executor marks the output not taken dead.
fn switch_kernel(_: &KernelBuildCtx<'_>) -> KernelResult {
    kernel_fn(|k| {
        switch_taken(k.input(1)?)?;
        let t = k.take_input(0)?;
        k.push_output(t.clone());
        k.push_output(t);
        Ok(())
    })
}

/// The output a `Switch` with predicate `pred` sends its data to: 1 (`output_true`) when
/// the predicate is true, else 0.
pub(crate) fn switch_taken(pred: &crate::tensor::Tensor) -> crate::Result<usize> {
    if pred.dtype() != DType::Bool || !pred.shape().is_empty() {
        return Err(Error::invalid(format!(
            "the predicate of a Switch must be a bool scalar, not {} of shape {:?}",
            pred.dtype(),
            pred.shape()
        )));
    }
    Ok(usize::from(pred.scalar_value::<bool>()?))
}

/// `Merge`: the first input present (the executor leaves dead ones out) and its index.
fn merge_kernel(_: &KernelBuildCtx<'_>) -> KernelResult {
    kernel_fn(|k| {
        let i = (0..k.num_inputs())
            .find(|&i| k.input(i).is_ok())
            .ok_or_else(|| Error::invalid("every input of the Merge is dead"))?;
        let t = k.take_input(i)?;
        k.push_output(t);
        k.push_output(crate::tensor::Tensor::scalar(i as i32));
        Ok(())
    })
}

fn enter_defaults() -> Vec<(&'static str, AttrValue)> {
    vec![
        ("is_constant", AttrValue::Bool(false)),
        ("parallel_iterations", AttrValue::Int(10)),
    ]
}

/// The gradient of a TensorFlow 1 control-flow node: a refusal naming it (rather than the
/// pass's generic "no gradient defined", which would suggest a `stop_gradient`).
fn frame_grad(ctx: &mut GradCtx<'_>) -> Result<Vec<Option<Output>>> {
    let node = ctx.graph.node(ctx.node);
    Err(Error::invalid(format!(
        "gradients through TensorFlow 1 control flow (tf.compat.v1.while_loop / cond with \
         control flow v2 off) are not supported: '{}' ({}) lies on a path from the sources \
         to the targets. rustflow differentiates TensorFlow 2's functional While, If and \
         Case (control flow v2, TensorFlow's default since 2.0): build or export the model \
         with control flow v2",
        node.name(),
        node.op_type()
    )))
}

pub(crate) fn register(r: &mut Registry) {
    let ops = [
        Op::new("Enter", infer_enter, forward_kernel).defaults(enter_defaults),
        Op::new("Exit", infer_forward, forward_kernel),
        Op::new("NextIteration", infer_forward, forward_kernel),
        Op::new("LoopCond", infer_loop_cond, forward_kernel),
        Op::new("Switch", infer_switch, switch_kernel),
        Op::new("Merge", infer_merge, merge_kernel),
    ];
    for op in ops {
        r.add(op.cost(Cost::Cheap).grad(frame_grad));
    }
}

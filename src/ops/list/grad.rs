//! Gradients of the TensorList ops, as TensorFlow's `list_ops.py` defines them. The
//! gradient of a list is itself a list (a `DT_VARIANT` value) holding the gradient of each
//! item, an item not set standing for zeros:
//!
//! * `TensorListStack` → `TensorListFromTensor` of the gradient;
//! * `TensorListFromTensor` → `TensorListStack` of the list's gradient (zeros for items
//!   it never set, shaped like the tensor's rows);
//! * `TensorListGetItem` → a `TensorListReserve`'d list of the input's length holding the
//!   item's gradient at the index;
//! * `TensorListSetItem` → the list's gradient with zeros at the index (the old item was
//!   overwritten), and its item at the index for the item;
//! * `TensorListReserve`, `TensorListLength`, `TensorListElementShape`: none.
//!
//! Gradients of several uses of a list add up with `AddN` over lists, and a list that got
//! none is `ZerosLike` of it (both in `arith.rs`).

use crate::graph::{AttrsExt, GradCtx, Graph, Output};
use crate::ops::{Op, OpDef};
use crate::tensor::{DType, Tensor};
use crate::{Error, Result};

type GradResult = Result<Vec<Option<Output>>>;

/// A TensorList op over items of `element_dtype` (and int32 shapes).
fn list_op(g: &mut Graph, op: &str, inputs: &[Output], element_dtype: DType) -> Result<Output> {
    g.op(op)
        .inputs(inputs)
        .attr("element_dtype", element_dtype)
        .attr("shape_type", DType::Int32)
        .build_output()
}

/// TensorFlow's `_TensorListStackGrad`: the stacked gradient split into a list, its
/// element shape the gradient's rows' static shape.
fn stack_grad(ctx: &mut GradCtx<'_>) -> GradResult {
    let grad = ctx.grad(0);
    let g = &mut *ctx.graph;
    let dt = g.dtype(grad);
    let rows = match g.shape(grad).dims() {
        Some([_, rest @ ..]) => Tensor::vector(
            rest.iter()
                .map(|d| d.map_or(-1, |d| d as i32))
                .collect::<Vec<_>>(),
        ),
        _ => Tensor::scalar(-1i32),
    };
    let rows = g.constant(rows)?;
    let list = list_op(g, "TensorListFromTensor", &[grad, rows], dt)?;
    Ok(vec![Some(list), None])
}

/// TensorFlow's `_TensorListFromTensorGrad`: the list's gradient stacked, items it never
/// set read as zeros of the tensor's rows' shape.
fn from_tensor_grad(ctx: &mut GradCtx<'_>) -> GradResult {
    let (t, dlist) = (ctx.input(0), ctx.grad(0));
    let g = &mut *ctx.graph;
    let dt = g.dtype(t);
    let rows = match g.shape(t).dims().and_then(|d| d.first().copied()) {
        Some(Some(n)) => n as i64,
        _ => -1,
    };
    let shape = g.shape_of(t)?;
    let row_shape = g.slice(shape, &[1], &[-1])?;
    let stacked = g
        .op("TensorListStack")
        .inputs(&[dlist, row_shape])
        .attr("element_dtype", dt)
        .attr("num_elements", rows)
        .build_output()?;
    Ok(vec![Some(stacked), None])
}

/// TensorFlow's `_TensorListGetItemGrad`: a list as long as the input, of its element
/// shape, holding the item's gradient at the index and nothing elsewhere.
fn get_item_grad(ctx: &mut GradCtx<'_>) -> GradResult {
    let (list, index, ditem) = (ctx.input(0), ctx.input(1), ctx.grad(0));
    let g = &mut *ctx.graph;
    let dt = g.dtype(ditem);
    let len = list_op(g, "TensorListLength", &[list], dt)?;
    let shape = list_op(g, "TensorListElementShape", &[list], dt)?;
    let reserved = list_op(g, "TensorListReserve", &[shape, len], dt)?;
    let dlist = list_op(g, "TensorListSetItem", &[reserved, index, ditem], dt)?;
    Ok(vec![Some(dlist), None, None])
}

/// TensorFlow's `_TensorListSetItemGrad`: the list's gradient with zeros at the index goes
/// to the input list, its item at the index (zeros if unset) to the item.
fn set_item_grad(ctx: &mut GradCtx<'_>) -> GradResult {
    let (index, item, dlist) = (ctx.input(1), ctx.input(2), ctx.grad(0));
    let name = ctx.graph.node(ctx.node).name().to_string();
    let resize = ctx
        .attrs()
        .bool_or("resize_if_index_out_of_bounds", false)
        .map_err(|e| Error::invalid(format!("'{name}': {e}")))?;
    if resize {
        return Err(Error::invalid(format!(
            "the gradient of TensorListSetItem '{name}' with resize_if_index_out_of_bounds \
             is not supported (TensorFlow resizes it with TensorListResize, which rustflow \
             lacks)"
        )));
    }
    let g = &mut *ctx.graph;
    let dt = g.dtype(item);
    let zeros = g.zeros_like(item)?;
    let list_grad = list_op(g, "TensorListSetItem", &[dlist, index, zeros], dt)?;
    let shape = g.shape_of(item)?;
    let item_grad = list_op(g, "TensorListGetItem", &[dlist, index, shape], dt)?;
    Ok(vec![Some(list_grad), None, Some(item_grad)])
}

/// `op` with its gradient (every TensorList op has one or is marked not differentiable).
pub(super) fn with_gradient(op: Op) -> Op {
    match op.name() {
        "TensorListStack" => op.grad(stack_grad),
        "TensorListFromTensor" => op.grad(from_tensor_grad),
        "TensorListGetItem" => op.grad(get_item_grad),
        "TensorListSetItem" => op.grad(set_item_grad),
        _ => op.no_grad(),
    }
}

/// Gradient checks of the TensorList ops, alone and in a `While` loop that carries lists
/// as a Keras RNN does (lists as loop values, their gradients added with `AddN` and made
/// with `ZerosLike`).
#[cfg(test)]
pub(crate) fn gradient_cases() -> Vec<crate::test_util::GradCase> {
    use crate::graph::TensorSpec;
    use crate::tensor::PartialShape;
    use crate::test_util::{test_input, GradCase};
    const F: DType = DType::Float64;
    /// `op` over `inputs`, items float64.
    fn op(g: &mut Graph, op: &str, inputs: &[Output]) -> Result<Output> {
        list_op(g, op, inputs, F)
    }
    /// A list of x's rows.
    fn rows_of(g: &mut Graph, x: Output) -> Result<Output> {
        let shape = g.constant(Tensor::from([-1i32]))?;
        op(g, "TensorListFromTensor", &[x, shape])
    }
    fn stack(g: &mut Graph, list: Output) -> Result<Output> {
        let shape = g.constant(Tensor::from([-1i32]))?;
        op(g, "TensorListStack", &[list, shape])
    }
    /// Rows 2 and 0 of a list of x's rows, read twice (the list's gradients add up).
    fn get_items(g: &mut Graph, x: &[Output]) -> Result<Output> {
        let list = rows_of(g, x[0])?;
        let shape = g.constant(Tensor::from([2i32]))?;
        let (two, zero) = (g.constant(2i32)?, g.constant(0i32)?);
        let a = op(g, "TensorListGetItem", &[list, two, shape])?;
        let b = op(g, "TensorListGetItem", &[list, zero, shape])?;
        let b = g.tanh(b)?;
        g.mul(a, b)
    }
    /// x's rows with row 1 replaced by tanh(y), stacked.
    fn set_item(g: &mut Graph, x: &[Output]) -> Result<Output> {
        let list = rows_of(g, x[0])?;
        let one = g.constant(1i32)?;
        let item = g.tanh(x[1])?;
        let set = op(g, "TensorListSetItem", &[list, one, item])?;
        let stacked = stack(g, set)?;
        g.mul(stacked, stacked)
    }
    /// A reserved list of 3 items setting items 0 and 2 (item 1 stacks as zeros).
    fn reserved(g: &mut Graph, x: &[Output]) -> Result<Output> {
        let shape = g.constant(Tensor::from([2i32]))?;
        let three = g.constant(3i32)?;
        let list = op(g, "TensorListReserve", &[shape, three])?;
        let (zero, two) = (g.constant(0i32)?, g.constant(2i32)?);
        let list = op(g, "TensorListSetItem", &[list, zero, x[0]])?;
        let sq = g.mul(x[1], x[1])?;
        let list = op(g, "TensorListSetItem", &[list, two, sq])?;
        stack(g, list)
    }
    /// An RNN over x's rows: `h = tanh(h * w + x[i])`, writing each h into a reserved
    /// list, in a `While` carrying the counter, h, both lists and w; returns the stacked
    /// outputs.
    fn rnn(g: &mut Graph, x: &[Output]) -> Result<Output> {
        let specs = [
            TensorSpec::new(DType::Int32, PartialShape::scalar()),
            TensorSpec::new(F, PartialShape::unknown()),
            TensorSpec::new(DType::Variant, PartialShape::scalar()),
            TensorSpec::new(DType::Variant, PartialShape::scalar()),
            TensorSpec::new(F, PartialShape::unknown()),
        ];
        g.define_function("rnn_cond", &specs, |g, a| {
            let n = g.constant(3i32)?;
            Ok(vec![g.less(a[0], n)?])
        })?;
        g.define_function("rnn_body", &specs, |g, a| {
            let shape = g.constant(Tensor::from([2i32]))?;
            let item = op(g, "TensorListGetItem", &[a[3], a[0], shape])?;
            let hw = g.mul(a[1], a[4])?;
            let pre = g.add(hw, item)?;
            let h = g.tanh(pre)?;
            let out = op(g, "TensorListSetItem", &[a[2], a[0], h])?;
            let one = g.constant(1i32)?;
            Ok(vec![g.add(a[0], one)?, h, out, a[3], a[4]])
        })?;
        let shape = g.constant(Tensor::from([2i32]))?;
        let three = g.constant(3i32)?;
        let outputs = op(g, "TensorListReserve", &[shape, three])?;
        let inputs = rows_of(g, x[0])?;
        let i0 = g.constant(0i32)?;
        let h0 = g.zeros(F, &[2])?;
        let r = g.while_loop("rnn_cond", "rnn_body", &[i0, h0, outputs, inputs, x[1]])?;
        let stacked = stack(g, r[2])?;
        // The final h too: its gradient and the list's flow back together.
        g.add(stacked, r[1])
    }
    vec![
        GradCase::new(
            "TensorListGetItem",
            vec![test_input(&[3, 2], 101)],
            get_items,
        ),
        GradCase::new(
            "TensorListSetItem",
            vec![test_input(&[3, 2], 103), test_input(&[2], 104)],
            set_item,
        ),
        GradCase::new(
            "TensorListStack",
            vec![test_input(&[2], 105), test_input(&[2], 106)],
            reserved,
        ),
        GradCase::new(
            "TensorListFromTensor",
            vec![test_input(&[4, 3], 107)],
            |g, x| {
                let list = rows_of(g, x[0])?;
                let s = stack(g, list)?;
                g.tanh(s)
            },
        ),
        GradCase::new(
            "While",
            vec![test_input(&[3, 2], 109), test_input(&[2], 110)],
            rnn,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use crate::graph::{AttrValue, Graph};
    use crate::tensor::{DType, Tensor};

    /// TensorFlow resizes the gradient of a resizing `TensorListSetItem`
    /// (`TensorListResize`, which rustflow lacks): an error naming the node.
    #[test]
    fn a_resizing_set_item_has_no_gradient_yet() {
        let mut g = Graph::new();
        let x = g.constant(Tensor::from([1f32, 2.])).unwrap();
        let shape = g.constant(Tensor::from([-1i32])).unwrap();
        let one = g.constant(1i32).unwrap();
        let list = g
            .op("TensorListFromTensor")
            .inputs(&[x, shape])
            .attr("element_dtype", AttrValue::Type(DType::Float32))
            .build_output()
            .unwrap();
        let item = g.constant(3f32).unwrap();
        let set = g
            .op("TensorListSetItem")
            .name("grow")
            .inputs(&[list, one, item])
            .attr("element_dtype", AttrValue::Type(DType::Float32))
            .attr("resize_if_index_out_of_bounds", AttrValue::Bool(true))
            .build_output()
            .unwrap();
        let stacked = g
            .op("TensorListStack")
            .inputs(&[set, shape])
            .attr("element_dtype", AttrValue::Type(DType::Float32))
            .build_output()
            .unwrap();
        let e = g.gradients(&[stacked], &[item]).unwrap_err().to_string();
        assert!(e.contains("'grow'") && e.contains("resize"), "{e}");
    }
}

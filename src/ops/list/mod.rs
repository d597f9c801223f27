//! TensorFlow 2's TensorLists, as Keras RNNs use them inside `While` loops: a
//! `DT_VARIANT` scalar holding a list of tensors of one dtype (`TensorListReserve`,
//! `TensorListFromTensor`, `TensorListGetItem`, `TensorListSetItem`, `TensorListStack`,
//! `TensorListLength`, `TensorListElementShape`). A list is a value: setting an item
//! makes a new list (sharing the other items), as TensorFlow's copy-on-write does.
//!
//! A list counts against the session's memory budget however small its items are (a loop
//! can fill one with a million scalars): each list charges its slots ([`list_tensor`]) and
//! each item is charged when it enters a list ([`Tensor::into_counted`]), once however
//! many lists share it.
//!
//! Their gradients are in `grad.rs`; `AddN` and `ZerosLike` of lists in `arith.rs`.

pub(crate) mod arith;
mod grad;

#[cfg(test)]
pub(crate) use grad::gradient_cases;

use super::{
    kernel_fn, Cost, InferCtx, InferResult, KernelBuildCtx, KernelResult, Op, OpDef, Registry,
};
use crate::graph::{AttrsExt, TensorSpec};
use crate::kernel::KernelCtx;
use crate::tensor::rows::{row, stack};
use crate::tensor::{DType, PartialShape, Tensor};
use crate::{Error, Result};
use std::sync::Arc;

/// Most items a list may be made with (TensorListReserve's `num_elements`).
pub const MAX_LIST_LEN: usize = 1 << 20;

/// The value a `DT_VARIANT` list tensor holds.
#[derive(Clone, Debug)]
pub struct TensorList {
    /// The items' dtype.
    pub element_dtype: DType,
    /// What every item's shape must fit.
    pub element_shape: PartialShape,
    /// The items; `None` for one not set yet (read as zeros of the element shape).
    pub items: Vec<Option<Tensor>>,
}

/// A shape given as TensorFlow gives an element shape: a vector with -1 for unknown dims,
/// or the scalar -1 for an unknown rank.
fn shape_from_tensor(t: &Tensor) -> Result<PartialShape> {
    let v = t.to_i64_vec()?;
    Ok(match t.rank() {
        0 if v == [-1] => PartialShape::unknown(),
        1 => PartialShape::from_i64(&v),
        _ => {
            return Err(Error::invalid(format!(
                "an element shape must be a vector or -1, got shape {:?}",
                t.shape()
            )))
        }
    })
}

/// An element shape input known when the graph is built.
fn constant_shape(ctx: &InferCtx<'_>, i: usize) -> PartialShape {
    ctx.constant_input(i)
        .and_then(|t| shape_from_tensor(&t).ok())
        .unwrap_or_else(PartialShape::unknown)
}

fn variant_scalar() -> InferResult {
    Ok(vec![TensorSpec::new(
        DType::Variant,
        PartialShape::scalar(),
    )])
}

/// The variant tensor holding `list`, charged for its slots.
fn list_tensor(list: TensorList) -> Tensor {
    let slots = list.items.capacity() * std::mem::size_of::<Option<Tensor>>();
    Tensor::variant_counted(Arc::new(list), slots + std::mem::size_of::<TensorList>())
}

fn list_of(ctx: &KernelCtx<'_>, i: usize) -> Result<Arc<TensorList>> {
    ctx.input(i)?.variant_value::<TensorList>("the list input")
}

/// An index input in `0..len`.
fn index(ctx: &KernelCtx<'_>, i: usize, len: usize) -> Result<usize> {
    let k = ctx.input(i)?.scalar_value::<i32>()?;
    usize::try_from(k).ok().filter(|&k| k < len).ok_or_else(|| {
        Error::invalid(format!(
            "index {k} is out of range for a list of {len} items"
        ))
    })
}

/// The list's element dtype must be the node's `element_dtype`.
fn check_dtype(list: &TensorList, want: DType) -> Result<()> {
    if list.element_dtype != want {
        return Err(Error::invalid(format!(
            "the list holds {} items, the op reads {want}",
            list.element_dtype
        )));
    }
    Ok(())
}

/// Errors unless input `i` (`what`) has the node's `element_dtype`.
fn check_element_dtype(
    ctx: &InferCtx<'_>,
    i: usize,
    what: &str,
) -> std::result::Result<(), String> {
    let want = ctx.attrs().dtype("element_dtype")?;
    if ctx.dtype(i) != want {
        return Err(format!(
            "{what} is {} but element_dtype is {want}",
            ctx.dtype(i)
        ));
    }
    Ok(())
}

fn infer_reserve(ctx: &InferCtx<'_>) -> InferResult {
    ctx.expect_inputs(2)?;
    ctx.attrs().dtype("element_dtype")?;
    variant_scalar()
}

fn reserve_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let element_dtype = ctx.attrs().dtype("element_dtype")?;
    kernel_fn(move |k| {
        let element_shape = shape_from_tensor(k.input(0)?)?;
        let n = k.input(1)?.scalar_value::<i32>()?;
        let n = usize::try_from(n)
            .ok()
            .filter(|&n| n <= MAX_LIST_LEN)
            .ok_or_else(|| {
                Error::invalid(format!(
                    "num_elements {n} is not a list length (0 to {MAX_LIST_LEN})"
                ))
            })?;
        let mut items = Vec::new();
        items.try_reserve_exact(n).map_err(|_| {
            Error::ResourceExhausted(format!("cannot allocate a list of {n} items"))
        })?;
        items.resize(n, None);
        k.push_output(list_tensor(TensorList {
            element_dtype,
            element_shape,
            items,
        }));
        Ok(())
    })
}

fn infer_from_tensor(ctx: &InferCtx<'_>) -> InferResult {
    ctx.expect_inputs(2)?;
    check_element_dtype(ctx, 0, "the tensor")?;
    if ctx.shape(0).rank() == Some(0) {
        return Err("a list is made from a tensor of rank at least 1, got a scalar".into());
    }
    variant_scalar()
}

fn from_tensor_kernel(_: &KernelBuildCtx<'_>) -> KernelResult {
    kernel_fn(|k| {
        let t = k.input(0)?;
        let element_shape = shape_from_tensor(k.input(1)?)?;
        let Some((&n, item_shape)) = t.shape().split_first() else {
            return Err(Error::invalid(
                "a list is made from a tensor of rank at least 1",
            ));
        };
        if element_shape.rank().is_some() && !element_shape.is_compatible_with(item_shape) {
            return Err(Error::invalid(format!(
                "the tensor's rows are {item_shape:?}, which do not fit element_shape \
                 {element_shape}"
            )));
        }
        let items = (0..n)
            .map(|i| row(t, i).map(|r| Some(r.into_counted())))
            .collect::<Result<_>>()?;
        let list = TensorList {
            element_dtype: t.dtype(),
            element_shape: PartialShape::known(item_shape),
            items,
        };
        k.push_output(list_tensor(list));
        Ok(())
    })
}

fn infer_get_item(ctx: &InferCtx<'_>) -> InferResult {
    ctx.expect_inputs(3)?;
    Ok(vec![TensorSpec::new(
        ctx.attrs().dtype("element_dtype")?,
        constant_shape(ctx, 2),
    )])
}

/// Item `i`, or zeros of the element shape for an item not set (its shape must then be
/// known, from the list or from `shape`).
fn item_or_zeros(list: &TensorList, i: usize, shape: &PartialShape) -> Result<Tensor> {
    if let Some(t) = &list.items[i] {
        return Ok(t.clone());
    }
    let dims = list
        .element_shape
        .merge(shape)
        .ok()
        .and_then(|s| s.to_known())
        .ok_or_else(|| {
            Error::invalid(format!(
                "item {i} of the list was never set and its shape ({}) is not fully known, \
                 so it cannot be read as zeros",
                list.element_shape
            ))
        })?;
    Ok(Tensor::zeros(list.element_dtype, &dims))
}

fn get_item_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let element_dtype = ctx.attrs().dtype("element_dtype")?;
    kernel_fn(move |k| {
        let list = list_of(k, 0)?;
        check_dtype(&list, element_dtype)?;
        let i = index(k, 1, list.items.len())?;
        let shape = shape_from_tensor(k.input(2)?)?;
        let item = item_or_zeros(&list, i, &shape)?;
        k.push_output(item);
        Ok(())
    })
}

fn infer_set_item(ctx: &InferCtx<'_>) -> InferResult {
    ctx.expect_inputs(3)?;
    check_element_dtype(ctx, 2, "the item")?;
    variant_scalar()
}

fn set_item_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let element_dtype = ctx.attrs().dtype("element_dtype")?;
    let resize = ctx
        .attrs()
        .bool_or("resize_if_index_out_of_bounds", false)?;
    kernel_fn(move |k| {
        let list = list_of(k, 0)?;
        check_dtype(&list, element_dtype)?;
        let len = list.items.len();
        let i = match k.input(1)?.scalar_value::<i32>()? {
            k if resize && k >= 0 && k as usize >= len && (k as usize) < MAX_LIST_LEN => k as usize,
            _ => index(k, 1, len)?,
        };
        let item = k.take_input(2)?.into_counted();
        if !list.element_shape.is_compatible_with(item.shape()) {
            return Err(Error::invalid(format!(
                "item {i} has shape {:?}, which does not fit the list's element shape {}",
                item.shape(),
                list.element_shape
            )));
        }
        // The input is dropped first so a list nothing else holds is updated in place.
        drop(k.take_input(0)?);
        let mut list = Arc::unwrap_or_clone(list);
        if i >= list.items.len() {
            list.items.resize(i + 1, None);
        }
        list.items[i] = Some(item);
        k.push_output(list_tensor(list));
        Ok(())
    })
}

fn infer_stack(ctx: &InferCtx<'_>) -> InferResult {
    ctx.expect_inputs(2)?;
    let n = ctx.attrs().int_or("num_elements", -1)?;
    let mut dims = vec![usize::try_from(n).ok()];
    let shape = match constant_shape(ctx, 1).dims() {
        Some(d) => {
            dims.extend_from_slice(d);
            PartialShape::new(dims)
        }
        None => PartialShape::unknown(),
    };
    Ok(vec![TensorSpec::new(
        ctx.attrs().dtype("element_dtype")?,
        shape,
    )])
}

fn stack_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let element_dtype = ctx.attrs().dtype("element_dtype")?;
    let num_elements = ctx.attrs().int_or("num_elements", -1)?;
    kernel_fn(move |k| {
        let list = list_of(k, 0)?;
        check_dtype(&list, element_dtype)?;
        if num_elements >= 0 && list.items.len() as i64 != num_elements {
            return Err(Error::invalid(format!(
                "the list has {} items, the op expects num_elements {num_elements}",
                list.items.len()
            )));
        }
        let shape = shape_from_tensor(k.input(1)?)?;
        let items = (0..list.items.len())
            .map(|i| item_or_zeros(&list, i, &shape))
            .collect::<Result<Vec<_>>>()?;
        let out = match items.first() {
            Some(first) => {
                if let Some(bad) = items.iter().position(|t| t.shape() != first.shape()) {
                    return Err(Error::invalid(format!(
                        "items 0 and {bad} of the list have shapes {:?} and {:?}; stacking \
                         needs one shape",
                        first.shape(),
                        items[bad].shape()
                    )));
                }
                stack(&items.iter().collect::<Vec<_>>())?
            }
            None => {
                let dims = list
                    .element_shape
                    .merge(&shape)
                    .ok()
                    .and_then(|s| s.to_known());
                let dims = dims.ok_or_else(|| {
                    Error::invalid("stacking an empty list needs a fully known element shape")
                })?;
                Tensor::zeros(element_dtype, &[&[0], dims.as_slice()].concat())
            }
        };
        k.push_output(out);
        Ok(())
    })
}

fn infer_length(ctx: &InferCtx<'_>) -> InferResult {
    ctx.expect_inputs(1)?;
    Ok(vec![TensorSpec::new(DType::Int32, PartialShape::scalar())])
}

fn length_kernel(_: &KernelBuildCtx<'_>) -> KernelResult {
    kernel_fn(|k| {
        let n = list_of(k, 0)?.items.len();
        k.push_output(Tensor::scalar(n as i32));
        Ok(())
    })
}

fn infer_element_shape(ctx: &InferCtx<'_>) -> InferResult {
    ctx.expect_inputs(1)?;
    let dtype = ctx.attrs().dtype("shape_type")?;
    if !matches!(dtype, DType::Int32 | DType::Int64) {
        return Err(format!("shape_type must be int32 or int64, got {dtype}"));
    }
    Ok(vec![TensorSpec::new(dtype, PartialShape::unknown())])
}

fn element_shape_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let dtype = ctx.attrs().dtype("shape_type")?;
    kernel_fn(move |k| {
        let list = list_of(k, 0)?;
        let t = match list.element_shape.to_i64() {
            Some(dims) => Tensor::vector(dims),
            None => Tensor::scalar(-1i64),
        };
        k.push_output(t.cast(dtype)?);
        Ok(())
    })
}

/// Registers the TensorList ops, with their gradients (`grad.rs`).
pub(crate) fn register(r: &mut Registry) {
    let ops: [Op; 7] = [
        Op::new("TensorListReserve", infer_reserve, reserve_kernel),
        Op::new(
            "TensorListFromTensor",
            infer_from_tensor,
            from_tensor_kernel,
        ),
        Op::new("TensorListGetItem", infer_get_item, get_item_kernel),
        Op::new("TensorListSetItem", infer_set_item, set_item_kernel),
        Op::new("TensorListStack", infer_stack, stack_kernel),
        Op::new("TensorListLength", infer_length, length_kernel),
        Op::new(
            "TensorListElementShape",
            infer_element_shape,
            element_shape_kernel,
        ),
    ];
    for op in ops {
        // Stacking and splitting copy the items; the others pass tensors along.
        let copies = matches!(op.name(), "TensorListStack" | "TensorListFromTensor");
        let op = grad::with_gradient(op);
        r.add(op.cost(if copies { Cost::Linear } else { Cost::Cheap }));
    }
}

#[cfg(test)]
mod tests {
    use crate::graph::{AttrValue, Graph, Output};
    use crate::session::Session;
    use crate::tensor::{DType, Tensor};

    /// A float32 TensorList op (its `shape_type` int32 where it has one).
    pub(super) fn list_op(g: &mut Graph, op: &str, inputs: &[Output]) -> Output {
        g.op(op)
            .inputs(inputs)
            .attr("element_dtype", AttrValue::Type(DType::Float32))
            .attr("shape_type", AttrValue::Type(DType::Int32))
            .build_output()
            .unwrap()
    }

    #[test]
    fn lists_split_set_get_and_stack_tensors() {
        let mut g = Graph::new();
        let x = g
            .constant(Tensor::new(&[3, 2], vec![1f32, 2., 3., 4., 5., 6.]).unwrap())
            .unwrap();
        let shape = g.constant(Tensor::from([2i32])).unwrap();
        let list = list_op(&mut g, "TensorListFromTensor", &[x, shape]);
        let one = g.constant(1i32).unwrap();
        let item = g.constant(Tensor::from([9f32, 8.])).unwrap();
        let set = list_op(&mut g, "TensorListSetItem", &[list, one, item]);
        let got = list_op(&mut g, "TensorListGetItem", &[list, one, shape]);
        let stacked = list_op(&mut g, "TensorListStack", &[set, shape]);
        let len = list_op(&mut g, "TensorListLength", &[set]);
        let elem = list_op(&mut g, "TensorListElementShape", &[set]);
        let two = g.constant(2i32).unwrap();
        let unknown = g.constant(Tensor::from([-1i32])).unwrap();
        let reserved = list_op(&mut g, "TensorListReserve", &[unknown, two]);
        let s = Session::new(&g);
        let r = s.run(&[], &[got, stacked, len, elem], &[]).unwrap();
        // The original list is unchanged by the set: lists are values.
        assert_eq!(r[0].to_vec::<f32>().unwrap(), vec![3., 4.]);
        assert_eq!(r[1].shape(), &[3, 2]);
        assert_eq!(r[1].to_vec::<f32>().unwrap(), vec![1., 2., 9., 8., 5., 6.]);
        assert_eq!(r[2].scalar_value::<i32>().unwrap(), 3);
        assert_eq!(r[3].to_vec::<i32>().unwrap(), vec![2]);

        // Unset items read as zeros only when their shape is known.
        let zero = g.constant(0i32).unwrap();
        let unset = list_op(&mut g, "TensorListGetItem", &[reserved, zero, unknown]);
        let unset_known = list_op(&mut g, "TensorListGetItem", &[reserved, zero, shape]);
        let s = Session::new(&g);
        let r = s.run(&[], &[unset_known], &[]).unwrap();
        assert_eq!(r[0].to_vec::<f32>().unwrap(), vec![0., 0.]);
        let e = s.run(&[], &[unset], &[]).unwrap_err().to_string();
        assert!(
            e.contains("never set") && e.contains("TensorListGetItem"),
            "{e}"
        );
    }

    #[test]
    fn an_index_out_of_range_is_an_error_naming_the_node() {
        let mut g = Graph::new();
        let x = g.constant(Tensor::from([1f32, 2.])).unwrap();
        let shape = g.constant(Tensor::from([-1i32])).unwrap();
        let scalar_shape = g
            .constant(Tensor::new(&[0], Vec::<i32>::new()).unwrap())
            .unwrap();
        let list = list_op(&mut g, "TensorListFromTensor", &[x, scalar_shape]);
        let five = g.constant(5i32).unwrap();
        let got = g
            .op("TensorListGetItem")
            .name("get")
            .inputs(&[list, five, shape])
            .attr("element_dtype", AttrValue::Type(DType::Float32))
            .build_output()
            .unwrap();
        let e = Session::new(&g)
            .run(&[], &[got], &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("'get'") && e.contains("index 5") && e.contains("2 items"),
            "{e}"
        );
    }
}

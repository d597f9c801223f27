//! `AddN` and `ZerosLike` over TensorLists, as TensorFlow's variant ops do them for the
//! gradients of lists: lists add item by item (an item not set counts as zeros), and the
//! zeros of a list are a list as long, with zeros for each item set.

use super::TensorList;
use crate::ops::{kernel_fn, KernelResult};
use crate::tensor::Tensor;
use crate::{Error, Result};
use std::sync::Arc;

/// Sums tensors of one dtype and shape (the dense `AddN`).
pub(crate) type SumFn = fn(Vec<Tensor>) -> Result<Tensor>;

/// The sum of lists of one element dtype and length, item by item.
fn add_lists(lists: &[Arc<TensorList>], sum: SumFn) -> Result<TensorList> {
    let first = &lists[0];
    let mut element_shape = first.element_shape.clone();
    for (i, l) in lists.iter().enumerate().skip(1) {
        if l.element_dtype != first.element_dtype || l.items.len() != first.items.len() {
            return Err(Error::invalid(format!(
                "adding TensorLists needs one element dtype and length: list 0 holds {} \
                 {} items, list {i} holds {} {} items",
                first.items.len(),
                first.element_dtype,
                l.items.len(),
                l.element_dtype
            )));
        }
        element_shape = element_shape.merge(&l.element_shape).map_err(|_| {
            Error::invalid(format!(
                "adding TensorLists: list {i}'s element shape {} does not fit {}",
                l.element_shape, element_shape
            ))
        })?;
    }
    let items = (0..first.items.len())
        .map(|k| {
            let set: Vec<Tensor> = lists.iter().filter_map(|l| l.items[k].clone()).collect();
            match set.len() {
                0 => Ok(None),
                1 => Ok(set.into_iter().next()),
                _ => sum(set)
                    .map(|t| Some(t.into_counted()))
                    .map_err(|e| Error::invalid(format!("adding item {k} of TensorLists: {e}"))),
            }
        })
        .collect::<Result<_>>()?;
    Ok(TensorList {
        element_dtype: first.element_dtype,
        element_shape,
        items,
    })
}

/// `AddN` of TensorLists, adding items with `sum`.
pub(crate) fn add_n_kernel(sum: SumFn) -> KernelResult {
    kernel_fn(move |k| {
        let lists = (0..k.num_inputs())
            .map(|i| super::list_of(k, i))
            .collect::<Result<Vec<_>>>()?;
        k.push_output(super::list_tensor(add_lists(&lists, sum)?));
        Ok(())
    })
}

/// `ZerosLike` of a TensorList: as long, with zeros for each item set.
pub(crate) fn zeros_like_kernel() -> KernelResult {
    kernel_fn(|k| {
        let list = super::list_of(k, 0)?;
        let items = list
            .items
            .iter()
            .map(|t| {
                t.as_ref()
                    .map(|t| Tensor::zeros(list.element_dtype, t.shape()).into_counted())
            })
            .collect();
        k.push_output(super::list_tensor(TensorList {
            element_dtype: list.element_dtype,
            element_shape: list.element_shape.clone(),
            items,
        }));
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use crate::graph::Graph;
    use crate::ops::list::tests::list_op;
    use crate::session::Session;
    use crate::tensor::{DType, Tensor};

    /// Lists add item by item, an unset item counting as zeros; the zeros of a list keep
    /// its length and its unset items.
    #[test]
    fn lists_add_item_by_item_and_have_zeros() {
        let mut g = Graph::new();
        let shape = g.constant(Tensor::from([2i32])).unwrap();
        let three = g.constant(3i32).unwrap();
        let (zero, one) = (g.constant(0i32).unwrap(), g.constant(1i32).unwrap());
        let empty = list_op(&mut g, "TensorListReserve", &[shape, three]);
        let a = g.constant(Tensor::from([1f32, 2.])).unwrap();
        let b = g.constant(Tensor::from([10f32, 20.])).unwrap();
        let x = list_op(&mut g, "TensorListSetItem", &[empty, zero, a]);
        let y = list_op(&mut g, "TensorListSetItem", &[empty, zero, b]);
        let y = list_op(&mut g, "TensorListSetItem", &[y, one, a]);
        let sum = g.add_n(&[x, y, empty]).unwrap();
        let stacked = list_op(&mut g, "TensorListStack", &[sum, shape]);
        let zeros = g.zeros_like(y).unwrap();
        let zeros = list_op(&mut g, "TensorListStack", &[zeros, shape]);
        let r = Session::new(&g).run(&[], &[stacked, zeros], &[]).unwrap();
        assert_eq!(
            r[0],
            Tensor::new(&[3, 2], vec![11f32, 22., 1., 2., 0., 0.]).unwrap()
        );
        assert_eq!(r[1], Tensor::zeros(DType::Float32, &[3, 2]));
    }

    #[test]
    fn adding_lists_of_different_lengths_is_an_error() {
        let mut g = Graph::new();
        let shape = g.constant(Tensor::from([2i32])).unwrap();
        let (two, three) = (g.constant(2i32).unwrap(), g.constant(3i32).unwrap());
        let a = list_op(&mut g, "TensorListReserve", &[shape, two]);
        let b = list_op(&mut g, "TensorListReserve", &[shape, three]);
        let sum = g.add_n(&[a, b]).unwrap();
        let e = Session::new(&g)
            .run(&[], &[sum], &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("AddN") && e.contains("length"), "{e}");
    }
}

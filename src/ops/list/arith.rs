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
                    .map(Some)
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
        k.push_output(Tensor::variant(Arc::new(add_lists(&lists, sum)?)));
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
                    .map(|t| Tensor::zeros(list.element_dtype, t.shape()))
            })
            .collect();
        k.push_output(Tensor::variant(Arc::new(TensorList {
            element_dtype: list.element_dtype,
            element_shape: list.element_shape.clone(),
            items,
        })));
        Ok(())
    })
}

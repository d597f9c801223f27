//! Sources made in memory: `from_tensor_slices`, `from_tensors`, `range` and
//! `from_generator`.

use super::dataset::{Cardinality, Dataset, DatasetOp, ElementIter};
use super::Element;
use crate::tensor::rows;
use crate::tensor::Tensor;
use crate::{Error, Result};
use std::sync::Arc;

/// The common first dimension of every tensor in `e` (what `from_tensor_slices` slices).
pub(crate) fn slice_count(e: &Element) -> Result<usize> {
    let tensors = e.tensors();
    let first = tensors
        .first()
        .ok_or_else(|| Error::invalid("from_tensor_slices needs at least one tensor"))?;
    let n = *first.shape().first().ok_or_else(|| {
        Error::invalid("from_tensor_slices cannot slice a scalar (rank 0) tensor")
    })?;
    for t in &tensors {
        if t.shape().first() != Some(&n) {
            return Err(Error::invalid(format!(
                "from_tensor_slices: all tensors need the same first dimension, got shapes {:?}",
                tensors.iter().map(|t| t.shape()).collect::<Vec<_>>()
            )));
        }
    }
    Ok(n)
}

struct TensorSlices {
    element: Arc<Element>,
    len: usize,
}

impl DatasetOp for TensorSlices {
    fn iter(&self) -> ElementIter {
        let e = self.element.clone();
        Box::new((0..self.len).map(move |i| e.map_tensors(&mut |t| rows::row(t, i))))
    }

    fn cardinality(&self) -> Cardinality {
        Cardinality::Finite(self.len)
    }
}

struct Tensors(Element);

impl DatasetOp for Tensors {
    fn iter(&self) -> ElementIter {
        Box::new(std::iter::once(Ok(self.0.clone())))
    }

    fn cardinality(&self) -> Cardinality {
        Cardinality::Finite(1)
    }
}

struct Range {
    start: i64,
    stop: i64,
    step: i64,
}

impl Range {
    fn len(&self) -> usize {
        let span = if self.step > 0 {
            (self.stop - self.start).max(0)
        } else {
            (self.start - self.stop).max(0)
        };
        let step = self.step.unsigned_abs() as i64;
        ((span + step - 1) / step) as usize
    }
}

impl DatasetOp for Range {
    fn iter(&self) -> ElementIter {
        let (start, step) = (self.start, self.step);
        Box::new((0..self.len() as i64).map(move |k| Ok(Tensor::scalar(start + k * step).into())))
    }

    fn cardinality(&self) -> Cardinality {
        Cardinality::Finite(self.len())
    }
}

type Generator = Arc<dyn Fn() -> ElementIter + Send + Sync>;

struct FromGenerator(Generator);

impl DatasetOp for FromGenerator {
    fn iter(&self) -> ElementIter {
        (self.0)()
    }
}

impl Dataset {
    /// One element per row of the given tensors (`tf.data.Dataset.from_tensor_slices`):
    /// a tensor, an `(x, y)` tuple or a dict; every tensor is sliced along its first
    /// dimension, which must agree.
    pub fn from_tensor_slices(tensors: impl Into<Element>) -> Result<Dataset> {
        let element = tensors.into();
        let len = slice_count(&element)?;
        Ok(Dataset::new(TensorSlices {
            element: Arc::new(element),
            len,
        }))
    }

    /// A dataset of the one given element (`tf.data.Dataset.from_tensors`).
    pub fn from_tensors(element: impl Into<Element>) -> Dataset {
        Dataset::new(Tensors(element.into()))
    }

    /// The int64 scalars `0, 1, ..., stop - 1` (`tf.data.Dataset.range(stop)`).
    pub fn range(stop: i64) -> Dataset {
        Dataset::range_step(0, stop, 1)
    }

    /// The int64 scalars from `start` towards `stop` (excluded) by `step`
    /// (`tf.data.Dataset.range(start, stop, step)`); a step of 0 is an error when iterated.
    pub fn range_step(start: i64, stop: i64, step: i64) -> Dataset {
        if step == 0 {
            return Dataset::failing(Error::invalid("range: step must not be 0"));
        }
        Dataset::new(Range { start, stop, step })
    }

    /// Elements from a Rust iterator made afresh for each pass
    /// (`tf.data.Dataset.from_generator`).
    pub fn from_generator<I, F>(make: F) -> Dataset
    where
        F: Fn() -> I + Send + Sync + 'static,
        I: IntoIterator<Item = Result<Element>>,
        I::IntoIter: Send + 'static,
    {
        Dataset::new(FromGenerator(Arc::new(move || {
            Box::new(make().into_iter())
        })))
    }

    /// A dataset whose every pass yields `error` (invalid arguments of a transformation).
    pub(crate) fn failing(error: Error) -> Dataset {
        Dataset::from_generator(move || std::iter::once(Err(error.clone())))
    }
}

//! The dataset core: the [`DatasetOp`] trait each source and transformation implements,
//! the cheap-to-clone [`Dataset`] handle and its [`Iter`].

use super::Element;
use crate::{Error, Result};
use std::sync::Arc;

/// A pass over a dataset's elements, each a `Result` (reading and parsing can fail).
pub type ElementIter = Box<dyn Iterator<Item = Result<Element>> + Send>;

/// How many elements a dataset has, as far as it can tell without iterating
/// (`tf.data.Dataset.cardinality`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cardinality {
    /// Exactly this many.
    Finite(usize),
    /// Never ends (`repeat()` without a count).
    Infinite,
    /// Not known before iterating (filter, file readers).
    Unknown,
}

impl Cardinality {
    /// Applies `f` to a finite count and keeps the other cases.
    pub fn map(self, f: impl FnOnce(usize) -> usize) -> Cardinality {
        match self {
            Cardinality::Finite(n) => Cardinality::Finite(f(n)),
            other => other,
        }
    }
}

/// A source or transformation of elements. Each call of [`DatasetOp::iter`] starts a new
/// pass (an epoch); an op that draws random numbers draws new ones each pass where asked to.
pub trait DatasetOp: Send + Sync + 'static {
    /// A new pass over the elements.
    fn iter(&self) -> ElementIter;
    /// The number of elements, when known without iterating.
    fn cardinality(&self) -> Cardinality {
        Cardinality::Unknown
    }
}

/// A `tf.data`-style input pipeline: a source (tensors, files) followed by transformations
/// (`shuffle`, `batch`, `map`, `prefetch`, ...), each returning a new `Dataset`. Cloning is
/// cheap and shares the pipeline (and its state, such as a shuffle's pass counter).
///
/// Invalid arguments of a transformation (a batch size of 0) are reported as the first
/// element's error when the dataset is iterated.
///
/// ```
/// use rustflow::data::Dataset;
/// use rustflow::Tensor;
/// let x = Tensor::from([[1i32], [2], [3]]);
/// let y = Tensor::from([[4i32], [5], [6]]);
/// let ds = Dataset::from_tensor_slices((x, y)).unwrap().batch(2, false);
/// let batches: Vec<_> = ds.iter().collect::<Result<_, _>>().unwrap();
/// let (bx, by) = batches[0].pair().unwrap();
/// assert_eq!(bx, &Tensor::from([[1i32], [2]]));
/// assert_eq!(by, &Tensor::from([[4i32], [5]]));
/// assert_eq!(batches[1].pair().unwrap().0, &Tensor::from([[3i32]]));
/// ```
#[derive(Clone)]
pub struct Dataset {
    op: Arc<dyn DatasetOp>,
}

impl Dataset {
    /// Wraps a source or transformation.
    pub fn new(op: impl DatasetOp) -> Dataset {
        Dataset { op: Arc::new(op) }
    }

    /// A new pass over the elements. The iterator stops after the first error.
    pub fn iter(&self) -> Iter {
        Iter {
            inner: Some(self.op.iter()),
        }
    }

    /// The number of elements, when known without iterating.
    pub fn cardinality(&self) -> Cardinality {
        self.op.cardinality()
    }

    /// All elements of one pass (errors on an infinite dataset).
    pub fn collect(&self) -> Result<Vec<Element>> {
        if self.cardinality() == Cardinality::Infinite {
            return Err(Error::invalid("cannot collect an infinite dataset"));
        }
        self.iter().collect()
    }
}

impl std::fmt::Debug for Dataset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Dataset(cardinality {:?})", self.cardinality())
    }
}

/// One pass over a [`Dataset`]; ends after yielding an error.
pub struct Iter {
    inner: Option<ElementIter>,
}

impl Iterator for Iter {
    type Item = Result<Element>;

    fn next(&mut self) -> Option<Result<Element>> {
        let item = self.inner.as_mut()?.next();
        if !matches!(item, Some(Ok(_))) {
            self.inner = None;
        }
        item
    }
}

impl IntoIterator for &Dataset {
    type Item = Result<Element>;
    type IntoIter = Iter;

    fn into_iter(self) -> Iter {
        self.iter()
    }
}

/// A pass that yields `e` and ends.
pub(crate) fn error_iter(e: Error) -> ElementIter {
    Box::new(std::iter::once(Err(e)))
}

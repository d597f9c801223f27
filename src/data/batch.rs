//! `batch` and `padded_batch`: consecutive elements stacked along a new first dimension.

use super::dataset::{error_iter, Cardinality, Dataset, DatasetOp, ElementIter};
use super::Element;
use crate::tensor::rows;
use crate::tensor::Tensor;
use crate::{Error, Result};

/// How `padded_batch` pads: the target shape of each tensor component (depth-first order,
/// as [`Element::tensors`] lists them; `None` dimensions, or no shapes at all, pad to the
/// longest in the batch) and the value padded with.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Padding {
    /// Per component, the padded shape; empty to pad every component to its batch maximum.
    pub shapes: Vec<Vec<Option<usize>>>,
    /// The padding value, converted to each component's dtype (0 by default).
    pub value: f64,
}

struct Batch {
    input: Dataset,
    size: usize,
    drop_remainder: bool,
    padding: Option<Padding>,
}

impl Batch {
    fn combine(&self, parts: &[Element]) -> Result<Element> {
        match &self.padding {
            None => Element::combine(parts, &mut |_, ts| rows::stack(ts)),
            Some(p) => Element::combine(parts, &mut |i, ts| pad_component(p, i, ts)),
        }
    }
}

fn pad_component(p: &Padding, index: usize, ts: &[&Tensor]) -> Result<Tensor> {
    let rank = ts[0].rank();
    if let Some(t) = ts.iter().find(|t| t.rank() != rank) {
        return Err(Error::invalid(format!(
            "padded_batch: component {index} has ranks {rank} and {} in one batch",
            t.rank()
        )));
    }
    let longest: Vec<usize> = (0..rank)
        .map(|d| ts.iter().map(|t| t.shape()[d]).max().unwrap_or(0))
        .collect();
    let shape = match p.shapes.get(index) {
        None if p.shapes.is_empty() => longest,
        None => {
            return Err(Error::invalid(format!(
                "padded_batch: {} padded shapes given for an element with more components",
                p.shapes.len()
            )))
        }
        Some(s) if s.len() != rank => {
            return Err(Error::invalid(format!(
                "padded_batch: padded shape {s:?} of component {index} does not have rank {rank}"
            )))
        }
        Some(s) => s
            .iter()
            .zip(&longest)
            .map(|(d, l)| d.unwrap_or(*l))
            .collect(),
    };
    rows::pad_stack(ts, &shape, p.value)
}

impl DatasetOp for Batch {
    fn iter(&self) -> ElementIter {
        if self.size == 0 {
            return error_iter(Error::invalid("batch: batch_size must be at least 1"));
        }
        let mut input = self.input.iter();
        let this = Batch {
            input: self.input.clone(),
            size: self.size,
            drop_remainder: self.drop_remainder,
            padding: self.padding.clone(),
        };
        Box::new(std::iter::from_fn(move || {
            // Room for the batch as its elements arrive: a huge `batch_size` over a short
            // dataset reserves nothing up front.
            let mut parts = Vec::new();
            for item in input.by_ref() {
                match item {
                    Ok(e) => parts.push(e),
                    Err(e) => return Some(Err(e)),
                }
                if parts.len() == this.size {
                    break;
                }
            }
            if parts.is_empty() || (this.drop_remainder && parts.len() < this.size) {
                return None;
            }
            Some(this.combine(&parts))
        }))
    }

    fn cardinality(&self) -> Cardinality {
        let size = self.size.max(1);
        self.input.cardinality().map(|n| {
            if self.drop_remainder {
                n / size
            } else {
                n.div_ceil(size)
            }
        })
    }
}

impl Dataset {
    /// Stacks `batch_size` consecutive elements into one (`Dataset.batch`); every tensor
    /// gains a leading batch dimension. The last batch is smaller unless `drop_remainder`.
    pub fn batch(&self, batch_size: usize, drop_remainder: bool) -> Dataset {
        Dataset::new(Batch {
            input: self.clone(),
            size: batch_size,
            drop_remainder,
            padding: None,
        })
    }

    /// Like [`Dataset::batch`] for elements whose shapes vary: each component is padded
    /// with zeros to the longest in its batch (`Dataset.padded_batch(batch_size)`).
    pub fn padded_batch(&self, batch_size: usize, drop_remainder: bool) -> Dataset {
        self.padded_batch_with(batch_size, drop_remainder, Padding::default())
    }

    /// [`Dataset::padded_batch`] with given padded shapes and padding value
    /// (`padded_shapes=`, `padding_values=`).
    pub fn padded_batch_with(
        &self,
        batch_size: usize,
        drop_remainder: bool,
        padding: Padding,
    ) -> Dataset {
        Dataset::new(Batch {
            input: self.clone(),
            size: batch_size,
            drop_remainder,
            padding: Some(padding),
        })
    }
}

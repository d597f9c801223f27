//! A PyTorch-style `DataLoader` over in-memory tensors: batches of rows in order, shuffled
//! each epoch, or in the order a sampler gives, gathered by worker threads.

use super::dataset::{Cardinality, Dataset, DatasetOp, ElementIter, Iter};
use super::parallel::MapOptions;
use super::shuffle::{random_seed, Philox};
use super::sources::slice_count;
use super::Element;
use crate::tensor::rows;
use crate::tensor::Tensor;
use crate::{Error, Result};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Gives the row order of an epoch (PyTorch's `Sampler`): `f(epoch)` for epochs 0, 1, ...
pub type Sampler = Arc<dyn Fn(u64) -> Vec<usize> + Send + Sync>;

/// `torch.utils.data.DataLoader(dataset, batch_size, shuffle, drop_last, sampler,
/// num_workers)` over tensors whose first dimension indexes the samples: a tensor, an
/// `(x, y)` tuple or a dict, as [`Dataset::from_tensor_slices`] takes.
///
/// Each [`DataLoader::iter`] is one epoch. With `shuffle(true)` every epoch is a new
/// uniform permutation (from `seed` when set, so runs repeat; the numbers are not
/// PyTorch's); a [`Sampler`] gives any other order.
///
/// ```
/// use rustflow::data::DataLoader;
/// use rustflow::Tensor;
/// let x = Tensor::new(&[10, 2], (0..20).map(|v| v as f32).collect()).unwrap();
/// let y = Tensor::vector((0..10).collect::<Vec<i32>>());
/// let loader = DataLoader::new((x, y), 4).unwrap().shuffle(true).seed(1);
/// assert_eq!(loader.len(), 3);
/// let mut seen = Vec::new();
/// for batch in &loader {
///     let batch = batch.unwrap();
///     let (bx, by) = batch.pair().unwrap();
///     assert_eq!(bx.shape()[1], 2);
///     seen.extend(by.to_vec::<i32>().unwrap());
/// }
/// seen.sort();
/// assert_eq!(seen, (0..10).collect::<Vec<i32>>());
/// ```
#[derive(Clone)]
pub struct DataLoader {
    data: Arc<Element>,
    len: usize,
    batch_size: usize,
    shuffle: bool,
    seed: Option<u64>,
    drop_last: bool,
    sampler: Option<Sampler>,
    num_workers: usize,
    epoch: Arc<AtomicU64>,
}

impl DataLoader {
    /// Batches of `batch_size` rows of `tensors`, in order, the last one possibly smaller.
    pub fn new(tensors: impl Into<Element>, batch_size: usize) -> Result<DataLoader> {
        if batch_size == 0 {
            return Err(Error::invalid("DataLoader: batch_size must be at least 1"));
        }
        let data = tensors.into();
        let len = slice_count(&data)?;
        Ok(DataLoader {
            data: Arc::new(data),
            len,
            batch_size,
            shuffle: false,
            seed: None,
            drop_last: false,
            sampler: None,
            num_workers: 0,
            epoch: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Whether each epoch visits the rows in a new random order.
    pub fn shuffle(self, shuffle: bool) -> DataLoader {
        DataLoader { shuffle, ..self }
    }

    /// Seeds the shuffling, so that epoch `k` has the same order on every run.
    pub fn seed(self, seed: u64) -> DataLoader {
        DataLoader {
            seed: Some(seed),
            ..self
        }
    }

    /// Whether to drop a last batch smaller than `batch_size`.
    pub fn drop_last(self, drop_last: bool) -> DataLoader {
        DataLoader { drop_last, ..self }
    }

    /// The rows of each epoch, in order, from `sampler(epoch)` (overrides `shuffle`).
    pub fn sampler<F>(self, sampler: F) -> DataLoader
    where
        F: Fn(u64) -> Vec<usize> + Send + Sync + 'static,
    {
        DataLoader {
            sampler: Some(Arc::new(sampler)),
            ..self
        }
    }

    /// Worker threads gathering batches ahead of the consumer (0: on the consumer's
    /// thread).
    pub fn num_workers(self, num_workers: usize) -> DataLoader {
        DataLoader {
            num_workers,
            ..self
        }
    }

    /// Batches per epoch (without a sampler; a sampler may give another count).
    pub fn len(&self) -> usize {
        if self.drop_last {
            self.len / self.batch_size
        } else {
            self.len.div_ceil(self.batch_size)
        }
    }

    /// True when an epoch yields no batch.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The batches as a [`Dataset`]: each pass is the next epoch (shared with
    /// [`DataLoader::iter`]).
    pub fn dataset(&self) -> Dataset {
        let data = self.data.clone();
        let gather = move |idx: Element| -> Result<Element> {
            let idx: Vec<usize> = idx
                .tensor()?
                .as_slice::<i64>()?
                .iter()
                .map(|&i| i as usize)
                .collect();
            data.map_tensors(&mut |t| rows::gather_rows(t, &idx))
        };
        let indices = Dataset::new(BatchIndices {
            loader: self.clone(),
        });
        indices
            .map_with(gather, MapOptions::parallel(self.num_workers))
            .prefetch(self.num_workers)
    }

    /// The next epoch's batches.
    pub fn iter(&self) -> Iter {
        self.dataset().iter()
    }

    fn order(&self, epoch: u64) -> Vec<usize> {
        if let Some(s) = &self.sampler {
            return s(epoch);
        }
        let mut order: Vec<usize> = (0..self.len).collect();
        if self.shuffle {
            let seed = self.seed.unwrap_or_else(random_seed);
            let mut rng = Philox::new(seed, epoch);
            for i in (1..order.len()).rev() {
                let j = ((u64::from(rng.next_u32()) << 32 | u64::from(rng.next_u32()))
                    % (i as u64 + 1)) as usize;
                order.swap(i, j);
            }
        }
        order
    }
}

impl IntoIterator for &DataLoader {
    type Item = Result<Element>;
    type IntoIter = Iter;

    fn into_iter(self) -> Iter {
        self.iter()
    }
}

/// The loader's epochs as int64 index vectors, one per batch.
struct BatchIndices {
    loader: DataLoader,
}

impl DatasetOp for BatchIndices {
    fn iter(&self) -> ElementIter {
        let epoch = self.loader.epoch.fetch_add(1, Ordering::Relaxed);
        let order: Vec<i64> = self
            .loader
            .order(epoch)
            .into_iter()
            .map(|i| i as i64)
            .collect();
        let size = self.loader.batch_size;
        let keep = if self.loader.drop_last {
            order.len() / size * size
        } else {
            order.len()
        };
        let batches: Vec<Element> = order[..keep]
            .chunks(size)
            .map(|c| Tensor::vector(c.to_vec()).into())
            .collect();
        Box::new(batches.into_iter().map(Ok))
    }

    fn cardinality(&self) -> Cardinality {
        match self.loader.sampler {
            Some(_) => Cardinality::Unknown,
            None => Cardinality::Finite(self.loader.len()),
        }
    }
}

//! Element-wise and structural transformations: `map`, `filter`, `take`, `skip`, `repeat`,
//! `zip`, `cache` and `interleave`.

use super::dataset::{error_iter, Cardinality, Dataset, DatasetOp, ElementIter};
use super::Element;
use crate::{Error, Result};
use std::sync::{Arc, Mutex};

/// A function applied to each element by `map`.
pub type MapFn = Arc<dyn Fn(Element) -> Result<Element> + Send + Sync>;

struct Map {
    input: Dataset,
    f: MapFn,
}

impl DatasetOp for Map {
    fn iter(&self) -> ElementIter {
        let f = self.f.clone();
        Box::new(self.input.iter().map(move |e| e.and_then(|e| f(e))))
    }

    fn cardinality(&self) -> Cardinality {
        self.input.cardinality()
    }
}

type Predicate = Arc<dyn Fn(&Element) -> Result<bool> + Send + Sync>;

struct Filter {
    input: Dataset,
    keep: Predicate,
}

impl DatasetOp for Filter {
    fn iter(&self) -> ElementIter {
        let keep = self.keep.clone();
        Box::new(self.input.iter().filter_map(move |e| match e {
            Ok(e) => match keep(&e) {
                Ok(true) => Some(Ok(e)),
                Ok(false) => None,
                Err(err) => Some(Err(err)),
            },
            Err(err) => Some(Err(err)),
        }))
    }
}

struct Take {
    input: Dataset,
    count: usize,
}

impl DatasetOp for Take {
    fn iter(&self) -> ElementIter {
        Box::new(self.input.iter().take(self.count))
    }

    fn cardinality(&self) -> Cardinality {
        match self.input.cardinality() {
            Cardinality::Finite(n) => Cardinality::Finite(n.min(self.count)),
            Cardinality::Infinite => Cardinality::Finite(self.count),
            Cardinality::Unknown => Cardinality::Unknown,
        }
    }
}

struct Skip {
    input: Dataset,
    count: usize,
}

impl DatasetOp for Skip {
    fn iter(&self) -> ElementIter {
        let mut it = self.input.iter();
        for _ in 0..self.count {
            match it.next() {
                Some(Ok(_)) => {}
                Some(Err(e)) => return error_iter(e),
                None => break,
            }
        }
        Box::new(it)
    }

    fn cardinality(&self) -> Cardinality {
        self.input
            .cardinality()
            .map(|n| n.saturating_sub(self.count))
    }
}

struct Repeat {
    input: Dataset,
    count: Option<usize>,
}

impl DatasetOp for Repeat {
    fn iter(&self) -> ElementIter {
        let input = self.input.clone();
        let count = self.count;
        let mut pass = 0;
        let mut current: Option<ElementIter> = None;
        let mut yielded_this_pass = false;
        Box::new(std::iter::from_fn(move || loop {
            if let Some(it) = current.as_mut() {
                match it.next() {
                    Some(item) => {
                        yielded_this_pass = true;
                        return Some(item);
                    }
                    None => {
                        current = None;
                        // An empty input repeated forever would never yield: stop instead.
                        if !yielded_this_pass {
                            return None;
                        }
                    }
                }
            }
            if count.is_some_and(|c| pass >= c) {
                return None;
            }
            pass += 1;
            yielded_this_pass = false;
            current = Some(Box::new(input.iter()));
        }))
    }

    fn cardinality(&self) -> Cardinality {
        match (self.count, self.input.cardinality()) {
            (_, Cardinality::Finite(0)) => Cardinality::Finite(0),
            (None, _) => Cardinality::Infinite,
            (Some(c), card) => card.map(|n| n * c),
        }
    }
}

struct Zip {
    inputs: Vec<Dataset>,
}

impl DatasetOp for Zip {
    fn iter(&self) -> ElementIter {
        let mut its: Vec<_> = self.inputs.iter().map(|d| d.iter()).collect();
        Box::new(std::iter::from_fn(move || {
            let mut parts = Vec::with_capacity(its.len());
            for it in its.iter_mut() {
                match it.next()? {
                    Ok(e) => parts.push(e),
                    Err(e) => return Some(Err(e)),
                }
            }
            Some(Ok(Element::Tuple(parts)))
        }))
    }

    fn cardinality(&self) -> Cardinality {
        let cards: Vec<_> = self.inputs.iter().map(|d| d.cardinality()).collect();
        if let Some(n) = cards
            .iter()
            .filter_map(|c| match c {
                Cardinality::Finite(n) => Some(*n),
                _ => None,
            })
            .min()
        {
            if n == 0 || !cards.contains(&Cardinality::Unknown) {
                return Cardinality::Finite(n);
            }
        }
        if cards.iter().all(|c| *c == Cardinality::Infinite) {
            Cardinality::Infinite
        } else {
            Cardinality::Unknown
        }
    }
}

struct Cache {
    input: Dataset,
    filled: Arc<Mutex<Option<Arc<Vec<Element>>>>>,
}

impl DatasetOp for Cache {
    fn iter(&self) -> ElementIter {
        let cached = self
            .filled
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(all) = cached {
            return Box::new((0..all.len()).map(move |i| Ok(all[i].clone())));
        }
        // First pass: read the input, keep what it yields, publish it once the pass ends.
        let mut input = self.input.iter();
        let mut kept = Some(Vec::new());
        let filled = self.filled.clone();
        Box::new(std::iter::from_fn(move || match input.next() {
            Some(Ok(e)) => {
                if let Some(k) = kept.as_mut() {
                    k.push(e.clone());
                }
                Some(Ok(e))
            }
            Some(Err(e)) => {
                kept = None;
                Some(Err(e))
            }
            None => {
                if let Some(k) = kept.take() {
                    *filled.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(k));
                }
                None
            }
        }))
    }

    fn cardinality(&self) -> Cardinality {
        self.input.cardinality()
    }
}

type DatasetFn = Arc<dyn Fn(Element) -> Result<Dataset> + Send + Sync>;

struct Interleave {
    input: Dataset,
    f: DatasetFn,
    cycle_length: usize,
    block_length: usize,
}

impl DatasetOp for Interleave {
    fn iter(&self) -> ElementIter {
        if self.cycle_length == 0 || self.block_length == 0 {
            return error_iter(Error::invalid(
                "interleave: cycle_length and block_length must be at least 1",
            ));
        }
        let mut input = self.input.iter();
        let f = self.f.clone();
        let block_length = self.block_length;
        let mut current: Vec<Option<ElementIter>> = (0..self.cycle_length).map(|_| None).collect();
        let (mut cycle, mut block, mut open, mut input_done) = (0, 0, 0, false);
        // TensorFlow's order: `block_length` elements from each open iterator in turn; an
        // exhausted one is replaced by the next input element's dataset in the same slot.
        Box::new(std::iter::from_fn(move || {
            while !input_done || open > 0 {
                if let Some(it) = current[cycle].as_mut() {
                    match it.next() {
                        Some(item) => {
                            block += 1;
                            if block == block_length {
                                block = 0;
                                cycle = (cycle + 1) % current.len();
                            }
                            return Some(item);
                        }
                        None => {
                            current[cycle] = None;
                            open -= 1;
                            block = 0;
                            cycle = (cycle + 1) % current.len();
                        }
                    }
                } else if !input_done {
                    match input.next() {
                        None => input_done = true,
                        Some(Err(e)) => return Some(Err(e)),
                        Some(Ok(e)) => match f(e) {
                            Ok(ds) => {
                                current[cycle] = Some(Box::new(ds.iter()));
                                open += 1;
                            }
                            Err(e) => return Some(Err(e)),
                        },
                    }
                } else {
                    block = 0;
                    cycle = (cycle + 1) % current.len();
                }
            }
            None
        }))
    }
}

impl Dataset {
    /// Applies `f` to each element (`Dataset.map`); see also
    /// [`Dataset::map_with`] for worker threads.
    pub fn map<F>(&self, f: F) -> Dataset
    where
        F: Fn(Element) -> Result<Element> + Send + Sync + 'static,
    {
        Dataset::new(Map {
            input: self.clone(),
            f: Arc::new(f),
        })
    }

    /// Keeps the elements for which `keep` returns true (`Dataset.filter`).
    pub fn filter<F>(&self, keep: F) -> Dataset
    where
        F: Fn(&Element) -> Result<bool> + Send + Sync + 'static,
    {
        Dataset::new(Filter {
            input: self.clone(),
            keep: Arc::new(keep),
        })
    }

    /// The first `count` elements (`Dataset.take`).
    pub fn take(&self, count: usize) -> Dataset {
        Dataset::new(Take {
            input: self.clone(),
            count,
        })
    }

    /// All but the first `count` elements (`Dataset.skip`).
    pub fn skip(&self, count: usize) -> Dataset {
        Dataset::new(Skip {
            input: self.clone(),
            count,
        })
    }

    /// The elements `count` times over, or forever with `None` (`Dataset.repeat`); each
    /// repetition is a new pass of the input, so a shuffle before it reshuffles.
    pub fn repeat(&self, count: Option<usize>) -> Dataset {
        Dataset::new(Repeat {
            input: self.clone(),
            count,
        })
    }

    /// Tuples of the datasets' elements side by side, as long as the shortest
    /// (`tf.data.Dataset.zip`).
    pub fn zip(datasets: Vec<Dataset>) -> Dataset {
        Dataset::new(Zip { inputs: datasets })
    }

    /// Keeps the elements of the first complete pass in memory and replays them on later
    /// passes (`Dataset.cache()`); a pass that stops early or fails caches nothing.
    pub fn cache(&self) -> Dataset {
        Dataset::new(Cache {
            input: self.clone(),
            filled: Arc::new(Mutex::new(None)),
        })
    }

    /// Maps each element to a dataset and interleaves their elements, `block_length` at a
    /// time from `cycle_length` of them in turn, in TensorFlow's order
    /// (`Dataset.interleave`). `cycle_length` 1 is `flat_map`.
    pub fn interleave<F>(&self, f: F, cycle_length: usize, block_length: usize) -> Dataset
    where
        F: Fn(Element) -> Result<Dataset> + Send + Sync + 'static,
    {
        Dataset::new(Interleave {
            input: self.clone(),
            f: Arc::new(f),
            cycle_length,
            block_length,
        })
    }
}

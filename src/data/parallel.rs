//! Background threads: `prefetch` (a thread fills a bounded queue while the consumer works)
//! and `map_with` worker threads (`num_parallel_calls`, at most [`MAX_MAP_THREADS`]), in
//! order unless `deterministic(false)`. Threads end when the pass ends or its iterator is
//! dropped.

use super::dataset::{error_iter, Cardinality, Dataset, DatasetOp, ElementIter};
use super::queue;
use super::transform::MapFn;
use super::Element;
use crate::{Error, Result};
use crossbeam_channel::{bounded, Receiver};
use std::collections::BTreeMap;
use std::sync::Arc;

struct Prefetch {
    input: Dataset,
    buffer_size: usize,
}

impl DatasetOp for Prefetch {
    fn iter(&self) -> ElementIter {
        let (tx, rx) = queue::bounded(self.buffer_size);
        let input = self.input.clone();
        let spawned = std::thread::Builder::new()
            .name("rustflow-prefetch".into())
            .spawn(move || {
                for item in input.iter() {
                    if tx.send(item).is_err() {
                        return; // the consumer is gone
                    }
                }
            });
        match spawned {
            Ok(_) => Box::new(rx),
            Err(e) => error_iter(Error::invalid(format!(
                "prefetch: cannot start a thread: {e}"
            ))),
        }
    }

    fn cardinality(&self) -> Cardinality {
        self.input.cardinality()
    }
}

/// The most worker threads one parallel map starts: a larger `num_parallel_calls` runs
/// on this many threads (with as many calls in flight), rather than asking the system for
/// a thread per call.
pub const MAX_MAP_THREADS: usize = 256;

/// Options of [`Dataset::map_with`], as `Dataset.map(f, num_parallel_calls, deterministic)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MapOptions {
    /// Worker threads applying the function (1 runs it on the consumer's thread; at most
    /// [`MAX_MAP_THREADS`] are started).
    pub num_parallel_calls: usize,
    /// Yield results in input order (true, the default) or as soon as they are ready.
    pub deterministic: bool,
}

impl MapOptions {
    /// `num_parallel_calls` workers, results in input order.
    pub fn parallel(num_parallel_calls: usize) -> MapOptions {
        MapOptions {
            num_parallel_calls,
            deterministic: true,
        }
    }

    /// Whether results keep the input order.
    pub fn deterministic(self, deterministic: bool) -> MapOptions {
        MapOptions {
            deterministic,
            ..self
        }
    }
}

struct ParallelMap {
    input: Dataset,
    f: MapFn,
    options: MapOptions,
}

/// The consumer's side of a parallel map: results tagged with their input position, a
/// token returned per result so that at most `2 * workers` elements are in flight.
struct Results {
    rx: Receiver<(usize, Result<Element>)>,
    tokens: Receiver<()>,
    pending: BTreeMap<usize, Result<Element>>,
    next: usize,
    deterministic: bool,
}

impl Iterator for Results {
    type Item = Result<Element>;

    fn next(&mut self) -> Option<Result<Element>> {
        let item = loop {
            if let Some(item) = self.pending.remove(&self.next) {
                break Some(item);
            }
            match self.rx.recv() {
                Ok((i, item)) if !self.deterministic || i == self.next => break Some(item),
                Ok((i, item)) => {
                    self.pending.insert(i, item);
                }
                Err(_) => break None,
            }
        };
        if item.is_some() {
            self.next += 1;
            let _ = self.tokens.try_recv();
        }
        item
    }
}

impl DatasetOp for ParallelMap {
    fn iter(&self) -> ElementIter {
        let workers = self.options.num_parallel_calls.clamp(1, MAX_MAP_THREADS);
        let in_flight = 2 * workers;
        let (token_tx, token_rx) = bounded::<()>(in_flight);
        let (job_tx, job_rx) = bounded::<(usize, Element)>(in_flight);
        let (out_tx, out_rx) = bounded::<(usize, Result<Element>)>(in_flight);
        let input = self.input.clone();
        let feeder_out = out_tx.clone();
        let started = std::thread::Builder::new()
            .name("rustflow-map-input".into())
            .spawn(move || {
                for (i, item) in input.iter().enumerate() {
                    if token_tx.send(()).is_err() {
                        return;
                    }
                    let sent = match item {
                        Ok(e) => job_tx.send((i, e)).is_ok(),
                        Err(e) => feeder_out.send((i, Err(e))).is_ok(),
                    };
                    if !sent {
                        return;
                    }
                }
            })
            .and_then(|_| {
                (0..workers).try_for_each(|k| {
                    let (jobs, out, f) = (job_rx.clone(), out_tx.clone(), self.f.clone());
                    std::thread::Builder::new()
                        .name(format!("rustflow-map-{k}"))
                        .spawn(move || {
                            for (i, e) in jobs {
                                if out.send((i, f(e))).is_err() {
                                    return;
                                }
                            }
                        })
                        .map(drop)
                })
            });
        if let Err(e) = started {
            return error_iter(Error::invalid(format!("map: cannot start a thread: {e}")));
        }
        Box::new(Results {
            rx: out_rx,
            tokens: token_rx,
            pending: BTreeMap::new(),
            next: 0,
            deterministic: self.options.deterministic,
        })
    }

    fn cardinality(&self) -> Cardinality {
        self.input.cardinality()
    }
}

impl Dataset {
    /// Computes up to `buffer_size` elements ahead on a background thread
    /// (`Dataset.prefetch`), so producing the next batch overlaps consuming this one.
    /// A size of 0 returns the dataset unchanged.
    pub fn prefetch(&self, buffer_size: usize) -> Dataset {
        if buffer_size == 0 {
            return self.clone();
        }
        Dataset::new(Prefetch {
            input: self.clone(),
            buffer_size,
        })
    }

    /// [`Dataset::map`] with options: `num_parallel_calls` worker threads, results in input
    /// order unless `deterministic(false)`.
    ///
    /// ```
    /// use rustflow::data::{Dataset, MapOptions};
    /// use rustflow::Tensor;
    /// let ds = Dataset::range(100).map_with(
    ///     |e| Ok(Tensor::scalar(e.tensor()?.scalar_value::<i64>()? * 2).into()),
    ///     MapOptions::parallel(4),
    /// );
    /// let v: Vec<i64> = ds.iter().map(|e| e.unwrap().tensor().unwrap().scalar_value().unwrap()).collect();
    /// assert_eq!(v, (0..100).map(|i| i * 2).collect::<Vec<_>>());
    /// ```
    pub fn map_with<F>(&self, f: F, options: MapOptions) -> Dataset
    where
        F: Fn(Element) -> Result<Element> + Send + Sync + 'static,
    {
        if options.num_parallel_calls <= 1 {
            return self.map(f);
        }
        Dataset::new(ParallelMap {
            input: self.clone(),
            f: Arc::new(f),
            options,
        })
    }
}

//! Server-side batching (`rustflow serve --batching`), as TensorFlow Serving's batching
//! session: predict requests for the same version, signature and outputs whose inputs agree
//! in dtype and in every dimension but the first are concatenated along dimension 0 into one
//! run, and each request gets its own rows of the outputs back.
//!
//! The first request of a batch leads it: it waits until the batch holds `max_batch_size`
//! rows or `timeout` has passed since it arrived, takes the batch, runs it and hands every
//! other request its rows; the others only wait for their answer. A batch never holds more
//! than `max_batch_size` rows: a request that would overflow the batch being filled closes
//! it (its leader runs it at once) and leads the next one. A request that cannot be batched
//! (a scalar input, inputs of different lengths) runs alone, and so does one of
//! `max_batch_size` rows or more: unsplit, as one run of its own size (TensorFlow Serving
//! refuses such a request unless `enable_large_batch_splitting` is on; running it whole
//! gives the same answer as splitting it). Batches are not padded: each runs with exactly
//! the rows its requests hold. When the merged run fails, or an output has no row per
//! input row, each request of the batch is run alone, so every one gets its own answer or
//! error.

use super::model::Servable;
use super::status::Status;
use crate::tensor::{rows, DType, Tensor};
use crossbeam_channel::{bounded, Sender};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// What a run answers: every output by key.
type Answer = Result<Vec<(String, Tensor)>, Status>;

/// How requests are batched (TensorFlow Serving's `max_batch_size` and
/// `batch_timeout_micros`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchingConfig {
    /// The most rows one merged run holds.
    pub max_batch_size: usize,
    /// How long the first request of a batch waits for others.
    pub timeout: Duration,
}

/// Requests that may share a run: the same version, signature, outputs, and inputs of the
/// same keys, dtypes and dimensions after the first.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct BatchKey {
    version: i64,
    signature: String,
    outputs: Vec<String>,
    inputs: Vec<(String, DType, Vec<usize>)>,
}

/// One request waiting in a batch.
struct Waiting {
    rows: usize,
    inputs: Vec<Tensor>,
    reply: Sender<Answer>,
}

/// The batch being filled for one key.
struct Open {
    /// Tells this batch from a later one of the same key.
    id: u64,
    rows: usize,
    requests: Vec<Waiting>,
}

/// The batches being filled, by key, and those closed (full, or overflowed by a later
/// request) whose leaders have yet to take them, by id.
#[derive(Default)]
struct Queues {
    open: HashMap<BatchKey, Open>,
    closed: HashMap<u64, Vec<Waiting>>,
}

impl Queues {
    /// Closes the batch filling for `key`, if any, for its leader to take.
    fn close(&mut self, key: &BatchKey) {
        if let Some(q) = self.open.remove(key) {
            self.closed.insert(q.id, q.requests);
        }
    }
}

/// Merges concurrent predict requests into batched runs (see the module docs).
pub struct Batcher {
    config: BatchingConfig,
    queues: Mutex<Queues>,
    /// Signalled when a batch is closed.
    full: Condvar,
    next_id: AtomicU64,
    runs: AtomicU64,
    requests: AtomicU64,
    /// The most rows one merged run has held.
    largest: AtomicU64,
}

impl std::fmt::Debug for Batcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher")
            .field("config", &self.config)
            .finish()
    }
}

impl Batcher {
    /// A batcher with these limits (a batch size of at least 1).
    pub fn new(config: BatchingConfig) -> Batcher {
        Batcher {
            config: BatchingConfig {
                max_batch_size: config.max_batch_size.max(1),
                ..config
            },
            queues: Mutex::new(Queues::default()),
            full: Condvar::new(),
            next_id: AtomicU64::new(0),
            runs: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            largest: AtomicU64::new(0),
        }
    }

    /// The merged runs made so far, the requests they answered and the most rows one
    /// held, in Prometheus' text format (`rustflow_batched_runs`,
    /// `rustflow_batched_requests`, `rustflow_batch_rows_max`).
    pub fn render(&self, model: &str) -> String {
        let mut s = String::new();
        for (name, help, kind, n) in [
            (
                "rustflow_batched_runs",
                "Runs that merged several requests.",
                "counter",
                &self.runs,
            ),
            (
                "rustflow_batched_requests",
                "Requests answered by merged runs.",
                "counter",
                &self.requests,
            ),
            (
                "rustflow_batch_rows_max",
                "The most rows one merged run held.",
                "gauge",
                &self.largest,
            ),
        ] {
            s.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name}{{model_name=\"{model}\"}} {}\n",
                n.load(Ordering::Relaxed)
            ));
        }
        s
    }

    /// Runs a predict request, merged with concurrent compatible ones when it can be.
    pub fn run(
        &self,
        servable: &Servable,
        signature: &str,
        inputs: Vec<(&str, Tensor)>,
        output_filter: &[String],
    ) -> Answer {
        let Some(rows) = batch_rows(&inputs).filter(|&r| r < self.config.max_batch_size) else {
            return servable.predict(signature, &inputs, output_filter);
        };
        let mut inputs = inputs;
        inputs.sort_by(|a, b| a.0.cmp(b.0));
        let key = BatchKey {
            version: servable.version,
            signature: signature.to_string(),
            outputs: output_filter.to_vec(),
            inputs: inputs
                .iter()
                .map(|(k, t)| (k.to_string(), t.dtype(), t.shape()[1..].to_vec()))
                .collect(),
        };
        let (reply, answer) = bounded(1);
        let waiting = Waiting {
            rows,
            inputs: inputs.into_iter().map(|(_, t)| t).collect(),
            reply,
        };
        let max = self.config.max_batch_size;
        let mut queues = self.queues.lock().unwrap_or_else(|p| p.into_inner());
        let joined = match queues.open.get_mut(&key) {
            Some(q) if q.rows + rows <= max => {
                q.rows += rows;
                q.requests.push(waiting);
                if q.rows == max {
                    queues.close(&key);
                    self.full.notify_all();
                }
                None
            }
            Some(_) => {
                // It would overflow the batch being filled: that one goes now, and this
                // request leads the next.
                queues.close(&key);
                self.full.notify_all();
                Some(waiting)
            }
            None => Some(waiting),
        };
        if let Some(waiting) = joined {
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            queues.open.insert(
                key.clone(),
                Open {
                    id,
                    rows,
                    requests: vec![waiting],
                },
            );
            let deadline = Instant::now() + self.config.timeout;
            loop {
                let filling = queues.open.get(&key).is_some_and(|q| q.id == id);
                let left = deadline.saturating_duration_since(Instant::now());
                if !filling || left.is_zero() {
                    break;
                }
                queues = self
                    .full
                    .wait_timeout(queues, left)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
            if queues.open.get(&key).is_some_and(|q| q.id == id) {
                queues.close(&key);
            }
            let batch = queues.closed.remove(&id).unwrap_or_default();
            drop(queues);
            self.run_batch(servable, &key, batch);
        } else {
            drop(queues);
        }
        answer.recv().unwrap_or_else(|_| {
            Err(Status::new(
                crate::proto::tf::error::Code::Internal,
                "the batch holding this request was dropped",
            ))
        })
    }

    /// Runs a batch as one run and answers each request with its rows; runs each request
    /// alone when that fails.
    fn run_batch(&self, servable: &Servable, key: &BatchKey, batch: Vec<Waiting>) {
        let alone = |w: &Waiting| {
            let inputs: Vec<(&str, Tensor)> = key
                .inputs
                .iter()
                .zip(&w.inputs)
                .map(|((k, _, _), t)| (k.as_str(), t.clone()))
                .collect();
            servable.predict(&key.signature, &inputs, &key.outputs)
        };
        if let [only] = &batch[..] {
            let _ = only.reply.send(alone(only));
            return;
        }
        match merged(servable, key, &batch) {
            Some(answers) => {
                let rows: usize = batch.iter().map(|w| w.rows).sum();
                self.largest.fetch_max(rows as u64, Ordering::Relaxed);
                self.runs.fetch_add(1, Ordering::Relaxed);
                self.requests
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                for (w, a) in batch.iter().zip(answers) {
                    let _ = w.reply.send(Ok(a));
                }
            }
            None => {
                for w in &batch {
                    let _ = w.reply.send(alone(w));
                }
            }
        }
    }
}

/// The rows of a request: the common first dimension of its inputs (`None` when an input
/// is a scalar, they differ, or there are none).
fn batch_rows(inputs: &[(&str, Tensor)]) -> Option<usize> {
    let mut rows = None;
    for (_, t) in inputs {
        let n = *t.shape().first()?;
        if rows.is_some_and(|r| r != n) {
            return None;
        }
        rows = Some(n);
    }
    rows.filter(|&r| r > 0)
}

/// The batch run as one, its outputs split back into each request's rows; `None` when the
/// run fails or an output does not have one row per input row.
fn merged(
    servable: &Servable,
    key: &BatchKey,
    batch: &[Waiting],
) -> Option<Vec<Vec<(String, Tensor)>>> {
    let total: usize = batch.iter().map(|w| w.rows).sum();
    let mut feeds = Vec::with_capacity(key.inputs.len());
    for (i, (k, dtype, inner)) in key.inputs.iter().enumerate() {
        let parts: Vec<&Tensor> = batch.iter().map(|w| &w.inputs[i]).collect();
        feeds.push((k.as_str(), rows::concat_rows(&parts, *dtype, inner).ok()?));
    }
    let outputs = servable
        .predict(&key.signature, &feeds, &key.outputs)
        .ok()?;
    if outputs
        .iter()
        .any(|(_, t)| t.shape().first() != Some(&total))
    {
        return None;
    }
    let mut start = 0;
    let mut answers = Vec::with_capacity(batch.len());
    for w in batch {
        let idx: Vec<usize> = (start..start + w.rows).collect();
        let mine = outputs
            .iter()
            .map(|(k, t)| Some((k.clone(), rows::gather_rows(t, &idx).ok()?)))
            .collect::<Option<Vec<_>>>()?;
        answers.push(mine);
        start += w.rows;
    }
    Some(answers)
}

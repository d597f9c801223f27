//! Server-side batching (`rustflow serve --batching`), as TensorFlow Serving's batching
//! session: predict requests for the same version, signature and outputs whose inputs agree
//! in dtype and in every dimension but the first are concatenated along dimension 0 into one
//! run, and each request gets its own rows of the outputs back.
//!
//! The first request of a batch leads it: it waits until the batch holds `max_batch_size`
//! rows or `timeout` has passed since it arrived, takes the batch, runs it and hands every
//! other request its rows; the others only wait for their answer. A request that cannot be
//! batched (a scalar input, inputs of different lengths, as many rows as a whole batch) runs
//! alone. When the merged run fails, or an output has no row per input row, each request
//! of the batch is run alone, so every one gets its own answer or error.

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
struct Queue {
    /// Tells this batch from a later one of the same key.
    id: u64,
    rows: usize,
    requests: Vec<Waiting>,
}

/// Merges concurrent predict requests into batched runs (see the module docs).
pub struct Batcher {
    config: BatchingConfig,
    queues: Mutex<HashMap<BatchKey, Queue>>,
    /// Signalled when a batch fills up.
    full: Condvar,
    next_id: AtomicU64,
    runs: AtomicU64,
    requests: AtomicU64,
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
            queues: Mutex::new(HashMap::new()),
            full: Condvar::new(),
            next_id: AtomicU64::new(0),
            runs: AtomicU64::new(0),
            requests: AtomicU64::new(0),
        }
    }

    /// The merged runs made so far and the requests they answered, in Prometheus' text
    /// format (`rustflow_batched_runs`, `rustflow_batched_requests`).
    pub fn render(&self, model: &str) -> String {
        let mut s = String::new();
        for (name, help, n) in [
            (
                "rustflow_batched_runs",
                "Runs that merged several requests.",
                &self.runs,
            ),
            (
                "rustflow_batched_requests",
                "Requests answered by merged runs.",
                &self.requests,
            ),
        ] {
            s.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} counter\n{name}{{model_name=\"{model}\"}} {}\n",
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
        let mut queues = self.queues.lock().unwrap_or_else(|p| p.into_inner());
        let leads = match queues.get_mut(&key) {
            Some(q) => {
                q.rows += rows;
                q.requests.push(waiting);
                if q.rows >= self.config.max_batch_size {
                    self.full.notify_all();
                }
                None
            }
            None => {
                let id = self.next_id.fetch_add(1, Ordering::Relaxed);
                queues.insert(
                    key.clone(),
                    Queue {
                        id,
                        rows,
                        requests: vec![waiting],
                    },
                );
                Some(id)
            }
        };
        if let Some(id) = leads {
            let deadline = Instant::now() + self.config.timeout;
            loop {
                let filling = queues
                    .get(&key)
                    .is_some_and(|q| q.id == id && q.rows < self.config.max_batch_size);
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
            let batch = queues.remove(&key).map(|q| q.requests).unwrap_or_default();
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

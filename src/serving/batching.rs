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
//! gives the same answer as splitting it). Batches are not padded to `max_batch_size`:
//! each runs with exactly the rows its requests hold. When the merged run fails, or an
//! output has no row per input row, each request of the batch is run alone, so every one
//! gets its own answer or error.
//!
//! With `pad_variable_length_inputs` (TensorFlow Serving's batching parameter of that
//! name), inputs need only agree in dtype and rank: each input of a batch is padded with
//! zeros (empty strings) at the end of every dimension after the first, up to the largest
//! in the batch, and an output whose dimensions after the first are an input's padded ones
//! is cut back to the request's own (a sequence output keeps its length; a reduction over
//! the padded axis sees the zeros, as in TensorFlow Serving).

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
    /// Batch inputs that differ in dimensions after the first, padding them with zeros.
    pub pad_variable_length_inputs: bool,
}

/// Requests that may share a run: the same version, signature, outputs, and inputs of the
/// same keys, dtypes and dimensions after the first (only their number when padding).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct BatchKey {
    version: i64,
    signature: String,
    outputs: Vec<String>,
    inputs: Vec<(String, DType, Inner)>,
}

/// An input's dimensions after the first, as batches are keyed by them.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Inner {
    /// These exactly.
    Dims(Vec<usize>),
    /// Any of this many (padded to the largest in the batch).
    Rank(usize),
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
                .map(|(k, t)| {
                    let inner = &t.shape()[1..];
                    let inner = if self.config.pad_variable_length_inputs {
                        Inner::Rank(inner.len())
                    } else {
                        Inner::Dims(inner.to_vec())
                    };
                    (k.to_string(), t.dtype(), inner)
                })
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

/// The batch run as one, its outputs split back into each request's rows (and, for padded
/// inputs, cut back to each request's own dimensions); `None` when the run fails or an
/// output does not have one row per input row.
fn merged(
    servable: &Servable,
    key: &BatchKey,
    batch: &[Waiting],
) -> Option<Vec<Vec<(String, Tensor)>>> {
    let total: usize = batch.iter().map(|w| w.rows).sum();
    let mut feeds = Vec::with_capacity(key.inputs.len());
    // Each input's dimensions after the first in the merged run.
    let mut padded_dims = Vec::with_capacity(key.inputs.len());
    for (i, (k, dtype, _)) in key.inputs.iter().enumerate() {
        let parts: Vec<&Tensor> = batch.iter().map(|w| &w.inputs[i]).collect();
        let inner = largest_inner(&parts);
        let padded = parts
            .iter()
            .map(|t| pad_rows(t, &inner))
            .collect::<Option<Vec<Tensor>>>()?;
        let padded: Vec<&Tensor> = padded.iter().collect();
        feeds.push((k.as_str(), rows::concat_rows(&padded, *dtype, &inner).ok()?));
        padded_dims.push(inner);
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
            .map(|(k, t)| {
                let rows = rows::gather_rows(t, &idx).ok()?;
                Some((k.clone(), unpad(rows, &padded_dims, w)?))
            })
            .collect::<Option<Vec<_>>>()?;
        answers.push(mine);
        start += w.rows;
    }
    Some(answers)
}

/// The largest of each dimension after the first over `parts` (of one rank).
fn largest_inner(parts: &[&Tensor]) -> Vec<usize> {
    let mut inner = parts.first().map_or(vec![], |t| t.shape()[1..].to_vec());
    for t in parts {
        for (d, &n) in inner.iter_mut().zip(&t.shape()[1..]) {
            *d = (*d).max(n);
        }
    }
    inner
}

/// `t` padded with zeros to `inner` after its first dimension (itself when it fits).
fn pad_rows(t: &Tensor, inner: &[usize]) -> Option<Tensor> {
    if &t.shape()[1..] == inner {
        return Some(t.clone());
    }
    let mut shape = vec![t.shape()[0]];
    shape.extend_from_slice(inner);
    rows::pad_stack(&[t], &shape, 0.0)
        .ok()?
        .reshape(&shape)
        .ok()
}

/// A request's rows of an output, cut back to the request's own dimensions when they are
/// those of an input the batch padded for it (the first such input decides).
fn unpad(out: Tensor, padded_dims: &[Vec<usize>], w: &Waiting) -> Option<Tensor> {
    let inner = &out.shape()[1..];
    let own = padded_dims
        .iter()
        .zip(&w.inputs)
        .find(|(padded, t)| padded.as_slice() == inner && &t.shape()[1..] != inner);
    match own {
        Some((_, t)) => {
            let mut shape = vec![w.rows];
            shape.extend_from_slice(&t.shape()[1..]);
            rows::crop(&out, &shape).ok()
        }
        None => Some(out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::saved_model::{self, Signature};
    use crate::{Graph, Session};
    use std::collections::BTreeMap;

    /// A SavedModel of y = 2x and s = sum(x, axis 1) for x of shape [batch, length].
    fn doubling_model() -> Servable {
        let mut g = Graph::new();
        let x = g.placeholder(DType::Float32, [None, None], "x").unwrap();
        let two = g.constant(2f32).unwrap();
        let y = g.mul(x, two).unwrap();
        let s = g.reduce_sum(x, &[1], false).unwrap();
        let mut signatures = BTreeMap::new();
        signatures.insert(
            "serving_default".to_string(),
            Signature::predict(&g, &[("x", x)], &[("y", y), ("s", s)]),
        );
        let dir = std::env::temp_dir().join(format!("rustflow-pad-{}", std::process::id()));
        saved_model::save(&Session::new(&g), &g, &dir, &["serve"], &signatures).unwrap();
        let servable = Servable::load(&dir, 1, Default::default()).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        servable
    }

    /// Runs `xs` as concurrent requests; the answers and the merged runs made.
    fn concurrent(servable: &Servable, pad: bool, xs: &[Tensor]) -> (Vec<Answer>, u64) {
        let batcher = Batcher::new(BatchingConfig {
            max_batch_size: xs.iter().map(|x| x.shape()[0]).sum(),
            // Long enough for both to join when they can; short when each runs alone.
            timeout: Duration::from_millis(if pad { 10_000 } else { 200 }),
            pad_variable_length_inputs: pad,
        });
        let answers = std::thread::scope(|s| {
            let handles: Vec<_> = xs
                .iter()
                .map(|x| {
                    let batcher = &batcher;
                    s.spawn(move || {
                        batcher.run(servable, "serving_default", vec![("x", x.clone())], &[])
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        (answers, batcher.runs.load(Ordering::Relaxed))
    }

    #[test]
    fn variable_length_inputs_are_padded_only_when_asked_and_cut_back() {
        let servable = doubling_model();
        let xs = [
            Tensor::from([[1f32, 2.]]),
            Tensor::from([[3f32, 4., 5.], [6., 7., 8.]]),
        ];
        // Hand values: y = 2x, s = the row sums.
        let want = [
            vec![
                ("s".to_string(), Tensor::from([3f32])),
                ("y".to_string(), Tensor::from([[2f32, 4.]])),
            ],
            vec![
                ("s".to_string(), Tensor::from([12f32, 21.])),
                (
                    "y".to_string(),
                    Tensor::from([[6f32, 8., 10.], [12., 14., 16.]]),
                ),
            ],
        ];
        // Padded: one merged run of [3, 3]; each gets its own rows and lengths back (the
        // zeros add nothing to the sums).
        let (answers, runs) = concurrent(&servable, true, &xs);
        assert_eq!(runs, 1);
        for (a, w) in answers.into_iter().zip(&want) {
            assert_eq!(&a.unwrap(), w);
        }
        // Without the flag the lengths differ: no merged run, the same answers.
        let (answers, runs) = concurrent(&servable, false, &xs);
        assert_eq!(runs, 0);
        for (a, w) in answers.into_iter().zip(&want) {
            assert_eq!(&a.unwrap(), w);
        }
    }
}

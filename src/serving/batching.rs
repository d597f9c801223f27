//! Server-side batching (`rustflow serve --batching`), as TensorFlow Serving's batching
//! session: predict requests for the same version, signature and outputs whose inputs agree
//! in dtype and in every dimension but the first are concatenated along dimension 0 into one
//! run, and each request gets its own rows of the outputs back.
//!
//! A request that joins a batch waits for its answer on a channel, holding no thread. A
//! batch runs as soon as it holds `max_batch_size` rows (the request that fills it closes
//! it), or `timeout` after its first request arrived (kept by a [`Timer`] thread to tens of
//! microseconds, not tokio's millisecond ticks), as one run on one thread: inline on
//! an async worker when [`Dispatch`] estimates it short, else on the blocking pool; at most
//! `num_batch_threads` merged runs at once. A batch never holds more than `max_batch_size`
//! rows: a request that would overflow the batch being filled closes it (it runs at once)
//! and starts the next one. The batches being filled and those closed but waiting for a
//! batch thread are the queue: a request that would open a batch when it already holds
//! `max_enqueued_batches` is refused `UNAVAILABLE` (HTTP 503), as TensorFlow Serving
//! refuses a task when its batch queue is full. A request that cannot be batched
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

use super::dispatch::Dispatch;
use super::metrics::Api;
use super::model::Servable;
use super::status::Status;
use super::timer::Timer;
use crate::proto::tf::error::Code;
use crate::tensor::{rows, DType, Tensor};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, Semaphore};

/// What a run answers: every output by key.
type Answer = Result<Vec<(String, Tensor)>, Status>;

/// How merged runs are costed by [`Dispatch`]: apart from the requests' own.
const BATCH_API: Api = Api {
    entrypoint: "BATCH",
    method: "predict",
};

/// How requests are batched (TensorFlow Serving's batching parameters).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchingConfig {
    /// The most rows one merged run holds (`max_batch_size`).
    pub max_batch_size: usize,
    /// How long a batch waits for more requests after its first (`batch_timeout_micros`).
    pub timeout: Duration,
    /// Batch inputs that differ in dimensions after the first, padding them with zeros
    /// (`pad_variable_length_inputs`).
    pub pad_variable_length_inputs: bool,
    /// The most batches being filled or waiting for a batch thread at once
    /// (`max_enqueued_batches`): a request that would open one more is refused
    /// `UNAVAILABLE` (HTTP 503).
    pub max_enqueued_batches: usize,
    /// The most merged runs at once (`num_batch_threads`).
    pub num_batch_threads: usize,
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
    reply: oneshot::Sender<Answer>,
}

/// The batch being filled for one key.
struct Open {
    /// Tells this batch from a later one of the same key.
    id: u64,
    rows: usize,
    requests: Vec<Waiting>,
}

/// The batches being filled, by key, and how many closed ones wait for a batch thread.
#[derive(Default)]
struct Queues {
    open: HashMap<BatchKey, Open>,
    waiting_to_run: usize,
}

/// A closed batch, ready to run.
struct Closed {
    servable: Arc<Servable>,
    key: BatchKey,
    requests: Vec<Waiting>,
}

/// What the batcher's tasks share.
struct Shared {
    config: BatchingConfig,
    queues: Mutex<Queues>,
    /// A permit per batch thread.
    threads: Semaphore,
    /// Where merged runs run (inline when short).
    dispatch: Arc<Dispatch>,
    /// Closes batches at their timeout.
    timer: Timer,
    next_id: AtomicU64,
    runs: AtomicU64,
    requests: AtomicU64,
    /// The most rows one merged run has held.
    largest: AtomicU64,
}

/// Merges concurrent predict requests into batched runs (see the module docs).
pub struct Batcher {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Batcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher")
            .field("config", &self.shared.config)
            .finish()
    }
}

impl Batcher {
    /// A batcher with these limits (each at least 1) whose merged runs go where
    /// `dispatch` puts them.
    pub fn new(config: BatchingConfig, dispatch: Arc<Dispatch>) -> Batcher {
        let config = BatchingConfig {
            max_batch_size: config.max_batch_size.max(1),
            max_enqueued_batches: config.max_enqueued_batches.max(1),
            num_batch_threads: config.num_batch_threads.max(1),
            ..config
        };
        Batcher {
            shared: Arc::new(Shared {
                config,
                queues: Mutex::new(Queues::default()),
                threads: Semaphore::new(config.num_batch_threads),
                dispatch,
                timer: Timer::default(),
                next_id: AtomicU64::new(0),
                runs: AtomicU64::new(0),
                requests: AtomicU64::new(0),
                largest: AtomicU64::new(0),
            }),
        }
    }

    /// The merged runs made so far, the requests they answered, the most rows one held
    /// and the batches enqueued now, in Prometheus' text format (`rustflow_batched_runs`,
    /// `rustflow_batched_requests`, `rustflow_batch_rows_max`, `rustflow_batches_enqueued`).
    pub fn render(&self, model: &str) -> String {
        let sh = &self.shared;
        let enqueued = {
            let q = sh.queues.lock().unwrap_or_else(|p| p.into_inner());
            (q.open.len() + q.waiting_to_run) as u64
        };
        let mut s = String::new();
        for (name, help, kind, n) in [
            (
                "rustflow_batched_runs",
                "Runs that merged several requests.",
                "counter",
                sh.runs.load(Ordering::Relaxed),
            ),
            (
                "rustflow_batched_requests",
                "Requests answered by merged runs.",
                "counter",
                sh.requests.load(Ordering::Relaxed),
            ),
            (
                "rustflow_batch_rows_max",
                "The most rows one merged run held.",
                "gauge",
                sh.largest.load(Ordering::Relaxed),
            ),
            (
                "rustflow_batches_enqueued",
                "Batches being filled or waiting for a batch thread.",
                "gauge",
                enqueued,
            ),
        ] {
            s.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name}{{model_name=\"{model}\"}} {n}\n"
            ));
        }
        s
    }

    /// Runs a predict request, merged with concurrent compatible ones when it can be.
    /// The request waits for its answer without holding a thread; the merged run is made
    /// by the request that fills the batch, or at the batch's timeout, on one thread.
    pub async fn run(
        &self,
        servable: &Arc<Servable>,
        signature: &str,
        inputs: Vec<(String, Tensor)>,
        output_filter: &[String],
    ) -> Answer {
        let sh = &self.shared;
        let Some(rows) = batch_rows(&inputs).filter(|&r| r < sh.config.max_batch_size) else {
            let (servable, signature) = (servable.clone(), signature.to_string());
            let output_filter = output_filter.to_vec();
            let bytes = input_bytes(inputs.iter().map(|(_, t)| t));
            return sh
                .dispatch
                .run(BATCH_API, &signature.clone(), bytes, move || {
                    servable.predict(&signature, inputs, &output_filter)
                })
                .await;
        };
        let mut inputs = inputs;
        inputs.sort_by(|a, b| a.0.cmp(&b.0));
        let key = BatchKey {
            version: servable.version,
            signature: signature.to_string(),
            outputs: output_filter.to_vec(),
            inputs: inputs
                .iter()
                .map(|(k, t)| {
                    let inner = &t.shape()[1..];
                    let inner = if sh.config.pad_variable_length_inputs {
                        Inner::Rank(inner.len())
                    } else {
                        Inner::Dims(inner.to_vec())
                    };
                    (k.clone(), t.dtype(), inner)
                })
                .collect(),
        };
        let (reply, answer) = oneshot::channel();
        let waiting = Waiting {
            rows,
            inputs: inputs.into_iter().map(|(_, t)| t).collect(),
            reply,
        };
        let max = sh.config.max_batch_size;
        let mut to_run = None;
        let refused;
        {
            let mut q = sh.queues.lock().unwrap_or_else(|p| p.into_inner());
            let q = &mut *q;
            let lead = match q.open.get_mut(&key) {
                Some(open) if open.rows + rows <= max => {
                    open.rows += rows;
                    open.requests.push(waiting);
                    if open.rows == max {
                        // Full: it runs now, not at its timeout.
                        to_run = q.open.remove(&key);
                    }
                    None
                }
                // It would overflow the batch being filled: that one runs now, and this
                // request leads the next.
                Some(_) => {
                    to_run = q.open.remove(&key);
                    Some(waiting)
                }
                None => Some(waiting),
            };
            if to_run.is_some() {
                q.waiting_to_run += 1;
            }
            let enqueued = q.open.len() + q.waiting_to_run;
            refused = lead.is_some() && enqueued >= sh.config.max_enqueued_batches;
            if let Some(waiting) = lead.filter(|_| !refused) {
                let id = sh.next_id.fetch_add(1, Ordering::Relaxed);
                let (batcher, s, k) = (self.clone_ref(), servable.clone(), key.clone());
                let runtime = tokio::runtime::Handle::current();
                sh.timer.at(Instant::now() + sh.config.timeout, move || {
                    let _in_runtime = runtime.enter();
                    batcher.close_at_timeout(&s, &k, id);
                });
                let requests = vec![waiting];
                q.open.insert(key.clone(), Open { id, rows, requests });
            }
        }
        if let Some(open) = to_run {
            self.close(open, servable, &key);
        }
        if refused {
            return Err(Status::new(
                Code::Unavailable,
                format!(
                    "the batch scheduling queue is full (--max-enqueued-batches {}): \
                     try again later",
                    sh.config.max_enqueued_batches
                ),
            ));
        }
        let answered = async {
            answer.await.unwrap_or_else(|_| {
                Err(Status::new(
                    Code::Internal,
                    "the batch holding this request was dropped",
                ))
            })
        };
        sh.dispatch.within_timeout(answered).await
    }

    /// Another handle on the same batcher (for its tasks).
    fn clone_ref(&self) -> Batcher {
        Batcher {
            shared: self.shared.clone(),
        }
    }

    /// Closes the batch `id` of `key` if it is still being filled.
    fn close_at_timeout(&self, servable: &Arc<Servable>, key: &BatchKey, id: u64) {
        let open = {
            let mut q = self.shared.queues.lock().unwrap_or_else(|p| p.into_inner());
            if q.open.get(key).is_none_or(|o| o.id != id) {
                return;
            }
            q.waiting_to_run += 1;
            q.open.remove(key)
        };
        if let Some(open) = open {
            self.close(open, servable, key);
        }
    }

    /// Hands a closed batch (counted in `waiting_to_run`) to a task that runs it once a
    /// batch thread is free.
    fn close(&self, open: Open, servable: &Arc<Servable>, key: &BatchKey) {
        let batch = Closed {
            servable: servable.clone(),
            key: key.clone(),
            requests: open.requests,
        };
        let batcher = self.clone_ref();
        tokio::spawn(async move { batcher.execute(batch).await });
    }

    /// Runs a closed batch on one thread when a batch thread is free.
    async fn execute(&self, batch: Closed) {
        let sh = &self.shared;
        let permit = sh.threads.acquire().await;
        sh.queues
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .waiting_to_run -= 1;
        let Closed {
            servable,
            key,
            requests,
        } = batch;
        let bytes = input_bytes(requests.iter().flat_map(|w| &w.inputs));
        let signature = key.signature.clone();
        let shared = sh.clone();
        let ran = sh
            .dispatch
            .run(BATCH_API, &signature, bytes, move || {
                shared.run_batch(&servable, &key, requests);
                Ok(())
            })
            .await;
        drop(permit);
        if let Err(e) = ran {
            // The run panicked: its requests' senders are gone, and each gets the
            // "dropped" answer.
            eprintln!("rustflow: a batched run failed: {}", e.message);
        }
    }
}

impl Shared {
    /// Runs a batch as one run and answers each request with its rows; runs each request
    /// alone when that fails.
    fn run_batch(&self, servable: &Servable, key: &BatchKey, batch: Vec<Waiting>) {
        let alone = |w: &Waiting| {
            let inputs = key
                .inputs
                .iter()
                .zip(&w.inputs)
                .map(|((k, _, _), t)| (k.clone(), t.clone()))
                .collect();
            servable.predict(&key.signature, inputs, &key.outputs)
        };
        if let [_] = &batch[..] {
            for w in batch {
                let a = alone(&w);
                let _ = w.reply.send(a);
            }
            return;
        }
        match merged(servable, key, &batch) {
            Some(answers) => {
                let rows: usize = batch.iter().map(|w| w.rows).sum();
                self.largest.fetch_max(rows as u64, Ordering::Relaxed);
                self.runs.fetch_add(1, Ordering::Relaxed);
                self.requests
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                for (w, a) in batch.into_iter().zip(answers) {
                    let _ = w.reply.send(Ok(a));
                }
            }
            None => {
                for w in batch {
                    let a = alone(&w);
                    let _ = w.reply.send(a);
                }
            }
        }
    }
}

/// The bytes of these tensors' elements (how runs are costed).
fn input_bytes<'a>(tensors: impl Iterator<Item = &'a Tensor>) -> usize {
    tensors.map(|t| t.len() * t.dtype().size()).sum()
}

/// The rows of a request: the common first dimension of its inputs (`None` when an input
/// is a scalar, they differ, or there are none).
fn batch_rows(inputs: &[(String, Tensor)]) -> Option<usize> {
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
        feeds.push((k.clone(), rows::concat_rows(&padded, *dtype, &inner).ok()?));
        padded_dims.push(inner);
    }
    let outputs = servable.predict(&key.signature, feeds, &key.outputs).ok()?;
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
        // Tests run in parallel: each model in its own folder.
        static MODELS: AtomicU64 = AtomicU64::new(0);
        let n = MODELS.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("rustflow-pad-{}-{n}", std::process::id()));
        saved_model::save(&Session::new(&g), &g, &dir, &["serve"], &signatures).unwrap();
        let servable = Servable::load(&dir, 1, Default::default()).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        servable
    }

    fn batcher(max_batch_size: usize, timeout: Duration, pad: bool, queue: usize) -> Batcher {
        let config = BatchingConfig {
            max_batch_size,
            timeout,
            pad_variable_length_inputs: pad,
            max_enqueued_batches: queue,
            num_batch_threads: 1,
        };
        Batcher::new(
            config,
            Arc::new(Dispatch::new(
                Duration::from_micros(200),
                Duration::from_secs(30),
                1,
            )),
        )
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    }

    /// A request of `x` to the batcher, as a task.
    fn request(b: &Batcher, s: &Arc<Servable>, x: &Tensor) -> tokio::task::JoinHandle<Answer> {
        let (b, s, x) = (b.clone_ref(), s.clone(), x.clone());
        tokio::spawn(async move {
            b.run(&s, "serving_default", vec![("x".to_string(), x)], &[])
                .await
        })
    }

    /// Runs `xs` as concurrent requests; the answers and the merged runs made.
    fn concurrent(servable: &Arc<Servable>, pad: bool, xs: &[Tensor]) -> (Vec<Answer>, u64) {
        let rows = xs.iter().map(|x| x.shape()[0]).sum();
        // Long enough for both to join when they can; short when each runs alone.
        let timeout = Duration::from_millis(if pad { 10_000 } else { 200 });
        let batcher = batcher(rows, timeout, pad, 10);
        let answers = runtime().block_on(async {
            let tasks: Vec<_> = xs.iter().map(|x| request(&batcher, servable, x)).collect();
            let mut answers = Vec::new();
            for t in tasks {
                answers.push(t.await.unwrap());
            }
            answers
        });
        (answers, batcher.shared.runs.load(Ordering::Relaxed))
    }

    #[test]
    fn variable_length_inputs_are_padded_only_when_asked_and_cut_back() {
        let servable = Arc::new(doubling_model());
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

    #[test]
    fn a_lone_request_is_answered_at_the_timeout_not_the_next_millisecond() {
        let servable = Arc::new(doubling_model());
        let x = Tensor::from([[1f32, 2.]]);
        let timeout = Duration::from_micros(300);
        let b = batcher(8, timeout, false, 10);
        let rt = runtime();
        // The first request measures the run (Dispatch); then the best of many lone ones:
        // a loaded machine may delay any one, not all.
        let mut best = Duration::MAX;
        for _ in 0..30 {
            let start = std::time::Instant::now();
            let a = rt
                .block_on(async { request(&b, &servable, &x).await })
                .unwrap();
            let took = start.elapsed();
            assert_eq!(a.unwrap()[1].1, Tensor::from([[2f32, 4.]]));
            assert!(
                took >= timeout,
                "answered after {took:?}, before the timeout"
            );
            best = best.min(took);
        }
        assert_eq!(b.shared.runs.load(Ordering::Relaxed), 0);
        assert!(best < Duration::from_micros(900), "{best:?} at best");
    }

    #[test]
    fn a_full_batch_runs_at_once_and_a_full_queue_answers_unavailable() {
        let servable = Arc::new(doubling_model());
        let x = |v: &[f32]| Tensor::new(&[1, v.len()], v.to_vec()).unwrap();
        let rt = runtime();
        // Two rows fill a batch of two: it runs without waiting for its minute.
        let b = batcher(2, Duration::from_secs(60), false, 10);
        let start = std::time::Instant::now();
        let (a, c) = rt.block_on(async {
            let a = request(&b, &servable, &x(&[1., 2.]));
            let c = request(&b, &servable, &x(&[3., 4.]));
            (a.await.unwrap(), c.await.unwrap())
        });
        assert!(start.elapsed() < Duration::from_secs(30));
        assert_eq!(a.unwrap()[1].1, Tensor::from([[2f32, 4.]]));
        assert_eq!(c.unwrap()[1].1, Tensor::from([[6f32, 8.]]));
        assert_eq!(b.shared.runs.load(Ordering::Relaxed), 1);

        // A queue of one batch: while [1, 2] waits in it, a request of another shape
        // (another batch) is refused; one of the same shape joins it.
        let b = batcher(4, Duration::from_millis(1000), false, 1);
        rt.block_on(async {
            let first = request(&b, &servable, &x(&[1., 2.]));
            while !b
                .render("m")
                .contains("rustflow_batches_enqueued{model_name=\"m\"} 1\n")
            {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            let refused = request(&b, &servable, &x(&[1., 2., 3.])).await.unwrap();
            assert_eq!(refused.unwrap_err().code, Code::Unavailable);
            let joined = request(&b, &servable, &x(&[5., 6.])).await.unwrap();
            assert_eq!(joined.unwrap()[1].1, Tensor::from([[10f32, 12.]]));
            assert_eq!(
                first.await.unwrap().unwrap()[1].1,
                Tensor::from([[2f32, 4.]])
            );
            // Answered: the queue has room again.
            let later = request(&b, &servable, &x(&[1., 2., 3.])).await.unwrap();
            assert_eq!(later.unwrap()[1].1, Tensor::from([[2f32, 4., 6.]]));
        });
    }
}

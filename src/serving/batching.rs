//! Server-side batching (`rustflow serve --batching`), as TensorFlow Serving's batching
//! session: predict requests for the same version, signature and outputs whose inputs agree
//! in dtype and in every dimension but the first are concatenated along dimension 0 into one
//! run, and each request gets its own rows of the outputs back.
//!
//! Batches are kept per thread ([`Sharded`]): a request joins the batch being filled on the
//! thread that decoded it, and the batch runs on that thread, so that no request waits for
//! another thread to wake it. The request that opens a batch leads it: it yields to the
//! other tasks of its thread, which (after the runtime has looked for newly readable
//! sockets) decode the requests that have arrived and join the batch; when a round adds
//! nothing (the thread's queue is drained), the batch holds `max_batch_size` rows (the
//! request that fills it closes it), or `timeout` has passed since it opened, it closes.
//! TensorFlow Serving's `batch_timeout_micros` is thus the longest a batch waits while
//! requests keep arriving; a lone request runs at once. The closed batch runs as one run
//! on its thread: inline on a REST thread (a current-thread runtime: the thread is the
//! batch thread, and requests that arrive while it runs join the next batch), on a
//! multi-thread runtime (gRPC) where [`Dispatch`] puts it (inline when estimated short,
//! else on the blocking pool); at most `num_batch_threads` merged runs at once. A batch
//! never holds more than `max_batch_size` rows: a request that would overflow the batch
//! being filled closes it (it runs at once) and starts the next one. A thread's batches
//! being filled and those closed but waiting for a batch thread are its queue: a request
//! that would open a batch when its thread's queue already holds `max_enqueued_batches` is
//! refused `UNAVAILABLE` (HTTP 503), as TensorFlow Serving refuses a task when its batch
//! queue is full. A request that cannot be batched (a scalar input, inputs of different
//! lengths) runs alone, and so does one of `max_batch_size` rows or more: unsplit, as one
//! run of its own size (TensorFlow Serving refuses such a request unless
//! `enable_large_batch_splitting` is on; running it whole gives the same answer as
//! splitting it). Batches are not padded to `max_batch_size`: each runs with exactly the
//! rows its requests hold. When the merged run fails, or an output has no row per input
//! row, each request of the batch is run alone, so every one gets its own answer or error.
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
use super::sharded::Sharded;
use super::status::Status;
use crate::proto::tf::error::Code;
use crate::tensor::{rows, DType, Tensor};
use foldhash::fast::FixedState;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::runtime::{Handle, RuntimeFlavor};
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

/// One thread's batches being filled, by key (looked up on every request, so hashed with
/// foldhash rather than std's SipHash), and how many of its closed ones wait for a batch
/// thread.
#[derive(Default)]
struct Queues {
    open: HashMap<BatchKey, Open, FixedState>,
    waiting_to_run: usize,
}

/// What the batcher's tasks share.
struct Shared {
    config: BatchingConfig,
    /// Each thread's queue.
    queues: Sharded<Queues>,
    /// A permit per batch thread.
    threads: Semaphore,
    /// Where merged runs run (inline when short).
    dispatch: Arc<Dispatch>,
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
                queues: Sharded::default(),
                threads: Semaphore::new(config.num_batch_threads),
                dispatch,
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
        let mut enqueued = 0;
        sh.queues
            .for_each(|q| enqueued += (q.open.len() + q.waiting_to_run) as u64);
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

    /// Runs a predict request, merged with concurrent compatible ones of its thread when
    /// it can be (see the module docs). A request that joins a batch waits for its answer
    /// without holding a thread; the merged run is made by the request that fills the
    /// batch, or by the one that opened it once its thread has nothing more to add.
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
        let slot = sh.queues.local_index();
        let mut to_run = None;
        // The batch this request opened, if it did.
        let mut led = None;
        let refused;
        {
            let mut q = sh.queues.slot(slot);
            let q = &mut *q;
            let lead = match q.open.get_mut(&key) {
                Some(open) if open.rows + rows <= max => {
                    open.rows += rows;
                    open.requests.push(waiting);
                    if open.rows == max {
                        // Full: it runs now.
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
                let requests = vec![waiting];
                q.open.insert(key.clone(), Open { id, rows, requests });
                led = Some(id);
            }
        }
        if let Some(open) = to_run {
            self.execute(open, servable, &key, slot).await;
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
        if let Some(id) = led {
            self.lead(servable, &key, slot, id, rows).await;
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

    /// Fills the batch `id` of `key` in thread slot `slot`, opened with `rows` rows, while
    /// the thread's other tasks keep adding to it, then runs it: when a round of them adds nothing, or its timeout
    /// has passed (see the module docs). Returns at once if a request that filled or
    /// overflowed it has closed it.
    async fn lead(
        &self,
        servable: &Arc<Servable>,
        key: &BatchKey,
        slot: usize,
        id: u64,
        rows: usize,
    ) {
        let sh = &self.shared;
        let deadline = Instant::now() + sh.config.timeout;
        let mut seen = rows;
        loop {
            // Runs the thread's other ready tasks and polls its sockets before this one
            // resumes (tokio defers a yielded task's wake-up until then).
            tokio::task::yield_now().await;
            let open = {
                let mut q = sh.queues.slot(slot);
                let Some(open) = q.open.get(key).filter(|o| o.id == id) else {
                    return;
                };
                let grew = open.rows != seen;
                seen = open.rows;
                if grew && Instant::now() < deadline {
                    continue;
                }
                q.waiting_to_run += 1;
                q.open.remove(key)
            };
            if let Some(open) = open {
                self.execute(open, servable, key, slot).await;
            }
            return;
        }
    }

    /// Runs a closed batch (counted in `waiting_to_run` of thread slot `slot`) once a batch
    /// thread is free: on this thread when it is a REST thread, else where [`Dispatch`]
    /// puts it.
    async fn execute(&self, open: Open, servable: &Arc<Servable>, key: &BatchKey, slot: usize) {
        let sh = &self.shared;
        let permit = sh.threads.acquire().await;
        sh.queues.slot(slot).waiting_to_run -= 1;
        let requests = open.requests;
        let ran = if Handle::current().runtime_flavor() == RuntimeFlavor::CurrentThread {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                sh.run_batch(servable, key, requests)
            }))
            .map_err(|_| Status::new(Code::Internal, "the run failed: it panicked"))
        } else {
            let bytes = input_bytes(requests.iter().flat_map(|w| &w.inputs));
            let (shared, servable, key) = (sh.clone(), servable.clone(), key.clone());
            sh.dispatch
                .run(BATCH_API, &key.signature.clone(), bytes, move || {
                    shared.run_batch(&servable, &key, requests);
                    Ok(())
                })
                .await
        };
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

    /// A runtime as a REST thread runs: one thread, whose requests share batches.
    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    /// A request of `x` to the batcher, as a task.
    fn request(b: &Batcher, s: &Arc<Servable>, x: &Tensor) -> tokio::task::JoinHandle<Answer> {
        let (b, s, x) = (
            Batcher {
                shared: b.shared.clone(),
            },
            s.clone(),
            x.clone(),
        );
        tokio::spawn(async move {
            b.run(&s, "serving_default", vec![("x".to_string(), x)], &[])
                .await
        })
    }

    /// Runs `xs` as concurrent requests; the answers and the merged runs made.
    fn concurrent(servable: &Arc<Servable>, pad: bool, xs: &[Tensor]) -> (Vec<Answer>, u64) {
        let rows = xs.iter().map(|x| x.shape()[0]).sum();
        // Requests of one round of the thread's tasks share a batch, not those the
        // timeout would let in.
        let batcher = batcher(rows, Duration::from_secs(60), pad, 10);
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
    fn a_lone_request_runs_once_its_thread_has_nothing_more_not_at_the_timeout() {
        let servable = Arc::new(doubling_model());
        let x = Tensor::from([[1f32, 2.]]);
        let b = batcher(8, Duration::from_secs(20), false, 10);
        let rt = runtime();
        for _ in 0..3 {
            let start = Instant::now();
            let a = rt
                .block_on(async { request(&b, &servable, &x).await })
                .unwrap();
            assert_eq!(a.unwrap()[1].1, Tensor::from([[2f32, 4.]]));
            let took = start.elapsed();
            assert!(took < Duration::from_secs(10), "answered after {took:?}");
        }
        assert_eq!(b.shared.runs.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_batch_that_keeps_growing_closes_at_its_timeout() {
        use std::sync::atomic::AtomicBool;
        let servable = Arc::new(doubling_model());
        let x = |v: f32| Tensor::new(&[1, 2], vec![v, v + 1.]).unwrap();
        let timeout = Duration::from_millis(30);
        let b = Arc::new(batcher(1 << 30, timeout, false, 10));
        let rt = runtime();
        rt.block_on(async {
            let start = Instant::now();
            let first = request(&b, &servable, &x(1.));
            // A request more on every round of the thread's tasks: its queue never drains.
            let stop = Arc::new(AtomicBool::new(false));
            let producer = {
                let (b, servable, stop) = (b.clone(), servable.clone(), stop.clone());
                tokio::spawn(async move {
                    let mut sent = Vec::new();
                    let mut v = 2.;
                    while !stop.load(Ordering::Relaxed) {
                        sent.push((v, request(&b, &servable, &x(v))));
                        v += 1.;
                        tokio::task::yield_now().await;
                    }
                    for (v, r) in sent {
                        let a = r.await.unwrap().unwrap();
                        assert_eq!(a[1].1, Tensor::from([[2. * v, 2. * v + 2.]]));
                    }
                })
            };
            let a = first.await.unwrap().unwrap();
            let took = start.elapsed();
            stop.store(true, Ordering::Relaxed);
            assert_eq!(a[1].1, Tensor::from([[2f32, 4.]]));
            // Not before its timeout (requests kept coming), and not much after.
            assert!(took >= timeout, "closed after {took:?}");
            assert!(took < Duration::from_secs(10), "closed after {took:?}");
            producer.await.unwrap();
        });
        // The first batch merged the requests of many rounds.
        let largest = b.shared.largest.load(Ordering::Relaxed);
        assert!(largest > 2, "{largest} rows at most");
    }

    #[test]
    fn a_full_batch_runs_at_once_and_a_full_queue_answers_unavailable() {
        let servable = Arc::new(doubling_model());
        let x = |v: &[f32]| Tensor::new(&[1, v.len()], v.to_vec()).unwrap();
        let rt = runtime();
        // Two rows fill a batch of two: the second request runs it, and the third
        // starts the next one, which runs alone.
        let b = batcher(2, Duration::from_secs(60), false, 10);
        let (a, c, e) = rt.block_on(async {
            let a = request(&b, &servable, &x(&[1., 2.]));
            let c = request(&b, &servable, &x(&[3., 4.]));
            let e = request(&b, &servable, &x(&[5., 6.]));
            (a.await.unwrap(), c.await.unwrap(), e.await.unwrap())
        });
        assert_eq!(a.unwrap()[1].1, Tensor::from([[2f32, 4.]]));
        assert_eq!(c.unwrap()[1].1, Tensor::from([[6f32, 8.]]));
        assert_eq!(e.unwrap()[1].1, Tensor::from([[10f32, 12.]]));
        let m = b.render("m");
        for line in [
            "rustflow_batched_runs{model_name=\"m\"} 1\n",
            "rustflow_batched_requests{model_name=\"m\"} 2\n",
            "rustflow_batch_rows_max{model_name=\"m\"} 2\n",
            "rustflow_batches_enqueued{model_name=\"m\"} 0\n",
        ] {
            assert!(m.contains(line), "{line} not in {m}");
        }

        // A queue of one batch: while [1, 2] is being filled, a request of another shape
        // (another batch) is refused; one of the same shape joins it.
        let b = batcher(4, Duration::from_secs(60), false, 1);
        rt.block_on(async {
            let first = request(&b, &servable, &x(&[1., 2.]));
            let refused = request(&b, &servable, &x(&[1., 2., 3.]));
            let joined = request(&b, &servable, &x(&[5., 6.]));
            assert_eq!(refused.await.unwrap().unwrap_err().code, Code::Unavailable);
            assert_eq!(
                joined.await.unwrap().unwrap()[1].1,
                Tensor::from([[10f32, 12.]])
            );
            assert_eq!(
                first.await.unwrap().unwrap()[1].1,
                Tensor::from([[2f32, 4.]])
            );
            // Answered: the queue has room again.
            let later = request(&b, &servable, &x(&[1., 2., 3.])).await.unwrap();
            assert_eq!(later.unwrap()[1].1, Tensor::from([[2f32, 4., 6.]]));
        });
        assert_eq!(b.shared.runs.load(Ordering::Relaxed), 1);
    }
}

//! Where a request's model run goes: on the async worker that decoded the request when the
//! run is expected to be short, else on tokio's blocking pool.
//!
//! Handing a batch-1 run of a small model to the blocking pool costs two thread switches
//! (there and back), far more than the run itself (a few µs for the digits MLP), so a run
//! whose estimated time is under [`Dispatch::inline_below`] runs inline. A longer one goes
//! to the blocking pool, so that a big model does not stall the workers that accept
//! connections and decode requests. The estimate is kept per API (REST or gRPC, and the
//! method) and signature: a running average of the nanoseconds each byte of a request took
//! (what the front end hands over: for REST the run and the encoding of the answer, for
//! gRPC decoding too), times this request's bytes; an API and signature not yet seen runs
//! on the blocking pool, which measures it. Only runs that succeeded are recorded, so the
//! table holds only signatures the model has. Each thread keeps its own table and counts
//! ([`Sharded`]): every request updates them, and a table shared by the threads serving on
//! different cores would pass its lines between them on every request (each thread's
//! first request of a signature is measured on the blocking pool).
//!
//! At most [`Dispatch::new`]'s `blocking_at_once` runs (the cores) are on the blocking pool
//! at once; the others wait for their turn, which is not measured. Without that bound, 64
//! connections sending requests of a model estimated over the threshold would make 64
//! runs share two cores, each run's own time would be measured 30 times too long, and an
//! estimate taken in such a moment would keep every later run on the blocking pool.
//!
//! The request timeout is kept here too ([`Dispatch::within_timeout`]), around what may
//! wait: a run on the blocking pool, a request body still arriving, a batch being filled.
//! Work done inline (decoding, a short run, encoding) is not wrapped: it cannot be
//! interrupted anyway, and a timer armed and disarmed per request costs more than the
//! run of a small model.

use super::metrics::Api;
use super::sharded::Sharded;
use super::status::Status;
use crate::proto::tf::error::Code;
use foldhash::fast::FixedState;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

/// Nanoseconds per request byte by API and signature; looked up on every request, so
/// hashed with foldhash rather than std's SipHash.
type Costs = HashMap<Api, HashMap<String, f64, FixedState>, FixedState>;

/// One thread's estimates and counts.
#[derive(Default)]
struct Local {
    costs: Costs,
    inline_runs: u64,
    blocking_runs: u64,
}

/// The weight of the newest run in the running average of a signature's cost.
const NEWEST: f64 = 0.125;

/// Runs requests inline or on the blocking pool by their estimated time (see the module
/// docs), and counts where they ran.
#[derive(Debug)]
pub struct Dispatch {
    /// Runs estimated under this run inline (zero: none does).
    pub inline_below: Duration,
    /// The longest a request may wait (see [`Dispatch::within_timeout`]).
    pub request_timeout: Duration,
    /// Each thread's estimates and counts.
    local: Sharded<Local>,
    /// Turns for runs on the blocking pool (see the module docs).
    blocking_turns: Arc<tokio::sync::Semaphore>,
}

/// Where one request ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// On the async worker that decoded it.
    Inline,
    /// On tokio's blocking pool.
    Blocking,
}

impl Dispatch {
    /// Inline runs for those estimated under `inline_below`, at most `blocking_at_once`
    /// (at least one) on the blocking pool at once; requests answered `DEADLINE_EXCEEDED`
    /// once they have waited `request_timeout`.
    pub fn new(
        inline_below: Duration,
        request_timeout: Duration,
        blocking_at_once: usize,
    ) -> Dispatch {
        Dispatch {
            inline_below,
            request_timeout,
            local: Sharded::default(),
            blocking_turns: Arc::new(tokio::sync::Semaphore::new(blocking_at_once.max(1))),
        }
    }

    /// Where a request of `bytes` for `api` and `signature` should run, by this thread's
    /// estimate.
    pub fn place(&self, api: Api, signature: &str, bytes: usize) -> Place {
        if self.inline_below.is_zero() {
            return Place::Blocking;
        }
        let local = self.local.local();
        let per_byte = match local.costs.get(&api).and_then(|m| m.get(signature)) {
            Some(&c) => c,
            None => return Place::Blocking,
        };
        let estimate = per_byte * bytes.max(1) as f64;
        if estimate < self.inline_below.as_nanos() as f64 {
            Place::Inline
        } else {
            Place::Blocking
        }
    }

    /// Records in this thread's table that a successful request of `bytes` took `took`.
    fn record(&self, api: Api, signature: &str, bytes: usize, took: Duration) {
        let per_byte = took.as_nanos() as f64 / bytes.max(1) as f64;
        let mut local = self.local.local();
        let by_signature = local.costs.entry(api).or_default();
        match by_signature.get_mut(signature) {
            Some(c) => *c += NEWEST * (per_byte - *c),
            None => {
                by_signature.insert(signature.to_string(), per_byte);
            }
        }
    }

    /// `work`'s outcome, or `DEADLINE_EXCEEDED` once it has taken longer than the request
    /// timeout. Work ready at its first poll (a request body already received) makes no
    /// timer: the timeout is made, and its clock started, only when that poll is pending.
    pub async fn within_timeout<T>(
        &self,
        work: impl Future<Output = Result<T, Status>>,
    ) -> Result<T, Status> {
        let mut work = std::pin::pin!(work);
        let first = std::future::poll_fn(|cx| Poll::Ready(work.as_mut().poll(cx))).await;
        if let Poll::Ready(r) = first {
            return r;
        }
        let timeout = self.request_timeout;
        tokio::time::timeout(timeout, work)
            .await
            .unwrap_or_else(|_| {
                Err(Status::new(
                    Code::DeadlineExceeded,
                    format!("the request took longer than the server's limit of {timeout:?}"),
                ))
            })
    }

    /// Runs `f`, a request of `bytes` for `api` and `signature`, where its estimate
    /// says (see the module docs). A run inline is not interrupted by the request
    /// timeout (it is estimated to take under [`Dispatch::inline_below`]); one on the
    /// blocking pool waits for its turn (see the module docs), is answered at the timeout
    /// and then finishes unobserved, still holding its turn.
    pub async fn run<T: Send + 'static>(
        &self,
        api: Api,
        signature: &str,
        bytes: usize,
        f: impl FnOnce() -> Result<T, Status> + Send + 'static,
    ) -> Result<T, Status> {
        let timed = move || {
            let start = Instant::now();
            let r = f();
            (r, start.elapsed())
        };
        let place = self.place(api, signature, bytes);
        {
            let mut local = self.local.local();
            match place {
                Place::Inline => local.inline_runs += 1,
                Place::Blocking => local.blocking_runs += 1,
            }
        }
        let (r, took) = match place {
            Place::Inline => std::panic::catch_unwind(std::panic::AssertUnwindSafe(timed))
                .map_err(|_| Status::new(Code::Internal, "the run failed: it panicked"))?,
            Place::Blocking => {
                let run = async {
                    let turn = Arc::clone(&self.blocking_turns)
                        .acquire_owned()
                        .await
                        .map_err(|e| Status::new(Code::Internal, format!("the run failed: {e}")))?;
                    tokio::task::spawn_blocking(move || {
                        let _turn = turn;
                        timed()
                    })
                    .await
                    .map_err(|e| Status::new(Code::Internal, format!("the run failed: {e}")))
                };
                self.within_timeout(run).await?
            }
        };
        if r.is_ok() {
            self.record(api, signature, bytes, took);
        }
        r
    }

    /// The runs made inline and on the blocking pool so far, in Prometheus' text format
    /// (`rustflow_runs{place="inline"|"blocking"}`).
    pub fn render(&self, model: &str) -> String {
        let mut s = String::from(
            "# HELP rustflow_runs Requests run inline on an async worker or on the blocking pool.\n\
             # TYPE rustflow_runs counter\n",
        );
        let (mut inline, mut blocking) = (0, 0);
        self.local.for_each(|l| {
            inline += l.inline_runs;
            blocking += l.blocking_runs;
        });
        for (place, n) in [("inline", inline), ("blocking", blocking)] {
            s.push_str(&format!(
                "rustflow_runs{{model_name=\"{model}\",place=\"{place}\"}} {n}\n"
            ));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PREDICT: Api = Api {
        entrypoint: "REST",
        method: "predict",
    };

    #[test]
    fn short_runs_go_inline_once_measured_and_long_ones_stay_blocking() {
        let d = Dispatch::new(Duration::from_micros(200), Duration::from_secs(30), 2);
        // Not yet measured: blocking.
        assert_eq!(d.place(PREDICT, "s", 100), Place::Blocking);
        // 1 µs for 100 bytes: 10 ns a byte.
        d.record(PREDICT, "s", 100, Duration::from_micros(1));
        assert_eq!(d.place(PREDICT, "s", 100), Place::Inline);
        // 10 ns a byte: 100 kB would take 1 ms.
        assert_eq!(d.place(PREDICT, "s", 100_000), Place::Blocking);
        // Another signature and another API are measured apart.
        assert_eq!(d.place(PREDICT, "other", 100), Place::Blocking);
        let grpc = Api {
            entrypoint: "GRPC",
            ..PREDICT
        };
        assert_eq!(d.place(grpc, "s", 100), Place::Blocking);
        // Runs that turn slow move it to the blocking pool: 1 ms for 100 bytes, again
        // and again, pulls the average above 2 µs a byte.
        for _ in 0..40 {
            d.record(PREDICT, "s", 100, Duration::from_millis(1));
        }
        assert_eq!(d.place(PREDICT, "s", 100), Place::Blocking);
        // A zero threshold never runs inline.
        let never = Dispatch::new(Duration::ZERO, Duration::from_secs(30), 2);
        never.record(PREDICT, "s", 100, Duration::from_nanos(1));
        assert_eq!(never.place(PREDICT, "s", 100), Place::Blocking);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn runs_on_the_blocking_pool_take_turns() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let d = Arc::new(Dispatch::new(
            Duration::from_micros(200),
            Duration::from_secs(30),
            2,
        ));
        let (in_flight, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let requests = (0..8).map(|_| {
            let (d, in_flight, most) = (Arc::clone(&d), Arc::clone(&in_flight), Arc::clone(&most));
            tokio::spawn(async move {
                // Never measured (each run fails), so every one goes to the blocking pool.
                let r: Result<(), Status> = d
                    .run(PREDICT, "s", 10, move || {
                        let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(20));
                        in_flight.fetch_sub(1, Ordering::SeqCst);
                        Err(Status::invalid("not measured"))
                    })
                    .await;
                assert!(r.is_err());
            })
        });
        for r in requests.collect::<Vec<_>>() {
            r.await.unwrap();
        }
        let most = most.load(Ordering::SeqCst);
        assert!((1..=2).contains(&most), "{most} runs at once");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn both_places_run_and_count_and_failures_are_not_measured() {
        let d = Dispatch::new(Duration::from_micros(200), Duration::from_secs(30), 2);
        let on_worker = std::thread::current().id();
        // First run: blocking pool, another thread.
        let r = d
            .run(PREDICT, "s", 10, move || Ok(std::thread::current().id()))
            .await;
        assert_ne!(r.unwrap(), on_worker);
        // Measured short: this worker.
        let r = d
            .run(PREDICT, "s", 10, move || Ok(std::thread::current().id()))
            .await;
        assert_eq!(r.unwrap(), on_worker);
        // A failing run of an unknown signature leaves it unmeasured.
        let r: Result<(), Status> = d
            .run(PREDICT, "nope", 10, || Err(Status::invalid("no such")))
            .await;
        assert!(r.is_err());
        assert_eq!(d.place(PREDICT, "nope", 10), Place::Blocking);
        let m = d.render("m");
        assert!(
            m.contains("rustflow_runs{model_name=\"m\",place=\"inline\"} 1\n"),
            "{m}"
        );
        assert!(
            m.contains("rustflow_runs{model_name=\"m\",place=\"blocking\"} 2\n"),
            "{m}"
        );
    }
}

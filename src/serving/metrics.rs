//! Request counts and latency histograms, written in Prometheus' text format for
//! `/monitoring/prometheus/metrics` with TensorFlow Serving's metric names. Each thread
//! records into a slot of its own ([`Sharded`]); rendering adds the slots up.

use super::sharded::Sharded;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

/// Upper bounds of the latency buckets, in microseconds.
const BUCKETS_US: [u64; 16] = [
    10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000,
    1_000_000, 10_000_000,
];

/// Where a request came from and what it asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Api {
    /// `REST` or `GRPC`.
    pub entrypoint: &'static str,
    /// `predict`, `metadata`, `status`, ...
    pub method: &'static str,
}

#[derive(Default)]
struct Histogram {
    buckets: [u64; BUCKETS_US.len()],
    count: u64,
    sum_us: u64,
}

#[derive(Default)]
struct Inner {
    counts: BTreeMap<(Api, &'static str), u64>,
    latency: BTreeMap<Api, Histogram>,
}

impl Inner {
    /// Adds `other`'s counts to these.
    fn add(&mut self, other: &Inner) {
        for (k, n) in &other.counts {
            *self.counts.entry(*k).or_default() += n;
        }
        for (api, h) in &other.latency {
            let mine = self.latency.entry(*api).or_default();
            for (a, b) in mine.buckets.iter_mut().zip(h.buckets) {
                *a += b;
            }
            mine.count += h.count;
            mine.sum_us = mine.sum_us.saturating_add(h.sum_us);
        }
    }
}

/// The server's metrics.
#[derive(Default)]
pub struct Metrics {
    model: String,
    inner: Sharded<Inner>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("model", &self.model)
            .finish()
    }
}

impl Metrics {
    /// Metrics of the model `model`.
    pub fn new(model: &str) -> Metrics {
        Metrics {
            model: model.to_string(),
            inner: Sharded::default(),
        }
    }

    /// Records one request: its outcome (`OK` or TensorFlow's error code name) and time.
    pub fn record(&self, api: Api, status: &'static str, took: Duration) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let mut inner = self.inner.local();
        *inner.counts.entry((api, status)).or_default() += 1;
        let h = inner.latency.entry(api).or_default();
        if let Some(i) = BUCKETS_US.iter().position(|&b| us <= b) {
            h.buckets[i] += 1;
        }
        h.count += 1;
        h.sum_us = h.sum_us.saturating_add(us);
    }

    /// The metrics in Prometheus' text exposition format.
    pub fn render(&self) -> String {
        let mut inner = Inner::default();
        self.inner.for_each(|slot| inner.add(slot));
        let model = &self.model;
        let mut s = String::new();
        s.push_str("# HELP :tensorflow:serving:request_count The total number of requests.\n");
        s.push_str("# TYPE :tensorflow:serving:request_count counter\n");
        for ((api, status), n) in &inner.counts {
            let _ = writeln!(
                s,
                ":tensorflow:serving:request_count{{model_name=\"{model}\",entrypoint=\"{}\",API=\"{}\",status=\"{status}\"}} {n}",
                api.entrypoint, api.method
            );
        }
        s.push_str("# HELP :tensorflow:serving:request_latency Distribution of request latency in microseconds.\n");
        s.push_str("# TYPE :tensorflow:serving:request_latency histogram\n");
        for (api, h) in &inner.latency {
            let labels = format!(
                "model_name=\"{model}\",entrypoint=\"{}\",API=\"{}\"",
                api.entrypoint, api.method
            );
            let mut cumulative = 0;
            for (b, n) in BUCKETS_US.iter().zip(h.buckets) {
                cumulative += n;
                let _ = writeln!(
                    s,
                    ":tensorflow:serving:request_latency_bucket{{{labels},le=\"{b}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                s,
                ":tensorflow:serving:request_latency_bucket{{{labels},le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                s,
                ":tensorflow:serving:request_latency_sum{{{labels}}} {}",
                h.sum_us
            );
            let _ = writeln!(
                s,
                ":tensorflow:serving:request_latency_count{{{labels}}} {}",
                h.count
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_cumulative_buckets() {
        let m = Metrics::new("m");
        let api = Api {
            entrypoint: "REST",
            method: "predict",
        };
        m.record(api, "OK", Duration::from_micros(30));
        // From other threads (other slots), added up when rendered.
        std::thread::scope(|s| {
            s.spawn(|| m.record(api, "OK", Duration::from_micros(700)));
            s.spawn(|| m.record(api, "INVALID_ARGUMENT", Duration::from_secs(100)));
        });
        let s = m.render();
        assert!(s.contains("request_count{model_name=\"m\",entrypoint=\"REST\",API=\"predict\",status=\"OK\"} 2\n"), "{s}");
        assert!(s.contains("status=\"INVALID_ARGUMENT\"} 1\n"));
        assert!(s.contains("API=\"predict\",le=\"25\"} 0\n"));
        assert!(s.contains("API=\"predict\",le=\"50\"} 1\n"));
        assert!(s.contains("API=\"predict\",le=\"1000\"} 2\n"));
        assert!(s.contains("API=\"predict\",le=\"+Inf\"} 3\n"));
        assert!(s.contains(
            "request_latency_sum{model_name=\"m\",entrypoint=\"REST\",API=\"predict\"} 100000730\n"
        ));
    }
}

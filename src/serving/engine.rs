//! What every front end shares: the model, the metrics and the request limits.

use super::batching::Batcher;
use super::dispatch::Dispatch;
use super::metrics::Metrics;
use super::model::Model;
use std::sync::Arc;

/// The serving engine: one model, its metrics and the server's limits.
#[derive(Debug)]
pub struct Engine {
    /// The served model.
    pub model: Model,
    /// Request counts and latencies.
    pub metrics: Metrics,
    /// The largest request body accepted (REST).
    pub max_body_bytes: usize,
    /// Whether each request is logged on stderr.
    pub access_log: bool,
    /// Merges concurrent predict requests into batched runs (`--batching`).
    pub batcher: Option<Batcher>,
    /// Runs short requests inline, long ones on the blocking pool; keeps the request
    /// timeout.
    pub dispatch: Arc<Dispatch>,
}

impl Engine {
    /// The metrics in Prometheus' text format, with the batcher's counts when batching is
    /// on.
    pub fn render_metrics(&self) -> String {
        let mut s = self.metrics.render();
        s.push_str(&self.dispatch.render(&self.model.name));
        if let Some(b) = &self.batcher {
            s.push_str(&b.render(&self.model.name));
        }
        s
    }
}

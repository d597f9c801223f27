//! What every front end shares: the model, the metrics and the request limits.

use super::metrics::Metrics;
use super::model::{Model, Servable};
use super::status::Status;
use crate::Tensor;
use std::time::Duration;

/// The serving engine: one model, its metrics and the server's limits.
#[derive(Debug)]
pub struct Engine {
    /// The served model.
    pub model: Model,
    /// Request counts and latencies.
    pub metrics: Metrics,
    /// The longest a request may take before it is answered `DEADLINE_EXCEEDED`.
    pub request_timeout: Duration,
    /// The largest request body accepted (REST).
    pub max_body_bytes: usize,
    /// Whether each request is logged on stderr.
    pub access_log: bool,
}

impl Engine {
    /// Runs a signature of a servable on typed inputs: every output (or those of
    /// `output_filter`), by key.
    pub fn run(
        &self,
        servable: &Servable,
        signature: &str,
        inputs: Vec<(&str, Tensor)>,
        output_filter: &[String],
    ) -> Result<Vec<(String, Tensor)>, Status> {
        servable.predict(signature, &inputs, output_filter)
    }
}

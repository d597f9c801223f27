//! `rustflow serve`: TensorFlow Serving's REST and gRPC APIs for one model.

use crate::Failure;
use rustflow::serving::batching::BatchingConfig;
use rustflow::serving::{self, ServeConfig};
use std::path::PathBuf;
use std::time::Duration;

/// Serves a model over TensorFlow Serving's REST API (and gRPC API with --grpc-port) until
/// SIGINT or SIGTERM.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// A SavedModel directory, or (as TensorFlow Serving's --model_base_path) a directory
    /// of numeric version folders: the highest version that loads is served, and a newer
    /// one that appears later is loaded and swapped in.
    pub model: PathBuf,
    /// The model's name in request paths (/v1/models/NAME); default: the directory's name.
    #[arg(long)]
    pub name: Option<String>,
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// The REST API's port (0: any free port; the one chosen is printed).
    #[arg(long, default_value_t = 8501)]
    pub port: u16,
    /// Also serve the gRPC API on this port (0: any free port).
    #[arg(long = "grpc-port")]
    pub grpc_port: Option<u16>,
    /// Threads that handle requests (default: one per core): REST on as many threads, each
    /// with its own listener on the port, and gRPC on a pool of as many.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Threads one model run may use.
    #[arg(long = "session-threads", default_value_t = 1)]
    pub session_threads: usize,
    /// Seconds between checks of the base path for a newer version.
    #[arg(long = "poll-interval", default_value_t = 1.0, value_name = "SECONDS")]
    pub poll_interval: f64,
    /// Seconds a request may take before it is answered 504 / DEADLINE_EXCEEDED.
    #[arg(
        long = "request-timeout",
        default_value_t = 30.0,
        value_name = "SECONDS"
    )]
    pub request_timeout: f64,
    /// The largest REST request body, in bytes.
    #[arg(long = "max-body-bytes", default_value_t = 64 << 20)]
    pub max_body_bytes: usize,
    /// The most memory the live tensors of the model's runs may take together, concurrent
    /// requests included (`2G`, `512M`, bytes; default: the machine's memory): a request
    /// that would go over is answered RESOURCE_EXHAUSTED (REST 429).
    #[arg(long = "max-memory", value_name = "SIZE", value_parser = crate::parse_bytes)]
    pub max_memory: Option<usize>,
    /// Requests whose model run is estimated (from the earlier runs of their signature, per
    /// request byte) to take under this many µs run on the thread that decoded them;
    /// longer ones, and a signature's first, go to a pool of blocking threads so that they
    /// do not hold up other requests (0: all go to the pool). The request timeout does not
    /// interrupt a run made inline.
    #[arg(long = "inline-run-micros", default_value_t = 200)]
    pub inline_run_micros: u64,
    /// Merge concurrent predict requests into one run (TensorFlow Serving's
    /// --enable_batching): requests for the same signature whose inputs agree in all but
    /// the first dimension are concatenated along it, and each gets its own rows back.
    #[arg(long)]
    pub batching: bool,
    /// With --batching: the most rows one merged run holds (a request of more rows runs
    /// alone, whole).
    #[arg(long = "max-batch-size", default_value_t = 32, requires = "batching")]
    pub max_batch_size: usize,
    /// With --batching: the longest a batch waits for more requests while they keep
    /// arriving, in µs (a batch closes earlier when full, or when its thread has no more
    /// requests to add).
    #[arg(
        long = "batch-timeout-micros",
        default_value_t = 1000,
        requires = "batching"
    )]
    pub batch_timeout_micros: u64,
    /// With --batching: the most batches being filled or waiting for a batch thread at
    /// once on one request thread (TensorFlow Serving's max_enqueued_batches); a request
    /// that would open one more is answered 503 / UNAVAILABLE.
    #[arg(
        long = "max-enqueued-batches",
        default_value_t = 100,
        requires = "batching"
    )]
    pub max_enqueued_batches: usize,
    /// With --batching: the most merged runs at once (TensorFlow Serving's
    /// num_batch_threads; default: one per core).
    #[arg(long = "num-batch-threads", requires = "batching")]
    pub num_batch_threads: Option<usize>,
    /// With --batching: also merge requests whose inputs differ in dimensions after the
    /// first, padding each with zeros to the largest in the batch (an output of an input's
    /// padded shape is cut back to each request's own).
    #[arg(long = "pad-variable-length-inputs", requires = "batching")]
    pub pad_variable_length_inputs: bool,
    /// Don't write one log line per request on stderr.
    #[arg(long)]
    pub quiet: bool,
    /// Also answer `GET /reference` with a fixed body (for benches/serve_load.sh).
    #[arg(long = "reference-route", hide = true)]
    pub reference_route: bool,
}

fn seconds(flag: &str, s: f64) -> Result<Duration, Failure> {
    Duration::try_from_secs_f64(s)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            Failure::Usage(format!(
                "--{flag} wants a positive number of seconds, got {s}"
            ))
        })
}

/// `rustflow serve`.
pub fn serve(args: Args) -> Result<(), Failure> {
    let name = match args.name {
        Some(n) => n,
        None => std::fs::canonicalize(&args.model)
            .ok()
            .and_then(|p| {
                // A SavedModel directory named by its version: the model is its parent.
                let dir = if p.join("saved_model.pb").exists()
                    && p.file_name()?.to_str()?.parse::<i64>().is_ok()
                {
                    p.parent()?.to_path_buf()
                } else {
                    p
                };
                Some(dir.file_name()?.to_str()?.to_string())
            })
            .unwrap_or_else(|| "default".to_string()),
    };
    let threads = args.threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let config = ServeConfig {
        model_path: args.model,
        name,
        host: args.host,
        port: args.port,
        grpc_port: args.grpc_port,
        threads,
        session_threads: args.session_threads.max(1),
        poll_interval: seconds("poll-interval", args.poll_interval)?,
        request_timeout: seconds("request-timeout", args.request_timeout)?,
        max_body_bytes: args.max_body_bytes,
        access_log: !args.quiet,
        max_memory_bytes: args.max_memory,
        inline_below: Duration::from_micros(args.inline_run_micros),
        batching: args.batching.then(|| BatchingConfig {
            max_batch_size: args.max_batch_size.max(1),
            timeout: Duration::from_micros(args.batch_timeout_micros),
            pad_variable_length_inputs: args.pad_variable_length_inputs,
            max_enqueued_batches: args.max_enqueued_batches.max(1),
            num_batch_threads: args.num_batch_threads.unwrap_or(threads).max(1),
        }),
        reference_route: args.reference_route,
    };
    serving::serve(config).map_err(Failure::Run)
}

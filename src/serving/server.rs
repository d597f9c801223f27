//! `rustflow serve`: loads the model, starts the REST (and optionally gRPC) front ends on a
//! tokio runtime, polls the model base path for newer versions, and shuts down gracefully
//! on SIGINT or SIGTERM (in-flight requests finish; new connections are refused).

use super::batching::{Batcher, BatchingConfig};
use super::dispatch::Dispatch;
use super::engine::Engine;
use super::metrics::Metrics;
use super::model::{Model, PollOutcome};
use super::{grpc, rest};
use crate::session::SessionOptions;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Everything `rustflow serve` is told.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// A SavedModel directory, or a base path of numeric version folders.
    pub model_path: PathBuf,
    /// The model's name in request paths.
    pub name: String,
    /// The address to listen on.
    pub host: String,
    /// The REST port (0: any free port).
    pub port: u16,
    /// The gRPC port (0: any free port), if gRPC is served.
    pub grpc_port: Option<u16>,
    /// Threads that handle requests.
    pub threads: usize,
    /// Threads one model run may use.
    pub session_threads: usize,
    /// How often the base path is checked for a newer version.
    pub poll_interval: Duration,
    /// The longest a request may take.
    pub request_timeout: Duration,
    /// The largest REST request body.
    pub max_body_bytes: usize,
    /// Whether each request is logged on stderr.
    pub access_log: bool,
    /// The most bytes the live tensors of the model's runs may take together (default:
    /// the machine's memory; see `SessionOptions::max_memory_bytes`).
    pub max_memory_bytes: Option<usize>,
    /// Requests whose run is estimated to take under this run on the async worker that
    /// decoded them rather than on the blocking pool (zero: none does); see
    /// [`Dispatch`].
    pub inline_below: Duration,
    /// Server-side batching of predict requests (`--batching`), if on.
    pub batching: Option<BatchingConfig>,
    /// Also serve `GET /reference`, a fixed 200 body through the same router and
    /// middleware: the load benchmark's reference for the HTTP stack's own cost.
    pub reference_route: bool,
}

/// Serves until SIGINT or SIGTERM. Startup problems (no loadable version, a port in use)
/// are errors; the addresses served are printed on stderr once listening.
pub fn serve(config: ServeConfig) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.threads.max(1))
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the server's threads: {e}"))?;
    runtime.block_on(run(config))
}

/// The options of the model's sessions.
fn session_options(config: &ServeConfig) -> SessionOptions {
    let options = SessionOptions::with_threads(config.session_threads);
    SessionOptions {
        max_memory_bytes: config.max_memory_bytes.unwrap_or(options.max_memory_bytes),
        ..options
    }
}

async fn run(config: ServeConfig) -> Result<(), String> {
    let model = Model::new(&config.name, &config.model_path, session_options(&config))?;
    let dispatch = Arc::new(Dispatch::new(config.inline_below));
    let engine = Arc::new(Engine {
        model,
        metrics: Metrics::new(&config.name),
        request_timeout: config.request_timeout,
        max_body_bytes: config.max_body_bytes,
        access_log: config.access_log,
        batcher: config.batching.map(|b| Batcher::new(b, dispatch.clone())),
        dispatch,
    });
    // Load the highest version that loads.
    let mut failures = Vec::new();
    loop {
        let e = engine.clone();
        match tokio::task::spawn_blocking(move || e.model.poll()).await {
            Ok(PollOutcome::Failed { version, error }) => {
                report(
                    &engine,
                    &PollOutcome::Failed {
                        version,
                        error: error.clone(),
                    },
                );
                failures.push(error);
            }
            Ok(outcome) => {
                report(&engine, &outcome);
                break;
            }
            Err(e) => return Err(format!("loading the model failed: {e}")),
        }
    }
    if engine.model.serving().is_none() {
        return Err(match failures.last() {
            Some(e) => format!("no version of model '{}' loads: {e}", config.name),
            None => format!(
                "{}: no version folders (numeric names) with a SavedModel",
                config.model_path.display()
            ),
        });
    }

    let bind = |port: u16| {
        let addr = format!("{}:{port}", config.host);
        async move {
            tokio::net::TcpListener::bind(&addr)
                .await
                .map_err(|e| format!("cannot listen on {addr}: {e}"))
        }
    };
    let rest_listener = bind(config.port).await?;
    let grpc_listener = match config.grpc_port {
        Some(p) => Some(bind(p).await?),
        None => None,
    };
    let local = |l: &tokio::net::TcpListener| -> Result<SocketAddr, String> {
        l.local_addr().map_err(|e| e.to_string())
    };
    let mut signals = StopSignals::listen()?;
    if let Some(l) = &grpc_listener {
        eprintln!("rustflow: gRPC API at {}", local(l)?);
    }
    eprintln!("rustflow: REST API at http://{}", local(&rest_listener)?);

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let mut tasks = Vec::new();
    let app = match config.reference_route {
        true => rest::router_with_reference(engine.clone()),
        false => rest::router(engine.clone()),
    };
    let rest_stop = stopped(stop_rx.clone());
    tasks.push(tokio::spawn(async move {
        axum::serve(rest_listener, app)
            .with_graceful_shutdown(rest_stop)
            .await
            .map_err(|e| format!("REST server: {e}"))
    }));
    if let Some(l) = grpc_listener {
        let e = engine.clone();
        let grpc_stop = stopped(stop_rx.clone());
        tasks.push(tokio::spawn(async move {
            grpc::serve(e, l, grpc_stop)
                .await
                .map_err(|e| format!("gRPC server: {e}"))
        }));
    }
    let poller = tokio::spawn(poll_versions(
        engine.clone(),
        config.poll_interval,
        stop_rx.clone(),
    ));

    signals.wait().await?;
    eprintln!("rustflow: shutting down (in-flight requests finish)");
    let _ = stop_tx.send(true);
    let grace = config.request_timeout + Duration::from_secs(1);
    for t in tasks {
        match tokio::time::timeout(grace, t).await {
            Ok(Ok(r)) => r?,
            Ok(Err(e)) => return Err(format!("a server task failed: {e}")),
            Err(_) => eprintln!("rustflow: connections still open after {grace:?}; closing them"),
        }
    }
    let _ = poller.await;
    Ok(())
}

/// Logs what a poll did.
fn report(engine: &Engine, outcome: &PollOutcome) {
    let name = &engine.model.name;
    match outcome {
        PollOutcome::Unchanged => {}
        PollOutcome::Swapped {
            version,
            previous: None,
        } => eprintln!("rustflow: model '{name}' version {version} loaded and serving"),
        PollOutcome::Swapped {
            version,
            previous: Some(p),
        } => eprintln!(
            "rustflow: model '{name}' version {version} loaded and serving; version {p} unloaded"
        ),
        PollOutcome::Failed { version, error } => eprintln!(
            "rustflow: model '{name}' version {version} failed to load ({error}){}",
            match engine.model.serving() {
                Some(s) => format!("; version {} keeps serving", s.version),
                None => String::new(),
            }
        ),
    }
}

/// Checks for a newer version every `interval` until the server stops.
async fn poll_versions(engine: Arc<Engine>, interval: Duration, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let e = engine.clone();
        match tokio::task::spawn_blocking(move || e.model.poll()).await {
            Ok(outcome) => report(&engine, &outcome),
            Err(e) => eprintln!("rustflow: polling for versions failed: {e}"),
        }
    }
}

/// SIGINT (Ctrl-C) and SIGTERM, listened for from creation on: made before the server says
/// where it listens, so a signal sent as soon as it has said so is not lost (or fatal).
struct StopSignals {
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn listen() -> Result<StopSignals, String> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(StopSignals {
                int: signal(SignalKind::interrupt()).map_err(|e| e.to_string())?,
                term: signal(SignalKind::terminate()).map_err(|e| e.to_string())?,
            })
        }
        #[cfg(not(unix))]
        Ok(StopSignals {})
    }

    /// Waits for either signal.
    async fn wait(&mut self) -> Result<(), String> {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.int.recv() => Ok(()),
                _ = self.term.recv() => Ok(()),
            }
        }
        #[cfg(not(unix))]
        {
            tokio::signal::ctrl_c().await.map_err(|e| e.to_string())
        }
    }
}

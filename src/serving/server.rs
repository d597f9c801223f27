//! `rustflow serve`: loads the model, starts the REST (and optionally gRPC) front ends,
//! polls the model base path for newer versions, and shuts down gracefully on SIGINT or
//! SIGTERM (in-flight requests finish; new connections are refused).
//!
//! REST is served by `threads` threads, each a current-thread tokio runtime with its own
//! listener on the one address (`SO_REUSEPORT`), so that a request is read, run and
//! answered on one thread; gRPC, the version poller and the signals run on a multi-thread
//! runtime of `threads` workers. Measured on 2 cores under `wrk` (benches/serve_load.sh),
//! this served 1.1–1.3× the requests/s of one multi-thread runtime for both REST routes.

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
    /// Threads that handle requests: REST threads, and the workers of gRPC's runtime.
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
    /// Also serve `GET /reference` (and `/reference?bytes=N`), a fixed 200 body through the
    /// same REST service: the load benchmark's reference for the HTTP stack's own cost.
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
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let dispatch = Arc::new(Dispatch::new(
        config.inline_below,
        config.request_timeout,
        cores,
    ));
    let engine = Arc::new(Engine {
        model,
        metrics: Metrics::new(&config.name),
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
    let rest_listeners = rest_listeners(&config).await?;
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
    eprintln!(
        "rustflow: REST API at http://{}",
        rest_listeners[0].local_addr().map_err(|e| e.to_string())?
    );

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let mut tasks = Vec::new();
    let app = rest::service(engine.clone(), config.reference_route);
    for (i, l) in rest_listeners.into_iter().enumerate() {
        let (app, rx) = (app.clone(), stop_rx.clone());
        let thread = std::thread::Builder::new()
            .name(format!("rustflow-rest-{i}"))
            .spawn(move || rest_thread(l, app, stopped(rx)))
            .map_err(|e| format!("cannot start the server's threads: {e}"))?;
        tasks.push(tokio::task::spawn_blocking(move || {
            thread
                .join()
                .unwrap_or_else(|_| Err("a REST thread panicked".to_string()))
        }));
    }
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

/// The REST listeners: one per request thread, all on the configured address
/// (`SO_REUSEPORT`: the kernel spreads new connections over them). The address is first
/// bound once without `SO_REUSEPORT` and let go, so that a port another server listens on
/// is an error rather than shared with it, and port 0 picks one port for all.
async fn rest_listeners(config: &ServeConfig) -> Result<Vec<std::net::TcpListener>, String> {
    let wanted = format!("{}:{}", config.host, config.port);
    let cannot = |e: std::io::Error| format!("cannot listen on {wanted}: {e}");
    let addr = tokio::net::lookup_host(&wanted)
        .await
        .map_err(cannot)?
        .next()
        .ok_or_else(|| format!("cannot listen on {wanted}: no address"))?;
    let addr = std::net::TcpListener::bind(addr)
        .and_then(|probe| probe.local_addr())
        .map_err(cannot)?;
    let mut listeners = Vec::new();
    for _ in 0..config.threads.max(1) {
        let socket = match addr {
            SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4(),
            SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6(),
        }
        .map_err(cannot)?;
        #[cfg(unix)]
        socket.set_reuseport(true).map_err(cannot)?;
        socket.set_reuseaddr(true).map_err(cannot)?;
        socket.bind(addr).map_err(cannot)?;
        let listener = socket.listen(1024).map_err(cannot)?;
        listeners.push(listener.into_std().map_err(cannot)?);
        if cfg!(not(unix)) {
            break;
        }
    }
    Ok(listeners)
}

/// Serves REST on one listener from this thread, on a runtime of its own (current-thread):
/// a request is read, run and answered here, with no task handed between threads, until
/// `stop`; then the connections' in-flight requests finish.
fn rest_thread<S>(
    listener: std::net::TcpListener,
    app: S,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), String>
where
    S: tower::Service<axum::extract::Request, Response = axum::response::Response>
        + tower::Service<axum::extract::Request, Error = std::convert::Infallible>
        + Clone
        + Send
        + 'static,
    <S as tower::Service<axum::extract::Request>>::Future: Send,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the server's threads: {e}"))?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener).map_err(|e| e.to_string())?;
        axum::serve(listener, axum::ServiceExt::into_make_service(app))
            .with_graceful_shutdown(stop)
            .await
            .map_err(|e| format!("REST server: {e}"))
    })
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

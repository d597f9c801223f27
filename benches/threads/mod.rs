//! The thread count of the training and CNN benches: RUSTFLOW_THREADS (default 1), used
//! for both the inter-op and the intra-op threads of their sessions.

use rustflow::{Graph, Session, SessionOptions};

/// RUSTFLOW_THREADS, or 1.
pub fn threads() -> usize {
    std::env::var("RUSTFLOW_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

/// A session of `g` with [`threads`] inter-op and intra-op threads.
pub fn session(g: &Graph) -> Session {
    Session::with_options(g, SessionOptions::with_threads(threads()))
}

//! The thread count of the training and CNN benches: RUSTFLOW_THREADS (default 1), used
//! for both the inter-op and the intra-op threads of their sessions; and RUSTFLOW_TRACE,
//! a folder where they write the step timings of one traced run.

use rustflow::session::{Callable, RunOptions};
use rustflow::{Graph, Session, SessionOptions, Tensor};

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

/// When RUSTFLOW_TRACE names a folder: runs `call` a few times, then once traced, writes
/// that run's Chrome trace to `FOLDER/NAME.trace.json` (open it in `chrome://tracing` or
/// Perfetto) and prints the kernel time per op type to stderr.
pub fn trace_if_asked(sess: &Session, call: &Callable, feeds: &[Tensor], name: &str) {
    let Ok(dir) = std::env::var("RUSTFLOW_TRACE") else {
        return;
    };
    for _ in 0..5 {
        sess.run_callable(call, feeds.to_vec())
            .expect("warm-up run");
    }
    let (_, meta) = sess
        .run_callable_with_options(call, feeds.to_vec(), &RunOptions::full_trace())
        .expect("traced run");
    let path = std::path::Path::new(&dir).join(format!("{name}.trace.json"));
    std::fs::write(&path, meta.chrome_trace()).expect("trace written");
    let wall = meta.nodes.iter().map(|n| n.end).max().unwrap_or_default();
    eprintln!("{name}: traced run {wall:?}, trace in {}", path.display());
    for t in meta.op_totals() {
        eprintln!("  {:<28} {:>3} × {:>10.1?}", t.op, t.count, t.kernel_time);
    }
}

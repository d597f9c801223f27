//! What the REST front end of `rustflow serve` costs per request in process, without
//! sockets or HTTP parsing (which `benches/serve_load.sh` measures under `wrk`): a request
//! handed to the service the server uses, the response body read back, on one
//! current-thread runtime.
//! - `serve/{model}/predict`: a batch-1 `{"instances": [[...]]}` predict of TensorFlow
//!   Serving's half_plus_two and, when the main job has saved it (`./examples/main_job.sh`),
//!   the digits MLP (`target/digits/model`, 64 inputs);
//! - `serve/cnn/predict`: a batch-1 predict of the TF2 Keras CNN (`graphs/tf2/cnn/model`,
//!   12×12×3 inputs) with its 432 numbers written as clients print `f32`s (widened to
//!   `f64`: 17 digits), the body whose reading batching cannot share;
//! - `serve/reference`: the fixed 200 body of `GET /reference` through the same service.
//!
//! Before each case it prints the heap allocations one request makes (a counting global
//! allocator; the request's own `Request` and the body read back included).

use axum::body::Body;
use axum::http::Request;
use axum::response::Response;
use criterion::{criterion_group, criterion_main, Criterion};
use rustflow::serving::dispatch::Dispatch;
use rustflow::serving::engine::Engine;
use rustflow::serving::metrics::Metrics;
use rustflow::serving::model::Model;
use rustflow::serving::rest;
use rustflow::SessionOptions;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::convert::Infallible;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tower::{Service, ServiceExt};

/// The system allocator, counting each thread's allocations (and reallocations) in a
/// plain thread-local count: an atomic one would add a locked instruction to every
/// allocation of the requests being timed.
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    ALLOCATIONS.with(|n| n.set(n.get() + 1));
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        System.alloc(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        System.alloc_zeroed(layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The allocations `call` makes on this thread, on average over 1000 calls (a request
/// runs on the calling thread once its run has been measured short, see `Dispatch`).
fn allocations_per_call(call: impl Fn()) -> f64 {
    let before = ALLOCATIONS.with(Cell::get);
    for _ in 0..1000 {
        call();
    }
    (ALLOCATIONS.with(Cell::get) - before) as f64 / 1000.0
}

/// A CNN request: 12×12×3 numbers as clients print `f32`s (fixed pseudo-random values).
fn cnn_body() -> String {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut pixel = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let x = (state % 40_000) as f32 / 10_000.0 - 2.0;
        format!("{}", f64::from(x))
    };
    let row = |pixel: &mut dyn FnMut() -> String| {
        let px: Vec<String> = (0..12)
            .map(|_| format!("[{}, {}, {}]", pixel(), pixel(), pixel()))
            .collect();
        format!("[{}]", px.join(", "))
    };
    let rows: Vec<String> = (0..12).map(|_| row(&mut pixel)).collect();
    format!("{{\"instances\": [[{}]]}}", rows.join(", "))
}

/// What [`rest::service`] is.
trait Rest: Service<Request<Body>, Response = Response, Error = Infallible> + Clone {}

impl<S: Service<Request<Body>, Response = Response, Error = Infallible> + Clone> Rest for S {}

/// The REST service of `dir` as `name`, as `rustflow serve --quiet --reference-route`
/// builds it.
fn router(name: &str, dir: &Path) -> impl Rest {
    let model = Model::new(name, dir, SessionOptions::with_threads(1)).unwrap();
    model.poll();
    assert!(model.serving().is_some(), "{} did not load", dir.display());
    let engine = Engine {
        model,
        metrics: Metrics::new(name),
        max_body_bytes: 64 << 20,
        access_log: false,
        batcher: None,
        dispatch: Arc::new(Dispatch::new(
            Duration::from_micros(200),
            Duration::from_secs(30),
            2,
        )),
    };
    rest::service(Arc::new(engine), true)
}

/// Sends one request through `router`; the response body's length.
async fn call(router: &impl Rest, method: &str, path: &str, body: &'static str) -> usize {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap();
    let response = router.clone().oneshot(req).await.unwrap();
    assert!(response.status().is_success());
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    bytes.len()
}

fn serve(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("serve");
    let digits_body: &'static str =
        format!("{{\"instances\": [[{}]]}}", vec!["0.5"; 64].join(", ")).leak();
    let mut models = vec![(
        "half_plus_two",
        Path::new("graphs/tf_serving/saved_model_half_plus_two_cpu").to_path_buf(),
        r#"{"instances": [[1.0]]}"#,
    )];
    models.push((
        "cnn",
        Path::new("graphs/tf2/cnn/model").to_path_buf(),
        cnn_body().leak(),
    ));
    let digits = Path::new("target/digits/model");
    if digits.join("saved_model.pb").exists() {
        models.push(("digits", digits.to_path_buf(), digits_body));
    } else {
        eprintln!(
            "target/digits/model is missing (./examples/main_job.sh saves it): half_plus_two only"
        );
    }
    let mut reference = None;
    for (name, dir, body) in models {
        let r = router(name, &dir);
        let path = format!("/v1/models/{name}:predict");
        // The first run goes to the blocking pool, which measures it; the rest run inline.
        for _ in 0..3 {
            runtime.block_on(call(&r, "POST", &path, body));
        }
        let n = allocations_per_call(|| {
            runtime.block_on(call(&r, "POST", &path, body));
        });
        eprintln!("serve/{name}/predict: {n} allocations per request");
        group.bench_function(format!("{name}/predict"), |b| {
            b.iter(|| runtime.block_on(call(&r, "POST", &path, body)))
        });
        reference = Some(r);
    }
    let r = reference.unwrap();
    let n = allocations_per_call(|| {
        runtime.block_on(call(&r, "GET", "/reference", ""));
    });
    eprintln!("serve/reference: {n} allocations per request");
    group.bench_function("reference", |b| {
        b.iter(|| runtime.block_on(call(&r, "GET", "/reference", "")))
    });
    group.finish();
}

criterion_group!(benches, serve);
criterion_main!(benches);

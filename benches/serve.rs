//! What the REST front end of `rustflow serve` costs per request in process, without
//! sockets or HTTP parsing (which `benches/serve_load.sh` measures under `wrk`): a request
//! handed to the router the server uses, the response body read back, on one
//! current-thread runtime.
//! - `serve/{model}/predict`: a batch-1 `{"instances": [[...]]}` predict of TensorFlow
//!   Serving's half_plus_two and, when the main job has saved it (`./examples/main_job.sh`),
//!   the digits MLP (`target/digits/model`, 64 inputs);
//! - `serve/reference`: the fixed 200 body of `GET /reference` through the same router.

use axum::body::Body;
use axum::http::Request;
use criterion::{criterion_group, criterion_main, Criterion};
use rustflow::serving::dispatch::Dispatch;
use rustflow::serving::engine::Engine;
use rustflow::serving::metrics::Metrics;
use rustflow::serving::model::Model;
use rustflow::serving::rest;
use rustflow::SessionOptions;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

/// A router serving `dir` as `name`, as `rustflow serve --quiet --reference-route` builds it.
fn router(name: &str, dir: &Path) -> axum::Router {
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
    rest::router_with_reference(Arc::new(engine))
}

/// Sends one request through `router`; the response body's length.
async fn call(router: &axum::Router, method: &str, path: &str, body: &'static str) -> usize {
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
        group.bench_function(format!("{name}/predict"), |b| {
            b.iter(|| runtime.block_on(call(&r, "POST", &path, body)))
        });
        reference = Some(r);
    }
    let r = reference.unwrap();
    group.bench_function("reference", |b| {
        b.iter(|| runtime.block_on(call(&r, "GET", "/reference", "")))
    });
    group.finish();
}

criterion_group!(benches, serve);
criterion_main!(benches);

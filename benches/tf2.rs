//! Latency of TensorFlow 2 / Keras SavedModels through `LoadedModel::run_signature`
//! (serving_default), one thread; `graphs/bench_tf2.py` times TensorFlow's
//! `loaded.signatures["serving_default"]` on the same models and inputs:
//! - `tf2/mlp_batch1`: graphs/tf2/mlp (Keras MLP), the first row of input.npy;
//! - `tf2/cnn_batch1`: graphs/tf2/cnn (Keras CNN with BatchNormalization), the first image;
//! - `tf2/lstm_s32_b16`: graphs/tf2/lstm64 (Keras LSTM(64) over 32 steps of 16 features,
//!   a `While` over TensorLists), a batch of 16 sequences;
//! - `tf2/mobilenet_v2_b8_t2`: graphs/tf2/mobilenet_v2 (Keras Applications MobileNetV2,
//!   96×96, alpha 0.35), a batch of 8 images, on 2 intra-op threads.

use criterion::{criterion_group, criterion_main, Criterion};
use rustflow::saved_model::{load, LoadedModel, DEFAULT_SIGNATURE, SERVE_TAG};
use rustflow::tensor::npy::read_npy;
use rustflow::{SessionOptions, Tensor};
use std::path::PathBuf;

fn model(name: &str) -> LoadedModel {
    model_on(name, 1)
}

fn model_on(name: &str, threads: usize) -> LoadedModel {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("graphs/tf2");
    load(
        dir.join(name).join("model"),
        &[SERVE_TAG],
        SessionOptions::with_threads(threads),
    )
    .expect("the fixture loads")
}

/// The first item of `graphs/tf2/<name>/input.npy`, as a batch of one.
fn first_item(name: &str) -> Tensor {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("graphs/tf2");
    let x = read_npy(dir.join(name).join("input.npy")).expect("the fixture's input");
    let mut shape = x.shape().to_vec();
    shape[0] = 1;
    let n: usize = shape.iter().product();
    let v: Vec<f32> = x.to_f64_vec()[..n].iter().map(|&v| v as f32).collect();
    Tensor::new(&shape, v).expect("sizes match")
}

fn bench_model(c: &mut Criterion, id: &str, m: &LoadedModel, x: Tensor) {
    let key = m
        .signature(DEFAULT_SIGNATURE)
        .expect("serving_default")
        .inputs
        .keys()
        .next()
        .expect("one input")
        .clone();
    c.bench_function(id, |b| {
        b.iter(|| {
            m.run_signature(DEFAULT_SIGNATURE, &[(&key, x.clone())])
                .unwrap()
        })
    });
}

fn tf2(c: &mut Criterion) {
    bench_model(c, "tf2/mlp_batch1", &model("mlp"), first_item("mlp"));
    bench_model(c, "tf2/cnn_batch1", &model("cnn"), first_item("cnn"));
    // Deterministic stand-in sequences (the timing does not depend on the values).
    let seq: Vec<f32> = (0..16 * 32 * 16)
        .map(|i| ((i * 7919 % 1000) as f32 / 500.0) - 1.0)
        .collect();
    let seq = Tensor::new(&[16, 32, 16], seq).expect("sizes match");
    bench_model(c, "tf2/lstm_s32_b16", &model("lstm64"), seq);
    let images: Vec<f32> = (0..8 * 96 * 96 * 3)
        .map(|i| ((i * 7919 % 1000) as f32 / 500.0) - 1.0)
        .collect();
    let images = Tensor::new(&[8, 96, 96, 3], images).expect("sizes match");
    bench_model(
        c,
        "tf2/mobilenet_v2_b8_t2",
        &model_on("mobilenet_v2", 2),
        images,
    );
}

criterion_group!(benches, tf2);
criterion_main!(benches);

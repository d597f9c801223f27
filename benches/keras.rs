//! `model.predict` on 1,000 rows against a bare `Session::run` of the same forward pass
//! (the digits MLP: Dense(128, relu) → Dense(10, softmax) on 64 features, 1 thread):
//! - `keras_predict/predict_1000`: `predict_batched(x, 1000)` vs `session_run_1000`, one
//!   run of the hand-built graph with the model's weights;
//! - `keras_predict/predict_batches_32`: `predict(x)` (Keras's batches of 32) vs
//!   `session_runs_32`, the same 32-row batches run one by one.

use criterion::{criterion_group, criterion_main, Criterion};
use rustflow::keras::layers::{Dense, Input};
use rustflow::keras::{set_session_options, Sequential};
use rustflow::{DType, Graph, Session, SessionOptions, Tensor};

const ROWS: usize = 1000;
const FEATURES: usize = 64;

fn predict(c: &mut Criterion) {
    set_session_options(SessionOptions::with_threads(1));
    let mut model = Sequential::new(vec![
        Input::new(&[FEATURES]).into(),
        Dense::new(128).activation("relu").into(),
        Dense::new(10).activation("softmax").into(),
    ])
    .unwrap();
    let data: Vec<f32> = (0..ROWS * FEATURES)
        .map(|i| (i % 17) as f32 / 17.0)
        .collect();
    let x = Tensor::new(&[ROWS, FEATURES], data.clone()).unwrap();
    // The same forward pass by hand, the weights as constants.
    let w = model.get_weights().unwrap();
    let mut g = Graph::new();
    let p = g
        .placeholder(DType::Float32, vec![None, Some(FEATURES)], "x")
        .unwrap();
    let mut h = p;
    for (i, pair) in w.chunks(2).enumerate() {
        let k = g.constant(pair[0].clone()).unwrap();
        let b = g.constant(pair[1].clone()).unwrap();
        let z = g.matmul(h, k).unwrap();
        let z = g.bias_add(z, b).unwrap();
        h = if i == 0 {
            g.relu(z).unwrap()
        } else {
            g.softmax(z).unwrap()
        };
    }
    let sess = Session::with_options(&g, SessionOptions::with_threads(1));
    let ours = model.predict(&x).unwrap().to_f64_vec();
    let bare = sess.run(&[(p, x.clone())], &[h], &[]).unwrap()[0].to_f64_vec();
    assert!(ours.iter().zip(&bare).all(|(a, b)| (a - b).abs() < 1e-5));
    let batches: Vec<Tensor> = data
        .chunks(32 * FEATURES)
        .map(|rows| Tensor::new(&[rows.len() / FEATURES, FEATURES], rows.to_vec()).unwrap())
        .collect();

    let mut group = c.benchmark_group("keras_predict");
    group.bench_function("predict_1000", |b| {
        b.iter(|| model.predict_batched(&x, ROWS).unwrap())
    });
    group.bench_function("session_run_1000", |b| {
        b.iter(|| sess.run(&[(p, x.clone())], &[h], &[]).unwrap())
    });
    group.bench_function("predict_batches_32", |b| {
        b.iter(|| model.predict(&x).unwrap())
    });
    group.bench_function("session_runs_32", |b| {
        b.iter(|| {
            for batch in &batches {
                sess.run(&[(p, batch.clone())], &[h], &[]).unwrap();
            }
        })
    });
    group.finish();
}

criterion_group!(benches, predict);
criterion_main!(benches);

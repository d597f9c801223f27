//! Training speed, SGD, with RUSTFLOW_THREADS threads (default 1):
//! - `train/digits_epoch_sgd`: one epoch of the digits MLP (64 → 128 ReLU → 10, batch 32,
//!   45 steps, lr 0.1), fed batch by batch as the example does;
//! - `train/mlp784_step`: one step of the MLP 784 → 1024 → 1024 → 10 on a batch of 256.

#[path = "../examples/common/mod.rs"]
mod common;
mod threads;

use common::{data_dir, mlp, Digits, RandomState, FEATURES};
use criterion::{criterion_group, criterion_main, Criterion};
use rustflow::train::{GradientDescent, Optimizer};
use rustflow::{DType, Graph, Tensor};
use threads::{session, trace_if_asked};

fn train(c: &mut Criterion) {
    let mut group = c.benchmark_group("train");
    group.sample_size(20);

    let data = Digits::load(&data_dir()).unwrap();
    let mut g = Graph::new();
    let x = g
        .placeholder(DType::Float32, [None, Some(FEATURES)], "x")
        .unwrap();
    let y = g.placeholder(DType::Int32, [None], "y").unwrap();
    let net = mlp(&mut g, x, y, &[FEATURES, 128, 10], &mut RandomState::new(0)).unwrap();
    let step = GradientDescent::new(0.1)
        .minimize(&mut g, net.loss, None, None)
        .unwrap();
    let init = g.global_variables_initializer().unwrap();
    let sess = session(&g);
    sess.run(&[], &[], &[init]).unwrap();
    let call = sess.make_callable(&[x, y], &[], &[step]).unwrap();
    let order = RandomState::new(0).permutation(data.train_len());
    let batches: Vec<(Tensor, Tensor)> = order.chunks(32).map(|idx| data.batch(idx)).collect();
    group.bench_function("digits_epoch_sgd", |b| {
        b.iter(|| {
            for (bx, by) in &batches {
                sess.run_callable(&call, vec![bx.clone(), by.clone()])
                    .unwrap();
            }
        })
    });

    let mut g = Graph::new();
    let x = g
        .placeholder(DType::Float32, [None, Some(784)], "x")
        .unwrap();
    let y = g.placeholder(DType::Int32, [None], "y").unwrap();
    let net = mlp(
        &mut g,
        x,
        y,
        &[784, 1024, 1024, 10],
        &mut RandomState::new(0),
    )
    .unwrap();
    let step = GradientDescent::new(0.01)
        .minimize(&mut g, net.loss, None, None)
        .unwrap();
    let init = g.global_variables_initializer().unwrap();
    let sess = session(&g);
    sess.run(&[], &[], &[init]).unwrap();
    let call = sess.make_callable(&[x, y], &[net.loss], &[step]).unwrap();
    let mut rng = RandomState::new(0);
    let bx = Tensor::new(
        &[256, 784],
        rng.uniform(-1.0, 1.0, 256 * 784)
            .into_iter()
            .map(|v| v as f32)
            .collect(),
    )
    .unwrap();
    let by = Tensor::vector((0..256i32).map(|i| i * 7 % 10).collect::<Vec<i32>>());
    trace_if_asked(&sess, &call, &[bx.clone(), by.clone()], "mlp784_step");
    group.bench_function("mlp784_step", |b| {
        b.iter(|| {
            sess.run_callable(&call, vec![bx.clone(), by.clone()])
                .unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, train);
criterion_main!(benches);

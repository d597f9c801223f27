//! Convolutional network speed with RUSTFLOW_THREADS threads (default 1), on the anchors'
//! `cnn_small` model: batch 64 of 28×28×1 images, Conv2D 3×3×32 SAME + bias + ReLU,
//! MaxPool 2×2, Conv2D 3×3×64 VALID + bias + ReLU, MaxPool 2×2, dense 2304 → 10, sparse
//! softmax cross-entropy:
//! - `train/cnn_step`: one SGD step (lr 0.01) on a batch of 64, fetching the loss;
//! - `infer/cnn_batch1`, `infer/cnn_batch64`: the logits of 1 and 64 images.

#[path = "../examples/common/mod.rs"]
mod common;
mod threads;

use common::{glorot, RandomState};
use criterion::{criterion_group, criterion_main, Criterion};
use rustflow::train::{GradientDescent, Optimizer};
use rustflow::{DType, Graph, Output, Result, Tensor};
use threads::{session, trace_if_asked};

const BATCH: usize = 64;

/// `n` floats drawn uniformly from `[low, high)` as a tensor of `shape`.
fn uniform(rng: &mut RandomState, shape: &[usize], low: f64, high: f64) -> Tensor {
    let n = shape.iter().product();
    let v: Vec<f32> = rng
        .uniform(low, high, n)
        .into_iter()
        .map(|x| x as f32)
        .collect();
    Tensor::new(shape, v).expect("sizes match")
}

/// A trainable variable starting at `init`; returns its read.
fn variable(g: &mut Graph, init: Tensor, name: &str) -> Result<Output> {
    let c = g.constant(init)?;
    Ok(g.variable(c, name)?.read)
}

/// The anchors' `cnn_small` on NHWC input `x`: weights drawn as the anchors draw them
/// (uniform ±0.1 filters, Glorot dense kernel, zero biases); returns the logits.
fn cnn(g: &mut Graph, x: Output) -> Result<Output> {
    let mut rng = RandomState::new(0);
    let w1 = variable(g, uniform(&mut rng, &[3, 3, 1, 32], -0.1, 0.1), "w1")?;
    let b1 = variable(g, Tensor::full(&[32], 0f32), "b1")?;
    let w2 = variable(g, uniform(&mut rng, &[3, 3, 32, 64], -0.1, 0.1), "w2")?;
    let b2 = variable(g, Tensor::full(&[64], 0f32), "b2")?;
    let w3 = variable(g, glorot(&mut rng, 2304, 10), "w3")?;
    let b3 = variable(g, Tensor::full(&[10], 0f32), "b3")?;
    let ones = [1i64; 4];
    let pool = [1i64, 2, 2, 1];
    let h = g.conv2d(x, w1, &ones, "SAME")?;
    let h = g.bias_add(h, b1)?;
    let h = g.relu(h)?;
    let h = g.max_pool(h, &pool, &pool, "VALID")?;
    let h = g.conv2d(h, w2, &ones, "VALID")?;
    let h = g.bias_add(h, b2)?;
    let h = g.relu(h)?;
    let h = g.max_pool(h, &pool, &pool, "VALID")?;
    let h = g.reshape(h, &[-1, 2304])?;
    let h = g.matmul(h, w3)?;
    g.bias_add(h, b3)
}

/// A batch of `n` images and labels drawn from `seed`.
fn batch(n: usize, seed: u32) -> (Tensor, Tensor) {
    let mut rng = RandomState::new(seed);
    let x = uniform(&mut rng, &[n, 28, 28, 1], -1.0, 1.0);
    let y = Tensor::vector((0..n as i32).map(|i| i * 7 % 10).collect::<Vec<i32>>());
    (x, y)
}

fn train(c: &mut Criterion) {
    let mut group = c.benchmark_group("train");
    group.sample_size(20);
    let mut g = Graph::new();
    let x = g
        .placeholder(DType::Float32, [None, Some(28), Some(28), Some(1)], "x")
        .unwrap();
    let y = g.placeholder(DType::Int32, [None], "y").unwrap();
    let logits = cnn(&mut g, x).unwrap();
    let (xent, _) = g
        .sparse_softmax_cross_entropy_with_logits(logits, y)
        .unwrap();
    let loss = g.reduce_mean(xent, &[0], false).unwrap();
    let step = GradientDescent::new(0.01)
        .minimize(&mut g, loss, None, None)
        .unwrap();
    let init = g.global_variables_initializer().unwrap();
    let sess = session(&g);
    sess.run(&[], &[], &[init]).unwrap();
    let call = sess.make_callable(&[x, y], &[loss], &[step]).unwrap();
    let (bx, by) = batch(BATCH, 1);
    trace_if_asked(&sess, &call, &[bx.clone(), by.clone()], "cnn_step");
    group.bench_function("cnn_step", |b| {
        b.iter(|| {
            sess.run_callable(&call, vec![bx.clone(), by.clone()])
                .unwrap()
        })
    });
    group.finish();
}

fn infer(c: &mut Criterion) {
    let mut group = c.benchmark_group("infer");
    let mut g = Graph::new();
    let x = g
        .placeholder(DType::Float32, [None, Some(28), Some(28), Some(1)], "x")
        .unwrap();
    let logits = cnn(&mut g, x).unwrap();
    let init = g.global_variables_initializer().unwrap();
    let sess = session(&g);
    sess.run(&[], &[], &[init]).unwrap();
    let call = sess.make_callable(&[x], &[logits], &[]).unwrap();
    for n in [1, BATCH] {
        let (bx, _) = batch(n, 2);
        trace_if_asked(
            &sess,
            &call,
            std::slice::from_ref(&bx),
            &format!("cnn_batch{n}"),
        );
        group.bench_function(format!("cnn_batch{n}"), |b| {
            b.iter(|| sess.run_callable(&call, vec![bx.clone()]).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, train, infer);
criterion_main!(benches);

//! Dispatch overhead of `Session::run` and inter-op parallelism:
//! - `session/one_op`: one scalar AddV2 fed by two placeholders;
//! - `session/chain_100`: 100 chained scalar AddV2 (x + 1 + 1 + ...);
//! - `session/parallel_branches/{1,2}`: two independent chains of 512×512 MatMuls with 1 or 2
//!   inter-op threads (1 intra-op thread each, so the speed-up is the scheduler's).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use rustflow::{DType, Graph, PartialShape, Session, SessionOptions, Tensor};

fn single_thread() -> SessionOptions {
    SessionOptions {
        inter_op_threads: 1,
        intra_op_threads: 1,
        ..SessionOptions::default()
    }
}

fn dispatch(c: &mut Criterion) {
    let mut group = c.benchmark_group("session");

    let mut g = Graph::new();
    let x = g
        .placeholder(DType::Float32, PartialShape::scalar(), "x")
        .unwrap();
    let y = g
        .placeholder(DType::Float32, PartialShape::scalar(), "y")
        .unwrap();
    let z = g.add(x, y).unwrap();
    let sess = Session::with_options(&g, single_thread());
    let (a, b) = (Tensor::scalar(1.0f32), Tensor::scalar(2.0f32));
    group.bench_function("one_op", |bench| {
        bench.iter(|| {
            sess.run(&[(x, a.clone()), (y, b.clone())], &[z], &[])
                .unwrap()
        })
    });

    let mut g = Graph::new();
    let x = g
        .placeholder(DType::Float32, PartialShape::scalar(), "x")
        .unwrap();
    let one = g.constant(1.0f32).unwrap();
    let mut v = x;
    for _ in 0..100 {
        v = g.add(v, one).unwrap();
    }
    let sess = Session::with_options(&g, single_thread());
    group.bench_function("chain_100", |bench| {
        bench.iter(|| sess.run(&[(x, a.clone())], &[v], &[]).unwrap())
    });

    let n = 512;
    let mut g = Graph::new();
    let m = g
        .constant(
            Tensor::new(
                &[n, n],
                (0..n * n)
                    .map(|i| ((i % 11) as f32 - 5.0) / 512.0)
                    .collect(),
            )
            .unwrap(),
        )
        .unwrap();
    let (mut l, mut r) = (m, m);
    for _ in 0..4 {
        l = g.matmul(l, m).unwrap();
        r = g.matmul(m, r).unwrap();
    }
    for threads in [1usize, 2] {
        let sess = Session::with_options(
            &g,
            SessionOptions {
                inter_op_threads: threads,
                intra_op_threads: 1,
                ..SessionOptions::default()
            },
        );
        group.sample_size(20);
        group.bench_with_input(
            BenchmarkId::new("parallel_branches", threads),
            &threads,
            |bench, _| bench.iter(|| sess.run(&[], &[l, r], &[]).unwrap()),
        );
    }
    group.finish();
}

criterion_group!(benches, dispatch);
criterion_main!(benches);

//! `matmul_f32/<n>`: square float32 GEMM through a Session (one MatMul node, fed inputs),
//! reported as throughput in FLOP (2·n³ per product). Threads: RUSTFLOW_THREADS (default:
//! all cores).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rustflow::{DType, Graph, Session, SessionOptions, Tensor};

fn threads() -> usize {
    std::env::var("RUSTFLOW_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| SessionOptions::default().intra_op_threads)
}

fn matmul(c: &mut Criterion) {
    let mut group = c.benchmark_group("matmul_f32");
    for n in [256usize, 1024] {
        let mut g = Graph::new();
        let a = g.placeholder(DType::Float32, [n, n], "a").unwrap();
        let b = g.placeholder(DType::Float32, [n, n], "b").unwrap();
        let p = g.matmul(a, b).unwrap();
        let t = threads();
        let sess = Session::with_options(
            &g,
            SessionOptions {
                inter_op_threads: 1,
                intra_op_threads: t,
                ..SessionOptions::default()
            },
        );
        let x = Tensor::new(&[n, n], (0..n * n).map(|i| (i % 13) as f32 * 0.1).collect()).unwrap();
        let y = Tensor::new(&[n, n], (0..n * n).map(|i| (i % 7) as f32 * 0.2).collect()).unwrap();
        let call = sess.make_callable(&[a, b], &[p], &[]).unwrap();
        group.throughput(Throughput::Elements(2 * (n * n * n) as u64));
        group.sample_size(if n >= 1024 { 20 } else { 50 });
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |bench, _| {
            bench.iter(|| {
                sess.run_callable(&call, vec![x.clone(), y.clone()])
                    .unwrap()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, matmul);
criterion_main!(benches);

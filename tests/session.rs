//! Session behaviour: feeds, fetches, pruning, errors, plan caching, threads.

use rustflow::{DType, Error, Graph, PartialShape, Session, SessionOptions, Tensor};
use std::sync::Arc;

#[test]
fn seed_int32_matmul() {
    let mut g = Graph::new();
    let a = g.constant(Tensor::from([[1i32, 2], [3, 4]])).unwrap();
    let b = g.constant(Tensor::from([[5i32, 6], [7, 8]])).unwrap();
    let c = g.matmul(a, b).unwrap();
    assert_eq!(g.dtype(c), DType::Int32);
    let out = Session::new(&g).run(&[], &[c], &[]).unwrap();
    assert_eq!(out[0], Tensor::from([[19i32, 22], [43, 50]]));
    assert_eq!(
        out[0].to_string(),
        "Tensor(\n[[19 22]\n [43 50]], shape=(2, 2), dtype=int32)"
    );
}

#[test]
fn log_of_int_is_refused_at_build_time_with_a_cast_hint() {
    let mut g = Graph::new();
    let c = g.constant(Tensor::from([[19i32, 22], [43, 50]])).unwrap();
    let err = g.log(c).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Build { .. }));
    assert!(
        msg.contains("'Log'") && msg.contains("int32") && msg.contains("Cast"),
        "{msg}"
    );
    // Nothing was added.
    assert!(g.node_by_name("Log").is_none());
    let f = g.cast(c, DType::Float32).unwrap();
    let l = g.log(f).unwrap();
    let out = Session::new(&g).run(&[], &[l], &[]).unwrap();
    let want = [2.944439f32, 3.0910425, 3.7612002, 3.912023];
    for (x, w) in out[0].as_slice::<f32>().unwrap().iter().zip(want) {
        assert!((x - w).abs() <= 1e-6 * w, "{x} vs {w}");
    }
}

#[test]
fn matmul_shape_mismatch_names_node_and_shapes() {
    let mut g = Graph::new();
    let a = g.placeholder(DType::Float32, [2, 3], "a").unwrap();
    let b = g.placeholder(DType::Float32, [4, 5], "b").unwrap();
    let msg = g.matmul(a, b).unwrap_err().to_string();
    assert!(
        msg.contains("MatMul") && msg.contains("[2,3]") && msg.contains("[4,5]"),
        "{msg}"
    );
    let i = g.placeholder(DType::Int32, [3, 5], "i").unwrap();
    let msg = g.matmul(a, i).unwrap_err().to_string();
    assert!(msg.contains("int32") && msg.contains("float32"), "{msg}");
}

#[test]
fn feeds_are_checked_and_required() {
    let mut g = Graph::new();
    let x = g.placeholder(DType::Float32, [None, Some(2)], "x").unwrap();
    let y = g.add(x, x).unwrap();
    let sess = Session::new(&g);
    let err = sess.run(&[], &[y], &[]).unwrap_err().to_string();
    assert!(
        err.contains("You must feed a value for placeholder tensor 'x'"),
        "{err}"
    );
    let bad_dtype = sess
        .run(&[(x, Tensor::from([[1i32, 2]]))], &[y], &[])
        .unwrap_err();
    assert!(bad_dtype.to_string().contains("int32"), "{bad_dtype}");
    let bad_shape = sess
        .run(&[(x, Tensor::from([[1f32, 2.0, 3.0]]))], &[y], &[])
        .unwrap_err();
    assert!(bad_shape.to_string().contains("[?,2]"), "{bad_shape}");
    let out = sess
        .run(&[(x, Tensor::from([[1f32, 2.0], [3.0, 4.0]]))], &[y], &[])
        .unwrap();
    assert_eq!(out[0], Tensor::from([[2f32, 4.0], [6.0, 8.0]]));
    // Fetching a fed tensor returns the fed value.
    let out = sess
        .run(&[(x, Tensor::from([[5f32, 6.0]]))], &[x], &[])
        .unwrap();
    assert_eq!(out[0], Tensor::from([[5f32, 6.0]]));
}

#[test]
fn feeding_an_intermediate_cuts_the_graph() {
    let mut g = Graph::new();
    let x = g
        .placeholder(DType::Float32, PartialShape::scalar(), "x")
        .unwrap();
    let y = g.exp(x).unwrap();
    let z = g.add(y, y).unwrap();
    let sess = Session::new(&g);
    // x is not fed, but y is, so x is pruned away.
    let out = sess.run(&[(y, Tensor::scalar(1.5f32))], &[z], &[]).unwrap();
    assert_eq!(out[0].scalar_value::<f32>().unwrap(), 3.0);
}

#[test]
fn by_name_and_callables() {
    let mut g = Graph::new();
    let x = g
        .placeholder(DType::Float64, PartialShape::scalar(), "x")
        .unwrap();
    let two = g.constant(2.0f64).unwrap();
    let y = g.mul(x, two).unwrap();
    let sess = Session::new(&g);
    let name = format!("{}:0", g.node(y.node).name());
    let out = sess
        .run_by_name(&[("x:0", Tensor::scalar(4.0f64))], &[&name], &[])
        .unwrap();
    assert_eq!(out[0].scalar_value::<f64>().unwrap(), 8.0);
    let call = sess.make_callable(&[x], &[y], &[]).unwrap();
    for i in 0..3 {
        let out = sess
            .run_callable(&call, vec![Tensor::scalar(i as f64)])
            .unwrap();
        assert_eq!(out[0].scalar_value::<f64>().unwrap(), 2.0 * i as f64);
    }
    assert!(sess.run_by_name(&[], &["nope:0"], &[]).is_err());
}

#[test]
fn kernel_errors_name_the_node() {
    let mut g = Graph::new();
    let a = g.placeholder(DType::Float32, [None, None], "a").unwrap();
    let b = g.placeholder(DType::Float32, [None, None], "b").unwrap();
    let c = g
        .op("MatMul")
        .name("product")
        .input(a)
        .input(b)
        .attr("T", DType::Float32)
        .build_output()
        .unwrap();
    let sess = Session::new(&g);
    let err = sess
        .run(
            &[
                (a, Tensor::full(&[2, 3], 1f32)),
                (b, Tensor::full(&[4, 2], 1f32)),
            ],
            &[c],
            &[],
        )
        .unwrap_err();
    assert!(
        matches!(&err, Error::Run { node, .. } if node == "product"),
        "{err}"
    );
}

/// A `Fill` of `dims` (fed, int64) with 1.0f32.
fn fill_graph() -> (Graph, rustflow::Output, rustflow::Output) {
    let mut g = Graph::new();
    let dims = g.placeholder(DType::Int64, [None], "dims").unwrap();
    let one = g.constant(1f32).unwrap();
    let fill = g.fill(dims, one).unwrap();
    (g, dims, fill)
}

#[test]
fn an_absurd_allocation_errs_naming_the_node_and_the_session_keeps_serving() {
    let (g, dims, fill) = fill_graph();
    for inter_op_threads in [1, 2] {
        let sess = Session::with_options(
            &g,
            SessionOptions {
                inter_op_threads,
                ..SessionOptions::default()
            },
        );
        // 4 TiB of float32: more than the machine has (the default limit).
        let err = sess
            .run(&[(dims, Tensor::from([1i64 << 40]))], &[fill], &[])
            .unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::ResourceExhausted(_)), "{msg}");
        assert!(
            msg.contains("node 'Fill' (op Fill)")
                && msg.contains("float32")
                && msg.contains("[1099511627776]")
                && msg.contains("4398046511104 bytes"),
            "{msg}"
        );
        let out = sess
            .run(&[(dims, Tensor::from([2i64, 2]))], &[fill], &[])
            .unwrap();
        assert_eq!(out[0], Tensor::full(&[2, 2], 1f32));
    }
}

#[test]
fn max_memory_bytes_bounds_every_output_a_kernel_allocates() {
    let (mut g, dims, fill) = fill_graph();
    // A broadcast of [n, 1] against [1, n] makes n * n elements from 2n.
    let col = g
        .placeholder(DType::Float32, [None, Some(1)], "col")
        .unwrap();
    let row = g
        .placeholder(DType::Float32, [Some(1), None], "row")
        .unwrap();
    let outer = g.add(col, row).unwrap();
    let sess = Session::with_options(
        &g,
        SessionOptions {
            max_memory_bytes: 4000,
            ..SessionOptions::default()
        },
    );
    // 1000 float32 are 4000 bytes: allowed; 1001 are not.
    let ok = sess
        .run(&[(dims, Tensor::from([1000i64]))], &[fill], &[])
        .unwrap();
    assert_eq!(ok[0].len(), 1000);
    let err = sess
        .run(&[(dims, Tensor::from([1001i64]))], &[fill], &[])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("4004 bytes") && err.contains("limit of 4000"),
        "{err}"
    );
    let feeds = |n: usize| {
        [
            (col, Tensor::new(&[n, 1], vec![1f32; n]).unwrap()),
            (row, Tensor::new(&[1, n], vec![2f32; n]).unwrap()),
        ]
    };
    assert_eq!(sess.run(&feeds(30), &[outer], &[]).unwrap()[0].len(), 900);
    let err = sess.run(&feeds(40), &[outer], &[]).unwrap_err();
    assert!(
        matches!(&err, Error::ResourceExhausted(m) if m.contains("[40, 40]") && m.contains("AddV2")),
        "{err}"
    );
}

#[test]
fn max_memory_bytes_bounds_the_live_total_and_freed_memory_is_reused() {
    // a = x * 2 and b = x + 1 are 16 KiB each; sum = a + b another 16 KiB.
    let n = 4096;
    let mut g = Graph::new();
    let x = g.placeholder(DType::Float32, [None], "x").unwrap();
    let two = g.constant(2f32).unwrap();
    let one = g.constant(1f32).unwrap();
    let a = g.mul(x, two).unwrap();
    let b = g.add(x, one).unwrap();
    let sum = g
        .op("AddV2")
        .name("sum")
        .input(a)
        .input(b)
        .attr("T", DType::Float32)
        .build_output()
        .unwrap();
    for inter_op_threads in [1, 2] {
        // Each tensor alone fits 40000 bytes; three alive at once (49152) do not.
        let sess = Session::with_options(
            &g,
            SessionOptions {
                inter_op_threads,
                max_memory_bytes: 40_000,
                ..SessionOptions::default()
            },
        );
        let feed = [(x, Tensor::full(&[n], 1f32))];
        // Fetching a and b keeps them alive while sum is computed: over the limit, and
        // the node that went over is named.
        let err = sess.run(&feed, &[a, b, sum], &[]).unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(err, Error::ResourceExhausted(_))
                && msg.contains("node 'sum' (op AddV2)")
                && msg.contains("49152 bytes")
                && msg.contains("limit of 40000 bytes"),
            "{msg}"
        );
        // What the failed run held was given back.
        assert_eq!(sess.memory_in_use(), 0);
        // Alone, sum fits: a and b end before it (its output may reuse one of them).
        let out = sess.run(&feed, &[sum], &[]).unwrap();
        assert_eq!(out[0], Tensor::full(&[n], 4f32));
        assert_eq!(sess.memory_in_use(), 16384);
        drop(out);
        // Fetched values count until the caller drops them.
        let held = sess.run(&feed, &[a, b], &[]).unwrap();
        assert_eq!(sess.memory_in_use(), 32768);
        let err = sess.run(&feed, &[sum], &[]).unwrap_err();
        assert!(matches!(err, Error::ResourceExhausted(_)), "{err}");
        // An allocation is checked against what is left before it is made.
        let fill_err = sess.run(&feed, &[a], &[]).unwrap_err().to_string();
        assert!(
            fill_err.contains("32768 bytes in use") || fill_err.contains("over"),
            "{fill_err}"
        );
        drop(held);
        assert_eq!(sess.memory_in_use(), 0);
        assert_eq!(sess.run(&feed, &[a, b], &[]).unwrap().len(), 2);
    }
}

fn two_matmul_chains(g: &mut Graph, n: usize) -> (rustflow::Output, rustflow::Output) {
    let data: Vec<f32> = (0..n * n)
        .map(|i| ((i % 7) as f32 - 3.0) / (n as f32))
        .collect();
    let m = g.constant(Tensor::new(&[n, n], data).unwrap()).unwrap();
    let mut a = m;
    let mut b = m;
    for _ in 0..4 {
        a = g.matmul(a, m).unwrap();
        b = g.matmul(m, b).unwrap();
    }
    (a, b)
}

#[test]
fn parallel_and_sequential_executors_agree() {
    // Large enough (8 products of 256×256) for runs after the first to go to the pool.
    let mut g = Graph::new();
    let (a, b) = two_matmul_chains(&mut g, 256);
    let s = g.sub(a, b).unwrap();
    let seq = Session::with_options(
        &g,
        SessionOptions {
            inter_op_threads: 1,
            intra_op_threads: 1,
            ..SessionOptions::default()
        },
    );
    let par = Session::with_options(
        &g,
        SessionOptions {
            inter_op_threads: 2,
            intra_op_threads: 1,
            ..SessionOptions::default()
        },
    );
    let x = seq.run(&[], &[a, b, s], &[]).unwrap();
    for _ in 0..20 {
        let y = par.run(&[], &[a, b, s], &[]).unwrap();
        assert_eq!(x, y);
    }
}

#[test]
fn one_session_runs_from_many_threads() {
    let mut g = Graph::new();
    let x = g
        .placeholder(DType::Float32, PartialShape::scalar(), "x")
        .unwrap();
    let y = g.mul(x, x).unwrap();
    let (a, b) = two_matmul_chains(&mut g, 128);
    let sess = Arc::new(Session::with_options(&g, SessionOptions::with_threads(2)));
    let expect = sess.run(&[], &[a, b], &[]).unwrap();
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let sess = Arc::clone(&sess);
            let expect = expect.clone();
            std::thread::spawn(move || {
                for i in 0..50 {
                    let v = (t * 100 + i) as f32;
                    let out = sess.run(&[(x, Tensor::scalar(v))], &[y], &[]).unwrap();
                    assert_eq!(out[0].scalar_value::<f32>().unwrap(), v * v);
                    assert_eq!(sess.run(&[], &[a, b], &[]).unwrap(), expect);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn extend_sees_new_nodes() {
    let mut g = Graph::new();
    let x = g.constant(3.0f32).unwrap();
    let sess = Session::new(&g);
    let y = g.mul(x, x).unwrap();
    assert!(sess.run(&[], &[y], &[]).is_err());
    sess.extend(&g).unwrap();
    assert_eq!(
        sess.run(&[], &[y], &[]).unwrap()[0]
            .scalar_value::<f32>()
            .unwrap(),
        9.0
    );
}

#[test]
fn feeding_one_tensor_twice_is_an_error_naming_it() {
    let mut g = Graph::new();
    let x = g.placeholder(DType::Float32, [Some(2)], "x").unwrap();
    let y = g.square(x).unwrap();
    let sess = Session::new(&g);
    let a = Tensor::from([1.0f32, 2.0]);
    let b = Tensor::from([3.0f32, 4.0]);
    let err = sess
        .run(&[(x, a), (x, b)], &[y], &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("'x:0' is fed twice"), "{err}");
}

/// Two independent products and their sum, on 64×64 inputs.
fn two_products() -> (Graph, rustflow::Output, rustflow::Output) {
    let mut g = Graph::new();
    let x = g
        .placeholder(DType::Float32, PartialShape::from([64, 64]), "x")
        .unwrap();
    let w1 = g
        .constant(Tensor::new(&[64, 64], vec![0.5f32; 64 * 64]).unwrap())
        .unwrap();
    let w2 = g
        .constant(Tensor::new(&[64, 64], vec![0.25f32; 64 * 64]).unwrap())
        .unwrap();
    let a = g.matmul(x, w1).unwrap();
    let b = g.matmul(x, w2).unwrap();
    let c = g.add(a, b).unwrap();
    (g, x, c)
}

#[test]
fn a_traced_run_records_every_node_with_ordered_times() {
    use rustflow::session::{RunOptions, TraceLevel};
    let (g, x, c) = two_products();
    let feed = Tensor::new(&[64, 64], vec![1.0f32; 64 * 64]).unwrap();
    for threads in [1, 2] {
        let sess = Session::with_options(&g, SessionOptions::with_threads(threads));
        let plain = sess.run(&[(x, feed.clone())], &[c], &[]).unwrap();
        let (traced, meta) = sess
            .run_with_options(&[(x, feed.clone())], &[c], &[], &RunOptions::full_trace())
            .unwrap();
        assert_eq!(plain, traced, "tracing does not change the values");
        // 64·(0.5 + 0.25) per element.
        assert_eq!(traced[0].as_slice::<f32>().unwrap()[0], 48.0);
        let mut ops: Vec<&str> = meta.nodes.iter().map(|n| n.op).collect();
        ops.sort();
        assert_eq!(ops, ["AddV2", "MatMul", "MatMul"], "{threads} threads");
        for n in &meta.nodes {
            assert!(g.node_by_name(&n.node).is_some(), "{}", n.node);
            assert!(n.start <= n.kernel_start && n.kernel_start <= n.kernel_end);
            assert!(n.kernel_end <= n.end, "{n:?}");
        }
        let add = meta.nodes.iter().find(|n| n.op == "AddV2").unwrap();
        assert!(meta
            .nodes
            .iter()
            .filter(|n| n.op == "MatMul")
            .all(|m| m.kernel_end <= add.kernel_start));
        let totals = meta.op_totals();
        assert_eq!(totals.iter().map(|t| t.count).sum::<usize>(), 3);
        assert_eq!(totals.iter().find(|t| t.op == "MatMul").unwrap().count, 2);
        // TensorFlow's StepStats: one device, the three nodes, relative times in order.
        let stats = meta.step_stats();
        let dev = &stats.dev_stats[0];
        assert_eq!(dev.device, "/job:localhost/replica:0/task:0/device:CPU:0");
        assert_eq!(dev.node_stats.len(), 3);
        for s in &dev.node_stats {
            assert!(
                s.all_start_micros > 1_700_000_000_000_000,
                "since the epoch"
            );
            assert!(0 <= s.op_start_rel_nanos && s.op_start_rel_nanos <= s.op_end_rel_nanos);
            assert!(s.op_end_rel_nanos <= s.all_end_rel_nanos);
            assert!(dev.thread_names.contains_key(&s.thread_id));
        }
        // The Chrome trace: a complete event per node, named by op, the node in its args.
        let trace: serde_json::Value = serde_json::from_str(&meta.chrome_trace()).unwrap();
        let events = trace["traceEvents"].as_array().unwrap();
        let complete: Vec<_> = events.iter().filter(|e| e["ph"] == "X").collect();
        assert_eq!(complete.len(), 3);
        assert!(complete
            .iter()
            .any(|e| e["name"] == "AddV2" && e["args"]["name"] == add.node.as_str()));
        // Untraced options record nothing.
        let (_, quiet) = sess
            .run_with_options(&[(x, feed.clone())], &[c], &[], &RunOptions::default())
            .unwrap();
        assert!(quiet.nodes.is_empty());
        assert_eq!(RunOptions::default().trace_level, TraceLevel::NoTrace);
    }
}

//! TensorFlow 1 control flow (`Enter`, `Exit`, `Switch`, `Merge`, `NextIteration`,
//! `LoopCond`): a GraphDef written by TensorFlow 2.21 with control flow v2 off
//! (graphs/tf1_loops/, by graphs/make_tf2_fixtures.py) imports and computes TensorFlow's
//! values; loops are bounded by `max_loop_iterations`; malformed frames are errors naming
//! the node.

use rustflow::graph::AttrsExt;
use rustflow::proto::{import_graph_def, load_graph, parse_text_graph_def};
use rustflow::session::SessionOptions;
use rustflow::tensor::npy::read_npy;
use rustflow::{DType, Graph, Output, PartialShape, Session, Tensor};
use std::path::PathBuf;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("graphs/tf1_loops")
}

fn fetch_names() -> Vec<String> {
    std::fs::read_to_string(dir().join("fetches.txt"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn run_case(sess: &Session, k: usize) -> Vec<Tensor> {
    let x = read_npy(dir().join(format!("case{k}_x.npy"))).unwrap();
    let n = read_npy(dir().join(format!("case{k}_n.npy"))).unwrap();
    let names = fetch_names();
    let fetches: Vec<&str> = names.iter().map(String::as_str).collect();
    sess.run_by_name(&[("x:0", x), ("n:0", n)], &fetches, &[])
        .unwrap_or_else(|e| panic!("case {k}: {e}"))
}

#[test]
fn tensorflow_while_loops_and_conds_compute_tensorflows_values() {
    let g = load_graph(&dir().join("graph.pb")).unwrap();
    for threads in [1, 2] {
        let sess = Session::with_options(&g, SessionOptions::with_threads(threads));
        for k in 0..3 {
            let got = run_case(&sess, k);
            for (i, (t, name)) in got.iter().zip(fetch_names()).enumerate() {
                let want = read_npy(dir().join(format!("case{k}_{i}.npy"))).unwrap();
                assert_eq!(t.shape(), want.shape(), "case {k} {name}");
                assert_eq!(t.dtype(), want.dtype(), "case {k} {name}");
                for (a, b) in t.to_f64_vec().iter().zip(want.to_f64_vec()) {
                    assert!(
                        (a - b).abs() <= 1e-5 * b.abs().max(1.0),
                        "case {k} {name}: rustflow {a}, TensorFlow {b}"
                    );
                }
            }
        }
    }
}

#[test]
fn loop_shapes_are_unknown_where_tensorflow_leaves_them_unknown() {
    let g = load_graph(&dir().join("graph.pb")).unwrap();
    let spec = |name: &str| g.spec(g.output_by_name(name).unwrap()).clone();
    // A loop variable's Enter (and so its Merge) has an unknown shape; a constant Enter
    // keeps its input's.
    assert_eq!(spec("power/Enter_1:0").shape, PartialShape::unknown());
    assert_eq!(spec("power/Merge_1:0").shape, PartialShape::unknown());
    assert_eq!(spec("power/Merge_1:1").shape, PartialShape::scalar());
    let constant = g
        .nodes()
        .find(|(_, n)| {
            n.op_type() == "Enter" && n.attrs().bool_or("is_constant", false) == Ok(true)
        })
        .map(|(id, _)| id)
        .unwrap();
    assert_eq!(
        g.spec(constant.output(0)).shape,
        g.spec(g.node(constant).inputs()[0]).shape
    );
    assert_eq!(spec("cond/mul/Switch:1").shape, PartialShape::known(&[3]));
}

#[test]
fn max_loop_iterations_stops_a_loop_naming_its_frame() {
    let g = load_graph(&dir().join("graph.pb")).unwrap();
    let options = SessionOptions {
        max_loop_iterations: Some(4),
        ..SessionOptions::with_threads(1)
    };
    let sess = Session::with_options(&g, options);
    let x = Tensor::vector(vec![1.0f32, 2.0, 3.0]);
    let run = |n: i32| {
        sess.run_by_name(
            &[("x:0", x.clone()), ("n:0", Tensor::scalar(n))],
            &["out_counter:0"],
            &[],
        )
    };
    assert_eq!(run(4).unwrap()[0].scalar_value::<i32>().unwrap(), 4);
    let e = run(1000).unwrap_err().to_string();
    assert!(
        e.contains("counter/while_context") && e.contains("max_loop_iterations"),
        "{e}"
    );
}

/// A loop counting to `n` by hand: Enter → Merge → LoopCond → Switch → Exit, with the
/// back edge from NextIteration to the Merge.
fn counting_loop(parallel: i64) -> (Graph, Output, Output) {
    let mut g = Graph::new();
    let n = g
        .placeholder(DType::Int32, PartialShape::scalar(), "n")
        .unwrap();
    let zero = g.constant(0i32).unwrap();
    let enter = |g: &mut Graph, x: Output, constant: bool| {
        g.op("Enter")
            .input(x)
            .attr("T", DType::Int32)
            .attr("frame_name", "count")
            .attr("is_constant", constant)
            .attr("parallel_iterations", parallel)
            .build_output()
            .unwrap()
    };
    let i = enter(&mut g, zero, false);
    let limit = enter(&mut g, n, true);
    let merge = g.op("Merge").inputs(&[i, i]).build().unwrap();
    let less = g.less(merge.output(0), limit).unwrap();
    let pred = g.op("LoopCond").input(less).build_output().unwrap();
    let switch = g
        .op("Switch")
        .inputs(&[merge.output(0), pred])
        .build()
        .unwrap();
    let exit = g.op("Exit").input(switch.output(0)).build_output().unwrap();
    let body = g.identity(switch.output(1)).unwrap();
    let one = g.constant(1i32).unwrap();
    let next = g.add(body, one).unwrap();
    let next = g.op("NextIteration").input(next).build_output().unwrap();
    g.connect_back_edge(merge, 1, next).unwrap();
    (g, n, exit)
}

#[test]
fn a_loop_built_in_rust_runs_with_any_parallel_iterations() {
    for parallel in [1, 2, 10] {
        let (g, n, exit) = counting_loop(parallel);
        let sess = Session::new(&g);
        for count in [0, 1, 7] {
            let out = sess
                .run(&[(n, Tensor::scalar(count))], &[exit], &[])
                .unwrap();
            assert_eq!(out[0].scalar_value::<i32>().unwrap(), count, "{parallel}");
        }
    }
}

#[test]
fn a_run_with_frames_is_held_to_the_memory_limit() {
    let (mut g, n, exit) = counting_loop(1);
    let dims = g.placeholder(DType::Int64, [Some(1)], "dims").unwrap();
    let one = g.constant(1f32).unwrap();
    let fill = g.fill(dims, one).unwrap();
    let sess = Session::with_options(
        &g,
        SessionOptions {
            max_memory_bytes: 40_000,
            ..SessionOptions::default()
        },
    );
    let run = |len: i64| {
        let feeds = [(n, Tensor::scalar(3)), (dims, Tensor::from([len]))];
        sess.run(&feeds, &[exit, fill], &[])
    };
    // 16 KiB of float32 is charged while the fetched value lives.
    let out = run(4096).unwrap();
    assert_eq!(sess.memory_in_use(), 16384);
    drop(out);
    assert_eq!(sess.memory_in_use(), 0);
    let err = run(20_000).unwrap_err().to_string();
    assert!(err.contains("80000 bytes") && err.contains("Fill"), "{err}");
}

#[test]
fn a_dead_fetch_is_an_error_naming_the_switch() {
    let mut g = Graph::new();
    let x = g.constant(Tensor::vector(vec![1.0f32, 2.0])).unwrap();
    let p = g
        .placeholder(DType::Bool, PartialShape::scalar(), "p")
        .unwrap();
    let switch = g.op("Switch").inputs(&[x, p]).build().unwrap();
    let doubled = g.add(switch.output(1), switch.output(1)).unwrap();
    let halved = g.mul(switch.output(0), x).unwrap();
    let merged = g.op("Merge").inputs(&[halved, doubled]).build().unwrap();
    let sess = Session::new(&g);
    let out = sess
        .run(
            &[(p, Tensor::scalar(true))],
            &[merged.output(0), merged.output(1)],
            &[],
        )
        .unwrap();
    assert_eq!(out[0].to_f64_vec(), vec![2.0, 4.0]);
    assert_eq!(out[1].scalar_value::<i32>().unwrap(), 1);
    let e = sess
        .run(&[(p, Tensor::scalar(true))], &[halved], &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("dead") && e.contains("Mul"), "{e}");
    let e = sess
        .run(&[(p, Tensor::scalar(false))], &[doubled], &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("dead"), "{e}");
}

fn import_text(text: &str) -> Graph {
    import_graph_def(&parse_text_graph_def(text).unwrap(), None).unwrap()
}

fn run_error(text: &str, fetch: &str) -> String {
    let g = import_text(text);
    let sess = Session::new(&g);
    sess.run_by_name(&[], &[fetch], &[])
        .unwrap_err()
        .to_string()
}

/// A text GraphDef: a float constant `x`, then one float node per (name, op, inputs)
/// (an `Enter` enters frame `f`; a `Merge` gets `N`).
fn graph_text(nodes: &[(&str, &str, &[&str])]) -> String {
    let mut text = String::from(
        r#"node { name: "x" op: "Const" attr { key: "dtype" value { type: DT_FLOAT } }
           attr { key: "value" value { tensor { dtype: DT_FLOAT tensor_shape {} float_val: 1 } } } }"#,
    );
    for (name, op, inputs) in nodes {
        text += &format!(r#" node {{ name: "{name}" op: "{op}""#);
        for i in *inputs {
            text += &format!(r#" input: "{i}""#);
        }
        text += r#" attr { key: "T" value { type: DT_FLOAT } }"#;
        match *op {
            "Enter" => text += r#" attr { key: "frame_name" value { s: "f" } }"#,
            "Merge" => text += &format!(r#" attr {{ key: "N" value {{ i: {} }} }}"#, inputs.len()),
            _ => {}
        }
        text += " }";
    }
    text
}

#[test]
fn malformed_frames_are_errors_naming_the_node() {
    let exit_alone = graph_text(&[("y", "Identity", &["x"]), ("out", "Exit", &["y"])]);
    let e = run_error(&exit_alone, "out:0");
    assert!(e.contains("'out'") && e.contains("no Enter"), "{e}");

    let next_alone = graph_text(&[
        ("e", "Enter", &["x"]),
        ("n", "NextIteration", &["e"]),
        ("y", "Identity", &["n"]),
        ("out", "Exit", &["y"]),
    ]);
    let e = run_error(&next_alone, "out:0");
    assert!(e.contains("'n'") && e.contains("Merge"), "{e}");

    // x is a folded constant, which every frame may read; a step's output is not.
    let constant_in_frame = graph_text(&[
        ("e", "Enter", &["x"]),
        ("y", "Add", &["e", "x"]),
        ("out", "Exit", &["y"]),
    ]);
    let g = import_text(&constant_in_frame);
    assert_eq!(
        Session::new(&g).run_by_name(&[], &["out:0"], &[]).unwrap()[0].to_f64_vec(),
        vec![2.0]
    );
    let two_frames = graph_text(&[
        ("z", "Identity", &["x"]),
        ("e", "Enter", &["x"]),
        ("y", "Add", &["e", "z"]),
        ("out", "Exit", &["y"]),
    ]);
    let e = run_error(&two_frames, "out:0");
    assert!(e.contains("'y'") && e.contains("two frames"), "{e}");

    let only_back_edges =
        graph_text(&[("m", "Merge", &["n", "n"]), ("n", "NextIteration", &["m"])]);
    let parsed = parse_text_graph_def(&only_back_edges).unwrap();
    let e = import_graph_def(&parsed, None).err().unwrap().to_string();
    assert!(e.contains("'m'") && e.contains("NextIteration"), "{e}");

    let bad_predicate = graph_text(&[("s", "Switch", &["x", "x"])]);
    let g = import_text(&bad_predicate);
    let e = Session::new(&g)
        .run_by_name(&[], &["s:0"], &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("'s'"), "{e}");
}

#[test]
fn a_function_whose_body_holds_tf1_control_flow_runs_it_with_frames() {
    use rustflow::graph::TensorSpec;
    let mut g = Graph::new();
    let any = [TensorSpec::new(DType::Float32, PartialShape::unknown())];
    g.define_function("flip_negative_sum", &any, |g, a| {
        let zero = g.constant(0.0f32)?;
        let sum = g.reduce_sum(a[0], &[0], false)?;
        let positive = g.greater(sum, zero)?;
        let switch = g.op("Switch").inputs(&[a[0], positive]).build()?;
        let flipped = g.neg(switch.output(0))?;
        let merged = g.op("Merge").inputs(&[flipped, switch.output(1)]).build()?;
        Ok(vec![merged.output(0)])
    })
    .unwrap();
    let x = g
        .placeholder(DType::Float32, PartialShape::unknown(), "x")
        .unwrap();
    let yes = g.constant(true).unwrap();
    let out = g
        .cond(yes, "flip_negative_sum", "flip_negative_sum", &[x])
        .unwrap()[0];
    let sess = Session::new(&g);
    for (input, want) in [([-1.0f32, -2.0], [1.0, 2.0]), ([3.0, -1.0], [3.0, -1.0])] {
        let got = sess
            .run(&[(x, Tensor::vector(input.to_vec()))], &[out], &[])
            .unwrap();
        assert_eq!(got[0].to_f64_vec(), want.to_vec());
    }
}

/// Gradients through TensorFlow 1 loops and conds are refused with an error naming the
/// first frame node on the path (TensorFlow's control_flow_grad.py is not implemented);
/// a gradient that stays outside the frames still works.
#[test]
fn gradients_through_tensorflow_1_control_flow_are_refused_naming_the_node() {
    let mut g = load_graph(&dir().join("graph.pb")).unwrap();
    let x = g.output_by_name("x:0").unwrap();
    for (fetch, node) in [
        ("out_power:0", "power/Exit_1"),
        ("out_cond:0", "cond/Merge"),
    ] {
        let y = g.output_by_name(fetch).unwrap();
        let e = g.gradients(&[y], &[x]).unwrap_err().to_string();
        assert!(
            e.contains("TensorFlow 1 control flow") && e.contains(&format!("'{node}'")),
            "{fetch}: {e}"
        );
    }
    let sq = g.square(x).unwrap();
    let grad = g.gradients(&[sq], &[x]).unwrap()[0].unwrap();
    let sess = Session::new(&g);
    let x0 = Tensor::from([1f32, -2.0, 0.5]);
    let r = sess.run(&[(x, x0)], &[grad], &[]).unwrap();
    assert_eq!(r[0], Tensor::from([2f32, -4.0, 1.0]));
}

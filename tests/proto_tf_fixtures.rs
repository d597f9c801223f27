//! Frozen GraphDefs written by TensorFlow 2.21 (`graphs/make_fixtures.py`) import without
//! unsupported nodes, and compute TensorFlow's outputs on the same inputs (1e-5 relative).

use rustflow::proto::{graph_to_bytes, load_graph, unsupported};
use rustflow::tensor::npy::read_npy;
use rustflow::{Session, Tensor};
use std::path::{Path, PathBuf};

fn fixtures() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("graphs/fixtures");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("io.txt").exists())
        .collect();
    dirs.sort();
    dirs
}

fn close(name: &str, got: &Tensor, want: &Tensor) {
    assert_eq!(got.dtype(), want.dtype(), "{name}: dtype");
    assert_eq!(got.shape(), want.shape(), "{name}: shape");
    for (i, (a, b)) in got.to_f64_vec().iter().zip(want.to_f64_vec()).enumerate() {
        let tol = 1e-5 * b.abs() + 1e-6;
        assert!(
            (a - b).abs() <= tol,
            "{name}[{i}]: rustflow {a}, TensorFlow {b}"
        );
    }
}

#[test]
fn tensorflow_fixtures_compute_tensorflows_outputs() {
    let dirs = fixtures();
    assert!(
        dirs.len() >= 5,
        "fixtures missing: run graphs/make_fixtures.py"
    );
    for dir in dirs {
        let fixture = dir.file_name().unwrap().to_string_lossy().into_owned();
        let graph = load_graph(&dir.join("model.pb")).unwrap();
        for (_, n) in graph.nodes() {
            assert!(
                !unsupported::is_unsupported(n),
                "{fixture}: node {} ({}) is unsupported: {:?}",
                n.name(),
                n.op_type(),
                unsupported::unsupported_node(n).map(|u| u.reason)
            );
        }
        let io = std::fs::read_to_string(dir.join("io.txt")).unwrap();
        let mut feeds = Vec::new();
        let mut fetches = Vec::new();
        let mut expected = Vec::new();
        for line in io.lines() {
            let parts: Vec<&str> = line.split(' ').collect();
            let [kind, tensor, file] = parts[..] else {
                panic!("{fixture}: bad io.txt line '{line}'")
            };
            let value = read_npy(dir.join(file)).unwrap();
            let o = graph.output_by_name(tensor).unwrap();
            match kind {
                "input" => feeds.push((o, value)),
                _ => {
                    fetches.push(o);
                    expected.push((tensor.to_string(), value));
                }
            }
        }
        let got = Session::new(&graph).run(&feeds, &fetches, &[]).unwrap();
        for (g, (name, want)) in got.iter().zip(&expected) {
            close(&format!("{fixture}/{name}"), g, want);
        }
    }
}

#[test]
fn text_graph_defs_written_by_tensorflow_match_the_binary_ones() {
    for dir in fixtures() {
        let text = load_graph(&dir.join("model.pbtxt")).unwrap();
        let binary = load_graph(&dir.join("model.pb")).unwrap();
        assert_eq!(
            graph_to_bytes(&text),
            graph_to_bytes(&binary),
            "{}",
            dir.display()
        );
    }
}

#[test]
fn string_tensors_import_feed_fetch_and_round_trip() {
    // graphs/make_string_fixtures.py: a string Const and a string Placeholder, each read by
    // an Identity.
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("graphs/fixtures/strings/const.pb");
    let g = load_graph(&path).unwrap();
    for (_, node) in g.nodes() {
        assert!(!unsupported::is_unsupported(node), "{}", node.name());
    }
    let sess = Session::new(&g);
    let fed = Tensor::from_strings(&[2], vec![&b"\xff\x00"[..], b"tf"]).unwrap();
    let out = sess
        .run_by_name(&[("p", fed.clone())], &["words_out", "p_out"], &[])
        .unwrap();
    let words = Tensor::from_strings(&[2, 2], vec!["a", "bc", "", "d\n"]).unwrap();
    assert_eq!(out[0], words);
    assert_eq!(out[1], fed);
    // A numeric feed for a string placeholder is an error naming both dtypes.
    let e = sess
        .run_by_name(&[("p", Tensor::from([1.0f32]))], &["p_out"], &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("string") && e.contains("float32"), "{e}");
    // Re-exported, the constant keeps TensorFlow's encoding (string_val).
    let gd = rustflow::proto::parse_graph_def(&graph_to_bytes(&g)).unwrap();
    let again = rustflow::proto::import_graph_def(&gd, None).unwrap();
    let out = Session::new(&again)
        .run_by_name(&[("p", fed)], &["words_out"], &[])
        .unwrap();
    assert_eq!(out[0], words);
}

#[test]
fn parse_example_v2_graphs_of_tensorflow_2_parse_as_tensorflow_did() {
    // graphs/make_parse_example_fixtures.py: tf.io.parse_example (a batch) and
    // tf.io.parse_single_example (a scalar) of the same features, as TF 2 builds them.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("graphs/fixtures/parse_example");
    let npy = |name: &str| read_npy(dir.join(format!("{name}.npy"))).unwrap();
    let tags = Tensor::from_strings(&[2], vec!["a", "bc"]).unwrap();

    let g = load_graph(&dir.join("parse_v2.pb")).unwrap();
    for (_, node) in g.nodes() {
        assert!(!unsupported::is_unsupported(node), "{}", node.name());
    }
    let sess = Session::new(&g);
    let records = sess.run_by_name(&[], &["records"], &[]).unwrap().remove(0);
    let names = ["x", "label", "tags_indices", "tags_shape", "tags_values"];
    let out = sess
        .run_by_name(&[("serialized", records.clone())], &names, &[])
        .unwrap();
    for (name, got) in names[..4].iter().zip(&out) {
        assert_eq!(got, &npy(name), "{name}");
    }
    assert_eq!(out[4], tags);

    let g = load_graph(&dir.join("parse_single_v2.pb")).unwrap();
    let first = Tensor::string_scalar(records.as_strings().unwrap()[0].clone());
    let names = [
        "single_x",
        "single_label",
        "single_tags_indices",
        "single_tags_shape",
        "single_tags_values",
    ];
    let out = Session::new(&g)
        .run_by_name(&[("one", first)], &names, &[])
        .unwrap();
    for (name, got) in names[..4].iter().zip(&out) {
        assert_eq!(got, &npy(name), "{name}");
    }
    assert_eq!(out[4], tags);
}

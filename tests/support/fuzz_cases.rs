//! What the fuzzing of the decoders runs on one input: shared by the seeded mutation loops
//! of `tests/fuzz_parsers.rs` and the `cargo fuzz` targets in `fuzz/` (included by path).
//! Each case answers `Ok` or `Err` however malformed its input; a panic is a finding.

use rustflow::ops::parsing::DenseFeature;
use rustflow::proto::{import_graph_def, parse_graph_def};
use rustflow::serving::{codec, examples, numbers};
use rustflow::tensor::npy::from_npy_bytes;
use rustflow::{DType, Graph, Output, PartialShape, Tensor};
use std::path::Path;

/// A REST predict, classify or regress body: parsed, and every value typed by each dtype
/// and fitted to a `[-1, 1]` signature shape, as the server does.
pub fn rest_json(body: &[u8]) {
    if let Ok(req) = codec::parse_predict(body) {
        let values: Vec<&serde_json::Value> = match &req.inputs {
            codec::Inputs::Single(v) => vec![v],
            codec::Inputs::Named(m) => m.values().collect(),
        };
        for v in values {
            for dtype in DType::ALL.into_iter().chain([DType::Resource]) {
                if let Ok(t) = codec::json_to_tensor(v, dtype, "x") {
                    let shape = PartialShape::from([None, Some(1)]);
                    let _ = codec::fit_to_shape(t, &shape);
                }
            }
        }
    }
    let _ = examples::parse_examples_request(body);
    // The plain-numbers fast path reads only bodies the JSON parser reads, to the same
    // shape and (within JSON's default float parsing) the same numbers. One exception:
    // serde_json's default reader is not correctly rounded, and at the top of the range
    // it refuses as out of range some numbers that round to f64::MAX, which the fast path
    // reads (as `str::parse` does; found by `cargo fuzz`).
    if let Some(n) = numbers::parse::<f64>(body) {
        let req = match codec::parse_predict(body) {
            Ok(req) => req,
            Err(e) if e.message.contains("number out of range") => {
                let near_max = |x: &f64| x.abs() >= f64::MAX * (1.0 - 1e-15);
                assert!(n.values.iter().any(near_max), "{e:?}: {:?}", n.values);
                return;
            }
            Err(e) => panic!("read by the fast path only: {e:?}"),
        };
        let codec::Inputs::Single(v) = &req.inputs else {
            panic!("the fast path read named inputs")
        };
        let t = codec::json_to_tensor(v, DType::Float64, "x").expect("a float tensor");
        assert_eq!(t.shape(), &n.shape[..]);
        // serde_json's reader is within 1e-15 of the number relatively for normal numbers;
        // a subnormal's spacing is absolute (4.9e-324), so there it is held to 1e-15 of
        // the smallest normal (a few spacings; found by `cargo fuzz`: 7.1199...e-310, one
        // spacing off, where the fast path reads as `str::parse` does).
        for (a, b) in t.as_slice::<f64>().unwrap().iter().zip(&n.values) {
            let tolerance = 1e-15 * a.abs().max(f64::MIN_POSITIVE);
            assert!((a - b).abs() <= tolerance, "{a} vs {b}");
        }
        // Read for an f32 input: the f64 reading rounded, bit for bit.
        let n32 = numbers::parse::<f32>(body).expect("read as f64, so as f32");
        assert_eq!(n32.shape, n.shape);
        for (a, b) in n.values.iter().zip(&n32.values) {
            assert_eq!((*a as f32).to_bits(), b.to_bits(), "{a} as f32 vs {b}");
        }
    }
}

/// `.npy` file bytes, decoded.
pub fn npy(bytes: &[u8]) {
    let _ = from_npy_bytes(bytes);
}

/// `GraphDef` bytes: decoded, then imported (ops, attrs, inputs checked).
pub fn graph_def(bytes: &[u8]) {
    if let Ok(gd) = parse_graph_def(bytes) {
        let _ = import_graph_def(&gd, None);
    }
}

/// A graph parsing `serialized` examples with ParseExample: dense float, int64 and string
/// features, a sparse int64 one; the graph, its input and the tensors to fetch.
pub fn parse_example_graph() -> (Graph, Output, Vec<Output>) {
    let mut g = Graph::new();
    let serialized = g.placeholder(DType::String, [None], "serialized").unwrap();
    let dense = [
        ("x", DType::Float32, vec![1], None),
        ("label", DType::Int64, vec![], Some(Tensor::scalar(-1i64))),
        (
            "name",
            DType::String,
            vec![1],
            Some(Tensor::from_strings(&[1], vec!["none"]).unwrap()),
        ),
    ]
    .map(|(key, dtype, shape, default)| DenseFeature {
        key: key.to_string(),
        dtype,
        shape,
        default,
    });
    let parsed = g
        .parse_example(serialized, &[("ids", DType::Int64)], &dense)
        .unwrap();
    let mut fetches = parsed.dense.clone();
    for (i, v, s) in &parsed.sparse {
        fetches.extend([*i, *v, *s]);
    }
    (g, serialized, fetches)
}

/// A copy of a directory tree (a SavedModel, for its files to be overwritten).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

//! Fuzz-style robustness of the parsers a server exposes: seeded random mutations of valid
//! inputs (bit flips, byte overwrites, insertions, deletions, truncations, spliced
//! copies, interesting integers) go through the REST JSON decoders, `tf.Example` bytes into
//! `ParseExample` / `ParseExampleV2`, `.npy` decoding, and `GraphDef` / SavedModel loading.
//! Each must answer `Ok` or `Err`: a panic fails the test (with the seed and the input),
//! and the test binary's allocator refuses any single allocation over 256 MiB, so a length
//! field that would make a parser allocate without bound aborts the test instead of
//! passing silently (fallible allocations see an ordinary error).
//!
//! Fast (a few seconds in all) and deterministic; no nightly toolchain. The `cargo fuzz`
//! targets of issue 18 would run the same decoders for longer.

#[path = "support/fuzz_cases.rs"]
mod fuzz_cases;

use rustflow::proto::{graph_to_bytes, import_graph_def, parse_graph_def};
use rustflow::serving::{codec, examples};
use rustflow::tensor::npy::{from_npy_bytes, to_npy_bytes};
use rustflow::{DType, Graph, Session, SessionOptions, Tensor};
use std::alloc::{GlobalAlloc, Layout, System};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

/// The most bytes one allocation of this test binary may ask for.
const MAX_ALLOCATION: usize = 256 << 20;

/// The system allocator, refusing single allocations over [`MAX_ALLOCATION`].
struct Bounded;

// SAFETY: forwards to `System`, only refusing (null) requests it would not make.
unsafe impl GlobalAlloc for Bounded {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() > MAX_ALLOCATION {
            return std::ptr::null_mut();
        }
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() > MAX_ALLOCATION {
            return std::ptr::null_mut();
        }
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > MAX_ALLOCATION {
            return std::ptr::null_mut();
        }
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: Bounded = Bounded;

/// xorshift64*: a small seeded generator, so every run tries the same inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Integers that often sit on a parser's edge cases.
const INTERESTING: [u64; 10] = [
    0,
    1,
    0x7f,
    0x80,
    0xff,
    0xffff,
    0x7fff_ffff,
    0xffff_ffff,
    1 << 40,
    u64::MAX,
];

/// One to four random edits of `input` (with a piece of `other` spliced in sometimes).
fn mutate(rng: &mut Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(v.len() + 1);
        match rng.below(8) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = rng.next() as u8;
            }
            2 => v.insert(at, rng.next() as u8),
            3 if at < v.len() => {
                let n = 1 + rng.below((v.len() - at).min(16));
                v.drain(at..at + n);
            }
            4 => v.truncate(at),
            5 if !other.is_empty() => {
                let from = rng.below(other.len());
                let n = 1 + rng.below((other.len() - from).min(64));
                v.splice(at..at, other[from..from + n].iter().copied());
            }
            6 => {
                let x = INTERESTING[rng.below(INTERESTING.len())];
                let width = [1, 2, 4, 8][rng.below(4)];
                let bytes = &x.to_le_bytes()[..width];
                let end = (at + width).min(v.len());
                v.splice(at..end, bytes.iter().copied());
            }
            _ if !v.is_empty() => {
                // A copy of one stretch elsewhere (repeated fields, nested lists).
                let from = rng.below(v.len());
                let n = 1 + rng.below((v.len() - from).min(32));
                let piece = v[from..from + n].to_vec();
                v.splice(at..at, piece);
            }
            _ => v.push(rng.next() as u8),
        }
    }
    v
}

/// Runs `check` on `iterations` mutations of the seeds (and on each seed unchanged); a
/// panic fails naming the iteration and the input.
fn fuzz(name: &str, seed: u64, seeds: &[Vec<u8>], iterations: usize, mut check: impl FnMut(&[u8])) {
    let mut rng = Rng(seed);
    for s in seeds {
        check(s);
    }
    for i in 0..iterations {
        let a = &seeds[rng.below(seeds.len())];
        let b = &seeds[rng.below(seeds.len())];
        let input = mutate(&mut rng, a, b);
        if catch_unwind(AssertUnwindSafe(|| check(&input))).is_err() {
            panic!(
                "{name}: iteration {i} (seed {seed}) panicked on {} bytes: {:?}",
                input.len(),
                String::from_utf8_lossy(&input)
            );
        }
    }
}

/// REST predict, classify and regress bodies, typed by every dtype as a signature would.
#[test]
fn rest_json_bodies_never_panic() {
    let seeds: Vec<Vec<u8>> = [
        r#"{"instances": [[1.0, 2.0], [3.0, 4.0]]}"#,
        r#"{"signature_name": "s", "instances": [{"x": [1, 2], "y": "a"}, {"x": [3, 4], "y": {"b64": "YWJj"}}]}"#,
        r#"{"inputs": {"x": [[1.5e3, -2], [true, false]], "t": ["a", "b"]}}"#,
        r#"{"inputs": [[[1], [2]], [[3], [4]]]}"#,
        r#"{"instances": [1, 2, 3], "signature_name": "serving_default"}"#,
        r#"{"examples": [{"x": 1.0, "s": "a", "b": {"b64": "AAE="}}, {"x": [1, 2, 3]}], "context": {"c": [1.5]}}"#,
        r#"{"signature_name": "regress_x_to_y", "examples": [{"x": [1e39, -0.0]}]}"#,
        // Found by `cargo fuzz run rest_json`: a number that rounds to f64::MAX, which
        // serde_json's reader refuses as out of range.
        r#"{"instances": [[19925474099, 1.7976931348623158e308]]}"#,
        // Found by `cargo fuzz run rest_json`: a subnormal that serde_json's reader reads
        // one spacing away from the nearest f64 (the fast path's reading).
        r#"{"instances": [[90,711992525407949.14079e-324]]}"#,
    ]
    .map(|s| s.as_bytes().to_vec())
    .to_vec();
    // The seeds are valid, so mutations reach past the first checks.
    for s in &seeds[..5] {
        codec::parse_predict(s).unwrap();
    }
    for s in &seeds[5..7] {
        examples::parse_examples_request(s).unwrap();
    }
    fuzz("REST JSON", 18, &seeds, 20_000, fuzz_cases::rest_json);
    // Deep nesting and a huge body are errors, not stack overflows.
    for depth in [200, 100_000] {
        let body = format!(
            r#"{{"instances": {}1{}}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        );
        assert!(
            codec::parse_predict(body.as_bytes()).is_err(),
            "depth {depth}"
        );
        assert!(examples::parse_examples_request(body.as_bytes()).is_err());
    }
}

/// Mutated `tf.Example` bytes fed, in batches of one to three, to ParseExample (a graph
/// of ours) and ParseExampleV2 (TensorFlow 2's half_plus_two, its `classify_x_to_y`).
#[test]
fn example_bytes_into_parse_example_never_panic() {
    use rustflow::data::ExampleBuilder;
    let (g, serialized, fetches) = fuzz_cases::parse_example_graph();
    let sess = Session::with_options(&g, SessionOptions::with_threads(1));
    let tf2 = rustflow::saved_model::load(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("graphs/tf_serving/saved_model_half_plus_two_tf2_cpu/00000123"),
        &["serve"],
        SessionOptions::with_threads(1),
    )
    .unwrap();
    let seeds: Vec<Vec<u8>> = vec![
        ExampleBuilder::new()
            .float("x", &[1.0])
            .int64("label", &[7])
            .bytes("name", &[b"seven"])
            .int64("ids", &[1, 2, 3])
            .to_bytes(),
        ExampleBuilder::new()
            .float("x", &[-0.5])
            .int64("ids", &[])
            .to_bytes(),
        ExampleBuilder::new()
            .float("x", &[3.0])
            .int64("label", &[i64::MIN])
            .bytes("name", &[b""])
            .to_bytes(),
    ];
    let run = |batch: Vec<Vec<u8>>| {
        let t = Tensor::from_strings(&[batch.len()], batch).unwrap();
        let v1 = sess.run(&[(serialized, t.clone())], &fetches, &[]);
        let v2 = tf2.run_signature("classify_x_to_y", &[("inputs", t)]);
        (v1, v2)
    };
    // The seeds parse (the graphs are right), so mutations reach deep into the parsers.
    let (v1, v2) = run(seeds.clone());
    v1.unwrap();
    assert_eq!(
        v2.unwrap()["scores"].as_slice::<f32>().unwrap(),
        [2.5, 1.75, 3.5]
    );
    let mut rng = Rng(7);
    fuzz("tf.Example", 1818, &seeds, 10_000, |bytes| {
        let mut batch = vec![bytes.to_vec()];
        for _ in 0..rng.below(3) {
            batch.push(seeds[0].clone());
        }
        let _ = run(batch);
    });
}

/// Mutated `.npy` files of each dtype and rank, and absurd headers.
#[test]
fn npy_bytes_never_panic() {
    let seeds: Vec<Vec<u8>> = [
        Tensor::new(&[2, 3], vec![1f32, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap(),
        Tensor::new(&[3], vec![1f64, -2.0, 0.5]).unwrap(),
        Tensor::new(&[2, 1, 2], vec![1i32, 2, 3, 4]).unwrap(),
        Tensor::scalar(9i64),
        Tensor::new(&[4], vec![0u8, 1, 254, 255]).unwrap(),
        Tensor::new(&[2], vec![true, false]).unwrap(),
        Tensor::zeros(DType::Float32, &[0, 5]),
    ]
    .iter()
    .map(to_npy_bytes)
    .collect();
    for s in &seeds {
        from_npy_bytes(s).unwrap();
    }
    fuzz(".npy", 93, &seeds, 20_000, fuzz_cases::npy);
    // A header promising 2^62 elements in a small file is an error.
    let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4), }";
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((header.len() as u16).to_le_bytes());
    bytes.extend(header.as_bytes());
    bytes.extend([0u8; 16]);
    assert!(from_npy_bytes(&bytes).is_err());
}

/// Mutated `GraphDef` bytes: decoded, then imported (ops, attrs, inputs checked).
#[test]
fn graph_def_bytes_never_panic() {
    let mut g = Graph::new();
    let x = g.placeholder(DType::Float32, [None, Some(3)], "x").unwrap();
    let w = g.constant(Tensor::full(&[3, 2], 0.5f32)).unwrap();
    let y = g.matmul(x, w).unwrap();
    let b = g.constant(Tensor::from([1f32, 2.0])).unwrap();
    let z = g.add(y, b).unwrap();
    let r = g.relu(z).unwrap();
    let dims = g.placeholder(DType::Int64, [None], "dims").unwrap();
    let one = g.constant(1f32).unwrap();
    let f = g.fill(dims, one).unwrap();
    let _ = g.reduce_sum(r, &[1], false).unwrap();
    let _ = f;
    let seeds = vec![graph_to_bytes(&g), graph_to_bytes(&Graph::new())];
    import_graph_def(&parse_graph_def(&seeds[0]).unwrap(), None).unwrap();
    fuzz("GraphDef", 3, &seeds, 10_000, fuzz_cases::graph_def);
}

/// Mutated `saved_model.pb` and `variables.index` of TensorFlow Serving's half_plus_two,
/// loaded (graph import, variable restore, init op) and, when that works, run.
#[test]
fn saved_model_bytes_never_panic() {
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("graphs/tf_serving/saved_model_half_plus_two_cpu/00000123");
    let dir: PathBuf =
        std::env::temp_dir().join(format!("rustflow-fuzz-sm-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    fuzz_cases::copy_dir(&source, &dir);
    let pb = std::fs::read(source.join("saved_model.pb")).unwrap();
    let index = std::fs::read(source.join("variables/variables.index")).unwrap();
    let x = Tensor::new(&[2, 1], vec![1f32, 2.0]).unwrap();
    let load = |pb: &[u8], index: &[u8]| {
        std::fs::write(dir.join("saved_model.pb"), pb).unwrap();
        std::fs::write(dir.join("variables/variables.index"), index).unwrap();
        let options = SessionOptions {
            max_memory_bytes: 64 << 20,
            ..SessionOptions::with_threads(1)
        };
        rustflow::saved_model::load(&dir, &["serve"], options)
            .and_then(|m| m.run_signature("serving_default", &[("x", x.clone())]))
            .is_ok()
    };
    assert!(load(&pb, &index), "the unchanged model loads and runs");
    fuzz(
        "saved_model.pb",
        11,
        std::slice::from_ref(&pb),
        250,
        |bytes| {
            load(bytes, &index);
        },
    );
    fuzz(
        "variables.index",
        12,
        std::slice::from_ref(&index),
        250,
        |bytes| {
            load(&pb, bytes);
        },
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

//! The `rustflow run` command, driven as a real process.

use rustflow::proto::write_graph;
use rustflow::tensor::npy::{read_npy, write_npy};
use rustflow::{DType, Graph, Tensor};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn tmp(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rustflow-runner-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn model(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("graphs/tf_serving")
        .join(name)
        .join("00000123")
        .display()
        .to_string()
}

fn rustflow(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rustflow"))
        .args(args)
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Fails unless the run failed with one line on stderr containing `want`.
fn assert_fails(args: &[&str], want: &str) {
    let o = rustflow(args);
    let e = stderr(&o);
    assert!(!o.status.success(), "{args:?} succeeded");
    assert_eq!(e.lines().count(), 1, "{args:?}: {e}");
    assert!(e.contains(want), "{args:?}: {e} (want {want})");
}

#[test]
fn saved_model_signature_printed_and_written() {
    let dir = tmp("sm");
    let x = dir.join("x.npy");
    write_npy(&x, &Tensor::new(&[3, 1], vec![1.0f32, 2.0, 5.0]).unwrap()).unwrap();
    let input = format!("x={}", x.display());
    let m = model("saved_model_half_plus_two_cpu");
    let o = rustflow(&["run", &m, "--input", &input]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.starts_with("y: ") && out.contains("2.5") && out.contains("4.5"),
        "{out}"
    );

    let outdir = dir.join("out");
    let outdir_s = outdir.display().to_string();
    let o = rustflow(&["run", &m, "-i", &input, "--outdir", &outdir_s]);
    assert!(o.status.success(), "{}", stderr(&o));
    let y = read_npy(outdir.join("y.npy")).unwrap();
    assert_eq!(y.shape(), &[3, 1]);
    assert_eq!(y.as_slice::<f32>().unwrap(), &[2.5, 3.0, 4.5]);

    // Another signature, chosen outputs.
    let o = rustflow(&[
        "run",
        &m,
        "--signature",
        "regress_x2_to_y3",
        "--input",
        &format!("inputs={}", x.display()),
        "--output",
        "outputs",
        "--outdir",
        &outdir_s,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let y3 = read_npy(outdir.join("outputs.npy")).unwrap();
    assert_eq!(y3.as_slice::<f32>().unwrap(), &[3.5, 4.0, 5.5]);

    // A signature without inputs.
    let o = rustflow(&["run", &model("saved_model_counter"), "-s", "get_counter"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("output: "));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn graph_def_by_tensor_names() {
    let dir = tmp("gd");
    let mut g = Graph::new();
    let x = g.placeholder(DType::Float32, [None, Some(2)], "x").unwrap();
    let w = g
        .constant(Tensor::from([[1.0f32, -1.0], [0.5, 2.0]]))
        .unwrap();
    let logits = g.matmul(x, w).unwrap();
    let probs = g.softmax(logits).unwrap();
    let probs_name = g.output_name(probs);
    let pb = dir.join("model.pb");
    write_graph(&g, &pb).unwrap();
    let xs = Tensor::from([[1.0f32, 2.0], [0.0, 0.0]]);
    let xf = dir.join("x.npy");
    write_npy(&xf, &xs).unwrap();
    let outdir = dir.join("out");
    let o = rustflow(&[
        "run",
        &pb.display().to_string(),
        "--input",
        &format!("x:0={}", xf.display()),
        "--output",
        &probs_name,
        "--outdir",
        &outdir.display().to_string(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let file = outdir.join(format!("{}.npy", probs_name.replace(['/', ':'], "_")));
    let p = read_npy(&file).unwrap();
    assert_eq!(p.shape(), &[2, 2]);
    // softmax([2, 3]) = [e^-1, 1] / (1 + e^-1); softmax([0, 0]) = [0.5, 0.5]
    let want = [0.268_941_43f32, 0.731_058_6, 0.5, 0.5];
    for (a, b) in p.as_slice::<f32>().unwrap().iter().zip(want) {
        assert!((a - b).abs() < 1e-6, "{a} vs {b}");
    }
    // A GraphDef needs --output and takes no --signature.
    let pbs = pb.display().to_string();
    let input = format!("x={}", xf.display());
    let o = rustflow(&["run", &pbs, "--input", &input]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--output"));
    assert_fails(
        &["run", &pbs, "-i", &input, "-o", "nope:0"],
        "no node named 'nope'",
    );
    assert_fails(&["run", &pbs, "-i", "zz=1.npy", "-o", "x"], "1.npy");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn errors_are_one_line_and_fail() {
    let dir = tmp("err");
    let good = dir.join("x.npy");
    write_npy(
        &good,
        &Tensor::new(&[3, 1], vec![1.0f32, 2.0, 5.0]).unwrap(),
    )
    .unwrap();
    let ints = dir.join("ints.npy");
    write_npy(&ints, &Tensor::new(&[3, 1], vec![1i32, 2, 5]).unwrap()).unwrap();
    let flat = dir.join("flat.npy");
    write_npy(&flat, &Tensor::vector(vec![1.0f32, 2.0])).unwrap();
    let garbage = dir.join("garbage.npy");
    std::fs::write(&garbage, b"not numpy").unwrap();
    let m = model("saved_model_half_plus_two_cpu");
    let with = |p: &Path| format!("x={}", p.display());
    assert_fails(
        &["run", &m, "--input", &with(&dir.join("missing.npy"))],
        "missing.npy",
    );
    assert_fails(&["run", &m, "--input", &with(&garbage)], "garbage.npy");
    assert_fails(
        &["run", &m, "--input", &with(&ints)],
        "must be float32, got int32",
    );
    assert_fails(
        &["run", &m, "--input", &with(&flat)],
        "must have shape [?,1]",
    );
    assert_fails(
        &["run", &m, "--input", &format!("z={}", good.display())],
        "has no input 'z'",
    );
    assert_fails(
        &["run", &m, "-i", &with(&good), "-o", "w"],
        "has no output 'w'",
    );
    assert_fails(
        &["run", &m, "-i", &with(&good), "-s", "nope"],
        "no signature 'nope'",
    );
    assert_fails(&["run", &m], "needs input 'x'");
    assert_fails(&["run", "/no/such/model"], "no such SavedModel directory");
    let o = rustflow(&["run"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("usage: rustflow run <MODEL>"));
    // A saved_model.pb of 0 bytes, a GraphDef that is not one.
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    std::fs::write(empty.join("saved_model.pb"), b"").unwrap();
    assert_fails(
        &["run", &empty.display().to_string()],
        "saved_model.pb holds no MetaGraphDef (is the file empty or truncated?)",
    );
    let bad_pb = dir.join("bad.pb");
    std::fs::write(&bad_pb, b"\xff\xff\xff").unwrap();
    let o = rustflow(&["run", &bad_pb.display().to_string(), "-o", "y"]);
    let e = stderr(&o);
    assert_eq!(e.matches("parse error").count(), 1, "{e}");
    assert!(e.contains("bad.pb: not a GraphDef"), "{e}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn an_absurd_allocation_fails_with_one_line_and_max_memory_bounds_tensors() {
    let dir = tmp("oom");
    let mut g = Graph::new();
    let dims = g.placeholder(DType::Int64, [None], "dims").unwrap();
    let one = g.constant(1f32).unwrap();
    g.fill(dims, one).unwrap();
    let pb = dir.join("fill.pb").display().to_string();
    write_graph(&g, Path::new(&pb)).unwrap();
    let dims_file = |tag: &str, d: &[i64]| {
        let f = dir.join(format!("{tag}.npy"));
        write_npy(&f, &Tensor::new(&[d.len()], d.to_vec()).unwrap()).unwrap();
        format!("dims={}", f.display())
    };
    // 4 TiB of float32 (more than the machine has): an error, not an abort.
    let huge = dims_file("huge", &[1 << 40]);
    let o = rustflow(&["run", &pb, "-i", &huge, "-o", "Fill"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = stderr(&o);
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(
        e.contains("resource exhausted")
            && e.contains("'Fill'")
            && e.contains("4398046511104 bytes"),
        "{e}"
    );
    // --max-memory: 1000 float32 are 4000 bytes, over 1K; 200 (800 bytes) are not.
    let thousand = dims_file("thousand", &[1000]);
    assert_fails(
        &[
            "run",
            &pb,
            "-i",
            &thousand,
            "-o",
            "Fill",
            "--max-memory",
            "1K",
        ],
        "limit of 1024 bytes",
    );
    let small = dims_file("small", &[200]);
    let o = rustflow(&["run", &pb, "-i", &small, "-o", "Fill", "--max-memory", "1K"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_fails(
        &[
            "run",
            &pb,
            "-i",
            &small,
            "-o",
            "Fill",
            "--max-memory",
            "lots",
        ],
        "--max-memory",
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn help_and_version() {
    let o = rustflow(&["--help"]);
    assert!(o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    for cmd in ["run", "show", "bench", "serve"] {
        assert!(out.contains(cmd), "{out}");
    }
    let o = rustflow(&["help", "run"]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("--outdir <DIR>"));
    let o = rustflow(&["--version"]);
    assert!(o.status.success());
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        format!("rustflow {}", env!("CARGO_PKG_VERSION"))
    );
    let o = rustflow(&["frobnicate"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
}

#[test]
fn show_as_saved_model_cli() {
    let m = model("saved_model_half_plus_two_cpu");
    let out = |args: &[&str]| {
        let o = rustflow(args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    assert_eq!(
        out(&["show", &m]),
        "The given SavedModel contains the following tag-sets:\n'serve'\n"
    );
    let keys = out(&["show", &m, "--tag-set", "serve"]);
    assert!(keys.starts_with(
        "The given SavedModel MetaGraphDef contains SignatureDefs with the following keys:\n"
    ));
    for k in ["classify_x_to_y", "regress_x2_to_y3", "serving_default"] {
        assert!(
            keys.contains(&format!("SignatureDef key: \"{k}\"\n")),
            "{keys}"
        );
    }
    assert_eq!(
        out(&[
            "show",
            &m,
            "--tag_set",
            "serve",
            "--signature_def",
            "serving_default"
        ]),
        "The given SavedModel SignatureDef contains the following input(s):
  inputs['x'] tensor_info:
      dtype: DT_FLOAT
      shape: (-1, 1)
      name: x:0
The given SavedModel SignatureDef contains the following output(s):
  outputs['y'] tensor_info:
      dtype: DT_FLOAT
      shape: (-1, 1)
      name: y:0
Method name is: tensorflow/serving/predict
"
    );
    let all = out(&["show", &m, "--all"]);
    assert!(
        all.contains("MetaGraphDef with tag-set: 'serve' contains the following SignatureDefs:")
    );
    assert!(all.contains("signature_def['classify_x_to_y']:\n  The given SavedModel SignatureDef"));
    assert!(all.contains("      dtype: DT_STRING"));
    let j: serde_json::Value =
        serde_json::from_str(&out(&["show", &m, "--all", "--json"])).unwrap();
    let sig = &j["meta_graphs"][0]["signature_def"]["serving_default"];
    assert_eq!(sig["inputs"]["x"]["tensor_shape"]["dim"][0]["size"], "-1");
    assert_eq!(j["meta_graphs"][0]["tags"][0], "serve");
    assert_fails(
        &["show", &m, "--tag-set", "gpu"],
        "no MetaGraphDef with tag-set 'gpu'",
    );
    assert_fails(
        &["show", &m, "--tag-set", "serve", "--signature_def", "zz"],
        "no signature 'zz'",
    );
    assert_fails(&["show", "/no/such"], "no such SavedModel directory");
}

#[test]
fn show_graph_def_summary() {
    let dir = tmp("showgd");
    let mut g = Graph::new();
    let x = g.placeholder(DType::Float32, [None, Some(2)], "x").unwrap();
    let w = g
        .constant(Tensor::from([[1.0f32, -1.0], [0.5, 2.0]]))
        .unwrap();
    let z = g.matmul(x, w).unwrap();
    let p = g.softmax(z).unwrap();
    let pb = dir.join("model.pb");
    write_graph(&g, &pb).unwrap();
    let o = rustflow(&["show", &pb.display().to_string(), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["nodes"], 4);
    assert_eq!(j["placeholders"][0]["name"], "x");
    assert_eq!(j["placeholders"][0]["dtype"], "DT_FLOAT");
    assert_eq!(j["placeholders"][0]["shape"], "(-1, 2)");
    assert_eq!(j["op_counts"]["MatMul"], 1);
    let outs = j["candidate_outputs"].as_array().unwrap();
    assert_eq!(outs.len(), 1);
    assert_eq!(outs[0]["name"], g.node(p.node).name());
    let o = rustflow(&["show", &pb.display().to_string()]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("  x:0 dtype: DT_FLOAT shape: (-1, 2)"),
        "{text}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn bench_reports_latency_throughput_and_memory() {
    let m = model("saved_model_half_plus_two_cpu");
    let o = rustflow(&[
        "bench", &m, "--runs", "50", "--warmup", "5", "--batch", "4", "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["runs"], 50);
    assert_eq!(j["batch"], 4);
    assert_eq!(j["inputs"]["x"]["shape"], serde_json::json!([4, 1]));
    let l = &j["latency_us"];
    let v = |k: &str| l[k].as_f64().unwrap();
    assert!(v("min") > 0.0 && v("min") <= v("median") && v("median") <= v("p90"));
    assert!(v("p90") <= v("p99") && v("p99") <= v("max"));
    let runs = j["runs_per_second"].as_f64().unwrap();
    assert!((j["samples_per_second"].as_f64().unwrap() - 4.0 * runs).abs() < 1e-6 * runs);
    assert!(j["peak_memory_bytes"].as_u64().unwrap() > 1 << 20);

    let o = rustflow(&["bench", &m, "--runs", "5", "-i", "x=2,1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("input x: float32 [2, 1]") && text.contains("latency (us): min "),
        "{text}"
    );
    assert_fails(&["bench", &m, "-i", "x=2,2"], "must have shape [?,1]");
    assert_fails(&["bench", &m, "-i", "q=2,1"], "has no input 'q'");
    assert_fails(&["bench", &m, "--runs", "0"], "--runs");
    // --max-memory bounds the live tensors of a run: a batch of 4096 makes 16 KiB
    // intermediates, over 8K; within 1M it runs.
    let batch = ["--batch", "4096", "--runs", "3", "--warmup", "0"];
    let tight = [&["bench", &m, "--max-memory", "8K"][..], &batch[..]].concat();
    assert_fails(&tight, "limit of 8192 bytes");
    let o = rustflow(&[&["bench", &m, "--max-memory", "1M"][..], &batch[..]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
}

/// The main job's path: a Keras model saved with `model.save` runs with the runner
/// through `serving_default` (input named after the input layer, output `output_0`) and
/// gives what `predict` gives.
#[test]
fn keras_saved_model_runs_with_the_runner() {
    use rustflow::keras::layers::{Dense, Input};
    use rustflow::keras::Sequential;
    let dir = tmp("keras");
    let mut model = Sequential::new(vec![
        Input::new(&[4]).into(),
        Dense::new(8).activation("relu").into(),
        Dense::new(3).activation("softmax").into(),
    ])
    .unwrap();
    model
        .compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
        .unwrap();
    let x = Tensor::new(&[2, 4], vec![0.1f32, 0.2, 0.3, 0.4, 1.0, -1.0, 0.5, 0.0]).unwrap();
    let want = model.predict(&x).unwrap();
    let saved = dir.join("model");
    model.save(&saved).unwrap();
    let xf = dir.join("x.npy");
    write_npy(&xf, &x).unwrap();
    let outdir = dir.join("out");
    let o = rustflow(&[
        "run",
        &saved.display().to_string(),
        "--input",
        &format!("input_layer={}", xf.display()),
        "--outdir",
        &outdir.display().to_string(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let got = read_npy(outdir.join("output_0.npy")).unwrap();
    assert_eq!(got.shape(), &[2, 3]);
    assert_eq!(got.to_f64_vec(), want.to_f64_vec());
    std::fs::remove_dir_all(dir).unwrap();
}

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
    assert!(stderr(&o).contains("usage: rustflow run MODEL"));
    std::fs::remove_dir_all(dir).unwrap();
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

//! TensorFlow's own loader (`tf.compat.v1.saved_model.loader.load`) restores what
//! `rustflow::saved_model::save` writes, and computes the same outputs. Runs
//! `graphs/tf_load_saved_model.py`; skipped (with a message) where Python cannot import
//! TensorFlow.

use rustflow::saved_model::{save, Signature};
use rustflow::tensor::npy::write_npy;
use rustflow::{DType, Graph, Session, SessionOptions, Tensor};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

fn tensorflow_available() -> bool {
    Command::new("python3")
        .args(["-c", "import tensorflow"])
        .env("TF_CPP_MIN_LOG_LEVEL", "3")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn tensorflow_restores_a_rustflow_saved_model() {
    if !tensorflow_available() {
        eprintln!("skipped: python3 cannot import tensorflow");
        return;
    }
    let root = std::env::temp_dir().join(format!("rustflow-tf-compat-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();

    // probs = softmax(relu(x·w + b)), with w and b trained a little so they differ from
    // their initial values (the checkpoint, not the initializer, must be what TF uses).
    let mut g = Graph::new();
    let x = g.placeholder(DType::Float32, [None, Some(3)], "x").unwrap();
    let w0 = g
        .constant(Tensor::from([[0.1f32, -0.2], [0.3, 0.4], [-0.5, 0.6]]))
        .unwrap();
    let w = g.variable(w0, "dense/kernel").unwrap();
    let b0 = g.constant(Tensor::vector(vec![0.0f32, 0.0])).unwrap();
    let b = g.variable(b0, "dense/bias").unwrap();
    let h = g.matmul(x, w.read).unwrap();
    let h = g.bias_add(h, b.read).unwrap();
    let h = g.relu(h).unwrap();
    let probs = g.softmax(h).unwrap();
    let step = g.constant(Tensor::vector(vec![0.25f32, -0.5])).unwrap();
    let bump = g.assign_add(b.var, step).unwrap();
    let init = g.global_variables_initializer().unwrap();
    let sess = Session::with_options(&g, SessionOptions::with_threads(1));
    sess.run(&[], &[], &[init]).unwrap();
    sess.run(&[], &[bump], &[]).unwrap();

    let input = Tensor::from([[1.0f32, 2.0, 3.0], [-1.0, 0.5, 2.0]]);
    let want = sess.run(&[(x, input.clone())], &[probs], &[]).unwrap();
    let mut sigs = BTreeMap::new();
    sigs.insert(
        "serving_default".to_string(),
        Signature::predict(&g, &[("x", x)], &[("probs", probs)]),
    );
    let dir = root.join("model");
    save(&sess, &g, &dir, &["serve"], &sigs).unwrap();
    let input_path = root.join("x.npy");
    write_npy(&input_path, &input).unwrap();

    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("graphs/tf_load_saved_model.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(&dir)
        .arg("serving_default")
        .arg(format!("x={}", input_path.display()))
        .env("TF_CPP_MIN_LOG_LEVEL", "3")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "TensorFlow could not load the model:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout.lines().last().unwrap_or_default();
    // {"probs": {"shape": [2, 2], "values": [...]}}
    let values: Vec<f64> = line
        .split("\"values\": [")
        .nth(1)
        .and_then(|s| s.split(']').next())
        .unwrap_or_default()
        .split(',')
        .map(|v| v.trim().parse::<f64>().unwrap())
        .collect();
    assert!(line.contains("\"shape\": [2, 2]"), "{line}");
    let want = want[0].to_f64_vec();
    assert_eq!(values.len(), want.len(), "{line}");
    for (a, b) in values.iter().zip(&want) {
        assert!(
            (a - b).abs() <= 1e-6 * b.abs().max(1.0),
            "{line} vs {want:?}"
        );
    }
    std::fs::remove_dir_all(&root).unwrap();
}

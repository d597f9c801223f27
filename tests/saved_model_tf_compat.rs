//! TensorFlow's own loaders restore what rustflow saves and compute the same outputs:
//! `tf.compat.v1.saved_model.loader.load` what `rustflow::saved_model::save` writes, and
//! `tf.saved_model.load` a Keras model fine-tuned in rustflow and written back with
//! `LoadedModel::save_tf2`. Runs
//! `graphs/tf_load_saved_model.py`; skipped (with a message) where Python cannot import
//! TensorFlow.

use rustflow::saved_model::{save, Signature};
use rustflow::tensor::npy::write_npy;
use rustflow::{DType, Graph, Session, SessionOptions, Tensor};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "support/tf2_finetune.rs"]
mod tf2_finetune;
use tf2_finetune::{fixture, FineTune};

fn tensorflow_available() -> bool {
    Command::new("python3")
        .args(["-c", "import tensorflow"])
        .env("TF_CPP_MIN_LOG_LEVEL", "3")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs `graphs/tf_load_saved_model.py` (with `--tf2`: `tf.saved_model.load`) on the
/// model in `dir`, signature serving_default, with one `key=file.npy` input; returns its
/// JSON line.
fn tensorflow_run(dir: &Path, tf2: bool, input: &str) -> String {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("graphs/tf_load_saved_model.py");
    let mut cmd = Command::new("python3");
    cmd.arg(script);
    if tf2 {
        cmd.arg("--tf2");
    }
    let out = cmd
        .arg(dir)
        .arg("serving_default")
        .arg(input)
        .env("TF_CPP_MIN_LOG_LEVEL", "3")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "TensorFlow could not load the model:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout.lines().last().unwrap_or_default().to_string()
}

/// The values of the first output of a line `{"key": {"shape": [...], "values": [...]}}`.
fn first_values(line: &str) -> Vec<f64> {
    line.split("\"values\": [")
        .nth(1)
        .and_then(|s| s.split(']').next())
        .unwrap_or_default()
        .split(',')
        .map(|v| v.trim().parse::<f64>().unwrap())
        .collect()
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

    let line = tensorflow_run(&dir, false, &format!("x={}", input_path.display()));
    let values = first_values(&line);
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

/// A Keras LSTM (a `While` loop over TensorLists) loaded from its TensorFlow 2 SavedModel,
/// fine-tuned for two SGD steps in rustflow and saved with `save_tf2`: TensorFlow loads it
/// and its serving_default computes what the fine-tuned rustflow session does (not what
/// the original model did).
#[test]
fn tensorflow_loads_a_keras_lstm_fine_tuned_by_rustflow() {
    if !tensorflow_available() {
        eprintln!("skipped: python3 cannot import tensorflow");
        return;
    }
    let mut t = FineTune::new("lstm");
    let before = t.output();
    t.steps(2);
    let want = t.output();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("model");
    t.model.save_tf2(&dir).unwrap();
    let sig = t.model.signature("serving_default").unwrap();
    let key = sig.inputs.keys().next().unwrap();
    let input = fixture("lstm").join("input.npy");
    let line = tensorflow_run(&dir, true, &format!("{key}={}", input.display()));
    let values = first_values(&line);
    let want = want.to_f64_vec();
    assert_eq!(values.len(), want.len(), "{line}");
    let moved = before
        .to_f64_vec()
        .iter()
        .zip(&want)
        .any(|(a, b)| (a - b).abs() > 1e-3);
    assert!(moved, "the fine-tuning changed nothing");
    for (a, b) in values.iter().zip(&want) {
        assert!(
            (a - b).abs() <= 1e-5 * b.abs().max(1.0),
            "{line} vs {want:?}"
        );
    }
}

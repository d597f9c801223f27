//! Reading the fixtures real Keras wrote (`{"shape": [...], "data": [...]}` arrays) and
//! comparing against them, and one fit epoch as the fixture scripts run it; shared by the
//! Keras fixture tests (each uses part of it).
#![allow(dead_code)]

use rustflow::keras::optimizers::Optimizer;
use rustflow::keras::{FitOptions, History, Sequential};
use rustflow::Tensor;
use serde_json::Value;

/// A float32 tensor from a fixture array.
pub fn tensor(v: &Value) -> Tensor {
    let shape: Vec<usize> = v["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect();
    let data: Vec<f32> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_f64().unwrap() as f32)
        .collect();
    Tensor::new(&shape, data).unwrap()
}

/// The tensors of a list of fixture arrays.
pub fn tensors(v: &Value) -> Vec<Tensor> {
    v.as_array().unwrap().iter().map(tensor).collect()
}

/// Each value within `tol` relative to Keras's (absolute below 1).
pub fn assert_close(what: &str, got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * (1.0 + w.abs()),
            "{what}[{i}]: got {g}, Keras {w}"
        );
    }
}

/// One epoch in batches of 8, in order, quietly: how the fixture scripts call `fit`.
pub fn one_epoch() -> FitOptions<'static> {
    FitOptions::new()
        .epochs(1)
        .batch_size(8)
        .shuffle(false)
        .verbose(0)
}

/// Each weight within `tol` of Keras's list `want`.
pub fn assert_weights(what: &str, got: &[Tensor], want: &Value, tol: f64) {
    let want = tensors(want);
    assert_eq!(got.len(), want.len(), "{what}: number of weights");
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        let what = format!("{what} weight {i}");
        assert_close(&what, &g.to_f64_vec(), &w.to_f64_vec(), tol);
    }
}

/// From the fixture's `initial` weights, one epoch of `fit` on its `x` and `y` with
/// `optimizer` and sparse categorical cross-entropy gives Keras's `weights` (1e-4) and
/// `loss` (1e-5), and moves the weights.
pub fn fit_matches_keras(
    what: &str,
    model: &mut Sequential,
    case: &Value,
    optimizer: Optimizer,
) -> History {
    model.set_weights(&tensors(&case["initial"])).unwrap();
    model
        .compile(optimizer, "sparse_categorical_crossentropy", ["accuracy"])
        .unwrap();
    let (x, y) = (tensor(&case["x"]), tensor(&case["y"]));
    let h = model.fit(&x, &y, one_epoch()).unwrap();
    let got = model.get_weights().unwrap();
    assert_weights(what, &got, &case["weights"], 1e-4);
    let loss = case["loss"].as_f64().unwrap();
    assert_close(
        &format!("{what} loss"),
        &h.get("loss").unwrap()[..1],
        &[loss],
        1e-5,
    );
    // Training moved the weights (the comparison above can fail).
    let initial = tensors(&case["initial"]);
    assert!(
        got.iter()
            .zip(&initial)
            .any(|(g, i)| g.to_f64_vec() != i.to_f64_vec()),
        "{what}: the weights did not move"
    );
    h
}

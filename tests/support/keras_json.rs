//! Reading the fixtures real Keras wrote (`{"shape": [...], "data": [...]}` arrays) and
//! comparing against them; shared by the Keras fixture tests.

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

//! SavedModels written by real TensorFlow 1.x (TF Serving's test data, `graphs/tf_serving`).

use rustflow::data::ExampleBuilder;
use rustflow::saved_model::{load, LoadedModel};
use rustflow::{SessionOptions, Tensor};
use std::path::PathBuf;

fn model(name: &str) -> LoadedModel {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("graphs/tf_serving")
        .join(name)
        .join("00000123");
    load(&dir, &["serve"], SessionOptions::with_threads(2)).unwrap()
}

fn predict(m: &LoadedModel, key: &str, input: &str, x: Tensor) -> Tensor {
    let mut out = m.run_signature(key, &[(input, x)]).unwrap();
    out.pop_first().unwrap().1
}

#[test]
fn half_plus_two_tf_1_14_snappy_index() {
    let m = model("saved_model_half_plus_two_cpu");
    let x = Tensor::new(&[3, 1], vec![1.0f32, 2.0, 5.0]).unwrap();
    let y = predict(&m, "serving_default", "x", x.clone());
    assert_eq!(y.shape(), &[3, 1]);
    assert_eq!(y.as_slice::<f32>().unwrap(), &[2.5, 3.0, 4.5]);
    // regress_x2_to_y3: y3 = a2·x2 + c2 with the checkpoint's a2 = 0.5, c2 = 3
    // (tf.train.load_checkpoint(".../variables/variables").get_tensor("c2")).
    let y3 = predict(&m, "regress_x2_to_y3", "inputs", x);
    assert_eq!(y3.as_slice::<f32>().unwrap(), &[3.5, 4.0, 5.5]);
    // The main op assigns the asset path to a string variable: it runs like the rest.
    assert!(m.skipped_init.is_empty(), "{:?}", m.skipped_init);
    // Signatures fed with serialized tf.Examples: TensorFlow's ParseExample reads x, as
    // TensorFlow Serving's classify and regress APIs feed them.
    let examples: Vec<Vec<u8>> = [1.0f32, 2.0, 5.0]
        .iter()
        .map(|&x| ExampleBuilder::new().float("x", &[x]).to_bytes())
        .collect();
    let examples = Tensor::from_strings(&[3], examples).unwrap();
    let y = predict(&m, "regress_x_to_y", "inputs", examples.clone());
    assert_eq!(y.as_slice::<f32>().unwrap(), &[2.5, 3.0, 4.5]);
    let scores = predict(&m, "classify_x_to_y", "inputs", examples);
    assert_eq!(scores.as_slice::<f32>().unwrap(), &[2.5, 3.0, 4.5]);
    // An Example without x: the graph's ParseExample has no default, so an error naming it.
    let empty = Tensor::from_strings(&[1], vec![ExampleBuilder::new().to_bytes()]).unwrap();
    let e = m
        .run_signature("regress_x_to_y", &[("inputs", empty)])
        .unwrap_err()
        .to_string();
    assert!(e.contains("ParseExample") && e.contains("'x'"), "{e}");
}

#[test]
fn half_plus_three_tf_1_0() {
    let m = model("saved_model_half_plus_three");
    let x = Tensor::new(&[3, 1], vec![1.0f32, 2.0, 5.0]).unwrap();
    let y = predict(&m, "serving_default", "x", x);
    assert_eq!(y.as_slice::<f32>().unwrap(), &[3.5, 4.0, 5.5]);
}

#[test]
fn counter_keeps_state_across_calls() {
    let m = model("saved_model_counter");
    let get = |m: &LoadedModel, key: &str| -> f32 {
        let out = m.run_signature(key, &[]).unwrap();
        out["output"].scalar_value::<f32>().unwrap()
    };
    assert_eq!(get(&m, "get_counter"), 0.0);
    assert_eq!(get(&m, "incr_counter"), 1.0);
    assert_eq!(get(&m, "incr_counter"), 2.0);
    assert_eq!(get(&m, "get_counter"), 2.0);
    let out = m
        .run_signature("incr_counter_by", &[("delta", Tensor::scalar(3.0f32))])
        .unwrap();
    assert_eq!(out["output"].scalar_value::<f32>().unwrap(), 5.0);
    assert_eq!(get(&m, "reset_counter"), 0.0);
    assert_eq!(get(&m, "get_counter"), 0.0);
}

#[test]
fn signature_errors_are_clear() {
    let m = model("saved_model_half_plus_three");
    let x = Tensor::new(&[3, 1], vec![1.0f32, 2.0, 5.0]).unwrap();
    let err = |key: &str, inputs: &[(&str, Tensor)]| {
        m.run_signature(key, inputs).unwrap_err().to_string()
    };
    let e = err("nope", &[]);
    assert!(
        e.contains("no signature 'nope'") && e.contains("serving_default"),
        "{e}"
    );
    let e = err("serving_default", &[("z", x.clone())]);
    assert!(e.contains("no input 'z'") && e.contains('x'), "{e}");
    let e = err("serving_default", &[]);
    assert!(e.contains("needs input 'x'"), "{e}");
    let e = err(
        "serving_default",
        &[("x", Tensor::new(&[3], vec![1i32, 2, 3]).unwrap())],
    );
    assert!(e.contains("must be float32, got int32"), "{e}");
    let e = err(
        "serving_default",
        &[("x", Tensor::new(&[3], vec![1.0f32, 2.0, 3.0]).unwrap())],
    );
    // (This model's signature declares no shape; the placeholder's [?,1] applies.)
    assert!(e.contains("shape [3]") && e.contains("[?,1]"), "{e}");
    let m2 = model("saved_model_half_plus_two_cpu");
    let e = m2
        .run_signature(
            "serving_default",
            &[("x", Tensor::new(&[3], vec![1.0f32, 2.0, 3.0]).unwrap())],
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("must have shape [?,1]"), "{e}");
}

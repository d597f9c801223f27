//! Numerics against real Keras 3 (`graphs/make_keras_fixtures.py` wrote
//! `graphs/keras/numerics.json`): Dense with each activation, each loss and metric on
//! the same inputs (1e-5), and one `fit` epoch of a small MLP from the same initial
//! weights and batch order (1e-4). `graphs/keras/layers.json`: Conv2D, pooling, padding,
//! BatchNormalization (inference, and a training call with its moving statistics),
//! LayerNormalization and Embedding read from Keras's own layer configs, the
//! activations, regularized losses, and one `fit` epoch of a small CNN.

use rustflow::keras::layers::{
    self, Activation, BatchNormalization, Conv2D, Dense, Flatten, Input, MaxPooling2D,
};
use rustflow::keras::losses::Loss;
use rustflow::keras::metrics::Metric;
use rustflow::keras::optimizers::Optimizer;
use rustflow::keras::{model_from_json, set_session_options, FitOptions, Regularizer, Sequential};
use rustflow::{SessionOptions, Tensor};
use serde_json::Value;

#[path = "support/keras_json.rs"]
mod keras_json;
use keras_json::{assert_close, fit_matches_keras, tensor, tensors};

fn numerics() -> Value {
    serde_json::from_str(include_str!("../graphs/keras/numerics.json")).unwrap()
}

#[test]
fn dense_activations_match_keras() {
    let n = numerics();
    let d = &n["dense"];
    let x = tensor(&d["x"]);
    for (act, want) in d["outputs"].as_object().unwrap() {
        let mut model = Sequential::new(vec![
            Input::new(&[5]).into(),
            Dense::new(3).activation(act).into(),
        ])
        .unwrap();
        model
            .set_weights(&[tensor(&d["kernel"]), tensor(&d["bias"])])
            .unwrap();
        let got = model.predict(&x).unwrap();
        assert_close(act, &got.to_f64_vec(), &tensor(want).to_f64_vec(), 1e-5);
    }
}

#[test]
fn losses_match_keras() {
    let n = numerics();
    let losses = n["losses"].as_object().unwrap();
    assert_eq!(losses.len(), 9);
    for (name, case) in losses {
        let loss = match name.as_str() {
            "sparse_categorical_crossentropy_logits" => {
                Loss::SparseCategoricalCrossentropy { from_logits: true }
            }
            "categorical_crossentropy_logits" => {
                Loss::CategoricalCrossentropy { from_logits: true }
            }
            "binary_crossentropy_logits" => Loss::BinaryCrossentropy { from_logits: true },
            other => Loss::get(other).unwrap(),
        };
        let got = loss
            .compute(&tensor(&case["y_true"]), &tensor(&case["y_pred"]))
            .unwrap();
        let want = case["loss"].as_f64().unwrap();
        assert_close(name, &[got], &[want], 1e-5);
    }
}

#[test]
fn metrics_match_keras() {
    let n = numerics();
    let metrics = n["metrics"].as_object().unwrap();
    assert_eq!(metrics.len(), 7);
    for (name, case) in metrics {
        let metric = Metric::get(name).unwrap();
        let got = metric
            .compute(&tensor(&case["y_true"]), &tensor(&case["y_pred"]))
            .unwrap();
        assert_close(name, &[got], &[case["value"].as_f64().unwrap()], 1e-5);
    }
}

#[test]
fn one_fit_epoch_matches_keras() {
    let n = numerics();
    let f = &n["fit"];
    let x = tensor(&f["x"]);
    let y = tensor(&f["y"]);
    let initial: Vec<Tensor> = f["initial"]
        .as_array()
        .unwrap()
        .iter()
        .map(tensor)
        .collect();
    for (name, run) in f["runs"].as_object().unwrap() {
        let optimizer = match name.as_str() {
            "sgd" => Optimizer::sgd().learning_rate(0.1),
            "sgd_momentum" => Optimizer::sgd()
                .learning_rate(0.1)
                .momentum(0.9)
                .nesterov(true),
            "adam" => Optimizer::adam().learning_rate(0.01),
            "rmsprop" => Optimizer::rmsprop().learning_rate(0.01),
            "adagrad" => Optimizer::adagrad().learning_rate(0.1),
            other => panic!("unknown run {other}"),
        };
        set_session_options(SessionOptions::with_threads(1));
        let mut model = Sequential::new(vec![
            Input::new(&[4]).into(),
            Dense::new(8).activation("relu").into(),
            Dense::new(3).activation("softmax").into(),
        ])
        .unwrap();
        model.set_weights(&initial).unwrap();
        model
            .compile(optimizer, "sparse_categorical_crossentropy", ["accuracy"])
            .unwrap();
        let h = model
            .fit(
                &x,
                &y,
                FitOptions::new()
                    .epochs(1)
                    .batch_size(16)
                    .shuffle(false)
                    .verbose(0),
            )
            .unwrap();
        let got = model.get_weights().unwrap();
        for (i, (g, w)) in got
            .iter()
            .zip(run["weights"].as_array().unwrap())
            .enumerate()
        {
            assert_close(
                &format!("{name} weight {i}"),
                &g.to_f64_vec(),
                &tensor(w).to_f64_vec(),
                1e-4,
            );
        }
        assert_close(
            &format!("{name} loss"),
            &h.get("loss").unwrap()[..1],
            &[run["loss"].as_f64().unwrap()],
            1e-5,
        );
        assert_close(
            &format!("{name} accuracy"),
            &h.get("accuracy").unwrap()[..1],
            &[run["accuracy"].as_f64().unwrap()],
            1e-6,
        );
    }
}

fn layer_fixtures() -> Value {
    serde_json::from_str(include_str!("../graphs/keras/layers.json")).unwrap()
}

/// A model of the layer a Keras config describes, for inputs shaped like `x`.
fn model_of(config: &Value, x: &Tensor) -> Sequential {
    let layer = layers::from_config(
        config["class_name"].as_str().unwrap(),
        config["config"].as_object().unwrap(),
    )
    .unwrap();
    Sequential::new(vec![Input::new(&x.shape()[1..]).into(), layer]).unwrap()
}

#[test]
fn layers_match_keras() {
    let n = layer_fixtures();
    let mut count = 0;
    for group in [
        "conv2d",
        "pooling",
        "zero_padding2d",
        "batch_normalization",
        "layer_normalization",
        "embedding",
    ] {
        for (name, case) in n[group].as_object().unwrap() {
            let what = format!("{group}/{name}");
            let x = tensor(&case["x"]);
            let mut model = model_of(&case["config"], &x);
            model.set_weights(&tensors(&case["weights"])).unwrap();
            let want = tensor(&case["y"]);
            let training = case.get("weights_after").is_some();
            let got = if training {
                model.call_training(&x).unwrap()
            } else {
                model.predict(&x).unwrap()
            };
            assert_eq!(got.shape(), want.shape(), "{what}");
            assert_close(&what, &got.to_f64_vec(), &want.to_f64_vec(), 1e-5);
            if training {
                // Moving mean and variance updated with momentum 0.99, as Keras did.
                let after = tensors(&case["weights_after"]);
                for (i, (g, w)) in model.get_weights().unwrap().iter().zip(&after).enumerate() {
                    let what = format!("{what} weight {i} after the training call");
                    assert_close(&what, &g.to_f64_vec(), &w.to_f64_vec(), 1e-5);
                }
            }
            count += 1;
        }
    }
    assert_eq!(count, 20);
}

#[test]
fn activations_match_keras() {
    let n = layer_fixtures();
    let acts = &n["activations"];
    let x = tensor(&acts["x"]);
    let mut checked = 0;
    for (name, want) in acts.as_object().unwrap() {
        if name == "x" || name == "gelu_approximate" {
            continue;
        }
        let mut model =
            Sequential::new(vec![Input::new(&[17]).into(), Activation::new(name).into()]).unwrap();
        let got = model.predict(&x.reshape(&[1, 17]).unwrap()).unwrap();
        assert_close(name, &got.to_f64_vec(), &tensor(want).to_f64_vec(), 1e-5);
        checked += 1;
    }
    assert_eq!(checked, 10);
    // The exact gelu differs from the tanh approximation (a test that can fail).
    let exact = tensor(&acts["gelu"]).to_f64_vec();
    let approx = tensor(&acts["gelu_approximate"]).to_f64_vec();
    assert!(exact.iter().zip(&approx).any(|(e, a)| (e - a).abs() > 1e-4));
}

#[test]
fn regularized_losses_match_keras() {
    let n = layer_fixtures();
    let r = &n["regularizers"];
    let (x, y) = (tensor(&r["x"]), tensor(&r["y"]));
    for (name, case) in r["cases"].as_object().unwrap() {
        let mut model = model_from_json(&case["config"].to_string()).unwrap();
        model.set_weights(&tensors(&r["weights"])).unwrap();
        let logs = model.evaluate(&x, &y).unwrap();
        let want = case["loss"].as_f64().unwrap();
        assert_close(name, &[logs["loss"]], &[want], 1e-5);
        assert!(
            (want - case["mse"].as_f64().unwrap()).abs() > 1e-3,
            "{name}"
        );
    }
}

#[test]
fn cnn_fit_epoch_matches_keras() {
    let n = layer_fixtures();
    let f = &n["cnn_fit"];
    let x = tensor(&f["x"]);
    set_session_options(SessionOptions::with_threads(1));
    let mut model = Sequential::new(vec![
        Input::new(&[8, 8, 1]).into(),
        Conv2D::new(4, 3).padding("same").into(),
        BatchNormalization::new().into(),
        Activation::new("relu").into(),
        MaxPooling2D::new().into(),
        Flatten::new().into(),
        Dense::new(3)
            .activation("softmax")
            .kernel_regularizer(Regularizer::l2(1e-3))
            .into(),
    ])
    .unwrap();
    assert_eq!(
        model.count_params() as u64,
        f["summary_params"].as_u64().unwrap()
    );
    fit_matches_keras("cnn", &mut model, f, Optimizer::sgd().learning_rate(0.1));
    let x4 = Tensor::new(&[4, 8, 8, 1], x.as_slice::<f32>().unwrap()[..256].to_vec()).unwrap();
    let p = model.predict(&x4).unwrap();
    assert_close(
        "cnn predict",
        &p.to_f64_vec(),
        &tensor(&f["predict"]).to_f64_vec(),
        1e-4,
    );
}

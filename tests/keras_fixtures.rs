//! Numerics against real Keras 3 (`graphs/make_keras_fixtures.py` wrote
//! `graphs/keras/numerics.json`): Dense with each activation, each loss and metric on
//! the same inputs (1e-5), and one `fit` epoch of a small MLP from the same initial
//! weights and batch order (1e-4).

use rustflow::keras::layers::{Dense, Input};
use rustflow::keras::losses::Loss;
use rustflow::keras::metrics::Metric;
use rustflow::keras::optimizers::Optimizer;
use rustflow::keras::{set_session_options, FitOptions, Sequential};
use rustflow::{SessionOptions, Tensor};
use serde_json::Value;

fn numerics() -> Value {
    serde_json::from_str(include_str!("../graphs/keras/numerics.json")).unwrap()
}

fn tensor(v: &Value) -> Tensor {
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

fn assert_close(what: &str, got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * (1.0 + w.abs()),
            "{what}[{i}]: got {g}, Keras {w}"
        );
    }
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

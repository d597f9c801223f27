//! `keras.metrics.AUC` against real Keras 3 (graphs/keras/auc.json, written by
//! graphs/make_keras_auc_fixtures.py): each curve, summation method, number of
//! thresholds and from_logits on two batches; and a binary classifier compiled with
//! `metrics=["AUC", AUC(curve="PR", name="pr_auc")]`: one fit epoch with validation data
//! (weights 1e-4, logs 1e-5) and `evaluate`.

use rustflow::keras::layers::{Dense, Input};
use rustflow::keras::metrics::{Auc, AucCurve, AucSummation, IntoMetric, Metric, NamedMetric};
use rustflow::keras::optimizers::Optimizer;
use rustflow::keras::{load_model, set_session_options, Sequential, CONFIG_FILE};
use rustflow::SessionOptions;
use serde_json::Value;

#[path = "support/keras_json.rs"]
mod keras_json;
use keras_json::{assert_close, assert_weights, one_epoch, tensor, tensors};

fn fixtures() -> Value {
    serde_json::from_str(include_str!("../graphs/keras/auc.json")).unwrap()
}

/// The AUC Keras made from `args` (its keyword arguments).
fn auc(args: &Value) -> Auc {
    let mut a = Auc::new();
    if let Some(n) = args.get("num_thresholds") {
        a = a.num_thresholds(n.as_u64().unwrap() as usize);
    }
    match args.get("curve").and_then(Value::as_str) {
        Some("PR") => a = a.curve(AucCurve::Pr),
        Some(other) => panic!("curve {other}"),
        None => {}
    }
    match args.get("summation_method").and_then(Value::as_str) {
        Some("minoring") => a = a.summation_method(AucSummation::Minoring),
        Some("majoring") => a = a.summation_method(AucSummation::Majoring),
        Some(other) => panic!("summation {other}"),
        None => {}
    }
    if args.get("from_logits").and_then(Value::as_bool) == Some(true) {
        a = a.from_logits(true);
    }
    a
}

#[test]
fn auc_matches_keras() {
    let f = fixtures();
    let cases = f["metrics"].as_object().unwrap();
    assert_eq!(cases.len(), 8);
    for (name, case) in cases {
        let metric = Metric::Auc(auc(&case["args"]));
        let got = metric
            .compute(&tensor(&case["y_true"]), &tensor(&case["y_pred"]))
            .unwrap();
        let want = case["value"].as_f64().unwrap();
        // Keras's value came from two batches (17 and 13 rows): the counts add up, so
        // one batch gives the same area.
        assert_close(name, &[got], &[want], 1e-5);
    }
}

#[test]
fn auc_of_a_perfect_and_a_reversed_ranking() {
    let y = rustflow::Tensor::new(&[4, 1], vec![0f32, 0.0, 1.0, 1.0]).unwrap();
    let good = rustflow::Tensor::new(&[4, 1], vec![0.1f32, 0.2, 0.8, 0.9]).unwrap();
    let bad = rustflow::Tensor::new(&[4, 1], vec![0.9f32, 0.8, 0.2, 0.1]).unwrap();
    let roc = Metric::get("AUC").unwrap();
    assert!((roc.compute(&y, &good).unwrap() - 1.0).abs() < 1e-9);
    assert!(roc.compute(&y, &bad).unwrap().abs() < 1e-9);
    let one = Metric::Auc(Auc::new().num_thresholds(1));
    let err = one.compute(&y, &good).unwrap_err().to_string();
    assert!(err.contains("num_thresholds"), "{err}");
}

#[test]
fn fit_and_evaluate_log_auc_as_keras() {
    let f = fixtures();
    let case = &f["fit"];
    set_session_options(SessionOptions::with_threads(1));
    let mut model = Sequential::new(vec![
        Input::new(&[5]).into(),
        Dense::new(4).activation("tanh").into(),
        Dense::new(1).activation("sigmoid").into(),
    ])
    .unwrap();
    model.set_weights(&tensors(&case["initial"])).unwrap();
    let pr = NamedMetric {
        metric: Metric::Auc(Auc::new().curve(AucCurve::Pr)),
        name: "pr_auc".into(),
    };
    model
        .compile(
            Optimizer::sgd().learning_rate(0.1),
            "binary_crossentropy",
            vec!["AUC".into_metric().unwrap(), pr],
        )
        .unwrap();
    let (x, y) = (tensor(&case["x"]), tensor(&case["y"]));
    let (xv, yv) = (tensor(&case["x_val"]), tensor(&case["y_val"]));
    let h = model
        .fit(&x, &y, one_epoch().validation_data(xv, yv))
        .unwrap();
    assert_weights(
        "auc fit",
        &model.get_weights().unwrap(),
        &case["weights"],
        1e-4,
    );
    let keras_logs = case["history"].as_object().unwrap();
    let mut keys: Vec<&String> = keras_logs.keys().collect();
    keys.sort();
    assert_eq!(h.history.keys().collect::<Vec<_>>(), keys);
    for (k, v) in keras_logs {
        assert_close(k, &h.get(k).unwrap()[..1], &[v.as_f64().unwrap()], 1e-5);
    }
    let logs = model.evaluate_with(&x, &y, 8, 0).unwrap();
    for (k, v) in case["evaluate"].as_object().unwrap() {
        assert_close(
            &format!("evaluate {k}"),
            &[logs[k]],
            &[v.as_f64().unwrap()],
            1e-5,
        );
    }
    // Saved and loaded, the model is compiled with the same metrics: the PR AUC as
    // Keras serializes it in the compile config, under its name.
    let dir = tempfile::tempdir().unwrap();
    model.save(dir.path()).unwrap();
    let config = std::fs::read_to_string(dir.path().join(CONFIG_FILE)).unwrap();
    assert!(config.contains(r#""class_name":"AUC""#), "{config}");
    let mut loaded: Sequential = load_model(dir.path()).unwrap();
    assert_eq!(loaded.evaluate_with(&x, &y, 8, 0).unwrap(), logs);
}

//! LSTM and GRU against real Keras 3 (`graphs/make_keras_rnn_fixtures.py` wrote
//! `graphs/keras/recurrent.json`): layers read from Keras's own configs, given Keras's
//! weights, give Keras's outputs and states (1e-5) and parameter counts; one `fit` epoch of
//! Embedding→LSTM→Dense (SGD) and Input→GRU→Dense (Adam) from the same initial weights
//! gives Keras's weights (1e-4) and loss; the orthogonal initializer is orthogonal.

use rustflow::keras::initializers::Initializer;
use rustflow::keras::layers::{self, Dense, Input, GRU, LSTM};
use rustflow::keras::optimizers::Optimizer;
use rustflow::keras::{
    clear_session, functional_from_json, model_from_json, set_session_options, Layer, LayerRef,
    Model, Sequential,
};
use rustflow::{Graph, Session, SessionOptions, Tensor};
use serde_json::Value;

#[path = "support/keras_json.rs"]
mod keras_json;
use keras_json::{assert_close, fit_matches_keras, tensor, tensors};

fn fixtures() -> Value {
    serde_json::from_str(include_str!("../graphs/keras/recurrent.json")).unwrap()
}

#[test]
fn layers_match_keras() {
    let f = fixtures();
    let cases = f["layers"].as_object().unwrap();
    for (name, case) in cases {
        let config = &case["config"];
        let class = config["class_name"].as_str().unwrap();
        let cfg = config["config"].as_object().unwrap();
        let layer = layers::from_config(class, cfg).unwrap();
        // The config written back holds what Keras wrote (initializers aside, whose
        // configs Keras extends).
        let ours = layer.get_config();
        for (k, v) in cfg {
            if !k.ends_with("_initializer") {
                assert_eq!(ours.get(k), Some(v), "{name}: config entry '{k}'");
            }
        }
        let x = tensor(&case["x"]);
        let input = Input::new(&x.shape()[1..]).tensor();
        let outs = LayerRef::new(layer).call_outputs(&[&input]).unwrap();
        let want = tensors(&case["y"]);
        assert_eq!(outs.len(), want.len(), "{name}");
        let mut model = Model::new(&[input], &outs).unwrap();
        assert_eq!(
            model.count_params() as u64,
            case["params"].as_u64().unwrap(),
            "{name}"
        );
        model.set_weights(&tensors(&case["weights"])).unwrap();
        let got = model.predict_many(std::slice::from_ref(&x), 2).unwrap();
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g.shape(), w.shape(), "{name} output {i}");
            let what = format!("{name} output {i}");
            assert_close(&what, &g.to_f64_vec(), &w.to_f64_vec(), 1e-5);
        }
        // A layer of one output also runs in a Sequential.
        if want.len() == 1 {
            let layer = layers::from_config(class, cfg).unwrap();
            let mut seq = Sequential::new(vec![Input::new(&x.shape()[1..]).into(), layer]).unwrap();
            seq.set_weights(&tensors(&case["weights"])).unwrap();
            let got = seq.predict(&x).unwrap();
            assert_close(name, &got.to_f64_vec(), &want[0].to_f64_vec(), 1e-5);
        }
    }
    assert_eq!(cases.len(), 9);
}

#[test]
fn return_state_survives_the_functional_config() {
    clear_session();
    let x = Input::new(&[5, 4]).tensor();
    let outs = LayerRef::new(LSTM::new(3).return_sequences(true).return_state(true))
        .call_outputs(&[&x])
        .unwrap();
    assert_eq!(outs.len(), 3);
    assert_eq!(outs[0].shape(), &vec![None, Some(5), Some(3)]);
    assert_eq!(outs[2].shape(), &vec![None, Some(3)]);
    // A Dense on the cell state c (the call's third tensor).
    let d = LayerRef::new(Dense::new(2)).call(&outs[2]).unwrap();
    let mut model = Model::new(&[x], &[outs[0].clone(), d]).unwrap();
    let json = model.to_json();
    let v: Value = serde_json::from_str(&json).unwrap();
    let dense = &v["config"]["layers"][2];
    assert_eq!(
        dense["inbound_nodes"][0]["args"][0]["config"]["keras_history"],
        serde_json::json!(["lstm", 0, 2])
    );
    let mut back = functional_from_json(&json).unwrap();
    back.set_weights(&model.get_weights().unwrap()).unwrap();
    let xs = Tensor::new(
        &[2, 5, 4],
        (0..40).map(|i| (i as f32 * 0.37).sin()).collect(),
    )
    .unwrap();
    let a = model.predict_many(std::slice::from_ref(&xs), 8).unwrap();
    let b = back.predict_many(&[xs], 8).unwrap();
    assert_eq!(a[1].shape(), &[2, 2]);
    assert_eq!(a[0].to_f64_vec(), b[0].to_f64_vec());
    assert_eq!(a[1].to_f64_vec(), b[1].to_f64_vec());
}

#[test]
fn bad_inputs_are_errors_naming_the_layer() {
    clear_session();
    // No time axis.
    let msg = Sequential::new(vec![Input::new(&[4]).into(), LSTM::new(3).into()])
        .err()
        .unwrap()
        .to_string();
    assert!(msg.contains("'lstm'") && msg.contains("(None, 4)"), "{msg}");
    // A layer returning its states cannot be one step of a Sequential.
    let msg = Sequential::new(vec![
        Input::new(&[5, 4]).into(),
        GRU::new(3).return_state(true).into(),
    ])
    .err()
    .unwrap()
    .to_string();
    assert!(msg.contains("return_state"), "{msg}");
    // Calling a built model on the wrong feature count.
    let mut m = Sequential::new(vec![Input::new(&[5, 4]).into(), GRU::new(3).into()]).unwrap();
    let msg = m
        .predict(&Tensor::new(&[1, 5, 3], vec![0.0f32; 15]).unwrap())
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("(None, 5, 4)") || msg.contains("5, 4"),
        "{msg}"
    );
    // Options Keras has but this layer does not run.
    let mut cfg = Value::Object(LSTM::new(2).named("l").get_config());
    cfg["stateful"] = Value::from(true);
    let msg = layers::from_config("LSTM", cfg.as_object().unwrap())
        .err()
        .unwrap()
        .to_string();
    assert!(msg.contains("'l'") && msg.contains("stateful"), "{msg}");
}

/// `QᵀQ` (or `QQᵀ` when wider than tall) is `gain²·I`.
fn assert_orthogonal(q: &Tensor, gain: f64) {
    let (r, c) = (q.shape()[0], q.shape()[1]);
    let v = q.to_f64_vec();
    // Row i of the narrow side: a column when taller than wide, else a row.
    let tall = r >= c;
    let (n, k) = if tall { (c, r) } else { (r, c) };
    let at = |i: usize, j: usize| if tall { v[j * c + i] } else { v[i * c + j] };
    for a in 0..n {
        for b in 0..n {
            let dot: f64 = (0..k).map(|j| at(a, j) * at(b, j)).sum();
            let want = if a == b { gain * gain } else { 0.0 };
            assert!((dot - want).abs() < 1e-5, "({a}, {b}): {dot}");
        }
    }
}

#[test]
fn orthogonal_initializer_is_orthogonal() {
    let f = fixtures();
    let init = Initializer::from_config(&f["orthogonal"]["config"]).unwrap();
    assert_eq!(
        init,
        Initializer::Orthogonal {
            gain: 2.0,
            seed: Some(3)
        }
    );
    assert_eq!(init.to_config(), f["orthogonal"]["config"]);
    for shape in [[6, 24], [24, 6], [5, 5]] {
        let mut g = Graph::new();
        let q = init
            .create(&mut g, &shape, rustflow::DType::Float32)
            .unwrap();
        let q = Session::new(&g).run(&[], &[q], &[]).unwrap().remove(0);
        assert_eq!(q.shape(), &shape);
        assert_orthogonal(&q, 2.0);
    }
    // An LSTM's recurrent kernel starts orthogonal.
    clear_session();
    let m = Sequential::new(vec![Input::new(&[3, 2]).into(), LSTM::new(4).into()]).unwrap();
    let w = m.get_weights().unwrap();
    assert_eq!(w[1].shape(), &[4, 16]);
    assert_orthogonal(&w[1], 1.0);
    // unit_forget_bias: the forget gate's bias starts at one.
    assert_eq!(
        w[2].to_f64_vec(),
        [[0.0; 4], [1.0; 4], [0.0; 4], [0.0; 4]].concat()
    );
}

#[test]
fn one_fit_epoch_matches_keras() {
    let f = fixtures();
    for (name, case) in f["fit"].as_object().unwrap() {
        set_session_options(SessionOptions::with_threads(1));
        let mut model = model_from_json(&case["config"].to_string()).unwrap();
        assert_eq!(
            model.count_params() as u64,
            case["params"].as_u64().unwrap(),
            "{name}"
        );
        let optimizer = match name.as_str() {
            "embedding_lstm_dense" => Optimizer::sgd().learning_rate(0.2),
            "gru_dense" => Optimizer::adam().learning_rate(0.02),
            other => panic!("unknown case {other}"),
        };
        fit_matches_keras(name, &mut model, case, optimizer);
    }
}

#[test]
fn dropout_and_recurrent_dropout_act_in_training_only() {
    set_session_options(SessionOptions::with_threads(1));
    let x = Tensor::new(
        &[6, 5, 3],
        (0..90)
            .map(|i| ((i * 7) % 11) as f32 / 11.0)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let y = Tensor::new(&[6, 1], (0..6).map(|i| i as f32 / 6.0).collect::<Vec<_>>()).unwrap();
    type Make = fn(f64, f64) -> Box<dyn Layer>;
    let makes: [(&str, Make); 3] = [
        ("lstm", |d, r| {
            Box::new(LSTM::new(4).dropout(d).recurrent_dropout(r))
        }),
        ("gru", |d, r| {
            Box::new(GRU::new(4).dropout(d).recurrent_dropout(r))
        }),
        ("gru_reset_before", |d, r| {
            Box::new(
                GRU::new(4)
                    .reset_after(false)
                    .dropout(d)
                    .recurrent_dropout(r),
            )
        }),
    ];
    for (name, make) in makes {
        for (d, r) in [(0.5, 0.0), (0.0, 0.5)] {
            clear_session();
            let model = |d, r| {
                let mut m = Sequential::new(vec![
                    Input::new(&[5, 3]).into(),
                    make(d, r),
                    Dense::new(1).into(),
                ])
                .unwrap();
                m.compile(
                    Optimizer::sgd().learning_rate(0.0),
                    "mse",
                    Vec::<&str>::new(),
                )
                .unwrap();
                m
            };
            let (mut plain, mut dropped) = (model(0.0, 0.0), model(d, r));
            dropped.set_weights(&plain.get_weights().unwrap()).unwrap();
            // Inference: the same outputs and loss.
            assert_eq!(
                plain.predict(&x).unwrap().to_f64_vec(),
                dropped.predict(&x).unwrap().to_f64_vec(),
                "{name}"
            );
            assert_eq!(
                plain.evaluate(&x, &y).unwrap(),
                dropped.evaluate(&x, &y).unwrap()
            );
            // Training (a step with learning rate 0): the dropped model's loss differs.
            let a = plain.train_on_batch(&x, &y).unwrap()["loss"];
            let b = dropped.train_on_batch(&x, &y).unwrap()["loss"];
            assert!(
                (a - b).abs() > 1e-6,
                "{name} dropout {d} recurrent {r}: {a} vs {b}"
            );
            // The rates survive the config.
            let json = dropped.to_json();
            let back = model_from_json(&json).unwrap();
            assert_eq!(back.to_json(), json, "{name}");
        }
    }
    clear_session();
    let bad = Sequential::new(vec![
        Input::new(&[5, 3]).into(),
        LSTM::new(2).dropout(1.0).into(),
    ]);
    let err = bad.err().unwrap().to_string();
    assert!(err.contains("dropout") && err.contains("lstm"), "{err}");
}

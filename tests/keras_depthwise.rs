//! DepthwiseConv2D and SeparableConv2D against real Keras 3
//! (`graphs/make_keras_depthwise_fixtures.py` wrote `graphs/keras/depthwise.json`): layers
//! read from Keras's own configs, given Keras's weights, give Keras's outputs (1e-5) and
//! parameter counts; one `fit` epoch of SeparableConv2D→DepthwiseConv2D→pooling→Dense from
//! the same initial weights gives Keras's weights (1e-4) and loss (their gradients are
//! DepthwiseConv2dNativeBackpropInput / BackpropFilter).

use rustflow::keras::layers::{self, DepthwiseConv2D, Input, SeparableConv2D};
use rustflow::keras::optimizers::Optimizer;
use rustflow::keras::Sequential;
use rustflow::keras::{clear_session, model_from_json, set_session_options};
use rustflow::SessionOptions;
use serde_json::Value;

#[path = "support/keras_json.rs"]
mod keras_json;
use keras_json::{assert_close, fit_matches_keras, tensor, tensors};

fn fixtures() -> Value {
    serde_json::from_str(include_str!("../graphs/keras/depthwise.json")).unwrap()
}

#[test]
fn layers_match_keras() {
    let f = fixtures();
    let cases = f["layers"].as_object().unwrap();
    for (name, case) in cases {
        let class = case["config"]["class_name"].as_str().unwrap();
        let cfg = case["config"]["config"].as_object().unwrap();
        let layer = layers::from_config(class, cfg).unwrap();
        let ours = layer.get_config();
        for (k, v) in cfg {
            if !k.ends_with("_initializer") {
                assert_eq!(ours.get(k), Some(v), "{name}: config entry '{k}'");
            }
        }
        let x = tensor(&case["x"]);
        let mut model = Sequential::new(vec![Input::new(&x.shape()[1..]).into(), layer]).unwrap();
        assert_eq!(
            model.count_params() as u64,
            case["params"].as_u64().unwrap(),
            "{name}"
        );
        model.set_weights(&tensors(&case["weights"])).unwrap();
        let want = tensor(&case["y"]);
        let got = model.predict(&x).unwrap();
        assert_eq!(got.shape(), want.shape(), "{name}");
        assert_close(name, &got.to_f64_vec(), &want.to_f64_vec(), 1e-5);
    }
    assert_eq!(cases.len(), 6);
}

#[test]
fn one_fit_epoch_matches_keras() {
    let f = fixtures();
    let case = &f["fit"];
    set_session_options(SessionOptions::with_threads(1));
    let mut model = model_from_json(&case["config"].to_string()).unwrap();
    assert_eq!(
        model.count_params() as u64,
        case["params"].as_u64().unwrap()
    );
    fit_matches_keras("fit", &mut model, case, Optimizer::sgd().learning_rate(0.1));
}

#[test]
fn builders_and_errors() {
    clear_session();
    let m = Sequential::new(vec![
        Input::new(&[6, 6, 2]).into(),
        DepthwiseConv2D::new(3)
            .depth_multiplier(3)
            .padding("same")
            .into(),
        SeparableConv2D::new(4, 2).strides(2).into(),
    ])
    .unwrap();
    let names: Vec<&str> = m.layers().iter().map(|l| l.name()).collect();
    assert_eq!(names, ["depthwise_conv2d", "separable_conv2d"]);
    // depthwise 3·3·2·3 + 6; separable 2·2·6·1 + 6·4 + 4.
    assert_eq!(m.count_params(), 60 + 52);
    let msg = Sequential::new(vec![
        Input::new(&[6, 6]).into(),
        DepthwiseConv2D::new(3).into(),
    ])
    .err()
    .unwrap()
    .to_string();
    assert!(
        msg.contains("depthwise_conv2d_1") && msg.contains("(None, 6, 6)"),
        "{msg}"
    );
    let msg = Sequential::new(vec![
        Input::new(&[6, 6, 1]).into(),
        SeparableConv2D::new(2, 3).depth_multiplier(0).into(),
    ])
    .err()
    .unwrap()
    .to_string();
    assert!(msg.contains("depth_multiplier"), "{msg}");
}

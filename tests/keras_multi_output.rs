//! Training a functional model of several outputs against real Keras 3
//! (`graphs/make_keras_multi_output_fixtures.py` wrote `graphs/keras/multi_output.json`):
//! a loss per output by name (with loss weights) or by position, metrics per output;
//! one `fit` epoch gives Keras's weights (1e-4) and logs (`loss`, `<output>_loss`,
//! `<output>_<metric>`), and `evaluate` Keras's values. A saved functional model loads
//! back compiled, predicts the same and resumes training.

use rustflow::data::{Dataset, Element};
use rustflow::keras::layers::{Dense, Input};
use rustflow::keras::optimizers::Optimizer;
use rustflow::keras::{
    clear_session, load_model, set_session_options, Apply, FitOptions, LayerRef, Model, PerOutput,
    Sequential,
};
use rustflow::SessionOptions;
use serde_json::Value;

#[path = "support/keras_json.rs"]
mod keras_json;
use keras_json::{assert_close, assert_weights, one_epoch, tensor, tensors};

fn fixtures() -> Value {
    serde_json::from_str(include_str!("../graphs/keras/multi_output.json")).unwrap()
}

/// The fixture's model: `a` → Dense(5, relu) `hidden` → `cls` Dense(3, softmax) and
/// `reg` Dense(2).
fn model() -> Model {
    clear_session();
    let a = Input::new(&[4]).named("a").tensor();
    let h = Dense::new(5)
        .activation("relu")
        .named("hidden")
        .on(&a)
        .unwrap();
    let cls = Dense::new(3)
        .activation("softmax")
        .named("cls")
        .on(&h)
        .unwrap();
    let reg = LayerRef::new(Dense::new(2).named("reg")).call(&h).unwrap();
    Model::new(&[a], &[cls, reg]).unwrap()
}

#[test]
fn one_fit_epoch_of_two_outputs_matches_keras() {
    let f = fixtures();
    let x = tensor(&f["x"]);
    let ys = [tensor(&f["y_cls"]), tensor(&f["y_reg"])];
    for (name, case) in f["cases"].as_object().unwrap() {
        set_session_options(SessionOptions::with_threads(1));
        let mut m = model();
        assert_eq!(m.output_names(), ["cls", "reg"]);
        m.set_weights(&tensors(&f["initial"])).unwrap();
        match name.as_str() {
            "by_name" => m.compile_outputs(
                Optimizer::sgd().learning_rate(0.1),
                PerOutput::Named(vec![
                    ("cls".into(), "sparse_categorical_crossentropy"),
                    ("reg".into(), "mse"),
                ]),
                PerOutput::Named(vec![("cls".into(), 1.0), ("reg".into(), 0.5)]),
                PerOutput::Named(vec![
                    ("cls".into(), vec!["accuracy"]),
                    ("reg".into(), vec!["mae"]),
                ]),
            ),
            "by_position" => m.compile_outputs(
                Optimizer::adam().learning_rate(0.01),
                PerOutput::List(vec!["sparse_categorical_crossentropy", "mse"]),
                PerOutput::All(1.0),
                PerOutput::List(vec![vec!["accuracy"], vec![]]),
            ),
            other => panic!("unknown case {other}"),
        }
        .unwrap();
        let h = m
            .fit_outputs(std::slice::from_ref(&x), &ys, one_epoch())
            .unwrap();
        assert_weights(name, &m.get_weights().unwrap(), &case["weights"], 1e-4);
        let keras_logs = case["history"].as_object().unwrap();
        let mut keys: Vec<&String> = keras_logs.keys().collect();
        keys.sort();
        let ours: Vec<&String> = h.history.keys().collect();
        assert_eq!(ours, keys, "{name}: log names");
        for (k, v) in keras_logs {
            let what = format!("{name} {k}");
            assert_close(&what, &h.get(k).unwrap()[..1], &[v.as_f64().unwrap()], 1e-5);
        }
        let logs = m.evaluate_outputs(std::slice::from_ref(&x), &ys).unwrap();
        for (k, v) in case["evaluate"].as_object().unwrap() {
            let what = format!("{name} evaluate {k}");
            assert_close(&what, &[logs[k]], &[v.as_f64().unwrap()], 1e-5);
        }
    }
}

#[test]
fn per_output_arguments_are_checked() {
    let mut m = model();
    let sgd = || Optimizer::sgd();
    let none = || PerOutput::All(Vec::<&str>::new());
    // Too few losses by position.
    let msg = m
        .compile_outputs(
            sgd(),
            PerOutput::List(vec!["mse"]),
            PerOutput::All(1.0),
            none(),
        )
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("1 entries") && msg.contains("2 outputs"),
        "{msg}"
    );
    // An output name the model does not have.
    let msg = m
        .compile_outputs(
            sgd(),
            PerOutput::Named(vec![("cls".into(), "mse"), ("nope".into(), "mse")]),
            PerOutput::All(1.0),
            none(),
        )
        .unwrap_err()
        .to_string();
    assert!(msg.contains("'nope'") && msg.contains("cls"), "{msg}");
    // A loss missing for an output.
    let msg = m
        .compile_outputs(
            sgd(),
            PerOutput::Named(vec![("cls".into(), "mse")]),
            PerOutput::All(1.0),
            none(),
        )
        .unwrap_err()
        .to_string();
    assert!(msg.contains("'reg'"), "{msg}");
    // One loss for all outputs, then one target array for two outputs.
    m.compile("sgd", "mse", ["mae"]).unwrap();
    let x = rustflow::Tensor::new(&[2, 4], vec![0.5f32; 8]).unwrap();
    let y = rustflow::Tensor::new(&[2, 3], vec![0.0f32; 6]).unwrap();
    let msg = m
        .fit(&x, &y, FitOptions::new().verbose(0))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("2 outputs") && msg.contains("1 target"),
        "{msg}"
    );
    let y2 = rustflow::Tensor::new(&[2, 2], vec![0.0f32; 4]).unwrap();
    let logs = m
        .train_on_batch_outputs(std::slice::from_ref(&x), &[y, y2])
        .unwrap();
    let keys: Vec<&String> = logs.keys().collect();
    assert_eq!(keys, ["cls_loss", "cls_mae", "loss", "reg_loss", "reg_mae"]);
}

#[test]
fn saved_functional_model_loads_and_trains_on() {
    let f = fixtures();
    let x = tensor(&f["x"]);
    let ys = [tensor(&f["y_cls"]), tensor(&f["y_reg"])];
    set_session_options(SessionOptions::with_threads(1));
    let mut m = model();
    m.set_weights(&tensors(&f["initial"])).unwrap();
    m.compile_outputs(
        Optimizer::adam().learning_rate(0.01),
        PerOutput::Named(vec![
            ("cls".into(), "sparse_categorical_crossentropy"),
            ("reg".into(), "mse"),
        ]),
        PerOutput::Named(vec![("reg".into(), 0.5)]),
        PerOutput::Named(vec![("cls".into(), vec!["accuracy"])]),
    )
    .unwrap();
    let opts = || {
        FitOptions::new()
            .epochs(1)
            .batch_size(8)
            .shuffle(false)
            .verbose(0)
    };
    let xs = std::slice::from_ref(&x);
    m.fit_outputs(xs, &ys, opts()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model");
    m.save(&path).unwrap();
    // A Sequential is not what was saved.
    let msg = load_model::<Sequential>(&path).err().unwrap().to_string();
    assert!(
        msg.contains("'Functional'") && msg.contains("Model"),
        "{msg}"
    );
    let mut back: Model = load_model(&path).unwrap();
    assert_eq!(back.output_names(), ["cls", "reg"]);
    let a = m.predict_many(xs, 32).unwrap();
    let b = back.predict_many(xs, 32).unwrap();
    for (a, b) in a.iter().zip(&b) {
        assert_eq!(a.to_f64_vec(), b.to_f64_vec());
    }
    // Compiled as it was (losses, weights, metrics): the same evaluation.
    let la = m.evaluate_outputs(xs, &ys).unwrap();
    let lb = back.evaluate_outputs(xs, &ys).unwrap();
    assert_eq!(la, lb);
    assert!(lb.contains_key("cls_accuracy") && !lb.contains_key("reg_accuracy"));
    // Training continues from the saved optimizer state: one more epoch of each gives
    // the same weights.
    let ha = m.fit_outputs(xs, &ys, opts()).unwrap();
    let hb = back.fit_outputs(xs, &ys, opts()).unwrap();
    assert_eq!(ha.history, hb.history);
    for (a, b) in m
        .get_weights()
        .unwrap()
        .iter()
        .zip(&back.get_weights().unwrap())
    {
        assert_close(
            "weight after resuming",
            &b.to_f64_vec(),
            &a.to_f64_vec(),
            1e-6,
        );
    }
}

/// A compiled two-output model from the fixture's initial weights.
fn compiled_model(f: &Value) -> Model {
    let mut m = model();
    m.set_weights(&tensors(&f["initial"])).unwrap();
    m.compile_outputs(
        Optimizer::sgd().learning_rate(0.1),
        PerOutput::List(vec!["sparse_categorical_crossentropy", "mse"]),
        PerOutput::All(1.0),
        PerOutput::List(vec![vec!["accuracy"], vec!["mae"]]),
    )
    .unwrap();
    m
}

#[test]
fn validation_data_and_a_dataset_of_two_outputs() {
    let f = fixtures();
    let x = tensor(&f["x"]);
    let ys = [tensor(&f["y_cls"]), tensor(&f["y_reg"])];
    set_session_options(SessionOptions::with_threads(1));
    // Arrays, validated on the same arrays after the epoch.
    let mut m = compiled_model(&f);
    let h = m
        .fit_outputs(
            std::slice::from_ref(&x),
            &ys,
            one_epoch().validation_data_outputs(vec![x.clone()], ys.to_vec()),
        )
        .unwrap();
    let after = m.evaluate_outputs(std::slice::from_ref(&x), &ys).unwrap();
    for k in ["loss", "cls_loss", "reg_loss", "cls_accuracy", "reg_mae"] {
        let val = h.get(&format!("val_{k}")).unwrap()[0];
        assert!(
            (val - after[k]).abs() < 1e-6,
            "val_{k}: {val} vs {}",
            after[k]
        );
    }
    // The same epoch from a dataset of (x, (y_cls, y_reg)) batches of 8.
    let mut d = compiled_model(&f);
    let ds = Dataset::from_tensor_slices(Element::Tuple(vec![
        x.clone().into(),
        Element::Tuple(vec![ys[0].clone().into(), ys[1].clone().into()]),
    ]))
    .unwrap()
    .batch(8, false);
    let hd = d.fit_dataset(&ds, FitOptions::new().verbose(0)).unwrap();
    assert!((hd.get("loss").unwrap()[0] - h.get("loss").unwrap()[0]).abs() < 1e-6);
    for (a, b) in d
        .get_weights()
        .unwrap()
        .iter()
        .zip(m.get_weights().unwrap())
    {
        assert_eq!(a.to_f64_vec(), b.to_f64_vec());
    }
    let logs = d.evaluate_dataset(&ds).unwrap();
    assert!((logs["loss"] - after["loss"]).abs() < 1e-6);
    // A dataset whose targets are not one per output is refused by name.
    let bad =
        Dataset::from_tensor_slices(Element::Tuple(vec![x.clone().into(), ys[0].clone().into()]))
            .unwrap()
            .batch(8, false);
    let err = d
        .fit_dataset(&bad, FitOptions::new().verbose(0))
        .unwrap_err()
        .to_string();
    assert!(err.contains("target"), "{err}");
}

//! The functional API: layers called on symbolic tensors, several inputs and outputs,
//! shared layers, merge layers, and the shared trainer (a functional chain trains as
//! the same Sequential does, step for step).

use rustflow::keras::layers::{Add, BatchNormalization, Concatenate, Dense, Input, Multiply};
use rustflow::keras::optimizers::Optimizer;
use rustflow::keras::{
    clear_session, functional_from_json, set_session_options, Apply, FitOptions, LayerRef, Model,
    Sequential,
};
use rustflow::{SessionOptions, Tensor};

#[path = "support/keras_json.rs"]
mod keras_json;
use keras_json::tensors;

fn t(shape: &[usize], v: &[f32]) -> Tensor {
    Tensor::new(shape, v.to_vec()).unwrap()
}

#[test]
fn chain_summary_matches_keras() {
    clear_session();
    let a = Input::new(&[8]).tensor();
    let h = Dense::new(4).activation("relu").on(&a).unwrap();
    let o = Dense::new(2).on(&h).unwrap();
    let model = Model::new(&[a], &[o]).unwrap();
    // What Keras 3.15 prints for keras.Model(a, o) of the same layers.
    let keras = "\
Model: \"functional\"
┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━┓
┃ Layer (type)                    ┃ Output Shape           ┃       Param # ┃
┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━┩
│ input_layer (InputLayer)        │ (None, 8)              │             0 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ dense (Dense)                   │ (None, 4)              │            36 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ dense_1 (Dense)                 │ (None, 2)              │            10 │
└─────────────────────────────────┴────────────────────────┴───────────────┘
 Total params: 46 (184.00 B)
 Trainable params: 46 (184.00 B)
 Non-trainable params: 0 (0.00 B)
";
    assert_eq!(model.summary(), keras);
}

#[test]
fn two_inputs_shared_layer_and_merges() {
    clear_session();
    let a = Input::new(&[2]).named("a").tensor();
    let b = Input::new(&[2]).named("b").tensor();
    let shared = LayerRef::new(Dense::new(2).use_bias(false));
    let fa = shared.call(&a).unwrap();
    let fb = shared.call(&b).unwrap();
    let sum = Add::new().on_many(&[&fa, &fb]).unwrap();
    let prod = Multiply::new().on_many(&[&fa, &fb]).unwrap();
    let cat = Concatenate::new().on_many(&[&sum, &prod]).unwrap();
    assert_eq!(cat.shape(), &vec![None, Some(4)]);
    let mut model = Model::new(&[a, b], &[cat, sum]).unwrap();
    // The shared layer's kernel exists once.
    assert_eq!(model.weights().len(), 1);
    assert_eq!(model.num_calls(), 5);
    assert_eq!(model.layers().len(), 4);
    model
        .set_weights(&[t(&[2, 2], &[1.0, 2.0, 3.0, 4.0])])
        .unwrap();
    let xa = t(&[2, 2], &[1.0, 0.0, 0.0, 1.0]);
    let xb = t(&[2, 2], &[1.0, 1.0, 2.0, -1.0]);
    let out = model.predict_many(&[xa, xb], 1).unwrap();
    // a·K = [1,2], [3,4]; b·K = [4,6], [-1,0].
    assert_eq!(
        out[0].to_f64_vec(),
        vec![5.0, 8.0, 4.0, 12.0, 2.0, 4.0, -3.0, 0.0]
    );
    assert_eq!(out[1].to_f64_vec(), vec![5.0, 8.0, 2.0, 4.0]);
    // Arrays for several inputs go through predict_many; fit names what it takes.
    let msg = model
        .predict(&t(&[1, 2], &[0.0, 0.0]))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("2 inputs and 2 outputs"), "{msg}");
}

#[test]
fn bad_graphs_are_clear_errors() {
    clear_session();
    let a = Input::new(&[3]).tensor();
    let b = Input::new(&[4]).named("other").tensor();
    let msg = Add::new().on_many(&[&a, &b]).unwrap_err().to_string();
    assert!(msg.contains("(None, 3), (None, 4)"), "{msg}");
    let msg = Concatenate::new()
        .axis(0)
        .on_many(&[&a, &b])
        .unwrap_err()
        .to_string();
    assert!(msg.contains("concatenate"), "{msg}");
    let msg = Add::new().on(&a).unwrap_err().to_string();
    assert!(msg.contains("at least 2 inputs"), "{msg}");
    let c = Concatenate::new().on_many(&[&a, &b]).unwrap();
    let msg = Model::new(std::slice::from_ref(&a), &[c])
        .err()
        .unwrap()
        .to_string();
    assert!(
        msg.contains("Graph disconnected") && msg.contains("'other'"),
        "{msg}"
    );
    let h = Dense::new(2).on(&a).unwrap();
    let msg = Model::new(std::slice::from_ref(&h), std::slice::from_ref(&h))
        .err()
        .unwrap()
        .to_string();
    assert!(msg.contains("must come from `Input`"), "{msg}");
    let out = Dense::new(2).on(&a).unwrap();
    let mut m = Model::new(&[a], &[out]).unwrap();
    let msg = m
        .fit(
            &t(&[1, 3], &[0.0; 3]),
            &t(&[1, 2], &[0.0; 2]),
            FitOptions::new(),
        )
        .unwrap_err()
        .to_string();
    assert!(msg.contains("compile"), "{msg}");
}

#[test]
fn functional_fit_equals_sequential_fit() {
    clear_session();
    set_session_options(SessionOptions::with_threads(1));
    let n = 48;
    let x: Vec<f32> = (0..n * 3).map(|i| ((i * 7) % 11) as f32 / 11.0).collect();
    let y: Vec<f32> = (0..n).map(|i| (i % 3) as f32).collect();
    let (x, y) = (t(&[n, 3], &x), t(&[n], &y));
    let opts = || {
        FitOptions::new()
            .epochs(2)
            .batch_size(8)
            .shuffle(false)
            .verbose(0)
    };

    let mut seq = Sequential::new(vec![
        Input::new(&[3]).into(),
        Dense::new(5).activation("relu").into(),
        BatchNormalization::new().into(),
        Dense::new(3).activation("softmax").into(),
    ])
    .unwrap();
    let a = Input::new(&[3]).tensor();
    let h = Dense::new(5).activation("relu").on(&a).unwrap();
    let h = BatchNormalization::new().on(&h).unwrap();
    let o = Dense::new(3).activation("softmax").on(&h).unwrap();
    let mut fun = Model::new(&[a], &[o]).unwrap();
    fun.set_weights(&seq.get_weights().unwrap()).unwrap();
    let sgd = || Optimizer::sgd().learning_rate(0.1).momentum(0.5);
    let loss = "sparse_categorical_crossentropy";
    seq.compile(sgd(), loss, ["accuracy"]).unwrap();
    fun.compile(sgd(), loss, ["accuracy"]).unwrap();
    let hs = seq.fit(&x, &y, opts()).unwrap();
    let hf = fun.fit(&x, &y, opts()).unwrap();
    assert_eq!(hs.get("loss"), hf.get("loss"));
    let (ws, wf) = (seq.get_weights().unwrap(), fun.get_weights().unwrap());
    assert_eq!(ws.len(), 8);
    for (s, f) in ws.iter().zip(&wf) {
        assert_eq!(s.to_f64_vec(), f.to_f64_vec());
    }
    assert_eq!(
        seq.predict(&x).unwrap().to_f64_vec(),
        fun.predict(&x).unwrap().to_f64_vec()
    );
    let logs = fun.evaluate(&x, &y).unwrap();
    assert!(logs["accuracy"] >= 0.0 && logs.contains_key("loss"));
    // The saved model has a serving signature over the named input.
    let dir = tempfile::tempdir().unwrap();
    fun.save(dir.path()).unwrap();
    assert!(dir.path().join("saved_model.pb").exists());
}

#[test]
fn two_input_fit_equals_the_concatenated_sequential() {
    clear_session();
    set_session_options(SessionOptions::with_threads(1));
    let n = 40;
    let xa: Vec<f32> = (0..n * 2).map(|i| ((i * 5) % 7) as f32 / 7.0).collect();
    let xb: Vec<f32> = (0..n * 3).map(|i| ((i * 3) % 11) as f32 / 11.0).collect();
    let y: Vec<f32> = (0..n).map(|i| (i % 3) as f32).collect();
    let joined: Vec<f32> = (0..n)
        .flat_map(|i| {
            let (a, b) = (&xa[i * 2..i * 2 + 2], &xb[i * 3..i * 3 + 3]);
            a.iter().chain(b).copied().collect::<Vec<_>>()
        })
        .collect();
    let (xa, xb, y) = (t(&[n, 2], &xa), t(&[n, 3], &xb), t(&[n], &y));
    let joined = t(&[n, 5], &joined);
    let opts = || {
        FitOptions::new()
            .epochs(3)
            .batch_size(8)
            .shuffle(false)
            .verbose(0)
    };
    let sgd = || Optimizer::sgd().learning_rate(0.2);
    let loss = "sparse_categorical_crossentropy";

    let mut seq = Sequential::new(vec![
        Input::new(&[5]).into(),
        Dense::new(3).activation("softmax").into(),
    ])
    .unwrap();
    let a = Input::new(&[2]).tensor();
    let b = Input::new(&[3]).tensor();
    let cat = Concatenate::new().on_many(&[&a, &b]).unwrap();
    let out = Dense::new(3).activation("softmax").on(&cat).unwrap();
    let mut fun = Model::new(&[a, b], &[out]).unwrap();
    fun.set_weights(&seq.get_weights().unwrap()).unwrap();
    seq.compile(sgd(), loss, ["accuracy"]).unwrap();
    fun.compile(sgd(), loss, ["accuracy"]).unwrap();
    let hs = seq.fit(&joined, &y, opts()).unwrap();
    let hf = fun.fit_many(&[xa.clone(), xb.clone()], &y, opts()).unwrap();
    assert_eq!(hs.get("loss"), hf.get("loss"));
    let (ws, wf) = (seq.get_weights().unwrap(), fun.get_weights().unwrap());
    for (s, f) in ws.iter().zip(&wf) {
        assert_eq!(s.to_f64_vec(), f.to_f64_vec());
    }
    let es = seq.evaluate(&joined, &y).unwrap();
    let ef = fun.evaluate_many(&[xa.clone(), xb.clone()], &y).unwrap();
    assert_eq!(es, ef);
    // A missing input array, or one of the wrong shape, is an error naming the input.
    let msg = fun
        .fit_many(std::slice::from_ref(&xa), &y, opts())
        .unwrap_err()
        .to_string();
    assert!(msg.contains("expects 2 input arrays"), "{msg}");
    let msg = fun
        .fit_many(&[xa.clone(), xa], &y, opts())
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("input_layer_2") && msg.contains("(None, 3)"),
        "{msg}"
    );
}

#[test]
fn several_outputs_predict_and_train() {
    clear_session();
    let a = Input::new(&[2]).tensor();
    let o1 = Dense::new(1).on(&a).unwrap();
    let o2 = Dense::new(2).on(&a).unwrap();
    let mut m = Model::new(&[a], &[o1, o2]).unwrap();
    let out = m.predict_many(&[t(&[3, 2], &[0.0; 6])], 32).unwrap();
    assert_eq!(out[0].shape(), &[3, 1]);
    assert_eq!(out[1].shape(), &[3, 2]);
    // One loss for both outputs (tests/keras_multi_output.rs checks the numbers).
    m.compile("sgd", "mse", Vec::<&str>::new()).unwrap();
    let x = t(&[3, 2], &[1.0, 0.0, 0.0, 1.0, 1.0, 1.0]);
    let ys = [t(&[3, 1], &[1.0, 2.0, 3.0]), t(&[3, 2], &[0.0; 6])];
    let first = m.evaluate_outputs(std::slice::from_ref(&x), &ys).unwrap();
    let h = m
        .fit_outputs(
            std::slice::from_ref(&x),
            &ys,
            FitOptions::new().epochs(20).verbose(0),
        )
        .unwrap();
    assert!(h.get("dense_loss").is_some() && h.get("dense_1_loss").is_some());
    let last = m.evaluate_outputs(std::slice::from_ref(&x), &ys).unwrap();
    assert!(last["loss"] < first["loss"], "{first:?} -> {last:?}");
}

/// Each value of `got` within 1e-5 of Keras's.
fn assert_close(what: &str, got: &Tensor, want: &Tensor) {
    assert_eq!(got.shape(), want.shape(), "{what}");
    keras_json::assert_close(what, &got.to_f64_vec(), &want.to_f64_vec(), 1e-5);
}

/// The tensor references of a functional config: each layer's calls, and the ends.
fn wiring(config: &serde_json::Value) -> Vec<String> {
    let c = &config["config"];
    let mut out = vec![
        c["input_layers"].to_string(),
        c["output_layers"].to_string(),
    ];
    for l in c["layers"].as_array().unwrap() {
        let mut refs = Vec::new();
        for node in l["inbound_nodes"].as_array().unwrap() {
            for arg in node["args"].as_array().unwrap() {
                let arg = arg.as_array().cloned().unwrap_or_else(|| vec![arg.clone()]);
                for t in arg {
                    refs.push(t["config"]["keras_history"].to_string());
                }
            }
        }
        out.push(format!("{} {} {refs:?}", l["name"], l["class_name"]));
    }
    out.sort();
    out
}

#[test]
fn keras_functional_config_predicts_as_keras() {
    clear_session();
    let case: serde_json::Value =
        serde_json::from_str(include_str!("../graphs/keras/functional.json")).unwrap();
    let mut model = functional_from_json(&case["config"].to_string()).unwrap();
    assert_eq!(model.num_calls(), 5);
    model.set_weights(&tensors(&case["weights"])).unwrap();
    let xs = tensors(&case["x"]);
    let want = tensors(&case["y"]);
    let got = model.predict_many(&xs, 32).unwrap();
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_close(&format!("output {i}"), g, w);
    }
    // Our config wires the layers as Keras's does, and reads back to the same model.
    let ours: serde_json::Value = serde_json::from_str(&model.to_json()).unwrap();
    assert_eq!(ours["class_name"], "Functional");
    assert_eq!(wiring(&ours), wiring(&case["config"]));
    let mut again = functional_from_json(&model.to_json()).unwrap();
    again.set_weights(&tensors(&case["weights"])).unwrap();
    for (g, w) in again.predict_many(&xs, 2).unwrap().iter().zip(&want) {
        assert_close("round trip", g, w);
    }
    let bad = r#"{"class_name": "Functional", "config": {"layers": [
        {"class_name": "Dense", "name": "d", "config": {"name": "d", "units": 2},
         "inbound_nodes": [{"args": [{"config": {"keras_history": ["nowhere", 0, 0]}}]}]}],
        "input_layers": ["nowhere", 0, 0], "output_layers": ["d", 0, 0]}}"#;
    let msg = functional_from_json(bad).err().unwrap().to_string();
    assert!(msg.contains("'d'"), "{msg}");
}

//! The functional API: layers called on symbolic tensors, several inputs and outputs,
//! shared layers, merge layers, and the shared trainer (a functional chain trains as
//! the same Sequential does, step for step).

use rustflow::keras::layers::{Add, BatchNormalization, Concatenate, Dense, Input, Multiply};
use rustflow::keras::optimizers::Optimizer;
use rustflow::keras::{
    clear_session, set_session_options, Apply, FitOptions, LayerRef, Model, Sequential,
};
use rustflow::{SessionOptions, Tensor};

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

//! The Keras layer: Sequential with lazy build, summary, compile / fit / evaluate /
//! predict, callbacks, saving and the model config.

use rustflow::keras::callbacks::{
    CSVLogger, EarlyStopping, LambdaCallback, LearningRateScheduler, ModelCheckpoint,
    ReduceLROnPlateau, TensorBoard,
};
use rustflow::keras::initializers::Initializer;
use rustflow::keras::layers::{Dense, Dropout, Flatten, Input};
use rustflow::keras::losses::Loss;
use rustflow::keras::metrics::Metric;
use rustflow::keras::optimizers::{LearningRate, Optimizer};
use rustflow::keras::{
    load_model, model_from_json, set_random_seed, set_session_options, CallbackModel, FitOptions,
    Sequential,
};
use rustflow::{SessionOptions, Tensor};

/// A small 3-class problem: the class is the index of the largest of three features.
fn blobs(n: usize) -> (Tensor, Tensor) {
    let mut x = Vec::with_capacity(n * 4);
    let mut y = Vec::with_capacity(n);
    let mut s = 12345u64;
    let mut next = || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((s >> 33) as f32) / (1u64 << 31) as f32
    };
    for _ in 0..n {
        let row = [next(), next(), next(), next()];
        let label = (0..3).fold(0, |b, k| if row[k] > row[b] { k } else { b });
        x.extend_from_slice(&row);
        y.push(label as i32);
    }
    (Tensor::new(&[n, 4], x).unwrap(), Tensor::vector(y))
}

fn mlp() -> Sequential {
    set_session_options(SessionOptions::with_threads(1));
    Sequential::new(vec![
        Input::new(&[4]).into(),
        Dense::new(16).activation("relu").into(),
        Dense::new(3).activation("softmax").into(),
    ])
    .unwrap()
}

#[test]
fn summary_matches_keras() {
    let mut model = Sequential::new(vec![
        Dense::new(128).activation("relu").into(),
        Dense::new(10).activation("softmax").into(),
    ])
    .unwrap();
    // What Keras 3.15 prints for the same model (python3 -c "...; m.summary()").
    let unbuilt = "\
Model: \"sequential\"
┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━┓
┃ Layer (type)                    ┃ Output Shape           ┃       Param # ┃
┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━┩
│ dense (Dense)                   │ ?                      │   0 (unbuilt) │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ dense_1 (Dense)                 │ ?                      │   0 (unbuilt) │
└─────────────────────────────────┴────────────────────────┴───────────────┘
 Total params: 0 (0.00 B)
 Trainable params: 0 (0.00 B)
 Non-trainable params: 0 (0.00 B)
";
    assert_eq!(model.summary(), unbuilt);
    model.build(&[None, Some(64)]).unwrap();
    let built = "\
Model: \"sequential\"
┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━┓
┃ Layer (type)                    ┃ Output Shape           ┃       Param # ┃
┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━┩
│ dense (Dense)                   │ (None, 128)            │         8,320 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ dense_1 (Dense)                 │ (None, 10)             │         1,290 │
└─────────────────────────────────┴────────────────────────┴───────────────┘
 Total params: 9,610 (37.54 KB)
 Trainable params: 9,610 (37.54 KB)
 Non-trainable params: 0 (0.00 B)
";
    assert_eq!(model.summary(), built);
    assert_eq!(model.count_params(), 9610);
}

#[test]
fn compiled_summary_counts_optimizer_params_as_keras() {
    let mut model = Sequential::new(vec![
        Input::new(&[8]).into(),
        Dense::new(16).activation("relu").into(),
        Dense::new(3).activation("softmax").into(),
    ])
    .unwrap();
    model
        .compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
        .unwrap();
    let s = model.summary();
    // Keras 3.15: 195 weights, Adam's two slots each plus iteration and learning rate.
    assert!(s.contains(" Total params: 587 (2.30 KB)\n"), "{s}");
    assert!(s.contains(" Trainable params: 195 (780.00 B)\n"), "{s}");
    assert!(s.contains(" Optimizer params: 392 (1.54 KB)\n"), "{s}");
}

#[test]
fn names_are_unique_per_class_and_add_pop_rebuild() {
    let mut model = Sequential::new(vec![]).unwrap();
    model.add(Dense::new(4)).unwrap();
    model.add(Dense::new(2)).unwrap();
    assert_eq!(
        format!("{:?}", model.layers()),
        "[<Dense name=dense, built=False>, <Dense name=dense_1, built=False>]"
    );
    model.build(&[None, Some(3)]).unwrap();
    let w_before = model.get_weights().unwrap();
    assert_eq!(w_before.len(), 4);
    assert_eq!(w_before[0].shape(), &[3, 4]);
    let popped = model.pop().unwrap();
    assert_eq!(popped.name(), "dense_1");
    assert_eq!(model.layers().len(), 1);
    model.add(Dense::new(5)).unwrap();
    // The first layer keeps its variables; the new one is built from (None, 4).
    let w = model.get_weights().unwrap();
    assert_eq!(w[0].to_f64_vec(), w_before[0].to_f64_vec());
    assert_eq!(w[2].shape(), &[4, 5]);
    let out = model.call(&Tensor::full(&[2, 3], 1.0f32)).unwrap();
    assert_eq!(out.shape(), &[2, 5]);
}

#[test]
fn dense_matches_hand_computation() {
    let mut model = Sequential::new(vec![Dense::new(2).activation("relu").into()]).unwrap();
    model.build(&[None, Some(3)]).unwrap();
    let kernel = Tensor::new(&[3, 2], vec![1.0f32, -1.0, 0.5, 2.0, -2.0, 0.25]).unwrap();
    let bias = Tensor::vector(vec![0.1f32, -0.2]);
    model.set_weights(&[kernel, bias]).unwrap();
    let x = Tensor::new(&[2, 3], vec![1.0f32, 2.0, 3.0, -1.0, 0.0, 1.0]).unwrap();
    let y = model.predict(&x).unwrap();
    // [1,2,3]·K = [1+1-6, -1+4+0.75] = [-4, 3.75]; +b, relu -> [0, 3.55]
    // [-1,0,1]·K = [-1-2, 1+0.25] = [-3, 1.25]; +b, relu -> [0, 1.05]
    let got = y.as_slice::<f32>().unwrap();
    let want = [0.0, 3.55, 0.0, 1.05];
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < 1e-6, "{got:?}");
    }
}

#[test]
fn bad_input_is_a_clear_error() {
    let mut model = mlp();
    let err = model
        .call(&Tensor::full(&[1, 5], 0.0f32))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("dense") && err.contains("(None, 4)") && err.contains("(1, 5)"),
        "{err}"
    );
    // fit before compile
    let (x, y) = blobs(8);
    let err = model
        .fit(&x, &y, FitOptions::new().verbose(0))
        .unwrap_err()
        .to_string();
    assert!(err.contains("compile()"), "{err}");
    // sparse labels of the wrong rank
    model
        .compile("sgd", "sparse_categorical_crossentropy", ["accuracy"])
        .unwrap();
    let bad_y = Tensor::full(&[8, 3], 0i32);
    let err = model
        .fit(&x, &bad_y, FitOptions::new().verbose(0))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("sparse_categorical_crossentropy")
            && err.contains("(8, 3)")
            && err.contains("(None, 3)"),
        "{err}"
    );
    // unknown names, bad configs
    assert!(model.compile("adamm", "mse", ["accuracy"]).is_err());
    let err = Sequential::new(vec![
        Input::new(&[4]).into(),
        Dense::new(3).activation("relux").into(),
    ])
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("dense") && err.contains("relux"), "{err}");
    let err = Sequential::new(vec![Input::new(&[4]).into(), Dense::new(0).into()])
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("units=0"), "{err}");
    assert!(model_from_json("{\"class_name\": \"Sequential\"").is_err());
    let err = model_from_json(
        r#"{"class_name": "Sequential", "config": {"layers": [{"class_name": "Dense", "config": {"name": "d", "units": -3}}]}}"#,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("'d'") && err.contains("units"), "{err}");
}

#[test]
fn fit_learns_and_history_has_keras_keys() {
    set_random_seed(7);
    let (x, y) = blobs(600);
    let mut model = mlp();
    model
        .compile(
            Optimizer::adam().learning_rate(0.01),
            "sparse_categorical_crossentropy",
            ["accuracy"],
        )
        .unwrap();
    let before = model.evaluate(&x, &y).unwrap()["loss"];
    let history = model
        .fit(
            &x,
            &y,
            FitOptions::new()
                .epochs(15)
                .batch_size(32)
                .validation_split(0.2)
                .verbose(0),
        )
        .unwrap();
    let keys: Vec<&String> = history.history.keys().collect();
    assert_eq!(keys, ["accuracy", "loss", "val_accuracy", "val_loss"]);
    assert_eq!(history.epoch, (0..15).collect::<Vec<_>>());
    let acc = history.get("val_accuracy").unwrap();
    assert!(*acc.last().unwrap() > 0.85, "{acc:?}");
    let logs = model.evaluate(&x, &y).unwrap();
    assert!(logs["loss"] < before * 0.5, "{before} -> {}", logs["loss"]);
    // predict in batches equals one call
    let p1 = model.predict(&x).unwrap();
    let p2 = model.call(&x).unwrap();
    assert_eq!(p1.to_f64_vec(), p2.to_f64_vec());
    // train_on_batch returns the batch's loss and metrics
    let logs = model.train_on_batch(&x, &y).unwrap();
    assert!(logs.contains_key("loss") && logs.contains_key("accuracy"));
}

#[test]
fn every_optimizer_and_loss_trains() {
    let (x, y) = blobs(200);
    let onehot: Vec<f32> = y
        .as_slice::<i32>()
        .unwrap()
        .iter()
        .flat_map(|&l| (0..3).map(move |k| (k == l) as i32 as f32))
        .collect();
    let onehot = Tensor::new(&[200, 3], onehot).unwrap();
    let optimizers = [
        Optimizer::sgd().learning_rate(0.1),
        Optimizer::sgd()
            .learning_rate(0.05)
            .momentum(0.9)
            .nesterov(true),
        Optimizer::adam().learning_rate(0.01),
        Optimizer::adamw().learning_rate(0.01),
        Optimizer::rmsprop().learning_rate(0.01),
        Optimizer::adagrad().learning_rate(0.1),
        Optimizer::sgd().learning_rate(LearningRate::exponential_decay(0.2, 10, 0.9)),
        Optimizer::adam().learning_rate(LearningRate::cosine_decay(0.01, 100)),
    ];
    for opt in optimizers {
        let name = format!("{:?}", opt.rule());
        for (loss, labels) in [
            (
                Loss::CategoricalCrossentropy { from_logits: false },
                &onehot,
            ),
            (Loss::MeanSquaredError, &onehot),
            (Loss::Huber { delta: 1.0 }, &onehot),
            (
                Loss::SparseCategoricalCrossentropy { from_logits: false },
                &y,
            ),
        ] {
            let mut model = mlp();
            model
                .compile(opt.clone(), loss.clone(), [Metric::Accuracy])
                .unwrap();
            let before = model.evaluate(&x, labels).unwrap()["loss"];
            model
                .fit(
                    &x,
                    labels,
                    FitOptions::new().epochs(5).batch_size(16).verbose(0),
                )
                .unwrap();
            let after = model.evaluate(&x, labels).unwrap()["loss"];
            assert!(after < before, "{name} {loss:?}: {before} -> {after}");
        }
    }
}

#[test]
fn losses_and_metrics_match_hand_values() {
    // Binary problem with fixed weights: a 1-unit sigmoid Dense over 2 features.
    let mut model = Sequential::new(vec![
        Input::new(&[2]).into(),
        Dense::new(1).activation("sigmoid").into(),
    ])
    .unwrap();
    model
        .compile(
            "sgd",
            "binary_crossentropy",
            ["accuracy", "precision", "recall", "mae"],
        )
        .unwrap();
    model
        .set_weights(&[
            Tensor::new(&[2, 1], vec![1.0f32, -1.0]).unwrap(),
            Tensor::vector(vec![0.0f32]),
        ])
        .unwrap();
    let x = Tensor::new(&[4, 2], vec![2.0f32, 0.0, 0.0, 2.0, 1.0, 0.0, 0.0, 0.5]).unwrap();
    let y = Tensor::new(&[4, 1], vec![1.0f32, 0.0, 0.0, 1.0]).unwrap();
    let logs = model.evaluate(&x, &y).unwrap();
    let z: [f64; 4] = [2.0, -2.0, 1.0, -0.5];
    let t = [1.0, 0.0, 0.0, 1.0];
    let p: Vec<f64> = z.iter().map(|z| 1.0 / (1.0 + (-z).exp())).collect();
    let bce: f64 = z
        .iter()
        .zip(t)
        .map(|(z, t)| z.max(0.0) - z * t + (-z.abs()).exp().ln_1p())
        .sum::<f64>()
        / 4.0;
    let mae: f64 = p.iter().zip(t).map(|(p, t)| (p - t).abs()).sum::<f64>() / 4.0;
    // predictions > 0.5: [1, 0, 1, 0]; truth [1, 0, 0, 1]: tp 1, fp 1, fn 1.
    assert!((logs["loss"] - bce).abs() < 1e-6, "{logs:?} {bce}");
    assert!((logs["accuracy"] - 0.5).abs() < 1e-7, "{logs:?}");
    assert!((logs["precision"] - 0.5).abs() < 1e-7, "{logs:?}");
    assert!((logs["recall"] - 0.5).abs() < 1e-7, "{logs:?}");
    assert!((logs["mae"] - mae).abs() < 1e-6, "{logs:?} {mae}");
}

#[test]
fn callbacks_early_stopping_checkpoint_lr_csv() {
    set_random_seed(3);
    let (x, y) = blobs(300);
    let dir = tempfile::tempdir().unwrap();
    let mut model = mlp();
    model
        .compile(
            Optimizer::sgd().learning_rate(0.5),
            "sparse_categorical_crossentropy",
            ["accuracy"],
        )
        .unwrap();
    // A scheduler that halves the rate each epoch, a plateau reducer that never fires
    // (patience 100), a CSV log, a best-only checkpoint and a user callback.
    let mut sched = LearningRateScheduler::new(|epoch, lr| if epoch == 0 { lr } else { lr * 0.5 });
    let csv_path = dir.path().join("log.csv");
    let mut csv = CSVLogger::new(&csv_path);
    let ckpt_path = dir.path().join("best");
    let mut ckpt = ModelCheckpoint::new(ckpt_path.to_string_lossy().to_string())
        .monitor("val_loss")
        .save_best_only(true);
    let mut seen = Vec::new();
    let mut user = LambdaCallback::on_epoch_end(|epoch, logs| seen.push((epoch, logs["loss"])));
    let history = model
        .fit(
            &x,
            &y,
            FitOptions::new()
                .epochs(4)
                .validation_split(0.25)
                .verbose(0)
                .callback(&mut sched)
                .callback(&mut csv)
                .callback(&mut ckpt)
                .callback(&mut user),
        )
        .unwrap();
    let lrs = history.get("learning_rate").unwrap();
    assert_eq!(lrs, [0.5, 0.25, 0.125, 0.0625]);
    assert_eq!(seen.len(), 4);
    let text = std::fs::read_to_string(&csv_path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "epoch,accuracy,learning_rate,loss,val_accuracy,val_loss"
    );
    assert_eq!(lines.len(), 5);
    assert!(!ckpt.saved.is_empty());
    let best: Sequential = load_model(&ckpt_path).unwrap();
    assert_eq!(best.layers().len(), 2);

    // EarlyStopping on a metric that cannot improve: stops after patience epochs and
    // restores the weights of the best epoch.
    let mut stop = EarlyStopping::new()
        .monitor("loss")
        .patience(1)
        .min_delta(1e9)
        .restore_best_weights(true);
    let mut first_weights = Vec::new();
    let mut grab = LambdaCallback::on_epoch_end(|_, _| {});
    let _ = &mut grab;
    let history = model
        .fit(
            &x,
            &y,
            FitOptions::new().epochs(10).verbose(0).callback(&mut stop),
        )
        .unwrap();
    assert_eq!(history.epoch.len(), 2, "{:?}", history.epoch);
    assert_eq!(stop.stopped_epoch, 1);
    first_weights.extend(model.get_weights().unwrap());
    assert_eq!(first_weights.len(), 4);

    // ReduceLROnPlateau with patience 0 halves the rate after the second epoch (the
    // first always improves on the initial best, as in Keras).
    let mut plateau = ReduceLROnPlateau::new()
        .monitor("loss")
        .patience(0)
        .min_delta(1e9)
        .factor(0.5);
    let lr0 = model.learning_rate().unwrap();
    model
        .fit(
            &x,
            &y,
            FitOptions::new()
                .epochs(2)
                .verbose(0)
                .callback(&mut plateau),
        )
        .unwrap();
    let lr1 = model.learning_rate().unwrap();
    assert!((lr1 - lr0 * 0.5).abs() < 1e-9, "{lr0} -> {lr1}");
}

#[test]
fn save_load_predict_evaluate_and_resume() {
    set_random_seed(11);
    let (x, y) = blobs(256);
    let mut model = mlp();
    model
        .compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
        .unwrap();
    model
        .fit(&x, &y, FitOptions::new().epochs(2).verbose(0))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model");
    model.save(&path).unwrap();
    let mut loaded: Sequential = load_model(&path).unwrap();
    assert_eq!(
        loaded.predict(&x).unwrap().to_f64_vec(),
        model.predict(&x).unwrap().to_f64_vec()
    );
    assert_eq!(
        loaded.evaluate(&x, &y).unwrap(),
        model.evaluate(&x, &y).unwrap()
    );
    // Continuing training from the saved optimizer state gives the same weights as
    // continuing the original.
    let opts = || FitOptions::new().epochs(1).shuffle(false).verbose(0);
    model.fit(&x, &y, opts()).unwrap();
    loaded.fit(&x, &y, opts()).unwrap();
    for (a, b) in model
        .get_weights()
        .unwrap()
        .iter()
        .zip(loaded.get_weights().unwrap())
    {
        assert_eq!(a.to_f64_vec(), b.to_f64_vec());
    }
    // The SavedModel runs with the generic loader through serving_default.
    let sm =
        rustflow::saved_model::load(&path, &["serve"], SessionOptions::with_threads(1)).unwrap();
    let sig = sm.signature("serving_default").unwrap();
    assert!(
        sig.inputs.contains_key("input_layer"),
        "{:?}",
        sig.inputs.keys()
    );
    assert!(sig.outputs.contains_key("output_0"));
}

#[test]
fn to_json_round_trips_and_reads_keras_output() {
    let mut model = Sequential::new(vec![
        Dense::new(128).activation("relu").into(),
        Dropout::new(0.2).into(),
        Dense::new(10).activation("softmax").into(),
    ])
    .unwrap();
    model.build(&[None, Some(64)]).unwrap();
    let text = model.to_json();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["class_name"], "Sequential");
    assert_eq!(v["config"]["layers"][0]["class_name"], "InputLayer");
    assert_eq!(v["config"]["layers"][1]["config"]["units"], 128);
    assert_eq!(
        v["config"]["build_input_shape"],
        serde_json::json!([null, 64])
    );
    let mut again = model_from_json(&text).unwrap();
    assert_eq!(again.count_params(), model.count_params());
    assert_eq!(again.summary(), model.summary());
    // What Keras 3.15 writes for Sequential([Input((8,)), Dense(16, relu), Dense(3, softmax)]).
    let keras = include_str!("../graphs/keras/sequential_config.json");
    let mut from_keras = model_from_json(keras).unwrap();
    assert_eq!(from_keras.count_params(), 8 * 16 + 16 + 16 * 3 + 3);
    assert!(from_keras.compiled());
    let out = from_keras.predict(&Tensor::full(&[2, 8], 0.1f32)).unwrap();
    assert_eq!(out.shape(), &[2, 3]);
    let _ = again.predict(&Tensor::full(&[1, 64], 0.0f32)).unwrap();
}

#[test]
fn dropout_is_active_only_in_training() {
    let mut model = Sequential::new(vec![
        Input::new(&[1000]).into(),
        Dropout::new(0.5).into(),
        Flatten::new().into(),
    ])
    .unwrap();
    let x = Tensor::full(&[1, 1000], 1.0f32);
    assert_eq!(model.predict(&x).unwrap().to_f64_vec(), vec![1.0; 1000]);
    model.compile("sgd", "mse", ["mae"]).unwrap();
    // In training, about half the units are 0 and the rest 2; the mean stays near 1:
    // the MAE against ones is then near 1 (every unit is off by exactly 1).
    let logs = model.train_on_batch(&x, &x).unwrap();
    assert!((logs["mae"] - 1.0).abs() < 1e-6, "{logs:?}");
    let loss = logs["loss"];
    assert!((loss - 1.0).abs() < 1e-6, "{loss}");
}

#[test]
fn fit_evaluate_predict_take_a_dataset() {
    use rustflow::data::{Dataset, Element};
    set_random_seed(5);
    let (x, y) = blobs(320);
    let pairs = Element::from(vec![Element::from(x.clone()), Element::from(y.clone())]);
    let ds = Dataset::from_tensor_slices(pairs)
        .unwrap()
        .shuffle(320, Some(1), true)
        .batch(32, false);
    let mut model = mlp();
    model
        .compile(
            Optimizer::adam().learning_rate(0.01),
            "sparse_categorical_crossentropy",
            ["accuracy"],
        )
        .unwrap();
    let history = model
        .fit_dataset(&ds, FitOptions::new().epochs(10).verbose(0))
        .unwrap();
    let loss = history.get("loss").unwrap();
    assert!(loss[9] < loss[0] * 0.7, "{loss:?}");
    // evaluate on the dataset equals evaluate on the arrays (same samples).
    let a = model.evaluate_dataset(&ds).unwrap();
    let b = model.evaluate(&x, &y).unwrap();
    assert!((a["accuracy"] - b["accuracy"]).abs() < 1e-6, "{a:?} {b:?}");
    assert!((a["loss"] - b["loss"]).abs() < 1e-5, "{a:?} {b:?}");
    let xs = Dataset::from_tensor_slices(x.clone())
        .unwrap()
        .batch(50, false);
    let p = model.predict_dataset(&xs).unwrap();
    assert_eq!(p.to_f64_vec(), model.predict(&x).unwrap().to_f64_vec());
}

/// What one TensorBoard event file holds: `(tag, step, simple_value)` of every scalar,
/// `(tag, step)` of every histogram, and whether a graph was written.
#[derive(Default)]
struct Logged {
    scalars: Vec<(String, i64, f32)>,
    histograms: Vec<(String, i64)>,
    graph: bool,
}

/// The events of the one event file in `dir`.
fn tensorboard_events(dir: &std::path::Path) -> Logged {
    use rustflow::proto::tf::{event::What, summary::value::Value};
    let files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let mut logged = Logged::default();
    for e in rustflow::summary::read_events(&files[0]).unwrap() {
        match e.what {
            Some(What::GraphDef(_)) => logged.graph = true,
            Some(What::Summary(s)) => {
                for v in s.value {
                    match v.value {
                        Some(Value::SimpleValue(x)) => logged.scalars.push((v.tag, e.step, x)),
                        Some(Value::Histo(_)) => logged.histograms.push((v.tag, e.step)),
                        other => panic!("{other:?}"),
                    }
                }
            }
            _ => {}
        }
    }
    logged
}

#[test]
fn tensorboard_callback_writes_keras_layout() {
    set_random_seed(5);
    let (x, y) = blobs(120);
    let dir = tempfile::tempdir().unwrap();
    let mut model = mlp();
    model
        .compile(
            Optimizer::sgd().learning_rate(0.1),
            "sparse_categorical_crossentropy",
            ["accuracy"],
        )
        .unwrap();
    let mut tb = TensorBoard::new(dir.path()).histogram_freq(2);
    let history = model
        .fit(
            &x,
            &y,
            FitOptions::new()
                .epochs(3)
                .validation_split(0.25)
                .verbose(0)
                .callback(&mut tb),
        )
        .unwrap();
    let train = tensorboard_events(&dir.path().join("train"));
    assert!(train.graph);
    let series = |events: &[(String, i64, f32)], tag: &str| -> Vec<(i64, f32)> {
        events
            .iter()
            .filter(|e| e.0 == tag)
            .map(|e| (e.1, e.2))
            .collect()
    };
    let from_history = |key: &str| -> Vec<(i64, f32)> {
        let h = history.get(key).unwrap();
        h.iter()
            .enumerate()
            .map(|(i, &v)| (i as i64, v as f32))
            .collect()
    };
    assert_eq!(series(&train.scalars, "epoch_loss"), from_history("loss"));
    assert_eq!(
        series(&train.scalars, "epoch_accuracy"),
        from_history("accuracy")
    );
    let lr: Vec<(i64, f32)> = (0..3).map(|i| (i, 0.1f32)).collect();
    assert_eq!(series(&train.scalars, "epoch_learning_rate"), lr);
    let validation = tensorboard_events(&dir.path().join("validation"));
    assert!(validation.histograms.is_empty() && !validation.graph);
    let val = &validation.scalars;
    assert_eq!(series(val, "epoch_loss"), from_history("val_loss"));
    assert_eq!(series(val, "epoch_accuracy"), from_history("val_accuracy"));
    // Every weight at epochs 0 and 2 (histogram_freq 2), named by its path.
    let paths: Vec<String> = model.weights().into_iter().map(|w| w.path).collect();
    // A layer's weights share its scope, as in Keras: dense/kernel, dense/bias, ...
    for pair in paths.chunks(2) {
        let (k, b) = (pair[0].rsplit_once('/'), pair[1].rsplit_once('/'));
        assert!(
            matches!((k, b), (Some((s1, "kernel")), Some((s2, "bias"))) if s1 == s2),
            "{paths:?}"
        );
    }
    let mut want: Vec<(String, i64)> = [0, 2]
        .iter()
        .flat_map(|&step| paths.iter().map(move |p| (format!("{p}/histogram"), step)))
        .collect();
    let mut got = train.histograms;
    want.sort();
    got.sort();
    assert_eq!(got, want);
}

#[test]
fn sgd_momentum_follows_keras_when_the_learning_rate_changes() {
    // w·1 with w = 1, MSE against 0: the gradient is 2w. SGD(ExponentialDecay(0.1, 1, 0.5),
    // momentum=0.9) under Keras 3.x: m = 0.9·m − lr·g; w += m (Nesterov: w += 0.9·m − lr·g).
    // Weights after three train_on_batch calls, as Keras 3 gives them (TensorFlow 1's
    // ApplyMomentum, which keeps m / lr, gives 0.8, 0.63, ... instead).
    let cases = [
        (false, [0.8f32, 0.54, 0.279]),
        (true, [0.62, 0.3402, 0.111_861_02]),
    ];
    for (nesterov, want) in cases {
        let mut model = Sequential::new(vec![
            Input::new(&[1]).into(),
            Dense::new(1)
                .use_bias(false)
                .kernel_initializer(Initializer::Ones)
                .into(),
        ])
        .unwrap();
        let lr = LearningRate::exponential_decay(0.1, 1, 0.5);
        let sgd = Optimizer::sgd()
            .learning_rate(lr)
            .momentum(0.9)
            .nesterov(nesterov);
        model.compile(sgd, "mse", Vec::<&str>::new()).unwrap();
        let x = Tensor::new(&[1, 1], vec![1.0f32]).unwrap();
        let y = Tensor::new(&[1, 1], vec![0.0f32]).unwrap();
        for w in want {
            model.train_on_batch(&x, &y).unwrap();
            let got = model.get_weights().unwrap()[0].as_slice::<f32>().unwrap()[0];
            assert!((got - w).abs() < 1e-6, "nesterov {nesterov}: {got} vs {w}");
        }
    }
}

#[test]
fn save_weights_and_load_weights_as_a_tensorflow_checkpoint() {
    set_random_seed(5);
    let (x, y) = blobs(120);
    let dir = tempfile::tempdir().unwrap();
    let mut model = mlp();
    model
        .compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
        .unwrap();
    // ModelCheckpoint(save_weights_only=True) writes a checkpoint per epoch.
    let ckpt = dir.path().join("weights_{epoch}");
    let mut every =
        ModelCheckpoint::new(ckpt.to_string_lossy().to_string()).save_weights_only(true);
    model
        .fit(
            &x,
            &y,
            FitOptions::new().epochs(2).verbose(0).callback(&mut every),
        )
        .unwrap();
    let prefix = dir.path().join("weights_2");
    assert!(dir.path().join("weights_2.index").exists());
    let trained = model.predict(&x).unwrap();

    // A fresh model of the same architecture predicts the same after load_weights.
    let mut fresh = mlp();
    fresh.build(&[None, Some(x.shape()[1])]).unwrap();
    assert_ne!(fresh.predict(&x).unwrap(), trained);
    fresh.load_weights(&prefix).unwrap();
    assert_eq!(fresh.predict(&x).unwrap(), trained);
    // Keyed by position, as tf.keras's TensorFlow-format checkpoints.
    let reader = rustflow::saved_model::BundleReader::open(&prefix).unwrap();
    let first = reader
        .read("layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE")
        .unwrap();
    assert_eq!(first, model.get_weights().unwrap()[0]);
    assert!(reader
        .read("layer_with_weights-1/bias/.ATTRIBUTES/VARIABLE_VALUE")
        .is_ok());

    // Another architecture: an error naming the weight; the model keeps its weights.
    let mut other = Sequential::new(vec![
        Input::new(&[x.shape()[1]]).into(),
        Dense::new(3).into(),
        Dense::new(2).into(),
    ])
    .unwrap();
    other.build(&[None, Some(x.shape()[1])]).unwrap();
    let before = other.get_weights().unwrap();
    let err = other.load_weights(&prefix).unwrap_err().to_string();
    assert!(
        err.contains("layer_with_weights-0/kernel") && err.contains("in the checkpoint"),
        "{err}"
    );
    assert_eq!(other.get_weights().unwrap(), before);
    // A missing checkpoint is an error, not a panic.
    assert!(fresh.load_weights(&dir.path().join("nothing")).is_err());
}

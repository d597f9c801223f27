//! The layers beyond Dense: Keras's summary (output shapes, parameter counts), their
//! Keras 3 configs both ways, training with them, and clear build errors.

use rustflow::keras::layers::{
    AveragePooling2D, BatchNormalization, Conv2D, Dense, Embedding, Flatten,
    GlobalAveragePooling1D, GlobalAveragePooling2D, Input, LayerNormalization, MaxPooling2D,
    Reshape, ZeroPadding2D,
};
use rustflow::keras::losses::Loss;
use rustflow::keras::{clear_session, model_from_json, FitOptions, Sequential};
use rustflow::Tensor;

fn cnn() -> Sequential {
    Sequential::new(vec![
        Input::new(&[8, 8, 1]).into(),
        ZeroPadding2D::new(1).into(),
        Conv2D::new(8, 3).padding("same").activation("relu").into(),
        BatchNormalization::new().into(),
        MaxPooling2D::new().into(),
        AveragePooling2D::new()
            .pool_size(2)
            .strides(1)
            .padding("same")
            .into(),
        Conv2D::new(4, (3, 2)).dilation_rate(2).into(),
        GlobalAveragePooling2D::new().into(),
        Reshape::new(&[2, -1]).into(),
        LayerNormalization::new().into(),
        Flatten::new().into(),
        Dense::new(3).into(),
    ])
    .unwrap()
}

/// What Keras 3.15 prints for the same model (`graphs/make_keras_fixtures.py`'s
/// `cnn_config` model, `m.summary()`).
const CNN_SUMMARY: &str = "\
Model: \"sequential\"
┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━┓
┃ Layer (type)                    ┃ Output Shape           ┃       Param # ┃
┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━┩
│ zero_padding2d (ZeroPadding2D)  │ (None, 10, 10, 1)      │             0 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ conv2d (Conv2D)                 │ (None, 10, 10, 8)      │            80 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ batch_normalization             │ (None, 10, 10, 8)      │            32 │
│ (BatchNormalization)            │                        │               │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ max_pooling2d (MaxPooling2D)    │ (None, 5, 5, 8)        │             0 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ average_pooling2d               │ (None, 5, 5, 8)        │             0 │
│ (AveragePooling2D)              │                        │               │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ conv2d_1 (Conv2D)               │ (None, 1, 3, 4)        │           196 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ global_average_pooling2d        │ (None, 4)              │             0 │
│ (GlobalAveragePooling2D)        │                        │               │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ reshape (Reshape)               │ (None, 2, 2)           │             0 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ layer_normalization             │ (None, 2, 2)           │             4 │
│ (LayerNormalization)            │                        │               │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ flatten (Flatten)               │ (None, 4)              │             0 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ dense (Dense)                   │ (None, 3)              │            15 │
└─────────────────────────────────┴────────────────────────┴───────────────┘
 Total params: 327 (1.28 KB)
 Trainable params: 311 (1.21 KB)
 Non-trainable params: 16 (64.00 B)
";

#[test]
fn summary_matches_keras() {
    clear_session();
    let model = cnn();
    assert_eq!(model.summary(), CNN_SUMMARY);
    assert_eq!(model.count_params(), 327);
}

#[test]
fn keras_config_is_read_and_written_back() {
    clear_session();
    let keras_json = include_str!("../graphs/keras/cnn_config.json");
    let model = model_from_json(keras_json).unwrap();
    assert_eq!(model.summary(), CNN_SUMMARY);
    // Our config has Keras's layers and arguments, so it reads back to the same model.
    let ours: serde_json::Value = serde_json::from_str(&model.to_json()).unwrap();
    let theirs: serde_json::Value = serde_json::from_str(keras_json).unwrap();
    for (a, b) in ours["config"]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .zip(theirs["config"]["layers"].as_array().unwrap())
    {
        assert_eq!(a["class_name"], b["class_name"]);
        for (k, v) in b["config"].as_object().unwrap() {
            if k.ends_with("initializer") {
                assert_eq!(a["config"][k]["class_name"], v["class_name"], "{k}");
            } else {
                assert_eq!(&a["config"][k], v, "{} {k}", b["class_name"]);
            }
        }
    }
    clear_session();
    let again = model_from_json(&model.to_json()).unwrap();
    assert_eq!(again.summary(), CNN_SUMMARY);
}

#[test]
fn a_cnn_and_an_embedding_model_train() {
    clear_session();
    rustflow::keras::set_random_seed(3);
    // Class = whether the bright pixel is in the top half.
    let n = 64;
    let mut x = vec![0f32; n * 64];
    let mut y = vec![0f32; n];
    for i in 0..n {
        let p = (i * 37) % 64;
        x[i * 64 + p] = 1.0;
        y[i] = f32::from(p < 32);
    }
    let x = Tensor::new(&[n, 8, 8, 1], x).unwrap();
    let y = Tensor::new(&[n], y).unwrap();
    let mut model = cnn();
    let loss = Loss::SparseCategoricalCrossentropy { from_logits: true };
    model.compile("adam", loss, ["accuracy"]).unwrap();
    let h = model
        .fit(
            &x,
            &y,
            FitOptions::new().epochs(5).batch_size(16).verbose(0),
        )
        .unwrap();
    let loss = h.get("loss").unwrap();
    assert!(loss[4] < loss[0], "{loss:?}");
    // BatchNormalization's moving statistics moved away from (0, 1).
    let w = model.get_weights().unwrap();
    assert!(w[4].to_f64_vec().iter().any(|m| m.abs() > 1e-3));

    let mut emb = Sequential::new(vec![
        Embedding::new(10, 4).into(),
        GlobalAveragePooling1D::new().into(),
        Dense::new(2).activation("softmax").into(),
    ])
    .unwrap();
    let ids = Tensor::new(&[8, 5], (0..40).map(|i| (i % 10) as f32).collect()).unwrap();
    let labels = Tensor::new(&[8], (0..8).map(|i| (i % 2) as f32).collect()).unwrap();
    emb.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
        .unwrap();
    let before = emb.get_weights();
    emb.fit(&ids, &labels, FitOptions::new().epochs(2).verbose(0))
        .unwrap();
    assert!(before.is_err()); // unbuilt until fit saw the data
    assert_eq!(emb.get_weights().unwrap()[0].shape(), &[10, 4]);
    let out = emb.predict(&ids).unwrap();
    assert_eq!(out.shape(), &[8, 2]);
    // An index outside the table is an error naming it, not a panic.
    let bad = Tensor::new(&[1, 5], vec![0f32, 1.0, 2.0, 3.0, 10.0]).unwrap();
    let msg = emb.predict(&bad).unwrap_err().to_string();
    assert!(msg.contains("10"), "{msg}");
}

#[test]
fn build_errors_name_the_layer_and_shapes() {
    clear_session();
    let err = |layers: Vec<Box<dyn rustflow::keras::Layer>>, shape: &[Option<usize>]| {
        let mut m = Sequential::new(layers).unwrap();
        m.build(shape).unwrap_err().to_string()
    };
    let msg = err(vec![Conv2D::new(4, 3).into()], &[None, Some(8)]);
    assert!(msg.contains("conv2d") && msg.contains("(None, 8)"), "{msg}");
    let msg = err(
        vec![Conv2D::new(4, 5).into()],
        &[None, Some(3), Some(3), Some(1)],
    );
    assert!(
        msg.contains("negative") && msg.contains("(None, 3, 3, 1)"),
        "{msg}"
    );
    let msg = err(
        vec![Conv2D::new(4, 3).strides(2).dilation_rate(2).into()],
        &[None, Some(9), Some(9), Some(1)],
    );
    assert!(msg.contains("dilation_rate"), "{msg}");
    let msg = err(
        vec![Conv2D::new(4, 3).padding("full").into()],
        &[None, Some(9), Some(9), Some(1)],
    );
    assert!(msg.contains("padding=full"), "{msg}");
    let msg = err(vec![MaxPooling2D::new().into()], &[None, Some(4), Some(4)]);
    assert!(
        msg.contains("max_pooling2d") && msg.contains("rank 4"),
        "{msg}"
    );
    let msg = err(vec![Reshape::new(&[3, 3]).into()], &[None, Some(8)]);
    assert!(msg.contains("total size") && msg.contains("(8,)"), "{msg}");
    let msg = err(
        vec![BatchNormalization::new().into()],
        &[None, Some(4), None],
    );
    assert!(
        msg.contains("batch_normalization") && msg.contains("(None, 4, None)"),
        "{msg}"
    );
    let msg = err(
        vec![Conv2D::new(2, 2).activation("nope").into()],
        &[None, Some(4), Some(4), Some(1)],
    );
    assert!(msg.contains("'nope'"), "{msg}");
    // A built CNN fed images of the wrong channel count names the shapes.
    let mut m = cnn();
    let msg = m
        .predict(&Tensor::full(&[2, 8, 8, 3], 0.5f32))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("(None, 8, 8, 1)") && msg.contains("(2, 8, 8, 3)"),
        "{msg}"
    );
    // A config Keras would reject.
    let bad = r#"{"class_name": "Sequential", "config": {"layers": [
        {"class_name": "Conv2D", "config": {"name": "c", "filters": 0, "kernel_size": [3, 3]}}]}}"#;
    let msg = model_from_json(bad).err().unwrap().to_string();
    assert!(
        msg.contains("'c' (Conv2D)") && msg.contains("filters"),
        "{msg}"
    );
}

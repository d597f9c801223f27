//! `Input(shape, dtype, name)`: an int32 input feeds an Embedding as it is (placeholder,
//! config and saved signature of its dtype); and `summary()` of a functional model that
//! is not a chain prints Keras 3's "Connected to" column (graphs/keras/summary_two_branch.txt,
//! written by graphs/make_keras_summary_fixture.py).

use rustflow::keras::layers::{Add, Concatenate, Dense, Embedding, GlobalAveragePooling1D, Input};
use rustflow::keras::{
    clear_session, functional_from_json, model_from_json, Apply, Model, Sequential,
};
use rustflow::{DType, SessionOptions, Tensor};

#[test]
fn an_int32_input_feeds_an_embedding_without_a_cast() {
    clear_session();
    let ids = Input::new(&[4]).dtype(DType::Int32).named("ids");
    let x = ids.tensor();
    assert_eq!(x.dtype(), DType::Int32);
    let e = Embedding::new(10, 3).on(&x).unwrap();
    let h = GlobalAveragePooling1D::new().on(&e).unwrap();
    let out = Dense::new(2).on(&h).unwrap();
    let mut model = Model::new(&[x], &[out]).unwrap();
    let batch = Tensor::new(&[2, 4], vec![1i32, 2, 3, 4, 9, 8, 7, 0]).unwrap();
    let p = model.predict(&batch).unwrap();
    assert_eq!(p.shape(), &[2, 2]);
    // Float ids are cast to the input's dtype, as Keras converts them.
    let as_float = batch.cast(DType::Float32).unwrap();
    assert_eq!(
        model.predict(&as_float).unwrap().to_f64_vec(),
        p.to_f64_vec()
    );
    // The config says int32, and reading it back gives an int32 input.
    let json = model.to_json();
    assert!(json.contains(r#""dtype":"int32""#), "{json}");
    let mut back = functional_from_json(&json).unwrap();
    back.set_weights(&model.get_weights().unwrap()).unwrap();
    assert_eq!(back.predict(&batch).unwrap().to_f64_vec(), p.to_f64_vec());
    // The saved signature declares int32 (DT_INT32 = 3), and no Cast reads the ids.
    let dir = tempfile::tempdir().unwrap();
    model.save(dir.path()).unwrap();
    let sm = rustflow::saved_model::load(dir.path(), &["serve"], SessionOptions::with_threads(1))
        .unwrap();
    let sig = sm.signature("serving_default").unwrap();
    assert_eq!(sig.inputs["ids"].tf_dtype, 3);
    let casts = sm
        .graph
        .nodes()
        .filter(|(_, n)| n.op_type() == "Cast" && n.name().contains("embedding"))
        .count();
    assert_eq!(casts, 0);
}

#[test]
fn a_sequential_with_an_int64_input_round_trips_its_dtype() {
    clear_session();
    let mut model = Sequential::new(vec![
        Input::new(&[3]).dtype(DType::Int64).into(),
        Embedding::new(5, 2).into(),
    ])
    .unwrap();
    let json = model.to_json();
    assert!(json.contains(r#""dtype":"int64""#), "{json}");
    let mut back = model_from_json(&json).unwrap();
    back.set_weights(&model.get_weights().unwrap()).unwrap();
    let ids = Tensor::new(&[1, 3], vec![4i64, 0, 2]).unwrap();
    assert_eq!(
        back.predict(&ids).unwrap().to_f64_vec(),
        model.predict(&ids).unwrap().to_f64_vec()
    );
    let bad = json.replace(r#""dtype":"int64""#, r#""dtype":"string""#);
    let err = model_from_json(&bad).err().unwrap().to_string();
    assert!(err.contains("input dtype"), "{err}");
}

#[test]
fn summary_of_two_branches_matches_keras() {
    clear_session();
    let a = Input::new(&[8]).named("a").tensor();
    let b = Input::new(&[3]).named("b").tensor();
    let h = Dense::new(4).activation("relu").named("da").on(&a).unwrap();
    let g = Dense::new(4).named("db").on(&b).unwrap();
    let s = Add::new().named("add").on_many(&[&h, &g]).unwrap();
    let c = Concatenate::new()
        .named("cat")
        .on_many(&[&s, &h, &b])
        .unwrap();
    let out = Dense::new(2)
        .activation("softmax")
        .named("out")
        .on(&c)
        .unwrap();
    let model = Model::new(&[a, b], &[out]).unwrap().named("two_branch");
    let keras = include_str!("../graphs/keras/summary_two_branch.txt");
    assert_eq!(model.summary().trim_end(), keras.trim_end());
}

#[test]
fn a_chain_is_summarized_without_connections() {
    clear_session();
    let x = Input::new(&[4]).tensor();
    let h = Dense::new(3).on(&x).unwrap();
    let out = Dense::new(1).on(&h).unwrap();
    let model = Model::new(&[x], &[out]).unwrap();
    let text = model.summary();
    assert!(!text.contains("Connected to"), "{text}");
    assert!(text.contains("Param #"), "{text}");
}

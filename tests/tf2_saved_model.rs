//! TensorFlow 2 / Keras 3 SavedModels (graphs/tf2/, written by graphs/make_tf2_fixtures.py
//! with TF 2.21): each loads, inlines its function calls, restores its resource variables
//! and computes TensorFlow's output for the committed input.

use rustflow::saved_model::{load, DEFAULT_SIGNATURE, SERVE_TAG};
use rustflow::session::SessionOptions;
use rustflow::tensor::npy::read_npy;
use rustflow::Tensor;
use std::path::Path;

#[path = "support/tf2_finetune.rs"]
mod tf2_finetune;
use tf2_finetune::{assert_close, fixture, key_file, value, FineTune};

/// Loads `graphs/tf2/<name>/model`, runs serving_default on input.npy and compares with
/// output.npy within `rtol` (relative to the output's largest magnitude).
fn check(name: &str, rtol: f64) {
    let dir = fixture(name);
    let model = load(dir.join("model"), &[SERVE_TAG], SessionOptions::default())
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let sig = model.signature(DEFAULT_SIGNATURE).unwrap();
    assert_eq!(sig.inputs.len(), 1, "{name}");
    let key = sig.inputs.keys().next().unwrap().clone();
    let x = read_npy(dir.join("input.npy")).unwrap();
    let want = read_npy(dir.join("output.npy")).unwrap();
    let out = model
        .run_signature(DEFAULT_SIGNATURE, &[(&key, x)])
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let got: &Tensor = out.values().next().unwrap();
    assert_eq!(got.shape(), want.shape(), "{name}");
    let (g, w) = (got.to_f64_vec(), want.to_f64_vec());
    let scale = w.iter().fold(1e-6f64, |m, v| m.max(v.abs()));
    for (i, (a, b)) in g.iter().zip(&w).enumerate() {
        assert!(
            (a - b).abs() <= rtol * scale.max(b.abs()),
            "{name}: element {i}: rustflow {a}, TensorFlow {b}"
        );
    }
}

#[test]
fn keras_mlp_matches_tensorflow() {
    check("mlp", 1e-5);
}

#[test]
fn keras_residual_net_matches_tensorflow() {
    check("residual", 1e-5);
}

#[test]
fn keras_cnn_with_batch_norm_matches_tensorflow() {
    check("cnn", 1e-4);
}

#[test]
fn keras_embedding_text_model_matches_tensorflow() {
    check("text", 1e-5);
}

/// `tf.while_loop` and `tf.cond` over resource variables: a `While` whose body holds an
/// `If`, run as functions (not unrolled).
#[test]
fn tf_function_while_loop_and_cond_match_tensorflow() {
    check("loop", 1e-5);
}

/// Keras LSTM and GRU: a `While` loop over TensorLists (`TensorListFromTensor`,
/// `GetItem`, `SetItem`, `Stack`).
#[test]
fn keras_lstm_matches_tensorflow() {
    check("lstm", 1e-5);
}

#[test]
fn keras_gru_matches_tensorflow() {
    check("gru", 1e-5);
}

/// Keras Applications' MobileNetV2 (96×96, alpha 0.35, random weights and BatchNorm
/// statistics): depthwise 3×3 convolutions at strides 1 and 2, 1×1 convolutions,
/// FusedBatchNormV3, Relu6, padding and residual adds.
#[test]
fn keras_mobilenet_v2_matches_tensorflow() {
    check("mobilenet_v2", 1e-4);
}

#[test]
fn signatures_list_names_dtypes_and_shapes() {
    let model = load(
        fixture("mlp").join("model"),
        &[SERVE_TAG],
        SessionOptions::default(),
    )
    .unwrap();
    let sig = model.signature(DEFAULT_SIGNATURE).unwrap();
    let input = &sig.inputs["keras_tensor"];
    assert_eq!(input.name, "serving_default_keras_tensor:0");
    assert_eq!(input.dtype(), Some(rustflow::DType::Float32));
    assert_eq!(input.shape.to_i64(), Some(vec![-1, 8]));
    let output = &sig.outputs["output_0"];
    assert_eq!(output.dtype(), Some(rustflow::DType::Float32));
    assert_eq!(output.shape.to_i64(), Some(vec![-1, 4]));
    assert!(model.signatures.contains_key("serve"));
}

/// TensorFlow Serving's `saved_model_half_plus_two_tf2_cpu` test model (TF 2, several
/// signatures, some of them over tf.Example strings that rustflow cannot run).
#[test]
fn tf_serving_half_plus_two_runs() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("graphs/tf_serving/saved_model_half_plus_two_tf2_cpu/00000123");
    let model = load(dir, &[SERVE_TAG], SessionOptions::default()).unwrap();
    // The init op stored the asset's path (fed as TensorFlow's loader feeds it).
    let asset = model
        .session
        .resources()
        .variables()
        .iter()
        .filter_map(|v| v.read().ok()?.as_strings().ok().map(<[Vec<u8>]>::to_vec))
        .flatten()
        .find(|s| s.ends_with(b"assets/foo.txt"));
    assert!(asset.is_some(), "no variable holds the asset path");
    let x = Tensor::from([1f32]);
    let y = model
        .run_signature(DEFAULT_SIGNATURE, &[("x", x.clone())])
        .unwrap();
    assert_eq!(y["y"].to_vec::<f32>().unwrap(), vec![2.5]);
    let y = model
        .run_signature("regress_x2_to_y3", &[("inputs", x)])
        .unwrap();
    assert_eq!(y["outputs"].to_vec::<f32>().unwrap(), vec![3.5]);
}

/// Copies a fixture's model to a temporary directory, editing its `saved_model.pb`.
fn edited(
    name: &str,
    edit: impl FnOnce(&mut rustflow::proto::tf::SavedModel),
) -> tempfile::TempDir {
    use prost::Message;
    let src = fixture(name).join("model");
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("variables")).unwrap();
    for f in [
        "variables/variables.index",
        "variables/variables.data-00000-of-00001",
    ] {
        std::fs::copy(src.join(f), tmp.path().join(f)).unwrap();
    }
    let bytes = std::fs::read(src.join("saved_model.pb")).unwrap();
    let mut model = rustflow::proto::tf::SavedModel::decode(bytes.as_slice()).unwrap();
    edit(&mut model);
    std::fs::write(tmp.path().join("saved_model.pb"), model.encode_to_vec()).unwrap();
    tmp
}

#[test]
fn a_missing_checkpoint_key_is_an_error_naming_variable_and_key() {
    let tmp = edited("mlp", |m| {
        let objects = m.meta_graphs[0].object_graph_def.as_mut().unwrap();
        for c in &mut objects.nodes[0].children {
            c.local_name = format!("renamed_{}", c.local_name);
        }
    });
    let e = load(tmp.path(), &[SERVE_TAG], SessionOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("no tensor 'renamed_")
            && e.contains("VARIABLE_VALUE")
            && e.contains("variable '"),
        "{e}"
    );
}

#[test]
fn a_call_to_a_missing_function_is_an_error() {
    let tmp = edited("mlp", |m| {
        let lib = m.meta_graphs[0]
            .graph_def
            .as_mut()
            .unwrap()
            .library
            .as_mut()
            .unwrap();
        lib.function.retain(|f| {
            !f.signature
                .as_ref()
                .unwrap()
                .name
                .starts_with("__inference___call__")
        });
    });
    let e = load(tmp.path(), &[SERVE_TAG], SessionOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("__inference___call__") && e.contains("not in the graph's function library"),
        "{e}"
    );
}

/// The loop fixture with one library function edited.
fn loop_with(function: &str, edit: impl Fn(&mut rustflow::proto::tf::FunctionDef)) -> String {
    let tmp = edited("loop", |m| {
        let lib = m.meta_graphs[0].graph_def.as_mut().unwrap();
        let lib = lib.library.as_mut().unwrap();
        let f = lib
            .function
            .iter_mut()
            .find(|f| f.signature.as_ref().unwrap().name.starts_with(function))
            .unwrap();
        edit(f);
    });
    let model = match load(tmp.path(), &[SERVE_TAG], SessionOptions::default()) {
        Ok(model) => model,
        Err(e) => return e.to_string(),
    };
    let x = read_npy(fixture("loop").join("input.npy")).unwrap();
    model
        .run_signature(DEFAULT_SIGNATURE, &[("x", x)])
        .unwrap_err()
        .to_string()
}

/// A `While` whose body is missing, or returns the wrong values, is an error naming the
/// node and the function.
#[test]
fn bad_loop_functions_are_errors_naming_node_and_function() {
    let e = loop_with("while_body", |f| {
        f.signature.as_mut().unwrap().name = "renamed".into()
    });
    assert!(
        e.contains("while_body_3559") && e.contains("while") && e.contains("library"),
        "{e}"
    );
    let e = loop_with("while_body", |f| {
        let sig = f.signature.as_mut().unwrap();
        let last = sig.output_arg.pop().unwrap();
        f.ret.remove(&last.name);
    });
    assert!(
        e.contains("while_body_3559") && e.contains("returns"),
        "{e}"
    );
    let e = loop_with("while_cond_3558", |f| {
        let sig = f.signature.as_mut().unwrap();
        sig.output_arg[0].r#type = 1; // float32: not checked until the loop runs
        let ret = f.ret.values_mut().next().unwrap();
        *ret = "while_placeholder_1".into(); // a [batch, 4] tensor, not a scalar
    });
    assert!(e.contains("while_cond_3558") && e.contains("scalar"), "{e}");
}

/// `rustflow show --all` and `rustflow run` on a Keras 3 export.
#[test]
fn runner_shows_and_runs_a_keras_export() {
    let dir = fixture("mlp");
    let model = dir.join("model").display().to_string();
    let run = |args: &[&str]| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_rustflow"))
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let shown = run(&["show", "--all", &model]);
    assert!(
        shown.contains("signature_def['serving_default']")
            && shown.contains("inputs['keras_tensor']")
            && shown.contains("shape: (-1, 8)")
            && shown.contains("outputs['output_0']"),
        "{shown}"
    );
    let out = tempfile::tempdir().unwrap();
    let input = format!("keras_tensor={}", dir.join("input.npy").display());
    let outdir = out.path().display().to_string();
    run(&["run", &model, "--input", &input, "--outdir", &outdir]);
    let got = read_npy(out.path().join("output_0.npy")).unwrap();
    let want = read_npy(dir.join("output.npy")).unwrap();
    assert_eq!(got.shape(), want.shape());
    for (a, b) in got.to_f64_vec().iter().zip(want.to_f64_vec()) {
        assert!((a - b).abs() <= 1e-5 * b.abs().max(1.0), "{a} vs {b}");
    }
}

/// Fine-tunes `graphs/tf2/<name>` as graphs/make_tf2_fixtures.py `finetune` does with
/// TensorFlow (its trainable resource variables, a loss appended to its serving output,
/// gradients through the inlined functions, two SGD steps with
/// `ResourceApplyGradientDescent`). The first gradients must be TensorFlow's
/// (`tf.GradientTape` through the loaded signature), and every variable must end with the
/// value TensorFlow's own two steps gave it. Then `save_tf2` writes the
/// fine-tuned model, which loads back with those values and computes what the
/// fine-tuned session does.
fn fine_tunes_as_tensorflow_does(name: &str, variables: usize, trainable: usize) {
    let dir = fixture(name);
    let mut t = FineTune::new(name);
    let m = &mut t.model;
    assert_eq!(
        (m.variables.len(), t.vars.len()),
        (variables, trainable),
        "{name}"
    );
    let handles: Vec<_> = t.vars.iter().map(|v| v.var).collect();
    let grads = m.graph.gradients(&[t.loss], &handles).unwrap();
    let grads: Vec<_> = grads
        .into_iter()
        .map(|gr| gr.unwrap_or_else(|| panic!("{name}: a variable gets no gradient")))
        .collect();
    m.session.extend(&m.graph).unwrap();
    let got = m.session.run(&t.feeds, &grads, &[]).unwrap();
    let trained = m.variables.iter().filter(|v| v.trainable);
    for (v, got) in trained.zip(&got) {
        let want = read_npy(dir.join(format!("finetune/grad_{}.npy", key_file(&v.key))));
        let what = format!("{name} gradient of {}", v.key);
        assert_close(got, &want.unwrap(), 1e-4, &what);
    }
    t.steps(2);
    let m = &mut t.model;
    for v in &m.variables.clone() {
        let want = read_npy(dir.join(format!("finetune/{}.npy", key_file(&v.key)))).unwrap();
        assert_close(&value(m, v), &want, 1e-4, &format!("{name} {}", v.key));
    }

    let out = tempfile::tempdir().unwrap();
    let saved = out.path().join("model");
    m.save_tf2(&saved).unwrap();
    let mut back = load(&saved, &[SERVE_TAG], SessionOptions::default()).unwrap();
    for (v, w) in back.variables.clone().iter().zip(&m.variables.clone()) {
        assert_eq!(v.key, w.key);
        assert_eq!(value(&mut back, v), value(m, w), "{name} {} saved", v.key);
    }
    let key = back
        .signature(DEFAULT_SIGNATURE)
        .unwrap()
        .inputs
        .keys()
        .next()
        .unwrap()
        .clone();
    let y = back
        .run_signature(DEFAULT_SIGNATURE, &[(&key, t.feeds[0].1.clone())])
        .unwrap();
    let what = format!("{name}: the saved model's output");
    assert_close(y.values().next().unwrap(), &t.output(), 1e-6, &what);
}

/// The Keras CNN: gradients through `FusedBatchNormV3`; conv kernels and biases,
/// BatchNormalization's gamma and beta and dense weights are trained, not the four moving
/// statistics.
#[test]
fn keras_cnn_fine_tunes_as_tensorflow_does() {
    fine_tunes_as_tensorflow_does("cnn", 14, 10);
}

/// The Keras LSTM: gradients through its `While` loop over TensorLists (the loop's
/// gradient carries lists of the items' gradients). Its serving function reads five
/// variables, all trained (not the seed generator's state).
#[test]
fn keras_lstm_fine_tunes_as_tensorflow_does() {
    fine_tunes_as_tensorflow_does("lstm", 5, 5);
}

/// The Keras GRU, as the LSTM.
#[test]
fn keras_gru_fine_tunes_as_tensorflow_does() {
    fine_tunes_as_tensorflow_does("gru", 5, 5);
}

/// `save_tf2` refuses a TensorFlow 1 model (saved_model::save writes those) and the
/// directory the model was loaded from.
#[test]
fn save_tf2_refuses_tf1_models_and_its_own_directory() {
    let tf1 = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("graphs/tf_serving/saved_model_half_plus_two_cpu/00000123");
    let m = load(&tf1, &[SERVE_TAG], SessionOptions::default()).unwrap();
    let out = tempfile::tempdir().unwrap();
    let e = m.save_tf2(out.path().join("m")).unwrap_err().to_string();
    assert!(e.contains("saved_model::save"), "{e}");
    let dir = fixture("mlp").join("model");
    let m = load(&dir, &[SERVE_TAG], SessionOptions::default()).unwrap();
    let e = m.save_tf2(&dir).unwrap_err().to_string();
    assert!(e.contains("loaded from"), "{e}");
}

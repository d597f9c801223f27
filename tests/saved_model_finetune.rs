//! Fine-tuning a loaded SavedModel: restore its variables, append a loss, gradients and an
//! optimizer to the loaded graph, train further, save again, and load the result.

use rustflow::saved_model::{self, Signature, DEFAULT_SIGNATURE, SERVE_TAG};
use rustflow::train::{GradientDescent, Optimizer};
use rustflow::{DType, Graph, Session, SessionOptions, Tensor, VariableHandle};
use std::collections::BTreeMap;

/// A handle to a variable of an imported graph, found by TensorFlow's node names.
fn handle(g: &Graph, name: &str) -> VariableHandle {
    VariableHandle {
        var: g.output_by_name(name).unwrap(),
        read: g.output_by_name(&format!("{name}/read")).unwrap(),
        initializer: g.node_by_name(&format!("{name}/Assign")).unwrap(),
    }
}

#[test]
fn a_loaded_model_trains_further_and_saves_again() {
    let dir = std::env::temp_dir().join(format!("rustflow-finetune-{}", std::process::id()));
    let (first, second) = (dir.join("v1"), dir.join("v2"));

    // A linear model y = x·w + b, saved untrained (w = 0, b = 0).
    let mut g = Graph::new();
    let x = g.placeholder(DType::Float32, [None, Some(2)], "x").unwrap();
    let w0 = g.constant(Tensor::full(&[2, 1], 0f32)).unwrap();
    let w = g.variable(w0, "w").unwrap();
    let b0 = g.constant(Tensor::full(&[1], 0f32)).unwrap();
    let b = g.variable(b0, "b").unwrap();
    let xw = g.matmul(x, w.read).unwrap();
    let y = g.add(xw, b.read).unwrap();
    let init = g.global_variables_initializer().unwrap();
    let sess = Session::new(&g);
    sess.run(&[], &[], &[init]).unwrap();
    let sig = BTreeMap::from([(
        DEFAULT_SIGNATURE.to_string(),
        Signature::predict(&g, &[("x", x)], &[("y", y)]),
    )]);
    saved_model::save(&sess, &g, &first, &[SERVE_TAG], &sig).unwrap();

    // Load it, append a loss and SGD, and fit y = 3·x0 - 2·x1 + 1.
    let mut m = saved_model::load(&first, &[SERVE_TAG], SessionOptions::default()).unwrap();
    let g = &mut m.graph;
    let x = g.output_by_name("x:0").unwrap();
    let y = g
        .output_by_name(&m.signatures[DEFAULT_SIGNATURE].outputs["y"].name)
        .unwrap();
    let vars = [handle(g, "w"), handle(g, "b")];
    let target = g
        .placeholder(DType::Float32, [None, Some(1)], "target")
        .unwrap();
    let err = g.sub(y, target).unwrap();
    let sq = g.square(err).unwrap();
    let loss = g.reduce_mean(sq, &[0, 1], false).unwrap();
    let train = GradientDescent::new(0.1)
        .minimize(g, loss, Some(&vars), None)
        .unwrap();
    m.session.extend(g).unwrap();
    let xs = Tensor::from([
        [1f32, 0.0],
        [0.0, 1.0],
        [1.0, 1.0],
        [2.0, -1.0],
        [-1.0, 0.5],
    ]);
    let ts: Vec<f32> = [
        [1f32, 0.0],
        [0.0, 1.0],
        [1.0, 1.0],
        [2.0, -1.0],
        [-1.0, 0.5],
    ]
    .iter()
    .map(|r| 3.0 * r[0] - 2.0 * r[1] + 1.0)
    .collect();
    let ts = Tensor::new(&[5, 1], ts).unwrap();
    let feeds = [(x, xs.clone()), (target, ts)];
    let before = m.session.run(&feeds, &[loss], &[]).unwrap()[0]
        .scalar_value::<f32>()
        .unwrap();
    for _ in 0..500 {
        m.session.run(&feeds, &[], &[train]).unwrap();
    }
    let after = m.session.run(&feeds, &[loss], &[]).unwrap()[0]
        .scalar_value::<f32>()
        .unwrap();
    assert!(before > 1.0 && after < 1e-6, "loss {before} -> {after}");

    // Save the fine-tuned model and load it again: the new weights come back.
    saved_model::save(&m.session, g, &second, &[SERVE_TAG], &m.signatures).unwrap();
    let again = saved_model::load(&second, &[SERVE_TAG], SessionOptions::default()).unwrap();
    let out = again
        .run_signature(DEFAULT_SIGNATURE, &[("x", Tensor::from([[2f32, 3.0]]))])
        .unwrap();
    let pred = out["y"].scalar_value::<f32>().unwrap();
    assert!((pred - 1.0).abs() < 1e-3, "3·2 - 2·3 + 1 = 1, got {pred}");
    std::fs::remove_dir_all(&dir).unwrap();
}

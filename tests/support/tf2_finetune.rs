//! Fine-tuning a TensorFlow 2 fixture (graphs/tf2/<name>) as graphs/make_tf2_fixtures.py
//! `finetune` does with TensorFlow: loss `mean((y - target)^2)` on the serving output,
//! SGD with learning rate 0.05 on the trainable variables. Shared by the TensorFlow 2
//! tests.
#![allow(dead_code)]

use rustflow::graph::{NodeId, Output, VariableHandle};
use rustflow::saved_model::{load, LoadedModel, ModelVariable, DEFAULT_SIGNATURE, SERVE_TAG};
use rustflow::session::SessionOptions;
use rustflow::tensor::npy::read_npy;
use rustflow::train::{GradientDescent, Optimizer};
use rustflow::{DType, Tensor};
use std::path::{Path, PathBuf};

/// graphs/tf2/<name>.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("graphs/tf2")
        .join(name)
}

/// A loaded fixture with a loss and an SGD step appended.
pub struct FineTune {
    /// The model (its session extended with the loss and the step).
    pub model: LoadedModel,
    /// The serving input and output.
    pub x: Output,
    /// The serving output.
    pub y: Output,
    /// The loss.
    pub loss: Output,
    /// One SGD step.
    pub train: NodeId,
    /// The trainable variables.
    pub vars: Vec<VariableHandle>,
    /// The input and the target (finetune/target.npy), fed.
    pub feeds: Vec<(Output, Tensor)>,
}

impl FineTune {
    /// Loads graphs/tf2/<name> and appends the loss and the step.
    pub fn new(name: &str) -> FineTune {
        let dir = fixture(name);
        let mut model = load(dir.join("model"), &[SERVE_TAG], SessionOptions::default()).unwrap();
        let sig = model.signature(DEFAULT_SIGNATURE).unwrap().clone();
        let by_name = |m: &LoadedModel, t: &rustflow::saved_model::TensorInfo| {
            m.graph.output_by_name(&t.name).unwrap()
        };
        let x = by_name(&model, sig.inputs.values().next().unwrap());
        let y = by_name(&model, sig.outputs.values().next().unwrap());
        let vars = model.trainable_variables().unwrap();
        let g = &mut model.graph;
        let width = g.shape(y).dims().and_then(|d| d.last().copied()).flatten();
        let target = g
            .placeholder(DType::Float32, [None, width], "target")
            .unwrap();
        let err = g.sub(y, target).unwrap();
        let sq = g.square(err).unwrap();
        let loss = g.reduce_mean(sq, &[0, 1], false).unwrap();
        let train = GradientDescent::new(0.05)
            .minimize(g, loss, Some(&vars), None)
            .unwrap();
        model.session.extend(g).unwrap();
        let feeds = vec![
            (x, read_npy(dir.join("input.npy")).unwrap()),
            (target, read_npy(dir.join("finetune/target.npy")).unwrap()),
        ];
        FineTune {
            model,
            x,
            y,
            loss,
            train,
            vars,
            feeds,
        }
    }

    /// Runs `n` SGD steps.
    pub fn steps(&mut self, n: usize) {
        for _ in 0..n {
            self.model
                .session
                .run(&self.feeds, &[], &[self.train])
                .unwrap();
        }
    }

    /// The serving output for the fixture's input.
    pub fn output(&self) -> Tensor {
        let feeds = [self.feeds[0].clone()];
        self.model
            .session
            .run(&feeds, &[self.y], &[])
            .unwrap()
            .remove(0)
    }
}

/// A variable's value in `m`'s session.
pub fn value(m: &mut LoadedModel, v: &ModelVariable) -> Tensor {
    let read = m.graph.read_variable(v.handle).unwrap();
    m.session.extend(&m.graph).unwrap();
    m.session.run(&[], &[read.read], &[]).unwrap().remove(0)
}

/// The fixture file of a checkpoint key: `variables/3/.ATTRIBUTES/VARIABLE_VALUE` →
/// `variables_3`.
pub fn key_file(key: &str) -> String {
    key.strip_suffix("/.ATTRIBUTES/VARIABLE_VALUE")
        .unwrap()
        .replace('/', "_")
}

/// `got` and `want` agree within `tol` (relative to each value, absolute below 1).
pub fn assert_close(got: &Tensor, want: &Tensor, tol: f64, what: &str) {
    assert_eq!(got.shape(), want.shape(), "{what}");
    for (i, (a, b)) in got.to_f64_vec().iter().zip(want.to_f64_vec()).enumerate() {
        assert!(
            (a - b).abs() <= tol * b.abs().max(1.0),
            "{what} element {i}: rustflow {a}, TensorFlow {b}"
        );
    }
}

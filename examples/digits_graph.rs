//! Trains the digits MLP (64 → 128 ReLU → 10, softmax cross-entropy) with the graph API
//! only: placeholders, `minimize`, a Session loop fed by a `rustflow::data` pipeline. Same
//! data split, initial weights and shuffling as the TensorFlow 1 / JAX reference runs.
//!
//! ```text
//! cargo run --release --example digits_graph -- [--optimizer sgd|adam] [--lr LR]
//!     [--epochs N] [--threads N] [--json] [--save DIR] [--export-test FILE] [--logdir DIR]
//!     [--device /device:GPU:0]
//! ```
//!
//! `--device DEV` builds the model and its training ops under `Graph::device(DEV)`: with
//! `/device:GPU:0` (and the `cuda` feature) it trains on the GPU; without a GPU it says so
//! once and runs on the CPU (soft placement).
//!
//! `--save DIR` writes the trained model as a TensorFlow 1 SavedModel (signature
//! `serving_default`: input `x` → output `probs`) that `rustflow run` and TensorFlow load;
//! `--export-test FILE` writes the first eight test images as a `.npy` file to feed it.
//! `--logdir DIR` writes TensorBoard logs as Keras's `TensorBoard` callback lays them out:
//! `DIR/train` (the graph, per-epoch `epoch_loss` / `epoch_accuracy`, weight histograms) and
//! `DIR/validation` (test-set `epoch_loss` / `epoch_accuracy`); `tensorboard --logdir DIR`.

mod common;

use common::{data_dir, mlp, Args, Digits, RandomState, FEATURES};
use rustflow::data::DataLoader;
use rustflow::saved_model::{self, Signature, DEFAULT_SIGNATURE, SERVE_TAG};
use rustflow::summary::FileWriter;
use rustflow::tensor::npy::write_npy;
use rustflow::train::{Adam, GradientDescent, Optimizer};
use rustflow::{DType, Graph, Output, Result, Session, SessionOptions, Tensor};
use std::collections::BTreeMap;
use std::time::Instant;

const BATCH: usize = 32;
const HIDDEN: usize = 128;
const CLASSES: usize = 10;

/// The model's graph: inputs, outputs and the train op.
struct Model {
    graph: Graph,
    x: Output,
    y: Output,
    probs: Output,
    loss: Output,
    /// The layers' variables (not the optimizer's slots), for histograms.
    weights: Vec<rustflow::VariableHandle>,
    train: rustflow::NodeId,
    init: rustflow::NodeId,
}

fn build(optimizer: &mut dyn Optimizer, device: Option<&str>) -> Result<Model> {
    let mut g = Graph::new();
    let x = g.placeholder(DType::Float32, [None, Some(FEATURES)], "x")?;
    let y = g.placeholder(DType::Int32, [None], "y")?;
    let mut body = |g: &mut Graph| -> Result<_> {
        let net = mlp(
            g,
            x,
            y,
            &[FEATURES, HIDDEN, CLASSES],
            &mut RandomState::new(0),
        )?;
        let weights = g.global_variables().to_vec();
        let train = optimizer.minimize(g, net.loss, None, None)?;
        Ok((net, weights, train))
    };
    let (net, weights, train) = match device {
        Some(d) => g.device(d, body)?,
        None => body(&mut g)?,
    };
    let init = g.global_variables_initializer()?;
    Ok(Model {
        graph: g,
        x,
        y,
        probs: net.probs,
        loss: net.loss,
        weights,
        train,
        init,
    })
}

fn accuracy(probs: &Tensor, labels: &[i32]) -> Result<f64> {
    let p = probs.as_slice::<f32>()?;
    let correct = labels
        .iter()
        .enumerate()
        .filter(|&(i, &l)| {
            let row = &p[i * CLASSES..(i + 1) * CLASSES];
            let best = (0..CLASSES).fold(0, |b, k| if row[k] > row[b] { k } else { b });
            best as i32 == l
        })
        .count();
    Ok(correct as f64 / labels.len() as f64)
}

fn main() {
    common::main_with(true, run);
}

fn run(args: &Args) -> Result<()> {
    let data = Digits::load(&data_dir())?;
    let mut optimizer: Box<dyn Optimizer> = match args.optimizer.as_str() {
        "adam" => Box::new(Adam::new(args.lr.unwrap_or(1e-3)).with_epsilon(1e-7)),
        _ => Box::new(GradientDescent::new(args.lr.unwrap_or(0.1))),
    };
    let m = build(optimizer.as_mut(), args.device.as_deref())?;
    let opts = SessionOptions {
        inter_op_threads: args.threads,
        intra_op_threads: args.threads,
        ..SessionOptions::default()
    };
    let sess = Session::with_options(&m.graph, opts);
    sess.run(&[], &[], &[m.init])?;
    let step = sess.make_callable(&[m.x, m.y], &[], &[m.train])?;
    // Epoch k visits the rows in the order `RandomState(k).permutation(1437)`, as the
    // reference runs shuffle; the next batch is gathered on a background thread.
    let n = data.train_len();
    let batches = DataLoader::new(data.train_tensors(), BATCH)?
        .sampler(move |epoch| RandomState::new(epoch as u32).permutation(n))
        .dataset()
        .prefetch(2);
    let mut logs = match &args.logdir {
        Some(dir) => Some(Logs::new(dir, &m.graph)?),
        None => None,
    };
    let mut epoch_ms = Vec::with_capacity(args.epochs);
    for epoch in 0..args.epochs {
        let start = Instant::now();
        for batch in &batches {
            let batch = batch?;
            let (bx, by) = batch.pair()?;
            sess.run_callable(&step, vec![bx.clone(), by.clone()])?;
        }
        epoch_ms.push(start.elapsed().as_secs_f64() * 1e3);
        if let Some(logs) = &mut logs {
            logs.epoch(&sess, &m, &data, epoch as i64)?;
        }
        if !args.json {
            println!("epoch {:>2}: {:.3} ms", epoch + 1, epoch_ms[epoch]);
        }
    }
    let probs = sess.run(&[(m.x, data.test_images())], &[m.probs], &[])?;
    let acc = accuracy(&probs[0], &data.test_y)?;
    if let Some(dir) = &args.save {
        let signature = Signature::predict(&m.graph, &[("x", m.x)], &[("probs", m.probs)]);
        let signatures = BTreeMap::from([(DEFAULT_SIGNATURE.to_string(), signature)]);
        saved_model::save(&sess, &m.graph, dir, &[SERVE_TAG], &signatures)?;
    }
    if let Some(file) = &args.export_test {
        let n = 8;
        let images = Tensor::new(&[n, FEATURES], data.test_x[..n * FEATURES].to_vec())?;
        write_npy(file, &images)?;
        if !args.json {
            println!(
                "wrote {n} test images to {file}; their labels are {:?}",
                &data.test_y[..n]
            );
        }
    }
    if args.json {
        let ms: Vec<String> = epoch_ms.iter().map(|v| format!("{v:.4}")).collect();
        println!(
            "{{\"optimizer\": \"{}\", \"threads\": {}, \"test_accuracy\": {acc:.4}, \"epoch_ms\": [{}]}}",
            args.optimizer,
            args.threads,
            ms.join(", ")
        );
    } else {
        println!(
            "test accuracy: {acc:.4} ({} of {})",
            (acc * data.test_y.len() as f64).round(),
            data.test_y.len()
        );
    }
    Ok(())
}

/// TensorBoard logs laid out as Keras's `TensorBoard` callback writes them.
struct Logs {
    train: FileWriter,
    validation: FileWriter,
}

impl Logs {
    /// Opens `dir/train` (with the graph) and `dir/validation`.
    fn new(dir: &str, g: &Graph) -> Result<Logs> {
        let dir = std::path::Path::new(dir);
        let mut train = FileWriter::new(dir.join("train"))?;
        train.add_graph(g)?;
        let validation = FileWriter::new(dir.join("validation"))?;
        Ok(Logs { train, validation })
    }

    /// Logs loss and accuracy on the training and test sets, and the weights' histograms.
    fn epoch(&mut self, sess: &Session, m: &Model, data: &Digits, epoch: i64) -> Result<()> {
        let all: Vec<usize> = (0..data.train_len()).collect();
        let (train_x, train_y) = data.batch(&all);
        let test_y = Tensor::vector(data.test_y.clone());
        for (w, x, y, labels) in [
            (&mut self.train, train_x, train_y, &data.train_y),
            (
                &mut self.validation,
                data.test_images(),
                test_y,
                &data.test_y,
            ),
        ] {
            let out = sess.run(&[(m.x, x), (m.y, y)], &[m.loss, m.probs], &[])?;
            w.add_scalar("epoch_loss", out[0].scalar_value::<f32>()?, epoch)?;
            w.add_scalar("epoch_accuracy", accuracy(&out[1], labels)? as f32, epoch)?;
            w.flush()?;
        }
        for v in &m.weights {
            let value = sess.run(&[], &[v.read], &[])?;
            let name = m.graph.node(v.var.node).name();
            self.train.add_tensor_histogram(name, &value[0], epoch)?;
        }
        self.train.flush()
    }
}

//! Trains the digits MLP (64 → 128 ReLU → 10 softmax) with Keras's `Sequential`: the
//! bundled data and split of `examples/digits_graph.rs`, its initial weights, its flags,
//! progress bars while training, the test accuracy at the end.
//!
//! ```text
//! cargo run --release --example digits -- [--optimizer sgd|adam] [--lr LR]
//!     [--epochs N] [--threads N] [--json] [--save DIR] [--export-test FILE] [--logdir DIR]
//! ```
//!
//! The Python Keras it mirrors:
//!
//! ```python
//! model = keras.Sequential([keras.Input((64,)),
//!                           layers.Dense(128, activation="relu"),
//!                           layers.Dense(10, activation="softmax")])
//! model.compile(optimizer=keras.optimizers.SGD(0.1),
//!               loss="sparse_categorical_crossentropy", metrics=["accuracy"])
//! model.fit(x_train, y_train, epochs=20, batch_size=32)
//! model.evaluate(x_test, y_test)
//! model.save(...)   # here: a SavedModel directory
//! ```
//!
//! `--save DIR` writes the trained model with `model.save` (a SavedModel whose
//! `serving_default` maps `input_layer` to `output_0`, plus its Keras config), which
//! `rustflow run` and TensorFlow load; `--export-test FILE` writes the first eight test
//! images as a `.npy` file to feed it. `--json` prints one line with `test_accuracy`,
//! `epochs`, `epoch_ms` (per epoch, as digits_graph prints it) and `params`.
//! `--logdir DIR` adds Keras's `TensorBoard(DIR, histogram_freq=1)` callback, with the test
//! set as validation data: `tensorboard --logdir DIR`.

mod common;

use common::{data_dir, glorot, Args, Digits, RandomState, FEATURES};
use rustflow::keras::callbacks::{Callback, CallbackModel, TensorBoard};
use rustflow::keras::layers::{Dense, Input};
use rustflow::keras::optimizers::Optimizer;
use rustflow::keras::{set_random_seed, set_session_options, FitOptions, Sequential};
use rustflow::tensor::npy::write_npy;
use rustflow::{Result, SessionOptions, Tensor};
use std::time::Instant;

const BATCH: usize = 32;
const HIDDEN: usize = 128;
const CLASSES: usize = 10;

/// Times each epoch of `fit` (from its start to its logs).
#[derive(Default)]
struct EpochTimer {
    start: Option<Instant>,
    ms: Vec<f64>,
}

impl Callback for EpochTimer {
    fn on_epoch_begin(&mut self, _epoch: usize, _model: &mut dyn CallbackModel) -> Result<()> {
        self.start = Some(Instant::now());
        Ok(())
    }

    fn on_epoch_end(
        &mut self,
        _epoch: usize,
        _logs: &mut rustflow::keras::Logs,
        _model: &mut dyn CallbackModel,
    ) -> Result<()> {
        if let Some(start) = self.start {
            self.ms.push(start.elapsed().as_secs_f64() * 1e3);
        }
        Ok(())
    }
}

fn main() {
    common::main_with(true, run);
}

fn run(args: &Args) -> Result<()> {
    let data = Digits::load(&data_dir())?;
    set_session_options(SessionOptions::with_threads(args.threads));
    set_random_seed(0);
    let mut model = Sequential::new(vec![
        Input::new(&[FEATURES]).into(),
        Dense::new(HIDDEN).activation("relu").into(),
        Dense::new(CLASSES).activation("softmax").into(),
    ])?;
    // The initial weights of digits_graph and the TensorFlow 1 / JAX reference runs.
    let mut rng = RandomState::new(0);
    let k0 = glorot(&mut rng, FEATURES, HIDDEN);
    let k1 = glorot(&mut rng, HIDDEN, CLASSES);
    model.set_weights(&[
        k0,
        Tensor::full(&[HIDDEN], 0f32),
        k1,
        Tensor::full(&[CLASSES], 0f32),
    ])?;
    let optimizer = match args.optimizer.as_str() {
        "adam" => Optimizer::adam().learning_rate(args.lr.unwrap_or(1e-3)),
        _ => Optimizer::sgd().learning_rate(args.lr.unwrap_or(0.1)),
    };
    model.compile(optimizer, "sparse_categorical_crossentropy", ["accuracy"])?;
    if !args.json {
        print!("{}", model.summary());
    }
    let x_train = Tensor::new(&[data.train_len(), FEATURES], data.train_x.clone())?;
    let y_train = Tensor::vector(data.train_y.clone());
    let x_test = data.test_images();
    let y_test = Tensor::vector(data.test_y.clone());
    let mut timer = EpochTimer::default();
    let mut options = FitOptions::new()
        .epochs(args.epochs)
        .batch_size(BATCH)
        .verbose(if args.json { 0 } else { 1 })
        .callback(&mut timer);
    let mut tensorboard = args
        .logdir
        .as_ref()
        .map(|dir| TensorBoard::new(dir).histogram_freq(1));
    if let Some(tb) = tensorboard.as_mut() {
        options = options
            .validation_data(x_test.clone(), y_test.clone())
            .callback(tb);
    }
    model.fit(&x_train, &y_train, options)?;
    let logs = model.evaluate(&x_test, &y_test)?;
    let acc = logs["accuracy"];
    if let Some(dir) = &args.save {
        model.save(dir)?;
        if !args.json {
            println!("saved the model to {dir} (model.save: SavedModel + keras_model.json)");
        }
    }
    if let (Some(dir), false) = (&args.logdir, args.json) {
        println!("wrote TensorBoard logs to {dir} (tensorboard --logdir {dir})");
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
        let ms: Vec<String> = timer.ms.iter().map(|v| format!("{v:.4}")).collect();
        println!(
            "{{\"optimizer\": \"{}\", \"threads\": {}, \"test_accuracy\": {acc:.4}, \"epochs\": {}, \"epoch_ms\": [{}], \"params\": {}}}",
            args.optimizer,
            args.threads,
            timer.ms.len(),
            ms.join(", "),
            model.count_params()
        );
    } else {
        println!(
            "test accuracy: {acc:.4} ({} of {}), test loss: {:.4}",
            (acc * data.test_y.len() as f64).round(),
            data.test_y.len(),
            logs["loss"]
        );
    }
    Ok(())
}

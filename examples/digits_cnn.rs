//! Trains a small CNN on the bundled digits, each reshaped to an 8×8×1 image, with Keras's
//! `Sequential`, and prints the test accuracy: the same data and split as
//! `examples/digits.rs`, as Python Keras writes it:
//!
//! ```python
//! model = keras.Sequential([keras.Input((8, 8, 1)),
//!                           layers.Conv2D(16, 3, padding="same", activation="relu"),
//!                           layers.MaxPooling2D(),
//!                           layers.SeparableConv2D(32, 3, padding="same", activation="relu"),
//!                           layers.Flatten(),
//!                           layers.Dense(10, activation="softmax")])
//! model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
//! model.fit(x_train, y_train, epochs=20, batch_size=32)
//! ```
//!
//! `cargo run --release --example digits_cnn [-- --epochs N --lr LR --threads N --json]`

mod common;

use common::{data_dir, Args, Digits};
use rustflow::keras::layers::{Conv2D, Dense, Flatten, Input, MaxPooling2D, SeparableConv2D};
use rustflow::keras::optimizers::Optimizer;
use rustflow::keras::{set_random_seed, set_session_options, FitOptions, Sequential};
use rustflow::{Result, SessionOptions, Tensor};

fn main() {
    common::main_with(false, run);
}

fn run(args: &Args) -> Result<()> {
    let data = Digits::load(&data_dir())?;
    set_session_options(SessionOptions::with_threads(args.threads));
    set_random_seed(0);
    let mut model = Sequential::new(vec![
        Input::new(&[8, 8, 1]).into(),
        Conv2D::new(16, 3).padding("same").activation("relu").into(),
        MaxPooling2D::new().into(),
        SeparableConv2D::new(32, 3)
            .padding("same")
            .activation("relu")
            .into(),
        Flatten::new().into(),
        Dense::new(10).activation("softmax").into(),
    ])?;
    let optimizer = Optimizer::adam().learning_rate(args.lr.unwrap_or(3e-3));
    model.compile(optimizer, "sparse_categorical_crossentropy", ["accuracy"])?;
    if !args.json {
        print!("{}", model.summary());
    }
    let images = |x: &[f32], n: usize| Tensor::new(&[n, 8, 8, 1], x.to_vec());
    let x_train = images(&data.train_x, data.train_len())?;
    let y_train = Tensor::vector(data.train_y.clone());
    let x_test = images(&data.test_x, data.test_y.len())?;
    let y_test = Tensor::vector(data.test_y.clone());
    let options = FitOptions::new()
        .epochs(args.epochs)
        .batch_size(32)
        .verbose(if args.json { 0 } else { 1 });
    model.fit(&x_train, &y_train, options)?;
    let acc = model.evaluate(&x_test, &y_test)?["accuracy"];
    if args.json {
        println!(
            "{{\"test_accuracy\": {acc}, \"epochs\": {}, \"params\": {}}}",
            args.epochs,
            model.count_params()
        );
    } else {
        println!("test accuracy: {acc:.4}");
    }
    Ok(())
}

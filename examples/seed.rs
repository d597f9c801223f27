//! The seed article's snippets in rustflow: arrays (int32 MatMul, Log after a Cast, Svd),
//! autodiff (the gradient of x² at 3) and layers (a Keras `Sequential` built lazily).
//!
//! `cargo run --release --example seed`

use rustflow::autodiff::GradientTape;
use rustflow::keras::layers::Dense;
use rustflow::keras::Sequential;
use rustflow::{DType, Graph, Session, Tensor};

fn main() -> rustflow::Result<()> {
    let mut g = Graph::new();
    let a = g.constant(Tensor::from([[1i32, 2], [3, 4]]))?;
    let b = g.constant(Tensor::from([[5i32, 6], [7, 8]]))?;
    let c = g.matmul(a, b)?;
    if let Err(e) = g.log(c) {
        println!("log(c) is refused, as in TensorFlow:\n  {e}\n");
    }
    let cf = g.cast(c, DType::Float32)?;
    let log_c = g.log(cf)?;
    let (s, u, v) = g.svd(cf, false, true)?;

    let init = g.constant(3.0f32)?;
    let x = g.variable(init, "x")?;
    let tape = GradientTape::new(&g);
    let y = g.square(x.read)?;
    let dy_dx = tape.gradient(&mut g, y, &[x.read])?[0].expect("y depends on x");
    let init = g.global_variables_initializer()?;

    let sess = Session::new(&g);
    sess.run(&[], &[], &[init])?;
    let out = sess.run(&[], &[c, log_c, s, u, v, dy_dx], &[])?;
    for (name, t) in [
        "matmul(a, b)",
        "log(cast(c, float32))",
        "svd: s",
        "svd: u",
        "svd: v",
        "d(x²)/dx at x = 3",
    ]
    .iter()
    .zip(&out)
    {
        println!("{name} =\n{t}\n");
    }

    // Keras: Sequential([Dense(128, activation='relu'), Dense(10, activation='softmax')])
    let mut model = Sequential::new(vec![
        Dense::new(128).activation("relu").into(),
        Dense::new(10).activation("softmax").into(),
    ])?;
    println!("model.layers = {:?}", model.layers());
    model.build(&[None, Some(64)])?;
    println!("{}", model.summary());
    let mut g = Graph::new();
    let normal = g.random_normal(&[1, 64], DType::Float32, Some(0))?;
    let x = Session::new(&g).run(&[], &[normal], &[])?.remove(0);
    let probs = model.call(&x)?;
    let sum: f32 = probs.as_slice::<f32>()?.iter().sum();
    println!("model(normal((1, 64))) =\n{probs}\nsum = {sum}");
    Ok(())
}

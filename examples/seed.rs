//! The seed article's snippets in rustflow: arrays (int32 MatMul, Log after a Cast, Svd)
//! and autodiff (the gradient of x² at 3).
//!
//! `cargo run --release --example seed`

use rustflow::autodiff::GradientTape;
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
    Ok(())
}

//! The seed article's array snippet in rustflow, then a small graph run in a session.
//!
//! `cargo run --release --example seed`

use rustflow::{DType, Graph, Session, Tensor};

fn main() -> rustflow::Result<()> {
    let mut g = Graph::new();
    let a = g.constant(Tensor::from([[1i32, 2], [3, 4]]))?;
    let b = g.constant(Tensor::from([[5i32, 6], [7, 8]]))?;
    let c = g.matmul(a, b)?;
    println!(
        "matmul(a, b) =\n{}",
        Session::new(&g).run(&[], &[c], &[])?[0]
    );

    match g.log(c) {
        Ok(_) => println!("log(int32) was accepted (unexpected)"),
        Err(e) => println!("log(c) refused as TensorFlow does:\n  {e}"),
    }
    let cf = g.cast(c, DType::Float32)?;
    let log_c = g.log(cf)?;
    let sess = Session::new(&g);
    let out = sess.run(&[], &[log_c], &[])?;
    println!("log(cast(c, float32)) =\n{}", out[0]);
    Ok(())
}

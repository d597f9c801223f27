//! GPU timings (feature `cuda`), printed one per line; `gpu/bench_torch.py` prints
//! PyTorch's on the same card for comparison (`gpu/check.sh` runs both):
//!
//! - `matmul n=4096`: f32 MatMul of two GPU variables (TF32 off unless
//!   `RUSTFLOW_GPU_TF32=1`), TFLOP/s over queued steps, synchronised once at the end;
//! - `mlp step`: an SGD train step of the 784-1024-1024-10 ReLU MLP at batch 256 (batch fed
//!   from the host each step), in ms;
//! - `dispatch`: one `Session::run` of a chain of 100 tiny Neg ops vs. 100 launches of the
//!   same generated kernel straight through cudarc, in µs.
//!
//! ```text
//! cargo run --release --features cuda --example gpu_bench
//! ```

use rustflow::device::cuda::{unavailable, GpuDevice};
use rustflow::train::{GradientDescent, Optimizer};
use rustflow::{DType, Graph, Result, Session, Tensor};
use std::time::Instant;

const GPU0: &str = "/device:GPU:0";

fn main() {
    if let Some(why) = unavailable() {
        println!("skipped: no GPU ({why})");
        return;
    }
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn filled(shape: &[usize], seed: u32) -> Tensor {
    let n: usize = shape.iter().product();
    let mut s = seed.wrapping_mul(2654435761).wrapping_add(1);
    let v = (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s as f32 / u32::MAX as f32 - 0.5) * 0.1
        })
        .collect();
    Tensor::new(shape, v).unwrap()
}

fn run() -> Result<()> {
    matmul(4096)?;
    mlp()?;
    dispatch()?;
    Ok(())
}

fn matmul(n: usize) -> Result<()> {
    let mut g = Graph::new();
    let (c, sum) = g.device(GPU0, |g| -> Result<_> {
        let a0 = g.constant(filled(&[n, n], 1))?;
        let b0 = g.constant(filled(&[n, n], 2))?;
        let a = g.variable(a0, "a")?;
        let b = g.variable(b0, "b")?;
        let c = g.matmul(a.read, b.read)?;
        let sum = g.reduce_sum(c, &[0, 1], false)?;
        Ok((c, sum))
    })?;
    let init = g.global_variables_initializer()?;
    let sess = Session::new(&g);
    sess.run(&[], &[], &[init])?;
    for _ in 0..3 {
        sess.run(&[], &[sum], &[])?;
    }
    let reps = 20;
    let t = Instant::now();
    for _ in 0..reps {
        sess.run(&[], &[], &[c.node])?;
    }
    sess.run(&[], &[sum], &[])?; // waits for the queue
    let s = t.elapsed().as_secs_f64() / (reps + 1) as f64;
    println!(
        "rustflow matmul f32 n={n}: {:.1} TFLOP/s ({:.3} ms)",
        2.0 * (n as f64).powi(3) / s / 1e12,
        s * 1e3
    );
    Ok(())
}

fn mlp() -> Result<()> {
    let (batch, sizes) = (256, [784usize, 1024, 1024, 10]);
    let mut g = Graph::new();
    let x = g.placeholder(DType::Float32, [None, Some(784)], "x")?;
    let y = g.placeholder(DType::Int32, [None], "y")?;
    let (loss, train) = g.device(GPU0, |g| -> Result<_> {
        let mut h = x;
        for (i, w) in sizes.windows(2).enumerate() {
            let k0 = g.constant(filled(&[w[0], w[1]], i as u32 + 1))?;
            let k = g.variable(k0, &format!("w{i}"))?;
            let b0 = g.constant(Tensor::full(&[w[1]], 0.0f32))?;
            let b = g.variable(b0, &format!("b{i}"))?;
            let z = g.matmul(h, k.read)?;
            let z = g.bias_add(z, b.read)?;
            h = if i + 2 < sizes.len() { g.relu(z)? } else { z };
        }
        let (xent, _) = g.sparse_softmax_cross_entropy_with_logits(h, y)?;
        let loss = g.reduce_mean(xent, &[0], false)?;
        let train = GradientDescent::new(0.01).minimize(g, loss, None, None)?;
        Ok((loss, train))
    })?;
    let init = g.global_variables_initializer()?;
    let sess = Session::new(&g);
    sess.run(&[], &[], &[init])?;
    let bx = filled(&[batch, 784], 9);
    let by = Tensor::new(&[batch], (0..batch as i32).map(|i| i % 10).collect())?;
    let step = sess.make_callable(&[x, y], &[], &[train])?;
    for _ in 0..5 {
        sess.run_callable(&step, vec![bx.clone(), by.clone()])?;
    }
    sess.run(&[(x, bx.clone()), (y, by.clone())], &[loss], &[])?;
    let reps = 50;
    let t = Instant::now();
    for _ in 0..reps {
        sess.run_callable(&step, vec![bx.clone(), by.clone()])?;
    }
    sess.run(&[(x, bx.clone()), (y, by.clone())], &[loss], &[])?;
    let ms = t.elapsed().as_secs_f64() * 1e3 / (reps + 1) as f64;
    println!("rustflow mlp 784-1024-1024-10 sgd step batch {batch}: {ms:.3} ms");
    let gpu = GpuDevice::of(&sess.devices().devices()[1]).map_err(rustflow::Error::Internal)?;
    println!("rustflow gpu memory: {:?}", gpu.memory_stats());
    Ok(())
}

fn dispatch() -> Result<()> {
    let mut g = Graph::new();
    let x = g.placeholder(DType::Float32, [1024], "x")?;
    let y = g.device(GPU0, |g| -> Result<_> {
        let mut h = x;
        for _ in 0..100 {
            h = g.neg(h)?;
        }
        Ok(h)
    })?;
    let sess = Session::new(&g);
    let feed = filled(&[1024], 3);
    let call = sess.make_callable(&[x], &[y], &[])?;
    for _ in 0..10 {
        sess.run_callable(&call, vec![feed.clone()])?;
    }
    let reps = 200;
    let t = Instant::now();
    for _ in 0..reps {
        sess.run_callable(&call, vec![feed.clone()])?;
    }
    let run_us = t.elapsed().as_secs_f64() * 1e6 / reps as f64;
    // The same 100 kernels launched straight through cudarc, plus one synchronisation.
    let gpu = GpuDevice::of(&sess.devices().devices()[1]).map_err(rustflow::Error::Internal)?;
    let key = format!("unary/Neg/{0}/{0}", DType::Float32);
    let f = gpu.function(&key, "k", || unreachable!("compiled by the session's plan"))?;
    let (buf, p) = gpu.alloc(DType::Float32, &[1024])?;
    let n = 1024i64;
    let launch = || -> Result<()> {
        use cudarc::driver::{LaunchConfig, PushKernelArg};
        for _ in 0..100 {
            let mut b = gpu.stream().launch_builder(&f);
            b.arg(&p).arg(&p).arg(&n);
            // SAFETY: the Neg kernel's parameters (input, output, count) on a live
            // 1024-element buffer.
            unsafe { b.launch(LaunchConfig::for_num_elems(1024)) }
                .map_err(|e| rustflow::Error::Internal(format!("{e:?}")))?;
        }
        gpu.synchronize()
    };
    launch()?;
    let t = Instant::now();
    for _ in 0..reps {
        launch()?;
    }
    let raw_us = t.elapsed().as_secs_f64() * 1e6 / reps as f64;
    drop(buf);
    println!(
        "dispatch: Session::run of 100 tiny ops {run_us:.1} us, 100 cudarc launches + sync \
         {raw_us:.1} us, ratio {:.2}",
        run_us / raw_us
    );
    Ok(())
}

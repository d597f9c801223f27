//! The README's quick-start snippets, kept compiling and checked.

use rustflow::autodiff::GradientTape;
use rustflow::train::{GradientDescent, Optimizer};
use rustflow::{DType, Graph, Session, Tensor};

#[test]
fn quick_start_seed_snippets() -> rustflow::Result<()> {
    let mut g = Graph::new();
    let a = g.constant(Tensor::from([[1i32, 2], [3, 4]]))?;
    let b = g.constant(Tensor::from([[5i32, 6], [7, 8]]))?;
    let c = g.matmul(a, b)?;
    assert!(g.log(c).is_err());
    let cf = g.cast(c, DType::Float32)?;
    let log_c = g.log(cf)?;
    let (s, _u, _v) = g.svd(cf, false, true)?;
    let three = g.constant(3.0f32)?;
    let x = g.variable(three, "x")?;
    let tape = GradientTape::new(&g);
    let y = g.square(x.read)?;
    let dy_dx = tape.gradient(&mut g, y, &[x.read])?[0].unwrap();
    let init = g.global_variables_initializer()?;
    let sess = Session::new(&g);
    sess.run(&[], &[], &[init])?;
    let out = sess.run(&[], &[c, log_c, s, dy_dx], &[])?;
    assert_eq!(
        out[0].to_string(),
        "Tensor(\n[[19 22]\n [43 50]], shape=(2, 2), dtype=int32)"
    );
    assert_eq!(out[3].scalar_value::<f32>()?, 6.0);
    Ok(())
}

#[test]
fn quick_start_training_lowers_the_loss() -> rustflow::Result<()> {
    let mut g = Graph::new();
    let x = g.placeholder(DType::Float32, [None, Some(64)], "x")?;
    let y = g.placeholder(DType::Int32, [None], "y")?;
    let w0 = g.glorot_uniform(&[64, 10], DType::Float32, Some(1))?;
    let w = g.variable(w0, "w")?;
    let logits = g.matmul(x, w.read)?;
    let (xent, _) = g.sparse_softmax_cross_entropy_with_logits(logits, y)?;
    let loss = g.reduce_mean(xent, &[0], false)?;
    let train = GradientDescent::new(0.1).minimize(&mut g, loss, None, None)?;
    let init = g.global_variables_initializer()?;
    let sess = Session::new(&g);
    sess.run(&[], &[], &[init])?;
    let batch_x = Tensor::new(
        &[8, 64],
        (0..512).map(|i| ((i * 37 % 17) as f32) / 17.0).collect(),
    )?;
    let batch_y = Tensor::vector((0..8).map(|i| i % 10).collect::<Vec<i32>>());
    let feeds = [(x, batch_x), (y, batch_y)];
    let before = sess.run(&feeds, &[loss], &[])?[0].scalar_value::<f32>()?;
    for _ in 0..50 {
        sess.run(&feeds, &[], &[train])?;
    }
    let after = sess.run(&feeds, &[loss], &[])?[0].scalar_value::<f32>()?;
    assert!(after < before * 0.5, "loss {before} -> {after}");
    Ok(())
}

#[test]
fn quick_start_keras() -> rustflow::Result<()> {
    use rustflow::keras::layers::Dense;
    use rustflow::keras::{FitOptions, Sequential};
    let x = Tensor::new(
        &[64, 64],
        (0..64 * 64)
            .map(|i| ((i * 37 % 17) as f32) / 17.0)
            .collect(),
    )?;
    let y = Tensor::vector((0..64).map(|i| i % 10).collect::<Vec<i32>>());
    let dir = std::env::temp_dir().join(format!("rustflow-readme-keras-{}", std::process::id()));

    let mut model = Sequential::new(vec![
        Dense::new(128).activation("relu").into(),
        Dense::new(10).activation("softmax").into(),
    ])?;
    assert_eq!(
        format!("{:?}", model.layers()),
        "[<Dense name=dense, built=False>, <Dense name=dense_1, built=False>]"
    );
    model.build(&[None, Some(64)])?;
    assert!(model
        .summary()
        .contains("│ dense (Dense)                   │ (None, 128)"));
    model.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])?;
    let history = model.fit(
        &x,
        &y,
        FitOptions::new()
            .epochs(5)
            .batch_size(32)
            .validation_split(0.2)
            .verbose(0),
    )?;
    let losses = history.get("loss").unwrap();
    assert!(losses[4] < losses[0], "{losses:?}");
    let logs = model.evaluate(&x, &y)?;
    assert!(logs.contains_key("accuracy") && logs.contains_key("loss"));
    let probs = model.predict(&x)?;
    assert_eq!(probs.shape(), &[64, 10]);
    model.save(&dir)?;
    assert!(dir.join("saved_model.pb").exists() && dir.join("keras_model.json").exists());
    std::fs::remove_dir_all(&dir).map_err(|e| rustflow::Error::Io(e.to_string()))?;
    Ok(())
}

//! The seed article's snippets, with the values TensorFlow prints, as acceptance tests.

use rustflow::autodiff::GradientTape;
use rustflow::{DType, Error, Graph, Session, Tensor};

fn close(got: &[f32], want: &[f32], rel: f32) {
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert!(
            (g - w).abs() <= rel * w.abs().max(1e-6),
            "{got:?} vs {want:?}"
        );
    }
}

#[test]
fn arrays_matmul_log_and_svd() {
    let mut g = Graph::new();
    let a = g.constant(Tensor::from([[1i32, 2], [3, 4]])).unwrap();
    let b = g.constant(Tensor::from([[5i32, 6], [7, 8]])).unwrap();
    let c = g.matmul(a, b).unwrap();
    // TensorFlow refuses Log of an int32 tensor and asks for a Cast.
    let err = g.log(c).unwrap_err();
    assert!(
        matches!(err, Error::Build { .. }) && err.to_string().contains("Cast"),
        "{err}"
    );
    let cf = g.cast(c, DType::Float32).unwrap();
    let log_c = g.log(cf).unwrap();
    let (s, u, v) = g.svd(cf, false, true).unwrap();
    let out = Session::new(&g)
        .run(&[], &[c, log_c, s, u, v], &[])
        .unwrap();
    assert_eq!(out[0], Tensor::from([[19i32, 22], [43, 50]]));
    close(
        out[1].as_slice::<f32>().unwrap(),
        &[2.944439, 3.0910425, 3.7612002, 3.912023],
        1e-6,
    );
    // TensorFlow: 7.206939e+01, 5.550127e-02 (the small one is float32-sensitive).
    let sv = out[2].as_slice::<f32>().unwrap();
    close(&sv[..1], &[72.06939], 1e-6);
    close(&sv[1..], &[0.05550127], 2e-3);
    // u · diag(s) · vᵀ reconstructs c (signs of u and v columns are arbitrary).
    let (uu, vv) = (
        out[3].as_slice::<f32>().unwrap(),
        out[4].as_slice::<f32>().unwrap(),
    );
    let mut rec = [0f32; 4];
    for i in 0..2 {
        for j in 0..2 {
            rec[i * 2 + j] = (0..2).map(|k| uu[i * 2 + k] * sv[k] * vv[j * 2 + k]).sum();
        }
    }
    close(&rec, &[19.0, 22.0, 43.0, 50.0], 1e-5);
}

#[test]
fn autodiff_x_squared_at_three_is_six() {
    // TensorFlow: x = tf.Variable(3.0); with tf.GradientTape() as tape: y = x**2
    let mut g = Graph::new();
    let init = g.constant(3.0f32).unwrap();
    let x = g.variable(init, "x").unwrap();
    let tape = GradientTape::new(&g);
    let y = g.square(x.read).unwrap();
    let dy_dx = tape.gradient(&mut g, y, &[x.read]).unwrap()[0].unwrap();
    let init = g.global_variables_initializer().unwrap();
    let sess = Session::new(&g);
    sess.run(&[], &[], &[init]).unwrap();
    assert_eq!(
        sess.run(&[], &[dy_dx], &[]).unwrap()[0]
            .scalar_value::<f32>()
            .unwrap(),
        6.0
    );
    // JAX: grad(lambda x: x**2)(3.0) and the second derivative, 2.
    let d2 = g.grad(dy_dx, x.read).unwrap();
    sess.extend(&g).unwrap();
    assert_eq!(
        sess.run(&[], &[d2], &[]).unwrap()[0]
            .scalar_value::<f32>()
            .unwrap(),
        2.0
    );
}

#[test]
fn layers_keras_sequential_lazy_build() {
    use rustflow::keras::layers::Dense;
    use rustflow::keras::Sequential;
    // Keras: model = Sequential([Dense(128, activation='relu'),
    //                            Dense(10, activation='softmax')])
    let mut model = Sequential::new(vec![
        Dense::new(128).activation("relu").into(),
        Dense::new(10).activation("softmax").into(),
    ])
    .unwrap();
    assert_eq!(
        format!("{:?}", model.layers()),
        "[<Dense name=dense, built=False>, <Dense name=dense_1, built=False>]"
    );
    // model.build(input_shape=(None, 64)); model(tf.random.normal((1, 64)))
    model.build(&[None, Some(64)]).unwrap();
    assert_eq!(
        format!("{:?}", model.layers()),
        "[<Dense name=dense, built=True>, <Dense name=dense_1, built=True>]"
    );
    // A normal sample by Box-Muller from a fixed sequence.
    let sample: Vec<f32> = (0..64)
        .map(|i| {
            let u1 = (i as f32 + 0.5) / 64.0;
            let u2 = ((i * 37 % 64) as f32 + 0.5) / 64.0;
            (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
        })
        .collect();
    let x = Tensor::new(&[1, 64], sample).unwrap();
    let probs = model.call(&x).unwrap();
    assert_eq!(probs.shape(), &[1, 10]);
    let p = probs.as_slice::<f32>().unwrap();
    assert!(p.iter().all(|&v| v > 0.0 && v < 1.0), "{p:?}");
    let sum: f32 = p.iter().sum();
    assert!((sum - 1.0).abs() < 1e-5, "sum {sum}");
}

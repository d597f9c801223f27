//! Plan-time fusion (`passes::Fuse` with the rules of `ops::linalg::matmul::fusion` and
//! `ops::training`): the plans it makes and their values against the separate ops.

use crate::graph::{Graph, NodeId, Output};
use crate::ops::linalg::matmul::fusion::{FUSED_MATMUL, FUSED_MATMUL_ACTIVATION_GRAD};
use crate::ops::nn::conv2d::fusion::FUSED_CONV2D;
use crate::ops::nn::pool::fusion::FUSED_MAX_POOL_GRAD;
use crate::ops::training::PRODUCT_GRADIENT_DESCENT;
use crate::train::{GradAndVar, GradientDescent, Optimizer};
use crate::Session;
use crate::{DType, SessionOptions, Tensor};

/// A linear model y = x·w + b on fed x (4×3) with a squared loss, its gradients, and
/// one GradientDescent step (learning rate 0.1) built from them.
struct Model {
    g: Graph,
    x: Output,
    grads: Vec<GradAndVar>,
    train: NodeId,
    init: NodeId,
}

fn model() -> Model {
    let mut g = Graph::new();
    let x = g.placeholder(DType::Float64, [None, Some(3)], "x").unwrap();
    let w0 = g
        .constant(Tensor::new(&[3, 2], vec![0.5, -1.0, 0.25, 2.0, -0.75, 1.5]).unwrap())
        .unwrap();
    let w = g.variable(w0, "w").unwrap();
    let b0 = g
        .constant(Tensor::new(&[2], vec![0.1, -0.2]).unwrap())
        .unwrap();
    let b = g.variable(b0, "b").unwrap();
    let y = g.matmul(x, w.read).unwrap();
    let y = g.bias_add(y, b.read).unwrap();
    let sq = g.square(y).unwrap();
    let loss = g.reduce_sum(sq, &[0, 1], false).unwrap();
    let mut opt = GradientDescent::new(0.1);
    let grads = opt.compute_gradients(&mut g, loss, None).unwrap();
    let train = opt.apply_gradients(&mut g, &grads, None).unwrap();
    let init = g.global_variables_initializer().unwrap();
    Model {
        g,
        x,
        grads,
        train,
        init,
    }
}

fn batch() -> Tensor {
    Tensor::new(
        &[4, 3],
        (0..12).map(|i| (i as f64 * 0.7).sin()).collect::<Vec<_>>(),
    )
    .unwrap()
}

fn weight_gradient(m: &Model) -> Output {
    let (grad, _) = m
        .grads
        .iter()
        .find(|(_, v)| m.g.node(v.var.node).name() == "w")
        .unwrap();
    grad.unwrap()
}

#[test]
fn a_weight_update_computes_its_product_in_place() {
    let m = model();
    let sess = Session::new(&m.g);
    let plan = sess.plan_of(&[m.x], &[], &[m.train]).unwrap();
    let fused: Vec<&str> = plan
        .steps
        .iter()
        .filter(|s| s.op == PRODUCT_GRADIENT_DESCENT)
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(fused.len(), 1, "the weight update, not the bias update");
    assert!(fused[0].ends_with("ApplyGradientDescent"));
    let grad_step = m.g.node(weight_gradient(&m).node).name();
    assert!(plan.steps.iter().all(|s| s.name != grad_step));
    // Judged as a product of its operands (inputs 2 and 3): the fed batch leaves that
    // unknown until a run shows a small product.
    let step = plan
        .steps
        .iter()
        .find(|s| s.op == PRODUCT_GRADIENT_DESCENT)
        .unwrap();
    assert!(!step.is_cheap());
    let t = |shape: &[usize]| Tensor::new(shape, vec![1.0f64; shape.iter().product()]).unwrap();
    step.observe(
        &[None, Some(t(&[])), Some(t(&[4, 3])), Some(t(&[4, 2]))],
        &[t(&[3, 2])],
    );
    assert!(step.is_cheap());

    // Fetching the gradient gives its product a second reader: no fusion then.
    let plan = sess
        .plan_of(&[m.x], &[weight_gradient(&m)], &[m.train])
        .unwrap();
    assert!(plan.steps.iter().all(|s| s.op != PRODUCT_GRADIENT_DESCENT));
}

#[test]
fn the_fused_update_matches_the_separate_ops() {
    let m = model();
    let grad = weight_gradient(&m);
    let w = Output::from(m.g.node_by_name("w").unwrap());
    for threads in [1, 2] {
        let fused = Session::with_options(&m.g, SessionOptions::with_threads(threads));
        let separate = Session::with_options(&m.g, SessionOptions::with_threads(threads));
        for s in [&fused, &separate] {
            s.run(&[], &[], &[m.init]).unwrap();
        }
        for _ in 0..3 {
            let before = separate.run(&[], &[w], &[]).unwrap().remove(0);
            let mut got = separate
                .run(&[(m.x, batch())], &[grad], &[m.train])
                .unwrap();
            let g = got.remove(0);
            fused.run(&[(m.x, batch())], &[], &[m.train]).unwrap();
            let want: Vec<f64> = before
                .as_slice::<f64>()
                .unwrap()
                .iter()
                .zip(g.as_slice::<f64>().unwrap())
                .map(|(w, g)| w - 0.1 * g)
                .collect();
            let after = separate.run(&[], &[w], &[]).unwrap().remove(0);
            assert_eq!(after.as_slice::<f64>().unwrap(), want.as_slice());
            let in_place = fused.run(&[], &[w], &[]).unwrap().remove(0);
            for (a, b) in in_place.as_slice::<f64>().unwrap().iter().zip(&want) {
                assert!((a - b).abs() <= 1e-15 * b.abs().max(1.0), "{a} vs {b}");
            }
        }
    }
}
/// `act(x·w + b)` for fed x, w and b (f64 or f32), `act` one of Relu, Relu6 or none.
fn dense_layer(dtype: DType, activation: Option<&str>) -> (Graph, [Output; 3], Output) {
    let mut g = Graph::new();
    let x = g.placeholder(dtype, [None, None], "x").unwrap();
    let w = g.placeholder(dtype, [None, None], "w").unwrap();
    let b = g.placeholder(dtype, [None], "b").unwrap();
    let y = g.matmul(x, w).unwrap();
    let mut y = g.bias_add(y, b).unwrap();
    match activation {
        Some("Relu") => y = g.relu(y).unwrap(),
        Some("Relu6") => y = g.relu6(y).unwrap(),
        _ => {}
    }
    (g, [x, w, b], y)
}

/// An `m×n` tensor of spread values (about half of them negative, some above 6).
fn values(dtype: DType, shape: &[usize], seed: f64) -> Tensor {
    let n: usize = shape.iter().product();
    let v: Vec<f64> = (0..n)
        .map(|i| 4.0 * (i as f64 * 0.37 + seed).sin())
        .collect();
    let t = Tensor::new(shape, v).unwrap();
    t.cast(dtype).unwrap()
}

/// `BiasAdd(Conv2D(x, f), b)` on fed x, f and b, under `activation` when it is `Relu`
/// or `Relu6`: the graph, the feeds, the convolution and the layer's output.
fn conv_layer(
    dtype: DType,
    strides: &[i64],
    padding: &str,
    activation: Option<&str>,
) -> (Graph, [Output; 3], Output, Output) {
    let mut g = Graph::new();
    let x = g.placeholder(dtype, [None; 4], "x").unwrap();
    let f = g.placeholder(dtype, [None; 4], "f").unwrap();
    let b = g.placeholder(dtype, [None], "b").unwrap();
    let z = g.conv2d(x, f, strides, padding).unwrap();
    let mut y = g.bias_add(z, b).unwrap();
    match activation {
        Some("Relu") => y = g.relu(y).unwrap(),
        Some("Relu6") => y = g.relu6(y).unwrap(),
        _ => {}
    }
    (g, [x, f, b], z, y)
}

#[test]
fn a_dense_layer_runs_as_one_product_with_the_same_values() {
    // 130·128·129 multiply-adds: split over 2 threads.
    let (m, k, n) = (130, 128, 129);
    for dtype in [DType::Float32, DType::Float64] {
        for activation in [Some("Relu"), Some("Relu6"), None] {
            let (g, [x, w, b], y) = dense_layer(dtype, activation);
            let sess = Session::with_options(&g, SessionOptions::with_threads(2));
            let plan = sess.plan_of(&[x, w, b], &[y], &[]).unwrap();
            let ops: Vec<&str> = plan.steps.iter().map(|s| s.op).collect();
            assert_eq!(ops, [FUSED_MATMUL], "{activation:?}");
            assert_eq!(plan.steps[0].name, g.node(y.node).name());

            let feeds = [
                (x, values(dtype, &[m, k], 0.0)),
                (w, values(dtype, &[k, n], 1.0)),
                (b, values(dtype, &[n], 2.0)),
            ];
            let fused = sess.run(&feeds, &[y], &[]).unwrap().remove(0);
            // Fetching the product too gives it a second reader: separate steps.
            let product = Output::from(g.node_by_name("MatMul").unwrap());
            let plan = sess.plan_of(&[x, w, b], &[y, product], &[]).unwrap();
            assert!(plan.steps.iter().all(|s| s.op != FUSED_MATMUL));
            let separate = sess.run(&feeds, &[y, product], &[]).unwrap().remove(0);
            assert_eq!(fused.shape(), &[m, n]);
            // Bit for bit: the same product, then the same sum and activation.
            assert!(fused == separate, "{dtype} {activation:?}: values differ");
        }
    }
}

#[test]
fn a_fused_layer_checks_its_bias_when_it_runs() {
    let (g, [x, w, b], y) = dense_layer(DType::Float64, Some("Relu"));
    let sess = Session::new(&g);
    let feeds = [
        (x, values(DType::Float64, &[2, 3], 0.0)),
        (w, values(DType::Float64, &[3, 4], 1.0)),
        (b, values(DType::Float64, &[5], 2.0)),
    ];
    let err = sess.run(&feeds, &[y], &[]).unwrap_err().to_string();
    assert!(err.contains(g.node(y.node).name()), "{err}");
    assert!(err.contains("[5] vs. [2, 4]"), "{err}");
    let feeds = [
        (x, values(DType::Float64, &[2, 3], 0.0)),
        (w, values(DType::Float64, &[2, 4], 1.0)),
        (b, values(DType::Float64, &[4], 2.0)),
    ];
    let err = sess.run(&feeds, &[y], &[]).unwrap_err().to_string();
    assert!(err.contains("in its product MatMul"), "{err}");
}

#[test]
fn a_convolutional_layer_runs_as_one_step_with_the_same_values() {
    // Batch 3 of 11×12×5 images, 3×3×5×17 filter: SAME (split over 2 threads) and VALID
    // with stride 2, for every activation, f32, f64 and i32.
    for dtype in [DType::Float32, DType::Float64, DType::Int32] {
        for (strides, padding) in [([1i64, 1, 1, 1], "SAME"), ([1, 2, 2, 1], "VALID")] {
            for activation in [Some("Relu"), Some("Relu6"), None] {
                let (g, [x, f, b], z, y) = conv_layer(dtype, &strides, padding, activation);
                let sess = Session::with_options(&g, SessionOptions::with_threads(2));
                let plan = sess.plan_of(&[x, f, b], &[y], &[]).unwrap();
                let ops: Vec<&str> = plan.steps.iter().map(|s| s.op).collect();
                assert_eq!(ops, [FUSED_CONV2D], "{activation:?}");
                assert_eq!(plan.steps[0].name, g.node(y.node).name());
                let feeds = [
                    (x, values(dtype, &[3, 11, 12, 5], 0.0)),
                    (f, values(dtype, &[3, 3, 5, 17], 1.0)),
                    (b, values(dtype, &[17], 2.0)),
                ];
                let fused = sess.run(&feeds, &[y], &[]).unwrap().remove(0);
                // Fetching the convolution too gives it a second reader: separate steps.
                let plan = sess.plan_of(&[x, f, b], &[y, z], &[]).unwrap();
                assert!(plan.steps.iter().all(|s| s.op != FUSED_CONV2D));
                let separate = sess.run(&feeds, &[y, z], &[]).unwrap().remove(0);
                assert_eq!(fused.shape(), separate.shape());
                assert!(
                    fused == separate,
                    "{dtype} {padding} {activation:?}: values differ"
                );
            }
        }
    }
    // No input channels: the sums are empty, the fused step still adds the bias and
    // applies the activation, as the separate BiasAdd and Relu do.
    let (g, [x, f, b], _, y) = conv_layer(DType::Float32, &[1; 4], "SAME", Some("Relu"));
    let sess = Session::new(&g);
    let plan = sess.plan_of(&[x, f, b], &[y], &[]).unwrap();
    assert_eq!(plan.steps.len(), 1);
    assert_eq!(plan.steps[0].op, FUSED_CONV2D);
    let feeds = [
        (x, Tensor::new(&[2, 3, 4, 0], Vec::<f32>::new()).unwrap()),
        (f, Tensor::new(&[3, 3, 0, 2], Vec::<f32>::new()).unwrap()),
        (b, Tensor::from([-1.5f32, 2.5])),
    ];
    let fused = sess.run(&feeds, &[y], &[]).unwrap().remove(0);
    assert_eq!(fused.shape(), &[2, 3, 4, 2]);
    let expected: Vec<f32> = (0..24).flat_map(|_| [0.0, 2.5]).collect();
    assert_eq!(fused.as_slice::<f32>().unwrap(), &expected[..]);

    // A bias of the wrong size is refused when the step runs, naming the step.
    let (g, [x, f, b], _, y) = conv_layer(DType::Float64, &[1; 4], "VALID", None);
    let sess = Session::new(&g);
    let feeds = [
        (x, values(DType::Float64, &[1, 4, 4, 2], 0.0)),
        (f, values(DType::Float64, &[2, 2, 2, 3], 1.0)),
        (b, values(DType::Float64, &[4], 2.0)),
    ];
    let err = sess.run(&feeds, &[y], &[]).unwrap_err().to_string();
    assert!(err.contains(g.node(y.node).name()), "{err}");
    assert!(err.contains("[4] vs. [1, 3, 3, 3]"), "{err}");
}

#[test]
fn backpropagation_through_pooling_into_a_relu_runs_as_one_step_with_the_same_values() {
    // MaxPoolGrad then ReluGrad / Relu6Grad by the pooled features (ties and zeros
    // included): 2x2/2 VALID and 3x3/1 SAME (split over 2 threads), f32, f64 and i32.
    for dtype in [DType::Float32, DType::Float64, DType::Int32] {
        for (k, s, padding) in [(2i64, 2i64, "VALID"), (3, 1, "SAME")] {
            for op in ["ReluGrad", "Relu6Grad"] {
                let mut g = Graph::new();
                let x = g.placeholder(dtype, [None; 4], "x").unwrap();
                let dy = g.placeholder(dtype, [None; 4], "dy").unwrap();
                let (ks, st) = ([1, k, k, 1], [1, s, s, 1]);
                let y = g.max_pool(x, &ks, &st, padding).unwrap();
                let dp = g.max_pool_grad(x, y, dy, &ks, &st, padding).unwrap();
                let dx = match op {
                    "ReluGrad" => g.relu_grad(dp, x).unwrap(),
                    _ => g.relu6_grad(dp, x).unwrap(),
                };
                let sess = Session::with_options(&g, SessionOptions::with_threads(2));
                let plan = sess.plan_of(&[x, dy], &[dx], &[]).unwrap();
                let ops: Vec<&str> = plan.steps.iter().map(|s| s.op).collect();
                assert_eq!(ops, ["MaxPool", FUSED_MAX_POOL_GRAD], "{op}");
                let shape = [4, 32, 30, 16];
                // Rounded features from [-8, 8]: ties, zeros, units above 6.
                let features = values(DType::Float64, &shape, 0.5);
                let features = Tensor::new(
                    &shape,
                    features
                        .as_slice::<f64>()
                        .unwrap()
                        .iter()
                        .map(|v| (2.0 * v).round())
                        .collect::<Vec<f64>>(),
                )
                .unwrap()
                .cast(dtype)
                .unwrap();
                let pooled = sess.run(&[(x, features.clone())], &[y], &[]).unwrap();
                let feeds = [(x, features), (dy, values(dtype, pooled[0].shape(), 1.0))];
                let fused = sess.run(&feeds, &[dx], &[]).unwrap().remove(0);
                let plan = sess.plan_of(&[x, dy], &[dx, dp], &[]).unwrap();
                assert!(plan.steps.iter().all(|s| s.op != FUSED_MAX_POOL_GRAD));
                let separate = sess.run(&feeds, &[dx, dp], &[]).unwrap().remove(0);
                assert_eq!(fused.shape(), &shape);
                assert!(fused == separate, "{dtype} {padding} {op}: values differ");
            }
        }
    }
}

#[test]
fn the_bias_gradient_of_a_pooled_relu_layer_comes_from_the_pooling_gradient_step() {
    // BiasAddGrad(ReluGrad(MaxPoolGrad(..))) with the input gradient also fetched (a
    // convolution's filter gradient reads it too): one step with two outputs. Its bias
    // sums equal BiasAddGrad's bit for bit on one thread, and the float64 sums of the
    // same gradient within rounding on two (split over them). Windows that tile (2x2/2
    // SAME over odd sizes) and overlap (3x3/1 SAME); f32, f64 and i32.
    let cases = [
        (2i64, "SAME", [8, 65, 63, 32]),
        (3, "SAME", [8, 32, 30, 16]),
    ];
    for dtype in [DType::Float32, DType::Float64, DType::Int32] {
        for (k, padding, shape) in cases {
            let mut g = Graph::new();
            let x = g.placeholder(dtype, [None; 4], "x").unwrap();
            let dy = g.placeholder(dtype, [None; 4], "dy").unwrap();
            let (ks, st) = ([1, k, k, 1], [1, 4 - k, 4 - k, 1]);
            let y = g.max_pool(x, &ks, &st, padding).unwrap();
            let dp = g.max_pool_grad(x, y, dy, &ks, &st, padding).unwrap();
            let dx = g.relu_grad(dp, x).unwrap();
            let db = g.bias_add_grad(dx).unwrap();
            let features = values(dtype, &shape, 0.5);
            for threads in [1, 2] {
                let sess = Session::with_options(&g, SessionOptions::with_threads(threads));
                for fetches in [&[dx, db][..], &[db]] {
                    let plan = sess.plan_of(&[x, dy], fetches, &[]).unwrap();
                    let ops: Vec<&str> = plan.steps.iter().map(|s| s.op).collect();
                    assert_eq!(ops, ["MaxPool", FUSED_MAX_POOL_GRAD], "{dtype}");
                    assert_eq!(plan.steps[1].output_specs.len(), 2);
                }
                let pooled = sess.run(&[(x, features.clone())], &[y], &[]).unwrap();
                let feeds = [
                    (x, features.clone()),
                    (dy, values(dtype, pooled[0].shape(), 1.0)),
                ];
                let fused = sess.run(&feeds, &[dx, db], &[]).unwrap();
                assert_eq!(sess.run(&feeds, &[db], &[]).unwrap()[0], fused[1]);
                // Fetching the pooling gradient too gives it a second reader: no fusion.
                let plan = sess.plan_of(&[x, dy], &[dx, db, dp], &[]).unwrap();
                assert!(plan.steps.iter().any(|s| s.op == "BiasAddGrad"));
                let separate = sess.run(&feeds, &[dx, db, dp], &[]).unwrap();
                assert!(fused[0] == separate[0], "{dtype} {padding} k {k}");
                assert_eq!(fused[1].shape(), &[shape[3]]);
                let what = format!("{dtype} k {k}, {threads} threads");
                if threads == 1 || dtype == DType::Int32 {
                    assert!(fused[1] == separate[1], "{what}: bias sums differ");
                    continue;
                }
                // Float64 sums of the (identical) input gradient, and of its magnitudes.
                let grads = fused[0].cast(DType::Float64).unwrap();
                let (mut want, mut size) = (vec![0f64; shape[3]], vec![0f64; shape[3]]);
                for pixel in grads.as_slice::<f64>().unwrap().chunks_exact(shape[3]) {
                    for (i, &v) in pixel.iter().enumerate() {
                        (want[i], size[i]) = (want[i] + v, size[i] + v.abs());
                    }
                }
                let eps = if dtype == DType::Float32 { 1e-6 } else { 1e-14 };
                let got = fused[1].cast(DType::Float64).unwrap();
                for (i, &v) in got.as_slice::<f64>().unwrap().iter().enumerate() {
                    assert!(
                        (v - want[i]).abs() <= eps * size[i],
                        "{what}: {v} vs {}",
                        want[i]
                    );
                }
            }
        }
    }
    // A bias gradient over NCHW data sums another axis: a step of its own.
    let mut g = Graph::new();
    let x = g.placeholder(DType::Float32, [None; 4], "x").unwrap();
    let dy = g.placeholder(DType::Float32, [None; 4], "dy").unwrap();
    let (ks, st) = ([1, 2, 2, 1], [1, 2, 2, 1]);
    let y = g.max_pool(x, &ks, &st, "VALID").unwrap();
    let dp = g.max_pool_grad(x, y, dy, &ks, &st, "VALID").unwrap();
    let dx = g.relu_grad(dp, x).unwrap();
    let db = g
        .op("BiasAddGrad")
        .input(dx)
        .attr("T", DType::Float32)
        .attr("data_format", "NCHW")
        .build_output()
        .unwrap();
    let plan = Session::new(&g).plan_of(&[x, dy], &[db], &[]).unwrap();
    let ops: Vec<&str> = plan.steps.iter().map(|s| s.op).collect();
    assert_eq!(ops, ["MaxPool", FUSED_MAX_POOL_GRAD, "BiasAddGrad"]);
}

#[test]
fn backpropagation_into_a_relu_layer_runs_as_one_product_with_the_same_values() {
    // dz·Wᵀ masked by the layer's output: 130·128·129 multiply-adds, split by columns
    // over 2 threads (a transposed rhs).
    let (m, k, n) = (130, 128, 129);
    for dtype in [DType::Float32, DType::Float64] {
        for op in ["ReluGrad", "Relu6Grad"] {
            let mut g = Graph::new();
            let dz = g.placeholder(dtype, [None, None], "dz").unwrap();
            let w = g.placeholder(dtype, [None, None], "w").unwrap();
            let y = g.placeholder(dtype, [None, None], "y").unwrap();
            let dh = g.matmul_t(dz, w, false, true).unwrap();
            let dx = match op {
                "ReluGrad" => g.relu_grad(dh, y).unwrap(),
                _ => g.relu6_grad(dh, y).unwrap(),
            };
            let sess = Session::with_options(&g, SessionOptions::with_threads(2));
            let plan = sess.plan_of(&[dz, w, y], &[dx], &[]).unwrap();
            let ops: Vec<&str> = plan.steps.iter().map(|s| s.op).collect();
            assert_eq!(ops, [FUSED_MATMUL_ACTIVATION_GRAD], "{op}");

            // Features in [-8, 8]: units off, on, and (for Relu6) saturated.
            let features: Vec<f64> = (0..m * n).map(|i| 8.0 * (i as f64 * 0.29).sin()).collect();
            let feeds = [
                (dz, values(dtype, &[m, k], 0.0)),
                (w, values(dtype, &[n, k], 1.0)),
                (
                    y,
                    Tensor::new(&[m, n], features).unwrap().cast(dtype).unwrap(),
                ),
            ];
            let fused = sess.run(&feeds, &[dx], &[]).unwrap().remove(0);
            let separate = sess.run(&feeds, &[dx, dh], &[]).unwrap();
            assert!(separate[1] != separate[0], "some units are off");
            assert_eq!(fused.shape(), &[m, n]);
            assert!(fused == separate[0], "{dtype} {op}: values differ");

            // Features of the wrong shape: an error naming the step.
            let mut bad = feeds.clone();
            bad[2].1 = values(dtype, &[m, n + 1], 2.0);
            let err = sess.run(&bad, &[dx], &[]).unwrap_err().to_string();
            assert!(err.contains(g.node(dx.node).name()), "{err}");
            assert!(err.contains("[130, 129] vs. [130, 130]"), "{err}");
        }
    }
}

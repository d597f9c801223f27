//! Gradients of the elementwise ops against TensorFlow 2.21 (`tf.GradientTape`, float64;
//! the expressions are quoted): second derivatives through the `*Grad` kernels' own
//! gradients, tie-breaking, masked singularities, and the graphs the gradients build.

use crate::ops::{registry, Gradient};
use crate::{DType, Graph, Output, PartialShape, Session, Tensor};

/// Values of `outputs` with `x` fed.
fn run_at(g: &Graph, x: Output, value: &[f64], outputs: &[Output]) -> Vec<Vec<f64>> {
    Session::new(g)
        .run(&[(x, Tensor::vector(value.to_vec()))], outputs, &[])
        .unwrap()
        .iter()
        .map(|t| t.to_vec::<f64>().unwrap())
        .collect()
}

fn assert_close(got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
    for (a, b) in got.iter().zip(want) {
        assert!(
            (a - b).abs() <= 1e-12 * b.abs().max(1.0),
            "{got:?} vs {want:?}"
        );
    }
}

type Unary = fn(&mut Graph, Output) -> crate::Result<Output>;

/// A function, where to evaluate it, and its first and second derivatives there.
type Case<'a> = (Unary, &'a [f64], [f64; 3], [f64; 3]);

#[test]
fn second_derivatives_match_tensorflow() {
    // For each f: (first, second) derivative from nested tf.GradientTape at x, float64.
    let x = [-0.7, 0.3, 1.2];
    let p = [0.4, 0.9, 1.7];
    let cases: [Case; 11] = [
        (
            Graph::tanh,
            &x,
            [0.6347395899824584, 0.9151369618266292, 0.30501999620740905],
            [0.7672323100919164, -0.5331818782014544, -0.5085626501382733],
        ),
        (
            Graph::sigmoid,
            &x,
            [0.22171287329310907, 0.24445831169074586, 0.1778944406468057],
            [
                0.0745787884403418,
                -0.03639618395557627,
                -0.09553813232072468,
            ],
        ),
        (
            Graph::sqrt,
            &p,
            [0.7905694150420948, 0.5270462766947299, 0.3834824944236852],
            [
                -0.9882117688026183,
                -0.29280348705262776,
                -0.11278896894814269,
            ],
        ),
        (
            Graph::rsqrt,
            &p,
            [
                -1.9764235376052366,
                -0.5856069741052555,
                -0.22557793789628539,
            ],
            [7.411588266019635, 0.9760116235087593, 0.1990393569673106],
        ),
        (
            Graph::reciprocal,
            &x,
            [
                -2.0408163265306123,
                -11.111111111111112,
                -0.6944444444444445,
            ],
            [-5.830903790087464, 74.07407407407409, 1.1574074074074077],
        ),
        (
            Graph::log,
            &p,
            [2.5, 1.1111111111111112, 0.5882352941176471],
            [-6.25, -1.234567901234568, -0.34602076124567477],
        ),
        (
            Graph::log1p,
            &x,
            [3.333333333333333, 0.7692307692307692, 0.45454545454545453],
            [
                -11.111111111111109,
                -0.5917159763313609,
                -0.20661157024793386,
            ],
        ),
        (
            Graph::softplus,
            &x,
            [0.33181222783183395, 0.574442516811659, 0.7685247834990176],
            [0.22171287329310907, 0.24445831169074586, 0.1778944406468057],
        ),
        (
            Graph::elu,
            &x,
            [0.4965853037914095, 1.0, 1.0],
            [0.4965853037914095, 0.0, 0.0],
        ),
        (Graph::square, &x, [-1.4, 0.6, 2.4], [2.0, 2.0, 2.0]),
        (
            Graph::exp,
            &x,
            [0.4965853037914095, 1.3498588075760032, 3.3201169227365472],
            [0.4965853037914095, 1.3498588075760032, 3.3201169227365472],
        ),
    ];
    for (f, at, d1, d2) in cases {
        let mut g = Graph::new();
        let xp = g.placeholder(DType::Float64, [3], "x").unwrap();
        let y = f(&mut g, xp).unwrap();
        let g1 = g.grad(y, xp).unwrap();
        let g2 = g.grad(g1, xp).unwrap();
        let out = run_at(&g, xp, at, &[g1, g2]);
        assert_close(&out[0], &d1);
        assert_close(&out[1], &d2);
    }
    // Relu: the second derivative is zero (ReluGrad's gradient).
    let mut g = Graph::new();
    let xp = g.placeholder(DType::Float64, [3], "x").unwrap();
    let y = g.relu(xp).unwrap();
    let g1 = g.grad(y, xp).unwrap();
    let g2 = g.grad(g1, xp).unwrap();
    let out = run_at(&g, xp, &x, &[g1, g2]);
    assert_eq!(out, vec![vec![0.0, 1.0, 1.0], vec![0.0; 3]]);
}

#[test]
fn broadcast_gradients_are_reduced_the_tensorflow_way() {
    let mut g = Graph::new();
    let x = g
        .constant(Tensor::from([[1.0f64, 2.0, 3.0], [4.0, 5.0, 6.0]]))
        .unwrap();
    let y = g.constant(Tensor::from([0.5f64, -1.0, 2.0])).unwrap();
    let z = g.mul(x, y).unwrap();
    let grads = g.gradients(&[z], &[x, y]).unwrap();
    let (gx, gy) = (grads[0].unwrap(), grads[1].unwrap());
    // The tail is Reshape(Sum(_, BroadcastGradientArgs(...)), Shape(_)).
    let types = |o: Output| g.node(o.node).op_type();
    assert_eq!((types(gx), types(gy)), ("Reshape", "Reshape"));
    assert!(g
        .nodes()
        .any(|(_, n)| n.op_type() == "BroadcastGradientArgs"
            && n.name() == "gradients/Mul_grad/BroadcastGradientArgs"));
    assert_eq!(g.shape(gy), &PartialShape::known(&[3]));
    let out = Session::new(&g).run(&[], &[gx, gy], &[]).unwrap();
    // tape.gradient(x * y, [x, y]) = [[0.5,-1,2],[0.5,-1,2]], [5,7,9]
    assert_eq!(
        out[0],
        Tensor::from([[0.5f64, -1.0, 2.0], [0.5, -1.0, 2.0]])
    );
    assert_eq!(out[1], Tensor::from([5.0f64, 7.0, 9.0]));
    // Equal static shapes: no reduction at all (TensorFlow's _ShapesFullySpecifiedAndEqual).
    let mut g = Graph::new();
    let a = g.placeholder(DType::Float32, [2], "a").unwrap();
    let b = g.placeholder(DType::Float32, [2], "b").unwrap();
    let s = g.sub(a, b).unwrap();
    let n = g.len();
    let grads = g.gradients(&[s], &[a, b]).unwrap();
    assert_eq!(
        grads[0],
        Some(g.node_by_name("gradients/grad_ys_0").unwrap().output(0))
    );
    assert_eq!(g.node(grads[1].unwrap().node).op_type(), "Neg");
    // Shape, Const, Fill for grad_ys; Neg for the gradient of b.
    assert_eq!(g.len(), n + 4);
}

#[test]
fn ties_masks_and_special_points_match_tensorflow() {
    let grads_of =
        |f: fn(&mut Graph, Output, Output) -> crate::Result<Output>, a: &[f64], b: &[f64]| {
            let mut g = Graph::new();
            let x = g.constant(Tensor::vector(a.to_vec())).unwrap();
            let y = g.constant(Tensor::vector(b.to_vec())).unwrap();
            let z = f(&mut g, x, y).unwrap();
            let gr = g.gradients(&[z], &[x, y]).unwrap();
            let out = Session::new(&g)
                .run(&[], &[gr[0].unwrap(), gr[1].unwrap()], &[])
                .unwrap();
            (
                out[0].to_vec::<f64>().unwrap(),
                out[1].to_vec::<f64>().unwrap(),
            )
        };
    // tape.gradient(tf.maximum(x, y), [x, y]) at x=[1,2,3], y=[1,0,5]: ties go to x.
    let (gx, gy) = grads_of(Graph::maximum, &[1.0, 2.0, 3.0], &[1.0, 0.0, 5.0]);
    assert_eq!((gx, gy), (vec![1.0, 1.0, 0.0], vec![0.0, 0.0, 1.0]));
    let (gx, gy) = grads_of(Graph::minimum, &[1.0, 2.0, 3.0], &[1.0, 0.0, 5.0]);
    assert_eq!((gx, gy), (vec![1.0, 0.0, 1.0], vec![0.0, 1.0, 0.0]));
    // tape.gradient(tf.pow(x, y), [x, y]) at x=[0,-1,2], y=[2,2,0.5]: log(x) is masked to 0
    // where x <= 0, so no NaN.
    let (gx, gy) = grads_of(Graph::pow, &[0.0, -1.0, 2.0], &[2.0, 2.0, 0.5]);
    assert_close(&gx, &[0.0, -2.0, 0.3535533905932738]);
    assert_close(&gy, &[0.0, 0.0, 0.9802581434685472]);
    // tape.gradient(tf.math.floormod(x, y), [x, y]) at x=[5.5,-5.5], y=[2,2]
    let (gx, gy) = grads_of(Graph::floormod, &[5.5, -5.5], &[2.0, 2.0]);
    assert_eq!((gx, gy), (vec![1.0, 1.0], vec![-2.0, 3.0]));
}

#[test]
fn select_v2_and_cast_gradients() {
    let mut g = Graph::new();
    let a = g.constant(Tensor::from([1.0f64, 2.0, 3.0])).unwrap();
    let b = g.constant(5.0f64).unwrap();
    let c = g.constant(Tensor::from([[true], [false]])).unwrap();
    let z = g.where_v2(c, a, b).unwrap();
    let gr = g.gradients(&[z], &[a, b]).unwrap();
    let out = Session::new(&g)
        .run(&[], &[gr[0].unwrap(), gr[1].unwrap()], &[])
        .unwrap();
    // tape.gradient(tf.where([[True],[False]], a, 5.0), [a, b]) = [1,1,1], 3
    assert_eq!(out[0], Tensor::from([1.0f64, 1.0, 1.0]));
    assert_eq!(out[1], Tensor::scalar(3.0f64));

    // float32 -> float64 casts the gradient back to float32; int -> float passes nothing.
    let mut g = Graph::new();
    let x = g.placeholder(DType::Float32, [2], "x").unwrap();
    let i = g.placeholder(DType::Int32, [2], "i").unwrap();
    let xd = g.cast(x, DType::Float64).unwrap();
    let id = g.cast(i, DType::Float64).unwrap();
    let y = g.mul(xd, id).unwrap();
    let gr = g.gradients(&[y], &[x, i]).unwrap();
    assert!(gr[1].is_none());
    let gx = gr[0].unwrap();
    assert_eq!(g.dtype(gx), DType::Float32);
    let out = Session::new(&g)
        .run(
            &[
                (x, Tensor::from([1.0f32, 2.0])),
                (i, Tensor::from([3i32, -4])),
            ],
            &[gx],
            &[],
        )
        .unwrap();
    assert_eq!(out[0], Tensor::from([3.0f32, -4.0]));
}

#[test]
fn differentiability_follows_tensorflow() {
    // TensorFlow registers no gradient for TruncateMod; BroadcastGradientArgs is
    // NotDifferentiable; the *Grad kernels have gradients.
    assert!(matches!(
        registry::lookup("TruncateMod").unwrap().gradient(),
        Gradient::Missing
    ));
    assert!(matches!(
        registry::lookup("BroadcastGradientArgs")
            .unwrap()
            .gradient(),
        Gradient::NotDifferentiable
    ));
    for op in [
        "TanhGrad",
        "SigmoidGrad",
        "SqrtGrad",
        "RsqrtGrad",
        "ReciprocalGrad",
        "ReluGrad",
        "Relu6Grad",
        "EluGrad",
        "SoftplusGrad",
        "Reciprocal",
    ] {
        assert!(
            matches!(
                registry::lookup(op).unwrap().gradient(),
                Gradient::Defined(_)
            ),
            "{op}"
        );
    }
}

//! Reduction gradients against TensorFlow 2.21 (`tf.GradientTape`, float64; expressions
//! quoted), on both the build-time-constant path and the run-time-shape path (the input
//! fed through a placeholder of unknown shape).

use crate::{DType, Graph, Output, PartialShape, Session, Tensor};

type Reduce = fn(&mut Graph, Output) -> crate::Result<Output>;

/// The gradient of `f` at `value`, built once on a constant (shapes known) and once on a
/// placeholder of unknown shape; both results are returned.
fn grad_both_ways(f: Reduce, value: Tensor) -> [Tensor; 2] {
    let mut g = Graph::new();
    let c = g.constant(value.clone()).unwrap();
    let y = f(&mut g, c).unwrap();
    let gc = g.gradients(&[y], &[c]).unwrap()[0].unwrap();
    let p = g
        .placeholder(DType::Float64, PartialShape::unknown(), "p")
        .unwrap();
    let y = f(&mut g, p).unwrap();
    let gp = g.gradients(&[y], &[p]).unwrap()[0].unwrap();
    let out = Session::new(&g).run(&[(p, value)], &[gc, gp], &[]).unwrap();
    [out[0].clone(), out[1].clone()]
}

fn check(f: Reduce, value: Tensor, want: Tensor) {
    for got in grad_both_ways(f, value) {
        assert_eq!(got, want);
    }
}

#[test]
fn max_and_min_split_ties_like_tensorflow() {
    // tape.gradient(tf.reduce_max(x, 1), x) at [[1,3,3],[2,2,0]] = [[0,.5,.5],[.5,.5,0]]
    check(
        |g, x| g.reduce_max(x, &[1], false),
        Tensor::from([[1.0f64, 3.0, 3.0], [2.0, 2.0, 0.0]]),
        Tensor::from([[0.0f64, 0.5, 0.5], [0.5, 0.5, 0.0]]),
    );
    // tape.gradient(tf.reduce_min(x), x) at [[1,3,1],[2,1,1]] = [[.25,0,.25],[0,.25,.25]]
    check(
        |g, x| g.reduce_min(x, &[0, 1], false),
        Tensor::from([[1.0f64, 3.0, 1.0], [2.0, 1.0, 1.0]]),
        Tensor::from([[0.25f64, 0.0, 0.25], [0.0, 0.25, 0.25]]),
    );
}

#[test]
fn prod_handles_zeros_like_tensorflow() {
    // tape.gradient(tf.reduce_prod(x, 1), x) at [[0,2,3],[4,0,0],[1,5,2]]
    //   = [[6,0,0],[0,0,0],[10,2,5]]
    let f: Reduce = |g, x| g.reduce_prod(x, &[1], false);
    let x = Tensor::from([[0.0f64, 2.0, 3.0], [4.0, 0.0, 0.0], [1.0, 5.0, 2.0]]);
    let want = Tensor::from([[6.0f64, 0.0, 0.0], [0.0, 0.0, 0.0], [10.0, 2.0, 5.0]]);
    let mut g = Graph::new();
    let c = g.constant(x.clone()).unwrap();
    let y = f(&mut g, c).unwrap();
    let gc = g.gradients(&[y], &[c]).unwrap()[0].unwrap();
    // Known rank, unknown dims: the group sizes are computed at run time.
    let p = g
        .placeholder(DType::Float64, PartialShape::with_rank(2), "p")
        .unwrap();
    let y = f(&mut g, p).unwrap();
    let gp = g.gradients(&[y], &[p]).unwrap()[0].unwrap();
    let out = Session::new(&g).run(&[(p, x)], &[gc, gp], &[]).unwrap();
    assert_eq!(out[0], want);
    assert_eq!(out[1], want);
    // tape.gradient(tf.reduce_prod(x, [0, 2]), x) at [[[1,2],[0,3]],[[4,5],[6,7]]]
    //   = [[[40,20],[126,0]],[[10,8],[0,0]]]
    let mut g = Graph::new();
    let c = g
        .constant(Tensor::from([
            [[1.0f64, 2.0], [0.0, 3.0]],
            [[4.0, 5.0], [6.0, 7.0]],
        ]))
        .unwrap();
    let y = g.reduce_prod(c, &[0, 2], false).unwrap();
    let gc = g.gradients(&[y], &[c]).unwrap()[0].unwrap();
    let out = Session::new(&g).run(&[], &[gc], &[]).unwrap();
    assert_eq!(
        out[0],
        Tensor::from([[[40.0f64, 20.0], [126.0, 0.0]], [[10.0, 8.0], [0.0, 0.0]]])
    );
    // Without a known rank the permutation cannot be built.
    let p = g
        .placeholder(DType::Float64, PartialShape::unknown(), "q")
        .unwrap();
    let y = g.reduce_prod(p, &[0], false).unwrap();
    let err = g.gradients(&[y], &[p]).unwrap_err().to_string();
    assert!(
        err.contains("gradient of Prod needs the input's rank"),
        "{err}"
    );
}

#[test]
fn sum_and_mean_gradients() {
    // tape.gradient(tf.reduce_mean(x, [0]), x) at a [3,2] input = 1/3 everywhere
    check(
        |g, x| g.reduce_mean(x, &[0], false),
        Tensor::from([[1.0f64, 2.0], [3.0, 4.0], [5.0, 6.0]]),
        Tensor::new(&[3, 2], vec![1.0f64 / 3.0; 6]).unwrap(),
    );
    check(
        |g, x| g.reduce_sum(x, &[-1], true),
        Tensor::from([[1.0f64, 2.0], [3.0, 4.0]]),
        Tensor::from([[1.0f64, 1.0], [1.0, 1.0]]),
    );
    // A sum over every axis of a known-rank tensor: TensorFlow's Reshape + Tile shortcut.
    let mut g = Graph::new();
    let x = g
        .placeholder(DType::Float32, PartialShape::new(vec![None, Some(2)]), "x")
        .unwrap();
    let y = g.reduce_sum(x, &[0, 1], false).unwrap();
    let gx = g.gradients(&[y], &[x]).unwrap()[0].unwrap();
    assert_eq!(g.node(gx.node).op_type(), "Tile");
    assert!(!g.nodes().any(|(_, n)| n.op_type() == "DynamicStitch"));
    // The general run-time path builds TensorFlow's reduced_shape with DynamicStitch.
    let z = g.reduce_sum(x, &[1], false).unwrap();
    let gz = g.gradients(&[z], &[x]).unwrap()[0].unwrap();
    assert!(g
        .nodes()
        .any(|(_, n)| n.name() == "gradients_1/Sum_1_grad/DynamicStitch"));
    let out = Session::new(&g)
        .run(&[(x, Tensor::from([[1.0f32, 2.0]]))], &[gx, gz], &[])
        .unwrap();
    assert_eq!(out[0], Tensor::from([[1.0f32, 1.0]]));
    assert_eq!(out[1], Tensor::from([[1.0f32, 1.0]]));
}

#[test]
fn cumprod_gradient_matches_tensorflow() {
    // tape.gradient(tf.math.cumprod(x, 0, exclusive=True, reverse=True), x) at [2,3,4]
    //   = [0,4,4]
    let mut g = Graph::new();
    let x = g.constant(Tensor::from([2.0f64, 3.0, 4.0])).unwrap();
    let y = g.cumprod(x, 0, true, true).unwrap();
    let gx = g.gradients(&[y], &[x]).unwrap()[0].unwrap();
    let out = Session::new(&g).run(&[], &[gx], &[]).unwrap();
    assert_eq!(out[0], Tensor::from([0.0f64, 4.0, 4.0]));
}

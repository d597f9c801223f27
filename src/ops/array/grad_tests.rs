//! Gradients of the array ops beyond the finite-difference cases in `gradient_cases`: the
//! same gradients when shapes are only known at run time, and second order (forward mode
//! through two reverse passes) through the linear ops.

use super::StridedSliceMasks;
use crate::autodiff::GradientOptions;
use crate::test_util::test_input;
use crate::{DType, Graph, Output, PartialShape, Result, Session, Tensor};

type Build = fn(&mut Graph, Output) -> Result<Output>;

/// One op applied to one float64 input of `shape`; `array_only` when its gradient's
/// gradient needs only array ops (so second order can be checked in this family).
struct Case {
    name: &'static str,
    shape: &'static [usize],
    build: Build,
    array_only: bool,
}

fn cases() -> Vec<Case> {
    let case = |name, shape, build, array_only| Case {
        name,
        shape,
        build,
        array_only,
    };
    vec![
        case("Reshape", &[2, 3], |g, x| g.reshape(x, &[3, -1]), true),
        case("ExpandDims", &[2, 3], |g, x| g.expand_dims(x, 1), true),
        case("Squeeze", &[2, 1, 3], |g, x| g.squeeze(x, &[1]), true),
        case(
            "Transpose",
            &[2, 3, 4],
            |g, x| g.transpose(x, &[2, 0, 1]),
            true,
        ),
        case(
            "ConcatV2",
            &[2, 3],
            |g, x| {
                // x used once, so the gradient pass needs no AddN (a math op); zeros
                // keep the op linear
                let c = g.constant(Tensor::zeros(DType::Float64, &[2, 1]))?;
                g.concat(&[c, x, c], -1)
            },
            true,
        ),
        case(
            "Pack",
            &[2, 3],
            |g, x| {
                let c = g.constant(Tensor::zeros(DType::Float64, &[2, 3]))?;
                g.stack(&[c, x], 1)
            },
            true,
        ),
        case(
            "Unpack",
            &[2, 3],
            |g, x| {
                let parts = g.unstack(x, Some(3), 1)?;
                g.concat(&[parts[2], parts[0]], 0)
            },
            true,
        ),
        case(
            "Split",
            &[2, 6],
            |g, x| {
                let parts = g.split(x, 3, 1)?;
                g.concat(&[parts[2], parts[0]], 0)
            },
            true,
        ),
        case(
            "SplitV",
            &[2, 6],
            |g, x| {
                let parts = g.split_v(x, &[1, -1, 2], 1)?;
                g.concat(&[parts[2], parts[1]], 1)
            },
            true,
        ),
        case("Slice", &[3, 4], |g, x| g.slice(x, &[1, 1], &[2, -1]), true),
        case(
            "StridedSlice",
            &[2, 3, 4],
            |g, x| {
                // x[1:, ::-1, tf.newaxis, ..., 0]
                let masks = StridedSliceMasks {
                    begin: 2,
                    end: 3,
                    ellipsis: 8,
                    new_axis: 4,
                    shrink_axis: 16,
                };
                g.strided_slice(
                    x,
                    &[1, 0, 0, 0, 0],
                    &[0, 0, 0, 0, 1],
                    &[1, -1, 1, 1, 1],
                    masks,
                )
            },
            true,
        ),
        case("Pad", &[2, 3], |g, x| g.pad(x, &[[1, 0], [0, 2]]), true),
        case(
            "GatherV2",
            &[3, 4],
            |g, x| {
                let i = g.constant(Tensor::from([[3i32, 0], [1, 3]]))?;
                g.gather(x, i, 1)
            },
            false,
        ),
        case(
            "GatherV2",
            &[4, 3],
            |g, x| {
                let i = g.constant(Tensor::from([2i64, 0, 2]))?;
                g.gather(x, i, 0)
            },
            false,
        ),
        case(
            "UnsortedSegmentSum",
            &[4, 3],
            |g, x| {
                let ids = g.constant(Tensor::from([2i32, 0, 2, -1]))?;
                let n = g.constant(3i32)?;
                g.unsorted_segment_sum(x, ids, n)
            },
            false,
        ),
        case("Tile", &[2, 3], |g, x| g.tile(x, &[2, 3]), false),
    ]
}

/// The value of `case` at `x`, and its gradient for the upstream gradient `w` when the
/// input placeholder has the static shape `shape`; also the gradient's static shape.
fn gradient(case: &Case, shape: PartialShape, x: &Tensor, w: &Tensor) -> (Tensor, PartialShape) {
    let mut g = Graph::new();
    let p = g.placeholder(DType::Float64, shape, "x").unwrap();
    let y = (case.build)(&mut g, p).unwrap();
    let wc = g.constant(w.clone()).unwrap();
    let opts = GradientOptions {
        grad_ys: Some(vec![wc]),
        ..Default::default()
    };
    let dx = g.gradients_with(&[y], &[p], &opts).unwrap()[0].unwrap();
    let out = Session::new(&g).run(&[(p, x.clone())], &[dx], &[]).unwrap();
    (out[0].clone(), g.shape(dx).clone())
}

/// The op's output at `x`.
fn forward(case: &Case, x: &Tensor) -> Tensor {
    let mut g = Graph::new();
    let c = g.constant(x.clone()).unwrap();
    let y = (case.build)(&mut g, c).unwrap();
    Session::new(&g).run(&[], &[y], &[]).unwrap().remove(0)
}

/// Shapes only known at run time take the Shape/ShapeN/Rank/Size paths of the gradients;
/// they give the same values, and a fully known input gives a fully known gradient shape.
#[test]
fn gradients_match_with_unknown_shapes() {
    for (k, case) in cases().iter().enumerate() {
        let x = test_input(case.shape, k as u64);
        let w = test_input(forward(case, &x).shape(), 100 + k as u64);
        let (want, static_shape) = gradient(case, PartialShape::known(case.shape), &x, &w);
        assert_eq!(want.shape(), case.shape, "{}", case.name);
        assert_eq!(
            static_shape,
            PartialShape::known(case.shape),
            "{}",
            case.name
        );
        let rank = case.shape.len();
        let mut first_unknown: Vec<Option<usize>> = case.shape.iter().map(|&d| Some(d)).collect();
        first_unknown[0] = None;
        for shape in [
            PartialShape::new(first_unknown),
            PartialShape::with_rank(rank),
            PartialShape::unknown(),
        ] {
            let (got, _) = gradient(case, shape.clone(), &x, &w);
            assert_eq!(got, want, "{} with input shape {shape}", case.name);
        }
    }
}

/// For a linear op `f`, forward mode `J·u` (two reverse passes: it differentiates each
/// gradient function again) must be `f(u)`.
#[test]
fn jvp_of_a_linear_op_is_the_op() {
    for (k, case) in cases().iter().filter(|c| c.array_only).enumerate() {
        let u = test_input(case.shape, 200 + k as u64);
        let mut g = Graph::new();
        let p = g.placeholder(DType::Float64, case.shape, "x").unwrap();
        let y = (case.build)(&mut g, p).unwrap();
        let uc = g.constant(u.clone()).unwrap();
        let jv = g.jvp(&[y], &[p], &[uc]).unwrap()[0];
        let x = test_input(case.shape, k as u64);
        let out = Session::new(&g).run(&[(p, x)], &[jv], &[]).unwrap();
        assert_eq!(out[0], forward(case, &u), "{}", case.name);
    }
}

/// StridedSliceGrad's gradient is the slice again, so `jvp` through it is the op too.
#[test]
fn strided_slice_grad_is_differentiable() {
    let mut g = Graph::new();
    let dy = g.placeholder(DType::Float64, [3], "dy").unwrap();
    let shape = g.constant(Tensor::from([6i32])).unwrap();
    let (b, s) = (
        g.constant(Tensor::from([0i32])).unwrap(),
        g.constant(Tensor::from([-2i32])).unwrap(),
    );
    let masks = StridedSliceMasks {
        begin: 1,
        end: 1,
        ..Default::default()
    };
    let y = g.strided_slice_grad(shape, b, b, s, dy, masks).unwrap();
    let u = g.constant(Tensor::from([1.0f64, 2.0, 3.0])).unwrap();
    let jv = g.jvp(&[y], &[dy], &[u]).unwrap()[0];
    let out = Session::new(&g)
        .run(&[(dy, Tensor::from([0.5f64, 0.25, 0.125]))], &[jv], &[])
        .unwrap();
    // np.zeros(6)[::-2] = [1, 2, 3]
    assert_eq!(out[0], Tensor::from([0.0f64, 3.0, 0.0, 2.0, 0.0, 1.0]));
}

/// `Graph::set_shape`, which the gradients use, merges and rejects contradictions.
#[test]
fn set_shape_refines_and_checks() {
    let mut g = Graph::new();
    let p = g.placeholder(DType::Float32, [None, Some(3)], "p").unwrap();
    let y = g.identity(p).unwrap();
    g.set_shape(y, &PartialShape::new(vec![Some(2), None]))
        .unwrap();
    assert_eq!(g.shape(y).to_string(), "[2,3]");
    let msg = g
        .set_shape(y, &PartialShape::known(&[2, 4]))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("set_shape") && msg.contains("[2,4]"), "{msg}");
    // the executor holds the kernel to the refined shape
    let msg = Session::new(&g)
        .run(&[(p, Tensor::zeros(DType::Float32, &[1, 3]))], &[y], &[])
        .unwrap_err()
        .to_string();
    assert!(msg.contains("promised"), "{msg}");
}

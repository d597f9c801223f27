//! Elementwise ops run through a Session. Reference values are hand-computed or produced by
//! TensorFlow 2.21 (CPU) with the expression quoted next to them.

use crate::ops::{registry, Gradient};
use crate::{AttrValue, DType, Error, Graph, Output, PartialShape, Session, Tensor};

fn run(g: &Graph, o: Output) -> crate::Result<Tensor> {
    Ok(Session::new(g).run(&[], &[o], &[])?.remove(0))
}

fn eval(g: &Graph, o: Output) -> Tensor {
    run(g, o).unwrap()
}

/// Compares floats with a relative tolerance; NaN must match NaN.
fn assert_close(got: &Tensor, want: &[f64], rtol: f64) {
    let got = got.to_f64_vec();
    assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
    for (g, w) in got.iter().zip(want) {
        let ok = if w.is_nan() {
            g.is_nan()
        } else if w.is_infinite() {
            g == w
        } else {
            (g - w).abs() <= rtol * w.abs().max(1e-30)
        };
        assert!(ok, "{got:?} vs {want:?}");
    }
}

/// Runs a graph expected to fail at run time and returns the message.
fn run_err(g: &Graph, o: Output) -> String {
    let err = run(g, o).unwrap_err();
    assert!(matches!(err, Error::Run { .. }), "{err:?}");
    err.to_string()
}

#[test]
fn add_sub_mul_broadcast_and_wrap() {
    let mut g = Graph::new();
    let a = g.constant(Tensor::from([[i32::MAX], [i32::MIN]])).unwrap();
    let b = g.constant(Tensor::from([1i32, 2])).unwrap();
    let s = g.add(a, b).unwrap();
    let d = g.sub(a, b).unwrap();
    let m = g.mul(a, b).unwrap();
    assert_eq!(g.shape(s), &PartialShape::known(&[2, 2]));
    // [[MAX+1, MAX+2], [MIN+1, MIN+2]] with wrapping
    assert_eq!(
        eval(&g, s),
        Tensor::from([[i32::MIN, i32::MIN + 1], [i32::MIN + 1, i32::MIN + 2]])
    );
    assert_eq!(
        eval(&g, d),
        Tensor::from([[i32::MAX - 1, i32::MAX - 2], [i32::MAX, i32::MAX - 1]])
    );
    // MAX*2 wraps to -2, MIN*2 wraps to 0
    assert_eq!(eval(&g, m), Tensor::from([[i32::MAX, -2], [i32::MIN, 0]]));
    // uint8 wraps too: 250 + 10 = 4, 3 - 5 = 254
    let u = g.constant(Tensor::from([250u8, 3])).unwrap();
    let v = g.constant(Tensor::from([10u8, 5])).unwrap();
    let us = g.add(u, v).unwrap();
    let ud = g.sub(u, v).unwrap();
    assert_eq!(eval(&g, us), Tensor::from([4u8, 8]));
    assert_eq!(eval(&g, ud), Tensor::from([240u8, 254]));
}

#[test]
fn empty_tensors_broadcast() {
    let mut g = Graph::new();
    let e = g
        .constant(Tensor::new(&[0, 3], Vec::<f32>::new()).unwrap())
        .unwrap();
    let r = g.constant(Tensor::from([1f32, 2.0, 3.0])).unwrap();
    let s = g.add(e, r).unwrap();
    assert_eq!(g.shape(s), &PartialShape::known(&[0, 3]));
    let out = eval(&g, s);
    assert_eq!(out.shape(), &[0, 3]);
    let relu = g.relu(e).unwrap();
    assert_eq!(eval(&g, relu).shape(), &[0, 3]);
    let lt = g.less(e, r).unwrap();
    let out = eval(&g, lt);
    assert_eq!((out.shape(), out.dtype()), (&[0usize, 3][..], DType::Bool));
}

#[test]
fn floordiv_floormod_match_python() {
    let mut g = Graph::new();
    // tf.math.floordiv / floormod on int32 [7,-7,7,-7,MIN] by [2,2,-2,-2,-1] and [3,3,-3,-3,-1]
    let x = g
        .constant(Tensor::from([7i32, -7, 7, -7, i32::MIN]))
        .unwrap();
    let y2 = g.constant(Tensor::from([2i32, 2, -2, -2, -1])).unwrap();
    let y3 = g.constant(Tensor::from([3i32, 3, -3, -3, -1])).unwrap();
    let q = g.floordiv(x, y2).unwrap();
    let m = g.floormod(x, y3).unwrap();
    assert_eq!(eval(&g, q), Tensor::from([3i32, -4, -4, 3, i32::MIN]));
    assert_eq!(eval(&g, m), Tensor::from([1i32, 2, -2, -1, 0]));
    // tf.math.floordiv(tf.constant([[-9],[9]], tf.int64), tf.constant([4,-4,1], tf.int64))
    let a = g.constant(Tensor::from([[-9i64], [9]])).unwrap();
    let b = g.constant(Tensor::from([4i64, -4, 1])).unwrap();
    let q = g.floordiv(a, b).unwrap();
    assert_eq!(eval(&g, q), Tensor::from([[-3i64, 2, -9], [2, -3, 9]]));
    // uint8: 200 // 7 = 28, 200 % 7 = 4
    let u = g.constant(Tensor::from([200u8])).unwrap();
    let v = g.constant(Tensor::from([7u8])).unwrap();
    let (uq, um) = (g.floordiv(u, v).unwrap(), g.floormod(u, v).unwrap());
    assert_eq!(eval(&g, uq), Tensor::from([28u8]));
    assert_eq!(eval(&g, um), Tensor::from([4u8]));
    // tf.math.floormod([5.5,-5.5,5.5,-5.5] f64, [2,2,-2,-2]) = [1.5, 0.5, -0.5, -1.5]
    let f = g.constant(Tensor::from([5.5f64, -5.5, 5.5, -5.5])).unwrap();
    let h = g.constant(Tensor::from([2f64, 2.0, -2.0, -2.0])).unwrap();
    let fm = g.floormod(f, h).unwrap();
    assert_eq!(eval(&g, fm), Tensor::from([1.5f64, 0.5, -0.5, -1.5]));
    // floats divide by zero without error: floordiv([7,1,0],[0,0,0]) = [inf, inf, nan]
    let n = g.constant(Tensor::from([7f32, 1.0, 0.0])).unwrap();
    let z = g.constant(Tensor::from([0f32, 0.0, 0.0])).unwrap();
    let fq = g.floordiv(n, z).unwrap();
    assert_close(
        &eval(&g, fq),
        &[f64::INFINITY, f64::INFINITY, f64::NAN],
        0.0,
    );
}

#[test]
fn truncatemod_matches_tensorflow() {
    let mut g = Graph::new();
    // tf.truncatemod(int32 [-7,7,-7,MIN,0], [3,-3,-3,-1,5]) = [-1,1,-1,0,0]
    let x = g
        .constant(Tensor::from([-7i32, 7, -7, i32::MIN, 0]))
        .unwrap();
    let y = g.constant(Tensor::from([3i32, -3, -3, -1, 5])).unwrap();
    let m = g.truncatemod(x, y).unwrap();
    assert_eq!(eval(&g, m), Tensor::from([-1i32, 1, -1, 0, 0]));
    // tf.truncatemod(float32 [-7.5,7.5,0.5,-0,3], [2,-2,inf,1,0]) = [-1.5,1.5,0.5,-0,nan]
    let a = g
        .constant(Tensor::from([-7.5f32, 7.5, 0.5, -0.0, 3.0]))
        .unwrap();
    let b = g
        .constant(Tensor::from([2.0f32, -2.0, f32::INFINITY, 1.0, 0.0]))
        .unwrap();
    let fm = g.truncatemod(a, b).unwrap();
    let got = eval(&g, fm);
    assert_close(&got, &[-1.5, 1.5, 0.5, 0.0, f64::NAN], 0.0);
    assert!(got.as_slice::<f32>().unwrap()[3].is_sign_negative());
    // Signed family only, as TensorFlow registers it.
    let u = g.constant(Tensor::from([1u8])).unwrap();
    assert!(g.truncatemod(u, u).is_err());
}

#[test]
fn integer_division_by_zero_is_a_run_time_error() {
    let mut g = Graph::new();
    let x = g.constant(Tensor::from([7i32, 8])).unwrap();
    let y = g.constant(Tensor::from([1i32, 0])).unwrap();
    let q = g.floordiv(x, y).unwrap();
    let m = g.floormod(x, y).unwrap();
    let t = g.truncatemod(x, y).unwrap();
    for o in [q, m, t] {
        let msg = run_err(&g, o);
        assert!(msg.contains("Integer division by zero"), "{msg}");
    }
}

#[test]
fn pow_ints_and_floats() {
    let mut g = Graph::new();
    // tf.pow(int32 [2,3,-2,0,1,-1], [31,4,3,0,100,101]) = [-2147483648, 81, -8, 1, 1, -1]
    let b = g.constant(Tensor::from([2i32, 3, -2, 0, 1, -1])).unwrap();
    let e = g
        .constant(Tensor::from([31i32, 4, 3, 0, 100, 101]))
        .unwrap();
    let p = g.pow(b, e).unwrap();
    assert_eq!(eval(&g, p), Tensor::from([i32::MIN, 81, -8, 1, 1, -1]));
    let neg = g.constant(Tensor::from([2i32, -1])).unwrap();
    let bad = g.pow(b, neg);
    // Shapes [6] and [2] do not broadcast: a build error.
    assert!(bad.is_err());
    let two = g.constant(Tensor::from([2i64])).unwrap();
    let m1 = g.constant(Tensor::from([-1i64])).unwrap();
    let p = g.pow(two, m1).unwrap();
    let msg = run_err(&g, p);
    assert!(
        msg.contains("Integers to negative integer powers are not allowed"),
        "{msg}"
    );
    // tf.pow([[2.],[9.]], [0.5,-1.,3.]) = [[1.4142135, 0.5, 8], [3, 0.11111111, 729]]
    let x = g.constant(Tensor::from([[2f32], [9.0]])).unwrap();
    let y = g.constant(Tensor::from([0.5f32, -1.0, 3.0])).unwrap();
    let p = g.pow(x, y).unwrap();
    assert_close(
        &eval(&g, p),
        &[1.4142135381698608, 0.5, 8.0, 3.0, 0.1111111119389534, 729.0],
        1e-7,
    );
    // uint8 Pow is not registered in TensorFlow.
    let u = g.constant(Tensor::from([2u8])).unwrap();
    let msg = g.pow(u, u).unwrap_err().to_string();
    assert!(msg.contains("uint8") && msg.contains("Pow"), "{msg}");
}

#[test]
fn maximum_minimum_propagate_nan() {
    let mut g = Graph::new();
    let nan = f32::NAN;
    // tf.maximum([nan, 1, 5], [1, nan, 2]) = [nan, nan, 5]
    let a = g.constant(Tensor::from([nan, 1.0, 5.0])).unwrap();
    let b = g.constant(Tensor::from([1.0f32, nan, 2.0])).unwrap();
    let (mx, mn) = (g.maximum(a, b).unwrap(), g.minimum(a, b).unwrap());
    assert_close(&eval(&g, mx), &[f64::NAN, f64::NAN, 5.0], 0.0);
    assert_close(&eval(&g, mn), &[f64::NAN, f64::NAN, 2.0], 0.0);
    // uint8 with a broadcast scalar: max([3, 200], 100) = [100, 200]
    let u = g.constant(Tensor::from([3u8, 200])).unwrap();
    let s = g.constant(100u8).unwrap();
    let m = g.maximum(u, s).unwrap();
    assert_eq!(eval(&g, m), Tensor::from([100u8, 200]));
}

#[test]
fn abs_sign_square_neg_on_ints() {
    let mut g = Graph::new();
    let x = g.constant(Tensor::from([i32::MIN, -3, 0, 65536])).unwrap();
    let (a, s, q, n) = (
        g.abs(x).unwrap(),
        g.sign(x).unwrap(),
        g.square(x).unwrap(),
        g.neg(x).unwrap(),
    );
    // tf.abs keeps MIN; 65536^2 wraps to 0; -MIN wraps to MIN
    assert_eq!(eval(&g, a), Tensor::from([i32::MIN, 3, 0, 65536]));
    assert_eq!(eval(&g, s), Tensor::from([-1i32, -1, 0, 1]));
    assert_eq!(eval(&g, q), Tensor::from([0i32, 9, 0, 0]));
    assert_eq!(eval(&g, n), Tensor::from([i32::MIN, 3, 0, -65536]));
    // tf.square(uint8 [16, 3]) = [0, 9]
    let u = g.constant(Tensor::from([16u8, 3])).unwrap();
    let uq = g.square(u).unwrap();
    assert_eq!(eval(&g, uq), Tensor::from([0u8, 9]));
    // Abs and Sign are not registered for uint8.
    assert!(g.abs(u).unwrap_err().to_string().contains("uint8"));
    assert!(g.sign(u).is_err());
}

#[test]
fn sign_of_floats() {
    let mut g = Graph::new();
    // tf.sign([nan, -0.0, 2, -3]) = [nan, 0, 1, -1]
    let x = g
        .constant(Tensor::from([f64::NAN, -0.0, 2.0, -3.0]))
        .unwrap();
    let s = g.sign(x).unwrap();
    let out = eval(&g, s).to_vec::<f64>().unwrap();
    assert!(out[0].is_nan());
    assert_eq!(out[1].to_bits(), 0f64.to_bits());
    assert_eq!(&out[2..], &[1.0, -1.0]);
}

#[test]
fn float_functions_match_tensorflow() {
    let mut g = Graph::new();
    // tf.math.log1p([-0.5, 0, 1e-7, 3])
    let x = g.constant(Tensor::from([-0.5f32, 0.0, 1e-7, 3.0])).unwrap();
    let l = g.log1p(x).unwrap();
    assert_close(
        &eval(&g, l),
        &[
            -0.6931471824645996,
            0.0,
            9.999999406318238e-08,
            1.3862943649291992,
        ],
        1e-7,
    );
    // tf.sqrt([0, 2, 9, -1])
    let x = g.constant(Tensor::from([0f32, 2.0, 9.0, -1.0])).unwrap();
    let s = g.sqrt(x).unwrap();
    assert_close(
        &eval(&g, s),
        &[0.0, 1.4142135381698608, 3.0, f64::NAN],
        1e-7,
    );
    // tf.math.rsqrt(float64 [0.25, 2, 0])
    let x = g.constant(Tensor::from([0.25f64, 2.0, 0.0])).unwrap();
    let r = g.rsqrt(x).unwrap();
    assert_close(
        &eval(&g, r),
        &[2.0, 0.7071067811865475, f64::INFINITY],
        1e-15,
    );
    let x = g
        .constant(Tensor::from([-2.5f32, -0.5, 0.0, 0.5, 3.0]))
        .unwrap();
    let (t, s) = (g.tanh(x).unwrap(), g.sigmoid(x).unwrap());
    // tf.tanh / tf.sigmoid of [-2.5, -0.5, 0, 0.5, 3] (float32)
    assert_close(
        &eval(&g, t),
        &[
            -0.9866143465042114,
            -0.46211713552474976,
            0.0,
            0.46211713552474976,
            0.9950547218322754,
        ],
        1e-6,
    );
    assert_close(
        &eval(&g, s),
        &[
            0.07585817575454712,
            0.3775406777858734,
            0.5,
            0.622459352016449,
            0.9525741338729858,
        ],
        1e-6,
    );
    // tf.sigmoid(float64 [-40, -2, 0, 2, 40]): no overflow in either tail
    let x = g
        .constant(Tensor::from([-40f64, -2.0, 0.0, 2.0, 40.0]))
        .unwrap();
    let s = g.sigmoid(x).unwrap();
    assert_close(
        &eval(&g, s),
        &[
            4.248354255291589e-18,
            0.11920292202211755,
            0.5,
            0.8807970779778824,
            1.0,
        ],
        1e-14,
    );
}

#[test]
fn float_only_ops_refuse_ints_with_a_cast_hint() {
    let mut g = Graph::new();
    let i = g.constant(Tensor::from([4i32, 9])).unwrap();
    let err = g.sqrt(i).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Build { .. }));
    assert!(
        msg.contains("Sqrt") && msg.contains("int32") && msg.contains("Cast"),
        "{msg}"
    );
    for f in [
        Graph::tanh,
        Graph::sigmoid,
        Graph::softplus,
        Graph::elu,
        Graph::rsqrt,
    ] {
        let msg = f(&mut g, i).unwrap_err().to_string();
        assert!(msg.contains("Cast"), "{msg}");
    }
    let f = g.constant(Tensor::from([1f32])).unwrap();
    let msg = g.add(i, f).unwrap_err().to_string();
    assert!(msg.contains("int32") && msg.contains("float32"), "{msg}");
    let b = g.constant(Tensor::from([true])).unwrap();
    let msg = g.relu(b).unwrap_err().to_string();
    assert!(msg.contains("bool"), "{msg}");
}

#[test]
fn activations_match_tensorflow() {
    let mut g = Graph::new();
    // tf.nn.relu / relu6 keep NaN: relu([nan, -1, 2]) = [nan, 0, 2]
    let x = g
        .constant(Tensor::from([f32::NAN, -1.0, 2.0, 7.0]))
        .unwrap();
    let (r, r6) = (g.relu(x).unwrap(), g.relu6(x).unwrap());
    assert_close(&eval(&g, r), &[f64::NAN, 0.0, 2.0, 7.0], 0.0);
    assert_close(&eval(&g, r6), &[f64::NAN, 0.0, 2.0, 6.0], 0.0);
    // relu6 on uint8 and int64
    let u = g.constant(Tensor::from([16u8, 3])).unwrap();
    let u6 = g.relu6(u).unwrap();
    assert_eq!(eval(&g, u6), Tensor::from([6u8, 3]));
    let i = g.constant(Tensor::from([-5i64, 5])).unwrap();
    let ir = g.relu(i).unwrap();
    assert_eq!(eval(&g, ir), Tensor::from([0i64, 5]));
    // tf.nn.elu([-2.5, -0.5, 0, 0.5, 3])
    let x = g
        .constant(Tensor::from([-2.5f32, -0.5, 0.0, 0.5, 3.0]))
        .unwrap();
    let e = g.elu(x).unwrap();
    assert_close(
        &eval(&g, e),
        &[-0.9179149866104126, -0.39346933364868164, 0.0, 0.5, 3.0],
        1e-6,
    );
    // TensorFlow 2.21 on float32 [-2.5, -0.5, 0, 0.5, 3]
    let x = g
        .constant(Tensor::from([-2.5f32, -0.5, 0.0, 0.5, 3.0]))
        .unwrap();
    let cases: [(Output, [f64; 5]); 4] = [
        (
            g.leaky_relu(x, 0.3).unwrap(),
            [-0.75, -0.15000000596046448, 0.0, 0.5, 3.0],
        ),
        (
            g.selu(x).unwrap(),
            [
                -1.613785743713379,
                -0.6917581558227539,
                0.0,
                0.5253505110740662,
                3.1521029472351074,
            ],
        ),
        (
            g.softsign(x).unwrap(),
            [
                -0.7142857313156128,
                -0.3333333432674408,
                0.0,
                0.3333333432674408,
                0.75,
            ],
        ),
        (
            g.erf(x).unwrap(),
            [
                -0.9995929598808289,
                -0.5204998850822449,
                0.0,
                0.5204998850822449,
                0.9999780058860779,
            ],
        ),
    ];
    for (y, want) in cases {
        assert_close(&eval(&g, y), &want, 1e-6);
    }
    // tf.nn.softplus(float32 [-20, -2.5, 0, 3, 20]); the tails take TF's cut-offs
    let x = g
        .constant(Tensor::from([-20f32, -2.5, 0.0, 3.0, 20.0]))
        .unwrap();
    let s = g.softplus(x).unwrap();
    assert_close(
        &eval(&g, s),
        &[
            2.06115369216775e-09,
            0.07888973504304886,
            0.6931471824645996,
            3.0485873222351074,
            20.0,
        ],
        1e-6,
    );
    // tf.nn.softplus(float64 [-50, -2.5, 0, 3, 50]); large inputs do not overflow
    let x = g
        .constant(Tensor::from([-50f64, -2.5, 0.0, 3.0, 50.0, 1000.0]))
        .unwrap();
    let s = g.softplus(x).unwrap();
    assert_close(
        &eval(&g, s),
        &[
            1.9287498479639178e-22,
            0.07888973429254963,
            std::f64::consts::LN_2,
            3.048587351573742,
            50.0,
            1000.0,
        ],
        1e-14,
    );
}

#[test]
fn comparisons_broadcast_to_bool() {
    let mut g = Graph::new();
    let a = g.constant(Tensor::from([[1i64], [3]])).unwrap();
    let b = g.constant(Tensor::from([1i64, 2, 3])).unwrap();
    let ops = [
        Graph::less,
        Graph::less_equal,
        Graph::greater,
        Graph::greater_equal,
        Graph::equal,
        Graph::not_equal,
    ];
    // a vs b for rows a=1 and a=3 against [1,2,3]
    let want = [
        [[false, true, true], [false, false, false]],
        [[true, true, true], [false, false, true]],
        [[false, false, false], [true, true, false]],
        [[true, false, false], [true, true, true]],
        [[true, false, false], [false, false, true]],
        [[false, true, true], [true, true, false]],
    ];
    for (op, w) in ops.iter().zip(want) {
        let c = op(&mut g, a, b).unwrap();
        assert_eq!(g.dtype(c), DType::Bool);
        assert_eq!(eval(&g, c), Tensor::from(w));
    }
    // NaN compares unequal to everything, itself included.
    let n = g.constant(Tensor::from([f32::NAN, 1.0])).unwrap();
    let (eq, ne, le) = (
        g.equal(n, n).unwrap(),
        g.not_equal(n, n).unwrap(),
        g.less_equal(n, n).unwrap(),
    );
    assert_eq!(eval(&g, eq), Tensor::from([false, true]));
    assert_eq!(eval(&g, ne), Tensor::from([true, false]));
    assert_eq!(eval(&g, le), Tensor::from([false, true]));
    // Equal works on bool; Less does not.
    let t = g.constant(Tensor::from([true, false])).unwrap();
    let f = g.constant(false).unwrap();
    let e = g.equal(t, f).unwrap();
    assert_eq!(eval(&g, e), Tensor::from([false, true]));
    let msg = g.less(t, f).unwrap_err().to_string();
    assert!(msg.contains("Less") && msg.contains("bool"), "{msg}");
    // Python sets the attr explicitly.
    assert_eq!(
        g.node(e.node).attrs().get("incompatible_shape_error"),
        Some(&AttrValue::Bool(true))
    );
}

#[test]
fn equal_with_incompatible_shapes() {
    let mut g = Graph::new();
    let a = g.constant(Tensor::from([1f32, 2.0])).unwrap();
    let b = g.constant(Tensor::from([1f32, 2.0, 3.0])).unwrap();
    let msg = g.equal(a, b).unwrap_err().to_string();
    assert!(msg.contains("Incompatible shapes"), "{msg}");
    // R.Equal(x=zeros([2]), y=zeros([3]), incompatible_shape_error=False) = False (scalar);
    // NotEqual gives True.
    for (op, want) in [("Equal", false), ("NotEqual", true)] {
        let o = g
            .op(op)
            .input(a)
            .input(b)
            .attr("T", DType::Float32)
            .attr("incompatible_shape_error", false)
            .build_output()
            .unwrap();
        assert_eq!(g.shape(o), &PartialShape::scalar());
        assert_eq!(eval(&g, o), Tensor::scalar(want));
    }
    // With an unknown dim the shape is only known at run time.
    let p = g.placeholder(DType::Float32, [None], "p").unwrap();
    let o = g
        .op("Equal")
        .input(p)
        .input(b)
        .attr("incompatible_shape_error", false)
        .build_output()
        .unwrap();
    assert_eq!(g.shape(o), &PartialShape::unknown());
    let sess = Session::new(&g);
    let out = sess
        .run(&[(p, Tensor::from([1f32, 2.0]))], &[o], &[])
        .unwrap();
    assert_eq!(out[0], Tensor::scalar(false));
    let out = sess
        .run(&[(p, Tensor::from([1f32, 0.0, 3.0]))], &[o], &[])
        .unwrap();
    assert_eq!(out[0], Tensor::from([true, false, true]));
}

#[test]
fn logical_ops() {
    let mut g = Graph::new();
    let a = g.constant(Tensor::from([[true], [false]])).unwrap();
    let b = g.constant(Tensor::from([true, false])).unwrap();
    let (and, or, not) = (
        g.logical_and(a, b).unwrap(),
        g.logical_or(a, b).unwrap(),
        g.logical_not(b).unwrap(),
    );
    assert_eq!(eval(&g, and), Tensor::from([[true, false], [false, false]]));
    assert_eq!(eval(&g, or), Tensor::from([[true, true], [true, false]]));
    assert_eq!(eval(&g, not), Tensor::from([false, true]));
    let i = g.constant(Tensor::from([1i32, 0])).unwrap();
    let msg = g.logical_not(i).unwrap_err().to_string();
    assert!(msg.contains("int32") && msg.contains("bool"), "{msg}");
}

#[test]
fn select_tf1_semantics() {
    let mut g = Graph::new();
    let t = g.constant(Tensor::from([[1i32, 2], [3, 4]])).unwrap();
    let e = g.constant(Tensor::from([[5i32, 6], [7, 8]])).unwrap();
    // R.Select(condition=[True, False], x=[[1,2],[3,4]], y=[[5,6],[7,8]]) = [[1,2],[7,8]]
    let rows = g.constant(Tensor::from([true, false])).unwrap();
    let s = g.select(rows, t, e).unwrap();
    assert_eq!(eval(&g, s), Tensor::from([[1i32, 2], [7, 8]]));
    // scalar condition picks a whole tensor
    let no = g.constant(false).unwrap();
    let s = g.select(no, t, e).unwrap();
    assert_eq!(eval(&g, s), Tensor::from([[5i32, 6], [7, 8]]));
    // elementwise, bool data
    let c = g
        .constant(Tensor::from([[true, false], [false, true]]))
        .unwrap();
    let s = g.select(c, t, e).unwrap();
    assert_eq!(eval(&g, s), Tensor::from([[1i32, 6], [7, 4]]));
    let bt = g.constant(Tensor::from([true, true])).unwrap();
    let bf = g.constant(Tensor::from([false, false])).unwrap();
    let s = g.select(rows, bt, bf).unwrap();
    assert_eq!(eval(&g, s), Tensor::from([true, false]));
    // Build-time errors: a vector that does not match dimension 0, a [2,1] condition
    // (Select does not broadcast), mismatched t/e, a non-bool condition.
    let three = g.constant(Tensor::from([true, false, true])).unwrap();
    let msg = g.select(three, t, e).unwrap_err().to_string();
    assert!(msg.contains("dimension 0"), "{msg}");
    let col = g.constant(Tensor::from([[true], [false]])).unwrap();
    assert!(g.select(col, t, e).is_err());
    let short = g.constant(Tensor::from([1i32, 2])).unwrap();
    assert!(g.select(rows, t, short).is_err());
    let msg = g.select(t, t, e).unwrap_err().to_string();
    assert!(msg.contains("bool"), "{msg}");
    // The same mismatch at run time.
    let p = g.placeholder(DType::Bool, [None], "p").unwrap();
    let s = g.select(p, t, e).unwrap();
    let err = Session::new(&g)
        .run(&[(p, Tensor::from([true, false, true]))], &[s], &[])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("Number of batches of 'then' must match"),
        "{err}"
    );
}

#[test]
fn select_v2_broadcasts_all_three() {
    let mut g = Graph::new();
    // tf.where([[True],[False]], [1.,2.,3.], [[10.],[20.]]) = [[1,2,3],[20,20,20]]
    let c = g.constant(Tensor::from([[true], [false]])).unwrap();
    let x = g.constant(Tensor::from([1f32, 2.0, 3.0])).unwrap();
    let y = g.constant(Tensor::from([[10f32], [20.0]])).unwrap();
    let w = g.where_v2(c, x, y).unwrap();
    assert_eq!(g.shape(w), &PartialShape::known(&[2, 3]));
    assert_eq!(
        eval(&g, w),
        Tensor::from([[1f32, 2.0, 3.0], [20.0, 20.0, 20.0]])
    );
    // tf.where([True,False,True], reshape(range(6.),[2,3]), -1.) = [[0,-1,2],[3,-1,5]]
    let c = g.constant(Tensor::from([true, false, true])).unwrap();
    let x = g
        .constant(Tensor::from([[0f64, 1.0, 2.0], [3.0, 4.0, 5.0]]))
        .unwrap();
    let y = g.constant(-1f64).unwrap();
    let w = g.where_v2(c, x, y).unwrap();
    assert_eq!(
        eval(&g, w),
        Tensor::from([[0f64, -1.0, 2.0], [3.0, -1.0, 5.0]])
    );
    // scalar condition with a broadcast result, and an empty output
    let yes = g.constant(true).unwrap();
    let w = g.where_v2(yes, y, x).unwrap();
    assert_eq!(eval(&g, w), Tensor::full(&[2, 3], -1f64));
    let empty = g
        .constant(Tensor::new(&[0, 1, 1], Vec::<bool>::new()).unwrap())
        .unwrap();
    let w = g.where_v2(empty, x, y).unwrap();
    assert_eq!(g.shape(w), &PartialShape::known(&[0, 2, 3]));
    assert_eq!(eval(&g, w).shape(), &[0, 2, 3]);
    let four = g.constant(Tensor::from([true, false, true, true])).unwrap();
    let msg = g.where_v2(four, x, y).unwrap_err().to_string();
    assert!(msg.contains("Incompatible shapes"), "{msg}");
}

#[test]
fn add_n_sums_same_shaped_inputs() {
    let mut g = Graph::new();
    let a = g.constant(Tensor::from([1i32, 2])).unwrap();
    let b = g.constant(Tensor::from([10i32, i32::MAX])).unwrap();
    let c = g.constant(Tensor::from([100i32, 1])).unwrap();
    let s = g.add_n(&[a, b, c]).unwrap();
    assert_eq!(g.node(s.node).attrs().get("N"), Some(&AttrValue::Int(3)));
    // [111, 2 + MAX + 1] wraps to MIN + 2
    assert_eq!(eval(&g, s), Tensor::from([111i32, i32::MIN + 2]));
    let one = g.add_n(&[a]).unwrap();
    assert_eq!(eval(&g, one), Tensor::from([1i32, 2]));
    let d = g.constant(Tensor::from([1i32, 2, 3])).unwrap();
    let msg = g.add_n(&[a, d]).unwrap_err().to_string();
    assert!(msg.contains("same shape"), "{msg}");
    assert!(g.add_n(&[]).is_err());
    let f = g.constant(Tensor::from([1f32, 2.0])).unwrap();
    assert!(g.add_n(&[a, f]).is_err());
    // Run-time shape check when shapes are not known while building.
    let p = g.placeholder(DType::Int32, [None], "p").unwrap();
    let s = g.add_n(&[a, p]).unwrap();
    let err = Session::new(&g)
        .run(&[(p, Tensor::from([1i32, 2, 3]))], &[s], &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("same size and shape"), "{err}");
}

#[test]
fn cast_follows_tensorflow_cpu() {
    let mut g = Graph::new();
    let nan = f32::NAN;
    let f = g
        .constant(Tensor::from([1.9f32, -1.9, 3e9, -3e9, nan, f32::INFINITY]))
        .unwrap();
    // tf.cast(float32 [1.9,-1.9,3e9,-3e9,nan,inf], tf.int32) = [1,-1,MIN,MIN,MIN,MIN]
    let i = g.cast(f, DType::Int32).unwrap();
    assert_eq!(
        eval(&g, i),
        Tensor::from([1i32, -1, i32::MIN, i32::MIN, i32::MIN, i32::MIN])
    );
    // tf.cast(float32 [1.9,-1.9,3e19,-3e19,nan], tf.int64) = [1,-1,MIN,MIN,MIN]
    let big = g
        .constant(Tensor::from([1.9f32, -1.9, 3e19, -3e19, nan]))
        .unwrap();
    let l = g.cast(big, DType::Int64).unwrap();
    assert_eq!(
        eval(&g, l),
        Tensor::from([1i64, -1, i64::MIN, i64::MIN, i64::MIN])
    );
    // tf.cast(float32 [1.9,-1.9,300,-1,255.5,nan,256,1e10], tf.uint8) = [1,255,44,255,255,0,0,0]
    let f = g
        .constant(Tensor::from([
            1.9f32, -1.9, 300.0, -1.0, 255.5, nan, 256.0, 1e10,
        ]))
        .unwrap();
    let u = g.cast(f, DType::UInt8).unwrap();
    assert_eq!(eval(&g, u), Tensor::from([1u8, 255, 44, 255, 255, 0, 0, 0]));
    // tf.cast(int32 [300,-1], uint8) = [44, 255]; tf.cast(int64 [2**33+5, -1], int32) = [5, -1]
    let i = g.constant(Tensor::from([300i32, -1])).unwrap();
    let u = g.cast(i, DType::UInt8).unwrap();
    assert_eq!(eval(&g, u), Tensor::from([44u8, 255]));
    let l = g.constant(Tensor::from([(1i64 << 33) + 5, -1])).unwrap();
    let i = g.cast(l, DType::Int32).unwrap();
    assert_eq!(eval(&g, i), Tensor::from([5i32, -1]));
    // tf.cast(int64 [2**53 + 2**29 + 1], float32) = 9007200328482816 (rounded once)
    let l = g
        .constant(Tensor::from([(1i64 << 53) + (1 << 29) + 1]))
        .unwrap();
    let f = g.cast(l, DType::Float32).unwrap();
    assert_eq!(eval(&g, f), Tensor::from([9007200328482816f32]));
    // tf.cast(float32 [0, -0, nan, 0.1], bool) = [F, F, T, T]; bool -> numbers is 0/1
    let f = g.constant(Tensor::from([0f32, -0.0, nan, 0.1])).unwrap();
    let b = g.cast(f, DType::Bool).unwrap();
    assert_eq!(eval(&g, b), Tensor::from([false, false, true, true]));
    for dt in [
        DType::Float32,
        DType::Float64,
        DType::Int32,
        DType::Int64,
        DType::UInt8,
    ] {
        let back = g.cast(b, dt).unwrap();
        assert_eq!(g.dtype(back), dt);
        assert_eq!(eval(&g, back).to_f64_vec(), vec![0.0, 0.0, 1.0, 1.0]);
    }
    let u = g.constant(Tensor::from([0u8, 7])).unwrap();
    let ub = g.cast(u, DType::Bool).unwrap();
    assert_eq!(eval(&g, ub), Tensor::from([false, true]));
    // Same dtype passes through.
    let same = g.cast(f, DType::Float32).unwrap();
    assert_eq!(g.dtype(same), DType::Float32);
    assert_close(&eval(&g, same), &[0.0, 0.0, f64::NAN, 0.1f32 as f64], 0.0);
}

#[test]
fn cast_truncate_attr() {
    let mut g = Graph::new();
    // R.Cast(x=float64 [1+2**-23+2**-25, 0.1], DstT=float32, Truncate=True/False)
    let x = g
        .constant(Tensor::from([1.0 + 2f64.powi(-23) + 2f64.powi(-25), 0.1]))
        .unwrap();
    let cast = |g: &mut Graph, truncate: bool| {
        g.op("Cast")
            .input(x)
            .attr("SrcT", DType::Float64)
            .attr("DstT", DType::Float32)
            .attr("Truncate", truncate)
            .build_output()
            .unwrap()
    };
    let (t, n) = (cast(&mut g, true), cast(&mut g, false));
    assert_eq!(
        eval(&g, t).to_f64_vec(),
        vec![1.0000001192092896, 0.09999999403953552]
    );
    assert_eq!(
        eval(&g, n).to_f64_vec(),
        vec![1.0000001192092896, 0.10000000149011612]
    );
}

#[test]
fn non_differentiable_ops_follow_tensorflow() {
    let no_grad = [
        "Equal",
        "NotEqual",
        "Less",
        "LessEqual",
        "Greater",
        "GreaterEqual",
        "LogicalAnd",
        "LogicalOr",
        "LogicalNot",
        "FloorDiv",
    ];
    for op in no_grad {
        let def = registry::lookup(op).unwrap();
        assert!(
            matches!(def.gradient(), Gradient::NotDifferentiable),
            "{op}"
        );
    }
    // TensorFlow defines gradients for these (added by a later pass), so they are not
    // marked non-differentiable.
    for op in [
        "Sign", "FloorMod", "Abs", "Select", "SelectV2", "AddN", "Cast", "Pow",
    ] {
        let def = registry::lookup(op).unwrap();
        assert!(
            !matches!(def.gradient(), Gradient::NotDifferentiable),
            "{op}"
        );
    }
}

#[test]
fn fetched_inputs_are_not_overwritten_in_place() {
    // An input that is also fetched must not be overwritten by an in-place kernel.
    let mut g = Graph::new();
    let x = g.placeholder(DType::Float32, [3], "x").unwrap();
    let r = g.relu(x).unwrap();
    let sq = g.square(x).unwrap();
    let out = Session::new(&g)
        .run(&[(x, Tensor::from([-1f32, 2.0, -3.0]))], &[x, r, sq], &[])
        .unwrap();
    assert_eq!(out[0], Tensor::from([-1f32, 2.0, -3.0]));
    assert_eq!(out[1], Tensor::from([0f32, 2.0, 0.0]));
    assert_eq!(out[2], Tensor::from([1f32, 4.0, 9.0]));
}

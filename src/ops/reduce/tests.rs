//! Reductions run through a Session, checked against TensorFlow 2.21 (CPU) values (the
//! expression is quoted) and against a naive per-element reference written here.

use crate::ops::{registry, Gradient};
use crate::{AttrValue, DType, Error, Graph, Output, PartialShape, Session, Tensor};

fn run(g: &Graph, o: Output) -> crate::Result<Tensor> {
    Ok(Session::new(g).run(&[], &[o], &[])?.remove(0))
}

fn eval(g: &Graph, o: Output) -> Tensor {
    run(g, o).unwrap()
}

/// `tf.reshape(tf.range(24, dtype), [2,3,4]) - 10`
fn iota(g: &mut Graph, dtype: DType) -> Output {
    let v: Vec<f64> = (0..24).map(|i| f64::from(i) - 10.0).collect();
    let t = Tensor::new(&[2, 3, 4], v).unwrap().cast(dtype).unwrap();
    g.constant(t).unwrap()
}

#[test]
fn float_reductions_match_tensorflow() {
    let mut g = Graph::new();
    let x = iota(&mut g, DType::Float32);
    // tf.reduce_sum(x, [0,2]) = [-20, 12, 44]; keepdims=True gives shape [1,3,1]
    let s = g.reduce_sum(x, &[0, 2], false).unwrap();
    let sk = g.reduce_sum(x, &[0, 2], true).unwrap();
    assert_eq!(g.shape(s), &PartialShape::known(&[3]));
    assert_eq!(g.shape(sk), &PartialShape::known(&[1, 3, 1]));
    assert_eq!(eval(&g, s), Tensor::from([-20f32, 12.0, 44.0]));
    assert_eq!(eval(&g, sk), Tensor::from([[[-20f32], [12.0], [44.0]]]));
    // tf.reduce_mean(x, [-1]) = [[-8.5,-4.5,-0.5],[3.5,7.5,11.5]]
    let m = g.reduce_mean(x, &[-1], false).unwrap();
    assert_eq!(
        eval(&g, m),
        Tensor::from([[-8.5f32, -4.5, -0.5], [3.5, 7.5, 11.5]])
    );
    // tf.reduce_max(x, [1]) = [[-2,-1,0,1],[10,11,12,13]]
    let mx = g.reduce_max(x, &[1], false).unwrap();
    assert_eq!(
        eval(&g, mx),
        Tensor::from([[-2f32, -1.0, 0.0, 1.0], [10.0, 11.0, 12.0, 13.0]])
    );
    // tf.reduce_min(x, [0,1]) = [-10,-9,-8,-7]
    let mn = g.reduce_min(x, &[0, 1], false).unwrap();
    assert_eq!(eval(&g, mn), Tensor::from([-10f32, -9.0, -8.0, -7.0]));
    // tf.reduce_prod(x, [2]) = [[5040,360,0],[120,3024,17160]]
    let p = g.reduce_prod(x, &[2], false).unwrap();
    assert_eq!(
        eval(&g, p),
        Tensor::from([[5040f32, 360.0, 0.0], [120.0, 3024.0, 17160.0]])
    );
}

#[test]
fn integer_reductions_match_tensorflow() {
    let mut g = Graph::new();
    let x = iota(&mut g, DType::Int32);
    // tf.reduce_mean(xi, [1]) = [[-6,-5,-4,-3],[6,7,8,9]]; over all axes = 1 (33/24 truncated)
    let m = g.reduce_mean(x, &[1], false).unwrap();
    assert_eq!(
        eval(&g, m),
        Tensor::from([[-6i32, -5, -4, -3], [6, 7, 8, 9]])
    );
    let all = g.reduce_mean(x, &[0, 1, 2], false).unwrap();
    assert_eq!(g.shape(all), &PartialShape::scalar());
    assert_eq!(eval(&g, all), Tensor::scalar(1i32));
    // tf.reduce_mean(int32 [-3, 0]) = -1 (truncation toward zero)
    let v = g.constant(Tensor::from([-3i32, 0])).unwrap();
    let m = g.reduce_mean(v, &[0], false).unwrap();
    assert_eq!(eval(&g, m), Tensor::scalar(-1i32));
    // tf.reduce_mean(int32 [MAX, MAX]) = MAX: TF sums int32 in int64
    let v = g.constant(Tensor::from([i32::MAX, i32::MAX])).unwrap();
    let m = g.reduce_mean(v, &[0], false).unwrap();
    assert_eq!(eval(&g, m), Tensor::scalar(i32::MAX));
    // tf.reduce_mean(uint8 [200, 250]) = 225, tf.reduce_sum(uint8 [200, 100]) = 44 (wraps)
    let u = g.constant(Tensor::from([200u8, 250])).unwrap();
    let m = g.reduce_mean(u, &[0], false).unwrap();
    assert_eq!(eval(&g, m), Tensor::scalar(225u8));
    let u = g.constant(Tensor::from([200u8, 100])).unwrap();
    let s = g.reduce_sum(u, &[0], false).unwrap();
    assert_eq!(eval(&g, s), Tensor::scalar(44u8));
    // tf.reduce_mean(int64 [2**62, 2**62]) = -2**62: int64 sums wrap
    let l = g.constant(Tensor::from([1i64 << 62, 1i64 << 62])).unwrap();
    let m = g.reduce_mean(l, &[0], false).unwrap();
    assert_eq!(eval(&g, m), Tensor::scalar(-(1i64 << 62)));
    // tf.reduce_prod(int32 [65536, 65536, 3]) = 0; tf.reduce_sum(int32 [MAX, 1]) = MIN
    let v = g.constant(Tensor::from([65536i32, 65536, 3])).unwrap();
    let p = g.reduce_prod(v, &[0], false).unwrap();
    assert_eq!(eval(&g, p), Tensor::scalar(0i32));
    let v = g.constant(Tensor::from([i32::MAX, 1])).unwrap();
    let s = g.reduce_sum(v, &[0], false).unwrap();
    assert_eq!(eval(&g, s), Tensor::scalar(i32::MIN));
}

/// The element at `index` of a row-major `shape`: a deterministic, exactly summable pattern.
fn pattern(i: usize) -> f64 {
    ((i * 37) % 11) as f64 - 5.0
}

/// Naive reference: visits every input element and folds it into its output slot.
fn naive(shape: &[usize], reduced: &[bool], op: &str) -> Vec<f64> {
    let out_dims: Vec<usize> = shape
        .iter()
        .zip(reduced)
        .map(|(&d, &r)| if r { 1 } else { d })
        .collect();
    let n_out: usize = out_dims.iter().product();
    let count: usize = shape
        .iter()
        .zip(reduced)
        .filter(|p| *p.1)
        .map(|p| *p.0)
        .product();
    let init = match op {
        "Sum" | "Mean" => 0.0,
        "Prod" => 1.0,
        "Max" => f64::NEG_INFINITY,
        _ => f64::INFINITY,
    };
    let mut out = vec![init; n_out];
    let total: usize = shape.iter().product();
    for flat in 0..total {
        // Unravel, zero the reduced coordinates, ravel into the output.
        let (mut rem, mut o, mut stride) = (flat, 0, 1);
        let mut coords = vec![0; shape.len()];
        for d in (0..shape.len()).rev() {
            coords[d] = rem % shape[d];
            rem /= shape[d];
        }
        for d in (0..shape.len()).rev() {
            o += if reduced[d] { 0 } else { coords[d] * stride };
            stride *= out_dims[d];
        }
        let v = pattern(flat);
        out[o] = match op {
            "Sum" | "Mean" => out[o] + v,
            "Prod" => out[o] * v,
            "Max" => out[o].max(v),
            _ => out[o].min(v),
        };
    }
    if op == "Mean" {
        out.iter_mut().for_each(|v| *v /= count as f64);
    }
    out
}

#[test]
fn every_axis_subset_matches_a_naive_reference() {
    // A unit dim (dropped before merging) and a long middle axis (pairwise splitting of
    // strided rows, with several outer blocks sharing the scratch rows). Values are small
    // integers in float64, so sums are exact; products of the long axis would overflow.
    let cases: [(&[usize], &[&str]); 2] = [
        (&[3, 1, 4, 5], &["Sum", "Mean", "Max", "Min", "Prod"]),
        (&[2, 700, 1, 3], &["Sum", "Mean", "Max", "Min"]),
    ];
    let mut g = Graph::new();
    for (shape, ops) in cases {
        let n: usize = shape.iter().product();
        let data: Vec<f64> = (0..n).map(pattern).collect();
        let x = g.constant(Tensor::new(shape, data).unwrap()).unwrap();
        subsets_match(&mut g, x, shape, ops);
    }
}

fn subsets_match(g: &mut Graph, x: Output, shape: &[usize], ops: &[&str]) {
    for mask in 0..16u32 {
        let reduced: Vec<bool> = (0..4).map(|d| mask & (1 << d) != 0).collect();
        // Mix positive and negative spellings of the axes.
        let axes: Vec<i64> = (0..4)
            .filter(|&d| reduced[d as usize])
            .map(|d| if d % 2 == 0 { d } else { d - 4 })
            .collect();
        for (&op, keep_dims) in ops.iter().flat_map(|op| [(op, true), (op, false)]) {
            let want = naive(shape, &reduced, op);
            let want_shape: Vec<usize> = (0..4)
                .filter_map(|d| match (reduced[d], keep_dims) {
                    (false, _) => Some(shape[d]),
                    (true, true) => Some(1),
                    (true, false) => None,
                })
                .collect();
            let a = g.constant(Tensor::vector(axes.clone())).unwrap();
            let o = g
                .op(op)
                .input(x)
                .input(a)
                .attr("keep_dims", keep_dims)
                .build_output()
                .unwrap();
            assert_eq!(g.shape(o), &PartialShape::known(&want_shape));
            let got = eval(g, o);
            assert_eq!(got.shape(), want_shape.as_slice(), "{op} {axes:?}");
            let got = got.to_f64_vec();
            for (a, b) in got.iter().zip(&want) {
                assert!(
                    (a - b).abs() <= 1e-12 * b.abs().max(1.0),
                    "{op} {axes:?}: {got:?} vs {want:?}"
                );
            }
        }
    }
}

#[test]
fn empty_reductions_give_the_identity() {
    let mut g = Graph::new();
    let ef = g.constant(Tensor::full(&[2, 0], 0f32)).unwrap();
    let ei = g.constant(Tensor::full(&[2, 0], 0i32)).unwrap();
    let eu = g.constant(Tensor::full(&[2, 0], 0u8)).unwrap();
    let inf = f32::INFINITY;
    // tf.reduce_sum / max / min / mean / prod of zeros([2,0]) over axis 1
    let cases: [(&str, Output, Tensor); 9] = [
        ("Sum", ef, Tensor::from([0f32, 0.0])),
        ("Max", ef, Tensor::from([-inf, -inf])),
        ("Min", ef, Tensor::from([inf, inf])),
        ("Prod", ei, Tensor::from([1i32, 1])),
        ("Max", ei, Tensor::from([i32::MIN, i32::MIN])),
        ("Max", eu, Tensor::from([0u8, 0])),
        ("Min", eu, Tensor::from([255u8, 255])),
        ("Mean", ei, Tensor::from([0i32, 0])),
        ("Sum", eu, Tensor::from([0u8, 0])),
    ];
    for (op, x, want) in cases {
        let a = g.constant(Tensor::from([1i32])).unwrap();
        let o = g.op(op).input(x).input(a).build_output().unwrap();
        assert_eq!(eval(&g, o), want, "{op}");
    }
    let m = g.reduce_mean(ef, &[1], false).unwrap();
    let out = eval(&g, m).to_vec::<f32>().unwrap();
    assert!(out.len() == 2 && out.iter().all(|v| v.is_nan()), "{out:?}");
    // Reducing the non-empty axis of an empty tensor gives an empty result.
    let s = g.reduce_sum(ef, &[0], false).unwrap();
    assert_eq!(g.shape(s), &PartialShape::known(&[0]));
    assert_eq!(eval(&g, s).shape(), &[0]);
}

#[test]
fn nan_propagates_through_max_and_min() {
    let mut g = Graph::new();
    let nan = f32::NAN;
    // tf.reduce_max([[1, nan], [3, 4]], axis=0) = [3, nan]; tf.reduce_min([1, nan, 3]) = nan
    let x = g.constant(Tensor::from([[1f32, nan], [3.0, 4.0]])).unwrap();
    let m = g.reduce_max(x, &[0], false).unwrap();
    let out = eval(&g, m).to_vec::<f32>().unwrap();
    assert!(out[0] == 3.0 && out[1].is_nan(), "{out:?}");
    let v: Vec<f32> = (0..1000)
        .map(|i| if i == 777 { nan } else { i as f32 })
        .collect();
    let v = g.constant(Tensor::vector(v)).unwrap();
    for o in [
        g.reduce_min(v, &[0], false).unwrap(),
        g.reduce_max(v, &[0], false).unwrap(),
    ] {
        assert!(eval(&g, o).scalar_value::<f32>().unwrap().is_nan());
    }
}

#[test]
fn float32_sums_are_pairwise() {
    let mut g = Graph::new();
    // 10_000_001 * 0.1f32: the exact sum of the stored values is 1000000.1; a sequential
    // float32 loop drifts to about 1087937, TF's tree reduction gives 1000001.5.
    let n = 10_000_001;
    let x = g.constant(Tensor::full(&[n], 0.1f32)).unwrap();
    let s = g.reduce_sum(x, &[0], false).unwrap();
    let got = eval(&g, s).scalar_value::<f32>().unwrap();
    let exact = n as f64 * f64::from(0.1f32);
    assert!((f64::from(got) - exact).abs() < 2.0, "{got} vs {exact}");
    // The same along a strided (non-innermost) axis: 1_000_001 rows of [0.1, 0.2].
    let rows = 1_000_001;
    let x = g
        .constant(Tensor::new(&[rows, 2], [0.1f32, 0.2].repeat(rows)).unwrap())
        .unwrap();
    let s = g.reduce_sum(x, &[0], false).unwrap();
    let got = eval(&g, s).to_vec::<f32>().unwrap();
    for (v, w) in got.iter().zip([0.1f32, 0.2]) {
        let exact = rows as f64 * f64::from(w);
        assert!((f64::from(*v) - exact).abs() < 0.5, "{got:?}");
    }
    // Means divide the float32 sum: mean(range(1000)) = 499.5
    let x = g
        .constant(Tensor::vector(
            (0..1000).map(|i| i as f32).collect::<Vec<_>>(),
        ))
        .unwrap();
    let m = g.reduce_mean(x, &[0], false).unwrap();
    assert_eq!(eval(&g, m), Tensor::scalar(499.5f32));
}

#[test]
fn axes_forms_and_shape_inference() {
    let mut g = Graph::new();
    let x = iota(&mut g, DType::Float64);
    // Empty axes: no reduction at all (TF's op semantics).
    let same = g.reduce_sum(x, &[], false).unwrap();
    assert_eq!(g.shape(same), &PartialShape::known(&[2, 3, 4]));
    assert_eq!(eval(&g, same), eval(&g, x));
    // A scalar int64 axis tensor.
    let a = g.constant(-2i64).unwrap();
    let s = g.reduce_max_t(x, a, false).unwrap();
    assert_eq!(
        g.node(s.node).attrs().get("Tidx"),
        Some(&AttrValue::Type(DType::Int64))
    );
    assert_eq!(g.shape(s), &PartialShape::known(&[2, 4]));
    assert_eq!(eval(&g, s).shape(), &[2, 4]);
    // Axes fed at run time: rank known only with keep_dims.
    let p = g.placeholder(DType::Int32, [None], "axes").unwrap();
    let k = g.reduce_sum_t(x, p, true).unwrap();
    let u = g.reduce_sum_t(x, p, false).unwrap();
    assert_eq!(g.shape(k), &PartialShape::with_rank(3));
    assert_eq!(g.shape(u), &PartialShape::unknown());
    let sess = Session::new(&g);
    let out = sess
        .run(&[(p, Tensor::from([2i32, 0]))], &[k, u], &[])
        .unwrap();
    // tf.reduce_sum(x, [0,2]) = [-20, 12, 44] (x as float64)
    assert_eq!(out[0], Tensor::from([[[-20f64], [12.0], [44.0]]]));
    assert_eq!(out[1], Tensor::from([-20f64, 12.0, 44.0]));
    // Run-time errors in TF's words.
    let err = sess
        .run(&[(p, Tensor::from([1i32, -2]))], &[u], &[])
        .unwrap_err();
    assert!(matches!(err, Error::Run { .. }));
    assert!(err.to_string().contains("duplicate dimension: 1"), "{err}");
    let err = sess
        .run(&[(p, Tensor::from([3i32]))], &[u], &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("Invalid reduction dimension (3"), "{err}");
    // Unknown input rank: unknown output even with constant axes.
    let any = g
        .placeholder(DType::Float32, PartialShape::unknown(), "any")
        .unwrap();
    let r = g.reduce_mean(any, &[0], true).unwrap();
    assert_eq!(g.shape(r), &PartialShape::unknown());
    // Unknown dims stay unknown.
    let part = g
        .placeholder(DType::Float32, [None, Some(5)], "part")
        .unwrap();
    let r = g.reduce_mean(part, &[1], true).unwrap();
    assert_eq!(g.shape(r), &PartialShape::new(vec![None, Some(1)]));
    // Builder attrs, as tf.reduce_sum sets them.
    let attrs = g.node(same.node).attrs();
    assert_eq!(attrs.get("keep_dims"), Some(&AttrValue::Bool(false)));
    assert_eq!(attrs.get("T"), Some(&AttrValue::Type(DType::Float64)));
    assert_eq!(attrs.get("Tidx"), Some(&AttrValue::Type(DType::Int32)));
}

#[test]
fn build_time_errors_explain_the_problem() {
    let mut g = Graph::new();
    let x = iota(&mut g, DType::Float32);
    let msg = g.reduce_sum(x, &[3], false).unwrap_err().to_string();
    assert!(
        msg.contains("Sum")
            && msg.contains("Invalid reduction dimension (3")
            && msg.contains("[-3, 3)"),
        "{msg}"
    );
    let msg = g.reduce_mean(x, &[1, -2], false).unwrap_err().to_string();
    assert!(msg.contains("duplicate dimension: 1"), "{msg}");
    let a2 = g.constant(Tensor::from([[1i32]])).unwrap();
    let msg = g.reduce_sum_t(x, a2, false).unwrap_err().to_string();
    assert!(msg.contains("rank 2"), "{msg}");
    let af = g.constant(Tensor::from([1f32])).unwrap();
    let msg = g.reduce_sum_t(x, af, false).unwrap_err().to_string();
    assert!(msg.contains("int32 or int64"), "{msg}");
    let b = g.constant(Tensor::from([true])).unwrap();
    let msg = g.reduce_max(b, &[0], false).unwrap_err().to_string();
    assert!(msg.contains("bool"), "{msg}");
    // A scalar input has no axis 0.
    let s = g.constant(1f32).unwrap();
    assert!(g.reduce_sum(s, &[0], false).is_err());
    let whole = g.reduce_sum(s, &[], false).unwrap();
    assert_eq!(eval(&g, whole), Tensor::scalar(1f32));
}

#[test]
fn argmax_argmin_match_tensorflow() {
    let mut g = Graph::new();
    let x = iota(&mut g, DType::Float32);
    // tf.math.argmax(x, 1) = [[2,2,2,2],[2,2,2,2]] (int64)
    let a = g.argmax(x, 1, DType::Int64).unwrap();
    assert_eq!(g.shape(a), &PartialShape::known(&[2, 4]));
    assert_eq!(eval(&g, a), Tensor::from([[2i64; 4]; 2]));
    // tf.math.argmin(x, -1, output_type=tf.int32) = [[0,0,0],[0,0,0]]
    let a = g.argmin(x, -1, DType::Int32).unwrap();
    assert_eq!(g.dtype(a), DType::Int32);
    assert_eq!(eval(&g, a), Tensor::from([[0i32; 3]; 2]));
    let nan = f32::NAN;
    let inf = f32::INFINITY;
    // NaN never wins; ties give the first index:
    // argmax [1,nan,3] = 2, [nan,1,3] = 2, [nan,nan] = 0, [nan,-inf] = 0, [1,3,3] = 1;
    // argmin [1,nan,0] = 2, [nan,5] = 1, [nan,inf,inf] = 0
    let cases: [(&[f32], bool, i64); 8] = [
        (&[1.0, nan, 3.0], true, 2),
        (&[nan, 1.0, 3.0], true, 2),
        (&[nan, nan], true, 0),
        (&[nan, -inf], true, 0),
        (&[1.0, 3.0, 3.0], true, 1),
        (&[1.0, nan, 0.0], false, 2),
        (&[nan, 5.0], false, 1),
        (&[nan, inf, inf], false, 0),
    ];
    for (v, max, want) in cases {
        let c = g.constant(Tensor::vector(v.to_vec())).unwrap();
        let a = if max {
            g.argmax(c, 0, DType::Int64)
        } else {
            g.argmin(c, 0, DType::Int64)
        }
        .unwrap();
        assert_eq!(eval(&g, a), Tensor::scalar(want), "{v:?} {max}");
    }
    // tf.math.argmax(tf.constant([[1.,nan,3.],[2.,1.,nan],[2.,5.,1.]]), axis=0) = [1,2,0]
    let m = g
        .constant(Tensor::from([
            [1f32, nan, 3.0],
            [2.0, 1.0, nan],
            [2.0, 5.0, 1.0],
        ]))
        .unwrap();
    let a = g.argmax(m, 0, DType::Int64).unwrap();
    assert_eq!(eval(&g, a), Tensor::from([1i64, 2, 0]));
    // bool, uint8 and int64 inputs: argmax([F,T,T]) = 1, argmax(uint8 [3,255,255]) = 1,
    // argmin(int64 [[3,-5],[-9,2]], -1) = [1, 0]
    let b = g.constant(Tensor::from([false, true, true])).unwrap();
    let a = g.argmax(b, 0, DType::Int64).unwrap();
    assert_eq!(eval(&g, a), Tensor::scalar(1i64));
    let u = g.constant(Tensor::from([3u8, 255, 255])).unwrap();
    let a = g.argmax(u, 0, DType::Int32).unwrap();
    assert_eq!(eval(&g, a), Tensor::scalar(1i32));
    let l = g.constant(Tensor::from([[3i64, -5], [-9, 2]])).unwrap();
    let a = g.argmin(l, -1, DType::Int64).unwrap();
    assert_eq!(eval(&g, a), Tensor::from([1i64, 0]));
}

#[test]
fn argmax_shapes_and_errors() {
    let mut g = Graph::new();
    // tf.math.argmax(zeros([2,0]), 1): "Reduction axis 1 is empty in shape [2,0]"
    let e = g.constant(Tensor::full(&[2, 0], 0f32)).unwrap();
    let a = g.argmax(e, 1, DType::Int64).unwrap();
    let err = run(&g, a).unwrap_err().to_string();
    assert!(err.contains("Reduction axis 1 is empty"), "{err}");
    // tf.math.argmax(zeros([0,3]), 1) = [] (empty output, no error)
    let e = g.constant(Tensor::full(&[0, 3], 0f32)).unwrap();
    let a = g.argmax(e, 1, DType::Int64).unwrap();
    assert_eq!(eval(&g, a).shape(), &[0]);
    let x = g
        .placeholder(DType::Float32, [Some(2), None, Some(3)], "x")
        .unwrap();
    let msg = g.argmax(x, 3, DType::Int64).unwrap_err().to_string();
    assert!(msg.contains("[-3, 3)"), "{msg}");
    let msg = g.argmax(x, 0, DType::Float32).unwrap_err().to_string();
    assert!(msg.contains("output_type"), "{msg}");
    let v = g.constant(Tensor::from([1i32])).unwrap();
    let msg = g
        .op("ArgMax")
        .input(x)
        .input(v)
        .build_output()
        .unwrap_err()
        .to_string();
    assert!(msg.contains("scalar"), "{msg}");
    let s = g.constant(1f32).unwrap();
    assert!(g.argmax(s, 0, DType::Int64).is_err());
    // A dimension fed at run time: rank known, range checked when it runs.
    let d = g
        .placeholder(DType::Int32, PartialShape::scalar(), "d")
        .unwrap();
    let a = g.op("ArgMax").input(x).input(d).build_output().unwrap();
    assert_eq!(g.dtype(a), DType::Int64);
    assert_eq!(g.shape(a), &PartialShape::with_rank(2));
    let sess = Session::new(&g);
    let data = Tensor::new(&[2, 1, 3], vec![0f32, 5.0, 1.0, 7.0, 2.0, 9.0]).unwrap();
    let out = sess
        .run(&[(x, data.clone()), (d, Tensor::scalar(-1i32))], &[a], &[])
        .unwrap();
    assert_eq!(out[0], Tensor::from([[1i64], [2]]));
    let err = sess
        .run(&[(x, data), (d, Tensor::scalar(3i32))], &[a], &[])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("Expected dimension in the range [-3, 3), but got 3"),
        "{err}"
    );
}

#[test]
fn registrations_follow_tensorflow() {
    for op in ["ArgMax", "ArgMin"] {
        let def = registry::lookup(op).unwrap();
        assert!(
            matches!(def.gradient(), Gradient::NotDifferentiable),
            "{op}"
        );
        let defaults = def.default_attrs();
        assert!(defaults.contains(&("output_type", AttrValue::Type(DType::Int64))));
        assert!(defaults.contains(&("Tidx", AttrValue::Type(DType::Int32))));
    }
    for op in ["Sum", "Mean", "Max", "Min", "Prod"] {
        let def = registry::lookup(op).unwrap();
        assert!(
            !matches!(def.gradient(), Gradient::NotDifferentiable),
            "{op}"
        );
        let defaults = def.default_attrs();
        assert!(defaults.contains(&("keep_dims", AttrValue::Bool(false))));
        assert!(defaults.contains(&("Tidx", AttrValue::Type(DType::Int32))));
    }
}

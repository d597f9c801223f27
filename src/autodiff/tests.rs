//! The registry-wide gradient check, and tests of the gradient pass itself.

use super::check::check_gradients;
use crate::ops::{registry, Gradient};
use crate::test_util::GradCase;
use crate::{DType, Graph, PartialShape, Session, Tensor};
use std::collections::HashSet;

/// Every family's cases.
fn all_cases() -> Vec<GradCase> {
    let mut cases = Vec::new();
    cases.extend(crate::ops::plumbing::gradient_cases());
    cases.extend(crate::ops::math::gradient_cases());
    cases.extend(crate::ops::reduce::gradient_cases());
    cases.extend(crate::ops::array::gradient_cases());
    cases.extend(crate::ops::nn::gradient_cases());
    cases.extend(crate::ops::linalg::gradient_cases());
    cases.extend(crate::ops::control_flow::grad::gradient_cases());
    cases.extend(crate::ops::list::gradient_cases());
    cases
}

/// Central differences with step 1e-6 in float64 agree with the symbolic gradient of every
/// differentiable op, and every differentiable op has a case.
#[test]
fn every_differentiable_op_matches_finite_differences() {
    let cases = all_cases();
    let mut failures = Vec::new();
    for case in &cases {
        match check_gradients(case.build, &case.inputs, 1e-6) {
            Ok(r) if r.max_error < 1e-6 => {}
            Ok(r) => failures.push(format!(
                "{}: error {:.3e} at input {:?}",
                case.op, r.max_error, r.worst
            )),
            Err(e) => failures.push(format!("{}: {e}", case.op)),
        }
    }
    let mut covered: HashSet<&str> = cases.iter().map(|c| c.op).collect();
    // A read's input is a resource handle, which no placeholder can stand for: checked
    // against central differences in `ops::resource::tests` instead.
    covered.insert("ReadVariableOp");
    // TensorFlow 1 control flow's gradient is a refusal naming the node (tested in
    // tests/tf1_control_flow.rs).
    for op in [
        "Enter",
        "Exit",
        "NextIteration",
        "LoopCond",
        "Switch",
        "Merge",
    ] {
        covered.insert(op);
    }
    for op in registry::all_ops() {
        if matches!(op.gradient(), Gradient::Defined(_)) && !covered.contains(op.name()) {
            failures.push(format!(
                "{}: has a gradient but no gradient check",
                op.name()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "gradient check failures:\n{}",
        failures.join("\n")
    );
}

#[test]
fn seed_gradient_of_x_squared_is_six() {
    let mut g = Graph::new();
    let x = g.constant(3.0f32).unwrap();
    let y = g.mul(x, x).unwrap();
    let dy = g.gradients(&[y], &[x]).unwrap()[0].unwrap();
    assert!(g.node(dy.node).name().starts_with("gradients/"));
    let out = Session::new(&g).run(&[], &[dy], &[]).unwrap();
    assert_eq!(out[0].scalar_value::<f32>().unwrap(), 6.0);
}

#[test]
fn unconnected_and_integer_sources_get_none() {
    let mut g = Graph::new();
    let x = g
        .placeholder(DType::Float32, PartialShape::scalar(), "x")
        .unwrap();
    let z = g
        .placeholder(DType::Float32, PartialShape::scalar(), "z")
        .unwrap();
    let i = g
        .placeholder(DType::Int32, PartialShape::scalar(), "i")
        .unwrap();
    let fi = g.cast(i, DType::Float32).unwrap();
    let y = g.mul(x, fi).unwrap();
    let grads = g.gradients(&[y], &[z, i, x]).unwrap();
    assert!(grads[0].is_none() && grads[1].is_none() && grads[2].is_some());
    let opts = super::GradientOptions {
        unconnected: super::Unconnected::Zero,
        ..Default::default()
    };
    let grads = g.gradients_with(&[y], &[z], &opts).unwrap();
    let out = Session::new(&g)
        .run(
            &[(x, Tensor::scalar(1f32)), (i, Tensor::scalar(2i32))],
            &[grads[0].unwrap()],
            &[],
        )
        .unwrap();
    assert_eq!(out[0], Tensor::scalar(0f32));
}

#[test]
fn stop_gradient_and_missing_gradients() {
    let mut g = Graph::new();
    let x = g
        .placeholder(DType::Float32, PartialShape::scalar(), "x")
        .unwrap();
    let s = g.stop_gradient(x).unwrap();
    let y = g.mul(s, x).unwrap(); // d/dx = s = x, not 2x
    let dy = g.gradients(&[y], &[x]).unwrap()[0].unwrap();
    let out = Session::new(&g)
        .run(&[(x, Tensor::scalar(5f32))], &[dy], &[])
        .unwrap();
    assert_eq!(out[0].scalar_value::<f32>().unwrap(), 5.0);
    // An op without a registered gradient on the path is an error naming it (TensorFlow
    // registers none for TruncateMod).
    let r = g
        .op("TruncateMod")
        .input(x)
        .input(x)
        .attr("T", DType::Float32)
        .name("mod")
        .build_output()
        .unwrap();
    let err = g.gradients(&[r], &[x]).unwrap_err().to_string();
    assert!(
        err.contains("No gradient defined for operation 'mod'"),
        "{err}"
    );
}

#[test]
fn grad_ys_are_checked_and_used() {
    let mut g = Graph::new();
    let x = g.placeholder(DType::Float32, [2], "x").unwrap();
    let y = g.mul(x, x).unwrap();
    let bad = g.constant(Tensor::from([1f32, 2.0, 3.0])).unwrap();
    let opts = super::GradientOptions {
        grad_ys: Some(vec![bad]),
        ..Default::default()
    };
    let err = g.gradients_with(&[y], &[x], &opts).unwrap_err().to_string();
    assert!(
        err.contains("grad_ys[0]") && err.contains("[3]") && err.contains("[2]"),
        "{err}"
    );
    let v = g.constant(Tensor::from([1f32, 10.0])).unwrap();
    let opts = super::GradientOptions {
        grad_ys: Some(vec![v]),
        ..Default::default()
    };
    let dx = g.gradients_with(&[y], &[x], &opts).unwrap()[0].unwrap();
    let out = Session::new(&g)
        .run(&[(x, Tensor::from([3f32, 4.0]))], &[dx], &[])
        .unwrap();
    assert_eq!(out[0], Tensor::from([6f32, 80.0]));
}

#[test]
fn second_derivatives() {
    // d²/dx² x³ at 2 = 6x = 12
    let mut g = Graph::new();
    let x = g
        .placeholder(DType::Float64, PartialShape::scalar(), "x")
        .unwrap();
    let x2 = g.mul(x, x).unwrap();
    let x3 = g.mul(x2, x).unwrap();
    let d1 = g.grad(x3, x).unwrap();
    let d2 = g.grad(d1, x).unwrap();
    let out = Session::new(&g)
        .run(&[(x, Tensor::scalar(2f64))], &[d1, d2], &[])
        .unwrap();
    assert_eq!(out[0].scalar_value::<f64>().unwrap(), 12.0);
    assert_eq!(out[1].scalar_value::<f64>().unwrap(), 12.0);
}

#[test]
fn hessian_of_quadratic_form_is_a() {
    // f(x) = ½ xᵀ A x with A symmetric: the Hessian is A.
    let a = Tensor::from([[2.0f64, 0.5, -1.0], [0.5, 3.0, 0.25], [-1.0, 0.25, 1.5]]);
    let mut g = Graph::new();
    let x = g.placeholder(DType::Float64, [3], "x").unwrap();
    let am = g.constant(a.clone()).unwrap();
    let col = g.reshape(x, &[3, 1]).unwrap();
    let ax = g.matmul(am, col).unwrap();
    let xax = g.matmul_t(col, ax, true, false).unwrap();
    let half = g.constant(0.5f64).unwrap();
    let f = g.mul(xax, half).unwrap();
    let f = g.reshape(f, &[]).unwrap();
    let h = g.hessian(f, x).unwrap();
    let out = Session::new(&g)
        .run(&[(x, Tensor::from([0.3f64, -1.2, 2.0]))], &[h], &[])
        .unwrap();
    assert_eq!(out[0].shape(), &[3, 3]);
    for (got, want) in out[0]
        .to_vec::<f64>()
        .unwrap()
        .iter()
        .zip(a.to_vec::<f64>().unwrap())
    {
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
    }
}

#[test]
fn hvp_and_jvp_agree_with_finite_differences() {
    // f(x) = sum(tanh(W x)²) for a fixed W; check H·v and J·u numerically.
    let w = Tensor::from([[0.3f64, -0.7, 0.2], [0.5, 0.1, -0.4]]);
    let x0 = [0.4f64, -0.3, 0.8];
    let v = Tensor::from([1.0f64, -2.0, 0.5]);
    let build = |g: &mut Graph, x: crate::Output| {
        let wm = g.constant(w.clone()).unwrap();
        let col = g.reshape(x, &[3, 1]).unwrap();
        let z = g.matmul(wm, col).unwrap();
        let t = g.tanh(z).unwrap();
        (g.mul(t, t).unwrap(), t)
    };
    let mut g = Graph::new();
    let x = g.placeholder(DType::Float64, [3], "x").unwrap();
    let (sq, t) = build(&mut g, x);
    let f = g.reduce_sum(sq, &[0, 1], false).unwrap();
    let vv = g.constant(v.clone()).unwrap();
    let hv = g.hvp(f, x, vv).unwrap();
    let gx = g.grad(f, x).unwrap();
    let jv = g.jvp(&[t], &[x], &[vv]).unwrap()[0];
    let sess = Session::new(&g);
    let at = |p: &[f64]| -> Vec<Tensor> {
        sess.run(
            &[(x, Tensor::from([p[0], p[1], p[2]]))],
            &[gx, t, hv, jv],
            &[],
        )
        .unwrap()
    };
    let base = at(&x0);
    let h = 1e-6;
    let vs = v.to_vec::<f64>().unwrap();
    let plus: Vec<f64> = x0.iter().zip(&vs).map(|(a, b)| a + h * b).collect();
    let minus: Vec<f64> = x0.iter().zip(&vs).map(|(a, b)| a - h * b).collect();
    let (p, m) = (at(&plus), at(&minus));
    for (k, want_idx) in [(2usize, 0usize), (3, 1)] {
        let got = base[k].to_vec::<f64>().unwrap();
        let fd: Vec<f64> = p[want_idx]
            .to_vec::<f64>()
            .unwrap()
            .iter()
            .zip(m[want_idx].to_vec::<f64>().unwrap())
            .map(|(a, b)| (a - b) / (2.0 * h))
            .collect();
        for (a, b) in got.iter().zip(&fd) {
            assert!((a - b).abs() < 1e-7, "{got:?} vs {fd:?}");
        }
    }
}

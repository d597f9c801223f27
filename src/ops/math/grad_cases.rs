//! Gradient checks of the elementwise ops: each case is compared with central finite
//! differences by `autodiff::tests`. Inputs stay where the functions are smooth (positive
//! for Log/Sqrt/Pow, no ties for Maximum/Minimum, away from the kinks of Relu/Abs), and the
//! binary ops are checked with equal shapes and with each kind of broadcast.

use crate::test_util::{test_input, GradCase};
use crate::{Graph, Output, Result, Tensor};

/// `test_input` made positive: values in [0.15, 1).
fn positive(shape: &[usize], seed: u64) -> Tensor {
    let v: Vec<f64> = test_input(shape, seed)
        .to_vec::<f64>()
        .expect("float64")
        .iter()
        .map(|x| x.abs())
        .collect();
    Tensor::new(shape, v).expect("sizes match")
}

/// A bool constant of `shape` (true at even positions, flipped by `flip`).
fn mask(g: &mut Graph, shape: &[usize], flip: bool) -> Result<Output> {
    let n: usize = shape.iter().product();
    let v: Vec<bool> = (0..n).map(|i| (i % 2 == 0) != flip).collect();
    g.constant(Tensor::new(shape, v)?)
}

type Build = fn(&mut Graph, &[Output]) -> Result<Output>;

/// An op, how to build it, and whether its first input must be positive.
type Entry = (&'static str, Build, bool);

/// Cases for a broadcasting binary op: equal shapes, a row vector, a column, a scalar.
fn binary_cases(op: &'static str, build: Build, positive_inputs: bool) -> Vec<GradCase> {
    let input = |shape: &[usize], seed| {
        if positive_inputs {
            positive(shape, seed)
        } else {
            test_input(shape, seed)
        }
    };
    vec![
        GradCase::new(op, vec![input(&[2, 3], 1), input(&[2, 3], 2)], build),
        GradCase::new(op, vec![input(&[2, 3], 3), input(&[3], 4)], build),
        GradCase::new(op, vec![input(&[2, 1], 5), input(&[2, 3], 6)], build),
        GradCase::new(op, vec![input(&[], 7), input(&[2, 3], 8)], build),
    ]
}

pub(super) fn cases() -> Vec<GradCase> {
    let mut cases = Vec::new();
    cases.extend(binary_cases("AddV2", |g, x| g.add(x[0], x[1]), false));
    cases.extend(binary_cases("Sub", |g, x| g.sub(x[0], x[1]), false));
    cases.extend(binary_cases("Mul", |g, x| g.mul(x[0], x[1]), false));
    cases.extend(binary_cases("RealDiv", |g, x| g.div(x[0], x[1]), false));
    cases.extend(binary_cases("Pow", |g, x| g.pow(x[0], x[1]), true));
    cases.extend(binary_cases("Maximum", |g, x| g.maximum(x[0], x[1]), false));
    cases.extend(binary_cases("Minimum", |g, x| g.minimum(x[0], x[1]), false));
    // y in [2, 4) so that x / y stays in (-0.5, 0.5), away from floor's jumps.
    cases.extend(binary_cases(
        "FloorMod",
        |g, x| {
            let three = g.constant(3.0f64)?;
            let y = g.add(x[1], three)?;
            g.floormod(x[0], y)
        },
        false,
    ));
    cases.push(GradCase::new(
        "AddN",
        vec![
            test_input(&[2, 3], 1),
            test_input(&[2, 3], 2),
            test_input(&[2, 3], 3),
        ],
        |g, x| g.add_n(x),
    ));
    cases.push(GradCase::new("AddN", vec![test_input(&[4], 4)], |g, x| {
        g.add_n(&[x[0], x[0]])
    }));

    let unary: [Entry; 21] = [
        ("Neg", |g, x| g.neg(x[0]), false),
        ("Abs", |g, x| g.abs(x[0]), false),
        ("Sign", |g, x| g.sign(x[0]), false),
        ("Square", |g, x| g.square(x[0]), false),
        ("Exp", |g, x| g.exp(x[0]), false),
        ("Log", |g, x| g.log(x[0]), true),
        ("Log1p", |g, x| g.log1p(x[0]), false),
        ("Sqrt", |g, x| g.sqrt(x[0]), true),
        ("Rsqrt", |g, x| g.rsqrt(x[0]), true),
        ("Reciprocal", |g, x| g.reciprocal(x[0]), false),
        ("Tanh", |g, x| g.tanh(x[0]), false),
        ("Sigmoid", |g, x| g.sigmoid(x[0]), false),
        ("Relu", |g, x| g.relu(x[0]), false),
        // Scaled to [-8, 8] so that both of Relu6's flat parts are hit.
        (
            "Relu6",
            |g, x| {
                let eight = g.constant(8.0f64)?;
                let y = g.mul(x[0], eight)?;
                g.relu6(y)
            },
            false,
        ),
        ("Elu", |g, x| g.elu(x[0]), false),
        ("Softplus", |g, x| g.softplus(x[0]), false),
        ("LeakyRelu", |g, x| g.leaky_relu(x[0], 0.3), false),
        ("Selu", |g, x| g.selu(x[0]), false),
        ("Softsign", |g, x| g.softsign(x[0]), false),
        ("Erf", |g, x| g.erf(x[0]), false),
        ("Cast", |g, x| g.cast(x[0], crate::DType::Float64), false),
    ];
    for (op, build, pos) in unary {
        let x = if pos {
            positive(&[2, 3], 11)
        } else {
            test_input(&[2, 3], 11)
        };
        cases.push(GradCase::new(op, vec![x], build));
    }

    // Select: an elementwise condition, and a vector condition picking rows.
    cases.push(GradCase::new(
        "Select",
        vec![test_input(&[2, 3], 1), test_input(&[2, 3], 2)],
        |g, x| {
            let c = mask(g, &[2, 3], false)?;
            g.select(c, x[0], x[1])
        },
    ));
    cases.push(GradCase::new(
        "Select",
        vec![test_input(&[2, 3], 3), test_input(&[2, 3], 4)],
        |g, x| {
            let c = mask(g, &[2], true)?;
            g.select(c, x[0], x[1])
        },
    ));
    // SelectV2 broadcasting all three: [2,1] condition, [3] and [2,3] branches; and a scalar
    // branch.
    cases.push(GradCase::new(
        "SelectV2",
        vec![test_input(&[3], 5), test_input(&[2, 3], 6)],
        |g, x| {
            let c = mask(g, &[2, 1], false)?;
            g.where_v2(c, x[0], x[1])
        },
    ));
    cases.push(GradCase::new(
        "SelectV2",
        vec![test_input(&[2, 3], 7), test_input(&[], 8)],
        |g, x| {
            let c = mask(g, &[2, 3], true)?;
            g.where_v2(c, x[0], x[1])
        },
    ));

    // ClipByValue: scalar bounds, and elementwise bounds (all three differentiated).
    cases.push(GradCase::new(
        "ClipByValue",
        vec![test_input(&[2, 3], 9)],
        |g, x| {
            let lo = g.constant(-0.5f64)?;
            let hi = g.constant(0.6f64)?;
            g.clip_by_value(x[0], lo, hi)
        },
    ));
    cases.push(GradCase::new(
        "ClipByValue",
        vec![
            Tensor::from([[0.1f64, -0.9, 0.95], [0.3, -0.2, 0.7]]),
            Tensor::from([[-0.5f64, -0.5, -0.5], [0.4, -0.6, -0.5]]),
            Tensor::from([[0.5f64, 0.5, 0.5], [0.5, 0.5, 0.5]]),
        ],
        |g, x| g.clip_by_value(x[0], x[1], x[2]),
    ));

    // The gradient kernels, both inputs differentiated.
    let grad_ops: [Entry; 9] = [
        ("TanhGrad", |g, x| g.tanh_grad(x[0], x[1]), false),
        ("SigmoidGrad", |g, x| g.sigmoid_grad(x[0], x[1]), false),
        ("SqrtGrad", |g, x| g.sqrt_grad(x[0], x[1]), true),
        ("RsqrtGrad", |g, x| g.rsqrt_grad(x[0], x[1]), true),
        (
            "ReciprocalGrad",
            |g, x| g.reciprocal_grad(x[0], x[1]),
            false,
        ),
        ("ReluGrad", |g, x| g.relu_grad(x[0], x[1]), false),
        ("Relu6Grad", |g, x| g.relu6_grad(x[0], x[1]), false),
        // Elu outputs lie in (-1, inf).
        ("EluGrad", |g, x| g.elu_grad(x[0], x[1]), false),
        ("SoftplusGrad", |g, x| g.softplus_grad(x[0], x[1]), false),
    ];
    for (op, build, pos) in grad_ops {
        let first = if pos {
            positive(&[2, 3], 21)
        } else {
            test_input(&[2, 3], 21)
        };
        cases.push(GradCase::new(
            op,
            vec![first, test_input(&[2, 3], 22)],
            build,
        ));
    }
    cases
}

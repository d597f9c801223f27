//! Gradient checks of the reductions, Cumsum/Cumprod and DynamicStitch (run by
//! `autodiff::tests`). Each reduction is checked with build-time-known shapes and axes
//! (the constant-shape paths), and with the shape or the axes hidden behind a
//! PlaceholderWithDefault (the run-time `reduced_shape` path).

use crate::test_util::{test_input, GradCase};
use crate::{Graph, Output, PartialShape, Result, Tensor};

/// `x` behind a PlaceholderWithDefault of the given (less known) shape.
fn hide(g: &mut Graph, x: Output, shape: PartialShape) -> Result<Output> {
    g.placeholder_with_default(x, shape, "hidden")
}

/// An int32 axes tensor whose value is only known at run time.
fn runtime_axes(g: &mut Graph, axes: &[i32]) -> Result<Output> {
    let a = g.constant(Tensor::vector(axes.to_vec()))?;
    g.placeholder_with_default(a, PartialShape::new(vec![None]), "axes")
}

type Build = fn(&mut Graph, &[Output]) -> Result<Output>;

/// The cases every reduction gets; `reduce(g, x, axes, keep_dims)`.
fn reduction_cases(op: &'static str) -> Vec<(&'static str, Build)> {
    let cases: [Build; 7] = match op {
        "Sum" => [
            |g, x| g.reduce_sum(x[0], &[1], false),
            |g, x| g.reduce_sum(x[0], &[0, 1, 2], false),
            |g, x| g.reduce_sum(x[0], &[-1, 0], true),
            |g, x| {
                let a = g.constant(1i32)?;
                g.reduce_sum_t(x[0], a, false)
            },
            |g, x| {
                let h = hide(g, x[0], PartialShape::unknown())?;
                g.reduce_sum(h, &[0, 2], false)
            },
            |g, x| {
                let h = hide(g, x[0], PartialShape::new(vec![None, Some(3), None]))?;
                g.reduce_sum(h, &[0, 1, 2], false)
            },
            |g, x| {
                let a = runtime_axes(g, &[-2])?;
                g.reduce_sum_t(x[0], a, true)
            },
        ],
        "Mean" => [
            |g, x| g.reduce_mean(x[0], &[1], false),
            |g, x| g.reduce_mean(x[0], &[0, 1, 2], false),
            |g, x| g.reduce_mean(x[0], &[-1, 0], true),
            |g, x| {
                let a = g.constant(1i64)?;
                g.reduce_mean_t(x[0], a, false)
            },
            |g, x| {
                let h = hide(g, x[0], PartialShape::unknown())?;
                g.reduce_mean(h, &[0, 2], false)
            },
            |g, x| {
                let h = hide(g, x[0], PartialShape::new(vec![None, Some(3), None]))?;
                g.reduce_mean(h, &[0, 1, 2], false)
            },
            |g, x| {
                let a = runtime_axes(g, &[-2])?;
                g.reduce_mean_t(x[0], a, true)
            },
        ],
        "Max" => [
            |g, x| g.reduce_max(x[0], &[1], false),
            |g, x| g.reduce_max(x[0], &[0, 1, 2], false),
            |g, x| g.reduce_max(x[0], &[-1, 0], true),
            |g, x| {
                let a = g.constant(1i32)?;
                g.reduce_max_t(x[0], a, false)
            },
            |g, x| {
                let h = hide(g, x[0], PartialShape::unknown())?;
                g.reduce_max(h, &[0, 2], false)
            },
            |g, x| {
                let h = hide(g, x[0], PartialShape::new(vec![None, Some(3), None]))?;
                g.reduce_max(h, &[2], true)
            },
            |g, x| {
                let a = runtime_axes(g, &[-2])?;
                g.reduce_max_t(x[0], a, true)
            },
        ],
        "Min" => [
            |g, x| g.reduce_min(x[0], &[1], false),
            |g, x| g.reduce_min(x[0], &[0, 1, 2], false),
            |g, x| g.reduce_min(x[0], &[-1, 0], true),
            |g, x| {
                let a = g.constant(1i32)?;
                g.reduce_min_t(x[0], a, false)
            },
            |g, x| {
                let h = hide(g, x[0], PartialShape::unknown())?;
                g.reduce_min(h, &[0, 2], false)
            },
            |g, x| {
                let h = hide(g, x[0], PartialShape::new(vec![None, Some(3), None]))?;
                g.reduce_min(h, &[2], true)
            },
            |g, x| {
                let a = runtime_axes(g, &[-2])?;
                g.reduce_min_t(x[0], a, true)
            },
        ],
        _ => [
            |g, x| g.reduce_prod(x[0], &[1], false),
            |g, x| g.reduce_prod(x[0], &[0, 1, 2], false),
            |g, x| g.reduce_prod(x[0], &[-1, 0], true),
            |g, x| {
                let a = g.constant(1i32)?;
                g.reduce_prod_t(x[0], a, false)
            },
            |g, x| {
                let h = hide(g, x[0], PartialShape::with_rank(3))?;
                g.reduce_prod(h, &[0, 2], false)
            },
            |g, x| {
                let h = hide(g, x[0], PartialShape::new(vec![None, Some(3), None]))?;
                g.reduce_prod(h, &[2, 0], true)
            },
            |g, x| g.reduce_prod(x[0], &[], false),
        ],
    };
    cases.into_iter().map(|b| (op, b)).collect()
}

pub(super) fn cases() -> Vec<GradCase> {
    let mut cases = Vec::new();
    for op in ["Sum", "Mean", "Max", "Min", "Prod"] {
        for (i, (op, build)) in reduction_cases(op).into_iter().enumerate() {
            cases.push(GradCase::new(
                op,
                vec![test_input(&[2, 3, 4], i as u64)],
                build,
            ));
        }
    }
    // A scalar input reduced over no axes, and a reduction over a size-0 axis.
    cases.push(GradCase::new("Sum", vec![test_input(&[], 1)], |g, x| {
        g.reduce_sum(x[0], &[], false)
    }));
    cases.push(GradCase::new(
        "Mean",
        vec![test_input(&[3, 0], 1)],
        |g, x| g.reduce_mean(x[0], &[1], false),
    ));

    let scans: [Build; 8] = [
        |g, x| g.cumsum(x[0], 1, false, false),
        |g, x| g.cumsum(x[0], 0, true, false),
        |g, x| g.cumsum(x[0], -1, false, true),
        |g, x| g.cumsum(x[0], 1, true, true),
        |g, x| g.cumprod(x[0], 1, false, false),
        |g, x| g.cumprod(x[0], 0, true, false),
        |g, x| g.cumprod(x[0], -1, false, true),
        |g, x| g.cumprod(x[0], 1, true, true),
    ];
    for (i, build) in scans.into_iter().enumerate() {
        let op = if i < 4 { "Cumsum" } else { "Cumprod" };
        cases.push(GradCase::new(
            op,
            vec![test_input(&[2, 3], i as u64)],
            build,
        ));
    }

    cases.push(GradCase::new(
        "DynamicStitch",
        vec![test_input(&[2, 2], 1), test_input(&[1, 1, 2], 2)],
        |g, x| {
            let i0 = g.constant(Tensor::from([0i32, 2]))?;
            let i1 = g.constant(Tensor::from([[1i32]]))?;
            g.dynamic_stitch(&[i0, i1], &[x[0], x[1]])
        },
    ));
    cases
}

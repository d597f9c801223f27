//! Broadcasting in gradients: the `BroadcastGradientArgs` op (which axes of each operand of
//! a broadcasting binary op were stretched) and the tail every broadcasting binary op's
//! gradient ends with, `Reshape(Sum(g, r), Shape(x))`.

use super::{kernel_fn, InferCtx, InferResult, KernelBuildCtx, KernelResult};
use crate::graph::{AttrValue, Graph, Output, TensorSpec};
use crate::ops::{Cost, Op, Registry};
use crate::tensor::{DType, PartialShape, Tensor};
use crate::{Error, Result};

/// The axes to sum each operand's gradient over, as TensorFlow's `BCast` computes them:
/// nothing when the shapes are identical; otherwise, with both shapes right-aligned and
/// padded with leading 1s, every axis where an operand has size 1 (both operands when both
/// have 1 there), in increasing order.
fn reduction_axes(s0: &[i64], s1: &[i64]) -> std::result::Result<(Vec<i64>, Vec<i64>), String> {
    if s0 == s1 {
        return Ok((Vec::new(), Vec::new()));
    }
    let n = s0.len().max(s1.len());
    let dim = |s: &[i64], axis: usize| {
        let pad = n - s.len();
        if axis < pad {
            1
        } else {
            s[axis - pad]
        }
    };
    let (mut r0, mut r1) = (Vec::new(), Vec::new());
    for axis in 0..n {
        let (x, y) = (dim(s0, axis), dim(s1, axis));
        if x != y && x != 1 && y != 1 {
            let join = |s: &[i64]| s.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
            return Err(format!(
                "Incompatible shapes: [{}] vs. [{}]",
                join(s0),
                join(s1)
            ));
        }
        if x == 1 {
            r0.push(axis as i64);
        }
        if y == 1 {
            r1.push(axis as i64);
        }
    }
    Ok((r0, r1))
}

/// `s0`, `s1`: int32 or int64 vectors (attr `T`) → `r0`, `r1` of the same dtype. The
/// outputs' lengths are known when both shapes are build-time constants.
fn infer_broadcast_gradient_args(ctx: &InferCtx<'_>) -> InferResult {
    ctx.expect_inputs(2)?;
    let dt = ctx.same_dtype()?;
    if dt != DType::Int32 && dt != DType::Int64 {
        return Err(format!("s0 and s1 must be int32 or int64, got {dt}"));
    }
    ctx.check_t_attr(dt)?;
    for i in 0..2 {
        if let Some(r) = ctx.shape(i).rank().filter(|&r| r != 1) {
            return Err(format!(
                "s{i} (input {i}) must be a vector (a shape), but has rank {r}"
            ));
        }
    }
    let (l0, l1) = match (ctx.constant_ints(0), ctx.constant_ints(1)) {
        (Some(s0), Some(s1)) => {
            let (r0, r1) = reduction_axes(&s0, &s1)?;
            (Some(r0.len()), Some(r1.len()))
        }
        _ => (None, None),
    };
    Ok(vec![
        TensorSpec::new(dt, PartialShape::new(vec![l0])),
        TensorSpec::new(dt, PartialShape::new(vec![l1])),
    ])
}

fn broadcast_gradient_args_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let dt = ctx.input_dtype(0);
    kernel_fn(move |k| {
        let mut shapes = Vec::with_capacity(2);
        for i in 0..2 {
            let s = k.input(i)?;
            if s.rank() != 1 {
                return Err(Error::invalid(format!(
                    "In[{i}] must be a vector.{:?}",
                    s.shape()
                )));
            }
            shapes.push(s.to_i64_vec()?);
        }
        let (r0, r1) = reduction_axes(&shapes[0], &shapes[1]).map_err(Error::invalid)?;
        for r in [r0, r1] {
            k.push_output(Tensor::vector(r).cast(dt)?);
        }
        Ok(())
    })
}

pub(super) fn register(r: &mut Registry) {
    // TensorFlow: ops.NotDifferentiable("BroadcastGradientArgs").
    r.add(
        Op::new(
            "BroadcastGradientArgs",
            infer_broadcast_gradient_args,
            broadcast_gradient_args_kernel,
        )
        .cost(Cost::Cheap)
        .no_grad()
        .defaults(|| vec![("T", AttrValue::Type(DType::Int32))]),
    );
}

/// TensorFlow's `_ShapesFullySpecifiedAndEqual(x, y, grad)`: all three shapes are fully
/// known at build time and equal, so no broadcasting happened.
pub(crate) fn shapes_fully_specified_and_equal(
    g: &Graph,
    x: Output,
    y: Output,
    grad: Output,
) -> bool {
    match g.shape(x).to_known() {
        Some(sx) => {
            g.shape(y).to_known().as_ref() == Some(&sx)
                && g.shape(grad).to_known().as_ref() == Some(&sx)
        }
        None => false,
    }
}

/// The gradient tail of a broadcasting binary op `f(x, y)`, as TensorFlow writes it:
/// `rx, ry = BroadcastGradientArgs(Shape(x), Shape(y))` and each present gradient becomes
/// `Reshape(Sum(g, r), Shape(operand))`. `gy_post` is applied to y's summed gradient before
/// the reshape (TensorFlow's `_SubGrad` negates there).
pub(crate) fn reduce_to_operands(
    g: &mut Graph,
    x: Output,
    y: Output,
    gx: Option<Output>,
    gy: Option<Output>,
    gy_post: Option<fn(&mut Graph, Output) -> Result<Output>>,
) -> Result<Vec<Option<Output>>> {
    let sx = g.shape_of(x)?;
    let sy = g.shape_of(y)?;
    let [rx, ry] = g.broadcast_gradient_args(sx, sy)?;
    let gx = match gx {
        Some(gx) => {
            let s = g.reduce_sum_t(gx, rx, false)?;
            Some(g.reshape_t(s, sx)?)
        }
        None => None,
    };
    let gy = match gy {
        Some(gy) => {
            let mut s = g.reduce_sum_t(gy, ry, false)?;
            if let Some(post) = gy_post {
                s = post(g, s)?;
            }
            Some(g.reshape_t(s, sy)?)
        }
        None => None,
    };
    Ok(vec![gx, gy])
}

impl Graph {
    /// The axes over which the gradients of two broadcast operands with shapes `s0` and
    /// `s1` (int32 or int64 vectors) must be summed (`tf.raw_ops.BroadcastGradientArgs`):
    /// `[r0, r1]`.
    pub fn broadcast_gradient_args(&mut self, s0: Output, s1: Output) -> Result<[Output; 2]> {
        let t = self.dtype(s0);
        let id = self
            .op("BroadcastGradientArgs")
            .input(s0)
            .input(s1)
            .attr("T", t)
            .build()?;
        Ok([id.output(0), id.output(1)])
    }
}

#[cfg(test)]
mod tests {
    use super::reduction_axes;
    use crate::{DType, Graph, PartialShape, Session, Tensor};

    /// Runs BroadcastGradientArgs on two int32 shapes fed at run time.
    fn run_args(s0: &[i32], s1: &[i32]) -> crate::Result<(Vec<i64>, Vec<i64>)> {
        let mut g = Graph::new();
        let a = g.placeholder(DType::Int32, [s0.len()], "a")?;
        let b = g.placeholder(DType::Int32, [s1.len()], "b")?;
        let [r0, r1] = g.broadcast_gradient_args(a, b)?;
        assert_eq!(g.shape(r0), &PartialShape::new(vec![None]));
        let out = Session::new(&g).run(
            &[
                (a, Tensor::vector(s0.to_vec())),
                (b, Tensor::vector(s1.to_vec())),
            ],
            &[r0, r1],
            &[],
        )?;
        assert_eq!(out[0].dtype(), DType::Int32);
        Ok((out[0].to_i64_vec()?, out[1].to_i64_vec()?))
    }

    #[test]
    fn matches_tensorflow() {
        // tf.raw_ops.BroadcastGradientArgs(s0=a, s1=b) in TensorFlow 2.21 for each row.
        type Case<'a> = (&'a [i32], &'a [i32], &'a [i64], &'a [i64]);
        let cases: &[Case] = &[
            (&[2, 3], &[3], &[], &[0]),
            (&[2, 3], &[2, 1], &[], &[1]),
            (&[1, 1], &[1, 1], &[], &[]),
            (&[1, 3], &[2, 1], &[0], &[1]),
            (&[], &[2, 3], &[0, 1], &[]),
            (&[2, 1, 3], &[1], &[1], &[0, 1, 2]),
            (&[5, 1, 3], &[4, 1], &[1], &[0, 2]),
            (&[0], &[1], &[], &[0]),
            (&[1], &[], &[0], &[0]),
            (&[], &[], &[], &[]),
            (&[2, 3, 1], &[1, 3, 1], &[2], &[0, 2]),
        ];
        for &(s0, s1, r0, r1) in cases {
            let (g0, g1) = run_args(s0, s1).unwrap();
            assert_eq!((g0.as_slice(), g1.as_slice()), (r0, r1), "{s0:?} {s1:?}");
        }
    }

    #[test]
    fn int64_shapes_and_constant_inference() {
        let mut g = Graph::new();
        let a = g.constant(Tensor::from([5i64, 1, 3])).unwrap();
        let b = g.constant(Tensor::from([4i64, 1])).unwrap();
        let [r0, r1] = g.broadcast_gradient_args(a, b).unwrap();
        // Both shapes are constants, so the lengths are known.
        assert_eq!(g.shape(r0), &PartialShape::known(&[1]));
        assert_eq!(g.shape(r1), &PartialShape::known(&[2]));
        let out = Session::new(&g).run(&[], &[r0, r1], &[]).unwrap();
        assert_eq!(out[0], Tensor::from([1i64]));
        assert_eq!(out[1], Tensor::from([0i64, 2]));
    }

    #[test]
    fn errors() {
        // TF: "Incompatible shapes: [2,3] vs. [4,3]"
        let err = run_args(&[2, 3], &[4, 3]).unwrap_err().to_string();
        assert!(
            err.contains("Incompatible shapes: [2,3] vs. [4,3]"),
            "{err}"
        );
        assert!(reduction_axes(&[2, 3], &[4, 3]).is_err());
        let mut g = Graph::new();
        // Known at build time: the error comes from inference.
        let a = g.constant(Tensor::from([2i32, 3])).unwrap();
        let b = g.constant(Tensor::from([4i32, 3])).unwrap();
        let err = g.broadcast_gradient_args(a, b).unwrap_err().to_string();
        assert!(err.contains("Incompatible shapes"), "{err}");
        let m = g.constant(Tensor::from([[2i32]])).unwrap();
        let err = g.broadcast_gradient_args(m, a).unwrap_err().to_string();
        assert!(err.contains("must be a vector"), "{err}");
        let f = g.constant(Tensor::from([2.0f32])).unwrap();
        let err = g.broadcast_gradient_args(f, f).unwrap_err().to_string();
        assert!(err.contains("int32 or int64"), "{err}");
        let l = g.constant(Tensor::from([2i64])).unwrap();
        let err = g.broadcast_gradient_args(a, l).unwrap_err().to_string();
        assert!(err.contains("dtype"), "{err}");
        // A rank-2 shape fed at run time: TF's "In[0] must be a vector."
        let p = g
            .placeholder(DType::Int32, PartialShape::unknown(), "p")
            .unwrap();
        let [r0, _] = g.broadcast_gradient_args(p, a).unwrap();
        let err = Session::new(&g)
            .run(&[(p, Tensor::from([[2i32]]))], &[r0], &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("In[0] must be a vector"), "{err}");
    }
}

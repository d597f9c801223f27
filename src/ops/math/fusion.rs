//! Plan-time fusion of a per-channel scale and shift, as Keras 3's BatchNormalization
//! writes its inference (`x · (gamma · rsqrt(var + eps)) + (beta - mean · ...)`, a `Mul`
//! and an `AddV2` by vectors over the last axis), optionally under `Relu` / `Relu6`:
//! `Relu6(AddV2(Mul(x, scale), shift))` becomes one `_FusedScaleShift` step that makes
//! one pass over the activations, in place when nothing else holds them, instead of two
//! or three (MobileNetV2 has 52 such layers). Each element is computed as the separate
//! ops compute it (`x · s`, then `+ t`, then the activation), so the result is
//! bit-identical. Shapes other than `[.., C]` by `[C]` vectors run the separate ops'
//! broadcasting arithmetic in turn.

use super::activation::{relu, relu6};
use crate::device::cpu;
use crate::graph::{NodeId, Output};
use crate::kernel::fusion::{Fusion, FusionRule, FusionSite};
use crate::ops::{kernel_fn, KernelResult};
use crate::tensor::{DType, Number, Tensor};
use crate::{with_dtype, Result};
use std::sync::Arc;

/// Op name of the fused scale-and-shift step.
pub(crate) const FUSED_SCALE_SHIFT: &str = "_FusedScaleShift";

/// The rules, in the order they are tried.
pub(crate) const FUSION_RULES: &[FusionRule] = &[FusionRule {
    root: &["Relu", "Relu6", "AddV2", "Add"],
    op: FUSED_SCALE_SHIFT,
    fuse: fuse_scale_shift,
}];

/// The activation after the shift.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Activation {
    Linear,
    Relu,
    Relu6,
}

fn fuse_scale_shift(
    site: &dyn FusionSite,
    n: NodeId,
) -> std::result::Result<Option<Fusion>, String> {
    let graph = site.graph();
    let node = graph.node(n);
    let (add_id, activation) = match node.op_type() {
        "AddV2" | "Add" => (n, Activation::Linear),
        op => {
            let input = node.inputs()[0];
            if !["AddV2", "Add"]
                .iter()
                .any(|a| site.sole_source(input, a, n).is_some())
            {
                return Ok(None);
            }
            let activation = if op == "Relu" {
                Activation::Relu
            } else {
                Activation::Relu6
            };
            (input.node, activation)
        }
    };
    let add = graph.node(add_id);
    let is_vector = |o: Output| graph.shape(o).rank() == Some(1);
    // The Mul is either input of the add; the other is the shift, a vector.
    let Some((mul_out, shift)) = (0..2).find_map(|i| {
        let (m, t) = (add.inputs()[i], add.inputs()[1 - i]);
        site.sole_source(m, "Mul", n)?;
        is_vector(t).then_some((m, t))
    }) else {
        return Ok(None);
    };
    let mul = graph.node(mul_out.node);
    // The scale is the Mul's vector input, the activations the other (of rank 2 or more).
    let Some((x, scale)) = (0..2).find_map(|i| {
        let (x, s) = (mul.inputs()[i], mul.inputs()[1 - i]);
        (is_vector(s) && graph.shape(x).rank().is_some_and(|r| r >= 2)).then_some((x, s))
    }) else {
        return Ok(None);
    };
    let dtype = graph.dtype(x);
    if !matches!(dtype, DType::Float32 | DType::Float64) {
        return Ok(None);
    }
    let mut absorbed = vec![mul_out.node];
    if add_id != n {
        absorbed.push(add_id);
    }
    Ok(Some(Fusion {
        absorbed,
        also_produces: Vec::new(),
        inputs: vec![Some(x), Some(scale), Some(shift)],
        operands: [0, 1],
        op: FUSED_SCALE_SHIFT,
        kernel: Arc::from(scale_shift_kernel(dtype, activation)?),
    }))
}

/// `activation(x · scale + shift)`; inputs x, scale, shift.
fn scale_shift_kernel(dtype: DType, activation: Activation) -> KernelResult {
    with_dtype!(float, dtype, T => kernel_fn(move |k| {
        let (x, scale, shift) = (k.take_input(0)?, k.take_input(1)?, k.take_input(2)?);
        let out = match activation {
            Activation::Linear => scale_shift::<T>(x, &scale, &shift, |v| v)?,
            Activation::Relu => scale_shift::<T>(x, &scale, &shift, relu)?,
            Activation::Relu6 => scale_shift::<T>(x, &scale, &shift, relu6)?,
        };
        k.push_output(out);
        Ok(())
    }))
}

/// `f(x · scale + shift)`: one pass over rows of `C` (in place when `x` is unique) for
/// `[C]` vectors and `x` of last dimension `C`, else the broadcasting ops in turn.
fn scale_shift<T: Number>(
    mut x: Tensor,
    scale: &Tensor,
    shift: &Tensor,
    f: impl Fn(T) -> T,
) -> Result<Tensor> {
    let c = x.shape().last().copied().unwrap_or(0);
    if scale.shape() != [c] || shift.shape() != [c] || c == 0 {
        let y = cpu::zip(x, scale.clone(), |a: T, b: T| a.mul(b))?;
        let y = cpu::zip(y, shift.clone(), |a: T, b: T| a.add(b))?;
        return cpu::map(y, f);
    }
    let (s, t) = (scale.as_slice::<T>()?, shift.as_slice::<T>()?);
    let one = |v: T, s: T, t: T| f(v.mul(s).add(t));
    if let Some(v) = x.unique_slice_mut::<T>() {
        for row in v.chunks_exact_mut(c) {
            for ((v, &s), &t) in row.iter_mut().zip(s).zip(t) {
                *v = one(*v, s, t);
            }
        }
        return Ok(x);
    }
    let input = x.as_slice::<T>()?;
    let mut out = Vec::with_capacity(input.len());
    for row in input.chunks_exact(c) {
        out.extend(row.iter().zip(s).zip(t).map(|((&v, &s), &t)| one(v, s, t)));
    }
    Ok(Tensor::from_parts(x.shape().to_vec(), out))
}

#[cfg(test)]
mod tests {
    use super::FUSED_SCALE_SHIFT;
    use crate::graph::{Graph, Output};
    use crate::session::Session;
    use crate::tensor::{DType, Tensor};

    /// Values in [-4, 4) (so Relu6 clamps some on both sides after the scale).
    fn values(n: usize, seed: usize) -> Vec<f32> {
        (0..n)
            .map(|i| ((i * 7919 + seed * 131) % 800) as f32 / 100.0 - 4.0)
            .collect()
    }

    /// `activation(neg(p) · scale + shift)` over a fed `[2, 3, 4, 5]` p, written in the
    /// operand order `swap` picks; the Neg makes the activations a buffer the step owns.
    fn layer(activation: Option<&str>, swap: bool, scale_len: usize) -> (Graph, Output, Output) {
        let mut g = Graph::new();
        let p = g
            .placeholder(DType::Float32, [Some(2), Some(3), Some(4), Some(5)], "p")
            .unwrap();
        let x = g.neg(p).unwrap();
        let s = g
            .constant(Tensor::new(&[scale_len], values(scale_len, 1)).unwrap())
            .unwrap();
        let t = g
            .constant(Tensor::new(&[5], values(5, 2)).unwrap())
            .unwrap();
        let a = if swap {
            let m = g.mul(s, x).unwrap();
            g.add(t, m).unwrap()
        } else {
            let m = g.mul(x, s).unwrap();
            g.add(m, t).unwrap()
        };
        let y = match activation {
            Some("Relu") => g.relu(a).unwrap(),
            Some(_) => g.relu6(a).unwrap(),
            None => a,
        };
        (g, p, y)
    }

    /// One step, bit-identical to the arithmetic written out; a scale of one value (a
    /// broadcast the fast path does not take) computes the same.
    #[test]
    fn scale_shift_and_activation_run_as_one_step_with_the_same_values() {
        let px = values(120, 3);
        let (s1, t) = (values(5, 1), values(5, 2));
        for activation in [None, Some("Relu"), Some("Relu6")] {
            for swap in [false, true] {
                for scale_len in [5, 1] {
                    let what = format!("{activation:?}, swap {swap}, scale {scale_len}");
                    let (g, p, y) = layer(activation, swap, scale_len);
                    let sess = Session::new(&g);
                    let plan = sess.plan_of(&[p], &[y], &[]).unwrap();
                    let ops: Vec<&str> = plan.steps.iter().map(|s| s.op).collect();
                    assert_eq!(ops, ["Neg", FUSED_SCALE_SHIFT], "{what}");
                    let feed = Tensor::new(&[2, 3, 4, 5], px.clone()).unwrap();
                    let got = sess.run(&[(p, feed)], &[y], &[]).unwrap().remove(0);
                    let want: Vec<f32> = px
                        .iter()
                        .enumerate()
                        .map(|(i, &v)| {
                            let s = if scale_len == 1 { s1[0] } else { s1[i % 5] };
                            let z = -v * s + t[i % 5];
                            match activation {
                                Some("Relu") => z.max(0.0),
                                Some(_) => z.clamp(0.0, 6.0),
                                None => z,
                            }
                        })
                        .collect();
                    assert_eq!(got.shape(), &[2, 3, 4, 5], "{what}");
                    assert_eq!(got.to_vec::<f32>().unwrap(), want, "{what}");
                }
            }
        }
    }

    /// Another reader of the product keeps the ops separate.
    #[test]
    fn a_product_read_elsewhere_is_not_fused() {
        let mut g = Graph::new();
        let p = g
            .placeholder(DType::Float32, [Some(2), Some(5)], "p")
            .unwrap();
        let s = g
            .constant(Tensor::new(&[5], values(5, 1)).unwrap())
            .unwrap();
        let m = g.mul(p, s).unwrap();
        let y = g.add(m, s).unwrap();
        let sess = Session::new(&g);
        let plan = sess.plan_of(&[p], &[y, m], &[]).unwrap();
        assert!(plan.steps.iter().all(|s| s.op != FUSED_SCALE_SHIFT));
    }
}

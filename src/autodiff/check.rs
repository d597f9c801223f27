//! Gradient checking: compares the symbolic gradient with central finite differences.

use crate::graph::{Graph, Output};
use crate::session::{Session, SessionOptions};
use crate::tensor::{DType, PartialShape, Tensor};
use crate::{Error, Result};

/// The worst disagreement found by [`check_gradients`].
#[derive(Clone, Debug, PartialEq)]
pub struct GradientCheck {
    /// Largest `|symbolic - numeric| / (1 + |numeric|)` over every input element.
    pub max_error: f64,
    /// Which input and element it was at.
    pub worst: (usize, usize),
}

/// Checks the gradient of `f` at `inputs` (float64 tensors): builds `f` on placeholders,
/// reduces its output to a scalar with fixed pseudo-random weights (so every output element
/// matters differently), and compares the symbolic gradient with central differences of
/// step `h` for every input element.
pub fn check_gradients(
    f: impl Fn(&mut Graph, &[Output]) -> Result<Output>,
    inputs: &[Tensor],
    h: f64,
) -> Result<GradientCheck> {
    let mut g = Graph::new();
    let xs = inputs
        .iter()
        .enumerate()
        .map(|(i, t)| {
            if t.dtype() != DType::Float64 {
                return Err(Error::invalid("check_gradients needs float64 inputs"));
            }
            g.placeholder(
                DType::Float64,
                PartialShape::known(t.shape()),
                &format!("x{i}"),
            )
        })
        .collect::<Result<Vec<_>>>()?;
    let y = f(&mut g, &xs)?;
    let y = if g.dtype(y) == DType::Float64 {
        y
    } else {
        g.cast(y, DType::Float64)?
    };
    let sess0 = Session::with_options(&g, SessionOptions::with_threads(1));
    let feeds: Vec<(Output, Tensor)> = xs.iter().copied().zip(inputs.iter().cloned()).collect();
    let y_value = sess0.run(&feeds, &[y], &[])?.remove(0);
    let weights: Vec<f64> = (0..y_value.len())
        .map(|i| 0.5 + ((i * 7919) % 17) as f64 / 17.0)
        .collect();
    let w = g.constant(Tensor::new(y_value.shape(), weights)?)?;
    let weighted = g.mul(y, w)?;
    let axes = g.constant(Tensor::vector(
        (0..y_value.rank() as i32).collect::<Vec<i32>>(),
    ))?;
    let loss = g
        .op("Sum")
        .input(weighted)
        .input(axes)
        .attr("T", DType::Float64)
        .attr("Tidx", DType::Int32)
        .build_output()?;
    let grads = g.gradients(&[loss], &xs)?;
    let fetch: Vec<Output> = grads
        .iter()
        .enumerate()
        .map(|(i, gr)| gr.ok_or_else(|| Error::invalid(format!("no gradient reaches input {i}"))))
        .collect::<Result<_>>()?;
    let sess = Session::with_options(&g, SessionOptions::with_threads(1));
    let symbolic = sess.run(&feeds, &fetch, &[])?;
    let loss_at = |feeds: &[(Output, Tensor)]| -> Result<f64> {
        sess.run(feeds, &[loss], &[])?[0].scalar_value::<f64>()
    };
    let mut worst = GradientCheck {
        max_error: 0.0,
        worst: (0, 0),
    };
    for (i, x) in inputs.iter().enumerate() {
        let base = x.to_vec::<f64>()?;
        let sym = symbolic[i].to_vec::<f64>()?;
        for k in 0..base.len() {
            let eval = |delta: f64| -> Result<f64> {
                let mut v = base.clone();
                v[k] += delta;
                let mut fd = feeds.clone();
                fd[i].1 = Tensor::new(x.shape(), v)?;
                loss_at(&fd)
            };
            let numeric = (eval(h)? - eval(-h)?) / (2.0 * h);
            let err = (sym[k] - numeric).abs() / (1.0 + numeric.abs());
            if err > worst.max_error || err.is_nan() {
                worst = GradientCheck {
                    max_error: if err.is_nan() { f64::INFINITY } else { err },
                    worst: (i, k),
                };
            }
        }
    }
    Ok(worst)
}

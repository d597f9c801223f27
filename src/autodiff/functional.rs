//! JAX-style derivative helpers on graph outputs: `grad`, `vjp`, `jvp`, `hvp`, `hessian`.

use super::{GradientOptions, Unconnected};
use crate::graph::{Graph, Output};
use crate::tensor::{DType, Tensor};
use crate::{Error, Result};

/// JAX's rule (and TensorFlow's: `tf.gradients` returns `None` for such a source): a
/// derivative is only defined with respect to a float tensor, so an integer or bool source
/// is an error rather than integer zeros.
fn check_float_sources(g: &Graph, xs: &[Output], what: &str) -> Result<()> {
    for (i, &x) in xs.iter().enumerate() {
        g.check_output(x, &format!("{what}: source {i}"))?;
        let dt = g.dtype(x);
        if !dt.is_float() {
            return Err(Error::invalid(format!(
                "{what}: source '{}' has dtype {dt}; derivatives are defined only with respect \
                 to float tensors (gradients() returns None for it, jax.grad raises a \
                 TypeError); Cast it to a float first",
                g.output_name(x)
            )));
        }
    }
    Ok(())
}

fn zero_opts(grad_ys: Option<Vec<Output>>) -> GradientOptions {
    GradientOptions {
        grad_ys,
        unconnected: Unconnected::Zero,
        ..GradientOptions::default()
    }
}

impl Graph {
    /// `jax.grad`: d(sum y)/dx, zeros when `y` does not depend on `x`.
    /// An integer or bool `x` is an error, as in JAX (TensorFlow's `gradients` gives
    /// `None` there).
    pub fn grad(&mut self, y: Output, x: Output) -> Result<Output> {
        check_float_sources(self, &[x], "grad")?;
        let g = self.gradients_with(&[y], &[x], &zero_opts(None))?;
        Ok(g[0].expect("unconnected gradients are zeros"))
    }

    /// Reverse mode (`jax.vjp`): `vᵀ·J` for each source, where `v` holds one cotangent per y.
    /// Integer or bool sources are an error (see [`Graph::grad`]).
    pub fn vjp(&mut self, ys: &[Output], xs: &[Output], v: &[Output]) -> Result<Vec<Output>> {
        check_float_sources(self, xs, "vjp")?;
        let g = self.gradients_with(ys, xs, &zero_opts(Some(v.to_vec())))?;
        Ok(g.into_iter()
            .map(|o| o.expect("unconnected gradients are zeros"))
            .collect())
    }

    /// Forward mode (`jax.jvp`): `J·u` for each y, where `u` holds one tangent per source.
    /// Built from two reverse passes: the vjp is linear in its cotangent, so differentiating
    /// it with respect to that cotangent gives the Jacobian-vector product.
    pub fn jvp(&mut self, ys: &[Output], xs: &[Output], u: &[Output]) -> Result<Vec<Output>> {
        if u.len() != xs.len() {
            return Err(Error::invalid(format!(
                "jvp: {} tangents for {} sources",
                u.len(),
                xs.len()
            )));
        }
        let dummies = ys
            .iter()
            .map(|&y| {
                let dt = self.dtype(y);
                self.op("ZerosLike")
                    .name("jvp_cotangent")
                    .input(y)
                    .attr("T", dt)
                    .build_output()
            })
            .collect::<Result<Vec<_>>>()?;
        let vjp = self.vjp(ys, xs, &dummies)?;
        self.vjp(&vjp, &dummies, u)
    }

    /// Hessian-vector product `H·v` of a scalar `y` with respect to `x`.
    pub fn hvp(&mut self, y: Output, x: Output, v: Output) -> Result<Output> {
        let gx = self.grad(y, x)?;
        let prod = self.mul(gx, v)?;
        let total = self.sum_all(prod)?;
        self.grad(total, x)
    }

    /// The Hessian of a scalar `y` with respect to `x` (x's shape must be known), with shape
    /// `x.shape + x.shape`: one Hessian-vector product per basis vector, stacked.
    pub fn hessian(&mut self, y: Output, x: Output) -> Result<Output> {
        let dims = self.shape(x).to_known().ok_or_else(|| {
            Error::invalid(format!(
                "hessian: the shape of '{}' must be fully known",
                self.output_name(x)
            ))
        })?;
        let dt = self.dtype(x);
        let n: usize = dims.iter().product();
        let gx = self.grad(y, x)?;
        let mut rows = Vec::with_capacity(n);
        for i in 0..n {
            let mut basis = vec![0.0f64; n];
            basis[i] = 1.0;
            let e = self.constant(Tensor::new(&dims, basis)?.cast(dt)?)?;
            let prod = self.mul(gx, e)?;
            let total = self.sum_all(prod)?;
            let row = self.grad(total, x)?;
            rows.push(row);
        }
        let stacked = self
            .op("Pack")
            .inputs(&rows)
            .attr("N", n as i64)
            .attr("T", dt)
            .attr("axis", 0i64)
            .build_output()?;
        let full: Vec<i64> = dims.iter().chain(&dims).map(|&d| d as i64).collect();
        let shape = self.constant(Tensor::vector(
            full.iter().map(|&d| d as i32).collect::<Vec<i32>>(),
        ))?;
        self.op("Reshape")
            .input(stacked)
            .input(shape)
            .attr("T", dt)
            .attr("Tshape", DType::Int32)
            .build_output()
    }

    /// Sum over every axis (a scalar).
    fn sum_all(&mut self, x: Output) -> Result<Output> {
        let rank = self
            .shape(x)
            .rank()
            .ok_or_else(|| Error::invalid("sum over all axes needs a known rank"))?;
        let axes = self.constant(Tensor::vector((0..rank as i32).collect::<Vec<i32>>()))?;
        let dt = self.dtype(x);
        self.op("Sum")
            .input(x)
            .input(axes)
            .attr("T", dt)
            .attr("Tidx", DType::Int32)
            .attr("keep_dims", false)
            .build_output()
    }
}

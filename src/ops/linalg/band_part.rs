//! MatrixBandPart (`tf.linalg.band_part`): keeps the band of each innermost matrix with
//! `num_lower` sub-diagonals and `num_upper` super-diagonals (a negative count keeps the
//! whole triangle) and zeroes the rest; `band_part(x, -1, 0)` is the lower triangle that
//! causal attention masks use. Its gradient is the band part of the gradient.

use crate::graph::{Graph, Output};
use crate::ops::{kernel_fn, GradCtx, InferCtx, KernelBuildCtx, Op, Registry};
use crate::ops::{InferResult, KernelResult};
use crate::tensor::{DType, Element, Tensor};
use crate::{with_dtype, Error, Result};

fn infer(ctx: &InferCtx<'_>) -> InferResult {
    ctx.expect_inputs(3)?;
    ctx.check_t_attr(ctx.dtype(0))?;
    if let Some(r) = ctx.shape(0).rank() {
        if r < 2 {
            return Err(format!(
                "input must be at least 2-dim, but has shape {}",
                ctx.shape(0)
            ));
        }
    }
    for (i, name) in [(1, "num_lower"), (2, "num_upper")] {
        if !matches!(ctx.dtype(i), DType::Int32 | DType::Int64) {
            return Err(format!(
                "{name} must be int32 or int64, got {}",
                ctx.dtype(i)
            ));
        }
        if ctx.shape(i).rank().is_some_and(|r| r != 0) {
            return Err(format!(
                "{name} must be a scalar, got shape {}",
                ctx.shape(i)
            ));
        }
    }
    Ok(vec![ctx.input(0).clone()])
}

/// Zeroes everything outside the band of each `[rows, cols]` matrix of `x`.
fn band<T: Element>(x: &Tensor, lower: i64, upper: i64) -> Result<Tensor> {
    let s = x.shape();
    let (rows, cols) = (s[s.len() - 2], s[s.len() - 1]);
    let mut v = x.as_slice::<T>()?.to_vec();
    for (i, e) in v.iter_mut().enumerate() {
        let (r, c) = ((i / cols) % rows.max(1), i % cols.max(1));
        let (r, c) = (r as i64, c as i64);
        if (lower >= 0 && r - c > lower) || (upper >= 0 && c - r > upper) {
            *e = T::default();
        }
    }
    Tensor::new(s, v)
}

fn kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let name = ctx.node.name().to_string();
    with_dtype!(any, ctx.input_dtype(0), T => kernel_fn(move |k| {
        let x = k.input(0)?;
        if x.rank() < 2 {
            return Err(Error::invalid(format!(
                "MatrixBandPart '{name}': input must be at least 2-dim, got shape {:?}",
                x.shape()
            )));
        }
        let limit = |i: usize, what: &str, dim: usize| -> Result<i64> {
            let v = k.input(i)?.to_i64_vec()?;
            match v.as_slice() {
                &[n] if n <= dim as i64 => Ok(n),
                _ => Err(Error::invalid(format!(
                    "MatrixBandPart '{name}': {what} must be a scalar at most {dim}, got {v:?}"
                ))),
            }
        };
        let s = x.shape();
        let lower = limit(1, "num_lower", s[s.len() - 2])?;
        let upper = limit(2, "num_upper", s[s.len() - 1])?;
        let out = band::<T>(x, lower, upper)?;
        k.push_output(out);
        Ok(())
    }))
}

/// TensorFlow's `_MatrixBandPartGrad`: the band part of the gradient.
fn grad(ctx: &mut GradCtx<'_>) -> Result<Vec<Option<Output>>> {
    let (lower, upper, grad) = (ctx.input(1), ctx.input(2), ctx.grad(0));
    Ok(vec![
        Some(ctx.graph.matrix_band_part(grad, lower, upper)?),
        None,
        None,
    ])
}

pub(super) fn register(r: &mut Registry) {
    r.add(
        Op::new("MatrixBandPart", infer, kernel)
            .grad(grad)
            .defaults(|| vec![("Tindex", DType::Int64.into())]),
    );
}

impl Graph {
    /// The band of each innermost matrix of `x`: `num_lower` sub- and `num_upper`
    /// super-diagonals (int scalars; negative keeps the whole triangle), zeros elsewhere
    /// (`tf.linalg.band_part`).
    pub fn matrix_band_part(&mut self, x: Output, lower: Output, upper: Output) -> Result<Output> {
        let (t, ti) = (self.dtype(x), self.dtype(lower));
        self.op("MatrixBandPart")
            .input(x)
            .input(lower)
            .input(upper)
            .attr("T", t)
            .attr("Tindex", ti)
            .build_output()
    }
}

#[cfg(test)]
mod tests {
    use crate::test_util::{iota, run, t};
    use crate::Graph;

    #[test]
    fn keeps_the_band() {
        let mut g = Graph::new();
        let x = g.constant(iota(&[2, 3, 3])).unwrap();
        let (m1, zero, one) = (
            g.constant(-1i64).unwrap(),
            g.constant(0i64).unwrap(),
            g.constant(1i64).unwrap(),
        );
        let lower = g.matrix_band_part(x, m1, zero).unwrap();
        let tri = g.matrix_band_part(x, zero, one).unwrap();
        let out = run(&g, &[lower, tri]);
        // tf.linalg.band_part(tf.reshape(tf.range(18), [2, 3, 3]), -1, 0)
        assert_eq!(
            out[0],
            t(
                &[2, 3, 3],
                &[0, 0, 0, 3, 4, 0, 6, 7, 8, 9, 0, 0, 12, 13, 0, 15, 16, 17]
            )
        );
        assert_eq!(
            out[1],
            t(
                &[2, 3, 3],
                &[0, 1, 0, 0, 4, 5, 0, 0, 8, 9, 10, 0, 0, 13, 14, 0, 0, 17]
            )
        );
        let too_many = g.constant(5i64).unwrap();
        let bad = g.matrix_band_part(x, too_many, zero).unwrap();
        let e = crate::test_util::run_err(&g, &[], bad);
        assert!(e.contains("num_lower must be a scalar at most 3"), "{e}");
    }
}

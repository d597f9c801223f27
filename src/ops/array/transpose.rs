//! Transpose: permutes dims with one strided copy.

use super::layout::{strided_gather, strides};
use super::{check_index, check_rank, fmt_ints, index_const, read_ints};
use crate::graph::{Graph, Output, TensorSpec};
use crate::ops::math::{InferResult, KernelResult};
use crate::ops::{kernel_fn, InferCtx, KernelBuildCtx, Op, Registry};
use crate::tensor::{DType, Element, PartialShape, Tensor};
use crate::{with_dtype, Error, Result};

/// Checks that `perm` permutes `0..rank` (negative entries count from the end, as
/// TensorFlow accepts them) and returns it normalized.
fn check_perm(perm: &[i64], rank: usize) -> std::result::Result<Vec<usize>, String> {
    if perm.len() != rank {
        return Err(format!(
            "transpose expects a vector of size {rank}. But input(1) is a vector of size {}",
            perm.len()
        ));
    }
    let r = rank as i64;
    let mut seen = vec![false; rank];
    let mut out = Vec::with_capacity(rank);
    for &p in perm {
        if p < -r || p >= r {
            return Err(format!(
                "{p} is out of range [0 .. {rank}) in perm {}",
                fmt_ints(perm)
            ));
        }
        let d = if p < 0 { p + r } else { p } as usize;
        seen[d] = true;
        out.push(d);
    }
    if let Some(missing) = seen.iter().position(|&s| !s) {
        return Err(format!(
            "{missing} is missing from perm {}: it is not a permutation",
            fmt_ints(perm)
        ));
    }
    Ok(out)
}

fn infer_transpose(ctx: &InferCtx<'_>) -> InferResult {
    ctx.expect_inputs(2)?;
    ctx.check_t_attr(ctx.dtype(0))?;
    check_index(ctx, 1, "Tperm")?;
    check_rank(ctx, 1, 1, "perm")?;
    let x = ctx.shape(0);
    let out = match (x.rank(), ctx.constant_ints(1)) {
        (Some(r), Some(perm)) => {
            let perm = check_perm(&perm, r)?;
            PartialShape::new(perm.iter().map(|&p| x.dim(p)).collect())
        }
        (None, Some(perm)) => PartialShape::with_rank(perm.len()),
        (Some(r), None) => PartialShape::with_rank(r),
        (None, None) => match ctx.shape(1).dim(0) {
            Some(n) => PartialShape::with_rank(n),
            None => PartialShape::unknown(),
        },
    };
    Ok(vec![TensorSpec::new(ctx.dtype(0), out)])
}

/// `x` with its dims permuted.
fn transpose<T: Element>(x: Tensor, perm: &[usize]) -> Result<Tensor> {
    if perm.iter().enumerate().all(|(i, &p)| i == p) {
        return Ok(x);
    }
    let in_strides = strides(x.shape());
    let shape: Vec<usize> = perm.iter().map(|&p| x.shape()[p]).collect();
    let st: Vec<isize> = perm.iter().map(|&p| in_strides[p] as isize).collect();
    let data = strided_gather(x.as_slice::<T>()?, 0, &shape, &st);
    Tensor::new(&shape, data)
}

fn transpose_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    with_dtype!(any, ctx.input_dtype(0), T => kernel_fn(|k| {
        let perm = read_ints(k.input(1)?, "perm", 1)?;
        let x = k.take_input(0)?;
        let perm = check_perm(&perm, x.rank()).map_err(Error::invalid)?;
        k.push_output(transpose::<T>(x, &perm)?);
        Ok(())
    }))
}

pub(super) fn register(r: &mut Registry) {
    r.add(
        Op::new("Transpose", infer_transpose, transpose_kernel)
            .defaults(|| vec![("Tperm", DType::Int32.into())]),
    );
}

impl Graph {
    /// Permutes the dims of `x`: output dim `i` is input dim `perm[i]` (`tf.transpose`).
    pub fn transpose(&mut self, x: Output, perm: &[i64]) -> Result<Output> {
        let p = index_const(self, perm)?;
        let (t, tp) = (self.dtype(x), self.dtype(p));
        self.op("Transpose")
            .input(x)
            .input(p)
            .attr("T", t)
            .attr("Tperm", tp)
            .build_output()
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{iota, run, run_err, run_fed};
    use crate::{DType, Graph, Tensor};

    #[test]
    fn transposes_every_dtype_family() {
        let mut g = Graph::new();
        let x = g.constant(iota(&[2, 3, 4])).unwrap();
        let y = g.transpose(x, &[2, 0, 1]).unwrap();
        assert_eq!(g.shape(y).to_known(), Some(vec![4, 2, 3]));
        let neg = g.transpose(x, &[-1, 0, -2]).unwrap();
        let f = g.constant(Tensor::from([[1.5f64, 2.5, 3.5]])).unwrap();
        let ft = g.transpose(f, &[1, 0]).unwrap();
        let b = g
            .constant(Tensor::from([[true, false], [false, false]]))
            .unwrap();
        let bt = g.transpose(b, &[1, 0]).unwrap();
        let id = g.transpose(x, &[0, 1, 2]).unwrap();
        let out = run(&g, &[y, neg, ft, bt, id, x]);
        // np.arange(24).reshape(2,3,4).transpose(2,0,1).ravel()
        let want: Vec<i32> = vec![
            0, 4, 8, 12, 16, 20, 1, 5, 9, 13, 17, 21, 2, 6, 10, 14, 18, 22, 3, 7, 11, 15, 19, 23,
        ];
        assert_eq!(out[0], Tensor::new(&[4, 2, 3], want.clone()).unwrap());
        assert_eq!(out[1], Tensor::new(&[4, 2, 3], want).unwrap());
        assert_eq!(
            out[2],
            Tensor::new(&[3, 1], vec![1.5f64, 2.5, 3.5]).unwrap()
        );
        assert_eq!(out[3], Tensor::from([[true, false], [false, false]]));
        assert!(out[4].shares_buffer_with(&out[5]));
    }

    #[test]
    fn bad_perms_are_build_errors() {
        let mut g = Graph::new();
        let x = g.constant(iota(&[2, 3])).unwrap();
        let msg = g.transpose(x, &[0, 0]).unwrap_err().to_string();
        assert!(
            msg.contains("Transpose") && msg.contains("1 is missing"),
            "{msg}"
        );
        let msg = g.transpose(x, &[0, 1, 2]).unwrap_err().to_string();
        assert!(msg.contains("vector of size 2"), "{msg}");
        let msg = g.transpose(x, &[0, 2]).unwrap_err().to_string();
        assert!(msg.contains("2 is out of range [0 .. 2)"), "{msg}");
    }

    #[test]
    fn runtime_perm_and_empty_tensors() {
        let mut g = Graph::new();
        let x = g.placeholder(DType::UInt8, [None, Some(2)], "x").unwrap();
        let p = g.placeholder(DType::Int64, [2], "p").unwrap();
        let y = g
            .op("Transpose")
            .input(x)
            .input(p)
            .attr("T", DType::UInt8)
            .attr("Tperm", DType::Int64)
            .build_output()
            .unwrap();
        assert_eq!(g.shape(y).to_string(), "[?,?]");
        let v = Tensor::new(&[3, 2], vec![1u8, 2, 3, 4, 5, 6]).unwrap();
        let out = run_fed(&g, &[(x, v.clone()), (p, Tensor::from([1i64, 0]))], &[y]);
        assert_eq!(
            out[0],
            Tensor::new(&[2, 3], vec![1u8, 3, 5, 2, 4, 6]).unwrap()
        );
        let e = Tensor::zeros(DType::UInt8, &[0, 2]);
        let out = run_fed(&g, &[(x, e), (p, Tensor::from([1i64, 0]))], &[y]);
        assert_eq!(out[0].shape(), &[2, 0]);
        let msg = run_err(&g, &[(x, v), (p, Tensor::from([1i64, 1]))], y);
        assert!(msg.contains("0 is missing"), "{msg}");
    }
}

//! Transpose (permutes dims with one strided copy) and InvertPermutation, which its
//! gradient uses.

use super::layout::{strided_gather, strides};
use super::{check_index, check_rank, fmt_ints, index_const, index_tensor, read_ints, shaped_like};
use crate::graph::{Graph, Output, TensorSpec};
use crate::ops::{kernel_fn, GradCtx, InferCtx, KernelBuildCtx, Op, Registry};
use crate::ops::{InferResult, KernelResult};
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

/// TensorFlow's `_TransposeGrad`: the gradient transposed by the inverse permutation.
fn transpose_grad(ctx: &mut GradCtx<'_>) -> Result<Vec<Option<Output>>> {
    let (x, perm, grad) = (ctx.input(0), ctx.input(1), ctx.grad(0));
    let inverse = ctx.graph.invert_permutation(perm)?;
    let dx = ctx.graph.transpose_t(grad, inverse)?;
    Ok(vec![Some(shaped_like(ctx.graph, dx, x)?), None])
}

/// The inverse of the permutation `x` of `0..n`, with TensorFlow's messages.
fn invert_permutation(x: &[i64]) -> std::result::Result<Vec<i64>, String> {
    let n = x.len();
    let mut out = vec![-1i64; n];
    for (i, &d) in x.iter().enumerate() {
        let slot = usize::try_from(d)
            .ok()
            .filter(|&d| d < n)
            .ok_or_else(|| format!("{d} is not between 0 and {n}"))?;
        if out[slot] != -1 {
            return Err(format!("{d} is duplicated in the input."));
        }
        out[slot] = i as i64;
    }
    Ok(out)
}

fn infer_invert_permutation(ctx: &InferCtx<'_>) -> InferResult {
    ctx.expect_inputs(1)?;
    check_index(ctx, 0, "T")?;
    check_rank(ctx, 0, 1, "x")?;
    if let Some(x) = ctx.constant_ints(0) {
        invert_permutation(&x)?;
    }
    Ok(vec![TensorSpec::new(
        ctx.dtype(0),
        PartialShape::with_rank(1).merge(ctx.shape(0))?,
    )])
}

fn invert_permutation_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let dt = ctx.input_dtype(0);
    kernel_fn(move |k| {
        let x = k.input(0)?;
        if x.rank() != 1 {
            return Err(Error::invalid("invert_permutation expects a 1D vector."));
        }
        let y = invert_permutation(&x.to_i64_vec()?).map_err(Error::invalid)?;
        k.push_output(index_tensor(y, dt, &[x.len()])?);
        Ok(())
    })
}

pub(super) fn register(r: &mut Registry) {
    r.add(
        Op::new("Transpose", infer_transpose, transpose_kernel)
            .grad(transpose_grad)
            .defaults(|| vec![("Tperm", DType::Int32.into())]),
    );
    r.add(
        Op::new(
            "InvertPermutation",
            infer_invert_permutation,
            invert_permutation_kernel,
        )
        .no_grad()
        .defaults(|| vec![("T", DType::Int32.into())]),
    );
}

impl Graph {
    /// Permutes the dims of `x`: output dim `i` is input dim `perm[i]` (`tf.transpose`).
    pub fn transpose(&mut self, x: Output, perm: &[i64]) -> Result<Output> {
        let p = index_const(self, perm)?;
        self.transpose_t(x, p)
    }

    /// [`Graph::transpose`] with the permutation given by a tensor (int32 or int64 vector).
    pub fn transpose_t(&mut self, x: Output, perm: Output) -> Result<Output> {
        let (t, tp) = (self.dtype(x), self.dtype(perm));
        self.op("Transpose")
            .input(x)
            .input(perm)
            .attr("T", t)
            .attr("Tperm", tp)
            .build_output()
    }

    /// The inverse of a permutation of `0..n` given as an int32 or int64 vector
    /// (`tf.math.invert_permutation`): `y[x[i]] = i`.
    pub fn invert_permutation(&mut self, x: Output) -> Result<Output> {
        let t = self.dtype(x);
        self.op("InvertPermutation")
            .input(x)
            .attr("T", t)
            .build_output()
    }
}

#[cfg(test)]
mod tests {
    use crate::test_util::{iota, run, run_err, run_fed};
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

    #[test]
    fn invert_permutation() {
        let mut g = Graph::new();
        let p = g.constant(Tensor::from([2i32, 0, 3, 1])).unwrap();
        let q = g.constant(Tensor::from([0i64])).unwrap();
        let e = g.constant(Tensor::vector(Vec::<i32>::new())).unwrap();
        let (ip, iq, ie) = (
            g.invert_permutation(p).unwrap(),
            g.invert_permutation(q).unwrap(),
            g.invert_permutation(e).unwrap(),
        );
        assert_eq!(g.shape(ip).to_known(), Some(vec![4]));
        let out = run(&g, &[ip, iq, ie]);
        // tf.math.invert_permutation([2, 0, 3, 1])
        assert_eq!(out[0], Tensor::from([1i32, 3, 0, 2]));
        assert_eq!(out[1], Tensor::from([0i64]));
        assert_eq!(out[2].shape(), &[0]);
        // build-time errors for constants, run-time errors (TensorFlow's messages) for feeds
        let dup = g.constant(Tensor::from([2i32, 0, 2, 1])).unwrap();
        let msg = g.invert_permutation(dup).unwrap_err().to_string();
        assert!(msg.contains("2 is duplicated in the input."), "{msg}");
        let m = g.constant(Tensor::from([[0i32]])).unwrap();
        let msg = g.invert_permutation(m).unwrap_err().to_string();
        assert!(msg.contains("rank 1"), "{msg}");
        let f = g.constant(Tensor::from([0.0f32])).unwrap();
        assert!(g.invert_permutation(f).is_err());
        let x = g.placeholder(DType::Int64, [None], "x").unwrap();
        let y = g.invert_permutation(x).unwrap();
        let msg = run_err(&g, &[(x, Tensor::from([2i64, 0, 4, 1]))], y);
        assert!(msg.contains("4 is not between 0 and 4"), "{msg}");
        let msg = run_err(&g, &[(x, Tensor::from([-1i64]))], y);
        assert!(msg.contains("-1 is not between 0 and 1"), "{msg}");
        let out = run_fed(&g, &[(x, Tensor::from([1i64, 2, 0]))], &[y]);
        assert_eq!(out[0], Tensor::from([2i64, 0, 1]));
    }
}

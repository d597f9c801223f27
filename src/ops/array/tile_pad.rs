//! Growing a tensor: Tile (repeat along every dim) and Pad / PadV2 (constant borders).
//!
//! Both copy whole input rows (the last dim) into place, walking the other dims with
//! [`for_each_index`].

use super::layout::{for_each_index, strides};
use super::{
    check_index, check_rank, fmt_ints, index_const, index_const_shaped, rank_value, read_ints,
    shape_value, shaped_like, size_value, to_dims,
};
use crate::graph::{Graph, Output, TensorSpec};
use crate::ops::{kernel_fn, GradCtx, InferCtx, KernelBuildCtx, Op, Registry};
use crate::ops::{InferResult, KernelResult};
use crate::tensor::{alloc, DType, Dim, Element, PartialShape, Tensor};
use crate::{with_dtype, Error, Result};

/// Errors unless `multiples` has one entry per dim of a rank-`rank` tensor, all >= 0.
fn check_multiples(multiples: &[i64], rank: usize) -> std::result::Result<(), String> {
    if multiples.len() != rank {
        return Err(format!(
            "Expected multiples argument to be a vector of length {rank} but got length {}",
            multiples.len()
        ));
    }
    match multiples.iter().enumerate().find(|(_, &m)| m < 0) {
        Some((i, m)) => Err(format!("Expected multiples[{i}] >= 0, but got {m}")),
        None => Ok(()),
    }
}

fn infer_tile(ctx: &InferCtx<'_>) -> InferResult {
    ctx.expect_inputs(2)?;
    ctx.check_t_attr(ctx.dtype(0))?;
    check_index(ctx, 1, "Tmultiples")?;
    check_rank(ctx, 1, 1, "multiples")?;
    let x = ctx.shape(0);
    let rank = x.rank().or(ctx.shape(1).dim(0));
    let out = match (rank, ctx.constant_ints(1)) {
        (Some(r), Some(m)) => {
            check_multiples(&m, r)?;
            let dims = m
                .iter()
                .enumerate()
                .map(|(i, &m)| match (x.dim(i), m) {
                    (_, 0) => Ok(Some(0)),
                    (Some(d), m) => d
                        .checked_mul(m as usize)
                        .map(Some)
                        .ok_or_else(|| format!("dim {i} overflows when tiled {m} times")),
                    (None, _) => Ok(None),
                })
                .collect::<std::result::Result<Vec<Dim>, String>>()?;
            PartialShape::new(dims)
        }
        (Some(r), None) => {
            if let Some(n) = ctx.shape(1).dim(0) {
                check_multiples(&vec![0; n], r)?;
            }
            PartialShape::with_rank(r)
        }
        (None, _) => PartialShape::unknown(),
    };
    Ok(vec![TensorSpec::new(ctx.dtype(0), out)])
}

/// `x` repeated `multiples[i]` times along each dim `i`.
fn tile<T: Element>(x: Tensor, multiples: &[usize]) -> Result<Tensor> {
    if multiples.iter().all(|&m| m == 1) {
        return Ok(x);
    }
    let in_shape = x.shape();
    let out_shape = in_shape
        .iter()
        .zip(multiples)
        .map(|(&d, &m)| d.checked_mul(m))
        .collect::<Option<Vec<usize>>>()
        .ok_or_else(|| Error::invalid("tiled shape overflows"))?;
    let mut out = alloc::try_with_capacity::<T>(&out_shape)?;
    let n = crate::tensor::num_elements(&out_shape);
    // rank >= 1 here: a scalar has no multiples, so the fast path took it.
    let r = in_shape.len();
    let (last, times) = (in_shape[r - 1], multiples[r - 1]);
    let in_strides = strides(in_shape);
    let src = x.as_slice::<T>()?;
    if n > 0 {
        for_each_index(&out_shape[..r - 1], |idx| {
            let start: usize = idx
                .iter()
                .zip(in_shape)
                .zip(&in_strides)
                .map(|((i, d), s)| (i % d) * s)
                .sum();
            let row = &src[start..start + last];
            for _ in 0..times {
                out.extend_from_slice(row);
            }
        });
    }
    Tensor::new(&out_shape, out)
}

fn tile_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    with_dtype!(any, ctx.input_dtype(0), T => kernel_fn(|k| {
        let m = read_ints(k.input(1)?, "multiples", 1)?;
        let x = k.take_input(0)?;
        check_multiples(&m, x.rank()).map_err(Error::invalid)?;
        let m = to_dims(&m, "multiples")?;
        k.push_output(tile::<T>(x, &m)?);
        Ok(())
    }))
}

/// Splits flat `[rank, 2]` paddings into checked `(before, after)` pairs.
fn padding_pairs(p: &[i64]) -> std::result::Result<Vec<(usize, usize)>, String> {
    p.chunks(2)
        .map(|c| match *c {
            [a, b] if a >= 0 && b >= 0 => Ok((a as usize, b as usize)),
            [a, b] => Err(format!("Paddings must be non-negative: {a} {b}")),
            _ => Err(format!("paddings {} must have two columns", fmt_ints(p))),
        })
        .collect()
}

fn infer_pad(ctx: &InferCtx<'_>) -> InferResult {
    let v2 = ctx.num_inputs() == 3;
    if !v2 {
        ctx.expect_inputs(2)?;
    }
    let t = ctx.dtype(0);
    ctx.check_t_attr(t)?;
    check_index(ctx, 1, "Tpaddings")?;
    check_rank(ctx, 1, 2, "paddings")?;
    let p = ctx.shape(1);
    if p.dim(1).is_some_and(|c| c != 2) {
        return Err(format!(
            "paddings must be a matrix with 2 columns, but has shape {p}"
        ));
    }
    if v2 {
        if ctx.dtype(2) != t {
            return Err(format!(
                "constant_values is {} but the input is {t}",
                ctx.dtype(2)
            ));
        }
        check_rank(ctx, 2, 0, "constant_values")?;
    }
    let x = ctx.shape(0);
    if let (Some(r), Some(n)) = (x.rank(), p.dim(0)) {
        if r != n {
            return Err(format!(
                "The first dimension of paddings must be the rank of inputs: paddings {p}, input {x}"
            ));
        }
    }
    let out = match ctx.constant_ints(1) {
        Some(v) => {
            let pairs = padding_pairs(&v)?;
            let dims = pairs
                .iter()
                .enumerate()
                .map(|(i, &(a, b))| x.dim(i).and_then(|d| d.checked_add(a)?.checked_add(b)))
                .collect();
            PartialShape::new(dims)
        }
        None => match x.rank().or(p.dim(0)) {
            Some(r) => PartialShape::with_rank(r),
            None => PartialShape::unknown(),
        },
    };
    Ok(vec![TensorSpec::new(t, out)])
}

/// `x` with `pads[i] = (before, after)` elements of `value` around each dim `i`.
fn pad<T: Element>(x: Tensor, pads: &[(usize, usize)], value: T) -> Result<Tensor> {
    if pads.iter().all(|&p| p == (0, 0)) {
        return Ok(x);
    }
    let in_shape = x.shape();
    let out_shape = in_shape
        .iter()
        .zip(pads)
        .map(|(&d, &(a, b))| d.checked_add(a)?.checked_add(b))
        .collect::<Option<Vec<usize>>>()
        .ok_or_else(|| Error::invalid("padded shape overflows"))?;
    let mut out = alloc::try_filled(&out_shape, value)?;
    // rank >= 1 here: a scalar has no paddings, so the fast path took it.
    let r = in_shape.len();
    let last = in_shape[r - 1];
    let out_strides = strides(&out_shape);
    let src = x.as_slice::<T>()?;
    let mut row = 0;
    for_each_index(&in_shape[..r - 1], |idx| {
        let dst: usize = idx
            .iter()
            .zip(pads)
            .zip(&out_strides)
            .map(|((i, p), s)| (i + p.0) * s)
            .sum::<usize>()
            + pads[r - 1].0;
        out[dst..dst + last].copy_from_slice(&src[row * last..(row + 1) * last]);
        row += 1;
    });
    Tensor::new(&out_shape, out)
}

fn pad_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    with_dtype!(any, ctx.input_dtype(0), T => kernel_fn(|k| {
        let value = if k.num_inputs() == 3 {
            k.input(2)?.scalar_value::<T>()?
        } else {
            T::default()
        };
        let p = k.input(1)?.clone();
        let x = k.take_input(0)?;
        if p.shape() != [x.rank(), 2] {
            return Err(Error::invalid(format!(
                "The first dimension of paddings must be the rank of inputs: paddings {:?}, \
                 input {:?}",
                p.shape(),
                x.shape()
            )));
        }
        let pairs = padding_pairs(&p.to_i64_vec()?).map_err(Error::invalid)?;
        k.push_output(pad::<T>(x, &pairs, value)?);
        Ok(())
    }))
}

/// TensorFlow's `_TileGrad`: the gradient reshaped to the interleaved shape
/// `[m0, d0, m1, d1, ...]` of multiples and input dims, summed over the multiples' axes
/// `0, 2, 4, ...`.
fn tile_grad(ctx: &mut GradCtx<'_>) -> Result<Vec<Option<Output>>> {
    let (x, multiples, grad) = (ctx.input(0), ctx.input(1), ctx.grad(0));
    let g = &mut *ctx.graph;
    let input_shape = shape_value(g, x, g.dtype(multiples))?;
    let stacked = g.stack(&[multiples, input_shape], 0)?;
    let pairs = g.transpose(stacked, &[1, 0])?;
    let split_shape = g.reshape(pairs, &[-1])?;
    let (zero, two) = (g.constant(0i32)?, g.constant(2i32)?);
    let n = size_value(g, split_shape)?;
    let axes = g.range(zero, n, two)?;
    let split = g.reshape_t(grad, split_shape)?;
    let dx = g.reduce_sum_t(split, axes, false)?;
    Ok(vec![Some(shaped_like(g, dx, x)?), None])
}

/// TensorFlow's `_PadGrad` (Pad and PadV2): the slice of the gradient that starts at the
/// paddings' first column and has the input's shape. Paddings and PadV2's
/// `constant_values` get no gradient.
fn pad_grad(ctx: &mut GradCtx<'_>) -> Result<Vec<Option<Output>>> {
    let (x, paddings, grad) = (ctx.input(0), ctx.input(1), ctx.grad(0));
    let num_inputs = ctx.graph.node(ctx.node).inputs().len();
    let g = &mut *ctx.graph;
    let rank = rank_value(g, x)?;
    let one = g.constant(1i32)?;
    let column = g.stack(&[rank, one], 0)?;
    let origin = index_const(g, &[0, 0])?;
    let pad_before = g.slice_t(paddings, origin, column)?;
    let begin = g.reshape(pad_before, &[-1])?;
    let sizes = shape_value(g, x, g.dtype(begin))?;
    let dx = g.slice_t(grad, begin, sizes)?;
    let mut grads = vec![Some(shaped_like(g, dx, x)?)];
    grads.resize(num_inputs, None);
    Ok(grads)
}

pub(super) fn register(r: &mut Registry) {
    r.add(
        Op::new("Tile", infer_tile, tile_kernel)
            .grad(tile_grad)
            .defaults(|| vec![("Tmultiples", DType::Int32.into())]),
    );
    r.add(
        Op::new("Pad", infer_pad, pad_kernel)
            .grad(pad_grad)
            .defaults(|| vec![("Tpaddings", DType::Int32.into())]),
    );
    r.add(
        Op::new("PadV2", infer_pad, pad_kernel)
            .grad(pad_grad)
            .defaults(|| vec![("Tpaddings", DType::Int32.into())]),
    );
}

impl Graph {
    /// `x` repeated `multiples[i]` times along each dim (`tf.tile`).
    pub fn tile(&mut self, x: Output, multiples: &[i64]) -> Result<Output> {
        let m = index_const(self, multiples)?;
        let (t, tm) = (self.dtype(x), self.dtype(m));
        self.op("Tile")
            .input(x)
            .input(m)
            .attr("T", t)
            .attr("Tmultiples", tm)
            .build_output()
    }

    /// `x` with `paddings[i] = [before, after]` zeros (false for bool) around each dim
    /// (`tf.pad`, op Pad).
    pub fn pad(&mut self, x: Output, paddings: &[[i64; 2]]) -> Result<Output> {
        let p = self.paddings_const(paddings)?;
        self.pad_t(x, p)
    }

    /// [`Graph::pad`] with the paddings given by an int32 or int64 `[rank, 2]` tensor.
    pub fn pad_t(&mut self, x: Output, paddings: Output) -> Result<Output> {
        let (t, tp) = (self.dtype(x), self.dtype(paddings));
        self.op("Pad")
            .input(x)
            .input(paddings)
            .attr("T", t)
            .attr("Tpaddings", tp)
            .build_output()
    }

    /// [`Graph::pad`] with the scalar `value` instead of zeros (`tf.pad` with
    /// `constant_values`, op PadV2).
    pub fn pad_with(&mut self, x: Output, paddings: &[[i64; 2]], value: Output) -> Result<Output> {
        let p = self.paddings_const(paddings)?;
        let (t, tp) = (self.dtype(x), self.dtype(p));
        self.op("PadV2")
            .input(x)
            .input(p)
            .input(value)
            .attr("T", t)
            .attr("Tpaddings", tp)
            .build_output()
    }

    fn paddings_const(&mut self, paddings: &[[i64; 2]]) -> Result<Output> {
        let flat: Vec<i64> = paddings.iter().flatten().copied().collect();
        index_const_shaped(self, &flat, &[paddings.len(), 2])
    }
}

#[cfg(test)]
mod tests {
    use crate::test_util::{iota, run, run_err, run_fed, t};
    use crate::{DType, Graph, Tensor};

    #[test]
    fn tiles() {
        let mut g = Graph::new();
        let x = g.constant(iota(&[2, 2])).unwrap();
        let y = g.tile(x, &[2, 3]).unwrap();
        assert_eq!(g.shape(y).to_known(), Some(vec![4, 6]));
        let z = g.tile(x, &[0, 1]).unwrap();
        let b = g.constant(Tensor::from([true, false])).unwrap();
        let bt = g.tile(b, &[2]).unwrap();
        let s = g.constant(5u8).unwrap();
        let st = g.tile(s, &[]).unwrap();
        let out = run(&g, &[y, z, bt, st]);
        // np.tile(np.arange(4).reshape(2,2), (2,3))
        assert_eq!(
            out[0],
            t(
                &[4, 6],
                &[0, 1, 0, 1, 0, 1, 2, 3, 2, 3, 2, 3, 0, 1, 0, 1, 0, 1, 2, 3, 2, 3, 2, 3]
            )
        );
        assert_eq!(out[1].shape(), &[0, 2]);
        assert_eq!(out[2], Tensor::from([true, false, true, false]));
        assert_eq!(out[3], Tensor::scalar(5u8));
    }

    #[test]
    fn tile_errors_and_unknown_dims() {
        let mut g = Graph::new();
        let x = g.constant(iota(&[2, 3])).unwrap();
        let msg = g.tile(x, &[1]).unwrap_err().to_string();
        assert!(msg.contains("vector of length 2 but got length 1"), "{msg}");
        let msg = g.tile(x, &[1, -1]).unwrap_err().to_string();
        assert!(
            msg.contains("Expected multiples[1] >= 0, but got -1"),
            "{msg}"
        );
        let p = g.placeholder(DType::Float64, [None, Some(1)], "p").unwrap();
        let y = g.tile(p, &[0, 3]).unwrap();
        let w = g.tile(p, &[2, 3]).unwrap();
        assert_eq!(g.shape(y).to_string(), "[0,3]");
        assert_eq!(g.shape(w).to_string(), "[?,3]");
        let v = Tensor::new(&[2, 1], vec![1.0f64, 2.0]).unwrap();
        let out = run_fed(&g, &[(p, v)], &[w]);
        // np.tile([[1.],[2.]], (2,3))
        let want = [1., 1., 1., 2., 2., 2., 1., 1., 1., 2., 2., 2.];
        assert_eq!(out[0], Tensor::new(&[4, 3], want.to_vec()).unwrap());
    }

    #[test]
    fn pads() {
        let mut g = Graph::new();
        let x = g.constant(iota(&[2, 2])).unwrap();
        let y = g.pad(x, &[[1, 0], [0, 2]]).unwrap();
        assert_eq!(g.shape(y).to_known(), Some(vec![3, 4]));
        let nine = g.constant(9i32).unwrap();
        let y2 = g.pad_with(x, &[[0, 1], [1, 1]], nine).unwrap();
        let b = g.constant(Tensor::from([true])).unwrap();
        let bp = g.pad(b, &[[2, 1]]).unwrap();
        let e = g.constant(Tensor::zeros(DType::Float32, &[0, 2])).unwrap();
        let ep = g.pad(e, &[[1, 1], [0, 0]]).unwrap();
        let same = g.pad(x, &[[0, 0], [0, 0]]).unwrap();
        let out = run(&g, &[y, y2, bp, ep, same, x]);
        // np.pad(np.arange(4).reshape(2,2), ((1,0),(0,2)))
        assert_eq!(out[0], t(&[3, 4], &[0, 0, 0, 0, 0, 1, 0, 0, 2, 3, 0, 0]));
        // np.pad(np.arange(4).reshape(2,2), ((0,1),(1,1)), constant_values=9)
        assert_eq!(out[1], t(&[3, 4], &[9, 0, 1, 9, 9, 2, 3, 9, 9, 9, 9, 9]));
        assert_eq!(out[2], Tensor::from([false, false, true, false]));
        assert_eq!(out[3], Tensor::zeros(DType::Float32, &[2, 2]));
        assert!(out[4].shares_buffer_with(&out[5]));
    }

    #[test]
    fn pad_errors() {
        let mut g = Graph::new();
        let x = g.constant(iota(&[2, 3])).unwrap();
        let msg = g.pad(x, &[[1, -1], [0, 0]]).unwrap_err().to_string();
        assert!(msg.contains("Paddings must be non-negative: 1 -1"), "{msg}");
        let msg = g.pad(x, &[[1, 1]]).unwrap_err().to_string();
        assert!(msg.contains("first dimension of paddings"), "{msg}");
        let f = g.constant(1.0f32).unwrap();
        let msg = g.pad_with(x, &[[0, 0], [0, 0]], f).unwrap_err().to_string();
        assert!(msg.contains("constant_values"), "{msg}");
        let p = g.placeholder(DType::Int64, [None, Some(2)], "p").unwrap();
        let y = g
            .op("Pad")
            .input(x)
            .input(p)
            .attr("Tpaddings", DType::Int64)
            .build_output()
            .unwrap();
        assert_eq!(g.shape(y).to_string(), "[?,?]");
        let bad = Tensor::new(&[3, 2], vec![0i64; 6]).unwrap();
        let msg = run_err(&g, &[(p, bad)], y);
        assert!(msg.contains("first dimension of paddings"), "{msg}");
        let ok = Tensor::new(&[2, 2], vec![0i64, 0, 1, 0]).unwrap();
        let out = run_fed(&g, &[(p, ok)], &[y]);
        assert_eq!(out[0], t(&[2, 4], &[0, 0, 1, 2, 0, 3, 4, 5]));
    }
}

//! Slice: a contiguous box `[begin, begin + size)` of every dim (size -1 = to the end).

use super::layout::{strided_gather, strides};
use super::{
    check_index, check_rank, fmt_ints, index_const, known_dims, rank_value, read_ints, shape_value,
    shaped_like,
};
use crate::graph::{Graph, Output, TensorSpec};
use crate::ops::{kernel_fn, GradCtx, InferCtx, KernelBuildCtx, Op, Registry};
use crate::ops::{InferResult, KernelResult};
use crate::tensor::{Dim, Element, PartialShape, Tensor};
use crate::{with_dtype, Error, Result};

/// Output dims of slicing `dims` at `begin` with `size` (either may be unknown), checking
/// `0 <= begin <= begin + size <= dim` where known.
fn slice_dims(
    dims: &[Dim],
    begin: Option<&[i64]>,
    size: Option<&[i64]>,
) -> std::result::Result<Vec<Dim>, String> {
    let rank = dims.len();
    for (name, v) in [("begin", begin), ("size", size)] {
        if let Some(v) = v {
            if v.len() != rank {
                return Err(format!(
                    "Expected {name} argument to Slice to be of length {rank} (the input rank), \
                     but got {}",
                    fmt_ints(v)
                ));
            }
        }
    }
    let mut out = Vec::with_capacity(rank);
    for (i, &d) in dims.iter().enumerate() {
        let b = begin.map(|b| b[i]);
        if let Some(b) = b {
            if b < 0 || d.is_some_and(|d| b as u64 > d as u64) {
                let hi = d.map_or("?".to_string(), |d| d.to_string());
                return Err(format!("Expected begin[{i}] in [0, {hi}], but got {b}"));
            }
        }
        // Room left after begin, when both are known.
        let room = match (b, d) {
            (Some(b), Some(d)) => Some(d - b as usize),
            _ => None,
        };
        out.push(match size.map(|s| s[i]) {
            None => None,
            Some(-1) => room,
            Some(s) => {
                if s < 0 || room.is_some_and(|r| s as u64 > r as u64) {
                    let hi = room.map_or("?".to_string(), |r| r.to_string());
                    return Err(format!("Expected size[{i}] in [0, {hi}], but got {s}"));
                }
                Some(s as usize)
            }
        });
    }
    Ok(out)
}

fn infer_slice(ctx: &InferCtx<'_>) -> InferResult {
    ctx.expect_inputs(3)?;
    ctx.check_t_attr(ctx.dtype(0))?;
    let bt = check_index(ctx, 1, "Index")?;
    let st = check_index(ctx, 2, "Index")?;
    if bt != st {
        return Err(format!(
            "begin is {bt} but size is {st}; they must have one dtype"
        ));
    }
    check_rank(ctx, 1, 1, "begin")?;
    check_rank(ctx, 2, 1, "size")?;
    let (begin, size) = (ctx.constant_ints(1), ctx.constant_ints(2));
    let out = match ctx.shape(0).dims() {
        Some(dims) => PartialShape::new(slice_dims(dims, begin.as_deref(), size.as_deref())?),
        None => match ctx.shape(1).dim(0).or(ctx.shape(2).dim(0)) {
            Some(r) => PartialShape::new(slice_dims(
                &vec![None; r],
                begin.as_deref(),
                size.as_deref(),
            )?),
            None => PartialShape::unknown(),
        },
    };
    Ok(vec![TensorSpec::new(ctx.dtype(0), out)])
}

/// The `[begin, begin + size)` box of `x` (sizes already resolved and checked).
fn slice<T: Element>(x: Tensor, begin: &[usize], size: &[usize]) -> Result<Tensor> {
    if size == x.shape() {
        return Ok(x);
    }
    let st = strides(x.shape());
    let offset: usize = begin.iter().zip(&st).map(|(b, s)| b * s).sum();
    let st: Vec<isize> = st.iter().map(|&s| s as isize).collect();
    let data = strided_gather(x.as_slice::<T>()?, offset as isize, size, &st);
    Tensor::new(size, data)
}

fn slice_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    with_dtype!(any, ctx.input_dtype(0), T => kernel_fn(|k| {
        let begin = read_ints(k.input(1)?, "begin", 1)?;
        let size = read_ints(k.input(2)?, "size", 1)?;
        let x = k.take_input(0)?;
        let dims = slice_dims(&known_dims(x.shape()), Some(&begin), Some(&size))
            .map_err(Error::invalid)?;
        let size = super::concrete_dims(dims)?;
        let begin: Vec<usize> = begin.iter().map(|&b| b as usize).collect();
        k.push_output(slice::<T>(x, &begin, &size)?);
        Ok(())
    }))
}

/// TensorFlow's `_SliceGrad`: the gradient padded back to the input's shape, with
/// `begin` zeros before and `shape(x) - shape(y) - begin` after along each dim.
fn slice_grad(ctx: &mut GradCtx<'_>) -> Result<Vec<Option<Output>>> {
    let (x, begin, y, grad) = (ctx.input(0), ctx.input(1), ctx.output(0), ctx.grad(0));
    let g = &mut *ctx.graph;
    let index_dt = g.dtype(begin);
    let input_rank = rank_value(g, x)?;
    let slice_size = shape_value(g, y, index_dt)?;
    let one = g.constant(1i32)?;
    let column = g.stack(&[input_rank, one], 0)?;
    let before = g.reshape_t(begin, column)?;
    let input_shape = shape_value(g, x, index_dt)?;
    let rest = g.sub(input_shape, slice_size)?;
    let rest = g.sub(rest, begin)?;
    let after = g.reshape_t(rest, column)?;
    let paddings = g.concat(&[before, after], 1)?;
    let dx = g.pad_t(grad, paddings)?;
    Ok(vec![Some(shaped_like(g, dx, x)?), None, None])
}

pub(super) fn register(r: &mut Registry) {
    r.add(Op::new("Slice", infer_slice, slice_kernel).grad(slice_grad));
}

impl Graph {
    /// The box of `x` starting at `begin` with extent `size` per dim, -1 meaning "to the
    /// end" (`tf.slice`).
    pub fn slice(&mut self, x: Output, begin: &[i64], size: &[i64]) -> Result<Output> {
        let both_fit = begin.iter().chain(size).all(|&v| i32::try_from(v).is_ok());
        let (b, s) = if both_fit {
            (index_const(self, begin)?, index_const(self, size)?)
        } else {
            (
                self.constant(Tensor::vector(begin.to_vec()))?,
                self.constant(Tensor::vector(size.to_vec()))?,
            )
        };
        self.slice_t(x, b, s)
    }

    /// [`Graph::slice`] with `begin` and `size` given by tensors (int32 or int64 vectors of
    /// one dtype).
    pub fn slice_t(&mut self, x: Output, begin: Output, size: Output) -> Result<Output> {
        let (t, ti) = (self.dtype(x), self.dtype(begin));
        self.op("Slice")
            .input(x)
            .input(begin)
            .input(size)
            .attr("T", t)
            .attr("Index", ti)
            .build_output()
    }
}

#[cfg(test)]
mod tests {
    use crate::test_util::{iota, run, run_err, run_fed, t};
    use crate::{DType, Graph, Tensor};

    #[test]
    fn slices_boxes() {
        let mut g = Graph::new();
        let x = g.constant(iota(&[3, 4])).unwrap();
        let a = g.slice(x, &[1, 1], &[2, 2]).unwrap();
        let b = g.slice(x, &[0, 2], &[-1, -1]).unwrap();
        let e = g.slice(x, &[3, 0], &[0, 4]).unwrap();
        let all = g.slice(x, &[0, 0], &[-1, 4]).unwrap();
        assert_eq!(g.shape(b).to_known(), Some(vec![3, 2]));
        assert_eq!(g.shape(e).to_known(), Some(vec![0, 4]));
        let f = g.constant(Tensor::from([0.5f32, 1.5, 2.5])).unwrap();
        let fs = g.slice(f, &[2], &[1]).unwrap();
        let out = run(&g, &[a, b, e, all, x, fs]);
        // np.arange(12).reshape(3,4)[1:3, 1:3] and [0:, 2:]
        assert_eq!(out[0], t(&[2, 2], &[5, 6, 9, 10]));
        assert_eq!(out[1], t(&[3, 2], &[2, 3, 6, 7, 10, 11]));
        assert_eq!(out[2].shape(), &[0, 4]);
        assert!(out[3].shares_buffer_with(&out[4]));
        assert_eq!(out[5], Tensor::from([2.5f32]));
    }

    #[test]
    fn slice_bounds_are_checked() {
        let mut g = Graph::new();
        let x = g.constant(iota(&[2, 3])).unwrap();
        let msg = g.slice(x, &[1, 1], &[2, 1]).unwrap_err().to_string();
        assert!(
            msg.contains("Expected size[0] in [0, 1], but got 2"),
            "{msg}"
        );
        let msg = g.slice(x, &[3, 0], &[-1, -1]).unwrap_err().to_string();
        assert!(
            msg.contains("Expected begin[0] in [0, 2], but got 3"),
            "{msg}"
        );
        let msg = g.slice(x, &[0], &[1]).unwrap_err().to_string();
        assert!(msg.contains("length 2"), "{msg}");
        let msg = g.slice(x, &[0, -1], &[1, 1]).unwrap_err().to_string();
        assert!(msg.contains("begin[1]"), "{msg}");
    }

    #[test]
    fn slice_with_runtime_begin() {
        let mut g = Graph::new();
        let x = g
            .constant(Tensor::new(&[2, 2], vec![true, false, false, true]).unwrap())
            .unwrap();
        let b = g.placeholder(DType::Int64, [2], "b").unwrap();
        let s = g.constant(Tensor::from([1i64, -1])).unwrap();
        let y = g
            .op("Slice")
            .input(x)
            .input(b)
            .input(s)
            .attr("Index", DType::Int64)
            .build_output()
            .unwrap();
        assert_eq!(g.shape(y).to_string(), "[1,?]");
        let out = run_fed(&g, &[(b, Tensor::from([1i64, 1]))], &[y]);
        assert_eq!(out[0], Tensor::new(&[1, 1], vec![true]).unwrap());
        let msg = run_err(&g, &[(b, Tensor::from([2i64, 0]))], y);
        assert!(
            msg.contains("Expected size[0] in [0, 0], but got 1"),
            "{msg}"
        );
        let i32s = g.constant(Tensor::from([0i32, 0])).unwrap();
        let msg = g
            .op("Slice")
            .input(x)
            .input(i32s)
            .input(s)
            .build()
            .unwrap_err()
            .to_string();
        assert!(msg.contains("one dtype"), "{msg}");
    }
}

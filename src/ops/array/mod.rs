//! Array and shape ops, named, ordered and attributed as in TensorFlow.
//!
//! - `shape`: Reshape, ExpandDims, Squeeze (re-views of the buffer, no copy) and Shape,
//!   ShapeN, Size, Rank.
//! - `transpose`: Transpose.
//! - `concat`: ConcatV2, Pack, Unpack; `split`: Split, SplitV.
//! - `slice`: Slice; `strided_slice`: StridedSlice.
//! - `gather`: GatherV2, OneHot.
//! - `fill`: Fill, ZerosLike, OnesLike, Range.
//! - `tile_pad`: Tile, Pad, PadV2.
//! - `segment`: UnsortedSegmentSum.
//!
//! Gradients follow TensorFlow's `array_grad.py` and are built from differentiable ops, so
//! they can be differentiated again; the ops only gradients need (InvertPermutation,
//! ConcatOffset, StridedSliceGrad, UnsortedSegmentSum) are ordinary ops here.
//!
//! Shape inference reads shape-, axis- and index-valued inputs with
//! [`InferCtx::constant_ints`] when they are known at build time; every kernel re-checks
//! the same rules at run time, because fed tensors may have dims that were unknown.

mod concat;
mod fill;
mod gather;
#[cfg(test)]
mod grad_tests;
mod layout;
mod segment;
mod shape;
mod slice;
mod split;
mod strided_slice;
mod tile_pad;
mod transpose;

pub use strided_slice::StridedSliceMasks;

use super::{InferCtx, Registry};
use crate::graph::{Attrs, AttrsExt, Graph, Output};
use crate::tensor::{DType, Dim, Tensor};
use crate::{Error, Result};

pub(crate) fn register(r: &mut Registry) {
    shape::register(r);
    transpose::register(r);
    concat::register(r);
    split::register(r);
    slice::register(r);
    strided_slice::register(r);
    gather::register(r);
    fill::register(r);
    tile_pad::register(r);
    segment::register(r);
}

/// The dtypes TensorFlow allows for shape-, axis- and index-valued inputs.
const INDEX_TYPES: &[DType] = &[DType::Int32, DType::Int64];

/// Errors unless input `i` is int32 or int64 and agrees with the type attr `attr` when
/// that attr is set; returns the dtype.
fn check_index(ctx: &InferCtx<'_>, i: usize, attr: &str) -> std::result::Result<DType, String> {
    let dt = ctx.dtype(i);
    if !INDEX_TYPES.contains(&dt) {
        return Err(format!(
            "input {i} has dtype {dt}, but must be int32 or int64 (attr {attr})"
        ));
    }
    check_type_attr(ctx, attr, dt)?;
    Ok(dt)
}

/// Errors when the type attr `attr` is set to something other than `dt`.
fn check_type_attr(ctx: &InferCtx<'_>, attr: &str, dt: DType) -> std::result::Result<(), String> {
    if ctx.attrs().value(attr).is_none() {
        return Ok(());
    }
    let t = ctx.attrs().dtype(attr)?;
    if t == dt {
        Ok(())
    } else {
        Err(format!("attr {attr} is {t} but the input is {dt}"))
    }
}

/// Errors unless input `i` has rank `rank` (when its rank is known); `what` names it.
fn check_rank(
    ctx: &InferCtx<'_>,
    i: usize,
    rank: usize,
    what: &str,
) -> std::result::Result<(), String> {
    match ctx.shape(i).rank() {
        Some(r) if r != rank => Err(format!("{what} must be rank {rank}, but is rank {r}")),
        _ => Ok(()),
    }
}

/// Maps `axis` in `[-rank, rank)` to `[0, rank)`; `what` names the axis in the message.
fn normalize_axis(axis: i64, rank: usize, what: &str) -> std::result::Result<usize, String> {
    let r = rank as i64;
    if axis < -r || axis >= r {
        return Err(format!(
            "{what} {axis} is out of range for a tensor of rank {rank} (expected [-{rank}, {rank}))"
        ));
    }
    Ok(if axis < 0 { axis + r } else { axis } as usize)
}

/// A run-time index-valued input as i64 values, checked to have rank at most `max_rank`.
fn read_ints(t: &Tensor, what: &str, max_rank: usize) -> Result<Vec<i64>> {
    if t.rank() > max_rank {
        return Err(Error::invalid(format!(
            "{what} must have rank at most {max_rank}, but has shape {:?}",
            t.shape()
        )));
    }
    t.to_i64_vec()
}

/// Converts run-time dims to `usize`, naming `what` when one is negative.
fn to_dims(values: &[i64], what: &str) -> Result<Vec<usize>> {
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            usize::try_from(v)
                .map_err(|_| Error::invalid(format!("{what}[{i}] = {v} must be non-negative")))
        })
        .collect()
}

/// Formats integers as TensorFlow prints shapes: `[2,3]`.
fn fmt_ints(values: &[i64]) -> String {
    let parts: Vec<String> = values.iter().map(|v| v.to_string()).collect();
    format!("[{}]", parts.join(","))
}

/// Formats concrete dims as TensorFlow prints shapes: `[2,3]`.
fn fmt_dims(dims: &[usize]) -> String {
    fmt_ints(&dims.iter().map(|&d| d as i64).collect::<Vec<_>>())
}

/// Concrete dims as known partial dims.
fn known_dims(dims: &[usize]) -> Vec<Dim> {
    dims.iter().map(|&d| Some(d)).collect()
}

/// Partial dims computed from concrete inputs back to concrete dims.
fn concrete_dims(dims: Vec<Dim>) -> Result<Vec<usize>> {
    dims.into_iter()
        .map(|d| d.ok_or_else(|| Error::invalid("a dimension could not be computed at run time")))
        .collect()
}

/// Errors when the list-length attr `attr` is set and differs from `n`.
fn check_len_attr(ctx: &InferCtx<'_>, attr: &str, n: usize) -> std::result::Result<(), String> {
    match ctx.attrs().value(attr) {
        None => Ok(()),
        Some(_) => {
            let v = ctx.attrs().int(attr)?;
            if v == n as i64 {
                Ok(())
            } else {
                Err(format!("attr {attr} is {v} but there are {n} values"))
            }
        }
    }
}

/// The `out_type` attr of Shape, ShapeN and Size: int32 (the default) or int64.
fn out_type_attr(attrs: &Attrs) -> std::result::Result<DType, String> {
    let t = attrs.dtype_or("out_type", DType::Int32)?;
    if INDEX_TYPES.contains(&t) {
        Ok(t)
    } else {
        Err(format!("attr out_type must be int32 or int64, got {t}"))
    }
}

/// An int32 or int64 tensor of `shape` holding `values`; errors when a value does not fit
/// int32.
fn index_tensor(values: Vec<i64>, dtype: DType, shape: &[usize]) -> Result<Tensor> {
    match dtype {
        DType::Int64 => Tensor::new(shape, values),
        _ => {
            let v = values
                .iter()
                .map(|&x| {
                    i32::try_from(x).map_err(|_| {
                        Error::invalid(format!(
                            "value {x} does not fit the int32 output; use int64"
                        ))
                    })
                })
                .collect::<Result<Vec<i32>>>()?;
            Tensor::new(shape, v)
        }
    }
}

/// An index-valued vector constant as TensorFlow's Python wrappers make it: int32 when
/// every value fits, int64 otherwise.
fn index_const(g: &mut Graph, values: &[i64]) -> Result<Output> {
    index_const_shaped(g, values, &[values.len()])
}

/// [`index_const`] with a shape.
fn index_const_shaped(g: &mut Graph, values: &[i64], shape: &[usize]) -> Result<Output> {
    let t = match values
        .iter()
        .map(|&v| i32::try_from(v))
        .collect::<std::result::Result<Vec<i32>, _>>()
    {
        Ok(v) => Tensor::new(shape, v)?,
        Err(_) => Tensor::new(shape, values.to_vec())?,
    };
    g.constant(t)
}

/// A scalar index constant (int32 when it fits, int64 otherwise).
fn scalar_index_const(g: &mut Graph, value: i64) -> Result<Output> {
    match i32::try_from(value) {
        Ok(v) => g.constant(Tensor::scalar(v)),
        Err(_) => g.constant(Tensor::scalar(value)),
    }
}

/// The shape of `x` as an `out_type` (int32 or int64) vector, as TensorFlow's
/// `array_ops.shape` makes it: a constant when the shape is fully known while building, a
/// Shape op otherwise.
fn shape_value(g: &mut Graph, x: Output, out_type: DType) -> Result<Output> {
    match g.shape(x).to_known() {
        Some(dims) => {
            let v: Vec<i64> = dims.iter().map(|&d| d as i64).collect();
            let t = index_tensor(v, out_type, &[dims.len()])?;
            g.constant(t)
        }
        None => g.shape_of_as(x, out_type),
    }
}

/// The rank of `x` as an int32 scalar: a constant when known (`array_ops.rank`), a Rank
/// op otherwise.
fn rank_value(g: &mut Graph, x: Output) -> Result<Output> {
    match g.shape(x).rank() {
        Some(r) => scalar_index_const(g, r as i64),
        None => g.rank(x),
    }
}

/// The number of elements of `x` as an int32 scalar: a constant when known
/// (`array_ops.size`), a Size op otherwise.
fn size_value(g: &mut Graph, x: Output) -> Result<Output> {
    match g.shape(x).num_elements() {
        Some(n) => g.constant(index_tensor(vec![n as i64], DType::Int32, &[])?),
        None => g.size(x),
    }
}

/// Gives the gradient `dx` the shape of `x`, which it always has: what TensorFlow's shape
/// inference finds by evaluating the constant shape subgraphs a gradient is built from
/// (or its explicit `set_shape`, as in `_TileGrad`).
fn shaped_like(g: &mut Graph, dx: Output, x: Output) -> Result<Output> {
    let shape = g.shape(x).clone();
    g.set_shape(dx, &shape)?;
    Ok(dx)
}

/// Gradient checks of this family's differentiable ops (run by `autodiff::tests`).
#[cfg(test)]
pub(crate) fn gradient_cases() -> Vec<crate::test_util::GradCase> {
    use crate::test_util::{test_input as x, GradCase};
    /// `x[begin:end:strides]` of a `[2, 3, 4]` input with `[begin, end, ellipsis,
    /// new_axis, shrink_axis]` masks.
    fn ss(g: &mut Graph, v: Output, s: [&[i64]; 3], m: [i64; 5]) -> Result<Output> {
        let masks = StridedSliceMasks {
            begin: m[0],
            end: m[1],
            ellipsis: m[2],
            new_axis: m[3],
            shrink_axis: m[4],
        };
        g.strided_slice(v, s[0], s[1], s[2], masks)
    }
    vec![
        GradCase::new("Reshape", vec![x(&[2, 3], 1)], |g, x| {
            g.reshape(x[0], &[3, -1])
        }),
        GradCase::new("ExpandDims", vec![x(&[2, 3], 2)], |g, x| {
            g.expand_dims(x[0], -1)
        }),
        GradCase::new("Squeeze", vec![x(&[2, 1, 3], 3)], |g, x| {
            g.squeeze(x[0], &[1])
        }),
        GradCase::new("Squeeze", vec![x(&[1, 3, 1], 4)], |g, x| {
            g.squeeze(x[0], &[])
        }),
        GradCase::new("Transpose", vec![x(&[2, 3, 4], 5)], |g, x| {
            g.transpose(x[0], &[2, 0, 1])
        }),
        GradCase::new(
            "ConcatV2",
            vec![x(&[2, 1], 6), x(&[2, 3], 7), x(&[2, 2], 8)],
            |g, x| g.concat(x, -1),
        ),
        GradCase::new("ConcatV2", vec![x(&[1, 3], 9), x(&[2, 3], 10)], |g, x| {
            g.concat(x, 0)
        }),
        GradCase::new("Pack", vec![x(&[2, 3], 11), x(&[2, 3], 12)], |g, x| {
            g.stack(x, 1)
        }),
        GradCase::new(
            "Pack",
            vec![x(&[2], 13), x(&[2], 14), x(&[2], 15)],
            |g, x| g.stack(x, -1),
        ),
        // Only two of the three outputs are used: the third gets zeros.
        GradCase::new("Unpack", vec![x(&[2, 3], 16)], |g, x| {
            let parts = g.unstack(x[0], None, 1)?;
            g.concat(&[parts[2], parts[0]], 0)
        }),
        // Two of three parts used: the third's gradient is zeros.
        GradCase::new("Split", vec![x(&[2, 6], 30)], |g, x| {
            let parts = g.split(x[0], 3, 1)?;
            g.concat(&[parts[2], parts[0]], 0)
        }),
        GradCase::new("SplitV", vec![x(&[4, 3], 31)], |g, x| {
            let parts = g.split_v(x[0], &[1, -1, 2], 0)?;
            g.concat(&[parts[2], parts[1]], 0)
        }),
        GradCase::new("Slice", vec![x(&[3, 4], 17)], |g, x| {
            g.slice(x[0], &[1, 1], &[2, -1])
        }),
        GradCase::new("Slice", vec![x(&[3, 4], 18)], |g, x| {
            let b = g.constant(Tensor::from([0i64, 2]))?;
            let s = g.constant(Tensor::from([2i64, 1]))?;
            g.slice_t(x[0], b, s)
        }),
        // x[1:, ::-1, tf.newaxis, ..., 0]
        GradCase::new("StridedSlice", vec![x(&[2, 3, 4], 19)], |g, x| {
            ss(
                g,
                x[0],
                [&[1, 0, 0, 0, 0], &[0, 0, 0, 0, 1], &[1, -1, 1, 1, 1]],
                [2, 3, 8, 4, 16],
            )
        }),
        // x[:, tf.newaxis, ..., tf.newaxis, 1]
        GradCase::new("StridedSlice", vec![x(&[2, 3, 4], 20)], |g, x| {
            ss(
                g,
                x[0],
                [&[0, 0, 0, 0, 1], &[0, 0, 0, 0, 2], &[1; 5]],
                [1, 1, 4, 10, 16],
            )
        }),
        // x[::-1, 1:-1:1, 3:0:-2]
        GradCase::new("StridedSlice", vec![x(&[2, 3, 4], 21)], |g, x| {
            ss(
                g,
                x[0],
                [&[0, 1, 3], &[0, -1, 0], &[-1, 1, -2]],
                [1, 1, 0, 0, 0],
            )
        }),
        // x[-1, ..., ::-3]
        GradCase::new("StridedSlice", vec![x(&[2, 3, 4], 22)], |g, x| {
            ss(
                g,
                x[0],
                [&[-1, 0, 0], &[0, 0, 0], &[1, 1, -3]],
                [4, 4, 2, 0, 1],
            )
        }),
        // the gradient of x[1:, ::-1, tf.newaxis, ..., 0] for dy of shape [1, 3, 1]
        GradCase::new("StridedSliceGrad", vec![x(&[1, 3, 1], 23)], |g, x| {
            let shape = g.constant(Tensor::from([2i32, 3, 4]))?;
            let b = g.constant(Tensor::from([1i32, 0, 0, 0, 0]))?;
            let e = g.constant(Tensor::from([0i32, 0, 0, 0, 1]))?;
            let s = g.constant(Tensor::from([1i32, -1, 1, 1, 1]))?;
            let masks = StridedSliceMasks {
                begin: 2,
                end: 3,
                ellipsis: 8,
                new_axis: 4,
                shrink_axis: 16,
            };
            g.strided_slice_grad(shape, b, e, s, x[0], masks)
        }),
        // repeated rows accumulate
        GradCase::new("GatherV2", vec![x(&[4, 3], 24)], |g, x| {
            let i = g.constant(Tensor::from([2i32, 0, 2, 3]))?;
            g.gather(x[0], i, 0)
        }),
        GradCase::new("GatherV2", vec![x(&[2, 4, 3], 25)], |g, x| {
            let i = g.constant(Tensor::from([[3i64, 0], [1, 3]]))?;
            g.gather(x[0], i, 1)
        }),
        GradCase::new("GatherV2", vec![x(&[3, 4], 26)], |g, x| {
            let i = g.constant(Tensor::from([1i32, 1, 0]))?;
            g.gather(x[0], i, -1)
        }),
        GradCase::new("GatherV2", vec![x(&[3, 2], 27)], |g, x| {
            let i = g.constant(2i32)?;
            g.gather(x[0], i, 0)
        }),
        // a negative id drops its row
        GradCase::new("UnsortedSegmentSum", vec![x(&[4, 3], 28)], |g, x| {
            let ids = g.constant(Tensor::from([2i32, 0, 2, -1]))?;
            let n = g.constant(3i32)?;
            g.unsorted_segment_sum(x[0], ids, n)
        }),
        GradCase::new("UnsortedSegmentSum", vec![x(&[2, 2, 3], 29)], |g, x| {
            let ids = g.constant(Tensor::from([[1i64, 0], [1, 1]]))?;
            let n = g.constant(3i64)?;
            g.unsorted_segment_sum(x[0], ids, n)
        }),
        GradCase::new("Tile", vec![x(&[2, 3], 30)], |g, x| g.tile(x[0], &[2, 3])),
        GradCase::new("Tile", vec![x(&[2, 1, 3], 31)], |g, x| {
            g.tile(x[0], &[1, 3, 2])
        }),
        GradCase::new("Pad", vec![x(&[2, 3], 32)], |g, x| {
            g.pad(x[0], &[[1, 0], [0, 2]])
        }),
        GradCase::new("PadV2", vec![x(&[2, 3], 33)], |g, x| {
            let v = g.constant(0.5f64)?;
            g.pad_with(x[0], &[[0, 2], [1, 1]], v)
        }),
        GradCase::new("Fill", vec![x(&[], 34)], |g, x| {
            let dims = g.constant(Tensor::from([2i32, 3]))?;
            g.fill(dims, x[0])
        }),
    ]
}

#[cfg(test)]
mod tests {
    use super::StridedSliceMasks;
    use crate::{DType, Graph, Output, Tensor};

    /// Every builder sets exactly the attrs of TensorFlow's OpDef (the lists below are
    /// `op_def_registry.get(name).attr` names from TensorFlow 2.21), as its Python wrappers do.
    #[test]
    fn builders_set_tensorflow_attrs() {
        let mut g = Graph::new();
        let x = g
            .constant(Tensor::from([[1.0f32, 2.0], [3.0, 4.0]]))
            .unwrap();
        let i = g.constant(Tensor::from([0i32, 1])).unwrap();
        let (one, zero) = (g.constant(1.0f32).unwrap(), g.constant(0.0f32).unwrap());
        let (s, l) = (g.constant(0i32).unwrap(), g.constant(3i32).unwrap());
        let d = g.constant(1i32).unwrap();
        let dims = g.constant(Tensor::from([2i32])).unwrap();
        let mut built: Vec<(Output, &[&str])> = vec![
            (g.reshape(x, &[4]).unwrap(), &["T", "Tshape"]),
            (g.transpose(x, &[1, 0]).unwrap(), &["T", "Tperm"]),
            (g.expand_dims(x, 0).unwrap(), &["T", "Tdim"]),
            (g.squeeze(x, &[]).unwrap(), &["T", "squeeze_dims"]),
            (g.concat(&[x, x], 0).unwrap(), &["N", "T", "Tidx"]),
            (g.stack(&[x, x], 0).unwrap(), &["N", "T", "axis"]),
            (g.unstack(x, None, 0).unwrap()[0], &["T", "axis", "num"]),
            (g.slice(x, &[0, 0], &[1, 1]).unwrap(), &["Index", "T"]),
            (
                g.gather(x, i, 0).unwrap(),
                &["Taxis", "Tindices", "Tparams", "batch_dims"],
            ),
            (g.tile(x, &[1, 2]).unwrap(), &["T", "Tmultiples"]),
            (g.fill(dims, one).unwrap(), &["T", "index_type"]),
            (g.zeros_like(x).unwrap(), &["T"]),
            (g.ones_like(x).unwrap(), &["T"]),
            (g.shape_of(x).unwrap(), &["T", "out_type"]),
            (g.shape_n(&[x, x]).unwrap()[1], &["N", "T", "out_type"]),
            (g.size(x).unwrap(), &["T", "out_type"]),
            (g.rank(x).unwrap(), &["T"]),
            (
                g.one_hot(i, 3, one, zero, -1).unwrap(),
                &["T", "TI", "axis"],
            ),
            (g.range(s, l, d).unwrap(), &["Tidx"]),
            (g.pad(x, &[[0, 1], [1, 0]]).unwrap(), &["T", "Tpaddings"]),
            (
                g.pad_with(x, &[[0, 1], [1, 0]], one).unwrap(),
                &["T", "Tpaddings"],
            ),
        ];
        let masks: &[&str] = &[
            "Index",
            "T",
            "begin_mask",
            "ellipsis_mask",
            "end_mask",
            "new_axis_mask",
            "shrink_axis_mask",
        ];
        let ss = g
            .strided_slice(x, &[0], &[1], &[1], StridedSliceMasks::default())
            .unwrap();
        built.push((ss, masks));
        let v = |g: &mut Graph, x: &[i32]| g.constant(Tensor::from(x.to_vec())).unwrap();
        let (b, e, s, shape) = (
            v(&mut g, &[0]),
            v(&mut g, &[2]),
            v(&mut g, &[1]),
            v(&mut g, &[2, 2]),
        );
        let ssg = g
            .strided_slice_grad(shape, b, e, s, x, StridedSliceMasks::default())
            .unwrap();
        built.push((ssg, masks));
        built.push((g.invert_permutation(i).unwrap(), &["T"]));
        built.push((
            g.concat_offset(d, &[dims, dims]).unwrap()[1],
            &["N", "shape_type"],
        ));
        built.push((
            g.unsorted_segment_sum(x, i, d).unwrap(),
            &["T", "Tindices", "Tnumsegments"],
        ));
        for (o, want) in built {
            let node = g.node(o.node);
            let keys: Vec<&str> = node.attrs().keys().map(|k| k.as_str()).collect();
            assert_eq!(keys, want, "{}", node.op_type());
        }
        let z = g.zeros(DType::UInt8, &[2, 1]).unwrap();
        assert_eq!(g.node(z.node).op_type(), "Fill");
        assert_eq!(g.shape(z).to_known(), Some(vec![2, 1]));
    }
}

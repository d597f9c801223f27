//! StridedSlice: NumPy-style basic indexing (`x[1:, ::-1, tf.newaxis, ..., 0]`), with
//! TensorFlow's five masks, negative strides and clamping.
//!
//! [`plan`] follows TensorFlow's `ValidateStridedSliceOp`: the sparse spec (one entry per
//! index in begin/end/strides) is expanded into a dense spec (one entry per input dim) by
//! filling in the ellipsis, then every dense dim gets a canonical begin, stride and length.
//! Shape inference runs the same function on partial shapes.

use super::layout::{strided_gather, strides};
use super::{check_index, check_rank, concrete_dims, fmt_ints, index_const, known_dims, read_ints};
use crate::graph::{Attrs, AttrsExt, Graph, Output, TensorSpec};
use crate::ops::math::{InferResult, KernelResult};
use crate::ops::{kernel_fn, InferCtx, KernelBuildCtx, Op, Registry};
use crate::tensor::{Dim, Element, PartialShape, Tensor};
use crate::{with_dtype, Error, Result};

/// The masks of a StridedSlice; bit `i` applies to index `i` of begin/end/strides.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StridedSliceMasks {
    /// Ignore `begin[i]`: start from the first element (the last for negative strides).
    pub begin: i64,
    /// Ignore `end[i]`: run to the end (the start for negative strides).
    pub end: i64,
    /// Index `i` is an ellipsis (`...`), standing for as many full dims as needed.
    pub ellipsis: i64,
    /// Index `i` inserts a new size-1 dim (`tf.newaxis`).
    pub new_axis: i64,
    /// Index `i` takes the single element `begin[i]` and removes the dim (`x[3]`).
    pub shrink_axis: i64,
}

impl StridedSliceMasks {
    fn from_attrs(attrs: &Attrs) -> std::result::Result<Self, String> {
        Ok(StridedSliceMasks {
            begin: attrs.int_or("begin_mask", 0)?,
            end: attrs.int_or("end_mask", 0)?,
            ellipsis: attrs.int_or("ellipsis_mask", 0)?,
            new_axis: attrs.int_or("new_axis_mask", 0)?,
            shrink_axis: attrs.int_or("shrink_axis_mask", 0)?,
        })
    }
}

/// Bit `i` of a mask.
fn bit(mask: i64, i: usize) -> bool {
    i < 64 && (mask >> i) & 1 != 0
}

/// Where a final output dim comes from.
#[derive(Clone, Copy)]
enum FinalDim {
    /// Dense (input) dim `d`.
    Dense(usize),
    /// A new size-1 dim.
    NewAxis,
}

/// One input dim's slice: first index, step and length (`None` when unknown).
#[derive(Clone, Copy)]
struct DimSlice {
    begin: i64,
    stride: i64,
    len: Dim,
}

/// The canonical slice of every input dim and the final output dims.
struct Plan {
    dims: Vec<DimSlice>,
    final_shape: Vec<Dim>,
}

/// One dense (per input dim) slice spec before canonicalization.
#[derive(Clone, Copy)]
struct DenseDim {
    begin: i64,
    end: i64,
    stride: i64,
    begin_masked: bool,
    end_masked: bool,
    shrink: bool,
}

/// Canonicalizes a strided slice of `input` (dims may be unknown). `begin` and `end` are
/// `None` when not known (shape inference); the kernel always has them.
fn plan(
    input: &[Dim],
    begin: Option<&[i64]>,
    end: Option<&[i64]>,
    strides: &[i64],
    m: StridedSliceMasks,
) -> std::result::Result<Plan, String> {
    let n = strides.len();
    if begin.is_some_and(|b| b.len() != n) || end.is_some_and(|e| e.len() != n) || n >= 32 {
        let show = |v: Option<&[i64]>| v.map_or("?".to_string(), |v| format!("[{}]", v.len()));
        return Err(format!(
            "Expected begin, end, and strides to be 1D equal size tensors of fewer than 32 \
             elements, but got shapes {}, {}, and [{n}] instead.",
            show(begin),
            show(end)
        ));
    }
    if m.ellipsis & m.ellipsis.wrapping_sub(1) != 0 {
        return Err("Multiple ellipses in slice spec not allowed".into());
    }
    // Step 1: count the new axes after the ellipsis; add an implicit ellipsis at the end.
    let mut ellipsis = m.ellipsis;
    let mut sparse_dims = n;
    let mut ellipsis_seen = false;
    let mut new_axis_after_ellipsis = 0i64;
    for i in 0..n {
        if ellipsis_seen && bit(m.new_axis, i) {
            new_axis_after_ellipsis += 1;
        }
        ellipsis_seen |= bit(ellipsis, i);
    }
    if !ellipsis_seen {
        ellipsis |= 1 << n;
        sparse_dims += 1;
    }
    // Step 2: the dense spec, one entry per input dim.
    let rank = input.len();
    let full = DenseDim {
        begin: 0,
        end: 0,
        stride: 1,
        begin_masked: true,
        end_masked: true,
        shrink: false,
    };
    let mut dense = vec![full; rank];
    let mut gather = Vec::with_capacity(sparse_dims + rank);
    let mut full_index = 0usize;
    for i in 0..sparse_dims {
        if bit(ellipsis, i) {
            let next = (rank as i64 - (sparse_dims - i) as i64 + 1 + new_axis_after_ellipsis)
                .min(rank as i64);
            while (full_index as i64) < next {
                dense[full_index] = full;
                gather.push(Some(FinalDim::Dense(full_index)));
                full_index += 1;
            }
        } else if bit(m.new_axis, i) {
            gather.push(Some(FinalDim::NewAxis));
        } else {
            if full_index == rank {
                return Err(format!(
                    "Index out of range using input dim {full_index}; input has only {rank} dims"
                ));
            }
            let shrink = bit(m.shrink_axis, i);
            dense[full_index] = DenseDim {
                begin: begin.map_or(0, |b| b[i]),
                end: end.map_or(0, |e| e[i]),
                stride: strides[i],
                begin_masked: bit(m.begin, i),
                end_masked: bit(m.end, i),
                shrink,
            };
            gather.push((!shrink).then_some(FinalDim::Dense(full_index)));
            full_index += 1;
        }
    }
    // Step 3: canonical begin and length of every dense dim, with bounds checks.
    let known_range = begin.is_some() && end.is_some();
    let mut dims = Vec::with_capacity(rank);
    for (i, (s, &dim)) in dense.iter().zip(input).enumerate() {
        let stride = s.stride;
        if stride == 0 {
            return Err(format!("strides[{i}] must be non-zero"));
        }
        if s.shrink && stride <= 0 {
            return Err("only stride 1 allowed on non-range indexing.".into());
        }
        let Some(d) = dim else {
            let len = if s.shrink { Some(1) } else { None };
            dims.push(DimSlice {
                begin: 0,
                stride,
                len,
            });
            continue;
        };
        let d = d as i64;
        let (mut b, mut e) = (s.begin, s.end);
        let interval = if known_range {
            if s.shrink {
                let x = if b < 0 { d.saturating_add(b) } else { b };
                if x < 0 || x >= d {
                    return Err(format!("slice index {b} of dimension {i} out of bounds."));
                }
                b = x;
                e = x + 1;
            } else {
                // Masked ends take the whole range; others count negatives from the end
                // and are clamped to [0, d] (forward) or [-1, d - 1] (backward).
                let (lo, hi) = if stride > 0 { (0, d) } else { (-1, d - 1) };
                let canonical = |x: i64, masked: bool, is_end: bool| {
                    if masked {
                        if (stride > 0) != is_end {
                            lo
                        } else {
                            hi
                        }
                    } else {
                        let fwd = if x < 0 { d.saturating_add(x) } else { x };
                        fwd.clamp(lo, hi)
                    }
                };
                b = canonical(b, s.begin_masked, false);
                e = canonical(e, s.end_masked, true);
            }
            Some(e - b)
        } else if s.shrink {
            Some(1)
        } else if s.begin_masked && s.end_masked {
            Some(if stride < 0 { -d } else { d })
        } else {
            None
        };
        let len = interval.map(|len| {
            if len == 0 || (len < 0) != (stride < 0) {
                0
            } else {
                // ceil(len / stride), both of one sign
                (len / stride + i64::from(len % stride != 0)) as usize
            }
        });
        dims.push(DimSlice {
            begin: b,
            stride,
            len,
        });
    }
    // Step 4: the final shape drops shrunk dims and adds new axes.
    let final_shape = gather
        .iter()
        .flatten()
        .map(|g| match *g {
            FinalDim::Dense(d) => dims[d].len,
            FinalDim::NewAxis => Some(1),
        })
        .collect();
    Ok(Plan { dims, final_shape })
}

fn infer_strided_slice(ctx: &InferCtx<'_>) -> InferResult {
    ctx.expect_inputs(4)?;
    ctx.check_t_attr(ctx.dtype(0))?;
    let it = check_index(ctx, 1, "Index")?;
    for (i, name) in [(1, "begin"), (2, "end"), (3, "strides")] {
        if check_index(ctx, i, "Index")? != it {
            return Err(format!(
                "begin, end and strides must have one dtype; {name} is {}",
                ctx.dtype(i)
            ));
        }
        check_rank(ctx, i, 1, name)?;
    }
    let lens = PartialShape::with_rank(1)
        .merge(ctx.shape(1))
        .and_then(|s| s.merge(ctx.shape(2)))
        .and_then(|s| s.merge(ctx.shape(3)))
        .map_err(|e| format!("begin, end and strides must have one length: {e}"))?;
    let m = StridedSliceMasks::from_attrs(ctx.attrs())?;
    let out = match (ctx.shape(0).dims(), ctx.constant_ints(3), lens.dim(0)) {
        (Some(dims), Some(strides), Some(_)) => {
            let (b, e) = (ctx.constant_ints(1), ctx.constant_ints(2));
            PartialShape::new(plan(dims, b.as_deref(), e.as_deref(), &strides, m)?.final_shape)
        }
        _ => PartialShape::unknown(),
    };
    Ok(vec![TensorSpec::new(ctx.dtype(0), out)])
}

/// Applies a plan made for `x`'s concrete shape.
fn strided_slice<T: Element>(x: Tensor, plan: Plan) -> Result<Tensor> {
    let out_shape = concrete_dims(plan.final_shape)?;
    let lens = concrete_dims(plan.dims.iter().map(|s| s.len).collect())?;
    let is_identity = plan
        .dims
        .iter()
        .zip(x.shape())
        .all(|(s, &d)| s.begin == 0 && s.stride == 1 && s.len == Some(d));
    if is_identity {
        return x.reshape(&out_shape);
    }
    let mut data = Vec::new();
    if !lens.contains(&0) {
        let st = strides(x.shape());
        let offset: i64 = plan
            .dims
            .iter()
            .zip(&st)
            .map(|(s, &k)| s.begin * k as i64)
            .sum();
        // A dim of length 1 never steps (its stride may be huge: `x[::2**62]`); longer
        // ones step at most across the dim, so the product fits.
        let steps: Vec<isize> = plan
            .dims
            .iter()
            .zip(&st)
            .map(|(s, &k)| match s.len {
                Some(len) if len > 1 => (s.stride * k as i64) as isize,
                _ => 0,
            })
            .collect();
        data = strided_gather(x.as_slice::<T>()?, offset as isize, &lens, &steps);
    }
    Tensor::new(&out_shape, data)
}

fn strided_slice_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let m = StridedSliceMasks::from_attrs(ctx.attrs())?;
    with_dtype!(any, ctx.input_dtype(0), T => kernel_fn(move |k| {
        let begin = read_ints(k.input(1)?, "begin", 1)?;
        let end = read_ints(k.input(2)?, "end", 1)?;
        let strides = read_ints(k.input(3)?, "strides", 1)?;
        let x = k.take_input(0)?;
        let p = plan(&known_dims(x.shape()), Some(&begin), Some(&end), &strides, m)
            .map_err(|e| Error::invalid(format!(
                "{e} (begin {}, end {}, strides {})",
                fmt_ints(&begin),
                fmt_ints(&end),
                fmt_ints(&strides)
            )))?;
        k.push_output(strided_slice::<T>(x, p)?);
        Ok(())
    }))
}

pub(super) fn register(r: &mut Registry) {
    r.add(
        Op::new("StridedSlice", infer_strided_slice, strided_slice_kernel).defaults(|| {
            vec![
                ("begin_mask", 0i64.into()),
                ("end_mask", 0i64.into()),
                ("ellipsis_mask", 0i64.into()),
                ("new_axis_mask", 0i64.into()),
                ("shrink_axis_mask", 0i64.into()),
            ]
        }),
    );
}

impl Graph {
    /// NumPy-style slicing `x[begin:end:strides]` with TensorFlow's masks
    /// (`tf.strided_slice`): `x[1:, ::-1, tf.newaxis, ..., 0]` is begin `[1, 0, 0, 0, 0]`,
    /// end `[0, 0, 0, 0, 1]`, strides `[1, -1, 1, 1, 1]` with masks begin `0b00010`, end
    /// `0b00011`, new_axis `0b00100`, ellipsis `0b01000` and shrink_axis `0b10000`.
    pub fn strided_slice(
        &mut self,
        x: Output,
        begin: &[i64],
        end: &[i64],
        strides: &[i64],
        masks: StridedSliceMasks,
    ) -> Result<Output> {
        let all: Vec<i64> = begin.iter().chain(end).chain(strides).copied().collect();
        let wide = all.iter().any(|&v| i32::try_from(v).is_err());
        let make = |g: &mut Graph, v: &[i64]| {
            if wide {
                g.constant(Tensor::vector(v.to_vec()))
            } else {
                index_const(g, v)
            }
        };
        let (b, e, s) = (make(self, begin)?, make(self, end)?, make(self, strides)?);
        let (t, ti) = (self.dtype(x), self.dtype(b));
        self.op("StridedSlice")
            .input(x)
            .input(b)
            .input(e)
            .input(s)
            .attr("T", t)
            .attr("Index", ti)
            .attr("begin_mask", masks.begin)
            .attr("end_mask", masks.end)
            .attr("ellipsis_mask", masks.ellipsis)
            .attr("new_axis_mask", masks.new_axis)
            .attr("shrink_axis_mask", masks.shrink_axis)
            .build_output()
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{iota, run, run_err, run_fed, t};
    use super::StridedSliceMasks;
    use crate::{DType, Graph, PartialShape, Tensor};

    /// `[begin, end, ellipsis, new_axis, shrink_axis]` masks.
    fn masks(m: [i64; 5]) -> StridedSliceMasks {
        StridedSliceMasks {
            begin: m[0],
            end: m[1],
            ellipsis: m[2],
            new_axis: m[3],
            shrink_axis: m[4],
        }
    }

    type Case = (
        &'static str,
        &'static [i64],
        &'static [i64],
        &'static [i64],
        [i64; 5],
        &'static [usize],
        &'static [i32],
    );

    /// Slices of `x = np.arange(24).reshape(2, 3, 4)`: begin/end/strides/masks as
    /// TensorFlow's `Tensor.__getitem__` builds them for the expression, values from NumPy
    /// (`tf.newaxis` = `None`).
    const CASES: &[Case] = &[
        (
            "x[1:, ::-1, tf.newaxis, ..., 0]",
            &[1, 0, 0, 0, 0],
            &[0, 0, 0, 0, 1],
            &[1, -1, 1, 1, 1],
            [2, 3, 8, 4, 16],
            &[1, 3, 1],
            &[20, 16, 12],
        ),
        (
            "x[..., 1]",
            &[0, 1],
            &[0, 2],
            &[1, 1],
            [0, 0, 1, 0, 2],
            &[2, 3],
            &[1, 5, 9, 13, 17, 21],
        ),
        (
            "x[-1]",
            &[-1],
            &[0],
            &[1],
            [0, 0, 0, 0, 1],
            &[3, 4],
            &[12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23],
        ),
        (
            "x[:, -2:, ::2]",
            &[0, -2, 0],
            &[0, 0, 0],
            &[1, 1, 2],
            [5, 7, 0, 0, 0],
            &[2, 2, 2],
            &[4, 6, 8, 10, 16, 18, 20, 22],
        ),
        (
            "x[::-1, 1:-1:1, 3:0:-2]",
            &[0, 1, 3],
            &[0, -1, 0],
            &[-1, 1, -2],
            [1, 1, 0, 0, 0],
            &[2, 1, 2],
            &[19, 17, 7, 5],
        ),
        (
            "x[tf.newaxis, 0, ..., tf.newaxis]",
            &[0, 0, 0, 0],
            &[0, 1, 0, 0],
            &[1, 1, 1, 1],
            [0, 0, 4, 9, 2],
            &[1, 3, 4, 1],
            &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
        ),
        (
            "x[5:, 10:-10]",
            &[5, 10],
            &[0, -10],
            &[1, 1],
            [0, 1, 0, 0, 0],
            &[0, 0, 4],
            &[],
        ),
        (
            "x[:, :, -100:100]",
            &[0, 0, -100],
            &[0, 0, 100],
            &[1, 1, 1],
            [3, 3, 0, 0, 0],
            &[2, 3, 4],
            &[
                0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
                23,
            ],
        ),
        (
            "x[0, 1, 2]",
            &[0, 1, 2],
            &[1, 2, 3],
            &[1, 1, 1],
            [0, 0, 0, 0, 7],
            &[],
            &[6],
        ),
        (
            "x[..., ::-3]",
            &[0, 0],
            &[0, 0],
            &[1, -3],
            [2, 2, 1, 0, 0],
            &[2, 3, 2],
            &[3, 0, 7, 4, 11, 8, 15, 12, 19, 16, 23, 20],
        ),
        ("x[1:0]", &[1], &[0], &[1], [0, 0, 0, 0, 0], &[0, 3, 4], &[]),
        (
            "x[:, tf.newaxis, ..., tf.newaxis, 1]",
            &[0, 0, 0, 0, 1],
            &[0, 0, 0, 0, 2],
            &[1, 1, 1, 1, 1],
            [1, 1, 4, 10, 16],
            &[2, 1, 3, 1],
            &[1, 5, 9, 13, 17, 21],
        ),
    ];

    #[test]
    fn matches_numpy_slicing() {
        let mut g = Graph::new();
        let x = g.constant(iota(&[2, 3, 4])).unwrap();
        let p = g
            .placeholder(DType::Int32, PartialShape::unknown(), "p")
            .unwrap();
        let mut fetches = Vec::new();
        for &(expr, b, e, s, m, shape, _) in CASES {
            let y = g.strided_slice(x, b, e, s, masks(m)).unwrap();
            assert_eq!(g.shape(y).to_known().as_deref(), Some(shape), "{expr}");
            // the same slice of a tensor whose shape is only known when it is fed
            let z = g.strided_slice(p, b, e, s, masks(m)).unwrap();
            assert_eq!(g.shape(z).rank(), None, "{expr}");
            fetches.extend([y, z]);
        }
        let out = run_fed(&g, &[(p, iota(&[2, 3, 4]))], &fetches);
        for (i, &(expr, _, _, _, _, shape, vals)) in CASES.iter().enumerate() {
            let want = t(shape, vals);
            assert_eq!(out[2 * i], want, "{expr}");
            assert_eq!(out[2 * i + 1], want, "{expr} (fed)");
        }
    }

    #[test]
    fn partial_shapes_and_runtime_begin() {
        let mut g = Graph::new();
        let p = g.placeholder(DType::Float32, [None, Some(5)], "p").unwrap();
        // p[:, 1:4], p[0], p[..., ::-2]
        let a = g
            .strided_slice(p, &[0, 1], &[0, 4], &[1, 1], masks([1, 1, 0, 0, 0]))
            .unwrap();
        let b = g
            .strided_slice(p, &[0], &[1], &[1], masks([0, 0, 0, 0, 1]))
            .unwrap();
        let c = g
            .strided_slice(p, &[0, 0], &[0, 0], &[1, -2], masks([2, 2, 1, 0, 0]))
            .unwrap();
        assert_eq!(g.shape(a).to_string(), "[?,3]");
        assert_eq!(g.shape(b).to_string(), "[5]");
        assert_eq!(g.shape(c).to_string(), "[?,3]");
        // begin unknown while building: only fully masked or shrunk dims are known
        let begin = g.placeholder(DType::Int32, [2], "begin").unwrap();
        let end = g.constant(Tensor::from([0i32, 0])).unwrap();
        let strides = g.constant(Tensor::from([1i32, 1])).unwrap();
        let d = g
            .op("StridedSlice")
            .input(p)
            .input(begin)
            .input(end)
            .input(strides)
            .attr("Index", DType::Int32)
            .attr("begin_mask", 0i64)
            .attr("end_mask", 3i64)
            .attr("shrink_axis_mask", 1i64)
            .build_output()
            .unwrap();
        assert_eq!(g.shape(d).to_string(), "[?]");
        let v = Tensor::new(&[2, 5], (0..10).map(|i| i as f32).collect()).unwrap();
        let out = run_fed(
            &g,
            &[(p, v.clone()), (begin, Tensor::from([1i32, 2]))],
            &[a, b, c, d],
        );
        // np.arange(10.).reshape(2,5): [:, 1:4], [0], [..., ::-2], [1, 2:]
        let f = |s: &[usize], v: &[f32]| Tensor::new(s, v.to_vec()).unwrap();
        assert_eq!(out[0], f(&[2, 3], &[1., 2., 3., 6., 7., 8.]));
        assert_eq!(out[1], f(&[5], &[0., 1., 2., 3., 4.]));
        assert_eq!(out[2], f(&[2, 3], &[4., 2., 0., 9., 7., 5.]));
        assert_eq!(out[3], f(&[3], &[7., 8., 9.]));
        let msg = run_err(&g, &[(p, v), (begin, Tensor::from([2i32, 0]))], d);
        assert!(
            msg.contains("slice index 2 of dimension 0 out of bounds"),
            "{msg}"
        );
    }

    #[test]
    fn other_dtypes_and_identity() {
        let mut g = Graph::new();
        let b = g
            .constant(Tensor::from([[true, false, true], [false, false, true]]))
            .unwrap();
        let u = g.constant(Tensor::from([1u8, 2, 3, 4, 5])).unwrap();
        let f = g.constant(Tensor::from([1.5f64, 2.5])).unwrap();
        // b[:, ::-1], u[-2:], u[::-2], f[1], b[:] (identity)
        let bs = g
            .strided_slice(b, &[0, 0], &[0, 0], &[1, -1], masks([3, 3, 0, 0, 0]))
            .unwrap();
        let us = g
            .strided_slice(u, &[-2], &[0], &[1], masks([0, 1, 0, 0, 0]))
            .unwrap();
        let ur = g
            .strided_slice(u, &[0], &[0], &[-2], masks([1, 1, 0, 0, 0]))
            .unwrap();
        let fs = g
            .strided_slice(f, &[1], &[2], &[1], masks([0, 0, 0, 0, 1]))
            .unwrap();
        let all = g
            .strided_slice(b, &[0], &[0], &[1], masks([1, 1, 0, 0, 0]))
            .unwrap();
        // b[::2**62, ::-2**62]: one element per dim
        let huge = 1i64 << 62;
        let far = g
            .strided_slice(b, &[0, 0], &[0, 0], &[huge, -huge], masks([3, 3, 0, 0, 0]))
            .unwrap();
        assert_eq!(g.shape(far).to_known(), Some(vec![1, 1]));
        let out = run(&g, &[bs, us, ur, fs, all, b, far]);
        assert_eq!(
            out[0],
            Tensor::from([[true, false, true], [true, false, false]])
        );
        assert_eq!(out[1], Tensor::from([4u8, 5]));
        assert_eq!(out[2], Tensor::from([5u8, 3, 1]));
        assert_eq!(out[3], Tensor::scalar(2.5f64));
        assert!(out[4].shares_buffer_with(&out[5]));
        // np.array([[1,0,1],[0,0,1]], bool)[::2**62, ::-2**62]
        assert_eq!(out[6], Tensor::from([[true]]));
    }

    /// CPython's `slice(start, stop, step).indices(n)` walk, the reference for 1-D slices.
    fn python_slice(n: i64, start: Option<i64>, stop: Option<i64>, step: i64) -> Vec<i64> {
        let (lower, upper) = if step < 0 { (-1, n - 1) } else { (0, n) };
        let fix = |v: Option<i64>, default: i64| match v {
            None => default,
            Some(v) if v < 0 => (v + n).max(lower),
            Some(v) => v.min(upper),
        };
        let start = fix(start, if step < 0 { upper } else { lower });
        let stop = fix(stop, if step < 0 { lower } else { upper });
        let mut out = Vec::new();
        let mut i = start;
        while (step > 0 && i < stop) || (step < 0 && i > stop) {
            out.push(i);
            i += step;
        }
        out
    }

    #[test]
    fn every_one_dimensional_slice_matches_python() {
        let n = 5usize;
        let mut g = Graph::new();
        let x = g
            .constant(Tensor::vector((0..n as u8).collect::<Vec<u8>>()))
            .unwrap();
        let bounds: Vec<Option<i64>> = std::iter::once(None).chain((-7..=7).map(Some)).collect();
        let mut cases = Vec::new();
        for &b in &bounds {
            for &e in &bounds {
                for step in [-3i64, -2, -1, 1, 2, 3] {
                    let m = masks([i64::from(b.is_none()), i64::from(e.is_none()), 0, 0, 0]);
                    let y = g
                        .strided_slice(x, &[b.unwrap_or(0)], &[e.unwrap_or(0)], &[step], m)
                        .unwrap();
                    let want = python_slice(n as i64, b, e, step);
                    assert_eq!(
                        g.shape(y).to_known(),
                        Some(vec![want.len()]),
                        "{b:?}:{e:?}:{step}"
                    );
                    cases.push((y, want));
                }
            }
        }
        let fetches: Vec<_> = cases.iter().map(|c| c.0).collect();
        let out = run(&g, &fetches);
        for (t, (_, want)) in out.iter().zip(&cases) {
            let want: Vec<u8> = want.iter().map(|&i| i as u8).collect();
            assert_eq!(t.as_slice::<u8>().unwrap(), &want[..]);
        }
    }

    #[test]
    fn build_errors() {
        let mut g = Graph::new();
        let x = g.constant(iota(&[2, 3])).unwrap();
        let none = masks([0; 5]);
        let msg = g
            .strided_slice(x, &[5], &[6], &[1], masks([0, 0, 0, 0, 1]))
            .unwrap_err();
        assert!(
            msg.to_string()
                .contains("slice index 5 of dimension 0 out of bounds"),
            "{msg}"
        );
        let msg = g
            .strided_slice(x, &[0, 0], &[1, 1], &[1, 1], masks([0, 0, 3, 0, 0]))
            .unwrap_err();
        assert!(msg.to_string().contains("Multiple ellipses"), "{msg}");
        let msg = g
            .strided_slice(x, &[0, 0, 0], &[1, 1, 1], &[1, 1, 1], none)
            .unwrap_err();
        assert!(
            msg.to_string()
                .contains("Index out of range using input dim 2"),
            "{msg}"
        );
        let msg = g.strided_slice(x, &[0], &[1], &[0], none).unwrap_err();
        assert!(
            msg.to_string().contains("strides[0] must be non-zero"),
            "{msg}"
        );
        let msg = g
            .strided_slice(x, &[0, 0], &[1], &[1, 1], none)
            .unwrap_err();
        assert!(msg.to_string().contains("one length"), "{msg}");
        let msg = g
            .strided_slice(x, &[1], &[0], &[-1], masks([0, 0, 0, 0, 1]))
            .unwrap_err();
        assert!(msg.to_string().contains("only stride 1"), "{msg}");
    }
}

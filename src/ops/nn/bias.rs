//! BiasAdd (adds a per-channel bias) and its gradient BiasAddGrad (sums over every
//! axis but the channel axis). The channel axis is the last one for NHWC and axis 1 for
//! NCHW.

use super::op_with_attrs;
use super::window::DataFormat;
use crate::device::gemm::zeroed;
use crate::device::parallel::{split_range, sum_of_parts, MIN_LOOP_WORK};
use crate::graph::{Graph, Output, TensorSpec};
use crate::ops::array::StridedSliceMasks;
use crate::ops::math::{check_family, Family};
use crate::ops::{kernel_fn, GradCtx, InferCtx, KernelBuildCtx, KernelCtx};
use crate::ops::{InferResult, KernelResult};
use crate::tensor::{DType, Number, PartialShape, Tensor};
use crate::{with_dtype, Error, Result};

/// The channel axis of a tensor of rank `rank` (at least 2).
fn channel_axis(format: DataFormat, rank: usize) -> usize {
    match format {
        DataFormat::Nhwc => rank - 1,
        DataFormat::Nchw => 1,
    }
}

/// Errors unless the rank (when known) is at least 2.
fn check_rank(shape: &PartialShape, what: &str) -> std::result::Result<(), String> {
    match shape.rank() {
        Some(r) if r < 2 => Err(format!(
            "{what} must be at least 2-D, but has shape {shape} (rank {r})"
        )),
        _ => Ok(()),
    }
}

fn infer_bias_add(ctx: &InferCtx<'_>) -> InferResult {
    ctx.expect_inputs(2)?;
    let dt = ctx.same_dtype()?;
    check_family(ctx, 0, Family::Number)?;
    ctx.check_t_attr(dt)?;
    let format = DataFormat::from_attrs(ctx.attrs())?;
    let (value, bias) = (ctx.shape(0), ctx.shape(1));
    check_rank(value, "value")?;
    if let Some(r) = bias.rank() {
        if r != 1 {
            return Err(format!("bias must be 1-D, but has shape {bias}"));
        }
    }
    let Some(dims) = value.dims() else {
        return Ok(vec![ctx.input(0).clone()]);
    };
    let mut dims = dims.to_vec();
    let axis = channel_axis(format, dims.len());
    dims[axis] = match (dims[axis], bias.dim(0)) {
        (Some(c), Some(b)) if c != b => {
            return Err(format!(
                "Must provide as many biases as the channel dimension of the input tensor: bias shape {bias} vs. value shape {value}"
            ))
        }
        (c, b) => c.or(b),
    };
    Ok(vec![TensorSpec::new(dt, PartialShape::new(dims))])
}

/// (outer, channels, inner) sizes around the channel axis of a runtime shape.
fn split_at_channel(shape: &[usize], format: DataFormat) -> Result<(usize, usize, usize)> {
    if shape.len() < 2 {
        return Err(Error::invalid(format!(
            "Input tensor must be at least 2D: {shape:?}"
        )));
    }
    let axis = channel_axis(format, shape.len());
    Ok((
        shape[..axis].iter().product(),
        shape[axis],
        shape[axis + 1..].iter().product(),
    ))
}

fn bias_add_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let format = DataFormat::from_attrs(ctx.attrs())?;
    with_dtype!(number, ctx.input_dtype(0), T => kernel_fn(move |k: &mut KernelCtx<'_>| {
        let value = k.take_input(0)?;
        let bias = k.input(1)?;
        let shape = value.shape().to_vec();
        let (_, c, inner) = split_at_channel(&shape, format)?;
        if bias.shape() != [c] {
            return Err(Error::invalid(format!(
                "Must provide as many biases as the channel dimension of the input tensor: {:?} vs. {shape:?}",
                bias.shape()
            )));
        }
        let b = bias.as_slice::<T>()?;
        let mut v = value.into_vec::<T>()?;
        if inner == 1 {
            // Channels last: one bias per element of each row (a loop that vectorizes).
            for row in v.chunks_exact_mut(c.max(1)) {
                row.iter_mut().zip(b).for_each(|(x, &bv)| *x = x.add(bv));
            }
        } else if c > 0 && inner > 0 {
            for block in v.chunks_exact_mut(c * inner) {
                for (plane, &bv) in block.chunks_exact_mut(inner).zip(b) {
                    plane.iter_mut().for_each(|x| *x = x.add(bv));
                }
            }
        }
        k.push_output(Tensor::from_parts(shape, v));
        Ok(())
    }))
}

fn infer_bias_add_grad(ctx: &InferCtx<'_>) -> InferResult {
    ctx.expect_inputs(1)?;
    let dt = check_family(ctx, 0, Family::Number)?;
    ctx.check_t_attr(dt)?;
    let format = DataFormat::from_attrs(ctx.attrs())?;
    check_rank(ctx.shape(0), "out_backprop")?;
    let c = ctx
        .shape(0)
        .rank()
        .and_then(|r| ctx.shape(0).dim(channel_axis(format, r)));
    Ok(vec![TensorSpec::new(dt, PartialShape::new(vec![c]))])
}

fn bias_add_grad_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let format = DataFormat::from_attrs(ctx.attrs())?;
    with_dtype!(number, ctx.input_dtype(0), T => kernel_fn(move |k: &mut KernelCtx<'_>| {
        let dy = k.input(0)?;
        let (outer, c, inner) = split_at_channel(dy.shape(), format)?;
        let mut out = zeroed::<T>(c);
        if inner == 1 {
            // Channels last: each thread adds its rows into sums of its own (a loop that
            // vectorizes), then the sums are added.
            let rows = dy.as_slice::<T>()?;
            let threads = k.threads_for_work(rows.len(), MIN_LOOP_WORK);
            out = sum_of_parts(c, threads, threads, |part, acc: &mut [T]| {
                let mine = split_range(outer, part, threads);
                let mine = &rows[mine.start * c..mine.end * c];
                for row in mine.chunks_exact(c.max(1)) {
                    acc.iter_mut().zip(row).for_each(|(o, &x)| *o = o.add(x));
                }
            });
        } else if c > 0 && inner > 0 {
            for block in dy.as_slice::<T>()?.chunks_exact(c * inner) {
                for (o, plane) in out.iter_mut().zip(block.chunks_exact(inner)) {
                    *o = plane.iter().fold(*o, |s, &x| s.add(x));
                }
            }
        }
        k.push_output(Tensor::from_parts(vec![c], out));
        Ok(())
    }))
}

/// TensorFlow's `_BiasAddGrad`: the value gets `grad`, the bias `BiasAddGrad(grad)`.
fn bias_add_grad_fn(ctx: &mut GradCtx<'_>) -> Result<Vec<Option<Output>>> {
    let (attrs, g) = (ctx.attrs(), ctx.grad(0));
    let db = op_with_attrs(
        ctx.graph,
        "BiasAddGrad",
        &[g],
        &attrs,
        &["T", "data_format"],
    )?;
    Ok(vec![Some(g), Some(db)])
}

/// TensorFlow's `_BiasAddGradGrad`: the bias-shaped gradient reshaped to broadcast along
/// the channel axis and tiled to `out_backprop`'s shape.
fn bias_add_grad_grad(ctx: &mut GradCtx<'_>) -> Result<Vec<Option<Output>>> {
    let format = DataFormat::from_attrs(&ctx.attrs()).map_err(Error::invalid)?;
    let (x, grad) = (ctx.input(0), ctx.grad(0));
    let g = &mut *ctx.graph;
    let shape = g.shape_of(x)?;
    let bias_shape = g.shape_of(grad)?;
    let slice = |g: &mut Graph, begin: i64, end: Option<i64>| {
        let masks = StridedSliceMasks {
            end: i64::from(end.is_none()),
            ..Default::default()
        };
        g.strided_slice(shape, &[begin], &[end.unwrap_or(0)], &[1], masks)
    };
    let one = g.constant(Tensor::vector(vec![1i32]))?;
    let (expanded_shape, tile_mults) = match format {
        DataFormat::Nchw => {
            let (head, tail) = (slice(g, 0, Some(1))?, slice(g, 2, None)?);
            let (oh, ot) = (g.ones_like(head)?, g.ones_like(tail)?);
            (
                g.concat(&[oh, bias_shape, ot], 0)?,
                g.concat(&[head, one, tail], 0)?,
            )
        }
        DataFormat::Nhwc => {
            let head = slice(g, 0, Some(-1))?;
            let oh = g.ones_like(head)?;
            (g.concat(&[oh, bias_shape], 0)?, g.concat(&[head, one], 0)?)
        }
    };
    let expanded = g.reshape_t(grad, expanded_shape)?;
    let t = g.dtype(expanded);
    let tiled = g
        .op("Tile")
        .input(expanded)
        .input(tile_mults)
        .attr("T", t)
        .attr("Tmultiples", DType::Int32)
        .build_output()?;
    Ok(vec![Some(tiled)])
}

pub(super) fn register(r: &mut crate::ops::Registry) {
    use crate::ops::Op;
    fn defaults() -> Vec<(&'static str, crate::graph::AttrValue)> {
        vec![("data_format", "NHWC".into())]
    }
    r.add(
        Op::new("BiasAdd", infer_bias_add, bias_add_kernel)
            .grad(bias_add_grad_fn)
            .defaults(defaults),
    );
    r.add(
        Op::new("BiasAddGrad", infer_bias_add_grad, bias_add_grad_kernel)
            .grad(bias_add_grad_grad)
            .defaults(defaults),
    );
}

impl Graph {
    /// Adds a 1-D `bias` along the last axis of `value` (`tf.nn.bias_add`, NHWC).
    pub fn bias_add(&mut self, value: Output, bias: Output) -> Result<Output> {
        let t = self.dtype(value);
        self.op("BiasAdd")
            .input(value)
            .input(bias)
            .attr("T", t)
            .attr("data_format", "NHWC")
            .build_output()
    }

    /// Gradient of BiasAdd with respect to the bias (op BiasAddGrad, NHWC): sums
    /// `out_backprop` over every axis but the last.
    pub fn bias_add_grad(&mut self, out_backprop: Output) -> Result<Output> {
        let t = self.dtype(out_backprop);
        self.op("BiasAddGrad")
            .input(out_backprop)
            .attr("T", t)
            .attr("data_format", "NHWC")
            .build_output()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::DType;
    use crate::test_util::{f64s, run};

    #[test]
    fn bias_add_on_the_channel_axis() {
        let mut g = Graph::new();
        let v = g.constant(Tensor::from([[1i32, 2, 3], [4, 5, 6]])).unwrap();
        let b = g.constant(Tensor::from([10i32, 20, 30])).unwrap();
        let y = g.bias_add(v, b).unwrap();
        let gb = g.bias_add_grad(v).unwrap();
        // NCHW: tf.raw_ops.BiasAdd(value=tf.reshape(tf.range(24.), [2,3,2,2]),
        //                          bias=[10.,20.,30.], data_format="NCHW")
        let v4 = g
            .constant(Tensor::new(&[2, 3, 2, 2], (0..24).map(|x| x as f32).collect()).unwrap())
            .unwrap();
        let b4 = g.constant(Tensor::from([10f32, 20., 30.])).unwrap();
        let nchw = g
            .op("BiasAdd")
            .input(v4)
            .input(b4)
            .attr("T", DType::Float32)
            .attr("data_format", "NCHW")
            .build_output()
            .unwrap();
        // tf.raw_ops.BiasAddGrad(out_backprop=tf.reshape(tf.range(24.), [2,3,4]),
        //                        data_format="NCHW") = [60, 92, 124]
        let v3 = g
            .constant(Tensor::new(&[2, 3, 4], (0..24).map(|x| x as f64).collect()).unwrap())
            .unwrap();
        let gn = g
            .op("BiasAddGrad")
            .input(v3)
            .attr("T", DType::Float64)
            .attr("data_format", "NCHW")
            .build_output()
            .unwrap();
        assert_eq!(g.shape(gn), &crate::PartialShape::known(&[3]));
        let out = run(&g, &[y, gb, nchw, gn]);
        assert_eq!(out[0], Tensor::from([[11i32, 22, 33], [14, 25, 36]]));
        assert_eq!(out[1], Tensor::from([5i32, 7, 9]));
        let want: Vec<f64> = vec![
            10., 11., 12., 13., 24., 25., 26., 27., 38., 39., 40., 41., 22., 23., 24., 25., 36.,
            37., 38., 39., 50., 51., 52., 53.,
        ];
        assert_eq!(f64s(&out[2]), want);
        assert_eq!(f64s(&out[3]), vec![60., 92., 124.]);
    }

    #[test]
    fn bias_size_and_rank_are_checked_when_building() {
        let mut g = Graph::new();
        let v = g.placeholder(DType::Float32, [2, 3], "v").unwrap();
        let b = g.placeholder(DType::Float32, [4], "b").unwrap();
        let msg = g.bias_add(v, b).unwrap_err().to_string();
        assert!(
            msg.contains("as many biases") && msg.contains("[4]") && msg.contains("[2,3]"),
            "{msg}"
        );
        let r1 = g.placeholder(DType::Float32, [3], "r1").unwrap();
        let msg = g.bias_add(r1, b).unwrap_err().to_string();
        assert!(msg.contains("at least 2-D"), "{msg}");
        let bd = g.placeholder(DType::Float64, [3], "bd").unwrap();
        assert!(g.bias_add(v, bd).unwrap_err().to_string().contains("Cast"));
        // An unknown channel dim is taken from the bias.
        let u = g.placeholder(DType::Float32, [None, None], "u").unwrap();
        let y = g.bias_add(u, b).unwrap();
        assert_eq!(g.shape(y), &crate::PartialShape::new(vec![None, Some(4)]));
        let e = g.placeholder(DType::Float32, [0, 4], "e").unwrap();
        let ge = g.bias_add_grad(e).unwrap();
        let out = crate::Session::new(&g)
            .run(&[(e, Tensor::zeros(DType::Float32, &[0, 4]))], &[ge], &[])
            .unwrap();
        assert_eq!(out[0], Tensor::from([0f32; 4]));
    }
}

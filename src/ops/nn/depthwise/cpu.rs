//! DepthwiseConv2dNative's CPU kernels on NHWC data: the forward pass and its two
//! backprops (DepthwiseConv2dNativeBackpropInput / BackpropFilter), each a walk over the
//! same (output pixel, filter tap, input pixel) triples.

use crate::ops::nn::conv2d::cpu::{check_dy, nhwc_window, rank4, runtime_sizes};
use crate::ops::nn::window::Geometry;
use crate::ops::{kernel_fn, KernelBuildCtx, KernelResult};
use crate::tensor::{Element, Number, Tensor};
use crate::{with_dtype, Error, Result};

/// Calls `visit(y, x, f)` for every output pixel and filter tap that reads an input pixel:
/// the offsets of the output pixel's first channel, the input pixel's first channel and
/// the tap's first entry.
fn for_each_tap(geo: &Geometry, mut visit: impl FnMut(usize, usize, usize)) {
    for b in 0..geo.batch {
        for oh in 0..geo.out_h {
            for ow in 0..geo.out_w {
                let y = ((b * geo.out_h + oh) * geo.out_w + ow) * geo.out_c;
                for i in 0..geo.k_h {
                    let Some(r) = geo.in_row(oh, i) else { continue };
                    for j in 0..geo.k_w {
                        let Some(col) = geo.in_col(ow, j) else {
                            continue;
                        };
                        let x = ((b * geo.in_h + r) * geo.in_w + col) * geo.in_c;
                        visit(y, x, (i * geo.k_w + j) * geo.out_c);
                    }
                }
            }
        }
    }
}

/// `y[.., c·m + q] += x[.., c] · f[.., c, q]`.
fn forward<T: Number>(x: &[T], f: &[T], geo: &Geometry, m: usize) -> Vec<T> {
    let mut y = vec![T::ZERO; geo.batch * geo.out_h * geo.out_w * geo.out_c];
    for_each_tap(geo, |yo, xo, fo| {
        for ch in 0..geo.in_c {
            let v = x[xo + ch];
            for o in ch * m..(ch + 1) * m {
                y[yo + o] = y[yo + o].add(v.mul(f[fo + o]));
            }
        }
    });
    y
}

/// `dx[.., c] += dy[.., c·m + q] · f[.., c, q]`.
fn backprop_input<T: Number>(dy: &[T], f: &[T], geo: &Geometry, m: usize) -> Vec<T> {
    let mut dx = vec![T::ZERO; geo.batch * geo.in_image()];
    for_each_tap(geo, |yo, xo, fo| {
        for ch in 0..geo.in_c {
            let mut acc = dx[xo + ch];
            for o in ch * m..(ch + 1) * m {
                acc = acc.add(dy[yo + o].mul(f[fo + o]));
            }
            dx[xo + ch] = acc;
        }
    });
    dx
}

/// `df[.., c, q] += x[.., c] · dy[.., c·m + q]`.
fn backprop_filter<T: Number>(x: &[T], dy: &[T], geo: &Geometry, m: usize) -> Vec<T> {
    let mut df = vec![T::ZERO; geo.k_h * geo.k_w * geo.out_c];
    for_each_tap(geo, |yo, xo, fo| {
        for ch in 0..geo.in_c {
            let v = x[xo + ch];
            for o in ch * m..(ch + 1) * m {
                df[fo + o] = df[fo + o].add(v.mul(dy[yo + o]));
            }
        }
    });
    df
}

/// The geometry of an NHWC `input` shape convolved depthwise with a `[k_h, k_w, in_c,
/// multiplier]` `filter` shape, and the multiplier.
fn geometry<T: Element>(
    window: &crate::ops::nn::window::Window2d,
    input: &[usize],
    filter: &[usize],
) -> Result<(Geometry, usize)> {
    let [n, h, w, c] = rank4(input, "input")?;
    let [kh, kw, fc, m] = rank4(filter, "filter")?;
    if fc != c {
        return Err(Error::invalid(format!(
            "input depth {c} must equal the filter's in_channels {fc} (input {input:?}, \
             filter {filter:?})"
        )));
    }
    let out_c = c
        .checked_mul(m)
        .ok_or_else(|| Error::invalid("too many channels"))?;
    let geo = Geometry::new(window, [n, h, w, c], [kh, kw], out_c).map_err(Error::invalid)?;
    geo.check_memory(T::DTYPE)?;
    Ok((geo, m))
}

/// Which of the three ops a kernel runs.
#[derive(Clone, Copy)]
enum Pass {
    Forward,
    BackpropInput,
    BackpropFilter,
}

/// The kernel of `pass`: errors name the node.
fn kernel(ctx: &KernelBuildCtx<'_>, pass: Pass) -> KernelResult {
    let window = nhwc_window(ctx.node)?;
    let name = format!("{} '{}'", ctx.node.op_type(), ctx.node.name());
    let dtype_input = match pass {
        Pass::BackpropInput => 1,
        _ => 0,
    };
    with_dtype!(float, ctx.input_dtype(dtype_input), T => kernel_fn(move |k| {
        let named = |e: Error| Error::invalid(format!("{name}: {e}"));
        let (a, b) = (k.input(0)?, k.input(1)?);
        let out = match pass {
            Pass::Forward => {
                let (geo, m) = geometry::<T>(&window, a.shape(), b.shape()).map_err(named)?;
                let y = forward(a.as_slice::<T>()?, b.as_slice::<T>()?, &geo, m);
                Tensor::new(&geo.out_shape(), y)?
            }
            Pass::BackpropInput => {
                let sizes = runtime_sizes(a, "input_sizes").map_err(named)?;
                let (geo, m) = geometry::<T>(&window, &sizes, b.shape()).map_err(named)?;
                let dy = k.input(2)?;
                check_dy(&geo, dy).map_err(named)?;
                let dx = backprop_input(dy.as_slice::<T>()?, b.as_slice::<T>()?, &geo, m);
                Tensor::new(&sizes, dx)?
            }
            Pass::BackpropFilter => {
                let sizes = runtime_sizes(b, "filter_sizes").map_err(named)?;
                let (geo, m) = geometry::<T>(&window, a.shape(), &sizes).map_err(named)?;
                let dy = k.input(2)?;
                check_dy(&geo, dy).map_err(named)?;
                let df = backprop_filter(a.as_slice::<T>()?, dy.as_slice::<T>()?, &geo, m);
                Tensor::new(&sizes, df)?
            }
        };
        k.push_output(out);
        Ok(())
    }))
}

/// DepthwiseConv2dNative's kernel.
pub(super) fn forward_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    kernel(ctx, Pass::Forward)
}

/// DepthwiseConv2dNativeBackpropInput's kernel.
pub(super) fn backprop_input_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    kernel(ctx, Pass::BackpropInput)
}

/// DepthwiseConv2dNativeBackpropFilter's kernel.
pub(super) fn backprop_filter_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    kernel(ctx, Pass::BackpropFilter)
}

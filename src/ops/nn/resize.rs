//! Image resizing (`tf.image.resize`, Keras `UpSampling2D`/`Resizing`): ResizeBilinear
//! (float32 output) and ResizeNearestNeighbor (the input's dtype), NHWC images and an
//! int32 `size = [new_height, new_width]`, with TensorFlow's `align_corners` and
//! `half_pixel_centers` coordinate rules (computed in float32, as TensorFlow's CPU kernels
//! do). The gradients (ResizeBilinearGrad, ResizeNearestNeighborGrad) are not implemented
//! yet: differentiating through these ops is an error.

use crate::graph::{AttrValue, AttrsExt, TensorSpec};
use crate::ops::{kernel_fn, InferCtx, KernelBuildCtx, KernelCtx, Op, Registry};
use crate::ops::{InferResult, KernelResult};
use crate::tensor::{alloc, DType, Element, PartialShape, Tensor};
use crate::{with_dtype, Error, Result};

/// The coordinate rules of one node.
#[derive(Clone, Copy)]
struct Rules {
    align_corners: bool,
    half_pixel_centers: bool,
}

impl Rules {
    fn from_attrs(attrs: &crate::graph::Attrs) -> std::result::Result<Rules, String> {
        let r = Rules {
            align_corners: attrs.bool_or("align_corners", false)?,
            half_pixel_centers: attrs.bool_or("half_pixel_centers", false)?,
        };
        if r.align_corners && r.half_pixel_centers {
            return Err("If half_pixel_centers is True, align_corners must be False.".into());
        }
        Ok(r)
    }

    /// TensorFlow's `CalculateResizeScale`.
    fn scale(self, input: usize, output: usize) -> f32 {
        if self.align_corners && output > 1 {
            (input as f32 - 1.0) / (output as f32 - 1.0)
        } else {
            input as f32 / output as f32
        }
    }
}

fn infer(ctx: &InferCtx<'_>, bilinear: bool) -> InferResult {
    ctx.expect_inputs(2)?;
    let dt = ctx.dtype(0);
    if !dt.is_numeric() {
        return Err(format!("images must be numeric, got {dt}"));
    }
    ctx.check_t_attr(dt)?;
    Rules::from_attrs(ctx.attrs())?;
    if ctx.dtype(1) != DType::Int32 {
        return Err(format!("size must be int32, got {}", ctx.dtype(1)));
    }
    if ctx.shape(1).dims().is_some_and(|d| d != [Some(2)]) {
        return Err(format!("size must have shape [2], got {}", ctx.shape(1)));
    }
    let images = ctx.shape(0);
    if images.rank().is_some_and(|r| r != 4) {
        return Err(format!("images must be 4-dimensional, got shape {images}"));
    }
    let [oh, ow] = match ctx.constant_ints(1).as_deref() {
        Some(&[h, w]) => [usize::try_from(h).ok(), usize::try_from(w).ok()],
        _ => [None, None],
    };
    let out = PartialShape::new(vec![images.dim(0), oh, ow, images.dim(3)]);
    Ok(vec![TensorSpec::new(
        if bilinear { DType::Float32 } else { dt },
        out,
    )])
}

/// The images' `[b, h, w, c]` and the output `[oh, ow]`, checked.
fn sizes(k: &KernelCtx<'_>, name: &str) -> Result<([usize; 4], [usize; 2])> {
    let bad = |e: String| Error::invalid(format!("{name}: {e}"));
    let &[b, h, w, c] = k.input(0)?.shape() else {
        return Err(bad(format!(
            "images must be 4-dimensional, got shape {:?}",
            k.input(0)?.shape()
        )));
    };
    let size = k.input(1)?.to_i64_vec()?;
    let [oh, ow] = size.as_slice() else {
        return Err(bad(format!("size must hold 2 values, got {size:?}")));
    };
    let (Ok(oh), Ok(ow)) = (usize::try_from(*oh), usize::try_from(*ow)) else {
        return Err(bad(format!("size must be positive, got {size:?}")));
    };
    if oh == 0 || ow == 0 || h == 0 || w == 0 {
        return Err(bad(format!(
            "input and output sizes must be positive, got input {:?} and size {size:?}",
            [h, w]
        )));
    }
    if b.checked_mul(oh)
        .and_then(|n| n.checked_mul(ow))
        .and_then(|n| n.checked_mul(c))
        .is_none_or(|n| n > isize::MAX as usize / 8)
    {
        return Err(bad(format!(
            "the output [{b}, {oh}, {ow}, {c}] is too large"
        )));
    }
    Ok(([b, h, w, c], [oh, ow]))
}

/// One output coordinate's source rows: lower, upper and the weight of upper.
fn bilinear_weights(rules: Rules, input: usize, output: usize) -> Vec<(usize, usize, f32)> {
    let scale = rules.scale(input, output);
    (0..output)
        .map(|o| {
            let x = if rules.half_pixel_centers {
                (o as f32 + 0.5) * scale - 0.5
            } else {
                o as f32 * scale
            };
            let lower = (x.floor() as i64).max(0) as usize;
            let upper = (x.ceil() as i64).clamp(0, input as i64 - 1) as usize;
            (lower.min(input - 1), upper, x - x.floor())
        })
        .collect()
}

fn bilinear<T: Element>(
    x: &Tensor,
    rules: Rules,
    [b, h, w, c]: [usize; 4],
    [oh, ow]: [usize; 2],
) -> Result<Tensor> {
    let data = x.as_slice::<T>()?;
    let (ys, xs) = (
        bilinear_weights(rules, h, oh),
        bilinear_weights(rules, w, ow),
    );
    let at = |n: usize, r: usize, col: usize, ch: usize| {
        data[((n * h + r) * w + col) * c + ch].to_f64() as f32
    };
    let mut out = alloc::try_with_capacity(&[b, oh, ow, c])?;
    for n in 0..b {
        for &(y0, y1, yl) in &ys {
            for &(x0, x1, xl) in &xs {
                for ch in 0..c {
                    let (tl, tr) = (at(n, y0, x0, ch), at(n, y0, x1, ch));
                    let (bl, br) = (at(n, y1, x0, ch), at(n, y1, x1, ch));
                    let top = tl + (tr - tl) * xl;
                    let bottom = bl + (br - bl) * xl;
                    out.push(top + (bottom - top) * yl);
                }
            }
        }
    }
    Tensor::new(&[b, oh, ow, c], out)
}

/// TensorFlow's nearest-neighbour source index of each output coordinate.
fn nearest_index(rules: Rules, input: usize, output: usize) -> Vec<usize> {
    let scale = rules.scale(input, output);
    (0..output)
        .map(|o| {
            let x = if rules.half_pixel_centers {
                (o as f32 + 0.5) * scale
            } else {
                o as f32 * scale
            };
            let i = if rules.align_corners {
                x.round()
            } else {
                x.floor()
            } as i64;
            i.clamp(0, input as i64 - 1) as usize
        })
        .collect()
}

fn nearest<T: Element>(
    x: &Tensor,
    rules: Rules,
    [b, h, w, c]: [usize; 4],
    [oh, ow]: [usize; 2],
) -> Result<Tensor> {
    let data = x.as_slice::<T>()?;
    let (ys, xs) = (nearest_index(rules, h, oh), nearest_index(rules, w, ow));
    let mut out = alloc::try_with_capacity(&[b, oh, ow, c])?;
    for n in 0..b {
        for &r in &ys {
            for &col in &xs {
                let at = ((n * h + r) * w + col) * c;
                out.extend_from_slice(&data[at..at + c]);
            }
        }
    }
    Tensor::new(&[b, oh, ow, c], out)
}

fn kernel(ctx: &KernelBuildCtx<'_>, is_bilinear: bool) -> KernelResult {
    let rules = Rules::from_attrs(ctx.attrs())?;
    let name = format!("{} '{}'", ctx.node.op_type(), ctx.node.name());
    with_dtype!(number, ctx.input_dtype(0), T => kernel_fn(move |k| {
        let (dims, out) = sizes(k, &name)?;
        let x = k.input(0)?;
        let y = if is_bilinear {
            bilinear::<T>(x, rules, dims, out)?
        } else {
            nearest::<T>(x, rules, dims, out)?
        };
        k.push_output(y);
        Ok(())
    }))
}

fn defaults() -> Vec<(&'static str, AttrValue)> {
    vec![
        ("align_corners", AttrValue::Bool(false)),
        ("half_pixel_centers", AttrValue::Bool(false)),
    ]
}

pub(super) fn register(r: &mut Registry) {
    r.add(Op::new("ResizeBilinear", |c| infer(c, true), |c| kernel(c, true)).defaults(defaults));
    r.add(
        Op::new(
            "ResizeNearestNeighbor",
            |c| infer(c, false),
            |c| kernel(c, false),
        )
        .defaults(defaults),
    );
}

#[cfg(test)]
mod tests {
    use crate::{DType, Graph, Output, Session, Tensor};

    fn resize(
        g: &mut Graph,
        op: &str,
        x: Output,
        size: [i32; 2],
        half_pixel: bool,
        align: bool,
    ) -> Output {
        let s = g.constant(Tensor::from(size)).unwrap();
        let t = g.dtype(x);
        g.op(op)
            .input(x)
            .input(s)
            .attr("T", t)
            .attr("half_pixel_centers", half_pixel)
            .attr("align_corners", align)
            .build_output()
            .unwrap()
    }

    #[test]
    fn resizes_as_tensorflow() {
        let mut g = Graph::new();
        let x: Vec<f32> = (0..6).map(|v| v as f32).collect();
        let x = g.constant(Tensor::new(&[1, 2, 3, 1], x).unwrap()).unwrap();
        let cases = [
            resize(&mut g, "ResizeBilinear", x, [3, 4], true, false),
            resize(&mut g, "ResizeBilinear", x, [3, 4], false, true),
            resize(&mut g, "ResizeBilinear", x, [3, 4], false, false),
            resize(&mut g, "ResizeNearestNeighbor", x, [3, 5], true, false),
            resize(&mut g, "ResizeNearestNeighbor", x, [3, 5], false, true),
        ];
        assert_eq!(g.dtype(cases[0]), DType::Float32);
        assert_eq!(g.shape(cases[3]).to_string(), "[1,3,5,1]");
        let out = Session::new(&g).run(&[], &cases, &[]).unwrap();
        for (got, want) in out.iter().zip(EXPECTED) {
            let got = got.to_f64_vec();
            assert_eq!(got.len(), want.len());
            for (a, b) in got.iter().zip(want) {
                assert!((a - b).abs() < 1e-5, "{got:?} vs {want:?}");
            }
        }
    }

    // tf.raw_ops on arange(6) as [1, 2, 3, 1] (TensorFlow 2.21)
    const EXPECTED: [&[f64]; 5] = [
        &[
            0.0, 0.625, 1.375, 2.0, 1.5, 2.125, 2.875, 3.5, 3.0, 3.625, 4.375, 5.0,
        ],
        &[
            0.0,
            0.6666666865348816,
            1.3333333730697632,
            2.0,
            1.5,
            2.1666667461395264,
            2.8333334922790527,
            3.5,
            3.0,
            3.6666667461395264,
            4.333333492279053,
            5.0,
        ],
        &[
            0.0, 0.75, 1.5, 2.0, 2.0, 2.75, 3.5, 4.0, 3.0, 3.75, 4.5, 5.0,
        ],
        &[
            0.0, 0.0, 1.0, 2.0, 2.0, 3.0, 3.0, 4.0, 5.0, 5.0, 3.0, 3.0, 4.0, 5.0, 5.0,
        ],
        &[
            0.0, 1.0, 1.0, 2.0, 2.0, 3.0, 4.0, 4.0, 5.0, 5.0, 3.0, 4.0, 4.0, 5.0, 5.0,
        ],
    ];
}

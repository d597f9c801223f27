//! Sliding-window geometry shared by convolutions and pooling: the `data_format`,
//! `strides`, `dilations`, `ksize` and `padding` attrs, and TensorFlow's output-size and
//! padding arithmetic (`GetWindowedOutputSizeVerbose`).

use crate::graph::{Attrs, AttrsExt};
use crate::tensor::{alloc, DType, Dim, PartialShape};

/// Layout of a 4-D image tensor (the `data_format` attr).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DataFormat {
    /// `[batch, height, width, channels]` (TensorFlow's default).
    Nhwc,
    /// `[batch, channels, height, width]`.
    Nchw,
}

impl DataFormat {
    /// Reads the `data_format` attr (default `"NHWC"`).
    pub(crate) fn from_attrs(attrs: &Attrs) -> Result<DataFormat, String> {
        match attrs.string_or("data_format", "NHWC")?.as_str() {
            "NHWC" => Ok(DataFormat::Nhwc),
            "NCHW" => Ok(DataFormat::Nchw),
            other => Err(format!(
                "attr data_format is '{other}', but only NHWC and NCHW are supported"
            )),
        }
    }

    /// Positions of the batch, height, width and channel dims.
    pub(crate) fn axes(self) -> [usize; 4] {
        match self {
            DataFormat::Nhwc => [0, 1, 2, 3],
            DataFormat::Nchw => [0, 2, 3, 1],
        }
    }

    /// Places batch, height, width, channels in this layout's order.
    pub(crate) fn shape<D: Copy + Default>(self, [n, h, w, c]: [D; 4]) -> [D; 4] {
        let mut out = [D::default(); 4];
        for (v, a) in [n, h, w, c].into_iter().zip(self.axes()) {
            out[a] = v;
        }
        out
    }
}

/// How the borders are padded (the `padding` attr, with `explicit_paddings`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Padding {
    /// Output size `ceil(in / stride)`, zero padding split evenly with the extra on the end.
    Same,
    /// No padding: only windows entirely inside the input.
    Valid,
    /// Given (before, after) padding of height and width.
    Explicit([(usize, usize); 2]),
}

/// Strides, dilations and padding of a 2-D sliding window, read from a node's attrs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Window2d {
    /// Tensor layout.
    pub format: DataFormat,
    /// Height and width strides.
    pub strides: [usize; 2],
    /// Height and width dilation rates (1 for pooling).
    pub dilations: [usize; 2],
    /// Border padding.
    pub padding: Padding,
}

/// Reads a 4-element `list(int)` attr in layout order and returns its (height, width)
/// entries; the batch and channel entries must be 1.
fn spatial_pair(
    attrs: &Attrs,
    name: &str,
    default: Option<&[i64]>,
    format: DataFormat,
    what: &str,
) -> Result<[usize; 2], String> {
    let v = match (attrs.value(name), default) {
        (None, Some(d)) => d.to_vec(),
        (None, None) => return Err(format!("missing attr '{name}'")),
        (Some(_), _) => attrs.ints_or(name, &[])?,
    };
    if v.len() != 4 {
        return Err(format!(
            "{name} attr must have 4 elements (one per dimension), got {v:?}"
        ));
    }
    let [n, h, w, c] = format.axes();
    if v[n] != 1 || v[c] != 1 {
        return Err(format!(
            "Current implementation does not yet support {what} in the batch and depth dimensions (attr {name} = {v:?})"
        ));
    }
    let pick = |x: i64| -> Result<usize, String> {
        usize::try_from(x)
            .ok()
            .filter(|&x| x >= 1 && x <= i32::MAX as usize)
            .ok_or_else(|| format!("{name} must be positive, got {v:?}"))
    };
    Ok([pick(v[h])?, pick(v[w])?])
}

impl Window2d {
    fn padding(attrs: &Attrs, format: DataFormat, allow_explicit: bool) -> Result<Padding, String> {
        let padding = match attrs.value("padding") {
            None => return Err("missing attr 'padding'".to_string()),
            Some(_) => attrs.string_or("padding", "")?,
        };
        let explicit = attrs.ints_or("explicit_paddings", &[])?;
        if padding != "EXPLICIT" && !explicit.is_empty() {
            return Err(format!(
                "explicit_paddings attribute must be empty if the padding attribute is not EXPLICIT (padding is {padding}, explicit_paddings {explicit:?})"
            ));
        }
        match padding.as_str() {
            "SAME" => Ok(Padding::Same),
            "VALID" => Ok(Padding::Valid),
            "EXPLICIT" if allow_explicit => {
                if explicit.len() != 8 {
                    return Err(format!(
                        "explicit_paddings attribute must contain 8 values (before and after for each dimension), got {explicit:?}"
                    ));
                }
                if explicit.iter().any(|&p| p < 0 || p > i32::MAX as i64) {
                    return Err(format!(
                        "All elements of explicit_paddings must be nonnegative, got {explicit:?}"
                    ));
                }
                let [n, h, w, c] = format.axes();
                if explicit[2 * n] != 0
                    || explicit[2 * n + 1] != 0
                    || explicit[2 * c] != 0
                    || explicit[2 * c + 1] != 0
                {
                    return Err(format!(
                        "Nonzero explicit padding in the batch or depth dimensions is not supported: {explicit:?}"
                    ));
                }
                let pair = |a: usize| (explicit[2 * a] as usize, explicit[2 * a + 1] as usize);
                Ok(Padding::Explicit([pair(h), pair(w)]))
            }
            other => Err(format!(
                "attr padding is '{other}', but must be SAME or VALID{}",
                if allow_explicit { " or EXPLICIT" } else { "" }
            )),
        }
    }

    /// Reads the attrs of Conv2D and its backprops: `strides`, `padding` (SAME, VALID,
    /// EXPLICIT with `explicit_paddings`), `dilations` (default 1s) and `data_format`.
    pub(crate) fn conv(attrs: &Attrs) -> Result<Window2d, String> {
        let format = DataFormat::from_attrs(attrs)?;
        Ok(Window2d {
            format,
            strides: spatial_pair(attrs, "strides", None, format, "strides")?,
            dilations: spatial_pair(attrs, "dilations", Some(&[1; 4]), format, "dilations")?,
            padding: Window2d::padding(attrs, format, true)?,
        })
    }

    /// Reads the attrs of the pooling ops: `ksize`, `strides`, `padding` (SAME or VALID)
    /// and `data_format`; returns the window and its (height, width) size.
    pub(crate) fn pool(attrs: &Attrs) -> Result<(Window2d, [usize; 2]), String> {
        let format = DataFormat::from_attrs(attrs)?;
        let ksize = spatial_pair(attrs, "ksize", None, format, "pooling")?;
        let window = Window2d {
            format,
            strides: spatial_pair(attrs, "strides", None, format, "strides")?,
            dilations: [1, 1],
            padding: Window2d::padding(attrs, format, false)?,
        };
        Ok((window, ksize))
    }

    /// Output size and padding before the first element along spatial axis `axis`
    /// (0 = height, 1 = width) for an input of size `input` and a window of `filter` taps.
    pub(crate) fn resolve(
        &self,
        axis: usize,
        input: usize,
        filter: usize,
    ) -> Result<(usize, usize), String> {
        if filter == 0 {
            return Err(format!(
                "the window must be at least 1 wide, but its {} is 0",
                ["height", "width"][axis]
            ));
        }
        let (i, f) = (input as i128, filter as i128);
        let (s, d) = (self.strides[axis] as i128, self.dilations[axis] as i128);
        let eff = (f - 1) * d + 1;
        let (out, before) = match self.padding {
            Padding::Valid => ((i - eff + s) / s, 0),
            Padding::Same => {
                let out = (i + s - 1) / s;
                let needed = ((out - 1) * s + eff - i).max(0);
                (out, needed / 2)
            }
            Padding::Explicit(p) => {
                let (b, a) = (p[axis].0 as i128, p[axis].1 as i128);
                ((i + b + a - eff + s) / s, b)
            }
        };
        if out < 0 {
            return Err(format!(
                "Computed output size would be negative: {out} [input_size: {input}, effective_filter_size: {eff}, stride: {s}]"
            ));
        }
        // Both fit: out <= input + padding and before < the effective window.
        Ok((out as usize, before as usize))
    }

    /// Output size along a spatial axis when both sizes are known at build time.
    pub(crate) fn out_dim(&self, axis: usize, input: Dim, filter: Dim) -> Result<Dim, String> {
        match (input, filter) {
            (Some(i), Some(f)) => Ok(Some(self.resolve(axis, i, f)?.0)),
            _ => Ok(None),
        }
    }

    /// The layout's (batch, height, width, channels) of a rank-4 partial shape; errors
    /// when the rank is known and not 4.
    pub(crate) fn nhwc_dims(&self, shape: &PartialShape, what: &str) -> Result<[Dim; 4], String> {
        nhwc_dims(self.format, shape, what)
    }
}

/// (batch, height, width, channels) of a rank-4 partial shape in `format`.
pub(crate) fn nhwc_dims(
    format: DataFormat,
    shape: &PartialShape,
    what: &str,
) -> Result<[Dim; 4], String> {
    match shape.rank() {
        None => Ok([None; 4]),
        Some(4) => Ok(format.axes().map(|a| shape.dim(a))),
        Some(r) => Err(format!(
            "{what} must be 4-dimensional, but has shape {shape} (rank {r})"
        )),
    }
}

/// Concrete sizes of one 2-D sliding-window computation, resolved from runtime shapes:
/// `[batch, in_h, in_w, in_c]` windows of `k_h × k_w` taps producing `[batch, out_h,
/// out_w, out_c]` (NHWC).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Geometry {
    pub batch: usize,
    pub in_h: usize,
    pub in_w: usize,
    pub in_c: usize,
    pub k_h: usize,
    pub k_w: usize,
    pub out_h: usize,
    pub out_w: usize,
    pub out_c: usize,
    pub stride: [usize; 2],
    pub dilation: [usize; 2],
    /// Padding before the first row and the first column.
    pub pad: [usize; 2],
}

impl Geometry {
    /// Resolves the output size for an NHWC input and a `k_h × k_w` window.
    pub(crate) fn new(
        window: &Window2d,
        [batch, in_h, in_w, in_c]: [usize; 4],
        [k_h, k_w]: [usize; 2],
        out_c: usize,
    ) -> Result<Geometry, String> {
        let (out_h, pad_h) = window.resolve(0, in_h, k_h)?;
        let (out_w, pad_w) = window.resolve(1, in_w, k_w)?;
        let sizes = [batch, out_h, out_w, out_c];
        let patch = [batch, out_h, out_w, k_h, k_w, in_c];
        let input = [batch, in_h, in_w, in_c];
        for dims in [&sizes[..], &patch[..], &input[..]] {
            let n = dims.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
            if n.is_none_or(|n| n > isize::MAX as usize / 8) {
                return Err(format!(
                    "the input of shape {input:?} and output of shape {sizes:?} (window {k_h}x{k_w}) are too large"
                ));
            }
        }
        Ok(Geometry {
            batch,
            in_h,
            in_w,
            in_c,
            k_h,
            k_w,
            out_h,
            out_w,
            out_c,
            stride: window.strides,
            dilation: window.dilations,
            pad: [pad_h, pad_w],
        })
    }

    /// Errors ([`crate::Error::ResourceExhausted`]) unless the output, the input and the
    /// filter, as `dtype` tensors, each fit the memory limit (see [`alloc`]): a gradient
    /// kernel allocates the input or filter, the forward kernels the output.
    pub(crate) fn check_memory(&self, dtype: DType) -> crate::Result<()> {
        alloc::checked_len(dtype, &self.out_shape())?;
        alloc::checked_len(dtype, &[self.batch, self.in_h, self.in_w, self.in_c])?;
        alloc::checked_len(dtype, &[self.k_h, self.k_w, self.in_c, self.out_c])?;
        Ok(())
    }

    /// The NHWC output shape.
    pub(crate) fn out_shape(&self) -> Vec<usize> {
        vec![self.batch, self.out_h, self.out_w, self.out_c]
    }

    /// Elements of one input image.
    pub(crate) fn in_image(&self) -> usize {
        self.in_h * self.in_w * self.in_c
    }

    /// Input row of tap `i` of the window at output row `oh`, when inside the input.
    #[inline]
    pub(crate) fn in_row(&self, oh: usize, i: usize) -> Option<usize> {
        (oh * self.stride[0] + i * self.dilation[0])
            .checked_sub(self.pad[0])
            .filter(|&r| r < self.in_h)
    }

    /// Input column of tap `j` of the window at output column `ow`, when inside the input.
    #[inline]
    pub(crate) fn in_col(&self, ow: usize, j: usize) -> Option<usize> {
        (ow * self.stride[1] + j * self.dilation[1])
            .checked_sub(self.pad[1])
            .filter(|&c| c < self.in_w)
    }

    /// The taps `lo..hi` of an undilated window at output row `oh` that fall inside the
    /// input (pooling).
    #[inline]
    pub(crate) fn row_taps(&self, oh: usize) -> std::ops::Range<usize> {
        taps(oh * self.stride[0], self.pad[0], self.k_h, self.in_h)
    }

    /// The taps of an undilated window at output column `ow` inside the input.
    #[inline]
    pub(crate) fn col_taps(&self, ow: usize) -> std::ops::Range<usize> {
        taps(ow * self.stride[1], self.pad[1], self.k_w, self.in_w)
    }
}

/// Input positions `start - pad .. start - pad + k`, clipped to `0..len`.
fn taps(start: usize, pad: usize, k: usize, len: usize) -> std::ops::Range<usize> {
    let lo = start.saturating_sub(pad).min(len);
    let hi = (start + k).saturating_sub(pad).min(len);
    lo..hi.max(lo)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::AttrValue;

    fn attrs(pairs: &[(&str, AttrValue)]) -> Attrs {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn same_padding_puts_the_extra_row_after() {
        let a = attrs(&[
            ("strides", vec![1i64, 2, 2, 1].into()),
            ("padding", "SAME".into()),
        ]);
        let w = Window2d::conv(&a).unwrap();
        // in 6, k 3, s 2: out ceil(6/2)=3, needed (3-1)*2+3-6=1, before 0
        assert_eq!(w.resolve(0, 6, 3).unwrap(), (3, 0));
        // in 5, k 4, s 2: out 3, needed (3-1)*2+4-5=3, before 1 (extra after)
        assert_eq!(w.resolve(0, 5, 4).unwrap(), (3, 1));
        // in 7, k 1, s 2: out 4, needed 0
        assert_eq!(w.resolve(1, 7, 1).unwrap(), (4, 0));
    }

    #[test]
    fn valid_and_explicit_sizes_follow_tensorflow() {
        let a = attrs(&[
            ("strides", vec![1i64, 2, 3, 1].into()),
            ("padding", "VALID".into()),
            ("dilations", vec![1i64, 2, 1, 1].into()),
        ]);
        let w = Window2d::conv(&a).unwrap();
        // height: eff (3-1)*2+1 = 5, (7-5+2)/2 = 2
        assert_eq!(w.resolve(0, 7, 3).unwrap(), (2, 0));
        // width: (5-3+3)/3 = 1
        assert_eq!(w.resolve(1, 5, 3).unwrap(), (1, 0));
        // window larger than the input: negative size is an error
        let msg = w.resolve(0, 1, 3).unwrap_err();
        assert!(msg.contains("negative"), "{msg}");
        let e = attrs(&[
            ("strides", vec![1i64, 1, 1, 1].into()),
            ("padding", "EXPLICIT".into()),
            ("explicit_paddings", vec![0i64, 0, 1, 2, 3, 0, 0, 0].into()),
        ]);
        let w = Window2d::conv(&e).unwrap();
        assert_eq!(w.padding, Padding::Explicit([(1, 2), (3, 0)]));
        // (4 + 1 + 2 - 3 + 1) / 1 = 5
        assert_eq!(w.resolve(0, 4, 3).unwrap(), (5, 1));
    }

    #[test]
    fn bad_attrs_are_explained() {
        let a = attrs(&[
            ("strides", vec![2i64, 1, 1, 1].into()),
            ("padding", "SAME".into()),
        ]);
        assert!(Window2d::conv(&a).unwrap_err().contains("batch and depth"));
        let a = attrs(&[
            ("strides", vec![1i64, 1, 1].into()),
            ("padding", "SAME".into()),
        ]);
        assert!(Window2d::conv(&a).unwrap_err().contains("4 elements"));
        let a = attrs(&[
            ("strides", vec![1i64, 0, 1, 1].into()),
            ("padding", "SAME".into()),
        ]);
        assert!(Window2d::conv(&a).unwrap_err().contains("positive"));
        let a = attrs(&[
            ("strides", vec![1i64, 1, 1, 1].into()),
            ("padding", "FULL".into()),
        ]);
        assert!(Window2d::conv(&a).unwrap_err().contains("FULL"));
        let a = attrs(&[
            ("strides", vec![1i64, 1, 1, 1].into()),
            ("padding", "SAME".into()),
            ("explicit_paddings", vec![0i64; 8].into()),
        ]);
        assert!(Window2d::conv(&a).unwrap_err().contains("must be empty"));
        let a = attrs(&[
            ("ksize", vec![1i64, 2, 2, 1].into()),
            ("strides", vec![1i64, 1, 1, 1].into()),
            ("padding", "EXPLICIT".into()),
        ]);
        assert!(Window2d::pool(&a).unwrap_err().contains("SAME or VALID"));
        let a = attrs(&[("padding", "SAME".into())]);
        assert!(Window2d::conv(&a).unwrap_err().contains("strides"));
    }

    #[test]
    fn nchw_attrs_are_read_in_layout_order() {
        let a = attrs(&[
            ("ksize", vec![1i64, 1, 3, 2].into()),
            ("strides", vec![1i64, 1, 2, 1].into()),
            ("padding", "VALID".into()),
            ("data_format", "NCHW".into()),
        ]);
        let (w, k) = Window2d::pool(&a).unwrap();
        assert_eq!((w.strides, k), ([2, 1], [3, 2]));
        assert_eq!(DataFormat::Nchw.shape([1, 2, 3, 4]), [1, 4, 2, 3]);
    }

    #[test]
    fn taps_are_clipped_to_the_input() {
        assert_eq!(taps(0, 1, 3, 4), 0..2);
        assert_eq!(taps(4, 1, 3, 4), 3..4);
        assert_eq!(taps(2, 0, 3, 4), 2..4);
    }
}

//! Row-level tensor helpers the pipeline is built from: one row of a tensor, a gather of
//! rows, a stack of equal-shaped tensors and a padded stack.

use crate::tensor::{self, alloc, DType, Element as Scalar, Tensor};
use crate::{Error, Result};

/// What the row helpers need of an element type: every [`Scalar`] dtype and strings.
trait RowValue: Clone {
    /// The tensor's elements, when its dtype is this type's.
    fn slice(t: &Tensor) -> Result<&[Self]>;
    /// A tensor of `shape` holding `data`.
    fn tensor(shape: &[usize], data: Vec<Self>) -> Result<Tensor>;
    /// The padding element `value` stands for (strings pad with the empty string).
    fn pad(value: f64) -> Self;
}

impl<T: Scalar> RowValue for T {
    fn slice(t: &Tensor) -> Result<&[T]> {
        t.as_slice::<T>()
    }
    fn tensor(shape: &[usize], data: Vec<T>) -> Result<Tensor> {
        Tensor::new(shape, data)
    }
    fn pad(value: f64) -> T {
        T::from_f64(value)
    }
}

impl RowValue for Vec<u8> {
    fn slice(t: &Tensor) -> Result<&[Vec<u8>]> {
        t.as_strings()
    }
    fn tensor(shape: &[usize], data: Vec<Vec<u8>>) -> Result<Tensor> {
        Tensor::from_strings(shape, data)
    }
    fn pad(_: f64) -> Vec<u8> {
        Vec::new()
    }
}

/// Runs `$body` with `$T` bound to the Rust type of `$dtype`.
macro_rules! with_type {
    ($dtype:expr, $T:ident => $body:expr) => {
        match $dtype {
            DType::Float32 => {
                type $T = f32;
                $body
            }
            DType::Float64 => {
                type $T = f64;
                $body
            }
            DType::Int32 => {
                type $T = i32;
                $body
            }
            DType::Int64 => {
                type $T = i64;
                $body
            }
            DType::UInt8 => {
                type $T = u8;
                $body
            }
            DType::Bool => {
                type $T = bool;
                $body
            }
            DType::String => {
                type $T = Vec<u8>;
                $body
            }
            DType::Resource | DType::Variant => {
                return Err(Error::invalid(
                    "resource handles cannot be taken apart or batched",
                ))
            }
        }
    };
}

/// Elements in one row (the product of all dimensions but the first).
fn row_len(t: &Tensor) -> usize {
    tensor::num_elements(&t.shape()[1..])
}

/// Row `i` (of `len` elements) of `t`'s elements `data`, or an error when `t` has no
/// such row (empty rows included).
fn row_slice<'a, T>(t: &Tensor, data: &'a [T], i: usize, len: usize) -> Result<&'a [T]> {
    data.get(i * len..(i + 1) * len)
        .filter(|_| i < t.shape()[0])
        .ok_or_else(|| {
            Error::invalid(format!(
                "row {i} is out of range for a tensor of shape {:?}",
                t.shape()
            ))
        })
}

/// Rows `idx` of `t` (rank >= 1) stacked in that order: `[idx.len(), ...]`.
pub(crate) fn gather_rows(t: &Tensor, idx: &[usize]) -> Result<Tensor> {
    fn typed<T: RowValue>(t: &Tensor, idx: &[usize], shape: &[usize]) -> Result<Vec<T>> {
        let data = T::slice(t)?;
        let len = tensor::num_elements(&shape[1..]);
        let mut out = alloc::try_reserve(t.dtype(), shape)?;
        for &i in idx {
            out.extend_from_slice(row_slice(t, data, i, len)?);
        }
        Ok(out)
    }
    if t.rank() == 0 {
        return Err(Error::invalid("cannot take rows of a scalar"));
    }
    let mut shape = t.shape().to_vec();
    shape[0] = idx.len();
    with_type!(t.dtype(), T => T::tensor(&shape, typed::<T>(t, idx, &shape)?))
}

/// Row `i` of `t` (rank >= 1), with the first dimension dropped.
pub(crate) fn row(t: &Tensor, i: usize) -> Result<Tensor> {
    fn typed<T: RowValue>(t: &Tensor, i: usize) -> Result<Tensor> {
        let row = row_slice(t, T::slice(t)?, i, row_len(t))?;
        T::tensor(&t.shape()[1..], row.to_vec())
    }
    if t.rank() == 0 {
        return Err(Error::invalid("cannot take rows of a scalar"));
    }
    with_type!(t.dtype(), T => typed::<T>(t, i))
}

/// Stacks tensors of one dtype and shape along a new first dimension.
pub(crate) fn stack(parts: &[&Tensor]) -> Result<Tensor> {
    let first = parts
        .first()
        .ok_or_else(|| Error::invalid("cannot stack zero tensors"))?;
    for p in parts {
        if p.shape() != first.shape() || p.dtype() != first.dtype() {
            return Err(Error::invalid(format!(
                "cannot batch elements of different shapes or dtypes: {} {:?} and {} {:?} \
                 (use padded_batch for varying shapes)",
                first.dtype(),
                first.shape(),
                p.dtype(),
                p.shape()
            )));
        }
    }
    let mut shape = vec![parts.len()];
    shape.extend_from_slice(first.shape());
    with_type!(first.dtype(), T => T::tensor(&shape, concat::<T>(parts, first.dtype(), &shape)?))
}

/// The elements of `parts` one after the other, in a fallibly allocated buffer for a
/// `dtype` tensor of `shape` (which holds them all).
fn concat<T: RowValue>(parts: &[&Tensor], dtype: DType, shape: &[usize]) -> Result<Vec<T>> {
    let mut out = alloc::try_reserve(dtype, shape)?;
    for p in parts {
        out.extend_from_slice(T::slice(p)?);
    }
    Ok(out)
}

/// Concatenates rank-1 tensors of `dtype` into one (empty when there are none).
pub(crate) fn concat_vectors(parts: &[&Tensor], dtype: DType) -> Result<Tensor> {
    concat_rows(parts, dtype, &[])
}

/// Concatenates tensors of `dtype` shaped `[n_i] + inner` along their first dimension
/// into `[sum of n_i] + inner` (no rows when there are none).
pub(crate) fn concat_rows(parts: &[&Tensor], dtype: DType, inner: &[usize]) -> Result<Tensor> {
    if let Some(p) = parts
        .iter()
        .find(|p| p.rank() != inner.len() + 1 || &p.shape()[1..] != inner || p.dtype() != dtype)
    {
        return Err(Error::invalid(format!(
            "cannot concatenate a {} tensor of shape {:?} with rows of {dtype} {inner:?}",
            p.dtype(),
            p.shape()
        )));
    }
    let mut shape = vec![parts.iter().map(|p| p.shape()[0]).sum::<usize>()];
    shape.extend_from_slice(inner);
    with_type!(dtype, T => T::tensor(&shape, concat::<T>(parts, dtype, &shape)?))
}

/// Stacks tensors of one dtype and rank, each padded with `value` up to `shape` (every
/// dimension of each part must be at most the target's).
pub(crate) fn pad_stack(parts: &[&Tensor], shape: &[usize], value: f64) -> Result<Tensor> {
    fn typed<T: RowValue>(parts: &[&Tensor], out_shape: &[usize], value: f64) -> Result<Vec<T>> {
        // Reserved (and so checked not to overflow) before the sizes are multiplied.
        let mut out = alloc::try_reserve(parts[0].dtype(), out_shape)?;
        let shape = &out_shape[1..];
        let size = tensor::num_elements(shape);
        out.resize(parts.len() * size, T::pad(value));
        for (k, p) in parts.iter().enumerate() {
            let src = T::slice(p)?;
            let dst = &mut out[k * size..(k + 1) * size];
            copy_corner(src, p.shape(), dst, shape);
        }
        Ok(out)
    }
    let first = parts
        .first()
        .ok_or_else(|| Error::invalid("cannot stack zero tensors"))?;
    for p in parts {
        let fits = p.rank() == shape.len() && p.shape().iter().zip(shape).all(|(a, b)| a <= b);
        if p.dtype() != first.dtype() || !fits {
            return Err(Error::invalid(format!(
                "padded_batch: a component of dtype {} and shape {:?} does not fit the padded \
                 shape {shape:?} of dtype {}",
                p.dtype(),
                p.shape(),
                first.dtype()
            )));
        }
    }
    let mut out_shape = vec![parts.len()];
    out_shape.extend_from_slice(shape);
    with_type!(first.dtype(), T => T::tensor(&out_shape, typed::<T>(parts, &out_shape, value)?))
}

/// Copies the common top-left corner of two row-major blocks of the same rank (each
/// dimension the smaller of the two) from `src` into `dst`: all of a smaller `src` into a
/// larger `dst` (padding), or the corner of a larger `src` that fills `dst` (cropping).
fn copy_corner<T: Clone>(src: &[T], src_shape: &[usize], dst: &mut [T], dst_shape: &[usize]) {
    match (src_shape, dst_shape) {
        ([n, rest @ ..], [m, dst_rest @ ..]) if !rest.is_empty() => {
            let s = tensor::num_elements(rest);
            let d = tensor::num_elements(dst_rest);
            for i in 0..(*n).min(*m) {
                copy_corner(
                    &src[i * s..(i + 1) * s],
                    rest,
                    &mut dst[i * d..(i + 1) * d],
                    dst_rest,
                );
            }
        }
        _ => {
            let n = src.len().min(dst.len());
            dst[..n].clone_from_slice(&src[..n]);
        }
    }
}

/// The top-left corner of `t` of `shape` (same rank, each dimension at most `t`'s): what
/// [`pad_stack`] padded, cut back.
pub(crate) fn crop(t: &Tensor, shape: &[usize]) -> Result<Tensor> {
    fn typed<T: RowValue>(t: &Tensor, shape: &[usize]) -> Result<Tensor> {
        let mut out = vec![T::pad(0.0); tensor::num_elements(shape)];
        copy_corner(T::slice(t)?, t.shape(), &mut out, shape);
        T::tensor(shape, out)
    }
    let fits = t.rank() == shape.len() && t.shape().iter().zip(shape).all(|(a, b)| b <= a);
    if !fits {
        return Err(Error::invalid(format!(
            "cannot crop a tensor of shape {:?} to {shape:?}",
            t.shape()
        )));
    }
    with_type!(t.dtype(), T => typed::<T>(t, shape))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_stack_and_pad() {
        let t = Tensor::from([[1i32, 2], [3, 4], [5, 6]]);
        assert_eq!(row(&t, 1).unwrap(), Tensor::from([3i32, 4]));
        assert_eq!(
            gather_rows(&t, &[2, 0]).unwrap(),
            Tensor::from([[5i32, 6], [1, 2]])
        );
        assert!(row(&t, 3).is_err());
        assert_eq!(crop(&t, &[2, 1]).unwrap(), Tensor::from([[1i32], [3]]));
        assert!(crop(&t, &[4, 1]).is_err() && crop(&t, &[2]).is_err());
        let padded = pad_stack(&[&Tensor::from([[1u8, 2], [3, 4]])], &[3, 3], 0.0).unwrap();
        let padded = padded.reshape(&[3, 3]).unwrap();
        assert_eq!(padded, Tensor::from([[1u8, 2, 0], [3, 4, 0], [0, 0, 0]]));
        assert_eq!(
            crop(&padded, &[2, 2]).unwrap(),
            Tensor::from([[1u8, 2], [3, 4]])
        );
        let a = Tensor::from([1f32, 2.]);
        let b = Tensor::from([3f32]);
        assert!(stack(&[&a, &b]).is_err());
        assert_eq!(
            pad_stack(&[&a, &b], &[3], -1.0).unwrap(),
            Tensor::from([[1f32, 2., -1.], [3., -1., -1.]])
        );
        let m = Tensor::from([[1u8, 2], [3, 4]]);
        let p = pad_stack(&[&m], &[3, 3], 0.0).unwrap();
        assert_eq!(p.shape(), &[1, 3, 3]);
        assert_eq!(p.to_vec::<u8>().unwrap(), vec![1, 2, 0, 3, 4, 0, 0, 0, 0]);
        assert!(pad_stack(&[&m], &[1, 3], 0.0).is_err());
    }

    #[test]
    fn concatenates_vectors() {
        let a = Tensor::from([1i64, 2]);
        let b = Tensor::from([3i64]);
        assert_eq!(
            concat_vectors(&[&a, &b], DType::Int64).unwrap(),
            Tensor::from([1i64, 2, 3])
        );
        assert_eq!(concat_vectors(&[], DType::String).unwrap().shape(), &[0]);
        assert!(concat_vectors(&[&a], DType::Float32).is_err());
        // Rows of a matrix: [2, 2] and [1, 2] make [3, 2]; other row shapes are refused.
        let m = Tensor::from([[1f32, 2.0], [3.0, 4.0]]);
        let r = Tensor::from([[5f32, 6.0]]);
        assert_eq!(
            concat_rows(&[&m, &r], DType::Float32, &[2]).unwrap(),
            Tensor::from([[1f32, 2.0], [3.0, 4.0], [5.0, 6.0]])
        );
        let e = concat_rows(&[&m, &a], DType::Float32, &[2]).unwrap_err();
        assert!(e.to_string().contains("shape [2]"), "{e}");
    }

    #[test]
    fn rows_of_strings() {
        let t = Tensor::from_strings(&[3], vec!["a", "bc", "d"]).unwrap();
        assert_eq!(row(&t, 1).unwrap(), Tensor::string_scalar("bc"));
        let s = Tensor::from_strings(&[1], vec!["x"]).unwrap();
        assert_eq!(
            pad_stack(&[&t, &s], &[3], 7.0).unwrap(),
            Tensor::from_strings(&[2, 3], vec!["a", "bc", "d", "x", "", ""]).unwrap()
        );
        assert!(stack(&[&t, &Tensor::from([1i32, 2, 3])]).is_err());
    }
}

//! Generic CPU loops that kernels are written with: elementwise maps with NumPy
//! broadcasting (fast paths for equal shapes, scalars and trailing-axis broadcasts, and
//! in-place reuse of a buffer nothing else holds), and the broadcast shape rule.

use crate::tensor::{alloc, num_elements, Element, Tensor};
use crate::{Error, Result};

/// NumPy broadcast of two concrete shapes.
pub fn broadcast_shape(a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let n = a.len().max(b.len());
    let mut out = vec![0; n];
    for (i, o) in out.iter_mut().enumerate() {
        let x = if i + a.len() >= n {
            a[i + a.len() - n]
        } else {
            1
        };
        let y = if i + b.len() >= n {
            b[i + b.len() - n]
        } else {
            1
        };
        *o = if x == y || y == 1 {
            x
        } else if x == 1 {
            y
        } else {
            return Err(Error::invalid(format!(
                "Incompatible shapes: {a:?} vs. {b:?}"
            )));
        };
    }
    Ok(out)
}

/// Strides (in elements) for reading `shape` broadcast to `out` (0 on broadcast axes).
pub fn broadcast_strides(shape: &[usize], out: &[usize]) -> Vec<usize> {
    let offset = out.len() - shape.len();
    let mut strides = vec![0; out.len()];
    let mut stride = 1;
    for i in (0..shape.len()).rev() {
        strides[offset + i] = if shape[i] == 1 { 0 } else { stride };
        stride *= shape[i];
    }
    strides
}

/// Applies `f` to every element, reusing the input buffer when it is unique and the
/// element type does not change.
pub fn map<T: Element, U: Element>(mut x: Tensor, f: impl Fn(T) -> U) -> Result<Tensor> {
    if T::DTYPE == U::DTYPE {
        if let Some(v) = x.unique_slice_mut::<T>() {
            // T and U are the same type here, so the conversion is the identity.
            v.iter_mut().for_each(|e| *e = cast_same::<U, T>(f(*e)));
            return Ok(x);
        }
    }
    let out: Vec<U> = x.as_slice::<T>()?.iter().map(|&a| f(a)).collect();
    Ok(Tensor::from_parts(x.shape().to_vec(), out))
}

/// Identity conversion between two type parameters known to be the same type.
#[inline(always)]
fn cast_same<A: Element, B: Element>(a: A) -> B {
    debug_assert_eq!(A::DTYPE, B::DTYPE);
    // SAFETY: callers only use this when A::DTYPE == B::DTYPE, and each dtype has exactly
    // one Rust element type, so A and B are the same type.
    unsafe { std::mem::transmute_copy(&a) }
}

/// Applies `f` elementwise with NumPy broadcasting. Reuses `a`'s or `b`'s buffer when it
/// is unique, already has the output shape, and the element type does not change.
pub fn zip<T: Element, U: Element>(
    mut a: Tensor,
    mut b: Tensor,
    f: impl Fn(T, T) -> U,
) -> Result<Tensor> {
    let same_type = T::DTYPE == U::DTYPE;
    // Equal shapes: one straight loop, in place when a buffer is free.
    if a.shape() == b.shape() {
        if same_type {
            if let Some(v) = a.unique_slice_mut::<T>() {
                let bs = b.as_slice::<T>()?;
                v.iter_mut()
                    .zip(bs)
                    .for_each(|(x, &y)| *x = cast_same::<U, T>(f(*x, y)));
                return Ok(a);
            }
            if let Some(v) = b.unique_slice_mut::<T>() {
                let as_ = a.as_slice::<T>()?;
                v.iter_mut()
                    .zip(as_)
                    .for_each(|(y, &x)| *y = cast_same::<U, T>(f(x, *y)));
                return Ok(b);
            }
        }
        let (xs, ys) = (a.as_slice::<T>()?, b.as_slice::<T>()?);
        let v: Vec<U> = xs.iter().zip(ys).map(|(&x, &y)| f(x, y)).collect();
        return Ok(Tensor::from_parts(a.shape(), v));
    }
    let out_shape = broadcast_shape(a.shape(), b.shape())?;
    let n = num_elements(&out_shape);
    // One side is a single element.
    if b.len() == 1 && a.len() == n {
        let y = b.as_slice::<T>()?[0];
        return map(a, |x: T| f(x, y))?.reshape(&out_shape);
    }
    if a.len() == 1 && b.len() == n {
        let x = a.as_slice::<T>()?[0];
        return map(b, |y: T| f(x, y))?.reshape(&out_shape);
    }
    // General case: walk the output, inner loop over the last axis.
    let (xs, ys) = (a.as_slice::<T>()?, b.as_slice::<T>()?);
    let sa = broadcast_strides(a.shape(), &out_shape);
    let sb = broadcast_strides(b.shape(), &out_shape);
    let mut out: Vec<U> = alloc::try_with_capacity(&out_shape)?;
    if n == 0 {
        return Ok(Tensor::from_parts(out_shape, out));
    }
    let rank = out_shape.len();
    let inner = out_shape[rank - 1];
    let (ia, ib) = (sa[rank - 1], sb[rank - 1]);
    let mut index = vec![0usize; rank - 1];
    let (mut oa, mut ob) = (0usize, 0usize);
    loop {
        match (ia, ib) {
            (1, 1) => out.extend(
                xs[oa..oa + inner]
                    .iter()
                    .zip(&ys[ob..ob + inner])
                    .map(|(&x, &y)| f(x, y)),
            ),
            (1, 0) => {
                let y = ys[ob];
                out.extend(xs[oa..oa + inner].iter().map(|&x| f(x, y)));
            }
            (0, 1) => {
                let x = xs[oa];
                out.extend(ys[ob..ob + inner].iter().map(|&y| f(x, y)));
            }
            _ => out.extend((0..inner).map(|k| f(xs[oa + k * ia], ys[ob + k * ib]))),
        }
        // Advance the odometer over the outer axes.
        let mut axis = rank - 1;
        loop {
            if axis == 0 {
                return Ok(Tensor::from_parts(out_shape, out));
            }
            axis -= 1;
            index[axis] += 1;
            oa += sa[axis];
            ob += sb[axis];
            if index[axis] < out_shape[axis] {
                break;
            }
            oa -= sa[axis] * out_shape[axis];
            ob -= sb[axis] * out_shape[axis];
            index[axis] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcasting_matches_numpy() {
        // np.arange(6).reshape(2,3) + np.array([[10],[20]]) = [[10,11,12],[23,24,25]]
        let a = Tensor::new(&[2, 3], (0..6).collect::<Vec<i32>>()).unwrap();
        let b = Tensor::new(&[2, 1], vec![10i32, 20]).unwrap();
        let c = zip(a.clone(), b, |x: i32, y| x + y).unwrap();
        assert_eq!(c.shape(), &[2, 3]);
        assert_eq!(c.as_slice::<i32>().unwrap(), &[10, 11, 12, 23, 24, 25]);
        // row vector against a column: [3] + [2,1] -> [2,3]
        let r = Tensor::from([1i32, 2, 3]);
        let col = Tensor::new(&[2, 1], vec![100i32, 200]).unwrap();
        let d = zip(col, r, |x: i32, y| x - y).unwrap();
        assert_eq!(d.as_slice::<i32>().unwrap(), &[99, 98, 97, 199, 198, 197]);
        // scalar on the left, comparison output type
        let e = zip(Tensor::scalar(2i32), a, |x: i32, y| x < y).unwrap();
        assert_eq!(
            e.as_slice::<bool>().unwrap(),
            &[false, false, false, true, true, true]
        );
        assert!(broadcast_shape(&[2, 3], &[4, 3]).is_err());
        assert_eq!(broadcast_shape(&[5, 1, 3], &[4, 1]).unwrap(), vec![5, 4, 3]);
    }

    #[test]
    fn reuses_unique_buffers_only() {
        let a = Tensor::from([1.0f32, 2.0]);
        let keep = a.clone();
        let out = zip(a, Tensor::from([1.0f32, 1.0]), |x: f32, y| x + y).unwrap();
        assert_eq!(keep.as_slice::<f32>().unwrap(), &[1.0, 2.0]);
        assert_eq!(out.as_slice::<f32>().unwrap(), &[2.0, 3.0]);
    }
}

//! Index arithmetic shared by the copying kernels: row-major strides, a strided gather
//! (Transpose, Slice, StridedSlice) and scatter (StridedSliceGrad), a row-block interleave (ConcatV2, Pack, Unpack) and a
//! multi-index walk (Tile, Pad).

use crate::tensor::Element;

/// Row-major strides (in elements) of a shape.
pub(super) fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1usize; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// Calls `f(base, len, step)` for every innermost run of an affine view of shape `shape`:
/// view element `idx` is at address `offset + Σ idx[d] * strides[d]`, and the runs, taken
/// in order, visit the view in row-major order (`len` elements from `base`, `step` apart).
///
/// Size-1 dims are dropped and dims contiguous with the next one are merged, so the runs
/// are as long as possible. Nothing is called for an empty view.
fn for_each_run(
    offset: isize,
    shape: &[usize],
    strides: &[isize],
    mut f: impl FnMut(isize, usize, isize),
) {
    if shape.contains(&0) {
        return;
    }
    let mut dims: Vec<(usize, isize)> = Vec::with_capacity(shape.len());
    for (&d, &s) in shape.iter().zip(strides) {
        if d == 1 {
            continue;
        }
        match dims.last_mut() {
            Some(last) if last.1 == s * d as isize => *last = (last.0 * d, s),
            _ => dims.push((d, s)),
        }
    }
    let Some((inner, inner_stride)) = dims.pop() else {
        f(offset, 1, 0);
        return;
    };
    let mut index = vec![0usize; dims.len()];
    let mut base = offset;
    loop {
        f(base, inner, inner_stride);
        // Advance the odometer over the outer dims.
        let mut axis = dims.len();
        loop {
            if axis == 0 {
                return;
            }
            axis -= 1;
            let (d, s) = dims[axis];
            index[axis] += 1;
            base += s;
            if index[axis] < d {
                break;
            }
            base -= s * d as isize;
            index[axis] = 0;
        }
    }
}

/// Copies an affine view of `src` (see [`for_each_run`]) into a new row-major buffer of
/// shape `out_shape`.
///
/// Callers guarantee that every address is inside `src` (an out-of-bounds address would
/// panic, never read past the buffer).
pub(super) fn strided_gather<T: Element>(
    src: &[T],
    offset: isize,
    out_shape: &[usize],
    strides: &[isize],
) -> Vec<T> {
    let n: usize = out_shape.iter().product();
    let mut out = Vec::with_capacity(n);
    for_each_run(offset, out_shape, strides, |base, len, step| {
        if step == 1 {
            let b = base as usize;
            out.extend_from_slice(&src[b..b + len]);
        } else {
            out.extend((0..len as isize).map(|k| src[(base + k * step) as usize]));
        }
    });
    out
}

/// The inverse of [`strided_gather`]: writes the row-major `src` of shape `shape` into the
/// affine view of `dst` (addresses inside `dst`, guaranteed by the caller).
pub(super) fn strided_scatter<T: Element>(
    dst: &mut [T],
    offset: isize,
    shape: &[usize],
    strides: &[isize],
    src: &[T],
) {
    let mut pos = 0;
    for_each_run(offset, shape, strides, |base, len, step| {
        let run = &src[pos..pos + len];
        if step == 1 {
            let b = base as usize;
            dst[b..b + len].copy_from_slice(run);
        } else {
            for (k, &v) in run.iter().enumerate() {
                dst[(base + k as isize * step) as usize] = v;
            }
        }
        pos += len;
    });
}

/// For each of `outer` rows, appends row `r` of every part in turn, where part `i` is
/// `(data, row_len)` holding `outer` rows of `row_len` elements.
pub(super) fn interleave_rows<T: Element>(parts: &[(&[T], usize)], outer: usize) -> Vec<T> {
    let total: usize = parts.iter().map(|(_, len)| len * outer).sum();
    let mut out = Vec::with_capacity(total);
    for r in 0..outer {
        for &(data, len) in parts {
            out.extend_from_slice(&data[r * len..(r + 1) * len]);
        }
    }
    out
}

/// Calls `f` with every multi-index of `shape` in row-major order (once, with an empty
/// index, for rank 0; never when a dim is 0).
pub(super) fn for_each_index(shape: &[usize], mut f: impl FnMut(&[usize])) {
    if shape.contains(&0) {
        return;
    }
    let mut index = vec![0usize; shape.len()];
    loop {
        f(&index);
        let mut axis = shape.len();
        loop {
            if axis == 0 {
                return;
            }
            axis -= 1;
            index[axis] += 1;
            if index[axis] < shape[axis] {
                break;
            }
            index[axis] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strided_gather_transposes_and_reverses() {
        // np.arange(6).reshape(2,3).T.ravel() = [0,3,1,4,2,5]
        let src: Vec<i32> = (0..6).collect();
        assert_eq!(
            strided_gather(&src, 0, &[3, 2], &[1, 3]),
            vec![0, 3, 1, 4, 2, 5]
        );
        // np.arange(6).reshape(2,3)[::-1, ::-2].ravel() = [5,3,2,0]
        assert_eq!(
            strided_gather(&src, 5, &[2, 2], &[-3, -2]),
            vec![5, 3, 2, 0]
        );
        // contiguous dims merge into one run; size-1 dims are dropped
        assert_eq!(strided_gather(&src, 0, &[1, 2, 1, 3], &[0, 3, 7, 1]), src);
        assert_eq!(strided_gather(&src, 4, &[], &[]), vec![4]);
        assert!(strided_gather(&src, 0, &[2, 0], &[3, 1]).is_empty());
    }

    #[test]
    fn strided_scatter_inverts_the_gather() {
        // z = np.zeros(6); z.reshape(2,3)[::-1, ::-2] = [1,2,3,4] -> [4,0,3,2,0,1]
        let mut dst = vec![0; 6];
        strided_scatter(&mut dst, 5, &[2, 2], &[-3, -2], &[1, 2, 3, 4]);
        assert_eq!(dst, vec![4, 0, 3, 2, 0, 1]);
        // a transposed write and a scalar write
        let mut dst = vec![0; 6];
        strided_scatter(&mut dst, 0, &[3, 2], &[1, 3], &[0, 3, 1, 4, 2, 5]);
        assert_eq!(dst, (0..6).collect::<Vec<i32>>());
        strided_scatter(&mut dst, 4, &[], &[], &[9]);
        assert_eq!(dst, vec![0, 1, 2, 3, 9, 5]);
        strided_scatter(&mut dst, 0, &[0, 2], &[3, 1], &[]);
        assert_eq!(dst, vec![0, 1, 2, 3, 9, 5]);
    }

    #[test]
    fn walks_and_interleaves() {
        let mut seen = Vec::new();
        for_each_index(&[2, 2], |i| seen.push(i.to_vec()));
        assert_eq!(seen, vec![vec![0, 0], vec![0, 1], vec![1, 0], vec![1, 1]]);
        let mut count = 0;
        for_each_index(&[], |_| count += 1);
        for_each_index(&[3, 0], |_| count += 10);
        assert_eq!(count, 1);
        let a = [1, 2, 3, 4];
        let b = [9, 8];
        assert_eq!(
            interleave_rows(&[(&a[..], 2), (&b[..], 1)], 2),
            vec![1, 2, 9, 3, 4, 8]
        );
        assert_eq!(strides(&[2, 3, 4]), vec![12, 4, 1]);
        assert!(strides(&[]).is_empty());
    }
}

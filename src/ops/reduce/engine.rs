//! The CPU reduction engine shared by Sum, Mean, Max, Min, Prod and ArgMax/ArgMin.
//!
//! Axes are validated, size-1 dimensions dropped and adjacent dimensions of the same kind
//! (reduced or kept) merged, so the shape becomes alternating groups. Each pass reduces the
//! innermost remaining reduced group as an `(outer, reduced, inner)` block (one pass per
//! group of adjacent reduced axes; each allocates only its output).
//!
//! Float accumulation happens in the element type (float32 sums in float32, as TensorFlow
//! does) using pairwise summation: a contiguous run is split in halves down to blocks of
//! [`LEAF`] elements, each summed with [`LANES`] interleaved accumulators (the way Eigen's
//! vectorised tree reduction works); a reduced axis that is not innermost is split in halves
//! down to [`LEAF`] rows accumulated row by row. The rounding error therefore grows with
//! `log(n)`, not `n`. Integer sums and products wrap.

use crate::tensor::{num_elements, Element, Number, Tensor};
use crate::{Error, Result};

/// Interleaved accumulators per contiguous run (one SIMD register of float32 on AVX).
const LANES: usize = 8;
/// Elements (contiguous runs) or rows (strided runs) summed directly, without splitting.
const LEAF: usize = 256;

/// One reduction: how elements are lifted into an accumulator, combined and finished.
pub(super) trait Reduction<T: Number>: Copy + Send + Sync + 'static {
    /// The accumulator type (wider than `T` for integer means).
    type Acc: Number;
    /// An element as an accumulator.
    fn lift(x: T) -> Self::Acc;
    /// The accumulator's starting value.
    fn identity() -> Self::Acc;
    /// Combines two partial results (associative).
    fn combine(a: Self::Acc, b: Self::Acc) -> Self::Acc;
    /// The output value from the accumulator of `count` (> 0) elements.
    fn finish(acc: Self::Acc, count: usize) -> T;
    /// The output of a reduction over no elements.
    fn empty() -> T;
}

/// A reduction defined for every numeric dtype.
pub(super) trait AnyReduction:
    Reduction<f32> + Reduction<f64> + Reduction<i32> + Reduction<i64> + Reduction<u8>
{
}
impl<R> AnyReduction for R where
    R: Reduction<f32> + Reduction<f64> + Reduction<i32> + Reduction<i64> + Reduction<u8>
{
}

/// Defines a reduction whose accumulator is the element type.
macro_rules! plain_reduction {
    ($name:ident, $doc:literal, $identity:ident, |$a:ident, $b:ident| $combine:expr) => {
        #[doc = $doc]
        #[derive(Clone, Copy, Default)]
        pub(super) struct $name;
        impl<T: Number> Reduction<T> for $name {
            type Acc = T;
            #[inline(always)]
            fn lift(x: T) -> T {
                x
            }
            #[inline(always)]
            fn identity() -> T {
                T::$identity
            }
            #[inline(always)]
            fn combine($a: T, $b: T) -> T {
                $combine
            }
            #[inline(always)]
            fn finish(acc: T, _count: usize) -> T {
                acc
            }
            fn empty() -> T {
                T::$identity
            }
        }
    };
}
plain_reduction!(
    Sum,
    "Sum (wrapping for integers); empty sum 0.",
    ZERO,
    |a, b| a.add(b)
);
plain_reduction!(
    Prod,
    "Product (wrapping for integers); empty product 1.",
    ONE,
    |a, b| a.mul(b)
);
plain_reduction!(
    Max,
    "Maximum, NaN propagating; empty: -inf for floats, the minimum for integers.",
    LOWEST,
    |a, b| a.max_of(b)
);
plain_reduction!(
    Min,
    "Minimum, NaN propagating; empty: +inf for floats, the maximum for integers.",
    HIGHEST,
    |a, b| a.min_of(b)
);

/// Mean: floats sum in their own type and divide; integers sum in int64 (as TensorFlow
/// does for int32 and uint8, so `mean([i32::MAX, i32::MAX])` does not overflow) and divide
/// truncating toward zero. An empty mean is NaN for floats and 0 for integers.
#[derive(Clone, Copy, Default)]
pub(super) struct Mean;

/// Element types with a mean.
pub(super) trait MeanElem: Number {
    /// The running-sum type.
    type Acc: Number;
    /// An element as a running-sum value.
    fn lift(self) -> Self::Acc;
    /// `sum / count` in this type.
    fn mean(sum: Self::Acc, count: usize) -> Self;
    /// The mean of no elements.
    const EMPTY: Self;
}

macro_rules! mean_float {
    ($t:ty) => {
        impl MeanElem for $t {
            type Acc = $t;
            fn lift(self) -> $t {
                self
            }
            fn mean(sum: $t, count: usize) -> $t {
                sum / count as $t
            }
            const EMPTY: $t = <$t>::NAN;
        }
    };
}
mean_float!(f32);
mean_float!(f64);

macro_rules! mean_int {
    ($t:ty) => {
        impl MeanElem for $t {
            type Acc = i64;
            fn lift(self) -> i64 {
                self as i64
            }
            fn mean(sum: i64, count: usize) -> $t {
                let count = i64::try_from(count).unwrap_or(i64::MAX);
                // The mean of values of this type fits it, except int64 sums that wrapped.
                sum.wrapping_div(count) as $t
            }
            const EMPTY: $t = 0;
        }
    };
}
mean_int!(i32);
mean_int!(i64);
mean_int!(u8);

impl<T: MeanElem> Reduction<T> for Mean {
    type Acc = T::Acc;
    #[inline(always)]
    fn lift(x: T) -> T::Acc {
        x.lift()
    }
    #[inline(always)]
    fn identity() -> T::Acc {
        <T::Acc as Number>::ZERO
    }
    #[inline(always)]
    fn combine(a: T::Acc, b: T::Acc) -> T::Acc {
        a.add(b)
    }
    fn finish(acc: T::Acc, count: usize) -> T {
        T::mean(acc, count)
    }
    fn empty() -> T {
        T::EMPTY
    }
}

/// Which dimensions of a rank-`rank` tensor `axes` names; errors (in TensorFlow's words)
/// on axes outside `[-rank, rank)` and on duplicates.
pub(crate) fn reduced_axes(axes: &[i64], rank: usize) -> std::result::Result<Vec<bool>, String> {
    let mut reduced = vec![false; rank];
    let r = rank as i64;
    for &a in axes {
        if a < -r || a >= r {
            return Err(format!(
                "Invalid reduction dimension ({a} for input with {rank} dimension(s)); \
                 axes must be in [-{rank}, {rank})"
            ));
        }
        let i = (if a < 0 { a + r } else { a }) as usize;
        if reduced[i] {
            return Err(format!(
                "Invalid reduction arguments: Axes contains duplicate dimension: {i}"
            ));
        }
        reduced[i] = true;
    }
    Ok(reduced)
}

/// The shape left after reducing: reduced dims dropped, or kept as 1 with `keep_dims`.
pub(crate) fn reduced_shape<D: Copy>(
    dims: &[D],
    reduced: &[bool],
    keep_dims: bool,
    one: D,
) -> Vec<D> {
    dims.iter()
        .zip(reduced)
        .filter_map(|(&d, &r)| match (r, keep_dims) {
            (false, _) => Some(d),
            (true, true) => Some(one),
            (true, false) => None,
        })
        .collect()
}

/// Reduces `x` over `axes` with `R`.
pub(super) fn reduce<T: Number, R: Reduction<T>>(
    x: Tensor,
    axes: &[i64],
    keep_dims: bool,
) -> Result<Tensor> {
    let shape = x.shape().to_vec();
    let reduced = reduced_axes(axes, shape.len()).map_err(Error::invalid)?;
    let out_shape = reduced_shape(&shape, &reduced, keep_dims, 1);
    let count: usize = shape
        .iter()
        .zip(&reduced)
        .filter(|(_, &r)| r)
        .map(|(&d, _)| d)
        .product();
    if num_elements(&out_shape) == 0 {
        return Ok(Tensor::from_parts(out_shape, Vec::<T>::new()));
    }
    if count == 0 {
        return Tensor::try_full(&out_shape, R::empty());
    }
    if count == 1 {
        // Nothing to combine: the elements are the result (no copy).
        return x.reshape(&out_shape);
    }
    // Alternating groups of merged (size, reduced?) dimensions, size-1 dims left out.
    let mut groups: Vec<(usize, bool)> = Vec::new();
    for (&n, &r) in shape.iter().zip(&reduced) {
        match groups.last_mut() {
            _ if n == 1 => {}
            Some((m, gr)) if *gr == r => *m *= n,
            _ => groups.push((n, r)),
        }
    }
    let src = x.as_slice::<T>()?;
    let mut acc: Option<Vec<R::Acc>> = None;
    while let Some(j) = groups.iter().rposition(|g| g.1) {
        let outer = groups[..j].iter().map(|g| g.0).product();
        let inner = groups[j + 1..].iter().map(|g| g.0).product();
        let block = Block {
            outer,
            reduced: groups[j].0,
            inner,
        };
        acc = Some(match &acc {
            None => block.reduce(src, R::lift, R::combine, R::identity()),
            Some(prev) => block.reduce(prev, |a| a, R::combine, R::identity()),
        });
        groups.remove(j);
    }
    // count > 1 means some group was reduced, so `acc` is set.
    let acc = acc.ok_or_else(|| Error::invalid("internal error: nothing was reduced"))?;
    let out: Vec<T> = acc.into_iter().map(|a| R::finish(a, count)).collect();
    Ok(Tensor::from_parts(out_shape, out))
}

/// A row-major `[outer, reduced, inner]` view reduced over its middle axis.
#[derive(Clone, Copy)]
struct Block {
    outer: usize,
    reduced: usize,
    inner: usize,
}

impl Block {
    /// Returns the `[outer, inner]` results (`reduced` >= 1 and `src` holds the block).
    fn reduce<I: Copy, A: Copy>(
        self,
        src: &[I],
        lift: impl Fn(I) -> A + Copy,
        combine: impl Fn(A, A) -> A + Copy,
        identity: A,
    ) -> Vec<A> {
        let mut out = vec![identity; self.outer * self.inner];
        if self.inner == 1 {
            for (o, row) in out.iter_mut().zip(src.chunks_exact(self.reduced)) {
                *o = reduce_run(row, lift, combine, identity);
            }
        } else {
            let mut depth = 0;
            let mut rows = self.reduced;
            while rows > LEAF {
                rows = rows.div_ceil(2);
                depth += 1;
            }
            let mut scratch = vec![identity; self.inner * depth];
            let block = self.reduced * self.inner;
            for (o, b) in out
                .chunks_exact_mut(self.inner)
                .zip(src.chunks_exact(block))
            {
                reduce_rows(b, o, &mut scratch, lift, combine, identity);
            }
        }
        out
    }
}

/// Pairwise reduction of a contiguous run.
fn reduce_run<I: Copy, A: Copy>(
    run: &[I],
    lift: impl Fn(I) -> A + Copy,
    combine: impl Fn(A, A) -> A + Copy,
    identity: A,
) -> A {
    if run.len() > LEAF {
        let (a, b) = run.split_at(run.len() / 2);
        return combine(
            reduce_run(a, lift, combine, identity),
            reduce_run(b, lift, combine, identity),
        );
    }
    let mut lanes = [identity; LANES];
    let chunks = run.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for (l, &x) in lanes.iter_mut().zip(c) {
            *l = combine(*l, lift(x));
        }
    }
    let mut tail = identity;
    for &x in rest {
        tail = combine(tail, lift(x));
    }
    // Tree over the lanes: ((0+1)+(2+3)) + ((4+5)+(6+7)).
    let mut width = LANES;
    while width > 1 {
        width /= 2;
        for i in 0..width {
            lanes[i] = combine(lanes[2 * i], lanes[2 * i + 1]);
        }
    }
    combine(lanes[0], tail)
}

/// Pairwise reduction of the rows of `block` (rows of `acc.len()` elements) into `acc`,
/// which starts at the identity; `scratch` holds one row per level of splitting.
fn reduce_rows<I: Copy, A: Copy>(
    block: &[I],
    acc: &mut [A],
    scratch: &mut [A],
    lift: impl Fn(I) -> A + Copy,
    combine: impl Fn(A, A) -> A + Copy,
    identity: A,
) {
    let inner = acc.len();
    let rows = block.len() / inner;
    if rows <= LEAF || scratch.len() < inner {
        for row in block.chunks_exact(inner) {
            for (a, &x) in acc.iter_mut().zip(row) {
                *a = combine(*a, lift(x));
            }
        }
        return;
    }
    let (first, second) = block.split_at(rows / 2 * inner);
    reduce_rows(first, acc, scratch, lift, combine, identity);
    let (tmp, rest) = scratch.split_at_mut(inner);
    tmp.fill(identity);
    reduce_rows(second, tmp, rest, lift, combine, identity);
    for (a, &t) in acc.iter_mut().zip(tmp.iter()) {
        *a = combine(*a, t);
    }
}

/// Element types ArgMax/ArgMin accept, with the sentinels the search starts from.
pub(super) trait Ordered: Element {
    /// Below every value but NaN.
    const BOTTOM: Self;
    /// Above every value but NaN.
    const TOP: Self;
}

impl<T: Number> Ordered for T {
    const BOTTOM: T = T::LOWEST;
    const TOP: T = T::HIGHEST;
}

impl Ordered for bool {
    const BOTTOM: bool = false;
    const TOP: bool = true;
}

/// Index of the largest (`max`) or smallest element along `axis`, the first one on ties.
/// As in TensorFlow, the search starts from -inf (+inf) at index 0 and only a strictly
/// better value moves it, so NaN never wins and an all-NaN run gives 0.
pub(super) fn arg_reduce<T: Ordered, I: Element>(
    x: &Tensor,
    axis: i64,
    max: bool,
) -> Result<Tensor> {
    let shape = x.shape();
    let rank = shape.len() as i64;
    if axis < -rank || axis >= rank {
        return Err(Error::invalid(format!(
            "Expected dimension in the range [{}, {rank}), but got {axis}",
            -rank
        )));
    }
    let axis = (if axis < 0 { axis + rank } else { axis }) as usize;
    let out_shape: Vec<usize> = shape
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != axis)
        .map(|(_, &d)| d)
        .collect();
    let (outer, n, inner) = (
        num_elements(&shape[..axis]),
        shape[axis],
        num_elements(&shape[axis + 1..]),
    );
    if num_elements(&out_shape) == 0 {
        return Ok(Tensor::from_parts(out_shape, Vec::<I>::new()));
    }
    if n == 0 {
        return Err(Error::invalid(format!(
            "Reduction axis {axis} is empty in shape {shape:?}"
        )));
    }
    if I::from_i64(n as i64 - 1).to_i64() != n as i64 - 1 {
        return Err(Error::invalid(format!(
            "dimension {axis} has {n} elements, too many for output_type {}",
            I::DTYPE
        )));
    }
    let better = move |v: T, best: T| if max { v > best } else { v < best };
    let start = if max { T::BOTTOM } else { T::TOP };
    let src = x.as_slice::<T>()?;
    let mut out: Vec<I> = Vec::with_capacity(outer * inner);
    if inner == 1 {
        for row in src.chunks_exact(n) {
            let (mut best, mut index) = (start, 0);
            for (j, &v) in row.iter().enumerate() {
                if better(v, best) {
                    best = v;
                    index = j;
                }
            }
            out.push(I::from_i64(index as i64));
        }
    } else {
        let mut best = vec![start; inner];
        let mut index = vec![0usize; inner];
        for block in src.chunks_exact(n * inner) {
            best.fill(start);
            index.fill(0);
            for (r, row) in block.chunks_exact(inner).enumerate() {
                for ((b, i), &v) in best.iter_mut().zip(index.iter_mut()).zip(row) {
                    if better(v, *b) {
                        *b = v;
                        *i = r;
                    }
                }
            }
            out.extend(index.iter().map(|&i| I::from_i64(i as i64)));
        }
    }
    Ok(Tensor::from_parts(out_shape, out))
}

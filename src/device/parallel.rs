//! Splitting a kernel's output over a few threads (intra-op parallelism for matrix
//! products, convolutions and pooling).

use super::workers::run_parts;
use crate::tensor::Number;
use std::mem::MaybeUninit;
use std::ops::Range;
use std::sync::Mutex;

/// Elementwise work (loads, compares, adds) below which a loop stays on the calling
/// thread: starting a thread costs more than it saves. The helpers stay awake between
/// jobs (see [`run_parts`]), so a loop of some 100 µs is worth splitting: a small CNN's
/// second pooling layer and its gradient (~0.4 M compares each, on its training step's
/// critical path) are.
pub const MIN_LOOP_WORK: usize = 1 << 18;

/// Multiply-adds below which a matrix product (or a batch of them, a convolution) is not
/// worth splitting and runs on the calling thread: handing it to other threads costs more
/// than it saves. The one threshold for "a product worth splitting".
pub const MIN_PRODUCT_WORK: usize = 1 << 21;

/// How many threads a kernel should use for `work` operations split into `units`
/// independent pieces, given `threads` available; `min_work` ([`MIN_LOOP_WORK`] or
/// [`MIN_PRODUCT_WORK`]) is the size below which one thread is best.
pub fn threads_for(work: usize, min_work: usize, units: usize, threads: usize) -> usize {
    if work < min_work {
        1
    } else {
        threads.min(units).max(1)
    }
}

/// The `part`-th of `parts` near-equal consecutive ranges covering `0..n`.
pub fn split_range(n: usize, part: usize, parts: usize) -> Range<usize> {
    let parts = parts.max(1);
    let (base, rem) = (n / parts, n % parts);
    let start = part * base + part.min(rem);
    let len = base + usize::from(part < rem);
    start..start + len
}

/// Runs `f(unit_range, chunk)` over `out`, viewed as `out.len() / unit_len` units of
/// `unit_len` elements, in `threads` parts on the calling thread and the intra-op helpers
/// (see [`run_parts`]). Each call gets a consecutive range of unit indices and exactly
/// those units' elements.
pub fn for_each_units<T, F>(out: &mut [T], unit_len: usize, threads: usize, f: F)
where
    T: Send,
    F: Fn(Range<usize>, &mut [T]) + Sync,
{
    let units = out.len().checked_div(unit_len).unwrap_or(0);
    let threads = threads.min(units);
    if threads <= 1 {
        f(0..units, out);
        return;
    }
    let mut rest = out;
    let mut chunks = Vec::with_capacity(threads);
    for part in 0..threads {
        let range = split_range(units, part, threads);
        let (chunk, tail) = std::mem::take(&mut rest).split_at_mut(range.len() * unit_len);
        rest = tail;
        chunks.push((range, chunk));
    }
    for_each_piece(chunks, |(range, chunk)| f(range, chunk));
}

/// A new vector of `units × unit_len` elements written by `f(unit_range, chunk)` as
/// [`for_each_units`] calls it, each chunk zeroed by the thread that then fills it, right
/// before it does: no serial pass over the whole buffer ahead of the parallel work, and
/// the zeros are still in cache when `f` overwrites or adds to them.
pub fn zeroed_units<T, F>(units: usize, unit_len: usize, threads: usize, f: F) -> Vec<T>
where
    T: Copy + Default + Send,
    F: Fn(Range<usize>, &mut [T]) + Sync,
{
    zeroed_blocks(units, unit_len, units, threads, |(), range, chunk| {
        f(range, chunk)
    })
}

/// [`zeroed_units`] with each thread's chunk handed to `f(scratch, unit_range, block)` in
/// turn as blocks of at most `block_units` units, each zeroed right before `f` fills it:
/// a block small enough for the cache is zeroed, written and finished there, rather than
/// the whole chunk being zeroed in memory first and written again later. `scratch` (made
/// by `Default` once per thread) is for what `f` reuses from block to block.
pub fn zeroed_blocks<T, S, F>(
    units: usize,
    unit_len: usize,
    block_units: usize,
    threads: usize,
    f: F,
) -> Vec<T>
where
    T: Copy + Default + Send,
    S: Default,
    F: Fn(&mut S, Range<usize>, &mut [T]) + Sync,
{
    let len = units
        .checked_mul(unit_len)
        .expect("callers size their outputs with checked arithmetic first");
    let mut out: Vec<T> = Vec::with_capacity(len);
    let block_len = block_units.max(1).saturating_mul(unit_len).max(1);
    for_each_units(
        &mut out.spare_capacity_mut()[..len],
        unit_len,
        threads,
        |range, chunk| {
            let mut scratch = S::default();
            if chunk.is_empty() {
                return f(&mut scratch, range, &mut []);
            }
            for (i, block) in chunk.chunks_mut(block_len).enumerate() {
                block.fill(MaybeUninit::new(T::default()));
                let first = range.start + i * block_units.max(1);
                let block_range = first..first + block.len() / unit_len.max(1);
                // SAFETY: every element of `block` was initialized just above, and
                // `MaybeUninit<T>` has the layout of `T`.
                f(&mut scratch, block_range, unsafe {
                    &mut *(block as *mut [MaybeUninit<T>] as *mut [T])
                })
            }
        },
    );
    // SAFETY: the chunks cover all `len` elements (`for_each_units` hands out every unit
    // once, and `len` is a whole number of units), each block of each initialized by its
    // call above.
    unsafe { out.set_len(len) };
    out
}

/// A new vector of `units × unit_len` elements written by `f(unit_range, chunk)` as
/// [`for_each_units`] calls it, on uninitialized chunks: for outputs whose every element
/// a kernel writes (pooling windows that tile their input), which then need no zeroing.
///
/// # Safety
/// `f` initializes every element of each chunk it is given.
pub unsafe fn written_units<T, F>(units: usize, unit_len: usize, threads: usize, f: F) -> Vec<T>
where
    T: Send,
    F: Fn(Range<usize>, &mut [MaybeUninit<T>]) + Sync,
{
    let len = units
        .checked_mul(unit_len)
        .expect("callers size their outputs with checked arithmetic first");
    let mut out: Vec<T> = Vec::with_capacity(len);
    for_each_units(&mut out.spare_capacity_mut()[..len], unit_len, threads, f);
    // SAFETY: the chunks cover all `len` elements, and the caller vouches that `f`
    // initialized each.
    unsafe { out.set_len(len) };
    out
}

/// The elementwise sum of `parts` vectors of `len` elements, part `p` made by `f(p, acc)`
/// adding its share of a reduction into the zeroed `acc`; the parts run on up to
/// `threads` threads, and their sums are added in part order (so the result depends only
/// on `parts`, not on the threads).
pub fn sum_of_parts<T, F>(len: usize, parts: usize, threads: usize, f: F) -> Vec<T>
where
    T: Number,
    F: Fn(usize, &mut [T]) + Sync,
{
    let parts = parts.max(1);
    let mut partials = zeroed_units(parts, len, threads.min(parts), |range, chunk| {
        for (part, acc) in range.zip(chunk.chunks_exact_mut(len.max(1))) {
            f(part, acc);
        }
    });
    let (first, rest) = partials.split_at_mut(len);
    for part in rest.chunks_exact(len.max(1)) {
        first.iter_mut().zip(part).for_each(|(x, &y)| *x = x.add(y));
    }
    partials.truncate(len);
    partials
}

/// Runs `f(piece)` once for each of `pieces` (disjoint parts of one output), in turn on
/// the calling thread and the intra-op helpers (see [`run_parts`]).
pub fn for_each_piece<P: Send>(pieces: Vec<P>, f: impl Fn(P) + Sync) {
    // Each part takes its own piece out of its slot.
    let slots: Vec<Mutex<Option<P>>> = pieces.into_iter().map(|p| Mutex::new(Some(p))).collect();
    run_parts(slots.len(), &|part| {
        let taken = slots[part].lock().map(|mut slot| slot.take());
        if let Ok(Some(piece)) = taken {
            f(piece);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_everything_once() {
        let parts: Vec<_> = (0..3).map(|p| split_range(10, p, 3)).collect();
        assert_eq!(parts, vec![0..4, 4..7, 7..10]);
        assert_eq!(split_range(2, 2, 3), 2..2);
    }

    #[test]
    fn every_unit_is_visited_with_its_own_elements() {
        let mut out = vec![0usize; 7 * 3];
        for_each_units(&mut out, 3, 4, |units, chunk| {
            for (u, c) in units.zip(chunk.chunks_mut(3)) {
                c.fill(u + 1);
            }
        });
        let want: Vec<usize> = (0..7).flat_map(|u| [u + 1; 3]).collect();
        assert_eq!(out, want);
        // zero-length units: called once with nothing to do
        let mut empty: Vec<u8> = Vec::new();
        for_each_units(&mut empty, 0, 4, |units, chunk| {
            assert!(units.is_empty() && chunk.is_empty())
        });
    }

    #[test]
    fn zeroed_units_start_at_zero_and_keep_what_each_unit_wrote() {
        for threads in [1, 4] {
            let out: Vec<u32> = zeroed_units(7, 3, threads, |units, chunk| {
                assert!(chunk.iter().all(|&v| v == 0));
                for (u, c) in units.zip(chunk.chunks_mut(3)) {
                    c[1] = u as u32 + 1;
                }
            });
            let want: Vec<u32> = (0..7).flat_map(|u| [0, u + 1, 0]).collect();
            assert_eq!(out, want);
        }
        let empty: Vec<f32> = zeroed_units(0, 5, 2, |_, chunk| assert!(chunk.is_empty()));
        assert!(empty.is_empty());
    }

    #[test]
    fn zeroed_blocks_hand_out_every_unit_once_in_blocks_of_at_most_the_size() {
        for threads in [1, 2, 3] {
            let seen = Mutex::new(Vec::new());
            let out: Vec<u32> = zeroed_blocks(10, 2, 3, threads, |(), units, block| {
                assert!(units.len() <= 3 && block.len() == units.len() * 2);
                assert!(block.iter().all(|&v| v == 0));
                for (u, c) in units.clone().zip(block.chunks_mut(2)) {
                    c[0] = u as u32 + 1;
                }
                seen.lock().unwrap().push(units);
            });
            let want: Vec<u32> = (0..10).flat_map(|u| [u + 1, 0]).collect();
            assert_eq!(out, want, "{threads} threads");
            let mut seen = seen.into_inner().unwrap();
            seen.sort_by_key(|r| r.start);
            let units: Vec<usize> = seen.into_iter().flatten().collect();
            assert_eq!(units, (0..10).collect::<Vec<_>>());
        }
    }

    #[test]
    fn written_units_keep_what_each_unit_wrote() {
        for threads in [1, 3] {
            // SAFETY: every element of every chunk is written.
            let out: Vec<u32> = unsafe {
                written_units(7, 2, threads, |units, chunk| {
                    for (u, c) in units.zip(chunk.chunks_mut(2)) {
                        c[0] = MaybeUninit::new(u as u32);
                        c[1] = MaybeUninit::new(10 * u as u32);
                    }
                })
            };
            let want: Vec<u32> = (0..7).flat_map(|u| [u, 10 * u]).collect();
            assert_eq!(out, want, "{threads} threads");
        }
    }

    #[test]
    fn sums_of_parts_add_every_part_once() {
        // Part p adds p + 1 to element i, for 5 parts: (1 + 2 + 3 + 4 + 5) · (i + 1).
        for threads in [1, 2, 8] {
            let sum: Vec<i64> = sum_of_parts(3, 5, threads, |p, acc| {
                for (i, a) in acc.iter_mut().enumerate() {
                    *a += (p as i64 + 1) * (i as i64 + 1);
                }
            });
            assert_eq!(sum, vec![15, 30, 45]);
        }
        assert!(sum_of_parts::<f32, _>(0, 3, 2, |_, _| {}).is_empty());
    }
}

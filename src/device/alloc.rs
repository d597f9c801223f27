//! A caching allocator for device memory, after TensorFlow's BFC ("best fit with
//! coalescing") allocator: memory is taken from the driver in large regions, which are cut
//! into chunks; a freed chunk goes back to a free list (binned by size class) and merges
//! with free neighbours, and the next request of a fitting size reuses it. Once a training
//! loop has run one step, every later step finds its chunks in the free lists: no driver
//! allocation per step.
//!
//! The bookkeeping only sees addresses and sizes; the driver calls are behind
//! [`RawMemory`], so the allocator is tested on the host with a mock backend and the CUDA
//! device implements the trait with `cuMemAlloc`/`cuMemFree`.
//!
//! Reuse is safe for a device whose kernels all run on one stream (a session's GPU device):
//! a chunk freed on the host while kernels that read it are still queued is handed out
//! again only to work queued after them on the same stream.

use crate::{Error, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

/// The raw allocator under the cache: the device driver's allocate and free.
pub trait RawMemory: Send {
    /// Allocates `bytes` (a multiple of [`ALIGNMENT`]) and returns the address; an error
    /// when the device is out of memory.
    fn allocate(&mut self, bytes: usize) -> Result<u64>;
    /// Frees an address `allocate` returned.
    fn free(&mut self, address: u64);
}

/// Every chunk's size and address are multiples of this (bytes).
pub const ALIGNMENT: usize = 256;
/// The first region taken from the driver; each new region doubles it, up to
/// [`MAX_REGION`] (a request larger than the region size gets a region of its own size).
pub const MIN_REGION: usize = 2 << 20;
/// The largest region size growth reaches.
pub const MAX_REGION: usize = 1 << 30;
/// Number of size classes: bin `b` holds free chunks of at least `ALIGNMENT << b` bytes.
const BINS: usize = 21;
/// A free chunk larger than a request is split unless the rest is small: it is split when
/// it is at least twice the request or the rest reaches this (TensorFlow's rule).
const MAX_INTERNAL_FRAGMENTATION: usize = 128 << 20;

/// What the allocator has done so far (TensorFlow's `AllocatorStats`), in bytes of chunks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AllocatorStats {
    /// Bytes of chunks handed out and not yet freed.
    pub bytes_in_use: usize,
    /// The most `bytes_in_use` ever reached.
    pub peak_bytes_in_use: usize,
    /// Bytes held from the driver (every region).
    pub bytes_reserved: usize,
    /// Requests served.
    pub num_allocs: u64,
    /// Regions taken from the driver.
    pub num_raw_allocs: u64,
    /// Regions given back to the driver.
    pub num_raw_frees: u64,
    /// The largest request, in bytes.
    pub largest_alloc: usize,
}

#[derive(Debug)]
struct Chunk {
    size: usize,
    region: u64,
    free: bool,
}

struct State<R> {
    raw: R,
    /// Every chunk by address (regions are contiguous runs of chunks).
    chunks: BTreeMap<u64, Chunk>,
    /// Regions: start address → size.
    regions: BTreeMap<u64, usize>,
    /// Free chunks per size class, ordered by (size, address): best fit is the first entry
    /// at or above the request in the first bin that has one.
    bins: Vec<BTreeSet<(usize, u64)>>,
    next_region: usize,
    stats: AllocatorStats,
}

/// A BFC-style caching allocator over a [`RawMemory`]. Thread-safe.
pub struct CachingAllocator<R: RawMemory> {
    state: Mutex<State<R>>,
}

/// The size class of a chunk size.
fn bin_of(size: usize) -> usize {
    let units = (size / ALIGNMENT).max(1);
    (usize::BITS - 1 - units.leading_zeros()).min(BINS as u32 - 1) as usize
}

/// `bytes` rounded up to the alignment (0 becomes one unit).
fn rounded(bytes: usize) -> Option<usize> {
    Some(bytes.max(1).checked_add(ALIGNMENT - 1)? / ALIGNMENT * ALIGNMENT)
}

impl<R: RawMemory> CachingAllocator<R> {
    /// An allocator taking its regions from `raw`.
    pub fn new(raw: R) -> Self {
        CachingAllocator {
            state: Mutex::new(State {
                raw,
                chunks: BTreeMap::new(),
                regions: BTreeMap::new(),
                bins: (0..BINS).map(|_| BTreeSet::new()).collect(),
                next_region: MIN_REGION,
                stats: AllocatorStats::default(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<R>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The address of a chunk of at least `bytes` bytes (aligned to [`ALIGNMENT`]), from
    /// the free lists when one fits, else from a new region. Out of memory, the free
    /// regions are given back to the driver and the request is tried once more at its
    /// own size; then it is an error naming the request and what is in use.
    pub fn allocate(&self, bytes: usize) -> Result<u64> {
        let size = rounded(bytes)
            .ok_or_else(|| Error::invalid(format!("cannot allocate {bytes} bytes")))?;
        let mut s = self.lock();
        let address = match s.take_free(size) {
            Some(a) => a,
            None => s.grow(size)?,
        };
        s.stats.num_allocs += 1;
        s.stats.largest_alloc = s.stats.largest_alloc.max(bytes);
        let used = s.chunks[&address].size;
        s.stats.bytes_in_use += used;
        s.stats.peak_bytes_in_use = s.stats.peak_bytes_in_use.max(s.stats.bytes_in_use);
        Ok(address)
    }

    /// Returns a chunk [`allocate`](Self::allocate) handed out; it merges with its free
    /// neighbours. An address it did not hand out (or already freed) is ignored and
    /// reported as `false`.
    pub fn free(&self, address: u64) -> bool {
        let mut s = self.lock();
        match s.chunks.get_mut(&address) {
            Some(c) if !c.free => {
                c.free = true;
                let size = c.size;
                s.stats.bytes_in_use -= size;
                s.release_chunk(address);
                true
            }
            _ => false,
        }
    }

    /// The statistics so far.
    pub fn stats(&self) -> AllocatorStats {
        self.lock().stats
    }

    /// Gives every region with nothing in use back to the driver; returns the bytes freed.
    pub fn release_free_regions(&self) -> usize {
        self.lock().release_free_regions()
    }
}

impl<R: RawMemory> Drop for CachingAllocator<R> {
    fn drop(&mut self) {
        let s = self.state.get_mut().unwrap_or_else(|p| p.into_inner());
        for (&start, _) in std::mem::take(&mut s.regions).iter() {
            s.raw.free(start);
        }
    }
}

impl<R: RawMemory> State<R> {
    /// The best-fitting free chunk for `size`, split when much larger, marked in use.
    fn take_free(&mut self, size: usize) -> Option<u64> {
        let (size_found, address) =
            (bin_of(size)..BINS).find_map(|b| self.bins[b].range((size, 0)..).next().copied())?;
        self.bins[bin_of(size_found)].remove(&(size_found, address));
        let chunk = self.chunks.get_mut(&address)?;
        chunk.free = false;
        if size_found >= 2 * size || size_found - size >= MAX_INTERNAL_FRAGMENTATION {
            chunk.size = size;
            let region = chunk.region;
            let rest = address + size as u64;
            self.chunks.insert(
                rest,
                Chunk {
                    size: size_found - size,
                    region,
                    free: true,
                },
            );
            self.bins[bin_of(size_found - size)].insert((size_found - size, rest));
        }
        Some(address)
    }

    /// Takes a new region from the driver and serves `size` from it.
    fn grow(&mut self, size: usize) -> Result<u64> {
        let region_size = size.max(self.next_region);
        let (start, region_size) = match self.raw.allocate(region_size) {
            Ok(a) => (a, region_size),
            Err(first) => {
                // Out of memory: give back what is cached, then try the request's own size.
                self.release_free_regions();
                match self.raw.allocate(size) {
                    Ok(a) => (a, size),
                    Err(_) => {
                        return Err(Error::ResourceExhausted(format!(
                            "device out of memory allocating {size} bytes ({} in use, {} \
                             reserved): {first}",
                            self.stats.bytes_in_use, self.stats.bytes_reserved
                        )))
                    }
                }
            }
        };
        if region_size == self.next_region {
            self.next_region = (self.next_region * 2).min(MAX_REGION);
        }
        self.regions.insert(start, region_size);
        self.stats.bytes_reserved += region_size;
        self.stats.num_raw_allocs += 1;
        self.chunks.insert(
            start,
            Chunk {
                size: region_size,
                region: start,
                free: true,
            },
        );
        self.bins[bin_of(region_size)].insert((region_size, start));
        self.take_free(size)
            .ok_or_else(|| Error::Internal("allocator: a new region did not fit".into()))
    }

    /// Merges the freed chunk at `address` with free neighbours of its region and files
    /// the result in its bin.
    fn release_chunk(&mut self, mut address: u64) {
        let region = self.chunks[&address].region;
        let mut size = self.chunks[&address].size;
        // The next chunk, if free and in the same region.
        let next = address + size as u64;
        if let Some(n) = self.chunks.get(&next) {
            if n.free && n.region == region {
                let n_size = n.size;
                self.bins[bin_of(n_size)].remove(&(n_size, next));
                self.chunks.remove(&next);
                size += n_size;
            }
        }
        // The previous chunk, if free and in the same region.
        if let Some((&p_addr, p)) = self.chunks.range(..address).next_back() {
            if p.free && p.region == region && p_addr + p.size as u64 == address {
                let p_size = p.size;
                self.bins[bin_of(p_size)].remove(&(p_size, p_addr));
                self.chunks.remove(&address);
                address = p_addr;
                size += p_size;
            }
        }
        if let Some(c) = self.chunks.get_mut(&address) {
            c.size = size;
        }
        self.bins[bin_of(size)].insert((size, address));
    }

    fn release_free_regions(&mut self) -> usize {
        let empty: Vec<(u64, usize)> = self
            .regions
            .iter()
            .filter(|&(start, &size)| {
                self.chunks
                    .get(start)
                    .is_some_and(|c| c.free && c.size == size)
            })
            .map(|(&a, &s)| (a, s))
            .collect();
        let mut freed = 0;
        for (start, size) in empty {
            self.bins[bin_of(size)].remove(&(size, start));
            self.chunks.remove(&start);
            self.regions.remove(&start);
            self.raw.free(start);
            self.stats.bytes_reserved -= size;
            self.stats.num_raw_frees += 1;
            freed += size;
        }
        freed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex as StdMutex};

    /// A fake driver: hands out addresses from a counter (gaps between regions, so regions
    /// are never adjacent), with a capacity, and logs its calls.
    #[derive(Clone, Default)]
    struct Mock {
        log: Arc<StdMutex<MockLog>>,
    }

    #[derive(Default)]
    struct MockLog {
        next: u64,
        live: BTreeMap<u64, usize>,
        capacity: usize,
        allocs: usize,
        frees: usize,
    }

    impl Mock {
        fn with_capacity(capacity: usize) -> Mock {
            let m = Mock::default();
            {
                let mut l = m.log.lock().unwrap();
                l.capacity = capacity;
                l.next = 1 << 40;
            }
            m
        }
        fn live_bytes(&self) -> usize {
            self.log.lock().unwrap().live.values().sum()
        }
    }

    impl RawMemory for Mock {
        fn allocate(&mut self, bytes: usize) -> Result<u64> {
            let mut l = self.log.lock().unwrap();
            assert_eq!(bytes % ALIGNMENT, 0);
            if l.live.values().sum::<usize>() + bytes > l.capacity {
                return Err(Error::Internal("mock out of memory".into()));
            }
            let a = l.next;
            l.next += bytes as u64 + (1 << 30);
            l.live.insert(a, bytes);
            l.allocs += 1;
            Ok(a)
        }
        fn free(&mut self, address: u64) {
            let mut l = self.log.lock().unwrap();
            assert!(l.live.remove(&address).is_some(), "double free");
            l.frees += 1;
        }
    }

    /// One training step's allocations and frees (activations freed in reverse).
    fn step(a: &CachingAllocator<Mock>, sizes: &[usize]) -> Vec<u64> {
        let addrs: Vec<u64> = sizes.iter().map(|&s| a.allocate(s).unwrap()).collect();
        for &x in addrs.iter().rev() {
            assert!(a.free(x));
        }
        addrs
    }

    #[test]
    fn steps_after_the_first_take_nothing_from_the_driver() {
        let mock = Mock::with_capacity(1 << 32);
        let a = CachingAllocator::new(mock.clone());
        let sizes = [
            784 * 256 * 4,
            1024 * 256 * 4,
            1024 * 1024 * 4,
            40,
            1,
            3 << 20,
        ];
        step(&a, &sizes);
        let after_first = a.stats();
        assert!(after_first.num_raw_allocs >= 1);
        for _ in 0..10 {
            step(&a, &sizes);
        }
        let s = a.stats();
        assert_eq!(s.num_raw_allocs, after_first.num_raw_allocs);
        assert_eq!(s.num_allocs, 11 * sizes.len() as u64);
        assert_eq!(s.bytes_in_use, 0);
        assert_eq!(s.largest_alloc, 1024 * 1024 * 4);
        assert_eq!(mock.log.lock().unwrap().allocs as u64, s.num_raw_allocs);
        assert_eq!(mock.live_bytes(), s.bytes_reserved);
    }

    #[test]
    fn chunks_are_aligned_disjoint_and_counted_in_use_and_peak() {
        let a = CachingAllocator::new(Mock::with_capacity(1 << 30));
        let sizes = [1usize, 255, 256, 257, 1000, 4096, 0];
        let addrs: Vec<u64> = sizes.iter().map(|&s| a.allocate(s).unwrap()).collect();
        let mut spans: Vec<(u64, u64)> = addrs
            .iter()
            .zip(sizes)
            .map(|(&x, s)| (x, x + rounded(s).unwrap() as u64))
            .collect();
        spans.sort();
        for w in spans.windows(2) {
            assert!(w[0].1 <= w[1].0, "overlap {w:?}");
        }
        assert!(addrs.iter().all(|x| x % ALIGNMENT as u64 == 0));
        let want: usize = [256, 256, 256, 512, 1024, 4096, 256].iter().sum();
        assert_eq!(a.stats().bytes_in_use, want);
        assert!(a.free(addrs[4]));
        assert_eq!(a.stats().bytes_in_use, want - 1024);
        assert_eq!(a.stats().peak_bytes_in_use, want);
        // Freeing twice, or an address never handed out, changes nothing.
        assert!(!a.free(addrs[4]));
        assert!(!a.free(12345));
        assert_eq!(a.stats().bytes_in_use, want - 1024);
    }

    #[test]
    fn freed_neighbours_coalesce_into_one_chunk_that_serves_a_larger_request() {
        let mock = Mock::with_capacity(1 << 30);
        let a = CachingAllocator::new(mock.clone());
        // Four 512 KiB chunks fill the first 2 MiB region exactly.
        let quarter = MIN_REGION / 4;
        let q: Vec<u64> = (0..4).map(|_| a.allocate(quarter).unwrap()).collect();
        assert_eq!(a.stats().num_raw_allocs, 1);
        for w in q.windows(2) {
            assert_eq!(w[1], w[0] + quarter as u64, "split in address order");
        }
        // Free the middle two in either order: they merge; a half-region request fits there.
        assert!(a.free(q[2]));
        assert!(a.free(q[1]));
        let half = a.allocate(2 * quarter).unwrap();
        assert_eq!(half, q[1]);
        assert_eq!(a.stats().num_raw_allocs, 1);
        // Free everything: one free chunk spans the region, which can go back to the driver.
        for x in [q[0], half, q[3]] {
            assert!(a.free(x));
        }
        assert_eq!(a.release_free_regions(), MIN_REGION);
        assert_eq!(mock.live_bytes(), 0);
        assert_eq!(a.stats().bytes_reserved, 0);
        assert_eq!(a.stats().num_raw_frees, 1);
    }

    #[test]
    fn best_fit_prefers_the_smallest_free_chunk_that_fits() {
        let a = CachingAllocator::new(Mock::with_capacity(1 << 30));
        let small = a.allocate(4096).unwrap();
        let guard1 = a.allocate(256).unwrap();
        let big = a.allocate(64 * 1024).unwrap();
        let guard2 = a.allocate(256).unwrap();
        assert!(a.free(big));
        assert!(a.free(small));
        // 3000 bytes fit both free chunks; the 4 KiB one is the best fit.
        assert_eq!(a.allocate(3000).unwrap(), small);
        let _ = (guard1, guard2);
    }

    #[test]
    fn regions_grow_and_out_of_memory_releases_the_cache_then_errs_clearly() {
        let mock = Mock::with_capacity(10 << 20);
        let a = CachingAllocator::new(mock.clone());
        let x = a.allocate(1 << 20).unwrap(); // region 1: 2 MiB
        let y = a.allocate(1536 << 10).unwrap(); // does not fit the rest: region 2: 4 MiB
        assert_eq!(a.stats().num_raw_allocs, 2);
        assert_eq!(a.stats().bytes_reserved, 6 << 20);
        assert!(a.free(x));
        // 5 MiB: a new 8 MiB region does not fit the 4 MiB left; the free first region is
        // released and 5 MiB at its own size fits.
        let z = a.allocate(5 << 20).unwrap();
        assert_eq!(a.stats().num_raw_frees, 1);
        assert_eq!(mock.live_bytes(), (4 << 20) + (5 << 20));
        let err = a.allocate(4 << 20).unwrap_err().to_string();
        assert!(
            err.contains("out of memory") && err.contains("4194304"),
            "{err}"
        );
        assert!(a.free(y) && a.free(z));
        drop(a);
        assert_eq!(
            mock.live_bytes(),
            0,
            "dropping the allocator frees its regions"
        );
    }
}

//! Fallible, memory-limited allocation of kernel outputs.
//!
//! An op whose output size comes from its input *values* (Fill's dims, Tile's multiples,
//! a broadcast of `[n, 1]` against `[1, m]`, a gather of many rows) can ask for more memory
//! than the machine has; an infallible `vec![..; n]` then aborts the process. Every such
//! output goes through [`try_filled`] or [`try_with_capacity`] instead: they check the
//! request against the memory limit of the session running the kernel (one compare), then
//! allocate with `try_reserve`, so a request that is too large, or that the system refuses,
//! is an [`Error::ResourceExhausted`] naming the dtype, shape and bytes (the session adds
//! the node), and the process keeps running.
//!
//! The limit bounds the *live total*: a session owns a [`MemoryBudget`]
//! (`SessionOptions::max_memory_bytes`) and runs its steps inside [`with_budget`] (once per
//! run on each thread that runs steps, not once per kernel). Every
//! tensor buffer of at least [`CHARGED_BYTES`] that a kernel makes is charged to that budget
//! (a [`Charge`] stored with the tensor and shared by its clones and reshapes) and released
//! when the last tensor holding it drops, wherever that happens: an intermediate freed by
//! the executor, a fetched value the caller lets go of. A request is checked against what
//! is left of the budget before it is allocated, and the session fails the node whose
//! outputs bring the total over the limit. Smaller buffers (scalars, shapes, indices) are
//! not counted, which keeps small ops free of any accounting. Outside a session the limit
//! is the machine's memory ([`physical_memory`]) per tensor.
//!
//! Small tensors that a *container* keeps can still add up without bound: the items of a
//! TensorList, the iterations a `While` gradient keeps. Such a container counts them
//! itself, when they enter it: [`Tensor::into_counted`](super::Tensor::into_counted)
//! charges a small buffer however small (copying it into a charged buffer, plus
//! [`SMALL_TENSOR_OVERHEAD`] for its headers), [`Storage::counted`] charges a container's
//! own buffer, and [`check`] lets a kernel that keeps growing one fail before it finishes.

use super::{Buffer, DType, Element, Tensor};
use crate::{Error, Result};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

/// Tensor buffers smaller than this many bytes are not charged to a [`MemoryBudget`].
pub const CHARGED_BYTES: usize = 4096;

/// The bytes a tensor takes besides its elements (the tensor, its shared allocation's
/// header and storage), counted for each small tensor a container keeps.
pub const SMALL_TENSOR_OVERHEAD: usize =
    std::mem::size_of::<super::Tensor>() + std::mem::size_of::<Storage<u8>>() + 16;

/// The memory the live tensors of one session may take together: a limit and the bytes
/// charged against it now.
#[derive(Debug)]
pub struct MemoryBudget {
    limit: usize,
    live: AtomicUsize,
}

impl MemoryBudget {
    /// A budget of `limit` bytes (at least 1), nothing charged yet.
    pub fn new(limit: usize) -> Arc<MemoryBudget> {
        Arc::new(MemoryBudget {
            limit: limit.max(1),
            live: AtomicUsize::new(0),
        })
    }

    /// The limit in bytes.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The bytes of the charged tensors alive now.
    #[inline]
    pub fn in_use(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }

    /// The error for a budget whose live tensors went over its limit (`Ok` when within).
    #[inline]
    pub fn check(&self) -> Result<()> {
        if self.in_use() <= self.limit {
            return Ok(());
        }
        Err(self.over_limit())
    }

    #[cold]
    fn over_limit(&self) -> Error {
        Error::ResourceExhausted(format!(
            "the live tensors take {} bytes, over the memory limit of {} bytes \
             (SessionOptions::max_memory_bytes, --max-memory)",
            self.in_use(),
            self.limit
        ))
    }
}

/// Bytes charged to a [`MemoryBudget`] for one tensor buffer, given back when dropped.
#[derive(Debug)]
pub struct Charge {
    budget: Arc<MemoryBudget>,
    bytes: usize,
}

/// A tensor buffer's elements with their [`Charge`] (none for small buffers or outside a
/// session): the charge lives in the buffer's shared allocation, so clones and reshapes
/// of a tensor share it at no cost and it is given back when the last of them drops.
/// Reads and in-place writes see the elements as a slice; the vector cannot grow.
pub struct Storage<T> {
    data: Vec<T>,
    charge: Option<Charge>,
}

impl<T> Storage<T> {
    /// `data`, taking `bytes`, charged to this thread's budget when it counts ([`charge`]).
    #[inline]
    pub(crate) fn new(data: Vec<T>, bytes: usize) -> Storage<T> {
        if std::mem::size_of_val(data.as_slice()) >= HUGE_PAGE {
            back_by_huge_pages(&data);
        }
        Storage {
            data,
            charge: charge(bytes),
        }
    }

    /// `data`, taking `bytes`, charged to this thread's budget however small: the buffer
    /// of a container, or a small tensor it keeps (see the module docs).
    #[inline]
    pub(crate) fn counted(data: Vec<T>, bytes: usize) -> Storage<T> {
        Storage {
            data,
            charge: charge_large(bytes),
        }
    }

    /// The elements as a vector; the charge is given back (whoever makes a tensor of them
    /// again is charged anew).
    pub fn into_vec(self) -> Vec<T> {
        self.data
    }

    /// The bytes charged for these elements (0 when not charged).
    pub fn charged_bytes(&self) -> usize {
        self.charge.as_ref().map_or(0, |c| c.bytes)
    }
}

impl<T> std::ops::Deref for Storage<T> {
    type Target = [T];
    #[inline]
    fn deref(&self) -> &[T] {
        &self.data
    }
}

impl<T> std::ops::DerefMut for Storage<T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut [T] {
        &mut self.data
    }
}

/// Equal elements (the charge does not matter).
impl<T: PartialEq> PartialEq for Storage<T> {
    fn eq(&self, other: &Storage<T>) -> bool {
        self.data == other.data
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for Storage<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.data.fmt(f)
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.budget.live.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

thread_local! {
    /// The budget of the kernel running on this thread: a pointer to the `Arc` that
    /// [`with_budget`] borrows for as long as it is set; null when none is.
    static BUDGET: Cell<*const Arc<MemoryBudget>> = const { Cell::new(std::ptr::null()) };
}

/// Runs `f` with `budget` as this thread's memory budget: tensors made meanwhile are
/// charged to it and allocations are checked against what it has left.
pub fn with_budget<R>(budget: &Arc<MemoryBudget>, f: impl FnOnce() -> R) -> R {
    /// Restores the previous budget, also when `f` panics.
    struct Restore(*const Arc<MemoryBudget>);
    impl Drop for Restore {
        fn drop(&mut self) {
            BUDGET.with(|b| b.set(self.0));
        }
    }
    let _restore = Restore(BUDGET.with(|b| b.replace(budget)));
    f()
}

/// This thread's budget, if one is set: for handing to the helper threads that run parts
/// of the same kernel, so that what they make is charged too.
pub fn current() -> Option<Arc<MemoryBudget>> {
    current_budget(Arc::clone)
}

/// Calls `f` with this thread's budget, if one is set.
fn current_budget<R>(f: impl FnOnce(&Arc<MemoryBudget>) -> R) -> Option<R> {
    let ptr = BUDGET.with(Cell::get);
    // SAFETY: a non-null pointer was set by `with_budget` from a reference that outlives
    // the closure it runs, and is restored before that reference ends (also on unwind);
    // only this thread reads it.
    unsafe { ptr.as_ref() }.map(f)
}

/// Charges `bytes` of a new tensor buffer to this thread's budget: `None` for buffers
/// under [`CHARGED_BYTES`] or outside a budget.
#[inline]
pub(crate) fn charge(bytes: usize) -> Option<Charge> {
    if bytes < CHARGED_BYTES {
        return None;
    }
    charge_large(bytes)
}

/// [`charge`] for a buffer large enough to count (or counted however small).
#[cold]
fn charge_large(bytes: usize) -> Option<Charge> {
    current_budget(|budget| {
        budget.live.fetch_add(bytes, Ordering::Relaxed);
        Charge {
            budget: Arc::clone(budget),
            bytes,
        }
    })
}

impl Tensor {
    /// This tensor with its buffer charged to this thread's memory budget however small:
    /// for a value that a container keeps (see the module docs). A small uncharged host
    /// buffer is copied (it is under [`CHARGED_BYTES`]) into one charged its bytes and
    /// [`SMALL_TENSOR_OVERHEAD`]; a buffer already charged, a resource, variant or device
    /// buffer, and any tensor outside a budget come back as they are.
    pub fn into_counted(self) -> Tensor {
        if current_budget(|_| ()).is_none() {
            return self;
        }
        let buffer = match &self.buffer {
            Buffer::F32(v) => counted_copy(v, 0).map(Buffer::F32),
            Buffer::F64(v) => counted_copy(v, 0).map(Buffer::F64),
            Buffer::I32(v) => counted_copy(v, 0).map(Buffer::I32),
            Buffer::I64(v) => counted_copy(v, 0).map(Buffer::I64),
            Buffer::U8(v) => counted_copy(v, 0).map(Buffer::U8),
            Buffer::Bool(v) => counted_copy(v, 0).map(Buffer::Bool),
            Buffer::Bytes(v) => {
                let strings = v.iter().map(Vec::len).sum();
                counted_copy(v, strings).map(Buffer::Bytes)
            }
            Buffer::Resource(_) | Buffer::Variant(_) | Buffer::Device(_) => None,
        };
        match buffer {
            Some(buffer) => Tensor {
                shape: self.shape,
                buffer,
            },
            None => self,
        }
    }
}

/// A copy of an uncharged buffer charged its elements, `extra` bytes they point to, and
/// a small tensor's overhead; `None` for a buffer already charged.
fn counted_copy<T: Clone>(v: &Arc<Storage<T>>, extra: usize) -> Option<Arc<Storage<T>>> {
    v.charge.is_none().then(|| {
        let bytes = std::mem::size_of_val(v.data.as_slice()) + extra + SMALL_TENSOR_OVERHEAD;
        Arc::new(Storage::counted(v.data.clone(), bytes))
    })
}

/// Size of a huge page (x86-64 and most 64-bit ARM Linux kernels).
pub const HUGE_PAGE: usize = 2 << 20;

/// Asks Linux to map the 2 MiB pages that `buf` touches as huge pages now
/// (`MADV_COLLAPSE`; nothing where it cannot, or on targets other than glibc's Linux).
/// [`Storage::new`] asks it for every tensor buffer of at least [`HUGE_PAGE`] bytes: a
/// dense layer's weight, 4 KiB per row when it is 1024 wide, otherwise has each row on a
/// 4 KiB page of its own, and the TLB misses of reading and updating it cold slow every
/// product that touches it. The range is rounded out to whole huge pages, so a buffer's
/// ends are huge too (the kernel keeps to the mapping the buffer lies in; what shares
/// those pages keeps its values, and at most one huge page more per end becomes
/// resident). A buffer freed and handed out again by the heap (see
/// `device::memory::keep_freed_buffers`) keeps its pages, so from the second step on
/// asking again finds nothing to do. On the 2-core Xeon (KVM, 2026-12-07 21:22–21:27
/// UTC, loaded; criterion medians alternated A B B A with the build that collapsed only
/// the whole pages inside a weight, at its update): the MLP 784-1024-1024-10 training
/// step 17.04, 18.27, 18.25, 17.31 → 16.35, 16.48, 16.51, 17.89 ms on 1 thread and
/// 10.57, 10.97, 10.24, 10.17 → 10.41, 10.32, 10.13, 9.61 ms on 2; the small CNN's step
/// 11.22, 10.76 → 10.50, 10.16 ms (1 thread) and 6.76, 6.24 → 6.18, 5.96 (2); a 1024²
/// product 14.69, 14.35 → 13.24, 13.34 ms; the digits SGD epoch (small buffers)
/// unchanged. Collapsing from 512 KiB or 256 KiB up (the MLP's activations too) gained
/// nothing measurable.
pub fn back_by_huge_pages<T>(buf: &[T]) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let start = buf.as_ptr() as usize;
        let end = start + std::mem::size_of_val(buf);
        let first = start / HUGE_PAGE * HUGE_PAGE;
        let last = end.div_ceil(HUGE_PAGE) * HUGE_PAGE;
        if first < last {
            // SAFETY: madvise checks the range against the process's mappings; collapsing
            // memory changes how it is mapped, not what it holds, and a failure changes
            // nothing.
            unsafe {
                libc::madvise(
                    first as *mut libc::c_void,
                    last - first,
                    libc::MADV_COLLAPSE,
                );
            }
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = buf;
}

/// The error for this thread's budget when its live tensors went over its limit: for a
/// kernel that keeps growing a container (`Ok` outside a budget).
pub fn check() -> Result<()> {
    current_budget(|b| b.check()).unwrap_or(Ok(()))
}

/// The machine's physical memory in bytes (`usize::MAX` where it cannot be read).
pub fn physical_memory() -> usize {
    static MEMORY: OnceLock<usize> = OnceLock::new();
    *MEMORY.get_or_init(|| {
        #[cfg(unix)]
        {
            // SAFETY: sysconf only reads system constants.
            let (pages, page) = unsafe {
                (
                    libc::sysconf(libc::_SC_PHYS_PAGES),
                    libc::sysconf(libc::_SC_PAGESIZE),
                )
            };
            if pages > 0 && page > 0 {
                return (pages as usize).saturating_mul(page as usize);
            }
        }
        usize::MAX
    })
}

/// The memory limit on this thread: its budget's, else the machine's memory.
pub fn memory_limit() -> usize {
    current_budget(|b| b.limit()).unwrap_or_else(physical_memory)
}

/// The most bytes one new tensor may take on this thread: what its budget has left, else
/// the machine's memory.
fn memory_left() -> usize {
    current_budget(|b| b.limit().saturating_sub(b.in_use())).unwrap_or_else(physical_memory)
}

/// The number of elements of a `dtype` tensor of `shape`, after checking that its bytes
/// fit what this thread's memory budget has left (and do not overflow).
pub fn checked_len(dtype: DType, shape: &[usize]) -> Result<usize> {
    let n = shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    let bytes = n.and_then(|n| n.checked_mul(dtype.size()));
    match (n, bytes) {
        (Some(n), Some(bytes)) if bytes <= memory_left() => Ok(n),
        _ => Err(too_large(dtype, shape, bytes, "too large for what is left")),
    }
}

/// The error for a tensor that cannot be allocated.
fn too_large(dtype: DType, shape: &[usize], bytes: Option<usize>, why: &str) -> Error {
    let bytes = match bytes {
        Some(b) => format!("{b} bytes"),
        None => "more bytes than the address space holds".to_string(),
    };
    let in_use = current_budget(|b| b.in_use()).unwrap_or(0);
    Error::ResourceExhausted(format!(
        "cannot allocate a {dtype} tensor of shape {shape:?}: {bytes}, {why} \
         ({in_use} bytes in use) of the memory limit of {} bytes \
         (SessionOptions::max_memory_bytes, --max-memory)",
        memory_limit()
    ))
}

/// An empty vector with room for a `T` tensor of `shape`, checked against the limit and
/// allocated fallibly: for kernels that push their output's elements.
pub fn try_with_capacity<T: Element>(shape: &[usize]) -> Result<Vec<T>> {
    try_reserve(T::DTYPE, shape)
}

/// An empty vector with room for the elements (of Rust type `E`) of a `dtype` tensor of
/// `shape`, checked against the limit and allocated fallibly (strings count the bytes of
/// their headers).
pub(crate) fn try_reserve<E>(dtype: DType, shape: &[usize]) -> Result<Vec<E>> {
    let n = checked_len(dtype, shape)?;
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| {
        too_large(
            dtype,
            shape,
            n.checked_mul(dtype.size()),
            "refused by the system allocator although within what is left",
        )
    })?;
    Ok(v)
}

/// The elements of a `T` tensor of `shape`, every one `value`, checked against the limit
/// and allocated fallibly.
pub fn try_filled<T: Element>(shape: &[usize], value: T) -> Result<Vec<T>> {
    let mut v = try_with_capacity(shape)?;
    v.resize(super::num_elements(shape), value);
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absurd_requests_err_naming_dtype_shape_and_bytes() {
        let err = try_filled(&[1 << 40], 0f32).unwrap_err();
        assert!(matches!(err, Error::ResourceExhausted(_)), "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains("float32")
                && msg.contains("[1099511627776]")
                && msg.contains("4398046511104 bytes"),
            "{msg}"
        );
        let overflow = try_with_capacity::<f64>(&[1 << 40, 1 << 40]).unwrap_err();
        assert!(overflow.to_string().contains("address space"), "{overflow}");
    }

    #[test]
    fn large_buffers_and_their_neighbours_keep_their_values_in_huge_pages() {
        // A tensor buffer over HUGE_PAGE is collapsed into huge pages rounded out past its
        // ends, where other allocations of the heap lie: all of them keep their values.
        let pattern = |len: usize, seed: i32| -> Vec<i32> {
            (0..len as i32)
                .map(|i| i.wrapping_mul(-1640531535) ^ seed)
                .collect()
        };
        let before = pattern(300_000, 1);
        let large = pattern(HUGE_PAGE / 4 * 3 / 2 + 7, 2);
        let after = pattern(1000, 3);
        let tensor = Tensor::new(&[large.len()], large.clone()).unwrap();
        assert_eq!(tensor.as_slice::<i32>().unwrap(), &large[..]);
        assert_eq!(before, pattern(300_000, 1));
        assert_eq!(after, pattern(1000, 3));
        // A buffer on no whole page, and an empty one, are fine too.
        back_by_huge_pages(&after);
        back_by_huge_pages::<f32>(&[]);
        assert_eq!(after, pattern(1000, 3));
    }

    #[test]
    fn a_kept_small_tensor_is_counted_once_with_its_overhead() {
        let small = Tensor::from([1f32, 2.0]);
        // Outside a budget nothing is copied.
        assert!(small.clone().into_counted().buffer.ptr_eq(&small.buffer));
        let budget = MemoryBudget::new(1 << 20);
        let (kept, large) = with_budget(&budget, || {
            let kept = small.clone().into_counted();
            assert_eq!(budget.in_use(), 8 + SMALL_TENSOR_OVERHEAD);
            // Counted once: keeping it again (another list holding it) adds nothing.
            let again = kept.clone().into_counted();
            assert!(again.buffer.ptr_eq(&kept.buffer));
            let strings = Tensor::from_strings(&[2], vec!["ab", "c"]).unwrap();
            let strings = strings.into_counted();
            let string_bytes = 3 + 2 * std::mem::size_of::<Vec<u8>>() + SMALL_TENSOR_OVERHEAD;
            assert_eq!(budget.in_use(), 8 + SMALL_TENSOR_OVERHEAD + string_bytes);
            drop(strings);
            // A buffer charged when made is not charged again.
            let large = Tensor::full(&[CHARGED_BYTES], 0u8);
            let before = budget.in_use();
            let large_kept = large.clone().into_counted();
            assert!(large_kept.buffer.ptr_eq(&large.buffer));
            assert_eq!(budget.in_use(), before);
            (kept, large)
        });
        assert_eq!(kept, small);
        drop((kept, large));
        assert_eq!(budget.in_use(), 0);
    }

    #[test]
    fn the_budget_is_per_thread_restored_and_bounds_the_live_total() {
        assert_eq!(try_filled(&[2, 3], 7i32).unwrap(), vec![7; 6]);
        let budget = MemoryBudget::new(3 * CHARGED_BYTES);
        let kept = with_budget(&budget, || {
            assert_eq!(memory_limit(), 3 * CHARGED_BYTES);
            // A buffer under the threshold is not charged; one at it is, until it drops.
            assert!(charge(CHARGED_BYTES - 1).is_none());
            let first = charge(2 * CHARGED_BYTES).unwrap();
            assert_eq!(budget.in_use(), 2 * CHARGED_BYTES);
            // What is left is one more CHARGED_BYTES: a float32 tensor of that much fits,
            // one element more does not, although alone it would fit the limit.
            let n = CHARGED_BYTES / 4;
            assert_eq!(try_filled(&[n], 1f32).unwrap().len(), n);
            let err = try_filled(&[n + 1], 1f32).unwrap_err().to_string();
            assert!(
                err.contains(&format!("{} bytes", CHARGED_BYTES + 4))
                    && err.contains(&format!("({} bytes in use)", 2 * CHARGED_BYTES))
                    && err.contains(&format!("of {} bytes", 3 * CHARGED_BYTES)),
                "{err}"
            );
            // Going over is what the session reports for the node.
            let second = charge(2 * CHARGED_BYTES).unwrap();
            assert!(budget
                .check()
                .unwrap_err()
                .to_string()
                .contains("over the memory limit"));
            drop(second);
            budget.check().unwrap();
            // Another thread has no budget.
            std::thread::spawn(|| assert_eq!(memory_limit(), physical_memory()))
                .join()
                .unwrap();
            first
        });
        assert_eq!(memory_limit(), physical_memory());
        assert!(charge(CHARGED_BYTES).is_none());
        // A charge outlives the kernel that made it and is given back when it drops.
        assert_eq!(budget.in_use(), 2 * CHARGED_BYTES);
        drop(kept);
        assert_eq!(budget.in_use(), 0);
        assert!(physical_memory() > 1 << 20);
    }
}

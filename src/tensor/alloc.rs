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
//! The limit is per thread: a session sets it ([`limit_memory`]) around each kernel it runs
//! (`SessionOptions::max_memory_bytes`); elsewhere it is the machine's memory
//! ([`physical_memory`]). It bounds each tensor a kernel allocates, not their sum.

use super::{DType, Element};
use crate::{Error, Result};
use std::cell::Cell;
use std::sync::OnceLock;

thread_local! {
    /// The memory limit of the kernel running on this thread; 0 means "not set"
    /// ([`physical_memory`]).
    static LIMIT: Cell<usize> = const { Cell::new(0) };
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

/// The most bytes one tensor allocated on this thread may take.
pub fn memory_limit() -> usize {
    match LIMIT.with(Cell::get) {
        0 => physical_memory(),
        limit => limit,
    }
}

/// Restores the previous limit of its thread when dropped (see [`limit_memory`]).
#[must_use = "the limit is lifted again when the guard is dropped"]
pub struct LimitGuard {
    previous: usize,
}

impl Drop for LimitGuard {
    fn drop(&mut self) {
        LIMIT.with(|l| l.set(self.previous));
    }
}

/// Limits each tensor allocated on this thread to `bytes` until the guard is dropped.
pub fn limit_memory(bytes: usize) -> LimitGuard {
    LimitGuard {
        previous: LIMIT.with(|l| l.replace(bytes.max(1))),
    }
}

/// The number of elements of a `dtype` tensor of `shape`, after checking that its bytes
/// fit this thread's memory limit (and do not overflow).
pub fn checked_len(dtype: DType, shape: &[usize]) -> Result<usize> {
    let n = shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    let bytes = n.and_then(|n| n.checked_mul(dtype.size()));
    match (n, bytes) {
        (Some(n), Some(bytes)) if bytes <= memory_limit() => Ok(n),
        _ => Err(too_large(
            dtype,
            shape,
            bytes,
            "too large for the memory limit",
        )),
    }
}

/// The error for a tensor that cannot be allocated.
fn too_large(dtype: DType, shape: &[usize], bytes: Option<usize>, why: &str) -> Error {
    let bytes = match bytes {
        Some(b) => format!("{b} bytes"),
        None => "more bytes than the address space holds".to_string(),
    };
    Error::ResourceExhausted(format!(
        "cannot allocate a {dtype} tensor of shape {shape:?}: {bytes}, {why} of {} bytes \
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
/// `shape`, checked against the limit and allocated fallibly.
fn try_reserve<E>(dtype: DType, shape: &[usize]) -> Result<Vec<E>> {
    let n = checked_len(dtype, shape)?;
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| {
        too_large(
            dtype,
            shape,
            n.checked_mul(dtype.size()),
            "refused by the system allocator although within the memory limit",
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
    fn the_limit_is_per_thread_and_restored() {
        assert_eq!(try_filled(&[2, 3], 7i32).unwrap(), vec![7; 6]);
        {
            let _guard = limit_memory(100);
            assert_eq!(memory_limit(), 100);
            // 25 float32 are 100 bytes: allowed; 26 are not.
            assert_eq!(try_filled(&[25], 1f32).unwrap().len(), 25);
            let err = try_filled(&[26], 1f32).unwrap_err().to_string();
            assert!(
                err.contains("104 bytes") && err.contains("of 100 bytes"),
                "{err}"
            );
            // Another thread has its own limit.
            std::thread::spawn(|| assert_eq!(memory_limit(), physical_memory()))
                .join()
                .unwrap();
        }
        assert_eq!(memory_limit(), physical_memory());
        assert!(physical_memory() > 1 << 20);
    }
}

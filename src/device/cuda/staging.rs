//! Pinned (page-locked) host buffers for copies between the host and a GPU: a fed value
//! is copied into a free staging buffer and the device copy is queued on the stream
//! without waiting for it (the buffer is reused once its copy has completed); a fetched
//! value is copied into the download buffer, the stream is synchronised (the host needs
//! the value), and the bytes are read out.

use super::cuda_error;
use crate::Result;
use cudarc::driver::{result as drv, CudaContext, CudaEvent, CudaStream};
use std::sync::{Arc, Mutex};

/// Uploads in flight at once before the oldest is waited for.
const MAX_UPLOAD_BUFFERS: usize = 16;
/// The smallest staging buffer.
const MIN_BUFFER: usize = 64 << 10;
/// Larger copies skip staging (the copy is synchronous then).
const MAX_STAGED: usize = 256 << 20;

/// One pinned host buffer and the event recorded after the last copy that used it.
struct Pinned {
    ptr: *mut u8,
    capacity: usize,
    done: CudaEvent,
}

// SAFETY: the buffer is owned (freed once, in Drop) and used under the staging mutexes.
unsafe impl Send for Pinned {}

impl Pinned {
    fn new(ctx: &Arc<CudaContext>, bytes: usize) -> Result<Pinned> {
        let capacity = bytes.next_power_of_two().max(MIN_BUFFER);
        // SAFETY: a plain page-locked allocation on the current context.
        let ptr = unsafe { drv::malloc_host(capacity, 0) }
            .map_err(|e| cuda_error("cuMemHostAlloc", e))?
            .cast::<u8>();
        let done = ctx
            .new_event(None)
            .map_err(|e| cuda_error("cuEventCreate", e))?;
        Ok(Pinned {
            ptr,
            capacity,
            done,
        })
    }

    fn slice(&mut self, n: usize) -> &mut [u8] {
        debug_assert!(n <= self.capacity);
        // SAFETY: `ptr` holds `capacity` bytes owned by this buffer.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, n) }
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        let _ = self.done.synchronize();
        // SAFETY: allocated by `malloc_host`, freed once.
        let _ = unsafe { drv::free_host(self.ptr.cast()) };
    }
}

/// The staging buffers of one session's GPU.
pub(super) struct Staging {
    ctx: Arc<CudaContext>,
    uploads: Mutex<Vec<Pinned>>,
    download: Mutex<Option<Pinned>>,
}

impl Staging {
    pub(super) fn new(ctx: Arc<CudaContext>) -> Staging {
        Staging {
            ctx,
            uploads: Mutex::new(Vec::new()),
            download: Mutex::new(None),
        }
    }

    /// Queues a copy of `bytes` to device address `dst` on `stream`; returns once the
    /// bytes are staged (the caller may drop them).
    pub(super) fn upload(&self, bytes: &[u8], dst: u64, stream: &CudaStream) -> Result<()> {
        if bytes.len() > MAX_STAGED {
            // SAFETY: `dst` holds `bytes.len()` bytes; the stream is synchronised before
            // `bytes` can go away.
            unsafe { drv::memcpy_htod_async(dst, bytes, stream.cu_stream()) }
                .map_err(|e| cuda_error("cuMemcpyHtoDAsync", e))?;
            return stream
                .synchronize()
                .map_err(|e| cuda_error("cuStreamSynchronize", e));
        }
        let mut pool = self.uploads.lock().unwrap_or_else(|p| p.into_inner());
        let free = pool
            .iter()
            .position(|b| b.capacity >= bytes.len() && b.done.is_complete());
        let mut buf = match free {
            Some(i) => pool.remove(i),
            None if pool.len() < MAX_UPLOAD_BUFFERS => Pinned::new(&self.ctx, bytes.len())?,
            None => {
                // Every buffer is busy or small: wait for the oldest and reuse (or grow) it.
                let oldest = pool.remove(0);
                oldest
                    .done
                    .synchronize()
                    .map_err(|e| cuda_error("cuEventSynchronize", e))?;
                if oldest.capacity >= bytes.len() {
                    oldest
                } else {
                    drop(oldest);
                    Pinned::new(&self.ctx, bytes.len())?
                }
            }
        };
        buf.slice(bytes.len()).copy_from_slice(bytes);
        let staged = buf.slice(bytes.len());
        // SAFETY: `dst` holds `bytes.len()` bytes; the pinned buffer is not reused before
        // `done` (recorded right after the copy) has completed.
        unsafe { drv::memcpy_htod_async(dst, staged, stream.cu_stream()) }
            .map_err(|e| cuda_error("cuMemcpyHtoDAsync", e))?;
        buf.done
            .record(stream)
            .map_err(|e| cuda_error("cuEventRecord", e))?;
        pool.push(buf);
        Ok(())
    }

    /// Copies `n` bytes from device address `src` (after all work queued on `stream`) and
    /// hands them to `read`.
    pub(super) fn download<T>(
        &self,
        src: u64,
        n: usize,
        stream: &CudaStream,
        read: impl FnOnce(&[u8]) -> Result<T>,
    ) -> Result<T> {
        if n > MAX_STAGED {
            let mut host = vec![0u8; n];
            // SAFETY: `src` holds `n` bytes; synchronised before `host` is read.
            unsafe { drv::memcpy_dtoh_async(&mut host, src, stream.cu_stream()) }
                .map_err(|e| cuda_error("cuMemcpyDtoHAsync", e))?;
            stream
                .synchronize()
                .map_err(|e| cuda_error("cuStreamSynchronize", e))?;
            return read(&host);
        }
        let mut slot = self.download.lock().unwrap_or_else(|p| p.into_inner());
        if slot.as_ref().is_none_or(|b| b.capacity < n) {
            *slot = Some(Pinned::new(&self.ctx, n)?);
        }
        let buf = slot.as_mut().expect("set above");
        let host = buf.slice(n);
        // SAFETY: `src` holds `n` bytes; the stream is synchronised before `host` is read.
        unsafe { drv::memcpy_dtoh_async(host, src, stream.cu_stream()) }
            .map_err(|e| cuda_error("cuMemcpyDtoHAsync", e))?;
        stream
            .synchronize()
            .map_err(|e| cuda_error("cuStreamSynchronize", e))?;
        read(buf.slice(n))
    }
}

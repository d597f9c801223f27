//! NVIDIA GPUs through `cudarc` (feature `cuda`): the `GPU` device type.
//!
//! The CUDA driver, cuBLAS and NVRTC are loaded at run time (cudarc's `dynamic-loading`),
//! so a build with the feature runs on a machine without CUDA: [`devices`] then finds no
//! GPU, says why once on standard error, and placement runs every node on the CPU.
//!
//! One [`GpuDevice`] per session and GPU: its own stream (every kernel and copy of the
//! session is queued on it, back to back, with no host synchronisation between ops), its
//! own caching allocator (`super::alloc`, regions from `cuMemAlloc`, so a warm training
//! loop allocates nothing from the driver) and its cuBLAS handle. Tensors on it hold a
//! [`GpuMemory`]; host ⇄ device copies go through pinned staging buffers ([`staging`]).
//! Kernels for the `GPU` device type are registered by the op families (`ops::cuda`); they
//! reach the device through [`Gpu`] ([`GpuDevice::of`]).

mod staging;

use super::alloc::{AllocatorStats, CachingAllocator, RawMemory};
use super::Device;
use crate::tensor::{DType, DeviceMemory, Tensor};
use crate::{with_dtype, Error, Result};
use cudarc::driver::{result as drv, CudaContext, CudaFunction, CudaStream};
use staging::Staging;
use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

/// The device type of NVIDIA GPUs (TensorFlow's `DEVICE_GPU`).
pub const GPU: &str = "GPU";

/// A CUDA error as a rustflow error, with what was being done.
pub fn cuda_error(what: &str, e: impl fmt::Debug) -> Error {
    Error::Internal(format!("CUDA: {what}: {e:?}"))
}

/// The GPUs of this process: one CUDA context each (made once), or why there are none.
fn contexts() -> &'static std::result::Result<Vec<Arc<CudaContext>>, String> {
    static CONTEXTS: OnceLock<std::result::Result<Vec<Arc<CudaContext>>, String>> = OnceLock::new();
    CONTEXTS.get_or_init(|| {
        // SAFETY: these only try to load the shared libraries (no CUDA call is made).
        let (driver, blas, nvrtc) = unsafe {
            (
                cudarc::driver::sys::is_culib_present(),
                cudarc::cublas::sys::is_culib_present(),
                cudarc::nvrtc::sys::is_culib_present(),
            )
        };
        let missing: Vec<&str> = [
            (driver, "the CUDA driver (libcuda.so)"),
            (blas, "cuBLAS (libcublas.so.13)"),
            (nvrtc, "NVRTC (libnvrtc.so.13)"),
        ]
        .iter()
        .filter(|(present, _)| !present)
        .map(|(_, name)| *name)
        .collect();
        if !missing.is_empty() {
            return Err(format!(
                "{} could not be loaded (put the folders holding them on LD_LIBRARY_PATH)",
                missing.join(", ")
            ));
        }
        let count = CudaContext::device_count().map_err(|e| format!("cuDeviceGetCount: {e:?}"))?;
        if count <= 0 {
            return Err("the CUDA driver reports no GPU".into());
        }
        (0..count as usize)
            .map(|i| CudaContext::new(i).map_err(|e| format!("GPU {i}: cuCtxCreate: {e:?}")))
            .collect()
    })
}

/// Why this process has no GPU, or `None` when it has one.
pub fn unavailable() -> Option<&'static str> {
    contexts().as_ref().err().map(|s| s.as_str())
}

/// The device factory of the `GPU` type: a new [`GpuDevice`] (own stream and allocator)
/// per GPU for each session; none, and one line on standard error the first time, when no
/// GPU can be used.
pub fn devices() -> Vec<Arc<dyn Device>> {
    match contexts() {
        Ok(ctxs) => ctxs
            .iter()
            .enumerate()
            .filter_map(|(i, ctx)| match Gpu::new(i, Arc::clone(ctx)) {
                Ok(gpu) => Some(Arc::new(GpuDevice(Arc::new(gpu))) as Arc<dyn Device>),
                Err(e) => {
                    eprintln!("rustflow: warning: GPU {i} is not used: {e}");
                    None
                }
            })
            .collect(),
        Err(why) => {
            static SAID: OnceLock<()> = OnceLock::new();
            SAID.get_or_init(|| eprintln!("rustflow: no GPU: {why}; running on the CPU"));
            Vec::new()
        }
    }
}

/// `cuMemAlloc`/`cuMemFree` on one context: what the caching allocator takes regions from.
struct DriverMemory {
    ctx: Arc<CudaContext>,
}

impl RawMemory for DriverMemory {
    fn allocate(&mut self, bytes: usize) -> Result<u64> {
        self.ctx
            .bind_to_thread()
            .map_err(|e| cuda_error("bind context", e))?;
        // SAFETY: a plain allocation on the bound context.
        unsafe { drv::malloc_sync(bytes) }.map_err(|e| cuda_error("cuMemAlloc", e))
    }
    fn free(&mut self, address: u64) {
        // Regions go back only when nothing in them is in use on the host (out of memory,
        // or the session's end); work queued before may still read them: wait for it.
        if self.ctx.bind_to_thread().is_ok() && self.ctx.synchronize().is_ok() {
            // SAFETY: `address` came from `allocate` and the allocator frees it once.
            let _ = unsafe { drv::free_sync(address) };
        }
    }
}

/// Compiled NVRTC kernels of one context, by name: each source is compiled once per
/// process, the first time a plan needs it.
type FunctionCache = Mutex<HashMap<String, CudaFunction>>;

fn function_caches() -> &'static Mutex<Vec<Arc<FunctionCache>>> {
    static CACHES: OnceLock<Mutex<Vec<Arc<FunctionCache>>>> = OnceLock::new();
    CACHES.get_or_init(Default::default)
}

/// One GPU as one session sees it: context, stream, allocator, cuBLAS, staging buffers.
/// Kernels keep an `Arc<Gpu>`.
pub struct Gpu {
    name: String,
    index: usize,
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    allocator: CachingAllocator<DriverMemory>,
    blas: Mutex<Option<cudarc::cublas::CudaBlas>>,
    staging: Staging,
    functions: Arc<FunctionCache>,
}

impl fmt::Debug for Gpu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gpu").field("name", &self.name).finish()
    }
}

impl Gpu {
    fn new(index: usize, ctx: Arc<CudaContext>) -> Result<Gpu> {
        let stream = ctx
            .new_stream()
            .map_err(|e| cuda_error("cuStreamCreate", e))?;
        let functions = {
            let mut caches = function_caches().lock().unwrap_or_else(|p| p.into_inner());
            while caches.len() <= index {
                caches.push(Arc::default());
            }
            Arc::clone(&caches[index])
        };
        Ok(Gpu {
            name: format!("/device:GPU:{index}"),
            index,
            allocator: CachingAllocator::new(DriverMemory {
                ctx: Arc::clone(&ctx),
            }),
            staging: Staging::new(Arc::clone(&ctx)),
            ctx,
            stream,
            blas: Mutex::new(None),
            functions,
        })
    }

    /// The device's name, `/device:GPU:0`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The session's stream on this GPU.
    pub fn stream(&self) -> &Arc<CudaStream> {
        &self.stream
    }

    /// Makes the context current on the calling thread (kernels run on the executor's
    /// threads); cheap when it already is.
    pub fn bind(&self) -> Result<()> {
        self.ctx
            .bind_to_thread()
            .map_err(|e| cuda_error("bind context", e))
    }

    /// The allocator's statistics: bytes in use, peak, reserved, driver allocations.
    pub fn memory_stats(&self) -> AllocatorStats {
        self.allocator.stats()
    }

    /// Waits until everything queued on the stream has run.
    pub fn synchronize(&self) -> Result<()> {
        self.stream
            .synchronize()
            .map_err(|e| cuda_error("cuStreamSynchronize", e))
    }

    /// A new uninitialized tensor of `dtype` and `shape` in this GPU's memory, and the
    /// address of its first element (0 for an empty tensor, which takes no memory).
    pub fn alloc(self: &Arc<Self>, dtype: DType, shape: &[usize]) -> Result<(Tensor, u64)> {
        let len = shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .ok_or_else(|| Error::invalid(format!("shape {shape:?} overflows")))?;
        let bytes = len
            .checked_mul(dtype.size())
            .ok_or_else(|| Error::invalid(format!("shape {shape:?} overflows")))?;
        let address = if bytes == 0 {
            0
        } else {
            self.allocator.allocate(bytes)?
        };
        let memory = GpuMemory {
            gpu: Arc::clone(self),
            address,
            len,
            dtype,
        };
        Ok((Tensor::from_device(shape, Arc::new(memory))?, address))
    }

    /// A new copy of a tensor on this GPU (queued on the stream).
    pub fn duplicate(self: &Arc<Self>, t: &Tensor) -> Result<Tensor> {
        let (out, dst) = self.alloc(t.dtype(), t.shape())?;
        let bytes = t.len() * t.dtype().size();
        if bytes > 0 {
            let src = self.address(t)?;
            // SAFETY: both chunks hold `bytes` bytes on this context; stream-ordered.
            unsafe { drv::memcpy_dtod_async(dst, src, bytes, self.stream.cu_stream()) }
                .map_err(|e| cuda_error("cuMemcpyDtoDAsync", e))?;
        }
        Ok(out)
    }

    /// The address of a tensor's elements on this GPU; an error when it is elsewhere.
    pub fn address(&self, t: &Tensor) -> Result<u64> {
        let m = t
            .device_memory()
            .and_then(|m| m.as_any().downcast_ref::<GpuMemory>())
            .ok_or_else(|| {
                Error::invalid(format!(
                    "a {} {:?} tensor in {} was given to a kernel on {}",
                    t.dtype(),
                    t.shape(),
                    t.location(),
                    self.name
                ))
            })?;
        if !Arc::ptr_eq(&m.gpu.ctx, &self.ctx) {
            return Err(Error::invalid(format!(
                "a tensor on {} was given to a kernel on {}",
                m.gpu.name, self.name
            )));
        }
        Ok(m.address)
    }

    /// The kernel `entry` of the CUDA C `source`, compiled with NVRTC the first time
    /// `key` is asked for (one module per key; later calls return the cached function).
    pub fn function(
        &self,
        key: &str,
        entry: &str,
        source: impl FnOnce() -> String,
    ) -> Result<CudaFunction> {
        let mut cache = self.functions.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(f) = cache.get(key) {
            return Ok(f.clone());
        }
        let src = source();
        let ptx = cudarc::nvrtc::compile_ptx(&src)
            .map_err(|e| cuda_error(&format!("NVRTC compiling {key}"), e))?;
        let module = self
            .ctx
            .load_module(ptx)
            .map_err(|e| cuda_error(&format!("loading {key}"), e))?;
        let f = module
            .load_function(entry)
            .map_err(|e| cuda_error(&format!("kernel {entry} of {key}"), e))?;
        cache.insert(key.to_string(), f.clone());
        Ok(f)
    }

    /// Runs `f` with this session's cuBLAS handle (made on first use, bound to the stream).
    pub fn with_blas<T>(
        &self,
        f: impl FnOnce(&cudarc::cublas::CudaBlas) -> Result<T>,
    ) -> Result<T> {
        let mut blas = self.blas.lock().unwrap_or_else(|p| p.into_inner());
        if blas.is_none() {
            let handle = cudarc::cublas::CudaBlas::new(Arc::clone(&self.stream))
                .map_err(|e| cuda_error("cublasCreate", e))?;
            if std::env::var("RUSTFLOW_GPU_TF32").is_ok_and(|v| v == "1") {
                use cudarc::cublas::sys;
                // SAFETY: a valid handle; TF32 tensor-op math for f32 products.
                unsafe {
                    sys::cublasSetMathMode(
                        *handle.handle(),
                        sys::cublasMath_t::CUBLAS_TF32_TENSOR_OP_MATH,
                    )
                }
                .result()
                .map_err(|e| cuda_error("cublasSetMathMode", e))?;
            }
            *blas = Some(handle);
        }
        f(blas.as_ref().expect("made above"))
    }
}

/// Elements in a GPU's memory: a chunk of its session's caching allocator, returned to it
/// when the last tensor holding it is dropped.
pub struct GpuMemory {
    gpu: Arc<Gpu>,
    address: u64,
    len: usize,
    dtype: DType,
}

impl fmt::Debug for GpuMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "GpuMemory({} x {} on {})",
            self.len, self.dtype, self.gpu.name
        )
    }
}

impl Drop for GpuMemory {
    fn drop(&mut self) {
        // Work already queued on the stream that reads the chunk runs before any work
        // queued later by the chunk's next owner: reuse needs no synchronisation.
        if self.address != 0 {
            self.gpu.allocator.free(self.address);
        }
    }
}

impl DeviceMemory for GpuMemory {
    fn device(&self) -> &str {
        &self.gpu.name
    }
    fn dtype(&self) -> DType {
        self.dtype
    }
    fn len(&self) -> usize {
        self.len
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// The bytes of a host tensor's elements.
fn host_bytes(t: &Tensor) -> Result<&[u8]> {
    with_dtype!(any, t.dtype(), T => {
        let s = t.as_slice::<T>()?;
        // SAFETY: the element types are plain data without padding (bool is one byte).
        Ok(unsafe { std::slice::from_raw_parts(s.as_ptr().cast::<u8>(), std::mem::size_of_val(s)) })
    })
}

/// A host tensor of `dtype` and `shape` made from the bytes of its elements.
fn tensor_from_bytes(dtype: DType, shape: &[usize], bytes: &[u8]) -> Result<Tensor> {
    with_dtype!(any, dtype, T => {
        let n = bytes.len() / std::mem::size_of::<T>();
        let mut v: Vec<T> = Vec::with_capacity(n);
        // SAFETY: `v` has room for `n` elements; the bytes came from elements of type T
        // on the device (bools written by our kernels are 0 or 1).
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), v.as_mut_ptr().cast::<u8>(), bytes.len());
            v.set_len(n);
        }
        Tensor::new(shape, v)
    })
}

/// A GPU of one session, as the engine's [`Device`].
#[derive(Debug)]
pub struct GpuDevice(Arc<Gpu>);

impl GpuDevice {
    /// The GPU behind a session's device, for kernels of the `GPU` type; an error when the
    /// device is not a GPU.
    pub fn of(device: &Arc<dyn Device>) -> std::result::Result<Arc<Gpu>, String> {
        device
            .as_any()
            .and_then(|a| a.downcast_ref::<GpuDevice>())
            .map(|d| Arc::clone(&d.0))
            .ok_or_else(|| format!("{} is not a GPU", device.name()))
    }
}

impl Device for GpuDevice {
    fn name(&self) -> &str {
        &self.0.name
    }
    fn device_type(&self) -> &'static str {
        GPU
    }
    fn index(&self) -> usize {
        self.0.index
    }
    fn as_any(&self) -> Option<&dyn Any> {
        Some(self)
    }
    fn copy_from_host(&self, t: &Tensor) -> Result<Tensor> {
        let gpu = &self.0;
        gpu.bind()?;
        let (out, address) = gpu.alloc(t.dtype(), t.shape())?;
        let bytes = host_bytes(t)?;
        if !bytes.is_empty() {
            gpu.staging.upload(bytes, address, &gpu.stream)?;
        }
        Ok(out)
    }
    fn copy_to_host(&self, t: &Tensor) -> Result<Tensor> {
        let gpu = &self.0;
        gpu.bind()?;
        let address = gpu.address(t)?;
        let n = t.len() * t.dtype().size();
        if n == 0 {
            return tensor_from_bytes(t.dtype(), t.shape(), &[]);
        }
        gpu.staging.download(address, n, &gpu.stream, |bytes| {
            tensor_from_bytes(t.dtype(), t.shape(), bytes)
        })
    }
}

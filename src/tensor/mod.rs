//! Tensors: an n-dimensional row-major array of one [`DType`], with storage shared on clone.

pub mod alloc;
pub(crate) mod cast;
mod dims;
mod display;
mod dtype;
mod element;
pub mod npy;
mod resource;
pub(crate) mod rows;
mod shape;

pub use dims::Dims;
pub use dtype::DType;
pub use element::{Element, Float, Number, UnsupportedDType};
pub use resource::ResourceHandle;
pub use shape::{Dim, PartialShape};

use crate::{Error, Result};
use alloc::Storage;
use std::any::Any;
use std::fmt;
use std::sync::Arc;

/// Elements held in the memory of a device other than the host (a GPU's): an opaque handle
/// that only its device's kernels and copies understand. The host cannot read it: the
/// host-only accessors of [`Tensor`] ([`Tensor::as_slice`] and friends) fail on it, saying
/// which device holds the tensor; a session copies fetched values to the host.
pub trait DeviceMemory: Send + Sync + fmt::Debug + 'static {
    /// The device holding it, as TensorFlow names devices (`/device:GPU:0`).
    fn device(&self) -> &str;
    /// Element type.
    fn dtype(&self) -> DType;
    /// Number of elements.
    fn len(&self) -> usize;
    /// True when it holds no elements.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The concrete type, for the device's own kernels.
    fn as_any(&self) -> &dyn Any;
}

/// Typed, reference-counted element storage. Cloning shares the elements.
#[derive(Clone, Debug)]
pub enum Buffer {
    /// float32 elements
    F32(Arc<Storage<f32>>),
    /// float64 elements
    F64(Arc<Storage<f64>>),
    /// int32 elements
    I32(Arc<Storage<i32>>),
    /// int64 elements
    I64(Arc<Storage<i64>>),
    /// uint8 elements
    U8(Arc<Storage<u8>>),
    /// bool elements
    Bool(Arc<Storage<bool>>),
    /// resource handles
    Resource(Arc<Storage<ResourceHandle>>),
    /// variant values (opaque, each held like a handle: a TensorList), charged for what
    /// they hold (see [`Tensor::variant_counted`])
    Variant(Arc<Storage<ResourceHandle>>),
    /// string elements (byte strings)
    Bytes(Arc<Storage<Vec<u8>>>),
    /// Elements in a device's memory (not readable from the host).
    Device(Arc<dyn DeviceMemory>),
}

impl Buffer {
    fn dtype(&self) -> DType {
        match self {
            Buffer::F32(_) => DType::Float32,
            Buffer::F64(_) => DType::Float64,
            Buffer::I32(_) => DType::Int32,
            Buffer::I64(_) => DType::Int64,
            Buffer::U8(_) => DType::UInt8,
            Buffer::Bool(_) => DType::Bool,
            Buffer::Resource(_) => DType::Resource,
            Buffer::Variant(_) => DType::Variant,
            Buffer::Bytes(_) => DType::String,
            Buffer::Device(m) => m.dtype(),
        }
    }

    fn len(&self) -> usize {
        match self {
            Buffer::F32(v) => v.len(),
            Buffer::F64(v) => v.len(),
            Buffer::I32(v) => v.len(),
            Buffer::I64(v) => v.len(),
            Buffer::U8(v) => v.len(),
            Buffer::Bool(v) => v.len(),
            Buffer::Resource(v) | Buffer::Variant(v) => v.len(),
            Buffer::Bytes(v) => v.len(),
            Buffer::Device(m) => m.len(),
        }
    }

    fn is_unique(&self) -> bool {
        match self {
            Buffer::F32(v) => Arc::strong_count(v) == 1,
            Buffer::F64(v) => Arc::strong_count(v) == 1,
            Buffer::I32(v) => Arc::strong_count(v) == 1,
            Buffer::I64(v) => Arc::strong_count(v) == 1,
            Buffer::U8(v) => Arc::strong_count(v) == 1,
            Buffer::Bool(v) => Arc::strong_count(v) == 1,
            Buffer::Resource(v) | Buffer::Variant(v) => Arc::strong_count(v) == 1,
            Buffer::Bytes(v) => Arc::strong_count(v) == 1,
            Buffer::Device(m) => Arc::strong_count(m) == 1,
        }
    }

    fn ptr_eq(&self, other: &Buffer) -> bool {
        match (self, other) {
            (Buffer::F32(a), Buffer::F32(b)) => Arc::ptr_eq(a, b),
            (Buffer::F64(a), Buffer::F64(b)) => Arc::ptr_eq(a, b),
            (Buffer::I32(a), Buffer::I32(b)) => Arc::ptr_eq(a, b),
            (Buffer::I64(a), Buffer::I64(b)) => Arc::ptr_eq(a, b),
            (Buffer::U8(a), Buffer::U8(b)) => Arc::ptr_eq(a, b),
            (Buffer::Bool(a), Buffer::Bool(b)) => Arc::ptr_eq(a, b),
            (Buffer::Resource(a), Buffer::Resource(b)) => Arc::ptr_eq(a, b),
            (Buffer::Variant(a), Buffer::Variant(b)) => Arc::ptr_eq(a, b),
            (Buffer::Bytes(a), Buffer::Bytes(b)) => Arc::ptr_eq(a, b),
            (Buffer::Device(a), Buffer::Device(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

/// An immutable n-dimensional array. Clones share storage; kernels may reuse a buffer that
/// nothing else holds (see [`Tensor::into_vec`]).
#[derive(Clone, Debug)]
pub struct Tensor {
    shape: Dims,
    buffer: Buffer,
}

/// Number of elements of a shape (1 for a scalar).
pub fn num_elements(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// Errors unless `shape` holds exactly `len` elements (without overflowing); `what` names
/// them in the message.
fn check_len(shape: &[usize], len: usize, what: &str) -> Result<()> {
    let n = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| Error::invalid(format!("shape {shape:?} overflows")))?;
    if n != len {
        return Err(Error::invalid(format!(
            "shape {shape:?} needs {n} {what} but {len} were given"
        )));
    }
    Ok(())
}

impl Tensor {
    /// Builds a tensor from row-major data and a shape; errors if the sizes differ.
    pub fn new<T: Element>(shape: &[usize], data: Vec<T>) -> Result<Tensor> {
        check_len(shape, data.len(), "elements")?;
        Ok(Tensor::from_parts(shape, data))
    }

    /// Builds a tensor whose size is known to match (internal use by kernels).
    pub(crate) fn from_parts<T: Element>(shape: impl Into<Dims>, data: Vec<T>) -> Tensor {
        let shape = shape.into();
        debug_assert_eq!(num_elements(&shape), data.len());
        let bytes = std::mem::size_of_val(data.as_slice());
        Tensor {
            shape,
            buffer: T::into_buffer(Arc::new(Storage::new(data, bytes))),
        }
    }

    /// A string tensor (`tf.string`) from row-major byte strings and a shape; errors if the
    /// sizes differ.
    pub fn from_strings<S: Into<Vec<u8>>>(shape: &[usize], data: Vec<S>) -> Result<Tensor> {
        check_len(shape, data.len(), "strings")?;
        Ok(Tensor::strings(
            Dims::from(shape),
            data.into_iter().map(Into::into).collect(),
        ))
    }

    /// A string tensor over `data`, charged by its bytes (each string's and its header's).
    fn strings(shape: Dims, data: Vec<Vec<u8>>) -> Tensor {
        let bytes = data
            .iter()
            .map(|s| s.len() + std::mem::size_of::<Vec<u8>>())
            .sum();
        Tensor {
            shape,
            buffer: Buffer::Bytes(Arc::new(Storage::new(data, bytes))),
        }
    }

    /// A rank-0 string tensor.
    pub fn string_scalar(value: impl Into<Vec<u8>>) -> Tensor {
        Tensor::strings(Dims::SCALAR, vec![value.into()])
    }

    /// The elements of a string tensor, row-major; errors for other dtypes.
    pub fn as_strings(&self) -> Result<&[Vec<u8>]> {
        match &self.buffer {
            Buffer::Bytes(v) => Ok(v),
            _ => Err(self.host_access_error(DType::String)),
        }
    }

    /// A tensor whose elements live in a device's memory; `shape` must hold as many
    /// elements as `memory`.
    pub fn from_device(shape: &[usize], memory: Arc<dyn DeviceMemory>) -> Result<Tensor> {
        if num_elements(shape) != memory.len() {
            return Err(Error::invalid(format!(
                "shape {shape:?} needs {} elements but the device memory on {} holds {}",
                num_elements(shape),
                memory.device(),
                memory.len()
            )));
        }
        Ok(Tensor {
            shape: Dims::from(shape),
            buffer: Buffer::Device(memory),
        })
    }

    /// True when the elements are in host memory (readable with [`Tensor::as_slice`]).
    pub fn is_host(&self) -> bool {
        !matches!(self.buffer, Buffer::Device(_))
    }

    /// The device memory holding the elements, unless they are in host memory.
    pub fn device_memory(&self) -> Option<&Arc<dyn DeviceMemory>> {
        match &self.buffer {
            Buffer::Device(m) => Some(m),
            _ => None,
        }
    }

    /// Where the elements are: `host`, or the device's name.
    pub fn location(&self) -> &str {
        match &self.buffer {
            Buffer::Device(m) => m.device(),
            _ => "host",
        }
    }

    /// The error of a host-only accessor used on device memory (or with the wrong type).
    fn host_access_error(&self, requested: DType) -> Error {
        match &self.buffer {
            Buffer::Device(m) => Error::FailedPrecondition(format!(
                "the tensor ({} {:?}) is in the memory of device {}, which the host cannot \
                 read; copy it to the host first (a session's fetches are copied for you)",
                self.dtype(),
                self.shape(),
                m.device()
            )),
            _ => Error::invalid(format!(
                "tensor has dtype {} but {requested} was requested",
                self.dtype()
            )),
        }
    }

    /// Errors unless the elements are in host memory.
    pub fn expect_host(&self) -> Result<&Tensor> {
        if self.is_host() {
            Ok(self)
        } else {
            Err(self.host_access_error(self.dtype()))
        }
    }

    /// A rank-0 tensor.
    pub fn scalar<T: Element>(value: T) -> Tensor {
        Tensor::from_parts(Dims::SCALAR, vec![value])
    }

    /// A rank-1 tensor.
    pub fn vector<T: Element>(data: Vec<T>) -> Tensor {
        Tensor::from_parts([data.len()], data)
    }

    /// A tensor of `shape` filled with `value`.
    pub fn full<T: Element>(shape: &[usize], value: T) -> Tensor {
        Tensor::from_parts(shape, vec![value; num_elements(shape)])
    }

    /// A tensor of `shape` filled with `value`, allocated through [`alloc::try_filled`]: an
    /// error instead of an abort when it does not fit the memory limit.
    pub fn try_full<T: Element>(shape: &[usize], value: T) -> Result<Tensor> {
        Ok(Tensor::from_parts(shape, alloc::try_filled(shape, value)?))
    }

    /// A tensor of zeros (false for bool, empty for string).
    pub fn zeros(dtype: DType, shape: &[usize]) -> Tensor {
        match dtype {
            DType::Float32 => Tensor::full(shape, 0f32),
            DType::Float64 => Tensor::full(shape, 0f64),
            DType::Int32 => Tensor::full(shape, 0i32),
            DType::Int64 => Tensor::full(shape, 0i64),
            DType::UInt8 => Tensor::full(shape, 0u8),
            DType::Bool => Tensor::full(shape, false),
            DType::Resource | DType::Variant => Tensor::null_handles(dtype, shape),
            DType::String => {
                Tensor::strings(Dims::from(shape), vec![Vec::new(); num_elements(shape)])
            }
        }
    }

    /// The element dtype.
    pub fn dtype(&self) -> DType {
        self.buffer.dtype()
    }

    /// The shape (empty for a scalar).
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Number of dimensions.
    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.buffer.len()
    }

    /// True when the tensor holds no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The shared storage.
    pub fn buffer(&self) -> &Buffer {
        &self.buffer
    }

    /// True when both tensors share one storage allocation.
    pub fn shares_buffer_with(&self, other: &Tensor) -> bool {
        self.buffer.ptr_eq(&other.buffer)
    }

    /// True when no other tensor shares this storage, so it may be reused in place.
    pub fn is_unique(&self) -> bool {
        self.buffer.is_unique()
    }

    /// The elements as a typed slice; errors if `T` is not the tensor's dtype.
    pub fn as_slice<T: Element>(&self) -> Result<&[T]> {
        T::from_buffer(&self.buffer)
            .map(|v| &***v)
            .ok_or_else(|| self.host_access_error(T::DTYPE))
    }

    /// A copy of the elements as a vector.
    pub fn to_vec<T: Element>(&self) -> Result<Vec<T>> {
        Ok(self.as_slice::<T>()?.to_vec())
    }

    /// The elements as an owned vector, without copying when nothing else shares them.
    pub fn into_vec<T: Element>(self) -> Result<Vec<T>> {
        let arc = T::from_buffer(&self.buffer)
            .cloned()
            .ok_or_else(|| self.host_access_error(T::DTYPE))?;
        drop(self);
        Ok(Arc::try_unwrap(arc).map_or_else(|shared| shared.to_vec(), Storage::into_vec))
    }

    /// The elements as a mutable slice when no other tensor shares the storage (and `T` is
    /// the dtype), so a kernel can write its result in place; `None` otherwise.
    pub fn unique_slice_mut<T: Element>(&mut self) -> Option<&mut [T]> {
        T::from_buffer_mut(&mut self.buffer)
            .and_then(Arc::get_mut)
            .map(|v| &mut **v)
    }

    /// Changes the elements in place, copying them first only when the storage is shared
    /// (copy on write); errors if `T` is not the dtype.
    pub fn modify<T: Element>(&mut self, f: impl FnOnce(&mut [T])) -> Result<()> {
        if let Some(v) = self.unique_slice_mut::<T>() {
            f(v);
            return Ok(());
        }
        let mut v = self.to_vec::<T>()?;
        f(&mut v);
        *self = Tensor::from_parts(self.shape.clone(), v);
        Ok(())
    }

    /// The single element of a tensor with one element (any rank).
    pub fn scalar_value<T: Element>(&self) -> Result<T> {
        let s = self.as_slice::<T>()?;
        if s.len() != 1 {
            return Err(Error::invalid(format!(
                "expected a single element, got shape {:?}",
                self.shape
            )));
        }
        Ok(s[0])
    }

    /// The same elements viewed with another shape of equal size (no copy).
    pub fn reshape(&self, shape: &[usize]) -> Result<Tensor> {
        if num_elements(shape) != self.len() {
            return Err(Error::invalid(format!(
                "cannot reshape a tensor of {} elements (shape {:?}) into shape {:?}",
                self.len(),
                self.shape,
                shape
            )));
        }
        Ok(Tensor {
            shape: Dims::from(shape),
            buffer: self.buffer.clone(),
        })
    }

    /// Elements converted to f64 (bool as 0/1, resource handles as NaN), for tests and
    /// printing.
    ///
    /// # Panics
    /// When the elements are in a device's memory (see [`Tensor::expect_host`]) or are
    /// strings.
    pub fn to_f64_vec(&self) -> Vec<f64> {
        fn conv<T: Element>(v: &[T]) -> Vec<f64> {
            v.iter().map(|x| x.to_f64()).collect()
        }
        match &self.buffer {
            Buffer::F32(v) => conv(v),
            Buffer::F64(v) => conv(v),
            Buffer::I32(v) => conv(v),
            Buffer::I64(v) => conv(v),
            Buffer::U8(v) => conv(v),
            Buffer::Bool(v) => conv(v),
            Buffer::Resource(v) | Buffer::Variant(v) => vec![f64::NAN; v.len()],
            Buffer::Bytes(_) => panic!("a string tensor has no numeric values"),
            Buffer::Device(_) => panic!("{}", self.host_access_error(DType::Float64)),
        }
    }

    /// Elements converted to i64 (for index- and shape-valued tensors).
    pub fn to_i64_vec(&self) -> Result<Vec<i64>> {
        fn conv<T: Element>(v: &[T]) -> Vec<i64> {
            v.iter().map(|x| x.to_i64()).collect()
        }
        Ok(match &self.buffer {
            Buffer::I32(v) => conv(v),
            Buffer::I64(v) => conv(v),
            Buffer::U8(v) => conv(v),
            Buffer::Device(_) => return Err(self.host_access_error(DType::Int64)),
            _ => {
                return Err(Error::invalid(format!(
                    "expected an integer tensor, got {}",
                    self.dtype()
                )))
            }
        })
    }

    /// True when both tensors have the same dtype, shape and elements (NaN is never equal).
    pub fn equals(&self, other: &Tensor) -> bool {
        self.shape == other.shape
            && match (&self.buffer, &other.buffer) {
                (Buffer::F32(a), Buffer::F32(b)) => a == b,
                (Buffer::F64(a), Buffer::F64(b)) => a == b,
                (Buffer::I32(a), Buffer::I32(b)) => a == b,
                (Buffer::I64(a), Buffer::I64(b)) => a == b,
                (Buffer::U8(a), Buffer::U8(b)) => a == b,
                (Buffer::Bool(a), Buffer::Bool(b)) => a == b,
                (Buffer::Resource(a), Buffer::Resource(b))
                | (Buffer::Variant(a), Buffer::Variant(b)) => resource::handles_eq(a, b),
                (Buffer::Bytes(a), Buffer::Bytes(b)) => a == b,
                (Buffer::Device(a), Buffer::Device(b)) => Arc::ptr_eq(a, b),
                _ => false,
            }
    }
}

impl PartialEq for Tensor {
    fn eq(&self, other: &Tensor) -> bool {
        self.equals(other)
    }
}

impl<T: Element> From<T> for Tensor {
    fn from(v: T) -> Tensor {
        Tensor::scalar(v)
    }
}

impl<T: Element> From<Vec<T>> for Tensor {
    fn from(v: Vec<T>) -> Tensor {
        Tensor::vector(v)
    }
}

impl<T: Element, const N: usize> From<[T; N]> for Tensor {
    fn from(v: [T; N]) -> Tensor {
        Tensor::vector(v.to_vec())
    }
}

impl<T: Element, const N: usize, const M: usize> From<[[T; N]; M]> for Tensor {
    fn from(v: [[T; N]; M]) -> Tensor {
        let data: Vec<T> = v.iter().flat_map(|row| row.iter().copied()).collect();
        Tensor::from_parts(vec![M, N], data)
    }
}

impl<T: Element, const N: usize, const M: usize, const L: usize> From<[[[T; N]; M]; L]> for Tensor {
    fn from(v: [[[T; N]; M]; L]) -> Tensor {
        let data: Vec<T> = v
            .iter()
            .flatten()
            .flat_map(|row| row.iter().copied())
            .collect();
        Tensor::from_parts(vec![L, M, N], data)
    }
}

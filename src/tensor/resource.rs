//! Resource handles: the elements of [`DType::Resource`] tensors. A handle points at state
//! that lives outside the dataflow (a session's resource variable); kernels pass it along
//! like a value and resolve it with [`Tensor::resource`].

use super::alloc::Storage;
use super::{Buffer, DType, Dims, Tensor};
use crate::{Error, Result};
use std::any::Any;
use std::fmt;
use std::sync::Arc;

/// One handle: the resource it points at, or none (a zero-initialized handle).
#[derive(Clone, Default)]
pub struct ResourceHandle(Option<Arc<dyn Any + Send + Sync>>);

impl ResourceHandle {
    /// A handle to `resource`.
    pub fn new<T: Any + Send + Sync>(resource: Arc<T>) -> ResourceHandle {
        ResourceHandle(Some(resource))
    }

    /// The resource when it is a `T`.
    pub fn get<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        self.0.clone()?.downcast::<T>().ok()
    }

    fn ptr_eq(&self, other: &ResourceHandle) -> bool {
        match (&self.0, &other.0) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        }
    }
}

impl fmt::Debug for ResourceHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(r) => write!(f, "ResourceHandle({:p})", Arc::as_ptr(r)),
            None => f.write_str("ResourceHandle(none)"),
        }
    }
}

/// True when both lists hold the same handles.
pub(super) fn handles_eq(a: &[ResourceHandle], b: &[ResourceHandle]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.ptr_eq(y))
}

impl Tensor {
    /// A scalar resource tensor holding `handle`.
    pub fn resource_handle(handle: ResourceHandle) -> Tensor {
        Tensor {
            shape: Dims::SCALAR,
            buffer: Buffer::Resource(Arc::new(Storage::new(vec![handle], 0))),
        }
    }

    /// A tensor of `shape` and dtype `resource` or `variant` filled with handles that
    /// point nowhere.
    pub(super) fn null_handles(dtype: DType, shape: &[usize]) -> Tensor {
        let handles = vec![ResourceHandle::default(); super::num_elements(shape)];
        let bytes = std::mem::size_of_val(handles.as_slice());
        let handles = Arc::new(Storage::new(handles, bytes));
        Tensor {
            shape: Dims::from(shape),
            buffer: if dtype == DType::Variant {
                Buffer::Variant(handles)
            } else {
                Buffer::Resource(handles)
            },
        }
    }

    /// A scalar variant tensor holding `value` (a TensorList).
    pub fn variant<T: Any + Send + Sync>(value: Arc<T>) -> Tensor {
        Tensor::variant_counted(value, 0)
    }

    /// A scalar variant tensor holding `value`, which takes `bytes` that no tensor's
    /// charge counts (a list's slots): they are charged to this thread's memory budget
    /// however few, and given back when the last tensor holding the value drops.
    pub fn variant_counted<T: Any + Send + Sync>(value: Arc<T>, bytes: usize) -> Tensor {
        let handles = vec![ResourceHandle::new(value)];
        let storage = match bytes {
            0 => Storage::new(handles, 0),
            _ => Storage::counted(handles, bytes),
        };
        Tensor {
            shape: Dims::SCALAR,
            buffer: Buffer::Variant(Arc::new(storage)),
        }
    }

    /// The `T` that a scalar resource tensor points at; `what` names the handle's user for
    /// the error (a non-resource tensor, a handle to something else or to nothing).
    pub fn resource<T: Any + Send + Sync>(&self, what: &str) -> Result<Arc<T>> {
        match &self.buffer {
            Buffer::Resource(handles) => self.held(handles, what),
            _ => Err(Error::invalid(format!(
                "{what} needs a resource handle, got a {} tensor",
                self.dtype()
            ))),
        }
    }

    /// The `T` that a scalar variant tensor holds (see [`Tensor::resource`]).
    pub fn variant_value<T: Any + Send + Sync>(&self, what: &str) -> Result<Arc<T>> {
        match &self.buffer {
            Buffer::Variant(handles) => self.held(handles, what),
            _ => Err(Error::invalid(format!(
                "{what} needs a variant, got a {} tensor",
                self.dtype()
            ))),
        }
    }

    fn held<T: Any + Send + Sync>(&self, handles: &[ResourceHandle], what: &str) -> Result<Arc<T>> {
        match handles {
            [h] => h.get::<T>().ok_or_else(|| {
                Error::invalid(format!(
                    "{what}: the {} does not hold a {}",
                    self.dtype(),
                    std::any::type_name::<T>()
                        .rsplit("::")
                        .next()
                        .unwrap_or("value")
                ))
            }),
            _ => Err(Error::invalid(format!(
                "{what} needs one {}, got {} (shape {:?})",
                self.dtype(),
                handles.len(),
                self.shape()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_resolve_to_their_resource_only() {
        let t = Tensor::resource_handle(ResourceHandle::new(Arc::new(7u32)));
        assert_eq!(t.dtype(), DType::Resource);
        assert_eq!(*t.resource::<u32>("test").unwrap(), 7);
        let e = t.resource::<String>("ReadVariableOp 'r'").unwrap_err();
        assert!(e.to_string().contains("ReadVariableOp 'r'"), "{e}");
        let zeros = Tensor::zeros(DType::Resource, &[2]);
        assert!(zeros.resource::<u32>("x").is_err());
        assert!(Tensor::scalar(1f32).resource::<u32>("x").is_err());
        assert!(t.clone() == t && zeros != t);
    }
}

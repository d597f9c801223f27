//! Per-session state: TensorFlow 1 variables, which persist across `Session::run` calls.

use crate::graph::{AttrsExt, Node};
use crate::tensor::{DType, PartialShape, Tensor};
use crate::{Error, Result};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};

/// One variable's storage.
#[derive(Debug)]
pub struct Variable {
    name: String,
    dtype: DType,
    shape: PartialShape,
    value: RwLock<Option<Tensor>>,
}

impl Variable {
    /// The variable's name (its `shared_name`, or else its node name).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Declared dtype.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Declared shape.
    pub fn shape(&self) -> &PartialShape {
        &self.shape
    }

    /// True once a value has been assigned.
    pub fn is_initialized(&self) -> bool {
        self.value.read().map(|v| v.is_some()).unwrap_or(false)
    }

    /// The current value; an error naming the variable when it was never initialized.
    pub fn read(&self) -> Result<Tensor> {
        let guard = self.value.read().map_err(|_| poisoned(&self.name))?;
        guard.clone().ok_or_else(|| {
            Error::FailedPrecondition(format!(
                "Attempting to use uninitialized value {}",
                self.name
            ))
        })
    }

    /// Replaces the value. With `validate_shape`, the value must fit the declared shape.
    pub fn assign(&self, value: Tensor, validate_shape: bool) -> Result<Tensor> {
        self.check(&value, validate_shape)?;
        let mut guard = self.value.write().map_err(|_| poisoned(&self.name))?;
        *guard = Some(value.clone());
        Ok(value)
    }

    /// Drops the value: the variable is uninitialized again (`DestroyResourceOp`).
    pub fn clear(&self) -> Result<()> {
        *self.value.write().map_err(|_| poisoned(&self.name))? = None;
        Ok(())
    }

    /// Updates the value in place under the write lock and returns the new value. `f`
    /// should check its inputs before changing anything; [`Tensor::modify`] writes in place
    /// when no reader still holds the old value. The dtype and shape must not change.
    pub fn update(&self, f: impl FnOnce(&mut Tensor) -> Result<()>) -> Result<Tensor> {
        let mut guard = self.value.write().map_err(|_| poisoned(&self.name))?;
        let current = guard.as_mut().ok_or_else(|| {
            Error::FailedPrecondition(format!(
                "Attempting to use uninitialized value {}",
                self.name
            ))
        })?;
        let shape = current.shape().to_vec();
        f(current)?;
        if current.dtype() != self.dtype || current.shape() != shape {
            return Err(Error::invalid(format!(
                "update of variable {} changed its dtype or shape",
                self.name
            )));
        }
        Ok(current.clone())
    }

    fn check(&self, value: &Tensor, validate_shape: bool) -> Result<()> {
        if value.dtype() != self.dtype {
            return Err(Error::invalid(format!(
                "cannot assign a {} value to variable {} of dtype {}",
                value.dtype(),
                self.name,
                self.dtype
            )));
        }
        if validate_shape && !self.shape.is_compatible_with(value.shape()) {
            return Err(Error::invalid(format!(
                "cannot assign a value of shape {:?} to variable {} of shape {}",
                value.shape(),
                self.name,
                self.shape
            )));
        }
        Ok(())
    }
}

fn poisoned(name: &str) -> Error {
    Error::FailedPrecondition(format!("variable {name} is poisoned by a panic"))
}

/// The variables of one session, by name.
#[derive(Debug, Default)]
pub struct Resources {
    variables: Mutex<BTreeMap<String, Arc<Variable>>>,
}

impl Resources {
    /// The storage for a `VariableV2` node, created (uninitialized) on first use.
    pub fn variable_for(&self, node: &Node) -> Arc<Variable> {
        let attrs = node.attrs();
        let shared = attrs.string_or("shared_name", "").unwrap_or_default();
        let name = if shared.is_empty() {
            node.name().to_string()
        } else {
            shared
        };
        let dtype = attrs.dtype("dtype").unwrap_or(DType::Float32);
        let shape = attrs.shape_or_unknown("shape").unwrap_or_default();
        let mut vars = self.variables.lock().unwrap_or_else(|p| p.into_inner());
        vars.entry(name.clone())
            .or_insert_with(|| {
                Arc::new(Variable {
                    name,
                    dtype,
                    shape,
                    value: RwLock::new(None),
                })
            })
            .clone()
    }

    /// A variable by name, if any run has touched it.
    pub fn variable(&self, name: &str) -> Option<Arc<Variable>> {
        self.variables
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
    }

    /// Every variable, sorted by name.
    pub fn variables(&self) -> Vec<Arc<Variable>> {
        self.variables
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }
}

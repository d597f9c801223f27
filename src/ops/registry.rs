//! The op registry: TensorFlow op type name → its [`OpDef`].

use super::OpDef;
use crate::{Error, Result};
use std::collections::HashMap;
use std::sync::OnceLock;

/// Collects op definitions while the registry is first built.
#[derive(Default)]
pub struct Registry {
    ops: HashMap<&'static str, &'static dyn OpDef>,
}

impl Registry {
    /// Registers an op (each op type once).
    pub fn add(&mut self, op: impl OpDef) {
        let op: &'static dyn OpDef = Box::leak(Box::new(op));
        let previous = self.ops.insert(op.name(), op);
        assert!(previous.is_none(), "op {} registered twice", op.name());
    }
}

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let mut r = Registry::default();
        super::core::register(&mut r);
        super::math::register(&mut r);
        super::reduce::register(&mut r);
        super::array::register(&mut r);
        super::linalg::register(&mut r);
        super::nn::register(&mut r);
        super::random::register(&mut r);
        super::state::register(&mut r);
        super::train::register(&mut r);
        r
    })
}

/// The op registered under a TensorFlow op type name.
pub fn lookup(op_type: &str) -> Result<&'static dyn OpDef> {
    registry()
        .ops
        .get(op_type)
        .copied()
        .ok_or_else(|| Error::NotFound(format!("Op type not registered '{op_type}'")))
}

/// Every registered op, sorted by name.
pub fn all_ops() -> Vec<&'static dyn OpDef> {
    let mut v: Vec<_> = registry().ops.values().copied().collect();
    v.sort_by_key(|o| o.name());
    v
}

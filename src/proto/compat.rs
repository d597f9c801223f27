//! TensorFlow op types that rustflow runs as another registered op with the same
//! semantics, so graphs from older TensorFlow versions import as runnable nodes. The node
//! keeps its original op type (re-export writes it back unchanged).
//!
//! * `Add` (TF1's `tf.add`): `AddV2` for numeric dtypes (a string `Add` stays unsupported,
//!   since rustflow has no strings).

use crate::graph::{AttrValue, TensorSpec};
use crate::graph::{Cost, Gradient, InferCtx, OpDef};
use crate::ops::registry;
use std::sync::OnceLock;

/// (TensorFlow op type, registered op that computes it).
const ALIASES: &[(&str, &str)] = &[("Add", "AddV2")];

/// An op type that delegates everything but its name to another op.
struct AliasOp {
    name: &'static str,
    target: &'static dyn OpDef,
}

impl OpDef for AliasOp {
    fn name(&self) -> &'static str {
        self.name
    }
    fn infer(&self, ctx: &InferCtx<'_>) -> Result<Vec<TensorSpec>, String> {
        self.target.infer(ctx)
    }
    fn kernel_op(&self) -> &'static str {
        self.target.kernel_op()
    }
    fn gradient(&self) -> Gradient {
        self.target.gradient()
    }
    fn is_stateful(&self) -> bool {
        self.target.is_stateful()
    }
    fn cost(&self) -> Cost {
        self.target.cost()
    }
    fn ref_inputs(&self) -> &'static [usize] {
        self.target.ref_inputs()
    }
    fn default_attrs(&self) -> Vec<(&'static str, AttrValue)> {
        self.target.default_attrs()
    }
}

fn aliases() -> &'static [AliasOp] {
    static OPS: OnceLock<Vec<AliasOp>> = OnceLock::new();
    OPS.get_or_init(|| {
        ALIASES
            .iter()
            .filter_map(|&(name, target)| {
                let target = registry::lookup(target).ok()?;
                Some(AliasOp { name, target })
            })
            .collect()
    })
}

/// The op rustflow runs for a TensorFlow op type: the registered one, else an alias.
pub fn lookup(op_type: &str) -> Option<&'static dyn OpDef> {
    if let Ok(op) = registry::lookup(op_type) {
        return Some(op);
    }
    aliases()
        .iter()
        .find(|a| a.name == op_type)
        .map(|a| a as &'static dyn OpDef)
}

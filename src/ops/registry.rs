//! The standard registries: every op type of this crate in one
//! [`OpRegistry`](crate::graph::OpRegistry) (what graphs look op types up in) and their
//! kernels in one [`KernelRegistry`] (what plans look kernels up in), filled once, on
//! first use, by each family's `register`.

use super::{KernelDef, Op, OpDef};
use crate::graph::OpRegistry;
use crate::kernel::KernelRegistry;
use crate::Result;
use std::sync::{OnceLock, RwLock, RwLockReadGuard};

/// Collects op definitions and their kernels while the registries are first built.
#[derive(Default)]
pub struct Registry {
    ops: OpRegistry,
    kernels: KernelRegistry,
}

impl Registry {
    /// Registers an op (each op type once) and its CPU kernel.
    pub fn add(&mut self, op: Op) {
        self.kernels.add(KernelDef::cpu(op.name(), op.cpu_kernel()));
        self.ops.add(op);
    }

    /// Registers an op definition whose kernels are registered separately.
    pub fn add_def(&mut self, op: impl OpDef) {
        self.ops.add(op);
    }

    /// Registers one more kernel of an op (another device, or another dtype).
    pub fn kernel(&mut self, def: KernelDef) {
        self.kernels.add(def);
    }

    /// The build function of an op's CPU kernel registered so far (a device whose kernel
    /// of the op never reads elements reuses it).
    #[cfg(feature = "cuda")]
    pub(crate) fn cpu_kernel(&self, op: &str) -> crate::kernel::KernelBuildFn {
        self.kernels
            .find(op, crate::kernel::DEVICE_CPU, None)
            .unwrap_or_else(|| panic!("op {op} has no CPU kernel"))
            .build
    }
}

struct Standard {
    ops: OpRegistry,
    kernels: RwLock<KernelRegistry>,
}

fn standard() -> &'static Standard {
    static REGISTRY: OnceLock<Standard> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let mut r = Registry::default();
        super::plumbing::register(&mut r);
        super::math::register(&mut r);
        super::reduce::register(&mut r);
        super::array::register(&mut r);
        super::linalg::register(&mut r);
        super::nn::register(&mut r);
        super::random::register(&mut r);
        super::state::register(&mut r);
        super::parsing::register(&mut r);
        super::resource::register(&mut r);
        super::control_flow::register(&mut r);
        super::list::register(&mut r);
        super::summary::register(&mut r);
        super::training::register(&mut r);
        #[cfg(feature = "cuda")]
        super::cuda::register(&mut r);
        Standard {
            ops: r.ops,
            kernels: RwLock::new(r.kernels),
        }
    })
}

/// The op definitions of every op of this crate.
pub fn op_registry() -> &'static OpRegistry {
    &standard().ops
}

/// The kernels of every op, by device. Read when plans are built (never per step).
pub fn kernels() -> RwLockReadGuard<'static, KernelRegistry> {
    standard().kernels.read().unwrap_or_else(|p| p.into_inner())
}

/// Registers a kernel at run time: how a device defined outside the op families (a test
/// device, a backend behind a feature) adds its kernels. Plans built afterwards find it.
pub fn register_kernel(def: KernelDef) {
    standard()
        .kernels
        .write()
        .unwrap_or_else(|p| p.into_inner())
        .add(def);
}

/// The op registered under a TensorFlow op type name.
pub fn lookup(op_type: &str) -> Result<&'static dyn OpDef> {
    op_registry().lookup(op_type)
}

/// Every registered op, sorted by name.
pub fn all_ops() -> Vec<&'static dyn OpDef> {
    op_registry().all()
}

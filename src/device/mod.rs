//! Devices: where tensors live and kernels run.
//!
//! A [`Device`] names itself as TensorFlow does (`/device:CPU:0`), says whether its memory
//! is the host's, and copies tensors between its memory and the host's. Every session has a
//! [`DeviceSet`]: the CPU (always first, the host) and one device per registered device
//! factory ([`register_device_factory`]: how a backend, or a test, adds a device type).
//! Kernels are registered per device type (`crate::kernel`); the plan's placement pass
//! (`crate::passes`) gives each step a device of the set and inserts copies where a value
//! crosses devices, so the executor never needs to know about devices.
//!
//! The CPU device's compute helpers live here too: [`cpu`] (broadcasting and elementwise
//! loops), [`gemm`] (matrix products), [`parallel`] and [`workers`] (intra-op threads),
//! [`memory`] (keeping freed kernel buffers in the heap). [`alloc`] is the caching allocator
//! of device memory; `cuda` (feature `cuda`) the GPU device, registered as the built-in
//! factory of device type `GPU`.

pub mod alloc;
pub(crate) mod cores;
pub mod cpu;
#[cfg(feature = "cuda")]
pub mod cuda;
pub mod gemm;
pub mod memory;
pub mod parallel;
pub mod workers;

use crate::tensor::Tensor;
use crate::{Error, Result};
use std::fmt;
use std::sync::{Arc, OnceLock, RwLock};

/// The device type of the host's CPU (TensorFlow's `DEVICE_CPU`).
pub const CPU: &str = "CPU";

/// One device of a session.
pub trait Device: Send + Sync + fmt::Debug {
    /// Its name as TensorFlow writes it: `/device:CPU:0`.
    fn name(&self) -> &str;
    /// Its type (`CPU`, `GPU`): the key its kernels are registered under.
    fn device_type(&self) -> &'static str;
    /// Its index among the devices of its type.
    fn index(&self) -> usize;
    /// Whether its memory is the host's (CPU kernels can read its tensors as they are).
    fn is_host(&self) -> bool {
        false
    }
    /// The concrete device, for its own kernels (a backend returns `Some(self)`).
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        None
    }
    /// A copy of `t` (in host memory) in this device's memory.
    fn copy_from_host(&self, t: &Tensor) -> Result<Tensor>;
    /// A copy of `t` (in this device's memory) in host memory.
    fn copy_to_host(&self, t: &Tensor) -> Result<Tensor>;
}

/// The host's CPU: its memory is the host's, so copies are free.
#[derive(Debug)]
pub struct CpuDevice;

impl Device for CpuDevice {
    fn name(&self) -> &str {
        "/device:CPU:0"
    }
    fn device_type(&self) -> &'static str {
        CPU
    }
    fn index(&self) -> usize {
        0
    }
    fn is_host(&self) -> bool {
        true
    }
    fn copy_from_host(&self, t: &Tensor) -> Result<Tensor> {
        Ok(t.clone())
    }
    fn copy_to_host(&self, t: &Tensor) -> Result<Tensor> {
        Ok(t.clone())
    }
}

/// Moves `t` onto `to`, from wherever it is (host memory or `from`'s memory).
pub fn copy_between(t: &Tensor, from: &dyn Device, to: &dyn Device) -> Result<Tensor> {
    let host = if t.is_host() {
        t.clone()
    } else {
        from.copy_to_host(t)?
    };
    if to.is_host() {
        Ok(host)
    } else {
        to.copy_from_host(&host)
    }
}

/// Makes the devices of one device type for a new session.
pub type DeviceFactory = fn() -> Vec<Arc<dyn Device>>;

fn factories() -> &'static RwLock<Vec<(&'static str, DeviceFactory)>> {
    static FACTORIES: OnceLock<RwLock<Vec<(&'static str, DeviceFactory)>>> = OnceLock::new();
    FACTORIES.get_or_init(|| {
        let builtin: Vec<(&'static str, DeviceFactory)> = vec![
            #[cfg(feature = "cuda")]
            (cuda::GPU, cuda::devices),
        ];
        RwLock::new(builtin)
    })
}

/// Registers a device type: sessions made afterwards get its devices. Registering the same
/// type again replaces its factory.
pub fn register_device_factory(device_type: &'static str, factory: DeviceFactory) {
    let mut f = factories().write().unwrap_or_else(|p| p.into_inner());
    f.retain(|(t, _)| *t != device_type);
    f.push((device_type, factory));
}

/// A parsed TensorFlow device string: `/job:localhost/replica:0/task:0/device:GPU:1`,
/// `/device:CPU:0`, `/cpu:0`, `/gpu:1`, `GPU:0`, `/device:GPU:*`. Job, replica and task
/// are accepted and ignored (one process); a missing type or index matches any.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceSpec {
    /// Device type, upper case (`GPU`), if given.
    pub device_type: Option<String>,
    /// Index, if given.
    pub index: Option<usize>,
}

impl DeviceSpec {
    /// Parses a device string; the empty string means any device.
    pub fn parse(s: &str) -> Result<DeviceSpec> {
        let bad = || Error::invalid(format!("malformed device specification '{s}'"));
        let mut spec = DeviceSpec::default();
        for part in s.split('/').filter(|p| !p.is_empty()) {
            let (key, rest) = match part.split_once(':') {
                Some((k, r)) => (k, Some(r)),
                None => (part, None),
            };
            match key.to_ascii_lowercase().as_str() {
                "job" | "replica" | "task" => {}
                "device" => {
                    let rest = rest.ok_or_else(bad)?;
                    let (t, i) = rest.split_once(':').unwrap_or((rest, "*"));
                    spec.device_type = Some(t.to_ascii_uppercase());
                    spec.index = parse_index(i).ok_or_else(bad)?;
                }
                _ => {
                    // `/cpu:0`, `GPU:1`, or a bare type.
                    spec.device_type = Some(key.to_ascii_uppercase());
                    spec.index = parse_index(rest.unwrap_or("*")).ok_or_else(bad)?;
                }
            }
        }
        Ok(spec)
    }

    /// Whether a device matches.
    pub fn matches(&self, device: &dyn Device) -> bool {
        self.device_type
            .as_deref()
            .is_none_or(|t| t == device.device_type())
            && self.index.is_none_or(|i| i == device.index())
    }

    /// True when it names no device type (any device will do).
    pub fn is_any(&self) -> bool {
        self.device_type.is_none()
    }
}

/// `*` is any index.
fn parse_index(s: &str) -> Option<Option<usize>> {
    if s == "*" {
        Some(None)
    } else {
        s.parse().ok().map(Some)
    }
}

/// The devices of one session: the CPU first (the host), then every registered factory's.
#[derive(Clone, Debug)]
pub struct DeviceSet {
    devices: Vec<Arc<dyn Device>>,
}

impl Default for DeviceSet {
    fn default() -> Self {
        DeviceSet::new()
    }
}

impl DeviceSet {
    /// The CPU and the devices of every registered device type.
    pub fn new() -> DeviceSet {
        let mut devices: Vec<Arc<dyn Device>> = vec![Arc::new(CpuDevice)];
        for (_, factory) in factories().read().unwrap_or_else(|p| p.into_inner()).iter() {
            devices.extend(factory());
        }
        DeviceSet { devices }
    }

    /// Index of the host CPU.
    pub const HOST: usize = 0;

    /// The device at `index`.
    pub fn get(&self, index: usize) -> &Arc<dyn Device> {
        &self.devices[index]
    }

    /// Every device, the host first.
    pub fn devices(&self) -> &[Arc<dyn Device>] {
        &self.devices
    }

    /// The first device matching `spec`.
    pub fn find(&self, spec: &DeviceSpec) -> Option<usize> {
        self.devices.iter().position(|d| spec.matches(d.as_ref()))
    }
}

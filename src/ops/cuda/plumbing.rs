//! GPU kernels that never read elements, so the CPU kernels serve: variables (their value
//! stays in device memory), Identity, the reshapes (their shape inputs in host memory),
//! and Shape/Size/Rank (their outputs in host memory).

use super::{ELEMENTS, GPU};
use crate::kernel::KernelDef;
use crate::ops::Registry;

/// Ops whose CPU kernel runs on device tensors as they are, and their host-memory inputs.
const AS_IS: &[(&str, &[usize])] = &[
    ("VariableV2", &[]),
    ("Assign", &[]),
    ("Identity", &[]),
    ("StopGradient", &[]),
    ("Reshape", &[1]),
    ("ExpandDims", &[1]),
    ("Squeeze", &[]),
];

/// Ops that only read shapes: outputs in host memory.
const SHAPES: &[&str] = &["Shape", "Size", "Rank"];

pub(super) fn register(r: &mut Registry) {
    let cpu = |r: &Registry, op: &str| r.cpu_kernel(op);
    for &(op, host) in AS_IS {
        let build = cpu(r, op);
        r.kernel(
            KernelDef::new(op, GPU, build)
                .type_constraint(ELEMENTS)
                .host_memory(host),
        );
    }
    // NoOp has no dtype to constrain.
    let no_op = cpu(r, "NoOp");
    r.kernel(KernelDef::new("NoOp", GPU, no_op));
    for &op in SHAPES {
        let build = cpu(r, op);
        r.kernel(
            KernelDef::new(op, GPU, build)
                .type_constraint(ELEMENTS)
                .host_outputs(),
        );
    }
}

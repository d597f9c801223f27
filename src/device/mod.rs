//! CPU helpers shared by kernels: broadcasting and elementwise loops, matrix products,
//! intra-op parallel loops.

pub(crate) mod cores;
pub mod cpu;
pub mod gemm;
pub mod parallel;
pub mod workers;

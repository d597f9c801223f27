//! CPU helpers shared by kernels: broadcasting and elementwise loops, matrix products,
//! intra-op parallel loops.

pub mod cpu;
pub mod gemm;
pub mod parallel;
pub mod workers;

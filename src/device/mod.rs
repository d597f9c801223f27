//! CPU helpers shared by kernels: broadcasting and elementwise loops, matrix products.

pub mod cpu;
pub mod gemm;

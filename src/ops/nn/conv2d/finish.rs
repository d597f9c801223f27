//! What a fused forward convolution (`_FusedConv2D`) does to each output pixel after its
//! sums, shared by the convolution paths (`cpu.rs`) and the implicit products that apply
//! it tile by tile (`implicit.rs`).

use crate::ops::linalg::matmul::cpu::{add_bias_then, Activation};
use crate::ops::math::activation::{relu, relu6};
use crate::tensor::Number;

/// What a fused forward step (`_FusedConv2D`) does to each output pixel after its sums:
/// adds `bias` (one per output channel), then applies `activation`.
#[derive(Clone, Copy)]
pub(super) struct BiasActivation<'a, T> {
    pub(super) bias: &'a [T],
    pub(super) activation: Activation,
}

impl<T: Number> BiasActivation<'_, T> {
    /// Finishes `pixels`, whole output pixels of `bias.len()` channels each.
    pub(super) fn apply(&self, pixels: &mut [T]) {
        match self.activation {
            Activation::Linear => add_bias_then(self.bias, |x| x)(0..0, pixels),
            Activation::Relu => add_bias_then(self.bias, relu)(0..0, pixels),
            Activation::Relu6 => add_bias_then(self.bias, relu6)(0..0, pixels),
        }
    }
}

//! Neural-network ops, named and attributed as in TensorFlow: BiasAdd, Softmax,
//! LogSoftmax, the softmax cross-entropy losses, Conv2D, MaxPool, AvgPool, and the
//! gradient kernels TensorFlow graphs use for them (BiasAddGrad, Conv2DBackpropInput,
//! Conv2DBackpropFilter, MaxPoolGrad, AvgPoolGrad).

mod bias;
mod conv;
mod pool;
mod softmax;
mod window;

use super::Registry;

pub(crate) fn register(r: &mut Registry) {
    bias::register(r);
    softmax::register(r);
    conv::register(r);
    pool::register(r);
}

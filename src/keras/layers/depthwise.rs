//! `DepthwiseConv2D` (each input channel convolved with its own `depth_multiplier`
//! filters, op DepthwiseConv2dNative) and `SeparableConv2D` (the same, then a 1×1
//! convolution to `filters` channels), each `activation(... + bias)` over NHWC images.
//! Both are [`Depthwise`], which a [`Pointwise`] part makes separable.

use crate::graph::{Graph, Output};
use crate::keras::activations::ActivationArg;
use crate::keras::initializers::Initializer;
use crate::keras::layer::{
    add_weight, base_config, layer_error, regularize, unique_name, CallContext, Layer, Shape,
    Weight,
};
use crate::keras::layers::args::{Args, Size2};
use crate::keras::layers::conv::ConvWindow;
use crate::keras::layers::kernel::{kernel_bias_builders, KernelBias};
use crate::keras::regularizers::Regularizer;
use crate::tensor::DType;
use crate::Result;
use serde_json::{Map, Value};
use std::fmt::Debug;

/// A depthwise 2-D convolution (`keras.layers.DepthwiseConv2D(kernel_size)`): output
/// channel `c·depth_multiplier + q` is input channel `c` convolved with filter `[.., c, q]`.
pub type DepthwiseConv2D = Depthwise<NoPointwise>;

/// A depthwise separable 2-D convolution (`keras.layers.SeparableConv2D(filters,
/// kernel_size)`): the depthwise convolution, then a 1×1 convolution to `filters`.
pub type SeparableConv2D = Depthwise<Pointwise>;

/// What follows the depthwise convolution: nothing ([`NoPointwise`]) or a 1×1
/// convolution ([`Pointwise`]).
pub trait PointwisePart: Debug + Send + 'static {
    /// Keras's class name.
    const CLASS: &'static str;
    /// The prefix of automatic layer names.
    const PREFIX: &'static str;
    /// The output channels for `depth` depthwise output channels.
    fn out_channels(&self, depth: usize) -> usize;
    /// Creates the part's weight (if any) under `scope` for `depth` input channels.
    fn build(&mut self, g: &mut Graph, scope: &str, depth: usize) -> Result<()>;
    /// Applies the part to the depthwise output `z`.
    fn apply(&self, g: &mut Graph, z: Output, ctx: &mut CallContext) -> Result<Output>;
    /// The part's weight, once built.
    fn weight(&self) -> Option<Weight>;
    /// The part's entries of the layer config.
    fn config(&self) -> Vec<(&'static str, Value)>;
}

/// No pointwise convolution (DepthwiseConv2D).
#[derive(Debug, Default)]
pub struct NoPointwise;

impl PointwisePart for NoPointwise {
    const CLASS: &'static str = "DepthwiseConv2D";
    const PREFIX: &'static str = "depthwise_conv2d";
    fn out_channels(&self, depth: usize) -> usize {
        depth
    }
    fn build(&mut self, _g: &mut Graph, _scope: &str, _depth: usize) -> Result<()> {
        Ok(())
    }
    fn apply(&self, _g: &mut Graph, z: Output, _ctx: &mut CallContext) -> Result<Output> {
        Ok(z)
    }
    fn weight(&self) -> Option<Weight> {
        None
    }
    fn config(&self) -> Vec<(&'static str, Value)> {
        Vec::new()
    }
}

/// The 1×1 convolution of SeparableConv2D: `filters`, its initializer and regularizer.
#[derive(Debug)]
pub struct Pointwise {
    filters: usize,
    initializer: Initializer,
    regularizer: Option<Regularizer>,
    kernel: Option<Weight>,
}

impl PointwisePart for Pointwise {
    const CLASS: &'static str = "SeparableConv2D";
    const PREFIX: &'static str = "separable_conv2d";
    fn out_channels(&self, _depth: usize) -> usize {
        self.filters
    }
    fn build(&mut self, g: &mut Graph, scope: &str, depth: usize) -> Result<()> {
        let k0 = self
            .initializer
            .create(g, &[1, 1, depth, self.filters], DType::Float32)?;
        self.kernel = Some(add_weight(g, scope, "pointwise_kernel", k0, true)?);
        Ok(())
    }
    fn apply(&self, g: &mut Graph, z: Output, ctx: &mut CallContext) -> Result<Output> {
        let Some(k) = &self.kernel else {
            return Ok(z);
        };
        regularize(g, ctx, Some(k), self.regularizer)?;
        g.conv2d(z, k.var.read, &[1; 4], "VALID")
    }
    fn weight(&self) -> Option<Weight> {
        self.kernel.clone()
    }
    fn config(&self) -> Vec<(&'static str, Value)> {
        vec![
            ("filters", Value::from(self.filters)),
            ("pointwise_initializer", self.initializer.to_config()),
            (
                "pointwise_regularizer",
                Regularizer::serialize(self.regularizer),
            ),
            ("pointwise_constraint", Value::Null),
        ]
    }
}

/// A depthwise convolution layer followed by the pointwise part `P` (see
/// [`DepthwiseConv2D`] and [`SeparableConv2D`]), with Keras's defaults: strides 1,
/// `"valid"` padding, dilation 1, depth multiplier 1, no activation, a bias,
/// Glorot-uniform kernels.
#[derive(Debug)]
pub struct Depthwise<P: PointwisePart> {
    name: String,
    window: ConvWindow,
    depth_multiplier: usize,
    activation: ActivationArg,
    kb: KernelBias,
    pointwise: P,
}

impl DepthwiseConv2D {
    /// `DepthwiseConv2D(kernel_size)`; `kernel_size` is one number or a pair.
    pub fn new(kernel_size: impl Into<Size2>) -> Self {
        Depthwise::with(kernel_size.into(), NoPointwise)
    }
}

impl SeparableConv2D {
    /// `SeparableConv2D(filters, kernel_size)`.
    pub fn new(filters: usize, kernel_size: impl Into<Size2>) -> Self {
        Depthwise::with(
            kernel_size.into(),
            Pointwise {
                filters,
                initializer: Initializer::GlorotUniform { seed: None },
                regularizer: None,
                kernel: None,
            },
        )
    }

    /// The pointwise kernel's initializer (default `glorot_uniform`).
    pub fn pointwise_initializer(mut self, init: Initializer) -> Self {
        self.pointwise.initializer = init;
        self
    }

    /// A penalty on the pointwise kernel added to the training loss.
    pub fn pointwise_regularizer(mut self, r: Regularizer) -> Self {
        self.pointwise.regularizer = Some(r);
        self
    }
}

impl<P: PointwisePart> Depthwise<P> {
    fn with(kernel_size: Size2, pointwise: P) -> Self {
        Depthwise {
            name: unique_name(P::PREFIX),
            window: ConvWindow::new(kernel_size),
            depth_multiplier: 1,
            activation: ActivationArg::new("linear"),
            kb: KernelBias::new("depthwise"),
            pointwise,
        }
    }

    kernel_bias_builders!(
        "depthwise kernel",
        depthwise_initializer,
        depthwise_regularizer
    );

    /// Steps of the window (default 1).
    pub fn strides(mut self, strides: impl Into<Size2>) -> Self {
        self.window.strides = strides.into();
        self
    }

    /// `"valid"` (default) or `"same"`; another value is reported at build.
    pub fn padding(mut self, padding: &str) -> Self {
        self.window.padding = padding.to_string();
        self
    }

    /// Spacing of the kernel's taps (default 1).
    pub fn dilation_rate(mut self, rate: impl Into<Size2>) -> Self {
        self.window.dilation_rate = rate.into();
        self
    }

    /// Filters per input channel (default 1).
    pub fn depth_multiplier(mut self, m: usize) -> Self {
        self.depth_multiplier = m;
        self
    }

    /// The activation by Keras's name; an unknown name is reported at build.
    pub fn activation(mut self, name: &str) -> Self {
        self.activation = ActivationArg::new(name);
        self
    }

    /// Replaces the automatic name.
    pub fn named(mut self, name: &str) -> Self {
        self.name = name.to_string();
        self
    }

    /// Reads the options both layers share from a Keras config into `self`.
    fn read_args(mut self, a: &Args<'_>) -> Result<Self> {
        a.unsupported(&["pointwise_constraint"])?;
        self.window = ConvWindow::from_args(a)?;
        self.depth_multiplier = match a.raw("depth_multiplier") {
            None => 1,
            Some(_) => a.positive("depth_multiplier")?,
        };
        self.activation = a.activation("activation")?;
        self.kb.read_args(a)?;
        Ok(match a.name() {
            Some(n) => self.named(n),
            None => self,
        })
    }

    /// Output channels of the depthwise convolution for `channels` input channels.
    fn depth(&self, channels: usize) -> Result<usize> {
        if self.depth_multiplier == 0 {
            return Err(layer_error(
                self,
                "Invalid value for argument `depth_multiplier`. Expected a strictly positive \
                 value. Received depth_multiplier=0.",
            ));
        }
        channels
            .checked_mul(self.depth_multiplier)
            .ok_or_else(|| layer_error(self, "too many channels"))
    }
}

impl DepthwiseConv2D {
    /// The layer a Keras config describes.
    pub(crate) fn from_args(a: &Args<'_>) -> Result<Self> {
        DepthwiseConv2D::new(1).read_args(a)
    }
}

impl SeparableConv2D {
    /// The layer a Keras config describes.
    pub(crate) fn from_args(a: &Args<'_>) -> Result<Self> {
        let mut l = SeparableConv2D::new(a.positive("filters")?, 1).read_args(a)?;
        l.pointwise.initializer =
            a.initializer("pointwise_initializer", l.pointwise.initializer.clone())?;
        l.pointwise.regularizer = a.regularizer("pointwise_regularizer")?;
        Ok(l)
    }
}

impl<P: PointwisePart> Layer for Depthwise<P> {
    fn name(&self) -> &str {
        &self.name
    }

    fn class_name(&self) -> &'static str {
        P::CLASS
    }

    fn built(&self) -> bool {
        self.kb.kernel.is_some()
    }

    fn build(&mut self, g: &mut Graph, input_shape: &[Option<usize>]) -> Result<()> {
        self.activation.checked(self)?;
        self.compute_output_shape(input_shape)?;
        let channels = self.window.channels(self, input_shape)?;
        let depth = self.depth(channels)?;
        let [kh, kw] = self.window.kernel_size.0;
        let name = if P::CLASS == "DepthwiseConv2D" {
            "kernel"
        } else {
            "depthwise_kernel"
        };
        let scope = self.name.clone();
        let kernel_shape = [kh, kw, channels, self.depth_multiplier];
        self.kb.build_kernel(g, &scope, name, &kernel_shape)?;
        self.pointwise.build(g, &scope, depth)?;
        let out = self.pointwise.out_channels(depth);
        self.kb
            .build_bias(g, &scope, |g, init| init.create(g, &[out], DType::Float32))
    }

    fn compute_output_shape(&self, input_shape: &[Option<usize>]) -> Result<Shape> {
        let channels = self.window.channels(self, input_shape)?;
        let out = self.pointwise.out_channels(self.depth(channels)?);
        if out == 0 {
            return Err(layer_error(
                self,
                "Invalid value for argument `filters`. Expected a strictly positive value. \
                 Received filters=0.",
            ));
        }
        self.window.output_shape(self, input_shape, out)
    }

    fn call(&self, g: &mut Graph, x: Output, ctx: &mut CallContext) -> Result<Output> {
        let kernel = self.kb.kernel(self)?;
        self.window.check_input(self, g, x, kernel.shape[2])?;
        let activation = self.activation.checked(self)?;
        let padding = self.window.checked_padding(self)?;
        let kernel = kernel.var.read;
        self.kb.regularize(g, ctx)?;
        let (strides, dilations) = (self.window.strides.nhwc(), self.window.dilation_rate.nhwc());
        let name = self.name.clone();
        g.name_scope(&name, |g| {
            let z = g.depthwise_conv2d(x, kernel, &strides, padding.tf(), &dilations)?;
            let z = self.pointwise.apply(g, z, ctx)?;
            let z = self.kb.add_bias(g, z)?;
            activation.apply(g, z)
        })
    }

    fn weights(&self) -> Vec<Weight> {
        self.kb.weights(self.pointwise.weight())
    }

    fn get_config(&self) -> Map<String, Value> {
        let mut m = base_config(&self.name);
        m.insert(
            "depth_multiplier".into(),
            Value::from(self.depth_multiplier),
        );
        self.window.write_config(&mut m);
        m.insert("activation".into(), Value::from(self.activation.name()));
        self.kb.write_config(&mut m);
        m.insert("activity_regularizer".into(), Value::Null);
        for (k, v) in self.pointwise.config() {
            m.insert(k.into(), v);
        }
        m
    }
}

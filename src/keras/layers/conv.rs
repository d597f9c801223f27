//! `Conv2D`: `activation(conv2d(x, kernel) + bias)` over NHWC images, and the sliding
//! window every 2-D convolution layer shares ([`ConvWindow`]: kernel size, strides,
//! padding, dilation, the output shape and the input checks).

use crate::graph::{Graph, Output};
use crate::keras::activations::ActivationArg;
use crate::keras::layer::{
    base_config, format_shape, layer_error, unique_name, CallContext, Layer, Shape, Weight,
};
use crate::keras::layers::args::{Args, Padding, Size2};
use crate::keras::layers::kernel::{kernel_bias_builders, KernelBias};
use crate::Result;
use serde_json::{Map, Value};

/// A 2-D convolution over `(batch, height, width, channels)` images
/// (`keras.layers.Conv2D(filters, kernel_size)`), with Keras's defaults: strides 1,
/// `"valid"` padding, dilation 1, no activation, a bias, Glorot-uniform kernel.
#[derive(Debug)]
pub struct Conv2D {
    name: String,
    filters: usize,
    window: ConvWindow,
    activation: ActivationArg,
    kb: KernelBias,
}

impl Conv2D {
    /// `Conv2D(filters, kernel_size)`; `kernel_size` is one number or a pair.
    pub fn new(filters: usize, kernel_size: impl Into<Size2>) -> Conv2D {
        Conv2D {
            name: unique_name("conv2d"),
            filters,
            window: ConvWindow::new(kernel_size.into()),
            activation: ActivationArg::new("linear"),
            kb: KernelBias::new("kernel"),
        }
    }

    kernel_bias_builders!("kernel", kernel_initializer, kernel_regularizer);

    /// Steps of the window (default 1).
    pub fn strides(mut self, strides: impl Into<Size2>) -> Conv2D {
        self.window.strides = strides.into();
        self
    }

    /// `"valid"` (default) or `"same"`; another value is reported at build.
    pub fn padding(mut self, padding: &str) -> Conv2D {
        self.window.padding = padding.to_string();
        self
    }

    /// Spacing of the kernel's taps (default 1).
    pub fn dilation_rate(mut self, rate: impl Into<Size2>) -> Conv2D {
        self.window.dilation_rate = rate.into();
        self
    }

    /// The activation by Keras's name; an unknown name is reported at build.
    pub fn activation(mut self, name: &str) -> Conv2D {
        self.activation = ActivationArg::new(name);
        self
    }

    /// Replaces the automatic name.
    pub fn named(mut self, name: &str) -> Conv2D {
        self.name = name.to_string();
        self
    }

    /// The layer a Keras config describes.
    pub(crate) fn from_args(a: &Args<'_>) -> Result<Conv2D> {
        if a.i64_or("groups", 1)? != 1 {
            return Err(a.err("'groups' other than 1 is not supported"));
        }
        let mut c = Conv2D::new(a.positive("filters")?, 1);
        c.window = ConvWindow::from_args(a)?;
        c.activation = a.activation("activation")?;
        c.kb.read_args(a)?;
        Ok(match a.name() {
            Some(n) => c.named(n),
            None => c,
        })
    }
}

impl Layer for Conv2D {
    fn name(&self) -> &str {
        &self.name
    }

    fn class_name(&self) -> &'static str {
        "Conv2D"
    }

    fn built(&self) -> bool {
        self.kb.kernel.is_some()
    }

    fn build(&mut self, g: &mut Graph, input_shape: &[Option<usize>]) -> Result<()> {
        if self.filters == 0 {
            return Err(layer_error(
                self,
                "Invalid value for argument `filters`. Expected a strictly positive value. \
                 Received filters=0.",
            ));
        }
        self.activation.checked(self)?;
        self.compute_output_shape(input_shape)?;
        let channels = self.window.channels(self, input_shape)?;
        let [kh, kw] = self.window.kernel_size.0;
        let (scope, filters) = (self.name.clone(), self.filters);
        self.kb.build(
            g,
            &scope,
            "kernel",
            &[kh, kw, channels, filters],
            &[filters],
        )
    }

    fn compute_output_shape(&self, input_shape: &[Option<usize>]) -> Result<Shape> {
        self.window.output_shape(self, input_shape, self.filters)
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
            let z = g.conv2d_dilated(x, kernel, &strides, padding.tf(), &dilations)?;
            let z = self.kb.add_bias(g, z)?;
            activation.apply(g, z)
        })
    }

    fn weights(&self) -> Vec<Weight> {
        self.kb.weights(None)
    }

    fn get_config(&self) -> Map<String, Value> {
        let mut m = base_config(&self.name);
        m.insert("filters".into(), Value::from(self.filters));
        self.window.write_config(&mut m);
        m.insert("groups".into(), Value::from(1));
        m.insert("activation".into(), Value::from(self.activation.name()));
        self.kb.write_config(&mut m);
        m.insert("activity_regularizer".into(), Value::Null);
        m
    }
}

/// The sliding window of a 2-D convolution layer over NHWC images: `kernel_size`,
/// `strides`, `padding` and `dilation_rate`, with Keras's defaults (1, `"valid"`, 1).
#[derive(Clone, Debug)]
pub(crate) struct ConvWindow {
    pub kernel_size: Size2,
    pub strides: Size2,
    pub padding: String,
    pub dilation_rate: Size2,
}

impl ConvWindow {
    /// A window of `kernel_size` with the defaults.
    pub fn new(kernel_size: Size2) -> ConvWindow {
        ConvWindow {
            kernel_size,
            strides: Size2([1, 1]),
            padding: "valid".into(),
            dilation_rate: Size2([1, 1]),
        }
    }

    /// The window a Keras config describes (`channels_last` only).
    pub fn from_args(a: &Args<'_>) -> Result<ConvWindow> {
        a.channels_last()?;
        let kernel = a
            .size2("kernel_size")?
            .ok_or_else(|| a.err("needs 'kernel_size'"))?;
        Ok(ConvWindow {
            kernel_size: kernel,
            strides: a.size2("strides")?.unwrap_or(Size2([1, 1])),
            padding: a.padding()?.name().into(),
            dilation_rate: a.size2("dilation_rate")?.unwrap_or(Size2([1, 1])),
        })
    }

    /// Writes the window's entries into a layer config.
    pub fn write_config(&self, m: &mut Map<String, Value>) {
        m.insert("kernel_size".into(), self.kernel_size.to_json());
        m.insert("strides".into(), self.strides.to_json());
        m.insert(
            "padding".into(),
            Value::from(self.padding.to_ascii_lowercase()),
        );
        m.insert("data_format".into(), Value::from("channels_last"));
        m.insert("dilation_rate".into(), self.dilation_rate.to_json());
    }

    /// The padding, or an error naming `layer`.
    pub fn checked_padding(&self, layer: &dyn Layer) -> Result<Padding> {
        Padding::parse(&self.padding).map_err(|m| layer_error(layer, m))
    }

    /// The input channels, after checking the input is NHWC with them known.
    pub fn channels(&self, layer: &dyn Layer, input_shape: &[Option<usize>]) -> Result<usize> {
        match input_shape {
            [_, _, _, Some(c)] => Ok(*c),
            _ => Err(layer_error(
                layer,
                format!(
                    "expected an input of rank 4 (batch, height, width, channels) with the \
                     channels known, got shape {}",
                    format_shape(input_shape)
                ),
            )),
        }
    }

    /// The output shape for `input_shape` with `out_channels` channels.
    pub fn output_shape(
        &self,
        layer: &dyn Layer,
        input_shape: &[Option<usize>],
        out_channels: usize,
    ) -> Result<Shape> {
        self.channels(layer, input_shape)?;
        let padding = self.checked_padding(layer)?;
        let (k, s, d) = (self.kernel_size.0, self.strides.0, self.dilation_rate.0);
        if k.contains(&0) || s.contains(&0) || d.contains(&0) {
            return Err(layer_error(
                layer,
                format!(
                    "kernel_size {k:?}, strides {s:?} and dilation_rate {d:?} must be positive"
                ),
            ));
        }
        if s.iter().any(|&v| v > 1) && d.iter().any(|&v| v > 1) {
            return Err(layer_error(
                layer,
                format!(
                    "strides > 1 not supported in conjunction with dilation_rate > 1. \
                     Received: strides={s:?} and dilation_rate={d:?}"
                ),
            ));
        }
        let mut out = vec![input_shape[0]];
        for i in 0..2 {
            let len = padding
                .output_len(input_shape[i + 1], k[i], s[i], d[i])
                .map_err(|m| {
                    layer_error(
                        layer,
                        format!("{m} (input shape {})", format_shape(input_shape)),
                    )
                })?;
            out.push(len);
        }
        out.push(Some(out_channels));
        Ok(out)
    }

    /// An error unless `x` is rank 4 with `channels` channels (where known).
    pub fn check_input(
        &self,
        layer: &dyn Layer,
        g: &Graph,
        x: Output,
        channels: usize,
    ) -> Result<()> {
        let shape: Shape = g.shape(x).dims().map_or_else(Vec::new, <[_]>::to_vec);
        if shape.len() != 4 || matches!(shape[3], Some(c) if c != channels) {
            return Err(layer_error(
                layer,
                format!(
                    "Input 0 of layer \"{}\" is incompatible with the layer: expected an input \
                     of rank 4 with {channels} channels, but received input with shape {}",
                    layer.name(),
                    g.shape(x)
                ),
            ));
        }
        Ok(())
    }
}

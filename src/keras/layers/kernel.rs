//! The kernel and optional bias that Dense, Conv2D, DepthwiseConv2D, SeparableConv2D,
//! LSTM and GRU share ([`KernelBias`]): their initializers and regularizers, building
//! the two variables, adding the bias, the config entries, and reading them back.

use crate::graph::{Graph, Output};
use crate::keras::initializers::Initializer;
use crate::keras::layer::{add_weight, layer_error, regularize, CallContext, Layer, Weight};
use crate::keras::layers::args::Args;
use crate::keras::regularizers::Regularizer;
use crate::tensor::DType;
use crate::Result;
use serde_json::{Map, Value};

/// A layer's kernel and optional bias, with Keras's defaults: a bias, Glorot-uniform
/// kernel, zero bias, no regularizers. `prefix` names the kernel's config keys
/// (`kernel_initializer`, or `depthwise_initializer` for the depthwise layers).
#[derive(Debug)]
pub(crate) struct KernelBias {
    pub prefix: &'static str,
    pub use_bias: bool,
    pub kernel_initializer: Initializer,
    pub bias_initializer: Initializer,
    pub kernel_regularizer: Option<Regularizer>,
    pub bias_regularizer: Option<Regularizer>,
    pub kernel: Option<Weight>,
    pub bias: Option<Weight>,
}

impl KernelBias {
    /// The defaults, the kernel's config keys starting with `prefix`.
    pub fn new(prefix: &'static str) -> KernelBias {
        KernelBias {
            prefix,
            use_bias: true,
            kernel_initializer: Initializer::GlorotUniform { seed: None },
            bias_initializer: Initializer::Zeros,
            kernel_regularizer: None,
            bias_regularizer: None,
            kernel: None,
            bias: None,
        }
    }

    /// Reads `use_bias` and the initializers and regularizers from a Keras config (an
    /// error for an activity regularizer or a constraint, which are not supported).
    pub fn read_args(&mut self, a: &Args<'_>) -> Result<()> {
        let p = self.prefix;
        a.unsupported(&[
            "activity_regularizer",
            &format!("{p}_constraint"),
            "bias_constraint",
        ])?;
        self.use_bias = a.bool_or("use_bias", true)?;
        self.kernel_initializer =
            a.initializer(&format!("{p}_initializer"), self.kernel_initializer.clone())?;
        self.bias_initializer = a.initializer("bias_initializer", self.bias_initializer.clone())?;
        self.kernel_regularizer = a.regularizer(&format!("{p}_regularizer"))?;
        self.bias_regularizer = a.regularizer("bias_regularizer")?;
        Ok(())
    }

    /// Creates the kernel `<scope>/<kernel_name>` of `kernel_shape` and, with `use_bias`,
    /// the bias `<scope>/bias` of `bias_shape`.
    pub fn build(
        &mut self,
        g: &mut Graph,
        scope: &str,
        kernel_name: &str,
        kernel_shape: &[usize],
        bias_shape: &[usize],
    ) -> Result<()> {
        self.build_kernel(g, scope, kernel_name, kernel_shape)?;
        self.build_bias(g, scope, |g, init| {
            init.create(g, bias_shape, DType::Float32)
        })
    }

    /// Creates the kernel `<scope>/<name>` of `shape` from the kernel initializer.
    pub fn build_kernel(
        &mut self,
        g: &mut Graph,
        scope: &str,
        name: &str,
        shape: &[usize],
    ) -> Result<()> {
        let k0 = self.kernel_initializer.create(g, shape, DType::Float32)?;
        self.kernel = Some(add_weight(g, scope, name, k0, true)?);
        Ok(())
    }

    /// With `use_bias`, creates the bias `<scope>/bias` holding what `init` makes from the
    /// bias initializer.
    pub fn build_bias(
        &mut self,
        g: &mut Graph,
        scope: &str,
        init: impl FnOnce(&mut Graph, &Initializer) -> Result<Output>,
    ) -> Result<()> {
        if self.use_bias {
            let b0 = init(g, &self.bias_initializer)?;
            self.bias = Some(add_weight(g, scope, "bias", b0, true)?);
        }
        Ok(())
    }

    /// The kernel, or an error naming `layer` when it is not built.
    pub fn kernel(&self, layer: &dyn Layer) -> Result<&Weight> {
        self.kernel
            .as_ref()
            .ok_or_else(|| layer_error(layer, "called before it was built"))
    }

    /// Adds the kernel's and the bias's penalties to the losses of `ctx`.
    pub fn regularize(&self, g: &mut Graph, ctx: &mut CallContext) -> Result<()> {
        regularize(g, ctx, self.kernel.as_ref(), self.kernel_regularizer)?;
        regularize(g, ctx, self.bias.as_ref(), self.bias_regularizer)
    }

    /// The bias's read tensor, when there is one.
    pub fn bias_read(&self) -> Option<Output> {
        self.bias.as_ref().map(|b| b.var.read)
    }

    /// `z` plus the bias over its last axis (`z` itself without a bias).
    pub fn add_bias(&self, g: &mut Graph, z: Output) -> Result<Output> {
        match self.bias_read() {
            Some(b) => g.bias_add(z, b),
            None => Ok(z),
        }
    }

    /// The kernel, the weights of `middle`, then the bias: Keras's order.
    pub fn weights(&self, middle: impl IntoIterator<Item = Weight>) -> Vec<Weight> {
        self.kernel
            .iter()
            .cloned()
            .chain(middle)
            .chain(self.bias.iter().cloned())
            .collect()
    }

    /// Writes `use_bias`, the initializers, the regularizers and the null constraints.
    pub fn write_config(&self, m: &mut Map<String, Value>) {
        let p = self.prefix;
        m.insert("use_bias".into(), Value::from(self.use_bias));
        m.insert(
            format!("{p}_initializer"),
            self.kernel_initializer.to_config(),
        );
        m.insert("bias_initializer".into(), self.bias_initializer.to_config());
        m.insert(
            format!("{p}_regularizer"),
            Regularizer::serialize(self.kernel_regularizer),
        );
        m.insert(
            "bias_regularizer".into(),
            Regularizer::serialize(self.bias_regularizer),
        );
        m.insert(format!("{p}_constraint"), Value::Null);
        m.insert("bias_constraint".into(), Value::Null);
    }
}

/// A layer's builder methods for its [`KernelBias`] (field `kb`): `use_bias`, the
/// kernel's initializer and regularizer under the given names, the bias's.
macro_rules! kernel_bias_builders {
    ($what:literal, $init:ident, $reg:ident) => {
        /// Whether to add a bias (default true).
        pub fn use_bias(mut self, use_bias: bool) -> Self {
            self.kb.use_bias = use_bias;
            self
        }

        #[doc = concat!("The ", $what, "'s initializer (default `glorot_uniform`).")]
        pub fn $init(mut self, init: $crate::keras::initializers::Initializer) -> Self {
            self.kb.kernel_initializer = init;
            self
        }

        /// The bias's initializer (default `zeros`).
        pub fn bias_initializer(mut self, init: $crate::keras::initializers::Initializer) -> Self {
            self.kb.bias_initializer = init;
            self
        }

        #[doc = concat!("A penalty on the ", $what, " added to the training loss.")]
        pub fn $reg(mut self, r: $crate::keras::regularizers::Regularizer) -> Self {
            self.kb.kernel_regularizer = Some(r);
            self
        }

        /// A penalty on the bias added to the training loss.
        pub fn bias_regularizer(mut self, r: $crate::keras::regularizers::Regularizer) -> Self {
            self.kb.bias_regularizer = Some(r);
            self
        }
    };
}
pub(crate) use kernel_bias_builders;

//! Pooling over NHWC images and sequences: `MaxPooling2D`, `AveragePooling2D` (windows),
//! and `GlobalAveragePooling1D/2D`, `GlobalMaxPooling1D/2D` (every position).

use crate::graph::{Graph, Output};
use crate::keras::layer::{
    base_config, format_shape, layer_error, unique_name, CallContext, Layer, Shape,
};
use crate::keras::layers::args::{Args, Padding, Size2};
use crate::Result;
use serde_json::{Map, Value};
use std::fmt::Debug;
use std::marker::PhantomData;

/// How a pooling layer reduces a window: [`Max`] or [`Average`].
pub trait Reduction: Debug + Send + 'static {
    /// Keras's class name of the windowed 2-D layer (`MaxPooling2D`).
    const WINDOW_CLASS: &'static str;
    /// Its name prefix (`max_pooling2d`).
    const WINDOW_PREFIX: &'static str;
    /// Keras's class names of the global layers over 1 and 2 axes.
    const GLOBAL_CLASS: [&'static str; 2];
    /// Their name prefixes.
    const GLOBAL_PREFIX: [&'static str; 2];
    /// The windowed op.
    fn pool(g: &mut Graph, x: Output, ksize: &[i64], strides: &[i64], pad: &str) -> Result<Output>;
    /// The reduction over axes.
    fn reduce(g: &mut Graph, x: Output, axes: &[i64], keep_dims: bool) -> Result<Output>;
}

/// The maximum of each window.
#[derive(Debug)]
pub struct Max;

/// The mean of each window (SAME windows average only the positions they cover).
#[derive(Debug)]
pub struct Average;

impl Reduction for Max {
    const WINDOW_CLASS: &'static str = "MaxPooling2D";
    const WINDOW_PREFIX: &'static str = "max_pooling2d";
    const GLOBAL_CLASS: [&'static str; 2] = ["GlobalMaxPooling1D", "GlobalMaxPooling2D"];
    const GLOBAL_PREFIX: [&'static str; 2] = ["global_max_pooling1d", "global_max_pooling2d"];
    fn pool(g: &mut Graph, x: Output, k: &[i64], s: &[i64], pad: &str) -> Result<Output> {
        g.max_pool(x, k, s, pad)
    }
    fn reduce(g: &mut Graph, x: Output, axes: &[i64], keep_dims: bool) -> Result<Output> {
        g.reduce_max(x, axes, keep_dims)
    }
}

impl Reduction for Average {
    const WINDOW_CLASS: &'static str = "AveragePooling2D";
    const WINDOW_PREFIX: &'static str = "average_pooling2d";
    const GLOBAL_CLASS: [&'static str; 2] = ["GlobalAveragePooling1D", "GlobalAveragePooling2D"];
    const GLOBAL_PREFIX: [&'static str; 2] =
        ["global_average_pooling1d", "global_average_pooling2d"];
    fn pool(g: &mut Graph, x: Output, k: &[i64], s: &[i64], pad: &str) -> Result<Output> {
        g.avg_pool(x, k, s, pad)
    }
    fn reduce(g: &mut Graph, x: Output, axes: &[i64], keep_dims: bool) -> Result<Output> {
        g.reduce_mean(x, axes, keep_dims)
    }
}

/// Pools windows of `pool_size` moved by `strides` (default: `pool_size`) over
/// `(batch, height, width, channels)` images.
#[derive(Debug)]
pub struct Pooling2D<R: Reduction> {
    name: String,
    pool_size: Size2,
    strides: Option<Size2>,
    padding: String,
    reduction: PhantomData<R>,
}

/// `keras.layers.MaxPooling2D` (default pool 2×2, strides = pool, `"valid"`).
pub type MaxPooling2D = Pooling2D<Max>;
/// `keras.layers.AveragePooling2D` (default pool 2×2, strides = pool, `"valid"`).
pub type AveragePooling2D = Pooling2D<Average>;

impl<R: Reduction> Pooling2D<R> {
    /// A 2×2 pool with strides 2 and `"valid"` padding.
    pub fn new() -> Self {
        Pooling2D {
            name: unique_name(R::WINDOW_PREFIX),
            pool_size: Size2([2, 2]),
            strides: None,
            padding: "valid".into(),
            reduction: PhantomData,
        }
    }

    /// The window's size.
    pub fn pool_size(mut self, size: impl Into<Size2>) -> Self {
        self.pool_size = size.into();
        self
    }

    /// The window's steps (default: the pool size).
    pub fn strides(mut self, strides: impl Into<Size2>) -> Self {
        self.strides = Some(strides.into());
        self
    }

    /// `"valid"` (default) or `"same"`; another value is reported at build.
    pub fn padding(mut self, padding: &str) -> Self {
        self.padding = padding.to_string();
        self
    }

    /// Replaces the automatic name.
    pub fn named(mut self, name: &str) -> Self {
        self.name = name.to_string();
        self
    }

    /// The layer a Keras config describes.
    pub(crate) fn from_args(a: &Args<'_>) -> Result<Self> {
        a.channels_last()?;
        let mut p = Self::new().padding(a.padding()?.name());
        if let Some(s) = a.size2("pool_size")? {
            p = p.pool_size(s);
        }
        p.strides = a.size2("strides")?;
        Ok(match a.name() {
            Some(n) => p.named(n),
            None => p,
        })
    }

    fn geometry(&self) -> Result<(Size2, Size2, Padding)> {
        let padding = Padding::parse(&self.padding).map_err(|m| layer_error(self, m))?;
        let strides = self.strides.unwrap_or(self.pool_size);
        if self.pool_size.0.contains(&0) || strides.0.contains(&0) {
            return Err(layer_error(
                self,
                format!(
                    "pool_size {:?} and strides {:?} must be positive",
                    self.pool_size.0, strides.0
                ),
            ));
        }
        Ok((self.pool_size, strides, padding))
    }
}

impl<R: Reduction> Default for Pooling2D<R> {
    fn default() -> Self {
        Self::new()
    }
}

/// An error unless `shape` has rank `rank` (batch first).
fn expect_rank(layer: &dyn Layer, shape: &[Option<usize>], rank: usize, what: &str) -> Result<()> {
    if shape.len() == rank {
        return Ok(());
    }
    Err(layer_error(
        layer,
        format!(
            "expected an input of rank {rank} ({what}), got shape {}",
            format_shape(shape)
        ),
    ))
}

impl<R: Reduction> Layer for Pooling2D<R> {
    fn name(&self) -> &str {
        &self.name
    }
    fn class_name(&self) -> &'static str {
        R::WINDOW_CLASS
    }
    fn built(&self) -> bool {
        true
    }
    fn build(&mut self, _g: &mut Graph, input_shape: &[Option<usize>]) -> Result<()> {
        self.compute_output_shape(input_shape).map(|_| ())
    }
    fn compute_output_shape(&self, input_shape: &[Option<usize>]) -> Result<Shape> {
        expect_rank(self, input_shape, 4, "batch, height, width, channels")?;
        let (k, s, padding) = self.geometry()?;
        let mut out = input_shape.to_vec();
        for i in 0..2 {
            out[i + 1] = padding
                .output_len(input_shape[i + 1], k.0[i], s.0[i], 1)
                .map_err(|m| {
                    layer_error(
                        self,
                        format!("{m} (input shape {})", format_shape(input_shape)),
                    )
                })?;
        }
        Ok(out)
    }
    fn call(&self, g: &mut Graph, x: Output, _ctx: &mut CallContext) -> Result<Output> {
        let shape: Shape = g.shape(x).dims().map_or_else(Vec::new, <[_]>::to_vec);
        self.compute_output_shape(&shape)?;
        let (k, s, padding) = self.geometry()?;
        let name = self.name.clone();
        g.name_scope(&name, |g| R::pool(g, x, &k.nhwc(), &s.nhwc(), padding.tf()))
    }
    fn get_config(&self) -> Map<String, Value> {
        let mut m = base_config(&self.name);
        m.insert("pool_size".into(), self.pool_size.to_json());
        m.insert(
            "padding".into(),
            Value::from(self.padding.to_ascii_lowercase()),
        );
        m.insert(
            "strides".into(),
            self.strides.unwrap_or(self.pool_size).to_json(),
        );
        m.insert("data_format".into(), Value::from("channels_last"));
        m
    }
}

/// Pools every position of `(batch, steps, features)` sequences (`AXES` = 1) or
/// `(batch, height, width, channels)` images (`AXES` = 2) into one vector per sample.
#[derive(Debug)]
pub struct GlobalPooling<R: Reduction, const AXES: usize> {
    name: String,
    keepdims: bool,
    reduction: PhantomData<R>,
}

/// `keras.layers.GlobalAveragePooling1D`.
pub type GlobalAveragePooling1D = GlobalPooling<Average, 1>;
/// `keras.layers.GlobalAveragePooling2D`.
pub type GlobalAveragePooling2D = GlobalPooling<Average, 2>;
/// `keras.layers.GlobalMaxPooling1D`.
pub type GlobalMaxPooling1D = GlobalPooling<Max, 1>;
/// `keras.layers.GlobalMaxPooling2D`.
pub type GlobalMaxPooling2D = GlobalPooling<Max, 2>;

impl<R: Reduction, const AXES: usize> GlobalPooling<R, AXES> {
    /// Pools to `(batch, channels)`.
    pub fn new() -> Self {
        GlobalPooling {
            name: unique_name(R::GLOBAL_PREFIX[AXES - 1]),
            keepdims: false,
            reduction: PhantomData,
        }
    }

    /// Keeps the pooled axes with length 1 (`keepdims=True`).
    pub fn keepdims(mut self, keepdims: bool) -> Self {
        self.keepdims = keepdims;
        self
    }

    /// Replaces the automatic name.
    pub fn named(mut self, name: &str) -> Self {
        self.name = name.to_string();
        self
    }

    /// The layer a Keras config describes.
    pub(crate) fn from_args(a: &Args<'_>) -> Result<Self> {
        a.channels_last()?;
        let p = Self::new().keepdims(a.bool_or("keepdims", false)?);
        Ok(match a.name() {
            Some(n) => p.named(n),
            None => p,
        })
    }
}

impl<R: Reduction, const AXES: usize> Default for GlobalPooling<R, AXES> {
    fn default() -> Self {
        Self::new()
    }
}

impl<R: Reduction, const AXES: usize> Layer for GlobalPooling<R, AXES> {
    fn name(&self) -> &str {
        &self.name
    }
    fn class_name(&self) -> &'static str {
        R::GLOBAL_CLASS[AXES - 1]
    }
    fn built(&self) -> bool {
        true
    }
    fn build(&mut self, _g: &mut Graph, input_shape: &[Option<usize>]) -> Result<()> {
        self.compute_output_shape(input_shape).map(|_| ())
    }
    fn compute_output_shape(&self, input_shape: &[Option<usize>]) -> Result<Shape> {
        let what = if AXES == 1 {
            "batch, steps, features"
        } else {
            "batch, height, width, channels"
        };
        expect_rank(self, input_shape, AXES + 2, what)?;
        let last = input_shape[AXES + 1];
        Ok(if self.keepdims {
            let mut out = vec![input_shape[0]];
            out.extend(std::iter::repeat_n(Some(1), AXES));
            out.push(last);
            out
        } else {
            vec![input_shape[0], last]
        })
    }
    fn call(&self, g: &mut Graph, x: Output, _ctx: &mut CallContext) -> Result<Output> {
        let shape: Shape = g.shape(x).dims().map_or_else(Vec::new, <[_]>::to_vec);
        self.compute_output_shape(&shape)?;
        let axes: Vec<i64> = (1..=AXES as i64).collect();
        let (name, keep) = (self.name.clone(), self.keepdims);
        g.name_scope(&name, |g| R::reduce(g, x, &axes, keep))
    }
    fn get_config(&self) -> Map<String, Value> {
        let mut m = base_config(&self.name);
        m.insert("data_format".into(), Value::from("channels_last"));
        m.insert("keepdims".into(), Value::from(self.keepdims));
        m
    }
}

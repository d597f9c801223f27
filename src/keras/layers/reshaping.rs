//! Layers that move values without weights: `Reshape` and `ZeroPadding2D`.

use crate::graph::{Graph, Output};
use crate::keras::layer::{
    base_config, format_shape, layer_error, unique_name, CallContext, Layer, Shape,
};
use crate::keras::layers::args::Args;
use crate::Result;
use serde_json::{Map, Value};

/// Reshapes each sample to `target_shape` (`keras.layers.Reshape`); one entry may be
/// `-1`, inferred from the sample's size.
#[derive(Debug)]
pub struct Reshape {
    name: String,
    target_shape: Vec<i64>,
}

impl Reshape {
    /// Samples reshaped to `target_shape` (no batch axis).
    pub fn new(target_shape: &[i64]) -> Reshape {
        Reshape {
            name: unique_name("reshape"),
            target_shape: target_shape.to_vec(),
        }
    }

    /// Replaces the automatic name.
    pub fn named(mut self, name: &str) -> Reshape {
        self.name = name.to_string();
        self
    }

    /// The layer a Keras config describes.
    pub(crate) fn from_args(a: &Args<'_>) -> Result<Reshape> {
        let dims = a
            .raw("target_shape")
            .and_then(Value::as_array)
            .and_then(|d| d.iter().map(Value::as_i64).collect::<Option<Vec<i64>>>())
            .ok_or_else(|| a.err("needs 'target_shape', a list of integers"))?;
        let r = Reshape::new(&dims);
        Ok(match a.name() {
            Some(n) => r.named(n),
            None => r,
        })
    }
}

impl Layer for Reshape {
    fn name(&self) -> &str {
        &self.name
    }
    fn class_name(&self) -> &'static str {
        "Reshape"
    }
    fn built(&self) -> bool {
        true
    }
    fn build(&mut self, _g: &mut Graph, input_shape: &[Option<usize>]) -> Result<()> {
        self.compute_output_shape(input_shape).map(|_| ())
    }
    fn compute_output_shape(&self, input_shape: &[Option<usize>]) -> Result<Shape> {
        let t = &self.target_shape;
        let unknown = t.iter().filter(|&&d| d == -1).count();
        if unknown > 1 || t.iter().any(|&d| d < -1 || d == 0) {
            return Err(layer_error(
                self,
                format!("target_shape {t:?} must hold positive sizes and at most one -1"),
            ));
        }
        if input_shape.is_empty() {
            return Err(layer_error(self, "needs an input with a batch axis"));
        }
        let known: i64 = t.iter().filter(|&&d| d > 0).product();
        let size: Option<usize> = input_shape[1..]
            .iter()
            .try_fold(1usize, |a, d| d.map(|d| a * d));
        let mismatch = || {
            layer_error(
                self,
                format!(
                    "total size of the new array must be unchanged, input_shape = {}, \
                     output_shape = {t:?}",
                    format_shape(&input_shape[1..])
                ),
            )
        };
        let mut out = vec![input_shape[0]];
        for &d in t {
            out.push(match (d, size) {
                (-1, Some(n)) if n as i64 % known == 0 => Some(n / known as usize),
                (-1, Some(_)) => return Err(mismatch()),
                (-1, None) => None,
                (d, _) => Some(d as usize),
            });
        }
        if unknown == 0 && size.is_some_and(|n| n as i64 != known) {
            return Err(mismatch());
        }
        Ok(out)
    }
    fn call(&self, g: &mut Graph, x: Output, _ctx: &mut CallContext) -> Result<Output> {
        let shape: Shape = g
            .shape(x)
            .dims()
            .map(<[_]>::to_vec)
            .ok_or_else(|| layer_error(self, "needs an input of known rank"))?;
        let out = self.compute_output_shape(&shape)?;
        let mut dims = vec![-1i64];
        for d in &out[1..] {
            dims.push(d.map(|d| d as i64).ok_or_else(|| {
                layer_error(
                    self,
                    format!(
                        "needs the input's inner dimensions known to infer -1, got {}",
                        format_shape(&shape)
                    ),
                )
            })?);
        }
        let name = self.name.clone();
        g.name_scope(&name, |g| g.reshape(x, &dims))
    }
    fn get_config(&self) -> Map<String, Value> {
        let mut m = base_config(&self.name);
        m.insert(
            "target_shape".into(),
            Value::from(self.target_shape.clone()),
        );
        m
    }
}

/// Adds rows and columns of zeros around `(batch, height, width, channels)` images
/// (`keras.layers.ZeroPadding2D`).
#[derive(Debug)]
pub struct ZeroPadding2D {
    name: String,
    /// `[[top, bottom], [left, right]]`.
    padding: [[usize; 2]; 2],
}

impl ZeroPadding2D {
    /// `padding` rows above and below, and columns left and right (Keras's default 1).
    pub fn new(padding: usize) -> ZeroPadding2D {
        ZeroPadding2D::asymmetric([[padding; 2]; 2])
    }

    /// `[[top, bottom], [left, right]]` rows and columns of zeros.
    pub fn asymmetric(padding: [[usize; 2]; 2]) -> ZeroPadding2D {
        ZeroPadding2D {
            name: unique_name("zero_padding2d"),
            padding,
        }
    }

    /// Replaces the automatic name.
    pub fn named(mut self, name: &str) -> ZeroPadding2D {
        self.name = name.to_string();
        self
    }

    /// The layer a Keras config describes: `padding` as a number, `[h, w]`, or
    /// `[[top, bottom], [left, right]]`.
    pub(crate) fn from_args(a: &Args<'_>) -> Result<ZeroPadding2D> {
        a.channels_last()?;
        let v = a.raw("padding").cloned().unwrap_or(Value::from(1));
        let num = |v: &Value| v.as_u64().map(|d| d as usize);
        let pair = |v: &Value| -> Option<[usize; 2]> {
            match v.as_array()?.as_slice() {
                [a, b] => Some([num(a)?, num(b)?]),
                _ => None,
            }
        };
        let padding = match &v {
            Value::Array(items) if items.len() == 2 => match (pair(&items[0]), pair(&items[1])) {
                (Some(h), Some(w)) => Some([h, w]),
                _ => pair(&v).map(|[h, w]| [[h; 2], [w; 2]]),
            },
            other => num(other).map(|p| [[p; 2]; 2]),
        }
        .ok_or_else(|| {
            a.err(format!(
                "`padding` should be an int, a tuple of 2 ints, or a tuple of 2 tuples of 2 \
                 ints. Received: padding={v}"
            ))
        })?;
        let z = ZeroPadding2D::asymmetric(padding);
        Ok(match a.name() {
            Some(n) => z.named(n),
            None => z,
        })
    }
}

impl Layer for ZeroPadding2D {
    fn name(&self) -> &str {
        &self.name
    }
    fn class_name(&self) -> &'static str {
        "ZeroPadding2D"
    }
    fn built(&self) -> bool {
        true
    }
    fn build(&mut self, _g: &mut Graph, input_shape: &[Option<usize>]) -> Result<()> {
        self.compute_output_shape(input_shape).map(|_| ())
    }
    fn compute_output_shape(&self, input_shape: &[Option<usize>]) -> Result<Shape> {
        if input_shape.len() != 4 {
            return Err(layer_error(
                self,
                format!(
                    "expected an input of rank 4 (batch, height, width, channels), got shape {}",
                    format_shape(input_shape)
                ),
            ));
        }
        let mut out = input_shape.to_vec();
        for (i, [a, b]) in self.padding.iter().enumerate() {
            out[i + 1] = input_shape[i + 1].map(|d| d + a + b);
        }
        Ok(out)
    }
    fn call(&self, g: &mut Graph, x: Output, _ctx: &mut CallContext) -> Result<Output> {
        let shape: Shape = g.shape(x).dims().map_or_else(Vec::new, <[_]>::to_vec);
        self.compute_output_shape(&shape)?;
        let [[t, b], [l, r]] = self.padding.map(|p| p.map(|d| d as i64));
        let name = self.name.clone();
        g.name_scope(&name, |g| g.pad(x, &[[0, 0], [t, b], [l, r], [0, 0]]))
    }
    fn get_config(&self) -> Map<String, Value> {
        let mut m = base_config(&self.name);
        let p: Vec<Value> = self
            .padding
            .iter()
            .map(|p| Value::from(p.to_vec()))
            .collect();
        m.insert("padding".into(), Value::from(p));
        m.insert("data_format".into(), Value::from("channels_last"));
        m
    }
}

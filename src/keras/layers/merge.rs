//! Layers that merge several inputs: `Add`, `Multiply` (elementwise, same shapes) and
//! `Concatenate` (along an axis).

use crate::graph::{Graph, Output};
use crate::keras::layer::{
    base_config, format_shape, layer_error, unique_name, CallContext, Layer, Shape,
};
use crate::keras::layers::args::Args;
use crate::Result;
use serde_json::{Map, Value};

/// An error unless there are at least two inputs.
fn several<T>(layer: &dyn Layer, inputs: &[T]) -> Result<()> {
    if inputs.len() >= 2 {
        return Ok(());
    }
    Err(layer_error(
        layer,
        format!(
            "A merge layer should be called on a list of at least 2 inputs. Got {} inputs.",
            inputs.len()
        ),
    ))
}

fn shapes_text(shapes: &[Shape]) -> String {
    let s: Vec<String> = shapes.iter().map(|s| format_shape(s)).collect();
    s.join(", ")
}

/// Which elementwise merge: [`Sum`] or [`Product`].
pub trait Elementwise: std::fmt::Debug + Send + 'static {
    /// Keras's class name.
    const CLASS: &'static str;
    /// Its name prefix.
    const PREFIX: &'static str;
    /// Combines two tensors.
    fn combine(g: &mut Graph, a: Output, b: Output) -> Result<Output>;
}

/// Elementwise sum.
#[derive(Debug)]
pub struct Sum;

/// Elementwise product.
#[derive(Debug)]
pub struct Product;

impl Elementwise for Sum {
    const CLASS: &'static str = "Add";
    const PREFIX: &'static str = "add";
    fn combine(g: &mut Graph, a: Output, b: Output) -> Result<Output> {
        g.add(a, b)
    }
}

impl Elementwise for Product {
    const CLASS: &'static str = "Multiply";
    const PREFIX: &'static str = "multiply";
    fn combine(g: &mut Graph, a: Output, b: Output) -> Result<Output> {
        g.mul(a, b)
    }
}

/// Merges inputs of one shape elementwise.
#[derive(Debug)]
pub struct Merge<E: Elementwise> {
    name: String,
    op: std::marker::PhantomData<E>,
}

/// `keras.layers.Add()`: the sum of its inputs.
pub type Add = Merge<Sum>;
/// `keras.layers.Multiply()`: the product of its inputs.
pub type Multiply = Merge<Product>;

impl<E: Elementwise> Merge<E> {
    /// A merge layer.
    pub fn new() -> Self {
        Merge {
            name: unique_name(E::PREFIX),
            op: std::marker::PhantomData,
        }
    }

    /// Replaces the automatic name.
    pub fn named(mut self, name: &str) -> Self {
        self.name = name.to_string();
        self
    }

    /// The layer a Keras config describes.
    pub(crate) fn from_args(a: &Args<'_>) -> Result<Self> {
        let m = Self::new();
        Ok(match a.name() {
            Some(n) => m.named(n),
            None => m,
        })
    }
}

impl<E: Elementwise> Default for Merge<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E: Elementwise> Layer for Merge<E> {
    fn name(&self) -> &str {
        &self.name
    }
    fn class_name(&self) -> &'static str {
        E::CLASS
    }
    fn built(&self) -> bool {
        true
    }
    fn build(&mut self, _g: &mut Graph, _input_shape: &[Option<usize>]) -> Result<()> {
        several::<()>(self, &[])
    }
    fn compute_output_shape(&self, _input_shape: &[Option<usize>]) -> Result<Shape> {
        several::<()>(self, &[]).map(|_| Vec::new())
    }
    fn call(&self, _g: &mut Graph, x: Output, _ctx: &mut CallContext) -> Result<Output> {
        several(self, &[x]).map(|_| x)
    }
    fn build_multi(&mut self, _g: &mut Graph, input_shapes: &[Shape]) -> Result<()> {
        self.compute_output_shape_multi(input_shapes).map(|_| ())
    }
    fn compute_output_shape_multi(&self, input_shapes: &[Shape]) -> Result<Shape> {
        several(self, input_shapes)?;
        let mut out = input_shapes[0].clone();
        for s in &input_shapes[1..] {
            if s.len() != out.len() {
                return Err(layer_error(
                    self,
                    format!(
                        "Inputs must have the same shape, got {}",
                        shapes_text(input_shapes)
                    ),
                ));
            }
            for (o, d) in out.iter_mut().zip(s) {
                match (*o, *d) {
                    (Some(a), Some(b)) if a != b => {
                        return Err(layer_error(
                            self,
                            format!(
                                "Inputs must have the same shape, got {}",
                                shapes_text(input_shapes)
                            ),
                        ))
                    }
                    (None, d) => *o = d,
                    _ => {}
                }
            }
        }
        Ok(out)
    }
    fn call_multi(&self, g: &mut Graph, xs: &[Output], _ctx: &mut CallContext) -> Result<Output> {
        several(self, xs)?;
        let name = self.name.clone();
        g.name_scope(&name, |g| {
            let mut acc = xs[0];
            for &x in &xs[1..] {
                acc = E::combine(g, acc, x)?;
            }
            Ok(acc)
        })
    }
    fn get_config(&self) -> Map<String, Value> {
        base_config(&self.name)
    }
}

/// `keras.layers.Concatenate(axis=-1)`: joins its inputs along `axis`.
#[derive(Debug)]
pub struct Concatenate {
    name: String,
    axis: i64,
}

impl Concatenate {
    /// Joins along the last axis.
    pub fn new() -> Concatenate {
        Concatenate {
            name: unique_name("concatenate"),
            axis: -1,
        }
    }

    /// Joins along `axis` (negative counts from the end; the batch axis is 0).
    pub fn axis(mut self, axis: i64) -> Concatenate {
        self.axis = axis;
        self
    }

    /// Replaces the automatic name.
    pub fn named(mut self, name: &str) -> Concatenate {
        self.name = name.to_string();
        self
    }

    /// The layer a Keras config describes.
    pub(crate) fn from_args(a: &Args<'_>) -> Result<Concatenate> {
        let c = Concatenate::new().axis(a.i64_or("axis", -1)?);
        Ok(match a.name() {
            Some(n) => c.named(n),
            None => c,
        })
    }
}

impl Default for Concatenate {
    fn default() -> Self {
        Self::new()
    }
}

impl Layer for Concatenate {
    fn name(&self) -> &str {
        &self.name
    }
    fn class_name(&self) -> &'static str {
        "Concatenate"
    }
    fn built(&self) -> bool {
        true
    }
    fn build(&mut self, _g: &mut Graph, _input_shape: &[Option<usize>]) -> Result<()> {
        several::<()>(self, &[])
    }
    fn compute_output_shape(&self, _input_shape: &[Option<usize>]) -> Result<Shape> {
        several::<()>(self, &[]).map(|_| Vec::new())
    }
    fn call(&self, _g: &mut Graph, x: Output, _ctx: &mut CallContext) -> Result<Output> {
        several(self, &[x]).map(|_| x)
    }
    fn build_multi(&mut self, _g: &mut Graph, input_shapes: &[Shape]) -> Result<()> {
        self.compute_output_shape_multi(input_shapes).map(|_| ())
    }
    fn compute_output_shape_multi(&self, input_shapes: &[Shape]) -> Result<Shape> {
        several(self, input_shapes)?;
        let rank = input_shapes[0].len() as i64;
        let axis = if self.axis < 0 {
            self.axis + rank
        } else {
            self.axis
        };
        let bad = || {
            layer_error(
                self,
                format!(
                    "A `Concatenate` layer requires inputs with matching shapes except for the \
                     concatenation axis {}. Received: input_shape={}",
                    self.axis,
                    shapes_text(input_shapes)
                ),
            )
        };
        if axis <= 0 || axis >= rank {
            return Err(bad());
        }
        let axis = axis as usize;
        let mut out = input_shapes[0].clone();
        for s in &input_shapes[1..] {
            if s.len() != out.len() {
                return Err(bad());
            }
            for (i, (o, d)) in out.iter_mut().zip(s).enumerate() {
                if i == axis {
                    *o = o.zip(*d).map(|(a, b)| a + b);
                } else {
                    match (*o, *d) {
                        (Some(a), Some(b)) if a != b => return Err(bad()),
                        (None, d) => *o = d,
                        _ => {}
                    }
                }
            }
        }
        Ok(out)
    }
    fn call_multi(&self, g: &mut Graph, xs: &[Output], _ctx: &mut CallContext) -> Result<Output> {
        several(self, xs)?;
        let (name, axis) = (self.name.clone(), self.axis);
        g.name_scope(&name, |g| g.concat(xs, axis))
    }
    fn get_config(&self) -> Map<String, Value> {
        let mut m = base_config(&self.name);
        m.insert("axis".into(), Value::from(self.axis));
        m
    }
}

//! Node attributes, typed as TensorFlow's `AttrValue`.

use crate::tensor::{DType, PartialShape, Tensor};
use std::collections::BTreeMap;

/// One attribute value.
#[derive(Clone, Debug, PartialEq)]
pub enum AttrValue {
    /// `int`
    Int(i64),
    /// `float`
    Float(f32),
    /// `bool`
    Bool(bool),
    /// `string` (bytes in TensorFlow; UTF-8 here)
    String(String),
    /// `type`
    Type(DType),
    /// `shape`
    Shape(PartialShape),
    /// `tensor`
    Tensor(Tensor),
    /// `list(int)`
    IntList(Vec<i64>),
    /// `list(float)`
    FloatList(Vec<f32>),
    /// `list(type)`
    TypeList(Vec<DType>),
    /// `list(string)`
    StringList(Vec<String>),
    /// `list(shape)`
    ShapeList(Vec<PartialShape>),
    /// `func`: the name of a function of the graph's library (a `While`'s `body`)
    Func(String),
    /// `list(func)` (a `Case`'s `branches`)
    FuncList(Vec<String>),
}

/// A node's attributes by name, in sorted order (as TensorFlow prints them).
pub type Attrs = BTreeMap<String, AttrValue>;

impl From<i64> for AttrValue {
    fn from(v: i64) -> Self {
        AttrValue::Int(v)
    }
}
impl From<f32> for AttrValue {
    fn from(v: f32) -> Self {
        AttrValue::Float(v)
    }
}
impl From<bool> for AttrValue {
    fn from(v: bool) -> Self {
        AttrValue::Bool(v)
    }
}
impl From<&str> for AttrValue {
    fn from(v: &str) -> Self {
        AttrValue::String(v.to_string())
    }
}
impl From<String> for AttrValue {
    fn from(v: String) -> Self {
        AttrValue::String(v)
    }
}
impl From<DType> for AttrValue {
    fn from(v: DType) -> Self {
        AttrValue::Type(v)
    }
}
impl From<PartialShape> for AttrValue {
    fn from(v: PartialShape) -> Self {
        AttrValue::Shape(v)
    }
}
impl From<Tensor> for AttrValue {
    fn from(v: Tensor) -> Self {
        AttrValue::Tensor(v)
    }
}
impl From<Vec<i64>> for AttrValue {
    fn from(v: Vec<i64>) -> Self {
        AttrValue::IntList(v)
    }
}
impl From<Vec<DType>> for AttrValue {
    fn from(v: Vec<DType>) -> Self {
        AttrValue::TypeList(v)
    }
}

/// Typed reads of an attribute map, with messages naming the attribute.
pub trait AttrsExt {
    /// The raw value.
    fn value(&self, name: &str) -> Option<&AttrValue>;

    /// An `int` attr, or `default` when absent.
    fn int_or(&self, name: &str, default: i64) -> Result<i64, String> {
        match self.value(name) {
            None => Ok(default),
            Some(AttrValue::Int(v)) => Ok(*v),
            Some(v) => Err(format!("attr '{name}' should be an int, got {v:?}")),
        }
    }
    /// A required `int` attr.
    fn int(&self, name: &str) -> Result<i64, String> {
        match self.value(name) {
            Some(AttrValue::Int(v)) => Ok(*v),
            Some(v) => Err(format!("attr '{name}' should be an int, got {v:?}")),
            None => Err(format!("missing attr '{name}'")),
        }
    }
    /// A `float` attr, or `default` when absent.
    fn float_or(&self, name: &str, default: f32) -> Result<f32, String> {
        match self.value(name) {
            None => Ok(default),
            Some(AttrValue::Float(v)) => Ok(*v),
            Some(v) => Err(format!("attr '{name}' should be a float, got {v:?}")),
        }
    }
    /// A `bool` attr, or `default` when absent.
    fn bool_or(&self, name: &str, default: bool) -> Result<bool, String> {
        match self.value(name) {
            None => Ok(default),
            Some(AttrValue::Bool(v)) => Ok(*v),
            Some(v) => Err(format!("attr '{name}' should be a bool, got {v:?}")),
        }
    }
    /// A `string` attr, or `default` when absent.
    fn string_or(&self, name: &str, default: &str) -> Result<String, String> {
        match self.value(name) {
            None => Ok(default.to_string()),
            Some(AttrValue::String(v)) => Ok(v.clone()),
            Some(v) => Err(format!("attr '{name}' should be a string, got {v:?}")),
        }
    }
    /// A required `type` attr.
    fn dtype(&self, name: &str) -> Result<DType, String> {
        match self.value(name) {
            Some(AttrValue::Type(v)) => Ok(*v),
            Some(v) => Err(format!("attr '{name}' should be a type, got {v:?}")),
            None => Err(format!("missing attr '{name}'")),
        }
    }
    /// A `type` attr, or `default` when absent.
    fn dtype_or(&self, name: &str, default: DType) -> Result<DType, String> {
        match self.value(name) {
            None => Ok(default),
            _ => self.dtype(name),
        }
    }
    /// A `shape` attr, or unknown rank when absent.
    fn shape_or_unknown(&self, name: &str) -> Result<PartialShape, String> {
        match self.value(name) {
            None => Ok(PartialShape::unknown()),
            Some(AttrValue::Shape(s)) => Ok(s.clone()),
            Some(v) => Err(format!("attr '{name}' should be a shape, got {v:?}")),
        }
    }
    /// A `list(int)` attr, or `default` when absent.
    fn ints_or(&self, name: &str, default: &[i64]) -> Result<Vec<i64>, String> {
        match self.value(name) {
            None => Ok(default.to_vec()),
            Some(AttrValue::IntList(v)) => Ok(v.clone()),
            Some(v) => Err(format!("attr '{name}' should be a list of ints, got {v:?}")),
        }
    }
    /// A `list(type)` attr, or empty when absent.
    fn dtypes(&self, name: &str) -> Result<Vec<DType>, String> {
        match self.value(name) {
            None => Ok(Vec::new()),
            Some(AttrValue::TypeList(v)) => Ok(v.clone()),
            Some(v) => Err(format!(
                "attr '{name}' should be a list of types, got {v:?}"
            )),
        }
    }
    /// A `list(shape)` attr, or `None` when absent.
    fn shapes(&self, name: &str) -> Result<Option<Vec<PartialShape>>, String> {
        match self.value(name) {
            None => Ok(None),
            Some(AttrValue::ShapeList(v)) => Ok(Some(v.clone())),
            Some(v) => Err(format!(
                "attr '{name}' should be a list of shapes, got {v:?}"
            )),
        }
    }
    /// A required `func` attr: the function's name.
    fn func(&self, name: &str) -> Result<&str, String> {
        match self.value(name) {
            Some(AttrValue::Func(f)) => Ok(f),
            Some(v) => Err(format!("attr '{name}' should be a function, got {v:?}")),
            None => Err(format!("missing attr '{name}'")),
        }
    }
    /// A required `list(func)` attr: the functions' names.
    fn funcs(&self, name: &str) -> Result<&[String], String> {
        match self.value(name) {
            Some(AttrValue::FuncList(f)) => Ok(f),
            Some(v) => Err(format!(
                "attr '{name}' should be a list of functions, got {v:?}"
            )),
            None => Err(format!("missing attr '{name}'")),
        }
    }
    /// A required `tensor` attr.
    fn tensor(&self, name: &str) -> Result<&Tensor, String> {
        match self.value(name) {
            Some(AttrValue::Tensor(t)) => Ok(t),
            Some(v) => Err(format!("attr '{name}' should be a tensor, got {v:?}")),
            None => Err(format!("missing attr '{name}'")),
        }
    }
}

impl AttrsExt for Attrs {
    fn value(&self, name: &str) -> Option<&AttrValue> {
        self.get(name)
    }
}

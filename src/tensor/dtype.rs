//! Element types a tensor can hold, named as TensorFlow names them.

use std::fmt;

/// The dtype of a tensor's elements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DType {
    /// `tf.float32`
    Float32,
    /// `tf.float64`
    Float64,
    /// `tf.int32`
    Int32,
    /// `tf.int64`
    Int64,
    /// `tf.uint8`
    UInt8,
    /// `tf.bool`
    Bool,
    /// `tf.resource`: handles to session state (a resource variable), not numbers. Not in
    /// [`DType::ALL`]: no arithmetic kernel takes it.
    Resource,
    /// `tf.variant`: opaque values an op family defines (a TensorList), each held like a
    /// resource handle ([`ResourceHandle`](super::ResourceHandle)). Not in [`DType::ALL`].
    Variant,
    /// `tf.string`: each element is a byte string (TensorFlow strings are bytes, not
    /// necessarily UTF-8). Not an [`Element`](super::Element): read and build with
    /// [`Tensor::as_strings`](super::Tensor::as_strings) and
    /// [`Tensor::from_strings`](super::Tensor::from_strings).
    String,
}

impl DType {
    /// Every dtype, in TensorFlow enum order.
    pub const ALL: [DType; 7] = [
        DType::Float32,
        DType::Float64,
        DType::Int32,
        DType::UInt8,
        DType::String,
        DType::Int64,
        DType::Bool,
    ];

    /// The lower-case name TensorFlow prints (`float32`, `int32`, ...).
    pub fn name(self) -> &'static str {
        match self {
            DType::Float32 => "float32",
            DType::Float64 => "float64",
            DType::Int32 => "int32",
            DType::Int64 => "int64",
            DType::UInt8 => "uint8",
            DType::Bool => "bool",
            DType::Resource => "resource",
            DType::Variant => "variant",
            DType::String => "string",
        }
    }

    /// Parses a name as [`DType::name`] prints it (also accepts `float`/`double`).
    pub fn from_name(name: &str) -> Option<DType> {
        Some(match name {
            "float32" | "float" => DType::Float32,
            "float64" | "double" => DType::Float64,
            "int32" => DType::Int32,
            "int64" => DType::Int64,
            "uint8" => DType::UInt8,
            "bool" => DType::Bool,
            "resource" => DType::Resource,
            "variant" => DType::Variant,
            "string" => DType::String,
            _ => return None,
        })
    }

    /// Size of one element in bytes; for `string`, the size of one element's handle (its
    /// bytes are held apart and counted by length).
    pub fn size(self) -> usize {
        match self {
            DType::Float32 | DType::Int32 => 4,
            DType::Float64 | DType::Int64 => 8,
            DType::UInt8 | DType::Bool => 1,
            DType::Resource | DType::Variant => std::mem::size_of::<usize>(),
            DType::String => std::mem::size_of::<Vec<u8>>(),
        }
    }

    /// True for float32 and float64.
    pub fn is_float(self) -> bool {
        matches!(self, DType::Float32 | DType::Float64)
    }

    /// True for the integer dtypes.
    pub fn is_integer(self) -> bool {
        matches!(self, DType::Int32 | DType::Int64 | DType::UInt8)
    }

    /// True for every dtype but bool, string and resource.
    pub fn is_numeric(self) -> bool {
        !matches!(
            self,
            DType::Bool | DType::String | DType::Resource | DType::Variant
        )
    }

    /// TensorFlow's `DataType` enum value (`DT_FLOAT` = 1, ...).
    pub fn to_tf_enum(self) -> i32 {
        match self {
            DType::Float32 => 1,
            DType::Float64 => 2,
            DType::Int32 => 3,
            DType::UInt8 => 4,
            DType::String => 7,
            DType::Int64 => 9,
            DType::Bool => 10,
            DType::Resource => 20,
            DType::Variant => 21,
        }
    }

    /// Maps TensorFlow's `DataType` enum value (reference types `*_REF` = base + 100 included).
    pub fn from_tf_enum(v: i32) -> Option<DType> {
        let v = if v > 100 { v - 100 } else { v };
        Some(match v {
            1 => DType::Float32,
            2 => DType::Float64,
            3 => DType::Int32,
            4 => DType::UInt8,
            7 => DType::String,
            9 => DType::Int64,
            10 => DType::Bool,
            20 => DType::Resource,
            21 => DType::Variant,
            _ => return None,
        })
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

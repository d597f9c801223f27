//! Conversions between rustflow's tensors, dtypes and shapes and TensorFlow's
//! `TensorProto`, `DataType` and `TensorShapeProto`.
//!
//! Decoding follows TensorFlow's `Tensor::FromProto`: `tensor_content` holds the raw
//! little-endian elements and must be exactly as long as the shape needs; otherwise the
//! typed field (`float_val`, `int_val`, ...) is used, and when it has fewer values than
//! elements its last value is repeated (no values = all zeros). Encoding follows Python
//! TensorFlow: one element goes in the typed field, more in `tensor_content`.

use super::tf;
use crate::tensor::{DType, Element, PartialShape, Tensor};
use crate::{Error, Result};

/// Largest tensor (in bytes) that repeating the last value of a typed field may produce:
/// a few bytes of input may legitimately describe a large constant (`tf.zeros`), but not an
/// unbounded one.
pub const MAX_EXPANDED_BYTES: usize = 1 << 30;

/// TensorFlow's name of a `DataType` enum value (`DT_FLOAT`), or the number when unknown.
pub fn dtype_name(v: i32) -> String {
    match tf::DataType::try_from(v) {
        Ok(d) => d.as_str_name().to_string(),
        Err(_) => format!("DataType {v}"),
    }
}

/// The `DataType` enum value of a dtype.
pub fn dtype_to_proto(d: DType) -> i32 {
    d.to_tf_enum()
}

/// The dtype of a `DataType` enum value; reference types (`DT_FLOAT_REF`) map to their base
/// type. Dtypes rustflow lacks (`DT_HALF`, `DT_COMPLEX64`, ...) are an error naming them.
pub fn dtype_from_proto(v: i32) -> Result<DType> {
    DType::from_tf_enum(v).ok_or_else(|| {
        Error::invalid(format!(
            "dtype {} is not supported by rustflow (supported: float32, float64, int32, int64, \
             uint8, bool, string)",
            dtype_name(v)
        ))
    })
}

/// A partial shape as TensorFlow writes it: `unknown_rank` or dims with `-1` for unknown.
pub fn shape_to_proto(s: &PartialShape) -> tf::TensorShapeProto {
    match s.dims() {
        None => tf::TensorShapeProto {
            dim: Vec::new(),
            unknown_rank: true,
        },
        Some(dims) => tf::TensorShapeProto {
            dim: dims
                .iter()
                .map(|d| tf::tensor_shape_proto::Dim {
                    size: d.map_or(-1, |d| d as i64),
                    name: String::new(),
                })
                .collect(),
            unknown_rank: false,
        },
    }
}

/// A fully known shape as a `TensorShapeProto`.
pub fn dims_to_proto(dims: &[usize]) -> tf::TensorShapeProto {
    shape_to_proto(&PartialShape::known(dims))
}

/// Reads a partial shape; `-1` dims are unknown, other negative dims are an error.
pub fn shape_from_proto(p: &tf::TensorShapeProto) -> Result<PartialShape> {
    if p.unknown_rank {
        if !p.dim.is_empty() {
            return Err(Error::invalid(
                "a shape with unknown_rank set must have no dims",
            ));
        }
        return Ok(PartialShape::unknown());
    }
    p.dim
        .iter()
        .map(|d| match d.size {
            -1 => Ok(None),
            s if s < 0 => Err(Error::invalid(format!(
                "shape dimension {s} is invalid (only -1, unknown, may be negative)"
            ))),
            s => usize::try_from(s)
                .map(Some)
                .map_err(|_| Error::invalid(format!("shape dimension {s} is too large"))),
        })
        .collect::<Result<Vec<_>>>()
        .map(PartialShape::new)
}

/// Reads a fully known shape (a tensor's); unknown or negative dims are an error.
pub fn dims_from_proto(p: &tf::TensorShapeProto) -> Result<Vec<usize>> {
    let shape = shape_from_proto(p)?;
    shape
        .to_known()
        .ok_or_else(|| Error::invalid(format!("a tensor shape must be fully known, got {shape}")))
}

/// Number of elements of a shape, or an error when the product overflows.
pub fn checked_num_elements(dims: &[usize]) -> Result<usize> {
    dims.iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| Error::invalid(format!("shape {dims:?} has too many elements")))
}

/// Encodes a tensor as Python TensorFlow does: one element in the typed field, several as
/// `tensor_content`, none as just the shape.
pub fn tensor_to_proto(t: &Tensor) -> tf::TensorProto {
    let mut p = tf::TensorProto {
        dtype: dtype_to_proto(t.dtype()),
        tensor_shape: Some(dims_to_proto(t.shape())),
        ..Default::default()
    };
    if let Ok(strings) = t.as_strings() {
        // TensorFlow writes every string in `string_val` (its `tensor_content` encoding of
        // strings is only for internal transfers).
        p.string_val = strings.to_vec();
    } else if t.len() == 1 {
        // `as_slice` cannot fail: the dtype is matched.
        match t.dtype() {
            DType::Float32 => p.float_val = t.to_vec::<f32>().unwrap_or_default(),
            DType::Float64 => p.double_val = t.to_vec::<f64>().unwrap_or_default(),
            DType::Int32 => p.int_val = t.to_vec::<i32>().unwrap_or_default(),
            DType::UInt8 => {
                p.int_val = t
                    .as_slice::<u8>()
                    .map(|v| v.iter().map(|&x| i32::from(x)).collect())
                    .unwrap_or_default()
            }
            DType::Int64 => p.int64_val = t.to_vec::<i64>().unwrap_or_default(),
            DType::Bool => p.bool_val = t.to_vec::<bool>().unwrap_or_default(),
            // Handles are session state: only the dtype and shape are written.
            DType::Resource | DType::Variant => {}
            DType::String => unreachable!("string tensors are encoded above"),
        }
    } else if t.len() > 1 {
        // Cannot fail: strings are encoded above.
        p.tensor_content = tensor_bytes(t).unwrap_or_default();
    }
    p
}

/// The raw little-endian row-major bytes of a tensor's elements (bool as one byte); an
/// error for strings, which have no such layout.
pub fn tensor_bytes(t: &Tensor) -> Result<Vec<u8>> {
    fn le<T: Element, const N: usize>(t: &Tensor, f: fn(T) -> [u8; N]) -> Vec<u8> {
        t.as_slice::<T>()
            .map(|v| v.iter().flat_map(|&x| f(x)).collect())
            .unwrap_or_default()
    }
    Ok(match t.dtype() {
        DType::Float32 => le::<f32, 4>(t, f32::to_le_bytes),
        DType::Float64 => le::<f64, 8>(t, f64::to_le_bytes),
        DType::Int32 => le::<i32, 4>(t, i32::to_le_bytes),
        DType::Int64 => le::<i64, 8>(t, i64::to_le_bytes),
        DType::UInt8 => le::<u8, 1>(t, |x| [x]),
        DType::Bool => le::<bool, 1>(t, |x| [u8::from(x)]),
        DType::String => return Err(no_raw_strings()),
        DType::Resource | DType::Variant => return Err(resource_error()),
    })
}

fn no_raw_strings() -> Error {
    Error::invalid("string tensors have no raw byte layout (TensorFlow writes them in string_val)")
}

fn resource_error() -> Error {
    Error::invalid(
        "a resource handle has no serialized form here; it refers to a session's state \
         (read the variable instead)",
    )
}

/// Builds a tensor from raw little-endian bytes, which must be exactly as many as `dims`
/// of `dtype` need. Bools must be 0 or 1; strings and resource handles are an error (they
/// have no raw layout).
pub fn tensor_from_bytes(dtype: DType, dims: &[usize], bytes: &[u8]) -> Result<Tensor> {
    if dtype == DType::String {
        return Err(no_raw_strings());
    }
    if dtype == DType::Resource {
        return Err(resource_error());
    }
    let n = checked_num_elements(dims)?;
    let needed = n
        .checked_mul(dtype.size())
        .ok_or_else(|| Error::invalid(format!("shape {dims:?} has too many elements")))?;
    if bytes.len() != needed {
        return Err(Error::invalid(format!(
            "{} bytes of tensor data do not match shape {dims:?} of {dtype}, which needs {needed}",
            bytes.len()
        )));
    }
    fn decode<T: Element, const N: usize>(
        dims: &[usize],
        bytes: &[u8],
        f: fn([u8; N]) -> T,
    ) -> Result<Tensor> {
        let data = bytes
            .chunks_exact(N)
            .map(|c| {
                let mut a = [0u8; N];
                a.copy_from_slice(c);
                f(a)
            })
            .collect();
        Tensor::new(dims, data)
    }
    match dtype {
        DType::Float32 => decode(dims, bytes, f32::from_le_bytes),
        DType::Float64 => decode(dims, bytes, f64::from_le_bytes),
        DType::Int32 => decode(dims, bytes, i32::from_le_bytes),
        DType::Int64 => decode(dims, bytes, i64::from_le_bytes),
        DType::UInt8 => decode(dims, bytes, |[b]: [u8; 1]| b),
        DType::Bool => {
            if let Some(b) = bytes.iter().find(|&&b| b > 1) {
                return Err(Error::invalid(format!(
                    "bool tensor data holds byte {b}, which is neither 0 nor 1"
                )));
            }
            decode(dims, bytes, |[b]: [u8; 1]| b != 0)
        }
        DType::Resource | DType::Variant => Err(resource_error()),
        DType::String => Err(no_raw_strings()),
    }
}

/// Decodes a `TensorProto` (see the module docs for the rules).
pub fn tensor_from_proto(p: &tf::TensorProto) -> Result<Tensor> {
    if p.dtype > 100 {
        return Err(Error::invalid(format!(
            "a tensor cannot have the reference dtype {}",
            dtype_name(p.dtype)
        )));
    }
    let dtype = dtype_from_proto(p.dtype)?;
    let dims = match &p.tensor_shape {
        Some(s) => dims_from_proto(s)?,
        None => Vec::new(),
    };
    if !p.tensor_content.is_empty() {
        return tensor_from_bytes(dtype, &dims, &p.tensor_content);
    }
    let n = checked_num_elements(&dims)?;
    if n.saturating_mul(dtype.size()) > MAX_EXPANDED_BYTES {
        return Err(Error::invalid(format!(
            "a TensorProto of shape {dims:?} and dtype {dtype} without tensor_content would \
             expand to more than {MAX_EXPANDED_BYTES} bytes"
        )));
    }
    match dtype {
        DType::Float32 => expand(&dims, &p.float_val, n, |&x| Ok(x)),
        DType::Float64 => expand(&dims, &p.double_val, n, |&x| Ok(x)),
        DType::Int32 => expand(&dims, &p.int_val, n, |&x| Ok(x)),
        DType::Int64 => expand(&dims, &p.int64_val, n, |&x| Ok(x)),
        DType::Bool => expand(&dims, &p.bool_val, n, |&x| Ok(x)),
        DType::UInt8 => expand(&dims, &p.int_val, n, |&x| {
            u8::try_from(x).map_err(|_| Error::invalid(format!("uint8 value {x} out of range")))
        }),
        DType::Resource | DType::Variant => Err(resource_error()),
        DType::String => {
            // Bounded by the input: the repeated value is at most the proto's size.
            let fill = p.string_val.last().cloned().unwrap_or_default();
            let budget = n.saturating_mul(fill.len().max(1));
            if budget > MAX_EXPANDED_BYTES {
                return Err(Error::invalid(format!(
                    "a string TensorProto of shape {dims:?} would expand to more than \
                     {MAX_EXPANDED_BYTES} bytes"
                )));
            }
            let mut data: Vec<Vec<u8>> = p.string_val.iter().take(n).cloned().collect();
            data.resize(n, fill);
            Tensor::from_strings(&dims, data)
        }
    }
}

/// TensorFlow's typed-field rule: the first `n` values, the last one repeated to fill, or
/// zeros when there are none.
fn expand<S, T: Element>(
    dims: &[usize],
    vals: &[S],
    n: usize,
    conv: impl Fn(&S) -> Result<T>,
) -> Result<Tensor> {
    let mut data: Vec<T> = Vec::new();
    data.try_reserve_exact(n)
        .map_err(|_| Error::invalid(format!("cannot allocate a tensor of shape {dims:?}")))?;
    for v in vals.iter().take(n) {
        data.push(conv(v)?);
    }
    let fill = data.last().copied().unwrap_or_default();
    data.resize(n, fill);
    Tensor::new(dims, data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    fn roundtrip(t: &Tensor) -> Tensor {
        tensor_from_proto(&tensor_to_proto(t)).unwrap()
    }

    #[test]
    fn scalar_bytes_match_python_tensorflow() {
        // tf.constant(0.5).op.get_attr("value").SerializeToString()
        let p = tensor_to_proto(&Tensor::scalar(0.5f32));
        assert_eq!(
            p.encode_to_vec(),
            [0x08, 0x01, 0x12, 0x00, 0x2a, 0x04, 0x00, 0x00, 0x00, 0x3f]
        );
        // tf.constant([1], dtype=tf.int32)
        let p = tensor_to_proto(&Tensor::vector(vec![1i32]));
        assert_eq!(
            p.encode_to_vec(),
            [0x08, 0x03, 0x12, 0x04, 0x12, 0x02, 0x08, 0x01, 0x3a, 0x01, 0x01]
        );
    }

    #[test]
    fn every_dtype_round_trips() {
        let ts = [
            Tensor::from([[1.5f32, -2.0], [0.0, 3.25]]),
            Tensor::vector(vec![1e300f64, -0.0, 2.5]),
            Tensor::vector(vec![i32::MIN, 0, i32::MAX]),
            Tensor::vector(vec![i64::MIN, 7, i64::MAX]),
            Tensor::vector(vec![0u8, 255, 7]),
            Tensor::vector(vec![true, false, true]),
            Tensor::scalar(7u8),
            Tensor::scalar(false),
            Tensor::scalar(-3i64),
            Tensor::new(&[0, 3], Vec::<f32>::new()).unwrap(),
        ];
        for t in &ts {
            assert_eq!(&roundtrip(t), t);
            assert_eq!(roundtrip(t).shape(), t.shape());
        }
        let p = tensor_to_proto(&ts[0]);
        assert_eq!(p.tensor_content.len(), 16);
        assert!(p.float_val.is_empty());
    }

    #[test]
    fn typed_fields_repeat_the_last_value() {
        // tf.zeros([2, 3]) is stored as float_val: 0 with the shape.
        let p = tf::TensorProto {
            dtype: 1,
            tensor_shape: Some(dims_to_proto(&[2, 3])),
            float_val: vec![1.0, 2.0],
            ..Default::default()
        };
        let t = tensor_from_proto(&p).unwrap();
        assert_eq!(t.shape(), &[2, 3]);
        assert_eq!(
            t.as_slice::<f32>().unwrap(),
            &[1.0, 2.0, 2.0, 2.0, 2.0, 2.0]
        );
        let p = tf::TensorProto {
            dtype: 9,
            tensor_shape: Some(dims_to_proto(&[2])),
            ..Default::default()
        };
        assert_eq!(
            tensor_from_proto(&p).unwrap().as_slice::<i64>().unwrap(),
            &[0, 0]
        );
        // More values than elements: the first n are used.
        let p = tf::TensorProto {
            dtype: 3,
            tensor_shape: Some(dims_to_proto(&[1])),
            int_val: vec![4, 5, 6],
            ..Default::default()
        };
        assert_eq!(
            tensor_from_proto(&p).unwrap().as_slice::<i32>().unwrap(),
            &[4]
        );
    }

    #[test]
    fn bad_protos_are_errors() {
        let content = |dtype: i32, dims: &[i64], bytes: Vec<u8>| tf::TensorProto {
            dtype,
            tensor_shape: Some(tf::TensorShapeProto {
                dim: dims
                    .iter()
                    .map(|&size| tf::tensor_shape_proto::Dim {
                        size,
                        name: String::new(),
                    })
                    .collect(),
                unknown_rank: false,
            }),
            tensor_content: bytes,
            ..Default::default()
        };
        let err = |p: tf::TensorProto| tensor_from_proto(&p).unwrap_err().to_string();
        let e = err(content(1, &[2, 2], vec![0; 15]));
        assert!(e.contains("15 bytes") && e.contains("needs 16"), "{e}");
        let e = err(content(19, &[1], vec![]));
        assert!(e.contains("DT_HALF") && e.contains("not supported"), "{e}");
        let e = err(content(7, &[1], vec![1]));
        assert!(e.contains("string tensors have no raw byte layout"), "{e}");
        let e = err(content(1, &[-3], vec![]));
        assert!(e.contains("-3"), "{e}");
        let e = err(content(1, &[-1], vec![]));
        assert!(e.contains("fully known"), "{e}");
        let e = err(content(101, &[1], vec![0; 4]));
        assert!(e.contains("DT_FLOAT_REF"), "{e}");
        let e = err(content(500, &[1], vec![0; 4]));
        assert!(e.contains("DataType 500"), "{e}");
        let e = err(content(1, &[1 << 40, 1 << 40], vec![0; 4]));
        assert!(e.contains("too many elements"), "{e}");
        let e = err(content(1, &[1 << 40], vec![]));
        assert!(e.contains("expand"), "{e}");
        let e = err(content(10, &[2], vec![0, 2]));
        assert!(e.contains("neither 0 nor 1"), "{e}");
        let mut p = content(4, &[], vec![]);
        p.int_val = vec![300];
        assert!(err(p).contains("out of range"));
        let bad_rank = tf::TensorShapeProto {
            dim: vec![tf::tensor_shape_proto::Dim {
                size: 1,
                name: String::new(),
            }],
            unknown_rank: true,
        };
        assert!(shape_from_proto(&bad_rank).is_err());
    }

    #[test]
    fn partial_shapes_round_trip() {
        for s in [
            PartialShape::unknown(),
            PartialShape::scalar(),
            PartialShape::new(vec![None, Some(784)]),
        ] {
            assert_eq!(shape_from_proto(&shape_to_proto(&s)).unwrap(), s);
        }
        // Placeholder x, shape [-1, 784]: `12 0b 08 ff..01 12 03 08 90 06` inside `3a 12`.
        let p = shape_to_proto(&PartialShape::new(vec![None, Some(784)]));
        assert_eq!(
            p.encode_to_vec(),
            [
                0x12, 0x0b, 0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x12,
                0x03, 0x08, 0x90, 0x06
            ]
        );
    }
}

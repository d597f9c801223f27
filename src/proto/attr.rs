//! Conversions between rustflow's [`AttrValue`] and TensorFlow's `AttrValue` message.

use super::tensor::{
    dtype_from_proto, dtype_name, shape_from_proto, shape_to_proto, tensor_from_proto,
    tensor_to_proto,
};
use super::tf;
use super::tf::attr_value::{ListValue, Value};
use crate::graph::AttrValue;
use crate::tensor::DType;

/// Encodes an attr value. The oneof member is always set, even for empty lists (`list {}`).
pub fn attr_to_proto(v: &AttrValue) -> tf::AttrValue {
    let list = |f: &dyn Fn(&mut ListValue)| {
        let mut l = ListValue::default();
        f(&mut l);
        Value::List(l)
    };
    let value = match v {
        AttrValue::Int(i) => Value::I(*i),
        AttrValue::Float(f) => Value::F(*f),
        AttrValue::Bool(b) => Value::B(*b),
        AttrValue::String(s) => Value::S(s.as_bytes().to_vec()),
        AttrValue::Type(d) => Value::Type(d.to_tf_enum()),
        AttrValue::Shape(s) => Value::Shape(shape_to_proto(s)),
        AttrValue::Tensor(t) => Value::Tensor(tensor_to_proto(t)),
        AttrValue::IntList(v) => list(&|l| l.i = v.clone()),
        AttrValue::FloatList(v) => list(&|l| l.f = v.clone()),
        AttrValue::TypeList(v) => list(&|l| l.r#type = v.iter().map(|d| d.to_tf_enum()).collect()),
        AttrValue::StringList(v) => {
            list(&|l| l.s = v.iter().map(|s| s.as_bytes().to_vec()).collect())
        }
        AttrValue::ShapeList(v) => list(&|l| l.shape = v.iter().map(shape_to_proto).collect()),
        AttrValue::Func(f) => Value::Func(func_to_proto(f)),
        AttrValue::FuncList(v) => list(&|l| l.func = v.iter().map(|f| func_to_proto(f)).collect()),
    };
    tf::AttrValue { value: Some(value) }
}

fn func_to_proto(name: &str) -> tf::NameAttrList {
    tf::NameAttrList {
        name: name.to_string(),
        attr: Default::default(),
    }
}

/// A `func` attr's function name; a function given attrs of its own is not supported.
fn func_from_proto(f: &tf::NameAttrList) -> Result<String, String> {
    if !f.attr.is_empty() {
        return Err(format!(
            "function attr '{}' passes attrs to the function, which is not supported",
            f.name
        ));
    }
    Ok(f.name.clone())
}

/// A `type` attr value, which must be a valid, non-reference dtype rustflow has.
fn attr_dtype(v: i32) -> Result<DType, String> {
    if v > 100 {
        return Err(format!(
            "type {} is a reference type, which an attr may not hold",
            dtype_name(v)
        ));
    }
    dtype_from_proto(v).map_err(|_| format!("type {} is not supported by rustflow", dtype_name(v)))
}

fn utf8(b: &[u8]) -> Result<String, String> {
    String::from_utf8(b.to_vec()).map_err(|_| "a string is not valid UTF-8".to_string())
}

/// Decodes an attr value. `Err` explains why rustflow cannot represent it (a dtype it lacks,
/// a function, non-UTF-8 bytes, ...); the caller then keeps the node as an unsupported one.
///
/// An empty list carries no element type on the wire; `hint` (the op's default for the attr,
/// if any) picks the variant, else it is an empty `IntList`.
pub fn attr_from_proto(p: &tf::AttrValue, hint: Option<&AttrValue>) -> Result<AttrValue, String> {
    let Some(value) = &p.value else {
        return Err("the AttrValue has no value".into());
    };
    Ok(match value {
        Value::S(s) => AttrValue::String(utf8(s)?),
        Value::I(i) => AttrValue::Int(*i),
        Value::F(f) => AttrValue::Float(*f),
        Value::B(b) => AttrValue::Bool(*b),
        Value::Type(t) => AttrValue::Type(attr_dtype(*t)?),
        Value::Shape(s) => AttrValue::Shape(shape_from_proto(s).map_err(|e| e.to_string())?),
        Value::Tensor(t) => AttrValue::Tensor(tensor_from_proto(t).map_err(|e| e.to_string())?),
        Value::List(l) => list_from_proto(l, hint)?,
        Value::Func(f) => AttrValue::Func(func_from_proto(f)?),
        Value::Placeholder(p) => {
            return Err(format!(
                "placeholder attrs ('{p}') only occur in function bodies"
            ))
        }
    })
}

fn list_from_proto(l: &ListValue, hint: Option<&AttrValue>) -> Result<AttrValue, String> {
    let kinds = [
        !l.s.is_empty(),
        !l.i.is_empty(),
        !l.f.is_empty(),
        !l.b.is_empty(),
        !l.r#type.is_empty(),
        !l.shape.is_empty(),
        !l.tensor.is_empty(),
        !l.func.is_empty(),
    ];
    match kinds.iter().filter(|&&k| k).count() {
        0 => {
            return Ok(match hint {
                Some(AttrValue::FloatList(_)) => AttrValue::FloatList(Vec::new()),
                Some(AttrValue::TypeList(_)) => AttrValue::TypeList(Vec::new()),
                Some(AttrValue::StringList(_)) => AttrValue::StringList(Vec::new()),
                Some(AttrValue::ShapeList(_)) => AttrValue::ShapeList(Vec::new()),
                _ => AttrValue::IntList(Vec::new()),
            })
        }
        1 => {}
        _ => return Err("a list attr mixes several element types".into()),
    }
    if !l.s.is_empty() {
        Ok(AttrValue::StringList(
            l.s.iter().map(|s| utf8(s)).collect::<Result<_, _>>()?,
        ))
    } else if !l.i.is_empty() {
        Ok(AttrValue::IntList(l.i.clone()))
    } else if !l.f.is_empty() {
        Ok(AttrValue::FloatList(l.f.clone()))
    } else if !l.r#type.is_empty() {
        Ok(AttrValue::TypeList(
            l.r#type
                .iter()
                .map(|&t| attr_dtype(t))
                .collect::<Result<_, _>>()?,
        ))
    } else if !l.shape.is_empty() {
        Ok(AttrValue::ShapeList(
            l.shape
                .iter()
                .map(|s| shape_from_proto(s).map_err(|e| e.to_string()))
                .collect::<Result<_, _>>()?,
        ))
    } else if !l.b.is_empty() {
        Err("list(bool) attrs are not supported by rustflow".into())
    } else if !l.tensor.is_empty() {
        Err("list(tensor) attrs are not supported by rustflow".into())
    } else {
        Ok(AttrValue::FuncList(
            l.func
                .iter()
                .map(func_from_proto)
                .collect::<Result<_, _>>()?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::{PartialShape, Tensor};
    use prost::Message;

    #[test]
    fn every_variant_round_trips() {
        let vs = [
            AttrValue::Int(0),
            AttrValue::Int(-5),
            AttrValue::Float(0.25),
            AttrValue::Bool(false),
            AttrValue::String(String::new()),
            AttrValue::Type(DType::Int64),
            AttrValue::Shape(PartialShape::unknown()),
            AttrValue::Shape(PartialShape::scalar()),
            AttrValue::Tensor(Tensor::from([[1i32, 2], [3, 4]])),
            AttrValue::IntList(vec![1, 2, 2, 1]),
            AttrValue::FloatList(vec![0.5]),
            AttrValue::TypeList(vec![DType::Float32, DType::Bool]),
            AttrValue::StringList(vec!["loc:@a".into()]),
            AttrValue::ShapeList(vec![PartialShape::new(vec![None, Some(1)])]),
        ];
        for v in vs {
            let bytes = attr_to_proto(&v).encode_to_vec();
            let back = tf::AttrValue::decode(bytes.as_slice()).unwrap();
            assert_eq!(attr_from_proto(&back, None).unwrap(), v);
        }
    }

    #[test]
    fn oneof_members_are_written_even_when_default() {
        // TensorFlow writes `b: false` as `28 00`, `s: ""` as `12 00`, `list {}` as `0a 00`.
        assert_eq!(
            attr_to_proto(&AttrValue::Bool(false)).encode_to_vec(),
            [0x28, 0x00]
        );
        assert_eq!(
            attr_to_proto(&AttrValue::String(String::new())).encode_to_vec(),
            [0x12, 0x00]
        );
        assert_eq!(
            attr_to_proto(&AttrValue::TypeList(vec![])).encode_to_vec(),
            [0x0a, 0x00]
        );
        assert_eq!(
            attr_to_proto(&AttrValue::Shape(PartialShape::scalar())).encode_to_vec(),
            [0x3a, 0x00]
        );
    }

    #[test]
    fn empty_lists_follow_the_hint() {
        let empty = tf::AttrValue {
            value: Some(Value::List(ListValue::default())),
        };
        assert_eq!(
            attr_from_proto(&empty, Some(&AttrValue::TypeList(vec![DType::Int32]))).unwrap(),
            AttrValue::TypeList(vec![])
        );
        assert_eq!(
            attr_from_proto(&empty, None).unwrap(),
            AttrValue::IntList(vec![])
        );
    }

    #[test]
    fn unrepresentable_values_explain_why() {
        let v = |value| tf::AttrValue { value: Some(value) };
        let e = attr_from_proto(&v(Value::Type(19)), None).unwrap_err();
        assert!(e.contains("DT_HALF"), "{e}");
        let e = attr_from_proto(&v(Value::Type(101)), None).unwrap_err();
        assert!(e.contains("reference"), "{e}");
        assert!(attr_from_proto(&v(Value::S(vec![0xff])), None).is_err());
        assert!(attr_from_proto(&tf::AttrValue { value: None }, None).is_err());
        let halves = tf::TensorProto {
            dtype: 19,
            half_val: vec![0x3c00],
            ..Default::default()
        };
        assert!(attr_from_proto(&v(Value::Tensor(halves)), None).is_err());
    }
}

//! TensorFlow Serving's REST JSON (`api_rest.md`) ⇄ tensors: the `instances` (row) and
//! `inputs` (columnar) request formats, the `predictions` / `outputs` answers, and the JSON
//! of a `SignatureDef` map as TensorFlow Serving's metadata endpoint writes it.

use super::status::Status;
use crate::proto::tf::error::Code;
use crate::proto::{self, tf};
use crate::tensor::{Buffer, DType, PartialShape, Tensor};
use base64::Engine as _;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Which format a predict request used; the answer uses the matching one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `{"instances": [...]}` answered with `{"predictions": [...]}`.
    Row,
    /// `{"inputs": ...}` answered with `{"outputs": ...}`.
    Columnar,
}

/// A decoded predict request.
#[derive(Debug)]
pub struct PredictRequest {
    /// The signature to run (`serving_default` when the request names none).
    pub signature_name: Option<String>,
    /// The request's format.
    pub format: Format,
    /// The input values, still JSON: per input key (`None` for the single unnamed input)
    /// the rows (row format) or the whole value (columnar).
    pub inputs: Inputs,
}

/// The inputs of a request before they are typed by the signature.
#[derive(Debug)]
pub enum Inputs {
    /// One unnamed input (the signature must have exactly one).
    Single(Value),
    /// Inputs by key.
    Named(BTreeMap<String, Value>),
}

/// A request body's JSON object and its `signature_name`, taken out of it.
pub fn parse_request_object(body: &[u8]) -> Result<(Option<String>, Map<String, Value>), Status> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| Status::invalid(format!("JSON parse error: {e}")))?;
    let Value::Object(mut obj) = v else {
        return Err(Status::invalid("the request body must be a JSON object"));
    };
    let signature_name = match obj.remove("signature_name") {
        None => None,
        Some(Value::String(s)) => Some(s),
        Some(_) => return Err(Status::invalid("'signature_name' must be a string")),
    };
    Ok((signature_name, obj))
}

/// Parses a predict request body.
pub fn parse_predict(body: &[u8]) -> Result<PredictRequest, Status> {
    let (signature_name, mut obj) = parse_request_object(body)?;
    let (format, value) = match (obj.remove("instances"), obj.remove("inputs")) {
        (Some(_), Some(_)) => {
            return Err(Status::invalid(
                "the request has both 'instances' and 'inputs'; use one",
            ))
        }
        (Some(v), None) => (Format::Row, v),
        (None, Some(v)) => (Format::Columnar, v),
        (None, None) => {
            return Err(Status::invalid(
                "missing 'instances' or 'inputs' in the request",
            ))
        }
    };
    if let Some(k) = obj.keys().next() {
        return Err(Status::invalid(format!("unknown key '{k}' in the request")));
    }
    let inputs = match format {
        Format::Columnar => match value {
            Value::Object(m) if !is_b64(&m) => Inputs::Named(m.into_iter().collect()),
            v => Inputs::Single(v),
        },
        Format::Row => row_inputs(value)?,
    };
    Ok(PredictRequest {
        signature_name,
        format,
        inputs,
    })
}

/// Row format: a list of values (one input) or of objects keyed by input, regrouped per
/// input as a list of rows.
fn row_inputs(value: Value) -> Result<Inputs, Status> {
    let Value::Array(rows) = value else {
        return Err(Status::invalid("'instances' must be a list"));
    };
    let named = matches!(rows.first(), Some(Value::Object(m)) if !is_b64(m));
    if !named {
        return Ok(Inputs::Single(Value::Array(rows)));
    }
    let n = rows.len();
    let mut by_key: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for (i, row) in rows.into_iter().enumerate() {
        let Value::Object(m) = row else {
            return Err(Status::invalid(format!(
                "instance {i} is not an object like instance 0 (every instance must name its inputs)"
            )));
        };
        if i > 0 && m.len() != by_key.len() {
            return Err(Status::invalid(format!(
                "instance {i} has {} inputs, instance 0 has {}",
                m.len(),
                by_key.len()
            )));
        }
        for (k, v) in m {
            if i > 0 && !by_key.contains_key(&k) {
                return Err(Status::invalid(format!(
                    "instance {i} has input '{k}', which instance 0 lacks"
                )));
            }
            by_key
                .entry(k)
                .or_insert_with(|| Vec::with_capacity(n))
                .push(v);
        }
    }
    Ok(Inputs::Named(
        by_key
            .into_iter()
            .map(|(k, v)| (k, Value::Array(v)))
            .collect(),
    ))
}

fn is_b64(m: &Map<String, Value>) -> bool {
    m.len() == 1 && m.contains_key("b64")
}

/// Converts a JSON value (nested lists of numbers or booleans) to a tensor of `dtype`;
/// `what` names the input in errors.
pub fn json_to_tensor(v: &Value, dtype: DType, what: &str) -> Result<Tensor, Status> {
    let mut shape = Vec::new();
    let mut leaves = Vec::new();
    let mut leaf_depth = None;
    flatten(v, 0, &mut shape, &mut leaf_depth, &mut leaves)
        .map_err(|e| Status::invalid(format!("input '{what}': {e}")))?;
    if leaf_depth.is_none() {
        // Only empty lists: the innermost dimension is 0.
        leaf_depth = Some(shape.len());
    }
    shape.truncate(leaf_depth.unwrap_or(0));
    let bad = |i: usize, want: &str| {
        Status::invalid(format!(
            "input '{what}' must be {dtype} ({want}), got {} at element {i}",
            leaves[i]
        ))
    };
    macro_rules! collect {
        ($f:expr, $want:expr) => {{
            let mut out = Vec::with_capacity(leaves.len());
            for (i, l) in leaves.iter().enumerate() {
                out.push($f(*l).ok_or_else(|| bad(i, $want))?);
            }
            Tensor::new(&shape, out)
        }};
    }
    let int = |l: &Value| l.as_i64();
    let t = match dtype {
        DType::Float32 => collect!(|l: &Value| l.as_f64().map(|x| x as f32), "numbers"),
        DType::Float64 => collect!(|l: &Value| l.as_f64(), "numbers"),
        DType::Int32 => collect!(
            |l: &Value| int(l).and_then(|x| i32::try_from(x).ok()),
            "integers in int32's range"
        ),
        DType::Int64 => collect!(int, "integers"),
        DType::UInt8 => collect!(
            |l: &Value| int(l).and_then(|x| u8::try_from(x).ok()),
            "integers 0..=255"
        ),
        DType::Bool => collect!(|l: &Value| l.as_bool(), "true or false"),
        DType::Resource | DType::Variant => {
            return Err(Status::invalid(format!(
                "input '{what}': a resource handle cannot be fed"
            )))
        }
        DType::String => {
            let mut out = Vec::with_capacity(leaves.len());
            for (i, l) in leaves.iter().enumerate() {
                out.push(json_bytes(l).ok_or_else(|| bad(i, "strings or {\"b64\": ...}"))??);
            }
            Tensor::from_strings(&shape, out)
        }
    };
    t.map_err(|e| Status::invalid(format!("input '{what}': {e}")))
}

/// `t` as the signature's `shape` wants it when its instances hold the right number of
/// elements in another layout, as TensorFlow Serving accepts them: `[1.0, 2.0]` (two
/// scalar instances) for a `[-1, 1]` input becomes `[[1.0], [2.0]]`. Each of the `n` rows
/// of `t` (its dimension 0) must hold as many elements as one row of `shape` (whose inner
/// dimensions must be known); anything else is returned unchanged, for the run to refuse.
pub fn fit_to_shape(t: Tensor, shape: &PartialShape) -> Tensor {
    let Some(&n) = t.shape().first() else {
        return t;
    };
    if shape.is_compatible_with(t.shape()) {
        return t;
    }
    let Some([first, inner @ ..]) = shape.dims() else {
        return t;
    };
    let Some(inner) = inner.iter().copied().collect::<Option<Vec<usize>>>() else {
        return t;
    };
    if first.is_some_and(|d| d != n) || n.checked_mul(inner.iter().product()) != Some(t.len()) {
        return t;
    }
    let mut want = vec![n];
    want.extend(inner);
    t.reshape(&want).unwrap_or(t)
}

/// The bytes of a string element: a JSON string's UTF-8, or `{"b64": ...}` decoded; `None`
/// for other values.
fn json_bytes(v: &Value) -> Option<Result<Vec<u8>, Status>> {
    match v {
        Value::String(s) => Some(Ok(s.as_bytes().to_vec())),
        Value::Object(m) if is_b64(m) => Some(match m.get("b64") {
            Some(Value::String(s)) => base64::engine::general_purpose::STANDARD
                .decode(s)
                .map_err(|e| Status::invalid(format!("bad base64 in {{\"b64\": ...}}: {e}"))),
            _ => Err(Status::invalid("'b64' must be a string")),
        }),
        _ => None,
    }
}

fn flatten<'a>(
    v: &'a Value,
    depth: usize,
    shape: &mut Vec<usize>,
    leaf_depth: &mut Option<usize>,
    leaves: &mut Vec<&'a Value>,
) -> Result<(), String> {
    match v {
        Value::Array(items) => {
            if leaf_depth.is_some_and(|d| depth >= d) {
                return Err(format!("a list at depth {depth}, where values were"));
            }
            if depth == shape.len() {
                shape.push(items.len());
            } else if shape[depth] != items.len() {
                return Err(format!(
                    "lists at depth {depth} have different lengths ({} and {}): the value is not a tensor",
                    shape[depth],
                    items.len()
                ));
            }
            for item in items {
                flatten(item, depth + 1, shape, leaf_depth, leaves)?;
            }
            Ok(())
        }
        Value::Object(m) if is_b64(m) => leaf(v, depth, shape, leaf_depth, leaves),
        Value::Object(_) => Err("an object where a value or a list was expected".into()),
        Value::Null => Err("null where a number was expected".into()),
        Value::Number(_) | Value::Bool(_) | Value::String(_) => {
            leaf(v, depth, shape, leaf_depth, leaves)
        }
    }
}

/// Records one element (a number, a boolean, a string or `{"b64": ...}`) found at `depth`.
fn leaf<'a>(
    v: &'a Value,
    depth: usize,
    shape: &[usize],
    leaf_depth: &mut Option<usize>,
    leaves: &mut Vec<&'a Value>,
) -> Result<(), String> {
    match *leaf_depth {
        None => *leaf_depth = Some(depth),
        Some(d) if d != depth => {
            return Err(format!(
                "values at depths {d} and {depth}: the value is not a tensor"
            ))
        }
        Some(_) => {}
    }
    if depth < shape.len() {
        return Err(format!("a value at depth {depth}, where lists were"));
    }
    leaves.push(v);
    Ok(())
}

/// A predict answer's outputs: a key and a tensor each, in the order they are written.
pub trait Outputs {
    /// How many outputs there are.
    fn count(&self) -> usize;
    /// Output `i`'s key and tensor (`i < count()`).
    fn output(&self, i: usize) -> (&str, &Tensor);
}

impl Outputs for [(String, Tensor)] {
    fn count(&self) -> usize {
        self.len()
    }
    fn output(&self, i: usize) -> (&str, &Tensor) {
        (&self[i].0, &self[i].1)
    }
}

/// Keys and tensors side by side (a prepared signature's output keys and its run's values).
impl Outputs for (&[String], &[Tensor]) {
    fn count(&self) -> usize {
        self.0.len().min(self.1.len())
    }
    fn output(&self, i: usize) -> (&str, &Tensor) {
        (&self.0[i], &self.1[i])
    }
}

/// The outputs in order.
fn each<O: Outputs + ?Sized>(outputs: &O) -> impl Iterator<Item = (&str, &Tensor)> {
    (0..outputs.count()).map(move |i| outputs.output(i))
}

thread_local! {
    /// Where this thread writes answers before they are copied out at their length: the
    /// room a large answer made is kept for the next (up to [`KEPT_ANSWER`]).
    static ANSWER: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// The most room [`ANSWER`] keeps between answers (1 MiB).
const KEPT_ANSWER: usize = 1 << 20;

/// Writes a predict answer: `{"predictions": ...}` (row) or `{"outputs": ...}`
/// (columnar); a bare value when there is one output, an object by key otherwise. The
/// answer is written in this thread's reused buffer and copied out at its length: one
/// allocation, of exactly its size.
pub fn write_predict_response<O: Outputs + ?Sized>(
    format: Format,
    outputs: &O,
) -> Result<axum::body::Bytes, Status> {
    for (k, t) in each(outputs) {
        t.expect_host()
            .map_err(|e| Status::new(Code::Internal, format!("output '{k}': {e}")))?;
    }
    let batch = match format {
        Format::Row => Some(row_batch(outputs)?),
        Format::Columnar => None,
    };
    ANSWER.with_borrow_mut(|s| {
        s.clear();
        write_answer(s, batch, outputs);
        let answer = axum::body::Bytes::copy_from_slice(s.as_bytes());
        if s.capacity() > KEPT_ANSWER {
            *s = String::new();
        }
        Ok(answer)
    })
}

/// The body of [`write_predict_response`]: row format when `batch` (the outputs' batch
/// size) is given, else columnar.
fn write_answer<O: Outputs + ?Sized>(s: &mut String, batch: Option<usize>, outputs: &O) {
    let single = match outputs.count() {
        1 => Some(outputs.output(0).1),
        _ => None,
    };
    match (batch, single) {
        (None, Some(t)) => {
            s.push_str("{\"outputs\": ");
            write_tensor(s, t, 0, 0, t.len());
        }
        (None, None) => {
            s.push_str("{\"outputs\": {");
            for (i, (k, t)) in each(outputs).enumerate() {
                if i > 0 {
                    s.push_str(", ");
                }
                write_key(s, k);
                write_tensor(s, t, 0, 0, t.len());
            }
            s.push('}');
        }
        (Some(batch), _) => {
            s.push_str("{\"predictions\": [");
            for r in 0..batch {
                if r > 0 {
                    s.push_str(", ");
                }
                if let Some(t) = single {
                    write_row(s, t, r);
                } else {
                    s.push('{');
                    for (i, (k, t)) in each(outputs).enumerate() {
                        if i > 0 {
                            s.push_str(", ");
                        }
                        write_key(s, k);
                        write_row(s, t, r);
                    }
                    s.push('}');
                }
            }
            s.push(']');
        }
    }
    s.push('}');
}

/// The batch size every output shares (row format needs one).
fn row_batch<O: Outputs + ?Sized>(outputs: &O) -> Result<usize, Status> {
    let mut batch = None;
    for (k, t) in each(outputs) {
        let Some(&n) = t.shape().first() else {
            return Err(Status::invalid(format!(
                "output '{k}' is a scalar, which the row format (\"instances\") cannot answer; \
                 use the columnar format (\"inputs\")"
            )));
        };
        match batch {
            None => batch = Some(n),
            Some(b) if b != n => {
                return Err(Status::invalid(format!(
                    "output '{k}' has batch size {n}, another output {b}: the row format \
                     (\"instances\") needs one; use the columnar format (\"inputs\")"
                )))
            }
            Some(_) => {}
        }
    }
    Ok(batch.unwrap_or(0))
}

fn write_key(s: &mut String, k: &str) {
    s.push_str(&Value::String(k.to_string()).to_string());
    s.push_str(": ");
}

/// Row `r` of a tensor (its elements below dimension 0).
fn write_row(s: &mut String, t: &Tensor, r: usize) {
    let inner: usize = t.shape()[1..].iter().product();
    write_tensor(s, t, 1, r * inner, (r + 1) * inner);
}

/// The elements `lo..hi` of a tensor as nested lists from dimension `dim` down.
fn write_tensor(s: &mut String, t: &Tensor, dim: usize, lo: usize, hi: usize) {
    if dim == t.rank() {
        write_element(s, t.buffer(), lo);
        return;
    }
    let n = t.shape()[dim];
    let step = (hi - lo).checked_div(n).unwrap_or(0);
    s.push('[');
    for i in 0..n {
        if i > 0 {
            s.push_str(", ");
        }
        write_tensor(s, t, dim + 1, lo + i * step, lo + (i + 1) * step);
    }
    s.push(']');
}

/// One element; non-finite floats as TensorFlow Serving writes them (`NaN`, `Infinity`).
fn write_element(s: &mut String, b: &Buffer, i: usize) {
    match b {
        Buffer::F32(v) => write_float(s, v[i]),
        Buffer::F64(v) => write_float(s, v[i]),
        Buffer::I32(v) => s.push_str(itoa::Buffer::new().format(v[i])),
        Buffer::I64(v) => s.push_str(itoa::Buffer::new().format(v[i])),
        Buffer::U8(v) => s.push_str(itoa::Buffer::new().format(v[i])),
        Buffer::Bool(v) => s.push_str(if v[i] { "true" } else { "false" }),
        // Text as a JSON string; other bytes as TensorFlow Serving writes binary data.
        Buffer::Bytes(v) => match std::str::from_utf8(&v[i]) {
            Ok(text) => s.push_str(&Value::String(text.to_string()).to_string()),
            Err(_) => {
                let b64 = base64::engine::general_purpose::STANDARD.encode(&v[i]);
                let _ = write!(s, "{{\"b64\": \"{b64}\"}}");
            }
        },
        // Excluded by `write_predict_response`, which refuses device tensors; signatures
        // never output handles.
        Buffer::Device(_) | Buffer::Resource(_) | Buffer::Variant(_) => s.push_str("null"),
    }
}

/// A float as the shortest decimal that reads back to it, never with an exponent, and
/// always with a point (`2.0`, `0.0000001`: the layout of Rust's `Display` with `.0` on
/// whole numbers); `NaN`, `Infinity`, `-Infinity` as TensorFlow Serving writes them.
/// The digits are ryu's, as serde_json writes numbers: as many as `Display`'s, the same but
/// for a value exactly halfway between two shortest decimals, which ryu rounds to even
/// (`312985.12` for the `f32` 312985.125, where `Display` writes `312985.13`); only ryu's
/// exponent form (`1e-7`, `1.5e20`) is laid out again.
fn write_float<F: ryu::Float + Into<f64>>(s: &mut String, x: F) {
    let wide: f64 = x.into();
    if wide.is_nan() {
        s.push_str("NaN");
        return;
    }
    if wide.is_infinite() {
        s.push_str(if wide > 0.0 { "Infinity" } else { "-Infinity" });
        return;
    }
    let mut buffer = ryu::Buffer::new();
    let text = buffer.format_finite(x);
    let Some((mantissa, exponent)) = text.split_once('e') else {
        // Already `d.d`.
        s.push_str(text);
        return;
    };
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    // `mantissa` is `d` or `d.ddd`: one digit before the point.
    let (lead, rest) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    s.push_str(sign);
    let zeros = |s: &mut String, n: usize| s.extend(std::iter::repeat_n('0', n));
    match usize::try_from(exponent) {
        // lead.rest × 10^e: the point moves right by e digits.
        Ok(e) => {
            s.push_str(lead);
            if rest.len() <= e {
                s.push_str(rest);
                zeros(s, e - rest.len());
                s.push_str(".0");
            } else {
                s.push_str(&rest[..e]);
                s.push('.');
                s.push_str(&rest[e..]);
            }
        }
        // 0.000lead rest: -e - 1 zeros after the point.
        Err(_) => {
            s.push_str("0.");
            zeros(s, exponent.unsigned_abs() as usize - 1);
            s.push_str(lead);
            s.push_str(rest);
        }
    }
}

/// One `TensorInfo` in TensorFlow Serving's JSON (proto field names, int64 as strings).
fn tensor_info_json(info: &tf::TensorInfo) -> Value {
    let mut m = Map::new();
    m.insert("dtype".into(), json!(proto::dtype_name(info.dtype)));
    if let Some(shape) = &info.tensor_shape {
        let dims: Vec<Value> = shape
            .dim
            .iter()
            .map(|d| json!({"size": d.size.to_string(), "name": d.name}))
            .collect();
        m.insert(
            "tensor_shape".into(),
            json!({"dim": dims, "unknown_rank": shape.unknown_rank}),
        );
    }
    match &info.encoding {
        Some(tf::tensor_info::Encoding::Name(n)) => {
            m.insert("name".into(), json!(n));
        }
        Some(tf::tensor_info::Encoding::CooSparse(c)) => {
            m.insert(
                "coo_sparse".into(),
                json!({
                    "values_tensor_name": c.values_tensor_name,
                    "indices_tensor_name": c.indices_tensor_name,
                    "dense_shape_tensor_name": c.dense_shape_tensor_name,
                }),
            );
        }
        Some(tf::tensor_info::Encoding::CompositeTensor(_)) => {
            m.insert("composite_tensor".into(), json!({}));
        }
        None => {}
    }
    Value::Object(m)
}

/// A `SignatureDef` in TensorFlow Serving's JSON.
pub fn signature_def_json(sig: &tf::SignatureDef) -> Value {
    let infos = |m: &BTreeMap<String, tf::TensorInfo>| -> Value {
        Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), tensor_info_json(v)))
                .collect(),
        )
    };
    json!({
        "inputs": infos(&sig.inputs),
        "outputs": infos(&sig.outputs),
        "method_name": sig.method_name,
    })
}

/// A `SignatureDefMap` (`{"signature_def": {KEY: SignatureDef}}`) in TensorFlow Serving's JSON.
pub fn signature_def_map_json(sigs: &BTreeMap<String, tf::SignatureDef>) -> Value {
    json!({
        "signature_def": Value::Object(
            sigs.iter()
                .map(|(k, v)| (k.clone(), signature_def_json(v)))
                .collect()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn single(body: &str) -> Value {
        match parse_predict(body.as_bytes()).unwrap().inputs {
            Inputs::Single(v) => v,
            i => panic!("{i:?}"),
        }
    }

    #[test]
    fn instances_of_scalars_fit_a_column_input() {
        let col = PartialShape::new(vec![None, Some(1)]);
        let v = single(r#"{"instances": [1.0, 2.0, 5.0]}"#);
        let t = fit_to_shape(json_to_tensor(&v, DType::Float32, "x").unwrap(), &col);
        assert_eq!(t, Tensor::new(&[3, 1], vec![1f32, 2.0, 5.0]).unwrap());
        // Rows of 4 elements for a [-1, 2, 2] input; a fitting value is kept as it is.
        let square = PartialShape::new(vec![None, Some(2), Some(2)]);
        let t = Tensor::new(&[2, 4], (0..8).collect::<Vec<i64>>()).unwrap();
        assert_eq!(fit_to_shape(t.clone(), &square).shape(), &[2, 2, 2]);
        let fits = Tensor::new(&[2, 1], vec![1f32, 2.0]).unwrap();
        assert!(fit_to_shape(fits.clone(), &col).shares_buffer_with(&fits));
        // Rows of the wrong size, an unknown inner dimension, a batch the signature does
        // not take, a scalar: unchanged (the run refuses them).
        let pairs = Tensor::new(&[2, 2], vec![1f32; 4]).unwrap();
        assert_eq!(fit_to_shape(pairs, &col).shape(), &[2, 2]);
        let open = PartialShape::new(vec![None, None, Some(1)]);
        assert_eq!(fit_to_shape(t.clone(), &open).shape(), &[2, 4]);
        let one = PartialShape::new(vec![Some(1), Some(8)]);
        assert_eq!(fit_to_shape(t, &one).shape(), &[2, 4]);
        assert_eq!(
            fit_to_shape(Tensor::scalar(1f32), &col).shape(),
            &[] as &[usize]
        );
    }

    #[test]
    fn row_and_columnar_requests() {
        let r = parse_predict(br#"{"instances": [[1, 2], [3, 4.5]]}"#).unwrap();
        assert_eq!(r.format, Format::Row);
        let Inputs::Single(v) = &r.inputs else {
            panic!()
        };
        let t = json_to_tensor(v, DType::Float32, "x").unwrap();
        assert_eq!(t.shape(), &[2, 2]);
        assert_eq!(t.as_slice::<f32>().unwrap(), &[1.0, 2.0, 3.0, 4.5]);

        let r = parse_predict(
            br#"{"signature_name": "s", "instances": [{"a": 1, "b": [true]}, {"a": 2, "b": [false]}]}"#,
        )
        .unwrap();
        assert_eq!(r.signature_name.as_deref(), Some("s"));
        let Inputs::Named(m) = &r.inputs else {
            panic!()
        };
        let a = json_to_tensor(&m["a"], DType::Int64, "a").unwrap();
        assert_eq!(
            (a.shape(), a.as_slice::<i64>().unwrap()),
            (&[2][..], &[1i64, 2][..])
        );
        let b = json_to_tensor(&m["b"], DType::Bool, "b").unwrap();
        assert_eq!(b.shape(), &[2, 1]);

        let r = parse_predict(br#"{"inputs": {"a": [[1]], "b": 7}}"#).unwrap();
        assert_eq!(r.format, Format::Columnar);
        let Inputs::Named(m) = &r.inputs else {
            panic!()
        };
        assert_eq!(
            json_to_tensor(&m["b"], DType::Int32, "b").unwrap().shape(),
            &[] as &[usize]
        );
        let t =
            json_to_tensor(&single(r#"{"inputs": [[[]], [[]]]}"#), DType::Float32, "x").unwrap();
        assert_eq!(t.shape(), &[2, 1, 0]);
    }

    #[test]
    fn strings_are_text_or_base64_both_ways() {
        // TensorFlow Serving's REST API: text as JSON strings, bytes as {"b64": ...}.
        let body = r#"{"inputs": [["hi", {"b64": "/wA="}]]}"#;
        let t = json_to_tensor(&single(body), DType::String, "x").unwrap();
        assert_eq!(
            t,
            Tensor::from_strings(&[1, 2], vec![&b"hi"[..], b"\xff\x00"]).unwrap()
        );
        let out = write_predict_response(Format::Columnar, &[("y".into(), t)][..]).unwrap();
        assert_eq!(out, r#"{"outputs": [["hi", {"b64": "/wA="}]]}"#);
    }

    #[test]
    fn bad_requests_are_invalid_argument() {
        for (body, want) in [
            ("{", "JSON parse error"),
            ("[1]", "must be a JSON object"),
            (r#"{"x": 1}"#, "missing 'instances' or 'inputs'"),
            (r#"{"instances": [1], "inputs": [1]}"#, "both"),
            (r#"{"instances": 1}"#, "must be a list"),
            (r#"{"instances": [1], "extra": 2}"#, "unknown key 'extra'"),
            (
                r#"{"instances": [{"a": 1}, 2]}"#,
                "instance 1 is not an object",
            ),
            (
                r#"{"instances": [{"a": 1}, {"b": 2}]}"#,
                "which instance 0 lacks",
            ),
            (r#"{"signature_name": 3, "inputs": 1}"#, "must be a string"),
        ] {
            let e = parse_predict(body.as_bytes()).unwrap_err();
            assert_eq!(e.code, crate::proto::tf::error::Code::InvalidArgument);
            assert!(e.message.contains(want), "{body}: {e}");
        }
        for (body, dtype, want) in [
            (
                r#"{"inputs": [[1, 2], [3]]}"#,
                DType::Float32,
                "different lengths",
            ),
            (r#"{"inputs": [[1], 2]}"#, DType::Float32, "depth"),
            (r#"{"inputs": [1.5]}"#, DType::Int32, "must be int32"),
            (r#"{"inputs": [3000000000]}"#, DType::Int32, "int32's range"),
            (r#"{"inputs": [256]}"#, DType::UInt8, "0..=255"),
            (
                r#"{"inputs": ["a"]}"#,
                DType::Float32,
                "must be float32 (numbers), got \"a\"",
            ),
            (r#"{"inputs": [1]}"#, DType::String, "must be string"),
            (r#"{"inputs": [null]}"#, DType::Float32, "null"),
            (
                r#"{"inputs": [{"b64": "!!"}]}"#,
                DType::String,
                "bad base64",
            ),
            (
                r#"{"inputs": [{"b64": "aGk="}]}"#,
                DType::Float32,
                "must be float32",
            ),
            (r#"{"inputs": [1]}"#, DType::Bool, "true or false"),
        ] {
            let e = json_to_tensor(&single(body), dtype, "x").unwrap_err();
            assert!(e.message.contains(want), "{body}: {e}");
        }
        // Deep nesting is refused by the parser, not the stack.
        let deep = format!(
            "{{\"inputs\": {}1{}}}",
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        assert!(parse_predict(deep.as_bytes())
            .unwrap_err()
            .message
            .contains("recursion"));
    }

    /// The significant digits of a decimal without an exponent.
    fn significant(d: &str) -> String {
        let digits: String = d.chars().filter(char::is_ascii_digit).collect();
        digits.trim_matches('0').to_string()
    }

    #[test]
    fn floats_read_back_bit_for_bit_in_displays_layout_and_length() {
        let written = |f: &dyn Fn(&mut String)| {
            let mut s = String::new();
            f(&mut s);
            s
        };
        let mut f32s = vec![
            0.0f32,
            -0.0,
            1.0,
            -1.0,
            0.1,
            2.5,
            1e-7,
            1.5e-7,
            1e-5,
            1e-6,
            123456.79,
            1e13,
            1e14,
            1.2345e15,
            3.4028235e38,
            -3.4028235e38,
            f32::MIN_POSITIVE,
            1e-45,
            7e-45,
            16777216.0,
            0.3,
            100.0,
            1e10,
        ];
        let mut f64s = vec![
            0.0f64,
            -0.0,
            0.1,
            1e-5,
            1e-6,
            1.5e-7,
            1e15,
            1e16,
            1.2345e17,
            1e300,
            5e-324,
            f64::MAX,
            f64::MIN_POSITIVE,
            9007199254740993.0,
            0.30000000000000004,
        ];
        // Every exponent, with varied digits (a fixed-seed xorshift).
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..200_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            f32s.push(f32::from_bits(state as u32));
            f64s.push(f64::from_bits(state));
        }
        fn check(s: &str, display: String) {
            assert!(!s.contains('e') && s.contains('.'), "{s}");
            assert_eq!(
                significant(s).len(),
                significant(&display).len(),
                "{s} vs {display}"
            );
            // Where they differ, only in the last digit (an exact tie rounded to even).
            if s != display.as_str() && s.trim_end_matches(".0") != display {
                assert_eq!(s.len(), display.len(), "{s} vs {display}");
                assert_eq!(
                    s[..s.len() - 1],
                    display[..display.len() - 1],
                    "{s} vs {display}"
                );
            }
        }
        let mut ties = 0;
        for x in f32s.into_iter().filter(|x| x.is_finite()) {
            let s = written(&|s| write_float(s, x));
            assert_eq!(s.parse::<f32>().unwrap().to_bits(), x.to_bits(), "{s}");
            ties += usize::from(s.trim_end_matches(".0") != x.to_string());
            check(&s, x.to_string());
        }
        assert!(ties < 1000, "{ties} of 200000 differ from Display");
        for x in f64s.into_iter().filter(|x| x.is_finite()) {
            let s = written(&|s| write_float(s, x));
            assert_eq!(s.parse::<f64>().unwrap().to_bits(), x.to_bits(), "{s}");
            check(&s, x.to_string());
        }
        for (x, want) in [
            (f32::NAN, "NaN"),
            (f32::INFINITY, "Infinity"),
            (f32::NEG_INFINITY, "-Infinity"),
        ] {
            assert_eq!(written(&|s| write_float(s, x)), want);
        }
        // Hand values: both layouts of ryu's exponent form, and a tie.
        assert_eq!(written(&|s| write_float(s, 1.5e-7f32)), "0.00000015");
        assert_eq!(
            written(&|s| write_float(s, -2.5e15f32)),
            "-2500000000000000.0"
        );
        assert_eq!(written(&|s| write_float(s, 1e16f64)), "10000000000000000.0");
        assert_eq!(written(&|s| write_float(s, 123.5f32)), "123.5");
        assert_eq!(
            written(&|s| write_float(s, f32::from_bits(0x4898_d324))),
            "312985.12"
        );
    }

    #[test]
    fn responses_in_both_formats() {
        let y = Tensor::new(&[2, 1], vec![2.5f32, 3.0]).unwrap();
        let c = Tensor::new(&[2], vec![1i64, -7]).unwrap();
        let one = [("y".to_string(), y.clone())];
        let two = [("y".to_string(), y), ("c".to_string(), c)];
        assert_eq!(
            write_predict_response(Format::Row, &one[..]).unwrap(),
            r#"{"predictions": [[2.5], [3.0]]}"#
        );
        assert_eq!(
            write_predict_response(Format::Columnar, &one[..]).unwrap(),
            r#"{"outputs": [[2.5], [3.0]]}"#
        );
        assert_eq!(
            write_predict_response(Format::Row, &two[..]).unwrap(),
            r#"{"predictions": [{"y": [2.5], "c": 1}, {"y": [3.0], "c": -7}]}"#
        );
        assert_eq!(
            write_predict_response(Format::Columnar, &two[..]).unwrap(),
            r#"{"outputs": {"y": [[2.5], [3.0]], "c": [1, -7]}}"#
        );
        let odd = Tensor::new(&[3], vec![f32::NAN, f32::INFINITY, 1e-7]).unwrap();
        let s = write_predict_response(Format::Columnar, &[("o".into(), odd)][..]).unwrap();
        assert_eq!(s, r#"{"outputs": [NaN, Infinity, 0.0000001]}"#);
        let scalar = [("s".to_string(), Tensor::scalar(1.0f32))];
        assert!(write_predict_response(Format::Row, &scalar[..]).is_err());
        let mixed = [
            ("a".to_string(), Tensor::vector(vec![1i32])),
            ("b".to_string(), Tensor::vector(vec![1i32, 2])),
        ];
        assert!(write_predict_response(Format::Row, &mixed[..])
            .unwrap_err()
            .message
            .contains("batch size"));
    }
}

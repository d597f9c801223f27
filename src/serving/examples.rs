//! TensorFlow Serving's classify and regress APIs: `tf.train.Example`s (written as JSON for
//! REST's `:classify` and `:regress`, as protos for gRPC's `Classify` and `Regress`) are
//! serialized and fed to the signature's `inputs` (a `ParseExample` in the graph reads
//! them), and the `scores`/`classes` or `outputs` come back ([`run_examples`]), as
//! `{"result": ...}` for REST ([`ExampleResult::to_json`]).
//!
//! Feature values follow TensorFlow Serving's JSON rules: an integer is an `int64_list`, a
//! number with a fraction or exponent a `float_list`, a string a `bytes_list` (or
//! `{"b64": ...}` for binary data); a list holds one kind. `context` features are added to
//! every example (an example's own feature of the same name wins).

use super::model::Servable;
use super::status::Status;
use crate::pb::tf;
use crate::tensor::{DType, Tensor};
use base64::Engine as _;
use prost::Message;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// Which API a request came through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExampleApi {
    /// `:classify`: answers `[label, score]` pairs per example.
    Classify,
    /// `:regress`: answers one value per example.
    Regress,
}

impl ExampleApi {
    fn method_name(self) -> &'static str {
        match self {
            ExampleApi::Classify => "tensorflow/serving/classify",
            ExampleApi::Regress => "tensorflow/serving/regress",
        }
    }

    /// The API of a signature method name (`tensorflow/serving/classify` or `.../regress`).
    pub fn from_method_name(name: &str) -> Option<ExampleApi> {
        [ExampleApi::Classify, ExampleApi::Regress]
            .into_iter()
            .find(|api| api.method_name() == name)
    }
}

/// A parsed `:classify` / `:regress` request.
#[derive(Debug)]
pub struct ExamplesRequest {
    /// The signature to run (default `serving_default`).
    pub signature_name: Option<String>,
    /// The examples, serialized.
    pub examples: Vec<Vec<u8>>,
}

/// Parses a request body: `{"signature_name": ..., "context": {...}, "examples": [...]}`.
pub fn parse_examples_request(body: &[u8]) -> Result<ExamplesRequest, Status> {
    let (signature_name, mut obj) = super::codec::parse_request_object(body)?;
    let context = match obj.remove("context") {
        None => BTreeMap::new(),
        Some(Value::Object(m)) => features(&m, "context")?,
        Some(_) => return Err(Status::invalid("'context' must be an object of features")),
    };
    let Some(Value::Array(list)) = obj.remove("examples") else {
        return Err(Status::invalid(
            "missing 'examples' (a list of objects) in the request",
        ));
    };
    if let Some(k) = obj.keys().next() {
        return Err(Status::invalid(format!("unknown key '{k}' in the request")));
    }
    let examples = list
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let Value::Object(m) = e else {
                return Err(Status::invalid(format!(
                    "example {i} is not an object of features"
                )));
            };
            Ok(with_context(
                &context,
                features(m, &format!("example {i}"))?,
            ))
        })
        .collect::<Result<Vec<_>, Status>>()?;
    Ok(ExamplesRequest {
        signature_name,
        examples,
    })
}

/// An example of `features` and the `context` features it lacks, serialized.
pub fn with_context(
    context: &BTreeMap<String, tf::Feature>,
    features: BTreeMap<String, tf::Feature>,
) -> Vec<u8> {
    let mut feature = context.clone();
    feature.extend(features);
    tf::Example {
        features: Some(tf::Features { feature }),
    }
    .encode_to_vec()
}

/// The features of one JSON object.
fn features(m: &Map<String, Value>, what: &str) -> Result<BTreeMap<String, tf::Feature>, Status> {
    m.iter()
        .map(|(name, v)| {
            feature(v)
                .map(|f| (name.clone(), f))
                .map_err(|e| Status::invalid(format!("{what}, feature '{name}': {e}")))
        })
        .collect()
}

/// One value, or a list of values of one kind, as a `Feature`.
fn feature(v: &Value) -> Result<tf::Feature, String> {
    use tf::feature::Kind;
    let items: Vec<&Value> = match v {
        Value::Array(items) => items.iter().collect(),
        single => vec![single],
    };
    let is_bytes =
        |v: &Value| v.is_string() || matches!(v, Value::Object(m) if m.contains_key("b64"));
    let kind = match items.first() {
        None => Kind::FloatList(tf::FloatList { value: vec![] }),
        Some(first) if is_bytes(first) => Kind::BytesList(tf::BytesList {
            value: items.iter().map(|v| bytes(v)).collect::<Result<_, _>>()?,
        }),
        Some(_) if items.iter().all(|v| v.is_i64()) => Kind::Int64List(tf::Int64List {
            value: items.iter().filter_map(|v| v.as_i64()).collect(),
        }),
        Some(_) => Kind::FloatList(tf::FloatList {
            value: items
                .iter()
                .map(|v| {
                    v.as_f64()
                        .map(|x| x as f32)
                        .ok_or_else(|| format!("{v} is not a number"))
                })
                .collect::<Result<_, _>>()?,
        }),
    };
    Ok(tf::Feature { kind: Some(kind) })
}

fn bytes(v: &Value) -> Result<Vec<u8>, String> {
    match v {
        Value::String(s) => Ok(s.as_bytes().to_vec()),
        Value::Object(m) if m.len() == 1 => match m.get("b64") {
            Some(Value::String(s)) => base64::engine::general_purpose::STANDARD
                .decode(s)
                .map_err(|e| format!("bad base64 in {{\"b64\": ...}}: {e}")),
            _ => Err("'b64' must be a string".into()),
        },
        other => Err(format!(
            "{other} is not a string (a list holds one kind of value)"
        )),
    }
}

/// What a classify or regress request gets back, one entry per example.
#[derive(Clone, Debug, PartialEq)]
pub enum ExampleResult {
    /// Each example's `(label, score)` pairs (an empty label when the signature has no
    /// `classes`, a 0 score when it has no `scores`).
    Classifications(Vec<Vec<(Vec<u8>, f32)>>),
    /// Each example's value.
    Regressions(Vec<f32>),
}

impl ExampleResult {
    /// TensorFlow Serving's REST answer: `{"result": [[[label, score], ...], ...]}` or
    /// `{"result": [value, ...]}`.
    pub fn to_json(&self) -> String {
        let result = match self {
            ExampleResult::Regressions(v) => json!(v),
            ExampleResult::Classifications(c) => c
                .iter()
                .map(|classes| {
                    classes
                        .iter()
                        .map(|(label, score)| json!([String::from_utf8_lossy(label), score]))
                        .collect::<Value>()
                })
                .collect(),
        };
        json!({ "result": result }).to_string()
    }
}

/// Runs a request's serialized examples through a signature of the servable.
pub fn run_examples(
    servable: &Servable,
    api: ExampleApi,
    request: ExamplesRequest,
) -> Result<ExampleResult, Status> {
    let (key, sig) = servable.signature(request.signature_name.as_deref())?;
    if sig.method_name != api.method_name() {
        return Err(Status::invalid(format!(
            "Expected {} signature method_name for signature '{key}', got {}",
            api.method_name(),
            sig.method_name
        )));
    }
    let n = request.examples.len();
    let examples =
        Tensor::from_strings(&[n], request.examples).map_err(|e| Status::invalid(e.to_string()))?;
    let run = |outputs: &[&str]| {
        servable
            .model
            .run_signature_outputs(key, &[("inputs", examples.clone())], outputs)
            .map_err(Status::from)
    };
    let per_example = |t: &Tensor, what: &str| -> Result<usize, Status> {
        match t.shape().first() {
            Some(&b) if b == n => Ok(t.len().checked_div(n).unwrap_or(0)),
            _ => Err(Status::invalid(format!(
                "output '{what}' has shape {:?}, expected [{n}, ...] (one row per example)",
                t.shape()
            ))),
        }
    };
    let floats = |t: &Tensor, what: &str| -> Result<Vec<f32>, Status> {
        match t.dtype() {
            DType::Float32 => Ok(t.to_vec::<f32>().unwrap_or_default()),
            d => Err(Status::invalid(format!(
                "output '{what}' must be float32, got {d}"
            ))),
        }
    };
    match api {
        ExampleApi::Regress => {
            let out = run(&["outputs"])?.remove(0);
            if per_example(&out, "outputs")? != 1 {
                return Err(Status::invalid(format!(
                    "output 'outputs' has shape {:?}: a regression gives one value per example",
                    out.shape()
                )));
            }
            Ok(ExampleResult::Regressions(floats(&out, "outputs")?))
        }
        ExampleApi::Classify => {
            let has = |k: &str| sig.outputs.contains_key(k);
            let keys: Vec<&str> = ["classes", "scores"]
                .into_iter()
                .filter(|k| has(k))
                .collect();
            if keys.is_empty() {
                return Err(Status::invalid(format!(
                    "signature '{key}' has neither 'classes' nor 'scores' outputs"
                )));
            }
            let outs = run(&keys)?;
            let get = |k: &str| keys.iter().position(|x| *x == k).map(|i| &outs[i]);
            let scores = get("scores")
                .map(|s| Ok::<_, Status>((floats(s, "scores")?, per_example(s, "scores")?)))
                .transpose()?;
            let classes = get("classes")
                .map(|c| {
                    let per = per_example(c, "classes")?;
                    let labels = c.as_strings().map_err(|_| {
                        Status::invalid(format!(
                            "output 'classes' must be strings, got {}",
                            c.dtype()
                        ))
                    })?;
                    Ok::<_, Status>((labels.to_vec(), per))
                })
                .transpose()?;
            let per = match (&scores, &classes) {
                (Some((_, s)), Some((_, c))) if s != c => {
                    return Err(Status::invalid(format!(
                        "outputs 'scores' and 'classes' give {s} and {c} values per example"
                    )))
                }
                (Some((_, p)), _) | (None, Some((_, p))) => *p,
                (None, None) => 0,
            };
            let result = (0..n)
                .map(|b| {
                    (0..per)
                        .map(|c| {
                            let i = b * per + c;
                            let label = classes
                                .as_ref()
                                .map(|(l, _)| l[i].clone())
                                .unwrap_or_default();
                            (label, scores.as_ref().map_or(0.0, |(s, _)| s[i]))
                        })
                        .collect()
                })
                .collect();
            Ok(ExampleResult::Classifications(result))
        }
    }
}

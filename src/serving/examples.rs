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
use crate::saved_model::{Signature, TensorInfo};
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

/// One classify or regress task checked against its signature: the signature's key and
/// definition and the outputs the API reads from it.
struct Task<'a> {
    key: &'a str,
    sig: &'a Signature,
    api: ExampleApi,
    outputs: Vec<&'static str>,
}

impl<'a> Task<'a> {
    /// The task of running `api` on the servable's signature `signature_name` (default
    /// `serving_default`); TensorFlow Serving's errors for a wrong method or missing outputs.
    fn new(
        servable: &'a Servable,
        signature_name: Option<&'a str>,
        api: ExampleApi,
    ) -> Result<Task<'a>, Status> {
        let (key, sig) = servable.signature(signature_name)?;
        if sig.method_name != api.method_name() {
            return Err(Status::invalid(format!(
                "Expected {} signature method_name for signature '{key}', got {}",
                api.method_name(),
                sig.method_name
            )));
        }
        let outputs = match api {
            ExampleApi::Regress => vec!["outputs"],
            ExampleApi::Classify => ["classes", "scores"]
                .into_iter()
                .filter(|k| sig.outputs.contains_key(*k))
                .collect(),
        };
        if outputs.is_empty() {
            return Err(Status::invalid(format!(
                "signature '{key}' has neither 'classes' nor 'scores' outputs"
            )));
        }
        Ok(Task {
            key,
            sig,
            api,
            outputs,
        })
    }

    /// The graph tensors of the outputs the task reads.
    fn output_infos(&self) -> Result<Vec<&'a TensorInfo>, Status> {
        self.outputs
            .iter()
            .map(|k| {
                self.sig.outputs.get(*k).ok_or_else(|| {
                    Status::invalid(format!("signature '{}' has no output '{k}'", self.key))
                })
            })
            .collect()
    }

    /// The result for `n` examples from the task's outputs (in `self.outputs`' order).
    fn result(&self, n: usize, outs: &[Tensor]) -> Result<ExampleResult, Status> {
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
        let get = |k: &str| self.outputs.iter().position(|x| *x == k).map(|i| &outs[i]);
        match self.api {
            ExampleApi::Regress => {
                let out = get("outputs").ok_or_else(|| Status::invalid("no 'outputs'"))?;
                if per_example(out, "outputs")? != 1 {
                    return Err(Status::invalid(format!(
                        "output 'outputs' has shape {:?}: a regression gives one value per example",
                        out.shape()
                    )));
                }
                Ok(ExampleResult::Regressions(floats(out, "outputs")?))
            }
            ExampleApi::Classify => {
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
}

/// The serialized examples as the string vector fed to a signature's `inputs`.
fn examples_tensor(examples: Vec<Vec<u8>>) -> Result<Tensor, Status> {
    let n = examples.len();
    Tensor::from_strings(&[n], examples).map_err(|e| Status::invalid(e.to_string()))
}

/// Runs a request's serialized examples through a signature of the servable.
pub fn run_examples(
    servable: &Servable,
    api: ExampleApi,
    request: ExamplesRequest,
) -> Result<ExampleResult, Status> {
    let task = Task::new(servable, request.signature_name.as_deref(), api)?;
    let n = request.examples.len();
    let examples = examples_tensor(request.examples)?;
    let outs = servable
        .model
        .run_signature_outputs(task.key, &[("inputs", examples)], &task.outputs)
        .map_err(Status::from)?;
    task.result(n, &outs)
}

/// True when every task's signature has the single input `inputs`, read from one and the
/// same graph tensor, so that one session run can serve them all.
fn share_inputs(tasks: &[Task<'_>]) -> bool {
    let input = |t: &Task<'_>| match (t.sig.inputs.len(), t.sig.inputs.get("inputs")) {
        (1, Some(info)) => Some(info.name.clone()),
        _ => None,
    };
    let first = tasks.first().and_then(input);
    first.is_some() && tasks.iter().all(|t| input(t) == first)
}

/// Runs several classify/regress tasks (signature name, API) over the same examples, the
/// results in the tasks' order. As TensorFlow Serving's MultiInference does, tasks whose
/// signatures read the same `inputs` tensor run in one session run fetching all their
/// outputs; otherwise each task runs alone.
pub fn run_example_tasks(
    servable: &Servable,
    tasks: &[(Option<&str>, ExampleApi)],
    examples: Vec<Vec<u8>>,
) -> Result<Vec<ExampleResult>, Status> {
    let tasks = tasks
        .iter()
        .map(|&(name, api)| Task::new(servable, name, api))
        .collect::<Result<Vec<_>, Status>>()?;
    let n = examples.len();
    let examples = examples_tensor(examples)?;
    let feeds = [("inputs", examples)];
    if !share_inputs(&tasks) {
        return tasks
            .iter()
            .map(|task| {
                let outs = servable
                    .model
                    .run_signature_outputs(task.key, &feeds, &task.outputs)
                    .map_err(Status::from)?;
                task.result(n, &outs)
            })
            .collect();
    }
    let mut fetches = Vec::new();
    for task in &tasks {
        fetches.extend(task.output_infos()?);
    }
    let mut outs = servable
        .model
        .run_signature_fetching(tasks[0].key, &feeds, &fetches)
        .map_err(Status::from)?
        .into_iter();
    tasks
        .iter()
        .map(|task| {
            let own: Vec<Tensor> = outs.by_ref().take(task.outputs.len()).collect();
            task.result(n, &own)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::SessionOptions;
    use std::path::Path;

    fn example_x(x: f32) -> Vec<u8> {
        let mut context = BTreeMap::new();
        context.insert(
            "x".to_string(),
            tf::Feature {
                kind: Some(tf::feature::Kind::FloatList(tf::FloatList {
                    value: vec![x],
                })),
            },
        );
        with_context(&context, BTreeMap::new())
    }

    #[test]
    fn tasks_sharing_inputs_run_together_and_match_separate_runs() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("graphs/tf_serving/saved_model_half_plus_two_cpu/00000123");
        let servable = Servable::load(&dir, 1, SessionOptions::default()).unwrap();
        let examples = vec![example_x(1.0), example_x(5.0), example_x(-2.0)];
        let tasks = [
            (Some("regress_x_to_y"), ExampleApi::Regress),
            (Some("classify_x_to_y"), ExampleApi::Classify),
            (Some("regress_x_to_y2"), ExampleApi::Regress),
        ];
        let shared = |tasks: &[(Option<&'static str>, ExampleApi)]| {
            let checked: Vec<Task<'_>> = tasks
                .iter()
                .map(|&(s, api)| Task::new(&servable, s, api).unwrap())
                .collect();
            share_inputs(&checked)
        };
        assert!(shared(&tasks), "all three read tf_example:0");
        let together = run_example_tasks(&servable, &tasks, examples.clone()).unwrap();
        let separate: Vec<ExampleResult> = tasks
            .iter()
            .map(|&(s, api)| {
                let request = ExamplesRequest {
                    signature_name: s.map(str::to_string),
                    examples: examples.clone(),
                };
                run_examples(&servable, api, request).unwrap()
            })
            .collect();
        assert_eq!(together, separate);
        // y = x / 2 + 2, y2 = x / 2 + 3 (hand values).
        assert_eq!(together[2], ExampleResult::Regressions(vec![3.5, 5.5, 2.0]));
        // regress_x2_to_y3 reads a float x2, not the examples: not shared, run alone, and
        // its error is the one a separate run gives.
        let mixed = [
            (Some("regress_x_to_y"), ExampleApi::Regress),
            (Some("regress_x2_to_y3"), ExampleApi::Regress),
        ];
        assert!(!shared(&mixed));
        let alone = run_examples(
            &servable,
            ExampleApi::Regress,
            ExamplesRequest {
                signature_name: Some("regress_x2_to_y3".into()),
                examples: examples.clone(),
            },
        )
        .unwrap_err();
        let err = run_example_tasks(&servable, &mixed, examples).unwrap_err();
        assert_eq!(err.to_string(), alone.to_string());
    }
}

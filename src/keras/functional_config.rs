//! A functional model's config in Keras 3's JSON (`class_name` `Functional`): each
//! layer with its `inbound_nodes` (one per call, naming the tensors it was called on by
//! `keras_history` `[layer, call, tensor]`), and the model's `input_layers` and
//! `output_layers`; written by [`Model::to_json`], read by [`functional_from_json`].

use crate::keras::config::{
    layer_json, loss_from_json, loss_json, metrics_from_json, model_config, shape_from_json,
    shape_json,
};
use crate::keras::functional::{KerasTensor, LayerRef, Model, Origin, PerOutput};
use crate::keras::layer::{base_config, Layer};
use crate::keras::layers::{self, Input};
use crate::keras::losses::Loss;
use crate::keras::metrics::NamedMetric;
use crate::keras::optimizers::Optimizer;
use crate::keras::trainer::OutputSettings;
use crate::tensor::DType;
use crate::{Error, Result};
use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// The layer (or input) name, which call of it, and which of that call's tensors `t`
/// is: Keras's `keras_history`.
fn history_of(t: &KerasTensor, calls: &HashMap<*const (), usize>) -> (String, usize, usize) {
    match t.origin() {
        Origin::Input(name) => (name, 0, 0),
        Origin::Call(layer, _) => (
            layer.name(),
            calls.get(&t.id()).copied().unwrap_or(0),
            t.index(),
        ),
    }
}

/// `[name, call, tensor]` of a tensor.
fn history(t: &KerasTensor, calls: &HashMap<*const (), usize>) -> Value {
    let (name, call, tensor) = history_of(t, calls);
    json!([name, call, tensor])
}

fn tensor_json(t: &KerasTensor, calls: &HashMap<*const (), usize>) -> Value {
    json!({
        "class_name": "__keras_tensor__",
        "config": {
            "shape": shape_json(t.shape()),
            "dtype": t.dtype().name(),
            "keras_history": history(t, calls),
        }
    })
}

/// One tensor's history, or a list of them for several.
fn ends(ts: &[KerasTensor], calls: &HashMap<*const (), usize>) -> Value {
    match ts {
        [one] => history(one, calls),
        _ => Value::from(ts.iter().map(|t| history(t, calls)).collect::<Vec<_>>()),
    }
}

impl Model {
    /// Which call of its layer each call is (Keras's node index), by call.
    fn call_numbers(&self) -> HashMap<*const (), usize> {
        let mut calls: HashMap<*const (), usize> = HashMap::new();
        let mut count: HashMap<String, usize> = HashMap::new();
        for call in self.calls() {
            if let Origin::Call(layer, _) = call.origin() {
                let n = count.entry(layer.name()).or_insert(0);
                calls.insert(call.id(), *n);
                *n += 1;
            }
        }
        calls
    }

    /// What each layer's calls read, as Keras's summary lists it under "Connected to":
    /// `dense[0][0], input_b[0][0]` by layer name.
    pub(crate) fn connections(&self) -> HashMap<String, String> {
        let calls = self.call_numbers();
        let mut out: HashMap<String, Vec<String>> = HashMap::new();
        for call in self.calls() {
            if let Origin::Call(layer, inputs) = call.origin() {
                let names = inputs.iter().map(|x| {
                    let (name, call, tensor) = history_of(x, &calls);
                    format!("{name}[{call}][{tensor}]")
                });
                out.entry(layer.name()).or_default().extend(names);
            }
        }
        out.into_iter().map(|(k, v)| (k, v.join(", "))).collect()
    }

    /// The architecture as Keras 3's functional model config, which
    /// `keras.models.model_from_json` reads (weights are not part of it).
    pub fn to_json(&self) -> String {
        let calls = self.call_numbers();
        let mut inbound: HashMap<String, Vec<Value>> = HashMap::new();
        for call in self.calls() {
            let Origin::Call(layer, inputs) = call.origin() else {
                continue;
            };
            let args: Vec<Value> = inputs.iter().map(|x| tensor_json(x, &calls)).collect();
            let args = if args.len() == 1 {
                args
            } else {
                vec![Value::from(args)]
            };
            inbound
                .entry(layer.name())
                .or_default()
                .push(json!({"args": args, "kwargs": {}}));
        }
        let mut layers_json = Vec::new();
        for x in self.inputs() {
            let Origin::Input(name) = x.origin() else {
                continue;
            };
            let input = Input::from_batch_shape(x.shape(), &name).dtype(x.dtype());
            let cfg = Value::Object(input.get_config());
            layers_json.push(json!({
                "module": "keras.layers",
                "class_name": "InputLayer",
                "config": cfg,
                "registered_name": null,
                "name": name,
                "inbound_nodes": [],
            }));
        }
        for (layer, first_inputs) in self.layers_with_first_inputs() {
            let name = layer.name();
            let Ok(guard) = layer.lock_layer() else {
                continue;
            };
            let shapes: Vec<_> = first_inputs.iter().map(|t| t.shape().clone()).collect();
            let mut v = layer_json(guard.as_ref(), None);
            v["build_config"] = match shapes.as_slice() {
                [one] => json!({"input_shape": shape_json(one)}),
                _ => {
                    json!({"input_shape": shapes.iter().map(|s| shape_json(s)).collect::<Vec<_>>()})
                }
            };
            v["name"] = json!(name);
            v["inbound_nodes"] = Value::from(inbound.remove(&name).unwrap_or_default());
            layers_json.push(v);
        }
        let mut config = base_config(self.name());
        config.remove("dtype");
        config.insert("layers".into(), Value::from(layers_json));
        config.insert("input_layers".into(), ends(self.inputs(), &calls));
        config.insert("output_layers".into(), ends(self.outputs(), &calls));
        json!({
            "module": "keras.src.models.functional",
            "class_name": "Functional",
            "config": config,
            "registered_name": "Functional",
            "build_config": {"input_shape": null},
            "compile_config": self.compile_config(),
        })
        .to_string()
    }

    /// Keras's `compile_config`: the optimizer, and the loss, loss weights and metrics,
    /// each by output name for a model of several outputs; `{}` before `compile`.
    fn compile_config(&self) -> Value {
        let Some(c) = self.compiled() else {
            return json!({});
        };
        let outs = c.outputs();
        let (loss, weights, metrics) = match outs.as_slice() {
            [(_, loss, _, metrics)] => (loss_json(loss), Value::Null, json!(metrics)),
            _ => {
                let by_name = |f: &dyn Fn(&OutputSettings<'_>) -> Value| {
                    Value::Object(outs.iter().map(|o| (o.0.to_string(), f(o))).collect())
                };
                (
                    by_name(&|o| loss_json(o.1)),
                    by_name(&|o| json!(o.2)),
                    by_name(&|o| json!(o.3)),
                )
            }
        };
        json!({
            "optimizer": c.optimizer.to_config(),
            "loss": loss,
            "loss_weights": weights,
            "metrics": metrics,
            "weighted_metrics": null,
            "run_eagerly": false,
            "steps_per_execution": 1,
            "jit_compile": false
        })
    }
}

/// An entry of a `compile_config` given for all outputs, per output in a list, or per
/// output name in an object; `single` tells a value for all outputs from an object or
/// list of per-output values.
fn per_output<T>(
    v: &Value,
    single: fn(&Value) -> bool,
    read: impl Fn(&Value) -> Result<T>,
) -> Result<PerOutput<T>> {
    if single(v) {
        return Ok(PerOutput::All(read(v)?));
    }
    match v {
        Value::Array(items) => Ok(PerOutput::List(
            items.iter().map(&read).collect::<Result<_>>()?,
        )),
        Value::Object(m) => Ok(PerOutput::Named(
            m.iter()
                .map(|(k, x)| Ok((k.clone(), read(x)?)))
                .collect::<Result<_>>()?,
        )),
        _ => Ok(PerOutput::All(read(v)?)),
    }
}

/// Compiles `model` as its `compile_config` says (nothing when it has no loss).
fn compile_from_config(model: &mut Model, cc: &Value) -> Result<()> {
    let Some(loss) = cc.get("loss").filter(|l| !l.is_null()) else {
        return Ok(());
    };
    let optimizer = Optimizer::from_config(cc.get("optimizer").unwrap_or(&json!("rmsprop")))?;
    let losses = per_output(
        loss,
        |v| v.is_string() || v.get("class_name").is_some(),
        loss_from_json,
    )?;
    let weights = match cc.get("loss_weights").filter(|w| !w.is_null()) {
        None => PerOutput::All(1.0),
        Some(w) => per_output(w, Value::is_number, |x| {
            x.as_f64()
                .ok_or_else(|| Error::invalid(format!("model config: bad loss weight {x}")))
        })?,
    };
    let metrics = match cc.get("metrics").filter(|m| !m.is_null()) {
        None => PerOutput::All(Vec::new()),
        Some(m) => per_output(
            m,
            |v| v.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
            |x| metrics_from_json(Some(x)),
        )?,
    };
    model.compile_outputs::<Loss, NamedMetric>(optimizer, losses, weights, metrics)
}

/// A tensor named by its config: the layer (or input), which of its calls, and which of
/// the call's tensors.
type TensorRef = (String, usize, usize);

/// `[name, call, tensor]`.
fn parse_history(v: &Value) -> Result<TensorRef> {
    let h = v
        .get("config")
        .and_then(|c| c.get("keras_history"))
        .unwrap_or(v);
    match h.as_array().map(Vec::as_slice) {
        Some([name, call, index]) => Ok((
            name.as_str().unwrap_or_default().to_string(),
            call.as_u64().unwrap_or(0) as usize,
            index.as_u64().unwrap_or(0) as usize,
        )),
        _ => Err(Error::invalid(format!(
            "functional model config: bad tensor reference {v}"
        ))),
    }
}

/// The histories of `input_layers` / `output_layers`: one `[name, call, tensor]` or a list.
fn parse_ends(v: Option<&Value>, what: &str) -> Result<Vec<TensorRef>> {
    let v = v.ok_or_else(|| Error::invalid(format!("functional model config: no '{what}'")))?;
    match v.as_array() {
        Some(items) if items.first().is_some_and(Value::is_array) => {
            items.iter().map(parse_history).collect()
        }
        _ => Ok(vec![parse_history(v)?]),
    }
}

/// Rebuilds a functional model from Keras 3's config JSON (`keras.models.model_from_json`
/// of a `Functional`): layers, calls (shared layers called again), inputs and outputs,
/// compiled when the config has a `compile_config` with a loss. Weights are fresh.
pub fn functional_from_json(text: &str) -> Result<Model> {
    let v: Value = serde_json::from_str(text)
        .map_err(|e| Error::Parse(format!("model config is not valid JSON: {e}")))?;
    functional_from_config(&v)
}

/// [`functional_from_json`] of parsed JSON.
pub(crate) fn functional_from_config(v: &Value) -> Result<Model> {
    let (config, entries) = model_config(v, "Functional")?;
    let mut tensors: HashMap<TensorRef, KerasTensor> = HashMap::new();
    // Each layer, its calls' arguments, and how many calls are made.
    let mut pending: Vec<(LayerRef, Vec<Vec<TensorRef>>, usize)> = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let class = entry
            .get("class_name")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::invalid(format!("model config: layer {i} has no class_name")))?;
        let empty = Map::new();
        let cfg = entry
            .get("config")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let layer = layers::from_config(class, cfg)?;
        let name = entry
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or(layer.name())
            .to_string();
        if class == "InputLayer" {
            let shape = cfg
                .get("batch_shape")
                .and_then(shape_from_json)
                .ok_or_else(|| Error::invalid(format!("input '{name}' needs a batch_shape")))?;
            let dtype = layer.input_spec().map_or(DType::Float32, |s| s.1);
            tensors.insert(
                (name.clone(), 0, 0),
                Input::from_batch_shape(&shape, &name).dtype(dtype).tensor(),
            );
            continue;
        }
        let nodes = entry
            .get("inbound_nodes")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut calls = Vec::new();
        for node in &nodes {
            let args = node
                .get("args")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let refs = match args.as_slice() {
                [Value::Array(list)] => list.iter().map(parse_history).collect::<Result<_>>()?,
                _ => args.iter().map(parse_history).collect::<Result<_>>()?,
            };
            calls.push(refs);
        }
        pending.push((LayerRef::new(layer), calls, 0));
    }
    // Make each call once the tensors it reads exist.
    loop {
        let mut progress = false;
        for (layer, calls, done) in pending.iter_mut() {
            while *done < calls.len() {
                let args: Option<Vec<KerasTensor>> = calls[*done]
                    .iter()
                    .map(|k| tensors.get(k).cloned())
                    .collect();
                let Some(args) = args else { break };
                let refs: Vec<&KerasTensor> = args.iter().collect();
                for (i, out) in layer.call_outputs(&refs)?.into_iter().enumerate() {
                    tensors.insert((layer.name(), *done, i), out);
                }
                *done += 1;
                progress = true;
            }
        }
        if !progress {
            break;
        }
    }
    if let Some((layer, _, done)) = pending.iter().find(|(_, c, d)| d < &c.len()) {
        return Err(Error::invalid(format!(
            "functional model config: call {done} of layer '{}' reads tensors no layer makes",
            layer.name()
        )));
    }
    let lookup = |ends: Vec<TensorRef>| -> Result<Vec<KerasTensor>> {
        ends.into_iter()
            .map(|k| {
                tensors.get(&k).cloned().ok_or_else(|| {
                    Error::invalid(format!(
                        "functional model config: no tensor '{}' (call {}, output {})",
                        k.0, k.1, k.2
                    ))
                })
            })
            .collect()
    };
    let inputs = lookup(parse_ends(config.get("input_layers"), "input_layers")?)?;
    let outputs = lookup(parse_ends(config.get("output_layers"), "output_layers")?)?;
    let model = Model::new(&inputs, &outputs)?;
    let mut model = match config.get("name").and_then(Value::as_str) {
        Some(n) => model.named(n),
        None => model,
    };
    if let Some(cc) = v.get("compile_config") {
        compile_from_config(&mut model, cc)?;
    }
    Ok(model)
}

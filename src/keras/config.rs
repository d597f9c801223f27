//! The model config in Keras 3's JSON (`model.to_json()`, `keras.models.model_from_json`):
//! `{"module": "keras", "class_name": "Sequential", "config": {"layers": [...]}, ...}`.

use crate::keras::layer::{base_config, Layer, Shape};
use crate::keras::layers::{self, Input};
use crate::keras::losses::Loss;
use crate::keras::metrics::NamedMetric;
use crate::keras::optimizers::Optimizer;
use crate::keras::sequential::Sequential;
use crate::{Error, Result};
use serde_json::{json, Map, Value};

pub(crate) fn shape_json(shape: &[Option<usize>]) -> Value {
    Value::from(
        shape
            .iter()
            .map(|d| d.map_or(Value::Null, Value::from))
            .collect::<Vec<_>>(),
    )
}

pub(crate) fn shape_from_json(v: &Value) -> Option<Shape> {
    v.as_array()?
        .iter()
        .map(|d| {
            if d.is_null() {
                Some(None)
            } else {
                d.as_u64().map(|d| Some(d as usize))
            }
        })
        .collect()
}

/// One layer's serialized form.
pub(crate) fn layer_json(layer: &dyn Layer, input_shape: Option<&Shape>) -> Value {
    let mut v = json!({
        "module": "keras.layers",
        "class_name": layer.class_name(),
        "config": Value::Object(layer.get_config()),
        "registered_name": null,
    });
    if let Some(s) = input_shape {
        v["build_config"] = json!({"input_shape": shape_json(s)});
    }
    v
}

/// The `compile_config` Keras writes.
pub(crate) fn compile_json(optimizer: &Optimizer, loss: &Loss, metrics: &[NamedMetric]) -> Value {
    json!({
        "optimizer": optimizer.to_config(),
        "loss": loss_json(loss),
        "loss_weights": null,
        "metrics": metrics.iter().map(NamedMetric::to_json).collect::<Vec<_>>(),
        "weighted_metrics": null,
        "run_eagerly": false,
        "steps_per_execution": 1,
        "jit_compile": false
    })
}

/// A loss as Keras writes it in a `compile_config`: its name, or its class and config
/// when it has options off their defaults.
pub(crate) fn loss_json(loss: &Loss) -> Value {
    match loss {
        Loss::SparseCategoricalCrossentropy { from_logits: false }
        | Loss::CategoricalCrossentropy { from_logits: false }
        | Loss::BinaryCrossentropy { from_logits: false }
        | Loss::MeanSquaredError
        | Loss::MeanAbsoluteError => json!(loss.name()),
        Loss::Huber { delta } if *delta == 1.0 => json!(loss.name()),
        other => json!({
            "module": "keras.losses",
            "class_name": loss_class(other),
            "config": loss_config(other),
            "registered_name": null
        }),
    }
}

fn loss_class(loss: &Loss) -> &'static str {
    match loss {
        Loss::SparseCategoricalCrossentropy { .. } => "SparseCategoricalCrossentropy",
        Loss::CategoricalCrossentropy { .. } => "CategoricalCrossentropy",
        Loss::BinaryCrossentropy { .. } => "BinaryCrossentropy",
        Loss::MeanSquaredError => "MeanSquaredError",
        Loss::MeanAbsoluteError => "MeanAbsoluteError",
        Loss::Huber { .. } => "Huber",
    }
}

fn loss_config(loss: &Loss) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), json!(loss.name()));
    m.insert("reduction".into(), json!("sum_over_batch_size"));
    match loss {
        Loss::SparseCategoricalCrossentropy { from_logits }
        | Loss::CategoricalCrossentropy { from_logits }
        | Loss::BinaryCrossentropy { from_logits } => {
            m.insert("from_logits".into(), json!(from_logits));
        }
        Loss::Huber { delta } => {
            m.insert("delta".into(), json!(delta));
        }
        _ => {}
    }
    Value::Object(m)
}

/// A loss from a `compile_config` entry (a name or a class and config).
pub(crate) fn loss_from_json(v: &Value) -> Result<Loss> {
    if let Some(name) = v.as_str() {
        return Loss::get(name);
    }
    let class = v.get("class_name").and_then(Value::as_str).unwrap_or("");
    let cfg = v.get("config").cloned().unwrap_or(json!({}));
    let from_logits = cfg
        .get("from_logits")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Ok(match class {
        "SparseCategoricalCrossentropy" => Loss::SparseCategoricalCrossentropy { from_logits },
        "CategoricalCrossentropy" => Loss::CategoricalCrossentropy { from_logits },
        "BinaryCrossentropy" => Loss::BinaryCrossentropy { from_logits },
        "MeanSquaredError" => Loss::MeanSquaredError,
        "MeanAbsoluteError" => Loss::MeanAbsoluteError,
        "Huber" => Loss::Huber {
            delta: cfg.get("delta").and_then(Value::as_f64).unwrap_or(1.0),
        },
        _ => return Err(Error::invalid(format!("unknown loss in model config: {v}"))),
    })
}

impl Sequential {
    /// The architecture (and compile settings) as Keras 3's model-config JSON, which
    /// `keras.models.model_from_json` reads.
    pub fn to_json(&self) -> String {
        self.to_config().to_string()
    }

    pub(crate) fn to_config(&self) -> Value {
        let mut layers_json = Vec::new();
        let input_shape = self.input_shape();
        if let Some(shape) = &input_shape {
            let input = Input::from_batch_shape(shape, &self.input_name());
            let cfg = input.dtype(self.input_dtype()).get_config();
            layers_json.push(json!({
                "module": "keras.layers",
                "class_name": "InputLayer",
                "config": cfg,
                "registered_name": null
            }));
        }
        let mut shape = input_shape.clone();
        for (i, layer) in self.layers().iter().enumerate() {
            layers_json.push(layer_json(layer.as_ref(), shape.as_ref()));
            shape = self.layer_output_shape(i);
        }
        let mut config = base_config(self.name());
        config.insert("layers".into(), Value::from(layers_json));
        if let Some(s) = &input_shape {
            config.insert("build_input_shape".into(), shape_json(s));
        }
        let mut v = json!({
            "module": "keras",
            "class_name": "Sequential",
            "config": config,
            "registered_name": null,
        });
        if let Some(s) = &input_shape {
            v["build_config"] = json!({"input_shape": shape_json(s)});
        }
        v["compile_config"] = match self.compile_settings() {
            Some((o, l, m)) => compile_json(o, l, m),
            None => json!({}),
        };
        v
    }
}

/// Rebuilds a model from Keras 3's model-config JSON (`keras.models.model_from_json`):
/// the layers, built when the config has an input shape, and compiled when it has a
/// `compile_config`. Weights are fresh.
pub fn model_from_json(text: &str) -> Result<Sequential> {
    let v: Value = serde_json::from_str(text)
        .map_err(|e| Error::Parse(format!("model config is not valid JSON: {e}")))?;
    model_from_config(&v)
}

/// The `config` object and its `layers` list of a Keras model config of class `class`
/// (`{"class_name": class, "config": {"layers": [...], ...}}`), or an error saying which
/// part is missing.
pub(crate) fn model_config<'a>(
    v: &'a Value,
    class: &str,
) -> Result<(&'a Map<String, Value>, &'a Vec<Value>)> {
    let found = v.get("class_name").and_then(Value::as_str).unwrap_or("");
    if found != class {
        return Err(Error::invalid(format!(
            "model config: class_name '{found}' is not supported (expected '{class}')"
        )));
    }
    let config = v
        .get("config")
        .and_then(Value::as_object)
        .ok_or_else(|| Error::invalid("model config: 'config' must be an object"))?;
    let layers = config
        .get("layers")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::invalid("model config: 'config.layers' must be a list"))?;
    Ok((config, layers))
}

/// A `compile_config`'s list of metric names (none when absent or null).
pub(crate) fn metrics_from_json(v: Option<&Value>) -> Result<Vec<NamedMetric>> {
    let Some(ms) = v.filter(|v| !v.is_null()) else {
        return Ok(Vec::new());
    };
    ms.as_array()
        .ok_or_else(|| Error::invalid(format!("model config: metrics must be a list, got {ms}")))?
        .iter()
        .map(NamedMetric::from_json)
        .collect()
}

pub(crate) fn model_from_config(v: &Value) -> Result<Sequential> {
    let (config, entries) = model_config(v, "Sequential")?;
    let mut built: Vec<Box<dyn Layer>> = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let class = entry
            .get("class_name")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::invalid(format!("model config: layer {i} has no class_name")))?;
        let cfg = entry
            .get("config")
            .and_then(Value::as_object)
            .ok_or_else(|| Error::invalid(format!("model config: layer {i} has no config")))?;
        built.push(layers::from_config(class, cfg)?);
    }
    let mut model = Sequential::new(built)?;
    if let Some(name) = config.get("name").and_then(Value::as_str) {
        model = model.named(name);
    }
    if !model.built() {
        if let Some(shape) = config.get("build_input_shape").and_then(shape_from_json) {
            model.build(&shape)?;
        }
    }
    if let Some(cc) = v.get("compile_config").filter(|c| c.get("loss").is_some()) {
        let optimizer = Optimizer::from_config(cc.get("optimizer").unwrap_or(&json!("rmsprop")))?;
        let loss = loss_from_json(&cc["loss"])?;
        let metrics = metrics_from_json(cc.get("metrics"))?;
        model.compile(optimizer, loss, metrics)?;
    }
    Ok(model)
}

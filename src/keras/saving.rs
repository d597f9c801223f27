//! `model.save(dir)` and `load_model(dir)`: a TensorFlow 1 SavedModel whose
//! `serving_default` signature runs the forward pass (input named after the input layer,
//! output `output_0`), plus the Keras model config in `keras_model.json` beside it, so
//! that the runner and TensorFlow load the model as it is, and `load_model` gives back a
//! model that predicts, evaluates and resumes training with the optimizer's state.

use crate::graph::Output;
use crate::keras::config::model_from_config;
use crate::keras::functional::Model;
use crate::keras::functional_config::functional_from_config;
use crate::keras::network::Network;
use crate::keras::sequential::Sequential;
use crate::saved_model::{self, BundleReader, Signature, DEFAULT_SIGNATURE, SERVE_TAG};
use crate::{Error, Result};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

/// The file beside the SavedModel that holds the Keras model config.
pub const CONFIG_FILE: &str = "keras_model.json";

/// Key of the forward pass's output in the serving signature, as Keras exports it.
pub const OUTPUT_KEY: &str = "output_0";

impl Sequential {
    /// Saves the model in `dir` (replaced if it exists): a SavedModel whose
    /// `serving_default` signature maps the input layer's name to `output_0`, with every
    /// variable (optimizer state included), and the model config (`keras_model.json`).
    pub fn save(&self, dir: impl AsRef<Path>) -> Result<()> {
        let net = self.network()?;
        save_bundle(
            net,
            &[(net.input_name.as_str(), net.input)],
            &[(OUTPUT_KEY, net.output)],
            dir.as_ref(),
            &self.to_json(),
        )
    }
}

impl Model {
    /// Saves the model in `dir` (replaced if it exists): a SavedModel whose
    /// `serving_default` signature maps each input's name to `output_0`, `output_1`, …,
    /// with every variable (optimizer state included), and the Functional model config
    /// with its compile settings (`keras_model.json`).
    pub fn save(&self, dir: impl AsRef<Path>) -> Result<()> {
        let (names, placeholders, outputs) = self.serving_ends();
        let ins: Vec<(&str, Output)> = names
            .iter()
            .map(String::as_str)
            .zip(placeholders.iter().copied())
            .collect();
        let keys: Vec<String> = (0..outputs.len()).map(|i| format!("output_{i}")).collect();
        let outs: Vec<(&str, Output)> = keys
            .iter()
            .map(String::as_str)
            .zip(outputs.iter().copied())
            .collect();
        save_bundle(self.network(), &ins, &outs, dir.as_ref(), &self.to_json())
    }
}

/// Writes `net` as a SavedModel in `dir` signing `ins` → `outs`, and `config` beside it.
fn save_bundle(
    net: &Network,
    ins: &[(&str, Output)],
    outs: &[(&str, Output)],
    dir: &Path,
    config: &str,
) -> Result<()> {
    let signature = Signature::predict(&net.graph, ins, outs);
    let signatures = BTreeMap::from([(DEFAULT_SIGNATURE.to_string(), signature)]);
    saved_model::save(&net.session, &net.graph, dir, &[SERVE_TAG], &signatures)?;
    write_config(dir, config)
}

/// Writes the model config beside a SavedModel in `dir` (atomically).
fn write_config(dir: &Path, text: &str) -> Result<()> {
    let io = |e: std::io::Error| Error::Io(format!("{}: {e}", dir.join(CONFIG_FILE).display()));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    tmp.write_all(text.as_bytes()).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(dir.join(CONFIG_FILE))
        .map_err(|e| io(e.error))?;
    Ok(())
}

/// A model class [`load_model`] can give back: [`Sequential`] or the functional
/// [`Model`], each rebuilt from its config, compiled as it was, with every variable
/// (optimizer state included) restored.
pub trait Loadable: Sized {
    /// Keras's class name of the model config this type reads.
    const CLASS: &'static str;
    /// Rebuilds the model from `config` and restores its variables from `reader`.
    fn load(config: &serde_json::Value, reader: &BundleReader) -> Result<Self>;
}

impl Loadable for Sequential {
    const CLASS: &'static str = "Sequential";
    fn load(config: &serde_json::Value, reader: &BundleReader) -> Result<Self> {
        let mut model = model_from_config(config)?;
        model.restore(reader)?;
        Ok(model)
    }
}

impl Loadable for Model {
    const CLASS: &'static str = "Functional";
    fn load(config: &serde_json::Value, reader: &BundleReader) -> Result<Self> {
        let mut model = functional_from_config(config)?;
        model.restore(reader)?;
        Ok(model)
    }
}

/// Loads a model written by `save` (`keras.models.load_model`) as the class its config
/// names (`let m: Sequential = load_model(dir)?;` or `let m: Model = ...`): rebuilt from
/// its config, compiled as it was, with every variable restored. Asking for the other
/// class is an error naming the one saved.
pub fn load_model<M: Loadable>(dir: impl AsRef<Path>) -> Result<M> {
    let dir = dir.as_ref();
    let path = dir.join(CONFIG_FILE);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Error::Io(format!("{}: {e}", path.display())))?;
    let config: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::Parse(format!("{}: not valid JSON: {e}", path.display())))?;
    let class = config
        .get("class_name")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("");
    if class != M::CLASS {
        let want = if class == "Functional" {
            "a functional `Model`"
        } else {
            "a `Sequential`"
        };
        return Err(Error::invalid(format!(
            "{} holds a '{class}' model (load it as {want}), not a '{}'",
            path.display(),
            M::CLASS
        )));
    }
    let reader = BundleReader::open(&saved_model::variables_prefix(dir))?;
    M::load(&config, &reader)
}

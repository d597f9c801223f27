//! `model.save(dir)` and `load_model(dir)`: a TensorFlow 1 SavedModel whose
//! `serving_default` signature runs the forward pass (input named after the input layer,
//! output `output_0`), plus the Keras model config in `keras_model.json` beside it, so
//! that the runner and TensorFlow load the model as it is, and `load_model` gives back a
//! model that predicts, evaluates and resumes training with the optimizer's state.

use crate::keras::config::model_from_config;
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
        let dir = dir.as_ref();
        let net = self.network()?;
        let signature = Signature::predict(
            &net.graph,
            &[(net.input_name.as_str(), net.input)],
            &[(OUTPUT_KEY, net.output)],
        );
        let signatures = BTreeMap::from([(DEFAULT_SIGNATURE.to_string(), signature)]);
        saved_model::save(&net.session, &net.graph, dir, &[SERVE_TAG], &signatures)?;
        let io = |e: std::io::Error| Error::Io(format!("{}: {e}", dir.join(CONFIG_FILE).display()));
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
        tmp.write_all(self.to_json().as_bytes()).map_err(io)?;
        tmp.as_file().sync_all().map_err(io)?;
        tmp.persist(dir.join(CONFIG_FILE))
            .map_err(|e| io(e.error))?;
        Ok(())
    }
}

/// Loads a model written by [`Sequential::save`] (`keras.models.load_model`): rebuilt
/// from its config, compiled as it was, with every variable restored.
pub fn load_model(dir: impl AsRef<Path>) -> Result<Sequential> {
    let dir = dir.as_ref();
    let path = dir.join(CONFIG_FILE);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Error::Io(format!("{}: {e}", path.display())))?;
    let config: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::Parse(format!("{}: not valid JSON: {e}", path.display())))?;
    let mut model = model_from_config(&config)?;
    let reader = BundleReader::open(&saved_model::variables_prefix(dir))?;
    model.restore(&reader)?;
    Ok(model)
}

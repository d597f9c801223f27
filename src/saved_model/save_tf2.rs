//! Writing a TensorFlow 2 SavedModel back after fine-tuning it: the model's functions,
//! signatures and object graph (`saved_model.pb`) and its assets are kept as they were,
//! and the checkpoint is rewritten with every tensor of the original one, each model
//! variable's value replaced by the session's. TensorFlow's `tf.saved_model.load` (and
//! rustflow's [`load`](super::load)) then compute with the new values, as a TensorFlow
//! user's `tf.saved_model.save` after training would.
//!
//! `fingerprint.pb` is not copied: it hashes the old checkpoint, and TensorFlow loads a
//! SavedModel without one (it only reads it for metrics).

use super::bundle::{write_bundle, BundleReader};
use super::save::write_dir_atomically;
use super::{variables_prefix, LoadedModel};
use crate::{Error, Result};
use std::collections::BTreeMap;
use std::path::Path;

impl LoadedModel {
    /// Saves this TensorFlow 2 model, with its variables' current values, as a SavedModel
    /// in `dir` (replaced only once the new model is completely written). The graph
    /// nodes added since loading (a loss, an optimizer) are not saved: the model's own
    /// functions are.
    ///
    /// Errors for a model without a TensorFlow 2 object graph (save a TensorFlow 1 model
    /// with [`save`](super::save)), when `dir` is the directory it was loaded from, and
    /// when a variable has no value.
    pub fn save_tf2(&self, dir: impl AsRef<Path>) -> Result<()> {
        let dir = dir.as_ref();
        let source = &self.source;
        if self.variables.is_empty() {
            return Err(Error::invalid(format!(
                "{}: not a TensorFlow 2 model with resource variables; save a TensorFlow 1 \
                 model with saved_model::save",
                source.display()
            )));
        }
        if same_dir(source, dir) {
            return Err(Error::invalid(format!(
                "{}: saving a model over the directory it was loaded from; save it elsewhere",
                dir.display()
            )));
        }
        let reader = BundleReader::open(&variables_prefix(source))?;
        let mut tensors = BTreeMap::new();
        for name in reader.names() {
            tensors.insert(name.to_string(), reader.read(name)?);
        }
        for v in &self.variables {
            let node = self.graph.node(v.handle.node);
            let value = self
                .session
                .resources()
                .variable_for(node)
                .read()
                .map_err(|e| {
                    Error::FailedPrecondition(format!(
                        "cannot save variable '{}' (checkpoint key '{}'): {e}",
                        node.name(),
                        v.key
                    ))
                })?;
            tensors.insert(v.key.clone(), self.session.to_host(&value)?);
        }
        let io = |p: &Path, e: std::io::Error| Error::Io(format!("{}: {e}", p.display()));
        write_dir_atomically(dir, |tmp| {
            let pb = source.join("saved_model.pb");
            std::fs::copy(&pb, tmp.join("saved_model.pb")).map_err(|e| io(&pb, e))?;
            for extra in ["assets", "assets.extra"] {
                let from = source.join(extra);
                if from.is_dir() {
                    copy_dir(&from, &tmp.join(extra))?;
                }
            }
            let vars = tmp.join("variables");
            std::fs::create_dir(&vars).map_err(|e| io(&vars, e))?;
            write_bundle(&variables_prefix(tmp), &tensors)
        })
    }
}

/// Whether `a` and `b` name one existing directory.
fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Copies the directory tree `from` to `to` (which must not exist).
fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    let io = |p: &Path, e: std::io::Error| Error::Io(format!("{}: {e}", p.display()));
    std::fs::create_dir(to).map_err(|e| io(to, e))?;
    for entry in std::fs::read_dir(from).map_err(|e| io(from, e))? {
        let entry = entry.map_err(|e| io(from, e))?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if entry.file_type().map_err(|e| io(&src, e))?.is_dir() {
            copy_dir(&src, &dst)?;
        } else {
            std::fs::copy(&src, &dst).map_err(|e| io(&src, e))?;
        }
    }
    Ok(())
}

//! The served model: one loaded SavedModel version ([`Servable`]) and the versions of a
//! model base path ([`Model`]) with TensorFlow Serving's default version policy (the
//! highest version is served) and hot swapping of a newer version.

use super::sharded::Sharded;
use super::status::Status;
use crate::proto::tf;
use crate::proto::tf::error::Code;
use crate::saved_model::{self, LoadedModel, DEFAULT_SIGNATURE, SERVE_TAG};
use crate::session::{Callable, SessionOptions};
use crate::tensor::Tensor;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

/// One loaded version of a model: its session, and its signatures as written.
pub struct Servable {
    /// The version number (the folder name; 1 for a lone SavedModel directory).
    pub version: i64,
    /// The loaded model (session, graph, signatures).
    pub model: LoadedModel,
    /// The `serve` MetaGraphDef's signature map as written (for metadata answers).
    pub signature_defs: BTreeMap<String, tf::SignatureDef>,
    /// Each signature that plans, ready to run with all its outputs, by key.
    prepared: BTreeMap<String, Prepared>,
}

/// A signature made ready at load: its plan, so that a request that feeds its inputs and
/// fetches all its outputs runs without looking up tensor names or the plan.
struct Prepared {
    callable: Callable,
    /// The input keys in the callable's feed order (the signature's).
    inputs: Vec<String>,
    /// The output keys in the callable's fetch order (the signature's).
    outputs: Vec<String>,
}

impl Prepared {
    /// The callable for a signature's inputs and outputs, in key order.
    fn new(model: &LoadedModel, sig: &saved_model::Signature) -> crate::Result<Prepared> {
        let by_name = |infos: &BTreeMap<String, saved_model::TensorInfo>| {
            infos
                .values()
                .map(|i| model.graph.output_by_name(&i.name))
                .collect::<crate::Result<Vec<_>>>()
        };
        Ok(Prepared {
            callable: model.session.make_callable(
                &by_name(&sig.inputs)?,
                &by_name(&sig.outputs)?,
                &[],
            )?,
            inputs: sig.inputs.keys().cloned().collect(),
            outputs: sig.outputs.keys().cloned().collect(),
        })
    }
}

impl std::fmt::Debug for Servable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Servable")
            .field("version", &self.version)
            .field("model", &self.model)
            .finish()
    }
}

impl Servable {
    /// The signature a request names (`serving_default` when it names none), with its key;
    /// TensorFlow Serving's error when the model has no such signature.
    pub fn signature<'a>(
        &'a self,
        name: Option<&'a str>,
    ) -> Result<(&'a str, &'a saved_model::Signature), Status> {
        let key = name.filter(|k| !k.is_empty()).unwrap_or(DEFAULT_SIGNATURE);
        let sig = self.model.signature(key).map_err(|_| {
            Status::invalid(format!(
                "Serving signature name: \"{key}\" not found in signature def"
            ))
        })?;
        Ok((key, sig))
    }

    /// Loads the `serve` MetaGraphDef of a SavedModel directory.
    pub fn load(dir: &Path, version: i64, options: SessionOptions) -> crate::Result<Servable> {
        let model = saved_model::load(dir, &[SERVE_TAG], options)?;
        let proto = saved_model::read_saved_model(dir)?;
        let signature_defs = proto
            .meta_graphs
            .into_iter()
            .find(|m| {
                m.meta_info_def
                    .as_ref()
                    .is_some_and(|i| i.tags == [SERVE_TAG])
            })
            .map(|m| m.signature_def)
            .unwrap_or_default();
        // A signature that does not plan is left to `run_signature_outputs`, which says why
        // when it is asked for.
        let prepared = model
            .signatures
            .iter()
            .filter_map(|(k, sig)| Some((k.clone(), Prepared::new(&model, sig).ok()?)))
            .collect();
        Ok(Servable {
            version,
            model,
            signature_defs,
            prepared,
        })
    }

    /// Runs a signature (`serving_default` when `signature` is empty): every output, or the
    /// ones in `output_filter`, by key.
    pub fn predict(
        &self,
        signature: &str,
        inputs: Vec<(String, Tensor)>,
        output_filter: &[String],
    ) -> Result<Vec<(String, Tensor)>, Status> {
        self.predict_then(signature, inputs, output_filter, |keys, values| {
            keys.iter().cloned().zip(values).collect()
        })
    }

    /// [`Servable::predict`], its outputs' keys and values handed to `answer` side by
    /// side rather than collected: a prepared signature's run makes no list of its own.
    pub fn predict_then<R>(
        &self,
        signature: &str,
        inputs: Vec<(String, Tensor)>,
        output_filter: &[String],
        answer: impl FnOnce(&[String], Vec<Tensor>) -> R,
    ) -> Result<R, Status> {
        let key = if signature.is_empty() {
            DEFAULT_SIGNATURE
        } else {
            signature
        };
        if let Some(feeds) = self.prepared_feeds(key, &inputs, output_filter) {
            let p = &self.prepared[key];
            let values = self.model.session.run_callable(&p.callable, feeds)?;
            return Ok(answer(&p.outputs, values));
        }
        let sig = self.model.signature(key).map_err(Status::from)?;
        let keys: Vec<String> = if output_filter.is_empty() {
            sig.outputs.keys().cloned().collect()
        } else {
            output_filter.to_vec()
        };
        let inputs: Vec<(&str, Tensor)> = inputs
            .iter()
            .map(|(k, t)| (k.as_str(), t.clone()))
            .collect();
        let names: Vec<&str> = keys.iter().map(String::as_str).collect();
        let values = self.model.run_signature_outputs(key, &inputs, &names)?;
        Ok(answer(&keys, values))
    }

    /// [`Servable::predict_then`] of the default signature, all outputs, fed `input` as
    /// its one input: when the signature is prepared and `input` fits it, without a list
    /// of inputs by key. A default signature of more (or fewer) inputs is an error.
    pub fn predict_sole<R>(
        &self,
        input: Tensor,
        answer: impl FnOnce(&[String], Vec<Tensor>) -> R,
    ) -> Result<R, Status> {
        let key = self.sole_input(None)?;
        let info = &self.model.signatures[DEFAULT_SIGNATURE].inputs[key];
        match self.prepared.get(DEFAULT_SIGNATURE) {
            Some(p) if fits(info, &input) => {
                let values = self.model.session.run_callable(&p.callable, vec![input])?;
                Ok(answer(&p.outputs, values))
            }
            _ => self.predict_then("", vec![(key.to_string(), input)], &[], answer),
        }
    }

    /// The key of the one input of the signature a request names (see
    /// [`Servable::signature`]); an error naming its inputs when it has more or fewer.
    pub fn sole_input<'a>(&'a self, signature: Option<&'a str>) -> Result<&'a str, Status> {
        let (key, sig) = self.signature(signature)?;
        let mut keys = sig.inputs.keys();
        match (keys.next(), keys.next()) {
            (Some(k), None) => Ok(k),
            _ => Err(Status::invalid(format!(
                "signature '{key}' has {} inputs ({}): name each input",
                sig.inputs.len(),
                sig.inputs.keys().cloned().collect::<Vec<_>>().join(", ")
            ))),
        }
    }

    /// The feeds of the prepared signature `key` in its order, when the request fetches
    /// every output and feeds each input once with the dtype and a shape the signature
    /// allows; `None` leaves the request to `run_signature_outputs`, which checks it and
    /// words what is wrong.
    fn prepared_feeds(
        &self,
        key: &str,
        inputs: &[(String, Tensor)],
        output_filter: &[String],
    ) -> Option<Vec<Tensor>> {
        let p = self
            .prepared
            .get(key)
            .filter(|_| output_filter.is_empty())?;
        let sig = self.model.signatures.get(key)?;
        if inputs.len() != p.inputs.len() {
            return None;
        }
        p.inputs
            .iter()
            .map(|k| {
                let info = &sig.inputs[k];
                let mut fed = inputs.iter().filter(|(i, _)| i == k);
                match (fed.next(), fed.next()) {
                    (Some((_, t)), None) if fits(info, t) => Some(t.clone()),
                    _ => None,
                }
            })
            .collect()
    }
}

/// Whether `t` has the dtype of a signature's input and a shape it allows.
fn fits(info: &saved_model::TensorInfo, t: &Tensor) -> bool {
    info.dtype() == Some(t.dtype()) && info.shape.is_compatible_with(t.shape())
}

/// The state of one version, as `GetModelStatus` reports it.
#[derive(Clone, Debug, PartialEq)]
pub struct VersionStatus {
    /// `LOADING`, `AVAILABLE`, `END` (unloaded or failed to load).
    pub state: tf::serving::model_version_status::State,
    /// `OK`, or why it failed to load.
    pub error: Option<Status>,
}

/// A model: a SavedModel directory, or a base path of numeric version folders of which the
/// highest loadable one is served.
pub struct Model {
    /// The name clients use (`/v1/models/NAME`).
    pub name: String,
    base: PathBuf,
    versioned: bool,
    options: SessionOptions,
    state: RwLock<State>,
    /// Each thread's copy of `state.serving` (see [`Model::serving`]), emptied when a
    /// version is swapped in.
    local: Sharded<Option<Arc<Servable>>>,
}

#[derive(Default)]
struct State {
    serving: Option<Arc<Servable>>,
    statuses: BTreeMap<i64, VersionStatus>,
    /// Versions that failed to load, with the stamp of their `saved_model.pb` then: they
    /// are tried again only once that file changes.
    failed: BTreeMap<i64, Option<(SystemTime, u64)>>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("name", &self.name)
            .field("base", &self.base)
            .finish()
    }
}

/// What [`Model::poll`] did.
#[derive(Debug, PartialEq)]
pub enum PollOutcome {
    /// Nothing new.
    Unchanged,
    /// A version was loaded and now serves; the one before, if any, was unloaded.
    Swapped {
        /// The version now served.
        version: i64,
        /// The version it replaced.
        previous: Option<i64>,
    },
    /// A newer version failed to load; the one before keeps serving.
    Failed {
        /// The version that failed.
        version: i64,
        /// Why.
        error: String,
    },
}

fn stamp(dir: &Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(dir.join("saved_model.pb")).ok()?;
    Some((m.modified().ok()?, m.len()))
}

impl Model {
    /// A model named `name` at `base`: a SavedModel directory (served as version 1) or a
    /// directory of numeric version folders. Nothing is loaded until [`Model::poll`].
    pub fn new(name: &str, base: &Path, options: SessionOptions) -> Result<Model, String> {
        if !base.is_dir() {
            return Err(format!(
                "{}: no such SavedModel directory or model base path",
                base.display()
            ));
        }
        let versioned = !base.join("saved_model.pb").exists();
        Ok(Model {
            name: name.to_string(),
            base: base.to_path_buf(),
            versioned,
            options,
            state: RwLock::new(State::default()),
            local: Sharded::default(),
        })
    }

    /// The version folders there are now, by number.
    fn versions_on_disk(&self) -> BTreeMap<i64, PathBuf> {
        if !self.versioned {
            return BTreeMap::from([(1, self.base.clone())]);
        }
        let Ok(entries) = std::fs::read_dir(&self.base) else {
            return BTreeMap::new();
        };
        entries
            .flatten()
            .filter(|e| e.path().is_dir())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let v: i64 = name.parse().ok().filter(|v| *v >= 0)?;
                Some((v, e.path()))
            })
            .collect()
    }

    /// Looks for a newer version and loads it (blocking; call it off the request path).
    /// A version that fails to load is reported and leaves the served one in place.
    pub fn poll(&self) -> PollOutcome {
        let current = self.serving().map(|s| s.version);
        let candidate = {
            let st = self.state.read().unwrap();
            self.versions_on_disk()
                .into_iter()
                .rev()
                .take_while(|(v, _)| Some(*v) > current)
                .find(|(v, dir)| st.failed.get(v).is_none_or(|s| *s != stamp(dir)))
        };
        let Some((version, dir)) = candidate else {
            return PollOutcome::Unchanged;
        };
        self.set_status(
            version,
            tf::serving::model_version_status::State::Loading,
            None,
        );
        let before = stamp(&dir);
        match Servable::load(&dir, version, self.options.clone()) {
            Ok(s) => {
                let previous = {
                    let mut st = self.state.write().unwrap();
                    let previous = st.serving.replace(Arc::new(s)).map(|p| p.version);
                    st.failed.remove(&version);
                    let available = tf::serving::model_version_status::State::Available;
                    st.statuses.insert(
                        version,
                        VersionStatus {
                            state: available,
                            error: None,
                        },
                    );
                    if let Some(p) = previous {
                        st.statuses.insert(
                            p,
                            VersionStatus {
                                state: tf::serving::model_version_status::State::End,
                                error: None,
                            },
                        );
                    }
                    previous
                };
                // After the swap, so that a thread filling its copy (under its slot's lock)
                // is either emptied here or reads the new version.
                self.local.for_each_mut(|copy| *copy = None);
                PollOutcome::Swapped { version, previous }
            }
            Err(e) => {
                let error = format!("{}: {e}", dir.display()).replace('\n', " ");
                let mut st = self.state.write().unwrap();
                st.failed.insert(version, before);
                st.statuses.insert(
                    version,
                    VersionStatus {
                        state: tf::serving::model_version_status::State::End,
                        error: Some(Status::new(Code::Unknown, error.clone())),
                    },
                );
                PollOutcome::Failed { version, error }
            }
        }
    }

    fn set_status(
        &self,
        version: i64,
        state: tf::serving::model_version_status::State,
        error: Option<Status>,
    ) {
        let mut st = self.state.write().unwrap();
        st.statuses.insert(version, VersionStatus { state, error });
    }

    /// The version being served, if one has loaded. Read from this thread's copy, so that
    /// requests on different cores do not all take the state's lock (its lock word is
    /// written by every reader).
    pub fn serving(&self) -> Option<Arc<Servable>> {
        let mut copy = self.local.local();
        if copy.is_none() {
            copy.clone_from(&self.state.read().unwrap().serving);
        }
        copy.clone()
    }

    /// The servable a request for `version` (or the served one, for `None`) runs on.
    pub fn get(&self, version: Option<i64>) -> Result<Arc<Servable>, Status> {
        let serving = self.serving();
        match (serving, version) {
            (Some(s), None) => Ok(s),
            (Some(s), Some(v)) if s.version == v => Ok(s),
            (_, Some(v)) => Err(Status::not_found(format!(
                "Servable not found for request: Specific({}, {v})",
                self.name
            ))),
            (None, None) => Err(Status::not_found(format!(
                "Servable not found for request: Latest({})",
                self.name
            ))),
        }
    }

    /// Every version's status (or one version's), as `GetModelStatus` answers.
    pub fn statuses(&self, version: Option<i64>) -> Result<Vec<(i64, VersionStatus)>, Status> {
        let st = self.state.read().unwrap();
        match version {
            None => Ok(st
                .statuses
                .iter()
                .rev()
                .map(|(v, s)| (*v, s.clone()))
                .collect()),
            Some(v) => st
                .statuses
                .get(&v)
                .map(|s| vec![(v, s.clone())])
                .ok_or_else(|| {
                    Status::not_found(format!("Could not find version {v} of model {}", self.name))
                }),
        }
    }

    /// Whether this model's name is `name`; the error is TensorFlow Serving's.
    pub fn check_name(&self, name: &str) -> Result<(), Status> {
        if name == self.name {
            Ok(())
        } else {
            Err(Status::not_found(format!(
                "Could not find any versions of model {name}"
            )))
        }
    }
}

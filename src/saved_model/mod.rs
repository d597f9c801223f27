//! SavedModels: [`load`] a model written by TensorFlow 1 or 2 / Keras 3 (or by [`save`])
//! and run its signatures; [`save`] a session's graph and variables so that TensorFlow's
//! loaders (`tf.compat.v1.saved_model.loader.load`, TF Serving) restore it;
//! [`LoadedModel::save_tf2`] a fine-tuned TensorFlow 2 model back with its new variable
//! values (`tf.saved_model.load` reads it).
//!
//! Layout: `saved_model.pb` (a `SavedModel` proto), `variables/variables.index` and
//! `variables/variables.data-00000-of-00001` (a tensor bundle), optional `assets/`.
//!
//! TensorFlow 2 models keep their computation in the graph's function library: loading
//! inlines the function calls the signatures need (see [`crate::proto::inline_functions`])
//! and restores the resource variables from the checkpoint by their object-graph keys.

mod bundle;
mod object_graph;
mod save;
mod save_tf2;
mod sstable;

pub use crate::crc::{crc32c, mask as mask_crc, unmask as unmask_crc};
pub use bundle::{write_bundle, BundleReader};
pub use save::save;

use crate::graph::{Graph, NodeId, Output, VariableHandle};
use crate::proto::{self, tf, unsupported};
use crate::session::{Session, SessionOptions};
use crate::tensor::{DType, PartialShape, Tensor};
use crate::{Error, Result};
use prost::Message;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// The standard tag of serving graphs.
pub const SERVE_TAG: &str = "serve";
/// The default signature key.
pub const DEFAULT_SIGNATURE: &str = "serving_default";
/// TensorFlow's `predict` method name.
pub const PREDICT_METHOD: &str = "tensorflow/serving/predict";

/// One tensor of a signature.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorInfo {
    /// The graph tensor (`x:0`).
    pub name: String,
    /// TensorFlow `DataType` (reference types such as `DT_FLOAT_REF` as written).
    pub tf_dtype: i32,
    /// The declared shape.
    pub shape: PartialShape,
}

impl TensorInfo {
    /// A tensor of a graph, described by its inferred dtype and shape.
    pub fn of(graph: &Graph, o: Output) -> TensorInfo {
        TensorInfo {
            name: graph.output_name(o),
            tf_dtype: unsupported::tf_output_dtype(graph, o),
            shape: graph.shape(o).clone(),
        }
    }

    /// The dtype, when rustflow supports it (reference types map to their base type).
    pub fn dtype(&self) -> Option<DType> {
        DType::from_tf_enum(self.tf_dtype)
    }

    fn from_proto(p: &tf::TensorInfo) -> Result<TensorInfo> {
        let name = match &p.encoding {
            Some(tf::tensor_info::Encoding::Name(n)) => n.clone(),
            Some(tf::tensor_info::Encoding::CooSparse(_)) => {
                return Err(Error::invalid("sparse signature tensors are not supported"))
            }
            Some(tf::tensor_info::Encoding::CompositeTensor(_)) => {
                return Err(Error::invalid(
                    "composite signature tensors are not supported",
                ))
            }
            None => return Err(Error::invalid("a signature tensor has no name")),
        };
        let shape = match &p.tensor_shape {
            Some(s) => proto::shape_from_proto(s)?,
            None => PartialShape::unknown(),
        };
        Ok(TensorInfo {
            name,
            tf_dtype: p.dtype,
            shape,
        })
    }

    fn to_proto(&self) -> tf::TensorInfo {
        tf::TensorInfo {
            encoding: Some(tf::tensor_info::Encoding::Name(self.name.clone())),
            dtype: self.tf_dtype,
            tensor_shape: Some(proto::shape_to_proto(&self.shape)),
        }
    }
}

/// A way to call the graph: named inputs and outputs (TensorFlow's `SignatureDef`).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Signature {
    /// Inputs by key.
    pub inputs: BTreeMap<String, TensorInfo>,
    /// Outputs by key.
    pub outputs: BTreeMap<String, TensorInfo>,
    /// `tensorflow/serving/predict`, `.../classify` or `.../regress`.
    pub method_name: String,
}

impl Signature {
    /// A predict signature over graph tensors given by key.
    pub fn predict(graph: &Graph, inputs: &[(&str, Output)], outputs: &[(&str, Output)]) -> Self {
        let infos = |xs: &[(&str, Output)]| {
            xs.iter()
                .map(|&(k, o)| (k.to_string(), TensorInfo::of(graph, o)))
                .collect()
        };
        Signature {
            inputs: infos(inputs),
            outputs: infos(outputs),
            method_name: PREDICT_METHOD.to_string(),
        }
    }

    fn from_proto(key: &str, p: &tf::SignatureDef) -> Result<Signature> {
        let infos = |m: &BTreeMap<String, tf::TensorInfo>| {
            m.iter()
                .map(|(k, v)| {
                    TensorInfo::from_proto(v)
                        .map(|i| (k.clone(), i))
                        .map_err(|e| {
                            Error::invalid(format!("signature '{key}', tensor '{k}': {e}"))
                        })
                })
                .collect::<Result<BTreeMap<_, _>>>()
        };
        Ok(Signature {
            inputs: infos(&p.inputs)?,
            outputs: infos(&p.outputs)?,
            method_name: p.method_name.clone(),
        })
    }

    fn to_proto(&self) -> tf::SignatureDef {
        let infos = |m: &BTreeMap<String, TensorInfo>| {
            m.iter().map(|(k, v)| (k.clone(), v.to_proto())).collect()
        };
        tf::SignatureDef {
            inputs: infos(&self.inputs),
            outputs: infos(&self.outputs),
            method_name: self.method_name.clone(),
            defaults: BTreeMap::new(),
        }
    }
}

/// A loaded SavedModel: a session with restored variables over the model's graph.
pub struct LoadedModel {
    /// The session (variables restored, init op run).
    pub session: Session,
    /// The graph (nodes rustflow cannot run are kept as unsupported nodes).
    pub graph: Graph,
    /// Signatures by key; ones rustflow cannot represent (sparse inputs) are left out.
    pub signatures: BTreeMap<String, Signature>,
    /// Parts of the init op that were skipped because they are unsupported nodes (such as
    /// a string variable receiving an asset path); their state is only visible to other
    /// unsupported nodes.
    pub skipped_init: Vec<String>,
    /// The resource variables of a TensorFlow 2 SavedModel, restored from its object-graph
    /// checkpoint, by `VarHandleOp` name (empty for a TensorFlow 1 model).
    pub variables: Vec<ModelVariable>,
    /// The directory it was loaded from (where [`LoadedModel::save_tf2`] reads the
    /// functions and checkpoint it writes back).
    pub source: PathBuf,
}

/// A resource variable of a TensorFlow 2 SavedModel.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelVariable {
    /// Its `VarHandleOp` output in [`LoadedModel::graph`].
    pub handle: Output,
    /// Its checkpoint key (`variables/0/.ATTRIBUTES/VARIABLE_VALUE`).
    pub key: String,
    /// Whether TensorFlow trains it (a BatchNormalization's moving statistics are not
    /// trained).
    pub trainable: bool,
}

impl std::fmt::Debug for LoadedModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedModel")
            .field("nodes", &self.graph.len())
            .field("signatures", &self.signatures.keys().collect::<Vec<_>>())
            .field("skipped_init", &self.skipped_init)
            .finish()
    }
}

impl LoadedModel {
    /// The trainable resource variables (`tf.Module.trainable_variables`), each as a
    /// [`VariableHandle`] whose `read` is a new `ReadVariableOp` of [`LoadedModel::graph`]:
    /// the `var_list` for an optimizer to fine-tune the model. After adding a loss and
    /// the optimizer's updates, `session.extend(&graph)` makes them runnable.
    pub fn trainable_variables(&mut self) -> Result<Vec<VariableHandle>> {
        self.variables
            .iter()
            .filter(|v| v.trainable)
            .map(|v| self.graph.read_variable(v.handle))
            .collect()
    }

    /// A signature by key; the error lists the keys there are.
    pub fn signature(&self, key: &str) -> Result<&Signature> {
        self.signatures.get(key).ok_or_else(|| {
            Error::NotFound(format!(
                "no signature '{key}' in the model; it has: {}",
                self.signatures
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
    }

    /// Runs a signature: `inputs` by key (every input of the signature, with its dtype and
    /// a compatible shape) → every output by key.
    pub fn run_signature(
        &self,
        key: &str,
        inputs: &[(&str, Tensor)],
    ) -> Result<BTreeMap<String, Tensor>> {
        let sig = self.signature(key)?;
        let keys: Vec<&str> = sig.outputs.keys().map(String::as_str).collect();
        let outs = self.run_signature_outputs(key, inputs, &keys)?;
        Ok(keys.iter().map(|k| k.to_string()).zip(outs).collect())
    }

    /// Runs a signature, fetching only the outputs `output_keys`, in that order.
    pub fn run_signature_outputs(
        &self,
        key: &str,
        inputs: &[(&str, Tensor)],
        output_keys: &[&str],
    ) -> Result<Vec<Tensor>> {
        let sig = self.signature(key)?;
        let outputs = output_keys
            .iter()
            .map(|k| {
                sig.outputs.get(*k).ok_or_else(|| {
                    Error::invalid(format!(
                        "signature '{key}' has no output '{k}'; its outputs: {}",
                        sig.outputs.keys().cloned().collect::<Vec<_>>().join(", ")
                    ))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        self.run_signature_fetching(key, inputs, &outputs)
    }

    /// Feeds a signature's `inputs` by key (checked as [`LoadedModel::run_signature`] does)
    /// and fetches the graph tensors `outputs`: this signature's, or those of several
    /// signatures that read the same inputs, in one run.
    pub fn run_signature_fetching(
        &self,
        key: &str,
        inputs: &[(&str, Tensor)],
        outputs: &[&TensorInfo],
    ) -> Result<Vec<Tensor>> {
        let sig = self.signature(key)?;
        let expected = || sig.inputs.keys().cloned().collect::<Vec<_>>().join(", ");
        let mut feeds = Vec::with_capacity(inputs.len());
        for (k, t) in inputs {
            let info = sig.inputs.get(*k).ok_or_else(|| {
                Error::invalid(format!(
                    "signature '{key}' has no input '{k}'; its inputs: {}",
                    expected()
                ))
            })?;
            check_tensor(key, "input", k, info, t)?;
            feeds.push((self.graph.output_by_name(&info.name)?, t.clone()));
        }
        if let Some(missing) = sig
            .inputs
            .keys()
            .find(|k| !inputs.iter().any(|(i, _)| i == k))
        {
            return Err(Error::invalid(format!(
                "signature '{key}' needs input '{missing}' (inputs: {})",
                expected()
            )));
        }
        let fetches = outputs
            .iter()
            .map(|info| self.graph.output_by_name(&info.name))
            .collect::<Result<Vec<_>>>()?;
        self.session.run(&feeds, &fetches, &[])
    }
}

/// Checks a fed tensor against a signature's declaration.
fn check_tensor(sig: &str, what: &str, key: &str, info: &TensorInfo, t: &Tensor) -> Result<()> {
    let Some(dtype) = info.dtype() else {
        return Err(Error::invalid(format!(
            "{what} '{key}' of signature '{sig}' has dtype {}, which rustflow does not support",
            proto::dtype_name(info.tf_dtype)
        )));
    };
    if t.dtype() != dtype {
        return Err(Error::invalid(format!(
            "{what} '{key}' of signature '{sig}' must be {dtype}, got {}",
            t.dtype()
        )));
    }
    if !info.shape.is_compatible_with(t.shape()) {
        return Err(Error::invalid(format!(
            "{what} '{key}' of signature '{sig}' must have shape {}, got {:?}",
            info.shape,
            t.shape()
        )));
    }
    Ok(())
}

/// Reads `saved_model.pb` from a SavedModel directory.
pub fn read_saved_model(dir: &Path) -> Result<tf::SavedModel> {
    let path = dir.join("saved_model.pb");
    if !path.exists() && dir.join("saved_model.pbtxt").exists() {
        return Err(Error::invalid(format!(
            "{}: text SavedModels (saved_model.pbtxt) are not supported; write a binary one",
            dir.display()
        )));
    }
    let bytes = std::fs::read(&path).map_err(|e| Error::Io(format!("{}: {e}", path.display())))?;
    tf::SavedModel::decode(bytes.as_slice())
        .map_err(|e| Error::Parse(format!("{}: not a SavedModel: {e}", path.display())))
}

/// The checkpoint prefix of a SavedModel directory.
pub fn variables_prefix(dir: &Path) -> PathBuf {
    dir.join("variables").join("variables")
}

/// Loads the MetaGraphDef whose tag set equals `tags` from a TensorFlow 1 SavedModel:
/// imports its graph, restores its variables from the checkpoint and runs its init op.
pub fn load(dir: impl AsRef<Path>, tags: &[&str], options: SessionOptions) -> Result<LoadedModel> {
    let dir = dir.as_ref();
    let model = read_saved_model(dir)?;
    if model.meta_graphs.is_empty() {
        return Err(Error::invalid(format!(
            "{}: saved_model.pb holds no MetaGraphDef (is the file empty or truncated?)",
            dir.display()
        )));
    }
    let want: BTreeSet<&str> = tags.iter().copied().collect();
    let tag_set = |m: &tf::MetaGraphDef| -> BTreeSet<String> {
        m.meta_info_def
            .as_ref()
            .map(|i| i.tags.iter().cloned().collect())
            .unwrap_or_default()
    };
    let meta = model
        .meta_graphs
        .iter()
        .find(|m| {
            tag_set(m)
                .iter()
                .map(String::as_str)
                .eq(want.iter().copied())
        })
        .ok_or_else(|| {
            let have: Vec<String> = model
                .meta_graphs
                .iter()
                .map(|m| format!("{:?}", tag_set(m)))
                .collect();
            Error::NotFound(format!(
                "{}: no MetaGraphDef with tags {want:?}; it has {}",
                dir.display(),
                have.join(", ")
            ))
        })?;
    let in_dir = |e: Error| Error::invalid(format!("{}: {e}", dir.display()));
    let original = meta.graph_def.clone().unwrap_or_default();
    let op_list = meta
        .meta_info_def
        .as_ref()
        .and_then(|i| i.stripped_op_list.as_ref());
    let init_op = init_op_name(meta);
    let graph_def = if original
        .library
        .as_ref()
        .is_some_and(|l| !l.function.is_empty())
    {
        let mut roots: Vec<&str> = meta
            .signature_def
            .values()
            .flat_map(|s| s.inputs.values().chain(s.outputs.values()))
            .filter_map(|t| match &t.encoding {
                Some(tf::tensor_info::Encoding::Name(n)) => Some(n.as_str()),
                _ => None,
            })
            .collect();
        roots.extend(init_op.as_deref());
        proto::inline_functions(&original, op_list, &roots).map_err(in_dir)?
    } else {
        original.clone()
    };
    let graph = proto::import_graph_def(&graph_def, op_list).map_err(in_dir)?;
    let session = Session::with_options(&graph, options);

    let prefix = variables_prefix(dir);
    let mut variables = Vec::new();
    if let Some(objects) = &meta.object_graph_def {
        let keys = object_graph::variable_keys(objects, &original).map_err(in_dir)?;
        if !keys.is_empty() {
            variables = restore_resource_variables(&session, &graph, &keys, &prefix)?;
        }
    } else if bundle::index_path(&prefix).exists() {
        restore(&session, &graph, &graph_def, &prefix)?;
    }
    let skipped_init = match init_op {
        Some(name) => {
            let feeds = asset_feeds(dir, meta, &graph);
            run_init_op(&session, &graph, &name, &feeds).map_err(in_dir)?
        }
        None => Vec::new(),
    };
    let mut signatures = BTreeMap::new();
    for (k, s) in &meta.signature_def {
        // Signatures rustflow cannot represent (sparse tensors) are skipped.
        if let Ok(sig) = Signature::from_proto(k, s) {
            signatures.insert(k.clone(), sig);
        }
    }
    Ok(LoadedModel {
        session,
        graph,
        signatures,
        skipped_init,
        variables,
        source: dir.to_path_buf(),
    })
}

/// Which graph variable each checkpoint key restores, read from the restore subgraph
/// (`RestoreV2` + `Assign`); variables it does not cover use their own name as key.
fn checkpoint_keys(graph: &Graph, graph_def: &tf::GraphDef) -> BTreeMap<String, NodeId> {
    let by_name: HashMap<&str, &tf::NodeDef> = graph_def
        .node
        .iter()
        .map(|n| (n.name.as_str(), n))
        .collect();
    let const_strings = |input: Option<&String>| -> Option<Vec<String>> {
        let node = by_name.get(input?.as_str())?;
        let value = node.attr.get("value")?;
        match &value.value {
            Some(tf::attr_value::Value::Tensor(t)) => t
                .string_val
                .iter()
                .map(|s| String::from_utf8(s.clone()).ok())
                .collect(),
            _ => None,
        }
    };
    let mut restore_names: HashMap<&str, Vec<String>> = HashMap::new();
    for n in &graph_def.node {
        if n.op == "RestoreV2" {
            if let Some(names) = const_strings(n.input.get(1)) {
                restore_names.insert(n.name.as_str(), names);
            }
        }
    }
    let mut keys = BTreeMap::new();
    for n in &graph_def.node {
        if n.op != "Assign" || n.input.len() < 2 {
            continue;
        }
        let (src, index) = match n.input[1].rsplit_once(':') {
            Some((s, i)) => (s, i.parse::<usize>().unwrap_or(usize::MAX)),
            None => (n.input[1].as_str(), 0),
        };
        let Some(key) = restore_names.get(src).and_then(|names| names.get(index)) else {
            continue;
        };
        if let Some(var) = graph.node_by_name(&n.input[0]) {
            keys.insert(key.clone(), var);
        }
    }
    for (id, node) in graph.nodes() {
        if node.op_type() == "VariableV2"
            && !unsupported::is_unsupported(node)
            && !keys.values().any(|&v| v == id)
        {
            keys.insert(node.name().to_string(), id);
        }
    }
    keys
}

/// Assigns every checkpoint tensor to the variable it restores (natively, rather than
/// running `RestoreV2`).
fn restore(
    session: &Session,
    graph: &Graph,
    graph_def: &tf::GraphDef,
    prefix: &Path,
) -> Result<()> {
    let reader = BundleReader::open(prefix)?;
    for (key, var) in checkpoint_keys(graph, graph_def) {
        let node = graph.node(var);
        if node.op_type() != "VariableV2" || unsupported::is_unsupported(node) {
            continue;
        }
        if reader.entry(&key).is_none() {
            continue;
        }
        restore_variable(session, &reader, node, &key, prefix)?;
    }
    Ok(())
}

/// Reads checkpoint tensor `key` into the session's variable of `node`.
fn restore_variable(
    session: &Session,
    reader: &BundleReader,
    node: &crate::graph::Node,
    key: &str,
    prefix: &Path,
) -> Result<()> {
    let value = reader
        .read(key)
        .map_err(|e| Error::invalid(format!("{}: {e}", prefix.display())))?;
    session
        .resources()
        .variable_for(node)
        .assign(value, true)
        .map_err(|e| {
            Error::invalid(format!(
                "restoring variable '{}' from checkpoint tensor '{key}': {e}",
                node.name()
            ))
        })?;
    Ok(())
}

/// Restores each resource variable (`VarHandleOp` node by name) from its checkpoint key.
fn restore_resource_variables(
    session: &Session,
    graph: &Graph,
    keys: &BTreeMap<String, object_graph::SavedVariable>,
    prefix: &Path,
) -> Result<Vec<ModelVariable>> {
    let reader = BundleReader::open(prefix)?;
    let mut variables = Vec::with_capacity(keys.len());
    for (name, object_graph::SavedVariable { key, trainable }) in keys {
        let id = graph.node_by_name(name).ok_or_else(|| {
            Error::NotFound(format!("variable '{name}' is not in the imported graph"))
        })?;
        let node = graph.node(id);
        if reader.entry(key).is_none() {
            return Err(Error::NotFound(format!(
                "{}: the checkpoint has no tensor '{key}' for variable '{name}'",
                prefix.display()
            )));
        }
        restore_variable(session, &reader, node, key, prefix)?;
        variables.push(ModelVariable {
            handle: id.output(0),
            key: key.clone(),
            trainable: *trainable,
        });
    }
    Ok(variables)
}

/// The init op: the `__saved_model_init_op` signature, else the `saved_model_main_op` or
/// `legacy_init_op` collection.
fn init_op_name(meta: &tf::MetaGraphDef) -> Option<String> {
    if let Some(sig) = meta.signature_def.get("__saved_model_init_op") {
        if let Some(tf::TensorInfo {
            encoding: Some(tf::tensor_info::Encoding::Name(n)),
            ..
        }) = sig.outputs.get("__saved_model_init_op")
        {
            return Some(n.clone());
        }
    }
    ["saved_model_main_op", "legacy_init_op"]
        .iter()
        .find_map(|k| match &meta.collection_def.get(*k)?.kind {
            Some(tf::collection_def::Kind::NodeList(l)) => l.value.first().cloned(),
            _ => None,
        })
}

/// What TensorFlow's loader feeds the init op: each `asset_file_def` tensor (a string
/// placeholder) gets its asset's path, `DIR/assets/<filename>`. Tensors the graph lacks or
/// cannot hold (unsupported nodes) are left out.
fn asset_feeds(dir: &Path, meta: &tf::MetaGraphDef, graph: &Graph) -> Vec<(Output, Tensor)> {
    meta.asset_file_def
        .iter()
        .filter_map(|a| {
            let Some(tf::tensor_info::Encoding::Name(name)) = &a.tensor_info.as_ref()?.encoding
            else {
                return None;
            };
            let o = graph.output_by_name(name).ok()?;
            let usable =
                graph.dtype(o) == DType::String && !unsupported::is_unsupported(graph.node(o.node));
            let path = dir.join("assets").join(&a.filename);
            usable.then(|| (o, Tensor::string_scalar(path.display().to_string())))
        })
        .collect()
}

/// Runs the init op with `feeds` (the asset paths). Unsupported nodes among its control
/// inputs (followed through `NoOp` groups) are skipped and returned by name; everything
/// else runs.
fn run_init_op(
    session: &Session,
    graph: &Graph,
    name: &str,
    feeds: &[(Output, Tensor)],
) -> Result<Vec<String>> {
    let id = graph
        .node_by_name(
            name.strip_prefix('^')
                .unwrap_or(name)
                .split(':')
                .next()
                .unwrap_or(name),
        )
        .ok_or_else(|| Error::NotFound(format!("the init op '{name}' is not in the graph")))?;
    let mut targets = Vec::new();
    let mut skipped = Vec::new();
    let mut stack = vec![id];
    let mut seen = BTreeSet::new();
    while let Some(n) = stack.pop() {
        if !seen.insert(n) {
            continue;
        }
        let node = graph.node(n);
        if unsupported::is_unsupported(node) {
            skipped.push(node.name().to_string());
        } else if node.op_type() == "NoOp" {
            stack.extend(node.control_inputs().iter().rev());
        } else {
            targets.push(n);
        }
    }
    if !targets.is_empty() {
        session.run(feeds, &[], &targets)?;
    }
    Ok(skipped)
}

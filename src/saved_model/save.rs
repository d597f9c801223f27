//! Writing a TensorFlow 1 SavedModel that TensorFlow's loaders restore.
//!
//! The exported graph is the session's graph plus TensorFlow's (non-sharded) saver
//! subgraph: `save/Const` (the checkpoint prefix), `save/SaveV2` + `save/control_dependency`,
//! `save/RestoreV2` + one `save/Assign_i` per variable + `save/restore_all`, described by
//! the `saver_def`. rustflow never runs the string-typed `SaveV2`/`RestoreV2` nodes (it
//! restores natively); TensorFlow runs `save/restore_all` with the checkpoint prefix fed.
//!
//! The directory is written beside the target under a temporary name and renamed into
//! place only when complete; an existing model is replaced only then.

use super::bundle::{write_bundle, write_synced};
use super::{variables_prefix, Signature};
use crate::graph::{AttrValue, Attrs, Graph, NodeId, NodeRequest};
use crate::proto::{self, tf, unsupported};
use crate::session::Session;
use crate::tensor::DType;
use crate::{Error, Result};
use prost::Message;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const DT_STRING: i32 = 7;

/// Saves the graph, the session's variable values and `signatures` as a TensorFlow 1
/// SavedModel in `dir` with one MetaGraphDef tagged `tags` (usually `["serve"]`).
///
/// Every `VariableV2` must have a value in the session. Replaces an existing `dir` only
/// once the new model is completely written.
pub fn save(
    session: &Session,
    graph: &Graph,
    dir: impl AsRef<Path>,
    tags: &[&str],
    signatures: &BTreeMap<String, Signature>,
) -> Result<()> {
    save_with_hook(session, graph, dir.as_ref(), tags, signatures, &|_| Ok(()))
}

/// [`save`] with a hook called after each file is written (tests inject failures).
fn save_with_hook(
    session: &Session,
    graph: &Graph,
    dir: &Path,
    tags: &[&str],
    signatures: &BTreeMap<String, Signature>,
    hook: &dyn Fn(&str) -> Result<()>,
) -> Result<()> {
    let mut values = BTreeMap::new();
    let mut vars = Vec::new();
    for (id, node) in graph.nodes() {
        if node.op_type() != "VariableV2" || unsupported::is_unsupported(node) {
            continue;
        }
        let value = session.resources().variable_for(node).read().map_err(|e| {
            Error::FailedPrecondition(format!(
                "cannot save variable '{}' (run its initializer or restore it first): {e}",
                node.name()
            ))
        })?;
        let value = session.to_host(&value)?;
        vars.push((node.name().to_string(), value.dtype(), id));
        values.insert(node.name().to_string(), value);
    }
    let mut g = graph.clone();
    let saver_def = if vars.is_empty() {
        None
    } else {
        Some(add_saver(&mut g, &vars)?)
    };
    let meta = tf::MetaGraphDef {
        meta_info_def: Some(tf::meta_graph_def::MetaInfoDef {
            tags: tags.iter().map(|t| t.to_string()).collect(),
            stripped_default_attrs: true,
            ..Default::default()
        }),
        graph_def: Some(proto::graph_to_proto(&g)),
        saver_def,
        collection_def: variables_collection(&g, &vars),
        signature_def: signatures
            .iter()
            .map(|(k, s)| (k.clone(), s.to_proto()))
            .collect(),
        asset_file_def: Vec::new(),
        object_graph_def: None,
    };
    let model = tf::SavedModel {
        saved_model_schema_version: 1,
        meta_graphs: vec![meta],
    };
    write_dir_atomically(dir, |tmp| {
        write_synced(&tmp.join("saved_model.pb"), &model.encode_to_vec())?;
        hook("saved_model.pb")?;
        if !values.is_empty() {
            let vars_dir = tmp.join("variables");
            std::fs::create_dir(&vars_dir)
                .map_err(|e| Error::Io(format!("{}: {e}", vars_dir.display())))?;
            write_bundle(&variables_prefix(tmp), &values)?;
            hook("variables")?;
        }
        Ok(())
    })
}

/// A name scope not used by any node yet: `save`, `save_1`, ...
fn free_scope(g: &Graph, base: &str) -> String {
    let taken = |s: &str| {
        g.nodes()
            .any(|(_, n)| n.name() == s || n.name().starts_with(&format!("{s}/")))
    };
    let mut name = base.to_string();
    let mut i = 0;
    while taken(&name) {
        i += 1;
        name = format!("{base}_{i}");
    }
    name
}

fn attr(value: tf::attr_value::Value) -> tf::AttrValue {
    tf::AttrValue { value: Some(value) }
}

/// A string `Const` NodeDef.
fn string_const(name: String, values: &[&str], shape: &[usize]) -> tf::NodeDef {
    let tensor = tf::TensorProto {
        dtype: DT_STRING,
        tensor_shape: Some(proto::dims_to_proto(shape)),
        string_val: values.iter().map(|s| s.as_bytes().to_vec()).collect(),
        ..Default::default()
    };
    tf::NodeDef {
        name,
        op: "Const".into(),
        attr: [
            (
                "dtype".to_string(),
                attr(tf::attr_value::Value::Type(DT_STRING)),
            ),
            (
                "value".to_string(),
                attr(tf::attr_value::Value::Tensor(tensor)),
            ),
        ]
        .into_iter()
        .collect(),
        ..Default::default()
    }
}

/// Adds TensorFlow's non-sharded saver subgraph for `vars` (checkpoint key, dtype, node).
fn add_saver(g: &mut Graph, vars: &[(String, DType, NodeId)]) -> Result<tf::SaverDef> {
    let scope = free_scope(g, "save");
    let n = vars.len();
    let keys: Vec<&str> = vars.iter().map(|(k, _, _)| k.as_str()).collect();
    let slices = vec![""; n];
    let dtypes: Vec<i32> = vars.iter().map(|(_, d, _)| d.to_tf_enum()).collect();
    let dtypes_attr = || {
        attr(tf::attr_value::Value::List(tf::attr_value::ListValue {
            r#type: dtypes.clone(),
            ..Default::default()
        }))
    };
    let add_const = |g: &mut Graph, name: &str, values: &[&str], shape: &[usize]| {
        let nd = string_const(format!("{scope}/{name}"), values, shape);
        unsupported::add_tensorflow_node(g, &nd, vec![], vec![], &[DT_STRING])
    };
    let filename = add_const(g, "Const", &["model"], &[])?;
    let save_names = add_const(g, "SaveV2/tensor_names", &keys, &[n])?;
    let save_slices = add_const(g, "SaveV2/shape_and_slices", &slices, &[n])?;
    let restore_names = add_const(g, "RestoreV2/tensor_names", &keys, &[n])?;
    let restore_slices = add_const(g, "RestoreV2/shape_and_slices", &slices, &[n])?;

    let mut save_inputs = vec![
        filename.output(0),
        save_names.output(0),
        save_slices.output(0),
    ];
    save_inputs.extend(vars.iter().map(|(_, _, id)| id.output(0)));
    let save_v2 = tf::NodeDef {
        name: format!("{scope}/SaveV2"),
        op: "SaveV2".into(),
        attr: [("dtypes".to_string(), dtypes_attr())]
            .into_iter()
            .collect(),
        ..Default::default()
    };
    let save_v2 = unsupported::add_tensorflow_node(g, &save_v2, save_inputs, vec![], &[])?;
    let control_dependency = tf::NodeDef {
        name: format!("{scope}/control_dependency"),
        op: "Identity".into(),
        attr: [(
            "T".to_string(),
            attr(tf::attr_value::Value::Type(DT_STRING)),
        )]
        .into_iter()
        .collect(),
        ..Default::default()
    };
    unsupported::add_tensorflow_node(
        g,
        &control_dependency,
        vec![filename.output(0)],
        vec![save_v2],
        &[DT_STRING],
    )?;

    let restore = tf::NodeDef {
        name: format!("{scope}/RestoreV2"),
        op: "RestoreV2".into(),
        attr: [("dtypes".to_string(), dtypes_attr())]
            .into_iter()
            .collect(),
        ..Default::default()
    };
    let restore = unsupported::add_tensorflow_node(
        g,
        &restore,
        vec![
            filename.output(0),
            restore_names.output(0),
            restore_slices.output(0),
        ],
        vec![],
        &dtypes,
    )?;
    let mut assigns = Vec::with_capacity(n);
    for (i, (_, dtype, var)) in vars.iter().enumerate() {
        let name = match i {
            0 => format!("{scope}/Assign"),
            i => format!("{scope}/Assign_{i}"),
        };
        let mut attrs = Attrs::new();
        attrs.insert("T".into(), AttrValue::Type(*dtype));
        assigns.push(g.add_node(NodeRequest {
            op_type: "Assign".into(),
            name: Some(name),
            exact_name: true,
            inputs: vec![var.output(0), restore.output(i)],
            attrs,
            ..Default::default()
        })?);
    }
    g.add_node(NodeRequest {
        op_type: "NoOp".into(),
        name: Some(format!("{scope}/restore_all")),
        exact_name: true,
        control_inputs: assigns,
        ..Default::default()
    })?;
    Ok(tf::SaverDef {
        filename_tensor_name: format!("{scope}/Const:0"),
        save_tensor_name: format!("{scope}/control_dependency:0"),
        restore_op_name: format!("{scope}/restore_all"),
        max_to_keep: 5,
        sharded: false,
        keep_checkpoint_every_n_hours: 10000.0,
        version: tf::saver_def::CheckpointFormatVersion::V2 as i32,
    })
}

/// The TF1 `variables` / `trainable_variables` collections, for the variables made the
/// way `tf.compat.v1.Variable` makes them (with `<name>/Assign` and `<name>/read` nodes).
fn variables_collection(
    g: &Graph,
    vars: &[(String, DType, NodeId)],
) -> BTreeMap<String, tf::CollectionDef> {
    let defs: Vec<Vec<u8>> = vars
        .iter()
        .filter_map(|(_, _, id)| {
            let name = g.node(*id).name();
            let init = g.node_by_name(&format!("{name}/Assign"))?;
            let read = g.node_by_name(&format!("{name}/read"))?;
            let initial_value = g
                .node(init)
                .inputs()
                .get(1)
                .map(|&o| g.output_name(o))
                .unwrap_or_default();
            Some(
                tf::VariableDef {
                    variable_name: format!("{name}:0"),
                    initializer_name: g.node(init).name().to_string(),
                    snapshot_name: format!("{}:0", g.node(read).name()),
                    initial_value_name: initial_value,
                    trainable: true,
                    ..Default::default()
                }
                .encode_to_vec(),
            )
        })
        .collect();
    if defs.is_empty() {
        return BTreeMap::new();
    }
    let collection = tf::CollectionDef {
        kind: Some(tf::collection_def::Kind::BytesList(
            tf::collection_def::BytesList { value: defs },
        )),
    };
    [
        ("trainable_variables".to_string(), collection.clone()),
        ("variables".to_string(), collection),
    ]
    .into_iter()
    .collect()
}

/// Builds a directory with `fill` under a temporary name beside `dir`, then renames it to
/// `dir`. An existing `dir` is moved aside only when the new one is complete, and removed
/// after the rename; on any failure the temporary directory is removed and `dir` is left
/// as it was.
pub(super) fn write_dir_atomically(
    dir: &Path,
    fill: impl FnOnce(&Path) -> Result<()>,
) -> Result<()> {
    let io = |p: &Path, e: std::io::Error| Error::Io(format!("{}: {e}", p.display()));
    let name = dir
        .file_name()
        .ok_or_else(|| Error::invalid(format!("{}: not a directory path", dir.display())))?
        .to_string_lossy()
        .into_owned();
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(|e| io(&parent, e))?;
    // Removed on drop unless it was renamed into place.
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}.tmp-"))
        .tempdir_in(&parent)
        .map_err(|e| io(&parent, e))?;
    fill(tmp.path())?;
    std::fs::File::open(tmp.path())
        .and_then(|f| f.sync_all())
        .map_err(|e| io(tmp.path(), e))?;
    if dir.exists() {
        let old = tempfile::Builder::new()
            .prefix(&format!(".{name}.old-"))
            .tempdir_in(&parent)
            .map_err(|e| io(&parent, e))?;
        let aside = old.path().join(&name);
        std::fs::rename(dir, &aside).map_err(|e| io(dir, e))?;
        if let Err(e) = std::fs::rename(tmp.path(), dir) {
            let _ = std::fs::rename(&aside, dir);
            return Err(io(dir, e));
        }
        // `old` (with the previous model inside) is removed on drop.
    } else {
        std::fs::rename(tmp.path(), dir).map_err(|e| io(dir, e))?;
    }
    // The directory now lives at `dir`; nothing is left to remove.
    let _ = tmp.keep();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::saved_model::{load, LoadedModel};
    use crate::SessionOptions;
    use crate::Tensor;

    /// Values of a loaded or trained session's variables, by checkpoint key (for tests).
    fn variable_values(session: &Session, graph: &Graph) -> BTreeMap<String, Tensor> {
        graph
            .nodes()
            .filter(|(_, n)| n.op_type() == "VariableV2" && !unsupported::is_unsupported(n))
            .filter_map(|(_, n)| {
                let v = session.resources().variable_for(n).read().ok()?;
                let v = session.to_host(&v).ok()?;
                Some((n.name().to_string(), v))
            })
            .collect()
    }

    fn tmp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("rustflow-save-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// y = w·x + b with variables w = `scale`, b = 1.
    fn model(scale: f32) -> (Graph, Session, BTreeMap<String, Signature>) {
        let mut g = Graph::new();
        let x = g.placeholder(DType::Float32, [None, Some(2)], "x").unwrap();
        let w0 = g.constant(Tensor::from([[scale], [scale]])).unwrap();
        let w = g.variable(w0, "w").unwrap();
        let b0 = g.constant(Tensor::vector(vec![1.0f32])).unwrap();
        let b = g.variable(b0, "b").unwrap();
        let xw = g.matmul(x, w.read).unwrap();
        let y = g.add(xw, b.read).unwrap();
        let init = g.global_variables_initializer().unwrap();
        let sess = Session::with_options(&g, SessionOptions::with_threads(1));
        sess.run(&[], &[], &[init]).unwrap();
        let mut sigs = BTreeMap::new();
        sigs.insert(
            "serving_default".to_string(),
            Signature::predict(&g, &[("x", x)], &[("y", y)]),
        );
        (g, sess, sigs)
    }

    fn predict(m: &LoadedModel) -> Vec<f32> {
        let x = Tensor::from([[1.0f32, 2.0]]);
        let out = m.run_signature("serving_default", &[("x", x)]).unwrap();
        out["y"].to_vec::<f32>().unwrap()
    }

    #[test]
    fn saved_models_load_back() {
        let dir = tmp("rt").join("model");
        let (g, sess, sigs) = model(2.0);
        save(&sess, &g, &dir, &["serve"], &sigs).unwrap();
        let m = load(&dir, &["serve"], SessionOptions::with_threads(1)).unwrap();
        assert_eq!(predict(&m), [7.0]);
        assert_eq!(
            variable_values(&m.session, &m.graph),
            variable_values(&sess, &g)
        );
        assert!(m.skipped_init.is_empty());
        // Saving the loaded model again adds a second saver scope and still loads.
        let again = dir.with_file_name("again");
        save(&m.session, &m.graph, &again, &["serve"], &m.signatures).unwrap();
        let m2 = load(&again, &["serve"], SessionOptions::with_threads(1)).unwrap();
        assert!(m2.graph.node_by_name("save_1/restore_all").is_some());
        assert_eq!(predict(&m2), [7.0]);
        let e = load(&dir, &["train"], SessionOptions::default()).unwrap_err();
        assert!(e.to_string().contains("no MetaGraphDef with tags"), "{e}");
    }

    #[test]
    fn a_failed_save_leaves_the_previous_model() {
        let root = tmp("atomic");
        let dir = root.join("model");
        let (g, sess, sigs) = model(2.0);
        save(&sess, &g, &dir, &["serve"], &sigs).unwrap();
        let (g3, sess3, sigs3) = model(3.0);
        for step in ["saved_model.pb", "variables"] {
            let fail = |s: &str| {
                if s == step {
                    Err(Error::Io("disk full (injected)".into()))
                } else {
                    Ok(())
                }
            };
            let e = save_with_hook(&sess3, &g3, &dir, &["serve"], &sigs3, &fail).unwrap_err();
            assert!(e.to_string().contains("injected"), "{e}");
            let m = load(&dir, &["serve"], SessionOptions::with_threads(1)).unwrap();
            assert_eq!(predict(&m), [7.0], "after a failure at {step}");
        }
        // Only the model directory is left: no temporary or old directories.
        let entries: Vec<_> = std::fs::read_dir(&root).unwrap().collect();
        assert_eq!(entries.len(), 1);
        save(&sess3, &g3, &dir, &["serve"], &sigs3).unwrap();
        let m = load(&dir, &["serve"], SessionOptions::with_threads(1)).unwrap();
        assert_eq!(predict(&m), [10.0]);
        assert_eq!(std::fs::read_dir(&root).unwrap().count(), 1);
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn uninitialized_variables_cannot_be_saved() {
        let mut g = Graph::new();
        let v0 = g.constant(1.0f32).unwrap();
        g.variable(v0, "v").unwrap();
        let sess = Session::new(&g);
        let dir = tmp("uninit").join("m");
        let e = save(&sess, &g, &dir, &["serve"], &BTreeMap::new()).unwrap_err();
        assert!(e.to_string().contains("cannot save variable 'v'"), "{e}");
        assert!(!dir.exists());
    }
}

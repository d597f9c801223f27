//! TensorFlow 2 SavedModels: which checkpoint tensor restores each resource variable.
//!
//! The `SavedObjectGraph` of the MetaGraphDef is the tree of saved objects (node 0 is the
//! root); its node ids are the checkpoint's object ids, and a variable's checkpoint key is
//! its path from the root, found breadth-first as TensorFlow's saver names it
//! (`layer/kernel/.ATTRIBUTES/VARIABLE_VALUE`, local names escaped: `.` → `..`, `/` →
//! `.S`). A call of a traced function in the graph passes the variables it captured as its
//! last inputs; the function's `bound_inputs` says which objects those are. So each
//! `VarHandleOp` that a call captures is tied to one object, and so to one key.

use crate::proto::tf;
use crate::{Error, Result};
use std::collections::{BTreeMap, HashMap, VecDeque};

/// The suffix of a variable's value in an object-based checkpoint.
const VALUE_SUFFIX: &str = ".ATTRIBUTES/VARIABLE_VALUE";

/// A variable object of the object graph, as a captured `VarHandleOp` stands for it.
pub(super) struct SavedVariable {
    /// Its checkpoint key (`<object path>/.ATTRIBUTES/VARIABLE_VALUE`).
    pub key: String,
    /// Whether TensorFlow trains it (`tf.Variable(trainable=...)`).
    pub trainable: bool,
}

/// The variable of every `VarHandleOp` node (by name) that a traced-function call in
/// `gd` captures.
pub(super) fn variable_keys(
    objects: &tf::SavedObjectGraph,
    gd: &tf::GraphDef,
) -> Result<BTreeMap<String, SavedVariable>> {
    let paths = object_paths(objects);
    let by_name: HashMap<&str, &tf::NodeDef> =
        gd.node.iter().map(|n| (n.name.as_str(), n)).collect();
    let mut keys = BTreeMap::new();
    for call in &gd.node {
        if !matches!(
            call.op.as_str(),
            "StatefulPartitionedCall" | "PartitionedCall"
        ) {
            continue;
        }
        let Some(tf::attr_value::Value::Func(f)) =
            call.attr.get("f").and_then(|a| a.value.as_ref())
        else {
            continue;
        };
        let Some(function) = objects.concrete_functions.get(&f.name) else {
            continue;
        };
        let data: Vec<&str> = call
            .input
            .iter()
            .filter(|i| !i.starts_with('^'))
            .map(String::as_str)
            .collect();
        let bound = &function.bound_inputs;
        let Some(captured) = data.len().checked_sub(bound.len()).map(|s| &data[s..]) else {
            return Err(Error::invalid(format!(
                "node '{}' calls '{}' with {} inputs, fewer than its {} captured objects",
                call.name,
                f.name,
                data.len(),
                bound.len()
            )));
        };
        for (input, &id) in captured.iter().zip(bound) {
            let name = input.split(':').next().unwrap_or(input);
            let Some(node) = by_name.get(name) else {
                continue;
            };
            let object = usize::try_from(id)
                .ok()
                .and_then(|i| objects.nodes.get(i))
                .ok_or_else(|| {
                    Error::invalid(format!(
                        "function '{}' captures object {id}, which is not in the object graph \
                         ({} objects)",
                        f.name,
                        objects.nodes.len()
                    ))
                })?;
            let trainable = match &object.kind {
                Some(tf::saved_object::Kind::Variable(v)) if node.op == "VarHandleOp" => {
                    v.trainable
                }
                _ => continue,
            };
            let path = paths.get(&(id as usize)).ok_or_else(|| {
                Error::invalid(format!(
                    "variable object {id} (captured by '{}' as '{name}') cannot be reached from \
                     the root of the object graph",
                    f.name
                ))
            })?;
            let key = format!("{path}/{VALUE_SUFFIX}");
            keys.insert(name.to_string(), SavedVariable { key, trainable });
        }
    }
    Ok(keys)
}

/// The path of every object reachable from the root, breadth-first (first path wins).
fn object_paths(objects: &tf::SavedObjectGraph) -> HashMap<usize, String> {
    let mut paths = HashMap::new();
    if objects.nodes.is_empty() {
        return paths;
    }
    paths.insert(0usize, String::new());
    let mut queue = VecDeque::from([0usize]);
    while let Some(id) = queue.pop_front() {
        let parent = paths[&id].clone();
        for child in &objects.nodes[id].children {
            let Ok(c) = usize::try_from(child.node_id) else {
                continue;
            };
            if c >= objects.nodes.len() || paths.contains_key(&c) {
                continue;
            }
            let local = escape(&child.local_name);
            let path = if parent.is_empty() {
                local
            } else {
                format!("{parent}/{local}")
            };
            paths.insert(c, path);
            queue.push_back(c);
        }
    }
    paths
}

/// TensorFlow's escaping of a local name in a checkpoint key.
fn escape(name: &str) -> String {
    name.replace('.', "..").replace('/', ".S")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn child(id: i32, name: &str) -> tf::trackable_object_graph::trackable_object::ObjectReference {
        tf::trackable_object_graph::trackable_object::ObjectReference {
            node_id: id,
            local_name: name.into(),
        }
    }

    #[test]
    fn paths_are_breadth_first_and_escaped() {
        let node = |children| tf::SavedObject {
            children,
            kind: None,
        };
        let g = tf::SavedObjectGraph {
            nodes: vec![
                node(vec![child(1, "layer"), child(2, "a.b/c")]),
                node(vec![child(2, "deep")]),
                node(vec![]),
            ],
            concrete_functions: Default::default(),
        };
        let p = object_paths(&g);
        assert_eq!(p[&1], "layer");
        assert_eq!(p[&2], "a..b.Sc");
    }
}

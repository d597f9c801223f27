//! [`Graph`] ⇄ TensorFlow `GraphDef`.
//!
//! Export writes what TensorFlow's importer accepts: nodes in insertion (topological)
//! order, attrs equal to the op's default left out, control inputs (`^name`) after data
//! inputs, `versions { producer: 1394 }`. Import accepts nodes in any order (they are
//! topologically sorted; a cycle is an error), `name:i` and `^name` inputs, and unknown
//! fields; nodes keep their exact names. Nodes rustflow cannot run become unsupported
//! nodes (see [`super::unsupported`]), so a graph loads whatever it holds.

use super::attr::attr_from_proto;
use super::compat;
use super::library::Functions;
use super::node::{input_name, node_to_proto};
use super::tensor::{dtype_name, shape_from_proto};
use super::tf;
use super::unsupported::{is_unsupported, tf_output_dtype, unsupported_attrs, unsupported_op};
use crate::graph::{Attrs, Graph, NodeId, NodeRequest, Output};
use crate::ops::OpDef;
use crate::tensor::{DType, PartialShape};
use crate::{Error, Result};
use prost::Message;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::path::Path;

/// The GraphDef version written on export (TensorFlow 2.12's `TF_GRAPH_DEF_VERSION`).
pub const PRODUCER: i32 = 1394;

/// Largest output count (and output index) accepted for a node.
const MAX_LIST_OUTPUTS: i64 = 1 << 16;

/// Exports a graph as a `GraphDef`.
pub fn graph_to_proto(g: &Graph) -> tf::GraphDef {
    tf::GraphDef {
        node: g.nodes().map(|(_, n)| node_to_proto(g, n)).collect(),
        library: super::library::library_to_proto(g),
        versions: Some(tf::VersionDef {
            producer: PRODUCER,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Exports a graph as serialized `GraphDef` bytes (a `.pb` file's contents).
pub fn graph_to_bytes(g: &Graph) -> Vec<u8> {
    graph_to_proto(g).encode_to_vec()
}

/// Writes a graph as a binary `GraphDef` file (atomically).
pub fn write_graph(g: &Graph, path: &Path) -> Result<()> {
    crate::atomic_write(path, &graph_to_bytes(g))
}

/// Parses serialized `GraphDef` bytes.
pub fn parse_graph_def(bytes: &[u8]) -> Result<tf::GraphDef> {
    tf::GraphDef::decode(bytes).map_err(|e| Error::Parse(format!("not a GraphDef: {e}")))
}

/// Reads a `GraphDef` file: text format when the name ends in `.pbtxt` (or `.txt`), binary
/// otherwise. Errors name the file.
pub fn read_graph_def(path: &Path) -> Result<tf::GraphDef> {
    let bytes = std::fs::read(path).map_err(|e| Error::Io(format!("{}: {e}", path.display())))?;
    let text = path.extension().is_some_and(|e| e == "pbtxt" || e == "txt");
    let parsed = if text {
        std::str::from_utf8(&bytes)
            .map_err(|_| Error::Parse("text GraphDef is not valid UTF-8".into()))
            .and_then(super::text::parse_graph_def)
    } else {
        parse_graph_def(&bytes)
    };
    parsed.map_err(|e| match e {
        Error::Parse(m) => Error::Parse(format!("{}: {m}", path.display())),
        e => e,
    })
}

/// Reads and imports a `GraphDef` file (see [`read_graph_def`], [`import_graph_def`]).
pub fn load_graph(path: &Path) -> Result<Graph> {
    import_graph_def(&read_graph_def(path)?, None)
        .map_err(|e| Error::invalid(format!("{}: {e}", path.display())))
}

/// One entry of a `NodeDef`'s input list.
#[derive(Clone, Copy, Debug, PartialEq)]
enum InputRef<'a> {
    Data(&'a str, usize),
    Control(&'a str),
}

fn parse_input(s: &str) -> Result<InputRef<'_>> {
    if let Some(n) = s.strip_prefix('^') {
        return Ok(InputRef::Control(n));
    }
    match s.rsplit_once(':') {
        Some((n, i)) if !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()) => {
            let index = i
                .parse::<usize>()
                .map_err(|_| Error::invalid(format!("input '{s}' has a bad output index")))?;
            Ok(InputRef::Data(n, index))
        }
        _ => Ok(InputRef::Data(s, 0)),
    }
}

fn check_versions(v: Option<&tf::VersionDef>) -> Result<()> {
    let Some(v) = v else { return Ok(()) };
    if v.min_consumer > PRODUCER {
        return Err(Error::invalid(format!(
            "the GraphDef needs a consumer of version {} or newer; rustflow reads version \
             {PRODUCER}",
            v.min_consumer
        )));
    }
    if v.bad_consumers.contains(&PRODUCER) {
        return Err(Error::invalid(format!(
            "the GraphDef lists version {PRODUCER} (rustflow) as a bad consumer"
        )));
    }
    Ok(())
}

/// Orders nodes so that every node comes after its inputs, keeping the file order where it
/// allows; a cycle is an error naming nodes on it.
fn topological_order(gd: &tf::GraphDef, deps: &[Vec<usize>]) -> Result<Vec<usize>> {
    let n = gd.node.len();
    let mut pending = vec![0usize; n];
    let mut users: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, ds) in deps.iter().enumerate() {
        pending[i] = ds.len();
        for &d in ds {
            users[d].push(i);
        }
    }
    let mut ready: BinaryHeap<Reverse<usize>> =
        (0..n).filter(|&i| pending[i] == 0).map(Reverse).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(Reverse(i)) = ready.pop() {
        order.push(i);
        for &u in &users[i] {
            pending[u] -= 1;
            if pending[u] == 0 {
                ready.push(Reverse(u));
            }
        }
    }
    if order.len() < n {
        let stuck: Vec<&str> = (0..n)
            .filter(|&i| pending[i] > 0)
            .take(5)
            .map(|i| gd.node[i].name.as_str())
            .collect();
        return Err(Error::invalid(format!(
            "the GraphDef has a cycle; nodes on or after it: {}",
            stuck.join(", ")
        )));
    }
    Ok(order)
}

/// Imports a `GraphDef`. `op_list` (a MetaGraphDef's `stripped_op_list`) tells the outputs
/// of op types rustflow does not implement; without it they are worked out from the
/// `_output_shapes` attr, the inputs that read them and a `dtype`/`T` attr.
pub fn import_graph_def(gd: &tf::GraphDef, op_list: Option<&tf::OpList>) -> Result<Graph> {
    import_at_depth(gd, op_list, 0)
}

/// [`import_graph_def`] of a graph that is the body of `depth` nested functions; the
/// functions its control-flow nodes run are imported too (see `library`).
pub(super) fn import_at_depth(
    gd: &tf::GraphDef,
    op_list: Option<&tf::OpList>,
    depth: usize,
) -> Result<Graph> {
    check_versions(gd.versions.as_ref())?;
    let mut index: HashMap<&str, usize> = HashMap::with_capacity(gd.node.len());
    for (i, nd) in gd.node.iter().enumerate() {
        if nd.name.is_empty() || nd.name.contains([':', '^']) {
            return Err(Error::invalid(format!(
                "node {i} has the invalid name '{}'",
                nd.name
            )));
        }
        if index.insert(&nd.name, i).is_some() {
            return Err(Error::invalid(format!("duplicate node name '{}'", nd.name)));
        }
    }
    let mut parsed: Vec<Vec<InputRef<'_>>> = Vec::with_capacity(gd.node.len());
    let mut deps: Vec<Vec<usize>> = Vec::with_capacity(gd.node.len());
    let mut referenced = vec![0usize; gd.node.len()];
    for nd in &gd.node {
        let mut refs = Vec::with_capacity(nd.input.len());
        let mut ds = Vec::with_capacity(nd.input.len());
        for s in &nd.input {
            let r =
                parse_input(s).map_err(|e| Error::invalid(format!("node '{}': {e}", nd.name)))?;
            let (InputRef::Data(src, _) | InputRef::Control(src)) = r;
            let &j = index.get(src).ok_or_else(|| {
                Error::invalid(format!(
                    "node '{}' has input '{s}', but there is no node named '{src}'",
                    nd.name
                ))
            })?;
            if let InputRef::Data(_, k) = r {
                if k as i64 >= MAX_LIST_OUTPUTS {
                    return Err(Error::invalid(format!(
                        "node '{}' reads output {k} of '{src}'; no op has that many outputs",
                        nd.name
                    )));
                }
                referenced[j] = referenced[j].max(k + 1);
            }
            refs.push(r);
            ds.push(j);
        }
        parsed.push(refs);
        deps.push(ds);
    }
    // A TF1 while loop's Merge reads its NextIteration, made after it: that back edge is
    // left out of the order and connected once every node exists.
    let is_back_edge =
        |i: usize, j: usize| gd.node[i].op == "Merge" && gd.node[j].op == "NextIteration";
    let forward: Vec<Vec<usize>> = deps
        .iter()
        .enumerate()
        .map(|(i, ds)| {
            ds.iter()
                .copied()
                .filter(|&j| !is_back_edge(i, j))
                .collect()
        })
        .collect();
    let order = topological_order(gd, &forward)?;
    let mut back_edges: Vec<(usize, usize, usize, usize)> = Vec::new();
    let op_defs: HashMap<&str, &tf::OpDef> = op_list
        .map(|l| l.op.iter().map(|o| (o.name.as_str(), o)).collect())
        .unwrap_or_default();

    let functions = Functions::import(gd, op_list, depth, import_at_depth);
    let mut g = Graph::new();
    let mut ids: Vec<Option<NodeId>> = vec![None; gd.node.len()];
    for i in order {
        let nd = &gd.node[i];
        let mut inputs = Vec::new();
        let mut control_inputs = Vec::new();
        for (r, &j) in parsed[i].iter().zip(&deps[i]) {
            if let (InputRef::Data(_, k), true) = (r, is_back_edge(i, j)) {
                back_edges.push((i, inputs.len(), j, *k));
                inputs.push(None);
                continue;
            }
            // Topological order: every producer was added before.
            let Some(id) = ids[j] else {
                return Err(Error::invalid(format!(
                    "node '{}' was not imported",
                    gd.node[j].name
                )));
            };
            match *r {
                InputRef::Control(_) => control_inputs.push(id),
                InputRef::Data(src, k) => {
                    let producer = g.node(id);
                    if k >= producer.outputs().len() {
                        return Err(Error::invalid(format!(
                            "node '{}' reads output {k} of '{src}' (op {}), which has {} outputs",
                            nd.name,
                            producer.op_type(),
                            producer.outputs().len()
                        )));
                    }
                    inputs.push(Some(id.output(k)));
                }
            }
        }
        // A back edge reads a stand-in (the Merge's first other input) until its
        // NextIteration exists.
        let stand_in = inputs.iter().flatten().next().copied();
        let inputs = inputs
            .into_iter()
            .map(|o| {
                o.or(stand_in).ok_or_else(|| {
                    Error::invalid(format!(
                        "Merge '{}' reads only NextIteration values; a loop's Merge also reads \
                         the value that enters the loop",
                        nd.name
                    ))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let req = NodeRequest {
            op_type: nd.op.clone(),
            name: Some(nd.name.clone()),
            exact_name: true,
            inputs,
            control_inputs,
            attrs: Attrs::new(),
            device: nd.device.clone(),
        };
        let supported = match functions.problem(nd) {
            Some((reason, signature)) => Err((reason, Some(signature))),
            None => supported_attrs(&g, nd, &req.inputs).map_err(|reason| (reason, None)),
        };
        let id = match supported {
            Ok((op, attrs)) => match g.add_node_with_op(
                op,
                NodeRequest {
                    attrs,
                    ..req.clone()
                },
            ) {
                Ok(id) => id,
                Err(Error::Build { msg, .. }) => add_unsupported(
                    &mut g,
                    nd,
                    req,
                    &format!("shape inference failed: {msg}"),
                    op_defs.get(nd.op.as_str()).copied(),
                    referenced[i],
                )?,
                Err(e) => return Err(e),
            },
            Err((reason, signature)) => add_unsupported(
                &mut g,
                nd,
                req,
                &reason,
                signature
                    .as_ref()
                    .or_else(|| op_defs.get(nd.op.as_str()).copied()),
                referenced[i],
            )?,
        };
        ids[i] = Some(id);
    }
    for (i, input, j, k) in back_edges {
        let (Some(merge), Some(next)) = (ids[i], ids[j]) else {
            continue;
        };
        if k >= g.node(next).outputs().len() {
            return Err(Error::invalid(format!(
                "node '{}' reads output {k} of NextIteration '{}', which has one output",
                gd.node[i].name, gd.node[j].name
            )));
        }
        g.connect_back_edge(merge, input, next.output(k))
            .map_err(|e| Error::invalid(format!("node '{}': {e}", gd.node[i].name)))?;
    }
    functions.add_to(&mut g);
    Ok(g)
}

/// The node's op and attrs when rustflow can run it; otherwise why not.
fn supported_attrs(
    g: &Graph,
    nd: &tf::NodeDef,
    inputs: &[Output],
) -> std::result::Result<(&'static dyn OpDef, Attrs), String> {
    let op = compat::lookup(&nd.op).ok_or_else(|| "op type not registered".to_string())?;
    for (j, &o) in inputs.iter().enumerate() {
        if is_unsupported(g.node(o.node)) {
            let t = tf_output_dtype(g, o);
            if t == 0 || DType::from_tf_enum(t).is_none() {
                return Err(format!(
                    "input {j} ('{}') has dtype {}, which rustflow does not support",
                    input_name(g, o),
                    if t == 0 {
                        "unknown".into()
                    } else {
                        dtype_name(t)
                    }
                ));
            }
        }
    }
    let defaults = op.default_attrs();
    nd.attr
        .iter()
        .map(|(k, v)| {
            let hint = defaults.iter().find(|(d, _)| d == k).map(|(_, v)| v);
            attr_from_proto(v, hint)
                .map(|v| (k.clone(), v))
                .map_err(|e| format!("attr '{k}': {e}"))
        })
        .collect::<std::result::Result<Attrs, String>>()
        .map(|attrs| (op, attrs))
}

fn add_unsupported(
    g: &mut Graph,
    nd: &tf::NodeDef,
    req: NodeRequest,
    reason: &str,
    op_def: Option<&tf::OpDef>,
    referenced: usize,
) -> Result<NodeId> {
    let recorded_shapes: Option<Vec<PartialShape>> = match nd.attr.get("_output_shapes") {
        Some(tf::AttrValue {
            value: Some(tf::attr_value::Value::List(l)),
        }) => l.shape.iter().map(|s| shape_from_proto(s).ok()).collect(),
        _ => None,
    };
    let mut types = op_def
        .and_then(|d| output_types_from_op_def(nd, d))
        .unwrap_or_else(|| {
            let count = referenced.max(recorded_shapes.as_ref().map_or(0, Vec::len));
            guess_output_types(nd, count)
        });
    if types.len() < referenced {
        types.resize(referenced, 0);
    }
    let shapes = recorded_shapes.filter(|s| s.len() == types.len());
    let req = NodeRequest {
        attrs: unsupported_attrs(reason, nd, &types, shapes),
        ..req
    };
    g.add_node_with_op(unsupported_op(&nd.op), req)
}

/// An attr of the node, or the op's default for it.
fn attr_or_default<'a>(
    nd: &'a tf::NodeDef,
    def: &'a tf::OpDef,
    name: &str,
) -> Option<&'a tf::attr_value::Value> {
    nd.attr
        .get(name)
        .or_else(|| {
            def.attr
                .iter()
                .find(|a| a.name == name)
                .and_then(|a| a.default_value.as_ref())
        })
        .and_then(|v| v.value.as_ref())
}

/// Output dtypes from the op's signature; `None` when an attr it needs is missing.
fn output_types_from_op_def(nd: &tf::NodeDef, def: &tf::OpDef) -> Option<Vec<i32>> {
    use tf::attr_value::Value;
    let mut types = Vec::new();
    for arg in &def.output_arg {
        let one = if arg.r#type != 0 {
            Some(arg.r#type)
        } else if !arg.type_attr.is_empty() {
            match attr_or_default(nd, def, &arg.type_attr)? {
                Value::Type(t) => Some(*t),
                _ => return None,
            }
        } else {
            None
        };
        if let Some(t) = one {
            let count = if arg.number_attr.is_empty() {
                1
            } else {
                match attr_or_default(nd, def, &arg.number_attr)? {
                    Value::I(n) if (0..=MAX_LIST_OUTPUTS).contains(n) => *n as usize,
                    _ => return None,
                }
            };
            types.extend(std::iter::repeat_n(t, count));
        } else if !arg.type_list_attr.is_empty() {
            match attr_or_default(nd, def, &arg.type_list_attr)? {
                Value::List(l) => types.extend(l.r#type.iter().copied()),
                _ => return None,
            }
        } else {
            return None;
        }
    }
    Some(types)
}

/// Without a signature: `count` outputs of unknown dtype, or one of the `dtype`/`T` attr's.
fn guess_output_types(nd: &tf::NodeDef, count: usize) -> Vec<i32> {
    let typed = ["dtype", "T"].iter().find_map(|k| match nd.attr.get(*k) {
        Some(tf::AttrValue {
            value: Some(tf::attr_value::Value::Type(t)),
        }) => Some(*t),
        _ => None,
    });
    match typed {
        Some(t) if count <= 1 => vec![t],
        _ => vec![0; count],
    }
}

#[cfg(test)]
mod tests {
    use super::super::attr::attr_to_proto;
    use super::super::unsupported::unsupported_node;
    use super::*;
    use crate::graph::AttrValue;
    use crate::{Session, Tensor};

    fn node(name: &str, op: &str, inputs: &[&str], attrs: &[(&str, AttrValue)]) -> tf::NodeDef {
        tf::NodeDef {
            name: name.into(),
            op: op.into(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            device: String::new(),
            attr: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), attr_to_proto(v)))
                .collect(),
        }
    }

    fn f32_const(name: &str, v: f32) -> tf::NodeDef {
        node(
            name,
            "Const",
            &[],
            &[
                ("dtype", AttrValue::Type(DType::Float32)),
                ("value", AttrValue::Tensor(Tensor::scalar(v))),
            ],
        )
    }

    fn add(name: &str, a: &str, b: &str) -> tf::NodeDef {
        node(
            name,
            "AddV2",
            &[a, b],
            &[("T", AttrValue::Type(DType::Float32))],
        )
    }

    fn gd(nodes: Vec<tf::NodeDef>) -> tf::GraphDef {
        tf::GraphDef {
            node: nodes,
            ..Default::default()
        }
    }

    #[test]
    fn nodes_in_any_order_import_and_run() {
        let g = import_graph_def(
            &gd(vec![
                add("sum", "a", "b"),
                node("grouped", "NoOp", &["^sum", "^a"], &[]),
                f32_const("b", 2.0),
                f32_const("a", 1.5),
            ]),
            None,
        )
        .unwrap();
        let out = Session::new(&g)
            .run_by_name(&[], &["sum:0"], &["grouped"])
            .unwrap();
        assert_eq!(out[0].as_slice::<f32>().unwrap(), &[3.5]);
        // Re-export is topological with control inputs last.
        let back = graph_to_proto(&g);
        let names: Vec<&str> = back.node.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["b", "a", "sum", "grouped"]);
        assert_eq!(back.node[3].input, ["^sum", "^a"]);
        assert_eq!(back.versions.unwrap().producer, PRODUCER);
    }

    #[test]
    fn structural_errors_are_clear() {
        let err = |nodes| import_graph_def(&gd(nodes), None).unwrap_err().to_string();
        let e = err(vec![
            add("x", "y", "a"),
            add("y", "x", "a"),
            f32_const("a", 1.0),
        ]);
        assert!(
            e.contains("cycle") && e.contains('x') && e.contains('y'),
            "{e}"
        );
        let e = err(vec![add("x", "nope", "nope")]);
        assert!(e.contains("no node named 'nope'"), "{e}");
        let e = err(vec![f32_const("a", 1.0), f32_const("a", 2.0)]);
        assert!(e.contains("duplicate node name 'a'"), "{e}");
        let e = err(vec![f32_const("a", 1.0), add("x", "a:3", "a")]);
        assert!(e.contains("output 3") && e.contains("1 outputs"), "{e}");
        let e = err(vec![
            f32_const("a", 1.0),
            add("x", "a:99999999999999999999999", "a"),
        ]);
        assert!(e.contains("bad output index"), "{e}");
        let mut g = gd(vec![]);
        g.versions = Some(tf::VersionDef {
            min_consumer: PRODUCER + 1,
            ..Default::default()
        });
        assert!(import_graph_def(&g, None).is_err());
    }

    #[test]
    fn unknown_ops_load_and_fail_only_when_run() {
        let mut parse = node(
            "parse",
            "ParseSequenceExampleV2",
            &["serialized"],
            &[("Ndense", AttrValue::Int(1))],
        );
        parse.attr.insert(
            "Tdense".into(),
            tf::AttrValue {
                value: Some(tf::attr_value::Value::List(tf::attr_value::ListValue {
                    r#type: vec![1],
                    ..Default::default()
                })),
            },
        );
        let mut serialized = node("serialized", "Placeholder", &[], &[]);
        serialized.attr.insert(
            "dtype".into(),
            tf::AttrValue {
                value: Some(tf::attr_value::Value::Type(19)),
            },
        );
        let graph_def = gd(vec![
            serialized,
            parse,
            node(
                "x",
                "Identity",
                &["parse"],
                &[("T", AttrValue::Type(DType::Float32))],
            ),
            f32_const("a", 2.0),
            add("y", "a", "a"),
        ]);
        // ParseSequenceExampleV2's signature (an op rustflow lacks): its dense values' dtypes come
        // from Tdense.
        let op_list = tf::OpList {
            op: vec![tf::OpDef {
                name: "ParseSequenceExampleV2".into(),
                output_arg: vec![tf::op_def::ArgDef {
                    name: "dense_values".into(),
                    type_list_attr: "Tdense".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let g = import_graph_def(&graph_def, Some(&op_list)).unwrap();
        let x = g.output_by_name("x").unwrap();
        assert_eq!(g.dtype(x), DType::Float32);
        let serialized = g.node(g.node_by_name("serialized").unwrap());
        assert!(is_unsupported(serialized));
        assert_eq!(
            tf_output_dtype(&g, g.output_by_name("serialized").unwrap()),
            19
        );
        let sess = Session::new(&g);
        assert_eq!(
            sess.run_by_name(&[], &["y"], &[]).unwrap()[0]
                .as_slice::<f32>()
                .unwrap(),
            &[4.0]
        );
        let e = sess.run_by_name(&[], &["x"], &[]).unwrap_err().to_string();
        assert!(
            e.contains("'serialized' (op Placeholder)") && e.contains("DT_HALF"),
            "{e}"
        );
        let e = sess
            .run_by_name(&[("serialized", Tensor::scalar(0u8))], &["x"], &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("'parse' (op ParseSequenceExampleV2)") && e.contains("not registered"),
            "{e}"
        );
        // Unsupported nodes re-export exactly as they came.
        let back = graph_to_proto(&g);
        assert_eq!(back.node[0], graph_def.node[0]);
        assert_eq!(back.node[1], graph_def.node[1]);
        let again = graph_to_bytes(&import_graph_def(&back, Some(&op_list)).unwrap());
        assert_eq!(again, back.encode_to_vec());
    }

    #[test]
    fn consumers_of_unknown_dtypes_are_unsupported_too() {
        let g = import_graph_def(
            &gd(vec![
                node("mystery", "Mystery", &[], &[]),
                node(
                    "x",
                    "Identity",
                    &["mystery"],
                    &[("T", AttrValue::Type(DType::Float32))],
                ),
            ]),
            None,
        )
        .unwrap();
        let x = g.node(g.node_by_name("x").unwrap());
        let info = unsupported_node(x).unwrap();
        assert!(
            info.reason.contains("input 0 ('mystery')"),
            "{}",
            info.reason
        );
        assert_eq!(info.output_types, [1]);
    }

    #[test]
    fn unknown_fields_are_skipped() {
        let mut bytes =
            graph_to_bytes(&import_graph_def(&gd(vec![f32_const("a", 1.0)]), None).unwrap());
        // GraphDef field 5 (debug_info) and an unknown varint field 99.
        bytes.extend_from_slice(&[0x2a, 0x02, 0x08, 0x01, 0x98, 0x06, 0x07]);
        let g = import_graph_def(&parse_graph_def(&bytes).unwrap(), None).unwrap();
        assert_eq!(g.len(), 1);
        let e = import_graph_def(
            &gd(vec![
                f32_const("a", 1.0),
                node("m", "Mystery", &["a:70000"], &[]),
            ]),
            None,
        )
        .unwrap_err();
        assert!(e.to_string().contains("no op has that many outputs"), "{e}");
    }

    #[test]
    fn tf1_add_runs_as_addv2_and_keeps_its_op_type() {
        let graph_def = gd(vec![
            f32_const("a", 1.0),
            node(
                "y",
                "Add",
                &["a", "a"],
                &[("T", AttrValue::Type(DType::Float32))],
            ),
        ]);
        let g = import_graph_def(&graph_def, None).unwrap();
        let out = Session::new(&g).run_by_name(&[], &["y"], &[]).unwrap();
        assert_eq!(out[0].as_slice::<f32>().unwrap(), &[2.0]);
        assert_eq!(graph_to_proto(&g).node[1].op, "Add");
        assert!(!is_unsupported(g.node(g.node_by_name("y").unwrap())));
    }

    #[test]
    fn default_attrs_are_left_out() {
        let mut g = Graph::new();
        g.placeholder(DType::Float32, PartialShape::unknown(), "x")
            .unwrap();
        let nd = &graph_to_proto(&g).node[0];
        assert_eq!(nd.attr.keys().collect::<Vec<_>>(), ["dtype"]);
    }
}

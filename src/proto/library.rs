//! A `GraphDef`'s library functions as graphs, for functional control flow: every
//! function a `While`, `If` or `Case` node names (`cond`, `body`, `then_branch`,
//! `else_branch`, `branches`) becomes a [`Function`] of the imported graph. Its body is
//! built as a call of the function over one placeholder per argument, inlined (nested
//! calls too, see [`inline_functions`]) and imported like any graph, so a loop body
//! holding a loop gets functions of its own.
//!
//! Export ([`library_to_proto`]) writes each function back as a `FunctionDef`: the
//! argument placeholders as its signature, every other node (its import prefix
//! `function/` dropped) as the body, inputs as `node:out_arg:index`; the `IdentityN` that
//! import made of the returned values becomes the `ret` map again, so export → import →
//! export gives the same bytes.

use super::function::{inline_functions, output_arg};
use super::node::node_to_proto;
use super::tensor::shape_to_proto;
use super::tf;
use crate::graph::{AttrsExt, Function, Graph, Output};
use crate::{Error, Result};
use std::collections::BTreeMap;
use tf::attr_value::Value;

/// Control-flow ops and their attrs that name functions.
const CONTROL_FLOW: &[(&str, &[&str])] = &[
    ("While", &["cond", "body"]),
    ("StatelessWhile", &["cond", "body"]),
    ("If", &["then_branch", "else_branch"]),
    ("StatelessIf", &["then_branch", "else_branch"]),
    ("Case", &["branches"]),
    ("StatelessCase", &["branches"]),
];

/// How deeply functions may hold control flow calling functions: deeper is taken for
/// recursion, which cannot run.
pub const MAX_FUNCTION_DEPTH: usize = 32;

/// How a function body (a `GraphDef` nested `depth` functions deep) is imported: the
/// graph importer, handed in by it so that the two recurse without importing each other.
pub(super) type ImportFn = fn(&tf::GraphDef, Option<&tf::OpList>, usize) -> Result<Graph>;

/// Adds to `g` every function that the control-flow nodes of `gd` name, each body
/// imported by `import`.
pub(super) fn add_functions(
    g: &mut Graph,
    gd: &tf::GraphDef,
    op_list: Option<&tf::OpList>,
    depth: usize,
    import: ImportFn,
) -> Result<()> {
    for nd in &gd.node {
        let Some((_, attrs)) = CONTROL_FLOW.iter().find(|(op, _)| *op == nd.op) else {
            continue;
        };
        for &attr in *attrs {
            let names: Vec<&str> = match nd.attr.get(attr).and_then(|v| v.value.as_ref()) {
                Some(Value::Func(f)) => vec![f.name.as_str()],
                Some(Value::List(l)) => l.func.iter().map(|f| f.name.as_str()).collect(),
                _ => {
                    return Err(Error::invalid(format!(
                        "node '{}' ({}) has no function attr '{attr}'",
                        nd.name, nd.op
                    )))
                }
            };
            for name in names {
                if g.function(name).is_some() {
                    continue;
                }
                let f = function_graph(gd, name, op_list, depth, import).map_err(|e| {
                    Error::invalid(format!("node '{}' ({}) attr '{attr}': {e}", nd.name, nd.op))
                })?;
                g.add_function(f);
            }
        }
    }
    Ok(())
}

fn attr(v: Value) -> tf::AttrValue {
    tf::AttrValue { value: Some(v) }
}

/// The graph of library function `name`: a placeholder per argument (its recorded
/// `_output_shapes`, else an unknown shape), the body inlined, the returned values as
/// outputs of an `IdentityN` named after the function.
fn function_graph(
    gd: &tf::GraphDef,
    name: &str,
    op_list: Option<&tf::OpList>,
    depth: usize,
    import: ImportFn,
) -> Result<Function> {
    if depth >= MAX_FUNCTION_DEPTH {
        return Err(Error::invalid(format!(
            "functions hold control flow more than {MAX_FUNCTION_DEPTH} deep at function \
             '{name}'; a function that runs itself (recursion) is not supported"
        )));
    }
    let f = gd
        .library
        .iter()
        .flat_map(|l| &l.function)
        .find(|f| f.signature.as_ref().is_some_and(|s| s.name == name))
        .ok_or_else(|| {
            Error::NotFound(format!(
                "function '{name}' is not in the graph's function library"
            ))
        })?;
    let sig = f.signature.as_ref().expect("found by its signature");
    let mut nodes = Vec::with_capacity(sig.input_arg.len() + 1);
    for (i, arg) in sig.input_arg.iter().enumerate() {
        if arg.r#type == 0 {
            return Err(Error::invalid(format!(
                "argument '{}' of function '{name}' has no fixed dtype; only functions with \
                 typed arguments can be run",
                arg.name
            )));
        }
        let shape = u32::try_from(i)
            .ok()
            .and_then(|i| f.arg_attr.get(&i))
            .and_then(|a| a.attr.get("_output_shapes"))
            .and_then(|v| match &v.value {
                Some(Value::List(l)) => l.shape.first().cloned(),
                _ => None,
            })
            .unwrap_or(tf::TensorShapeProto {
                unknown_rank: true,
                ..Default::default()
            });
        nodes.push(tf::NodeDef {
            name: arg.name.clone(),
            op: "Placeholder".into(),
            attr: [
                ("dtype".to_string(), attr(Value::Type(arg.r#type))),
                ("shape".to_string(), attr(Value::Shape(shape))),
            ]
            .into(),
            ..Default::default()
        });
    }
    if nodes.iter().any(|n| n.name == name) {
        return Err(Error::invalid(format!(
            "function '{name}' has an argument named like itself"
        )));
    }
    nodes.push(tf::NodeDef {
        name: name.to_string(),
        op: "StatefulPartitionedCall".into(),
        input: sig.input_arg.iter().map(|a| a.name.clone()).collect(),
        attr: [(
            "f".to_string(),
            attr(Value::Func(tf::NameAttrList {
                name: name.to_string(),
                attr: Default::default(),
            })),
        )]
        .into(),
        ..Default::default()
    });
    let call = tf::GraphDef {
        node: nodes,
        library: gd.library.clone(),
        version: gd.version,
        versions: gd.versions.clone(),
    };
    let flat = inline_functions(&call, op_list, &[])?;
    let graph = import(&flat, op_list, depth + 1)?;
    let node = |n: &str| {
        graph
            .node_by_name(n)
            .ok_or_else(|| Error::invalid(format!("function '{name}' lost node '{n}'")))
    };
    let args = sig
        .input_arg
        .iter()
        .map(|a| node(&a.name).map(|id| id.output(0)))
        .collect::<Result<_>>()?;
    let call = node(name)?;
    let rets = (0..sig.output_arg.len()).map(|i| call.output(i)).collect();
    Ok(Function {
        name: name.to_string(),
        graph,
        args,
        rets,
        targets: vec![call],
    })
}

/// The library of every function `g` holds (nested ones too), or `None` when it has none.
pub(super) fn library_to_proto(g: &Graph) -> Option<tf::FunctionDefLibrary> {
    let mut functions = BTreeMap::new();
    collect(g, &mut functions);
    (!functions.is_empty()).then(|| tf::FunctionDefLibrary {
        function: functions.into_values().collect(),
    })
}

fn collect(g: &Graph, out: &mut BTreeMap<String, tf::FunctionDef>) {
    for f in g.functions() {
        if !out.contains_key(&f.name) {
            out.insert(f.name.clone(), function_to_proto(f));
            collect(&f.graph, out);
        }
    }
}

fn function_to_proto(f: &Function) -> tf::FunctionDef {
    let g = &f.graph;
    let prefix = format!("{}/", f.name);
    let local = |id: crate::graph::NodeId| -> String {
        let name = g.node(id).name();
        name.strip_prefix(&prefix).unwrap_or(name).to_string()
    };
    let is_arg = |o: Output| f.args.iter().any(|a| a.node == o.node);
    // The node import made of the returned values (named after the function).
    let call = g
        .node_by_name(&f.name)
        .filter(|&id| matches!(g.node(id).op_type(), "IdentityN" | "NoOp"));
    let reference = |o: Output| -> String {
        if is_arg(o) {
            return local(o.node);
        }
        let (arg, k) = output_arg(g.node(o.node).op_type(), o.index);
        format!("{}:{arg}:{k}", local(o.node))
    };
    let returned = |o: Output| -> Output {
        match call {
            Some(c) if o.node == c => g.node(c).inputs()[o.index],
            _ => o,
        }
    };
    let mut signature = tf::OpDef {
        name: f.name.clone(),
        ..Default::default()
    };
    let mut arg_attr = BTreeMap::new();
    for (i, &a) in f.args.iter().enumerate() {
        signature.input_arg.push(tf::op_def::ArgDef {
            name: local(a.node),
            r#type: g.dtype(a).to_tf_enum(),
            ..Default::default()
        });
        let shape = g
            .node(a.node)
            .attrs()
            .shape_or_unknown("shape")
            .unwrap_or_default();
        let shapes = tf::attr_value::ListValue {
            shape: vec![shape_to_proto(&shape)],
            ..Default::default()
        };
        arg_attr.insert(
            i as u32,
            tf::function_def::ArgAttrs {
                attr: [("_output_shapes".to_string(), attr(Value::List(shapes)))].into(),
            },
        );
    }
    let mut ret = BTreeMap::new();
    for (i, &r) in f.rets.iter().enumerate() {
        let name = format!("output_{i}");
        signature.output_arg.push(tf::op_def::ArgDef {
            name: name.clone(),
            r#type: g.dtype(r).to_tf_enum(),
            ..Default::default()
        });
        ret.insert(name, reference(returned(r)));
    }
    let mut control_ret = BTreeMap::new();
    let controls = match call {
        Some(c) => g.node(c).control_inputs().to_vec(),
        None => f.targets.clone(),
    };
    for c in controls {
        let name = local(c);
        signature.control_output.push(name.clone());
        control_ret.insert(name.clone(), name);
    }
    let node_def = g
        .nodes()
        .filter(|&(id, _)| Some(id) != call && !f.args.iter().any(|a| a.node == id))
        .map(|(id, n)| {
            let mut nd = node_to_proto(g, n);
            nd.name = local(id);
            nd.input = n.inputs().iter().map(|&o| reference(o)).collect();
            nd.input
                .extend(n.control_inputs().iter().map(|&c| format!("^{}", local(c))));
            nd
        })
        .collect();
    tf::FunctionDef {
        signature: Some(signature),
        node_def,
        ret,
        control_ret,
        arg_attr,
        ..Default::default()
    }
}

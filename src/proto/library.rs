//! A `GraphDef`'s library functions as graphs, for functional control flow: every
//! function a `While`, `If` or `Case` node names (`cond`, `body`, `then_branch`,
//! `else_branch`, `branches`) becomes a [`Function`] of the imported graph. Its body is
//! built as a call of the function over one placeholder per argument, inlined (nested
//! calls too, see [`inline_functions`]) and imported like any graph, so a loop body
//! holding a loop gets functions of its own.
//!
//! A function that is missing or cannot be imported fails only the nodes that run it, when
//! a plan needs them (TensorFlow too checks a function when a node calling it runs).
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

/// Control-flow ops, their attrs that name functions and the attr listing their output
/// dtypes.
const CONTROL_FLOW: &[(&str, &[&str], &str)] = &[
    ("While", &["cond", "body"], "T"),
    ("StatelessWhile", &["cond", "body"], "T"),
    ("If", &["then_branch", "else_branch"], "Tout"),
    ("StatelessIf", &["then_branch", "else_branch"], "Tout"),
    ("Case", &["branches"], "Tout"),
    ("StatelessCase", &["branches"], "Tout"),
    ("_WhileGrad", &["cond", "body", "body_grad"], "Tgrad"),
];

/// How deeply functions may hold control flow calling functions: deeper is taken for
/// recursion, which cannot run.
pub const MAX_FUNCTION_DEPTH: usize = 32;

/// How a function body (a `GraphDef` nested `depth` functions deep) is imported: the
/// graph importer, handed in by it so that the two recurse without importing each other.
pub(super) type ImportFn = fn(&tf::GraphDef, Option<&tf::OpList>, usize) -> Result<Graph>;

/// The functions the control-flow nodes of a `GraphDef` name, each imported once. A
/// function that is missing or cannot be imported is kept as the reason: as in
/// TensorFlow, only a node that runs it fails (the importer makes such a node an
/// unsupported one, whose error names it when a plan needs it).
pub(super) struct Functions {
    imported: BTreeMap<String, Function>,
    failed: BTreeMap<String, String>,
}

impl Functions {
    /// Imports (by `import`) every function that the control-flow nodes of `gd` name.
    pub(super) fn import(
        gd: &tf::GraphDef,
        op_list: Option<&tf::OpList>,
        depth: usize,
        import: ImportFn,
    ) -> Self {
        let mut functions = Functions {
            imported: BTreeMap::new(),
            failed: BTreeMap::new(),
        };
        for nd in &gd.node {
            for (_, names) in named_functions(nd).into_iter().flatten() {
                for name in names.into_iter().flatten() {
                    if functions.imported.contains_key(name) || functions.failed.contains_key(name)
                    {
                        continue;
                    }
                    match function_graph(gd, name, op_list, depth, import) {
                        Ok(f) => {
                            functions.imported.insert(name.to_string(), f);
                        }
                        Err(e) => {
                            functions.failed.insert(name.to_string(), e.to_string());
                        }
                    }
                }
            }
        }
        functions
    }

    /// Why control-flow node `nd` cannot run (a function attr missing, a function missing
    /// or invalid), with the signature its unsupported node keeps; `None` for any other
    /// node, or when its functions were imported.
    pub(super) fn problem(&self, nd: &tf::NodeDef) -> Option<(String, tf::OpDef)> {
        let attrs = named_functions(nd)?;
        let reason = attrs.into_iter().find_map(|(attr, names)| {
            names.into_iter().find_map(|name| match name {
                None => Some(format!("it has no function attr '{attr}'")),
                Some(name) => self
                    .failed
                    .get(name)
                    .map(|e| format!("attr '{attr}' names function '{name}': {e}")),
            })
        })?;
        let &(_, _, types) = CONTROL_FLOW.iter().find(|(op, ..)| *op == nd.op)?;
        let signature = tf::OpDef {
            name: nd.op.clone(),
            output_arg: vec![tf::op_def::ArgDef {
                name: "output".into(),
                type_list_attr: types.into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        Some((reason, signature))
    }

    /// Adds the imported functions to `g`.
    pub(super) fn add_to(self, g: &mut Graph) {
        self.imported.into_values().for_each(|f| g.add_function(f));
    }
}

/// A function-naming attr and the names it holds (`None` where the attr is missing or not
/// a function).
type NamedFunctions<'a> = (&'static str, Vec<Option<&'a str>>);

/// The function-naming attrs of a control-flow node; `None` for any other node.
fn named_functions(nd: &tf::NodeDef) -> Option<Vec<NamedFunctions<'_>>> {
    let (_, attrs, _) = CONTROL_FLOW.iter().find(|(op, ..)| *op == nd.op)?;
    Some(
        attrs
            .iter()
            .map(|&attr| {
                let names = match nd.attr.get(attr).and_then(|v| v.value.as_ref()) {
                    Some(Value::Func(f)) => vec![Some(f.name.as_str())],
                    Some(Value::List(l)) => l.func.iter().map(|f| Some(f.name.as_str())).collect(),
                    _ => vec![None],
                };
                (attr, names)
            })
            .collect(),
    )
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

#[cfg(test)]
mod tests {
    use super::super::{graph_to_proto, import_graph_def};
    use super::tf;
    use crate::graph::{AttrValue, Graph, TensorSpec};
    use crate::tensor::{DType, PartialShape, Tensor};
    use crate::Session;

    /// A graph holding `y = x + x` and a loop `w` (body "body" adding one to its value
    /// until it reaches 3), as a `GraphDef`.
    fn graph_with_loop() -> tf::GraphDef {
        let mut g = Graph::new();
        let spec = [TensorSpec::new(DType::Int32, PartialShape::known(&[]))];
        g.define_function("cond", &spec, |g, a| {
            let three = g.constant(3i32)?;
            Ok(vec![g.less(a[0], three)?])
        })
        .unwrap();
        g.define_function("body", &spec, |g, a| {
            let one = g.constant(1i32)?;
            Ok(vec![g.add(a[0], one)?])
        })
        .unwrap();
        let x = g.constant(2i32).unwrap();
        let y = g.add(x, x).unwrap();
        let int = DType::Int32;
        g.op("Identity")
            .input(y)
            .attr("T", int)
            .name("y")
            .build()
            .unwrap();
        g.op("While")
            .input(x)
            .attr("T", vec![int])
            .attr("cond", AttrValue::Func("cond".into()))
            .attr("body", AttrValue::Func("body".into()))
            .name("w")
            .build()
            .unwrap();
        graph_to_proto(&g)
    }

    /// Function "body" of `gd`.
    fn body(gd: &mut tf::GraphDef) -> &mut tf::FunctionDef {
        let lib = gd.library.as_mut().unwrap();
        lib.function
            .iter_mut()
            .find(|f| f.signature.as_ref().unwrap().name == "body")
            .unwrap()
    }

    /// The loop graph with function "body" edited.
    fn edited(edit: impl Fn(&mut tf::FunctionDef)) -> tf::GraphDef {
        let mut gd = graph_with_loop();
        edit(body(&mut gd));
        gd
    }

    /// Imports `gd`, checks that `y` still runs and returns the error of running `w`.
    fn loop_error(gd: &tf::GraphDef) -> String {
        let g = import_graph_def(gd, None).unwrap();
        let s = Session::new(&g);
        let y = s.run_by_name(&[], &["y"], &[]).unwrap();
        assert_eq!(y[0].scalar_value::<i32>().unwrap(), 4);
        s.run_by_name(&[], &["w"], &[]).unwrap_err().to_string()
    }

    /// Function bodies name outputs by TensorFlow's output arguments (`AddV2:z:0`), as
    /// TensorFlow's importer needs them.
    #[test]
    fn exported_bodies_use_tensorflows_output_names() {
        let mut gd = graph_with_loop();
        let body = body(&mut gd);
        assert_eq!(body.ret["output_0"], "AddV2:z:0");
        let add = body.node_def.iter().find(|n| n.op == "AddV2").unwrap();
        assert_eq!(add.input[1], "Const:output:0");
    }

    #[test]
    fn an_intact_loop_imports_and_runs() {
        let g = import_graph_def(&graph_with_loop(), None).unwrap();
        let w = Session::new(&g).run_by_name(&[], &["w"], &[]).unwrap();
        assert_eq!(w[0], Tensor::scalar(3i32));
    }

    #[test]
    fn a_missing_function_fails_only_the_node_that_runs_it() {
        let e = loop_error(&edited(|f| {
            f.signature.as_mut().unwrap().name = "renamed".into()
        }));
        assert!(
            e.contains("'w'")
                && e.contains("While")
                && e.contains("'body'")
                && e.contains("not in the graph's function library"),
            "{e}"
        );
    }

    #[test]
    fn an_invalid_function_fails_only_the_node_that_runs_it() {
        let e = loop_error(&edited(|f| {
            f.signature.as_mut().unwrap().input_arg[0].r#type = 0
        }));
        assert!(
            e.contains("'w'") && e.contains("'body'") && e.contains("no fixed dtype"),
            "{e}"
        );
    }

    #[test]
    fn a_loop_without_its_function_attr_fails_when_run() {
        let mut gd = graph_with_loop();
        let w = gd.node.iter_mut().find(|n| n.name == "w").unwrap();
        w.attr.remove("body");
        let e = loop_error(&gd);
        assert!(
            e.contains("'w'") && e.contains("no function attr 'body'"),
            "{e}"
        );
    }

    #[test]
    fn a_function_running_itself_fails_when_run() {
        // The body holds a loop whose body is the body itself.
        let mut gd = graph_with_loop();
        let w = gd.node.iter().find(|n| n.name == "w").unwrap().clone();
        let body = body(&mut gd);
        let arg = body.signature.as_ref().unwrap().input_arg[0].name.clone();
        body.node_def.push(tf::NodeDef {
            name: "again".into(),
            input: vec![arg],
            ..w
        });
        body.ret.insert("output_0".into(), "again:output:0".into());
        let e = loop_error(&gd);
        assert!(e.contains("'body'") && e.contains("recursion"), "{e}");
    }
}

//! Function inlining: TensorFlow 2 graphs call `tf.function` bodies kept in the graph's
//! `FunctionDefLibrary` through `StatefulPartitionedCall` / `PartitionedCall` nodes (or a
//! node whose op is the function's name). [`inline_functions`] replaces each such call that
//! the wanted nodes need by the function's body, nested calls included, so the graph that
//! is imported is one flat dataflow graph with no per-call overhead.
//!
//! A call node `c` calling `f` becomes:
//! * every node `n` of `f`'s body, named `c/n`, its inputs mapped to graph inputs: an
//!   argument name to the call's matching input, `node:out_arg:index` to the flat output
//!   index of `c/node` (from the op's `OpDef`: list outputs count by their attrs), `^node`
//!   to `^c/node`; attr placeholders are substituted from the call's function attrs;
//! * an `IdentityN` named `c` over the function's return values (a `NoOp` when it returns
//!   none), with control inputs on its `control_ret` nodes, so `c:i` and `^c` keep their
//!   meaning for the call's consumers;
//! * the call's control inputs are added to every body node that has no input from the
//!   body (and to the `IdentityN`), so nothing of the function starts before them.
//!
//! Functions that nothing wanted calls are not read; `While`/`If` bodies stay in the
//! library.

use super::tf;
use crate::{Error, Result};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

/// Most nodes inlining may produce (calls of calls can multiply a graph).
pub const MAX_INLINED_NODES: usize = 1 << 21;

type Attrs = BTreeMap<String, tf::AttrValue>;

/// The graph with every function call that the nodes `roots` depend on inlined (all
/// calls when `roots` is empty). `op_list` (a MetaGraphDef's `stripped_op_list`) gives
/// the output arguments of the ops used in function bodies.
pub fn inline_functions(
    gd: &tf::GraphDef,
    op_list: Option<&tf::OpList>,
    roots: &[&str],
) -> Result<tf::GraphDef> {
    let empty = tf::FunctionDefLibrary::default();
    let library = gd.library.as_ref().unwrap_or(&empty);
    let inliner = Inliner {
        functions: library
            .function
            .iter()
            .filter_map(|f| Some((f.signature.as_ref()?.name.as_str(), f)))
            .collect(),
        ops: op_list
            .map(|l| l.op.iter().map(|o| (o.name.as_str(), o)).collect())
            .unwrap_or_default(),
    };
    let wanted = needed(gd, roots);
    // Nodes not needed (calls included) stay as they are.
    let (mut out, mut work): (Vec<tf::NodeDef>, VecDeque<(tf::NodeDef, Vec<String>)>) =
        (Vec::new(), VecDeque::new());
    for n in &gd.node {
        if wanted.as_ref().is_none_or(|w| w.contains(n.name.as_str())) {
            work.push_back((n.clone(), Vec::new()));
        } else {
            out.push(n.clone());
        }
    }
    while let Some((node, chain)) = work.pop_front() {
        if out.len() + work.len() > MAX_INLINED_NODES {
            return Err(Error::invalid(format!(
                "inlining the graph's function calls makes more than {MAX_INLINED_NODES} \
                 nodes (at node '{}')",
                node.name
            )));
        }
        match inliner.call_target(&node)? {
            Some((name, attrs)) => {
                let (body, call) = inliner.expand(&node, name, attrs, &chain)?;
                let mut chain = chain;
                chain.push(name.to_string());
                work.extend(body.into_iter().map(|n| (n, chain.clone())));
                out.push(call);
            }
            None => out.push(node),
        }
    }
    Ok(tf::GraphDef {
        node: out,
        library: gd.library.clone(),
        version: gd.version,
        versions: gd.versions.clone(),
    })
}

/// The names of the nodes `roots` depend on (through data and control inputs); `None`
/// (everything) when `roots` is empty.
fn needed<'a>(gd: &'a tf::GraphDef, roots: &[&'a str]) -> Option<HashSet<&'a str>> {
    if roots.is_empty() {
        return None;
    }
    let by_name: HashMap<&str, &tf::NodeDef> =
        gd.node.iter().map(|n| (n.name.as_str(), n)).collect();
    let mut seen = HashSet::new();
    let mut stack: Vec<&str> = roots.iter().map(|r| node_of(r)).collect();
    while let Some(name) = stack.pop() {
        if !seen.insert(name) {
            continue;
        }
        if let Some(n) = by_name.get(name) {
            stack.extend(n.input.iter().map(|i| node_of(i)));
        }
    }
    Some(seen)
}

/// The node an input string (`^n`, `n`, `n:1`) names.
fn node_of(input: &str) -> &str {
    let s = input.strip_prefix('^').unwrap_or(input);
    s.split(':').next().unwrap_or(s)
}

struct Inliner<'a> {
    functions: HashMap<&'a str, &'a tf::FunctionDef>,
    ops: HashMap<&'a str, &'a tf::OpDef>,
}

impl<'a> Inliner<'a> {
    /// The function a node calls and the attrs it calls it with.
    fn call_target<'n>(&self, node: &'n tf::NodeDef) -> Result<Option<(&'n str, &'n Attrs)>> {
        if matches!(
            node.op.as_str(),
            "StatefulPartitionedCall" | "PartitionedCall"
        ) {
            return match node.attr.get("f").and_then(|a| a.value.as_ref()) {
                Some(tf::attr_value::Value::Func(f)) => Ok(Some((f.name.as_str(), &f.attr))),
                _ => Err(Error::invalid(format!(
                    "node '{}' ({}) has no function attr 'f'",
                    node.name, node.op
                ))),
            };
        }
        Ok(self
            .functions
            .contains_key(node.op.as_str())
            .then_some((node.op.as_str(), &node.attr)))
    }

    /// The OpDef of a body node's op: the op list's, or a library function's signature.
    fn op_def(&self, op: &str) -> Option<&'a tf::OpDef> {
        self.ops
            .get(op)
            .copied()
            .or_else(|| self.functions.get(op).and_then(|f| f.signature.as_ref()))
    }

    /// The body nodes of `call` (renamed, inputs mapped) and the node replacing `call`.
    fn expand(
        &self,
        call: &tf::NodeDef,
        name: &str,
        attrs: &Attrs,
        chain: &[String],
    ) -> Result<(Vec<tf::NodeDef>, tf::NodeDef)> {
        let at = |msg: String| Error::invalid(format!("node '{}' calls {msg}", call.name));
        if chain.iter().any(|c| c == name) {
            let path: Vec<&str> = chain.iter().map(String::as_str).chain([name]).collect();
            return Err(at(format!(
                "function '{name}', which calls itself ({}); recursive functions cannot be \
                 inlined",
                path.join(" -> ")
            )));
        }
        let f = self.functions.get(name).ok_or_else(|| {
            Error::NotFound(format!(
                "node '{}' calls function '{name}', which is not in the graph's function \
                 library",
                call.name
            ))
        })?;
        let sig = f
            .signature
            .as_ref()
            .ok_or_else(|| at(format!("function '{name}', which has no signature")))?;
        let in_fn = |msg: String| {
            Error::invalid(format!(
                "function '{name}' (called by node '{}'): {msg}",
                call.name
            ))
        };
        let (data, control): (Vec<&String>, Vec<&String>) =
            call.input.iter().partition(|i| !i.starts_with('^'));
        // Argument name -> the call's inputs that feed it.
        let mut args: HashMap<&str, &[&String]> = HashMap::new();
        let mut at_input = 0;
        for arg in &sig.input_arg {
            let n = arg_len(arg, attrs).map_err(&in_fn)?;
            let Some(slice) = data.get(at_input..at_input + n) else {
                return Err(in_fn(format!(
                    "it takes more inputs than the call's {} (argument '{}')",
                    data.len(),
                    arg.name
                )));
            };
            args.insert(arg.name.as_str(), slice);
            at_input += n;
        }
        if at_input != data.len() {
            return Err(in_fn(format!(
                "it takes {at_input} inputs but the call passes {}",
                data.len()
            )));
        }
        let body: HashMap<&str, &tf::NodeDef> =
            f.node_def.iter().map(|n| (n.name.as_str(), n)).collect();
        let prefix = &call.name;
        let resolve = |r: &str, user: &str| -> Result<String> {
            let bad = || {
                in_fn(format!(
                    "node '{user}' has input '{r}', which names neither an argument nor an \
                     output of a node of the function"
                ))
            };
            if let Some(n) = r.strip_prefix('^') {
                if body.contains_key(n) {
                    return Ok(format!("^{prefix}/{n}"));
                }
                let inputs = args.get(n).ok_or_else(bad)?;
                return Ok(inputs
                    .first()
                    .map(|i| format!("^{}", node_of(i)))
                    .unwrap_or_default());
            }
            let parts: Vec<&str> = r.split(':').collect();
            if let Some(inputs) = args.get(parts[0]) {
                let k = match parts.as_slice() {
                    [_] => 0,
                    [_, k] => k.parse::<usize>().map_err(|_| bad())?,
                    _ => return Err(bad()),
                };
                return inputs.get(k).map(|s| s.to_string()).ok_or_else(bad);
            }
            let [node, out_arg, k] = parts.as_slice() else {
                return Err(bad());
            };
            let nd = body.get(node).ok_or_else(bad)?;
            let k: usize = k.parse().map_err(|_| bad())?;
            let flat = self.output_index(nd, out_arg, k, attrs).map_err(&in_fn)?;
            Ok(if flat == 0 {
                format!("{prefix}/{node}")
            } else {
                format!("{prefix}/{node}:{flat}")
            })
        };
        let mut nodes = Vec::with_capacity(f.node_def.len());
        for nd in &f.node_def {
            let mut new = nd.clone();
            new.name = format!("{prefix}/{}", nd.name);
            new.input = nd
                .input
                .iter()
                .map(|i| resolve(i, &nd.name))
                .filter(|r| r.as_ref().map_or(true, |s| !s.is_empty()))
                .collect::<Result<_>>()?;
            let from_body = nd.input.iter().any(|i| match i.strip_prefix('^') {
                Some(n) => body.contains_key(n),
                None => !args.contains_key(node_of(i)),
            });
            if !from_body {
                new.input.extend(control.iter().map(|c| c.to_string()));
            }
            for v in new.attr.values_mut() {
                substitute(v, attrs).map_err(|e| in_fn(format!("node '{}': {e}", nd.name)))?;
            }
            if new.device.is_empty() {
                new.device = call.device.clone();
            }
            nodes.push(new);
        }
        let mut outputs = Vec::new();
        let mut types = Vec::new();
        for arg in &sig.output_arg {
            let r = f
                .ret
                .get(&arg.name)
                .ok_or_else(|| in_fn(format!("output '{}' has no return value", arg.name)))?;
            let src = resolve(r, &format!("<return {}>", arg.name))?;
            let arg_types = arg_types(arg, attrs).map_err(&in_fn)?;
            if arg_types.len() != 1 {
                return Err(in_fn(format!(
                    "output '{}' is a list of {} tensors; only single-tensor outputs are \
                     supported",
                    arg.name,
                    arg_types.len()
                )));
            }
            outputs.push(src);
            types.extend(arg_types);
        }
        let mut replacement = tf::NodeDef {
            name: call.name.clone(),
            device: call.device.clone(),
            ..Default::default()
        };
        if outputs.is_empty() {
            replacement.op = "NoOp".into();
        } else {
            replacement.op = "IdentityN".into();
            replacement.attr.insert(
                "T".into(),
                tf::AttrValue {
                    value: Some(tf::attr_value::Value::List(tf::attr_value::ListValue {
                        r#type: types,
                        ..Default::default()
                    })),
                },
            );
        }
        replacement.input = outputs;
        for n in f.control_ret.values() {
            if !body.contains_key(n.as_str()) {
                return Err(in_fn(format!(
                    "control output '{n}' is not a node of the function"
                )));
            }
            replacement.input.push(format!("^{prefix}/{n}"));
        }
        replacement
            .input
            .extend(control.iter().map(|c| c.to_string()));
        Ok((nodes, replacement))
    }

    /// The flat output index of `node:out_arg:k`.
    fn output_index(
        &self,
        node: &tf::NodeDef,
        out_arg: &str,
        k: usize,
        attrs: &Attrs,
    ) -> std::result::Result<usize, String> {
        let Some(def) = self.op_def(&node.op) else {
            // TensorFlow's stripped op list leaves out the ops only loop bodies use.
            return builtin_output_index(node, out_arg, k);
        };
        let mut node_attrs = node.attr.clone();
        for v in node_attrs.values_mut() {
            substitute(v, attrs)?;
        }
        let mut offset = 0;
        for arg in &def.output_arg {
            let n = arg_len(arg, &node_attrs)?;
            if arg.name == out_arg {
                if k >= n {
                    return Err(format!(
                        "output '{}:{out_arg}:{k}' does not exist: '{out_arg}' of op {} has {n} \
                         tensors",
                        node.name, node.op
                    ));
                }
                return Ok(offset + k);
            }
            offset += n;
        }
        Err(format!(
            "op {} has no output '{out_arg}' (node '{}')",
            node.op, node.name
        ))
    }
}

/// TensorFlow's output arguments of the ops rustflow runs that have several (each one
/// tensor), from TensorFlow 2.21's op registry; every other such op has one output
/// argument, a tensor or a list, whose tensor `k` is output `k` (its name in
/// [`SINGLE_OUTPUT_ARGS`], else `output`).
const MULTI_OUTPUT_ARGS: &[(&str, &[&str])] = &[
    ("BroadcastGradientArgs", &["r0", "r1"]),
    (
        "FusedBatchNorm",
        &[
            "y",
            "batch_mean",
            "batch_variance",
            "reserve_space_1",
            "reserve_space_2",
        ],
    ),
    (
        "FusedBatchNormV2",
        &[
            "y",
            "batch_mean",
            "batch_variance",
            "reserve_space_1",
            "reserve_space_2",
        ],
    ),
    (
        "FusedBatchNormV3",
        &[
            "y",
            "batch_mean",
            "batch_variance",
            "reserve_space_1",
            "reserve_space_2",
            "reserve_space_3",
        ],
    ),
    ("SoftmaxCrossEntropyWithLogits", &["loss", "backprop"]),
    ("SparseSoftmaxCrossEntropyWithLogits", &["loss", "backprop"]),
    ("Svd", &["s", "u", "v"]),
];

/// The name of the one output argument of the ops rustflow runs where it is not `output`
/// (TensorFlow 2.21's op registry), so that exported function bodies name their outputs
/// as TensorFlow's importer expects (`add:z:0`).
const SINGLE_OUTPUT_ARGS: &[(&str, &str)] = &[
    ("Abs", "y"),
    ("Add", "z"),
    ("AddN", "sum"),
    ("AddV2", "z"),
    ("ApplyAdagrad", "out"),
    ("ApplyAdam", "out"),
    ("ApplyGradientDescent", "out"),
    ("ApplyMomentum", "out"),
    ("ApplyRMSProp", "out"),
    ("Assign", "output_ref"),
    ("AssignAdd", "output_ref"),
    ("AssignSub", "output_ref"),
    ("Cast", "y"),
    ("Cumprod", "out"),
    ("Cumsum", "out"),
    ("DynamicStitch", "merged"),
    ("Elu", "activations"),
    ("EluGrad", "backprops"),
    ("Equal", "z"),
    ("Erf", "y"),
    ("Exp", "y"),
    ("FloorDiv", "z"),
    ("FloorMod", "z"),
    ("Greater", "z"),
    ("GreaterEqual", "z"),
    ("HistogramSummary", "summary"),
    ("InvertPermutation", "y"),
    ("IsVariableInitialized", "is_initialized"),
    ("LeakyRelu", "activations"),
    ("Less", "z"),
    ("LessEqual", "z"),
    ("Log", "y"),
    ("Log1p", "y"),
    ("LogSoftmax", "logsoftmax"),
    ("LogicalAnd", "z"),
    ("LogicalNot", "y"),
    ("LogicalOr", "z"),
    ("MatMul", "product"),
    ("MatrixBandPart", "band"),
    ("Maximum", "z"),
    ("MergeSummary", "summary"),
    ("Minimum", "z"),
    ("Mul", "z"),
    ("Neg", "y"),
    ("NotEqual", "z"),
    ("OnesLike", "y"),
    ("Pow", "z"),
    ("ReadVariableOp", "value"),
    ("RealDiv", "z"),
    ("Reciprocal", "y"),
    ("ReciprocalGrad", "z"),
    ("Relu", "activations"),
    ("Relu6", "activations"),
    ("Relu6Grad", "backprops"),
    ("ReluGrad", "backprops"),
    ("ResizeBilinear", "resized_images"),
    ("ResizeNearestNeighbor", "resized_images"),
    ("Rsqrt", "y"),
    ("RsqrtGrad", "z"),
    ("ScalarSummary", "summary"),
    ("Selu", "activations"),
    ("Sigmoid", "y"),
    ("SigmoidGrad", "z"),
    ("Sign", "y"),
    ("Softmax", "softmax"),
    ("Softplus", "activations"),
    ("SoftplusGrad", "backprops"),
    ("Softsign", "activations"),
    ("Sqrt", "y"),
    ("SqrtGrad", "z"),
    ("Square", "y"),
    ("Sub", "z"),
    ("Tanh", "y"),
    ("TanhGrad", "z"),
    ("TensorListElementShape", "element_shape"),
    ("TensorListFromTensor", "output_handle"),
    ("TensorListGetItem", "item"),
    ("TensorListLength", "length"),
    ("TensorListReserve", "handle"),
    ("TensorListSetItem", "output_handle"),
    ("TensorListStack", "tensor"),
    ("Transpose", "y"),
    ("TruncateMod", "z"),
    ("VarHandleOp", "resource"),
    ("VarIsInitializedOp", "is_initialized"),
    ("VariableV2", "ref"),
    ("ZerosLike", "y"),
];

/// How a function body names output `k` of a node of op `op` (`node:out_arg:index`):
/// the inverse of [`builtin_output_index`].
pub(super) fn output_arg(op: &str, k: usize) -> (&'static str, usize) {
    if let Some((_, args)) = MULTI_OUTPUT_ARGS.iter().find(|(o, _)| *o == op) {
        if k < args.len() {
            return (args[k], 0);
        }
    }
    match SINGLE_OUTPUT_ARGS.iter().find(|(o, _)| *o == op) {
        Some(&(_, arg)) => (arg, k),
        None => ("output", k),
    }
}

/// The flat output index of `node:out_arg:k` for an op missing from the op list; an op
/// with one output argument takes any name for it (TensorFlow's, or the `output` that
/// earlier rustflow exports wrote).
fn builtin_output_index(
    node: &tf::NodeDef,
    out_arg: &str,
    k: usize,
) -> std::result::Result<usize, String> {
    match MULTI_OUTPUT_ARGS.iter().find(|(op, _)| *op == node.op) {
        None => Ok(k),
        Some((_, args)) => match args.iter().position(|a| *a == out_arg) {
            Some(i) if k == 0 => Ok(i),
            _ => Err(format!(
                "op {} has no output '{out_arg}:{k}' (node '{}')",
                node.op, node.name
            )),
        },
    }
}

/// How many tensors an argument holds (`number_attr` and `type_list_attr` lists).
fn arg_len(arg: &tf::op_def::ArgDef, attrs: &Attrs) -> std::result::Result<usize, String> {
    use tf::attr_value::Value;
    let value = |a: &str| {
        attrs
            .get(a)
            .and_then(|v| v.value.as_ref())
            .ok_or_else(|| format!("argument '{}' needs attr '{a}', which is not set", arg.name))
    };
    if !arg.number_attr.is_empty() {
        return match value(&arg.number_attr)? {
            Value::I(n) => usize::try_from(*n)
                .ok()
                .filter(|&n| n <= 1 << 16)
                .ok_or_else(|| format!("attr '{}' = {n} is not a list length", arg.number_attr)),
            _ => Err(format!("attr '{}' is not an int", arg.number_attr)),
        };
    }
    if !arg.type_list_attr.is_empty() {
        return match value(&arg.type_list_attr)? {
            Value::List(l) => Ok(l.r#type.len()),
            _ => Err(format!("attr '{}' is not a type list", arg.type_list_attr)),
        };
    }
    Ok(1)
}

/// The dtypes of an output argument.
fn arg_types(arg: &tf::op_def::ArgDef, attrs: &Attrs) -> std::result::Result<Vec<i32>, String> {
    use tf::attr_value::Value;
    let n = arg_len(arg, attrs)?;
    if arg.r#type != 0 {
        return Ok(vec![arg.r#type; n]);
    }
    match attrs
        .get(if arg.type_attr.is_empty() {
            &arg.type_list_attr
        } else {
            &arg.type_attr
        })
        .and_then(|v| v.value.as_ref())
    {
        Some(Value::Type(t)) => Ok(vec![*t; n]),
        Some(Value::List(l)) => Ok(l.r#type.clone()),
        _ => Err(format!("the dtype of output '{}' is not set", arg.name)),
    }
}

/// Replaces an attr placeholder (`$T` of a generic function) by the call's value.
fn substitute(v: &mut tf::AttrValue, attrs: &Attrs) -> std::result::Result<(), String> {
    if let Some(tf::attr_value::Value::Placeholder(p)) = &v.value {
        *v = attrs
            .get(p)
            .cloned()
            .ok_or_else(|| format!("attr placeholder '{p}' is not set by the call"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::import_graph_def;
    use crate::{Session, Tensor};
    use tf::attr_value::Value;

    fn attr(v: Value) -> tf::AttrValue {
        tf::AttrValue { value: Some(v) }
    }

    fn float_list() -> tf::AttrValue {
        attr(Value::List(tf::attr_value::ListValue {
            r#type: vec![1],
            ..Default::default()
        }))
    }

    fn node(name: &str, op: &str, inputs: &[&str], attrs: &[(&str, tf::AttrValue)]) -> tf::NodeDef {
        tf::NodeDef {
            name: name.into(),
            op: op.into(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            attr: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            ..Default::default()
        }
    }

    fn call(name: &str, f: &str, inputs: &[&str]) -> tf::NodeDef {
        let func = attr(Value::Func(tf::NameAttrList {
            name: f.into(),
            attr: Default::default(),
        }));
        node(
            name,
            "StatefulPartitionedCall",
            inputs,
            &[("f", func), ("Tin", float_list()), ("Tout", float_list())],
        )
    }

    fn arg(name: &str) -> tf::op_def::ArgDef {
        tf::op_def::ArgDef {
            name: name.into(),
            r#type: 1,
            ..Default::default()
        }
    }

    /// `name(a) -> y` whose body is `nodes`, returning `ret`.
    fn function(name: &str, nodes: Vec<tf::NodeDef>, ret: &str) -> tf::FunctionDef {
        tf::FunctionDef {
            signature: Some(tf::OpDef {
                name: name.into(),
                input_arg: vec![arg("a")],
                output_arg: vec![arg("y")],
                ..Default::default()
            }),
            node_def: nodes,
            ret: [("y".to_string(), ret.to_string())].into(),
            ..Default::default()
        }
    }

    fn op_list() -> tf::OpList {
        let op = |name: &str, out: tf::op_def::ArgDef| tf::OpDef {
            name: name.into(),
            output_arg: vec![out],
            ..Default::default()
        };
        tf::OpList {
            op: vec![
                op("Square", arg("y")),
                op(
                    "StatefulPartitionedCall",
                    tf::op_def::ArgDef {
                        name: "output".into(),
                        type_list_attr: "Tout".into(),
                        ..Default::default()
                    },
                ),
            ],
        }
    }

    fn graph(nodes: Vec<tf::NodeDef>, functions: Vec<tf::FunctionDef>) -> tf::GraphDef {
        tf::GraphDef {
            node: nodes,
            library: Some(tf::FunctionDefLibrary {
                function: functions,
            }),
            ..Default::default()
        }
    }

    fn x() -> tf::NodeDef {
        node("x", "Placeholder", &[], &[("dtype", attr(Value::Type(1)))])
    }

    fn t1() -> (&'static str, tf::AttrValue) {
        ("T", attr(Value::Type(1)))
    }

    #[test]
    fn nested_calls_are_inlined_and_compute() {
        let inner = function(
            "inner",
            vec![node("sq", "Square", &["a"], &[t1()])],
            "sq:y:0",
        );
        let outer = function(
            "outer",
            vec![
                call("c", "inner", &["a"]),
                node("sq", "Square", &["c:output:0"], &[t1()]),
            ],
            "sq:y:0",
        );
        let gd = graph(
            vec![
                x(),
                call("top", "outer", &["x"]),
                node("done", "NoOp", &["^top"], &[]),
            ],
            vec![inner, outer],
        );
        let list = op_list();
        let flat = inline_functions(&gd, Some(&list), &["top:0"]).unwrap();
        let names: Vec<&str> = flat.node.iter().map(|n| n.name.as_str()).collect();
        for n in ["top", "top/c", "top/c/sq", "top/sq", "done"] {
            assert!(names.contains(&n), "{n} missing from {names:?}");
        }
        assert!(flat.node.iter().all(|n| n.op != "StatefulPartitionedCall"));
        let g = import_graph_def(&flat, Some(&list)).unwrap();
        let s = Session::new(&g);
        let xo = g.output_by_name("x").unwrap();
        let y = g.output_by_name("top:0").unwrap();
        let out = s.run(&[(xo, Tensor::from([2f32]))], &[y], &[]).unwrap();
        assert_eq!(out[0].to_vec::<f32>().unwrap(), vec![16.0]);
    }

    #[test]
    fn recursion_and_missing_functions_are_errors() {
        let list = op_list();
        let looping = function("f", vec![call("again", "g", &["a"])], "again:output:0");
        let back = function("g", vec![call("back", "f", &["a"])], "back:output:0");
        let gd = graph(vec![x(), call("top", "f", &["x"])], vec![looping, back]);
        let e = inline_functions(&gd, Some(&list), &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("calls itself") && e.contains("f -> g -> f"),
            "{e}"
        );

        let gd = graph(vec![x(), call("top", "nowhere", &["x"])], vec![]);
        let e = inline_functions(&gd, Some(&list), &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("'top'") && e.contains("'nowhere'") && e.contains("function library"),
            "{e}"
        );
        // A call that nothing wanted needs is left alone.
        let flat = inline_functions(&gd, Some(&list), &["x"]).unwrap();
        assert_eq!(flat.node.len(), 2);
    }

    #[test]
    fn bad_references_in_a_body_are_errors() {
        let list = op_list();
        let f = function(
            "f",
            vec![node("sq", "Square", &["nope"], &[t1()])],
            "sq:y:0",
        );
        let gd = graph(vec![x(), call("top", "f", &["x"])], vec![f]);
        let e = inline_functions(&gd, Some(&list), &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("'nope'") && e.contains("function 'f'"), "{e}");
        let f = function("f", vec![node("sq", "Square", &["a"], &[t1()])], "sq:z:0");
        let gd = graph(vec![x(), call("top", "f", &["x"])], vec![f]);
        let e = inline_functions(&gd, Some(&list), &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("no output 'z'"), "{e}");
    }
}

//! One graph node as a TensorFlow `NodeDef`: shared by the `GraphDef` export
//! ([`super::graph`]) and the export of library functions ([`super::library`]).

use super::attr::attr_to_proto;
use super::tf;
use super::unsupported::unsupported_node;
use crate::graph::{Graph, Node, Output};

/// The name TensorFlow uses for an output in a node's input list: `node` for output 0,
/// `node:i` otherwise.
pub fn input_name(g: &Graph, o: Output) -> String {
    let name = g.node(o.node).name();
    if o.index == 0 {
        name.to_string()
    } else {
        format!("{name}:{}", o.index)
    }
}

/// The `NodeDef` of one node.
pub fn node_to_proto(g: &Graph, node: &Node) -> tf::NodeDef {
    let mut input: Vec<String> = node.inputs().iter().map(|&o| input_name(g, o)).collect();
    input.extend(
        node.control_inputs()
            .iter()
            .map(|&c| format!("^{}", g.node(c).name())),
    );
    let (op, attr) = match unsupported_node(node) {
        Some(u) => (u.node_def.op, u.node_def.attr),
        None => {
            let defaults = node.op().default_attrs();
            let attr = node
                .attrs()
                .iter()
                .filter(|(k, v)| !defaults.iter().any(|(dk, dv)| dk == k && dv == *v))
                .map(|(k, v)| (k.clone(), attr_to_proto(v)))
                .collect();
            (node.op_type().to_string(), attr)
        }
    };
    tf::NodeDef {
        name: node.name().to_string(),
        op,
        input,
        device: node.device().to_string(),
        attr,
    }
}

//! Nodes rustflow cannot run, kept so that a TensorFlow graph still loads and re-exports.
//!
//! Real TensorFlow graphs hold ops rustflow lacks (`ParseExample`, `SaveV2`, most string
//! ops) and values of dtypes it lacks (`DT_HALF`, `DT_COMPLEX64`, ...). GraphDef import turns each such node into
//! an *unsupported node*: its op type is the original one, its original attrs are kept
//! byte for byte (for re-export), and it declares the original output dtypes. Only running
//! it fails, with an error naming the node, its op type and the reason.
//!
//! Representation (all in the node's attrs, so the graph core needs no new concept):
//! * `_rustflow_unsupported`: why the node cannot run (string);
//! * `_rustflow_node_def`: the original `NodeDef` (op and attrs; name, inputs and device
//!   live in the graph) serialized, as a uint8 tensor;
//! * `_rustflow_output_types`: TensorFlow `DataType` of each output (0 = unknown);
//! * `_rustflow_output_shapes`: the shape of each output, when TensorFlow recorded them.
//!
//! An output whose TensorFlow dtype rustflow lacks (or does not know) is given the spec
//! dtype [`STAND_IN_DTYPE`] with an unknown shape; [`tf_output_dtype`] tells the real one.
//! Import makes every consumer of such an output unsupported as well, so no kernel ever
//! sees a stand-in.

use super::tf;
use crate::graph::{AttrValue, Attrs, AttrsExt, Graph, Node, Output, TensorSpec};
use crate::graph::{Cost, InferCtx, OpDef};
use crate::kernel::{KernelBuildCtx, KernelDef, KernelResult};
use crate::tensor::{DType, PartialShape, Tensor};
use prost::Message;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

/// Attr holding why the node cannot run.
pub const REASON_ATTR: &str = "_rustflow_unsupported";
/// Attr holding the serialized original `NodeDef`.
pub const NODE_DEF_ATTR: &str = "_rustflow_node_def";
/// Attr holding each output's TensorFlow `DataType`.
pub const OUTPUT_TYPES_ATTR: &str = "_rustflow_output_types";
/// Attr holding each output's shape.
pub const OUTPUT_SHAPES_ATTR: &str = "_rustflow_output_shapes";
/// Spec dtype of outputs whose TensorFlow dtype rustflow lacks.
pub const STAND_IN_DTYPE: DType = DType::UInt8;

/// The op definition of every unsupported node of one op type.
struct UnsupportedOp {
    name: &'static str,
}

impl OpDef for UnsupportedOp {
    fn name(&self) -> &'static str {
        self.name
    }

    fn infer(&self, ctx: &InferCtx<'_>) -> std::result::Result<Vec<TensorSpec>, String> {
        let attrs = ctx.attrs();
        let types = attrs.ints_or(OUTPUT_TYPES_ATTR, &[])?;
        let shapes = match attrs.value(OUTPUT_SHAPES_ATTR) {
            Some(AttrValue::ShapeList(s)) if s.len() == types.len() => s.clone(),
            _ => vec![PartialShape::unknown(); types.len()],
        };
        Ok(types
            .iter()
            .zip(shapes)
            .map(
                |(&t, shape)| match i32::try_from(t).ok().and_then(DType::from_tf_enum) {
                    Some(dtype) => TensorSpec::new(dtype, shape),
                    None => TensorSpec::new(STAND_IN_DTYPE, PartialShape::unknown()),
                },
            )
            .collect())
    }

    fn kernel_op(&self) -> &'static str {
        UNSUPPORTED_KERNEL
    }

    fn is_stateful(&self) -> bool {
        true
    }

    fn cost(&self) -> Cost {
        Cost::Cheap
    }
}

/// The kernel name of every unsupported op: its one (CPU) kernel explains why the node
/// cannot run.
const UNSUPPORTED_KERNEL: &str = "_RustflowUnsupported";

fn unsupported_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let reason = ctx
        .attrs()
        .string_or(REASON_ATTR, "op type not registered")?;
    Err(format!(
        "op {} cannot run in rustflow ({reason}); it was kept only so that the graph \
         loads and re-exports",
        ctx.node.op_type()
    ))
}

/// The op definition shared by the unsupported nodes of `op_type`. One small definition per
/// distinct op type is leaked, like the registry's.
pub(crate) fn unsupported_op(op_type: &str) -> &'static dyn OpDef {
    static OPS: OnceLock<Mutex<HashMap<String, &'static UnsupportedOp>>> = OnceLock::new();
    let mut ops = OPS
        .get_or_init(|| {
            crate::ops::register_kernel(KernelDef::cpu(UNSUPPORTED_KERNEL, unsupported_kernel));
            Mutex::default()
        })
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    *ops.entry(op_type.to_string()).or_insert_with(|| {
        Box::leak(Box::new(UnsupportedOp {
            name: Box::leak(op_type.to_string().into_boxed_str()),
        }))
    })
}

/// True when the node is an unsupported node (see the module docs).
pub fn is_unsupported(node: &Node) -> bool {
    match super::compat::lookup(node.op_type()) {
        Some(op) => !std::ptr::addr_eq(op, node.op()),
        None => true,
    }
}

/// What an unsupported node keeps of the original TensorFlow node.
#[derive(Clone, Debug, PartialEq)]
pub struct UnsupportedNode {
    /// Why it cannot run.
    pub reason: String,
    /// The original op type and attrs (name, inputs and device are the graph's).
    pub node_def: tf::NodeDef,
    /// TensorFlow `DataType` of each output (0 = unknown).
    pub output_types: Vec<i32>,
}

/// The kept TensorFlow node of an unsupported node; `None` for any other node.
pub fn unsupported_node(node: &Node) -> Option<UnsupportedNode> {
    if !is_unsupported(node) {
        return None;
    }
    let attrs = node.attrs();
    let node_def = attrs
        .tensor(NODE_DEF_ATTR)
        .ok()
        .and_then(|t| t.as_slice::<u8>().ok())
        .and_then(|b| tf::NodeDef::decode(b).ok())
        .unwrap_or_else(|| tf::NodeDef {
            op: node.op_type().to_string(),
            ..Default::default()
        });
    Some(UnsupportedNode {
        reason: attrs.string_or(REASON_ATTR, "").unwrap_or_default(),
        node_def,
        output_types: attrs
            .ints_or(OUTPUT_TYPES_ATTR, &[])
            .unwrap_or_default()
            .iter()
            .map(|&t| i32::try_from(t).unwrap_or(0))
            .collect(),
    })
}

/// The TensorFlow `DataType` of any output: the real one for unsupported nodes (0 when
/// unknown), the dtype's enum value otherwise.
pub fn tf_output_dtype(graph: &Graph, o: Output) -> i32 {
    let node = graph.node(o.node);
    match unsupported_node(node) {
        Some(u) => u.output_types.get(o.index).copied().unwrap_or(0),
        None => graph.dtype(o).to_tf_enum(),
    }
}

/// The attrs of a new unsupported node: `node_def` holds the original op and attrs.
pub(crate) fn unsupported_attrs(
    reason: &str,
    node_def: &tf::NodeDef,
    output_types: &[i32],
    output_shapes: Option<Vec<PartialShape>>,
) -> Attrs {
    let kept = tf::NodeDef {
        op: node_def.op.clone(),
        attr: node_def.attr.clone(),
        ..Default::default()
    };
    let mut attrs = Attrs::new();
    attrs.insert(REASON_ATTR.into(), AttrValue::String(reason.into()));
    attrs.insert(
        NODE_DEF_ATTR.into(),
        AttrValue::Tensor(Tensor::vector(kept.encode_to_vec())),
    );
    attrs.insert(
        OUTPUT_TYPES_ATTR.into(),
        AttrValue::IntList(output_types.iter().map(|&t| i64::from(t)).collect()),
    );
    if let Some(shapes) = output_shapes {
        attrs.insert(OUTPUT_SHAPES_ATTR.into(), AttrValue::ShapeList(shapes));
    }
    attrs
}

/// Adds a node that only TensorFlow runs (such as the `SaveV2`/`RestoreV2` nodes a
/// SavedModel needs), from its `NodeDef` (name, op, attrs, device; its inputs are given as
/// graph outputs) and its outputs' TensorFlow dtypes.
pub fn add_tensorflow_node(
    g: &mut Graph,
    node_def: &tf::NodeDef,
    inputs: Vec<Output>,
    control_inputs: Vec<crate::graph::NodeId>,
    output_types: &[i32],
) -> crate::Result<crate::graph::NodeId> {
    let req = crate::graph::NodeRequest {
        op_type: node_def.op.clone(),
        name: Some(node_def.name.clone()),
        exact_name: true,
        inputs,
        control_inputs,
        attrs: unsupported_attrs(
            "written for TensorFlow's loaders; rustflow does not run it",
            node_def,
            output_types,
            None,
        ),
        device: node_def.device.clone(),
    };
    g.add_node_with_op(unsupported_op(&node_def.op), req)
}

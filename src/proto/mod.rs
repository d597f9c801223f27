//! Conversions between TensorFlow's protobuf messages ([`tf`], generated in [`crate::pb`])
//! and rustflow's tensors and graphs.

pub use crate::pb::{google, tf};

mod attr;
pub mod compat;
mod function;
mod graph;
mod library;
mod node;
mod tensor;
mod text;
pub mod unsupported;

pub use attr::{attr_from_proto, attr_to_proto};
pub use function::{inline_functions, MAX_INLINED_NODES};
pub use graph::{
    graph_to_bytes, graph_to_proto, import_graph_def, load_graph, parse_graph_def, read_graph_def,
    write_graph, PRODUCER,
};
pub use library::MAX_FUNCTION_DEPTH;
pub use node::{input_name, node_to_proto};
pub use tensor::{
    checked_num_elements, dims_from_proto, dims_to_proto, dtype_from_proto, dtype_name,
    dtype_to_proto, shape_from_proto, shape_to_proto, tensor_bytes, tensor_from_bytes,
    tensor_from_proto, tensor_to_proto, MAX_EXPANDED_BYTES,
};
pub use text::parse_graph_def as parse_text_graph_def;

//! A fluent way to add one node: `g.op("MatMul").input(a).input(b).attr("transpose_a", true).build()`.

use super::{AttrValue, Graph, NodeId, NodeRequest, Output};
use crate::Result;

/// Collects a node's inputs, attrs and name, then adds it with [`OpBuilder::build`].
pub struct OpBuilder<'g> {
    graph: &'g mut Graph,
    req: NodeRequest,
}

impl<'g> OpBuilder<'g> {
    pub(super) fn new(graph: &'g mut Graph, op_type: &str) -> Self {
        OpBuilder {
            graph,
            req: NodeRequest {
                op_type: op_type.to_string(),
                ..NodeRequest::default()
            },
        }
    }

    /// Appends a data input.
    pub fn input(mut self, o: impl Into<Output>) -> Self {
        self.req.inputs.push(o.into());
        self
    }

    /// Appends several data inputs (a list input such as AddN's).
    pub fn inputs(mut self, os: &[Output]) -> Self {
        self.req.inputs.extend_from_slice(os);
        self
    }

    /// Adds a control input.
    pub fn control_input(mut self, n: NodeId) -> Self {
        self.req.control_inputs.push(n);
        self
    }

    /// Sets an attribute.
    pub fn attr(mut self, name: &str, v: impl Into<AttrValue>) -> Self {
        self.req.attrs.insert(name.to_string(), v.into());
        self
    }

    /// Requests a name (made unique under the current scope).
    pub fn name(mut self, name: &str) -> Self {
        self.req.name = Some(name.to_string());
        self
    }

    /// Requests a name if one is given.
    pub fn maybe_name(self, name: Option<&str>) -> Self {
        match name {
            Some(n) => self.name(n),
            None => self,
        }
    }

    /// Sets the device string.
    pub fn device(mut self, device: &str) -> Self {
        self.req.device = device.to_string();
        self
    }

    /// Adds the node, running shape and dtype inference.
    pub fn build(self) -> Result<NodeId> {
        self.graph.add_node(self.req)
    }

    /// Adds the node and returns its first output.
    pub fn build_output(self) -> Result<Output> {
        Ok(self.build()?.output(0))
    }
}

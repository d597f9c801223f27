//! The dataflow graph: TensorFlow-named nodes over a `petgraph::StableDiGraph`, with
//! build-time dtype and shape inference, name scopes and control dependencies.

mod attr;
mod builder;
mod dot;
mod function;
mod op;

pub use attr::{AttrValue, Attrs, AttrsExt};
pub use builder::OpBuilder;
pub use dot::to_dot;
pub use function::Function;
pub use op::{
    Cost, GradCtx, GradFn, Gradient, GradientsFn, InferCtx, InferFn, InferResult, OpDef, OpRegistry,
};

use crate::tensor::{DType, PartialShape, Tensor};
use crate::{Error, Result};
use petgraph::stable_graph::{NodeIndex, StableDiGraph};
use petgraph::visit::EdgeRef;
use petgraph::Direction;
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};

/// Identifies a node of one [`Graph`]. It remembers which graph made it: using it with
/// another graph (or a session over another graph) is an error saying so, as TensorFlow's
/// "Tensor must be from the same graph" is. Clones of a graph (a session's snapshot, a
/// newer version passed to `Session::extend`) are the same graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    graph: GraphId,
    index: NodeIndex,
}

/// Which graph a handle belongs to: every [`Graph::new`] gets a new one; clones keep it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GraphId(u32);

impl GraphId {
    fn next() -> GraphId {
        static NEXT: AtomicU32 = AtomicU32::new(1);
        GraphId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

impl NodeId {
    /// Output `index` of this node.
    pub fn output(self, index: usize) -> Output {
        Output { node: self, index }
    }

    /// A dense index (insertion order), handy for per-node tables.
    pub fn index(self) -> usize {
        self.index.index()
    }

    /// The graph this node belongs to.
    pub fn graph(self) -> GraphId {
        self.graph
    }
}

/// One output tensor of a node (TensorFlow's `name:index`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Output {
    /// The producing node.
    pub node: NodeId,
    /// Which of its outputs.
    pub index: usize,
}

impl From<NodeId> for Output {
    fn from(n: NodeId) -> Output {
        n.output(0)
    }
}

/// A variable made by [`Graph::variable`] (`tf.compat.v1.Variable`): its `VariableV2`
/// node, its `read` snapshot and its initializer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VariableHandle {
    /// The `VariableV2` output: pass it as the reference input of `Assign` and friends.
    pub var: Output,
    /// The `<name>/read` Identity: use it wherever the variable's value is needed.
    pub read: Output,
    /// The `<name>/Assign` node that sets the initial value.
    pub initializer: NodeId,
}

/// The dtype and (partial) shape of a tensor, as known when the graph is built.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorSpec {
    /// Element type.
    pub dtype: DType,
    /// Possibly partial shape.
    pub shape: PartialShape,
}

impl TensorSpec {
    /// A spec from its parts.
    pub fn new(dtype: DType, shape: impl Into<PartialShape>) -> Self {
        TensorSpec {
            dtype,
            shape: shape.into(),
        }
    }
}

impl fmt::Display for TensorSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.shape, self.dtype)
    }
}

/// A node: one op instance with its inputs, attributes and inferred output specs.
#[derive(Clone)]
pub struct Node {
    name: String,
    op: &'static dyn OpDef,
    inputs: Vec<Output>,
    control_inputs: Vec<NodeId>,
    attrs: Attrs,
    outputs: Vec<TensorSpec>,
    device: String,
}

impl Node {
    /// The unique node name (`dense/MatMul`).
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The TensorFlow op type (`MatMul`).
    pub fn op_type(&self) -> &'static str {
        self.op.name()
    }
    /// The op definition.
    pub fn op(&self) -> &'static dyn OpDef {
        self.op
    }
    /// Data inputs, in the op's input order.
    pub fn inputs(&self) -> &[Output] {
        &self.inputs
    }
    /// Nodes that must run before this one.
    pub fn control_inputs(&self) -> &[NodeId] {
        &self.control_inputs
    }
    /// Attributes.
    pub fn attrs(&self) -> &Attrs {
        &self.attrs
    }
    /// Inferred output specs.
    pub fn outputs(&self) -> &[TensorSpec] {
        &self.outputs
    }
    /// Requested device (`""` = any).
    pub fn device(&self) -> &str {
        &self.device
    }
}

impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Node")
            .field("name", &self.name)
            .field("op", &self.op.name())
            .field("inputs", &self.inputs)
            .field("control_inputs", &self.control_inputs)
            .field("attrs", &self.attrs)
            .field("outputs", &self.outputs)
            .finish()
    }
}

/// Edge kinds in the underlying petgraph.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Edge {
    /// Output `output` of the source feeds input `input` of the target.
    Data {
        /// Source output index.
        output: usize,
        /// Target input index.
        input: usize,
    },
    /// The source must run before the target.
    Control,
}

/// Everything needed to add one node; [`OpBuilder`] fills it in.
#[derive(Clone, Debug, Default)]
pub struct NodeRequest {
    /// Op type.
    pub op_type: String,
    /// Requested name; made unique unless `exact_name` is set.
    pub name: Option<String>,
    /// Use `name` exactly (GraphDef import); a clash is an error.
    pub exact_name: bool,
    /// Data inputs.
    pub inputs: Vec<Output>,
    /// Control inputs.
    pub control_inputs: Vec<NodeId>,
    /// Attributes.
    pub attrs: Attrs,
    /// Device string.
    pub device: String,
}

/// A TensorFlow-1-style static graph.
#[derive(Clone)]
pub struct Graph {
    /// This graph's identity (shared by its clones).
    id: GraphId,
    /// Where op types are looked up.
    ops: &'static OpRegistry,
    inner: StableDiGraph<Node, Edge>,
    by_name: HashMap<String, NodeId>,
    name_counts: HashMap<String, usize>,
    scopes: Vec<String>,
    control_scopes: Vec<Vec<NodeId>>,
    /// Devices of enclosing [`Graph::device`] scopes, innermost last.
    device_scopes: Vec<String>,
    seed: Option<i64>,
    /// Random ops given no op seed while a graph seed was set (TensorFlow's per-graph
    /// counter in `random_seed.get_seed`).
    op_seed_counter: i64,
    /// Variables made with [`Graph::variable`] (TensorFlow's `GLOBAL_VARIABLES` collection).
    variables: Vec<VariableHandle>,
    /// Functions that control-flow nodes run (see [`Function`]).
    functions: function::Library,
}

impl fmt::Debug for Graph {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.nodes().map(|(_, n)| n))
            .finish()
    }
}

impl Graph {
    /// An empty graph whose nodes are looked up in `ops` ([`Graph::new`] gives every op
    /// type of this crate).
    pub fn with_ops(ops: &'static OpRegistry) -> Self {
        Graph {
            id: GraphId::next(),
            ops,
            inner: StableDiGraph::default(),
            by_name: HashMap::new(),
            name_counts: HashMap::new(),
            scopes: Vec::new(),
            control_scopes: Vec::new(),
            device_scopes: Vec::new(),
            seed: None,
            op_seed_counter: 0,
            variables: Vec::new(),
            functions: Default::default(),
        }
    }

    /// This graph's identity, which its node handles carry.
    pub fn id(&self) -> GraphId {
        self.id
    }

    fn node_id(&self, index: NodeIndex) -> NodeId {
        NodeId {
            graph: self.id,
            index,
        }
    }

    /// Errors unless `o` is an output of a node of this graph: a handle of another graph
    /// (whose index may well exist here too) is refused, naming `what` it was.
    pub fn check_output(&self, o: Output, what: &str) -> Result<()> {
        self.check_node(o.node, what)?;
        let n = self.node(o.node);
        if o.index >= n.outputs.len() {
            return Err(Error::invalid(format!(
                "{what} is output {} of node '{}' ({}), which has {} outputs",
                o.index,
                n.name,
                n.op_type(),
                n.outputs.len()
            )));
        }
        Ok(())
    }

    /// Errors unless `id` is a node of this graph (see [`Graph::check_output`]).
    pub fn check_node(&self, id: NodeId, what: &str) -> Result<()> {
        if id.graph != self.id {
            return Err(Error::invalid(format!(
                "{what} is from another graph: a tensor or node must be from the same graph \
                 as the graph or session it is used with (TensorFlow: \"Tensor must be from \
                 the same graph\")"
            )));
        }
        if !self.inner.contains_node(id.index) {
            return Err(Error::invalid(format!(
                "{what} is a node this version of the graph does not have yet (call \
                 Session::extend after adding nodes)"
            )));
        }
        Ok(())
    }

    /// The op types this graph's nodes are looked up in.
    pub fn op_registry(&self) -> &'static OpRegistry {
        self.ops
    }

    /// Sets the graph-level random seed (`tf.compat.v1.set_random_seed`).
    pub fn set_seed(&mut self, seed: i64) {
        self.seed = Some(seed);
    }

    /// The graph-level random seed, if set.
    pub fn seed(&self) -> Option<i64> {
        self.seed
    }

    /// The next op-level seed for a random op given none while a graph seed is set:
    /// 0, 1, 2, ... per graph, as TensorFlow 2's `get_seed` counts them in graph mode.
    pub(crate) fn next_op_seed(&mut self) -> i64 {
        let s = self.op_seed_counter;
        self.op_seed_counter = s.wrapping_add(1);
        s
    }

    /// Adds a variable to the global variables collection.
    pub fn add_global_variable(&mut self, v: VariableHandle) {
        self.variables.push(v);
    }

    /// The variables in the global collection, in creation order
    /// (`tf.compat.v1.global_variables`).
    pub fn global_variables(&self) -> &[VariableHandle] {
        &self.variables
    }

    /// Starts a node of `op_type`; finish it with [`OpBuilder::build`].
    pub fn op(&mut self, op_type: &str) -> OpBuilder<'_> {
        OpBuilder::new(self, op_type)
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.inner.node_count()
    }

    /// The index the next node added will get (node indices grow in insertion order).
    pub fn next_node_index(&self) -> usize {
        self.inner.node_count()
    }

    /// True when the graph has no nodes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A node by id.
    ///
    /// # Panics
    /// When `id` is a node of another graph (or of a newer version of this one); use
    /// [`Graph::check_node`] to test a handle of unknown origin.
    pub fn node(&self, id: NodeId) -> &Node {
        assert!(
            id.graph == self.id,
            "a NodeId of another graph was used with this graph (Tensor must be from the same graph)"
        );
        &self.inner[id.index]
    }

    /// Nodes in insertion order (a valid topological order for graphs built here, the back
    /// edges of TensorFlow 1 loops aside: see [`Graph::connect_back_edge`]).
    pub fn nodes(&self) -> impl Iterator<Item = (NodeId, &Node)> {
        self.inner
            .node_indices()
            .map(move |i| (self.node_id(i), &self.inner[i]))
    }

    /// True when `id` belongs to this graph.
    pub fn contains(&self, id: NodeId) -> bool {
        id.graph == self.id && self.inner.contains_node(id.index)
    }

    /// Looks a node up by name.
    pub fn node_by_name(&self, name: &str) -> Option<NodeId> {
        self.by_name.get(name).copied()
    }

    /// Parses `name`, `name:i` or `^name` into an output (index 0 for the plain and `^` forms).
    pub fn output_by_name(&self, name: &str) -> Result<Output> {
        let name = name.strip_prefix('^').unwrap_or(name);
        let (node, index) = match name.rsplit_once(':') {
            Some((n, i)) if !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()) => (
                n,
                i.parse::<usize>()
                    .map_err(|_| Error::invalid(format!("bad output index in '{name}'")))?,
            ),
            _ => (name, 0),
        };
        let id = self
            .node_by_name(node)
            .ok_or_else(|| Error::NotFound(format!("no node named '{node}' in the graph")))?;
        let n = self.node(id);
        if index >= n.outputs.len() {
            return Err(Error::NotFound(format!(
                "node '{node}' ({}) has {} outputs, so '{name}' does not exist",
                n.op_type(),
                n.outputs.len()
            )));
        }
        Ok(id.output(index))
    }

    /// TensorFlow's name for an output: `node` for output 0 in inputs, `node:i` otherwise.
    pub fn output_name(&self, o: Output) -> String {
        format!("{}:{}", self.node(o.node).name, o.index)
    }

    /// The inferred spec of an output.
    pub fn spec(&self, o: Output) -> &TensorSpec {
        &self.node(o.node).outputs[o.index]
    }

    /// The dtype of an output.
    pub fn dtype(&self, o: Output) -> DType {
        self.spec(o).dtype
    }

    /// The inferred (partial) shape of an output.
    pub fn shape(&self, o: Output) -> &PartialShape {
        &self.spec(o).shape
    }

    /// Nodes that read any output of `id` (data or control), with the edge kind.
    pub fn consumers(&self, id: NodeId) -> impl Iterator<Item = (NodeId, Edge)> + '_ {
        self.inner
            .edges_directed(id.index, Direction::Outgoing)
            .map(|e| (self.node_id(e.target()), *e.weight()))
    }

    /// Runs `f` inside name scope `name` (`tf.name_scope`): nodes created inside are named
    /// `name/...`. The scope name itself is made unique (`name_1`, ...).
    pub fn name_scope<R>(&mut self, name: &str, f: impl FnOnce(&mut Graph) -> R) -> R {
        self.push_name_scope(name);
        let r = f(self);
        self.pop_name_scope();
        r
    }

    /// Enters a name scope; pair with [`Graph::pop_name_scope`]. Returns the full scope path.
    pub fn push_name_scope(&mut self, name: &str) -> String {
        let full = self.unique_name(name);
        self.scopes.push(full.clone());
        full
    }

    /// Leaves the innermost name scope.
    pub fn pop_name_scope(&mut self) {
        self.scopes.pop();
    }

    /// Leaves every name scope, returning them for [`Graph::restore_name_scopes`] (to create
    /// nodes at the root, as TensorFlow does for optimizer slots).
    pub fn take_name_scopes(&mut self) -> Vec<String> {
        std::mem::take(&mut self.scopes)
    }

    /// Re-enters scopes left with [`Graph::take_name_scopes`].
    pub fn restore_name_scopes(&mut self, scopes: Vec<String>) {
        self.scopes = scopes;
    }

    /// Runs `f` with every node it creates requesting `device` (`with tf.device(...)`),
    /// unless the node names a device of its own. The string is TensorFlow's
    /// (`/device:GPU:0`, `/cpu:0`); the session's placement pass reads it, and runs a node
    /// whose device has no kernel for it on the CPU (soft placement).
    pub fn device<R>(&mut self, device: &str, f: impl FnOnce(&mut Graph) -> R) -> R {
        self.device_scopes.push(device.to_string());
        let r = f(self);
        self.device_scopes.pop();
        r
    }

    /// Sets the device a node requests (TensorFlow's `NodeDef.device`).
    pub fn set_device(&mut self, id: NodeId, device: &str) -> Result<()> {
        self.check_node(id, "the node given to set_device")?;
        self.inner[id.index].device = device.to_string();
        Ok(())
    }

    /// Runs `f` with every node it creates depending on `deps` (`tf.control_dependencies`).
    pub fn control_dependencies<R>(
        &mut self,
        deps: &[NodeId],
        f: impl FnOnce(&mut Graph) -> R,
    ) -> R {
        self.control_scopes.push(deps.to_vec());
        let r = f(self);
        self.control_scopes.pop();
        r
    }

    /// A name not yet used in the graph, built from `base` under the current scope, the way
    /// TensorFlow makes them (`MatMul`, `MatMul_1`, ...).
    pub fn unique_name(&mut self, base: &str) -> String {
        let full = match self.scopes.last() {
            Some(scope) => format!("{scope}/{base}"),
            None => base.to_string(),
        };
        // TensorFlow's Graph.unique_name: names are compared case-insensitively.
        let key = full.to_lowercase();
        let mut i = self.name_counts.get(&key).copied().unwrap_or(0);
        self.name_counts.insert(key.clone(), i + 1);
        if i == 0 {
            return full;
        }
        let mut candidate = key.clone();
        while self.name_counts.contains_key(&candidate) {
            candidate = format!("{key}_{i}");
            i += 1;
        }
        self.name_counts.insert(candidate, 1);
        format!("{full}_{}", i - 1)
    }

    /// Adds a node: looks up the op, checks inputs, runs dtype and shape inference, and only
    /// then inserts it. Errors name the node, the op and the inputs' dtypes and shapes.
    pub fn add_node(&mut self, req: NodeRequest) -> Result<NodeId> {
        let op = self.ops.lookup(&req.op_type)?;
        self.add_node_with_op(op, req)
    }

    /// [`Graph::add_node`] with the op definition given instead of looked up by
    /// `req.op_type` (which is ignored). GraphDef import uses it to keep nodes of op types
    /// rustflow does not implement.
    pub fn add_node_with_op(&mut self, op: &'static dyn OpDef, req: NodeRequest) -> Result<NodeId> {
        for (i, o) in req.inputs.iter().enumerate() {
            self.check_output(*o, &format!("input {i} of a new {} node", op.name()))?;
        }
        for c in &req.control_inputs {
            self.check_node(*c, &format!("a control input of a new {} node", op.name()))?;
        }
        let name = match (&req.name, req.exact_name) {
            (Some(n), true) => {
                if self.by_name.contains_key(n) {
                    return Err(Error::invalid(format!("duplicate node name '{n}'")));
                }
                self.name_counts.entry(n.to_lowercase()).or_insert(1);
                n.clone()
            }
            (Some(n), false) => self.unique_name(n),
            (None, _) => self.unique_name(op.name()),
        };
        let input_specs: Vec<TensorSpec> =
            req.inputs.iter().map(|&o| self.spec(o).clone()).collect();
        let ctx = InferCtx::new(self, &name, &req.inputs, &input_specs, &req.attrs);
        let outputs = op.infer(&ctx).map_err(|msg| Error::Build {
            node: name.clone(),
            op: op.name().to_string(),
            inputs: crate::error::InputSummary(
                input_specs
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            msg,
        })?;
        let mut control_inputs = req.control_inputs;
        for scope in &self.control_scopes {
            for &c in scope {
                if !control_inputs.contains(&c) {
                    control_inputs.push(c);
                }
            }
        }
        let node = Node {
            name: name.clone(),
            op,
            inputs: req.inputs.clone(),
            control_inputs: control_inputs.clone(),
            attrs: req.attrs,
            outputs,
            device: if req.device.is_empty() {
                self.device_scopes.last().cloned().unwrap_or_default()
            } else {
                req.device
            },
        };
        let index = self.inner.add_node(node);
        let id = self.node_id(index);
        for (i, o) in req.inputs.iter().enumerate() {
            self.inner.add_edge(
                o.node.index,
                id.index,
                Edge::Data {
                    output: o.index,
                    input: i,
                },
            );
        }
        for c in control_inputs {
            self.inner.add_edge(c.index, id.index, Edge::Control);
        }
        self.by_name.insert(name, id);
        Ok(id)
    }

    /// Makes input `input` of `merge` read `from`, a node that may have been added after
    /// it: the back edge of a TensorFlow 1 while loop, where a `Merge` reads its loop's
    /// `NextIteration` (the one kind of cycle a graph may hold). Until then the input reads
    /// a stand-in of the same dtype (GraphDef import uses the Merge's first other input;
    /// the Merge's inferred shape is kept, so `from`'s shape must fit it).
    pub fn connect_back_edge(&mut self, merge: NodeId, input: usize, from: Output) -> Result<()> {
        self.check_node(merge, "the Merge given to connect_back_edge")?;
        self.check_output(from, "the value given to connect_back_edge")?;
        let (m, f) = (self.node(merge), self.node(from.node));
        if m.op_type() != "Merge" || f.op_type() != "NextIteration" {
            return Err(Error::invalid(format!(
                "a back edge runs from a NextIteration to a Merge, not from '{}' ({}) to '{}' \
                 ({})",
                f.name,
                f.op_type(),
                m.name,
                m.op_type()
            )));
        }
        let Some(&old) = m.inputs.get(input) else {
            return Err(Error::invalid(format!(
                "Merge '{}' has {} inputs, so it has no input {input} for a back edge",
                m.name,
                m.inputs.len()
            )));
        };
        let (want, got) = (&m.outputs[0], self.spec(from));
        let fits = got.dtype == want.dtype
            && want.shape.merge(&got.shape).ok().as_ref() == Some(&got.shape);
        if !fits {
            return Err(Error::invalid(format!(
                "the back edge from '{}' ({got}) does not fit Merge '{}' ({want})",
                f.name, m.name
            )));
        }
        let stale = self
            .inner
            .edges_directed(merge.index, Direction::Incoming)
            .find(|e| {
                e.source() == old.node.index
                    && *e.weight()
                        == (Edge::Data {
                            output: old.index,
                            input,
                        })
            })
            .map(|e| e.id());
        if let Some(e) = stale {
            self.inner.remove_edge(e);
        }
        self.inner.add_edge(
            from.node.index,
            merge.index,
            Edge::Data {
                output: from.index,
                input,
            },
        );
        self.inner[merge.index].inputs[input] = from;
        Ok(())
    }

    /// The value of an output when it is known while building: a `Const`, or the `Shape`
    /// of a fully known tensor. Shape inference uses this for shape-valued inputs.
    pub fn constant_value(&self, o: Output) -> Option<Tensor> {
        let node = self.node(o.node);
        match node.op_type() {
            "Const" => node.attrs.tensor("value").ok().cloned(),
            "Identity" | "StopGradient" => self.constant_value(node.inputs[0]),
            "Shape" => {
                let dims = self.shape(node.inputs[0]).to_known()?;
                let dims: Vec<i64> = dims.iter().map(|&d| d as i64).collect();
                Some(match node.outputs[0].dtype {
                    DType::Int64 => Tensor::vector(dims),
                    _ => Tensor::vector(dims.iter().map(|&d| d as i32).collect::<Vec<i32>>()),
                })
            }
            _ => None,
        }
    }

    /// Refines the inferred shape of an output with a shape known from elsewhere
    /// (TensorFlow's `Tensor.set_shape`): the two are merged, and a contradiction is an
    /// error. Gradient functions use it where TensorFlow's shape inference would evaluate a
    /// constant shape subgraph. The executor checks the refined shape at run time.
    pub fn set_shape(&mut self, o: Output, shape: &PartialShape) -> Result<()> {
        self.check_output(o, "the tensor given to set_shape")?;
        let name = self.output_name(o);
        let spec = &mut self.inner[o.node.index].outputs[o.index];
        spec.shape = spec
            .shape
            .merge(shape)
            .map_err(|e| Error::invalid(format!("set_shape of '{name}' to {shape} failed: {e}")))?;
        Ok(())
    }
}

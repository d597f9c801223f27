//! Symbolic differentiation: `tf.gradients` as a graph pass that appends gradient nodes to
//! the same graph (so gradients can be run, saved, and differentiated again), a
//! GradientTape-style API, and JAX-style helpers (`grad`, `vjp`, `jvp`, `hessian`, `hvp`).

pub(crate) mod check;
mod functional;
mod tape;

pub use check::{check_gradients, GradientCheck};
pub use tape::GradientTape;

use crate::graph::{AttrsExt, Graph, NodeId, Output};
use crate::ops::{GradCtx, Gradient};
use crate::tensor::DType;
use crate::{Error, Result};
use std::collections::{HashMap, HashSet, VecDeque};

/// What a source that no path connects to `ys` gets (TensorFlow's `unconnected_gradients`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Unconnected {
    /// `None` (TensorFlow's default).
    #[default]
    None,
    /// `zeros_like(x)`.
    Zero,
}

/// Options of [`Graph::gradients_with`].
#[derive(Clone, Debug, Default)]
pub struct GradientOptions {
    /// Gradients flowing into each y (default: ones of y's shape).
    pub grad_ys: Option<Vec<Output>>,
    /// Tensors treated as constants (`stop_gradients`).
    pub stop_gradients: Vec<Output>,
    /// What unconnected sources get.
    pub unconnected: Unconnected,
    /// Only nodes with an index at or above this are differentiated through (the tape's
    /// start); the sources themselves are always allowed.
    pub(crate) recorded_from: usize,
}

/// Float tensors carry gradients; integer and bool tensors do not (`IsTrainable`).
fn is_trainable(dtype: DType) -> bool {
    dtype.is_float()
}

/// What gradients flow back into (TensorFlow's `IsTrainable`): float tensors, resource
/// handles, whose gradient is the gradient of the variable's value (the gradient of
/// `ReadVariableOp` flows to its handle), and variants (TensorLists), whose gradient is a
/// list of their items' gradients.
fn carries_gradient(dtype: DType) -> bool {
    is_trainable(dtype) || matches!(dtype, DType::Resource | DType::Variant)
}

impl Graph {
    /// `tf.gradients(ys, xs)`: the gradient of `sum(ys)` with respect to each of `xs`
    /// (`None` where no differentiable path connects them).
    pub fn gradients(&mut self, ys: &[Output], xs: &[Output]) -> Result<Vec<Option<Output>>> {
        self.gradients_with(ys, xs, &GradientOptions::default())
    }

    /// [`Graph::gradients`] with `grad_ys`, `stop_gradients` and `unconnected` options.
    pub fn gradients_with(
        &mut self,
        ys: &[Output],
        xs: &[Output],
        opts: &GradientOptions,
    ) -> Result<Vec<Option<Output>>> {
        self.push_name_scope("gradients");
        let result = build_gradients(self, ys, xs, opts);
        self.pop_name_scope();
        result
    }
}

fn build_gradients(
    g: &mut Graph,
    ys: &[Output],
    xs: &[Output],
    opts: &GradientOptions,
) -> Result<Vec<Option<Output>>> {
    for (what, list) in [
        ("ys", ys),
        ("xs", xs),
        ("stop_gradients", &opts.stop_gradients),
    ] {
        for (i, &o) in list.iter().enumerate() {
            g.check_output(o, &format!("gradients: {what}[{i}]"))?;
        }
    }
    if let Some(grad_ys) = &opts.grad_ys {
        for (i, &o) in grad_ys.iter().enumerate() {
            g.check_output(o, &format!("gradients: grad_ys[{i}]"))?;
        }
    }
    let grad_ys = initial_grads(g, ys, opts.grad_ys.as_deref())?;

    // Ops reachable forward from the sources through trainable tensors.
    let mut reached: HashSet<NodeId> = HashSet::new();
    let mut queue: VecDeque<NodeId> = xs.iter().map(|x| x.node).collect();
    while let Some(n) = queue.pop_front() {
        if !reached.insert(n) {
            continue;
        }
        let trainable: Vec<bool> = g
            .node(n)
            .outputs()
            .iter()
            .map(|s| carries_gradient(s.dtype))
            .collect();
        for (c, edge) in g.consumers(n).collect::<Vec<_>>() {
            if let crate::graph::Edge::Data { output, .. } = edge {
                if trainable[output] {
                    queue.push_back(c);
                }
            }
        }
    }
    let source_nodes: HashSet<NodeId> = xs.iter().map(|x| x.node).collect();
    let recorded = |n: NodeId| n.index() >= opts.recorded_from || source_nodes.contains(&n);
    // Ops between sources and targets: reached, and reachable backward from ys.
    let mut between: HashSet<NodeId> = HashSet::new();
    let mut stack: Vec<NodeId> = ys.iter().map(|y| y.node).collect();
    while let Some(n) = stack.pop() {
        if !reached.contains(&n) || !recorded(n) || !between.insert(n) {
            continue;
        }
        stack.extend(g.node(n).inputs().iter().map(|i| i.node));
    }
    // Pending count: uses of a node's outputs by between ops.
    let mut pending: HashMap<NodeId, usize> = HashMap::new();
    for &n in &between {
        for i in g.node(n).inputs() {
            if between.contains(&i.node) {
                *pending.entry(i.node).or_default() += 1;
            }
        }
    }
    let stopped: HashSet<NodeId> = opts.stop_gradients.iter().map(|o| o.node).collect();
    // A source whose op has no between-op input stops the backward walk.
    let stop_ops: HashSet<NodeId> = xs
        .iter()
        .map(|x| x.node)
        .filter(|&n| !g.node(n).inputs().iter().any(|i| between.contains(&i.node)))
        .chain(stopped.iter().copied())
        .collect();

    let mut grads: HashMap<Output, Vec<Output>> = HashMap::new();
    for (&y, &gy) in ys.iter().zip(&grad_ys) {
        grads.entry(y).or_default().push(gy);
    }
    let mut ready: VecDeque<NodeId> = VecDeque::new();
    let mut queued: HashSet<NodeId> = HashSet::new();
    for y in ys {
        if between.contains(&y.node)
            && pending.get(&y.node).copied().unwrap_or(0) == 0
            && queued.insert(y.node)
        {
            ready.push_back(y.node);
        }
    }
    while let Some(n) = ready.pop_front() {
        let num_outputs = g.node(n).outputs().len();
        let mut out_grads: Vec<Option<Output>> = Vec::with_capacity(num_outputs);
        for i in 0..num_outputs {
            let gs = grads.get(&n.output(i)).cloned().unwrap_or_default();
            out_grads.push(aggregate(g, &gs)?);
        }
        let inputs = g.node(n).inputs().to_vec();
        let mut in_grads: Vec<Option<Output>> = vec![None; inputs.len()];
        if out_grads.iter().any(Option::is_some) && !stop_ops.contains(&n) {
            in_grads = differentiate(g, n, out_grads)?;
        }
        for (i, (inp, ig)) in inputs.iter().zip(in_grads).enumerate() {
            if let Some(ig) = ig {
                check_grad_fits(g, n, i, *inp, ig)?;
                grads.entry(*inp).or_default().push(ig);
            }
            if between.contains(&inp.node) {
                let p = pending.get_mut(&inp.node).expect("counted above");
                *p -= 1;
                if *p == 0 && queued.insert(inp.node) {
                    ready.push_back(inp.node);
                }
            }
        }
    }
    xs.iter()
        .map(|x| {
            let gs = grads.get(x).cloned().unwrap_or_default();
            match aggregate(g, &gs)? {
                Some(s) => Ok(Some(s)),
                None if opts.unconnected == Unconnected::Zero => {
                    Ok(Some(unconnected_zeros(g, *x)?))
                }
                None => Ok(None),
            }
        })
        .collect()
}

/// `grad_ys`, or ones shaped like each y (`Fill(Shape(y), 1)`, as TensorFlow builds them).
fn initial_grads(g: &mut Graph, ys: &[Output], given: Option<&[Output]>) -> Result<Vec<Output>> {
    if let Some(given) = given {
        if given.len() != ys.len() {
            return Err(Error::invalid(format!(
                "gradients: {} grad_ys given for {} ys",
                given.len(),
                ys.len()
            )));
        }
        for (i, (&y, &gy)) in ys.iter().zip(given).enumerate() {
            let (ys_spec, gy_spec) = (g.spec(y).clone(), g.spec(gy).clone());
            // A resource handle's gradient is its variable value's (a float tensor).
            if ys_spec.dtype == DType::Resource && is_trainable(gy_spec.dtype) {
                continue;
            }
            if ys_spec.dtype != gy_spec.dtype {
                return Err(Error::invalid(format!(
                    "gradients: grad_ys[{i}] has dtype {} but y '{}' has dtype {}",
                    gy_spec.dtype,
                    g.output_name(y),
                    ys_spec.dtype
                )));
            }
            ys_spec.shape.merge(&gy_spec.shape).map_err(|_| {
                Error::invalid(format!(
                    "gradients: grad_ys[{i}] has shape {} but y '{}' has shape {}",
                    gy_spec.shape,
                    g.output_name(y),
                    ys_spec.shape
                ))
            })?;
        }
        return Ok(given.to_vec());
    }
    ys.iter()
        .enumerate()
        .map(|(i, &y)| {
            let dt = g.dtype(y);
            if !is_trainable(dt) {
                return Err(Error::invalid(format!(
                    "gradients: y '{}' has dtype {dt}; only float tensors can be differentiated",
                    g.output_name(y)
                )));
            }
            let shape = g
                .op("Shape")
                .input(y)
                .attr("T", dt)
                .attr("out_type", DType::Int32)
                .build_output()?;
            let one = g.scalar_like(dt, 1.0)?;
            g.op("Fill")
                .name(&format!("grad_ys_{i}"))
                .input(shape)
                .input(one)
                .attr("T", dt)
                .attr("index_type", DType::Int32)
                .build_output()
        })
        .collect()
}

/// Sums the gradients received by one tensor: none, one, or an `AddN` of several.
fn aggregate(g: &mut Graph, grads: &[Output]) -> Result<Option<Output>> {
    match grads {
        [] => Ok(None),
        [one] => Ok(Some(*one)),
        many => {
            let dt = g.dtype(many[0]);
            g.op("AddN")
                .inputs(many)
                .attr("N", many.len() as i64)
                .attr("T", dt)
                .build_output()
                .map(Some)
        }
    }
}

/// Zeros for an unconnected source: TensorFlow's `zeros_like(x)` (optimize=True) makes them
/// from the static shape when it is fully known, so they do not depend on `x`'s value (an
/// unfed placeholder), and from `ZerosLike(x)` otherwise. A resource handle gets zeros
/// of its variable's dtype and shape (a `VarHandleOp`'s declared ones).
fn unconnected_zeros(g: &mut Graph, x: Output) -> Result<Output> {
    if g.dtype(x) == DType::Resource {
        let node = g.node(x.node);
        let value = (node.op_type() == "VarHandleOp")
            .then(|| {
                let attrs = node.attrs();
                Some((
                    attrs.dtype("dtype").ok()?,
                    attrs.shape_or_unknown("shape").ok()?.to_known()?,
                ))
            })
            .flatten();
        let Some((dtype, dims)) = value else {
            return Err(Error::invalid(format!(
                "gradients: the unconnected resource '{}' needs zeros, but is not a \
                 VarHandleOp of a fully known shape",
                g.output_name(x)
            )));
        };
        return g.zeros(dtype, &dims);
    }
    match g.shape(x).to_known() {
        Some(dims) => {
            let dt = g.dtype(x);
            g.zeros(dt, &dims)
        }
        None => zeros_like(g, x),
    }
}

fn zeros_like(g: &mut Graph, x: Output) -> Result<Output> {
    let dt = g.dtype(x);
    g.op("ZerosLike").input(x).attr("T", dt).build_output()
}

/// The gradient pass as control-flow gradients run it on a function body ([`GradCtx`]'s
/// `gradients`).
fn function_gradients(
    g: &mut Graph,
    ys: &[Output],
    xs: &[Output],
    grad_ys: &[Output],
) -> Result<Vec<Option<Output>>> {
    let opts = GradientOptions {
        grad_ys: Some(grad_ys.to_vec()),
        ..GradientOptions::default()
    };
    g.gradients_with(ys, xs, &opts)
}

/// Calls the node's gradient function under the name scope `<node>_grad`.
fn differentiate(
    g: &mut Graph,
    n: NodeId,
    out_grads: Vec<Option<Output>>,
) -> Result<Vec<Option<Output>>> {
    let node = g.node(n);
    let (name, op) = (node.name().to_string(), node.op());
    let num_inputs = node.inputs().len();
    let f = match op.gradient() {
        Gradient::Defined(f) => f,
        Gradient::NotDifferentiable => return Ok(vec![None; num_inputs]),
        Gradient::Missing => {
            return Err(Error::NotFound(format!(
                "No gradient defined for operation '{name}' (op type: {}); it lies on a path \
                 from the sources to the targets. Wrap its input in stop_gradient if no \
                 gradient should flow through it.",
                op.name()
            )))
        }
    };
    g.push_name_scope(&format!("{name}_grad"));
    let result = (|| {
        let mut grads = Vec::with_capacity(out_grads.len());
        for (i, og) in out_grads.into_iter().enumerate() {
            grads.push(match og {
                Some(x) => x,
                None => zeros_like(g, n.output(i))?,
            });
        }
        let mut ctx = GradCtx {
            graph: g,
            node: n,
            grads,
            gradients: function_gradients,
        };
        f(&mut ctx)
    })();
    g.pop_name_scope();
    let in_grads = result?;
    if in_grads.len() != num_inputs {
        return Err(Error::invalid(format!(
            "the gradient of '{name}' ({}) returned {} values for {num_inputs} inputs",
            op.name(),
            in_grads.len()
        )));
    }
    Ok(in_grads)
}

/// A gradient must have its input's dtype and a compatible shape; a resource handle's is a
/// float tensor (its variable's value's gradient).
fn check_grad_fits(g: &Graph, n: NodeId, i: usize, input: Output, grad: Output) -> Result<()> {
    let (is, gs) = (g.spec(input), g.spec(grad));
    let fits = if is.dtype == DType::Resource {
        is_trainable(gs.dtype)
    } else {
        is.dtype == gs.dtype && is.shape.merge(&gs.shape).is_ok()
    };
    if !fits {
        return Err(Error::invalid(format!(
            "the gradient of '{}' ({}) for input {i} is {gs}, but the input is {is}",
            g.node(n).name(),
            g.node(n).op_type()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests;

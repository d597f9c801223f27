//! TensorFlow 1 optimizers (`tf.compat.v1.train.*Optimizer`): `compute_gradients`,
//! `apply_gradients` and `minimize` append gradient nodes and in-place update ops
//! (`ApplyGradientDescent`, `ApplyMomentum`, `ApplyAdam`, `ApplyRMSProp`, `ApplyAdagrad`)
//! to the graph, with slot variables named as TensorFlow names them (`w/Momentum`,
//! `w/Adam`, `w/Adam_1`, ...) and an optional global step.

mod optimizers;

pub(crate) use optimizers::update_op;
pub use optimizers::{Adagrad, Adam, GradientDescent, Momentum, RMSProp};

use crate::graph::{Graph, NodeId, Output};
use crate::ops::state::VariableHandle;
use crate::tensor::{DType, Tensor};
use crate::{Error, Result};

/// A gradient (or `None` when the loss does not depend on the variable) and its variable.
pub type GradAndVar = (Option<Output>, VariableHandle);

/// One TensorFlow 1 optimizer.
pub trait Optimizer {
    /// The name scope of its nodes (`GradientDescent`, `Adam`, ...).
    fn name(&self) -> &str;

    /// Appends the update of one variable given its gradient; slot variables it needs are
    /// created here (and added to the graph's global variables).
    fn apply_dense(&mut self, g: &mut Graph, grad: Output, var: &VariableHandle) -> Result<NodeId>;

    /// Appends work that runs after every variable update (Adam's beta powers); returns the
    /// nodes the train op must also wait for.
    fn finish(&mut self, _g: &mut Graph, _updates: &[NodeId]) -> Result<Vec<NodeId>> {
        Ok(Vec::new())
    }

    /// Gradients of `loss` with respect to each variable (`compute_gradients`); with no
    /// list, every global variable of a float dtype.
    fn compute_gradients(
        &self,
        g: &mut Graph,
        loss: Output,
        var_list: Option<&[VariableHandle]>,
    ) -> Result<Vec<GradAndVar>> {
        let vars: Vec<VariableHandle> = match var_list {
            Some(v) => v.to_vec(),
            None => g
                .global_variables()
                .iter()
                .filter(|v| g.dtype(v.read).is_float())
                .copied()
                .collect(),
        };
        let xs: Vec<Output> = vars.iter().map(|v| v.var).collect();
        let grads = g.gradients(&[loss], &xs)?;
        Ok(grads.into_iter().zip(vars).collect())
    }

    /// Appends the updates (`apply_gradients`) and returns the train op: a NoOp named after
    /// the optimizer or, with a global step, the step's increment, run after every update.
    fn apply_gradients(
        &mut self,
        g: &mut Graph,
        grads_and_vars: &[GradAndVar],
        global_step: Option<&VariableHandle>,
    ) -> Result<NodeId> {
        let present: Vec<(Output, VariableHandle)> = grads_and_vars
            .iter()
            .filter_map(|(gr, v)| gr.map(|gr| (gr, *v)))
            .collect();
        if present.is_empty() {
            let names: Vec<String> = grads_and_vars
                .iter()
                .map(|(_, v)| g.node(v.var.node).name().to_string())
                .collect();
            return Err(Error::invalid(format!(
                "No gradients provided for any variable, check your graph for ops that do not \
                 support gradients, between variables {names:?} and the loss"
            )));
        }
        let name = self.name().to_string();
        g.push_name_scope(&name);
        let result = (|| {
            let mut updates = Vec::with_capacity(present.len());
            for (grad, var) in &present {
                let var_name = g.node(var.var.node).name().to_string();
                g.push_name_scope(&format!("update_{var_name}"));
                let update = self.apply_dense(g, *grad, var);
                g.pop_name_scope();
                updates.push(update?);
            }
            let mut waits = updates.clone();
            waits.extend(self.finish(g, &updates)?);
            Ok::<_, Error>(waits)
        })();
        g.pop_name_scope();
        let waits = result?;
        match global_step {
            None => g.group(&waits, &name),
            Some(step) => g.control_dependencies(&waits, |g| {
                let dt = g.dtype(step.var);
                let one = g.scalar_like(dt, 1.0)?;
                g.op("AssignAdd")
                    .name(&name)
                    .input(step.var)
                    .input(one)
                    .attr("T", dt)
                    .attr("use_locking", false)
                    .build()
            }),
        }
    }

    /// `compute_gradients` then `apply_gradients`: the train op that lowers `loss`.
    fn minimize(
        &mut self,
        g: &mut Graph,
        loss: Output,
        var_list: Option<&[VariableHandle]>,
        global_step: Option<&VariableHandle>,
    ) -> Result<NodeId> {
        let grads = self.compute_gradients(g, loss, var_list)?;
        self.apply_gradients(g, &grads, global_step)
    }
}

/// A slot variable for `var` named `<var>/<slot>`, initialized to `fill` everywhere; a
/// resource variable's slots are resource variables too.
pub(crate) fn slot(
    g: &mut Graph,
    var: &VariableHandle,
    slot_name: &str,
    fill: f64,
) -> Result<VariableHandle> {
    let spec = g.spec(var.read).clone();
    let dims = spec.shape.to_known().ok_or_else(|| {
        Error::invalid(format!(
            "variable '{}' needs a fully known shape for slots",
            g.node(var.var.node).name()
        ))
    })?;
    let init = g.constant(Tensor::full(&dims, fill).cast(spec.dtype)?)?;
    let name = format!("{}/{slot_name}", g.node(var.var.node).name());
    // Slots live at the root scope, beside their variable, as in TensorFlow.
    let saved = g.take_name_scopes();
    let v = if g.dtype(var.var) == DType::Resource {
        g.resource_variable(init, &name)
    } else {
        g.variable(init, &name)
    };
    g.restore_name_scopes(saved);
    v
}

/// A scalar hyper-parameter constant of the variable's dtype.
pub(crate) fn hyper(g: &mut Graph, dtype: DType, value: f64, name: &str) -> Result<Output> {
    g.constant_named(Tensor::scalar(value).cast(dtype)?, name)
}

impl Graph {
    /// The global step: an int64 scalar variable `global_step` starting at 0
    /// (`tf.compat.v1.train.get_or_create_global_step`).
    pub fn get_or_create_global_step(&mut self) -> Result<VariableHandle> {
        if let Some(v) = self
            .global_variables()
            .iter()
            .find(|v| self.node(v.var.node).name() == "global_step")
        {
            return Ok(*v);
        }
        let zero = self.constant_named(Tensor::scalar(0i64), "global_step/Initializer/zeros")?;
        self.variable(zero, "global_step")
    }
}

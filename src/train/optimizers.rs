//! The optimizers, each a thin layer that creates its slots and one update op per variable.

use super::{hyper, slot, Optimizer};
use crate::graph::{Graph, NodeId, Output};
use crate::ops::state::VariableHandle;
use crate::tensor::DType;
use crate::Result;

/// Adds an update op: `op_type` over the variable (and slot) references, hyper-parameters
/// and the gradient, in TensorFlow's input order; its `Resource` twin
/// (`ResourceApplyGradientDescent`, ...) when the variable is a resource handle.
pub(crate) fn update_op(
    g: &mut Graph,
    op_type: &str,
    inputs: &[Output],
    extra: &[(&str, bool)],
) -> Result<NodeId> {
    // The last input (the gradient or a hyper-parameter) has the values' dtype.
    let dt = g.dtype(inputs[inputs.len() - 1]);
    let op_type = if g.dtype(inputs[0]) == DType::Resource {
        format!("Resource{op_type}")
    } else {
        op_type.to_string()
    };
    let mut b = g
        .op(&op_type)
        .name(&op_type)
        .inputs(inputs)
        .attr("T", dt)
        .attr("use_locking", false);
    for &(k, v) in extra {
        b = b.attr(k, v);
    }
    b.build()
}

/// Plain gradient descent: `var -= lr * grad` (`tf.compat.v1.train.GradientDescentOptimizer`).
#[derive(Clone, Debug)]
pub struct GradientDescent {
    /// Learning rate.
    pub learning_rate: f64,
}

impl GradientDescent {
    /// With the given learning rate.
    pub fn new(learning_rate: f64) -> Self {
        GradientDescent { learning_rate }
    }
}

impl Optimizer for GradientDescent {
    fn name(&self) -> &str {
        "GradientDescent"
    }
    fn apply_dense(&mut self, g: &mut Graph, grad: Output, var: &VariableHandle) -> Result<NodeId> {
        let lr = hyper(g, g.dtype(var.read), self.learning_rate, "learning_rate")?;
        update_op(g, "ApplyGradientDescent", &[var.var, lr, grad], &[])
    }
}

/// Momentum, optionally Nesterov (`tf.compat.v1.train.MomentumOptimizer`):
/// `accum = accum * momentum + grad; var -= lr * accum`.
#[derive(Clone, Debug)]
pub struct Momentum {
    /// Learning rate.
    pub learning_rate: f64,
    /// Momentum coefficient.
    pub momentum: f64,
    /// Use Nesterov momentum.
    pub nesterov: bool,
}

impl Momentum {
    /// Classical momentum.
    pub fn new(learning_rate: f64, momentum: f64) -> Self {
        Momentum {
            learning_rate,
            momentum,
            nesterov: false,
        }
    }
}

impl Optimizer for Momentum {
    fn name(&self) -> &str {
        "Momentum"
    }
    fn apply_dense(&mut self, g: &mut Graph, grad: Output, var: &VariableHandle) -> Result<NodeId> {
        let accum = slot(g, var, "Momentum", 0.0)?;
        let dt = g.dtype(var.read);
        let lr = hyper(g, dt, self.learning_rate, "learning_rate")?;
        let m = hyper(g, dt, self.momentum, "momentum")?;
        update_op(
            g,
            "ApplyMomentum",
            &[var.var, accum.var, lr, grad, m],
            &[("use_nesterov", self.nesterov)],
        )
    }
}

/// Adam (`tf.compat.v1.train.AdamOptimizer`), with TensorFlow 1's bias correction folded
/// into the step size and `beta1_power` / `beta2_power` variables.
#[derive(Clone, Debug)]
pub struct Adam {
    /// Learning rate.
    pub learning_rate: f64,
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Added to the denominator.
    pub epsilon: f64,
    powers: Option<(VariableHandle, VariableHandle)>,
}

impl Adam {
    /// TensorFlow 1's defaults besides the learning rate: beta1 0.9, beta2 0.999, epsilon 1e-8.
    pub fn new(learning_rate: f64) -> Self {
        Adam {
            learning_rate,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
            powers: None,
        }
    }

    /// Sets epsilon (Keras uses 1e-7).
    pub fn with_epsilon(mut self, epsilon: f64) -> Self {
        self.epsilon = epsilon;
        self
    }

    fn powers(
        &mut self,
        g: &mut Graph,
        var: &VariableHandle,
    ) -> Result<(VariableHandle, VariableHandle)> {
        if let Some(p) = self.powers {
            return Ok(p);
        }
        let dt = g.dtype(var.read);
        let saved = g.take_name_scopes();
        let b1 = g
            .scalar_like(dt, self.beta1)
            .and_then(|v| g.variable(v, "beta1_power"));
        let b2 = g
            .scalar_like(dt, self.beta2)
            .and_then(|v| g.variable(v, "beta2_power"));
        g.restore_name_scopes(saved);
        let p = (b1?, b2?);
        self.powers = Some(p);
        Ok(p)
    }
}

impl Optimizer for Adam {
    fn name(&self) -> &str {
        "Adam"
    }
    fn apply_dense(&mut self, g: &mut Graph, grad: Output, var: &VariableHandle) -> Result<NodeId> {
        let (b1p, b2p) = self.powers(g, var)?;
        let m = slot(g, var, "Adam", 0.0)?;
        let v = slot(g, var, "Adam_1", 0.0)?;
        let dt = g.dtype(var.read);
        let lr = hyper(g, dt, self.learning_rate, "learning_rate")?;
        let b1 = hyper(g, dt, self.beta1, "beta1")?;
        let b2 = hyper(g, dt, self.beta2, "beta2")?;
        let eps = hyper(g, dt, self.epsilon, "epsilon")?;
        update_op(
            g,
            "ApplyAdam",
            &[
                var.var, m.var, v.var, b1p.read, b2p.read, lr, b1, b2, eps, grad,
            ],
            &[("use_nesterov", false)],
        )
    }
    fn finish(&mut self, g: &mut Graph, updates: &[NodeId]) -> Result<Vec<NodeId>> {
        let Some((b1p, b2p)) = self.powers else {
            return Ok(Vec::new());
        };
        let (beta1, beta2) = (self.beta1, self.beta2);
        g.control_dependencies(updates, |g| {
            let mut out = Vec::new();
            for (p, beta, name) in [(b1p, beta1, "update_beta1"), (b2p, beta2, "update_beta2")] {
                let dt = g.dtype(p.var);
                let b = g.scalar_like(dt, beta)?;
                let next = g.mul(p.read, b)?;
                let assign = g
                    .op("Assign")
                    .name(name)
                    .input(p.var)
                    .input(next)
                    .attr("T", dt)
                    .attr("validate_shape", true)
                    .attr("use_locking", false)
                    .build()?;
                out.push(assign);
            }
            Ok(out)
        })
    }
}

/// RMSProp (`tf.compat.v1.train.RMSPropOptimizer`): `ms` starts at ones, as in TensorFlow 1.
#[derive(Clone, Debug)]
pub struct RMSProp {
    /// Learning rate.
    pub learning_rate: f64,
    /// Discount of the squared-gradient average.
    pub decay: f64,
    /// Momentum coefficient.
    pub momentum: f64,
    /// Added inside the square root.
    pub epsilon: f64,
}

impl RMSProp {
    /// TensorFlow 1's defaults: decay 0.9, momentum 0, epsilon 1e-10.
    pub fn new(learning_rate: f64) -> Self {
        RMSProp {
            learning_rate,
            decay: 0.9,
            momentum: 0.0,
            epsilon: 1e-10,
        }
    }
}

impl Optimizer for RMSProp {
    fn name(&self) -> &str {
        "RMSProp"
    }
    fn apply_dense(&mut self, g: &mut Graph, grad: Output, var: &VariableHandle) -> Result<NodeId> {
        let ms = slot(g, var, "RMSProp", 1.0)?;
        let mom = slot(g, var, "RMSProp_1", 0.0)?;
        let dt = g.dtype(var.read);
        let lr = hyper(g, dt, self.learning_rate, "learning_rate")?;
        let rho = hyper(g, dt, self.decay, "decay")?;
        let m = hyper(g, dt, self.momentum, "momentum")?;
        let eps = hyper(g, dt, self.epsilon, "epsilon")?;
        update_op(
            g,
            "ApplyRMSProp",
            &[var.var, ms.var, mom.var, lr, rho, m, eps, grad],
            &[],
        )
    }
}

/// Adagrad (`tf.compat.v1.train.AdagradOptimizer`): `accum += grad²; var -= lr·grad/√accum`.
#[derive(Clone, Debug)]
pub struct Adagrad {
    /// Learning rate.
    pub learning_rate: f64,
    /// Starting value of the accumulators.
    pub initial_accumulator_value: f64,
}

impl Adagrad {
    /// TensorFlow 1's default initial accumulator value, 0.1.
    pub fn new(learning_rate: f64) -> Self {
        Adagrad {
            learning_rate,
            initial_accumulator_value: 0.1,
        }
    }
}

impl Optimizer for Adagrad {
    fn name(&self) -> &str {
        "Adagrad"
    }
    fn apply_dense(&mut self, g: &mut Graph, grad: Output, var: &VariableHandle) -> Result<NodeId> {
        let accum = slot(g, var, "Adagrad", self.initial_accumulator_value)?;
        let lr = hyper(g, g.dtype(var.read), self.learning_rate, "learning_rate")?;
        update_op(g, "ApplyAdagrad", &[var.var, accum.var, lr, grad], &[])
    }
}

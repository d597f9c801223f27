//! Keras 3's optimizers (`keras.optimizers.SGD`, `Adam`, `AdamW`, `RMSprop`, `Adagrad`)
//! with Keras's defaults and update rules, built on the graph's `Apply*` ops (or, where
//! Keras's rule differs from TensorFlow 1's kernel, the same few ops Keras runs), and the
//! learning-rate schedules `ExponentialDecay` and `CosineDecay`.
//!
//! As in Keras, an optimizer owns an int64 `iteration` counter and a float32
//! `learning_rate` variable; a schedule (or a callback) sets the learning rate from the
//! host before each step, so changing it never changes the graph.

use crate::graph::{Graph, NodeId, Output};
use crate::ops::state::VariableHandle;
use crate::tensor::{DType, Tensor};
use crate::train::{update_op, Optimizer as GraphOptimizer};
use crate::{Error, Result};
use serde_json::{json, Value};

/// A learning rate: a constant or a schedule of the step number.
#[derive(Clone, Debug, PartialEq)]
pub enum LearningRate {
    /// The same rate every step.
    Constant(f64),
    /// `initial · rate^(step / decay_steps)` (`floor` of the exponent with `staircase`).
    ExponentialDecay {
        /// Rate at step 0.
        initial_learning_rate: f64,
        /// Steps per decay period.
        decay_steps: u64,
        /// Factor per period.
        decay_rate: f64,
        /// Decay in whole periods.
        staircase: bool,
    },
    /// `initial · ((1 - alpha) · ½(1 + cos(π · min(step, decay_steps) / decay_steps)) + alpha)`.
    CosineDecay {
        /// Rate at step 0.
        initial_learning_rate: f64,
        /// Steps to decay over.
        decay_steps: u64,
        /// Fraction of the initial rate kept at the end.
        alpha: f64,
    },
}

impl LearningRate {
    /// Keras's `ExponentialDecay(initial_learning_rate, decay_steps, decay_rate)`.
    pub fn exponential_decay(initial: f64, decay_steps: u64, decay_rate: f64) -> Self {
        LearningRate::ExponentialDecay {
            initial_learning_rate: initial,
            decay_steps,
            decay_rate,
            staircase: false,
        }
    }

    /// Keras's `CosineDecay(initial_learning_rate, decay_steps)` (alpha 0).
    pub fn cosine_decay(initial: f64, decay_steps: u64) -> Self {
        LearningRate::CosineDecay {
            initial_learning_rate: initial,
            decay_steps,
            alpha: 0.0,
        }
    }

    /// The rate at step `step` (0 for the first step), computed in float32 as Keras does.
    pub fn at(&self, step: u64) -> f64 {
        match *self {
            LearningRate::Constant(lr) => lr,
            LearningRate::ExponentialDecay {
                initial_learning_rate,
                decay_steps,
                decay_rate,
                staircase,
            } => {
                let mut p = step as f32 / decay_steps.max(1) as f32;
                if staircase {
                    p = p.floor();
                }
                (initial_learning_rate as f32 * (decay_rate as f32).powf(p)) as f64
            }
            LearningRate::CosineDecay {
                initial_learning_rate,
                decay_steps,
                alpha,
            } => {
                let done = step.min(decay_steps) as f32 / decay_steps.max(1) as f32;
                let cosine = 0.5 * (1.0 + (std::f32::consts::PI * done).cos());
                let decayed = (1.0 - alpha as f32) * cosine + alpha as f32;
                (initial_learning_rate as f32 * decayed) as f64
            }
        }
    }

    /// Whether the rate depends on the step.
    pub fn is_schedule(&self) -> bool {
        !matches!(self, LearningRate::Constant(_))
    }

    fn to_config(&self) -> Value {
        match *self {
            LearningRate::Constant(lr) => json!(lr),
            LearningRate::ExponentialDecay {
                initial_learning_rate,
                decay_steps,
                decay_rate,
                staircase,
            } => json!({
                "module": "keras.optimizers.schedules",
                "class_name": "ExponentialDecay",
                "config": {
                    "initial_learning_rate": initial_learning_rate,
                    "decay_steps": decay_steps,
                    "decay_rate": decay_rate,
                    "staircase": staircase,
                    "name": "ExponentialDecay"
                },
                "registered_name": null
            }),
            LearningRate::CosineDecay {
                initial_learning_rate,
                decay_steps,
                alpha,
            } => json!({
                "module": "keras.optimizers.schedules",
                "class_name": "CosineDecay",
                "config": {
                    "initial_learning_rate": initial_learning_rate,
                    "decay_steps": decay_steps,
                    "alpha": alpha,
                    "name": "CosineDecay",
                    "warmup_target": null,
                    "warmup_steps": 0
                },
                "registered_name": null
            }),
        }
    }

    fn from_config(v: &Value) -> Result<LearningRate> {
        if let Some(lr) = v.as_f64() {
            return Ok(LearningRate::Constant(lr));
        }
        let cfg = v.get("config").cloned().unwrap_or(json!({}));
        let num = |k: &str| {
            cfg.get(k)
                .and_then(Value::as_f64)
                .ok_or_else(|| Error::invalid(format!("learning-rate schedule without '{k}': {v}")))
        };
        match v.get("class_name").and_then(Value::as_str) {
            Some("ExponentialDecay") => Ok(LearningRate::ExponentialDecay {
                initial_learning_rate: num("initial_learning_rate")?,
                decay_steps: num("decay_steps")? as u64,
                decay_rate: num("decay_rate")?,
                staircase: cfg
                    .get("staircase")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
            }),
            Some("CosineDecay") => Ok(LearningRate::CosineDecay {
                initial_learning_rate: num("initial_learning_rate")?,
                decay_steps: num("decay_steps")? as u64,
                alpha: cfg.get("alpha").and_then(Value::as_f64).unwrap_or(0.0),
            }),
            _ => Err(Error::invalid(format!(
                "unknown learning-rate schedule: {v}"
            ))),
        }
    }
}

impl From<f64> for LearningRate {
    fn from(lr: f64) -> Self {
        LearningRate::Constant(lr)
    }
}

/// The update rule of an optimizer, with its hyper-parameters.
#[derive(Clone, Debug, PartialEq)]
pub enum Rule {
    /// `SGD(momentum=0.0, nesterov=False)`.
    Sgd {
        /// Momentum factor (0 for plain descent).
        momentum: f64,
        /// Whether to use Nesterov momentum.
        nesterov: bool,
    },
    /// `Adam(beta_1=0.9, beta_2=0.999, epsilon=1e-7)`; with `weight_decay`, `AdamW`
    /// (default weight decay 0.004).
    Adam {
        /// Decay rate of the first-moment estimates.
        beta_1: f64,
        /// Decay rate of the second-moment estimates.
        beta_2: f64,
        /// Small constant added to denominators for numerical stability.
        epsilon: f64,
        /// Decoupled weight decay rate, if any (AdamW).
        weight_decay: Option<f64>,
    },
    /// `RMSprop(rho=0.9, momentum=0.0, epsilon=1e-7)`.
    RmsProp {
        /// Decay rate of the moving average of squared gradients.
        rho: f64,
        /// Momentum factor (0 for plain descent).
        momentum: f64,
        /// Small constant added to denominators for numerical stability.
        epsilon: f64,
    },
    /// `Adagrad(initial_accumulator_value=0.1, epsilon=1e-7)`.
    Adagrad {
        /// Starting value of the squared-gradient accumulators.
        initial_accumulator_value: f64,
        /// Small constant added to denominators for numerical stability.
        epsilon: f64,
    },
}

/// The optimizer's variables, once built in a graph.
#[derive(Clone, Copy, Debug)]
struct State {
    iterations: VariableHandle,
    learning_rate: VariableHandle,
    /// `beta_1^(t+1)`, `beta_2^(t+1)` for Adam, computed once per graph.
    beta_powers: Option<(Output, Output)>,
}

/// A Keras optimizer.
#[derive(Clone, Debug)]
pub struct Optimizer {
    name: String,
    rule: Rule,
    learning_rate: LearningRate,
    state: Option<State>,
}

impl Optimizer {
    fn with(name: &str, rule: Rule, learning_rate: f64) -> Self {
        Optimizer {
            name: name.to_string(),
            rule,
            learning_rate: LearningRate::Constant(learning_rate),
            state: None,
        }
    }

    /// `keras.optimizers.SGD()`: learning rate 0.01, no momentum.
    pub fn sgd() -> Self {
        Self::with(
            "sgd",
            Rule::Sgd {
                momentum: 0.0,
                nesterov: false,
            },
            0.01,
        )
    }

    /// `keras.optimizers.Adam()`: learning rate 0.001, betas 0.9 / 0.999, epsilon 1e-7.
    pub fn adam() -> Self {
        Self::with(
            "adam",
            Rule::Adam {
                beta_1: 0.9,
                beta_2: 0.999,
                epsilon: 1e-7,
                weight_decay: None,
            },
            0.001,
        )
    }

    /// `keras.optimizers.AdamW()`: Adam with decoupled weight decay 0.004.
    pub fn adamw() -> Self {
        Self::with(
            "adamw",
            Rule::Adam {
                beta_1: 0.9,
                beta_2: 0.999,
                epsilon: 1e-7,
                weight_decay: Some(0.004),
            },
            0.001,
        )
    }

    /// `keras.optimizers.RMSprop()`: learning rate 0.001, rho 0.9, epsilon 1e-7.
    pub fn rmsprop() -> Self {
        Self::with(
            "rmsprop",
            Rule::RmsProp {
                rho: 0.9,
                momentum: 0.0,
                epsilon: 1e-7,
            },
            0.001,
        )
    }

    /// `keras.optimizers.Adagrad()`: learning rate 0.001, accumulators from 0.1.
    pub fn adagrad() -> Self {
        Self::with(
            "adagrad",
            Rule::Adagrad {
                initial_accumulator_value: 0.1,
                epsilon: 1e-7,
            },
            0.001,
        )
    }

    /// The optimizer Keras knows by `name` (`"sgd"`, `"adam"`, `"adamw"`, `"rmsprop"`,
    /// `"adagrad"`), with its defaults.
    pub fn get(name: &str) -> Result<Self> {
        match name.to_ascii_lowercase().as_str() {
            "sgd" => Ok(Self::sgd()),
            "adam" => Ok(Self::adam()),
            "adamw" => Ok(Self::adamw()),
            "rmsprop" => Ok(Self::rmsprop()),
            "adagrad" => Ok(Self::adagrad()),
            _ => Err(Error::invalid(format!(
                "Could not interpret optimizer identifier: '{name}' (known: sgd, adam, adamw, \
                 rmsprop, adagrad)"
            ))),
        }
    }

    /// Sets the learning rate or schedule.
    pub fn learning_rate(mut self, lr: impl Into<LearningRate>) -> Self {
        self.learning_rate = lr.into();
        self
    }

    /// Sets SGD's or RMSprop's momentum.
    pub fn momentum(mut self, value: f64) -> Self {
        match &mut self.rule {
            Rule::Sgd { momentum, .. } | Rule::RmsProp { momentum, .. } => *momentum = value,
            _ => {}
        }
        self
    }

    /// Nesterov momentum for SGD.
    pub fn nesterov(mut self, value: bool) -> Self {
        if let Rule::Sgd { nesterov, .. } = &mut self.rule {
            *nesterov = value;
        }
        self
    }

    /// Sets epsilon (Adam, RMSprop, Adagrad).
    pub fn epsilon(mut self, value: f64) -> Self {
        match &mut self.rule {
            Rule::Adam { epsilon, .. }
            | Rule::RmsProp { epsilon, .. }
            | Rule::Adagrad { epsilon, .. } => *epsilon = value,
            Rule::Sgd { .. } => {}
        }
        self
    }

    /// Sets AdamW's weight decay.
    pub fn weight_decay(mut self, value: f64) -> Self {
        if let Rule::Adam { weight_decay, .. } = &mut self.rule {
            *weight_decay = Some(value);
        }
        self
    }

    /// The update rule.
    pub fn rule(&self) -> &Rule {
        &self.rule
    }

    /// The learning rate or schedule it was made with.
    pub fn schedule(&self) -> &LearningRate {
        &self.learning_rate
    }

    /// The optimizer's `iteration` and `learning_rate` variables, once built.
    pub(crate) fn variables(&self) -> Option<(VariableHandle, VariableHandle)> {
        self.state.map(|s| (s.iterations, s.learning_rate))
    }

    /// Appends the update of every `(gradient, variable)` pair and the increment of the
    /// iteration counter; returns the train op.
    pub(crate) fn apply(
        &mut self,
        g: &mut Graph,
        grads_and_vars: &[(Option<Output>, VariableHandle)],
    ) -> Result<NodeId> {
        let state = self.build(g)?;
        self.apply_gradients(g, grads_and_vars, Some(&state.iterations))
    }

    /// Only the increment of the iteration counter (a model with nothing to train).
    pub(crate) fn count_step(&mut self, g: &mut Graph) -> Result<NodeId> {
        let state = self.build(g)?;
        let one = g.constant(Tensor::scalar(1i64))?;
        Ok(assign_op(g, "AssignAdd", state.iterations.var, one)?.node)
    }

    fn build(&mut self, g: &mut Graph) -> Result<State> {
        if let Some(s) = self.state {
            return Ok(s);
        }
        let saved = g.take_name_scopes();
        let name = self.name.clone();
        let lr0 = self.learning_rate.at(0);
        let state = g.name_scope(&name, |g| -> Result<State> {
            let zero = g.constant(Tensor::scalar(0i64))?;
            let iterations = g.variable(zero, "iteration")?;
            let lr = g.constant(Tensor::scalar(lr0 as f32))?;
            let learning_rate = g.variable(lr, "learning_rate")?;
            let beta_powers = match self.rule {
                Rule::Adam { beta_1, beta_2, .. } => {
                    let one = g.constant(Tensor::scalar(1i64))?;
                    let step = g.add(iterations.read, one)?;
                    let step = g.cast(step, DType::Float32)?;
                    let b1 = g.constant(Tensor::scalar(beta_1 as f32))?;
                    let b2 = g.constant(Tensor::scalar(beta_2 as f32))?;
                    Some((g.pow(b1, step)?, g.pow(b2, step)?))
                }
                _ => None,
            };
            Ok(State {
                iterations,
                learning_rate,
                beta_powers,
            })
        });
        g.restore_name_scopes(saved);
        let state = state?;
        self.state = Some(state);
        Ok(state)
    }

    /// A zero-filled (or `fill`-filled) slot `<optimizer>/<var path>_<slot>`.
    fn slot(
        &self,
        g: &mut Graph,
        var: &VariableHandle,
        slot: &str,
        fill: f32,
    ) -> Result<VariableHandle> {
        let dims = g.shape(var.var).to_known().ok_or_else(|| {
            Error::invalid(format!(
                "variable '{}' needs a fully known shape",
                g.node(var.var.node).name()
            ))
        })?;
        let path = g.node(var.var.node).name().replace('/', "_");
        let saved = g.take_name_scopes();
        let v = g
            .constant(Tensor::full(&dims, fill))
            .and_then(|init| g.variable(init, &format!("{}/{path}_{slot}", self.name)));
        g.restore_name_scopes(saved);
        v
    }

    /// Keras 3's serialized optimizer.
    pub fn to_config(&self) -> Value {
        let (class, mut cfg) = match self.rule {
            Rule::Sgd { momentum, nesterov } => {
                ("SGD", json!({"momentum": momentum, "nesterov": nesterov}))
            }
            Rule::Adam {
                beta_1,
                beta_2,
                epsilon,
                weight_decay,
            } => (
                if weight_decay.is_some() {
                    "AdamW"
                } else {
                    "Adam"
                },
                json!({"beta_1": beta_1, "beta_2": beta_2, "epsilon": epsilon, "amsgrad": false,
                       "weight_decay": weight_decay}),
            ),
            Rule::RmsProp {
                rho,
                momentum,
                epsilon,
            } => (
                "RMSprop",
                json!({"rho": rho, "momentum": momentum, "epsilon": epsilon, "centered": false}),
            ),
            Rule::Adagrad {
                initial_accumulator_value,
                epsilon,
            } => (
                "Adagrad",
                json!({"initial_accumulator_value": initial_accumulator_value,
                       "epsilon": epsilon}),
            ),
        };
        let m = cfg.as_object_mut().expect("object");
        m.insert("name".into(), json!(self.name));
        m.insert("learning_rate".into(), self.learning_rate.to_config());
        m.entry("weight_decay").or_insert(Value::Null);
        for k in [
            "clipnorm",
            "global_clipnorm",
            "clipvalue",
            "ema_overwrite_frequency",
            "loss_scale_factor",
            "gradient_accumulation_steps",
        ] {
            m.insert(k.into(), Value::Null);
        }
        m.insert("use_ema".into(), json!(false));
        m.insert("ema_momentum".into(), json!(0.99));
        json!({
            "module": "keras.optimizers",
            "class_name": class,
            "config": cfg,
            "registered_name": null
        })
    }

    /// Reads a serialized optimizer (or a bare name) as Keras writes it.
    pub fn from_config(v: &Value) -> Result<Optimizer> {
        if let Some(name) = v.as_str() {
            return Optimizer::get(name);
        }
        let class = v
            .get("class_name")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::invalid(format!("optimizer config without class_name: {v}")))?;
        let mut opt = Optimizer::get(class)?;
        let cfg = v.get("config").cloned().unwrap_or(json!({}));
        let num = |k: &str| cfg.get(k).and_then(Value::as_f64);
        if let Some(lr) = cfg.get("learning_rate") {
            opt.learning_rate = LearningRate::from_config(lr)?;
        }
        if let Some(name) = cfg.get("name").and_then(Value::as_str) {
            opt.name = name.to_string();
        }
        match &mut opt.rule {
            Rule::Sgd { momentum, nesterov } => {
                *momentum = num("momentum").unwrap_or(*momentum);
                *nesterov = cfg
                    .get("nesterov")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
            }
            Rule::Adam {
                beta_1,
                beta_2,
                epsilon,
                weight_decay,
            } => {
                *beta_1 = num("beta_1").unwrap_or(*beta_1);
                *beta_2 = num("beta_2").unwrap_or(*beta_2);
                *epsilon = num("epsilon").unwrap_or(*epsilon);
                *weight_decay = num("weight_decay").or(*weight_decay);
            }
            Rule::RmsProp {
                rho,
                momentum,
                epsilon,
            } => {
                *rho = num("rho").unwrap_or(*rho);
                *momentum = num("momentum").unwrap_or(*momentum);
                *epsilon = num("epsilon").unwrap_or(*epsilon);
            }
            Rule::Adagrad {
                initial_accumulator_value,
                epsilon,
            } => {
                *initial_accumulator_value =
                    num("initial_accumulator_value").unwrap_or(*initial_accumulator_value);
                *epsilon = num("epsilon").unwrap_or(*epsilon);
            }
        }
        Ok(opt)
    }
}

/// What `compile` takes as an optimizer: an [`Optimizer`] or Keras's name of one.
pub trait IntoOptimizer {
    /// The optimizer, or an error for an unknown name.
    fn into_optimizer(self) -> Result<Optimizer>;
}

impl IntoOptimizer for Optimizer {
    fn into_optimizer(self) -> Result<Optimizer> {
        Ok(self)
    }
}

impl IntoOptimizer for &str {
    fn into_optimizer(self) -> Result<Optimizer> {
        Optimizer::get(self)
    }
}

/// `var op= value` with an Assign-family op; returns its output (the new value).
fn assign_op(g: &mut Graph, op_type: &str, var: Output, value: Output) -> Result<Output> {
    let dt = g.dtype(var);
    g.op(op_type)
        .name(op_type)
        .input(var)
        .input(value)
        .attr("T", dt)
        .attr("use_locking", false)
        .build_output()
}

impl GraphOptimizer for Optimizer {
    fn name(&self) -> &str {
        &self.name
    }

    fn apply_dense(&mut self, g: &mut Graph, grad: Output, var: &VariableHandle) -> Result<NodeId> {
        let state = self.build(g)?;
        let lr = state.learning_rate.read;
        let konst = |g: &mut Graph, v: f64| g.constant(Tensor::scalar(v as f32));
        match self.rule.clone() {
            Rule::Sgd { momentum: 0.0, .. } => {
                update_op(g, "ApplyGradientDescent", &[var.var, lr, grad], &[])
            }
            Rule::Sgd { momentum, nesterov } => {
                // Keras 3's rule: m = momentum·m − lr·g, then var += m (Nesterov: var +=
                // momentum·m − lr·g). TensorFlow 1's ApplyMomentum keeps m / lr instead,
                // which differs as soon as the learning rate changes between steps.
                let m = self.slot(g, var, "momentum", 0.0)?;
                let mu = konst(g, momentum)?;
                let kept = g.mul(m.read, mu)?;
                let step = g.mul(lr, grad)?;
                let m_new = g.sub(kept, step)?;
                let m_new = g.assign(m.var, m_new)?;
                let delta = if nesterov {
                    let ahead = g.mul(m_new, mu)?;
                    g.sub(ahead, step)?
                } else {
                    m_new
                };
                Ok(g.assign_add(var.var, delta)?.node)
            }
            Rule::Adam {
                beta_1,
                beta_2,
                epsilon,
                weight_decay,
            } => {
                let m = self.slot(g, var, "momentum", 0.0)?.var;
                let v = self.slot(g, var, "velocity", 0.0)?.var;
                let (b1p, b2p) = state.beta_powers.expect("built with Adam");
                let b1 = konst(g, beta_1)?;
                let b2 = konst(g, beta_2)?;
                let eps = konst(g, epsilon)?;
                let inputs = [var.var, m, v, b1p, b2p, lr, b1, b2, eps, grad];
                match weight_decay {
                    None => update_op(g, "ApplyAdam", &inputs, &[("use_nesterov", false)]),
                    Some(wd) => {
                        // AdamW: var -= var · wd · lr before the Adam step.
                        let wd = konst(g, wd)?;
                        let scaled = g.mul(var.read, wd)?;
                        let decay = g.mul(scaled, lr)?;
                        let decayed = assign_op(g, "AssignSub", var.var, decay)?;
                        g.control_dependencies(&[decayed.node], |g| {
                            update_op(g, "ApplyAdam", &inputs, &[("use_nesterov", false)])
                        })
                    }
                }
            }
            Rule::RmsProp {
                rho,
                momentum,
                epsilon,
            } => {
                let ms = self.slot(g, var, "velocity", 0.0)?.var;
                let mom = self.slot(g, var, "momentum", 0.0)?.var;
                let rho = konst(g, rho)?;
                let m = konst(g, momentum)?;
                let eps = konst(g, epsilon)?;
                update_op(
                    g,
                    "ApplyRMSProp",
                    &[var.var, ms, mom, lr, rho, m, eps, grad],
                    &[],
                )
            }
            Rule::Adagrad {
                initial_accumulator_value,
                epsilon,
            } => {
                // accumulator += g²; var -= lr·g / sqrt(accumulator + epsilon).
                let acc = self
                    .slot(g, var, "accumulator", initial_accumulator_value as f32)?
                    .var;
                let sq = g.square(grad)?;
                let acc_new = assign_op(g, "AssignAdd", acc, sq)?;
                let eps = konst(g, epsilon)?;
                let denom = g.add(acc_new, eps)?;
                let denom = g.sqrt(denom)?;
                let step = g.mul(lr, grad)?;
                let step = g.div(step, denom)?;
                Ok(assign_op(g, "AssignSub", var.var, step)?.node)
            }
        }
    }
}

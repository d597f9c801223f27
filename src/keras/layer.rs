//! The [`Layer`] trait every Keras layer implements, its weights, and Keras's unique
//! layer names (`dense`, `dense_1`, …).

use crate::graph::{Graph, NodeId, Output};
use crate::keras::regularizers::Regularizer;
use crate::ops::state::VariableHandle;
use crate::session::SessionOptions;
use crate::{Error, Result};
use serde_json::{Map, Value};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;

/// A Keras shape: one entry per axis, the batch axis first, `None` where unknown.
pub type Shape = Vec<Option<usize>>;

thread_local! {
    static UIDS: RefCell<HashMap<String, usize>> = RefCell::new(HashMap::new());
    static SEED: Cell<Option<u64>> = const { Cell::new(None) };
    static OPTIONS: RefCell<Option<SessionOptions>> = const { RefCell::new(None) };
}

/// The thread settings of the sessions of models built afterwards on this thread
/// (`tf.config.threading.set_inter_op_parallelism_threads` and `..._intra_op_...`);
/// by default all cores.
pub fn set_session_options(options: SessionOptions) {
    OPTIONS.with(|o| *o.borrow_mut() = Some(options));
}

/// The thread settings set by [`set_session_options`], or the default.
pub(crate) fn session_options() -> SessionOptions {
    OPTIONS.with(|o| o.borrow().clone().unwrap_or_default())
}

/// Makes weight initialization and batch shuffling on this thread repeatable
/// (`keras.utils.set_random_seed`): models built afterwards get graph seeds, and `fit`
/// shuffle orders, drawn from `seed`.
pub fn set_random_seed(seed: u64) {
    SEED.with(|s| s.set(Some(seed)));
}

/// The next seed for a graph or a shuffle: from [`set_random_seed`]'s sequence, or from
/// the clock when no seed was set.
pub(crate) fn next_seed() -> u64 {
    SEED.with(|s| match s.get() {
        Some(v) => {
            let next = v
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            s.set(Some(next));
            v
        }
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0),
    })
}

/// A name unique among the names made from `prefix` on this thread, as Keras makes them:
/// `prefix`, then `prefix_1`, `prefix_2`, … (Keras keeps one counter per process; here
/// each thread has its own, so tests running side by side see Keras's sequence).
pub fn unique_name(prefix: &str) -> String {
    UIDS.with(|u| {
        let mut u = u.borrow_mut();
        let n = u.entry(prefix.to_string()).or_insert(0);
        *n += 1;
        if *n == 1 {
            prefix.to_string()
        } else {
            format!("{prefix}_{}", *n - 1)
        }
    })
}

/// Forgets the names handed out on this thread (`keras.backend.clear_session()`).
pub fn clear_session() {
    UIDS.with(|u| u.borrow_mut().clear());
}

/// Formats a shape as Keras prints it: `(None, 128)`.
pub fn format_shape(shape: &[Option<usize>]) -> String {
    let dims: Vec<String> = shape
        .iter()
        .map(|d| d.map_or("None".to_string(), |d| d.to_string()))
        .collect();
    if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    }
}

/// One variable of a layer.
#[derive(Clone, Debug)]
pub struct Weight {
    /// Keras's path of the variable, `<layer>/<name>` (`dense/kernel`); also its node name.
    pub path: String,
    /// The graph variable.
    pub var: VariableHandle,
    /// Its shape.
    pub shape: Vec<usize>,
    /// Whether gradients update it (false for BatchNormalization's moving statistics).
    pub trainable: bool,
}

impl Weight {
    /// Number of scalars.
    pub fn size(&self) -> usize {
        self.shape.iter().product()
    }
}

/// What a layer's call adds besides its output.
#[derive(Debug, Default)]
pub struct CallContext {
    /// Training mode: Dropout drops, BatchNormalization uses and updates batch statistics.
    pub training: bool,
    /// Ops that must run with each training step (moving-statistics updates).
    pub updates: Vec<NodeId>,
    /// Scalar losses the layer adds to the model's loss (regularization).
    pub losses: Vec<Output>,
}

impl CallContext {
    /// A context for inference (`training` false) or training.
    pub fn new(training: bool) -> Self {
        CallContext {
            training,
            ..Default::default()
        }
    }
}

/// A Keras layer: built lazily from the first input shape it sees, then called on graph
/// tensors to add its computation.
pub trait Layer: Send {
    /// The layer's unique name (`dense`, `dense_1`, …).
    fn name(&self) -> &str;

    /// Keras's class name (`Dense`).
    fn class_name(&self) -> &'static str;

    /// Whether the variables exist.
    fn built(&self) -> bool;

    /// Creates the layer's variables in `g` for inputs of `input_shape` (batch first).
    /// Errors name the layer and the shape.
    fn build(&mut self, g: &mut Graph, input_shape: &[Option<usize>]) -> Result<()>;

    /// The output shape for an input shape (no graph needed).
    fn compute_output_shape(&self, input_shape: &[Option<usize>]) -> Result<Shape>;

    /// Adds the layer's computation on `x` to `g` (the layer must be built).
    fn call(&self, g: &mut Graph, x: Output, ctx: &mut CallContext) -> Result<Output>;

    /// Builds the layer for several inputs (merge layers); other layers take exactly one.
    fn build_multi(&mut self, g: &mut Graph, input_shapes: &[Shape]) -> Result<()> {
        let shape = single(self, input_shapes)?.to_vec();
        self.build(g, &shape)
    }

    /// The output shape for several inputs (merge layers); other layers take exactly one.
    fn compute_output_shape_multi(&self, input_shapes: &[Shape]) -> Result<Shape> {
        self.compute_output_shape(single(self, input_shapes)?)
    }

    /// Adds the layer's computation on several inputs (merge layers); other layers take
    /// exactly one.
    fn call_multi(&self, g: &mut Graph, xs: &[Output], ctx: &mut CallContext) -> Result<Output> {
        single(self, xs)?;
        self.call(g, xs[0], ctx)
    }

    /// Number of tensors a call returns (`LSTM(return_state=True)`: the output and its
    /// two states); one for most layers.
    fn num_outputs(&self) -> usize {
        1
    }

    /// The shape of each tensor a call on inputs of `input_shapes` returns.
    fn compute_output_shapes(&self, input_shapes: &[Shape]) -> Result<Vec<Shape>> {
        Ok(vec![self.compute_output_shape_multi(input_shapes)?])
    }

    /// Adds the layer's computation on `xs`, returning every tensor of the call
    /// ([`Layer::num_outputs`] of them).
    fn call_outputs(
        &self,
        g: &mut Graph,
        xs: &[Output],
        ctx: &mut CallContext,
    ) -> Result<Vec<Output>> {
        Ok(vec![self.call_multi(g, xs, ctx)?])
    }

    /// The variables in Keras's order (`kernel`, `bias`; BatchNormalization's `gamma`,
    /// `beta`, `moving_mean`, `moving_variance`). Empty before build.
    fn weights(&self) -> Vec<Weight> {
        Vec::new()
    }

    /// The batch shape and dtype an input layer declares (`Input`); `None` for other
    /// layers.
    fn input_spec(&self) -> Option<(Shape, crate::tensor::DType)> {
        None
    }

    /// Whether the layer computes differently in training (Dropout, BatchNormalization).
    fn has_training_behavior(&self) -> bool {
        false
    }

    /// The layer's `config` in Keras 3's JSON (`units`, `activation`, … and `name`,
    /// `trainable`, `dtype`).
    fn get_config(&self) -> Map<String, Value>;

    /// Number of scalars in the layer's variables.
    fn count_params(&self) -> usize {
        self.weights().iter().map(Weight::size).sum()
    }
}

impl fmt::Debug for dyn Layer {
    /// Keras's repr: `<Dense name=dense, built=False>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let built = if self.built() { "True" } else { "False" };
        write!(
            f,
            "<{} name={}, built={built}>",
            self.class_name(),
            self.name()
        )
    }
}

impl<L: Layer + 'static> From<L> for Box<dyn Layer> {
    fn from(layer: L) -> Self {
        Box::new(layer)
    }
}

/// The one input of a single-input layer, or an error naming the layer.
fn single<'a, T, L: Layer + ?Sized>(layer: &L, inputs: &'a [T]) -> Result<&'a T> {
    match inputs {
        [one] => Ok(one),
        _ => Err(Error::invalid(format!(
            "layer '{}' ({}) takes one input, but was called on {}",
            layer.name(),
            layer.class_name(),
            inputs.len()
        ))),
    }
}

/// An error about a layer, in Keras's words: `Layer 'dense' (Dense): ...`.
pub(crate) fn layer_error(layer: &dyn Layer, msg: impl fmt::Display) -> Error {
    Error::invalid(format!(
        "layer '{}' ({}): {msg}",
        layer.name(),
        layer.class_name()
    ))
}

/// The config entries every layer has: `name`, `trainable`, `dtype` (Keras 3's policy).
pub(crate) fn base_config(name: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("name".into(), Value::from(name));
    m.insert("trainable".into(), Value::from(true));
    m.insert(
        "dtype".into(),
        serde_json::json!({
            "module": "keras",
            "class_name": "DTypePolicy",
            "config": {"name": "float32"},
            "registered_name": null
        }),
    );
    m
}

/// Adds `regularizer`'s penalty on `weight` (when both exist) to the losses of `ctx`.
pub(crate) fn regularize(
    g: &mut Graph,
    ctx: &mut CallContext,
    weight: Option<&Weight>,
    regularizer: Option<Regularizer>,
) -> Result<()> {
    if let (Some(w), Some(r)) = (weight, regularizer) {
        let name = format!("{}_regularizer", w.path.replace('/', "_"));
        let p = g.name_scope(&name, |g| r.penalty(g, w.var.read))?;
        ctx.losses.push(p);
    }
    Ok(())
}

/// Creates a variable `<scope>/<name>` holding `init`, as a layer weight.
pub(crate) fn add_weight(
    g: &mut Graph,
    scope: &str,
    name: &str,
    init: Output,
    trainable: bool,
) -> Result<Weight> {
    let shape = g.shape(init).to_known().ok_or_else(|| {
        Error::invalid(format!("weight '{scope}/{name}' needs a fully known shape"))
    })?;
    // Weights live at the root scope under the layer's name, whatever scope is open; the
    // layer's scope is re-entered as it is (not made unique again), so a layer's weights
    // share it: `dense/kernel`, `dense/bias` (TensorFlow's `name_scope("dense/")`).
    let saved = g.take_name_scopes();
    g.restore_name_scopes(vec![scope.to_string()]);
    let var = g.variable(init, name);
    g.take_name_scopes();
    g.restore_name_scopes(saved);
    let var = var?;
    Ok(Weight {
        path: g.node(var.var.node).name().to_string(),
        var,
        shape,
        trainable,
    })
}

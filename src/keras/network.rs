//! The graph and session behind a built model: the input placeholder, the outputs of
//! the forward pass (for inference and for training), and the session the variables live
//! in. Layers add nodes to the graph; [`Network::sync`] hands the grown graph to the
//! session and initializes the variables created since.

use crate::graph::{Graph, NodeId, Output};
use crate::keras::layer::{format_shape, Shape, Weight};
use crate::session::{Session, SessionOptions};
use crate::tensor::{DType, Tensor};
use crate::{Error, Result};

/// An input's name, Keras shape (batch first) and dtype.
pub(crate) type InputSpec<'a> = (&'a str, &'a [Option<usize>], DType);

/// A built model's graph state.
pub(crate) struct Network {
    pub graph: Graph,
    pub session: Session,
    /// Global variables already initialized in the session.
    initialized: usize,
    /// Graph length the session last saw.
    synced_len: usize,
    /// The input placeholder and its Keras shape (batch first).
    pub input: Output,
    pub input_shape: Shape,
    /// Name of the input (the input layer's name).
    pub input_name: String,
    /// Forward pass in inference mode.
    pub output: Output,
    /// Forward pass in training mode (the same tensor when no layer behaves differently).
    pub train_output: Output,
    /// Keras shape of the output.
    pub output_shape: Shape,
    /// Ops each training step must also run (moving statistics).
    pub updates: Vec<NodeId>,
    /// Scalar losses the layers add (regularization).
    pub layer_losses: Vec<Output>,
    /// Set by a callback to end `fit` after the current epoch.
    pub stop_training: bool,
    /// The inputs after the first (functional models of several inputs): placeholder,
    /// Keras shape and name.
    pub extra_inputs: Vec<(Output, Shape, String)>,
    /// The outputs after the first (functional models of several outputs): inference
    /// tensor, training tensor and Keras shape.
    pub extra_outputs: Vec<(Output, Output, Shape)>,
}

impl Network {
    /// A graph holding only the input placeholder `name` of shape `input_shape` and
    /// `dtype`, and a session over it.
    pub fn start(
        input: InputSpec<'_>,
        options: SessionOptions,
        seed: Option<i64>,
    ) -> Result<(Graph, Output, Session)> {
        let (g, inputs, s) = Network::start_many(&[input], options, seed)?;
        Ok((g, inputs[0], s))
    }

    /// A graph holding only input placeholders `(name, shape, dtype)` (any batch size),
    /// and a session over it.
    pub fn start_many(
        inputs: &[InputSpec<'_>],
        options: SessionOptions,
        seed: Option<i64>,
    ) -> Result<(Graph, Vec<Output>, Session)> {
        let mut graph = Graph::new();
        if let Some(s) = seed {
            graph.set_seed(s);
        }
        let mut placeholders = Vec::with_capacity(inputs.len());
        for (name, shape, dtype) in inputs {
            let mut batch = shape.to_vec();
            if let Some(b) = batch.first_mut() {
                *b = None;
            }
            placeholders.push(graph.placeholder(*dtype, batch, name)?);
        }
        let session = Session::with_options(&graph, options);
        Ok((graph, placeholders, session))
    }

    /// Assembles a network from a graph whose forward pass has been added.
    #[allow(clippy::too_many_arguments)]
    pub fn assemble(
        graph: Graph,
        session: Session,
        input: Output,
        input_shape: Shape,
        input_name: String,
        output: Output,
        train_output: Output,
        output_shape: Shape,
        updates: Vec<NodeId>,
        layer_losses: Vec<Output>,
        synced: (usize, usize),
    ) -> Result<Network> {
        let mut net = Network {
            graph,
            session,
            initialized: synced.0,
            synced_len: synced.1,
            input,
            input_shape,
            input_name,
            output,
            train_output,
            output_shape,
            updates,
            layer_losses,
            stop_training: false,
            extra_inputs: Vec::new(),
            extra_outputs: Vec::new(),
        };
        net.sync()?;
        Ok(net)
    }

    /// Sets every variable of the graph that the checkpoint holds (weights and optimizer
    /// state), checking shapes.
    pub fn restore(&self, reader: &crate::saved_model::BundleReader) -> Result<()> {
        for v in self.graph.global_variables() {
            let name = self.graph.node(v.var.node).name();
            if reader.entry(name).is_some() {
                self.write_var(name, reader.read(name)?)?;
            }
        }
        Ok(())
    }

    /// Every output: inference tensor, training tensor and Keras shape.
    pub fn heads(&self) -> Vec<(Output, Output, Shape)> {
        std::iter::once((self.output, self.train_output, self.output_shape.clone()))
            .chain(self.extra_outputs.iter().cloned())
            .collect()
    }

    /// How far the session has caught up with the graph: (initialized variables, graph
    /// length), to carry over when the forward pass is rebuilt in the same graph.
    pub fn synced(&self) -> (usize, usize) {
        (self.initialized, self.synced_len)
    }

    /// Hands the grown graph to the session and initializes new variables.
    pub fn sync(&mut self) -> Result<()> {
        if self.graph.len() != self.synced_len {
            self.session.extend(&self.graph)?;
            self.synced_len = self.graph.len();
        }
        let fresh: Vec<NodeId> = self.graph.global_variables()[self.initialized..]
            .iter()
            .map(|v| v.initializer)
            .collect();
        if !fresh.is_empty() {
            self.session.run(&[], &[], &fresh)?;
            self.initialized += fresh.len();
        }
        Ok(())
    }

    /// Count and bytes of the graph's variables other than the model's `weights` (the
    /// optimizer's), as the summary of a compiled model reports them.
    pub fn optimizer_params(&self, weights: &[Weight]) -> (usize, usize) {
        let own: std::collections::HashSet<&str> =
            weights.iter().map(|w| w.path.as_str()).collect();
        let mut count = 0;
        let mut bytes = 0;
        for v in self.graph.global_variables() {
            if own.contains(self.graph.node(v.var.node).name()) {
                continue;
            }
            let n: usize = self
                .graph
                .shape(v.var)
                .to_known()
                .map_or(0, |d| d.iter().product());
            count += n;
            bytes += n * self.graph.dtype(v.var).size();
        }
        (count, bytes)
    }

    /// Current values of `weights`.
    pub fn read(&self, weights: &[Weight]) -> Result<Vec<Tensor>> {
        weights.iter().map(|w| self.read_var(&w.path)).collect()
    }

    /// The value of the variable named `name`.
    pub fn read_var(&self, name: &str) -> Result<Tensor> {
        let value = self
            .session
            .resources()
            .variable(name)
            .ok_or_else(|| Error::NotFound(format!("variable '{name}' is not in the session")))?
            .read()?;
        self.session.to_host(&value)
    }

    /// Sets the variable named `name` (same dtype and shape).
    pub fn write_var(&self, name: &str, value: Tensor) -> Result<()> {
        let var =
            self.session.resources().variable(name).ok_or_else(|| {
                Error::NotFound(format!("variable '{name}' is not in the session"))
            })?;
        let old = var.read()?;
        if old.shape() != value.shape() || old.dtype() != value.dtype() {
            return Err(Error::invalid(format!(
                "variable '{name}' has shape {:?} and dtype {}, not {:?} and {}",
                old.shape(),
                old.dtype(),
                value.shape(),
                value.dtype()
            )));
        }
        var.assign(value, true)?;
        Ok(())
    }

    /// Sets `weights` to `values`, in order, after checking every shape.
    pub fn write(&self, weights: &[Weight], values: &[Tensor]) -> Result<()> {
        if weights.len() != values.len() {
            return Err(Error::invalid(format!(
                "set_weights: the model has {} weights, but {} values were given",
                weights.len(),
                values.len()
            )));
        }
        for (w, v) in weights.iter().zip(values) {
            if v.shape() != w.shape.as_slice() {
                return Err(Error::invalid(format!(
                    "set_weights: weight '{}' has shape {:?}, but the value has shape {:?}",
                    w.path,
                    w.shape,
                    v.shape()
                )));
            }
        }
        for (w, v) in weights.iter().zip(values) {
            let v = if v.dtype() == DType::Float32 {
                v.clone()
            } else {
                v.cast(DType::Float32)?
            };
            self.write_var(&w.path, v)?;
        }
        Ok(())
    }

    /// `x` as a batch of the input's dtype, or an error naming the first layer and both
    /// shapes when its inner shape does not fit.
    pub fn check_input(&self, x: &Tensor, first_layer: &str) -> Result<Tensor> {
        let dtype = self.graph.dtype(self.input);
        check_batch(x, &self.input_shape, dtype, first_layer)
    }

    /// Every input placeholder, in the model's order.
    pub fn inputs(&self) -> Vec<Output> {
        let extra = self.extra_inputs.iter().map(|i| i.0);
        std::iter::once(self.input).chain(extra).collect()
    }

    /// One batch per input in its dtype, after checking the count and each shape (errors name
    /// `first_layer` for the first input and the input's name for the others).
    pub fn check_inputs(&self, xs: &[Tensor], first_layer: &str) -> Result<Vec<Tensor>> {
        if xs.len() != 1 + self.extra_inputs.len() {
            return Err(Error::invalid(format!(
                "the model expects {} input arrays, but received {}",
                1 + self.extra_inputs.len(),
                xs.len()
            )));
        }
        let mut out = vec![self.check_input(&xs[0], first_layer)?];
        for (x, (input, shape, name)) in xs[1..].iter().zip(&self.extra_inputs) {
            out.push(check_batch(x, shape, self.graph.dtype(*input), name)?);
        }
        Ok(out)
    }
}

/// `x` as a batch of `dtype` of samples shaped as `want` says (batch first), or an error
/// naming `layer` and both shapes.
pub(crate) fn check_batch(
    x: &Tensor,
    want: &[Option<usize>],
    dtype: DType,
    layer: &str,
) -> Result<Tensor> {
    let fits = x.rank() == want.len()
        && x.shape()
            .iter()
            .zip(want)
            .skip(1)
            .all(|(d, w)| w.is_none_or(|w| w == *d));
    if !fits {
        let got: Vec<Option<usize>> = x.shape().iter().map(|&d| Some(d)).collect();
        return Err(Error::invalid(format!(
            "Input 0 of layer \"{layer}\" is incompatible with the layer: expected \
             shape={}, found shape={}",
            format_shape(want),
            format_shape(&got)
        )));
    }
    if x.dtype() == dtype {
        Ok(x.clone())
    } else {
        x.cast(dtype)
    }
}

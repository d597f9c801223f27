//! The LSTM cell (Keras 3's `LSTMCell`): `z = x·W + h·U + b` split into the gates
//! `i, f, g, o`; `c' = f·c + i·act(g)`, `h' = o·act(c')`, the gates through the
//! recurrent activation.

use super::{Cell, StepWeights};
use crate::graph::{Graph, Output};
use crate::keras::initializers::Initializer;
use crate::tensor::DType;
use crate::Result;

/// The LSTM cell. Its option `unit_forget_bias` (default true) starts the forget gate's bias at
/// one whatever the `bias_initializer`.
#[derive(Clone, Copy, Debug)]
pub struct LstmCell;

impl super::LSTM {
    /// Whether the forget gate's bias starts at one (default true).
    pub fn unit_forget_bias(mut self, on: bool) -> Self {
        self.option = on;
        self
    }
}

impl Cell for LstmCell {
    const CLASS: &'static str = "LSTM";
    const PREFIX: &'static str = "lstm";
    const CELL: &'static str = "lstm_cell";
    const GATES: usize = 4;
    const OPTION: &'static str = "unit_forget_bias";
    const STATES: usize = 2;

    fn bias(
        g: &mut Graph,
        unit_forget_bias: bool,
        init: &Initializer,
        units: usize,
    ) -> Result<Output> {
        if !unit_forget_bias {
            return init.create(g, &[4 * units], DType::Float32);
        }
        let input = init.create(g, &[units], DType::Float32)?;
        let forget = Initializer::Ones.create(g, &[units], DType::Float32)?;
        let rest = init.create(g, &[2 * units], DType::Float32)?;
        g.concat(&[input, forget, rest], 0)
    }

    fn step(
        g: &mut Graph,
        _: bool,
        w: &StepWeights,
        xw: Output,
        state: &[Output],
    ) -> Result<Vec<Output>> {
        let (h, c) = (state[0], state[1]);
        let h_in = w.recurrent_input(g, h)?;
        let hu = g.matmul(h_in, w.recurrent)?;
        let mut z = g.add(xw, hu)?;
        if let Some(b) = w.bias {
            z = g.bias_add(z, b)?;
        }
        let z = g.split(z, 4, 1)?;
        let i = w.recurrent_activation.apply(g, z[0])?;
        let f = w.recurrent_activation.apply(g, z[1])?;
        let cand = w.activation.apply(g, z[2])?;
        let o = w.recurrent_activation.apply(g, z[3])?;
        let fc = g.mul(f, c)?;
        let ic = g.mul(i, cand)?;
        let c = g.add(fc, ic)?;
        let ac = w.activation.apply(g, c)?;
        let h = g.mul(o, ac)?;
        Ok(vec![h, c])
    }
}

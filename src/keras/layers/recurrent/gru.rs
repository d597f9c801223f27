//! The GRU cell (Keras 3's `GRUCell`): `x·W (+ b_in)` and `h·U (+ b_rec)` split into the
//! gates `z, r, h`; `z` and `r` through the recurrent activation, the candidate
//! `hh = act(x_h + r·(h·U_h + b_rec_h))` (reset after the product, Keras 3's default) or
//! `act(x_h + (r·h)·U_h)` (reset before), and `h' = z·h + (1 - z)·hh`.

use super::{Cell, StepWeights};
use crate::graph::{Graph, Output};
use crate::keras::initializers::Initializer;
use crate::tensor::DType;
use crate::Result;

/// The GRU cell. Its option `reset_after` (default true, cuDNN's form) applies the reset gate
/// after the recurrent product and keeps separate input and recurrent biases (a bias of
/// shape `(2, 3·units)`).
#[derive(Clone, Copy, Debug)]
pub struct GruCell;

impl super::GRU {
    /// Whether the reset gate applies after the recurrent product (default true).
    pub fn reset_after(mut self, on: bool) -> Self {
        self.option = on;
        self
    }
}

impl Cell for GruCell {
    const CLASS: &'static str = "GRU";
    const PREFIX: &'static str = "gru";
    const CELL: &'static str = "gru_cell";
    const GATES: usize = 3;
    const OPTION: &'static str = "reset_after";
    const STATES: usize = 1;

    fn bias(g: &mut Graph, reset_after: bool, init: &Initializer, units: usize) -> Result<Output> {
        let shape = if reset_after {
            vec![2, 3 * units]
        } else {
            vec![3 * units]
        };
        init.create(g, &shape, DType::Float32)
    }

    fn step(
        g: &mut Graph,
        reset_after: bool,
        w: &StepWeights,
        xw: Output,
        state: &[Output],
    ) -> Result<Vec<Output>> {
        let h = state[0];
        let u = w.units as i64;
        let (input_bias, recurrent_bias) = match w.bias {
            Some(b) if reset_after => {
                let b = g.unstack(b, Some(2), 0)?;
                (Some(b[0]), Some(b[1]))
            }
            b => (b, None),
        };
        let xw = match input_bias {
            Some(b) => g.bias_add(xw, b)?,
            None => xw,
        };
        let x = g.split(xw, 3, 1)?;
        let h_in = w.recurrent_input(g, h)?;
        let (inner, u_h) = if reset_after {
            let inner = g.matmul(h_in, w.recurrent)?;
            let inner = match recurrent_bias {
                Some(b) => g.bias_add(inner, b)?,
                None => inner,
            };
            (g.split(inner, 3, 1)?, None)
        } else {
            let parts = g.split_v(w.recurrent, &[2 * u, u], 1)?;
            let inner = g.matmul(h_in, parts[0])?;
            (g.split(inner, 2, 1)?, Some(parts[1]))
        };
        let xz = g.add(x[0], inner[0])?;
        let z = w.recurrent_activation.apply(g, xz)?;
        let xr = g.add(x[1], inner[1])?;
        let r = w.recurrent_activation.apply(g, xr)?;
        let recurrent_h = match u_h {
            None => g.mul(r, inner[2])?,
            Some(u_h) => {
                let rh = g.mul(r, h_in)?;
                g.matmul(rh, u_h)?
            }
        };
        let xh = g.add(x[2], recurrent_h)?;
        let hh = w.activation.apply(g, xh)?;
        // z·h + (1 - z)·hh
        let zh = g.mul(z, h)?;
        let one = g.scalar_like(g.dtype(z), 1.0)?;
        let keep = g.sub(one, z)?;
        let new = g.mul(keep, hh)?;
        Ok(vec![g.add(zh, new)?])
    }
}

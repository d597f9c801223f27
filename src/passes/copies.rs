//! Copies between devices: wherever a step reads a value that lives on another device (a
//! fed value or a constant on the host read on a device, a device's output read on the
//! host), a copy step moves it first, once per (value, device); fetched values on a device
//! are copied to the host. A device kernel's host-memory inputs (a reduction's axes) are
//! copied to the host; a device kernel's host-memory outputs (`Shape`'s) count as on the
//! host. With only the CPU there is nothing to do.

use super::{Draft, DraftStep, Pass, PassCtx, Source, StepKind};
use crate::device::{copy_between, Device, DeviceSet};
use crate::graph::{Cost, TensorSpec};
use crate::kernel::{kernel_fn, Kernel};
use crate::Result;
use std::collections::HashMap;
use std::sync::Arc;

/// Op name of a copy step.
pub const COPY_OP: &str = "_Copy";

/// Inserts the copy steps.
pub struct InsertCopies;

impl Pass for InsertCopies {
    fn name(&self) -> &'static str {
        "insert-copies"
    }

    fn run(&self, draft: &mut Draft, ctx: &PassCtx<'_>) -> Result<()> {
        if draft.steps.iter().all(|s| s.device == DeviceSet::HOST) {
            return Ok(());
        }
        let mut on = draft.devices_of_values();
        let mut specs: HashMap<Source, TensorSpec> = HashMap::new();
        let mut made: HashMap<(Source, usize), Source> = HashMap::new();
        let steps = std::mem::take(&mut draft.steps);
        let mut out = Vec::with_capacity(steps.len());
        let mut next = draft.copies;
        let mut copy = |source: Source, to: usize, out: &mut Vec<DraftStep>| -> Source {
            let from = on.get(&source).copied().unwrap_or(DeviceSet::HOST);
            if from == to {
                return source;
            }
            if let Some(&c) = made.get(&(source, to)) {
                return c;
            }
            let spec = match source {
                Source::Output(o) => ctx.graph.spec(o).clone(),
                Source::Copy(_) => specs[&source].clone(),
            };
            let name = match source {
                Source::Output(o) => ctx.graph.output_name(o),
                Source::Copy(c) => format!("_copy_{c}"),
            };
            let (src_dev, dst_dev) = (ctx.devices.get(from), ctx.devices.get(to));
            let id = next;
            next += 1;
            let copied = Source::Copy(id);
            out.push(DraftStep {
                kind: StepKind::Copy { id, from: source },
                name: format!("{name}/_copy_to_{}", dst_dev.name()),
                op: COPY_OP,
                inputs: vec![Some(source)],
                outputs: vec![spec.clone()],
                cost: Cost::Linear,
                operands: [0, 1],
                device: to,
                kernel: Some(copy_kernel(Arc::clone(src_dev), Arc::clone(dst_dev))),
                absorbed: Vec::new(),
                also_produces: Vec::new(),
                host_inputs: &[],
                host_outputs: false,
            });
            specs.insert(copied, spec);
            on.insert(copied, to);
            made.insert((source, to), copied);
            copied
        };
        for mut step in steps {
            for (i, input) in step.inputs.iter_mut().enumerate() {
                if let Some(input) = input {
                    let to = if step.host_inputs.contains(&i) {
                        DeviceSet::HOST
                    } else {
                        step.device
                    };
                    *input = copy(*input, to, &mut out);
                }
            }
            out.push(step);
        }
        for fetch in &mut draft.fetches {
            *fetch = copy(*fetch, DeviceSet::HOST, &mut out);
        }
        draft.steps = out;
        draft.copies = next;
        Ok(())
    }
}

/// A kernel that moves its input from one device's memory to another's.
fn copy_kernel(from: Arc<dyn Device>, to: Arc<dyn Device>) -> Arc<dyn Kernel> {
    let kernel = kernel_fn(move |k| {
        let t = k.take_input(0)?;
        let moved = copy_between(&t, from.as_ref(), to.as_ref())?;
        k.push_output(moved);
        Ok(())
    });
    Arc::from(kernel.unwrap_or_else(|_| unreachable!("kernel_fn never fails")))
}

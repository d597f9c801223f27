//! The TensorFlow 1 control-flow structure of a plan (frames, what each step does to
//! them, where each input comes from), worked out when a plan holding `Enter`, `Exit`,
//! `Switch`, `Merge` or `NextIteration` steps is built; `session::frames` runs it.

use super::{FetchSource, InputSource, Step};
use crate::graph::{AttrsExt, Graph, NodeId};
use crate::{Error, Result};
use std::collections::{HashMap, VecDeque};

/// Whether a plan with a step of this op needs the frame executor.
pub(crate) fn needs_frames(op: &str) -> bool {
    matches!(op, "Enter" | "Exit" | "Switch" | "Merge" | "NextIteration")
}

/// What a step does to frames.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Kind {
    Plain,
    /// Moves its value into frame `frame` (to every iteration when `constant`).
    Enter {
        frame: usize,
        constant: bool,
    },
    Exit,
    NextIteration,
    Switch,
    Merge,
}

/// Where a step's input comes from, as the frame executor reads it.
#[derive(Clone, Copy, Debug)]
pub(crate) enum In {
    /// Another step's output, delivered to the input's entry of the step's iteration.
    Edge,
    /// A fed value (slot), read by every frame.
    Feed(usize),
    /// A folded constant, read by every frame.
    Constant(usize),
    /// A reference input (the kernel holds its variable).
    Ref,
}

/// One out-edge of a step: to input `input` of `dst` (`None`: a control edge), carrying
/// output `output`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct OutEdge {
    pub dst: usize,
    pub output: usize,
    pub input: Option<usize>,
}

/// A loop frame of the plan (frame 0 is the root).
pub(crate) struct StaticFrame {
    pub name: String,
    pub parent: usize,
    /// `Enter` steps into it: an instance's first iteration is complete only after all ran.
    pub enters: usize,
    pub parallel_iterations: usize,
    /// Its `Exit` steps.
    pub exits: Vec<usize>,
    /// Per step of the frame (by local index): the first input entry and the initial
    /// pending count.
    pub steps: Vec<usize>,
    pub entries: usize,
}

/// The control-flow structure of a plan, worked out when it is built.
pub(crate) struct FramePlan {
    pub kind: Vec<Kind>,
    /// Index of each step among its frame's steps.
    pub local: Vec<usize>,
    /// First input entry of each step in its iteration's entries.
    pub entry: Vec<usize>,
    pub inputs: Vec<Vec<In>>,
    pub edges: Vec<Vec<OutEdge>>,
    /// In-edges a step waits for (for a `Merge`: its control in-edges only).
    pub pending: Vec<u32>,
    /// For a `Merge`: data inputs arriving in an instance's first iteration (all but the
    /// back edges) and in later ones (the back edges).
    pub merge_inputs: Vec<[u32; 2]>,
    pub frames: Vec<StaticFrame>,
    /// Per step: (output, fetch index) of its fetched outputs.
    pub fetched: Vec<Vec<(usize, usize)>>,
}

const UNASSIGNED: usize = usize::MAX;

/// An error of a step, naming its node and op.
pub(crate) fn step_error(step: &Step, msg: String) -> Error {
    Error::Run {
        node: step.name.clone(),
        op: step.op.to_string(),
        msg,
    }
}

impl FramePlan {
    /// The frame structure of `steps` (in plan order, reading slots and constants as the
    /// plan lowered them): `controls[s]` are the steps that `s` has control edges from,
    /// `nodes[s]` the node behind step `s`. Malformed frames (an `Exit` outside any loop, a
    /// `NextIteration` feeding something other than a `Merge`, a step reading values of two
    /// frames) are errors naming the step.
    pub(crate) fn build(
        graph: &Graph,
        steps: &[Step],
        nodes: &[Option<NodeId>],
        controls: &[Vec<usize>],
        fetches: &[FetchSource],
    ) -> Result<FramePlan> {
        let n = steps.len();
        let mut owner: HashMap<usize, (usize, usize)> = HashMap::new();
        for (s, step) in steps.iter().enumerate() {
            for k in 0..step.output_specs.len() {
                owner.insert(step.out_start + k, (s, k));
            }
        }
        let mut inputs = Vec::with_capacity(n);
        let mut edges: Vec<Vec<OutEdge>> = vec![Vec::new(); n];
        let mut pending = vec![0u32; n];
        for (s, step) in steps.iter().enumerate() {
            let mut ins = Vec::with_capacity(step.inputs.len());
            for (i, src) in step.inputs.iter().enumerate() {
                ins.push(match *src {
                    InputSource::Slot { slot, .. } => match owner.get(&slot) {
                        Some(&(from, output)) => {
                            edges[from].push(OutEdge {
                                dst: s,
                                output,
                                input: Some(i),
                            });
                            pending[s] += 1;
                            In::Edge
                        }
                        None => In::Feed(slot),
                    },
                    InputSource::Constant(c) => In::Constant(c),
                    InputSource::Ref => In::Ref,
                });
            }
            inputs.push(ins);
            for &from in &controls[s] {
                edges[from].push(OutEdge {
                    dst: s,
                    output: 0,
                    input: None,
                });
                pending[s] += 1;
            }
        }
        let mut kind = Vec::with_capacity(n);
        let mut frames = vec![StaticFrame {
            name: "(root)".into(),
            parent: UNASSIGNED,
            enters: 0,
            parallel_iterations: 1,
            exits: Vec::new(),
            steps: Vec::new(),
            entries: 0,
        }];
        let mut frame_ids: HashMap<String, usize> = HashMap::new();
        let mut enter_of: Vec<Option<(String, usize)>> = vec![None; n];
        for (s, step) in steps.iter().enumerate() {
            kind.push(match step.op {
                "Enter" => {
                    let attrs = nodes[s].map(|id| graph.node(id).attrs());
                    let read = |a: &crate::graph::Attrs| -> std::result::Result<_, String> {
                        Ok((
                            a.string_or("frame_name", "")?,
                            a.bool_or("is_constant", false)?,
                            a.int_or("parallel_iterations", 10)?,
                        ))
                    };
                    let (name, constant, parallel) = attrs
                        .map(read)
                        .transpose()
                        .map_err(|e| step_error(step, e))?
                        .ok_or_else(|| step_error(step, "an Enter step has no node".into()))?;
                    enter_of[s] = Some((name, parallel.max(1) as usize));
                    Kind::Enter { frame: 0, constant }
                }
                "Exit" => Kind::Exit,
                "NextIteration" => Kind::NextIteration,
                "Switch" => Kind::Switch,
                "Merge" => Kind::Merge,
                _ => Kind::Plain,
            });
        }
        // Frames by a walk from the steps that wait for nothing, as TensorFlow's
        // BuildControlFlowInfo assigns them.
        let mut frame = vec![UNASSIGNED; n];
        let mut queue: VecDeque<usize> = (0..n).filter(|&s| pending[s] == 0).collect();
        for &s in &queue {
            frame[s] = 0;
        }
        while let Some(s) = queue.pop_front() {
            let here = frame[s];
            let out = match kind[s] {
                Kind::Enter { .. } => {
                    let (name, parallel) = enter_of[s].clone().unwrap_or_default();
                    let id = *frame_ids.entry(name.clone()).or_insert_with(|| {
                        frames.push(StaticFrame {
                            name: name.clone(),
                            parent: here,
                            enters: 0,
                            parallel_iterations: parallel,
                            exits: Vec::new(),
                            steps: Vec::new(),
                            entries: 0,
                        });
                        frames.len() - 1
                    });
                    if frames[id].parent != here {
                        return Err(step_error(
                            &steps[s],
                            format!(
                                "it enters loop frame '{name}' from frame '{}', but another \
                                 Enter enters it from frame '{}'",
                                frames[here].name, frames[frames[id].parent].name
                            ),
                        ));
                    }
                    frames[id].enters += 1;
                    frames[id].parallel_iterations = frames[id].parallel_iterations.min(parallel);
                    if let Kind::Enter { frame, .. } = &mut kind[s] {
                        *frame = id;
                    }
                    id
                }
                Kind::Exit if here == 0 => {
                    return Err(step_error(
                        &steps[s],
                        "an Exit outside any loop frame: no Enter leads to it".into(),
                    ))
                }
                Kind::Exit => {
                    frames[here].exits.push(s);
                    frames[here].parent
                }
                Kind::NextIteration if here == 0 => {
                    return Err(step_error(
                        &steps[s],
                        "a NextIteration outside any loop frame: no Enter leads to it".into(),
                    ))
                }
                _ => here,
            };
            for e in &edges[s] {
                let dst = &steps[e.dst];
                if kind[s] == Kind::NextIteration
                    && (kind[e.dst] != Kind::Merge || e.input.is_none())
                {
                    return Err(step_error(
                        &steps[s],
                        format!(
                            "a NextIteration must feed the data input of its loop's Merge, not \
                             '{}' (op {})",
                            dst.name, dst.op
                        ),
                    ));
                }
                if frame[e.dst] == UNASSIGNED {
                    frame[e.dst] = out;
                    queue.push_back(e.dst);
                } else if frame[e.dst] != out {
                    return Err(step_error(
                        dst,
                        format!(
                            "it reads values of two frames, '{}' and '{}' (a value enters a \
                             loop through an Enter and leaves it through an Exit)",
                            frames[frame[e.dst]].name, frames[out].name
                        ),
                    ));
                }
            }
        }
        if let Some(s) = (0..n).find(|&s| frame[s] == UNASSIGNED) {
            return Err(step_error(
                &steps[s],
                "it is on a cycle that no Enter enters (a loop's Merge reads an Enter and \
                 its NextIteration)"
                    .into(),
            ));
        }
        // Merges: which inputs arrive in the first iteration and which later.
        let mut merge_inputs = vec![[0u32; 2]; n];
        for s in 0..n {
            for e in &edges[s] {
                if kind[e.dst] == Kind::Merge && e.input.is_some() {
                    merge_inputs[e.dst][usize::from(kind[s] == Kind::NextIteration)] += 1;
                }
            }
        }
        for s in 0..n {
            if kind[s] == Kind::Merge {
                if !inputs[s].iter().all(|i| matches!(i, In::Edge)) {
                    return Err(step_error(
                        &steps[s],
                        "a Merge reading a constant or fed value directly is not supported \
                         (it would always be live)"
                            .into(),
                    ));
                }
                pending[s] = controls[s].len() as u32;
            }
        }
        let mut local = vec![0; n];
        let mut entry = vec![0; n];
        for s in 0..n {
            let f = &mut frames[frame[s]];
            local[s] = f.steps.len();
            entry[s] = f.entries;
            f.steps.push(s);
            f.entries += steps[s].inputs.len();
        }
        // The frame a step's outputs land in.
        let out_frame = |s: usize| match kind[s] {
            Kind::Enter { frame, .. } => frame,
            Kind::Exit => frames[frame[s]].parent,
            _ => frame[s],
        };
        let mut fetched = vec![Vec::new(); n];
        for (i, src) in fetches.iter().enumerate() {
            if let FetchSource::Slot(slot) = *src {
                if let Some(&(s, k)) = owner.get(&slot) {
                    if out_frame(s) != 0 {
                        return Err(step_error(
                            &steps[s],
                            format!(
                                "output {k} is fetched, but it is computed inside loop frame \
                                 '{}'; fetch what the loop's Exit returns",
                                frames[out_frame(s)].name
                            ),
                        ));
                    }
                    fetched[s].push((k, i));
                }
            }
        }
        Ok(FramePlan {
            kind,
            local,
            entry,
            inputs,
            edges,
            pending,
            merge_inputs,
            frames,
            fetched,
        })
    }
}

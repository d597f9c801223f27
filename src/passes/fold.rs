//! Constant folding: a `Const` node (without control inputs, not a target) needs no step;
//! the plan holds its value and its readers take it directly.

use super::{Draft, Pass, PassCtx, StepKind};
use crate::graph::AttrsExt;
use crate::Result;

/// Turns `Const` steps into values the plan holds.
pub struct FoldConstants;

impl Pass for FoldConstants {
    fn name(&self) -> &'static str {
        "fold-constants"
    }

    fn run(&self, draft: &mut Draft, ctx: &PassCtx<'_>) -> Result<()> {
        let graph = ctx.graph;
        let constants = &mut draft.constants;
        draft.steps.retain(|step| {
            let StepKind::Node(n) = step.kind else {
                return true;
            };
            let node = graph.node(n);
            let foldable = node.op_type() == "Const"
                && node.control_inputs().is_empty()
                && !ctx.targets.contains(&n);
            match node.attrs().tensor("value") {
                Ok(value) if foldable => {
                    constants.push((n, value.clone()));
                    false
                }
                _ => true,
            }
        });
        Ok(())
    }
}

//! Functional control flow, as TensorFlow 2 graphs express it: `While` / `StatelessWhile`
//! run their `body` function while their `cond` function returns true, `If` /
//! `StatelessIf` run one of two branch functions, `Case` / `StatelessCase` one of a list.
//! The functions live in the graph's library ([`crate::graph::Function`]); the kernel
//! calls them through the session (compiled once per plan, run in place per iteration),
//! with loop-carried values and resource handles passed from call to call. Nothing is
//! unrolled: a trip count may depend on the data.
//!
//! TensorFlow 1's control flow (`Enter`, `Exit`, `Switch`, `Merge`, `NextIteration`,
//! `LoopCond`), which the session runs with frames, is in [`frames`].

pub(crate) mod frames;
pub(crate) mod grad;

use super::{kernel_fn, Cost, InferCtx, InferResult, KernelBuildCtx, KernelResult, Op, Registry};
use crate::graph::{AttrValue, AttrsExt, Function, Graph, Output, TensorSpec};
use crate::kernel::function::FunctionCall;
use crate::tensor::{DType, PartialShape, Tensor};
use crate::{Error, Result};
use std::sync::Arc;

/// Output specs from a type-list attr and the optional `output_shapes` attr.
fn typed_outputs(ctx: &InferCtx<'_>, types_attr: &str) -> InferResult {
    let types = ctx.attrs().dtypes(types_attr)?;
    let shapes = ctx.attrs().shapes("output_shapes")?.unwrap_or_default();
    let shapes = if shapes.len() == types.len() {
        shapes
    } else {
        vec![PartialShape::unknown(); types.len()]
    };
    Ok(types
        .into_iter()
        .zip(shapes)
        .map(|(t, s)| TensorSpec::new(t, s))
        .collect())
}

/// Errors unless `inputs` have the dtypes of attr `types_attr`.
fn check_inputs(
    ctx: &InferCtx<'_>,
    inputs: &[TensorSpec],
    types_attr: &str,
) -> std::result::Result<(), String> {
    let types = ctx.attrs().dtypes(types_attr)?;
    if types.len() != inputs.len() {
        return Err(format!(
            "attr {types_attr} lists {} types for {} inputs",
            types.len(),
            inputs.len()
        ));
    }
    for (i, (t, s)) in types.iter().zip(inputs).enumerate() {
        if *t != s.dtype {
            return Err(format!(
                "input {i} is {} but attr {types_attr} says {t}",
                s.dtype
            ));
        }
    }
    Ok(())
}

fn infer_while(ctx: &InferCtx<'_>) -> InferResult {
    check_inputs(ctx, ctx.inputs(), "T")?;
    typed_outputs(ctx, "T")
}

fn infer_if(ctx: &InferCtx<'_>) -> InferResult {
    ctx.expect_min_inputs(1)?;
    check_inputs(ctx, &ctx.inputs()[1..], "Tin")?;
    typed_outputs(ctx, "Tout")
}

fn infer_case(ctx: &InferCtx<'_>) -> InferResult {
    ctx.expect_min_inputs(1)?;
    ctx.check_dtype(0, &[DType::Int32])?;
    check_inputs(ctx, &ctx.inputs()[1..], "Tin")?;
    typed_outputs(ctx, "Tout")
}

/// The library function named by attr `attr`, checked against the dtypes it must take
/// and return (`None`: a scalar of any dtype, as a condition returns).
fn checked_function<'g>(
    ctx: &'g KernelBuildCtx<'_>,
    name: &str,
    args: &[DType],
    rets: Option<&[DType]>,
) -> std::result::Result<&'g Arc<Function>, String> {
    let f = ctx
        .graph
        .function(name)
        .ok_or_else(|| format!("function '{name}' is not in the graph's function library"))?;
    let dtypes = |outs: &[crate::graph::Output]| -> Vec<DType> {
        outs.iter().map(|&o| f.graph.dtype(o)).collect()
    };
    let (got_args, got_rets) = (dtypes(&f.args), dtypes(&f.rets));
    if got_args != args {
        return Err(format!(
            "function '{name}' takes {got_args:?} but is given {args:?}"
        ));
    }
    match rets {
        Some(rets) if got_rets != rets => Err(format!(
            "function '{name}' returns {got_rets:?}, but {rets:?} must come back"
        )),
        None if got_rets.len() != 1 => Err(format!(
            "function '{name}' is a condition but returns {} values; it must return one \
             scalar",
            got_rets.len()
        )),
        _ => Ok(f),
    }
}

/// A condition's verdict: a bool scalar, or a number scalar (non-zero is true), as
/// TensorFlow's `ToBool` of a scalar.
pub(super) fn truth(t: &Tensor, function: &str) -> Result<bool> {
    if t.rank() != 0 {
        return Err(Error::invalid(format!(
            "function '{function}' must return a scalar condition, returned shape {:?}",
            t.shape()
        )));
    }
    match t.dtype() {
        DType::Bool => t.scalar_value::<bool>(),
        d if d.is_numeric() => Ok(t.expect_host()?.to_f64_vec()[0] != 0.0),
        d => Err(Error::invalid(format!(
            "function '{function}' returned a {d} condition; it must be a bool or a number"
        ))),
    }
}

/// Takes every input of the step from `first` on.
fn take_inputs(k: &mut crate::kernel::KernelCtx<'_>, first: usize) -> Result<Vec<Tensor>> {
    (first..k.num_inputs()).map(|i| k.take_input(i)).collect()
}

fn while_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let types = ctx.attrs().dtypes("T")?;
    let (cond_name, body_name) = (ctx.attrs().func("cond")?, ctx.attrs().func("body")?);
    checked_function(ctx, cond_name, &types, None)?;
    checked_function(ctx, body_name, &types, Some(&types))?;
    let cond = ctx.call_function(cond_name)?;
    let body = ctx.call_function(body_name)?;
    let limit = ctx.functions.and_then(|f| f.max_loop_iterations());
    let (cond_name, body_name) = (cond_name.to_string(), body_name.to_string());
    kernel_fn(move |k| {
        let mut values = take_inputs(k, 0)?;
        let mut iterations: u64 = 0;
        loop {
            let verdict = cond.call(values.clone())?;
            if !truth(&verdict[0], &cond_name)? {
                break;
            }
            if limit.is_some_and(|max| iterations >= max) {
                return Err(Error::invalid(format!(
                    "the loop ran {iterations} iterations, the session's \
                     max_loop_iterations, and its condition '{cond_name}' is still true \
                     (body '{body_name}')"
                )));
            }
            iterations += 1;
            values = body.call(values)?;
        }
        values.into_iter().for_each(|v| k.push_output(v));
        Ok(())
    })
}

/// Runs `branch` on the step's inputs after the first and pushes what it returns.
fn run_branch(k: &mut crate::kernel::KernelCtx<'_>, branch: &dyn FunctionCall) -> Result<()> {
    let args = take_inputs(k, 1)?;
    branch
        .call(args)?
        .into_iter()
        .for_each(|v| k.push_output(v));
    Ok(())
}

/// The compiled branches named by `names`, each checked against `Tin` and `Tout`.
fn branches(
    ctx: &KernelBuildCtx<'_>,
    names: &[&str],
) -> std::result::Result<Vec<Arc<dyn FunctionCall>>, String> {
    let (tin, tout) = (ctx.attrs().dtypes("Tin")?, ctx.attrs().dtypes("Tout")?);
    names
        .iter()
        .map(|name| {
            checked_function(ctx, name, &tin, Some(&tout))?;
            ctx.call_function(name)
        })
        .collect()
}

fn if_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let then_name = ctx.attrs().func("then_branch")?.to_string();
    let fs = branches(ctx, &[&then_name, ctx.attrs().func("else_branch")?])?;
    let [then_branch, else_branch]: [Arc<dyn FunctionCall>; 2] = fs
        .try_into()
        .map_err(|_| "If needs two branches".to_string())?;
    kernel_fn(move |k| {
        let taken = if truth(k.input(0)?, &then_name)
            .map_err(|e| Error::invalid(format!("the condition (input 0) of If: {e}")))?
        {
            &then_branch
        } else {
            &else_branch
        };
        run_branch(k, taken.as_ref())
    })
}

fn case_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let names: Vec<&str> = ctx
        .attrs()
        .funcs("branches")?
        .iter()
        .map(String::as_str)
        .collect();
    if names.is_empty() {
        return Err("Case needs at least one branch".into());
    }
    let fs = branches(ctx, &names)?;
    kernel_fn(move |k| {
        let index = k.input(0)?.scalar_value::<i32>()?;
        // TensorFlow: an index out of range runs the last branch (the default).
        let taken = usize::try_from(index)
            .ok()
            .and_then(|i| fs.get(i))
            .unwrap_or(&fs[fs.len() - 1]);
        run_branch(k, taken.as_ref())
    })
}

fn while_defaults() -> Vec<(&'static str, AttrValue)> {
    vec![
        ("output_shapes", AttrValue::ShapeList(Vec::new())),
        ("parallel_iterations", AttrValue::Int(10)),
    ]
}

fn branch_defaults() -> Vec<(&'static str, AttrValue)> {
    vec![("output_shapes", AttrValue::ShapeList(Vec::new()))]
}

/// Registers the control-flow ops, with their gradients (`grad.rs`).
pub(crate) fn register(r: &mut Registry) {
    use self::grad::{branch_grad, while_grad};
    for name in ["While", "StatelessWhile"] {
        r.add(
            Op::new(name, infer_while, while_kernel)
                .cost(Cost::Cheap)
                .defaults(while_defaults)
                .grad(while_grad),
        );
    }
    for name in ["If", "StatelessIf"] {
        r.add(
            Op::new(name, infer_if, if_kernel)
                .cost(Cost::Cheap)
                .defaults(branch_defaults)
                .grad(branch_grad),
        );
    }
    for name in ["Case", "StatelessCase"] {
        r.add(
            Op::new(name, infer_case, case_kernel)
                .cost(Cost::Cheap)
                .defaults(branch_defaults)
                .grad(branch_grad),
        );
    }
    grad::register(r);
    frames::register(r);
}

impl Graph {
    /// Adds function `name` to the graph's library: `body` builds it in a graph of its own
    /// over one placeholder per argument spec and returns its results (`tf.function`). A
    /// function that runs loops defines their functions in its own graph.
    pub fn define_function(
        &mut self,
        name: &str,
        args: &[TensorSpec],
        body: impl FnOnce(&mut Graph, &[Output]) -> Result<Vec<Output>>,
    ) -> Result<()> {
        let mut graph = Graph::with_ops(self.op_registry());
        let args = args
            .iter()
            .enumerate()
            .map(|(i, spec)| graph.placeholder(spec.dtype, spec.shape.clone(), &format!("arg{i}")))
            .collect::<Result<Vec<_>>>()?;
        let rets = body(&mut graph, &args)?;
        for &r in &rets {
            graph.check_output(r, &format!("a result of function '{name}'"))?;
        }
        self.add_function(Function {
            name: name.to_string(),
            graph,
            args,
            rets,
            targets: Vec::new(),
        });
        Ok(())
    }

    /// `tf.while_loop` as TensorFlow 2 runs it (op `While`): while function `cond` returns
    /// true on the loop values, function `body` maps them to the next ones; the outputs
    /// are the values when `cond` says stop. Both are library functions
    /// ([`Graph::define_function`]) taking the values' dtypes.
    pub fn while_loop(&mut self, cond: &str, body: &str, inputs: &[Output]) -> Result<Vec<Output>> {
        let types: Vec<DType> = inputs.iter().map(|&x| self.dtype(x)).collect();
        let n = inputs.len();
        let id = self
            .op("While")
            .inputs(inputs)
            .attr("T", types)
            .attr("cond", AttrValue::Func(cond.into()))
            .attr("body", AttrValue::Func(body.into()))
            .build()?;
        Ok((0..n).map(|i| id.output(i)).collect())
    }

    /// `tf.cond` as TensorFlow 2 runs it (op `If`): function `then_branch` on `inputs` when
    /// the scalar `pred` is true, else `else_branch`; both return the same dtypes.
    pub fn cond(
        &mut self,
        pred: Output,
        then_branch: &str,
        else_branch: &str,
        inputs: &[Output],
    ) -> Result<Vec<Output>> {
        let tin: Vec<DType> = inputs.iter().map(|&x| self.dtype(x)).collect();
        let f = self.function(then_branch).ok_or_else(|| {
            Error::NotFound(format!(
                "function '{then_branch}' is not in the graph's function library"
            ))
        })?;
        let tout: Vec<DType> = f.rets.iter().map(|&o| f.graph.dtype(o)).collect();
        let n = tout.len();
        let tcond = self.dtype(pred);
        let id = self
            .op("If")
            .input(pred)
            .inputs(inputs)
            .attr("Tcond", tcond)
            .attr("Tin", tin)
            .attr("Tout", tout)
            .attr("then_branch", AttrValue::Func(then_branch.into()))
            .attr("else_branch", AttrValue::Func(else_branch.into()))
            .build()?;
        Ok((0..n).map(|i| id.output(i)).collect())
    }
}

#[cfg(test)]
mod tests {
    use crate::graph::{Graph, Output, TensorSpec};
    use crate::session::{Session, SessionOptions};
    use crate::tensor::{DType, PartialShape, Tensor};

    fn scalar(dtype: DType) -> TensorSpec {
        TensorSpec::new(dtype, PartialShape::known(&[]))
    }

    /// The loop values (i, acc, n) of the tests' loops.
    fn loop_specs() -> [TensorSpec; 3] {
        [
            scalar(DType::Int32),
            scalar(DType::Float32),
            scalar(DType::Int32),
        ]
    }

    /// A `While` of "cond" and `body` from (0, 0.0, n), `n` fed.
    fn counted_loop(g: &mut Graph, body: &str) -> (Output, Vec<Output>) {
        let n = g
            .placeholder(DType::Int32, PartialShape::known(&[]), "n")
            .unwrap();
        let i0 = g.constant(0i32).unwrap();
        let acc0 = g.constant(0f32).unwrap();
        (n, g.while_loop("cond", body, &[i0, acc0, n]).unwrap())
    }

    /// `i < n` over loop values (i, acc, n).
    fn less_than_n(g: &mut Graph) {
        let specs = loop_specs();
        g.define_function("cond", &specs, |g, a| Ok(vec![g.less(a[0], a[2])?]))
            .unwrap();
    }

    #[test]
    fn counter_loop_runs_its_body_until_the_condition_fails() {
        let mut g = Graph::new();
        less_than_n(&mut g);
        let specs = loop_specs();
        // (i, acc, n) -> (i + 1, acc * 2 + 1, n)
        g.define_function("body", &specs, |g, a| {
            let one = g.constant(1i32)?;
            let two = g.constant(2f32)?;
            let onef = g.constant(1f32)?;
            let i = g.add(a[0], one)?;
            let doubled = g.mul(a[1], two)?;
            let acc = g.add(doubled, onef)?;
            Ok(vec![i, acc, a[2]])
        })
        .unwrap();
        let (n, out) = counted_loop(&mut g, "body");
        let s = Session::new(&g);
        for (steps, want) in [(0, 0.0), (1, 1.0), (5, 31.0), (10, 1023.0)] {
            let r = s
                .run(&[(n, Tensor::scalar(steps))], &[out[0], out[1]], &[])
                .unwrap();
            assert_eq!(r[0].scalar_value::<i32>().unwrap(), steps);
            assert_eq!(r[1].scalar_value::<f32>().unwrap(), want);
        }
    }

    #[test]
    fn cond_runs_the_branch_its_scalar_picks() {
        let mut g = Graph::new();
        let x = [TensorSpec::new(DType::Float32, PartialShape::unknown())];
        g.define_function("double", &x, |g, a| Ok(vec![g.add(a[0], a[0])?]))
            .unwrap();
        g.define_function("negate", &x, |g, a| Ok(vec![g.neg(a[0])?]))
            .unwrap();
        let p = g
            .placeholder(DType::Bool, PartialShape::known(&[]), "p")
            .unwrap();
        let v = g.constant(Tensor::from([1.5f32, -2.0])).unwrap();
        let y = g.cond(p, "double", "negate", &[v]).unwrap()[0];
        let s = Session::new(&g);
        let run = |b: bool| {
            s.run(&[(p, Tensor::scalar(b))], &[y], &[]).unwrap()[0]
                .to_vec::<f32>()
                .unwrap()
        };
        assert_eq!(run(true), vec![3.0, -4.0]);
        assert_eq!(run(false), vec![-1.5, 2.0]);
    }

    #[test]
    fn nested_loops_multiply_their_trip_counts() {
        let mut g = Graph::new();
        less_than_n(&mut g);
        let specs = loop_specs();
        // The outer body adds 1 to acc `i + 1` times through an inner loop of its own.
        g.define_function("outer_body", &specs, |g, a| {
            less_than_n(g);
            g.define_function("inner_body", &specs, |g, b| {
                let one = g.constant(1i32)?;
                let onef = g.constant(1f32)?;
                Ok(vec![g.add(b[0], one)?, g.add(b[1], onef)?, b[2]])
            })?;
            let one = g.constant(1i32)?;
            let zero = g.constant(0i32)?;
            let next = g.add(a[0], one)?;
            let inner = g.while_loop("cond", "inner_body", &[zero, a[1], next])?;
            Ok(vec![next, inner[1], a[2]])
        })
        .unwrap();
        let (n, out) = counted_loop(&mut g, "outer_body");
        let s = Session::new(&g);
        let r = s.run(&[(n, Tensor::scalar(4i32))], &[out[1]], &[]).unwrap();
        // 1 + 2 + 3 + 4
        assert_eq!(r[0].scalar_value::<f32>().unwrap(), 10.0);
    }

    #[test]
    fn max_loop_iterations_stops_a_runaway_loop_naming_it() {
        let mut g = Graph::new();
        less_than_n(&mut g);
        let specs = loop_specs();
        // The body never advances i: without a bound this loop would not end.
        g.define_function("stuck", &specs, |_, a| Ok(a.to_vec()))
            .unwrap();
        let i0 = g.constant(0i32).unwrap();
        let acc0 = g.constant(0f32).unwrap();
        let n = g.constant(1i32).unwrap();
        let out = g.while_loop("cond", "stuck", &[i0, acc0, n]).unwrap();
        let options = SessionOptions {
            max_loop_iterations: Some(100),
            ..SessionOptions::with_threads(1)
        };
        let s = Session::with_options(&g, options);
        let e = s.run(&[], &[out[0]], &[]).unwrap_err().to_string();
        assert!(
            e.contains("'While'") && e.contains("max_loop_iterations") && e.contains("100"),
            "{e}"
        );
    }

    #[test]
    fn bad_functions_are_errors_naming_node_and_function() {
        let mut g = Graph::new();
        less_than_n(&mut g);
        let specs = loop_specs();
        g.define_function("short", &specs, |_, a| Ok(vec![a[0], a[1]]))
            .unwrap();
        g.define_function("retyped", &specs, |g, a| {
            let f = g.cast(a[0], DType::Float32)?;
            Ok(vec![f, a[1], a[2]])
        })
        .unwrap();
        let init = [
            g.constant(0i32).unwrap(),
            g.constant(0f32).unwrap(),
            g.constant(3i32).unwrap(),
        ];
        let mut run = |cond: &str, body: &str| {
            let out = g.while_loop(cond, body, &init).unwrap();
            Session::new(&g)
                .run(&[], &[out[0]], &[])
                .unwrap_err()
                .to_string()
        };
        let e = run("cond", "short");
        assert!(
            e.contains("While") && e.contains("'short'") && e.contains("returns"),
            "{e}"
        );
        let e = run("cond", "retyped");
        assert!(e.contains("'retyped'") && e.contains("Float32"), "{e}");
        let e = run("cond", "missing");
        assert!(e.contains("'missing'") && e.contains("library"), "{e}");
    }

    #[test]
    fn a_condition_that_is_not_a_scalar_is_an_error() {
        let mut g = Graph::new();
        let specs = [scalar(DType::Int32)];
        g.define_function("vector_cond", &specs, |g, _| {
            Ok(vec![g.constant(Tensor::from([true, false]))?])
        })
        .unwrap();
        g.define_function("id", &specs, |_, a| Ok(a.to_vec()))
            .unwrap();
        let x = g.constant(0i32).unwrap();
        let out = g.while_loop("vector_cond", "id", &[x]).unwrap();
        let e = Session::new(&g)
            .run(&[], &[out[0]], &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("'vector_cond'") && e.contains("scalar"), "{e}");
    }
}

//! Gradients of functional control flow.
//!
//! * `If` / `StatelessIf` / `Case` (TensorFlow 2's way): the gradient is the same op over
//!   one gradient function per branch. A branch's gradient function takes the branch's
//!   arguments and the gradients of its results, runs the branch again and returns the
//!   gradients of its arguments (zeros where none flows), so the taken branch's gradient
//!   is the one computed.
//! * `While` / `StatelessWhile`: `_WhileGrad` runs the loop again from its initial values,
//!   keeping every iteration's loop values, then runs the body's gradient function once per
//!   iteration in reverse, each taking that iteration's values and the gradients of its
//!   results. TensorFlow 2 keeps the same values in accumulators (`TensorListPushBack` in
//!   the forward loop); recomputing them keeps the forward `While` untouched, at the cost
//!   of running the loop twice. `SessionOptions::max_loop_iterations` bounds both runs.
//!
//! Gradients flow through float values, through resource handles whose variable a
//! function reads (the gradient of a captured `tf.Variable`) and through TensorLists (a
//! list of the items' gradients, as a Keras RNN's loop carries its inputs and outputs);
//! other values (counters) get none. Stateful ops of a body run again in its gradient.

use super::truth;
use crate::graph::{AttrValue, AttrsExt, Function, Graph, Output, TensorSpec};
use crate::ops::Registry;
use crate::ops::{
    kernel_fn, Cost, GradCtx, InferCtx, InferResult, KernelBuildCtx, KernelResult, Op,
};
use crate::tensor::{DType, PartialShape, Tensor};
use crate::{Error, Result};
use std::sync::Arc;

/// Whether a function's result of dtype `d` passes a gradient back: floats and
/// variants (TensorLists).
fn differentiable(d: DType) -> bool {
    d.is_float() || d == DType::Variant
}

/// The dtype of the gradient of argument `arg` of `f`: its own for a float or a variant
/// (TensorList), its variable's for a resource handle `f` reads (`ReadVariableOp`);
/// `None` for anything else.
fn grad_dtype(f: &Function, arg: usize) -> Option<DType> {
    let a = f.args[arg];
    match f.graph.dtype(a) {
        d if differentiable(d) => Some(d),
        DType::Resource => f
            .graph
            .consumers(a.node)
            .map(|(c, _)| f.graph.node(c))
            .find(|n| n.op_type() == "ReadVariableOp")
            .and_then(|n| n.attrs().dtype("dtype").ok()),
        _ => None,
    }
}

/// Zeros shaped like the value `x` holds: `ZerosLike(x)`, or of its variable's value for a
/// resource handle (read as `dtype`).
fn zeros_for(g: &mut Graph, x: Output, dtype: DType) -> Result<Output> {
    let x = if g.dtype(x) == DType::Resource {
        g.op("ReadVariableOp")
            .input(x)
            .attr("dtype", dtype)
            .build_output()?
    } else {
        x
    };
    g.zeros_like(x)
}

/// An unused function name starting with `base`.
fn unused_name(g: &Graph, base: &str) -> String {
    let mut name = base.to_string();
    let mut k = 0;
    while g.function(&name).is_some() {
        k += 1;
        name = format!("{base}_{k}");
    }
    name
}

/// Adds to `g` the gradient function of `f`: it takes `f`'s arguments and then the
/// gradient of each result in `rets` (index, gradient dtype), and returns the gradient of
/// each argument in `args` (zeros where none flows). Returns its name.
fn add_grad_function(
    g: &mut Graph,
    f: &Function,
    args: &[(usize, DType)],
    rets: &[(usize, DType)],
    gradients: crate::graph::GradientsFn,
) -> Result<String> {
    let mut fg = f.graph.clone();
    let grads_in = rets
        .iter()
        .enumerate()
        .map(|(k, &(_, dt))| fg.placeholder(dt, PartialShape::unknown(), &format!("grad_{k}")))
        .collect::<Result<Vec<_>>>()?;
    let ys: Vec<Output> = rets.iter().map(|&(i, _)| f.rets[i]).collect();
    let xs: Vec<Output> = args.iter().map(|&(i, _)| f.args[i]).collect();
    let grads = gradients(&mut fg, &ys, &xs, &grads_in)
        .map_err(|e| Error::invalid(format!("the gradient of function '{}': {e}", f.name)))?;
    let outs = grads
        .into_iter()
        .zip(args)
        .map(|(gr, &(i, dt))| match gr {
            Some(gr) => Ok(gr),
            None => zeros_for(&mut fg, f.args[i], dt),
        })
        .collect::<Result<Vec<_>>>()?;
    let name = unused_name(g, &format!("{}_grad", f.name));
    let mut fargs = f.args.clone();
    fargs.extend(grads_in);
    g.add_function(Function {
        name: name.clone(),
        graph: fg,
        args: fargs,
        rets: outs,
        targets: Vec::new(),
    });
    Ok(name)
}

/// The library function `name`, for a gradient of node `ctx.node`.
fn function_of(ctx: &GradCtx<'_>, name: &str) -> Result<Arc<Function>> {
    ctx.graph.function(name).cloned().ok_or_else(|| {
        Error::NotFound(format!(
            "the gradient of '{}': function '{name}' is not in the graph's function library",
            ctx.graph.node(ctx.node).name()
        ))
    })
}

/// The incoming gradient of each output in `outs` (index, gradient dtype); a resource
/// output that got none (the pass fills in zeros of dtype resource) gets zeros of the
/// variable that `values[index]` holds.
fn output_grads(
    ctx: &mut GradCtx<'_>,
    outs: &[(usize, DType)],
    values: &[Output],
) -> Result<Vec<Output>> {
    outs.iter()
        .map(|&(i, dt)| match ctx.grad(i) {
            g if ctx.graph.dtype(g) == DType::Resource => zeros_for(ctx.graph, values[i], dt),
            g => Ok(g),
        })
        .collect()
}

/// The gradient of `If`, `StatelessIf`, `Case` and `StatelessCase`.
pub(super) fn branch_grad(ctx: &mut GradCtx<'_>) -> Result<Vec<Option<Output>>> {
    let attrs = ctx.attrs();
    let op = ctx.graph.node(ctx.node).op_type();
    let names: Vec<String> = if op.ends_with("Case") {
        attrs.funcs("branches").map_err(Error::invalid)?.to_vec()
    } else {
        ["then_branch", "else_branch"]
            .iter()
            .map(|a| attrs.func(a).map(str::to_string))
            .collect::<std::result::Result<_, _>>()
            .map_err(Error::invalid)?
    };
    let branches = names
        .iter()
        .map(|n| function_of(ctx, n))
        .collect::<Result<Vec<_>>>()?;
    let inputs = ctx.graph.node(ctx.node).inputs().to_vec();
    let args: Vec<(usize, DType)> = (0..inputs.len() - 1)
        .filter_map(|i| Some((i, branches.iter().find_map(|f| grad_dtype(f, i))?)))
        .collect();
    if args.is_empty() {
        return Ok(vec![None; inputs.len()]);
    }
    // The differentiable results (the branches agree on their results' dtypes).
    let first = &branches[0];
    let rets: Vec<(usize, DType)> = first
        .rets
        .iter()
        .enumerate()
        .map(|(i, &r)| (i, first.graph.dtype(r)))
        .filter(|&(_, d)| differentiable(d))
        .collect();
    let grads = output_grads(ctx, &rets, &[])?;
    let gradients = ctx.gradients;
    let grad_names = branches
        .iter()
        .map(|f| add_grad_function(ctx.graph, f, &args, &rets, gradients))
        .collect::<Result<Vec<_>>>()?;
    let mut tin: Vec<DType> = inputs[1..].iter().map(|&x| ctx.graph.dtype(x)).collect();
    tin.extend(rets.iter().map(|&(_, dt)| dt));
    let tout: Vec<DType> = args.iter().map(|&(_, dt)| dt).collect();
    let tcond = ctx.graph.dtype(inputs[0]);
    let mut b = ctx
        .graph
        .op(op)
        .inputs(&inputs)
        .inputs(&grads)
        .attr("Tin", tin)
        .attr("Tout", tout);
    b = if op.ends_with("Case") {
        b.attr("branches", AttrValue::FuncList(grad_names))
    } else {
        b.attr("Tcond", tcond)
            .attr("then_branch", AttrValue::Func(grad_names[0].clone()))
            .attr("else_branch", AttrValue::Func(grad_names[1].clone()))
    };
    let grad = b.build()?;
    let mut result = vec![None; inputs.len()];
    for (k, &(i, _)) in args.iter().enumerate() {
        result[i + 1] = Some(grad.output(k));
    }
    Ok(result)
}

/// The gradient of `While` and `StatelessWhile`: a `_WhileGrad` over the loop's initial
/// values and the gradients of its results.
pub(super) fn while_grad(ctx: &mut GradCtx<'_>) -> Result<Vec<Option<Output>>> {
    let attrs = ctx.attrs();
    let (cond, body) = (
        attrs.func("cond").map_err(Error::invalid)?.to_string(),
        attrs.func("body").map_err(Error::invalid)?.to_string(),
    );
    let f = function_of(ctx, &body)?;
    let inputs = ctx.graph.node(ctx.node).inputs().to_vec();
    let vars: Vec<(usize, DType)> = (0..inputs.len())
        .filter_map(|i| Some((i, grad_dtype(&f, i)?)))
        .collect();
    if vars.is_empty() {
        return Ok(vec![None; inputs.len()]);
    }
    let grads = output_grads(ctx, &vars, &inputs)?;
    let gradients = ctx.gradients;
    let body_grad = add_grad_function(ctx.graph, &f, &vars, &vars, gradients)?;
    let types: Vec<DType> = inputs.iter().map(|&x| ctx.graph.dtype(x)).collect();
    let grad = ctx
        .graph
        .op("_WhileGrad")
        .inputs(&inputs)
        .inputs(&grads)
        .attr("T", types)
        .attr("Tgrad", vars.iter().map(|v| v.1).collect::<Vec<_>>())
        .attr("cond", AttrValue::Func(cond))
        .attr("body", AttrValue::Func(body))
        .attr("body_grad", AttrValue::Func(body_grad))
        .build()?;
    let mut result = vec![None; inputs.len()];
    for (k, &(i, _)) in vars.iter().enumerate() {
        result[i] = Some(grad.output(k));
    }
    Ok(result)
}

/// `_WhileGrad`: the loop values (dtypes `T`), then the gradients of the differentiable
/// ones (dtypes `Tgrad`); outputs the gradients of the initial values.
fn infer_while_grad(ctx: &InferCtx<'_>) -> InferResult {
    let types = ctx.attrs().dtypes("T")?;
    let tgrad = ctx.attrs().dtypes("Tgrad")?;
    ctx.expect_inputs(types.len() + tgrad.len())?;
    for (i, (&t, s)) in types.iter().chain(&tgrad).zip(ctx.inputs()).enumerate() {
        if t != s.dtype {
            return Err(format!("input {i} is {} but the attrs say {t}", s.dtype));
        }
    }
    for a in ["cond", "body", "body_grad"] {
        ctx.attrs().func(a)?;
    }
    Ok(tgrad
        .iter()
        .map(|&t| TensorSpec::new(t, PartialShape::unknown()))
        .collect())
}

fn while_grad_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let n = ctx.attrs().dtypes("T")?.len();
    let names = ["cond", "body", "body_grad"]
        .iter()
        .map(|a| ctx.attrs().func(a).map(str::to_string))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let (cond, body, body_grad) = (
        ctx.call_function(&names[0])?,
        ctx.call_function(&names[1])?,
        ctx.call_function(&names[2])?,
    );
    let limit = ctx.functions.and_then(|f| f.max_loop_iterations());
    kernel_fn(move |k| {
        let mut values = (0..n)
            .map(|i| k.take_input(i))
            .collect::<Result<Vec<_>>>()?;
        let mut grads = (n..k.num_inputs())
            .map(|i| k.take_input(i))
            .collect::<Result<Vec<_>>>()?;
        // The forward loop again, keeping each iteration's values.
        let mut iterations = Vec::new();
        loop {
            let verdict = cond.call(values.clone())?;
            if !truth(&verdict[0], &names[0])? {
                break;
            }
            if limit.is_some_and(|max| iterations.len() as u64 >= max) {
                return Err(Error::invalid(format!(
                    "the loop ran {} iterations, the session's max_loop_iterations, and its \
                     condition '{}' is still true (body '{}', in its gradient)",
                    iterations.len(),
                    names[0],
                    names[1]
                )));
            }
            // Kept values count against the memory budget however small they are.
            values = values.into_iter().map(Tensor::into_counted).collect();
            iterations.push(values.clone());
            crate::tensor::alloc::check().map_err(|e| {
                Error::ResourceExhausted(format!(
                    "keeping iteration {} of loop '{}' for its gradient: {e}",
                    iterations.len(),
                    names[1]
                ))
            })?;
            values = body.call(values)?;
        }
        // Back through the iterations, last first.
        while let Some(mut args) = iterations.pop() {
            args.append(&mut grads);
            grads = body_grad.call(args)?;
        }
        grads.into_iter().for_each(|g| k.push_output(g));
        Ok(())
    })
}

pub(super) fn register(r: &mut Registry) {
    r.add(Op::new("_WhileGrad", infer_while_grad, while_grad_kernel).cost(Cost::Cheap));
}

/// Gradient checks of the control-flow ops (loops and branches over float values).
#[cfg(test)]
pub(crate) fn gradient_cases() -> Vec<crate::test_util::GradCase> {
    use crate::test_util::{test_input, GradCase};
    use crate::Tensor;
    /// A loop `op` of `steps` iterations over (i, acc, x) mapping acc to `acc * x` (with
    /// `squash`, `tanh(acc) * x`), from acc = 1; returns acc.
    fn power(g: &mut Graph, x: Output, op: &str, steps: i32, squash: bool) -> Result<Output> {
        let specs = [
            TensorSpec::new(DType::Int32, PartialShape::scalar()),
            TensorSpec::new(DType::Float64, PartialShape::unknown()),
            TensorSpec::new(DType::Float64, PartialShape::unknown()),
        ];
        g.define_function("cond", &specs, |g, a| {
            let n = g.constant(steps)?;
            Ok(vec![g.less(a[0], n)?])
        })?;
        g.define_function("body", &specs, |g, a| {
            let one = g.constant(1i32)?;
            let acc = if squash { g.tanh(a[1])? } else { a[1] };
            Ok(vec![g.add(a[0], one)?, g.mul(acc, a[2])?, a[2]])
        })?;
        let i0 = g.constant(0i32)?;
        let acc0 = g.ones_like(x)?;
        let id = g
            .op(op)
            .inputs(&[i0, acc0, x])
            .attr("T", vec![DType::Int32, DType::Float64, DType::Float64])
            .attr("cond", AttrValue::Func("cond".into()))
            .attr("body", AttrValue::Func("body".into()))
            .build()?;
        Ok(id.output(1))
    }
    /// `op` (If or Case) picking by `pick` among branches x·y, tanh(x) + y, x - y·y.
    fn branches(g: &mut Graph, x: &[Output], op: &str, pick: Tensor) -> Result<Output> {
        let specs = [
            TensorSpec::new(DType::Float64, PartialShape::unknown()),
            TensorSpec::new(DType::Float64, PartialShape::unknown()),
        ];
        g.define_function("product", &specs, |g, a| Ok(vec![g.mul(a[0], a[1])?]))?;
        g.define_function("tanh_plus", &specs, |g, a| {
            let s = g.tanh(a[0])?;
            Ok(vec![g.add(s, a[1])?])
        })?;
        g.define_function("square", &specs, |g, a| {
            let yy = g.mul(a[1], a[1])?;
            Ok(vec![g.sub(a[0], yy)?])
        })?;
        let pick = g.constant(pick)?;
        let tcond = g.dtype(pick);
        let b = g
            .op(op)
            .input(pick)
            .inputs(x)
            .attr("Tin", vec![DType::Float64, DType::Float64])
            .attr("Tout", vec![DType::Float64]);
        let b = if op.ends_with("Case") {
            b.attr(
                "branches",
                AttrValue::FuncList(vec!["product".into(), "tanh_plus".into(), "square".into()]),
            )
        } else {
            b.attr("Tcond", tcond)
                .attr("then_branch", AttrValue::Func("product".into()))
                .attr("else_branch", AttrValue::Func("tanh_plus".into()))
        };
        b.build_output()
    }
    let xy = |seed| vec![test_input(&[3], seed), test_input(&[3], seed + 1)];
    vec![
        GradCase::new("While", vec![test_input(&[2], 81)], |g, x| {
            power(g, x[0], "While", 3, false)
        }),
        GradCase::new("StatelessWhile", vec![test_input(&[2], 82)], |g, x| {
            power(g, x[0], "StatelessWhile", 2, true)
        }),
        GradCase::new("If", xy(83), |g, x| {
            branches(g, x, "If", Tensor::scalar(true))
        }),
        GradCase::new("If", xy(85), |g, x| {
            branches(g, x, "If", Tensor::scalar(false))
        }),
        GradCase::new("StatelessIf", xy(87), |g, x| {
            branches(g, x, "StatelessIf", Tensor::scalar(0f32))
        }),
        GradCase::new("Case", xy(89), |g, x| {
            branches(g, x, "Case", Tensor::scalar(1i32))
        }),
        // Out of range: the last branch.
        GradCase::new("StatelessCase", xy(91), |g, x| {
            branches(g, x, "StatelessCase", Tensor::scalar(7i32))
        }),
        // No iteration: the gradient of the initial values passes through.
        GradCase::new("While", vec![test_input(&[2], 93)], |g, x| {
            power(g, x[0], "While", 0, true)
        }),
    ]
}

#[cfg(test)]
mod tests {
    use crate::graph::{Graph, TensorSpec};
    use crate::session::{Session, SessionOptions};
    use crate::tensor::{DType, PartialShape, Tensor};

    /// A variable captured by a loop (a resource loop value, as TensorFlow 2 passes it)
    /// gets the gradient summed over the iterations: d/dw Σ w³ = 3w².
    #[test]
    fn a_variable_read_in_a_loop_gets_its_gradient() {
        let mut g = Graph::new();
        let init = g.constant(Tensor::from([2f32, 3.0])).unwrap();
        let w = g.resource_variable(init, "w").unwrap();
        let specs = [
            TensorSpec::new(DType::Int32, PartialShape::scalar()),
            TensorSpec::new(DType::Float32, PartialShape::unknown()),
            TensorSpec::new(DType::Resource, PartialShape::scalar()),
        ];
        g.define_function("cond", &specs, |g, a| {
            let n = g.constant(3i32)?;
            Ok(vec![g.less(a[0], n)?])
        })
        .unwrap();
        g.define_function("body", &specs, |g, a| {
            let one = g.constant(1i32)?;
            let v = g
                .op("ReadVariableOp")
                .input(a[2])
                .attr("dtype", DType::Float32)
                .build_output()?;
            Ok(vec![g.add(a[0], one)?, g.mul(a[1], v)?, a[2]])
        })
        .unwrap();
        let i0 = g.constant(0i32).unwrap();
        let acc0 = g.constant(Tensor::from([1f32, 1.0])).unwrap();
        let out = g.while_loop("cond", "body", &[i0, acc0, w.var]).unwrap();
        let loss = g.reduce_sum(out[1], &[0], false).unwrap();
        let grad = g.gradients(&[loss], &[w.var]).unwrap()[0].unwrap();
        let init = g.global_variables_initializer().unwrap();
        let s = Session::new(&g);
        s.run(&[], &[], &[init]).unwrap();
        let r = s.run(&[], &[grad], &[]).unwrap();
        assert_eq!(r[0], Tensor::from([12f32, 27.0]));
    }

    /// The gradient's second run of the loop is bounded like the forward one.
    #[test]
    fn the_gradient_loop_is_bounded_by_max_loop_iterations() {
        let mut g = Graph::new();
        let specs = [TensorSpec::new(DType::Float32, PartialShape::scalar())];
        g.define_function("forever", &specs, |g, _| Ok(vec![g.constant(true)?]))
            .unwrap();
        g.define_function("double", &specs, |g, a| Ok(vec![g.add(a[0], a[0])?]))
            .unwrap();
        let x = g.constant(1f32).unwrap();
        let y = g.while_loop("forever", "double", &[x]).unwrap()[0];
        let grad = g.gradients(&[y], &[x]).unwrap()[0].unwrap();
        let options = SessionOptions {
            max_loop_iterations: Some(5),
            ..SessionOptions::with_threads(1)
        };
        let e = Session::with_options(&g, options)
            .run(&[], &[grad], &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("max_loop_iterations") && e.contains("forever"),
            "{e}"
        );
    }
}

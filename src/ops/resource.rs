//! TensorFlow 2 resource variables: `VarHandleOp` yields a handle (a [`DType::Resource`]
//! scalar) to a session variable, and `ReadVariableOp`, `AssignVariableOp`,
//! `AssignAddVariableOp`, `AssignSubVariableOp`, `VarIsInitializedOp` and
//! `DestroyResourceOp` act on the variable the handle points at.
//!
//! The gradient of `ReadVariableOp` flows to its handle, as in TensorFlow: the gradient
//! of a loss with respect to a `VarHandleOp` output is the gradient with respect to the
//! variable's value, which the `ResourceApply*` updates (`ops::training`) take.
//!
//! The storage is the one TensorFlow 1 variables use ([`crate::kernel::resource`]): a
//! `VarHandleOp` and a `VariableV2` with the same `shared_name` share it. Unlike reference
//! inputs, handles are ordinary values, so they flow through `Identity`, function-call
//! boundaries and loops; each kernel resolves its handle when it runs.

use super::state::{update_variable, variable_defaults, variable_request};
use super::{kernel_fn, Cost, GradCtx, InferCtx, KernelBuildCtx, Op, Registry};
use crate::graph::{AttrValue, AttrsExt, Graph, Output, TensorSpec, VariableHandle};
use crate::kernel::resource::Variable;
use crate::ops::{InferResult, KernelResult};
use crate::tensor::{DType, PartialShape, ResourceHandle, Tensor};
use crate::{Error, Result};

fn infer_var_handle(ctx: &InferCtx<'_>) -> InferResult {
    ctx.expect_inputs(0)?;
    let attrs = ctx.attrs();
    let dtype = attrs.dtype("dtype")?;
    if dtype == DType::Resource {
        return Err("a variable cannot hold resource handles".into());
    }
    if attrs.value("shape").is_none() {
        return Err("missing attr 'shape'".into());
    }
    attrs.shape_or_unknown("shape")?;
    attrs.string_or("container", "")?;
    attrs.string_or("shared_name", "")?;
    Ok(vec![TensorSpec::new(
        DType::Resource,
        PartialShape::scalar(),
    )])
}

fn var_handle_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let handle = Tensor::resource_handle(ResourceHandle::new(ctx.resources.variable_for(ctx.node)));
    kernel_fn(move |k| {
        k.push_output(handle.clone());
        Ok(())
    })
}

/// Checks that input 0 is a handle and returns the `dtype` attr.
fn handle_input(ctx: &InferCtx<'_>) -> std::result::Result<DType, String> {
    if ctx.dtype(0) != DType::Resource {
        return Err(format!(
            "input 0 must be a resource handle (from VarHandleOp), got {}",
            ctx.dtype(0)
        ));
    }
    let dtype = ctx.attrs().dtype("dtype")?;
    let var = ctx.input_node(0);
    if var.op_type() == "VarHandleOp" {
        let declared = var.attrs().dtype("dtype")?;
        if declared != dtype {
            return Err(format!(
                "attr dtype is {dtype} but variable '{}' holds {declared}",
                var.name()
            ));
        }
    }
    Ok(dtype)
}

/// The variable's declared shape when input 0 comes straight from a `VarHandleOp`.
fn variable_shape(ctx: &InferCtx<'_>) -> PartialShape {
    let var = ctx.input_node(0);
    if var.op_type() == "VarHandleOp" {
        var.attrs().shape_or_unknown("shape").unwrap_or_default()
    } else {
        PartialShape::unknown()
    }
}

/// The variable a kernel's input 0 points at, with the dtype the node expects.
fn resolve(
    k: &crate::kernel::KernelCtx<'_>,
    what: &str,
    dtype: DType,
) -> Result<std::sync::Arc<Variable>> {
    let var = k.input(0)?.resource::<Variable>(what)?;
    if var.dtype() != dtype {
        return Err(Error::invalid(format!(
            "{what}: variable {} holds {} but the op expects {dtype}",
            var.name(),
            var.dtype()
        )));
    }
    Ok(var)
}

/// `"{op} '{node}'"`, the prefix of a kernel's errors.
fn what(ctx: &KernelBuildCtx<'_>) -> String {
    format!("{} '{}'", ctx.node.op_type(), ctx.node.name())
}

fn infer_read(ctx: &InferCtx<'_>) -> InferResult {
    ctx.expect_inputs(1)?;
    let dtype = handle_input(ctx)?;
    Ok(vec![TensorSpec::new(dtype, variable_shape(ctx))])
}

fn read_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let (what, dtype) = (what(ctx), ctx.attrs().dtype("dtype")?);
    kernel_fn(move |k| {
        let value = resolve(k, &what, dtype)?.read()?;
        k.push_output(value);
        Ok(())
    })
}

/// A handle and a value of the variable's dtype; with `validate_shape`, of its shape too.
fn infer_update(ctx: &InferCtx<'_>, validate_shape: bool) -> InferResult {
    ctx.expect_inputs(2)?;
    let dtype = handle_input(ctx)?;
    if ctx.dtype(1) != dtype {
        return Err(format!(
            "the value has dtype {} but attr dtype is {dtype}",
            ctx.dtype(1)
        ));
    }
    if validate_shape {
        variable_shape(ctx)
            .merge(ctx.shape(1))
            .map_err(|e| format!("the value must have the variable's shape: {e}"))?;
    }
    Ok(Vec::new())
}

fn infer_assign(ctx: &InferCtx<'_>) -> InferResult {
    infer_update(ctx, ctx.attrs().bool_or("validate_shape", false)?)
}

fn infer_assign_update(ctx: &InferCtx<'_>) -> InferResult {
    infer_update(ctx, true)
}

fn assign_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let (what, dtype) = (what(ctx), ctx.attrs().dtype("dtype")?);
    let validate_shape = ctx.attrs().bool_or("validate_shape", false)?;
    kernel_fn(move |k| {
        let var = resolve(k, &what, dtype)?;
        let value = k.take_input(1)?;
        var.assign(value, validate_shape)
            .map_err(|e| Error::invalid(format!("{what}: {e}")))?;
        Ok(())
    })
}

fn assign_update_kernel(ctx: &KernelBuildCtx<'_>, subtract: bool) -> KernelResult {
    let (what, dtype) = (what(ctx), ctx.attrs().dtype("dtype")?);
    kernel_fn(move |k| {
        let var = resolve(k, &what, dtype)?;
        let value = k.take_input(1)?;
        update_variable(&var, &value, &what, subtract)?;
        Ok(())
    })
}

fn infer_is_initialized(ctx: &InferCtx<'_>) -> InferResult {
    ctx.expect_inputs(1)?;
    if ctx.dtype(0) != DType::Resource {
        return Err(format!(
            "input 0 must be a resource handle, got {}",
            ctx.dtype(0)
        ));
    }
    Ok(vec![TensorSpec::new(DType::Bool, PartialShape::scalar())])
}

fn is_initialized_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let what = what(ctx);
    kernel_fn(move |k| {
        let var = k.input(0)?.resource::<Variable>(&what)?;
        k.push_output(Tensor::scalar(var.is_initialized()));
        Ok(())
    })
}

fn infer_destroy(ctx: &InferCtx<'_>) -> InferResult {
    ctx.expect_inputs(1)?;
    ctx.attrs().bool_or("ignore_lookup_error", true)?;
    if ctx.dtype(0) != DType::Resource {
        return Err(format!(
            "input 0 must be a resource handle, got {}",
            ctx.dtype(0)
        ));
    }
    Ok(Vec::new())
}

fn destroy_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let what = what(ctx);
    kernel_fn(move |k| {
        k.input(0)?.resource::<Variable>(&what)?.clear()?;
        Ok(())
    })
}

/// The gradient of a read flows to the handle it read (`_ReadGrad`).
fn read_grad(ctx: &mut GradCtx<'_>) -> Result<Vec<Option<Output>>> {
    Ok(vec![Some(ctx.grad(0))])
}

impl Graph {
    /// A resource variable (`tf.Variable` in TensorFlow 2): a `VarHandleOp` named `name`
    /// (its `shared_name` too) holding `initial_value`'s dtype and shape (fully known),
    /// `name/Assign` (an `AssignVariableOp`, the initializer) and `name/Read` (a
    /// `ReadVariableOp`); added to the graph's global variables.
    pub fn resource_variable(
        &mut self,
        initial_value: Output,
        name: &str,
    ) -> Result<VariableHandle> {
        self.add_variable(initial_value, name, |g, spec, scope| {
            let req = variable_request("VarHandleOp", scope.clone(), &spec, &scope);
            let handle = g.add_node(req)?.output(0);
            let initializer = g
                .op("AssignVariableOp")
                .name("Assign")
                .input(handle)
                .input(initial_value)
                .attr("dtype", spec.dtype)
                .build()?;
            let read = g
                .op("ReadVariableOp")
                .name("Read")
                .input(handle)
                .attr("dtype", spec.dtype)
                .build_output()?;
            Ok(VariableHandle {
                var: handle,
                read,
                initializer,
            })
        })
    }

    /// The [`VariableHandle`] of an existing resource variable (a loaded TensorFlow 2
    /// model's): `var` is `handle` (a `VarHandleOp` output), `read` a new
    /// `ReadVariableOp` of it, and `initializer` the `VarHandleOp` itself (its value comes
    /// from the checkpoint; running the handle initializes nothing). Optimizers given it
    /// update the variable with the `ResourceApply*` ops.
    pub fn read_variable(&mut self, handle: Output) -> Result<VariableHandle> {
        self.check_output(handle, "read_variable")?;
        let node = self.node(handle.node);
        if node.op_type() != "VarHandleOp" {
            return Err(Error::invalid(format!(
                "read_variable: '{}' is a {}, not a VarHandleOp",
                node.name(),
                node.op_type()
            )));
        }
        let dtype = node.attrs().dtype("dtype").map_err(Error::invalid)?;
        let name = format!("{}/Read", node.name());
        let read = self
            .op("ReadVariableOp")
            .name(&name)
            .input(handle)
            .attr("dtype", dtype)
            .build_output()?;
        Ok(VariableHandle {
            var: handle,
            read,
            initializer: handle.node,
        })
    }
}

pub(crate) fn register(r: &mut Registry) {
    r.add(
        Op::new("VarHandleOp", infer_var_handle, var_handle_kernel)
            .stateful()
            .no_grad()
            .cost(Cost::Cheap)
            .defaults(variable_defaults),
    );
    r.add(
        Op::new("ReadVariableOp", infer_read, read_kernel)
            .stateful()
            .grad(read_grad)
            .cost(Cost::Cheap),
    );
    r.add(
        Op::new("AssignVariableOp", infer_assign, assign_kernel)
            .stateful()
            .no_grad()
            .cost(Cost::Cheap)
            .defaults(|| vec![("validate_shape", AttrValue::Bool(false))]),
    );
    r.add(
        Op::new("AssignAddVariableOp", infer_assign_update, |ctx| {
            assign_update_kernel(ctx, false)
        })
        .stateful()
        .no_grad(),
    );
    r.add(
        Op::new("AssignSubVariableOp", infer_assign_update, |ctx| {
            assign_update_kernel(ctx, true)
        })
        .stateful()
        .no_grad(),
    );
    r.add(
        Op::new(
            "VarIsInitializedOp",
            infer_is_initialized,
            is_initialized_kernel,
        )
        .stateful()
        .no_grad()
        .cost(Cost::Cheap),
    );
    r.add(
        Op::new("DestroyResourceOp", infer_destroy, destroy_kernel)
            .stateful()
            .no_grad()
            .cost(Cost::Cheap)
            .defaults(|| vec![("ignore_lookup_error", AttrValue::Bool(true))]),
    );
}

#[cfg(test)]
mod tests {
    use crate::graph::{NodeId, Output};
    use crate::{DType, Graph, PartialShape, Session, Tensor};

    fn handle(g: &mut Graph, name: &str) -> Output {
        g.op("VarHandleOp")
            .name(name)
            .attr("dtype", DType::Float32)
            .attr("shape", PartialShape::known(&[2]))
            .attr("shared_name", name)
            .build_output()
            .unwrap()
    }

    fn update(g: &mut Graph, op: &str, h: Output, v: Output) -> NodeId {
        g.op(op)
            .input(h)
            .input(v)
            .attr("dtype", DType::Float32)
            .build()
            .unwrap()
    }

    #[test]
    fn resource_variables_assign_read_update_and_destroy() {
        let mut g = Graph::new();
        let h = handle(&mut g, "v");
        let init = g.constant(Tensor::from([1f32, 2.0])).unwrap();
        let assign = update(&mut g, "AssignVariableOp", h, init);
        let step = g.constant(Tensor::from([0.5f32, 0.5])).unwrap();
        let add = update(&mut g, "AssignAddVariableOp", h, step);
        let sub = update(&mut g, "AssignSubVariableOp", h, init);
        // The handle passes through an Identity, as it does through inlined function args.
        let through = g.identity(h).unwrap();
        let read = g
            .op("ReadVariableOp")
            .input(through)
            .attr("dtype", DType::Float32)
            .build_output()
            .unwrap();
        let is_init = g.op("VarIsInitializedOp").input(h).build_output().unwrap();
        let destroy = g.op("DestroyResourceOp").input(h).build().unwrap();
        let s = Session::new(&g);
        assert_eq!(
            s.run(&[], &[is_init], &[]).unwrap()[0],
            Tensor::scalar(false)
        );
        let e = s.run(&[], &[read], &[]).unwrap_err().to_string();
        assert!(e.contains("uninitialized"), "{e}");
        s.run(&[], &[], &[assign]).unwrap();
        s.run(&[], &[], &[add]).unwrap();
        assert_eq!(
            s.run(&[], &[read], &[]).unwrap()[0],
            Tensor::from([1.5f32, 2.5])
        );
        s.run(&[], &[], &[sub]).unwrap();
        assert_eq!(
            s.run(&[], &[read], &[]).unwrap()[0],
            Tensor::from([0.5f32, 0.5])
        );
        // Storage is the session's: shared with a VariableV2 of the same name.
        let stored = s.resources().variable("v").unwrap().read().unwrap();
        assert_eq!(stored, Tensor::from([0.5f32, 0.5]));
        s.run(&[], &[], &[destroy]).unwrap();
        assert_eq!(
            s.run(&[], &[is_init], &[]).unwrap()[0],
            Tensor::scalar(false)
        );
        // Handles are never fetched or fed.
        let e = s.run(&[], &[h], &[]).unwrap_err().to_string();
        assert!(
            e.contains("cannot fetch 'v:0'") && e.contains("resource handle"),
            "{e}"
        );
    }

    #[test]
    fn dtype_and_shape_mismatches_are_errors() {
        let mut g = Graph::new();
        let h = handle(&mut g, "w");
        let ints = g.constant(Tensor::from([1i32, 2])).unwrap();
        let e = g
            .op("AssignVariableOp")
            .input(h)
            .input(ints)
            .attr("dtype", DType::Int32)
            .build()
            .unwrap_err()
            .to_string();
        assert!(e.contains("holds float32"), "{e}");
        let long = g.constant(Tensor::from([1f32, 2.0, 3.0])).unwrap();
        let e = g
            .op("AssignAddVariableOp")
            .input(h)
            .input(long)
            .attr("dtype", DType::Float32)
            .build()
            .unwrap_err()
            .to_string();
        assert!(e.contains("the variable's shape"), "{e}");
        let x = g.constant(1f32).unwrap();
        let e = g
            .op("ReadVariableOp")
            .input(x)
            .attr("dtype", DType::Float32)
            .build()
            .unwrap_err()
            .to_string();
        assert!(e.contains("resource handle"), "{e}");
    }

    /// The gradient with respect to a handle is the gradient with respect to the value it
    /// reads: summed over every read (through an Identity too), checked against central
    /// differences of the loss at perturbed variable values.
    #[test]
    fn gradients_flow_through_reads_to_the_handle() {
        let mut g = Graph::new();
        let init = g.constant(Tensor::from([0.5f64, -1.5, 2.0])).unwrap();
        let w = g.resource_variable(init, "w").unwrap();
        let x = g.constant(Tensor::from([3.0f64, 0.25, -1.0])).unwrap();
        // loss = sum(w * w * x) + sum(w), read twice and once through an Identity.
        let through = g.identity(w.var).unwrap();
        let again = g
            .op("ReadVariableOp")
            .input(through)
            .attr("dtype", DType::Float64)
            .build_output()
            .unwrap();
        let ww = g.mul(w.read, again).unwrap();
        let wwx = g.mul(ww, x).unwrap();
        let sum = g.add(wwx, w.read).unwrap();
        let loss = g.reduce_sum(sum, &[0], false).unwrap();
        let grad = g.gradients(&[loss], &[w.var]).unwrap()[0].unwrap();
        assert_eq!(g.dtype(grad), DType::Float64);
        let value = g
            .placeholder(DType::Float64, PartialShape::known(&[3]), "value")
            .unwrap();
        let set = g
            .op("AssignVariableOp")
            .input(w.var)
            .input(value)
            .attr("dtype", DType::Float64)
            .build()
            .unwrap();
        let s = Session::new(&g);
        let at = |v: &[f64]| {
            s.run(&[(value, Tensor::from(v.to_vec()))], &[], &[set])
                .unwrap();
            s.run(&[], &[loss, grad], &[]).unwrap()
        };
        let w0 = [0.5f64, -1.5, 2.0];
        let symbolic = at(&w0)[1].to_vec::<f64>().unwrap();
        let h = 1e-6;
        for i in 0..3 {
            let (mut up, mut down) = (w0, w0);
            up[i] += h;
            down[i] -= h;
            let (lu, ld) = (
                at(&up)[0].scalar_value::<f64>().unwrap(),
                at(&down)[0].scalar_value::<f64>().unwrap(),
            );
            let numeric = (lu - ld) / (2.0 * h);
            assert!(
                (numeric - symbolic[i]).abs() < 1e-6,
                "{i}: {numeric} vs {symbolic:?}"
            );
        }
        // 2 w x + 1, by hand.
        assert_eq!(symbolic, vec![4.0, 0.25, -3.0]);
    }

    #[test]
    fn an_unconnected_handle_gets_zeros_of_its_variable() {
        let mut g = Graph::new();
        let init = g.constant(Tensor::from([[1f32, 2.0]])).unwrap();
        let w = g.resource_variable(init, "w").unwrap();
        let y = g.constant(1f32).unwrap();
        let options = crate::autodiff::GradientOptions {
            unconnected: crate::autodiff::Unconnected::Zero,
            ..Default::default()
        };
        let grad = g.gradients_with(&[y], &[w.var], &options).unwrap()[0].unwrap();
        let out = Session::new(&g).run(&[], &[grad], &[]).unwrap();
        assert_eq!(out[0], Tensor::from([[0f32, 0.0]]));
        assert!(g
            .read_variable(y)
            .unwrap_err()
            .to_string()
            .contains("not a VarHandleOp"));
    }
}

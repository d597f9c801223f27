//! TensorFlow 1 variables: `VariableV2` and the ops that take it by reference (`Assign`,
//! `AssignAdd`, `AssignSub`, `IsVariableInitialized`), plus the `tf.compat.v1.Variable`
//! style builders on [`Graph`].
//!
//! A variable's storage lives in the session ([`crate::session::Resources`]), so every
//! session over one graph has its own values, and they persist across `Session::run` calls.
//! Reference inputs are not evaluated by the plan: their kernels resolve the variable once
//! with [`KernelBuildCtx::variable`].
//!
//! Every op here is marked stateful: the ref ops have side effects or (IsVariableInitialized)
//! a value that changes with no data input, so they must never be constant-folded.
//!
//! The `container` attr is accepted and ignored (one container per session); variables
//! with the same non-empty `shared_name` share storage within a session.

use super::math::{check_family, Family};
use super::{kernel_fn, Cost, InferCtx, KernelBuildCtx, Op, Registry};
use crate::graph::{AttrValue, AttrsExt, Graph, NodeId, NodeRequest, Output, TensorSpec};
use crate::kernel::resource::Variable;
use crate::ops::{InferResult, KernelResult};
use crate::tensor::{Number, PartialShape};
use crate::{with_dtype, Error, Result};

pub use crate::graph::VariableHandle;

fn infer_variable(ctx: &InferCtx<'_>) -> InferResult {
    ctx.expect_inputs(0)?;
    let attrs = ctx.attrs();
    let dtype = attrs.dtype("dtype")?;
    let shape = match attrs.value("shape") {
        None => return Err("missing attr 'shape'".into()),
        Some(_) => attrs.shape_or_unknown("shape")?,
    };
    attrs.string_or("container", "")?;
    attrs.string_or("shared_name", "")?;
    Ok(vec![TensorSpec::new(dtype, shape)])
}

fn variable_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let var = ctx.resources.variable_for(ctx.node);
    kernel_fn(move |k| {
        k.push_output(var.read()?);
        Ok(())
    })
}

/// The spec of reference input 0, which must be a `VariableV2` output.
fn ref_spec(ctx: &InferCtx<'_>) -> std::result::Result<TensorSpec, String> {
    let node = ctx.input_node(0);
    if node.op_type() != "VariableV2" {
        return Err(format!(
            "input 0 (ref) must be a variable (VariableV2), but '{}' is a {}",
            node.name(),
            node.op_type()
        ));
    }
    Ok(ctx.input(0).clone())
}

/// Checks the value (input 1) against the variable's dtype and the `T` attr.
fn check_value_dtype(ctx: &InferCtx<'_>, var: &TensorSpec) -> std::result::Result<(), String> {
    if ctx.dtype(1) != var.dtype {
        return Err(format!(
            "the value has dtype {} but the variable has dtype {}; Cast the value first",
            ctx.dtype(1),
            var.dtype
        ));
    }
    ctx.check_t_attr(var.dtype)
}

fn infer_assign(ctx: &InferCtx<'_>) -> InferResult {
    ctx.expect_inputs(2)?;
    let var = ref_spec(ctx)?;
    check_value_dtype(ctx, &var)?;
    ctx.attrs().bool_or("use_locking", true)?;
    let shape = if ctx.attrs().bool_or("validate_shape", true)? {
        var.shape.merge(ctx.shape(1)).map_err(|e| {
            format!("the value must have the variable's shape (validate_shape is true): {e}")
        })?
    } else {
        ctx.shape(1).clone()
    };
    Ok(vec![TensorSpec::new(var.dtype, shape)])
}

/// AssignAdd / AssignSub: a numeric variable and a value of exactly its shape.
fn infer_assign_update(ctx: &InferCtx<'_>) -> InferResult {
    ctx.expect_inputs(2)?;
    let var = ref_spec(ctx)?;
    check_family(ctx, 0, Family::Number)?;
    check_value_dtype(ctx, &var)?;
    ctx.attrs().bool_or("use_locking", false)?;
    let shape = var
        .shape
        .merge(ctx.shape(1))
        .map_err(|e| format!("the value must have the variable's shape: {e}"))?;
    Ok(vec![TensorSpec::new(var.dtype, shape)])
}

fn assign_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let var = ctx.variable(0)?;
    let validate_shape = ctx.attrs().bool_or("validate_shape", true)?;
    kernel_fn(move |k| {
        let value = k.take_input(1)?;
        k.push_output(var.assign(value, validate_shape)?);
        Ok(())
    })
}

/// Adds `value` to the variable (subtracts with `subtract`) in place and returns the new
/// value; `op` names the op in errors. Shared by the reference ops (`AssignAdd`) and the
/// resource ops (`AssignAddVariableOp`).
pub(super) fn update_variable(
    var: &Variable,
    value: &crate::Tensor,
    op: &str,
    subtract: bool,
) -> Result<crate::Tensor> {
    with_dtype!(number, value.dtype(), T => var.update(|current| {
        if current.shape() != value.shape() || current.dtype() != value.dtype() {
            return Err(Error::invalid(format!(
                "{op} needs a value of the variable's dtype and shape, but variable {} is {} \
                 {:?} and the value is {} {:?}",
                var.name(),
                current.dtype(),
                current.shape(),
                value.dtype(),
                value.shape()
            )));
        }
        let values = value.as_slice::<T>()?;
        current.modify::<T>(|cur| {
            cur.iter_mut().zip(values).for_each(|(a, &b)| {
                *a = if subtract { a.sub(b) } else { a.add(b) }
            })
        })
    }))
}

fn assign_add_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    assign_update_kernel(ctx, "AssignAdd", false)
}

fn assign_sub_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    assign_update_kernel(ctx, "AssignSub", true)
}

fn assign_update_kernel(
    ctx: &KernelBuildCtx<'_>,
    op: &'static str,
    subtract: bool,
) -> KernelResult {
    let var = ctx.variable(0)?;
    kernel_fn(move |k| {
        let value = k.take_input(1)?;
        k.push_output(update_variable(&var, &value, op, subtract)?);
        Ok(())
    })
}

fn infer_is_initialized(ctx: &InferCtx<'_>) -> InferResult {
    ctx.expect_inputs(1)?;
    let var = ref_spec(ctx)?;
    let dtype = ctx.attrs().dtype_or("dtype", var.dtype)?;
    if dtype != var.dtype {
        return Err(format!(
            "attr dtype is {dtype} but the variable has dtype {}",
            var.dtype
        ));
    }
    Ok(vec![TensorSpec::new(
        crate::DType::Bool,
        PartialShape::scalar(),
    )])
}

fn is_initialized_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let var = ctx.variable(0)?;
    kernel_fn(move |k| {
        k.push_output(crate::Tensor::scalar(var.is_initialized()));
        Ok(())
    })
}

/// TensorFlow's defaults of the attrs naming a variable's storage (`VariableV2`,
/// `VarHandleOp`).
pub(super) fn variable_defaults() -> Vec<(&'static str, AttrValue)> {
    vec![
        ("container", AttrValue::from("")),
        ("shared_name", AttrValue::from("")),
    ]
}

pub(crate) fn register(r: &mut Registry) {
    r.add(
        Op::new("VariableV2", infer_variable, variable_kernel)
            .stateful()
            .cost(Cost::Cheap)
            .defaults(variable_defaults),
    );
    r.add(
        Op::new("Assign", infer_assign, assign_kernel)
            .ref_inputs(&[0])
            .stateful()
            .no_grad()
            .cost(Cost::Cheap)
            .defaults(|| {
                vec![
                    ("validate_shape", AttrValue::Bool(true)),
                    ("use_locking", AttrValue::Bool(true)),
                ]
            }),
    );
    r.add(
        Op::new("AssignAdd", infer_assign_update, assign_add_kernel)
            .ref_inputs(&[0])
            .stateful()
            .no_grad()
            .defaults(|| vec![("use_locking", AttrValue::Bool(false))]),
    );
    r.add(
        Op::new("AssignSub", infer_assign_update, assign_sub_kernel)
            .ref_inputs(&[0])
            .stateful()
            .no_grad()
            .defaults(|| vec![("use_locking", AttrValue::Bool(false))]),
    );
    r.add(
        Op::new(
            "IsVariableInitialized",
            infer_is_initialized,
            is_initialized_kernel,
        )
        .ref_inputs(&[0])
        .stateful()
        .cost(Cost::Cheap),
    );
}

/// Adds `op` (Assign, AssignAdd, AssignSub) on variable `var` with TensorFlow's attrs.
fn ref_update(g: &mut Graph, op: &str, var: Output, value: Output) -> Result<Output> {
    let t = g.dtype(var);
    let b = g.op(op).input(var).input(value).attr("T", t);
    let b = if op == "Assign" {
        b.attr("validate_shape", true).attr("use_locking", true)
    } else {
        b.attr("use_locking", false)
    };
    b.build_output()
}

/// The node of a variable op (`VariableV2`, `VarHandleOp`) named exactly `name`, holding
/// values of `spec`.
pub(crate) fn variable_request(
    op_type: &str,
    name: String,
    spec: &TensorSpec,
    shared_name: &str,
) -> NodeRequest {
    let mut req = NodeRequest {
        op_type: op_type.into(),
        name: Some(name),
        exact_name: true,
        ..NodeRequest::default()
    };
    req.attrs.insert("dtype".into(), spec.dtype.into());
    req.attrs.insert("shape".into(), spec.shape.clone().into());
    req.attrs.insert("container".into(), "".into());
    req.attrs.insert("shared_name".into(), shared_name.into());
    req
}

impl Graph {
    /// A variable holding `initial_value` once initialized (`tf.compat.v1.Variable`). Under
    /// name scope `name` it adds `name` (VariableV2 with the initial value's dtype and
    /// shape, which must be fully known), `name/Assign` (the initializer) and `name/read`
    /// (an Identity to read the value through), and adds the variable to
    /// [`Graph::global_variables`].
    pub fn variable(&mut self, initial_value: Output, name: &str) -> Result<VariableHandle> {
        self.add_variable(initial_value, name, |g, spec, scope| {
            g.variable_in_scope(initial_value, spec, scope)
        })
    }

    /// Adds a variable under name scope `name`: `build` makes its nodes from the initial
    /// value's spec (whose shape must be fully known) and the scope's name; the variable
    /// joins [`Graph::global_variables`].
    pub(crate) fn add_variable(
        &mut self,
        initial_value: Output,
        name: &str,
        build: impl FnOnce(&mut Graph, TensorSpec, String) -> Result<VariableHandle>,
    ) -> Result<VariableHandle> {
        let spec = self.spec(initial_value).clone();
        if !spec.shape.is_fully_defined() {
            return Err(Error::invalid(format!(
                "the initial value of variable '{name}' must have a fully known shape, got {}",
                spec.shape
            )));
        }
        let scope = self.push_name_scope(name);
        let handle = build(self, spec, scope);
        self.pop_name_scope();
        let handle = handle?;
        self.add_global_variable(handle);
        Ok(handle)
    }

    fn variable_in_scope(
        &mut self,
        initial_value: Output,
        spec: TensorSpec,
        scope: String,
    ) -> Result<VariableHandle> {
        let req = variable_request("VariableV2", scope, &spec, "");
        let var = self.add_node(req)?.output(0);
        let initializer = self
            .op("Assign")
            .name("Assign")
            .input(var)
            .input(initial_value)
            .attr("T", spec.dtype)
            .attr("validate_shape", true)
            .attr("use_locking", true)
            .build()?;
        let read = self
            .op("Identity")
            .name("read")
            .input(var)
            .attr("T", spec.dtype)
            .build_output()?;
        Ok(VariableHandle {
            var,
            read,
            initializer,
        })
    }

    /// A NoOp named `init` that runs every global variable's initializer
    /// (`tf.compat.v1.global_variables_initializer`).
    pub fn global_variables_initializer(&mut self) -> Result<NodeId> {
        let inits: Vec<NodeId> = self
            .global_variables()
            .iter()
            .map(|v| v.initializer)
            .collect();
        self.group(&inits, "init")
    }

    /// Sets variable `var` (a `VariableV2` output) to `value`, which must have its dtype and
    /// shape; yields the new value (`tf.compat.v1.assign`, op Assign).
    pub fn assign(&mut self, var: Output, value: Output) -> Result<Output> {
        ref_update(self, "Assign", var, value)
    }

    /// Adds `value` to variable `var` in place; yields the new value
    /// (`tf.compat.v1.assign_add`, op AssignAdd).
    pub fn assign_add(&mut self, var: Output, value: Output) -> Result<Output> {
        ref_update(self, "AssignAdd", var, value)
    }

    /// Subtracts `value` from variable `var` in place; yields the new value
    /// (`tf.compat.v1.assign_sub`, op AssignSub).
    pub fn assign_sub(&mut self, var: Output, value: Output) -> Result<Output> {
        ref_update(self, "AssignSub", var, value)
    }

    /// A bool scalar telling whether variable `var` has a value
    /// (`tf.compat.v1.is_variable_initialized`).
    pub fn is_variable_initialized(&mut self, var: Output) -> Result<Output> {
        let dtype = self.dtype(var);
        self.op("IsVariableInitialized")
            .input(var)
            .attr("dtype", dtype)
            .build_output()
    }
}

#[cfg(test)]
mod tests {
    use crate::{DType, Error, Graph, PartialShape, Session, Tensor};

    #[test]
    fn init_then_read_and_names() {
        let mut g = Graph::new();
        let init = g
            .constant(Tensor::from([[1.0f32, 2.0], [3.0, 4.0]]))
            .unwrap();
        let w = g.variable(init, "w").unwrap();
        assert_eq!(g.node(w.var.node).name(), "w");
        assert_eq!(g.node(w.initializer).name(), "w/Assign");
        assert_eq!(g.node(w.read.node).name(), "w/read");
        assert_eq!(g.shape(w.read).to_known(), Some(vec![2, 2]));
        let w2 = g.variable(init, "w").unwrap();
        assert_eq!(g.node(w2.var.node).name(), "w_1");
        assert_eq!(g.node(w2.initializer).name(), "w_1/Assign");
        let b = g
            .name_scope("dense", |g| {
                let z = g.constant(Tensor::from([0i64, 0, 0]))?;
                g.variable(z, "bias")
            })
            .unwrap();
        assert_eq!(g.node(b.var.node).name(), "dense/bias");
        assert_eq!(g.node(b.read.node).name(), "dense/bias/read");
        assert_eq!(g.global_variables(), &[w, w2, b]);
        let init_op = g.global_variables_initializer().unwrap();
        assert_eq!(g.node(init_op).name(), "init");
        assert_eq!(g.node(init_op).control_inputs().len(), 3);

        let sess = Session::new(&g);
        sess.run(&[], &[], &[init_op]).unwrap();
        let out = sess.run(&[], &[w.read, w.var, b.read], &[]).unwrap();
        assert_eq!(out[0], Tensor::from([[1.0f32, 2.0], [3.0, 4.0]]));
        assert_eq!(out[1], out[0]);
        assert_eq!(out[2], Tensor::from([0i64, 0, 0]));
    }

    #[test]
    fn reading_before_init_names_the_variable() {
        let mut g = Graph::new();
        let c = g.constant(Tensor::from([1.0f64])).unwrap();
        let v = g.variable(c, "my_var").unwrap();
        let sess = Session::new(&g);
        let err = sess.run(&[], &[v.read], &[]).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::Run { .. }), "{err:?}");
        assert!(
            msg.contains("Attempting to use uninitialized value my_var"),
            "{msg}"
        );
        let inited = g.is_variable_initialized(v.var).unwrap();
        sess.extend(&g).unwrap();
        let before = sess.run(&[], &[inited], &[]).unwrap();
        assert_eq!(before[0], Tensor::scalar(false));
        sess.run(&[], &[], &[v.initializer]).unwrap();
        let after = sess.run(&[], &[inited, v.read], &[]).unwrap();
        assert_eq!(after[0], Tensor::scalar(true));
        assert_eq!(after[1], Tensor::from([1.0f64]));
        // AssignAdd on an uninitialized variable fails the same way.
        let mut g2 = Graph::new();
        let c = g2.constant(Tensor::from([1i32])).unwrap();
        let v = g2.variable(c, "acc").unwrap();
        let add = g2.assign_add(v.var, c).unwrap();
        let msg = Session::new(&g2)
            .run(&[], &[add], &[])
            .unwrap_err()
            .to_string();
        assert!(msg.contains("uninitialized value acc"), "{msg}");
    }

    #[test]
    fn state_persists_and_assign_add_sub_accumulate() {
        let mut g = Graph::new();
        let zero = g.constant(Tensor::from([0i32, 10])).unwrap();
        let v = g.variable(zero, "counter").unwrap();
        let step = g.constant(Tensor::from([1i32, -2])).unwrap();
        let inc = g.assign_add(v.var, step).unwrap();
        let dec = g.assign_sub(v.var, step).unwrap();
        let init = g.global_variables_initializer().unwrap();
        let sess = Session::new(&g);
        sess.run(&[], &[], &[init]).unwrap();
        for i in 1..=3 {
            let out = sess.run(&[], &[inc], &[]).unwrap();
            assert_eq!(out[0], Tensor::from([i, 10 - 2 * i]));
        }
        let out = sess.run(&[], &[dec], &[]).unwrap();
        assert_eq!(out[0], Tensor::from([2i32, 6]));
        assert_eq!(
            sess.run(&[], &[v.read], &[]).unwrap()[0],
            Tensor::from([2i32, 6])
        );
        // Integer overflow wraps instead of panicking.
        let mut g = Graph::new();
        let big = g.constant(Tensor::from([i64::MAX])).unwrap();
        let v = g.variable(big, "big").unwrap();
        let one = g.constant(Tensor::from([1i64])).unwrap();
        let inc = g.assign_add(v.var, one).unwrap();
        let sess = Session::new(&g);
        sess.run(&[], &[], &[v.initializer]).unwrap();
        assert_eq!(
            sess.run(&[], &[inc], &[]).unwrap()[0],
            Tensor::from([i64::MIN])
        );
    }

    #[test]
    fn assign_sets_a_new_value_and_float_update() {
        let mut g = Graph::new();
        let init = g.constant(Tensor::from([0.5f32, 1.5])).unwrap();
        let v = g.variable(init, "v").unwrap();
        let x = g.placeholder(DType::Float32, [2], "x").unwrap();
        let set = g.assign(v.var, x).unwrap();
        let sub = g.assign_sub(v.var, init).unwrap();
        let sess = Session::new(&g);
        let out = sess
            .run(&[(x, Tensor::from([4.0f32, 8.0]))], &[set], &[])
            .unwrap();
        assert_eq!(out[0], Tensor::from([4.0f32, 8.0]));
        // 4 - 0.5, 8 - 1.5
        let out = sess.run(&[], &[sub], &[]).unwrap();
        assert_eq!(out[0], Tensor::from([3.5f32, 6.5]));
    }

    #[test]
    fn sessions_have_independent_variables() {
        let mut g = Graph::new();
        let zero = g.constant(Tensor::scalar(0.0f64)).unwrap();
        let v = g.variable(zero, "v").unwrap();
        let one = g.constant(Tensor::scalar(1.0f64)).unwrap();
        let inc = g.assign_add(v.var, one).unwrap();
        let init = g.global_variables_initializer().unwrap();
        let s1 = Session::new(&g);
        let s2 = Session::new(&g);
        s1.run(&[], &[], &[init]).unwrap();
        s2.run(&[], &[], &[init]).unwrap();
        for _ in 0..3 {
            s1.run(&[], &[], &[inc.node]).unwrap();
        }
        s2.run(&[], &[], &[inc.node]).unwrap();
        assert_eq!(s1.run(&[], &[v.read], &[]).unwrap()[0], Tensor::scalar(3.0));
        assert_eq!(s2.run(&[], &[v.read], &[]).unwrap()[0], Tensor::scalar(1.0));
    }

    #[test]
    fn build_time_errors() {
        let mut g = Graph::new();
        let init = g.constant(Tensor::from([1.0f32, 2.0])).unwrap();
        let v = g.variable(init, "v").unwrap();
        let wrong = g.constant(Tensor::from([1.0f32, 2.0, 3.0])).unwrap();
        let msg = g.assign(v.var, wrong).unwrap_err().to_string();
        assert!(
            msg.contains("'Assign'") && msg.contains("[2]") && msg.contains("[3]"),
            "{msg}"
        );
        let msg = g.assign_add(v.var, wrong).unwrap_err().to_string();
        assert!(msg.contains("AssignAdd") && msg.contains("[3]"), "{msg}");
        let ints = g.constant(Tensor::from([1i32, 2])).unwrap();
        let msg = g.assign(v.var, ints).unwrap_err().to_string();
        assert!(
            msg.contains("int32") && msg.contains("float32") && msg.contains("Cast"),
            "{msg}"
        );
        // The reference input must be a variable, not a value (not even its read).
        let msg = g.assign(v.read, init).unwrap_err().to_string();
        assert!(
            msg.contains("VariableV2") && msg.contains("v/read"),
            "{msg}"
        );
        // AssignAdd needs a numeric variable.
        let t = g.constant(Tensor::from([true])).unwrap();
        let bv = g.variable(t, "flag").unwrap();
        let msg = g.assign_add(bv.var, t).unwrap_err().to_string();
        assert!(msg.contains("bool"), "{msg}");
        // Variables need a fully known initial shape; VariableV2 needs its shape attr.
        let p = g.placeholder(DType::Float32, [None], "p").unwrap();
        let msg = g.variable(p, "pv").unwrap_err().to_string();
        assert!(msg.contains("pv") && msg.contains("[?]"), "{msg}");
        let msg = g
            .op("VariableV2")
            .attr("dtype", DType::Float32)
            .build()
            .unwrap_err()
            .to_string();
        assert!(msg.contains("shape"), "{msg}");
        let msg = g
            .op("IsVariableInitialized")
            .input(v.var)
            .attr("dtype", DType::Int32)
            .build()
            .unwrap_err()
            .to_string();
        assert!(msg.contains("int32") && msg.contains("float32"), "{msg}");
    }

    #[test]
    fn validate_shape_false_allows_a_reshape() {
        let mut g = Graph::new();
        // Like tf.compat.v1.Variable(initial, validate_shape=False): the shape is unknown.
        let var = g
            .op("VariableV2")
            .name("flex")
            .attr("dtype", DType::Int32)
            .attr("shape", PartialShape::unknown())
            .build_output()
            .unwrap();
        let two = g.constant(Tensor::from([1i32, 2])).unwrap();
        let grid = g.constant(Tensor::from([[1i32, 2, 3], [4, 5, 6]])).unwrap();
        let first = g.assign(var, two).unwrap();
        let reshaped = g
            .op("Assign")
            .input(var)
            .input(grid)
            .attr("T", DType::Int32)
            .attr("validate_shape", false)
            .build_output()
            .unwrap();
        assert_eq!(g.shape(reshaped).to_known(), Some(vec![2, 3]));
        let sess = Session::new(&g);
        sess.run(&[], &[first], &[]).unwrap();
        assert_eq!(
            sess.run(&[], &[var], &[]).unwrap()[0],
            Tensor::from([1i32, 2])
        );
        sess.run(&[], &[reshaped], &[]).unwrap();
        assert_eq!(
            sess.run(&[], &[var], &[]).unwrap()[0],
            Tensor::from([[1i32, 2, 3], [4, 5, 6]])
        );
        // With a declared shape, validate_shape=false still lets the assignment through
        // at build time; validate_shape=true refuses it.
        let mut g = Graph::new();
        let two = g.constant(Tensor::from([1i32, 2])).unwrap();
        let v = g.variable(two, "v").unwrap();
        let three = g.constant(Tensor::from([1i32, 2, 3])).unwrap();
        assert!(g.assign(v.var, three).is_err());
        let loose = g
            .op("Assign")
            .input(v.var)
            .input(three)
            .attr("T", DType::Int32)
            .attr("validate_shape", false)
            .build_output()
            .unwrap();
        let out = Session::new(&g).run(&[], &[loose], &[]).unwrap();
        assert_eq!(out[0], Tensor::from([1i32, 2, 3]));
    }

    #[test]
    fn assign_add_runtime_shape_mismatch_is_an_error() {
        let mut g = Graph::new();
        let var = g
            .op("VariableV2")
            .name("u")
            .attr("dtype", DType::Float32)
            .attr("shape", PartialShape::new(vec![None]))
            .build_output()
            .unwrap();
        let x = g.placeholder(DType::Float32, [None], "x").unwrap();
        let set = g.assign(var, x).unwrap();
        let add = g.assign_add(var, x).unwrap();
        let sess = Session::new(&g);
        sess.run(&[(x, Tensor::from([1.0f32, 2.0]))], &[set], &[])
            .unwrap();
        let msg = sess
            .run(&[(x, Tensor::from([1.0f32]))], &[add], &[])
            .unwrap_err()
            .to_string();
        assert!(msg.contains("variable u") && msg.contains("[1]"), "{msg}");
        // The failed update left the value alone.
        assert_eq!(
            sess.run(&[], &[var], &[]).unwrap()[0],
            Tensor::from([1.0f32, 2.0])
        );
    }

    #[test]
    fn empty_graph_initializer_is_a_noop() {
        let mut g = Graph::new();
        let init = g.global_variables_initializer().unwrap();
        assert_eq!(g.node(init).op_type(), "NoOp");
        assert!(g.global_variables().is_empty());
        Session::new(&g).run(&[], &[], &[init]).unwrap();
    }
}

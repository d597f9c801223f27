//! Graph plumbing ops: Const, Placeholder, PlaceholderWithDefault, Identity, IdentityN,
//! EnsureShape, StopGradient, PreventGradient, NoOp.

use super::{kernel_fn, Cost, GradCtx, InferCtx, KernelBuildCtx, Op, Registry};
use crate::graph::{AttrValue, AttrsExt, Graph, NodeId, Output, TensorSpec};
use crate::tensor::{DType, PartialShape, Tensor};
use crate::{Error, Result};

use super::{InferResult, KernelResult};

fn infer_const(ctx: &InferCtx<'_>) -> InferResult {
    ctx.expect_inputs(0)?;
    let value = ctx.attrs().tensor("value")?;
    let dtype = ctx.attrs().dtype_or("dtype", value.dtype())?;
    if dtype != value.dtype() {
        return Err(format!(
            "attr dtype is {dtype} but the value is {}",
            value.dtype()
        ));
    }
    Ok(vec![TensorSpec::new(
        dtype,
        PartialShape::known(value.shape()),
    )])
}

fn const_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let value = ctx.attrs().tensor("value")?.clone();
    kernel_fn(move |k| {
        k.push_output(value.clone());
        Ok(())
    })
}

fn infer_placeholder(ctx: &InferCtx<'_>) -> InferResult {
    ctx.expect_inputs(0)?;
    Ok(vec![TensorSpec::new(
        ctx.attrs().dtype("dtype")?,
        ctx.attrs().shape_or_unknown("shape")?,
    )])
}

fn placeholder_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let spec = ctx.node.outputs()[0].clone();
    let name = ctx.node.name().to_string();
    kernel_fn(move |_| {
        Err(Error::FailedPrecondition(format!(
            "You must feed a value for placeholder tensor '{name}' with dtype {} and shape {}",
            spec.dtype, spec.shape
        )))
    })
}

fn infer_placeholder_with_default(ctx: &InferCtx<'_>) -> InferResult {
    ctx.expect_inputs(1)?;
    let dtype = ctx.attrs().dtype_or("dtype", ctx.dtype(0))?;
    if dtype != ctx.dtype(0) {
        return Err(format!(
            "attr dtype is {dtype} but the default is {}",
            ctx.dtype(0)
        ));
    }
    let shape = ctx.attrs().shape_or_unknown("shape")?;
    if let (Some(d), Some(_)) = (ctx.shape(0).to_known(), shape.rank()) {
        if !shape.is_compatible_with(&d) {
            return Err(format!(
                "default value of shape {} does not fit shape {shape}",
                ctx.shape(0)
            ));
        }
    }
    Ok(vec![TensorSpec::new(dtype, shape)])
}

/// Identity-like ops forward their input.
fn infer_identity(ctx: &InferCtx<'_>) -> InferResult {
    ctx.expect_inputs(1)?;
    ctx.check_t_attr(ctx.dtype(0))?;
    Ok(vec![ctx.input(0).clone()])
}

fn identity_kernel(_: &KernelBuildCtx<'_>) -> KernelResult {
    kernel_fn(|k| {
        let t = k.take_input(0)?;
        k.push_output(t);
        Ok(())
    })
}

fn identity_grad(ctx: &mut GradCtx<'_>) -> Result<Vec<Option<Output>>> {
    Ok(vec![Some(ctx.grad(0))])
}

/// `EnsureShape`: the input, whose shape must fit attr `shape` (checked here when known,
/// else when it runs).
fn infer_ensure_shape(ctx: &InferCtx<'_>) -> InferResult {
    ctx.expect_inputs(1)?;
    ctx.check_t_attr(ctx.dtype(0))?;
    let shape = ctx.attrs().shape_or_unknown("shape")?;
    let merged = ctx.shape(0).merge(&shape).map_err(|e| {
        format!(
            "the input's shape {} does not fit {shape}: {e}",
            ctx.shape(0)
        )
    })?;
    Ok(vec![TensorSpec::new(ctx.dtype(0), merged)])
}

fn ensure_shape_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let shape = ctx.attrs().shape_or_unknown("shape")?;
    let name = ctx.node.name().to_string();
    kernel_fn(move |k| {
        let t = k.take_input(0)?;
        if !shape.is_compatible_with(t.shape()) {
            return Err(Error::invalid(format!(
                "EnsureShape '{name}': shape of tensor {:?} is not compatible with expected \
                 shape {shape}",
                t.shape()
            )));
        }
        k.push_output(t);
        Ok(())
    })
}

/// `IdentityN`: every input forwarded (any dtypes, resource handles included).
fn infer_identity_n(ctx: &InferCtx<'_>) -> InferResult {
    if let Some(AttrValue::TypeList(types)) = ctx.attrs().value("T") {
        let got: Vec<DType> = ctx.inputs().iter().map(|s| s.dtype).collect();
        if *types != got {
            return Err(format!(
                "attr T is {types:?} but the inputs have dtypes {got:?}"
            ));
        }
    }
    Ok(ctx.inputs().to_vec())
}

fn identity_n_kernel(_: &KernelBuildCtx<'_>) -> KernelResult {
    kernel_fn(|k| {
        for i in 0..k.num_inputs() {
            let t = k.take_input(i)?;
            k.push_output(t);
        }
        Ok(())
    })
}

fn identity_n_grad(ctx: &mut GradCtx<'_>) -> Result<Vec<Option<Output>>> {
    Ok(ctx.grads.iter().map(|&g| Some(g)).collect())
}

fn infer_noop(_: &InferCtx<'_>) -> InferResult {
    Ok(Vec::new())
}

fn noop_kernel(_: &KernelBuildCtx<'_>) -> KernelResult {
    kernel_fn(|_| Ok(()))
}

pub(crate) fn register(r: &mut Registry) {
    r.add(
        Op::new("Const", infer_const, const_kernel)
            .cost(Cost::Cheap)
            .no_grad(),
    );
    r.add(
        Op::new("Placeholder", infer_placeholder, placeholder_kernel)
            .cost(Cost::Cheap)
            .no_grad()
            .defaults(|| vec![("shape", AttrValue::Shape(PartialShape::unknown()))]),
    );
    r.add(
        Op::new(
            "PlaceholderWithDefault",
            infer_placeholder_with_default,
            identity_kernel,
        )
        .cost(Cost::Cheap)
        .grad(identity_grad),
    );
    r.add(
        Op::new("Identity", infer_identity, identity_kernel)
            .cost(Cost::Cheap)
            .grad(identity_grad),
    );
    r.add(
        Op::new("IdentityN", infer_identity_n, identity_n_kernel)
            .cost(Cost::Cheap)
            .grad(identity_n_grad),
    );
    r.add(
        Op::new("StopGradient", infer_identity, identity_kernel)
            .cost(Cost::Cheap)
            .no_grad(),
    );
    r.add(
        Op::new("EnsureShape", infer_ensure_shape, ensure_shape_kernel)
            .cost(Cost::Cheap)
            .grad(identity_grad),
    );
    r.add(
        // No gradient is registered: differentiating through it is an error naming the
        // node, as TensorFlow's raises (attr `message` is accepted, not repeated).
        Op::new("PreventGradient", infer_identity, identity_kernel)
            .cost(Cost::Cheap)
            .defaults(|| vec![("message", AttrValue::from(""))]),
    );
    r.add(Op::new("NoOp", infer_noop, noop_kernel).cost(Cost::Cheap));
}

impl Graph {
    /// A constant (`tf.constant`).
    pub fn constant(&mut self, value: impl Into<Tensor>) -> Result<Output> {
        let value: Tensor = value.into();
        self.op("Const")
            .attr("dtype", value.dtype())
            .attr("value", value)
            .build_output()
    }

    /// A named constant.
    pub fn constant_named(&mut self, value: impl Into<Tensor>, name: &str) -> Result<Output> {
        let value: Tensor = value.into();
        self.op("Const")
            .name(name)
            .attr("dtype", value.dtype())
            .attr("value", value)
            .build_output()
    }

    /// A scalar constant of `dtype` holding `v` (converted as `Cast` would).
    pub fn scalar_like(&mut self, dtype: DType, v: f64) -> Result<Output> {
        let t = Tensor::scalar(v).cast(dtype)?;
        self.constant(t)
    }

    /// A value fed at run time (`tf.compat.v1.placeholder`); `shape` may have unknown dims.
    pub fn placeholder(
        &mut self,
        dtype: DType,
        shape: impl Into<PartialShape>,
        name: &str,
    ) -> Result<Output> {
        self.op("Placeholder")
            .name(name)
            .attr("dtype", dtype)
            .attr("shape", shape.into())
            .build_output()
    }

    /// A placeholder that yields `default` when not fed.
    pub fn placeholder_with_default(
        &mut self,
        default: Output,
        shape: impl Into<PartialShape>,
        name: &str,
    ) -> Result<Output> {
        let dtype = self.dtype(default);
        self.op("PlaceholderWithDefault")
            .name(name)
            .input(default)
            .attr("dtype", dtype)
            .attr("shape", shape.into())
            .build_output()
    }

    /// `tf.identity`.
    pub fn identity(&mut self, x: Output) -> Result<Output> {
        let t = self.dtype(x);
        self.op("Identity").input(x).attr("T", t).build_output()
    }

    /// Every value of `xs` forwarded by one node (`tf.identity_n`, op IdentityN).
    pub fn identity_n(&mut self, xs: &[Output]) -> Result<Vec<Output>> {
        let types: Vec<DType> = xs.iter().map(|&x| self.dtype(x)).collect();
        let id = self.op("IdentityN").inputs(xs).attr("T", types).build()?;
        Ok((0..xs.len()).map(|i| id.output(i)).collect())
    }

    /// `tf.stop_gradient`: the value of `x`, with no gradient flowing back.
    pub fn stop_gradient(&mut self, x: Output) -> Result<Output> {
        let t = self.dtype(x);
        self.op("StopGradient").input(x).attr("T", t).build_output()
    }

    /// `x`, whose shape must fit `shape` (`tf.ensure_shape`).
    pub fn ensure_shape(&mut self, x: Output, shape: impl Into<PartialShape>) -> Result<Output> {
        let t = self.dtype(x);
        self.op("EnsureShape")
            .input(x)
            .attr("T", t)
            .attr("shape", shape.into())
            .build_output()
    }

    /// `x`, through which differentiating is an error (`PreventGradient`; `message` says
    /// why, for TensorFlow's readers).
    pub fn prevent_gradient(&mut self, x: Output, message: &str) -> Result<Output> {
        let t = self.dtype(x);
        self.op("PreventGradient")
            .input(x)
            .attr("T", t)
            .attr("message", message)
            .build_output()
    }

    /// A node that does nothing but wait for `deps` (`tf.group`).
    pub fn group(&mut self, deps: &[NodeId], name: &str) -> Result<NodeId> {
        let mut b = self.op("NoOp").name(name);
        for &d in deps {
            b = b.control_input(d);
        }
        b.build()
    }
}

/// Gradient checks of this family's differentiable ops (run by `autodiff::tests`).
#[cfg(test)]
pub(crate) fn gradient_cases() -> Vec<crate::test_util::GradCase> {
    use crate::test_util::{test_input, GradCase};
    vec![
        GradCase::new("Identity", vec![test_input(&[2, 3], 1)], |g, x| {
            g.identity(x[0])
        }),
        GradCase::new(
            "IdentityN",
            vec![test_input(&[2, 3], 4), test_input(&[3], 5)],
            |g, x| {
                let ys = g.identity_n(x)?;
                g.add(ys[0], ys[1])
            },
        ),
        GradCase::new("EnsureShape", vec![test_input(&[2, 3], 3)], |g, x| {
            g.ensure_shape(x[0], [None, Some(3)])
        }),
        GradCase::new(
            "PlaceholderWithDefault",
            vec![test_input(&[3], 2)],
            |g, x| g.placeholder_with_default(x[0], [3], "pwd"),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use crate::{DType, Graph, PartialShape, Tensor};

    #[test]
    fn names_are_unique_and_scoped() {
        let mut g = Graph::new();
        let a = g.constant(1.0f32).unwrap();
        let b = g.constant(2.0f32).unwrap();
        assert_eq!(g.node(a.node).name(), "Const");
        assert_eq!(g.node(b.node).name(), "Const_1");
        let c = g.name_scope("dense", |g| g.constant(3.0f32)).unwrap();
        assert_eq!(g.node(c.node).name(), "dense/Const");
        let d = g.name_scope("dense", |g| g.constant(3.0f32)).unwrap();
        assert_eq!(g.node(d.node).name(), "dense_1/Const");
        let x = g
            .placeholder(DType::Float32, [None, Some(784)], "x")
            .unwrap();
        let x1 = g
            .placeholder(DType::Float32, PartialShape::unknown(), "x")
            .unwrap();
        assert_eq!(g.node(x1.node).name(), "x_1");
        assert_eq!(g.output_by_name("x:0").unwrap(), x);
        assert_eq!(g.output_by_name("x").unwrap(), x);
        assert!(g.output_by_name("x:1").is_err());
        assert!(g.output_by_name("nope").is_err());
        assert_eq!(g.shape(x).to_string(), "[?,784]");
        assert_eq!(g.shape(a).to_string(), "[]");
        let t = g.constant(Tensor::from([[1i32, 2], [3, 4]])).unwrap();
        assert_eq!(g.shape(t).to_known(), Some(vec![2, 2]));
    }

    #[test]
    fn unknown_op_is_an_error() {
        let mut g = Graph::new();
        let err = g.op("NoSuchOp").build().unwrap_err();
        assert!(err.to_string().contains("NoSuchOp"), "{err}");
    }
}

#[cfg(test)]
mod shape_and_gradient_guards {
    use crate::{DType, Graph, PartialShape, Session, Tensor};

    #[test]
    fn ensure_shape_checks_at_build_and_run_time() {
        let mut g = Graph::new();
        let x = g
            .placeholder(DType::Float32, PartialShape::unknown(), "x")
            .unwrap();
        let y = g.ensure_shape(x, [None, Some(2)]).unwrap();
        assert_eq!(g.shape(y).to_string(), "[?,2]");
        let s = Session::new(&g);
        let ok = s
            .run(&[(x, Tensor::from([[1f32, 2.0]]))], &[y], &[])
            .unwrap();
        assert_eq!(ok[0].to_vec::<f32>().unwrap(), vec![1.0, 2.0]);
        let e = s
            .run(&[(x, Tensor::from([1f32, 2.0, 3.0]))], &[y], &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("EnsureShape") && e.contains("[?,2]"), "{e}");
        let c = g.constant(Tensor::from([1f32, 2.0, 3.0])).unwrap();
        assert!(g.ensure_shape(c, [Some(2)]).is_err());
    }

    #[test]
    fn prevent_gradient_fails_differentiation_with_its_message() {
        let mut g = Graph::new();
        let x = g.constant(Tensor::from([1f32, 2.0])).unwrap();
        let y = g.prevent_gradient(x, "no second derivative here").unwrap();
        let name = g.node(y.node).name().to_string();
        let s = Session::new(&g);
        assert_eq!(s.run(&[], &[y], &[]).unwrap()[0], Tensor::from([1f32, 2.0]));
        let e = g.gradients(&[y], &[x]).unwrap_err().to_string();
        assert!(e.contains(&name) && e.contains("PreventGradient"), "{e}");
    }
}

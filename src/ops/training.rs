//! In-place variable updates of TensorFlow 1 optimizers: ApplyGradientDescent,
//! ApplyMomentum, ApplyAdam, ApplyRMSProp, ApplyAdagrad. Input 0 (and the slot inputs) are
//! variable references; hyper-parameters are scalar tensors; the output is the new value.
//! Their `ResourceApply*` twins (ResourceApplyGradientDescent, ...) update resource
//! variables (TensorFlow 2's): the same inputs with resource handles in place of the
//! references, and no output.

use super::{kernel_fn, Cost, InferCtx, KernelBuildCtx, KernelCtx, Op, Registry};
use crate::device::gemm::{gemm_store, Store};
use crate::device::parallel::MIN_PRODUCT_WORK;
use crate::graph::{AttrsExt, NodeId, TensorSpec};
use crate::kernel::fusion::{Fusion, FusionRule, FusionSite};
use crate::kernel::resource::Variable;
use crate::ops::{InferResult, KernelResult};
use crate::tensor::{DType, PartialShape, Tensor};
use crate::{with_dtype, Error, Result};
use std::borrow::Cow;
use std::sync::Arc;

/// Input layout of one update op: variables (reference inputs) come first; the gradient
/// sits at `grad`; every other input is a scalar hyper-parameter.
struct Layout {
    name: &'static str,
    /// The `ResourceApply*` twin's name.
    resource_name: &'static str,
    inputs: usize,
    refs: &'static [usize],
    grad: usize,
}

const GD: Layout = Layout {
    name: "ApplyGradientDescent",
    resource_name: "ResourceApplyGradientDescent",
    inputs: 3,
    refs: &[0],
    grad: 2,
};
const MOMENTUM: Layout = Layout {
    name: "ApplyMomentum",
    resource_name: "ResourceApplyMomentum",
    inputs: 5,
    refs: &[0, 1],
    grad: 3,
};
const ADAM: Layout = Layout {
    name: "ApplyAdam",
    resource_name: "ResourceApplyAdam",
    inputs: 10,
    refs: &[0, 1, 2],
    grad: 9,
};
const RMSPROP: Layout = Layout {
    name: "ApplyRMSProp",
    resource_name: "ResourceApplyRMSProp",
    inputs: 8,
    refs: &[0, 1, 2],
    grad: 7,
};
const ADAGRAD: Layout = Layout {
    name: "ApplyAdagrad",
    resource_name: "ResourceApplyAdagrad",
    inputs: 4,
    refs: &[0, 1],
    grad: 3,
};

/// Every input shares var's dtype (a float); slots and the gradient share var's shape;
/// hyper-parameters are scalars. With `resource`, the variables are resource handles
/// (their shapes known when they come straight from a `VarHandleOp`) and there is no
/// output.
fn infer_apply(ctx: &InferCtx<'_>, l: &Layout, resource: bool) -> InferResult {
    ctx.expect_inputs(l.inputs)?;
    let name = if resource { l.resource_name } else { l.name };
    let dt = ctx.dtype(l.grad);
    if !dt.is_float() {
        return Err(format!("{name} needs float variables, got {dt}"));
    }
    ctx.check_t_attr(dt)?;
    let mut var_shape = if resource {
        let var = ctx.input_node(0);
        match var.op_type() {
            "VarHandleOp" => var.attrs().shape_or_unknown("shape")?,
            _ => PartialShape::unknown(),
        }
    } else {
        ctx.shape(0).clone()
    };
    let first = var_shape.clone();
    for i in 0..l.inputs {
        let (s, is_var) = (ctx.shape(i), l.refs.contains(&i));
        let want = if resource && is_var {
            DType::Resource
        } else {
            dt
        };
        if ctx.dtype(i) != want {
            return Err(format!(
                "{name}: input {i} has dtype {} but must be {want}",
                ctx.dtype(i)
            ));
        }
        if is_var && resource {
            continue;
        }
        if is_var || i == l.grad {
            var_shape = var_shape
                .merge(s)
                .map_err(|_| format!("input {i} has shape {s} but var has shape {first}"))?;
        } else if s.rank().is_some_and(|r| r != 0) {
            return Err(format!("input {i} must be a scalar, got shape {s}"));
        }
    }
    Ok(if resource {
        Vec::new()
    } else {
        vec![TensorSpec::new(dt, var_shape)]
    })
}

/// Where an update op finds its variables: reference inputs resolved when the plan is
/// built (`Apply*`), or resource handles resolved when it runs (`ResourceApply*`).
enum Vars {
    Refs(Vec<Arc<Variable>>),
    Handles { count: usize, what: String },
}

impl Vars {
    /// The first `count` inputs' variables.
    fn new(ctx: &KernelBuildCtx<'_>, count: usize) -> std::result::Result<Self, String> {
        if ctx.input_dtype(0) == DType::Resource {
            let what = format!("{} '{}'", ctx.node.op_type(), ctx.node.name());
            return Ok(Vars::Handles { count, what });
        }
        (0..count)
            .map(|i| ctx.variable(i))
            .collect::<std::result::Result<_, _>>()
            .map(Vars::Refs)
    }

    /// The variables of this run.
    fn get(&self, k: &KernelCtx<'_>) -> Result<Cow<'_, [Arc<Variable>]>> {
        match self {
            Vars::Refs(vars) => Ok(Cow::Borrowed(vars)),
            Vars::Handles { count, what } => (0..*count)
                .map(|i| k.input(i)?.resource::<Variable>(what))
                .collect::<Result<Vec<_>>>()
                .map(Cow::Owned),
        }
    }

    /// Outputs the variable's new value (`Apply*`; the `ResourceApply*` ops output
    /// nothing).
    fn output(&self, k: &mut KernelCtx<'_>, value: Tensor) {
        if let Vars::Refs(_) = self {
            k.push_output(value);
        }
    }
}

fn scalar<T: crate::tensor::Element>(k: &KernelCtx<'_>, i: usize) -> Result<T> {
    k.input(i)?.scalar_value::<T>()
}

/// Reads the gradient and checks it against the variable's shape.
/// The gradient input, checked against the variable's shape.
fn grad_slice<'k, T: crate::tensor::Element>(
    k: &'k KernelCtx<'_>,
    i: usize,
    var: &Variable,
) -> Result<&'k [T]> {
    let g = k.input(i)?;
    let v = var.read()?;
    if g.shape() != v.shape() {
        return Err(Error::invalid(format!(
            "var and grad do not have the same shape: {:?} {:?}",
            v.shape(),
            g.shape()
        )));
    }
    g.as_slice::<T>()
}

/// Updates a slot variable elementwise from the gradient; returns its new value, which
/// the caller drops before the next step so the slot is updated in place again.
fn update_slot<T: crate::tensor::Element>(
    slot: &Variable,
    grad: &[T],
    f: impl Fn(T, T) -> T,
) -> Result<Tensor> {
    slot.update(|t| {
        if t.len() != grad.len() {
            return Err(Error::invalid(format!(
                "slot {} has shape {:?}, which does not match the gradient",
                slot.name(),
                t.shape()
            )));
        }
        t.modify::<T>(|v| v.iter_mut().zip(grad).for_each(|(s, &g)| *s = f(*s, g)))
    })
}

/// Updates the variable in place: `var[i] = f(var[i], a[i], b[i])`.
fn update_var<T: crate::tensor::Element>(
    var: &Variable,
    a: &[T],
    b: &[T],
    f: impl Fn(T, T, T) -> T,
) -> Result<Tensor> {
    var.update(|t| {
        t.modify::<T>(|v| {
            v.iter_mut()
                .zip(a)
                .zip(b)
                .for_each(|((x, &p), &q)| *x = f(*x, p, q))
        })
    })
}

fn gd_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let vars = Vars::new(ctx, 1)?;
    with_dtype!(float, ctx.input_dtype(1), T => kernel_fn(move |k| {
        let var = &vars.get(k)?[0];
        let alpha: T = scalar(k, 1)?;
        let grad = grad_slice::<T>(k, 2, var)?;
        let out = update_var(var, grad, grad, |x: T, g, _| x - alpha * g)?;
        vars.output(k, out);
        Ok(())
    }))
}

/// Op name of the fused MatMul + ApplyGradientDescent step.
pub(crate) const PRODUCT_GRADIENT_DESCENT: &str = "_FusedMatMulApplyGradientDescent";

/// Plan-time fusion rules whose kernels are here (run by `passes::Fuse`).
pub(crate) const FUSION_RULES: &[FusionRule] = &[FusionRule {
    root: &["ApplyGradientDescent"],
    op: PRODUCT_GRADIENT_DESCENT,
    fuse: fuse_product_gradient_descent,
}];

/// `ApplyGradientDescent(var, alpha, MatMul(a, b))` becomes one product added into the
/// variable, `var += -alpha·a·b`. A dense layer's weight gradient is such a product;
/// computing it in place spares its buffer (zero-filled, written, read back) and the
/// separate pass over the variable.
fn fuse_product_gradient_descent(
    site: &dyn FusionSite,
    n: NodeId,
) -> std::result::Result<Option<Fusion>, String> {
    let graph = site.graph();
    let node = graph.node(n);
    let grad = node.inputs()[2];
    let Some(product) = site.sole_source(grad, "MatMul", n) else {
        return Ok(None);
    };
    let ctx = KernelBuildCtx {
        node,
        id: n,
        graph,
        resources: site.resources(),
        device: site.device(),
        functions: None,
    };
    let kernel = product_gradient_descent_kernel(&ctx, product)?;
    let alpha = node.inputs()[1];
    let (a, b) = (product.inputs()[0], product.inputs()[1]);
    Ok(Some(Fusion {
        absorbed: vec![grad.node],
        also_produces: Vec::new(),
        inputs: vec![None, Some(alpha), Some(a), Some(b)],
        operands: [2, 3],
        op: PRODUCT_GRADIENT_DESCENT,
        kernel: Arc::from(kernel),
    }))
}

/// ApplyGradientDescent of a gradient that is a MatMul read by nothing else, computed as
/// one product added into the variable: `var += (-alpha) · op(a) · op(b)`. The plan builds
/// it in place of the pair (see [`FUSION_RULES`]), sparing the gradient's buffer and a
/// pass over the variable. Inputs: var (reference), alpha, then the MatMul's a and b;
/// `update` is the ApplyGradientDescent node, `product` the MatMul.
pub(crate) fn product_gradient_descent_kernel(
    update: &KernelBuildCtx<'_>,
    product: &crate::graph::Node,
) -> KernelResult {
    let var = update.variable(0)?;
    let ta = product.attrs().bool_or("transpose_a", false)?;
    let tb = product.attrs().bool_or("transpose_b", false)?;
    let product_name = product.name().to_string();
    with_dtype!(float, update.input_dtype(1), T => kernel_fn(move |k| {
        let alpha: T = scalar(k, 1)?;
        let (a, b) = (k.input(2)?, k.input(3)?);
        let in_product = |e: Error| Error::invalid(format!("in its gradient {product_name}: {e}"));
        let dims = super::linalg::matmul_dims(a.shape(), b.shape(), ta, tb).map_err(in_product)?;
        let (a, b) = (a.as_slice::<T>()?, b.as_slice::<T>()?);
        // Cores first, then the variable's lock: never wait for cores while holding it.
        let threads = k.threads_for_work(dims.work(), MIN_PRODUCT_WORK);
        let new_value = var.update(|t| {
            if t.shape() != [dims.m, dims.n] {
                return Err(Error::invalid(format!(
                    "var and grad do not have the same shape: {:?} [{}, {}]",
                    t.shape(),
                    dims.m,
                    dims.n
                )));
            }
            t.modify::<T>(|v| gemm_store(dims, a, b, v, Store::AddScaled(-alpha), threads))
        })?;
        k.push_output(new_value);
        Ok(())
    }))
}

fn momentum_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let vars = Vars::new(ctx, 2)?;
    let nesterov = ctx.attrs().bool_or("use_nesterov", false)?;
    with_dtype!(float, ctx.input_dtype(2), T => kernel_fn(move |k| {
        let held = vars.get(k)?;
        let (var, accum) = (&held[0], &held[1]);
        let lr: T = scalar(k, 2)?;
        let momentum: T = scalar(k, 4)?;
        let grad = grad_slice::<T>(k, 3, var)?;
        let acc_t = update_slot(accum, grad, |a, g| a * momentum + g)?;
        let acc = acc_t.as_slice::<T>()?;
        let out = if nesterov {
            update_var(var, grad, acc, |x: T, g, a| x - (g * lr + a * momentum * lr))?
        } else {
            update_var(var, grad, acc, |x: T, _, a| x - a * lr)?
        };
        vars.output(k, out);
        Ok(())
    }))
}

fn adam_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let vars = Vars::new(ctx, 3)?;
    let nesterov = ctx.attrs().bool_or("use_nesterov", false)?;
    with_dtype!(float, ctx.input_dtype(3), T => kernel_fn(move |k| {
        let held = vars.get(k)?;
        let (var, m, v) = (&held[0], &held[1], &held[2]);
        let (b1p, b2p, lr): (T, T, T) = (scalar(k, 3)?, scalar(k, 4)?, scalar(k, 5)?);
        let (b1, b2, eps): (T, T, T) = (scalar(k, 6)?, scalar(k, 7)?, scalar(k, 8)?);
        let one: T = 1.0;
        let grad = grad_slice::<T>(k, 9, var)?;
        let alpha = lr * (one - b2p).sqrt() / (one - b1p);
        let m_t = update_slot(m, grad, |m, g| m + (g - m) * (one - b1))?;
        let v_t = update_slot(v, grad, |v, g| v + (g * g - v) * (one - b2))?;
        let (m_new, v_new) = (m_t.as_slice::<T>()?, v_t.as_slice::<T>()?);
        let out = if nesterov {
            // TensorFlow's Nesterov Adam uses m·β1 + g·(1-β1) for the step.
            let mg: Vec<T> = m_new.iter().zip(grad).map(|(&m, &g)| m * b1 + g * (one - b1)).collect();
            update_var(var, &mg, v_new, |x: T, m, v| x - m * alpha / (v.sqrt() + eps))?
        } else {
            update_var(var, m_new, v_new, |x: T, m, v| x - m * alpha / (v.sqrt() + eps))?
        };
        vars.output(k, out);
        Ok(())
    }))
}

fn rmsprop_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let vars = Vars::new(ctx, 3)?;
    with_dtype!(float, ctx.input_dtype(3), T => kernel_fn(move |k| {
        let held = vars.get(k)?;
        let (var, ms, mom) = (&held[0], &held[1], &held[2]);
        let lr: T = scalar(k, 3)?;
        let rho: T = scalar(k, 4)?;
        let momentum: T = scalar(k, 5)?;
        let eps: T = scalar(k, 6)?;
        let grad = grad_slice::<T>(k, 7, var)?;
        let one: T = 1.0;
        let ms_t = update_slot(ms, grad, |s, g| s + (g * g - s) * (one - rho))?;
        let ms_new = ms_t.as_slice::<T>()?;
        let steps: Vec<T> = grad.iter().zip(ms_new).map(|(&g, &s)| lr * g / (s + eps).sqrt()).collect();
        let mom_t = update_slot(mom, &steps, |m, step| m * momentum + step)?;
        let mom_new = mom_t.as_slice::<T>()?;
        let out = update_var(var, mom_new, mom_new, |x: T, m, _| x - m)?;
        vars.output(k, out);
        Ok(())
    }))
}

fn adagrad_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let vars = Vars::new(ctx, 2)?;
    let update_slots = ctx.attrs().bool_or("update_slots", true)?;
    with_dtype!(float, ctx.input_dtype(2), T => kernel_fn(move |k| {
        let held = vars.get(k)?;
        let (var, accum) = (&held[0], &held[1]);
        let lr: T = scalar(k, 2)?;
        let grad = grad_slice::<T>(k, 3, var)?;
        let acc_t = if update_slots {
            update_slot(accum, grad, |a, g| a + g * g)?
        } else {
            accum.read()?
        };
        let acc = acc_t.as_slice::<T>()?;
        let out = update_var(var, grad, acc, |x: T, g, a| x - lr * g / a.sqrt())?;
        vars.output(k, out);
        Ok(())
    }))
}

fn locking_defaults() -> Vec<(&'static str, crate::graph::AttrValue)> {
    vec![("use_locking", false.into())]
}

fn nesterov_defaults() -> Vec<(&'static str, crate::graph::AttrValue)> {
    vec![
        ("use_locking", false.into()),
        ("use_nesterov", false.into()),
    ]
}

fn adagrad_defaults() -> Vec<(&'static str, crate::graph::AttrValue)> {
    vec![("use_locking", false.into()), ("update_slots", true.into())]
}

/// One update op: its layout, its shape inference for references and for resource
/// handles, its kernel (which serves both) and its default attrs.
type UpdateOp = (
    &'static Layout,
    [super::InferFn; 2],
    super::KernelBuildFn,
    fn() -> Vec<(&'static str, crate::graph::AttrValue)>,
);

pub(crate) fn register(r: &mut Registry) {
    let ops: [UpdateOp; 5] = [
        (
            &GD,
            [
                |c| infer_apply(c, &GD, false),
                |c| infer_apply(c, &GD, true),
            ],
            gd_kernel,
            locking_defaults,
        ),
        (
            &MOMENTUM,
            [
                |c| infer_apply(c, &MOMENTUM, false),
                |c| infer_apply(c, &MOMENTUM, true),
            ],
            momentum_kernel,
            nesterov_defaults,
        ),
        (
            &ADAM,
            [
                |c| infer_apply(c, &ADAM, false),
                |c| infer_apply(c, &ADAM, true),
            ],
            adam_kernel,
            nesterov_defaults,
        ),
        (
            &RMSPROP,
            [
                |c| infer_apply(c, &RMSPROP, false),
                |c| infer_apply(c, &RMSPROP, true),
            ],
            rmsprop_kernel,
            locking_defaults,
        ),
        (
            &ADAGRAD,
            [
                |c| infer_apply(c, &ADAGRAD, false),
                |c| infer_apply(c, &ADAGRAD, true),
            ],
            adagrad_kernel,
            adagrad_defaults,
        ),
    ];
    for (l, [infer, resource_infer], kernel, defaults) in ops {
        let op = |name, infer| {
            Op::new(name, infer, kernel)
                .stateful()
                .no_grad()
                .cost(Cost::Linear)
                .defaults(defaults)
        };
        r.add(op(l.name, infer).ref_inputs(l.refs));
        r.add(op(l.resource_name, resource_infer));
    }
}

#[cfg(test)]
mod tests {
    use crate::train::{Adagrad, Adam, GradientDescent, Momentum, Optimizer, RMSProp};
    use crate::{Graph, Session, Tensor};

    /// Runs `steps` updates of `opt` on w = [1, -2] with the constant gradient [0.5, -1]
    /// (fed through `apply_gradients`) and returns w; checks that a resource variable
    /// (updated by the `ResourceApply*` ops) ends at the same values.
    fn run(opt: &mut (impl Optimizer + Clone), steps: usize) -> Vec<f64> {
        let reference = run_on(&mut opt.clone(), steps, false);
        assert_eq!(run_on(opt, steps, true), reference);
        reference
    }

    fn run_on(opt: &mut dyn Optimizer, steps: usize, resource: bool) -> Vec<f64> {
        let mut g = Graph::new();
        let init = g.constant(Tensor::from([1.0f64, -2.0])).unwrap();
        let w = if resource {
            g.resource_variable(init, "w").unwrap()
        } else {
            g.variable(init, "w").unwrap()
        };
        let grad = g.constant(Tensor::from([0.5f64, -1.0])).unwrap();
        let step = g.get_or_create_global_step().unwrap();
        let train = opt
            .apply_gradients(&mut g, &[(Some(grad), w)], Some(&step))
            .unwrap();
        let init = g.global_variables_initializer().unwrap();
        let sess = Session::new(&g);
        sess.run(&[], &[], &[init]).unwrap();
        for _ in 0..steps {
            sess.run(&[], &[], &[train]).unwrap();
        }
        let out = sess.run(&[], &[w.read, step.read], &[]).unwrap();
        assert_eq!(out[1].scalar_value::<i64>().unwrap(), steps as i64);
        out[0].to_vec::<f64>().unwrap()
    }

    fn close(a: &[f64], b: &[f64]) {
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() < 1e-12, "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn gradient_descent_and_momentum_follow_tensorflow_formulas() {
        close(
            &run(&mut GradientDescent::new(0.1), 2),
            &[1.0 - 0.1, -2.0 + 0.2],
        );
        // accum_1 = g, accum_2 = 0.9 g + g = 1.9 g; w -= 0.1 (g + 1.9 g) = 0.29 g
        close(
            &run(&mut Momentum::new(0.1, 0.9), 2),
            &[1.0 - 0.29 * 0.5, -2.0 + 0.29],
        );
        // Nesterov: w -= lr g + lr m accum: step1 0.1(1 + 0.9) g, step2 0.1(1 + 0.9·1.9) g
        let mut n = Momentum::new(0.1, 0.9);
        n.nesterov = true;
        let total = 0.1 * (1.0 + 0.9) + 0.1 * (1.0 + 0.9 * 1.9);
        close(&run(&mut n, 2), &[1.0 - total * 0.5, -2.0 + total]);
    }

    #[test]
    fn adam_rmsprop_adagrad_follow_tensorflow_formulas() {
        // Adam after one step: m = 0.1 g, v = 0.001 g², lr_t = lr·√(1-0.999)/(1-0.9),
        // w -= lr_t · m / (√v + eps).
        let (lr, eps) = (0.01, 1e-8);
        let step = |g: f64| {
            let (m, v) = (0.1 * g, 0.001 * g * g);
            lr * (1.0f64 - 0.999).sqrt() / (1.0 - 0.9) * m / (v.sqrt() + eps)
        };
        close(
            &run(&mut Adam::new(lr), 1),
            &[1.0 - step(0.5), -2.0 - step(-1.0)],
        );
        // RMSProp, ms starts at 1: ms = 0.9 + 0.1 g²; w -= lr g / √(ms + eps)
        let rms = |g: f64| 0.01 * g / (0.9 + 0.1 * g * g + 1e-10f64).sqrt();
        close(
            &run(&mut RMSProp::new(0.01), 1),
            &[1.0 - rms(0.5), -2.0 - rms(-1.0)],
        );
        // Adagrad, accum starts at 0.1: accum = 0.1 + g²; w -= lr g / √accum
        let ada = |g: f64| 0.1 * g / (0.1 + g * g).sqrt();
        close(
            &run(&mut Adagrad::new(0.1), 1),
            &[1.0 - ada(0.5), -2.0 - ada(-1.0)],
        );
    }

    #[test]
    fn resource_updates_are_the_resource_twins_and_output_nothing() {
        let mut g = Graph::new();
        let init = g.constant(Tensor::from([1.0f32])).unwrap();
        let w = g.resource_variable(init, "w").unwrap();
        let grad = g.constant(Tensor::from([1.0f32])).unwrap();
        let train = Momentum::new(0.1, 0.9)
            .apply_gradients(&mut g, &[(Some(grad), w)], None)
            .unwrap();
        let update = g.node(g.node(train).control_inputs()[0]);
        assert_eq!(update.op_type(), "ResourceApplyMomentum");
        assert!(update.outputs().is_empty());
        // The slot is a resource variable too.
        let accum = g.node(update.inputs()[1].node);
        assert_eq!(
            (accum.op_type(), accum.name()),
            ("VarHandleOp", "w/Momentum")
        );
        let wrong = g.constant(Tensor::from([1.0f32, 2.0])).unwrap();
        let e = GradientDescent::new(0.1)
            .apply_gradients(&mut g, &[(Some(wrong), w)], None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("ResourceApplyGradientDescent") && e.contains("shape"),
            "{e}"
        );
    }

    #[test]
    fn update_before_initialization_names_the_variable() {
        let mut g = Graph::new();
        let init = g.constant(Tensor::from([1.0f32])).unwrap();
        let w = g.variable(init, "weights").unwrap();
        let grad = g.constant(Tensor::from([1.0f32])).unwrap();
        let train = GradientDescent::new(0.1)
            .apply_gradients(&mut g, &[(Some(grad), w)], None)
            .unwrap();
        let err = Session::new(&g)
            .run(&[], &[], &[train])
            .unwrap_err()
            .to_string();
        assert!(err.contains("weights"), "{err}");
    }

    #[test]
    fn grad_shape_mismatch_is_a_build_error() {
        let mut g = Graph::new();
        let init = g.constant(Tensor::from([1.0f32, 2.0])).unwrap();
        let w = g.variable(init, "w").unwrap();
        let grad = g.constant(Tensor::from([1.0f32, 2.0, 3.0])).unwrap();
        let err = GradientDescent::new(0.1)
            .apply_gradients(&mut g, &[(Some(grad), w)], None)
            .unwrap_err();
        assert!(err.to_string().contains("ApplyGradientDescent"), "{err}");
    }
}

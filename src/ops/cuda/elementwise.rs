//! Elementwise GPU kernels: unary, binary with NumPy broadcasting (arithmetic,
//! comparisons, activation gradients), select, cast, tile/broadcast, fill. Each op is a row
//! of a table (op → C expression); the kernel is the family's template in
//! `elementwise.cu` with the expression and element types filled in.

use super::{c_type, gpu, grid, launch, section, source, unsupported, Dims8, FLOATS, GPU};
use crate::device::cpu::{broadcast_shape, broadcast_strides};
use crate::device::cuda::{cuda_error, Gpu};
use crate::kernel::{kernel_fn, KernelBuildCtx, KernelDef, KernelResult};
use crate::ops::Registry;
use crate::tensor::{DType, Tensor};
use crate::{Error, Result};
use cudarc::driver::CudaFunction;
use std::sync::Arc;

const TEMPLATE: &str = include_str!("elementwise.cu");

const BOOL: &[DType] = &[DType::Bool];

/// Unary ops: (op, C expression of `x`, dtypes). The output has the input's dtype.
const UNARY: &[(&str, &str, &[DType])] = &[
    ("Neg", "-x", FLOATS),
    ("Abs", "fabs(x)", FLOATS),
    ("Sign", "(x > ($TA)0) - (x < ($TA)0)", FLOATS),
    ("Square", "x * x", FLOATS),
    ("Exp", "exp(x)", FLOATS),
    ("Log", "log(x)", FLOATS),
    ("Log1p", "log1p(x)", FLOATS),
    ("Sqrt", "sqrt(x)", FLOATS),
    ("Rsqrt", "($TA)1 / sqrt(x)", FLOATS),
    ("Reciprocal", "($TA)1 / x", FLOATS),
    ("Tanh", "tanh(x)", FLOATS),
    ("Sigmoid", "($TA)1 / (($TA)1 + exp(-x))", FLOATS),
    ("Relu", "x > ($TA)0 ? x : ($TA)0", FLOATS),
    (
        "Relu6",
        "x > ($TA)0 ? (x < ($TA)6 ? x : ($TA)6) : ($TA)0",
        FLOATS,
    ),
    ("Elu", "x > ($TA)0 ? x : expm1(x)", FLOATS),
    (
        "Softplus",
        "x > ($TA)20 ? x : (x < ($TA)-20 ? exp(x) : log1p(exp(x)))",
        FLOATS,
    ),
    ("LogicalNot", "!x", BOOL),
];

/// Binary ops: (op, C expression of `x` and `y`, dtypes, whether the output is bool).
const BINARY: &[(&str, &str, &[DType], bool)] = &[
    ("AddV2", "x + y", FLOATS, false),
    ("Sub", "x - y", FLOATS, false),
    ("Mul", "x * y", FLOATS, false),
    ("RealDiv", "x / y", FLOATS, false),
    ("FloorDiv", "floor(x / y)", FLOATS, false),
    (
        "FloorMod",
        "fmod(x, y) + ((fmod(x, y) != ($TA)0 && ((fmod(x, y) < ($TA)0) != (y < ($TA)0))) ? y : ($TA)0)",
        FLOATS,
        false,
    ),
    ("Pow", "pow(x, y)", FLOATS, false),
    ("Maximum", "x > y ? x : y", FLOATS, false),
    ("Minimum", "x < y ? x : y", FLOATS, false),
    // Activation gradients: x is the incoming gradient (or the activation's output for
    // TanhGrad and friends, whose first input is y), y the second input.
    ("ReluGrad", "y > ($TA)0 ? x : ($TA)0", FLOATS, false),
    ("Relu6Grad", "(y > ($TA)0 && y < ($TA)6) ? x : ($TA)0", FLOATS, false),
    ("EluGrad", "y < ($TA)0 ? x * (y + ($TA)1) : x", FLOATS, false),
    ("SoftplusGrad", "x / (($TA)1 + exp(-y))", FLOATS, false),
    ("TanhGrad", "y * (($TA)1 - x * x)", FLOATS, false),
    ("SigmoidGrad", "y * x * (($TA)1 - x)", FLOATS, false),
    ("SqrtGrad", "y * ($TA)0.5 / x", FLOATS, false),
    ("RsqrtGrad", "($TA)-0.5 * y * x * x * x", FLOATS, false),
    ("Equal", "x == y", FLOATS, true),
    ("NotEqual", "x != y", FLOATS, true),
    ("Less", "x < y", FLOATS, true),
    ("LessEqual", "x <= y", FLOATS, true),
    ("Greater", "x > y", FLOATS, true),
    ("GreaterEqual", "x >= y", FLOATS, true),
    ("LogicalAnd", "x && y", BOOL, true),
    ("LogicalOr", "x || y", BOOL, true),
];

/// Every dtype a cast may produce on the GPU.
const ALL: &[DType] = super::ELEMENTS;
/// Sources of GPU casts (integers stay on the CPU).
const CAST_FROM: &[DType] = &[DType::Float32, DType::Float64, DType::Bool];

pub(super) fn register(r: &mut Registry) {
    for &(op, _, dtypes) in UNARY {
        r.kernel(KernelDef::new(op, GPU, unary_kernel).type_constraint(dtypes));
    }
    for &(op, _, dtypes, _) in BINARY {
        r.kernel(KernelDef::new(op, GPU, binary_kernel).type_constraint(dtypes));
    }
    r.kernel(KernelDef::new("BiasAdd", GPU, bias_add_kernel).type_constraint(FLOATS));
    r.kernel(KernelDef::new("AddN", GPU, add_n_kernel).type_constraint(FLOATS));
    r.kernel(KernelDef::new("Select", GPU, select_kernel).type_constraint(FLOATS));
    r.kernel(KernelDef::new("SelectV2", GPU, select_kernel).type_constraint(FLOATS));
    r.kernel(KernelDef::new("Cast", GPU, cast_kernel).type_constraint(CAST_FROM));
    r.kernel(
        KernelDef::new("Tile", GPU, tile_kernel)
            .type_constraint(FLOATS)
            .host_memory(&[1]),
    );
    r.kernel(
        KernelDef::new("Fill", GPU, fill_kernel)
            .type_constraint(FLOATS)
            .host_memory(&[0]),
    );
    r.kernel(KernelDef::new("ZerosLike", GPU, zeros_like_kernel).type_constraint(FLOATS));
    r.kernel(KernelDef::new("OnesLike", GPU, ones_like_kernel).type_constraint(FLOATS));
}

/// The source of one generated kernel: `family`'s template with `expr` for types `ta`
/// (inputs) and `to` (output).
fn generated(family: &str, expr: &str, ta: DType, to: DType) -> String {
    source(
        section(TEMPLATE, family),
        &[("EXPR", expr), ("TA", c_type(ta)), ("TO", c_type(to))],
    )
}

/// The compiled kernel of `family` for `op` (cached per op, family and dtypes).
fn function(
    gpu: &Gpu,
    family: &str,
    op: &str,
    expr: &str,
    ta: DType,
    to: DType,
) -> std::result::Result<CudaFunction, String> {
    let key = format!("{family}/{op}/{ta}/{to}");
    gpu.function(&key, "k", || generated(family, expr, ta, to))
        .map_err(|e| e.to_string())
}

fn table_entry<T: Copy>(
    table: &[T],
    name: impl Fn(&T) -> &str,
    ctx: &KernelBuildCtx<'_>,
) -> std::result::Result<T, String> {
    let op = ctx.node.op().kernel_op();
    table
        .iter()
        .find(|e| name(e) == op)
        .copied()
        .ok_or_else(|| format!("no GPU kernel of {op}"))
}

fn unary_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let (op, expr, dtypes) = table_entry(UNARY, |e| e.0, ctx)?;
    let dt = ctx.input_dtype(0);
    if !dtypes.contains(&dt) {
        return Err(unsupported(op, dt));
    }
    let gpu = gpu(ctx)?;
    let f = function(&gpu, "unary", op, expr, dt, dt)?;
    kernel_fn(move |k| {
        let x = k.input(0)?;
        let out = map(&gpu, &f, x, dt)?;
        k.push_output(out);
        Ok(())
    })
}

/// Runs a unary-template kernel over `x` into a new tensor of `to`.
fn map(gpu: &Arc<Gpu>, f: &CudaFunction, x: &Tensor, to: DType) -> Result<Tensor> {
    gpu.bind()?;
    let (out, po) = gpu.alloc(to, x.shape())?;
    let n = x.len();
    if n > 0 {
        let px = gpu.address(x)?;
        let n64 = n as i64;
        launch!(gpu, f, grid(n), "unary kernel", [&px, &po, &n64]);
    }
    Ok(out)
}

fn binary_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let (op, expr, dtypes, to_bool) = table_entry(BINARY, |e| e.0, ctx)?;
    let dt = ctx.input_dtype(0);
    if !dtypes.contains(&dt) {
        return Err(unsupported(op, dt));
    }
    let to = if to_bool { DType::Bool } else { dt };
    let gpu = gpu(ctx)?;
    let f = function(&gpu, "binary", op, expr, dt, to)?;
    kernel_fn(move |k| {
        let (a, b) = (k.input(0)?, k.input(1)?);
        let out_shape = broadcast_shape(a.shape(), b.shape())?;
        let out = zip(&gpu, &f, a, a.shape(), b, b.shape(), &out_shape, to)?;
        k.push_output(out);
        Ok(())
    })
}

/// The rank and dims the kernels index by, and each operand's strides: rank 0 (no index
/// arithmetic) when every operand has the output's shape.
fn broadcast_args(shapes: &[&[usize]], out: &[usize]) -> Result<(i32, Dims8, Vec<Dims8>)> {
    if shapes.iter().all(|s| *s == out) {
        return Ok((0, Dims8::default(), vec![Dims8::default(); shapes.len()]));
    }
    let strides = shapes
        .iter()
        .map(|s| Dims8::new(&broadcast_strides(s, out)))
        .collect::<Result<Vec<_>>>()?;
    Ok((out.len() as i32, Dims8::new(out)?, strides))
}

/// Runs a binary-template kernel: `a` read as `a_shape` and `b` as `b_shape` (each
/// broadcast to `out_shape`), into a new tensor of `to`.
#[allow(clippy::too_many_arguments)]
fn zip(
    gpu: &Arc<Gpu>,
    f: &CudaFunction,
    a: &Tensor,
    a_shape: &[usize],
    b: &Tensor,
    b_shape: &[usize],
    out_shape: &[usize],
    to: DType,
) -> Result<Tensor> {
    gpu.bind()?;
    let (out, po) = gpu.alloc(to, out_shape)?;
    let n = out.len();
    if n > 0 {
        let (pa, pb) = (gpu.address(a)?, gpu.address(b)?);
        let (rank, dims, s) = broadcast_args(&[a_shape, b_shape], out_shape)?;
        let n64 = n as i64;
        launch!(
            gpu,
            f,
            grid(n),
            "binary kernel",
            [&pa, &pb, &po, &n64, &rank, &dims, &s[0], &s[1]]
        );
    }
    Ok(out)
}

/// BiasAdd: the bias broadcast along the channel axis (last, or 1 for `NCHW`).
fn bias_add_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let dt = ctx.input_dtype(0);
    let channels_first = super::reduce::channels_first(ctx)?;
    let gpu = gpu(ctx)?;
    let f = function(&gpu, "binary", "AddV2", "x + y", dt, dt)?;
    kernel_fn(move |k| {
        let (value, bias) = (k.input(0)?, k.input(1)?);
        let shape = value.shape();
        let axis = super::reduce::channel_axis(shape.len(), channels_first)?;
        if bias.shape() != [shape[axis]] {
            return Err(Error::invalid(format!(
                "Must provide as many biases as the channel dimension of the input tensor: \
                 {:?} vs. {shape:?}",
                bias.shape()
            )));
        }
        let mut bias_shape = vec![1; shape.len()];
        bias_shape[axis] = shape[axis];
        let out = zip(&gpu, &f, value, shape, bias, &bias_shape, shape, dt)?;
        k.push_output(out);
        Ok(())
    })
}

/// AddN: a chain of additions (the inputs all have one shape).
fn add_n_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let dt = ctx.input_dtype(0);
    let gpu = gpu(ctx)?;
    let f = function(&gpu, "binary", "AddV2", "x + y", dt, dt)?;
    kernel_fn(move |k| {
        let mut acc = k.input(0)?.clone();
        for i in 1..k.num_inputs() {
            let x = k.input(i)?;
            if x.shape() != acc.shape() {
                return Err(Error::invalid(format!(
                    "AddN needs inputs of one shape: {:?} vs. {:?}",
                    acc.shape(),
                    x.shape()
                )));
            }
            let shape = acc.shape().to_vec();
            acc = zip(&gpu, &f, &acc, &shape, x, &shape, &shape, dt)?;
        }
        k.push_output(acc);
        Ok(())
    })
}

/// Select (a vector condition picks rows) and SelectV2 (the condition broadcasts).
fn select_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let v1 = ctx.node.op().kernel_op() == "Select";
    let dt = ctx.input_dtype(1);
    let gpu = gpu(ctx)?;
    let key = format!("select/{dt}");
    let f = gpu
        .function(&key, "k", || generated("select", "c ? x : y", dt, dt))
        .map_err(|e| e.to_string())?;
    kernel_fn(move |k| {
        let (c, a, b) = (k.input(0)?, k.input(1)?, k.input(2)?);
        let mut c_shape = c.shape().to_vec();
        if v1 && c_shape.len() == 1 && a.rank() > 1 {
            // Select's vector condition picks whole rows.
            c_shape.resize(a.rank(), 1);
        }
        let out_shape = broadcast_shape(&broadcast_shape(&c_shape, a.shape())?, b.shape())?;
        gpu.bind()?;
        let (out, po) = gpu.alloc(dt, &out_shape)?;
        let n = out.len();
        if n > 0 {
            let (pc, pa, pb) = (gpu.address(c)?, gpu.address(a)?, gpu.address(b)?);
            let (rank, dims, s) = broadcast_args(&[&c_shape, a.shape(), b.shape()], &out_shape)?;
            let n64 = n as i64;
            launch!(
                gpu,
                f,
                grid(n),
                "select kernel",
                [&pc, &pa, &pb, &po, &n64, &rank, &dims, &s[0], &s[1], &s[2]]
            );
        }
        k.push_output(out);
        Ok(())
    })
}

fn cast_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let (from, to) = (ctx.input_dtype(0), ctx.output_dtype(0));
    if !CAST_FROM.contains(&from) || !ALL.contains(&to) {
        return Err(format!("no GPU cast from {from} to {to}"));
    }
    let gpu = gpu(ctx)?;
    let f = function(&gpu, "unary", "Cast", "x", from, to)?;
    kernel_fn(move |k| {
        let x = k.input(0)?;
        let out = map(&gpu, &f, x, to)?;
        k.push_output(out);
        Ok(())
    })
}

/// Tile: output element `i` reads input element `i mod shape` along every axis.
fn tile_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let dt = ctx.input_dtype(0);
    let gpu = gpu(ctx)?;
    let f = function(&gpu, "gather", "Tile", "x", dt, dt)?;
    kernel_fn(move |k| {
        let x = k.input(0)?;
        let multiples = k.input(1)?.to_i64_vec()?;
        if multiples.len() != x.rank() || multiples.iter().any(|&m| m < 0) {
            return Err(Error::invalid(format!(
                "Tile needs one non-negative multiple per axis of {:?}, got {multiples:?}",
                x.shape()
            )));
        }
        let out_shape: Vec<usize> = x
            .shape()
            .iter()
            .zip(&multiples)
            .map(|(&d, &m)| d * m as usize)
            .collect();
        gpu.bind()?;
        let (out, po) = gpu.alloc(dt, &out_shape)?;
        let n = out.len();
        if n > 0 {
            let px = gpu.address(x)?;
            let (n64, rank) = (n as i64, out_shape.len() as i32);
            let dims = Dims8::new(&out_shape)?;
            let in_dims = Dims8::new(x.shape())?;
            let in_strides = Dims8::new(&broadcast_strides(x.shape(), x.shape()))?;
            launch!(
                gpu,
                f,
                grid(n),
                "tile kernel",
                [&px, &po, &n64, &rank, &dims, &in_dims, &in_strides]
            );
        }
        k.push_output(out);
        Ok(())
    })
}

/// Runs the fill template: a new tensor of `shape` whose elements are `expr` of the
/// device scalar `value`.
fn fill(
    gpu: &Arc<Gpu>,
    f: &CudaFunction,
    value: &Tensor,
    shape: &[usize],
    dt: DType,
) -> Result<Tensor> {
    gpu.bind()?;
    let (out, po) = gpu.alloc(dt, shape)?;
    let n = out.len();
    if n > 0 {
        let pv = gpu.address(value)?;
        let n64 = n as i64;
        launch!(gpu, f, grid(n), "fill kernel", [&pv, &po, &n64]);
    }
    Ok(out)
}

/// Fill(dims, value): dims in host memory, the value a device scalar.
fn fill_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    let dt = ctx.output_dtype(0);
    let gpu = gpu(ctx)?;
    let f = function(&gpu, "fill", "Fill", "x", dt, dt)?;
    kernel_fn(move |k| {
        let dims = k.input(0)?.to_i64_vec()?;
        let value = k.input(1)?;
        if value.len() != 1 || dims.iter().any(|&d| d < 0) {
            return Err(Error::invalid(format!(
                "Fill needs non-negative dims and a scalar value, got {dims:?} and {:?}",
                value.shape()
            )));
        }
        let shape: Vec<usize> = dims.iter().map(|&d| d as usize).collect();
        let out = fill(&gpu, &f, value, &shape, dt)?;
        k.push_output(out);
        Ok(())
    })
}

/// ZerosLike and OnesLike: the fill template with a constant expression and no value.
fn constant_like(ctx: &KernelBuildCtx<'_>, expr: &'static str) -> KernelResult {
    let dt = ctx.input_dtype(0);
    let gpu = gpu(ctx)?;
    let op = ctx.node.op().kernel_op();
    let f = function(&gpu, "fill", op, expr, dt, dt)?;
    kernel_fn(move |k| {
        let x = k.input(0)?;
        gpu.bind()?;
        let (out, po) = gpu.alloc(dt, x.shape())?;
        let n = out.len();
        if n > 0 {
            let no_value = 0u64;
            let n64 = n as i64;
            launch!(gpu, f, grid(n), "fill kernel", [&no_value, &po, &n64]);
        }
        k.push_output(out);
        Ok(())
    })
}

fn zeros_like_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    constant_like(ctx, "0")
}

fn ones_like_kernel(ctx: &KernelBuildCtx<'_>) -> KernelResult {
    constant_like(ctx, "1")
}

/// Every source this family generates, by cache key (for the NVRTC test).
#[cfg(test)]
pub(super) fn all_sources() -> Vec<(String, String)> {
    let mut v = Vec::new();
    for &(op, expr, dtypes) in UNARY {
        for &dt in dtypes {
            v.push((format!("unary/{op}/{dt}"), generated("unary", expr, dt, dt)));
        }
    }
    for &(op, expr, dtypes, to_bool) in BINARY {
        for &dt in dtypes {
            let to = if to_bool { DType::Bool } else { dt };
            v.push((
                format!("binary/{op}/{dt}"),
                generated("binary", expr, dt, to),
            ));
        }
    }
    for &from in CAST_FROM {
        for &to in ALL {
            v.push((
                format!("unary/Cast/{from}/{to}"),
                generated("unary", "x", from, to),
            ));
        }
    }
    for &dt in FLOATS {
        v.push((
            format!("select/{dt}"),
            generated("select", "c ? x : y", dt, dt),
        ));
        v.push((format!("gather/{dt}"), generated("gather", "x", dt, dt)));
        v.push((format!("fill/{dt}"), generated("fill", "x", dt, dt)));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_op_is_a_registered_op_with_a_gpu_kernel() {
        let kernels = crate::ops::registry::kernels();
        let ops = UNARY
            .iter()
            .map(|e| (e.0, e.2[0]))
            .chain(BINARY.iter().map(|e| (e.0, e.2[0])));
        for (op, dt) in ops {
            crate::ops::registry::lookup(op).unwrap_or_else(|e| panic!("{op}: {e}"));
            assert!(kernels.find(op, GPU, Some(dt)).is_some(), "{op}");
            // Integer kernels stay on the CPU.
            assert!(kernels.find(op, GPU, Some(DType::Int32)).is_none(), "{op}");
        }
    }

    #[test]
    fn broadcast_arguments_skip_indexing_for_equal_shapes_and_zero_broadcast_strides() {
        let (rank, _, s) = broadcast_args(&[&[2, 3], &[2, 3]], &[2, 3]).unwrap();
        assert_eq!(rank, 0);
        assert_eq!(s.len(), 2);
        let (rank, dims, s) = broadcast_args(&[&[2, 1, 4], &[3, 1]], &[2, 3, 4]).unwrap();
        assert_eq!(rank, 3);
        assert_eq!(&dims.v[..3], &[2, 3, 4]);
        assert_eq!(&s[0].v[..3], &[4, 0, 1]);
        assert_eq!(&s[1].v[..3], &[0, 1, 0]);
        let err = broadcast_args(&[&[1; 9], &[2; 9]], &[2; 9]).unwrap_err();
        assert!(err.to_string().contains("rank at most 8"), "{err}");
    }
}

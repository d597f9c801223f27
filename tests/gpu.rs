//! GPU kernels (feature `cuda`) against the CPU kernels on the same inputs: each graph is
//! built twice, once under `/device:GPU:0` with soft placement off (so every op must have
//! run on the GPU) and once on the CPU; floats agree to 1e-5 relative, integers and bools
//! exactly. Broadcasting corner cases, empty tensors and larger sizes are included.
//!
//! Without a usable GPU (no `cuda` feature: nothing here is compiled; no driver or no
//! device) every test prints one line saying why and passes. `gpu/check.sh` runs them on a
//! lent GPU machine.
#![cfg(feature = "cuda")]

use rustflow::device::cuda::{unavailable, GpuDevice};
use rustflow::{DType, Graph, Output, Result, Session, SessionOptions, Tensor};

const GPU0: &str = "/device:GPU:0";

/// The element types GPU memory holds (strings stay on the host).
const ELEMENTS: [DType; 6] = [
    DType::Float32,
    DType::Float64,
    DType::Int32,
    DType::Int64,
    DType::UInt8,
    DType::Bool,
];

/// False (after one line saying why) when this machine has no usable GPU.
fn have_gpu() -> bool {
    match unavailable() {
        Some(why) => {
            println!("skipped: no GPU ({why})");
            false
        }
        None => true,
    }
}

fn strict() -> SessionOptions {
    SessionOptions {
        allow_soft_placement: false,
        ..SessionOptions::default()
    }
}

/// Deterministic values in [lo, hi): the fractional parts of a sine hash.
fn values(n: usize, seed: u64, lo: f64, hi: f64) -> Vec<f64> {
    (0..n)
        .map(|i| {
            let h = ((i as f64 + 1.0) * 12.9898 + seed as f64 * 78.233).sin() * 43758.5453;
            lo + (hi - lo) * (h - h.floor())
        })
        .collect()
}

fn tensor(dtype: DType, shape: &[usize], seed: u64, lo: f64, hi: f64) -> Tensor {
    let n = shape.iter().product();
    let v = values(n, seed, lo, hi);
    match dtype {
        DType::Float32 => Tensor::new(shape, v.iter().map(|&x| x as f32).collect()).unwrap(),
        DType::Float64 => Tensor::new(shape, v).unwrap(),
        DType::Int32 => Tensor::new(shape, v.iter().map(|&x| x as i32).collect()).unwrap(),
        DType::Int64 => Tensor::new(shape, v.iter().map(|&x| x as i64).collect()).unwrap(),
        DType::UInt8 => Tensor::new(shape, v.iter().map(|&x| x as u8).collect()).unwrap(),
        DType::Bool => Tensor::new(shape, v.iter().map(|&x| x > 0.0).collect()).unwrap(),
        DType::String | DType::Resource | DType::Variant => {
            unreachable!("the GPU tests use numbers and bools")
        }
    }
}

/// Runs `build` over placeholders fed with `inputs`, on the CPU and under `/device:GPU:0`;
/// returns (cpu, gpu) outputs.
fn both(
    inputs: &[Tensor],
    build: impl Fn(&mut Graph, &[Output]) -> Result<Vec<Output>>,
) -> (Vec<Tensor>, Vec<Tensor>) {
    let run = |device: Option<&str>| -> Vec<Tensor> {
        let mut g = Graph::new();
        let phs: Vec<Output> = inputs
            .iter()
            .enumerate()
            .map(|(i, t)| {
                g.placeholder(t.dtype(), t.shape(), &format!("in{i}"))
                    .unwrap()
            })
            .collect();
        let outs = match device {
            Some(d) => g.device(d, |g| build(g, &phs)),
            None => build(&mut g, &phs),
        }
        .unwrap();
        let feeds: Vec<(Output, Tensor)> =
            phs.iter().copied().zip(inputs.iter().cloned()).collect();
        Session::with_options(&g, strict())
            .run(&feeds, &outs, &[])
            .unwrap_or_else(|e| panic!("on {device:?}: {e}"))
    };
    (run(None), run(Some(GPU0)))
}

/// Asserts GPU results equal CPU results: 1e-5 relative for floats, exact otherwise.
fn assert_same(what: &str, cpu: &[Tensor], gpu: &[Tensor]) {
    assert_eq!(cpu.len(), gpu.len(), "{what}");
    for (i, (c, g)) in cpu.iter().zip(gpu).enumerate() {
        assert!(g.is_host(), "{what}: fetched output {i} is not on the host");
        assert_eq!(c.dtype(), g.dtype(), "{what}: output {i}");
        assert_eq!(c.shape(), g.shape(), "{what}: output {i}");
        if c.dtype().is_float() {
            let (a, b) = (c.to_f64_vec(), g.to_f64_vec());
            let tol = if c.dtype() == DType::Float32 {
                1e-5
            } else {
                1e-10
            };
            for (j, (&x, &y)) in a.iter().zip(&b).enumerate() {
                let ok = (x.is_nan() && y.is_nan())
                    || x == y
                    || (x - y).abs() <= tol * x.abs().max(y.abs()) + tol * 1e-1;
                assert!(ok, "{what}: output {i} element {j}: cpu {x} vs gpu {y}");
            }
        } else {
            assert!(c.equals(g), "{what}: output {i}: cpu {c:?} vs gpu {g:?}");
        }
    }
}

fn op1(g: &mut Graph, op: &str, x: Output) -> Result<Output> {
    let dt = g.dtype(x);
    g.op(op).input(x).attr("T", dt).build_output()
}

fn op2(g: &mut Graph, op: &str, x: Output, y: Output) -> Result<Output> {
    let dt = g.dtype(x);
    g.op(op).input(x).input(y).attr("T", dt).build_output()
}

const UNARY: &[&str] = &[
    "Neg",
    "Abs",
    "Sign",
    "Square",
    "Exp",
    "Log",
    "Log1p",
    "Sqrt",
    "Rsqrt",
    "Reciprocal",
    "Tanh",
    "Sigmoid",
    "Relu",
    "Relu6",
    "Elu",
    "Softplus",
];
/// Ops defined for positive inputs only.
const POSITIVE: &[&str] = &["Log", "Sqrt", "Rsqrt", "Reciprocal"];

#[test]
fn unary_ops_match_the_cpu() {
    if !have_gpu() {
        return;
    }
    for dt in [DType::Float32, DType::Float64] {
        for &op in UNARY {
            let lo = if POSITIVE.contains(&op) { 0.1 } else { -8.0 };
            for shape in [&[3usize, 5][..], &[0, 4], &[], &[1000]] {
                let x = tensor(dt, shape, 7, lo, 8.0);
                let (c, g) = both(&[x], |g, i| Ok(vec![op1(g, op, i[0])?]));
                assert_same(&format!("{op} {dt} {shape:?}"), &c, &g);
            }
        }
    }
}

const BINARY: &[&str] = &[
    "AddV2",
    "Sub",
    "Mul",
    "RealDiv",
    "FloorDiv",
    "FloorMod",
    "Pow",
    "Maximum",
    "Minimum",
    "ReluGrad",
    "Relu6Grad",
    "EluGrad",
    "SoftplusGrad",
    "TanhGrad",
    "SigmoidGrad",
    "SqrtGrad",
    "RsqrtGrad",
    "Equal",
    "NotEqual",
    "Less",
    "LessEqual",
    "Greater",
    "GreaterEqual",
];

/// Shape pairs: equal, trailing broadcast, both sides broadcast, scalar, empty, rank 5.
const PAIRS: &[(&[usize], &[usize])] = &[
    (&[2, 3], &[2, 3]),
    (&[2, 3], &[3]),
    (&[2, 1, 4], &[3, 1]),
    (&[], &[2, 2]),
    (&[4, 1], &[1, 5]),
    (&[0, 3], &[3]),
    (&[2, 1, 3, 1, 2], &[1, 4, 1, 5, 1]),
    (&[300, 70], &[70]),
];

#[test]
fn binary_ops_broadcast_as_on_the_cpu() {
    if !have_gpu() {
        return;
    }
    for dt in [DType::Float32, DType::Float64] {
        for &op in BINARY {
            // Pow and the Sqrt/Rsqrt gradients need positive operands.
            let lo = if ["Pow", "SqrtGrad", "RsqrtGrad"].contains(&op) {
                0.5
            } else {
                -3.0
            };
            for (k, &(sa, sb)) in PAIRS.iter().enumerate() {
                let a = tensor(dt, sa, 2 * k as u64 + 1, lo, 3.0);
                let mut b = tensor(dt, sb, 2 * k as u64 + 2, lo, 3.0);
                if ["RealDiv", "FloorDiv", "FloorMod"].contains(&op) {
                    b = tensor(dt, sb, 2 * k as u64 + 2, 0.5, 3.0);
                }
                let (c, g) = both(&[a, b], |g, i| Ok(vec![op2(g, op, i[0], i[1])?]));
                assert_same(&format!("{op} {dt} {sa:?} {sb:?}"), &c, &g);
            }
        }
    }
}

#[test]
fn logical_select_cast_tile_fill_and_add_n_match_the_cpu() {
    if !have_gpu() {
        return;
    }
    let p = tensor(DType::Bool, &[2, 3], 1, -1.0, 1.0);
    let q = tensor(DType::Bool, &[3], 2, -1.0, 1.0);
    let (c, g) = both(&[p.clone(), q], |g, i| {
        Ok(vec![
            g.op("LogicalAnd").input(i[0]).input(i[1]).build_output()?,
            g.op("LogicalOr").input(i[0]).input(i[1]).build_output()?,
            g.op("LogicalNot").input(i[0]).build_output()?,
        ])
    });
    assert_same("logical", &c, &g);

    let x = tensor(DType::Float32, &[2, 3], 3, -2.0, 2.0);
    let y = tensor(DType::Float32, &[2, 3], 4, -2.0, 2.0);
    let row = tensor(DType::Bool, &[2], 5, -1.0, 1.0);
    let (c, g) = both(&[p, row, x.clone(), y.clone()], |g, i| {
        Ok(vec![
            g.op("SelectV2")
                .input(i[0])
                .input(i[2])
                .input(i[3])
                .attr("T", DType::Float32)
                .build_output()?,
            g.op("Select")
                .input(i[1])
                .input(i[2])
                .input(i[3])
                .attr("T", DType::Float32)
                .build_output()?,
        ])
    });
    assert_same("select", &c, &g);

    for to in ELEMENTS {
        let (c, g) = both(std::slice::from_ref(&x), |g, i| Ok(vec![g.cast(i[0], to)?]));
        assert_same(&format!("cast f32 -> {to}"), &c, &g);
    }
    let b = tensor(DType::Bool, &[7], 6, -1.0, 1.0);
    let (c, g) = both(&[b], |g, i| Ok(vec![g.cast(i[0], DType::Float32)?]));
    assert_same("cast bool -> f32", &c, &g);

    let (c, g) = both(&[x.clone(), y.clone()], |g, i| {
        let m = g.constant(Tensor::vector(vec![2i32, 3]))?;
        let dims = g.constant(Tensor::vector(vec![4i32, 0]))?;
        let five = g.constant(Tensor::scalar(5.0f32))?;
        let dims2 = g.constant(Tensor::vector(vec![3i32, 2]))?;
        Ok(vec![
            g.op("Tile")
                .input(i[0])
                .input(m)
                .attr("T", DType::Float32)
                .build_output()?,
            g.op("Fill")
                .input(dims)
                .input(five)
                .attr("T", DType::Float32)
                .build_output()?,
            g.op("Fill")
                .input(dims2)
                .input(five)
                .attr("T", DType::Float32)
                .build_output()?,
            op1(g, "ZerosLike", i[0])?,
            op1(g, "OnesLike", i[0])?,
            g.op("AddN")
                .inputs(&[i[0], i[1], i[0]])
                .attr("T", DType::Float32)
                .attr("N", 3i64)
                .build_output()?,
        ])
    });
    assert_same("tile, fill, zeros/ones_like, add_n", &c, &g);
}

#[test]
fn reductions_over_any_axes_match_the_cpu() {
    if !have_gpu() {
        return;
    }
    let axes_sets: &[&[i32]] = &[&[], &[0], &[1], &[0, 2], &[-1], &[0, 1, 2]];
    for op in ["Sum", "Mean", "Max", "Min", "Prod"] {
        for dt in [DType::Float32, DType::Float64] {
            let x = tensor(dt, &[3, 4, 5], 11, 0.5, 1.5);
            for &axes in axes_sets {
                for keep in [false, true] {
                    let (c, g) = both(std::slice::from_ref(&x), |g, i| {
                        let a = g.constant(Tensor::vector(axes.to_vec()))?;
                        Ok(vec![g
                            .op(op)
                            .input(i[0])
                            .input(a)
                            .attr("T", dt)
                            .attr("Tidx", DType::Int32)
                            .attr("keep_dims", keep)
                            .build_output()?])
                    });
                    assert_same(&format!("{op} {dt} {axes:?} keep={keep}"), &c, &g);
                }
            }
        }
        // Empty inputs: reducing an empty axis gives the initial value.
        let e = Tensor::new(&[0, 3], Vec::<f32>::new()).unwrap();
        let (c, g) = both(&[e], |g, i| {
            let axis = g.constant(Tensor::vector(vec![0i32]))?;
            Ok(vec![g
                .op(op)
                .input(i[0])
                .input(axis)
                .attr("T", DType::Float32)
                .attr("Tidx", DType::Int32)
                .build_output()?])
        });
        assert_same(&format!("{op} of an empty axis"), &c, &g);
    }
    // A large sum (positive values, so the order of additions matters little).
    let big = tensor(DType::Float32, &[1 << 20], 3, 0.0, 1.0);
    let (c, g) = both(&[big], |g, i| Ok(vec![g.reduce_sum(i[0], &[0], false)?]));
    let (a, b) = (c[0].to_f64_vec()[0], g[0].to_f64_vec()[0]);
    assert!((a - b).abs() <= 1e-4 * a, "sum of 2^20: cpu {a} vs gpu {b}");
}

#[test]
fn matmul_and_batch_matmul_through_cublas_match_the_cpu() {
    if !have_gpu() {
        return;
    }
    for dt in [DType::Float32, DType::Float64] {
        for &(m, k, n) in &[(2, 3, 4), (1, 1, 1), (257, 129, 65), (3, 0, 2), (0, 4, 5)] {
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                let sa = if ta { [k, m] } else { [m, k] };
                let sb = if tb { [n, k] } else { [k, n] };
                let a = tensor(dt, &sa, 1, -1.0, 1.0);
                let b = tensor(dt, &sb, 2, -1.0, 1.0);
                let (c, g) = both(&[a, b], |g, i| Ok(vec![g.matmul_t(i[0], i[1], ta, tb)?]));
                assert_same(&format!("MatMul {dt} {m}x{k}x{n} ta={ta} tb={tb}"), &c, &g);
            }
        }
        for (sa, sb, adj) in [
            (&[3usize, 2, 4][..], &[3usize, 4, 5][..], (false, false)),
            (&[3, 4, 2], &[1, 5, 4], (true, true)),
            (&[2, 3, 2, 4], &[4, 6], (false, false)),
        ] {
            let a = tensor(dt, sa, 3, -1.0, 1.0);
            let b = tensor(dt, sb, 4, -1.0, 1.0);
            let (c, g) = both(&[a, b], |g, i| {
                Ok(vec![g
                    .op("BatchMatMulV2")
                    .input(i[0])
                    .input(i[1])
                    .attr("T", dt)
                    .attr("adj_x", adj.0)
                    .attr("adj_y", adj.1)
                    .build_output()?])
            });
            assert_same(&format!("BatchMatMulV2 {dt} {sa:?} {sb:?}"), &c, &g);
        }
    }
}

#[test]
fn softmax_cross_entropies_and_bias_match_the_cpu() {
    if !have_gpu() {
        return;
    }
    for dt in [DType::Float32, DType::Float64] {
        for shape in [&[4usize, 10][..], &[3, 1000], &[2, 3, 5], &[0, 7]] {
            let x = tensor(dt, shape, 5, -6.0, 6.0);
            let (c, g) = both(&[x], |g, i| {
                Ok(vec![op1(g, "Softmax", i[0])?, op1(g, "LogSoftmax", i[0])?])
            });
            assert_same(&format!("softmax {dt} {shape:?}"), &c, &g);
        }
        for lt in [DType::Int32, DType::Int64] {
            let logits = tensor(dt, &[6, 10], 8, -4.0, 4.0);
            let labels = tensor(lt, &[6], 9, 0.0, 10.0);
            let (c, g) = both(&[logits.clone(), labels], |g, i| {
                let n = g
                    .op("SparseSoftmaxCrossEntropyWithLogits")
                    .input(i[0])
                    .input(i[1])
                    .attr("T", dt)
                    .attr("Tlabels", lt)
                    .build()?;
                Ok(vec![n.output(0), n.output(1)])
            });
            assert_same(&format!("sparse xent {dt} {lt}"), &c, &g);
        }
        let logits = tensor(dt, &[5, 7], 10, -4.0, 4.0);
        let labels = tensor(dt, &[5, 7], 11, 0.0, 1.0);
        let (c, g) = both(&[logits, labels], |g, i| {
            let n = g
                .op("SoftmaxCrossEntropyWithLogits")
                .input(i[0])
                .input(i[1])
                .attr("T", dt)
                .build()?;
            Ok(vec![n.output(0), n.output(1)])
        });
        assert_same(&format!("xent {dt}"), &c, &g);
        for (format, shape, c_axis) in [
            ("NHWC", &[2usize, 3, 4, 5][..], 3),
            ("NCHW", &[2, 3, 4, 5], 1),
            ("NHWC", &[6, 10], 1),
        ] {
            let x = tensor(dt, shape, 12, -2.0, 2.0);
            let b = tensor(dt, &[shape[c_axis]], 13, -2.0, 2.0);
            let (c, g) = both(&[x, b], |g, i| {
                let y = g
                    .op("BiasAdd")
                    .input(i[0])
                    .input(i[1])
                    .attr("T", dt)
                    .attr("data_format", format)
                    .build_output()?;
                let db = g
                    .op("BiasAddGrad")
                    .input(y)
                    .attr("T", dt)
                    .attr("data_format", format)
                    .build_output()?;
                Ok(vec![y, db])
            });
            assert_same(
                &format!("BiasAdd/BiasAddGrad {dt} {format} {shape:?}"),
                &c,
                &g,
            );
        }
    }
}

/// Trains the digits-sized MLP (64 → 32 ReLU → 10, sparse softmax cross-entropy) for a few
/// steps with `optimizer` on `device`; returns the losses and the final weights.
fn train_mlp(device: Option<&str>, adam: bool) -> (Vec<f32>, Vec<Tensor>, Session) {
    let mut g = Graph::new();
    let x = g
        .placeholder(DType::Float32, [None, Some(64)], "x")
        .unwrap();
    let y = g.placeholder(DType::Int32, [None], "y").unwrap();
    let build = |g: &mut Graph| -> Result<(Output, rustflow::NodeId, Vec<Output>)> {
        let mut var = |init: Tensor, name: &str| -> Result<rustflow::VariableHandle> {
            let c = g.constant(init)?;
            g.variable(c, name)
        };
        let w1 = var(tensor(DType::Float32, &[64, 32], 1, -0.2, 0.2), "w1")?;
        let b1 = var(Tensor::full(&[32], 0.0f32), "b1")?;
        let w2 = var(tensor(DType::Float32, &[32, 10], 2, -0.2, 0.2), "w2")?;
        let b2 = var(Tensor::full(&[10], 0.0f32), "b2")?;
        let h = g.matmul(x, w1.read)?;
        let h = g.bias_add(h, b1.read)?;
        let h = g.relu(h)?;
        let z = g.matmul(h, w2.read)?;
        let z = g.bias_add(z, b2.read)?;
        let (xent, _) = g.sparse_softmax_cross_entropy_with_logits(z, y)?;
        let loss = g.reduce_mean(xent, &[0], false)?;
        let train = if adam {
            use rustflow::train::Optimizer;
            rustflow::train::Adam::new(0.01).minimize(g, loss, None, None)?
        } else {
            use rustflow::train::Optimizer;
            rustflow::train::GradientDescent::new(0.5).minimize(g, loss, None, None)?
        };
        Ok((loss, train, vec![w1.read, b1.read, w2.read, b2.read]))
    };
    let (loss, train, weights) = match device {
        Some(d) => g.device(d, build),
        None => build(&mut g),
    }
    .unwrap();
    let init = g.global_variables_initializer().unwrap();
    // Soft placement on: the int32 shape arithmetic of the gradients stays on the CPU.
    let sess = Session::new(&g);
    sess.run(&[], &[], &[init]).unwrap();
    let bx = tensor(DType::Float32, &[32, 64], 3, 0.0, 1.0);
    let by = tensor(DType::Int32, &[32], 4, 0.0, 10.0);
    let mut losses = Vec::new();
    for _ in 0..20 {
        let out = sess
            .run(&[(x, bx.clone()), (y, by.clone())], &[loss], &[train])
            .unwrap();
        losses.push(out[0].scalar_value::<f32>().unwrap());
    }
    let w = sess.run(&[], &weights, &[]).unwrap();
    (losses, w, sess)
}

#[test]
fn an_mlp_trains_on_the_gpu_as_on_the_cpu_and_its_variables_stay_there() {
    if !have_gpu() {
        return;
    }
    for adam in [false, true] {
        let (cpu_losses, cpu_w, _) = train_mlp(None, adam);
        let (gpu_losses, gpu_w, sess) = train_mlp(Some(GPU0), adam);
        assert!(
            gpu_losses[19] < gpu_losses[0] * 0.5,
            "adam={adam}: {gpu_losses:?}"
        );
        for (a, b) in cpu_losses.iter().zip(&gpu_losses) {
            assert!(
                (a - b).abs() <= 1e-4 * a.abs().max(1.0),
                "adam={adam}: {cpu_losses:?} vs {gpu_losses:?}"
            );
        }
        for (c, g) in cpu_w.iter().zip(&gpu_w) {
            let (c, g) = (c.to_f64_vec(), g.to_f64_vec());
            for (x, y) in c.iter().zip(&g) {
                assert!(
                    (x - y).abs() <= 1e-4 * x.abs().max(1.0),
                    "adam={adam}: {x} vs {y}"
                );
            }
        }
        // The variables live in GPU memory between steps.
        let w1 = sess.resources().variable("w1").unwrap().read().unwrap();
        assert_eq!(w1.location(), GPU0);
        // The caching allocator: after warm-up, steps take nothing from the driver.
        let gpu = GpuDevice::of(&sess.devices().devices()[1]).unwrap();
        let stats = gpu.memory_stats();
        assert!(stats.num_raw_allocs <= 4, "{stats:?}");
        assert!(
            stats.peak_bytes_in_use >= stats.bytes_in_use && stats.bytes_in_use > 0,
            "{stats:?}"
        );
    }
}

#[test]
fn copies_round_trip_every_dtype_including_empty_tensors() {
    if !have_gpu() {
        return;
    }
    for dt in ELEMENTS {
        for shape in [&[3usize, 4][..], &[0], &[], &[100_000]] {
            let t = tensor(dt, shape, 21, -100.0, 100.0);
            let mut g = Graph::new();
            let x = g.placeholder(dt, shape, "x").unwrap();
            // Identity on the GPU: the value goes there and back.
            let y = g.device(GPU0, |g| g.identity(x)).unwrap();
            let out = Session::with_options(&g, strict())
                .run(&[(x, t.clone())], &[y], &[])
                .unwrap();
            assert!(out[0].equals(&t), "{dt} {shape:?}");
        }
    }
}

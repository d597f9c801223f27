//! GraphDef round trips for every registered op: export → import → export is
//! byte-identical, nothing becomes an unsupported node, and both graphs compute the same
//! values. `every_op_has_a_round_trip_case` fails (listing them) when an op is registered
//! without a case here.

use rustflow::ops::array::StridedSliceMasks;
use rustflow::ops::registry;
use rustflow::proto::{graph_to_bytes, import_graph_def, parse_graph_def, unsupported};
use rustflow::{AttrValue, DType, Graph, NodeId, Output, PartialShape, Result, Session, Tensor};
use std::collections::BTreeSet;

/// One graph to round-trip: what to fetch, what to feed, and targets to run first.
struct Case {
    graph: Graph,
    fetches: Vec<Output>,
    feeds: Vec<(Output, Tensor)>,
    setup: Vec<NodeId>,
}

impl Case {
    fn new(graph: Graph, fetches: Vec<Output>) -> Case {
        Case {
            graph,
            fetches,
            feeds: Vec::new(),
            setup: Vec::new(),
        }
    }
}

type Builder = fn() -> Result<Case>;

fn f32s(g: &mut Graph, shape: &[usize], data: &[f32]) -> Result<Output> {
    g.constant(Tensor::new(shape, data.to_vec())?)
}

fn m23(g: &mut Graph) -> Result<Output> {
    f32s(g, &[2, 3], &[1.0, -2.0, 3.0, -4.0, 5.0, -6.5])
}

fn pos23(g: &mut Graph) -> Result<Output> {
    f32s(g, &[2, 3], &[0.5, 2.0, 3.0, 4.0, 5.0, 6.5])
}

fn i32s(g: &mut Graph, data: &[i32]) -> Result<Output> {
    g.constant(Tensor::vector(data.to_vec()))
}

fn nhwc(g: &mut Graph) -> Result<Output> {
    let data: Vec<f32> = (0..32).map(|i| (i as f32 * 0.37).sin()).collect();
    f32s(g, &[1, 4, 4, 2], &data)
}

fn unary_math() -> Result<Case> {
    let mut g = Graph::new();
    let x = m23(&mut g)?;
    let p = pos23(&mut g)?;
    let mut f = vec![
        g.abs(x)?,
        g.neg(x)?,
        g.sign(x)?,
        g.square(x)?,
        g.exp(x)?,
        g.relu(x)?,
        g.relu6(x)?,
        g.elu(x)?,
        g.softplus(x)?,
        g.tanh(x)?,
        g.sigmoid(x)?,
        g.log(p)?,
        g.log1p(p)?,
        g.sqrt(p)?,
        g.rsqrt(p)?,
    ];
    f.push(g.cast(x, DType::Int32)?);
    f.push(g.identity(x)?);
    f.push(g.stop_gradient(x)?);
    Ok(Case::new(g, f))
}

fn binary_math() -> Result<Case> {
    let mut g = Graph::new();
    let x = m23(&mut g)?;
    let y = pos23(&mut g)?;
    let f = vec![
        g.add(x, y)?,
        g.sub(x, y)?,
        g.mul(x, y)?,
        g.div(x, y)?,
        g.floordiv(x, y)?,
        g.floormod(x, y)?,
        g.pow(y, x)?,
        g.maximum(x, y)?,
        g.minimum(x, y)?,
        g.add_n(&[x, y, x])?,
    ];
    Ok(Case::new(g, f))
}

fn logic() -> Result<Case> {
    let mut g = Graph::new();
    let x = m23(&mut g)?;
    let y = pos23(&mut g)?;
    let c = g.less(x, y)?;
    let d = g.greater_equal(x, y)?;
    let f = vec![
        g.equal(x, y)?,
        g.not_equal(x, y)?,
        g.less_equal(x, y)?,
        g.greater(x, y)?,
        g.logical_and(c, d)?,
        g.logical_or(c, d)?,
        g.logical_not(c)?,
        g.select(c, x, y)?,
        g.where_v2(c, x, y)?,
    ];
    Ok(Case::new(g, f))
}

fn reductions() -> Result<Case> {
    let mut g = Graph::new();
    let x = m23(&mut g)?;
    let f = vec![
        g.reduce_sum(x, &[1], false)?,
        g.reduce_mean(x, &[0], true)?,
        g.reduce_max(x, &[-1], false)?,
        g.reduce_min(x, &[0, 1], false)?,
        g.reduce_prod(x, &[1], true)?,
        g.argmax(x, 1, DType::Int64)?,
        g.argmin(x, 0, DType::Int32)?,
    ];
    Ok(Case::new(g, f))
}

fn shapes() -> Result<Case> {
    let mut g = Graph::new();
    let x = g.placeholder(DType::Float32, [None, Some(3)], "x")?;
    let mut f = vec![
        g.shape_of(x)?,
        g.shape_of_as(x, DType::Int64)?,
        g.size(x)?,
        g.rank(x)?,
        g.reshape(x, &[-1])?,
        g.expand_dims(x, 1)?,
        g.zeros_like(x)?,
        g.ones_like(x)?,
    ];
    let e = g.expand_dims(x, 0)?;
    f.push(g.squeeze(e, &[0])?);
    f.extend(g.shape_n(&[x, e])?);
    let mut case = Case::new(g, f);
    case.feeds = vec![(x, Tensor::from([[1.0f32, 2.0, 3.0], [4.0, 5.0, 6.0]]))];
    Ok(case)
}

fn layout() -> Result<Case> {
    let mut g = Graph::new();
    let x = m23(&mut g)?;
    let y = pos23(&mut g)?;
    let idx = i32s(&mut g, &[2, 0])?;
    let mut f = vec![
        g.tile(x, &[2, 1])?,
        g.pad(x, &[[1, 0], [0, 2]])?,
        g.transpose(x, &[1, 0])?,
        g.concat(&[x, y], 1)?,
        g.stack(&[x, y], 0)?,
        g.gather(x, idx, 1)?,
        g.slice(x, &[0, 1], &[2, -1])?,
    ];
    let v = g.scalar_like(DType::Float32, 9.0)?;
    f.push(g.pad_with(x, &[[0, 1], [1, 0]], v)?);
    f.extend(g.unstack(x, None, 1)?);
    // x[:, ::-2] and x[1] (shrink_axis_mask) as StridedSlice.
    let begin = i32s(&mut g, &[0, -1])?;
    let end = i32s(&mut g, &[0, -4])?;
    let strides = i32s(&mut g, &[1, -2])?;
    f.push(
        g.op("StridedSlice")
            .input(x)
            .input(begin)
            .input(end)
            .input(strides)
            .attr("T", DType::Float32)
            .attr("Index", DType::Int32)
            .attr("begin_mask", 1i64)
            .attr("end_mask", 3i64)
            .build_output()?,
    );
    Ok(Case::new(g, f))
}

fn gradient_helpers() -> Result<Case> {
    let mut g = Graph::new();
    let x = m23(&mut g)?;
    let perm = i32s(&mut g, &[2, 0, 1])?;
    let axis = g.constant(1i32)?;
    let (s1, s2) = (i32s(&mut g, &[2, 3])?, i32s(&mut g, &[2, 5])?);
    let ids = i32s(&mut g, &[1, 0])?;
    let segments = g.constant(3i32)?;
    let shape = i32s(&mut g, &[2, 3])?;
    let (begin, end, strides) = (
        i32s(&mut g, &[0, 1])?,
        i32s(&mut g, &[2, 3])?,
        i32s(&mut g, &[1, 1])?,
    );
    let dy = f32s(&mut g, &[2, 2], &[1.0, 2.0, 3.0, 4.0])?;
    let image = nhwc(&mut g)?;
    let pooled = g.max_pool(image, &[1, 2, 2, 1], &[1, 2, 2, 1], "VALID")?;
    let mut f = vec![
        g.invert_permutation(perm)?,
        g.unsorted_segment_sum(x, ids, segments)?,
        g.strided_slice_grad(shape, begin, end, strides, dy, StridedSliceMasks::default())?,
        g.max_pool_grad_grad(image, pooled, image, &[1, 2, 2, 1], &[1, 2, 2, 1], "VALID")?,
    ];
    f.extend(g.concat_offset(axis, &[s1, s2])?);
    Ok(Case::new(g, f))
}

fn generators() -> Result<Case> {
    let mut g = Graph::new();
    let dims = i32s(&mut g, &[2, 2])?;
    let seven = g.scalar_like(DType::Float32, 7.0)?;
    let (start, limit, delta) = (g.constant(1i32)?, g.constant(10i32)?, g.constant(3i32)?);
    let indices = g.constant(Tensor::vector(vec![0i64, 2, 1]))?;
    let (on, off) = (
        g.scalar_like(DType::Float32, 1.0)?,
        g.scalar_like(DType::Float32, 0.0)?,
    );
    let depth = g.constant(3i32)?;
    let f = vec![
        g.fill(dims, seven)?,
        g.range(start, limit, delta)?,
        g.op("OneHot")
            .input(indices)
            .input(depth)
            .input(on)
            .input(off)
            .attr("T", DType::Float32)
            .attr("TI", DType::Int64)
            .build_output()?,
        g.zeros(DType::Int64, &[2, 1])?,
        g.random_uniform(&[2, 3], DType::Float32, Some(7))?,
        g.random_normal(&[3], DType::Float64, Some(8))?,
        g.truncated_normal(&[4], DType::Float32, Some(9))?,
    ];
    Ok(Case::new(g, f))
}

fn linalg() -> Result<Case> {
    let mut g = Graph::new();
    let x = m23(&mut g)?;
    let y = pos23(&mut g)?;
    let a = f32s(&mut g, &[2, 2], &[4.0, 1.0, 2.0, 3.0])?;
    let (s, u, v) = g.svd(a, false, true)?;
    let f = vec![
        g.matmul(a, x)?,
        g.matmul_t(x, y, false, true)?,
        g.batch_matmul(x, y, true, false)?,
        s,
        u,
        v,
    ];
    Ok(Case::new(g, f))
}

fn nn() -> Result<Case> {
    let mut g = Graph::new();
    let x = nhwc(&mut g)?;
    let w: Vec<f32> = (0..24).map(|i| (i as f32 * 0.11).cos()).collect();
    let w = f32s(&mut g, &[2, 2, 2, 3], &w)?;
    let conv = g.conv2d(x, w, &[1, 1, 1, 1], "SAME")?;
    let b = f32s(&mut g, &[3], &[0.1, -0.2, 0.3])?;
    let biased = g.bias_add(conv, b)?;
    let pooled = g.max_pool(x, &[1, 2, 2, 1], &[1, 2, 2, 1], "VALID")?;
    let avg = g.avg_pool(x, &[1, 2, 2, 1], &[1, 2, 2, 1], "VALID")?;
    let in_sizes = i32s(&mut g, &[1, 4, 4, 2])?;
    let f_sizes = i32s(&mut g, &[2, 2, 2, 3])?;
    let logits = m23(&mut g)?;
    let labels = f32s(&mut g, &[2, 3], &[0.0, 1.0, 0.0, 0.5, 0.0, 0.5])?;
    let sparse = g.constant(Tensor::vector(vec![2i64, 0]))?;
    let (loss, backprop) = g.softmax_cross_entropy_with_logits(logits, labels)?;
    let (sloss, sbackprop) = g.sparse_softmax_cross_entropy_with_logits(logits, sparse)?;
    let f = vec![
        biased,
        g.bias_add_grad(conv)?,
        g.conv2d_dilated(x, w, &[1, 1, 1, 1], "VALID", &[1, 2, 2, 1])?,
        g.conv2d_backprop_input(in_sizes, w, conv, &[1, 1, 1, 1], "SAME", &[1, 1, 1, 1])?,
        g.conv2d_backprop_filter(x, f_sizes, conv, &[1, 1, 1, 1], "SAME", &[1, 1, 1, 1])?,
        pooled,
        avg,
        g.max_pool_grad(x, pooled, pooled, &[1, 2, 2, 1], &[1, 2, 2, 1], "VALID")?,
        g.avg_pool_grad(in_sizes, avg, &[1, 2, 2, 1], &[1, 2, 2, 1], "VALID")?,
        g.softmax(logits)?,
        g.log_softmax(logits)?,
        loss,
        backprop,
        sloss,
        sbackprop,
    ];
    Ok(Case::new(g, f))
}

fn variables() -> Result<Case> {
    let mut g = Graph::new();
    let init = m23(&mut g)?;
    // One variable per updating op: ops on a shared variable in one run have no order.
    let v = g.variable(init, "v")?;
    let w = g.variable(init, "w")?;
    let u = g.variable(init, "u")?;
    let r = g.variable(init, "r")?;
    let x = pos23(&mut g)?;
    let init_all = g.global_variables_initializer()?;
    let initialized = g.is_variable_initialized(v.var)?;
    let added = g.assign_add(v.var, x)?;
    let subbed = g.assign_sub(w.var, x)?;
    let with_default = g.placeholder_with_default(x, [None, Some(3)], "pwd")?;
    let set = g.assign(u.var, with_default)?;
    let mut case = Case::new(g, vec![initialized, added, subbed, set, r.read]);
    case.setup = vec![init_all];
    Ok(case)
}

/// The variables of the optimizer cases: each update op gets its own.
const OPTIMIZER_VARIABLES: [&str; 11] = [
    "gd", "mom", "acc", "m", "vv", "ms", "rms", "rms_ms", "rms_mom", "ada", "ada_acc",
];

/// Float32 scalars: learning rate, momentum, beta1, beta2, epsilon, rho and the beta
/// powers.
fn hyper_parameters(g: &mut Graph) -> Result<[Output; 8]> {
    let mut out = Vec::new();
    for v in [0.1, 0.9, 0.9, 0.999, 1e-7, 0.95, 0.81, 0.998] {
        out.push(g.scalar_like(DType::Float32, v)?);
    }
    Ok(out.try_into().expect("eight values"))
}

fn optimizers() -> Result<Case> {
    let mut g = Graph::new();
    let init = m23(&mut g)?;
    // Every update op gets variables of its own: ops sharing one in a run have no order.
    let mut vars = Vec::new();
    for n in OPTIMIZER_VARIABLES {
        vars.push(g.variable(init, n)?.var);
    }
    let init_all = g.global_variables_initializer()?;
    let grad = pos23(&mut g)?;
    let [lr, mo, b1, b2, eps, rho, b1p, b2p] = hyper_parameters(&mut g)?;
    let apply = |g: &mut Graph, op: &str, inputs: &[Output]| {
        g.op(op)
            .inputs(inputs)
            .attr("T", DType::Float32)
            .build_output()
    };
    let f = vec![
        apply(&mut g, "ApplyGradientDescent", &[vars[0], lr, grad])?,
        apply(&mut g, "ApplyMomentum", &[vars[1], vars[2], lr, grad, mo])?,
        apply(
            &mut g,
            "ApplyAdam",
            &[vars[3], vars[4], vars[5], b1p, b2p, lr, b1, b2, eps, grad],
        )?,
        apply(
            &mut g,
            "ApplyRMSProp",
            &[vars[6], vars[7], vars[8], lr, rho, mo, eps, grad],
        )?,
        apply(&mut g, "ApplyAdagrad", &[vars[9], vars[10], lr, grad])?,
    ];
    let mut case = Case::new(g, f);
    case.setup = vec![init_all];
    Ok(case)
}

fn control() -> Result<Case> {
    let mut g = Graph::new();
    let x = g.placeholder(DType::Float32, [Some(2)], "x")?;
    let y = g.constant(Tensor::vector(vec![1.0f32, 2.0]))?;
    let sum = g.add(x, y)?;
    let noop = g.group(&[sum.node], "after")?;
    let out = g.control_dependencies(&[noop], |g| g.identity(sum))?;
    let mut case = Case::new(g, vec![out]);
    case.feeds = vec![(x, Tensor::vector(vec![0.5f32, -1.0]))];
    Ok(case)
}

/// TensorFlow 1 control flow: a loop doubling a fed vector `n` times (Enter, Merge with
/// its back edge from NextIteration, LoopCond, Switch, Exit) and a cond on its sum.
fn tf1_control_flow() -> Result<Case> {
    let mut g = Graph::new();
    let x = g.placeholder(DType::Float32, [Some(2)], "x")?;
    let n = g.placeholder(DType::Int32, PartialShape::scalar(), "n")?;
    let zero = g.constant(0i32)?;
    let enter = |g: &mut Graph, v: Output, dtype: DType, constant: bool| {
        g.op("Enter")
            .input(v)
            .attr("T", dtype)
            .attr("frame_name", "double")
            .attr("is_constant", constant)
            .build_output()
    };
    let vars = [
        enter(&mut g, zero, DType::Int32, false)?,
        enter(&mut g, x, DType::Float32, false)?,
    ];
    let limit = enter(&mut g, n, DType::Int32, true)?;
    let merges = vars
        .iter()
        .map(|&v| g.op("Merge").inputs(&[v, v]).build())
        .collect::<Result<Vec<_>>>()?;
    let less = g.less(merges[0].output(0), limit)?;
    let pred = g.op("LoopCond").input(less).build_output()?;
    let one = g.constant(1i32)?;
    let mut exits = Vec::new();
    for (k, m) in merges.iter().enumerate() {
        let switch = g.op("Switch").inputs(&[m.output(0), pred]).build()?;
        exits.push(g.op("Exit").input(switch.output(0)).build_output()?);
        let body = g.identity(switch.output(1))?;
        let next = if k == 0 {
            g.add(body, one)?
        } else {
            g.add(body, body)?
        };
        let next = g.op("NextIteration").input(next).build_output()?;
        g.connect_back_edge(*m, 1, next)?;
    }
    let sum = g.reduce_sum(exits[1], &[0], false)?;
    let zero = g.constant(0.0f32)?;
    let positive = g.greater(sum, zero)?;
    let switch = g.op("Switch").inputs(&[exits[1], positive]).build()?;
    let negated = g.neg(switch.output(0))?;
    let merged = g.op("Merge").inputs(&[negated, switch.output(1)]).build()?;
    let mut case = Case::new(g, vec![exits[0], merged.output(0), merged.output(1)]);
    case.feeds = vec![
        (x, Tensor::vector(vec![0.5f32, -2.0])),
        (n, Tensor::scalar(3i32)),
    ];
    Ok(case)
}

/// `ParseExample` (tf.io.parse_example) and `ParseExampleV2` (TF 2's) over a fed batch of
/// serialized Examples.
fn parsing() -> Result<Case> {
    use rustflow::data::ExampleBuilder;
    use rustflow::ops::parsing::DenseFeature;
    let mut g = Graph::new();
    let serialized = g.placeholder(DType::String, [None], "serialized")?;
    let dense = DenseFeature {
        key: "x".into(),
        dtype: DType::Float32,
        shape: vec![2],
        default: Some(Tensor::from([0.0f32, -1.0])),
    };
    let parsed = g.parse_example(serialized, &[("ids", DType::Int64)], &[dense])?;
    let (indices, values, shape) = parsed.sparse[0];
    let keys =
        |g: &mut Graph, k: &[&str]| g.constant(Tensor::from_strings(&[k.len()], k.to_vec())?);
    let (names, sparse_keys, dense_keys) = (
        keys(&mut g, &[])?,
        keys(&mut g, &["ids"])?,
        keys(&mut g, &["x"])?,
    );
    let default = g.constant(Tensor::from([0.0f32, -1.0]))?;
    let v2 = g
        .op("ParseExampleV2")
        .inputs(&[serialized, names, sparse_keys, dense_keys, names, default])
        .attr("num_sparse", 1i64)
        .attr("sparse_types", vec![DType::Int64])
        .attr("Tdense", vec![DType::Float32])
        .attr(
            "dense_shapes",
            AttrValue::ShapeList(vec![PartialShape::known(&[2])]),
        )
        .attr("ragged_value_types", Vec::<DType>::new())
        .attr("ragged_split_types", Vec::<DType>::new())
        .build()?;
    let mut fetches = vec![indices, values, shape, parsed.dense[0]];
    fetches.extend((0..4).map(|i| v2.output(i)));
    let mut case = Case::new(g, fetches);
    let records = vec![
        ExampleBuilder::new()
            .float("x", &[1.0, 2.0])
            .int64("ids", &[4, 5, 6])
            .to_bytes(),
        ExampleBuilder::new().int64("ids", &[7]).to_bytes(),
    ];
    case.feeds = vec![(serialized, Tensor::from_strings(&[2], records)?)];
    Ok(case)
}

/// The ops TensorFlow 2 / Keras graphs use (issue 17).
fn keras_ops() -> Result<Case> {
    let mut g = Graph::new();
    let x = m23(&mut g)?;
    let mut fetches = g.identity_n(&[x, x])?;
    fetches.push(g.ensure_shape(x, [Some(2), Some(3)])?);
    fetches.push(g.prevent_gradient(x, "no")?);
    fetches.push(g.leaky_relu(x, 0.3)?);
    fetches.push(g.selu(x)?);
    fetches.push(g.softsign(x)?);
    fetches.push(g.erf(x)?);
    let (lo, hi) = (g.constant(-1.5f32)?, g.constant(2.5f32)?);
    fetches.push(g.clip_by_value(x, lo, hi)?);
    fetches.extend(g.split(x, 3, 1)?);
    fetches.extend(g.split_v(x, &[1, 2], 1)?);
    let (lower, upper) = (g.constant(0i64)?, g.constant(1i64)?);
    fetches.push(g.matrix_band_part(x, lower, upper)?);
    let y = pos23(&mut g)?;
    let yt = g.transpose(y, &[1, 0])?;
    fetches.push(
        g.op("Einsum")
            .inputs(&[x, yt])
            .attr("equation", AttrValue::String("ij,jk->ik".into()))
            .attr("N", 2i64)
            .attr("T", DType::Float32)
            .build_output()?,
    );
    let images = nhwc(&mut g)?;
    let size = i32s(&mut g, &[5, 3])?;
    for op in ["ResizeBilinear", "ResizeNearestNeighbor"] {
        fetches.push(
            g.op(op)
                .inputs(&[images, size])
                .attr("T", DType::Float32)
                .build_output()?,
        );
    }
    let channels = g.dtype(images);
    let c = g.spec(images).shape.dim(3).unwrap_or(1);
    let filter = g.constant(Tensor::new(
        &[2, 2, c, 2],
        (0..8 * c).map(|i| i as f32 * 0.1 - 0.3).collect(),
    )?)?;
    let depthwise = g
        .op("DepthwiseConv2dNative")
        .inputs(&[images, filter])
        .attr("T", channels)
        .attr("strides", vec![1i64, 1, 1, 1])
        .attr("padding", AttrValue::String("SAME".into()))
        .build_output()?;
    fetches.push(depthwise);
    let image_sizes = g.shape_of(images)?;
    let filter_sizes = g.shape_of(filter)?;
    for (op, inputs) in [
        (
            "DepthwiseConv2dNativeBackpropInput",
            [image_sizes, filter, depthwise],
        ),
        (
            "DepthwiseConv2dNativeBackpropFilter",
            [images, filter_sizes, depthwise],
        ),
    ] {
        fetches.push(
            g.op(op)
                .inputs(&inputs)
                .attr("T", channels)
                .attr("strides", vec![1i64, 1, 1, 1])
                .attr("padding", AttrValue::String("SAME".into()))
                .build_output()?,
        );
    }
    let ones = g.constant(Tensor::full(&[c], 1.0f32))?;
    let zeros = g.constant(Tensor::full(&[c], 0.0f32))?;
    for (op, grad_op) in [
        ("FusedBatchNorm", "FusedBatchNormGrad"),
        ("FusedBatchNormV2", "FusedBatchNormGradV2"),
        ("FusedBatchNormV3", "FusedBatchNormGradV3"),
    ] {
        let mut b = g
            .op(op)
            .inputs(&[images, ones, zeros, zeros, ones])
            .attr("T", DType::Float32)
            .attr("is_training", true);
        if op != "FusedBatchNorm" {
            b = b.attr("U", DType::Float32);
        }
        let forward = b.build()?;
        fetches.push(forward.output(0));
        // Its gradient, with the batch statistics as reserve spaces.
        let mut inputs = vec![
            forward.output(0),
            images,
            ones,
            forward.output(3),
            forward.output(4),
        ];
        if op == "FusedBatchNormV3" {
            inputs.push(forward.output(5));
        }
        let mut b = g.op(grad_op).inputs(&inputs).attr("T", DType::Float32);
        if op != "FusedBatchNorm" {
            b = b.attr("U", DType::Float32);
        }
        let grad = b.build()?;
        fetches.extend([grad.output(0), grad.output(1), grad.output(2)]);
    }
    Ok(Case::new(g, fetches))
}

/// The `ResourceApply*` updates of resource variables, each read after its update.
fn resource_optimizers() -> Result<Case> {
    let mut g = Graph::new();
    let init = m23(&mut g)?;
    let mut vars = Vec::new();
    for n in OPTIMIZER_VARIABLES {
        vars.push(g.resource_variable(init, n)?);
    }
    let init_all = g.global_variables_initializer()?;
    let grad = pos23(&mut g)?;
    let [lr, mo, b1, b2, eps, rho, b1p, b2p] = hyper_parameters(&mut g)?;
    let h: Vec<Output> = vars.iter().map(|v| v.var).collect();
    let updates = [
        ("ResourceApplyGradientDescent", vec![h[0], lr, grad]),
        ("ResourceApplyMomentum", vec![h[1], h[2], lr, grad, mo]),
        (
            "ResourceApplyAdam",
            vec![h[3], h[4], h[5], b1p, b2p, lr, b1, b2, eps, grad],
        ),
        (
            "ResourceApplyRMSProp",
            vec![h[6], h[7], h[8], lr, rho, mo, eps, grad],
        ),
        ("ResourceApplyAdagrad", vec![h[9], h[10], lr, grad]),
    ];
    let mut fetches = Vec::new();
    for (op, inputs) in updates {
        let update = g.op(op).inputs(&inputs).attr("T", DType::Float32).build()?;
        let read = g
            .op("ReadVariableOp")
            .input(inputs[0])
            .control_input(update)
            .attr("dtype", DType::Float32)
            .build_output()?;
        fetches.push(read);
    }
    let mut case = Case::new(g, fetches);
    case.setup = vec![init_all];
    Ok(case)
}

/// Resource variables (TensorFlow 2's `tf.Variable`).
fn resource_variables() -> Result<Case> {
    let mut g = Graph::new();
    let init = m23(&mut g)?;
    let x = pos23(&mut g)?;
    let handle = |g: &mut Graph, name: &str| {
        g.op("VarHandleOp")
            .attr("dtype", DType::Float32)
            .attr("shape", PartialShape::known(&[2, 3]))
            .attr("shared_name", AttrValue::String(name.into()))
            .name(name)
            .build_output()
    };
    let update = |g: &mut Graph, op: &str, h: Output, v: Output| {
        g.op(op)
            .inputs(&[h, v])
            .attr("dtype", DType::Float32)
            .build()
    };
    let (a, b) = (handle(&mut g, "a")?, handle(&mut g, "b")?);
    let setup = vec![
        update(&mut g, "AssignVariableOp", a, init)?,
        update(&mut g, "AssignVariableOp", b, init)?,
    ];
    let added = update(&mut g, "AssignAddVariableOp", a, x)?;
    let subbed = update(&mut g, "AssignSubVariableOp", b, x)?;
    let read = |g: &mut Graph, h: Output, after: NodeId| {
        g.op("ReadVariableOp")
            .input(h)
            .control_input(after)
            .attr("dtype", DType::Float32)
            .build_output()
    };
    let fetches = vec![
        read(&mut g, a, added)?,
        read(&mut g, b, subbed)?,
        g.op("VarIsInitializedOp").input(a).build_output()?,
    ];
    // Built (so it round-trips) but not run: it would free the variable.
    g.op("DestroyResourceOp").input(b).build()?;
    let mut case = Case::new(g, fetches);
    case.setup = setup;
    Ok(case)
}

fn summaries() -> Result<Case> {
    let mut g = Graph::new();
    let loss = g.placeholder(DType::Float32, PartialShape::scalar(), "loss")?;
    let w = g.constant(Tensor::from([0.5f32, -1.0, 2.0]))?;
    let s = g.scalar_summary("loss_summary", loss)?;
    let h = g.histogram_summary("w", w)?;
    let merged = g.merge_summary(&[s, h])?;
    let mut case = Case::new(g, vec![merged]);
    case.feeds = vec![(loss, Tensor::scalar(0.25f32))];
    Ok(case)
}

/// A TensorList op node of element dtype float32.
fn list_op(g: &mut Graph, op: &str, inputs: &[Output]) -> Result<Output> {
    g.op(op)
        .inputs(inputs)
        .attr("element_dtype", DType::Float32)
        .attr("shape_type", DType::Int32)
        .build_output()
}

/// `While` filling a TensorList with squares, `If` and `Case` over branch functions, and
/// their stateless twins: the functions travel in the GraphDef's library.
fn control_flow() -> Result<Case> {
    use rustflow::graph::TensorSpec;
    let mut g = Graph::new();
    let specs = [
        TensorSpec::new(DType::Int32, PartialShape::scalar()),
        TensorSpec::new(DType::Variant, PartialShape::scalar()),
    ];
    g.define_function("cond", &specs, |g, a| {
        let n = g.constant(4i32)?;
        Ok(vec![g.less(a[0], n)?])
    })?;
    g.define_function("body", &specs, |g, a| {
        let one = g.constant(1i32)?;
        let f = g.cast(a[0], DType::Float32)?;
        let sq = g.mul(f, f)?;
        let set = list_op(g, "TensorListSetItem", &[a[1], a[0], sq])?;
        Ok(vec![g.add(a[0], one)?, set])
    })?;
    let any = [TensorSpec::new(DType::Float32, PartialShape::unknown())];
    g.define_function("double", &any, |g, a| Ok(vec![g.add(a[0], a[0])?]))?;
    g.define_function("negate", &any, |g, a| Ok(vec![g.neg(a[0])?]))?;
    let scalars = g.constant(Tensor::new(&[0], Vec::<i32>::new())?)?;
    let n = g.constant(4i32)?;
    let reserved = list_op(&mut g, "TensorListReserve", &[scalars, n])?;
    let zero = g.constant(0i32)?;
    let looped = g.while_loop("cond", "body", &[zero, reserved])?;
    let stateless = g
        .op("StatelessWhile")
        .inputs(&[zero, reserved])
        .attr("T", vec![DType::Int32, DType::Variant])
        .attr("cond", AttrValue::Func("cond".into()))
        .attr("body", AttrValue::Func("body".into()))
        .build()?;
    let mut f = vec![looped[0]];
    for l in [looped[1], stateless.output(1)] {
        f.push(list_op(&mut g, "TensorListStack", &[l, scalars])?);
        f.push(list_op(&mut g, "TensorListLength", &[l])?);
        f.push(list_op(&mut g, "TensorListElementShape", &[l])?);
    }
    let x = f32s(&mut g, &[3], &[1.0, -2.0, 3.5])?;
    let from = list_op(&mut g, "TensorListFromTensor", &[x, scalars])?;
    let two = g.constant(2i32)?;
    f.push(list_op(&mut g, "TensorListGetItem", &[from, two, scalars])?);
    let item = g.constant(Tensor::scalar(7.5f32))?;
    let set = list_op(&mut g, "TensorListSetItem", &[from, two, item])?;
    f.push(list_op(&mut g, "TensorListStack", &[set, scalars])?);
    let yes = g.constant(Tensor::scalar(true))?;
    f.push(g.cond(yes, "double", "negate", &[x])?[0]);
    let no = g.constant(Tensor::scalar(false))?;
    let branch = |then: &str, other: &str| {
        vec![
            ("then_branch", AttrValue::Func(then.into())),
            ("else_branch", AttrValue::Func(other.into())),
        ]
    };
    let mut b = g.op("StatelessIf").input(no).input(x);
    for (k, v) in branch("double", "negate") {
        b = b.attr(k, v);
    }
    let stateless_if = b
        .attr("Tcond", DType::Bool)
        .attr("Tin", vec![DType::Float32])
        .attr("Tout", vec![DType::Float32])
        .build()?;
    f.push(stateless_if.output(0));
    let one = g.constant(1i32)?;
    for op in ["Case", "StatelessCase"] {
        let case = g
            .op(op)
            .input(one)
            .input(x)
            .attr("Tin", vec![DType::Float32])
            .attr("Tout", vec![DType::Float32])
            .attr(
                "branches",
                AttrValue::FuncList(vec!["double".into(), "negate".into()]),
            )
            .build()?;
        f.push(case.output(0));
    }
    Ok(Case::new(g, f))
}

/// Gradients of a `While` (x³ by a loop: `_WhileGrad` and the body's gradient function)
/// and of an `If` (an `If` over the branches' gradient functions).
fn control_flow_gradients() -> Result<Case> {
    use rustflow::graph::TensorSpec;
    let mut g = Graph::new();
    let specs = [
        TensorSpec::new(DType::Int32, PartialShape::scalar()),
        TensorSpec::new(DType::Float32, PartialShape::unknown()),
        TensorSpec::new(DType::Float32, PartialShape::unknown()),
    ];
    g.define_function("cond", &specs, |g, a| {
        let n = g.constant(3i32)?;
        Ok(vec![g.less(a[0], n)?])
    })?;
    g.define_function("body", &specs, |g, a| {
        let one = g.constant(1i32)?;
        Ok(vec![g.add(a[0], one)?, g.mul(a[1], a[2])?, a[2]])
    })?;
    let any = [TensorSpec::new(DType::Float32, PartialShape::unknown())];
    g.define_function("square", &any, |g, a| Ok(vec![g.mul(a[0], a[0])?]))?;
    g.define_function("negate", &any, |g, a| Ok(vec![g.neg(a[0])?]))?;
    let x = f32s(&mut g, &[3], &[1.0, -2.0, 3.5])?;
    let zero = g.constant(0i32)?;
    let ones = g.ones_like(x)?;
    let cube = g.while_loop("cond", "body", &[zero, ones, x])?[1];
    let yes = g.constant(Tensor::scalar(true))?;
    let squared = g.cond(yes, "square", "negate", &[x])?[0];
    let total = g.add(cube, squared)?;
    let grad = g.gradients(&[total], &[x])?[0].expect("connected");
    Ok(Case::new(g, vec![total, grad]))
}

const CASES: &[(&str, Builder)] = &[
    ("control_flow", control_flow),
    ("tf1_control_flow", tf1_control_flow),
    ("control_flow_gradients", control_flow_gradients),
    ("unary_math", unary_math),
    ("binary_math", binary_math),
    ("logic", logic),
    ("reductions", reductions),
    ("shapes", shapes),
    ("layout", layout),
    ("generators", generators),
    ("gradient_helpers", gradient_helpers),
    ("math_gradients", math_gradients),
    ("linalg", linalg),
    ("nn", nn),
    ("variables", variables),
    ("optimizers", optimizers),
    ("resource_optimizers", resource_optimizers),
    ("control", control),
    ("summaries", summaries),
    ("parsing", parsing),
    ("keras_ops", keras_ops),
    ("resource_variables", resource_variables),
];

fn run(g: &Graph, case: &Case, by_name: bool) -> Vec<Tensor> {
    let map = |o: Output| {
        if by_name {
            g.output_by_name(&case.graph.output_name(o)).unwrap()
        } else {
            o
        }
    };
    let sess = Session::new(g);
    let setup: Vec<NodeId> = case
        .setup
        .iter()
        .map(|&n| g.node_by_name(case.graph.node(n).name()).unwrap())
        .collect();
    if !setup.is_empty() {
        sess.run(&[], &[], &setup).unwrap();
    }
    let feeds: Vec<(Output, Tensor)> = case
        .feeds
        .iter()
        .map(|(o, t)| (map(*o), t.clone()))
        .collect();
    let fetches: Vec<Output> = case.fetches.iter().map(|&o| map(o)).collect();
    sess.run(&feeds, &fetches, &[]).unwrap()
}

/// Builds a case; `None` when it uses an op not registered on this branch yet.
/// Scans, stitching, reciprocal and truncated modulo, plus the elementwise gradient kernels
/// and `BroadcastGradientArgs` as the gradient pass emits them.
fn math_gradients() -> Result<Case> {
    let mut g = Graph::new();
    let x = m23(&mut g)?;
    let p = pos23(&mut g)?;
    let row = f32s(&mut g, &[3], &[0.5, -1.0, 2.0])?;
    let ids = [i32s(&mut g, &[0, 2])?, i32s(&mut g, &[1])?];
    let parts = [
        f32s(&mut g, &[2], &[1.0, 3.0])?,
        f32s(&mut g, &[1], &[2.0])?,
    ];
    let mut f = vec![
        g.cumsum(x, 1, false, false)?,
        g.cumprod(x, -1, true, true)?,
        g.dynamic_stitch(&ids, &parts)?,
        g.reciprocal(p)?,
        g.truncatemod(x, p)?,
    ];
    let acts = [
        g.relu(x)?,
        g.relu6(x)?,
        g.elu(x)?,
        g.softplus(x)?,
        g.tanh(x)?,
        g.sigmoid(x)?,
    ];
    let roots = [g.sqrt(p)?, g.rsqrt(p)?, g.reciprocal(p)?];
    let sum = g.add(x, row)?;
    let mut ys: Vec<Output> = acts.iter().chain(&roots).copied().collect();
    ys.push(sum);
    f.extend(g.gradients(&ys, &[x, p, row])?.into_iter().flatten());
    Ok(Case::new(g, f))
}

fn build(name: &str, builder: Builder) -> Option<Case> {
    match builder() {
        Ok(case) => Some(case),
        Err(e) if e.to_string().contains("Op type not registered") => {
            eprintln!("case {name} skipped: {e}");
            None
        }
        Err(e) => panic!("case {name}: {e}"),
    }
}

/// Writes one case for `graphs/tf_import_ours.py` (run by hand, not by CI): the GraphDef,
/// a manifest of setup targets, feeds and fetches, and our outputs as `.npy`.
fn export_for_tensorflow(
    dir: &std::path::Path,
    name: &str,
    case: &Case,
    bytes: &[u8],
    want: &[Tensor],
) {
    use rustflow::tensor::npy::write_npy;
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(format!("{name}.pb")), bytes).unwrap();
    let mut manifest = String::new();
    for &n in &case.setup {
        manifest.push_str(&format!("setup {}\n", case.graph.node(n).name()));
    }
    for (i, (o, t)) in case.feeds.iter().enumerate() {
        let file = format!("{name}.feed{i}.npy");
        write_npy(dir.join(&file), t).unwrap();
        manifest.push_str(&format!("feed {} {file}\n", case.graph.output_name(*o)));
    }
    for (i, (o, t)) in case.fetches.iter().zip(want).enumerate() {
        let file = format!("{name}.out{i}.npy");
        write_npy(dir.join(&file), t).unwrap();
        manifest.push_str(&format!("fetch {} {file}\n", case.graph.output_name(*o)));
    }
    std::fs::write(dir.join(format!("{name}.txt")), manifest).unwrap();
}

#[test]
fn graphs_round_trip_byte_identically_and_compute_the_same() {
    for &(name, builder) in CASES {
        let Some(case) = build(name, builder) else {
            continue;
        };
        let bytes = graph_to_bytes(&case.graph);
        let imported = import_graph_def(&parse_graph_def(&bytes).unwrap(), None).unwrap();
        for (_, n) in imported.nodes() {
            assert!(
                !unsupported::is_unsupported(n),
                "case {name}: node {} ({}) imported as unsupported: {:?}",
                n.name(),
                n.op_type(),
                unsupported::unsupported_node(n).map(|u| u.reason)
            );
        }
        assert_eq!(
            graph_to_bytes(&imported),
            bytes,
            "case {name}: re-export differs"
        );
        let want = run(&case.graph, &case, false);
        let got = run(&imported, &case, true);
        if let Some(dir) = std::env::var_os("RUSTFLOW_EXPORT_DIR") {
            export_for_tensorflow(std::path::Path::new(&dir), name, &case, &bytes, &want);
        }
        for (i, (a, b)) in want.iter().zip(&got).enumerate() {
            let same_bits = |a: &Tensor, b: &Tensor| match a.dtype() {
                DType::String => a == b,
                _ => a
                    .to_f64_vec()
                    .iter()
                    .zip(b.to_f64_vec())
                    .all(|(x, y)| x.to_bits() == y.to_bits()),
            };
            assert!(
                a.dtype() == b.dtype() && a.shape() == b.shape() && same_bits(a, b),
                "case {name}, fetch {i}: {a:?} != {b:?}"
            );
        }
    }
}

#[test]
fn every_op_has_a_round_trip_case() {
    let mut covered = BTreeSet::new();
    for &(name, builder) in CASES {
        if let Some(case) = build(name, builder) {
            covered.extend(case.graph.nodes().map(|(_, n)| n.op_type()));
        }
    }
    let missing: Vec<&str> = registry::all_ops()
        .iter()
        .map(|op| op.name())
        .filter(|n| !covered.contains(n))
        .collect();
    assert!(
        missing.is_empty(),
        "registered ops without a GraphDef round-trip case in tests/proto_roundtrip.rs: {}",
        missing.join(", ")
    );
}

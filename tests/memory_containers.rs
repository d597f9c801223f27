//! Small tensors that a container keeps count against `max_memory_bytes`: a loop that
//! fills a TensorList with scalars, a reserved list of a million slots, and the
//! iterations a `While` gradient keeps each fail under a small limit with an error naming
//! the node, where before they grew uncounted (each tensor is under the 4 KiB a kernel's
//! output is charged from). Under the same limit, the same graphs with few iterations run
//! and give everything back.

use rustflow::{AttrValue, DType, Error, Graph, Output, PartialShape, Session, SessionOptions};
use rustflow::{Tensor, TensorSpec};

/// 256 KiB: room for a few thousand kept scalars.
const LIMIT: usize = 256 << 10;

fn session(g: &Graph) -> Session {
    Session::with_options(
        g,
        SessionOptions {
            max_memory_bytes: LIMIT,
            ..SessionOptions::with_threads(1)
        },
    )
}

/// Scalar function arguments of `dtypes`.
fn scalars(dtypes: &[DType]) -> Vec<TensorSpec> {
    dtypes
        .iter()
        .map(|&d| TensorSpec::new(d, PartialShape::scalar()))
        .collect()
}

/// A scalar placeholder.
fn scalar_input(g: &mut Graph, dtype: DType, name: &str) -> Output {
    g.placeholder(dtype, PartialShape::scalar(), name).unwrap()
}

/// A `While` loop of `n` iterations (fed) that sets item i of a float32 list to i,
/// growing the list by one each time (TensorListSetItem with resize, as a Keras RNN's
/// output list does); returns the loop's list and its length.
fn list_filling_loop(g: &mut Graph) -> (Output, Output, Output) {
    let specs = scalars(&[DType::Int32, DType::Int32, DType::Variant]);
    g.define_function("below_n", &specs, |g, a| Ok(vec![g.less(a[0], a[1])?]))
        .unwrap();
    g.define_function("set_next", &specs, |g, a| {
        let one = g.constant(1i32)?;
        let value = g.cast(a[0], DType::Float32)?;
        let list = g
            .op("TensorListSetItem")
            .name("set_item")
            .inputs(&[a[2], a[0], value])
            .attr("element_dtype", DType::Float32)
            .attr("resize_if_index_out_of_bounds", AttrValue::Bool(true))
            .build_output()?;
        Ok(vec![g.add(a[0], one)?, a[1], list])
    })
    .unwrap();
    let n = scalar_input(g, DType::Int32, "n");
    let zero = g.constant(0i32).unwrap();
    let shape = g
        .constant(Tensor::new(&[0], Vec::<i32>::new()).unwrap())
        .unwrap();
    let empty = g
        .op("TensorListReserve")
        .inputs(&[shape, zero])
        .attr("element_dtype", DType::Float32)
        .build_output()
        .unwrap();
    let outs = g
        .while_loop("below_n", "set_next", &[zero, n, empty])
        .unwrap();
    let len = g
        .op("TensorListLength")
        .input(outs[2])
        .build_output()
        .unwrap();
    (n, outs[2], len)
}

#[test]
fn a_loop_filling_a_list_with_scalars_is_bounded_by_the_memory_limit() {
    let mut g = Graph::new();
    let (n, list, len) = list_filling_loop(&mut g);
    let sess = session(&g);
    // 100 items fit; the list's charge is given back when the fetched list drops.
    let out = sess
        .run(&[(n, Tensor::scalar(100i32))], &[len, list], &[])
        .unwrap();
    assert_eq!(out[0], Tensor::scalar(100i32));
    assert!(sess.memory_in_use() > 100 * 4, "{}", sess.memory_in_use());
    drop(out);
    assert_eq!(sess.memory_in_use(), 0);
    // A million do not: the run stops at the item that goes over.
    let err = sess
        .run(&[(n, Tensor::scalar(1_000_000i32))], &[len], &[])
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("'set_item' (op TensorListSetItem)") && msg.contains("memory limit"),
        "{msg}"
    );
    assert_eq!(sess.memory_in_use(), 0);
}

#[test]
fn a_reserved_list_charges_its_slots() {
    let mut g = Graph::new();
    let n = scalar_input(&mut g, DType::Int32, "n");
    let shape = g.constant(Tensor::scalar(-1i32)).unwrap();
    let list = g
        .op("TensorListReserve")
        .name("reserve")
        .inputs(&[shape, n])
        .attr("element_dtype", DType::Float32)
        .build_output()
        .unwrap();
    let sess = session(&g);
    sess.run(&[(n, Tensor::scalar(1000i32))], &[list], &[])
        .unwrap();
    let err = sess
        .run(&[(n, Tensor::scalar(1_000_000i32))], &[list], &[])
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, Error::ResourceExhausted(_))
            && msg.contains("node 'reserve' (op TensorListReserve)")
            && msg.contains("memory limit"),
        "{msg}"
    );
}

#[test]
fn a_while_gradient_keeping_every_iteration_is_bounded_by_the_memory_limit() {
    // acc_{k+1} = acc_k * 1.001 for n iterations: d acc_n / d acc_0 = 1.001^n.
    let mut g = Graph::new();
    let specs = scalars(&[DType::Int32, DType::Int32, DType::Float32]);
    g.define_function("below", &specs, |g, a| Ok(vec![g.less(a[0], a[1])?]))
        .unwrap();
    g.define_function("grow", &specs, |g, a| {
        let one = g.constant(1i32)?;
        let rate = g.constant(1.001f32)?;
        Ok(vec![g.add(a[0], one)?, a[1], g.mul(a[2], rate)?])
    })
    .unwrap();
    let n = scalar_input(&mut g, DType::Int32, "n");
    let x = scalar_input(&mut g, DType::Float32, "x");
    let zero = g.constant(0i32).unwrap();
    let y = g.while_loop("below", "grow", &[zero, n, x]).unwrap()[2];
    let grad = g.gradients(&[y], &[x]).unwrap()[0].unwrap();
    let sess = session(&g);
    let feed = |k: i32| [(n, Tensor::scalar(k)), (x, Tensor::scalar(2f32))];
    let out = sess.run(&feed(100), &[grad], &[]).unwrap();
    let want = 1.001f64.powi(100);
    assert!(
        (f64::from(out[0].scalar_value::<f32>().unwrap()) - want).abs() < 1e-4,
        "{:?} vs {want}",
        out[0]
    );
    let err = sess.run(&feed(1_000_000), &[grad], &[]).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, Error::ResourceExhausted(_))
            && msg.contains("_WhileGrad")
            && msg.contains("keeping iteration")
            && msg.contains("'grow' for its gradient")
            && msg.contains("memory limit"),
        "{msg}"
    );
    assert_eq!(sess.memory_in_use(), 0);
}

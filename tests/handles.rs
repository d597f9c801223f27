//! Handles know their graph: an `Output` or node of one graph used with another graph, or
//! with a session over another graph, is an error saying so (TensorFlow's "Tensor must be
//! from the same graph"), even where the same index exists in both.

use rustflow::{DType, Graph, Session, Tensor};

/// Two graphs whose node 0 is a float constant: the same index in each.
fn two_graphs() -> (Graph, Graph) {
    let mut g1 = Graph::new();
    g1.constant(Tensor::scalar(1.0f32)).unwrap();
    let mut g2 = Graph::new();
    g2.constant(Tensor::scalar(2.0f32)).unwrap();
    (g1, g2)
}

#[test]
fn fetching_a_tensor_of_another_graph_is_an_error() {
    let (g1, g2) = two_graphs();
    let b = g2.node_by_name("Const").unwrap().output(0);
    let sess = Session::new(&g1);
    let err = sess.run(&[], &[b], &[]).unwrap_err().to_string();
    assert!(err.contains("another graph"), "{err}");
    assert!(err.contains("same graph"), "{err}");
    // As a feed and as a target too.
    let err = sess
        .run(&[(b, Tensor::scalar(3.0f32))], &[], &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("feed 0 is from another graph"), "{err}");
    let err = sess.run(&[], &[], &[b.node]).unwrap_err().to_string();
    assert!(err.contains("target 0 is from another graph"), "{err}");
    // The graph's own tensor is fine, from the graph or a clone of it.
    let a = g1.node_by_name("Const").unwrap().output(0);
    assert_eq!(sess.run(&[], &[a], &[]).unwrap()[0], Tensor::scalar(1.0f32));
    let copy = g1.clone();
    assert_eq!(
        Session::new(&copy).run(&[], &[a], &[]).unwrap()[0],
        Tensor::scalar(1.0f32)
    );
}

#[test]
fn building_on_a_tensor_of_another_graph_is_an_error() {
    let (mut g1, g2) = two_graphs();
    let a = g1.node_by_name("Const").unwrap().output(0);
    let b = g2.node_by_name("Const").unwrap().output(0);
    let err = g1.add(a, b).unwrap_err().to_string();
    assert!(
        err.contains("input 1") && err.contains("another graph"),
        "{err}"
    );
    let err = g1
        .op("NoOp")
        .control_input(b.node)
        .build()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("control input") && err.contains("another graph"),
        "{err}"
    );
    let err = g1.gradients(&[a], &[b]).unwrap_err().to_string();
    assert!(
        err.contains("xs[0]") && err.contains("another graph"),
        "{err}"
    );
    assert!(!g1.contains(b.node));
}

#[test]
fn extend_and_callables_belong_to_their_graph_and_session() {
    let (g1, g2) = two_graphs();
    let sess = Session::new(&g1);
    let err = sess.extend(&g2).unwrap_err().to_string();
    assert!(err.contains("another graph"), "{err}");
    let a = g1.node_by_name("Const").unwrap().output(0);
    let other = Session::new(&g1);
    let callable = other.make_callable(&[], &[a], &[]).unwrap();
    let err = sess
        .run_callable(&callable, vec![])
        .unwrap_err()
        .to_string();
    assert!(err.contains("another session"), "{err}");
    assert_eq!(
        other.run_callable(&callable, vec![]).unwrap()[0],
        Tensor::scalar(1.0f32)
    );
}

#[test]
fn grad_with_respect_to_an_integer_source_agrees_with_gradients() {
    let mut g = Graph::new();
    let x = g.placeholder(DType::Int32, [2], "x").unwrap();
    let xf = g.cast(x, DType::Float32).unwrap();
    let y = g.square(xf).unwrap();
    // tf.gradients: None for an integer source.
    assert_eq!(g.gradients(&[y], &[x]).unwrap(), vec![None]);
    // jax.grad: no integer zeros, an error naming the source and its dtype.
    let err = g.grad(y, x).unwrap_err().to_string();
    assert!(err.contains("'x:0'") && err.contains("int32"), "{err}");
    let err = g.vjp(&[y], &[x], &[y]).unwrap_err().to_string();
    assert!(err.contains("int32"), "{err}");
    // A float source still works.
    let dx = g.grad(y, xf).unwrap();
    let out = Session::new(&g)
        .run(&[(x, Tensor::from([1i32, 3]))], &[dx], &[])
        .unwrap();
    assert_eq!(out[0], Tensor::from([2.0f32, 6.0]));
}

//! Array ops composed the way models use them, run by the multi-threaded executor with
//! shapes known only when fed.

use rustflow::ops::array::StridedSliceMasks;
use rustflow::{DType, Graph, Session, SessionOptions, Tensor};

#[test]
fn image_batch_pipeline_with_dynamic_batch() {
    let mut g = Graph::new();
    // x: [batch, 2, 3] int32
    let x = g
        .placeholder(DType::Int32, [None, Some(2), Some(3)], "x")
        .unwrap();
    let flat = g.reshape(x, &[-1, 6]).unwrap();
    let t = g.transpose(x, &[0, 2, 1]).unwrap();
    // t[:, ::-1, 0]
    let last_col = g
        .strided_slice(
            t,
            &[0, 0, 0],
            &[0, 0, 1],
            &[1, -1, 1],
            StridedSliceMasks {
                begin: 0b011,
                end: 0b011,
                shrink_axis: 0b100,
                ..Default::default()
            },
        )
        .unwrap();
    let joined = g.concat(&[flat, last_col], 1).unwrap();
    let ones = g.ones_like(joined).unwrap();
    let padded = g.pad(joined, &[[0, 0], [1, 0]]).unwrap();
    let summed_shape = g.shape_of(padded).unwrap();
    let filled = {
        let seven = g.constant(7i32).unwrap();
        g.fill(summed_shape, seven).unwrap()
    };
    assert_eq!(g.shape(joined).to_string(), "[?,9]");
    assert_eq!(g.shape(padded).to_string(), "[?,10]");
    assert_eq!(g.shape(filled).to_string(), "[?,?]");

    let sess = Session::with_options(&g, SessionOptions::with_threads(3));
    let v = Tensor::new(&[2, 2, 3], (0..12).collect::<Vec<i32>>()).unwrap();
    let out = sess
        .run(&[(x, v)], &[joined, ones, padded, filled], &[])
        .unwrap();
    // a = np.arange(12).reshape(2,2,3)
    // np.concatenate([a.reshape(-1, 6), a.transpose(0,2,1)[:, ::-1, 0]], 1)
    let want = Tensor::new(
        &[2, 9],
        vec![0, 1, 2, 3, 4, 5, 2, 1, 0, 6, 7, 8, 9, 10, 11, 8, 7, 6],
    )
    .unwrap();
    assert_eq!(out[0], want);
    assert_eq!(out[1], Tensor::new(&[2, 9], vec![1i32; 18]).unwrap());
    assert_eq!(out[2].shape(), &[2, 10]);
    assert_eq!(
        &out[2].as_slice::<i32>().unwrap()[..10],
        &[0, 0, 1, 2, 3, 4, 5, 2, 1, 0]
    );
    assert_eq!(out[3], Tensor::new(&[2, 10], vec![7i32; 20]).unwrap());
}

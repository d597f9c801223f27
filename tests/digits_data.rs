//! The examples' data loader and NumPy-compatible RandomState, checked against NumPy.

#[path = "../examples/common/mod.rs"]
mod common;

use common::{data_dir, glorot, Digits, RandomState};

#[test]
fn random_state_matches_numpy() {
    // np.random.RandomState(0).uniform(-1, 1, 3)
    let u = RandomState::new(0).uniform(-1.0, 1.0, 3);
    assert_eq!(
        u,
        vec![0.0976270078546495, 0.43037873274483895, 0.20552675214328775]
    );
    // np.random.RandomState(3).permutation(10)
    assert_eq!(
        RandomState::new(3).permutation(10),
        vec![5, 4, 1, 2, 9, 6, 7, 0, 3, 8]
    );
    // np.random.RandomState(0).permutation(1437)[:8]
    assert_eq!(
        &RandomState::new(0).permutation(1437)[..8],
        &[52, 34, 987, 1334, 517, 233, 487, 1273]
    );
    // r = RandomState(0); lim = (6/(64+128))**0.5; w = r.uniform(-lim, lim, (64,128)).astype('float32')
    // w[0,:3] = [0.017258180305361748, 0.07608093321323395, 0.03633233904838562], w[63,127] = 0.023357235
    let w = glorot(&mut RandomState::new(0), 64, 128);
    let v = w.as_slice::<f32>().unwrap();
    let first: Vec<f64> = v[..3].iter().map(|&x| x as f64).collect();
    assert_eq!(
        first,
        vec![
            0.017258180305361748,
            0.07608093321323395,
            0.03633233904838562
        ]
    );
    assert_eq!(v[64 * 128 - 1], 0.023_357_235_f32);
}

#[test]
fn digits_split_has_the_documented_sizes() {
    let d = Digits::load(&data_dir()).unwrap();
    assert_eq!((d.train_len(), d.test_y.len()), (1437, 360));
    assert_eq!(d.train_x.len(), 1437 * 64);
    assert!(d.train_x.iter().all(|&p| (0.0..=1.0).contains(&p)));
    assert!(d
        .train_y
        .iter()
        .chain(&d.test_y)
        .all(|&l| (0..10).contains(&l)));
}

//! Shared by the examples: the digits data set and NumPy's legacy `RandomState`, so the
//! examples start from the same weights and shuffle in the same order as the TensorFlow 1
//! and JAX reference runs (`../shared/anchors/bench_anchors.py`).
#![allow(dead_code)]

use rustflow::{Error, Graph, Output, Result, Tensor};
use std::path::{Path, PathBuf};

/// The digits data set, split as scikit-learn's `train_test_split(test_size=0.2,
/// random_state=0)` splits it, pixels scaled to [0, 1] (pixel / 16).
pub struct Digits {
    /// Training images, row-major `[1437, 64]`, in scikit-learn's training order.
    pub train_x: Vec<f32>,
    /// Training labels 0..9.
    pub train_y: Vec<i32>,
    /// Test images `[360, 64]`.
    pub test_x: Vec<f32>,
    /// Test labels.
    pub test_y: Vec<i32>,
}

/// Pixels per image.
pub const FEATURES: usize = 64;

/// The folder holding `digits.csv` and the split files: `$DIGITS_DATA` when set (a binary
/// run away from its checkout, as on the lent GPU machine), else the checkout's.
pub fn data_dir() -> PathBuf {
    match std::env::var_os("DIGITS_DATA") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/data"),
    }
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| Error::Io(format!("{}: {e}", path.display())))
}

fn indices(path: &Path) -> Result<Vec<usize>> {
    read(path)?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.trim()
                .parse()
                .map_err(|_| Error::Parse(format!("{}: bad index '{l}'", path.display())))
        })
        .collect()
}

impl Digits {
    /// Loads `digits.csv`, `digits_train_order.txt` and `digits_split.txt` from `dir`.
    pub fn load(dir: &Path) -> Result<Digits> {
        let csv = read(&dir.join("digits.csv"))?;
        let mut rows: Vec<(i32, Vec<f32>)> = Vec::new();
        for (n, line) in csv.lines().enumerate().skip(1) {
            let fields: Vec<&str> = line.split(',').collect();
            if fields.len() != FEATURES + 1 {
                return Err(Error::Parse(format!(
                    "digits.csv line {}: {} fields",
                    n + 1,
                    fields.len()
                )));
            }
            let parse = |s: &str| {
                s.trim()
                    .parse::<f32>()
                    .map_err(|_| Error::Parse(format!("digits.csv line {}: '{s}'", n + 1)))
            };
            let label = parse(fields[0])? as i32;
            let pixels = fields[1..]
                .iter()
                .map(|s| parse(s).map(|v| v / 16.0))
                .collect::<Result<Vec<_>>>()?;
            rows.push((label, pixels));
        }
        let pick = |idx: &[usize]| -> Result<(Vec<f32>, Vec<i32>)> {
            let mut x = Vec::with_capacity(idx.len() * FEATURES);
            let mut y = Vec::with_capacity(idx.len());
            for &i in idx {
                let (label, pixels) = rows
                    .get(i)
                    .ok_or_else(|| Error::Parse(format!("row {i} out of range")))?;
                x.extend_from_slice(pixels);
                y.push(*label);
            }
            Ok((x, y))
        };
        let (train_x, train_y) = pick(&indices(&dir.join("digits_train_order.txt"))?)?;
        let (test_x, test_y) = pick(&indices(&dir.join("digits_split.txt"))?)?;
        Ok(Digits {
            train_x,
            train_y,
            test_x,
            test_y,
        })
    }

    /// Number of training images.
    pub fn train_len(&self) -> usize {
        self.train_y.len()
    }

    /// The training rows `idx` as a `[len, 64]` image tensor and a label tensor.
    pub fn batch(&self, idx: &[usize]) -> (Tensor, Tensor) {
        let mut x = Vec::with_capacity(idx.len() * FEATURES);
        for &i in idx {
            x.extend_from_slice(&self.train_x[i * FEATURES..(i + 1) * FEATURES]);
        }
        let y: Vec<i32> = idx.iter().map(|&i| self.train_y[i]).collect();
        (
            Tensor::new(&[idx.len(), FEATURES], x).expect("sizes match"),
            Tensor::vector(y),
        )
    }

    /// All training images `[1437, 64]` and labels `[1437]`, in scikit-learn's order.
    pub fn train_tensors(&self) -> (Tensor, Tensor) {
        (
            Tensor::new(&[self.train_len(), FEATURES], self.train_x.clone()).expect("sizes match"),
            Tensor::vector(self.train_y.clone()),
        )
    }

    /// The test images as a `[360, 64]` tensor.
    pub fn test_images(&self) -> Tensor {
        Tensor::new(&[self.test_y.len(), FEATURES], self.test_x.clone()).expect("sizes match")
    }
}

/// NumPy's legacy `np.random.RandomState(seed)` (MT19937), enough of it to reproduce
/// `uniform` and `permutation` bit for bit.
pub struct RandomState {
    mt: [u32; 624],
    index: usize,
}

impl RandomState {
    /// `RandomState(seed)` for a 32-bit integer seed (`init_genrand`).
    pub fn new(seed: u32) -> Self {
        let mut mt = [0u32; 624];
        mt[0] = seed;
        for i in 1..624 {
            mt[i] = 1_812_433_253u32
                .wrapping_mul(mt[i - 1] ^ (mt[i - 1] >> 30))
                .wrapping_add(i as u32);
        }
        RandomState { mt, index: 624 }
    }

    fn next_u32(&mut self) -> u32 {
        if self.index >= 624 {
            for i in 0..624 {
                let y = (self.mt[i] & 0x8000_0000) | (self.mt[(i + 1) % 624] & 0x7fff_ffff);
                let mut v = self.mt[(i + 397) % 624] ^ (y >> 1);
                if y & 1 != 0 {
                    v ^= 0x9908_b0df;
                }
                self.mt[i] = v;
            }
            self.index = 0;
        }
        let mut y = self.mt[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    /// `random_sample()`: a double in [0, 1) from 53 random bits.
    pub fn random_sample(&mut self) -> f64 {
        let a = (self.next_u32() >> 5) as f64;
        let b = (self.next_u32() >> 6) as f64;
        (a * 67_108_864.0 + b) / 9_007_199_254_740_992.0
    }

    /// `uniform(low, high, size=n)`.
    pub fn uniform(&mut self, low: f64, high: f64, n: usize) -> Vec<f64> {
        (0..n)
            .map(|_| low + (high - low) * self.random_sample())
            .collect()
    }

    /// A uniform integer in `[0, max]` by masked rejection (NumPy's `random_interval`).
    fn interval(&mut self, max: u32) -> u32 {
        if max == 0 {
            return 0;
        }
        let mut mask = max;
        for s in [1, 2, 4, 8, 16] {
            mask |= mask >> s;
        }
        loop {
            let v = self.next_u32() & mask;
            if v <= max {
                return v;
            }
        }
    }

    /// `permutation(n)`: a Fisher-Yates shuffle of `0..n` from the end.
    pub fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut v: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            let j = self.interval(i as u32) as usize;
            v.swap(i, j);
        }
        v
    }
}

/// Glorot-uniform weights `[fan_in, fan_out]` drawn as the anchors draw them:
/// `rng.uniform(-lim, lim, size=(fan_in, fan_out)).astype(float32)`.
pub fn glorot(rng: &mut RandomState, fan_in: usize, fan_out: usize) -> Tensor {
    let lim = (6.0 / (fan_in + fan_out) as f64).sqrt();
    let v: Vec<f32> = rng
        .uniform(-lim, lim, fan_in * fan_out)
        .into_iter()
        .map(|x| x as f32)
        .collect();
    Tensor::new(&[fan_in, fan_out], v).expect("sizes match")
}

/// The outputs of [`mlp`].
pub struct Mlp {
    /// Unscaled class scores.
    pub logits: Output,
    /// Softmax of the logits, as node `probs/Softmax`.
    pub probs: Output,
    /// Mean sparse softmax cross-entropy against the labels.
    pub loss: Output,
}

/// A ReLU MLP with layer sizes `sizes` (input first), Glorot-uniform kernels drawn from
/// `rng` layer by layer and zero biases, named as Keras names Dense layers (`dense`,
/// `dense_1`, ...; variables `kernel` and `bias`).
pub fn mlp(
    g: &mut Graph,
    x: Output,
    labels: Output,
    sizes: &[usize],
    rng: &mut RandomState,
) -> Result<Mlp> {
    let mut h = x;
    for (i, pair) in sizes.windows(2).enumerate() {
        let (fan_in, fan_out) = (pair[0], pair[1]);
        let name = if i == 0 {
            "dense".to_string()
        } else {
            format!("dense_{i}")
        };
        let z = g.name_scope(&name, |g| -> Result<Output> {
            let w0 = g.constant(glorot(rng, fan_in, fan_out))?;
            let w = g.variable(w0, "kernel")?;
            let b0 = g.constant(Tensor::full(&[fan_out], 0f32))?;
            let b = g.variable(b0, "bias")?;
            let z = g.matmul(h, w.read)?;
            g.bias_add(z, b.read)
        })?;
        h = if i + 2 < sizes.len() { g.relu(z)? } else { z };
    }
    let probs = g.name_scope("probs", |g| g.softmax(h))?;
    let (xent, _) = g.sparse_softmax_cross_entropy_with_logits(h, labels)?;
    let loss = g.reduce_mean(xent, &[0], false)?;
    Ok(Mlp {
        logits: h,
        probs,
        loss,
    })
}

/// The flags both digits examples take.
pub struct Args {
    pub optimizer: String,
    pub lr: Option<f64>,
    pub epochs: usize,
    pub threads: usize,
    pub json: bool,
    pub save: Option<String>,
    pub export_test: Option<String>,
    pub logdir: Option<String>,
    pub device: Option<String>,
}

/// An example's `main`: parses the command line (see [`parse_args`]) and runs `run` with
/// it, printing an error and exiting with status 2 (bad arguments) or 1 (a failed run).
pub fn main_with(graph_example: bool, run: fn(&Args) -> rustflow::Result<()>) {
    let args = match parse_args(graph_example) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(&args) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

/// Parses the command line; `--logdir` and `--device` are accepted only where
/// `graph_example` is set (the graph-API example).
pub fn parse_args(graph_example: bool) -> std::result::Result<Args, String> {
    let mut a = Args {
        optimizer: "sgd".into(),
        lr: None,
        epochs: 20,
        threads: 1,
        json: false,
        save: None,
        export_test: None,
        logdir: None,
        device: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--optimizer" => a.optimizer = value()?,
            "--lr" => a.lr = Some(value()?.parse().map_err(|_| "--lr needs a number")?),
            "--epochs" => a.epochs = value()?.parse().map_err(|_| "--epochs needs an integer")?,
            "--threads" => {
                a.threads = value()?.parse().map_err(|_| "--threads needs an integer")?
            }
            "--json" => a.json = true,
            "--save" => a.save = Some(value()?),
            "--export-test" => a.export_test = Some(value()?),
            "--logdir" if graph_example => a.logdir = Some(value()?),
            "--device" if graph_example => a.device = Some(value()?),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if a.optimizer != "sgd" && a.optimizer != "adam" {
        return Err(format!(
            "--optimizer must be sgd or adam, not {}",
            a.optimizer
        ));
    }
    Ok(a)
}

//! `shuffle` with TensorFlow's buffer semantics and random numbers: a buffer of
//! `buffer_size` elements, each output drawn uniformly from it and replaced by the next
//! input element, the draws made by Philox-4x32-10 seeded as `tf.data` seeds it.

use super::dataset::{Cardinality, Dataset, DatasetOp, ElementIter};
use std::collections::VecDeque;
use std::sync::Mutex;

/// The graph-level seed TensorFlow uses when only an op seed is given
/// (`random_seed.DEFAULT_GRAPH_SEED`).
const DEFAULT_GRAPH_SEED: u64 = 87_654_321;

/// TensorFlow's `random::PhiloxRandom` (Philox-4x32 with 10 rounds), read one 32-bit
/// value at a time as its `SingleSampleAdapter` reads it.
#[derive(Clone)]
pub(crate) struct Philox {
    counter: [u32; 4],
    key: [u32; 2],
    block: [u32; 4],
    used: usize,
}

impl Philox {
    /// `PhiloxRandom(seed_lo, seed_hi)`: the low seed is the key, the high one the upper
    /// half of the counter.
    pub(crate) fn new(seed_lo: u64, seed_hi: u64) -> Philox {
        Philox {
            counter: [0, 0, seed_hi as u32, (seed_hi >> 32) as u32],
            key: [seed_lo as u32, (seed_lo >> 32) as u32],
            block: [0; 4],
            used: 4,
        }
    }

    fn next_block(&mut self) -> [u32; 4] {
        let mut c = self.counter;
        let mut k = self.key;
        for round in 0..10 {
            let p0 = u64::from(0xD251_1F53u32) * u64::from(c[0]);
            let p1 = u64::from(0xCD9E_8D57u32) * u64::from(c[2]);
            c = [
                (p1 >> 32) as u32 ^ c[1] ^ k[0],
                p1 as u32,
                (p0 >> 32) as u32 ^ c[3] ^ k[1],
                p0 as u32,
            ];
            if round < 9 {
                k[0] = k[0].wrapping_add(0x9E37_79B9);
                k[1] = k[1].wrapping_add(0xBB67_AE85);
            }
        }
        // Skip one: a 128-bit increment of the counter.
        for w in self.counter.iter_mut() {
            *w = w.wrapping_add(1);
            if *w != 0 {
                break;
            }
        }
        c
    }

    /// The next 32 random bits.
    pub(crate) fn next_u32(&mut self) -> u32 {
        if self.used == 4 {
            self.block = self.next_block();
            self.used = 0;
        }
        self.used += 1;
        self.block[self.used - 1]
    }
}

/// Where each pass's seeds come from: the same pair each time, or a fresh pair drawn from a
/// generator seeded once (TensorFlow's `FixedSeedGenerator` and `RandomSeedGenerator`).
enum Seeds {
    Fixed(u64, u64),
    Reshuffle(Philox),
}

struct Shuffle {
    input: Dataset,
    buffer_size: usize,
    seeds: Mutex<Seeds>,
}

impl DatasetOp for Shuffle {
    fn iter(&self) -> ElementIter {
        let (s1, s2) = match &mut *self.seeds.lock().unwrap_or_else(|p| p.into_inner()) {
            Seeds::Fixed(a, b) => (*a, *b),
            Seeds::Reshuffle(g) => (u64::from(g.next_u32()), u64::from(g.next_u32())),
        };
        let mut rng = Philox::new(s1, s2);
        let mut input = self.input.iter();
        let mut input_done = false;
        let capacity = self.buffer_size.max(1);
        let mut buffer = VecDeque::new();
        Box::new(std::iter::from_fn(move || {
            while !input_done && buffer.len() < capacity {
                match input.next() {
                    Some(Ok(e)) => buffer.push_back(e),
                    Some(Err(e)) => return Some(Err(e)),
                    None => input_done = true,
                }
            }
            if buffer.is_empty() {
                return None;
            }
            let offset = rng.next_u32() as usize % buffer.len();
            buffer.swap(0, offset);
            buffer.pop_front().map(Ok)
        }))
    }

    fn cardinality(&self) -> Cardinality {
        self.input.cardinality()
    }
}

/// A seed from the operating system's randomness, for `shuffle` without a seed.
pub(crate) fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(std::process::id().into());
    h.finish()
}

impl Dataset {
    /// Shuffles with a buffer of `buffer_size` elements (`Dataset.shuffle`): the first
    /// output is drawn uniformly from the first `buffer_size` inputs, and each output's
    /// place in the buffer is refilled by the next input, so a buffer at least as large as
    /// the dataset gives a uniform permutation.
    ///
    /// With `seed = Some(s)` the order is reproducible, and is the order `tf.data` gives
    /// `shuffle(buffer_size, seed=s, reshuffle_each_iteration=...)` when no global seed is
    /// set. With `reshuffle_each_iteration` each pass (each `iter()` or repetition) draws a
    /// new order from the seed's sequence; otherwise every pass repeats the first order.
    pub fn shuffle(
        &self,
        buffer_size: usize,
        seed: Option<u64>,
        reshuffle_each_iteration: bool,
    ) -> Dataset {
        let (s1, s2) = match seed {
            // TensorFlow's `random_seed.get_seed`: op seeds are taken modulo 2^31 - 1.
            Some(s) => (DEFAULT_GRAPH_SEED, s % 0x7fff_ffff),
            None => (random_seed(), random_seed()),
        };
        let seeds = if reshuffle_each_iteration {
            Seeds::Reshuffle(Philox::new(s1, s2))
        } else {
            Seeds::Fixed(s1, s2)
        };
        Dataset::new(Shuffle {
            input: self.clone(),
            buffer_size,
            seeds: Mutex::new(seeds),
        })
    }
}

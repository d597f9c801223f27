//! TensorFlow's Philox4x32-10 generator and the conversions of its random words into
//! floats (`tensorflow/core/lib/random/philox_random.h` and `random_distributions.h`), so
//! that seeded random ops produce TensorFlow's values.

/// Philox4x32-10: a 128-bit counter encrypted with a 64-bit key in ten rounds; each block
/// is four random `u32` words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Philox {
    counter: [u32; 4],
    key: [u32; 2],
}

const ROUND_A: u32 = 0xD251_1F53;
const ROUND_B: u32 = 0xCD9E_8D57;
const KEY_A: u32 = 0x9E37_79B9;
const KEY_B: u32 = 0xBB67_AE85;

impl Philox {
    /// TensorFlow's `PhiloxRandom(seed_lo, seed_hi)`: `seed_lo` is the key, `seed_hi` the
    /// upper half of the counter (the ops pass their `seed` and `seed2` attrs).
    pub fn new(seed_lo: u64, seed_hi: u64) -> Philox {
        Philox {
            counter: [0, 0, seed_hi as u32, (seed_hi >> 32) as u32],
            key: [seed_lo as u32, (seed_lo >> 32) as u32],
        }
    }

    /// The next block of four words; advances the counter by one.
    pub fn next_block(&mut self) -> [u32; 4] {
        let mut c = self.counter;
        let mut k = self.key;
        for round in 0..10 {
            if round > 0 {
                k[0] = k[0].wrapping_add(KEY_A);
                k[1] = k[1].wrapping_add(KEY_B);
            }
            let p0 = u64::from(ROUND_A) * u64::from(c[0]);
            let p1 = u64::from(ROUND_B) * u64::from(c[2]);
            c = [
                (p1 >> 32) as u32 ^ c[1] ^ k[0],
                p1 as u32,
                (p0 >> 32) as u32 ^ c[3] ^ k[1],
                p0 as u32,
            ];
        }
        self.skip(1);
        c
    }

    /// Advances the 128-bit counter by `count` blocks (TensorFlow's `Skip`, carries and all).
    pub fn skip(&mut self, count: u64) {
        let count_lo = count as u32;
        let mut count_hi = (count >> 32) as u32;
        self.counter[0] = self.counter[0].wrapping_add(count_lo);
        if self.counter[0] < count_lo {
            count_hi = count_hi.wrapping_add(1);
        }
        self.counter[1] = self.counter[1].wrapping_add(count_hi);
        if self.counter[1] < count_hi {
            self.counter[2] = self.counter[2].wrapping_add(1);
            if self.counter[2] == 0 {
                self.counter[3] = self.counter[3].wrapping_add(1);
            }
        }
    }
}

/// Hands out a generator's words one at a time (TensorFlow's `SingleSampleAdapter`).
struct Words {
    gen: Philox,
    block: [u32; 4],
    used: usize,
}

impl Words {
    fn new(gen: Philox) -> Words {
        Words {
            gen,
            block: [0; 4],
            used: 4,
        }
    }

    fn next(&mut self) -> u32 {
        if self.used == 4 {
            self.block = self.gen.next_block();
            self.used = 0;
        }
        let w = self.block[self.used];
        self.used += 1;
        w
    }
}

/// A float type TensorFlow's Philox distributions produce.
pub trait PhiloxFloat: Copy + Default + PartialOrd + std::ops::Neg<Output = Self> {
    /// Words per uniform sample: 1 for f32, 2 for f64 (so a block gives 4 or 2 samples).
    const WORDS: usize;
    /// TensorFlow's truncation bound for `TruncatedNormal` (two standard deviations).
    const TRUNCATE: Self;
    /// `Uint32ToFloat` / `Uint64ToDouble`: a uniform value in `[0, 1)` from the mantissa
    /// bits of `WORDS` words.
    fn unit(words: &[u32]) -> Self;
    /// `BoxMullerFloat` / `BoxMullerDouble`: two standard normals from `2 * WORDS` words.
    fn box_muller(words: &[u32]) -> [Self; 2];
}

impl PhiloxFloat for f32 {
    const WORDS: usize = 1;
    const TRUNCATE: f32 = 2.0;
    fn unit(words: &[u32]) -> f32 {
        f32::from_bits(0x3f80_0000 | (words[0] & 0x007f_ffff)) - 1.0
    }
    fn box_muller(words: &[u32]) -> [f32; 2] {
        let u1 = f32::unit(&words[0..1]).max(1.0e-7);
        // TensorFlow computes `2.0f * M_PI * u` in double (M_PI is a double) and rounds.
        let v1 = (2.0 * std::f64::consts::PI * f64::from(f32::unit(&words[1..2]))) as f32;
        let u2 = (-2.0f32 * u1.ln()).sqrt();
        [v1.sin() * u2, v1.cos() * u2]
    }
}

impl PhiloxFloat for f64 {
    const WORDS: usize = 2;
    const TRUNCATE: f64 = 2.0;
    fn unit(words: &[u32]) -> f64 {
        let mantissa = (u64::from(words[0] & 0x000f_ffff) << 32) | u64::from(words[1]);
        f64::from_bits(0x3ff0_0000_0000_0000 | mantissa) - 1.0
    }
    fn box_muller(words: &[u32]) -> [f64; 2] {
        let u1 = f64::unit(&words[0..2]).max(1.0e-7);
        let v1 = 2.0 * std::f64::consts::PI * f64::unit(&words[2..4]);
        let u2 = (-2.0 * u1.ln()).sqrt();
        [v1.sin() * u2, v1.cos() * u2]
    }
}

/// The distributions of TensorFlow's stateful random ops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Distribution {
    /// `RandomUniform`: `[0, 1)`.
    Uniform,
    /// `RandomStandardNormal`: Box-Muller on pairs.
    Normal,
    /// `TruncatedNormal`: standard normals, resampling those outside two stddevs.
    TruncatedNormal,
}

/// 128-bit blocks TensorFlow reserves per output value (`PhiloxRandomOp` calls
/// `ReserveRandomOutputs(n, 256)`; `TruncatedNormal` groups also start this far apart).
pub const BLOCKS_PER_OUTPUT: u64 = 256;

/// Fills `out` from generator state `gen` exactly as TensorFlow's `FillPhiloxRandom` does:
/// output groups of `4 / WORDS` values; one block per group for the fixed-size
/// distributions; for `TruncatedNormal` group `i` draws words one by one from the state
/// skipped ahead by `i * group * 256 / 4` blocks.
pub fn fill<T: PhiloxFloat>(mut gen: Philox, dist: Distribution, out: &mut [T]) {
    let group = 4 / T::WORDS;
    match dist {
        Distribution::Uniform => {
            for chunk in out.chunks_mut(group) {
                let block = gen.next_block();
                for (o, w) in chunk.iter_mut().zip(block.chunks_exact(T::WORDS)) {
                    *o = T::unit(w);
                }
            }
        }
        Distribution::Normal => {
            for chunk in out.chunks_mut(group) {
                let block = gen.next_block();
                let pairs = block.chunks_exact(2 * T::WORDS).map(T::box_muller);
                for (o, v) in chunk.iter_mut().zip(pairs.flatten()) {
                    *o = v;
                }
            }
        }
        Distribution::TruncatedNormal => {
            let skip_per_group = group as u64 * BLOCKS_PER_OUTPUT / 4;
            for (i, chunk) in out.chunks_mut(group).enumerate() {
                let mut start = gen;
                start.skip((i as u64).wrapping_mul(skip_per_group));
                let mut words = Words::new(start);
                let mut filled = 0;
                let mut w = [0u32; 4];
                while filled < chunk.len() {
                    for x in &mut w[..2 * T::WORDS] {
                        *x = words.next();
                    }
                    for v in T::box_muller(&w[..2 * T::WORDS]) {
                        if filled < chunk.len() && -T::TRUNCATE < v && v < T::TRUNCATE {
                            chunk[filled] = v;
                            filled += 1;
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Philox;

    #[test]
    fn known_answer_for_zero_key_and_counter() {
        // Random123's kat_vectors: philox4x32 10 rounds, counter 0 and key 0.
        let mut g = Philox::new(0, 0);
        assert_eq!(
            g.next_block(),
            [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8]
        );
    }

    #[test]
    fn skip_matches_successive_blocks_and_carries() {
        let mut a = Philox::new(7, 9);
        let mut b = a;
        for _ in 0..5 {
            a.next_block();
        }
        b.skip(5);
        assert_eq!(a, b);
        // The counter carries from word 0 into word 1 and from word 1 into word 2.
        let mut c = Philox::new(1, 0);
        c.skip(u64::from(u32::MAX));
        c.skip(1);
        assert_eq!(c.counter, [0, 1, 0, 0]);
        c.skip(u64::MAX - (1 << 32) + 1);
        assert_eq!(c.counter, [0, 0, 1, 0]);
        let mut d = Philox::new(1, u64::from(u32::MAX));
        d.skip(u64::MAX);
        d.skip(1);
        assert_eq!(d.counter, [0, 0, 0, 1]);
    }
}

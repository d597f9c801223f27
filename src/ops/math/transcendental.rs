//! `tanh` and the logistic sigmoid as the Tanh and Sigmoid kernels compute them. For
//! float32 they are branch-free arithmetic (Cephes' `expf` range reduction and polynomial,
//! `tanhf`'s small-argument polynomial, selects instead of branches), so the compiler
//! vectorises a kernel's loop over them; libm's scalar `expf` / `tanhf` took 45 % of a
//! Keras LSTM's time. Both are within a few ulps of the exact values (tested against
//! float64). Float64 keeps libm.

/// The elementwise functions of the Tanh and Sigmoid kernels.
pub(super) trait Transcendental: Copy {
    /// Hyperbolic tangent.
    fn tanh_fn(self) -> Self;
    /// `1 / (1 + e^-x)`.
    fn sigmoid_fn(self) -> Self;
}

impl Transcendental for f64 {
    fn tanh_fn(self) -> f64 {
        self.tanh()
    }

    /// Evaluated so that neither branch overflows.
    fn sigmoid_fn(self) -> f64 {
        if self >= 0.0 {
            1.0 / (1.0 + (-self).exp())
        } else {
            let e = self.exp();
            e / (1.0 + e)
        }
    }
}

impl Transcendental for f32 {
    #[inline(always)]
    fn tanh_fn(self) -> f32 {
        tanh_f32(self)
    }

    #[inline(always)]
    fn sigmoid_fn(self) -> f32 {
        // e^-x is at most e^88 (the argument is clamped), so 1 + e^-x stays finite and
        // the quotient goes smoothly to 0 for very negative x.
        let s = 1.0 / (1.0 + exp_f32(-self));
        if self.is_nan() {
            self
        } else {
            s
        }
    }
}

/// `1.5 · 2^23`: adding it rounds a float32 of magnitude below 2^22 to an integer, which
/// then sits in the low bits of the sum's representation.
const ROUNDER: f32 = 12_582_912.0;

/// e^x for x in [-87, 88] (clamped there; NaN becomes e^-87, callers select it away):
/// x = n·ln2 + r with |r| ≤ ln2/2, e^r by Cephes' `expf` polynomial, 2^n put in the
/// exponent bits.
#[inline(always)]
fn exp_f32(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    let t = x * std::f32::consts::LOG2_E + ROUNDER;
    let n = t - ROUNDER;
    // ln2 in two parts (Cephes' C1 + C2), so n·C1 is exact.
    let r = (x - n * 0.693_359_4) - n * -2.121_944_4e-4;
    let p = 1.987_569_1e-4;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 5e-1;
    let er = p * (r * r) + r + 1.0;
    // n in [-126, 127]: its integer value is the low bits of t's representation.
    let n_bits = t.to_bits().wrapping_sub(ROUNDER.to_bits());
    er * f32::from_bits(n_bits.wrapping_add(127) << 23)
}

/// tanh x: Cephes' `tanhf` polynomial for |x| < 0.625, else 1 - 2 / (e^2|x| + 1) with
/// x's sign (exactly ±1 from |x| ≈ 9 on; e^2|x| is clamped at e^88).
#[inline(always)]
fn tanh_f32(x: f32) -> f32 {
    let a = x.abs();
    let z = x * x;
    let p = -5.704_988_7e-3;
    let p = p * z + 2.063_909e-2;
    let p = p * z - 5.373_971_6e-2;
    let p = p * z + 1.333_144_2e-1;
    let p = p * z - 3.333_328e-1;
    // On |x| with x's sign after, so tanh(-0) is -0.
    let small = (p * z * a + a).copysign(x);
    let large = (1.0 - 2.0 / (exp_f32(2.0 * a) + 1.0)).copysign(x);
    if a < 0.625 {
        small
    } else if x.is_nan() {
        x
    } else {
        large
    }
}

#[cfg(test)]
mod tests {
    use super::Transcendental;

    /// Every 97th float32 of magnitude up to 30 (about 23 million values, both signs),
    /// plus the edges.
    fn samples() -> impl Iterator<Item = f32> {
        (0..=30f32.to_bits())
            .step_by(97)
            .flat_map(|b| [f32::from_bits(b), -f32::from_bits(b)])
            .chain([0.0, -0.0, 0.625, -0.625, 88.0, -88.0, 1e30, -1e30])
    }

    /// Error in units of float32's spacing at the exact value (the ulp), with an
    /// absolute floor for values that underflow.
    fn ulps(got: f32, exact: f64) -> f64 {
        let spacing = (exact.abs().max(1e-30) * f64::from(f32::EPSILON)).max(1e-45);
        (f64::from(got) - exact).abs() / spacing
    }

    #[test]
    fn float32_tanh_is_within_a_few_ulps() {
        let worst = samples()
            .map(|x| ulps(x.tanh_fn(), f64::from(x).tanh()))
            .fold(0f64, f64::max);
        assert!(worst <= 4.0, "worst error {worst} ulps");
        assert_eq!(1e30f32.tanh_fn(), 1.0);
        assert_eq!((-1e30f32).tanh_fn(), -1.0);
        assert_eq!(f32::INFINITY.tanh_fn(), 1.0);
        assert!(f32::NAN.tanh_fn().is_nan());
        assert_eq!((-0f32).tanh_fn().to_bits(), (-0f32).to_bits());
    }

    #[test]
    fn float32_sigmoid_is_within_a_few_ulps() {
        let exact = |x: f64| 1.0 / (1.0 + (-x).exp());
        let worst = samples()
            .filter(|&x| x > -80.0)
            .map(|x| ulps(x.sigmoid_fn(), exact(f64::from(x))))
            .fold(0f64, f64::max);
        assert!(worst <= 4.0, "worst error {worst} ulps");
        // Far below, the value is tiny (e^-87 and less): only the absolute error counts.
        assert!((-1e30f32).sigmoid_fn() < 1e-37);
        assert_eq!(1e30f32.sigmoid_fn(), 1.0);
        assert!(f32::NEG_INFINITY.sigmoid_fn() < 1e-37);
        assert!(f32::NAN.sigmoid_fn().is_nan());
    }
}

//! Histograms with TensorFlow's bucket layout (`tensorflow/core/lib/histogram/histogram.cc`),
//! encoded as `tf.summary.histogram` (TensorFlow 1's `HistogramSummary` kernel) encodes them.

use crate::pb::tf;
use crate::{Error, Result};
use std::sync::OnceLock;

/// TensorFlow's default bucket right edges: `±1e-12 · 1.1^k` up to `1e20`, `±DBL_MAX` at
/// the ends and `0` in the middle (1549 edges). A value `v` falls in the first bucket whose
/// edge is greater than `v`.
pub fn default_bucket_limits() -> &'static [f64] {
    static LIMITS: OnceLock<Vec<f64>> = OnceLock::new();
    LIMITS.get_or_init(|| {
        let mut pos = Vec::new();
        let mut v = 1.0e-12;
        while v < 1.0e20 {
            pos.push(v);
            v *= 1.1;
        }
        pos.push(f64::MAX);
        let mut limits: Vec<f64> = pos.iter().rev().map(|&p| -p).collect();
        limits.push(0.0);
        limits.extend_from_slice(&pos);
        limits
    })
}

/// A histogram being filled: counts per default bucket plus min, max, count, sum and sum of
/// squares, as TensorFlow's `histogram::Histogram` keeps them.
#[derive(Clone, Debug, PartialEq)]
pub struct Histogram {
    min: f64,
    max: f64,
    num: f64,
    sum: f64,
    sum_squares: f64,
    buckets: Vec<f64>,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl Histogram {
    /// An empty histogram over [`default_bucket_limits`] (min `DBL_MAX`, max `-DBL_MAX`, as
    /// in TensorFlow).
    pub fn new() -> Self {
        Histogram {
            min: f64::MAX,
            max: -f64::MAX,
            num: 0.0,
            sum: 0.0,
            sum_squares: 0.0,
            buckets: vec![0.0; default_bucket_limits().len()],
        }
    }

    /// A histogram of `values`. A NaN or infinite value is an error, as in TensorFlow's
    /// `HistogramSummary` ("Nan in summary histogram for: TAG"); `tag` names it.
    pub fn from_values(tag: &str, values: impl IntoIterator<Item = f64>) -> Result<Self> {
        let mut h = Histogram::new();
        for v in values {
            if !v.is_finite() {
                return Err(Error::invalid(format!(
                    "{} in summary histogram for: {tag}",
                    if v.is_nan() { "Nan" } else { "Infinity" }
                )));
            }
            h.add(v);
        }
        Ok(h)
    }

    /// Adds one (finite) value.
    pub fn add(&mut self, v: f64) {
        let b = default_bucket_limits().partition_point(|&limit| limit <= v);
        // `v` above every edge (only +DBL_MAX itself) goes to the last bucket.
        let b = b.min(self.buckets.len() - 1);
        self.buckets[b] += 1.0;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        self.num += 1.0;
        self.sum += v;
        self.sum_squares += v * v;
    }

    /// Number of values added.
    pub fn count(&self) -> f64 {
        self.num
    }

    /// The `HistogramProto` TensorFlow writes: each run of empty buckets collapsed into its
    /// last bucket's edge (TensorFlow's `preserve_zero_buckets = false`), and one
    /// `(DBL_MAX, 0)` bucket when there are none.
    pub fn to_proto(&self) -> tf::HistogramProto {
        let limits = default_bucket_limits();
        let mut bucket_limit = Vec::new();
        let mut bucket = Vec::new();
        let mut i = 0;
        while i < self.buckets.len() {
            let (mut end, mut count) = (limits[i], self.buckets[i]);
            i += 1;
            if count <= 0.0 {
                while i < self.buckets.len() && self.buckets[i] <= 0.0 {
                    (end, count) = (limits[i], self.buckets[i]);
                    i += 1;
                }
            }
            bucket_limit.push(end);
            bucket.push(count);
        }
        tf::HistogramProto {
            min: self.min,
            max: self.max,
            num: self.num,
            sum: self.sum,
            sum_squares: self.sum_squares,
            bucket_limit,
            bucket,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_limits_have_tensorflows_layout() {
        let l = default_bucket_limits();
        // 774 positive edges below 1e20 (1e-12 * 1.1^k), DBL_MAX, their negatives and 0.
        assert_eq!(l.len(), 2 * 775 + 1);
        assert_eq!(l[775], 0.0);
        assert_eq!(l[776], 1e-12);
        assert_eq!(l[0], -f64::MAX);
        assert_eq!(l[l.len() - 1], f64::MAX);
        assert!(l.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn buckets_match_tensorflow_for_small_values() {
        // tf.compat.v1.summary.histogram("h", [0., 1., 1., -2.]) in TensorFlow 2.21 writes
        // these edges and counts (tests/summary.rs compares a larger case byte for byte).
        let h = Histogram::from_values("h", [0.0, 1.0, 1.0, -2.0]).unwrap();
        let p = h.to_proto();
        assert_eq!(
            (p.min, p.max, p.num, p.sum, p.sum_squares),
            (-2.0, 1.0, 4.0, 0.0, 6.0)
        );
        assert_eq!(
            p.bucket_limit,
            [
                -2.1628190051144287,
                -1.9661990955585713,
                0.0,
                1e-12,
                0.917246389039776,
                1.0089710279437536,
                f64::MAX
            ]
        );
        assert_eq!(p.bucket, [0.0, 1.0, 0.0, 1.0, 0.0, 2.0, 0.0]);
    }

    #[test]
    fn empty_and_non_finite() {
        let p = Histogram::new().to_proto();
        assert_eq!((p.bucket_limit, p.bucket), (vec![f64::MAX], vec![0.0]));
        assert_eq!((p.min, p.max), (f64::MAX, -f64::MAX));
        let err = Histogram::from_values("w", [1.0, f64::NAN]).unwrap_err();
        assert!(err.to_string().contains("Nan in summary histogram for: w"));
    }
}

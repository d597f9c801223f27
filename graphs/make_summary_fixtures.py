"""Writes summaries made by TensorFlow's own summary kernels, for tests/summary.rs, which
checks that rustflow's histograms and scalars encode to the same bytes.

Usage: python3 graphs/make_summary_fixtures.py   (TensorFlow 2.x, graph mode via tf.compat.v1)

Writes graphs/fixtures/summary/:
  values.npy        float32 values (normal, wide range, zeros, negatives, one huge value)
  histogram.pb      serialized Summary of tf.compat.v1.summary.histogram("weights", values)
  scalar.pb         serialized Summary of tf.compat.v1.summary.scalar("loss", 0.25)
  merged.pb         serialized Summary of tf.compat.v1.summary.merge([scalar, histogram])
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

tf1 = tf.compat.v1
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "summary")


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(19)
    values = np.concatenate(
        [
            rng.normal(0.0, 0.3, 500),
            rng.uniform(-1e3, 1e3, 100),
            np.zeros(7),
            [1e-13, -1e-13, 3e25, -2.5, 1.0, 1.1],
        ]
    ).astype(np.float32)
    np.save(os.path.join(OUT, "values.npy"), values)
    graph = tf.Graph()
    with graph.as_default():
        h = tf1.summary.histogram("weights", tf1.constant(values))
        s = tf1.summary.scalar("loss", tf1.constant(0.25, tf.float32))
        m = tf1.summary.merge([s, h])
        with tf1.Session(graph=graph) as sess:
            hb, sb, mb = sess.run([h, s, m])
    for name, b in [("histogram.pb", hb), ("scalar.pb", sb), ("merged.pb", mb)]:
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(b)
    print("wrote", OUT, len(hb), len(sb), len(mb))


if __name__ == "__main__":
    main()

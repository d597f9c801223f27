"""Batch-1 serving_default latency of a TF2 SavedModel: TensorFlow 2's
`loaded.signatures["serving_default"]` (one intra-op and one inter-op thread) against
`rustflow bench` on the same model (one thread), alternating rounds in one sitting.

Usage: cargo build --release --bin rustflow
       python3 graphs/bench_tf2_serving.py [graphs/tf2/mlp] [--rounds 3] [--runs 2000]
(pip install tensorflow-cpu; not run by CI)
"""
import argparse
import json
import os
import subprocess
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tf_latency(fn, key, x, runs, warmup=200):
    """Median and p90 of one signature call, in microseconds."""
    feed = {key: tf.constant(x)}
    for _ in range(warmup):
        fn(**feed)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn(**feed)
        times.append(time.perf_counter() - t)
    times = np.array(times) * 1e6
    return float(np.median(times)), float(np.percentile(times, 90))


def rustflow_latency(model, key, npy, runs):
    """Median and p90 from `rustflow bench --json`, in microseconds."""
    out = subprocess.run(
        [os.path.join(ROOT, "target/release/rustflow"), "bench", model, "--input", f"{key}={npy}",
         "--runs", str(runs), "--warmup", "200", "--threads", "1", "--json"],
        check=True, capture_output=True, text=True).stdout
    r = json.loads(out)
    lat = r["latency_us"]
    return float(lat["median"]), float(lat["p90"])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("fixture", nargs="?", default=os.path.join(ROOT, "graphs/tf2/mlp"))
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--runs", type=int, default=2000)
    a = p.parse_args()
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    model = os.path.join(a.fixture, "model")
    fn = tf.saved_model.load(model).signatures["serving_default"]
    (key,) = fn.structured_input_signature[1].keys()
    x = np.load(os.path.join(a.fixture, "input.npy"))[:1]
    npy = "/tmp/bench_tf2_input.npy"
    np.save(npy, x)
    for r in range(a.rounds):
        tm, tp = tf_latency(fn, key, x, a.runs)
        rm, rp = rustflow_latency(model, key, npy, a.runs)
        print(f"round {r}: TensorFlow median {tm:.1f} us (p90 {tp:.1f}); "
              f"rustflow median {rm:.1f} us (p90 {rp:.1f}); ratio {tm / rm:.1f}x")


if __name__ == "__main__":
    main()

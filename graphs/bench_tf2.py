"""Times TensorFlow 2's `loaded.signatures["serving_default"]` on the SavedModels that
benches/tf2.rs times in rustflow, one thread each (MobileNetV2 on two), so the two can be
reported side by side (run both in the same sitting):

  mlp_batch1    graphs/tf2/mlp   (Keras MLP), the first row of input.npy
  cnn_batch1    graphs/tf2/cnn   (Keras CNN with BatchNormalization), the first image
  lstm_s32_b16  graphs/tf2/lstm64 (Keras LSTM(64) over sequences of 32 steps of 16
                features, then Dense(4); written here when missing), a batch of 16
  mobilenet_v2_b8_t2  graphs/tf2/mobilenet_v2 (Keras MobileNetV2, 96x96, alpha 0.35), a
                batch of 8 images, intra-op threads 2 (TensorFlow's threading is set once per
                process: `--threads 2 --only mobilenet_v2_b8_t2`, or run without --only to
                time the others on one thread and MobileNetV2 in a child process on two)

Usage: python3 graphs/bench_tf2.py [--runs N] [--threads T] [--only NAME]
(pip install tensorflow-cpu; not run by CI)
Prints one line per model: name, median and best time per call in microseconds.
"""
import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import subprocess  # noqa: E402
import sys  # noqa: E402

THREADS = int(sys.argv[sys.argv.index("--threads") + 1]) if "--threads" in sys.argv else 1
tf.config.threading.set_intra_op_parallelism_threads(THREADS)
tf.config.threading.set_inter_op_parallelism_threads(1)

HERE = os.path.dirname(os.path.abspath(__file__))
TF2 = os.path.join(HERE, "tf2")


def lstm64():
    """The LSTM of the issue's speed target: sequence 32, batch 16, 64 units."""
    d = os.path.join(TF2, "lstm64")
    if not os.path.exists(os.path.join(d, "model")):
        import keras
        from keras import layers

        keras.utils.set_random_seed(1)
        m = keras.Sequential([keras.Input((32, 16)), layers.LSTM(64), layers.Dense(4)])
        m.export(os.path.join(d, "model"), format="tf_saved_model", verbose=False)
    return os.path.join(d, "model")


def bench(name, path, x, runs):
    fn = tf.saved_model.load(path).signatures["serving_default"]
    (key,) = list(fn.structured_input_signature[1])
    x = tf.constant(x)
    for _ in range(20):
        fn(**{key: x})
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn(**{key: x})
        times.append(time.perf_counter() - start)
    times = np.array(times) * 1e6
    print(f"{name}: median {np.median(times):.1f} us, best {times.min():.1f} us")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=2000)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--only", default=None)
    a = p.parse_args()
    if a.only == "mobilenet_v2_b8_t2":
        images = np.random.RandomState(0).uniform(-1, 1, (8, 96, 96, 3)).astype("float32")
        model = os.path.join(TF2, "mobilenet_v2", "model")
        bench("mobilenet_v2_b8_t2", model, images, max(a.runs // 10, 20))
        return
    mlp = np.load(os.path.join(TF2, "mlp", "input.npy"))[:1]
    cnn = np.load(os.path.join(TF2, "cnn", "input.npy"))[:1]
    seq = np.random.RandomState(0).randn(16, 32, 16).astype("float32")
    bench("mlp_batch1", os.path.join(TF2, "mlp", "model"), mlp, a.runs)
    bench("cnn_batch1", os.path.join(TF2, "cnn", "model"), cnn, a.runs)
    bench("lstm_s32_b16", lstm64(), seq, max(a.runs // 20, 20))
    args = ["--runs", str(a.runs), "--threads", "2", "--only", "mobilenet_v2_b8_t2"]
    subprocess.run([sys.executable, os.path.abspath(__file__)] + args, check=True)


if __name__ == "__main__":
    main()

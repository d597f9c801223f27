"""tf.data timing of the pipeline in benches/data.rs (`data/digits_shuffle_batch_prefetch`):
from_tensor_slices((x, y)).shuffle(1000).batch(32).prefetch(2) over the digits training
arrays (1437 x 64 float32, int32 labels), rows per second over whole passes.

    python3 benches/data_vs_tfdata.py [--threads 1]

Run it in the same sitting as `cargo bench --bench data -- digits` and compare.
"""
import argparse
import pathlib
import time

import numpy as np
import tensorflow as tf

p = argparse.ArgumentParser()
p.add_argument("--threads", type=int, default=1, help="tf.data private threadpool size")
p.add_argument("--seconds", type=float, default=5.0)
args = p.parse_args()

data = pathlib.Path(__file__).resolve().parent.parent / "examples" / "data"
rows = np.loadtxt(data / "digits.csv", delimiter=",", skiprows=1, dtype=np.float32)
order = np.loadtxt(data / "digits_train_order.txt", dtype=np.int64)
x = (rows[order, 1:] / 16.0).astype(np.float32)
y = rows[order, 0].astype(np.int32)

ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(1000, seed=0).batch(32).prefetch(2)
opts = tf.data.Options()
opts.threading.private_threadpool_size = args.threads
ds = ds.with_options(opts)

for _ in range(3):  # warm up
    for _ in ds:
        pass
passes, start = 0, time.perf_counter()
while time.perf_counter() - start < args.seconds:
    n = 0
    for _, by in ds:
        n += int(by.shape[0])
    assert n == 1437
    passes += 1
elapsed = time.perf_counter() - start
print(f"tf.data {tf.__version__}: {passes} passes, {elapsed / passes * 1e3:.3f} ms/pass, "
      f"{passes * 1437 / elapsed / 1e6:.3f} M rows/s (threads={args.threads})")

#!/usr/bin/env python3
"""Prints rustflow's float32 GEMM throughput next to numpy's, measured in the same sitting.

    python3 benches/gemm_vs_numpy.py            # 1 and 2 threads, n = 256 and 1024

numpy runs in a subprocess per thread count (OPENBLAS_NUM_THREADS set before import, and
OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE removed as in ../shared/anchors); rustflow's figures come
from `cargo bench --bench matmul` (criterion ids matmul_f32/256 and matmul_f32/1024) with
RUSTFLOW_THREADS set to the same count.
"""
import os
import re
import subprocess
import sys

SIZES = (256, 1024)
NUMPY_WORKER = r"""
import sys, time, numpy as np
n = int(sys.argv[1])
a = np.random.rand(n, n).astype(np.float32); b = np.random.rand(n, n).astype(np.float32)
a @ b
reps = max(3, int(2e9 / (2 * n ** 3)))
best = float("inf")
for _ in range(5):
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    best = min(best, (time.perf_counter() - t) / reps)
print(2 * n ** 3 / best / 1e9)
"""


def numpy_gflops(n, threads):
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    env.update(OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
    out = subprocess.run([sys.executable, "-c", NUMPY_WORKER, str(n)], env=env, capture_output=True,
                         text=True, check=True)
    return float(out.stdout.strip())


def rustflow_gflops(threads):
    env = dict(os.environ, RUSTFLOW_THREADS=str(threads))
    out = subprocess.run(["cargo", "bench", "--bench", "matmul"], env=env, capture_output=True,
                         text=True, check=True).stdout
    result = {}
    for n, value, unit in re.findall(r"matmul_f32/(\d+)\s+time:.*?\n\s+thrpt:\s+\[\S+ \S+ (\S+) (\S+)", out):
        scale = {"Gelem/s": 1.0, "Melem/s": 1e-3, "Telem/s": 1e3}[unit]
        result[int(n)] = float(value) * scale
    return result


def main():
    print(f"{'n':>6} {'threads':>7} {'rustflow GFLOP/s':>17} {'numpy GFLOP/s':>14} {'ratio':>6}")
    for threads in (1, 2):
        ours = rustflow_gflops(threads)
        for n in SIZES:
            theirs = numpy_gflops(n, threads)
            mine = ours.get(n, float("nan"))
            print(f"{n:>6} {threads:>7} {mine:>17.1f} {theirs:>14.1f} {mine / theirs:>6.2f}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Prints rustflow's float32 GEMM throughput next to numpy's, measured in the same sitting.

    python3 benches/gemm_vs_numpy.py            # 1 and 2 threads, n = 256 and 1024

numpy runs in a subprocess per thread count (OPENBLAS_NUM_THREADS set before import, and
OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE removed) and is timed as ../shared/anchors times it: the
median of 9 repetitions of ~0.2 s of `np.matmul(a, b, out=c)` on standard-normal data.
rustflow's figures come from `cargo bench --bench matmul` (criterion ids matmul_f32/256 and
matmul_f32/1024, criterion's mean estimate, a fresh output per product) with RUSTFLOW_THREADS
set to the same count.
"""
import os
import re
import subprocess
import sys

SIZES = (256, 1024)
NUMPY_WORKER = r"""
import statistics, sys, time, numpy as np
n = int(sys.argv[1])
rng = np.random.RandomState(0)
a = rng.standard_normal((n, n)).astype(np.float32)
b = rng.standard_normal((n, n)).astype(np.float32)
c = np.empty((n, n), np.float32)
np.matmul(a, b, out=c)
t = time.perf_counter(); np.matmul(a, b, out=c); one = time.perf_counter() - t
inner = max(1, int(0.2 / max(one, 1e-7)))
times = []
for _ in range(9):
    t = time.perf_counter()
    for _ in range(inner):
        np.matmul(a, b, out=c)
    times.append((time.perf_counter() - t) / inner)
print(2 * n ** 3 / statistics.median(times) / 1e9)
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

#!/usr/bin/env bash
# Runs on the lent GPU machine (no Rust, no network), from the checkout's root:
#   bash .gpu/check.sh          (after gpu/build.sh here; carry: [".gpu"])
# Finds the CUDA libraries (PyTorch's wheels ship them), then: the NVRTC compile check of
# every generated kernel, the GPU-vs-CPU kernel tests, the device/placement tests, the
# digits MLP trained on the GPU, and the timings next to PyTorch's on the same card.
exec 2>&1
cd "$(dirname "$0")/.."
B=.gpu
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
dirs=$(find / -xdev \( -name 'libcublas.so*' -o -name 'libnvrtc.so*' -o -name 'libcudnn.so*' \
    -o -name 'libcublasLt.so*' \) 2>/dev/null | xargs -r -n1 dirname | sort -u | tr '\n' ':')
export LD_LIBRARY_PATH="${dirs}${LD_LIBRARY_PATH:-}"
echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
export DIGITS_DATA="$PWD/examples/data"
step() { echo; echo "== $*"; }
step "1. every generated kernel compiles with NVRTC"
timeout 120 $B/lib_tests --exact ops::cuda::tests::every_generated_kernel_compiles_with_nvrtc --nocapture
step "2. GPU kernels against the CPU kernels"
timeout 240 $B/gpu_tests --test-threads 1 --nocapture
step "3. placement and copies"
timeout 60 $B/devices_tests
step "4. digits MLP trained on the GPU (then on the CPU, for the accuracy)"
timeout 120 $B/digits_graph --device /device:GPU:0 --epochs 20
timeout 120 $B/digits_graph --epochs 20 | tail -1
step "5. timings: rustflow, then PyTorch on the same card"
timeout 120 $B/gpu_bench
RUSTFLOW_GPU_TF32=1 timeout 60 $B/gpu_bench 2>&1 | grep matmul | sed 's/^/TF32 on: /'
timeout 120 python3 $B/bench_torch.py

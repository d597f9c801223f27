#!/usr/bin/env bash
# The main job: train the digits MLP with the graph API, save it as a TensorFlow 1
# SavedModel, then run the saved model on eight test images with the `rustflow` runner.
#   ./examples/main_job.sh [OUT_DIR]      (default target/digits)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/digits}
mkdir -p "$out"
cargo run --release --example digits_graph -- --save "$out/model" --export-test "$out/test_x.npy"
echo
echo "rustflow run $out/model --input x=$out/test_x.npy"
cargo run --release --bin rustflow -- run "$out/model" --input "x=$out/test_x.npy"

#!/usr/bin/env bash
# The main job: train the digits MLP with Keras's Sequential (progress bars, test
# accuracy), save it with model.save as a SavedModel, then run the saved model on eight
# test images with the `rustflow` runner. Everything is built once, then the built
# binaries run.
#   ./examples/main_job.sh [OUT_DIR]      (default target/digits)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/digits}
mkdir -p "$out"
cargo build --release --bins --examples
bin=target/release
echo
echo "== training: $bin/examples/digits --save $out/model --export-test $out/test_x.npy"
"$bin/examples/digits" --save "$out/model" --export-test "$out/test_x.npy"
echo
echo "== running the saved model: rustflow run $out/model --input input_layer=$out/test_x.npy"
"$bin/rustflow" run "$out/model" --input "input_layer=$out/test_x.npy"
echo
echo "The model is in $out/model (saved_model.pb, variables/, keras_model.json);"
echo "the test images are in $out/test_x.npy."

#!/usr/bin/env bash
# Builds (here, where Rust and the network are) everything gpu/check.sh runs on the lent GPU
# machine and copies it into .gpu/ (git-ignored; name it in the device tool's `carry`).
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf .gpu && mkdir -p .gpu
msgs=$(cargo test --release --features cuda --no-run --message-format=json)
pick() { # the test executable of target $1 (kind $2)
    echo "$msgs" | python3 -c "
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get('reason') == 'compiler-artifact' and m['target']['name'] == '$1' \
            and '$2' in m['target']['kind'] and m.get('executable'):
        print(m['executable'])"
}
cp "$(pick gpu test)" .gpu/gpu_tests
cp "$(pick devices test)" .gpu/devices_tests
cp "$(pick rustflow lib)" .gpu/lib_tests
cargo build --release --features cuda --example digits_graph --example gpu_bench
cp target/release/examples/digits_graph target/release/examples/gpu_bench .gpu/
cp gpu/check.sh gpu/bench_torch.py .gpu/
strip .gpu/*_tests .gpu/digits_graph .gpu/gpu_bench 2>/dev/null || true
du -sh .gpu && ls -la .gpu

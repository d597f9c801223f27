#!/usr/bin/env bash
# REST predict throughput of `rustflow serve` under `wrk` (apt-get install wrk): TensorFlow
# Serving's half_plus_two and the digits MLP the main job saves (./examples/main_job.sh),
# batch-1 requests at 1, 8, 16 and 64 connections, unbatched and with --batching, and as
# the reference `GET /reference` (the hidden --reference-route: a fixed 200 body through the
# same HTTP stack and front service) right after the digits runs, in the same server.
# Each configuration is measured twice, alternating unbatched and batched.
#
#   cargo build --release --bin rustflow && benches/serve_load.sh [SECONDS]
#
# RUSTFLOW=path/to/another/rustflow measures that binary instead (an older build, to compare
# in the same sitting). MODELS (default "hp2 digits"), MODES ("unbatched batched"), CONNS
# ("1 8 16 64") and ROUNDS (2) narrow the runs, e.g. MODELS=digits CONNS="16 64" for a quick
# A/B of two builds.
#
# PIN=1 pins the server to core 0 with one REST thread (--threads 1) and wrk to core 1 with
# one thread, so that the load generator does not take the server's core: the server's CPU
# per request is then what bounds its requests/s (taskset, util-linux).
#
# Prints one line per run: model mode connections requests/s p50 p99 and the server's CPU
# time (user + system, from /proc/PID/stat over the wrk run) per request.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}
models=${MODELS:-hp2 digits}
modes=${MODES:-unbatched batched}
conns=${CONNS:-1 8 16 64}
rounds=${ROUNDS:-2}
tick=$(getconf CLK_TCK)
bin=${RUSTFLOW:-target/release/rustflow}
server_pin=()
client_pin=()
pinned_flags=()
if [ "${PIN:-0}" = 1 ]; then
    server_pin=(taskset -c 0)
    client_pin=(taskset -c 1)
    pinned_flags=(--threads 1)
fi
port=18501
tmp=$(mktemp -d)
trap 'kill "$server" 2>/dev/null || true; rm -rf "$tmp"' EXIT
server=

hp2_body='{"instances": [[1.0]]}'
digits_body=$(python3 -c 'print("{\"instances\": [[" + ", ".join(["0.5"] * 64) + "]]}")')

start() { # model dir, name, extra flags...
    local dir=$1 name=$2
    shift 2
    "${server_pin[@]}" "$bin" serve "$dir" --name "$name" --port $port --quiet --reference-route \
        "${pinned_flags[@]}" "$@" 2>"$tmp/log" &
    server=$!
    for _ in $(seq 100); do
        curl -sf "localhost:$port/v1/models/$name" >/dev/null && return
        sleep 0.1
    done
    cat "$tmp/log"
    exit 1
}

stop() {
    kill -INT "$server"
    wait "$server" || true
}

load() { # label, connections, url, body (empty: GET)
    local label=$1 c=$2 url=$3 body=$4 script=
    if [ -n "$body" ]; then
        # The JSON bodies hold no single quotes: a Lua '...' string.
        printf "wrk.method = \"POST\"\nwrk.body = '%s'\nwrk.headers[\"Content-Type\"] = \"application/json\"\n" \
            "$body" >"$tmp/post.lua"
        script="-s $tmp/post.lua"
    fi
    local threads=$((c < 2 || ${#client_pin[@]} > 0 ? 1 : 2)) before after
    before=$(cpu_ticks)
    # shellcheck disable=SC2086
    "${client_pin[@]}" wrk -t$threads -c"$c" -d"${secs}s" --latency $script "$url" >"$tmp/out"
    after=$(cpu_ticks)
    local rps p50 p99 requests cpu
    rps=$(awk '/Requests\/sec/ {print $2}' "$tmp/out")
    p50=$(awk '$1 == "50%" {print $2}' "$tmp/out")
    p99=$(awk '$1 == "99%" {print $2}' "$tmp/out")
    requests=$(awk '/requests in/ {print $1}' "$tmp/out")
    cpu=$(awk -v t=$((after - before)) -v hz="$tick" -v n="$requests" \
        'BEGIN {printf "%.1f", (n > 0 ? t / hz * 1e6 / n : 0)}')
    printf '%-28s c=%-3s %10s req/s  p50 %-9s p99 %-9s cpu %s us/req\n' \
        "$label" "$c" "$rps" "$p50" "$p99" "$cpu"
}

cpu_ticks() { # the server's user + system time so far, in clock ticks
    # Fields after the command's closing parenthesis: utime and stime are the 12th and 13th.
    sed 's/.*) //' "/proc/$server/stat" | awk '{print $12 + $13}'
}

for round in $(seq "$rounds"); do
    for mode in $modes; do
        flags=()
        [ $mode = batched ] && flags=(--batching --max-batch-size 32 --batch-timeout-micros 500)
        for model in $models; do
            if [ $model = hp2 ]; then
                start graphs/tf_serving/saved_model_half_plus_two_cpu hp2 "${flags[@]}"
                body=$hp2_body
            else
                start target/digits/model digits "${flags[@]}"
                body=$digits_body
            fi
            for c in $conns; do
                load "round $round $model $mode" "$c" \
                    "http://127.0.0.1:$port/v1/models/$model:predict" "$body"
            done
            if [ $model = digits ] && [ $mode = unbatched ]; then
                for c in 16 64; do
                    load "round $round GET /reference" "$c" "http://127.0.0.1:$port/reference" ""
                done
            fi
            stop
        done
    done
done

"""Loads rustflow's event files with TensorBoard's own reader (EventAccumulator) and checks
the scalars, a histogram and the graph. Not run by CI (needs `pip install tensorboard`).

Usage: python3 graphs/tensorboard_check.py [--keras] [LOGDIR]

Without LOGDIR it trains the digits model for 5 epochs with TensorBoard logs:
    cargo run --release --example digits_graph -- --epochs 5 --logdir target/tb_check
(with --keras: `--example digits`, the Keras model with the `TensorBoard` callback, whose
weight histograms are named as Keras names them, `dense/kernel/histogram`) and checks
target/tb_check. LOGDIR must hold `train/` and `validation/` as these examples write them. Then it starts the real `tensorboard --logdir LOGDIR` server and asks it, over
HTTP, for the Graphs tab's graph, a scalar series and a histogram (skip with --no-serve).
Exits non-zero on the first failed check.
"""
import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
from tensorboard.backend.event_processing import event_accumulator  # noqa: E402
from tensorboard.compat.proto import graph_pb2  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EPOCHS = 5


def check(cond, what):
    print(("ok    " if cond else "FAIL  ") + what)
    if not cond:
        sys.exit(1)


def load(run_dir):
    acc = event_accumulator.EventAccumulator(
        run_dir, size_guidance={event_accumulator.HISTOGRAMS: 0, event_accumulator.SCALARS: 0}
    )
    acc.Reload()
    return acc


def serve_check(logdir, kernel_tag):
    """The real TensorBoard server shows our graph, scalars and histogram."""
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", "--logdir", logdir, "--port", str(port),
         "--load_fast=false"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    base = f"http://localhost:{port}/data/plugin"

    def get(path):
        with urllib.request.urlopen(base + path, timeout=10) as r:
            return r.read().decode()

    try:
        for _ in range(120):
            try:
                info = json.loads(get("/graphs/info"))
                if info.get("train", {}).get("run_graph"):
                    break
            except OSError:
                pass
            time.sleep(0.5)
        check(info.get("train", {}).get("run_graph") is True,
              f"tensorboard server (port {port}): Graphs tab lists run 'train'")
        pbtxt = get("/graphs/graph?run=train&conversions=false")
        check('name: "dense/' in pbtxt and 'op: "MatMul"' in pbtxt,
              f"server's graph pbtxt ({len(pbtxt)} chars) has the dense/ scope and a MatMul")
        acc = json.loads(get("/scalars/scalars?run=validation&tag=epoch_accuracy"))
        print("server's validation epoch_accuracy [wall_time, step, value]:", acc[-1])
        check(len(acc) >= 2 and acc[-1][2] > 0.8, "server's scalars: validation accuracy")
        hist = json.loads(get(f"/histograms/histograms?run=train&tag={kernel_tag}"))
        counts = sum(b[2] for b in hist[-1][2])
        check(counts == 64 * 128, f"server's histogram of {kernel_tag} holds {counts:.0f} values")
    finally:
        server.terminate()
        server.wait()


def main():
    args = [a for a in sys.argv[1:] if a not in ("--no-serve", "--keras")]
    keras = "--keras" in sys.argv[1:]
    if args:
        logdir = args[0]
    else:
        logdir = os.path.join(ROOT, "target", "tb_check")
        shutil.rmtree(logdir, ignore_errors=True)
        subprocess.run(
            ["cargo", "run", "--release", "--example", "digits" if keras else "digits_graph", "--",
             "--epochs", str(EPOCHS), "--logdir", logdir],
            cwd=ROOT, check=True,
        )
    files = sorted(glob.glob(os.path.join(logdir, "*", "events.out.tfevents.*")))
    print("event files:", *[os.path.relpath(f, logdir) for f in files], sep="\n  ")
    check(len(files) == 2, "one event file per run (train, validation)")

    train, val = load(os.path.join(logdir, "train")), load(os.path.join(logdir, "validation"))
    tags = train.Tags()
    print("train tags:", {k: v for k, v in tags.items() if v})
    print("validation tags:", {k: v for k, v in val.Tags().items() if v})

    # Scalars.
    for name, acc in [("train", train), ("validation", val)]:
        loss = acc.Scalars("epoch_loss")
        accuracy = acc.Scalars("epoch_accuracy")
        print(f"{name} epoch_loss:", [(e.step, round(e.value, 4)) for e in loss])
        print(f"{name} epoch_accuracy:", [(e.step, round(e.value, 4)) for e in accuracy])
        check([e.step for e in loss] == list(range(len(loss))) and len(loss) >= 2,
              f"{name}: epoch_loss at steps 0..{len(loss) - 1}")
        check(loss[-1].value < loss[0].value, f"{name}: loss falls ({loss[0].value:.4f} -> "
              f"{loss[-1].value:.4f})")
        check(all(0.0 <= e.value <= 1.0 for e in accuracy) and accuracy[-1].value > 0.8,
              f"{name}: accuracy in [0, 1], last {accuracy[-1].value:.4f} > 0.8")
        check(all(e.wall_time > 1.6e9 for e in loss), f"{name}: wall times are Unix seconds")

    # A histogram: the first layer's kernel, 64 x 128 values.
    kernel_tag = "dense/kernel/histogram" if keras else "dense/kernel"
    check(kernel_tag in tags["histograms"], f"histogram {kernel_tag} present")
    hist = train.Histograms(kernel_tag)
    h = hist[-1].histogram_value
    print(kernel_tag, "at step", hist[-1].step, f": num {h.num:.0f} min {h.min:.4f} "
          f"max {h.max:.4f} sum {h.sum:.4f} buckets {len(h.bucket)}")
    check(h.num == 64 * 128, "histogram counts 64*128 weights")
    check(sum(h.bucket) == h.num, "bucket counts sum to num")
    check(len(h.bucket) == len(h.bucket_limit) and
          all(a < b for a, b in zip(h.bucket_limit, h.bucket_limit[1:])),
          "bucket limits increase, one per bucket")
    check(h.min < 0 < h.max and h.bucket_limit[-1] > h.max, "min < 0 < max <= last limit")
    # TensorBoard's Distributions tab derives from the same data.
    cmp = train.CompressedHistograms(kernel_tag)[-1].compressed_histogram_values
    cmp = [tuple(c) for c in cmp]  # (basis point, value) pairs
    print("compressed (basis points -> value):", [(bp, round(float(v), 4)) for bp, v in cmp])
    check(len(cmp) == 9 and cmp[0][1] == h.min and cmp[-1][1] == h.max,
          "compressed histogram spans min..max")

    # The graph.
    graph = train.Graph()
    check(isinstance(graph, graph_pb2.GraphDef), "graph_def present and parsed as GraphDef")
    names = [n.name for n in graph.node]
    scopes = sorted({n.rsplit("/", 1)[0] for n in names if "/" in n and n.count("/") == 1})
    print(f"graph: {len(names)} nodes; first scopes: {scopes[:8]}")
    if keras:
        for scope in ["dense/", "dense_1/"]:
            check(any(n.startswith(scope) for n in names), f"graph has the {scope} scope")
    else:
        for want in ["x", "y", "dense/MatMul", "dense/kernel", "probs/Softmax"]:
            check(want in names, f"graph has node {want}")
        x = next(n for n in graph.node if n.name == "x")
        shape = [d.size for d in x.attr["_output_shapes"].list.shape[0].dim]
        check(shape == [-1, 64], f"x's _output_shapes is {shape}")
    check(any(n.startswith("gradients/") for n in names), "graph has the gradients/ scope")
    if "--no-serve" not in sys.argv:
        serve_check(logdir, kernel_tag)
    print("all checks passed")


if __name__ == "__main__":
    main()

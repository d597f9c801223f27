#!/usr/bin/env python3
"""Checks that TensorFlow imports and runs the GraphDefs rustflow exports, with our results.

    RUSTFLOW_EXPORT_DIR=/tmp/ours cargo test --release --test proto_roundtrip
    python3 graphs/tf_import_ours.py /tmp/ours

For each case written by tests/proto_roundtrip.rs (one graph per op family, every registered
op at least once) it runs `tf.compat.v1.import_graph_def`, the setup targets (variable
initializers), then the fetches with the recorded feeds, and compares with rustflow's outputs
(exact for integers and bools, 1e-5 relative otherwise). Not run by CI: it needs TensorFlow.
"""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def check(directory, name):
    tf1 = tf.compat.v1
    graph_def = tf1.GraphDef()
    with open(os.path.join(directory, name + ".pb"), "rb") as f:
        graph_def.ParseFromString(f.read())
    setup, feeds, fetches = [], {}, []
    with open(os.path.join(directory, name + ".txt")) as f:
        for line in f:
            kind, *rest = line.split()
            if kind == "setup":
                setup.append(rest[0])
            elif kind == "feed":
                feeds[rest[0]] = np.load(os.path.join(directory, rest[1]))
            else:
                fetches.append((rest[0], np.load(os.path.join(directory, rest[1]))))
    with tf.Graph().as_default() as g:
        tf1.import_graph_def(graph_def, name="")
        with tf1.Session(graph=g) as sess:
            if setup:
                sess.run(setup)
            got = sess.run([t for t, _ in fetches], feed_dict=feeds)
    bad = []
    for (tensor, ours), theirs in zip(fetches, got):
        theirs = np.asarray(theirs)
        if ours.shape != theirs.shape:
            bad.append(f"{tensor}: shape {ours.shape} vs TensorFlow {theirs.shape}")
        elif ours.dtype.kind in "fc":
            if not np.allclose(ours, theirs, rtol=1e-5, atol=1e-6, equal_nan=True):
                bad.append(f"{tensor}: max diff {np.nanmax(np.abs(ours - theirs))}")
        elif not np.array_equal(ours, theirs):
            bad.append(f"{tensor}: values differ")
    return len(fetches), bad


def main():
    directory = sys.argv[1]
    names = sorted(f[:-3] for f in os.listdir(directory) if f.endswith(".pb"))
    failures = 0
    for name in names:
        try:
            n, bad = check(directory, name)
        except Exception as e:  # noqa: BLE001 - report and go on
            n, bad = 0, [f"{type(e).__name__}: {str(e).splitlines()[0]}"]
        failures += len(bad)
        status = "ok" if not bad else "FAILED"
        print(f"{name}: {n} fetches {status}")
        for b in bad:
            print("   ", b)
    print(f"{len(names)} graphs, {failures} problems")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()

"""Loads a SavedModel with TensorFlow's own loader and runs one signature.

Usage: python3 tf_load_saved_model.py [--tf2] MODEL_DIR SIGNATURE INPUT_KEY=FILE.npy ...
Without --tf2 the TF1 loader (tf.compat.v1.saved_model.loader.load in a graph-mode
session, as for what rustflow::saved_model::save writes); with --tf2, TensorFlow 2's
tf.saved_model.load and loaded.signatures[SIGNATURE] (as for a Keras model fine-tuned
in rustflow and written back with LoadedModel::save_tf2).
Prints one line of JSON: {output_key: {"shape": [...], "values": [...]}}. Used by
tests/saved_model_tf_compat.rs to check that TensorFlow restores what rustflow saves.
"""
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def as_json(names, values):
    return json.dumps({
        k: {"shape": list(np.shape(v)), "values": np.asarray(v).ravel().tolist()}
        for k, v in zip(names, values)
    })


def run_tf2(model_dir, key, feeds_by_key):
    fn = tf.saved_model.load(model_dir).signatures[key]
    out = fn(**{k: tf.constant(np.load(path)) for k, path in feeds_by_key.items()})
    names = sorted(out)
    print(as_json(names, [out[k].numpy() for k in names]))


def main():
    args = sys.argv[1:]
    tf2 = args[:1] == ["--tf2"]
    if tf2:
        args = args[1:]
    model_dir, key = args[0], args[1]
    feeds_by_key = dict(arg.split("=", 1) for arg in args[2:])
    if tf2:
        run_tf2(model_dir, key, feeds_by_key)
        return
    tf1 = tf.compat.v1
    with tf.Graph().as_default() as graph, tf1.Session(graph=graph) as sess:
        meta = tf1.saved_model.loader.load(sess, ["serve"], model_dir)
        sig = meta.signature_def[key]
        feeds = {sig.inputs[k].name: np.load(path) for k, path in feeds_by_key.items()}
        names = sorted(sig.outputs)
        values = sess.run([sig.outputs[k].name for k in names], feed_dict=feeds)
        print(as_json(names, values))


if __name__ == "__main__":
    main()

"""Loads a TF1 SavedModel with TensorFlow's own loader and runs one signature.

Usage: python3 tf_load_saved_model.py MODEL_DIR SIGNATURE INPUT_KEY=FILE.npy ...
Prints one line of JSON: {output_key: {"shape": [...], "values": [...]}}. Used by
tests/saved_model_tf_compat.rs to check that TensorFlow restores what rustflow saves.
"""
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def main():
    model_dir, key = sys.argv[1], sys.argv[2]
    feeds_by_key = dict(arg.split("=", 1) for arg in sys.argv[3:])
    tf1 = tf.compat.v1
    with tf.Graph().as_default() as graph, tf1.Session(graph=graph) as sess:
        meta = tf1.saved_model.loader.load(sess, ["serve"], model_dir)
        sig = meta.signature_def[key]
        feeds = {sig.inputs[k].name: np.load(path) for k, path in feeds_by_key.items()}
        names = sorted(sig.outputs)
        values = sess.run([sig.outputs[k].name for k in names], feed_dict=feeds)
        out = {
            k: {"shape": list(np.shape(v)), "values": np.asarray(v).ravel().tolist()}
            for k, v in zip(names, values)
        }
        print(json.dumps(out))


if __name__ == "__main__":
    main()

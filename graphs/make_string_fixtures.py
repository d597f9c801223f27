"""Writes the string-tensor fixtures under graphs/fixtures/strings/ with real TensorFlow.

Not run by CI (rustflow's tests read the committed outputs). Run from the repository root:
    python3 graphs/make_string_fixtures.py

- `checkpoint/ckpt-1.*`: a TF2 object-graph checkpoint (tf.train.Checkpoint) holding a
  string variable `words` = [b"ab", b"", b"xyz\\x00\\xff"], a float variable `x` = [1.5, -2],
  and TensorFlow's own `_CHECKPOINTABLE_OBJECT_GRAPH` string scalar: the tensor bundle's
  encoding of DT_STRING (varint lengths, a masked crc of the lengths, the bytes).
- `const.pb`: a GraphDef with a string Const [[b"a", b"bc"], [b"", b"d\\n"]] named `words`
  and a string Placeholder `p`, then Identity nodes reading them.
"""
import os

import numpy as np
import tensorflow as tf

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "strings")
os.makedirs(OUT, exist_ok=True)

ckpt = tf.train.Checkpoint(
    words=tf.Variable([b"ab", b"", b"xyz\x00\xff"]),
    x=tf.Variable(np.array([1.5, -2.0], np.float32)),
)
path = ckpt.write(os.path.join(OUT, "checkpoint", "ckpt-1"))
print("wrote", path)
for name, shape in tf.train.list_variables(path):
    print(" ", name, shape)

g = tf.Graph()
with g.as_default():
    w = tf.constant([[b"a", b"bc"], [b"", b"d\n"]], name="words")
    p = tf.compat.v1.placeholder(tf.string, [None], name="p")
    tf.identity(w, name="words_out")
    tf.identity(p, name="p_out")
with open(os.path.join(OUT, "const.pb"), "wb") as f:
    f.write(g.as_graph_def().SerializeToString())
print("wrote const.pb")

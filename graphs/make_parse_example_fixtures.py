"""Writes the ParseExampleV2 fixtures under graphs/fixtures/parse_example/ with real
TensorFlow 2 (whose tf.io.parse_example and tf.io.parse_single_example build ParseExampleV2).

Not run by CI (rustflow's tests read the committed outputs). Run from the repository root:
    python3 graphs/make_parse_example_fixtures.py

- `parse_v2.pb`: the GraphDef of a tf.function parsing a string vector `serialized` with
  features x = FixedLenFeature([2], float32) (required), label = FixedLenFeature([], int64,
  default -1), tags = VarLenFeature(string); a string Const `records` holds two examples
  serialized by TensorFlow; Identity nodes name the outputs x, label, tags_indices,
  tags_values, tags_shape.
- `parse_single_v2.pb`: the same features parsed from a string scalar `one`
  (tf.io.parse_single_example); outputs single_x, single_label, single_tags_indices,
  single_tags_values, single_tags_shape.
- `*.npy`: what TensorFlow computed for `records` (and for its first record alone).
"""
import os

import numpy as np
import tensorflow as tf

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "parse_example")
os.makedirs(OUT, exist_ok=True)

FEATURES = {
    "x": tf.io.FixedLenFeature([2], tf.float32),
    "label": tf.io.FixedLenFeature([], tf.int64, default_value=-1),
    "tags": tf.io.VarLenFeature(tf.string),
}


def example(**features):
    f = {}
    for k, v in features.items():
        if isinstance(v[0], float):
            f[k] = tf.train.Feature(float_list=tf.train.FloatList(value=v))
        elif isinstance(v[0], int):
            f[k] = tf.train.Feature(int64_list=tf.train.Int64List(value=v))
        else:
            f[k] = tf.train.Feature(bytes_list=tf.train.BytesList(value=v))
    return tf.train.Example(features=tf.train.Features(feature=f)).SerializeToString()


RECORDS = [
    example(x=[1.0, 2.0], label=[7], tags=[b"a", b"bc"]),
    example(x=[3.0, -4.5]),
]


def named(p, prefix):
    """The parsed features as Identity nodes named as the tests fetch them."""
    outputs = {
        "x": p["x"],
        "label": p["label"],
        "tags_indices": p["tags"].indices,
        "tags_values": p["tags"].values,
        "tags_shape": p["tags"].dense_shape,
    }
    return {
        prefix + k: tf.identity(v, name=prefix + k) for k, v in outputs.items()
    }


@tf.function
def parse(serialized):
    return named(tf.io.parse_example(serialized, FEATURES), "")


@tf.function
def parse_single(one):
    return named(tf.io.parse_single_example(one, FEATURES), "single_")


batch = parse.get_concrete_function(tf.TensorSpec([None], tf.string, name="serialized"))
graph_def = batch.graph.as_graph_def()
with tf.Graph().as_default() as g:
    tf.constant(RECORDS, name="records")
graph_def.node.extend(g.as_graph_def().node)
ops = sorted({n.op for n in graph_def.node})
assert "ParseExampleV2" in ops, ops
with open(os.path.join(OUT, "parse_v2.pb"), "wb") as f:
    f.write(graph_def.SerializeToString())
print("wrote parse_v2.pb:", ops)

single = parse_single.get_concrete_function(tf.TensorSpec([], tf.string, name="one"))
single_def = single.graph.as_graph_def()
ops = sorted({n.op for n in single_def.node})
assert "ParseExampleV2" in ops, ops
with open(os.path.join(OUT, "parse_single_v2.pb"), "wb") as f:
    f.write(single_def.SerializeToString())
print("wrote parse_single_v2.pb:", ops)

for name, value in parse(tf.constant(RECORDS)).items():
    if value.dtype != tf.string:
        np.save(os.path.join(OUT, name + ".npy"), value.numpy())
    print(name, value.numpy().tolist())
for name, value in parse_single(tf.constant(RECORDS[0])).items():
    if value.dtype != tf.string:
        np.save(os.path.join(OUT, name + ".npy"), value.numpy())
    print(name, value.numpy().tolist())

"""TFRecord fixtures written by real TensorFlow, and a check of a file written by rustflow.

Run from this folder with TensorFlow 2 installed (not run by CI):

    python3 make_fixtures.py

1. Writes `tf_examples.tfrecord` (four `tf.train.Example` records, see `example(i)`) and
   `tf_raw.tfrecord` (raw records: empty, one byte, 300 bytes, 70000 bytes) with
   `tf.io.TFRecordWriter`, and the raw records again compressed (`tf_raw.tfrecord.gz`,
   options "GZIP"; `tf_raw.tfrecord.zlib`, options "ZLIB"). rustflow's tests
   `data::tests::tensorflow_written_tfrecords` and
   `data::tests::tensorflow_written_compressed_tfrecords` read them.
2. Reads `rustflow_written.tfrecord` (the same four examples, written by rustflow's
   `TFRecordWriter` in the test `data::tests::rustflow_written_tfrecord_is_committed`)
   with `tf.data.TFRecordDataset` + `tf.io.parse_single_example` and checks every value;
   the same for `rustflow_written.tfrecord.gz` and `.zlib` (written by rustflow with
   GZIP / ZLIB compression in `data::tests::rustflow_written_compressed_tfrecords`),
   read with `compression_type="GZIP"` / `"ZLIB"`.
3. Prints `tf.data` shuffle orders that `data::tests::shuffle_orders_match_tensorflow`
   expects.
"""
import numpy as np
import tensorflow as tf


def example(i):
    """The i-th example: x float[3], label int64, name bytes, tokens int64[i]."""
    return {
        "x": [float(i), i + 0.5, -float(i)],
        "label": [i],
        "name": [f"rec{i}".encode()],
        "tokens": list(range(i)),
    }


def to_proto(d):
    f = tf.train.Feature
    return tf.train.Example(features=tf.train.Features(feature={
        "x": f(float_list=tf.train.FloatList(value=d["x"])),
        "label": f(int64_list=tf.train.Int64List(value=d["label"])),
        "name": f(bytes_list=tf.train.BytesList(value=d["name"])),
        "tokens": f(int64_list=tf.train.Int64List(value=d["tokens"])),
    }))


RAW = [b"", b"a", bytes(range(256)) + b"x" * 44, bytes([i % 251 for i in range(70000)])]

with tf.io.TFRecordWriter("tf_examples.tfrecord") as w:
    for i in range(4):
        w.write(to_proto(example(i)).SerializeToString())
with tf.io.TFRecordWriter("tf_raw.tfrecord") as w:
    for r in RAW:
        w.write(r)

for ext, kind in [("gz", "GZIP"), ("zlib", "ZLIB")]:
    with tf.io.TFRecordWriter(f"tf_raw.tfrecord.{ext}", options=kind) as w:
        for r in RAW:
            w.write(r)

spec = {
    "x": tf.io.FixedLenFeature([3], tf.float32),
    "label": tf.io.FixedLenFeature([], tf.int64),
    "name": tf.io.FixedLenFeature([], tf.string),
    "tokens": tf.io.VarLenFeature(tf.int64),
}
for name, kind in [("rustflow_written.tfrecord", ""),
                   ("rustflow_written.tfrecord.gz", "GZIP"),
                   ("rustflow_written.tfrecord.zlib", "ZLIB")]:
    ours = list(tf.data.TFRecordDataset(name, compression_type=kind))
    assert len(ours) == 4, len(ours)
    for i, rec in enumerate(ours):
        p = tf.io.parse_single_example(rec, spec)
        want = example(i)
        np.testing.assert_array_equal(p["x"].numpy(), np.array(want["x"], np.float32))
        assert int(p["label"]) == i
        assert p["name"].numpy() == want["name"][0]
        np.testing.assert_array_equal(tf.sparse.to_dense(p["tokens"]).numpy(), want["tokens"])
    print(f"{name}: 4 examples read by tf.data (compression {kind!r}), all values equal")

def order(ds):
    return [int(v) for v in ds]

fixed = tf.data.Dataset.range(10).shuffle(10, seed=42, reshuffle_each_iteration=False)
print("shuffle(10, seed=42, reshuffle=False):", order(fixed), order(fixed))
print("shuffle(4, seed=7, reshuffle=False):",
      order(tf.data.Dataset.range(10).shuffle(4, seed=7, reshuffle_each_iteration=False)))
re = tf.data.Dataset.range(10).shuffle(10, seed=42, reshuffle_each_iteration=True)
print("shuffle(10, seed=42, reshuffle=True):", order(re), order(re))
print("range(5).shuffle(3, seed=3).repeat(2):",
      order(tf.data.Dataset.range(5).shuffle(3, seed=3).repeat(2)))

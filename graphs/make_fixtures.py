"""Writes frozen TensorFlow GraphDefs with inputs and TensorFlow's outputs, for
tests/proto_tf_fixtures.rs, which imports each graph into rustflow, runs it on the same
inputs and compares (1e-5 relative).

Usage: python3 graphs/make_fixtures.py   (TensorFlow 2.x; graphs are built with
tf.compat.v1 in graph mode, variables with get_variable, then frozen).

Each fixture is a folder graphs/fixtures/<name>/ with
  model.pb          the frozen GraphDef (binary)
  model.pbtxt       the same in text format
  io.txt            lines "input <tensor> <file>" and "output <tensor> <file>"
  <file>.npy        the inputs, and TensorFlow's outputs
"""
import os
import re
import shutil

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

tf1 = tf.compat.v1
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")


def file_name(tensor_name):
    return re.sub(r"[^A-Za-z0-9_.-]", "_", tensor_name) + ".npy"


def write_fixture(name, build, feeds_np):
    """`build()` makes the graph's placeholders (named as in feeds_np) and returns the
    output tensors; variables are initialized, then frozen into constants."""
    graph = tf.Graph()
    with graph.as_default():
        tf1.set_random_seed(1234)
        outputs = build()
        with tf1.Session(graph=graph) as sess:
            sess.run(tf1.global_variables_initializer())
            feeds = {graph.get_tensor_by_name(k): v for k, v in feeds_np.items()}
            values = sess.run(outputs, feed_dict=feeds)
            frozen = tf1.graph_util.convert_variables_to_constants(
                sess, graph.as_graph_def(), sorted({t.op.name for t in outputs})
            )
    folder = os.path.join(OUT, name)
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    with open(os.path.join(folder, "model.pb"), "wb") as f:
        f.write(frozen.SerializeToString())
    tf.io.write_graph(frozen, folder, "model.pbtxt", as_text=True)
    lines = []
    for k, v in feeds_np.items():
        np.save(os.path.join(folder, "in_" + file_name(k)), v)
        lines.append(f"input {k} in_{file_name(k)}")
    for t, v in zip(outputs, values):
        np.save(os.path.join(folder, "out_" + file_name(t.name)), np.asarray(v))
        lines.append(f"output {t.name} out_{file_name(t.name)}")
    with open(os.path.join(folder, "io.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    ops = sorted({n.op for n in frozen.node})
    print(f"{name}: {len(frozen.node)} nodes, ops {', '.join(ops)}")


rng = np.random.RandomState(0)


def mlp():
    x = tf1.placeholder(tf.float32, [None, 6], name="x")
    init = tf1.glorot_uniform_initializer(seed=1)
    w1 = tf1.get_variable("dense/kernel", [6, 16], initializer=init)
    b1 = tf1.get_variable("dense/bias", [16], initializer=tf1.random_normal_initializer(seed=2))
    h = tf.nn.relu(tf.nn.bias_add(tf.matmul(x, w1), b1))
    w2 = tf1.get_variable("logits/kernel", [16, 4], initializer=init)
    b2 = tf1.get_variable("logits/bias", [4], initializer=tf1.zeros_initializer())
    logits = tf.nn.bias_add(tf.matmul(h, w2), b2)
    probs = tf.nn.softmax(logits, name="probs")
    return [probs, tf.argmax(logits, axis=1, name="classes")]


def cnn():
    x = tf1.placeholder(tf.float32, [None, 8, 8, 2], name="images")
    k1 = tf1.get_variable("conv1/kernel", [3, 3, 2, 4], initializer=tf1.glorot_uniform_initializer(seed=3))
    b1 = tf1.get_variable("conv1/bias", [4], initializer=tf1.random_uniform_initializer(-0.1, 0.1, seed=4))
    c1 = tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(x, k1, strides=1, padding="SAME"), b1))
    p1 = tf.nn.max_pool2d(c1, ksize=2, strides=2, padding="VALID")
    k2 = tf1.get_variable("conv2/kernel", [3, 3, 4, 6], initializer=tf1.glorot_uniform_initializer(seed=5))
    c2 = tf.nn.relu6(tf.nn.conv2d(p1, k2, strides=[1, 2, 2, 1], padding="VALID"))
    p2 = tf.nn.avg_pool2d(c1, ksize=[1, 3, 3, 1], strides=[1, 2, 2, 1], padding="SAME")
    flat = tf.reshape(c2, [-1, 6])
    w = tf1.get_variable("fc/kernel", [6, 3], initializer=tf1.glorot_uniform_initializer(seed=6))
    logits = tf.matmul(flat, w)
    return [tf.nn.log_softmax(logits, name="log_probs"), tf.reduce_mean(p2, axis=[1, 2], name="pooled")]


def math_ops():
    a = tf1.placeholder(tf.float32, [None, 5], name="a")
    b = tf1.placeholder(tf.float32, [None, 5], name="b")
    pos = tf.abs(b) + 0.5
    outs = [
        tf.add(a, b),
        tf.subtract(a, b),
        tf.multiply(a, b),
        tf.divide(a, pos),
        tf.square(a),
        tf.sqrt(pos),
        tf.math.rsqrt(pos),
        tf.exp(a),
        tf.math.log(pos),
        tf.math.log1p(pos),
        tf.tanh(a),
        tf.sigmoid(a),
        tf.nn.elu(a),
        tf.nn.softplus(a),
        tf.sign(a),
        tf.negative(a),
        tf.maximum(a, b),
        tf.minimum(a, b),
        tf.pow(pos, a),
        tf.math.floordiv(a, pos),
        tf.math.floormod(a, pos),
        tf.add_n([a, b, a]),
        tf.where(a > b, a, b),
        tf.cast(tf.greater_equal(a, b), tf.float32),
        tf.cast(tf.logical_and(a < 0.5, tf.not_equal(a, b)), tf.int32),
        tf.cast(tf.logical_or(tf.less_equal(a, b), tf.equal(a, b)), tf.int64),
        tf.reduce_sum(a, axis=1),
        tf.reduce_mean(a, axis=0, keepdims=True),
        tf.reduce_max(a, axis=-1),
        tf.reduce_min(b, axis=[0, 1]),
        tf.reduce_prod(pos, axis=1),
        tf.argmin(b, axis=1, output_type=tf.int32),
        tf.math.l2_normalize(a, axis=1),
    ]
    return [tf.identity(o, name=f"out{i}") for i, o in enumerate(outs)]


def array_ops():
    x = tf1.placeholder(tf.float32, [4, 3], name="x")
    idx = tf1.placeholder(tf.int32, [2], name="idx")
    outs = [
        tf.concat([x, x * 2.0], axis=1),
        tf.stack([x, x], axis=1),
        tf.transpose(x),
        tf.tile(x, [2, 1]),
        tf.pad(x, [[1, 0], [0, 2]]),
        tf.pad(x, [[0, 1], [1, 1]], constant_values=-1.0),
        tf.slice(x, [1, 0], [2, -1]),
        x[1:, ::2],
        x[::-1, 1],
        tf.gather(x, idx),
        tf.gather(x, idx, axis=1),
        tf.expand_dims(x, 0),
        tf.squeeze(tf.reshape(x, [1, 4, 1, 3]), axis=[0, 2]),
        tf.reshape(x, [2, -1]),
        tf.cast(tf.shape(x), tf.float32),
        tf.fill([2, 3], 1.5),
        tf.one_hot(idx, depth=4),
        tf.range(1, 10, 3),
        tf.zeros_like(x) + tf.ones_like(x),
        tf.unstack(x, axis=1)[2],
        tf.cast(tf.size(x), tf.float32) + tf.cast(tf.rank(x), tf.float32),
    ]
    return [tf.identity(o, name=f"out{i}") for i, o in enumerate(outs)]


def losses():
    logits = tf1.placeholder(tf.float32, [None, 5], name="logits")
    labels = tf1.placeholder(tf.float32, [None, 5], name="labels")
    sparse = tf1.placeholder(tf.int64, [None], name="sparse_labels")
    ce = tf.nn.softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    sce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=sparse, logits=logits)
    a = tf1.placeholder(tf.float32, [2, 3, 4], name="batch_a")
    b = tf1.placeholder(tf.float32, [2, 4, 2], name="batch_b")
    return [
        tf.identity(ce, name="ce"),
        tf.identity(sce, name="sce"),
        tf.reduce_mean(ce + sce, name="loss"),
        tf.linalg.matmul(a, b, name="bmm"),
    ]


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    f32 = np.float32
    write_fixture("mlp", mlp, {"x:0": rng.randn(5, 6).astype(f32)})
    write_fixture("cnn", cnn, {"images:0": rng.randn(2, 8, 8, 2).astype(f32)})
    write_fixture(
        "math_ops",
        math_ops,
        {"a:0": rng.randn(3, 5).astype(f32), "b:0": rng.randn(3, 5).astype(f32)},
    )
    write_fixture(
        "array_ops",
        array_ops,
        {"x:0": rng.randn(4, 3).astype(f32), "idx:0": np.array([2, 0], np.int32)},
    )
    labels = rng.rand(3, 5).astype(f32)
    write_fixture(
        "losses",
        losses,
        {
            "logits:0": rng.randn(3, 5).astype(f32),
            "labels:0": labels / labels.sum(axis=1, keepdims=True),
            "sparse_labels:0": np.array([4, 0, 2], np.int64),
            "batch_a:0": rng.randn(2, 3, 4).astype(f32),
            "batch_b:0": rng.randn(2, 4, 2).astype(f32),
        },
    )


if __name__ == "__main__":
    main()

"""Writes small TensorFlow 2 / Keras 3 SavedModels for tests/tf2_saved_model.rs: each
directory under graphs/tf2/ is a SavedModel (tf.saved_model.save / model.export) with
`input.npy` (the serving_default input) and `output.npy` (TensorFlow's output for it).

Usage: python3 graphs/make_tf2_fixtures.py [NAME ...]   (pip install tensorflow-cpu; not run
by CI). With names (e.g. `mobilenet_v2`), writes only those fixtures.

graphs/tf2/
  mlp/        Keras Sequential: Dense(32, relu) -> Dense(16, tanh) -> Dense(4, softmax)
  cnn/        Keras Conv2D -> BatchNormalization -> ReLU -> MaxPool -> Flatten -> Dense
  residual/   Keras functional net with Add skip connections
  text/       Keras Embedding -> GlobalAveragePooling1D -> Dense
  loop/       tf.Module: tf.function with tf.while_loop and tf.cond over a resource variable
  lstm/       Keras LSTM (While loop over TensorLists)
  gru/        Keras GRU (While loop over TensorLists)
  mobilenet_v2/  keras.applications.MobileNetV2 (96x96x3, alpha 0.35, 10 classes, logits),
              random weights (seed 7), BatchNormalization moving statistics randomised;
              input.npy is a batch of 2 images
Every model has one input and one output; signatures are the standard `serving_default`.

  ../tf1_loops/   a TF1-style GraphDef (control flow v1: Enter/Exit/Switch/Merge/
                  NextIteration/LoopCond) of tf.compat.v1.while_loop and tf.compat.v1.cond:
                  graph.pb over placeholders x (float [3]) and n (int32 []), fetches
                  listed in fetches.txt; case<k>_x.npy, case<k>_n.npy and
                  case<k>_<fetch index>.npy for each input case
  {cnn,lstm,gru}/finetune/
                  two SGD steps on the loaded model (tf.GradientTape through its
                  serving_default signature, loss mean((y - target)^2), learning rate 0.05):
                  target.npy, and each variable's value after the steps as
                  <checkpoint key, '/' -> '_', without /.ATTRIBUTES/VARIABLE_VALUE>.npy,
                  and each trainable variable's gradient before the first step as
                  grad_<the same>.npy

Usage for the fine-tuning references only (keeps the committed models):
  python3 graphs/make_tf2_fixtures.py finetune
"""
import os
import shutil
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402
from keras import layers  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tf2")
rng = np.random.RandomState(0)
keras.utils.set_random_seed(0)


def fresh(name):
    d = os.path.join(OUT, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


def export_keras(name, model, x):
    """model.export (serving_default), then TF's output through the reloaded signature."""
    d = fresh(name)
    model.export(os.path.join(d, "model"), format="tf_saved_model", verbose=False)
    check(d, x)


def check(d, x):
    loaded = tf.saved_model.load(os.path.join(d, "model"))
    fn = loaded.signatures["serving_default"]
    (key,) = [k for k in fn.structured_input_signature[1]]
    out = fn(**{key: tf.constant(x)})
    (y,) = out.values()
    np.save(os.path.join(d, "input.npy"), x)
    np.save(os.path.join(d, "output.npy"), y.numpy())


def randomize_bn(model):
    """Gives BatchNormalization layers non-trivial moving statistics."""
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            g, b, m, v = layer.get_weights()
            layer.set_weights([
                rng.uniform(0.5, 1.5, g.shape).astype("float32"),
                rng.randn(*b.shape).astype("float32") * 0.1,
                rng.randn(*m.shape).astype("float32") * 0.1,
                rng.uniform(0.5, 2.0, v.shape).astype("float32"),
            ])


def mlp():
    m = keras.Sequential([
        keras.Input((8,)),
        layers.Dense(32, activation="relu"),
        layers.Dense(16, activation="tanh"),
        layers.Dense(4, activation="softmax"),
    ])
    export_keras("mlp", m, rng.randn(3, 8).astype("float32"))


def cnn():
    m = keras.Sequential([
        keras.Input((12, 12, 3)),
        layers.Conv2D(8, 3, padding="same"),
        layers.BatchNormalization(),
        layers.ReLU(),
        layers.MaxPooling2D(2),
        layers.Conv2D(8, 3),
        layers.BatchNormalization(),
        layers.Activation("relu"),
        layers.Flatten(),
        layers.Dense(5),
    ])
    randomize_bn(m)
    export_keras("cnn", m, rng.randn(2, 12, 12, 3).astype("float32"))


def residual():
    inp = keras.Input((10,))
    h = layers.Dense(16, activation="relu")(inp)
    r = layers.Dense(16, activation="relu")(h)
    h = layers.Add()([h, r])
    r = layers.Dense(16)(h)
    h = layers.Activation("relu")(layers.Add()([h, r]))
    out = layers.Dense(3)(h)
    export_keras("residual", keras.Model(inp, out), rng.randn(4, 10).astype("float32"))


def text():
    m = keras.Sequential([
        keras.Input((7,), dtype="int32"),
        layers.Embedding(50, 8),
        layers.GlobalAveragePooling1D(),
        layers.Dense(6, activation="relu"),
        layers.Dense(2),
    ])
    export_keras("text", m, rng.randint(0, 50, (3, 7)).astype("int32"))


class Loop(tf.Module):
    """Sums x * scale for `n` steps of a while loop, flipping the sign under a cond."""

    def __init__(self):
        super().__init__()
        self.scale = tf.Variable(np.linspace(0.5, 1.5, 4).astype("float32"), name="scale")
        self.steps = tf.Variable(3, dtype=tf.int32, name="steps")

    @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32)])
    def __call__(self, x):
        def body(i, acc):
            acc = tf.cond(tf.reduce_sum(acc) > 10.0, lambda: acc * 0.5, lambda: acc + x * self.scale)
            return i + 1, acc

        _, acc = tf.while_loop(lambda i, acc: i < self.steps, body, [tf.constant(0), tf.zeros_like(x)])
        return {"output_0": acc}


def loop():
    d = fresh("loop")
    m = Loop()
    tf.saved_model.save(m, os.path.join(d, "model"), signatures={"serving_default": m.__call__})
    check(d, rng.randn(2, 4).astype("float32") * 3)


FINETUNE_LR = 0.05


def finetune(name):
    """TensorFlow's own fine-tuning of a saved model, for tests/tf2_saved_model.rs: the
    gradients of the loss at the start, then two SGD steps."""
    d = os.path.join(OUT, name)
    out = os.path.join(d, "finetune")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    loaded = tf.saved_model.load(os.path.join(d, "model"))
    fn = loaded.signatures["serving_default"]
    (key,) = [k for k in fn.structured_input_signature[1]]
    x = tf.constant(np.load(os.path.join(d, "input.npy")))
    shape = np.load(os.path.join(d, "output.npy")).shape
    target = np.random.RandomState(1).randn(*shape).astype("float32")
    reader = tf.train.load_checkpoint(os.path.join(d, "model", "variables", "variables"))
    # The checkpoint keys `variables/<i>` and `_all_variables/<i>` are the loaded
    # object's lists of those names.
    for group in ("variables", "_all_variables"):
        for i, v in enumerate(getattr(loaded, group)):
            ckpt_key = f"{group}/{i}/.ATTRIBUTES/VARIABLE_VALUE"
            assert np.array_equal(reader.get_tensor(ckpt_key), v.numpy()), ckpt_key
    index = {v.ref(): i for i, v in enumerate(loaded.variables)}
    for step in range(2):
        with tf.GradientTape() as tape:
            (y,) = fn(**{key: x}).values()
            loss = tf.reduce_mean(tf.square(y - target))
        grads = tape.gradient(loss, loaded.trainable_variables)
        if step == 0:
            for v, g in zip(loaded.trainable_variables, grads):
                np.save(os.path.join(out, f"grad_variables_{index[v.ref()]}.npy"), g.numpy())
        for v, g in zip(loaded.trainable_variables, grads):
            v.assign_sub(FINETUNE_LR * g)
    np.save(os.path.join(out, "target.npy"), target)
    for group in ("variables", "_all_variables"):
        for i, v in enumerate(getattr(loaded, group)):
            np.save(os.path.join(out, f"{group}_{i}.npy"), v.numpy())


TF1_FETCHES = ["counter", "power", "accumulate", "nested", "cond", "loop_cond"]


def tf1_loops():
    """TF1 control flow (v2 off) in a GraphDef, run by TF's graph-mode session."""
    d = os.path.join(os.path.dirname(OUT), "tf1_loops")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    v1 = tf.compat.v1
    v1.disable_control_flow_v2()
    g = tf.Graph()
    with g.as_default():
        x = v1.placeholder(tf.float32, [3], name="x")
        n = v1.placeholder(tf.int32, [], name="n")
        counter = v1.while_loop(lambda i: i < n, lambda i: i + 1, [tf.constant(0)], name="counter")
        _, power = v1.while_loop(
            lambda i, p: i < n, lambda i, p: [i + 1, p * x], [tf.constant(0), tf.ones([3])], name="power"
        )
        _, accumulate = v1.while_loop(
            lambda i, a: i < 3,
            lambda i, a: [i + 1, a + tf.gather(x, i) * tf.cast(n, tf.float32)],
            [tf.constant(0), tf.constant(0.0)],
            name="accumulate",
            parallel_iterations=1,
        )

        def outer(i, total):
            _, inner = v1.while_loop(
                lambda j, t: j < i, lambda j, t: [j + 1, t + x * tf.cast(j, tf.float32)], [0, total], name="inner"
            )
            return [i + 1, inner]

        _, nested = v1.while_loop(lambda i, t: i < n, outer, [tf.constant(0), tf.zeros([3])], name="nested")
        cond = v1.cond(tf.reduce_sum(x) > 0.0, lambda: x * 2.0, lambda: x - 1.0, name="cond")

        def flip(i, acc):
            acc = v1.cond(tf.reduce_sum(acc) > 4.0, lambda: acc * -0.5, lambda: acc + x)
            return [i + 1, acc]

        _, loop_cond = v1.while_loop(lambda i, a: i < n + 2, flip, [tf.constant(0), tf.zeros([3])], name="loop_cond")
        fetches = [counter, power, accumulate, nested, cond, loop_cond]
        for name, t in zip(TF1_FETCHES, fetches):
            tf.identity(t, name=f"out_{name}")
    v1.enable_control_flow_v2()
    with open(os.path.join(d, "graph.pb"), "wb") as f:
        f.write(g.as_graph_def().SerializeToString())
    with open(os.path.join(d, "fetches.txt"), "w") as f:
        f.write("".join(f"out_{name}:0\n" for name in TF1_FETCHES))
    cases = [(np.array([0.5, -1.0, 2.0], "float32"), 3), (np.array([-1.5, 0.25, -2.0], "float32"), 0),
             (np.array([1.0, 2.0, 0.5], "float32"), 5)]
    with v1.Session(graph=g) as sess:
        for k, (xv, nv) in enumerate(cases):
            out = sess.run([f"out_{name}:0" for name in TF1_FETCHES], {"x:0": xv, "n:0": np.int32(nv)})
            np.save(os.path.join(d, f"case{k}_x.npy"), xv)
            np.save(os.path.join(d, f"case{k}_n.npy"), np.int32(nv))
            for i, v in enumerate(out):
                np.save(os.path.join(d, f"case{k}_{i}.npy"), np.asarray(v))


class Serve(tf.Module):
    """A Keras model's inference call as `serving_default`; unlike `model.export`, which
    writes every variable twice (`variables/` and `_all_variables/`), it saves each once."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        spec = tf.TensorSpec((None,) + tuple(model.input.shape[1:]), model.input.dtype)
        self.__call__ = tf.function(lambda x: {"output_0": self.model(x, training=False)}, input_signature=[spec])


def calibrate_bn(model, x, r):
    """Sets each BatchNormalization's moving statistics near the batch statistics of its
    input for `x` (layer by layer, so later layers see the calibrated earlier ones), with
    random gammas and betas: activations keep their scale through a deep random network,
    and the inference path uses non-trivial statistics."""
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            h = keras.Model(model.input, layer.input)(x, training=False).numpy()
            axes = tuple(range(h.ndim - 1))
            mean, var = h.mean(axis=axes), h.var(axis=axes)
            layer.set_weights([
                r.uniform(0.5, 1.5, mean.shape).astype("float32"),
                (r.randn(*mean.shape) * 0.5).astype("float32"),
                (mean + r.randn(*mean.shape) * 0.1 * np.sqrt(var)).astype("float32"),
                (var * r.uniform(0.8, 1.25, var.shape) + 1e-3).astype("float32"),
            ])


def mobilenet_v2():
    """Keras Applications' MobileNetV2 at a small width: depthwise convolutions, Relu6,
    FusedBatchNormV3 and 1x1 convolutions, with its own seed so it does not shift the others."""
    keras.utils.set_random_seed(7)
    r = np.random.RandomState(7)
    m = keras.applications.MobileNetV2(
        input_shape=(96, 96, 3), alpha=0.35, weights=None, classes=10, classifier_activation=None
    )
    x = r.uniform(-1, 1, (2, 96, 96, 3)).astype("float32")
    calibrate_bn(m, np.concatenate([x, r.uniform(-1, 1, (6, 96, 96, 3)).astype("float32")]), r)
    d = fresh("mobilenet_v2")
    serve = Serve(m)
    tf.saved_model.save(serve, os.path.join(d, "model"), signatures={"serving_default": serve.__call__})
    check(d, x)


def rnn(name, layer):
    m = keras.Sequential([keras.Input((5, 3)), layer, layers.Dense(2)])
    export_keras(name, m, rng.randn(2, 5, 3).astype("float32"))


if __name__ == "__main__" and sys.argv[1:] == ["finetune"]:
    # Only the fine-tuning references, over the committed models.
    for name in ("cnn", "lstm", "gru"):
        finetune(name)
elif __name__ == "__main__" and len(sys.argv) > 1:
    # Only the named fixtures (e.g. mobilenet_v2).
    for name in sys.argv[1:]:
        globals()[name]()
elif __name__ == "__main__":
    tf1_loops()
    mlp()
    cnn()
    residual()
    text()
    loop()
    rnn("lstm", layers.LSTM(6))
    rnn("gru", layers.GRU(6))
    for name in ("cnn", "lstm", "gru"):
        finetune(name)
    mobilenet_v2()
    for name in sorted(os.listdir(OUT)):
        size = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(os.path.join(OUT, name)) for f in fs)
        print(f"{name}: {size} bytes")

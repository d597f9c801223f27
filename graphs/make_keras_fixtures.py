"""Writes fixtures made by real Keras 3 (TensorFlow backend) for tests/keras_fixtures.rs
and tests/keras.rs: the same weights and inputs give Keras's outputs.

Usage: python3 graphs/make_keras_fixtures.py   (pip install tensorflow-cpu; not run by CI)

graphs/keras/
  sequential_config.json  model.to_json() of a compiled Sequential (Input, 2 Dense)
  numerics.json           Dense outputs per activation, each loss and metric on fixed
                          inputs, and one fit epoch of a small MLP (SGD, Adam, RMSprop)
                          from given initial weights and batch order (shuffle=False)
"""
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402
import keras  # noqa: E402
from keras import layers  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "keras")
os.makedirs(OUT, exist_ok=True)
rng = np.random.RandomState(0)


def arr(a):
    a = np.asarray(a)
    return {"shape": list(a.shape), "data": [float(v) for v in a.reshape(-1)]}


def sequential_config():
    keras.backend.clear_session()
    m = keras.Sequential(
        [keras.Input((8,)), layers.Dense(16, activation="relu"), layers.Dense(3, activation="softmax")]
    )
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    with open(os.path.join(OUT, "sequential_config.json"), "w") as f:
        f.write(m.to_json())


def dense_cases():
    x = rng.randn(4, 5).astype("float32")
    k = rng.randn(5, 3).astype("float32")
    b = rng.randn(3).astype("float32")
    out = {"x": arr(x), "kernel": arr(k), "bias": arr(b), "outputs": {}}
    for act in ["linear", "relu", "relu6", "softmax", "sigmoid", "tanh", "elu", "selu",
                "softplus", "swish"]:
        layer = layers.Dense(3, activation=act)
        layer.build((None, 5))
        layer.set_weights([k, b])
        out["outputs"][act] = arr(layer(x).numpy())
    return out


def loss_cases():
    logits = rng.randn(6, 4).astype("float32")
    probs = keras.ops.softmax(logits).numpy()
    labels = np.array([0, 3, 1, 2, 2, 0])
    onehot = np.eye(4, dtype="float32")[labels]
    reg_true = rng.randn(6, 4).astype("float32")
    reg_pred = (reg_true + 1.5 * rng.randn(6, 4)).astype("float32")
    bin_logits = rng.randn(6, 1).astype("float32")
    bin_probs = keras.ops.sigmoid(bin_logits).numpy()
    bin_true = np.array([[1], [0], [1], [1], [0], [0]], dtype="float32")
    L = keras.losses
    cases = {
        "sparse_categorical_crossentropy": (labels, probs, L.SparseCategoricalCrossentropy()),
        "sparse_categorical_crossentropy_logits": (
            labels, logits, L.SparseCategoricalCrossentropy(from_logits=True)),
        "categorical_crossentropy": (onehot, probs, L.CategoricalCrossentropy()),
        "categorical_crossentropy_logits": (
            onehot, logits, L.CategoricalCrossentropy(from_logits=True)),
        "binary_crossentropy": (bin_true, bin_probs, L.BinaryCrossentropy()),
        "binary_crossentropy_logits": (bin_true, bin_logits, L.BinaryCrossentropy(from_logits=True)),
        "mean_squared_error": (reg_true, reg_pred, L.MeanSquaredError()),
        "mean_absolute_error": (reg_true, reg_pred, L.MeanAbsoluteError()),
        "huber": (reg_true, reg_pred, L.Huber()),
    }
    out = {}
    for name, (t, p, fn) in cases.items():
        out[name] = {"y_true": arr(t), "y_pred": arr(p), "loss": float(fn(t, p).numpy())}
    M = keras.metrics
    metric_cases = {
        "sparse_categorical_accuracy": (labels, probs, M.SparseCategoricalAccuracy()),
        "categorical_accuracy": (onehot, probs, M.CategoricalAccuracy()),
        "binary_accuracy": (bin_true, bin_probs, M.BinaryAccuracy()),
        "precision": (bin_true, bin_probs, M.Precision()),
        "recall": (bin_true, bin_probs, M.Recall()),
        "mean_absolute_error": (reg_true, reg_pred, M.MeanAbsoluteError()),
        "mean_squared_error": (reg_true, reg_pred, M.MeanSquaredError()),
    }
    metrics = {}
    for name, (t, p, m) in metric_cases.items():
        m.update_state(t, p)
        metrics[name] = {"y_true": arr(t), "y_pred": arr(p), "value": float(m.result().numpy())}
    return out, metrics


def fit_cases():
    x = rng.rand(64, 4).astype("float32")
    y = (x[:, :3].argmax(1)).astype("int32")
    w = [
        (rng.randn(4, 8) * 0.5).astype("float32"),
        (rng.randn(8) * 0.1).astype("float32"),
        (rng.randn(8, 3) * 0.5).astype("float32"),
        (rng.randn(3) * 0.1).astype("float32"),
    ]
    out = {"x": arr(x), "y": arr(y), "initial": [arr(v) for v in w], "runs": {}}
    for name, opt in [
        ("sgd", keras.optimizers.SGD(0.1)),
        ("sgd_momentum", keras.optimizers.SGD(0.1, momentum=0.9, nesterov=True)),
        ("adam", keras.optimizers.Adam(0.01)),
        ("rmsprop", keras.optimizers.RMSprop(0.01)),
        ("adagrad", keras.optimizers.Adagrad(0.1)),
    ]:
        keras.backend.clear_session()
        m = keras.Sequential([keras.Input((4,)), layers.Dense(8, activation="relu"),
                              layers.Dense(3, activation="softmax")])
        m.set_weights(w)
        m.compile(optimizer=opt, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        h = m.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0)
        out["runs"][name] = {
            "weights": [arr(v) for v in m.get_weights()],
            "loss": h.history["loss"][0],
            "accuracy": h.history["accuracy"][0],
        }
    return out


sequential_config()
losses, metrics = loss_cases()
numerics = {"keras_version": keras.__version__, "dense": dense_cases(), "losses": losses,
            "metrics": metrics, "fit": fit_cases()}
with open(os.path.join(OUT, "numerics.json"), "w") as f:
    json.dump(numerics, f)
print("wrote", OUT)

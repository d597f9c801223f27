"""Writes fixtures made by real Keras 3 (TensorFlow backend) for tests/keras_fixtures.rs
and tests/keras.rs: the same weights and inputs give Keras's outputs.

Usage: python3 graphs/make_keras_fixtures.py   (pip install tensorflow-cpu; not run by CI)

graphs/keras/
  sequential_config.json  model.to_json() of a compiled Sequential (Input, 2 Dense)
  numerics.json           Dense outputs per activation, each loss and metric on fixed
                          inputs, and one fit epoch of a small MLP (SGD, Adam, RMSprop)
                          from given initial weights and batch order (shuffle=False)
  cnn_config.json         model.to_json() of a Sequential using every new layer (its
                          summary is pinned in tests/keras_layers.rs)
  layers.json             Conv2D (padding, strides, dilation), pooling, ZeroPadding2D,
                          BatchNormalization (inference, a training call and its moving
                          statistics), LayerNormalization, Embedding, each activation on
                          fixed inputs, regularized Dense losses, and one fit epoch of a
                          small CNN (Conv2D-BN-ReLU-MaxPool-Flatten-Dense, l2) from given
                          initial weights (shuffle=False)
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


LRNG = np.random.RandomState(1)


def layer_case(layer, x, weights=None, training=False):
    """The layer built for x's shape, given weights, called on x."""
    layer.build(x.shape)
    if weights is not None:
        layer.set_weights(weights)
    y = layer(x, training=training)
    case = {"config": keras.saving.serialize_keras_object(layer), "x": arr(x),
            "weights": [arr(w) for w in (weights or [])], "y": arr(y.numpy())}
    if training:
        case["weights_after"] = [arr(w) for w in layer.get_weights()]
    return case


def layers_cases():
    f32 = lambda a: np.asarray(a, dtype="float32")  # noqa: E731
    img = f32(LRNG.randn(2, 7, 7, 3))
    out = {"conv2d": {}, "pooling": {}, "batch_normalization": {}, "layer_normalization": {},
           "embedding": {}, "zero_padding2d": {}, "activations": {}}
    k = f32(LRNG.randn(3, 3, 3, 4) * 0.5)
    b = f32(LRNG.randn(4) * 0.1)
    for name, kw in [
        ("valid", {}),
        ("same_strides2", {"padding": "same", "strides": 2}),
        ("valid_dilation2", {"dilation_rate": 2}),
        ("same_dilation2_relu", {"padding": "same", "dilation_rate": 2, "activation": "relu"}),
        ("valid_strides_2x1_nobias", {"strides": (2, 1), "use_bias": False}),
    ]:
        w = [k] if kw.get("use_bias") is False else [k, b]
        out["conv2d"][name] = layer_case(layers.Conv2D(4, 3, **kw), img, w)
    seq = f32(LRNG.randn(2, 5, 3))
    for name, layer, x in [
        ("max_valid", layers.MaxPooling2D(), img),
        ("max_same_3_s2", layers.MaxPooling2D(3, strides=2, padding="same"), img),
        ("avg_valid", layers.AveragePooling2D(2), img),
        ("avg_same_3_s2", layers.AveragePooling2D(3, strides=2, padding="same"), img),
        ("global_avg_2d", layers.GlobalAveragePooling2D(), img),
        ("global_max_2d", layers.GlobalMaxPooling2D(), img),
        ("global_avg_1d", layers.GlobalAveragePooling1D(), seq),
    ]:
        out["pooling"][name] = layer_case(layer, x)
    out["zero_padding2d"]["asymmetric"] = layer_case(
        layers.ZeroPadding2D(((1, 0), (2, 1))), img[:, :3, :3, :])
    for name, x in [("dense", f32(LRNG.randn(6, 4) * 2 + 1)), ("image", img[..., :3])]:
        c = x.shape[-1]
        w = [f32(LRNG.rand(c) + 0.5), f32(LRNG.randn(c)), f32(LRNG.randn(c)),
             f32(LRNG.rand(c) + 0.5)]
        out["batch_normalization"][name + "_inference"] = layer_case(
            layers.BatchNormalization(), x, w)
        out["batch_normalization"][name + "_training"] = layer_case(
            layers.BatchNormalization(), x, w, training=True)
    for name, x in [("2d", f32(LRNG.randn(3, 5) * 3)), ("3d", f32(LRNG.randn(2, 3, 4)))]:
        c = x.shape[-1]
        out["layer_normalization"][name] = layer_case(
            layers.LayerNormalization(), x, [f32(LRNG.rand(c) + 0.5), f32(LRNG.randn(c))])
    ids = LRNG.randint(0, 10, size=(3, 5)).astype("int32")
    out["embedding"]["basic"] = layer_case(
        layers.Embedding(10, 4), ids, [f32(LRNG.randn(10, 4))])
    x = f32(np.linspace(-4, 4, 17))
    for name in ["gelu", "elu", "selu", "softplus", "swish", "silu", "relu6", "relu", "sigmoid",
                 "tanh"]:
        out["activations"][name] = arr(keras.activations.get(name)(x).numpy())
    out["activations"]["x"] = arr(x)
    out["activations"]["gelu_approximate"] = arr(keras.activations.gelu(x, approximate=True).numpy())
    out["regularizers"] = regularizer_cases()
    out["cnn_fit"] = cnn_fit_case()
    return out


def regularizer_cases():
    """Loss of a Dense model with kernel and bias regularizers (evaluate: the loss plus the
    penalties, as Keras reports it)."""
    x = np.asarray(LRNG.randn(8, 3), dtype="float32")
    y = np.asarray(LRNG.randn(8, 2), dtype="float32")
    w = [np.asarray(LRNG.randn(3, 2), dtype="float32"),
         np.asarray(LRNG.randn(2), dtype="float32")]
    out = {"x": arr(x), "y": arr(y), "weights": [arr(v) for v in w], "cases": {}}
    for name, kr, br in [("l1", keras.regularizers.l1(0.01), None),
                         ("l2", keras.regularizers.l2(0.02), keras.regularizers.l1(0.1)),
                         ("l1_l2", keras.regularizers.l1_l2(0.01, 0.03), None)]:
        keras.backend.clear_session()
        m = keras.Sequential([keras.Input((3,)),
                              layers.Dense(2, kernel_regularizer=kr, bias_regularizer=br)])
        m.set_weights(w)
        m.compile(optimizer="sgd", loss="mse")
        out["cases"][name] = {"loss": float(m.evaluate(x, y, verbose=0)),
                              "mse": float(np.mean((m.predict(x, verbose=0) - y) ** 2)),
                              "config": json.loads(m.to_json())}
    return out


def cnn_fit_case():
    keras.backend.clear_session()
    x = np.asarray(LRNG.rand(32, 8, 8, 1), dtype="float32")
    y = (x.reshape(32, -1)[:, :3].argmax(1)).astype("int32")
    m = keras.Sequential([
        keras.Input((8, 8, 1)),
        layers.Conv2D(4, 3, padding="same"),
        layers.BatchNormalization(),
        layers.Activation("relu"),
        layers.MaxPooling2D(),
        layers.Flatten(),
        layers.Dense(3, activation="softmax", kernel_regularizer=keras.regularizers.l2(1e-3)),
    ])
    w = [np.asarray(LRNG.randn(*v.shape) * 0.3, dtype="float32") for v in m.get_weights()]
    w[5] = np.asarray(LRNG.rand(4) * 0.5 + 0.75, dtype="float32")  # moving variance > 0
    m.set_weights(w)
    m.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy",
              metrics=["accuracy"])
    h = m.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
    return {"x": arr(x), "y": arr(y), "initial": [arr(v) for v in w],
            "weights": [arr(v) for v in m.get_weights()], "loss": h.history["loss"][0],
            "accuracy": h.history["accuracy"][0], "predict": arr(m.predict(x[:4], verbose=0)),
            "summary_params": m.count_params()}


def cnn_config():
    keras.backend.clear_session()
    m = keras.Sequential([
        keras.Input((8, 8, 1)), layers.ZeroPadding2D(1),
        layers.Conv2D(8, 3, padding="same", activation="relu"), layers.BatchNormalization(),
        layers.MaxPooling2D(), layers.AveragePooling2D(2, strides=1, padding="same"),
        layers.Conv2D(4, (3, 2), dilation_rate=2), layers.GlobalAveragePooling2D(),
        layers.Reshape((2, -1)), layers.LayerNormalization(), layers.Flatten(), layers.Dense(3)])
    with open(os.path.join(OUT, "cnn_config.json"), "w") as f:
        f.write(m.to_json())


sequential_config()
cnn_config()
with open(os.path.join(OUT, "layers.json"), "w") as f:
    json.dump(layers_cases(), f)
losses, metrics = loss_cases()
numerics = {"keras_version": keras.__version__, "dense": dense_cases(), "losses": losses,
            "metrics": metrics, "fit": fit_cases()}
with open(os.path.join(OUT, "numerics.json"), "w") as f:
    json.dump(numerics, f)
print("wrote", OUT)

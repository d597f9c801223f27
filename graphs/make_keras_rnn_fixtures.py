"""Writes graphs/keras/recurrent.json for tests/keras_recurrent.rs: LSTM and GRU layers
made by real Keras 3 (TensorFlow backend), with given weights, called on given inputs
(every output, states included), their configs and parameter counts, and one `fit` epoch
of Embedding->LSTM->Dense and Input->GRU->Dense from given initial weights
(shuffle=False).

Usage: python3 graphs/make_keras_rnn_fixtures.py   (pip install tensorflow-cpu; not run by CI)
"""
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402
import keras  # noqa: E402
from keras import layers  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "keras")
rng = np.random.RandomState(7)


def arr(a):
    a = np.asarray(a)
    return {"shape": list(a.shape), "data": [float(v) for v in a.reshape(-1)]}


def f32(a):
    return np.asarray(a, dtype="float32")


def layer_case(layer, x):
    """The layer built for x's shape, given random weights, called on x."""
    layer.build(x.shape)
    w = [f32(rng.randn(*v.shape) * 0.5) for v in layer.get_weights()]
    layer.set_weights(w)
    y = layer(x)
    ys = y if isinstance(y, (list, tuple)) else [y]
    return {"config": keras.saving.serialize_keras_object(layer), "x": arr(x),
            "weights": [arr(v) for v in w], "y": [arr(v.numpy()) for v in ys],
            "params": layer.count_params()}


def layers_cases():
    x = f32(rng.randn(3, 5, 4))
    out = {}
    for name, make in [
        ("lstm", lambda: layers.LSTM(6)),
        ("lstm_sequences", lambda: layers.LSTM(6, return_sequences=True)),
        ("lstm_state_backwards", lambda: layers.LSTM(
            6, return_sequences=True, return_state=True, go_backwards=True)),
        ("lstm_relu_hard_sigmoid_nobias", lambda: layers.LSTM(
            5, activation="relu", recurrent_activation="hard_sigmoid", use_bias=False)),
        ("gru", lambda: layers.GRU(6)),
        ("gru_sequences_backwards", lambda: layers.GRU(
            6, return_sequences=True, go_backwards=True)),
        ("gru_state", lambda: layers.GRU(6, return_state=True)),
        ("gru_reset_before", lambda: layers.GRU(5, reset_after=False, return_sequences=True)),
        ("gru_nobias", lambda: layers.GRU(4, use_bias=False)),
    ]:
        keras.backend.clear_session()
        out[name] = layer_case(make(), x)
    return out


def fit_case(model, x, y, optimizer):
    w = [f32(rng.randn(*v.shape) * 0.4) for v in model.get_weights()]
    model.set_weights(w)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    h = model.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
    return {"x": arr(x), "y": arr(y), "initial": [arr(v) for v in w],
            "weights": [arr(v) for v in model.get_weights()], "loss": h.history["loss"][0],
            "accuracy": h.history["accuracy"][0], "params": model.count_params(),
            "config": json.loads(model.to_json())}


def fits():
    keras.backend.clear_session()
    ids = rng.randint(0, 12, size=(24, 6)).astype("int32")
    y = (ids[:, 0] % 3).astype("int32")
    m = keras.Sequential([keras.Input((6,), dtype="int32"), layers.Embedding(12, 5),
                          layers.LSTM(7), layers.Dense(3, activation="softmax")])
    lstm = fit_case(m, ids, y, keras.optimizers.SGD(0.2))
    keras.backend.clear_session()
    x = f32(rng.randn(24, 5, 3))
    y = (x[:, -1, :].argmax(1)).astype("int32")
    m = keras.Sequential([keras.Input((5, 3)), layers.GRU(6),
                          layers.Dense(3, activation="softmax")])
    gru = fit_case(m, x, y, keras.optimizers.Adam(0.02))
    return {"embedding_lstm_dense": lstm, "gru_dense": gru}


def orthogonal():
    keras.backend.clear_session()
    return {"config": keras.saving.serialize_keras_object(
        keras.initializers.Orthogonal(gain=2.0, seed=3))}


case = {"keras_version": keras.__version__, "layers": layers_cases(), "fit": fits(),
        "orthogonal": orthogonal()}
with open(os.path.join(OUT, "recurrent.json"), "w") as f:
    json.dump(case, f)
print("wrote", os.path.join(OUT, "recurrent.json"))

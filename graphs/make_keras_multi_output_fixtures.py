"""Writes graphs/keras/multi_output.json for tests/keras_multi_output.rs: a functional
model of two outputs (classes and a regression) trained one `fit` epoch by real Keras 3
from given initial weights (shuffle=False), with a loss per output by name (and loss
weights) or by position: the weights after the epoch, the logged losses and metrics
(`loss`, `<output>_loss`, `<output>_<metric>`), and `evaluate`'s.

Usage: python3 graphs/make_keras_multi_output_fixtures.py   (not run by CI)
"""
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402
import keras  # noqa: E402
from keras import layers  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "keras")
rng = np.random.RandomState(11)


def arr(a):
    a = np.asarray(a)
    return {"shape": list(a.shape), "data": [float(v) for v in a.reshape(-1)]}


def model():
    keras.backend.clear_session()
    a = keras.Input((4,), name="a")
    h = layers.Dense(5, activation="relu", name="hidden")(a)
    cls = layers.Dense(3, activation="softmax", name="cls")(h)
    reg = layers.Dense(2, name="reg")(h)
    return keras.Model(a, [cls, reg])


x = np.asarray(rng.rand(24, 4), dtype="float32")
y_cls = (x[:, :3].argmax(1)).astype("int32")
y_reg = np.asarray(np.stack([x[:, 0] + x[:, 1], x[:, 2] - x[:, 3]], 1), dtype="float32")
initial = [np.asarray(rng.randn(*w.shape) * 0.5, dtype="float32")
           for w in model().get_weights()]
cases = {}
for name, kw in [
    ("by_name", dict(optimizer=keras.optimizers.SGD(0.1),
                     loss={"cls": "sparse_categorical_crossentropy", "reg": "mse"},
                     loss_weights={"cls": 1.0, "reg": 0.5},
                     metrics={"cls": ["accuracy"], "reg": ["mae"]})),
    ("by_position", dict(optimizer=keras.optimizers.Adam(0.01),
                         loss=["sparse_categorical_crossentropy", "mse"],
                         metrics=[["accuracy"], []])),
]:
    m = model()
    m.set_weights(initial)
    m.compile(**kw)
    h = m.fit(x, [y_cls, y_reg], epochs=1, batch_size=8, shuffle=False, verbose=0)
    cases[name] = {"weights": [arr(w) for w in m.get_weights()],
                   "history": {k: v[0] for k, v in h.history.items()},
                   "evaluate": m.evaluate(x, [y_cls, y_reg], verbose=0, return_dict=True)}
out = {"keras_version": keras.__version__, "x": arr(x), "y_cls": arr(y_cls), "y_reg": arr(y_reg),
       "initial": [arr(w) for w in initial], "cases": cases}
with open(os.path.join(OUT, "multi_output.json"), "w") as f:
    json.dump(out, f)
print("wrote", os.path.join(OUT, "multi_output.json"))

"""Writes graphs/keras/auc.json for tests/keras_auc.rs: keras.metrics.AUC made by real
Keras 3 (TensorFlow backend) on given labels and predictions for each curve, summation
method, number of thresholds and from_logits (edge predictions 0, 0.5 and 1 included),
and a small binary classifier compiled with metrics=["AUC", AUC(curve="PR")], its one
`fit` epoch (shuffle=False, validation_data) and `evaluate` logs from given weights.

Usage: python3 graphs/make_keras_auc_fixtures.py   (not run by CI)
"""
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402
import keras  # noqa: E402
from keras import layers  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "keras")
rng = np.random.RandomState(12)


def arr(a):
    a = np.asarray(a)
    return {"shape": list(a.shape), "data": [float(v) for v in a.reshape(-1)]}


def f32(a):
    return np.asarray(a, dtype="float32")


y_true = f32(rng.rand(30, 1) > 0.4)
y_pred = f32(np.clip(0.35 * y_true + 0.65 * rng.rand(30, 1), 0, 1))
y_pred[:4, 0] = [0.0, 0.5, 1.0, 0.25]
logits = f32(rng.randn(30, 1) * 2)
cases = {}
for name, kw, pred in [
    ("roc", {}, y_pred),
    ("pr", {"curve": "PR"}, y_pred),
    ("roc_minoring", {"summation_method": "minoring"}, y_pred),
    ("roc_majoring", {"summation_method": "majoring"}, y_pred),
    ("pr_majoring", {"curve": "PR", "summation_method": "majoring"}, y_pred),
    ("roc_7", {"num_thresholds": 7}, y_pred),
    ("pr_7", {"num_thresholds": 7, "curve": "PR"}, y_pred),
    ("roc_logits", {"from_logits": True}, logits),
]:
    m = keras.metrics.AUC(**kw)
    # Two updates, as two batches.
    m.update_state(y_true[:17], pred[:17])
    m.update_state(y_true[17:], pred[17:])
    cases[name] = {"args": kw, "y_true": arr(y_true), "y_pred": arr(pred),
                   "value": float(m.result().numpy())}

keras.backend.clear_session()
x = f32(rng.randn(40, 5))
y = f32((x[:, 0] + 0.5 * x[:, 1] + 0.3 * rng.randn(40)) > 0).reshape(40, 1)
xv, yv = x[32:], y[32:]
x, y = x[:32], y[:32]
m = keras.Sequential([keras.Input((5,)), layers.Dense(4, activation="tanh"),
                      layers.Dense(1, activation="sigmoid")])
w = [f32(rng.randn(*v.shape) * 0.5) for v in m.get_weights()]
m.set_weights(w)
m.compile(optimizer=keras.optimizers.SGD(0.1), loss="binary_crossentropy",
          metrics=["AUC", keras.metrics.AUC(curve="PR", name="pr_auc")])
h = m.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0, validation_data=(xv, yv))
ev = m.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
fit = {"x": arr(x), "y": arr(y), "x_val": arr(xv), "y_val": arr(yv),
       "initial": [arr(v) for v in w], "weights": [arr(v) for v in m.get_weights()],
       "history": {k: v[0] for k, v in h.history.items()},
       "evaluate": {k: float(v) for k, v in ev.items()}}
with open(os.path.join(OUT, "auc.json"), "w") as f:
    json.dump({"keras_version": keras.__version__, "metrics": cases, "fit": fit}, f)
print("wrote", os.path.join(OUT, "auc.json"))

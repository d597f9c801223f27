"""Writes graphs/keras/depthwise.json for tests/keras_depthwise.rs: DepthwiseConv2D and
SeparableConv2D layers made by real Keras 3 (TensorFlow backend) with given weights,
called on given images (their configs, outputs and parameter counts), and one `fit`
epoch of Input->SeparableConv2D->DepthwiseConv2D->GlobalAveragePooling2D->Dense from
given initial weights (shuffle=False).

Usage: python3 graphs/make_keras_depthwise_fixtures.py   (not run by CI)
"""
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402
import keras  # noqa: E402
from keras import layers  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "keras")
rng = np.random.RandomState(5)


def arr(a):
    a = np.asarray(a)
    return {"shape": list(a.shape), "data": [float(v) for v in a.reshape(-1)]}


def f32(a):
    return np.asarray(a, dtype="float32")


def layer_case(layer, x):
    layer.build(x.shape)
    w = [f32(rng.randn(*v.shape) * 0.5) for v in layer.get_weights()]
    layer.set_weights(w)
    return {"config": keras.saving.serialize_keras_object(layer), "x": arr(x),
            "weights": [arr(v) for v in w], "y": arr(layer(x).numpy()),
            "params": layer.count_params()}


img = f32(rng.randn(2, 7, 7, 3))
cases = {}
for name, make in [
    ("depthwise_valid", lambda: layers.DepthwiseConv2D(3)),
    ("depthwise_same_s2_m2", lambda: layers.DepthwiseConv2D(
        3, strides=2, padding="same", depth_multiplier=2)),
    ("depthwise_dilation2_relu_nobias", lambda: layers.DepthwiseConv2D(
        (3, 2), dilation_rate=2, activation="relu", use_bias=False)),
    ("separable_valid", lambda: layers.SeparableConv2D(4, 3)),
    ("separable_same_s2_m2", lambda: layers.SeparableConv2D(
        5, 3, strides=2, padding="same", depth_multiplier=2, activation="tanh")),
    ("separable_nobias", lambda: layers.SeparableConv2D(2, (2, 3), use_bias=False)),
]:
    keras.backend.clear_session()
    cases[name] = layer_case(make(), img)

keras.backend.clear_session()
x = f32(rng.rand(16, 8, 8, 2))
y = (x.reshape(16, -1)[:, :3].argmax(1)).astype("int32")
m = keras.Sequential([keras.Input((8, 8, 2)), layers.SeparableConv2D(4, 3, padding="same"),
                      layers.DepthwiseConv2D(3, depth_multiplier=2, activation="relu"),
                      layers.GlobalAveragePooling2D(), layers.Dense(3, activation="softmax")])
w = [f32(rng.randn(*v.shape) * 0.4) for v in m.get_weights()]
m.set_weights(w)
m.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy",
          metrics=["accuracy"])
h = m.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
fit = {"x": arr(x), "y": arr(y), "initial": [arr(v) for v in w],
       "weights": [arr(v) for v in m.get_weights()], "loss": h.history["loss"][0],
       "params": m.count_params(), "config": json.loads(m.to_json())}
with open(os.path.join(OUT, "depthwise.json"), "w") as f:
    json.dump({"keras_version": keras.__version__, "layers": cases, "fit": fit}, f)
print("wrote", os.path.join(OUT, "depthwise.json"))

"""Writes graphs/keras/summary_two_branch.txt for tests/keras_input.rs: the text real
Keras 3 prints for `model.summary()` of a functional model of two inputs and two branches
(Dense, Dense, Add, Concatenate, Dense), with its "Connected to" column, when the output
is not a terminal (80 columns).

Usage: python3 graphs/make_keras_summary_fixture.py   (not run by CI)
"""
import contextlib
import io
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.pop("COLUMNS", None)
import keras  # noqa: E402
from keras import layers  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "keras")

a = keras.Input((8,), name="a")
b = keras.Input((3,), name="b")
h = layers.Dense(4, activation="relu", name="da")(a)
g = layers.Dense(4, name="db")(b)
s = layers.Add(name="add")([h, g])
c = layers.Concatenate(name="cat")([s, h, b])
out = layers.Dense(2, activation="softmax", name="out")(c)
m = keras.Model([a, b], out, name="two_branch")
text = io.StringIO()
with contextlib.redirect_stdout(text):
    m.summary()
with open(os.path.join(OUT, "summary_two_branch.txt"), "w") as f:
    f.write(text.getvalue())
print("wrote", os.path.join(OUT, "summary_two_branch.txt"))

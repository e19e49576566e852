"""Write the Keras 3 files that tests/test_keras_files.py reads (tests/data/keras3/).

    KERAS_BACKEND=torch python tools/make_keras_golden.py [NAME ...]   (default: all)

Needs real Keras 3 (any backend; these were written with Keras 3.15.1 on torch 2.13 CPU),
which the test suite itself never imports.  For each model it writes ``<name>.keras``,
``<name>.weights.h5`` and ``<name>.npz`` holding ``x`` and Keras' ``predict(x)``; the models
are tiny so the files stay a few KiB.  ``conv.keras`` holds a layer fastnn does not run.
For ``rmsprop`` and ``adagrad`` the ``.npz`` also holds ``next_<i>``: the weights after one
more full-batch epoch (no shuffling) that Keras trained from the saved state, so a test can
check that fastnn reads Keras' optimizer state the way Keras does.
"""
import os
import sys

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "keras3")


def classifier():
    m = keras.Sequential([keras.Input(shape=(4, 3)), keras.layers.Flatten(),
                          keras.layers.Dense(6, activation="relu"), keras.layers.Dropout(0.25),
                          keras.layers.Dense(3), keras.layers.Softmax()])
    m.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy",
              metrics=["accuracy"])
    rng = np.random.default_rng(0)
    x = rng.standard_normal((20, 4, 3)).astype("float32")
    y = rng.integers(0, 3, 20)
    return m, x, y


def logits():
    m = keras.Sequential([keras.Input(shape=(5,)), keras.layers.Dense(4, activation="tanh"),
                          keras.layers.Dense(3)])
    m.compile(optimizer="adam",
              loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
              metrics=["accuracy"])
    rng = np.random.default_rng(1)
    return m, rng.standard_normal((16, 5)).astype("float32"), rng.integers(0, 3, 16)


def regression():
    m = keras.Sequential([keras.Input(shape=(1,)), keras.layers.Dense(3, activation="sigmoid"),
                          keras.layers.Dense(1)])
    m.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9), loss="mean_squared_error",
              metrics=["mae"])
    x = np.linspace(-2, 2, 12).astype("float32").reshape(-1, 1)
    return m, x, (1.8 * x + 32).astype("float32")


def binary():
    m = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(1, activation="sigmoid")])
    m.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(2)
    x = rng.standard_normal((10, 4)).astype("float32")
    return m, x, (x[:, 0] > 0).astype("float32")


def rmsprop():
    m = keras.Sequential([keras.Input(shape=(5,)), keras.layers.Dense(6, activation="gelu"),
                          keras.layers.Dense(3)])
    m.compile(optimizer=keras.optimizers.RMSprop(0.01, momentum=0.5),
              loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(3)
    return m, rng.standard_normal((16, 5)).astype("float32"), rng.integers(0, 3, 16)


def adagrad():
    m = keras.Sequential([keras.Input(shape=(5,)), keras.layers.Dense(6, activation="selu"),
                          keras.layers.Dense(2, activation="softmax")])
    m.compile(optimizer=keras.optimizers.Adagrad(0.05), loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(4)
    return m, rng.standard_normal((16, 5)).astype("float32"), rng.integers(0, 2, 16)


def conv():
    m = keras.Sequential([keras.Input(shape=(4, 4, 1)), keras.layers.Conv2D(2, 3),
                          keras.layers.Flatten(), keras.layers.Dense(2)])
    m.compile(optimizer="adam", loss="mse")
    return m, np.zeros((2, 4, 4, 1), "float32"), np.zeros((2, 2), "float32")


MODELS = {"classifier": classifier, "logits": logits, "regression": regression,
          "binary": binary, "conv": conv, "rmsprop": rmsprop, "adagrad": adagrad}
NEXT_EPOCH = ("rmsprop", "adagrad")


def main(names=None):
    os.makedirs(OUT, exist_ok=True)
    keras.utils.set_random_seed(0)
    for name, make in MODELS.items():
        m, x, y = make()
        m.fit(x, y, epochs=2, batch_size=8, verbose=0)
        if names and name not in names:
            continue          # made and fitted all the same: the random stream stays the same
        m.save(os.path.join(OUT, f"{name}.keras"))
        if name != "conv":
            m.save_weights(os.path.join(OUT, f"{name}.weights.h5"))
            extra = {}
            out = {"x": x, "y": y, "pred": m.predict(x, verbose=0),
                   "iterations": int(m.optimizer.iterations)}
            if name in NEXT_EPOCH:
                m.fit(x, y, epochs=1, batch_size=len(x), shuffle=False, verbose=0)
                extra = {f"next_{i}": np.asarray(w) for i, w in enumerate(m.get_weights())}
            np.savez(os.path.join(OUT, f"{name}.npz"), **out, **extra)
        print(name, "written")
    print("keras", keras.__version__, "backend", keras.backend.backend(), file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])

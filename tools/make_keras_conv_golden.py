"""Write the Keras 3 convolutional model that tests/test_keras_conv.py reads
(tests/data/keras3/cnn.keras, cnn.weights.h5, cnn.npz).

    KERAS_BACKEND=torch python tools/make_keras_conv_golden.py

Needs real Keras 3 (written with Keras 3.15.1 on torch CPU), which the test suite never
imports.  The model has every padding/stride kind fastnn's Conv2D runs ("same" with an
uneven stride, "valid" with a non-square kernel), a max pooling, Flatten and two Dense
layers, trained two epochs with Adam.  ``cnn.npz`` holds ``x``, ``y``, Keras' ``pred`` =
``predict(x)``, ``iterations``, and ``next_<i>``: the weights after one more full-batch
epoch without shuffling that Keras trained from the saved state, so a test can check that
fastnn reads the conv kernels and their Adam moments the way Keras does.
"""
import os
import sys

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "torch")
import keras  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "keras3")


def main():
    os.makedirs(OUT, exist_ok=True)
    keras.utils.set_random_seed(0)
    L = keras.layers
    m = keras.Sequential([keras.Input(shape=(9, 8, 2)),
                          L.Conv2D(3, 3, strides=(2, 1), padding="same", activation="relu"),
                          L.MaxPooling2D(2),
                          L.Conv2D(4, (2, 3), activation="tanh"),
                          L.Flatten(),
                          L.Dense(5, activation="relu"),
                          L.Dense(3, activation="softmax")])
    m.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy",
              metrics=["accuracy"])
    rng = np.random.default_rng(7)
    x = rng.standard_normal((24, 9, 8, 2)).astype("float32")
    y = rng.integers(0, 3, 24)
    m.fit(x, y, epochs=2, batch_size=8, verbose=0)
    m.save(os.path.join(OUT, "cnn.keras"))
    m.save_weights(os.path.join(OUT, "cnn.weights.h5"))
    out = {"x": x, "y": y, "pred": m.predict(x, verbose=0),
           "iterations": int(m.optimizer.iterations)}
    m.fit(x, y, epochs=1, batch_size=len(x), shuffle=False, verbose=0)
    out.update({f"next_{i}": np.asarray(w) for i, w in enumerate(m.get_weights())})
    np.savez(os.path.join(OUT, "cnn.npz"), **out)
    print("cnn written; keras", keras.__version__, "backend", keras.backend.backend(),
          file=sys.stderr)


if __name__ == "__main__":
    main()

"""Results do not depend on the thread count (issue 15, item 3): with the same seeds, every
front door ends with bit-identical weights for n_threads = 1, 2 and 3.

The K split adds the first layer's partial sums over fixed blocks of inputs in block order
(src_c/path_ksplit.h), the rows path gives each weight to one thread that sums over every
example, and conv2d's update splits the kernel's rows, so no sum's order depends on how many
threads share it.  Each case prints the largest difference (which must be exactly 0)."""
import random

import numpy as np
import pytest

from fastnn import _core, network, network2

THREADS = (1, 2, 3)


def _data(n=300, n_in=784, n_out=10, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.random((n, n_in))
    y = rng.integers(0, n_out, n)
    return X, y, [(x.reshape(n_in, 1), np.eye(n_out)[k].reshape(n_out, 1)) for x, k in zip(X, y)]


def _same(runs, label):
    base = runs[THREADS[0]]
    for t in THREADS[1:]:
        diff = max(float(np.max(np.abs(a - b))) for a, b in zip(base, runs[t]))
        print(f"{label}: 1 thread against {t}: max difference {diff}")
        assert all(np.array_equal(a, b) for a, b in zip(base, runs[t])), (label, t, diff)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_network_sgd(dtype):
    _, _, data = _data()
    runs = {}
    for t in THREADS:
        random.seed(1)
        np.random.seed(1)
        net = network.Network([784, 30, 10], n_threads=t, dtype=dtype)
        net.SGD(list(data), 2, 10, 3.0)
        runs[t] = net.weights + net.biases
    _same(runs, f"network {np.dtype(dtype).name}")


@pytest.mark.parametrize("kw", [dict(lmbda=5.0), dict(momentum=0.9, dropout=0.2),
                                dict(l1=2.0, activation="relu")])
def test_network2_sgd(kw):
    _, _, data = _data(seed=1)
    act = kw.pop("activation", "sigmoid")
    runs = {}
    for t in THREADS:
        random.seed(2)
        np.random.seed(2)
        net = network2.Network([784, 40, 10], cost=network2.CrossEntropyCost, activation=act,
                               n_threads=t)
        net.SGD(list(data), 2, 10, 0.5, **kw)
        runs[t] = net.weights + net.biases
    _same(runs, f"network2 {kw}")


@pytest.mark.parametrize("optimizer", ["adam", "rmsprop", "sgd"])
def test_sequential_fit(optimizer):
    from fastnn import keras
    X, y, _ = _data(seed=2)
    runs = {}
    for t in THREADS:
        np.random.seed(3)
        m = keras.Sequential([keras.layers.Dense(128, activation="relu", input_shape=(784,)),
                              keras.layers.Dense(10, activation="softmax")], dtype="float32",
                             n_threads=t)
        m.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
        m.fit(X.astype(np.float32), y, epochs=2, batch_size=32, verbose=0)
        runs[t] = m.get_weights()
    _same(runs, f"Sequential {optimizer}")


def test_estimator_fit():
    from fastnn.sklearn import FastNNClassifier
    X, y, _ = _data(seed=3)
    runs = {}
    for t in THREADS:
        clf = FastNNClassifier(hidden_layer_sizes=(64,), activation="relu", optimizer="adam",
                               epochs=2, random_state=0, n_threads=t).fit(X, y)
        runs[t] = clf.weights_ + clf.biases_
    _same(runs, "FastNNClassifier")


def test_rows_path_and_conv():
    """A net that takes the rows path (a wide hidden layer, mini-batches of 16) and a conv
    net."""
    X, y, _ = _data(n=96, seed=4)
    Y = np.eye(10)[y]
    rng = np.random.default_rng(5)
    W0 = [rng.normal(size=(256, 784)) * 0.05, rng.normal(size=(256, 256)) * 0.05,
          rng.normal(size=(10, 256)) * 0.05]
    b0 = [np.zeros(256), np.zeros(256), np.zeros(10)]
    conv = [{"kind": "conv2d", "in_shape": (28, 28, 1), "out_shape": (24, 24, 6),
             "geom": (5, 5, 1, 1, 0, 0)},
            {"kind": "maxpool2d", "in_shape": (24, 24, 6), "out_shape": (12, 12, 6),
             "geom": (2, 2, 2, 2)}, None]
    Wc = [rng.normal(size=(5, 5, 1, 6)) * 0.2, None, rng.normal(size=(10, 864)) * 0.05]
    bc = [np.zeros(6), None, np.zeros(10)]
    for label, W, b, acts, layers in (
            ("rows", W0, b0, ["relu", "tanh", "softmax"], None),
            ("conv", Wc, bc, ["relu", "identity", "softmax"], conv)):
        runs = {}
        for t in THREADS:
            Wt = [None if w is None else w.copy() for w in W]
            bt = [None if v is None else v.copy() for v in b]
            res = _core.train(Wt, bt, X, Y, _core.TrainConfig(
                acts=acts, cost="log_likelihood", epochs=2, batch=16, eta=0.05,
                optimizer="momentum", momentum=0.9, state=_core.new_state("momentum", Wt, bt),
                layers=layers, n_threads=t))
            runs[t] = [p for p in Wt + bt if p is not None]
            if t > 1:
                assert res["path"] == "rows", res
        _same(runs, label)

"""Results do not depend on the thread count (issue 15, item 3): with the same seeds, every
front door ends with bit-identical weights for n_threads = 1, 2 and 3.

The K split adds the first layer's partial sums over fixed blocks of inputs in block order
(src_c/path_ksplit.h), the rows path gives each weight to one thread that sums over every
example, and conv2d's update splits the kernel's rows, so no sum's order depends on how many
threads share it.  Above FNN_SMALL_M (64) examples a call goes to BLAS, whose sums depend on
the call's shape: the rows path and the forward-only passes then cut the examples and neurons
into the same fixed blocks whatever the thread count (src_c/path_rows.h, evaluate.h); the
tests named *_big cover those sizes.  Each case prints the largest difference (which must be
exactly 0)."""
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


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("batch", [7, 33, 50])
def test_rows_path_small_odd(batch, dtype):
    """Small mini-batches on the rows path with layer sizes that are no multiple of a vector:
    the backward pass calls BLAS even here (on fixed blocks of the deltas' columns)."""
    X, y, _ = _data(n=200, seed=15)
    X, Y = X.astype(dtype), np.eye(10, dtype=dtype)[y]
    runs = {}
    for t in THREADS:
        W, b = _dense_net([784, 50, 300, 33, 10], 16, dtype)
        res = _core.train(W, b, X, Y, _core.TrainConfig(
            acts=["gelu", "sigmoid", "elu", "softmax"], cost="log_likelihood", epochs=2,
            batch=batch, eta=0.1, optimizer="rmsprop", dropout=0.2,
            state=_core.new_state("rmsprop", W, b), n_threads=t))
        runs[t] = W + b
        assert res["path"] == ("rows" if t > 1 else "serial"), res
    _same(runs, f"rows path, odd sizes, batch {batch}, {np.dtype(dtype).name}")


# ---- mini-batches above FNN_SMALL_M: BLAS on fixed blocks ----------------------------------

DTYPES = [np.float64, np.float32]


def _dense_net(sizes, seed, dtype):
    rng = np.random.default_rng(seed)
    W = [(rng.normal(size=(sizes[i + 1], sizes[i])) * 0.05).astype(dtype)
         for i in range(len(sizes) - 1)]
    b = [(rng.normal(size=sizes[i + 1]) * 0.05).astype(dtype) for i in range(len(sizes) - 1)]
    return W, b


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch", [65, 128, 200])
def test_rows_path_big(batch, dtype):
    """[784, 256, 256, 10] with momentum and dropout: the hidden layers split by neuron, the
    output layer by examples, every update by rows."""
    X, y, _ = _data(n=400, seed=6)
    X, Y = X.astype(dtype), np.eye(10, dtype=dtype)[y]
    runs = {}
    for t in THREADS:
        W, b = _dense_net([784, 256, 256, 10], 7, dtype)
        res = _core.train(W, b, X, Y, _core.TrainConfig(
            acts=["relu", "sigmoid", "softmax"], cost="log_likelihood", epochs=2, batch=batch,
            eta=0.05, optimizer="momentum", momentum=0.9, dropout=0.1,
            state=_core.new_state("momentum", W, b), n_threads=t))
        runs[t] = W + b
        assert res["path"] == ("rows" if t > 1 else "serial"), res
    _same(runs, f"rows path, batch {batch}, {np.dtype(dtype).name}")


def test_conv_big():
    """A conv net on mini-batches of 80: the conv and pooling layers take the fixed blocks of
    examples too, and the dense layer after them calls BLAS."""
    X, y, _ = _data(n=160, seed=8)
    Y = np.eye(10)[y]
    rng = np.random.default_rng(9)
    layers = [{"kind": "conv2d", "in_shape": (28, 28, 1), "out_shape": (13, 13, 4),
               "geom": (3, 3, 2, 2, 0, 0)},
              {"kind": "maxpool2d", "in_shape": (13, 13, 4), "out_shape": (6, 6, 4),
               "geom": (2, 2, 2, 2)}, None, None]
    W0 = [rng.normal(size=(3, 3, 1, 4)) * 0.3, None, rng.normal(size=(64, 144)) * 0.1,
          rng.normal(size=(10, 64)) * 0.1]
    b0 = [np.zeros(4), None, np.zeros(64), np.zeros(10)]
    runs = {}
    for t in THREADS:
        W = [None if w is None else w.copy() for w in W0]
        b = [None if v is None else v.copy() for v in b0]
        _core.train(W, b, X, Y, _core.TrainConfig(
            acts=["relu", "identity", "tanh", "softmax"], cost="log_likelihood", epochs=2,
            batch=80, eta=0.05, optimizer="adam", state=_core.new_state("adam", W, b),
            layers=layers, n_threads=t))
        runs[t] = [p for p in W + b if p is not None]
    _same(runs, "conv, batch 80")


@pytest.mark.parametrize("dtype", DTYPES)
def test_network2_big(dtype):
    _, _, data = _data(seed=10)
    runs = {}
    for t in THREADS:
        random.seed(4)
        np.random.seed(4)
        net = network2.Network([784, 100, 10], cost=network2.CrossEntropyCost, n_threads=t,
                               dtype=dtype)
        net.SGD(list(data), 2, 128, 0.5, lmbda=1.0, momentum=0.5)
        runs[t] = net.weights + net.biases
    _same(runs, f"network2 batch 128 {np.dtype(dtype).name}")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_sequential_fit_big(dtype):
    from fastnn import keras
    X, y, _ = _data(seed=11)
    runs = {}
    for t in THREADS:
        np.random.seed(5)
        m = keras.Sequential([keras.layers.Dense(256, activation="relu", input_shape=(784,)),
                              keras.layers.Dense(128, activation="relu"),
                              keras.layers.Dense(10, activation="softmax")], dtype=dtype,
                             n_threads=t)
        m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        m.fit(X.astype(dtype), y, epochs=2, batch_size=128, verbose=0)
        runs[t] = m.get_weights()
    _same(runs, f"Sequential batch_size=128 {dtype}")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_estimator_fit_big(dtype):
    from fastnn.sklearn import FastNNClassifier
    X, y, _ = _data(n=500, seed=12)
    runs = {}
    for t in THREADS:
        clf = FastNNClassifier(hidden_layer_sizes=(128,), activation="relu", optimizer="adam",
                               mini_batch_size=200, epochs=2, dtype=dtype, random_state=0,
                               n_threads=t).fit(X, y, eval_set=(X[:150], y[:150]))
        runs[t] = clf.weights_ + clf.biases_ + [np.array(clf.history_["eval_cost"])]
    _same(runs, f"FastNNClassifier batch 200 {dtype}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_predict_evaluate_big(dtype):
    """1000 rows in chunks of 256, each cut into the fixed blocks; the cost sums are kept per
    block and added in block order."""
    rng = np.random.default_rng(13)
    W, b = _dense_net([784, 256, 256, 10], 14, dtype)
    X = rng.random((1000, 784)).astype(dtype)
    Y = np.eye(10, dtype=dtype)[rng.integers(0, 10, 1000)]
    acts = ["relu", "relu", "softmax"]
    runs = {t: [_core.predict(W, b, acts, X, n_threads=t)] for t in THREADS}
    _same(runs, f"predict 1000 rows {np.dtype(dtype).name}")
    evals = {t: [np.array(_core.evaluate(W, b, acts, "log_likelihood", X, Y, n_threads=t))]
             for t in THREADS}
    _same(evals, f"evaluate 1000 rows {np.dtype(dtype).name}")

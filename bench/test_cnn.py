"""W5 and W6 (../shared/BENCHMARKS.md): convolutional training, fastnn against PyTorch.

W5: the book's chapter-6 net, ConvPool(20 maps 5x5, pool 2) + ConvPool(40 maps 5x5, pool 2)
+ FC 100 + softmax, ReLU, SGD eta 0.03 lmbda 0.1, mini-batch 10, float32, network3's order (no
shuffle), on MNIST (``../shared/data/mnist.pkl.gz``).  One round trains 10,000 images.
W6: the Keras CNN lesson, Conv2D(32, 3, same, relu) + MaxPool 2 + Conv2D(64, 3, same, relu) +
MaxPool 2 + Flatten + Dense(128, relu) + Dense(10), Adam 1e-3, batch 32, float32, on
Fashion-MNIST.  One round trains 6,000 images.

Each benchmark's extra_info holds the seconds per 10,000 images, the GFLOP/s by the protocol's
count (9.8 MFLOP per W5 training example, 25 MFLOP per W6 one) and the same-run GEMM rate, so
the report gives ratios against the peers and the FLOP limit of this run.  FASTNN_BENCH_QUICK=1
runs 300 random images once.
"""
import os
import time

import numpy as np
import pytest

from _harness import QUICK

HERE = os.path.dirname(os.path.abspath(__file__))
FLOP = {"W5": 9.8e6, "W6": 25e6}
ROUND = {"W5": 300 if QUICK else 10000, "W6": 300 if QUICK else 6000}
IMPLS = ["fastnn-f32-1t", "fastnn-f32-2t", "torch-1t", "torch-2t", "numpy-1t", "keras-2t"]
# the numpy oracle (fastnn/reference_cnn.py, plain loops, float64, one example at a time) trains
# this many images a round; its time is given per 10,000 like the others
ORACLE_IMAGES = {"W5": 20 if not QUICK else 4, "W6": 10 if not QUICK else 2}


def _same(n, k, s=1):
    out = -(-n // s)
    return out, max((out - 1) * s + k - n, 0) // 2


def fastnn_net(wid, rng):
    """The engine's description (layers, W, b, acts) of W5 or W6, float32."""
    f32 = np.float32
    if wid == "W5":
        specs = [((28, 28, 1), 5, 20, 0), ((12, 12, 20), 5, 40, 0)]
        dense = [(640, 100, "relu"), (100, 10, "softmax")]
    else:
        specs = [((28, 28, 1), 3, 32, 1), ((14, 14, 32), 3, 64, 1)]
        dense = [(3136, 128, "relu"), (128, 10, "softmax")]
    layers, W, b, acts = [], [], [], []
    for (h, w, c), k, co, same in specs:
        pad = _same(h, k)[1] if same else 0
        oh = h if same else h - k + 1
        layers += [{"kind": "conv2d", "in_shape": (h, w, c), "out_shape": (oh, oh, co),
                    "geom": (k, k, 1, 1, pad, pad)},
                   {"kind": "maxpool2d", "in_shape": (oh, oh, co),
                    "out_shape": (oh // 2, oh // 2, co), "geom": (2, 2, 2, 2)}]
        W += [(rng.standard_normal((k, k, c, co)) * np.sqrt(2.0 / (k * k * c))).astype(f32), None]
        b += [np.zeros(co, f32), None]
        acts += ["relu", "identity"]
    for n_in, n_out, act in dense:
        layers.append(None)
        W.append((rng.standard_normal((n_out, n_in)) * np.sqrt(2.0 / n_in)).astype(f32))
        b.append(np.zeros(n_out, f32))
        acts.append(act)
    return layers, W, b, acts


def data(wid):
    """(X (n, 784) float32 in [0, 1], labels) for a round."""
    n = ROUND[wid]
    if not QUICK:
        if wid == "W5":
            from fastnn import datasets
            path = os.path.join(HERE, "..", "..", "shared", "data", "mnist.pkl.gz")
            if os.path.exists(path):
                (x, y), _ = datasets.load_mnist(path=path)
                return (x[:n].reshape(n, 784) / np.float32(255)).astype(np.float32), y[:n]
        else:
            from fastnn import datasets
            try:
                (x, y), _ = datasets.load_fashion_mnist()
                if len(x) >= n:
                    return (x[:n].reshape(n, 784) / np.float32(255)).astype(np.float32), y[:n]
            except (OSError, ValueError):
                pass
        pytest.skip(f"{wid}: the real data is not installed")
    rng = np.random.default_rng(1)
    return rng.random((n, 784), dtype=np.float32), rng.integers(0, 10, n)


def run_fastnn(wid, threads, X, y):
    """(train one round, accuracy on the round's images afterwards)"""
    from fastnn import _core
    rng = np.random.default_rng(0)
    layers, W, b, acts = fastnn_net(wid, rng)
    Y = np.eye(10, dtype=np.float32)[y]
    if wid == "W5":
        cfg = _core.TrainConfig(acts=acts, cost="log_likelihood", epochs=1, batch=10, eta=0.03,
                                lmbda=0.1, reg_n=len(X) // 10, layers=layers, n_threads=threads)
    else:
        cfg = _core.TrainConfig(acts=acts, cost="log_likelihood", epochs=1, batch=32, eta=1e-3,
                                optimizer="adam", state=_core.new_state("adam", W, b),
                                layers=layers, n_threads=threads)
    def accuracy():
        out = _core.predict(W, b, acts, X, n_threads=threads, layers=layers)
        return float(np.mean(out.argmax(axis=1) == y))
    return (lambda: _core.train(W, b, X, Y, cfg)), accuracy


def run_torch(wid, threads, X, y):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    nn = torch.nn
    Xt = torch.tensor(X.reshape(-1, 1, 28, 28))
    yt = torch.tensor(np.asarray(y, dtype=np.int64))
    if wid == "W5":
        net = nn.Sequential(nn.Conv2d(1, 20, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(20, 40, 5),
                            nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(640, 100),
                            nn.ReLU(), nn.Linear(100, 10))
        opt = torch.optim.SGD(net.parameters(), lr=0.03, weight_decay=0.1 / (len(X) // 10))
        m = 10
    else:
        net = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                            nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10))
        opt = torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-7)
        m = 32
    loss = nn.CrossEntropyLoss()

    def epoch():
        for i in range(0, len(Xt), m):
            opt.zero_grad()
            loss(net(Xt[i:i + m]), yt[i:i + m]).backward()
            opt.step()

    def accuracy():
        with torch.no_grad():
            return float((net(Xt).argmax(dim=1) == yt).float().mean())
    return epoch, accuracy


def run_oracle(wid, threads, X, y):
    """The numpy oracle on the round's first ORACLE_IMAGES images: plain SGD (it has no Adam;
    the step is a negligible part of its time), the same layers and mini-batch."""
    from fastnn.reference_cnn import ConvNetwork
    rng = np.random.default_rng(0)
    layers, W, b, acts = fastnn_net(wid, rng)
    net = ConvNetwork(layers, W, b, acts)
    k = ORACLE_IMAGES[wid]
    Xo, Y = X[:k].astype(np.float64), np.eye(10)[y[:k]]
    m, eta = (10, 0.03) if wid == "W5" else (32, 1e-3)

    def epoch():
        net.sgd_epoch(Xo, Y, np.arange(k), m, eta)

    def accuracy():
        return float(np.mean(net.feedforward(Xo).argmax(axis=1) == y[:k]))
    return epoch, accuracy, k


def run_keras(wid, threads, X, y):
    """Keras 3 (any backend it finds; TensorFlow's or PyTorch's), the same model and step."""
    keras = pytest.importorskip("keras")
    keras.utils.set_random_seed(0)
    L = keras.layers
    if wid == "W5":
        model = keras.Sequential([L.Input((28, 28, 1)), L.Conv2D(20, 5, activation="relu"),
                                  L.MaxPooling2D(2), L.Conv2D(40, 5, activation="relu"),
                                  L.MaxPooling2D(2), L.Flatten(), L.Dense(100, activation="relu"),
                                  L.Dense(10)])
        opt, m = keras.optimizers.SGD(0.03), 10
    else:
        model = keras.Sequential([L.Input((28, 28, 1)),
                                  L.Conv2D(32, 3, padding="same", activation="relu"),
                                  L.MaxPooling2D(2), L.Conv2D(64, 3, padding="same",
                                                              activation="relu"),
                                  L.MaxPooling2D(2), L.Flatten(), L.Dense(128, activation="relu"),
                                  L.Dense(10)])
        opt, m = keras.optimizers.Adam(1e-3), 32
    model.compile(optimizer=opt,
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    Xk = X.reshape(-1, 28, 28, 1)

    def epoch():
        model.fit(Xk, y, batch_size=m, epochs=1, shuffle=False, verbose=0)

    def accuracy():
        return float(np.mean(model.predict(Xk, verbose=0).argmax(axis=1) == y))
    return epoch, accuracy


def gemm_gflops():
    """float32 GEMM rate of this run (numpy, 2048 x 2048), GFLOP/s."""
    a = np.random.default_rng(0).random((2048, 2048), dtype=np.float32)
    a @ a
    t = time.perf_counter()
    for _ in range(3):
        a @ a
    return 3 * 2 * 2048 ** 3 / (time.perf_counter() - t) / 1e9


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("wid", ["W5", "W6"])
def test_cnn(benchmark, wid, impl):
    benchmark.group = wid
    X, y = data(wid)
    name, threads = impl.rsplit("-", 1)
    threads = int(threads[:-1])
    images = len(X)
    if name == "numpy":
        fn, accuracy, images = run_oracle(wid, threads, X, y)
    else:
        run = {"fastnn-f32": run_fastnn, "torch": run_torch, "keras": run_keras}[name]
        fn, accuracy = run(wid, threads, X, y)
    rounds = 1 if QUICK or name == "numpy" else 3
    benchmark.pedantic(fn, rounds=rounds, iterations=1,
                       warmup_rounds=0 if QUICK or name == "numpy" else 1)
    sec = benchmark.stats.stats.median
    flops, gemm = FLOP[wid] * images, gemm_gflops() * 1e9
    benchmark.extra_info.update({
        "impl": impl, "quick": QUICK, "dtype": "float32", "threads": threads,
        "images": images, "s_per_10k": sec / images * 1e4, "gflops": flops / sec / 1e9,
        "flops": flops, "gemm_flops_per_s": gemm, "limit_s": flops / gemm,
        "fraction_of_limit": flops / gemm / sec,
        # on the round's own images after its training rounds (a check that it learns)
        "accuracy": accuracy()})

"""The workloads of ../shared/BENCHMARKS.md and one class per implementation.

Every implementation is used the same way by the benchmarks:

    impl = make_impl(name, wl, ctx)    # set-up, untimed: model, optimizer, and converting the
                                       #   input to the implementation's form where it has
                                       #   to (fastnn W1: Nielsen's list; torch: tensors),
                                       #   that conversion's time kept in impl.setup_s
    impl.epoch()                       # one timed epoch; W1 includes the test-set evaluation
                                       #   and returns its accuracy
    impl.accuracy()                    # test accuracy (untimed)
    impl.predict()                     # W4: the timed call; the outputs (n_test, 10)

A constructor calls ``pytest.skip(reason)`` when its library is missing or the workload is
outside what it implements.  Sizes shrink with FASTNN_BENCH_QUICK=1 (smoke runs).
"""
import contextlib
import io
import os
import random
import time
from dataclasses import dataclass, field

import numpy as np
import pytest

from fastnn import bench as fbench

QUICK = os.environ.get("FASTNN_BENCH_QUICK", "") not in ("", "0")
SEED = 12345


@dataclass(frozen=True)
class Workload:
    id: str
    title: str
    sizes: tuple
    hidden: str            # activation of the hidden layers
    output: str            # 'sigmoid' or 'softmax' (logits + softmax cross-entropy)
    cost: str              # engine cost name: 'quadratic' or 'log_likelihood'
    dtype: str
    optimizer: str         # 'sgd', 'momentum' or 'adam'
    eta: float
    batch: int
    n_train: int
    n_test: int
    rounds: int            # timed epochs (or predict calls)
    warmup: int            # untimed ones before them
    momentum: float = 0.0
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-7
    init: str = "glorot"   # 'nielsen' (N(0,1), as network.py) or 'glorot' (Keras' default)
    evaluate_each_epoch: bool = False
    predict_only: bool = False
    description: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def flops_train(self):
        if self.predict_only:
            return 0
        return fbench.training_flops(self.sizes, self.n_train, self.batch)

    @property
    def flops_eval(self):
        if self.predict_only or self.evaluate_each_epoch:
            return fbench.forward_flops(self.sizes, self.n_test)
        return 0

    @property
    def flops(self):
        return self.flops_train + self.flops_eval


def _n(full, quick):
    return quick if QUICK else full


WORKLOADS = {
    "W1": Workload(
        "W1", "Nielsen ch. 1", (784, 30, 10), "sigmoid", "sigmoid", "quadratic", "float64",
        "sgd", 3.0, 10, _n(50000, 2000), _n(10000, 500), rounds=_n(5, 1), warmup=_n(1, 0),
        init="nielsen", evaluate_each_epoch=True,
        description="[784, 30, 10] sigmoid, quadratic cost, SGD eta 3.0, mini-batch 10, "
                    "Nielsen's (x, y) list input, test-set evaluation after every epoch "
                    "(timed); N(0, 1) weights as network.py draws them, the same for every "
                    "peer but scikit-learn."),
    "W2": Workload(
        "W2", "the Keras Fashion-MNIST tutorial", (784, 128, 10), "relu", "softmax",
        "log_likelihood", "float32", "adam", 1e-3, 32, _n(60000, 2000), _n(10000, 500),
        rounds=_n(9, 1), warmup=_n(1, 0),
        description="Dense(128, relu), Dense(10) logits, sparse softmax cross-entropy, Adam "
                    "(1e-3, 0.9, 0.999, eps 1e-7), batch 32; 1 warm-up + 9 timed epochs = the "
                    "tutorial's 10; Glorot-uniform weights, zero biases (Keras' default), the "
                    "same for every peer but scikit-learn."),
    "W3": Workload(
        "W3", "wide", (784, 1024, 1024, 10), "relu", "softmax", "log_likelihood", "float32",
        "momentum", 0.01, 128, _n(60000, 1000), _n(10000, 500), rounds=_n(3, 1), warmup=0,
        momentum=0.9,
        description="[784, 1024, 1024, 10] relu, softmax cross-entropy, SGD eta 0.01 momentum "
                    "0.9, batch 128, one epoch per round (median of the rounds)."),
    "W4": Workload(
        "W4", "inference", (784, 128, 10), "relu", "softmax", "log_likelihood", "float32",
        "adam", 1e-3, 32, 0, _n(10000, 500), rounds=_n(20, 1), warmup=_n(2, 0),
        predict_only=True,
        description="predict the test images with W2's model (trained one epoch by fastnn "
                    "float32 once per session; every implementation gets the same weights)."),
}

# One benchmark per implementation in every workload (a peer that does not apply skips).
FASTNN_VARIANTS = ("fastnn-f64-1t", "fastnn-f64-2t", "fastnn-f32-1t", "fastnn-f32-2t")
IMPL_NAMES = {
    "W1": FASTNN_VARIANTS + ("loop", "numpy", "numpy-f32", "torch", "sklearn", "keras"),
    "W2": FASTNN_VARIANTS + ("fastnn-keras", "loop", "numpy", "torch", "sklearn", "keras"),
    "W3": FASTNN_VARIANTS + ("loop", "numpy", "torch", "sklearn", "keras"),
    "W4": FASTNN_VARIANTS + ("fastnn-keras", "loop", "numpy", "torch", "sklearn", "keras"),
}


# ---------------------------------------------------------------------------------------------
# data and initial parameters

class Data:
    """Fashion-MNIST once per session, converted per dtype on first use."""

    def __init__(self):
        from fastnn import datasets
        try:
            loaded = datasets.load_fashion_mnist(download=False)
        except datasets.DatasetNotFoundError as e:
            if not QUICK:
                pytest.skip("Fashion-MNIST not found (install Debian's dataset-fashion-mnist "
                            "or set FASTNN_DATA): %s" % str(e).splitlines()[0])
            loaded = datasets.load_sample()  # real images, 3000 train / 1000 test
        (self.x_train, self.y_train), (self.x_test, self.y_test) = loaded
        self.source = "sample" if getattr(loaded, "is_sample", False) else \
            str(getattr(loaded, "source", ""))
        self._cache = {}
        self._nielsen = {}

    def arrays(self, wl, dtype):
        """Return X (n, 784), y (n,) int64, Y one-hot (n, 10), tX, ty, tY of ``dtype``."""
        key = (wl.n_train, wl.n_test, np.dtype(dtype).name)
        if key not in self._cache:
            from fastnn import datasets
            n, nt = wl.n_train, wl.n_test
            if n:
                X = datasets.to_array(self.x_train[:n], dtype)
            else:  # W4 trains nothing
                X = np.empty((0, self.x_train[0].size), dtype=dtype)
            y = self.y_train[:n].astype(np.int64)
            tX = datasets.to_array(self.x_test[:nt], dtype)
            ty = self.y_test[:nt].astype(np.int64)
            self._cache[key] = (X, y, datasets.one_hot(y, 10, dtype), tX, ty,
                                datasets.one_hot(ty, 10, dtype))
        return self._cache[key]

    def nielsen_lists(self, wl):
        """Nielsen's (training_data, test_data) lists: (784, 1) float64 columns, one-hot
        (10, 1) targets for training, int labels for the test set."""
        key = (wl.n_train, wl.n_test)
        if key not in self._nielsen:
            from fastnn import datasets
            tr = datasets.to_nielsen(self.x_train[:wl.n_train], self.y_train[:wl.n_train],
                                     vectorize=True)
            te = datasets.to_nielsen(self.x_test[:wl.n_test], self.y_test[:wl.n_test])
            self._nielsen[key] = (tr, te)
        return self._nielsen[key]


def initial_params(wl):
    """Float64 (weights, biases), weights (n_out, n_in), biases (n_out, 1), from SEED."""
    rng = np.random.RandomState(SEED)
    if wl.init == "nielsen":
        from fastnn.reference import nielsen_init
        return nielsen_init(list(wl.sizes), rng, scale="large")
    W, b = [], []
    for n_in, n_out in zip(wl.sizes[:-1], wl.sizes[1:]):
        lim = np.sqrt(6.0 / (n_in + n_out))
        W.append(rng.uniform(-lim, lim, size=(n_out, n_in)))
        b.append(np.zeros((n_out, 1)))
    return W, b


def blas_threads():
    """numpy's BLAS thread count, or 'default' when threadpoolctl is missing."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "default"
    n = [lib.get("num_threads") for lib in threadpool_info() if lib.get("user_api") == "blas"]
    return max(n) if n else "default"


# ---------------------------------------------------------------------------------------------
# implementations

class Impl:
    family = "?"
    dtype = "float64"
    threads = "default"
    notes = ""

    def __init__(self, wl, ctx):
        self.wl = wl
        self.ctx = ctx
        self.setup_s = None
        self.extra = {}
        self.W0, self.b0 = ctx.params(wl)

    def epoch(self):
        raise NotImplementedError

    def accuracy(self):
        raise NotImplementedError

    def predict(self):
        raise NotImplementedError

    def after(self):
        """Untimed checks after the timed rounds; returns a dict for extra_info."""
        return {}


def _acc(outputs, labels):
    return float(np.mean(np.argmax(np.asarray(outputs), axis=1) == labels))


class FastnnImpl(Impl):
    """fastnn through the engine call its front doors make (fastnn._core.train).

    W1 builds a ``network.Network`` and converts Nielsen's lists once (set-up), then each
    epoch is the engine call ``Network.SGD`` makes for one epoch: shuffle order drawn with
    ``random`` as the book does, training and test-set evaluation in one call.
    """
    family = "fastnn"

    def __init__(self, wl, ctx, dtype, threads):
        super().__init__(wl, ctx)
        from fastnn import _core, _engine, network, network2
        if threads is not None and threads > 1 and not _engine.openmp_enabled():
            pytest.skip("fastnn was built without OpenMP: %d threads would run as 1" % threads)
        self.core = _core
        self.dtype = np.dtype(dtype).name
        self.threads = threads
        dt = np.dtype(dtype)
        if wl.id == "W1":
            self.net = network.Network(list(wl.sizes), dtype=dt, n_threads=threads)
        else:
            self.net = network2.Network(list(wl.sizes), cost=network2.LogLikelihoodCost,
                                        activation=wl.hidden, dtype=dt, n_threads=threads)
        self.net.weights = [w.astype(dt) for w in self.W0]
        self.net.biases = [b.astype(dt) for b in self.b0]
        if wl.predict_only:
            W, b = ctx.w2_model()
            self.net.weights = [w.astype(dt) for w in W]
            self.net.biases = [x.astype(dt) for x in b]
        self.acts = self.net._acts()
        self.W, self.b = _core.sync_params(self.net, self.net.sizes, dt)
        self.random = random.Random(SEED)
        self.rng = np.random.RandomState(SEED)
        if wl.id == "W1":
            tr, te = ctx.data.nielsen_lists(wl)  # the user's data, built before the clock
        t0 = time.perf_counter()
        if wl.id == "W1":
            self.X, self.Y, self.n = _core.to_arrays(tr, wl.sizes[0], wl.sizes[-1], dt,
                                                     "training_data")
            self.tX, self.tY, _ = _core.to_arrays(te, wl.sizes[0], wl.sizes[-1], dt,
                                                  "test_data", one_hot=False)
        else:
            X, y, Y, tX, ty, tY = ctx.data.arrays(wl, dt)
            self.X, self.Y, self.n, self.tX, self.tY, self.ty = X, Y, len(X), tX, tY, ty
        if wl.id == "W1":  # elsewhere the input already is the engine's (n, 784) array
            self.setup_s = time.perf_counter() - t0
        self.ty = ctx.data.arrays(wl, dt)[4]
        self.state = self.core.new_state(wl.optimizer, self.W, self.b)
        self.step = 0
        self.shuffle_times = []

    def epoch(self):
        wl = self.wl
        hits = []
        if wl.id == "W1":
            t0 = time.perf_counter()
            orders = self.core.nielsen_orders(self.n, 1, self.random)
            self.shuffle_times.append(time.perf_counter() - t0)
        else:
            orders = self.rng.permutation(self.n).astype(np.int32)[None, :]
        res = self.core.train(self.W, self.b, self.X, self.Y, self.core.TrainConfig(
            acts=self.acts, cost=wl.cost, epochs=1, batch=wl.batch, eta=wl.eta,
            optimizer=wl.optimizer, momentum=wl.momentum, beta1=wl.beta1, beta2=wl.beta2,
            eps=wl.eps, step=self.step, state=self.state, orders=orders,
            eval_data=(self.tX, self.tY) if wl.evaluate_each_epoch else None,
            on_epoch=(lambda st: hits.append(st["eval_correct"])) if wl.evaluate_each_epoch
            else None, n_threads=self.threads))
        self.step = res["step"]
        return hits[-1] / len(self.tX) if hits else None

    def accuracy(self):
        return _acc(self.predict(), self.ty)

    def predict(self):
        return self.core.predict(self.W, self.b, self.acts, self.tX, self.threads)

    def after(self):
        """W1: the protocol's marginal epoch through the public API with Nielsen's list,
        (T(SGD of 1 + N epochs) - T(SGD of 1 epoch)) / N, each call converting the list."""
        if self.wl.id != "W1":
            return {}
        tr, te = self.ctx.data.nielsen_lists(self.wl)
        N = 1 if QUICK else 2
        times = {}
        for epochs in (1, 1 + N):
            data = list(tr)  # SGD leaves the caller's list shuffled, as the book does
            with contextlib.redirect_stdout(io.StringIO()):
                t0 = time.perf_counter()
                self.net.SGD(data, epochs, self.wl.batch, self.wl.eta, test_data=te)
                times[epochs] = time.perf_counter() - t0
        return {"api_call_s": times[1], "marginal_epoch_s": (times[1 + N] - times[1]) / N,
                "marginal_n": N,
                # the book's random.shuffle order, drawn in Python each epoch (inside the time)
                "shuffle_s": float(np.median(self.shuffle_times)) if self.shuffle_times
                else None}


class FastnnKerasImpl(Impl):
    """fastnn's Keras-style front door (fastnn.Sequential), when it exists."""
    family = "fastnn"
    dtype = "float32"

    def __init__(self, wl, ctx):
        super().__init__(wl, ctx)
        import importlib.util
        if importlib.util.find_spec("fastnn.keras") is None:
            pytest.skip("fastnn.keras (the Sequential API) is not in this checkout")
        try:
            import fastnn
            from fastnn import layers, optimizers, losses
            Sequential = fastnn.Sequential
        except Exception as e:
            pytest.skip("fastnn.Sequential not usable: %s: %s" % (type(e).__name__, e))
        X, y, Y, tX, ty, tY = ctx.data.arrays(wl, np.float32)
        self.X, self.y, self.tX, self.ty = X, y, tX, ty
        try:
            self.model = Sequential([
                layers.Dense(wl.sizes[1], activation=wl.hidden),
                layers.Dense(wl.sizes[2])])
            self.model.compile(
                optimizer=optimizers.Adam(learning_rate=wl.eta, beta_1=wl.beta1,
                                          beta_2=wl.beta2, epsilon=wl.eps),
                loss=losses.SparseCategoricalCrossentropy(from_logits=True))
            self.model.build((None, wl.sizes[0]))
            W, b = ctx.w2_model() if wl.predict_only else (self.W0, self.b0)
            ws = []
            for w, x in zip(W, b):
                ws += [np.ascontiguousarray(w.T, dtype=np.float32),
                       x.ravel().astype(np.float32)]
            self.model.set_weights(ws)
        except Exception as e:
            pytest.skip("fastnn.Sequential API differs from Keras' (%s: %s)" %
                        (type(e).__name__, e))
        try:
            import fastnn as _f
            self.threads = _f.get_num_threads()
        except Exception:
            pass
        self.notes = ("fastnn.Sequential, %s: its per-call input checks are inside the time" %
                      ("predict(x)" if wl.predict_only else "one fit(epochs=1) per round"))

    def epoch(self):
        self.model.fit(self.X, self.y, epochs=1, batch_size=self.wl.batch, verbose=0)

    def accuracy(self):
        return _acc(self.predict(), self.ty)

    def predict(self):
        return self.model.predict(self.tX, verbose=0)


class LoopImpl(Impl):
    """``reference.LoopNetwork``: network.py's algorithm, one example at a time."""
    family = "loop"
    dtype = "float64"

    def __init__(self, wl, ctx):
        if wl.id != "W1":
            pytest.skip("loop is the chapter-1 algorithm only (sigmoid layers, quadratic cost, "
                        "plain SGD); %s's network is relu with a softmax output" % wl.id)
        super().__init__(wl, ctx)
        from fastnn.reference import LoopNetwork
        self.threads = blas_threads()
        self.net = LoopNetwork(self.W0, self.b0)
        X, y, Y, tX, ty, tY = ctx.data.arrays(wl, np.float64)
        self.X, self.Y, self.tX, self.ty = X, Y, tX, ty
        self.rng = np.random.RandomState(SEED)

    def epoch(self):
        order = self.rng.permutation(len(self.X))
        self.net.sgd_epoch(self.X, self.Y, order, self.wl.batch, self.wl.eta)
        return self.net.evaluate(self.tX, self.ty) / len(self.tX)


class NumpyImpl(Impl):
    """``reference.MatrixNetwork``: the project's matrix-based numpy oracle."""
    family = "numpy"

    def __init__(self, wl, ctx, dtype=None):
        super().__init__(wl, ctx)
        from fastnn.reference import MatrixNetwork
        self.dtype = np.dtype(dtype or wl.dtype).name
        self.threads = blas_threads()
        W, b = ctx.w2_model() if wl.predict_only else (self.W0, self.b0)
        self.net = MatrixNetwork(W, b, activation=wl.hidden, output_activation=wl.output,
                                 cost=wl.cost, dtype=self.dtype)
        X, y, Y, tX, ty, tY = ctx.data.arrays(wl, self.dtype)
        self.X, self.Y, self.tX, self.ty = X, Y, tX, ty
        self.rng = np.random.RandomState(SEED)

    def epoch(self):
        wl = self.wl
        order = self.rng.permutation(len(self.X))
        self.net.train_epoch(self.X, self.Y, order, wl.batch, wl.eta, optimizer=wl.optimizer,
                             momentum=wl.momentum, beta1=wl.beta1, beta2=wl.beta2, eps=wl.eps)
        if wl.evaluate_each_epoch:
            return self.net.accuracy(self.tX, self.ty) / len(self.tX)
        return None

    def accuracy(self):
        return self.net.accuracy(self.tX, self.ty) / len(self.tX)

    def predict(self):
        return self.net.feedforward(self.tX)


class TorchImpl(Impl):
    """PyTorch CPU, float32: the same network, loss and optimizer, a plain training loop."""
    family = "torch"
    dtype = "float32"

    def __init__(self, wl, ctx):
        try:
            import torch
        except ImportError as e:
            pytest.skip("torch not installed (pip install torch): %s" % e)
        super().__init__(wl, ctx)
        self.torch = torch
        torch.manual_seed(SEED)
        self.threads = torch.get_num_threads()
        W, b = ctx.w2_model() if wl.predict_only else (self.W0, self.b0)
        mods = []
        L = len(W)
        for l, (w, x) in enumerate(zip(W, b)):
            lin = torch.nn.Linear(w.shape[1], w.shape[0])
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(w.astype(np.float32)))
                lin.bias.copy_(torch.from_numpy(x.ravel().astype(np.float32)))
            mods.append(lin)
            act = wl.hidden if l < L - 1 else wl.output
            if act == "sigmoid":
                mods.append(torch.nn.Sigmoid())
            elif act == "relu":
                mods.append(torch.nn.ReLU())
            # softmax output: logits here, softmax inside cross_entropy
        self.model = torch.nn.Sequential(*mods)
        X, y, Y, tX, ty, tY = ctx.data.arrays(wl, np.float32)
        t0 = time.perf_counter()
        self.X = torch.from_numpy(X)
        self.y = torch.from_numpy(y)
        self.Y = torch.from_numpy(Y)
        self.tX = torch.from_numpy(tX)
        self.ty = torch.from_numpy(ty)
        self.setup_s = time.perf_counter() - t0
        params = self.model.parameters()
        if wl.optimizer == "adam":
            self.opt = torch.optim.Adam(params, lr=wl.eta, betas=(wl.beta1, wl.beta2),
                                        eps=wl.eps)
            if not wl.predict_only:
                self.notes = "torch's Adam adds eps to sqrt(v_hat), Keras to sqrt(v)"
        else:
            self.opt = torch.optim.SGD(params, lr=wl.eta, momentum=wl.momentum)

    def _loss(self, out, idx):
        F = self.torch.nn.functional
        if self.wl.cost == "quadratic":
            # Nielsen: mean over the batch of 0.5 ||a - y||^2
            return 0.5 * ((out - self.Y[idx]) ** 2).sum() / len(idx)
        return F.cross_entropy(out, self.y[idx])

    def epoch(self):
        torch, wl = self.torch, self.wl
        self.model.train()
        n = len(self.X)
        perm = torch.randperm(n)
        for start in range(0, n, wl.batch):
            idx = perm[start:start + wl.batch]
            loss = self._loss(self.model(self.X[idx]), idx)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
        if wl.evaluate_each_epoch:
            return self.accuracy()
        return None

    def accuracy(self):
        return _acc(self.predict(), self.ty.numpy())

    def predict(self):
        with self.torch.inference_mode():
            return self.model(self.tX).numpy()


class SklearnImpl(Impl):
    """scikit-learn's MLPClassifier with the nearest settings, one ``partial_fit`` per epoch.

    Its output layer is always softmax with log-loss (logistic hidden units for W1), its
    weights are its own Glorot initialization.
    """
    family = "sklearn"

    def __init__(self, wl, ctx):
        try:
            from sklearn.neural_network import MLPClassifier
        except ImportError as e:
            pytest.skip("scikit-learn not installed (pip install scikit-learn): %s" % e)
        super().__init__(wl, ctx)
        self.dtype = wl.dtype
        self.threads = blas_threads()
        solver = "adam" if wl.optimizer == "adam" else "sgd"
        # W1: Nielsen's eta 3.0 is for the quadratic cost, whose output delta carries
        # sigmoid' <= 1/4; log-loss drops that factor, so a quarter of it is the nearest step
        # (on Fashion-MNIST, one epoch: 3.0 reaches 68 %, 0.75 82 %)
        eta = wl.eta / 4 if wl.cost == "quadratic" else wl.eta
        self.clf = MLPClassifier(
            hidden_layer_sizes=tuple(wl.sizes[1:-1]),
            activation={"sigmoid": "logistic", "relu": "relu"}[wl.hidden], solver=solver,
            alpha=0.0, batch_size=wl.batch, learning_rate="constant", learning_rate_init=eta,
            momentum=wl.momentum, nesterovs_momentum=False, beta_1=wl.beta1, beta_2=wl.beta2,
            epsilon=wl.eps, shuffle=True, random_state=SEED, max_iter=1)
        self.notes = ("MLPClassifier(%s, %s, batch %d, lr %g%s), softmax + log-loss output, "
                      "own init" % (solver, self.clf.activation, wl.batch, eta,
                                    ", momentum %g" % wl.momentum if wl.momentum else ""))
        X, y, Y, tX, ty, tY = ctx.data.arrays(wl, wl.dtype)
        self.X, self.y, self.tX, self.ty = X, y, tX, ty
        self.classes = np.arange(wl.sizes[-1])
        if wl.predict_only:
            import warnings
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self.clf.partial_fit(tX[:10], ty[:10], classes=self.classes)
            W, b = ctx.w2_model()
            self.clf.coefs_ = [np.ascontiguousarray(w.T, dtype=wl.dtype) for w in W]
            self.clf.intercepts_ = [x.ravel().astype(wl.dtype) for x in b]
            self.notes = "predict_proba with W2's weights"

    def epoch(self):
        self.clf.partial_fit(self.X, self.y, classes=self.classes)
        self.dtype = self.clf.coefs_[0].dtype.name
        if self.wl.evaluate_each_epoch:
            return float(self.clf.score(self.tX, self.ty))
        return None

    def accuracy(self):
        return float(self.clf.score(self.tX, self.ty))

    def predict(self):
        return self.clf.predict_proba(self.tX)


class KerasImpl(Impl):
    """TensorFlow/Keras CPU, float32, ``fit(epochs=1)`` per round (optional peer)."""
    family = "keras"
    dtype = "float32"

    def __init__(self, wl, ctx):
        import importlib.util
        if importlib.util.find_spec("tensorflow") is None:
            pytest.skip("tensorflow not installed (optional, heavy: pip install tensorflow-cpu)")
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        try:
            import keras
        except Exception as e:
            pytest.skip("keras failed to import: %s: %s" % (type(e).__name__, e))
        super().__init__(wl, ctx)
        self.keras = keras
        keras.utils.set_random_seed(SEED)
        self.threads = os.cpu_count()
        L = len(wl.sizes) - 1
        dense = []
        for l in range(L):
            act = wl.hidden if l < L - 1 else ("sigmoid" if wl.output == "sigmoid" else None)
            dense.append(keras.layers.Dense(wl.sizes[l + 1], activation=act))
        self.model = keras.Sequential([keras.Input((wl.sizes[0],))] + dense)
        W, b = ctx.w2_model() if wl.predict_only else (self.W0, self.b0)
        ws = []
        for w, x in zip(W, b):
            ws += [np.ascontiguousarray(w.T, dtype=np.float32), x.ravel().astype(np.float32)]
        self.model.set_weights(ws)
        if wl.optimizer == "adam":
            opt = keras.optimizers.Adam(learning_rate=wl.eta, beta_1=wl.beta1, beta_2=wl.beta2,
                                        epsilon=wl.eps)
        else:
            opt = keras.optimizers.SGD(learning_rate=wl.eta, momentum=wl.momentum)
        if wl.cost == "quadratic":
            def loss(y_true, y_pred):  # Nielsen's 0.5 ||a - y||^2, averaged over the batch
                return 0.5 * keras.ops.sum(keras.ops.square(y_pred - y_true), axis=-1)
        else:
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        self.model.compile(optimizer=opt, loss=loss)
        X, y, Y, tX, ty, tY = ctx.data.arrays(wl, np.float32)
        self.X, self.T, self.tX, self.ty = X, (Y if wl.cost == "quadratic" else y), tX, ty
        if wl.predict_only:
            self.notes = "model.predict(x), Keras' default batch_size 32, as in the tutorial"

    def epoch(self):
        self.model.fit(self.X, self.T, epochs=1, batch_size=self.wl.batch, shuffle=True,
                       verbose=0)
        if self.wl.evaluate_each_epoch:
            return self.accuracy()
        return None

    def accuracy(self):
        out = self.model.predict(self.tX, batch_size=1000, verbose=0)
        return _acc(out, self.ty)

    def predict(self):
        return self.model.predict(self.tX, verbose=0)


def make_impl(name, wl, ctx):
    """Return the implementation ``name`` for workload ``wl`` (or skip the test)."""
    if name.startswith("fastnn-f"):
        _, dt, th = name.split("-")   # fastnn-f64-2t; fastnn-f32-auto: the default count
        return FastnnImpl(wl, ctx, {"f64": np.float64, "f32": np.float32}[dt],
                          None if th == "auto" else int(th[:-1]))
    if name == "fastnn-keras":
        return FastnnKerasImpl(wl, ctx)
    if name == "loop":
        return LoopImpl(wl, ctx)
    if name == "numpy":
        return NumpyImpl(wl, ctx)
    if name == "numpy-f32":
        return NumpyImpl(wl, ctx, np.float32)
    if name == "torch":
        return TorchImpl(wl, ctx)
    if name == "sklearn":
        return SklearnImpl(wl, ctx)
    if name == "keras":
        return KerasImpl(wl, ctx)
    raise ValueError("unknown implementation %r" % name)


# ---------------------------------------------------------------------------------------------
# the benchmark body shared by the workload files

def _jsonable(v):
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return v


def run_benchmark(benchmark, wid, name, ctx):
    """Time ``name`` on workload ``wid`` with pytest-benchmark and fill ``extra_info``.

    Each round is one epoch (W4: one predict call) continuing from the previous round, so
    ``warmup + rounds`` epochs are trained in all; the data conversion happens before, in the
    implementation's set-up, and is reported as ``setup_s``.
    """
    wl = WORKLOADS[wid]
    impl = make_impl(name, wl, ctx)
    times, accs = [], []
    last = {}

    def step():
        t0 = time.perf_counter()
        if wl.predict_only:
            last["out"] = impl.predict()
        else:
            acc = impl.epoch()
            if acc is not None:
                accs.append(acc)
        times.append(time.perf_counter() - t0)

    cpu0 = fbench.cpu_times()
    benchmark.pedantic(step, rounds=wl.rounds, warmup_rounds=wl.warmup, iterations=1)
    steal = fbench.steal_fraction(cpu0, fbench.cpu_times())
    timed = times[-wl.rounds:]
    seconds = float(np.median(timed))
    if wl.predict_only:
        accuracy = _acc(last["out"], ctx.data.arrays(wl, np.float32)[4])
        history = []
    else:
        accuracy = accs[-1] if accs else impl.accuracy()
        history = accs
    gemm = ctx.gemm(impl.dtype)
    limit_s = wl.flops / gemm["best"]
    info = {
        "workload": wid, "title": wl.title, "description": wl.description,
        "impl": name, "family": impl.family, "dtype": impl.dtype, "threads": impl.threads,
        "n_train": wl.n_train, "n_test": wl.n_test, "batch": wl.batch,
        "time_unit": "call" if wl.predict_only else "epoch",
        "rounds": wl.rounds, "warmup_rounds": wl.warmup,
        "epochs_trained": 0 if wl.predict_only else len(times),
        "flops": wl.flops, "flops_train": wl.flops_train, "flops_eval": wl.flops_eval,
        "gemm_flops_per_s": gemm["best"], "gemm_flops_per_s_median": gemm["median"],
        "gemm_flops_per_s_1t": gemm.get("best_1t"), "gemm_n": gemm["n"],
        "limit_s": limit_s, "seconds_median": seconds, "seconds_all": timed,
        "fraction_of_limit": limit_s / seconds if seconds > 0 else None,
        "accuracy": accuracy, "accuracy_history": history,
        "setup_s": impl.setup_s, "notes": impl.notes,
        "quick": QUICK, "data_source": ctx.data.source,
        # the share of the CPUs' time the host gave to other guests during the rounds
        "steal_fraction": steal,
    }
    info.update(impl.after())
    for k, v in info.items():
        benchmark.extra_info[k] = _jsonable(v)
    return info


# ---------------------------------------------------------------------------------------------
# what a session shares: data, initial weights, the GEMM rate, W2's trained model

class Context:
    def __init__(self):
        self._data = None
        self._params = {}
        self._gemm = {}
        self._w2 = None

    @property
    def data(self):
        if self._data is None:
            self._data = Data()
        return self._data

    def params(self, wl):
        key = (wl.sizes, wl.init)
        if key not in self._params:
            self._params[key] = initial_params(wl)
        return self._params[key]

    def gemm(self, dtype):
        """The limit for ``dtype``: numpy ``a @ b`` FLOP/s, 2048 x 2048, once per session."""
        name = np.dtype(dtype).name
        if name not in self._gemm:
            repeats = 2 if QUICK else 5
            # three bursts a second apart: a load that holds a core through one of them
            # (once a float32 rate of 108 GFLOP/s against 191-206 in the runs around it)
            # does not set the limit
            best, median = fbench.gemm_rate(name, n=2048, repeats=repeats,
                                            bursts=1 if QUICK else 3)
            g = {"best": best, "median": median, "n": 2048, "dtype": name}
            if not QUICK:
                one = fbench.gemm_rate(name, n=2048, repeats=3, threads=1)
                if one is not None:
                    g["best_1t"] = one[0]
            self._gemm[name] = g
        return self._gemm[name]

    def w2_model(self):
        """W2's model: the shared initial weights trained one epoch by fastnn float32."""
        if self._w2 is None:
            from fastnn import _core
            wl = WORKLOADS["W2"]
            W0, b0 = self.params(wl)
            W = [np.ascontiguousarray(w, dtype=np.float32) for w in W0]
            b = [np.ascontiguousarray(x.ravel(), dtype=np.float32) for x in b0]
            X, y, Y, tX, ty, tY = self.data.arrays(wl, np.float32)
            orders = np.random.RandomState(SEED).permutation(len(X)).astype(np.int32)[None, :]
            _core.train(W, b, X, Y, _core.TrainConfig(
                acts=["relu", "softmax"], cost="log_likelihood", epochs=1, batch=wl.batch,
                eta=wl.eta, optimizer="adam", beta1=wl.beta1, beta2=wl.beta2, eps=wl.eps,
                state=_core.new_state("adam", W, b), orders=orders))
            self._w2 = ([w.astype(np.float64) for w in W],
                        [x.reshape(-1, 1).astype(np.float64) for x in b])
        return self._w2

"""The array-API backend (fastnn.backends.xp) on the CPU, with numpy as ``xp``.

Checked three ways: against the numpy oracle (fastnn.reference.MatrixNetwork), against the
compiled CPU engine (fastnn._core.train with device='cpu': weights, per-epoch statistics,
result dict), and -- with a C++ compiler -- the CUDA kernels themselves, compiled for the CPU
and launched one thread at a time over the same training loop.  Run with ``pytest -s`` to see
the max differences.
"""
import ctypes
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from fastnn import _core, _engine
from fastnn.backends import xp as xb
from fastnn.reference import MatrixNetwork

SIZES = [6, 7, 5, 4]
TOL = {np.float64: 1e-10, np.float32: 1e-4}


def _outcome(res):
    """A training call's result without 'path' (how the work was shared, which differs
    between the backends by design)."""
    return {k: v for k, v in res.items() if k != "path"}


def make_params(rng, sizes=SIZES, dtype=np.float64):
    W = [(rng.standard_normal((y, x)) / np.sqrt(x)).astype(dtype)
         for x, y in zip(sizes[:-1], sizes[1:])]
    B = [(0.5 * rng.standard_normal((y, 1))).astype(dtype) for y in sizes[1:]]
    return W, B


def make_data(rng, n, cost, sizes=SIZES, dtype=np.float64):
    X = rng.standard_normal((n, sizes[0])).astype(dtype)
    labels = rng.integers(0, sizes[-1], size=n)
    if cost == "quadratic":
        Y = rng.uniform(0.0, 1.0, size=(n, sizes[-1]))
    else:
        Y = np.eye(sizes[-1])[labels]
    return X, Y.astype(dtype)


def copies(W, B):
    """Fresh parameter copies in the engine's form: W list, flat bias views (and the (n,1)s)."""
    w = [x.copy() for x in W]
    b2 = [x.copy() for x in B]
    return w, [x.reshape(-1) for x in b2], b2


def max_diff(a, b):
    return max(float(np.max(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64))))
               for x, y in zip(a, b))


def rel_diff(a, b):
    return max(float(np.max(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64))
                            / (1.0 + np.abs(np.asarray(y, np.float64)))))
               for x, y in zip(a, b))


def states(W, b, optimizer):
    s1 = s2 = None
    if optimizer != "sgd":
        s1 = [(np.zeros_like(w), np.zeros_like(x)) for w, x in zip(W, b)]
    if optimizer == "adam":
        s2 = [(np.zeros_like(w), np.zeros_like(x)) for w, x in zip(W, b)]
    return s1, s2


def run_xp(W, B, acts, cost, X, Y, **kw):
    w, b, b2 = copies(W, B)
    s1, s2 = states(w, b, kw.get("optimizer", "sgd"))
    stats = []
    kw.setdefault("on_epoch", stats.append)
    res = xb.train(w, b, acts, cost, X, Y, state1=s1, state2=s2, xp=np, **kw)
    return w, b2, stats, res, (s1, s2)


def run_engine(W, B, acts, cost, X, Y, **kw):
    w, b, b2 = copies(W, B)
    s1, s2 = states(w, b, kw.get("optimizer", "sgd"))
    stats = []
    kw.setdefault("on_epoch", stats.append)
    try:
        res = _core.train(w, b, acts, cost, X, Y, state1=s1, state2=s2, device="cpu",
                          n_threads=1, **kw)
    except _core.DivergenceError:
        res = None
    return w, b2, stats, res, (s1, s2)


def engine_masks(seed, epoch, batch, p):
    """The oracle's mask_fn(batch_index, layer_index, shape) giving the engine's masks."""
    def mask_fn(j, l, shape):
        return xb.dropout_keep(seed, epoch, j * batch, shape[0], l, shape[1], p)
    return mask_fn


def oracle_epochs(W, B, hidden, out, cost, X, Y, orders, batch, eta, dtype, scale=1.0,
                  dropout=0.0, seed=0, **kw):
    net = MatrixNetwork(W, B, hidden, out, cost, cost_scale=scale, dtype=dtype)
    for e, order in enumerate(orders):
        mask_fn = engine_masks(seed, e, batch, dropout) if dropout else None
        net.train_epoch(X, Y, order, batch, eta, dropout=dropout, mask_fn=mask_fn, **kw)
    return net


# ---------------------------------------------------------------------------------------------
# (a) against the numpy oracle

ORACLE_CASES = [
    # id, hidden, output, cost, optimizer options
    ("sgd+L2 sigmoid/quadratic", "sigmoid", "sigmoid", "quadratic",
     dict(optimizer="sgd", lmbda=2.0)),
    ("momentum+L1 tanh/cross-entropy", "tanh", "sigmoid", "cross_entropy",
     dict(optimizer="momentum", momentum=0.9, l1=0.5)),
    ("adam relu/softmax/log-likelihood", "relu", "softmax", "log_likelihood",
     dict(optimizer="adam", beta1=0.9, beta2=0.999, eps=1e-7, lmbda=0.3)),
    ("sgd identity/quadratic (Keras mse scale)", "identity", "identity", "quadratic",
     dict(optimizer="sgd", cost_scale=2.0 / SIZES[-1])),
    ("sgd sigmoid/softmax/quadratic (Jacobian)", "sigmoid", "softmax", "quadratic",
     dict(optimizer="sgd")),
    ("momentum+dropout relu/softmax", "relu", "softmax", "log_likelihood",
     dict(optimizer="momentum", momentum=0.5, dropout=0.3, seed=77)),
    ("adam+dropout+L1+L2 tanh/sigmoid", "tanh", "sigmoid", "cross_entropy",
     dict(optimizer="adam", dropout=0.25, seed=5, l1=0.2, lmbda=0.4)),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("case", ORACLE_CASES, ids=[c[0] for c in ORACLE_CASES])
def test_matches_oracle(case, dtype):
    name, hidden, out, cost, opts = case
    rng = np.random.default_rng(42)
    W, B = make_params(rng, dtype=dtype)
    n, batch, eta = 23, 5, (0.01 if opts["optimizer"] == "adam" else 0.3)
    X, Y = make_data(rng, n, cost, dtype=dtype)
    orders = np.stack([rng.permutation(n) for _ in range(2)]).astype(np.int32)
    acts = [hidden] * (len(SIZES) - 2) + [out]
    opts = dict(opts)
    scale = opts.pop("cost_scale", 1.0)
    w, b, stats, res, _ = run_xp(W, B, acts, cost, X, Y, epochs=2, batch=batch, eta=eta,
                                 orders=orders, cost_scale=scale, **opts)
    ref_opts = {k: v for k, v in opts.items() if k in ("optimizer", "momentum", "beta1",
                                                       "beta2", "eps", "lmbda", "l1")}
    net = oracle_epochs(W, B, hidden, out, cost, X, Y, orders, batch, eta, dtype, scale,
                        dropout=opts.get("dropout", 0.0), seed=opts.get("seed", 0), **ref_opts)
    d = max_diff(w + b, net.weights + net.biases)
    print(f"\n  xp(numpy) vs oracle, {name}, {np.dtype(dtype).name}: max |dw| {d:.2e}")
    assert res["status"] == xb.STATUS_OK and res["epochs_done"] == 2
    assert all(p.dtype == dtype for p in w + b)
    assert d < TOL[dtype]
    if opts["optimizer"] == "adam":
        assert res["adam_t"] == 2 * -(-n // batch) == net.adam_t


def test_dropout_masks_are_the_engines():
    # the mask is a pure function of (seed, epoch, slot, layer, unit); about p of it is 0
    k = xb.dropout_keep(123, 2, 40, 500, 1, 64, 0.3)
    assert k.shape == (500, 64) and k.dtype == np.uint8
    assert abs(1 - k.mean() - 0.3) < 0.02
    assert np.array_equal(k[10:20], xb.dropout_keep(123, 2, 50, 10, 1, 64, 0.3))
    assert not np.array_equal(k, xb.dropout_keep(123, 3, 40, 500, 1, 64, 0.3))
    assert not np.array_equal(k, xb.dropout_keep(124, 2, 40, 500, 1, 64, 0.3))


# ---------------------------------------------------------------------------------------------
# (b) against the compiled CPU engine: weights, every per-epoch statistic, the result dict

ENGINE_CASES = [
    ("sigmoid", "sigmoid", "quadratic", dict(optimizer="sgd", lmbda=1.0)),
    ("tanh", "sigmoid", "cross_entropy", dict(optimizer="momentum", momentum=0.9, l1=0.3)),
    ("relu", "softmax", "log_likelihood", dict(optimizer="adam", adam_t=7)),
    ("relu", "softmax", "log_likelihood", dict(optimizer="sgd", dropout=0.4, seed=99)),
    ("linear", "identity", "quadratic", dict(optimizer="sgd", cost_scale=0.5)),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("case", ENGINE_CASES, ids=[f"{c[1]}-{c[2]}-{c[3]['optimizer']}"
                                                    + ("-dropout" if "dropout" in c[3] else "")
                                                    for c in ENGINE_CASES])
def test_matches_cpu_engine(case, dtype):
    hidden, out, cost, opts = case
    rng = np.random.default_rng(7)
    W, B = make_params(rng, dtype=dtype)
    n = 31
    X, Y = make_data(rng, n, cost, dtype=dtype)
    EX, EY = make_data(rng, 9, cost, dtype=dtype)
    orders = np.stack([rng.permutation(n) for _ in range(3)]).astype(np.int32)
    acts = [hidden] * (len(SIZES) - 2) + [out]
    eta = 0.01 if opts["optimizer"] == "adam" else 0.2
    kw = dict(epochs=3, batch=4, eta=eta, orders=orders, eval_data=(EX, EY),
              monitor_train=True, run_stats=True, **opts)
    w1, b1, st1, r1, s1 = run_xp(W, B, acts, cost, X, Y, **kw)
    w2, b2, st2, r2, s2 = run_engine(W, B, acts, cost, X, Y, **kw)
    d = max_diff(w1 + b1, w2 + b2)
    tol = TOL[dtype]
    print(f"\n  xp(numpy) vs engine, {hidden}/{out}/{cost}/{opts['optimizer']}, "
          f"{np.dtype(dtype).name}: max |dw| {d:.2e}")
    assert d < tol
    assert _outcome(r1) == _outcome(r2)
    assert len(st1) == len(st2) == 3
    for a, e in zip(st1, st2):
        assert set(a) == set(e)
        for key in e:
            if key.endswith("correct") or key in ("epoch", "batches", "run_n"):
                assert a[key] == e[key], key
            else:
                assert abs(a[key] - e[key]) <= tol * max(1.0, abs(e[key])) * 10, key
    if opts["optimizer"] != "sgd":
        ds = max_diff([x for p in s1[0] for x in p], [x for p in s2[0] for x in p])
        assert ds < tol


def test_callback_stop_and_eta():
    rng = np.random.default_rng(3)
    W, B = make_params(rng)
    X, Y = make_data(rng, 20, "cross_entropy")
    orders = np.stack([rng.permutation(20) for _ in range(5)]).astype(np.int32)
    acts = ["sigmoid", "sigmoid", "sigmoid"]

    def cb(st):
        if st["epoch"] == 0:
            return {"eta": 0.05}
        if st["epoch"] == 2:
            return {"stop": True, "eta": 9.0}    # stop wins; the eta is not taken
        return None

    seen = {"xp": [], "cpu": []}
    results = {}
    for who, run in (("xp", run_xp), ("cpu", run_engine)):
        def record(st, who=who):
            seen[who].append(st["eta"])
            return cb(st)
        results[who] = run(W, B, acts, "cross_entropy", X, Y, epochs=5, batch=3, eta=0.5,
                           orders=orders, on_epoch=record)
    w1, b1, _, r1, _ = results["xp"]
    w2, b2, _, r2, _ = results["cpu"]
    assert seen["xp"] == seen["cpu"] == [0.5, 0.05, 0.05]
    assert _outcome(r1) == _outcome(r2)
    assert r1["status"] == xb.STATUS_STOPPED and r1["epochs_done"] == 3 and r1["eta"] == 0.05
    assert max_diff(w1 + b1, w2 + b2) < 1e-10
    # the same as training 3 epochs with eta 0.5, then 0.05, 0.05 in the oracle
    net = MatrixNetwork(W, B, "sigmoid", "sigmoid", "cross_entropy")
    for e, eta in enumerate([0.5, 0.05, 0.05]):
        net.train_epoch(X, Y, orders[e], 3, eta)
    assert max_diff(w1 + b1, net.weights + net.biases) < 1e-10


def test_divergence_restores_last_finite_epoch():
    rng = np.random.default_rng(4)
    W, B = make_params(rng)
    X, Y = make_data(rng, 16, "quadratic")
    acts = ["identity", "identity", "identity"]

    seen = []

    def blow_up(st):                  # a sane first epoch, then a learning rate that diverges
        seen.append(st["epoch"])
        return {"eta": 1e50} if st["epoch"] == 1 else None

    orders = np.stack([rng.permutation(16) for _ in range(6)]).astype(np.int32)
    kw = dict(epochs=6, batch=4, eta=0.01, orders=orders)
    with np.errstate(all="ignore"):
        w1, b1, st1, r1, _ = run_xp(W, B, acts, "quadratic", X, Y, on_epoch=blow_up, **kw)
    assert r1["status"] == xb.STATUS_DIVERGED and seen == [0, 1]
    assert r1["diverged_epoch"] == 2 and r1["epochs_done"] == 2 and r1["eta"] == 1e50
    assert all(np.isfinite(p).all() for p in w1 + b1)
    # the weights are those after epoch 1
    w0, b0, _, r0, _ = run_xp(W, B, acts, "quadratic", X, Y, **dict(kw, epochs=2))
    assert r0["status"] == xb.STATUS_OK and max_diff(w1 + b1, w0 + b0) == 0
    # and the engine agrees on where and what (it raises DivergenceError through _core)
    seen.clear()
    w2, b2, _, r2, _ = run_engine(W, B, acts, "quadratic", X, Y, on_epoch=blow_up, **kw)
    assert r2 is None and seen == [0, 1] and max_diff(w1 + b1, w2 + b2) < 1e-12
    with pytest.raises(_core.DivergenceError):
        w, b, _ = copies(W, B)
        with np.errstate(all="ignore"):
            _core.train(w, b, acts, "quadratic", X, Y, device="cpu", on_epoch=blow_up, **kw)


def test_callback_error_and_interrupt_bring_weights_back(monkeypatch):
    rng = np.random.default_rng(5)
    W, B = make_params(rng)
    X, Y = make_data(rng, 12, "quadratic")
    acts = ["sigmoid", "sigmoid", "sigmoid"]
    orders = np.stack([np.arange(12)] * 3).astype(np.int32)

    def boom(st):
        raise ValueError("from the callback")

    w, b, b2 = copies(W, B)
    with pytest.raises(ValueError, match="from the callback"):
        xb.train(w, b, acts, "quadratic", X, Y, epochs=3, batch=4, eta=0.5, orders=orders,
                 on_epoch=boom, xp=np)
    net = oracle_epochs(W, B, "sigmoid", "sigmoid", "quadratic", X, Y, orders[:1], 4, 0.5,
                        np.float64)
    assert max_diff(w + b2, net.weights + net.biases) < 1e-12

    # an interrupt in the middle of an epoch: the weights after the whole mini-batches done
    real_update = xb.NumpyKernels.update
    calls = []

    def update(self, *a, **k):
        if len(calls) == 4:
            raise KeyboardInterrupt
        calls.append(1)
        return real_update(self, *a, **k)

    monkeypatch.setattr(xb.NumpyKernels, "update", update)
    w, b, b2 = copies(W, B)
    with pytest.raises(KeyboardInterrupt):
        xb.train(w, b, acts, "quadratic", X, Y, epochs=3, batch=4, eta=0.5, orders=orders,
                 xp=np)
    # 3 mini-batches per epoch: epoch 0, then one batch of epoch 1
    net = oracle_epochs(W, B, "sigmoid", "sigmoid", "quadratic", X, Y,
                        [orders[0], orders[1][:4]], 4, 0.5, np.float64)
    assert max_diff(w + b2, net.weights + net.biases) < 1e-12


def test_adam_state_continues_across_calls():
    rng = np.random.default_rng(6)
    W, B = make_params(rng)
    X, Y = make_data(rng, 10, "log_likelihood")
    acts = ["relu", "relu", "softmax"]
    orders = np.stack([rng.permutation(10) for _ in range(4)]).astype(np.int32)
    # one call of 4 epochs ...
    w1, b1, _, r1, _ = run_xp(W, B, acts, "log_likelihood", X, Y, epochs=4, batch=3,
                              eta=0.01, optimizer="adam", orders=orders)
    # ... equals two calls of 2, carrying the state and the step counter
    w, b, b2 = copies(W, B)
    s1, s2 = states(w, b, "adam")
    r = xb.train(w, b, acts, "log_likelihood", X, Y, epochs=2, batch=3, eta=0.01,
                 optimizer="adam", state1=s1, state2=s2, orders=orders[:2], xp=np)
    assert r["adam_t"] == 8 and np.abs(s1[0][0]).sum() > 0
    r = xb.train(w, b, acts, "log_likelihood", X, Y, epochs=2, batch=3, eta=0.01,
                 optimizer="adam", state1=s1, state2=s2, adam_t=r["adam_t"],
                 orders=orders[2:], xp=np)
    assert r["adam_t"] == r1["adam_t"] == 16
    assert max_diff(w + b2, w1 + b1) < 1e-13


def test_no_orders_no_callback_and_zero_epochs():
    rng = np.random.default_rng(8)
    W, B = make_params(rng)
    X, Y = make_data(rng, 9, "quadratic")
    acts = ["sigmoid", "sigmoid", "sigmoid"]
    w, b, b2 = copies(W, B)
    r = xb.train(w, b, acts, "quadratic", X, Y, epochs=0, batch=4, eta=1.0, xp=np)
    assert r == {"status": 0, "epochs_done": 0, "diverged_epoch": -1, "adam_t": 0, "eta": 1.0,
                 "path": "xp"}
    assert max_diff(w + b2, W + B) == 0
    r = xb.train(w, b, acts, "quadratic", X, Y, epochs=2, batch=20, eta=1.0, xp=np)
    net = oracle_epochs(W, B, "sigmoid", "sigmoid", "quadratic", X, Y, [np.arange(9)] * 2,
                        20, 1.0, np.float64)
    assert r["epochs_done"] == 2 and max_diff(w + b2, net.weights + net.biases) < 1e-12


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_predict_and_evaluate_match_engine(dtype, monkeypatch):
    monkeypatch.setattr(xb, "EVAL_ROWS", 16)          # several chunks
    rng = np.random.default_rng(9)
    W, B = make_params(rng, dtype=dtype)
    w, b, _ = copies(W, B)
    X, Y = make_data(rng, 50, "log_likelihood", dtype=dtype)
    for acts, cost in ((["tanh", "relu", "softmax"], "log_likelihood"),
                       (["sigmoid", "sigmoid", "sigmoid"], "cross_entropy"),
                       (["relu", "identity", "sigmoid"], "quadratic")):
        p1 = xb.predict(w, b, acts, X, xp=np)
        p2 = _core.predict(w, b, acts, X, n_threads=1, device="cpu")
        c1, h1 = xb.evaluate(w, b, acts, cost, X, Y, cost_scale=0.7, xp=np)
        c2, h2 = _core.evaluate(w, b, acts, cost, X, Y, cost_scale=0.7, n_threads=1,
                                device="cpu")
        print(f"\n  predict {acts}, {np.dtype(dtype).name}: max diff {max_diff([p1], [p2]):.2e}")
        assert p1.dtype == dtype and p1.shape == (50, SIZES[-1])
        assert max_diff([p1], [p2]) < TOL[dtype]
        assert h1 == h2 and abs(c1 - c2) <= TOL[dtype] * abs(c2)
    assert xb.predict(w, b, acts, X[:0], xp=np).shape == (0, SIZES[-1])
    assert xb.evaluate(w, b, acts, "quadratic", X[:0], Y[:0], xp=np) == (0.0, 0)


def test_bad_arguments_raise():
    rng = np.random.default_rng(10)
    W, B = make_params(rng)
    w, b, _ = copies(W, B)
    X, Y = make_data(rng, 8, "quadratic")
    acts = ["sigmoid", "sigmoid", "sigmoid"]
    ok = dict(epochs=1, batch=2, eta=0.1, xp=np)
    with pytest.raises(TypeError, match="training data X"):
        xb.train(w, b, acts, "quadratic", X.astype(np.float32), Y, **ok)
    with pytest.raises(ValueError, match="training data Y"):
        xb.train(w, b, acts, "quadratic", X, Y[:, :2], **ok)
    with pytest.raises(ValueError, match="activations\\[0\\]"):
        xb.train(w, b, ["softmax"] + acts[1:], "quadratic", X, Y, **ok)
    with pytest.raises(ValueError, match="cost"):
        xb.train(w, b, acts, "hinge", X, Y, **ok)
    with pytest.raises(ValueError, match="optimizer"):
        xb.train(w, b, acts, "quadratic", X, Y, optimizer="rmsprop", **ok)
    with pytest.raises(ValueError, match="state1"):
        xb.train(w, b, acts, "quadratic", X, Y, optimizer="momentum", **ok)
    with pytest.raises(ValueError, match="orders"):
        xb.train(w, b, acts, "quadratic", X, Y, orders=np.zeros((1, 7), np.int32), **ok)
    with pytest.raises(ValueError, match="orders"):
        xb.train(w, b, acts, "quadratic", X, Y, orders=np.full((1, 8), 8, np.int32), **ok)
    with pytest.raises(ValueError, match="dropout"):
        xb.train(w, b, acts, "quadratic", X, Y, dropout=1.0, **ok)
    with pytest.raises(ValueError, match="mini_batch_size"):
        xb.train(w, b, acts, "quadratic", X, Y, **dict(ok, batch=0))
    with pytest.raises(ValueError, match="weights\\[1\\]"):
        xb.train([w[0], w[1].T.copy(), w[2]], b, acts, "quadratic", X, Y, **ok)
    with pytest.raises(TypeError, match="xp"):
        xb.train(w, b, acts, "quadratic", X, Y, **dict(ok, xp=os))
    with pytest.raises(ValueError, match="device"):
        xb.predict(w, b, acts, X, device="tpu")
    assert max_diff(w, W) == 0          # nothing was trained by a failed call


def test_cuda_without_cupy_says_so(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)       # `import cupy` now fails
    rng = np.random.default_rng(11)
    W, B = make_params(rng)
    w, b, _ = copies(W, B)
    X, _ = make_data(rng, 3, "quadratic")
    with pytest.raises(RuntimeError, match="CuPy"):
        xb.predict(w, b, ["sigmoid"] * 3, X)
    with pytest.raises(RuntimeError, match="CuPy"):
        _core.predict(w, b, ["sigmoid"] * 3, X, device="cuda")


def test_importing_fastnn_and_the_backend_imports_no_cupy(run_python):
    code = ("import sys, fastnn, fastnn.network, fastnn.network2, fastnn.backends.xp; "
            "assert 'cupy' not in sys.modules, 'cupy imported'; print('ok')")
    r = run_python(code)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


# ---------------------------------------------------------------------------------------------
# (c) the CUDA kernels themselves, compiled for the CPU: CUDA's built-in thread indices become
# constants (one block of one thread), so every grid-stride loop runs whole on one call.

_SHIM = r"""
#include <math.h>
struct fnn_dim3 { unsigned int x, y, z; };
static const fnn_dim3 blockIdx = {0, 0, 0}, threadIdx = {0, 0, 0};
static const fnn_dim3 blockDim = {1, 1, 1}, gridDim = {1, 1, 1};
#define __global__
#define __device__ static
#define __forceinline__ inline
static inline double atomicAdd(double *p, double v) { double o = *p; *p = o + v; return o; }
"""

_CTYPES = {np.dtype(np.int32): ctypes.c_int, np.dtype(np.int64): ctypes.c_longlong,
           np.dtype(np.uint64): ctypes.c_ulonglong, np.dtype(np.float32): ctypes.c_float,
           np.dtype(np.float64): ctypes.c_double}


@pytest.fixture(scope="module")
def cpu_kernels(tmp_path_factory):
    """dtype -> RawKernels over numpy arrays, running the CUDA source compiled by g++."""
    cxx = shutil.which(os.environ.get("CXX", "g++")) or shutil.which("c++")
    if cxx is None:
        pytest.skip("no C++ compiler to build the CUDA kernels for the CPU")
    folder = tmp_path_factory.mktemp("cuda_on_cpu")
    src = folder / "kernels.cpp"
    src.write_text(_SHIM + xb.cuda_source())
    libs = {}
    for dtype, real in ((np.float32, "float"), (np.float64, "double")):
        so = folder / f"kernels_{real}.so"
        subprocess.run([cxx, "-O1", "-shared", "-fPIC", "-Wall", "-Werror", f"-DREAL={real}",
                        "-o", str(so), str(src)], check=True, capture_output=True)
        libs[np.dtype(dtype)] = ctypes.CDLL(str(so))
    launches = []

    def make(dtype):
        lib = libs[np.dtype(dtype)]

        def launch(name, grid, block, args):
            assert grid >= 1 and block >= 1
            cargs = []
            for a in args:
                if isinstance(a, np.ndarray):
                    cargs.append(ctypes.c_void_p(a.ctypes.data))
                else:
                    assert isinstance(a, np.generic), (name, a)
                    cargs.append(_CTYPES[a.dtype](a))
            launches.append(name)
            getattr(lib, name)(*cargs)
        return xb.RawKernels(np, dtype, launch)

    make.launches = launches
    return make


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("case", ENGINE_CASES + ORACLE_CASES[4:5],
                         ids=[str(i) for i in range(len(ENGINE_CASES) + 1)])
def test_cuda_kernels_match_numpy_kernels(case, dtype, cpu_kernels, monkeypatch):
    if len(case) == 5:
        case = case[1:]
    hidden, out, cost, opts = case
    opts = dict(opts)
    if "dropout" not in opts:
        opts.update(lmbda=0.5, l1=0.1)
    rng = np.random.default_rng(12)
    W, B = make_params(rng, dtype=dtype)
    n = 17
    X, Y = make_data(rng, n, cost, dtype=dtype)
    EX, EY = make_data(rng, 7, cost, dtype=dtype)
    orders = np.stack([rng.permutation(n) for _ in range(2)]).astype(np.int32)
    acts = [hidden] * (len(SIZES) - 2) + [out]
    kw = dict(epochs=2, batch=5, eta=0.01 if opts["optimizer"] == "adam" else 0.2,
              orders=orders, eval_data=(EX, EY), monitor_train=True, **opts)
    w1, b1, st1, r1, _ = run_xp(W, B, acts, cost, X, Y, **kw)
    cpu_kernels.launches.clear()
    monkeypatch.setattr(xb, "_kernels_for", lambda xp, dt: cpu_kernels(dt))
    w2, b2, st2, r2, _ = run_xp(W, B, acts, cost, X, Y, **kw)
    d = max_diff(w1 + b1, w2 + b2)
    print(f"\n  CUDA kernels (on the CPU) vs numpy kernels, {hidden}/{out}/{cost}/"
          f"{opts['optimizer']}, {np.dtype(dtype).name}: max |dw| {d:.2e}")
    assert d < TOL[dtype] and _outcome(r1) == _outcome(r2)
    for a, e in zip(st1, st2):
        for key in e:
            assert abs(a[key] - e[key]) <= TOL[dtype] * max(1.0, abs(e[key])), key
    # the launches of one mini-batch: 2L elementwise kernels for L = 3 layers
    per_batch = cpu_kernels.launches[:6]
    assert per_batch == ["fnn_act_forward", "fnn_act_forward", "fnn_output",
                         "fnn_act_backward", "fnn_act_backward", "fnn_update"]
    p1 = xb.predict(w1, [x.reshape(-1) for x in b1], acts, EX, xp=np)
    c1 = xb.evaluate(w1, [x.reshape(-1) for x in b1], acts, cost, EX, EY, xp=np)
    monkeypatch.undo()
    p2 = xb.predict(w1, [x.reshape(-1) for x in b1], acts, EX, xp=np)
    c2 = xb.evaluate(w1, [x.reshape(-1) for x in b1], acts, cost, EX, EY, xp=np)
    assert max_diff([p1], [p2]) < TOL[dtype]
    assert c1[1] == c2[1] and abs(c1[0] - c2[0]) <= TOL[dtype] * max(1.0, abs(c2[0]))


@pytest.mark.parametrize("real", ["float", "double"])
def test_cuda_source_compiles_with_nvcc(real, tmp_path):
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("nvcc is not installed")
    src = tmp_path / "kernels.cu"
    src.write_text(xb.cuda_source())
    r = subprocess.run([nvcc, "-ptx", "-arch=compute_80", f"-DREAL={real}", str(src), "-o",
                        str(tmp_path / "k.ptx")], capture_output=True, text=True)
    if r.returncode != 0 and "Unsupported gpu architecture" in r.stderr:
        pytest.skip(f"this nvcc cannot target compute_80: {r.stderr.strip()}")
    assert r.returncode == 0, r.stderr
    ptx = (tmp_path / "k.ptx").read_text()
    for name in ("fnn_act_forward", "fnn_act_backward", "fnn_output", "fnn_update"):
        assert f".entry {name}(" in ptx


def test_engine_status_codes_are_shared():
    assert (xb.STATUS_OK, xb.STATUS_STOPPED, xb.STATUS_INTERRUPTED, xb.STATUS_DIVERGED,
            xb.STATUS_CALLBACK_ERROR) == (_engine.STATUS_OK, _engine.STATUS_STOPPED,
                                          _engine.STATUS_INTERRUPTED, _engine.STATUS_DIVERGED,
                                          _engine.STATUS_CALLBACK_ERROR)

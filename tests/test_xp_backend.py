"""The array-API backend (fastnn.backends.xp) on the CPU, with numpy as ``xp``.

Checked four ways: against the numpy oracle (fastnn.reference.MatrixNetwork), against the
compiled CPU engine (fastnn._core.train with device='cpu': weights, optimizer state,
per-epoch statistics, result dict), against values computed here from the formulas (every
activation and its derivative, every optimizer step), and -- with a C++ compiler -- the CUDA
kernels of fastnn/backends/kernels.cu themselves, compiled for the CPU with the table options
the backend generates and launched one thread at a time over the same training loop.  One
test checks that every table name has the same code in C, Cython and this backend.  Run with
``pytest -s`` to see the max differences.
"""
import ctypes
import math
import os
import re
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
# the activations a hidden layer may have: every row of the engine's table but softmax
HIDDEN = [a for a in _engine.ACT_ROWS if a not in _engine.OUTPUT_ONLY]
NEW_ACTIVATIONS = ["gelu", "silu", "elu", "selu", "leaky_relu", "softplus"]


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


def flat_state(state):
    """state[q][l] = (W-like, b-like) as one list of arrays."""
    return [x for slot in state for pair in slot for x in pair]


def config(acts, cost, **kw):
    return _core.TrainConfig(acts=acts, cost=cost, **kw)


def run_xp(W, B, acts, cost, X, Y, **kw):
    w, b, b2 = copies(W, B)
    state = _core.new_state(kw.get("optimizer", "sgd"), w, b)
    stats = []
    kw.setdefault("on_epoch", stats.append)
    res = xb.train(w, b, X, Y, config(acts, cost, state=state, **kw), xp=np)
    return w, b2, stats, res, state


def run_engine(W, B, acts, cost, X, Y, **kw):
    w, b, b2 = copies(W, B)
    state = _core.new_state(kw.get("optimizer", "sgd"), w, b)
    stats = []
    kw.setdefault("on_epoch", stats.append)
    try:
        res = _core.train(w, b, X, Y, config(acts, cost, state=state, device="cpu",
                                             n_threads=1, **kw))
    except _core.DivergenceError:
        res = None
    return w, b2, stats, res, state


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
    ("rmsprop+L2 gelu/softmax", "gelu", "softmax", "log_likelihood",
     dict(optimizer="rmsprop", rho=0.9, eps=1e-7, lmbda=0.3)),
    ("rmsprop+momentum+L1 silu/sigmoid", "silu", "sigmoid", "cross_entropy",
     dict(optimizer="rmsprop", rho=0.8, momentum=0.5, l1=0.2)),
    ("adagrad selu/identity/quadratic", "selu", "identity", "quadratic",
     dict(optimizer="adagrad", eps=1e-7)),
    ("adagrad+dropout elu/softmax", "elu", "softmax", "log_likelihood",
     dict(optimizer="adagrad", dropout=0.2, seed=3, lmbda=0.2)),
    ("sgd leaky_relu/softplus/quadratic", "leaky_relu", "softplus", "quadratic",
     dict(optimizer="sgd")),
    ("momentum softplus/gelu/quadratic", "softplus", "gelu", "quadratic",
     dict(optimizer="momentum", momentum=0.9)),
]
# the learning rates of the adaptive optimizers (their steps are about eta each)
ADAPTIVE = ("adam", "rmsprop", "adagrad")


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("case", ORACLE_CASES, ids=[c[0] for c in ORACLE_CASES])
def test_matches_oracle(case, dtype):
    name, hidden, out, cost, opts = case
    rng = np.random.default_rng(42)
    W, B = make_params(rng, dtype=dtype)
    n, batch, eta = 23, 5, (0.01 if opts["optimizer"] in ADAPTIVE else 0.3)
    X, Y = make_data(rng, n, cost, dtype=dtype)
    orders = np.stack([rng.permutation(n) for _ in range(2)]).astype(np.int32)
    acts = [hidden] * (len(SIZES) - 2) + [out]
    opts = dict(opts)
    scale = opts.pop("cost_scale", 1.0)
    w, b, stats, res, _ = run_xp(W, B, acts, cost, X, Y, epochs=2, batch=batch, eta=eta,
                                 orders=orders, cost_scale=scale, **opts)
    ref_opts = {k: v for k, v in opts.items() if k in ("optimizer", "momentum", "beta1",
                                                       "beta2", "eps", "lmbda", "l1", "rho")}
    net = oracle_epochs(W, B, hidden, out, cost, X, Y, orders, batch, eta, dtype, scale,
                        dropout=opts.get("dropout", 0.0), seed=opts.get("seed", 0), **ref_opts)
    d = max_diff(w + b, net.weights + net.biases)
    print(f"\n  xp(numpy) vs oracle, {name}, {np.dtype(dtype).name}: max |dw| {d:.2e}")
    assert res["status"] == xb.STATUS_OK and res["epochs_done"] == 2
    assert all(p.dtype == dtype for p in w + b)
    assert d < TOL[dtype]
    # the optimizer's step counter: one per mini-batch, whatever the optimizer
    assert res["step"] == 2 * -(-n // batch)
    if opts["optimizer"] == "adam":
        assert res["step"] == net.adam_t


def test_dropout_masks_are_the_engines():
    # the mask is a pure function of (seed, epoch, slot, layer, unit); about p of it is 0
    k = xb.dropout_keep(123, 2, 40, 500, 1, 64, 0.3)
    assert k.shape == (500, 64) and k.dtype == np.uint8
    assert abs(1 - k.mean() - 0.3) < 0.02
    assert np.array_equal(k[10:20], xb.dropout_keep(123, 2, 50, 10, 1, 64, 0.3))
    assert not np.array_equal(k, xb.dropout_keep(123, 3, 40, 500, 1, 64, 0.3))
    assert not np.array_equal(k, xb.dropout_keep(124, 2, 40, 500, 1, 64, 0.3))


# ---------------------------------------------------------------------------------------------
# (b) against the compiled CPU engine: weights, optimizer state, every per-epoch statistic,
# the result dict

ENGINE_CASES = [
    ("sigmoid", "sigmoid", "quadratic", dict(optimizer="sgd", lmbda=1.0)),
    ("tanh", "sigmoid", "cross_entropy", dict(optimizer="momentum", momentum=0.9, l1=0.3)),
    ("relu", "softmax", "log_likelihood", dict(optimizer="adam", step=7)),
    ("relu", "softmax", "log_likelihood", dict(optimizer="sgd", dropout=0.4, seed=99)),
    ("linear", "identity", "quadratic", dict(optimizer="sgd", cost_scale=0.5)),
    ("gelu", "softmax", "log_likelihood", dict(optimizer="rmsprop", rho=0.9, lmbda=0.5)),
    ("swish", "sigmoid", "cross_entropy",
     dict(optimizer="rmsprop", rho=0.8, momentum=0.6, l1=0.2, step=4)),
    ("elu", "identity", "quadratic", dict(optimizer="adagrad", lmbda=0.3)),
    ("selu", "softmax", "log_likelihood", dict(optimizer="adagrad", dropout=0.3, seed=8)),
    ("leaky_relu", "softplus", "quadratic", dict(optimizer="momentum", momentum=0.5)),
    ("softplus", "silu", "quadratic", dict(optimizer="adam", l1=0.1)),
    ("sigmoid", "softmax", "quadratic", dict(optimizer="sgd")),     # the softmax Jacobian
]


def _engine_case_id(c):
    return f"{c[0]}-{c[1]}-{c[2]}-{c[3]['optimizer']}" + ("-dropout" if "dropout" in c[3] else "")


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("case", ENGINE_CASES, ids=[_engine_case_id(c) for c in ENGINE_CASES])
def test_matches_cpu_engine(case, dtype):
    hidden, out, cost, opts = case
    rng = np.random.default_rng(7)
    W, B = make_params(rng, dtype=dtype)
    n = 31
    X, Y = make_data(rng, n, cost, dtype=dtype)
    EX, EY = make_data(rng, 9, cost, dtype=dtype)
    orders = np.stack([rng.permutation(n) for _ in range(3)]).astype(np.int32)
    acts = [hidden] * (len(SIZES) - 2) + [out]
    eta = 0.01 if opts["optimizer"] in ADAPTIVE else 0.2
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
    assert r1["step"] == opts.get("step", 0) + 3 * 8         # 8 mini-batches an epoch
    assert len(st1) == len(st2) == 3
    for a, e in zip(st1, st2):
        assert set(a) == set(e)
        for key in e:
            if key.endswith("correct") or key in ("epoch", "batches", "run_n"):
                assert a[key] == e[key], key
            else:
                assert abs(a[key] - e[key]) <= tol * max(1.0, abs(e[key])) * 10, key
    # the optimizer state, every slot, comes back as the engine's
    assert len(s1) == len(s2) == _engine.OPT_SLOTS[opts["optimizer"]]
    if s1:
        ds = max_diff(flat_state(s1), flat_state(s2))
        assert ds < tol
        assert max(float(np.abs(x - (0.1 if opts["optimizer"] == "adagrad" else 0)).max())
                   for x in flat_state(s1)) > 0


@pytest.mark.parametrize("act", HIDDEN + ["linear", "swish"])
def test_every_hidden_activation_matches_cpu_engine(act):
    # one row of the table at a time, in the hidden layers and (where it may be) the output
    rng = np.random.default_rng(17)
    W, B = make_params(rng)
    X, Y = make_data(rng, 13, "quadratic")
    orders = np.stack([rng.permutation(13) for _ in range(2)]).astype(np.int32)
    kw = dict(epochs=2, batch=4, eta=0.1, orders=orders, monitor_train=True)
    w1, b1, st1, r1, _ = run_xp(W, B, [act] * 3, "quadratic", X, Y, **kw)
    w2, b2, st2, r2, _ = run_engine(W, B, [act] * 3, "quadratic", X, Y, **kw)
    d = max_diff(w1 + b1, w2 + b2)
    print(f"\n  xp(numpy) vs engine, {act} everywhere: max |dw| {d:.2e}")
    assert d < 1e-12 and _outcome(r1) == _outcome(r2)
    assert max_diff(w1 + b1, W + B) > 1e-3                    # it trained
    assert [s["train_cost"] for s in st1] == pytest.approx([s["train_cost"] for s in st2],
                                                           rel=1e-12)


# ---------------------------------------------------------------------------------------------
# (c) the numpy kernels' tables against values computed here from the formulas

def _scalar_acts():
    """name -> (f, f') on Python floats, from the definitions (Keras 3's constants)."""
    sig = lambda z: 1.0 / (1.0 + math.exp(-z))  # noqa: E731
    scale, alpha = 1.0507009873554804934193349852946, 1.6732632423543772848170429916717
    return {
        "identity": (lambda z: z, lambda z: 1.0),
        "sigmoid": (sig, lambda z: sig(z) * (1 - sig(z))),
        "tanh": (math.tanh, lambda z: 1 - math.tanh(z) ** 2),
        "relu": (lambda z: max(z, 0.0), lambda z: 1.0 if z > 0 else 0.0),
        "gelu": (lambda z: 0.5 * z * (1 + math.erf(z / math.sqrt(2))),
                 lambda z: 0.5 * (1 + math.erf(z / math.sqrt(2)))
                 + z * math.exp(-z * z / 2) / math.sqrt(2 * math.pi)),
        "silu": (lambda z: z * sig(z), lambda z: sig(z) + z * sig(z) * (1 - sig(z))),
        "elu": (lambda z: z if z > 0 else math.exp(z) - 1,
                lambda z: 1.0 if z > 0 else math.exp(z)),
        "selu": (lambda z: scale * (z if z > 0 else alpha * (math.exp(z) - 1)),
                 lambda z: scale * (1.0 if z > 0 else alpha * math.exp(z))),
        "leaky_relu": (lambda z: z if z > 0 else 0.2 * z, lambda z: 1.0 if z > 0 else 0.2),
        "softplus": (lambda z: math.log(1 + math.exp(z)), sig),
    }


def test_numpy_kernel_tables_cover_every_row():
    assert set(xb.NP_ACTIVATIONS) == set(_engine.ACT_ROWS)
    assert set(xb.NP_STEPS) == set(_engine.OPTIMIZERS)


@pytest.mark.parametrize("act", HIDDEN)
def test_numpy_activations_match_the_formulas(act):
    f, df = _scalar_acts()[act]
    z = np.array([-4.0, -1.3, -0.2, 0.0, 0.3, 1.7, 5.0])
    a_fn, da_fn = xb.NP_ACTIVATIONS[act]
    a = a_fn(z)
    want = np.array([f(v) for v in z])
    dwant = np.array([df(v) for v in z])
    assert np.allclose(a, want, rtol=1e-14, atol=1e-15), (a, want)
    assert np.allclose(da_fn(z, a), dwant, rtol=1e-13, atol=1e-15)
    # the derivative against central differences of the value (away from the kinks at 0)
    zz = z[z != 0]
    h = 1e-6
    fd = (a_fn(zz + h) - a_fn(zz - h)) / (2 * h)
    assert np.allclose(da_fn(zz, a_fn(zz)), fd, rtol=1e-7, atol=1e-8)
    # float32 in, float32 out, and no overflow at the ends (underflow to 0 is exact enough)
    z32 = np.array([-80.0, -1.0, 0.5, 80.0], np.float32)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        a32 = a_fn(z32)
        assert a32.dtype == np.float32 and np.isfinite(a32).all()
        assert da_fn(z32, a32).dtype == np.float32


def _scalar_step(name, w, s, g, eta, mu=0.0, b1=0.9, b2=0.999, rho=0.9, eps=1e-7, t=1):
    """One step of optimizer ``name`` on Python floats, from the Keras 3 formulas: returns
    (w, [slots])."""
    if name == "sgd":
        return w - eta * g, []
    if name == "momentum":
        v = mu * s[0] - eta * g
        return w + v, [v]
    if name == "adam":
        m = b1 * s[0] + (1 - b1) * g
        v = b2 * s[1] + (1 - b2) * g * g
        lr = eta * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        return w - lr * m / (math.sqrt(v) + eps), [m, v]
    if name == "rmsprop":
        v = rho * s[0] + (1 - rho) * g * g
        u = eta * g / math.sqrt(v + eps)
        if mu > 0:
            m = mu * s[1] + u
            return w - m, [v, m]
        return w - u, [v, s[1]]
    if name == "adagrad":
        a = s[0] + g * g
        return w - eta * g / math.sqrt(a + eps), [a]
    raise KeyError(name)


@pytest.mark.parametrize("name,mu", [("sgd", 0.0), ("momentum", 0.9), ("adam", 0.0),
                                     ("rmsprop", 0.0), ("rmsprop", 0.7), ("adagrad", 0.0)])
def test_numpy_steps_match_the_formulas(name, mu):
    rng = np.random.default_rng(21)
    n, slots = 40, _engine.OPT_SLOTS[name]
    P = rng.standard_normal(n)
    G = rng.standard_normal(n)
    S = rng.uniform(0.01, 1.0, size=(slots, n))
    mask = (np.arange(n) % 5 != 0).astype(np.float64)     # every fifth a bias
    cfg = config(["sigmoid"], "quadratic", epochs=1, batch=1, eta=0.05, optimizer=name,
                 momentum=mu, beta1=0.8, beta2=0.99, rho=0.85, eps=1e-6)
    wd, l1, inv_m, step = 0.02, 0.01, 0.25, 3
    k = xb.opt_consts(cfg, 0.05, step, wd, l1, np.float64)
    want_w, want_s = [], []
    for j in range(n):
        g = G[j] * inv_m
        if mask[j]:
            g += wd * P[j] + l1 * float(np.sign(P[j]))
        w, s = _scalar_step(name, P[j], list(S[:, j]), g, 0.05, mu=mu, b1=0.8, b2=0.99,
                            rho=0.85, eps=1e-6, t=step)
        want_w.append(w)
        want_s.append(s)
    Pn, Sn = P.copy(), S.copy()
    xb.NumpyKernels(np.float64).update(Pn, G, Sn, mask, inv_m, k)
    assert np.allclose(Pn, want_w, rtol=1e-13, atol=1e-15)
    if slots:
        assert np.allclose(Sn.T, want_s, rtol=1e-13, atol=1e-15)
    assert np.abs(Pn - P).min() > 0                        # every parameter moved


# ---------------------------------------------------------------------------------------------
# (d) callbacks, divergence, interrupts, state across calls, bad arguments

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
    assert r1["step"] == 3 * 7
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
    assert r1["step"] == 3 * 4                # the diverged epoch's mini-batches count
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
            _core.train(w, b, X, Y, config(acts, "quadratic", device="cpu", on_epoch=blow_up,
                                           **kw))


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
        xb.train(w, b, X, Y, config(acts, "quadratic", epochs=3, batch=4, eta=0.5,
                                    orders=orders, on_epoch=boom), xp=np)
    net = oracle_epochs(W, B, "sigmoid", "sigmoid", "quadratic", X, Y, orders[:1], 4, 0.5,
                        np.float64)
    assert max_diff(w + b2, net.weights + net.biases) < 1e-12

    # an interrupt in the middle of an epoch: the weights (and the optimizer state) after the
    # whole mini-batches done
    real_update = xb.NumpyKernels.update
    calls = []

    def update(self, *a, **k):
        if len(calls) == 4:
            raise KeyboardInterrupt
        calls.append(1)
        return real_update(self, *a, **k)

    monkeypatch.setattr(xb.NumpyKernels, "update", update)
    w, b, b2 = copies(W, B)
    state = _core.new_state("momentum", w, b)
    progress = np.zeros(2, np.int64)
    with pytest.raises(KeyboardInterrupt):
        xb.train(w, b, X, Y, config(acts, "quadratic", epochs=3, batch=4, eta=0.5,
                                    optimizer="momentum", momentum=0.5, state=state,
                                    orders=orders, progress=progress), xp=np)
    # 3 mini-batches per epoch: epoch 0, then one batch of epoch 1
    net = oracle_epochs(W, B, "sigmoid", "sigmoid", "quadratic", X, Y,
                        [orders[0], orders[1][:4]], 4, 0.5, np.float64, optimizer="momentum",
                        momentum=0.5)
    assert max_diff(w + b2, net.weights + net.biases) < 1e-12
    assert max_diff([x.reshape(-1) for x in flat_state(state)],
                    [x.reshape(-1) for pair in zip(net.velocity_w, net.velocity_b)
                     for x in pair]) < 1e-12
    assert progress.tolist() == [1, 1]


@pytest.mark.parametrize("optimizer", list(_engine.OPTIMIZERS))
def test_state_and_step_continue_across_calls(optimizer):
    rng = np.random.default_rng(6)
    W, B = make_params(rng)
    X, Y = make_data(rng, 10, "log_likelihood")
    acts = ["relu", "relu", "softmax"]
    orders = np.stack([rng.permutation(10) for _ in range(4)]).astype(np.int32)
    kw = dict(batch=3, eta=0.01, optimizer=optimizer, momentum=0.5)
    # one call of 4 epochs ...
    w1, b1, _, r1, s1 = run_xp(W, B, acts, "log_likelihood", X, Y, epochs=4, orders=orders,
                               **kw)
    # ... equals two calls of 2, carrying the state and the step counter
    w, b, b2 = copies(W, B)
    state = _core.new_state(optimizer, w, b)
    r = xb.train(w, b, X, Y, config(acts, "log_likelihood", epochs=2, state=state,
                                    orders=orders[:2], **kw), xp=np)
    assert r["step"] == 8
    r = xb.train(w, b, X, Y, config(acts, "log_likelihood", epochs=2, state=state,
                                    step=r["step"], orders=orders[2:], **kw), xp=np)
    assert r["step"] == r1["step"] == 16
    assert max_diff(w + b2, w1 + b1) < 1e-13
    if state:
        assert max_diff(flat_state(state), flat_state(s1)) < 1e-13


def test_no_orders_no_callback_and_zero_epochs():
    rng = np.random.default_rng(8)
    W, B = make_params(rng)
    X, Y = make_data(rng, 9, "quadratic")
    acts = ["sigmoid", "sigmoid", "sigmoid"]
    w, b, b2 = copies(W, B)
    r = xb.train(w, b, X, Y, config(acts, "quadratic", epochs=0, batch=4, eta=1.0, step=5),
                 xp=np)
    assert r == {"status": 0, "epochs_done": 0, "diverged_epoch": -1, "step": 5, "eta": 1.0,
                 "path": "xp", "threads": 0.0}
    assert max_diff(w + b2, W + B) == 0
    progress = np.full(2, -1, np.int64)
    r = xb.train(w, b, X, Y, config(acts, "quadratic", epochs=2, batch=20, eta=1.0,
                                    progress=progress), xp=np)
    net = oracle_epochs(W, B, "sigmoid", "sigmoid", "quadratic", X, Y, [np.arange(9)] * 2,
                        20, 1.0, np.float64)
    assert r["epochs_done"] == 2 and max_diff(w + b2, net.weights + net.biases) < 1e-12
    assert r["step"] == 2 and progress.tolist() == [1, 1]


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_predict_and_evaluate_match_engine(dtype, monkeypatch):
    monkeypatch.setattr(xb, "EVAL_ROWS", 16)          # several chunks
    rng = np.random.default_rng(9)
    W, B = make_params(rng, dtype=dtype)
    w, b, _ = copies(W, B)
    X, Y = make_data(rng, 50, "log_likelihood", dtype=dtype)
    for acts, cost in ((["tanh", "relu", "softmax"], "log_likelihood"),
                       (["sigmoid", "sigmoid", "sigmoid"], "cross_entropy"),
                       (["relu", "identity", "sigmoid"], "quadratic"),
                       (["gelu", "silu", "softmax"], "log_likelihood"),
                       (["elu", "selu", "softplus"], "quadratic"),
                       (["leaky_relu", "swish", "sigmoid"], "cross_entropy")):
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

    def train(w=w, b=b, X=X, Y=Y, acts=acts, cost="quadratic", xp=np, **kw):
        kw = dict(dict(epochs=1, batch=2, eta=0.1), **kw)
        return xb.train(w, b, X, Y, config(acts, cost, **kw), xp=xp)

    with pytest.raises(TypeError, match="config"):
        xb.train(w, b, X, Y, dict(acts=acts, cost="quadratic"), xp=np)
    with pytest.raises(TypeError, match="training data X"):
        train(X=X.astype(np.float32))
    with pytest.raises(ValueError, match="training data Y"):
        train(Y=Y[:, :2])
    with pytest.raises(ValueError, match="activations\\[0\\]"):
        train(acts=["softmax"] + acts[1:])
    with pytest.raises(ValueError, match="activations\\[1\\]: expected one of .*gelu"):
        train(acts=["sigmoid", "mish", "sigmoid"])
    with pytest.raises(ValueError, match="cost"):
        train(cost="hinge")
    with pytest.raises(ValueError, match="optimizer: expected one of .*adagrad"):
        train(optimizer="lion")
    with pytest.raises(ValueError, match="state: expected 1 slot"):
        train(optimizer="momentum")
    with pytest.raises(ValueError, match="state: expected 2 slot"):
        train(optimizer="rmsprop", state=_core.new_state("adagrad", w, b))
    bad = _core.new_state("adagrad", w, b)
    bad[0][1] = (bad[0][1][0].astype(np.float32), bad[0][1][1])
    with pytest.raises(TypeError, match="state\\[0\\]\\[1\\]\\[0\\]"):
        train(optimizer="adagrad", state=bad)
    bad = _core.new_state("adam", w, b)
    bad[1][2] = (bad[1][2][0], bad[1][2][1][:1])
    with pytest.raises(ValueError, match="state\\[1\\]\\[2\\]\\[1\\]: expected 4 entries"):
        train(optimizer="adam", state=bad)
    with pytest.raises(ValueError, match="orders"):
        train(orders=np.zeros((1, 7), np.int32))
    with pytest.raises(ValueError, match="orders"):
        train(orders=np.full((1, 8), 8, np.int32))
    with pytest.raises(ValueError, match="dropout"):
        train(dropout=1.0)
    with pytest.raises(ValueError, match="mini_batch_size"):
        train(batch=0)
    with pytest.raises(ValueError, match="progress"):
        train(progress=np.zeros(2, np.int32))
    with pytest.raises(ValueError, match="weights\\[1\\]"):
        train(w=[w[0], w[1].T.copy(), w[2]])
    with pytest.raises(TypeError, match="xp"):
        train(xp=os)
    with pytest.raises(ValueError, match="device"):
        xb.predict(w, b, acts, X, device="tpu")
    with pytest.raises(TypeError, match="dtype"):
        xb.cuda_options(np.int32)
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
# (e) one table: every name has the same code in C, Cython and the xp backend (its tables
# and the -D options it generates for kernels.cu)

_TABLES = [
    # C table, the Cython dict, the xp backend's dict, the -D prefix
    ("activations", {k: v[0] for k, v in _engine.ACT_ROWS.items()}, xb.ACTIVATIONS, "FNN_ACT_"),
    ("costs", _engine.COSTS, xb.COSTS, "FNN_COST_"),
    ("optimizers", _engine.OPTIMIZERS, xb.OPTIMIZERS, "FNN_OPT_"),
]


def _simple_defines():
    """{'FNN_ACT_GELU': 5, ...}: the -DNAME=code options of the CUDA source."""
    out = {}
    for opt in xb.cuda_defines():
        name, _, value = opt[2:].partition("=")
        if "(" not in name:
            out[name] = int(value)
    return out


def test_every_name_has_one_code_in_c_cython_and_xp():
    defines = _simple_defines()
    seen = set()
    for table, cy, xp_table, prefix in _TABLES:
        assert cy, table
        for name, code in cy.items():
            c = _engine.c_code(table, name)
            macro = prefix + name.upper()
            assert c == code == xp_table[name] == defines[macro], (table, name)
            seen.add(macro)
    # no -D option that is not a row; the aliases are names of rows' codes
    assert seen == set(defines)
    assert xb.ACTIVATIONS["linear"] == _engine.c_code("activations", "identity")
    assert xb.ACTIVATIONS["swish"] == _engine.c_code("activations", "silu")
    assert set(xb.ACTIVATIONS) == set(_engine.ACTIVATIONS)
    # the optimizers' state slots and the status codes
    for name, slots in _engine.OPT_SLOTS.items():
        assert xb.OPT_SLOTS[name] == slots == len(_core.new_state(name, [np.zeros((1, 1))],
                                                                   [np.zeros(1)]))
    for name, code in _engine.STATUSES.items():
        assert xb.STATUSES[name] == _engine.c_code("statuses", name) == code
    assert (xb.STATUS_OK, xb.STATUS_STOPPED, xb.STATUS_INTERRUPTED, xb.STATUS_DIVERGED,
            xb.STATUS_CALLBACK_ERROR) == tuple(_engine.c_code("statuses", s) for s in (
                "ok", "stopped", "interrupted", "diverged", "callback_error"))
    # the hand-copied tables of old are gone
    for gone in ("ACT_CODES", "COST_CODES", "OPT_CODES", "SGD", "MOMENTUM", "ADAM",
                 "_CUDA_SOURCE"):
        assert not hasattr(xb, gone), gone


def _src_c():
    import fastnn
    folder = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(fastnn.__file__))),
                          "src_c")
    if not os.path.exists(os.path.join(folder, "fnn_tables.h")):
        pytest.skip("src_c/fnn_tables.h is not beside the fastnn package (an installed copy)")
    return folder


def test_cuda_defines_are_the_c_enums(tmp_path):
    # the -D options and row lists xp generates, compiled against the C header's enums and
    # run: every macro equals its enum, every row list names each row once, with its code
    cc = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler")
    lines = ['#include <stdio.h>', '#include "fnn_tables.h"']
    lines += [f'_Static_assert({m} == {v}, "{m}");' for m, v in _simple_defines().items()]
    lines += ['#define XP_ACT(E, n) printf("activations %s %d\\n", #n, (int)FNN_ACT_##E);',
              '#define XP_OPT(E, n) printf("optimizers %s %d\\n", #n, (int)FNN_OPT_##E);',
              'int main(void) {', '    FNN_ACT_ROWS(XP_ACT)', '    FNN_OPT_ROWS(XP_OPT)',
              '    return 0;', '}']
    src = tmp_path / "tables.c"
    src.write_text("\n".join(lines) + "\n")
    rows = [o for o in xb.cuda_defines() if o.startswith(("-DFNN_ACT_ROWS(", "-DFNN_OPT_ROWS("))]
    assert len(rows) == 2
    exe = tmp_path / "tables"
    r = subprocess.run([cc, "-std=c11", "-Wall", "-Werror", "-Wno-unused-const-variable",
                        "-Wno-unused-function", "-I", _src_c(), *rows, "-o", str(exe),
                        str(src)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split("\n")
    got = [line.split() for line in out if line]
    want = ([["activations", n, str(c)] for n, (c, _) in _engine.ACT_ROWS.items()]
            + [["optimizers", n, str(c)] for n, c in _engine.OPTIMIZERS.items()])
    assert got == want
    for table, name, code in got:
        assert _engine.c_code(table, name) == int(code)


def test_cuda_source_is_a_package_file_with_every_row():
    import fastnn.backends
    path = os.path.join(os.path.dirname(fastnn.backends.__file__), "kernels.cu")
    with open(path, encoding="utf-8") as fh:
        assert xb.cuda_source() == fh.read()
    src = xb.cuda_source()
    # the kernels' switches come from the row lists; each row has its functions
    for name in _engine.ACT_ROWS:
        assert f"FNN_ACT({name})" in src and f"FNN_DACT({name})" in src, name
    for name in _engine.OPTIMIZERS:
        assert f"FNN_STEP({name})" in src, name
    # no code written into it: every FNN_<TABLE>_<NAME> it uses comes from the options
    used = set(re.findall(r"\bFNN_(?:ACT|COST|OPT)_[A-Z_]+\b", src))
    used -= {"FNN_ACT_ROWS", "FNN_OPT_ROWS"}
    assert used <= set(_simple_defines()), used - set(_simple_defines())
    assert not re.search(r"#define\s+FNN_(ACT|COST|OPT)_[A-Z_]+\s+\d", src)
    # and the package data ships it
    root = os.path.dirname(os.path.dirname(os.path.abspath(fastnn.backends.__file__)))
    pyproject = os.path.join(root, "pyproject.toml")
    if os.path.exists(pyproject):
        with open(pyproject, encoding="utf-8") as fh:
            assert '"fastnn.backends" = ["kernels.cu"]' in fh.read()


# ---------------------------------------------------------------------------------------------
# (f) the CUDA kernels themselves, compiled for the CPU: CUDA's built-in thread indices become
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
    """dtype -> RawKernels over numpy arrays, running kernels.cu compiled by g++ with the
    options the backend gives CuPy."""
    cxx = shutil.which(os.environ.get("CXX", "g++")) or shutil.which("c++")
    if cxx is None:
        pytest.skip("no C++ compiler to build the CUDA kernels for the CPU")
    folder = tmp_path_factory.mktemp("cuda_on_cpu")
    src = folder / "kernels.cpp"
    src.write_text(_SHIM + xb.cuda_source())
    libs = {}
    for dtype in (np.float32, np.float64):
        so = folder / f"kernels_{np.dtype(dtype).name}.so"
        r = subprocess.run([cxx, "-O1", "-shared", "-fPIC", "-Wall", "-Werror",
                            *xb.cuda_options(dtype), "-o", str(so), str(src)],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
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


def test_cuda_source_needs_its_options(tmp_path):
    # compiled without the table options, the source says what it needs
    cxx = shutil.which(os.environ.get("CXX", "g++")) or shutil.which("c++")
    if cxx is None:
        pytest.skip("no C++ compiler")
    src = tmp_path / "k.cpp"
    src.write_text(_SHIM + xb.cuda_source())
    r = subprocess.run([cxx, "-fsyntax-only", "-DREAL=float", str(src)], capture_output=True,
                       text=True)
    assert r.returncode != 0 and "cuda_options" in r.stderr


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("case", ENGINE_CASES, ids=[_engine_case_id(c) for c in ENGINE_CASES])
def test_cuda_kernels_match_numpy_kernels(case, dtype, cpu_kernels, monkeypatch):
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
    kw = dict(epochs=2, batch=5, eta=0.01 if opts["optimizer"] in ADAPTIVE else 0.2,
              orders=orders, eval_data=(EX, EY), monitor_train=True, **opts)
    w1, b1, st1, r1, s1 = run_xp(W, B, acts, cost, X, Y, **kw)
    cpu_kernels.launches.clear()
    monkeypatch.setattr(xb, "_kernels_for", lambda xp, dt: cpu_kernels(dt))
    w2, b2, st2, r2, s2 = run_xp(W, B, acts, cost, X, Y, **kw)
    d = max_diff(w1 + b1, w2 + b2)
    print(f"\n  CUDA kernels (on the CPU) vs numpy kernels, {hidden}/{out}/{cost}/"
          f"{opts['optimizer']}, {np.dtype(dtype).name}: max |dw| {d:.2e}")
    assert d < TOL[dtype] and _outcome(r1) == _outcome(r2)
    if s1:
        assert max_diff(flat_state(s1), flat_state(s2)) < TOL[dtype]
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


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_cuda_kernels_one_by_one_every_row(dtype, cpu_kernels):
    # each kernel of kernels.cu against its numpy twin, for every row of every table
    rng = np.random.default_rng(6)
    rk, nk = cpu_kernels(dtype), xb.NumpyKernels(dtype)
    tol = TOL[dtype]
    m, n = 37, 13
    Z = (2 * rng.standard_normal((m, n))).astype(dtype)
    Dn = rng.standard_normal((m, n + 1)).astype(dtype)
    for name, (act, _) in _engine.ACT_ROWS.items():
        # no dropout, inverted dropout, network3's rule (the sixth entry: book)
        for drop in (None, (0.3, 12345, 2, 40, 1), (0.3, 12345, 2, 40, 1, 1)):
            A, Ar = np.ones((m, n + 1), dtype), np.ones((m, n + 1), dtype)
            nk.act_forward(A[:, :n], Z, act, drop)
            rk.act_forward(Ar[:, :n], Z, act, drop)
            assert max_diff([Ar], [A]) < tol, name
            D, Dr = np.empty((m, n), dtype), np.empty((m, n), dtype)
            nk.act_backward(D, Dn[:, :n], Z, act, drop)
            rk.act_backward(Dr, Dn[:, :n], Z, act, drop)
            assert max_diff([Dr], [D]) < tol, name
    Y = np.eye(n, dtype=dtype)[rng.integers(0, n, m)]
    for name, (act, _) in _engine.ACT_ROWS.items():
        for cost in _engine.COSTS.values():
            A, D, acc = np.empty((m, n), dtype), np.empty((m, n), dtype), np.zeros(2)
            Ar, Dr, accr = np.empty((m, n), dtype), np.empty((m, n), dtype), np.zeros(2)
            with np.errstate(all="ignore"):
                nk.output(Z, Y, A, D, acc, act, cost, 0.7)
            rk.output(Z, Y, Ar, Dr, accr, act, cost, 0.7)
            assert max_diff([Ar, Dr], [A, D]) < tol, (name, cost)
            assert accr[1] == acc[1], (name, cost)
            if np.isfinite(acc[0]):
                assert abs(accr[0] - acc[0]) <= tol * max(1, abs(acc[0])), (name, cost)
    P = rng.standard_normal(500).astype(dtype)
    G = rng.standard_normal(500).astype(dtype)
    mask = (rng.uniform(size=500) > 0.1).astype(dtype)
    for name in _engine.OPTIMIZERS:
        for mu in (0.0, 0.9):
            cfg = config(["sigmoid"], "quadratic", epochs=1, batch=1, eta=0.1, optimizer=name,
                         momentum=mu, beta1=0.9, beta2=0.999, rho=0.9, eps=1e-7)
            k = xb.opt_consts(cfg, 0.1, 3, 0.01, 0.02, dtype)
            slots = _engine.OPT_SLOTS[name]
            S = rng.uniform(0.01, 1, size=(max(slots, 1), 500)).astype(dtype)
            host = [x.copy() for x in (P, S)]
            dev = [x.copy() for x in (P, S)]
            nk.update(host[0], G, host[1] if slots else None, mask, 0.25, k)
            rk.update(dev[0], G, dev[1] if slots else None, mask, 0.25, k)
            assert max_diff(dev, host) < tol, (name, mu)
            assert slots or np.array_equal(host[1], S), name
            assert np.abs(host[0] - P).min() > 0, name


@pytest.mark.parametrize("book", [False, True], ids=["inverted", "book"])
def test_cuda_kernels_train_a_conv_net_as_numpy_kernels(book, cpu_kernels, monkeypatch):
    """The layer kinds (xp_layers.py) over kernels.cu compiled for the CPU: conv2d, pooling,
    per-layer dropout of either rule and the call's dropout, as with the numpy kernels."""
    from test_xp_conv import two_conv_net
    from test_conv import data
    rng = np.random.default_rng(4)
    layers, W, B, acts = two_conv_net(rng)
    layers = [dict(s) if s else None for s in layers]
    layers[0].update(dropout=0.3, drop_book=book)
    layers[3].update(dropout=0.2, drop_book=book)
    X, Y = data(rng, 11, (10, 9, 2))
    out = []
    for kernels in ("numpy", "cuda on the cpu"):
        if kernels != "numpy":
            monkeypatch.setattr(xb, "_kernels_for", lambda xp, dt: cpu_kernels(dt))
        w, bb = [None if a is None else a.copy() for a in W], [None if a is None else a.copy()
                                                                 for a in B]
        xb.train(w, bb, X, Y, config(acts, "log_likelihood", epochs=2, batch=4, eta=0.1,
                                     dropout=0.1, seed=3, layers=layers), xp=np)
        out.append([a for a in w + bb if a is not None]
                   + [xb.predict(w, bb, acts, X, xp=np, layers=layers)])
    d = max_diff(out[0], out[1])
    print(f"\n  conv net, CUDA kernels (on the CPU) vs numpy kernels, book={book}: {d:.2e}")
    assert d < TOL[np.float64]


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_cuda_source_compiles_with_nvcc(dtype, tmp_path):
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("nvcc is not installed")
    src = tmp_path / "kernels.cu"
    src.write_text(xb.cuda_source())
    r = subprocess.run([nvcc, "-ptx", "-arch=compute_80", *xb.cuda_options(dtype, nvcc=True),
                        str(src), "-o", str(tmp_path / "k.ptx")], capture_output=True, text=True)
    if r.returncode != 0 and "Unsupported gpu architecture" in r.stderr:
        pytest.skip(f"this nvcc cannot target compute_80: {r.stderr.strip()}")
    assert r.returncode == 0, r.stderr
    ptx = (tmp_path / "k.ptx").read_text()
    for name in ("fnn_act_forward", "fnn_act_backward", "fnn_output", "fnn_update"):
        assert f".entry {name}(" in ptx

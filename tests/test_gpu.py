"""device='cuda': the same front doors on CuPy, checked against the CPU engine.

    pytest -m gpu tests/test_gpu.py -s

The tests marked ``gpu`` skip, with the reason, where CuPy or a CUDA device is missing.  The
last test (the error message without CuPy) runs everywhere.
"""
import random
import sys

import numpy as np
import pytest

from fastnn import _config, _core, network, network2
from fastnn.backends import xp as xb

_OK, _REASON = _config.gpu_available()
needs_gpu = pytest.mark.skipif(not _OK, reason=_REASON)
TOL = {np.float64: 1e-9, np.float32: 2e-4}


def data(n, n_in, n_out, seed, dtype=np.float64):
    rng = np.random.default_rng(seed)
    X = rng.uniform(0, 1, size=(n, n_in)).astype(dtype)
    lab = rng.integers(0, n_out, size=n)
    return X, np.eye(n_out, dtype=dtype)[lab], lab


def max_diff(a, b):
    return max(float(np.max(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64))))
               for x, y in zip(a, b))


def seeded(seed):
    random.seed(seed)
    np.random.seed(seed)


@pytest.fixture
def cupy():
    if not _OK:
        pytest.skip(_REASON)
    import cupy
    return cupy


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_network_on_cuda_matches_cpu(dtype, capsys):
    X, _, lab = data(300, 40, 10, 0, dtype)
    train = (X[:250], lab[:250])
    test = (X[250:], lab[250:])
    nets, printed = {}, {}
    for dev in ("cpu", "cuda"):
        seeded(1)
        net = network.Network([40, 20, 10], dtype=dtype, device=dev)
        net.SGD(train, 3, 10, 3.0, test_data=test)
        nets[dev], printed[dev] = net, capsys.readouterr().out
    d = max_diff(nets["cuda"].weights + nets["cuda"].biases,
                 nets["cpu"].weights + nets["cpu"].biases)
    print(f"\n  network.Network cuda vs cpu, {np.dtype(dtype).name}: max |dw| {d:.2e}")
    assert d < TOL[dtype]
    assert all(isinstance(w, np.ndarray) for w in nets["cuda"].weights + nets["cuda"].biases)
    if dtype == np.float64:
        assert printed["cuda"] == printed["cpu"]
    a = X[250:].T
    assert max_diff([nets["cuda"].feedforward(a)], [nets["cpu"].feedforward(a)]) < TOL[dtype]
    assert abs(nets["cuda"].evaluate(test) - nets["cpu"].evaluate(test)) <= (dtype == np.float32)


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("opts", [
    dict(cost=network2.CrossEntropyCost, kw=dict(lmbda=5.0, momentum=0.9)),
    dict(cost=network2.LogLikelihoodCost, activation="relu", kw=dict(l1=0.5, dropout=0.2)),
    dict(cost=network2.QuadraticCost, activation="tanh", kw=dict(lmbda=1.0)),
], ids=["ce-l2-momentum", "softmax-relu-l1-dropout", "quadratic-tanh"])
def test_network2_on_cuda_matches_cpu(opts, capsys):
    X, _, lab = data(200, 30, 10, 2)
    train, evald = (X[:160], lab[:160]), (X[160:], lab[160:])
    out = {}
    for dev in ("cpu", "cuda"):
        seeded(2)
        net = network2.Network([30, 16, 10], cost=opts["cost"],
                               activation=opts.get("activation", "sigmoid"), device=dev)
        lists = net.SGD(train, 3, 8, 0.1, evaluation_data=evald,
                        monitor_evaluation_cost=True, monitor_evaluation_accuracy=True,
                        monitor_training_cost=True, monitor_training_accuracy=True,
                        **opts["kw"])
        out[dev] = (net, lists, capsys.readouterr().out)
    d = max_diff(out["cuda"][0].weights + out["cuda"][0].biases,
                 out["cpu"][0].weights + out["cpu"][0].biases)
    print(f"\n  network2 cuda vs cpu, {opts['cost'].__name__}: max |dw| {d:.2e}")
    assert d < TOL[np.float64]
    for a, b in zip(out["cuda"][1], out["cpu"][1]):
        np.testing.assert_allclose(a, b, rtol=1e-9)
    assert out["cuda"][0].accuracy(evald) == out["cpu"][0].accuracy(evald)
    assert abs(out["cuda"][0].total_cost(evald, 5.0) - out["cpu"][0].total_cost(evald, 5.0)) \
        < 1e-9


CASES = [
    (["sigmoid", "sigmoid"], "quadratic", dict(optimizer="sgd", lmbda=1.0)),
    (["tanh", "sigmoid"], "cross_entropy", dict(optimizer="momentum", momentum=0.9, l1=0.3)),
    (["relu", "softmax"], "log_likelihood", dict(optimizer="adam", adam_t=3)),
    (["relu", "softmax"], "log_likelihood", dict(optimizer="sgd", dropout=0.3, seed=11)),
]


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("case", CASES, ids=["sgd", "momentum", "adam", "dropout"])
def test_xp_backend_on_cupy_matches_cpu_engine(case, dtype, cupy):
    acts, cost, opts = case
    rng = np.random.default_rng(3)
    sizes = [50, 33, 10]
    W = [(rng.standard_normal((y, x)) / np.sqrt(x)).astype(dtype)
         for x, y in zip(sizes[:-1], sizes[1:])]
    B = [rng.standard_normal(y).astype(dtype) for y in sizes[1:]]
    X, Y, _ = data(157, 50, 10, 4, dtype)
    EX, EY, _ = data(40, 50, 10, 5, dtype)
    orders = np.stack([rng.permutation(157) for _ in range(3)]).astype(np.int32)
    runs = {}
    for who in ("cupy", "cpu"):
        w, b = [x.copy() for x in W], [x.copy() for x in B]
        s1 = s2 = None
        if opts["optimizer"] != "sgd":
            s1 = [(np.zeros_like(x), np.zeros_like(y)) for x, y in zip(w, b)]
        if opts["optimizer"] == "adam":
            s2 = [(np.zeros_like(x), np.zeros_like(y)) for x, y in zip(w, b)]
        stats = []
        kw = dict(epochs=3, batch=16, eta=0.01 if opts["optimizer"] == "adam" else 0.3,
                  orders=orders, eval_data=(EX, EY), monitor_train=True,
                  on_epoch=stats.append, state1=s1, state2=s2, **opts)
        if who == "cupy":
            r = xb.train(w, b, acts, cost, X, Y, xp=cupy, **kw)
        else:
            r = _core.train(w, b, acts, cost, X, Y, device="cpu", **kw)
        runs[who] = (w, b, stats, r)
    d = max_diff(runs["cupy"][0] + runs["cupy"][1], runs["cpu"][0] + runs["cpu"][1])
    print(f"\n  xp backend on CuPy vs CPU engine, {acts}/{cost}/{opts['optimizer']}, "
          f"{np.dtype(dtype).name}: max |dw| {d:.2e}")
    assert d < TOL[dtype]
    assert runs["cupy"][3] == runs["cpu"][3]
    for a, e in zip(runs["cupy"][2], runs["cpu"][2]):
        for key in e:
            if key in ("epoch", "batches", "run_n") or (key.endswith("correct")
                                                         and dtype == np.float64):
                assert a[key] == e[key], key
            elif not key.endswith("correct"):
                assert abs(a[key] - e[key]) <= TOL[dtype] * max(1.0, abs(e[key])) * 10, key
    p1 = xb.predict(runs["cpu"][0], runs["cpu"][1], acts, EX, xp=cupy)
    p2 = _core.predict(runs["cpu"][0], runs["cpu"][1], acts, EX, device="cpu")
    assert isinstance(p1, np.ndarray) and max_diff([p1], [p2]) < TOL[dtype]
    c1, h1 = xb.evaluate(runs["cpu"][0], runs["cpu"][1], acts, cost, EX, EY, xp=cupy)
    c2, h2 = _core.evaluate(runs["cpu"][0], runs["cpu"][1], acts, cost, EX, EY, device="cpu")
    assert abs(c1 - c2) <= TOL[dtype] * max(1.0, abs(c2)) and abs(h1 - h2) <= 1


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_cuda_kernels_match_numpy_kernels_one_by_one(dtype, cupy):
    rng = np.random.default_rng(6)
    rk, nk = xb._kernels_for(cupy, dtype), xb.NumpyKernels(dtype)
    m, n = 37, 13
    Z = rng.standard_normal((m, n)).astype(dtype)
    Dn = rng.standard_normal((m, n + 1)).astype(dtype)
    for act in (0, 1, 2, 3):
        for drop in (None, (0.3, 12345, 2, 40, 1)):
            A = np.ones((m, n + 1), dtype)
            Ag = cupy.ones((m, n + 1), dtype)
            nk.act_forward(A[:, :n], Z, act, drop)
            rk.act_forward(Ag[:, :n], cupy.asarray(Z), act, drop)
            assert max_diff([cupy.asnumpy(Ag)], [A]) < TOL[dtype]
            D = np.empty((m, n), dtype)
            Dg = cupy.empty((m, n), dtype)
            Dng = cupy.asarray(Dn)
            nk.act_backward(D, Dn[:, :n], Z, act, drop)
            rk.act_backward(Dg, Dng[:, :n], cupy.asarray(Z), act, drop)
            assert max_diff([cupy.asnumpy(Dg)], [D]) < TOL[dtype]
    Y = np.eye(n, dtype=dtype)[rng.integers(0, n, m)]
    for act, cost in ((1, 0), (4, 0), (1, 1), (4, 2), (0, 0), (2, 0), (3, 0)):
        A, D, acc = np.empty((m, n), dtype), np.empty((m, n), dtype), np.zeros(2)
        Ag, Dg, accg = cupy.empty((m, n), dtype), cupy.empty((m, n), dtype), cupy.zeros(2)
        nk.output(Z, Y, A, D, acc, act, cost, 0.7)
        rk.output(cupy.asarray(Z), cupy.asarray(Y), Ag, Dg, accg, act, cost, 0.7)
        assert max_diff([cupy.asnumpy(Ag), cupy.asnumpy(Dg)], [A, D]) < TOL[dtype]
        ag = cupy.asnumpy(accg)
        assert ag[1] == acc[1] and abs(ag[0] - acc[0]) <= TOL[dtype] * max(1, abs(acc[0]))
    P = rng.standard_normal(500).astype(dtype)
    G = rng.standard_normal(500).astype(dtype)
    mask = (rng.uniform(size=500) > 0.1).astype(dtype)
    for opt in (0, 1, 2):
        S1 = rng.standard_normal(500).astype(dtype)
        S2 = rng.uniform(size=500).astype(dtype)
        dev = [cupy.asarray(x) for x in (P, G, S1, S2, mask)]
        host = [x.copy() for x in (P, G, S1, S2, mask)]
        args = dict(opt=opt, inv_m=0.25, eta=0.1, wd=0.01, l1=0.02, mu=0.9, beta1=0.9,
                    beta2=0.999, eps=1e-7, lr=0.003)
        nk.update(*host, **args)
        rk.update(*dev, **args)
        assert max_diff([cupy.asnumpy(x) for x in dev[:4]], host[:4]) < TOL[dtype]


@pytest.mark.gpu
@needs_gpu
def test_data_goes_to_the_device_once_per_call(cupy, monkeypatch):
    # every host->device copy goes through cupy.asarray here: count them
    calls = []
    real = cupy.asarray

    def counting(a, *args, **kw):
        if isinstance(a, np.ndarray):
            calls.append(a.shape)
        return real(a, *args, **kw)

    monkeypatch.setattr(cupy, "asarray", counting)
    X, Y, _ = data(1000, 20, 5, 7)
    W = [np.random.default_rng(0).standard_normal((8, 20)), np.zeros((5, 8))]
    b = [np.zeros(8), np.zeros(5)]
    orders = np.stack([np.random.default_rng(e).permutation(1000) for e in range(4)])
    xb.train(W, b, ["sigmoid", "sigmoid"], "quadratic", X, Y, epochs=4, batch=10, eta=1.0,
             orders=orders.astype(np.int32), eval_data=(X[:100], Y[:100]), xp=cupy)
    # parameters, mask, X, Y, orders, eval X, eval Y: 400 mini-batches, 7 uploads
    assert len(calls) == 7, calls


def test_cuda_without_cupy_raises_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)          # as if CuPy were not installed
    with pytest.raises(RuntimeError, match="CuPy"):
        network.Network([4, 3, 2], device="cuda")
    with pytest.raises(RuntimeError, match="CuPy"):
        network2.Network([4, 3, 2], device="cuda")
    import fastnn
    with pytest.raises(RuntimeError, match="CuPy"):
        fastnn.set_device("cuda")
    assert fastnn.get_device() == "cpu"

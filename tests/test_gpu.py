"""device='cuda': the same front doors on CuPy, checked against the CPU engine.

    pytest -m gpu tests/test_gpu.py -s

The tests marked ``gpu`` skip, with the reason, where CuPy or a CUDA device is missing.  The
last test (the error message without CuPy) runs everywhere.
"""
import random
import sys

import numpy as np
import pytest

from fastnn import _config, _core, _engine, network, network2
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
    (["relu", "softmax"], "log_likelihood", dict(optimizer="adam", step=3)),
    (["relu", "softmax"], "log_likelihood", dict(optimizer="sgd", dropout=0.3, seed=11)),
    (["gelu", "softmax"], "log_likelihood", dict(optimizer="rmsprop", rho=0.9, lmbda=0.5)),
    (["silu", "sigmoid"], "cross_entropy", dict(optimizer="rmsprop", momentum=0.5, step=2)),
    (["elu", "softmax"], "log_likelihood", dict(optimizer="adagrad", dropout=0.2, seed=4)),
    (["selu", "softplus"], "quadratic", dict(optimizer="adagrad", l1=0.2)),
    (["leaky_relu", "softmax"], "log_likelihood", dict(optimizer="momentum", momentum=0.5)),
]
CASE_IDS = ["sgd", "momentum", "adam", "dropout", "rmsprop-gelu", "rmsprop-momentum-silu",
            "adagrad-dropout-elu", "adagrad-selu-softplus", "momentum-leaky_relu"]
ADAPTIVE = ("adam", "rmsprop", "adagrad")


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
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
        state = _core.new_state(opts["optimizer"], w, b)
        stats = []
        cfg = _core.TrainConfig(
            acts=acts, cost=cost, epochs=3, batch=16,
            eta=0.01 if opts["optimizer"] in ADAPTIVE else 0.3, orders=orders,
            eval_data=(EX, EY), monitor_train=True, on_epoch=stats.append, state=state,
            **opts)
        if who == "cupy":
            r = xb.train(w, b, X, Y, cfg, xp=cupy)
        else:
            cfg.device = "cpu"
            r = _core.train(w, b, X, Y, cfg)
        runs[who] = (w, b, stats, r, state)
    d = max_diff(runs["cupy"][0] + runs["cupy"][1], runs["cpu"][0] + runs["cpu"][1])
    print(f"\n  xp backend on CuPy vs CPU engine, {acts}/{cost}/{opts['optimizer']}, "
          f"{np.dtype(dtype).name}: max |dw| {d:.2e}")
    assert d < TOL[dtype]
    outcome = [{k: v for k, v in runs[who][3].items() if k != "path"} for who in runs]
    assert outcome[0] == outcome[1]
    assert runs["cupy"][3]["path"] == "xp"
    if runs["cpu"][4]:
        flat = [[x for slot in runs[who][4] for pair in slot for x in pair] for who in runs]
        assert max_diff(*flat) < TOL[dtype]
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
    # every row of every table: each kernel of kernels.cu on the GPU against its numpy twin
    rng = np.random.default_rng(6)
    rk, nk = xb._kernels_for(cupy, dtype), xb.NumpyKernels(dtype)
    m, n = 37, 13
    Z = (2 * rng.standard_normal((m, n))).astype(dtype)
    Dn = rng.standard_normal((m, n + 1)).astype(dtype)
    for name, (act, _) in _engine.ACT_ROWS.items():
        for drop in (None, (0.3, 12345, 2, 40, 1)):
            A = np.ones((m, n + 1), dtype)
            Ag = cupy.ones((m, n + 1), dtype)
            nk.act_forward(A[:, :n], Z, act, drop)
            rk.act_forward(Ag[:, :n], cupy.asarray(Z), act, drop)
            assert max_diff([cupy.asnumpy(Ag)], [A]) < TOL[dtype], name
            D = np.empty((m, n), dtype)
            Dg = cupy.empty((m, n), dtype)
            Dng = cupy.asarray(Dn)
            nk.act_backward(D, Dn[:, :n], Z, act, drop)
            rk.act_backward(Dg, Dng[:, :n], cupy.asarray(Z), act, drop)
            assert max_diff([cupy.asnumpy(Dg)], [D]) < TOL[dtype], name
    Y = np.eye(n, dtype=dtype)[rng.integers(0, n, m)]
    for name, (act, _) in _engine.ACT_ROWS.items():
        for cost in _engine.COSTS.values():
            A, D, acc = np.empty((m, n), dtype), np.empty((m, n), dtype), np.zeros(2)
            Ag, Dg, accg = cupy.empty((m, n), dtype), cupy.empty((m, n), dtype), cupy.zeros(2)
            with np.errstate(all="ignore"):
                nk.output(Z, Y, A, D, acc, act, cost, 0.7)
            rk.output(cupy.asarray(Z), cupy.asarray(Y), Ag, Dg, accg, act, cost, 0.7)
            assert max_diff([cupy.asnumpy(Ag), cupy.asnumpy(Dg)], [A, D]) < TOL[dtype], name
            ag = cupy.asnumpy(accg)
            assert ag[1] == acc[1], (name, cost)
            if np.isfinite(acc[0]):
                assert abs(ag[0] - acc[0]) <= TOL[dtype] * max(1, abs(acc[0])), (name, cost)
    P = rng.standard_normal(500).astype(dtype)
    G = rng.standard_normal(500).astype(dtype)
    mask = (rng.uniform(size=500) > 0.1).astype(dtype)
    for name, slots in _engine.OPT_SLOTS.items():
        for mu in (0.0, 0.9):
            cfg = _core.TrainConfig(acts=["sigmoid"], cost="quadratic", epochs=1, batch=1,
                                    eta=0.1, optimizer=name, momentum=mu)
            k = xb.opt_consts(cfg, 0.1, 3, 0.01, 0.02, dtype)
            S = rng.uniform(0.01, 1, size=(slots, 500)).astype(dtype) if slots else None
            host = [P.copy(), None if S is None else S.copy()]
            dev = [cupy.asarray(P), None if S is None else cupy.asarray(S)]
            nk.update(host[0], G, host[1], mask, 0.25, k)
            rk.update(dev[0], cupy.asarray(G), dev[1], cupy.asarray(mask), 0.25, k)
            got = [cupy.asnumpy(x) for x in dev if x is not None]
            assert max_diff(got, [x for x in host if x is not None]) < TOL[dtype], (name, mu)


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("book", [False, True], ids=["inverted", "book"])
def test_conv_net_on_cupy_matches_cpu_engine(book, dtype, cupy):
    """conv2d (same and valid, stride (2, 1)), pooling, flatten, dense with per-layer dropout
    and the call's, Adam: the xp backend on CuPy against the engine; predict through
    _core with device='cuda'."""
    from test_conv import cast
    from test_xp_conv import two_conv_net
    rng = np.random.default_rng(5)
    layers, W, b, acts = two_conv_net(rng)
    layers = [dict(s) if s else None for s in layers]
    layers[0].update(dropout=0.2, drop_book=book)
    layers[4] = {"kind": "dense", "dropout": 0.3, "drop_book": book}
    X = rng.normal(size=(40, 180)).astype(dtype)
    Y = np.eye(4, dtype=dtype)[rng.integers(0, 4, 40)]
    out = {}
    for dev in ("cpu", "cuda"):
        Wc, bc = cast(W, dtype), cast(b, dtype)
        _core.train(Wc, bc, X, Y, _core.TrainConfig(
            acts=acts, cost="log_likelihood", epochs=2, batch=8, eta=0.01, optimizer="adam",
            state=_core.new_state("adam", Wc, bc), dropout=0.1, seed=9, layers=layers,
            device=dev))
        out[dev] = [a for a in Wc + bc if a is not None] + [
            _core.predict(Wc, bc, acts, X, device=dev, layers=layers)]
    d = max_diff(out["cuda"], out["cpu"])
    print(f"\n  conv net on CuPy vs the CPU engine ({np.dtype(dtype).name}, book={book}): {d:.2e}")
    assert d < 10 * TOL[dtype]


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
    cfg = _core.TrainConfig(acts=["sigmoid", "sigmoid"], cost="quadratic", epochs=4,
                            batch=10, eta=1.0, orders=orders.astype(np.int32),
                            eval_data=(X[:100], Y[:100]))
    xb.train(W, b, X, Y, cfg, xp=cupy)
    # parameters, mask, X, Y, orders, eval X, eval Y: 400 mini-batches, 7 uploads
    assert len(calls) == 7, calls
    # with an optimizer's state: all its slots in one more upload
    calls.clear()
    cfg.optimizer, cfg.state = "adam", _core.new_state("adam", W, b)
    xb.train(W, b, X, Y, cfg, xp=cupy)
    assert len(calls) == 8, calls


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

"""Nielsen's lists read where they are (issue 20, item 2): a list of (x, y) pairs whose x are
C-contiguous float32 or float64 columns reaches the engine as a row source
(``_engine.Rows``, fnn_data.rows) instead of an (n, n_in) copy, and gives bit for bit the
weights, printed lines and counts that the same numbers as an (X, y) array pair give: for
network and network2, on 1 and 2 threads, on every path (the K split for [784, 30, 10] with
mini-batches of 10, the rows path for larger ones or when asked), with the numbers read in
place or converted by the gather.  Lists the engine cannot read in place (mixed dtypes,
non-contiguous or integer x, lists of lists) still fill a matrix, with the same results, and
bad rows still raise the errors that name them."""
import contextlib
import io
import random
import warnings

import numpy as np
import pytest

from fastnn import _core, _engine, network, network2

N_IN, N_OUT = 784, 10


def _data(n=240, seed=0, x_dtype=np.float32, aligned=True):
    """(X float64 (n, n_in), labels, the same as Nielsen's training and test lists with x of
    x_dtype): views of one matrix (aligned: on a 128-byte boundary, so float64 rows start on
    vector boundaries; else shifted by one number, so none does)."""
    rng = np.random.default_rng(seed)
    X = rng.random((n, N_IN)).astype(x_dtype).astype(np.float64)   # exact in both dtypes
    lab = rng.integers(0, N_OUT, n)
    buf = _core.aligned_empty((n * N_IN + 1,), x_dtype)
    M = (buf[:-1] if aligned else buf[1:]).reshape(n, N_IN)
    M[...] = X
    train = [(M[i].reshape(N_IN, 1), np.eye(N_OUT)[k].reshape(N_OUT, 1))
             for i, k in enumerate(lab)]
    test = [(M[i].reshape(N_IN, 1), int(k)) for i, k in enumerate(lab)]
    return X, lab, train, test


@pytest.fixture
def spy(monkeypatch):
    """What each engine call got: the type and dtype of X, the path taken."""
    calls = []
    real_train, real_eval = _engine.train, _engine.evaluate

    def train(W, b, X, Y, config, *a):
        res = real_train(W, b, X, Y, config, *a)
        ev = config.eval_data[0] if config.eval_data is not None else None
        calls.append(("train", type(X).__name__, getattr(X, "dtype", None), res["path"],
                      type(ev).__name__))
        return res

    def evaluate(W, b, acts, cost, scale, X, *a):
        calls.append(("evaluate", type(X).__name__, getattr(X, "dtype", None), None, None))
        return real_eval(W, b, acts, cost, scale, X, *a)

    monkeypatch.setattr(_engine, "train", train)
    monkeypatch.setattr(_engine, "evaluate", evaluate)
    return calls


def _equal(a, b):
    assert len(a) == len(b)
    for p, q in zip(a, b):
        assert p.dtype == q.dtype and np.array_equal(p, q), float(np.max(np.abs(p - q)))


# ---------------------------------------------------------------------------------------------
# to_arrays: which lists become a row source

@pytest.mark.parametrize("x_dtype", [np.float32, np.float64])
def test_list_becomes_rows_in_place(x_dtype):
    _, _, train, test = _data(20, x_dtype=x_dtype)
    X, Y, n = _core.to_arrays(train, N_IN, N_OUT, np.float64, "training_data", rows=True)
    assert isinstance(X, _engine.Rows) and n == 20 and X.shape == (20, N_IN)
    assert X.dtype == np.dtype(x_dtype)
    # the columns themselves, not copies
    assert [int(a) for a in X.addrs] == [x.ctypes.data for x, _ in train]
    assert isinstance(Y, np.ndarray) and Y.shape == (20, N_OUT) and Y.dtype == np.float64
    _equal([X.to_matrix(np.float64)], [np.stack([x.ravel() for x, _ in train]).astype(np.float64)])
    tX, tY, _ = _core.to_arrays(test, N_IN, N_OUT, np.float32, "test_data", one_hot=False,
                                rows=True)
    assert isinstance(tX, _engine.Rows) and tY.dtype == np.float32
    # a slice is the same rows, as for a matrix
    part = X[5:9]
    assert isinstance(part, _engine.Rows) and part.shape == (4, N_IN)
    assert list(part.addrs) == list(X.addrs[5:9])
    # without rows=True: a matrix, as before
    X2, _, _ = _core.to_arrays(train, N_IN, N_OUT, np.float64, "training_data")
    assert isinstance(X2, np.ndarray) and X2.shape == (20, N_IN)


def _fallbacks():
    _, _, train, _ = _data(12)
    mixed = [(x.astype(np.float64) if i % 3 == 1 else x, y) for i, (x, y) in enumerate(train)]
    wide = np.zeros((N_IN, 2))
    strided = [(np.ascontiguousarray(x, dtype=np.float64) if i else wide[:, :1], y)
               for i, (x, y) in enumerate(train)]
    strided_last = [(x, y) for x, y in train[:-1]] + [(wide[:, 1:], train[-1][1])]
    return {
        "mixed-dtypes": mixed,
        "non-contiguous-first": strided,
        "non-contiguous-last": strided_last,
        "ints": [((x * 255).astype(np.int64), y) for x, y in train],
        "lists": [(x.ravel().tolist(), y) for x, y in train],
        "big-endian": [(x.astype(">f8"), y) for x, y in train],
    }


@pytest.mark.parametrize("case", list(_fallbacks()))
def test_other_lists_fill_a_matrix(case):
    data = _fallbacks()[case]
    X, Y, n = _core.to_arrays(data, N_IN, N_OUT, np.float64, "training_data", rows=True)
    assert isinstance(X, np.ndarray) and X.shape == (n, N_IN)
    want = np.stack([np.asarray(x, dtype=np.float64).ravel() for x, _ in data])
    _equal([X], [want])


@pytest.mark.parametrize("case", list(_fallbacks()))
def test_other_lists_train_the_same(case):
    data = _fallbacks()[case]
    X = np.stack([np.asarray(x, dtype=np.float64).ravel() for x, _ in data])
    lab = np.array([int(np.argmax(y)) for _, y in data])
    runs = []
    for d in (list(data), (X, lab)):
        random.seed(4)
        np.random.seed(4)
        net = network.Network([N_IN, 30, N_OUT], n_threads=1)
        net.SGD(d, 2, 4, 3.0)
        runs.append(net.weights + net.biases)
    _equal(*runs)


# ---------------------------------------------------------------------------------------------
# the front doors: a list and an array pair give the same weights, lines and counts

def _sgd(net_module, data, test, epochs, batch, threads, dtype, **kw):
    random.seed(7)
    np.random.seed(7)
    if net_module is network:
        net = network.Network([N_IN, 30, N_OUT], dtype=dtype, n_threads=threads)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            res = net.SGD(data, epochs, batch, 3.0, test_data=test)
    else:
        net = network2.Network([N_IN, 30, N_OUT], cost=network2.CrossEntropyCost, dtype=dtype,
                               n_threads=threads)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            res = net.SGD(data, epochs, batch, 0.5, lmbda=2.0, evaluation_data=test,
                          monitor_evaluation_cost=True, monitor_evaluation_accuracy=True,
                          monitor_training_cost=True, monitor_training_accuracy=True, **kw)
    return net, out.getvalue(), res


@pytest.mark.parametrize("x_dtype", [np.float32, np.float64])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("batch,threads,path", [(10, 1, "ksplit"), (10, 2, "ksplit"),
                                                (128, 1, "serial"), (128, 2, "rows")])
@pytest.mark.parametrize("module", ["network", "network2"])
def test_list_matches_arrays(module, batch, threads, path, dtype, x_dtype, spy):
    mod = {"network": network, "network2": network2}[module]
    X, lab, train, test = _data(300, seed=1, x_dtype=x_dtype)
    test = test[:150]
    a = _sgd(mod, list(train), test, 2, batch, threads, dtype)
    lists = list(spy)
    spy.clear()
    b = _sgd(mod, (X, lab), (X[:150], lab[:150]), 2, batch, threads, dtype)
    # the list went to the engine as rows of its own dtype, and both took the expected path
    assert lists[-1][1:] == ("Rows", np.dtype(x_dtype), path, "Rows"), lists
    assert spy[-1][1:] == ("ndarray", np.dtype(dtype), path, "ndarray"), spy
    _equal(a[0].weights + a[0].biases, b[0].weights + b[0].biases)
    assert a[1] == b[1] and a[2] == b[2]
    # the forward-only passes
    spy.clear()
    if mod is network:
        assert a[0].evaluate(test) == b[0].evaluate((X[:150], lab[:150]))
    else:
        assert a[0].accuracy(train, convert=True) == b[0].accuracy((X, lab))
        assert a[0].total_cost(train, 2.0) == b[0].total_cost((X, lab), 2.0)
    assert spy[0][1] == "Rows" and spy[-1][1] == "ndarray"


def test_network2_dropout_momentum_match():
    X, lab, train, test = _data(200, seed=2)
    a = _sgd(network2, list(train), test[:50], 2, 10, 2, np.float64, momentum=0.5,
             dropout=0.2)
    b = _sgd(network2, (X, lab), (X[:50], lab[:50]), 2, 10, 2, np.float64, momentum=0.5,
             dropout=0.2)
    _equal(a[0].weights + a[0].biases, b[0].weights + b[0].biases)
    assert a[1] == b[1] and a[2] == b[2]


def test_training_list_left_shuffled():
    _, _, train, test = _data(50, seed=3)
    data = list(train)
    random.seed(11)
    np.random.seed(11)
    network.Network([N_IN, 30, N_OUT]).SGD(data, 3, 10, 3.0, test_data=test)
    # what the book's three random.shuffle calls leave
    want = list(train)
    random.seed(11)             # (the constructor draws from np.random only)
    for _ in range(3):
        random.shuffle(want)
    assert [id(p) for p in data] == [id(p) for p in want]


# ---------------------------------------------------------------------------------------------
# the engine's paths, asked for directly: rows read in place (float64, vector-aligned) or
# copied (float32 converted; float64 rows off the vector boundary)

@pytest.mark.parametrize("x_dtype,aligned", [(np.float32, True), (np.float64, True),
                                             (np.float64, False)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("path,batch", [("serial", 10), ("rows", 16), ("ksplit", 10),
                                        ("rows", 100)])
@pytest.mark.parametrize("threads", [1, 2])
def test_engine_paths(path, batch, threads, dtype, x_dtype, aligned):
    X, lab, train, test = _data(150, seed=4, x_dtype=x_dtype, aligned=aligned)
    R, Y, n = _core.to_arrays(train, N_IN, N_OUT, dtype, "training_data", rows=True)
    tR, tY, _ = _core.to_arrays(test[:70], N_IN, N_OUT, dtype, "test_data", one_hot=False,
                                rows=True)
    assert isinstance(R, _engine.Rows) and isinstance(tR, _engine.Rows)
    Xm = X.astype(dtype)
    rng = np.random.default_rng(5)
    W0 = [rng.normal(size=(30, N_IN)).astype(dtype), rng.normal(size=(N_OUT, 30)).astype(dtype)]
    b0 = [rng.normal(size=30).astype(dtype), rng.normal(size=N_OUT).astype(dtype)]
    orders = np.array([rng.permutation(n) for _ in range(2)], dtype=np.int32)
    runs = []
    for Xs, tXs in ((R, tR), (Xm, Xm[:70])):
        W, b = [w.copy() for w in W0], [v.copy() for v in b0]
        seen = []
        res = _core.train(W, b, Xs, Y, _core.TrainConfig(
            acts=["sigmoid", "sigmoid"], cost="quadratic", epochs=2, batch=batch, eta=3.0,
            orders=orders, eval_data=(tXs, tY), monitor_train=True, n_threads=threads,
            path=path, on_epoch=lambda st: seen.append(
                (st["train_cost"], st["train_correct"], st["eval_cost"], st["eval_correct"]))))
        want = path if threads > 1 or path != "rows" else "serial"
        assert res["path"] == want, res
        cost, hits = _core.evaluate(W, b, ["sigmoid", "sigmoid"], "quadratic", tXs, tY,
                                    n_threads=threads)
        runs.append((W + b, seen, cost, hits))
    _equal(runs[0][0], runs[1][0])
    assert runs[0][1:] == runs[1][1:]


@pytest.mark.parametrize("x_dtype", [np.float32, np.float64])
def test_conv_net_reads_rows(x_dtype):
    """A conv layer reads the gathered rows too (layer_conv2d.h: ws->rows), converted or in
    place."""
    X, lab, train, _ = _data(48, seed=6, x_dtype=x_dtype)
    R, Y, n = _core.to_arrays(train, N_IN, N_OUT, np.float64, "training_data", rows=True)
    rng = np.random.default_rng(7)
    layers = [{"kind": "conv2d", "in_shape": (28, 28, 1), "out_shape": (24, 24, 4),
               "geom": (5, 5, 1, 1, 0, 0)},
              {"kind": "maxpool2d", "in_shape": (24, 24, 4), "out_shape": (12, 12, 4),
               "geom": (2, 2, 2, 2)}, None]
    W0 = [rng.normal(size=(5, 5, 1, 4)) * 0.2, None, rng.normal(size=(10, 576)) * 0.05]
    b0 = [np.zeros(4), None, np.zeros(10)]
    runs = []
    for Xs in (R, X):
        for threads in (1, 2):
            W = [None if w is None else w.copy() for w in W0]
            b = [None if v is None else v.copy() for v in b0]
            _core.train(W, b, Xs, Y, _core.TrainConfig(
                acts=["relu", "identity", "softmax"], cost="log_likelihood", epochs=1,
                batch=8, eta=0.05, layers=layers, n_threads=threads))
            runs.append([p for p in W + b if p is not None])
    for r in runs[1:]:
        _equal(runs[0], r)


def test_evaluate_in_chunks(monkeypatch):
    """A forward-only pass longer than one chunk slices the rows as it slices a matrix."""
    X, lab, _, test = _data(700, seed=8)
    monkeypatch.setattr(_core, "PASS_CHUNK_MACS", 1.0)       # chunks of 256 examples
    R, Y, n = _core.to_arrays(test, N_IN, N_OUT, np.float64, "data", one_hot=False, rows=True)
    assert _core.pass_rows([np.zeros((30, N_IN)), np.zeros((10, 30))], n) < n
    net = network.Network([N_IN, 30, N_OUT])
    W, b = net._params()
    a = _core.evaluate(W, b, net._acts(), "quadratic", R, Y)
    m = _core.evaluate(W, b, net._acts(), "quadratic", X, Y)
    assert a == m


def test_nonfinite_output_warns_with_rows():
    """Finite inputs and weights that give NaN: the warning's search runs on the rows."""
    X, lab, _, test = _data(40, seed=9)
    R, Y, n = _core.to_arrays(test, N_IN, N_OUT, np.float64, "data", one_hot=False, rows=True)
    W = [np.full((30, N_IN), 1e200), np.full((N_OUT, 30), 1e200)]
    b = [np.zeros(30), np.zeros(N_OUT)]
    got = []
    for Xs in (R, X):
        with pytest.warns(RuntimeWarning) as rec:
            c, hits = _core.evaluate(W, b, ["relu", "softmax"], "log_likelihood", Xs, Y)
        got.append((np.isnan(c), hits, str(rec[0].message)))
    assert got[0] == got[1]


# ---------------------------------------------------------------------------------------------
# bad rows: the same errors, naming the row, whether the rows before it were read in place

@pytest.mark.parametrize("module", ["network", "network2"])
@pytest.mark.parametrize("bad,exc,words", [
    (lambda x: x[:-1], ValueError, "training_data[7]: expected x of shape (784, 1)"),
    (lambda x: np.array(["a"] * N_IN).reshape(-1, 1), TypeError,
     "training_data[7]: expected x to be numeric"),
    (lambda x: np.where(np.arange(N_IN)[:, None] == 3, np.nan, x).astype(x.dtype), ValueError,
     "training_data: expected finite x values, got NaN or Inf"),
    (lambda x: np.where(np.arange(N_IN)[:, None] == 3, -np.inf, x).astype(x.dtype),
     ValueError, "training_data: expected finite x values, got NaN or Inf"),
])
@pytest.mark.parametrize("x_dtype", [np.float32, np.float64])
def test_bad_row_named(module, bad, exc, words, x_dtype):
    mod = {"network": network, "network2": network2}[module]
    _, _, train, _ = _data(12, x_dtype=x_dtype)
    data = list(train)
    data[7] = (bad(data[7][0]), data[7][1])
    with pytest.raises(exc) as e:
        mod.Network([N_IN, 30, N_OUT]).SGD(data, 1, 4, 1.0)
    assert str(e.value).startswith(words), str(e.value)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_row_above_float32_range(dtype):
    """Finite in float64, Inf once a float32 network reads it: refused as the matrix path
    refuses it (after the conversion), accepted by a float64 network."""
    _, _, train, _ = _data(6, x_dtype=np.float64)
    data = list(train)
    data[4] = (data[4][0] * 1e300, data[4][1])
    pair = (np.stack([x.ravel() for x, _ in data]), np.array([int(np.argmax(y)) for _, y in data]))
    for d in (data, pair):
        if dtype == np.float32:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)   # numpy's overflow in cast
                with pytest.raises(ValueError, match="training_data.*expected finite"):
                    _core.to_arrays(d, N_IN, N_OUT, dtype, "training_data", rows=True)
        else:
            X, _, _ = _core.to_arrays(d, N_IN, N_OUT, dtype, "training_data", rows=True)
            assert X.shape == (6, N_IN)


def test_rows_checks():
    """Rows refuses what the engine could not read safely (it is built only by to_arrays)."""
    x = np.zeros((N_IN, 1))
    with pytest.raises(TypeError, match=r"rows\[1\]: expected a numpy array"):
        _engine.Rows([x, [0.0] * N_IN], N_IN)
    with pytest.raises(TypeError, match=r"rows\[0\]: expected float32 or float64"):
        _engine.Rows([x.astype(np.int64)], N_IN)
    with pytest.raises(TypeError, match=r"rows\[0\]: expected float32 or float64"):
        _engine.Rows([x.astype(">f8")], N_IN)
    with pytest.raises(TypeError, match=r"rows\[1\]: expected the dtype of the rows before"):
        _engine.Rows([x, x.astype(np.float32)], N_IN)
    with pytest.raises(ValueError, match=r"rows\[0\]: expected a C-contiguous"):
        _engine.Rows([np.zeros((N_IN, 2))[:, :1]], N_IN)
    with pytest.raises(ValueError, match=r"rows\[0\]: expected 784 numbers"):
        _engine.Rows([x[:-1]], N_IN)
    with pytest.raises(ValueError, match="n_in: expected a positive int"):
        _engine.Rows([x], 0)
    R = _engine.Rows([x, x], N_IN)
    with pytest.raises(TypeError, match="expected a slice"):
        R[0]
    with pytest.raises(ValueError, match="step 1"):
        R[::2]
    # the engine's entry points check what they are given
    Y = np.zeros((2, N_OUT))
    W = [np.zeros((30, N_IN)), np.zeros((N_OUT, 30))]
    b = [np.zeros(30), np.zeros(N_OUT)]
    with pytest.raises(TypeError, match="data X: expected a numpy array, got Rows"):
        _engine.gradient(W, b, [1, 1], 0, 1.0, R, Y)
    with pytest.raises(ValueError, match="data X: expected 30 columns, got rows of 784"):
        _engine.evaluate([np.zeros((N_OUT, 30))], [np.zeros(N_OUT)], [1], 0, 1.0, R, Y)
    with pytest.raises(ValueError, match="data: X has 2 rows but Y has 3"):
        _engine.evaluate(W, b, [1, 1], 0, 1.0, R, np.zeros((3, N_OUT)))


def test_xp_backend_gets_matrices(monkeypatch):
    """device='cuda' goes to the xp backend, which takes matrices: the rows are copied into
    one (run here on numpy in place of CuPy, so that no GPU is needed)."""
    from fastnn.backends import xp as xb
    seen = []
    real_train, real_eval = xb.train, xb.evaluate

    def train(W, b, X, Y, config, device="cuda", xp=None):
        ev = config.eval_data[0] if config.eval_data is not None else None
        seen.append((type(X).__name__, type(ev).__name__))
        return real_train(W, b, X, Y, config, xp=np)

    def evaluate(W, b, acts, cost, X, Y, cost_scale=1.0, device="cuda", xp=None, layers=None):
        seen.append((type(X).__name__, None))
        return real_eval(W, b, acts, cost, X, Y, cost_scale=cost_scale, xp=np, layers=layers)

    monkeypatch.setattr(_core, "resolve_device", lambda device: device or "cpu")
    monkeypatch.setattr(xb, "train", train)
    monkeypatch.setattr(xb, "evaluate", evaluate)
    X, lab, train_list, test = _data(120, seed=10)
    runs = []
    for data, td in ((list(train_list), test[:40]), ((X, lab), (X[:40], lab[:40]))):
        random.seed(12)
        np.random.seed(12)
        net = network.Network([N_IN, 30, N_OUT], device="cuda")
        with contextlib.redirect_stdout(io.StringIO()) as out:
            net.SGD(data, 2, 10, 3.0, test_data=td)
        runs.append((net.weights + net.biases, out.getvalue(), net.evaluate(td)))
    assert seen and all(s == ("ndarray", "ndarray") or s == ("ndarray", None) for s in seen), seen
    _equal(runs[0][0], runs[1][0])
    assert runs[0][1:] == runs[1][1:]


@pytest.mark.parametrize("where", [(0, 0), (63, 99), (64, 0), (999, 99), None])
def test_all_finite_in_blocks(where):
    """The matrices' finite check (an (X, y) pair, a list copied into a matrix) works a block
    of rows at a time and still finds a NaN or Inf in any row, first, last or at a seam."""
    M = np.ones((1000, 100))
    if where is not None:
        M[where] = np.inf if where[0] % 2 else np.nan
    assert _core.all_finite(M, block=6400) == (where is None)
    assert _core.all_finite(M) == (where is None)


def test_engine_import_leaves_scipy_linalg_out(run_python):
    """The book's session memory (issue 20, item 2): importing the engine loads scipy's BLAS
    module alone, not the scipy.linalg package (about 23 MiB of LAPACK wrappers and more);
    the process's later `import scipy.linalg.cython_blas` is Python's own, and works."""
    out = run_python(
        "import sys\n"
        "from fastnn import network\n"
        "print(sorted(m for m in sys.modules if m.startswith('scipy.linalg')))\n"
        "import scipy.linalg.cython_blas as cb\n"
        "import scipy.linalg\n"
        "print(scipy.linalg.cython_blas is cb, hasattr(cb, '__pyx_capi__'),\n"
        "      float(scipy.linalg.det([[2.0, 0.0], [0.0, 3.0]])))\n"
        "net = network.Network([3, 2])\n"
        "import numpy as np\n"
        "print(net.feedforward(np.ones((3, 1))).shape)\n")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["[]", "True True 6.0", "(2, 1)"]

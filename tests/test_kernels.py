"""The engine's fast paths against the numpy oracle and against each other.

* The K-split path (a first layer holding nearly all the work, as W1 and W2): each thread
  owns a share of the first layer's inputs, keeps those columns of W[0] transposed, and keeps
  its own copy of the rest of the network.  One epoch, on one thread or two, must match
  fastnn.reference.MatrixNetwork for every optimizer, and two threads must agree with the
  serial path (W[0] as given, one thread).
* Training rows read in place (aligned data) and copied first (unaligned data) must give the
  same weights bit for bit.
* The vectorized sigmoid must equal 1/(1+exp(-z)) over the whole range, subnormals included.
* The running cost and hits of the training mini-batches (run_stats, what Keras' fit reports)
  must match the oracle batch by batch, and asking for them must not change the training.
* The forward-only passes (predict, evaluate, the per-epoch monitors) run a first layer of up
  to 256 neurons through a transposed copy of W[0], in tiles when it is large; wider layers go
  to BLAS.  Both must match the oracle, on chunks of every length, read aligned or not.
"""
import numpy as np
import pytest

from fastnn import _core, reference

SIZES = [512, 32, 4]       # first layer: 98 % of the multiply-adds, so the K split applies


def _problem(dtype, n=300, sizes=SIZES, seed=3):
    rng = np.random.RandomState(seed)
    X = rng.rand(n, sizes[0]).astype(dtype)
    Y = np.eye(sizes[-1], dtype=dtype)[rng.randint(0, sizes[-1], n)]
    W = [(rng.randn(o, i) / np.sqrt(i)).astype(dtype) for i, o in zip(sizes[:-1], sizes[1:])]
    b = [rng.randn(o).astype(dtype) for o in sizes[1:]]
    order = rng.permutation(n).astype(np.int32)
    return X, Y, W, b, order


def _engine_epoch(X, Y, W, b, order, *, n_threads, optimizer="sgd", batch=10, eta=0.5,
                  lmbda=0.0, l1=0.0, dropout=0.0, acts=("sigmoid", "sigmoid"),
                  cost="quadratic", run_stats=False, on_epoch=None, path=None):
    W = [w.copy() for w in W]
    b = [x.copy() for x in b]
    res = _core.train(W, b, X, Y, _core.TrainConfig(
        acts=list(acts), cost=cost, epochs=1, batch=batch, eta=eta, lmbda=lmbda, l1=l1,
        reg_n=float(len(X)), optimizer=optimizer, momentum=0.9, beta1=0.9, beta2=0.999,
        eps=1e-7, state=_core.new_state(optimizer, W, b), dropout=dropout, seed=11,
        orders=order[None, :], n_threads=n_threads, run_stats=run_stats, on_epoch=on_epoch,
        path=path))
    return W, b, res


def _max_diff(a, b):
    return max(float(np.max(np.abs(x - y))) for x, y in zip(a, b))


def _assert_oracle_epoch(W, b, W2, b2, X, Y, order, batch, eta, dtype, tol, **kw):
    """W2, b2 (the engine's epoch from W, b) against the numpy oracle's epoch on the same
    order, within tol; and training moved the weights well beyond tol."""
    ref = reference.MatrixNetwork(W, [x.reshape(-1, 1) for x in b], dtype=dtype)
    ref.train_epoch(X, Y, order, batch, eta, n=len(X), **kw)
    assert _max_diff(W2, ref.weights) < tol
    assert _max_diff(b2, [x.ravel() for x in ref.biases]) < tol
    assert _max_diff(W2, W) > 100 * tol


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-10), (np.float32, 2e-4)])
@pytest.mark.parametrize("optimizer, lmbda, l1", [("sgd", 0.0, 0.0), ("sgd", 2.0, 0.0),
                                                  ("sgd", 0.0, 1.0), ("momentum", 1.0, 0.0),
                                                  ("adam", 0.0, 0.0)])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_ksplit_epoch_matches_oracle(dtype, tol, optimizer, lmbda, l1, n_threads):
    X, Y, W, b, order = _problem(dtype)
    eta = 0.01 if optimizer == "adam" else 0.5
    W2, b2, res = _engine_epoch(X, Y, W, b, order, n_threads=n_threads, optimizer=optimizer,
                                eta=eta, lmbda=lmbda, l1=l1)
    assert res["path"] == "ksplit"
    _assert_oracle_epoch(W, b, W2, b2, X, Y, order, 10, eta, dtype, tol, lmbda=lmbda, l1=l1,
                         optimizer=optimizer, momentum=0.9, beta1=0.9, beta2=0.999, eps=1e-7)


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-10), (np.float32, 2e-4)])
@pytest.mark.parametrize("n_threads, path", [(1, "serial"), (1, "ksplit"), (2, "rows"),
                                             (2, "ksplit")])
@pytest.mark.parametrize("sizes", [[517, 30, 10], [403, 13, 7, 3]])
def test_widths_off_the_vector_size_match_oracle(dtype, tol, n_threads, path, sizes):
    # no width a multiple of 8 or 16: every kernel runs its partial last vector
    X, Y, W, b, order = _problem(dtype, n=97, sizes=sizes)
    W2, b2, res = _engine_epoch(X, Y, W, b, order, n_threads=n_threads, path=path,
                                lmbda=1.0, acts=("sigmoid",) * (len(sizes) - 1))
    assert res["path"] == path
    _assert_oracle_epoch(W, b, W2, b2, X, Y, order, 10, 0.5, dtype, tol, lmbda=1.0)


# float32 within 10 ulp or so of weights near 1: the same sums in the same order as the oracle's
# products, up to their FMAs (seen: 2.1e-7)
@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 2e-6)])
@pytest.mark.parametrize("optimizer, lmbda, l1", [("sgd", 1.0, 0.0), ("sgd", 0.0, 1.0),
                                                  ("momentum", 1.0, 0.0), ("adam", 0.0, 0.0)])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_large_batch_update_matches_oracle(dtype, tol, optimizer, lmbda, l1, n_threads):
    # mini-batches of 100 (above FNN_SMALL_M): the forward and the delta go through our own
    # tiles (forward_tiles, backward_tiles), and so does the update's gradient, fused with the
    # step (update_fused), for blocks of at least FNN_UMR (6) neurons; it comes from BLAS for
    # the blocks of the last layer's 5; the biases' sums run a row of deltas at a
    # time.  The inputs' widths end every way a panel can (float32, 64 a panel: 11, 50, 26 and
    # 36 left, so 1, 4, 2 and 3 vectors, the last one partial; float64, 32 a panel: 2, 3, 4
    # and 1); each layer is updated in fixed blocks of neurons (as many as the CPUs, up to 8;
    # with 2: 25, 45, 50, 6 and 7 neurons), most leaving a partial tile of rows; a short last
    # mini-batch (50) takes the row kernels
    sizes = [203, 50, 90, 100, 13, 5]
    X, Y, W, b, order = _problem(dtype, n=350, sizes=sizes)
    eta = 0.01 if optimizer == "adam" else 0.5
    W2, b2, res = _engine_epoch(X, Y, W, b, order, n_threads=n_threads, optimizer=optimizer,
                                batch=100, eta=eta, lmbda=lmbda, l1=l1,
                                acts=("sigmoid",) * (len(sizes) - 1))
    assert res["path"] == ("rows" if n_threads > 1 else "serial")
    _assert_oracle_epoch(W, b, W2, b2, X, Y, order, 100, eta, dtype, tol, lmbda=lmbda, l1=l1,
                         optimizer=optimizer, momentum=0.9, beta1=0.9, beta2=0.999, eps=1e-7)


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 2e-6)])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_batches_above_the_fused_limit_match_oracle(dtype, tol, n_threads):
    # mini-batches of 1100, above FNN_FUSED_MAX_M (1024): the update goes back to BLAS and the
    # gradient buffer, so that no call copies a whole epoch of inputs per thread; the last
    # mini-batch of 100 in the same call (a workspace for 1100) updates through BLAS as well
    # (the forward and the delta take the tiles at any size above FNN_SMALL_M)
    sizes = [70, 24, 3]
    X, Y, W, b, order = _problem(dtype, n=2300, sizes=sizes)
    W2, b2, res = _engine_epoch(X, Y, W, b, order, n_threads=n_threads, optimizer="momentum",
                                batch=1100, eta=0.5, lmbda=1.0,
                                acts=("sigmoid",) * (len(sizes) - 1))
    assert res["path"] == ("rows" if n_threads > 1 else "serial")
    _assert_oracle_epoch(W, b, W2, b2, X, Y, order, 1100, 0.5, dtype, tol, lmbda=1.0,
                         optimizer="momentum", momentum=0.9)


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-11), (np.float32, 1e-4)])
@pytest.mark.parametrize("kw", [dict(dropout=0.3), dict(batch=7),
                                dict(acts=("relu", "softmax"), cost="log_likelihood"),
                                dict(optimizer="adam", eta=0.01, dropout=0.2)])
def test_ksplit_agrees_with_one_thread(dtype, tol, kw):
    X, Y, W, b, order = _problem(dtype, n=203)      # 203: a short last mini-batch
    W1, b1, r1 = _engine_epoch(X, Y, W, b, order, n_threads=1, path="serial", **kw)
    W2, b2, r2 = _engine_epoch(X, Y, W, b, order, n_threads=2, **kw)
    assert (r1["path"], r2["path"]) == ("serial", "ksplit")
    assert _max_diff(W1, W2) < tol and _max_diff(b1, b2) < tol
    assert _max_diff(W1, W) > 100 * tol


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n_threads, path", [(1, "serial"), (1, "ksplit"), (2, "rows"),
                                             (2, "ksplit")])
def test_rows_read_in_place_equal_rows_copied(dtype, n_threads, path):
    X, Y, W, b, order = _problem(dtype)
    aligned = _core.aligned_empty(X.shape, dtype)
    aligned[...] = X
    # the same numbers one element off the alignment: the engine copies each row first
    buf = np.empty(X.size + 1, dtype=dtype)
    shifted = buf[1:].reshape(X.shape)
    shifted[...] = X
    assert _core.is_aligned(aligned) and not _core.is_aligned(shifted, 32)
    Wa, ba, ra = _engine_epoch(aligned, Y, W, b, order, n_threads=n_threads, path=path)
    Ws, bs, rs = _engine_epoch(shifted, Y, W, b, order, n_threads=n_threads, path=path)
    assert ra["path"] == rs["path"] == path
    for x, y in zip(Wa + ba, Ws + bs):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 4e-16), (np.float32, 3e-7)])
def test_vector_sigmoid_over_the_whole_range(dtype, rtol):
    # a 64-64 identity layer: predict() returns sigmoid(x) lane by lane
    n = 64
    lim = 750.0 if dtype == np.float64 else 110.0
    z = np.concatenate([np.linspace(-lim, lim, 64 * 200), [0.0, -0.0, 1e-300, -1e-300]])
    z = np.resize(z, (len(z) // n + 1) * n).reshape(-1, n).astype(dtype)
    W = [np.eye(n, dtype=dtype)]
    b = [np.zeros(n, dtype=dtype)]
    got = _core.predict(W, b, ["sigmoid"], z)
    zz = z.astype(np.float64)
    with np.errstate(over="ignore"):
        e = np.exp(-np.abs(zz))
    want = np.where(zz >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(dtype)
    tiny = np.finfo(dtype).tiny
    normal = want >= tiny
    np.testing.assert_allclose(got[normal], want[normal], rtol=rtol, atol=0)
    # subnormal results: within a few of the smallest steps
    sub = ~normal
    assert np.all(np.abs(got[sub] - want[sub]) <= 4 * np.finfo(dtype).smallest_subnormal)
    assert np.all(got >= 0) and np.all(got <= 1)


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("acts, cost", [(("sigmoid", "sigmoid"), "cross_entropy"),
                                        (("relu", "softmax"), "log_likelihood")])
def test_run_stats_match_oracle_and_leave_training_alone(n_threads, acts, cost):
    X, Y, W, b, order = _problem(np.float64, n=203)
    stats_on, stats_off = [], []
    W1, b1, _ = _engine_epoch(X, Y, W, b, order, n_threads=n_threads, acts=acts, cost=cost,
                              run_stats=True, on_epoch=stats_on.append)
    W0, b0, _ = _engine_epoch(X, Y, W, b, order, n_threads=n_threads, acts=acts, cost=cost,
                              on_epoch=stats_off.append)
    assert _max_diff(W1, W0) == 0.0 and _max_diff(b1, b0) == 0.0
    assert (stats_off[0]["run_n"], stats_off[0]["run_cost"], stats_off[0]["run_correct"]) == \
        (0, 0.0, 0)
    # the oracle, one mini-batch at a time: cost and hits before that batch's update
    ref = reference.MatrixNetwork(W, [x.reshape(-1, 1) for x in b], activation=acts[0],
                                  output_activation=acts[1], cost=cost)
    cost_sum, hits = 0.0, 0
    for start in range(0, len(order), 10):
        idx = order[start:start + 10]
        cost_sum += ref.batch_cost(X[idx], Y[idx])
        hits += int(np.sum(np.argmax(ref.feedforward(X[idx]), axis=1) ==
                           np.argmax(Y[idx], axis=1)))
        ref.train_epoch(X, Y, idx, 10, 0.5, n=len(X))
    st = stats_on[0]
    assert st["run_n"] == len(X)
    assert st["run_correct"] == hits
    assert st["run_cost"] == pytest.approx(cost_sum, rel=1e-10)
    assert _max_diff(W1, ref.weights) < 1e-10


# first-layer widths: one lane, off the vector size, the issue-3 and W1 widths, in several
# tiles (float64: 600 x 104 and 600 x 256 are over the 384 KiB tile), the widest transposed
# one and the first BLAS one; [600, 30] is a one-layer network (softmax output)
@pytest.mark.parametrize("sizes, acts, cost", [
    ([203, 1, 2], ("sigmoid", "sigmoid"), "cross_entropy"),
    ([203, 13, 5], ("tanh", "sigmoid"), "quadratic"),
    ([600, 100, 4], ("sigmoid", "sigmoid"), "cross_entropy"),
    ([600, 256, 3], ("relu", "softmax"), "log_likelihood"),
    ([203, 257, 3], ("sigmoid", "sigmoid"), "cross_entropy"),
    ([600, 30], ("softmax",), "log_likelihood")])
@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 2e-5)])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_forward_only_passes_match_oracle(sizes, acts, cost, dtype, rtol, n_threads):
    n = 1000      # three evaluation chunks of 256 and a shorter one
    X, Y, W, b, _ = _problem(dtype, n=n, sizes=sizes, seed=5)
    Xu = np.empty(X.size + 1, dtype)[1:].reshape(X.shape)   # off the vector boundary
    Xu[...] = X
    ref = reference.MatrixNetwork([w.astype(np.float64) for w in W],
                                  [x.reshape(-1, 1).astype(np.float64) for x in b],
                                  activation=acts[0] if len(acts) > 1 else "sigmoid",
                                  output_activation=acts[-1], cost=cost)
    want = ref.feedforward(X.astype(np.float64))
    for data in (X, Xu):
        got = _core.predict(W, b, list(acts), data, n_threads=n_threads)
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol)
        c, hits = _core.evaluate(W, b, list(acts), cost, data, Y, n_threads=n_threads)
        assert c == pytest.approx(ref.total_cost(X, Y) * n, rel=10 * rtol)
        # hits: exact, but for rows whose two best outputs are closer than the tolerance
        top2 = np.sort(want, axis=1)[:, -2:] if sizes[-1] > 1 else np.zeros((n, 2))
        close = int(np.sum(top2[:, 1] - top2[:, 0] < 10 * rtol))
        assert abs(hits - ref.accuracy(X, Y)) <= close


@pytest.mark.parametrize("path", ["serial", "rows", "ksplit"])
def test_progress_counters_follow_the_epochs(path):
    """The engine publishes (epoch, mini-batches done) as it trains: the epoch callback sees
    the finished epoch's count, and the last values are the last epoch and all its batches."""
    X, Y, W, b, _ = _problem(np.float64, n=95)
    progress = np.full(2, -1, dtype=np.int64)
    seen = []

    def on_epoch(st):
        seen.append((st["epoch"], int(progress[0]), int(progress[1])))

    _core.train(W, b, X, Y, _core.TrainConfig(
        acts=["sigmoid", "sigmoid"], cost="quadratic", epochs=3, batch=10, eta=0.5,
        on_epoch=on_epoch, n_threads=2, path=path, progress=progress))
    # 95 examples in mini-batches of 10: 10 batches per epoch
    assert seen == [(0, 0, 10), (1, 1, 10), (2, 2, 10)]
    assert progress.tolist() == [2, 10]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch, n_threads", [(10, 1), (10, 2), (100, 2)])
def test_adam_moments_below_the_smallest_normal_go_to_zero(dtype, batch, n_threads):
    """Adam's m and v that the step would leave subnormal are stored as 0 (optimizers.h: the
    divide of a subnormal is slow), and nothing else changes.  The first 100 inputs are 0,
    so the first layer's weights on them get a gradient of exactly 0: from m0 = v0 = 1.0005
    times the smallest normal number, one step makes m0 (1 - b1) and v0 (1 - b2), both below
    it (subnormal, not 0, without the flush).  Every other moment and every weight follow the
    oracle's Adam, which has no flush.  Batch 10 takes the K split, 100 the update's tiles."""
    tiny = np.finfo(dtype).tiny
    X, Y, W, b, order = _problem(dtype, n=batch)
    X[:, :100] = 0
    W2, b2 = [w.copy() for w in W], [x.copy() for x in b]
    state = _core.new_state("adam", W2, b2, fill=1.0005 * tiny)
    _core.train(W2, b2, X, Y, _core.TrainConfig(
        acts=["sigmoid", "sigmoid"], cost="quadratic", epochs=1, batch=batch, eta=1e-3,
        optimizer="adam", beta1=0.9, beta2=0.999, eps=1e-7, state=state,
        orders=order[None, :], n_threads=n_threads))
    m, v = state[0][0][0], state[1][0][0]
    without = (1.0005 * tiny * np.array([0.9, 0.999])).astype(dtype)
    assert np.all((without > 0) & (without < tiny))         # the step's values, subnormal
    assert np.all(m[:, :100] == 0) and np.all(v[:, :100] == 0)
    # the inputs in use: moments of the gradient's size, as the formula gives them
    ref = reference.MatrixNetwork(W, [x.reshape(-1, 1) for x in b], dtype=dtype)
    ref.adam_m_w = [np.full_like(w, 1.0005 * tiny) for w in W]
    ref.adam_v_w = [np.full_like(w, 1.0005 * tiny) for w in W]
    ref.adam_m_b = [np.full_like(x.reshape(-1, 1), 1.0005 * tiny) for x in b]
    ref.adam_v_b = [np.full_like(x.reshape(-1, 1), 1.0005 * tiny) for x in b]
    ref.train_epoch(X, Y, order, batch, 1e-3, n=len(X), optimizer="adam", beta1=0.9,
                    beta2=0.999, eps=1e-7)
    rtol, tol = (1e-4, 2e-4) if dtype == np.float32 else (1e-9, 1e-10)
    m_ref = ref.adam_m_w[0][:, 100:]
    assert np.allclose(m[:, 100:], m_ref, rtol=rtol, atol=rtol * np.max(np.abs(m_ref)))
    assert np.all(np.abs(m[:, 100:]) >= tiny)
    assert _max_diff(W2, ref.weights) < tol
    assert _max_diff(b2, [x.ravel() for x in ref.biases]) < tol

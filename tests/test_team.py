"""Threads that adapt to a busy machine (issue 20, item 1; src_c/team.h).

With the default thread count the engine runs the mini-batches in chunks, each on as many
threads as pay.  The team may change between any two chunks, so the weights must not depend
on the choices: the test schedule (``adapt=2``) changes the team every 3 mini-batches, across
the ladder (3, 2, 1 threads), and must end bit-identical to one thread.  The statistics must say
how many threads ran, and an explicit thread count must be kept exactly."""
import os

import numpy as np
import pytest

from fastnn import _config, _core, _engine

pytestmark = pytest.mark.skipif(not _engine.openmp_enabled(),
                                reason="fastnn was built without OpenMP: one thread only")


def _problem(sizes, n=257, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    W = [(rng.standard_normal((o, i)) * 0.1).astype(dtype) for i, o in zip(sizes[:-1], sizes[1:])]
    b = [(rng.standard_normal(o) * 0.1).astype(dtype) for o in sizes[1:]]
    X = rng.random((n, sizes[0])).astype(dtype)
    Y = np.eye(sizes[-1], dtype=dtype)[rng.integers(0, sizes[-1], n)]
    return W, b, X, Y


def _train(sizes, batch, optimizer, n_threads, adapt, dtype=np.float64, epochs=2):
    W, b, X, Y = _problem(sizes, dtype=dtype)
    stats = []
    res = _core.train(W, b, X, Y, _core.TrainConfig(
        acts=["relu"] * (len(sizes) - 2) + ["softmax"], cost="log_likelihood", epochs=epochs,
        batch=batch, eta=0.05 if optimizer != "adam" else 1e-3, optimizer=optimizer,
        momentum=0.9 if optimizer == "momentum" else 0.0,
        state=_core.new_state(optimizer, W, b) if optimizer != "sgd" else None,
        orders=np.array([np.random.default_rng(e).permutation(len(X)) for e in range(epochs)],
                        dtype=np.int32),
        eval_data=(X[:200], Y[:200]), run_stats=True, n_threads=n_threads, adapt=adapt,
        on_epoch=lambda st: stats.append(dict(st))))
    return W + b, res, stats


# the K split ([784, 30, 10] batch 10 as the book; Adam at batch 32 as the Keras lesson) and
# the rows path with mini-batches its own kernels take (16) and BLAS takes (128)
CASES = [([784, 30, 10], 10, "sgd"), ([784, 128, 10], 32, "adam"),
         ([100, 300, 10], 16, "momentum"), ([100, 300, 300, 10], 128, "momentum")]


@pytest.mark.parametrize("sizes,batch,optimizer", CASES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_team_changes_leave_the_weights_alone(sizes, batch, optimizer, dtype):
    base, res1, st1 = _train(sizes, batch, optimizer, 1, 0, dtype)
    for n_threads in (2, 3):
        got, res, st = _train(sizes, batch, optimizer, n_threads, 2, dtype)
        diff = max(float(np.max(np.abs(a - c))) for a, c in zip(base, got))
        print(f"{sizes} batch {batch} {optimizer} {np.dtype(dtype).name}: 1 thread against "
              f"a team changing every 3 mini-batches among {n_threads}..1: max difference "
              f"{diff}; threads per mini-batch {[round(s['threads'], 3) for s in st]}")
        assert all(np.array_equal(a, c) for a, c in zip(base, got)), diff
        # the team really changed: on average strictly between 1 and n_threads
        assert all(1.0 < s["threads"] < n_threads for s in st), st
        # the evaluation's cost is added in row order: the same on any team
        assert [s["eval_cost"] for s in st] == [s["eval_cost"] for s in st1]
        assert [s["run_correct"] for s in st] == [s["run_correct"] for s in st1]
        # and the running cost of the training mini-batches (Keras' loss in fit): each
        # mini-batch's in example order, the mini-batches in order
        assert [s["run_cost"] for s in st] == [s["run_cost"] for s in st1]


def test_statistics_count_the_threads():
    _, res, st = _train([784, 30, 10], 10, "sgd", 2, 0)
    assert res["path"] == "ksplit"
    assert res["threads"] == 2.0 and all(s["threads"] == 2.0 for s in st)
    assert all(0.0 <= s["wait_frac"] < 1.0 for s in st)
    _, res, st = _train([784, 30, 10], 10, "sgd", 1, 0)
    assert res["threads"] == 1.0 and all(s["wait_frac"] == 0.0 for s in st)
    # schedule 2 on 2 threads alternates 2, 1, 2, 1 ... over chunks of 3 of the 26 mini-batches
    # of an epoch: chunks 0, 2, 4, 6 (3 each) and 8 (the last 2) on 2 threads, chunks 1, 3, 5,
    # 7 on 1: (2 * 14 + 1 * 12) / 26
    _, res, st = _train([784, 30, 10], 10, "sgd", 2, 2, epochs=1)
    assert st[0]["batches"] == 26
    assert st[0]["threads"] == pytest.approx(40 / 26)


def test_show_config_reports_the_last_run():
    _train([784, 30, 10], 10, "sgd", 2, 0)
    last = _config.show_config(print_=False)["last_run"]
    assert last == {"threads_max": 2, "threads_mean": 2.0, "adaptive": False}


def test_only_the_default_count_adapts(monkeypatch):
    monkeypatch.setattr(_config, "_num_threads", None)
    monkeypatch.delenv("FASTNN_ADAPT", raising=False)
    assert _config.adapts(None) is True
    assert _config.adapts(2) is False
    monkeypatch.setenv("FASTNN_ADAPT", "0")
    assert _config.adapts(None) is False
    monkeypatch.delenv("FASTNN_ADAPT")
    monkeypatch.setattr(_config, "_num_threads", 2)
    assert _config.adapts(None) is False


def test_bad_adapt_value():
    W, b, X, Y = _problem([20, 5, 3])
    with pytest.raises(ValueError, match=r"adapt: expected 0, 1 or 2, got 7"):
        _core.train(W, b, X, Y, _core.TrainConfig(acts=["relu", "softmax"],
                                                  cost="log_likelihood", epochs=1, batch=10,
                                                  eta=0.1, adapt=7))


def test_ksplit_team_is_capped_at_its_blocks():
    """A K-split thread past the fixed blocks would own no columns: the team stops there."""
    blocks = _engine.ksplit_blocks()
    n_threads = blocks + 1
    _, res, st = _train([784, 30, 10], 10, "sgd", n_threads, 0)
    assert res["path"] == "ksplit"
    assert res["threads"] == float(blocks)

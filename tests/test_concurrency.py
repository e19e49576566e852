"""Threads: the engine trains without the GIL, networks train side by side, one network
refuses a second concurrent SGD.

Random numbers and threads.  ``SGD`` draws everything random at its start, in Python, before
the engine runs: the example orders of all epochs from the global ``random`` (as the book's
``random.shuffle``), and with dropout one seed from ``np.random``.  The engine itself draws
nothing.  Two SGD calls started at once in two threads would interleave their draws in an
order that depends on the scheduler, so the tests below serialize only the *starts*: thread k
is started once thread k-1 has entered the engine (``_core.train`` is wrapped to signal it,
after every draw of that call).  The draws then happen in the same order as in the sequential
run, and the training itself overlaps (checked from the wrapper's timestamps).
"""
import random
import threading
import time

import numpy as np
import pytest

from fastnn import _core, network, network2


class EngineEntry:
    """Wraps _core.train: records when each call enters and leaves the engine."""

    def __init__(self, monkeypatch):
        self.entered = []
        self.spans = []
        self._cond = threading.Condition()
        real = _core.train

        def train(*a, **k):
            with self._cond:
                self.entered.append(threading.get_ident())
                self._cond.notify_all()
            t0 = time.perf_counter()
            try:
                return real(*a, **k)
            finally:
                self.spans.append((t0, time.perf_counter()))
        monkeypatch.setattr(_core, "train", train)

    def wait(self, count, timeout=60):
        with self._cond:
            assert self._cond.wait_for(lambda: len(self.entered) >= count, timeout), \
                "SGD never reached the engine"


def _data(n, n_in, n_out, seed):
    rng = np.random.RandomState(seed)
    return rng.rand(n, n_in), rng.randint(0, n_out, n)


def _params(net):
    return [p.copy() for p in net.weights + net.biases]


# ---------------------------------------------------------------------------------------------

def test_gil_is_released_while_training():
    """A counter thread keeps counting while SGD calls of a few tenths of a second each train
    for more than a second (calls until then: a fixed epoch count got shorter as the engine
    got faster)."""
    X, y = _data(6000, 100, 10, 0)
    np.random.seed(0)
    net = network2.Network([100, 200, 10], n_threads=1)
    state = {"count": 0, "stop": False}

    def count():
        while not state["stop"]:
            state["count"] += 1

    # the counter's rate on its own, for scale
    t = threading.Thread(target=count)
    t.start()
    time.sleep(0.3)
    state["stop"] = True
    t.join()
    solo_rate = state["count"] / 0.3

    state.update(count=0, stop=False)
    t = threading.Thread(target=count)
    t.start()
    t0 = time.perf_counter()
    calls = 0
    while time.perf_counter() - t0 < 1.2:
        net.SGD((X, y), 10, 10, 0.1, verbose=False)
        calls += 1
    train_s = time.perf_counter() - t0
    during = state["count"]
    state["stop"] = True
    t.join()
    share = during / (solo_rate * train_s)
    print(f"\n{calls} SGD calls ran {train_s:.2f} s; the counter thread counted {during:,} "
          f"meanwhile, {share:.0%} of its solo rate ({solo_rate:,.0f}/s)")
    # each call long enough that a call holding the GIL throughout would leave the counter
    # only the moments between calls: near 0
    assert train_s / calls > 0.1
    assert share > 0.1


def _three_nets():
    """(network, data, SGD kwargs): dropout draws from np.random, float32, the ch.1 network."""
    out = []
    for k, (mod, kw, dtype) in enumerate([
            (network2, {"lmbda": 1.0, "momentum": 0.5, "dropout": 0.2, "verbose": False},
             np.float64),
            (network2, {"verbose": False}, np.float32),
            (network, {}, np.float64)]):
        np.random.seed(10 + k)
        net = mod.Network([50, 80, 10], dtype=dtype, n_threads=2)
        out.append((net, _data(3000, 50, 10, k), kw))
    return out


def test_two_threads_train_like_one_after_the_other(monkeypatch):
    # one after the other
    random.seed(7)
    np.random.seed(7)
    seq = _three_nets()
    random.seed(7)
    np.random.seed(7)
    for net, data, kw in seq:
        net.SGD(data, 5, 10, 0.5, **kw)

    # at once, each started when the previous one has made its draws and entered the engine
    conc = _three_nets()
    entry = EngineEntry(monkeypatch)
    errors = []

    def run(net, data, kw):
        try:
            net.SGD(data, 5, 10, 0.5, **kw)
        except BaseException as e:             # noqa: B902
            errors.append(e)

    random.seed(7)
    np.random.seed(7)
    threads = []
    for i, args in enumerate(conc):
        threads.append(threading.Thread(target=run, args=args))
        threads[-1].start()
        entry.wait(i + 1)
    for t in threads:
        t.join()
    assert not errors, errors
    for (a, _, _), (b, _, _) in zip(seq, conc):
        assert all(np.array_equal(p, q) for p, q in zip(_params(a), _params(b)))
    first_end = min(end for _, end in entry.spans)
    last_start = max(start for start, _ in entry.spans)
    print(f"\nengine calls (s): {[round(e - s, 3) for s, e in entry.spans]}, overlapped: "
          f"{last_start < first_end}")
    assert last_start < first_end, "the three trainings did not run at the same time"


@pytest.mark.parametrize("second", ["SGD", "update_mini_batch"])
def test_same_network_from_two_threads(monkeypatch, second):
    """A second training call on a network that is training raises RuntimeError at once and
    changes nothing: the first call ends as if it had been alone."""
    X, y = _data(6000, 100, 10, 1)
    pairs = [(x.reshape(-1, 1), np.eye(10)[k].reshape(-1, 1)) for x, k in zip(X[:5], y[:5])]

    def fresh():
        np.random.seed(3)
        return network2.Network([100, 100, 10], n_threads=1)

    random.seed(1)
    alone = fresh()
    alone.SGD((X, y), 4, 10, 0.1, verbose=False)

    net = fresh()
    entry = EngineEntry(monkeypatch)
    errors = []
    random.seed(1)
    t = threading.Thread(target=lambda: net.SGD((X, y), 4, 10, 0.1, verbose=False))
    t.start()
    entry.wait(1)
    state = random.getstate()
    try:
        if second == "SGD":
            net.SGD((X, y), 1, 10, 0.1, verbose=False)
        else:
            net.update_mini_batch(pairs, 0.1, 0.0, len(pairs))
    except RuntimeError as e:
        errors.append(e)
    # predictions while it trains are allowed (they read the weights of some mini-batch)
    out = net.feedforward(X[:3].T)
    t.join()
    assert len(errors) == 1 and "already being trained in another thread" in str(errors[0])
    assert len(entry.entered) == 1 and random.getstate() == state
    assert np.isfinite(out).all()
    assert all(np.array_equal(p, q) for p, q in zip(_params(net), _params(alone)))
    net.SGD((X[:50], y[:50]), 1, 10, 0.1, verbose=False)     # free again


def test_rebinding_weights_while_training_is_safe(monkeypatch):
    """Replacing net.weights[l] from another thread during SGD must not free the arrays the
    engine is writing into (the engine keeps its own references)."""
    import gc
    X, y = _data(6000, 100, 10, 2)
    np.random.seed(4)
    net = network2.Network([100, 100, 10], n_threads=1)
    entry = EngineEntry(monkeypatch)
    t = threading.Thread(target=lambda: net.SGD((X, y), 3, 10, 0.1, verbose=False))
    t.start()
    entry.wait(1)
    mine = [np.zeros_like(w) for w in net.weights]
    while t.is_alive():
        for l, w in enumerate(mine):
            net.weights[l] = w
        gc.collect()
        time.sleep(0.01)
    t.join()
    assert all(w is m for w, m in zip(net.weights, mine))
    net.SGD((X[:50], y[:50]), 1, 10, 0.1, verbose=False)
    assert all(np.isfinite(w).all() for w in net.weights)


def test_threaded_predictions_are_deterministic():
    """predict / accuracy with 2 engine threads, on sizes that leave a short last chunk, give
    the single-thread answer every time (up to rounding)."""
    rng = np.random.RandomState(0)
    X = rng.rand(300, 50)
    y = rng.randint(0, 10, 300)
    np.random.seed(0)
    net = network2.Network([50, 200, 10], n_threads=1)
    ref = net.feedforward(X.T)
    ref_acc = net.accuracy((X, y))
    net.n_threads = 2
    wrong, wrong_acc = 0, 0
    for _ in range(150):
        wrong += not np.allclose(net.feedforward(X.T), ref, rtol=0, atol=1e-12)
        wrong_acc += net.accuracy((X, y)) != ref_acc
    print(f"\n2 threads: {wrong}/150 predictions and {wrong_acc}/150 accuracies differ from "
          f"1 thread")
    assert wrong == 0 and wrong_acc == 0

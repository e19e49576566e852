"""Faults: divergence, files, Ctrl-C and memory.

- Divergence: when the weights stop being finite, SGD raises ``DivergenceError`` (a
  ``FloatingPointError``) naming the epoch, and the network keeps the weights it had at the end
  of the previous epoch (the engine snapshots them at the start of every epoch).
- Files: ``network2.save`` writes a temporary file in the same folder, fsyncs it and renames it
  over the target, so a crash or a SIGKILL during ``save`` leaves the previous file intact (a
  killed save may leave its ``.fastnn-*.tmp`` file behind; a normal or failed save never does).
  ``load`` turns every truncated, corrupted or inconsistent file into a ValueError.
- Ctrl-C: the engine checks for signals between chunks of mini-batches (about 2e8
  multiply-adds each) and after every epoch.  A KeyboardInterrupt therefore stops ``SGD``
  within a fraction of an epoch; the network keeps the weights of the last finished mini-batch
  (finite, changed from the initial ones) and can be trained again.
- Memory: 1,000 small ``SGD`` calls (and 1,000 failing ones) do not grow the RSS or the
  Python heap beyond noise.

Run with ``pytest -s`` to see the measured numbers.
"""
import gc
import json
import math
import os
import random
import signal
import sys
import textwrap
import time
import tracemalloc

import numpy as np
import pytest

from fastnn import network, network2
from fastnn._core import DivergenceError


# ---------------------------------------------------------------------------------------------
# divergence

def _diverging_run(epochs, dtype=np.float64, eta=1e6):
    """A relu network with a linear output and the quadratic cost: eta=1e6 blows it up."""
    np.random.seed(1)
    net = network2.Network([3, 4, 1], cost=network2.QuadraticCost, activation="relu",
                           output_activation="identity", dtype=dtype, n_threads=1)
    w0 = [w.copy() for w in net.weights + net.biases]
    rng = np.random.RandomState(0)
    X, Y = rng.rand(20, 3), rng.rand(20, 1)
    random.seed(2)
    err = None
    try:
        net.SGD((X, Y), epochs, 2, eta, verbose=False)
    except DivergenceError as e:
        err = e
    return net, err, w0


def _epoch_of(err):
    words = str(err).split()
    return int(words[words.index("epoch") + 1].rstrip(":"))


@pytest.mark.parametrize("dtype, eta", [(np.float64, 1e6), (np.float32, 20.0)],
                         ids=["f64", "f32"])
def test_divergence_keeps_the_weights_of_the_previous_epoch(dtype, eta):
    """(float32 overflows at 3e38: with eta=1e6 it is gone in epoch 0, so a smaller eta.)"""
    net, err, w0 = _diverging_run(50, dtype, eta)
    assert isinstance(err, FloatingPointError) and isinstance(err, DivergenceError)
    epoch = _epoch_of(err)
    print(f"\n{np.dtype(dtype).name}: {err}")
    assert "diverged in epoch" in str(err) and epoch >= 1
    params = net.weights + net.biases
    assert all(np.isfinite(p).all() for p in params)
    # the same seeds, stopped one epoch earlier: the epochs 0..epoch-1 that did finish
    ref, ref_err, _ = _diverging_run(epoch, dtype, eta)
    assert ref_err is None
    assert all(np.array_equal(p, q) for p, q in zip(params, ref.weights + ref.biases))
    assert any(not np.array_equal(p, q) for p, q in zip(params, w0))
    # the network is usable afterwards: a sane learning rate trains it
    net.SGD((np.array([[0.1, 0.2, 0.3]]), np.array([[0.5]])), 1, 1, 1e-3, verbose=False)
    assert all(np.isfinite(p).all() for p in net.weights + net.biases)


def test_divergence_in_the_first_epoch_restores_the_initial_weights():
    net, err, w0 = _diverging_run(5, eta=1e300)
    assert err is not None and _epoch_of(err) == 0
    assert all(np.array_equal(p, q) for p, q in zip(net.weights + net.biases, w0))


def test_divergence_network_chapter1():
    np.random.seed(0)
    net = network.Network([2, 3, 2])
    w0 = [w.copy() for w in net.weights]
    with pytest.raises(DivergenceError, match="epoch 0"):
        net.SGD((np.array([[1.0, -1.0], [0.5, 2.0]]), np.array([0, 1])), 3, 1, 1e308)
    assert all(np.array_equal(p, q) for p, q in zip(net.weights, w0))


# ---------------------------------------------------------------------------------------------
# files: atomic save

def _small_net(seed=0, **kw):
    np.random.seed(seed)
    return network2.Network([3, 4, 2], **kw)


def _same_net(a, b):
    return (a.sizes == b.sizes and a.cost is b.cost
            and all(np.array_equal(x, y) for x, y in zip(a.weights, b.weights))
            and all(np.array_equal(x, y) for x, y in zip(a.biases, b.biases)))


def test_save_leaves_no_temporary_files(tmp_path):
    path = tmp_path / "net.json"
    net = _small_net()
    for _ in range(3):
        net.save(str(path))
    net.save(path)                               # a pathlib.Path works too
    assert sorted(os.listdir(tmp_path)) == ["net.json"]
    assert _same_net(network2.load(str(path)), net)


@pytest.mark.parametrize("where", ["json.dumps", "os.fsync", "os.replace", "write"])
@pytest.mark.parametrize("exc", [OSError, KeyboardInterrupt])
def test_failed_save_keeps_the_previous_file(tmp_path, monkeypatch, where, exc):
    path = str(tmp_path / "net.json")
    old = _small_net(0)
    old.save(path)
    before = open(path, "rb").read()

    def boom(*a, **k):
        raise exc("simulated crash in " + where)

    if where == "write":                         # the disk fills up half-way through the text
        real_fdopen = os.fdopen

        def fdopen(*a, **k):
            fh = real_fdopen(*a, **k)
            real_write = fh.write
            fh.write = lambda text: (real_write(text[:len(text) // 2]), boom())
            return fh
        monkeypatch.setattr(os, "fdopen", fdopen)
    else:
        mod, name = where.split(".")
        monkeypatch.setattr({"json": json, "os": os}[mod], name, boom)
    with pytest.raises(exc, match="simulated crash"):
        _small_net(1).save(path)
    monkeypatch.undo()
    assert open(path, "rb").read() == before
    assert _same_net(network2.load(path), old)
    assert sorted(os.listdir(tmp_path)) == ["net.json"]


KILL_CHILD = textwrap.dedent("""
    import sys
    import numpy as np
    from fastnn import network2
    path = sys.argv[1]
    nets = []
    for seed in (1, 2):
        np.random.seed(seed)
        nets.append(network2.Network([784, 60, 10]))
    nets[0].save(path)
    print("ready", flush=True)
    i = 0
    while True:
        i += 1
        print("saving", i, flush=True)
        nets[i % 2].save(path)
""")


def test_sigkill_during_save_keeps_a_loadable_file(tmp_path, run_python):
    """Kill a child that saves a 48k-weight network over and over: every time, the file on
    disk is one of the two networks, complete."""
    import subprocess
    from conftest import FASTNN_ROOT, child_env
    path = str(tmp_path / "net.json")
    expect = []
    for seed in (1, 2):
        np.random.seed(seed)
        expect.append(network2.Network([784, 60, 10]))
    rng = random.Random(0)
    kills = []
    for round_ in range(4):
        child = subprocess.Popen([sys.executable, "-c", KILL_CHILD, path], env=child_env(),
                                 cwd=FASTNN_ROOT,
                                 stdout=subprocess.PIPE, text=True)
        try:
            assert child.stdout.readline().strip() == "ready"
            time.sleep(rng.uniform(0.05, 0.4))
        finally:
            child.kill()                         # SIGKILL
            out = child.communicate(timeout=30)[0]
        assert child.returncode == -signal.SIGKILL
        saves = out.split().count("saving")
        loaded = network2.load(path)
        assert any(_same_net(loaded, e) for e in expect)
        kills.append(saves)
    leftovers = [f for f in os.listdir(tmp_path) if f != "net.json"]
    print(f"\nsaves started before each SIGKILL: {kills}; temporary files left by the killed "
          f"saves: {len(leftovers)}")
    assert all(f.startswith(".fastnn-") and f.endswith(".tmp") for f in leftovers)
    assert sum(kills) >= 4


PAUSED_CHILD = textwrap.dedent("""
    import os, sys, time
    import numpy as np
    from fastnn import network2
    path = sys.argv[1]
    np.random.seed(1)
    network2.Network([784, 60, 10]).save(path)

    def fsync(fd):                      # the new file is written: stop before the rename
        print("in fsync", flush=True)
        time.sleep(60)
    os.fsync = fsync
    np.random.seed(2)
    network2.Network([784, 60, 10]).save(path)
""")


def test_sigkill_after_the_write_before_the_rename(tmp_path):
    """The deterministic case: killed with the new file written but not yet renamed."""
    import subprocess
    from conftest import FASTNN_ROOT, child_env
    path = str(tmp_path / "net.json")
    child = subprocess.Popen([sys.executable, "-c", PAUSED_CHILD, path], env=child_env(),
                             cwd=FASTNN_ROOT,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "in fsync"
    finally:
        child.kill()
        child.communicate(timeout=30)
    np.random.seed(1)
    old = network2.Network([784, 60, 10])      # (load draws from np.random too: build first)
    assert _same_net(network2.load(path), old)
    left = [f for f in os.listdir(tmp_path) if f != "net.json"]
    assert len(left) == 1 and left[0].startswith(".fastnn-") and left[0].endswith(".tmp")


# ---------------------------------------------------------------------------------------------
# files: what load rejects, and the book's format

def _saved_text(tmp_path):
    path = tmp_path / "good.json"
    _small_net().save(str(path))
    return path.read_text()


def _write(tmp_path, name, content):
    path = tmp_path / name
    (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
    return str(path)


def _expect_value_error(path):
    with pytest.raises(ValueError) as info:
        network2.load(path)
    assert str(info.value).startswith(path), str(info.value)
    return str(info.value)


def test_load_rejects_truncated_files(tmp_path):
    text = _saved_text(tmp_path)
    offsets = sorted({0, 1, 2, 10, 37, len(text) // 3, len(text) // 2, len(text) - 2,
                      len(text) - 1})
    for cut in offsets:
        _expect_value_error(_write(tmp_path, f"cut{cut}.json", text[:cut]))
    print(f"\ntruncated at {len(offsets)} offsets of {len(text)} bytes: all rejected")


def test_load_rejects_corrupted_files(tmp_path):
    text = _saved_text(tmp_path)
    rng = random.Random(0)
    raw = bytearray(text.encode())
    for i in rng.sample(range(len(raw)), 5):
        raw[i] = rng.randrange(256)
    cases = {
        "garbage": bytes(rng.randrange(256) for _ in range(300)),
        "not-utf8": b"\xff\xfe\x00{" + text.encode(),
        "flipped-bytes": bytes(raw),
        "zeros": bytes(len(text)),
        "empty": "",
        "python-repr": "{'sizes': [3, 4, 2]}",
        "pickle-like": b"\x80\x04\x95",
        "deeply-nested": "[" * 100000 + "]" * 100000,
        "null": "null",
        "list": "[1, 2]",
        "number": "42",
        "string": '"QuadraticCost"',
    }
    for name, content in cases.items():
        _expect_value_error(_write(tmp_path, name + ".json", content))


def _mutations():
    """(name, change to the parsed JSON of a saved [3, 4, 2] network)."""
    def setk(key, value):
        return lambda d: d.__setitem__(key, value)

    def drop(key):
        return lambda d: d.pop(key)

    def layer(key, l, value):
        return lambda d: d[key].__setitem__(l, value)

    def entry(key, value):
        return lambda d: d[key][0][0].__setitem__(0, value)

    return [
        *[(f"missing-{k}", drop(k)) for k in ("sizes", "weights", "biases", "cost")],
        ("sizes-string", setk("sizes", "3,4,2")),
        ("sizes-one-layer", setk("sizes", [3])),
        ("sizes-zero", setk("sizes", [3, 0, 2])),
        ("sizes-float", setk("sizes", [3, 4.5, 2])),
        ("sizes-null", setk("sizes", None)),
        ("sizes-disagree", setk("sizes", [3, 5, 2])),
        ("sizes-extra-layer", setk("sizes", [3, 4, 2, 2])),
        ("weights-dict", setk("weights", {"0": 1})),
        ("weights-one-layer", lambda d: d["weights"].pop()),
        ("weights-transposed", lambda d: d["weights"].__setitem__(
            0, np.array(d["weights"][0]).T.tolist())),
        ("weights-ragged", lambda d: d["weights"][0][0].pop()),
        ("weights-string", entry("weights", "0.5")),
        ("weights-null", entry("weights", None)),
        ("weights-list-entry", entry("weights", [0.5])),
        ("weights-nan", entry("weights", float("nan"))),
        ("weights-inf", entry("weights", float("inf"))),
        ("weights-huge-int", entry("weights", 10 ** 400)),
        ("biases-wrong-size", layer("biases", 1, [[0.0]] * 3)),
        ("biases-flat-wrong", layer("biases", 0, [0.0] * 5)),
        ("biases-nan", entry("biases", float("-inf"))),
        ("cost-unknown", setk("cost", "FooCost")),
        ("cost-null", setk("cost", None)),
        ("cost-int", setk("cost", 3)),
        ("cost-list", setk("cost", ["QuadraticCost"])),
        ("cost-activation-name", setk("cost", "sigmoid")),
        ("activation-unknown", setk("activation", "bogus")),
        ("activation-softmax", setk("activation", "softmax")),
        ("activation-int", setk("activation", 3)),
        ("output-mismatch", setk("output_activation", "relu")),
    ]


@pytest.mark.parametrize("name, change", _mutations(), ids=[m[0] for m in _mutations()])
def test_load_rejects_inconsistent_files(tmp_path, name, change):
    data = json.loads(_saved_text(tmp_path))
    change(data)
    msg = _expect_value_error(_write(tmp_path, name + ".json", json.dumps(data)))
    assert "Traceback" not in msg


def test_nan_literals_are_rejected(tmp_path):
    text = _saved_text(tmp_path)
    data = json.loads(text)
    first = repr(data["weights"][0][0][0])
    for literal in ("NaN", "Infinity", "-Infinity", "1e999"):
        msg = _expect_value_error(_write(tmp_path, literal + ".json",
                                         text.replace(first, literal, 1)))
        assert "NaN or Inf" in msg


BOOK_FILE = """{"sizes": [2, 2, 1],
 "weights": [[[1.0, 0.0], [0.0, 0.0]], [[2.0, -2.0]]],
 "biases": [[[0.0], [0.0]], [[0.0]]],
 "cost": "CrossEntropyCost"}"""


def test_book_format_fixture(tmp_path):
    """A file in the exact format of the book's Network.save, written by hand.

    Hidden layer: a1 = sigmoid(x1), a2 = sigmoid(0) = 1/2; output sigmoid(2 a1 - 2 a2).
    x = (0, 0): a = (1/2, 1/2), output sigmoid(0) = 1/2.
    x = (ln 3, 0): a1 = 3/4, output sigmoid(1/2) = 1/(1 + e^(-1/2)) = 0.62245933120185...
    """
    path = _write(tmp_path, "book.json", BOOK_FILE)
    net = network2.load(path)
    assert net.sizes == [2, 2, 1] and net.cost is network2.CrossEntropyCost
    assert net.activation == "sigmoid" and net.output_activation == "sigmoid"
    out = net.feedforward(np.array([[0.0, math.log(3)], [0.0, 0.0]]))
    assert out.shape == (1, 2)
    assert out[0, 0] == pytest.approx(0.5, abs=1e-15)
    assert out[0, 1] == pytest.approx(1 / (1 + math.exp(-0.5)), abs=1e-15)
    # cross-entropy of output 1/2 against y = 1 is ln 2
    data = [(np.zeros((2, 1)), np.ones((1, 1)))]
    assert net.total_cost(data, 0.0) == pytest.approx(math.log(2), abs=1e-14)
    # and our save writes the book's keys, with values that load back exactly
    net.save(str(tmp_path / "again.json"))
    saved = json.loads((tmp_path / "again.json").read_text())
    assert sorted(saved) == ["biases", "cost", "sizes", "weights"]
    assert saved == json.loads(BOOK_FILE)


# ---------------------------------------------------------------------------------------------
# Ctrl-C

INTERRUPT_CHILD = textwrap.dedent("""
    import json, os, random, signal, threading, time
    import numpy as np
    from fastnn import network, network2

    N, EPOCHS = 4000, 30
    rng = np.random.RandomState(0)
    X = rng.rand(N, 400)
    y = rng.randint(0, 10, N)


    def fresh(mod):
        np.random.seed(0)
        random.seed(0)
        return mod.Network([400, 400, 10], n_threads=1)


    def same(a, b):
        return all(np.array_equal(p, q) for p, q in zip(a, b))


    # SGD shuffles the orders of all its epochs (in Python) before the engine starts
    t0 = time.perf_counter()
    perm = list(range(N))
    for _ in range(EPOCHS):
        random.shuffle(perm)
    shuffle_s = time.perf_counter() - t0

    out = {}
    for name, mod, kw in (("network", network, {}), ("network2", network2, {"verbose": False})):
        ends = []                                # weights at the end of epochs 0 and 1
        for epochs in (1, 2):
            ref = fresh(mod)
            t0 = time.perf_counter()
            ref.SGD((X, y), epochs, 10, 0.1, **kw)
            epoch_s = (time.perf_counter() - t0) / epochs
            ends.append(ref.weights + ref.biases)
        net = fresh(mod)
        w0 = [w.copy() for w in net.weights + net.biases]
        sent = {}

        def fire():
            sent["t"] = time.perf_counter()
            os.kill(os.getpid(), signal.SIGINT)

        timer = threading.Timer(shuffle_s + 1.5 * epoch_s, fire)   # in the middle of epoch 1
        timer.start()
        t0 = time.perf_counter()
        try:
            net.SGD((X, y), EPOCHS, 10, 0.1, **kw)
            res = {"interrupted": False}
        except KeyboardInterrupt:
            stop = time.perf_counter()
            params = net.weights + net.biases
            res = {"interrupted": True, "latency_s": stop - sent["t"],
                   "ran_s": stop - t0, "epoch_s": epoch_s, "shuffle_s": shuffle_s,
                   "finite": all(bool(np.isfinite(p).all()) for p in params),
                   "changed": not same(params, w0),
                   "at_epoch_end": [same(params, e) for e in ends]}
            # the network is consistent and can be trained again
            net.SGD((X[:100], y[:100]), 1, 10, 0.1, **kw)
            res["trains_again"] = all(bool(np.isfinite(p).all())
                                      for p in net.weights + net.biases)
        timer.cancel()
        out[name] = res
    print(json.dumps(out))
""")


def test_ctrl_c_stops_within_an_epoch(run_python):
    """SIGINT to the process in the middle of epoch 1 of a 30-epoch SGD."""
    proc = run_python(INTERRUPT_CHILD, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    for name, res in out.items():
        print(f"\n{name}: {res}")
        assert res["interrupted"], name
        assert res["latency_s"] < max(res["epoch_s"], 0.25) + 0.5, res
        assert res["finite"] and res["changed"] and res["trains_again"], res
        assert res["ran_s"] < res["shuffle_s"] + 3 * res["epoch_s"] + 1.0, res


# ---------------------------------------------------------------------------------------------
# memory

def _rss():
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _sanitized():
    try:
        from fastnn._build_info import BUILD_INFO
    except ImportError:
        return False
    return bool(BUILD_INFO.get("sanitize"))


def _small_calls(i, net, X, y, pairs):
    if i % 2:
        net.SGD((X, y), 1, 5, 0.1, lmbda=0.1, momentum=0.5, dropout=0.1,
                evaluation_data=(X, y), monitor_evaluation_cost=True,
                monitor_training_accuracy=True, verbose=False)
    else:
        net.SGD(pairs, 1, 7, 0.1, verbose=False)
    net.feedforward(X.T)
    net.backprop(*pairs[0])


def _bad_calls(i, net, X, y, pairs):
    for call in (lambda: net.SGD((X, y + 10), 1, 5, 0.1),
                 lambda: net.SGD(pairs, 1, 5, float("nan")),
                 lambda: net.feedforward(np.ones((2, 1)))):
        try:
            call()
        except (ValueError, TypeError):
            pass
    try:
        _diverging_run(3, eta=1e300)
    except DivergenceError:
        pass


@pytest.mark.parametrize("calls", [_small_calls, _bad_calls], ids=["good", "failing"])
def test_repeated_calls_do_not_grow_memory(calls):
    rng = np.random.RandomState(0)
    X, y = rng.rand(30, 4), rng.randint(0, 3, 30)
    pairs = [(x.reshape(-1, 1), np.eye(3)[k].reshape(-1, 1)) for x, k in zip(X, y)]
    np.random.seed(0)
    net = network2.Network([4, 8, 3], n_threads=1)
    for i in range(100):                                     # warm-up
        calls(i, net, X, y, pairs)
    gc.collect()
    rss0 = _rss()
    tracemalloc.start()
    heap0 = tracemalloc.get_traced_memory()[0]
    peak_rss = 0
    for i in range(1000):
        calls(i, net, X, y, pairs)
        if i % 100 == 99:
            gc.collect()
            peak_rss = max(peak_rss, _rss() - rss0)
    gc.collect()
    heap = tracemalloc.get_traced_memory()[0] - heap0
    tracemalloc.stop()
    rss = _rss() - rss0
    print(f"\n{calls.__name__}: 1,000 rounds: RSS growth {rss / 2**20:.2f} MiB (largest seen "
          f"{peak_rss / 2**20:.2f} MiB), Python heap growth {heap / 1024:.1f} KiB")
    assert heap < 1 * 2**20
    if _sanitized():
        pytest.skip("AddressSanitizer's quarantine holds freed memory: RSS says nothing here "
                    f"(the Python heap grew {heap / 1024:.1f} KiB)")
    assert peak_rss < 20 * 2**20
    assert all(np.isfinite(w).all() for w in net.weights)


DIVERGE_THEN_INTERRUPT = textwrap.dedent("""
    import json, os, random, signal, threading
    import numpy as np
    from fastnn import _core, network2
    rng = np.random.RandomState(0)
    X, Y = rng.rand(600000, 3), rng.rand(600000, 1)
    np.random.seed(1)
    random.seed(0)
    net = network2.Network([3, 2000, 1], cost=network2.QuadraticCost, activation="relu",
                           output_activation="identity", n_threads=1)
    real = _core.train

    def train(*a, **k):             # SIGINT 0.05 s into the engine: long after it blew up
        threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGINT)).start()
        return real(*a, **k)
    _core.train = train
    try:
        net.SGD((X, Y), 1, 1, 1e6, verbose=False)
        res = "finished"
    except KeyboardInterrupt:
        res = "interrupted"
    except FloatingPointError:
        res = "diverged"
    finite = all(bool(np.isfinite(p).all()) for p in net.weights + net.biases)
    print(json.dumps({"result": res, "finite": finite}))
""")


def test_ctrl_c_after_divergence_inside_an_epoch_keeps_finite_weights(run_python):
    proc = run_python(DIVERGE_THEN_INTERRUPT, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"\n{out}")
    assert out["result"] == "interrupted"
    assert out["finite"]

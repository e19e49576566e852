"""Faults real users hit (issue 14): fork, files fastnn did not write, untrusted data files,
resource bombs, long runs, thread counts, silent NaN, CLI runs that lose work.

Every risky case runs in a child process with a timeout (and an address-space limit where
memory is the point): a hang, a signal or a limit hit is a failure of the test, never of the
test run.  The children print what they measured (peak RSS, seconds) on a line starting with
``MEASURED``; ``pytest -s -k faults`` shows them.
"""
import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from fastnn import _core, _orders, network, network2

from conftest import FASTNN_ROOT, child_env

# ---------------------------------------------------------------------------------------------
# the child process


def child(code, timeout=60, as_limit_mb=None, env=None, stdin=None):
    """Run ``code`` in a fresh Python; return the CompletedProcess.  ``as_limit_mb`` caps the
    child's address space (RLIMIT_AS) before the code runs."""
    pre = "import resource\n"
    if as_limit_mb is not None:
        lim = int(as_limit_mb) << 20
        pre += f"resource.setrlimit(resource.RLIMIT_AS, ({lim}, {lim}))\n"
    code = pre + textwrap.dedent(code)
    try:
        r = subprocess.run([sys.executable, "-c", code], env=child_env(**(env or {})),
                           cwd=FASTNN_ROOT, capture_output=True, text=True, timeout=timeout,
                           input=stdin)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"the child hung for {timeout} s; its output: {e.stdout!r} {e.stderr!r}")
    assert r.returncode >= 0, (f"the child was killed by signal {-r.returncode}\n"
                               f"stdout: {r.stdout}\nstderr: {r.stderr}")
    for line in r.stdout.splitlines():
        if line.startswith("MEASURED"):
            print(line)
    return r


def ok(r):
    assert r.returncode == 0, f"exit code {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    return r


# VmHWM: the peak RSS of this process image (ru_maxrss may carry the parent's across exec)
def _openmp():
    from fastnn import _engine
    return _engine.openmp_enabled()


needs_openmp = pytest.mark.skipif(not _openmp(), reason="a build without OpenMP runs 1 thread")

PEAK_RSS = ("peak_mb = lambda: [int(l.split()[1]) for l in open('/proc/self/status') "
            "if l.startswith('VmHWM')][0] / 1024.0")


# ---------------------------------------------------------------------------------------------
# 5. memory that does not grow with epochs

def _toy(n=53, n_in=6, n_out=3, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.rand(n, n_in)
    y = rng.randint(0, n_out, n)
    return [(X[i].reshape(-1, 1), np.eye(n_out)[y[i]].reshape(-1, 1)) for i in range(n)]


def _run_network2(chunk, monkeypatch, **kw):
    monkeypatch.setattr(_orders, "ORDER_CHUNK", chunk)
    random.seed(7)
    np.random.seed(7)
    data = _toy()
    ev = [(x, int(np.argmax(y))) for x, y in _toy(20, seed=1)]
    net = network2.Network([6, 5, 3], n_threads=1)
    out = net.SGD(data, 11, 4, 0.5, lmbda=0.1, evaluation_data=ev,
                  monitor_evaluation_accuracy=True, verbose=False, **kw)
    return net, out, data, random.getstate()


@pytest.mark.parametrize("kw", [{"momentum": 0.5},
                                {"eta_schedule": "halve-on-plateau", "plateau_n": 1},
                                {"early_stopping_n": 2}],
                         ids=["momentum", "eta_schedule", "early_stopping"])
def test_orders_in_chunks_equal_orders_up_front(monkeypatch, kw):
    """Chunks of 3 epochs (and 1) give the weights, the monitors, the random state and the
    caller's list order of one chunk (what drawing every order up front gave)."""
    whole = _run_network2(1 << 22, monkeypatch, **kw)
    for chunk in (3 * 53, 53):
        part = _run_network2(chunk, monkeypatch, **kw)
        for a, b in zip(whole[0].weights + whole[0].biases, part[0].weights + part[0].biases):
            np.testing.assert_array_equal(a, b)
        assert whole[1] == part[1]
        if len(whole[1][1]) == 11:     # no stop (a stop skips the rest of a chunk's draws)
            assert whole[3] == part[3]
            assert [x.tobytes() for x, _ in whole[2]] == [x.tobytes() for x, _ in part[2]]


def test_orders_in_chunks_replay_random_shuffle():
    """Every chunk's orders are the book's: shuffling a list in place, epoch after epoch."""
    rng = random.Random(3)
    src = _core.shuffled_orders(10, 7, rng, chunk=20)     # 2 epochs per chunk
    got = []
    while (c := src.next_chunk()) is not None:
        got += [list(o) for o in c]
    ref, lst, want = random.Random(3), list(range(10)), []
    for _ in range(7):
        ref.shuffle(lst)
        want.append(list(lst))
    assert got == want
    assert rng.getstate() == ref.getstate()
    assert list(src.last) == want[-1]


def test_keras_fit_orders_in_chunks(monkeypatch):
    from fastnn import Sequential, layers

    def fit(chunk):
        monkeypatch.setattr(_orders, "ORDER_CHUNK", chunk)
        np.random.seed(5)
        rng = np.random.RandomState(0)
        X, y = rng.rand(40, 5).astype(np.float32), rng.randint(0, 3, 40)
        m = Sequential([layers.Dense(4, activation="relu"),
                        layers.Dense(3, activation="softmax")], n_threads=1)
        m.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
        h = m.fit(X, y, batch_size=8, epochs=7, verbose=0, validation_data=(X, y))
        return m.get_weights(), h.history, m.optimizer.iterations, np.random.rand()

    a, b = fit(1 << 22), fit(2 * 40)
    for x, z in zip(a[0], b[0]):
        np.testing.assert_array_equal(x, z)
    assert a[1] == b[1] and a[2] == b[2] == 35 and a[3] == b[3]


def test_billion_epochs_start_at_once_and_stop_on_ctrl_c():
    """SGD(epochs=10**9) on 1,000 examples under a 1.5 GiB address-space limit: it starts
    (the first epoch lines appear), and SIGINT ends it with KeyboardInterrupt well within a
    second, the peak RSS reported."""
    code = f"""
    import random, sys, time, numpy as np
    from fastnn import network
    {PEAK_RSS}
    rng = np.random.RandomState(0)
    X, y = rng.rand(1000, 20), rng.randint(0, 10, 1000)
    net = network.Network([20, 10, 10], n_threads=1)
    seen = []
    import builtins
    def fake_print(*a, **k):
        if not seen:
            sys.stdout.write("STARTED\\n"); sys.stdout.flush()
        seen.append(1)
    network.print = fake_print
    try:
        net.SGD((X, y), 10**9, 10, 0.1)
    except KeyboardInterrupt:
        t = time.perf_counter()
        print("INTERRUPTED", len(seen), "epochs")
        print(f"MEASURED billion-epoch SGD: peak RSS {{peak_mb():.0f}} MB after {{len(seen)}} "
              f"epochs")
        sys.stdout.flush()
        sys.exit(0)
    sys.exit(3)
    """
    pre = "import resource\nresource.setrlimit(resource.RLIMIT_AS, (1536 << 20, 1536 << 20))\n"
    p = subprocess.Popen([sys.executable, "-c", pre + textwrap.dedent(code)],
                         env=child_env(), cwd=FASTNN_ROOT, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        t0 = time.perf_counter()
        line = p.stdout.readline()
        started = time.perf_counter() - t0
        assert line.strip() == "STARTED", (line, p.stderr.read())
        time.sleep(0.5)
        t1 = time.perf_counter()
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=30)
        stop = time.perf_counter() - t1
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, (p.returncode, out, err)
    assert "INTERRUPTED" in out
    print(f"MEASURED billion-epoch SGD: first epoch {started:.2f} s after start (with "
          f"imports), process exit {stop:.2f} s after SIGINT")
    for line in out.splitlines():
        if line.startswith("MEASURED"):
            print(line)


# ---------------------------------------------------------------------------------------------
# 1. fork after a call that ran threads

FORK_CODE = """
import multiprocessing as mp, os, sys, numpy as np
from fastnn import network, _core
rng = np.random.RandomState(0)
X, y = rng.rand(2000, 100), rng.randint(0, 10, 2000)
W = [rng.randn(64, 100), rng.randn(10, 64)]
b = [rng.randn(64), rng.randn(10)]
Y = np.eye(10)[y]
res = _core.train(W, b, X, Y, _core.TrainConfig(acts=["sigmoid", "sigmoid"], cost="quadratic",
                                                epochs=1, batch=10, eta=0.1, n_threads=2))
assert res["path"] != "serial", res           # the parent ran a team of 2

def work(n_threads):
    net = network.Network([100, 64, 10], n_threads=n_threads)
    net.SGD((X, y), 1, 10, 0.1)
    out = net.feedforward(X[:300].T)
    return net.evaluate((X, y)), out.shape

if __name__ == "__main__":
    with mp.get_context("fork").Pool(2) as pool:
        got = pool.map(work, [None, 2])
    assert all(s == (10, 300) for _, s in got), got
    pid = os.fork()
    if pid == 0:
        try:
            work(2)
            os._exit(0)
        except BaseException:
            os._exit(5)
    _, status = os.waitpid(pid, 0)
    print("POOL", got, "FORK", os.waitstatus_to_exitcode(status))
"""


@needs_openmp
def test_fork_pool_after_two_thread_call(tmp_path):
    """A fork Pool of 2 (and os.fork) after a 2-thread engine call: the children train,
    predict and evaluate (with one thread) instead of waiting for ever in libgomp."""
    script = tmp_path / "forkpool.py"
    script.write_text(FORK_CODE)
    r = ok(child(f"exec(open({str(script)!r}).read())", timeout=120))
    assert "FORK 0" in r.stdout


def test_fork_child_reports_one_thread():
    r = ok(child("""
    import os, fastnn
    from fastnn import _config
    before = fastnn.get_num_threads()
    pid = os.fork()
    if pid == 0:
        os._exit(0 if fastnn.get_num_threads() == 1 and _config.resolve_threads(2) == 1
                 else 7)
    _, st = os.waitpid(pid, 0)
    print("CHILD", os.waitstatus_to_exitcode(st), "PARENT", fastnn.get_num_threads() == before)
    """, env={"OMP_NUM_THREADS": "2"}))
    assert "CHILD 0 PARENT True" in r.stdout


# ---------------------------------------------------------------------------------------------
# 6. thread counts: a cap, and a thread that cannot start is an exception

def test_thread_count_cap():
    from fastnn import _config, set_num_threads
    cap = _config.max_threads()
    for bad in (cap + 1, 2000, 10 ** 9):
        with pytest.raises(ValueError, match=r"n_threads: expected a positive int up to"):
            network.Network([4, 3, 2], n_threads=bad)
        with pytest.raises(ValueError, match=r"n: expected a positive int up to"):
            set_num_threads(bad)
    network.Network([4, 3, 2], n_threads=cap)    # the cap itself is accepted


@needs_openmp
def test_thread_start_failure_is_an_exception():
    """Stacks of 256 MiB under an address-space limit of what is mapped + 200 MiB: a team of
    the cap cannot start.  The call raises RuntimeError and the process goes on (with 1
    thread it trains under the same limit)."""
    code = """
    import resource, sys, numpy as np
    from fastnn import network, _config
    rng = np.random.RandomState(0)
    X, y = rng.rand(500, 50), rng.randint(0, 10, 500)
    n = min(8, _config.max_threads())
    net = network.Network([50, 30, 10], n_threads=n)
    vm = [int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmSize")][0]
    lim = (vm << 10) + (200 << 20)
    resource.setrlimit(resource.RLIMIT_AS, (lim, lim))
    if "--unchecked" in sys.argv:
        _config.check_team = lambda n: None
    try:
        net.SGD((X, y), 1, 50, 0.1)
        print("TRAINED")
    except RuntimeError as e:
        print("RAISED", e)
    net.n_threads = 1
    net.SGD((X, y), 1, 50, 0.1)
    print("ALIVE")
    """
    r = ok(child(code, env={"OMP_STACKSIZE": "256M"}))
    assert "RAISED n_threads: could not start" in r.stdout and "ALIVE" in r.stdout, r.stdout
    # without the check, libgomp ends the process: what the check is for
    raw = subprocess.run([sys.executable, "-c", textwrap.dedent(code), "--unchecked"],
                         env=child_env(OMP_STACKSIZE="256M"), cwd=FASTNN_ROOT,
                         capture_output=True, text=True, timeout=60)
    print(f"MEASURED without the check: exit code {raw.returncode}, stderr "
          f"{raw.stderr.strip()[-80:]!r}")
    assert "ALIVE" not in raw.stdout


# ---------------------------------------------------------------------------------------------
# 7. no oversubscription in worker pools

WORKER_CODE = """
import numpy as np
from fastnn import _core, get_num_threads

def job(_):
    rng = np.random.RandomState(0)
    X, Y = rng.rand(2000, 100), np.eye(10)[rng.randint(0, 10, 2000)]
    W, b = [rng.randn(64, 100), rng.randn(10, 64)], [rng.randn(64), rng.randn(10)]
    res = _core.train(W, b, X, Y, _core.TrainConfig(acts=["sigmoid", "sigmoid"],
                                                    cost="quadratic", epochs=1, batch=10,
                                                    eta=0.1))
    return get_num_threads(), res["path"]
"""


@needs_openmp
def test_worker_processes_default_to_one_thread(tmp_path):
    """With OMP_NUM_THREADS=2, the main process trains on a team of 2; loky, multiprocessing
    (spawn) and concurrent.futures workers default to 1 engine thread each."""
    (tmp_path / "wjob.py").write_text(WORKER_CODE)
    r = ok(child(f"""
    import sys; sys.path.insert(0, {str(tmp_path)!r})
    import concurrent.futures as cf, multiprocessing as mp
    from joblib import Parallel, delayed
    from wjob import job
    if __name__ == "__main__":
        print("MAIN", job(0))
        print("LOKY", Parallel(n_jobs=2)(delayed(job)(i) for i in range(2)))
        with mp.get_context("spawn").Pool(1) as p:
            print("MP", p.map(job, range(1)))
        with cf.ProcessPoolExecutor(1, mp_context=mp.get_context("fork")) as ex:
            print("CF", list(ex.map(job, range(1))))
    """, timeout=180, env={"OMP_NUM_THREADS": "2"}))
    lines = dict(l.split(" ", 1) for l in r.stdout.splitlines() if " " in l)
    assert lines["MAIN"] in ("(2, 'ksplit')", "(2, 'rows')"), r.stdout
    assert lines["LOKY"] == "[(1, 'serial'), (1, 'serial')]", r.stdout
    for k in ("MP", "CF"):
        assert lines[k] == "[(1, 'serial')]", r.stdout


def test_concurrent_calls_share_the_default(monkeypatch):
    from fastnn import _config
    monkeypatch.setattr(_config, "_num_threads", None)
    monkeypatch.setattr(_config, "_default_threads", lambda: 4)
    monkeypatch.setattr(_config, "max_threads", lambda: 16)
    monkeypatch.setattr(_config, "in_worker_process", lambda: False)
    monkeypatch.setattr(_config, "check_team", lambda n: None)
    with _config.engine_team(None) as a:
        with _config.engine_team(None) as b:
            with _config.engine_team(None) as c:
                with _config.engine_team(3) as explicit:
                    pass
    assert (a, b, c, explicit) == (4, 2, 1, 3)
    with _config.engine_team(None) as again:
        assert again == 4


# ---------------------------------------------------------------------------------------------
# 3. data files run no code

EVIL = """
import os, pickle, gzip
class Evil:
    def __reduce__(self):
        return (os.system, ("touch " + {marker!r},))
with gzip.open({path!r}, "wb") as f:
    pickle.dump(((Evil(), 1), (2, 3), (4, 5)), f, protocol=2)
"""


def _plant(path, marker):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    ok(child(EVIL.format(marker=str(marker), path=str(path))))


def test_planted_pickle_runs_no_code(tmp_path):
    """A pickle that would run a command, planted in $FASTNN_DATA and in ~/.cache/fastnn: the
    loaders and `fastnn train --dataset mnist` that never named it raise a ValueError naming
    it (or exit 2 with that line), and the command never runs."""
    marker = tmp_path / "PWNED"
    home, data = tmp_path / "home", tmp_path / "data"
    _plant(data / "mnist.pkl.gz", marker)
    _plant(home / ".cache" / "fastnn" / "mnist.pkl.gz", marker)
    code = """
    from fastnn import datasets, mnist_loader
    for f in (lambda: datasets.load_mnist(download=False), lambda: mnist_loader.load_data(),
              lambda: datasets.load("mnist", allow_sample=True)):
        try:
            f()
            print("LOADED")
        except ValueError as e:
            print("REFUSED", e)
    """
    for env in ({"FASTNN_DATA": str(data)}, {}):
        r = ok(child(code, env={"HOME": str(home), "FASTNN_NO_DOWNLOAD": "1", **env}))
        assert r.stdout.count("REFUSED") == 3 and "mnist.pkl.gz" in r.stdout, r.stdout
        assert "os.system" in r.stdout or "posix.system" in r.stdout
    r = child("import sys; from fastnn.__main__ import main; sys.exit(main(["
              "'train', '--dataset', 'mnist', '--epochs', '0']))",
              env={"HOME": str(home), "FASTNN_NO_DOWNLOAD": "1", "FASTNN_DATA": str(data)})
    assert r.returncode == 2 and "mnist.pkl.gz" in r.stderr, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr
    assert not marker.exists()


def test_safe_formats_win_over_a_pickle(tmp_path):
    from test_mnist_loader import make_arrays, nielsen_parts, write_idx_dir, assert_parts_equal
    from fastnn import mnist_loader
    marker = tmp_path / "PWNED"
    arrays = make_arrays(seed=1)
    folder = write_idx_dir(tmp_path / "d", arrays)
    _plant(os.path.join(folder, "mnist.pkl.gz"), marker)
    assert_parts_equal(mnist_loader.load_data(folder), nielsen_parts(arrays))
    assert not marker.exists()


def test_data_unpickler_reads_data_only(tmp_path):
    import gzip
    import pickle
    from fastnn import _safeio, datasets
    parts = tuple((np.arange(6, dtype=np.float32).reshape(2, 3) / 6, np.array([1, 2]))
                  for _ in range(3))
    for proto in (2, 4, 5):
        with open(tmp_path / "p", "wb") as f:
            pickle.dump(parts, f, protocol=proto)
        with open(tmp_path / "p", "rb") as f:
            got = _safeio.load_pickle(f, "p", 1 << 20)
        for (x, y), (gx, gy) in zip(parts, got):
            np.testing.assert_array_equal(x, gx)
            np.testing.assert_array_equal(y, gy)
    for bad in ([np.array([object()], dtype=object)], {"a": set()}, np.float64,
                (np.array([1.0]), slice(1))):
        with gzip.open(tmp_path / "bad.pkl.gz", "wb") as f:
            pickle.dump(bad, f, protocol=2)
        with pytest.raises(ValueError, match="bad.pkl.gz"):
            datasets.read_nielsen_pickle(str(tmp_path / "bad.pkl.gz"))


@pytest.mark.skipif(not os.path.exists("/work/shared/data/mnist.pkl.gz"),
                    reason="Nielsen's mnist.pkl.gz is not on this machine")
def test_real_nielsen_pickle_reads():
    from fastnn import datasets
    (x, y), (vx, vy), (tx, ty) = datasets.read_nielsen_pickle("/work/shared/data/mnist.pkl.gz")
    assert x.shape == (50000, 784) and x.dtype == np.float32 and vx.shape == (10000, 784)
    assert list(y[:5]) == [5, 0, 4, 1, 9] and len(ty) == 10000


# ---------------------------------------------------------------------------------------------
# 4. bounded memory on hostile or broken files

BOMB_MB = 256


def _gz_bomb_idx(path, n):
    """train-images: a header declaring n images of 28 x 28, then 256 MB of zeros (gzip
    members concatenated: about 256 KB on disk)."""
    import gzip
    import struct
    head = gzip.compress(struct.pack(">HBBIII", 0, 8, 3, n, 28, 28))
    member = gzip.compress(bytes(1 << 20), compresslevel=9)
    with open(path, "wb") as f:
        f.write(head)
        for _ in range(BOMB_MB):
            f.write(member)


def _limited_reader(code_body):
    return textwrap.dedent(f"""
    import resource
    {PEAK_RSS}
    import fastnn.datasets, fastnn.keras, numpy as np
    vm = [int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmSize")][0]
    lim = (vm << 10) + (100 << 20)          # what is mapped now + 100 MB
    resource.setrlimit(resource.RLIMIT_AS, (lim, lim))
    rss0 = peak_mb()
    """) + textwrap.dedent(code_body)


def test_idx_gz_longer_than_its_header(tmp_path):
    from test_datasets import IDX_NAMES, idx_bytes, make_arrays
    arrays = make_arrays()
    folder = tmp_path / "idx"
    folder.mkdir()
    for name, a in zip(IDX_NAMES, arrays):
        (folder / name).write_bytes(idx_bytes(a))
    _gz_bomb_idx(folder / (IDX_NAMES[0] + ".gz"), len(arrays[0]))
    (folder / IDX_NAMES[0]).unlink()
    r = ok(child(_limited_reader(f"""
    try:
        fastnn.datasets.read_idx_dir({str(folder)!r})
        print("READ")
    except ValueError as e:
        print("REFUSED", e)
    print(f"MEASURED IDX .gz bomb ({BOMB_MB} MB of payload behind a 12-image header): "
          f"peak RSS {{peak_mb():.0f}} MB (after imports {{rss0:.0f}} MB)")
    """)))
    assert "REFUSED" in r.stdout and "train-images-idx3-ubyte.gz" in r.stdout, r.stdout
    assert "more data than its dimensions" in r.stdout


def _model_bomb(tmp_path):
    """A saved [4, 3, 2] model whose kernel_0 member is replaced by (a) a header declaring
    (256 MB / 8) float64 of zeros, (b) the right header followed by 256 MB of zeros."""
    import zipfile
    from fastnn import Sequential, layers
    m = Sequential([layers.Input((4,)), layers.Dense(3), layers.Dense(2)], n_threads=1)
    m.predict(np.zeros((1, 4)))                 # built: the archive holds the weights
    good = tmp_path / "good.npz"
    m.save(good)
    out = []
    for name, shape in (("big-header", (BOMB_MB << 17,)), ("long-payload", (4, 3))):
        path = tmp_path / f"{name}.npz"
        with zipfile.ZipFile(good) as src, \
                zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as dst:
            for info in src.infolist():
                if info.filename != "kernel_0.npy":
                    dst.writestr(info.filename, src.read(info))
                    continue
                with dst.open("kernel_0.npy", "w", force_zip64=True) as f:
                    np.lib.format.write_array_header_1_0(
                        f, {"descr": "<f8", "fortran_order": False, "shape": shape})
                    for _ in range(BOMB_MB):
                        f.write(bytes(1 << 20))
        out.append(path)
    return good, out


def test_model_archive_bomb(tmp_path):
    good, bombs = _model_bomb(tmp_path)
    r = ok(child(_limited_reader(f"""
    fastnn.keras.load_model({str(good)!r})
    for p in {[str(b) for b in bombs]!r}:
        try:
            fastnn.keras.load_model(p)
            print("LOADED")
        except ValueError as e:
            print("REFUSED", e)
    print(f"MEASURED model archive bombs (1.5 MB-ish, {BOMB_MB} MB zero member): "
          f"peak RSS {{peak_mb():.0f}} MB (after imports {{rss0:.0f}} MB)")
    """)))
    lines = [l for l in r.stdout.splitlines() if l.startswith("REFUSED")]
    assert len(lines) == 2, r.stdout
    assert "big-header.npz" in lines[0] and "kernel_0" in lines[0] and "shape" in lines[0]
    assert "long-payload.npz" in lines[1] and "kernel_0" in lines[1] and "more" in lines[1]


def test_dataset_npz_checked_before_payload(tmp_path):
    from fastnn import datasets
    np.savez(tmp_path / "a.npz", x_train=np.zeros((5, 28, 28), np.uint8),
             y_train=np.zeros(4, np.uint8), x_test=np.zeros((2, 28, 28), np.uint8),
             y_test=np.zeros(2, np.uint8))
    with pytest.raises(ValueError, match=r"a\.npz: training labels have shape \(4,\)"):
        datasets.read_npz(tmp_path / "a.npz")
    np.savez(tmp_path / "o.npz", x_train=np.zeros((1, 28, 28), object),
             y_train=np.zeros(1, np.uint8), x_test=np.zeros((1, 28, 28), np.uint8),
             y_test=np.zeros(1, np.uint8))
    with pytest.raises(ValueError, match=r"o\.npz: "):
        datasets.read_npz(tmp_path / "o.npz")


# ---------------------------------------------------------------------------------------------
# 2. never damage a file fastnn did not write

def _foreign_files(tmp_path):
    """A saved model (binary, no final newline), a text note, a JSON document."""
    from fastnn import Sequential, layers
    m = Sequential([layers.Input((784,)), layers.Dense(160), layers.Dense(10)], n_threads=1)
    m.predict(np.zeros((1, 784)))
    files = {"model.npz": None, "notes.csv": b"my notes, no newline at the end",
             "data.jsonl": b'{"a": 1}\n{"b": 2'}
    m.save(tmp_path / "model.npz")
    for name, content in files.items():
        if content is not None:
            (tmp_path / name).write_bytes(content)
    return {name: (tmp_path / name).read_bytes() for name in files}


def test_sweep_out_never_damages_a_foreign_file(tmp_path):
    """--out, the config's out: and run_sweep(out=) at a file that is not a results file:
    refused before a byte is written (exit code 2, one line), the file byte-identical."""
    from fastnn import sweep
    before = _foreign_files(tmp_path)
    assert len(before["model.npz"]) > 500_000
    cfg = tmp_path / "cfg.json"
    for name in before:
        cfg.write_text('{"out": "%s", "grid": {"hidden": [4]}, "dataset": "sample", '
                       '"train_size": 50, "test_size": 20, "epochs": 1}' % (tmp_path / name))
        for argv in (["--out", str(tmp_path / name), "--grid", "hidden=4", "--dataset",
                      "sample", "--train-size", "50", "--test-size", "20", "--epochs", "1"],
                     ["--config", str(cfg)]):
            r = child(f"import sys; from fastnn.sweep import main; sys.exit(main({argv!r}))")
            assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
            assert "is not a fastnn sweep results file" in r.stderr and "Traceback" not in \
                r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
        with pytest.raises(ValueError, match="is not a fastnn sweep results file"):
            sweep.run_sweep({"hidden": [4]}, ((np.zeros((4, 3)), [0, 1, 0, 1]),
                                              (np.zeros((2, 3)), [0, 1])),
                            out=tmp_path / name, task=lambda *a, **k: {})
    after = {name: (tmp_path / name).read_bytes() for name in before}
    assert after == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(list(before) + ["cfg.json"])


def test_other_outputs_never_damage_a_foreign_file(tmp_path):
    """The sweep's --plot, fastnn.plot's path=, `fastnn.bench report --out`, `fastnn train
    --save`: all refuse a file of another kind, before any work."""
    from fastnn import plot
    before = _foreign_files(tmp_path)
    target = str(tmp_path / "notes.csv")
    with pytest.raises(ValueError, match="is not an image"):
        plot.plot_history({"loss": [1.0, 0.5]}, path=target)
    res = tmp_path / "r.json"
    res.write_text("{}")
    r = child("import sys; from fastnn.bench import main; "
              f"sys.exit(main(['report', {str(res)!r}, '--out', {target!r}]))")
    assert r.returncode == 2 and "not a fastnn benchmark report" in r.stderr, r.stderr
    r = child("import sys; from fastnn.sweep import main; sys.exit(main(['--grid', "
              f"'hidden=4', '--out', {str(tmp_path / 'new.csv')!r}, '--plot', {target!r}]))")
    assert r.returncode == 2 and "--plot" in r.stderr and "is not an image" in r.stderr
    r = child("import sys; from fastnn.__main__ import main; "
              f"sys.exit(main(['train', '--save', {str(tmp_path / 'model.npz')!r}]))")
    assert r.returncode == 2 and "--save" in r.stderr and "Epoch" not in r.stdout
    assert {n: (tmp_path / n).read_bytes() for n in before} == before
    assert not (tmp_path / "new.csv").exists()


def test_sigterm_during_a_save_removes_the_temporary_file(tmp_path):
    """SIGTERM while a save is being written: the temporary file is removed and the old file
    is left whole (as with Ctrl-C)."""
    target = tmp_path / "net.json"
    target.write_text('{"sizes": "the old file"}')
    code = f"""
    import sys, time
    from fastnn import _core
    def slow(fh):
        fh.write(b'{{"sizes": [1')
        fh.flush()
        print("WRITING", flush=True)
        time.sleep(60)
    try:
        _core.atomic_write({str(target)!r}, slow)
    except KeyboardInterrupt:
        print("CLEANED", flush=True)
        sys.exit(130)
    """
    p = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], env=child_env(),
                         cwd=FASTNN_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        assert p.stdout.readline().strip() == "WRITING"
        assert len(list(tmp_path.iterdir())) == 2          # the file and the temporary one
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 130 and "CLEANED" in out, (p.returncode, out, err)
    assert [x.name for x in tmp_path.iterdir()] == ["net.json"]
    assert target.read_text() == '{"sizes": "the old file"}'


# ---------------------------------------------------------------------------------------------
# 9. the CLI checks its outputs and inputs before training

def _train(args, **env):
    # the Debian folder is not searched: the tests see only the data they set up
    return child("import sys; from fastnn import datasets; "
                 "datasets.DEBIAN_DIRS = {'fashion-mnist': '/nonexistent'}; "
                 "from fastnn.__main__ import main; "
                 f"sys.exit(main(['train'] + {list(args)!r}))", env=env)


def test_cli_train_checks_before_the_first_epoch(tmp_path):
    (tmp_path / "folder").mkdir()
    cases = {
        "missing folder": ["--save", str(tmp_path / "nope" / "net.json")],
        "a folder": ["--save", str(tmp_path / "folder")],
        "unwritable": ["--save", "/proc/fastnn-net.json"],
        "empty name": ["--save", ""],
        "missing data": ["--data-path", str(tmp_path / "no-such-data")],
    }
    for what, args in cases.items():
        r = _train(args + ["--epochs", "30"])
        assert r.returncode == 2, (what, r.returncode, r.stdout, r.stderr)
        assert "Epoch" not in r.stdout and "Traceback" not in r.stderr, (what, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1, (what, r.stderr)
        print(f"MEASURED fastnn train, {what}: exit {r.returncode}: {r.stderr.strip()}")


def test_cli_mnist_never_trains_on_fashion(tmp_path):
    env = {"HOME": str(tmp_path), "FASTNN_NO_DOWNLOAD": "1", "FASTNN_DATA": ""}
    r = _train(["--dataset", "mnist", "--epochs", "1"], **env)
    assert r.returncode == 2 and "MNIST was not found" in r.stderr, (r.stdout, r.stderr)
    assert "Epoch" not in r.stdout and "sample" not in r.stdout
    r = ok(_train(["--dataset", "fashion-mnist", "--epochs", "0",
                   "--save", str(tmp_path / "n.json")], **env))
    assert "Using the shipped Fashion-MNIST sample" in r.stdout
    assert (tmp_path / "n.json").read_text().startswith('{"sizes"')
    # a file fastnn saved may be replaced by the next run
    ok(_train(["--dataset", "sample", "--epochs", "0", "--save", str(tmp_path / "n.json")]))


# ---------------------------------------------------------------------------------------------
# 8. no silent NaN

def _overflowing_net():
    net = network2.Network([4, 3, 2], activation="relu", dtype=np.float32, n_threads=1)
    net.weights[0] = np.full((3, 4), 3e38, dtype=np.float32)    # finite, sums overflow
    net.weights[1] = np.array([[1, -1, 1], [-1, 1, 1]], dtype=np.float32)   # inf - inf
    return net


def test_overflow_in_feedforward_and_accuracy_warns_naming_the_layer():
    net = _overflowing_net()
    x = np.ones((4, 1))
    with pytest.warns(RuntimeWarning, match=r"example 0 is NaN or Inf at layer 1 "
                                            r"\(weights\[0\], 4 -> 3 neurons\).*float32"):
        out = net.feedforward(x)
    assert not np.isfinite(out).all()
    net.cost = network2.QuadraticCost      # (the cross-entropy's nan_to_num hides a NaN)
    with pytest.warns(RuntimeWarning, match=r"evaluate: .* at layer 1 \(weights\[0\]"):
        net.total_cost([(x, np.array([[1.0], [0.0]]))], 0.0)


def test_overflow_in_keras_predict_warns():
    from fastnn import Sequential, layers
    m = Sequential([layers.Input((4,)), layers.Dense(3, activation="relu"),
                    layers.Dense(2, activation="softmax")], dtype="float32", n_threads=1)
    m.set_weights([np.full((4, 3), 3e38, np.float32), np.zeros(3, np.float32),
                   np.ones((3, 2), np.float32), np.zeros(2, np.float32)])
    with pytest.warns(RuntimeWarning, match=r"predict: the output of example 1 .* layer 1"):
        m.predict(np.vstack([np.zeros((1, 4)), np.ones((1, 4))]), verbose=0)
    # finite results: no warning
    m.set_weights([np.ones((4, 3), np.float32), np.zeros(3, np.float32),
                   np.ones((3, 2), np.float32), np.zeros(2, np.float32)])
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m.predict(np.ones((3, 4)), verbose=0)


def _rewrite_archive(src, dst, change):
    """Copy an .npz model archive, passing its arrays (a dict) through ``change``."""
    import json
    with np.load(src) as f:
        arrays = {k: f[k] for k in f.files}
    arrays["config"] = np.array(json.dumps(change(json.loads(str(arrays["config"][()])),
                                                  arrays)))
    np.savez(dst, **arrays)


def test_loading_values_that_do_not_fit_the_dtype(tmp_path):
    from fastnn import Sequential, layers, load_model
    m = Sequential([layers.Input((4,)), layers.Dense(3), layers.Dense(2)], dtype="float32")
    m.predict(np.zeros((1, 4)), verbose=0)
    m.save(tmp_path / "m.npz")

    def big(cfg, arrays):
        arrays["kernel_0"] = np.full((4, 3), 1e300)      # float64, beyond float32
        return cfg
    _rewrite_archive(tmp_path / "m.npz", tmp_path / "big.npz", big)
    with pytest.raises(ValueError, match=r"big\.npz: .*'kernel_0' holds 1e\+300, which does "
                                         r"not fit the model's dtype float32"):
        load_model(tmp_path / "big.npz")


# ---------------------------------------------------------------------------------------------
# 10. small ones

def test_load_model_on_files_that_are_not_archives(tmp_path):
    from fastnn import load_model
    np.save(tmp_path / "a.npy", np.zeros(3))
    (tmp_path / "t.npz").write_text("hello")
    (tmp_path / "e.npz").write_bytes(b"")
    for name in ("a.npy", "t.npz", "e.npz"):
        with pytest.raises(ValueError, match=rf"{name}: not a valid fastnn model file \(not an "
                                             r"\.npz archive"):
            load_model(tmp_path / name)


def test_deeply_nested_configs_are_value_errors(tmp_path):
    from fastnn import Sequential, layers, load_model, sweep
    m = Sequential([layers.Input((4,)), layers.Dense(2)])
    m.save(tmp_path / "m.npz")
    deep = "[" * 100000 + "]" * 100000
    with np.load(tmp_path / "m.npz") as f:
        arrays = {k: f[k] for k in f.files}
    arrays["config"] = np.array(deep)
    np.savez(tmp_path / "deep.npz", **arrays)
    with pytest.raises(ValueError, match=r"deep\.npz: .*nested too deeply"):
        load_model(tmp_path / "deep.npz")
    (tmp_path / "deep.json").write_text(deep)
    with pytest.raises(ValueError, match=r"deep\.json: nested too deeply"):
        sweep._read_config(str(tmp_path / "deep.json"))
    (tmp_path / "deep.yaml").write_text(deep)
    with pytest.raises(ValueError, match=r"deep\.yaml: "):
        sweep._read_config(str(tmp_path / "deep.yaml"))
    r = child("import sys; from fastnn.sweep import main; "
              f"sys.exit(main(['--config', {str(tmp_path / 'deep.json')!r}]))")
    assert r.returncode == 2 and "nested too deeply" in r.stderr and "Traceback" not in r.stderr


def test_optimizer_step_count_that_does_not_fit(tmp_path):
    from fastnn import Sequential, layers, load_model
    m = Sequential([layers.Input((4,)), layers.Dense(2, activation="softmax")])
    m.compile(optimizer="adam", loss="categorical_crossentropy")
    m.fit(np.zeros((4, 4)), np.eye(2)[[0, 1, 0, 1]], epochs=1, verbose=0)
    m.save(tmp_path / "m.npz")

    def huge(cfg, arrays):
        cfg["compile"]["optimizer"]["iterations"] = 2 ** 70
        return cfg
    _rewrite_archive(tmp_path / "m.npz", tmp_path / "huge.npz", huge)
    with pytest.raises(ValueError, match=r"huge\.npz: .*iterations: expected an int <= "):
        load_model(tmp_path / "huge.npz")


INTERRUPT_CODE = """
import sys, time, numpy as np
from fastnn import Sequential, layers
m = Sequential([layers.Input((784,)), layers.Dense(2048, activation="relu"),
                layers.Dense(2048, activation="relu"), layers.Dense(10, activation="softmax")],
               dtype="float32")
m.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
X = np.random.RandomState(0).rand(40000, 784).astype(np.float32)
y = np.zeros(40000, dtype=np.int64)
call = (lambda: m.predict(X, verbose=0)) if sys.argv[1] == "predict" else \\
       (lambda: m.evaluate(X, y, verbose=0))
m.predict(X[:256], verbose=0)
print("READY", flush=True)
try:
    call()
    print("FINISHED")
except KeyboardInterrupt:
    print("INTERRUPTED", time.monotonic(), flush=True)
"""


@pytest.mark.parametrize("what", ["predict", "evaluate"])
def test_ctrl_c_stops_a_long_forward_pass(what):
    """SIGINT half a second into a predict/evaluate of about 10 s (40,000 examples through
    [784, 2048, 2048, 10]) raises KeyboardInterrupt; the seconds from the signal to the
    exception are reported (CLOCK_MONOTONIC is shared by the two processes)."""
    p = subprocess.Popen([sys.executable, "-c", INTERRUPT_CODE, what], env=child_env(),
                         cwd=FASTNN_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        assert p.stdout.readline().strip() == "READY", p.stderr.read()
        time.sleep(0.5)
        sent = time.monotonic()
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, (p.returncode, out, err)
    assert "INTERRUPTED" in out, out
    caught = float(out.split("INTERRUPTED")[1].split()[0])
    print(f"MEASURED Ctrl-C in a long {what}: KeyboardInterrupt {caught - sent:.3f} s after "
          f"SIGINT")


def test_memmap_advice_is_documented():
    readme = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir,
                               "README.md")).read()
    assert "np.memmap" in readme and "SIGBUS" in readme


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_forward_passes_in_chunks_give_the_same_outputs(monkeypatch, dtype):
    """predict in chunks of whole 256-row blocks gives the outputs of one call, bit for bit;
    evaluate the same hits and the cost up to the order of the sums."""
    rng = np.random.RandomState(0)
    sizes = [50, 40, 30, 10]
    W = [_core.aligned_empty((o, i), dtype) for i, o in zip(sizes[:-1], sizes[1:])]
    for w in W:
        w[...] = rng.randn(*w.shape)
    b = [rng.randn(o).astype(dtype) for o in sizes[1:]]
    X = _core.aligned_empty((3000, 50), dtype)
    X[...] = rng.rand(3000, 50)
    Y = np.eye(10, dtype=dtype)[rng.randint(0, 10, 3000)]
    acts = ["relu", "tanh", "softmax"]
    whole = _core.predict(W, b, acts, X, n_threads=2)
    c0, h0 = _core.evaluate(W, b, acts, "log_likelihood", X, Y, n_threads=2)
    monkeypatch.setattr(_core, "PASS_CHUNK_MACS", 1.0)          # 256 rows per chunk
    assert _core.pass_rows(W, 3000) == 256
    np.testing.assert_array_equal(_core.predict(W, b, acts, X, n_threads=2), whole)
    c1, h1 = _core.evaluate(W, b, acts, "log_likelihood", X, Y, n_threads=2)
    assert h1 == h0
    np.testing.assert_allclose(c1, c0, rtol=1e-5 if dtype == np.float32 else 1e-12)


def test_atomic_write_keeps_the_files_mode(tmp_path):
    """A saved file gets the mode of the file it replaces, or a new file's (0666 less the
    umask), not the temporary file's private 0600."""
    import os
    import stat
    mask = os.umask(0o022)
    try:
        new = tmp_path / "new.bin"
        _core.atomic_write(str(new), lambda fh: fh.write(b"x"))
        assert stat.S_IMODE(os.stat(new).st_mode) == 0o644
        old = tmp_path / "old.bin"
        old.write_bytes(b"y")
        os.chmod(old, 0o640)
        _core.atomic_write(str(old), lambda fh: fh.write(b"z"))
        assert stat.S_IMODE(os.stat(old).st_mode) == 0o640 and old.read_bytes() == b"z"
    finally:
        os.umask(mask)

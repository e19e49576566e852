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

from fastnn import _core, network, network2

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


PEAK_RSS = ("import resource as _r; "
            "peak_mb = lambda: _r.getrusage(_r.RUSAGE_SELF).ru_maxrss / 1024.0")


# ---------------------------------------------------------------------------------------------
# 5. memory that does not grow with epochs

def _toy(n=53, n_in=6, n_out=3, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.rand(n, n_in)
    y = rng.randint(0, n_out, n)
    return [(X[i].reshape(-1, 1), np.eye(n_out)[y[i]].reshape(-1, 1)) for i in range(n)]


def _run_network2(chunk, monkeypatch, **kw):
    monkeypatch.setattr(_core, "ORDER_CHUNK", chunk)
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
        monkeypatch.setattr(_core, "ORDER_CHUNK", chunk)
        np.random.seed(5)
        rng = np.random.RandomState(0)
        X, y = rng.rand(40, 5).astype(np.float32), rng.randint(0, 3, 40)
        m = Sequential([layers.Dense(4, activation="relu"), layers.Dense(3, activation="softmax")], n_threads=1)
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
res = _core.train(W, b, ["sigmoid", "sigmoid"], "quadratic", X, Y, epochs=1, batch=10,
                  eta=0.1, n_threads=2)
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
    res = _core.train(W, b, ["sigmoid", "sigmoid"], "quadratic", X, Y, epochs=1, batch=10,
                      eta=0.1)
    return get_num_threads(), res["path"]
"""


def test_worker_processes_default_to_one_thread(tmp_path):
    """With OMP_NUM_THREADS=2, the main process trains on a team of 2; loky, multiprocessing
    and concurrent.futures workers default to 1 engine thread each."""
    (tmp_path / "wjob.py").write_text(WORKER_CODE)
    r = ok(child(f"""
    import sys; sys.path.insert(0, {str(tmp_path)!r})
    import concurrent.futures as cf, multiprocessing as mp
    from joblib import Parallel, delayed
    from wjob import job
    if __name__ == "__main__":
        print("MAIN", job(0))
        print("LOKY", Parallel(n_jobs=2)(delayed(job)(i) for i in range(2)))
        with mp.get_context("spawn").Pool(2) as p:
            print("MP", p.map(job, range(2)))
        with cf.ProcessPoolExecutor(2, mp_context=mp.get_context("forkserver")) as ex:
            print("CF", list(ex.map(job, range(2))))
    """, timeout=180, env={"OMP_NUM_THREADS": "2"}))
    lines = dict(l.split(" ", 1) for l in r.stdout.splitlines() if " " in l)
    assert lines["MAIN"] in ("(2, 'ksplit')", "(2, 'rows')"), r.stdout
    for k in ("LOKY", "MP", "CF"):
        assert lines[k] == "[(1, 'serial'), (1, 'serial')]", r.stdout


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

"""Measure the faults of issue 14 against a fastnn tree: one line per case.

    python tools/faults_measure.py [--tree PATH] [--work DIR] [CASE ...]

``--tree`` is the folder holding the ``fastnn`` package to measure (built in place; default:
this checkout), so the same command gives the figures before and after a change.  Every case
runs in a child process with a timeout; a hang is reported as such.  Cases: bombs, epochs,
fork, threads, sweep, pickle, cli, nan, ctrlc, workers (default: all).  Takes about a minute
(the fork case waits 30 s for a tree that hangs).
"""
import argparse
import os
import subprocess
import sys
import textwrap
import time

PEAK = ("def peak():\n"
        "    return [int(l.split()[1]) for l in open('/proc/self/status')\n"
        "            if l.startswith('VmHWM')][0] / 1024\n")


def run(tree, code, timeout=120, env=None, args=()):
    """(exit code or 'hung', seconds, stdout + stderr) of ``python -c code`` on ``tree``."""
    e = dict(os.environ, PYTHONPATH=tree, **(env or {}))
    t0 = time.monotonic()
    try:
        r = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], env=e,
                           cwd="/", capture_output=True, text=True, timeout=timeout)
        return r.returncode, time.monotonic() - t0, r.stdout + r.stderr
    except subprocess.TimeoutExpired as x:
        out = (x.stdout or b"").decode() + (x.stderr or b"").decode()
        return f"hung ({timeout} s)", time.monotonic() - t0, out


def last(text, n=160):
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return (lines[-1] if lines else "")[:n]


def case_bombs(tree, work):
    """A 1.6 MB IDX .gz whose payload is 1.5 GB of zeros behind a 12-image header, and a
    1.6 MB model archive whose kernel_0 member is 1.6 GB of zeros: peak RSS."""
    make = f"""
    import gzip, os, struct, zipfile, numpy as np
    d = {work!r}
    def idx(a):
        return struct.pack(">HBB", 0, 8, a.ndim) + struct.pack(">%dI" % a.ndim, *a.shape) + \\
            a.tobytes()
    rng = np.random.RandomState(0)
    os.makedirs(d + "/idx", exist_ok=True)
    for name, shape in (("train-labels-idx1-ubyte", (12,)),
                        ("t10k-images-idx3-ubyte", (5, 28, 28)),
                        ("t10k-labels-idx1-ubyte", (5,))):
        open(d + "/idx/" + name, "wb").write(idx(rng.randint(0, 10, shape).astype(np.uint8)))
    member = gzip.compress(bytes(1 << 20), compresslevel=9)
    with open(d + "/idx/train-images-idx3-ubyte.gz", "wb") as f:
        f.write(gzip.compress(struct.pack(">HBBIII", 0, 8, 3, 12, 28, 28)))
        for _ in range(1536):
            f.write(member)
    from fastnn import Sequential, layers
    m = Sequential([layers.Input((784,)), layers.Dense(30), layers.Dense(10)])
    m.predict(np.zeros((1, 784)), verbose=0)
    m.save(d + "/good.npz")
    with zipfile.ZipFile(d + "/good.npz") as src, \
            zipfile.ZipFile(d + "/bomb.npz", "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for info in src.infolist():
            if info.filename != "kernel_0.npy":
                z.writestr(info.filename, src.read(info))
        with z.open("kernel_0.npy", "w", force_zip64=True) as f:
            np.lib.format.write_array_header_1_0(
                f, {{"descr": "<f8", "fortran_order": False, "shape": (1600 << 17,)}})
            for _ in range(1600):
                f.write(bytes(1 << 20))
    print(os.path.getsize(d + "/idx/train-images-idx3-ubyte.gz"),
          os.path.getsize(d + "/bomb.npz"))
    """
    rc, _, out = run(tree, make, timeout=300)
    sizes = out.split()
    for what, call in (("IDX .gz", f"fastnn.datasets.read_idx_dir({work + '/idx'!r})"),
                       ("model archive", f"fastnn.keras.load_model({work + '/bomb.npz'!r})")):
        rc, _, out = run(tree, PEAK + f"""
import fastnn.datasets, fastnn.keras
base = peak()
try:
    {call}
    print("loaded")
except Exception as e:
    print(type(e).__name__ + ": " + str(e)[:120])
print(f"peak RSS {{peak():.0f}} MB (after imports {{base:.0f}} MB)")
""")
        size = sizes[0] if what == "IDX .gz" else sizes[1] if len(sizes) > 1 else "?"
        print(f"bombs: {what} of {size} bytes: exit {rc}; "
              f"{' / '.join(out.strip().splitlines()[-2:])}")


def case_epochs(tree, work):
    rc, _, out = run(tree, PEAK + """
import os, signal, threading, time, numpy as np
from fastnn import network
network.print = lambda *a, **k: None
rng = np.random.RandomState(0)
X, y = rng.rand(1000, 20), rng.randint(0, 10, 1000)
net = network.Network([20, 10, 10], n_threads=1)
sent = []
threading.Timer(2.0, lambda: (sent.append(time.monotonic()),
                              os.kill(os.getpid(), signal.SIGINT))).start()
try:
    net.SGD((X, y), 10**9, 10, 0.1)
except KeyboardInterrupt:
    print(f"KeyboardInterrupt {time.monotonic() - sent[0]:.3f} s after SIGINT, "
          f"peak RSS {peak():.0f} MB")
except MemoryError as e:
    print(f"MemoryError at the start: {str(e)[:80]}")
    os._exit(0)
""", timeout=60)
    print(f"epochs: SGD(epochs=10**9) on 1,000 examples, SIGINT after 2 s: exit {rc}; "
          f"{[ln for ln in out.splitlines() if 'Error' in ln or 'Interrupt' in ln][:1]}")


FORK = """
import multiprocessing as mp, numpy as np
from fastnn import network
rng = np.random.RandomState(0)
X, y = rng.rand(2000, 100), rng.randint(0, 10, 2000)
network.print = lambda *a, **k: None
network.Network([100, 64, 10], n_threads=2).SGD((X, y), 1, 10, 0.1)
def work(i):
    n = network.Network([100, 64, 10], n_threads=2)
    n.SGD((X, y), 1, 10, 0.1)
    return n.evaluate((X, y))
if __name__ == "__main__":
    with mp.get_context("fork").Pool(2) as p:
        print("pool results", p.map(work, [0, 1]))
"""


def case_fork(tree, work):
    path = os.path.join(work, "fork_case.py")
    with open(path, "w") as fh:
        fh.write(FORK)
    rc, sec, out = run(tree, f"exec(open({path!r}).read())", timeout=30)
    print(f"fork: a fork Pool(2) after a 2-thread call: exit {rc} after {sec:.1f} s; {last(out)}")


def case_threads(tree, work):
    code = """
    import resource, sys, numpy as np
    from fastnn import network
    rng = np.random.RandomState(0)
    X, y = rng.rand(500, 50), rng.randint(0, 10, 500)
    vm = [int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmSize")][0]
    lim = (vm << 10) + (1 << 30)
    resource.setrlimit(resource.RLIMIT_AS, (lim, lim))
    try:
        network.Network([50, 30, 10], n_threads=int(sys.argv[1])).SGD((X, y), 1, 50, 0.1)
        print("trained")
    except Exception as e:
        print(type(e).__name__, str(e)[:110])
    """
    for n in ("2000", "8"):
        rc, _, out = run(tree, code, env={"OMP_STACKSIZE": "256M"}, args=(n,))
        print(f"threads: n_threads={n}, address space = mapped + 1 GiB, OMP_STACKSIZE=256M: "
              f"exit {rc}; {last(out)}")


def case_sweep(tree, work):
    target = os.path.join(work, "model.npz")
    rc, _, _ = run(tree, f"""
    import numpy as np
    from fastnn import Sequential, layers
    m = Sequential([layers.Input((784,)), layers.Dense(160), layers.Dense(10)])
    m.predict(np.zeros((1, 784)), verbose=0)
    m.save({target!r})
    """)
    before = open(target, "rb").read()
    rc, _, out = run(tree, "import sys; from fastnn.sweep import main; sys.exit(main(["
                     f"'--grid', 'hidden=4', '--dataset', 'sample', '--train-size', '100', "
                     f"'--test-size', '50', '--epochs', '1', '--n-jobs', '1', '--quiet', "
                     f"'--out', {target!r}]))", timeout=300)
    after = open(target, "rb").read()
    print(f"sweep: --out at a saved model of {len(before)} bytes: exit {rc}, now {len(after)} "
          f"bytes, {'byte-identical' if after == before else 'CHANGED'}; {last(out, 110)}")


def case_pickle(tree, work):
    home, marker = os.path.join(work, "home"), os.path.join(work, "PWNED")
    os.makedirs(os.path.join(home, ".cache", "fastnn"), exist_ok=True)
    if os.path.exists(marker):
        os.remove(marker)
    run(tree, f"""
    import os, pickle, gzip
    class Evil:
        def __reduce__(self):
            return (os.system, ("touch " + {marker!r},))
    with gzip.open({os.path.join(home, '.cache', 'fastnn', 'mnist.pkl.gz')!r}, "wb") as f:
        pickle.dump(((Evil(), 1), (2, 3), (4, 5)), f, protocol=2)
    """)
    rc, _, out = run(tree, "import sys; from fastnn.__main__ import main; "
                     "sys.exit(main(['train', '--dataset', 'mnist', '--epochs', '1']))",
                     env={"HOME": home, "FASTNN_NO_DOWNLOAD": "1", "FASTNN_DATA": ""})
    print(f"pickle: `fastnn train --dataset mnist` with a pickle planted in ~/.cache/fastnn: "
          f"exit {rc}, the pickle's command {'RAN' if os.path.exists(marker) else 'did not run'}; "
          f"{last(out, 120)}")


def case_cli(tree, work):
    pre = ("import sys; from fastnn import datasets; "
           "datasets.DEBIAN_DIRS = {'fashion-mnist': '/nonexistent'}; "
           "from fastnn.__main__ import main; sys.exit(main(['train'] + sys.argv[1:]))")
    env = {"HOME": os.path.join(work, "empty-home"), "FASTNN_NO_DOWNLOAD": "1",
           "FASTNN_DATA": ""}
    for args in (["--dataset", "mnist", "--epochs", "2"],
                 ["--dataset", "sample", "--epochs", "30", "--save",
                  os.path.join(work, "no-folder", "net.json")],
                 ["--data-path", os.path.join(work, "no-data"), "--epochs", "2"],
                 ["--save", "", "--epochs", "2"]):
        rc, sec, out = run(tree, pre, env=env, args=args)
        epochs = sum(1 for ln in out.splitlines() if ln.startswith("Epoch"))
        sample = "trained on the Fashion-MNIST sample; " if "shipped Fashion-MNIST sample" \
            in out else ""
        print(f"cli: train {' '.join(a if a else repr(a) for a in args)}: exit {rc} after "
              f"{sec:.1f} s, {epochs} epoch lines; {sample}{last(out, 100)}")


def case_nan(tree, work):
    rc, _, out = run(tree, """
    import warnings, numpy as np
    from fastnn import network2
    net = network2.Network([4, 3, 2], activation="relu", dtype=np.float32, n_threads=1)
    net.weights[0] = np.full((3, 4), 3e38, dtype=np.float32)
    net.weights[1] = np.array([[1, -1, 1], [-1, 1, 1]], dtype=np.float32)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        out = net.feedforward(np.ones((4, 1)))
    print("output", out.ravel(), "warning:", str(w[0].message)[:100] if w else "none")
    """)
    print(f"nan: float32 weights of 3e38: exit {rc}; {last(out)}")


def case_ctrlc(tree, work):
    rc, _, out = run(tree, """
    import os, signal, threading, time, numpy as np
    from fastnn import Sequential, layers
    m = Sequential([layers.Input((784,)), layers.Dense(2048, activation="relu"),
                    layers.Dense(2048, activation="relu"),
                    layers.Dense(10, activation="softmax")], dtype="float32")
    X = np.random.RandomState(0).rand(40000, 784).astype(np.float32)
    m.predict(X[:256], verbose=0)
    sent = []
    threading.Timer(0.5, lambda: (sent.append(time.monotonic()),
                                  os.kill(os.getpid(), signal.SIGINT))).start()
    t0 = time.monotonic()
    try:
        m.predict(X, verbose=0)
        print("finished")
    except KeyboardInterrupt:
        print(f"KeyboardInterrupt {time.monotonic() - sent[0]:.3f} s after SIGINT")
    """, timeout=300)
    print(f"ctrlc: predict of 40,000 x [784, 2048, 2048, 10], SIGINT at 0.5 s: exit {rc}; "
          f"{last(out)}")


def case_workers(tree, work):
    path = os.path.join(work, "workers_case.py")
    with open(path, "w") as fh:
        fh.write(textwrap.dedent("""
        from joblib import Parallel, delayed
        def job(i):
            import numpy as np
            from fastnn import _core, get_num_threads
            rng = np.random.RandomState(0)
            X, Y = rng.rand(2000, 100), np.eye(10)[rng.randint(0, 10, 2000)]
            W, b = [rng.randn(64, 100), rng.randn(10, 64)], [rng.randn(64), rng.randn(10)]
            if hasattr(_core, "TrainConfig"):
                res = _core.train(W, b, X, Y, _core.TrainConfig(
                    acts=["sigmoid"] * 2, cost="quadratic", epochs=1, batch=10, eta=0.1))
            else:
                res = _core.train(W, b, ["sigmoid"] * 2, "quadratic", X, Y, epochs=1,
                                  batch=10, eta=0.1)
            return get_num_threads(), res["path"]
        if __name__ == "__main__":
            print(Parallel(n_jobs=4)(delayed(job)(i) for i in range(4)))
        """))
    rc, _, out = run(tree, f"exec(open({path!r}).read())", env={"OMP_NUM_THREADS": "2"})
    print(f"workers: 4 loky jobs, OMP_NUM_THREADS=2, (threads, path) per job: exit {rc}; "
          f"{last(out)}")


CASES = {name[5:]: f for name, f in globals().items() if name.startswith("case_")}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tree", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    p.add_argument("--work", default=None, help="a folder for the files made (default: a "
                                                "new temporary folder)")
    p.add_argument("cases", nargs="*", choices=[[]] + list(CASES), default=[])
    args = p.parse_args()
    import tempfile
    work = args.work or tempfile.mkdtemp(prefix="fastnn-faults-")
    os.makedirs(work, exist_ok=True)
    print(f"tree {os.path.abspath(args.tree)}, files in {work}")
    for name in args.cases or list(CASES):
        CASES[name](os.path.abspath(args.tree), work)
        sys.stdout.flush()


if __name__ == "__main__":
    main()

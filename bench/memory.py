"""Peak RSS of training, fastnn against the numpy reference, each case in a fresh process.

    python bench/memory.py                 # every case, a Markdown table
    python bench/memory.py --json          # the same as JSON
    python bench/memory.py --child W1-numpy   # one case (what the parent runs), JSON on stdout
    python bench/memory.py --data path/to/mnist.pkl.gz --epochs 30   # the book's session

Each array child loads Fashion-MNIST, converts it to the input the implementation takes, and
records its baseline (VmRSS after loading, the raw uint8 images freed); then it resets the
kernel's high-water mark (``/proc/self/clear_refs``), trains one epoch (W1 with the test-set
evaluation) and records ``ru_maxrss`` and ``VmHWM``.

``W1-fastnn-list`` is the book's chapter-1 session as a reader types it, on Nielsen's
``mnist.pkl.gz`` (``--data``; default ``../shared/data/mnist.pkl.gz`` beside the clone):
``fastnn.mnist_loader.load_data_wrapper()`` (its baseline: the process holding the three
lists alone), then ``import network``, ``Network([784, 30, 10])`` and
``SGD(training_data, 30, 10, 3.0, test_data=test_data)`` (``--epochs``; one epoch on the
shipped sample set with FASTNN_BENCH_QUICK=1, unless ``--data`` is given).  The thread count
is the session's default (OMP_NUM_THREADS, else every CPU).

- ``peak_rss_mib``: VmHWM, the process's peak from the baseline on (the training's, and for
  the book's session the import of ``network`` too).
- ``peak_over_baseline``: that peak over the baseline (the issue asks the book's session for
  at most 1.1).  The book's session also gives ``import_network_rss_mib``, the RSS once
  ``network`` (the engine, scipy's BLAS) is imported, and ``peak_over_import``, the peak over
  that: what training itself adds to the lists.

- ``maxrss_above_baseline_mib``: ``ru_maxrss`` - baseline (the issue's definition; it also holds
  any peak reached while loading, so it is an upper bound).
- ``hwm_above_baseline_mib``: the training's own peak above the baseline (needs Linux >= 4.0;
  None where ``clear_refs`` cannot be written).

FASTNN_BENCH_QUICK=1 uses the smoke sizes.  The benchmark ``bench/test_memory.py`` runs the
same cases and puts these numbers in the JSON the report reads.
"""
import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# case: (workload, implementation, input form)
CASES = {
    "W1-fastnn-list": ("W1", "fastnn", "Nielsen lists, the book's session"),
    "W1-fastnn-array": ("W1", "fastnn", "arrays"),
    "W1-numpy": ("W1", "numpy", "arrays"),
    "W2-fastnn": ("W2", "fastnn", "arrays"),
    "W2-numpy": ("W2", "numpy", "arrays"),
}
MIB = 2.0 ** 20


def _status_kib(field):
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_hwm():
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def default_data():
    """Nielsen's mnist.pkl.gz in the shared data folder beside the clone, or None."""
    path = os.path.join(ROOT, os.pardir, "shared", "data", "mnist.pkl.gz")
    return os.path.abspath(path) if os.path.isfile(path) else None


def book_session(case, data, epochs):
    """The book's chapter-1 session: the lists alone are the baseline; the peak is that of
    ``import network`` and ``SGD`` with the test data after it."""
    import numpy as np
    from fastnn import mnist_loader
    # (not from _harness, which imports pytest and more before the baseline)
    QUICK = os.environ.get("FASTNN_BENCH_QUICK", "") not in ("", "0")
    if epochs is None:
        epochs = 1 if QUICK else 30
    if data is None and not QUICK:
        raise SystemExit("memory: the book's session needs Nielsen's mnist.pkl.gz: pass --data "
                         "(looked for ../shared/data/mnist.pkl.gz beside the clone)")
    if data is None:
        training_data, validation_data, test_data = mnist_loader.load_data_wrapper(
            dataset="sample", download=False)
    else:
        training_data, validation_data, test_data = mnist_loader.load_data_wrapper(data)
    gc.collect()
    baseline_kib = _status_kib("VmRSS")
    hwm_ok = _reset_hwm()
    t0 = time.perf_counter()
    import contextlib
    import io
    from fastnn import network
    import_kib = _status_kib("VmRSS")
    net = network.Network([784, 30, 10])
    with contextlib.redirect_stdout(io.StringIO()) as out:
        net.SGD(training_data, epochs, 10, 3.0, test_data=test_data)
    seconds = time.perf_counter() - t0
    hwm_kib = _status_kib("VmHWM") if hwm_ok else None
    maxrss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    last = out.getvalue().strip().splitlines()[-1] if epochs else ""
    # the numbers the three lists hold (x columns, one-hot y columns), without the objects
    data_bytes = sum(x.nbytes + (y.nbytes if isinstance(y, np.ndarray) else 0)
                     for part in (training_data, validation_data, test_data) for x, y in part)
    x0 = training_data[0][0]
    from fastnn import _config
    return {
        "case": case, "mem_workload": "W1", "mem_impl": "fastnn", "input": CASES[case][2],
        "dtype": "float64", "x_dtype": x0.dtype.name, "n_train": len(training_data),
        "n_test": len(test_data), "quick": QUICK, "epochs": epochs,
        "threads": _config.get_num_threads(), "data": data or "sample", "last_line": last,
        "data_mib": data_bytes / MIB,
        "baseline_rss_mib": baseline_kib / 1024.0,
        "import_network_rss_mib": import_kib / 1024.0,
        "maxrss_mib": maxrss_kib / 1024.0,
        "maxrss_above_baseline_mib": (maxrss_kib - baseline_kib) / 1024.0,
        "peak_rss_mib": None if hwm_kib is None else hwm_kib / 1024.0,
        "hwm_above_baseline_mib": None if hwm_kib is None else (hwm_kib - baseline_kib) / 1024.0,
        "peak_over_baseline": None if hwm_kib is None else hwm_kib / baseline_kib,
        "peak_over_import": None if hwm_kib is None else hwm_kib / import_kib,
        "train_seconds": seconds,
    }


def child(case, data=None, epochs=None):
    """Run one case in this process and return its measurements."""
    if CASES[case][2].startswith("Nielsen"):
        return book_session(case, data, epochs)
    sys.path.insert(0, HERE)
    import numpy as np
    from _harness import QUICK, SEED, WORKLOADS, initial_params
    from fastnn import datasets
    wid, impl, form = CASES[case]
    wl = WORKLOADS[wid]
    dt = np.dtype(wl.dtype)
    try:
        loaded = datasets.load_fashion_mnist(download=False)
    except datasets.DatasetNotFoundError:
        if not QUICK:
            raise
        loaded = datasets.load_sample()
    (x, y), (xt, yt) = loaded
    n, nt = wl.n_train, wl.n_test
    y, yt = y[:n].astype(np.int64), yt[:nt].astype(np.int64)

    def scaled(images):  # in place: no float temporary beside the result
        out = np.empty((len(images), images[0].size), dtype=dt)
        np.divide(images.reshape(len(images), -1), 255, out=out, casting="unsafe")
        return out

    X, tX = scaled(x[:n]), scaled(xt[:nt])
    del x, xt, loaded
    data_bytes = X.nbytes + tX.nbytes
    Y = datasets.one_hot(y, 10, dt)
    data_bytes += Y.nbytes
    W0, b0 = initial_params(wl)
    # every module the run needs is imported before the baseline (the engine loads BLAS)
    import contextlib
    import io
    from fastnn import _core, _config, network, network2
    from fastnn.reference import MatrixNetwork
    _config._get_blas()
    gc.collect()
    baseline_kib = _status_kib("VmRSS")
    maxrss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    hwm_ok = _reset_hwm()
    t0 = time.perf_counter()
    if impl == "fastnn" and wid == "W1":
        net = network.Network(list(wl.sizes), dtype=dt, n_threads=1)
        net.weights, net.biases = [w.copy() for w in W0], [b.copy() for b in b0]
        with contextlib.redirect_stdout(io.StringIO()):
            net.SGD((X, y), 1, wl.batch, wl.eta, test_data=(tX, yt))
    elif impl == "fastnn":
        net = network2.Network(list(wl.sizes), cost=network2.LogLikelihoodCost,
                               activation=wl.hidden, dtype=dt, n_threads=1)
        net.weights = [w.astype(dt) for w in W0]
        net.biases = [b.astype(dt) for b in b0]
        W, b = _core.sync_params(net, net.sizes, dt)
        orders = np.random.RandomState(SEED).permutation(n).astype(np.int32)[None, :]
        _core.train(W, b, X, Y, _core.TrainConfig(
            acts=net._acts(), cost=wl.cost, epochs=1, batch=wl.batch, eta=wl.eta,
            optimizer=wl.optimizer, beta1=wl.beta1, beta2=wl.beta2, eps=wl.eps,
            state=_core.new_state(wl.optimizer, W, b), orders=orders, n_threads=1))
    else:
        net = MatrixNetwork(W0, b0, activation=wl.hidden, output_activation=wl.output,
                            cost=wl.cost, dtype=dt)
        order = np.random.RandomState(SEED).permutation(n)
        net.train_epoch(X, Y, order, wl.batch, wl.eta, optimizer=wl.optimizer,
                        beta1=wl.beta1, beta2=wl.beta2, eps=wl.eps)
        if wl.evaluate_each_epoch:
            net.accuracy(tX, yt)
    seconds = time.perf_counter() - t0
    maxrss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    hwm_kib = _status_kib("VmHWM") if hwm_ok else None
    base = baseline_kib or 0
    return {
        "case": case, "mem_workload": wid, "mem_impl": impl, "input": form,
        "dtype": dt.name, "n_train": n, "n_test": nt, "quick": QUICK,
        "data_mib": data_bytes / MIB,
        "baseline_rss_mib": base / 1024.0,
        "maxrss_before_mib": maxrss_before / 1024.0,
        "maxrss_mib": maxrss_after / 1024.0,
        "maxrss_above_baseline_mib": (maxrss_after - base) / 1024.0,
        "hwm_above_baseline_mib": None if hwm_kib is None else (hwm_kib - base) / 1024.0,
        "peak_rss_mib": None if hwm_kib is None else hwm_kib / 1024.0,
        "peak_over_baseline": None if hwm_kib is None or not base else hwm_kib / base,
        "train_seconds": seconds,
    }


def measure(case, timeout=900, data=None, epochs=None):
    """Run ``case`` in a fresh Python process; return its dict.  ``data`` and ``epochs``: the
    book's session's (default: ``default_data()``, 30 epochs)."""
    env = dict(os.environ)
    # the child imports the same fastnn as this process (the checkout built in place, or the
    # installed package), never an uncompiled source tree
    import fastnn
    fastnn_root = os.path.dirname(os.path.dirname(os.path.abspath(fastnn.__file__)))
    env["PYTHONPATH"] = os.pathsep.join([fastnn_root, ROOT] +
                                        ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    book = CASES[case][2].startswith("Nielsen")
    if not book:                     # the book's session runs on the default threads
        env.setdefault("OMP_NUM_THREADS", "1")
    cmd = [sys.executable, os.path.abspath(__file__), "--child", case]
    quick = os.environ.get("FASTNN_BENCH_QUICK", "") not in ("", "0")
    data = data or (None if quick else default_data())   # smoke runs: the sample set
    if book and data:
        cmd += ["--data", data]
    if book and epochs is not None:
        cmd += ["--epochs", str(epochs)]
    proc = subprocess.run(cmd, cwd=fastnn_root, env=env, capture_output=True, text=True,
                          timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError("memory child %s failed (exit %d):\n%s" % (
            case, proc.returncode, proc.stderr[-3000:]))
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--child", choices=sorted(CASES), help="run one case in this process")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--data", help="Nielsen's mnist.pkl.gz for the book's session (default: "
                   "../shared/data/mnist.pkl.gz beside the clone)")
    p.add_argument("--epochs", type=int, help="epochs of the book's session (default 30; 1 "
                   "with FASTNN_BENCH_QUICK=1)")
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.data, args.epochs)))
        return 0
    rows = [measure(c, data=args.data, epochs=args.epochs) for c in CASES]
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0

    def f(v):
        return "n/a" if v is None else "%.1f" % v
    def ratio(v):
        return "n/a" if v is None else "%.3f" % v
    print("| case | input | data MiB | baseline MiB | peak MiB (VmHWM) | peak / baseline | "
          "peak above baseline MiB | ru_maxrss - baseline MiB |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
            r["case"], r["input"], f(r["data_mib"]), f(r["baseline_rss_mib"]),
            f(r.get("peak_rss_mib")), ratio(r.get("peak_over_baseline")),
            f(r["hwm_above_baseline_mib"]), f(r["maxrss_above_baseline_mib"])))
    book = [r for r in rows if "import_network_rss_mib" in r]
    for r in book:
        print()
        print("%s: %d epochs, %d threads, x %s; the lists alone %s MiB, after `import network` "
              "%s MiB, peak %s MiB: %s of the lists alone, %s of the lists and the import "
              "(%s)" % (
                  r["case"], r["epochs"], r["threads"], r["x_dtype"], f(r["baseline_rss_mib"]),
                  f(r["import_network_rss_mib"]), f(r.get("peak_rss_mib")),
                  ratio(r.get("peak_over_baseline")), ratio(r.get("peak_over_import")),
                  r["last_line"] or "no epochs"))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Peak RSS of one training epoch, fastnn against the numpy reference, each in a fresh process.

    python bench/memory.py                 # every case, a Markdown table
    python bench/memory.py --json          # the same as JSON
    python bench/memory.py --child W1-numpy   # one case (what the parent runs), JSON on stdout

Each child loads Fashion-MNIST, converts it to the input the implementation takes, and
records its baseline (VmRSS after loading, the raw uint8 images freed); then it resets the
kernel's high-water mark (``/proc/self/clear_refs``), trains one epoch (W1 with the test-set
evaluation) and records ``ru_maxrss`` and ``VmHWM``.

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
    "W1-fastnn-list": ("W1", "fastnn", "Nielsen list"),
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


def child(case):
    """Run one case in this process and return its measurements."""
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
    if form == "Nielsen list":
        # network.py's own form: (784, 1) columns (views of X here), one-hot (10, 1) targets
        train_list = []
        for row, label in zip(X, y.tolist()):
            e = np.zeros((10, 1))
            e[label] = 1.0
            train_list.append((row.reshape(-1, 1), e))
        test_list = list(zip((row.reshape(-1, 1) for row in tX), yt.tolist()))
        data_bytes += n * 10 * 8
    else:
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
            if form == "Nielsen list":
                net.SGD(train_list, 1, wl.batch, wl.eta, test_data=test_list)
            else:
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
        "train_seconds": seconds,
    }


def measure(case, timeout=600):
    """Run ``case`` in a fresh Python process; return its dict."""
    env = dict(os.environ)
    # the child imports the same fastnn as this process (the checkout built in place, or the
    # installed package), never an uncompiled source tree
    import fastnn
    fastnn_root = os.path.dirname(os.path.dirname(os.path.abspath(fastnn.__file__)))
    env["PYTHONPATH"] = os.pathsep.join([fastnn_root, ROOT] +
                                        ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env.setdefault("OMP_NUM_THREADS", "1")
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", case],
                          cwd=fastnn_root, env=env, capture_output=True, text=True,
                          timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError("memory child %s failed (exit %d):\n%s" % (
            case, proc.returncode, proc.stderr[-3000:]))
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--child", choices=sorted(CASES), help="run one case in this process")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child)))
        return 0
    rows = [measure(c) for c in CASES]
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0

    def f(v):
        return "n/a" if v is None else "%.1f" % v
    print("| case | input | data MiB | peak above baseline MiB (VmHWM) | "
          "ru_maxrss - baseline MiB | baseline MiB |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print("| %s | %s | %s | %s | %s | %s |" % (
            r["case"], r["input"], f(r["data_mib"]), f(r["hwm_above_baseline_mib"]),
            f(r["maxrss_above_baseline_mib"]), f(r["baseline_rss_mib"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())

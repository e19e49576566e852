"""The book's chapter-1 and chapter-3 MNIST runs, with fastnn in place of the book's modules.

    python bench/book_table.py [--data path/to/mnist.pkl.gz] [--seeds 0,1,2] [--epochs 30]
                               [--runs 1,2,3,4,5] [--threads 1] [--out results.md]
                               [--oracle-epochs 0]

The five runs of issue 15 (the default ``--runs``) and a sixth, each the book's call as
written (mini-batch 10, 30 epochs, the 50,000 training images of Nielsen's ``mnist.pkl.gz``):

1. ``network.Network([784, 30, 10])``, ``SGD(..., 3.0, test_data=test_data)``
2. ``network.Network([784, 100, 10])``, eta 3.0, test data
3. ``network2.Network([784, 30, 10], cost=CrossEntropyCost)``, ``large_weight_initializer()``,
   eta 0.5, test data as evaluation data, ``monitor_evaluation_accuracy``
4. the same with [784, 100, 10]
5. [784, 100, 10], cross-entropy, large initializer, eta 0.5, ``lmbda=5.0``, validation data as
   evaluation data
6. run 5 with the default initializer (weights N(0, 1/n_in)): ``--runs 6``

Each seed sets ``random.seed(s)`` and ``np.random.seed(s)`` before the network is made.  For
each run and seed the script prints the book's per-epoch lines (the raw output) and then one
table: best accuracy (and its epoch), final accuracy, seconds per epoch (training plus the
per-epoch evaluation: wall time of the SGD call over the epochs, which includes converting the
lists to arrays once, and the median time between two epochs' lines) and the figure the book
reports.  The data default is ``../shared/data/mnist.pkl.gz`` beside the clone, else the
loader's own search.

``--oracle-epochs N`` also trains the project's numpy oracle (``reference.MatrixNetwork``)
from the same initial weights over the same shuffles for N epochs and prints both per-epoch
accuracies: a check that a result (a run that gets stuck, say) is the algorithm's, not the
engine's.
"""
import argparse
import contextlib
import io
import os
import platform
import random
import re
import sys
import time

import numpy as np

import fastnn
from fastnn import mnist_loader, network, network2, reference

# run -> (label, module, sizes, eta, lmbda, evaluation data, the book's figure)
RUNS = {
    1: ("ch1 [784,30,10] quadratic, eta 3.0, test", "network", [784, 30, 10], 3.0, 0.0,
        "test", "95.42 % (best, epoch 28)"),
    2: ("ch1 [784,100,10] quadratic, eta 3.0, test", "network", [784, 100, 10], 3.0, 0.0,
        "test", "96.59 %"),
    3: ("ch3 [784,30,10] cross-entropy, large init, eta 0.5, test", "network2",
        [784, 30, 10], 0.5, 0.0, "test", "95.49 %"),
    4: ("ch3 [784,100,10] cross-entropy, large init, eta 0.5, test", "network2",
        [784, 100, 10], 0.5, 0.0, "test", "96.82 %"),
    5: ("ch3 [784,100,10] cross-entropy, large init, eta 0.5, lmbda 5.0, validation",
        "network2", [784, 100, 10], 0.5, 5.0, "validation", "97.92 %"),
    6: ("ch3 [784,100,10] cross-entropy, default init, eta 0.5, lmbda 5.0, validation",
        "network2", [784, 100, 10], 0.5, 5.0, "validation", "about 98 % (as issue 15 quotes)"),
}


def default_data():
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(here, os.pardir, os.pardir, "shared", "data", "mnist.pkl.gz")
    return os.path.abspath(path) if os.path.isfile(path) else None


class Tee(io.StringIO):
    """Copy the book's printed lines to the real stdout and keep the epoch times."""

    def __init__(self, out):
        super().__init__()
        self.out = out
        self.stamps = []

    def write(self, s):
        if s.startswith("Epoch"):
            self.stamps.append(time.perf_counter())
        self.out.write(s)
        return super().write(s)


def oracle_hits(run, W0, b0, rng_state, data, epochs):
    """Evaluation hits per epoch of the numpy oracle over the shuffles fastnn's run drew."""
    _, module, sizes, eta, lmbda, which, _ = RUNS[run]
    training, validation, test = data
    evaluation = test if which == "test" else validation
    X = np.array([x.ravel() for x, _ in training], dtype=np.float64)
    Y = np.array([y.ravel() for _, y in training], dtype=np.float64)
    EX = np.array([x.ravel() for x, _ in evaluation], dtype=np.float64)
    Elab = np.array([int(y) for _, y in evaluation])
    cost = "quadratic" if module == "network" else "cross_entropy"
    ref = reference.MatrixNetwork(W0, b0, cost=cost)
    rng = random.Random()
    rng.setstate(rng_state)
    perm = list(range(len(X)))
    hits = []
    for _ in range(epochs):
        rng.shuffle(perm)               # the list's arrangement after the book's shuffle
        ref.train_epoch(X, Y, np.array(perm), 10, eta, lmbda=lmbda, n=len(X))
        hits.append(ref.accuracy(EX, Elab))
    return hits


def one_run(run, seed, data, epochs, threads, oracle_epochs=0):
    label, module, sizes, eta, lmbda, which, _ = RUNS[run]
    training, validation, test = data
    evaluation = test if which == "test" else validation
    random.seed(seed)
    np.random.seed(seed)
    training = list(training)          # the book shuffles the list in place: a fresh one
    tee = Tee(sys.stdout)
    with contextlib.redirect_stdout(tee):
        print(f"# run {run} seed {seed}: {label}")
        t0 = time.perf_counter()
        if module == "network":
            net = network.Network(sizes, n_threads=threads)
            start = ([w.copy() for w in net.weights], [b.copy() for b in net.biases],
                     random.getstate())
            net.SGD(training, epochs, 10, eta, test_data=evaluation)
            hits = [int(m.group(1)) for m in re.finditer(r"^Epoch \d+: (\d+) / \d+$",
                                                         tee.getvalue(), re.M)]
        else:
            net = network2.Network(sizes, cost=network2.CrossEntropyCost, n_threads=threads)
            if run != 6:
                net.large_weight_initializer()
            start = ([w.copy() for w in net.weights], [b.copy() for b in net.biases],
                     random.getstate())
            _, hits, _, _ = net.SGD(training, epochs, 10, eta, lmbda=lmbda,
                                    evaluation_data=evaluation,
                                    monitor_evaluation_accuracy=True)
        wall = time.perf_counter() - t0
    acc = 100.0 * np.array(hits, dtype=float) / len(evaluation)
    # the median time between the epochs' printed lines leaves out the one-time conversion of
    # the 50,000 (x, y) pairs to arrays, which wall / epochs includes
    median = float(np.median(np.diff(tee.stamps))) if len(tee.stamps) > 1 else wall / epochs
    if oracle_epochs:
        ref = oracle_hits(run, *start, data, oracle_epochs)
        print(f"# run {run} seed {seed}: evaluation hits per epoch, fastnn "
              f"{hits[:oracle_epochs]}, numpy oracle {ref}")
    return {"best": float(acc.max()), "best_epoch": int(acc.argmax()), "final": float(acc[-1]),
            "s_per_epoch": wall / epochs, "median_epoch": median}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=default_data())
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--runs", default="1,2,3,4,5")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", help="also write the table to this file")
    ap.add_argument("--oracle-epochs", type=int, default=0)
    a = ap.parse_args(argv)
    seeds = [int(s) for s in a.seeds.split(",")]
    runs = [int(r) for r in a.runs.split(",")]
    data = mnist_loader.load_data_wrapper(a.data)
    print(f"# fastnn {fastnn.__version__}, python {platform.python_version()}, "
          f"numpy {np.__version__}, {platform.machine()}, {os.cpu_count()} CPUs, "
          f"n_threads={a.threads}, load average {os.getloadavg()[0]:.2f}")
    print(f"# data: {a.data or 'mnist_loader search'}; {a.epochs} epochs, seeds {seeds}")
    rows = []
    for run in runs:
        for seed in seeds:
            r = one_run(run, seed, data, a.epochs, a.threads, a.oracle_epochs)
            rows.append((run, seed, r))
            print(f"# run {run} seed {seed}: best {r['best']:.2f} % (epoch {r['best_epoch']}),"
                  f" final {r['final']:.2f} %, {r['s_per_epoch']:.3f} s/epoch "
                  f"(median epoch {r['median_epoch']:.3f} s)", flush=True)
    lines = ["| run | seed | best accuracy (epoch) | final accuracy | s per epoch: wall / "
             "epochs (median epoch) | the book |",
             "|---|---|---|---|---|---|"]
    for run, seed, r in rows:
        lines.append(f"| {run}: {RUNS[run][0]} | {seed} | {r['best']:.2f} % "
                     f"({r['best_epoch']}) | {r['final']:.2f} % | {r['s_per_epoch']:.3f} "
                     f"({r['median_epoch']:.3f}) | {RUNS[run][6]} |")
    table = "\n".join(lines)
    print()
    print(table)
    if a.out:
        with open(a.out, "w") as fh:
            fh.write(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

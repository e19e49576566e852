"""Time W1 and W2 epochs of two builds of fastnn against each other, in one run.

    python tools/compare_builds.py TREE_A TREE_B [--rounds 5] [--epochs 3]

TREE_A and TREE_B are source trees, each built in place (``python setup.py build_ext
--inplace``), for instance this tree with the default CPU-level build and a copy built with
FASTNN_MARCH=native.  Each round runs one fresh process per tree, in turn, which times
``--epochs`` epochs of every configuration below through the benchmarks' own engine call
(bench/_harness.py, FastnnImpl) after one warm-up epoch; the table gives, per configuration,
the median over the rounds of each process's median epoch, and the ratio B/A (above 1: A is
faster).  Alternating the processes spreads a shared machine's noise over both builds.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

CONFIGS = [("W1", "float64", 1), ("W1", "float64", 2), ("W1", "float32", 1),
           ("W2", "float32", 1), ("W2", "float32", 2)]

CHILD = r"""
import json, os, statistics, sys, time
sys.path[:0] = [os.getcwd(), os.path.join(os.getcwd(), "bench")]
import fastnn, _harness
from fastnn import _engine
ctx = _harness.Context()
out = {"level": _engine.CPU_LEVEL, "file": _engine.__file__, "times": {}}
for wid, dtype, threads in json.loads(sys.argv[1]):
    wl = _harness.WORKLOADS[wid]
    impl = _harness.FastnnImpl(wl, ctx, dtype, threads)
    impl.epoch()
    ts = []
    for _ in range(int(sys.argv[2])):
        t0 = time.perf_counter()
        impl.epoch()
        ts.append(time.perf_counter() - t0)
    out["times"]["%s %s %dt" % (wid, dtype, threads)] = statistics.median(ts)
print(json.dumps(out))
"""


def run_one(tree, configs, epochs):
    res = subprocess.run([sys.executable, "-c", CHILD, json.dumps(configs), str(epochs)],
                         cwd=tree, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if res.returncode != 0:
        sys.exit(f"the run in {tree} failed:\n{res.stderr}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("tree_a")
    ap.add_argument("tree_b")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, help="only the configurations with this many "
                    "threads (1 on a busy machine: the 2-thread ones wait for the other core)")
    args = ap.parse_args(argv)
    configs = [c for c in CONFIGS if args.threads is None or c[2] == args.threads]
    trees = [os.path.abspath(args.tree_a), os.path.abspath(args.tree_b)]
    times = {t: {} for t in trees}
    levels = {}
    for r in range(args.rounds):
        for t in (trees if r % 2 == 0 else trees[::-1]):
            out = run_one(t, configs, args.epochs)
            levels[t] = out["level"]
            for k, v in out["times"].items():
                times[t].setdefault(k, []).append(v)
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
    a, b = trees
    print(f"A: {a} (CPU level {levels[a]})")
    print(f"B: {b} (CPU level {levels[b]})")
    print(f"load average at the end: {os.getloadavg()[0]:.2f}; {args.rounds} rounds, median "
          f"of {args.epochs} epochs per process")
    print()
    print("| configuration | A s/epoch | B s/epoch | B/A (A's speed relative to B) |")
    print("|---|---|---|---|")
    for k in times[a]:
        ma, mb = statistics.median(times[a][k]), statistics.median(times[b][k])
        print(f"| {k} | {ma:.4f} | {mb:.4f} | {mb / ma:.3f} |")


if __name__ == "__main__":
    main()

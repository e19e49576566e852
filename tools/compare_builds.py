"""Time W1 and W2 epochs of two or more builds of fastnn against each other, in one run.

    python tools/compare_builds.py TREE_A TREE_B [TREE_C ...] [--rounds 5] [--epochs 3]

Each tree is a source tree built in place (``python setup.py build_ext --inplace``), for
instance this tree with the default CPU-level build and a copy built with
FASTNN_MARCH=native.  Each round runs one fresh process per tree, in turn (the order rotates),
which times ``--epochs`` epochs of every configuration below through the benchmarks' own
engine call (bench/_harness.py, FastnnImpl) after one warm-up epoch.  The table gives, per
configuration and tree, the median over the rounds of each process's median epoch, in wall
time and in CPU time of the process (on one thread the CPU time is the better measure on a
busy machine: it leaves out the time spent waiting for a core), and each tree's ratio to
TREE_A (above 1: TREE_A is faster).
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
out = {"level": getattr(_engine, "CPU_LEVEL", "native (no dispatch)"), "file": _engine.__file__, "times": {}, "cpu": {}}
for wid, dtype, threads in json.loads(sys.argv[1]):
    wl = _harness.WORKLOADS[wid]
    impl = _harness.FastnnImpl(wl, ctx, dtype, threads)
    impl.epoch()
    ts, cs = [], []
    for _ in range(int(sys.argv[2])):
        t0, c0 = time.perf_counter(), time.process_time()
        impl.epoch()
        ts.append(time.perf_counter() - t0)
        cs.append(time.process_time() - c0)
    out["times"]["%s %s %dt" % (wid, dtype, threads)] = statistics.median(ts)
    out["cpu"]["%s %s %dt" % (wid, dtype, threads)] = statistics.median(cs)
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
    ap.add_argument("trees", nargs="+")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, help="only the configurations with this many "
                    "threads (1 on a busy machine: the 2-thread ones wait for the other core)")
    ap.add_argument("--config", action="append", metavar="'W2 float64 2'",
                    help="time this configuration (workload, dtype, threads) instead of the "
                         "default list; may be given several times")
    args = ap.parse_args(argv)
    configs = CONFIGS
    if args.config:
        configs = []
        for text in args.config:
            parts = text.split()
            if len(parts) != 3 or not parts[2].isdigit():
                ap.error(f"--config: expected 'WORKLOAD DTYPE THREADS', got {text!r}")
            configs.append((parts[0], parts[1], int(parts[2])))
    configs = [c for c in configs if args.threads is None or c[2] == args.threads]
    trees = [os.path.abspath(t) for t in args.trees]
    wall = {t: {} for t in trees}
    cpu = {t: {} for t in trees}
    levels = {}
    for r in range(args.rounds):
        for t in trees[r % len(trees):] + trees[:r % len(trees)]:
            out = run_one(t, configs, args.epochs)
            levels[t] = out["level"]
            for k in out["times"]:
                wall[t].setdefault(k, []).append(out["times"][k])
                cpu[t].setdefault(k, []).append(out["cpu"][k])
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
    names = [chr(65 + i) for i in range(len(trees))]
    for n, t in zip(names, trees):
        print(f"{n}: {t} (CPU level {levels[t]})")
    print(f"load average at the end: {os.getloadavg()[0]:.2f}; {args.rounds} rounds, median "
          f"of {args.epochs} epochs per process")
    print()
    print("| configuration | " + " | ".join(f"{n}: wall s, cpu s" for n in names) + " | "
          + " | ".join(f"{n}/A: wall, cpu" for n in names[1:]) + " |")
    print("|---" * (2 * len(trees)) + "|")
    a = trees[0]
    for k in wall[a]:
        mw = [statistics.median(wall[t][k]) for t in trees]
        mc = [statistics.median(cpu[t][k]) for t in trees]
        cells = [f"{w:.4f}, {c:.4f}" for w, c in zip(mw, mc)]
        ratios = [f"{mw[i] / mw[0]:.3f}, {mc[i] / mc[0]:.3f}" for i in range(1, len(trees))]
        print(f"| {k} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")


if __name__ == "__main__":
    main()

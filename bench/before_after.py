"""Two builds of fastnn on the same benchmarks, alternated, in one run.

    python bench/before_after.py BEFORE_TREE AFTER_TREE [--repeat 2] [--out DIR] [-k EXPR]

Each tree is a checkout with the engine built in place (``python setup.py build_ext
--inplace``); its own ``bench/`` suite (W1-W4, and W5/W6 where the tree has
``bench/test_cnn.py``) runs against its own build, fastnn's benchmarks only
(``-k fastnn`` unless ``-k`` says otherwise), ``repeat`` times each, the trees taking turns so
that a change in the machine's load falls on both.  For every benchmark the table gives each
tree's best median and the ratio before / after (above 1: the after tree is faster).
"""
import argparse
import json
import os
import subprocess
import sys


def run(tree, out, expr):
    files = ["bench/test_w1.py", "bench/test_w2.py", "bench/test_w3.py", "bench/test_w4.py"]
    # W5 and W6 where the tree has them (a tree before the conv layers does not)
    files += [f for f in ("bench/test_cnn.py",) if os.path.exists(os.path.join(tree, f))]
    cmd = [sys.executable, "-m", "pytest", *files, "--benchmark-only", "-q", "-p",
           "no:cacheprovider", "-k", expr, f"--benchmark-json={out}"]
    env = dict(os.environ, PYTHONPATH=tree)
    proc = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
        raise SystemExit(f"benchmarks failed in {tree}")
    with open(out) as fh:
        return {b["name"]: b["stats"]["median"] for b in json.load(fh)["benchmarks"]}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("before")
    p.add_argument("after")
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--out", default=".")
    p.add_argument("-k", default="fastnn")
    a = p.parse_args(argv)
    best = {"before": {}, "after": {}}
    for r in range(a.repeat):
        for side in ("before", "after"):
            tree = os.path.abspath(getattr(a, side))
            got = run(tree, os.path.join(os.path.abspath(a.out), f"{side}-{r}.json"), a.k)
            for name, med in got.items():
                best[side][name] = min(med, best[side].get(name, float("inf")))
    print(f"{'benchmark':44s} {'before s':>10s} {'after s':>10s} {'before/after':>13s}")
    for name in sorted(best["before"]):
        if name in best["after"]:
            b, c = best["before"][name], best["after"][name]
            print(f"{name:44s} {b:10.4f} {c:10.4f} {b / c:13.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

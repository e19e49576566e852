"""Train a tiny net with the installed fastnn and save its weights; or compare saved weights.

    python tiny_train.py OUT.npz [--expect-level avx2]
    python tiny_train.py --compare A.npz B.npz [C.npz ...]

Used by .ci/portable.sh: the same wheel trains natively and under qemu-x86_64 (a CPU without
AVX-512), and the weights must agree within float tolerance.  [784, 16, 10] sigmoid, the
book's SGD (network.py), 2 epochs of 400 images of the shipped Fashion-MNIST sample, in
float64 and float32, on one thread and on two.
"""
import argparse
import random
import sys

import numpy as np

TOL = {"float64": 1e-9, "float32": 2e-4}


def train(out, expect_level):
    import fastnn
    from fastnn import _engine, datasets, network
    cfg = fastnn.show_config(print_=False)
    print(f"fastnn {cfg['version']} from {fastnn.__file__}")
    print(f"cpu_level {cfg['cpu_level']}; levels built {cfg['cpu_levels']}; "
          f"this CPU runs {cfg['cpu_levels_supported']}")
    if expect_level and _engine.CPU_LEVEL != expect_level:
        sys.exit(f"expected the {expect_level} kernels, the engine picked {_engine.CPU_LEVEL}")
    (x, y), _ = datasets.load_sample()
    data = datasets.to_nielsen(x[:400], y[:400], vectorize=True)
    saved = {}
    for dtype in ("float64", "float32"):
        for threads in (1, 2):
            np.random.seed(1)
            random.seed(2)
            net = network.Network([784, 16, 10], dtype=np.dtype(dtype), n_threads=threads)
            net.SGD(data, 2, 10, 3.0)
            for i, (w, b) in enumerate(zip(net.weights, net.biases)):
                saved[f"{dtype}_{threads}t_W{i}"] = w
                saved[f"{dtype}_{threads}t_b{i}"] = b
    np.savez(out, level=_engine.CPU_LEVEL, **saved)
    print(f"saved {len(saved)} arrays to {out}")


def compare(paths):
    ref = np.load(paths[0])
    worst = 0.0
    for p in paths[1:]:
        other = np.load(p)
        for dtype, tol in TOL.items():
            keys = [k for k in ref.files if k.startswith(dtype)]
            diff = max(float(np.max(np.abs(ref[k] - other[k]))) for k in keys)
            print(f"{ref['level']} vs {other['level']} ({p}): {dtype} weights, max |diff| "
                  f"{diff:.3g} (tolerance {tol:g})")
            if not diff <= tol:
                worst = max(worst, diff)
                print("  -> FAIL")
    if worst:
        sys.exit(1)
    print("weights equal within tolerance")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="+")
    ap.add_argument("--compare", action="store_true")
    ap.add_argument("--expect-level")
    a = ap.parse_args()
    if a.compare:
        compare(a.paths)
    else:
        train(a.paths[0], a.expect_level)

"""Issue 3's workload: network2 on Fashion-MNIST, cross-entropy, eta 0.5, lmbda 5.0,
mini-batch 10, all four monitors, against the numpy reference doing the same per epoch (one
mini-batch epoch, then cost and accuracy on the training and the evaluation data), in one run.

    python bench/network2_issue3.py [--sizes 784,30,10] [--epochs 30] [--ref-epochs 2]

Prints seconds per epoch of both and the final (and best) evaluation accuracy of fastnn.
"""
import argparse
import contextlib
import io
import random
import time

import numpy as np

from fastnn import mnist_loader, network2, reference


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="784,30,10")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--ref-epochs", type=int, default=2)
    a = ap.parse_args()
    sizes = [int(s) for s in a.sizes.split(",")]
    tr, va, _ = mnist_loader.load_data_wrapper(dataset="fashion-mnist")
    random.seed(1)
    np.random.seed(1)
    net = network2.Network(sizes, cost=network2.CrossEntropyCost)
    W0 = [w.copy() for w in net.weights]
    b0 = [b.copy() for b in net.biases]
    stamps = []

    class Clock(io.StringIO):
        def write(self, s):
            if s.startswith("Epoch"):
                stamps.append(time.perf_counter())
            return len(s)

    with contextlib.redirect_stdout(Clock()):
        t0 = time.perf_counter()
        ec, ea, tc, ta = net.SGD(tr, a.epochs, 10, 0.5, lmbda=5.0, evaluation_data=va,
                                 monitor_evaluation_cost=True, monitor_evaluation_accuracy=True,
                                 monitor_training_cost=True, monitor_training_accuracy=True)
    per_epoch = float(np.median(np.diff([t0] + stamps)))
    # the numpy reference, the same work per epoch
    X = np.array([x.ravel() for x, _ in tr])
    Y = np.array([y.ravel() for _, y in tr])
    VX = np.array([x.ravel() for x, _ in va])
    VY = np.eye(sizes[-1])[[int(y) for _, y in va]]
    ref = reference.MatrixNetwork(W0, b0, cost="cross_entropy")
    rng = np.random.RandomState(1)
    times = []
    for _ in range(a.ref_epochs):
        t = time.perf_counter()
        ref.train_epoch(X, Y, rng.permutation(len(X)), 10, 0.5, lmbda=5.0, n=len(X))
        ref.total_cost(X, Y, lmbda=5.0)
        ref.accuracy(X, Y)
        ref.total_cost(VX, VY, lmbda=5.0)
        ref.accuracy(VX, VY)
        times.append(time.perf_counter() - t)
    ref_epoch = float(np.median(times))
    print(f"sizes {sizes}: fastnn {per_epoch:.3f} s/epoch, numpy reference {ref_epoch:.3f} "
          f"s/epoch ({ref_epoch / per_epoch:.2f}x); final evaluation accuracy "
          f"{ea[-1] / len(va):.2%} (best {max(ea) / len(va):.2%}) after {a.epochs} epochs")


if __name__ == "__main__":
    main()

"""The Python path (issue 15, item 2) on real MNIST: its speed, and how far it drifts from the
compiled engine by rounding alone.

    python bench/python_path.py [--data path/to/mnist.pkl.gz] [--threads 1]

A subclass overriding ``cost_derivative`` with the book's own formula runs the book's algorithm
in Python; it is timed for one epoch of [784, 30, 10], eta 3.0, mini-batch 10 (with the test
evaluation), against the compiled engine from the same seed.  Then both train one epoch on the
first k training images (k = 1000, 10000, 50000) and the largest weight difference and the test
hits are printed: equal algorithms, different rounding.
"""
import argparse
import os
import random
import sys
import time
import warnings

import numpy as np

from fastnn import mnist_loader, network


class SameDerivative(network.Network):
    """The book's cost_derivative, as a reader's override: sends SGD through the Python path."""

    def cost_derivative(self, output_activations, y):
        return output_activations - y


def trained(cls, training, threads, test=None):
    random.seed(0)
    np.random.seed(0)
    net = cls([784, 30, 10], n_threads=threads)
    t = time.perf_counter()
    net.SGD(list(training), 1, 10, 3.0, test_data=test)
    return net, time.perf_counter() - t


def main(argv=None):
    here = os.path.dirname(os.path.abspath(__file__))
    default = os.path.join(here, os.pardir, os.pardir, "shared", "data", "mnist.pkl.gz")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=default if os.path.isfile(default) else None)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    warnings.simplefilter("ignore", UserWarning)
    tr, _, te = mnist_loader.load_data_wrapper(a.data)
    print(f"# load average {os.getloadavg()[0]:.2f}, n_threads={a.threads}")
    for cls in (network.Network, SameDerivative):
        _, seconds = trained(cls, tr, a.threads, te)
        print(f"# {cls.__name__}: one epoch with the test evaluation {seconds:.2f} s")
    for k in (1000, 10000, 50000):
        compiled, _ = trained(network.Network, tr[:k], a.threads)
        python, _ = trained(SameDerivative, tr[:k], a.threads)
        diff = max(float(np.abs(x - y).max()) for x, y in zip(compiled.weights, python.weights))
        print(f"# {k} examples ({k // 10} steps): max |compiled - Python path| weight "
              f"{diff:.3g}, test hits {compiled.evaluate(te)} vs {python.evaluate(te)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

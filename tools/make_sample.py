"""Write fastnn/data/fashion-mnist-sample.npz, the small real data set shipped with fastnn.

Reads the full Fashion-MNIST IDX files (by default the Debian folder installed by
``apt-get install dataset-fashion-mnist``) and keeps

- 3000 training images: the first 300 of each class, in their original order;
- the first 1000 test images;

as uint8 under the Keras keys x_train, y_train, x_test, y_test, compressed.

Usage::

    python tools/make_sample.py [--src /usr/share/datasets/fashion-mnist] [--out PATH]
"""

import argparse
import importlib.util
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PER_CLASS = 300
N_TEST = 1000


def _datasets_module():
    """Import fastnn/datasets.py by path, so the compiled engine need not be built."""
    spec = importlib.util.spec_from_file_location(
        "_fastnn_datasets", os.path.join(ROOT, "fastnn", "datasets.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_sample(x_train, y_train, x_test, y_test, per_class=PER_CLASS, n_test=N_TEST):
    """Return the sample arrays: ``per_class`` first images of each class, ``n_test`` tests."""
    keep = np.sort(np.concatenate(
        [np.flatnonzero(y_train == c)[:per_class] for c in range(10)]))
    return x_train[keep], y_train[keep], x_test[:n_test], y_test[:n_test]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", default="/usr/share/datasets/fashion-mnist",
                        help="folder holding the four Fashion-MNIST IDX files")
    parser.add_argument("--out", default=os.path.join(ROOT, "fastnn", "data",
                                                      "fashion-mnist-sample.npz"))
    args = parser.parse_args(argv)

    datasets = _datasets_module()
    (x_train, y_train), (x_test, y_test) = datasets.read_idx_dir(args.src)
    xs, ys, xt, yt = make_sample(x_train, y_train, x_test, y_test)

    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    tmp = args.out + ".tmp.npz"
    np.savez_compressed(tmp, x_train=xs, y_train=ys, x_test=xt, y_test=yt)
    os.replace(tmp, args.out)

    print("wrote %s (%d bytes)" % (args.out, os.path.getsize(args.out)))
    print("x_train %s %s, y_train counts %s" % (xs.shape, xs.dtype, np.bincount(ys).tolist()))
    print("x_test  %s %s, y_test  counts %s" % (xt.shape, xt.dtype, np.bincount(yt).tolist()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

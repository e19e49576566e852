"""The book's data expansion for chapter 6 (its ``expand_mnist.py``), as a function and a command.

Every training image is kept and joined by four copies moved by one pixel: down, up, right
and left.  The row or column that moves in at the edge is zero (nothing wraps around).
50,000 MNIST training images become 250,000; the validation and test sets are unchanged.

    fastnn expand-mnist [--source ../data/mnist.pkl.gz] [--target ../data/mnist_expanded.pkl.gz]

The result is written as ``mnist_expanded.pkl.gz``, in the layout of Nielsen's
``mnist.pkl.gz``: a gzipped pickle of ``((x, y), (x, y), (x, y))``, x float32 ``(n, 784)``,
y int64 ``(n,)``, which ``network3.load_data_shared`` reads.
"""
import argparse
import gzip
import os
import pickle

import numpy as np

from fastnn import _core, mnist_loader

BOOK_SOURCE = "../data/mnist.pkl.gz"
BOOK_TARGET = "../data/mnist_expanded.pkl.gz"
SIDE = 28


def shifted(images, dy, dx):
    """``images`` (n, H, W) moved by ``dy`` rows (positive: down) and ``dx`` columns
    (positive: right), by at most one pixel; what moves in at the edge is zero."""
    out = np.zeros_like(images)
    h, w = images.shape[1:]
    out[:, max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        images[:, max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return out


def expand(x, y, shuffle=True, seed=0):
    """Return ``(x5, y5)``: each image of ``x`` (n, 784) followed by its four one-pixel moves
    (down, up, right, left), labels repeated; then, with ``shuffle``, the 5n images in a
    random order (``np.random.default_rng(seed)``): ``network3`` never shuffles, and five
    copies of one digit in a row would make poor mini-batches."""
    x = np.asarray(x)
    y = np.asarray(y)
    if x.ndim != 2 or x.shape[1] != SIDE * SIDE:
        raise ValueError(f"x: expected images of shape (n, {SIDE * SIDE}), got {x.shape}")
    if y.shape != (len(x),):
        raise ValueError(f"y: expected labels of shape ({len(x)},), got {y.shape}")
    images = x.reshape(-1, SIDE, SIDE)
    moves = [images] + [shifted(images, dy, dx) for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1))]
    x5 = np.stack(moves, axis=1).reshape(-1, SIDE * SIDE)
    y5 = np.repeat(y, len(moves))
    if shuffle:
        order = np.random.default_rng(seed).permutation(len(x5))
        x5, y5 = x5[order], y5[order]
    return x5, y5


def expand_mnist(source=BOOK_SOURCE, target=BOOK_TARGET, shuffle=True, seed=0):
    """Read ``source`` (Nielsen's ``mnist.pkl.gz``), expand its training set with ``expand``
    and write ``target`` in the same layout.  Returns the number of training images written.
    As in the book, the default source is ``../data/mnist.pkl.gz``; when it is not there, the
    places ``fastnn.mnist_loader.load_data()`` searches are searched."""
    if source == BOOK_SOURCE and not os.path.isfile(source):
        parts = mnist_loader.load_data()
    else:
        if not os.path.isfile(source):
            raise FileNotFoundError(f"source: no such file {source!r}")
        parts = mnist_loader.load_data(source, download=False)
    (x, y), validation, test = parts
    x5, y5 = expand(x, y, shuffle=shuffle, seed=seed)
    data = ((x5.astype(np.float32), y5.astype(np.int64)),
            tuple(np.asarray(a) for a in validation), tuple(np.asarray(a) for a in test))

    def write(fh):
        with gzip.GzipFile(fileobj=fh, mode="wb", compresslevel=6) as gz:
            pickle.dump(data, gz, protocol=4)

    _core.atomic_write(target, write)
    return len(x5)


def main(argv=None):
    p = argparse.ArgumentParser(
        prog="fastnn expand-mnist",
        description="Write mnist_expanded.pkl.gz: each MNIST training image plus its four "
                    "one-pixel moves (the book's expand_mnist.py, for chapter 6).")
    p.add_argument("--source", default=BOOK_SOURCE, help="Nielsen's mnist.pkl.gz "
                   "(default: %(default)s, else where fastnn.mnist_loader looks)")
    p.add_argument("--target", default=BOOK_TARGET, help="file to write (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of the shuffle (default: 0)")
    p.add_argument("--no-shuffle", action="store_true",
                   help="keep each image next to its four moves")
    args = p.parse_args(argv)
    n = expand_mnist(args.source, args.target, shuffle=not args.no_shuffle, seed=args.seed)
    print(f"Wrote {args.target}: {n} training images")
    return 0

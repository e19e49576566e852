"""The fastnn command line (``python -m fastnn`` is the same program).

    fastnn train [--dataset fashion-mnist] [--sizes 784,30,10] [--epochs 30] ...
    fastnn sweep --grid hidden=28,88,128,256 --seeds 0,1,2 ...
    fastnn config
    fastnn bench report RESULTS.json
    fastnn --version
    fastnn expand-mnist [--source ../data/mnist.pkl.gz] [--target ...]
"""
import argparse
import contextlib
import dataclasses
import os
import random
import sys
import time

import numpy as np


def _sizes(text):
    try:
        sizes = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated ints such as 784,30,10, "
                                         f"got {text!r}") from None
    if len(sizes) < 2 or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected at least two positive sizes, got {text!r}")
    return sizes


def _positive_int(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an int, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive int, got {v}")
    return v


@contextlib.contextmanager
def _live_bar(steps, epochs):
    """On a terminal (or in a notebook), draw Keras' progress bar while ``network.SGD`` runs,
    its book lines ("Epoch 0: 8066 / 10000") printed over the bar at the end of each epoch.

    ``network.SGD`` has no progress argument yet, so for the length of the block the engine
    call it makes gets the counter here (``TrainConfig.progress``), and its per-epoch
    callback clears the bar before printing."""
    from fastnn import _core
    from fastnn.keras.progress import LiveBar, dynamic_display
    if not dynamic_display():
        yield
        return
    counter = np.zeros(2, dtype=np.int64)
    bar = LiveBar(counter, epochs, steps, verbose=1, live=True, headers=False)
    real_train = _core.train

    def train(W, b, X, Y, config):
        on_epoch = config.on_epoch

        def epoch_done(stats):
            bar.clear()
            reply = on_epoch(stats) if on_epoch is not None else None
            bar.epoch_begin(stats["epoch"] + 1)
            return reply
        progress = counter if config.progress is None else config.progress
        return real_train(W, b, X, Y, dataclasses.replace(config, on_epoch=epoch_done,
                                                          progress=progress))

    _core.train = train
    bar.epoch_begin(0)
    bar.start()
    try:
        yield
    finally:
        bar.stop()
        bar.clear()
        _core.train = real_train


def train_main(argv):
    from fastnn import datasets, network, set_num_threads
    from fastnn.network2 import atomic_write_text
    p = argparse.ArgumentParser(
        prog="fastnn train", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Train the book's chapter-1 network (sigmoid, quadratic cost, SGD) and "
                    "print the book's epoch lines.")
    p.add_argument("--dataset", default="fashion-mnist",
                   choices=["fashion-mnist", "mnist", "sample"],
                   help="data to train on; fashion-mnist falls back to the shipped "
                        "Fashion-MNIST sample when the real data is not installed (and says "
                        "so); mnist never does")
    p.add_argument("--data-path", default=None,
                   help="folder or file holding the data (None: the places fastnn.datasets "
                        "searches)")
    p.add_argument("--sizes", type=_sizes, default="784,30,10",
                   help="layer sizes, comma-separated")
    p.add_argument("--epochs", type=int, default=30, help="epochs to train")
    p.add_argument("--mini-batch-size", type=_positive_int, default=10,
                   help="examples per mini-batch")
    p.add_argument("--eta", type=float, default=3.0, help="learning rate")
    p.add_argument("--dtype", choices=["float64", "float32"], default="float64",
                   help="floating-point type of the network")
    p.add_argument("--threads", type=_positive_int, default=None,
                   help="engine threads (None: OMP_NUM_THREADS or the CPUs available)")
    p.add_argument("--seed", type=int, default=None,
                   help="seed random and np.random (None: not seeded)")
    p.add_argument("--save", default=None,
                   help="write the trained network as network2 JSON to this file (None: not "
                        "saved)")
    args = p.parse_args(argv)
    if args.epochs < 0:
        p.error("--epochs: expected a non-negative int")
    try:
        # every output and input named on the command line is checked before any training
        if args.save is not None:
            from fastnn import _safeio
            _safeio.check_output_file(args.save, "--save", _safeio.starts_with(b'{"sizes"'),
                                      "a network saved by fastnn (network2 JSON)")
        if args.data_path is not None and not os.path.exists(args.data_path):
            raise ValueError(f"--data-path: {args.data_path} does not exist")
        if args.threads:
            set_num_threads(args.threads)
        # only Fashion-MNIST may fall back to the shipped Fashion-MNIST sample
        data = datasets.load(args.dataset, path=args.data_path,
                             allow_sample=args.dataset == "fashion-mnist"
                             and args.data_path is None)
    except (ValueError, TypeError, OSError) as e:
        return user_error("train", e)
    if args.seed is not None:
        random.seed(args.seed)
        np.random.seed(args.seed)

    (x_train, y_train), (x_test, y_test) = data
    if getattr(data, "is_sample", False):
        print(f"Using the shipped Fashion-MNIST sample ({len(x_train)} training, "
              f"{len(x_test)} test images): install the full data with "
              f"`apt-get install dataset-fashion-mnist` or pass --data-path.")
    n_train = 50000 if len(x_train) == 60000 else len(x_train)
    dtype = np.dtype(args.dtype)
    X = datasets.to_array(x_train[:n_train], dtype)
    Xt = datasets.to_array(x_test, dtype)
    if X.shape[1] != args.sizes[0]:
        p.error(f"--sizes: the first size must be {X.shape[1]} (pixels per image), "
                f"got {args.sizes[0]}")
    if args.sizes[-1] != 10:
        p.error(f"--sizes: the last size must be 10 (classes), got {args.sizes[-1]}")
    print(f"fastnn: {args.dataset} ({n_train} training, {len(Xt)} test), sizes {args.sizes}, "
          f"{args.epochs} epochs, mini-batch {args.mini_batch_size}, eta {args.eta}, "
          f"{args.dtype}")
    net = network.Network(args.sizes, dtype=dtype)
    t0 = time.perf_counter()
    with _live_bar(-(-n_train // args.mini_batch_size), args.epochs):
        net.SGD((X, y_train[:n_train].astype(np.int64)), args.epochs, args.mini_batch_size,
                args.eta, test_data=(Xt, y_test.astype(np.int64)))
    elapsed = time.perf_counter() - t0
    correct = net.evaluate((Xt, y_test.astype(np.int64)))
    per_epoch = elapsed / args.epochs if args.epochs else 0.0
    from fastnn import get_num_threads
    print(f"Done: {per_epoch:.3f} s per epoch ({elapsed:.2f} s in all, "
          f"{get_num_threads()} threads), test accuracy {correct} / {len(Xt)} "
          f"= {100.0 * correct / len(Xt):.2f} %")
    if args.save:
        import json
        atomic_write_text(args.save, json.dumps({
            "sizes": net.sizes,
            "weights": [w.astype(np.float64).tolist() for w in net.weights],
            "biases": [b.astype(np.float64).tolist() for b in net.biases],
            "cost": "QuadraticCost"}))
        print(f"Saved to {args.save} (load with fastnn.network2.load)")
    return 0


def user_error(command, e):
    """A user's mistake (a path, a file, an option): one line on stderr, exit code 2."""
    text = " ".join(str(e).split())
    print(f"fastnn {command}: error: {text}", file=sys.stderr)
    return 2


# the optional modules `fastnn sweep` needs, and the extra that installs each
SWEEP_EXTRAS = {"sklearn": "sweep", "joblib": "sweep", "yaml": "sweep", "dask": "dask",
                "distributed": "dask", "matplotlib": "plot"}


def _sweep(rest):
    try:
        from fastnn import sweep
        return sweep.main(rest)
    except ModuleNotFoundError as e:
        top = (e.name or "").split(".")[0]
        if top not in SWEEP_EXTRAS:
            raise
        extra = SWEEP_EXTRAS[top]
        print(f"fastnn sweep: this needs the '{extra}' extra (module {top!r} is not "
              f"installed): pip install 'fastnn[{extra}]'", file=sys.stderr)
        return 2


def main(argv=None):
    from fastnn._version import __version__
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = ("train", "sweep", "config", "bench", "expand-mnist")
    if argv and argv[0] in ("-V", "--version"):
        print(f"fastnn {__version__}")
        return 0
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        print("\ncommands: train, sweep, config, bench, expand-mnist (fastnn COMMAND --help)")
        return 0 if argv else 2
    if argv[0] not in commands:
        print(f"fastnn: unknown command {argv[0]!r}; choose from {', '.join(commands)} "
              f"(fastnn --help)", file=sys.stderr)
        return 2
    cmd, rest = argv[0], argv[1:]
    if cmd == "train":
        return train_main(rest)
    if cmd == "config":
        from fastnn import show_config
        show_config()
        return 0
    if cmd == "expand-mnist":
        from fastnn import expand_mnist
        return expand_mnist.main(rest)
    if cmd == "sweep":
        return _sweep(rest)
    from fastnn import bench
    return bench.main(rest)


if __name__ == "__main__":
    sys.exit(main())

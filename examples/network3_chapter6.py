"""The book's chapter-6 experiments on fastnn: only ``import network3`` became
``from fastnn import network3``.

    python examples/network3_chapter6.py --run conv1            # one run, the book's epochs
    python examples/network3_chapter6.py --run all --epochs 5   # every run, shortened
    python examples/network3_chapter6.py --run conv1 --epochs 1 --train-size 5000 --seed 0

Runs (the book's figure for the best-validation epoch's test accuracy in brackets):
  shallow   FullyConnectedLayer(784, 100) + softmax, eta 0.1, 60 epochs       (97.80 %)
  conv1     one 20-map 5x5 conv-pool layer, then FC 100 + softmax, 60 epochs  (98.78 %)
  conv2     conv1 plus a 40-map 5x5 conv-pool layer, 60 epochs               (99.06 %)
  relu      conv2 with ReLU everywhere, eta 0.03, lmbda 0.1, 60 epochs       (99.23 %)
  expanded  relu on the expanded training data (250,000 images), 60 epochs  (99.37 %)
  dropout   relu's conv layers, two 1000-neuron ReLU layers and the softmax layer with
            dropout 0.5, on the expanded data, 40 epochs                     (99.60 %)

The data: ``--data`` (default: ``../shared/data/mnist.pkl.gz`` beside this repository when it
is there, else the book's ``../data/mnist.pkl.gz``); the expanded data is written beside it
by ``network3.expand_mnist`` when it is missing (``fastnn expand-mnist`` does the same).
"""
import argparse
import os
import time

import numpy as np

from fastnn import network3
from fastnn.network3 import ConvPoolLayer, FullyConnectedLayer, Network, ReLU, SoftmaxLayer

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_MNIST = os.path.join(REPO, os.pardir, "shared", "data", "mnist.pkl.gz")
RUNS = ("shallow", "conv1", "conv2", "relu", "expanded", "dropout")
mini_batch_size = 10


def conv_layers(activation_fn=network3.sigmoid, two=True):
    """The book's conv-pool layers: 20 maps of 5x5 on 28x28, then (two) 40 maps on 12x12."""
    layers = [ConvPoolLayer(image_shape=(mini_batch_size, 1, 28, 28),
                            filter_shape=(20, 1, 5, 5), poolsize=(2, 2),
                            activation_fn=activation_fn)]
    if two:
        layers.append(ConvPoolLayer(image_shape=(mini_batch_size, 20, 12, 12),
                                    filter_shape=(40, 20, 5, 5), poolsize=(2, 2),
                                    activation_fn=activation_fn))
    return layers


def build(run):
    """The network and the SGD hyperparameters (epochs, eta, lmbda) of one run."""
    if run == "shallow":
        return Network([FullyConnectedLayer(n_in=784, n_out=100),
                        SoftmaxLayer(n_in=100, n_out=10)], mini_batch_size), (60, 0.1, 0.0)
    if run == "conv1":
        return Network(conv_layers(two=False) + [
            FullyConnectedLayer(n_in=20 * 12 * 12, n_out=100),
            SoftmaxLayer(n_in=100, n_out=10)], mini_batch_size), (60, 0.1, 0.0)
    if run == "conv2":
        return Network(conv_layers() + [
            FullyConnectedLayer(n_in=40 * 4 * 4, n_out=100),
            SoftmaxLayer(n_in=100, n_out=10)], mini_batch_size), (60, 0.1, 0.0)
    if run in ("relu", "expanded"):
        return Network(conv_layers(ReLU) + [
            FullyConnectedLayer(n_in=40 * 4 * 4, n_out=100, activation_fn=ReLU),
            SoftmaxLayer(n_in=100, n_out=10)], mini_batch_size), (60, 0.03, 0.1)
    return Network(conv_layers(ReLU) + [
        FullyConnectedLayer(n_in=40 * 4 * 4, n_out=1000, activation_fn=ReLU, p_dropout=0.5),
        FullyConnectedLayer(n_in=1000, n_out=1000, activation_fn=ReLU, p_dropout=0.5),
        SoftmaxLayer(n_in=1000, n_out=10, p_dropout=0.5)], mini_batch_size), (40, 0.03, 0.0)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", default="conv1", choices=RUNS + ("all",))
    p.add_argument("--epochs", type=int, default=None,
                   help="epochs per run (default: the book's, 60 or 40)")
    p.add_argument("--train-size", type=int, default=None,
                   help="train on the first N training images only (a shortened run)")
    p.add_argument("--data", default=None, help="Nielsen's mnist.pkl.gz")
    p.add_argument("--seed", type=int, default=None, help="seed np.random (initial weights)")
    args = p.parse_args(argv)
    if args.seed is not None:
        np.random.seed(args.seed)
    data = args.data or (SHARED_MNIST if os.path.isfile(SHARED_MNIST) else network3.BOOK_DATA)
    training_data, validation_data, test_data = network3.load_data_shared(data)
    for run in RUNS if args.run == "all" else (args.run,):
        train = training_data
        if run in ("expanded", "dropout"):
            expanded = os.path.join(os.path.dirname(os.path.abspath(data)),
                                    "mnist_expanded.pkl.gz")
            if not os.path.isfile(expanded):
                network3.expand_mnist(data, expanded)
            train = network3.load_data_shared(expanded)[0]
        if args.train_size:
            train = (train[0][:args.train_size], train[1][:args.train_size])
        net, (epochs, eta, lmbda) = build(run)
        epochs = args.epochs if args.epochs is not None else epochs
        print(f"== {run}: {network3.size(train)} training images, {epochs} epochs, eta {eta}, "
              f"lmbda {lmbda}")
        t0 = time.perf_counter()
        net.SGD(train, epochs, mini_batch_size, eta, validation_data, test_data, lmbda=lmbda)
        elapsed = time.perf_counter() - t0
        print(f"== {run}: {elapsed:.1f} s in all, {elapsed / max(epochs, 1):.1f} s per epoch "
              f"(with the per-epoch validation)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

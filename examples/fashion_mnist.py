"""The TensorFlow/Keras "Basic classification" tutorial (Fashion-MNIST), fastnn-style.

    python examples/fashion_mnist.py               # 10 epochs, as the tutorial
    python examples/fashion_mnist.py --epochs 2 --plot out/

Uses the full Fashion-MNIST when it is installed or can be downloaded (see
fastnn.datasets), else the real 3000-image sample shipped with fastnn.  Prints the test
accuracy and the seconds per epoch (median over the epochs after the first; the first is
reported separately because it includes the engine's set-up).
"""
import argparse
import os
import statistics
import time

import numpy as np

import fastnn
from fastnn import datasets
from fastnn.layers import Dense, Flatten, Softmax
from fastnn.losses import SparseCategoricalCrossentropy

CLASS_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=None, help="np.random seed")
    parser.add_argument("--verbose", type=int, default=1, choices=(0, 1, 2))
    parser.add_argument("--plot", metavar="DIR", default=None,
                        help="save history.png and predictions.png there (needs matplotlib)")
    args = parser.parse_args(argv)
    if args.seed is not None:
        np.random.seed(args.seed)

    data = datasets.load("fashion-mnist", allow_sample=True)
    (train_images, train_labels), (test_images, test_labels) = data
    if getattr(data, "is_sample", False):
        print("Fashion-MNIST not found: using the sample shipped with fastnn "
              f"({len(train_images)} training, {len(test_images)} test images)")

    t0 = time.perf_counter()
    train_images = train_images.astype(np.float32) / np.float32(255.0)
    test_images = test_images.astype(np.float32) / np.float32(255.0)
    setup = time.perf_counter() - t0

    model = fastnn.Sequential([
        Flatten(input_shape=(28, 28)),
        Dense(128, activation="relu"),
        Dense(10),
    ])
    model.compile(optimizer="adam",
                  loss=SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    if args.verbose:
        model.summary()

    t0 = time.perf_counter()
    history = model.fit(train_images, train_labels, epochs=args.epochs,
                        batch_size=args.batch_size, verbose=args.verbose)
    fit_seconds = time.perf_counter() - t0

    test_loss, test_acc = model.evaluate(test_images, test_labels, verbose=2)
    print("\nTest accuracy:", test_acc)

    probability_model = fastnn.Sequential([model, Softmax()])
    predictions = probability_model.predict(test_images)
    print("First test image: predicted %s, true %s"
          % (CLASS_NAMES[int(np.argmax(predictions[0]))], CLASS_NAMES[int(test_labels[0])]))

    secs = history.epoch_seconds
    if secs:
        if len(secs) > 1:
            which = f"median of epochs 2..{len(secs)}; epoch 1 {secs[0]:.3f} s"
            per_epoch = statistics.median(secs[1:])
        else:
            which, per_epoch = "a single epoch, set-up included", secs[0]
        print(f"Seconds per epoch: {per_epoch:.3f} ({which}; whole fit {fit_seconds:.2f} s; "
              f"/255 conversion {setup:.2f} s)")
    print(f"Threads: {fastnn.get_num_threads()}")

    if args.plot:
        from fastnn import plot
        os.makedirs(args.plot, exist_ok=True)
        plot.plot_history(history, path=os.path.join(args.plot, "history.png"))
        plot.plot_predictions(test_images, test_labels, predictions, CLASS_NAMES,
                              path=os.path.join(args.plot, "predictions.png"))
        print(f"Saved {args.plot}/history.png and {args.plot}/predictions.png")
    return test_acc


if __name__ == "__main__":
    main()

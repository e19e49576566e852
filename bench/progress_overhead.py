"""What the live progress bar costs W2 (issue 19 item 7): fit with the bar's thread drawing
~10 times a second against fit with no output, interleaved in one run.

    python bench/progress_overhead.py [--reps 5] [--epochs 3] [--threads N]

W2's model (Flatten, Dense(128, relu), Dense(10), Adam, batch 32, float32) on 60,000 images:
Fashion-MNIST when installed, else the shipped 3,000-image sample tiled 20 times (the time of
an epoch depends on the sizes, not on the pixels).  The live mode is forced (a stdout that
says it is a terminal and throws the text away), so the thread runs exactly as on a terminal.
Each fit is one engine call; its first epoch includes the set-up and is left out.  Prints the
median and minimum epoch time of each mode, their ratios, and the time spent inside the
bar's redraws (the work the bar adds, apart from waking its thread).
"""
import argparse
import io
import statistics
import sys
import time

import numpy as np

from fastnn import datasets
import fastnn.keras as keras


class NullTty(io.TextIOBase):
    encoding = "utf-8"

    def isatty(self):
        return True

    def write(self, s):
        return len(s)


def data():
    loaded = datasets.load("fashion-mnist", allow_sample=True, download=False)
    (x, y), _ = loaded
    source = "Fashion-MNIST"
    if getattr(loaded, "is_sample", False):
        x, y = np.tile(x, (20, 1, 1)), np.tile(y, 20)
        source = f"the {len(loaded[0][0])}-image sample tiled to {len(x)}"
    return (x.astype(np.float32) / np.float32(255)), y, source


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args(argv)
    x, y, source = data()
    np.random.seed(0)
    model = keras.Sequential([keras.Input(shape=(28, 28)), keras.layers.Flatten(),
                              keras.layers.Dense(128, activation="relu"),
                              keras.layers.Dense(10)], n_threads=args.threads)
    model.compile(optimizer="adam",
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    times = {"live": [], "off": []}
    redraws, draw_s, live_s = 0, 0.0, 0.0
    real = sys.stdout
    from fastnn.keras import progress
    for rep in range(args.reps):
        for mode in (("live", "off") if rep % 2 == 0 else ("off", "live")):
            if mode == "live":
                sys.stdout = NullTty()
                before = progress.LiveBar.redraw
                counts = []

                def counting(self, _f=before):
                    t0 = time.perf_counter()
                    try:
                        return _f(self)
                    finally:
                        counts.append(time.perf_counter() - t0)
                progress.LiveBar.redraw = counting
            try:
                hist = model.fit(x, y, epochs=args.epochs, batch_size=32,
                                 verbose=1 if mode == "live" else 0)
            finally:
                sys.stdout = real
                if mode == "live":
                    progress.LiveBar.redraw = before
                    redraws += len(counts)
                    draw_s += sum(counts)
                    live_s += sum(hist.epoch_seconds)
            times[mode] += hist.epoch_seconds[1:]
    live, off = statistics.median(times["live"]), statistics.median(times["off"])
    print(f"W2 model on {source}, batch 32, float32, threads "
          f"{args.threads or 'default'}; {args.reps} fits of {args.epochs} epochs per mode, "
          f"interleaved; first epoch of each fit left out")
    print(f"off : median {off:.4f} s/epoch  (min {min(times['off']):.4f}, "
          f"max {max(times['off']):.4f}, n={len(times['off'])})")
    print(f"live: median {live:.4f} s/epoch  (min {min(times['live']):.4f}, "
          f"max {max(times['live']):.4f}, n={len(times['live'])}), {redraws} redraws")
    print(f"live / off = {live / off:.4f} (medians), {min(times['live']) / min(times['off']):.4f} "
          f"(minima)")
    print(f"time inside redraw: {draw_s * 1e3:.2f} ms of {live_s:.2f} s of live epochs "
          f"({100 * draw_s / live_s:.3f} %), {1e6 * draw_s / max(redraws, 1):.0f} us a redraw")


if __name__ == "__main__":
    main()

"""The live progress bar (issue 19 item 7): drawn from the engine's counter, on a terminal or
in a notebook; one line per epoch elsewhere.  No timing asserts: the thread is waited for by
polling, and the drawing is checked by calling ``redraw`` on counters set by hand."""
import io
import re
import sys
import time

import numpy as np
import pytest

import fastnn.keras as keras
from fastnn.keras import progress


class Tty(io.StringIO):
    encoding = "utf-8"

    def isatty(self):
        return True


def on_screen(text):
    text = re.sub(r"\x1b\[[0-9;]*[mK]", "", text)
    return [line.split("\r")[-1] for line in text.split("\n")]


def test_redraw_reads_the_counter():
    out = Tty()
    counter = np.zeros(2, np.int64)
    bar = progress.LiveBar(counter, epochs=3, steps=10, verbose=1, stream=out, live=True)
    assert bar.live and bar.char == "━"
    bar.epoch_begin(0)
    counter[:] = (0, 4)
    bar.redraw()
    shown = on_screen(out.getvalue())
    assert shown[0] == "Epoch 1/3"
    assert re.match(r"^ 4/10 ━{20} \d+s \d+(us|ms|s)/step$", shown[1]), shown[1]
    # 8 of the 20 cells are drawn in the done colour
    assert "\x1b[32m" + "━" * 8 + "\x1b[0m" in out.getvalue()
    # a counter still showing the previous epoch draws nothing
    n = len(out.getvalue())
    counter[:] = (2, 10)
    bar.redraw()
    assert len(out.getvalue()) == n
    bar.epoch_end(0, 1.0, {"loss": 0.5})
    assert on_screen(out.getvalue())[1] == "10/10 ━━━━━━━━━━━━━━━━━━━━ 1s 100ms/step - loss: 0.5000"
    bar.redraw()                       # between epochs: nothing
    assert out.getvalue().endswith("\n")


def test_the_thread_redraws_while_the_counter_moves():
    out = Tty()
    counter = np.zeros(2, np.int64)
    bar = progress.LiveBar(counter, epochs=1, steps=100, verbose=1, stream=out, live=True)
    bar.epoch_begin(0)
    bar.start()
    try:
        for done in range(1, 4):
            counter[1] = done
            seen = bar.redraws
            deadline = time.monotonic() + 10
            while bar.redraws == seen and time.monotonic() < deadline:
                time.sleep(0.01)
    finally:
        bar.stop()
    assert bar.redraws >= 3
    assert re.search(r"\r  3/100 ", out.getvalue())


def test_where_the_bar_is_live(monkeypatch):
    assert progress.dynamic_display(Tty())
    assert not progress.dynamic_display(io.StringIO())
    monkeypatch.setitem(sys.modules, "ipykernel", object())     # a notebook
    assert progress.dynamic_display(io.StringIO())


def test_fit_publishes_the_engine_counter(monkeypatch):
    """At each epoch's end the engine's counter shows that epoch with all its batches done;
    on a terminal fit runs the live bar, off a terminal it prints Keras' plain lines."""
    seen = []
    real_end = progress.LiveBar.epoch_end

    def spy(self, epoch, seconds, logs):
        seen.append((epoch, tuple(int(v) for v in self.counter), self.live))
        return real_end(self, epoch, seconds, logs)
    monkeypatch.setattr(progress.LiveBar, "epoch_end", spy)
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((50, 4)), rng.integers(0, 2, 50)
    np.random.seed(0)
    model = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(2)])
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    out = Tty()
    monkeypatch.setattr(sys, "stdout", out)
    model.fit(X, y, epochs=3, batch_size=16)
    assert seen == [(0, (0, 4), True), (1, (1, 4), True), (2, (2, 4), True)]
    lines = [l for l in on_screen(out.getvalue()) if l]
    assert lines[0::2] == ["Epoch 1/3", "Epoch 2/3", "Epoch 3/3"]
    assert all(re.match(r"^4/4 ━{20} ", l) for l in lines[1::2])
    plain = io.StringIO()
    monkeypatch.setattr(sys, "stdout", plain)
    seen.clear()
    model.fit(X, y, epochs=1, batch_size=16, initial_epoch=0)
    assert seen == [(0, (0, 4), False)]
    assert "\r" not in plain.getvalue() and "\x1b" not in plain.getvalue()
    assert re.match(r"^Epoch 1/1\n4/4 - \d+s - ", plain.getvalue())


def test_verbose_values():
    assert [progress.check_verbose(v) for v in ("auto", True, False, 0, 1, 2)] == \
        [1, 1, 0, 0, 1, 2]
    for bad in (3, -1, "yes", 1.0, None):
        with pytest.raises(ValueError, match="verbose"):
            progress.check_verbose(bad)


def test_an_interrupted_epoch_ends_its_line():
    out = Tty()
    counter = np.zeros(2, np.int64)
    bar = progress.LiveBar(counter, epochs=2, steps=10, verbose=1, stream=out, live=True)
    bar.epoch_begin(0)
    counter[:] = (0, 3)
    bar.redraw()
    bar.stop()                        # as fit's `finally` does after a KeyboardInterrupt
    assert out.getvalue().endswith("\n")
    n = len(out.getvalue())
    bar.stop()
    assert len(out.getvalue()) == n

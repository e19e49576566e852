"""Keras' progress output: one line per epoch, and a bar redrawn while the epoch runs.

    Epoch 1/10
    1875/1875 ━━━━━━━━━━━━━━━━━━━━ 1s 544us/step - accuracy: 0.8234 - loss: 0.4987

The engine runs a whole ``fit`` without the GIL and publishes ``(epoch running, mini-batches
done in it)`` in a two-int64 array (``fastnn._core.train(..., progress=arr)``).  On a terminal,
or in a notebook (IPython's kernel loaded), ``LiveBar`` reads that array from a Python thread
about 10 times a second and redraws the line with ``\\r``; the engine never takes the GIL for
it.  Elsewhere (a log file, a pipe) only the line at the end of each epoch is printed, as Keras
does.  The running loss and metrics come from the engine at the end of each epoch, so the live
line shows the count, the bar, the time left and the time per step; the epoch's final line adds
the metrics.
"""
import os
import sys
import threading
import time

__all__ = ["check_verbose", "progress_line", "LiveBar", "dynamic_display"]

BAR_WIDTH = 20
REFRESH_SECONDS = 0.1


def check_verbose(verbose):
    """Return 0, 1 or 2 for Keras' ``verbose`` values ('auto', True/False, 0, 1, 2)."""
    if verbose == "auto" and isinstance(verbose, str):
        return 1
    if isinstance(verbose, bool):
        return int(verbose)
    if verbose not in (0, 1, 2) or isinstance(verbose, float):
        raise ValueError(f"verbose: expected 0, 1, 2, True, False or 'auto', got {verbose!r}")
    return int(verbose)


def format_value(v):
    return f"{v:.4f}" if abs(v) > 1e-3 else f"{v:.4e}"


def format_step_time(per_step):
    if per_step >= 1 or per_step == 0:
        return f"{per_step:.0f}s/step"
    if per_step >= 1e-3:
        return f"{per_step * 1e3:.0f}ms/step"
    return f"{per_step * 1e6:.0f}us/step"


def dynamic_display(stream=None):
    """True when ``\\r`` redraws a line: a terminal, or a notebook's output."""
    stream = stream if stream is not None else sys.stdout
    try:
        if stream.isatty():
            return True
    except (AttributeError, ValueError):
        pass
    return "ipykernel" in sys.modules or "PYCHARM_HOSTED" in os.environ


def bar_chars(stream=None):
    """('━', '━') with colours on a terminal that prints it, else ('=', '.')."""
    stream = stream if stream is not None else sys.stdout
    try:
        "━".encode(getattr(stream, "encoding", None) or "ascii")
        return "━"
    except (UnicodeEncodeError, LookupError):
        return "="


def line_bar(verbose, stream=None):
    """The bar character for a one-off line (evaluate, predict): None unless verbose is 1
    and the output redraws."""
    return bar_chars(stream) if verbose == 1 and dynamic_display(stream) else None


def draw_bar(done, total, char, colour):
    full = BAR_WIDTH if total <= 0 else min(BAR_WIDTH, int(BAR_WIDTH * done / total))
    if colour:
        return (f"\x1b[32m{char * full}\x1b[0m" +
                (f"\x1b[37m{char * (BAR_WIDTH - full)}\x1b[0m" if full < BAR_WIDTH else ""))
    return char * full + ("." if char == "=" else " ") * (BAR_WIDTH - full)


def progress_line(steps, seconds, logs, bar=None, colour=False):
    """The line Keras prints at the end of an epoch (``bar`` None: the non-terminal form,
    ``1875/1875 - 2s - 1ms/step - loss: ...``)."""
    metrics = "".join(f" - {k}: {format_value(v)}" for k, v in logs.items())
    per_step = format_step_time(seconds / max(steps, 1))
    if bar:
        return (f"{steps}/{steps} {draw_bar(steps, steps, bar, colour)} {seconds:.0f}s "
                f"{per_step}{metrics}")
    return f"{steps}/{steps} - {seconds:.0f}s - {per_step}{metrics}"


class LiveBar:
    """The progress output of one ``fit``.

    ``counter`` is the engine's progress array; ``epoch_begin(e)`` prints Keras' header,
    ``epoch_end(e, seconds, logs)`` the final line of epoch ``e``.  With ``live`` a daemon
    thread redraws the running epoch's line every ``REFRESH_SECONDS`` from ``counter``.
    All writes go through one lock, so the thread never draws over a final line."""

    def __init__(self, counter, epochs, steps, verbose, stream=None, live=None, headers=True):
        self.counter = counter
        self.epochs = epochs
        self.steps = steps
        self.verbose = verbose
        self.stream = stream if stream is not None else sys.stdout
        self.live = (verbose == 1 and dynamic_display(self.stream)) if live is None else live
        # the bar on a terminal or a notebook; in a log file Keras' plain line
        self.char = bar_chars(self.stream) if verbose == 1 and dynamic_display(self.stream) \
            else None
        self.colour = self.live and self.char == "━"
        self._lock = threading.Lock()
        self._epoch = -1            # the epoch whose header is printed and not yet ended
        self._t0 = time.perf_counter()
        self._stop = threading.Event()
        self._thread = None
        self.redraws = 0
        self.headers = headers      # print Keras' "Epoch 2/10" lines

    def start(self):
        if self.live:
            self._thread = threading.Thread(target=self._run, name="fastnn-progress",
                                            daemon=True)
            self._thread.start()

    def stop(self):
        """Stop the thread; a line left half-drawn (an interrupted epoch) is ended."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with self._lock:
            if self.live and self._epoch >= 0 and self.redraws:
                self._write("\n")
            self._epoch = -1

    def _write(self, text):
        self.stream.write(text)
        self.stream.flush()

    def epoch_begin(self, epoch, label=None):
        """Epoch ``epoch`` of this engine call (the counter's numbering) begins; the header
        shows ``label`` (the epoch in Keras' numbering, ``initial_epoch`` counted)."""
        with self._lock:
            self._epoch = epoch
            self._t0 = time.perf_counter()
            if self.verbose and self.headers:
                self._write(f"Epoch {(epoch if label is None else label) + 1}/{self.epochs}\n")

    def epoch_end(self, epoch, seconds, logs):
        with self._lock:
            self._epoch = -1
            if self.verbose:
                line = progress_line(self.steps, seconds, logs, self.char, self.colour)
                self._write(("\r" + line + "\x1b[K\n") if self.live else line + "\n")

    def clear(self):
        """Erase the live line and draw nothing until the next ``epoch_begin`` (for a caller
        that prints its own line at the end of an epoch, as ``fastnn train`` does)."""
        with self._lock:
            self._epoch = -1
            if self.live:
                self._write("\r\x1b[K")

    def _run(self):
        while not self._stop.wait(REFRESH_SECONDS):
            self.redraw()

    def redraw(self):
        """Draw the running epoch's line from the counter (called by the thread)."""
        with self._lock:
            epoch, done = int(self.counter[0]), int(self.counter[1])
            if self._epoch < 0 or epoch != self._epoch:
                return
            done = min(done, self.steps)
            elapsed = time.perf_counter() - self._t0
            width = len(str(self.steps))
            if done:
                per = elapsed / done
                eta = per * (self.steps - done)
                tail = f" {eta:.0f}s {format_step_time(per)}"
            else:
                tail = ""
            self._write(f"\r{done:>{width}}/{self.steps} "
                        f"{draw_bar(done, self.steps, self.char, self.colour)}{tail}\x1b[K")
            self.redraws += 1

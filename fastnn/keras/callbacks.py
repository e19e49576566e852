"""Keras' callbacks: ``fit(callbacks=[...])``.

The engine runs every epoch of a ``fit`` in one call and hands control back to Python between
epochs (with the GIL, the weights written back).  There ``fit`` calls ``on_epoch_end(epoch,
logs)`` and then ``on_epoch_begin(epoch + 1)`` of every callback; what they change reaches the
engine before the next epoch starts: ``model.stop_training = True`` stops the call, a new
``model.optimizer.learning_rate`` becomes the engine's learning rate, and weights set with
``model.set_weights`` are the ones the next epoch trains.

Batch-level hooks (``on_train_batch_begin``/``on_train_batch_end``, or the older
``on_batch_begin``/``on_batch_end``) need Python between mini-batches.  When a callback
overrides one of them, ``fit`` takes a slower path: one engine call per mini-batch, on the same
mini-batches in the same order, with the same optimizer state, so it trains the same weights
(the dropout masks differ).  ``logs`` there holds the running ``loss`` (and ``accuracy``) of the
epoch so far, as in Keras.
"""
import csv
import math
import os

import numpy as np

__all__ = ["Callback", "CallbackList", "History", "EarlyStopping", "ModelCheckpoint",
           "ReduceLROnPlateau", "TerminateOnNaN", "CSVLogger", "LambdaCallback",
           "LearningRateScheduler"]

BATCH_HOOKS = ("on_train_batch_begin", "on_train_batch_end", "on_batch_begin", "on_batch_end")


class Callback:
    """The base class: override the hooks you need.  ``self.model`` is the model being
    trained, ``self.params`` holds ``epochs``, ``steps`` and ``verbose``."""

    def __init__(self):
        self.model = None
        self.params = {}

    def set_model(self, model):
        self.model = model

    def set_params(self, params):
        self.params = dict(params)

    def on_train_begin(self, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass

    def on_epoch_begin(self, epoch, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        pass

    def on_train_batch_begin(self, batch, logs=None):
        self.on_batch_begin(batch, logs)

    def on_train_batch_end(self, batch, logs=None):
        self.on_batch_end(batch, logs)

    def on_batch_begin(self, batch, logs=None):
        pass

    def on_batch_end(self, batch, logs=None):
        pass


def wants_batches(callback):
    """True when ``callback`` overrides a batch-level hook (a LambdaCallback: was given one)."""
    if isinstance(callback, LambdaCallback):
        return (callback._on_train_batch_begin is not None or
                callback._on_train_batch_end is not None)
    cls = type(callback)
    return any(getattr(cls, h) is not getattr(Callback, h) for h in BATCH_HOOKS)


class CallbackList:
    """The callbacks of one ``fit``, called in order."""

    def __init__(self, callbacks, model, params):
        if callbacks is None:
            callbacks = []
        if isinstance(callbacks, Callback) or not hasattr(callbacks, "__iter__"):
            raise TypeError(f"callbacks: expected a list of keras.callbacks.Callback, got "
                            f"{type(callbacks).__name__}")
        self.callbacks = list(callbacks)
        for i, c in enumerate(self.callbacks):
            if not isinstance(c, Callback):
                raise TypeError(f"callbacks[{i}]: expected a keras.callbacks.Callback, got "
                                f"{type(c).__name__} ({c!r})")
        for c in self.callbacks:
            c.set_model(model)
            c.set_params(params)

    @property
    def batch_level(self):
        return any(wants_batches(c) for c in self.callbacks)

    def call(self, hook, *args):
        for c in self.callbacks:
            getattr(c, hook)(*args)


class History(Callback):
    """What ``fit`` returns: ``history`` maps 'loss', 'accuracy', 'val_loss', ... to one value
    per epoch; ``epoch`` lists the epoch indices and ``epoch_seconds`` the wall time of each
    epoch (the first includes the engine's set-up)."""

    def __init__(self, model=None, params=None):
        super().__init__()
        self.model = model
        self.params = dict(params or {})
        self.history = {}
        self.epoch = []
        self.epoch_seconds = []

    def on_train_begin(self, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        self._record(epoch, logs or {})

    def _record(self, epoch, logs):
        self.epoch.append(epoch)
        for k, v in logs.items():
            self.history.setdefault(k, []).append(v)

    def __repr__(self):
        return f"<History epochs={len(self.epoch)} keys={list(self.history)}>"


def _mode_op(mode, monitor, who):
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"mode: expected 'auto', 'min' or 'max', got {mode!r}")
    if mode == "auto":
        m = monitor.lower()
        mode = "max" if ("acc" in m or m.startswith("fmeasure") or "auc" in m) else "min"
    return mode


def _check_monitor(monitor):
    if not isinstance(monitor, str):
        raise TypeError(f"monitor: expected a metric name such as 'val_loss', got "
                        f"{type(monitor).__name__}")
    return monitor


class _Monitor(Callback):
    """What EarlyStopping, ModelCheckpoint and ReduceLROnPlateau share: a monitored value,
    a direction and a ``min_delta``."""

    def __init__(self, monitor, mode, min_delta):
        super().__init__()
        self.monitor = _check_monitor(monitor)
        self.mode = _mode_op(mode, monitor, type(self).__name__)
        self.min_delta = abs(float(min_delta))

    def _improved(self, value, best):
        if best is None:
            return True
        if self.mode == "min":
            return value < best - self.min_delta
        return value > best + self.min_delta

    def _value(self, logs):
        logs = logs or {}
        if self.monitor not in logs:
            raise ValueError(f"monitor: {type(self).__name__} watches {self.monitor!r}, which "
                             f"this fit does not report; available: {', '.join(logs) or 'none'} "
                             f"(val_* needs validation_data or validation_split)")
        return float(logs[self.monitor])


class EarlyStopping(_Monitor):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience``
    epochs; with ``restore_best_weights`` put back the best epoch's weights at the end."""

    def __init__(self, monitor="val_loss", min_delta=0, patience=0, verbose=0, mode="auto",
                 baseline=None, restore_best_weights=False, start_from_epoch=0):
        super().__init__(monitor, mode, min_delta)
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
            raise ValueError(f"patience: expected an int >= 0, got {patience!r}")
        self.patience = patience
        self.verbose = verbose
        self.baseline = baseline
        self.restore_best_weights = bool(restore_best_weights)
        self.start_from_epoch = start_from_epoch
        self.stopped_epoch = 0
        self.best_epoch = 0
        self.best_weights = None

    def on_train_begin(self, logs=None):
        self.wait = 0
        self.stopped_epoch = 0
        self.best = None
        self.best_weights = None
        self.best_epoch = 0

    def on_epoch_end(self, epoch, logs=None):
        if epoch < self.start_from_epoch:
            return
        value = self._value(logs)
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = self.model.get_weights()
        self.wait += 1
        if self._improved(value, self.best):
            self.best = value
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._improved(value, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose:
                print(f"Restoring model weights from the end of the best epoch: "
                      f"{self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)


class ModelCheckpoint(_Monitor):
    """Save the model (or its weights) after each epoch; with ``save_best_only`` only when
    ``monitor`` improved.  ``filepath`` may hold ``{epoch:02d}`` and ``{val_loss:.2f}``-style
    fields; it must end in ``.keras`` (``.weights.h5`` with ``save_weights_only``), or in
    ``.npz`` for fastnn's own format."""

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False,
                 save_weights_only=False, mode="auto", save_freq="epoch",
                 initial_value_threshold=None):
        super().__init__(monitor, mode, 0)
        self.filepath = os.fspath(filepath)
        if save_weights_only and not self.filepath.endswith(".weights.h5"):
            raise ValueError(f"filepath: with save_weights_only=True it must end in "
                             f".weights.h5, got {self.filepath!r}")
        if not save_weights_only and not self.filepath.endswith((".keras", ".npz")):
            raise ValueError(f"filepath: expected a name ending in .keras (or .npz for "
                             f"fastnn's format), got {self.filepath!r}")
        if save_freq != "epoch":
            raise ValueError(f"save_freq: only 'epoch' is supported (the engine runs whole "
                             f"epochs), got {save_freq!r}")
        self.verbose = verbose
        self.save_best_only = bool(save_best_only)
        self.save_weights_only = bool(save_weights_only)
        self.best = initial_value_threshold

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        path = self.filepath.format(epoch=epoch + 1, **logs)
        if self.save_best_only:
            value = self._value(logs)
            if not self._improved(value, self.best):
                return
            if self.verbose:
                print(f"\nEpoch {epoch + 1}: {self.monitor} improved from {self.best} to "
                      f"{value:.5f}, saving model to {path}")
            self.best = value
        if self.save_weights_only:
            self.model.save_weights(path)
        else:
            self.model.save(path)


class ReduceLROnPlateau(_Monitor):
    """Multiply the learning rate by ``factor`` when ``monitor`` has not improved for
    ``patience`` epochs (then wait ``cooldown`` epochs); never below ``min_lr``."""

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto",
                 min_delta=1e-4, cooldown=0, min_lr=0.0):
        super().__init__(monitor, mode, min_delta)
        if not 0 <= factor < 1:
            raise ValueError(f"factor: expected a number in [0, 1), got {factor!r}")
        self.factor = float(factor)
        self.patience = patience
        self.verbose = verbose
        self.cooldown = cooldown
        self.min_lr = float(min_lr)

    def on_train_begin(self, logs=None):
        self.best = None
        self.wait = 0
        self.cooldown_counter = 0

    def on_epoch_end(self, epoch, logs=None):
        value = self._value(logs)
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self._improved(value, self.best):
            self.best = value
            self.wait = 0
            return
        if self.cooldown_counter > 0:
            return
        self.wait += 1
        if self.wait >= self.patience:
            opt = self.model.optimizer
            old = float(opt.learning_rate)
            if old > self.min_lr:
                new = max(old * self.factor, self.min_lr)
                opt.learning_rate = new
                if self.verbose:
                    print(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to "
                          f"{new}.")
                self.cooldown_counter = self.cooldown
                self.wait = 0


class LearningRateScheduler(Callback):
    """Set the learning rate to ``schedule(epoch, lr)`` before each epoch."""

    def __init__(self, schedule, verbose=0):
        super().__init__()
        if not callable(schedule):
            raise TypeError(f"schedule: expected a function (epoch, lr) -> lr, got "
                            f"{type(schedule).__name__}")
        self.schedule = schedule
        self.verbose = verbose

    def on_epoch_begin(self, epoch, logs=None):
        lr = float(self.schedule(epoch, float(self.model.optimizer.learning_rate)))
        if not math.isfinite(lr) or lr < 0:
            raise ValueError(f"schedule: expected a finite learning rate >= 0, got {lr!r} for "
                             f"epoch {epoch}")
        self.model.optimizer.learning_rate = lr
        if self.verbose:
            print(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to {lr}.")


class TerminateOnNaN(Callback):
    """Stop training when the loss becomes NaN or infinite."""

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(loss):
            print(f"Epoch {epoch + 1}: Invalid loss, terminating training")
            self.model.stop_training = True


class CSVLogger(Callback):
    """Write ``epoch`` and the logs of each epoch as a row of a CSV file."""

    def __init__(self, filename, separator=",", append=False):
        super().__init__()
        self.filename = os.fspath(filename)
        self.sep = separator
        self.append = bool(append)
        self._file = None
        self._writer = None
        self.keys = None

    def on_train_begin(self, logs=None):
        exists = self.append and os.path.exists(self.filename) and \
            os.path.getsize(self.filename) > 0
        self._file = open(self.filename, "a" if self.append else "w", newline="")
        self._header_done = exists
        self._writer = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs)
        if self._writer is None:
            self._writer = csv.DictWriter(self._file, fieldnames=["epoch"] + self.keys,
                                          delimiter=self.sep)
            if not self._header_done:
                self._writer.writeheader()
        row = {"epoch": epoch}
        row.update({k: logs.get(k, "NA") for k in self.keys})
        self._writer.writerow(row)
        self._file.flush()

    def on_train_end(self, logs=None):
        if self._file is not None:
            self._file.close()
            self._file = None
        self._writer = None


class LambdaCallback(Callback):
    """A callback from plain functions: ``LambdaCallback(on_epoch_end=lambda epoch, logs:
    ...)``; ``on_train_begin``/``on_train_end`` take ``logs``, the batch hooks
    ``(batch, logs)``."""

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_train_begin=None,
                 on_train_end=None, on_train_batch_begin=None, on_train_batch_end=None,
                 **kwargs):
        super().__init__()
        for name, fn in (("on_epoch_begin", on_epoch_begin), ("on_epoch_end", on_epoch_end),
                         ("on_train_begin", on_train_begin), ("on_train_end", on_train_end)):
            if fn is not None:
                if not callable(fn):
                    raise TypeError(f"{name}: expected a function, got {type(fn).__name__}")
                setattr(self, name, fn)
        self._on_train_batch_begin = on_train_batch_begin or kwargs.get("on_batch_begin")
        self._on_train_batch_end = on_train_batch_end or kwargs.get("on_batch_end")
        unknown = set(kwargs) - {"on_batch_begin", "on_batch_end"}
        if unknown:
            raise TypeError(f"LambdaCallback: unexpected argument(s) {sorted(unknown)}")

    def on_train_batch_begin(self, batch, logs=None):
        if self._on_train_batch_begin is not None:
            self._on_train_batch_begin(batch, logs)

    def on_train_batch_end(self, batch, logs=None):
        if self._on_train_batch_end is not None:
            self._on_train_batch_end(batch, logs)

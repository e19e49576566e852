"""A Keras-style ``Sequential`` model: a thin front door over the compiled engine.

    import fastnn
    from fastnn.layers import Flatten, Dense, Softmax
    from fastnn.losses import SparseCategoricalCrossentropy

    model = fastnn.Sequential([Flatten(input_shape=(28, 28)), Dense(128, activation='relu'),
                               Dense(10)])
    model.compile(optimizer='adam', loss=SparseCategoricalCrossentropy(from_logits=True),
                  metrics=['accuracy'])
    model.fit(train_images / 255.0, train_labels, epochs=10)
    test_loss, test_acc = model.evaluate(test_images / 255.0, test_labels, verbose=2)
    probability_model = fastnn.Sequential([model, Softmax()])
    predictions = probability_model.predict(test_images / 255.0)

``fit`` is one engine call for all its epochs (shuffling, mini-batches, forward, backward, the
Adam update and the validation pass all run in compiled code); the per-epoch callback only
prints and records the numbers the engine reports.

What the engine can run, and therefore what this front door accepts: ``Input``/``Flatten``
first, then ``Dense`` layers (activations linear, relu, sigmoid, tanh; softmax on the last
one), ``Dropout`` after the hidden ``Dense`` layers (one rate for all of them when training),
and ``Softmax`` layers at the end.  Anything else raises a ValueError saying why.

Saved files (``model.save(path)``, ``fastnn.load_model(path)``) are ``.npz`` archives, written
atomically, that numpy reads without pickle:

- ``config``: a 0-d string array holding JSON: ``{"format": "fastnn.keras.Sequential",
  "format_version": 1, "fastnn_version", "name", "dtype", "input_shape", "built",
  "layers": [{"class_name": "Dense", "config": {...}}, ...], "compile": null or
  {"optimizer": {"class_name", "config", "iterations"}, "loss": {"class_name", "config"},
  "metrics": [...]}}``
- ``kernel_<l>`` ``(n_in, units)`` and ``bias_<l>`` ``(units,)`` of the l-th Dense layer (Keras'
  layout, the model's dtype), present when the model is built;
- ``optimizer_<s1|s2>_<kernel|bias>_<l>``: the optimizer state (momentum velocity, Adam's m
  and v) in the same layout, present when the model has been trained.
"""
import json
import math
import os
import sys
import time

import numpy as np

from fastnn import _core, _safeio, losses as _losses, optimizers as _optimizers
from fastnn._version import __version__
from fastnn.layers import (LAYER_CLASSES, Dense, Dropout, Flatten, Input, Layer, Softmax,
                           _auto_name)

__all__ = ["Sequential", "History", "load_model"]

FORMAT = "fastnn.keras.Sequential"
FORMAT_VERSION = 1
_ACCURACY_NAMES = ("accuracy", "acc", "sparse_categorical_accuracy", "categorical_accuracy")
# a Dense layer's activation name -> the engine table's name (the same, but Keras' linear)
_ENGINE_ACT = {k: "identity" if k == "linear" else k for k in _core.ACTIVATIONS}


class NotCompiledError(RuntimeError, ValueError):
    """``fit``/``evaluate`` before ``compile`` (a RuntimeError, as in Keras, and a
    ValueError, as every other bad call here)."""


class History:
    """What ``fit`` returns: ``history`` maps 'loss', 'accuracy', 'val_loss',
    'val_accuracy' to one value per epoch; ``epoch`` lists the epoch indices and
    ``epoch_seconds`` the wall time of each epoch (the first includes the engine's set-up)."""

    def __init__(self, model=None, params=None):
        self.model = model
        self.params = dict(params or {})
        self.history = {}
        self.epoch = []
        self.epoch_seconds = []

    def _record(self, epoch, logs):
        self.epoch.append(epoch)
        for k, v in logs.items():
            self.history.setdefault(k, []).append(v)

    def __repr__(self):
        return f"<History epochs={len(self.epoch)} keys={list(self.history)}>"


# ---------------------------------------------------------------------------------------------
# Keras' progress line: "1875/1875 - 2s - 1ms/step - accuracy: 0.8234 - loss: 0.4987"

def _format_value(v):
    return f"{v:.4f}" if abs(v) > 1e-3 else f"{v:.4e}"


def _format_time(per_step):
    if per_step >= 1 or per_step == 0:
        return f"{per_step:.0f}s/step"
    if per_step >= 1e-3:
        return f"{per_step * 1e3:.0f}ms/step"
    return f"{per_step * 1e6:.0f}us/step"


def _progress_line(steps, seconds, logs, bar):
    metrics = "".join(f" - {k}: {_format_value(v)}" for k, v in logs.items())
    per_step = _format_time(seconds / max(steps, 1))
    if bar:
        return f"{steps}/{steps} {bar * 20} {seconds:.0f}s {per_step}{metrics}"
    return f"{steps}/{steps} - {seconds:.0f}s - {per_step}{metrics}"


def _bar_char():
    """'━' on a terminal that can print it, '=' on another terminal, None when not a tty."""
    out = sys.stdout
    try:
        if not out.isatty():
            return None
    except (AttributeError, ValueError):
        return None
    try:
        "━".encode(getattr(out, "encoding", None) or "ascii")
        return "━"
    except (UnicodeEncodeError, LookupError):
        return "="


def _check_verbose(verbose):
    if verbose == "auto":
        return 1
    if isinstance(verbose, bool) or verbose not in (0, 1, 2):
        raise ValueError(f"verbose: expected 0, 1, 2 or 'auto', got {verbose!r}")
    return int(verbose)


def _softmax_rows(a):
    z = a - a.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


# ---------------------------------------------------------------------------------------------

class _Structure:
    """The engine's reading of a layer list (see ``Sequential._structure``)."""

    def __init__(self, input_shape, flatten, denses, dropouts, trailing_softmax):
        self.input_shape = input_shape        # one example's shape, or None
        self.flatten = flatten                # a Flatten (or Input) before the first Dense
        self.denses = denses                  # the Dense layers in order
        self.dropouts = dropouts              # [(index of the Dense before it, rate)]
        self.trailing_softmax = trailing_softmax


class Sequential:
    """A linear stack of layers trained by the engine in one call per ``fit``.

    ``layers`` may hold layers from ``fastnn.layers`` and other ``Sequential`` models (whose
    layers, and so weights, are shared, as in Keras).  ``dtype`` is float32 by default (a model
    built on another model takes that model's dtype); ``device`` ('cpu' or 'cuda') and
    ``n_threads`` are passed to the engine.
    """

    def __init__(self, layers=None, name=None, *, dtype=None, device=None, n_threads=None):
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name: expected a string, got {type(name).__name__}")
        self.name = name if name is not None else _auto_name("sequential")
        self._dtype = None if dtype is None else _core.check_dtype(dtype)
        if device is not None:
            _core.resolve_device(device)
        self.device = device
        if n_threads is not None:
            _core.check_int(n_threads, "n_threads", 1)
            _core.check_n_threads(n_threads)
        self.n_threads = n_threads
        self._items = []
        self._data_input_shape = None     # the example shape seen first, when none was given
        self.optimizer = None
        self.loss = None
        self.compiled_metrics = []
        self.history = None
        self._guard = _core.TrainingGuard()
        if layers is not None:
            if isinstance(layers, (Layer, Sequential)) or not hasattr(layers, "__iter__"):
                raise TypeError(f"layers: expected a list of layers, got "
                                f"{type(layers).__name__}")
            for layer in layers:
                self.add(layer)

    # -- the layer list -------------------------------------------------------------------------
    def add(self, layer):
        """Append a layer (or a whole Sequential model) to the stack."""
        if layer is self:
            raise ValueError("layer: a model cannot contain itself")
        if not isinstance(layer, (Layer, Sequential)):
            raise TypeError(f"layer: expected a fastnn.layers layer or a Sequential model, got "
                            f"{type(layer).__name__} ({layer!r})")
        if isinstance(layer, Sequential) and self in layer._all_models():
            raise ValueError("layer: a model cannot contain itself")
        old = list(self._items)
        self._items.append(layer)
        try:
            self._structure()
            self._dtype_now()
        except (TypeError, ValueError):
            self._items = old
            raise

    def pop(self):
        """Remove the last layer."""
        if not self._items:
            raise ValueError("pop: the model has no layers")
        self._items.pop()

    def _all_models(self):
        out = [self]
        for item in self._items:
            if isinstance(item, Sequential):
                out += item._all_models()
        return out

    @property
    def layers(self):
        """The layers, nested models expanded in place."""
        out = []
        for item in self._items:
            out += item.layers if isinstance(item, Sequential) else [item]
        return out

    def _dtype_now(self):
        inner = [m._dtype_now() for m in self._items if isinstance(m, Sequential)]
        if self._dtype is not None:
            for d in inner:
                if d != self._dtype:
                    raise ValueError(f"dtype: this model is {self._dtype} but a model inside it "
                                     f"is {d}; give both the same dtype")
            return self._dtype
        if inner:
            return inner[0]
        return np.dtype(np.float32)

    @property
    def dtype(self):
        return self._dtype_now()

    def _structure(self):
        """Check the layer order and return a _Structure; ValueError names the problem."""
        input_shape, flatten = None, False
        denses, dropouts, trailing = [], [], 0
        for pos, layer in enumerate(self.layers):
            where = f"layers[{pos}] ({layer.name})"
            if isinstance(layer, Input):
                if pos != 0:
                    raise ValueError(f"{where}: Input must be the first layer")
                input_shape = layer.input_shape
                flatten = True
            elif isinstance(layer, Flatten):
                if denses:
                    raise ValueError(f"{where}: Flatten must come before the first Dense (the "
                                     f"engine's Dense layers work on vectors)")
                if layer.input_shape is not None:
                    if input_shape is not None and input_shape != layer.input_shape:
                        raise ValueError(f"{where}: input_shape {layer.input_shape} does not "
                                         f"match the earlier {input_shape}")
                    input_shape = layer.input_shape
                flatten = True
            elif isinstance(layer, Dense):
                if trailing:
                    raise ValueError(f"{where}: Softmax is only allowed after the last Dense")
                if layer.input_shape is not None:
                    n_prev = (denses[-1].units if denses else
                              (math.prod(input_shape) if input_shape is not None else None))
                    if n_prev is not None and n_prev != layer.input_shape[0]:
                        raise ValueError(f"{where}: input_shape {layer.input_shape} does not "
                                         f"match the {n_prev} values coming in")
                    if input_shape is None and not denses:
                        input_shape = layer.input_shape
                if denses and denses[-1].activation == "softmax":
                    raise ValueError(f"layers: softmax is only allowed on the last Dense "
                                     f"(the engine's softmax is an output activation), got it "
                                     f"on {denses[-1].name}")
                denses.append(layer)
            elif isinstance(layer, Dropout):
                if trailing:
                    raise ValueError(f"{where}: Dropout after Softmax is not supported")
                dropouts.append((len(denses) - 1, layer.rate))
            elif isinstance(layer, Softmax):
                if not denses:
                    raise ValueError(f"{where}: Softmax needs a Dense layer before it")
                trailing += 1
            else:
                raise TypeError(f"{where}: unsupported layer type {type(layer).__name__}")
        return _Structure(input_shape, flatten, denses, dropouts, trailing)

    def _known_input_shape(self, st=None):
        st = st or self._structure()
        if st.input_shape is not None:
            return st.input_shape
        if self._data_input_shape is not None:
            return self._data_input_shape
        if st.denses and st.denses[0].built and not st.flatten:
            return (st.denses[0].n_in,)
        return None

    # -- building ---------------------------------------------------------------------------------
    @property
    def built(self):
        st = self._structure()
        return bool(st.denses) and all(d.built for d in st.denses)

    def build(self, input_shape=None):
        """Create the weights for examples of ``input_shape`` (e.g. (28, 28); a leading
        batch dimension None is dropped), or of the shape the layers already give."""
        st = self._structure()
        if input_shape is not None:
            if isinstance(input_shape, (tuple, list)) and len(input_shape) and \
                    input_shape[0] is None:
                input_shape = tuple(input_shape[1:])
            from fastnn.layers import _check_shape
            input_shape = _check_shape(input_shape, "input_shape")
            known = self._known_input_shape(st)
            if known is not None and known != input_shape:
                raise ValueError(f"input_shape: the model takes examples of shape {known}, got "
                                 f"{input_shape}")
            if not st.flatten and len(input_shape) != 1:
                raise ValueError(f"input_shape: without Flatten the model takes vectors (n_in,), "
                                 f"got {input_shape}; add Flatten() as the first layer")
            if st.input_shape is None:
                self._data_input_shape = input_shape
        shape = self._known_input_shape(st)
        if shape is None:
            raise ValueError("input_shape: the input size is not known yet; pass "
                             "input_shape=..., give Flatten/Dense an input_shape, or call fit")
        self._build_layers(st, math.prod(shape))
        return self

    def _build_layers(self, st, n_in):
        if not st.denses:
            raise ValueError("layers: expected at least one Dense layer, got none")
        dtype = self._dtype_now()
        for d in st.denses:
            if not d.built:
                d.build(n_in, dtype)
            elif d.n_in != n_in:
                raise ValueError(f"{d.name}: built for {d.n_in} inputs, but {n_in} values "
                                 f"come in")
            d._cast(dtype)
            n_in = d.units

    def _inputs(self, x, name, st):
        """Return x as a C-contiguous (n, n_in) array of the model's dtype; build the layers
        the first time the input size is seen."""
        arr = np.asarray(x)
        if arr.dtype == object or arr.dtype.kind not in "biuf":
            raise TypeError(f"{name}: expected a numeric array (uint8 or float), got dtype "
                            f"{arr.dtype}")
        shape = self._known_input_shape(st)
        if arr.ndim < 2:
            want = f"(n, {', '.join(map(str, shape))})" if shape else "(n, ...)"
            raise ValueError(f"{name}: expected an array of examples {want}, got shape "
                             f"{arr.shape}")
        if not st.flatten and arr.ndim != 2:
            raise ValueError(f"{name}: the model has no Flatten layer, so it takes vectors "
                             f"(n, features); got shape {arr.shape} (add Flatten() first)")
        if shape is not None and tuple(arr.shape[1:]) != tuple(shape):
            raise ValueError(f"{name}: expected examples of shape {tuple(shape)}, i.e. an "
                             f"array ({len(arr)}, {', '.join(map(str, shape))}), got "
                             f"{arr.shape}")
        self._build_layers(st, int(math.prod(arr.shape[1:])))
        if shape is None:
            self._data_input_shape = tuple(int(s) for s in arr.shape[1:])
        X = np.ascontiguousarray(arr.reshape(arr.shape[0], -1), dtype=self._dtype_now())
        if X.size and not np.isfinite(X).all():
            raise ValueError(f"{name}: expected finite values, got NaN or Inf")
        return X

    # -- the engine's view --------------------------------------------------------------------------
    def _params(self, st):
        return [d.W for d in st.denses], [d.b.reshape(-1) for d in st.denses]

    def _predict_acts(self, st):
        """(engine activations, Softmax layers left to apply in numpy)."""
        acts = [_ENGINE_ACT[d.activation] for d in st.denses]
        left = st.trailing_softmax
        if left and acts[-1] == "identity":
            acts[-1], left = "softmax", left - 1
        return acts, left

    def _train_plan(self, st):
        """(activations, cost, cost_scale) of the compiled loss on this model."""
        acts = [_ENGINE_ACT[d.activation] for d in st.denses]
        out_act, cost, scale = self.loss.plan(st.denses[-1].activation, st.trailing_softmax,
                                              st.denses[-1].units)
        acts[-1] = _ENGINE_ACT.get(out_act, out_act)
        return acts, cost, scale

    def _dropout_rate(self, st):
        drops = [(i, r) for i, r in st.dropouts if r > 0]
        if not drops:
            return 0.0
        rates = sorted({r for _, r in drops})
        hidden = list(range(len(st.denses) - 1))
        if len(rates) != 1 or sorted(i for i, _ in drops) != hidden:
            where = ", ".join(f"after {'the input' if i < 0 else st.denses[i].name} "
                              f"(rate {r})" for i, r in drops)
            raise ValueError(
                f"layers: the engine applies one dropout rate to every hidden Dense layer, so "
                f"each hidden Dense must be followed by exactly one Dropout of the same rate, "
                f"and none may follow the input or the last Dense; got Dropout {where} with "
                f"{len(hidden)} hidden Dense layer(s)")
        return rates[0]

    def _require_compiled(self, what):
        if self.loss is None or self.optimizer is None:
            raise NotCompiledError(f"{what}: the model must be compiled first: call "
                               f"model.compile(optimizer='adam', loss=..., "
                               f"metrics=['accuracy'])")

    # -- compile / fit / evaluate / predict ----------------------------------------------------------
    def compile(self, optimizer="adam", loss=None, metrics=None):
        """Set the optimizer ('adam', 'sgd' or a fastnn.optimizers instance), the loss (a
        name or a fastnn.losses instance) and the metrics (None or ['accuracy'])."""
        opt = _optimizers.get(optimizer)
        if loss is None:
            raise ValueError("loss: expected a loss such as 'sparse_categorical_crossentropy' "
                             "or fastnn.losses.SparseCategoricalCrossentropy(from_logits=True), "
                             "got None")
        lossobj = _losses.get(loss)
        if metrics is None:
            metrics = []
        if isinstance(metrics, str):
            metrics = [metrics]
        if not isinstance(metrics, (list, tuple)):
            raise TypeError(f"metrics: expected a list such as ['accuracy'], got "
                            f"{type(metrics).__name__}")
        for m in metrics:
            if m not in _ACCURACY_NAMES:
                raise ValueError(f"metrics: expected names among {', '.join(_ACCURACY_NAMES)}, "
                                 f"got {m!r}")
        st = self._structure()
        if st.denses:     # check the combination now; the input size may come later
            lossobj.plan(st.denses[-1].activation, st.trailing_softmax, st.denses[-1].units)
            self._dropout_rate(st)
        self.optimizer, self.loss = opt, lossobj
        self.compiled_metrics = ["accuracy"] if metrics else []

    @property
    def metrics_names(self):
        return ["loss"] + self.compiled_metrics

    def _check_accuracy(self, st):
        if self.compiled_metrics and st.denses[-1].units < 2:
            raise ValueError("metrics: 'accuracy' here is the argmax accuracy and needs at "
                             "least 2 output units; compile without metrics for one output")

    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto",
            validation_data=None, validation_split=0.0, shuffle=True):
        """Train for ``epochs`` epochs in one engine call (one per 16 MiB of example orders);
        return a History.

        Each epoch the examples are shuffled with ``np.random.permutation`` (the orders are
        drawn a chunk of epochs at a time, the first chunk before training starts; then, with
        dropout, one ``np.random.randint`` draws the engine's dropout seed), cut into
        mini-batches of ``batch_size`` (32; the last may be short) and each mini-batch takes
        one optimizer step.  The reported ``loss`` and
        ``accuracy`` are running values over the epoch's mini-batches (as Keras reports them);
        ``val_loss``/``val_accuracy`` use the weights at the end of the epoch.
        ``validation_split`` holds out the last fraction of ``x``/``y`` (before shuffling)."""
        self._require_compiled("fit")
        if x is None or y is None:
            raise ValueError("x, y: expected training examples and their labels, got None")
        epochs = _core.check_int(epochs, "epochs", 0)
        batch_size = 32 if batch_size is None else _core.check_int(batch_size, "batch_size", 1)
        verbose = _check_verbose(verbose)
        validation_split = _core.check_float(validation_split, "validation_split", 0.0, 1.0,
                                             max_open=True)
        if not isinstance(shuffle, (bool, np.bool_)):
            raise TypeError(f"shuffle: expected True or False, got {shuffle!r}")
        with self._guard:
            st = self._structure()
            self._check_accuracy(st)
            acts, cost, scale = self._train_plan(st)
            dropout = self._dropout_rate(st)
            X = self._inputs(x, "x", st)
            n_out = st.denses[-1].units
            dtype = self._dtype_now()
            ylen = len(np.asarray(y)) if np.ndim(y) else 0
            if ylen != len(X):
                raise ValueError(f"x, y: expected as many labels as examples, got {len(X)} "
                                 f"examples and {ylen} labels")
            Y = self.loss.targets(y, len(X), n_out, dtype, "y")
            if validation_split:
                if validation_data is not None:
                    raise ValueError("validation_split, validation_data: give one of them, "
                                     "got both")
                cut = int(math.floor(len(X) * (1.0 - validation_split)))
                evald = (X[cut:], Y[cut:])
                X, Y = X[:cut], Y[:cut]
                if len(evald[0]) == 0:
                    raise ValueError(f"validation_split: {validation_split} of {len(X)} "
                                     f"examples leaves no validation examples")
            elif validation_data is not None:
                if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                    raise ValueError("validation_data: expected an (x_val, y_val) pair")
                vx = self._inputs(validation_data[0], "validation_data x", st)
                vy = validation_data[1]
                vlen = len(np.asarray(vy)) if np.ndim(vy) else 0
                if vlen != len(vx):
                    raise ValueError(f"validation_data: expected as many labels as examples, "
                                     f"got {len(vx)} examples and {vlen} labels")
                evald = (vx, self.loss.targets(vy, len(vx), n_out, dtype, "validation_data y"))
                if len(vx) == 0:
                    evald = None
            else:
                evald = None
            n = len(X)
            if n == 0:
                raise ValueError("x: expected at least one training example, got 0")
            steps = (n + batch_size - 1) // batch_size
            hist = History(self, {"verbose": verbose, "epochs": epochs, "steps": steps})
            self.history = hist
            if epochs == 0:
                return hist
            orders = None
            if shuffle:
                orders = _core.permutation_orders(n, epochs)
            seed = int(np.random.randint(0, 2 ** 62)) if dropout > 0 else 0
            W, b = self._params(st)
            opt = self.optimizer
            state = opt.engine_state(W, b)
            start_t = opt.iterations
            accuracy = bool(self.compiled_metrics)
            n_val = len(evald[0]) if evald is not None else 0
            bar = _bar_char() if verbose == 1 else None
            clock = {"last": 0.0, "done": 0}

            def on_epoch(s):
                now = time.perf_counter()
                seconds, clock["last"] = now - clock["last"], now
                e = s["epoch"]
                logs = {}
                if accuracy:
                    logs["accuracy"] = s["run_correct"] / s["run_n"]
                logs["loss"] = s["run_cost"] / s["run_n"]
                if n_val:
                    if accuracy:
                        logs["val_accuracy"] = s["eval_correct"] / n_val
                    logs["val_loss"] = s["eval_cost"] / n_val
                hist._record(e, logs)
                hist.epoch_seconds.append(seconds)
                clock["done"] = e + 1
                if verbose:
                    print(_progress_line(steps, seconds, logs, bar))
                    if e + 1 < epochs:
                        print(f"Epoch {e + 2}/{epochs}")
                    sys.stdout.flush()
                return None

            if verbose:
                print(f"Epoch 1/{epochs}")
                sys.stdout.flush()
            clock["last"] = time.perf_counter()
            try:
                res = _core.train(W, b, X, Y, _core.TrainConfig(
                    acts=acts, cost=cost, epochs=epochs, batch=batch_size, cost_scale=scale,
                    step=opt.iterations, state=state, dropout=dropout, seed=seed, orders=orders,
                    eval_data=evald, run_stats=True, on_epoch=on_epoch,
                    n_threads=self.n_threads, device=self.device, **opt.engine_kwargs()))
            except BaseException:
                opt.iterations = start_t + clock["done"] * steps
                raise
            opt.iterations = int(res["step"])
            return hist

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", return_dict=False):
        """Return ``[loss, accuracy]`` on (x, y) (the loss alone when compiled without
        metrics; a dict with ``return_dict=True``)."""
        self._require_compiled("evaluate")
        if x is None or y is None:
            raise ValueError("x, y: expected examples and their labels, got None")
        batch_size = 32 if batch_size is None else _core.check_int(batch_size, "batch_size", 1)
        verbose = _check_verbose(verbose)
        st = self._structure()
        self._check_accuracy(st)
        acts, cost, scale = self._train_plan(st)
        t0 = time.perf_counter()
        X = self._inputs(x, "x", st)
        ylen = len(np.asarray(y)) if np.ndim(y) else 0
        if ylen != len(X):
            raise ValueError(f"x, y: expected as many labels as examples, got {len(X)} examples "
                             f"and {ylen} labels")
        if len(X) == 0:
            raise ValueError("x: expected at least one example, got 0")
        Y = self.loss.targets(y, len(X), st.denses[-1].units, self._dtype_now(), "y")
        W, b = self._params(st)
        c, hits = _core.evaluate(W, b, acts, cost, X, Y, cost_scale=scale,
                                 n_threads=self.n_threads, device=self.device)
        logs = {}
        if self.compiled_metrics:
            logs["accuracy"] = int(hits) / len(X)
        logs["loss"] = float(c) / len(X)
        if verbose:
            steps = (len(X) + batch_size - 1) // batch_size
            print(_progress_line(steps, time.perf_counter() - t0, logs,
                                 _bar_char() if verbose == 1 else None))
        if return_dict:
            return logs
        if not self.compiled_metrics:
            return logs["loss"]
        return [logs["loss"], logs["accuracy"]]

    def predict(self, x, batch_size=None, verbose=0):
        """Return the model's outputs for ``x``, an ``(n, units)`` array of its dtype.

        ``batch_size`` is accepted for Keras compatibility; the engine picks its own blocks."""
        if batch_size is not None:
            _core.check_int(batch_size, "batch_size", 1)
        verbose = _check_verbose(verbose)
        st = self._structure()
        t0 = time.perf_counter()
        X = self._inputs(x, "x", st)
        W, b = self._params(st)
        acts, left = self._predict_acts(st)
        out = _core.predict(W, b, acts, X, n_threads=self.n_threads, device=self.device)
        for _ in range(left):
            out = _softmax_rows(out)
        if verbose:
            steps = (len(X) + (batch_size or 32) - 1) // (batch_size or 32)
            print(_progress_line(steps, time.perf_counter() - t0, {},
                                 _bar_char() if verbose == 1 else None))
        return out

    def __call__(self, x):
        """Return ``predict(x)``."""
        return self.predict(x)

    # -- weights ------------------------------------------------------------------------------------
    def count_params(self):
        """Return the number of parameters of the built layers."""
        return sum(layer.count_params() for layer in self.layers)

    def get_weights(self):
        """Return ``[kernel_0, bias_0, kernel_1, ...]`` in Keras' layout (copies)."""
        out = []
        for d in self._structure().denses:
            out += d.get_weights()
        return out

    def set_weights(self, weights):
        """Set all Dense kernels and biases from a list like ``get_weights()``'s."""
        denses = self._structure().denses
        if not isinstance(weights, (list, tuple)) or len(weights) != 2 * len(denses):
            raise ValueError(f"weights: expected a list of {2 * len(denses)} arrays (kernel, "
                             f"bias per Dense layer), got "
                             f"{len(weights) if hasattr(weights, '__len__') else weights!r}")
        n_in = None
        shape = self._known_input_shape()
        if shape is not None:
            n_in = math.prod(shape)
        for k, d in enumerate(denses):
            kernel = np.asarray(weights[2 * k])
            if n_in is not None and kernel.ndim == 2 and kernel.shape[0] != n_in:
                raise ValueError(f"weights[{2 * k}] ({d.name} kernel): expected shape "
                                 f"({n_in}, {d.units}), got {kernel.shape}")
            d.set_weights([weights[2 * k], weights[2 * k + 1]])
            d._cast(self._dtype_now())
            n_in = d.units

    # -- summary ------------------------------------------------------------------------------------
    def summary(self, print_fn=None):
        """Print the layers, their output shapes and parameter counts (Keras' numbers)."""
        print_fn = print_fn or print
        st = self._structure()
        shape = self._known_input_shape(st)
        size = None if shape is None else math.prod(shape)
        rows, total = [], 0
        for layer in self.layers:
            if isinstance(layer, Input):
                out, params = f"(None, {', '.join(map(str, layer.input_shape))})", 0
            elif isinstance(layer, Flatten):
                out, params = ("(None, ?)" if size is None else f"(None, {size})"), 0
            elif isinstance(layer, Dense):
                if layer.built:
                    params = layer.count_params()
                elif size is not None:
                    params = layer.units * (size + 1)
                else:
                    params = None
                size = layer.units
                out = f"(None, {size})"
            else:
                out, params = ("(None, ?)" if size is None else f"(None, {size})"), 0
            total += params or 0
            rows.append((f"{layer.name} ({type(layer).__name__})", out,
                         "0 (unbuilt)" if params is None else f"{params:,}"))
        itemsize = self._dtype_now().itemsize
        width = 65
        print_fn(f'Model: "{self.name}"')
        print_fn("_" * width)
        print_fn(f" {'Layer (type)':<28}{'Output Shape':<26}Param #")
        print_fn("=" * width)
        for name, out, params in rows:
            print_fn(f" {name:<28}{out:<26}{params}")
        print_fn("=" * width)
        print_fn(f"Total params: {total:,} ({_format_bytes(total * itemsize)})")
        print_fn(f"Trainable params: {total:,} ({_format_bytes(total * itemsize)})")
        print_fn("Non-trainable params: 0 (0.00 B)")
        print_fn("_" * width)

    # -- saving -------------------------------------------------------------------------------------
    def get_config(self):
        """Return the JSON-able description that ``save`` writes (without the arrays)."""
        st = self._structure()
        layers = [{"class_name": type(l).__name__, "config": l.get_config()}
                  for l in self.layers]
        comp = None
        if self.loss is not None:
            comp = {"optimizer": {"class_name": type(self.optimizer).__name__,
                                  "config": self.optimizer.get_config(),
                                  "iterations": int(self.optimizer.iterations)},
                    "loss": {"class_name": type(self.loss).__name__,
                             "config": self.loss.get_config()},
                    "metrics": list(self.compiled_metrics)}
        shape = self._known_input_shape(st)
        return {"format": FORMAT, "format_version": FORMAT_VERSION,
                "fastnn_version": __version__, "name": self.name,
                "dtype": str(self._dtype_now()),
                "input_shape": None if shape is None else list(shape),
                "built": self.built, "layers": layers, "compile": comp}

    def save(self, filepath):
        """Write the model (layers, weights, compile settings, optimizer state) to
        ``filepath`` as the .npz described in this module's docstring, atomically: a
        temporary file in the same folder is written, flushed to disk and renamed."""
        filepath = os.fspath(filepath)
        st = self._structure()
        cfg = self.get_config()
        arrays = {"config": np.array(json.dumps(cfg))}
        if cfg["built"]:
            for l, d in enumerate(st.denses):
                arrays[f"kernel_{l}"] = d.W.T
                arrays[f"bias_{l}"] = d.b.reshape(-1)
            if self.optimizer is not None:
                W, b = self._params(st)
                state = self.optimizer.state_arrays()
                for key in ("s1", "s2"):
                    s = state.get(key)
                    if s is not None and self.optimizer._matches(s, W, b):
                        for l, (sw, sb) in enumerate(s):
                            arrays[f"optimizer_{key}_kernel_{l}"] = sw.T
                            arrays[f"optimizer_{key}_bias_{l}"] = sb.reshape(-1)
        _atomic_savez(filepath, arrays)

    # -- network2 -----------------------------------------------------------------------------------
    @classmethod
    def from_network2(cls, net, name=None):
        """Return a model with the same layers and weights as a ``fastnn.network2.Network``.

        The model is not compiled: choose its loss and optimizer with ``compile``."""
        from fastnn import network2
        if not isinstance(net, network2.Network):
            raise TypeError(f"net: expected a fastnn.network2.Network, got "
                            f"{type(net).__name__}")
        sizes = net.sizes
        L = len(sizes) - 1
        W, b = _core.sync_params(net, sizes, net.dtype)
        layers = []
        for l in range(L):
            act = net.activation if l < L - 1 else net.output_activation
            act = "linear" if act in ("identity", "linear") else act
            kw = {"input_shape": (sizes[0],)} if l == 0 else {}
            d = Dense(sizes[l + 1], activation=act, **kw)
            d.W = np.array(W[l], dtype=net.dtype, order="C", copy=True)
            d.b = np.array(b[l].reshape(-1, 1), dtype=net.dtype, order="C", copy=True)
            layers.append(d)
        return cls(layers, name=name, dtype=net.dtype, device=net.device,
                   n_threads=net.n_threads)

    def to_network2(self):
        """Return a ``fastnn.network2.Network`` computing the same outputs as ``predict``.

        Needs one activation on all hidden Dense layers.  The network2 cost follows the output:
        softmax -> LogLikelihoodCost, sigmoid -> CrossEntropyCost, else QuadraticCost.  A model
        trained with ``from_logits=True`` outputs logits; convert
        ``Sequential([model, Softmax()])`` to get the softmax network.  Dropout layers are
        dropped (network2 takes dropout as an SGD option)."""
        from fastnn import network2
        st = self._structure()
        if not self.built:
            raise ValueError("model: build it (fit, predict or build) before converting")
        acts, left = self._predict_acts(st)
        if left:
            raise ValueError(f"model: network2 has no layer for the {left} extra Softmax "
                             f"layer(s) after the output")
        hidden = sorted(set(acts[:-1]))
        if len(hidden) > 1:
            raise ValueError(f"model: network2 uses one activation on all hidden layers, got "
                             f"{', '.join(hidden)}")
        out = acts[-1]
        cost = {"softmax": network2.LogLikelihoodCost,
                "sigmoid": network2.CrossEntropyCost}.get(out, network2.QuadraticCost)
        sizes = [st.denses[0].n_in] + [d.units for d in st.denses]
        dtype = self._dtype_now()
        state = np.random.get_state()      # network2 draws initial weights; keep the stream
        try:
            net = network2.Network(sizes, cost=cost,
                                   activation=hidden[0] if hidden else "sigmoid",
                                   output_activation=out, dtype=dtype,
                                   n_threads=self.n_threads, device=self.device)
        finally:
            np.random.set_state(state)
        net.weights = [d.W.copy() for d in st.denses]
        net.biases = [d.b.copy() for d in st.denses]
        return net

    def __repr__(self):
        return f"<Sequential name={self.name!r} layers={len(self.layers)}>"


def _format_bytes(n):
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.2f} {unit}"
        n /= 1024.0


def _atomic_savez(filepath, arrays):
    _core.atomic_write(filepath, lambda fh: np.savez(fh, **arrays))


def _bad(path, why):
    return ValueError(f"{path}: not a valid fastnn model file ({why})")


def load_model(filepath, compile=True):
    """Load a model written by ``Sequential.save``.

    With ``compile=True`` the loss, the optimizer and its state are restored too, so ``fit``
    continues where the saved model stopped.  Raises ValueError for a truncated, corrupted
    or inconsistent file."""
    path = os.fspath(filepath)
    try:
        archive = _safeio.NpzArchive(path)
    except ValueError as e:
        raise _bad(path, str(e)[len(path) + 2:]) from None
    with archive:
        try:
            return _load_model(archive, path, compile)
        except ValueError as e:
            if str(e).startswith(f"{path}: not a valid fastnn model file"):
                raise
            raise _bad(path, str(e)[len(path) + 2:] if str(e).startswith(f"{path}: ")
                       else str(e)) from None


MAX_CONFIG_CHARS = 1 << 20


def _load_model(arrays, path, compile):
    """load_model's reading, from an open NpzArchive: every member's header is checked
    against what the config says before its payload is read."""
    used = {"config"}
    if "config" not in arrays:
        raise _bad(path, "no 'config' JSON string")
    cfg_arr = arrays.read("config", shape=(), kinds="U") if \
        arrays.header("config")[1].itemsize <= 4 * MAX_CONFIG_CHARS else None
    if cfg_arr is None:
        raise _bad(path, f"the 'config' string is longer than {MAX_CONFIG_CHARS} characters")
    try:
        cfg = json.loads(str(cfg_arr[()]))
    except json.JSONDecodeError as e:
        raise _bad(path, f"config is not valid JSON: {e}") from None
    except RecursionError:
        raise _bad(path, "config is nested too deeply") from None
    if not isinstance(cfg, dict) or cfg.get("format") != FORMAT:
        raise _bad(path, f"config 'format' is not {FORMAT!r}")
    if cfg.get("format_version") != FORMAT_VERSION:
        raise _bad(path, f"format_version {cfg.get('format_version')!r}, this fastnn reads "
                         f"{FORMAT_VERSION}")
    try:
        dtype = _core.check_dtype(cfg.get("dtype"))
    except TypeError as e:
        raise _bad(path, str(e)) from None
    specs = cfg.get("layers")
    if not isinstance(specs, list) or not specs:
        raise _bad(path, "config 'layers' is not a non-empty list")
    layers = []
    for i, spec in enumerate(specs):
        if not isinstance(spec, dict) or spec.get("class_name") not in LAYER_CLASSES or \
                not isinstance(spec.get("config"), dict):
            raise _bad(path, f"layers[{i}] is not a known layer ({spec!r:.80})")
        try:
            layers.append(LAYER_CLASSES[spec["class_name"]].from_config(spec["config"]))
        except (TypeError, ValueError) as e:
            raise _bad(path, f"layers[{i}]: {e}") from None
    name = cfg.get("name")
    try:
        model = Sequential(layers, name=name if isinstance(name, str) else None, dtype=dtype)
        st = model._structure()
        shape = cfg.get("input_shape")
        if shape is not None:
            model.build(tuple(shape))
    except (TypeError, ValueError) as e:
        raise _bad(path, str(e)) from None
    # weights
    if cfg.get("built"):
        if shape is None:
            raise _bad(path, "built model without an input_shape")
        weights = []
        for l, d in enumerate(st.denses):
            for key, want in ((f"kernel_{l}", d.W.T.shape), (f"bias_{l}", (d.units,))):
                if key not in arrays:
                    raise _bad(path, f"missing array {key!r}")
                got_shape, got_dtype = arrays.header(key)
                if tuple(got_shape) != want or got_dtype.kind != "f":
                    raise _bad(path, f"array {key!r} has shape {got_shape} dtype {got_dtype}, "
                                     f"expected {want} float")
                a = arrays.read(key, shape=want, kinds="f")
                used.add(key)
                if not np.isfinite(a).all():
                    raise _bad(path, f"array {key!r} holds NaN or Inf")
                _check_fits(a, dtype, path, key)
                weights.append(a)
        model.set_weights(weights)
    comp = cfg.get("compile")
    if comp is not None:
        try:
            o, lo = comp["optimizer"], comp["loss"]
            ocls = _optimizers.OPTIMIZER_CLASSES[o["class_name"]]
            lcls = _losses.LOSS_CLASSES[lo["class_name"]]
            opt = ocls.from_config(o["config"])
            lossobj = lcls.from_config(lo["config"])
            iterations = _core.check_int(o.get("iterations", 0), "iterations", 0,
                                         2 ** 63 - 1)
            metrics = comp.get("metrics", [])
        except (KeyError, TypeError, ValueError, RecursionError) as e:
            raise _bad(path, f"bad compile settings: {e!r}") from None
        states = {}
        for key in ("s1", "s2"):
            if f"optimizer_{key}_kernel_0" not in arrays:
                continue
            pairs = []
            for l, d in enumerate(st.denses):
                kw = kb = None
                names = (f"optimizer_{key}_kernel_{l}", f"optimizer_{key}_bias_{l}")
                if all(k in arrays and arrays.header(k) == (want, dtype) for k, want in
                       zip(names, (d.W.T.shape, (d.units,)))):
                    kw, kb = (arrays.read(k, kinds="f") for k in names)
                    used.update(names)
                if kw is None or kb is None:
                    raise _bad(path, f"optimizer state {key} of layer {l} is missing or has "
                                     f"the wrong shape/dtype")
                if not (np.isfinite(kw).all() and np.isfinite(kb).all()):
                    raise _bad(path, f"optimizer state {key} of layer {l} holds NaN or Inf")
                pairs.append((np.ascontiguousarray(kw.T), np.ascontiguousarray(
                    kb.reshape(-1))))
            states[key] = pairs
        if compile:
            try:
                model.compile(optimizer=opt, loss=lossobj, metrics=metrics)
            except (TypeError, ValueError) as e:
                raise _bad(path, f"bad compile settings: {e}") from None
            if states:
                opt.set_state(iterations, states.get("s1"), states.get("s2"))
    unused = sorted(set(arrays.keys()) - used)
    if unused:
        raise _bad(path, f"unexpected arrays {unused[:5]}")
    return model


def _check_fits(a, dtype, path, key):
    """Values of a saved float64 array that become Inf in the model's float32."""
    if a.dtype != dtype and a.size:
        big, top = float(np.abs(a).max()), float(np.finfo(dtype).max)
        if big > top:
            raise _bad(path, f"array {key!r} holds {big:.3g}, which does not fit the model's "
                             f"dtype {np.dtype(dtype).name} (largest {top:.3g})")

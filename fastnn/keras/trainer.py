"""``compile``, ``fit``, ``evaluate`` and ``predict`` of ``Sequential`` (Keras' Trainer).

``fit`` is one engine call for all its epochs (shuffling, mini-batches, forward, backward, the
optimizer step and the validation pass run in compiled code without the GIL).  Between epochs
the engine calls back into Python: the logs are computed there, the progress line printed and
the callbacks run (``callbacks.py``).  Only when a callback defines a batch-level hook does
``fit`` run one engine call per mini-batch instead (``_fit_by_batch``).
"""
import math
import time

import numpy as np

from fastnn import _core
from fastnn.keras import losses as _losses, metrics as _metrics, optimizers as _optimizers
from fastnn.keras.callbacks import CallbackList, History
from fastnn.keras.progress import LiveBar, check_verbose, progress_line, line_bar

__all__ = ["Trainer", "NotCompiledError"]


class NotCompiledError(RuntimeError, ValueError):
    """``fit``/``evaluate`` before ``compile`` (a RuntimeError, as in Keras, and a
    ValueError, as every other bad call here)."""


def _softmax_rows(a):
    z = a - a.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


def _n_labels(y):
    return len(y) if np.ndim(y) else 0


class Trainer:
    """The training half of ``Sequential``; the model half (layers, ``_structure``,
    ``_inputs``, ``_params``, ``_train_plan``) is in ``model.py``."""

    optimizer = None
    loss = None
    compiled_metrics = ()
    _metric_specs = ()
    stop_training = False

    # -- compile ----------------------------------------------------------------------------------
    def compile(self, optimizer="adam", loss=None, metrics=None):
        """Set the optimizer (a name or a ``keras.optimizers`` instance), the loss (a name or
        a ``keras.losses`` instance) and the metrics (names from ``keras.metrics.METRICS`` or
        ``keras.metrics`` objects)."""
        opt = _optimizers.get(optimizer)
        if loss is None:
            raise ValueError("loss: expected a loss such as 'sparse_categorical_crossentropy' "
                             "or keras.losses.SparseCategoricalCrossentropy(from_logits=True), "
                             "got None")
        lossobj = _losses.get(loss)
        if metrics is None:
            metrics = []
        if isinstance(metrics, str) or isinstance(metrics, _metrics.Metric):
            metrics = [metrics]
        if not isinstance(metrics, (list, tuple)):
            raise TypeError(f"metrics: expected a list such as ['accuracy'], got "
                            f"{type(metrics).__name__}")
        binary = isinstance(lossobj, _losses.BinaryCrossentropy)
        specs = [_metrics.get(m, binary=binary) for m in metrics]
        st = self._structure()
        if st.denses:     # check the combination now; the input size may come later
            lossobj.plan(st.acts[-1], st.trailing_softmax, st.denses[-1].units)
            self._dropout_rate(st)
        self.optimizer, self.loss = opt, lossobj
        self._metric_specs = specs
        self.compiled_metrics = [name for name, _, _ in specs]

    @property
    def metrics_names(self):
        return ["loss"] + list(self.compiled_metrics)

    def _check_accuracy(self, st):
        if any(kind == "engine" for _, kind, _ in self._metric_specs) and \
                st.denses[-1].units < 2:
            raise ValueError("metrics: 'accuracy' here is the argmax accuracy and needs at "
                             "least 2 output units; compile without it for one output (or "
                             "use binary_crossentropy, whose accuracy is binary_accuracy)")

    def _require_compiled(self, what):
        if self.loss is None or self.optimizer is None:
            raise NotCompiledError(f"{what}: the model must be compiled first: call "
                                   f"model.compile(optimizer='adam', loss=..., "
                                   f"metrics=['accuracy'])")

    # -- logs ---------------------------------------------------------------------------------------
    def _outputs(self, X, st):
        """The model's outputs for X (n, n_in), as ``predict`` gives them."""
        W, b = self._params(st)
        acts, left = self._predict_acts(st)
        out = _core.predict(W, b, acts, X, n_threads=self.n_threads, device=self.device)
        for _ in range(left):
            out = _softmax_rows(out)
        return out

    def _logs(self, st, cost, hits, n, X, Y, prefix=""):
        """Keras' logs for one data set: the loss, the engine's accuracy, and the output
        metrics (one forward pass over X when any is asked for)."""
        logs = {prefix + "loss": cost / n}
        out = None
        for name, kind, fn in self._metric_specs:
            if kind == "engine":
                logs[prefix + name] = hits / n
            else:
                if out is None:
                    out = self._outputs(X, st)
                logs[prefix + name] = float(fn(Y, out))
        return logs

    # -- fit ----------------------------------------------------------------------------------------
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, initial_epoch=0):
        """Train from epoch ``initial_epoch`` to ``epochs``; return a History.

        Each epoch the examples are shuffled with ``np.random.permutation`` (the orders are
        drawn a chunk of epochs at a time, the first chunk before training starts, or all of
        them for the per-batch path; then, with dropout, one ``np.random.randint`` draws the
        engine's dropout seed), cut into mini-batches of ``batch_size`` (32; the last may be
        short) and each mini-batch takes one optimizer step.  The reported ``loss`` and
        ``accuracy`` are running values over the epoch's mini-batches (as Keras reports them);
        ``val_*`` use the weights at the end of the epoch.  ``validation_split`` holds out the
        last fraction of ``x``/``y`` (before shuffling).  ``callbacks``: a list of
        ``keras.callbacks.Callback``."""
        self._require_compiled("fit")
        if x is None or y is None:
            raise ValueError("x, y: expected training examples and their labels, got None")
        epochs = _core.check_int(epochs, "epochs", 0)
        initial_epoch = _core.check_int(initial_epoch, "initial_epoch", 0)
        batch_size = 32 if batch_size is None else _core.check_int(batch_size, "batch_size", 1)
        verbose = check_verbose(verbose)
        validation_split = _core.check_float(validation_split, "validation_split", 0.0, 1.0,
                                             max_open=True)
        if not isinstance(shuffle, (bool, np.bool_)):
            raise TypeError(f"shuffle: expected True or False, got {shuffle!r}")
        with self._guard:
            st = self._structure()
            self._check_accuracy(st)
            X, Y, evald = self._fit_data(st, x, y, validation_split, validation_data)
            n = len(X)
            steps = (n + batch_size - 1) // batch_size
            n_epochs = max(0, epochs - initial_epoch)
            hist = History(self, {"verbose": verbose, "epochs": epochs, "steps": steps})
            cbs = CallbackList(callbacks, self, hist.params)
            cbs.callbacks.append(hist)
            hist.set_model(self)
            self.history = hist
            if n_epochs == 0:
                return hist
            orders = None
            if shuffle and cbs.batch_level:      # the per-batch path indexes every epoch's
                orders = np.empty((n_epochs, n), dtype=np.int32)
                for e in range(n_epochs):
                    orders[e] = np.random.permutation(n)
            elif shuffle:                        # a chunk of epochs at a time (_orders.py)
                orders = _core.permutation_orders(n, n_epochs)
            dropout = self._dropout_rate(st)
            seed = int(np.random.randint(0, 2 ** 62)) if dropout > 0 else 0
            run = _Run(self, st, X, Y, evald, cbs, hist, steps, epochs, initial_epoch, verbose)
            self.stop_training = False
            cbs.call("on_train_begin", {})
            run.begin_epoch(initial_epoch)
            try:
                if self.stop_training:
                    pass
                elif cbs.batch_level:
                    self._fit_by_batch(run, orders, batch_size, dropout, seed)
                else:
                    self._fit_engine(run, orders, batch_size, dropout, seed)
            finally:
                run.bar.stop()
            cbs.call("on_train_end", run.last_logs)
            return hist

    def _fit_data(self, st, x, y, validation_split, validation_data):
        X = self._inputs(x, "x", st)
        y = _core.as_array(y, "y")
        n_out = st.denses[-1].units
        dtype = self._dtype_now()
        if _n_labels(y) != len(X):
            raise ValueError(f"x, y: expected as many labels as examples, got {len(X)} "
                             f"examples and {_n_labels(y)} labels")
        Y = self.loss.targets(y, len(X), n_out, dtype, "y")
        evald = None
        if validation_split:
            if validation_data is not None:
                raise ValueError("validation_split, validation_data: give one of them, got "
                                 "both")
            cut = int(math.floor(len(X) * (1.0 - validation_split)))
            evald = (X[cut:], Y[cut:])
            X, Y = X[:cut], Y[:cut]
            if len(evald[0]) == 0:
                raise ValueError(f"validation_split: {validation_split} of {len(X)} examples "
                                 f"leaves no validation examples")
        elif validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise ValueError("validation_data: expected an (x_val, y_val) pair")
            vx = self._inputs(validation_data[0], "validation_data x", st)
            vy = _core.as_array(validation_data[1], "validation_data y")
            if _n_labels(vy) != len(vx):
                raise ValueError(f"validation_data: expected as many labels as examples, got "
                                 f"{len(vx)} examples and {_n_labels(vy)} labels")
            if len(vx):
                evald = (vx, self.loss.targets(vy, len(vx), n_out, dtype,
                                               "validation_data y"))
        if len(X) == 0:
            raise ValueError("x: expected at least one training example, got 0")
        return X, Y, evald

    def _fit_engine(self, run, orders, batch_size, dropout, seed):
        """The whole fit in one engine call; Python runs only between epochs."""
        st, opt = run.st, self.optimizer
        acts, cost, scale = self._train_plan(st)
        W, b = self._params(st)
        state = opt.engine_state(W, b)
        start_t = opt.iterations

        def on_epoch(s):
            e = run.first + s["epoch"]
            opt.iterations = start_t + (s["epoch"] + 1) * run.steps
            return run.end_epoch(e, s["run_cost"], s["run_correct"], s["run_n"],
                                 s["eval_cost"], s["eval_correct"])

        run.bar.start()
        try:
            res = _core.train(W, b, run.X, run.Y, _core.TrainConfig(
                acts=acts, cost=cost, epochs=run.n_epochs, batch=batch_size, cost_scale=scale,
                step=opt.iterations, state=state, dropout=dropout, seed=seed, orders=orders,
                eval_data=run.evald, run_stats=True, on_epoch=on_epoch, progress=run.counter,
                n_threads=self.n_threads, device=self.device, **opt.engine_kwargs()))
        except BaseException:
            opt.iterations = start_t + run.done * run.steps
            raise
        opt.iterations = int(res["step"])

    def _fit_by_batch(self, run, orders, batch_size, dropout, seed):
        """The slower path for batch-level callbacks: one engine call per mini-batch, on
        the same mini-batches and optimizer state as ``_fit_engine``."""
        st, opt, cbs = run.st, self.optimizer, run.cbs
        acts, cost, scale = self._train_plan(st)
        W, b = self._params(st)
        X, Y, n = run.X, run.Y, len(run.X)
        dtype = self._dtype_now()
        rng = np.random.default_rng(seed)
        run.bar.start()
        for k in range(run.n_epochs):
            e = run.first + k
            order = orders[k] if orders is not None else np.arange(n)
            run_cost, run_hits, seen = 0.0, 0, 0
            for bi in range(run.steps):
                idx = order[bi * batch_size:(bi + 1) * batch_size]
                cbs.call("on_train_batch_begin", bi, {})
                xb = _core.aligned_empty((len(idx), X.shape[1]), dtype)
                np.take(X, idx, axis=0, out=xb)
                yb = np.ascontiguousarray(Y[idx])
                stats = {}
                res = _core.train(W, b, xb, yb, _core.TrainConfig(
                    acts=acts, cost=cost, epochs=1, batch=len(idx), cost_scale=scale,
                    step=opt.iterations, state=opt.engine_state(W, b), dropout=dropout,
                    seed=int(rng.integers(0, 2 ** 62)), run_stats=True,
                    on_epoch=stats.update, n_threads=self.n_threads, device=self.device,
                    **opt.engine_kwargs()))
                opt.iterations = int(res["step"])
                run_cost += stats["run_cost"]
                run_hits += stats["run_correct"]
                seen += len(idx)
                run.counter[0], run.counter[1] = k, bi + 1
                logs = {"loss": run_cost / seen}
                if any(kind == "engine" for _, kind, _ in self._metric_specs):
                    for name, kind, _ in self._metric_specs:
                        if kind == "engine":
                            logs[name] = run_hits / seen
                cbs.call("on_train_batch_end", bi, dict(sorted(logs.items())))
                if self.stop_training:
                    break
            ec, eh = 0.0, 0
            if run.evald is not None:
                ec, eh = _core.evaluate(W, b, acts, cost, run.evald[0], run.evald[1],
                                        cost_scale=scale, n_threads=self.n_threads,
                                        device=self.device)
            r = run.end_epoch(e, run_cost, run_hits, seen, float(ec), int(eh))
            if r and r.get("stop"):
                break

    # -- evaluate / predict ------------------------------------------------------------------------
    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", return_dict=False):
        """Return ``[loss, metric, ...]`` on (x, y) in ``metrics_names`` order (the loss alone
        when compiled without metrics; a dict with ``return_dict=True``)."""
        self._require_compiled("evaluate")
        if x is None or y is None:
            raise ValueError("x, y: expected examples and their labels, got None")
        batch_size = 32 if batch_size is None else _core.check_int(batch_size, "batch_size", 1)
        verbose = check_verbose(verbose)
        st = self._structure()
        self._check_accuracy(st)
        acts, cost, scale = self._train_plan(st)
        t0 = time.perf_counter()
        X = self._inputs(x, "x", st)
        y = _core.as_array(y, "y")
        if _n_labels(y) != len(X):
            raise ValueError(f"x, y: expected as many labels as examples, got {len(X)} examples "
                             f"and {_n_labels(y)} labels")
        if len(X) == 0:
            raise ValueError("x: expected at least one example, got 0")
        Y = self.loss.targets(y, len(X), st.denses[-1].units, self._dtype_now(), "y")
        W, b = self._params(st)
        c, hits = _core.evaluate(W, b, acts, cost, X, Y, cost_scale=scale,
                                 n_threads=self.n_threads, device=self.device)
        logs = self._logs(st, float(c), int(hits), len(X), X, Y)
        if verbose:
            steps = (len(X) + batch_size - 1) // batch_size
            print(progress_line(steps, time.perf_counter() - t0, dict(sorted(logs.items())),
                                line_bar(verbose)), flush=True)
        if return_dict:
            return dict(sorted(logs.items()))
        if not self.compiled_metrics:
            return logs["loss"]
        return [logs[k] for k in self.metrics_names]

    def predict(self, x, batch_size=None, verbose="auto"):
        """Return the model's outputs for ``x``, an ``(n, units)`` array of its dtype.

        ``batch_size`` is accepted for Keras compatibility; the engine picks its own blocks."""
        if batch_size is not None:
            _core.check_int(batch_size, "batch_size", 1)
        verbose = check_verbose(verbose)
        st = self._structure()
        t0 = time.perf_counter()
        X = self._inputs(x, "x", st)
        out = self._outputs(X, st)
        if verbose:
            steps = (len(X) + (batch_size or 32) - 1) // (batch_size or 32)
            print(progress_line(steps, time.perf_counter() - t0, {},
                                line_bar(verbose)), flush=True)
        return out

    def predict_on_batch(self, x):
        return self.predict(x, verbose=0)

    def __call__(self, x):
        """Return ``predict(x)``."""
        return self.predict(x, verbose=0)


class _Run:
    """The state of one ``fit`` between the engine's epochs: logs, progress, callbacks."""

    def __init__(self, model, st, X, Y, evald, cbs, hist, steps, epochs, first, verbose):
        self.model, self.st, self.X, self.Y, self.evald = model, st, X, Y, evald
        self.cbs, self.hist, self.steps = cbs, hist, steps
        self.first, self.n_epochs = first, epochs - first
        self.counter = np.zeros(2, dtype=np.int64)
        self.bar = LiveBar(self.counter, epochs, steps, verbose)
        self.t_epoch = time.perf_counter()
        self.done = 0
        self.last_logs = None

    def begin_epoch(self, e):
        self.bar.epoch_begin(e - self.first, label=e)
        self.cbs.call("on_epoch_begin", e, {})
        self.t_epoch = time.perf_counter()

    def end_epoch(self, e, run_cost, run_correct, run_n, eval_cost, eval_correct):
        """Logs, progress line and callbacks after epoch ``e``; returns the engine's reply."""
        model, st = self.model, self.st
        seconds = time.perf_counter() - self.t_epoch
        logs = model._logs(st, run_cost, run_correct, max(run_n, 1), self.X, self.Y)
        if self.evald is not None:
            n_val = len(self.evald[0])
            logs.update(model._logs(st, eval_cost, eval_correct, n_val, self.evald[0],
                                    self.evald[1], prefix="val_"))
        logs = dict(sorted(logs.items()))
        self.hist.epoch_seconds.append(seconds)
        self.done = e - self.first + 1
        self.last_logs = logs
        self.bar.epoch_end(e - self.first, seconds, logs)
        lr = float(model.optimizer.learning_rate)
        self.cbs.call("on_epoch_end", e, logs)
        if model.stop_training:
            return {"stop": True}
        if e + 1 < self.first + self.n_epochs:
            self.begin_epoch(e + 1)
            if model.stop_training:
                return {"stop": True}
        new_lr = float(model.optimizer.learning_rate)
        if new_lr != lr:
            _core.check_float(new_lr, "optimizer.learning_rate", 0.0)
            return {"eta": new_lr}
        return None

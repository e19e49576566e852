"""A drop-in for the book's chapter-3 ``network2.py``, and the rest of chapters 3 and 5.

    from fastnn import network2
    net = network2.Network([784, 30, 10], cost=network2.CrossEntropyCost)
    net.SGD(training_data, 30, 10, 0.5, lmbda=5.0, evaluation_data=validation_data,
            monitor_evaluation_accuracy=True)

The book's API (costs, initializers, L2 regularization, the four monitors, ``save``/``load``
in its JSON format) plus keyword-only extras: softmax output with ``LogLikelihoodCost``,
``activation='tanh' | 'relu'``, ``momentum``, ``dropout``, ``l1``, ``early_stopping_n`` and
``eta_schedule='halve-on-plateau'``.  Every option runs inside the engine's compiled
per-epoch loop: one call per ``SGD``.

The book's exercises are honoured: a cost class of your own (with ``fn(a, y)`` and
``delta(z, a, y)``), an activation of your own (an object with ``fn(z)`` and ``prime(z)``), a
replaced ``network2.sigmoid`` / ``sigmoid_prime``, or a subclass (or instance) overriding
``update_mini_batch``, ``backprop``, ``feedforward``, ``accuracy`` or ``total_cost``: whatever
would reach the changed code runs the book's algorithm in Python (``fastnn._book``), with a
``UserWarning`` saying once that the compiled engine is not used.
"""
import json
import os
import random

import numpy as np

from fastnn import _book, _core
from fastnn import reference as _reference
from fastnn.network import sigmoid, sigmoid_prime  # noqa: F401  (the book's helpers)
from fastnn._core import DivergenceError  # noqa: F401  (re-exported)


# ---------------------------------------------------------------------------------------------
# costs: the book's interface, fn(a, y) and delta(z, a, y); the engine runs them by name

class QuadraticCost:
    """C = ||a - y||^2 / 2."""
    engine_name = "quadratic"

    @staticmethod
    def fn(a, y):
        """Return the cost of output ``a`` against desired output ``y``."""
        return 0.5 * np.linalg.norm(a - y) ** 2

    @staticmethod
    def delta(z, a, y):
        """Return the error delta of the output layer (sigmoid output)."""
        return (a - y) * sigmoid_prime(z)


class CrossEntropyCost:
    """C = -sum(y ln a + (1 - y) ln(1 - a)), for sigmoid outputs."""
    engine_name = "cross_entropy"

    @staticmethod
    def fn(a, y):
        """Return the cost of output ``a`` against ``y``; ``nan_to_num`` keeps 0 ln 0 at 0."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.sum(np.nan_to_num(-y * np.log(a) - (1 - y) * np.log(1 - a)))

    @staticmethod
    def delta(z, a, y):
        """Return the error delta of the output layer; ``z`` is not needed."""
        return a - y


class LogLikelihoodCost:
    """C = -ln a_y, for a softmax output layer (chapter 3)."""
    engine_name = "log_likelihood"

    @staticmethod
    def fn(a, y):
        """Return -sum(y ln a), with 0 ln 0 taken as 0."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.sum(np.nan_to_num(-y * np.log(a)))

    @staticmethod
    def delta(z, a, y):
        """Return the error delta of a softmax output layer."""
        return a - y


COSTS = {c.__name__: c for c in (QuadraticCost, CrossEntropyCost, LogLikelihoodCost)}


def _cost_class(cost):
    """One of the costs above (as its class), or the reader's own cost: a class or an object
    with ``fn(a, y)`` and ``delta(z, a, y)``, which the book's algorithm runs in Python."""
    cls = cost if isinstance(cost, type) else type(cost)
    if cls.__name__ in COSTS and COSTS[cls.__name__] is cls:
        return cls
    if callable(getattr(cost, "fn", None)) and callable(getattr(cost, "delta", None)):
        return cost
    raise TypeError(f"cost: expected QuadraticCost, CrossEntropyCost, LogLikelihoodCost (the "
                    f"engine runs these) or a class with fn(a, y) and delta(z, a, y), got "
                    f"{cost!r}")


def _engine_cost(cost):
    """The built-in cost class of ``cost`` (a class or an instance), or None."""
    cls = cost if isinstance(cost, type) else type(cost)
    return cls if any(cls is c for c in COSTS.values()) else None


def _is_engine_cost(cost):
    return _engine_cost(cost) is not None


def _cost_label(cost):
    return cost.__name__ if isinstance(cost, type) else type(cost).__name__


def _activation(act, argname, allow_softmax=False):
    """An activation name the engine knows, or the reader's own object with ``fn(z)`` and
    ``prime(z)`` (run in Python)."""
    if isinstance(act, str):
        return _core.check_activation(act, argname, allow_softmax)
    if callable(getattr(act, "fn", None)) and callable(getattr(act, "prime", None)):
        return act
    names = _core.HIDDEN_ACTIVATIONS + (("softmax",) if allow_softmax else ())
    raise TypeError(f"{argname}: expected one of {', '.join(names)} or an object with fn(z) "
                    f"and prime(z), got {act!r}")


# ---------------------------------------------------------------------------------------------

class Network(_core.EngineNetwork):
    """A feedforward network with the book's chapter-3 improvements."""

    def __init__(self, sizes, cost=CrossEntropyCost, *, activation="sigmoid",
                 output_activation=None, dtype=np.float64, n_threads=None, device=None):
        """``sizes[l]`` neurons in layer ``l``; weights from ``default_weight_initializer``.

        ``output_activation`` defaults to softmax for ``LogLikelihoodCost`` and to sigmoid
        otherwise."""
        self.sizes = _core.check_sizes(sizes)
        self.num_layers = len(self.sizes)
        self.cost = _cost_class(cost)
        self.activation = _activation(activation, "activation")
        if output_activation is None:
            output_activation = "softmax" if self.cost is LogLikelihoodCost else "sigmoid"
        self.output_activation = _activation(output_activation, "output_activation",
                                             allow_softmax=True)
        if not isinstance(self.output_activation, str):
            pass                   # the reader's own output activation: their cost's business
        elif self.cost is LogLikelihoodCost and self.output_activation != "softmax":
            raise ValueError(f"output_activation: LogLikelihoodCost needs 'softmax', got "
                             f"{self.output_activation!r}")
        if self.cost is CrossEntropyCost and self.output_activation != "sigmoid":
            raise ValueError(f"output_activation: CrossEntropyCost needs 'sigmoid', got "
                             f"{self.output_activation!r}")
        if self.cost is QuadraticCost and self.output_activation == "softmax":
            raise ValueError("output_activation: expected sigmoid, tanh, relu or identity with "
                             "QuadraticCost (use LogLikelihoodCost with 'softmax'), got 'softmax'")
        self.dtype = _core.check_dtype(dtype)
        self.n_threads = _core.check_n_threads(n_threads)
        self.device = device
        _core.resolve_device(device)
        self._guard = _core.TrainingGuard()
        self.default_weight_initializer()

    def default_weight_initializer(self):
        """Biases N(0, 1); weights N(0, 1/n_in), n_in the neuron's number of inputs."""
        self.biases = [np.random.randn(y, 1) for y in self.sizes[1:]]
        self.weights = [np.random.randn(y, x) / np.sqrt(x)
                        for x, y in zip(self.sizes[:-1], self.sizes[1:])]
        self._cast()

    def large_weight_initializer(self):
        """Biases and weights N(0, 1), as in chapter 1."""
        self.biases = [np.random.randn(y, 1) for y in self.sizes[1:]]
        self.weights = [np.random.randn(y, x) for x, y in zip(self.sizes[:-1], self.sizes[1:])]
        self._cast()

    def _cast(self):
        if self.dtype != np.float64:
            self.biases = [b.astype(self.dtype) for b in self.biases]
            self.weights = [w.astype(self.dtype) for w in self.weights]

    # -- the engine's view ------------------------------------------------------------------------
    def _acts(self):
        return [self.activation] * (self.num_layers - 2) + [self.output_activation]

    def _cost_name(self):
        # the reader's own cost never reaches the engine's cost code (python_reasons); where
        # only the argmax is wanted (accuracy) any cost name will do
        cost = _engine_cost(self.cost)
        return cost.engine_name if cost is not None else "quadratic"

    # -- the reader's own code: what the book's version of each method calls ---------------------
    _CALLS = {"SGD": ("update_mini_batch", "total_cost", "accuracy"),
              "update_mini_batch": ("backprop",),
              "backprop": ("cost", "activation", "network2.sigmoid"),
              "total_cost": ("feedforward", "cost"),
              "accuracy": ("feedforward",),
              "feedforward": ("activation", "network2.sigmoid")}

    def _reader_changes(self):
        """Overridden methods, 'cost' / 'activation' for ones the engine does not know, and
        'network2.sigmoid' if the module's sigmoid or sigmoid_prime was replaced (and used)."""
        out = _book.changed(self, _ORIGINAL)
        if not _is_engine_cost(self.cost):
            out.add("cost")
        acts = (self.activation, self.output_activation)
        if not all(isinstance(a, str) for a in acts):
            out.add("activation")
        if "sigmoid" in acts and (sigmoid is not _SIGMOID or sigmoid_prime is not _SIGMOID_PRIME):
            out.add("network2.sigmoid")
        return out

    def _describe_change(self, name):
        if name == "cost":
            return f"the cost ({_cost_label(self.cost)}, not one of the engine's)"
        if name == "activation":
            return "the activation (an object of yours, not one of the engine's)"
        return name

    def _layer_activations(self):
        """``(f, f')`` of each layer, the module's sigmoid looked up when called."""
        def pair(act):
            if not isinstance(act, str):
                return (act.fn, act.prime)
            if act == "sigmoid":
                return (sigmoid, sigmoid_prime)
            act = _ALIASES.get(act, act)
            return (_reference.ACTIVATIONS[act], _reference.DERIVATIVES.get(act))
        return [pair(self.activation)] * (self.num_layers - 2) + [pair(self.output_activation)]

    def _output_delta(self, z, a, y):
        """BP1: the cost's ``delta``; for our QuadraticCost with the output layer's own f'."""
        if _engine_cost(self.cost) is QuadraticCost:
            return (a - y) * self._layer_activations()[-1][1](z)
        return self.cost.delta(z, a, y)

    def _python_path(self, method):
        """The reader's changes the book's ``method`` reaches (warned about once), or []."""
        why = _book.python_reasons(self, method)
        if why:
            _book.warn_once(self, method, why)
        return why

    def _reg(self, lmbda, l1, n):
        W, _ = self._params()
        s2 = sum(float(np.sum(w.astype(np.float64) ** 2)) for w in W)
        s1 = sum(float(np.sum(np.abs(w))) for w in W) if l1 else 0.0
        return 0.5 * (lmbda / n) * s2 + (l1 / n) * s1

    # -- the book's API ---------------------------------------------------------------------------
    def SGD(self, training_data, epochs, mini_batch_size, eta, lmbda=0.0, evaluation_data=None,
            monitor_evaluation_cost=False, monitor_evaluation_accuracy=False,
            monitor_training_cost=False, monitor_training_accuracy=False, *, momentum=0.0,
            dropout=0.0, l1=0.0, early_stopping_n=0, eta_schedule=None, plateau_n=10,
            verbose=True):
        """Train with mini-batch stochastic gradient descent; return the per-epoch lists
        ``(evaluation_cost, evaluation_accuracy, training_cost, training_accuracy)``.

        L2 regularization shrinks each weight by ``(1 - eta*lmbda/n)`` per step.  Extras
        (keyword-only): ``momentum`` in [0, 1), ``dropout`` in [0, 1) on hidden layers,
        ``l1`` (L1 regularization), ``early_stopping_n`` (stop when evaluation accuracy has
        not improved for that many epochs), ``eta_schedule='halve-on-plateau'`` (halve eta
        when evaluation accuracy has not improved for ``plateau_n`` epochs; stop at eta/128).
        """
        epochs = _core.check_int(epochs, "epochs", 0, _core.INT_MAX)
        mini_batch_size = _core.check_int(mini_batch_size, "mini_batch_size", 1)
        eta = _core.check_float(eta, "eta", 0.0)
        lmbda = _core.check_float(lmbda, "lmbda", 0.0)
        l1 = _core.check_float(l1, "l1", 0.0)
        momentum = _core.check_float(momentum, "momentum", 0.0, 1.0, max_open=True)
        dropout = _core.check_float(dropout, "dropout", 0.0, 1.0, max_open=True)
        early_stopping_n = _core.check_int(early_stopping_n, "early_stopping_n", 0)
        plateau_n = _core.check_int(plateau_n, "plateau_n", 1)
        if eta_schedule not in (None, "halve-on-plateau"):
            raise ValueError(f"eta_schedule: expected None or 'halve-on-plateau', got "
                             f"{eta_schedule!r}")
        why = self._python_path("SGD")
        if why:
            for name, value in (("momentum", momentum), ("dropout", dropout), ("l1", l1)):
                if value:
                    raise ValueError(f"{name}: the book's algorithm, which runs because your "
                                     f"code changes {', '.join(why)}, has no {name}; expected "
                                     f"0, got {value}")
            if (early_stopping_n or eta_schedule or monitor_evaluation_cost or
                    monitor_evaluation_accuracy) and not evaluation_data:
                raise ValueError("evaluation_data: expected at least one example to monitor or "
                                 "to stop on, got none")
            return _book.sgd2(self, training_data, epochs, mini_batch_size, eta, lmbda,
                              evaluation_data, monitor_evaluation_cost,
                              monitor_evaluation_accuracy, monitor_training_cost,
                              monitor_training_accuracy, early_stopping_n, eta_schedule,
                              plateau_n, verbose)
        with self._guard:
            caller_list = training_data if isinstance(training_data, list) else None
            pairs = _core.as_pairs(training_data, "training_data")
            X, Y, n = self._arrays(pairs, "training_data", rows=True)
            if n == 0:
                raise ValueError("training_data: expected at least one example, got 0")
            evald, n_data = None, 0
            evaluation_data = _core.as_pairs(evaluation_data, "evaluation_data")
            if evaluation_data is not None and (_core.is_array_pair(evaluation_data)
                                                or len(evaluation_data)):
                eX, eY, n_data = self._arrays(evaluation_data, "evaluation_data", one_hot=False,
                                              rows=True)
                if n_data:
                    evald = (eX, eY)
            if (early_stopping_n or eta_schedule) and evald is None:
                raise ValueError("evaluation_data: early_stopping_n and eta_schedule need "
                                 "evaluation data, got None")
            if (monitor_evaluation_cost or monitor_evaluation_accuracy) and evald is None:
                raise ValueError("evaluation_data: expected at least one example to monitor "
                                 "the evaluation cost or accuracy, got none")
            monitor_eval = evald is not None and (monitor_evaluation_cost or
                                                  monitor_evaluation_accuracy or
                                                  early_stopping_n or eta_schedule)
            orders = _core.shuffled_orders(n, epochs, random)
            seed = int(np.random.randint(0, 2 ** 62)) if dropout > 0 else 0
            W, b = self._params()
            optimizer = "momentum" if momentum > 0 else "sgd"
            state = _core.new_state(optimizer, W, b)
            evaluation_cost, evaluation_accuracy = [], []
            training_cost, training_accuracy = [], []
            track = {"best": -1, "since": 0, "eta": eta, "eta0": eta}

            def on_epoch(st):
                out = {}
                if verbose:
                    print("Epoch %s training complete" % st["epoch"])
                reg = 0.0
                if monitor_training_cost:
                    c = st["train_cost"] / n + 0.5 * (lmbda / n) * st["sum_w2"] + \
                        (l1 / n) * st["sum_w1"]
                    c = np.float64(c)            # the book's costs are numpy floats
                    training_cost.append(c)
                    if verbose:
                        print("Cost on training data: {}".format(c))
                if monitor_training_accuracy:
                    training_accuracy.append(int(st["train_correct"]))
                    if verbose:
                        print("Accuracy on training data: {} / {}".format(
                            st["train_correct"], n))
                if monitor_evaluation_cost:
                    reg = 0.5 * (lmbda / n_data) * st["sum_w2"] + (l1 / n_data) * st["sum_w1"]
                    c = np.float64(st["eval_cost"] / n_data + reg)
                    evaluation_cost.append(c)
                    if verbose:
                        print("Cost on evaluation data: {}".format(c))
                if monitor_evaluation_accuracy:
                    evaluation_accuracy.append(int(st["eval_correct"]))
                    if verbose:
                        print("Accuracy on evaluation data: {} / {}".format(
                            st["eval_correct"], n_data))
                if verbose:
                    print()
                if early_stopping_n or eta_schedule:
                    acc = st["eval_correct"]
                    if acc > track["best"]:
                        track["best"], track["since"] = acc, 0
                    else:
                        track["since"] += 1
                    if early_stopping_n and track["since"] >= early_stopping_n:
                        out["stop"] = True
                    if eta_schedule and track["since"] >= plateau_n:
                        track["eta"] /= 2.0
                        track["since"] = 0
                        out["eta"] = track["eta"]
                        if track["eta"] <= track["eta0"] / 128.0:
                            out["stop"] = True
                return out

            try:
                if epochs > 0:
                    _core.train(W, b, X, Y, _core.TrainConfig(
                        acts=self._acts(), cost=self.cost.engine_name, epochs=epochs,
                        batch=mini_batch_size, eta=eta, lmbda=lmbda, l1=l1, reg_n=n,
                        optimizer=optimizer, momentum=momentum, state=state, dropout=dropout,
                        seed=seed, orders=orders, eval_data=evald if monitor_eval else None,
                        monitor_train=monitor_training_cost or monitor_training_accuracy,
                        on_epoch=on_epoch, n_threads=self.n_threads, device=self.device))
            finally:
                if caller_list is not None and orders.last is not None:
                    caller_list[:] = [caller_list[i] for i in orders.last]
            return evaluation_cost, evaluation_accuracy, training_cost, training_accuracy

    def update_mini_batch(self, mini_batch, eta, lmbda, n):
        """One gradient-descent step on ``mini_batch`` with L2 weight decay (1 - eta*lmbda/n),
        ``n`` being the size of the whole training set."""
        eta = _core.check_float(eta, "eta", 0.0)
        lmbda = _core.check_float(lmbda, "lmbda", 0.0)
        n = _core.check_int(n, "n", 1)
        if self._python_path("update_mini_batch"):
            return _book.update_mini_batch(self, mini_batch, eta, lmbda, n)
        with self._guard:
            X, Y, m = self._arrays(mini_batch, "mini_batch")
            if m == 0:
                raise ValueError("mini_batch: expected at least one example, got 0")
            W, b = self._params()
            _core.train(W, b, X, Y, _core.TrainConfig(
                acts=self._acts(), cost=self.cost.engine_name, epochs=1, batch=m, eta=eta,
                lmbda=lmbda, reg_n=n, n_threads=1))

    def accuracy(self, data, convert=False):
        """Return how many inputs in ``data`` the network classifies correctly.

        As in the book, ``convert=False`` is for validation/test data (``y`` an int label)
        and ``convert=True`` for training data (``y`` a one-hot vector); both are read
        correctly here whatever the flag says."""
        if self._python_path("accuracy"):
            return _book.accuracy(self, data, convert)
        X, Y, n = self._arrays(data, "data", one_hot=False, rows=True)
        if n == 0:
            return 0
        W, b = self._params()
        _, hits = _core.evaluate(W, b, self._acts(), self._cost_name(), X, Y,
                                 n_threads=self.n_threads, device=self.device)
        return int(hits)

    def total_cost(self, data, lmbda, convert=False):
        """Return the mean cost over ``data`` plus the L2 term 0.5*(lmbda/len(data))*sum w^2.

        As in the book, ``convert=False`` is for training data and ``convert=True`` for
        validation/test data; both label forms are read correctly either way."""
        lmbda = _core.check_float(lmbda, "lmbda", 0.0)
        if self._python_path("total_cost"):
            return _book.total_cost(self, data, lmbda, convert)
        X, Y, n = self._arrays(data, "data", one_hot=False, rows=True)
        if n == 0:
            raise ValueError("data: expected at least one example, got 0")
        W, b = self._params()
        c, _ = _core.evaluate(W, b, self._acts(), self.cost.engine_name, X, Y,
                              n_threads=self.n_threads, device=self.device)
        return np.float64(c / n + self._reg(lmbda, 0.0, n))

    def feedforward(self, a):
        """Return the output of the network if ``a`` is input (a column, or columns)."""
        if self._python_path("feedforward"):
            return _book.feedforward(self, a)
        return super().feedforward(a)

    def backprop(self, x, y):
        """Return ``(nabla_b, nabla_w)``, the gradient of the cost for one example, as lists
        of arrays shaped like ``self.biases`` and ``self.weights``."""
        if self._python_path("backprop"):
            return _book.backprop(self, x, y, self._output_delta)
        return super().backprop(x, y)

    def save(self, filename):
        """Save the network to ``filename`` as JSON, atomically: a temporary file is written,
        flushed to disk, then renamed over ``filename``.

        A network the book's ``network2`` can run (sigmoid layers with QuadraticCost,
        CrossEntropyCost or a cost class of your own) is saved exactly in the book's format:
        ``sizes``, ``weights``, ``biases`` and ``cost``, the cost's class name.  Any other
        (tanh, relu or identity layers, a softmax output, LogLikelihoodCost) is saved so that
        the book's ``load`` fails loudly instead of running it as a sigmoid network: its
        ``cost`` names no class of the book's module but says what the network is, and
        ``fastnn_cost``, ``activation`` and ``output_activation`` hold what fastnn's ``load``
        reads.  Dropout leaves no trace in the file: the kept activations are scaled while
        training, so the trained network predicts as a plain one."""
        acts = (self.activation, self.output_activation)
        if not all(isinstance(a, str) for a in acts):
            raise ValueError(f"activation: expected activation names to save (the file names "
                             f"them), got an object of your own: {acts!r}")
        name = _cost_label(self.cost)
        data = {"sizes": self.sizes,
                "weights": [np.asarray(w, dtype=np.float64).tolist() for w in self.weights],
                "biases": [np.asarray(b, dtype=np.float64).tolist() for b in self.biases],
                "cost": name}
        if acts != ("sigmoid", "sigmoid") or _engine_cost(self.cost) is LogLikelihoodCost:
            data["cost"] = (f"{name} with {self.activation} hidden and {self.output_activation} "
                            f"output layers is not a network the book's network2 can run: "
                            f"load it with fastnn.network2.load")
            data["fastnn_cost"] = name
            data["activation"] = self.activation
            data["output_activation"] = self.output_activation
        atomic_write_text(check_filename(filename), json.dumps(data))


# the engine's other names for an activation, as the oracle's tables name it
_ALIASES = {"linear": "identity", "swish": "silu"}

_ORIGINAL = _book.originals(Network, ("update_mini_batch", "backprop", "feedforward",
                                      "accuracy", "total_cost"))
_SIGMOID, _SIGMOID_PRIME = sigmoid, sigmoid_prime


def check_filename(filename):
    """A path: str, bytes or os.PathLike (an int would be taken by open() as a file
    descriptor)."""
    if not isinstance(filename, (str, bytes, os.PathLike)):
        raise TypeError(f"filename: expected a path (str, bytes or os.PathLike), got "
                        f"{type(filename).__name__} ({filename!r})")
    return os.fspath(filename)


def atomic_write_text(filename, text):
    """Write ``text`` to ``filename`` so that a crash leaves either the old or the new file."""
    _core.atomic_write(filename, lambda fh: fh.write(text.encode()))


def load(filename):
    """Load a network saved by ``Network.save`` (or by the book's ``network2.py``).

    Raises ValueError for a truncated, corrupted or inconsistent file."""
    filename = check_filename(filename)
    try:
        with open(filename) as fh:
            text = fh.read()
    except UnicodeDecodeError as e:
        raise ValueError(f"{filename}: not a network file (not text: {e})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{filename}: not a valid network file (truncated or corrupted "
                         f"JSON: {e})") from None
    except RecursionError:
        raise ValueError(f"{filename}: not a network file (JSON nested too deeply)") from None
    if not isinstance(data, dict):
        raise ValueError(f"{filename}: expected a JSON object, got {type(data).__name__}")
    for key in ("sizes", "weights", "biases", "cost"):
        if key not in data:
            raise ValueError(f"{filename}: missing key {key!r}")
    # files of networks the book cannot run keep their cost in fastnn_cost (Network.save)
    cost_name = data.get("fastnn_cost", data["cost"])
    cost = _saved_cost(cost_name)
    if cost is None:
        raise ValueError(f"{filename}: unknown cost {cost_name!r}; expected one of "
                         f"{', '.join(COSTS)}, or a cost class of that name with fn and delta "
                         f"set on fastnn.network2 (as the book's load finds a class added to "
                         f"its module)")
    try:
        sizes = _core.check_sizes(data["sizes"])
    except (TypeError, ValueError) as e:
        raise ValueError(f"{filename}: bad 'sizes': {e}") from None
    L = len(sizes) - 1
    if not isinstance(data["weights"], list) or not isinstance(data["biases"], list) or \
            len(data["weights"]) != L or len(data["biases"]) != L:
        raise ValueError(f"{filename}: expected {L} weight and bias arrays for sizes {sizes}")
    weights, biases = [], []
    for l in range(L):
        try:
            w = np.array(data["weights"][l])
            b = np.array(data["biases"][l])
        except (TypeError, ValueError, OverflowError) as e:
            raise ValueError(f"{filename}: layer {l} is not a numeric array ({e})") from None
        # JSON numbers only: numpy would parse "0.5" (a string) or true as a number
        if w.dtype.kind not in "iuf" or b.dtype.kind not in "iuf":
            raise ValueError(f"{filename}: layer {l}: expected numbers in weights and biases, "
                             f"got {w.dtype} and {b.dtype} entries")
        w, b = w.astype(np.float64), b.astype(np.float64)
        if w.shape != (sizes[l + 1], sizes[l]):
            raise ValueError(f"{filename}: weights[{l}] has shape {w.shape}, but sizes say "
                             f"{(sizes[l + 1], sizes[l])}")
        if b.shape not in ((sizes[l + 1], 1), (sizes[l + 1],)):
            raise ValueError(f"{filename}: biases[{l}] has shape {b.shape}, but sizes say "
                             f"{(sizes[l + 1], 1)}")
        if not (np.isfinite(w).all() and np.isfinite(b).all()):
            raise ValueError(f"{filename}: layer {l} holds NaN or Inf")
        weights.append(w)
        biases.append(b.reshape(-1, 1))
    kwargs = {}
    for key in ("activation", "output_activation"):
        if key in data:
            kwargs[key] = data[key]
    try:
        net = Network(sizes, cost=cost, **kwargs)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{filename}: {e}") from None
    net.weights = weights
    net.biases = biases
    return net


def _saved_cost(name):
    """The cost class a file names: one of ours, or the reader's own class set on this module
    (the book's ``load`` looks the name up in its module); None if there is none."""
    if not isinstance(name, str):
        return None
    if name in COSTS:
        return COSTS[name]
    cost = globals().get(name)
    if isinstance(cost, type) and callable(getattr(cost, "fn", None)) and \
            callable(getattr(cost, "delta", None)):
        return cost
    return None


def vectorized_result(j):
    """Return a (10, 1) one-hot vector with 1.0 in position ``j``."""
    j = _core.check_int(j, "j", 0)
    if j > 9:
        raise ValueError(f"j: expected a digit 0..9, got {j}")
    e = np.zeros((10, 1))
    e[j] = 1.0
    return e

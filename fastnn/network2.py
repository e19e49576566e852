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
"""
import json
import os
import random

import numpy as np

from fastnn import _core
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
    cls = cost if isinstance(cost, type) else type(cost)
    if cls.__name__ in COSTS and COSTS[cls.__name__] is cls:
        return cls
    raise TypeError(f"cost: expected QuadraticCost, CrossEntropyCost or LogLikelihoodCost "
                    f"(the engine runs these), got {cost!r}")


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
        self.activation = _core.check_activation(activation, "activation")
        if output_activation is None:
            output_activation = "softmax" if self.cost is LogLikelihoodCost else "sigmoid"
        self.output_activation = _core.check_activation(output_activation, "output_activation",
                                                        allow_softmax=True)
        if self.cost is LogLikelihoodCost and self.output_activation != "softmax":
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
        return self.cost.engine_name

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
        with self._guard:
            caller_list = training_data if isinstance(training_data, list) else None
            pairs = _core.as_pairs(training_data, "training_data")
            X, Y, n = self._arrays(pairs, "training_data")
            if n == 0:
                raise ValueError("training_data: expected at least one example, got 0")
            evald, n_data = None, 0
            evaluation_data = _core.as_pairs(evaluation_data, "evaluation_data")
            if evaluation_data is not None and (_core.is_array_pair(evaluation_data)
                                                or len(evaluation_data)):
                eX, eY, n_data = self._arrays(evaluation_data, "evaluation_data", one_hot=False)
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
            orders = _core.nielsen_orders(n, epochs, random)
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
                    c = st["eval_cost"] / n_data + reg
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
                if caller_list is not None and epochs > 0:
                    caller_list[:] = [caller_list[i] for i in orders[epochs - 1]]
            return evaluation_cost, evaluation_accuracy, training_cost, training_accuracy

    def update_mini_batch(self, mini_batch, eta, lmbda, n):
        """One gradient-descent step on ``mini_batch`` with L2 weight decay (1 - eta*lmbda/n),
        ``n`` being the size of the whole training set."""
        eta = _core.check_float(eta, "eta", 0.0)
        lmbda = _core.check_float(lmbda, "lmbda", 0.0)
        n = _core.check_int(n, "n", 1)
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
        X, Y, n = self._arrays(data, "data", one_hot=False)
        if n == 0:
            return 0
        W, b = self._params()
        _, hits = _core.evaluate(W, b, self._acts(), self.cost.engine_name, X, Y,
                                 n_threads=self.n_threads, device=self.device)
        return int(hits)

    def total_cost(self, data, lmbda, convert=False):
        """Return the mean cost over ``data`` plus the L2 term 0.5*(lmbda/len(data))*sum w^2.

        As in the book, ``convert=False`` is for training data and ``convert=True`` for
        validation/test data; both label forms are read correctly either way."""
        lmbda = _core.check_float(lmbda, "lmbda", 0.0)
        X, Y, n = self._arrays(data, "data", one_hot=False)
        if n == 0:
            raise ValueError("data: expected at least one example, got 0")
        W, b = self._params()
        c, _ = _core.evaluate(W, b, self._acts(), self.cost.engine_name, X, Y,
                              n_threads=self.n_threads, device=self.device)
        return c / n + self._reg(lmbda, 0.0, n)

    def save(self, filename):
        """Save the network to ``filename`` as JSON (the book's format), atomically: a
        temporary file is written, flushed to disk, then renamed over ``filename``."""
        cost = _cost_class(self.cost)   # a class or an instance
        data = {"sizes": self.sizes,
                "weights": [np.asarray(w, dtype=np.float64).tolist() for w in self.weights],
                "biases": [np.asarray(b, dtype=np.float64).tolist() for b in self.biases],
                "cost": str(cost.__name__)}
        if self.activation != "sigmoid":
            data["activation"] = self.activation
        default_out = "softmax" if cost is LogLikelihoodCost else "sigmoid"
        if self.output_activation != default_out:
            data["output_activation"] = self.output_activation
        atomic_write_text(check_filename(filename), json.dumps(data))


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
    cost_name = data["cost"]
    if not isinstance(cost_name, str) or cost_name not in COSTS:
        raise ValueError(f"{filename}: unknown cost {cost_name!r}; expected one of "
                         f"{', '.join(COSTS)}")
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
        net = Network(sizes, cost=COSTS[cost_name], **kwargs)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{filename}: {e}") from None
    net.weights = weights
    net.biases = biases
    return net


def vectorized_result(j):
    """Return a (10, 1) one-hot vector with 1.0 in position ``j``."""
    j = _core.check_int(j, "j", 0)
    if j > 9:
        raise ValueError(f"j: expected a digit 0..9, got {j}")
    e = np.zeros((10, 1))
    e[j] = 1.0
    return e

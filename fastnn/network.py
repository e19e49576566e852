"""A drop-in for the book's chapter-1 ``network.py``, trained by the compiled engine.

    from fastnn import network             # in place of `import network`
    net = network.Network([784, 30, 10])
    net.SGD(training_data, 30, 10, 3.0, test_data=test_data)

Same names, arguments, defaults, printed lines and random numbers as the book's module: a
sigmoid network with the quadratic cost, stochastic gradient descent over mini-batches.
``weights[l]`` is ``(y, x)`` and ``biases[l]`` is ``(y, 1)``; they are plain numpy arrays that
you may read or replace between calls.  Layer 0 is the input layer and has no biases.

The book's exercises change this code: a subclass (or an instance) that overrides
``update_mini_batch``, ``backprop``, ``cost_derivative``, ``feedforward`` or ``evaluate``, or a
replaced ``network.sigmoid`` / ``sigmoid_prime``, is honoured: whatever would call the changed
code runs the book's algorithm in Python instead of the compiled engine (``fastnn._book``),
with a ``UserWarning`` saying so once.
"""
import random

import numpy as np

from fastnn import _book, _core, _orders
from fastnn._core import DivergenceError  # noqa: F401  (re-exported)


class Network(_core.EngineNetwork):
    """A feedforward sigmoid network trained with the quadratic cost."""

    def __init__(self, sizes, dtype=np.float64, n_threads=None, device=None):
        """Create a network with ``sizes[l]`` neurons in layer ``l``.

        Biases and weights are drawn from the standard normal distribution with
        ``np.random.randn``: all biases first, then all weights, as the book does.
        ``dtype`` may be float64 (the default, as in the book) or float32.
        """
        self.sizes = _core.check_sizes(sizes)
        self.num_layers = len(self.sizes)
        self.dtype = _core.check_dtype(dtype)
        self.n_threads = _core.check_n_threads(n_threads)
        self.device = device
        _core.resolve_device(device)
        self.biases = [np.random.randn(y, 1) for y in self.sizes[1:]]
        self.weights = [np.random.randn(y, x) for x, y in zip(self.sizes[:-1], self.sizes[1:])]
        if self.dtype != np.float64:
            self.biases = [b.astype(self.dtype) for b in self.biases]
            self.weights = [w.astype(self.dtype) for w in self.weights]
        self._guard = _core.TrainingGuard()

    # -- the engine's view --------------------------------------------------------------------
    _hidden = "sigmoid"
    _output = "sigmoid"
    _cost = "quadratic"

    def _acts(self):
        return [self._hidden] * (self.num_layers - 2) + [self._output]

    def _cost_name(self):
        return self._cost

    # -- the reader's own code: what the book's version of each method calls -----------------
    _CALLS = {"SGD": ("update_mini_batch", "evaluate"),
              "update_mini_batch": ("backprop",),
              "backprop": ("cost_derivative", "network.sigmoid"),
              "evaluate": ("feedforward",),
              "feedforward": ("network.sigmoid",)}

    def _reader_changes(self):
        """The methods a subclass or the instance overrides, and 'network.sigmoid' if the
        module's sigmoid or sigmoid_prime was replaced."""
        out = _book.changed(self, _ORIGINAL)
        if sigmoid is not _SIGMOID or sigmoid_prime is not _SIGMOID_PRIME:
            out.add("network.sigmoid")
        return out

    def _layer_activations(self):
        return [(sigmoid, sigmoid_prime)] * (self.num_layers - 1)

    def _python_path(self, method):
        """The reader's changes the book's ``method`` reaches (warned about once), or []."""
        why = _book.python_reasons(self, method)
        if why:
            _book.warn_once(self, method, why)
        return why

    # -- the book's API -------------------------------------------------------------------------
    def SGD(self, training_data, epochs, mini_batch_size, eta, test_data=None):
        """Train the network using mini-batch stochastic gradient descent.

        ``training_data`` is a list of ``(x, y)`` tuples (or an ``(X, y)`` pair of arrays).
        With ``test_data``, the network is evaluated after each epoch and the number of
        correct test results is printed.  The run is one call into the compiled engine for
        every few epochs (their example orders drawn as the book's shuffles draw them); a
        training-data list is left shuffled in place, as the book's code leaves it."""
        epochs = _core.check_int(epochs, "epochs", 0, _core.INT_MAX)
        mini_batch_size = _core.check_int(mini_batch_size, "mini_batch_size", 1)
        eta = _core.check_float(eta, "eta", 0.0)
        if self._python_path("SGD"):
            return _book.sgd(self, training_data, epochs, mini_batch_size, eta, test_data)
        with self._guard:
            caller_list = training_data if isinstance(training_data, list) else None
            pairs = _core.as_pairs(training_data, "training_data")
            X, Y, n = self._arrays(pairs, "training_data", rows=True)
            if n == 0:
                raise ValueError("training_data: expected at least one example, got 0")
            evald = None
            n_test = 0
            test_data = _core.as_pairs(test_data, "test_data")
            if test_data is not None and (_core.is_array_pair(test_data) or len(test_data)):
                tX, tY, n_test = self._arrays(test_data, "test_data", one_hot=False,
                                                rows=True)
                if n_test:                   # no examples: as the book's empty test list
                    evald = (tX, tY)
            orders = _core.shuffled_orders(n, epochs, random, chunk=_orders.BOOK_ORDER_CHUNK)
            W, b = self._params()

            def on_epoch(st):
                if evald is not None:
                    print("Epoch {0}: {1} / {2}".format(st["epoch"], st["eval_correct"], n_test))
                else:
                    print("Epoch {0} complete".format(st["epoch"]))

            try:
                if epochs > 0:
                    _core.train(W, b, X, Y, _core.TrainConfig(
                        acts=self._acts(), cost=self._cost, epochs=epochs,
                        batch=mini_batch_size, eta=eta, orders=orders, eval_data=evald,
                        on_epoch=on_epoch, n_threads=self.n_threads, device=self.device))
            finally:
                if caller_list is not None and orders.last is not None:
                    caller_list[:] = [caller_list[i] for i in orders.last]

    def update_mini_batch(self, mini_batch, eta):
        """Update the weights and biases by one gradient-descent step on ``mini_batch``, a
        list of ``(x, y)`` tuples, with learning rate ``eta``."""
        eta = _core.check_float(eta, "eta", 0.0)
        if self._python_path("update_mini_batch"):
            return _book.update_mini_batch(self, mini_batch, eta)
        with self._guard:
            X, Y, n = self._arrays(mini_batch, "mini_batch")
            if n == 0:
                raise ValueError("mini_batch: expected at least one example, got 0")
            W, b = self._params()
            _core.train(W, b, X, Y, _core.TrainConfig(acts=self._acts(), cost=self._cost,
                                                      epochs=1, batch=n, eta=eta, n_threads=1))

    def evaluate(self, test_data):
        """Return the number of test inputs for which the network's output neuron with the
        highest activation is the correct label."""
        if self._python_path("evaluate"):
            return _book.evaluate(self, test_data)
        X, Y, n = self._arrays(test_data, "test_data", one_hot=False, rows=True)
        if n == 0:
            return 0
        W, b = self._params()
        _, hits = _core.evaluate(W, b, self._acts(), self._cost, X, Y,
                                 n_threads=self.n_threads, device=self.device)
        return int(hits)

    def feedforward(self, a):
        """Return the output of the network if ``a`` is input (a column, or columns)."""
        if self._python_path("feedforward"):
            return _book.feedforward(self, a)
        return super().feedforward(a)

    def backprop(self, x, y):
        """Return ``(nabla_b, nabla_w)``, the gradient of the cost for one example, as lists
        of arrays shaped like ``self.biases`` and ``self.weights``."""
        if self._python_path("backprop"):
            return _book.backprop(self, x, y, lambda z, a, t: self.cost_derivative(a, t) *
                                  sigmoid_prime(z))
        return super().backprop(x, y)

    def cost_derivative(self, output_activations, y):
        """Return the vector of partial derivatives dC_x/da for the output activations."""
        return output_activations - y


_ORIGINAL = _book.originals(Network, ("update_mini_batch", "backprop", "cost_derivative",
                                      "feedforward", "evaluate"))


def sigmoid(z):
    """The sigmoid function, without overflow or underflow warnings for large |z|."""
    z = np.asarray(z, dtype=float) if not isinstance(z, np.ndarray) else z
    # exp(-|z|) for |z| past 700 is below 1e-304: clamp so numpy never warns
    e = np.exp(-np.minimum(np.abs(z), 700.0))
    r = 1.0 / (1.0 + e)
    return np.where(z >= 0, r, e * r)


def sigmoid_prime(z):
    """Derivative of the sigmoid function."""
    s = sigmoid(z)
    return s * (1 - s)


_SIGMOID, _SIGMOID_PRIME = sigmoid, sigmoid_prime

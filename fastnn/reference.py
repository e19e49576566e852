"""The numpy oracle: plain implementations of the network, written from the book's equations.

Every other backend (the compiled engine, the array-API backend) is tested against this module,
and the benchmarks use it as the ``loop`` and ``numpy`` peers. It depends on numpy only.

The four backpropagation equations of chapter 2, for a cost ``C`` and layers ``l = 1..L`` with
``z^l = w^l a^(l-1) + b^l`` and ``a^l = f(z^l)``::

    BP1  delta^L = dC/da^L * f'(z^L)              (the cost's ``delta``)
    BP2  delta^l = (w^(l+1)^T delta^(l+1)) * f'(z^l)
    BP3  dC/db^l = delta^l
    BP4  dC/dw^l = delta^l a^(l-1)^T

Two implementations follow:

- ``LoopNetwork``: the chapter-1 algorithm, one example (a column vector) at a time, sigmoid
  layers and the quadratic cost, float64.
- ``MatrixNetwork``: the same equations on a whole mini-batch at once, with every activation,
  cost, regularizer, optimizer and dropout described in DESIGN.md, in float32 or float64.

Layout, as in the book: ``weights[l]`` is ``(n_out, n_in)``, ``biases[l]`` is ``(n_out, 1)``.
Data passed in is ``X (n, n_in)`` and ``Y (n, n_out)``; inside ``MatrixNetwork`` a mini-batch is
held feature-major, ``(n_features, m)``: each column is one example, as in the book.
"""

import numpy as np
from scipy.special import erf as _erf

__all__ = [
    "ACTIVATIONS", "DERIVATIVES", "COSTS", "COST_DELTAS", "OPTIMIZERS",
    "identity", "sigmoid", "tanh", "relu", "softmax",
    "identity_prime", "sigmoid_prime", "tanh_prime", "relu_prime",
    "quadratic_cost", "quadratic_delta", "cross_entropy_cost", "cross_entropy_delta",
    "log_likelihood_cost", "log_likelihood_delta",
    "LoopNetwork", "MatrixNetwork", "nielsen_init",
]


# ---------------------------------------------------------------------------------------------
# Activations.  Each takes ``z`` (any shape; softmax: (n_features, m)) and returns a new array
# of the same dtype.  No function writes into its argument.
# ---------------------------------------------------------------------------------------------

_EXP_LIMITS = {}


def _exp_limit(dtype):
    """Return the largest ``t`` for which ``exp(t)`` and ``1/(1+exp(t))`` are finite and normal."""
    limit = _EXP_LIMITS.get(dtype)
    if limit is None:
        info = np.finfo(dtype)
        limit = float(np.floor(min(np.log(info.max), -np.log(info.tiny)))) - 1.0
        _EXP_LIMITS[dtype] = limit
    return limit


def _as_float_array(z):
    if isinstance(z, np.ndarray) and z.dtype.kind == "f":
        return z
    z = np.asarray(z)
    return z if z.dtype.kind == "f" else z.astype(np.float64)


def identity(z):
    """Return ``z`` (as a new array)."""
    return np.array(z, copy=True)


def identity_prime(z):
    """Return the derivative of the identity: ones."""
    return np.ones_like(z)


def sigmoid(z):
    """Return ``1/(1+exp(-z))`` elementwise, without overflow or underflow for any ``z``.

    The exponent is clamped to ``[-T, T]`` with ``T`` = 707 (float64) / 86 (float32), where
    ``exp`` and the result stay finite and normal; inside that range the value is exactly the
    textbook ``1/(1+exp(-z))``, outside it differs from the true value by less than 1e-300
    (float64) / 2e-38 (float32).
    """
    z = _as_float_array(z)
    limit = _exp_limit(z.dtype)
    t = np.negative(z, out=np.empty(z.shape, z.dtype))  # an array even for a 0-d z
    np.minimum(t, limit, out=t)
    np.maximum(t, -limit, out=t)
    np.exp(t, out=t)
    t += 1.0
    np.reciprocal(t, out=t)
    return t if t.ndim else t[()]


def sigmoid_prime(z):
    """Return the derivative of the sigmoid, ``s(1-s)``."""
    s = sigmoid(z)
    return s * (1.0 - s)


def tanh(z):
    """Return ``tanh(z)`` elementwise."""
    return np.tanh(z)


def tanh_prime(z):
    """Return the derivative of tanh, ``1 - tanh(z)^2``."""
    t = np.tanh(z)
    return 1.0 - t * t


def relu(z):
    """Return ``max(z, 0)`` elementwise."""
    return np.maximum(z, 0)


def relu_prime(z):
    """Return the derivative of relu: 1 where ``z > 0``, else 0 (so ``relu'(0) = 0``)."""
    z = _as_float_array(z)
    return (z > 0).astype(z.dtype)


def softmax(z):
    """Return the softmax of each column of ``z`` (features on axis 0), computed stably."""
    # z is (n_features, m)
    z = _as_float_array(z)
    e = z - z.max(axis=0, keepdims=True)
    with np.errstate(under="ignore"):  # exp of a very negative shift is 0, which is exact
        np.exp(e, out=e)
    e /= e.sum(axis=0, keepdims=True)
    return e


def gelu(z):
    """Return the exact GELU ``z Phi(z)``, ``Phi`` the standard normal CDF (Keras 3's default,
    ``approximate=False``)."""
    z = _as_float_array(z)
    return 0.5 * z * (1.0 + _erf(z / np.sqrt(2.0)))


def gelu_prime(z):
    """Return ``Phi(z) + z phi(z)``."""
    z = _as_float_array(z)
    return 0.5 * (1.0 + _erf(z / np.sqrt(2.0))) + z * np.exp(-0.5 * z * z) / np.sqrt(2 * np.pi)


def silu(z):
    """Return ``z sigmoid(z)`` (Keras' silu and swish)."""
    return _as_float_array(z) * sigmoid(z)


def silu_prime(z):
    """Return ``s + z s (1 - s)``, ``s = sigmoid(z)``."""
    z = _as_float_array(z)
    s = sigmoid(z)
    return s + z * s * (1.0 - s)


def elu(z):
    """Return ``z`` where ``z > 0``, else ``exp(z) - 1`` (alpha 1)."""
    z = _as_float_array(z)
    return np.where(z > 0, z, np.expm1(np.minimum(z, 0)))


def elu_prime(z):
    """Return 1 where ``z > 0``, else ``exp(z)``."""
    z = _as_float_array(z)
    return np.where(z > 0, 1.0, np.exp(np.minimum(z, 0))).astype(z.dtype)


SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def selu(z):
    """Return ``scale * (z if z > 0 else alpha (exp(z) - 1))`` (Klambauer et al.)."""
    z = _as_float_array(z)
    return SELU_SCALE * np.where(z > 0, z, SELU_ALPHA * np.expm1(np.minimum(z, 0)))


def selu_prime(z):
    """Return ``scale`` where ``z > 0``, else ``scale alpha exp(z)``."""
    z = _as_float_array(z)
    return (SELU_SCALE * np.where(z > 0, 1.0, SELU_ALPHA * np.exp(np.minimum(z, 0)))).astype(
        z.dtype)


LEAKY_SLOPE = 0.2        # Keras 3's leaky_relu negative_slope


def leaky_relu(z):
    """Return ``z`` where ``z > 0``, else ``0.2 z``."""
    z = _as_float_array(z)
    return np.where(z > 0, z, LEAKY_SLOPE * z)


def leaky_relu_prime(z):
    """Return 1 where ``z > 0``, else 0.2."""
    z = _as_float_array(z)
    return np.where(z > 0, 1.0, LEAKY_SLOPE).astype(z.dtype)


def softplus(z):
    """Return ``ln(1 + exp(z))``, as ``logaddexp(0, z)`` so it never overflows."""
    return np.logaddexp(0.0, _as_float_array(z))


def softplus_prime(z):
    """Return ``sigmoid(z)``."""
    return sigmoid(z)


ACTIVATIONS = {
    "identity": identity,
    "sigmoid": sigmoid,
    "tanh": tanh,
    "relu": relu,
    "softmax": softmax,
    "gelu": gelu,
    "silu": silu,
    "elu": elu,
    "selu": selu,
    "leaky_relu": leaky_relu,
    "softplus": softplus,
}

# softmax has no elementwise derivative; it is only used on the output layer, where the costs
# below handle it (log-likelihood: ``a - y``; quadratic: the Jacobian-vector product).
DERIVATIVES = {
    "identity": identity_prime,
    "sigmoid": sigmoid_prime,
    "tanh": tanh_prime,
    "relu": relu_prime,
    "gelu": gelu_prime,
    "silu": silu_prime,
    "elu": elu_prime,
    "selu": selu_prime,
    "leaky_relu": leaky_relu_prime,
    "softplus": softplus_prime,
}


# ---------------------------------------------------------------------------------------------
# Costs.  ``fn(a, y)`` is the cost summed over the features and the examples; ``delta(z, a, y,
# activation)`` is BP1, the error of the output layer, for the output activation named by
# ``activation``.  ``a``, ``y`` and ``z`` share one layout; the delta functions expect it
# feature-major, ``(n_out, m)``.  ``cost_scale`` multiplies both the cost and the delta.
# ---------------------------------------------------------------------------------------------

def quadratic_cost(a, y, cost_scale=1.0):
    """Return ``cost_scale * 0.5 * ||a - y||^2``, summed over features and examples."""
    d = a - y
    return cost_scale * 0.5 * np.sum(d * d)


def quadratic_delta(z, a, y, activation, cost_scale=1.0):
    """Return the output error ``cost_scale * (a - y) * f'(z)`` of the quadratic cost.

    For a softmax output, whose derivative is a Jacobian, this is ``J^T (a - y)`` per column,
    i.e. ``a * (g - sum(a * g))`` with ``g = a - y``.
    """
    g = a - y
    if activation == "softmax":
        delta = a * (g - np.sum(a * g, axis=0, keepdims=True))
    else:
        delta = g * DERIVATIVES[activation](z)
    if cost_scale != 1.0:
        delta *= cost_scale
    return delta


def _through_output(g, z, a, activation, cost_scale):
    """``g`` = dC/da back through the output activation to dC/dz (softmax: its Jacobian)."""
    if activation == "softmax":
        delta = a * (g - np.sum(a * g, axis=0, keepdims=True))
    else:
        delta = g * DERIVATIVES[activation](z)
    return delta * cost_scale if cost_scale != 1.0 else delta


def mean_absolute_cost(a, y, cost_scale=1.0):
    """Return ``cost_scale * sum |a - y|``."""
    return cost_scale * np.sum(np.abs(a - y))


def mean_absolute_delta(z, a, y, activation, cost_scale=1.0):
    """``cost_scale * sign(a - y)`` (sign(0) = 0) back through the output activation."""
    return _through_output(np.sign(a - y), z, a, activation, cost_scale)


def huber_cost(a, y, cost_scale=1.0):
    """Return ``cost_scale * sum h(a - y)``, h(e) = e^2/2 for |e| <= 1, else |e| - 1/2 (Keras'
    Huber loss with delta 1)."""
    e = np.abs(a - y)
    return cost_scale * np.sum(np.where(e <= 1.0, 0.5 * e * e, e - 0.5))


def huber_delta(z, a, y, activation, cost_scale=1.0):
    """``cost_scale * clip(a - y, -1, 1)`` back through the output activation."""
    return _through_output(np.clip(a - y, -1.0, 1.0), z, a, activation, cost_scale)


def cross_entropy_cost(a, y, cost_scale=1.0):
    """Return ``cost_scale * sum nan_to_num(-y ln a - (1-y) ln(1-a))``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        c = np.nan_to_num(-y * np.log(a) - (1 - y) * np.log(1 - a))
    return cost_scale * np.sum(c)


def cross_entropy_delta(z, a, y, activation, cost_scale=1.0):
    """Return ``cost_scale * (a - y)``: the exact gradient for a sigmoid output."""
    delta = a - y
    if cost_scale != 1.0:
        delta *= cost_scale
    return delta


def log_likelihood_cost(a, y, cost_scale=1.0):
    """Return ``cost_scale * sum nan_to_num(-y ln a)`` (``0 ln 0`` counts as 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        c = np.nan_to_num(-y * np.log(a))
    return cost_scale * np.sum(c)


def log_likelihood_delta(z, a, y, activation, cost_scale=1.0):
    """Return ``cost_scale * (a - y)``: the exact gradient for a softmax output, one-hot ``y``."""
    delta = a - y
    if cost_scale != 1.0:
        delta *= cost_scale
    return delta


COSTS = {
    "quadratic": quadratic_cost,
    "cross_entropy": cross_entropy_cost,
    "log_likelihood": log_likelihood_cost,
    "mean_absolute": mean_absolute_cost,
    "huber": huber_cost,
}

COST_DELTAS = {
    "quadratic": quadratic_delta,
    "cross_entropy": cross_entropy_delta,
    "log_likelihood": log_likelihood_delta,
    "mean_absolute": mean_absolute_delta,
    "huber": huber_delta,
}

OPTIMIZERS = ("sgd", "momentum", "adam", "rmsprop", "adagrad")


# ---------------------------------------------------------------------------------------------
# Initialisation.
# ---------------------------------------------------------------------------------------------

def nielsen_init(sizes, rng=np.random, scale="large"):
    """Return ``(weights, biases)`` drawn as the book's network.py / network2.py draw them.

    All biases are drawn first, ``randn(y, 1)`` layer by layer, then all weights,
    ``randn(y, x)``; with ``scale='default'`` each weight matrix is divided by ``sqrt(x)``
    (network2's ``default_weight_initializer``), with ``scale='large'`` it is not (network.py
    and network2's ``large_weight_initializer``). ``rng`` is ``np.random`` (the global state,
    so that ``np.random.seed`` reproduces the book), a ``RandomState`` or a ``Generator``.
    Note the return order, weights first, matching the constructors below.
    """
    if scale not in ("large", "default"):
        raise ValueError(f"scale must be 'large' or 'default', got {scale!r}")
    sizes = [int(s) for s in sizes]
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"sizes must hold at least two positive layer sizes, got {sizes}")
    randn = getattr(rng, "randn", None)
    if randn is None:  # np.random.Generator
        def randn(*shape):
            return rng.standard_normal(shape)
    biases = [randn(y, 1) for y in sizes[1:]]
    weights = [randn(y, x) for x, y in zip(sizes[:-1], sizes[1:])]
    if scale == "default":
        weights = [w / np.sqrt(w.shape[1]) for w in weights]
    return weights, biases


def _copy_parameters(weights, biases, dtype):
    """Return copies of ``weights`` and ``biases`` in ``dtype``, after checking their shapes."""
    if len(weights) != len(biases) or len(weights) == 0:
        raise ValueError(f"weights and biases must be two equally long, non-empty lists, got "
                         f"{len(weights)} weights and {len(biases)} biases")
    ws = [np.array(w, dtype=dtype, copy=True) for w in weights]
    bs = [np.array(b, dtype=dtype, copy=True) for b in biases]
    for l, (w, b) in enumerate(zip(ws, bs)):
        if b.ndim == 1:
            b = bs[l] = b.reshape(-1, 1)
        if w.ndim != 2 or b.shape != (w.shape[0], 1):
            raise ValueError(f"layer {l}: weights must be (n_out, n_in) and biases (n_out, 1), "
                             f"got {w.shape} and {b.shape}")
        if l > 0 and w.shape[1] != ws[l - 1].shape[0]:
            raise ValueError(f"layer {l}: weights shape {w.shape} expects {w.shape[1]} inputs, "
                             f"previous layer has {ws[l - 1].shape[0]} outputs")
    return ws, bs


# ---------------------------------------------------------------------------------------------
# The chapter-1 algorithm: one example at a time.
# ---------------------------------------------------------------------------------------------

class LoopNetwork:
    """Sigmoid layers, quadratic cost, float64, one example (a column vector) at a time.

    This is the "network.py algorithm" peer of the benchmarks: the gradient of a mini-batch is
    the sum of per-example backprop passes, accumulated in a Python loop.
    """

    def __init__(self, weights, biases):
        self.weights, self.biases = _copy_parameters(weights, biases, np.float64)
        self.sizes = [self.weights[0].shape[1]] + [w.shape[0] for w in self.weights]
        self.num_layers = len(self.sizes)

    def feedforward(self, a):
        """Return the output of the network if ``a`` (an ``(n_in, 1)`` column) is input."""
        a = np.asarray(a, dtype=np.float64).reshape(-1, 1)
        for w, b in zip(self.weights, self.biases):
            a = sigmoid(w @ a + b)
        return a

    def backprop(self, x, y):
        """Return ``(nabla_b, nabla_w)``, the gradient of ``0.5||a - y||^2`` for one example.

        ``x`` is an ``(n_in, 1)`` column and ``y`` an ``(n_out, 1)`` column; the lists are
        layer by layer, shaped like ``biases`` and ``weights``.
        """
        x = np.asarray(x, dtype=np.float64).reshape(-1, 1)
        y = np.asarray(y, dtype=np.float64).reshape(-1, 1)
        # forward, keeping every z^l and a^l (activations[0] is the input)
        zs = []
        activations = [x]
        for w, b in zip(self.weights, self.biases):
            z = w @ activations[-1] + b
            zs.append(z)
            activations.append(sigmoid(z))
        n_layers = len(self.weights)
        nabla_b = [None] * n_layers
        nabla_w = [None] * n_layers
        # BP1: output error
        delta = (activations[-1] - y) * sigmoid_prime(zs[-1])
        for l in range(n_layers - 1, -1, -1):
            if l < n_layers - 1:
                # BP2: pull the error of layer l+1 back through its weights
                delta = (self.weights[l + 1].T @ delta) * sigmoid_prime(zs[l])
            nabla_b[l] = delta                       # BP3
            nabla_w[l] = delta @ activations[l].T    # BP4 (activations[l] feeds layer l)
        return nabla_b, nabla_w

    def update_mini_batch(self, xs, ys, eta):
        """Apply one gradient-descent step for the examples ``xs`` with targets ``ys``.

        ``xs`` and ``ys`` are sequences of examples (columns, or the rows of 2-D arrays); the
        per-example gradients are summed and ``w -= (eta/m) * sum``, likewise for ``b``.
        """
        sum_b = [np.zeros_like(b) for b in self.biases]
        sum_w = [np.zeros_like(w) for w in self.weights]
        m = 0
        for x, y in zip(xs, ys):
            nabla_b, nabla_w = self.backprop(x, y)
            for l in range(len(sum_b)):
                sum_b[l] += nabla_b[l]
                sum_w[l] += nabla_w[l]
            m += 1
        if m == 0:
            return
        step = eta / m
        for l in range(len(sum_b)):
            self.weights[l] -= step * sum_w[l]
            self.biases[l] -= step * sum_b[l]

    def sgd_epoch(self, X, Y, order, mini_batch_size, eta):
        """Run one epoch of mini-batch SGD over ``X (n, n_in)``, ``Y (n, n_out)``.

        The mini-batches are consecutive slices of ``order`` (the last may be short).
        """
        X = np.asarray(X, dtype=np.float64)
        Y = np.asarray(Y, dtype=np.float64)
        order = np.asarray(order, dtype=np.intp)
        for start in range(0, len(order), mini_batch_size):
            batch = order[start:start + mini_batch_size]
            self.update_mini_batch([X[i].reshape(-1, 1) for i in batch],
                                   [Y[i].reshape(-1, 1) for i in batch], eta)

    def evaluate(self, X, labels):
        """Return the number of rows of ``X`` whose output's argmax equals the integer label."""
        X = np.asarray(X, dtype=np.float64)
        return int(sum(int(np.argmax(self.feedforward(x.reshape(-1, 1)))) == int(label)
                       for x, label in zip(X, labels)))


# ---------------------------------------------------------------------------------------------
# The mini-batch matrix implementation: the oracle for every feature.
# ---------------------------------------------------------------------------------------------

class MatrixNetwork:
    """A feed-forward network trained a whole mini-batch at a time, as in DESIGN.md.

    ``activation`` is used on every hidden layer and ``output_activation`` on the last one;
    ``cost`` is a key of ``COSTS``; all arithmetic is done in ``dtype``.
    """

    def __init__(self, weights, biases, activation="sigmoid", output_activation="sigmoid",
                 cost="quadratic", cost_scale=1.0, dtype=np.float64):
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise TypeError(f"dtype must be float32 or float64, got {self.dtype}")
        if activation not in DERIVATIVES:
            raise ValueError(f"activation must be one of {sorted(DERIVATIVES)} (softmax is for "
                             f"the output layer only), got {activation!r}")
        if output_activation not in ACTIVATIONS:
            raise ValueError(f"output_activation must be one of {sorted(ACTIVATIONS)}, "
                             f"got {output_activation!r}")
        if cost not in COSTS:
            raise ValueError(f"cost must be one of {sorted(COSTS)}, got {cost!r}")
        self.weights, self.biases = _copy_parameters(weights, biases, self.dtype)
        self.sizes = [self.weights[0].shape[1]] + [w.shape[0] for w in self.weights]
        self.num_layers = len(self.sizes)
        self.activation = activation
        self.output_activation = output_activation
        self.cost = cost
        self.cost_scale = float(cost_scale)
        self._scalar = self.dtype.type
        self.reset_optimizer()

    # -- helpers --------------------------------------------------------------------------

    def reset_optimizer(self):
        """Forget the optimizer state: momentum velocity, Adam moments and step count."""
        self.velocity_w = self.velocity_b = None
        self.adam_m_w = self.adam_m_b = self.adam_v_w = self.adam_v_b = None
        self.adam_t = 0
        self.extra_state = {}

    def _data(self, X, Y=None):
        """Return ``X`` (and ``Y``) as 2-D arrays of ``self.dtype`` after checking shapes."""
        X = np.asarray(X, dtype=self.dtype)
        if X.ndim != 2 or X.shape[1] != self.sizes[0]:
            raise ValueError(f"X must be (n, {self.sizes[0]}), got shape {X.shape}")
        if Y is None:
            return X
        Y = np.asarray(Y, dtype=self.dtype)
        if Y.shape != (X.shape[0], self.sizes[-1]):
            raise ValueError(f"Y must be ({X.shape[0]}, {self.sizes[-1]}), got shape {Y.shape}")
        return X, Y

    def _forward(self, A, dropout_masks=None, dropout=0.0):
        """Return ``(zs, activations)`` for the feature-major batch ``A (n_in, m)``.

        ``activations[0]`` is ``A``; hidden activations are multiplied by ``k/(1-p)`` when
        ``dropout_masks`` (``(m, n_hidden)`` keep masks, one per hidden layer) are given.
        """
        f = ACTIVATIONS[self.activation]
        last = len(self.weights) - 1
        keep_scale = 1.0 / (1.0 - dropout)
        zs = []
        activations = [A]
        for l, (w, b) in enumerate(zip(self.weights, self.biases)):
            z = w @ activations[-1] + b            # (n_out, n_in) @ (n_in, m) + (n_out, 1)
            zs.append(z)
            if l == last:
                a = ACTIVATIONS[self.output_activation](z)
            else:
                a = f(z)
                if dropout_masks is not None:
                    a *= self._keep(dropout_masks[l], keep_scale, a.shape)
            activations.append(a)
        return zs, activations

    def _keep(self, mask, keep_scale, shape):
        """Return the feature-major multiplier ``k/(1-p)`` for one hidden layer."""
        mask = np.asarray(mask, dtype=self.dtype)
        if mask.shape != shape[::-1]:
            raise ValueError(f"dropout mask must be {shape[::-1]}, got shape {mask.shape}")
        return mask.T * self._scalar(keep_scale)

    # -- forward --------------------------------------------------------------------------

    def feedforward(self, X):
        """Return the outputs ``(n, n_out)`` of the network for the rows of ``X (n, n_in)``."""
        X = self._data(X)
        return np.ascontiguousarray(self._forward(X.T)[1][-1].T)

    def batch_cost(self, X, Y, dropout_masks=None, dropout=0.0):
        """Return the cost summed over the rows of ``X`` (times ``cost_scale``), unregularized.

        With ``dropout_masks`` the hidden layers are masked as in training, so this is the
        function whose gradient ``backprop`` returns.
        """
        X, Y = self._data(X, Y)
        a = self._forward(X.T, dropout_masks, dropout)[1][-1]
        return float(COSTS[self.cost](a, Y.T, self.cost_scale))

    # -- backward -------------------------------------------------------------------------

    def backprop(self, X, Y, dropout_masks=None, dropout=0.0):
        """Return ``(nabla_b, nabla_w)``: the cost gradient summed over the rows of ``X``.

        No regularization. ``nabla_b[l]`` is ``(n_out, 1)`` and ``nabla_w[l]`` is
        ``(n_out, n_in)``. ``dropout_masks`` is a list of ``(m, n_hidden)`` 0/1 keep masks, one
        per hidden layer; a kept unit's activation and its backward delta are both multiplied
        by ``1/(1-dropout)``, a dropped one's by 0.
        """
        X, Y = self._data(X, Y)
        if dropout_masks is not None and len(dropout_masks) != len(self.weights) - 1:
            raise ValueError(f"dropout_masks must hold one mask per hidden layer "
                             f"({len(self.weights) - 1}), got {len(dropout_masks)}")
        zs, activations = self._forward(X.T, dropout_masks, dropout)
        fprime = DERIVATIVES.get(self.activation)
        keep_scale = 1.0 / (1.0 - dropout)
        n_layers = len(self.weights)
        nabla_b = [None] * n_layers
        nabla_w = [None] * n_layers
        # BP1: output error, (n_out, m)
        delta = COST_DELTAS[self.cost](zs[-1], activations[-1], Y.T, self.output_activation,
                                       self.cost_scale)
        for l in range(n_layers - 1, -1, -1):
            if l < n_layers - 1:
                # BP2, with the dropout multiplier of the hidden layer l (same as forward)
                delta = (self.weights[l + 1].T @ delta) * fprime(zs[l])
                if dropout_masks is not None:
                    delta *= self._keep(dropout_masks[l], keep_scale, delta.shape)
            nabla_b[l] = delta.sum(axis=1, keepdims=True)    # BP3, summed over the batch
            nabla_w[l] = delta @ activations[l].T            # BP4, summed over the batch
        return nabla_b, nabla_w

    def gradient(self, X, Y, lmbda=0.0, l1=0.0, n=None, dropout_masks=None, dropout=0.0):
        """Return ``(g_b, g_w)``, the gradient every optimizer uses for the batch ``X, Y``.

        ``g_w = nabla_w/m + (lmbda/n) w + (l1/n) sign(w)`` and ``g_b = nabla_b/m``, with ``m``
        the batch size and ``n`` (default ``m``) the size of the whole training set.
        """
        X, Y = self._data(X, Y)
        m = X.shape[0]
        n = m if n is None else n
        nabla_b, nabla_w = self.backprop(X, Y, dropout_masks, dropout)
        s = self._scalar
        inv_m = s(1.0 / m)
        g_b = [nb * inv_m for nb in nabla_b]
        g_w = []
        for w, nw in zip(self.weights, nabla_w):
            g = nw * inv_m
            if lmbda:
                g += s(lmbda / n) * w
            if l1:
                g += s(l1 / n) * np.sign(w)
            g_w.append(g)
        return g_b, g_w

    # -- training -------------------------------------------------------------------------

    def train_epoch(self, X, Y, order, mini_batch_size, eta, lmbda=0.0, l1=0.0, n=None,
                    optimizer="sgd", momentum=0.0, beta1=0.9, beta2=0.999, eps=1e-7,
                    dropout=0.0, mask_fn=None, rho=0.9, initial_accumulator=0.1):
        """Run one epoch over the mini-batches that are consecutive slices of ``order``.

        ``n`` (default ``len(X)``) scales the regularization terms. ``optimizer`` is one of
        ``OPTIMIZERS``; its state lives on the object across calls until ``reset_optimizer``.
        With ``dropout > 0``, ``mask_fn(batch_index, layer_index, (m, n_hidden))`` must return
        the 0/1 keep mask of hidden layer ``layer_index`` (0-based) for the ``batch_index``-th
        mini-batch (0-based, counted within this call).
        """
        X, Y = self._data(X, Y)
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
        if int(mini_batch_size) < 1:
            raise ValueError(f"mini_batch_size must be >= 1, got {mini_batch_size}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if dropout > 0.0 and mask_fn is None:
            raise ValueError("dropout > 0 needs mask_fn(batch_index, layer_index, shape)")
        mini_batch_size = int(mini_batch_size)
        order = np.asarray(order, dtype=np.intp)
        n = len(X) if n is None else n
        hidden = self.sizes[1:-1]
        for j, start in enumerate(range(0, len(order), mini_batch_size)):
            idx = order[start:start + mini_batch_size]
            masks = None
            if dropout > 0.0:
                masks = [mask_fn(j, l, (len(idx), h)) for l, h in enumerate(hidden)]
            g_b, g_w = self.gradient(X[idx], Y[idx], lmbda, l1, n, masks, dropout)
            if optimizer == "sgd":
                self._sgd_step(g_b, g_w, eta)
            elif optimizer == "momentum":
                self._momentum_step(g_b, g_w, eta, momentum)
            elif optimizer == "adam":
                self._adam_step(g_b, g_w, eta, beta1, beta2, eps)
            elif optimizer == "rmsprop":
                self._rmsprop_step(g_b, g_w, eta, rho, momentum, eps)
            else:
                self._adagrad_step(g_b, g_w, eta, initial_accumulator, eps)

    def _sgd_step(self, g_b, g_w, eta):
        # p -= eta g
        eta = self._scalar(eta)
        for p, g in zip(self.biases + self.weights, g_b + g_w):
            p -= eta * g

    def _momentum_step(self, g_b, g_w, eta, mu):
        # v = mu v - eta g; p += v
        if self.velocity_w is None:
            self.velocity_b = [np.zeros_like(b) for b in self.biases]
            self.velocity_w = [np.zeros_like(w) for w in self.weights]
        eta, mu = self._scalar(eta), self._scalar(mu)
        for p, v, g in zip(self.biases + self.weights, self.velocity_b + self.velocity_w,
                           g_b + g_w):
            v *= mu
            v -= eta * g
            p += v

    def _adam_step(self, g_b, g_w, lr, beta1, beta2, eps):
        # t += 1; m += (1-b1)(g-m); v += (1-b2)(g^2-v)
        # p -= lr sqrt(1-b2^t)/(1-b1^t) * m/(sqrt(v)+eps)   (Keras 3)
        if self.adam_m_w is None:
            self.adam_m_b = [np.zeros_like(b) for b in self.biases]
            self.adam_m_w = [np.zeros_like(w) for w in self.weights]
            self.adam_v_b = [np.zeros_like(b) for b in self.biases]
            self.adam_v_w = [np.zeros_like(w) for w in self.weights]
        self.adam_t += 1
        t = self.adam_t
        s = self._scalar
        alpha = s(lr * np.sqrt(1.0 - beta2 ** t) / (1.0 - beta1 ** t))
        c1, c2, eps = s(1.0 - beta1), s(1.0 - beta2), s(eps)
        for p, m, v, g in zip(self.biases + self.weights, self.adam_m_b + self.adam_m_w,
                              self.adam_v_b + self.adam_v_w, g_b + g_w):
            m += c1 * (g - m)
            v += c2 * (g * g - v)
            p -= alpha * m / (np.sqrt(v) + eps)

    def _slots(self, name, k, fill=0.0):
        # k lists of per-parameter arrays (biases first, then weights), kept on the object
        st = self.extra_state.get(name)
        if st is None:
            st = [[np.full_like(p, fill) for p in self.biases + self.weights] for _ in range(k)]
            self.extra_state[name] = st
        return st

    def _rmsprop_step(self, g_b, g_w, lr, rho, mu, eps):
        # v = rho v + (1-rho) g^2; u = lr g / sqrt(v + eps); p -= u
        # (momentum mu > 0: m = mu m + u; p -= m)          (Keras 3)
        ms, mom = self._slots("rmsprop", 2)
        s = self._scalar
        lr, rho, mu, eps = s(lr), s(rho), s(mu), s(eps)
        for p, v, m, g in zip(self.biases + self.weights, ms, mom, g_b + g_w):
            v[...] = rho * v + (1 - rho) * g * g
            u = lr * g / np.sqrt(v + eps)
            if mu > 0:
                m[...] = mu * m + u
                p -= m
            else:
                p -= u

    def _adagrad_step(self, g_b, g_w, lr, initial, eps):
        # a += g^2; p -= lr g / sqrt(a + eps), a starting at `initial`      (Keras 3)
        (acc,) = self._slots("adagrad", 1, initial)
        s = self._scalar
        lr, eps = s(lr), s(eps)
        for p, a, g in zip(self.biases + self.weights, acc, g_b + g_w):
            a += g * g
            p -= lr * g / np.sqrt(a + eps)

    # -- evaluation -----------------------------------------------------------------------

    def total_cost(self, X, Y, lmbda=0.0, l1=0.0):
        """Return the mean cost over the rows of ``X`` plus the regularization terms.

        ``0.5 (lmbda/len(X)) sum ||w||^2 + (l1/len(X)) sum |w|`` are added, as network2 does.
        """
        X, Y = self._data(X, Y)
        n = X.shape[0]
        if n == 0:
            raise ValueError("X must hold at least one example")
        a = self._forward(X.T)[1][-1]
        cost = float(COSTS[self.cost](a, Y.T, self.cost_scale)) / n
        if lmbda:
            cost += 0.5 * (lmbda / n) * sum(float(np.sum(w * w)) for w in self.weights)
        if l1:
            cost += (l1 / n) * sum(float(np.sum(np.abs(w))) for w in self.weights)
        return cost

    def accuracy(self, X, Y):
        """Return how many rows have ``argmax(output) == argmax(Y)`` (first maximum).

        ``Y`` may also be a 1-D array of integer labels.
        """
        X = self._data(X)
        predicted = np.argmax(self._forward(X.T)[1][-1], axis=0)
        Y = np.asarray(Y)
        labels = Y if Y.ndim == 1 else np.argmax(Y, axis=1)
        if labels.shape != predicted.shape:
            raise ValueError(f"Y must be ({X.shape[0]}, {self.sizes[-1]}) or ({X.shape[0]},), "
                             f"got shape {Y.shape}")
        return int(np.sum(predicted == labels))

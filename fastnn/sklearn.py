"""scikit-learn estimators over the fastnn engine: ``FastNNClassifier`` and ``FastNNRegressor``.

    from fastnn.sklearn import FastNNClassifier
    clf = FastNNClassifier(hidden_layer_sizes=(128,), activation="relu",
                           cost="log_likelihood", optimizer="adam", epochs=5,
                           mini_batch_size=32, random_state=0)
    clf.fit(X_train, y_train, eval_set=(X_test, y_test))
    clf.score(X_test, y_test), clf.history_["eval_accuracy"]

They are thin front doors, like ``network2``: ``fit`` is one call of ``fastnn._core.train`` (the
whole run, every epoch, inside the compiled engine).  scikit-learn is an optional extra
(``pip install fastnn[sklearn]``).

Learning rate.  ``eta`` (Nielsen's name) and ``learning_rate`` (Keras' name) are the same
number; when both are set, ``eta`` wins.  When neither is set the default depends on the
optimizer: ``DEFAULT_ETA`` = 0.5 for ``sgd`` (the book's chapter-3 value), 0.05 for
``momentum`` (a step of about 0.5 once the velocity builds up with ``momentum=0.9``) and 1e-3
for ``adam`` (Keras' default).  The regressor's identity output is unbounded, so its sgd and
momentum defaults are ten times smaller (``REGRESSOR_DEFAULT_ETA``).

Randomness, and agreement with ``network2``.  ``random_state`` seeds both the initial weights
and the example order of every epoch, drawn exactly as ``network2`` draws them:

- weights: ``np.random.RandomState(random_state)`` draws the biases of every layer, then the
  weights of every layer (``network2.Network.default_weight_initializer``'s order);
- order: ``random.Random(random_state)`` shuffles a list of indices once per epoch
  (``_core.nielsen_orders``, the same calls as the book's ``random.shuffle(training_data)``).

So ``FastNNClassifier(random_state=s, ...)`` trains exactly the network that ``network2`` trains
after ``np.random.seed(s); random.seed(s)`` with the same sizes, cost, activation and ``SGD``
arguments.  ``random_state=None`` uses the same global generators network2 uses
(``np.random`` for the weights, the ``random`` module for the order); a ``RandomState``
instance draws the weights, then one integer that seeds the order's ``random.Random``.

Fitted attributes follow network2's layout: ``weights_[l]`` is ``(n_out, n_in)``, ``biases_[l]``
is ``(n_out, 1)`` (note: ``MLPClassifier.coefs_`` is the transpose).
"""
import numbers
import random

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from fastnn import _core

__all__ = ["FastNNClassifier", "FastNNRegressor", "DEFAULT_ETA", "REGRESSOR_DEFAULT_ETA"]

DEFAULT_ETA = {"sgd": 0.5, "momentum": 0.05, "adam": 1e-3}
# an identity output is unbounded: the book's 0.5 diverges on standardized targets
REGRESSOR_DEFAULT_ETA = {"sgd": 0.05, "momentum": 0.005, "adam": 1e-3}

# cost -> output activation (the engine runs the cost by name; DESIGN.md lists the pairs)
CLASSIFIER_OUTPUT = {"cross_entropy": "sigmoid", "log_likelihood": "softmax",
                     "quadratic": "sigmoid"}
REGRESSOR_OUTPUT = {"quadratic": "identity"}

INITIALIZERS = ("default", "large", "glorot_uniform")


def init_params(sizes, initializer, rs, dtype):
    """Return ``(weights, biases)`` for ``sizes`` drawn from the RandomState ``rs``.

    'default' and 'large' draw in network2's order (all biases, then all weights), so that a
    RandomState seeded with s gives the arrays network2 gives after ``np.random.seed(s)``;
    'glorot_uniform' is Keras' Dense default (weights U(-l, l), l = sqrt(6/(n_in+n_out)),
    biases zero)."""
    pairs = list(zip(sizes[:-1], sizes[1:]))
    if initializer == "glorot_uniform":
        weights = [rs.uniform(-np.sqrt(6.0 / (x + y)), np.sqrt(6.0 / (x + y)), (y, x))
                   for x, y in pairs]
        biases = [np.zeros((y, 1)) for y in sizes[1:]]
    else:
        biases = [rs.randn(y, 1) for y in sizes[1:]]
        scale = (lambda x: np.sqrt(x)) if initializer == "default" else (lambda x: 1.0)
        weights = [rs.randn(y, x) / scale(x) for x, y in pairs]
    return ([np.ascontiguousarray(w, dtype=dtype) for w in weights],
            [np.ascontiguousarray(b, dtype=dtype) for b in biases])


def shuffle_rng(random_state, rs):
    """The generator of the example orders (see the module docstring)."""
    if random_state is None:
        return random                      # the global one, as network2
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        return random.Random(int(random_state))
    return random.Random(int(rs.randint(0, 2 ** 31 - 1)))


class _FastNNBase(BaseEstimator):
    """What both estimators share: parameter checks, one engine call, prediction."""

    _outputs = None       # cost -> output activation, set by the subclasses
    _default_eta = DEFAULT_ETA

    def _check_params(self):
        """Validate the constructor parameters (at fit time, as scikit-learn asks)."""
        hidden = self.hidden_layer_sizes
        if isinstance(hidden, numbers.Integral) and not isinstance(hidden, bool):
            hidden = (hidden,)
        if isinstance(hidden, (str, bytes)) or not hasattr(hidden, "__iter__"):
            raise TypeError(f"hidden_layer_sizes: expected a tuple of ints such as (30,), got "
                            f"{type(hidden).__name__} ({hidden!r})")
        hidden = list(hidden)
        for i, h in enumerate(hidden):
            if isinstance(h, bool) or not isinstance(h, numbers.Integral):
                raise TypeError(f"hidden_layer_sizes[{i}]: expected an int, got "
                                f"{type(h).__name__} ({h!r})")
            if h < 1:
                raise ValueError(f"hidden_layer_sizes[{i}]: expected a positive int, got {h}")
        activation = _core.check_activation(self.activation, "activation")
        if self.cost not in self._outputs:
            raise ValueError(f"cost: expected one of {', '.join(map(repr, self._outputs))}, "
                             f"got {self.cost!r}")
        if self.optimizer not in DEFAULT_ETA:
            raise ValueError(f"optimizer: expected one of {', '.join(map(repr, DEFAULT_ETA))}, "
                             f"got {self.optimizer!r}")
        if self.initializer not in INITIALIZERS:
            raise ValueError(f"initializer: expected one of "
                             f"{', '.join(map(repr, INITIALIZERS))}, got {self.initializer!r}")
        eta = self.eta if self.eta is not None else self.learning_rate
        name = "eta" if self.eta is not None else "learning_rate"
        eta = (self._default_eta[self.optimizer] if eta is None
               else _core.check_float(eta, name, 0.0))
        return {
            "hidden": [int(h) for h in hidden],
            "acts": [activation] * len(hidden) + [self._outputs[self.cost]],
            "eta": eta,
            "momentum": _core.check_float(self.momentum, "momentum", 0.0, 1.0, max_open=True),
            "lmbda": _core.check_float(self.lmbda, "lmbda", 0.0),
            "batch": _core.check_int(self.mini_batch_size, "mini_batch_size", 1),
            "epochs": _core.check_int(self.epochs, "epochs", 1),
            "dtype": _core.check_dtype(self.dtype),
        }

    def _validate_X(self, X, reset, **kw):
        return validate_data(self, X, reset=reset, dtype=[np.float64, np.float32],
                             accept_sparse=False, **kw)

    def _train(self, X, Y, eval_XY, n_eval, p):
        """Draw the initial weights and the orders, then train in one engine call."""
        dtype = p["dtype"]
        n = X.shape[0]
        sizes = _core.check_sizes([X.shape[1]] + p["hidden"] + [Y.shape[1]])
        rs = check_random_state(self.random_state)
        W, b = init_params(sizes, self.initializer, rs, dtype)
        orders = _core.shuffled_orders(n, p["epochs"], shuffle_rng(self.random_state, rs))
        history = {"epoch": [], "eval_cost": [], "eval_correct": [], "eval_accuracy": []}

        def on_epoch(st):
            history["epoch"].append(int(st["epoch"]))
            if eval_XY is not None:
                history["eval_cost"].append(float(st["eval_cost"]) / n_eval)
                history["eval_correct"].append(int(st["eval_correct"]))
                history["eval_accuracy"].append(int(st["eval_correct"]) / n_eval)

        flat_b = [x.reshape(-1) for x in b]
        res = _core.train(W, flat_b, X, Y, _core.TrainConfig(
            acts=p["acts"], cost=self.cost, epochs=p["epochs"], batch=p["batch"], eta=p["eta"],
            lmbda=p["lmbda"], reg_n=n, optimizer=self.optimizer, momentum=p["momentum"],
            state=_core.new_state(self.optimizer, W, flat_b), orders=orders, eval_data=eval_XY,
            on_epoch=on_epoch, n_threads=self.n_threads))
        self.weights_, self.biases_ = W, b
        self.n_layers_ = len(sizes)
        self.n_outputs_ = sizes[-1]
        self.activations_ = list(p["acts"])
        self.out_activation_ = p["acts"][-1]
        self.n_iter_ = int(res["epochs_done"])
        self.history_ = history
        return self

    def _forward(self, X):
        check_is_fitted(self, "weights_")
        X = self._validate_X(X, reset=False)
        X = np.ascontiguousarray(X, dtype=self.weights_[0].dtype)
        # the engine takes writeable C arrays (an unpickled or memmapped model may be neither)
        W = [np.require(w, requirements=["C", "W"]) for w in self.weights_]
        flat_b = [np.require(x, requirements=["C", "W"]).reshape(-1) for x in self.biases_]
        return _core.predict(W, flat_b, self.activations_, X,
                             n_threads=self.n_threads)


class FastNNClassifier(ClassifierMixin, _FastNNBase):
    """A feedforward classifier trained by the fastnn engine.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default (30,)
        Neurons of each hidden layer; ``()`` gives no hidden layer.
    activation : a hidden activation of the engine's table ('sigmoid', 'tanh', 'relu',
        'identity', 'gelu', 'silu', 'elu', 'selu', 'leaky_relu', 'softplus'), default 'sigmoid'
        Activation of the hidden layers.
    cost : {'cross_entropy', 'log_likelihood', 'quadratic'}, default 'cross_entropy'
        'cross_entropy' and 'quadratic' have a sigmoid output layer, 'log_likelihood' a
        softmax output layer.
    optimizer : {'sgd', 'momentum', 'adam'}, default 'sgd'
    eta, learning_rate : float or None, default None
        The step size; ``eta`` wins when both are set; None: ``DEFAULT_ETA[optimizer]``.
    momentum : float in [0, 1), default 0.9
        Used by ``optimizer='momentum'`` only.
    lmbda : float, default 0.0
        L2 regularization (the book's lambda; weights shrink by ``1 - eta*lmbda/n``).
    mini_batch_size : int, default 10
    epochs : int, default 10
    dtype : 'float64' or 'float32', default 'float64'
    n_threads : int or None, default None
        Engine threads (None: ``fastnn.get_num_threads()``).
    random_state : None, int or RandomState, default None
        Seeds the initial weights and the example orders (see the module docstring).
    initializer : {'default', 'large', 'glorot_uniform'}, default 'default'
        network2's ``default_weight_initializer`` (N(0, 1/n_in) weights), its
        ``large_weight_initializer``, or Keras' Dense default.

    Attributes
    ----------
    classes_ : the class labels; output neuron ``k`` stands for ``classes_[k]``.
    weights_, biases_ : lists of ``(n_out, n_in)`` and ``(n_out, 1)`` arrays (network2 layout).
    history_ : dict of per-epoch lists ``epoch``, and with ``eval_set``: ``eval_accuracy``,
        ``eval_correct``, ``eval_cost`` (mean cost per example, without regularization).
    n_iter_ : epochs trained.
    """

    _outputs = CLASSIFIER_OUTPUT

    def __init__(self, hidden_layer_sizes=(30,), activation="sigmoid", cost="cross_entropy",
                 optimizer="sgd", eta=None, learning_rate=None, momentum=0.9, lmbda=0.0,
                 mini_batch_size=10, epochs=10, dtype="float64", n_threads=None,
                 random_state=None, initializer="default"):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.cost = cost
        self.optimizer = optimizer
        self.eta = eta
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.lmbda = lmbda
        self.mini_batch_size = mini_batch_size
        self.epochs = epochs
        self.dtype = dtype
        self.n_threads = n_threads
        self.random_state = random_state
        self.initializer = initializer

    def fit(self, X, y, eval_set=None):
        """Train on ``X`` (n, n_features) and labels ``y`` (n,) of any type; return self.

        ``eval_set=(X_eval, y_eval)`` is evaluated after every epoch inside the engine
        (``history_``); its labels must be among those of ``y``."""
        p = self._check_params()
        X, y = self._validate_X(X, reset=True, y=y)
        check_classification_targets(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        X = np.ascontiguousarray(X, dtype=p["dtype"])
        Y, _ = _core.labels_to_onehot(codes, len(self.classes_), p["dtype"], "y")
        eval_XY, n_eval = None, 0
        if eval_set is not None:
            eval_XY, n_eval = self._eval_arrays(eval_set, p["dtype"])
        return self._train(X, Y, eval_XY, n_eval, p)

    def _eval_arrays(self, eval_set, dtype):
        if not isinstance(eval_set, (tuple, list)) or len(eval_set) != 2:
            raise TypeError("eval_set: expected an (X, y) pair")
        eX = np.ascontiguousarray(self._validate_X(eval_set[0], reset=False), dtype=dtype)
        ey = np.asarray(eval_set[1]).ravel()
        if ey.shape[0] != eX.shape[0]:
            raise ValueError(f"eval_set: expected {eX.shape[0]} labels, got {ey.shape[0]}")
        if eX.shape[0] == 0:
            raise ValueError("eval_set: expected at least one example, got 0")
        codes = np.searchsorted(self.classes_, ey)
        codes = np.minimum(codes, len(self.classes_) - 1)
        unknown = self.classes_[codes] != ey
        if unknown.any():
            raise ValueError(f"eval_set: labels {np.unique(ey[unknown])[:5].tolist()} are not "
                             f"among the training classes {self.classes_[:10].tolist()}")
        eY, _ = _core.labels_to_onehot(codes, len(self.classes_), dtype, "eval_set y")
        return (eX, eY), eX.shape[0]

    def predict_proba(self, X):
        """Return class probabilities ``(n, n_classes)``, columns in ``classes_`` order.

        The softmax output for ``cost='log_likelihood'``; for sigmoid outputs each row of
        outputs divided by its sum (same argmax as ``predict``, not calibrated)."""
        a = self._forward(X).astype(np.float64)
        if self.out_activation_ == "softmax":
            return a
        s = a.sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            p = np.where(s > 0, a / np.where(s > 0, s, 1.0), 1.0 / a.shape[1])
        return p

    def predict(self, X):
        """Return the class of the largest output of each row of ``X``."""
        out = self._forward(X)
        return self.classes_[np.argmax(out, axis=1)]


class FastNNRegressor(RegressorMixin, _FastNNBase):
    """A feedforward regressor trained by the fastnn engine: the quadratic cost
    ``0.5*||a - y||^2`` with an identity output layer.

    Parameters are those of ``FastNNClassifier``, except: ``cost`` accepts only 'quadratic',
    and the default step is ``REGRESSOR_DEFAULT_ETA[optimizer]`` (0.05 for sgd, 0.005 for
    momentum, 1e-3 for adam).  ``y`` may be ``(n,)`` or ``(n, n_outputs)``.  Targets are used
    as given: scale them (e.g. with ``TransformedTargetRegressor``) when they are large.
    """

    _outputs = REGRESSOR_OUTPUT
    _default_eta = REGRESSOR_DEFAULT_ETA

    def __init__(self, hidden_layer_sizes=(30,), activation="sigmoid", cost="quadratic",
                 optimizer="sgd", eta=None, learning_rate=None, momentum=0.9, lmbda=0.0,
                 mini_batch_size=10, epochs=10, dtype="float64", n_threads=None,
                 random_state=None, initializer="default"):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.cost = cost
        self.optimizer = optimizer
        self.eta = eta
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.lmbda = lmbda
        self.mini_batch_size = mini_batch_size
        self.epochs = epochs
        self.dtype = dtype
        self.n_threads = n_threads
        self.random_state = random_state
        self.initializer = initializer

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def fit(self, X, y, eval_set=None):
        """Train on ``X`` (n, n_features) and targets ``y`` (n,) or (n, n_outputs); return
        self.  ``eval_set=(X_eval, y_eval)`` records ``history_['eval_cost']`` per epoch."""
        p = self._check_params()
        X, y = self._validate_X(X, reset=True, y=y, multi_output=True, y_numeric=True)
        self._y_1d = np.ndim(y) == 1
        Y = np.ascontiguousarray(np.reshape(y, (len(y), -1)), dtype=p["dtype"])
        X = np.ascontiguousarray(X, dtype=p["dtype"])
        eval_XY, n_eval = None, 0
        if eval_set is not None:
            if not isinstance(eval_set, (tuple, list)) or len(eval_set) != 2:
                raise TypeError("eval_set: expected an (X, y) pair")
            eX = np.ascontiguousarray(self._validate_X(eval_set[0], reset=False),
                                      dtype=p["dtype"])
            eY = _core._as_float_matrix(np.reshape(eval_set[1], (eX.shape[0], -1)),
                                        "eval_set y", p["dtype"], Y.shape[1])
            eval_XY, n_eval = (eX, eY), eX.shape[0]
        return self._train(X, Y, eval_XY, n_eval, p)

    def predict(self, X):
        """Return the network's output: ``(n,)``, or ``(n, n_outputs)`` for 2-D targets."""
        out = self._forward(X).astype(np.float64)
        return out.ravel() if self._y_1d else out

"""Keras-style losses, mapped onto the engine's costs (DESIGN.md).

=====================================================  =============================================
Keras loss                                             engine
=====================================================  =============================================
``SparseCategoricalCrossentropy(from_logits=True)``    softmax output + ``log_likelihood``; the last
(last ``Dense`` linear)                                ``Dense`` stays linear in ``predict`` (logits)
``SparseCategoricalCrossentropy()`` (softmax output)   softmax output + ``log_likelihood``
``CategoricalCrossentropy(...)``                       the same, with one-hot (or probability) rows
``MeanSquaredError()``, ``'mse'``                      ``quadratic`` with ``cost_scale = 2/n_out``
``BinaryCrossentropy()`` (sigmoid last ``Dense``)      ``cross_entropy``, ``cost_scale = 1/n_out``
``BinaryCrossentropy(from_logits=True)`` (linear)      the same, trained through a sigmoid output;
                                                       ``predict`` gives the logits
=====================================================  =============================================

``MeanAbsoluteError`` (``'mae'``) and ``Huber`` need cost rows the engine does not have yet:
naming them raises a ValueError that says so (they are metrics already, see
``keras.metrics``).

The engine's summed cost divided by the number of examples is then exactly Keras' loss (the
mean over the examples; for ``mse`` also the mean over the outputs).  Each loss can also be
called on arrays, ``loss(y_true, y_pred)``, and returns that mean as a float (numpy).
"""
import numpy as np

from fastnn import _core

__all__ = ["Loss", "SparseCategoricalCrossentropy", "CategoricalCrossentropy",
           "MeanSquaredError", "BinaryCrossentropy", "get"]


class Loss:
    """The interface: ``plan`` (the engine's view) and ``targets`` (labels to a matrix)."""

    name = "loss"

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"

    def plan(self, last_activation, trailing_softmax, n_out):
        """Return ``(output activation while training, cost, cost_scale)`` for a model whose
        last Dense has ``last_activation`` and is followed by ``trailing_softmax`` Softmax
        layers; raise ValueError when the engine cannot train that combination."""
        raise NotImplementedError

    def targets(self, y, n, n_out, dtype, name):
        """Return the target matrix ``(n, n_out)`` for labels or targets ``y``."""
        raise NotImplementedError


class _Crossentropy(Loss):
    """Softmax cross-entropy; the engine's log-likelihood cost on a softmax output."""

    def __init__(self, from_logits=False):
        if not isinstance(from_logits, (bool, np.bool_)):
            raise TypeError(f"from_logits: expected True or False, got {from_logits!r}")
        self.from_logits = bool(from_logits)

    def get_config(self):
        return {"from_logits": self.from_logits}

    def plan(self, last_activation, trailing_softmax, n_out):
        if n_out < 2:
            raise ValueError(f"loss: {type(self).__name__} needs at least 2 output units "
                             f"(classes), got a last Dense of {n_out}")
        if self.from_logits:
            if trailing_softmax or last_activation != "linear":
                raise ValueError(
                    f"loss: {type(self).__name__}(from_logits=True) expects a linear last "
                    f"Dense (logits), got activation {last_activation!r}"
                    f"{' followed by Softmax' if trailing_softmax else ''}; remove the "
                    f"softmax or use from_logits=False")
            return "softmax", "log_likelihood", 1.0
        if trailing_softmax == 1 and last_activation == "linear":
            return "softmax", "log_likelihood", 1.0
        if trailing_softmax == 0 and last_activation == "softmax":
            return "softmax", "log_likelihood", 1.0
        raise ValueError(
            f"loss: {type(self).__name__}(from_logits=False) expects probabilities from a "
            f"softmax output (Dense(..., activation='softmax'), or a linear Dense followed by "
            f"one Softmax()), got activation {last_activation!r}"
            f"{' followed by %d Softmax layer(s)' % trailing_softmax if trailing_softmax else ''}"
            f"; for a linear last Dense use from_logits=True")

    def _probabilities(self, y_pred):
        p = np.asarray(y_pred, dtype=np.float64)
        if self.from_logits:
            z = p - p.max(axis=-1, keepdims=True)
            return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
        with np.errstate(divide="ignore"):
            return np.log(np.clip(p, 1e-7, 1.0))


class SparseCategoricalCrossentropy(_Crossentropy):
    """Cross-entropy against integer labels ``(n,)`` (one-hot rows are accepted too)."""

    name = "sparse_categorical_crossentropy"

    def targets(self, y, n, n_out, dtype, name):
        Y, _ = _core.targets_to_matrix(y, n, n_out, dtype, name, one_hot=True)
        return Y

    def __call__(self, y_true, y_pred):
        """Return the mean cross-entropy of ``y_pred (n, k)`` against labels ``y_true``."""
        logp = self._probabilities(y_pred)
        Y, _ = _core.targets_to_matrix(y_true, logp.shape[0], logp.shape[1], np.float64,
                                       "y_true")
        return float(-(Y * logp).sum() / max(len(Y), 1))


class CategoricalCrossentropy(_Crossentropy):
    """Cross-entropy against one-hot (or probability) rows ``(n, k)``; int labels accepted."""

    name = "categorical_crossentropy"

    def targets(self, y, n, n_out, dtype, name):
        arr = np.asarray(y)
        if arr.ndim == 2 and arr.shape[1] == n_out and n_out > 1:
            Y, _ = _core.targets_to_matrix(arr, n, n_out, dtype, name, one_hot=False)
            if Y.size and (Y.min() < 0 or not np.allclose(Y.sum(axis=1), 1.0, atol=1e-4)):
                bad = int(np.flatnonzero((Y < 0).any(axis=1) |
                                         ~np.isclose(Y.sum(axis=1), 1.0, atol=1e-4))[0])
                raise ValueError(f"{name}: expected one-hot or probability rows (>= 0, summing "
                                 f"to 1), row {bad} is {Y[bad].tolist()}")
            return Y
        Y, _ = _core.targets_to_matrix(y, n, n_out, dtype, name, one_hot=True)
        return Y

    def __call__(self, y_true, y_pred):
        """Return the mean cross-entropy of ``y_pred (n, k)`` against rows ``y_true``."""
        logp = self._probabilities(y_pred)
        Y = self.targets(y_true, logp.shape[0], logp.shape[1], np.float64, "y_true")
        return float(-(Y * logp).sum() / max(len(Y), 1))


class MeanSquaredError(Loss):
    """``mean((y_pred - y_true)**2)`` over the outputs, then over the examples.

    Targets are ``(n, n_out)`` floats, ``(n,)`` floats for one output, or integer labels
    ``(n,)`` (turned into one-hot rows) for several outputs."""

    name = "mean_squared_error"

    def plan(self, last_activation, trailing_softmax, n_out):
        if trailing_softmax or last_activation == "softmax":
            raise ValueError("loss: mean squared error on a softmax output is not supported by "
                             "the engine (its quadratic cost needs an elementwise output "
                             "activation); use a linear, sigmoid, tanh or relu last Dense, or a "
                             "cross-entropy loss")
        return last_activation, "quadratic", 2.0 / n_out

    def targets(self, y, n, n_out, dtype, name):
        arr = np.asarray(y)
        if arr.dtype == object:
            raise TypeError(f"{name}: expected numbers, got an object array")
        if arr.ndim == 1 and n_out == 1:
            arr = arr.reshape(-1, 1)
        elif arr.ndim == 1 and arr.dtype.kind == "f":
            raise ValueError(f"{name}: expected targets of shape ({n}, {n_out}) or integer "
                             f"labels ({n},), got float values of shape {arr.shape}")
        Y, _ = _core.targets_to_matrix(arr, n, n_out, dtype, name, one_hot=False)
        return Y

    def __call__(self, y_true, y_pred):
        """Return ``mean((y_pred - y_true)**2)``."""
        p = np.asarray(y_pred, dtype=np.float64)
        if p.ndim == 1:
            p = p.reshape(-1, 1)
        Y = self.targets(y_true, p.shape[0], p.shape[1], np.float64, "y_true")
        return float(np.mean((p - Y) ** 2)) if p.size else 0.0


class BinaryCrossentropy(Loss):
    """``-mean(y ln p + (1-y) ln(1-p))`` over the outputs, then over the examples: binary (or
    multi-label) classification with a sigmoid output.  Targets are 0/1 (or in [0, 1]),
    ``(n,)`` for one output or ``(n, n_out)``."""

    name = "binary_crossentropy"

    def __init__(self, from_logits=False):
        if not isinstance(from_logits, (bool, np.bool_)):
            raise TypeError(f"from_logits: expected True or False, got {from_logits!r}")
        self.from_logits = bool(from_logits)

    def get_config(self):
        return {"from_logits": self.from_logits}

    def plan(self, last_activation, trailing_softmax, n_out):
        want = "linear" if self.from_logits else "sigmoid"
        if trailing_softmax or last_activation != want:
            raise ValueError(
                f"loss: BinaryCrossentropy(from_logits={self.from_logits}) expects a "
                f"{want} last Dense, got activation {last_activation!r}"
                f"{' followed by Softmax' if trailing_softmax else ''}"
                f"{'' if self.from_logits else '; for a linear last Dense use from_logits=True'}")
        return "sigmoid", "cross_entropy", 1.0 / n_out

    def targets(self, y, n, n_out, dtype, name):
        arr = np.asarray(y)
        if arr.dtype == object or arr.dtype.kind not in "biuf":
            raise TypeError(f"{name}: expected numbers in [0, 1], got dtype {arr.dtype}")
        if arr.ndim == 1 and n_out == 1:
            arr = arr.reshape(-1, 1)
        Y, _ = _core.targets_to_matrix(arr, n, n_out, dtype, name, one_hot=False)
        if Y.size and (Y.min() < 0 or Y.max() > 1):
            raise ValueError(f"{name}: expected targets in [0, 1], got values in "
                             f"{Y.min()}..{Y.max()}")
        return Y

    def __call__(self, y_true, y_pred):
        """Return the mean binary cross-entropy (Keras clips probabilities to [1e-7, 1-1e-7])."""
        p = np.asarray(y_pred, dtype=np.float64)
        if p.ndim == 1:
            p = p.reshape(-1, 1)
        Y = self.targets(y_true, p.shape[0], p.shape[1], np.float64, "y_true")
        if self.from_logits:
            return float(np.mean(np.maximum(p, 0) - p * Y + np.log1p(np.exp(-np.abs(p)))))
        p = np.clip(p, 1e-7, 1 - 1e-7)
        return float(-np.mean(Y * np.log(p) + (1 - Y) * np.log(1 - p)))


# Keras losses the engine cannot train yet (a cost row each in the engine's table)
NEEDS_ENGINE = ("mean_absolute_error", "mae", "huber", "huber_loss", "log_cosh", "logcosh",
                "mean_absolute_percentage_error", "mape", "mean_squared_logarithmic_error",
                "msle", "hinge", "squared_hinge", "categorical_hinge", "kl_divergence",
                "kld", "poisson", "cosine_similarity")


def _needs_engine(name):
    return ValueError(f"loss: {name!r} needs a cost the engine does not have yet (its table "
                      f"has quadratic, cross_entropy and log_likelihood); use 'mse', "
                      f"'binary_crossentropy', 'categorical_crossentropy' or "
                      f"'sparse_categorical_crossentropy', and report {name!r} as a metric "
                      f"(metrics=['mae'])")


class MeanAbsoluteError(Loss):
    """Named so that ``keras.losses.MeanAbsoluteError()`` says what is missing."""

    def __init__(self, *args, **kwargs):
        raise _needs_engine("mean_absolute_error")


class Huber(Loss):
    """Named so that ``keras.losses.Huber()`` says what is missing."""

    def __init__(self, *args, **kwargs):
        raise _needs_engine("huber")


LOSSES = {
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "mean_squared_error": MeanSquaredError,
    "mse": MeanSquaredError,
    "binary_crossentropy": BinaryCrossentropy,
}
LOSS_CLASSES = {c.__name__: c for c in (SparseCategoricalCrossentropy, CategoricalCrossentropy,
                                        MeanSquaredError, BinaryCrossentropy)}


def get(loss):
    """Return a Loss for a name ('sparse_categorical_crossentropy', 'mse', ...), a Loss class
    or a Loss instance."""
    if isinstance(loss, Loss):
        return loss
    if isinstance(loss, type) and issubclass(loss, Loss) and loss is not Loss and \
            loss.__name__ in LOSS_CLASSES:
        return loss()
    if isinstance(loss, str):
        key = loss.lower()
        if key in LOSSES:
            return LOSSES[key]()
        if key in NEEDS_ENGINE:
            raise _needs_engine(loss)
        raise ValueError(f"loss: expected one of {', '.join(repr(k) for k in LOSSES)} or a "
                         f"fastnn.losses instance, got {loss!r}")
    raise TypeError(f"loss: expected a loss name such as 'sparse_categorical_crossentropy' or "
                    f"a fastnn.losses instance, got {type(loss).__name__} ({loss!r})")

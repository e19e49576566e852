"""Keras' metrics, by the names ``compile(metrics=[...])`` takes.

Two kinds:

- ``engine`` metrics come from the engine's own count of argmax hits while it trains (the
  running value over the epoch's mini-batches, as Keras reports it): ``accuracy``/``acc``
  with a categorical loss, ``sparse_categorical_accuracy``, ``categorical_accuracy``.
- ``output`` metrics are computed in numpy from the model's outputs: ``mae``, ``mse``,
  ``binary_accuracy`` (and ``accuracy`` with a binary cross-entropy loss),
  ``top_k_categorical_accuracy``, ``sparse_top_k_categorical_accuracy``.  For the
  validation data and ``evaluate`` they are exact; for the training data they are taken
  with the weights at the end of the epoch (one extra forward pass over the training data),
  where Keras reports the running mean over the epoch's mini-batches.

History and ``evaluate(return_dict=True)`` use the name given (``'acc'`` stays ``'acc'``),
as Keras 3 does.  Each function below takes ``(y_true (n, k), y_pred (n, k))`` as float arrays
and returns the mean over the examples.
"""
import numpy as np

__all__ = ["mean_absolute_error", "mean_squared_error", "binary_accuracy",
           "categorical_accuracy", "sparse_categorical_accuracy",
           "top_k_categorical_accuracy", "sparse_top_k_categorical_accuracy", "get",
           "MeanAbsoluteError", "MeanSquaredError", "BinaryAccuracy", "CategoricalAccuracy",
           "SparseCategoricalAccuracy", "TopKCategoricalAccuracy",
           "SparseTopKCategoricalAccuracy", "Accuracy"]


def mean_absolute_error(y_true, y_pred):
    return float(np.mean(np.abs(np.asarray(y_pred, np.float64) - y_true)))


def mean_squared_error(y_true, y_pred):
    return float(np.mean((np.asarray(y_pred, np.float64) - y_true) ** 2))


def binary_accuracy(y_true, y_pred, threshold=0.5):
    return float(np.mean((np.asarray(y_pred) > threshold) == (np.asarray(y_true) > 0.5)))


def categorical_accuracy(y_true, y_pred):
    return float(np.mean(np.argmax(y_pred, axis=1) == np.argmax(y_true, axis=1)))


sparse_categorical_accuracy = categorical_accuracy     # targets arrive as one-hot rows


def top_k_categorical_accuracy(y_true, y_pred, k=5):
    """The true class (the 1 of the one-hot row) is among the k largest outputs."""
    p = np.asarray(y_pred, np.float64)
    true = np.argmax(y_true, axis=1)
    score = p[np.arange(len(p)), true]
    # rank = outputs strictly larger than the true one's
    above = (p > score[:, None]).sum(axis=1)
    return float(np.mean(above < k))


sparse_top_k_categorical_accuracy = top_k_categorical_accuracy

# name -> (kind, function); kind 'engine' means the engine's argmax hit count
METRICS = {
    "accuracy": ("engine", categorical_accuracy),
    "acc": ("engine", categorical_accuracy),
    "categorical_accuracy": ("engine", categorical_accuracy),
    "sparse_categorical_accuracy": ("engine", categorical_accuracy),
    "binary_accuracy": ("output", binary_accuracy),
    "mae": ("output", mean_absolute_error),
    "mean_absolute_error": ("output", mean_absolute_error),
    "mse": ("output", mean_squared_error),
    "mean_squared_error": ("output", mean_squared_error),
    "top_k_categorical_accuracy": ("output", top_k_categorical_accuracy),
    "sparse_top_k_categorical_accuracy": ("output", top_k_categorical_accuracy),
}


class Metric:
    """A metric object, as ``metrics=[keras.metrics.SparseCategoricalAccuracy()]``."""

    key = None

    def __init__(self, name=None):
        self.name = name or self.key

    def __call__(self, y_true, y_pred):
        return METRICS[self.key][1](y_true, y_pred)

    def __repr__(self):
        return f"{type(self).__name__}(name={self.name!r})"


class Accuracy(Metric):
    key = "accuracy"


class BinaryAccuracy(Metric):
    key = "binary_accuracy"


class CategoricalAccuracy(Metric):
    key = "categorical_accuracy"


class SparseCategoricalAccuracy(Metric):
    key = "sparse_categorical_accuracy"


class MeanAbsoluteError(Metric):
    key = "mean_absolute_error"


class MeanSquaredError(Metric):
    key = "mean_squared_error"


class TopKCategoricalAccuracy(Metric):
    key = "top_k_categorical_accuracy"

    def __init__(self, k=5, name=None):
        super().__init__(name)
        self.k = int(k)

    def __call__(self, y_true, y_pred):
        return top_k_categorical_accuracy(y_true, y_pred, self.k)


class SparseTopKCategoricalAccuracy(TopKCategoricalAccuracy):
    key = "sparse_top_k_categorical_accuracy"


_FUNCTION_NAMES = {f: n for n, f in (("mean_absolute_error", mean_absolute_error),
                                     ("mean_squared_error", mean_squared_error),
                                     ("binary_accuracy", binary_accuracy))}


def get(metric, binary=False):
    """Return ``(name, kind, function)`` for a metric name, a Metric or a function above.

    ``binary``: the model is trained with binary cross-entropy, so ``accuracy`` means
    ``binary_accuracy`` (as in Keras)."""
    if isinstance(metric, Metric):
        name, key, fn = metric.name, metric.key, metric
    elif callable(metric) and metric in _FUNCTION_NAMES:
        name = key = _FUNCTION_NAMES[metric]
        fn = metric
    elif isinstance(metric, str):
        name = key = metric
        if metric not in METRICS:
            raise ValueError(f"metrics: expected names among {', '.join(METRICS)}, got "
                             f"{metric!r}")
        fn = METRICS[key][1]
    else:
        raise TypeError(f"metrics: expected a metric name such as 'accuracy' or a "
                        f"keras.metrics object, got {type(metric).__name__} ({metric!r})")
    kind = METRICS[key][0]
    if binary and kind == "engine":
        kind, fn = "output", binary_accuracy
    return name, kind, fn

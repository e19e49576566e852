"""``keras.utils``: ``to_categorical`` (integer labels to one-hot rows) and
``set_random_seed``."""
import random

import numpy as np

from fastnn import _core

__all__ = ["to_categorical", "set_random_seed"]


def to_categorical(x, num_classes=None):
    """Return ``(n, num_classes)`` float32 one-hot rows for integer labels ``x`` (n,)."""
    lab = _core.as_array(x, "x")
    if lab.dtype.kind == "f" and lab.size and not np.all(lab == np.round(lab)):
        raise ValueError("x: expected integer class labels, got non-integer floats")
    if lab.dtype.kind not in "biuf":
        raise TypeError(f"x: expected integer class labels, got dtype {lab.dtype}")
    lab = lab.astype(np.int64).reshape(-1)
    if num_classes is None:
        num_classes = int(lab.max()) + 1 if lab.size else 0
    num_classes = _core.check_int(num_classes, "num_classes", 1)
    Y, _ = _core.labels_to_onehot(lab, num_classes, np.float32, "x")
    return Y


def set_random_seed(seed):
    """Seed what fastnn draws from: ``random`` and ``np.random`` (initial weights, the
    shuffles, the dropout seed)."""
    seed = _core.check_int(seed, "seed", 0)
    random.seed(seed)
    np.random.seed(seed % 2 ** 32)

"""Keras' weight initializers, by name: ``Dense(64, kernel_initializer='he_normal')``.

Drawn from ``np.random`` (``np.random.seed`` or ``keras.utils.set_random_seed`` makes them
reproducible; the numbers differ from Keras', the distributions are Keras'):

- the variance-scaling family: ``U(-l, l)`` with ``l = sqrt(3 scale / fan)``, or a normal of
  standard deviation ``sqrt(scale / fan) / 0.8796...`` cut at two deviations (Keras'
  ``truncated_normal``, whose cut removes that much spread);
- ``zeros``, ``ones``, ``random_normal`` (stddev 0.05), ``random_uniform`` (+-0.05).

``INITIALIZERS`` is the one table (name -> Keras class name and rule).
"""
import math

import numpy as np

__all__ = ["INITIALIZERS", "get_name", "draw", "class_name"]

TRUNCATED_STDDEV = 0.87962566103423978   # stddev of N(0, 1) cut at +-2

# name -> (Keras class name, rule); rule is (scale, fan, distribution) or a constant kind
INITIALIZERS = {
    "glorot_uniform": ("GlorotUniform", (1.0, "fan_avg", "uniform")),
    "glorot_normal": ("GlorotNormal", (1.0, "fan_avg", "truncated_normal")),
    "he_uniform": ("HeUniform", (2.0, "fan_in", "uniform")),
    "he_normal": ("HeNormal", (2.0, "fan_in", "truncated_normal")),
    "lecun_uniform": ("LecunUniform", (1.0, "fan_in", "uniform")),
    "lecun_normal": ("LecunNormal", (1.0, "fan_in", "truncated_normal")),
    "zeros": ("Zeros", "zeros"),
    "ones": ("Ones", "ones"),
    "random_normal": ("RandomNormal", "random_normal"),
    "random_uniform": ("RandomUniform", "random_uniform"),
}
_BY_CLASS = {cls: name for name, (cls, _) in INITIALIZERS.items()}


def get_name(identifier, argname):
    """The table's name for a name ('he_normal', 'HeNormal') or a Keras config dict."""
    if isinstance(identifier, dict):
        identifier = identifier.get("class_name")
    if isinstance(identifier, str):
        if identifier in INITIALIZERS:
            return identifier
        if identifier in _BY_CLASS:
            return _BY_CLASS[identifier]
        raise ValueError(f"{argname}: expected one of {', '.join(INITIALIZERS)}, got "
                         f"{identifier!r}")
    raise TypeError(f"{argname}: expected an initializer name such as 'he_normal', got "
                    f"{type(identifier).__name__} ({identifier!r})")


def class_name(name):
    return INITIALIZERS[name][0]


def draw(name, shape):
    """Return an array of ``shape`` ``(fan_in, fan_out)`` (or ``(n,)``) drawn by ``name``."""
    rule = INITIALIZERS[name][1]
    if rule == "zeros":
        return np.zeros(shape)
    if rule == "ones":
        return np.ones(shape)
    if rule == "random_normal":
        return np.random.normal(0.0, 0.05, size=shape)
    if rule == "random_uniform":
        return np.random.uniform(-0.05, 0.05, size=shape)
    scale, mode, dist = rule
    fan_in, fan_out = (shape[0], shape[1]) if len(shape) == 2 else (shape[0], shape[0])
    fan = {"fan_in": fan_in, "fan_avg": (fan_in + fan_out) / 2.0}[mode]
    if dist == "uniform":
        limit = math.sqrt(3.0 * scale / fan)
        return np.random.uniform(-limit, limit, size=shape)
    std = math.sqrt(scale / fan) / TRUNCATED_STDDEV
    z = np.random.standard_normal(size=shape)
    bad = np.abs(z) > 2.0
    while bad.any():                       # redraw outside two deviations
        z[bad] = np.random.standard_normal(size=int(bad.sum()))
        bad = np.abs(z) > 2.0
    return std * z

"""Keras' activations: the one table that names them, and numpy versions to call.

``ACTIVATIONS`` maps each Keras name to the engine's, built from the engine's own table
(``fastnn._engine.ACTIVATIONS``, whose ``identity`` is Keras' ``linear``): a row the engine
gains is a name here with nothing to edit.  ``Dense(activation=...)``, the ``Activation`` layer
and the saved files all read this table.  ``Dense`` takes a name, None (linear) or one of the
functions below (``activation=keras.activations.relu``, as older lessons write it).  The
numpy functions of the newer rows are the project's oracle's (``fastnn.reference``).
"""
import numpy as np

from fastnn import _core, reference as _reference

__all__ = ["ACTIVATIONS", "linear", "relu", "sigmoid", "tanh", "softmax", "gelu", "silu",
           "swish", "elu", "selu", "leaky_relu", "softplus", "get", "serialize"]

# Keras name -> engine name.  'softmax' is an output activation in the engine (last Dense).
ACTIVATIONS = {("linear" if k == "identity" else k): ("identity" if k == "linear" else k)
               for k in _core.ACTIVATIONS}
ALIASES = {None: "linear", "identity": "linear"}


def linear(x):
    return np.asarray(x)


def relu(x):
    return np.maximum(np.asarray(x), 0)


def sigmoid(x):
    x = np.asarray(x, dtype=np.result_type(x, np.float32))
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def tanh(x):
    return np.tanh(x)


def softmax(x, axis=-1):
    x = np.asarray(x, dtype=np.result_type(x, np.float32))
    z = np.exp(x - x.max(axis=axis, keepdims=True))
    return z / z.sum(axis=axis, keepdims=True)


gelu = _reference.gelu            # exact (erf), Keras' default
silu = swish = _reference.silu
elu = _reference.elu
selu = _reference.selu
leaky_relu = _reference.leaky_relu  # negative_slope 0.2, Keras 3's default
softplus = _reference.softplus

_FUNCTIONS = {"linear": linear, "relu": relu, "sigmoid": sigmoid, "tanh": tanh,
              "softmax": softmax, "gelu": gelu, "silu": silu, "swish": swish, "elu": elu,
              "selu": selu, "leaky_relu": leaky_relu, "softplus": softplus}


def serialize(activation):
    """Return the Keras name of an activation given as a name, None or a function here."""
    return get_name(activation, "activation")


def get_name(activation, argname="activation"):
    if activation in ALIASES and (activation is None or isinstance(activation, str)):
        return ALIASES[activation]
    if callable(activation) and not isinstance(activation, str):
        name = getattr(activation, "__name__", None)
        if name in ACTIVATIONS:
            return name
        raise ValueError(f"{argname}: expected one of {', '.join(ACTIVATIONS)} (a name or "
                         f"keras.activations function), got the function {name!r}")
    if not isinstance(activation, str):
        raise TypeError(f"{argname}: expected a name such as 'relu', None or a "
                        f"keras.activations function, got {type(activation).__name__} "
                        f"({activation!r})")
    if activation.lower() not in ACTIVATIONS:
        raise ValueError(f"{argname}: expected None or one of {', '.join(ACTIVATIONS)}, got "
                         f"{activation!r}")
    return activation.lower()


def get(identifier):
    """Return the numpy function for a name (Keras' ``activations.get``)."""
    return _FUNCTIONS[get_name(identifier)]

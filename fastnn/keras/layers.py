"""Keras-style layers for ``fastnn.keras.Sequential``: ``Input``, ``Flatten``, ``Dense``,
``Dropout``, ``Softmax`` and ``Activation``.

The layers only describe the network; ``Sequential`` turns the list into one engine call.
A ``Dense`` layer owns its parameters in the engine's layout (DESIGN.md): ``W`` is
``(units, n_in)`` and ``b`` is ``(units, 1)``, trained in place.  ``get_weights()`` and
``set_weights()`` use Keras' layout instead: ``kernel (n_in, units)`` and ``bias (units,)``.

Initialization is Keras': by default a glorot-uniform kernel, ``U(-l, l)`` with
``l = sqrt(6 / (n_in + units))``, drawn from ``np.random`` (so ``np.random.seed`` makes it
reproducible), and zero biases; ``kernel_initializer=``/``bias_initializer=`` take the names
of ``keras.initializers.INITIALIZERS``.
"""
import numbers

import numpy as np

from fastnn import _core
from fastnn.keras import activations as _activations, initializers as _initializers

__all__ = ["Layer", "Input", "InputLayer", "Flatten", "Dense", "Dropout", "Softmax",
           "Activation"]

_name_counts = {}


def _auto_name(base):
    """Return 'dense', 'dense_1', 'dense_2', ... as Keras numbers its layers."""
    k = _name_counts.get(base, 0)
    _name_counts[base] = k + 1
    return base if k == 0 else f"{base}_{k}"


def _check_shape(shape, name):
    """Return ``shape`` (an int or a sequence of positive ints) as a tuple of ints."""
    if isinstance(shape, numbers.Integral) and not isinstance(shape, bool):
        shape = (shape,)
    if isinstance(shape, (str, bytes)) or not hasattr(shape, "__len__"):
        raise TypeError(f"{name}: expected a tuple of ints such as (28, 28), got "
                        f"{type(shape).__name__} ({shape!r})")
    shape = tuple(shape)
    if len(shape) and shape[0] is None:
        raise ValueError(f"{name}: expected the shape of one example without the batch "
                         f"dimension, such as (28, 28), got {shape}")
    if len(shape) == 0:
        raise ValueError(f"{name}: expected at least one dimension, got ()")
    out = []
    for i, s in enumerate(shape):
        if isinstance(s, bool) or not isinstance(s, numbers.Integral):
            raise TypeError(f"{name}[{i}]: expected an int, got {type(s).__name__} ({s!r})")
        if s < 1:
            raise ValueError(f"{name}[{i}]: expected a positive int, got {s}")
        out.append(int(s))
    return tuple(out)


class Layer:
    """The base of the layers: a name, an optional input shape and no parameters."""

    _base_name = "layer"

    def __init__(self, name=None, input_shape=None):
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name: expected a string, got {type(name).__name__}")
        self.name = name if name is not None else _auto_name(self._base_name)
        self.input_shape = None if input_shape is None else _check_shape(input_shape,
                                                                          "input_shape")

    def count_params(self):
        """Return the number of trainable numbers in the layer."""
        return 0

    def __call__(self, x):
        """Record ``x -> self`` for Keras' functional API (``keras.Model``)."""
        from fastnn.keras import functional
        return functional.call_layer(self, x)

    def get_weights(self):
        """Return the layer's parameters as a list of numpy arrays (Keras layout)."""
        return []

    @property
    def weights(self):
        """The parameters as numpy arrays (Keras' layout and order); none here."""
        return []

    trainable_weights = trainable_variables = weights

    def set_weights(self, weights):
        """Set the layer's parameters from a list of arrays (Keras layout)."""
        if len(weights) != 0:
            raise ValueError(f"{self.name}: expected 0 arrays, got {len(weights)}")

    def get_config(self):
        """Return the arguments that rebuild the layer (``type(layer)(**config)``)."""
        cfg = {"name": self.name}
        if self.input_shape is not None:
            cfg["input_shape"] = list(self.input_shape)
        return cfg

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r}>"


class Input(Layer):
    """The shape of one example, as ``keras.Input(shape=(28, 28))``; first layer only."""

    _base_name = "input_layer"

    def __init__(self, shape, name=None):
        super().__init__(name=name, input_shape=_check_shape(shape, "shape"))

    @property
    def shape(self):
        return self.input_shape

    def get_config(self):
        return {"name": self.name, "shape": list(self.input_shape)}


InputLayer = Input


class Flatten(Layer):
    """Reshape each example to a vector: ``(n, 28, 28) -> (n, 784)``.

    ``input_shape`` (as in the tutorial's ``Flatten(input_shape=(28, 28))``) fixes the shape of
    one example; without it the shape is taken from the data at the first ``fit``/``predict``.
    """

    _base_name = "flatten"

    def __init__(self, input_shape=None, name=None):
        super().__init__(name=name, input_shape=input_shape)


class Dense(Layer):
    """A fully connected layer: ``activation(x @ kernel + bias)``.

    ``activation`` is None (linear) or a name of ``keras.activations.ACTIVATIONS`` ('linear',
    'relu', 'sigmoid', 'tanh', 'softmax' on the last layer only), or one of the functions of
    ``keras.activations``.  ``input_shape=(n_in,)`` or ``input_dim=n_in`` fixes the input size
    when the layer is the first one.
    """

    _base_name = "dense"

    def __init__(self, units, activation=None, input_shape=None, input_dim=None, name=None, *,
                 use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros"):
        if use_bias is not True:
            raise ValueError(f"use_bias: the engine's Dense layers always have a bias, got "
                             f"{use_bias!r}")
        if input_dim is not None:
            if input_shape is not None:
                raise ValueError("input_dim/input_shape: give one of them, got both")
            input_shape = (_core.check_int(input_dim, "input_dim", 1),)
        super().__init__(name=name, input_shape=input_shape)
        if self.input_shape is not None and len(self.input_shape) != 1:
            raise ValueError(f"input_shape: Dense takes vectors, expected (n_in,), got "
                             f"{self.input_shape}; put a Flatten(input_shape="
                             f"{self.input_shape}) first")
        self.units = _core.check_int(units, "units", 1)
        self.activation = _activations.get_name(activation)
        self.kernel_initializer = _initializers.get_name(kernel_initializer,
                                                         "kernel_initializer")
        self.bias_initializer = _initializers.get_name(bias_initializer, "bias_initializer")
        self.W = None          # (units, n_in), the engine's layout
        self.b = None          # (units, 1)

    # -- parameters ---------------------------------------------------------------------------
    @property
    def built(self):
        return self.W is not None

    @property
    def n_in(self):
        return None if self.W is None else self.W.shape[1]

    def build(self, n_in, dtype=np.float32):
        """Draw the kernel and the biases for ``n_in`` inputs (glorot-uniform and zeros unless
        other ``keras.initializers`` names were given)."""
        n_in = _core.check_int(n_in, "n_in", 1)
        kernel = _initializers.draw(self.kernel_initializer, (n_in, self.units))
        bias = _initializers.draw(self.bias_initializer, (self.units,))
        self.W = np.ascontiguousarray(kernel.T, dtype=dtype)
        self.b = np.ascontiguousarray(bias.reshape(-1, 1), dtype=dtype)

    def _cast(self, dtype):
        """Make W and b C-contiguous arrays of ``dtype`` (in place of the old ones)."""
        if self.W.dtype != dtype or not self.W.flags.c_contiguous:
            self.W = np.ascontiguousarray(self.W, dtype=dtype)
        if self.b.dtype != dtype or not self.b.flags.c_contiguous:
            self.b = np.ascontiguousarray(self.b, dtype=dtype)

    @property
    def kernel(self):
        """The kernel ``(n_in, units)``, a view of ``W``."""
        return None if self.W is None else self.W.T

    @property
    def bias(self):
        """The bias ``(units,)``, a view of ``b``."""
        return None if self.b is None else self.b.reshape(-1)

    def count_params(self):
        return 0 if self.W is None else self.W.size + self.b.size

    @property
    def weights(self):
        """``[kernel (n_in, units), bias (units,)]``, views of the trained arrays ([] before
        building), Keras' order."""
        return [] if self.W is None else [self.kernel, self.bias]

    trainable_weights = trainable_variables = weights

    def get_weights(self):
        """Return ``[kernel (n_in, units), bias (units,)]`` (copies), or [] before building."""
        if self.W is None:
            return []
        return [self.W.T.copy(), self.b.reshape(-1).copy()]

    def set_weights(self, weights):
        """Set ``[kernel (n_in, units), bias (units,)]``; builds the layer if needed."""
        if not isinstance(weights, (list, tuple)) or len(weights) != 2:
            raise ValueError(f"{self.name}: expected [kernel, bias], got "
                             f"{type(weights).__name__} of length {len(weights)}")
        kernel, bias = np.asarray(weights[0]), np.asarray(weights[1])
        for arr, what in ((kernel, "kernel"), (bias, "bias")):
            if arr.dtype == object or arr.dtype.kind not in "biuf":
                raise TypeError(f"{self.name} {what}: expected a numeric array, got dtype "
                                f"{arr.dtype}")
            if arr.size and not np.isfinite(arr).all():
                raise ValueError(f"{self.name} {what}: expected finite values, got NaN or Inf")
        n_in = self.n_in if self.W is not None else (kernel.shape[0] if kernel.ndim == 2
                                                      else None)
        if kernel.ndim != 2 or kernel.shape != (n_in, self.units):
            raise ValueError(f"{self.name} kernel: expected shape ({n_in}, {self.units}), got "
                             f"{kernel.shape}")
        if bias.shape != (self.units,):
            raise ValueError(f"{self.name} bias: expected shape ({self.units},), got "
                             f"{bias.shape}")
        # an unbuilt layer keeps float64 values as they are (the model casts to its dtype)
        dtype = self.W.dtype if self.W is not None else (
            kernel.dtype if kernel.dtype in (np.float32, np.float64) else np.float32)
        if self.W is None:
            self.W = np.ascontiguousarray(kernel.T, dtype=dtype)
            self.b = np.ascontiguousarray(bias.reshape(-1, 1), dtype=dtype)
        else:   # in place, so models sharing this layer see the new values
            self.W[...] = kernel.T
            self.b[...] = bias.reshape(-1, 1)

    def get_config(self):
        cfg = super().get_config()
        cfg["units"] = self.units
        cfg["activation"] = self.activation
        if self.kernel_initializer != "glorot_uniform":
            cfg["kernel_initializer"] = self.kernel_initializer
        if self.bias_initializer != "zeros":
            cfg["bias_initializer"] = self.bias_initializer
        return cfg


class Dropout(Layer):
    """Drop each input with probability ``rate`` while training; identity in predict.

    The engine applies one dropout rate to every hidden layer, so in a model that is trained
    every hidden ``Dense`` must be followed by a ``Dropout`` of the same rate (or none by any).
    """

    _base_name = "dropout"

    def __init__(self, rate, name=None):
        super().__init__(name=name)
        self.rate = _core.check_float(rate, "rate", 0.0, 1.0, max_open=True)

    def get_config(self):
        return {"name": self.name, "rate": self.rate}


class Softmax(Layer):
    """Turn the outputs into probabilities along the last axis.

    Allowed only at the end of a model, as in the tutorial's
    ``Sequential([model, Softmax()])``.
    """

    _base_name = "softmax"

    def __init__(self, axis=-1, name=None):
        super().__init__(name=name)
        if axis not in (-1, 1):
            raise ValueError(f"axis: only the last axis is supported (-1), got {axis!r}")
        self.axis = -1

    def get_config(self):
        return {"name": self.name}


class Activation(Layer):
    """Apply an activation to the previous layer's output: ``Dense(64), Activation('relu')``
    is ``Dense(64, activation='relu')`` (the engine runs it as that), and
    ``Activation('softmax')`` at the end is ``Softmax()``."""

    _base_name = "activation"

    def __init__(self, activation, name=None):
        super().__init__(name=name)
        self.activation = _activations.get_name(activation)

    def get_config(self):
        return {"name": self.name, "activation": self.activation}


LAYER_CLASSES = {c.__name__: c for c in (Input, Flatten, Dense, Dropout, Softmax, Activation)}

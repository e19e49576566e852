"""Keras-style optimizers, run by the engine (DESIGN.md has the exact update rules).

- ``SGD(learning_rate=0.01, momentum=0.0)``: ``w -= lr g``, or with momentum
  ``v = momentum v - lr g; w += v``.
- ``Adam(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7)``, Keras 3's rule:
  ``t += 1; m += (1-b1)(g-m); v += (1-b2)(g^2-v); w -= lr sqrt(1-b2^t)/(1-b1^t) m/(sqrt(v)+eps)``.

An optimizer keeps its state (the velocity, or Adam's ``m``, ``v`` and step count
``iterations``) between ``fit`` calls, as Keras does, so a second ``fit`` continues the first.
The state arrays are per Dense layer ``(W-shaped, b-shaped)`` pairs in the engine's layout.
"""
import numpy as np

from fastnn import _core

__all__ = ["Optimizer", "SGD", "Adam", "get"]


class Optimizer:
    """The shared part: learning rate, step counter and state arrays."""

    def __init__(self, learning_rate):
        self.learning_rate = _core.check_float(learning_rate, "learning_rate", 0.0)
        self.iterations = 0
        self._state1 = None
        self._state2 = None

    engine_name = None

    def get_config(self):
        return {"learning_rate": self.learning_rate}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"

    def reset(self):
        """Forget the state: the next ``fit`` starts from zero moments and step 0."""
        self.iterations = 0
        self._state1 = None
        self._state2 = None

    def _n_states(self):
        return 0

    def _matches(self, state, W, b):
        return (state is not None and len(state) == len(W) and
                all(s[0].shape == w.shape and s[1].shape == x.shape and s[0].dtype == w.dtype
                    for s, w, x in zip(state, W, b)))

    def engine_state(self, W, b):
        """Return ``(state1, state2)`` for weights ``W`` and flat biases ``b``, keeping the
        state from an earlier ``fit`` when it fits these shapes (zeros otherwise)."""
        k = self._n_states()
        if k == 0:
            return None, None
        if not self._matches(self._state1, W, b) or (k == 2 and
                                                     not self._matches(self._state2, W, b)):
            self.iterations = 0
            self._state1 = [(np.zeros_like(w), np.zeros_like(x)) for w, x in zip(W, b)]
            self._state2 = ([(np.zeros_like(w), np.zeros_like(x)) for w, x in zip(W, b)]
                            if k == 2 else None)
        return self._state1, self._state2

    def state_arrays(self):
        """Return the state as ``{'s1': [(W, b), ...], 's2': ...}`` (for saving)."""
        return {"s1": self._state1, "s2": self._state2}

    def set_state(self, iterations, state1, state2):
        self.iterations = _core.check_int(iterations, "iterations", 0)
        self._state1 = state1
        self._state2 = state2

    def engine_kwargs(self):
        raise NotImplementedError


class SGD(Optimizer):
    """Mini-batch gradient descent, with optional (heavy-ball) momentum."""

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False):
        super().__init__(learning_rate)
        self.momentum = _core.check_float(momentum, "momentum", 0.0, 1.0, max_open=True)
        if nesterov:
            raise ValueError("nesterov: Nesterov momentum is not supported by the engine; use "
                             "nesterov=False (heavy-ball momentum)")
        self.nesterov = False

    @property
    def engine_name(self):
        return "momentum" if self.momentum > 0 else "sgd"

    def _n_states(self):
        return 1 if self.momentum > 0 else 0

    def get_config(self):
        return {"learning_rate": self.learning_rate, "momentum": self.momentum}

    def engine_kwargs(self):
        return {"optimizer": self.engine_name, "eta": self.learning_rate,
                "momentum": self.momentum}


class Adam(Optimizer):
    """Adam with Keras 3's defaults and update rule."""

    engine_name = "adam"

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
        super().__init__(learning_rate)
        self.beta_1 = _core.check_float(beta_1, "beta_1", 0.0, 1.0, max_open=True)
        self.beta_2 = _core.check_float(beta_2, "beta_2", 0.0, 1.0, max_open=True)
        self.epsilon = _core.check_float(epsilon, "epsilon", 0.0)

    def _n_states(self):
        return 2

    def get_config(self):
        return {"learning_rate": self.learning_rate, "beta_1": self.beta_1,
                "beta_2": self.beta_2, "epsilon": self.epsilon}

    def engine_kwargs(self):
        return {"optimizer": "adam", "eta": self.learning_rate, "beta1": self.beta_1,
                "beta2": self.beta_2, "eps": self.epsilon}


# The optimizers the engine runs, by Keras' names: a new one is its class above and one line
# here (and its engine row).
OPTIMIZERS = {"adam": Adam, "sgd": SGD}
OPTIMIZER_CLASSES = {c.__name__: c for c in OPTIMIZERS.values()}


def _names():
    return " or ".join(repr(k) for k in OPTIMIZERS)


def get(optimizer):
    """Return an Optimizer for a name of ``OPTIMIZERS``, an Optimizer class or an instance."""
    if isinstance(optimizer, Optimizer):
        return optimizer
    if isinstance(optimizer, type) and optimizer.__name__ in OPTIMIZER_CLASSES and \
            OPTIMIZER_CLASSES[optimizer.__name__] is optimizer:
        return optimizer()
    if isinstance(optimizer, str):
        key = optimizer.lower()
        if key in OPTIMIZERS:
            return OPTIMIZERS[key]()
        raise ValueError(f"optimizer: expected {_names()} (the engine runs these), or a "
                         f"keras.optimizers instance, got {optimizer!r}")
    raise TypeError(f"optimizer: expected {_names()} or a keras.optimizers instance, got "
                    f"{type(optimizer).__name__} ({optimizer!r})")

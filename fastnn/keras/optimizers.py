"""Keras-style optimizers, run by the engine (DESIGN.md has the exact update rules).

- ``SGD(learning_rate=0.01, momentum=0.0)``: ``w -= lr g``, or with momentum
  ``v = momentum v - lr g; w += v``.
- ``Adam(learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7)``, Keras 3's rule:
  ``t += 1; m += (1-b1)(g-m); v += (1-b2)(g^2-v); w -= lr sqrt(1-b2^t)/(1-b1^t) m/(sqrt(v)+eps)``.
- ``RMSprop(learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7)``, Keras 3's rule:
  ``v = rho v + (1-rho) g^2; u = lr g / sqrt(v + eps); w -= u`` (with momentum:
  ``m = momentum m + u; w -= m``).
- ``Adagrad(learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7)``, Keras 3's
  rule: ``a += g^2; w -= lr g / sqrt(a + eps)``, ``a`` starting at the initial value.

An optimizer keeps its state (the velocity, or Adam's ``m``, ``v`` and step count
``iterations``) between ``fit`` calls, as Keras does, so a second ``fit`` continues the first.
The state arrays are per Dense layer ``(W-shaped, b-shaped)`` pairs in the engine's layout.
"""

from fastnn import _core

__all__ = ["Optimizer", "SGD", "Adam", "RMSprop", "Adagrad", "get"]


class Optimizer:
    """The shared part: learning rate, step counter and state arrays.  A subclass names its
    engine row (``engine_name``: a key of ``_engine.OPTIMIZERS``, whose slot count says how
    many state arrays it keeps) and its hyperparameters (``engine_kwargs``)."""

    def __init__(self, learning_rate):
        self.learning_rate = _core.check_float(learning_rate, "learning_rate", 0.0)
        self.iterations = 0
        self._state = None

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
        """Forget the state: the next ``fit`` starts from fresh moments and step 0."""
        self.iterations = 0
        self._state = None

    def _n_states(self):
        return _core.OPT_SLOTS[self.engine_name]

    def _initial_fill(self):
        return 0.0

    def _matches(self, state, W, b):
        return (state is not None and len(state) == len(W) and
                all(s[0].shape == w.shape and s[1].shape == x.shape and s[0].dtype == w.dtype
                    for s, w, x in zip(state, W, b)))

    def engine_state(self, W, b):
        """Return the state slots (one list of ``(W-shaped, b-shaped)`` pairs per slot) for
        weights ``W`` and flat biases ``b``, keeping the state from an earlier ``fit`` when it
        fits these shapes (fresh state otherwise)."""
        k = self._n_states()
        if self._state is None or len(self._state) != k or \
                not all(self._matches(slot, W, b) for slot in self._state):
            self.iterations = 0
            self._state = _core.new_state(self.engine_name, W, b, self._initial_fill())
        return self._state

    def state_arrays(self):
        """Return the state as ``{'s1': [(W, b), ...], 's2': ...}``, one key per slot (for
        saving)."""
        state = self._state or []
        return {f"s{q + 1}": slot for q, slot in enumerate(state)}

    def set_state(self, iterations, *slots):
        self.iterations = _core.check_int(iterations, "iterations", 0)
        slots = [s for s in slots if s is not None]
        self._state = slots or None

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

    def get_config(self):
        return {"learning_rate": self.learning_rate, "beta_1": self.beta_1,
                "beta_2": self.beta_2, "epsilon": self.epsilon}

    def engine_kwargs(self):
        return {"optimizer": "adam", "eta": self.learning_rate, "beta1": self.beta_1,
                "beta2": self.beta_2, "eps": self.epsilon}


class RMSprop(Optimizer):
    """RMSprop with Keras 3's defaults and update rule (plain momentum when ``momentum``)."""

    engine_name = "rmsprop"

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7,
                 centered=False):
        super().__init__(learning_rate)
        self.rho = _core.check_float(rho, "rho", 0.0, 1.0, max_open=True)
        self.momentum = _core.check_float(momentum, "momentum", 0.0, 1.0, max_open=True)
        self.epsilon = _core.check_float(epsilon, "epsilon", 0.0)
        if centered:
            raise ValueError("centered: the centered RMSprop is not supported by the engine; "
                             "use centered=False")
        self.centered = False

    def get_config(self):
        return {"learning_rate": self.learning_rate, "rho": self.rho,
                "momentum": self.momentum, "epsilon": self.epsilon}

    def engine_kwargs(self):
        return {"optimizer": "rmsprop", "eta": self.learning_rate, "rho": self.rho,
                "momentum": self.momentum, "eps": self.epsilon}


class Adagrad(Optimizer):
    """Adagrad with Keras 3's defaults and update rule."""

    engine_name = "adagrad"

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7):
        super().__init__(learning_rate)
        self.initial_accumulator_value = _core.check_float(
            initial_accumulator_value, "initial_accumulator_value", 0.0)
        self.epsilon = _core.check_float(epsilon, "epsilon", 0.0)

    def _initial_fill(self):
        return self.initial_accumulator_value

    def get_config(self):
        return {"learning_rate": self.learning_rate,
                "initial_accumulator_value": self.initial_accumulator_value,
                "epsilon": self.epsilon}

    def engine_kwargs(self):
        return {"optimizer": "adagrad", "eta": self.learning_rate, "eps": self.epsilon}


# The optimizers the engine runs, by Keras' names: a new one is its class above (its engine row
# and hyperparameters) and one line here; keras_file.py reads its state order from KERAS_SLOTS.
OPTIMIZERS = {"sgd": SGD, "adam": Adam, "rmsprop": RMSprop, "adagrad": Adagrad}
OPTIMIZER_CLASSES = {c.__name__: c for c in OPTIMIZERS.values()}


def get(optimizer):
    """Return an Optimizer for 'adam' / 'sgd', an Optimizer class or an instance."""
    if isinstance(optimizer, Optimizer):
        return optimizer
    if isinstance(optimizer, type) and optimizer.__name__ in OPTIMIZER_CLASSES and \
            OPTIMIZER_CLASSES[optimizer.__name__] is optimizer:
        return optimizer()
    if isinstance(optimizer, str):
        key = optimizer.lower()
        if key in OPTIMIZERS:
            return OPTIMIZERS[key]()
        raise ValueError(f"optimizer: expected one of {', '.join(map(repr, OPTIMIZERS))} (the "
                         f"engine runs these), or a fastnn.optimizers instance, got "
                         f"{optimizer!r}")
    raise TypeError(f"optimizer: expected one of {', '.join(map(repr, OPTIMIZERS))} or a "
                    f"fastnn.optimizers instance, got "
                    f"{type(optimizer).__name__} ({optimizer!r})")

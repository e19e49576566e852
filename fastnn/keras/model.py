"""``Sequential``: the layer list, its weights and the engine's reading of it.

    import fastnn.keras as keras

    model = keras.Sequential([keras.Input(shape=(28, 28)), keras.layers.Flatten(),
                              keras.layers.Dense(128, activation='relu'),
                              keras.layers.Dense(10)])
    model.compile(optimizer='adam',
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=['accuracy'])
    model.fit(train_images / 255.0, train_labels, epochs=10)
    test_loss, test_acc = model.evaluate(test_images / 255.0, test_labels, verbose=2)
    probability_model = keras.Sequential([model, keras.layers.Softmax()])
    predictions = probability_model.predict(test_images / 255.0)

``compile``/``fit``/``evaluate``/``predict`` live in ``trainer.py``, saving and loading in
``saving.py``.  What the engine can run, and therefore what this front door accepts:
``Input``/``Flatten`` first, then ``Dense`` layers (activations from
``keras.activations.ACTIVATIONS``; softmax on the last one), ``Dropout`` after the hidden
``Dense`` layers (one rate for all of them when training), and ``Softmax`` layers at the end.
Anything else raises a ValueError saying why.
"""
import math

import numpy as np

from fastnn import _core
from fastnn.keras import activations as _activations
from fastnn.keras.layers import (Activation, Dense, Dropout, Flatten, Input, Layer, Softmax,
                                 _auto_name)
from fastnn.keras.trainer import Trainer

__all__ = ["Sequential"]

class _Structure:
    """The engine's reading of a layer list (see ``Sequential._structure``)."""

    def __init__(self, input_shape, flatten, denses, dropouts, trailing_softmax, acts=None):
        self.input_shape = input_shape        # one example's shape, or None
        self.flatten = flatten                # a Flatten (or Input) before the first Dense
        self.denses = denses                  # the Dense layers in order
        # each Dense's activation, an Activation layer right after it included
        self.acts = acts if acts is not None else [d.activation for d in denses]
        self.dropouts = dropouts              # [(index of the Dense before it, rate)]
        self.trailing_softmax = trailing_softmax


class Sequential(Trainer):
    """A linear stack of layers trained by the engine in one call per ``fit``.

    ``layers`` may hold layers from ``fastnn.layers`` and other ``Sequential`` models (whose
    layers, and so weights, are shared, as in Keras).  ``dtype`` is float32 by default (a model
    built on another model takes that model's dtype); ``device`` ('cpu' or 'cuda') and
    ``n_threads`` are passed to the engine.
    """

    def __init__(self, layers=None, name=None, *, dtype=None, device=None, n_threads=None):
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name: expected a string, got {type(name).__name__}")
        self.name = name if name is not None else _auto_name("sequential")
        self._dtype = None if dtype is None else _core.check_dtype(dtype)
        if device is not None:
            _core.resolve_device(device)
        self.device = device
        if n_threads is not None:
            _core.check_int(n_threads, "n_threads", 1)
            _core.check_n_threads(n_threads)
        self.n_threads = n_threads
        self._items = []
        self._data_input_shape = None     # the example shape seen first, when none was given
        self.optimizer = None
        self.loss = None
        self.compiled_metrics = []
        self.history = None
        self.stop_training = False
        self._guard = _core.TrainingGuard()
        if layers is not None:
            if isinstance(layers, (Layer, Sequential)) or not hasattr(layers, "__iter__"):
                raise TypeError(f"layers: expected a list of layers, got "
                                f"{type(layers).__name__}")
            for layer in layers:
                self.add(layer)

    # -- the layer list -------------------------------------------------------------------------
    def add(self, layer):
        """Append a layer (or a whole Sequential model) to the stack."""
        if layer is self:
            raise ValueError("layer: a model cannot contain itself")
        if not isinstance(layer, (Layer, Sequential)):
            raise TypeError(f"layer: expected a keras.layers layer or a Sequential model, got "
                            f"{type(layer).__name__} ({layer!r})")
        if isinstance(layer, Sequential) and self in layer._all_models():
            raise ValueError("layer: a model cannot contain itself")
        old = list(self._items)
        self._items.append(layer)
        try:
            self._structure()
            self._dtype_now()
        except (TypeError, ValueError):
            self._items = old
            raise

    def pop(self):
        """Remove the last layer."""
        if not self._items:
            raise ValueError("pop: the model has no layers")
        self._items.pop()

    def _all_models(self):
        out = [self]
        for item in self._items:
            if isinstance(item, Sequential):
                out += item._all_models()
        return out

    def _flat_layers(self):
        """Every layer, ``Input`` included, nested models expanded in place."""
        out = []
        for item in self._items:
            out += item._flat_layers() if isinstance(item, Sequential) else [item]
        return out

    @property
    def layers(self):
        """The layers, nested models expanded in place; as in Keras 3 an ``Input`` is not
        one of them (``model.layers[0]`` is the first layer that computes)."""
        return [l for l in self._flat_layers() if not isinstance(l, Input)]

    def get_layer(self, name=None, index=None):
        """Return the layer called ``name``, or ``layers[index]``, as Keras does."""
        if (name is None) == (index is None):
            raise ValueError(f"get_layer: give a name or an index, got name={name!r}, "
                             f"index={index!r}")
        if index is not None:
            index = _core.check_int(index, "index")
            if not -len(self.layers) <= index < len(self.layers):
                raise ValueError(f"index: the model has {len(self.layers)} layers, got {index}")
            return self.layers[index]
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ValueError(f"name: no layer named {name!r}; the layers are "
                         f"{[l.name for l in self.layers]}")

    def _dtype_now(self):
        inner = [m._dtype_now() for m in self._items if isinstance(m, Sequential)]
        if self._dtype is not None:
            for d in inner:
                if d != self._dtype:
                    raise ValueError(f"dtype: this model is {self._dtype} but a model inside it "
                                     f"is {d}; give both the same dtype")
            return self._dtype
        if inner:
            return inner[0]
        return np.dtype(np.float32)

    @property
    def dtype(self):
        return self._dtype_now()

    def _structure(self):
        """Check the layer order and return a _Structure; ValueError names the problem."""
        input_shape, flatten = None, False
        denses, dropouts, trailing, acts = [], [], 0, []
        prev = None
        for pos, layer in enumerate(self._flat_layers()):
            where = f"layers[{pos}] ({layer.name})"
            if isinstance(layer, Input):
                if pos != 0:
                    raise ValueError(f"{where}: Input must be the first layer")
                input_shape = layer.input_shape
                flatten = True
            elif isinstance(layer, Flatten):
                if denses:
                    raise ValueError(f"{where}: Flatten must come before the first Dense (the "
                                     f"engine's Dense layers work on vectors)")
                if layer.input_shape is not None:
                    if input_shape is not None and input_shape != layer.input_shape:
                        raise ValueError(f"{where}: input_shape {layer.input_shape} does not "
                                         f"match the earlier {input_shape}")
                    input_shape = layer.input_shape
                flatten = True
            elif isinstance(layer, Dense):
                if trailing:
                    raise ValueError(f"{where}: Softmax is only allowed after the last Dense")
                if layer.input_shape is not None:
                    n_prev = (denses[-1].units if denses else
                              (math.prod(input_shape) if input_shape is not None else None))
                    if n_prev is not None and n_prev != layer.input_shape[0]:
                        raise ValueError(f"{where}: input_shape {layer.input_shape} does not "
                                         f"match the {n_prev} values coming in")
                    if input_shape is None and not denses:
                        input_shape = layer.input_shape
                if denses and acts[-1] == "softmax":
                    raise ValueError(f"layers: softmax is only allowed on the last Dense "
                                     f"(the engine's softmax is an output activation), got it "
                                     f"on {denses[-1].name}")
                denses.append(layer)
                acts.append(layer.activation)
            elif isinstance(layer, Dropout):
                if trailing:
                    raise ValueError(f"{where}: Dropout after Softmax is not supported")
                dropouts.append((len(denses) - 1, layer.rate))
            elif isinstance(layer, Softmax) or (isinstance(layer, Activation) and
                                                layer.activation == "softmax"):
                if not denses:
                    raise ValueError(f"{where}: Softmax needs a Dense layer before it")
                trailing += 1
            elif isinstance(layer, Activation):
                if layer.activation != "linear":
                    if not isinstance(prev, Dense) or acts[-1] != "linear" or trailing:
                        raise ValueError(
                            f"{where}: Activation({layer.activation!r}) must come right after "
                            f"a Dense without an activation of its own (the engine runs it as "
                            f"that Dense's activation), or be Activation('softmax') at the end")
                    acts[-1] = layer.activation
            else:
                raise TypeError(f"{where}: unsupported layer type {type(layer).__name__}")
            prev = layer
        return _Structure(input_shape, flatten, denses, dropouts, trailing, acts)

    def _known_input_shape(self, st=None):
        st = st or self._structure()
        if st.input_shape is not None:
            return st.input_shape
        if self._data_input_shape is not None:
            return self._data_input_shape
        if st.denses and st.denses[0].built and not st.flatten:
            return (st.denses[0].n_in,)
        return None

    # -- building ---------------------------------------------------------------------------------
    @property
    def built(self):
        st = self._structure()
        return bool(st.denses) and all(d.built for d in st.denses)

    def build(self, input_shape=None):
        """Create the weights for examples of ``input_shape`` (e.g. (28, 28); a leading
        batch dimension None is dropped), or of the shape the layers already give."""
        st = self._structure()
        if input_shape is not None:
            if isinstance(input_shape, (tuple, list)) and len(input_shape) and \
                    input_shape[0] is None:
                input_shape = tuple(input_shape[1:])
            from fastnn.keras.layers import _check_shape
            input_shape = _check_shape(input_shape, "input_shape")
            known = self._known_input_shape(st)
            if known is not None and known != input_shape:
                raise ValueError(f"input_shape: the model takes examples of shape {known}, got "
                                 f"{input_shape}")
            if not st.flatten and len(input_shape) != 1:
                raise ValueError(f"input_shape: without Flatten the model takes vectors (n_in,), "
                                 f"got {input_shape}; add Flatten() as the first layer")
            if st.input_shape is None:
                self._data_input_shape = input_shape
        shape = self._known_input_shape(st)
        if shape is None:
            raise ValueError("input_shape: the input size is not known yet; pass "
                             "input_shape=..., give Flatten/Dense an input_shape, or call fit")
        self._build_layers(st, math.prod(shape))
        return self

    def _build_layers(self, st, n_in):
        if not st.denses:
            raise ValueError("layers: expected at least one Dense layer, got none")
        dtype = self._dtype_now()
        for d in st.denses:
            if not d.built:
                d.build(n_in, dtype)
            elif d.n_in != n_in:
                raise ValueError(f"{d.name}: built for {d.n_in} inputs, but {n_in} values "
                                 f"come in")
            d._cast(dtype)
            n_in = d.units

    def _inputs(self, x, name, st):
        """Return x as a C-contiguous (n, n_in) array of the model's dtype; build the layers
        the first time the input size is seen.

        Accepted as Keras accepts them: arrays or nested lists; 1-D ``x`` for a model whose
        examples are ``(1,)`` (or whose input size is not known yet): one number per example;
        examples whose shape differs from the declared one only by axes of length 1
        (``(n, 28, 28)`` for ``(28, 28, 1)`` and the reverse)."""
        arr = _core.as_array(x, name)
        if arr.dtype == object or arr.dtype.kind not in "biuf":
            raise TypeError(f"{name}: expected a numeric array (uint8 or float), got dtype "
                            f"{arr.dtype}")
        shape = self._known_input_shape(st)
        if arr.ndim == 1 and (shape is None or tuple(shape) == (1,)) and arr.size:
            arr = arr.reshape(-1, 1)
        if arr.ndim < 2:
            want = f"(n, {', '.join(map(str, shape))})" if shape else "(n, ...)"
            raise ValueError(f"{name}: expected an array of examples {want}, got shape "
                             f"{arr.shape}")
        if shape is not None and tuple(arr.shape[1:]) != tuple(shape) and \
                _squeezed(arr.shape[1:]) == _squeezed(shape):
            arr = arr.reshape((arr.shape[0],) + tuple(shape))
        if not st.flatten and arr.ndim != 2:
            raise ValueError(f"{name}: the model has no Flatten layer, so it takes vectors "
                             f"(n, features); got shape {arr.shape} (add Flatten() first)")
        if shape is not None and tuple(arr.shape[1:]) != tuple(shape):
            raise ValueError(f"{name}: expected examples of shape {tuple(shape)}, i.e. an "
                             f"array ({len(arr)}, {', '.join(map(str, shape))}), got "
                             f"{arr.shape}")
        self._build_layers(st, int(math.prod(arr.shape[1:])))
        if shape is None:
            self._data_input_shape = tuple(int(s) for s in arr.shape[1:])
        X = np.ascontiguousarray(arr.reshape(arr.shape[0], -1), dtype=self._dtype_now())
        if X.size and not np.isfinite(X).all():
            raise ValueError(f"{name}: expected finite values, got NaN or Inf")
        return X

    # -- the engine's view --------------------------------------------------------------------------
    def _params(self, st):
        return [d.W for d in st.denses], [d.b.reshape(-1) for d in st.denses]

    def _predict_acts(self, st):
        """(engine activations, Softmax layers left to apply in numpy)."""
        acts = [_activations.ACTIVATIONS[a] for a in st.acts]
        left = st.trailing_softmax
        if left and acts[-1] == "identity":
            acts[-1], left = "softmax", left - 1
        return acts, left

    def _train_plan(self, st):
        """(activations, cost, cost_scale) of the compiled loss on this model."""
        acts = [_activations.ACTIVATIONS[a] for a in st.acts]
        out_act, cost, scale = self.loss.plan(st.acts[-1], st.trailing_softmax,
                                              st.denses[-1].units)
        acts[-1] = _activations.ACTIVATIONS.get(out_act, out_act)
        return acts, cost, scale

    def _dropout_rate(self, st):
        drops = [(i, r) for i, r in st.dropouts if r > 0]
        if not drops:
            return 0.0
        rates = sorted({r for _, r in drops})
        hidden = list(range(len(st.denses) - 1))
        if len(rates) != 1 or sorted(i for i, _ in drops) != hidden:
            where = ", ".join(f"after {'the input' if i < 0 else st.denses[i].name} "
                              f"(rate {r})" for i, r in drops)
            raise ValueError(
                f"layers: the engine applies one dropout rate to every hidden Dense layer, so "
                f"each hidden Dense must be followed by exactly one Dropout of the same rate, "
                f"and none may follow the input or the last Dense; got Dropout {where} with "
                f"{len(hidden)} hidden Dense layer(s)")
        return rates[0]

    # -- attributes (Keras' names) ------------------------------------------------------------------
    @property
    def weights(self):
        """The parameters as numpy arrays in Keras' order and layout: ``[kernel_0, bias_0,
        kernel_1, ...]``, views of the arrays the engine trains ([] before building)."""
        out = []
        for layer in self.layers:
            out += layer.weights
        return out

    trainable_weights = trainable_variables = variables = weights

    @property
    def non_trainable_weights(self):
        return []

    @property
    def input_shape(self):
        """``(None, *example shape)``; ValueError while the input shape is not known."""
        shape = self._known_input_shape()
        if shape is None:
            raise ValueError("input_shape: the model's input shape is not known yet; declare "
                             "it (keras.Input(shape=...) or input_shape=) or call fit/build")
        return (None,) + tuple(shape)

    @property
    def output_shape(self):
        """``(None, units of the last Dense)``."""
        st = self._structure()
        if not st.denses:
            raise ValueError("output_shape: the model has no Dense layer")
        return (None, st.denses[-1].units)

    # -- weights ------------------------------------------------------------------------------------
    def count_params(self):
        """Return the number of parameters of the built layers."""
        return sum(layer.count_params() for layer in self.layers)

    def get_weights(self):
        """Return ``[kernel_0, bias_0, kernel_1, ...]`` in Keras' layout (copies)."""
        out = []
        for d in self._structure().denses:
            out += d.get_weights()
        return out

    def set_weights(self, weights):
        """Set all Dense kernels and biases from a list like ``get_weights()``'s."""
        denses = self._structure().denses
        if not isinstance(weights, (list, tuple)) or len(weights) != 2 * len(denses):
            raise ValueError(f"weights: expected a list of {2 * len(denses)} arrays (kernel, "
                             f"bias per Dense layer), got "
                             f"{len(weights) if hasattr(weights, '__len__') else weights!r}")
        n_in = None
        shape = self._known_input_shape()
        if shape is not None:
            n_in = math.prod(shape)
        for k, d in enumerate(denses):
            kernel = np.asarray(weights[2 * k])
            if n_in is not None and kernel.ndim == 2 and kernel.shape[0] != n_in:
                raise ValueError(f"weights[{2 * k}] ({d.name} kernel): expected shape "
                                 f"({n_in}, {d.units}), got {kernel.shape}")
            d.set_weights([weights[2 * k], weights[2 * k + 1]])
            d._cast(self._dtype_now())
            n_in = d.units

    # -- summary ------------------------------------------------------------------------------------
    def summary(self, print_fn=None):
        """Print the layers, their output shapes and parameter counts (Keras' numbers)."""
        print_fn = print_fn or print
        st = self._structure()
        shape = self._known_input_shape(st)
        size = None if shape is None else math.prod(shape)
        rows, total = [], 0
        for layer in self.layers:
            if isinstance(layer, Input):
                out, params = f"(None, {', '.join(map(str, layer.input_shape))})", 0
            elif isinstance(layer, Flatten):
                out, params = ("(None, ?)" if size is None else f"(None, {size})"), 0
            elif isinstance(layer, Dense):
                if layer.built:
                    params = layer.count_params()
                elif size is not None:
                    params = layer.units * (size + 1)
                else:
                    params = None
                size = layer.units
                out = f"(None, {size})"
            else:
                out, params = ("(None, ?)" if size is None else f"(None, {size})"), 0
            total += params or 0
            rows.append((f"{layer.name} ({type(layer).__name__})", out,
                         "0 (unbuilt)" if params is None else f"{params:,}"))
        itemsize = self._dtype_now().itemsize
        width = 65
        print_fn(f'Model: "{self.name}"')
        print_fn("_" * width)
        print_fn(f" {'Layer (type)':<28}{'Output Shape':<26}Param #")
        print_fn("=" * width)
        for name, out, params in rows:
            print_fn(f" {name:<28}{out:<26}{params}")
        print_fn("=" * width)
        print_fn(f"Total params: {total:,} ({_format_bytes(total * itemsize)})")
        print_fn(f"Trainable params: {total:,} ({_format_bytes(total * itemsize)})")
        print_fn("Non-trainable params: 0 (0.00 B)")
        print_fn("_" * width)

    # -- saving (saving.py) ---------------------------------------------------------------------
    def get_config(self):
        """Return the JSON-able description fastnn's ``.npz`` format writes (no arrays)."""
        from fastnn.keras import saving
        return saving.fastnn_config(self)

    def save(self, filepath, overwrite=True):
        """Write the model: ``.keras`` in Keras 3's format (needs h5py), ``.npz`` in
        fastnn's own (see ``keras/saving.py``); other suffixes are refused."""
        from fastnn.keras import saving
        saving.save_model(self, filepath, overwrite=overwrite)

    def save_weights(self, filepath, overwrite=True):
        """Write the weights to ``filepath`` (``.weights.h5``, Keras 3's layout; needs h5py)."""
        from fastnn.keras import saving
        saving.save_weights(self, filepath, overwrite=overwrite)

    def load_weights(self, filepath):
        """Read weights written by ``save_weights`` (fastnn's or Keras 3's ``.weights.h5``)."""
        from fastnn.keras import saving
        saving.load_weights(self, filepath)

    # -- network2 -----------------------------------------------------------------------------------
    @classmethod
    def from_network2(cls, net, name=None):
        """Return a model with the same layers and weights as a ``fastnn.network2.Network``.

        The model is not compiled: choose its loss and optimizer with ``compile``."""
        from fastnn import network2
        if not isinstance(net, network2.Network):
            raise TypeError(f"net: expected a fastnn.network2.Network, got "
                            f"{type(net).__name__}")
        sizes = net.sizes
        L = len(sizes) - 1
        W, b = _core.sync_params(net, sizes, net.dtype)
        layers = []
        for l in range(L):
            act = net.activation if l < L - 1 else net.output_activation
            act = "linear" if act in ("identity", "linear") else act
            kw = {"input_shape": (sizes[0],)} if l == 0 else {}
            d = Dense(sizes[l + 1], activation=act, **kw)
            d.W = np.array(W[l], dtype=net.dtype, order="C", copy=True)
            d.b = np.array(b[l].reshape(-1, 1), dtype=net.dtype, order="C", copy=True)
            layers.append(d)
        return cls(layers, name=name, dtype=net.dtype, device=net.device,
                   n_threads=net.n_threads)

    def to_network2(self):
        """Return a ``fastnn.network2.Network`` computing the same outputs as ``predict``.

        Needs one activation on all hidden Dense layers.  The network2 cost follows the output:
        softmax -> LogLikelihoodCost, sigmoid -> CrossEntropyCost, else QuadraticCost.  A model
        trained with ``from_logits=True`` outputs logits; convert
        ``Sequential([model, Softmax()])`` to get the softmax network.  Dropout layers are
        dropped (network2 takes dropout as an SGD option)."""
        from fastnn import network2
        st = self._structure()
        if not self.built:
            raise ValueError("model: build it (fit, predict or build) before converting")
        acts, left = self._predict_acts(st)
        if left:
            raise ValueError(f"model: network2 has no layer for the {left} extra Softmax "
                             f"layer(s) after the output")
        hidden = sorted(set(acts[:-1]))
        if len(hidden) > 1:
            raise ValueError(f"model: network2 uses one activation on all hidden layers, got "
                             f"{', '.join(hidden)}")
        out = acts[-1]
        cost = {"softmax": network2.LogLikelihoodCost,
                "sigmoid": network2.CrossEntropyCost}.get(out, network2.QuadraticCost)
        sizes = [st.denses[0].n_in] + [d.units for d in st.denses]
        dtype = self._dtype_now()
        state = np.random.get_state()      # network2 draws initial weights; keep the stream
        try:
            net = network2.Network(sizes, cost=cost,
                                   activation=hidden[0] if hidden else "sigmoid",
                                   output_activation=out, dtype=dtype,
                                   n_threads=self.n_threads, device=self.device)
        finally:
            np.random.set_state(state)
        net.weights = [d.W.copy() for d in st.denses]
        net.biases = [d.b.copy() for d in st.denses]
        return net

    def __repr__(self):
        return f"<Sequential name={self.name!r} layers={len(self.layers)}>"


def _format_bytes(n):
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.2f} {unit}"
        n /= 1024.0


def _squeezed(shape):
    return tuple(int(s) for s in shape if s != 1)

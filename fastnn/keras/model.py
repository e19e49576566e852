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
``keras.activations.ACTIVATIONS``; softmax on the last one); or channels-last images through
``Conv2D`` and ``MaxPooling2D`` layers, then ``Flatten`` and ``Dense`` layers; ``Dropout``
anywhere but after the output (its rate goes on the engine layer before it, or on a flatten
layer in front when it follows the input), and ``Softmax`` layers at the end.  Anything else
raises a ValueError saying why.
"""
import math

import numpy as np

from fastnn import _core
from fastnn.keras import activations as _activations
from fastnn.keras.layers import (Activation, Conv2D, Dense, Dropout, Flatten, Input, Layer,
                                 MaxPooling2D, Softmax, _auto_name)
from fastnn.keras.trainer import Trainer

__all__ = ["Sequential"]

class _Structure:
    """The engine's reading of a layer list (see ``Sequential._structure``).

    ``units`` are the engine's layers in order: the Dense layers, and in a model with
    Conv2D/MaxPooling2D layers (``conv``) those and its Flatten layers too; ``INPUT_DROP`` in
    front stands for a flatten layer that only carries a Dropout right after the input.
    ``acts[u]`` is unit u's activation (Keras' name, an Activation layer right after it
    included), ``drops[u]`` the dropout rate on its output."""

    def __init__(self, input_shape, flatten, units, acts, drops, trailing_softmax, conv):
        self.input_shape = input_shape        # one example's shape, or None
        self.flatten = flatten                # examples may be more than vectors
        self.units = units
        self.acts = acts
        self.drops = drops
        self.trailing_softmax = trailing_softmax
        self.conv = conv
        self.denses = [u for u in units if isinstance(u, Dense)]
        self.params = [u for u in units if isinstance(u, (Dense, Conv2D))]


INPUT_DROP = "input dropout"
_IMAGE_LAYERS = (Conv2D, MaxPooling2D)


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
        flat_layers = self._flat_layers()
        conv = any(isinstance(l, _IMAGE_LAYERS) for l in flat_layers)
        input_shape, flatten = None, conv
        units, acts, drops, trailing = [], [], [], 0
        vectors = False          # (conv models) a Flatten or Dense has made vectors already
        prev = None
        for pos, layer in enumerate(flat_layers):
            where = f"layers[{pos}] ({layer.name})"
            if isinstance(layer, (Dense, Conv2D, MaxPooling2D)) or \
                    (conv and isinstance(layer, Flatten)):
                if trailing:
                    raise ValueError(f"{where}: Softmax is only allowed after the last Dense")
                if units and acts[-1] == "softmax":
                    raise ValueError(f"layers: softmax is only allowed on the last Dense "
                                     f"(the engine's softmax is an output activation), got it "
                                     f"on {units[-1].name}")
            if isinstance(layer, Input):
                if pos != 0:
                    raise ValueError(f"{where}: Input must be the first layer")
                input_shape = layer.input_shape
                flatten = True
            elif isinstance(layer, Flatten):
                if not conv and units:
                    raise ValueError(f"{where}: Flatten must come before the first Dense (the "
                                     f"engine's Dense layers work on vectors)")
                if layer.input_shape is not None:
                    if input_shape is not None and input_shape != layer.input_shape:
                        raise ValueError(f"{where}: input_shape {layer.input_shape} does not "
                                         f"match the earlier {input_shape}")
                    input_shape = layer.input_shape
                flatten = True
                if conv:
                    units.append(layer)
                    acts.append("linear")
                    drops.append(0.0)
                    vectors = True
            elif isinstance(layer, _IMAGE_LAYERS):
                if vectors:
                    raise ValueError(f"{where}: {type(layer).__name__} takes images (height, "
                                     f"width, channels), but the layer before it "
                                     f"({prev.name}) gives vectors; put Conv2D and "
                                     f"MaxPooling2D layers before Flatten and Dense")
                if layer.input_shape is not None:
                    if input_shape is not None and input_shape != layer.input_shape:
                        raise ValueError(f"{where}: input_shape {layer.input_shape} does not "
                                         f"match the earlier {input_shape}")
                    if units:
                        raise ValueError(f"{where}: input_shape is only allowed on the first "
                                         f"layer, got {layer.input_shape}")
                    input_shape = layer.input_shape
                units.append(layer)
                acts.append(layer.activation if isinstance(layer, Conv2D) else "linear")
                drops.append(0.0)
            elif isinstance(layer, Dense):
                if conv and not vectors:
                    raise ValueError(f"{where}: Dense takes vectors, but "
                                     f"{prev.name if units else 'the input'} gives images; put "
                                     f"a Flatten() before the first Dense")
                denses = [u for u in units if isinstance(u, Dense)]
                if layer.input_shape is not None:
                    n_prev = (denses[-1].units if denses else
                              (math.prod(input_shape) if input_shape is not None and not conv
                               else None))
                    if n_prev is not None and n_prev != layer.input_shape[0]:
                        raise ValueError(f"{where}: input_shape {layer.input_shape} does not "
                                         f"match the {n_prev} values coming in")
                    if input_shape is None and not units:
                        input_shape = layer.input_shape
                units.append(layer)
                acts.append(layer.activation)
                drops.append(0.0)
                vectors = True
            elif isinstance(layer, Dropout):
                if trailing:
                    raise ValueError(f"{where}: Dropout after Softmax is not supported")
                if not units:             # a flatten layer in front carries it
                    units.append(INPUT_DROP)
                    acts.append("linear")
                    drops.append(0.0)
                # two Dropouts in a row keep a value with probability (1-p1)(1-p2)
                drops[-1] = layer.rate if drops[-1] == 0 else \
                    1.0 - (1.0 - drops[-1]) * (1.0 - layer.rate)
            elif isinstance(layer, Softmax) or (isinstance(layer, Activation) and
                                                layer.activation == "softmax"):
                if not any(isinstance(u, Dense) for u in units):
                    raise ValueError(f"{where}: Softmax needs a Dense layer before it")
                trailing += 1
            elif isinstance(layer, Activation):
                if layer.activation != "linear":
                    if not isinstance(prev, (Dense, Conv2D)) or acts[-1] != "linear" or \
                            trailing:
                        raise ValueError(
                            f"{where}: Activation({layer.activation!r}) must come right after "
                            f"a Dense or Conv2D without an activation of its own (the engine "
                            f"runs it as that layer's activation), or be Activation('softmax') "
                            f"at the end")
                    acts[-1] = layer.activation
            else:
                raise TypeError(f"{where}: unsupported layer type {type(layer).__name__}")
            prev = layer
        return _Structure(input_shape, flatten, units, acts, drops, trailing, conv)

    def _known_input_shape(self, st=None):
        st = st or self._structure()
        if st.input_shape is not None:
            return st.input_shape
        if self._data_input_shape is not None:
            return self._data_input_shape
        if st.denses and st.denses[0].built and not st.flatten and \
                st.units[0] is st.denses[0]:
            return (st.denses[0].n_in,)
        return None

    # -- building ---------------------------------------------------------------------------------
    @property
    def built(self):
        st = self._structure()
        return bool(st.denses) and all(u.built for u in st.params)

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
        self._build_layers(st, shape)
        return self

    def _build_layers(self, st, shape):
        """Build (or check) every layer's parameters for examples of ``shape``."""
        if not st.denses:
            raise ValueError("layers: expected at least one Dense layer, got none")
        if not isinstance(st.units[-1], Dense):
            raise ValueError(f"layers: the last layer that computes must be a Dense (the "
                             f"engine's outputs are vectors), got {st.units[-1].name}")
        self._walk(st, shape, build=True)

    def _walk(self, st, shape, build=False):
        """Follow examples of ``shape`` through the layers, checking that each fits the one
        before (and with ``build``, building or checking its parameters).  Return (the
        engine's description of each unit, ``TrainConfig.layers``; each layer's output shape,
        ``Input`` left out)."""
        shape = tuple(int(v) for v in shape)
        if st.conv and len(shape) != 3:
            first = next(u for u in st.units if u != INPUT_DROP)
            raise ValueError(f"input: {first.name} ({type(first).__name__}) takes images "
                             f"(height, width, channels), got examples of shape {shape}; give "
                             f"x as (n, height, width, channels), e.g. x[..., None], or declare "
                             f"keras.Input(shape=(height, width, channels))")
        dtype = self._dtype_now()

        def image(sh):
            return sh if len(sh) == 3 else (1, 1, math.prod(sh))

        unit_ids = {id(u) for u in st.units}
        k = 0
        specs, outs = [], []
        if st.units and st.units[0] == INPUT_DROP:
            specs.append({"kind": "flatten", "in_shape": image(shape),
                          "out_shape": image(shape), "dropout": st.drops[0]})
            k = 1
        cur = shape
        for layer in self._flat_layers():
            spec = None
            if isinstance(layer, Input):
                continue
            if isinstance(layer, Conv2D):
                out, (pt, pl) = layer.output_geometry(cur)
                spec = {"kind": "conv2d", "in_shape": cur, "out_shape": out,
                        "geom": layer.kernel_size + layer.strides + (pt, pl)}
                if build:
                    if not layer.built:
                        layer.build(cur[2], dtype)
                    elif layer.in_channels != cur[2]:
                        raise ValueError(f"{layer.name}: built for {layer.in_channels} input "
                                         f"channels, but {cur[2]} come in")
                    layer._cast(dtype)
            elif isinstance(layer, MaxPooling2D):
                out = layer.output_geometry(cur)
                spec = {"kind": "maxpool2d", "in_shape": cur, "out_shape": out,
                        "geom": layer.pool_size + layer.strides}
            elif isinstance(layer, Flatten):
                out = (math.prod(cur),)
                spec = {"kind": "flatten", "in_shape": image(cur), "out_shape": image(out)}
            elif isinstance(layer, Dense):
                n_in = math.prod(cur)
                out = (layer.units,)
                spec = {"kind": "dense"}
                if build:
                    if not layer.built:
                        layer.build(n_in, dtype)
                    elif layer.n_in != n_in:
                        raise ValueError(f"{layer.name}: built for {layer.n_in} inputs, but "
                                         f"{n_in} values come in")
                    layer._cast(dtype)
            else:
                out = cur
            if spec is not None and id(layer) in unit_ids:
                spec["dropout"] = st.drops[k]
                specs.append(spec)
                k += 1
            outs.append(out)
            cur = out
        return specs, outs

    def _engine_layers(self, st):
        """``TrainConfig.layers`` for this model, or None where the engine's dense-only
        description (and its one dropout rate on every hidden layer) says it all."""
        if not st.conv and self._dropout_rate(st) is not None:
            return None
        return self._walk(st, self._known_input_shape(st))[0]

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
        self._build_layers(st, tuple(arr.shape[1:]))
        if shape is None:
            self._data_input_shape = tuple(int(s) for s in arr.shape[1:])
        X = np.ascontiguousarray(arr.reshape(arr.shape[0], -1), dtype=self._dtype_now())
        if X.size and not np.isfinite(X).all():
            raise ValueError(f"{name}: expected finite values, got NaN or Inf")
        return X

    # -- the engine's view --------------------------------------------------------------------------
    def _params(self, st):
        """The engine's W and flat b, one per unit (None for the layers without)."""
        W = [u.W if isinstance(u, (Dense, Conv2D)) else None for u in st.units]
        b = [u.b.reshape(-1) if isinstance(u, (Dense, Conv2D)) else None for u in st.units]
        return W, b

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
        """The call's dropout rate when one rate on every hidden Dense says it all (0.0
        without Dropout), None when the layers carry their own; a Dropout after the output is
        refused."""
        if st.drops and st.drops[-1] > 0:
            raise ValueError(f"layers: a Dropout after the output layer "
                             f"({st.units[-1].name}) is not supported; put it before the last "
                             f"Dense")
        if not any(r > 0 for r in st.drops):
            return 0.0
        hidden = st.drops[:-1]
        if not st.conv and st.units[0] != INPUT_DROP and len(set(hidden)) == 1:
            return hidden[0]
        return None

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
        """Return ``[kernel_0, bias_0, kernel_1, ...]`` in Keras' layout (copies): a Dense's
        kernel ``(n_in, units)``, a Conv2D's ``(kh, kw, in, filters)``."""
        out = []
        for layer in self._structure().params:
            out += layer.get_weights()
        return out

    def set_weights(self, weights):
        """Set all Dense and Conv2D kernels and biases from a list like ``get_weights()``'s."""
        st = self._structure()
        params = st.params
        if not isinstance(weights, (list, tuple)) or len(weights) != 2 * len(params):
            raise ValueError(f"weights: expected a list of {2 * len(params)} arrays (kernel, "
                             f"bias per Dense/Conv2D layer), got "
                             f"{len(weights) if hasattr(weights, '__len__') else weights!r}")
        shape = self._known_input_shape(st)
        if st.conv and shape is not None and not self.built:
            self._build_layers(st, shape)       # so each kernel is checked against its input
        n_in = None
        if shape is not None and not st.conv:
            n_in = math.prod(shape)
        for k, layer in enumerate(params):
            kernel = np.asarray(weights[2 * k])
            if isinstance(layer, Dense):
                if n_in is not None and kernel.ndim == 2 and kernel.shape[0] != n_in:
                    raise ValueError(f"weights[{2 * k}] ({layer.name} kernel): expected shape "
                                     f"({n_in}, {layer.units}), got {kernel.shape}")
                n_in = layer.units
            layer.set_weights([weights[2 * k], weights[2 * k + 1]])
            layer._cast(self._dtype_now())

    # -- summary ------------------------------------------------------------------------------------
    def summary(self, print_fn=None):
        """Print the layers, their output shapes and parameter counts (Keras' numbers)."""
        print_fn = print_fn or print
        st = self._structure()
        shape = self._known_input_shape(st)
        outs = None
        if shape is not None:
            try:
                outs = self._walk(st, shape)[1]
            except ValueError:
                outs = None
        rows, total, cur = [], 0, shape
        for i, layer in enumerate(self.layers):
            out = None if outs is None else outs[i]
            if out is None and isinstance(layer, Dense):
                out = (layer.units,)
            params = 0
            if isinstance(layer, (Dense, Conv2D)):
                if layer.built:
                    params = layer.count_params()
                elif cur is None:
                    params = None
                elif isinstance(layer, Dense):
                    params = layer.units * (math.prod(cur) + 1)
                else:
                    params = (math.prod(layer.kernel_size) * cur[-1] + 1) * layer.filters
            total += params or 0
            text = "(None, ?)" if out is None else f"(None, {', '.join(map(str, out))})"
            rows.append((f"{layer.name} ({type(layer).__name__})", text,
                         "0 (unbuilt)" if params is None else f"{params:,}"))
            cur = out
        itemsize = self._dtype_now().itemsize
        width = 69
        print_fn(f'Model: "{self.name}"')
        print_fn("_" * width)
        print_fn(f" {'Layer (type)':<32}{'Output Shape':<26}Param #")
        print_fn("=" * width)
        for name, out, params in rows:
            print_fn(f" {name:<32}{out:<26}{params}")
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
        if st.conv or st.units != st.denses:
            raise ValueError("model: network2 has only dense layers; this model has "
                             f"{', '.join(sorted({type(u).__name__ for u in st.units if not isinstance(u, Dense)}))} "
                             "layers too (fastnn.network3 runs convolutional networks)")
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

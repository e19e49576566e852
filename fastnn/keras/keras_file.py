"""Keras 3's files: ``.keras`` (whole model) and ``.weights.h5`` (weights), through h5py.

A ``.keras`` file is a zip of three members (checked against files Keras 3.15 wrote, in
``tests/data/keras3/``):

- ``metadata.json``: ``{"keras_version", "date_saved"}``;
- ``config.json``: ``{"module": "keras", "class_name": "Sequential", "config": {"name",
  "trainable", "dtype", "layers": [{"module": "keras.layers", "class_name", "config",
  "registered_name", "build_config"}, ...], "build_input_shape"}, "build_config",
  "compile_config"}``; the first layer is an ``InputLayer`` whose ``batch_shape`` is
  ``[null, *example shape]``;
- ``model.weights.h5``: one group per layer, ``layers/<snake-case class name>[_<k>]/vars``
  (``dense``, ``dense_1``, ... counted per class in layer order, the layer's own name in the
  ``vars`` group's ``name`` attribute), holding ``0`` (kernel ``(n_in, units)``) and ``1``
  (bias); then ``optimizer/vars``: ``0`` the step count, ``1`` the learning rate, then the
  optimizer's state in Keras' order (``KERAS_ORDER``): per trainable array (kernel 0, bias 0,
  kernel 1, ...) Adam's ``m`` and ``v`` side by side, SGD's momentum, Adagrad's
  accumulator; RMSprop's velocities of every array, then (momentum > 0) its momentums; and
  an empty ``vars`` group for the model.

A ``.weights.h5`` file is ``model.weights.h5`` on its own.  The engine and Keras 3 use the
same optimizer updates (DESIGN.md), so the optimizer state carries over: a model loaded from a
file either one wrote continues training where it stopped (tests/test_keras_files.py checks
one more epoch in each against the other).
"""
import datetime
import io
import json
import math
import zipfile

import numpy as np

from fastnn import _core
from fastnn._version import __version__
from fastnn.keras import (initializers as _initializers, losses as _losses,
                          optimizers as _optimizers)
from fastnn.keras.layers import Activation, Dense, Dropout, Flatten, Input, Softmax

__all__ = ["save_keras", "load_keras", "save_weights_h5", "load_weights_h5"]

KERAS_VERSION = "3.15.1"     # the Keras whose files these were checked against
SUPPORTED = ("InputLayer", "Flatten", "Dense", "Dropout", "Softmax", "Activation")


def _h5py():
    try:
        import h5py
    except ImportError:
        raise ImportError("Keras 3 files (.keras, .weights.h5) need h5py: pip install h5py "
                          "(or pip install 'fastnn[keras]'); fastnn's own format (.npz) "
                          "needs nothing more") from None
    return h5py


def _bad(path, why):
    return ValueError(f"{path}: not a .keras file fastnn can read ({why})")


# ---------------------------------------------------------------------------------------------
# writing

def _dtype_policy(dtype):
    return {"module": "keras", "class_name": "DTypePolicy", "config": {"name": str(dtype)},
            "registered_name": None}


def _layer_entry(layer, dtype, in_shape):
    """(config.json entry, shape after the layer) for one of fastnn's layers."""
    base = {"name": layer.name, "trainable": True, "dtype": _dtype_policy(dtype)}
    if isinstance(layer, Flatten):
        cls, cfg = "Flatten", dict(base, data_format="channels_last")
        out = None if in_shape is None else [math.prod(in_shape)]
    elif isinstance(layer, Dense):
        cls = "Dense"
        cfg = dict(base, units=layer.units, activation=layer.activation, use_bias=True,
                   kernel_initializer=_initializer(layer.kernel_initializer),
                   bias_initializer=_initializer(layer.bias_initializer),
                   kernel_regularizer=None, bias_regularizer=None, kernel_constraint=None,
                   bias_constraint=None)
        out = [layer.units]
    elif isinstance(layer, Dropout):
        cls, cfg, out = "Dropout", dict(base, rate=layer.rate, seed=None,
                                        noise_shape=None), in_shape
    elif isinstance(layer, Softmax):
        cls, cfg, out = "Softmax", dict(base, axis=-1), in_shape
    elif isinstance(layer, Activation):
        cls, cfg, out = "Activation", dict(base, activation=layer.activation), in_shape
    else:
        raise ValueError(f"layers: {type(layer).__name__} has no Keras 3 form here")
    entry = {"module": "keras.layers", "class_name": cls, "config": cfg,
             "registered_name": None}
    if in_shape is not None:
        entry["build_config"] = {"input_shape": [None] + list(in_shape)}
    return entry, out


def _initializer(name):
    cls = _initializers.class_name(name)
    cfg = {} if cls in ("Zeros", "Ones") else {"seed": None}
    return {"module": "keras.initializers", "class_name": cls, "config": cfg,
            "registered_name": None}


def _loss_config(loss):
    if isinstance(loss, _losses.MeanSquaredError):
        return "mean_squared_error"
    return {"module": "keras.losses", "class_name": type(loss).__name__,
            "config": {"name": loss.name, "reduction": "sum_over_batch_size",
                       "from_logits": loss.from_logits},
            "registered_name": None}


def _optimizer_config(opt):
    cfg = dict(opt.get_config(), name=type(opt).__name__.lower())
    if isinstance(opt, _optimizers.SGD):
        cfg["nesterov"] = False
    if isinstance(opt, _optimizers.Adam):
        cfg["amsgrad"] = False
    if isinstance(opt, _optimizers.RMSprop):
        cfg["centered"] = False
    return {"module": "keras.optimizers", "class_name": type(opt).__name__, "config": cfg,
            "registered_name": None}


def _config(model):
    st = model._structure()
    dtype = model._dtype_now()
    shape = model._known_input_shape(st)
    layers = []
    if shape is not None:
        layers.append({"module": "keras.layers", "class_name": "InputLayer",
                       "config": {"batch_shape": [None] + list(shape), "dtype": str(dtype),
                                  "sparse": False, "name": "input_layer"},
                       "registered_name": None})
    cur = None if shape is None else list(shape)
    for layer in model.layers:
        if isinstance(layer, Input):
            continue
        entry, cur = _layer_entry(layer, dtype, cur)
        layers.append(entry)
    cfg = {"module": "keras", "class_name": "Sequential",
           "config": {"name": model.name, "trainable": True, "dtype": _dtype_policy(dtype),
                      "layers": layers},
           "registered_name": None}
    if shape is not None:
        cfg["config"]["build_input_shape"] = [None] + list(shape)
        cfg["build_config"] = {"input_shape": [None] + list(shape)}
    if model.loss is not None:
        cfg["compile_config"] = {
            "optimizer": _optimizer_config(model.optimizer),
            "loss": _loss_config(model.loss), "loss_weights": None,
            "metrics": list(model.compiled_metrics) or None, "weighted_metrics": None,
            "run_eagerly": False, "steps_per_execution": 1, "jit_compile": False}
    return cfg


def _layer_paths(layers):
    """Keras' h5 group of each layer: snake-case class name, numbered per class."""
    used, out = {}, []
    for layer in layers:
        base = _snake(type(layer).__name__)
        if base in used:
            used[base] += 1
            out.append(f"{base}_{used[base]}")
        else:
            used[base] = 0
            out.append(base)
    return out


def _snake(name):
    out = []
    for i, c in enumerate(name):
        if c.isupper() and i and (not name[i - 1].isupper() or
                                  (i + 1 < len(name) and name[i + 1].islower())):
            out.append("_")
        out.append(c.lower())
    return "".join(out)


def _write_h5(model, fh):
    h5py = _h5py()
    st = model._structure()
    layers = [l for l in model.layers if not isinstance(l, Input)]
    with h5py.File(fh, "w") as f:
        lg = f.create_group("layers")
        for layer, path in zip(layers, _layer_paths(layers)):
            g = lg.create_group(path).create_group("vars")
            g.attrs["name"] = layer.name
            if isinstance(layer, Dense) and layer.built:
                g.create_dataset("0", data=layer.kernel)
                g.create_dataset("1", data=layer.bias)
        if model.optimizer is not None and model.built:
            opt = model.optimizer
            og = f.create_group("optimizer").create_group("vars")
            og.attrs["name"] = type(opt).__name__.lower()
            og.create_dataset("0", data=np.int64(opt.iterations))
            og.create_dataset("1", data=np.float32(opt.learning_rate))
            for k, arr in enumerate(_optimizer_arrays(model, st)):
                og.create_dataset(str(k + 2), data=arr)
        f.create_group("vars").attrs["name"] = model.name


# Keras 3's order of an optimizer's variables after (iteration, learning_rate): "var" puts each
# trainable array's slots side by side (Adam: m, v of kernel 0, then of bias 0, ...); "slot"
# lists every array's first slot, then every array's second (RMSprop: velocities, momentums).
KERAS_ORDER = {"sgd": "var", "momentum": "var", "adam": "var", "rmsprop": "slot",
               "adagrad": "var"}


def _keras_slots(opt):
    """How many of the engine's state slots Keras keeps (RMSprop: the momentum buffer only
    with momentum > 0)."""
    k = opt._n_states()
    if opt.engine_name == "rmsprop" and not opt.momentum > 0:
        k = 1
    return k


def _slot_positions(opt, n_layers):
    """[(slot, layer, 0 kernel | 1 bias)] in Keras' order of the optimizer's variables."""
    k = _keras_slots(opt)
    arrays = [(l, j) for l in range(n_layers) for j in range(2)]
    if KERAS_ORDER[opt.engine_name] == "var":
        return [(q, l, j) for l, j in arrays for q in range(k)]
    return [(q, l, j) for q in range(k) for l, j in arrays]


def _current_state(opt, W, b):
    """The optimizer's state slots, or the state a fresh optimizer starts from."""
    state = opt._state
    if state is None or len(state) != opt._n_states() or \
            not all(opt._matches(slot, W, b) for slot in state):
        state = _core.new_state(opt.engine_name, W, b, opt._initial_fill())
    return state


def _optimizer_arrays(model, st):
    """The optimizer's state in Keras' order and layout (a fresh state when not trained)."""
    opt = model.optimizer
    W, b = model._params(st)
    state = _current_state(opt, W, b)
    return [state[q][l][j].T if j == 0 else state[q][l][j].reshape(-1)
            for q, l, j in _slot_positions(opt, len(W))]


def _h5_bytes(model):
    buf = io.BytesIO()
    _write_h5(model, buf)
    return buf.getvalue()


def save_weights_h5(model, path):
    _h5py()
    data = _h5_bytes(model)
    _core.atomic_write(path, lambda fh: fh.write(data))


def save_keras(model, path):
    _h5py()
    meta = {"keras_version": KERAS_VERSION, "fastnn_version": __version__,
            "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S")}
    config = _config(model)
    weights = _h5_bytes(model)

    def write(fh):
        with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_STORED) as z:
            z.writestr("metadata.json", json.dumps(meta))
            z.writestr("config.json", json.dumps(config))
            z.writestr("model.weights.h5", weights)
    _core.atomic_write(path, write)


# ---------------------------------------------------------------------------------------------
# reading

def _dtype_of(policy, path):
    if isinstance(policy, dict):
        policy = policy.get("config", {}).get("name")
    if policy is None:
        return np.dtype(np.float32)
    if policy not in ("float32", "float64"):
        raise _bad(path, f"dtype policy {policy!r}; fastnn runs float32 and float64")
    return np.dtype(policy)


def _from_keras_layer(spec, i, path):
    cls = spec.get("class_name")
    cfg = spec.get("config") or {}
    name = cfg.get("name")
    if cls not in SUPPORTED:
        raise _bad(path, f"layers[{i}] ({name!r}) is a {cls}, which fastnn does not run; "
                         f"supported: {', '.join(SUPPORTED)}")
    if cls == "InputLayer":
        shape = cfg.get("batch_shape") or cfg.get("batch_input_shape")
        if not shape or len(shape) < 2:
            raise _bad(path, f"InputLayer without a batch_shape ({cfg!r:.80})")
        return Input(tuple(shape[1:]), name=name)
    if cls == "Flatten":
        return Flatten(name=name)
    if cls == "Dropout":
        return Dropout(cfg.get("rate", 0.0), name=name)
    if cls == "Softmax":
        axis = cfg.get("axis", -1)
        return Softmax(axis=axis if isinstance(axis, int) else -1, name=name)
    if cls == "Activation":
        act = cfg.get("activation", "linear")
        if isinstance(act, dict):
            act = act.get("config", act.get("class_name"))
        return Activation(act, name=name)
    if not cfg.get("use_bias", True):
        raise _bad(path, f"layers[{i}] ({name!r}) is a Dense without bias (use_bias=False)")
    act = cfg.get("activation", "linear")
    if isinstance(act, dict):
        act = act.get("config", act.get("class_name"))
    inits = {}
    for key in ("kernel_initializer", "bias_initializer"):
        try:
            inits[key] = _initializers.get_name(cfg.get(key), key)
        except (TypeError, ValueError):
            pass          # an initializer fastnn lacks: the weights come from the file anyway
    return Dense(cfg["units"], activation=act, name=name, **inits)


def _read_h5_layers(model, f, path):
    layers = [l for l in model.layers if not isinstance(l, Input)]
    if "layers" not in f:
        raise _bad(path, "no 'layers' group in the weights")
    for layer, key in zip(layers, _layer_paths(layers)):
        if not isinstance(layer, Dense):
            continue
        g = f["layers"].get(key + "/vars")
        if g is None or "0" not in g or "1" not in g:
            raise _bad(path, f"no weights for {layer.name} at layers/{key}/vars")
        kernel, bias = np.asarray(g["0"]), np.asarray(g["1"])
        if not (np.isfinite(kernel).all() and np.isfinite(bias).all()):
            raise _bad(path, f"the weights of {layer.name} hold NaN or Inf")
        yield layer, kernel, bias


def _load_h5_into(model, fh, path, optimizer=True):
    h5py = _h5py()
    with h5py.File(fh, "r") as f:
        weights = []
        for layer, kernel, bias in _read_h5_layers(model, f, path):
            weights += [kernel, bias]
        try:
            model.set_weights(weights)
        except (TypeError, ValueError) as e:
            raise _bad(path, str(e)) from None
        og = f.get("optimizer/vars")
        opt = model.optimizer
        if optimizer and opt is not None and og is not None and "0" in og:
            _read_optimizer(model, og, path)


def _read_optimizer(model, og, path):
    opt = model.optimizer
    W, b = model._params(model._structure())
    positions = _slot_positions(opt, len(W))
    arrays = [np.asarray(og[str(j)]) for j in range(2, len(og))]
    if len(arrays) != len(positions):
        return          # another optimizer's state: start afresh, as Keras warns and does
    state = [[list(pair) for pair in slot] for slot in
             _core.new_state(opt.engine_name, W, b, opt._initial_fill())]
    for n, ((q, l, j), a) in enumerate(zip(positions, arrays)):
        want = W[l].T.shape if j == 0 else (b[l].size,)
        if a.shape != want:
            raise _bad(path, f"optimizer variable {n + 2} has shape {a.shape}, expected {want}")
        if not np.isfinite(a).all():
            raise _bad(path, f"optimizer variable {n + 2} holds NaN or Inf")
        state[q][l][j] = np.ascontiguousarray(a.T if j == 0 else a, dtype=W[l].dtype)
    opt.set_state(int(np.asarray(og["0"])), *[[tuple(pair) for pair in slot]
                                              for slot in state])


def load_weights_h5(model, path):
    with open(path, "rb") as fh:
        _load_h5_into(model, fh, path)


def _compile_from(cfg, path):
    o = cfg.get("optimizer")
    if isinstance(o, str):
        opt = _optimizers.get(o)
    else:
        ocls = _optimizers.OPTIMIZER_CLASSES.get((o or {}).get("class_name"))
        if ocls is None:
            raise _bad(path, f"optimizer {(o or {}).get('class_name')!r}: fastnn runs "
                             f"{', '.join(_optimizers.OPTIMIZER_CLASSES)}")
        oc = o.get("config", {})
        kw = {k: oc[k] for k in ocls().get_config() if k in oc}
        opt = ocls(**kw)
    lo = cfg.get("loss")
    if isinstance(lo, dict):
        lcls = _losses.LOSS_CLASSES.get(lo.get("class_name"))
        if lcls is None:
            raise _bad(path, f"loss {lo.get('class_name')!r}: fastnn trains with "
                             f"{', '.join(_losses.LOSS_CLASSES)}")
        lc = lo.get("config", {})
        loss = lcls(**({"from_logits": bool(lc.get("from_logits"))}
                       if "from_logits" in lcls().get_config() else {}))
    else:
        loss = _losses.get(lo)
    metrics = cfg.get("metrics") or []
    metrics = [m for m in metrics if isinstance(m, str)]
    return opt, loss, metrics


def load_keras(path, compile=True):
    from fastnn.keras.model import Sequential
    _h5py()
    try:
        with zipfile.ZipFile(path) as z:
            config = json.loads(z.read("config.json"))
            weights = z.read("model.weights.h5") if "model.weights.h5" in z.namelist() \
                else None
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as e:
        raise _bad(path, f"unreadable archive: {e}") from None
    if not isinstance(config, dict) or config.get("class_name") != "Sequential":
        what = config.get("class_name") if isinstance(config, dict) else type(config).__name__
        raise _bad(path, f"the model is a {what!r}; fastnn loads Sequential models")
    mc = config.get("config") or {}
    dtype = _dtype_of(mc.get("dtype"), path)
    specs = mc.get("layers")
    if not isinstance(specs, list) or not specs:
        raise _bad(path, "no layers")
    layers = [_from_keras_layer(s, i, path) for i, s in enumerate(specs)]
    shape = mc.get("build_input_shape") or (config.get("build_config") or {}).get(
        "input_shape")
    if not isinstance(layers[0], Input) and shape:
        layers.insert(0, Input(tuple(shape[1:])))
    if len(layers) > 1 and isinstance(layers[0], Input) and len(layers[0].input_shape) > 1 \
            and not any(isinstance(l, Flatten) for l in layers):
        raise _bad(path, f"input of shape {layers[0].input_shape} without a Flatten layer")
    try:
        model = Sequential(layers, name=mc.get("name"), dtype=dtype)
        if model._known_input_shape() is not None:
            model.build()
        if compile and config.get("compile_config"):
            model.compile(*_compile_from(config["compile_config"], path))
    except (TypeError, ValueError) as e:
        raise _bad(path, str(e)) from None
    if weights is not None and model.built:
        _load_h5_into(model, io.BytesIO(weights), path, optimizer=compile)
    return model

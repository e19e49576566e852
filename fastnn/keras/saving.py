"""Saving and loading models: which format a path means, and fastnn's own ``.npz`` format.

- ``model.save("m.keras")`` / ``load_model("m.keras")``: Keras 3's format, the one real Keras
  reads and writes (``keras_file.py``, through h5py);
- ``model.save_weights("m.weights.h5")`` / ``load_weights``: Keras 3's weights file;
- ``model.save("m.npz")`` / ``load_model("m.npz")``: fastnn's own format, described below,
  which also keeps the optimizer state so a second ``fit`` continues the first.
- ``.h5``/``.hdf5`` (Keras 2's whole-model HDF5) and other suffixes are refused with a
  ValueError saying what to use.

fastnn's files (``model.save('m.npz')``, ``load_model('m.npz')``) are ``.npz`` archives, written
atomically, that numpy reads without pickle:

- ``config``: a 0-d string array holding JSON: ``{"format": "fastnn.keras.Sequential",
  "format_version": 1, "fastnn_version", "name", "dtype", "input_shape", "built",
  "layers": [{"class_name": "Dense", "config": {...}}, ...], "compile": null or
  {"optimizer": {"class_name", "config", "iterations"}, "loss": {"class_name", "config"},
  "metrics": [...]}}``
- ``kernel_<l>`` ``(n_in, units)`` and ``bias_<l>`` ``(units,)`` of the l-th Dense layer (Keras'
  layout, the model's dtype), present when the model is built;
- ``optimizer_<s1|s2>_<kernel|bias>_<l>``: the optimizer state (momentum velocity, Adam's m
  and v) in the same layout, present when the model has been trained.
"""
import json
import os
import zipfile

import numpy as np

from fastnn import _core, _safeio
from fastnn._version import __version__
from fastnn.keras import losses as _losses, optimizers as _optimizers
from fastnn.keras.layers import LAYER_CLASSES

__all__ = ["save_model", "load_model", "save_weights", "load_weights", "fastnn_config"]

FORMAT = "fastnn.keras.Sequential"
FORMAT_VERSION = 1


def _suffix_error(path, what="model"):
    return ValueError(f"filepath: expected a name ending in .keras (Keras 3's format) or .npz "
                      f"(fastnn's), got {path!r}" + (
                          "; the legacy HDF5 whole-model format (.h5) is not written by "
                          "fastnn: use .keras, or save_weights('....weights.h5')"
                          if path.endswith((".h5", ".hdf5")) else ""))


def save_model(model, filepath, overwrite=True):
    """Write ``model`` to ``filepath``; the suffix chooses the format (module docstring)."""
    path = os.fspath(filepath)
    if not isinstance(path, str):
        raise TypeError(f"filepath: expected a str or os.PathLike, got {type(filepath).__name__}")
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"filepath: {path} exists and overwrite=False")
    if path.endswith(".keras"):
        from fastnn.keras import keras_file
        keras_file.save_keras(model, path)
    elif path.endswith(".npz"):
        _save_npz(model, path)
    else:
        raise _suffix_error(path)


def save_weights(model, filepath, overwrite=True):
    path = os.fspath(filepath)
    if not path.endswith(".weights.h5"):
        raise ValueError(f"filepath: expected a name ending in .weights.h5, got {path!r}")
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"filepath: {path} exists and overwrite=False")
    from fastnn.keras import keras_file
    keras_file.save_weights_h5(model, path)


def load_weights(model, filepath):
    path = os.fspath(filepath)
    if not path.endswith(".weights.h5"):
        raise ValueError(f"filepath: expected a name ending in .weights.h5, got {path!r}")
    from fastnn.keras import keras_file
    keras_file.load_weights_h5(model, path)


def load_model(filepath, compile=True):
    """Load a model: a ``.keras`` file (written by fastnn or by Keras 3) or fastnn's
    ``.npz``.  With ``compile=True`` the loss, the optimizer (and, from ``.npz``, its state)
    are restored too.  Raises ValueError for a truncated, corrupted or inconsistent file, or
    a layer fastnn does not run."""
    path = os.fspath(filepath)
    if not os.path.exists(path):
        raise FileNotFoundError(f"filepath: no such file: {path!r}")
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as z:
                names = set(z.namelist())
        except (zipfile.BadZipFile, OSError):
            names = set()
        if "config.json" in names:
            from fastnn.keras import keras_file
            return keras_file.load_keras(path, compile=compile)
    if path.endswith(".keras"):
        raise ValueError(f"{path}: not a valid .keras file (no config.json in a zip archive)")
    return _load_npz(path, compile=compile)


def fastnn_config(model):
    """The JSON-able description the ``.npz`` format writes (without the arrays)."""
    st = model._structure()
    layers = [{"class_name": type(l).__name__, "config": l.get_config()}
              for l in model._flat_layers()]
    comp = None
    if model.loss is not None:
        comp = {"optimizer": {"class_name": type(model.optimizer).__name__,
                              "config": model.optimizer.get_config(),
                              "iterations": int(model.optimizer.iterations)},
                "loss": {"class_name": type(model.loss).__name__,
                         "config": model.loss.get_config()},
                "metrics": list(model.compiled_metrics)}
    shape = model._known_input_shape(st)
    return {"format": FORMAT, "format_version": FORMAT_VERSION,
            "fastnn_version": __version__, "name": model.name,
            "dtype": str(model._dtype_now()),
            "input_shape": None if shape is None else list(shape),
            "built": model.built, "layers": layers, "compile": comp}


def _save_npz(model, filepath):
    """Write the model (layers, weights, compile settings, optimizer state) to
    ``filepath`` as the .npz described in this module's docstring, atomically: a
    temporary file in the same folder is written, flushed to disk and renamed."""
    filepath = os.fspath(filepath)
    st = model._structure()
    cfg = fastnn_config(model)
    arrays = {"config": np.array(json.dumps(cfg))}
    if cfg["built"]:
        for l, d in enumerate(st.denses):
            arrays[f"kernel_{l}"] = d.W.T
            arrays[f"bias_{l}"] = d.b.reshape(-1)
        if model.optimizer is not None:
            W, b = model._params(st)
            state = model.optimizer.state_arrays()
            for key in ("s1", "s2"):
                s = state.get(key)
                if s is not None and model.optimizer._matches(s, W, b):
                    for l, (sw, sb) in enumerate(s):
                        arrays[f"optimizer_{key}_kernel_{l}"] = sw.T
                        arrays[f"optimizer_{key}_bias_{l}"] = sb.reshape(-1)
    _atomic_savez(filepath, arrays)


def _atomic_savez(filepath, arrays):
    _core.atomic_write(filepath, lambda fh: np.savez(fh, **arrays))


def _bad(path, why):
    return ValueError(f"{path}: not a valid fastnn model file ({why})")


def _load_npz(filepath, compile=True):
    """Load a model written by ``Sequential.save``.

    With ``compile=True`` the loss, the optimizer and its state are restored too, so ``fit``
    continues where the saved model stopped.  Raises ValueError for a truncated, corrupted
    or inconsistent file."""
    path = os.fspath(filepath)
    try:
        archive = _safeio.NpzArchive(path)
    except ValueError as e:
        raise _bad(path, str(e)[len(path) + 2:]) from None
    with archive:
        try:
            return _read_npz(archive, path, compile)
        except ValueError as e:
            if str(e).startswith(f"{path}: not a valid fastnn model file"):
                raise
            raise _bad(path, str(e)[len(path) + 2:] if str(e).startswith(f"{path}: ")
                       else str(e)) from None


MAX_CONFIG_CHARS = 1 << 20


def _read_npz(arrays, path, compile):
    """_load_npz's reading, from an open NpzArchive: every member's header is checked against
    what the config says before its payload is read."""
    used = {"config"}
    if "config" not in arrays:
        raise _bad(path, "no 'config' JSON string")
    cfg_arr = arrays.read("config", shape=(), kinds="U") if \
        arrays.header("config")[1].itemsize <= 4 * MAX_CONFIG_CHARS else None
    if cfg_arr is None:
        raise _bad(path, f"the 'config' string is longer than {MAX_CONFIG_CHARS} characters")
    try:
        cfg = json.loads(str(cfg_arr[()]))
    except json.JSONDecodeError as e:
        raise _bad(path, f"config is not valid JSON: {e}") from None
    except RecursionError:
        raise _bad(path, "config is nested too deeply") from None
    if not isinstance(cfg, dict) or cfg.get("format") != FORMAT:
        raise _bad(path, f"config 'format' is not {FORMAT!r}")
    if cfg.get("format_version") != FORMAT_VERSION:
        raise _bad(path, f"format_version {cfg.get('format_version')!r}, this fastnn reads "
                         f"{FORMAT_VERSION}")
    try:
        dtype = _core.check_dtype(cfg.get("dtype"))
    except TypeError as e:
        raise _bad(path, str(e)) from None
    specs = cfg.get("layers")
    if not isinstance(specs, list) or not specs:
        raise _bad(path, "config 'layers' is not a non-empty list")
    layers = []
    for i, spec in enumerate(specs):
        if not isinstance(spec, dict) or spec.get("class_name") not in LAYER_CLASSES or \
                not isinstance(spec.get("config"), dict):
            raise _bad(path, f"layers[{i}] is not a known layer ({spec!r:.80})")
        try:
            layers.append(LAYER_CLASSES[spec["class_name"]].from_config(spec["config"]))
        except (TypeError, ValueError) as e:
            raise _bad(path, f"layers[{i}]: {e}") from None
    name = cfg.get("name")
    try:
        from fastnn.keras.model import Sequential
        model = Sequential(layers, name=name if isinstance(name, str) else None, dtype=dtype)
        st = model._structure()
        shape = cfg.get("input_shape")
        if shape is not None:
            model.build(tuple(shape))
    except (TypeError, ValueError) as e:
        raise _bad(path, str(e)) from None
    # weights
    if cfg.get("built"):
        if shape is None:
            raise _bad(path, "built model without an input_shape")
        weights = []
        for l, d in enumerate(st.denses):
            for key, want in ((f"kernel_{l}", d.W.T.shape), (f"bias_{l}", (d.units,))):
                if key not in arrays:
                    raise _bad(path, f"missing array {key!r}")
                got_shape, got_dtype = arrays.header(key)
                if tuple(got_shape) != want or got_dtype.kind != "f":
                    raise _bad(path, f"array {key!r} has shape {got_shape} dtype {got_dtype}, "
                                     f"expected {want} float")
                a = arrays.read(key, shape=want, kinds="f")
                used.add(key)
                if not np.isfinite(a).all():
                    raise _bad(path, f"array {key!r} holds NaN or Inf")
                _check_fits(a, dtype, path, key)
                weights.append(a)
        model.set_weights(weights)
    comp = cfg.get("compile")
    if comp is not None:
        try:
            o, lo = comp["optimizer"], comp["loss"]
            ocls = _optimizers.OPTIMIZER_CLASSES[o["class_name"]]
            lcls = _losses.LOSS_CLASSES[lo["class_name"]]
            opt = ocls.from_config(o["config"])
            lossobj = lcls.from_config(lo["config"])
            iterations = _core.check_int(o.get("iterations", 0), "iterations", 0,
                                         2 ** 63 - 1)
            metrics = comp.get("metrics", [])
        except (KeyError, TypeError, ValueError, RecursionError) as e:
            raise _bad(path, f"bad compile settings: {e!r}") from None
        states = {}
        for key in ("s1", "s2"):
            if f"optimizer_{key}_kernel_0" not in arrays:
                continue
            pairs = []
            for l, d in enumerate(st.denses):
                kw = kb = None
                names = (f"optimizer_{key}_kernel_{l}", f"optimizer_{key}_bias_{l}")
                if all(k in arrays and arrays.header(k) == (want, dtype) for k, want in
                       zip(names, (d.W.T.shape, (d.units,)))):
                    kw, kb = (arrays.read(k, kinds="f") for k in names)
                    used.update(names)
                if kw is None or kb is None:
                    raise _bad(path, f"optimizer state {key} of layer {l} is missing or has "
                                     f"the wrong shape/dtype")
                if not (np.isfinite(kw).all() and np.isfinite(kb).all()):
                    raise _bad(path, f"optimizer state {key} of layer {l} holds NaN or Inf")
                pairs.append((np.ascontiguousarray(kw.T), np.ascontiguousarray(
                    kb.reshape(-1))))
            states[key] = pairs
        if compile:
            try:
                model.compile(optimizer=opt, loss=lossobj, metrics=metrics)
            except (TypeError, ValueError) as e:
                raise _bad(path, f"bad compile settings: {e}") from None
            if states:
                opt.set_state(iterations, states.get("s1"), states.get("s2"))
    unused = sorted(set(arrays.keys()) - used)
    if unused:
        raise _bad(path, f"unexpected arrays {unused[:5]}")
    return model


def _check_fits(a, dtype, path, key):
    """Values of a saved float64 array that become Inf in the model's float32."""
    if a.dtype != dtype and a.size:
        big, top = float(np.abs(a).max()), float(np.finfo(dtype).max)
        if big > top:
            raise _bad(path, f"array {key!r} holds {big:.3g}, which does not fit the model's "
                             f"dtype {np.dtype(dtype).name} (largest {top:.3g})")

"""Naming the layer where a forward pass leaves the finite numbers.

When finite inputs and weights give a NaN or Inf output (float32 weights of 3e38, say), the
front doors warn instead of handing back NaN without a word: the first bad example is run
again in numpy, layer by layer in the weights' dtype, to say which layer overflowed.
"""
import warnings

import numpy as np

_NUMPY_ACTS = {
    "identity": lambda z: z, "linear": lambda z: z, "relu": lambda z: np.maximum(z, 0),
    "tanh": np.tanh, "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
    "softmax": lambda z: np.exp(z - z.max()) / np.exp(z - z.max()).sum(),
}


def nonfinite_layer(W, b, acts, x):
    """(layer, what) where the forward pass of one example x first leaves the finite
    numbers, or None: numpy in the weights' dtype, the engine's layer order."""
    a = np.asarray(x, dtype=W[0].dtype)
    with np.errstate(all="ignore"):
        for l, (w, bb, act) in enumerate(zip(W, b, acts)):
            if not (np.isfinite(w).all() and np.isfinite(bb).all()):
                return l, "holds NaN or Inf weights"
            z = w @ a + np.asarray(bb).reshape(-1)
            if not np.isfinite(z).all():
                return l, "overflows: its weighted inputs w @ a + b are NaN or Inf"
            a = _NUMPY_ACTS[act](z)
            if not np.isfinite(a).all():
                return l, f"overflows in its activation ({act})"
    return None


def warn_nonfinite(W, b, acts, X, out, what, offset=0, layers=None):
    """Warn (RuntimeWarning) about the first example of ``out`` that is not finite."""
    row = int(np.flatnonzero(~np.isfinite(out.reshape(len(out), -1)).all(axis=1))[0])
    dense = all(w is not None and w.ndim == 2 for w in W) and (
        layers is None or all(s is None or s.get("kind") in (None, "dense") for s in layers))
    found = nonfinite_layer(W, b, acts, X[row]) if dense else None
    dt = np.dtype(W[0].dtype).name
    if found is None:
        where = ("in the engine's arithmetic (numpy stays finite on this row)" if dense else
                 "(the layer is located for dense networks only)")
    else:
        l, why = found
        where = (f"at layer {l + 1} (weights[{l}], {W[l].shape[1]} -> {W[l].shape[0]} "
                 f"neurons), which {why} in {dt}")
    warnings.warn(f"{what}: the output of example {row + offset} is NaN or Inf {where}; "
                  f"its inputs are finite: scale the inputs or weights down, or use float64",
                  RuntimeWarning, stacklevel=3)

"""What every front door shares: input checks, data conversion, and one call into the engine.

The front doors (network, network2, Sequential, the estimators) only translate their own
vocabulary into `train(...)` below; the engine knows layers, activations, costs and optimizers
from its tables.
"""
import dataclasses
import math
import numbers
import threading

import numpy as np

from fastnn._config import adapts, engine_team, import_engine, note_run, resolve_threads

_engine = import_engine()

# example orders drawn a chunk of epochs at a time, and the engine called once per chunk
from fastnn._orders import (EpochOrders, in_chunks, permutation_orders,  # noqa: E402,F401
                            shuffled_orders)
from fastnn._nonfinite import warn_nonfinite  # noqa: E402

ACTIVATIONS = _engine.ACTIVATIONS
COSTS = _engine.COSTS
OPTIMIZERS = _engine.OPTIMIZERS
OPT_SLOTS = _engine.OPT_SLOTS
HIDDEN_ACTIVATIONS = tuple(k for k in ACTIVATIONS if k not in _engine.OUTPUT_ONLY)
INT_MAX = 2 ** 31 - 1        # the engine counts layers, neurons, epochs and batches in C ints


class DivergenceError(FloatingPointError):
    """Training produced NaN or Inf weights; the network keeps the last finite weights."""


# ---------------------------------------------------------------------------------------------
# argument checks (ValueError / TypeError that name the argument, the expected and the actual)

def check_int(value, name, minimum=None, maximum=None):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an int, got {type(value).__name__} ({value!r})")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name}: expected an int <= {maximum}, got {value}")
    return value


def check_float(value, name, minimum=None, maximum=None, max_open=False):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a number, got {type(value).__name__} ({value!r})")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name}: expected a finite number, got {value}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name}: expected a number >= {minimum}, got {value}")
    if maximum is not None and (value >= maximum if max_open else value > maximum):
        bound = f"< {maximum}" if max_open else f"<= {maximum}"
        raise ValueError(f"{name}: expected a number {bound}, got {value}")
    return value


def check_sizes(sizes):
    """Validate a layer-size list such as [784, 30, 10]; return it as a list of ints."""
    if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__len__"):
        raise TypeError(f"sizes: expected a list of ints such as [784, 30, 10], got "
                        f"{type(sizes).__name__}")
    sizes = list(sizes)
    if len(sizes) < 2:
        raise ValueError(f"sizes: expected at least 2 layers (input and output), got {sizes}")
    if len(sizes) - 1 > _engine.MAX_LAYERS:
        raise ValueError(f"sizes: expected at most {_engine.MAX_LAYERS + 1} layers, got "
                         f"{len(sizes)}")
    out = []
    for i, s in enumerate(sizes):
        if isinstance(s, bool) or not isinstance(s, numbers.Integral):
            raise TypeError(f"sizes[{i}]: expected an int, got {type(s).__name__} ({s!r})")
        if s < 1:
            raise ValueError(f"sizes[{i}]: expected a positive int, got {s}")
        if s > INT_MAX:
            raise ValueError(f"sizes[{i}]: expected at most {INT_MAX} neurons, got {s}")
        out.append(int(s))
    return out


def check_dtype(dtype):
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype: expected float32 or float64, got {dtype!r}") from None
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"dtype: expected float32 or float64, got {dt}")
    return dt


def check_activation(name, argname, allow_softmax=False):
    if not isinstance(name, str):
        raise TypeError(f"{argname}: expected a string, got {type(name).__name__}")
    allowed = HIDDEN_ACTIVATIONS + (_engine.OUTPUT_ONLY if allow_softmax else ())
    if name not in allowed:
        raise ValueError(f"{argname}: expected one of {', '.join(allowed)}, got {name!r}")
    return name


def check_n_threads(n_threads):
    """None (follow fastnn.set_num_threads / OMP_NUM_THREADS) or a positive int."""
    if n_threads is not None:
        resolve_threads(n_threads)
    return n_threads


ALIGN = 128


def aligned_empty(shape, dtype, align=ALIGN):
    """An uninitialized C-contiguous array whose data starts on an `align`-byte boundary: the
    engine then reads training rows in place, with aligned vector loads."""
    dtype = np.dtype(dtype)
    n = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    buf = np.empty(n + align, dtype=np.uint8)
    off = (-buf.ctypes.data) % align
    return buf[off:off + n].view(dtype).reshape(shape)


def is_aligned(a, align=ALIGN):
    return a.ctypes.data % align == 0


def as_array(a, name):
    """``np.asarray(a)``; ragged or mixed-shape nested lists are reported against ``name``."""
    try:
        return np.asarray(a)
    except (ValueError, TypeError) as e:
        raise type(e)(f"{name}: expected a rectangular numeric array, got data that numpy "
                      f"cannot convert (ragged or mixed shapes?): {e}") from None


# ---------------------------------------------------------------------------------------------
# data: Nielsen's lists of (x, y) pairs, or arrays

def all_finite(M, block=1 << 16):
    """``np.isfinite(M).all()`` for a C-contiguous matrix, a block of about ``block`` numbers
    at a time: no boolean temporary the size of M (37 MiB for MNIST's training images)."""
    rows = max(1, block // max(M.shape[1], 1))
    return all(np.isfinite(M[i:i + rows]).all() for i in range(0, M.shape[0], rows))


def _as_float_matrix(a, name, dtype, n_cols=None):
    arr = as_array(a, name)
    if arr.dtype == object:
        raise TypeError(f"{name}: expected numbers, got an object array (ragged or mixed data?)")
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name}: expected a numeric array, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array (n, features), got shape {arr.shape}")
    if n_cols is not None and arr.shape[1] != n_cols:
        raise ValueError(f"{name}: expected {n_cols} features per example, got shape "
                         f"{arr.shape}")
    if arr.dtype == dtype and arr.flags.c_contiguous:
        out = arr                           # the caller's array, read in place
    else:
        out = aligned_empty(arr.shape, dtype)   # a copy is needed anyway: an aligned one
        out[...] = arr
    if out.size and not all_finite(out):
        raise ValueError(f"{name}: expected finite values, got NaN or Inf")
    return out


def labels_to_onehot(labels, n_out, dtype, name):
    lab = as_array(labels, name)
    if lab.dtype.kind == "f":
        if lab.size and not np.all(np.isfinite(lab) & (lab == np.round(lab))):
            raise ValueError(f"{name}: expected integer class labels, got non-integer floats")
        lab = lab.astype(np.int64)
    elif lab.dtype.kind not in "biu":
        raise TypeError(f"{name}: expected integer class labels, got dtype {lab.dtype}")
    lab = lab.astype(np.int64).ravel()
    if lab.size and (lab.min() < 0 or lab.max() >= n_out):
        raise ValueError(f"{name}: expected labels in 0..{n_out - 1}, got values in "
                         f"{lab.min()}..{lab.max()}")
    Y = np.zeros((lab.size, n_out), dtype=dtype)
    Y[np.arange(lab.size), lab] = 1
    return Y, lab


def targets_to_matrix(y, n, n_out, dtype, name, one_hot=True):
    """y: integer labels (n,) or a target matrix (n, n_out).  Returns (Y, labels or None)."""
    arr = as_array(y, name)
    if arr.dtype == object:
        raise TypeError(f"{name}: expected numbers, got an object array")
    if arr.ndim == 1 or (arr.ndim == 2 and arr.shape[1] == 1 and n_out != 1):
        if arr.shape[0] != n:
            raise ValueError(f"{name}: expected {n} labels, got {arr.shape[0]}")
        return labels_to_onehot(arr.ravel(), n_out, dtype, name)
    if arr.ndim != 2 or arr.shape != (n, n_out):
        raise ValueError(f"{name}: expected labels of shape ({n},) or targets of shape "
                         f"({n}, {n_out}), got {arr.shape}")
    Y = _as_float_matrix(arr, name, dtype, n_out)
    if one_hot:
        check_one_hot(Y, name)
    return Y, None


def check_one_hot(Y, name):
    """Training targets (n, n_out) with n_out > 1 must be one-hot rows."""
    if Y.shape[1] > 1 and Y.size:
        ok = np.all((Y == 0) | (Y == 1), axis=1) & (Y.sum(axis=1) == 1)
        if not ok.all():
            bad = int(np.flatnonzero(~ok)[0])
            raise ValueError(f"{name}: expected one-hot rows (a single 1, the rest 0), row "
                             f"{bad} is {Y[bad].tolist()}")


def is_array_pair(data):
    """An (X, y) tuple whose X is an array.  (A list of (x, y) pairs never starts with an
    array, so a wrongly shaped X or a list y is reported as such, not as a bad pair.)"""
    return isinstance(data, tuple) and len(data) == 2 and isinstance(data[0], np.ndarray)


def as_pairs(data, name):
    """Lists and (X, y) array pairs as they are; any other iterable (a zip, a generator) as a
    list; a non-iterable is a TypeError naming ``name``."""
    if data is None or isinstance(data, (list, np.ndarray)) or is_array_pair(data):
        return data
    try:
        return list(data)
    except TypeError:
        raise TypeError(f"{name}: expected a list of (x, y) pairs or an (X, y) tuple of arrays, "
                        f"got {type(data).__name__}") from None


# the dtypes of x columns the engine reads where they are (fnn_data.rows)
ROW_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _row_in_place(x, xa, first):
    """Can the engine read the x column ``x`` (``xa`` as an array) where it is, after
    ``first`` (the list's first column, or None): the caller's own numpy array (not one made
    from a list), float32 or float64 as ``first``, C-contiguous and aligned (the shape and
    size were checked)."""
    if not isinstance(x, np.ndarray) or xa.dtype not in ROW_DTYPES or (
            first is not None and xa.dtype != first.dtype):
        return False
    flags = xa.flags
    return flags.c_contiguous and flags.aligned


def as_matrix(X, dtype):
    """X as an (n, n_in) array of ``dtype``: a row source (``_engine.Rows``) is copied."""
    return X.to_matrix(dtype) if isinstance(X, _engine.Rows) else X


def to_arrays(data, n_in, n_out, dtype, name, one_hot=True, rows=False):
    """Convert training/test data to (X (n, n_in), Y (n, n_out), n).

    `data` is either Nielsen's iterable of (x, y) pairs, x shaped (n_in, 1) (or (n_in,)), y a
    one-hot (n_out, 1) vector or an int label; or an (X, y) pair of arrays, X (n, n_in) and y
    integer labels (n,) or targets (n, n_out).

    With ``rows``, a list whose x are all float32 or all float64 numpy arrays, C-contiguous,
    gives X as an ``_engine.Rows`` of those arrays instead of a matrix: the CPU engine reads
    each column where it is (a copy of MNIST's 50,000 columns would take 157 MB as float32,
    314 MB as float64); `train`, `evaluate` and `as_matrix` take it where they take X.  Other
    x (lists, integers, non-contiguous views, a mix of dtypes) fill a matrix as without it.
    """
    if data is None:
        raise TypeError(f"{name}: expected data, got None")
    if is_array_pair(data):
        X = _as_float_matrix(data[0], f"{name} X", dtype, n_in)
        Y, _ = targets_to_matrix(data[1], X.shape[0], n_out, dtype, f"{name} y", one_hot)
        return X, Y, X.shape[0]
    if isinstance(data, np.ndarray):
        raise TypeError(f"{name}: expected a list of (x, y) pairs or an (X, y) tuple of arrays, "
                        f"got a single array of shape {data.shape}")
    try:
        pairs = list(data)
    except TypeError:
        raise TypeError(f"{name}: expected a list of (x, y) pairs or an (X, y) tuple of arrays, "
                        f"got {type(data).__name__}") from None
    n = len(pairs)
    # the x read in place (rows), as long as every one so far can be; else the matrix X
    xs = [] if rows and n else None
    X = None if xs is not None else aligned_empty((n, n_in), dtype)
    Y = np.zeros((n, n_out), dtype=dtype)
    for i, pair in enumerate(pairs):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise TypeError(f"{name}[{i}]: expected an (x, y) pair, got {type(pair).__name__}")
        x, y = pair
        xa = as_array(x, f"{name}[{i}] x")
        if xa.dtype == object or xa.dtype.kind not in "biuf":
            raise TypeError(f"{name}[{i}]: expected x to be numeric, got dtype {xa.dtype}")
        if xa.size != n_in or (xa.ndim == 2 and xa.shape[1] != 1) or xa.ndim > 2:
            raise ValueError(f"{name}[{i}]: expected x of shape ({n_in}, 1), got {xa.shape}")
        if xs is not None and not _row_in_place(x, xa, xs[0] if xs else None):
            # from here on a matrix: the columns so far are copied into it
            X = aligned_empty((n, n_in), dtype)
            for j, xj in enumerate(xs):
                X[j] = xj.reshape(n_in)
            xs = None
        if xs is not None:
            xs.append(xa)
        else:
            X[i] = xa.reshape(n_in)
        if isinstance(y, (numbers.Integral, np.integer)) and not isinstance(y, bool):
            if not 0 <= int(y) < n_out:
                raise ValueError(f"{name}[{i}]: expected a label in 0..{n_out - 1}, got {y}")
            Y[i, int(y)] = 1
        else:
            ya = as_array(y, f"{name}[{i}] y")
            if ya.ndim == 0 and ya.dtype.kind in "iu":
                if not 0 <= int(ya) < n_out:
                    raise ValueError(f"{name}[{i}]: expected a label in 0..{n_out - 1}, got {y}")
                Y[i, int(ya)] = 1
                continue
            if ya.dtype == object or ya.dtype.kind not in "biuf":
                raise TypeError(f"{name}[{i}]: expected y to be numeric, got dtype {ya.dtype}")
            if ya.size != n_out or ya.ndim > 2:
                raise ValueError(f"{name}[{i}]: expected y of shape ({n_out}, 1) or an int "
                                 f"label, got {ya.shape}")
            Y[i] = ya.reshape(n_out)
    if xs is not None:
        X = _engine.Rows(xs, n_in)
        del xs
        if X.first_nonfinite(dtype) >= 0:     # row by row: no (n, n_in) temporary
            raise ValueError(f"{name}: expected finite x values, got NaN or Inf")
    elif n and not all_finite(X):
        raise ValueError(f"{name}: expected finite x values, got NaN or Inf")
    if n and not np.isfinite(Y).all():
        raise ValueError(f"{name}: expected finite y values, got NaN or Inf")
    if one_hot:
        check_one_hot(Y, name)
    return X, Y, n


# ---------------------------------------------------------------------------------------------
# the model state and the one call into the engine

def sync_params(owner, sizes, dtype):
    """Make owner.weights / owner.biases C-contiguous arrays of `dtype` with the right shapes,
    replacing (in the lists) any array a user assigned in another layout.  Returns the flat
    bias views the engine writes through."""
    L = len(sizes) - 1
    W, B = owner.weights, owner.biases
    if not isinstance(W, list) or not isinstance(B, list):
        raise TypeError(f"weights/biases: expected lists of numpy arrays, got "
                        f"{type(W).__name__} and {type(B).__name__}")
    if len(W) != L or len(B) != L:
        raise ValueError(f"weights/biases: expected {L} layers for sizes {sizes}, got "
                         f"{len(W)} and {len(B)}")
    for l in range(L):
        w, b = W[l], B[l]
        want_w, want_b = (sizes[l + 1], sizes[l]), (sizes[l + 1], 1)
        for arr, want, nm in ((w, want_w, "weights"), (b, want_b, "biases")):
            a = np.asarray(arr)
            if a.dtype.kind not in "biuf":
                raise TypeError(f"{nm}[{l}]: expected a numeric array, got dtype {a.dtype}")
            if a.size != want[0] * want[1] or (a.ndim == 2 and a.shape != want and nm ==
                                               "weights"):
                raise ValueError(f"{nm}[{l}]: expected shape {want}, got {a.shape}")
        if not (isinstance(w, np.ndarray) and w.dtype == dtype and w.flags.c_contiguous
                and w.flags.writeable and w.shape == (sizes[l + 1], sizes[l])
                and is_aligned(w)):
            # a copy (np.ascontiguousarray would hand back a read-only array as it is), on
            # a 128-byte boundary for the engine's vector loads
            W[l] = aligned_empty((sizes[l + 1], sizes[l]), dtype)
            W[l][...] = np.asarray(w, dtype=dtype).reshape(sizes[l + 1], sizes[l])
        if not (isinstance(b, np.ndarray) and b.dtype == dtype and b.flags.c_contiguous
                and b.flags.writeable and b.shape == (sizes[l + 1], 1)):
            B[l] = np.array(b, dtype=dtype, order="C").reshape(sizes[l + 1], 1)
    # a new list holding the same arrays: the engine writes into them in place, and the
    # arrays stay alive for the whole call even if another thread rebinds owner.weights[l]
    return list(W), [b.reshape(-1) for b in B]


def act_codes(acts):
    try:
        return [ACTIVATIONS[a] for a in acts]
    except (KeyError, TypeError):
        raise ValueError(f"activation: expected names from {', '.join(ACTIVATIONS)}, got "
                         f"{list(acts)!r}") from None


def cost_code(cost):
    try:
        return COSTS[cost]
    except (KeyError, TypeError):
        raise ValueError(f"cost: expected one of {', '.join(COSTS)}, got {cost!r}") from None


class TrainingGuard:
    """One training call at a time per network: a second thread gets a clear error."""

    def __init__(self):
        self._lock = threading.Lock()

    def __enter__(self):
        if not self._lock.acquire(blocking=False):
            raise RuntimeError("this network is already being trained in another thread; "
                               "train it from one thread at a time (or copy it first)")
        return self

    def __exit__(self, *exc):
        self._lock.release()
        return False


def finite_params(W, b):
    return all(np.isfinite(p).all() for p in list(W) + list(b) if p is not None)


@dataclasses.dataclass
class TrainConfig:
    """What one training call needs besides the parameters and the data: the network's
    tables, the schedule, the optimizer and its state, the monitors.  Names are the engine's
    (``_engine.ACTIVATIONS``, ``COSTS``, ``OPTIMIZERS``).

    ``state[q][l]`` is the optimizer's slot ``q`` for layer ``l``: a ``(W-shaped, b-shaped)``
    pair, ``_engine.OPT_SLOTS[optimizer]`` slots (momentum: the velocity; Adam: m, v;
    RMSprop: the mean square, the momentum buffer; Adagrad: the accumulator).  ``step`` is
    the optimizer's step count so far (Adam's bias correction); the call returns the new one.
    """
    acts: list
    cost: str
    epochs: int
    batch: int
    eta: float
    cost_scale: float = 1.0
    lmbda: float = 0.0
    l1: float = 0.0
    reg_n: object = None
    optimizer: str = "sgd"
    momentum: float = 0.0
    beta1: float = 0.9
    beta2: float = 0.999
    rho: float = 0.9
    eps: float = 1e-7
    step: int = 0
    state: list = None
    dropout: float = 0.0
    seed: int = 0
    orders: object = None
    eval_data: tuple = None
    monitor_train: bool = False
    run_stats: bool = False
    on_epoch: object = None
    progress: object = None
    n_threads: object = None
    device: object = None
    path: object = None
    layers: list = None
    # threads per chunk of mini-batches (src_c/team.h): None adapts them to the machine's
    # load when the count is the default (no n_threads, no set_num_threads, FASTNN_ADAPT
    # not 0); 0 runs every mini-batch on the count; 1 adapts; 2 (tests) switches every 3
    adapt: object = None


# the state an optimizer starts from, where it is not zero (Keras' defaults)
INITIAL_STATE = {"adagrad": 0.1}


def new_state(optimizer, W, b, fill=None):
    """Fresh optimizer state for ``optimizer``: one list of ``(W-shaped, b-shaped)`` pairs
    per slot, filled with ``fill`` (default: INITIAL_STATE's value, else zero)."""
    if fill is None:
        fill = INITIAL_STATE.get(optimizer, 0.0)
    return [[(None, None) if w is None else (np.full_like(w, fill), np.full_like(x, fill))
             for w, x in zip(W, b)] for _ in range(OPT_SLOTS[optimizer])]


def multiply_adds(W, layers=None):
    """Multiply-adds of one example's forward pass: each weight once per output position."""
    total = 0
    for l, w in enumerate(W):
        if w is None:
            continue
        spec = layers[l] if layers is not None else None
        if spec is not None and spec.get("kind") == "conv2d":
            oh, ow, _ = spec["out_shape"]
            total += w.size * oh * ow
        else:
            total += w.size
    return total


def _diverged(res):
    return DivergenceError(
        f"training diverged in epoch {res['diverged_epoch']}: the weights became NaN or Inf "
        f"(try a smaller learning rate); the weights from before that epoch are kept")


def train(W, b, X, Y, config):
    """One engine call for the whole training run described by ``config`` (a TrainConfig).
    Raises DivergenceError if the weights stop being finite (the last finite weights are
    restored).  With ``config.device == 'cuda'`` the same call runs on the array-API backend
    (fastnn.backends.xp) over CuPy."""
    if not finite_params(W, b):
        raise ValueError("weights/biases: expected finite values before training, got NaN or Inf")
    # a mini-batch larger than the data set is the whole data set (the book's slices); the
    # engine sizes its buffers by the batch, and counts it in a C int
    config = dataclasses.replace(config, batch=max(1, min(int(config.batch), X.shape[0])))
    if resolve_device(config.device) == "cuda":
        from fastnn.backends import xp as xp_backend
        # the xp backend takes matrices: a row source (to_arrays' rows, for the CPU engine)
        # is copied into one here
        X = as_matrix(X, Y.dtype)
        if config.eval_data is not None:
            eX, eY = config.eval_data
            config = dataclasses.replace(config, eval_data=(as_matrix(eX, eY.dtype), eY))
        res = in_chunks(lambda c: xp_backend.train(W, b, X, Y, c, device="cuda"), config)
    else:
        # interrupts are checked between chunks of about 2e8 multiply-adds
        per_batch = 6.0 * config.batch * multiply_adds(W, config.layers)
        check_every = max(1, int(2e8 / max(per_batch, 1.0)))
        if config.adapt is None:
            config = dataclasses.replace(config, adapt=int(adapts(config.n_threads)))
        with engine_team(config.n_threads) as nt:
            res = in_chunks(lambda c: _engine.train(W, b, X, Y, c, nt, check_every), config)
        note_run(res.get("threads"), nt, config.adapt)
    if res["status"] == _engine.STATUS_DIVERGED:
        raise _diverged(res)
    return res


def nielsen_orders(n, epochs, rng):
    """Example order of each epoch, as `random.shuffle` on the data list would give it.

    ``rng`` is the ``random`` module or a ``random.Random``; its state advances as the book's
    code would advance it.  The shuffles are replayed in compiled code for those two; any
    other object with a ``shuffle`` method is called from Python."""
    import random as _random
    orders = np.empty((max(epochs, 1), n), dtype=np.int32)
    if (rng is _random or type(rng) is _random.Random) and epochs > 0 and n > 0:
        _engine.shuffle_orders(rng, n, epochs, orders)
        return orders
    perm = list(range(n))
    for e in range(epochs):
        rng.shuffle(perm)
        orders[e] = perm
    if epochs == 0:
        orders[0] = perm
    return orders


def resolve_device(device):
    """None -> the default set by fastnn.set_device ('cpu' unless changed)."""
    if device is None:
        from fastnn import _device
        device = _device.get_device()
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device: expected 'cpu' or 'cuda', got {device!r}")
    if device == "cuda":
        from fastnn import _device
        _device.require_cuda()
    return device


# forward-only passes run in chunks of about this many multiply-adds, so that Ctrl-C (checked
# between chunks) stops a long predict/evaluate within a few hundredths of a second; chunks
# are whole multiples of the engine's 256-example blocks, so each row's output is the same
PASS_CHUNK_MACS = 5e8
EVAL_BLOCK = 256


def pass_rows(W, n, layers=None):
    """Rows per chunk of a forward-only pass over n rows."""
    macs = max(1, multiply_adds(W, layers))
    rows = max(EVAL_BLOCK, int(PASS_CHUNK_MACS // macs) // EVAL_BLOCK * EVAL_BLOCK)
    return min(rows, max(n, 1))


def predict(W, b, acts, X, n_threads=None, device=None, layers=None):
    """Network output (n, n_out) for X (n, n_in).  ``layers``: the descriptions of layers
    other than dense ones (TrainConfig.layers).  Warns (RuntimeWarning, naming the layer)
    when finite inputs and weights give NaN or Inf outputs."""
    if resolve_device(device) == "cuda":
        from fastnn.backends import xp as xp_backend
        return xp_backend.predict(W, b, acts, X, device="cuda", layers=layers)
    codes = act_codes(acts)
    n = X.shape[0]
    step = pass_rows(W, n, layers)
    with engine_team(n_threads) as nt:
        out = _engine.predict(W, b, codes, X[:step] if n > step else X, nt, layers)
        if n > step:
            first, out = out, np.empty((n,) + out.shape[1:], dtype=out.dtype)
            out[:step] = first
            for i in range(step, n, step):
                out[i:i + step] = _engine.predict(W, b, codes, X[i:i + step], nt, layers)
    if out.size and not np.isfinite(out).all():
        warn_nonfinite(W, b, acts, X, out, "predict", layers=layers)
    return out


def evaluate(W, b, acts, cost, X, Y, cost_scale=1.0, n_threads=None, device=None, layers=None):
    """(cost summed over the examples, argmax hits) for (X, Y).  Warns (RuntimeWarning,
    naming the layer) when finite inputs and weights give a NaN or Inf output."""
    if resolve_device(device) == "cuda":
        from fastnn.backends import xp as xp_backend
        # (a row source is copied into a matrix for the xp backend, as in train)
        return xp_backend.evaluate(W, b, acts, cost, as_matrix(X, Y.dtype), Y,
                                   cost_scale=cost_scale, device="cuda", layers=layers)
    codes, cc, scale = act_codes(acts), cost_code(cost), float(cost_scale)
    n = X.shape[0]
    step = pass_rows(W, n, layers)
    with engine_team(n_threads) as nt:
        if n <= step:
            c, hits = _engine.evaluate(W, b, codes, cc, scale, X, Y, nt, layers)
        else:
            c, hits = 0.0, 0
            for i in range(0, n, step):
                ci, hi = _engine.evaluate(W, b, codes, cc, scale, X[i:i + step], Y[i:i + step],
                                          nt, layers)
                c, hits = c + ci, hits + hi
        if not math.isfinite(c):
            for i in range(0, n, step):
                Xi = as_matrix(X[i:i + step], Y.dtype)
                out = _engine.predict(W, b, codes, Xi, nt, layers)
                if not np.isfinite(out).all():
                    warn_nonfinite(W, b, acts, Xi, out, "evaluate", offset=i, layers=layers)
                    break
    return c, hits


def gradient(W, b, acts, cost, X, Y, cost_scale=1.0, layers=None):
    """(gW, gb, cost): gradients of the cost summed over (X, Y), computed on the CPU engine."""
    return _engine.gradient(W, b, act_codes(acts), cost_code(cost), float(cost_scale), X, Y,
                            layers)


def _file_mode(filename):
    """The permission bits ``filename`` has, or that open() would give a new file."""
    import os
    import stat
    try:
        return stat.S_IMODE(os.stat(filename).st_mode)
    except OSError:
        mask = os.umask(0o022)      # read the umask (there is no call that only reads it)
        os.umask(mask)
        return 0o666 & ~mask


def atomic_write(filename, write):
    """Create ``filename`` through ``write(binary_file)`` so that a crash or a kill leaves
    either the previous file or the complete new one: a temporary file in the same folder is
    written, flushed and fsynced, then renamed over ``filename``, and the folder is fsynced."""
    import os
    import tempfile
    from fastnn._safeio import term_as_interrupt
    filename = os.fspath(filename)
    folder = os.path.dirname(os.path.abspath(filename))
    with term_as_interrupt():       # SIGTERM, like Ctrl-C, removes the temporary file
        fd, tmp = tempfile.mkstemp(prefix=".fastnn-", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(fd, "wb") as fh:
                write(fh)
                fh.flush()
                os.fsync(fh.fileno())
            # mkstemp made it private (0600): give it the mode of the file it replaces, or a
            # new file's (0666 less the umask), as open() would have
            os.chmod(tmp, _file_mode(filename))
            os.replace(tmp, filename)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
    try:
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def input_columns(a, n_in, dtype):
    """Nielsen's feedforward input, a column (n_in, 1) or columns (n_in, k), as the engine's
    rows (k, n_in) of `dtype`."""
    arr = as_array(a, "a")
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise TypeError(f"a: expected a numeric array, got dtype {arr.dtype}")
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2 or arr.shape[0] != n_in:
        raise ValueError(f"a: expected shape ({n_in}, 1) or ({n_in}, k), got {np.shape(a)}")
    X = np.ascontiguousarray(arr.T, dtype=dtype)
    if X.size and not np.isfinite(X).all():
        raise ValueError("a: expected finite values, got NaN or Inf")
    return X


class EngineNetwork:
    """What network.Network and network2.Network share: their view of the engine, and the
    book's ``feedforward`` and ``backprop``.  A subclass has ``sizes``, ``dtype``, ``weights``,
    ``biases``, ``n_threads``, ``device``, and defines ``_acts()`` and ``_cost_name()``."""

    def _params(self):
        return sync_params(self, self.sizes, self.dtype)

    def _arrays(self, data, name, one_hot=True, rows=False):
        return to_arrays(data, self.sizes[0], self.sizes[-1], self.dtype, name, one_hot, rows)

    def feedforward(self, a):
        """Return the output of the network if ``a`` is input.

        ``a`` is a column ``(n_in, 1)`` (or several columns ``(n_in, k)``); the result has
        the same number of columns."""
        X = input_columns(a, self.sizes[0], self.dtype)
        W, b = self._params()
        return predict(W, b, self._acts(), X, self.n_threads, self.device).T.copy()

    def backprop(self, x, y):
        """Return ``(nabla_b, nabla_w)``, the gradient of the cost for one example, as lists
        of arrays shaped like ``self.biases`` and ``self.weights``."""
        X, Y, _ = self._arrays([(x, y)], "(x, y)", one_hot=False)
        W, b = self._params()
        gW, gb, _ = gradient(W, b, self._acts(), self._cost_name(), X, Y)
        return [g.reshape(-1, 1) for g in gb], gW

"""The array-API backend: the engine's training semantics written once against a module ``xp``.

``xp`` is numpy (on the CPU, the way CI tests this file) or CuPy (``device='cuda'``).  The
semantics are DESIGN.md's, the same as the compiled engine's (fastnn/_engine.pyx, src_c/): the
same tables (read from ``fastnn._engine``, never copied), gradient, optimizers, per-epoch
statistics, callback dict, status codes and divergence rule.

Layout on the device.  Every layer's weights and bias are stored side by side as one
``(n_out, n_in + 1)`` block ``[W | b]`` of a single flat parameter vector ``P``; every
activation buffer carries a trailing column of ones.  So

    Z   (m, n_out)      = A_in (m, n_in + 1) @ [W | b]^T     the forward GEMM adds the bias
    G   (n_out, n_in+1) = D (m, n_out)^T @ A_in (m, n_in + 1)  gW and gb in one GEMM

and one optimizer kernel steps all layers at once over the flat ``P``, with the optimizer's
state slots ``S`` (slots, len(P)) beside it (a 0/1 mask keeps regularization off the biases):
one element-wise step per optimizer, for weights and biases alike, written once for numpy
(``NP_STEPS``) and once for CUDA (``fnn_step_<name>`` in kernels.cu).  The data go to the
device once per call, with their column of ones; each epoch gathers its order once (two
``take`` kernels), so a mini-batch is a contiguous slice.

Kernels per mini-batch, for L weight layers (with CuPy, from fastnn/backends/kernels.cu;
numpy runs the same steps as plain numpy expressions):

    forward    L GEMMs + (L-1) bias-free activation kernels (dropout fused in)
    output     1 kernel: activation, cost and hits (accumulated on the device), output delta
    backward   (L-1) GEMMs + (L-1) kernels delta * act'(z) (dropout fused in)
    gradient   L GEMMs (weights and biases together)
    update     1 kernel for every parameter of every layer (the optimizer's step, L1, L2)

that is 3L-1 GEMMs and 2L elementwise kernels, 5L-1 launches: 9 for [784, 30, 10].  Nothing
is copied between host and device inside an epoch; each epoch ends with one small read-back
(the cost/hit accumulators and the weight norms).

Dropout: the keep mask of hidden unit ``j`` of example slot ``i`` is the engine's counter-based
hash of (seed, epoch, batch start + i, layer, j) (splitmix64, as in src_c/runtime.h), computed
inside the activation kernels on the device: nothing is stored, and the masks are the CPU
engine's bit for bit.

Layer kinds: with ``TrainConfig.layers`` / ``layers=`` naming conv2d, maxpool2d or flatten
layers, or dropout on a layer of its own, the network is fastnn/backends/xp_layers.py's
``LayerNet`` (im2col + GEMM, pooling by strided slices), over the same kernels and the same
training loop.
"""
import collections
import importlib.resources
import math

import numpy as np

from fastnn._config import import_engine
from fastnn.backends import xp_layers

_engine = import_engine()

# the engine's tables (src_c/fnn_tables.h through fastnn._engine): the one source of every code
ACTIVATIONS = _engine.ACTIVATIONS       # name -> code, with the aliases linear and swish
ACT_ROWS = _engine.ACT_ROWS             # name -> (code, output_only), one per table row
OUTPUT_ONLY = _engine.OUTPUT_ONLY
COSTS = _engine.COSTS
OPTIMIZERS = _engine.OPTIMIZERS
OPT_SLOTS = _engine.OPT_SLOTS           # name -> number of state slots
STATUSES = _engine.STATUSES

STATUS_OK = STATUSES["ok"]
STATUS_STOPPED = STATUSES["stopped"]
STATUS_INTERRUPTED = STATUSES["interrupted"]
STATUS_DIVERGED = STATUSES["diverged"]
STATUS_CALLBACK_ERROR = STATUSES["callback_error"]

# the rows the kernels treat apart from the others, looked up by name
_IDENTITY = ACTIVATIONS["identity"]
_SOFTMAX = ACTIVATIONS["softmax"]
_QUADRATIC = COSTS["quadratic"]
_CROSS_ENTROPY = COSTS["cross_entropy"]
_MEAN_ABSOLUTE = COSTS["mean_absolute"]
_HUBER = COSTS["huber"]
_THROUGH_ACT = (_QUADRATIC, _MEAN_ABSOLUTE, _HUBER)   # costs of a - y alone
_ADAM = OPTIMIZERS["adam"]

# rows per chunk when evaluating or predicting
EVAL_ROWS = 8192
# threads per block of the elementwise kernels
BLOCK = 256
MAX_GRID = 65535

__all__ = ["train", "predict", "evaluate", "resolve_xp", "dropout_keep", "cuda_source",
           "cuda_defines", "cuda_options", "opt_consts", "NP_ACTIVATIONS", "NP_STEPS",
           "EVAL_ROWS"]


# ---------------------------------------------------------------------------------------------
# the CUDA kernels: fastnn/backends/kernels.cu, with the tables as -D options

def cuda_source():
    """Return the CUDA source of the fused kernels (fastnn/backends/kernels.cu); compile it
    with the options of ``cuda_options(dtype)``."""
    return importlib.resources.files(__package__).joinpath("kernels.cu").read_text("utf-8")


def _table_rows(names):
    return " ".join(f"X({n.upper()},{n})" for n in names)


def cuda_defines():
    """The engine's tables as the CUDA source's -D options: one ``-DFNN_ACT_<NAME>=<code>``
    per activation row (likewise ``FNN_COST_``, ``FNN_OPT_``), and the row lists
    ``FNN_ACT_ROWS(X)`` and ``FNN_OPT_ROWS(X)`` from which kernels.cu generates its switches."""
    opts = []
    for prefix, table in (("FNN_ACT_", {k: v[0] for k, v in ACT_ROWS.items()}),
                          ("FNN_COST_", COSTS), ("FNN_OPT_", OPTIMIZERS)):
        opts += [f"-D{prefix}{name.upper()}={code}" for name, code in table.items()]
    opts.append(f"-DFNN_ACT_ROWS(X)={_table_rows(ACT_ROWS)}")
    opts.append(f"-DFNN_OPT_ROWS(X)={_table_rows(OPTIMIZERS)}")
    return tuple(opts)


def cuda_options(dtype, nvcc=False):
    """All the options that compile cuda_source() for ``dtype`` (float32 or float64) with
    NVRTC (CuPy), or with ``nvcc=True`` on nvcc's command line (which splits an option's value
    at commas unless they are escaped)."""
    try:
        real = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}.get(
            np.dtype(dtype))
    except TypeError:
        real = None
    if real is None:
        raise TypeError(f"dtype: expected float32 or float64, got {dtype!r}")
    opts = ("-DREAL=" + real,) + cuda_defines()
    return tuple(o.replace(",", "\\,") for o in opts) if nvcc else opts


# ---------------------------------------------------------------------------------------------
# the optimizer's constants of one step (src_c/optimizers.h, opt_consts)

OptConsts = collections.namedtuple(
    "OptConsts", "opt wd l1 lr lr_t mu c1 c2 rho crho eps")
OptConsts.__doc__ = """One mini-batch's optimizer constants, as ``REAL`` scalars (but ``opt``,
the table code): wd = lmbda/n and l1 = l1/n (weights only), the learning rate lr, Adam's
bias-corrected lr_t, momentum mu, c1 = 1 - beta1, c2 = 1 - beta2, rho, crho = 1 - rho, eps."""


def opt_consts(config, eta, step, wd, l1, dtype):
    """The constants of step number ``step`` (1-based) of ``config.optimizer`` with learning
    rate ``eta``, in ``dtype``, as the engine computes them (double, then rounded)."""
    r = np.dtype(dtype).type
    opt = OPTIMIZERS[config.optimizer]
    b1, b2, rho = float(config.beta1), float(config.beta2), float(config.rho)
    lr_t = (eta * math.sqrt(1.0 - b2 ** float(step)) / (1.0 - b1 ** float(step))
            if opt == _ADAM else eta)
    return OptConsts(opt, r(wd), r(l1), r(eta), r(lr_t), r(config.momentum), r(1.0 - b1),
                     r(1.0 - b2), r(rho), r(1.0 - rho), r(config.eps))


# ---------------------------------------------------------------------------------------------
# kernels: the same five operations, as CUDA kernels or as numpy expressions

def _ld(a):
    """Leading dimension (elements between rows) of a row-major 2-D view."""
    if a.ndim != 2 or (a.shape[1] > 1 and a.strides[1] != a.itemsize):
        raise ValueError(f"internal: expected a row-major 2-D view, got strides {a.strides}")
    return np.int32(a.strides[0] // a.itemsize)


def _grid(total, block=BLOCK):
    return max(1, min((int(total) + block - 1) // block, MAX_GRID))


_NO_DROP = (0.0, 0, 0, 0, 0, 0)


def _drop_args(drop):
    """A dropout tuple (p, seed, epoch, slot0, layer[, book]) with its book flag (network3's
    rule: keep multiplier 1 instead of 1/(1-p)), default 0."""
    if drop is None:
        return _NO_DROP
    return tuple(drop) + (0,) * (6 - len(drop))


class RawKernels:
    """The fused kernels of kernels.cu, started through ``launch(name, grid, block, args)``.

    With CuPy, ``launch`` calls the RawModule's functions; the tests pass a launcher that runs
    the same source compiled for the CPU, on numpy arrays."""

    def __init__(self, xp, dtype, launch):
        self.xp = xp
        self.dtype = np.dtype(dtype)
        self.real = self.dtype.type
        self.launch = launch
        self._dummy = xp.zeros(1, dtype=self.dtype)
        self._dummy_acc = xp.zeros(2, dtype=np.float64)

    def act_forward(self, A, Z, act, drop=None):
        # A (m, n) view into a buffer with a column of ones, Z (m, n)
        m, n = Z.shape
        p, seed, epoch, slot0, layer, book = _drop_args(drop)
        self.launch("fnn_act_forward", _grid(m * n), BLOCK,
                    (A, _ld(A), Z, _ld(Z), np.int64(m), np.int32(n), np.int32(act),
                     np.float64(p), np.uint64(seed), np.int32(epoch), np.int64(slot0),
                     np.int32(layer), np.int32(book)))

    def act_backward(self, D, Dn, Z, act, drop=None):
        # D (m, n) = Dn (m, n) view * act'(Z (m, n))
        m, n = Z.shape
        p, seed, epoch, slot0, layer, book = _drop_args(drop)
        self.launch("fnn_act_backward", _grid(m * n), BLOCK,
                    (D, _ld(D), Dn, _ld(Dn), Z, _ld(Z), np.int64(m), np.int32(n),
                     np.int32(act), np.float64(p), np.uint64(seed), np.int32(epoch),
                     np.int64(slot0), np.int32(layer), np.int32(book)))

    def output(self, Z, Y, A, D, acc, act, cost, scale):
        # Z (m, no), Y (m, no) or None, A (m, no) out, D (m, no) out or None, acc (2,) float64
        m, no = Z.shape
        has_y, has_d = Y is not None, D is not None
        Yv = Y if has_y else Z
        Dv = D if has_d else A
        self.launch("fnn_output", _grid(m, 128), 128,
                    (Z, _ld(Z), Yv, _ld(Yv), A, _ld(A), Dv, _ld(Dv),
                     acc if has_y else self._dummy_acc, np.int64(m), np.int32(no),
                     np.int32(act), np.int32(cost), np.float64(scale), np.int32(has_y),
                     np.int32(has_d)))

    def update(self, P, G, S, mask, inv_m, k):
        # P (n,) parameters, G (n,) gradient sums, S (slots, n) state or None, mask (n,)
        # 1 on weights, k the step's OptConsts
        reg = mask is not None and (k.wd != 0 or k.l1 != 0)
        d = self._dummy
        self.launch("fnn_update", _grid(P.size), BLOCK,
                    (P, G, d if S is None else S, mask if reg else d, np.int64(P.size),
                     np.int32(k.opt), np.int32(reg), self.real(inv_m), k.wd, k.l1, k.lr,
                     k.lr_t, k.mu, k.c1, k.c2, k.rho, k.crho, k.eps))


# ---------------------------------------------------------------------------------------------
# the numpy kernels' tables: per activation a value f(z) and a derivative df(z, a), a = f(z)
# (src_c/activations.h); per optimizer one element-wise step (src_c/optimizers.h)

_SQRT1_2 = 0.70710678118654752440          # 1 / sqrt(2)
_INV_SQRT_2PI = 0.39894228040143267794     # 1 / sqrt(2 pi)
_SELU_SCALE = 1.0507009873554804934193349852946
_SELU_ALPHA = 1.6732632423543772848170429916717
_LEAKY_SLOPE = 0.2


def _erf(x):
    from scipy.special import erf     # numpy has no erf; scipy is a dependency
    return erf(x).astype(x.dtype, copy=False)


def _sigmoid(z):
    # never overflows: exp of a non-positive number only
    e = np.exp(-np.abs(z))
    r = 1 / (1 + e)
    return np.where(z >= 0, r, e * r)


def _gelu_cdf(z):
    return 0.5 * (1 + _erf(z * z.dtype.type(_SQRT1_2)))


def _dsilu(z):
    s = _sigmoid(z)
    return s * (1 + z * (1 - s))


def _one(z):
    return np.ones_like(z)


NP_ACTIVATIONS = {
    "identity": (lambda z: z.copy(), lambda z, a: _one(z)),
    "sigmoid": (_sigmoid, lambda z, a: a * (1 - a)),
    "tanh": (np.tanh, lambda z, a: 1 - a * a),
    "relu": (lambda z: np.where(z > 0, z, z.dtype.type(0)),          # relu'(0) = 0
             lambda z, a: (z > 0).astype(z.dtype)),
    # element-wise, softmax is exp's argument; output() normalizes the rows
    "softmax": (lambda z: z.copy(), lambda z, a: _one(z)),
    "gelu": (lambda z: z * _gelu_cdf(z),
             lambda z, a: _gelu_cdf(z) + z * (z.dtype.type(_INV_SQRT_2PI)
                                               * np.exp(z.dtype.type(-0.5) * z * z))),
    "silu": (lambda z: z * _sigmoid(z), lambda z, a: _dsilu(z)),
    # min(z, 0): the branch not taken never overflows
    "elu": (lambda z: np.where(z > 0, z, np.expm1(np.minimum(z, 0))),
            lambda z, a: np.where(z > 0, z.dtype.type(1), np.exp(np.minimum(z, 0)))),
    "selu": (lambda z: z.dtype.type(_SELU_SCALE) * np.where(
                 z > 0, z, z.dtype.type(_SELU_ALPHA) * np.expm1(np.minimum(z, 0))),
             lambda z, a: z.dtype.type(_SELU_SCALE) * np.where(
                 z > 0, z.dtype.type(1), z.dtype.type(_SELU_ALPHA) * np.exp(np.minimum(z, 0)))),
    "leaky_relu": (lambda z: np.where(z > 0, z, z.dtype.type(_LEAKY_SLOPE) * z),
                   lambda z, a: np.where(z > 0, z.dtype.type(1), z.dtype.type(_LEAKY_SLOPE))),
    "softplus": (lambda z: np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z))),
                 lambda z, a: _sigmoid(z)),
}


# w, s (the state slots: s[0], s[1] ...), g: flat arrays of one dtype; k: OptConsts in it.
# Each step updates w and s in place, exactly as the C step of the same name.
def _step_sgd(w, s, g, k):
    w -= k.lr * g


def _step_momentum(w, s, g, k):
    v = k.mu * s[0] - k.lr * g
    s[0][...] = v
    w += v


def _step_adam(w, s, g, k):
    s[0] += k.c1 * (g - s[0])
    s[1] += k.c2 * (g * g - s[1])
    tiny = np.finfo(s[0].dtype).tiny   # the moments below it go to 0, as in the C step
    s[0][abs(s[0]) < tiny] = 0
    s[1][s[1] < tiny] = 0
    w -= k.lr_t * s[0] / (np.sqrt(s[1]) + k.eps)


def _step_rmsprop(w, s, g, k):
    s[0][...] = k.rho * s[0] + k.crho * (g * g)
    u = k.lr * g / np.sqrt(s[0] + k.eps)
    if k.mu > 0:
        s[1][...] = k.mu * s[1] + u
        w -= s[1]
    else:
        w -= u


def _step_adagrad(w, s, g, k):
    s[0] += g * g
    w -= k.lr * g / np.sqrt(s[0] + k.eps)


NP_STEPS = {"sgd": _step_sgd, "momentum": _step_momentum, "adam": _step_adam,
            "rmsprop": _step_rmsprop, "adagrad": _step_adagrad}

# every row of the engine's tables has its numpy kernel: a new row without one fails here,
# at import, not at the first training call that uses it
for _table, _have, _what in ((ACT_ROWS, NP_ACTIVATIONS, "activation"),
                             (OPTIMIZERS, NP_STEPS, "optimizer step")):
    _missing = sorted(set(_table) - set(_have))
    if _missing:
        raise ImportError(f"fastnn.backends.xp: no numpy {_what} for the engine's table rows "
                          f"{_missing} (add them to fastnn/backends/xp.py and kernels.cu)")
_ACT_FN = {ACT_ROWS[name][0]: fns for name, fns in NP_ACTIVATIONS.items()}
_STEP_FN = {OPTIMIZERS[name]: fn for name, fn in NP_STEPS.items()}


def _np_act(z, act):
    return _ACT_FN[act][0](z)


def _np_act_back(d, z, a, act):
    return d * _ACT_FN[act][1](z, a)


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def _mix64(x):
    # splitmix64 on uint64 arrays (wrapping arithmetic)
    x = x + _GOLDEN
    x = (x ^ (x >> np.uint64(30))) * _MIX1
    x = (x ^ (x >> np.uint64(27))) * _MIX2
    return x ^ (x >> np.uint64(31))


def dropout_keep(seed, epoch, slot0, m, layer, n, p):
    """Return the (m, n) 0/1 keep mask of hidden layer ``layer`` for the examples in slots
    ``slot0 .. slot0+m-1`` of ``epoch``: the CPU engine's masks, bit for bit."""
    i = np.arange(m, dtype=np.uint64)
    j = np.arange(n, dtype=np.uint64)
    slot = (np.uint64(epoch) << np.uint64(40)) ^ (np.uint64(slot0) + i)
    inner = _mix64(np.uint64(layer) ^ _mix64(j))
    h = _mix64(np.uint64(seed) ^ _mix64(slot[:, None] ^ inner[None, :]))
    u = (h >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)
    return (u >= p).astype(np.uint8)


class NumpyKernels:
    """The same five operations as RawKernels, as plain numpy expressions."""

    def __init__(self, dtype):
        self.xp = np
        self.dtype = np.dtype(dtype)
        self.real = self.dtype.type

    def _keep(self, drop, m, n):
        p, seed, epoch, slot0, layer, book = _drop_args(drop)
        k = dropout_keep(seed, epoch, slot0, m, layer, n, p)
        return k.astype(self.dtype) if book else k * self.real(1.0 / (1.0 - p))

    def act_forward(self, A, Z, act, drop=None):
        a = _np_act(Z, act)
        if drop is not None and drop[0] > 0:
            a *= self._keep(drop, *Z.shape)
        A[...] = a

    def act_backward(self, D, Dn, Z, act, drop=None):
        d = _np_act_back(Dn, Z, _np_act(Z, act), act)
        if drop is not None and drop[0] > 0:
            d *= self._keep(drop, *Z.shape)
        D[...] = d

    def output(self, Z, Y, A, D, acc, act, cost, scale):
        if act == _SOFTMAX:
            e = np.exp(Z - Z.max(axis=1, keepdims=True))
            s = e.sum(axis=1, dtype=np.float64, keepdims=True)
            a = e * (1.0 / s).astype(self.dtype)
        else:
            a = _np_act(Z, act)
        A[...] = a
        if Y is None:
            return
        hits = int(np.count_nonzero(np.argmax(a, axis=1) == np.argmax(Y, axis=1)))
        a64, y64 = a.astype(np.float64), Y.astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if cost == _QUADRATIC:
                c = 0.5 * np.sum((a64 - y64) ** 2)
            elif cost == _MEAN_ABSOLUTE:
                c = np.sum(np.abs(a64 - y64))
            elif cost == _HUBER:
                e = np.abs(a64 - y64)
                c = np.sum(np.where(e <= 1, 0.5 * e * e, e - 0.5))
            elif cost == _CROSS_ENTROPY:
                e = -y64 * np.log(a64) - (1 - y64) * np.log(1 - a64)
                c = np.sum(np.nan_to_num(e, nan=0.0))
            else:
                if act == _SOFTMAX:
                    z64 = Z.astype(np.float64)
                    zm = z64.max(axis=1, keepdims=True)
                    la = z64 - (zm + np.log(np.exp(z64 - zm).sum(axis=1, keepdims=True)))
                else:
                    la = np.log(a64)
                c = -np.sum(np.where(y64 != 0, y64 * la, 0.0))
        acc[0] += scale * float(c)
        acc[1] += hits
        if D is None:
            return
        e = a - Y
        if cost == _MEAN_ABSOLUTE:
            e = np.sign(e)
        elif cost == _HUBER:
            e = np.clip(e, -1, 1)
        d = self.real(scale) * e
        if cost in _THROUGH_ACT:
            if act == _SOFTMAX:      # the softmax Jacobian: a * (g - sum(a g)), summed in double
                dot = (a.astype(np.float64) * d).sum(axis=1, keepdims=True)
                d = a * (d - dot.astype(self.dtype))
            elif act != _IDENTITY:
                d = _np_act_back(d, Z, a, act)
        D[...] = d

    def update(self, P, G, S, mask, inv_m, k):
        # P (n,) parameters, G (n,) gradient sums, S (slots, n) state or None, mask (n,)
        # 1 on weights, k the step's OptConsts
        g = G * self.real(inv_m)
        if mask is not None and (k.wd != 0 or k.l1 != 0):
            g = g + np.where(mask != 0, k.wd * P + k.l1 * np.sign(P), self.real(0))
        _STEP_FN[k.opt](P, S, g, k)


_MODULES = {}


def _cupy_launcher(cupy, dtype):
    """A launch(name, grid, block, args) over the RawModule compiled for dtype and the current
    device (compiled once per process, and cached by CuPy on disk)."""
    key = (np.dtype(dtype).char, cupy.cuda.runtime.getDevice())
    entry = _MODULES.get(key)
    if entry is None:
        module = cupy.RawModule(code=cuda_source(), options=cuda_options(dtype))
        entry = _MODULES[key] = (module, {})
    module, funcs = entry

    def launch(name, grid, block, args):
        f = funcs.get(name)
        if f is None:
            f = funcs[name] = module.get_function(name)
        f((grid,), (block,), args)

    return launch


def _kernels_for(xp, dtype):
    """The kernels for the module xp: numpy expressions, or CuPy RawKernels."""
    if xp is np:
        return NumpyKernels(dtype)
    return RawKernels(xp, dtype, _cupy_launcher(xp, dtype))


def resolve_xp(xp, device):
    """Return the array module: xp if given, else CuPy for device='cuda' (imported now, with
    a clear error when CuPy or a GPU is missing) and numpy for device='cpu'."""
    if xp is not None:
        name = getattr(xp, "__name__", "")
        if xp is not np and name != "cupy":
            raise TypeError(f"xp: expected the numpy or cupy module, got {xp!r}")
        return xp
    if device == "cuda":
        from fastnn import _device
        _device.require_cuda()
        import cupy
        return cupy
    if device == "cpu":
        return np
    raise ValueError(f"device: expected 'cpu' or 'cuda', got {device!r}")


def _to_host(xp, a):
    return a if xp is np else xp.asnumpy(a)


# ---------------------------------------------------------------------------------------------
# checks at the boundary (the engine's, with the same messages where they exist)

def _check_net(W, b, acts, cost=None):
    if not isinstance(W, (list, tuple)) or not W:
        raise ValueError("weights: expected a non-empty list of numpy arrays")
    if not isinstance(b, (list, tuple)):
        raise TypeError("biases: expected a list of numpy arrays")
    L = len(W)
    if L > _engine.MAX_LAYERS:
        raise ValueError(f"weights: expected 1 to {_engine.MAX_LAYERS} layers, got {L}")
    if len(b) != L or len(acts) != L:
        raise ValueError(f"biases/activations: expected {L} layers, got {len(b)} and {len(acts)}")
    w0 = W[0]
    if not isinstance(w0, np.ndarray):
        raise TypeError(f"weights[0]: expected a numpy array, got {type(w0).__name__}")
    dtype = w0.dtype
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"weights[0]: expected float32 or float64, got {dtype}")
    sizes = [None] * (L + 1)
    codes = []
    for l in range(L):
        for arr, nm in ((W[l], "weights"), (b[l], "biases")):
            if not isinstance(arr, np.ndarray):
                raise TypeError(f"{nm}[{l}]: expected a numpy array, got {type(arr).__name__}")
            if arr.dtype != dtype:
                raise TypeError(f"{nm}[{l}]: expected dtype {dtype}, got {arr.dtype}")
            if not arr.flags.writeable:
                raise ValueError(f"{nm}[{l}]: expected a writeable array")
        if W[l].ndim != 2 or W[l].shape[0] < 1 or W[l].shape[1] < 1:
            raise ValueError(f"weights[{l}]: expected a non-empty matrix, got shape {W[l].shape}")
        if l == 0:
            sizes[0] = W[l].shape[1]
        elif W[l].shape[1] != sizes[l]:
            raise ValueError(f"weights[{l}]: expected {sizes[l]} columns (the previous layer's "
                             f"size), got shape {W[l].shape}")
        sizes[l + 1] = W[l].shape[0]
        if b[l].size != W[l].shape[0]:
            raise ValueError(f"biases[{l}]: expected {W[l].shape[0]} entries, got shape "
                             f"{b[l].shape}")
        a = acts[l]
        if not isinstance(a, str) or a not in ACTIVATIONS or (a in OUTPUT_ONLY and l != L - 1):
            allowed = ", ".join(k for k in ACTIVATIONS if l == L - 1 or k not in OUTPUT_ONLY)
            raise ValueError(f"activations[{l}]: expected one of {allowed}, got {a!r}")
        codes.append(ACTIVATIONS[a])
    if cost is not None and (not isinstance(cost, str) or cost not in COSTS):
        raise ValueError(f"cost: expected one of {', '.join(COSTS)}, got {cost!r}")
    return dtype, sizes, codes


def _check_model(W, b, acts, cost=None, layers=None):
    """(dtype, flat sizes input first, activation codes, the layers' normalized descriptions
    or None for a dense network without any): _check_net, or with ``layers``
    (TrainConfig.layers) xp_layers.check_layers."""
    if layers is None or all(spec is None for spec in layers):
        if layers is not None and len(layers) != len(W):
            raise ValueError(f"layers: expected {len(W)} layer descriptions (one per layer), "
                             f"got {len(layers)}")
        return _check_net(W, b, acts, cost) + (None,)
    if not isinstance(W, (list, tuple)) or not W:
        raise ValueError("weights: expected a non-empty list of numpy arrays")
    if not isinstance(b, (list, tuple)):
        raise TypeError("biases: expected a list of numpy arrays")
    L = len(W)
    if L > _engine.MAX_LAYERS:
        raise ValueError(f"weights: expected 1 to {_engine.MAX_LAYERS} layers, got {L}")
    if len(b) != L or len(acts) != L:
        raise ValueError(f"biases/activations: expected {L} layers, got {len(b)} and {len(acts)}")
    first = next((w for w in W if w is not None), None)
    if not isinstance(first, np.ndarray) or first.dtype not in (np.float32, np.float64):
        raise TypeError(f"weights: expected float32 or float64 numpy arrays, got "
                        f"{type(first).__name__}{' of dtype ' + str(first.dtype) if hasattr(first, 'dtype') else ''}")
    sizes, codes, specs = xp_layers.check_layers(W, b, acts, layers, cost, first.dtype,
                                                 ACTIVATIONS, OUTPUT_ONLY, COSTS)
    return first.dtype, sizes, codes, specs


def _make_net(xp, W, b, sizes, codes, specs, dtype, dropout=0.0):
    kern = _kernels_for(xp, dtype)
    if specs is None:
        return _DeviceNet(xp, kern, W, b, sizes, codes, dtype, dropout)
    return xp_layers.LayerNet(xp, kern, W, b, sizes, codes, specs, dtype, dropout)


def _check_data(X, Y, dtype, sizes, name):
    for arr, nm, cols in ((X, "X", sizes[0]), (Y, "Y", sizes[-1])):
        if arr is None:
            continue
        if not hasattr(arr, "shape") or not hasattr(arr, "dtype"):
            raise TypeError(f"{name} {nm}: expected an array, got {type(arr).__name__}")
        if arr.dtype != dtype:
            raise TypeError(f"{name} {nm}: expected dtype {dtype}, got {arr.dtype}")
        if arr.ndim != 2:
            raise ValueError(f"{name} {nm}: expected 2 dimensions, got shape {arr.shape}")
        if arr.shape[1] != cols:
            raise ValueError(f"{name} {nm}: expected {cols} columns, got shape {arr.shape}")
    if Y is not None and X.shape[0] != Y.shape[0]:
        raise ValueError(f"{name}: X has {X.shape[0]} rows but Y has {Y.shape[0]}")


# ---------------------------------------------------------------------------------------------
# the network on the device

class _DeviceNet:
    """Parameters [W | b] in one flat device vector, the work buffers, and the steps."""

    def __init__(self, xp, kern, W, b, sizes, acts, dtype, dropout=0.0):
        self.xp, self.kern, self.dtype = xp, kern, np.dtype(dtype)
        self.dropout = float(dropout)       # the call's dropout on hidden layers
        self.sizes, self.acts, self.L = sizes, acts, len(sizes) - 1
        self.shapes = [(sizes[l + 1], sizes[l] + 1) for l in range(self.L)]
        self.offsets = [0]
        for r, c in self.shapes:
            self.offsets.append(self.offsets[-1] + r * c)
        self.P = xp.asarray(self.pack([(W[l], b[l]) for l in range(self.L)]))
        self.Wb = self.views(self.P)
        self.WbT = [w.T for w in self.Wb]
        self.rows = 0
        self.brows = 0
        self.S = None           # optimizer state (slots, len(P)), while training
        self.mask = None        # 1 on weights, 0 on biases, while training

    # -- packing between the host layout (W[l], b[l]) and the flat [W | b] layout ----------
    def pack(self, pairs):
        """Host flat vector from per-layer (W-like, b-like) host arrays."""
        flat = np.empty(self.offsets[-1], dtype=self.dtype)
        for l, (w, bb) in enumerate(pairs):
            r, c = self.shapes[l]
            blk = flat[self.offsets[l]:self.offsets[l + 1]].reshape(r, c)
            blk[:, :c - 1] = np.asarray(w).reshape(r, c - 1)
            blk[:, c - 1] = np.asarray(bb).reshape(r)
        return flat

    def unpack(self, flat, pairs):
        """Write a host flat vector into per-layer (W-like, b-like) host arrays, in place."""
        for l, (w, bb) in enumerate(pairs):
            r, c = self.shapes[l]
            blk = flat[self.offsets[l]:self.offsets[l + 1]].reshape(r, c)
            np.copyto(w, blk[:, :c - 1].reshape(w.shape))
            np.copyto(bb, blk[:, c - 1].reshape(bb.shape))

    def pack_state(self, state):
        """Host (slots, len(P)) array from state[q][l] = (W-like, b-like) host arrays."""
        out = np.empty((len(state), self.offsets[-1]), dtype=self.dtype)
        for q, pairs in enumerate(state):
            out[q] = self.pack(pairs)
        return out

    def unpack_state(self, flat, state):
        for q, pairs in enumerate(state):
            self.unpack(flat[q], pairs)

    def views(self, flat):
        return [flat[self.offsets[l]:self.offsets[l + 1]].reshape(self.shapes[l])
                for l in range(self.L)]

    def weight_mask(self):
        mask = np.ones(self.offsets[-1], dtype=self.dtype)
        for l in range(self.L):
            r, c = self.shapes[l]
            mask[self.offsets[l]:self.offsets[l + 1]].reshape(r, c)[:, c - 1] = 0
        return self.xp.asarray(mask)

    # -- buffers ---------------------------------------------------------------------------
    def alloc(self, rows, brows=0):
        """Forward buffers for `rows` examples, backward buffers for `brows`."""
        xp, dt, s, L = self.xp, self.dtype, self.sizes, self.L
        self.rows, self.brows = rows, brows
        self.Z = [xp.empty((rows, s[l + 1]), dtype=dt) for l in range(L)]
        # hidden activations with their column of ones
        self.A = [xp.ones((rows, s[l + 1] + 1), dtype=dt) for l in range(L - 1)]
        self.Aout = xp.empty((rows, s[L]), dtype=dt)
        if brows:
            self.D = [xp.empty((brows, s[l + 1]), dtype=dt) for l in range(L)]
            self.Dn = [xp.empty((brows, s[l + 1] + 1), dtype=dt) for l in range(L - 1)]
            self.G = xp.empty(self.offsets[-1], dtype=dt)
            self.Gv = self.views(self.G)
        self._cut = {}

    def cut(self, m):
        """The buffers' first m rows (views made once per m)."""
        v = self._cut.get(m)
        if v is None:
            n = [self.sizes[l + 1] for l in range(self.L)]
            v = {"Z": [z[:m] for z in self.Z],
                 "A": [a[:m] for a in self.A],
                 "Ah": [a[:m, :n[l]] for l, a in enumerate(self.A)],
                 "Aout": self.Aout[:m]}
            if self.brows and m <= self.brows:
                v["D"] = [d[:m] for d in self.D]
                v["DT"] = [d[:m].T for d in self.D]
                v["Dnh"] = [d[:m, :n[l]] for l, d in enumerate(self.Dn)]
                v["Dn"] = [d[:m] for d in self.Dn]
            self._cut[m] = v
        return v

    def upload(self, X):
        """X (n, k) host -> device (n, k + 1) with a last column of ones."""
        xp = self.xp
        n, k = X.shape
        out = xp.empty((n, k + 1), dtype=self.dtype)
        out[:, :k] = xp.asarray(X)
        out[:, k] = 1
        return out

    # -- steps -----------------------------------------------------------------------------
    def forward(self, inp, v, drop=None):
        """inp (m, n_0 + 1) device rows -> v['Z'][L-1] (m, n_L), hidden activations in v['A'].
        drop: None or (p, seed, epoch, slot0) while training."""
        xp, kern, L = self.xp, self.kern, self.L
        a = inp
        for l in range(L):
            z = v["Z"][l]
            xp.matmul(a, self.WbT[l], out=z)
            if l < L - 1:
                dl = None if drop is None else drop + (l,)
                kern.act_forward(v["Ah"][l], z, self.acts[l], dl)
                a = v["A"][l]
        return v["Z"][L - 1]

    def train_batch(self, inp, y, m, acc, cost, scale, ps, k):
        """One mini-batch: forward, output delta, backward, one update of all parameters.
        ``ps``: (seed, epoch, slot0), the dropout masks' pass."""
        xp, kern, L = self.xp, self.kern, self.L
        v = self.cut(m)
        drop = (self.dropout,) + tuple(ps) if self.dropout > 0 else None
        zL = self.forward(inp, v, drop)
        kern.output(zL, y, v["Aout"], v["D"][L - 1], acc, self.acts[L - 1], cost, scale)
        for l in range(L - 1, 0, -1):
            xp.matmul(v["D"][l], self.Wb[l], out=v["Dn"][l - 1])
            dl = None if drop is None else drop + (l - 1,)
            kern.act_backward(v["D"][l - 1], v["Dnh"][l - 1], v["Z"][l - 1], self.acts[l - 1],
                              dl)
        for l in range(L):
            xp.matmul(v["DT"][l], inp if l == 0 else v["A"][l - 1], out=self.Gv[l])
        kern.update(self.P, self.G, self.S, self.mask, 1.0 / m, k)

    def evaluate_set(self, Xe, Ye, acc, cost, scale):
        """Cost sum and hits over device data (Xe with its ones column) into acc (2,)."""
        n = Xe.shape[0]
        for s in range(0, n, self.rows):
            m = min(self.rows, n - s)
            v = self.cut(m)
            zL = self.forward(Xe[s:s + m], v)
            self.kern.output(zL, Ye[s:s + m], v["Aout"], None, acc, self.acts[-1], cost, scale)

    def forward_out(self, X, out):
        """Outputs of the rows of device X (with their ones column) into out (n, n_L)."""
        n = X.shape[0]
        for s in range(0, n, self.rows):
            m = min(self.rows, n - s)
            zL = self.forward(X[s:s + m], self.cut(m))
            self.kern.output(zL, None, out[s:s + m], None, None, self.acts[-1], 0, 1.0)

    def norms(self, mask):
        return xp_layers.norms(self.xp, self.P, mask)


# ---------------------------------------------------------------------------------------------
# the entry points

def _check_state(state, optimizer, W, b, dtype):
    """state[q][l] = (W-like, b-like) writeable host arrays of ``dtype``, OPT_SLOTS[optimizer]
    slots (the engine's check, the engine's messages); returns the slots used."""
    n_slots = OPT_SLOTS[optimizer]
    if not n_slots:
        return []
    if state is None or len(state) < n_slots:
        raise ValueError(f"state: expected {n_slots} slot(s) of optimizer state for "
                         f"{optimizer!r}, got {0 if state is None else len(state)}")
    L = len(W)
    for q in range(n_slots):
        if len(state[q]) != L:
            raise ValueError(f"state[{q}]: expected one (W, b) pair per layer ({L}), got "
                             f"{len(state[q])}")
        for l in range(L):
            if W[l] is None:        # a layer without parameters has no state
                continue
            for k, like in ((0, W[l]), (1, b[l])):
                s = state[q][l][k]
                if not isinstance(s, np.ndarray) or s.dtype != dtype:
                    raise TypeError(f"state[{q}][{l}][{k}]: expected a numpy array of dtype "
                                    f"{dtype}, got {type(s).__name__}"
                                    f"{' of dtype ' + str(s.dtype) if hasattr(s, 'dtype') else ''}")
                if not s.flags.writeable:
                    raise ValueError(f"state[{q}][{l}][{k}]: expected a writeable array")
                if s.size != like.size:
                    raise ValueError(f"state[{q}][{l}][{k}]: expected {like.size} entries, "
                                     f"got {s.size}")
    return list(state[:n_slots])


def _check_config(config):
    from fastnn._core import TrainConfig
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config: expected a fastnn._core.TrainConfig, got "
                        f"{type(config).__name__}")


def train(W, b, X, Y, config, device="cuda", xp=None):
    """Train W, b (host numpy lists, W[l] (n_out, n_in), b[l] (n_out,)) in place as
    ``config`` (a fastnn._core.TrainConfig) says.

    The engine's ``train`` (fastnn/_engine.pyx): the same config fields (``n_threads`` and
    ``path`` aside), callback dict and result.  The parameters, optimizer state, data, orders
    and evaluation data are copied to the device once; all epochs run there; the parameters
    and the state (``config.state``, updated in place) come back at the end, also when
    training stops, diverges (the last finite epoch's weights, status DIVERGED) or is
    interrupted by an exception.  ``config.progress``, when given, is kept up to date as in
    the engine: [0] the epoch running, [1] the mini-batches done in it.

    Returns a dict: status, epochs_done, diverged_epoch, step (the optimizer's step count, one
    per mini-batch, continuing from ``config.step``), eta, path ('xp').
    """
    _check_config(config)
    dtype, sizes, act_codes, specs = _check_model(W, b, config.acts, config.cost,
                                                  config.layers)
    _check_data(X, Y, dtype, sizes, "training data")
    n = int(X.shape[0])
    if n < 1:
        raise ValueError("training data: expected at least one example, got 0")
    epochs, batch = int(config.epochs), int(config.batch)
    if epochs < 0:
        raise ValueError(f"epochs: expected a non-negative int, got {epochs}")
    if batch < 1:
        raise ValueError(f"mini_batch_size: expected a positive int, got {batch}")
    optimizer = config.optimizer
    if not isinstance(optimizer, str) or optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer: expected one of {', '.join(OPTIMIZERS)}, got "
                         f"{optimizer!r}")
    dropout = float(config.dropout)
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout: expected a value in [0, 1), got {dropout}")
    state = _check_state(config.state, optimizer, W, b, dtype)
    orders = config.orders
    if orders is not None:
        orders = np.asarray(orders)
        if orders.dtype != np.int32 or orders.ndim != 2:
            raise TypeError(f"orders: expected a 2-D int32 array, got {orders.dtype} with "
                            f"shape {orders.shape}")
        if orders.shape[0] < epochs or orders.shape[1] != n:
            raise ValueError(f"orders: expected shape ({epochs}, {n}), got {orders.shape}")
        if orders.size and (orders.min() < 0 or orders.max() >= n):
            raise ValueError("orders: indices out of range")
    ex = ey = None
    if config.eval_data is not None:
        ex, ey = config.eval_data
        _check_data(ex, ey, dtype, sizes, "evaluation data")
    progress = config.progress
    if progress is not None and (not isinstance(progress, np.ndarray)
                                 or progress.dtype != np.int64 or progress.ndim != 1
                                 or progress.shape[0] < 2 or not progress.flags.writeable):
        raise ValueError(f"progress: expected a writeable int64 array of 2, got "
                         f"{getattr(progress, 'dtype', type(progress).__name__)} with shape "
                         f"{getattr(progress, 'shape', None)}")
    xp = resolve_xp(xp, device)

    cost_code = COSTS[config.cost]
    cost_scale = float(config.cost_scale)
    reg_n = float(config.reg_n) if config.reg_n is not None else float(n)
    wd, l1c = float(config.lmbda) / reg_n, float(config.l1) / reg_n
    monitor_train, run_stats, on_epoch = config.monitor_train, config.run_stats, config.on_epoch
    nb = (n + batch - 1) // batch
    m_full = min(batch, n)
    m_last = n - (nb - 1) * batch
    n_eval = (n if monitor_train else 0, ex.shape[0] if ex is not None else 0)
    eval_rows = min(EVAL_ROWS, max(n_eval))
    net = _make_net(xp, W, b, sizes, act_codes, specs, dtype, dropout)
    host_pairs = [(W[l], b[l]) for l in range(len(W))]
    eta = float(config.eta)
    step = int(config.step)
    result = {"status": STATUS_OK, "epochs_done": 0, "diverged_epoch": -1, "step": step,
              "eta": eta, "path": "xp", "threads": 0.0}   # (1.0 once a mini-batch ran)
    if epochs == 0:
        return result

    # everything goes to the device once
    net.alloc(max(m_full, eval_rows), m_full)
    if state:
        net.S = xp.asarray(net.pack_state(state))
    net.mask = mask = net.weight_mask()
    Xd, Yd = net.upload(X), xp.asarray(Y)
    if orders is not None:
        ord_d = xp.asarray(orders[:epochs])
        Xp, Yp = xp.empty_like(Xd), xp.empty_like(Yd)
    else:
        Xp, Yp = Xd, Yd
    if ex is not None:
        Xe, Ye = net.upload(ex), xp.asarray(ey)
    acc = xp.zeros(6, dtype=np.float64)
    snap = xp.empty_like(net.P)
    status = STATUS_OK
    done = 0                    # mini-batches run in the current epoch
    # numpy: a diverging run overflows quietly, as in the engine; divergence is reported
    with np.errstate(over="ignore", invalid="ignore"):
        try:
            for epoch in range(epochs):
                acc.fill(0)
                snap[...] = net.P
                if orders is not None:
                    xp.take(Xd, ord_d[epoch], axis=0, out=Xp)
                    xp.take(Yd, ord_d[epoch], axis=0, out=Yp)
                done = 0
                for bi in range(nb):
                    start = bi * batch
                    m = m_full if bi < nb - 1 else m_last
                    k = opt_consts(config, eta, step + bi + 1, wd, l1c, dtype)
                    net.train_batch(Xp[start:start + m], Yp[start:start + m], m, acc[0:2],
                                    cost_code, cost_scale, (int(config.seed), epoch, start), k)
                    done = bi + 1
                    if progress is not None:
                        progress[0], progress[1] = epoch, done
                step += nb
                done = 0
                sums = _to_host(xp, net.norms(mask))
                if not np.all(np.isfinite(sums)):
                    net.P[...] = snap
                    result["diverged_epoch"] = epoch
                    status = STATUS_DIVERGED
                    break
                if monitor_train:
                    net.evaluate_set(Xd, Yd, acc[2:4], cost_code, cost_scale)
                if ex is not None and ex.shape[0]:
                    net.evaluate_set(Xe, Ye, acc[4:6], cost_code, cost_scale)
                a = _to_host(xp, acc)
                result["epochs_done"] = epoch + 1
                result["threads"] = 1.0
                if on_epoch is not None:
                    st = {"epoch": epoch, "eta": eta, "batches": nb,
                          "run_cost": float(a[0]) if run_stats else 0.0,
                          "run_correct": int(a[1] + 0.5) if run_stats else 0,
                          "run_n": n if run_stats else 0,
                          "train_cost": float(a[2]), "train_correct": int(a[3] + 0.5),
                          "eval_cost": float(a[4]), "eval_correct": int(a[5] + 0.5),
                          "sum_w2": float(sums[0]), "sum_w1": float(sums[1]),
                          # one stream of kernels: the CPU engine's team statistics' values
                          "threads": 1.0, "wait_frac": 0.0}
                    try:
                        r = on_epoch(st)
                    except BaseException:
                        status = STATUS_CALLBACK_ERROR
                        raise
                    if r is not None:
                        if r.get("stop"):
                            status = STATUS_STOPPED
                            break
                        if r.get("eta") is not None:
                            eta = float(r["eta"])
        except BaseException:
            if status == STATUS_OK:
                status = STATUS_INTERRUPTED
            raise
        finally:
            # the parameters and the optimizer state come back whatever happened
            step += done
            net.unpack(_to_host(xp, net.P), host_pairs)
            if state:
                net.unpack_state(_to_host(xp, net.S), state)
            result.update(status=status, step=step, eta=eta)
    return result


def predict(W, b, acts, X, device="cuda", xp=None, layers=None):
    """Network output (n, n_out), a host numpy array, for X (n, n_in).  ``layers``: the
    descriptions of layers other than dense ones (TrainConfig.layers)."""
    dtype, sizes, act_codes, specs = _check_model(W, b, acts, None, layers)
    _check_data(X, None, dtype, sizes, "predict")
    xp = resolve_xp(xp, device)
    n = int(X.shape[0])
    out = xp.empty((n, sizes[-1]), dtype=dtype)
    if n:
        net = _make_net(xp, W, b, sizes, act_codes, specs, dtype)
        net.alloc(min(EVAL_ROWS, n))
        net.forward_out(net.upload(X), out)
    return _to_host(xp, out)


def evaluate(W, b, acts, cost, X, Y, cost_scale=1.0, device="cuda", xp=None, layers=None):
    """(cost summed over the examples, argmax hits) for (X, Y).  ``layers``: as predict."""
    dtype, sizes, act_codes, specs = _check_model(W, b, acts, cost, layers)
    _check_data(X, Y, dtype, sizes, "data")
    xp = resolve_xp(xp, device)
    n = int(X.shape[0])
    if n == 0:
        return 0.0, 0
    net = _make_net(xp, W, b, sizes, act_codes, specs, dtype)
    net.alloc(min(EVAL_ROWS, n))
    acc = xp.zeros(2, dtype=np.float64)
    net.evaluate_set(net.upload(X), xp.asarray(Y), acc, COSTS[cost], float(cost_scale))
    a = _to_host(xp, acc)
    return float(a[0]), int(a[1] + 0.5)

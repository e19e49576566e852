# cython: language_level=3
"""The compiled engine's Python boundary.

Everything below the ``def`` functions runs without the GIL and never raises: the checks that
keep the C code in bounds (dtype, contiguity, shapes, table codes) are made here first.  The
front doors (network, network2, Sequential, the estimators) make the user-facing checks with
friendlier messages before they get here.
"""
import os

import numpy as np

cimport cython
cimport numpy as cnp
from cython cimport floating
from cpython.exc cimport PyErr_CheckSignals
from libc.math cimport isfinite
from libc.stdint cimport int32_t, int64_t, uint32_t, uint64_t
from libc.stdlib cimport malloc, free
from scipy.linalg.cython_blas cimport dgemm, sgemm

from fastnn._config import blas_single_thread, conv_half

cnp.import_array()

cdef extern from "dispatch.h" nogil:
    enum:
        FNN_MAX_LAYERS
        FNN_MAX_SLOTS
        FNN_KSPLIT_MAX_BLOCKS
        FNN_LAYER_DENSE
        FNN_OPT_SGD
        FNN_MON_TRAIN
        FNN_MON_EVAL
        FNN_MON_RUN
        FNN_OK
        FNN_STOPPED
        FNN_INTERRUPTED
        FNN_DIVERGED
        FNN_CALLBACK_ERROR
        FNN_NOMEM
        FNN_PATH_AUTO
        FNN_ROWS_F64
        FNN_ROWS_F32

    ctypedef struct fnn_table_row:
        const char *name
        int code
        int flag

    const fnn_table_row fnn_act_rows[]
    const fnn_table_row fnn_cost_rows[]
    const fnn_table_row fnn_opt_rows[]
    const fnn_table_row fnn_kind_rows[]
    const fnn_table_row fnn_status_rows[]
    int FNN_N_ACT
    int FNN_N_COST
    int FNN_N_OPT
    int FNN_N_KIND
    int fnn_opt_slots(int opt)

    ctypedef struct fnn_layer:
        int kind
        int act
        int in_shape[3]
        int out_shape[3]
        int geom[8]
        void *W
        void *b
        double dropout
        int drop_book
        int n_in, n_out
        int64_t n_w, n_b

    ctypedef struct fnn_net:
        int L
        fnn_layer layer[FNN_MAX_LAYERS]
        int cost
        double cost_scale
        void *gemm
        int n_threads
        int blocks
        int conv_half

    int fnn_net_finish(fnn_net *net)

    ctypedef struct fnn_data:
        const void *X
        const void *Y
        int64_t n
        const void *const *rows
        int rows_type

    ctypedef struct fnn_epoch_stats:
        int epoch
        int stop
        double eta
        int64_t batches
        double run_cost
        int64_t run_correct
        int64_t run_n
        double train_cost
        int64_t train_correct
        double eval_cost
        int64_t eval_correct
        double sum_w2
        double sum_w1
        double threads
        double wait_frac

    ctypedef int (*fnn_epoch_cb)(void *ctx, fnn_epoch_stats *st) noexcept nogil
    ctypedef int (*fnn_check_cb)(void *ctx) noexcept nogil

    ctypedef struct fnn_opt:
        int code
        double mu, beta1, beta2, rho, eps
        int64_t t
        void *sW[FNN_MAX_LAYERS][FNN_MAX_SLOTS]
        void *sb[FNN_MAX_LAYERS][FNN_MAX_SLOTS]

    ctypedef struct fnn_train_cfg:
        int epochs
        int batch
        double eta, lmbda, l1, reg_n
        fnn_opt opt
        double dropout
        uint64_t seed
        const int32_t *orders
        fnn_data train
        fnn_data eval
        int monitor
        fnn_epoch_cb on_epoch
        fnn_check_cb check
        void *ctx
        int check_every
        int diverged_epoch
        int epochs_done
        int path
        int64_t *progress
        int progress_n
        int ksplit_blocks
        int adapt
        double threads

    int fnn_openmp_enabled()
    int fnn_omp_max_threads()

    # the engine's entry points, compiled once per CPU level (src_c/dispatch.h, level.c)
    ctypedef struct fnn_kernels:
        const char *name
        uint32_t needs
        int vbytes
        int (*train_f64)(fnn_net *net, fnn_train_cfg *cfg) noexcept nogil
        int (*train_f32)(fnn_net *net, fnn_train_cfg *cfg) noexcept nogil
        int (*predict_f64)(const fnn_net *net, const double *X, int64_t n, double *out) noexcept nogil
        int (*predict_f32)(const fnn_net *net, const float *X, int64_t n, float *out) noexcept nogil
        int (*evaluate_f64)(const fnn_net *net, const fnn_data *data, double *cost,
                            int64_t *hits) noexcept nogil
        int (*evaluate_f32)(const fnn_net *net, const fnn_data *data, double *cost,
                            int64_t *hits) noexcept nogil
        int (*gradient_f64)(const fnn_net *net, const fnn_data *data, double **gW,
                            double **gb, double *cost) noexcept nogil
        int (*gradient_f32)(const fnn_net *net, const fnn_data *data, float **gW,
                            float **gb, double *cost) noexcept nogil

    const fnn_kernels *const fnn_levels[]
    int FNN_CPU_N_FEATURES
    const char *const fnn_cpu_feature_names[]
    uint32_t fnn_cpu_features()


cdef dict _rows(const fnn_table_row *rows, str table, bint with_flag):
    """One of the engine's tables (src_c/fnn_tables.h) as {name: code} (or {name: (code,
    flag)}); the codes of all but the return codes run 0, 1, 2, ... in row order."""
    cdef int i = 0
    out = {}
    while rows[i].name != NULL:
        name = rows[i].name.decode("ascii")
        if with_flag:
            out[name] = (int(rows[i].code), int(rows[i].flag))
        else:
            out[name] = int(rows[i].code)
        i += 1
    return out


# The tables the front doors map names onto, read from the C rows: never written twice.
ACT_ROWS = _rows(fnn_act_rows, "activations", True)       # name: (code, output_only)
ACTIVATIONS = {k: v[0] for k, v in ACT_ROWS.items()}
ACTIVATIONS["linear"] = ACTIVATIONS["identity"]              # Keras' name for identity
ACTIVATIONS["swish"] = ACTIVATIONS["silu"]                   # Keras' alias
OUTPUT_ONLY = tuple(k for k, v in ACT_ROWS.items() if v[1])  # ("softmax",)
_OUTPUT_ONLY_CODES = frozenset(ACT_ROWS[k][0] for k in OUTPUT_ONLY)
COSTS = _rows(fnn_cost_rows, "costs", False)
OPT_ROWS = _rows(fnn_opt_rows, "optimizers", True)        # name: (code, state slots)
OPTIMIZERS = {k: v[0] for k, v in OPT_ROWS.items()}
OPT_SLOTS = {k: v[1] for k, v in OPT_ROWS.items()}
LAYER_KINDS = _rows(fnn_kind_rows, "layer kinds", False)
STATUSES = _rows(fnn_status_rows, "return codes", False)
MAX_LAYERS = FNN_MAX_LAYERS
MAX_SLOTS = FNN_MAX_SLOTS

for _t in (ACT_ROWS, COSTS, OPT_ROWS, LAYER_KINDS):
    for _i, _v in enumerate(_t.values()):
        if (_v[0] if isinstance(_v, tuple) else _v) != _i:
            raise ImportError("fastnn: the engine's tables are out of order (codes must run "
                              "0, 1, 2, ... in src_c/fnn_tables.h)")

STATUS_OK = STATUSES["ok"]
STATUS_STOPPED = STATUSES["stopped"]
STATUS_INTERRUPTED = STATUSES["interrupted"]
STATUS_DIVERGED = STATUSES["diverged"]
STATUS_CALLBACK_ERROR = STATUSES["callback_error"]
# how a training call shared each mini-batch among its threads: one thread; rows (samples,
# then neurons) split with barriers between phases; or the first layer's inputs split
# (src_c/path_rows.h, src_c/path_ksplit.h)
PATHS = ("serial", "rows", "ksplit")


# ---------------------------------------------------------------------------------------------
# the CPU level: the engine is compiled for several (src_c/dispatch.h); every call below goes
# through the table of the best one this CPU runs, or of the one FASTNN_CPU_LEVEL names

cdef const fnn_kernels *_K = NULL


cdef tuple _feature_names(uint32_t bits):
    return tuple(fnn_cpu_feature_names[i].decode("ascii") for i in range(FNN_CPU_N_FEATURES)
                 if (bits >> i) & 1)


def _levels_built():
    """[(name, features its code uses)] of the levels this build holds, best first."""
    cdef int i = 0
    out = []
    while fnn_levels[i] != NULL:
        out.append((fnn_levels[i].name.decode("ascii"), _feature_names(fnn_levels[i].needs)))
        i += 1
    return out


def pick_level(cpu_features, want=""):
    """Return the name of the level to run on a CPU with ``cpu_features`` (names as
    dispatch.h spells them): ``want`` if given, else the best this CPU runs.  Raise
    ImportError when ``want`` is not in this build or needs more than the CPU has, or when
    the CPU is below every level (the module runs this at import on the CPU's own
    features)."""
    built = _levels_built()
    names = [n for n, _ in built]
    missing = {n: tuple(f for f in needs if f not in cpu_features) for n, needs in built}
    runs = [n for n in names if not missing[n]]
    if want:
        if want not in missing:
            raise ImportError(f"fastnn: FASTNN_CPU_LEVEL={want!r}, but this build of the engine "
                              f"holds the CPU levels {', '.join(names)}: name one of them, or "
                              f"unset FASTNN_CPU_LEVEL to take the best this CPU runs")
        if missing[want]:
            raise ImportError(f"fastnn: FASTNN_CPU_LEVEL={want}, but this CPU lacks "
                              f"{', '.join(missing[want])}, which the {want} kernels use; the "
                              f"levels it runs: {', '.join(runs) or 'none'}")
        return want
    if not runs:
        low = names[len(names) - 1]    # (wraparound is off in this module)
        raise ImportError(f"fastnn: this CPU is below the engine's baseline: the lowest CPU "
                          f"level in this build ({low}) uses {', '.join(missing[low])}, which "
                          f"this CPU lacks.  Build fastnn from source on this machine (pip "
                          f"install --no-binary fastnn fastnn, with FASTNN_MARCH=none in the "
                          f"environment) to get kernels for it.")
    return runs[0]


cdef int _use_level(str name) except -1:
    global _K, CPU_LEVEL, VECTOR_BYTES
    cdef int i = 0
    while fnn_levels[i] != NULL:
        if fnn_levels[i].name.decode("ascii") == name:
            _K = fnn_levels[i]
            CPU_LEVEL = name
            VECTOR_BYTES = _K.vbytes
            return 0
        i += 1
    raise ImportError(f"fastnn: no CPU level {name!r} in this build")


CPU_FEATURES = _feature_names(fnn_cpu_features())   # the features of dispatch.h's list
                                                    # this CPU has
CPU_LEVELS = tuple(n for n, _ in _levels_built())   # the levels this build holds, best first
CPU_LEVELS_SUPPORTED = tuple(n for n, needs in _levels_built()   # those this CPU runs
                             if all(f in CPU_FEATURES for f in needs))
CPU_LEVEL = None              # the level every call runs (its name)
VECTOR_BYTES = 0              # its vector width
_use_level(pick_level(CPU_FEATURES, os.environ.get("FASTNN_CPU_LEVEL", "").strip().lower()))


def c_code(str table, str name):
    """The code C itself gives ``name`` in ``table`` (activations, costs, optimizers, kinds,
    statuses): looked up in the compiled rows, for the test that every copy agrees."""
    cdef const fnn_table_row *rows
    if table == "activations":
        rows = fnn_act_rows
    elif table == "costs":
        rows = fnn_cost_rows
    elif table == "optimizers":
        rows = fnn_opt_rows
    elif table == "kinds":
        rows = fnn_kind_rows
    elif table == "statuses":
        rows = fnn_status_rows
    else:
        raise ValueError(f"table: expected activations, costs, optimizers, kinds or statuses, "
                         f"got {table!r}")
    cdef int i = 0
    while rows[i].name != NULL:
        if rows[i].name.decode("ascii") == name:
            return rows[i].code
        i += 1
    raise KeyError(name)


def ksplit_blocks():
    """The K split's fixed blocks of the first layer's inputs (src_c/path_ksplit.h), also the
    fixed parts of the rows path's and the forward-only passes' BLAS calls (fnn_net.blocks):
    the CPUs this process may use, from 1 to FNN_KSPLIT_MAX_BLOCKS, fixed for the process, so
    that a call's results do not depend on its thread count.  Two blocks on a 2-core machine
    cost nothing over the old split by threads; more cores get more blocks to share."""
    import os
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    return max(1, min(int(n), FNN_KSPLIT_MAX_BLOCKS))


def openmp_enabled():
    """Return True when the engine was compiled with OpenMP."""
    return bool(fnn_openmp_enabled())


def omp_max_threads():
    """Return OpenMP's default team size (OMP_NUM_THREADS, CPU quota), 1 without OpenMP."""
    return fnn_omp_max_threads()


# ---------------------------------------------------------------------------------------------
# checks at the boundary

cdef object _dtype_of(list W):
    if not W:
        raise ValueError("weights: expected at least one layer, got an empty list")
    for l, w in enumerate(W):
        if w is None:
            continue
        if not isinstance(w, np.ndarray):
            raise TypeError(f"weights[{l}]: expected a numpy array, got {type(w).__name__}")
        if w.dtype != np.float64 and w.dtype != np.float32:
            raise TypeError(f"weights[{l}]: expected float32 or float64, got {w.dtype}")
        return w.dtype
    raise ValueError("weights: expected at least one layer with parameters")


cdef int _check_array(object a, str name, object dtype, int ndim, bint writeable) except -1:
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name}: expected a numpy array, got {type(a).__name__}")
    if a.dtype != dtype:
        raise TypeError(f"{name}: expected dtype {dtype}, got {a.dtype}")
    if not a.flags.c_contiguous:
        raise ValueError(f"{name}: expected a C-contiguous array")
    if writeable and not a.flags.writeable:
        raise ValueError(f"{name}: expected a writeable array")
    if ndim >= 0 and a.ndim != ndim:
        raise ValueError(f"{name}: expected {ndim} dimensions, got shape {a.shape}")
    return 0


cdef inline void* _ptr(cnp.ndarray a):
    return cnp.PyArray_DATA(a)


# a layer's description (config.layers[l]): kind, shapes (height, width, channels), the
# kind's integers, dropout on its output
LAYER_GEOM = {"dense": 0, "conv2d": 6, "maxpool2d": 4, "flatten": 0}


cdef int _fill_net(fnn_net *net, list W, list b, acts, int cost, double cost_scale,
                   int n_threads, object dtype, list layers=None) except -1:
    """The network from its parameters and, for layers other than dense ones, their
    descriptions (``layers[l]``: a dict with kind, in_shape, out_shape, geom, dropout,
    drop_book; None or a missing list: dense layers read off W's shapes)."""
    cdef int L = len(W), l, bad, j
    cdef fnn_layer *ly
    if L < 1 or L > FNN_MAX_LAYERS:
        raise ValueError(f"weights: expected 1 to {FNN_MAX_LAYERS} layers, got {L}")
    if len(b) != L or len(acts) != L:
        raise ValueError(f"biases/activations: expected {L} layers, got {len(b)} and {len(acts)}")
    if layers is not None and len(layers) != L:
        raise ValueError(f"layers: expected {L} layer descriptions, got {len(layers)}")
    if cost < 0 or cost >= FNN_N_COST:
        raise ValueError(f"cost: unknown cost code {cost}")
    memset_bytes(<char *>net, sizeof(fnn_net))
    net.L = L
    net.cost = cost
    net.cost_scale = cost_scale
    net.n_threads = n_threads if n_threads > 0 else 1
    net.blocks = ksplit_blocks()
    net.conv_half = 1 if conv_half() else 0
    for l in range(L):
        spec = layers[l] if layers is not None else None
        kind = "dense" if spec is None else spec.get("kind", "dense")
        if kind not in LAYER_KINDS:
            raise ValueError(f"layers[{l}]: expected a kind from {', '.join(LAYER_KINDS)}, got "
                             f"{kind!r}")
        a = int(acts[l])
        if a < 0 or a >= FNN_N_ACT or (a in _OUTPUT_ONLY_CODES and l != L - 1):
            raise ValueError(f"activations[{l}]: invalid activation code {a}")
        ly = &net.layer[l]
        ly.kind = LAYER_KINDS[kind]
        ly.act = a
        if spec is not None:
            ly.dropout = float(spec.get("dropout", 0.0))
            ly.drop_book = 1 if spec.get("drop_book", False) else 0
            if not (0.0 <= ly.dropout < 1.0):
                raise ValueError(f"layers[{l}]: expected a dropout in [0, 1), got {ly.dropout}")
        if kind == "dense":
            _check_array(W[l], f"weights[{l}]", dtype, 2, True)
            _check_array(b[l], f"biases[{l}]", dtype, -1, True)
            if W[l].shape[0] < 1 or W[l].shape[1] < 1:
                raise ValueError(f"weights[{l}]: expected a non-empty matrix, got shape "
                                 f"{W[l].shape}")
            if b[l].size != W[l].shape[0]:
                raise ValueError(f"biases[{l}]: expected {W[l].shape[0]} entries, got shape "
                                 f"{b[l].shape}")
            ly.in_shape[0] = ly.in_shape[1] = ly.out_shape[0] = ly.out_shape[1] = 1
            ly.in_shape[2] = W[l].shape[1]
            ly.out_shape[2] = W[l].shape[0]
            if l > 0 and W[l].shape[1] != net.layer[l - 1].n_out:
                raise ValueError(f"weights[{l}]: expected {net.layer[l - 1].n_out} columns (the "
                                 f"previous layer's size), got shape {W[l].shape}")
        else:
            ins, outs, geom = spec.get("in_shape"), spec.get("out_shape"), spec.get("geom", ())
            if ins is None or outs is None or len(ins) != 3 or len(outs) != 3:
                raise ValueError(f"layers[{l}]: expected in_shape and out_shape as (height, "
                                 f"width, channels), got {ins!r} and {outs!r}")
            if len(geom) != LAYER_GEOM[kind]:
                raise ValueError(f"layers[{l}]: expected {LAYER_GEOM[kind]} geometry integers "
                                 f"for {kind}, got {tuple(geom)!r}")
            for j in range(3):
                ly.in_shape[j] = int(ins[j])
                ly.out_shape[j] = int(outs[j])
            for j in range(len(geom)):
                ly.geom[j] = int(geom[j])
            if kind == "conv2d":
                want = (ly.geom[0], ly.geom[1], ly.in_shape[2], ly.out_shape[2])
                _check_array(W[l], f"weights[{l}]", dtype, 4, True)
                _check_array(b[l], f"biases[{l}]", dtype, -1, True)
                if tuple(W[l].shape) != want:
                    raise ValueError(f"weights[{l}]: expected a conv2d kernel of shape {want} "
                                     f"(kh, kw, in, out), got {W[l].shape}")
                if b[l].size != ly.out_shape[2]:
                    raise ValueError(f"biases[{l}]: expected {ly.out_shape[2]} entries, got "
                                     f"shape {b[l].shape}")
            else:
                if W[l] is not None or b[l] is not None:
                    raise ValueError(f"weights[{l}]/biases[{l}]: a {kind} layer has no "
                                     f"parameters; expected None")
                if a != ACTIVATIONS["identity"]:
                    raise ValueError(f"activations[{l}]: a {kind} layer takes no activation "
                                     f"(put it on the layer before), got code {a}")
        if kind in ("dense", "conv2d"):
            ly.W = _ptr(W[l])
            ly.b = _ptr(b[l])
        bad = fnn_net_finish(net)
        if bad != 0 and bad - 1 <= l:
            prev = (f"the previous layer's output {tuple(net.layer[l - 1].out_shape)}"
                    if l > 0 else "the input")
            raise ValueError(f"layers[{l}]: a {kind} layer with input {tuple(ly.in_shape)}, "
                             f"output {tuple(ly.out_shape)} and geometry {tuple(ly.geom)[:LAYER_GEOM[kind]]} "
                             f"does not fit itself or {prev}")
    net.L = L
    bad = fnn_net_finish(net)
    if bad != 0:
        raise ValueError(f"layers: layer {bad - 1} does not chain with the one before it")
    if dtype == np.float64:
        net.gemm = <void *>dgemm
    else:
        net.gemm = <void *>sgemm
    return 0


cdef void memset_bytes(char *p, size_t n) noexcept:
    cdef size_t i
    for i in range(n):
        p[i] = 0


cdef class Rows:
    """A data set's inputs as separate rows that the engine reads where they are (Nielsen's
    list of x columns: no (n, n_in) copy of the whole set).  ``arrays``: the rows, numpy
    arrays of one dtype (float32 or float64, whatever the engine's), C-contiguous, aligned,
    of n_in numbers each; this object holds them for as long as the engine may read them.
    ``addrs``: their data addresses (intp, the size of a pointer).  ``shape`` is (n, n_in) and
    a slice with step 1 is a Rows of those rows, as for the (n, n_in) matrix it stands for."""
    cdef readonly list arrays
    cdef readonly cnp.ndarray addrs
    cdef readonly object dtype
    cdef readonly Py_ssize_t n_in

    def __init__(self, arrays, Py_ssize_t n_in):
        cdef Py_ssize_t i, n
        cdef int typenum = -1, t
        cdef cnp.ndarray a
        if n_in < 1:
            raise ValueError(f"n_in: expected a positive int, got {n_in}")
        self.arrays = list(arrays)       # its own list: the caller's may change meanwhile
        n = len(self.arrays)
        self.n_in = n_in
        self.addrs = np.empty(n, dtype=np.intp)
        cdef cnp.npy_intp *ad = <cnp.npy_intp *>cnp.PyArray_DATA(self.addrs)
        for i in range(n):
            x = self.arrays[i]
            if not isinstance(x, np.ndarray):
                raise TypeError(f"rows[{i}]: expected a numpy array, got {type(x).__name__}")
            a = <cnp.ndarray>x
            t = cnp.PyArray_TYPE(a)
            if (t != cnp.NPY_FLOAT32 and t != cnp.NPY_FLOAT64) or not cnp.PyArray_ISNOTSWAPPED(a):
                raise TypeError(f"rows[{i}]: expected float32 or float64 in the machine's byte "
                                f"order, got {x.dtype}")
            if typenum >= 0 and t != typenum:
                raise TypeError(f"rows[{i}]: expected the dtype of the rows before it, "
                                f"{self.arrays[0].dtype}, got {x.dtype}")
            if not cnp.PyArray_IS_C_CONTIGUOUS(a) or not cnp.PyArray_ISALIGNED(a):
                raise ValueError(f"rows[{i}]: expected a C-contiguous, aligned array")
            if cnp.PyArray_SIZE(a) != n_in:
                raise ValueError(f"rows[{i}]: expected {n_in} numbers, got shape {x.shape}")
            typenum = t
            ad[i] = <cnp.npy_intp>cnp.PyArray_DATA(a)
        self.dtype = np.dtype(np.float32 if typenum == cnp.NPY_FLOAT32 else np.float64)

    @property
    def shape(self):
        return (self.addrs.shape[0], self.n_in)

    def __len__(self):
        return self.addrs.shape[0]

    def __getitem__(self, key):
        if not isinstance(key, slice):
            raise TypeError(f"Rows: expected a slice, got {type(key).__name__}")
        start, stop, step = key.indices(self.addrs.shape[0])
        if step != 1:
            raise ValueError(f"Rows: expected a slice with step 1, got step {step}")
        cdef Rows r = Rows.__new__(Rows)
        r.arrays = self.arrays[start:stop]
        r.addrs = self.addrs[start:stop]       # step 1: a contiguous view
        r.dtype = self.dtype
        r.n_in = self.n_in
        return r

    def to_matrix(self, dtype):
        """The rows as one (n, n_in) array of ``dtype`` (for what takes only matrices: the xp
        backend, the search for the layer that gave NaN)."""
        out = np.empty(self.shape, dtype=dtype)
        for i, a in enumerate(self.arrays):
            out[i] = a.reshape(-1)
        return out

    def first_nonfinite(self, dtype):
        """The index of the first row holding NaN or Inf once converted to ``dtype`` (the
        engine's: a float64 row read by a float32 engine is rounded first, and a finite
        double above the float range becomes Inf), or -1.  No temporary array."""
        cdef Py_ssize_t i, j, n = self.addrs.shape[0], k = self.n_in, bad = -1
        cdef const cnp.npy_intp *ad = <const cnp.npy_intp *>cnp.PyArray_DATA(self.addrs)
        cdef bint f32 = self.dtype == np.float32
        cdef bint narrow = not f32 and np.dtype(dtype) == np.float32
        cdef const float *pf
        cdef const double *pd
        cdef float v
        with nogil:
            for i in range(n):
                if f32:
                    pf = <const float *>ad[i]
                    for j in range(k):
                        if not isfinite(pf[j]):
                            bad = i
                            break
                elif narrow:
                    pd = <const double *>ad[i]
                    for j in range(k):
                        v = <float>pd[j]
                        if not isfinite(v):
                            bad = i
                            break
                else:
                    pd = <const double *>ad[i]
                    for j in range(k):
                        if not isfinite(pd[j]):
                            bad = i
                            break
                if bad >= 0:
                    break
        return bad


cdef int _fill_data(fnn_data *d, object X, object Y, const fnn_net *net, object dtype,
                    str name, bint rows_ok=True) except -1:
    """d from X (an (n, n_in) array of the engine's dtype, or, where rows_ok, a Rows, which
    the caller keeps alive for the engine's call) and Y (n, n_out)."""
    cdef Rows r
    cdef Py_ssize_t n
    _check_array(Y, f"{name} Y", dtype, 2, False)
    memset_bytes(<char *>d, sizeof(fnn_data))
    if isinstance(X, Rows):
        if not rows_ok:
            raise TypeError(f"{name} X: expected a numpy array, got {type(X).__name__}")
        r = <Rows>X
        if r.n_in != net.layer[0].n_in:
            raise ValueError(f"{name} X: expected {net.layer[0].n_in} columns, got rows of "
                             f"{r.n_in}")
        n = r.addrs.shape[0]
        d.rows = <const void *const *>cnp.PyArray_DATA(r.addrs)
        d.rows_type = FNN_ROWS_F32 if r.dtype == np.float32 else FNN_ROWS_F64
    else:
        _check_array(X, f"{name} X", dtype, 2, False)
        if X.shape[1] != net.layer[0].n_in:
            raise ValueError(f"{name} X: expected {net.layer[0].n_in} columns, got shape "
                             f"{X.shape}")
        n = X.shape[0]
        d.X = _ptr(X)
    if Y.shape[1] != net.layer[net.L - 1].n_out:
        raise ValueError(f"{name} Y: expected {net.layer[net.L - 1].n_out} columns, got shape "
                         f"{Y.shape}")
    if n != Y.shape[0]:
        raise ValueError(f"{name}: X has {n} rows but Y has {Y.shape[0]}")
    d.Y = _ptr(Y)
    d.n = n
    return 0


# ---------------------------------------------------------------------------------------------
# the GIL bridge: per-epoch callback and interrupt checks

cdef class _Ctx:
    cdef object on_epoch
    cdef object error


cdef int _epoch_cb(void *ctx, fnn_epoch_stats *st) noexcept nogil:
    with gil:
        c = <_Ctx>ctx
        try:
            d = {"epoch": st.epoch, "eta": st.eta, "batches": st.batches,
                 "run_cost": st.run_cost, "run_correct": st.run_correct, "run_n": st.run_n,
                 "train_cost": st.train_cost, "train_correct": st.train_correct,
                 "eval_cost": st.eval_cost, "eval_correct": st.eval_correct,
                 "sum_w2": st.sum_w2, "sum_w1": st.sum_w1, "threads": st.threads,
                 "wait_frac": st.wait_frac}
            r = c.on_epoch(d)
            if r is not None:
                if r.get("stop"):
                    st.stop = 1
                if r.get("eta") is not None:
                    st.eta = float(r["eta"])
            PyErr_CheckSignals()
        except BaseException as e:
            c.error = e
            return 1
    return 0


cdef int _check_cb(void *ctx) noexcept nogil:
    with gil:
        try:
            PyErr_CheckSignals()
        except BaseException as e:
            (<_Ctx>ctx).error = e
            return 1
    return 0


cdef int _train_dispatch(floating *tag, fnn_net *net, fnn_train_cfg *cfg) noexcept nogil:
    if floating is double:
        return _K.train_f64(net, cfg)
    else:
        return _K.train_f32(net, cfg)


def train(list W, list b, X, Y, config, int n_threads=1, int check_every=0):
    """Train W, b in place as ``config`` (a fastnn._core.TrainConfig) says; one call for the
    whole run, no GIL while the engine runs.

    The config's fields the engine reads: acts, cost, cost_scale (the tables' names), epochs,
    batch, eta, lmbda, l1, reg_n, optimizer (a name), momentum, beta1, beta2, rho, eps, step
    (the optimizer's step count so far), state (state[q][l] = (W-shaped, b-shaped) arrays of
    the optimizer's slot q for layer l: OPT_SLOTS[optimizer] slots), dropout, seed, orders
    (int32 (epochs, n) example order of each epoch, or None for 0..n-1), eval_data ((X, Y) or
    None), monitor_train, run_stats (also add up the cost and hits of the training
    mini-batches as they run), on_epoch (called with the GIL after every epoch with a dict of
    statistics; may return {"stop": True} or {"eta": new_eta}), path (None picks how to run
    the mini-batches; one of PATHS asks for that one where it applies), progress (None, or an
    int64 array of 2 that the engine keeps up to date while it runs: [0] the epoch running,
    [1] the mini-batches done in it).

    Returns a dict: status, epochs_done, diverged_epoch, step, eta, and path: how the
    mini-batches were run (PATHS).
    """
    cdef fnn_net net
    cdef fnn_train_cfg cfg
    cdef int status, l, q, n_slots, epochs, batch
    cdef _Ctx ctx = _Ctx()
    dtype = _dtype_of(W)
    acts = [ACTIVATIONS[a] for a in config.acts]
    _fill_net(&net, W, b, acts, COSTS[config.cost], float(config.cost_scale), n_threads, dtype,
              config.layers)
    memset_bytes(<char *>&cfg, sizeof(fnn_train_cfg))
    path = config.path
    if path is None:
        cfg.path = FNN_PATH_AUTO
    elif path in PATHS:
        cfg.path = PATHS.index(path)
    else:
        raise ValueError(f"path: expected None or one of {PATHS}, got {path!r}")
    _fill_data(&cfg.train, X, Y, &net, dtype, "training data")
    if cfg.train.n < 1:
        raise ValueError("training data: expected at least one example, got 0")
    epochs = config.epochs
    batch = config.batch
    if epochs < 0:
        raise ValueError(f"epochs: expected a non-negative int, got {epochs}")
    if batch < 1:
        raise ValueError(f"mini_batch_size: expected a positive int, got {batch}")
    if config.optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer: expected one of {', '.join(OPTIMIZERS)}, got "
                         f"{config.optimizer!r}")
    dropout = float(config.dropout)
    if not (0.0 <= dropout < 1.0):
        raise ValueError(f"dropout: expected a value in [0, 1), got {dropout}")
    cfg.epochs = epochs
    cfg.batch = batch
    cfg.eta = config.eta
    cfg.lmbda = config.lmbda
    cfg.l1 = config.l1
    cfg.reg_n = float(config.reg_n) if config.reg_n is not None else float(cfg.train.n)
    cfg.opt.code = OPTIMIZERS[config.optimizer]
    cfg.opt.mu = config.momentum
    cfg.opt.beta1 = config.beta1
    cfg.opt.beta2 = config.beta2
    cfg.opt.rho = config.rho
    cfg.opt.eps = config.eps
    cfg.opt.t = config.step
    cfg.dropout = dropout
    cfg.seed = config.seed
    n_slots = fnn_opt_slots(cfg.opt.code)
    state = config.state
    if n_slots:
        if state is None or len(state) < n_slots:
            raise ValueError(f"state: expected {n_slots} slot(s) of optimizer state for "
                             f"{config.optimizer!r}, got {0 if state is None else len(state)}")
        for q in range(n_slots):
            if len(state[q]) != net.L:
                raise ValueError(f"state[{q}]: expected one (W, b) pair per layer ({net.L}), "
                                 f"got {len(state[q])}")
            for l in range(net.L):
                if W[l] is None:
                    continue
                for k, like in ((0, W[l]), (1, b[l])):
                    s = state[q][l][k]
                    _check_array(s, f"state[{q}][{l}][{k}]", dtype, -1, True)
                    if s.size != like.size:
                        raise ValueError(f"state[{q}][{l}][{k}]: expected {like.size} entries, "
                                         f"got {s.size}")
                    if k == 0:
                        cfg.opt.sW[l][q] = _ptr(s)
                    else:
                        cfg.opt.sb[l][q] = _ptr(s)
    orders = config.orders
    if orders is not None:
        _check_array(orders, "orders", np.dtype(np.int32), 2, False)
        if orders.shape[0] < epochs or orders.shape[1] != cfg.train.n:
            raise ValueError(f"orders: expected shape ({epochs}, {cfg.train.n}), got {orders.shape}")
        if orders.size and (orders.min() < 0 or orders.max() >= cfg.train.n):
            raise ValueError("orders: indices out of range")
        cfg.orders = <const int32_t *>_ptr(orders)
    if config.eval_data is not None:
        eval_X, eval_Y = config.eval_data
        _fill_data(&cfg.eval, eval_X, eval_Y, &net, dtype, "evaluation data")
        cfg.monitor |= FNN_MON_EVAL
    if config.monitor_train:
        cfg.monitor |= FNN_MON_TRAIN
    if config.run_stats:
        cfg.monitor |= FNN_MON_RUN
    ctx.on_epoch = config.on_epoch
    if config.on_epoch is not None:
        cfg.on_epoch = _epoch_cb
    cfg.check = _check_cb
    cfg.ctx = <void *>ctx
    cfg.check_every = check_every
    cfg.ksplit_blocks = ksplit_blocks()
    adapt = config.adapt
    if adapt not in (0, 1, 2):
        raise ValueError(f"adapt: expected 0, 1 or 2, got {adapt!r}")
    cfg.adapt = adapt
    progress = config.progress
    if progress is not None:
        _check_array(progress, "progress", np.dtype(np.int64), 1, True)
        if progress.shape[0] < 2:
            raise ValueError(f"progress: expected an int64 array of 2, got shape {progress.shape}")
        cfg.progress = <int64_t *>_ptr(progress)
        cfg.progress_n = progress.shape[0]
    cdef bint is64 = dtype == np.float64
    with blas_single_thread():
        with nogil:
            if is64:
                status = _train_dispatch(<double *>NULL, &net, &cfg)
            else:
                status = _train_dispatch(<float *>NULL, &net, &cfg)
    if status == FNN_NOMEM:
        raise MemoryError("fastnn: the engine could not allocate its work buffers")
    if ctx.error is not None:
        err = ctx.error
        ctx.error = None
        raise err
    return {"status": status, "epochs_done": cfg.epochs_done,
            "diverged_epoch": cfg.diverged_epoch, "step": cfg.opt.t, "eta": cfg.eta,
            "path": PATHS[cfg.path], "threads": cfg.threads}


def predict(list W, list b, acts, X, int n_threads=1, list layers=None):
    """Return the network's output (n, n_out) for X (n, n_in), computed in the engine."""
    cdef fnn_net net
    cdef int status
    cdef int64_t n
    dtype = _dtype_of(W)
    _fill_net(&net, W, b, acts, 0, 1.0, n_threads, dtype, layers)
    _check_array(X, "X", dtype, 2, False)
    if X.shape[1] != net.layer[0].n_in:
        raise ValueError(f"X: expected {net.layer[0].n_in} columns, got shape {X.shape}")
    n = X.shape[0]
    out = np.empty((n, net.layer[net.L - 1].n_out), dtype=dtype)
    if n == 0:
        return out
    cdef void *px = _ptr(X)
    cdef void *po = _ptr(out)
    cdef bint is64 = dtype == np.float64
    with blas_single_thread():
        with nogil:
            if is64:
                status = _K.predict_f64(&net, <const double *>px, n, <double *>po)
            else:
                status = _K.predict_f32(&net, <const float *>px, n, <float *>po)
    if status == FNN_NOMEM:
        raise MemoryError("fastnn: the engine could not allocate its work buffers")
    return out


def evaluate(list W, list b, acts, int cost, double cost_scale, X, Y, int n_threads=1,
             list layers=None):
    """Return (cost summed over the examples, number of argmax hits) for (X, Y)."""
    cdef fnn_net net
    cdef fnn_data data
    cdef double c = 0
    cdef int64_t hits = 0
    cdef int status
    dtype = _dtype_of(W)
    _fill_net(&net, W, b, acts, cost, cost_scale, n_threads, dtype, layers)
    _fill_data(&data, X, Y, &net, dtype, "data")
    if data.n == 0:
        return 0.0, 0
    cdef bint is64 = dtype == np.float64
    with blas_single_thread():
        with nogil:
            if is64:
                status = _K.evaluate_f64(&net, &data, &c, &hits)
            else:
                status = _K.evaluate_f32(&net, &data, &c, &hits)
    if status == FNN_NOMEM:
        raise MemoryError("fastnn: the engine could not allocate its work buffers")
    return c, hits


def gradient(list W, list b, acts, int cost, double cost_scale, X, Y, list layers=None):
    """Return (gW, gb, cost): gradients of the cost summed over (X, Y), and the cost sum."""
    cdef fnn_net net
    cdef fnn_data data
    cdef double c = 0
    cdef int status, l
    dtype = _dtype_of(W)
    _fill_net(&net, W, b, acts, cost, cost_scale, 1, dtype, layers)
    _fill_data(&data, X, Y, &net, dtype, "data", False)   # (fnn_gradient reads a matrix)
    gW = [None if w is None else np.zeros_like(w) for w in W]
    gb = [None if x is None else np.zeros(x.size, dtype=dtype) for x in b]
    cdef bint is64 = dtype == np.float64
    cdef void **pw = <void **>malloc(sizeof(void *) * net.L)
    cdef void **pb = <void **>malloc(sizeof(void *) * net.L)
    if pw == NULL or pb == NULL:
        free(pw)
        free(pb)
        raise MemoryError()
    for l in range(net.L):
        pw[l] = _ptr(gW[l]) if gW[l] is not None else NULL
        pb[l] = _ptr(gb[l]) if gb[l] is not None else NULL
    try:
        with blas_single_thread():
            with nogil:
                if is64:
                    status = _K.gradient_f64(&net, &data, <double **>pw, <double **>pb, &c)
                else:
                    status = _K.gradient_f32(&net, &data, <float **>pw, <float **>pb, &c)
    finally:
        free(pw)
        free(pb)
    if status == FNN_NOMEM:
        raise MemoryError("fastnn: the engine could not allocate its work buffers")
    return gW, gb, c


# ---------------------------------------------------------------------------------------------
# random.shuffle, replayed in C: the same Mersenne Twister words and the same rejection
# sampling as CPython's random.shuffle / _randbelow / getrandbits(k <= 32), so the example
# orders are exactly those the book's code would draw, at a fraction of the cost.

cdef enum:
    MT_N = 624
    MT_M = 397

cdef extern from *:
    """
    /* the bits of x (int.bit_length): one instruction where the compiler has it; the loop
     * it replaces was a third of shuffle_orders' time for 50,000 examples */
    static inline int fnn_bit_length(unsigned long long x) {
    #if defined(__GNUC__) || defined(__clang__)
        return x ? 64 - __builtin_clzll(x) : 0;
    #else
        int k = 0;
        while (x) { k++; x >>= 1; }
        return k;
    #endif
    }
    """
    int fnn_bit_length(unsigned long long x) noexcept nogil

cdef inline unsigned int _mt_next(unsigned int *mt, int *index) noexcept nogil:
    cdef unsigned int y
    cdef int kk
    cdef unsigned int mag01[2]
    mag01[0] = 0
    mag01[1] = 0x9908b0dfU
    if index[0] >= MT_N:
        for kk in range(MT_N - MT_M):
            y = (mt[kk] & 0x80000000U) | (mt[kk + 1] & 0x7fffffffU)
            mt[kk] = mt[kk + MT_M] ^ (y >> 1) ^ mag01[y & 1]
        for kk in range(MT_N - MT_M, MT_N - 1):
            y = (mt[kk] & 0x80000000U) | (mt[kk + 1] & 0x7fffffffU)
            mt[kk] = mt[kk + (MT_M - MT_N)] ^ (y >> 1) ^ mag01[y & 1]
        y = (mt[MT_N - 1] & 0x80000000U) | (mt[0] & 0x7fffffffU)
        mt[MT_N - 1] = mt[MT_M - 1] ^ (y >> 1) ^ mag01[y & 1]
        index[0] = 0
    y = mt[index[0]]
    index[0] += 1
    y ^= (y >> 11)
    y ^= (y << 7) & 0x9d2c5680U
    y ^= (y << 15) & 0xefc60000U
    y ^= (y >> 18)
    return y


def shuffle_orders(rng, Py_ssize_t n, int epochs, int32_t[:, ::1] out):
    """Fill out[e] with the order after the (e+1)-th ``rng.shuffle`` of range(n).

    ``rng`` is the ``random`` module or a ``random.Random``; its state advances exactly as
    that many ``rng.shuffle`` calls on an n-element list would advance it."""
    cdef unsigned int mt[624]
    cdef int index, k, e
    cdef Py_ssize_t i, j
    cdef unsigned long long r, bound
    cdef int32_t tmp
    if n > 2147483647:
        raise ValueError(f"n: expected at most 2**31 - 1 examples, got {n}")
    if out.shape[0] < epochs or out.shape[1] != n:
        raise ValueError(f"out: expected shape ({epochs}, {n})")
    state = rng.getstate()
    version, internal, gauss = state
    if len(internal) != 625:
        raise ValueError("rng: unexpected Mersenne Twister state")
    for k in range(624):
        mt[k] = <unsigned int>internal[k]
    index = internal[624]
    cdef int32_t[::1] perm = np.arange(n, dtype=np.int32)
    with nogil:
        for e in range(epochs):
            i = n - 1
            while i >= 1:
                bound = <unsigned long long>(i + 1)
                k = fnn_bit_length(bound)
                r = _mt_next(mt, &index) >> (32 - k)
                while r >= bound:
                    r = _mt_next(mt, &index) >> (32 - k)
                j = <Py_ssize_t>r
                tmp = perm[i]
                perm[i] = perm[j]
                perm[j] = tmp
                i -= 1
            for i in range(n):
                out[e, i] = perm[i]
    rng.setstate((version, tuple([mt[k] for k in range(624)]) + (index,), gauss))

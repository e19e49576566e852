"""The array-API backend: the engine's training semantics written once against a module ``xp``.

``xp`` is numpy (on the CPU, the way CI tests this file) or CuPy (``device='cuda'``).  The
semantics are DESIGN.md's, the same as the compiled engine's (fastnn/_engine.pyx,
src_c/fastnn_engine_impl.h): the same tables, gradient, optimizers, per-epoch statistics,
callback dict, status codes and divergence rule.

Layout on the device.  Every layer's weights and bias are stored side by side as one
``(n_out, n_in + 1)`` block ``[W | b]`` of a single flat parameter vector ``P``; every
activation buffer carries a trailing column of ones.  So

    Z   (m, n_out)      = A_in (m, n_in + 1) @ [W | b]^T     the forward GEMM adds the bias
    G   (n_out, n_in+1) = D (m, n_out)^T @ A_in (m, n_in + 1)  gW and gb in one GEMM

and one optimizer kernel steps all layers at once over the flat ``P`` (a 0/1 mask keeps
regularization off the biases).  The data go to the device once per call, with their column
of ones; each epoch gathers its order once (two ``take`` kernels), so a mini-batch is a
contiguous slice.

Kernels per mini-batch, for L weight layers (with CuPy; numpy runs the same steps as plain
numpy expressions):

    forward    L GEMMs + (L-1) bias-free activation kernels (dropout fused in)
    output     1 kernel: activation, cost and hits (accumulated on the device), output delta
    backward   (L-1) GEMMs + (L-1) kernels delta * act'(z) (dropout fused in)
    gradient   L GEMMs (weights and biases together)
    update     1 kernel for every parameter of every layer (sgd / momentum / adam, L1, L2)

that is 3L-1 GEMMs and 2L elementwise kernels, 5L-1 launches: 9 for [784, 30, 10].  Nothing
is copied between host and device inside an epoch; each epoch ends with one small read-back
(the cost/hit accumulators and the weight norms).

Dropout: the keep mask of hidden unit ``j`` of example slot ``i`` is the engine's counter-based
hash of (seed, epoch, batch start + i, layer, j) (splitmix64, as in src_c/fastnn.h), computed
inside the activation kernels on the device: nothing is stored, and the masks are the CPU
engine's bit for bit.
"""
import math

import numpy as np

from fastnn._config import import_engine

_engine = import_engine()

ACT_CODES = {"identity": 0, "linear": 0, "sigmoid": 1, "tanh": 2, "relu": 3, "softmax": 4}
COST_CODES = {"quadratic": 0, "cross_entropy": 1, "log_likelihood": 2}
OPT_CODES = {"sgd": 0, "momentum": 1, "adam": 2}
IDENTITY, SIGMOID, TANH, RELU, SOFTMAX = 0, 1, 2, 3, 4
QUADRATIC, CROSS_ENTROPY, LOG_LIKELIHOOD = 0, 1, 2
SGD, MOMENTUM, ADAM = 0, 1, 2

# the engine's tables and status codes are the contract
assert all(_engine.ACTIVATIONS[k] == v for k, v in ACT_CODES.items())
assert all(_engine.COSTS[k] == v for k, v in COST_CODES.items())
assert all(_engine.OPTIMIZERS[k] == v for k, v in OPT_CODES.items())

STATUS_OK = _engine.STATUS_OK
STATUS_STOPPED = _engine.STATUS_STOPPED
STATUS_INTERRUPTED = _engine.STATUS_INTERRUPTED
STATUS_DIVERGED = _engine.STATUS_DIVERGED
STATUS_CALLBACK_ERROR = _engine.STATUS_CALLBACK_ERROR

# rows per chunk when evaluating or predicting
EVAL_ROWS = 8192
# threads per block of the elementwise kernels
BLOCK = 256
MAX_GRID = 65535

__all__ = ["train", "predict", "evaluate", "resolve_xp", "dropout_keep", "cuda_source",
           "EVAL_ROWS"]


# ---------------------------------------------------------------------------------------------
# the CUDA kernels (CuPy RawModule; REAL is float or double, set with -DREAL=...)

_CUDA_SOURCE = r"""
// fastnn xp backend: the elementwise kernels of one mini-batch step.  REAL is float or double.
// Every kernel is a grid-stride loop, so any launch shape (even one thread) computes all of it.
// Matrices are row-major with a leading dimension ld (elements between rows).
#ifndef REAL
#define REAL float
#endif
#define FNN_IDENTITY 0
#define FNN_SIGMOID 1
#define FNN_TANH 2
#define FNN_RELU 3
#define FNN_SOFTMAX 4
#define FNN_QUADRATIC 0
#define FNN_CROSS_ENTROPY 1
#define FNN_LOG_LIKELIHOOD 2
#define FNN_SGD 0
#define FNN_MOMENTUM 1
#define FNN_ADAM 2
#define FNN_DBL_MAX 1.7976931348623157e308

typedef unsigned long long fnn_u64;

#define FNN_LOOP(t, total) \
    for (long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x; t < (total); \
         t += (long long)blockDim.x * gridDim.x)

__device__ __forceinline__ float fnn_exp(float x) { return expf(x); }
__device__ __forceinline__ double fnn_exp(double x) { return exp(x); }
__device__ __forceinline__ float fnn_fabs(float x) { return fabsf(x); }
__device__ __forceinline__ double fnn_fabs(double x) { return fabs(x); }
__device__ __forceinline__ float fnn_tanh(float x) { return tanhf(x); }
__device__ __forceinline__ double fnn_tanh(double x) { return tanh(x); }
__device__ __forceinline__ float fnn_sqrt(float x) { return sqrtf(x); }
__device__ __forceinline__ double fnn_sqrt(double x) { return sqrt(x); }

// the engine's sigmoid: exp of a non-positive number only
__device__ __forceinline__ REAL fnn_sigmoid(REAL z) {
    REAL e = fnn_exp(-fnn_fabs(z));
    REAL r = (REAL)1 / ((REAL)1 + e);
    return z >= 0 ? r : e * r;
}

__device__ __forceinline__ REAL fnn_act(REAL v, int act) {
    switch (act) {
    case FNN_SIGMOID: return fnn_sigmoid(v);
    case FNN_TANH: return fnn_tanh(v);
    case FNN_RELU: return v > 0 ? v : (REAL)0;
    default: return v;
    }
}

// d * act'(z), with a = act(z); relu'(0) = 0
__device__ __forceinline__ REAL fnn_act_back(REAL d, REAL z, REAL a, int act) {
    switch (act) {
    case FNN_SIGMOID: return d * (a * ((REAL)1 - a));
    case FNN_TANH: return d * ((REAL)1 - a * a);
    case FNN_RELU: return z > 0 ? d : (REAL)0;
    default: return d;
    }
}

// splitmix64, the engine's dropout hash (src_c/fastnn.h)
__device__ __forceinline__ fnn_u64 fnn_mix64(fnn_u64 x) {
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

// the dropout multiplier k/(1-p) of unit j of example slot slot0 + i of hidden layer `layer`
__device__ __forceinline__ REAL fnn_keep(fnn_u64 seed, int epoch, long long slot0, long long i,
                                         int layer, int j, double p) {
    fnn_u64 slot = ((fnn_u64)epoch << 40) ^ (fnn_u64)(slot0 + i);
    fnn_u64 h = fnn_mix64(seed ^ fnn_mix64(slot ^ fnn_mix64((fnn_u64)layer ^
                                                            fnn_mix64((fnn_u64)j))));
    double u = (double)(h >> 11) * (1.0 / 9007199254740992.0);
    return u < p ? (REAL)0 : (REAL)(1.0 / (1.0 - p));
}

// act_forward: A (m, n; ld lda) = act(Z (m, n; ld ldz)) [* dropout multipliers]
extern "C" __global__ void fnn_act_forward(REAL* __restrict__ A, int lda,
                                           const REAL* __restrict__ Z, int ldz,
                                           long long m, int n, int act, double p,
                                           fnn_u64 seed, int epoch, long long slot0, int layer) {
    FNN_LOOP(t, m * n) {
        long long i = t / n;
        int j = (int)(t - i * n);
        REAL a = fnn_act(Z[i * ldz + j], act);
        if (p > 0) a *= fnn_keep(seed, epoch, slot0, i, layer, j, p);
        A[i * lda + j] = a;
    }
}

// act_backward: D (m, n) = Dn (m, n; ld ldn) * act'(Z) [* dropout multipliers]
extern "C" __global__ void fnn_act_backward(REAL* __restrict__ D, int ldd,
                                            const REAL* __restrict__ Dn, int ldn,
                                            const REAL* __restrict__ Z, int ldz,
                                            long long m, int n, int act, double p,
                                            fnn_u64 seed, int epoch, long long slot0,
                                            int layer) {
    FNN_LOOP(t, m * n) {
        long long i = t / n;
        int j = (int)(t - i * n);
        REAL z = Z[i * ldz + j];
        REAL d = fnn_act_back(Dn[i * ldn + j], z, fnn_act(z, act), act);
        if (p > 0) d *= fnn_keep(seed, epoch, slot0, i, layer, j, p);
        D[i * ldd + j] = d;
    }
}

// output: one thread per example.  A (m, no) = act(Z); with Y: cost and hits added to
// acc[0], acc[1]; with D: D = cost_scale * dC/dz.
extern "C" __global__ void fnn_output(const REAL* __restrict__ Z, int ldz,
                                      const REAL* __restrict__ Y, int ldy,
                                      REAL* __restrict__ A, int lda,
                                      REAL* __restrict__ D, int ldd,
                                      double* acc, long long m, int no, int act, int cost,
                                      double scale, int has_y, int has_d) {
    double csum = 0, hits = 0;
    FNN_LOOP(r, m) {
        const REAL* z = Z + r * ldz;
        REAL* a = A + r * lda;
        if (act == FNN_SOFTMAX) {
            REAL zmax = z[0];
            for (int j = 1; j < no; j++) zmax = z[j] > zmax ? z[j] : zmax;
            double s = 0;
            for (int j = 0; j < no; j++) { a[j] = fnn_exp(z[j] - zmax); s += a[j]; }
            const REAL inv = (REAL)(1.0 / s);
            for (int j = 0; j < no; j++) a[j] *= inv;
        } else {
            for (int j = 0; j < no; j++) a[j] = fnn_act(z[j], act);
        }
        if (!has_y) continue;
        const REAL* y = Y + r * ldy;
        // hits: first maximum of a against first maximum of y
        int ja = 0, jy = 0;
        for (int j = 1; j < no; j++) {
            if (a[j] > a[ja]) ja = j;
            if (y[j] > y[jy]) jy = j;
        }
        hits += (ja == jy);
        double c = 0;
        if (cost == FNN_QUADRATIC) {
            for (int j = 0; j < no; j++) {
                double e = (double)a[j] - (double)y[j];
                c += 0.5 * e * e;
            }
        } else if (cost == FNN_CROSS_ENTROPY) {
            for (int j = 0; j < no; j++) {
                double aa = a[j], yy = y[j];
                double e = -yy * log(aa) - (1 - yy) * log(1 - aa);
                if (isnan(e)) e = 0;
                else if (isinf(e)) e = e > 0 ? FNN_DBL_MAX : -FNN_DBL_MAX;
                c += e;
            }
        } else {  // log-likelihood; with a softmax output ln a_j = z_j - logsumexp(z)
            double lse = 0;
            if (act == FNN_SOFTMAX) {
                double zm = z[0], s = 0;
                for (int j = 1; j < no; j++) zm = (double)z[j] > zm ? (double)z[j] : zm;
                for (int j = 0; j < no; j++) s += exp((double)z[j] - zm);
                lse = zm + log(s);
            }
            for (int j = 0; j < no; j++) {
                if (y[j] == 0) continue;
                double la = (act == FNN_SOFTMAX) ? (double)z[j] - lse : log((double)a[j]);
                c -= (double)y[j] * la;
            }
        }
        csum += scale * c;
        if (!has_d) continue;
        REAL* d = D + r * ldd;
        const REAL sc = (REAL)scale;
        for (int j = 0; j < no; j++) d[j] = sc * (a[j] - y[j]);
        if (cost == FNN_QUADRATIC) {
            if (act == FNN_SOFTMAX) {  // the softmax Jacobian: a * (g - sum(a g))
                REAL dot = 0;
                for (int j = 0; j < no; j++) dot += a[j] * d[j];
                for (int j = 0; j < no; j++) d[j] = a[j] * (d[j] - dot);
            } else if (act != FNN_IDENTITY) {
                for (int j = 0; j < no; j++) d[j] = fnn_act_back(d[j], z[j], a[j], act);
            }
        }
    }
    if (has_y && (csum != 0 || hits != 0)) {
        atomicAdd(acc, csum);
        atomicAdd(acc + 1, hits);
    }
}

// update: every parameter of every layer, flat.  g = G/m (+ (lmbda/n) w + (l1/n) sign(w) where
// mask is 1, i.e. on weights), then the sgd / momentum / adam step (DESIGN.md).
extern "C" __global__ void fnn_update(REAL* __restrict__ P, const REAL* __restrict__ G,
                                      REAL* __restrict__ S1, REAL* __restrict__ S2,
                                      const REAL* __restrict__ mask, long long n, int opt,
                                      int reg, REAL inv_m, REAL eta, REAL wd, REAL l1, REAL mu,
                                      REAL c1, REAL c2, REAL eps, REAL lr) {
    FNN_LOOP(t, n) {
        REAL w = P[t];
        REAL g = G[t] * inv_m;
        if (reg && mask[t] != 0) g += wd * w + l1 * (REAL)((w > 0) - (w < 0));
        if (opt == FNN_SGD) {
            P[t] = w - eta * g;
        } else if (opt == FNN_MOMENTUM) {
            REAL v = mu * S1[t] - eta * g;
            S1[t] = v;
            P[t] = w + v;
        } else {
            REAL m1 = S1[t], v2 = S2[t];
            m1 += c1 * (g - m1);
            v2 += c2 * (g * g - v2);
            S1[t] = m1;
            S2[t] = v2;
            P[t] = w - lr * m1 / (fnn_sqrt(v2) + eps);
        }
    }
}
"""


def cuda_source():
    """Return the CUDA source of the fused kernels (compiled with -DREAL=float or double)."""
    return _CUDA_SOURCE


# ---------------------------------------------------------------------------------------------
# kernels: the same five operations, as CUDA kernels or as numpy expressions

def _ld(a):
    """Leading dimension (elements between rows) of a row-major 2-D view."""
    if a.ndim != 2 or (a.shape[1] > 1 and a.strides[1] != a.itemsize):
        raise ValueError(f"internal: expected a row-major 2-D view, got strides {a.strides}")
    return np.int32(a.strides[0] // a.itemsize)


def _grid(total, block=BLOCK):
    return max(1, min((int(total) + block - 1) // block, MAX_GRID))


_NO_DROP = (0.0, 0, 0, 0, 0)


class RawKernels:
    """The fused kernels of _CUDA_SOURCE, started through ``launch(name, grid, block, args)``.

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
        p, seed, epoch, slot0, layer = drop or _NO_DROP
        self.launch("fnn_act_forward", _grid(m * n), BLOCK,
                    (A, _ld(A), Z, _ld(Z), np.int64(m), np.int32(n), np.int32(act),
                     np.float64(p), np.uint64(seed), np.int32(epoch), np.int64(slot0),
                     np.int32(layer)))

    def act_backward(self, D, Dn, Z, act, drop=None):
        # D (m, n) = Dn (m, n) view * act'(Z (m, n))
        m, n = Z.shape
        p, seed, epoch, slot0, layer = drop or _NO_DROP
        self.launch("fnn_act_backward", _grid(m * n), BLOCK,
                    (D, _ld(D), Dn, _ld(Dn), Z, _ld(Z), np.int64(m), np.int32(n),
                     np.int32(act), np.float64(p), np.uint64(seed), np.int32(epoch),
                     np.int64(slot0), np.int32(layer)))

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

    def update(self, P, G, S1, S2, mask, opt, inv_m, eta, wd, l1, mu, beta1, beta2, eps, lr):
        r = self.real
        reg = mask is not None and (wd != 0 or l1 != 0)
        d = self._dummy
        self.launch("fnn_update", _grid(P.size), BLOCK,
                    (P, G, d if S1 is None else S1, d if S2 is None else S2,
                     mask if reg else d, np.int64(P.size), np.int32(opt), np.int32(reg),
                     r(inv_m), r(eta), r(wd), r(l1), r(mu), r(1.0 - beta1), r(1.0 - beta2),
                     r(eps), r(lr)))


def _np_act(z, act):
    if act == SIGMOID:
        e = np.exp(-np.abs(z))
        r = 1 / (1 + e)
        return np.where(z >= 0, r, e * r)
    if act == TANH:
        return np.tanh(z)
    if act == RELU:
        return np.where(z > 0, z, z.dtype.type(0))
    return z.copy()


def _np_act_back(d, z, a, act):
    if act == SIGMOID:
        return d * (a * (1 - a))
    if act == TANH:
        return d * (1 - a * a)
    if act == RELU:
        return np.where(z > 0, d, d.dtype.type(0))
    return d.copy()


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
        p, seed, epoch, slot0, layer = drop
        k = dropout_keep(seed, epoch, slot0, m, layer, n, p)
        return k * self.real(1.0 / (1.0 - p))

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
        if act == SOFTMAX:
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
            if cost == QUADRATIC:
                c = 0.5 * np.sum((a64 - y64) ** 2)
            elif cost == CROSS_ENTROPY:
                e = -y64 * np.log(a64) - (1 - y64) * np.log(1 - a64)
                c = np.sum(np.nan_to_num(e, nan=0.0))
            else:
                if act == SOFTMAX:
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
        d = self.real(scale) * (a - Y)
        if cost == QUADRATIC:
            if act == SOFTMAX:
                d = a * (d - (a * d).sum(axis=1, keepdims=True))
            elif act != IDENTITY:
                d = _np_act_back(d, Z, a, act)
        D[...] = d

    def update(self, P, G, S1, S2, mask, opt, inv_m, eta, wd, l1, mu, beta1, beta2, eps, lr):
        r = self.real
        g = G * r(inv_m)
        if mask is not None and (wd != 0 or l1 != 0):
            g = g + np.where(mask != 0, r(wd) * P + r(l1) * np.sign(P), r(0))
        if opt == SGD:
            P -= r(eta) * g
        elif opt == MOMENTUM:
            S1[...] = r(mu) * S1 - r(eta) * g
            P += S1
        else:
            S1 += r(1.0 - beta1) * (g - S1)
            S2 += r(1.0 - beta2) * (g * g - S2)
            P -= r(lr) * S1 / (np.sqrt(S2) + r(eps))


_MODULES = {}


def _cupy_launcher(cupy, dtype):
    """A launch(name, grid, block, args) over the RawModule compiled for dtype and the current
    device (compiled once per process, and cached by CuPy on disk)."""
    key = (np.dtype(dtype).char, cupy.cuda.runtime.getDevice())
    entry = _MODULES.get(key)
    if entry is None:
        real = "double" if np.dtype(dtype) == np.float64 else "float"
        module = cupy.RawModule(code=_CUDA_SOURCE, options=("-DREAL=" + real,))
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
        if a not in ACT_CODES or (a == "softmax" and l != L - 1):
            allowed = ", ".join(ACT_CODES) if l == L - 1 else ", ".join(
                k for k in ACT_CODES if k != "softmax")
            raise ValueError(f"activations[{l}]: expected one of {allowed}, got {a!r}")
        codes.append(ACT_CODES[a])
    if cost is not None and cost not in COST_CODES:
        raise ValueError(f"cost: expected one of {', '.join(COST_CODES)}, got {cost!r}")
    return dtype, sizes, codes


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

    def __init__(self, xp, kern, W, b, sizes, acts, dtype):
        self.xp, self.kern, self.dtype = xp, kern, np.dtype(dtype)
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

    def upload_ext(self, X):
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

    def train_batch(self, inp, y, m, acc, cost, scale, drop, opt):
        """One mini-batch: forward, output delta, backward, one update of all parameters."""
        xp, kern, L = self.xp, self.kern, self.L
        v = self.cut(m)
        zL = self.forward(inp, v, drop)
        kern.output(zL, y, v["Aout"], v["D"][L - 1], acc, self.acts[L - 1], cost, scale)
        for l in range(L - 1, 0, -1):
            xp.matmul(v["D"][l], self.Wb[l], out=v["Dn"][l - 1])
            dl = None if drop is None else drop + (l - 1,)
            kern.act_backward(v["D"][l - 1], v["Dnh"][l - 1], v["Z"][l - 1], self.acts[l - 1],
                              dl)
        for l in range(L):
            xp.matmul(v["DT"][l], inp if l == 0 else v["A"][l - 1], out=self.Gv[l])
        kern.update(self.P, self.G, *opt[:3], inv_m=1.0 / m, **opt[3])

    def evaluate_set(self, Xe, Ye, acc, cost, scale):
        """Cost sum and hits over device data (Xe with its ones column) into acc (2,)."""
        n = Xe.shape[0]
        for s in range(0, n, self.rows):
            m = min(self.rows, n - s)
            v = self.cut(m)
            zL = self.forward(Xe[s:s + m], v)
            self.kern.output(zL, Ye[s:s + m], v["Aout"], None, acc, self.acts[-1], cost, scale)

    def norms(self, mask):
        """Device (3,) float64: sum w^2, sum |w| over the weights, sum |b| over the biases."""
        xp = self.xp
        p = self.P.astype(np.float64)
        ap = xp.abs(p)
        w = mask.astype(np.float64)
        return xp.stack([xp.sum(p * p * w), xp.sum(ap * w), xp.sum(ap * (1 - w))])


# ---------------------------------------------------------------------------------------------
# the entry points

def train(W, b, acts, cost, X, Y, *, epochs, batch, eta, cost_scale=1.0, lmbda=0.0, l1=0.0,
          reg_n=None, optimizer="sgd", momentum=0.0, beta1=0.9, beta2=0.999, eps=1e-7,
          adam_t=0, state1=None, state2=None, dropout=0.0, seed=0, orders=None,
          eval_data=None, monitor_train=False, run_stats=False, on_epoch=None, device="cuda",
          xp=None):
    """Train W, b (host numpy lists, W[l] (n_out, n_in), b[l] (n_out,)) in place.

    Same arguments, callback dict and result as the engine's ``train`` (fastnn/_engine.pyx),
    with names instead of table codes.  The parameters, data, orders and evaluation data are
    copied to the device once; all epochs run there; the parameters (and the optimizer state
    in state1/state2) come back at the end, also when training stops, diverges (the last
    finite epoch's weights, status DIVERGED) or is interrupted by an exception.

    Returns a dict: status, epochs_done, diverged_epoch, adam_t, eta.
    """
    dtype, sizes, act_codes = _check_net(W, b, acts, cost)
    _check_data(X, Y, dtype, sizes, "training data")
    n = int(X.shape[0])
    if n < 1:
        raise ValueError("training data: expected at least one example, got 0")
    epochs, batch = int(epochs), int(batch)
    if epochs < 0:
        raise ValueError(f"epochs: expected a non-negative int, got {epochs}")
    if batch < 1:
        raise ValueError(f"mini_batch_size: expected a positive int, got {batch}")
    if optimizer not in OPT_CODES:
        raise ValueError(f"optimizer: expected one of {', '.join(OPT_CODES)}, got {optimizer!r}")
    opt = OPT_CODES[optimizer]
    dropout = float(dropout)
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout: expected a value in [0, 1), got {dropout}")
    L = len(W)
    for name, st, need in (("state1", state1, opt != SGD), ("state2", state2, opt == ADAM)):
        if not need:
            continue
        if st is None or len(st) != L:
            what = "Adam state" if name == "state2" else "optimizer state"
            raise ValueError(f"{name}: expected one (W, b) pair of {what} per layer")
        for l in range(L):
            for k, like in ((0, W[l]), (1, b[l])):
                s = st[l][k]
                if not isinstance(s, np.ndarray) or s.dtype != dtype:
                    raise TypeError(f"{name}[{l}][{k}]: expected a numpy array of dtype {dtype}")
                if not s.flags.writeable:
                    raise ValueError(f"{name}[{l}][{k}]: expected a writeable array")
                if s.size != like.size:
                    raise ValueError(f"{name}[{l}][{k}]: expected {like.size} entries, got "
                                     f"{s.size}")
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
    if eval_data is not None:
        ex, ey = eval_data
        _check_data(ex, ey, dtype, sizes, "evaluation data")
    xp = resolve_xp(xp, device)

    cost_code = COST_CODES[cost]
    reg_n = float(reg_n) if reg_n is not None else float(n)
    wd, l1c = float(lmbda) / reg_n, float(l1) / reg_n
    nb = (n + batch - 1) // batch
    m_full = min(batch, n)
    m_last = n - (nb - 1) * batch
    n_eval = (n if monitor_train else 0, ex.shape[0] if ex is not None else 0)
    eval_rows = min(EVAL_ROWS, max(n_eval))
    kern = _kernels_for(xp, dtype)
    net = _DeviceNet(xp, kern, W, b, sizes, act_codes, dtype)
    host_pairs = [(W[l], b[l]) for l in range(L)]
    state_pairs = [st for st in (state1, state2)]
    S = [None, None]
    result = {"status": STATUS_OK, "epochs_done": 0, "diverged_epoch": -1,
              "adam_t": int(adam_t), "eta": float(eta), "path": "xp"}
    if epochs == 0:
        return result

    # everything goes to the device once
    net.alloc(max(m_full, eval_rows), m_full)
    for k in range(1 + (opt == ADAM)):
        if opt != SGD:
            S[k] = xp.asarray(net.pack(state_pairs[k]))
    mask = net.weight_mask()
    Xd, Yd = net.upload_ext(X), xp.asarray(Y)
    if orders is not None:
        ord_d = xp.asarray(orders[:epochs])
        Xp, Yp = xp.empty_like(Xd), xp.empty_like(Yd)
    else:
        Xp, Yp = Xd, Yd
    if ex is not None:
        Xe, Ye = net.upload_ext(ex), xp.asarray(ey)
    acc = xp.zeros(6, dtype=np.float64)
    snap = xp.empty_like(net.P)
    eta = float(eta)
    status = STATUS_OK
    t0 = int(adam_t)
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
                drop = (dropout, int(seed), epoch) if dropout > 0 else None
                opt_kw = {"opt": opt, "eta": eta, "wd": wd, "l1": l1c, "mu": float(momentum),
                          "beta1": float(beta1), "beta2": float(beta2), "eps": float(eps),
                          "lr": eta}
                opt_args = (S[0], S[1], mask, opt_kw)
                done = 0
                for bi in range(nb):
                    start = bi * batch
                    m = m_full if bi < nb - 1 else m_last
                    if opt == ADAM:
                        step = t0 + bi + 1
                        opt_kw["lr"] = eta * math.sqrt(1.0 - beta2 ** step) / (1.0 - beta1 ** step)
                    net.train_batch(Xp[start:start + m], Yp[start:start + m], m, acc[0:2],
                                    cost_code, cost_scale,
                                    None if drop is None else drop + (start,), opt_args)
                    done = bi + 1
                if opt == ADAM:
                    t0 += nb
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
                if on_epoch is not None:
                    st = {"epoch": epoch, "eta": eta, "batches": nb,
                          "run_cost": float(a[0]) if run_stats else 0.0,
                          "run_correct": int(a[1] + 0.5) if run_stats else 0,
                          "run_n": n if run_stats else 0,
                          "train_cost": float(a[2]), "train_correct": int(a[3] + 0.5),
                          "eval_cost": float(a[4]), "eval_correct": int(a[5] + 0.5),
                          "sum_w2": float(sums[0]), "sum_w1": float(sums[1])}
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
            # the parameters (and optimizer state) come back whatever happened
            if opt == ADAM:
                t0 += done
            net.unpack(_to_host(xp, net.P), host_pairs)
            for k in range(2):
                if S[k] is not None:
                    net.unpack(_to_host(xp, S[k]), state_pairs[k])
            result.update(status=status, adam_t=t0, eta=eta)
    return result


def predict(W, b, acts, X, device="cuda", xp=None):
    """Network output (n, n_out), a host numpy array, for X (n, n_in)."""
    dtype, sizes, act_codes = _check_net(W, b, acts)
    _check_data(X, None, dtype, sizes, "predict")
    xp = resolve_xp(xp, device)
    n = int(X.shape[0])
    out = xp.empty((n, sizes[-1]), dtype=dtype)
    if n:
        net = _DeviceNet(xp, _kernels_for(xp, dtype), W, b, sizes, act_codes, dtype)
        net.alloc(min(EVAL_ROWS, n))
        Xd = net.upload_ext(X)
        for s in range(0, n, net.rows):
            m = min(net.rows, n - s)
            v = net.cut(m)
            zL = net.forward(Xd[s:s + m], v)
            net.kern.output(zL, None, out[s:s + m], None, None, act_codes[-1], 0, 1.0)
    return _to_host(xp, out)


def evaluate(W, b, acts, cost, X, Y, cost_scale=1.0, device="cuda", xp=None):
    """(cost summed over the examples, argmax hits) for (X, Y)."""
    dtype, sizes, act_codes = _check_net(W, b, acts, cost)
    _check_data(X, Y, dtype, sizes, "data")
    xp = resolve_xp(xp, device)
    n = int(X.shape[0])
    if n == 0:
        return 0.0, 0
    net = _DeviceNet(xp, _kernels_for(xp, dtype), W, b, sizes, act_codes, dtype)
    net.alloc(min(EVAL_ROWS, n))
    acc = xp.zeros(2, dtype=np.float64)
    net.evaluate_set(net.upload_ext(X), xp.asarray(Y), acc, COST_CODES[cost], float(cost_scale))
    a = _to_host(xp, acc)
    return float(a[0]), int(a[1] + 0.5)

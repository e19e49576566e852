// kernels.cu: the xp backend's elementwise kernels of one mini-batch step (CuPy RawModule).
//
// Compiled by fastnn/backends/xp.py with the options of xp.cuda_options(dtype):
//   -DREAL=float or -DREAL=double
//   -DFNN_ACT_<NAME>=<code>, -DFNN_COST_<NAME>=<code>, -DFNN_OPT_<NAME>=<code>
//   -DFNN_ACT_ROWS(X)=X(IDENTITY,identity) X(SIGMOID,sigmoid) ...   (every activation row)
//   -DFNN_OPT_ROWS(X)=X(SGD,sgd) X(MOMENTUM,momentum) ...          (every optimizer row)
// all generated from the engine's tables (src_c/fnn_tables.h, read through fastnn._engine),
// so no code is written here: a table row without its fnn_act_<name> / fnn_dact_<name> or
// fnn_step_<name> below fails to compile.
//
// The semantics are the C engine's: src_c/activations.h (each activation a value and a
// derivative function), src_c/costs.h (the output phase), src_c/optimizers.h (one
// element-wise step per optimizer, for weights and biases alike).
//
// Every kernel is a grid-stride loop, so any launch shape (even one thread) computes all of
// it.  Matrices are row-major with a leading dimension ld (elements between rows).
#ifndef REAL
#error "compile with -DREAL=float or -DREAL=double (fastnn.backends.xp.cuda_options)"
#endif
#if !defined(FNN_ACT_ROWS) || !defined(FNN_OPT_ROWS) || !defined(FNN_ACT_SOFTMAX) || \
    !defined(FNN_COST_QUADRATIC)
#error "compile with the table options of fastnn.backends.xp.cuda_options()"
#endif

#define FNN_DBL_MAX 1.7976931348623157e308

typedef unsigned long long fnn_u64;

#define FNN_LOOP(t, total)                                                                  \
    for (long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x; t < (total);      \
         t += (long long)blockDim.x * gridDim.x)

// the math functions for float and double
__device__ __forceinline__ float fnn_exp(float x) { return expf(x); }
__device__ __forceinline__ double fnn_exp(double x) { return exp(x); }
__device__ __forceinline__ float fnn_expm1(float x) { return expm1f(x); }
__device__ __forceinline__ double fnn_expm1(double x) { return expm1(x); }
__device__ __forceinline__ float fnn_log1p(float x) { return log1pf(x); }
__device__ __forceinline__ double fnn_log1p(double x) { return log1p(x); }
__device__ __forceinline__ float fnn_erf(float x) { return erff(x); }
__device__ __forceinline__ double fnn_erf(double x) { return erf(x); }
__device__ __forceinline__ float fnn_fabs(float x) { return fabsf(x); }
__device__ __forceinline__ double fnn_fabs(double x) { return fabs(x); }
__device__ __forceinline__ float fnn_tanh(float x) { return tanhf(x); }
__device__ __forceinline__ double fnn_tanh(double x) { return tanh(x); }
__device__ __forceinline__ float fnn_sqrt(float x) { return sqrtf(x); }
__device__ __forceinline__ double fnn_sqrt(double x) { return sqrt(x); }
// the smallest normal number of x's type (FLT_MIN, DBL_MIN)
__device__ __forceinline__ float fnn_tiny(float x) { (void)x; return 1.17549435e-38f; }
__device__ __forceinline__ double fnn_tiny(double x) { (void)x; return 2.2250738585072014e-308; }

// ---------------------------------------------------------------------------------------------
// activations: fnn_act_<name>(z) the value a = f(z), fnn_dact_<name>(z, a) the derivative
// f'(z) given a = f(z) (src_c/activations.h)

#define FNN_ACT(name) __device__ __forceinline__ REAL fnn_act_##name(REAL z)
#define FNN_DACT(name) __device__ __forceinline__ REAL fnn_dact_##name(REAL z, REAL a)

// never overflows: exp of a non-positive number only
FNN_ACT(sigmoid) {
    REAL e = fnn_exp(-fnn_fabs(z));
    REAL r = (REAL)1 / ((REAL)1 + e);
    return z >= 0 ? r : e * r;
}
FNN_DACT(sigmoid) { (void)z; return a * ((REAL)1 - a); }

FNN_ACT(identity) { return z; }
FNN_DACT(identity) { (void)z; (void)a; return (REAL)1; }

FNN_ACT(tanh) { return fnn_tanh(z); }
FNN_DACT(tanh) { (void)z; return (REAL)1 - a * a; }

// relu'(0) = 0
FNN_ACT(relu) { return z > 0 ? z : (REAL)0; }
FNN_DACT(relu) { (void)a; return z > 0 ? (REAL)1 : (REAL)0; }

// softmax: the row pass of fnn_output normalizes; element-wise it is exp's argument
FNN_ACT(softmax) { return z; }
FNN_DACT(softmax) { (void)z; (void)a; return (REAL)1; }

// gelu, exact (erf): z Phi(z)
FNN_ACT(gelu) { return (REAL)0.5 * z * ((REAL)1 + fnn_erf(z * (REAL)0.70710678118654752440)); }
FNN_DACT(gelu) {
    (void)a;
    const REAL cdf = (REAL)0.5 * ((REAL)1 + fnn_erf(z * (REAL)0.70710678118654752440));
    const REAL pdf = (REAL)0.39894228040143267794 * fnn_exp((REAL)-0.5 * z * z);
    return cdf + z * pdf;
}

// silu (swish): z sigmoid(z)
FNN_ACT(silu) { return z * fnn_act_sigmoid(z); }
FNN_DACT(silu) {
    (void)a;
    const REAL s = fnn_act_sigmoid(z);
    return s * ((REAL)1 + z * ((REAL)1 - s));
}

// elu with alpha 1
FNN_ACT(elu) { return z > 0 ? z : fnn_expm1(z); }
FNN_DACT(elu) { (void)a; return z > 0 ? (REAL)1 : fnn_exp(z); }

// selu: scale * elu with alpha (Klambauer et al.)
#define FNN_SELU_SCALE 1.0507009873554804934193349852946
#define FNN_SELU_ALPHA 1.6732632423543772848170429916717
FNN_ACT(selu) {
    return (REAL)FNN_SELU_SCALE * (z > 0 ? z : (REAL)FNN_SELU_ALPHA * fnn_expm1(z));
}
FNN_DACT(selu) {
    (void)a;
    return (REAL)FNN_SELU_SCALE * (z > 0 ? (REAL)1 : (REAL)FNN_SELU_ALPHA * fnn_exp(z));
}

// leaky_relu with Keras 3's negative slope 0.2
#define FNN_LEAKY_SLOPE 0.2
FNN_ACT(leaky_relu) { return z > 0 ? z : (REAL)FNN_LEAKY_SLOPE * z; }
FNN_DACT(leaky_relu) { (void)a; return z > 0 ? (REAL)1 : (REAL)FNN_LEAKY_SLOPE; }

// softplus: max(z, 0) + ln(1 + e^-|z|), never overflows
FNN_ACT(softplus) { return (z > 0 ? z : (REAL)0) + fnn_log1p(fnn_exp(-fnn_fabs(z))); }
FNN_DACT(softplus) { (void)a; return fnn_act_sigmoid(z); }

#undef FNN_ACT
#undef FNN_DACT

// the table's switch: a = act(z)
__device__ __forceinline__ REAL fnn_act(REAL z, int act) {
    switch (act) {
#define FNN_X(E, name) \
    case FNN_ACT_##E: return fnn_act_##name(z);
        FNN_ACT_ROWS(FNN_X)
#undef FNN_X
    default: return z;
    }
}

// d * act'(z), given a = act(z)
__device__ __forceinline__ REAL fnn_act_back(REAL d, REAL z, REAL a, int act) {
    switch (act) {
#define FNN_X(E, name) \
    case FNN_ACT_##E: return d * fnn_dact_##name(z, a);
        FNN_ACT_ROWS(FNN_X)
#undef FNN_X
    default: return d;
    }
}

// ---------------------------------------------------------------------------------------------
// dropout

// splitmix64, the engine's dropout hash (src_c/runtime.h)
__device__ __forceinline__ fnn_u64 fnn_mix64(fnn_u64 x) {
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

// the dropout multiplier of unit j of example slot slot0 + i of layer `layer`: 0 for a
// dropped unit, else 1/(1-p) (inverted dropout) or 1 with `book` (network3's rule)
__device__ __forceinline__ REAL fnn_keep(fnn_u64 seed, int epoch, long long slot0, long long i,
                                         int layer, int j, double p, int book) {
    fnn_u64 slot = ((fnn_u64)epoch << 40) ^ (fnn_u64)(slot0 + i);
    fnn_u64 h = fnn_mix64(seed ^ fnn_mix64(slot ^ fnn_mix64((fnn_u64)layer ^
                                                            fnn_mix64((fnn_u64)j))));
    double u = (double)(h >> 11) * (1.0 / 9007199254740992.0);
    return u < p ? (REAL)0 : book ? (REAL)1 : (REAL)(1.0 / (1.0 - p));
}

// ---------------------------------------------------------------------------------------------
// the kernels

// act_forward: A (m, n; ld lda) = act(Z (m, n; ld ldz)) [* dropout multipliers]
extern "C" __global__ void fnn_act_forward(REAL* __restrict__ A, int lda,
                                           const REAL* __restrict__ Z, int ldz,
                                           long long m, int n, int act, double p,
                                           fnn_u64 seed, int epoch, long long slot0, int layer,
                                           int book) {
    FNN_LOOP(t, m * n) {
        long long i = t / n;
        int j = (int)(t - i * n);
        REAL a = fnn_act(Z[i * ldz + j], act);
        if (p > 0) a *= fnn_keep(seed, epoch, slot0, i, layer, j, p, book);
        A[i * lda + j] = a;
    }
}

// act_backward: D (m, n) = Dn (m, n; ld ldn) * act'(Z) [* dropout multipliers]
extern "C" __global__ void fnn_act_backward(REAL* __restrict__ D, int ldd,
                                            const REAL* __restrict__ Dn, int ldn,
                                            const REAL* __restrict__ Z, int ldz,
                                            long long m, int n, int act, double p,
                                            fnn_u64 seed, int epoch, long long slot0,
                                            int layer, int book) {
    FNN_LOOP(t, m * n) {
        long long i = t / n;
        int j = (int)(t - i * n);
        REAL z = Z[i * ldz + j];
        REAL d = fnn_act_back(Dn[i * ldn + j], z, fnn_act(z, act), act);
        if (p > 0) d *= fnn_keep(seed, epoch, slot0, i, layer, j, p, book);
        D[i * ldd + j] = d;
    }
}

// output: one thread per example (src_c/costs.h).  A (m, no) = act(Z); with Y: cost and hits
// added to acc[0], acc[1]; with D: D = cost_scale * dC/dz.
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
        if (act == FNN_ACT_SOFTMAX) {
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
        if (cost == FNN_COST_QUADRATIC) {
            for (int j = 0; j < no; j++) {
                double e = (double)a[j] - (double)y[j];
                c += 0.5 * e * e;
            }
        } else if (cost == FNN_COST_MEAN_ABSOLUTE) {
            for (int j = 0; j < no; j++) c += fabs((double)a[j] - (double)y[j]);
        } else if (cost == FNN_COST_HUBER) {
            for (int j = 0; j < no; j++) {
                double e = fabs((double)a[j] - (double)y[j]);
                c += e <= 1 ? 0.5 * e * e : e - 0.5;
            }
        } else if (cost == FNN_COST_CROSS_ENTROPY) {
            for (int j = 0; j < no; j++) {
                double aa = a[j], yy = y[j];
                double e = -yy * log(aa) - (1 - yy) * log(1 - aa);
                if (isnan(e)) e = 0;
                else if (isinf(e)) e = e > 0 ? FNN_DBL_MAX : -FNN_DBL_MAX;
                c += e;
            }
        } else {  // log-likelihood; with a softmax output ln a_j = z_j - logsumexp(z)
            double lse = 0;
            if (act == FNN_ACT_SOFTMAX) {
                double zm = z[0], s = 0;
                for (int j = 1; j < no; j++) zm = (double)z[j] > zm ? (double)z[j] : zm;
                for (int j = 0; j < no; j++) s += exp((double)z[j] - zm);
                lse = zm + log(s);
            }
            for (int j = 0; j < no; j++) {
                if (y[j] == 0) continue;
                double la = (act == FNN_ACT_SOFTMAX) ? (double)z[j] - lse : log((double)a[j]);
                c -= (double)y[j] * la;
            }
        }
        csum += scale * c;
        if (!has_d) continue;
        REAL* d = D + r * ldd;
        const REAL sc = (REAL)scale;
        for (int j = 0; j < no; j++) {
            REAL e = a[j] - y[j];
            if (cost == FNN_COST_MEAN_ABSOLUTE) e = (REAL)((e > 0) - (e < 0));
            else if (cost == FNN_COST_HUBER) e = e > 1 ? (REAL)1 : e < -1 ? (REAL)-1 : e;
            d[j] = sc * e;
        }
        if (cost == FNN_COST_QUADRATIC || cost == FNN_COST_MEAN_ABSOLUTE ||
            cost == FNN_COST_HUBER) {
            if (act == FNN_ACT_SOFTMAX) {  // the softmax Jacobian: a * (g - sum(a g))
                double dot = 0;
                for (int j = 0; j < no; j++) dot += (double)a[j] * d[j];
                for (int j = 0; j < no; j++) d[j] = a[j] * (d[j] - (REAL)dot);
            } else if (act != FNN_ACT_IDENTITY) {
                for (int j = 0; j < no; j++) d[j] = fnn_act_back(d[j], z[j], a[j], act);
            }
        }
    }
    if (has_y && (csum != 0 || hits != 0)) {
        atomicAdd(acc, csum);
        atomicAdd(acc + 1, hits);
    }
}

// ---------------------------------------------------------------------------------------------
// the optimizer table's steps (src_c/optimizers.h), written once for weights and biases alike.
// fnn_step_<name>(w, s, sn, g, k): parameter *w, its state slots s[0], s[sn], s[2 sn] ...
// (slot q of parameter t is S[q * sn + t]), gradient g and the step's constants k.

struct fnn_opt_k {
    REAL lr, lr_t, mu, c1, c2, rho, crho, eps;
};

#define FNN_STEP(name)                                                                      \
    __device__ __forceinline__ void fnn_step_##name(REAL* w, REAL* s, long long sn, REAL g, \
                                                    const fnn_opt_k& k)
// w -= lr g
FNN_STEP(sgd) {
    (void)s; (void)sn;
    *w = *w - k.lr * g;
}
// v = mu v - lr g; w += v
FNN_STEP(momentum) {
    (void)sn;
    const REAL v = k.mu * s[0] - k.lr * g;
    s[0] = v;
    *w = *w + v;
}
// m += (1-b1)(g-m); v += (1-b2)(g^2-v); w -= lr_t m / (sqrt(v) + eps); m or v below the
// smallest normal number stored as 0 (src_c/optimizers.h says why)
FNN_STEP(adam) {
    const REAL m = s[0] + k.c1 * (g - s[0]), v = s[sn] + k.c2 * (g * g - s[sn]);
    s[0] = fnn_fabs(m) < fnn_tiny(m) ? (REAL)0 : m;
    s[sn] = v < fnn_tiny(v) ? (REAL)0 : v;
    *w = *w - k.lr_t * s[0] / (fnn_sqrt(s[sn]) + k.eps);
}
// v = rho v + (1-rho) g^2; u = lr g / sqrt(v + eps); w -= u, or m = mu m + u; w -= m
FNN_STEP(rmsprop) {
    const REAL v = k.rho * s[0] + k.crho * (g * g);
    s[0] = v;
    const REAL u = k.lr * g / fnn_sqrt(v + k.eps);
    if (k.mu > 0) {
        const REAL m = k.mu * s[sn] + u;
        s[sn] = m;
        *w = *w - m;
    } else {
        *w = *w - u;
    }
}
// a += g^2; w -= lr g / sqrt(a + eps)
FNN_STEP(adagrad) {
    (void)sn;
    const REAL a = s[0] + g * g;
    s[0] = a;
    *w = *w - k.lr * g / fnn_sqrt(a + k.eps);
}
#undef FNN_STEP

// update: every parameter of every layer, flat P (n,), its mean-gradient sums G (n,) and its
// state S (slots, n).  g = G/m (+ (lmbda/n) w + (l1/n) sign(w) where mask is 1, i.e. on
// weights), then the optimizer's step.
extern "C" __global__ void fnn_update(REAL* __restrict__ P, const REAL* __restrict__ G,
                                      REAL* __restrict__ S, const REAL* __restrict__ mask,
                                      long long n, int opt, int reg, REAL inv_m, REAL wd,
                                      REAL l1, REAL lr, REAL lr_t, REAL mu, REAL c1, REAL c2,
                                      REAL rho, REAL crho, REAL eps) {
    const fnn_opt_k k = {lr, lr_t, mu, c1, c2, rho, crho, eps};
    FNN_LOOP(t, n) {
        const REAL w = P[t];
        REAL g = G[t] * inv_m;
        if (reg && mask[t] != 0) g += wd * w + l1 * (REAL)((w > 0) - (w < 0));
        switch (opt) {
#define FNN_X(E, name) \
        case FNN_OPT_##E: fnn_step_##name(P + t, S + t, n, g, k); break;
            FNN_OPT_ROWS(FNN_X)
#undef FNN_X
        default: break;
        }
    }
}

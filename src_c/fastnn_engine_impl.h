/* fastnn_engine_impl.h: the engine's kernels and training loop, written once for REAL.
 *
 * fastnn.h includes this file twice: REAL = double (names end in _f64) and REAL = float
 * (_f32).  Every op is a forward/backward pair with llm.c's argument order: outputs, inputs,
 * parameters, sizes.  Threads: every function that takes (t, T) is called by all T threads of
 * an OpenMP team; each thread writes only the rows (or samples) fnn_split gives it.
 */
#define F(name) FNN_SUFFIX(name)

/* type-generic math for this instantiation */
#undef FNN_EXP
#undef FNN_LOG
#undef FNN_SQRT
#undef FNN_TANH
#undef FNN_FABS
#define FNN_FABS(x) (sizeof(REAL) == sizeof(float) ? (REAL)fabsf((float)(x)) : (REAL)fabs((double)(x)))
#define FNN_EXP(x) (sizeof(REAL) == sizeof(float) ? (REAL)expf((float)(x)) : (REAL)exp((double)(x)))
#define FNN_LOG(x) (sizeof(REAL) == sizeof(float) ? (REAL)logf((float)(x)) : (REAL)log((double)(x)))
#define FNN_SQRT(x) (sizeof(REAL) == sizeof(float) ? (REAL)sqrtf((float)(x)) : (REAL)sqrt((double)(x)))
#define FNN_TANH(x) (sizeof(REAL) == sizeof(float) ? (REAL)tanhf((float)(x)) : (REAL)tanh((double)(x)))

/* ------------------------------------------------------------------------------------------ */
/* GEMM: row-major C = alpha op(A) op(B) + beta C, C is (M, N), op(A) is (M, K), op(B) (K, N).  */

/* The reference kernel: plain loops, also the fallback for sizes where a BLAS call costs more
 * than it saves. */
static void F(gemm_naive)(int ta, int tb, int M, int N, int K, REAL alpha, const REAL *A,
                          int lda, const REAL *B, int ldb, REAL beta, REAL *C, int ldc) {
    for (int i = 0; i < M; i++) {
        REAL *c = C + (int64_t)i * ldc;
        if (beta == (REAL)0) {
            for (int j = 0; j < N; j++) c[j] = 0;
        } else if (beta != (REAL)1) {
            for (int j = 0; j < N; j++) c[j] *= beta;
        }
        for (int k = 0; k < K; k++) {
            REAL a = alpha * (ta ? A[(int64_t)k * lda + i] : A[(int64_t)i * lda + k]);
            if (!tb) {
                const REAL *brow = B + (int64_t)k * ldb;
                for (int j = 0; j < N; j++) c[j] += a * brow[j];
            } else {
                for (int j = 0; j < N; j++) c[j] += a * B[(int64_t)j * ldb + k];
            }
        }
    }
}

static void F(gemm)(const fnn_net *net, int ta, int tb, int M, int N, int K, REAL alpha,
                    const REAL *A, int lda, const REAL *B, int ldb, REAL beta, REAL *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    if (net->gemm != NULL && K > 0 && (double)M * N * K >= FNN_BLAS_MIN) {
        /* row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T */
        char cta = ta ? 'T' : 'N', ctb = tb ? 'T' : 'N';
        ((FNN_GEMM_T)net->gemm)(&ctb, &cta, &N, &M, &K, &alpha, (REAL *)B, &ldb, (REAL *)A,
                                &lda, &beta, C, &ldc);
    } else {
        F(gemm_naive)(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Small-batch kernels.  A dense layer called on a few examples (a mini-batch of 10, a
 * thread's share of 32) is a GEMM with a short dimension, where BLAS spends more time packing
 * than computing.  These two kernels read the examples in place through row pointers (the
 * training rows need no gather copy) and keep a block of results in vector registers:
 *   dot_rows:  z[i][r] = sum_k x_i[k] W[r][k]            (forward: in @ W^T)
 *   axpy_rows: W[r][k] = decay W[r][k] + sum_i c[r][i] x_i[k]   (update: W += c @ in)
 * with GCC/Clang vector types, so one source gives AVX-512, AVX2 or SSE code.  Rows that
 * start on a vector boundary run fastest; the Python layer allocates the data that way. */

#if defined(__GNUC__)
#define FNN_VEC_KERNELS 1
typedef REAL F(vec) __attribute__((vector_size(FNN_VBYTES)));
#define FNN_VL ((int)(FNN_VBYTES / sizeof(REAL)))

FNN_INLINE F(vec) F(vload)(const REAL *p) { F(vec) v; memcpy(&v, p, sizeof v); return v; }
FNN_INLINE void F(vstore)(REAL *p, F(vec) v) { memcpy(p, &v, sizeof v); }
FNN_INLINE REAL F(vsum)(F(vec) v) {
    REAL s = 0;
    for (int j = 0; j < FNN_VL; j++) s += v[j];
    return s;
}

/* G examples times NR (1 or 2) rows of W, G * NR accumulators */
FNN_INLINE void F(dot_block)(const int G, const int NR, const REAL *const *x, const REAL *w,
                             int ldw, int K, REAL *z, int ldz) {
    F(vec) acc[2][FNN_GMAX];
    for (int r = 0; r < NR; r++)
        for (int i = 0; i < G; i++) acc[r][i] = (F(vec)){0};
    int k = 0;
    for (; k + FNN_VL <= K; k += FNN_VL) {
        F(vec) wv[2];
        for (int r = 0; r < NR; r++) wv[r] = F(vload)(w + (int64_t)r * ldw + k);
        for (int i = 0; i < G; i++) {
            F(vec) xv = F(vload)(x[i] + k);
            for (int r = 0; r < NR; r++) acc[r][i] += wv[r] * xv;
        }
    }
    for (int r = 0; r < NR; r++)
        for (int i = 0; i < G; i++) {
            REAL s = F(vsum)(acc[r][i]);
            for (int kk = k; kk < K; kk++) s += w[(int64_t)r * ldw + kk] * x[i][kk];
            z[(int64_t)i * ldz + r] = s;
        }
}

/* G examples, all R rows: the G vectors of x stay in registers while the rows stream by.
 * decay == 0 writes W without reading it. */
FNN_INLINE void F(axpy_block)(const int G, const REAL *const *x, const REAL *c, int ldc,
                              REAL decay, REAL *W, int ldw, int K, int R) {
    int k = 0;
    for (; k + FNN_VL <= K; k += FNN_VL) {
        F(vec) xv[FNN_GMAX];
        for (int i = 0; i < G; i++) xv[i] = F(vload)(x[i] + k);
        for (int r = 0; r < R; r++) {
            REAL *wr = W + (int64_t)r * ldw + k;
            const REAL *cr = c + (int64_t)r * ldc;
            F(vec) a = decay == 0 ? (F(vec)){0} : F(vload)(wr) * decay;
            for (int i = 0; i < G; i++) a += cr[i] * xv[i];
            F(vstore)(wr, a);
        }
    }
    for (; k < K; k++)
        for (int r = 0; r < R; r++) {
            REAL *wr = W + (int64_t)r * ldw + k;
            const REAL *cr = c + (int64_t)r * ldc;
            REAL a = decay == 0 ? 0 : *wr * decay;
            for (int i = 0; i < G; i++) a += cr[i] * x[i][k];
            *wr = a;
        }
}

/* one copy of each kernel per block size G, so the compiler unrolls the G loops */
#define FNN_KERNELS_G(G)                                                                     \
    static void F(dot_g##G)(const REAL *const *x, const REAL *w, int ldw, int K, int R,      \
                            REAL *z, int ldz) {                                              \
        int r = 0;                                                                           \
        for (; r + 2 <= R; r += 2)                                                           \
            F(dot_block)(G, 2, x, w + (int64_t)r * ldw, ldw, K, z + r, ldz);                 \
        if (r < R) F(dot_block)(G, 1, x, w + (int64_t)r * ldw, ldw, K, z + r, ldz);          \
    }                                                                                        \
    static void F(axpy_g##G)(const REAL *const *x, const REAL *c, int ldc, REAL decay,      \
                             REAL *W, int ldw, int K, int R) {                               \
        F(axpy_block)(G, x, c, ldc, decay, W, ldw, K, R);                                    \
    }
FNN_KERNELS_G(1) FNN_KERNELS_G(2) FNN_KERNELS_G(3) FNN_KERNELS_G(4) FNN_KERNELS_G(5)
FNN_KERNELS_G(6)
#if FNN_GMAX >= 12
FNN_KERNELS_G(7) FNN_KERNELS_G(8) FNN_KERNELS_G(9) FNN_KERNELS_G(10) FNN_KERNELS_G(11)
FNN_KERNELS_G(12)
#endif
#undef FNN_KERNELS_G

typedef void (*F(dot_fn))(const REAL *const *, const REAL *, int, int, int, REAL *, int);
typedef void (*F(axpy_fn))(const REAL *const *, const REAL *, int, REAL, REAL *, int, int, int);
static const F(dot_fn) F(dot_table)[FNN_GMAX + 1] = {
    NULL, F(dot_g1), F(dot_g2), F(dot_g3), F(dot_g4), F(dot_g5), F(dot_g6),
#if FNN_GMAX >= 12
    F(dot_g7), F(dot_g8), F(dot_g9), F(dot_g10), F(dot_g11), F(dot_g12),
#endif
};
static const F(axpy_fn) F(axpy_table)[FNN_GMAX + 1] = {
    NULL, F(axpy_g1), F(axpy_g2), F(axpy_g3), F(axpy_g4), F(axpy_g5), F(axpy_g6),
#if FNN_GMAX >= 12
    F(axpy_g7), F(axpy_g8), F(axpy_g9), F(axpy_g10), F(axpy_g11), F(axpy_g12),
#endif
};
#endif /* __GNUC__ */

/* z (m, ldz) = x (m rows) @ W[0:R]^T: the m examples in near-equal blocks of at most GMAX */
static void F(dot_rows)(int m, const REAL *const *x, const REAL *W, int ldw, int K, int R,
                        REAL *z, int ldz) {
#ifdef FNN_VEC_KERNELS
    const int nblk = (m + FNN_GMAX - 1) / FNN_GMAX;
    for (int b = 0, i0 = 0; b < nblk; b++) {
        int g = (m - i0) / (nblk - b);
        F(dot_table)[g](x + i0, W, ldw, K, R, z + (int64_t)i0 * ldz, ldz);
        i0 += g;
    }
#else
    for (int i = 0; i < m; i++)
        for (int r = 0; r < R; r++) {
            REAL s = 0;
            for (int k = 0; k < K; k++) s += x[i][k] * W[(int64_t)r * ldw + k];
            z[(int64_t)i * ldz + r] = s;
        }
#endif
}

/* W[0:R] = decay W + c (R, m; row stride ldc) @ x (m rows); decay == 0 overwrites W */
static void F(axpy_rows)(int m, const REAL *const *x, const REAL *c, int ldc, REAL decay,
                         REAL *W, int ldw, int K, int R) {
#ifdef FNN_VEC_KERNELS
    const int nblk = (m + FNN_GMAX - 1) / FNN_GMAX;
    for (int b = 0, i0 = 0; b < nblk; b++) {
        int g = (m - i0) / (nblk - b);
        F(axpy_table)[g](x + i0, c + i0, ldc, b == 0 ? decay : (REAL)1, W, ldw, K, R);
        i0 += g;
    }
#else
    for (int r = 0; r < R; r++)
        for (int k = 0; k < K; k++) {
            REAL a = decay == 0 ? 0 : W[(int64_t)r * ldw + k] * decay;
            for (int i = 0; i < m; i++) a += c[(int64_t)r * ldc + i] * x[i][k];
            W[(int64_t)r * ldw + k] = a;
        }
#endif
}
#undef FNN_VEC_KERNELS

/* ------------------------------------------------------------------------------------------ */
/* activations.  Buffers are sample-major: row i of a (m, n) block is example i.              */

static inline REAL F(sigmoid)(REAL z) {
    /* never overflows: exp of a non-positive number only; branch-free so loops vectorize */
    REAL e = FNN_EXP(-FNN_FABS(z));
    REAL r = (REAL)1 / ((REAL)1 + e);
    return z >= 0 ? r : e * r;
}

/* act_forward: z += b, a = act(z) on rows [i0, i1), columns [j0, j1) of (m, n) blocks z and
 * a.  Softmax is taken over whole rows (j0 = 0, j1 = n). */
static void F(act_forward)(REAL *a, REAL *z, const REAL *b, int64_t i0, int64_t i1, int j0,
                           int j1, int n, int act) {
    for (int64_t i = i0; i < i1; i++) {
        REAL *zr = z + i * n, *ar = a + i * n;
        switch (act) {
        case FNN_SIGMOID:
#pragma omp simd
            for (int j = j0; j < j1; j++) { REAL v = zr[j] + b[j]; zr[j] = v; ar[j] = F(sigmoid)(v); }
            break;
        case FNN_TANH:
            for (int j = j0; j < j1; j++) { REAL v = zr[j] + b[j]; zr[j] = v; ar[j] = FNN_TANH(v); }
            break;
        case FNN_RELU:
#pragma omp simd
            for (int j = j0; j < j1; j++) { REAL v = zr[j] + b[j]; zr[j] = v; ar[j] = v > 0 ? v : 0; }
            break;
        case FNN_SOFTMAX: {
            REAL zmax = zr[0] + b[0];
            for (int j = 0; j < n; j++) { REAL v = zr[j] + b[j]; zr[j] = v; zmax = v > zmax ? v : zmax; }
            double s = 0;
            for (int j = 0; j < n; j++) { ar[j] = FNN_EXP(zr[j] - zmax); s += ar[j]; }
            const REAL inv = (REAL)(1.0 / s);
            for (int j = 0; j < n; j++) ar[j] *= inv;
            break;
        }
        default: /* identity */
#pragma omp simd
            for (int j = j0; j < j1; j++) { REAL v = zr[j] + b[j]; zr[j] = v; ar[j] = v; }
            break;
        }
    }
}

/* act_backward: d *= act'(z) (times the dropout multipliers k when given), rows [i0, i1).
 * Without dropout the derivative comes from the stored activation a = act(z); with dropout a
 * was scaled in place, so sigmoid and tanh are recomputed from z. */
static void F(act_backward)(REAL *d, const REAL *z, const REAL *a, const REAL *k, int64_t i0,
                            int64_t i1, int n, int act) {
    for (int64_t i = i0; i < i1; i++) {
        REAL *dr = d + i * n;
        const REAL *zr = z + i * n, *ar = a + i * n;
        switch (act) {
        case FNN_SIGMOID:
            if (k == NULL) {
#pragma omp simd
                for (int j = 0; j < n; j++) dr[j] *= ar[j] * ((REAL)1 - ar[j]);
            } else {
#pragma omp simd
                for (int j = 0; j < n; j++) { REAL s = F(sigmoid)(zr[j]); dr[j] *= s * ((REAL)1 - s); }
            }
            break;
        case FNN_TANH:
            if (k == NULL) {
                for (int j = 0; j < n; j++) dr[j] *= (REAL)1 - ar[j] * ar[j];
            } else {
                for (int j = 0; j < n; j++) { REAL t = FNN_TANH(zr[j]); dr[j] *= (REAL)1 - t * t; }
            }
            break;
        case FNN_RELU:
#pragma omp simd
            for (int j = 0; j < n; j++) dr[j] = zr[j] > 0 ? dr[j] : 0;
            break;
        default:
            break;
        }
        if (k != NULL) {
            const REAL *kr = k + i * n;
#pragma omp simd
            for (int j = 0; j < n; j++) dr[j] *= kr[j];
        }
    }
}

/* dropout_forward: inverted dropout on rows [i0, i1), columns [j0, j1) of an (m, n)
 * activation block: k = keep/(1-p), a *= k.  `slot0` is the position in the epoch of row 0. */
static void F(dropout_forward)(REAL *a, REAL *k, int64_t i0, int64_t i1, int j0, int j1, int n,
                               double p, uint64_t seed, int epoch, int64_t slot0, int layer) {
    const REAL keep = (REAL)(1.0 / (1.0 - p));
    for (int64_t i = i0; i < i1; i++) {
        REAL *ar = a + i * n, *kr = k + i * n;
        uint64_t slot = ((uint64_t)epoch << 40) ^ (uint64_t)(slot0 + i);
        for (int j = j0; j < j1; j++) {
            double u = fnn_uniform(seed, slot, (uint64_t)layer, (uint64_t)j);
            kr[j] = u < p ? (REAL)0 : keep;
            ar[j] *= kr[j];
        }
    }
}

/* ------------------------------------------------------------------------------------------ */
/* workspace                                                                                   */

typedef struct {
    int M;                        /* examples the buffers hold */
    int T;                        /* threads the accumulators are sized for */
    REAL *x;                      /* (M, n_0) gathered inputs */
    int64_t *idx;                 /* (M) row of each slot in X / Y */
    const REAL **rows;            /* (M) each slot's input row: in X itself when `direct`,
                                   * else in x */
    int direct;                   /* gather sets row pointers only, copies nothing */
    REAL *Z[FNN_MAX_LAYERS];      /* (M, n_l) pre-activations, bias included */
    REAL *A[FNN_MAX_LAYERS];      /* (M, n_l) activations, after dropout */
    REAL *D[FNN_MAX_LAYERS];      /* (M, n_l) deltas dC/dz */
    REAL *K[FNN_MAX_LAYERS];      /* (M, n_l) dropout multipliers, hidden layers */
    REAL *G[FNN_MAX_LAYERS];      /* (n_out, n_in) mean weight gradient */
    REAL *Dt;                     /* (T, max n_l * M) per-thread transposed delta slices */
    int64_t dt_stride;
    double *acc;                  /* (T, 8): cost, hits; padded against false sharing */
} F(fnn_ws);

static void F(ws_free)(F(fnn_ws) *ws) {
    free(ws->x); free(ws->idx); free(ws->acc); free(ws->Dt); free((void *)ws->rows);
    for (int l = 0; l < FNN_MAX_LAYERS; l++) {
        free(ws->Z[l]); free(ws->A[l]); free(ws->D[l]); free(ws->K[l]); free(ws->G[l]);
    }
    memset(ws, 0, sizeof(*ws));
}

static int F(ws_alloc)(F(fnn_ws) *ws, const fnn_net *net, int M, int T, int need_D,
                       int need_K, int need_G) {
    memset(ws, 0, sizeof(*ws));
    ws->M = M; ws->T = T;
    const int *S = net->sizes;
    ws->x = (REAL *)malloc(sizeof(REAL) * (size_t)M * S[0]);
    ws->idx = (int64_t *)malloc(sizeof(int64_t) * (size_t)M);
    ws->rows = (const REAL **)malloc(sizeof(REAL *) * (size_t)M);
    ws->acc = (double *)calloc((size_t)T * 8, sizeof(double));
    int nmax = 1;
    for (int l = 1; l <= net->L; l++) nmax = S[l] > nmax ? S[l] : nmax;
    ws->dt_stride = (int64_t)nmax * M + 16;
    ws->Dt = need_D ? (REAL *)malloc(sizeof(REAL) * (size_t)T * ws->dt_stride) : NULL;
    int ok = ws->x && ws->idx && ws->rows && ws->acc && (ws->Dt || !need_D);
    for (int l = 0; ok && l < net->L; l++) {
        size_t nl = (size_t)S[l + 1] * M;
        ws->Z[l] = (REAL *)malloc(sizeof(REAL) * nl);
        ws->A[l] = (REAL *)malloc(sizeof(REAL) * nl);
        ok = ws->Z[l] && ws->A[l];
        if (ok && need_D) ok = (ws->D[l] = (REAL *)malloc(sizeof(REAL) * nl)) != NULL;
        if (ok && need_K && l < net->L - 1)
            ok = (ws->K[l] = (REAL *)malloc(sizeof(REAL) * nl)) != NULL;
        if (ok && need_G)
            ok = (ws->G[l] = (REAL *)malloc(sizeof(REAL) * (size_t)S[l + 1] * S[l])) != NULL;
    }
    if (!ok) { F(ws_free)(ws); return FNN_NOMEM; }
    return FNN_OK;
}

/* the input of layer l as one (M, n_l) block: for l = 0 only when the gather copied */
static inline const REAL *F(layer_in)(const F(fnn_ws) *ws, int l) {
    return l == 0 ? ws->x : ws->A[l - 1];
}

/* calls on at most FNN_SMALL_M examples go to the small-batch kernels */
static inline int F(small)(int64_t m) { return m <= FNN_SMALL_M; }

/* Read the rows of X in place (no gather copy) when every call on these buffers goes to the
 * small-batch kernels and the rows start on vector boundaries. */
static inline void F(set_direct)(F(fnn_ws) *ws, const void *X, int n_in) {
    ws->direct = F(small)(ws->M) && (uintptr_t)X % FNN_VBYTES == 0 &&
                 ((size_t)n_in * sizeof(REAL)) % FNN_VBYTES == 0;
}

/* row pointers to the inputs of layer l for examples [i0, i1), from column k0 on: the
 * gathered rows for l = 0, else rows of A[l-1]; written into `ptr` (room for FNN_SMALL_M)
 * unless they are ws->rows itself */
static inline const REAL *const *F(in_rows)(const F(fnn_ws) *ws, int l, int n_in,
                                            int64_t i0, int64_t i1, int64_t k0,
                                            const REAL **ptr) {
    if (l == 0 && k0 == 0) return ws->rows + i0;
    for (int64_t i = i0; i < i1; i++)
        ptr[i - i0] = (l == 0 ? ws->rows[i] : ws->A[l - 1] + i * n_in) + k0;
    return ptr;
}

/* ------------------------------------------------------------------------------------------ */
/* per-sample phases: a thread runs them on its own rows [i0, i1) and touches no other row    */

/* gather: slot i holds X[row], row = order[start + i] (or start + i when `order` is NULL):
 * rows[i] points at it in X when ws->direct, else at its copy in x.  The rows of the
 * mini-batch FNN_PREFETCH_BATCHES ahead (below n) are prefetched, slots [p0, p1): shuffled
 * rows are cache misses.  Only columns [k0, k1) are copied and prefetched. */
static void F(gather)(F(fnn_ws) *ws, const REAL *X, int n_in, const int32_t *order,
                      int64_t start, int m, int64_t n, int64_t i0, int64_t i1, int64_t p0,
                      int64_t p1, int64_t k0, int64_t k1) {
    for (int64_t i = i0; i < i1; i++) {
        int64_t row = order ? (int64_t)order[start + i] : start + i;
        ws->idx[i] = row;
        if (ws->direct) {
            ws->rows[i] = X + row * n_in;
        } else {
            memcpy(ws->x + i * n_in + k0, X + row * n_in + k0, sizeof(REAL) * (size_t)(k1 - k0));
            ws->rows[i] = ws->x + i * n_in;
        }
    }
#if defined(__GNUC__)
    for (int64_t i = p0; i < p1; i++) {
        int64_t s = start + FNN_PREFETCH_BATCHES * (int64_t)m + i;
        if (s >= n) break;
        const char *p = (const char *)(X + (order ? (int64_t)order[s] : s) * n_in + k0);
        for (size_t off = 0; off < sizeof(REAL) * (size_t)(k1 - k0); off += 64)
            __builtin_prefetch(p + off, 0, 3);
    }
#endif
}

/* dense_forward of layer l on rows [i0, i1) (examples) and columns [o0, o1) (neurons):
 * Z[l] (m, n_out) = in (m, n_in) @ W[l]^T (n_in, n_out) + b, A[l] = act(Z[l]). */
static void F(dense_forward)(const fnn_net *net, F(fnn_ws) *ws, int l, double dropout,
                             uint64_t seed, int epoch, int64_t slot0, int64_t i0, int64_t i1,
                             int64_t o0, int64_t o1) {
    const int n_in = net->sizes[l], n_out = net->sizes[l + 1];
    if (i1 <= i0 || o1 <= o0) return;
    const REAL *Wl = (const REAL *)net->W[l] + o0 * n_in;
    REAL *Zl = ws->Z[l] + i0 * n_out + o0;
    if (F(small)(i1 - i0)) {
        const REAL *ptr[FNN_SMALL_M];
        F(dot_rows)((int)(i1 - i0), F(in_rows)(ws, l, n_in, i0, i1, 0, ptr), Wl, n_in, n_in,
                    (int)(o1 - o0), Zl, n_out);
    } else {
        F(gemm)(net, 0, 1, (int)(i1 - i0), (int)(o1 - o0), n_in, 1,
                F(layer_in)(ws, l) + i0 * n_in, n_in, Wl, n_in, 0, Zl, n_out);
    }
    F(act_forward)(ws->A[l], ws->Z[l], (const REAL *)net->b[l], i0, i1, (int)o0, (int)o1, n_out,
                   net->act[l]);
    if (dropout > 0 && l < net->L - 1)
        F(dropout_forward)(ws->A[l], ws->K[l], i0, i1, (int)o0, (int)o1, n_out, dropout, seed,
                           epoch, slot0, l);
}

/* forward through every layer on the rows [i0, i1), all neurons */
static void F(forward)(const fnn_net *net, F(fnn_ws) *ws, double dropout, uint64_t seed,
                       int epoch, int64_t slot0, int64_t i0, int64_t i1) {
    for (int l = 0; l < net->L; l++)
        F(dense_forward)(net, ws, l, dropout, seed, epoch, slot0, i0, i1, 0, net->sizes[l + 1]);
}

/* A hidden layer big enough to split by neuron: its forward and its update then run on the
 * same rows of W in the same thread, so W stays in that core's cache. */
static inline int F(row_layer)(const fnn_net *net, int l, int m, int T) {
    return l < net->L - 1 &&
           fnn_is_par(net->sizes[l + 1], T, (double)m * net->sizes[l] * net->sizes[l + 1]);
}

/* output: cost and hits of rows [i0, i1) into this thread's accumulators, and when
 * want_delta the output delta D[L-1] = cost_scale * dC/dz. */
static void F(output_phase)(const fnn_net *net, F(fnn_ws) *ws, const REAL *Y, int want_delta,
                            int64_t i0, int64_t i1, int t) {
    const int L = net->L, no = net->sizes[L], act = net->act[L - 1], cost = net->cost;
    const double scale = net->cost_scale;
    double csum = 0, hits = 0;
    for (int64_t i = i0; i < i1; i++) {
        const REAL *y = Y + ws->idx[i] * no;
        const REAL *a = ws->A[L - 1] + i * no, *z = ws->Z[L - 1] + i * no;
        /* hits: first maximum of a against first maximum of y */
        int ja = 0, jy = 0;
        for (int j = 1; j < no; j++) {
            if (a[j] > a[ja]) ja = j;
            if (y[j] > y[jy]) jy = j;
        }
        hits += (ja == jy);
        double c = 0;
        if (cost == FNN_QUADRATIC) {
            for (int j = 0; j < no; j++) { double e = (double)a[j] - y[j]; c += 0.5 * e * e; }
        } else if (cost == FNN_CROSS_ENTROPY) {
            for (int j = 0; j < no; j++) {
                double aa = a[j], yy = y[j];
                double e = -yy * log(aa) - (1 - yy) * log(1 - aa);
                if (isnan(e)) e = 0;
                else if (isinf(e)) e = e > 0 ? DBL_MAX : -DBL_MAX;
                c += e;
            }
        } else { /* log-likelihood; with a softmax output ln a_j = z_j - logsumexp(z) */
            double lse = 0;
            if (act == FNN_SOFTMAX) {
                double zmax = z[0], s = 0;
                for (int j = 1; j < no; j++) zmax = z[j] > zmax ? z[j] : zmax;
                for (int j = 0; j < no; j++) s += exp((double)z[j] - zmax);
                lse = zmax + log(s);
            }
            for (int j = 0; j < no; j++) {
                if (y[j] == 0) continue;
                double la = (act == FNN_SOFTMAX) ? (double)z[j] - lse : log((double)a[j]);
                c -= y[j] * la;
            }
        }
        csum += scale * c;
        if (!want_delta) continue;
        REAL *d = ws->D[L - 1] + i * no;
        const REAL sc = (REAL)scale;
        for (int j = 0; j < no; j++) d[j] = sc * (a[j] - y[j]);
        if (cost == FNN_QUADRATIC && act == FNN_SOFTMAX) {
            /* softmax Jacobian product: d_j = a_j (g_j - sum_k a_k g_k) */
            double s = 0;
            for (int j = 0; j < no; j++) s += (double)a[j] * d[j];
            for (int j = 0; j < no; j++) d[j] = a[j] * (d[j] - (REAL)s);
        } else if (cost == FNN_QUADRATIC && act != FNN_IDENTITY) {
            F(act_backward)(d, z, a, NULL, 0, 1, no, act);
        }
    }
    ws->acc[t * 8 + 0] += csum;
    ws->acc[t * 8 + 1] += hits;
}

/* dense_backward, delta part, rows [i0, i1), for l = L-1 .. 1:
 * D[l-1] (ms, n_in) = D[l] (ms, n_out) @ W[l] (n_out, n_in), times act'(Z[l-1]) and the
 * dropout multipliers. */
static void F(backward)(const fnn_net *net, F(fnn_ws) *ws, int64_t i0, int64_t i1) {
    const int ms = (int)(i1 - i0);
    if (ms <= 0) return;
    for (int l = net->L - 1; l > 0; l--) {
        const int n_in = net->sizes[l], n_out = net->sizes[l + 1];
        F(gemm)(net, 0, 0, ms, n_in, n_out, 1, ws->D[l] + i0 * n_out, n_out,
                (const REAL *)net->W[l], n_in, 0, ws->D[l - 1] + i0 * n_in, n_in);
        F(act_backward)(ws->D[l - 1], ws->Z[l - 1], ws->A[l - 1], ws->K[l - 1], i0, i1, n_in,
                        net->act[l - 1]);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* the update: a thread owns rows [o0, o1) of W[l] and b[l] and reads every example          */

/* dense_backward, parameter part, fused with the optimizer step, on the block of rows
 * [o0, o1) and columns [k0, k1) of W[l] (and rows [o0, o1) of b[l] when `with_bias`):
 * g = D[l]^T (R, m) @ in (m, K) / m + (lmbda/n) w + (l1/n) sign(w).  `t` picks this thread's
 * slice of ws->Dt. */
static void F(update_rows)(const fnn_net *net, const fnn_train_cfg *cfg, F(fnn_ws) *ws, int l,
                           int m, double eta, int64_t step, int64_t o0, int64_t o1, int64_t k0,
                           int64_t k1, int with_bias, int t) {
    const int n_in = net->sizes[l], n_out = net->sizes[l + 1];
    if (o1 <= o0 || k1 <= k0) return;
    const int R = (int)(o1 - o0), K = (int)(k1 - k0);
    const int64_t off = o0 * n_in + k0;      /* of the block in W[l] and its optimizer state */
    REAL *W = (REAL *)net->W[l] + off;
    REAL *b = (REAL *)net->b[l] + o0;
    const REAL *D = ws->D[l] + o0;          /* column o0 of the (m, n_out) delta block */
    /* this thread's delta columns, transposed to (R, m): the update is then W += Dt @ in,
     * one row of Dt per row of W */
    REAL *Dt = ws->Dt + (int64_t)t * ws->dt_stride;
    for (int r = 0; r < R; r++)
        for (int i = 0; i < m; i++) Dt[(int64_t)r * m + i] = D[(int64_t)i * n_out + r];
    const double inv_m = 1.0 / m;
    const double wd = cfg->lmbda / cfg->reg_n, l1 = cfg->l1 / cfg->reg_n;
    const int opt = cfg->optimizer;
    double lr_t = eta;
    if (opt == FNN_ADAM)
        lr_t = eta * sqrt(1 - pow(cfg->beta2, (double)step)) / (1 - pow(cfg->beta1, (double)step));

    /* biases: the mean delta, never regularized */
    for (int r = 0; with_bias && r < R; r++) {
        double s = 0;
        for (int i = 0; i < m; i++) s += Dt[(int64_t)r * m + i];
        REAL g = (REAL)(s * inv_m);
        if (opt == FNN_SGD) {
            b[r] -= (REAL)eta * g;
        } else if (opt == FNN_MOMENTUM) {
            REAL *v = (REAL *)cfg->s1[l][1] + o0 + r;
            *v = (REAL)cfg->mu * *v - (REAL)eta * g;
            b[r] += *v;
        } else {
            REAL *mm = (REAL *)cfg->s1[l][1] + o0 + r, *vv = (REAL *)cfg->s2[l][1] + o0 + r;
            *mm += (REAL)(1 - cfg->beta1) * (g - *mm);
            *vv += (REAL)(1 - cfg->beta2) * (g * g - *vv);
            b[r] -= (REAL)lr_t * *mm / (FNN_SQRT(*vv) + (REAL)cfg->eps);
        }
    }
    const int plain = opt == FNN_SGD && cfg->l1 == 0;
    /* plain SGD is the book's rule in one product: W = (1 - eta lmbda/n) W - (eta/m) D^T in;
     * the other optimizers first form the mean gradient G = D^T in / m */
    const double alpha = plain ? -eta * inv_m : inv_m;
    const REAL beta = plain ? (REAL)(1 - eta * wd) : (REAL)0;
    REAL *G = plain ? W : ws->G[l] + off;
    if (F(small)(m)) {
        const REAL *ptr[FNN_SMALL_M];
        const REAL a = (REAL)alpha;
        for (int64_t j = 0; j < (int64_t)R * m; j++) Dt[j] *= a;
        F(axpy_rows)(m, F(in_rows)(ws, l, n_in, 0, m, k0, ptr), Dt, m, beta, G, n_in, K, R);
    } else {
        F(gemm)(net, 0, 0, R, K, m, (REAL)alpha, Dt, m, F(layer_in)(ws, l) + k0, n_in, beta, G,
                n_in);
    }
    if (plain) return;
    const REAL cwd = (REAL)wd, cl1 = (REAL)l1, e = (REAL)eta;
    const REAL mu = (REAL)cfg->mu;
    const REAL c1 = (REAL)(1 - cfg->beta1), c2 = (REAL)(1 - cfg->beta2);
    const REAL eps = (REAL)cfg->eps, lr = (REAL)lr_t;
    for (int r = 0; r < R; r++) {
        REAL *Wr = W + (int64_t)r * n_in;
        const REAL *Gr = G + (int64_t)r * n_in;
        if (opt == FNN_SGD) {
#pragma omp simd
            for (int j = 0; j < K; j++) {
                REAL w = Wr[j];
                Wr[j] = w - e * (Gr[j] + cwd * w + cl1 * (REAL)((w > 0) - (w < 0)));
            }
        } else if (opt == FNN_MOMENTUM) {
            REAL *v = (REAL *)cfg->s1[l][0] + off + (int64_t)r * n_in;
#pragma omp simd
            for (int j = 0; j < K; j++) {
                REAL w = Wr[j];
                REAL g = Gr[j] + cwd * w + cl1 * (REAL)((w > 0) - (w < 0));
                v[j] = mu * v[j] - e * g;
                Wr[j] = w + v[j];
            }
        } else {
            REAL *mm = (REAL *)cfg->s1[l][0] + off + (int64_t)r * n_in;
            REAL *vv = (REAL *)cfg->s2[l][0] + off + (int64_t)r * n_in;
#pragma omp simd
            for (int j = 0; j < K; j++) {
                REAL w = Wr[j];
                REAL g = Gr[j] + cwd * w + cl1 * (REAL)((w > 0) - (w < 0));
                mm[j] += c1 * (g - mm[j]);
                vv[j] += c2 * (g * g - vv[j]);
                Wr[j] = w - lr * mm[j] / (FNN_SQRT(vv[j]) + eps);
            }
        }
    }
}

/* Every thread updates its share of every layer: big layers are split by rows, small ones
 * go whole to one thread, round robin.  No barrier between layers: they are independent. */
static void F(update_team)(const fnn_net *net, const fnn_train_cfg *cfg, F(fnn_ws) *ws, int m,
                           double eta, int64_t step, int t, int T) {
    int next = 0;
    for (int l = net->L - 1; l >= 0; l--) {
        const int n_in = net->sizes[l], n_out = net->sizes[l + 1];
        double work = (double)m * n_in * n_out;
        int64_t o0, o1;
        if (F(row_layer)(net, l, m, T) || fnn_is_par(n_out, T, work)) {
            fnn_split(n_out, t, T, work, 0, &o0, &o1);
        } else {
            o0 = 0;
            o1 = (next == t) ? n_out : 0;
            next = (next + 1) % T;
        }
        F(update_rows)(net, cfg, ws, l, m, eta, step, o0, o1, 0, n_in, 1, t);
    }
}

/* One mini-batch of training: examples order[start .. start+m).  A thread runs the forward,
 * output and delta phases on its own examples, except for big hidden layers, whose forward is
 * split by neuron (a barrier on each side); then, after a barrier, it updates its rows of
 * every layer, and a last barrier protects the buffers from the next batch. */
static void F(train_batch)(const fnn_net *net, const fnn_train_cfg *cfg, F(fnn_ws) *ws,
                           int epoch, int64_t start, int m, double eta, int64_t step, int t,
                           int T, int par) {
    const int32_t *order = cfg->orders ? cfg->orders + (int64_t)epoch * cfg->train.n : NULL;
    const int Tp = par ? T : 1;
    int64_t i0, i1;
    fnn_split(m, t, Tp, 1, 0, &i0, &i1);
    if (!par && t != 0) i1 = i0;
    /* a thread whose first layer is split by neuron reads every example: it prefetches all */
    const int all = par && F(row_layer)(net, 0, m, T);
    F(gather)(ws, (const REAL *)cfg->train.X, net->sizes[0], order, start, m, cfg->train.n, i0,
              i1, all ? 0 : i0, all ? m : i1, 0, net->sizes[0]);
    for (int l = 0; l < net->L; l++) {
        if (par && F(row_layer)(net, l, m, T)) {
            int64_t o0, o1;
            fnn_split(net->sizes[l + 1], t, T, 1, 0, &o0, &o1);
            fnn_barrier();
            F(dense_forward)(net, ws, l, cfg->dropout, cfg->seed, epoch, start, 0, m, o0, o1);
            fnn_barrier();
        } else {
            F(dense_forward)(net, ws, l, cfg->dropout, cfg->seed, epoch, start, i0, i1, 0,
                             net->sizes[l + 1]);
        }
    }
    F(output_phase)(net, ws, (const REAL *)cfg->train.Y, 1, i0, i1, t);
    F(backward)(net, ws, i0, i1);
    if (par) fnn_barrier();
    F(update_team)(net, cfg, ws, m, eta, step, t, Tp);
    if (par) fnn_barrier();
}

/* Rows [i0, i1) of a chunk of m rows that thread t owns: the split of the full buffer (M
 * rows), cut at m, so a thread owns the same buffer rows in every chunk, the last shorter one
 * included, and chunks need no barrier between them. */
static inline void F(own_rows)(const F(fnn_ws) *ws, int m, int t, int T, int64_t *i0,
                               int64_t *i1) {
    fnn_split(ws->M, t, T, 1, 0, i0, i1);
    if (*i0 > m) *i0 = m;
    if (*i1 > m) *i1 = m;
}

/* Cost sum and hits over a data set, forward only, rows split among the team; no barriers:
 * every thread works on its own rows of the buffer in each chunk. */
static void F(evaluate_team)(const fnn_net *net, F(fnn_ws) *ws, const fnn_data *data, int t,
                             int T) {
    for (int64_t start = 0; start < data->n; start += ws->M) {
        int m = (int)((data->n - start) < ws->M ? (data->n - start) : ws->M);
        int64_t i0, i1;
        F(own_rows)(ws, m, t, T, &i0, &i1);
        F(gather)(ws, (const REAL *)data->X, net->sizes[0], NULL, start, m, 0, i0, i1, i0, i1, 0, net->sizes[0]);
        F(forward)(net, ws, 0.0, 0, 0, 0, i0, i1);
        F(output_phase)(net, ws, (const REAL *)data->Y, 0, i0, i1, t);
    }
}

static void F(reduce_acc)(F(fnn_ws) *ws, double *cost, int64_t *hits) {
    double c = 0, h = 0;
    for (int t = 0; t < ws->T; t++) {
        c += ws->acc[t * 8 + 0];
        h += ws->acc[t * 8 + 1];
        ws->acc[t * 8 + 0] = 0;
        ws->acc[t * 8 + 1] = 0;
    }
    *cost = c;
    *hits = (int64_t)(h + 0.5);
}

static void F(evaluate_set)(const fnn_net *net, F(fnn_ws) *ws, const fnn_data *data, int T,
                            double *cost, int64_t *hits) {
    F(set_direct)(ws, data->X, net->sizes[0]);
#pragma omp parallel num_threads(T)
    F(evaluate_team)(net, ws, data, fnn_thread_num(), fnn_num_threads());
    F(reduce_acc)(ws, cost, hits);
}

/* sum w^2 and |w| over all weights; returns 0 when any weight or bias is not finite */
static int F(param_norms)(const fnn_net *net, double *w2, double *w1) {
    double s2 = 0, s1 = 0, sb = 0;
    for (int l = 0; l < net->L; l++) {
        const REAL *W = (const REAL *)net->W[l], *b = (const REAL *)net->b[l];
        int64_t nw = (int64_t)net->sizes[l + 1] * net->sizes[l];
        for (int64_t j = 0; j < nw; j++) { double w = W[j]; s2 += w * w; s1 += fabs(w); }
        for (int j = 0; j < net->sizes[l + 1]; j++) sb += fabs((double)b[j]);
    }
    *w2 = s2; *w1 = s1;
    return isfinite(s2) && isfinite(s1) && isfinite(sb);
}

static int64_t F(param_count)(const fnn_net *net) {
    int64_t c = 0;
    for (int l = 0; l < net->L; l++) c += (int64_t)net->sizes[l + 1] * (net->sizes[l] + 1);
    return c;
}

static void F(snapshot)(const fnn_net *net, REAL *buf, int restore) {
    for (int l = 0; l < net->L; l++) {
        size_t nw = (size_t)net->sizes[l + 1] * net->sizes[l], nb = net->sizes[l + 1];
        if (restore) {
            memcpy(net->W[l], buf, nw * sizeof(REAL)); buf += nw;
            memcpy(net->b[l], buf, nb * sizeof(REAL)); buf += nb;
        } else {
            memcpy(buf, net->W[l], nw * sizeof(REAL)); buf += nw;
            memcpy(buf, net->b[l], nb * sizeof(REAL)); buf += nb;
        }
    }
}

/* ------------------------------------------------------------------------------------------ */
/* entry points, called without the GIL                                                       */

/* The whole training call: every epoch, every mini-batch, the per-epoch evaluation. */
static int F(fnn_train)(fnn_net *net, fnn_train_cfg *cfg) {
    const int T = net->n_threads > 0 ? net->n_threads : 1;
    const int64_t n = cfg->train.n;
    const int batch = cfg->batch;
    int M = batch;
    if ((cfg->monitor & (FNN_MON_TRAIN | FNN_MON_EVAL)) && M < FNN_EVAL_BATCH) M = FNN_EVAL_BATCH;
    F(fnn_ws) ws;
    int need_G = !(cfg->optimizer == FNN_SGD && cfg->l1 == 0);
    if (F(ws_alloc)(&ws, net, M, T, 1, cfg->dropout > 0, need_G) != FNN_OK) return FNN_NOMEM;
    REAL *snap = (REAL *)malloc(sizeof(REAL) * (size_t)F(param_count)(net));
    if (snap == NULL) { F(ws_free)(&ws); return FNN_NOMEM; }

    /* threads pay off only when a mini-batch has enough work */
    const int par = T > 1 && batch >= T && (double)batch * F(param_count)(net) >= FNN_PAR_MIN;
    F(set_direct)(&ws, cfg->train.X, net->sizes[0]);
    const int train_direct = ws.direct;
    const int Tt = par ? T : 1;

    int status = FNN_OK;
    double eta = cfg->eta;
    const int64_t nb = (n + batch - 1) / batch;
    const int64_t ce = cfg->check_every > 0 ? cfg->check_every : (nb > 0 ? nb : 1);
    cfg->epochs_done = 0;
    cfg->diverged_epoch = -1;
    for (int epoch = 0; epoch < cfg->epochs; epoch++) {
        fnn_epoch_stats st;
        memset(&st, 0, sizeof(st));
        st.epoch = epoch;
        F(snapshot)(net, snap, 0);
        ws.direct = train_direct;
        for (int64_t c0 = 0; c0 < nb; c0 += ce) {
            int64_t c1 = c0 + ce < nb ? c0 + ce : nb;
#pragma omp parallel num_threads(Tt)
            {
                const int t = fnn_thread_num(), TT = fnn_num_threads();
                for (int64_t bi = c0; bi < c1; bi++) {
                    int64_t start = bi * batch;
                    int m = (int)(n - start < batch ? n - start : batch);
                    F(train_batch)(net, cfg, &ws, epoch, start, m, eta, cfg->adam_t + bi + 1, t,
                                   TT, TT > 1);
                }
            }
            if (c1 < nb && cfg->check != NULL && cfg->check(cfg->ctx)) {
                /* stopped inside the epoch: keep the last finished mini-batch's weights if
                 * they are finite, else the weights from the start of the epoch */
                if (cfg->optimizer == FNN_ADAM) cfg->adam_t += c1;
                if (!F(param_norms)(net, &st.sum_w2, &st.sum_w1)) {
                    F(snapshot)(net, snap, 1);
                    cfg->diverged_epoch = epoch;
                }
                status = FNN_INTERRUPTED;
                goto done;
            }
        }
        if (cfg->optimizer == FNN_ADAM) cfg->adam_t += nb;
        st.batches = nb;
        F(reduce_acc)(&ws, &st.run_cost, &st.run_correct);
        st.run_n = n;
        if (!F(param_norms)(net, &st.sum_w2, &st.sum_w1)) {
            F(snapshot)(net, snap, 1);
            cfg->diverged_epoch = epoch;
            status = FNN_DIVERGED;
            goto done;
        }
        if (cfg->monitor & FNN_MON_TRAIN)
            F(evaluate_set)(net, &ws, &cfg->train, T, &st.train_cost, &st.train_correct);
        if (cfg->monitor & FNN_MON_EVAL)
            F(evaluate_set)(net, &ws, &cfg->eval, T, &st.eval_cost, &st.eval_correct);
        cfg->epochs_done = epoch + 1;
        st.eta = eta;
        if (cfg->on_epoch != NULL) {
            if (cfg->on_epoch(cfg->ctx, &st) != 0) { status = FNN_CALLBACK_ERROR; goto done; }
            if (st.stop) { status = FNN_STOPPED; goto done; }
            eta = st.eta;
        }
    }
done:
    cfg->eta = eta;
    free(snap);
    F(ws_free)(&ws);
    return status;
}

/* out (n, n_out) = the network's output for X (n, n_in). */
static int F(fnn_predict)(const fnn_net *net, const REAL *X, int64_t n, REAL *out) {
    const int T = net->n_threads > 0 ? net->n_threads : 1, L = net->L, no = net->sizes[L];
    F(fnn_ws) ws;
    if (F(ws_alloc)(&ws, net, FNN_EVAL_BATCH, T, 0, 0, 0) != FNN_OK) return FNN_NOMEM;
    F(set_direct)(&ws, X, net->sizes[0]);
#pragma omp parallel num_threads(T)
    {
        const int t = fnn_thread_num(), TT = fnn_num_threads();
        for (int64_t start = 0; start < n; start += ws.M) {
            int m = (int)((n - start) < ws.M ? (n - start) : ws.M);
            int64_t i0, i1;
            F(own_rows)(&ws, m, t, TT, &i0, &i1);
            F(gather)(&ws, X, net->sizes[0], NULL, start, m, 0, i0, i1, i0, i1, 0, net->sizes[0]);
            F(forward)(net, &ws, 0.0, 0, 0, 0, i0, i1);
            if (i1 > i0)
                memcpy(out + (start + i0) * no, ws.A[L - 1] + i0 * no,
                       sizeof(REAL) * (size_t)(i1 - i0) * no);
        }
    }
    F(ws_free)(&ws);
    return FNN_OK;
}

/* Cost sum and hits over (X, Y); forward only. */
static int F(fnn_evaluate)(const fnn_net *net, const fnn_data *data, double *cost,
                           int64_t *hits) {
    const int T = net->n_threads > 0 ? net->n_threads : 1;
    F(fnn_ws) ws;
    if (F(ws_alloc)(&ws, net, FNN_EVAL_BATCH, T, 0, 0, 0) != FNN_OK) return FNN_NOMEM;
    F(evaluate_set)(net, &ws, data, T, cost, hits);
    F(ws_free)(&ws);
    return FNN_OK;
}

/* Gradients of the cost summed over (X, Y): gW[l] (n_out, n_in) and gb[l] (n_out) are
 * overwritten; `cost` gets the cost sum (no regularization, no dropout). */
static int F(fnn_gradient)(const fnn_net *net, const fnn_data *data, REAL **gW, REAL **gb,
                           double *cost) {
    const int L = net->L;
    F(fnn_ws) ws;
    if (F(ws_alloc)(&ws, net, FNN_EVAL_BATCH, 1, 1, 0, 0) != FNN_OK) return FNN_NOMEM;
    for (int l = 0; l < L; l++) {
        memset(gW[l], 0, sizeof(REAL) * (size_t)net->sizes[l + 1] * net->sizes[l]);
        memset(gb[l], 0, sizeof(REAL) * (size_t)net->sizes[l + 1]);
    }
    for (int64_t start = 0; start < data->n; start += ws.M) {
        int m = (int)((data->n - start) < ws.M ? (data->n - start) : ws.M);
        F(gather)(&ws, (const REAL *)data->X, net->sizes[0], NULL, start, m, 0, 0, m, 0, m, 0, net->sizes[0]);
        F(forward)(net, &ws, 0.0, 0, 0, 0, 0, m);
        F(output_phase)(net, &ws, (const REAL *)data->Y, 1, 0, m, 0);
        F(backward)(net, &ws, 0, m);
        for (int l = 0; l < L; l++) {
            const int n_in = net->sizes[l], n_out = net->sizes[l + 1];
            F(gemm)(net, 1, 0, n_out, n_in, m, 1, ws.D[l], n_out, F(layer_in)(&ws, l), n_in, 1,
                    gW[l], n_in);
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n_out; j++) gb[l][j] += ws.D[l][(int64_t)i * n_out + j];
        }
    }
    double c;
    int64_t h;
    F(reduce_acc)(&ws, &c, &h);
    *cost = c;
    F(ws_free)(&ws);
    return FNN_OK;
}

#undef F

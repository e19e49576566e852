/* kernels_rows.h: the small-batch products with the weights as rows.  A dense layer called
 * on a few examples (a mini-batch of 10, a thread's share of 32) is a GEMM with a short
 * dimension, where BLAS spends more time packing than computing.  These two kernels read the
 * examples in place through row pointers (the training rows need no gather copy) and keep a
 * block of results in vector registers:
 *   dot_rows:  z[i][r] = sum_k x_i[k] W[r][k]            (forward: in @ W^T)
 *   axpy_rows: W[r][k] = decay W[r][k] + sum_i c[r][i] x_i[k]   (update: W += c @ in)
 * Rows that start on a vector boundary run fastest; the Python layer allocates the data
 * that way.  Plain loops (dot_ref, axpy_ref) stand beside them as reference and fallback. */

#ifdef FNN_VEC_KERNELS
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
    if (k < K) {   /* the last partial vector, zero padded */
        F(vec) wv[2];
        for (int r = 0; r < NR; r++) wv[r] = F(vload_n)(w + (int64_t)r * ldw + k, K - k);
        for (int i = 0; i < G; i++) {
            F(vec) xv = F(vload_n)(x[i] + k, K - k);
            for (int r = 0; r < NR; r++) acc[r][i] += wv[r] * xv;
        }
    }
    F(vec) all[2 * FNN_GMAX];
    REAL sum[2 * FNN_GMAX];
    for (int r = 0; r < NR; r++)
        for (int i = 0; i < G; i++) all[r * G + i] = acc[r][i];
    F(vsum_n)(all, NR * G, sum);
    for (int r = 0; r < NR; r++)
        for (int i = 0; i < G; i++) z[(int64_t)i * ldz + r] = sum[r * G + i];
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
    if (k < K) {   /* the last partial vector */
        const int nk = K - k;
        F(vec) xv[FNN_GMAX];
        for (int i = 0; i < G; i++) xv[i] = F(vload_n)(x[i] + k, nk);
        for (int r = 0; r < R; r++) {
            REAL *wr = W + (int64_t)r * ldw + k;
            const REAL *cr = c + (int64_t)r * ldc;
            F(vec) a = decay == 0 ? (F(vec)){0} : F(vload_n)(wr, nk) * decay;
            for (int i = 0; i < G; i++) a += cr[i] * xv[i];
            F(vstore_n)(wr, a, nk);
        }
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
/* M(G) for every block size G up to FNN_GMAX */
#if FNN_GMAX >= 12
#define FNN_FOR_G(M) M(1) M(2) M(3) M(4) M(5) M(6) M(7) M(8) M(9) M(10) M(11) M(12)
#else
#define FNN_FOR_G(M) M(1) M(2) M(3) M(4) M(5) M(6)
#endif
FNN_FOR_G(FNN_KERNELS_G)
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
#endif /* FNN_VEC_KERNELS */

/* The plain loops of the four products below, for compilers without vector types: weight
 * (r, k) of neuron r and input k is at W[r * sr + k * sk] (rows: sr = ldw, sk = 1;
 * transposed: sr = 1, sk = ldr). */
static inline void F(dot_ref)(int m, const REAL *const *x, const REAL *W, int64_t sr,
                              int64_t sk, int K, int R, REAL *z, int ldz) {
    for (int i = 0; i < m; i++)
        for (int r = 0; r < R; r++) {
            REAL s = 0;
            for (int k = 0; k < K; k++) s += x[i][k] * W[r * sr + k * sk];
            z[(int64_t)i * ldz + r] = s;
        }
}

/* W(r, k) = decay W(r, k) + sum_i c(r, i) x_i[k], c(r, i) at c[r * cr + i * ci] */
static inline void F(axpy_ref)(int m, const REAL *const *x, const REAL *c, int64_t cr,
                               int64_t ci, REAL decay, REAL *W, int64_t sr, int64_t sk, int K,
                               int R) {
    for (int r = 0; r < R; r++)
        for (int k = 0; k < K; k++) {
            REAL *w = W + r * sr + k * sk;
            REAL a = decay == 0 ? 0 : *w * decay;
            for (int i = 0; i < m; i++) a += c[r * cr + i * ci] * x[i][k];
            *w = a;
        }
}

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
    F(dot_ref)(m, x, W, ldw, 1, K, R, z, ldz);
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
    F(axpy_ref)(m, x, c, ldc, 1, decay, W, ldw, 1, K, R);
#endif
}

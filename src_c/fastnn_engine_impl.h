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

/* FNN_NO_VEC_KERNELS (a test build) takes the plain loops a compiler without vector types
 * would get */
#if defined(__GNUC__) && !defined(FNN_NO_VEC_KERNELS)
#define FNN_VEC_KERNELS 1
typedef REAL F(vec) __attribute__((vector_size(FNN_VBYTES)));
#define FNN_VL ((int)(FNN_VBYTES / sizeof(REAL)))

FNN_INLINE F(vec) F(vload)(const REAL *p) { F(vec) v; memcpy(&v, p, sizeof v); return v; }
FNN_INLINE void F(vstore)(REAL *p, F(vec) v) { memcpy(p, &v, sizeof v); }
/* the first n lanes only (n < lanes): the rest read as zero, and are not written; masked
 * moves with AVX-512 (no memcpy calls: these run on every row's tail) */
FNN_INLINE F(vec) F(vload_n)(const REAL *p, int n) {
#if defined(__AVX512F__)
    if (sizeof(REAL) == sizeof(double)) {
        __m512d v = _mm512_maskz_loadu_pd((__mmask8)((1u << n) - 1), (const void *)p);
        F(vec) r; memcpy(&r, &v, sizeof r); return r;
    } else {
        __m512 v = _mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1), (const void *)p);
        F(vec) r; memcpy(&r, &v, sizeof r); return r;
    }
#else
    F(vec) v = (F(vec)){0};
    for (int j = 0; j < n; j++) v[j] = p[j];
    return v;
#endif
}
FNN_INLINE void F(vstore_n)(REAL *p, F(vec) v, int n) {
#if defined(__AVX512F__)
    if (sizeof(REAL) == sizeof(double)) {
        __m512d x; memcpy(&x, &v, sizeof x);
        _mm512_mask_storeu_pd((void *)p, (__mmask8)((1u << n) - 1), x);
    } else {
        __m512 x; memcpy(&x, &v, sizeof x);
        _mm512_mask_storeu_ps((void *)p, (__mmask16)((1u << n) - 1), x);
    }
#else
    for (int j = 0; j < n; j++) p[j] = v[j];
#endif
}
/* the sum of a vector's lanes, by halving it: log2(lanes) adds instead of lanes - 1 in a chain */
FNN_INLINE REAL F(vsum)(F(vec) v) {
    char *p = (char *)&v;
#define FNN_HALVE(BYTES)                                                                   \
    do {                                                                                   \
        typedef REAL h_t __attribute__((vector_size(BYTES)));                              \
        h_t lo, hi;                                                                        \
        memcpy(&lo, p, BYTES);                                                             \
        memcpy(&hi, p + (BYTES), BYTES);                                                   \
        lo += hi;                                                                          \
        memcpy(p, &lo, BYTES);                                                             \
    } while (0)
#if FNN_VBYTES >= 64
    FNN_HALVE(32);
#endif
#if FNN_VBYTES >= 32
    FNN_HALVE(16);
#endif
    if (sizeof(REAL) == sizeof(float)) FNN_HALVE(8);
#undef FNN_HALVE
    return v[0] + v[1];
}

typedef FNN_IREAL F(ivec) __attribute__((vector_size(FNN_VBYTES)));

FNN_INLINE F(ivec) F(vbits)(F(vec) v) { F(ivec) i; memcpy(&i, &v, sizeof i); return i; }
FNN_INLINE F(vec) F(vfrom)(F(ivec) i) { F(vec) v; memcpy(&v, &i, sizeof v); return v; }

/* exp(x) for x <= 0, lane by lane, without calls, so a whole vector at a time: x = n ln2 + r
 * with |r| <= ln2/2, exp(r) by its Taylor polynomial (degree 13 for double, 7 for float:
 * truncation below half an ulp), times 2^n built in the exponent bits in two halves so that
 * results down to the subnormals come out right.  x below the smallest subnormal's log
 * gives 0. */
FNN_INLINE F(vec) F(vexp_neg)(F(vec) x) {
    const int dbl = sizeof(REAL) == sizeof(double);
    const REAL lo = dbl ? (REAL)-745.2 : (REAL)-104.0;
    const REAL inv_ln2 = (REAL)1.44269504088896338700;
    const REAL ln2_hi = dbl ? (REAL)6.93147180369123816490e-01 : (REAL)0.693145751953125f;
    const REAL ln2_lo = dbl ? (REAL)1.90821492927058770002e-10 : (REAL)1.428606765330187045e-06f;
    const REAL shifter = dbl ? (REAL)6755399441055744.0 : (REAL)12582912.0f; /* 1.5 * 2^52|23 */
    const int mant = dbl ? 52 : 23, bias = dbl ? 1023 : 127;
    const F(vec) vlo = (F(vec)){0} + lo;
    F(ivec) under = x < vlo;                    /* all ones where x < lo */
    x = F(vfrom)((F(vbits)(x) & ~under) | (F(vbits)(vlo) & under));
    F(vec) t = x * inv_ln2 + shifter;
    F(vec) nf = t - shifter;                    /* round(x / ln2) */
    F(vec) r = x - nf * ln2_hi;
    r = r - nf * ln2_lo;
    F(vec) p;
    if (dbl) {
        p = (F(vec)){0} + (REAL)(1.0 / 6227020800.0);
        p = p * r + (REAL)(1.0 / 479001600.0);
        p = p * r + (REAL)(1.0 / 39916800.0);
        p = p * r + (REAL)(1.0 / 3628800.0);
        p = p * r + (REAL)(1.0 / 362880.0);
        p = p * r + (REAL)(1.0 / 40320.0);
        p = p * r + (REAL)(1.0 / 5040.0);
        p = p * r + (REAL)(1.0 / 720.0);
        p = p * r + (REAL)(1.0 / 120.0);
    } else {
        p = (F(vec)){0} + (REAL)(1.0 / 5040.0);
        p = p * r + (REAL)(1.0 / 720.0);
        p = p * r + (REAL)(1.0 / 120.0);
    }
    p = p * r + (REAL)(1.0 / 24.0);
    p = p * r + (REAL)(1.0 / 6.0);
    p = p * r + (REAL)0.5;
    p = p * r + (REAL)1;
    p = p * r + (REAL)1;
    F(ivec) n = __builtin_convertvector(nf, F(ivec));
    F(ivec) n1 = n >> 1, n2 = n - n1;           /* both halves are normal exponents */
    F(vec) s1 = F(vfrom)((n1 + bias) << mant), s2 = F(vfrom)((n2 + bias) << mant);
    return (p * s1) * s2;
}

/* the sigmoid of a vector, the same branch-free way as the scalar one */
FNN_INLINE F(vec) F(vsigmoid)(F(vec) z) {
    F(ivec) pos = z >= (F(vec)){0};
    F(vec) e = F(vexp_neg)(F(vfrom)((F(vbits)(-z) & pos) | (F(vbits)(z) & ~pos)));  /* e^-|z| */
    F(vec) r = (REAL)1 / ((REAL)1 + e);
    return F(vfrom)((F(vbits)(r) & pos) | (F(vbits)(e * r) & ~pos));
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
    if (k < K) {   /* the last partial vector, zero padded */
        F(vec) wv[2];
        for (int r = 0; r < NR; r++) wv[r] = F(vload_n)(w + (int64_t)r * ldw + k, K - k);
        for (int i = 0; i < G; i++) {
            F(vec) xv = F(vload_n)(x[i] + k, K - k);
            for (int r = 0; r < NR; r++) acc[r][i] += wv[r] * xv;
        }
    }
    for (int r = 0; r < NR; r++)
        for (int i = 0; i < G; i++) z[(int64_t)i * ldz + r] = F(vsum)(acc[r][i]);
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

/* The same two products with the weights transposed, (K, ldr): one row per input, the R
 * neurons along it padded with zeros to ldr, a whole number of vectors.  The vectors run
 * over neurons, so a block of G examples times VB vectors of neurons accumulates with no
 * sum across lanes at the end, and each input value is broadcast from its row:
 *   dott:  z[i][v] = sum_k x_i[k] Wt[k][v]              (forward: in @ W^T)
 *   axpyt: Wt[k][v] = decay Wt[k][v] + sum_i x_i[k] c[i][v]   (update: W^T += in^T @ c)
 * The K-split path keeps its block of W[0] this way. */
FNN_INLINE void F(dott_block)(const int G, const int VB, const REAL *const *x, int kofs,
                              const REAL *Wt, int ldr, int K, REAL *z, int ldz, int add) {
    F(vec) acc[FNN_GMAX][4];
    const REAL *xp[FNN_GMAX];
    for (int i = 0; i < G; i++) {
        xp[i] = x[i] + kofs;
        for (int v = 0; v < VB; v++)
            acc[i][v] = add ? F(vload)(z + (int64_t)i * ldz + v * FNN_VL) : (F(vec)){0};
    }
    for (int k = 0; k < K; k++) {
        F(vec) w[4];
        for (int v = 0; v < VB; v++) w[v] = F(vload)(Wt + (int64_t)k * ldr + v * FNN_VL);
        for (int i = 0; i < G; i++) {
            const REAL xb = xp[i][k];
            for (int v = 0; v < VB; v++) acc[i][v] += xb * w[v];
        }
    }
    for (int i = 0; i < G; i++)
        for (int v = 0; v < VB; v++) F(vstore)(z + (int64_t)i * ldz + v * FNN_VL, acc[i][v]);
}

/* mode: 0 overwrite, 1 add, 2 scale by decay and add; the input pointers are copied first
 * so that the stores to Wt cannot alias them */
FNN_INLINE void F(axpyt_loop)(const int G, const int VB, const int mode,
                              const REAL *const *x, int kofs, const REAL *c, int ldc,
                              REAL decay, REAL *Wt, int ldr, int K) {
    F(vec) cv[FNN_GMAX][4];
    const REAL *xp[FNN_GMAX];
    for (int i = 0; i < G; i++) {
        xp[i] = x[i] + kofs;
        for (int v = 0; v < VB; v++) cv[i][v] = F(vload)(c + (int64_t)i * ldc + v * FNN_VL);
    }
    for (int k = 0; k < K; k++) {
        REAL *wk = Wt + (int64_t)k * ldr;
        F(vec) a[4];
        for (int v = 0; v < VB; v++)
            a[v] = mode == 0 ? (F(vec)){0}
                 : mode == 1 ? F(vload)(wk + v * FNN_VL) : F(vload)(wk + v * FNN_VL) * decay;
        for (int i = 0; i < G; i++) {
            const REAL xb = xp[i][k];
            for (int v = 0; v < VB; v++) a[v] += xb * cv[i][v];
        }
        for (int v = 0; v < VB; v++) F(vstore)(wk + v * FNN_VL, a[v]);
    }
}

FNN_INLINE void F(axpyt_block)(const int G, const int VB, const REAL *const *x, int kofs,
                               const REAL *c, int ldc, REAL decay, REAL *Wt, int ldr, int K) {
    if (decay == 0) F(axpyt_loop)(G, VB, 0, x, kofs, c, ldc, decay, Wt, ldr, K);
    else if (decay == 1) F(axpyt_loop)(G, VB, 1, x, kofs, c, ldc, decay, Wt, ldr, K);
    else F(axpyt_loop)(G, VB, 2, x, kofs, c, ldc, decay, Wt, ldr, K);
}

#define FNN_KERNELS_T(G, VB)                                                                 \
    static void F(dott_##G##_##VB)(const REAL *const *x, int kofs, const REAL *Wt, int ldr, \
                                   int K, REAL *z, int ldz, int add) {                       \
        F(dott_block)(G, VB, x, kofs, Wt, ldr, K, z, ldz, add);                              \
    }                                                                                        \
    static void F(axpyt_##G##_##VB)(const REAL *const *x, int kofs, const REAL *c, int ldc,  \
                                    REAL decay, REAL *Wt, int ldr, int K) {                  \
        F(axpyt_block)(G, VB, x, kofs, c, ldc, decay, Wt, ldr, K);                           \
    }
#define FNN_KERNELS_T4(G) FNN_KERNELS_T(G, 1) FNN_KERNELS_T(G, 2) FNN_KERNELS_T(G, 3) \
    FNN_KERNELS_T(G, 4)
FNN_FOR_G(FNN_KERNELS_T4)
#undef FNN_FOR_G
#undef FNN_KERNELS_T4
#undef FNN_KERNELS_T

typedef void (*F(dott_fn))(const REAL *const *, int, const REAL *, int, int, REAL *, int, int);
typedef void (*F(axpyt_fn))(const REAL *const *, int, const REAL *, int, REAL, REAL *, int, int);
#define FNN_T4(name, G) {F(name##_##G##_1), F(name##_##G##_2), F(name##_##G##_3), F(name##_##G##_4)}
#define FNN_T6(name) FNN_T4(name, 1), FNN_T4(name, 2), FNN_T4(name, 3), FNN_T4(name, 4), \
    FNN_T4(name, 5), FNN_T4(name, 6)
#if FNN_GMAX >= 12
#define FNN_TALL(name) FNN_T6(name), FNN_T4(name, 7), FNN_T4(name, 8), FNN_T4(name, 9), \
    FNN_T4(name, 10), FNN_T4(name, 11), FNN_T4(name, 12)
#else
#define FNN_TALL(name) FNN_T6(name)
#endif
static const F(dott_fn) F(dott_table)[FNN_GMAX][4] = {FNN_TALL(dott)};
static const F(axpyt_fn) F(axpyt_table)[FNN_GMAX][4] = {FNN_TALL(axpyt)};
#undef FNN_TALL
#undef FNN_T6
#undef FNN_T4
#define FNN_VEC_SIGMOID 1
#endif /* __GNUC__ */

/* the row stride of a transposed block of R neurons: whole vectors */
static inline int F(ldr_of)(int R) {
    const int vl = (int)(FNN_VBYTES / sizeof(REAL));
    return (R + vl - 1) / vl * vl;
}

/* Wt (K, ldr) = the K columns of W (R rows, row stride ldw) from W[0] on, transposed, zero in
 * the padding (neurons R to ldr) */
static void F(transpose_in)(const REAL *W, int64_t ldw, int R, int64_t K, int ldr, REAL *Wt) {
    for (int o = 0; o < ldr; o++)
        for (int64_t k = 0; k < K; k++) Wt[k * ldr + o] = o < R ? W[(int64_t)o * ldw + k] : 0;
}

/* examples per block of the transposed kernels with vb vectors of accumulators: they fill
 * at most 3/4 of the vector registers (32 with AVX-512, else 16) */
static inline int F(tgroup)(int vb) {
    const int g = (FNN_VBYTES >= 64 ? 24 : 12) / vb;
    return g < FNN_GMAX ? g : FNN_GMAX;
}

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

/* rows of Wt per tile: every block of examples and of neurons passes over a tile (about 64
 * KiB, in L2) before the next, so the weights come from memory once per call and the
 * partial sums are reloaded once per tile.  Measured against 8, 16, 32 KiB and no tiling:
 * 64 KiB was best or level on W1, W2 and network2's [784, 100, 10]. */
static inline int F(ktile)(int ldr) {
    int kt = (int)(65536 / ((int64_t)ldr * (int64_t)sizeof(REAL)));
    return kt < 8 ? 8 : kt;
}

#ifdef FNN_VEC_KERNELS
/* The walk both transposed products share: tiles of Wt's rows, blocks of at most 4 vectors
 * of neurons, the examples in near-equal blocks that fit the registers.  upd = 0: the forward
 * (z written, or added to after the first tile); upd = 1: the update. */
static void F(trans_walk)(int upd, int m, const REAL *const *x, const REAL *c, int ldc,
                          REAL decay, REAL *Wt, int ldr, int K, int kt, REAL *z, int ldz) {
    const int nv = ldr / FNN_VL;
    for (int k0 = 0; k0 < K || (k0 == 0 && !upd); k0 += kt) {   /* K = 0 still zeroes z */
        const int kn = K - k0 < kt ? K - k0 : kt;
        for (int v0 = 0; v0 < nv; v0 += 4) {
            const int vb = nv - v0 < 4 ? nv - v0 : 4, gm = F(tgroup)(vb);
            const int nblk = (m + gm - 1) / gm;
            REAL *wt = Wt + (int64_t)k0 * ldr + v0 * FNN_VL;
            for (int b = 0, i0 = 0; b < nblk; b++) {
                const int g = (m - i0) / (nblk - b);
                if (upd)
                    F(axpyt_table)[g - 1][vb - 1](x + i0, k0, c + (int64_t)i0 * ldc + v0 * FNN_VL,
                                                  ldc, b == 0 ? decay : (REAL)1, wt, ldr, kn);
                else
                    F(dott_table)[g - 1][vb - 1](x + i0, k0, wt, ldr, kn,
                                                 z + (int64_t)i0 * ldz + v0 * FNN_VL, ldz, k0 > 0);
                i0 += g;
            }
        }
        if (K <= 0) break;
    }
}
#endif

/* z (m, ldz) = x (m rows, K columns) @ Wt (K, ldr): all ldr columns of z are written; Wt in
 * tiles of kt rows (0: F(ktile)) */
static void F(dott_rows)(int m, const REAL *const *x, const REAL *Wt, int ldr, int K, int kt,
                         REAL *z, int ldz) {
#ifdef FNN_VEC_KERNELS
    F(trans_walk)(0, m, x, NULL, 0, 0, (REAL *)Wt, ldr, K, kt > 0 ? kt : F(ktile)(ldr), z, ldz);
#else
    F(dot_ref)(m, x, Wt, 1, ldr, K, ldr, z, ldz);
#endif
}

/* Wt (K, ldr) = decay Wt + x^T (K, m) @ c (m, ldr; row stride ldc); decay == 0 overwrites */
static void F(axpyt_rows)(int m, const REAL *const *x, const REAL *c, int ldc, REAL decay,
                          REAL *Wt, int ldr, int K) {
#ifdef FNN_VEC_KERNELS
    F(trans_walk)(1, m, x, c, ldc, decay, Wt, ldr, K, F(ktile)(ldr), NULL, 0);
#else
    F(axpy_ref)(m, x, c, 1, ldc, decay, Wt, 1, ldr, K, ldr);
#endif
}
/* whether those two have vector code (the forward-only passes take them then) */
#ifdef FNN_VEC_KERNELS
#define FNN_TRANS_VEC 1
#else
#define FNN_TRANS_VEC 0
#endif
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
        case FNN_SIGMOID: {
            int j = j0;
#ifdef FNN_VEC_SIGMOID
            for (; j + FNN_VL <= j1; j += FNN_VL) {
                F(vec) v = F(vload)(zr + j) + F(vload)(b + j);
                F(vstore)(zr + j, v);
                F(vstore)(ar + j, F(vsigmoid)(v));
            }
            if (j < j1) {   /* the tail too, in a vector padded with zeros */
                F(vec) v = F(vload_n)(zr + j, j1 - j) + F(vload_n)(b + j, j1 - j);
                F(vstore_n)(zr + j, v, j1 - j);
                F(vstore_n)(ar + j, F(vsigmoid)(v), j1 - j);
                j = j1;
            }
#endif
            for (; j < j1; j++) { REAL v = zr[j] + b[j]; zr[j] = v; ar[j] = F(sigmoid)(v); }
            break;
        }
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
    REAL *Wt0;                    /* (n_0, ldr0) W[0] transposed, for forward-only passes */
    REAL *Zt;                     /* (M, ldr0) their first-layer products */
    int ldr0;                     /* 0 when those passes go through forward() */
    REAL *Dt;                     /* (T, max n_l * M) per-thread transposed delta slices */
    int64_t dt_stride;
    double *acc;                  /* (T, 8): cost, hits; padded against false sharing */
} F(fnn_ws);

static void F(ws_free)(F(fnn_ws) *ws) {
    fnn_free(ws->x); fnn_free(ws->idx); fnn_free(ws->acc); fnn_free(ws->Dt);
    fnn_free((void *)ws->rows); fnn_free(ws->Wt0); fnn_free(ws->Zt);
    for (int l = 0; l < FNN_MAX_LAYERS; l++) {
        fnn_free(ws->Z[l]); fnn_free(ws->A[l]); fnn_free(ws->D[l]); fnn_free(ws->K[l]);
        fnn_free(ws->G[l]);
    }
    memset(ws, 0, sizeof(*ws));
}

static int F(ws_alloc)(F(fnn_ws) *ws, const fnn_net *net, int M, int T, int need_D,
                       int need_K, int need_G) {
    memset(ws, 0, sizeof(*ws));
    ws->M = M; ws->T = T;
    const int *S = net->sizes;
    ws->x = (REAL *)fnn_malloc(sizeof(REAL) * (size_t)M * S[0]);
    ws->idx = (int64_t *)fnn_malloc(sizeof(int64_t) * (size_t)M);
    ws->rows = (const REAL **)fnn_malloc(sizeof(REAL *) * (size_t)M);
    ws->acc = (double *)fnn_calloc((size_t)T * 8, sizeof(double));
    int nmax = 1;
    for (int l = 1; l <= net->L; l++) nmax = S[l] > nmax ? S[l] : nmax;
    ws->dt_stride = (int64_t)nmax * M + 16;
    ws->Dt = need_D ? (REAL *)fnn_malloc(sizeof(REAL) * (size_t)T * ws->dt_stride) : NULL;
    int ok = ws->x && ws->idx && ws->rows && ws->acc && (ws->Dt || !need_D);
    for (int l = 0; ok && l < net->L; l++) {
        size_t nl = (size_t)S[l + 1] * M;
        ws->Z[l] = (REAL *)fnn_malloc(sizeof(REAL) * nl);
        ws->A[l] = (REAL *)fnn_malloc(sizeof(REAL) * nl);
        ok = ws->Z[l] && ws->A[l];
        if (ok && need_D) ok = (ws->D[l] = (REAL *)fnn_malloc(sizeof(REAL) * nl)) != NULL;
        if (ok && need_K && l < net->L - 1)
            ok = (ws->K[l] = (REAL *)fnn_malloc(sizeof(REAL) * nl)) != NULL;
        if (ok && need_G)
            ok = (ws->G[l] = (REAL *)fnn_malloc(sizeof(REAL) * (size_t)S[l + 1] * S[l])) != NULL;
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
 * small-batch kernels (calls on at most m_max examples) and the rows start on vector
 * boundaries. */
static inline void F(set_direct)(F(fnn_ws) *ws, const void *X, int n_in, int64_t m_max) {
    ws->direct = F(small)(m_max) && (uintptr_t)X % FNN_VBYTES == 0 &&
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
        for (size_t off = 0; off < sizeof(REAL) * (size_t)(k1 - k0); off += FNN_PF_STEP)
            __builtin_prefetch(p + off, 0, FNN_PF_HINT);
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

/* The forward-only passes (evaluation, prediction) run the first layer through a transposed
 * copy of W[0] and the transposed kernels, reading the rows of X in place.  On chunks of
 * 128 rows per thread they measured 1.2x (100 neurons) to 2x (30 neurons) the speed of BLAS
 * on the same rows (float64, Zen 4, 2 threads), where BLAS is held back by the short side.
 * Wider first layers stay with BLAS. */
#ifndef FNN_EVALT_MAXN
#define FNN_EVALT_MAXN 256
#endif

/* rows of Wt0 per tile: near-equal tiles of at most about 384 KiB, which stay in L2 with
 * the chunk's rows (measured: 64 KiB tiles lose 10 %, 16 KiB 30 %, to no tiling at 650 KiB) */
static inline int F(ktile_eval)(int ldr, int K) {
    int kt = (int)(393216 / ((int64_t)ldr * (int64_t)sizeof(REAL)));
    if (kt < 8) kt = 8;
    if (kt >= K) return K > 0 ? K : 1;
    int nt = (K + kt - 1) / kt;
    return (K + nt - 1) / nt;
}

/* Before a forward-only pass: fill ws->Wt0 from W[0] (allocated at the first pass) and read
 * the rows in place; without the vector kernels, for wide layers, or when the memory is not
 * there, the pass goes through forward() instead. */
static void F(eval_prepare)(const fnn_net *net, F(fnn_ws) *ws) {
    ws->ldr0 = 0;
    const int n0 = net->sizes[0], n1 = net->sizes[1], ldr = F(ldr_of)(n1);
    if (!FNN_TRANS_VEC || n1 > FNN_EVALT_MAXN) return;
    if (ws->Wt0 == NULL) {
        ws->Wt0 = (REAL *)fnn_malloc(sizeof(REAL) * (size_t)n0 * ldr);
        ws->Zt = (REAL *)fnn_malloc(sizeof(REAL) * (size_t)ws->M * ldr);
        if (ws->Wt0 == NULL || ws->Zt == NULL) {
            fnn_free(ws->Wt0); fnn_free(ws->Zt);
            ws->Wt0 = ws->Zt = NULL;
            return;
        }
    }
    F(transpose_in)((const REAL *)net->W[0], n0, n1, n0, ldr, ws->Wt0);
    ws->ldr0 = ldr;
    ws->direct = 1;   /* the transposed kernels read x one number at a time: any alignment */
}

/* forward through every layer on the rows [i0, i1), no dropout: after eval_prepare */
static void F(forward_eval)(const fnn_net *net, F(fnn_ws) *ws, int64_t i0, int64_t i1) {
    if (ws->ldr0 > 0) {
        const int n0 = net->sizes[0], n1 = net->sizes[1], ldr = ws->ldr0;
        if (i1 <= i0) return;
        F(dott_rows)((int)(i1 - i0), ws->rows + i0, ws->Wt0, ldr, n0, F(ktile_eval)(ldr, n0),
                     ws->Zt + i0 * ldr, ldr);
        for (int64_t i = i0; i < i1; i++)
            memcpy(ws->Z[0] + i * n1, ws->Zt + i * ldr, sizeof(REAL) * (size_t)n1);
        F(act_forward)(ws->A[0], ws->Z[0], (const REAL *)net->b[0], i0, i1, 0, n1, n1,
                       net->act[0]);
        for (int l = 1; l < net->L; l++)
            F(dense_forward)(net, ws, l, 0.0, 0, 0, 0, i0, i1, 0, net->sizes[l + 1]);
        return;
    }
    F(forward)(net, ws, 0.0, 0, 0, 0, i0, i1);
}

/* A hidden layer big enough to split by neuron: its forward and its update then run on the
 * same rows of W in the same thread, so W stays in that core's cache. */
static inline int F(row_layer)(const fnn_net *net, int l, int m, int T) {
    return l < net->L - 1 &&
           fnn_is_par(net->sizes[l + 1], T, (double)m * net->sizes[l] * net->sizes[l + 1]);
}

/* output: when want_stats the cost and hits of rows [i0, i1) into this thread's
 * accumulators, and when want_delta the output delta D[L-1] = cost_scale * dC/dz. */
static void F(output_phase)(const fnn_net *net, F(fnn_ws) *ws, const REAL *Y, int want_delta,
                            int want_stats, int64_t i0, int64_t i1, int t) {
    const int L = net->L, no = net->sizes[L], act = net->act[L - 1], cost = net->cost;
    const double scale = net->cost_scale;
    double csum = 0, hits = 0;
    for (int64_t i = i0; i < i1; i++) {
        const REAL *y = Y + ws->idx[i] * no;
        const REAL *a = ws->A[L - 1] + i * no, *z = ws->Z[L - 1] + i * no;
        if (!want_stats) goto delta;
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
    delta:
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

/* dense_backward, parameter part, fused with the optimizer step, on a block of R rows and K
 * columns of a weight matrix: g = D^T (R, m) @ in (m, K) / m + (lmbda/n) w + (l1/n) sign(w).
 * W, the optimizer state sW[0..1] and the gradient buffer G share the row stride ldw; b and
 * sb[0..1] are the block's biases and their state (b == NULL: biases not updated here).  D is
 * the block's first column of the (m, ldd) delta block.  The inputs are the row pointers xr
 * (small batches) or the (m, lda) block `in`.  Dt: room for R * m. */
typedef struct {
    REAL *W, *b, *G;
    REAL *sW[2], *sb[2];
    int64_t ldw;
} F(fnn_block);

/* the optimizer's step size: eta, with Adam's bias correction at `step` */
static double F(step_size)(const fnn_train_cfg *cfg, double eta, int64_t step) {
    if (cfg->optimizer != FNN_ADAM) return eta;
    return eta * sqrt(1 - pow(cfg->beta2, (double)step)) / (1 - pow(cfg->beta1, (double)step));
}

/* the biases' step from their mean gradients g[0..R): never regularized */
static void F(bias_step)(const fnn_train_cfg *cfg, REAL *b, REAL *const sb[2], const REAL *g,
                         int R, double eta, double lr_t) {
    const int opt = cfg->optimizer;
    for (int r = 0; r < R; r++) {
        if (opt == FNN_SGD) {
            b[r] -= (REAL)eta * g[r];
        } else if (opt == FNN_MOMENTUM) {
            REAL *v = sb[0] + r;
            *v = (REAL)cfg->mu * *v - (REAL)eta * g[r];
            b[r] += *v;
        } else {
            REAL *mm = sb[0] + r, *vv = sb[1] + r;
            *mm += (REAL)(1 - cfg->beta1) * (g[r] - *mm);
            *vv += (REAL)(1 - cfg->beta2) * (g[r] * g[r] - *vv);
            b[r] -= (REAL)lr_t * *mm / (FNN_SQRT(*vv) + (REAL)cfg->eps);
        }
    }
}

/* the biases' step from the mean of their deltas, D[r * sr + i * si] for neuron r and
 * example i */
static void F(bias_update)(const fnn_train_cfg *cfg, F(fnn_block) blk, const REAL *D,
                           int64_t sr, int64_t si, int R, int m, double eta, double lr_t) {
    enum { CH = 64 };
    REAL g[CH];
    for (int r0 = 0; r0 < R; r0 += CH) {
        const int nr = R - r0 < CH ? R - r0 : CH;
        for (int r = 0; r < nr; r++) {
            double s = 0;
            for (int i = 0; i < m; i++) s += D[(r0 + r) * sr + i * si];
            g[r] = (REAL)(s * (1.0 / m));
        }
        REAL *sb[2] = {blk.sb[0] ? blk.sb[0] + r0 : NULL, blk.sb[1] ? blk.sb[1] + r0 : NULL};
        F(bias_step)(cfg, blk.b + r0, sb, g, nr, eta, lr_t);
    }
}

/* Plain SGD (no L1) folds into the product: W = (1 - eta lmbda/n) W - (eta/m) (D^T in).
 * Otherwise the product forms the mean gradient G = D^T in / m and weight_step follows. */
static int F(plain_sgd)(const fnn_train_cfg *cfg) {
    return cfg->optimizer == FNN_SGD && cfg->l1 == 0;
}

/* the weights' step on R rows of K entries (row stride ldw) of W, its optimizer state sW and
 * the mean gradient G: g = G + (lmbda/n) w + (l1/n) sign(w) */
static void F(weight_step)(const fnn_train_cfg *cfg, REAL *W, REAL *const sW[2], const REAL *G,
                           int64_t ldw, int R, int K, double eta, double lr_t) {
    const int opt = cfg->optimizer;
    const REAL cwd = (REAL)(cfg->lmbda / cfg->reg_n), cl1 = (REAL)(cfg->l1 / cfg->reg_n);
    const REAL e = (REAL)eta, mu = (REAL)cfg->mu;
    const REAL c1 = (REAL)(1 - cfg->beta1), c2 = (REAL)(1 - cfg->beta2);
    const REAL eps = (REAL)cfg->eps, lr = (REAL)lr_t;
    for (int r = 0; r < R; r++) {
        const int64_t o = (int64_t)r * ldw;
        REAL *Wr = W + o;
        const REAL *Gr = G + o;
        if (opt == FNN_SGD) {
#pragma omp simd
            for (int j = 0; j < K; j++) {
                REAL w = Wr[j];
                Wr[j] = w - e * (Gr[j] + cwd * w + cl1 * (REAL)((w > 0) - (w < 0)));
            }
        } else if (opt == FNN_MOMENTUM) {
            REAL *v = sW[0] + o;
#pragma omp simd
            for (int j = 0; j < K; j++) {
                REAL w = Wr[j];
                REAL g = Gr[j] + cwd * w + cl1 * (REAL)((w > 0) - (w < 0));
                v[j] = mu * v[j] - e * g;
                Wr[j] = w + v[j];
            }
        } else {
            REAL *mm = sW[0] + o, *vv = sW[1] + o;
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

static void F(update_block)(const fnn_train_cfg *cfg, const fnn_net *net, F(fnn_block) blk,
                            const REAL *D, int ldd, int m, double eta, int64_t step, int R, int K,
                            const REAL *const *xr, const REAL *in, int lda, REAL *Dt) {
    /* the block's delta columns, transposed to (R, m): the update is then W += Dt @ in, one
     * row of Dt per row of W */
    for (int r = 0; r < R; r++)
        for (int i = 0; i < m; i++) Dt[(int64_t)r * m + i] = D[(int64_t)i * ldd + r];
    const double inv_m = 1.0 / m, lr_t = F(step_size)(cfg, eta, step);
    if (blk.b != NULL) F(bias_update)(cfg, blk, Dt, m, 1, R, m, eta, lr_t);
    if (K <= 0) return;
    const int plain = F(plain_sgd)(cfg);
    const double alpha = plain ? -eta * inv_m : inv_m;
    const REAL beta = plain ? (REAL)(1 - eta * cfg->lmbda / cfg->reg_n) : (REAL)0;
    REAL *G = plain ? blk.W : blk.G;
    const int ldw = (int)blk.ldw;
    if (xr != NULL) {
        const REAL a = (REAL)alpha;
        for (int64_t j = 0; j < (int64_t)R * m; j++) Dt[j] *= a;
        F(axpy_rows)(m, xr, Dt, m, beta, G, ldw, K, R);
    } else {
        F(gemm)(net, 0, 0, R, K, m, (REAL)alpha, Dt, m, in, lda, beta, G, ldw);
    }
    if (!plain) F(weight_step)(cfg, blk.W, blk.sW, G, ldw, R, K, eta, lr_t);
}

/* update_block for a transposed block (K rows of ldw = F(ldr_of)(R) neurons: the K-split
 * path's columns of W[0]), the inputs as row pointers.  C: room for m * ldw. */
static void F(update_block_t)(const fnn_train_cfg *cfg, F(fnn_block) blk, const REAL *D,
                              int ldd, int m, double eta, int64_t step, int R, int K,
                              const REAL *const *xr, REAL *C) {
    const int ldr = (int)blk.ldw;
    const double inv_m = 1.0 / m, lr_t = F(step_size)(cfg, eta, step);
    const int plain = F(plain_sgd)(cfg);
    const REAL a = (REAL)(plain ? -eta * inv_m : inv_m);
    /* C = a D, zero in the padding: the padded neurons' weights stay zero */
    for (int i = 0; i < m; i++) {
        REAL *ci = C + (int64_t)i * ldr;
        const REAL *di = D + (int64_t)i * ldd;
        for (int r = 0; r < R; r++) ci[r] = a * di[r];
        for (int r = R; r < ldr; r++) ci[r] = 0;
    }
    if (blk.b != NULL) F(bias_update)(cfg, blk, D, 1, ldd, R, m, eta, lr_t);
    if (K <= 0) return;
    const REAL beta = plain ? (REAL)(1 - eta * cfg->lmbda / cfg->reg_n) : (REAL)0;
    REAL *G = plain ? blk.W : blk.G;
    F(axpyt_rows)(m, xr, C, ldr, beta, G, ldr, K);
    if (!plain) F(weight_step)(cfg, blk.W, blk.sW, G, ldr, K, ldr, eta, lr_t);
}

/* update_block on rows [o0, o1) of layer l, every column, biases included; `t` picks this
 * thread's slice of ws->Dt. */
static void F(update_rows)(const fnn_net *net, const fnn_train_cfg *cfg, F(fnn_ws) *ws, int l,
                           int m, double eta, int64_t step, int64_t o0, int64_t o1, int t) {
    const int n_in = net->sizes[l], n_out = net->sizes[l + 1];
    if (o1 <= o0) return;
    const int64_t off = o0 * n_in;
    F(fnn_block) blk;
    blk.W = (REAL *)net->W[l] + off;
    blk.b = (REAL *)net->b[l] + o0;
    blk.G = ws->G[l] ? ws->G[l] + off : NULL;
    blk.ldw = n_in;
    for (int k = 0; k < 2; k++) {
        void *sw = k ? cfg->s2[l][0] : cfg->s1[l][0], *sb = k ? cfg->s2[l][1] : cfg->s1[l][1];
        blk.sW[k] = sw ? (REAL *)sw + off : NULL;
        blk.sb[k] = sb ? (REAL *)sb + o0 : NULL;
    }
    const REAL *ptr[FNN_SMALL_M];
    const REAL *const *xr = F(small)(m) ? F(in_rows)(ws, l, n_in, 0, m, 0, ptr) : NULL;
    F(update_block)(cfg, net, blk, ws->D[l] + o0, n_out, m, eta, step, (int)(o1 - o0), n_in, xr,
                    xr ? NULL : F(layer_in)(ws, l), n_in, ws->Dt + (int64_t)t * ws->dt_stride);
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
        F(update_rows)(net, cfg, ws, l, m, eta, step, o0, o1, t);
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
    F(output_phase)(net, ws, (const REAL *)cfg->train.Y, 1, cfg->monitor & FNN_MON_RUN, i0, i1,
                     t);
    F(backward)(net, ws, i0, i1);
    if (par) fnn_barrier();
    F(update_team)(net, cfg, ws, m, eta, step, t, Tp);
    if (par) fnn_barrier();
}

/* ------------------------------------------------------------------------------------------ */
/* K-split training, for networks whose first layer holds nearly all the work (Nielsen's
 * [784, 30, 10], the Keras tutorial's [784, 128, 10]).  Thread t owns the input columns
 * [k0, k1) of W[0]: it computes the partial first-layer sums of every example over its
 * columns and, after the batch's one barrier, every thread adds the partial sums in the same
 * order and runs the rest of the network, which is small, on its own copy of the other
 * parameters: the same operations on the same numbers, so the copies stay equal bit for bit.
 * Then it updates its columns of W[0], which it keeps transposed (dott/axpyt kernels).  The
 * partial sums are double-buffered by batch parity, so a thread may start the next batch
 * while another still reads this one's. */

typedef struct {
    fnn_net net;           /* W[l >= 1] and every b[l]: this thread's copies */
    fnn_train_cfg cfg;     /* their optimizer state: copies */
    F(fnn_ws) ws;          /* this thread's buffers */
    int64_t k0, k1;        /* its columns of W[0] */
    int ldr;               /* the row stride of W0: sizes[1] padded to whole vectors */
    REAL *W0, *sW0[2];     /* those columns of W[0] and of their optimizer state, transposed:
                            * (k1 - k0, ldr), zero in the padding */
    REAL *G0;              /* their mean gradient, the same shape (NULL for plain SGD) */
    REAL *C;               /* (M, ldr): the scaled output deltas of the first layer */
    int bar_gen;           /* this thread's generation of the team's spin barrier */
    REAL *mem;
} F(fnn_rep);

static int F(opt_states)(const fnn_train_cfg *cfg) {
    return cfg->optimizer == FNN_ADAM ? 2 : cfg->optimizer == FNN_MOMENTUM ? 1 : 0;
}

static void F(rep_free)(F(fnn_rep) *r) {
    F(ws_free)(&r->ws);
    fnn_free(r->mem);
    r->mem = NULL;
}

static int F(rep_alloc)(F(fnn_rep) *r, const fnn_net *net, const fnn_train_cfg *cfg, int M,
                       int64_t k0, int64_t k1) {
    memset(r, 0, sizeof(*r));
    r->net = *net;
    r->cfg = *cfg;
    const int ns = F(opt_states)(cfg);
    const int need_G = !F(plain_sgd)(cfg);
    r->k0 = k0;
    r->k1 = k1;
    r->ldr = F(ldr_of)(net->sizes[1]);
    const size_t nw0 = (size_t)(k1 - k0) * r->ldr, nc = (size_t)M * r->ldr;
    size_t total = nw0 * (size_t)(1 + ns + need_G) + nc;
    for (int l = 0; l < net->L; l++) {
        size_t nw = l ? (size_t)net->sizes[l + 1] * net->sizes[l] : 0, nb = net->sizes[l + 1];
        total += (nw + nb) * (size_t)(1 + ns);
    }
    r->mem = (REAL *)fnn_malloc(sizeof(REAL) * (total ? total : 1));
    if (r->mem == NULL) return FNN_NOMEM;
    REAL *p = r->mem;
    r->W0 = p; p += nw0;
    for (int k = 0; k < ns; k++) { r->sW0[k] = p; p += nw0; }
    if (need_G) { r->G0 = p; p += nw0; }
    r->C = p; p += nc;
    for (int l = 0; l < net->L; l++) {
        size_t nw = l ? (size_t)net->sizes[l + 1] * net->sizes[l] : 0, nb = net->sizes[l + 1];
        if (l) { r->net.W[l] = p; p += nw; }
        r->net.b[l] = p; p += nb;
        for (int k = 0; k < ns; k++) {
            void *(*st)[2] = k == 0 ? r->cfg.s1 : r->cfg.s2;
            if (l) { st[l][0] = p; p += nw; }
            st[l][1] = p; p += nb;
        }
    }
    if (F(ws_alloc)(&r->ws, &r->net, M, 1, 1, cfg->dropout > 0, need_G) != FNN_OK) {
        F(rep_free)(r);
        return FNN_NOMEM;
    }
    /* rows read in place, aligned or not: the transposed kernels read x a number at a time
     * (and the later layers read the activations, never x) */
    r->ws.direct = 1;
    return FNN_OK;
}

/* copy the shared parameters and optimizer state into the thread's copies (out = 0), or
 * back (out = 1): its columns of W[0] always, the rest in or, when `all`, out */
static void F(rep_copy)(F(fnn_rep) *r, fnn_net *net, fnn_train_cfg *cfg, int out, int all) {
    const int ns = F(opt_states)(cfg);
    const int n0 = net->sizes[0], n1 = net->sizes[1], ldr = r->ldr;
    const int64_t K = r->k1 - r->k0;
    for (int k = -1; k < ns; k++) {
        REAL *own = k < 0 ? r->W0 : r->sW0[k];
        REAL *shared = (REAL *)(k < 0 ? net->W[0] : k == 0 ? cfg->s1[0][0] : cfg->s2[0][0]);
        shared += r->k0;
        if (!out) {
            F(transpose_in)(shared, n0, n1, K, ldr, own);
            continue;
        }
        for (int o = 0; o < n1; o++) {
            REAL *row = shared + (int64_t)o * n0;
            for (int64_t j = 0; j < K; j++) row[j] = own[j * ldr + o];
        }
    }
    if (out && !all) return;
    for (int l = 0; l < net->L; l++) {
        size_t nw = sizeof(REAL) * (size_t)net->sizes[l + 1] * net->sizes[l];
        size_t nb = sizeof(REAL) * (size_t)net->sizes[l + 1];
        void *pairs[6][2] = {{r->net.W[l], net->W[l]}, {r->net.b[l], net->b[l]},
                             {r->cfg.s1[l][0], cfg->s1[l][0]}, {r->cfg.s1[l][1], cfg->s1[l][1]},
                             {r->cfg.s2[l][0], cfg->s2[l][0]}, {r->cfg.s2[l][1], cfg->s2[l][1]}};
        for (int k = 0; k < 2 + 2 * ns; k++) {
            if (l == 0 && k % 2 == 0) continue;      /* W[0] and its state: above */
            size_t bytes = k % 2 == 0 ? nw : nb;
            if (out) memcpy(pairs[k][1], pairs[k][0], bytes);
            else memcpy(pairs[k][0], pairs[k][1], bytes);
        }
    }
}

/* Is the K split worth it: small mini-batches, and the layers after the first (which every
 * thread runs) under a tenth of one thread's share of the first?  With one thread it is the
 * serial path with W[0] transposed. */
static int F(ksplit_ok)(const fnn_net *net, int batch, int T) {
    const int n0 = net->sizes[0], n1 = net->sizes[1];
    const int64_t ka = FNN_VBYTES / (int64_t)sizeof(REAL);
    if (T < 1 || batch < 1 || !F(small)(batch) || n0 < 4 * ka * T) return 0;
    double first = 2.0 * n0 * n1 / T, rest = 4.0 * n1;
    for (int l = 1; l < net->L; l++) rest += 3.0 * net->sizes[l] * net->sizes[l + 1];
    return rest <= 0.1 * first;
}

/* thread t's columns of W[0]: an even split (each thread keeps its block in its own
 * transposed copy, so no two threads write one line, and reads of x need no alignment) */
static void F(ksplit_cols)(int n0, int t, int T, int64_t *k0, int64_t *k1) {
    fnn_split(n0, t, T, 1, 0, k0, k1);
}

static void F(train_batch_ksplit)(const fnn_train_cfg *cfg, F(fnn_rep) *rp, REAL *P,
                                  int64_t pstride, fnn_spin_barrier *bar, int epoch,
                                  int64_t start, int m, double eta, int64_t step, int t, int T,
                                  int64_t k0, int64_t k1) {
    const fnn_net *net = &rp->net;
    F(fnn_ws) *ws = &rp->ws;
    const int L = net->L, n0 = net->sizes[0], n1 = net->sizes[1];
    const int32_t *order = cfg->orders ? cfg->orders + (int64_t)epoch * cfg->train.n : NULL;
    F(gather)(ws, (const REAL *)cfg->train.X, n0, order, start, m, cfg->train.n, 0, m, 0, m, k0,
              k1);
#if defined(__GNUC__)
    {   /* and the targets of the same examples, which every thread reads */
        const int no = net->sizes[L];
        const int64_t s0 = start + FNN_PREFETCH_BATCHES * (int64_t)m;
        for (int64_t s = s0; s < s0 + m && s < cfg->train.n; s++) {
            const char *y = (const char *)((const REAL *)cfg->train.Y +
                                           (order ? (int64_t)order[s] : s) * no);
            __builtin_prefetch(y, 0, FNN_PF_HINT);
            __builtin_prefetch(y + sizeof(REAL) * (size_t)no - 1, 0, FNN_PF_HINT);
        }
    }
#endif
    REAL *Pb = P + (int64_t)((start / cfg->batch) & 1) * T * pstride;  /* this batch's half */
    const REAL *ptr[FNN_SMALL_M];
    const REAL *const *xr = F(in_rows)(ws, 0, n0, 0, m, k0, ptr);
    const int ldr = rp->ldr;
    F(dott_rows)(m, xr, rp->W0, ldr, (int)(k1 - k0), 0, Pb + t * pstride, ldr);
    fnn_spin_wait(bar, T, &rp->bar_gen);
    REAL *Z = ws->Z[0];
    for (int i = 0; i < m; i++) {   /* thread 0's part, then the others' in thread order */
        REAL *zr = Z + (int64_t)i * n1;
        memcpy(zr, Pb + (int64_t)i * ldr, sizeof(REAL) * (size_t)n1);
        for (int u = 1; u < T; u++) {
            const REAL *pu = Pb + u * pstride + (int64_t)i * ldr;
            for (int j = 0; j < n1; j++) zr[j] += pu[j];
        }
    }
    F(act_forward)(ws->A[0], Z, (const REAL *)net->b[0], 0, m, 0, n1, n1, net->act[0]);
    if (cfg->dropout > 0 && L > 1)
        F(dropout_forward)(ws->A[0], ws->K[0], 0, m, 0, n1, n1, cfg->dropout, cfg->seed, epoch,
                           start, 0);
    for (int l = 1; l < L; l++)
        F(dense_forward)(net, ws, l, cfg->dropout, cfg->seed, epoch, start, 0, m, 0,
                         net->sizes[l + 1]);
    F(output_phase)(net, ws, (const REAL *)cfg->train.Y, 1, cfg->monitor & FNN_MON_RUN, 0, m, 0);
    F(backward)(net, ws, 0, m);
    for (int l = L - 1; l >= 1; l--)
        F(update_rows)(net, &rp->cfg, ws, l, m, eta, step, 0, net->sizes[l + 1], 0);
    F(fnn_block) blk;
    blk.W = rp->W0;
    blk.b = (REAL *)net->b[0];
    blk.G = rp->G0;
    blk.ldw = ldr;
    for (int k = 0; k < 2; k++) {
        blk.sW[k] = rp->sW0[k];
        blk.sb[k] = (REAL *)(k ? rp->cfg.s2[0][1] : rp->cfg.s1[0][1]);
    }
    F(update_block_t)(&rp->cfg, blk, ws->D[0], n1, m, eta, step, n1, (int)(k1 - k0), xr, rp->C);
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
        F(gather)(ws, (const REAL *)data->X, net->sizes[0], NULL, start, m, 0, i0, i1, i0, i1, 0,
                  net->sizes[0]);
        F(forward_eval)(net, ws, i0, i1);
        F(output_phase)(net, ws, (const REAL *)data->Y, 0, 1, i0, i1, t);
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
    F(set_direct)(ws, data->X, net->sizes[0], ws->M);
    F(eval_prepare)(net, ws);
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

/* the progress counters a front door may read while the engine runs */
static inline void F(publish)(const fnn_train_cfg *cfg, int epoch, int64_t done) {
    if (cfg->progress == NULL) return;
#if defined(__GNUC__)
    __atomic_store_n(&cfg->progress[0], (int64_t)epoch, __ATOMIC_RELAXED);
    __atomic_store_n(&cfg->progress[1], done, __ATOMIC_RELAXED);
#else
    cfg->progress[0] = epoch;
    cfg->progress[1] = done;
#endif
}

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
    REAL *snap = (REAL *)fnn_malloc(sizeof(REAL) * (size_t)F(param_count)(net));
    if (snap == NULL) { F(ws_free)(&ws); return FNN_NOMEM; }

    /* threads pay off only when a mini-batch has enough work */
    const int want = cfg->path;
    const int par = want != FNN_PATH_SERIAL && T > 1 && batch >= T &&
                    (double)batch * F(param_count)(net) >= FNN_PAR_MIN;
    const int Tk = par ? T : 1;   /* the K split's threads */
    const int ksplit = (want == FNN_PATH_AUTO || want == FNN_PATH_KSPLIT) &&
                       F(ksplit_ok)(net, batch, Tk);
    cfg->path = ksplit ? FNN_PATH_KSPLIT : par ? FNN_PATH_ROWS : FNN_PATH_SERIAL;
    F(fnn_rep) *reps = NULL;
    REAL *P = NULL;
    fnn_spin_barrier *bar = NULL;
    const int64_t pl = FNN_ALIGN / (int64_t)sizeof(REAL);
    const int64_t pstride = ((int64_t)batch * F(ldr_of)(net->sizes[1]) + pl - 1) / pl * pl;
    if (ksplit) {
        reps = (F(fnn_rep) *)fnn_calloc((size_t)Tk, sizeof(F(fnn_rep)));
        P = (REAL *)fnn_malloc(sizeof(REAL) * 2 * (size_t)Tk * pstride);
        bar = (fnn_spin_barrier *)fnn_calloc(1, sizeof(fnn_spin_barrier));
        int ok = reps != NULL && P != NULL && bar != NULL;
        for (int t = 0; ok && t < Tk; t++) {
            int64_t k0, k1;
            F(ksplit_cols)(net->sizes[0], t, Tk, &k0, &k1);
            ok = F(rep_alloc)(&reps[t], net, cfg, batch, k0, k1) == FNN_OK;
        }
        if (!ok) {
            for (int t = 0; reps && t < Tk; t++) F(rep_free)(&reps[t]);
            fnn_free(reps); fnn_free(P); fnn_free(bar); fnn_free(snap); F(ws_free)(&ws);
            return FNN_NOMEM;
        }
    }
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
        F(set_direct)(&ws, cfg->train.X, net->sizes[0], batch);  /* evaluate_set reset it */
        /* The K-split copies are filled at the first chunk of an epoch and written back at
         * its last (or when the epoch stops early): in between, between the chunks where
         * interrupts are checked, they are the live parameters ("live"). */
        int live = 0;
        for (int64_t c0 = 0; c0 < nb; c0 += ce) {
            int64_t c1 = c0 + ce < nb ? c0 + ce : nb;
            int used = 0;
#pragma omp parallel num_threads(Tt)
            {
                const int t = fnn_thread_num(), TT = fnn_num_threads();
                if (t == 0) used = TT;
                if (ksplit && TT == Tk) {
                    const int64_t k0 = reps[t].k0, k1 = reps[t].k1;
                    if (!live) F(rep_copy)(&reps[t], net, cfg, 0, 1);
                    for (int64_t bi = c0; bi < c1; bi++) {
                        int64_t start = bi * batch;
                        int m = (int)(n - start < batch ? n - start : batch);
                        F(train_batch_ksplit)(cfg, &reps[t], P, pstride, bar, epoch, start, m,
                                              eta, cfg->adam_t + bi + 1, t, TT, k0, k1);
                        if (t == 0) F(publish)(cfg, epoch, bi + 1);
                    }
                    if (c1 == nb) F(rep_copy)(&reps[t], net, cfg, 1, t == 0);
                } else {
                    if (live) {   /* fewer threads than asked: back to the shared copy */
                        if (t == 0)
                            for (int u = 0; u < Tk; u++) F(rep_copy)(&reps[u], net, cfg, 1, u == 0);
                        fnn_barrier();
                    }
                    for (int64_t bi = c0; bi < c1; bi++) {
                        int64_t start = bi * batch;
                        int m = (int)(n - start < batch ? n - start : batch);
                        F(train_batch)(net, cfg, &ws, epoch, start, m, eta,
                                       cfg->adam_t + bi + 1, t, TT, TT > 1);
                        if (t == 0) F(publish)(cfg, epoch, bi + 1);
                    }
                }
            }
            live = ksplit && used == Tk && c1 < nb;
            if (ksplit) {
                /* every copy saw the same examples: count thread 0's cost and hits */
                ws.acc[0] += reps[0].ws.acc[0];
                ws.acc[1] += reps[0].ws.acc[1];
                for (int t = 0; t < Tk; t++) reps[t].ws.acc[0] = reps[t].ws.acc[1] = 0;
            }
            if (c1 < nb && cfg->check != NULL && cfg->check(cfg->ctx)) {
                /* stopped inside the epoch: keep the last finished mini-batch's weights if
                 * they are finite, else the weights from the start of the epoch */
                for (int u = 0; live && u < Tk; u++) F(rep_copy)(&reps[u], net, cfg, 1, u == 0);
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
        st.run_n = (cfg->monitor & FNN_MON_RUN) ? n : 0;
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
    for (int t = 0; reps && t < Tk; t++) F(rep_free)(&reps[t]);
    fnn_free(reps);
    fnn_free(P);
    fnn_free(bar);
    fnn_free(snap);
    F(ws_free)(&ws);
    return status;
}

/* out (n, n_out) = the network's output for X (n, n_in). */
static int F(fnn_predict)(const fnn_net *net, const REAL *X, int64_t n, REAL *out) {
    const int T = net->n_threads > 0 ? net->n_threads : 1, L = net->L, no = net->sizes[L];
    F(fnn_ws) ws;
    if (F(ws_alloc)(&ws, net, FNN_EVAL_BATCH, T, 0, 0, 0) != FNN_OK) return FNN_NOMEM;
    F(set_direct)(&ws, X, net->sizes[0], ws.M);
    F(eval_prepare)(net, &ws);
#pragma omp parallel num_threads(T)
    {
        const int t = fnn_thread_num(), TT = fnn_num_threads();
        for (int64_t start = 0; start < n; start += ws.M) {
            int m = (int)((n - start) < ws.M ? (n - start) : ws.M);
            int64_t i0, i1;
            F(own_rows)(&ws, m, t, TT, &i0, &i1);
            F(gather)(&ws, X, net->sizes[0], NULL, start, m, 0, i0, i1, i0, i1, 0,
                      net->sizes[0]);
            F(forward_eval)(net, &ws, i0, i1);
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
        F(gather)(&ws, (const REAL *)data->X, net->sizes[0], NULL, start, m, 0, 0, m, 0, m, 0,
                  net->sizes[0]);
        F(forward)(net, &ws, 0.0, 0, 0, 0, 0, m);
        F(output_phase)(net, &ws, (const REAL *)data->Y, 1, 1, 0, m, 0);
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

#undef FNN_VEC_SIGMOID
#undef FNN_TRANS_VEC
#undef F

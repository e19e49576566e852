/* kernels_t.h: the small-batch products with the weights transposed, (K, ldr): one row per
 * input, the neurons along it padded to whole vectors.  The K-split path keeps its block of
 * W[0] this way, and the forward-only passes run the first layer through a transposed copy. */

#ifdef FNN_VEC_KERNELS
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
#endif /* FNN_VEC_KERNELS */

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

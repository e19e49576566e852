/* kernels_conv.h: direct convolution kernels, channels-last, register-blocked.
 *
 * A convolution over a zero-padded input is, for each output pixel p, a product over the
 * kernel's rows: z[p][v] = sum over the kh segments s and the kw*C inputs j of a segment of
 * x_p[seg[s] + j] * Wt[s*seglen + j][v], where x_p points at the pixel's window in the padded
 * image, seg[s] = s * (padded row length), and Wt (K, ldr) is the kernel with its output
 * channels along the rows, padded to whole vectors (Keras' (kh, kw, C, CO) kernel already is
 * (K, CO) in this order).  As in kernels_t.h, a block of G pixels times VB vectors of channels
 * accumulates in registers with no sums across lanes; each input is broadcast from the image,
 * so no im2col copy and no packing are needed.
 *   cfwd:   z[p][v] = sum_k x_p(k) Wt[k][v]                 (forward; also the backward pass
 *           to the input, on the padded deltas with the flipped kernel)
 *   cgrad:  Gt[k][v] += sum_p x_p(k) c[p][v]                (the kernel's gradient)
 * z and c rows hold `n` channels (row stride ldz / ldc): the last vector is stored or loaded
 * masked, so the padding lanes never touch the next row.  Plain loops (cfwd_ref, cgrad_ref)
 * stand beside them as reference and fallback. */

/* the k-th input of pixel p: segment s = k / seglen, offset j = k % seglen */
#define FNN_CX(xp, seg, seglen, k) ((xp)[(seg)[(k) / (seglen)] + (k) % (seglen)])

#if FNN_TRANS_VEC
#define FNN_CONV_VEC 1
#endif

#ifndef FNN_CONV_VEC
static void F(cfwd_ref)(int m, const REAL *const *x, const int64_t *seg, int nseg, int seglen,
                        const REAL *Wt, int ldr, REAL *z, int ldz, int n) {
    const int K = nseg * seglen;
    for (int i = 0; i < m; i++)
        for (int v = 0; v < n; v++) {
            REAL s = 0;
            for (int k = 0; k < K; k++) s += FNN_CX(x[i], seg, seglen, k) * Wt[(int64_t)k * ldr + v];
            z[(int64_t)i * ldz + v] = s;
        }
}

static void F(cgrad_ref)(int m, const REAL *const *x, const int64_t *seg, int nseg, int seglen,
                         const REAL *c, int ldc, int n, REAL *Gt, int ldr) {
    const int K = nseg * seglen;
    for (int k = 0; k < K; k++)
        for (int v = 0; v < n; v++) {
            REAL s = Gt[(int64_t)k * ldr + v];
            for (int i = 0; i < m; i++) s += FNN_CX(x[i], seg, seglen, k) * c[(int64_t)i * ldc + v];
            Gt[(int64_t)k * ldr + v] = s;
        }
}
#endif

#ifdef FNN_CONV_VEC
typedef void (*F(cfwd_fn))(const REAL *const *, const int64_t *, int, int, const REAL *, int,
                           REAL *, int, int);
typedef void (*F(cgrad_fn))(const REAL *const *, const int64_t *, int, int, const REAL *, int,
                            int, REAL *, int);
/* the level's vectors */
#define CV F(vec)
#define CVL FNN_VL
#define CLOAD F(vload)
#define CSTORE F(vstore)
#define CLOAD_N F(vload_n)
#define CSTORE_N F(vstore_n)
#define CN(x) F(x)
#define CVB 4
#define CGROUP(vb) F(tgroup)(vb)
#include "kernels_conv_w.h"   /* (it undefines them) */

#if FNN_VBYTES == 64 && defined(__AVX512VL__)
/* and half-width vectors (256 bits) beside AVX-512's: where the channels fill 256-bit
 * vectors much better than 512-bit ones (40: 5 x 8 lanes against 3 x 16; 20: 3 x 8 against
 * 2 x 16), a CPU that runs a 512-bit FMA as two 256-bit halves (AMD Zen 4) does the same
 * products in fewer cycles.  Each lane's sum runs over the same terms in the same order at
 * either width: the results are the same numbers. */
#define FNN_CONV_HALF 1
typedef REAL F(hvec) __attribute__((vector_size(32)));
FNN_INLINE F(hvec) F(hload)(const REAL *p) { F(hvec) v; memcpy(&v, p, sizeof v); return v; }
FNN_INLINE void F(hstore)(REAL *p, F(hvec) v) { memcpy(p, &v, sizeof v); }
FNN_INLINE F(hvec) F(hload_n)(const REAL *p, int n) {
    F(hvec) r;
    if (sizeof(REAL) == sizeof(double)) {
        __m256d v = _mm256_maskz_loadu_pd((__mmask8)((1u << n) - 1), (const void *)p);
        memcpy(&r, &v, sizeof r);
    } else {
        __m256 v = _mm256_maskz_loadu_ps((__mmask8)((1u << n) - 1), (const void *)p);
        memcpy(&r, &v, sizeof r);
    }
    return r;
}
FNN_INLINE void F(hstore_n)(REAL *p, F(hvec) v, int n) {
    if (sizeof(REAL) == sizeof(double)) {
        __m256d x; memcpy(&x, &v, sizeof x);
        _mm256_mask_storeu_pd((void *)p, (__mmask8)((1u << n) - 1), x);
    } else {
        __m256 x; memcpy(&x, &v, sizeof x);
        _mm256_mask_storeu_ps((void *)p, (__mmask8)((1u << n) - 1), x);
    }
}
/* pixels per block of vb half vectors: vb (g + 1) <= 30 of the 32 registers */
static inline int F(hgroup)(int vb) {
    const int g = 30 / vb - 1;
    return g < FNN_GMAX ? g : FNN_GMAX;
}
#define CV F(hvec)
#define CVL ((int)(32 / sizeof(REAL)))
#define CLOAD F(hload)
#define CSTORE F(hstore)
#define CLOAD_N F(hload_n)
#define CSTORE_N F(hstore_n)
#define CN(x) F(x##_h)
#define CVB 5
#define CGROUP(vb) F(hgroup)(vb)
#include "kernels_conv_w.h"   /* (it undefines them) */
#endif
#endif /* FNN_CONV_VEC */
#undef FNN_FOR_G

/* whether n channels take the half-width kernels: the CPU asks for them (half: fnn_net's
 * conv_lanes, from the Python layer) and they leave at least 10 % fewer lanes idle */
static inline int F(conv_half)(int half, int n) {
#ifdef FNN_CONV_HALF
    const int hl = (int)(32 / sizeof(REAL)), fl = 2 * hl;
    return half && (int64_t)((n + hl - 1) / hl * hl) * 10 <= (int64_t)((n + fl - 1) / fl * fl) * 9;
#else
    (void)half; (void)n;
    return 0;
#endif
}

/* z (m rows, stride ldz, n channels) = the convolution of the m pixels x[0..m) with Wt (K,
 * ldr); half: conv_half's answer for n */
static void F(cfwd_rows)(int half, int m, const REAL *const *x, const int64_t *seg, int nseg,
                         int seglen, const REAL *Wt, int ldr, REAL *z, int ldz, int n) {
#ifdef FNN_CONV_VEC
#ifdef FNN_CONV_HALF
    if (half) {
        F(conv_walk_h)(0, m, x, seg, nseg, seglen, NULL, 0, (REAL *)Wt, ldr, z, ldz, n);
        return;
    }
#endif
    (void)half;
    F(conv_walk)(0, m, x, seg, nseg, seglen, NULL, 0, (REAL *)Wt, ldr, z, ldz, n);
#else
    (void)half;
    F(cfwd_ref)(m, x, seg, nseg, seglen, Wt, ldr, z, ldz, n);
#endif
}

/* Gt (K, ldr) rows [ka, kb) += the m pixels' inputs times their rows of c (stride ldc, n
 * channels): each kernel row a thread owns is one sum over the same pixels in the same order,
 * whoever owns it */
static void F(cgrad_rows)(int half, int m, const REAL *const *x, const int64_t *seg,
                          int seglen, const REAL *c, int ldc, int n, int64_t ka, int64_t kb,
                          REAL *Gt, int ldr) {
    (void)half;
    for (int64_t s = ka / seglen; s * seglen < kb; s++) {
        const int64_t j0 = ka > s * seglen ? ka - s * seglen : 0;
        const int64_t j1 = kb < (s + 1) * seglen ? kb - s * seglen : seglen;
        const int64_t off = seg[s] + j0;
        REAL *g = Gt + (s * seglen + j0) * ldr;
#ifdef FNN_CONV_VEC
#ifdef FNN_CONV_HALF
        if (half) {
            F(conv_walk_h)(1, m, x, &off, 1, (int)(j1 - j0), c, ldc, g, ldr, NULL, 0, n);
            continue;
        }
#endif
        F(conv_walk)(1, m, x, &off, 1, (int)(j1 - j0), c, ldc, g, ldr, NULL, 0, n);
#else
        F(cgrad_ref)(m, x, &off, 1, (int)(j1 - j0), c, ldc, n, g, ldr);
#endif
    }
}
#undef FNN_CX
#undef FNN_CONV_VEC
#undef FNN_CONV_HALF

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
/* G pixels times VB vectors; nlast: the lanes of the last vector that are real channels */
FNN_INLINE void F(cfwd_block)(const int G, const int VB, const REAL *const *x,
                              const int64_t *seg, int nseg, int seglen, const REAL *Wt, int ldr,
                              REAL *z, int ldz, int nlast) {
    F(vec) acc[FNN_GMAX][4];
    for (int i = 0; i < G; i++)
        for (int v = 0; v < VB; v++) acc[i][v] = (F(vec)){0};
    for (int s = 0; s < nseg; s++) {
        const REAL *xs[FNN_GMAX];
        for (int i = 0; i < G; i++) xs[i] = x[i] + seg[s];
        const REAL *ws = Wt + (int64_t)s * seglen * ldr;
        for (int j = 0; j < seglen; j++) {
            F(vec) w[4];
            for (int v = 0; v < VB; v++) w[v] = F(vload)(ws + (int64_t)j * ldr + v * FNN_VL);
            for (int i = 0; i < G; i++) {
                const REAL xb = xs[i][j];
                for (int v = 0; v < VB; v++) acc[i][v] += xb * w[v];
            }
        }
    }
    for (int i = 0; i < G; i++) {
        REAL *zi = z + (int64_t)i * ldz;
        for (int v = 0; v < VB - 1; v++) F(vstore)(zi + v * FNN_VL, acc[i][v]);
        if (nlast == FNN_VL) F(vstore)(zi + (VB - 1) * FNN_VL, acc[i][VB - 1]);
        else F(vstore_n)(zi + (VB - 1) * FNN_VL, acc[i][VB - 1], nlast);
    }
}

FNN_INLINE void F(cgrad_block)(const int G, const int VB, const REAL *const *x,
                               const int64_t *seg, int nseg, int seglen, const REAL *c, int ldc,
                               int nlast, REAL *Gt, int ldr) {
    F(vec) cv[FNN_GMAX][4];
    for (int i = 0; i < G; i++) {
        const REAL *ci = c + (int64_t)i * ldc;
        for (int v = 0; v < VB - 1; v++) cv[i][v] = F(vload)(ci + v * FNN_VL);
        cv[i][VB - 1] = nlast == FNN_VL ? F(vload)(ci + (VB - 1) * FNN_VL)
                                        : F(vload_n)(ci + (VB - 1) * FNN_VL, nlast);
    }
    for (int s = 0; s < nseg; s++) {
        const REAL *xs[FNN_GMAX];
        for (int i = 0; i < G; i++) xs[i] = x[i] + seg[s];
        REAL *gs = Gt + (int64_t)s * seglen * ldr;
        for (int j = 0; j < seglen; j++) {
            F(vec) a[4];
            for (int v = 0; v < VB; v++) a[v] = F(vload)(gs + (int64_t)j * ldr + v * FNN_VL);
            for (int i = 0; i < G; i++) {
                const REAL xb = xs[i][j];
                for (int v = 0; v < VB; v++) a[v] += xb * cv[i][v];
            }
            for (int v = 0; v < VB; v++) F(vstore)(gs + (int64_t)j * ldr + v * FNN_VL, a[v]);
        }
    }
}

#define FNN_KERNELS_C(G, VB)                                                                 \
    static void F(cfwd_##G##_##VB)(const REAL *const *x, const int64_t *seg, int nseg,      \
                                   int seglen, const REAL *Wt, int ldr, REAL *z, int ldz,    \
                                   int nlast) {                                              \
        F(cfwd_block)(G, VB, x, seg, nseg, seglen, Wt, ldr, z, ldz, nlast);                  \
    }                                                                                        \
    static void F(cgrad_##G##_##VB)(const REAL *const *x, const int64_t *seg, int nseg,     \
                                    int seglen, const REAL *c, int ldc, int nlast, REAL *Gt, \
                                    int ldr) {                                               \
        F(cgrad_block)(G, VB, x, seg, nseg, seglen, c, ldc, nlast, Gt, ldr);                 \
    }
#define FNN_KERNELS_C4(G) FNN_KERNELS_C(G, 1) FNN_KERNELS_C(G, 2) FNN_KERNELS_C(G, 3) \
    FNN_KERNELS_C(G, 4)
FNN_FOR_G(FNN_KERNELS_C4)
#undef FNN_KERNELS_C4
#undef FNN_KERNELS_C

typedef void (*F(cfwd_fn))(const REAL *const *, const int64_t *, int, int, const REAL *, int,
                           REAL *, int, int);
typedef void (*F(cgrad_fn))(const REAL *const *, const int64_t *, int, int, const REAL *, int,
                            int, REAL *, int);
#define FNN_C4(name, G) {F(name##_##G##_1), F(name##_##G##_2), F(name##_##G##_3), F(name##_##G##_4)}
#define FNN_C6(name) FNN_C4(name, 1), FNN_C4(name, 2), FNN_C4(name, 3), FNN_C4(name, 4), \
    FNN_C4(name, 5), FNN_C4(name, 6)
#if FNN_GMAX >= 12
#define FNN_CALL(name) FNN_C6(name), FNN_C4(name, 7), FNN_C4(name, 8), FNN_C4(name, 9), \
    FNN_C4(name, 10), FNN_C4(name, 11), FNN_C4(name, 12)
#else
#define FNN_CALL(name) FNN_C6(name)
#endif
static const F(cfwd_fn) F(cfwd_table)[FNN_GMAX][4] = {FNN_CALL(cfwd)};
static const F(cgrad_fn) F(cgrad_table)[FNN_GMAX][4] = {FNN_CALL(cgrad)};
#undef FNN_CALL
#undef FNN_C6
#undef FNN_C4
#endif /* FNN_CONV_VEC */
#undef FNN_FOR_G

/* z (m rows, stride ldz, n channels) = the convolution of the m pixels x[0..m) with Wt (K,
 * ldr): vectors of channels in blocks of at most 4, pixels in near-equal blocks that fit the
 * registers */
static void F(cfwd_rows)(int m, const REAL *const *x, const int64_t *seg, int nseg, int seglen,
                         const REAL *Wt, int ldr, REAL *z, int ldz, int n) {
#ifdef FNN_CONV_VEC
    const int nv = (n + FNN_VL - 1) / FNN_VL;
    for (int v0 = 0; v0 < nv; v0 += 4) {
        const int vb = nv - v0 < 4 ? nv - v0 : 4, gm = F(tgroup)(vb);
        const int nlast = v0 + vb == nv ? n - (nv - 1) * FNN_VL : FNN_VL;
        const int nblk = (m + gm - 1) / gm;
        for (int b = 0, i0 = 0; b < nblk; b++) {
            const int g = (m - i0) / (nblk - b);
            F(cfwd_table)[g - 1][vb - 1](x + i0, seg, nseg, seglen, Wt + v0 * FNN_VL, ldr,
                                         z + (int64_t)i0 * ldz + v0 * FNN_VL, ldz, nlast);
            i0 += g;
        }
    }
#else
    F(cfwd_ref)(m, x, seg, nseg, seglen, Wt, ldr, z, ldz, n);
#endif
}

/* Gt (K, ldr) rows [ka, kb) += the m pixels' inputs times their rows of c (stride ldc, n
 * channels): each kernel row a thread owns is one sum over the same pixels in the same order,
 * whoever owns it */
static void F(cgrad_rows)(int m, const REAL *const *x, const int64_t *seg, int seglen,
                          const REAL *c, int ldc, int n, int64_t ka, int64_t kb, REAL *Gt,
                          int ldr) {
    for (int64_t s = ka / seglen; s * seglen < kb; s++) {
        const int64_t j0 = ka > s * seglen ? ka - s * seglen : 0;
        const int64_t j1 = kb < (s + 1) * seglen ? kb - s * seglen : seglen;
        const int64_t off = seg[s] + j0;
        REAL *g = Gt + (s * seglen + j0) * ldr;
#ifdef FNN_CONV_VEC
        const int nv = (n + FNN_VL - 1) / FNN_VL;
        for (int va = 0; va < nv; va += 4) {
            const int vb = nv - va < 4 ? nv - va : 4, gm = F(tgroup)(vb);
            const int nlast = va + vb == nv ? n - (nv - 1) * FNN_VL : FNN_VL;
            const int nblk = (m + gm - 1) / gm;
            for (int b = 0, i0 = 0; b < nblk; b++) {
                const int gg = (m - i0) / (nblk - b);
                F(cgrad_table)[gg - 1][vb - 1](x + i0, &off, 1, (int)(j1 - j0),
                                               c + (int64_t)i0 * ldc + va * FNN_VL, ldc, nlast,
                                               g + va * FNN_VL, ldr);
                i0 += gg;
            }
        }
#else
        F(cgrad_ref)(m, x, &off, 1, (int)(j1 - j0), c, ldc, n, g, ldr);
#endif
    }
}
#undef FNN_CX
#undef FNN_CONV_VEC

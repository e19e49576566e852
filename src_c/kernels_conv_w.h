/* kernels_conv_w.h: the register-blocked convolution kernels for one vector type.
 * kernels_conv.h includes this file once per width, with
 *   CV       the vector type          CVL      its lanes
 *   CLOAD, CSTORE, CLOAD_N, CSTORE_N  whole and first-n-lanes moves
 *   CN(x)    the name for this width  CVB      the most vectors in a block (4 or 5)
 *   CGROUP(vb)  the pixels in a block of vb vectors: accumulators and weights fill, but do
 *            not overflow, the 32 (AVX-512) or 16 registers
 * and gives CN(conv_walk): the products of kernels_conv.h's header over channels in blocks
 * of at most CVB vectors, pixels in near-equal blocks of at most CGROUP.
 * It undefines those names at its end, ready for the next width. */

/* G pixels times VB vectors; nlast: the lanes of the last vector that are real channels */
FNN_INLINE void CN(cfwd_block)(const int G, const int VB, const REAL *const *x,
                               const int64_t *seg, int nseg, int seglen, const REAL *Wt, int ldr,
                               REAL *z, int ldz, int nlast) {
    CV acc[FNN_GMAX][CVB];
    for (int i = 0; i < G; i++)
        for (int v = 0; v < VB; v++) acc[i][v] = (CV){0};
    for (int s = 0; s < nseg; s++) {
        const REAL *xs[FNN_GMAX];
        for (int i = 0; i < G; i++) xs[i] = x[i] + seg[s];
        const REAL *ws = Wt + (int64_t)s * seglen * ldr;
        for (int j = 0; j < seglen; j++) {
            CV w[CVB];
            for (int v = 0; v < VB; v++) w[v] = CLOAD(ws + (int64_t)j * ldr + v * CVL);
            for (int i = 0; i < G; i++) {
                const REAL xb = xs[i][j];
                for (int v = 0; v < VB; v++) acc[i][v] += xb * w[v];
            }
        }
    }
    for (int i = 0; i < G; i++) {
        REAL *zi = z + (int64_t)i * ldz;
        for (int v = 0; v < VB - 1; v++) CSTORE(zi + v * CVL, acc[i][v]);
        if (nlast == CVL) CSTORE(zi + (VB - 1) * CVL, acc[i][VB - 1]);
        else CSTORE_N(zi + (VB - 1) * CVL, acc[i][VB - 1], nlast);
    }
}

FNN_INLINE void CN(cgrad_block)(const int G, const int VB, const REAL *const *x,
                                const int64_t *seg, int nseg, int seglen, const REAL *c, int ldc,
                                int nlast, REAL *Gt, int ldr) {
    CV cv[FNN_GMAX][CVB];
    for (int i = 0; i < G; i++) {
        const REAL *ci = c + (int64_t)i * ldc;
        for (int v = 0; v < VB - 1; v++) cv[i][v] = CLOAD(ci + v * CVL);
        cv[i][VB - 1] = nlast == CVL ? CLOAD(ci + (VB - 1) * CVL)
                                     : CLOAD_N(ci + (VB - 1) * CVL, nlast);
    }
    for (int s = 0; s < nseg; s++) {
        const REAL *xs[FNN_GMAX];
        for (int i = 0; i < G; i++) xs[i] = x[i] + seg[s];
        REAL *gs = Gt + (int64_t)s * seglen * ldr;
        for (int j = 0; j < seglen; j++) {
            CV a[CVB];
            for (int v = 0; v < VB; v++) a[v] = CLOAD(gs + (int64_t)j * ldr + v * CVL);
            for (int i = 0; i < G; i++) {
                const REAL xb = xs[i][j];
                for (int v = 0; v < VB; v++) a[v] += xb * cv[i][v];
            }
            for (int v = 0; v < VB; v++) CSTORE(gs + (int64_t)j * ldr + v * CVL, a[v]);
        }
    }
}

#define FNN_KERNELS_C(G, VB)                                                                 \
    static void CN(cfwd_##G##_##VB)(const REAL *const *x, const int64_t *seg, int nseg,     \
                                    int seglen, const REAL *Wt, int ldr, REAL *z, int ldz,   \
                                    int nlast) {                                             \
        CN(cfwd_block)(G, VB, x, seg, nseg, seglen, Wt, ldr, z, ldz, nlast);                 \
    }                                                                                        \
    static void CN(cgrad_##G##_##VB)(const REAL *const *x, const int64_t *seg, int nseg,    \
                                     int seglen, const REAL *c, int ldc, int nlast, REAL *Gt,\
                                     int ldr) {                                              \
        CN(cgrad_block)(G, VB, x, seg, nseg, seglen, c, ldc, nlast, Gt, ldr);                \
    }
#if CVB == 5
#define FNN_KERNELS_CV(G) FNN_KERNELS_C(G, 1) FNN_KERNELS_C(G, 2) FNN_KERNELS_C(G, 3) \
    FNN_KERNELS_C(G, 4) FNN_KERNELS_C(G, 5)
#define FNN_CV(name, G) {CN(name##_##G##_1), CN(name##_##G##_2), CN(name##_##G##_3),   \
                         CN(name##_##G##_4), CN(name##_##G##_5)}
#else
#define FNN_KERNELS_CV(G) FNN_KERNELS_C(G, 1) FNN_KERNELS_C(G, 2) FNN_KERNELS_C(G, 3) \
    FNN_KERNELS_C(G, 4)
#define FNN_CV(name, G) {CN(name##_##G##_1), CN(name##_##G##_2), CN(name##_##G##_3),   \
                         CN(name##_##G##_4)}
#endif
FNN_FOR_G(FNN_KERNELS_CV)
#define FNN_C6(name) FNN_CV(name, 1), FNN_CV(name, 2), FNN_CV(name, 3), FNN_CV(name, 4), \
    FNN_CV(name, 5), FNN_CV(name, 6)
#if FNN_GMAX >= 12
#define FNN_CALL(name) FNN_C6(name), FNN_CV(name, 7), FNN_CV(name, 8), FNN_CV(name, 9), \
    FNN_CV(name, 10), FNN_CV(name, 11), FNN_CV(name, 12)
#else
#define FNN_CALL(name) FNN_C6(name)
#endif
static const F(cfwd_fn) CN(cfwd_table)[FNN_GMAX][CVB] = {FNN_CALL(cfwd)};
static const F(cgrad_fn) CN(cgrad_table)[FNN_GMAX][CVB] = {FNN_CALL(cgrad)};
#undef FNN_CALL
#undef FNN_C6
#undef FNN_CV
#undef FNN_KERNELS_CV
#undef FNN_KERNELS_C

/* The walk both products share (as kernels_t.h's trans_walk): channels in blocks of at most
 * CVB vectors, the m pixels in near-equal blocks of at most CGROUP.  grad = 0: z (m rows,
 * stride ldz, n channels) = the pixels' windows times Wt (K, ldr); grad = 1: the rows of Wt
 * += the pixels' windows times their rows of c (stride ldc, n channels). */
static void CN(conv_walk)(int grad, int m, const REAL *const *x, const int64_t *seg, int nseg,
                          int seglen, const REAL *c, int ldc, REAL *Wt, int ldr, REAL *z,
                          int ldz, int n) {
    const int nv = (n + CVL - 1) / CVL;
    for (int v0 = 0; v0 < nv; v0 += CVB) {
        const int vb = nv - v0 < CVB ? nv - v0 : CVB, gm = CGROUP(vb);
        const int nlast = v0 + vb == nv ? n - (nv - 1) * CVL : CVL;
        const int nblk = (m + gm - 1) / gm;
        for (int b = 0, i0 = 0; b < nblk; b++) {
            const int g = (m - i0) / (nblk - b);
            if (grad)
                CN(cgrad_table)[g - 1][vb - 1](x + i0, seg, nseg, seglen,
                                               c + (int64_t)i0 * ldc + v0 * CVL, ldc, nlast,
                                               Wt + v0 * CVL, ldr);
            else
                CN(cfwd_table)[g - 1][vb - 1](x + i0, seg, nseg, seglen, Wt + v0 * CVL, ldr,
                                              z + (int64_t)i0 * ldz + v0 * CVL, ldz, nlast);
            i0 += g;
        }
    }
}
#undef CV
#undef CVL
#undef CLOAD
#undef CSTORE
#undef CLOAD_N
#undef CSTORE_N
#undef CN
#undef CVB
#undef CGROUP

/* layer_dense.h: the dense layer kind.  Layer l maps n_in = sizes[l] to n_out = sizes[l+1]:
 * W (n_out, n_in), b (n_out,).
 *   dense_forward   Z = in @ W^T + b, A = act(Z) on a block of examples and
 *                   neurons: the small-batch row kernels, or our own tiles (or BLAS)
 *   dense_backward  dIn = D @ W: the delta sent to the layer below, before its act', on
 *                   a block of examples (dense_backward_cols: on a block of its columns)
 *   dense_update    the parameter gradient D^T @ in / m fused with the optimizer step, on a
 *                   block of rows (a thread's neurons); update_block_t is the same on a
 *                   transposed block (the K-split path's columns of W[0])
 *   dense_grad      the parameter gradient summed into gW, gb (fnn_gradient, for tests)
 */

#if FNN_TRANS_VEC
/* The register tile of the three products of larger calls (forward_tiles, backward_tiles,
 * update_fused): FNN_UMR rows of numbers a[r][k sa], each broadcast against NV vectors of
 * b + k ldb, summed over k = 0, 1, ..., K - 1 in order into acc (FNN_UMR x NV vectors: 24 of
 * AVX-512's 32 registers).  part: the last vector has nl lanes (read masked). */
FNN_INLINE void F(tile_acc)(const int NV, const int part, const REAL *const *a, int64_t sa,
                            const REAL *b, int64_t ldb, int K, int nl,
                            F(vec) acc[FNN_UMR][FNN_UNV]) {
    for (int r = 0; r < FNN_UMR; r++)
        for (int v = 0; v < NV; v++) acc[r][v] = (F(vec)){0};
    for (int k = 0; k < K; k++) {
        const REAL *bk = b + (int64_t)k * ldb;
        F(vec) bv[FNN_UNV];
        for (int v = 0; v < NV; v++)
            bv[v] = part && v == NV - 1 ? F(vload_n)(bk + v * FNN_VL, nl)
                                         : F(vload)(bk + v * FNN_VL);
        for (int r = 0; r < FNN_UMR; r++) {
            const REAL x = a[r][(int64_t)k * sa];
            for (int v = 0; v < NV; v++) acc[r][v] += x * bv[v];
        }
    }
}

/* The forward of larger mini-batches through our own tiles: BLAS packs its block of W for
 * every call, for only the mini-batch's rows (W3: 4 MB read and written again per layer and
 * mini-batch, for 128 rows; 8 % of a 1-thread epoch).  W is read in place here, one number of
 * each of FNN_UMR neurons at a time, against a panel of the inputs of up to FNN_UNR examples
 * copied transposed (K, FNN_UNR), zero past the last example (lanes computed, never stored:
 * zeros keep NaNs and subnormals out of them):
 *   Z[i][o] = sum_k in[i][k] W[o][k], k = 0, 1, ..., K - 1 in order
 * one sum per element, whatever the tiling, the examples' blocks or the threads' neurons.
 * nr: the tile's neurons (rows past them repeat its last); ni: the panel's examples. */
FNN_INLINE void F(ftile)(const int NV, const REAL *W, int64_t ldw, int nr, const REAL *Xt, int K,
                         REAL *Z, int64_t ldz, int ni) {
    enum { NR = FNN_UNR };
    F(vec) acc[FNN_UMR][FNN_UNV];
    const REAL *w[FNN_UMR];
    for (int r = 0; r < FNN_UMR; r++) w[r] = W + (int64_t)(r < nr ? r : nr - 1) * ldw;
    F(tile_acc)(NV, 0, w, 1, Xt, NR, K, FNN_VL, acc);
    REAL t[FNN_UMR][NR] __attribute__((aligned(64)));
    for (int r = 0; r < FNN_UMR; r++)   /* (all of t: ni <= NV lanes, which GCC cannot see) */
        for (int v = 0; v < FNN_UNV; v++)
            F(vstore)(t[r] + v * FNN_VL, v < NV ? acc[r][v] : (F(vec)){0});
    for (int i = 0; i < ni; i++)
        for (int r = 0; r < nr; r++) Z[(int64_t)i * ldz + r] = t[r][i];
}

/* Z (m, R; row stride ldz) = in (m, K; row stride lda) @ W (R, K; row stride ldw)^T, a panel
 * of FNN_UNR examples at a time, copied transposed into buf (room for K * FNN_UNR: the
 * thread's Dt); every tile of FNN_UMR neurons passes over it */
static void F(forward_tiles)(const REAL *in, int64_t lda, int m, const REAL *W, int64_t ldw,
                             int K, int R, REAL *Z, int64_t ldz, REAL *buf) {
    enum { NR = FNN_UNR, KB = 16 };
    for (int e0 = 0; e0 < m; e0 += NR) {
        const int ni = m - e0 < NR ? m - e0 : NR, nv = (ni + FNN_VL - 1) / FNN_VL;
        const int nw = nv * FNN_VL;   /* the lanes the tiles read */
        /* the transposing copy in blocks of KB inputs: a block's lines of buf stay in L1
         * while every example writes its KB numbers into them */
        for (int k0 = 0; k0 < K; k0 += KB) {
            const int nk = K - k0 < KB ? K - k0 : KB;
            for (int i = 0; i < nw; i++) {
                REAL *b = buf + (int64_t)k0 * NR + i;
                if (i < ni) {
                    const REAL *x = in + (int64_t)(e0 + i) * lda + k0;
                    for (int k = 0; k < nk; k++) b[(int64_t)k * NR] = x[k];
                } else {
                    for (int k = 0; k < nk; k++) b[(int64_t)k * NR] = 0;
                }
            }
        }
        for (int r0 = 0; r0 < R; r0 += FNN_UMR) {
            const int nr = R - r0 < FNN_UMR ? R - r0 : FNN_UMR;
            const REAL *Wr = W + (int64_t)r0 * ldw;
            REAL *Zr = Z + (int64_t)e0 * ldz + r0;
            switch (nv) {
            case 1: F(ftile)(1, Wr, ldw, nr, buf, K, Zr, ldz, ni); break;
            case 2: F(ftile)(2, Wr, ldw, nr, buf, K, Zr, ldz, ni); break;
#if FNN_UNV > 2
            case 3: F(ftile)(3, Wr, ldw, nr, buf, K, Zr, ldz, ni); break;
            case 4: F(ftile)(4, Wr, ldw, nr, buf, K, Zr, ldz, ni); break;
#endif
            default: break;
            }
        }
    }
}
#endif

/* dense_forward of layer l on rows [i0, i1) (examples) and columns [o0, o1) (neurons):
 * Z[l] (m, n_out) = in (m, n_in) @ W[l]^T (n_in, n_out) + b, A[l] = act(Z[l]).  t: the
 * thread's slot of ws->Dt. */
static void F(dense_forward)(const fnn_net *net, F(fnn_ws) *ws, int l, int64_t i0, int64_t i1,
                             int64_t o0, int64_t o1, int t) {
    const int n_in = net->sizes[l], n_out = net->sizes[l + 1];
    if (i1 <= i0 || o1 <= o0) return;
    const REAL *Wl = (const REAL *)net->layer[l].W + o0 * n_in;
    REAL *Zl = ws->Z[l] + i0 * n_out + o0;
#if FNN_TRANS_VEC
    if (F(tiles)(i1 - i0)) {   /* (then also F(tiles)(ws->M): the workspace has the room) */
        F(forward_tiles)(F(layer_in)(ws, l) + i0 * n_in, n_in, (int)(i1 - i0), Wl, n_in, n_in,
                         (int)(o1 - o0), Zl, n_out, ws->Dt + (int64_t)t * ws->dt_stride);
    } else
#endif
    if (F(small)(i1 - i0)) {
        const REAL *ptr[FNN_SMALL_M];
        F(dot_rows)((int)(i1 - i0), F(in_rows)(ws, l, n_in, i0, i1, 0, ptr), Wl, n_in, n_in,
                    (int)(o1 - o0), Zl, n_out);
    } else {
        F(gemm)(net, 0, 1, (int)(i1 - i0), (int)(o1 - o0), n_in, 1,
                F(layer_in)(ws, l) + i0 * n_in, n_in, Wl, n_in, 0, Zl, n_out);
    }
    F(act_forward)(ws->A[l], ws->Z[l], (const REAL *)net->layer[l].b, i0, i1, (int)o0, (int)o1, n_out,
                   net->layer[l].act);
}

static int F(dense_units)(const fnn_net *net, int l) { return net->sizes[l + 1]; }
static size_t F(dense_aux)(const fnn_net *net, int l, int M, int training) {
    (void)net; (void)l; (void)M; (void)training;
    return 0;
}

#if FNN_TRANS_VEC
/* The delta sent down for larger mini-batches, through our own tiles: BLAS packs its block of
 * W for every call, for only the mini-batch's rows (W3: 4 MB read and written again per layer
 * and mini-batch, for 128 rows).  W is read in place here, a row of NV vectors of its columns
 * at a time, against the deltas of FNN_UMR examples broadcast one number at a time:
 *   P[i][c] = sum_j D[i][j] W[j][c], j = 0, 1, ..., J - 1 in order
 * one sum per element, whatever the tiling or the threads' blocks.  nl: the lanes of the last
 * vector (FNN_VL: whole); ni: the examples of the tile (rows past them repeat its last). */
FNN_INLINE void F(btile)(const int NV, const int part, const REAL *D, int64_t ldd, int ni,
                         const REAL *W, int64_t ldw, int J, int nl, REAL *P, int64_t ldp) {
    F(vec) acc[FNN_UMR][FNN_UNV];
    const REAL *d[FNN_UMR];
    for (int r = 0; r < FNN_UMR; r++) d[r] = D + (int64_t)(r < ni ? r : ni - 1) * ldd;
    F(tile_acc)(NV, part, d, 1, W, ldw, J, nl, acc);
    for (int r = 0; r < ni; r++)
        for (int v = 0; v < NV; v++) {
            REAL *p = P + (int64_t)r * ldp + v * FNN_VL;
            if (part && v == NV - 1) F(vstore_n)(p, acc[r][v], nl);
            else F(vstore)(p, acc[r][v]);
        }
}

/* P (m, C; row stride ldp) = D (m, J) @ W (J, C; row stride ldw), overwritten: slabs of
 * FNN_UNR columns of W (J rows of them stay in L2 while every example passes) */
static void F(backward_tiles)(const REAL *D, int64_t ldd, int m, const REAL *W, int64_t ldw,
                              int J, int C, REAL *P, int64_t ldp) {
    for (int c = 0; c < C; c += FNN_UNR) {
        const int nc = C - c < FNN_UNR ? C - c : FNN_UNR, nv = (nc + FNN_VL - 1) / FNN_VL;
        const int nl = nc - (nv - 1) * FNN_VL, part = nl < FNN_VL;
        for (int i = 0; i < m; i += FNN_UMR) {
            const int ni = m - i < FNN_UMR ? m - i : FNN_UMR;
            const REAL *Di = D + (int64_t)i * ldd;
            REAL *Pi = P + (int64_t)i * ldp + c;
#define FNN_BT(NV, PART) F(btile)(NV, PART, Di, ldd, ni, W + c, ldw, J, nl, Pi, ldp)
            switch (nv * 2 + part) {
            case 2: FNN_BT(1, 0); break;
            case 3: FNN_BT(1, 1); break;
            case 4: FNN_BT(2, 0); break;
            case 5: FNN_BT(2, 1); break;
#if FNN_UNV > 2
            case 6: FNN_BT(3, 0); break;
            case 7: FNN_BT(3, 1); break;
            case 8: FNN_BT(4, 0); break;
            case 9: FNN_BT(4, 1); break;
#endif
            default: break;
            }
#undef FNN_BT
        }
    }
}
#endif

/* dense_backward of layer l on rows [i0, i1): D[l-1] (m, n_in) = D[l] (m, n_out) @ W (n_out,
 * n_in), overwritten; the caller applies the lower layer's act' (layers.h). */
static void F(dense_backward)(const fnn_net *net, F(fnn_ws) *ws, int l, int64_t i0, int64_t i1) {
    const int n_in = net->sizes[l], n_out = net->sizes[l + 1], ms = (int)(i1 - i0);
    if (ms <= 0) return;
#if FNN_TRANS_VEC
    if (F(tiles)(ms)) {
        F(backward_tiles)(ws->D[l] + i0 * n_out, n_out, ms, (const REAL *)net->layer[l].W, n_in,
                          n_out, n_in, ws->D[l - 1] + i0 * n_in, n_in);
        return;
    }
#endif
    F(gemm)(net, 0, 0, ms, n_in, n_out, 1, ws->D[l] + i0 * n_out, n_out,
            (const REAL *)net->layer[l].W, n_in, 0, ws->D[l - 1] + i0 * n_in, n_in);
}

/* dense_backward of layer l on columns [c0, c1) of D[l-1], all m rows: D[l-1][:, c0:c1] =
 * D[l] (m, n_out) @ W[:, c0:c1] (n_out, c1 - c0), overwritten (the rows path's fixed blocks:
 * each packs only its columns of W) */
static void F(dense_backward_cols)(const fnn_net *net, F(fnn_ws) *ws, int l, int m, int64_t c0,
                                   int64_t c1) {
    const int n_in = net->sizes[l], n_out = net->sizes[l + 1];
    if (m <= 0 || c1 <= c0) return;
#if FNN_TRANS_VEC
    if (F(tiles)(m)) {
        F(backward_tiles)(ws->D[l], n_out, m, (const REAL *)net->layer[l].W + c0, n_in, n_out,
                          (int)(c1 - c0), ws->D[l - 1] + c0, n_in);
        return;
    }
#endif
    F(gemm)(net, 0, 0, m, (int)(c1 - c0), n_out, 1, ws->D[l], n_out,
            (const REAL *)net->layer[l].W + c0, n_in, 0, ws->D[l - 1] + c0, n_in);
}

/* dense_grad of layer l on m examples: gW (n_out, n_in) += D^T @ in, gb (n_out) += sum D */
static void F(dense_grad)(const fnn_net *net, F(fnn_ws) *ws, int l, int m, REAL *gW, REAL *gb) {
    const int n_in = net->sizes[l], n_out = net->sizes[l + 1];
    F(gemm)(net, 1, 0, n_out, n_in, m, 1, ws->D[l], n_out, F(layer_in)(ws, l), n_in, 1, gW,
            n_in);
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n_out; j++) gb[j] += ws->D[l][(int64_t)i * n_out + j];
}

/* A block of a layer's parameters for the fused update: R rows (row stride ldw) of W, its
 * optimizer state sW[q] and gradient buffer G in the same layout; b and sb[q] the block's
 * biases and their state (b == NULL: biases not updated here). */
typedef struct {
    REAL *W, *b, *G;
    REAL *sW[FNN_MAX_SLOTS], *sb[FNN_MAX_SLOTS];
    int64_t ldw;
} F(fnn_block);

/* the biases' step from the mean of their deltas, D[i * ldd + r] for neuron r and example
 * i: each neuron's sum over the examples in order, a row of deltas at a time */
static void F(bias_update)(const fnn_train_cfg *cfg, const F(opt_k) *k, F(fnn_block) blk,
                           const REAL *D, int64_t ldd, int R, int m) {
    enum { CH = 64 };
    REAL g[CH];
    for (int r0 = 0; r0 < R; r0 += CH) {
        const int nr = R - r0 < CH ? R - r0 : CH;
        double s[CH];
        for (int r = 0; r < nr; r++) s[r] = 0;
        for (int i = 0; i < m; i++) {
            const REAL *d = D + r0 + i * ldd;
            for (int r = 0; r < nr; r++) s[r] += d[r];
        }
        for (int r = 0; r < nr; r++) g[r] = (REAL)(s[r] * (1.0 / m));
        REAL *sb[FNN_MAX_SLOTS];
        for (int q = 0; q < FNN_MAX_SLOTS; q++) sb[q] = blk.sb[q] ? blk.sb[q] + r0 : NULL;
        F(opt_apply)(&cfg->opt, k, blk.b + r0, sb, g, nr, nr, 1, nr, 0, 0);
    }
}

/* the weights' step on R rows of K entries of the block, from the mean gradient G */
static void F(weight_step)(const fnn_train_cfg *cfg, const F(opt_k) *k, F(fnn_block) blk,
                           const REAL *G, int64_t ldw, int R, int K) {
    F(opt_apply)(&cfg->opt, k, blk.W, blk.sW, G, ldw, ldw, R, K, (REAL)(cfg->lmbda / cfg->reg_n),
                 (REAL)(cfg->l1 / cfg->reg_n));
}

#if FNN_TRANS_VEC   /* vector types (kernels_t.h has undefined FNN_VEC_KERNELS) */
/* The update through our own product, fused with the step (larger mini-batches: W3's 128).
 * Through BLAS the gradient G = D^T in / m goes to a buffer the size of W (BLAS first zeroes
 * it, in a pass of its own) and the step then streams G, W and the state again: for W3 that is
 * 22 MB a mini-batch through memory, 13 % of the epoch in the step alone.  Here a tile of
 * FNN_UMR neurons x FNN_UNV vectors of inputs (fastnn.h) accumulates in registers over the
 * mini-batch and is stepped at once: W and its state pass through memory once, G never does.
 *   acc[r][j] = sum_i D[i][r0 + r] in[i][j0 + j], i = 0, 1, ..., m - 1 in order
 * so every weight's sum is the same whatever the tiling or the threads' rows.  Both operands
 * are copied first, so that the tile reads each contiguously: the inputs once a call into
 * panels of NR columns (m, NR), zero past the row's end, and the deltas of a tile's neurons
 * (m, FNN_UMR).  Read in place, the rows of either lie ldd or lda apart, for a layer 1024
 * wide all in one set of the L1 cache. */

/* one tile: NV vectors of the panel Bp (m, NR) times the deltas Ap (m, FNN_UMR), scaled by a,
 * into gt (FNN_UMR, NR) */
FNN_INLINE void F(utile)(const int NV, const REAL *Ap, const REAL *Bp, int m, REAL a,
                         REAL *gt) {
    enum { NR = FNN_UNR };
    F(vec) acc[FNN_UMR][FNN_UNV];
    const REAL *ar[FNN_UMR];   /* neuron r's deltas: Ap[i * FNN_UMR + r] */
    for (int r = 0; r < FNN_UMR; r++) ar[r] = Ap + r;
    F(tile_acc)(NV, 0, ar, FNN_UMR, Bp, NR, m, FNN_VL, acc);
    for (int r = 0; r < FNN_UMR; r++)
        for (int v = 0; v < NV; v++) F(vstore)(gt + r * NR + v * FNN_VL, acc[r][v] * a);
}

/* the update of R rows of K weights of the block: W = beta W + alpha D^T in (plain SGD), or
 * the mean gradient alpha D^T in and the optimizer's step.  buf: room for the inputs in
 * panels (K rounded up to NR, times m) and a tile's deltas (m * FNN_UMR): the thread's Dt */
static void F(update_fused)(const fnn_train_cfg *cfg, const F(opt_k) *k, F(fnn_block) blk,
                            const REAL *D, int ldd, int m, REAL alpha, REAL beta, int plain,
                            int R, int K, const REAL *in, int lda, REAL *buf) {
    enum { NR = FNN_UNR };
    REAL gt[FNN_UMR * NR] __attribute__((aligned(64)));
    const int64_t ldw = blk.ldw, panel = (int64_t)m * NR;
    const int np = (K + NR - 1) / NR, ns = fnn_opt_slots(cfg->opt.code);
    const REAL cwd = (REAL)(cfg->lmbda / cfg->reg_n), cl1 = (REAL)(cfg->l1 / cfg->reg_n);
    REAL *Bp = buf, *Ap = buf + np * panel;
    for (int p = 0; p < np; p++) {
        const int j0 = p * NR, nj = K - j0 < NR ? K - j0 : NR;
        for (int i = 0; i < m; i++) {
            const REAL *x = in + (int64_t)i * lda + j0;
            REAL *b = Bp + p * panel + (int64_t)i * NR;
            int j = 0;
            for (; j < nj; j++) b[j] = x[j];
            for (; j < NR; j++) b[j] = 0;
        }
    }
    for (int r0 = 0; r0 < R; r0 += FNN_UMR) {
        const int nr = R - r0 < FNN_UMR ? R - r0 : FNN_UMR;
        for (int i = 0; i < m; i++) {
            const REAL *d = D + (int64_t)i * ldd + r0;
            REAL *ap = Ap + (int64_t)i * FNN_UMR;
            int r = 0;
            for (; r < nr; r++) ap[r] = d[r];
            for (; r < FNN_UMR; r++) ap[r] = 0;
        }
        for (int p = 0; p < np; p++) {
            const int j0 = p * NR, nj = K - j0 < NR ? K - j0 : NR;
            if (p + 1 < np)   /* the next tile's weights and state, while this one computes */
                for (int r = 0; r < nr; r++) {
                    const int64_t off = (int64_t)(r0 + r) * ldw + j0 + NR;
                    for (int c = 0; c < NR; c += 64 / (int)sizeof(REAL)) {
                        __builtin_prefetch(blk.W + off + c, 1, 2);
                        for (int q = 0; q < ns; q++) __builtin_prefetch(blk.sW[q] + off + c, 1, 2);
                    }
                }
            const REAL *b = Bp + p * panel;
            switch ((nj + FNN_VL - 1) / FNN_VL) {
            case 1: F(utile)(1, Ap, b, m, alpha, gt); break;
            case 2: F(utile)(2, Ap, b, m, alpha, gt); break;
#if FNN_UNV > 2
            case 3: F(utile)(3, Ap, b, m, alpha, gt); break;
            case 4: F(utile)(4, Ap, b, m, alpha, gt); break;
#endif
            default: break;
            }
            const int64_t off = (int64_t)r0 * ldw + j0;
            if (plain) {
                for (int r = 0; r < nr; r++) {
                    REAL *w = blk.W + off + (int64_t)r * ldw;
                    const REAL *g = gt + r * NR;
                    _Pragma("omp simd")
                    for (int j = 0; j < nj; j++) w[j] = beta * w[j] + g[j];
                }
            } else {   /* the tile's rows in one call */
                REAL *s[FNN_MAX_SLOTS];
                for (int q = 0; q < FNN_MAX_SLOTS; q++) s[q] = q < ns ? blk.sW[q] + off : NULL;
                F(opt_apply)(&cfg->opt, k, blk.W + off, s, gt, ldw, NR, nr, nj, cwd, cl1);
            }
        }
    }
}
#endif

/* Dt: the thread's scratch (workspace.h); fused: it has room for update_fused (fused_ws) */
static void F(update_block)(const fnn_train_cfg *cfg, const fnn_net *net, F(fnn_block) blk,
                            const REAL *D, int ldd, int m, double eta, int64_t step, int R, int K,
                            const REAL *const *xr, const REAL *in, int lda, REAL *Dt,
                            int fused) {
    const double inv_m = 1.0 / m;
    const F(opt_k) k = F(opt_consts)(&cfg->opt, eta, step);
    if (blk.b != NULL) F(bias_update)(cfg, &k, blk, D, ldd, R, m);
    if (K <= 0) return;
    const int plain = F(plain_sgd)(cfg);
    const double alpha = plain ? -eta * inv_m : inv_m;
    const REAL beta = plain ? (REAL)(1 - eta * cfg->lmbda / cfg->reg_n) : (REAL)0;
    REAL *G = plain ? blk.W : blk.G;
    const int ldw = (int)blk.ldw;
    if (xr != NULL) {
        /* the row kernels: the block's delta columns, scaled, transposed to (R, m); the
         * update is W += Dt @ in, one row of Dt per row of W */
        const REAL a = (REAL)alpha;
        for (int r = 0; r < R; r++)
            for (int i = 0; i < m; i++) Dt[(int64_t)r * m + i] = a * D[(int64_t)i * ldd + r];
        F(axpy_rows)(m, xr, Dt, m, beta, G, ldw, K, R);
    } else {
#if FNN_TRANS_VEC
        if (fused && R >= FNN_UMR) {
            F(update_fused)(cfg, &k, blk, D, ldd, m, (REAL)alpha, beta, plain, R, K, in, lda, Dt);
            return;
        }
#endif
        /* BLAS reads the columns as they are (op(A) = D^T): a transposing copy for it read D
         * down its columns, ldd apart, which for a layer 1024 wide all fall in one set of
         * the L1 cache (4 % of W3's epoch) */
        F(gemm)(net, 1, 0, R, K, m, (REAL)alpha, D, ldd, in, lda, beta, G, ldw);
    }
    if (!plain) F(weight_step)(cfg, &k, blk, G, ldw, R, K);
}

/* update_block for a transposed block (K rows of ldw = F(ldr_of)(R) neurons: the K-split
 * path's columns of W[0]), the inputs as row pointers.  C: room for m * ldw. */
static void F(update_block_t)(const fnn_train_cfg *cfg, F(fnn_block) blk, const REAL *D,
                              int ldd, int m, double eta, int64_t step, int R, int K,
                              const REAL *const *xr, REAL *C) {
    const int ldr = (int)blk.ldw;
    const double inv_m = 1.0 / m;
    const F(opt_k) k = F(opt_consts)(&cfg->opt, eta, step);
    const int plain = F(plain_sgd)(cfg);
    const REAL a = (REAL)(plain ? -eta * inv_m : inv_m);
    /* C = a D, zero in the padding: the padded neurons' weights stay zero */
    for (int i = 0; i < m; i++) {
        REAL *ci = C + (int64_t)i * ldr;
        const REAL *di = D + (int64_t)i * ldd;
        for (int r = 0; r < R; r++) ci[r] = a * di[r];
        for (int r = R; r < ldr; r++) ci[r] = 0;
    }
    if (blk.b != NULL) F(bias_update)(cfg, &k, blk, D, ldd, R, m);
    if (K <= 0) return;
    const REAL beta = plain ? (REAL)(1 - eta * cfg->lmbda / cfg->reg_n) : (REAL)0;
    REAL *G = plain ? blk.W : blk.G;
    F(axpyt_rows)(m, xr, C, ldr, beta, G, ldr, K);
    if (!plain) F(weight_step)(cfg, &k, blk, G, ldr, K, ldr);
}

/* dense_update: update_block on rows [o0, o1) of dense layer l, every column, biases included; `t` picks this
 * thread's slice of ws->Dt. */
static void F(dense_update)(const fnn_net *net, const fnn_train_cfg *cfg, F(fnn_ws) *ws, int l,
                           int m, double eta, int64_t step, int64_t o0, int64_t o1, int t) {
    const int n_in = net->sizes[l], n_out = net->sizes[l + 1];
    if (o1 <= o0) return;
    const int64_t off = o0 * n_in;
    F(fnn_block) blk;
    blk.W = (REAL *)net->layer[l].W + off;
    blk.b = (REAL *)net->layer[l].b + o0;
    blk.G = ws->G[l] ? ws->G[l] + off : NULL;
    blk.ldw = n_in;
    for (int q = 0; q < FNN_MAX_SLOTS; q++) {
        void *sw = cfg->opt.sW[l][q], *sb = cfg->opt.sb[l][q];
        blk.sW[q] = sw ? (REAL *)sw + off : NULL;
        blk.sb[q] = sb ? (REAL *)sb + o0 : NULL;
    }
    const REAL *ptr[FNN_SMALL_M];
    const REAL *const *xr = F(small)(m) ? F(in_rows)(ws, l, n_in, 0, m, 0, ptr) : NULL;
    F(update_block)(cfg, net, blk, ws->D[l] + o0, n_out, m, eta, step, (int)(o1 - o0), n_in, xr,
                    xr ? NULL : F(layer_in)(ws, l), n_in, ws->Dt + (int64_t)t * ws->dt_stride,
                    F(fused_ws)(ws->M));
}

static void F(dense_prepare)(const fnn_net *net, F(fnn_ws) *ws, int l) {
    (void)net; (void)ws; (void)l;
}

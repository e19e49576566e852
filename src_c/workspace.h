/* workspace.h: the buffers of one engine call (per layer: pre-activations Z, activations A,
 * deltas D, dropout multipliers K, gradients G), sized by the layers' flat sizes, and the
 * gather of a mini-batch's input rows. */


typedef struct {
    int M;                        /* examples the buffers hold */
    int n_acc;                    /* accumulators: one per thread (training) or per block
                                   * (forward-only passes), whichever are more */
    REAL *x;                      /* (M, n_0) gathered inputs */
    int64_t *idx;                 /* (M) row of each slot in X / Y */
    const REAL **rows;            /* (M) each slot's input row: in X itself when `direct`,
                                   * else in x */
    int direct;                   /* gather sets row pointers only, copies nothing */
    REAL *Z[FNN_MAX_LAYERS];      /* (M, n_l) pre-activations, bias included */
    REAL *A[FNN_MAX_LAYERS];      /* (M, n_l) activations, after dropout */
    REAL *D[FNN_MAX_LAYERS];      /* (M, n_l) deltas dC/dz */
    REAL *K[FNN_MAX_LAYERS];      /* (M, n_l) dropout multipliers, hidden layers */
    REAL *G[FNN_MAX_LAYERS];      /* (n_w) mean weight gradient */
    void *aux[FNN_MAX_LAYERS];    /* the kind's own buffer (layers.h, name_aux) */
    REAL *Wt0;                    /* (n_0, ldr0) W[0] transposed, for forward-only passes */
    REAL *Zt;                     /* (M, ldr0) their first-layer products */
    int ldr0;                     /* 0 when those passes go through forward() */
    REAL *Dt;                     /* (T, dt_stride) per-thread scratch of the dense layers:
                                   * forward_tiles' panel of inputs, and of the update:
                                   * transposed deltas (small mini-batches) or the packed
                                   * inputs and deltas of update_fused (larger ones) */
    int64_t dt_stride;
    double *acc;                  /* (n_acc, 8): cost, hits, examples; padded against false
                                   * sharing */
    double *ex_cost;              /* (M, 2) a training mini-batch's cost and hit per example,
                                   * when the rows path keeps the running cost */
} F(fnn_ws);

static void F(ws_free)(F(fnn_ws) *ws) {
    fnn_free(ws->x); fnn_free(ws->idx); fnn_free(ws->acc); fnn_free(ws->Dt); fnn_free(ws->ex_cost);
    fnn_free((void *)ws->rows); fnn_free(ws->Wt0); fnn_free(ws->Zt);
    for (int l = 0; l < FNN_MAX_LAYERS; l++) {
        fnn_free(ws->Z[l]); fnn_free(ws->A[l]); fnn_free(ws->D[l]); fnn_free(ws->K[l]);
        fnn_free(ws->G[l]); fnn_free(ws->aux[l]);
    }
    memset(ws, 0, sizeof(*ws));
}

/* calls on at most FNN_SMALL_M examples go to the small-batch kernels */
static inline int F(small)(int64_t m) { return m <= FNN_SMALL_M; }
/* whether dense calls on m examples take our own product tiles for the forward and the
 * delta sent down (layer_dense.h: forward_tiles, backward_tiles; vector builds, calls above
 * FNN_SMALL_M), and a workspace for M examples makes room for forward_tiles' panel */
static inline int F(tiles)(int64_t m) { return FNN_TRANS_VEC && !F(small)(m); }
/* whether a training workspace for M examples makes room for update_fused (the same tiles
 * for the update, up to FNN_FUSED_MAX_M examples), and its calls may use it */
static inline int F(fused_ws)(int64_t M) { return F(tiles)(M) && M <= FNN_FUSED_MAX_M; }

/* the bytes of layer l's own buffer for M examples (layers.h); `training`: for a training
 * call, which also runs the backward pass */
static size_t F(layer_aux)(const fnn_net *net, int l, int M, int training);

/* Buffers for M examples and T threads; need_D: a training call (deltas, scratch); dropout:
 * the call's dropout on hidden layers (the masks K[l] of the layers that may drop);
 * need_G: the gradient buffers. */
static int F(ws_alloc)(F(fnn_ws) *ws, const fnn_net *net, int M, int T, int need_D,
                       double dropout, int need_G) {
    memset(ws, 0, sizeof(*ws));
    ws->M = M;
    ws->n_acc = T > FNN_KSPLIT_MAX_BLOCKS ? T : FNN_KSPLIT_MAX_BLOCKS;
    const int *S = net->sizes;
    ws->x = (REAL *)fnn_malloc(sizeof(REAL) * (size_t)M * S[0]);
    ws->idx = (int64_t *)fnn_malloc(sizeof(int64_t) * (size_t)M);
    ws->rows = (const REAL **)fnn_malloc(sizeof(REAL *) * (size_t)M);
    ws->acc = (double *)fnn_calloc((size_t)ws->n_acc * 8, sizeof(double));
    ws->ex_cost = need_D ? (double *)fnn_calloc((size_t)M * 2, sizeof(double)) : NULL;
    int64_t per = 1;   /* the dense update's scratch per example, the most any layer needs */
    int64_t fwd = 0;   /* forward_tiles' panel of inputs, transposed (calls above FNN_SMALL_M) */
    for (int l = 0; l < net->L; l++) {
        if (net->layer[l].kind != FNN_LAYER_DENSE) continue;
        /* the transposed deltas of a small mini-batch; for larger ones also update_fused's
         * inputs in whole panels and a tile's deltas */
        const int64_t fused =
            F(fused_ws)(M) ? (int64_t)(S[l] + FNN_UNR - 1) / FNN_UNR * FNN_UNR + FNN_UMR : 0;
        const int64_t need = S[l + 1] > fused ? S[l + 1] : fused;
        per = need > per ? need : per;
        const int64_t panel = F(tiles)(M) ? (int64_t)S[l] * FNN_UNR : 0;
        fwd = panel > fwd ? panel : fwd;
    }
    int64_t slice = need_D ? per * M : 0;   /* a thread's slice: the update's, or the panel */
    slice = fwd > slice ? fwd : slice;
    ws->dt_stride = (slice + 31) / 32 * 32;   /* slices on 128-byte boundaries */
    ws->Dt = slice > 0 ? (REAL *)fnn_malloc(sizeof(REAL) * (size_t)T * ws->dt_stride) : NULL;
    int ok = ws->x && ws->idx && ws->rows && ws->acc && (ws->Dt || slice == 0) &&
             (ws->ex_cost || !need_D);
    for (int l = 0; ok && l < net->L; l++) {
        size_t nl = (size_t)S[l + 1] * M;
        ws->Z[l] = (REAL *)fnn_malloc(sizeof(REAL) * nl);
        ws->A[l] = (REAL *)fnn_malloc(sizeof(REAL) * nl);
        ok = ws->Z[l] && ws->A[l];
        if (ok && need_D) ok = (ws->D[l] = (REAL *)fnn_malloc(sizeof(REAL) * nl)) != NULL;
        if (ok && need_D && (net->layer[l].dropout > 0 || (dropout > 0 && l < net->L - 1)))
            ok = (ws->K[l] = (REAL *)fnn_malloc(sizeof(REAL) * nl)) != NULL;
        if (ok && need_G)
            ok = (ws->G[l] = (REAL *)fnn_malloc(sizeof(REAL) * (size_t)net->layer[l].n_w)) != NULL;
        const size_t aux = F(layer_aux)(net, l, M, need_D);
        if (ok && aux > 0) ok = (ws->aux[l] = fnn_malloc(aux)) != NULL;
    }
    if (!ok) { F(ws_free)(ws); return FNN_NOMEM; }
    return FNN_OK;
}

/* the input of layer l as one (M, n_l) block: for l = 0 only when the gather copied */
static inline const REAL *F(layer_in)(const F(fnn_ws) *ws, int l) {
    return l == 0 ? ws->x : ws->A[l - 1];
}

/* Are the source's numbers REAL, so that kernels may read them in place: a matrix (always
 * REAL), or rows of REAL's type?  Rows of the other type are converted by the gather. */
static inline int F(src_in_place)(const fnn_data *d) {
    return d->rows == NULL || (d->rows_type == FNN_ROWS_F32) == (sizeof(REAL) == sizeof(float));
}

/* Read the rows of the source in place (no gather copy) when every call on these buffers goes
 * to the small-batch kernels (calls on at most m_max examples), the numbers are REAL and the
 * rows start on vector boundaries: for a row source, every row is checked (n pointers, once
 * per epoch or pass: about as long as gathering one mini-batch). */
static inline void F(set_direct)(F(fnn_ws) *ws, const fnn_data *d, int n_in, int64_t m_max) {
    int ok = F(small)(m_max) && F(src_in_place)(d) &&
             ((size_t)n_in * sizeof(REAL)) % FNN_VBYTES == 0;
    if (ok && d->rows == NULL) ok = (uintptr_t)d->X % FNN_VBYTES == 0;
    for (int64_t i = 0; ok && d->rows != NULL && i < d->n; i++)
        ok = (uintptr_t)d->rows[i] % FNN_VBYTES == 0;
    ws->direct = ok;
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

/* the bytes of one of the source's numbers */
static inline size_t F(src_size)(const fnn_data *d) {
    return d->rows == NULL ? sizeof(REAL)
                           : d->rows_type == FNN_ROWS_F32 ? sizeof(float) : sizeof(double);
}

/* where example `row`'s numbers start in the source */
static inline const char *F(src_row)(const fnn_data *d, int n_in, int64_t row) {
    return d->rows == NULL ? (const char *)((const REAL *)d->X + row * n_in)
                           : (const char *)d->rows[row];
}

/* dst[0, k) = the k numbers at src, whose type is a row source's `type`, as REAL: a copy, or
 * an exact widening (float to double) or the rounding numpy's astype does (double to float) */
static inline void F(copy_as_real)(REAL *dst, const char *src, int type, int64_t k) {
    if ((type == FNN_ROWS_F32) == (sizeof(REAL) == sizeof(float))) {
        memcpy(dst, src, sizeof(REAL) * (size_t)k);
    } else if (type == FNN_ROWS_F32) {
        const float *s = (const float *)src;
        for (int64_t j = 0; j < k; j++) dst[j] = (REAL)s[j];
    } else {
        const double *s = (const double *)src;
        for (int64_t j = 0; j < k; j++) dst[j] = (REAL)s[j];
    }
}

/* the prefetch alone: slots [p0, p1) of the mini-batch FNN_PREFETCH_BATCHES ahead, columns
 * [k0, k1) (a caller may spread a mini-batch's prefetches over its work) */
static void F(prefetch_src)(const fnn_data *d, int n_in, const int32_t *order, int64_t start,
                            int m, int64_t n, int64_t p0, int64_t p1, int64_t k0, int64_t k1) {
#if defined(__GNUC__)
    const size_t size = F(src_size)(d);
    for (int64_t i = p0; i < p1; i++) {
        int64_t s = start + FNN_PREFETCH_BATCHES * (int64_t)m + i;
        if (s >= n) break;
        const char *p = F(src_row)(d, n_in, order ? (int64_t)order[s] : s) + size * (size_t)k0;
        for (size_t off = 0; off < size * (size_t)(k1 - k0); off += FNN_PF_STEP)
            __builtin_prefetch(p + off, 0, FNN_PF_HINT);
        /* a row source: the pointer that the prefetch of the next mini-batch will read, one
         * of n in shuffled order (a miss that would stall that prefetch's address) */
        const int64_t s2 = s + m;
        if (d->rows != NULL && s2 < n)
            __builtin_prefetch(&d->rows[order ? (int64_t)order[s2] : s2], 0, FNN_PF_HINT);
    }
#else
    (void)d; (void)n_in; (void)order; (void)start; (void)m; (void)n; (void)p0; (void)p1;
    (void)k0; (void)k1;
#endif
}

/* gather: slot i holds example row = order[start + i] (or start + i when `order` is NULL)
 * of the source d: rows[i] points at its numbers in the source when ws->direct (REAL only),
 * else at its copy in x (converted to REAL from a row source of the other type).  The rows
 * of the mini-batch FNN_PREFETCH_BATCHES ahead (below n) are prefetched, slots [p0, p1):
 * shuffled rows are cache misses (through the row pointers for a row source).  Only columns
 * [k0, k1) are copied and prefetched. */
static void F(gather_src)(F(fnn_ws) *ws, const fnn_data *d, int n_in, const int32_t *order,
                          int64_t start, int m, int64_t n, int64_t i0, int64_t i1, int64_t p0,
                          int64_t p1, int64_t k0, int64_t k1) {
    const size_t size = F(src_size)(d);
    const int type = size == sizeof(float) ? FNN_ROWS_F32 : FNN_ROWS_F64;
    for (int64_t i = i0; i < i1; i++) {
        int64_t row = order ? (int64_t)order[start + i] : start + i;
        ws->idx[i] = row;
        const char *src = F(src_row)(d, n_in, row);
        if (ws->direct) {
            ws->rows[i] = (const REAL *)src;
        } else {
            F(copy_as_real)(ws->x + i * n_in + k0, src + size * (size_t)k0, type, k1 - k0);
            ws->rows[i] = ws->x + i * n_in;
        }
    }
    F(prefetch_src)(d, n_in, order, start, m, n, p0, p1, k0, k1);
}

/* the gather from a matrix X (REAL, (n, n_in)): fnn_gradient's */
static void F(gather)(F(fnn_ws) *ws, const REAL *X, int n_in, const int32_t *order,
                      int64_t start, int m, int64_t n, int64_t i0, int64_t i1, int64_t p0,
                      int64_t p1, int64_t k0, int64_t k1) {
    fnn_data d;
    memset(&d, 0, sizeof d);
    d.X = X;
    d.n = n;
    F(gather_src)(ws, &d, n_in, order, start, m, n, i0, i1, p0, p1, k0, k1);
}

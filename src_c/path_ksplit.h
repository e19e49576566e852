/* path_ksplit.h: the K-split path: a mini-batch split by the first layer's inputs. */

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
    REAL *W0, *sW0[FNN_MAX_SLOTS]; /* those columns of W[0] and of their optimizer state, transposed:
                            * (k1 - k0, ldr), zero in the padding */
    REAL *G0;              /* their mean gradient, the same shape (NULL for plain SGD) */
    REAL *C;               /* (M, ldr): the scaled output deltas of the first layer */
    int bar_gen;           /* this thread's generation of the team's spin barrier */
    REAL *mem;
} F(fnn_rep);

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
    const int ns = fnn_opt_slots(cfg->opt.code);
    const int need_G = !F(plain_sgd)(cfg);
    r->k0 = k0;
    r->k1 = k1;
    r->ldr = F(ldr_of)(net->sizes[1]);
    const size_t nw0 = (size_t)(k1 - k0) * r->ldr, nc = (size_t)M * r->ldr;
    size_t total = nw0 * (size_t)(1 + ns + need_G) + nc;
    for (int l = 0; l < net->L; l++) {
        size_t nw = l ? (size_t)net->layer[l].n_w : 0, nb = (size_t)net->layer[l].n_b;
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
        size_t nw = l ? (size_t)net->layer[l].n_w : 0, nb = (size_t)net->layer[l].n_b;
        if (l) { r->net.layer[l].W = p; p += nw; }
        r->net.layer[l].b = p; p += nb;
        for (int q = 0; q < ns; q++) {
            if (l) { r->cfg.opt.sW[l][q] = p; p += nw; }
            r->cfg.opt.sb[l][q] = p; p += nb;
        }
    }
    if (F(ws_alloc)(&r->ws, &r->net, M, 1, 1, cfg->dropout, need_G) != FNN_OK) {
        F(rep_free)(r);
        return FNN_NOMEM;
    }
    /* rows read in place, aligned or not: the transposed kernels read x a number at a time
     * (and the later layers read the activations, never x); the gather converts the rows
     * of a source whose type is not REAL, the thread's columns only */
    r->ws.direct = F(src_in_place)(&cfg->train);
    return FNN_OK;
}

/* copy the shared parameters and optimizer state into the thread's copies (out = 0), or
 * back (out = 1): its columns of W[0] always, the rest in or, when `all`, out */
static void F(rep_copy)(F(fnn_rep) *r, fnn_net *net, fnn_train_cfg *cfg, int out, int all) {
    const int ns = fnn_opt_slots(cfg->opt.code);
    const int n0 = net->sizes[0], n1 = net->sizes[1], ldr = r->ldr;
    const int64_t K = r->k1 - r->k0;
    for (int k = -1; k < ns; k++) {
        REAL *own = k < 0 ? r->W0 : r->sW0[k];
        REAL *shared = (REAL *)(k < 0 ? net->layer[0].W : cfg->opt.sW[0][k]);
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
        const size_t nw = sizeof(REAL) * (size_t)net->layer[l].n_w;
        const size_t nb = sizeof(REAL) * (size_t)net->layer[l].n_b;
        /* (own, shared) pairs: W, b, then each state slot's W-shaped and b-shaped arrays */
        void *pairs[2 + 2 * FNN_MAX_SLOTS][2] = {{r->net.layer[l].W, net->layer[l].W},
                                                 {r->net.layer[l].b, net->layer[l].b}};
        for (int q = 0; q < ns; q++) {
            pairs[2 + 2 * q][0] = r->cfg.opt.sW[l][q];
            pairs[2 + 2 * q][1] = cfg->opt.sW[l][q];
            pairs[3 + 2 * q][0] = r->cfg.opt.sb[l][q];
            pairs[3 + 2 * q][1] = cfg->opt.sb[l][q];
        }
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
static int F(ksplit_ok)(const fnn_net *net, int batch, int T, int nb) {
    const int n0 = net->sizes[0], n1 = net->sizes[1];
    const int64_t ka = FNN_VBYTES / (int64_t)sizeof(REAL);
    /* the choice does not depend on T (the results must not): at least two vectors of
     * inputs per block, and the later layers under a tenth of half the first layer */
    if (T < 1 || batch < 1 || !F(small)(batch) || n0 < 2 * ka * nb) return 0;
    for (int l = 0; l < net->L; l++)   /* every thread runs the later layers on its copy */
        if (net->layer[l].kind != FNN_LAYER_DENSE) return 0;
    double first = (double)n0 * n1, rest = 4.0 * n1;
    for (int l = 1; l < net->L; l++) rest += 3.0 * (double)net->layer[l].n_w;
    return rest <= 0.1 * first;
}

/* The first layer's inputs in nb fixed blocks (cfg->ksplit_blocks): block b is the columns from
 * ksplit_col(b) on.  Each block's partial sums start from zero and the blocks are added in
 * block order, so the sums are the same whatever the thread count; thread t owns a run of
 * whole blocks (threads past the blocks own none). */
static inline int64_t F(ksplit_col)(int n0, int b, int nb) {
    int64_t lo, hi;
    if (b >= nb) return n0;
    fnn_split(n0, b, nb, 1, 0, &lo, &hi);
    return lo;
}

static inline void F(ksplit_blocks)(int t, int T, int nb, int64_t *b0, int64_t *b1) {
    fnn_split(nb, t, T, 1, 0, b0, b1);
}

/* thread t's columns of W[0]: its blocks' (each thread keeps them in its own transposed copy,
 * so no two threads write one line, and reads of x need no alignment) */
static void F(ksplit_cols)(int n0, int t, int T, int nb, int64_t *k0, int64_t *k1) {
    int64_t b0, b1;
    F(ksplit_blocks)(t, T, nb, &b0, &b1);
    *k0 = F(ksplit_col)(n0, (int)b0, nb);
    *k1 = F(ksplit_col)(n0, (int)b1, nb);
}

/* the copies of a team of T threads, each with its blocks' columns (NULL: no memory) */
static F(fnn_rep) *F(rep_set)(const fnn_net *net, const fnn_train_cfg *cfg, int M, int T) {
    F(fnn_rep) *reps = (F(fnn_rep) *)fnn_calloc((size_t)T, sizeof(F(fnn_rep)));
    if (reps == NULL) return NULL;
    for (int t = 0; t < T; t++) {
        int64_t k0, k1;
        F(ksplit_cols)(net->sizes[0], t, T, cfg->ksplit_blocks, &k0, &k1);
        if (F(rep_alloc)(&reps[t], net, cfg, M, k0, k1) != FNN_OK) {
            for (int u = 0; u < t; u++) F(rep_free)(&reps[u]);
            fnn_free(reps);
            return NULL;
        }
    }
    return reps;
}

static void F(rep_set_free)(F(fnn_rep) *reps, int T) {
    for (int t = 0; reps != NULL && t < T; t++) F(rep_free)(&reps[t]);
    fnn_free(reps);
}

static void F(train_batch_ksplit)(const fnn_train_cfg *cfg, F(fnn_rep) *rp, REAL *P,
                                  int64_t pstride, fnn_spin_barrier *bar, int epoch,
                                  int64_t start, int m, double eta, int64_t step, int t, int T,
                                  int64_t k0, int64_t k1) {
    const fnn_net *net = &rp->net;
    F(fnn_ws) *ws = &rp->ws;
    const int L = net->L, n0 = net->sizes[0], n1 = net->sizes[1];
    const int32_t *order = cfg->orders ? cfg->orders + (int64_t)epoch * cfg->train.n : NULL;
    /* the rows FNN_PREFETCH_BATCHES mini-batches ahead are prefetched in three parts: here,
     * after the meeting, and before the update (prefetch_src).  All at once (W1: 10 rows of
     * 49 lines of float32 a thread) the prefetches waited for the core's miss buffers, about
     * a tenth of the mini-batch's time in gather_src; spread out, W1's float32 epoch with 2
     * threads ran 5 % faster (float64's and W2's the same as before) */
    const int h = (m + 2) / 3, h2 = (2 * m + 2) / 3;
    F(gather_src)(ws, &cfg->train, n0, order, start, m, cfg->train.n, 0, m, 0, h, k0, k1);
#if defined(__GNUC__)
    {   /* the targets of this mini-batch, which every thread reads in the output phase, into
         * L1 now: the first layer's product runs before it.  Prefetched with the rows two
         * mini-batches ahead and the rows' hint (L2), each target row still missed there,
         * the output phase waiting on memory: W1 on 1 thread, 472 of its float32 samples
         * against 2,382 in the first layer's forward kernel; 46 against 1,977 so. */
        const int no = net->sizes[L];
        for (int64_t s = start; s < start + m && s < cfg->train.n; s++) {
            const char *y = (const char *)((const REAL *)cfg->train.Y +
                                           (order ? (int64_t)order[s] : s) * no);
            __builtin_prefetch(y, 0, 3);
            __builtin_prefetch(y + sizeof(REAL) * (size_t)no - 1, 0, 3);
        }
    }
#endif
    /* this batch's half of the partial sums: one slot per block */
    const int nb = cfg->ksplit_blocks;
    REAL *Pb = P + (int64_t)((start / cfg->batch) & 1) * nb * pstride;
    const REAL *ptr[FNN_SMALL_M], *pb[FNN_SMALL_M];
    const REAL *const *xr = F(in_rows)(ws, 0, n0, 0, m, k0, ptr);
    const int ldr = rp->ldr;
    int64_t b0, b1;
    F(ksplit_blocks)(t, T, nb, &b0, &b1);
    for (int64_t blk = b0; blk < b1; blk++) {   /* each of its blocks from zero */
        const int64_t c0 = F(ksplit_col)(n0, (int)blk, nb);
        const int64_t c1 = F(ksplit_col)(n0, (int)blk + 1, nb);
        for (int i = 0; i < m; i++) pb[i] = xr[i] + (c0 - k0);
        F(dott_rows)(m, pb, rp->W0 + (c0 - k0) * ldr, ldr, (int)(c1 - c0), 0,
                     Pb + blk * pstride, ldr);
    }
    fnn_spin_wait(bar, T, &rp->bar_gen);
    F(prefetch_src)(&cfg->train, n0, order, start, m, cfg->train.n, h, h2, k0, k1);
    /* block 0's part, then the others' in block order, then the bias */
    F(act_forward_sum)(ws->A[0], ws->Z[0], Pb, pstride, nb, ldr, (const REAL *)net->layer[0].b, 0,
                       m, 0, n1, n1, net->layer[0].act);
    const fnn_pass ps = {1, cfg->dropout, cfg->seed, epoch, start};
    F(layer_dropout)(net, ws, 0, &ps, 0, m, 0, n1);
    for (int l = 1; l < L; l++) F(layer_forward)(net, ws, l, &ps, 0, m, 0, net->sizes[l + 1], 0);
    F(output_phase)(net, ws, (const REAL *)cfg->train.Y, 1, cfg->monitor & FNN_MON_RUN, 0, m, 0,
                    NULL);
    F(backward)(net, ws, 0, m);
    for (int l = L - 1; l >= 1; l--)
        F(layer_update)(net, &rp->cfg, ws, l, m, eta, step, 0, net->sizes[l + 1], 0);
    F(prefetch_src)(&cfg->train, n0, order, start, m, cfg->train.n, h2, m, k0, k1);
    F(fnn_block) blk;
    blk.W = rp->W0;
    blk.b = (REAL *)net->layer[0].b;
    blk.G = rp->G0;
    blk.ldw = ldr;
    for (int q = 0; q < FNN_MAX_SLOTS; q++) {
        blk.sW[q] = rp->sW0[q];
        blk.sb[q] = (REAL *)rp->cfg.opt.sb[0][q];
    }
    F(update_block_t)(&rp->cfg, blk, ws->D[0], n1, m, eta, step, n1, (int)(k1 - k0), xr, rp->C);
}


/* evaluate.h: the forward-only passes (per-epoch monitors, evaluate, predict).  Chunks of
 * FNN_EVAL_BATCH examples, cut into the net's fixed blocks and shared by the threads with no
 * barriers: every thread works on its own blocks of the buffers in each chunk.  Where layer 0
 * is dense and at most FNN_EVALT_MAXN wide, it runs through a transposed copy of W[0]
 * (forward_eval); the rest through layer_forward. */

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

/* Before a forward-only pass over d: fill ws->Wt0 from W[0] (allocated at the first pass)
 * and read the rows in place where they are REAL; without the vector kernels, for wide
 * layers, or when the memory is not there, the pass goes through forward() instead. */
static void F(eval_prepare)(const fnn_net *net, F(fnn_ws) *ws, const fnn_data *d) {
    F(prepare)(net, ws);
    ws->ldr0 = 0;
    if (net->layer[0].kind != FNN_LAYER_DENSE) return;
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
    F(transpose_in)((const REAL *)net->layer[0].W, n0, n1, n0, ldr, ws->Wt0);
    ws->ldr0 = ldr;
    /* the transposed kernels read x one number at a time: any alignment; a row source of
     * the other type is converted into x by the gather */
    ws->direct = F(src_in_place)(d);
}

/* examples per chunk of a forward-only pass */
static int F(eval_rows)(const fnn_net *net) {
    for (int l = 0; l < net->L; l++)
        if (F(layer_aux)(net, l, 1, 0) > 0) return FNN_EVAL_BATCH_AUX;
    return FNN_EVAL_BATCH;
}

/* a forward-only pass: no dropout masks */
static const fnn_pass F(eval_pass) = {0, 0.0, 0, 0, 0};

/* forward through every layer on the rows [i0, i1), no dropout: after eval_prepare */
static void F(forward_eval)(const fnn_net *net, F(fnn_ws) *ws, int64_t i0, int64_t i1,
                            int t) {
    if (ws->ldr0 > 0) {
        const int n0 = net->sizes[0], n1 = net->sizes[1], ldr = ws->ldr0;
        if (i1 <= i0) return;
        F(dott_rows)((int)(i1 - i0), ws->rows + i0, ws->Wt0, ldr, n0, F(ktile_eval)(ldr, n0),
                     ws->Zt + i0 * ldr, ldr);
        F(act_forward_sum)(ws->A[0], ws->Z[0], ws->Zt + i0 * ldr, 0, 1, ldr,
                           (const REAL *)net->layer[0].b, i0, i1, 0, n1, n1, net->layer[0].act);
        F(layer_dropout)(net, ws, 0, &F(eval_pass), i0, i1, 0, n1);
        for (int l = 1; l < net->L; l++)
            F(layer_forward)(net, ws, l, &F(eval_pass), i0, i1, 0, net->sizes[l + 1], t);
        return;
    }
    F(forward)(net, ws, &F(eval_pass), i0, i1, t);
}

/* A chunk's rows are cut into the net's fixed blocks (each a call of its own: a BLAS call's
 * sums depend on its shape), and the cost sums are kept per block and added in block order
 * (reduce_acc), so the results do not depend on the thread count.  The rows [i0, i1) of
 * blocks [q0, q1) of a chunk of m rows: the split of the full buffer (M rows) into P blocks,
 * cut at m, so a block is the same buffer rows in every chunk, the last shorter one
 * included; a thread owns the same run of blocks in every chunk (eval_blocks), so chunks
 * need no barrier between them. */
static inline void F(block_rows)(const F(fnn_ws) *ws, int m, int P, int64_t q0, int64_t q1,
                                 int64_t *i0, int64_t *i1) {
    *i0 = fnn_part(ws->M, q0, P);
    *i1 = fnn_part(ws->M, q1, P);
    if (*i0 > m) *i0 = m;
    if (*i1 > m) *i1 = m;
}

/* thread t's run of blocks [q0, q1) of a forward-only pass */
static inline void F(eval_blocks)(const fnn_net *net, int t, int T, int64_t *q0, int64_t *q1) {
    *q0 = fnn_part(fnn_blocks(net), t, T);
    *q1 = fnn_part(fnn_blocks(net), t + 1, T);
}

/* Cost sum and hits over a data set, forward only, the blocks of each chunk shared by the
 * team; no barriers: every thread works on its own blocks' rows of the buffer.  Block q's
 * sums go to accumulator q. */
static void F(evaluate_team)(const fnn_net *net, F(fnn_ws) *ws, const fnn_data *data, int t,
                             int T) {
    const int P = fnn_blocks(net);
    int64_t q0, q1;
    F(eval_blocks)(net, t, T, &q0, &q1);
    for (int64_t start = 0; q1 > q0 && start < data->n; start += ws->M) {
        int m = (int)((data->n - start) < ws->M ? (data->n - start) : ws->M);
        int64_t i0, i1, r0, r1;
        F(block_rows)(ws, m, P, q0, q1, &i0, &i1);
        F(gather_src)(ws, data, net->sizes[0], NULL, start, m, 0, i0, i1, i0, i1, 0,
                      net->sizes[0]);
        for (int64_t q = q0; q < q1; q++) {
            F(block_rows)(ws, m, P, q, q + 1, &r0, &r1);
            F(forward_eval)(net, ws, r0, r1, t);
            F(output_phase)(net, ws, (const REAL *)data->Y, 0, 1, r0, r1, (int)q, NULL);
        }
    }
}

/* the cost sum and hits of every accumulator, added in order, then cleared */
static void F(reduce_acc)(F(fnn_ws) *ws, double *cost, int64_t *hits) {
    double c = 0, h = 0;
    for (int t = 0; t < ws->n_acc; t++) {
        c += ws->acc[t * 8 + 0];
        h += ws->acc[t * 8 + 1];
        ws->acc[t * 8 + 0] = 0;
        ws->acc[t * 8 + 1] = 0;
        ws->acc[t * 8 + 2] = 0;
    }
    *cost = c;
    *hits = (int64_t)(h + 0.5);
}

/* Its cost and hits are kept per fixed block and added in block order (evaluate_team), so
 * they do not depend on the team (training may change its team with the load, team.h). */
static void F(evaluate_set)(const fnn_net *net, F(fnn_ws) *ws, const fnn_data *data, int T,
                            double *cost, int64_t *hits) {
    F(set_direct)(ws, data, net->sizes[0], ws->M);
    F(eval_prepare)(net, ws, data);
#pragma omp parallel num_threads(T)
    F(evaluate_team)(net, ws, data, fnn_thread_num(), fnn_num_threads());
    F(reduce_acc)(ws, cost, hits);
}

/* sum w^2 and |w| over all weights; returns 0 when any weight or bias is not finite */

/* out (n, n_out) = the network's output for X (n, n_in). */
static int F(fnn_predict)(const fnn_net *net, const REAL *X, int64_t n, REAL *out) {
    const int T = net->n_threads > 0 ? net->n_threads : 1, L = net->L, no = net->sizes[L];
    F(fnn_ws) ws;
    if (F(ws_alloc)(&ws, net, F(eval_rows)(net), T, 0, 0, 0) != FNN_OK) return FNN_NOMEM;
    fnn_data d;
    memset(&d, 0, sizeof d);
    d.X = X;
    d.n = n;
    F(set_direct)(&ws, &d, net->sizes[0], ws.M);
    F(eval_prepare)(net, &ws, &d);
#pragma omp parallel num_threads(T)
    {
        const int P = fnn_blocks(net);
        int64_t q0, q1;
        const int t = fnn_thread_num();
        F(eval_blocks)(net, t, fnn_num_threads(), &q0, &q1);
        for (int64_t start = 0; q1 > q0 && start < n; start += ws.M) {
            int m = (int)((n - start) < ws.M ? (n - start) : ws.M);
            int64_t i0, i1, r0, r1;
            F(block_rows)(&ws, m, P, q0, q1, &i0, &i1);
            F(gather_src)(&ws, &d, net->sizes[0], NULL, start, m, 0, i0, i1, i0, i1, 0,
                          net->sizes[0]);
            for (int64_t q = q0; q < q1; q++) {
                F(block_rows)(&ws, m, P, q, q + 1, &r0, &r1);
                F(forward_eval)(net, &ws, r0, r1, t);
            }
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
    if (F(ws_alloc)(&ws, net, F(eval_rows)(net), T, 0, 0, 0) != FNN_OK) return FNN_NOMEM;
    F(evaluate_set)(net, &ws, data, T, cost, hits);
    F(ws_free)(&ws);
    return FNN_OK;
}

/* layer_maxpool2d.h: the maxpool2d layer kind, channels-last.
 *
 * maxpool2d: input (H, W, C), output (OH, OW, C); output (oy, ox, c) is the maximum of the
 * window of ph x pw inputs from (oy*sh, ox*sw), borders that no whole window covers ignored
 * (Theano's ignore_border=True, Keras' "valid").  geom = {ph, pw, stride_h, stride_w}.  The
 * first maximum in the window's row-major order wins a tie (as PyTorch and TensorFlow), and
 * the backward pass sends the output's delta to it alone.  While training, ws->aux[l] keeps
 * the winner's index in the example's input for every output.  No parameters; the
 * activation is the identity (a front door puts it on the layer before: for the activations
 * of the table that are non-decreasing, max then act equals act then max).
 *
 * flatten: the same numbers under a new shape (channels-last rows are already Keras'
 * flattened order); forward and backward copy. */

#ifndef FNN_POOL_CB_DEFINED
#define FNN_POOL_CB_DEFINED
enum { FNN_POOL_CB = 64 };   /* channels per block of running maxima */
#endif

/* maxpool2d_forward, examples [i0, i1).  Each window's channels in blocks: the running
 * maxima and winners sit in local arrays and each tap updates them by selects (no branches,
 * whole vectors); a tie keeps the earlier input, as the loop in row-major order would. */
static void F(maxpool2d_forward)(const fnn_net *net, F(fnn_ws) *ws, int l, int64_t i0,
                                 int64_t i1, int64_t o0, int64_t o1, int t) {
    (void)o0; (void)o1; (void)t;
    const fnn_layer *ly = &net->layer[l];
    const int W = ly->in_shape[1], C = ly->in_shape[2];
    const int OH = ly->out_shape[0], OW = ly->out_shape[1];
    const int ph = ly->geom[0], pw = ly->geom[1], sh = ly->geom[2], sw = ly->geom[3];
    const int n_in = net->sizes[l], n_out = net->sizes[l + 1];
    int32_t *arg = (int32_t *)ws->aux[l];
    REAL best[FNN_POOL_CB];
    int32_t win[FNN_POOL_CB];
    for (int64_t i = i0; i < i1; i++) {
        const REAL *restrict x = l == 0 ? ws->rows[i] : ws->A[l - 1] + i * n_in;
        REAL *restrict z = ws->Z[l] + i * n_out, *restrict a = ws->A[l] + i * n_out;
        int32_t *restrict ar = arg ? arg + i * n_out : NULL;
        for (int oy = 0; oy < OH; oy++) {
            for (int ox = 0; ox < OW; ox++) {
                const int64_t o = ((int64_t)oy * OW + ox) * C;
                const int32_t base = (int32_t)(((int64_t)oy * sh * W + (int64_t)ox * sw) * C);
                for (int c0 = 0; c0 < C; c0 += FNN_POOL_CB) {
                    const int nc = C - c0 < FNN_POOL_CB ? C - c0 : FNN_POOL_CB;
                    for (int c = 0; c < nc; c++) {
                        best[c] = x[base + c0 + c];
                        win[c] = base + c0 + c;
                    }
                    for (int dy = 0; dy < ph; dy++) {
                        for (int dx = dy == 0; dx < pw; dx++) {
                            const int32_t p = base + (int32_t)((dy * W + dx) * C) + c0;
                            const REAL *restrict xp = x + p;
                            for (int c = 0; c < nc; c++) {
                                const int gt = xp[c] > best[c];
                                best[c] = gt ? xp[c] : best[c];
                                win[c] = gt ? p + c : win[c];
                            }
                        }
                    }
                    for (int c = 0; c < nc; c++) z[o + c0 + c] = a[o + c0 + c] = best[c];
                    if (ar)
                        for (int c = 0; c < nc; c++) ar[o + c0 + c] = win[c];
                }
            }
        }
    }
}

/* maxpool2d_backward, examples [i0, i1): each output's delta to its window's winner */
static void F(maxpool2d_backward)(const fnn_net *net, F(fnn_ws) *ws, int l, int64_t i0,
                                  int64_t i1) {
    const int n_in = net->sizes[l], n_out = net->sizes[l + 1];
    const int32_t *arg = (const int32_t *)ws->aux[l];
    for (int64_t i = i0; i < i1; i++) {
        REAL *dx = ws->D[l - 1] + i * n_in;
        const REAL *d = ws->D[l] + i * n_out;
        const int32_t *ar = arg + i * n_out;
        memset(dx, 0, sizeof(REAL) * (size_t)n_in);
        for (int j = 0; j < n_out; j++) dx[ar[j]] += d[j];
    }
}

static int F(maxpool2d_units)(const fnn_net *net, int l) { (void)net; (void)l; return 0; }

static size_t F(maxpool2d_aux)(const fnn_net *net, int l, int M, int training) {
    return training ? sizeof(int32_t) * (size_t)M * (size_t)net->sizes[l + 1] : 0;
}

static void F(maxpool2d_update)(const fnn_net *net, const fnn_train_cfg *cfg, F(fnn_ws) *ws,
                                int l, int m, double eta, int64_t step, int64_t o0, int64_t o1,
                                int t) {
    (void)net; (void)cfg; (void)ws; (void)l; (void)m; (void)eta; (void)step; (void)o0;
    (void)o1; (void)t;
}

static void F(maxpool2d_grad)(const fnn_net *net, F(fnn_ws) *ws, int l, int m, REAL *gW,
                              REAL *gb) {
    (void)net; (void)ws; (void)l; (void)m; (void)gW; (void)gb;
}

static void F(maxpool2d_prepare)(const fnn_net *net, F(fnn_ws) *ws, int l) {
    (void)net; (void)ws; (void)l;
}

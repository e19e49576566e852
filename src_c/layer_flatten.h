/* layer_flatten.h: the flatten layer kind: the same numbers under a new shape (channels-last
 * rows already are Keras' flattened order); forward and backward copy.  It also carries
 * dropout where no other layer's output does (a Dropout right after the input). */

/* flatten_forward, examples [i0, i1): Z = A = the input */
static void F(flatten_forward)(const fnn_net *net, F(fnn_ws) *ws, int l, int64_t i0, int64_t i1,
                               int64_t o0, int64_t o1, int t) {
    (void)o0; (void)o1; (void)t;
    const int n = net->sizes[l];
    for (int64_t i = i0; i < i1; i++) {
        const REAL *x = l == 0 ? ws->rows[i] : ws->A[l - 1] + i * n;
        memcpy(ws->Z[l] + i * n, x, sizeof(REAL) * (size_t)n);
        memcpy(ws->A[l] + i * n, x, sizeof(REAL) * (size_t)n);
    }
}

/* flatten_backward, examples [i0, i1): D[l-1] = D[l] */
static void F(flatten_backward)(const fnn_net *net, F(fnn_ws) *ws, int l, int64_t i0, int64_t i1) {
    const int n = net->sizes[l];
    memcpy(ws->D[l - 1] + i0 * n, ws->D[l] + i0 * n, sizeof(REAL) * (size_t)((i1 - i0) * n));
}

static int F(flatten_units)(const fnn_net *net, int l) { (void)net; (void)l; return 0; }

static size_t F(flatten_aux)(const fnn_net *net, int l, int M, int training) {
    (void)net; (void)l; (void)M; (void)training;
    return 0;
}

static void F(flatten_update)(const fnn_net *net, const fnn_train_cfg *cfg, F(fnn_ws) *ws, int l,
                              int m, double eta, int64_t step, int64_t o0, int64_t o1, int t) {
    (void)net; (void)cfg; (void)ws; (void)l; (void)m; (void)eta; (void)step; (void)o0;
    (void)o1; (void)t;
}

static void F(flatten_grad)(const fnn_net *net, F(fnn_ws) *ws, int l, int m, REAL *gW, REAL *gb) {
    (void)net; (void)ws; (void)l; (void)m; (void)gW; (void)gb;
}

static void F(flatten_prepare)(const fnn_net *net, F(fnn_ws) *ws, int l) {
    (void)net; (void)ws; (void)l;
}

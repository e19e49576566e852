/* layers.h: the layer-kind table's dispatch (fnn_tables.h, FNN_LAYER_KINDS).  A kind `name`
 * has one file (layer_dense.h, layer_conv2d.h, ...) with these functions:
 *   name_forward(net, ws, l, i0, i1, o0, o1)
 *       Z[l] and A[l] = act(Z[l]) of examples [i0, i1), outputs [o0, o1) (kinds other than
 *       dense are only called with all outputs)
 *   name_backward(net, ws, l, i0, i1)
 *       D[l-1] = dC/dA[l-1] of examples [i0, i1) from D[l], overwritten
 *   name_units(net, l)
 *       how many output units the update can be split into (dense: neurons, conv2d:
 *       channels; 0: no parameters)
 *   name_update(net, cfg, ws, l, m, eta, step, o0, o1, t)
 *       the gradient of the parameters of units [o0, o1) over the m examples, fused with the
 *       optimizer step (optimizers.h); `t` picks the thread's scratch
 *   name_grad(net, ws, l, m, gW, gb)
 *       that gradient summed into gW, gb without a step (fnn_gradient)
 *   name_prepare(net, ws, l)
 *       before a pass, single-threaded: the kind's own copies of its parameters (conv2d's
 *       padded and flipped kernels) from W
 *   name_aux(net, l, M, training)
 *       bytes of the kind's own buffer for M examples (ws->aux[l]: conv2d's columns, the
 *       pooling's argmax)
 * The dispatch below is generated from the table; what every kind shares (dropout on the
 * output, the act' of the layer below in the backward pass) is done here. */

#define FNN_KIND_SWITCH(CALL)                                                                 \
    switch (net->layer[l].kind) {                                                             \
        FNN_LAYER_KINDS(CALL)                                                                 \
    default:                                                                                  \
        break;                                                                                \
    }

/* the dropout rate on layer l's output in this pass, and whether it follows the book's rule */
static inline double F(layer_drop)(const fnn_net *net, int l, const fnn_pass *ps) {
    const double own = net->layer[l].dropout;
    if (own > 0) return own;
    return (ps->training && l < net->L - 1) ? ps->dropout : 0.0;
}

/* dropout on layer l's output, rows [i0, i1), units [o0, o1): while training the masks
 * (K[l]); otherwise, for the book's rule, the expected value (times 1 - p) */
static void F(layer_dropout)(const fnn_net *net, F(fnn_ws) *ws, int l, const fnn_pass *ps,
                             int64_t i0, int64_t i1, int64_t o0, int64_t o1) {
    const double p = F(layer_drop)(net, l, ps);
    const int n = net->sizes[l + 1], book = net->layer[l].drop_book;
    if (p <= 0 || i1 <= i0 || o1 <= o0) return;
    if (ps->training) {
        F(dropout_forward)(ws->A[l], ws->K[l], i0, i1, (int)o0, (int)o1, n, p, book, ps->seed,
                           ps->epoch, ps->slot0, l);
    } else if (book) {
        const REAL s = (REAL)(1.0 - p);
        for (int64_t i = i0; i < i1; i++)
            for (int64_t j = o0; j < o1; j++) ws->A[l][i * n + j] *= s;
    }
}

static void F(layer_forward)(const fnn_net *net, F(fnn_ws) *ws, int l, const fnn_pass *ps,
                             int64_t i0, int64_t i1, int64_t o0, int64_t o1, int t) {
    if (i1 <= i0 || o1 <= o0) return;
#define FNN_X(E, name, code)                                                                  \
    case FNN_LAYER_##E: F(name##_forward)(net, ws, l, i0, i1, o0, o1, t); break;
    FNN_KIND_SWITCH(FNN_X)
#undef FNN_X
    F(layer_dropout)(net, ws, l, ps, i0, i1, o0, o1);
}

static void F(layer_backward)(const fnn_net *net, F(fnn_ws) *ws, int l, int64_t i0, int64_t i1) {
#define FNN_X(E, name, code)                                                                  \
    case FNN_LAYER_##E: F(name##_backward)(net, ws, l, i0, i1); break;
    FNN_KIND_SWITCH(FNN_X)
#undef FNN_X
    F(act_backward)(ws->D[l - 1], ws->Z[l - 1], ws->A[l - 1], ws->K[l - 1], i0, i1,
                    net->sizes[l], net->layer[l - 1].act);
}

/* layer_backward of a dense layer l on columns [c0, c1) of D[l-1] and all m rows, the act'
 * of the layer below included (other kinds: nothing) */
static void F(layer_backward_cols)(const fnn_net *net, F(fnn_ws) *ws, int l, int m, int64_t c0,
                                   int64_t c1) {
    if (m <= 0 || c1 <= c0 || net->layer[l].kind != FNN_LAYER_DENSE) return;
    F(dense_backward_cols)(net, ws, l, m, c0, c1);
    const int n = net->sizes[l];
    for (int64_t i = 0; i < m; i++) {   /* one row's columns at a time */
        const int64_t o = i * n + c0;
        F(act_backward)(ws->D[l - 1] + o, ws->Z[l - 1] + o, ws->A[l - 1] + o,
                        ws->K[l - 1] ? ws->K[l - 1] + o : NULL, 0, 1, (int)(c1 - c0),
                        net->layer[l - 1].act);
    }
}

static int F(layer_units)(const fnn_net *net, int l) {
#define FNN_X(E, name, code)                                                                  \
    case FNN_LAYER_##E: return F(name##_units)(net, l);
    FNN_KIND_SWITCH(FNN_X)
#undef FNN_X
    return 0;
}

static void F(layer_update)(const fnn_net *net, const fnn_train_cfg *cfg, F(fnn_ws) *ws, int l,
                            int m, double eta, int64_t step, int64_t o0, int64_t o1, int t) {
    if (o1 <= o0) return;
#define FNN_X(E, name, code)                                                                  \
    case FNN_LAYER_##E: F(name##_update)(net, cfg, ws, l, m, eta, step, o0, o1, t); break;
    FNN_KIND_SWITCH(FNN_X)
#undef FNN_X
}

static void F(layer_grad)(const fnn_net *net, F(fnn_ws) *ws, int l, int m, REAL *gW, REAL *gb) {
#define FNN_X(E, name, code)                                                                  \
    case FNN_LAYER_##E: F(name##_grad)(net, ws, l, m, gW, gb); break;
    FNN_KIND_SWITCH(FNN_X)
#undef FNN_X
}

/* every layer's prepare, before a pass (single-threaded) */
static void F(prepare)(const fnn_net *net, F(fnn_ws) *ws) {
    for (int l = 0; l < net->L; l++) {
#define FNN_X(E, name, code)                                                                  \
    case FNN_LAYER_##E: F(name##_prepare)(net, ws, l); break;
        FNN_KIND_SWITCH(FNN_X)
#undef FNN_X
    }
}

static size_t F(layer_aux)(const fnn_net *net, int l, int M, int training) {
#define FNN_X(E, name, code)                                                                  \
    case FNN_LAYER_##E: return F(name##_aux)(net, l, M, training);
    FNN_KIND_SWITCH(FNN_X)
#undef FNN_X
    return 0;
}

/* forward through every layer on the rows [i0, i1), all outputs; t: the thread's slot of
 * the workspace's scratch */
static void F(forward)(const fnn_net *net, F(fnn_ws) *ws, const fnn_pass *ps, int64_t i0,
                       int64_t i1, int t) {
    for (int l = 0; l < net->L; l++)
        F(layer_forward)(net, ws, l, ps, i0, i1, 0, net->sizes[l + 1], t);
}

/* backward through every layer on the rows [i0, i1): D[l] for l = L-2 .. 0 from D[L-1] */
static void F(backward)(const fnn_net *net, F(fnn_ws) *ws, int64_t i0, int64_t i1) {
    if (i1 <= i0) return;
    for (int l = net->L - 1; l > 0; l--) F(layer_backward)(net, ws, l, i0, i1);
}

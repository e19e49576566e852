/* layers.h: the layer-kind table's dispatch (fnn_tables.h, FNN_LAYER_KINDS).  A kind `name`
 * has one file (layer_dense.h, ...) with four functions of these signatures:
 *   name_forward(net, ws, l, dropout, seed, epoch, slot0, i0, i1, o0, o1)
 *       Z[l], A[l] (and the dropout multipliers K[l]) of examples [i0, i1), outputs [o0, o1)
 *   name_backward(net, ws, l, i0, i1)
 *       D[l-1] = dC/dA[l-1] of examples [i0, i1) from D[l] (the act' of layer l-1 follows
 *       here, the same for every kind)
 *   name_update(net, cfg, ws, l, m, eta, step, o0, o1, t)
 *       the gradient of the parameters of outputs [o0, o1) over the m examples, fused with
 *       the optimizer step (optimizers.h)
 *   name_grad(net, ws, l, m, gW, gb)
 *       that gradient summed into gW, gb without a step (fnn_gradient)
 * and the dispatch below is generated from the table. */

static void F(layer_forward)(const fnn_net *net, F(fnn_ws) *ws, int l, double dropout,
                             uint64_t seed, int epoch, int64_t slot0, int64_t i0, int64_t i1,
                             int64_t o0, int64_t o1) {
    switch (net->layer[l].kind) {
#define FNN_X(E, name, code)                                                                  \
    case FNN_LAYER_##E:                                                                       \
        F(name##_forward)(net, ws, l, dropout, seed, epoch, slot0, i0, i1, o0, o1);           \
        break;
    FNN_LAYER_KINDS(FNN_X)
#undef FNN_X
    default:
        break;
    }
}

static void F(layer_backward)(const fnn_net *net, F(fnn_ws) *ws, int l, int64_t i0, int64_t i1) {
    switch (net->layer[l].kind) {
#define FNN_X(E, name, code)                                                                  \
    case FNN_LAYER_##E:                                                                       \
        F(name##_backward)(net, ws, l, i0, i1);                                               \
        break;
    FNN_LAYER_KINDS(FNN_X)
#undef FNN_X
    default:
        break;
    }
    F(act_backward)(ws->D[l - 1], ws->Z[l - 1], ws->A[l - 1], ws->K[l - 1], i0, i1,
                    net->sizes[l], net->layer[l - 1].act);
}

static void F(layer_update)(const fnn_net *net, const fnn_train_cfg *cfg, F(fnn_ws) *ws, int l,
                            int m, double eta, int64_t step, int64_t o0, int64_t o1, int t) {
    switch (net->layer[l].kind) {
#define FNN_X(E, name, code)                                                                  \
    case FNN_LAYER_##E:                                                                       \
        F(name##_update)(net, cfg, ws, l, m, eta, step, o0, o1, t);                           \
        break;
    FNN_LAYER_KINDS(FNN_X)
#undef FNN_X
    default:
        break;
    }
}

static void F(layer_grad)(const fnn_net *net, F(fnn_ws) *ws, int l, int m, REAL *gW, REAL *gb) {
    switch (net->layer[l].kind) {
#define FNN_X(E, name, code)                                                                  \
    case FNN_LAYER_##E:                                                                       \
        F(name##_grad)(net, ws, l, m, gW, gb);                                                \
        break;
    FNN_LAYER_KINDS(FNN_X)
#undef FNN_X
    default:
        break;
    }
}

/* forward through every layer on the rows [i0, i1), all outputs */
static void F(forward)(const fnn_net *net, F(fnn_ws) *ws, double dropout, uint64_t seed,
                       int epoch, int64_t slot0, int64_t i0, int64_t i1) {
    for (int l = 0; l < net->L; l++)
        F(layer_forward)(net, ws, l, dropout, seed, epoch, slot0, i0, i1, 0, net->sizes[l + 1]);
}

/* backward through every layer on the rows [i0, i1): D[l] for l = L-2 .. 0 from D[L-1] */
static void F(backward)(const fnn_net *net, F(fnn_ws) *ws, int64_t i0, int64_t i1) {
    if (i1 <= i0) return;
    for (int l = net->L - 1; l > 0; l--) F(layer_backward)(net, ws, l, i0, i1);
}

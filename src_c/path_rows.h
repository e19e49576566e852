/* path_rows.h: a mini-batch on one thread (the serial path), or split among the threads by
 * examples and, for big hidden layers, by neurons (the rows path).  Any layer kinds. */

/* A hidden layer big enough to split by neuron: its forward and its update then run on the
 * same rows of W in the same thread, so W stays in that core's cache. */
static inline int F(row_layer)(const fnn_net *net, int l, int m, int T) {
    return l < net->L - 1 && net->layer[l].kind == FNN_LAYER_DENSE &&
           fnn_is_par(net->sizes[l + 1], T, (double)m * (double)net->layer[l].n_w);
}


/* Every thread updates its share of every layer: big layers are split by rows, small ones
 * go whole to one thread, round robin.  No barrier between layers: they are independent. */
static void F(update_team)(const fnn_net *net, const fnn_train_cfg *cfg, F(fnn_ws) *ws, int m,
                           double eta, int64_t step, int t, int T) {
    int next = 0;
    for (int l = net->L - 1; l >= 0; l--) {
        const int units = F(layer_units)(net, l);   /* neurons, channels; 0: no parameters */
        if (units <= 0) continue;
        /* multiply-adds of the layer's gradient: each weight meets every output position */
        const double work = (double)m * (double)net->layer[l].n_w *
                            (double)(net->sizes[l + 1] / units);
        int64_t o0, o1;
        if (F(row_layer)(net, l, m, T) || fnn_is_par(units, T, work)) {
            fnn_split(units, t, T, work, 0, &o0, &o1);
        } else {
            o0 = 0;
            o1 = (next == t) ? units : 0;
            next = (next + 1) % T;
        }
        F(layer_update)(net, cfg, ws, l, m, eta, step, o0, o1, t);
    }
}

/* One mini-batch of training: examples order[start .. start+m).  A thread runs the forward,
 * output and delta phases on its own examples, except for big hidden layers, whose forward is
 * split by neuron (a barrier on each side); then, after a barrier, it updates its rows of
 * every layer, and a last barrier protects the buffers from the next batch. */
static void F(train_batch)(const fnn_net *net, const fnn_train_cfg *cfg, F(fnn_ws) *ws,
                           int epoch, int64_t start, int m, double eta, int64_t step, int t,
                           int T, int par, fnn_spin_barrier *bar, int *gen) {
    const int32_t *order = cfg->orders ? cfg->orders + (int64_t)epoch * cfg->train.n : NULL;
    const int Tp = par ? T : 1;
    int64_t i0, i1;
    fnn_split(m, t, Tp, 1, 0, &i0, &i1);
    if (!par && t != 0) i1 = i0;
    /* a thread whose first layer is split by neuron reads every example: it prefetches all */
    const int all = par && F(row_layer)(net, 0, m, T);
    F(gather_src)(ws, &cfg->train, net->sizes[0], order, start, m, cfg->train.n, i0, i1,
                  all ? 0 : i0, all ? m : i1, 0, net->sizes[0]);
    const fnn_pass ps = {1, cfg->dropout, cfg->seed, epoch, start};
    for (int l = 0; l < net->L; l++) {
        if (par && F(row_layer)(net, l, m, T)) {
            int64_t o0, o1;
            fnn_split(net->sizes[l + 1], t, T, 1, 0, &o0, &o1);
            fnn_spin_wait(bar, T, gen);
            F(layer_forward)(net, ws, l, &ps, 0, m, o0, o1);
            fnn_spin_wait(bar, T, gen);
        } else {
            F(layer_forward)(net, ws, l, &ps, i0, i1, 0, net->sizes[l + 1]);
        }
    }
    F(output_phase)(net, ws, (const REAL *)cfg->train.Y, 1, cfg->monitor & FNN_MON_RUN, i0, i1,
                     t);
    F(backward)(net, ws, i0, i1);
    if (par) fnn_spin_wait(bar, T, gen);
    F(update_team)(net, cfg, ws, m, eta, step, t, Tp);
    if (par) fnn_spin_wait(bar, T, gen);
}


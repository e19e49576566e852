/* path_rows.h: a mini-batch on one thread (the serial path), or split among the threads by
 * examples and, for big hidden layers, by neurons, and its backward pass by the columns of
 * the deltas (the rows path).  Any layer kinds. */

/* The parts a mini-batch of m examples is cut into: its examples for the forward and output
 * phases (and the backward of kinds other than dense), the neurons of a layer split by
 * neuron, the rows of a layer's update.
 * Above FNN_SMALL_M examples the dense layers' products are our own tiles in vector builds
 * (one sum per element for any shape), but BLAS in builds without vector types, whose sum
 * for an element depends on the call's shape: the parts are then the net's fixed blocks,
 * whatever the thread count, and each is one call (a thread owns a run of them; threads
 * past the blocks own none).  Up to FNN_SMALL_M the per-row kernels give each element the
 * same sum for any shape: each of the T threads is one part. */
static inline int F(row_parts)(const fnn_net *net, int m, int T) {
    return F(small)(m) ? T : fnn_blocks(net);
}

/* A hidden layer big enough to split by neuron into P parts: its forward and its update then
 * run on the same rows of W in the same thread, so W stays in that core's cache. */
static inline int F(row_layer)(const fnn_net *net, int l, int m, int P) {
    return l < net->L - 1 && net->layer[l].kind == FNN_LAYER_DENSE &&
           fnn_is_par(net->sizes[l + 1], P, (double)m * (double)net->layer[l].n_w);
}


/* Every thread updates its share of every layer: big layers are cut into the P parts of
 * row_parts, and thread t of T updates its run of them, one call each; small ones go whole to
 * one thread, round robin.  No barrier between layers: they are independent. */
static void F(update_team)(const fnn_net *net, const fnn_train_cfg *cfg, F(fnn_ws) *ws, int m,
                           double eta, int64_t step, int t, int T) {
    const int P = F(row_parts)(net, m, T);
    const int64_t q0 = fnn_part(P, t, T), q1 = fnn_part(P, t + 1, T);
    int next = 0;
    for (int l = net->L - 1; l >= 0; l--) {
        const int units = F(layer_units)(net, l);   /* neurons, channels; 0: no parameters */
        if (units <= 0) continue;
        /* multiply-adds of the layer's gradient: each weight meets every output position */
        const double work = (double)m * (double)net->layer[l].n_w *
                            (double)(net->sizes[l + 1] / units);
        if (F(row_layer)(net, l, m, P) || fnn_is_par(units, P, work)) {
            for (int64_t q = q0; q < q1; q++)
                F(layer_update)(net, cfg, ws, l, m, eta, step, fnn_part(units, q, P),
                                fnn_part(units, q + 1, P), t);
        } else {
            if (next == t) F(layer_update)(net, cfg, ws, l, m, eta, step, 0, units, t);
            next = (next + 1) % T;
        }
    }
}

/* The backward pass of a mini-batch of m examples, layers L-1 .. 1.  A dense layer is cut by
 * the columns of D[l-1] (every row) into the net's fixed blocks, one call each, whatever m
 * and the thread count: BLAS's sums depend on a call's shape (where it is called), and a
 * block of columns reads only its part of W, where a block of examples reads all of W (and
 * BLAS packs it).  A dense layer too small to split is one call, on thread 0.  Other kinds
 * run on the thread's examples [i0, i1).  A barrier comes before a layer that reads what
 * other threads wrote (without `par` thread 0 runs every block). */
static void F(backward_team)(const fnn_net *net, F(fnn_ws) *ws, int m, int64_t i0, int64_t i1,
                             int t, int T, int par, fnn_spin_barrier *bar, int *gen) {
    const int P = fnn_blocks(net);
    int cols_above = 0;   /* the layer above went by columns (the output phase: by rows) */
    for (int l = net->L - 1; l > 0; l--) {
        const int cols = net->layer[l].kind == FNN_LAYER_DENSE;
        if (par && (cols || cols_above)) fnn_spin_wait(bar, T, gen);
        if (cols) {
            const int n = net->sizes[l];
            const int Pl = fnn_is_par(n, P, (double)m * (double)net->layer[l].n_w) ? P : 1;
            const int64_t q0 = t < T ? fnn_part(Pl, t, T) : 0;
            const int64_t q1 = t < T ? fnn_part(Pl, t + 1, T) : 0;
            for (int64_t q = q0; q < q1; q++)
                F(layer_backward_cols)(net, ws, l, m, fnn_part(n, q, Pl), fnn_part(n, q + 1, Pl));
        } else {
            F(layer_backward)(net, ws, l, i0, i1);
        }
        cols_above = cols;
    }
}

/* One mini-batch of training: examples order[start .. start+m).  A thread runs the forward
 * and output phases on its own parts of the examples, except for big hidden layers, whose
 * forward is split into parts by neuron (a barrier on each side), and the backward pass on
 * its blocks of each dense layer's columns (backward_team); then, after a barrier, it updates
 * its parts of every layer, and a last barrier protects the buffers from the next batch.
 * Without `par` thread 0 runs every part. */
static void F(train_batch)(const fnn_net *net, const fnn_train_cfg *cfg, F(fnn_ws) *ws,
                           int epoch, int64_t start, int m, double eta, int64_t step, int t,
                           int T, int par, fnn_spin_barrier *bar, int *gen) {
    const int32_t *order = cfg->orders ? cfg->orders + (int64_t)epoch * cfg->train.n : NULL;
    const int Tp = par ? T : 1, P = F(row_parts)(net, m, Tp);
    /* this thread's run of parts [q0, q1), and their examples [i0, i1) */
    const int64_t q0 = t < Tp ? fnn_part(P, t, Tp) : 0, q1 = t < Tp ? fnn_part(P, t + 1, Tp) : 0;
    const int64_t i0 = fnn_part(m, q0, P), i1 = fnn_part(m, q1, P);
    /* a thread whose first layer is split by neuron reads every example: it prefetches all */
    const int all = par && F(row_layer)(net, 0, m, P);
    F(gather_src)(ws, &cfg->train, net->sizes[0], order, start, m, cfg->train.n, i0, i1,
                  all ? 0 : i0, all ? m : i1, 0, net->sizes[0]);
    const fnn_pass ps = {1, cfg->dropout, cfg->seed, epoch, start};
    for (int l = 0; l < net->L; l++) {
        const int n = net->sizes[l + 1];
        if (F(row_layer)(net, l, m, P)) {
            if (par) fnn_spin_wait(bar, T, gen);
            for (int64_t q = q0; q < q1; q++)
                F(layer_forward)(net, ws, l, &ps, 0, m, fnn_part(n, q, P), fnn_part(n, q + 1, P),
                                 t);
            if (par) fnn_spin_wait(bar, T, gen);
        } else {
            for (int64_t q = q0; q < q1; q++)
                F(layer_forward)(net, ws, l, &ps, fnn_part(m, q, P), fnn_part(m, q + 1, P), 0, n,
                                 t);
        }
    }
    /* the running cost and hits: each example's into ex_cost, added in example order by
     * thread 0 once every thread has passed the next meeting, so they do not depend on the
     * team */
    const int run = (cfg->monitor & FNN_MON_RUN) != 0;
    F(output_phase)(net, ws, (const REAL *)cfg->train.Y, 1, run, i0, i1, t,
                    run ? ws->ex_cost : NULL);
    F(backward_team)(net, ws, m, i0, i1, t, Tp, par, bar, gen);
    if (par) fnn_spin_wait(bar, T, gen);
    if (run && t == 0) {
        double c = 0, h = 0;
        for (int i = 0; i < m; i++) {
            c += ws->ex_cost[2 * i];
            h += ws->ex_cost[2 * i + 1];
        }
        ws->acc[0] += c;
        ws->acc[1] += h;
        ws->acc[2] += m;
    }
    F(update_team)(net, cfg, ws, m, eta, step, t, Tp);
    if (par) fnn_spin_wait(bar, T, gen);
}

/* train.h: the training loop of a whole call (fnn_train: every epoch, every mini-batch, the
 * per-epoch evaluation, interrupts, divergence), the path it takes for the mini-batches, and
 * fnn_gradient (the summed gradients of a data set, for tests). */

/* sum w^2 and |w| over all weights; returns 0 when any weight or bias is not finite */
static int F(param_norms)(const fnn_net *net, double *w2, double *w1) {
    double s2 = 0, s1 = 0, sb = 0;
    for (int l = 0; l < net->L; l++) {
        const REAL *W = (const REAL *)net->layer[l].W, *b = (const REAL *)net->layer[l].b;
        const int64_t nw = net->layer[l].n_w;
        for (int64_t j = 0; j < nw; j++) { double w = W[j]; s2 += w * w; s1 += fabs(w); }
        for (int64_t j = 0; j < net->layer[l].n_b; j++) sb += fabs((double)b[j]);
    }
    *w2 = s2; *w1 = s1;
    return isfinite(s2) && isfinite(s1) && isfinite(sb);
}

static int64_t F(param_count)(const fnn_net *net) {
    int64_t c = 0;
    for (int l = 0; l < net->L; l++) c += net->layer[l].n_w + net->layer[l].n_b;
    return c;
}

/* multiply-adds of one example's forward pass: each weight once per output position */
static double F(net_work)(const fnn_net *net) {
    double w = 0;
    for (int l = 0; l < net->L; l++) {
        const int units = F(layer_units)(net, l);
        if (units > 0) w += (double)net->layer[l].n_w * (double)(net->sizes[l + 1] / units);
    }
    return w;
}

static void F(snapshot)(const fnn_net *net, REAL *buf, int restore) {
    for (int l = 0; l < net->L; l++) {
        const size_t nw = (size_t)net->layer[l].n_w, nb = (size_t)net->layer[l].n_b;
        if (restore) {
            memcpy(net->layer[l].W, buf, nw * sizeof(REAL)); buf += nw;
            memcpy(net->layer[l].b, buf, nb * sizeof(REAL)); buf += nb;
        } else {
            memcpy(buf, net->layer[l].W, nw * sizeof(REAL)); buf += nw;
            memcpy(buf, net->layer[l].b, nb * sizeof(REAL)); buf += nb;
        }
    }
}

/* ------------------------------------------------------------------------------------------ */
/* entry points, called without the GIL                                                       */

/* The progress counters a front door may read while the engine runs: [0] the epoch, [1] the
 * mini-batches done in it, and with run_stats and room for them, [2] the running cost sum (a
 * double's bits), [3] the hits and [4] the examples they cover, as thread 0 has counted them
 * so far (every example of the mini-batches done, on either path).  `a` and `b` are
 * accumulators to add. */
static inline void F(publish)(const fnn_train_cfg *cfg, int epoch, int64_t done,
                              const double *a, const double *b) {
    if (cfg->progress == NULL) return;
    int64_t v[5] = {epoch, done, 0, 0, 0};
    int n = 2;
    if (cfg->progress_n >= 5 && (cfg->monitor & FNN_MON_RUN) && a != NULL) {
        const double c = a[0] + (b ? b[0] : 0);
        memcpy(&v[2], &c, sizeof c);
        v[3] = (int64_t)(a[1] + (b ? b[1] : 0) + 0.5);
        v[4] = (int64_t)(a[2] + (b ? b[2] : 0) + 0.5);
        n = 5;
    }
    /* the statistics first, the batch count last: a reader that sees the count sees them */
    for (int k = n - 1; k >= 0; k--) {
#if defined(__GNUC__)
        __atomic_store_n(&cfg->progress[k], v[k], __ATOMIC_RELEASE);
#else
        cfg->progress[k] = v[k];
#endif
    }
}

/* The whole training call: every epoch, every mini-batch, the per-epoch evaluation. */
static int F(fnn_train)(fnn_net *net, fnn_train_cfg *cfg) {
    const int T = net->n_threads > 0 ? net->n_threads : 1;
    const int64_t n = cfg->train.n;
    /* a caller that leaves the K split's blocks unset gets 2 (fastnn.h, ksplit_blocks) */
    if (cfg->ksplit_blocks < 1 || cfg->ksplit_blocks > FNN_KSPLIT_MAX_BLOCKS)
        cfg->ksplit_blocks = 2;
    const int batch = cfg->batch;
    int M = batch;
    const int me = F(eval_rows)(net);
    if ((cfg->monitor & (FNN_MON_TRAIN | FNN_MON_EVAL)) && M < me) M = me;
    F(fnn_ws) ws;
    int need_G = !F(plain_sgd)(cfg);
    if (F(ws_alloc)(&ws, net, M, T, 1, cfg->dropout, need_G) != FNN_OK) return FNN_NOMEM;
    F(prepare)(net, &ws);
    REAL *snap = (REAL *)fnn_malloc(sizeof(REAL) * (size_t)F(param_count)(net));
    if (snap == NULL) { F(ws_free)(&ws); return FNN_NOMEM; }

    /* threads pay off only when a mini-batch has enough work (path="rows" asks for them) */
    const int want = cfg->path;
    const int par = want != FNN_PATH_SERIAL && T > 1 && batch >= T &&
                    (want == FNN_PATH_ROWS || (double)batch * F(net_work)(net) >= FNN_PAR_MIN);
    const int ksplit = (want == FNN_PATH_AUTO || want == FNN_PATH_KSPLIT) &&
                       F(ksplit_ok)(net, batch, par ? T : 1, cfg->ksplit_blocks);
    /* the most threads a mini-batch runs on; on the K split no more than its blocks (a thread
     * past them would own no columns and only run the small layers and meet at the barrier) */
    const int Tt = !par ? 1 : ksplit && T > cfg->ksplit_blocks ? cfg->ksplit_blocks : T;
    cfg->path = ksplit ? FNN_PATH_KSPLIT : par ? FNN_PATH_ROWS : FNN_PATH_SERIAL;
    /* the team of each chunk of mini-batches (team.h) */
    fnn_team_ctl ctl;
    fnn_team_start(&ctl, Tt, cfg->adapt);
    /* the K split's per-thread copies, one set per team size the controller has used (a set
     * for a team of ladder[r] threads in sets[r]); `reps` is the set in use, of `rteam` */
    F(fnn_rep) *sets[FNN_TEAM_LADDER] = {0};
    F(fnn_rep) *reps = NULL;
    int rteam = 0;
    REAL *P = NULL;
    fnn_spin_barrier *bar = NULL;
    const int64_t pl = FNN_ALIGN / (int64_t)sizeof(REAL);
    const int64_t pstride = ((int64_t)batch * F(ldr_of)(net->sizes[1]) + pl - 1) / pl * pl;
    /* the team's barrier (runtime.h): once per mini-batch on the K split, a few times on the
     * rows path */
    bar = (fnn_spin_barrier *)fnn_calloc(1, sizeof(fnn_spin_barrier));
    if (bar == NULL) { fnn_free(snap); F(ws_free)(&ws); return FNN_NOMEM; }
    if (ksplit) {
        P = (REAL *)fnn_malloc(sizeof(REAL) * 2 * (size_t)cfg->ksplit_blocks * pstride);
        rteam = ctl.ladder[ctl.cur];
        reps = sets[ctl.cur] = F(rep_set)(net, cfg, batch, rteam);
        if (P == NULL || reps == NULL) {
            fnn_free(P); fnn_free(bar); fnn_free(snap); F(ws_free)(&ws);
            return FNN_NOMEM;
        }
    }

    int status = FNN_OK;
    double eta = cfg->eta;
    const int64_t nb = (n + batch - 1) / batch;
    const int64_t ce = cfg->check_every > 0 ? cfg->check_every : (nb > 0 ? nb : 1);
    cfg->epochs_done = 0;
    cfg->diverged_epoch = -1;
    for (int epoch = 0; epoch < cfg->epochs; epoch++) {
        fnn_epoch_stats st;
        memset(&st, 0, sizeof(st));
        st.epoch = epoch;
        const double tb0 = ctl.team_batches, w0 = ctl.waited_s, b0 = ctl.busy_s;
        const int64_t nb0 = ctl.batches;
        F(snapshot)(net, snap, 0);
        F(set_direct)(&ws, &cfg->train, net->sizes[0], batch);  /* evaluate_set reset it */
        /* The K-split copies are filled at the first chunk of an epoch and written back at
         * its last, when the epoch stops early, or when another team takes over: in between
         * they are the live parameters ("live"). */
        int live = 0;
        for (int64_t c0 = 0; c0 < nb; c0 += ce) {
            int64_t c1 = c0 + ce < nb ? c0 + ce : nb;
            for (int64_t s0 = c0, s1; s0 < c1; s0 = s1) {   /* chunks of one team each */
                int64_t span;
                int team = fnn_team_next(&ctl, c1 - s0, &span);
                s1 = s0 + span;
                if (ksplit && team != rteam) {
                    int r = 0;
                    while (ctl.ladder[r] != team) r++;
                    if (sets[r] == NULL) sets[r] = F(rep_set)(net, cfg, batch, team);
                    if (sets[r] == NULL) {   /* no memory for it: stay with this team */
                        team = rteam;
                        ctl.probe = -1;
                    } else {
                        for (int u = 0; live && u < rteam; u++)
                            F(rep_copy)(&reps[u], net, cfg, 1, u == 0);
                        live = 0;
                        reps = sets[r];
                        rteam = team;
                    }
                }
                __atomic_store_n(&bar->waited_ns, 0, __ATOMIC_RELAXED);
                int used = 0;
                double tb = 0, te = 0;   /* the chunk's mini-batches, by thread 0's clock */
#pragma omp parallel num_threads(team)
                {
                    const int t = fnn_thread_num(), TT = fnn_num_threads();
                    if (t == 0) used = TT;
                    if (ksplit && TT == rteam) {
                        const int64_t k0 = reps[t].k0, k1 = reps[t].k1;
                        /* the barrier's generation now: every thread reads it before any
                         * can pass a meeting */
                        reps[t].bar_gen = fnn_spin_gen(bar);
                        if (!live) {
                            F(rep_copy)(&reps[t], net, cfg, 0, 1);
                            fnn_barrier();   /* the clock starts on the mini-batches */
                        }
                        if (t == 0) tb = fnn_now();
                        for (int64_t bi = s0; bi < s1; bi++) {
                            int64_t start = bi * batch;
                            int m = (int)(n - start < batch ? n - start : batch);
                            F(train_batch_ksplit)(cfg, &reps[t], P, pstride, bar, epoch, start,
                                                  m, eta, cfg->opt.t + bi + 1, t, TT, k0, k1);
                            if (t == 0) {   /* this mini-batch's cost, hits, examples */
                                for (int k = 0; k < 3; k++) {
                                    ws.acc[k] += reps[0].ws.acc[k];
                                    reps[0].ws.acc[k] = 0;
                                }
                                F(publish)(cfg, epoch, bi + 1, ws.acc, NULL);
                            }
                        }
                        if (t == 0) te = fnn_now();
                        if (s1 == nb) F(rep_copy)(&reps[t], net, cfg, 1, t == 0);
                    } else {
                        if (live) {   /* fewer threads than asked: back to the shared copy */
                            if (t == 0)
                                for (int u = 0; u < rteam; u++)
                                    F(rep_copy)(&reps[u], net, cfg, 1, u == 0);
                            fnn_barrier();
                        }
                        int gen = fnn_spin_gen(bar);
                        if (t == 0) tb = fnn_now();
                        for (int64_t bi = s0; bi < s1; bi++) {
                            int64_t start = bi * batch;
                            int m = (int)(n - start < batch ? n - start : batch);
                            F(train_batch)(net, cfg, &ws, epoch, start, m, eta,
                                           cfg->opt.t + bi + 1, t, TT, TT > 1, bar, &gen);
                            if (t == 0) F(publish)(cfg, epoch, bi + 1, ws.acc, NULL);
                        }
                        if (t == 0) te = fnn_now();
                    }
                }
                fnn_team_done(&ctl, used, s1 - s0, te - tb,
                              1e-9 * (double)__atomic_load_n(&bar->waited_ns, __ATOMIC_RELAXED));
                live = ksplit && used == rteam && s1 < nb;
                if (ksplit) {
                    /* every copy saw the same examples: thread 0's cost and hits were counted
                     * after each mini-batch, in order; the others' are dropped */
                    for (int t = 0; t < rteam; t++)
                        reps[t].ws.acc[0] = reps[t].ws.acc[1] = reps[t].ws.acc[2] = 0;
                }
            }
            if (c1 < nb && cfg->check != NULL && cfg->check(cfg->ctx)) {
                /* stopped inside the epoch: keep the last finished mini-batch's weights if
                 * they are finite, else the weights from the start of the epoch */
                for (int u = 0; live && u < rteam; u++) F(rep_copy)(&reps[u], net, cfg, 1, u == 0);
                cfg->opt.t += c1;
                if (!F(param_norms)(net, &st.sum_w2, &st.sum_w1)) {
                    F(snapshot)(net, snap, 1);
                    cfg->diverged_epoch = epoch;
                }
                status = FNN_INTERRUPTED;
                goto done;
            }
        }
        cfg->opt.t += nb;
        st.batches = nb;
        if (ctl.batches > nb0) st.threads = (ctl.team_batches - tb0) / (double)(ctl.batches - nb0);
        if (ctl.busy_s > b0) st.wait_frac = (ctl.waited_s - w0) / (ctl.busy_s - b0);
        F(reduce_acc)(&ws, &st.run_cost, &st.run_correct);
        st.run_n = (cfg->monitor & FNN_MON_RUN) ? n : 0;
        if (!F(param_norms)(net, &st.sum_w2, &st.sum_w1)) {
            F(snapshot)(net, snap, 1);
            cfg->diverged_epoch = epoch;
            status = FNN_DIVERGED;
            goto done;
        }
        /* the evaluation on the team training settled on (its sums do not depend on it) */
        const int Te = ctl.adapt == 1 ? ctl.ladder[ctl.cur] : T;
        if (cfg->monitor & FNN_MON_TRAIN)
            F(evaluate_set)(net, &ws, &cfg->train, Te, &st.train_cost, &st.train_correct);
        if (cfg->monitor & FNN_MON_EVAL)
            F(evaluate_set)(net, &ws, &cfg->eval, Te, &st.eval_cost, &st.eval_correct);
        cfg->epochs_done = epoch + 1;
        st.eta = eta;
        if (cfg->on_epoch != NULL) {
            if (cfg->on_epoch(cfg->ctx, &st) != 0) { status = FNN_CALLBACK_ERROR; goto done; }
            if (st.stop) { status = FNN_STOPPED; goto done; }
            eta = st.eta;
        }
    }
done:
    cfg->eta = eta;
    cfg->threads = ctl.batches > 0 ? ctl.team_batches / (double)ctl.batches : 0;
    fnn_team_finish(&ctl);
    for (int r = 0; r < FNN_TEAM_LADDER; r++) F(rep_set_free)(sets[r], ctl.ladder[r]);
    fnn_free(P);
    fnn_free(bar);
    fnn_free(snap);
    F(ws_free)(&ws);
    return status;
}


/* Gradients of the cost summed over (X, Y): gW[l] (layer l's W shape) and gb[l] are
 * overwritten; `cost` gets the cost sum (no regularization, no dropout). */
static int F(fnn_gradient)(const fnn_net *net, const fnn_data *data, REAL **gW, REAL **gb,
                           double *cost) {
    const int L = net->L;
    F(fnn_ws) ws;
    if (F(ws_alloc)(&ws, net, F(eval_rows)(net), 1, 1, 0, 0) != FNN_OK) return FNN_NOMEM;
    F(prepare)(net, &ws);
    for (int l = 0; l < L; l++) {
        memset(gW[l], 0, sizeof(REAL) * (size_t)net->layer[l].n_w);
        memset(gb[l], 0, sizeof(REAL) * (size_t)net->layer[l].n_b);
    }
    for (int64_t start = 0; start < data->n; start += ws.M) {
        int m = (int)((data->n - start) < ws.M ? (data->n - start) : ws.M);
        F(gather)(&ws, (const REAL *)data->X, net->sizes[0], NULL, start, m, 0, 0, m, 0, m, 0,
                  net->sizes[0]);
        F(forward)(net, &ws, &F(eval_pass), 0, m, 0);
        F(output_phase)(net, &ws, (const REAL *)data->Y, 1, 1, 0, m, 0, NULL);
        F(backward)(net, &ws, 0, m);
        for (int l = 0; l < L; l++) F(layer_grad)(net, &ws, l, m, gW[l], gb[l]);
    }
    double c;
    int64_t h;
    F(reduce_acc)(&ws, &c, &h);
    *cost = c;
    F(ws_free)(&ws);
    return FNN_OK;
}

/* costs.h: the cost table's functions (fnn_tables.h, FNN_COSTS) in the output phase: the cost
 * and hits of each example (for the monitors) and the output delta dC/dz.
 *   quadratic       0.5 ||a - y||^2            delta (a - y) act'(z)  (softmax: its Jacobian)
 *   cross_entropy   sum -y ln a - (1-y) ln(1-a)   delta a - y  (sigmoid output)
 *   log_likelihood  -sum y ln a                delta a - y  (softmax output; ln a from z)
 *   mean_absolute   sum |a - y|                delta sign(a - y) act'(z)
 *   huber           sum h(a - y), h(e) = e^2/2 for |e| <= 1, |e| - 1/2 beyond (Keras'
 *                   delta 1)                   delta clip(a - y, -1, 1) act'(z)
 * Both are multiplied by net->cost_scale.  The costs of a - y alone (quadratic,
 * mean_absolute, huber) go back through the output activation (softmax: its Jacobian). */

/* dC/da of the costs of a - y alone, for e = a - y */
static inline REAL F(cost_grad)(int cost, REAL e) {
    if (cost == FNN_COST_MEAN_ABSOLUTE) return (REAL)((e > 0) - (e < 0));
    if (cost == FNN_COST_HUBER) return e > 1 ? (REAL)1 : e < -1 ? (REAL)-1 : e;
    return e;
}

/* output: when want_stats the cost and hits of rows [i0, i1) into this thread's
 * accumulators (with ex, each row's cost and hit into ex[2i], ex[2i + 1] instead, for the
 * caller to add in row order), and when want_delta the output delta D[L-1] =
 * cost_scale * dC/dz. */
static void F(output_phase)(const fnn_net *net, F(fnn_ws) *ws, const REAL *Y, int want_delta,
                            int want_stats, int64_t i0, int64_t i1, int t, double *ex) {
    const int L = net->L, no = net->sizes[L], act = net->layer[L - 1].act, cost = net->cost;
    const double scale = net->cost_scale;
    /* the costs of a - y alone, whose gradient goes back through the output activation */
    const int through = cost == FNN_COST_QUADRATIC || cost == FNN_COST_MEAN_ABSOLUTE ||
                        cost == FNN_COST_HUBER;
    double csum = 0, hits = 0;
    for (int64_t i = i0; i < i1; i++) {
        const REAL *y = Y + ws->idx[i] * no;
        const REAL *a = ws->A[L - 1] + i * no, *z = ws->Z[L - 1] + i * no;
        if (!want_stats) goto delta;
        /* hits: first maximum of a against first maximum of y */
        int ja = 0, jy = 0;
        for (int j = 1; j < no; j++) {
            if (a[j] > a[ja]) ja = j;
            if (y[j] > y[jy]) jy = j;
        }
        if (ex != NULL) ex[2 * i + 1] = (ja == jy);
        else hits += (ja == jy);
        double c = 0;
        if (cost == FNN_COST_QUADRATIC) {
            for (int j = 0; j < no; j++) { double e = (double)a[j] - y[j]; c += 0.5 * e * e; }
        } else if (cost == FNN_COST_MEAN_ABSOLUTE) {
            for (int j = 0; j < no; j++) c += fabs((double)a[j] - y[j]);
        } else if (cost == FNN_COST_HUBER) {
            for (int j = 0; j < no; j++) {
                const double e = fabs((double)a[j] - y[j]);
                c += e <= 1 ? 0.5 * e * e : e - 0.5;
            }
        } else if (cost == FNN_COST_CROSS_ENTROPY) {
            for (int j = 0; j < no; j++) {
                double aa = a[j], yy = y[j];
                double e = -yy * log(aa) - (1 - yy) * log(1 - aa);
                if (isnan(e)) e = 0;
                else if (isinf(e)) e = e > 0 ? DBL_MAX : -DBL_MAX;
                c += e;
            }
        } else { /* log-likelihood; with a softmax output ln a_j = z_j - logsumexp(z) */
            double lse = 0;
            if (act == FNN_ACT_SOFTMAX) {
                double zmax = z[0], s = 0;
                for (int j = 1; j < no; j++) zmax = z[j] > zmax ? z[j] : zmax;
                for (int j = 0; j < no; j++) s += exp((double)z[j] - zmax);
                lse = zmax + log(s);
            }
            for (int j = 0; j < no; j++) {
                if (y[j] == 0) continue;
                double la = (act == FNN_ACT_SOFTMAX) ? (double)z[j] - lse : log((double)a[j]);
                c -= y[j] * la;
            }
        }
        if (ex != NULL) ex[2 * i] = scale * c;
        else csum += scale * c;
    delta:
        if (!want_delta) continue;
        REAL *d = ws->D[L - 1] + i * no;
        const REAL sc = (REAL)scale;
        if (cost == FNN_COST_MEAN_ABSOLUTE || cost == FNN_COST_HUBER) {
            for (int j = 0; j < no; j++) d[j] = sc * F(cost_grad)(cost, a[j] - y[j]);
        } else {
            for (int j = 0; j < no; j++) d[j] = sc * (a[j] - y[j]);
        }
        if (through && act == FNN_ACT_SOFTMAX) {
            /* softmax Jacobian product: d_j = a_j (g_j - sum_k a_k g_k) */
            double s = 0;
            for (int j = 0; j < no; j++) s += (double)a[j] * d[j];
            for (int j = 0; j < no; j++) d[j] = a[j] * (d[j] - (REAL)s);
        }
    }
    /* act' on the whole block in one call (a call per row cost its switch and its loop's
     * tail per example: W1's output phase, ten rows of ten) */
    if (want_delta && through && act != FNN_ACT_SOFTMAX)
        F(act_backward)(ws->D[L - 1], ws->Z[L - 1], ws->A[L - 1], NULL, i0, i1, no, act);
    if (ex != NULL) return;
    ws->acc[t * 8 + 0] += csum;
    ws->acc[t * 8 + 1] += hits;
    if (want_stats) ws->acc[t * 8 + 2] += (double)(i1 - i0);   /* examples counted */
}


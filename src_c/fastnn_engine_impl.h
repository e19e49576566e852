/* fastnn_engine_impl.h: the engine's kernels and training loop, written once for REAL.
 *
 * fastnn.h includes this file twice: REAL = double (names end in _f64) and REAL = float
 * (_f32).  Every op is a forward/backward pair with llm.c's argument order: outputs, inputs,
 * parameters, sizes.  Threads: every function that takes (t, T) is called by all T threads of
 * an OpenMP team; each thread writes only the rows (or samples) fnn_split gives it.
 */
#define F(name) FNN_SUFFIX(name)

/* type-generic math for this instantiation */
#undef FNN_EXP
#undef FNN_LOG
#undef FNN_SQRT
#undef FNN_TANH
#define FNN_EXP(x) (sizeof(REAL) == sizeof(float) ? (REAL)expf((float)(x)) : (REAL)exp((double)(x)))
#define FNN_LOG(x) (sizeof(REAL) == sizeof(float) ? (REAL)logf((float)(x)) : (REAL)log((double)(x)))
#define FNN_SQRT(x) (sizeof(REAL) == sizeof(float) ? (REAL)sqrtf((float)(x)) : (REAL)sqrt((double)(x)))
#define FNN_TANH(x) (sizeof(REAL) == sizeof(float) ? (REAL)tanhf((float)(x)) : (REAL)tanh((double)(x)))

/* ------------------------------------------------------------------------------------------ */
/* GEMM: row-major C = alpha op(A) op(B) + beta C, C is (M, N), op(A) is (M, K), op(B) (K, N).  */

/* The reference kernel: plain loops, also the fallback for sizes where a BLAS call costs more
 * than it saves. */
static void F(gemm_naive)(int ta, int tb, int M, int N, int K, REAL alpha, const REAL *A,
                          int lda, const REAL *B, int ldb, REAL beta, REAL *C, int ldc) {
    for (int i = 0; i < M; i++) {
        REAL *c = C + (int64_t)i * ldc;
        if (beta == (REAL)0) {
            for (int j = 0; j < N; j++) c[j] = 0;
        } else if (beta != (REAL)1) {
            for (int j = 0; j < N; j++) c[j] *= beta;
        }
        for (int k = 0; k < K; k++) {
            REAL a = alpha * (ta ? A[(int64_t)k * lda + i] : A[(int64_t)i * lda + k]);
            if (!tb) {
                const REAL *brow = B + (int64_t)k * ldb;
                for (int j = 0; j < N; j++) c[j] += a * brow[j];
            } else {
                for (int j = 0; j < N; j++) c[j] += a * B[(int64_t)j * ldb + k];
            }
        }
    }
}

static void F(gemm)(const fnn_net *net, int ta, int tb, int M, int N, int K, REAL alpha,
                    const REAL *A, int lda, const REAL *B, int ldb, REAL beta, REAL *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    if (net->gemm != NULL && K > 0 && (double)M * N * K >= FNN_BLAS_MIN) {
        /* row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T */
        char cta = ta ? 'T' : 'N', ctb = tb ? 'T' : 'N';
        ((FNN_GEMM_T)net->gemm)(&ctb, &cta, &N, &M, &K, &alpha, (REAL *)B, &ldb, (REAL *)A,
                                &lda, &beta, C, &ldc);
    } else {
        F(gemm_naive)(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* activations, elementwise on rows [r0, r1) of a feature-major (rows, m) block               */

static inline REAL F(sigmoid)(REAL z) {
    /* never overflows: exp of a non-positive number only */
    if (z >= 0) return (REAL)1 / ((REAL)1 + FNN_EXP(-z));
    REAL e = FNN_EXP(z);
    return e / ((REAL)1 + e);
}

/* z += b (per row), a = act(z).  z is (rows, m); softmax is not handled here. */
static void F(act_forward)(REAL *a, REAL *z, const REAL *b, int64_t r0, int64_t r1, int m,
                           int act) {
    for (int64_t r = r0; r < r1; r++) {
        REAL *zr = z + r * m, *ar = a + r * m;
        const REAL br = b[r];
        switch (act) {
        case FNN_SIGMOID:
            for (int i = 0; i < m; i++) { REAL v = zr[i] + br; zr[i] = v; ar[i] = F(sigmoid)(v); }
            break;
        case FNN_TANH:
            for (int i = 0; i < m; i++) { REAL v = zr[i] + br; zr[i] = v; ar[i] = FNN_TANH(v); }
            break;
        case FNN_RELU:
            for (int i = 0; i < m; i++) { REAL v = zr[i] + br; zr[i] = v; ar[i] = v > 0 ? v : 0; }
            break;
        default: /* identity */
            for (int i = 0; i < m; i++) { REAL v = zr[i] + br; zr[i] = v; ar[i] = v; }
            break;
        }
    }
}

/* d *= act'(z) (times the dropout multipliers k when given), rows [r0, r1). */
static void F(act_backward)(REAL *d, const REAL *z, const REAL *k, int64_t r0, int64_t r1,
                            int m, int act) {
    for (int64_t r = r0; r < r1; r++) {
        REAL *dr = d + r * m;
        const REAL *zr = z + r * m;
        switch (act) {
        case FNN_SIGMOID:
            for (int i = 0; i < m; i++) { REAL s = F(sigmoid)(zr[i]); dr[i] *= s * ((REAL)1 - s); }
            break;
        case FNN_TANH:
            for (int i = 0; i < m; i++) { REAL t = FNN_TANH(zr[i]); dr[i] *= (REAL)1 - t * t; }
            break;
        case FNN_RELU:
            for (int i = 0; i < m; i++) if (!(zr[i] > 0)) dr[i] = 0;
            break;
        default:
            break;
        }
        if (k != NULL) {
            const REAL *kr = k + r * m;
            for (int i = 0; i < m; i++) dr[i] *= kr[i];
        }
    }
}

/* Inverted dropout on rows [r0, r1) of a (rows, m) activation block: k = keep/(1-p), a *= k.
 * `slot0` is the position in the epoch of the block's first example. */
static void F(dropout_forward)(REAL *a, REAL *k, int64_t r0, int64_t r1, int m, double p,
                               uint64_t seed, int epoch, int64_t slot0, int layer) {
    const REAL keep = (REAL)(1.0 / (1.0 - p));
    for (int64_t r = r0; r < r1; r++) {
        REAL *ar = a + r * m, *kr = k + r * m;
        for (int i = 0; i < m; i++) {
            double u = fnn_uniform(seed, ((uint64_t)epoch << 40) ^ (uint64_t)(slot0 + i),
                                   (uint64_t)layer, (uint64_t)r);
            kr[i] = u < p ? (REAL)0 : keep;
            ar[i] *= kr[i];
        }
    }
}

/* ------------------------------------------------------------------------------------------ */
/* workspace                                                                                   */

typedef struct {
    int M;                        /* examples the buffers hold */
    int T;                        /* threads the accumulators are sized for */
    REAL *x;                      /* (M, n_in) gathered inputs, sample-major */
    int64_t *idx;                 /* (M) row of each slot in X / Y */
    REAL *Z[FNN_MAX_LAYERS];      /* (n_l, M) pre-activations, bias included */
    REAL *A[FNN_MAX_LAYERS];      /* (n_l, M) activations, after dropout */
    REAL *D[FNN_MAX_LAYERS];      /* (n_l, M) deltas dC/dz */
    REAL *K[FNN_MAX_LAYERS];      /* (n_l, M) dropout multipliers, hidden layers */
    REAL *G[FNN_MAX_LAYERS];      /* (n_out, n_in) mean weight gradient */
    double *acc;                  /* (T, 8): cost, correct; padded against false sharing */
} F(fnn_ws);

static void F(ws_free)(F(fnn_ws) *ws) {
    free(ws->x); free(ws->idx); free(ws->acc);
    for (int l = 0; l < FNN_MAX_LAYERS; l++) {
        free(ws->Z[l]); free(ws->A[l]); free(ws->D[l]); free(ws->K[l]); free(ws->G[l]);
    }
    memset(ws, 0, sizeof(*ws));
}

static int F(ws_alloc)(F(fnn_ws) *ws, const fnn_net *net, int M, int T, int need_D,
                       int need_K, int need_G) {
    memset(ws, 0, sizeof(*ws));
    ws->M = M; ws->T = T;
    const int *S = net->sizes;
    ws->x = (REAL *)malloc(sizeof(REAL) * (size_t)M * S[0]);
    ws->idx = (int64_t *)malloc(sizeof(int64_t) * (size_t)M);
    ws->acc = (double *)calloc((size_t)T * 8, sizeof(double));
    int ok = ws->x && ws->idx && ws->acc;
    for (int l = 0; ok && l < net->L; l++) {
        size_t nl = (size_t)S[l + 1] * M;
        ws->Z[l] = (REAL *)malloc(sizeof(REAL) * nl);
        ws->A[l] = (REAL *)malloc(sizeof(REAL) * nl);
        ok = ws->Z[l] && ws->A[l];
        if (ok && need_D) ok = (ws->D[l] = (REAL *)malloc(sizeof(REAL) * nl)) != NULL;
        if (ok && need_K && l < net->L - 1) ok = (ws->K[l] = (REAL *)malloc(sizeof(REAL) * nl)) != NULL;
        if (ok && need_G)
            ok = (ws->G[l] = (REAL *)malloc(sizeof(REAL) * (size_t)S[l + 1] * S[l])) != NULL;
    }
    if (!ok) { F(ws_free)(ws); return FNN_NOMEM; }
    return FNN_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* phases of a mini-batch; all threads call each one                                         */

/* x[i] = X[rows[i]] for the m slots; rows given by `order` (or start + i when NULL). */
static void F(gather)(F(fnn_ws) *ws, const REAL *X, int n_in, const int32_t *order,
                      int64_t start, int m, int t, int T, int *prev) {
    int64_t lo, hi;
    int par = fnn_is_par(m, T, (double)m * n_in);
    fnn_sync_phase(prev, par);
    fnn_split(m, t, T, (double)m * n_in, FNN_PAR_MIN, &lo, &hi);
    for (int64_t i = lo; i < hi; i++) {
        int64_t row = order ? (int64_t)order[start + i] : start + i;
        ws->idx[i] = row;
        memcpy(ws->x + i * n_in, X + row * n_in, sizeof(REAL) * (size_t)n_in);
    }
}

/* Forward through every layer but the output's activation.
 * dense_forward of layer l: Z[l] (n_out, m) = W[l] (n_out, n_in) @ in (n_in, m); in is x^T for
 * l == 0 (x is (m, n_in)), else A[l-1]. */
static void F(forward)(const fnn_net *net, F(fnn_ws) *ws, int m, double dropout, uint64_t seed,
                       int epoch, int64_t slot0, int t, int T, int *prev) {
    const int *S = net->sizes;
    for (int l = 0; l < net->L; l++) {
        int n_in = S[l], n_out = S[l + 1];
        double work = (double)m * n_in * n_out;
        int par = fnn_is_par(n_out, T, work);
        int64_t o0, o1;
        fnn_sync_phase(prev, par);
        fnn_split(n_out, t, T, work, FNN_PAR_MIN, &o0, &o1);
        if (o1 <= o0) continue;
        const REAL *W = (const REAL *)net->W[l];
        if (l == 0)
            F(gemm)(net, 0, 1, (int)(o1 - o0), m, n_in, 1, W + o0 * n_in, n_in, ws->x, n_in, 0,
                    ws->Z[l] + o0 * m, m);
        else
            F(gemm)(net, 0, 0, (int)(o1 - o0), m, n_in, 1, W + o0 * n_in, n_in, ws->A[l - 1], m,
                    0, ws->Z[l] + o0 * m, m);
        if (l < net->L - 1) {
            F(act_forward)(ws->A[l], ws->Z[l], (const REAL *)net->b[l], o0, o1, m, net->act[l]);
            if (dropout > 0)
                F(dropout_forward)(ws->A[l], ws->K[l], o0, o1, m, dropout, seed, epoch, slot0, l);
        }
    }
}

/* Output layer, samples [i0, i1): bias and activation, cost and hits into acc, and when
 * want_delta the output delta D[L-1] = cost_scale * dC/dz. */
static void F(output_phase)(const fnn_net *net, F(fnn_ws) *ws, const REAL *Y, int m,
                            int want_delta, int t, int T, int *prev) {
    const int L = net->L, no = net->sizes[L], act = net->act[L - 1], cost = net->cost;
    const REAL *b = (const REAL *)net->b[L - 1];
    REAL *Z = ws->Z[L - 1], *A = ws->A[L - 1], *D = ws->D[L - 1];
    const double scale = net->cost_scale;
    double work = (double)m * no * 16;
    int par = fnn_is_par(m, T, work);
    int64_t i0, i1;
    fnn_sync_phase(prev, par);
    fnn_split(m, t, T, work, FNN_PAR_MIN, &i0, &i1);
    double csum = 0, hits = 0;
    for (int64_t i = i0; i < i1; i++) {
        const REAL *y = Y + ws->idx[i] * no;
        double lse = 0;
        if (act == FNN_SOFTMAX) {
            REAL zmax = Z[i] + b[0];
            for (int j = 0; j < no; j++) {
                REAL v = Z[j * m + i] + b[j];
                Z[j * m + i] = v;
                if (v > zmax) zmax = v;
            }
            double s = 0;
            for (int j = 0; j < no; j++) {
                REAL e = FNN_EXP(Z[j * m + i] - zmax);
                A[j * m + i] = e;
                s += e;
            }
            for (int j = 0; j < no; j++) A[j * m + i] = (REAL)(A[j * m + i] / s);
            lse = (double)zmax + log(s);
        } else {
            for (int j = 0; j < no; j++) {
                REAL v = Z[j * m + i] + b[j];
                Z[j * m + i] = v;
                switch (act) {
                case FNN_SIGMOID: A[j * m + i] = F(sigmoid)(v); break;
                case FNN_TANH: A[j * m + i] = FNN_TANH(v); break;
                case FNN_RELU: A[j * m + i] = v > 0 ? v : 0; break;
                default: A[j * m + i] = v; break;
                }
            }
        }
        /* hits: first maximum of a against first maximum of y */
        int ja = 0, jy = 0;
        for (int j = 1; j < no; j++) {
            if (A[j * m + i] > A[ja * m + i]) ja = j;
            if (y[j] > y[jy]) jy = j;
        }
        hits += (ja == jy);
        /* cost */
        double c = 0;
        for (int j = 0; j < no; j++) {
            double a = A[j * m + i], yy = y[j];
            if (cost == FNN_QUADRATIC) {
                c += 0.5 * (a - yy) * (a - yy);
            } else if (cost == FNN_CROSS_ENTROPY) {
                double e = -yy * log(a) - (1 - yy) * log(1 - a);
                if (isnan(e)) e = 0;
                else if (isinf(e)) e = e > 0 ? DBL_MAX : -DBL_MAX;
                c += e;
            } else if (yy != 0) { /* log-likelihood */
                double la = (act == FNN_SOFTMAX) ? (double)Z[j * m + i] - lse : log(a);
                c -= yy * la;
            }
        }
        csum += scale * c;
        if (!want_delta) continue;
        for (int j = 0; j < no; j++) {
            REAL a = A[j * m + i], diff = a - y[j];
            REAL d = diff;
            if (cost == FNN_QUADRATIC) {
                REAL z = Z[j * m + i];
                switch (act) {
                case FNN_SIGMOID: d = diff * a * ((REAL)1 - a); break;
                case FNN_TANH: d = diff * ((REAL)1 - a * a); break;
                case FNN_RELU: d = z > 0 ? diff : 0; break;
                default: break;
                }
            }
            D[j * m + i] = (REAL)(scale * d);
        }
    }
    ws->acc[t * 8 + 0] += csum;
    ws->acc[t * 8 + 1] += hits;
}

/* dense_backward, delta part: D[l-1] (n_in, m) = W[l]^T (n_in, n_out) @ D[l] (n_out, m),
 * then times act'(Z[l-1]) and the dropout multipliers.  Rows split by input neuron. */
static void F(delta_backward)(const fnn_net *net, F(fnn_ws) *ws, int l, int m, int t, int T,
                              int *prev) {
    const int n_in = net->sizes[l], n_out = net->sizes[l + 1];
    double work = (double)m * n_in * n_out;
    int par = fnn_is_par(n_in, T, work);
    int64_t k0, k1;
    fnn_sync_phase(prev, par);
    fnn_split(n_in, t, T, work, FNN_PAR_MIN, &k0, &k1);
    if (k1 <= k0) return;
    const REAL *W = (const REAL *)net->W[l];
    F(gemm)(net, 1, 0, (int)(k1 - k0), m, n_out, 1, W + k0, n_in, ws->D[l], m, 0,
            ws->D[l - 1] + k0 * m, m);
    F(act_backward)(ws->D[l - 1], ws->Z[l - 1], ws->K[l - 1], k0, k1, m, net->act[l - 1]);
}

/* dense_backward, parameter part, fused with the optimizer step, rows [o0, o1) of layer l:
 * g = D[l] (n_out, m) @ in^T (m, n_in) / m + (lmbda/n) w + (l1/n) sign(w). */
static void F(update_layer)(const fnn_net *net, const fnn_train_cfg *cfg, F(fnn_ws) *ws, int l,
                            int m, double eta, int64_t step, int t, int T, int *prev) {
    const int n_in = net->sizes[l], n_out = net->sizes[l + 1];
    double work = (double)m * n_in * n_out;
    int par = fnn_is_par(n_out, T, work);
    int64_t o0, o1;
    fnn_sync_phase(prev, par);
    fnn_split(n_out, t, T, work, FNN_PAR_MIN, &o0, &o1);
    if (o1 <= o0) return;
    const int R = (int)(o1 - o0);
    REAL *W = (REAL *)net->W[l] + o0 * n_in;
    REAL *b = (REAL *)net->b[l] + o0;
    const REAL *D = ws->D[l] + o0 * m;
    const REAL *in = (l == 0) ? ws->x : ws->A[l - 1];
    const int tb = (l == 0) ? 0 : 1, ldb = (l == 0) ? n_in : m;
    const double inv_m = 1.0 / m;
    const double wd = cfg->lmbda / cfg->reg_n, l1 = cfg->l1 / cfg->reg_n;

    if (cfg->optimizer == FNN_SGD && cfg->l1 == 0) {
        /* the book's rule in one GEMM: W = (1 - eta lmbda/n) W - (eta/m) D in^T */
        F(gemm)(net, 0, tb, R, n_in, m, (REAL)(-eta * inv_m), D, m, in, ldb,
                (REAL)(1 - eta * wd), W, n_in);
        for (int r = 0; r < R; r++) {
            double s = 0;
            for (int i = 0; i < m; i++) s += D[r * m + i];
            b[r] -= (REAL)(eta * inv_m * s);
        }
        return;
    }
    REAL *G = ws->G[l] + o0 * n_in;
    F(gemm)(net, 0, tb, R, n_in, m, (REAL)inv_m, D, m, in, ldb, 0, G, n_in);
    REAL *sW1 = cfg->s1[l][0] ? (REAL *)cfg->s1[l][0] + o0 * n_in : NULL;
    REAL *sW2 = cfg->s2[l][0] ? (REAL *)cfg->s2[l][0] + o0 * n_in : NULL;
    REAL *sb1 = cfg->s1[l][1] ? (REAL *)cfg->s1[l][1] + o0 : NULL;
    REAL *sb2 = cfg->s2[l][1] ? (REAL *)cfg->s2[l][1] + o0 : NULL;
    const int64_t nw = (int64_t)R * n_in;
    /* weights */
    for (int64_t j = 0; j < nw; j++) {
        REAL w = W[j];
        REAL g = G[j] + (REAL)wd * w + (REAL)l1 * (REAL)((w > 0) - (w < 0));
        G[j] = g;
    }
    /* biases: mean delta, never regularized */
    REAL gbias[64];
    for (int r0 = 0; r0 < R; r0 += 64) {
        int rn = R - r0 < 64 ? R - r0 : 64;
        for (int r = 0; r < rn; r++) {
            double s = 0;
            for (int i = 0; i < m; i++) s += D[(r0 + r) * m + i];
            gbias[r] = (REAL)(s * inv_m);
        }
        for (int r = 0; r < rn; r++) {
            REAL g = gbias[r];
            if (cfg->optimizer == FNN_SGD) {
                b[r0 + r] -= (REAL)eta * g;
            } else if (cfg->optimizer == FNN_MOMENTUM) {
                sb1[r0 + r] = (REAL)cfg->mu * sb1[r0 + r] - (REAL)eta * g;
                b[r0 + r] += sb1[r0 + r];
            } else {
                double lr_t = eta * sqrt(1 - pow(cfg->beta2, (double)step)) /
                              (1 - pow(cfg->beta1, (double)step));
                REAL mm = sb1[r0 + r] += (REAL)(1 - cfg->beta1) * (g - sb1[r0 + r]);
                REAL vv = sb2[r0 + r] += (REAL)(1 - cfg->beta2) * (g * g - sb2[r0 + r]);
                b[r0 + r] -= (REAL)lr_t * mm / (FNN_SQRT(vv) + (REAL)cfg->eps);
            }
        }
    }
    if (cfg->optimizer == FNN_SGD) {
        for (int64_t j = 0; j < nw; j++) W[j] -= (REAL)eta * G[j];
    } else if (cfg->optimizer == FNN_MOMENTUM) {
        const REAL mu = (REAL)cfg->mu, e = (REAL)eta;
        for (int64_t j = 0; j < nw; j++) { sW1[j] = mu * sW1[j] - e * G[j]; W[j] += sW1[j]; }
    } else {
        const REAL lr_t = (REAL)(eta * sqrt(1 - pow(cfg->beta2, (double)step)) /
                                 (1 - pow(cfg->beta1, (double)step)));
        const REAL c1 = (REAL)(1 - cfg->beta1), c2 = (REAL)(1 - cfg->beta2), eps = (REAL)cfg->eps;
        for (int64_t j = 0; j < nw; j++) {
            REAL g = G[j];
            REAL mm = sW1[j] += c1 * (g - sW1[j]);
            REAL vv = sW2[j] += c2 * (g * g - sW2[j]);
            W[j] -= lr_t * mm / (FNN_SQRT(vv) + eps);
        }
    }
}

/* One mini-batch of training: examples order[start .. start+m). */
static void F(train_batch)(const fnn_net *net, const fnn_train_cfg *cfg, F(fnn_ws) *ws,
                           int epoch, int64_t start, int m, double eta, int64_t step, int t,
                           int T, int *prev) {
    const int L = net->L;
    const int32_t *order = cfg->orders ? cfg->orders + (int64_t)epoch * cfg->train.n : NULL;
    F(gather)(ws, (const REAL *)cfg->train.X, net->sizes[0], order, start, m, t, T, prev);
    F(forward)(net, ws, m, cfg->dropout, cfg->seed, epoch, start, t, T, prev);
    F(output_phase)(net, ws, (const REAL *)cfg->train.Y, m, 1, t, T, prev);
    for (int l = L - 1; l >= 0; l--) {
        if (l > 0) F(delta_backward)(net, ws, l, m, t, T, prev);
        F(update_layer)(net, cfg, ws, l, m, eta, step, t, T, prev);
    }
}

/* Cost sum and hits over a data set, forward only.  All threads call it. */
static void F(evaluate_team)(const fnn_net *net, F(fnn_ws) *ws, const fnn_data *data, int t,
                             int T, int *prev) {
    for (int64_t start = 0; start < data->n; start += ws->M) {
        int m = (int)((data->n - start) < ws->M ? (data->n - start) : ws->M);
        F(gather)(ws, (const REAL *)data->X, net->sizes[0], NULL, start, m, t, T, prev);
        F(forward)(net, ws, m, 0.0, 0, 0, 0, t, T, prev);
        F(output_phase)(net, ws, (const REAL *)data->Y, m, 0, t, T, prev);
    }
}

static void F(reduce_acc)(F(fnn_ws) *ws, double *cost, int64_t *hits) {
    double c = 0, h = 0;
    for (int t = 0; t < ws->T; t++) {
        c += ws->acc[t * 8 + 0];
        h += ws->acc[t * 8 + 1];
        ws->acc[t * 8 + 0] = 0;
        ws->acc[t * 8 + 1] = 0;
    }
    *cost = c;
    *hits = (int64_t)(h + 0.5);
}

static int F(evaluate_set)(const fnn_net *net, F(fnn_ws) *ws, const fnn_data *data, int T,
                           double *cost, int64_t *hits) {
#pragma omp parallel num_threads(T)
    {
        int prev = 0;
        F(evaluate_team)(net, ws, data, fnn_thread_num(), fnn_num_threads(), &prev);
    }
    F(reduce_acc)(ws, cost, hits);
    return FNN_OK;
}

/* sum w^2 and |w| over all weights; returns 0 when any weight or bias is not finite */
static int F(param_norms)(const fnn_net *net, double *w2, double *w1) {
    double s2 = 0, s1 = 0;
    int finite = 1;
    for (int l = 0; l < net->L; l++) {
        const REAL *W = (const REAL *)net->W[l], *b = (const REAL *)net->b[l];
        int64_t nw = (int64_t)net->sizes[l + 1] * net->sizes[l];
        for (int64_t j = 0; j < nw; j++) { double w = W[j]; s2 += w * w; s1 += fabs(w); }
        double sb = 0;
        for (int j = 0; j < net->sizes[l + 1]; j++) sb += b[j];
        if (!isfinite(sb)) finite = 0;
    }
    if (!isfinite(s2) || !isfinite(s1)) finite = 0;
    *w2 = s2; *w1 = s1;
    return finite;
}

static int64_t F(param_count)(const fnn_net *net) {
    int64_t c = 0;
    for (int l = 0; l < net->L; l++) c += (int64_t)net->sizes[l + 1] * (net->sizes[l] + 1);
    return c;
}

static void F(snapshot)(const fnn_net *net, REAL *buf, int restore) {
    for (int l = 0; l < net->L; l++) {
        size_t nw = (size_t)net->sizes[l + 1] * net->sizes[l], nb = net->sizes[l + 1];
        if (restore) {
            memcpy(net->W[l], buf, nw * sizeof(REAL)); buf += nw;
            memcpy(net->b[l], buf, nb * sizeof(REAL)); buf += nb;
        } else {
            memcpy(buf, net->W[l], nw * sizeof(REAL)); buf += nw;
            memcpy(buf, net->b[l], nb * sizeof(REAL)); buf += nb;
        }
    }
}

/* ------------------------------------------------------------------------------------------ */
/* entry points, called without the GIL                                                       */

/* The whole training call: every epoch, every mini-batch, the per-epoch evaluation. */
static int F(fnn_train)(fnn_net *net, fnn_train_cfg *cfg) {
    const int T = net->n_threads > 0 ? net->n_threads : 1;
    const int64_t n = cfg->train.n;
    const int batch = cfg->batch;
    int M = batch;
    if ((cfg->monitor & (FNN_MON_TRAIN | FNN_MON_EVAL)) && M < FNN_EVAL_BATCH) M = FNN_EVAL_BATCH;
    F(fnn_ws) ws;
    int need_G = !(cfg->optimizer == FNN_SGD && cfg->l1 == 0);
    if (F(ws_alloc)(&ws, net, M, T, 1, cfg->dropout > 0, need_G) != FNN_OK) return FNN_NOMEM;
    REAL *snap = (REAL *)malloc(sizeof(REAL) * (size_t)F(param_count)(net));
    if (snap == NULL) { F(ws_free)(&ws); return FNN_NOMEM; }

    int status = FNN_OK;
    double eta = cfg->eta;
    const int64_t nb = (n + batch - 1) / batch;
    const int ce = cfg->check_every > 0 ? cfg->check_every : (int)(nb > 0 ? nb : 1);
    cfg->epochs_done = 0;
    cfg->diverged_epoch = -1;
    for (int epoch = 0; epoch < cfg->epochs; epoch++) {
        fnn_epoch_stats st;
        memset(&st, 0, sizeof(st));
        st.epoch = epoch;
        F(snapshot)(net, snap, 0);
        for (int64_t c0 = 0; c0 < nb; c0 += ce) {
            int64_t c1 = c0 + ce < nb ? c0 + ce : nb;
#pragma omp parallel num_threads(T)
            {
                int prev = 0, t = fnn_thread_num(), TT = fnn_num_threads();
                for (int64_t bi = c0; bi < c1; bi++) {
                    int64_t start = bi * batch;
                    int m = (int)(n - start < batch ? n - start : batch);
                    F(train_batch)(net, cfg, &ws, epoch, start, m, eta, cfg->adam_t + bi + 1, t,
                                   TT, &prev);
                }
            }
            if (c1 < nb && cfg->check != NULL && cfg->check(cfg->ctx)) {
                if (cfg->optimizer == FNN_ADAM) cfg->adam_t += c1;
                status = FNN_INTERRUPTED;
                goto done;
            }
        }
        if (cfg->optimizer == FNN_ADAM) cfg->adam_t += nb;
        st.batches = nb;
        F(reduce_acc)(&ws, &st.run_cost, &st.run_correct);
        st.run_n = n;
        if (!F(param_norms)(net, &st.sum_w2, &st.sum_w1)) {
            F(snapshot)(net, snap, 1);
            cfg->diverged_epoch = epoch;
            status = FNN_DIVERGED;
            goto done;
        }
        if (cfg->monitor & FNN_MON_TRAIN)
            F(evaluate_set)(net, &ws, &cfg->train, T, &st.train_cost, &st.train_correct);
        if (cfg->monitor & FNN_MON_EVAL)
            F(evaluate_set)(net, &ws, &cfg->eval, T, &st.eval_cost, &st.eval_correct);
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
    free(snap);
    F(ws_free)(&ws);
    return status;
}

/* out (n, n_out) = the network's output for X (n, n_in). */
static int F(fnn_predict)(const fnn_net *net, const REAL *X, int64_t n, REAL *out) {
    const int T = net->n_threads > 0 ? net->n_threads : 1, L = net->L, no = net->sizes[L];
    F(fnn_ws) ws;
    if (F(ws_alloc)(&ws, net, FNN_EVAL_BATCH, T, 0, 0, 0) != FNN_OK) return FNN_NOMEM;
#pragma omp parallel num_threads(T)
    {
        int prev = 0, t = fnn_thread_num(), TT = fnn_num_threads();
        for (int64_t start = 0; start < n; start += ws.M) {
            int m = (int)((n - start) < ws.M ? (n - start) : ws.M);
            F(gather)(&ws, X, net->sizes[0], NULL, start, m, t, TT, &prev);
            F(forward)(net, &ws, m, 0.0, 0, 0, 0, t, TT, &prev);
            fnn_sync_phase(&prev, 1);
            int64_t i0, i1;
            fnn_split(m, t, TT, 1e30, 0, &i0, &i1);
            const REAL *b = (const REAL *)net->b[L - 1];
            REAL *Z = ws.Z[L - 1];
            for (int64_t i = i0; i < i1; i++) {
                REAL *o = out + (start + i) * no;
                int act = net->act[L - 1];
                for (int j = 0; j < no; j++) {
                    REAL v = Z[j * m + i] + b[j];
                    switch (act) {
                    case FNN_SIGMOID: o[j] = F(sigmoid)(v); break;
                    case FNN_TANH: o[j] = FNN_TANH(v); break;
                    case FNN_RELU: o[j] = v > 0 ? v : 0; break;
                    default: o[j] = v; break;
                    }
                }
                if (act == FNN_SOFTMAX) {
                    REAL zmax = o[0];
                    for (int j = 1; j < no; j++) if (o[j] > zmax) zmax = o[j];
                    double s = 0;
                    for (int j = 0; j < no; j++) { o[j] = FNN_EXP(o[j] - zmax); s += o[j]; }
                    for (int j = 0; j < no; j++) o[j] = (REAL)(o[j] / s);
                }
            }
            fnn_sync_phase(&prev, 1);
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
    if (F(ws_alloc)(&ws, net, FNN_EVAL_BATCH, T, 0, 0, 0) != FNN_OK) return FNN_NOMEM;
    F(evaluate_set)(net, &ws, data, T, cost, hits);
    F(ws_free)(&ws);
    return FNN_OK;
}

/* Gradients of the cost summed over (X, Y): gW[l] (n_out, n_in) and gb[l] (n_out) are
 * overwritten; `cost` gets the cost sum (no regularization, no dropout). */
static int F(fnn_gradient)(const fnn_net *net, const fnn_data *data, REAL **gW, REAL **gb,
                           double *cost) {
    const int L = net->L;
    F(fnn_ws) ws;
    if (F(ws_alloc)(&ws, net, FNN_EVAL_BATCH, 1, 1, 0, 0) != FNN_OK) return FNN_NOMEM;
    for (int l = 0; l < L; l++) {
        memset(gW[l], 0, sizeof(REAL) * (size_t)net->sizes[l + 1] * net->sizes[l]);
        memset(gb[l], 0, sizeof(REAL) * (size_t)net->sizes[l + 1]);
    }
    int prev = 0;
    for (int64_t start = 0; start < data->n; start += ws.M) {
        int m = (int)((data->n - start) < ws.M ? (data->n - start) : ws.M);
        F(gather)(&ws, (const REAL *)data->X, net->sizes[0], NULL, start, m, 0, 1, &prev);
        F(forward)(net, &ws, m, 0.0, 0, 0, 0, 0, 1, &prev);
        F(output_phase)(net, &ws, (const REAL *)data->Y, m, 1, 0, 1, &prev);
        for (int l = L - 1; l >= 0; l--) {
            if (l > 0) F(delta_backward)(net, &ws, l, m, 0, 1, &prev);
            const int n_in = net->sizes[l], n_out = net->sizes[l + 1];
            const REAL *in = (l == 0) ? ws.x : ws.A[l - 1];
            F(gemm)(net, 0, l == 0 ? 0 : 1, n_out, n_in, m, 1, ws.D[l], m, in,
                    l == 0 ? n_in : m, 1, gW[l], n_in);
            for (int r = 0; r < n_out; r++) {
                double s = 0;
                for (int i = 0; i < m; i++) s += ws.D[l][r * m + i];
                gb[l][r] += (REAL)s;
            }
        }
    }
    double c; int64_t h;
    F(reduce_acc)(&ws, &c, &h);
    *cost = c;
    F(ws_free)(&ws);
    return FNN_OK;
}

#undef F

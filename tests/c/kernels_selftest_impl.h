/* kernels_selftest_impl.h: the self-test's checks for one REAL (kernels_selftest.c includes
 * it twice).  Every reference below is a plain loop written from the kernels' contracts in
 * src_c/kernels_rows.h and src_c/kernels_t.h. */

#define SELF_MAXM 40
#define SELF_MAXK 70
#define SELF_MAXR 21

/* rows of x at odd offsets into one buffer, so that no row starts on a vector boundary */
static void F(self_rows)(REAL *buf, const REAL **x, int m, int K, uint64_t *s) {
    for (int i = 0; i < m; i++) {
        x[i] = buf + 1 + (int64_t)i * (K + 3);
        for (int k = 0; k < K; k++) ((REAL *)x[i])[k] = (REAL)urand(s);
    }
}

static void F(self_products)(void) {
    uint64_t s = 12345;
    REAL *xbuf = malloc(sizeof(REAL) * SELF_MAXM * (SELF_MAXK + 3) + 64);
    REAL *W = malloc(sizeof(REAL) * SELF_MAXR * SELF_MAXK), *W2 = malloc(sizeof(REAL) * SELF_MAXR * SELF_MAXK);
    REAL *Wt = malloc(sizeof(REAL) * SELF_MAXK * 64), *Wt2 = malloc(sizeof(REAL) * SELF_MAXK * 64);
    REAL *c = malloc(sizeof(REAL) * SELF_MAXM * 64);
    REAL *z = malloc(sizeof(REAL) * SELF_MAXM * 64);
    const REAL *x[SELF_MAXM];
    double d_dot = 0, d_axpy = 0, d_dott = 0, d_axpyt = 0;
    for (int m = 1; m <= SELF_MAXM; m += (m < 14 ? 1 : 5)) {
        for (int trial = 0; trial < 6; trial++) {
            const int K = 1 + (int)((urand(&s) + 1) * 0.5 * (SELF_MAXK - 1));
            const int R = 1 + (int)((urand(&s) + 1) * 0.5 * (SELF_MAXR - 1));
            const int ldw = K + (trial & 1);
            const REAL decay = (trial % 3 == 0) ? 0 : (REAL)0.75;
            F(self_rows)(xbuf, x, m, K, &s);
            for (int r = 0; r < R * ldw; r++) W[r] = W2[r] = (REAL)urand(&s);
            /* dot_rows: z[i, r] = sum_k x[i][k] W[r, k] */
            const int ldz = R + 2;
            F(dot_rows)(m, x, W, ldw, K, R, z, ldz);
            for (int i = 0; i < m; i++)
                for (int r = 0; r < R; r++) {
                    double ref = 0;
                    for (int k = 0; k < K; k++) ref += (double)x[i][k] * W[(int64_t)r * ldw + k];
                    double d = fabs(ref - z[(int64_t)i * ldz + r]);
                    if (d > d_dot) d_dot = d;
                }
            /* axpy_rows: W[r, k] = decay W[r, k] + sum_i c[r, i] x[i][k]; c (R, m), stride ldc */
            const int ldc = m + 1;
            for (int j = 0; j < R * ldc; j++) c[j] = (REAL)urand(&s);
            F(axpy_rows)(m, x, c, ldc, decay, W, ldw, K, R);
            for (int r = 0; r < R; r++)
                for (int k = 0; k < K; k++) {
                    double ref = decay == 0 ? 0 : (double)decay * W2[(int64_t)r * ldw + k];
                    for (int i = 0; i < m; i++) ref += (double)c[r * ldc + i] * x[i][k];
                    double d = fabs(ref - W[(int64_t)r * ldw + k]);
                    if (d > d_axpy) d_axpy = d;
                }
            /* dott_rows: z (m, ldr) = x @ Wt, Wt (K, ldr) the transposed W, zero-padded */
            const int ldr = F(ldr_of)(R);
            F(transpose_in)(W2, ldw, R, K, ldr, Wt);
            memcpy(Wt2, Wt, sizeof(REAL) * (size_t)K * ldr);
            const int kt = (trial & 2) ? 8 : 0;     /* 0: the kernel's own tile */
            F(dott_rows)(m, x, Wt, ldr, K, kt, z, ldr);
            for (int i = 0; i < m; i++)
                for (int r = 0; r < ldr; r++) {
                    double ref = 0;
                    for (int k = 0; k < K; k++) ref += (double)x[i][k] * Wt2[(int64_t)k * ldr + r];
                    double d = fabs(ref - z[(int64_t)i * ldr + r]);
                    if (d > d_dott) d_dott = d;
                }
            /* axpyt_rows: Wt[k, r] = decay Wt[k, r] + sum_i x[i][k] c[i, r]; c (m, ldr) */
            for (int j = 0; j < m * ldr; j++) c[j] = (REAL)urand(&s);
            F(axpyt_rows)(m, x, c, ldr, decay, Wt, ldr, K);
            for (int k = 0; k < K; k++)
                for (int r = 0; r < ldr; r++) {
                    double ref = decay == 0 ? 0 : (double)decay * Wt2[(int64_t)k * ldr + r];
                    for (int i = 0; i < m; i++) ref += (double)x[i][k] * c[(int64_t)i * ldr + r];
                    double d = fabs(ref - Wt[(int64_t)k * ldr + r]);
                    if (d > d_axpyt) d_axpyt = d;
                }
        }
    }
    report("dot_rows    (x @ W^T)", TYPE, d_dot, TOL_K);
    report("axpy_rows   (W = decay W + c @ x)", TYPE, d_axpy, TOL_K);
    report("dott_rows   (x @ Wt, transposed)", TYPE, d_dott, TOL_K);
    report("axpyt_rows  (Wt = decay Wt + x^T @ c)", TYPE, d_axpyt, TOL_K);
    free(xbuf); free(W); free(W2); free(Wt); free(Wt2); free(c); free(z);
}

static void F(self_sigmoid)(void) {
#if defined(__GNUC__) && !defined(FNN_NO_VEC_KERNELS)
    /* relative difference, over z in [-800, 800] (the exp's whole range, subnormals too) */
    double worst = 0;
    const int vl = (int)(FNN_VBYTES / sizeof(REAL));
    REAL zs[64], out[64];
    for (int j = 0; j < 200000; j += vl) {
        for (int l = 0; l < vl; l++) zs[l] = (REAL)(-800.0 + 1600.0 * (j + l) / 200000.0);
        F(vstore)(out, F(vsigmoid)(F(vload)(zs)));
        for (int l = 0; l < vl; l++) {
            /* the reference in double; below REAL's smallest normal, absolute */
            const double ref = 1.0 / (1.0 + exp(-(double)zs[l]));
            const double tiny = sizeof(REAL) == sizeof(float) ? FLT_MIN : DBL_MIN;
            double d = ref < tiny ? (fabs((double)out[l] - ref) > tiny ? 1 : 0)
                                  : fabs((double)out[l] - ref) / ref;
            if (d > worst) worst = d;
        }
    }
    report("vsigmoid    (relative, z in [-800, 800])", TYPE, worst, TOL_S * 8);
#endif
}

static void F(self_vsum)(void) {
#if defined(__GNUC__) && !defined(FNN_NO_VEC_KERNELS)
    /* vsum_n's sums of 1 to 40 vectors against vsum's, vector by vector: the same bits */
    const int vl = (int)(FNN_VBYTES / sizeof(REAL));
    uint64_t s = 7;
    F(vec) a[40];
    REAL got[40], lanes[64];
    int wrong = 0;
    for (int n = 1; n <= 40; n++) {
        for (int i = 0; i < n; i++) {
            for (int l = 0; l < vl; l++) lanes[l] = (REAL)(urand(&s) * (1 << (i % 20)));
            a[i] = F(vload)(lanes);
        }
        for (int i = 0; i < 40; i++) got[i] = (REAL)-7;
        F(vsum_n)(a, n, got);
        for (int i = 0; i < n; i++) {
            const REAL want = F(vsum)(a[i]);
            wrong += memcmp(&got[i], &want, sizeof want) != 0;
        }
        for (int i = n; i < 40; i++) wrong += got[i] != (REAL)-7;   /* nothing past n */
    }
    report("vsum_n      (bits of vsum, 1 to 40 vectors)", TYPE, wrong, 0);
#endif
}

/* two epochs of the book's SGD on a [256, 16, 3] sigmoid net (4,160 parameters: enough
 * for two threads to share a mini-batch), quadratic cost, mini-batches of B in the order
 * 0..n-1: the reference loop, then fnn_train on each path, from the matrix X and from row
 * sources (fnn_data.rows) over the same numbers, as REAL (read in place) and as the other
 * type (converted by the gather), which must give the same weights bit for bit.  B = 4 takes
 * the small-batch kernels; B = 90 (above FNN_SMALL_M) the dense layers' own tiles
 * (forward_tiles, backward_tiles, update_fused) in vector builds, then a last mini-batch of
 * 20 the small-batch kernels again */
#define NT 200
/* (noinline, no vectorizing: GCC 12 for aarch64 crashes vectorizing this function at -O3) */
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((noinline, optimize("no-tree-vectorize")))
#endif
static void F(self_train)(const int B) {
    enum { N0 = 256, N1 = 16, N2 = 3, EPOCHS = 2 };
    const double eta = 0.5;
    uint64_t s = 777;
    REAL *X = fnn_malloc(sizeof(REAL) * NT * N0), *Y = fnn_malloc(sizeof(REAL) * NT * N2);
    static double w1[N1][N0], b1[N1], w2[N2][N1], b2[N2], gw1[N1][N0];
    /* the reference reads double copies of the data (GCC 12's aarch64 vectorizer crashes on
     * a float-times-double reduction) */
    static double Xd[NT * N0], Yd[NT * N2];
    static float Xf[NT * N0];
    static REAL W1[N1 * N0], B1[N1], W2[N2 * N1], B2[N2], W1s[N1 * N0];
    /* (inputs that float holds exactly, so that rows of either type are the same numbers) */
    for (int j = 0; j < NT * N0; j++) Xd[j] = X[j] = (REAL)(float)((urand(&s) + 1) * 0.5);
    for (int j = 0; j < NT * N0; j++) Xf[j] = (float)X[j];
    /* row sources: into X, and into the copy of the other type */
    const void *rows_same[NT], *rows_other[NT];
    for (int i = 0; i < NT; i++) {
        rows_same[i] = X + i * N0;
        rows_other[i] = sizeof(REAL) == sizeof(float) ? (const void *)(Xd + i * N0)
                                                      : (const void *)(Xf + i * N0);
    }
    for (int i = 0; i < NT; i++)
        for (int o = 0; o < N2; o++) Yd[i * N2 + o] = Y[i * N2 + o] = (REAL)(o == i % N2);
    for (int o = 0; o < N1; o++) {
        b1[o] = (REAL)urand(&s);
        for (int k = 0; k < N0; k++) w1[o][k] = (REAL)(urand(&s) * 0.5);
    }
    for (int o = 0; o < N2; o++) {
        b2[o] = (REAL)urand(&s);
        for (int k = 0; k < N1; k++) w2[o][k] = (REAL)(urand(&s) * 0.5);
    }
    for (int o = 0; o < N1; o++) { B1[o] = (REAL)b1[o]; for (int k = 0; k < N0; k++) W1[o * N0 + k] = (REAL)w1[o][k]; }
    for (int o = 0; o < N2; o++) { B2[o] = (REAL)b2[o]; for (int k = 0; k < N1; k++) W2[o * N1 + k] = (REAL)w2[o][k]; }
    REAL B1s[N1], W2s[N2 * N1], B2s[N2];
    memcpy(W1s, W1, sizeof W1); memcpy(B1s, B1, sizeof B1);
    memcpy(W2s, W2, sizeof W2); memcpy(B2s, B2, sizeof B2);

    /* the reference: per example backprop, summed over the mini-batch, then w -= eta/m sum */
    for (int e = 0; e < EPOCHS; e++)
        for (int i0 = 0; i0 < NT; i0 += B) {
            const int m = NT - i0 < B ? NT - i0 : B;
            double gb1[N1] = {0}, gw2[N2][N1] = {{0}}, gb2[N2] = {0};
            memset(gw1, 0, sizeof gw1);
            for (int i = i0; i < i0 + m; i++) {
                double a1[N1], a2[N2], d2[N2], d1[N1];
                for (int o = 0; o < N1; o++) {
                    double zz = b1[o];
                    for (int k = 0; k < N0; k++) zz += w1[o][k] * Xd[i * N0 + k];
                    a1[o] = 1 / (1 + exp(-zz));
                }
                for (int o = 0; o < N2; o++) {
                    double zz = b2[o];
                    for (int k = 0; k < N1; k++) zz += w2[o][k] * a1[k];
                    a2[o] = 1 / (1 + exp(-zz));
                    d2[o] = (a2[o] - Yd[i * N2 + o]) * a2[o] * (1 - a2[o]);
                    gb2[o] += d2[o];
                    for (int k = 0; k < N1; k++) gw2[o][k] += d2[o] * a1[k];
                }
                for (int k = 0; k < N1; k++) {
                    double sum = 0;
                    for (int o = 0; o < N2; o++) sum += w2[o][k] * d2[o];
                    d1[k] = sum * a1[k] * (1 - a1[k]);
                    gb1[k] += d1[k];
                    for (int j = 0; j < N0; j++) gw1[k][j] += d1[k] * Xd[i * N0 + j];
                }
            }
            for (int o = 0; o < N1; o++) {
                b1[o] -= eta / m * gb1[o];
                for (int k = 0; k < N0; k++) w1[o][k] -= eta / m * gw1[o][k];
            }
            for (int o = 0; o < N2; o++) {
                b2[o] -= eta / m * gb2[o];
                for (int k = 0; k < N1; k++) w2[o][k] -= eta / m * gw2[o][k];
            }
        }

    static const char *const path_names[] = {"serial", "rows", "ksplit"};
    const int paths[] = {FNN_PATH_SERIAL, FNN_PATH_ROWS, FNN_PATH_KSPLIT};
    for (int p = 0; p < 3; p++)
        for (int threads = 1; threads <= 2; threads++) {
            memcpy(W1, W1s, sizeof W1); memcpy(B1, B1s, sizeof B1);
            memcpy(W2, W2s, sizeof W2); memcpy(B2, B2s, sizeof B2);
            fnn_net net;
            memset(&net, 0, sizeof net);
            net.L = 2;
            net.cost = FNN_COST_QUADRATIC;
            net.cost_scale = 1;
            net.n_threads = threads;
            void *Ws[2] = {W1, W2}, *Bs[2] = {B1, B2};
            const int sz[3] = {N0, N1, N2};
            for (int l = 0; l < 2; l++) {
                fnn_layer *ly = &net.layer[l];
                ly->kind = FNN_LAYER_DENSE;
                ly->act = FNN_ACT_SIGMOID;
                ly->in_shape[0] = sz[l];
                ly->out_shape[0] = sz[l + 1];
                ly->in_shape[1] = ly->in_shape[2] = ly->out_shape[1] = ly->out_shape[2] = 1;
                ly->W = Ws[l];
                ly->b = Bs[l];
            }
            if (fnn_net_finish(&net) != 0) { report("fnn_net_finish", TYPE, 1, 0); return; }
            fnn_train_cfg cfg;
            memset(&cfg, 0, sizeof cfg);
            cfg.epochs = EPOCHS;
            cfg.batch = B;
            cfg.eta = eta;
            cfg.reg_n = NT;
            cfg.opt.code = FNN_OPT_SGD;
            cfg.train.X = X;
            cfg.train.Y = Y;
            cfg.train.n = NT;
            cfg.path = paths[p];
            int status = F(fnn_train)(&net, &cfg);
            double d = status == FNN_OK ? 0 : 1;
            for (int o = 0; o < N1; o++) {
                d = fmax(d, fabs(B1[o] - b1[o]));
                for (int k = 0; k < N0; k++) d = fmax(d, fabs(W1[o * N0 + k] - w1[o][k]));
            }
            for (int o = 0; o < N2; o++) {
                d = fmax(d, fabs(B2[o] - b2[o]));
                for (int k = 0; k < N1; k++) d = fmax(d, fabs(W2[o * N1 + k] - w2[o][k]));
            }
            char what[80];
            snprintf(what, sizeof what, "fnn_train   (batch %d, %d thread%s, path %s)", B,
                     threads, threads > 1 ? "s" : "", path_names[cfg.path]);
            report(what, TYPE, d, TOL_T);
            static REAL got[N1 * N0 + N1 + N2 * N1 + N2];
            REAL *g = got;
            memcpy(g, W1, sizeof W1); g += N1 * N0;
            memcpy(g, B1, sizeof B1); g += N1;
            memcpy(g, W2, sizeof W2); g += N2 * N1;
            memcpy(g, B2, sizeof B2);
            for (int other = 0; other < 2; other++) {
                memcpy(W1, W1s, sizeof W1); memcpy(B1, B1s, sizeof B1);
                memcpy(W2, W2s, sizeof W2); memcpy(B2, B2s, sizeof B2);
                cfg.train.X = NULL;
                cfg.train.rows = other ? rows_other : rows_same;
                cfg.train.rows_type = (sizeof(REAL) == sizeof(float)) != other ? FNN_ROWS_F32
                                                                              : FNN_ROWS_F64;
                cfg.path = paths[p];
                status = F(fnn_train)(&net, &cfg);
                d = status == FNN_OK ? 0 : 1;
                g = got;
                for (int j = 0; j < N1 * N0; j++) d = fmax(d, fabs(W1[j] - *g++));
                for (int j = 0; j < N1; j++) d = fmax(d, fabs(B1[j] - *g++));
                for (int j = 0; j < N2 * N1; j++) d = fmax(d, fabs(W2[j] - *g++));
                for (int j = 0; j < N2; j++) d = fmax(d, fabs(B2[j] - *g++));
                snprintf(what, sizeof what, "  the same from rows of %s", other ? "the other type"
                         : "REAL");
                report(what, TYPE, d, 0);
            }
            cfg.train.X = X;
            cfg.train.rows = NULL;
        }
    fnn_free(X);
    fnn_free(Y);
}
#undef NT

static void F(selftest)(void) {
    F(self_products)();
    F(self_sigmoid)();
    F(self_vsum)();
    F(self_train)(4);
    F(self_train)(90);
}

#undef SELF_MAXM
#undef SELF_MAXK
#undef SELF_MAXR

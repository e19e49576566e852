/* layer_conv2d.h: the conv2d layer kind, as im2col and GEMM, channels-last.
 *
 * Input (H, W, C) and output (OH, OW, CO) per example, channels fastest (Keras' layout); the
 * kernel is (kh, kw, C, CO) row-major, which is a (K, CO) matrix with K = kh kw C; b is (CO,).
 * geom = {kh, kw, stride_h, stride_w, pad_top, pad_left}: output pixel (oy, ox) sees input rows
 * oy*sh - pt + dy and columns ox*sw - pl + dx, zero outside the input ("valid": no padding;
 * "same": the front door computes Keras' padding).
 *
 * ws->aux[l] holds the columns of every example, Col (M * P, K) with P = OH OW: row
 * (i P + p) is the receptive field of pixel p of example i in (dy, dx, c) order, the kernel's
 * row order.  Then
 *   forward   Z (P, CO) = Col (P, K) @ W (K, CO) + b        per example, A = act(Z)
 *   backward  dCol (P, K) = D (P, CO) @ W^T, scattered back onto D[l-1] (col2im)
 *   update    dW (K, CO) = Col^T (K, m P) @ D (m P, CO) / m, db = column sums / m
 * The second half of the buffer (training) holds dCol.  The examples go through im2col and
 * the GEMM in groups whose columns fit in L2, so the GEMM reads them from cache.  Threads
 * split the examples in the forward and backward passes and the output channels in the
 * update (each thread reads every example's columns for its channels: no reduction). */

#ifndef FNN_CONV_GEOM_DEFINED
#define FNN_CONV_GEOM_DEFINED
typedef struct {
    int H, W, C, OH, OW, CO, kh, kw, sh, sw, pt, pl;
    int64_t P, K;
} fnn_conv_geom;
#endif

static inline fnn_conv_geom F(conv_geom)(const fnn_layer *ly) {
    fnn_conv_geom g;
    g.H = ly->in_shape[0]; g.W = ly->in_shape[1]; g.C = ly->in_shape[2];
    g.OH = ly->out_shape[0]; g.OW = ly->out_shape[1]; g.CO = ly->out_shape[2];
    g.kh = ly->geom[0]; g.kw = ly->geom[1]; g.sh = ly->geom[2]; g.sw = ly->geom[3];
    g.pt = ly->geom[4]; g.pl = ly->geom[5];
    g.P = (int64_t)g.OH * g.OW;
    g.K = (int64_t)g.kh * g.kw * g.C;
    return g;
}

/* examples per im2col + GEMM group: their columns in about 512 KiB */
static inline int64_t F(conv_group)(const fnn_conv_geom *g) {
    int64_t e = (int64_t)524288 / ((int64_t)sizeof(REAL) * g->P * g->K);
    return e < 1 ? 1 : e;
}

/* im2col of one example: col (P, K) from x (H, W, C) */
static void F(im2col)(const fnn_conv_geom *g, const REAL *x, REAL *col) {
    const int C = g->C, rowlen = g->kw * C;
    for (int oy = 0; oy < g->OH; oy++) {
        for (int ox = 0; ox < g->OW; ox++) {
            REAL *dst = col + ((int64_t)oy * g->OW + ox) * g->K;
            const int x0 = ox * g->sw - g->pl;
            const int inside = x0 >= 0 && x0 + g->kw <= g->W;
            for (int dy = 0; dy < g->kh; dy++, dst += rowlen) {
                const int y = oy * g->sh - g->pt + dy;
                if (y < 0 || y >= g->H) {
                    memset(dst, 0, sizeof(REAL) * (size_t)rowlen);
                    continue;
                }
                const REAL *src = x + ((int64_t)y * g->W + x0) * C;
                if (inside) {   /* the kernel's row is one run of the input's row */
                    memcpy(dst, src, sizeof(REAL) * (size_t)rowlen);
                    continue;
                }
                for (int dx = 0; dx < g->kw; dx++) {
                    const int xx = x0 + dx;
                    if (xx < 0 || xx >= g->W) memset(dst + dx * C, 0, sizeof(REAL) * (size_t)C);
                    else memcpy(dst + dx * C, src + (int64_t)dx * C, sizeof(REAL) * (size_t)C);
                }
            }
        }
    }
}

/* col2im of one example: dx (H, W, C) = the sum, over the pixels whose field covers each
 * input, of dcol (P, K); dx is overwritten */
static void F(col2im)(const fnn_conv_geom *g, const REAL *dcol, REAL *dx) {
    const int C = g->C;
    memset(dx, 0, sizeof(REAL) * (size_t)g->H * g->W * C);
    for (int oy = 0; oy < g->OH; oy++) {
        for (int ox = 0; ox < g->OW; ox++) {
            const REAL *src = dcol + ((int64_t)oy * g->OW + ox) * g->K;
            const int x0 = ox * g->sw - g->pl;
            for (int dy = 0; dy < g->kh; dy++) {
                const int y = oy * g->sh - g->pt + dy;
                if (y < 0 || y >= g->H) continue;
                for (int dx_ = 0; dx_ < g->kw; dx_++) {
                    const int xx = x0 + dx_;
                    if (xx < 0 || xx >= g->W) continue;
                    REAL *d = dx + ((int64_t)y * g->W + xx) * C;
                    const REAL *s = src + ((int64_t)dy * g->kw + dx_) * C;
                    for (int c = 0; c < C; c++) d[c] += s[c];
                }
            }
        }
    }
}

/* the input of layer l for example i */
static inline const REAL *F(conv_in)(const fnn_net *net, const F(fnn_ws) *ws, int l, int64_t i) {
    return l == 0 ? ws->rows[i] : ws->A[l - 1] + i * net->sizes[l];
}

/* conv2d_forward, examples [i0, i1): Col rows, Z = Col @ W + b, A = act(Z) */
static void F(conv2d_forward)(const fnn_net *net, F(fnn_ws) *ws, int l, int64_t i0, int64_t i1,
                              int64_t o0, int64_t o1) {
    (void)o0; (void)o1;
    const fnn_layer *ly = &net->layer[l];
    const fnn_conv_geom g = F(conv_geom)(ly);
    REAL *Col = (REAL *)ws->aux[l];
    const int64_t ge = F(conv_group)(&g);
    for (int64_t a = i0; a < i1; a += ge) {
        const int64_t e = i1 - a < ge ? i1 - a : ge;
        for (int64_t i = a; i < a + e; i++)
            F(im2col)(&g, F(conv_in)(net, ws, l, i), Col + i * g.P * g.K);
        F(gemm)(net, 0, 0, (int)(e * g.P), g.CO, (int)g.K, 1, Col + a * g.P * g.K, (int)g.K,
                (const REAL *)ly->W, g.CO, 0, ws->Z[l] + a * g.P * g.CO, g.CO);
    }
    /* bias and activation over the (m P, CO) rows: one bias per channel */
    F(act_forward)(ws->A[l], ws->Z[l], (const REAL *)ly->b, i0 * g.P, i1 * g.P, 0, g.CO, g.CO,
                   ly->act);
}

/* conv2d_backward, examples [i0, i1): D[l-1] = col2im(D[l] @ W^T) */
static void F(conv2d_backward)(const fnn_net *net, F(fnn_ws) *ws, int l, int64_t i0, int64_t i1) {
    const fnn_layer *ly = &net->layer[l];
    const fnn_conv_geom g = F(conv_geom)(ly);
    REAL *dCol = (REAL *)ws->aux[l] + (int64_t)ws->M * g.P * g.K;
    const int64_t ge = F(conv_group)(&g);
    for (int64_t a = i0; a < i1; a += ge) {
        const int64_t e = i1 - a < ge ? i1 - a : ge;
        F(gemm)(net, 0, 1, (int)(e * g.P), (int)g.K, g.CO, 1, ws->D[l] + a * g.P * g.CO, g.CO,
                (const REAL *)ly->W, g.CO, 0, dCol + a * g.P * g.K, (int)g.K);
        for (int64_t i = a; i < a + e; i++)
            F(col2im)(&g, dCol + i * g.P * g.K, ws->D[l - 1] + i * net->sizes[l]);
    }
}

static int F(conv2d_units)(const fnn_net *net, int l) { return net->layer[l].out_shape[2]; }

static size_t F(conv2d_aux)(const fnn_net *net, int l, int M, int training) {
    const fnn_conv_geom g = F(conv_geom)(&net->layer[l]);
    return sizeof(REAL) * (size_t)M * (size_t)g.P * (size_t)g.K * (training ? 2 : 1);
}

/* the channels' bias gradients g[0..nb) = (sum over the rows of D[:, o0 + c]) / m */
static void F(conv2d_bias_grad)(const REAL *D, int64_t rows, int CO, int64_t o0, int nb,
                                double inv_m, REAL *g) {
    for (int c = 0; c < nb; c++) {
        double s = 0;
        for (int64_t r = 0; r < rows; r++) s += D[r * CO + o0 + c];
        g[c] = (REAL)(s * inv_m);
    }
}

/* conv2d_update: channels [o0, o1) over the m examples, fused with the optimizer step */
static void F(conv2d_update)(const fnn_net *net, const fnn_train_cfg *cfg, F(fnn_ws) *ws, int l,
                             int m, double eta, int64_t step, int64_t o0, int64_t o1, int t) {
    (void)t;
    const fnn_layer *ly = &net->layer[l];
    const fnn_conv_geom g = F(conv_geom)(ly);
    const int nb = (int)(o1 - o0), CO = g.CO;
    const int64_t rows = (int64_t)m * g.P;
    const REAL *Col = (const REAL *)ws->aux[l];
    REAL *W = (REAL *)ly->W + o0, *b = (REAL *)ly->b + o0;
    REAL *sW[FNN_MAX_SLOTS], *sb[FNN_MAX_SLOTS];
    for (int q = 0; q < FNN_MAX_SLOTS; q++) {
        sW[q] = cfg->opt.sW[l][q] ? (REAL *)cfg->opt.sW[l][q] + o0 : NULL;
        sb[q] = cfg->opt.sb[l][q] ? (REAL *)cfg->opt.sb[l][q] + o0 : NULL;
    }
    const F(opt_k) k = F(opt_consts)(&cfg->opt, eta, step);
    const double inv_m = 1.0 / m;
    enum { CH = 64 };
    REAL gb[CH];
    for (int c0 = 0; c0 < nb; c0 += CH) {
        const int nc = nb - c0 < CH ? nb - c0 : CH;
        REAL *sbc[FNN_MAX_SLOTS];
        for (int q = 0; q < FNN_MAX_SLOTS; q++) sbc[q] = sb[q] ? sb[q] + c0 : NULL;
        F(conv2d_bias_grad)(ws->D[l], rows, CO, o0 + c0, nc, inv_m, gb);
        F(opt_apply)(&cfg->opt, &k, b + c0, sbc, gb, nc, 1, nc, 0, 0);
    }
    if (F(plain_sgd)(cfg)) {   /* W = (1 - eta lmbda/n) W - (eta/m) Col^T D */
        F(gemm)(net, 1, 0, (int)g.K, nb, (int)rows, (REAL)(-eta * inv_m), Col, (int)g.K,
                ws->D[l] + o0, CO, (REAL)(1 - eta * cfg->lmbda / cfg->reg_n), W, CO);
        return;
    }
    REAL *G = ws->G[l] + o0;
    F(gemm)(net, 1, 0, (int)g.K, nb, (int)rows, (REAL)inv_m, Col, (int)g.K, ws->D[l] + o0, CO, 0,
            G, CO);
    F(opt_apply)(&cfg->opt, &k, W, sW, G, CO, (int)g.K, nb, (REAL)(cfg->lmbda / cfg->reg_n),
                 (REAL)(cfg->l1 / cfg->reg_n));
}

/* conv2d_grad: gW (K, CO) += Col^T @ D, gb += the column sums of D, over m examples */
static void F(conv2d_grad)(const fnn_net *net, F(fnn_ws) *ws, int l, int m, REAL *gW, REAL *gb) {
    const fnn_conv_geom g = F(conv_geom)(&net->layer[l]);
    const int64_t rows = (int64_t)m * g.P;
    F(gemm)(net, 1, 0, (int)g.K, g.CO, (int)rows, 1, (const REAL *)ws->aux[l], (int)g.K, ws->D[l],
            g.CO, 1, gW, g.CO);
    for (int64_t r = 0; r < rows; r++)
        for (int c = 0; c < g.CO; c++) gb[c] += ws->D[l][r * g.CO + c];
}

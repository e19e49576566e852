/* layer_conv2d.h: the conv2d layer kind, direct convolution, channels-last.
 *
 * Input (H, W, C) and output (OH, OW, CO) per example, channels fastest (Keras' layout); the
 * kernel W is (kh, kw, C, CO) row-major, a (K, CO) matrix with K = kh kw C; b is (CO,).
 * geom = {kh, kw, stride_h, stride_w, pad_top, pad_left}: output pixel (oy, ox) sees input rows
 * oy*sh - pt + dy and columns ox*sw - pl + dx, zero outside the input ("valid": no padding;
 * "same": the front door computes Keras' padding).
 *
 * The passes run the register-blocked kernels of kernels_conv.h on each example's input,
 * zero-padded into the layer's buffer (Xp, (Hp, Wp, C): the rows and columns the windows
 * reach) unless the windows never leave the input, when they read it in place:
 *   forward   Z = conv(Xp, Wt) + b, A = act(Z)              Wt: W with CO padded to vectors
 *   backward  D[l-1] = conv(Dp, Wf)                         "full": Dp the deltas padded by
 *             the kernel size less one, Wf the kernel flipped, C and CO swapped (stride 1,
 *             when the padded deltas are not much larger than the output: "same");
 *             otherwise "col": dCol = D Wr (Wr = W^T, (CO, K)) by the same kernels, each
 *             pixel's row of K scattered back onto the input (im2col's transpose, col2im).
 *             A "valid" 5x5 on 12x12 (the book's second layer) reads 144 padded pixels
 *             for 64 outputs: "full" does 2.25 times the products of "col".
 *   update    dW (K, CO) = the sum over the m examples' pixels of their inputs times their
 *             deltas (cgrad), / m; db = the deltas' sums / m; then the optimizer step
 * Threads split the examples in the forward and backward passes and the kernel's rows in the
 * update (each thread reads every example for its rows: no reduction, the same sums whatever
 * the thread count).  Wt and Wf or Wr are refreshed from W by conv2d_prepare before a pass,
 * and by the update for its own rows.
 *
 * ws->aux[l] (conv_aux below): Wt (K, ldr), Wf (kh kw CO, ldr_c, "full") or Wr (CO, ldr_k,
 * "col"), Gt (K, ldr), Gc (K, CO), Xp (M examples), and for training Dp (M examples, "full")
 * or the columns dCol (M x a chunk of pixels, K, "col": each example's rows, worked a chunk
 * at a time by the thread that owns the example). */

#ifndef FNN_CONV_GEOM_DEFINED
#define FNN_CONV_GEOM_DEFINED
typedef struct {
    int H, W, C, OH, OW, CO, kh, kw, sh, sw, pt, pl;
    int Hp, Wp;                 /* the padded input the windows reach */
    int in_place;               /* the windows never leave the input: no padded copy */
    int64_t P, K, XS, DS;       /* pixels, kernel rows, padded input and deltas per example */
    int DHp, DWp;               /* the padded deltas (stride 1) */
    int full;                   /* the backward pass by "full" convolution, else by "col" */
} fnn_conv_geom;
enum { FNN_CONV_CHUNK = 64 };   /* pixels per pointer block */
enum { FNN_MAX_CO_BLOCK = 64 }; /* channels per block of bias gradients */
#endif

static inline fnn_conv_geom F(conv_geom)(const fnn_layer *ly) {
    fnn_conv_geom g;
    g.H = ly->in_shape[0]; g.W = ly->in_shape[1]; g.C = ly->in_shape[2];
    g.OH = ly->out_shape[0]; g.OW = ly->out_shape[1]; g.CO = ly->out_shape[2];
    g.kh = ly->geom[0]; g.kw = ly->geom[1]; g.sh = ly->geom[2]; g.sw = ly->geom[3];
    g.pt = ly->geom[4]; g.pl = ly->geom[5];
    g.P = (int64_t)g.OH * g.OW;
    g.K = (int64_t)g.kh * g.kw * g.C;
    g.Hp = (g.OH - 1) * g.sh + g.kh;
    g.Wp = (g.OW - 1) * g.sw + g.kw;
    g.in_place = g.pt == 0 && g.pl == 0 && g.Hp <= g.H && g.Wp == g.W;
    g.XS = g.in_place ? 0 : (int64_t)g.Hp * g.Wp * g.C;
    g.DHp = g.H + g.kh - 1;
    g.DWp = g.W + g.kw - 1;
    g.DS = (int64_t)g.DHp * g.DWp * g.CO;
    /* "full" multiplies H W kh kw C CO numbers, "col" P kh kw C CO and scatters P K sums:
     * "full" while the input has at most 1.25 times the output's pixels.  The choice hangs on
     * the shapes alone (not the vector width), so every build sums in the same order. */
    g.full = g.sh == 1 && g.sw == 1 && (int64_t)g.H * g.W * 4 <= g.P * 5;
    return g;
}

/* the rows of dCol an example holds: one chunk of pixels at a time */
static inline int64_t F(conv_col_rows)(const fnn_conv_geom *g) {
    return g->P < FNN_CONV_CHUNK ? g->P : FNN_CONV_CHUNK;
}

/* the parts of ws->aux[l], in REALs */
typedef struct {
    REAL *Wt, *Wf, *Wr, *Gt, *Gc, *Xp, *Dp, *dCol;
    int ldr, ldrc, ldrk;
} F(conv_bufs);

static F(conv_bufs) F(conv_aux)(const fnn_conv_geom *g, void *aux, int M, int training,
                                 size_t *bytes) {
    F(conv_bufs) c;
    c.ldr = F(ldr_of)(g->CO);
    c.ldrc = F(ldr_of)(g->C);
    c.ldrk = F(ldr_of)((int)g->K);
    const int full = g->full;
    size_t n[8];
    n[0] = (size_t)g->K * c.ldr;
    n[1] = full ? (size_t)g->kh * g->kw * g->CO * c.ldrc : 0;
    n[2] = full ? 0 : (size_t)g->CO * c.ldrk;
    n[3] = (size_t)g->K * c.ldr;
    n[4] = (size_t)g->K * g->CO;
    n[5] = (size_t)M * g->XS;
    n[6] = training && full ? (size_t)M * g->DS : 0;
    n[7] = training && !full ? (size_t)M * F(conv_col_rows)(g) * g->K : 0;
    REAL *p = (REAL *)aux, **dst[8] = {&c.Wt, &c.Wf, &c.Wr, &c.Gt, &c.Gc, &c.Xp, &c.Dp, &c.dCol};
    size_t total = 0;
    for (int k = 0; k < 8; k++) {
        *dst[k] = n[k] && p ? p + total : NULL;
        total += (n[k] + 15) / 16 * 16;   /* each part on a 64-byte boundary or more */
    }
    if (bytes) *bytes = sizeof(REAL) * total;
    return c;
}

static size_t F(conv2d_aux)(const fnn_net *net, int l, int M, int training) {
    const fnn_conv_geom g = F(conv_geom)(&net->layer[l]);
    size_t bytes;
    F(conv_aux)(&g, NULL, M, training, &bytes);
    return bytes;
}

static inline F(conv_bufs) F(conv_bufs_of)(const fnn_net *net, const F(fnn_ws) *ws, int l,
                                           const fnn_conv_geom *g) {
    return F(conv_aux)(g, ws->aux[l], ws->M, ws->D[0] != NULL, NULL);
}

/* Wt and Wf or Wr from W for the kernel rows [k0, k1) */
static void F(conv_refresh)(const fnn_conv_geom *g, const F(conv_bufs) *b, const REAL *W,
                            int64_t k0, int64_t k1) {
    for (int64_t k = k0; k < k1; k++)
        memcpy(b->Wt + k * b->ldr, W + k * g->CO, sizeof(REAL) * (size_t)g->CO);
    if (b->Wr != NULL)
        for (int co = 0; co < g->CO; co++)
            for (int64_t k = k0; k < k1; k++) b->Wr[co * b->ldrk + k] = W[k * g->CO + co];
    if (b->Wf == NULL) return;
    for (int64_t k = k0; k < k1; k++) {   /* row k of W is (dy, dx, c) */
        const int c = (int)(k % g->C), dx = (int)(k / g->C % g->kw), dy = (int)(k / g->C / g->kw);
        const int64_t r0 = (int64_t)((g->kh - 1 - dy) * g->kw + (g->kw - 1 - dx)) * g->CO;
        for (int co = 0; co < g->CO; co++) b->Wf[(r0 + co) * b->ldrc + c] = W[k * g->CO + co];
    }
}

/* before a pass: Wt and Wf or Wr from W, their padding zero */
static void F(conv2d_prepare)(const fnn_net *net, F(fnn_ws) *ws, int l) {
    const fnn_conv_geom g = F(conv_geom)(&net->layer[l]);
    const F(conv_bufs) b = F(conv_bufs_of)(net, ws, l, &g);
    memset(b.Wt, 0, sizeof(REAL) * (size_t)g.K * b.ldr);
    if (b.Wf) memset(b.Wf, 0, sizeof(REAL) * (size_t)g.kh * g.kw * g.CO * b.ldrc);
    if (b.Wr) memset(b.Wr, 0, sizeof(REAL) * (size_t)g.CO * b.ldrk);
    F(conv_refresh)(&g, &b, (const REAL *)net->layer[l].W, 0, g.K);
}

/* the input of layer l for example i, as given */
static inline const REAL *F(conv_in)(const fnn_net *net, const F(fnn_ws) *ws, int l, int64_t i) {
    return l == 0 ? ws->rows[i] : ws->A[l - 1] + i * net->sizes[l];
}

/* the image the windows of example i read: the input in place, or its padded copy */
static inline const REAL *F(conv_img)(const fnn_net *net, const F(fnn_ws) *ws, int l,
                                      const fnn_conv_geom *g, const F(conv_bufs) *b,
                                      int64_t i) {
    return g->in_place ? F(conv_in)(net, ws, l, i) : b->Xp + i * g->XS;
}

/* pad example i's input into Xp */
static void F(conv_pad)(const fnn_conv_geom *g, const REAL *x, REAL *xp) {
    const int C = g->C;
    memset(xp, 0, sizeof(REAL) * (size_t)g->XS);
    for (int y = 0; y < g->H && y + g->pt < g->Hp; y++) {
        const int x0 = g->pl, n = g->W + g->pl <= g->Wp ? g->W : g->Wp - g->pl;
        memcpy(xp + ((int64_t)(y + g->pt) * g->Wp + x0) * C, x + (int64_t)y * g->W * C,
               sizeof(REAL) * (size_t)n * C);
    }
}


/* the pointers to the windows of output pixels [p0, p0 + np) of an image with rows of
 * `rowlen` numbers (stride sh, sw; C channels) */
static inline void F(conv_ptrs)(const REAL *img, int OW, int sh, int sw, int C, int64_t rowlen,
                                int64_t p0, int np, const REAL **ptr) {
    for (int q = 0; q < np; q++) {
        const int64_t p = p0 + q;
        const int oy = (int)(p / OW), ox = (int)(p % OW);
        ptr[q] = img + (int64_t)oy * sh * rowlen + (int64_t)ox * sw * C;
    }
}

/* conv2d_forward, examples [i0, i1): Z = conv(input, W) + b, A = act(Z) */
static void F(conv2d_forward)(const fnn_net *net, F(fnn_ws) *ws, int l, int64_t i0, int64_t i1,
                              int64_t o0, int64_t o1, int t) {
    (void)o0; (void)o1; (void)t;
    const fnn_layer *ly = &net->layer[l];
    const fnn_conv_geom g = F(conv_geom)(ly);
    const F(conv_bufs) b = F(conv_bufs_of)(net, ws, l, &g);
    const int64_t rowlen = (int64_t)(g.in_place ? g.W : g.Wp) * g.C;
    int64_t seg[64];
    for (int s = 0; s < g.kh && s < 64; s++) seg[s] = s * rowlen;
    const REAL *ptr[FNN_CONV_CHUNK];
    const int half = F(conv_half)(net->conv_half, g.CO);
    for (int64_t i = i0; i < i1; i++) {
        if (!g.in_place) F(conv_pad)(&g, F(conv_in)(net, ws, l, i), b.Xp + i * g.XS);
        const REAL *img = F(conv_img)(net, ws, l, &g, &b, i);
        for (int64_t p0 = 0; p0 < g.P; p0 += FNN_CONV_CHUNK) {
            const int np = (int)(g.P - p0 < FNN_CONV_CHUNK ? g.P - p0 : FNN_CONV_CHUNK);
            F(conv_ptrs)(img, g.OW, g.sh, g.sw, g.C, rowlen, p0, np, ptr);
            F(cfwd_rows)(half, np, ptr, seg, g.kh, g.kw * g.C, b.Wt, b.ldr,
                         ws->Z[l] + (i * g.P + p0) * g.CO, g.CO, g.CO);
        }
    }
    /* bias and activation over the (m P, CO) rows: one bias per channel */
    F(act_forward)(ws->A[l], ws->Z[l], (const REAL *)ly->b, i0 * g.P, i1 * g.P, 0, g.CO, g.CO,
                   ly->act);
}

/* col2im of the output pixels [p0, p0 + np) of one example: dx (H, W, C) += the rows of
 * dcol (np, K) on the inputs their fields cover; pixel after pixel in row-major order, so
 * the chunks of a pass add in the order one pass over all the pixels would */
static void F(col2im)(const fnn_conv_geom *g, const REAL *dcol, int64_t p0, int np, REAL *dx) {
    const int C = g->C;
    for (int q = 0; q < np; q++) {
        const int oy = (int)((p0 + q) / g->OW), ox = (int)((p0 + q) % g->OW);
        const REAL *src = dcol + (int64_t)q * g->K;
        const int x0 = ox * g->sw - g->pl;
        for (int dy = 0; dy < g->kh; dy++) {
            const int y = oy * g->sh - g->pt + dy;
            if (y < 0 || y >= g->H) continue;
            for (int dx_ = 0; dx_ < g->kw; dx_++) {
                const int xx = x0 + dx_;
                if (xx < 0 || xx >= g->W) continue;
                REAL *restrict d = dx + ((int64_t)y * g->W + xx) * C;
                const REAL *restrict s = src + ((int64_t)dy * g->kw + dx_) * C;
                for (int c = 0; c < C; c++) d[c] += s[c];
            }
        }
    }
}

/* conv2d_backward, examples [i0, i1): D[l-1] = dC/d(input) */
static void F(conv2d_backward)(const fnn_net *net, F(fnn_ws) *ws, int l, int64_t i0, int64_t i1) {
    const fnn_layer *ly = &net->layer[l];
    const fnn_conv_geom g = F(conv_geom)(ly);
    const F(conv_bufs) b = F(conv_bufs_of)(net, ws, l, &g);
    const int n_in = net->sizes[l];
    const REAL *ptr[FNN_CONV_CHUNK];
    if (!g.full) {   /* a chunk of pixels' rows of dCol = D Wr, then col2im, chunk by chunk */
        const int64_t zero = 0;
        const int half = F(conv_half)(net->conv_half, (int)g.K);
        for (int64_t i = i0; i < i1; i++) {
            REAL *dcol = b.dCol + i * F(conv_col_rows)(&g) * g.K;   /* example i's rows */
            const REAL *d = ws->D[l] + i * g.P * g.CO;
            REAL *dx = ws->D[l - 1] + i * n_in;
            memset(dx, 0, sizeof(REAL) * (size_t)n_in);
            for (int64_t p0 = 0; p0 < g.P; p0 += FNN_CONV_CHUNK) {
                const int np = (int)(g.P - p0 < FNN_CONV_CHUNK ? g.P - p0 : FNN_CONV_CHUNK);
                for (int q = 0; q < np; q++) ptr[q] = d + (p0 + q) * g.CO;
                F(cfwd_rows)(half, np, ptr, &zero, 1, g.CO, b.Wr, b.ldrk, dcol, (int)g.K,
                             (int)g.K);
                F(col2im)(&g, dcol, p0, np, dx);
            }
        }
        return;
    }
    /* the deltas padded by the kernel size less one (less the forward padding), convolved
     * with the flipped kernel */
    const int top = g.kh - 1 - g.pt, left = g.kw - 1 - g.pl;
    const int64_t rowlen = (int64_t)g.DWp * g.CO;
    int64_t seg[64];
    for (int s = 0; s < g.kh && s < 64; s++) seg[s] = s * rowlen;
    const int64_t HW = (int64_t)g.H * g.W;
    const int half = F(conv_half)(net->conv_half, g.C);
    for (int64_t i = i0; i < i1; i++) {
        REAL *dp = b.Dp + i * g.DS;
        memset(dp, 0, sizeof(REAL) * (size_t)g.DS);
        for (int oy = 0; oy < g.OH; oy++)
            memcpy(dp + ((int64_t)(oy + top) * g.DWp + left) * g.CO,
                   ws->D[l] + (i * g.P + (int64_t)oy * g.OW) * g.CO,
                   sizeof(REAL) * (size_t)g.OW * g.CO);
        for (int64_t p0 = 0; p0 < HW; p0 += FNN_CONV_CHUNK) {
            const int np = (int)(HW - p0 < FNN_CONV_CHUNK ? HW - p0 : FNN_CONV_CHUNK);
            F(conv_ptrs)(dp, g.W, 1, 1, g.CO, rowlen, p0, np, ptr);
            F(cfwd_rows)(half, np, ptr, seg, g.kh, g.kw * g.CO, b.Wf, b.ldrc,
                         ws->D[l - 1] + i * n_in + p0 * g.C, g.C, g.C);
        }
    }
}

/* the update's units: the kernel's rows */
static int F(conv2d_units)(const fnn_net *net, int l) {
    const fnn_layer *ly = &net->layer[l];
    return ly->geom[0] * ly->geom[1] * ly->in_shape[2];
}

/* Gt (K, ldr) rows [k0, k1) = the sum over m examples of inputs times deltas */
static void F(conv_wgrad)(const fnn_net *net, const F(fnn_ws) *ws, int l, const fnn_conv_geom *g,
                          const F(conv_bufs) *b, int m, int64_t k0, int64_t k1) {
    memset(b->Gt + k0 * b->ldr, 0, sizeof(REAL) * (size_t)(k1 - k0) * b->ldr);
    const int64_t rowlen = (int64_t)(g->in_place ? g->W : g->Wp) * g->C;
    int64_t seg[64];
    for (int s = 0; s < g->kh && s < 64; s++) seg[s] = s * rowlen;
    const REAL *ptr[FNN_CONV_CHUNK];
    const int half = F(conv_half)(net->conv_half, g->CO);
    for (int64_t i = 0; i < m; i++) {
        const REAL *img = F(conv_img)(net, ws, l, g, b, i);
        for (int64_t p0 = 0; p0 < g->P; p0 += FNN_CONV_CHUNK) {
            const int np = (int)(g->P - p0 < FNN_CONV_CHUNK ? g->P - p0 : FNN_CONV_CHUNK);
            F(conv_ptrs)(img, g->OW, g->sh, g->sw, g->C, rowlen, p0, np, ptr);
            F(cgrad_rows)(half, np, ptr, seg, g->kw * g->C, ws->D[l] + (i * g->P + p0) * g->CO, g->CO,
                          g->CO, k0, k1, b->Gt, b->ldr);
        }
    }
}

/* the channels' bias gradients g[0..nb) = (sum over the rows of D[:, o0 + c]) / m */
static void F(conv2d_bias_grad)(const REAL *D, int64_t rows, int CO, int64_t o0, int nb,
                                double inv_m, REAL *g) {
    double s[FNN_MAX_CO_BLOCK];   /* row after row: each channel's sum in the rows' order */
    for (int c = 0; c < nb; c++) s[c] = 0;
    for (int64_t r = 0; r < rows; r++) {
        const REAL *restrict d = D + r * CO + o0;
        for (int c = 0; c < nb; c++) s[c] += d[c];
    }
    for (int c = 0; c < nb; c++) g[c] = (REAL)(s[c] * inv_m);
}

/* conv2d_update: the kernel's rows [o0, o1) (and, for the thread that owns row 0, the
 * biases) over the m examples, fused with the optimizer step; then those rows of Wt and Wf
 * follow W */
static void F(conv2d_update)(const fnn_net *net, const fnn_train_cfg *cfg, F(fnn_ws) *ws, int l,
                             int m, double eta, int64_t step, int64_t o0, int64_t o1, int t) {
    (void)t;
    const fnn_layer *ly = &net->layer[l];
    const fnn_conv_geom g = F(conv_geom)(ly);
    const F(conv_bufs) b = F(conv_bufs_of)(net, ws, l, &g);
    const int CO = g.CO;
    F(conv_wgrad)(net, ws, l, &g, &b, m, o0, o1);
    const double inv_m = 1.0 / m;
    for (int64_t k = o0; k < o1; k++)
        for (int c = 0; c < CO; c++) b.Gc[k * CO + c] = (REAL)(b.Gt[k * b.ldr + c] * inv_m);
    REAL *sW[FNN_MAX_SLOTS], *sb[FNN_MAX_SLOTS];
    for (int q = 0; q < FNN_MAX_SLOTS; q++) {
        sW[q] = cfg->opt.sW[l][q] ? (REAL *)cfg->opt.sW[l][q] + o0 * CO : NULL;
        sb[q] = (REAL *)cfg->opt.sb[l][q];
    }
    const F(opt_k) k = F(opt_consts)(&cfg->opt, eta, step);
    if (o0 == 0) {
        REAL gb[FNN_MAX_CO_BLOCK];
        for (int a = 0; a < CO; a += FNN_MAX_CO_BLOCK) {
            const int nc = CO - a < FNN_MAX_CO_BLOCK ? CO - a : FNN_MAX_CO_BLOCK;
            REAL *sbc[FNN_MAX_SLOTS];
            for (int q = 0; q < FNN_MAX_SLOTS; q++) sbc[q] = sb[q] ? sb[q] + a : NULL;
            F(conv2d_bias_grad)(ws->D[l], (int64_t)m * g.P, CO, a, nc, inv_m, gb);
            F(opt_apply)(&cfg->opt, &k, (REAL *)ly->b + a, sbc, gb, nc, nc, 1, nc, 0, 0);
        }
    }
    F(opt_apply)(&cfg->opt, &k, (REAL *)ly->W + o0 * CO, sW, b.Gc + o0 * CO, CO, CO, (int)(o1 - o0),
                 CO, (REAL)(cfg->lmbda / cfg->reg_n), (REAL)(cfg->l1 / cfg->reg_n));
    F(conv_refresh)(&g, &b, (const REAL *)ly->W, o0, o1);
}

/* conv2d_grad: gW (K, CO) += the kernel's gradient summed over m examples, gb += the deltas'
 * sums (fnn_gradient) */
static void F(conv2d_grad)(const fnn_net *net, F(fnn_ws) *ws, int l, int m, REAL *gW, REAL *gb) {
    const fnn_conv_geom g = F(conv_geom)(&net->layer[l]);
    const F(conv_bufs) b = F(conv_bufs_of)(net, ws, l, &g);
    F(conv_wgrad)(net, ws, l, &g, &b, m, 0, g.K);
    for (int64_t k = 0; k < g.K; k++)
        for (int c = 0; c < g.CO; c++) gW[k * g.CO + c] += b.Gt[k * b.ldr + c];
    const int64_t rows = (int64_t)m * g.P;
    for (int64_t r = 0; r < rows; r++)
        for (int c = 0; c < g.CO; c++) gb[c] += ws->D[l][r * g.CO + c];
}

/* activations.h: the activation table's functions (fnn_tables.h, FNN_ACTIVATIONS), and
 * dropout.  Buffers are example-major: row i of an (m, n) block is example i.
 *
 * Each activation `name` is a pair of scalar functions:
 *   F(act_name)(z)     the value a = f(z)
 *   F(dact_name)(z, a) the derivative f'(z), given a = f(z) (cheaper for sigmoid and tanh)
 * act_forward and act_backward are generated from the table; sigmoid also has a vector path
 * and softmax (a whole-row function, output layers only) a row pass. */

static inline REAL F(act_sigmoid)(REAL z) {
    /* never overflows: exp of a non-positive number only; branch-free so loops vectorize */
    REAL e = FNN_R_EXP(-FNN_R_FABS(z));
    REAL r = (REAL)1 / ((REAL)1 + e);
    return z >= 0 ? r : e * r;
}
static inline REAL F(dact_sigmoid)(REAL z, REAL a) { (void)z; return a * ((REAL)1 - a); }

static inline REAL F(act_identity)(REAL z) { return z; }
static inline REAL F(dact_identity)(REAL z, REAL a) { (void)z; (void)a; return 1; }

static inline REAL F(act_tanh)(REAL z) { return FNN_R_TANH(z); }
static inline REAL F(dact_tanh)(REAL z, REAL a) { (void)z; return (REAL)1 - a * a; }

/* relu'(0) = 0 */
static inline REAL F(act_relu)(REAL z) { return z > 0 ? z : 0; }
static inline REAL F(dact_relu)(REAL z, REAL a) { (void)a; return z > 0 ? (REAL)1 : (REAL)0; }

/* softmax: the row pass below normalizes; as an element-wise function it is exp's argument */
static inline REAL F(act_softmax)(REAL z) { return z; }
static inline REAL F(dact_softmax)(REAL z, REAL a) { (void)z; (void)a; return 1; }

/* gelu, exact (Keras 3's default approximate=False): z Phi(z), Phi the normal CDF */
static inline REAL F(act_gelu)(REAL z) {
    return (REAL)0.5 * z * ((REAL)1 + FNN_R_ERF(z * (REAL)0.70710678118654752440));
}
static inline REAL F(dact_gelu)(REAL z, REAL a) {
    (void)a;
    const REAL cdf = (REAL)0.5 * ((REAL)1 + FNN_R_ERF(z * (REAL)0.70710678118654752440));
    const REAL pdf = (REAL)0.39894228040143267794 * FNN_R_EXP((REAL)-0.5 * z * z);
    return cdf + z * pdf;
}

/* silu (swish): z sigmoid(z) */
static inline REAL F(act_silu)(REAL z) { return z * F(act_sigmoid)(z); }
static inline REAL F(dact_silu)(REAL z, REAL a) {
    (void)a;
    const REAL s = F(act_sigmoid)(z);
    return s * ((REAL)1 + z * ((REAL)1 - s));
}

/* elu with alpha 1: z, or e^z - 1 for z <= 0 */
static inline REAL F(act_elu)(REAL z) { return z > 0 ? z : FNN_R_EXPM1(z); }
static inline REAL F(dact_elu)(REAL z, REAL a) {
    (void)a;
    return z > 0 ? (REAL)1 : FNN_R_EXP(z);
}

/* selu: scale * elu with alpha, the constants of Klambauer et al. (as Keras and PyTorch) */
#define FNN_SELU_SCALE 1.0507009873554804934193349852946
#define FNN_SELU_ALPHA 1.6732632423543772848170429916717
static inline REAL F(act_selu)(REAL z) {
    return (REAL)FNN_SELU_SCALE * (z > 0 ? z : (REAL)FNN_SELU_ALPHA * FNN_R_EXPM1(z));
}
static inline REAL F(dact_selu)(REAL z, REAL a) {
    (void)a;
    return (REAL)FNN_SELU_SCALE * (z > 0 ? (REAL)1 : (REAL)FNN_SELU_ALPHA * FNN_R_EXP(z));
}

/* leaky_relu with Keras 3's negative slope 0.2 */
#define FNN_LEAKY_SLOPE 0.2
static inline REAL F(act_leaky_relu)(REAL z) { return z > 0 ? z : (REAL)FNN_LEAKY_SLOPE * z; }
static inline REAL F(dact_leaky_relu)(REAL z, REAL a) {
    (void)a;
    return z > 0 ? (REAL)1 : (REAL)FNN_LEAKY_SLOPE;
}

/* softplus: ln(1 + e^z), as max(z, 0) + ln(1 + e^-|z|) so it never overflows */
static inline REAL F(act_softplus)(REAL z) {
    return (z > 0 ? z : (REAL)0) + FNN_R_LOG1P(FNN_R_EXP(-FNN_R_FABS(z)));
}
static inline REAL F(dact_softplus)(REAL z, REAL a) { (void)a; return F(act_sigmoid)(z); }

/* softmax of one row in place: a = exp(z - max z) / sum */
static inline void F(softmax_row)(REAL *ar, const REAL *zr, int n) {
    REAL zmax = zr[0];
    for (int j = 1; j < n; j++) zmax = zr[j] > zmax ? zr[j] : zmax;
    double s = 0;
    for (int j = 0; j < n; j++) { ar[j] = FNN_R_EXP(zr[j] - zmax); s += ar[j]; }
    const REAL inv = (REAL)(1.0 / s);
    for (int j = 0; j < n; j++) ar[j] *= inv;
}

#ifdef FNN_VEC_SIGMOID
/* The sigmoid's vector path of act_forward and act_forward_sum (below): z = P_0 + ... +
 * P_{np-1} + b, a = sigmoid(z), a vector at a time, the row's tail in a vector padded with
 * zeros; P_u's rows as act_forward_sum describes (in place: P = z's first element). */
static void F(sigmoid_rows)(REAL *a, REAL *z, const REAL *P, int64_t pstride, int np,
                            int64_t ldp, const REAL *b, int64_t i0, int64_t i1, int j0, int j1,
                            int n) {
    for (int64_t i = i0; i < i1; i++) {
        REAL *zr = z + i * n, *ar = a + i * n;
        const REAL *pr = P + (i - i0) * ldp;
        for (int j = j0; j < j1; j += FNN_VL) {
            const int w = j1 - j < FNN_VL ? j1 - j : FNN_VL;
            const REAL *pj = pr + (j - j0);
            F(vec) v = w < FNN_VL ? F(vload_n)(pj, w) : F(vload)(pj);
            for (int u = 1; u < np; u++)
                v += w < FNN_VL ? F(vload_n)(pj + u * pstride, w) : F(vload)(pj + u * pstride);
            v += w < FNN_VL ? F(vload_n)(b + j, w) : F(vload)(b + j);
            if (w < FNN_VL) {
                F(vstore_n)(zr + j, v, w);
                F(vstore_n)(ar + j, F(vsigmoid)(v), w);
            } else {
                F(vstore)(zr + j, v);
                F(vstore)(ar + j, F(vsigmoid)(v));
            }
        }
    }
}
#endif

/* act_forward: z += b, a = act(z) on rows [i0, i1), columns [j0, j1) of (m, n) blocks z and
 * a.  Softmax is taken over whole rows (j0 = 0, j1 = n). */
static void F(act_forward)(REAL *a, REAL *z, const REAL *b, int64_t i0, int64_t i1, int j0,
                           int j1, int n, int act) {
#ifdef FNN_VEC_SIGMOID
    if (act == FNN_ACT_SIGMOID) {
        F(sigmoid_rows)(a, z, z + i0 * n + j0, 0, 1, n, b, i0, i1, j0, j1, n);
        return;
    }
#endif
    for (int64_t i = i0; i < i1; i++) {
        REAL *zr = z + i * n, *ar = a + i * n;
        int j = j0;
        switch (act) {
#define FNN_X(E, name, code, out_only)                                                        \
        case FNN_ACT_##E:                                                                     \
            for (; j < j1; j++) { REAL v = zr[j] + b[j]; zr[j] = v; ar[j] = F(act_##name)(v); } \
            break;
        FNN_ACTIVATIONS(FNN_X)
#undef FNN_X
        default:
            break;
        }
        if (act == FNN_ACT_SOFTMAX) F(softmax_row)(ar, zr, n);
    }
}

/* act_forward from products kept elsewhere: z = P_0 + P_1 + ... + P_{np-1} + b (added in
 * that order), a = act(z), on rows [i0, i1), columns [j0, j1) of the (m, n) blocks z and a.
 * P_u is (i1 - i0, ldp) at P + u * pstride, column j of z at column j - j0 of P: the K
 * split's partial sums (one per block), or the padded products of a transposed kernel.
 * The sigmoid's vector path (sigmoid_rows) reads P, adds and stores z and a in registers:
 * copied into z first, each row's numbers were stored a few at a time and then loaded as
 * whole vectors, loads that wait for the stores to reach the cache (W1's float32 mini-batch
 * on 2 threads: 1.6 thousand cycles of 21 in the copy, the sum and the sigmoid; 0.9 so).
 * The other activations sum into z and go through act_forward. */
static void F(act_forward_sum)(REAL *a, REAL *z, const REAL *P, int64_t pstride, int np,
                               int64_t ldp, const REAL *b, int64_t i0, int64_t i1, int j0,
                               int j1, int n, int act) {
#ifdef FNN_VEC_SIGMOID
    if (act == FNN_ACT_SIGMOID) {
        F(sigmoid_rows)(a, z, P, pstride, np, ldp, b, i0, i1, j0, j1, n);
        return;
    }
#endif
    for (int64_t i = i0; i < i1; i++) {
        REAL *zr = z + i * n;
        const REAL *pr = P + (i - i0) * ldp;
        for (int j = j0; j < j1; j++) {
            REAL s = pr[j - j0];
            for (int u = 1; u < np; u++) s += pr[u * pstride + j - j0];
            zr[j] = s;
        }
    }
    F(act_forward)(a, z, b, i0, i1, j0, j1, n, act);
}

/* act_backward: d *= act'(z) (times the dropout multipliers k when given), rows [i0, i1).
 * Without dropout the derivative takes the stored activation a = act(z); with dropout a was
 * scaled in place, so it is recomputed from z. */
static void F(act_backward)(REAL *d, const REAL *z, const REAL *a, const REAL *k, int64_t i0,
                            int64_t i1, int n, int act) {
    if (act == FNN_ACT_IDENTITY && k == NULL) return;
    /* the rows lie end to end (row stride n): one pass over them all, not a loop and its
     * tail per row (W1's 30-wide hidden layer: ten rows a mini-batch) */
    const int64_t N = (i1 - i0) * (int64_t)n;
    if (N <= 0) return;
    REAL *dr = d + i0 * n;
    const REAL *zr = z + i0 * n, *ar = a + i0 * n;
    const REAL *kr = k ? k + i0 * n : NULL;
    switch (act) {
#define FNN_X(E, name, code, out_only)                                                        \
    case FNN_ACT_##E:                                                                         \
        if (kr == NULL) {                                                                     \
            _Pragma("omp simd")                                                               \
            for (int64_t j = 0; j < N; j++) dr[j] *= F(dact_##name)(zr[j], ar[j]);            \
        } else {                                                                              \
            _Pragma("omp simd")                                                               \
            for (int64_t j = 0; j < N; j++) {                                                 \
                REAL g = dr[j] * F(dact_##name)(zr[j], F(act_##name)(zr[j]));                 \
                dr[j] = g * kr[j];                                                            \
            }                                                                                 \
        }                                                                                     \
        break;
    FNN_ACTIVATIONS(FNN_X)
#undef FNN_X
    default:
        break;
    }
}


/* dropout_forward: dropout on rows [i0, i1), columns [j0, j1) of an (m, n) activation block:
 * k = keep ? 1/(1-p) : 0 (inverted dropout), or keep ? 1 : 0 with `book` (network3's rule),
 * a *= k.  `slot0` is the position in the epoch of row 0. */
static void F(dropout_forward)(REAL *a, REAL *k, int64_t i0, int64_t i1, int j0, int j1, int n,
                               double p, int book, uint64_t seed, int epoch, int64_t slot0,
                               int layer) {
    const REAL keep = book ? (REAL)1 : (REAL)(1.0 / (1.0 - p));
    for (int64_t i = i0; i < i1; i++) {
        REAL *ar = a + i * n, *kr = k + i * n;
        uint64_t slot = ((uint64_t)epoch << 40) ^ (uint64_t)(slot0 + i);
        for (int j = j0; j < j1; j++) {
            double u = fnn_uniform(seed, slot, (uint64_t)layer, (uint64_t)j);
            kr[j] = u < p ? (REAL)0 : keep;
            ar[j] *= kr[j];
        }
    }
}

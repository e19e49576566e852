/* optimizers.h: the optimizer table's steps (fnn_tables.h, FNN_OPTIMIZERS), written once for
 * weights and biases alike.
 *
 * For a mini-batch the gradient of a weight is g = G + (lmbda/n) w + (l1/n) sign(w), G the
 * mean over the batch of dC/dw (biases: g = G, never regularized).  Each optimizer `name` is
 * one element-wise step F(step_name)(w, s, j, g, k): parameter w[j], its state slots s[0][j],
 * s[1][j] ..., and the step's constants k:
 *   sgd       w -= lr g
 *   momentum  v = mu v - lr g; w += v                       (s[0] = v)
 *   adam      m += (1-b1)(g-m); v += (1-b2)(g^2-v); w -= lr_t m / (sqrt(v) + eps),
 *             lr_t = lr sqrt(1-b2^t) / (1-b1^t)              (Keras 3; s = m, v)
 *             m or v below REAL's smallest normal number is stored as 0 (below)
 *   rmsprop   v = rho v + (1-rho) g^2; u = lr g / sqrt(v + eps);
 *             w -= u, or with momentum mu > 0: m = mu m + u; w -= m    (Keras 3; s = v, m)
 *   adagrad   a += g^2; w -= lr g / sqrt(a + eps)            (Keras 3; s = a, which the
 *             front door starts at the initial accumulator value, 0.1)
 * opt_apply runs a step over a block of parameters; the loops come from the table.  Each step
 * reads its numbers into locals before it stores any: the compiler cannot know that w and the
 * slots do not overlap, and otherwise reads each back after the store before it (Adam's loop
 * ran about 1.6x slower so in a test program). */

typedef struct {
    REAL lr, lr_t, mu, c1, c2, rho, crho, eps;
} F(opt_k);

/* the constants of step number `step` (1-based) with learning rate eta */
static inline F(opt_k) F(opt_consts)(const fnn_opt *o, double eta, int64_t step) {
    F(opt_k) k;
    k.lr = (REAL)eta;
    k.lr_t = (REAL)(o->code == FNN_OPT_ADAM
                        ? eta * sqrt(1 - pow(o->beta2, (double)step)) /
                              (1 - pow(o->beta1, (double)step))
                        : eta);
    k.mu = (REAL)o->mu;
    k.c1 = (REAL)(1 - o->beta1);
    k.c2 = (REAL)(1 - o->beta2);
    k.rho = (REAL)o->rho;
    k.crho = (REAL)(1 - o->rho);
    k.eps = (REAL)o->eps;
    return k;
}

#define FNN_STEP(name)                                                                       \
    FNN_INLINE void F(step_##name)(REAL *w, REAL *const *s, int64_t j, REAL g,               \
                                   const F(opt_k) *k)
FNN_STEP(sgd) {
    (void)s;
    w[j] = w[j] - k->lr * g;
}
FNN_STEP(momentum) {
    const REAL v = k->mu * s[0][j] - k->lr * g, w0 = w[j];
    s[0][j] = v;
    w[j] = w0 + v;
}
/* Adam's moments go to 0 from below the smallest normal number.  A weight whose gradient has
 * stopped (a ReLU unit that no example turns on) keeps m decaying by b1 a step through the
 * subnormal range, and the divide of a subnormal costs the core much more: on Fashion-MNIST
 * 9-10 % of W2's first-layer m were subnormal, and the epoch ran 0.22-0.25 s against
 * 0.18-0.21 s with them flushed (2 threads, Zen 4).  What the flush leaves out of a step is
 * under FLT_MIN lr_t / eps, about 1e-34 for Keras' defaults: it moves no weight above about
 * 1e-27 in size (TensorFlow runs its CPU threads with flush-to-zero set: every subnormal). */
FNN_STEP(adam) {
    const REAL m0 = s[0][j], v0 = s[1][j], w0 = w[j];
    const REAL tiny = sizeof(REAL) == sizeof(float) ? (REAL)FLT_MIN : (REAL)DBL_MIN;
    const REAL m1 = m0 + k->c1 * (g - m0), v1 = v0 + k->c2 * (g * g - v0);
    const REAL m = FNN_R_FABS(m1) < tiny ? 0 : m1, v = v1 < tiny ? 0 : v1;
    s[0][j] = m;
    s[1][j] = v;
    w[j] = w0 - k->lr_t * m / (FNN_R_SQRT(v) + k->eps);
}
FNN_STEP(rmsprop) {
    const REAL v = k->rho * s[0][j] + k->crho * (g * g), w0 = w[j];
    const REAL m0 = k->mu > 0 ? s[1][j] : 0;
    s[0][j] = v;
    const REAL u = k->lr * g / FNN_R_SQRT(v + k->eps);
    if (k->mu > 0) {
        const REAL m = k->mu * m0 + u;
        s[1][j] = m;
        w[j] = w0 - m;
    } else {
        w[j] = w0 - u;
    }
}
FNN_STEP(adagrad) {
    const REAL a = s[0][j] + g * g, w0 = w[j];
    s[0][j] = a;
    w[j] = w0 - k->lr * g / FNN_R_SQRT(a + k->eps);
}
#undef FNN_STEP

/* The step on R rows of K entries (row stride ldw) of parameters W, their state slots S[q]
 * (the same layout) and mean gradients G (row stride ldg); cwd = lmbda/n and cl1 = l1/n (0
 * for biases). */
static void F(opt_apply)(const fnn_opt *o, const F(opt_k) *k, REAL *W, REAL *const *S,
                         const REAL *G, int64_t ldw, int64_t ldg, int R, int K, REAL cwd,
                         REAL cl1) {
    const int reg = cwd != 0 || cl1 != 0, ns = fnn_opt_slots(o->code);
    for (int r = 0; r < R; r++) {
        const int64_t off = (int64_t)r * ldw;
        REAL *w = W + off;
        const REAL *gr = G + (int64_t)r * ldg;
        REAL *s[FNN_MAX_SLOTS + 1] = {0};
        for (int q = 0; q < ns; q++) s[q] = S[q] + off;
        switch (o->code) {
#define FNN_X(E, name, code, slots)                                                           \
        case FNN_OPT_##E:                                                                     \
            if (reg) {                                                                        \
                _Pragma("omp simd")                                                           \
                for (int j = 0; j < K; j++) {                                                 \
                    const REAL wj = w[j];                                                     \
                    F(step_##name)(w, s, j, gr[j] + cwd * wj + cl1 * (REAL)((wj > 0) - (wj < 0)), k); \
                }                                                                             \
            } else {                                                                          \
                _Pragma("omp simd")                                                           \
                for (int j = 0; j < K; j++) F(step_##name)(w, s, j, gr[j], k);                \
            }                                                                                 \
            break;
        FNN_OPTIMIZERS(FNN_X)
#undef FNN_X
        default:
            break;
        }
    }
}

/* Plain SGD (no L1) folds into the product: W = (1 - eta lmbda/n) W - (eta/m) (D^T in).
 * Otherwise the product forms the mean gradient G = D^T in / m and opt_apply follows. */
static int F(plain_sgd)(const fnn_train_cfg *cfg) {
    return cfg->opt.code == FNN_OPT_SGD && cfg->l1 == 0;
}

/* fnn_tables.h: every table of the engine, defined once.
 *
 * Each table is an X-macro: a list of X(...) rows.  The C enums below, the Cython constants
 * and name dictionaries (fastnn/_engine.pyx reads the arrays at the end of this file), and the
 * GPU backend's codes (fastnn/backends/xp.py passes them to the CUDA source as -D options)
 * all come from these rows, so a code is never written twice.
 *
 * Adding a row here is one step of adding a thing; DESIGN.md lists the others (the C kernel,
 * the numpy oracle, the xp backend, a test parameter).
 */
#ifndef FNN_TABLES_H
#define FNN_TABLES_H

/* Activations: X(ENUM, name, code, output_only).  output_only: a whole-row function
 * (softmax) that only an output layer may have. */
#define FNN_ACTIVATIONS(X)             \
    X(IDENTITY,   identity,   0, 0)    \
    X(SIGMOID,    sigmoid,    1, 0)    \
    X(TANH,       tanh,       2, 0)    \
    X(RELU,       relu,       3, 0)    \
    X(SOFTMAX,    softmax,    4, 1)    \
    X(GELU,       gelu,       5, 0)    \
    X(SILU,       silu,       6, 0)    \
    X(ELU,        elu,        7, 0)    \
    X(SELU,       selu,       8, 0)    \
    X(LEAKY_RELU, leaky_relu, 9, 0)    \
    X(SOFTPLUS,   softplus,   10, 0)

/* Costs: X(ENUM, name, code). */
#define FNN_COSTS(X)                       \
    X(QUADRATIC,      quadratic,      0)   \
    X(CROSS_ENTROPY,  cross_entropy,  1)   \
    X(LOG_LIKELIHOOD, log_likelihood, 2)

/* Optimizers: X(ENUM, name, code, state slots).  Each slot is one array shaped like the
 * parameters (velocity, Adam's m and v, ...). */
#define FNN_OPTIMIZERS(X)           \
    X(SGD,      sgd,      0, 0)     \
    X(MOMENTUM, momentum, 1, 1)     \
    X(ADAM,     adam,     2, 2)     \
    X(RMSPROP,  rmsprop,  3, 2)     \
    X(ADAGRAD,  adagrad,  4, 1)
#define FNN_MAX_SLOTS 2

/* Layer kinds: X(ENUM, name, code).  Each has a file layer_<name>.h (layers.h says what it
 * defines). */
#define FNN_LAYER_KINDS(X)          \
    X(DENSE,     dense,     0)      \
    X(CONV2D,    conv2d,    1)      \
    X(MAXPOOL2D, maxpool2d, 2)      \
    X(FLATTEN,   flatten,   3)

/* Return codes of the entry points: X(ENUM, name, code). */
#define FNN_STATUSES(X)                   \
    X(OK,             ok,             0)  \
    X(STOPPED,        stopped,        1)  \
    X(INTERRUPTED,    interrupted,    2)  \
    X(DIVERGED,       diverged,       3)  \
    X(CALLBACK_ERROR, callback_error, 4)  \
    X(NOMEM,          nomem,          -1)

/* the enums: FNN_ACT_SIGMOID, FNN_COST_QUADRATIC, FNN_OPT_ADAM, FNN_LAYER_DENSE, FNN_OK ... */
#define FNN_X_ACT(E, n, c, o) FNN_ACT_##E = c,
#define FNN_X_COST(E, n, c) FNN_COST_##E = c,
#define FNN_X_OPT(E, n, c, s) FNN_OPT_##E = c,
#define FNN_X_KIND(E, n, c) FNN_LAYER_##E = c,
#define FNN_X_STATUS(E, n, c) FNN_##E = c,
enum { FNN_ACTIVATIONS(FNN_X_ACT) FNN_N_ACT_ROWS_ };
enum { FNN_COSTS(FNN_X_COST) FNN_N_COST_ROWS_ };
enum { FNN_OPTIMIZERS(FNN_X_OPT) FNN_N_OPT_ROWS_ };
enum { FNN_LAYER_KINDS(FNN_X_KIND) FNN_N_KIND_ROWS_ };
enum { FNN_STATUSES(FNN_X_STATUS) FNN_N_STATUS_ROWS_ };
#undef FNN_X_ACT
#undef FNN_X_COST
#undef FNN_X_OPT
#undef FNN_X_KIND
#undef FNN_X_STATUS

/* the rows as data, for the Cython layer: name, code and one flag (output_only for
 * activations, state slots for optimizers, 0 otherwise) */
typedef struct {
    const char *name;
    int code;
    int flag;
} fnn_table_row;

#define FNN_ROW4(E, n, c, f) {#n, c, f},
#define FNN_ROW3(E, n, c) {#n, c, 0},
static const fnn_table_row fnn_act_rows[] = {FNN_ACTIVATIONS(FNN_ROW4) {0, 0, 0}};
static const fnn_table_row fnn_cost_rows[] = {FNN_COSTS(FNN_ROW3) {0, 0, 0}};
static const fnn_table_row fnn_opt_rows[] = {FNN_OPTIMIZERS(FNN_ROW4) {0, 0, 0}};
static const fnn_table_row fnn_kind_rows[] = {FNN_LAYER_KINDS(FNN_ROW3) {0, 0, 0}};
static const fnn_table_row fnn_status_rows[] = {FNN_STATUSES(FNN_ROW3) {0, 0, 0}};
#undef FNN_ROW4
#undef FNN_ROW3

/* the number of rows, and the one past the largest code (codes are 0..n-1 for all but the
 * return codes) */
#define FNN_N_ACT ((int)(sizeof(fnn_act_rows) / sizeof(fnn_act_rows[0]) - 1))
#define FNN_N_COST ((int)(sizeof(fnn_cost_rows) / sizeof(fnn_cost_rows[0]) - 1))
#define FNN_N_OPT ((int)(sizeof(fnn_opt_rows) / sizeof(fnn_opt_rows[0]) - 1))
#define FNN_N_KIND ((int)(sizeof(fnn_kind_rows) / sizeof(fnn_kind_rows[0]) - 1))

static inline int fnn_opt_slots(int opt) {
    return (opt >= 0 && opt < FNN_N_OPT) ? fnn_opt_rows[opt].flag : 0;
}

#endif /* FNN_TABLES_H */

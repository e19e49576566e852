/* fastnn.h: the one public header of the C engine.
 *
 * The engine trains a feedforward network for a whole SGD/fit call without the GIL: every
 * epoch's mini-batches (forward, backward, update) and the per-epoch evaluation.  The front
 * doors (network, network2, Sequential, the estimators) differ only in the tables they pass:
 * layer kinds, activation codes, cost code, optimizer code (fnn_tables.h).
 *
 * A network is a sequence of layers (fnn_layer): each has a kind, an activation, an input and
 * an output shape, and its parameters.  Dense: W is (n_out, n_in) row-major (Nielsen's (y, x)),
 * b is (n_out,).  Data X is (n, n_in) row-major and targets Y (n, n_out).  Inside a mini-batch
 * the activations are example-major, (m, n_l): row i is example i.
 *
 * The kernels are written once, for a type REAL, in the files engine.h includes, and
 * instantiated twice below: REAL = double (names end in _f64) and REAL = float (_f32); the
 * Cython layer dispatches on its fused `floating` type.  setup.py compiles them once per CPU
 * level (level.c, dispatch.h).  DESIGN.md maps the files.
 */
#ifndef FASTNN_H
#define FASTNN_H

#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(__AVX512F__) || defined(__AVX__)
#include <immintrin.h>
#endif
#if defined(_WIN32)
#include <malloc.h>
#endif

#ifdef FASTNN_HAVE_OPENMP
#include <omp.h>
#endif

#include "fnn_tables.h"

#define FNN_MAX_LAYERS 32

/* Tuning, in multiply-adds of one GEMM: below FNN_BLAS_MIN the plain C kernel is used (a BLAS
 * call costs more than it saves), below FNN_PAR_MIN a phase runs on thread 0 alone. */
#ifndef FNN_BLAS_MIN
#define FNN_BLAS_MIN 512.0
#endif
#ifndef FNN_PAR_MIN
#define FNN_PAR_MIN 16384.0
#endif
/* the most fixed blocks the K split cuts the first layer's inputs into (path_ksplit.h), and
 * the rows path its examples and neurons (fnn_net.blocks) */
#ifndef FNN_KSPLIT_MAX_BLOCKS
#define FNN_KSPLIT_MAX_BLOCKS 8
#endif
/* how many mini-batches ahead the gather prefetches the shuffled rows */
#ifndef FNN_PREFETCH_BATCHES
#define FNN_PREFETCH_BATCHES 2
#endif
/* The small-batch kernels (kernels_rows.h, kernels_t.h) take the dense layers whose calls have at
 * most FNN_SMALL_M examples; larger calls go to our own register tiles (layer_dense.h:
 * forward_tiles, backward_tiles, update_fused), or to BLAS in builds without vector types.
 * The evaluation chunks' blocks (FNN_EVAL_BATCH examples shared by the threads) are above
 * it: BLAS ran them 1.5-2x faster than the small-batch kernels, which re-read the examples
 * for every pair of neurons (the tiles take them now).  Their first layer, up to
 * FNN_EVALT_MAXN neurons, goes to the transposed kernels instead (evaluate.h, forward_eval). */
#ifndef FNN_SMALL_M
#define FNN_SMALL_M 64
#endif
/* Their vector width in bytes, from the instruction set the build targets, and the most
 * examples one register block holds (two weight rows times FNN_GMAX examples of
 * accumulators, so that they fit the register file: 32 registers with AVX-512, else 16). */
#if defined(__AVX512F__)
#define FNN_VBYTES 64
#define FNN_GMAX 12
#elif defined(__AVX__)
#define FNN_VBYTES 32
#define FNN_GMAX 6
#else
#define FNN_VBYTES 16
#define FNN_GMAX 6
#endif
/* The dense update of larger mini-batches (layer_dense.h, update_fused): a tile of FNN_UMR
 * neurons times FNN_UNV vectors of inputs in accumulators (6 x 4 = 24 of AVX-512's 32
 * registers; 6 x 2 = 12 of 16); FNN_UNR, the inputs of a tile (a panel's width), in REALs */
#define FNN_UMR 6
#if FNN_VBYTES >= 64
#define FNN_UNV 4
#else
#define FNN_UNV 2
#endif
#define FNN_UNR ((int)(FNN_UNV * FNN_VBYTES / sizeof(REAL)))
/* up to FNN_FUSED_MAX_M examples a call: it copies a mini-batch of the layer's inputs, one
 * per thread, so a call of whole-epoch batches goes to BLAS instead */
#ifndef FNN_FUSED_MAX_M
#define FNN_FUSED_MAX_M 1024
#endif
#if defined(__GNUC__)
#define FNN_INLINE static inline __attribute__((always_inline))
#else
#define FNN_INLINE static inline
#endif
/* the locality hint of those prefetches (1: into L2, not L1, which holds the rows in use;
 * measured 3-5 % faster on W1 than 3 on Zen 4) and the bytes apart they are
 * issued (the hardware streams the lines between) */
#ifndef FNN_PF_HINT
#define FNN_PF_HINT 1
#endif
#ifndef FNN_PF_STEP
#define FNN_PF_STEP 64
#endif
/* examples per chunk when evaluating or predicting */
#ifndef FNN_EVAL_BATCH
#define FNN_EVAL_BATCH 256
#endif
/* the same for networks with layers that keep per-example buffers (conv2d's columns): fewer
 * examples, so those buffers stay small */
#ifndef FNN_EVAL_BATCH_AUX
#define FNN_EVAL_BATCH_AUX 32
#endif

/* what to evaluate at the end of each epoch */
/* (FNN_MON_RUN: the running cost and hits of the training mini-batches, before each update;
 * only the Keras front door reports them, and the cost's logarithms are not free) */
enum { FNN_MON_TRAIN = 1, FNN_MON_EVAL = 2, FNN_MON_RUN = 4 };

/* the Fortran BLAS gemm, as scipy.linalg.cython_blas exposes it */
typedef void (*fnn_dgemm_t)(char *, char *, int *, int *, int *, double *, double *, int *,
                            double *, int *, double *, double *, int *);
typedef void (*fnn_sgemm_t)(char *, char *, int *, int *, int *, float *, float *, int *,
                            float *, int *, float *, float *, int *);

/* One layer.  The shapes are (height, width, channels), the order of the activations in
 * memory (channels-last, as Keras): a dense layer's are (1, 1, n).  The Cython layer fills
 * kind, act, the shapes, geom, W, b and the dropout; fnn_net_finish derives the rest.
 *   dense      W (n_out, n_in), b (n_out,)
 *   conv2d     W (kh, kw, c_in, c_out) (Keras' kernel layout), b (c_out,);
 *              geom = {kh, kw, stride_h, stride_w, pad_top, pad_left}
 *   maxpool2d  no parameters; geom = {ph, pw, stride_h, stride_w}; borders ignored
 *   flatten    no parameters: the same numbers, a new shape */
typedef struct {
    int kind;                       /* FNN_LAYER_* */
    int act;                        /* FNN_ACT_* applied to the layer's output */
    int in_shape[3], out_shape[3];
    int geom[8];                    /* the kind's own integers */
    void *W, *b;                    /* parameters, or NULL */
    double dropout;                 /* dropout on this layer's output while training (0: the
                                     * call's dropout, if this is a hidden layer) */
    int drop_book;                  /* 1: the book's network3 rule (mask k in {0, 1} while
                                     * training, outputs times 1 - p otherwise); 0: inverted
                                     * dropout (k in {0, 1/(1-p)}, nothing otherwise) */
    int n_in, n_out;                /* derived: the products of the shapes */
    int64_t n_w, n_b;               /* derived: the parameters' sizes */
} fnn_layer;

typedef struct {
    int L;                          /* number of layers */
    fnn_layer layer[FNN_MAX_LAYERS];
    int sizes[FNN_MAX_LAYERS + 1];  /* derived: flat activation sizes, input first:
                                     * sizes[l] = layer[l].n_in, sizes[L] = layer[L-1].n_out */
    int cost;                       /* FNN_COST_* */
    double cost_scale;              /* multiplies cost and output delta */
    void *gemm;                     /* fnn_dgemm_t or fnn_sgemm_t, or NULL: C kernels only */
    int n_threads;
    int blocks;                     /* the fixed parts that the rows path and the forward-only
                                     * passes cut their BLAS calls into (path_rows.h,
                                     * evaluate.h): 1 to FNN_KSPLIT_MAX_BLOCKS, the same for
                                     * every call of a process, whatever its thread count, so
                                     * that the results do not depend on it; the Python layer
                                     * gives the K split's number (ksplit_blocks); read it
                                     * through fnn_blocks */
    int conv_half;                  /* 1: the conv kernels may take 256-bit vectors beside
                                     * AVX-512's where they leave fewer lanes idle
                                     * (kernels_conv.h, conv_half); the Python layer sets it
                                     * for CPUs that split 512-bit FMAs in two */
} fnn_net;

/* the element type of a row source (fnn_data.rows), whatever the engine's REAL is */
enum { FNN_ROWS_F64 = 0, FNN_ROWS_F32 = 1 };

/* A data set: the inputs as one matrix X, or as n separate rows read where they are
 * (Nielsen's list of (n_in, 1) columns: no copy of the whole set); the targets Y always one
 * matrix.  The gather (workspace.h) reads either, converting a row source's numbers to REAL
 * where its type is the other one. */
typedef struct {
    const void *X;                  /* (n, n_in); unused when `rows` is set */
    const void *Y;                  /* (n, n_out) */
    int64_t n;
    const void *const *rows;        /* NULL, or (n) pointers to each example's n_in
                                     * contiguous numbers, of rows_type */
    int rows_type;                  /* FNN_ROWS_F64 or FNN_ROWS_F32 */
} fnn_data;

typedef struct {
    int epoch;                      /* 0-based */
    int stop;                       /* out: the callback sets 1 to stop training */
    double eta;                     /* in/out: the callback may change the learning rate */
    int64_t batches;                /* mini-batches run in this epoch */
    double run_cost; int64_t run_correct; int64_t run_n;   /* FNN_MON_RUN, during training */
    double train_cost; int64_t train_correct;              /* FNN_MON_TRAIN, after the epoch */
    double eval_cost; int64_t eval_correct;                /* FNN_MON_EVAL, after the epoch */
    double sum_w2, sum_w1;          /* sum of w^2 and |w| over all weights, after the epoch */
    double threads;                 /* threads per mini-batch, on average (team.h) */
    double wait_frac;               /* the share of the threads' time spent at the barrier */
} fnn_epoch_stats;

/* What a forward pass is for: training (dropout masks drawn from (seed, epoch, example slot
 * slot0 + i, layer, unit)) or a forward-only pass (evaluation, prediction). */
typedef struct {
    int training;
    double dropout;                 /* the call's dropout on hidden layers */
    uint64_t seed;
    int epoch;
    int64_t slot0;                  /* the position in the epoch of the block's row 0 */
} fnn_pass;

typedef int (*fnn_epoch_cb)(void *ctx, fnn_epoch_stats *st);  /* 0: go on; else error */
typedef int (*fnn_check_cb)(void *ctx);                       /* nonzero: interrupted */

/* The optimizer: its code, hyperparameters and state.  State slot k of layer l is an array
 * shaped like that layer's W (sW) or b (sb); fnn_opt_slots(code) slots are used
 * (optimizers.h has the rules). */
typedef struct {
    int code;                       /* FNN_OPT_* */
    double mu;                      /* momentum: SGD's, and RMSprop's when > 0 */
    double beta1, beta2;            /* Adam */
    double rho;                     /* RMSprop */
    double eps;                     /* Adam, RMSprop, Adagrad */
    int64_t t;                      /* in/out: the steps taken (Adam's bias correction) */
    void *sW[FNN_MAX_LAYERS][FNN_MAX_SLOTS];
    void *sb[FNN_MAX_LAYERS][FNN_MAX_SLOTS];
} fnn_opt;

typedef struct {
    int epochs, batch;
    double eta, lmbda, l1, reg_n;   /* reg_n: the n in lmbda/n */
    fnn_opt opt;
    double dropout;
    uint64_t seed;
    const int32_t *orders;          /* (epochs, n) example order per epoch, or NULL */
    fnn_data train, eval;
    int monitor;                    /* FNN_MON_* bits */
    fnn_epoch_cb on_epoch;
    fnn_check_cb check;
    void *ctx;
    int check_every;                /* mini-batches between interrupt checks */
    int diverged_epoch;             /* out */
    int epochs_done;                /* out */
    int path;                       /* in: FNN_PATH_AUTO, or a path to take where it
                                     * applies (tests); out: the path taken */
    int64_t *progress;              /* out, or NULL: [0] the epoch running, [1] mini-batches
                                     * done in it, [2..4] running statistics (train.h,
                                     * publish); thread 0 stores them (atomics) as it goes,
                                     * for a progress bar read from another thread */
    int progress_n;                 /* its length */
    int ksplit_blocks;              /* the K split's fixed blocks (1 to FNN_KSPLIT_MAX_BLOCKS):
                                     * the same for every call of a process, whatever its
                                     * thread count, so that the results do not depend on it;
                                     * the Python layer gives the usable CPUs, at most 8 */
    int adapt;                      /* team.h: 0 every mini-batch on n_threads threads; 1 on
                                     * as many as pay, chunk by chunk (the default count);
                                     * 2 tests: a different team every 3 mini-batches */
    double threads;                 /* out: threads per mini-batch over the call, on average */
} fnn_train_cfg;

/* how fnn_train runs each mini-batch: on one thread (path_rows.h), split by examples and
 * neurons among the threads (path_rows.h), or with W[0] transposed and split by inputs
 * (path_ksplit.h, on one thread or more) */
enum { FNN_PATH_AUTO = -1, FNN_PATH_SERIAL = 0, FNN_PATH_ROWS = 1, FNN_PATH_KSPLIT = 2 };

#include "runtime.h"
#include "team.h"

/* the net's fixed blocks: a caller that leaves them unset or out of range (the C self-test)
 * gets 2, as the K split does */
static inline int fnn_blocks(const fnn_net *net) {
    return net->blocks >= 1 && net->blocks <= FNN_KSPLIT_MAX_BLOCKS ? net->blocks : 2;
}

/* Derive the sizes of every layer and check that the layers chain; 0 when they do, else the
 * index + 1 of the first layer that does not (the Cython layer has checked each one). */
static inline int fnn_net_finish(fnn_net *net) {
    if (net->L < 1 || net->L > FNN_MAX_LAYERS) return -1;
    for (int l = 0; l < net->L; l++) {
        fnn_layer *ly = &net->layer[l];
        ly->n_in = ly->in_shape[0] * ly->in_shape[1] * ly->in_shape[2];
        ly->n_out = ly->out_shape[0] * ly->out_shape[1] * ly->out_shape[2];
        const int *g = ly->geom, *is = ly->in_shape, *os = ly->out_shape;
        if (ly->n_in < 1 || ly->n_out < 1 || ly->dropout < 0 || ly->dropout >= 1) return l + 1;
        switch (ly->kind) {
        case FNN_LAYER_DENSE:
            ly->n_w = (int64_t)ly->n_out * ly->n_in;
            ly->n_b = ly->n_out;
            break;
        case FNN_LAYER_CONV2D:
            /* every window starts inside the padded input and ends inside the input plus the
             * bottom/right padding, which is at most the kernel size less one */
            if (g[0] < 1 || g[1] < 1 || g[2] < 1 || g[3] < 1 || g[4] < 0 || g[5] < 0 ||
                g[0] > 64 ||
                g[4] >= g[0] || g[5] >= g[1] ||
                (os[0] - 1) * g[2] - g[4] > is[0] - 1 || (os[1] - 1) * g[3] - g[5] > is[1] - 1 ||
                (os[0] - 1) * g[2] - g[4] + g[0] > is[0] + g[0] - 1 ||
                (os[1] - 1) * g[3] - g[5] + g[1] > is[1] + g[1] - 1)
                return l + 1;
            ly->n_w = (int64_t)g[0] * g[1] * is[2] * os[2];
            ly->n_b = os[2];
            break;
        case FNN_LAYER_MAXPOOL2D:
            if (g[0] < 1 || g[1] < 1 || g[2] < 1 || g[3] < 1 || os[2] != is[2] ||
                (os[0] - 1) * g[2] + g[0] > is[0] || (os[1] - 1) * g[3] + g[1] > is[1])
                return l + 1;
            ly->n_w = ly->n_b = 0;
            break;
        case FNN_LAYER_FLATTEN:
            if (ly->n_in != ly->n_out) return l + 1;
            ly->n_w = ly->n_b = 0;
            break;
        default:
            return l + 1;
        }
        if (l > 0 && ly->n_in != net->layer[l - 1].n_out) return l + 1;
        net->sizes[l] = ly->n_in;
        net->sizes[l + 1] = ly->n_out;
    }
    return 0;
}

/* ---- instantiate the kernels for double and float ---- */
/* (not in the dispatcher's translation unit, FNN_API_ONLY: it reaches them through the
 * table of the CPU level it picks, dispatch.h) */
#ifndef FNN_API_ONLY
#define REAL double
#define FNN_RBYTES 8
#define FNN_IREAL int64_t
#define FNN_SUFFIX(name) name##_f64
#define FNN_GEMM_T fnn_dgemm_t
#include "engine.h"
#undef REAL
#undef FNN_RBYTES
#undef FNN_IREAL
#undef FNN_SUFFIX
#undef FNN_GEMM_T

#define REAL float
#define FNN_RBYTES 4
#define FNN_IREAL int32_t
#define FNN_SUFFIX(name) name##_f32
#define FNN_GEMM_T fnn_sgemm_t
#include "engine.h"
#undef REAL
#undef FNN_RBYTES
#undef FNN_IREAL
#undef FNN_SUFFIX
#undef FNN_GEMM_T
#endif /* !FNN_API_ONLY */

#endif /* FASTNN_H */

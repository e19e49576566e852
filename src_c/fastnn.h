/* fastnn.h: the one header of the C engine.
 *
 * The engine trains a feedforward network for a whole SGD/fit call without the GIL: every
 * epoch's mini-batches (forward, backward, update) and the per-epoch evaluation.  The front
 * doors (network, network2, Sequential, the estimators) differ only in the tables they pass:
 * activation codes, cost code, optimizer code.
 *
 * The kernels are written once in fastnn_engine_impl.h and instantiated twice below, with
 * REAL = double (suffix _f64) and REAL = float (suffix _f32); the Cython layer dispatches on
 * its fused `floating` type.
 *
 * Layout: W[l] is (n_out, n_in) row-major (Nielsen's (y, x)), b[l] is (n_out,).  Data X is
 * (n, n_in) row-major and targets Y (n, n_out).  Inside a mini-batch of m examples the
 * activations are kept feature-major, (n_l, m), so each thread owns whole rows.
 */
#ifndef FASTNN_H
#define FASTNN_H

#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__AVX512F__) || defined(__AVX__)
#include <immintrin.h>
#endif
#if defined(_WIN32)
#include <malloc.h>
#endif

#ifdef FASTNN_HAVE_OPENMP
#include <omp.h>
#endif

#define FNN_MAX_LAYERS 32

/* Tuning, in multiply-adds of one GEMM: below FNN_BLAS_MIN the plain C kernel is used (a BLAS
 * call costs more than it saves), below FNN_PAR_MIN a phase runs on thread 0 alone. */
#ifndef FNN_BLAS_MIN
#define FNN_BLAS_MIN 512.0
#endif
#ifndef FNN_PAR_MIN
#define FNN_PAR_MIN 16384.0
#endif
/* how many mini-batches ahead the gather prefetches the shuffled rows */
#ifndef FNN_PREFETCH_BATCHES
#define FNN_PREFETCH_BATCHES 2
#endif
/* The small-batch kernels (fastnn_engine_impl.h) take the dense layers whose calls have at
 * most FNN_SMALL_M examples; larger calls go to BLAS.  The evaluation chunks (FNN_EVAL_BATCH
 * examples shared by the threads) are above it: BLAS runs them 1.5-2x faster than the
 * small-batch kernels, which re-read the examples for every pair of neurons.  Their first
 * layer, up to FNN_EVALT_MAXN neurons, goes to the transposed kernels instead
 * (fastnn_engine_impl.h, forward_eval), faster than both. */
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

/* activation table */
enum { FNN_IDENTITY = 0, FNN_SIGMOID = 1, FNN_TANH = 2, FNN_RELU = 3, FNN_SOFTMAX = 4, FNN_N_ACT };
/* cost table */
enum { FNN_QUADRATIC = 0, FNN_CROSS_ENTROPY = 1, FNN_LOG_LIKELIHOOD = 2, FNN_N_COST };
/* optimizer table */
enum { FNN_SGD = 0, FNN_MOMENTUM = 1, FNN_ADAM = 2, FNN_N_OPT };
/* what to evaluate at the end of each epoch */
/* (FNN_MON_RUN: the running cost and hits of the training mini-batches, before each update;
 * only the Keras front door reports them, and the cost's logarithms are not free) */
enum { FNN_MON_TRAIN = 1, FNN_MON_EVAL = 2, FNN_MON_RUN = 4 };
/* return codes of fnn_train_* */
enum {
    FNN_OK = 0, FNN_STOPPED = 1, FNN_INTERRUPTED = 2, FNN_DIVERGED = 3,
    FNN_CALLBACK_ERROR = 4, FNN_NOMEM = -1
};

/* the Fortran BLAS gemm, as scipy.linalg.cython_blas exposes it */
typedef void (*fnn_dgemm_t)(char *, char *, int *, int *, int *, double *, double *, int *,
                            double *, int *, double *, double *, int *);
typedef void (*fnn_sgemm_t)(char *, char *, int *, int *, int *, float *, float *, int *,
                            float *, int *, float *, float *, int *);

typedef struct {
    int L;                          /* number of weight layers */
    int sizes[FNN_MAX_LAYERS + 1];  /* neurons per layer, input first */
    int act[FNN_MAX_LAYERS];        /* activation code of each layer's output */
    int cost;                       /* cost code */
    double cost_scale;              /* multiplies cost and output delta */
    void *W[FNN_MAX_LAYERS];        /* (sizes[l+1], sizes[l]) */
    void *b[FNN_MAX_LAYERS];        /* (sizes[l+1],) */
    void *gemm;                     /* fnn_dgemm_t or fnn_sgemm_t, or NULL: C kernels only */
    int n_threads;
} fnn_net;

typedef struct {
    const void *X;                  /* (n, n_in) */
    const void *Y;                  /* (n, n_out) */
    int64_t n;
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
} fnn_epoch_stats;

typedef int (*fnn_epoch_cb)(void *ctx, fnn_epoch_stats *st);  /* 0: go on; else error */
typedef int (*fnn_check_cb)(void *ctx);                       /* nonzero: interrupted */

typedef struct {
    int epochs, batch;
    double eta, lmbda, l1, reg_n;   /* reg_n: the n in lmbda/n */
    int optimizer;
    double mu, beta1, beta2, eps;
    int64_t adam_t;                 /* in/out: Adam's step counter */
    void *s1[FNN_MAX_LAYERS][2];    /* velocity or Adam m, for W[l] ([0]) and b[l] ([1]) */
    void *s2[FNN_MAX_LAYERS][2];    /* Adam v */
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
                                     * done in it; thread 0 stores them (relaxed atomics) as
                                     * it goes, for a progress bar read from another thread */
} fnn_train_cfg;

/* how fnn_train runs each mini-batch: on one thread, split by examples and neurons among
 * the threads, or with W[0] transposed and split by inputs (fastnn_engine_impl.h, "K-split",
 * on one thread or more) */
enum { FNN_PATH_AUTO = -1, FNN_PATH_SERIAL = 0, FNN_PATH_ROWS = 1, FNN_PATH_KSPLIT = 2 };

static inline int fnn_openmp_enabled(void) {
#ifdef FASTNN_HAVE_OPENMP
    return 1;
#else
    return 0;
#endif
}

static inline int fnn_omp_max_threads(void) {
#ifdef FASTNN_HAVE_OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

static inline int fnn_thread_num(void) {
#ifdef FASTNN_HAVE_OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

static inline int fnn_num_threads(void) {
#ifdef FASTNN_HAVE_OPENMP
    return omp_get_num_threads();
#else
    return 1;
#endif
}

static inline void fnn_barrier(void) {
#ifdef FASTNN_HAVE_OPENMP
#pragma omp barrier
#endif
}

/* A barrier for one team that meets once per mini-batch (the K-split path): a counter and a
 * generation, each on its own cache line.  On this path's 2-core machine it costs about 100
 * cycles where `omp barrier` costs about 800.  A thread spins FNN_SPIN_PAUSES pauses, then
 * yields its core at each check, so a team that shares its cores with other work still
 * moves.  Each thread keeps its own copy of the generation (`my_gen`), starting at 0. */
#ifndef FNN_SPIN_PAUSES
#define FNN_SPIN_PAUSES 4000
#endif
typedef struct {
    int count;
    char pad0[124];
    int gen;
    char pad1[124];
} fnn_spin_barrier;

#if defined(FASTNN_HAVE_OPENMP) && defined(__GNUC__) && !defined(_WIN32)
#include <sched.h>
#define FNN_HAVE_SPIN_BARRIER 1
static inline void fnn_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}
#endif

static inline void fnn_spin_wait(fnn_spin_barrier *b, int T, int *my_gen) {
#ifdef FNN_HAVE_SPIN_BARRIER
    const int g = *my_gen;
    *my_gen = g + 1;
    if (T <= 1) return;
    if (__atomic_add_fetch(&b->count, 1, __ATOMIC_ACQ_REL) == T) {
        /* the last to arrive: reset the count for the next meeting, then release the others
         * (the release store orders the reset before it) */
        __atomic_store_n(&b->count, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&b->gen, g + 1, __ATOMIC_RELEASE);
        return;
    }
    for (long spins = 0; __atomic_load_n(&b->gen, __ATOMIC_ACQUIRE) == g; spins++) {
        if (spins < FNN_SPIN_PAUSES) fnn_cpu_relax();
        else sched_yield();
    }
#else
    (void)b; (void)T; (void)my_gen;
    fnn_barrier();
#endif
}

/* Buffers start on a 128-byte boundary (a pair of cache lines, the unit the L2 prefetcher
 * fetches) and are padded to one, so buffers that different threads write never share a
 * line.  Freed with fnn_free. */
#define FNN_ALIGN 128
static inline void *fnn_malloc(size_t bytes) {
    bytes = (bytes + FNN_ALIGN - 1) / FNN_ALIGN * FNN_ALIGN;
    if (bytes == 0) bytes = FNN_ALIGN;
#if defined(_WIN32)
    return _aligned_malloc(bytes, FNN_ALIGN);
#else
    void *p = NULL;
    return posix_memalign(&p, FNN_ALIGN, bytes) == 0 ? p : NULL;
#endif
}

static inline void *fnn_calloc(size_t n, size_t size) {
    void *p = fnn_malloc(n * size);
    if (p != NULL) memset(p, 0, n * size);
    return p;
}

static inline void fnn_free(void *p) {
#if defined(_WIN32)
    _aligned_free(p);
#else
    free(p);
#endif
}

/* splitmix64: the dropout masks are a pure function of (seed, epoch, example slot, layer,
 * neuron), so they do not depend on the thread count. */
static inline uint64_t fnn_mix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

static inline double fnn_uniform(uint64_t seed, uint64_t a, uint64_t b, uint64_t c) {
    uint64_t h = fnn_mix64(seed ^ fnn_mix64(a ^ fnn_mix64(b ^ fnn_mix64(c))));
    return (double)(h >> 11) * (1.0 / 9007199254740992.0);
}

/* Contiguous block [lo, hi) of n items for thread t of T.  Work below `min_work` is not
 * worth a split and goes to thread 0 alone. */
static inline void fnn_split(int64_t n, int t, int T, double work, double min_work,
                             int64_t *lo, int64_t *hi) {
    if (T <= 1 || work < min_work || n < T) {
        *lo = 0;
        *hi = (t == 0) ? n : 0;
        return;
    }
    int64_t q = n / T, r = n % T;
    *lo = t * q + (t < r ? t : r);
    *hi = *lo + q + (t < r ? 1 : 0);
}

static inline int fnn_is_par(int64_t n, int T, double work) {
    return T > 1 && work >= FNN_PAR_MIN && n >= T;
}

/* ---- instantiate the kernels for double and float ---- */
#define REAL double
#define FNN_IREAL int64_t
#define FNN_SUFFIX(name) name##_f64
#define FNN_GEMM_T fnn_dgemm_t
#include "fastnn_engine_impl.h"
#undef REAL
#undef FNN_IREAL
#undef FNN_SUFFIX
#undef FNN_GEMM_T

#define REAL float
#define FNN_IREAL int32_t
#define FNN_SUFFIX(name) name##_f32
#define FNN_GEMM_T fnn_sgemm_t
#include "fastnn_engine_impl.h"
#undef REAL
#undef FNN_IREAL
#undef FNN_SUFFIX
#undef FNN_GEMM_T

#endif /* FASTNN_H */

/* runtime.h: what the engine needs from the machine, for every REAL: OpenMP helpers, the
 * spin barrier of the K-split path, aligned allocation, the dropout RNG and the split of work
 * among threads.  Included once, by fastnn.h. */
#ifndef FNN_RUNTIME_H
#define FNN_RUNTIME_H

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
    int64_t waited_ns;    /* time the threads spent waiting here, summed (team.h reads it) */
    char pad2[120];
} fnn_spin_barrier;

/* seconds on a monotonic clock */
static inline double fnn_now(void) {
#ifdef FASTNN_HAVE_OPENMP
    return omp_get_wtime();
#else
    return (double)clock() / CLOCKS_PER_SEC;
#endif
}

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

/* the barrier's generation now: a thread that joins a team which has met before starts from
 * it (read before its first arrival, when no meeting can complete) */
static inline int fnn_spin_gen(fnn_spin_barrier *b) {
#ifdef FNN_HAVE_SPIN_BARRIER
    return __atomic_load_n(&b->gen, __ATOMIC_ACQUIRE);
#else
    (void)b;
    return 0;
#endif
}

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
    /* a thread that waits adds how long (two clock reads, about 50 ns, against the
     * microseconds of a mini-batch): the team controller's evidence of a preempted partner */
    const double t0 = fnn_now();
    for (long spins = 0; __atomic_load_n(&b->gen, __ATOMIC_ACQUIRE) == g; spins++) {
        if (spins < FNN_SPIN_PAUSES) fnn_cpu_relax();
        else sched_yield();
    }
    __atomic_add_fetch(&b->waited_ns, (int64_t)((fnn_now() - t0) * 1e9), __ATOMIC_RELAXED);
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

/* Where part p starts when n items are cut into P near-equal contiguous parts (p = P: n).
 * Unlike fnn_split, fewer items than parts still go one to a part (later parts are empty):
 * the parts depend on (n, P) alone, and a run of parts [p0, p1) is items [start(p0),
 * start(p1)). */
static inline int64_t fnn_part(int64_t n, int64_t p, int64_t P) {
    if (P < 1 || n < 1 || p <= 0) return 0;
    if (p >= P) return n;
    const int64_t q = n / P, r = n % P;
    return p * q + (p < r ? p : r);
}

static inline int fnn_is_par(int64_t n, int T, double work) {
    return T > 1 && work >= FNN_PAR_MIN && n >= T;
}

#endif /* FNN_RUNTIME_H */

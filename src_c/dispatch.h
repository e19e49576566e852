/* dispatch.h: the engine compiled for several CPU levels, and the choice among them.
 *
 * setup.py compiles level.c once per CPU level, each time with that level's instruction-set
 * flags (x86-64: avx512, avx2, sse42; elsewhere one level, the target's baseline), so one
 * source gives each level its own vector width (FNN_VBYTES, fastnn.h) and its own code.  Each
 * compilation exports one table of entry points, fnn_kernels_<level>, and the CPU features
 * that its code needs, as the compiler's predefined macros say (so the check at run time is
 * the same list as the flags, whatever they are; -march=native included).
 *
 * The Python module (fastnn/_engine.pyx) is compiled without any of those flags: it includes
 * this file with FNN_LEVEL undefined, which gives it the declarations of fastnn.h and not the
 * engine, asks the CPU what it has (fnn_cpu_features) and calls the engine only through the
 * table it picks.  A new entry point of the engine gets one field here and one line in
 * level.c.
 */
#ifndef FNN_DISPATCH_H
#define FNN_DISPATCH_H

#ifndef FNN_LEVEL
#define FNN_API_ONLY 1          /* the dispatcher: the declarations, not the engine */
#endif
#include "fastnn.h"

/* the CPU features a level may need, one bit each (x86 only; the other targets need none
 * beyond their baseline) */
#define FNN_CPU_FEATURES(X)                                                                \
    X(SSE3, "sse3") X(SSSE3, "ssse3") X(SSE4_1, "sse4.1") X(SSE4_2, "sse4.2")              \
    X(POPCNT, "popcnt") X(AVX, "avx") X(AVX2, "avx2") X(FMA, "fma") X(BMI, "bmi")          \
    X(BMI2, "bmi2") X(AVX512F, "avx512f") X(AVX512CD, "avx512cd") X(AVX512BW, "avx512bw")  \
    X(AVX512DQ, "avx512dq") X(AVX512VL, "avx512vl")

enum {
#define FNN_X(id, name) FNN_CPU_BIT_##id,
    FNN_CPU_FEATURES(FNN_X)
#undef FNN_X
    FNN_CPU_N_FEATURES
};

/* the features' names, as __builtin_cpu_supports spells them, in bit order */
static const char *const fnn_cpu_feature_names[FNN_CPU_N_FEATURES] = {
#define FNN_X(id, name) name,
    FNN_CPU_FEATURES(FNN_X)
#undef FNN_X
};

/* One level's entry points (level.c fills them) */
typedef struct {
    const char *name;               /* "avx512", "avx2", "sse42", "baseline", "native", ... */
    uint32_t needs;                 /* 1 << FNN_CPU_BIT_* of every feature its code uses */
    int vbytes;                     /* FNN_VBYTES it was compiled with */
    int (*train_f64)(fnn_net *net, fnn_train_cfg *cfg);
    int (*train_f32)(fnn_net *net, fnn_train_cfg *cfg);
    int (*predict_f64)(const fnn_net *net, const double *X, int64_t n, double *out);
    int (*predict_f32)(const fnn_net *net, const float *X, int64_t n, float *out);
    int (*evaluate_f64)(const fnn_net *net, const fnn_data *data, double *cost, int64_t *hits);
    int (*evaluate_f32)(const fnn_net *net, const fnn_data *data, double *cost, int64_t *hits);
    int (*gradient_f64)(const fnn_net *net, const fnn_data *data, double **gW, double **gb,
                        double *cost);
    int (*gradient_f32)(const fnn_net *net, const fnn_data *data, float **gW, float **gb,
                        double *cost);
} fnn_kernels;

/* The features this CPU (and its operating system: AVX and AVX-512 need the OS to save their
 * registers, which __builtin_cpu_supports checks) has, as 1 << FNN_CPU_BIT_* bits. */
static inline uint32_t fnn_cpu_features(void) {
    uint32_t f = 0;
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
    __builtin_cpu_init();
#define FNN_X(id, name) if (__builtin_cpu_supports(name)) f |= 1u << FNN_CPU_BIT_##id;
    FNN_CPU_FEATURES(FNN_X)
#undef FNN_X
#endif
    return f;
}

/* The levels this build holds, best first, NULL-terminated.  setup.py defines
 * FNN_WITH_<LEVEL> for each one it compiled. */
#ifndef FNN_LEVEL
#if defined(__GNUC__)
#define FNN_HIDDEN __attribute__((visibility("hidden")))
#else
#define FNN_HIDDEN
#endif
#ifdef FNN_WITH_native
extern FNN_HIDDEN const fnn_kernels fnn_kernels_native;
#endif
#ifdef FNN_WITH_avx512
extern FNN_HIDDEN const fnn_kernels fnn_kernels_avx512;
#endif
#ifdef FNN_WITH_avx2
extern FNN_HIDDEN const fnn_kernels fnn_kernels_avx2;
#endif
#ifdef FNN_WITH_sse42
extern FNN_HIDDEN const fnn_kernels fnn_kernels_sse42;
#endif
#ifdef FNN_WITH_baseline
extern FNN_HIDDEN const fnn_kernels fnn_kernels_baseline;
#endif

static const fnn_kernels *const fnn_levels[] = {
#ifdef FNN_WITH_native
    &fnn_kernels_native,
#endif
#ifdef FNN_WITH_avx512
    &fnn_kernels_avx512,
#endif
#ifdef FNN_WITH_avx2
    &fnn_kernels_avx2,
#endif
#ifdef FNN_WITH_sse42
    &fnn_kernels_sse42,
#endif
#ifdef FNN_WITH_baseline
    &fnn_kernels_baseline,
#endif
    NULL,
};
#endif /* !FNN_LEVEL */

#endif /* FNN_DISPATCH_H */

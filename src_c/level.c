/* level.c: the whole engine for one CPU level.  setup.py compiles this file once per level,
 * with -DFNN_LEVEL=<name> and that level's instruction-set flags (dispatch.h), and links every
 * copy into the one extension module.  Everything the engine defines is static, so the copies
 * do not meet; each exports only its table, fnn_kernels_<name>. */
/* posix_memalign and sched_yield under -std=c99 (the module's C file gets this from
 * Python.h) */
#if !defined(_POSIX_C_SOURCE) && !defined(_WIN32)
#define _POSIX_C_SOURCE 200809L
#endif
#ifndef FNN_LEVEL
#error "compile level.c with -DFNN_LEVEL=<name> (setup.py does)"
#endif
#include "dispatch.h"

#define FNN_CAT2(a, b) a##b
#define FNN_CAT(a, b) FNN_CAT2(a, b)
#define FNN_STR2(a) #a
#define FNN_STR(a) FNN_STR2(a)

/* the features this compilation may use: those the compiler was told the CPU has */
#define FNN_NEEDS_SSE3 0
#define FNN_NEEDS_SSSE3 0
#define FNN_NEEDS_SSE4_1 0
#define FNN_NEEDS_SSE4_2 0
#define FNN_NEEDS_POPCNT 0
#define FNN_NEEDS_AVX 0
#define FNN_NEEDS_AVX2 0
#define FNN_NEEDS_FMA 0
#define FNN_NEEDS_BMI 0
#define FNN_NEEDS_BMI2 0
#define FNN_NEEDS_AVX512F 0
#define FNN_NEEDS_AVX512CD 0
#define FNN_NEEDS_AVX512BW 0
#define FNN_NEEDS_AVX512DQ 0
#define FNN_NEEDS_AVX512VL 0
#if defined(__x86_64__) || defined(__i386__)
#ifdef __SSE3__
#undef FNN_NEEDS_SSE3
#define FNN_NEEDS_SSE3 1
#endif
#ifdef __SSSE3__
#undef FNN_NEEDS_SSSE3
#define FNN_NEEDS_SSSE3 1
#endif
#ifdef __SSE4_1__
#undef FNN_NEEDS_SSE4_1
#define FNN_NEEDS_SSE4_1 1
#endif
#ifdef __SSE4_2__
#undef FNN_NEEDS_SSE4_2
#define FNN_NEEDS_SSE4_2 1
#endif
#ifdef __POPCNT__
#undef FNN_NEEDS_POPCNT
#define FNN_NEEDS_POPCNT 1
#endif
#ifdef __AVX__
#undef FNN_NEEDS_AVX
#define FNN_NEEDS_AVX 1
#endif
#ifdef __AVX2__
#undef FNN_NEEDS_AVX2
#define FNN_NEEDS_AVX2 1
#endif
#ifdef __FMA__
#undef FNN_NEEDS_FMA
#define FNN_NEEDS_FMA 1
#endif
#ifdef __BMI__
#undef FNN_NEEDS_BMI
#define FNN_NEEDS_BMI 1
#endif
#ifdef __BMI2__
#undef FNN_NEEDS_BMI2
#define FNN_NEEDS_BMI2 1
#endif
#ifdef __AVX512F__
#undef FNN_NEEDS_AVX512F
#define FNN_NEEDS_AVX512F 1
#endif
#ifdef __AVX512CD__
#undef FNN_NEEDS_AVX512CD
#define FNN_NEEDS_AVX512CD 1
#endif
#ifdef __AVX512BW__
#undef FNN_NEEDS_AVX512BW
#define FNN_NEEDS_AVX512BW 1
#endif
#ifdef __AVX512DQ__
#undef FNN_NEEDS_AVX512DQ
#define FNN_NEEDS_AVX512DQ 1
#endif
#ifdef __AVX512VL__
#undef FNN_NEEDS_AVX512VL
#define FNN_NEEDS_AVX512VL 1
#endif
#endif

#if defined(__GNUC__)
__attribute__((visibility("hidden")))
#endif
const fnn_kernels FNN_CAT(fnn_kernels_, FNN_LEVEL) = {
    FNN_STR(FNN_LEVEL),
    0
#define FNN_X(id, name) | ((uint32_t)FNN_NEEDS_##id << FNN_CPU_BIT_##id)
    FNN_CPU_FEATURES(FNN_X)
#undef FNN_X
    ,
    FNN_VBYTES,
    fnn_train_f64, fnn_train_f32,
    fnn_predict_f64, fnn_predict_f32,
    fnn_evaluate_f64, fnn_evaluate_f32,
    fnn_gradient_f64, fnn_gradient_f32,
};

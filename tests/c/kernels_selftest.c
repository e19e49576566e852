/* kernels_selftest.c: the engine's C kernels against plain loops written here, for one
 * compilation of the engine (any target: CI cross-compiles it for aarch64 and runs it under
 * qemu-aarch64, .ci/portable.sh).  Needs no Python and no BLAS (net.gemm = NULL).
 *
 *   cc -O3 -std=c99 -ffp-contract=fast -fopenmp -DFASTNN_HAVE_OPENMP -Isrc_c \
 *      tests/c/kernels_selftest.c -o selftest -lm && ./selftest
 *
 * For double and float: the four small-batch products (dot_rows, axpy_rows and their
 * transposed forms dott_rows, axpyt_rows) on every block size up to 40 examples, rows read
 * at odd offsets; the vector sigmoid against 1/(1+exp(-z)); the lane sums of many vectors
 * at once (vsum_n) against one at a time (vsum), bit for bit; and two epochs of SGD through
 * fnn_train, on every path, against the book's per-mini-batch loop, with mini-batches of 4
 * and of 90 (the dense layers' own tiles of larger calls).  Prints the largest
 * difference of each check; exits 1 when one is above its tolerance.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>

#include "fastnn.h"

static int failures = 0;

static void report(const char *what, const char *type, double diff, double tol) {
    int ok = diff <= tol;
    printf("%-44s %-6s max |diff| %.3g (tolerance %.1g) %s\n", what, type, diff, tol,
           ok ? "ok" : "FAIL");
    if (!ok) failures++;
}

/* a deterministic uniform in [-1, 1) */
static double urand(uint64_t *s) {
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(*s >> 11) * (2.0 / 9007199254740992.0) - 1.0;
}

static const char *vec_kind(void) {
#if defined(__AVX512F__)
    return "AVX-512";
#elif defined(__AVX__)
    return "AVX";
#elif defined(__ARM_NEON)
    return "NEON";
#elif defined(__SSE2__)
    return "SSE2";
#else
    return "plain C";
#endif
}

/* ---- the checks, for one REAL type ---- */
#define REAL double
#define F(name) name##_f64
#define TYPE "double"
#define TOL_K 1e-12
#define TOL_S 4e-16
#define TOL_T 1e-12
#include "kernels_selftest_impl.h"
#undef REAL
#undef F
#undef TYPE
#undef TOL_K
#undef TOL_S
#undef TOL_T

#define REAL float
#define F(name) name##_f32
#define TYPE "float"
#define TOL_K 2e-5
#define TOL_S 2e-7
#define TOL_T 2e-4
#include "kernels_selftest_impl.h"

int main(void) {
    printf("fastnn kernel self-test: %d-byte vectors (%s), %s\n", FNN_VBYTES, vec_kind(),
#if defined(__GNUC__) && !defined(FNN_NO_VEC_KERNELS)
           "vector kernels"
#else
           "plain-loop kernels"
#endif
    );
    selftest_f64();
    selftest_f32();
    printf("%s: %d check(s) failed\n", failures ? "FAILED" : "passed", failures);
    return failures ? 1 : 0;
}

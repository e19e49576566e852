/* simd.h: vector types for REAL, from GCC/Clang's vector extensions, so one source gives
 * AVX-512, AVX2 or SSE code (the width comes from FNN_VBYTES, fastnn.h); masked partial
 * loads and stores; a lane sum; and a vector exp and sigmoid.  FNN_VEC_KERNELS is defined
 * where these exist; the kernels fall back to plain loops elsewhere. */

/* FNN_NO_VEC_KERNELS (a test build) takes the plain loops a compiler without vector types
 * would get */
#if defined(__GNUC__) && !defined(FNN_NO_VEC_KERNELS)
#define FNN_VEC_KERNELS 1
typedef REAL F(vec) __attribute__((vector_size(FNN_VBYTES)));
#define FNN_VL ((int)(FNN_VBYTES / sizeof(REAL)))

FNN_INLINE F(vec) F(vload)(const REAL *p) { F(vec) v; memcpy(&v, p, sizeof v); return v; }
FNN_INLINE void F(vstore)(REAL *p, F(vec) v) { memcpy(p, &v, sizeof v); }
/* the first n lanes only (n < lanes): the rest read as zero, and are not written; masked
 * moves with AVX-512 (no memcpy calls: these run on every row's tail) */
FNN_INLINE F(vec) F(vload_n)(const REAL *p, int n) {
#if defined(__AVX512F__)
    if (sizeof(REAL) == sizeof(double)) {
        __m512d v = _mm512_maskz_loadu_pd((__mmask8)((1u << n) - 1), (const void *)p);
        F(vec) r; memcpy(&r, &v, sizeof r); return r;
    } else {
        __m512 v = _mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1), (const void *)p);
        F(vec) r; memcpy(&r, &v, sizeof r); return r;
    }
#else
    F(vec) v = (F(vec)){0};
    for (int j = 0; j < n; j++) v[j] = p[j];
    return v;
#endif
}
FNN_INLINE void F(vstore_n)(REAL *p, F(vec) v, int n) {
#if defined(__AVX512F__)
    if (sizeof(REAL) == sizeof(double)) {
        __m512d x; memcpy(&x, &v, sizeof x);
        _mm512_mask_storeu_pd((void *)p, (__mmask8)((1u << n) - 1), x);
    } else {
        __m512 x; memcpy(&x, &v, sizeof x);
        _mm512_mask_storeu_ps((void *)p, (__mmask16)((1u << n) - 1), x);
    }
#else
    for (int j = 0; j < n; j++) p[j] = v[j];
#endif
}
/* the sum of a vector's lanes, by halving it: log2(lanes) adds instead of lanes - 1 in a chain */
FNN_INLINE REAL F(vsum)(F(vec) v) {
    char *p = (char *)&v;
#define FNN_HALVE(BYTES)                                                                   \
    do {                                                                                   \
        typedef REAL h_t __attribute__((vector_size(BYTES)));                              \
        h_t lo, hi;                                                                        \
        memcpy(&lo, p, BYTES);                                                             \
        memcpy(&hi, p + (BYTES), BYTES);                                                   \
        lo += hi;                                                                          \
        memcpy(p, &lo, BYTES);                                                             \
    } while (0)
#if FNN_VBYTES >= 64
    FNN_HALVE(32);
#endif
#if FNN_VBYTES >= 32
    FNN_HALVE(16);
#endif
    if (sizeof(REAL) == sizeof(float)) FNN_HALVE(8);
#undef FNN_HALVE
    return v[0] + v[1];
}

typedef FNN_IREAL F(ivec) __attribute__((vector_size(FNN_VBYTES)));

FNN_INLINE F(ivec) F(vbits)(F(vec) v) { F(ivec) i; memcpy(&i, &v, sizeof i); return i; }
FNN_INLINE F(vec) F(vfrom)(F(ivec) i) { F(vec) v; memcpy(&v, &i, sizeof v); return v; }

/* exp(x) for x <= 0, lane by lane, without calls, so a whole vector at a time: x = n ln2 + r
 * with |r| <= ln2/2, exp(r) by its Taylor polynomial (degree 13 for double, 7 for float:
 * truncation below half an ulp), times 2^n built in the exponent bits in two halves so that
 * results down to the subnormals come out right.  x below the smallest subnormal's log
 * gives 0. */
FNN_INLINE F(vec) F(vexp_neg)(F(vec) x) {
    const int dbl = sizeof(REAL) == sizeof(double);
    const REAL lo = dbl ? (REAL)-745.2 : (REAL)-104.0;
    const REAL inv_ln2 = (REAL)1.44269504088896338700;
    const REAL ln2_hi = dbl ? (REAL)6.93147180369123816490e-01 : (REAL)0.693145751953125f;
    const REAL ln2_lo = dbl ? (REAL)1.90821492927058770002e-10 : (REAL)1.428606765330187045e-06f;
    const REAL shifter = dbl ? (REAL)6755399441055744.0 : (REAL)12582912.0f; /* 1.5 * 2^52|23 */
    const int mant = dbl ? 52 : 23, bias = dbl ? 1023 : 127;
    const F(vec) vlo = (F(vec)){0} + lo;
    F(ivec) under = x < vlo;                    /* all ones where x < lo */
    x = F(vfrom)((F(vbits)(x) & ~under) | (F(vbits)(vlo) & under));
    F(vec) t = x * inv_ln2 + shifter;
    F(vec) nf = t - shifter;                    /* round(x / ln2) */
    F(vec) r = x - nf * ln2_hi;
    r = r - nf * ln2_lo;
    F(vec) p;
    if (dbl) {
        p = (F(vec)){0} + (REAL)(1.0 / 6227020800.0);
        p = p * r + (REAL)(1.0 / 479001600.0);
        p = p * r + (REAL)(1.0 / 39916800.0);
        p = p * r + (REAL)(1.0 / 3628800.0);
        p = p * r + (REAL)(1.0 / 362880.0);
        p = p * r + (REAL)(1.0 / 40320.0);
        p = p * r + (REAL)(1.0 / 5040.0);
        p = p * r + (REAL)(1.0 / 720.0);
        p = p * r + (REAL)(1.0 / 120.0);
    } else {
        p = (F(vec)){0} + (REAL)(1.0 / 5040.0);
        p = p * r + (REAL)(1.0 / 720.0);
        p = p * r + (REAL)(1.0 / 120.0);
    }
    p = p * r + (REAL)(1.0 / 24.0);
    p = p * r + (REAL)(1.0 / 6.0);
    p = p * r + (REAL)0.5;
    p = p * r + (REAL)1;
    p = p * r + (REAL)1;
    F(ivec) n = __builtin_convertvector(nf, F(ivec));
    F(ivec) n1 = n >> 1, n2 = n - n1;           /* both halves are normal exponents */
    F(vec) s1 = F(vfrom)((n1 + bias) << mant), s2 = F(vfrom)((n2 + bias) << mant);
    return (p * s1) * s2;
}

/* the sigmoid of a vector, the same branch-free way as the scalar one */
FNN_INLINE F(vec) F(vsigmoid)(F(vec) z) {
    F(ivec) pos = z >= (F(vec)){0};
    F(vec) e = F(vexp_neg)(F(vfrom)((F(vbits)(-z) & pos) | (F(vbits)(z) & ~pos)));  /* e^-|z| */
    F(vec) r = (REAL)1 / ((REAL)1 + e);
    return F(vfrom)((F(vbits)(r) & pos) | (F(vbits)(e * r) & ~pos));
}

#define FNN_VEC_SIGMOID 1
#endif /* FNN_VEC_KERNELS */

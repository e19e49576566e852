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

/* The lane sums of n vectors, VL of them at a time into one vector of sums, by vsum's tree:
 * at each level two vectors whose lanes hold segments of length s (each the partial sums of
 * one vector) become one with segments of s / 2, each segment's lower half plus its upper
 * half: two shuffles and one add.  Every sum adds the same pairs as in vsum (addition
 * commutes), so the bits are vsum's, with one add and two shuffles per vector in place of
 * an extract and an add per level (W1's 30 -> 10 forward, 100 sums a mini-batch: about 1.9
 * -> 1.3 thousand cycles).  Compilers without __builtin_shufflevector (GCC before 12) take
 * vsum vector by vector. */
#if defined(__has_builtin)
#if __has_builtin(__builtin_shufflevector)
#define FNN_SHUFFLEVECTOR 1
#endif
#endif
#if defined(FNN_SHUFFLEVECTOR) && !defined(FNN_NO_SHUFFLEVECTOR)
/* lane t of the lower (u = 0) or upper (u = 1) halves of the segments of length s of a pair
 * of vectors (lanes 0 to VL - 1 of the first, then the second's) */
#define FNN_SEG(s, u, t) ((t) / ((s) / 2) * (s) + (t) % ((s) / 2) + (u) * ((s) / 2))
#define FNN_SEG2(s, u, t) FNN_SEG(s, u, t), FNN_SEG(s, u, (t) + 1)
#define FNN_SEG4(s, u, t) FNN_SEG2(s, u, t), FNN_SEG2(s, u, (t) + 2)
#define FNN_SEG8(s, u, t) FNN_SEG4(s, u, t), FNN_SEG4(s, u, (t) + 4)
#define FNN_SEG16(s, u, t) FNN_SEG8(s, u, t), FNN_SEG8(s, u, (t) + 8)
#if FNN_VBYTES / FNN_RBYTES == 16
#define FNN_SEGS(s, u) FNN_SEG16(s, u, 0)
#elif FNN_VBYTES / FNN_RBYTES == 8
#define FNN_SEGS(s, u) FNN_SEG8(s, u, 0)
#elif FNN_VBYTES / FNN_RBYTES == 4
#define FNN_SEGS(s, u) FNN_SEG4(s, u, 0)
#else
#define FNN_SEGS(s, u) FNN_SEG2(s, u, 0)
#endif
#define FNN_SEG_LEVEL(S)                                                                   \
    _Pragma("GCC unroll 8")                                                                \
    for (int j = 0; j < (S) / 2; j++)                                                      \
        v[j] = __builtin_shufflevector(v[2 * j], v[2 * j + 1], FNN_SEGS(S, 0)) +           \
               __builtin_shufflevector(v[2 * j], v[2 * j + 1], FNN_SEGS(S, 1));
FNN_INLINE void F(vsum_n)(const F(vec) *a, int n, REAL *out) {
    for (int i = 0; i < n; i += FNN_VL) {
        F(vec) v[FNN_VL];
        for (int j = 0; j < FNN_VL; j++) v[j] = i + j < n ? a[i + j] : (F(vec)){0};
#if FNN_VBYTES / FNN_RBYTES >= 16
        FNN_SEG_LEVEL(16)
#endif
#if FNN_VBYTES / FNN_RBYTES >= 8
        FNN_SEG_LEVEL(8)
#endif
#if FNN_VBYTES / FNN_RBYTES >= 4
        FNN_SEG_LEVEL(4)
#endif
        FNN_SEG_LEVEL(2)
        if (i + FNN_VL <= n) F(vstore)(out + i, v[0]);
        else F(vstore_n)(out + i, v[0], n - i);
    }
}
#undef FNN_SEG_LEVEL
#undef FNN_SEGS
#undef FNN_SEG16
#undef FNN_SEG8
#undef FNN_SEG4
#undef FNN_SEG2
#undef FNN_SEG
#else
FNN_INLINE void F(vsum_n)(const F(vec) *a, int n, REAL *out) {
    for (int i = 0; i < n; i++) out[i] = F(vsum)(a[i]);
}
#endif

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

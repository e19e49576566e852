/* gemm.h: row-major GEMM through the BLAS the Cython layer hands in (net->gemm), with a
 * plain-loop reference for sizes where a call costs more than it saves. */

/* GEMM: row-major C = alpha op(A) op(B) + beta C, C is (M, N), op(A) is (M, K), op(B) (K, N).  */

/* The reference kernel: plain loops, also the fallback for sizes where a BLAS call costs more
 * than it saves. */
static void F(gemm_naive)(int ta, int tb, int M, int N, int K, REAL alpha, const REAL *A,
                          int lda, const REAL *B, int ldb, REAL beta, REAL *C, int ldc) {
    for (int i = 0; i < M; i++) {
        REAL *c = C + (int64_t)i * ldc;
        if (beta == (REAL)0) {
            for (int j = 0; j < N; j++) c[j] = 0;
        } else if (beta != (REAL)1) {
            for (int j = 0; j < N; j++) c[j] *= beta;
        }
        for (int k = 0; k < K; k++) {
            REAL a = alpha * (ta ? A[(int64_t)k * lda + i] : A[(int64_t)i * lda + k]);
            if (!tb) {
                const REAL *brow = B + (int64_t)k * ldb;
                for (int j = 0; j < N; j++) c[j] += a * brow[j];
            } else {
                for (int j = 0; j < N; j++) c[j] += a * B[(int64_t)j * ldb + k];
            }
        }
    }
}

static void F(gemm)(const fnn_net *net, int ta, int tb, int M, int N, int K, REAL alpha,
                    const REAL *A, int lda, const REAL *B, int ldb, REAL beta, REAL *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    if (net->gemm != NULL && K > 0 && (double)M * N * K >= FNN_BLAS_MIN) {
        /* row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T */
        char cta = ta ? 'T' : 'N', ctb = tb ? 'T' : 'N';
        ((FNN_GEMM_T)net->gemm)(&ctb, &cta, &N, &M, &K, &alpha, (REAL *)B, &ldb, (REAL *)A,
                                &lda, &beta, C, &ldc);
    } else {
        F(gemm_naive)(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    }
}

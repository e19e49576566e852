/* engine.h: the engine for one REAL type.  fastnn.h includes this file twice: REAL = double
 * (names end in _f64) and REAL = float (_f32).  Each file below holds one concern; they are
 * included in dependency order.  Every op is a forward/backward pair with llm.c's argument
 * order: outputs, inputs, parameters, sizes.  Threads: every function that takes (t, T) is
 * called by all T threads of an OpenMP team; each thread writes only the rows (or examples)
 * fnn_split gives it, or the run of fixed blocks fnn_part gives it (runtime.h). */
#define F(name) FNN_SUFFIX(name)

/* type-generic scalar math for this REAL */
#undef FNN_R_EXP
#undef FNN_R_LOG
#undef FNN_R_SQRT
#undef FNN_R_TANH
#undef FNN_R_FABS
#undef FNN_R_ERF
#undef FNN_R_LOG1P
#undef FNN_R_EXPM1
#define FNN_R_FABS(x) (sizeof(REAL) == sizeof(float) ? (REAL)fabsf((float)(x)) : (REAL)fabs((double)(x)))
#define FNN_R_EXP(x) (sizeof(REAL) == sizeof(float) ? (REAL)expf((float)(x)) : (REAL)exp((double)(x)))
#define FNN_R_LOG(x) (sizeof(REAL) == sizeof(float) ? (REAL)logf((float)(x)) : (REAL)log((double)(x)))
#define FNN_R_SQRT(x) (sizeof(REAL) == sizeof(float) ? (REAL)sqrtf((float)(x)) : (REAL)sqrt((double)(x)))
#define FNN_R_TANH(x) (sizeof(REAL) == sizeof(float) ? (REAL)tanhf((float)(x)) : (REAL)tanh((double)(x)))
#define FNN_R_ERF(x) (sizeof(REAL) == sizeof(float) ? (REAL)erff((float)(x)) : (REAL)erf((double)(x)))
#define FNN_R_LOG1P(x) (sizeof(REAL) == sizeof(float) ? (REAL)log1pf((float)(x)) : (REAL)log1p((double)(x)))
#define FNN_R_EXPM1(x) (sizeof(REAL) == sizeof(float) ? (REAL)expm1f((float)(x)) : (REAL)expm1((double)(x)))

#include "simd.h"          /* vector types, masked loads, vector exp and sigmoid */
#include "gemm.h"          /* GEMM through BLAS, and its plain-loop reference */
#include "kernels_rows.h"  /* small-batch products, weights as rows (dot_rows, axpy_rows) */
#include "kernels_t.h"     /* the same, weights transposed (dott_rows, axpyt_rows) */
#include "kernels_conv.h"  /* direct convolution, channels-last (cfwd_rows, cgrad_rows) */
#include "activations.h"   /* the activation table's functions, dropout */
#include "optimizers.h"    /* the optimizer table's element-wise steps */
#include "workspace.h"     /* per-call buffers, the gather of a mini-batch's rows */
#include "costs.h"         /* the cost table's functions: the output phase */
#include "layer_dense.h"   /* dense: forward, backward, gradient fused with the update */
#include "layer_conv2d.h"  /* conv2d: direct, channels-last */
#include "layer_maxpool2d.h" /* maxpool2d */
#include "layer_flatten.h" /* flatten */
#include "layers.h"        /* the layer-kind table's dispatch */
#include "evaluate.h"      /* forward-only passes: evaluate, predict */
#include "path_rows.h"     /* a mini-batch split by examples and neurons (or serial) */
#include "path_ksplit.h"   /* a mini-batch split by the first layer's inputs */
#include "train.h"         /* the training loop of a whole call; gradients for tests */

#undef FNN_VEC_SIGMOID
#undef FNN_TRANS_VEC
#undef F

// Element-wise float kernels of the networks' hot loops (GELU, LayerNorm, biases, per-column
// scales) and of emb-laplace apply's variances, in C
// so that one binary runs them at the CPU's full vector width: AVX-512 or AVX2 where the CPU has
// them, SSE otherwise (Swift's own loops compile for the baseline x86-64, four floats a time).
// Every kernel computes each element by the same operations in the same order, without fused
// multiply-adds, so the bits are the same whatever the instruction set.
#ifndef CELEMENTWISE_H
#define CELEMENTWISE_H
#include <stddef.h>

/// erf(x) in single precision, branch-free: on [−4, 4] the ratio of an odd degree-13 and an even
/// degree-8 polynomial (the approximation of Eigen and XLA), ±1 outside; NaN stays NaN. Absolute
/// error below 5e-7.
float celem_erf_f32(float x);
/// e^x in single precision, branch-free: x clamped to [−87, 88], x = k ln 2 + r, e^r by Cephes'
/// degree-6 polynomial, 2^k put into the exponent bits. Relative error below 2e-7.
float celem_exp_f32(float x);

/// x[i] = GELU(x[i]) = x · ½(1 + erf(x/√2)) with celem_erf_f32, for i in [0, n).
void celem_gelu_f32(float *x, ptrdiff_t n);
/// The same, also writing GELU'(x) = ½(1 + erf(x/√2)) + x · e^(−x²/2)/√(2π) into d (celem_exp_f32).
void celem_gelu_derivative_f32(float *x, float *d, ptrdiff_t n);

/// y[r·ldy + j] += b[j] for r in [0, rows), j in [0, cols).
void celem_add_row_f32(float *y, ptrdiff_t ldy, const float *b, ptrdiff_t rows, ptrdiff_t cols);
/// y[r·ldy + j] = c · (y[r·ldy + j] + b[j]) for r in [0, rows), j in [0, cols).
void celem_add_row_scale_f32(float *y, ptrdiff_t ldy, const float *b, float c, ptrdiff_t rows, ptrdiff_t cols);
/// y[i] = x[i] · x[i] for i in [0, n) (y may be x).
void celem_square_f32(float *y, const float *x, ptrdiff_t n);
/// acc[j] += x[r·ldx + j] for r = 0, 1, …, rows − 1 in this order (the sum of each column, added
/// row after row), j in [0, cols).
void celem_sum_rows_f32(float *acc, const float *x, ptrdiff_t ldx, ptrdiff_t rows, ptrdiff_t cols);
/// y[r·ldy + j] = x[r·ldx + j] · max(s[j], 0): columns scaled by the non-negative part of s (a NaN
/// in s gives NaN, as Swift's max). y may be x itself (with ldy = ldx); otherwise they must not overlap.
void celem_scale_relu_f32(float *y, ptrdiff_t ldy, const float *x, ptrdiff_t ldx, const float *s,
                          ptrdiff_t rows, ptrdiff_t cols);
/// acc[j] += a[r·lda + j] · b[r·ldb + j] for r = 0, 1, …, rows − 1 in this order, for the j with
/// s[j] ≥ 0 (acc[j] untouched for the others).
void celem_sum_products_where_nonnegative_f32(float *acc, const float *a, ptrdiff_t lda, const float *b, ptrdiff_t ldb,
                                              const float *s, ptrdiff_t rows, ptrdiff_t cols);

/// Layer normalisation of `rows` rows of d values (row r at x + r·d), in place, every row with
/// the same weight w and bias b: mean μ and biased variance σ² summed in double in index order,
/// inv = 1/√(σ² + eps) in double, x̂_j = (float)((x_j − μ)·inv), x_j = x̂_j·w_j + b_j in float.
/// x̂ into xhat and (float)inv into inv_std when they are not NULL. Eight rows' sums at a time
/// (independent chains, each in its own order: the bits of one row at a time).
void celem_layer_norm_f32(float *x, ptrdiff_t rows, ptrdiff_t d, const float *w, const float *b, float eps,
                          float *xhat, float *inv_std);

/// The kernels, as bits: CELEM_KERNEL_GENERIC (the C loops compiled for the baseline, always
/// there), CELEM_KERNEL_AVX2 and CELEM_KERNEL_AVX512 when the CPU has them.
enum { CELEM_KERNEL_GENERIC = 1, CELEM_KERNEL_AVX2 = 2, CELEM_KERNEL_AVX512 = 4 };
int celem_kernels(void);
/// Makes every function above use `kernel` (one of celem_kernels()), or the best again with 0:
/// for tests, which compare the kernels' bits. Not for use while another thread calls them.
void celem_use_kernel(int kernel);
/// The name of the kernel in use ("avx512", "avx2", "generic").
const char *celem_kernel_name(void);

#endif

#include "CElementwise.h"
#include <math.h>
#include <stdint.h>
#include <string.h>

// No contraction into fused multiply-adds: every lane rounds as the scalar rule does, whatever
// the instruction set (see the header).
#pragma clang fp contract(off)
#pragma STDC FP_CONTRACT OFF

#define INLINE static inline __attribute__((always_inline))

INLINE float erf_f32(float a) {
    float x = a > 4 ? 4 : (a < -4 ? -4 : a);
    float x2 = x * x;
    float p = x2 * -2.72614225801306e-10f + 2.77068142495902e-08f;
    p = x2 * p + -2.10102402082508e-06f;
    p = x2 * p + -5.69250639462346e-05f;
    p = x2 * p + -7.34990630326855e-04f;
    p = x2 * p + -2.95459980854025e-03f;
    p = x2 * p + -1.60960333262415e-02f;
    p = x * p;
    float q = x2 * -1.45660718464996e-05f + -2.13374055278905e-04f;
    q = x2 * q + -1.68282697438203e-03f;
    q = x2 * q + -7.37332916720468e-03f;
    q = x2 * q + -1.42647390514189e-02f;
    return p / q;
}

INLINE float exp_f32(float a) {
    float x = a > 88 ? 88 : (a < -87 ? -87 : a);
    // Adding 1.5 · 2^23 rounds x / ln 2 to the integer k, which then sits in the low bits of t's
    // pattern: 2^k is built from them with integer operations (no conversion to vectorise badly).
    float t = x * 1.44269504088896341f + 12582912.0f;
    float k = t - 12582912.0f;
    float r = (x - k * 0.693359375f) - k * -2.12194440e-4f;
    float q = r * 1.9875691500e-4f + 1.3981999507e-3f;
    q = q * r + 8.3334519073e-3f;
    q = q * r + 4.1665795894e-2f;
    q = q * r + 1.6666665459e-1f;
    q = q * r + 5.0000001201e-1f;
    float er = q * (r * r) + r + 1;
    uint32_t bits;
    memcpy(&bits, &t, 4);
    bits = (bits - 0x4B400000u + 127u) << 23;
    float scale;
    memcpy(&scale, &bits, 4);
    return er * scale;
}

float celem_erf_f32(float x) { return erf_f32(x); }
float celem_exp_f32(float x) { return exp_f32(x); }

INLINE void gelu(float *restrict x, ptrdiff_t n) {
    for (ptrdiff_t i = 0; i < n; i++) {
        float v = x[i];
        x[i] = v * 0.5f * (1 + erf_f32(v * 0.70710678118654752f));
    }
}

INLINE void gelu_derivative(float *restrict x, float *restrict d, ptrdiff_t n) {
    for (ptrdiff_t i = 0; i < n; i++) {
        float v = x[i];
        float cdf = 0.5f * (1 + erf_f32(v * 0.70710678118654752f));
        d[i] = cdf + v * exp_f32(-0.5f * v * v) * 0.39894228040143268f;
        x[i] = v * cdf;
    }
}

INLINE void add_row(float *restrict y, ptrdiff_t ldy, const float *restrict b, ptrdiff_t rows, ptrdiff_t cols) {
    for (ptrdiff_t r = 0; r < rows; r++) {
        float *restrict yr = y + r * ldy;
        for (ptrdiff_t j = 0; j < cols; j++) yr[j] += b[j];
    }
}

INLINE void add_row_scale(float *restrict y, ptrdiff_t ldy, const float *restrict b, float c, ptrdiff_t rows, ptrdiff_t cols) {
    for (ptrdiff_t r = 0; r < rows; r++) {
        float *restrict yr = y + r * ldy;
        for (ptrdiff_t j = 0; j < cols; j++) yr[j] = c * (yr[j] + b[j]);
    }
}

// No restrict: y may be x (each element read before it is written, lane by lane).
INLINE void square(float *y, const float *x, ptrdiff_t n) {
    for (ptrdiff_t i = 0; i < n; i++) y[i] = x[i] * x[i];
}

INLINE void sum_rows(float *restrict acc, const float *restrict x, ptrdiff_t ldx, ptrdiff_t rows, ptrdiff_t cols) {
    for (ptrdiff_t r = 0; r < rows; r++) {
        const float *restrict xr = x + r * ldx;
        for (ptrdiff_t j = 0; j < cols; j++) acc[j] += xr[j];
    }
}

INLINE void scale_relu(float *restrict y, ptrdiff_t ldy, const float *restrict x, ptrdiff_t ldx,
                       const float *restrict s, ptrdiff_t rows, ptrdiff_t cols) {
    for (ptrdiff_t r = 0; r < rows; r++) {
        float *restrict yr = y + r * ldy;
        const float *restrict xr = x + r * ldx;
        for (ptrdiff_t j = 0; j < cols; j++) yr[j] = xr[j] * (0 >= s[j] ? 0 : s[j]);  // Swift's max(s, 0): NaN stays NaN
    }
}

INLINE void scale_relu_in_place(float *restrict y, ptrdiff_t ldy, const float *restrict s, ptrdiff_t rows, ptrdiff_t cols) {
    for (ptrdiff_t r = 0; r < rows; r++) {
        float *restrict yr = y + r * ldy;
        for (ptrdiff_t j = 0; j < cols; j++) yr[j] = yr[j] * (0 >= s[j] ? 0 : s[j]);
    }
}

INLINE void sum_products_where(float *restrict acc, const float *restrict a, ptrdiff_t lda, const float *restrict b,
                               ptrdiff_t ldb, const float *restrict s, ptrdiff_t rows, ptrdiff_t cols) {
    for (ptrdiff_t r = 0; r < rows; r++) {
        const float *restrict ar = a + r * lda, *restrict br = b + r * ldb;
        for (ptrdiff_t j = 0; j < cols; j++) acc[j] = s[j] >= 0 ? acc[j] + ar[j] * br[j] : acc[j];
    }
}

// G rows at once (G a constant after inlining): G independent chains of double additions, each
// row's in index order.
INLINE void layer_norm_group(float *restrict x, ptrdiff_t d, const float *restrict w, const float *restrict b,
                             float eps, float *restrict xhat, float *restrict inv_std, const int G) {
    double mean[8], var[8], inv[8];
    for (int g = 0; g < G; g++) mean[g] = 0, var[g] = 0;
    for (ptrdiff_t j = 0; j < d; j++)
        for (int g = 0; g < G; g++) mean[g] += (double)x[g * d + j];
    for (int g = 0; g < G; g++) mean[g] /= (double)d;
    for (ptrdiff_t j = 0; j < d; j++)
        for (int g = 0; g < G; g++) {
            double c = (double)x[g * d + j] - mean[g];
            var[g] += c * c;
        }
    for (int g = 0; g < G; g++) {
        var[g] /= (double)d;
        inv[g] = 1 / sqrt(var[g] + (double)eps);
        if (inv_std) inv_std[g] = (float)inv[g];
    }
    for (int g = 0; g < G; g++) {
        float *restrict xr = x + g * d;
        float *restrict hr = xhat ? xhat + g * d : 0;
        double m = mean[g], s = inv[g];
        // Two loops, not a test in one: a vectorised `if (hr)` becomes a masked store to address
        // 0 + j, which the CPU suppresses at a great cost (microcode, each time).
        if (hr)
            for (ptrdiff_t j = 0; j < d; j++) {
                float h = (float)(((double)xr[j] - m) * s);
                hr[j] = h;
                xr[j] = h * w[j] + b[j];
            }
        else
            for (ptrdiff_t j = 0; j < d; j++) xr[j] = (float)(((double)xr[j] - m) * s) * w[j] + b[j];
    }
}

INLINE void layer_norm(float *restrict x, ptrdiff_t rows, ptrdiff_t d, const float *restrict w, const float *restrict b,
                       float eps, float *restrict xhat, float *restrict inv_std) {
    ptrdiff_t r = 0;
    for (; r + 8 <= rows; r += 8)
        layer_norm_group(x + r * d, d, w, b, eps, xhat ? xhat + r * d : 0, inv_std ? inv_std + r : 0, 8);
    for (; r < rows; r++)
        layer_norm_group(x + r * d, d, w, b, eps, xhat ? xhat + r * d : 0, inv_std ? inv_std + r : 0, 1);
}

// Each kernel three times: for AVX-512, for AVX2 and for the baseline, the same C source; the
// best the CPU has is used, unless a test chose one (celem_use_kernel).
static int chosen;  // 0: the best

int celem_kernels(void) {
    int k = CELEM_KERNEL_GENERIC;
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx2")) k |= CELEM_KERNEL_AVX2;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl"))
        k |= CELEM_KERNEL_AVX512;
#endif
    return k;
}

// Read and written atomically: threads may call the kernels at once (the first ones find the best).
static int kernel(void) {
    static int best;
    int k = __atomic_load_n(&chosen, __ATOMIC_RELAXED);
    if (k) return k;
    k = __atomic_load_n(&best, __ATOMIC_RELAXED);
    if (!k) {
        int have = celem_kernels();
        k = (have & CELEM_KERNEL_AVX512) ? CELEM_KERNEL_AVX512 : (have & CELEM_KERNEL_AVX2) ? CELEM_KERNEL_AVX2 : CELEM_KERNEL_GENERIC;
        __atomic_store_n(&best, k, __ATOMIC_RELAXED);
    }
    return k;
}

void celem_use_kernel(int k) {
    int one = (k & celem_kernels()) == k && (k & (k - 1)) == 0;  // a single kernel this CPU has
    __atomic_store_n(&chosen, one ? k : 0, __ATOMIC_RELAXED);
}

const char *celem_kernel_name(void) {
    int k = kernel();
    return k == CELEM_KERNEL_AVX512 ? "avx512" : k == CELEM_KERNEL_AVX2 ? "avx2" : "generic";
}

#if defined(__x86_64__)
#define DISPATCH(name, params, args)                                                               \
    __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl"))) static void name##_avx512 params { name args; } \
    __attribute__((target("avx2"))) static void name##_avx2 params { name args; }                  \
    static void name##_dispatch params {                                                           \
        int k = kernel();                                                                          \
        if (k == CELEM_KERNEL_AVX512) name##_avx512 args;                                          \
        else if (k == CELEM_KERNEL_AVX2) name##_avx2 args;                                         \
        else name args;                                                                            \
    }
#else
#define DISPATCH(name, params, args) static void name##_dispatch params { name args; }
#endif

DISPATCH(gelu, (float *x, ptrdiff_t n), (x, n))
DISPATCH(gelu_derivative, (float *x, float *d, ptrdiff_t n), (x, d, n))
DISPATCH(add_row, (float *y, ptrdiff_t ldy, const float *b, ptrdiff_t rows, ptrdiff_t cols), (y, ldy, b, rows, cols))
DISPATCH(add_row_scale, (float *y, ptrdiff_t ldy, const float *b, float c, ptrdiff_t rows, ptrdiff_t cols), (y, ldy, b, c, rows, cols))
DISPATCH(square, (float *y, const float *x, ptrdiff_t n), (y, x, n))
DISPATCH(layer_norm, (float *x, ptrdiff_t rows, ptrdiff_t d, const float *w, const float *b, float eps, float *xhat, float *inv_std),
         (x, rows, d, w, b, eps, xhat, inv_std))
DISPATCH(sum_rows, (float *acc, const float *x, ptrdiff_t ldx, ptrdiff_t rows, ptrdiff_t cols), (acc, x, ldx, rows, cols))
DISPATCH(scale_relu, (float *y, ptrdiff_t ldy, const float *x, ptrdiff_t ldx, const float *s, ptrdiff_t rows, ptrdiff_t cols),
         (y, ldy, x, ldx, s, rows, cols))
DISPATCH(scale_relu_in_place, (float *y, ptrdiff_t ldy, const float *s, ptrdiff_t rows, ptrdiff_t cols), (y, ldy, s, rows, cols))
DISPATCH(sum_products_where, (float *acc, const float *a, ptrdiff_t lda, const float *b, ptrdiff_t ldb, const float *s,
                              ptrdiff_t rows, ptrdiff_t cols), (acc, a, lda, b, ldb, s, rows, cols))

void celem_gelu_f32(float *x, ptrdiff_t n) { gelu_dispatch(x, n); }
void celem_gelu_derivative_f32(float *x, float *d, ptrdiff_t n) { gelu_derivative_dispatch(x, d, n); }
void celem_add_row_f32(float *y, ptrdiff_t ldy, const float *b, ptrdiff_t rows, ptrdiff_t cols) {
    add_row_dispatch(y, ldy, b, rows, cols);
}
void celem_add_row_scale_f32(float *y, ptrdiff_t ldy, const float *b, float c, ptrdiff_t rows, ptrdiff_t cols) {
    add_row_scale_dispatch(y, ldy, b, c, rows, cols);
}
void celem_square_f32(float *y, const float *x, ptrdiff_t n) { square_dispatch(y, x, n); }
void celem_layer_norm_f32(float *x, ptrdiff_t rows, ptrdiff_t d, const float *w, const float *b, float eps,
                          float *xhat, float *inv_std) {
    layer_norm_dispatch(x, rows, d, w, b, eps, xhat, inv_std);
}
void celem_sum_rows_f32(float *acc, const float *x, ptrdiff_t ldx, ptrdiff_t rows, ptrdiff_t cols) {
    sum_rows_dispatch(acc, x, ldx, rows, cols);
}
void celem_scale_relu_f32(float *y, ptrdiff_t ldy, const float *x, ptrdiff_t ldx, const float *s,
                          ptrdiff_t rows, ptrdiff_t cols) {
    if (y == x && ldy == ldx) scale_relu_in_place_dispatch(y, ldy, s, rows, cols);
    else scale_relu_dispatch(y, ldy, x, ldx, s, rows, cols);
}
void celem_sum_products_where_nonnegative_f32(float *acc, const float *a, ptrdiff_t lda, const float *b, ptrdiff_t ldb,
                                              const float *s, ptrdiff_t rows, ptrdiff_t cols) {
    sum_products_where_dispatch(acc, a, lda, b, ldb, s, rows, cols);
}

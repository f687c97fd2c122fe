#include "COptim.h"
#include <math.h>

// No contraction into fused multiply-adds: every lane must round as the scalar rule does.
#pragma clang fp contract(off)
#pragma STDC FP_CONTRACT OFF

#define RULE(T)                                                                                    \
    for (; i < n; i++) {                                                                           \
        double g = (double)grad[i];                                                                \
        double mi = s->b1 * m[i] + s->c1 * g;                                                      \
        double vi = s->b2 * v[i] + (s->c2 * g) * g;                                                \
        m[i] = mi;                                                                                 \
        v[i] = vi;                                                                                 \
        double x = (double)value[i] * s->decay;                                                    \
        x = x - (s->lr * (mi / s->bc1)) / (sqrt(vi / s->bc2) + s->eps);                            \
        value[i] = (T)x;                                                                           \
    }

#if defined(__x86_64__)
#include <immintrin.h>

#define VECTOR_STEP(LOAD_G, LOAD_X, STORE_X)                                                       \
    for (; i + 4 <= n; i += 4) {                                                                   \
        __m256d g = LOAD_G;                                                                        \
        __m256d mi = _mm256_add_pd(_mm256_mul_pd(b1, _mm256_loadu_pd(m + i)), _mm256_mul_pd(c1, g)); \
        __m256d vi = _mm256_add_pd(_mm256_mul_pd(b2, _mm256_loadu_pd(v + i)),                     \
                                   _mm256_mul_pd(_mm256_mul_pd(c2, g), g));                        \
        _mm256_storeu_pd(m + i, mi);                                                               \
        _mm256_storeu_pd(v + i, vi);                                                               \
        __m256d x = _mm256_mul_pd(LOAD_X, decay);                                                  \
        __m256d den = _mm256_add_pd(_mm256_sqrt_pd(_mm256_div_pd(vi, bc2)), eps);                  \
        x = _mm256_sub_pd(x, _mm256_div_pd(_mm256_mul_pd(lr, _mm256_div_pd(mi, bc1)), den));       \
        STORE_X;                                                                                   \
    }

#define CONSTANTS                                                                                  \
    const __m256d b1 = _mm256_set1_pd(s->b1), c1 = _mm256_set1_pd(s->c1);                          \
    const __m256d b2 = _mm256_set1_pd(s->b2), c2 = _mm256_set1_pd(s->c2);                          \
    const __m256d eps = _mm256_set1_pd(s->eps), decay = _mm256_set1_pd(s->decay);                  \
    const __m256d lr = _mm256_set1_pd(s->lr), bc1 = _mm256_set1_pd(s->bc1), bc2 = _mm256_set1_pd(s->bc2);

__attribute__((target("avx")))
static void adamw_f32_avx(float *value, const float *grad, double *m, double *v, ptrdiff_t n, const coptim_adamw_step *s) {
    CONSTANTS
    ptrdiff_t i = 0;
    VECTOR_STEP(_mm256_cvtps_pd(_mm_loadu_ps(grad + i)), _mm256_cvtps_pd(_mm_loadu_ps(value + i)),
                _mm_storeu_ps(value + i, _mm256_cvtpd_ps(x)))
    RULE(float)
}

__attribute__((target("avx")))
static void adamw_f64_avx(double *value, const double *grad, double *m, double *v, ptrdiff_t n, const coptim_adamw_step *s) {
    CONSTANTS
    ptrdiff_t i = 0;
    VECTOR_STEP(_mm256_loadu_pd(grad + i), _mm256_loadu_pd(value + i), _mm256_storeu_pd(value + i, x))
    RULE(double)
}
#endif

void coptim_adamw_f32(float *value, const float *grad, double *m, double *v, ptrdiff_t n, const coptim_adamw_step *s) {
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx")) { adamw_f32_avx(value, grad, m, v, n, s); return; }
#endif
    ptrdiff_t i = 0;
    RULE(float)
}

void coptim_adamw_f64(double *value, const double *grad, double *m, double *v, ptrdiff_t n, const coptim_adamw_step *s) {
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx")) { adamw_f64_avx(value, grad, m, v, n, s); return; }
#endif
    ptrdiff_t i = 0;
    RULE(double)
}

// The AdamW update of sve-train's optimiser (Sources/SVE/Optimizer.swift), element by element,
// in C where Swift's SIMD types do not compile to the instructions it needs (a vector square
// root: SIMD4<Double>.squareRoot() calls the scalar one lane by lane).
#ifndef COPTIM_H
#define COPTIM_H
#include <stddef.h>

/// The constants of one step: β1, 1 − β1, β2, 1 − β2, ε, the decay 1 − lr·wd, lr, and the bias
/// corrections 1 − β1^t and 1 − β2^t.
typedef struct {
    double b1, c1, b2, c2, eps, decay, lr, bc1, bc2;
} coptim_adamw_step;

/// For i in [0, n): with g = (double)grad[i],
///     m[i] = b1·m[i] + c1·g
///     v[i] = b2·v[i] + (c2·g)·g
///     x    = (double)value[i]·decay;  x = x − (lr·(m[i]/bc1)) / (sqrt(v[i]/bc2) + eps)
///     value[i] = (float)x
/// in exactly this order of operations, without fused multiply-adds: the same bits whatever the
/// instruction set (AVX, four lanes at a time, when the CPU has it).
void coptim_adamw_f32(float *value, const float *grad, double *m, double *v, ptrdiff_t n, const coptim_adamw_step *s);
/// The same for float64 parameters.
void coptim_adamw_f64(double *value, const double *grad, double *m, double *v, ptrdiff_t n, const coptim_adamw_step *s);

#endif

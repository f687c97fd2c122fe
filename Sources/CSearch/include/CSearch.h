// Small C kernels of emb-sim's exact top-k search, where Swift's SIMD types do not compile to the
// instructions they need (a vector comparison whose mask is tested at once; int16 dot products).
#ifndef CSEARCH_H
#define CSEARCH_H
#include <stddef.h>
#include <stdint.h>

/// The first index i in [from, n) with s[i] > threshold, or n when there is none. NaN is never
/// above anything. Scans four or eight floats per comparison.
ptrdiff_t csearch_next_above(const float *s, ptrdiff_t from, ptrdiff_t n, float threshold);

/// The largest integer code for rows of dimension `d`: sums of d products of two codes must fit
/// an int32 (and a pair of products an int32 too), at most 2047.
int32_t csearch_code_limit(ptrdiff_t d);

/// Quantises `n` rows of `d` floats, row by row, to integers in [-limit, limit]: code =
/// round(x / scale), scale = max|x| / limit (0 for an all-zero row). Per row also: `err`, the
/// Euclidean norm of x - scale·code, and `norm`, that of scale·code (both in double).
/// Query layout: row-major, rows `dp` wide (d rounded up to even, zero padded).
void csearch_quantize_rows(const float *x, ptrdiff_t n, ptrdiff_t d, ptrdiff_t dp, int32_t limit, int16_t *out,
                           float *scale, double *err, double *norm);
/// Corpus layout: groups of 16 rows, per group and per pair of columns the 16 rows' two codes
/// (group g, pair p at out + (g·dp/2 + p)·32); rows past `n` in the last group are zero.
/// `out` holds ceil(n/16)·16·dp codes; `tmp`, dp codes of scratch (one row, before it is spread).
void csearch_quantize_packed(const float *x, ptrdiff_t n, ptrdiff_t d, ptrdiff_t dp, int32_t limit, int16_t *out,
                             float *scale, double *err, double *norm, int16_t *tmp);

/// Approximate scores of `nq` query rows against `nc` packed corpus rows (codes of
/// csearch_quantize_rows and csearch_quantize_packed, same dp and limit):
/// out[i·ldo + j] = (qs[i]·cs[j]) · Σ_k q[i,k]·c[j,k], the sum exact in int32.
/// Runs the best kernel this CPU has (csearch_scores_kernel_name); every kernel gives the same bits.
void csearch_scores_i16(const int16_t *q, ptrdiff_t nq, const int16_t *c, ptrdiff_t nc, ptrdiff_t dp,
                        const float *qs, const float *cs, float *out, ptrdiff_t ldo);

/// The kernels of csearch_scores_i16, as bits: those this CPU can run (csearch_scores_kernels,
/// the generic C loop always) and the one to use (csearch_scores_i16_with: the best of the bits
/// given that the CPU has, so that tests can compare each kernel with the others).
enum {
    CSEARCH_KERNEL_GENERIC = 1,
    CSEARCH_KERNEL_AVX2 = 2,          // vpmaddwd + vpaddd, 8 int32 sums per pair of instructions
    CSEARCH_KERNEL_AVX512_VNNI = 4,   // vpdpwssd, 16 int32 sums per instruction
    CSEARCH_KERNEL_BEST = 7
};
int csearch_scores_kernels(void);
const char *csearch_scores_kernel_name(void);
void csearch_scores_i16_with(int kernel, const int16_t *q, ptrdiff_t nq, const int16_t *c, ptrdiff_t nc, ptrdiff_t dp,
                             const float *qs, const float *cs, float *out, ptrdiff_t ldo);

/// int8 codes (emb-sim --precision int8): the same quantisation with a limit of at most 127, the
/// largest for rows of dimension `d` that keeps every kernel's sums within an int32 (0: too wide).
int32_t csearch_code_limit_i8(ptrdiff_t d);
/// Query layout: row-major, rows `dp` wide (d rounded up to a multiple of 4, zero padded);
/// `tmp`, d int16 of scratch.
void csearch_quantize_rows_i8(const float *x, ptrdiff_t n, ptrdiff_t d, ptrdiff_t dp, int32_t limit, int8_t *out,
                              float *scale, double *err, double *norm, int16_t *tmp);
/// Corpus layout: groups of 16 rows, per group and per 4 columns the 16 rows' four codes (group
/// g, columns 4p..4p+3 at out + (g·dp/4 + p)·64); rows past `n` in the last group are zero.
/// `out` holds ceil(n/16)·16·dp codes, `sums` ceil(n/16)·16 int32: each row's sum of codes (0
/// past `n`), which the VNNI kernel needs.
void csearch_quantize_packed_i8(const float *x, ptrdiff_t n, ptrdiff_t d, ptrdiff_t dp, int32_t limit, int8_t *out,
                                int32_t *sums, float *scale, double *err, double *norm, int16_t *tmp);
/// As csearch_scores_i16, for int8 codes (VNNI: vpdpbusd, 64 multiply-adds per instruction; AVX2:
/// the codes widened to int16 and csearch_scores_i16's AVX2 kernel; generic C). Every kernel
/// gives the same bits.
void csearch_scores_i8(const int8_t *q, ptrdiff_t nq, const int8_t *c, const int32_t *sums, ptrdiff_t nc, ptrdiff_t dp,
                       const float *qs, const float *cs, float *out, ptrdiff_t ldo);
void csearch_scores_i8_with(int kernel, const int8_t *q, ptrdiff_t nq, const int8_t *c, const int32_t *sums, ptrdiff_t nc,
                            ptrdiff_t dp, const float *qs, const float *cs, float *out, ptrdiff_t ldo);

/// The dot product of two float rows, accumulated in double, rounded once to float.
float csearch_dot(const float *a, const float *b, ptrdiff_t d);

/// The dot product of two float rows in float, in one fixed order: element k into partial sum
/// k mod 32 by a fused multiply-add, the 32 partial sums then added in a fixed tree. The same bits
/// from every kernel (csearch_dot32_with: CSEARCH_KERNEL_GENERIC or _AVX2, for tests), whatever
/// the rows' addresses. emb-sim's σ_s² of the pairs that can enter a top-k.
float csearch_dot32(const float *a, const float *b, ptrdiff_t n);
float csearch_dot32_with(int kernel, const float *a, const float *b, ptrdiff_t n);

#endif

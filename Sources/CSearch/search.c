#include "CSearch.h"

#if defined(__x86_64__)
#include <immintrin.h>

__attribute__((target("avx2")))
static ptrdiff_t next_above_avx2(const float *s, ptrdiff_t i, ptrdiff_t n, float threshold) {
    const __m256 t = _mm256_set1_ps(threshold);
    for (; i + 32 <= n; i += 32) {
        __m256 a = _mm256_cmp_ps(_mm256_loadu_ps(s + i), t, _CMP_GT_OQ);
        __m256 b = _mm256_cmp_ps(_mm256_loadu_ps(s + i + 8), t, _CMP_GT_OQ);
        __m256 c = _mm256_cmp_ps(_mm256_loadu_ps(s + i + 16), t, _CMP_GT_OQ);
        __m256 d = _mm256_cmp_ps(_mm256_loadu_ps(s + i + 24), t, _CMP_GT_OQ);
        if (_mm256_movemask_ps(_mm256_or_ps(_mm256_or_ps(a, b), _mm256_or_ps(c, d)))) break;
    }
    for (; i + 8 <= n; i += 8) {
        int m = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(s + i), t, _CMP_GT_OQ));
        if (m) return i + __builtin_ctz((unsigned)m);
    }
    for (; i < n; i++) if (s[i] > threshold) return i;
    return n;
}

static ptrdiff_t next_above_sse(const float *s, ptrdiff_t i, ptrdiff_t n, float threshold) {
    const __m128 t = _mm_set1_ps(threshold);
    for (; i + 16 <= n; i += 16) {
        __m128 a = _mm_cmpgt_ps(_mm_loadu_ps(s + i), t), b = _mm_cmpgt_ps(_mm_loadu_ps(s + i + 4), t);
        __m128 c = _mm_cmpgt_ps(_mm_loadu_ps(s + i + 8), t), d = _mm_cmpgt_ps(_mm_loadu_ps(s + i + 12), t);
        if (_mm_movemask_ps(_mm_or_ps(_mm_or_ps(a, b), _mm_or_ps(c, d)))) break;
    }
    for (; i + 4 <= n; i += 4) {
        int m = _mm_movemask_ps(_mm_cmpgt_ps(_mm_loadu_ps(s + i), t));
        if (m) return i + __builtin_ctz((unsigned)m);
    }
    for (; i < n; i++) if (s[i] > threshold) return i;
    return n;
}

ptrdiff_t csearch_next_above(const float *s, ptrdiff_t from, ptrdiff_t n, float threshold) {
    return __builtin_cpu_supports("avx2") ? next_above_avx2(s, from, n, threshold) : next_above_sse(s, from, n, threshold);
}
#else
ptrdiff_t csearch_next_above(const float *s, ptrdiff_t i, ptrdiff_t n, float threshold) {
    for (; i < n; i++) if (s[i] > threshold) return i;
    return n;
}
#endif

// ---- Reduced precision: int16 codes, exact int32 sums ----
#include <math.h>
#include <stdlib.h>

int32_t csearch_code_limit(ptrdiff_t d) {
    double l = floor(sqrt(2147483647.0 / (double)(d < 2 ? 2 : d)));
    return l > 2047 ? 2047 : (int32_t)l;
}

// Codes of columns from..<d with scale s, adding the squared error and norm to *e2 and *n2.
static void quantize_columns(const float *row, ptrdiff_t from, ptrdiff_t d, float s, int32_t limit, int16_t *o,
                             double *e2, double *n2) {
    for (ptrdiff_t k = from; k < d; k++) {
        long v = s > 0 ? lrintf(row[k] / s) : 0;
        if (v > limit) v = limit;
        if (v < -limit) v = -limit;
        o[k] = (int16_t)v;
        double back = (double)s * (double)v, diff = (double)row[k] - back;
        *e2 += diff * diff; *n2 += back * back;
    }
}

#if defined(__x86_64__)
// The same as quantize_row_generic, eight columns at a time (round to nearest even both ways).
__attribute__((target("avx2,fma")))
static void quantize_row_avx2(const float *row, ptrdiff_t d, int32_t limit, int16_t *o,
                              float *scale, double *err, double *norm) {
    const __m256 signless = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 mx = _mm256_setzero_ps();
    ptrdiff_t k = 0;
    for (; k + 8 <= d; k += 8) mx = _mm256_max_ps(mx, _mm256_and_ps(_mm256_loadu_ps(row + k), signless));
    float t[8], m = 0;
    _mm256_storeu_ps(t, mx);
    for (int l = 0; l < 8; l++) if (t[l] > m) m = t[l];
    for (ptrdiff_t j = k; j < d; j++) { float a = fabsf(row[j]); if (a > m) m = a; }
    float s = m / (float)limit;
    const __m256 sv = _mm256_set1_ps(s);
    const __m256i hi = _mm256_set1_epi32(limit), lo = _mm256_set1_epi32(-limit);
    const __m256d sd = _mm256_set1_pd((double)s);
    __m256d e2 = _mm256_setzero_pd(), n2 = e2;
    for (k = 0; k + 8 <= d && s > 0; k += 8) {
        __m256 x = _mm256_loadu_ps(row + k);
        __m256i v = _mm256_min_epi32(hi, _mm256_max_epi32(lo, _mm256_cvtps_epi32(_mm256_div_ps(x, sv))));
        __m128i packed = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
        _mm_storeu_si128((__m128i *)(o + k), packed);
        for (int h = 0; h < 2; h++) {
            __m256d back = _mm256_mul_pd(sd, _mm256_cvtepi32_pd(h ? _mm256_extracti128_si256(v, 1) : _mm256_castsi256_si128(v)));
            __m256d diff = _mm256_sub_pd(_mm256_cvtps_pd(h ? _mm256_extractf128_ps(x, 1) : _mm256_castps256_ps128(x)), back);
            e2 = _mm256_fmadd_pd(diff, diff, e2);
            n2 = _mm256_fmadd_pd(back, back, n2);
        }
    }
    double te[4], tn[4];
    _mm256_storeu_pd(te, e2); _mm256_storeu_pd(tn, n2);
    double se = (te[0] + te[1]) + (te[2] + te[3]), sn = (tn[0] + tn[1]) + (tn[2] + tn[3]);
    quantize_columns(row, k, d, s, limit, o, &se, &sn);
    *scale = s; *err = sqrt(se); *norm = sqrt(sn);
}
#endif

static void quantize_row_generic(const float *row, ptrdiff_t d, int32_t limit, int16_t *o,
                                 float *scale, double *err, double *norm);

static void quantize_row(const float *row, ptrdiff_t d, int32_t limit, int16_t *o,
                         float *scale, double *err, double *norm) {
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) { quantize_row_avx2(row, d, limit, o, scale, err, norm); return; }
#endif
    quantize_row_generic(row, d, limit, o, scale, err, norm);
}

static void quantize_row_generic(const float *row, ptrdiff_t d, int32_t limit, int16_t *o,
                                 float *scale, double *err, double *norm) {
    float m = 0;
    for (ptrdiff_t k = 0; k < d; k++) { float a = fabsf(row[k]); if (a > m) m = a; }
    float s = m / (float)limit;
    double e2 = 0, n2 = 0;
    quantize_columns(row, 0, d, s, limit, o, &e2, &n2);
    *scale = s; *err = sqrt(e2); *norm = sqrt(n2);
}

void csearch_quantize_rows(const float *x, ptrdiff_t n, ptrdiff_t d, ptrdiff_t dp, int32_t limit, int16_t *out,
                           float *scale, double *err, double *norm) {
    for (ptrdiff_t r = 0; r < n; r++) {
        quantize_row(x + r * d, d, limit, out + r * dp, scale + r, err + r, norm + r);
        for (ptrdiff_t k = d; k < dp; k++) out[r * dp + k] = 0;
    }
}

// Column k of row r of a group sits at (k/2)·32 + (r%16)·2 + k%2 within the group.
void csearch_quantize_packed(const float *x, ptrdiff_t n, ptrdiff_t d, ptrdiff_t dp, int32_t limit, int16_t *out,
                             float *scale, double *err, double *norm, int16_t *tmp) {
    ptrdiff_t groups = (n + 15) / 16;
    for (ptrdiff_t i = 0; i < groups * 16 * dp; i++) out[i] = 0;
    for (ptrdiff_t r = 0; r < n; r++) {
        quantize_row(x + r * d, d, limit, tmp, scale + r, err + r, norm + r);
        int16_t *g = out + (r / 16) * 16 * dp + (r % 16) * 2;
        for (ptrdiff_t k = 0; k < d; k++) g[(k / 2) * 32 + (k % 2)] = tmp[k];
    }
}

static void scores_generic(const int16_t *q, ptrdiff_t nq, const int16_t *c, ptrdiff_t nc, ptrdiff_t dp,
                           const float *qs, const float *cs, float *out, ptrdiff_t ldo) {
    for (ptrdiff_t i = 0; i < nq; i++)
        for (ptrdiff_t j = 0; j < nc; j++) {
            const int16_t *g = c + (j / 16) * 16 * dp + (j % 16) * 2;
            int32_t acc = 0;
            for (ptrdiff_t k = 0; k < dp; k++) acc += (int32_t)q[i * dp + k] * (int32_t)g[(k / 2) * 32 + (k % 2)];
            out[i * ldo + j] = (qs[i] * cs[j]) * (float)acc;
        }
}

#if defined(__x86_64__)
// The kernels' last step, shared: `n` queries' int32 sums of corpus rows j ..< j + w (w ≤ 8 or
// ≤ 16) to scores, (qs[i]·cs[j])·sum, written to their rows of `out` and nowhere past column j + w.
__attribute__((target("avx2")))
static inline void store_scores8(const __m256i *sums, int n, ptrdiff_t w, const float *qs, const float *cs,
                                 float *out, ptrdiff_t ldo) {
    float cv[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (ptrdiff_t l = 0; l < w; l++) cv[l] = cs[l];
    __m256 csv = _mm256_loadu_ps(cv);
    for (int a = 0; a < n; a++) {
        __m256 v = _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(qs[a]), csv), _mm256_cvtepi32_ps(sums[a]));
        if (w == 8) _mm256_storeu_ps(out + a * ldo, v);
        else { float t[8]; _mm256_storeu_ps(t, v); for (ptrdiff_t l = 0; l < w; l++) out[a * ldo + l] = t[l]; }
    }
}

__attribute__((target("avx512f")))
static inline void store_scores16(const __m512i *sums, int n, ptrdiff_t w, const float *qs, const float *cs,
                                  float *out, ptrdiff_t ldo) {
    __mmask16 m = (__mmask16)((1u << w) - 1);
    __m512 csv = _mm512_maskz_loadu_ps(m, cs);
    for (int a = 0; a < n; a++) {
        __m512 v = _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(qs[a]), csv), _mm512_cvtepi32_ps(sums[a]));
        _mm512_mask_storeu_ps(out + a * ldo, m, v);
    }
}
#endif

#if defined(__x86_64__)
// 6 queries × one group of 16 corpus rows per step: per pair of columns, each query's two codes
// broadcast as one 32-bit word, multiplied (vpmaddwd) with the packed codes of rows 0-7 and 8-15
// of the group: 12 accumulators of 8 sums each, no horizontal reduction. Corpus rows in chunks
// of 256 that stay in L2.
__attribute__((target("avx2")))
static void scores_avx2(const int16_t *q, ptrdiff_t nq, const int16_t *c, ptrdiff_t nc, ptrdiff_t dp,
                        const float *qs, const float *cs, float *out, ptrdiff_t ldo) {
    const ptrdiff_t pairs = dp / 2, groups = (nc + 15) / 16, chunk = 16;
    for (ptrdiff_t g0 = 0; g0 < groups; g0 += chunk) {
        ptrdiff_t g1 = g0 + chunk < groups ? g0 + chunk : groups;
        for (ptrdiff_t i = 0; i < nq; i += 6) {
            const int32_t *qr[6];
            for (int a = 0; a < 6; a++) qr[a] = (const int32_t *)(q + (i + a < nq ? i + a : nq - 1) * dp);
            for (ptrdiff_t g = g0; g < g1; g++) {
                const __m256i *bp = (const __m256i *)(c + g * 16 * dp);
                __m256i a00 = _mm256_setzero_si256(), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00;
                __m256i a30 = a00, a31 = a00, a40 = a00, a41 = a00, a50 = a00, a51 = a00;
                for (ptrdiff_t p = 0; p < pairs; p++) {
                    __m256i b0 = _mm256_loadu_si256(bp + 2 * p), b1 = _mm256_loadu_si256(bp + 2 * p + 1), x;
// One query row: its two codes of pair p against both halves of the group.
#define ROW(a, A0, A1) x = _mm256_set1_epi32(qr[a][p]); \
    A0 = _mm256_add_epi32(A0, _mm256_madd_epi16(x, b0)); A1 = _mm256_add_epi32(A1, _mm256_madd_epi16(x, b1));
                    ROW(0, a00, a01) ROW(1, a10, a11) ROW(2, a20, a21) ROW(3, a30, a31) ROW(4, a40, a41) ROW(5, a50, a51)
#undef ROW
                }
                __m256i acc[2][6] = {{a00, a10, a20, a30, a40, a50}, {a01, a11, a21, a31, a41, a51}};
                for (int b = 0; b < 2; b++) {
                    ptrdiff_t j = g * 16 + b * 8;
                    if (j >= nc) break;
                    store_scores8(acc[b], nq - i < 6 ? (int)(nq - i) : 6, nc - j < 8 ? nc - j : 8, qs + i, cs + j, out + i * ldo + j, ldo);
                }
            }
        }
    }
}

// AVX-512 VNNI: QB queries × GB groups (16 corpus rows each) per step, vpdpwssd multiplying and
// accumulating 16 rows' pairs of codes in one instruction (the AVX2 kernel needs two per 8 rows):
// QB·GB accumulators of 16 sums. The same int32 sums, the same float products, the same bits.
// 4 × 4 measured on a Zen 5 core (bench/integer-kernels.c): 235–247 G multiply-adds/s, the AVX2
// kernel 110; 6 × 2 and 6 × 4 within 3 %, 12 × 1 and 12 × 2 slower (too few corpus rows per
// broadcast, or spills).
__attribute__((target("avx512f,avx512vnni")))
static void scores_vnni(const int16_t *q, ptrdiff_t nq, const int16_t *c, ptrdiff_t nc, ptrdiff_t dp,
                        const float *qs, const float *cs, float *out, ptrdiff_t ldo) {
    enum { QB = 4, GB = 4 };
    const ptrdiff_t pairs = dp / 2, groups = (nc + 15) / 16, chunk = 16;
    for (ptrdiff_t g0 = 0; g0 < groups; g0 += chunk) {
        ptrdiff_t g1 = g0 + chunk < groups ? g0 + chunk : groups;
        for (ptrdiff_t i = 0; i < nq; i += QB) {
            const int32_t *qr[QB];
            for (int a = 0; a < QB; a++) qr[a] = (const int32_t *)(q + (i + a < nq ? i + a : nq - 1) * dp);
            for (ptrdiff_t g = g0; g < g1; g += GB) {
                const __m512i *bp[GB];
                for (int b = 0; b < GB; b++) bp[b] = (const __m512i *)(c + (g + b < g1 ? g + b : g) * 16 * dp);
                // The accumulators by name, so that every compiler keeps them in registers (an
                // array of them stayed in memory under gcc -O2: a sixth of the rate).
                __m512i a00 = _mm512_setzero_si512(), a01 = a00, a02 = a00, a03 = a00, a10 = a00, a11 = a00, a12 = a00, a13 = a00;
                __m512i a20 = a00, a21 = a00, a22 = a00, a23 = a00, a30 = a00, a31 = a00, a32 = a00, a33 = a00;
                for (ptrdiff_t p = 0; p < pairs; p++) {
                    __m512i y0 = _mm512_loadu_si512(bp[0] + p), y1 = _mm512_loadu_si512(bp[1] + p);
                    __m512i y2 = _mm512_loadu_si512(bp[2] + p), y3 = _mm512_loadu_si512(bp[3] + p), x;
// One query row: its two codes of pair p against the four groups.
#define ROW(a, A0, A1, A2, A3) x = _mm512_set1_epi32(qr[a][p]); \
    A0 = _mm512_dpwssd_epi32(A0, x, y0); A1 = _mm512_dpwssd_epi32(A1, x, y1); \
    A2 = _mm512_dpwssd_epi32(A2, x, y2); A3 = _mm512_dpwssd_epi32(A3, x, y3);
                    ROW(0, a00, a01, a02, a03) ROW(1, a10, a11, a12, a13) ROW(2, a20, a21, a22, a23) ROW(3, a30, a31, a32, a33)
#undef ROW
                }
                __m512i acc[GB][QB] = {{a00, a10, a20, a30}, {a01, a11, a21, a31}, {a02, a12, a22, a32}, {a03, a13, a23, a33}};
                for (int b = 0; b < GB; b++) {
                    ptrdiff_t j = (g + b) * 16;
                    if (g + b >= g1) break;
                    store_scores16(acc[b], nq - i < QB ? (int)(nq - i) : QB, nc - j < 16 ? nc - j : 16, qs + i, cs + j, out + i * ldo + j, ldo);
                }
            }
        }
    }
}
__attribute__((target("avx2,fma")))
static float dot_avx2(const float *a, const float *b, ptrdiff_t d) {
    __m256d s0 = _mm256_setzero_pd(), s1 = s0;
    ptrdiff_t k = 0;
    for (; k + 8 <= d; k += 8) {
        __m256 x = _mm256_loadu_ps(a + k), y = _mm256_loadu_ps(b + k);
        s0 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(x)), _mm256_cvtps_pd(_mm256_castps256_ps128(y)), s0);
        s1 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(x, 1)), _mm256_cvtps_pd(_mm256_extractf128_ps(y, 1)), s1);
    }
    double t[4];
    _mm256_storeu_pd(t, _mm256_add_pd(s0, s1));
    double s = (t[0] + t[1]) + (t[2] + t[3]);
    for (; k < d; k++) s += (double)a[k] * (double)b[k];
    return (float)s;
}
#endif

static float dot_generic(const float *a, const float *b, ptrdiff_t d) {
    double s = 0;
    for (ptrdiff_t k = 0; k < d; k++) s += (double)a[k] * (double)b[k];
    return (float)s;
}

int csearch_scores_kernels(void) {
    int k = CSEARCH_KERNEL_GENERIC;
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx2")) k |= CSEARCH_KERNEL_AVX2;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vnni")) k |= CSEARCH_KERNEL_AVX512_VNNI;
#endif
    return k;
}

const char *csearch_scores_kernel_name(void) {
    int k = csearch_scores_kernels();
    return k & CSEARCH_KERNEL_AVX512_VNNI ? "AVX-512 VNNI" : k & CSEARCH_KERNEL_AVX2 ? "AVX2" : "generic";
}

void csearch_scores_i16_with(int kernel, const int16_t *q, ptrdiff_t nq, const int16_t *c, ptrdiff_t nc, ptrdiff_t dp,
                             const float *qs, const float *cs, float *out, ptrdiff_t ldo) {
    if (nq <= 0 || nc <= 0) return;
    kernel &= csearch_scores_kernels();
#if defined(__x86_64__)
    if (kernel & CSEARCH_KERNEL_AVX512_VNNI) { scores_vnni(q, nq, c, nc, dp, qs, cs, out, ldo); return; }
    if (kernel & CSEARCH_KERNEL_AVX2) { scores_avx2(q, nq, c, nc, dp, qs, cs, out, ldo); return; }
#endif
    scores_generic(q, nq, c, nc, dp, qs, cs, out, ldo);
}

void csearch_scores_i16(const int16_t *q, ptrdiff_t nq, const int16_t *c, ptrdiff_t nc, ptrdiff_t dp,
                        const float *qs, const float *cs, float *out, ptrdiff_t ldo) {
    csearch_scores_i16_with(CSEARCH_KERNEL_BEST, q, nq, c, nc, dp, qs, cs, out, ldo);
}

float csearch_dot(const float *a, const float *b, ptrdiff_t d) {
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return dot_avx2(a, b, d);
#endif
    return dot_generic(a, b, d);
}

// ---- A float dot product with the same bits on every CPU ----
// Element k goes into partial sum k mod 32 by a fused multiply-add, in increasing k; the 32
// partial sums (four vectors of eight) are then added in one fixed tree. The generic loop does
// exactly these operations one element at a time, so both kernels give the same bits.
static float sum32(const float p[32]) {
    float v[8];
    for (int l = 0; l < 8; l++) v[l] = (p[l] + p[8 + l]) + (p[16 + l] + p[24 + l]);
    return ((v[0] + v[4]) + (v[2] + v[6])) + ((v[1] + v[5]) + (v[3] + v[7]));
}

static float dot32_generic(const float *a, const float *b, ptrdiff_t n) {
    float p[32] = {0};
    for (ptrdiff_t k = 0; k < n; k++) p[k % 32] = fmaf(a[k], b[k], p[k % 32]);
    return sum32(p);
}

#if defined(__x86_64__)
__attribute__((target("avx2,fma")))
static float dot32_avx2(const float *a, const float *b, ptrdiff_t n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    ptrdiff_t k = 0;
    for (; k + 32 <= n; k += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + k), _mm256_loadu_ps(b + k), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + k + 8), _mm256_loadu_ps(b + k + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + k + 16), _mm256_loadu_ps(b + k + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + k + 24), _mm256_loadu_ps(b + k + 24), s3);
    }
    float p[32];
    _mm256_storeu_ps(p, s0); _mm256_storeu_ps(p + 8, s1); _mm256_storeu_ps(p + 16, s2); _mm256_storeu_ps(p + 24, s3);
    // The tail: element k into partial k mod 32, as the generic loop does.
    for (ptrdiff_t j = 0; k + j < n; j++) p[j] = fmaf(a[k + j], b[k + j], p[j]);
    return sum32(p);
}
#endif

float csearch_dot32_with(int kernel, const float *a, const float *b, ptrdiff_t n) {
#if defined(__x86_64__)
    if ((kernel & CSEARCH_KERNEL_AVX2) && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return dot32_avx2(a, b, n);
#endif
    return dot32_generic(a, b, n);
}

float csearch_dot32(const float *a, const float *b, ptrdiff_t n) {
    return csearch_dot32_with(CSEARCH_KERNEL_BEST, a, b, n);
}

// ---- int8 codes (emb-sim --precision int8) ----
// Codes in [-limit, limit], limit ≤ 127, quantised as the int16 codes are (quantize_row). The
// VNNI kernel multiplies unsigned by signed bytes (vpdpbusd): it takes a query's code q as the
// unsigned byte q + 128 (q XOR 0x80) and subtracts 128·Σ_k c[j,k] afterwards, so that its sums are
// the signed ones, exactly, as the AVX2 and generic kernels compute them.

int32_t csearch_code_limit_i8(ptrdiff_t d) {
    // Largest L ≤ 127 with d·(128 + L)·L ≤ 2^31 − 1: the VNNI kernel's unsigned sums fit an int32.
    double dd = (double)(d < 1 ? 1 : d), l = floor((-128.0 + sqrt(128.0 * 128.0 + 4.0 * 2147483647.0 / dd)) / 2);
    if (l > 127) l = 127;
    while (l > 0 && dd * (128 + l) * l > 2147483647.0) l -= 1;
    return l < 0 ? 0 : (int32_t)l;
}

static void narrow(const int16_t *t, ptrdiff_t d, int8_t *o) {
    for (ptrdiff_t k = 0; k < d; k++) o[k] = (int8_t)t[k];
}

void csearch_quantize_rows_i8(const float *x, ptrdiff_t n, ptrdiff_t d, ptrdiff_t dp, int32_t limit, int8_t *out,
                              float *scale, double *err, double *norm, int16_t *tmp) {
    for (ptrdiff_t r = 0; r < n; r++) {
        quantize_row(x + r * d, d, limit, tmp, scale + r, err + r, norm + r);
        narrow(tmp, d, out + r * dp);
        for (ptrdiff_t k = d; k < dp; k++) out[r * dp + k] = 0;
    }
}

// Column k of row r of a group sits at (k/4)·64 + (r%16)·4 + k%4 within the group.
void csearch_quantize_packed_i8(const float *x, ptrdiff_t n, ptrdiff_t d, ptrdiff_t dp, int32_t limit, int8_t *out,
                                int32_t *sums, float *scale, double *err, double *norm, int16_t *tmp) {
    ptrdiff_t groups = (n + 15) / 16;
    for (ptrdiff_t i = 0; i < groups * 16 * dp; i++) out[i] = 0;
    for (ptrdiff_t r = 0; r < groups * 16; r++) sums[r] = 0;
    for (ptrdiff_t r = 0; r < n; r++) {
        quantize_row(x + r * d, d, limit, tmp, scale + r, err + r, norm + r);
        int8_t *g = out + (r / 16) * 16 * dp + (r % 16) * 4;
        int32_t s = 0;
        for (ptrdiff_t k = 0; k < d; k++) { g[(k / 4) * 64 + (k % 4)] = (int8_t)tmp[k]; s += tmp[k]; }
        sums[r] = s;
    }
}

static void scores8_generic(const int8_t *q, ptrdiff_t nq, const int8_t *c, ptrdiff_t nc, ptrdiff_t dp,
                            const float *qs, const float *cs, float *out, ptrdiff_t ldo) {
    for (ptrdiff_t i = 0; i < nq; i++)
        for (ptrdiff_t j = 0; j < nc; j++) {
            const int8_t *g = c + (j / 16) * 16 * dp + (j % 16) * 4;
            int32_t acc = 0;
            for (ptrdiff_t k = 0; k < dp; k++) acc += (int32_t)q[i * dp + k] * (int32_t)g[(k / 4) * 64 + (k % 4)];
            out[i * ldo + j] = (qs[i] * cs[j]) * (float)acc;
        }
}

#if defined(__x86_64__)
// AVX2 has no byte multiply-add without saturation: the codes are widened to int16, into the
// int16 layouts (queries row-major, the corpus in groups of 16 rows by pairs of columns), and
// scored by the int16 AVX2 kernel: the same exact int32 sums, at 0.91× its rate with the copies
// (bench/integer-kernels.c on a Zen 4: 72 against 79 G multiply-adds/s; a kernel of its own that
// widened the bytes in its inner loop ran at 0.65×). The copies cost one pass over the codes per
// call, against nq passes of the kernel.
static void scores8_avx2(const int8_t *q, ptrdiff_t nq, const int8_t *c, ptrdiff_t nc, ptrdiff_t dp,
                         const float *qs, const float *cs, float *out, ptrdiff_t ldo) {
    ptrdiff_t groups = (nc + 15) / 16;
    int16_t *q16 = malloc(sizeof(int16_t) * (size_t)(nq * dp)), *c16 = malloc(sizeof(int16_t) * (size_t)(groups * 16 * dp));
    if (!q16 || !c16) { free(q16); free(c16); scores8_generic(q, nq, c, nc, dp, qs, cs, out, ldo); return; }
    for (ptrdiff_t k = 0; k < nq * dp; k++) q16[k] = q[k];
    for (ptrdiff_t g = 0; g < groups; g++) {
        const int8_t *src = c + g * 16 * dp;
        int16_t *dst = c16 + g * 16 * dp;
        for (ptrdiff_t quad = 0; quad < dp / 4; quad++)
            for (ptrdiff_t r = 0; r < 16; r++)
                for (ptrdiff_t l = 0; l < 4; l++) {
                    ptrdiff_t k = quad * 4 + l;
                    dst[(k / 2) * 32 + r * 2 + k % 2] = src[quad * 64 + r * 4 + l];
                }
    }
    scores_avx2(q16, nq, c16, nc, dp, qs, cs, out, ldo);
    free(q16); free(c16);
}

// AVX-512 VNNI: QB queries × GB groups per step, vpdpbusd multiplying and accumulating 16 rows'
// 4 codes in one instruction (64 multiply-adds, twice vpdpwssd's): the query's bytes as unsigned
// (q + 128), the corpus row's sum times 128 taken off at the end.
__attribute__((target("avx512f,avx512vnni")))
static void scores8_vnni(const int8_t *q, ptrdiff_t nq, const int8_t *c, const int32_t *sums, ptrdiff_t nc, ptrdiff_t dp,
                         const float *qs, const float *cs, float *out, ptrdiff_t ldo) {
    enum { QB = 4, GB = 4 };
    const ptrdiff_t quads = dp / 4, groups = (nc + 15) / 16, chunk = 32;
    // The queries' codes as unsigned bytes, once (a broadcast from memory in the inner loop).
    int32_t *qu = malloc((size_t)nq * (size_t)dp);
    if (!qu) { scores8_generic(q, nq, c, nc, dp, qs, cs, out, ldo); return; }
    for (ptrdiff_t k = 0; k < nq * dp / 4; k++) { int32_t w; __builtin_memcpy(&w, q + 4 * k, 4); qu[k] = w ^ (int32_t)0x80808080u; }
    for (ptrdiff_t g0 = 0; g0 < groups; g0 += chunk) {
        ptrdiff_t g1 = g0 + chunk < groups ? g0 + chunk : groups;
        for (ptrdiff_t i = 0; i < nq; i += QB) {
            const int32_t *qr[QB];
            for (int a = 0; a < QB; a++) qr[a] = qu + (i + a < nq ? i + a : nq - 1) * (dp / 4);
            for (ptrdiff_t g = g0; g < g1; g += GB) {
                const __m512i *bp[GB];
                for (int b = 0; b < GB; b++) bp[b] = (const __m512i *)(c + (g + b < g1 ? g + b : g) * 16 * dp);
                // Accumulators in an array whose loops the compiler unrolls fully: registers, and 1.3× the
                // rate of the same code with named accumulators (195 against 150 G/s on a Zen 4).
                __m512i acc[QB][GB];
#pragma GCC unroll 8
                for (int a = 0; a < QB; a++)
#pragma GCC unroll 8
                    for (int b = 0; b < GB; b++) acc[a][b] = _mm512_setzero_si512();
                for (ptrdiff_t p = 0; p < quads; p++) {
                    __m512i y[GB];
#pragma GCC unroll 8
                    for (int b = 0; b < GB; b++) y[b] = _mm512_loadu_si512(bp[b] + p);
                    // Each query row: its four codes of quad p, as unsigned bytes, against the groups.
#pragma GCC unroll 8
                    for (int a = 0; a < QB; a++) {
                        __m512i x = _mm512_set1_epi32(qr[a][p]);
#pragma GCC unroll 8
                        for (int b = 0; b < GB; b++) acc[a][b] = _mm512_dpbusd_epi32(acc[a][b], x, y[b]);
                    }
                }
                for (int b = 0; b < GB; b++) {
                    ptrdiff_t j = (g + b) * 16;
                    if (g + b >= g1) break;
                    // The signed sums: 128·Σ_k c[j,k] off the unsigned ones.
                    __m512i off = _mm512_slli_epi32(_mm512_loadu_si512(sums + j), 7), signed_sums[QB];
                    for (int a = 0; a < QB; a++) signed_sums[a] = _mm512_sub_epi32(acc[a][b], off);
                    store_scores16(signed_sums, nq - i < QB ? (int)(nq - i) : QB, nc - j < 16 ? nc - j : 16, qs + i, cs + j, out + i * ldo + j, ldo);
                }
            }
        }
    }
    free(qu);
}
#endif

void csearch_scores_i8_with(int kernel, const int8_t *q, ptrdiff_t nq, const int8_t *c, const int32_t *sums, ptrdiff_t nc,
                            ptrdiff_t dp, const float *qs, const float *cs, float *out, ptrdiff_t ldo) {
    if (nq <= 0 || nc <= 0) return;
    kernel &= csearch_scores_kernels();
#if defined(__x86_64__)
    if (kernel & CSEARCH_KERNEL_AVX512_VNNI) { scores8_vnni(q, nq, c, sums, nc, dp, qs, cs, out, ldo); return; }
    if (kernel & CSEARCH_KERNEL_AVX2) { scores8_avx2(q, nq, c, nc, dp, qs, cs, out, ldo); return; }
#endif
    (void)sums;
    scores8_generic(q, nq, c, nc, dp, qs, cs, out, ldo);
}

void csearch_scores_i8(const int8_t *q, ptrdiff_t nq, const int8_t *c, const int32_t *sums, ptrdiff_t nc, ptrdiff_t dp,
                       const float *qs, const float *cs, float *out, ptrdiff_t ldo) {
    csearch_scores_i8_with(CSEARCH_KERNEL_BEST, q, nq, c, sums, nc, dp, qs, cs, out, ldo);
}

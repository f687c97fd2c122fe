#include "CShuffle.h"
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define LOAD(p) _mm_loadu_si128((const __m128i *)(p))
#define STORE(p, v) _mm_storeu_si128((__m128i *)(p), (v))

void cshuffle_unshuffle2(const uint8_t *src, uint8_t *dst, size_t n) {
    const uint8_t *p0 = src, *p1 = src + n;
    size_t i = 0;
#if defined(__SSE2__)
    for (; i + 16 <= n; i += 16) {
        __m128i a = LOAD(p0 + i), b = LOAD(p1 + i);
        STORE(dst + 2 * i, _mm_unpacklo_epi8(a, b));
        STORE(dst + 2 * i + 16, _mm_unpackhi_epi8(a, b));
    }
#endif
    for (; i < n; i++) { dst[2 * i] = p0[i]; dst[2 * i + 1] = p1[i]; }
}

void cshuffle_unshuffle4(const uint8_t *src, uint8_t *dst, size_t n) {
    const uint8_t *p0 = src, *p1 = src + n, *p2 = src + 2 * n, *p3 = src + 3 * n;
    size_t i = 0;
#if defined(__SSE2__)
    for (; i + 16 <= n; i += 16) {
        // Bytes 0 and 1 of 16 elements side by side, then bytes 2 and 3; then the pairs of pairs.
        __m128i a = LOAD(p0 + i), b = LOAD(p1 + i), c = LOAD(p2 + i), d = LOAD(p3 + i);
        __m128i ab0 = _mm_unpacklo_epi8(a, b), ab1 = _mm_unpackhi_epi8(a, b);
        __m128i cd0 = _mm_unpacklo_epi8(c, d), cd1 = _mm_unpackhi_epi8(c, d);
        uint8_t *o = dst + 4 * i;
        STORE(o, _mm_unpacklo_epi16(ab0, cd0));
        STORE(o + 16, _mm_unpackhi_epi16(ab0, cd0));
        STORE(o + 32, _mm_unpacklo_epi16(ab1, cd1));
        STORE(o + 48, _mm_unpackhi_epi16(ab1, cd1));
    }
#endif
    for (; i < n; i++) { dst[4 * i] = p0[i]; dst[4 * i + 1] = p1[i]; dst[4 * i + 2] = p2[i]; dst[4 * i + 3] = p3[i]; }
}

void cshuffle_unshuffle8(const uint8_t *src, uint8_t *dst, size_t n) {
    size_t i = 0;
#if defined(__SSE2__)
    for (; i + 16 <= n; i += 16) {
        __m128i v[8];
        for (int b = 0; b < 8; b++) v[b] = LOAD(src + (size_t)b * n + i);
        // Byte pairs (0 1, 2 3, 4 5, 6 7) of elements 0–7 and 8–15, then quadruples, then the eight bytes.
        __m128i a0 = _mm_unpacklo_epi8(v[0], v[1]), a1 = _mm_unpackhi_epi8(v[0], v[1]);
        __m128i b0 = _mm_unpacklo_epi8(v[2], v[3]), b1 = _mm_unpackhi_epi8(v[2], v[3]);
        __m128i c0 = _mm_unpacklo_epi8(v[4], v[5]), c1 = _mm_unpackhi_epi8(v[4], v[5]);
        __m128i d0 = _mm_unpacklo_epi8(v[6], v[7]), d1 = _mm_unpackhi_epi8(v[6], v[7]);
        __m128i lo[4] = { _mm_unpacklo_epi16(a0, b0), _mm_unpackhi_epi16(a0, b0), _mm_unpacklo_epi16(a1, b1), _mm_unpackhi_epi16(a1, b1) };
        __m128i hi[4] = { _mm_unpacklo_epi16(c0, d0), _mm_unpackhi_epi16(c0, d0), _mm_unpacklo_epi16(c1, d1), _mm_unpackhi_epi16(c1, d1) };
        uint8_t *o = dst + 8 * i;
        for (int q = 0; q < 4; q++) {
            STORE(o + 32 * q, _mm_unpacklo_epi32(lo[q], hi[q]));
            STORE(o + 32 * q + 16, _mm_unpackhi_epi32(lo[q], hi[q]));
        }
    }
#endif
    for (; i < n; i++) for (int b = 0; b < 8; b++) dst[8 * i + b] = src[(size_t)b * n + i];
}

void cshuffle_shuffle2(const uint8_t *src, uint8_t *dst, size_t n) {
    uint8_t *p0 = dst, *p1 = dst + n;
    size_t i = 0;
#if defined(__SSE2__)
    const __m128i low = _mm_set1_epi16(0xFF);
    for (; i + 16 <= n; i += 16) {
        __m128i x0 = LOAD(src + 2 * i), x1 = LOAD(src + 2 * i + 16);
        STORE(p0 + i, _mm_packus_epi16(_mm_and_si128(x0, low), _mm_and_si128(x1, low)));
        STORE(p1 + i, _mm_packus_epi16(_mm_srli_epi16(x0, 8), _mm_srli_epi16(x1, 8)));
    }
#endif
    for (; i < n; i++) { p0[i] = src[2 * i]; p1[i] = src[2 * i + 1]; }
}

void cshuffle_shuffle4(const uint8_t *src, uint8_t *dst, size_t n) {
    uint8_t *p[4] = { dst, dst + n, dst + 2 * n, dst + 3 * n };
    size_t i = 0;
#if defined(__SSE2__)
    const __m128i low = _mm_set1_epi32(0xFF);
    for (; i + 16 <= n; i += 16) {
        const uint8_t *x = src + 4 * i;
        __m128i x0 = LOAD(x), x1 = LOAD(x + 16), x2 = LOAD(x + 32), x3 = LOAD(x + 48);
        // Byte b of each element, as 32-bit lanes of 0–255, packed to words, then to bytes.
#define PLANE(b)                                                                                 \
        {                                                                                        \
            __m128i a = _mm_and_si128(_mm_srli_epi32(x0, 8 * (b)), low), c = _mm_and_si128(_mm_srli_epi32(x1, 8 * (b)), low); \
            __m128i e = _mm_and_si128(_mm_srli_epi32(x2, 8 * (b)), low), g = _mm_and_si128(_mm_srli_epi32(x3, 8 * (b)), low); \
            STORE(p[b] + i, _mm_packus_epi16(_mm_packs_epi32(a, c), _mm_packs_epi32(e, g)));      \
        }
        PLANE(0) PLANE(1) PLANE(2) PLANE(3)
#undef PLANE
    }
#endif
    for (; i < n; i++) for (int b = 0; b < 4; b++) p[b][i] = src[4 * i + b];
}

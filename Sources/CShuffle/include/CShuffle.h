// The byte-shuffle filter's loops (Sources/TensorStream/Shuffle.swift), in C: on x86-64 with
// SSE2's byte and word unpacks and saturating packs — instructions every x86-64 CPU has, which
// Swift's SIMD types do not reach, and which the compiler does not find for the plain loops
// (4-byte unshuffle 47 GB/s against 5.6 in cache, shuffle 20 against 3.7); plain loops elsewhere.
// `n` is the number of elements; the planes are the n first bytes of every element, then the n
// second bytes, and so on.
#ifndef CSHUFFLE_H
#define CSHUFFLE_H
#include <stddef.h>
#include <stdint.h>

/// dst[size·i + b] = src[b·n + i] for elements of size 2, 4 or 8 bytes.
void cshuffle_unshuffle2(const uint8_t *src, uint8_t *dst, size_t n);
void cshuffle_unshuffle4(const uint8_t *src, uint8_t *dst, size_t n);
void cshuffle_unshuffle8(const uint8_t *src, uint8_t *dst, size_t n);
/// dst[b·n + i] = src[size·i + b] for elements of size 2 or 4 bytes.
void cshuffle_shuffle2(const uint8_t *src, uint8_t *dst, size_t n);
void cshuffle_shuffle4(const uint8_t *src, uint8_t *dst, size_t n);

#endif

/* The integer passes of emb-sim --precision int16 and int8 alone: every kernel this CPU runs (generic C,
 * AVX2, AVX-512 VNNI) on the same codes, one thread, with its rate in multiply-adds per second
 * (the median of 5 runs after one not counted) and whether its scores are bit-identical to the
 * first kernel's. Random rows, quantised as emb-sim quantises them (packed corpus, row-major
 * queries). bench/emb-sim.sh builds and runs it.
 *
 *   clang -O2 -I Sources/CSearch/include bench/integer-kernels.c -lm -o integer-kernels
 * (the compiler the Swift toolchain compiles Sources/CSearch with; gcc's code for the int8 VNNI
 * kernel ran at about half the rate of clang's on a Zen 4)
 *   ./integer-kernels [queries 1000] [corpus rows 65536] [dimension 384]
 */
#include "../Sources/CSearch/search.c"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* One precision's kernels (bits 16 or 8) on the same rows: rates and bit-identity. */
static int run(int bits, const float *x, const float *y, ptrdiff_t nq, ptrdiff_t nc, ptrdiff_t d, float *first, float *out) {
    ptrdiff_t dp = bits == 16 ? (d + 1) / 2 * 2 : (d + 3) / 4 * 4, nc16 = (nc + 15) / 16 * 16;
    size_t code = bits == 16 ? sizeof(int16_t) : 1;
    void *cc = malloc(code * nc16 * dp), *qc = malloc(code * nq * dp);
    int16_t *tmp = malloc(sizeof(int16_t) * dp);
    int32_t *sums = malloc(sizeof(int32_t) * nc16);
    float *cs = malloc(sizeof(float) * nc), *qs = malloc(sizeof(float) * nq);
    double *ce = malloc(sizeof(double) * nc), *cn = malloc(sizeof(double) * nc);
    double *qe = malloc(sizeof(double) * nq), *qn = malloc(sizeof(double) * nq);
    if (!cc || !qc || !tmp || !sums || !cs || !qs || !ce || !cn || !qe || !qn) {
        fprintf(stderr, "integer-kernels: out of memory\n");
        return 71;
    }
    if (bits == 16) {
        int32_t limit = csearch_code_limit(d);
        csearch_quantize_packed(x, nc, d, dp, limit, cc, cs, ce, cn, tmp);
        csearch_quantize_rows(y, nq, d, dp, limit, qc, qs, qe, qn);
    } else {
        int32_t limit = csearch_code_limit_i8(d);
        csearch_quantize_packed_i8(x, nc, d, dp, limit, cc, sums, cs, ce, cn, tmp);
        csearch_quantize_rows_i8(y, nq, d, dp, limit, qc, qs, qe, qn, tmp);
    }
    memset(first, 0, sizeof(float) * nq * nc);
    memset(out, 0, sizeof(float) * nq * nc);

    const int kernels[] = {CSEARCH_KERNEL_AVX512_VNNI, CSEARCH_KERNEL_AVX2, CSEARCH_KERNEL_GENERIC};
    const char *names[] = {"AVX-512 VNNI", "AVX2", "generic C"};
    int available = csearch_scores_kernels(), shown = 0;
    printf("int%d pass alone, one thread: %ld queries x %ld corpus rows x %ld dimensions\n", bits, (long)nq, (long)nc, (long)d);
    for (int k = 0; k < 3; k++) {
        if (!(available & kernels[k])) { printf("  %-13s not on this CPU\n", names[k]); continue; }
        // The generic loop is slow: fewer corpus rows for it, the same queries.
        ptrdiff_t rows = kernels[k] == CSEARCH_KERNEL_GENERIC && nc > 2048 ? 2048 : nc;
        float *dst = shown ? out : first;
        double t[6];
        for (int r = 0; r < 6; r++) {
            double t0 = now();
            if (bits == 16) csearch_scores_i16_with(kernels[k], qc, nq, cc, rows, dp, qs, cs, dst, nc);
            else csearch_scores_i8_with(kernels[k], qc, nq, cc, sums, rows, dp, qs, cs, dst, nc);
            t[r] = now() - t0;
        }
        qsort(t + 1, 5, sizeof(double), by_value);
        double rate = (double)nq * rows * d / t[3] / 1e9;
        int same = 1;
        if (shown) for (ptrdiff_t i = 0; i < nq && same; i++) same = memcmp(first + i * nc, out + i * nc, sizeof(float) * rows) == 0;
        printf("  %-13s %7.1f G multiply-adds/s%s\n", names[k], rate,
               shown ? (same ? "  (scores bit-identical to the first kernel's)" : "  SCORES DIFFER from the first kernel's") : "");
        if (shown && !same) return 1;
        shown++;
    }
    free(cc); free(qc); free(tmp); free(sums); free(cs); free(qs); free(ce); free(cn); free(qe); free(qn);
    return 0;
}

int main(int argc, char **argv) {
    ptrdiff_t nq = argc > 1 ? atol(argv[1]) : 1000, nc = argc > 2 ? atol(argv[2]) : 65536, d = argc > 3 ? atol(argv[3]) : 384;
    if (nq <= 0 || nc <= 0 || d <= 0) { fprintf(stderr, "usage: %s [queries] [corpus rows] [dimension]\n", argv[0]); return 64; }
    float *x = malloc(sizeof(float) * nc * d), *y = malloc(sizeof(float) * nq * d);
    float *first = malloc(sizeof(float) * nq * nc), *out = malloc(sizeof(float) * nq * nc);
    if (!x || !y || !first || !out) {
        fprintf(stderr, "integer-kernels: out of memory\n");
        return 71;
    }
    srand(1);
    for (ptrdiff_t i = 0; i < nc * d; i++) x[i] = rand() / (float)RAND_MAX - 0.5f;
    for (ptrdiff_t i = 0; i < nq * d; i++) y[i] = rand() / (float)RAND_MAX - 0.5f;
    int r = run(16, x, y, nq, nc, d, first, out);
    return r ? r : run(8, x, y, nq, nc, d, first, out);
}

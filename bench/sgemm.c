/* The GEMM work of emb-sim --top-k alone, on the same OpenBLAS, as a yardstick: reads the queries'
 * and the corpus's means (float32 .npy, C order), then multiplies tiles of queries by blocks of
 * corpus rows like emb-sim does (and, with --uncertain, the second GEMM of inner dimension 2D on
 * [mean^2, var] sides built from the same data), writing into a reused score buffer. No selection,
 * no decoding: the limit emb-sim's time is measured against. Threads: OPENBLAS_NUM_THREADS.
 *
 *   cc -O2 bench/sgemm.c $(pkg-config --cflags --libs openblas) -o sgemm
 *   ./sgemm queries.npy corpus.npy [--uncertain] [--tile 1024] [--block 4096]
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static float *load(const char *path, long *rows, long *cols) {
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); exit(66); }
    unsigned char head[10];
    if (fread(head, 1, 10, f) != 10 || memcmp(head, "\x93NUMPY", 6)) { fprintf(stderr, "%s: not .npy\n", path); exit(65); }
    unsigned len = head[6] == 1 ? head[8] | head[9] << 8 : 0;
    if (head[6] != 1) { unsigned char l2[2]; if (fread(l2, 1, 2, f) != 2) exit(65); len = head[8] | head[9] << 8 | l2[0] << 16 | l2[1] << 24; }
    char *h = calloc(len + 1, 1);
    if (fread(h, 1, len, f) != len || !strstr(h, "'<f4'") || strstr(h, "True")) { fprintf(stderr, "%s: float32 C order expected\n", path); exit(65); }
    char *s = strstr(h, "'shape': (");
    if (!s || sscanf(s, "'shape': (%ld, %ld)", rows, cols) != 2) { fprintf(stderr, "%s: 2-d expected\n", path); exit(65); }
    float *x = malloc(sizeof(float) * *rows * *cols);
    if (fread(x, sizeof(float), *rows * *cols, f) != (size_t)(*rows * *cols)) { fprintf(stderr, "%s: short\n", path); exit(65); }
    fclose(f); free(h);
    return x;
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: sgemm queries.npy corpus.npy [--uncertain] [--tile N] [--block N]\n"); return 64; }
    int uncertain = 0; long tile = 1024, block = 4096;
    for (int i = 3; i < argc; i++) {
        if (!strcmp(argv[i], "--uncertain")) uncertain = 1;
        else if (!strcmp(argv[i], "--tile") && i + 1 < argc) tile = atol(argv[++i]);
        else if (!strcmp(argv[i], "--block") && i + 1 < argc) block = atol(argv[++i]);
        else { fprintf(stderr, "sgemm: unknown argument %s\n", argv[i]); return 64; }
    }
    long nq, d, nc, dc;
    float *q = load(argv[1], &nq, &d), *c = load(argv[2], &nc, &dc);
    if (d != dc) { fprintf(stderr, "sgemm: dimensions differ\n"); return 65; }
    float *qs = NULL, *cs = NULL;
    if (uncertain) {  /* sides of inner dimension 2D, as emb-sim builds them (values do not matter for time) */
        qs = malloc(sizeof(float) * nq * 2 * d); cs = malloc(sizeof(float) * block * 2 * d);
        for (long i = 0; i < nq * d; i++) { qs[2 * i] = q[i] * q[i]; qs[2 * i + 1] = 1e-3f; }
    }
    float *s = malloc(sizeof(float) * tile * block), *s2 = uncertain ? malloc(sizeof(float) * tile * block) : NULL;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long j = 0; j < nc; j += block) {
        long m = nc - j < block ? nc - j : block;
        if (uncertain)
            for (long r = 0; r < m * d; r++) { float x = c[j * d + r]; cs[2 * r] = 1e-3f; cs[2 * r + 1] = x * x + 1e-3f; }
        for (long i = 0; i < nq; i += tile) {
            long n = nq - i < tile ? nq - i : tile;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, m, d, 1, q + i * d, d, c + j * d, d, 0, s, m);
            if (uncertain)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, m, 2 * d, 1, qs + i * 2 * d, 2 * d, cs, 2 * d, 0, s2, m);
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double t = (t1.tv_sec - t0.tv_sec) + 1e-9 * (t1.tv_nsec - t0.tv_nsec);
    double flop = (uncertain ? 6.0 : 2.0) * nq * nc * d;
    printf("sgemm %s: %ld x %ld x %ld in %.3f s, %.1f GFLOP/s (core %s, %d threads)\n", uncertain ? "two GEMMs (D, 2D)" : "one GEMM",
           nq, nc, d, t, flop / t / 1e9, openblas_get_corename(), openblas_get_num_threads());
    return 0;
}

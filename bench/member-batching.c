/* How to batch the members of an SVE ensemble through one factored layer (issue 14: "measure which
 * batching is fastest"). One 384×384 layer of rank 384 (MiniLM's attention projections), M = 4
 * members, T token rows per member, OpenBLAS on one thread (sve-train runs one per text shard):
 *   stacked     the M members' rows as one matrix: (M·T × d)·V, then (M·T × k)·Uᵀ — what sve-train does
 *   per-member  M separate products of T rows each
 *   dense W_m   W_m = U diag(s_m) Vᵀ formed each time (d·d·k per member), then one dense product of
 *               T rows per member — what inference (sve-predict, validation) does, formed once there
 * Prints the median of `reps` timings (CPU time of this process) per variant.
 *
 *   cc -O2 bench/member-batching.c $(pkg-config --cflags --libs openblas) -o member-batching
 *   ./member-batching 512 20        # T = 512 rows per member, 20 repetitions
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: %s T REPS\n", argv[0]); return 64; }
    const int T = atoi(argv[1]), reps = atoi(argv[2]), d = 384, k = 384, M = 4;
    if (T < 1 || reps < 1) { fprintf(stderr, "T and REPS must be positive\n"); return 64; }
    openblas_set_num_threads(1);
    float *x = malloc(sizeof(float) * M * T * d), *V = malloc(sizeof(float) * d * k), *U = malloc(sizeof(float) * d * k);
    float *z = malloc(sizeof(float) * M * T * k), *y = malloc(sizeof(float) * M * T * d);
    float *W = malloc(sizeof(float) * M * d * d), *Us = malloc(sizeof(float) * d * k);
    double *t = malloc(sizeof(double) * reps), med[3];
    for (long i = 0; i < (long)M * T * d; i++) x[i] = (float)(i % 7) * 0.1f;
    for (int i = 0; i < d * k; i++) { V[i] = (float)(i % 5) * 0.01f; U[i] = (float)(i % 3) * 0.01f; }
    for (int variant = 0; variant < 3; variant++) {
        for (int r = 0; r < reps; r++) {
            double t0 = now();
            if (variant == 0) {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M * T, k, d, 1, x, d, V, k, 0, z, k);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M * T, d, k, 1, z, k, U, k, 0, y, d);
            } else if (variant == 1) {
                for (int m = 0; m < M; m++) {
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, k, d, 1, x + (long)m * T * d, d, V, k, 0, z + (long)m * T * k, k);
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, d, k, 1, z + (long)m * T * k, k, U, k, 0, y + (long)m * T * d, d);
                }
            } else {
                for (int m = 0; m < M; m++) {
                    for (int i = 0; i < d * k; i++) Us[i] = U[i] * (1.0f + 0.01f * (float)m);
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, d, d, k, 1, Us, k, V, k, 0, W + (long)m * d * d, d);
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, d, d, 1, x + (long)m * T * d, d, W + (long)m * d * d, d, 0, y + (long)m * T * d, d);
                }
            }
            t[r] = now() - t0;
        }
        qsort(t, reps, sizeof(double), cmp);
        med[variant] = t[reps / 2];
    }
    printf("T=%d rows per member, M=%d, 384x384 rank 384, 1 thread: stacked %.2f ms, per-member %.2f ms (%.2fx), "
           "dense W_m formed each time %.2f ms (%.2fx)\n", T, M, med[0] * 1e3, med[1] * 1e3, med[1] / med[0], med[2] * 1e3, med[2] / med[0]);
    return 0;
}

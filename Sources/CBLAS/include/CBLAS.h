#ifndef UNCERTAINTY_TOOLBOX_CBLAS_H
#define UNCERTAINTY_TOOLBOX_CBLAS_H
/*
 * OpenBLAS and LAPACKE, loaded when first needed rather than when a program starts.
 *
 * A program linked against libopenblas pays for it before main(): the dynamic loader maps it and
 * its dependencies (LAPACK, gfortran, quadmath), and OpenBLAS's constructor starts its thread
 * pool: about 9 ms of CPU per process on the 2-core machine this was written on, which doubled
 * the start-up of `--help`. Here the libraries are opened with dlopen on the first call (or by
 * blas_load()), so that `--help`, a usage error or a run that never multiplies costs nothing.
 *
 * The library is libopenblas.so.0 (or libopenblas.so), unless UNCERTAINTY_TOOLBOX_OPENBLAS names
 * another file; LAPACKE comes from it when it carries LAPACKE, else from liblapacke.so.3.
 *
 * The entry points are the few the toolbox uses, with the C interfaces' own conventions: row-major
 * GEMM (transpose flags 0/1) and the thin SVD (jobz 'S'). Integers are 32-bit (OpenBLAS's and
 * LAPACKE's default build, Debian's). No OpenBLAS or LAPACKE header is needed to build.
 */
#ifdef __cplusplus
extern "C" {
#endif

/* Opens the libraries now (idempotent, thread-safe; it sets OPENBLAS_NUM_THREADS=1 and
 * OPENBLAS_THREAD_TIMEOUT=20 in the environment while OpenBLAS loads, each unless the user set
 * it, so that OpenBLAS starts no threads of its own until blas_set_num_threads asks and its idle
 * workers sleep within about 0.4 ms: call it before the program starts threads that read the
 * environment). 0 on success; else -1, and
 * blas_load_error() says what failed. Any entry point below loads them itself, and on failure
 * prints that message and ends the process with status 71 (EX_OSERR). */
int blas_load(void);
const char *blas_load_error(void);
/* 1 once the libraries are open. */
int blas_is_loaded(void);

/* C = alpha op(A) op(B) + beta C, row-major (cblas_sgemm / cblas_dgemm with CblasRowMajor). */
void blas_sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
                const float *b, int ldb, float beta, float *c, int ldc);
void blas_dgemm(int trans_a, int trans_b, int m, int n, int k, double alpha, const double *a, int lda,
                const double *b, int ldb, double beta, double *c, int ldc);
/* Thin SVD of the row-major m×n A (LAPACKE_?gesdd, LAPACK_ROW_MAJOR, jobz 'S'); LAPACK's info. */
int blas_sgesdd(int m, int n, float *a, int lda, float *s, float *u, int ldu, float *vt, int ldvt);
int blas_dgesdd(int m, int n, double *a, int lda, double *s, double *u, int ldu, double *vt, int ldvt);

/* OpenBLAS's process-wide thread count, and the name of the kernel ("core") it chose. */
void blas_set_num_threads(int n);
int blas_get_num_threads(void);
const char *blas_get_corename(void);

#ifdef __cplusplus
}
#endif
#endif

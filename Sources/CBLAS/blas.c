/* OpenBLAS and LAPACKE opened with dlopen on first use: see include/CBLAS.h. */
#define _GNU_SOURCE
#include "CBLAS.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cleanup.h"

enum { ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112 }; /* cblas.h's CBLAS_ORDER, CBLAS_TRANSPOSE */

typedef void (*sgemm_fn)(int, int, int, int, int, int, float, const float *, int, const float *, int,
                         float, float *, int);
typedef void (*dgemm_fn)(int, int, int, int, int, int, double, const double *, int, const double *,
                         int, double, double *, int);
typedef int (*sgesdd_fn)(int, char, int, int, float *, int, float *, float *, int, float *, int);
typedef int (*dgesdd_fn)(int, char, int, int, double *, int, double *, double *, int, double *, int);
typedef void (*set_threads_fn)(int);
typedef int (*get_threads_fn)(void);
typedef char *(*corename_fn)(void);

static struct {
    sgemm_fn sgemm;
    dgemm_fn dgemm;
    sgesdd_fn sgesdd;
    dgesdd_fn dgesdd;
    set_threads_fn set_threads;
    get_threads_fn get_threads;
    corename_fn corename;
} fn;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static volatile int loaded;
static char error[512];

/* The first of `names` that opens, or NULL (error[] then holds dlerror() of the first). */
static void *open_first(const char *const *names) {
    char first[256] = "";
    for (; *names; names++) {
        void *h = dlopen(*names, RTLD_NOW | RTLD_LOCAL);
        if (h) return h;
        if (!first[0]) snprintf(first, sizeof first, "%s", dlerror());
    }
    snprintf(error, sizeof error, "%s", first);
    return NULL;
}

static void *symbol(void *h, const char *name, const char *lib) {
    void *p = dlsym(h, name);
    if (!p && !error[0]) snprintf(error, sizeof error, "%s has no symbol %s", lib, name);
    return p;
}

static void load_once(void) {
    static const char *const lapacke[] = {"liblapacke.so.3", "liblapacke.so", NULL};
    const char *own = getenv("UNCERTAINTY_TOOLBOX_OPENBLAS");
    const char *const chosen[] = {own, NULL};
    static const char *const openblas[] = {"libopenblas.so.0", "libopenblas.so", NULL};
    /* OpenBLAS starts its worker threads in its constructor, as many as OPENBLAS_NUM_THREADS or
     * the cores, and each worker maps its 128 MB buffer as it starts, concurrently with the
     * caller. Opened with one thread, it starts none; openblas_set_num_threads() (prepareBLAS,
     * --threads) then starts the ones a program asks for, at a moment it chooses (after checking
     * that their buffers fit under `ulimit -v`). A user's own OPENBLAS_NUM_THREADS is left alone. */
    const char *user = getenv("OPENBLAS_NUM_THREADS");
    int one = !(user && user[0]);
    if (one) setenv("OPENBLAS_NUM_THREADS", "1", 1);
    /* An idle OpenBLAS worker spins in sched_yield for 2^28 cycles (about 0.1 s) after each job
     * before it sleeps. The programs run most products on threads of their own, with OpenBLAS on
     * one thread, so its workers spin after the warm-up and between a step's products for nothing:
     * sve-train --method deep-ensemble took 1.7x the CPU time for the same wall time, emb-laplace
     * fit 1.1x. 2^20 cycles (about 0.4 ms) keeps workers awake through back-to-back products and
     * lets idle ones sleep. OpenBLAS reads it when it loads; a user's own value is left alone. */
    const char *timeout = getenv("OPENBLAS_THREAD_TIMEOUT");
    int ours = !(timeout && timeout[0]);
    if (ours) setenv("OPENBLAS_THREAD_TIMEOUT", "20", 1);
    void *h = open_first(own && own[0] ? chosen : openblas);
    if (one) unsetenv("OPENBLAS_NUM_THREADS");
    if (ours) unsetenv("OPENBLAS_THREAD_TIMEOUT");
    if (!h) return;
    fn.sgemm = (sgemm_fn)symbol(h, "cblas_sgemm", "OpenBLAS");
    fn.dgemm = (dgemm_fn)symbol(h, "cblas_dgemm", "OpenBLAS");
    fn.set_threads = (set_threads_fn)symbol(h, "openblas_set_num_threads", "OpenBLAS");
    fn.get_threads = (get_threads_fn)symbol(h, "openblas_get_num_threads", "OpenBLAS");
    fn.corename = (corename_fn)symbol(h, "openblas_get_corename", "OpenBLAS");
    if (error[0]) return;
    /* An upstream OpenBLAS build carries LAPACKE itself; Debian's is a library of its own. */
    fn.sgesdd = (sgesdd_fn)dlsym(h, "LAPACKE_sgesdd");
    fn.dgesdd = (dgesdd_fn)dlsym(h, "LAPACKE_dgesdd");
    if (!fn.sgesdd || !fn.dgesdd) {
        void *l = open_first(lapacke);
        if (!l) return;
        fn.sgesdd = (sgesdd_fn)symbol(l, "LAPACKE_sgesdd", "LAPACKE");
        fn.dgesdd = (dgesdd_fn)symbol(l, "LAPACKE_dgesdd", "LAPACKE");
        if (error[0]) return;
    }
    __atomic_store_n(&loaded, 1, __ATOMIC_RELEASE);
}

int blas_load(void) {
    pthread_once(&once, load_once);
    return __atomic_load_n(&loaded, __ATOMIC_ACQUIRE) ? 0 : -1;
}

const char *blas_load_error(void) { return error[0] ? error : "OpenBLAS is not loaded"; }

int blas_is_loaded(void) { return __atomic_load_n(&loaded, __ATOMIC_ACQUIRE); }

/* Every entry point: the libraries, or a one-line message and exit status 71. */
static inline void need(void) {
    if (__builtin_expect(!__atomic_load_n(&loaded, __ATOMIC_ACQUIRE), 0) && blas_load() != 0) {
        fprintf(stderr, "%s: cannot load OpenBLAS and LAPACKE (%s): install Debian's libopenblas0 and liblapacke\n",
                program_invocation_short_name, blas_load_error());
        exit(71);
    }
}

void blas_sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
                const float *b, int ldb, float beta, float *c, int ldc) {
    need();
    fn.sgemm(ROW_MAJOR, trans_a ? TRANS : NO_TRANS, trans_b ? TRANS : NO_TRANS, m, n, k, alpha, a, lda, b, ldb,
             beta, c, ldc);
}

void blas_dgemm(int trans_a, int trans_b, int m, int n, int k, double alpha, const double *a, int lda,
                const double *b, int ldb, double beta, double *c, int ldc) {
    need();
    fn.dgemm(ROW_MAJOR, trans_a ? TRANS : NO_TRANS, trans_b ? TRANS : NO_TRANS, m, n, k, alpha, a, lda, b, ldb,
             beta, c, ldc);
}

int blas_sgesdd(int m, int n, float *a, int lda, float *s, float *u, int ldu, float *vt, int ldvt) {
    need();
    return fn.sgesdd(ROW_MAJOR, 'S', m, n, a, lda, s, u, ldu, vt, ldvt);
}

int blas_dgesdd(int m, int n, double *a, int lda, double *s, double *u, int ldu, double *vt, int ldvt) {
    need();
    return fn.dgesdd(ROW_MAJOR, 'S', m, n, a, lda, s, u, ldu, vt, ldvt);
}

void blas_set_num_threads(int n) {
    need();
    fn.set_threads(n);
}

int blas_get_num_threads(void) {
    need();
    return fn.get_threads();
}

const char *blas_get_corename(void) {
    need();
    return fn.corename();
}

/* OpenBLAS maps a work buffer (128 MB) for each thread that first needs one, and when the system
 * refuses it (under `ulimit -v`) it tries malloc, then both again, forever, at 100 % CPU
 * (blas_memory_alloc in its driver/others/memory.c: `do { ... } while (map_address == -1)`).
 * prepareBLAS makes it take its buffers before the program's data fill the address space, but
 * cannot foresee every later one (emb-laplace apply spun under `ulimit -v 550000`). This mmap
 * stands in for libc's in the program: the programs export their symbols, so the dynamic linker
 * binds OpenBLAS's calls to it (an unversioned definition satisfies its mmap@GLIBC_2.2.5). It
 * maps through the system call as libc does. When OpenBLAS is refused a mapping for lack of
 * memory, the program removes its temporary outputs and ends with one line and exit status 71
 * (the programs' status for a lack of resources). OpenBLAS's malloc fallback is not tried: a
 * buffer this large is a mapping of malloc's own, refused by the same limit, and the programs'
 * malloc would end the program too, with a line that does not say OpenBLAS or --threads. */
static int from_openblas(const void *caller) {
    if (!__atomic_load_n(&loaded, __ATOMIC_ACQUIRE)) return 0;
    Dl_info at, blas;
    return dladdr(caller, &at) && dladdr((const void *)fn.sgemm, &blas) && at.dli_fbase == blas.dli_fbase;
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t offset) {
    long r = syscall(SYS_mmap, addr, len, prot, flags, fd, offset);
    if (r != -1) return (void *)r;
    int e = errno;
    if (e == ENOMEM && from_openblas(__builtin_return_address(0)))
        cleanup_exit_refused(len, "OpenBLAS could not get another work buffer of", "raise the limit, or give --threads 1");
    errno = e;
    return MAP_FAILED;
}

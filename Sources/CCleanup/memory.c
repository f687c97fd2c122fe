// A refused allocation ends the program with one line and exit status 71, as the checked
// allocator's refusals do, instead of a trap.
//
// Buffers whose size comes from the input are probed first (Failure's reserveMemory); the rest
// (a block of rows, a compressed frame, Swift's own arrays) are allocated unchecked, and when the
// system refuses one of those (under `ulimit -v`, or with memory exhausted) Swift's runtime
// aborts with "Could not allocate memory" or "failed to allocate" and a stack trace (status 134:
// emb-laplace apply under `ulimit -v 250000`, emb-sim at 300000, calib-metrics at 80000–100000).
//
// These definitions stand in for libc's allocating functions in the programs (malloc, calloc,
// realloc, reallocarray, memalign, aligned_alloc, posix_memalign, valloc, pvalloc): the programs export
// their symbols, so every caller in the process (Swift's runtime, libzstd, OpenBLAS, libc itself)
// binds to them. Each allocates with glibc's own allocator (its exported __libc_* entry points;
// free, malloc_usable_size and the rest stay libc's and see the same heap), and only when the
// answer is "no" for a size above 0 does it remove the temporary outputs, print one line and
// exit 71. A caller that would have handled NULL ends the same way (zstd; the stream reader,
// whose own message named the stream): the program cannot go on without the memory either.
#define _GNU_SOURCE
#include "cleanup.h"
#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *p, size_t size);
extern void *__libc_memalign(size_t alignment, size_t size);

static atomic_int ending;

void cleanup_exit_refused(size_t bytes, const char *what, const char *advice) {
    if (atomic_exchange(&ending, 1)) { for (;;) pause(); }
    cleanup_remove_all();
    // Integers only: formatting a double may allocate, and the allocator just said no.
    char text[512], limitText[120] = "";
    struct rlimit limit;
    if (getrlimit(RLIMIT_AS, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY) {
        unsigned long long tenths = ((unsigned long long)limit.rlim_cur + 50000) / 100000;
        snprintf(limitText, sizeof limitText, " ('ulimit -v' allows %llu.%llu MB in all)", tenths / 10, tenths % 10);
    }
    // Rounded to a tenth of a MB (an overflowed calloc asks for SIZE_MAX: no rounding there).
    unsigned long long tenths = ((unsigned long long)bytes > ULLONG_MAX - 50000 ? (unsigned long long)bytes : bytes + 50000ull) / 100000;
    int n = snprintf(text, sizeof text, "%s: out of memory: %s %llu.%llu MB%s: %s\n",
                     program_invocation_short_name, what, tenths / 10, tenths % 10, limitText, advice);
    if (n > 0) { ssize_t w = write(2, text, (size_t)n < sizeof text ? (size_t)n : sizeof text - 1); (void)w; }
    _exit(71);
}

static void refused(size_t bytes) __attribute__((noreturn));
static void refused(size_t bytes) {
    cleanup_exit_refused(bytes, "the system refused", "free memory or raise the limit");
}

void *malloc(size_t size) {
    void *p = __libc_malloc(size);
    if (!p && size > 0) refused(size);
    return p;
}

void *calloc(size_t count, size_t size) {
    void *p = __libc_calloc(count, size);
    if (!p && count > 0 && size > 0) refused(count > SIZE_MAX / size ? SIZE_MAX : count * size);
    return p;
}

void *realloc(void *old, size_t size) {
    // realloc(p, 0) frees p and may return NULL: not a refusal.
    void *p = __libc_realloc(old, size);
    if (!p && size > 0) refused(size);
    return p;
}

void *memalign(size_t alignment, size_t size) {
    void *p = __libc_memalign(alignment, size);
    if (!p && size > 0 && errno == ENOMEM) refused(size);
    return p;
}

void *aligned_alloc(size_t alignment, size_t size) {
    if (alignment == 0 || (alignment & (alignment - 1)) != 0) { errno = EINVAL; return NULL; }
    return memalign(alignment, size);
}

void *reallocarray(void *old, size_t count, size_t size) {
    // glibc's own reallocarray calls its realloc inside libc, past these definitions.
    if (size != 0 && count > SIZE_MAX / size) refused(SIZE_MAX);
    return realloc(old, count * size);
}

void *valloc(size_t size) {
    return memalign((size_t)sysconf(_SC_PAGESIZE), size);
}

void *pvalloc(size_t size) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    if (size > SIZE_MAX - page) refused(SIZE_MAX);
    return memalign(page, size == 0 ? page : (size + page - 1) & ~(page - 1));
}

int posix_memalign(void **out, size_t alignment, size_t size) {
    if (alignment % sizeof(void *) != 0 || (alignment & (alignment - 1)) != 0 || alignment == 0) return EINVAL;
    int saved = errno;
    void *p = memalign(alignment, size);
    errno = saved;
    if (!p && size > 0) return ENOMEM;
    *out = p;
    return 0;
}

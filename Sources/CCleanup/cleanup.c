#include "cleanup.h"
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/random.h>
#include <time.h>

// 2^17 slots (1 MB of pointers, untouched pages cost no memory): `tensor split` may hold up to
// 100000 shards open at once.
#define SLOTS (1 << 17)

static _Atomic(char *) slots[SLOTS];
static atomic_int high;        // slots at or above this index have never been used

int cleanup_capacity(void) { return SLOTS; }

int cleanup_register(const char *path) {
    // The copy is made before the pointer is published and is never freed: a handler running
    // on another thread may still be reading it after the slot is cleared.
    char *copy = strdup(path);
    if (!copy) return -1;
    int h = atomic_load(&high);
    while (h < SLOTS) {
        if (atomic_compare_exchange_weak(&high, &h, h + 1)) {
            atomic_store(&slots[h], copy);
            return h;
        }
    }
    for (int i = 0; i < SLOTS; i++) {
        char *expected = NULL;
        if (atomic_compare_exchange_strong(&slots[i], &expected, copy)) return i;
    }
    free(copy);
    return -1;
}

int cleanup_create_temp(char *path_template, int *slot) {
    static const char letters[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    size_t n = strlen(path_template);
    if (n < 6 || strcmp(path_template + n - 6, "XXXXXX") != 0) { errno = EINVAL; return -1; }
    for (int attempt = 0; attempt < 100; attempt++) {
        unsigned char r[6];
        if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r) {
            // No entropy source: vary by process, attempt and a stack address (uniqueness, not secrecy).
            unsigned long x = (unsigned long)getpid() * 2654435761u + (unsigned long)attempt * 40503u + (unsigned long)(size_t)r;
            for (int i = 0; i < 6; i++) { r[i] = (unsigned char)(x >> (i * 5)); }
        }
        for (int i = 0; i < 6; i++) path_template[n - 6 + i] = letters[r[i] % (sizeof letters - 1)];
        int s = cleanup_register(path_template);
        if (s < 0) return -2;
        int fd = open(path_template, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd >= 0) { *slot = s; return fd; }
        int e = errno;
        cleanup_unregister(s);
        if (e != EEXIST) { errno = e; return -1; }
    }
    errno = EEXIST;
    return -1;
}

void cleanup_unregister(int slot) {
    if (slot >= 0 && slot < SLOTS) atomic_store(&slots[slot], NULL);
}

void cleanup_remove_all(void) {
    int h = atomic_load(&high);
    for (int i = 0; i < h; i++) {
        char *p = atomic_load(&slots[i]);
        if (p) unlink(p);
    }
}

static void handler(int sig) {
    cleanup_remove_all();
    // Another thread may be inside open() creating a file whose name is already registered
    // (cleanup_create_temp): the file can appear just after the first pass. A second pass a
    // millisecond later removes it.
    struct timespec pause = {0, 1000000};
    nanosleep(&pause, NULL);
    cleanup_remove_all();
    // SA_RESETHAND restored the default action: die of the same signal.
    raise(sig);
}

/* The signals that end a program and leave it time to clean up: asked to end (INT, TERM, HUP),
 * and crashed (a Swift trap or a failed allocation aborts: ABRT, ILL, TRAP; a fault: SEGV, BUS,
 * FPE). Without the second kind, a crash left its temporary output (a 6 MB .out.tsr.tmp.* file
 * beside the output, seen under `ulimit -v`). The handler runs on a stack of its own, so that it
 * also runs when the main thread's stack is what overflowed. */
void cleanup_install_signal_handlers(void) {
    signal(SIGPIPE, SIG_IGN);
    static char altstack[64 * 1024];
    stack_t ss;
    memset(&ss, 0, sizeof ss);
    ss.ss_sp = altstack;
    ss.ss_size = sizeof altstack;
    int onstack = sigaltstack(&ss, NULL) == 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sa.sa_flags = SA_RESETHAND | (onstack ? SA_ONSTACK : 0);
    sigfillset(&sa.sa_mask);
    int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGABRT, SIGILL, SIGTRAP, SIGSEGV, SIGBUS, SIGFPE};
    for (unsigned i = 0; i < sizeof sigs / sizeof sigs[0]; i++) sigaction(sigs[i], &sa, NULL);
}

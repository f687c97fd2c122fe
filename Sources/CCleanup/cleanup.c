#include "cleanup.h"
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
    // SA_RESETHAND restored the default action: die of the same signal.
    raise(sig);
}

void cleanup_install_signal_handlers(void) {
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sa.sa_flags = SA_RESETHAND;
    sigfillset(&sa.sa_mask);
    int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    for (unsigned i = 0; i < sizeof sigs / sizeof sigs[0]; i++) sigaction(sigs[i], &sa, NULL);
}

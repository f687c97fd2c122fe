// What it costs to touch fresh memory for the first time, per MB, on 4 KiB pages and on 2 MiB
// transparent huge pages (MADV_HUGEPAGE, as the programs advise their large buffers), each right
// after the same amount was freed ("warm", as in a benchmark's loop) and after a pause of PAUSE
// seconds ("after a pause", as a program's first run finds memory): on a VM whose kernel reports
// free memory to the hypervisor (virtio-balloon free page reporting, about 2 s after it is freed),
// the hypervisor must back such memory again when it is touched. The median of 3 runs of each.
// Prints MACHINE lines for `make bench`'s summary (bench/all.sh builds and runs it).
//   cc -O2 bench/first-touch.c -o first-touch && ./first-touch [MB] [PAUSE]
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

// A fresh mapping of `bytes` on a 2 MiB boundary, advised onto huge pages or not.
static char *fresh(size_t bytes, int huge) {
    size_t align = 2u << 20;
    char *p = mmap(NULL, bytes + align, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) { perror("mmap"); exit(1); }
    char *q = (char *)(((unsigned long)p + align - 1) & ~(align - 1));
    if (huge) madvise(q, bytes, MADV_HUGEPAGE);
    else madvise(q, bytes, MADV_NOHUGEPAGE);
    return q;
}

// Touches `bytes` of a fresh mapping once (a byte per 4 KiB page); ms per MB.
static double touch(size_t bytes, int huge) {
    char *p = fresh(bytes, huge);
    double t = now();
    for (size_t i = 0; i < bytes; i += 4096) p[i] = 1;
    double ms = (now() - t) * 1e3 / (bytes >> 20);
    munmap(p, bytes + (2u << 20));   // (the alignment slack is unmapped with it: it was never touched)
    return ms;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median_of_3(size_t bytes, int huge, int pause) {
    double v[3];
    for (int r = 0; r < 3; r++) {
        if (pause) {
            sleep(pause);              // memory nobody has touched for a while, as a program's first run finds it
        } else {
            touch(bytes, huge);        // the same amount freed just before
        }
        v[r] = touch(bytes, huge);
    }
    qsort(v, 3, sizeof v[0], cmp);
    return v[1];
}

int main(int argc, char **argv) {
    size_t mb = argc > 1 ? strtoul(argv[1], NULL, 10) : 64;
    int pause = argc > 2 ? atoi(argv[2]) : 3;
    size_t bytes = mb << 20;
    double small_warm = median_of_3(bytes, 0, 0), huge_warm = median_of_3(bytes, 1, 0);
    double small_cold = median_of_3(bytes, 0, pause), huge_cold = median_of_3(bytes, 1, pause);
    printf("MACHINE\tfirst touch of %zu MB, ms per MB, 4 KiB pages\t%.2f right after a free, %.2f after a %d s pause\n",
           mb, small_warm, small_cold, pause);
    printf("MACHINE\tfirst touch of %zu MB, ms per MB, 2 MiB pages\t%.2f right after a free, %.2f after a %d s pause\n",
           mb, huge_warm, huge_cold, pause);
    return 0;
}

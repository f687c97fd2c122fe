/// glibc's mallopt(3) (malloc.h is not in the Glibc module).
@_silgen_name("mallopt")
private func glibcMallopt(_ param: Int32, _ value: Int32) -> Int32

/// Keeps large buffers in the heap. glibc serves every allocation above its mmap threshold (128 kB
/// by default, raised adaptively) with a fresh mmap and returns it with munmap, so a program that
/// allocates the same large matrices over and over (a block of rows, a training step) faults in
/// and zeroes new pages every time: sve-train spent 14 s of system time in a 118 s epoch on this.
/// With a 32 MiB threshold (glibc refuses more, and a refused call leaves the default 128 kB,
/// which the trim threshold would then freeze) and a 1 GiB trim threshold, freed buffers are
/// reused. Call once, before the work starts.
public func keepLargeBuffersInHeap() {
    _ = glibcMallopt(-3 /* M_MMAP_THRESHOLD */, 1 << 25)
    _ = glibcMallopt(-1 /* M_TRIM_THRESHOLD */, 1 << 30)
}

/// One malloc arena for all the program's threads, for a program whose blocks are allocated on
/// one thread and freed on another (emb-laplace fit reads block k + 1 on whichever of its threads
/// is free): glibc gives each thread an arena of its own, and memory freed into one is not
/// reused by the others' allocations (the fit's peak: 109 MB with them, 90 MB with one, in the
/// same time). Call once, before any thread starts.
public func keepOneHeapForAllThreads() {
    _ = glibcMallopt(-8 /* M_ARENA_MAX */, 1)
}

import CBLAS
import Failure
import Parallel
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Opens OpenBLAS and LAPACKE now (they are opened on first use otherwise, or the process ends
/// with a message when they are missing): a `.resources` error saying what is missing.
public func loadBLAS() throws {
    if blas_load() != 0 {
        throw ResourceError("cannot load OpenBLAS and LAPACKE (\(String(cString: blas_load_error()))): install Debian's libopenblas0 and liblapacke")
    }
}

/// Sets how many threads OpenBLAS (and so LAPACK) may use.
public func setBLASThreads(_ n: Int) {
    BLASThreading.threads = max(1, n)
    blas_set_num_threads(Int32(max(1, n)))
}

/// How many threads a GEMM gets. OpenBLAS splits every GEMM above 64³ multiply-adds over all its
/// threads; for the small and middle-sized products of a training step or a row block that
/// costs more than it gains, and between products its idle workers spin in sched_yield. A GEMM
/// below `singleThreadBelow` multiply-adds (m·n·k) therefore runs on the calling thread alone.
public enum BLASThreading {
    /// The threads `setBLASThreads` set (what large GEMMs use).
    nonisolated(unsafe) public internal(set) static var threads = 1
    /// m·n·k below which a GEMM runs on one thread: 2^22 (4.2 M multiply-adds, about 0.1 ms of
    /// one core). A batch-16 SVE step's factored products (16×384×384) fall below it: sve-train's
    /// samples in sched_yield went from 16 % to 0.4 % (perf, 2 threads). emb-laplace apply and
    /// sve-predict multiply blocks of thousands of rows, far above it, and are unchanged.
    nonisolated(unsafe) public static var singleThreadBelow = 1 << 22

    /// Runs `body` (one GEMM of m×n×k) with the threads its size deserves.
    @inline(__always)
    static func gemm(_ m: Int, _ n: Int, _ k: Int, _ body: () -> Void) {
        // (Each dimension below 2^20 first, so that the product cannot overflow.)
        guard threads > 1, m < 1 << 20, n < 1 << 20, k < 1 << 20, m * n * k < singleThreadBelow else { return body() }
        blas_set_num_threads(1)
        body()
        blas_set_num_threads(Int32(threads))
    }

    /// Runs `body` with OpenBLAS on one thread and `gemm` leaving the setting alone, then restores
    /// both: for a caller that runs GEMMs on several threads of its own at once (OpenBLAS's thread
    /// count is process-wide, so `gemm`'s set-and-restore would race between them). Call it from
    /// one thread, outside any other `singleThreaded`.
    public static func singleThreaded<R>(_ body: () throws -> R) rethrows -> R {
        let saved = threads, blas = blas_get_num_threads()
        threads = 1
        blas_set_num_threads(1)
        defer { threads = saved; blas_set_num_threads(blas) }
        return try body()
    }

    /// `body(s)` for s in 0..<count, each on a thread of ours (Parallel's `onThreads`) with
    /// OpenBLAS on one thread meanwhile; with one, on the calling thread, OpenBLAS as it is.
    /// The results in order of s.
    public static func onThreads<R>(_ count: Int, _ body: (Int) -> R) -> [R] {
        count <= 1 ? Parallel.onThreads(count, body) : singleThreaded { Parallel.onThreads(count, body) }
    }
}

/// The work buffer OpenBLAS allocates per thread on its first call (Debian's build: 128 MiB plus
/// alignment, seen with strace as one 129 MiB mmap). Overestimating only costs threads under a
/// tight limit.
public let blasBufferBytes = 129 << 20

/// What a program needs beside OpenBLAS's buffers for more than one thread to be worth taking
/// under an address-space limit (its blocks, codec contexts, thread stacks). Without it, two
/// threads' buffers fitted under `ulimit -v 500000` and left emb-laplace apply no room for its
/// 200,000-row input, which one thread's leave (it then ran; with two it ran out of memory).
public let threadHeadroom = 192 << 20

/// Gets OpenBLAS ready to run on `threads` threads without ever spinning. OpenBLAS allocates one
/// work buffer per thread on first use and, when the system refuses it (under `ulimit -v`), retries
/// forever at 100 % CPU. So, under an address-space limit: probe that the buffers fit (using
/// fewer threads when only some fit, or when more would leave the program less than
/// `threadHeadroom`, and throwing a `.resources` error when not even one buffer fits),
/// then make OpenBLAS take them now, before the program's own data fill the address space;
/// OpenBLAS keeps and reuses them. With n threads that is 2n − 1 buffers: one for each of
/// OpenBLAS's n − 1 workers, which keep theirs, and one for each of the n threads of the
/// program's own that may call a single-threaded GEMM at the same moment
/// (`BLASThreading.singleThreaded`: emb-sim's search, emb-laplace apply's blocks). A program must
/// run no more GEMM-calling threads than this returns: emb-sim ran --threads of them and spun
/// forever under `ulimit -v 350000`. Not airtight: under some limits OpenBLAS still asks for
/// another buffer later; CBLAS's `mmap` then ends the program with a message (exit status 71)
/// where OpenBLAS would spin. Returns the number of threads set.
/// Without a limit it only sets the threads.
@discardableResult
public func prepareBLAS(threads: Int) throws -> Int {
    // OpenBLAS is opened here, not when the program starts (CBLAS.h), then the best kernel for
    // this CPU is made sure of (which may restart the program, before any output).
    try loadBLAS()
    BLASKernel.ensureBest()
    var limit = rlimit()
    guard getrlimit(__rlimit_resource_t(RLIMIT_AS.rawValue), &limit) == 0, limit.rlim_cur != rlim_t.max else {
        setBLASThreads(threads)
        return threads
    }
    var n = max(1, threads)
    while n >= 1 {
        // The buffers, and a little for the small multiplications that make OpenBLAS take them;
        // with more than one thread, room for the program's own working set too (`threadHeadroom`).
        let bytes = (2 * n - 1) * blasBufferBytes + (16 << 20) + (n > 1 ? threadHeadroom : 0)
        let p = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
        if p != MAP_FAILED {
            munmap(p, bytes)
            break
        }
        n -= 1
    }
    guard n >= 1 else {
        throw ResourceError("not enough address space for OpenBLAS's work buffer (\(describeBytes(blasBufferBytes)) per thread; 'ulimit -v' allows \(describeBytes(Int(limit.rlim_cur))) in all): raise the limit")
    }
    setBLASThreads(n)
    // Large enough for OpenBLAS to use every thread, small enough to cost nothing.
    let size = 256
    let a = [Float](repeating: 0.5, count: size * size), b = [Double](repeating: 0.5, count: size * size)
    var c = [Float](repeating: 0, count: size * size), d = [Double](repeating: 0, count: size * size)
    Float.gemm(false, false, size, size, size, 1, a, size, a, size, 0, &c, size)
    Double.gemm(false, false, size, size, size, 1, b, size, b, size, 0, &d, size)
    if n > 1 {
        // n single-threaded GEMMs at once, on n threads of ours: each waits (at most 0.2 s) until
        // all are there, so that they overlap and each takes a buffer.
        let arrived = Atomic<Int>(0)
        _ = BLASThreading.onThreads(n) { _ in
            arrived.add(1, ordering: .acquiringAndReleasing)
            var waited = 0
            while arrived.load(ordering: .acquiring) < n && waited < 2000 { usleep(100); waited += 1 }
            var c = [Float](repeating: 0, count: size * size)
            Float.gemm(false, false, size, size, size, 1, a, size, a, size, 0, &c, size)
            return c[0]
        }
    }
    return n
}

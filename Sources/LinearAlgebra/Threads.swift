import CBLAS
import Failure
#if canImport(Glibc)
import Glibc
#endif

/// Sets how many threads OpenBLAS (and so LAPACK) may use.
public func setBLASThreads(_ n: Int) {
    openblas_set_num_threads(Int32(max(1, n)))
}

/// The work buffer OpenBLAS allocates per thread on its first call (Debian's build: 128 MiB plus
/// alignment, seen with strace as one 129 MiB mmap). Overestimating only costs threads under a
/// tight limit.
public let blasBufferBytes = 129 << 20

/// Gets OpenBLAS ready to run on `threads` threads without ever spinning. OpenBLAS allocates one
/// work buffer per thread on first use and, when the system refuses it (under `ulimit -v`), retries
/// forever at 100 % CPU. So, under an address-space limit: probe that the buffers fit (using
/// fewer threads when only some fit, and throwing a `.resources` error when not even one does),
/// then make one small multiplication on every thread so that OpenBLAS takes its buffers now,
/// before the program's own data fill the address space; OpenBLAS keeps and reuses them.
/// Returns the number of threads set. Without a limit it only sets the threads.
@discardableResult
public func prepareBLAS(threads: Int) throws -> Int {
    // First of all, the best kernel for this CPU (may restart the program, before any output).
    BLASKernel.ensureBest()
    var limit = rlimit()
    guard getrlimit(__rlimit_resource_t(RLIMIT_AS.rawValue), &limit) == 0, limit.rlim_cur != rlim_t.max else {
        setBLASThreads(threads)
        return threads
    }
    var n = max(1, threads)
    while n >= 1 {
        // The buffers, and a little for the small multiplication that makes OpenBLAS take them.
        let bytes = n * blasBufferBytes + (16 << 20)
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
    return n
}

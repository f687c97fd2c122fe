import Dispatch

/// `body(i)` for every chunk i in 0..<count, on at most `threads` threads (each takes the chunks
/// i, i + threads, …). Callers cut their work at fixed chunks, whatever the threads, and run
/// OpenBLAS on one thread meanwhile (`BLASThreading.singleThreaded`), so that a result has the
/// same bits on any number of threads.
func onChunks(_ count: Int, threads: Int, _ body: @Sendable (Int) -> Void) {
    let workers = max(1, min(threads, count))
    if workers == 1 { for i in 0..<count { body(i) }; return }
    DispatchQueue.concurrentPerform(iterations: workers) { w in
        for i in stride(from: w, to: count, by: workers) { body(i) }
    }
}

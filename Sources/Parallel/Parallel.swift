import Dispatch
import Synchronization

// The few ways the libraries run work on threads of their own, written once. Each runs its
// closures concurrently and returns when all are done; the caller guarantees that concurrent
// calls touch nothing in common except what they only read. A caller whose closures call
// OpenBLAS wraps the call in LinearAlgebra's `BLASThreading.singleThreaded` (OpenBLAS's thread
// count is process-wide). Results are deterministic when the work is cut independently of the
// number of threads (fixed chunks, fixed shards, sums in a fixed order afterwards).

/// Where each thread writes its result: a slot of its own.
private struct Slots<R>: @unchecked Sendable {
    let p: UnsafeMutablePointer<R>
    let body: (Int) -> R
}

/// `body(s)` for s in 0..<count, each on a thread (on the calling thread when count ≤ 1); the
/// results in order of s.
public func onThreads<R>(_ count: Int, _ body: (Int) -> R) -> [R] {
    if count <= 1 { return count == 1 ? [body(0)] : [] }
    let out = UnsafeMutablePointer<R>.allocate(capacity: count)
    defer { out.deinitialize(count: count); out.deallocate() }
    withoutActuallyEscaping(body) { body in
        let slots = Slots(p: out, body: body)
        DispatchQueue.concurrentPerform(iterations: count) { s in (slots.p + s).initialize(to: slots.body(s)) }
    }
    return (0..<count).map { out[$0] }
}

/// `body(i)` for every chunk i in 0..<count, on at most `threads` threads (on the calling thread
/// when one suffices). A thread takes the next chunk not yet taken whenever it is done with one,
/// so a thread slowed down (by the program's writer or reader threads, or by another program)
/// does not hold the others back with a fixed share of the chunks.
public func onChunks(_ count: Int, threads: Int, _ body: @Sendable (Int) -> Void) {
    let workers = max(1, min(threads, count))
    if workers == 1 { for i in 0..<count { body(i) }; return }
    takeChunks(count, workers: workers) { i, _ in body(i) }
}

/// Chunks 0..<count on `workers` threads, each thread taking the next chunk not yet taken:
/// `body(chunk, worker)`. What `onChunks` and `mapChunks` share.
private func takeChunks(_ count: Int, workers: Int, _ body: @Sendable (_ chunk: Int, _ worker: Int) -> Void) {
    let next = Atomic<Int>(0)
    DispatchQueue.concurrentPerform(iterations: workers) { w in
        while case let i = next.wrappingAdd(1, ordering: .relaxed).oldValue, i < count { body(i, w) }
    }
}

/// `body(i, worker)` for every chunk i in 0..<count, taken as in `onChunks` (a thread takes the
/// next chunk whenever it is done with one), with the index in 0..<threads of the thread that runs
/// it: a thread runs its chunks one after the other, so what it owns (a scratch network, say,
/// indexed by `worker`) is never used by two chunks at once. The results in order of i.
public func mapChunks<R>(_ count: Int, threads: Int, _ body: (_ chunk: Int, _ worker: Int) -> R) -> [R] {
    let workers = max(1, min(threads, count))
    if workers == 1 { return (0..<count).map { body($0, 0) } }
    let out = UnsafeMutablePointer<R>.allocate(capacity: count)
    defer { out.deinitialize(count: count); out.deallocate() }
    withoutActuallyEscaping(body) { body in
        let slots = ChunkSlots(p: out, body: body)
        takeChunks(count, workers: workers) { i, w in (slots.p + i).initialize(to: slots.body(i, w)) }
    }
    return (0..<count).map { out[$0] }
}

/// Where each chunk writes its result: a slot of its own.
private struct ChunkSlots<R>: @unchecked Sendable {
    let p: UnsafeMutablePointer<R>
    let body: (Int, Int) -> R
}

/// Two closures run on two threads, and the error of the first.
private final class TwoTasks: @unchecked Sendable {
    let a: () throws -> Void, b: () -> Void
    var error: Error? = nil
    init(_ a: @escaping () throws -> Void, _ b: @escaping () -> Void) { self.a = a; self.b = b }
}

/// `a` and `b` concurrently, on two threads; returns when both are done and rethrows `a`'s error.
public func onTwoThreads(_ a: () throws -> Void, _ b: () -> Void) throws {
    try withoutActuallyEscaping(a) { a in
        try withoutActuallyEscaping(b) { b in
            let tasks = TwoTasks(a, b)
            DispatchQueue.concurrentPerform(iterations: 2) { i in
                if i == 0 {
                    do { try tasks.a() } catch { tasks.error = error }
                } else {
                    tasks.b()
                }
            }
            if let e = tasks.error { throw e }
        }
    }
}

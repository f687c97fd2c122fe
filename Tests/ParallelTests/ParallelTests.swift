import XCTest
import Parallel

/// The thread helpers every library uses: each task runs exactly once, results come back in
/// order, an error crosses back to the caller only after the other task has finished.
final class ThreadHelperTests: XCTestCase {
    /// Counters that threads write, each index by the one task that owns it.
    final class Counts: @unchecked Sendable {
        let p: UnsafeMutablePointer<Int>
        let count: Int
        init(_ n: Int) { count = n; p = .allocate(capacity: max(1, n)); p.initialize(repeating: 0, count: max(1, n)) }
        deinit { p.deallocate() }
        var values: [Int] { (0..<count).map { p[$0] } }
    }

    func testOnThreadsReturnsEveryResultInOrder() {
        XCTAssertEqual(onThreads(0) { $0 }, [])
        XCTAssertEqual(onThreads(1) { $0 * 10 }, [0])
        for n in [2, 3, 7] {
            let seen = Counts(n)
            let out = onThreads(n) { s -> String in seen.p[s] += 1; return "shard \(s)" }
            XCTAssertEqual(out, (0..<n).map { "shard \($0)" })
            XCTAssertEqual(seen.values, [Int](repeating: 1, count: n), "n = \(n)")
        }
    }

    func testOnChunksRunsEveryChunkOnce() {
        for (count, threads) in [(0, 2), (1, 4), (17, 3), (5, 8), (9, 1)] {
            let seen = Counts(count)
            onChunks(count, threads: threads) { i in seen.p[i] += 1 }
            XCTAssertEqual(seen.values, [Int](repeating: 1, count: count), "\(count) chunks on \(threads) threads")
        }
    }

    /// A slow chunk holds its thread; the other threads take every chunk left meanwhile.
    func testOnChunksHandsTheChunksToWhicheverThreadIsFree() {
        let count = 9
        let ran = Counts(count)
        onChunks(count, threads: 2) { i in
            ran.p[i] = Int(bitPattern: UInt(pthread_self()))
            if i == 0 { usleep(200_000) }
        }
        for i in 1..<count { XCTAssertNotEqual(ran.p[i], ran.p[0], "chunk \(i) waited for the slow chunk's thread") }
    }

    /// mapChunks: every chunk once, results in order, a worker index below the threads that no
    /// two chunks hold at once, and a slow chunk's worker left alone while the others go on.
    func testMapChunksGivesEachChunkAWorkerOfItsOwn() {
        for (count, threads) in [(0, 2), (1, 4), (17, 3), (5, 8), (9, 1)] {
            let seen = Counts(count), busy = Counts(max(1, threads)), clash = Counts(1)
            let out = mapChunks(count, threads: threads) { i, w -> String in
                seen.p[i] += 1
                if busy.p[w] != 0 { clash.p[0] = 1 }
                busy.p[w] = 1
                usleep(1_000)
                busy.p[w] = 0
                return "chunk \(i) on \(w < max(1, min(threads, count)) ? "a worker" : "worker \(w)")"
            }
            XCTAssertEqual(out, (0..<count).map { "chunk \($0) on a worker" }, "\(count) chunks on \(threads) threads")
            XCTAssertEqual(seen.values, [Int](repeating: 1, count: count))
            XCTAssertEqual(clash.p[0], 0, "a worker ran two chunks at once")
        }
        let workers = Counts(9)
        _ = mapChunks(9, threads: 2) { i, w -> Int in
            workers.p[i] = w
            if i == 0 { usleep(200_000) }
            return i
        }
        for i in 1..<9 { XCTAssertNotEqual(workers.p[i], workers.p[0], "chunk \(i) waited for the slow chunk's worker") }
    }

    struct Refused: Error, Equatable { let row: Int }

    func testOnTwoThreadsRunsBothAndRethrowsTheFirstsError() throws {
        let done = Counts(2)
        try onTwoThreads({ done.p[0] = 1 }, { done.p[1] = 2 })
        XCTAssertEqual(done.values, [1, 2])
        let again = Counts(2)
        XCTAssertThrowsError(try onTwoThreads({ again.p[0] = 1; throw Refused(row: 7) }, {
            usleep(20_000)  // the second task is still running when the first throws
            again.p[1] = 2
        })) { XCTAssertEqual($0 as? Refused, Refused(row: 7)) }
        XCTAssertEqual(again.values, [1, 2], "returned before the second task finished")
    }
}

import XCTest
import Parallel
import Synchronization

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

/// The ordered task sequence that pipelines are written as: each task runs once, in the order
/// taken, after the tasks it waits for; threads stop at the first index with no task.
final class TaskSequenceTests: XCTestCase {
    final class Log: @unchecked Sendable {
        let lock = NSLock()
        var events: [String] = []
        func add(_ s: String) { lock.lock(); events.append(s); lock.unlock() }
    }

    func testEveryTaskRunsOnceAfterWhatItWaitsFor() {
        for threads in [1, 2, 3] {
            let count = 40
            let log = Log()
            let started = ThreadHelperTests.Counts(count), finished = ThreadHelperTests.Counts(count)
            let clock = Atomic<Int>(0)
            TaskSequence.run(threads: threads) { i, tasks in
                guard i < count else { return false }
                // Task i waits for i − 3 (when it exists): it must start after that one ended.
                tasks.wait(for: i - 3)
                started.p[i] = clock.wrappingAdd(1, ordering: .sequentiallyConsistent).newValue
                if i % 5 == 0 { usleep(2000) }   // a slow task: the others go on meanwhile
                finished.p[i] = clock.wrappingAdd(1, ordering: .sequentiallyConsistent).newValue
                log.add("\(i)")
                return true
            }
            XCTAssertEqual(log.events.count, count, "threads \(threads)")
            XCTAssertEqual(Set(log.events), Set((0..<count).map { "\($0)" }))
            for i in 3..<count {
                XCTAssertGreaterThan(started.p[i], finished.p[i - 3], "task \(i) started before task \(i - 3) ended, threads \(threads)")
            }
            if threads == 1 { XCTAssertEqual(log.events, (0..<count).map { "\($0)" }) }
        }
    }

    /// A slow task does not hold the others: with two threads the second runs the tasks after it
    /// that do not wait for it, while the first is busy.
    func testAFreeThreadTakesTheNextTask() {
        let log = Log()
        TaskSequence.run(threads: 2) { i, tasks in
            guard i < 6 else { return false }
            if i == 0 { usleep(100_000) }
            if i == 5 { tasks.wait(for: 0) }
            log.add("\(i)")
            return true
        }
        // Tasks 1–4 end while task 0 sleeps; task 5 waits for it.
        XCTAssertEqual(Array(log.events.prefix(4)).sorted(), ["1", "2", "3", "4"])
        XCTAssertEqual(Array(log.events.suffix(2)), ["0", "5"])
    }
}

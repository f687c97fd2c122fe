import ArgumentParser
import Glibc
import XCTest
import ToolKit

/// `--threads 1` keeps a program on one thread: read-ahead and background compression run on
/// the calling thread; with more threads they run beside it.
final class ThreadBudgetTests: XCTestCase {
    override func tearDown() { ThreadBudget.set(Int.max) }

    /// The threads `produce` ran on, and the items, in order.
    private func prefetchThreads() throws -> (threads: Set<UInt>, items: [Int]) {
        var threads = Set<UInt>(), items: [Int] = []
        var n = 0
        let ahead = Prefetcher { () -> Int? in
            threads.insert(UInt(pthread_self()))
            n += 1
            return n <= 5 ? n : nil
        }
        while let i = try ahead.next() { items.append(i) }
        return (threads, items)
    }

    func testOneThreadRunsReadAheadAndCompressionOnTheCallingThread() throws {
        ThreadBudget.set(1)
        XCTAssertFalse(ThreadBudget.allowsHelpers)
        let (threads, items) = try prefetchThreads()
        XCTAssertEqual(items, [1, 2, 3, 4, 5])
        XCTAssertEqual(threads, [UInt(pthread_self())], "produce ran on another thread")
        XCTAssertFalse(try OutputOptions.parse([]).writerOptions.background)
    }

    func testMoreThreadsReadAheadBesideTheWork() throws {
        ThreadBudget.set(2)
        let (threads, items) = try prefetchThreads()
        XCTAssertEqual(items, [1, 2, 3, 4, 5])
        XCTAssertEqual(threads.count, 1)
        XCTAssertFalse(threads.contains(UInt(pthread_self())), "produce ran on the calling thread")
        XCTAssertTrue(try OutputOptions.parse([]).writerOptions.background)
    }

    private struct Threaded: ParsableCommand, ThreadedTool {
        @OptionGroup var common: CommonOptions
    }
    private struct Plain: ParsableCommand {
        @Option var threads = 0
    }

    func testTheBudgetIsTheThreadsOptionOfAThreadedTool() throws {
        ThreadBudget.set(from: try Threaded.parse(["--threads", "1"]))
        XCTAssertEqual(ThreadBudget.threads, 1)
        ThreadBudget.set(from: try Threaded.parse(["--threads", "3"]))
        XCTAssertEqual(ThreadBudget.threads, 3)
        // Without --threads: every core.
        ThreadBudget.set(from: try Threaded.parse([]))
        XCTAssertEqual(ThreadBudget.threads, sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        // A command without CommonOptions leaves the budget as it was.
        ThreadBudget.set(1)
        ThreadBudget.set(from: try Plain.parse(["--threads", "4"]))
        XCTAssertEqual(ThreadBudget.threads, 1)
    }
}

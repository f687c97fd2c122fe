import CCleanup
import Foundation
import XCTest

/// A refused allocation ends the program with one line and exit status 71, removing its
/// temporary outputs (CCleanup's memory.c), instead of Swift's trap (134 and a stack trace).
final class RefusedAllocationTests: XCTestCase {
    /// Runs `body` in a child process whose standard error is captured; returns its wait
    /// status and what it wrote.
    private func inChild(_ body: () -> Never) -> (status: Int32, stderr: String) {
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&fds), 0)
        let pid = fork()
        if pid == 0 {
            dup2(fds[1], 2)
            close(fds[0])
            body()
        }
        close(fds[1])
        var out = Data()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while case let n = read(fds[0], &buffer, buffer.count), n > 0 { out.append(contentsOf: buffer[0..<n]) }
        close(fds[0])
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        return (status, String(decoding: out, as: UTF8.self))
    }

    func testASwiftAllocationTheSystemRefusesEndsWith71AndRemovesTemporaryFiles() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("refused-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let temporary = dir.appendingPathComponent(".out.tsr.tmp.abcdef").path
        XCTAssertTrue(FileManager.default.createFile(atPath: temporary, contents: Data([1, 2, 3])))
        let (status, stderr) = inChild {
            _ = cleanup_register(temporary)
            // 2^62 bytes: more than any system grants, through Swift's allocator.
            let p = UnsafeMutableRawPointer.allocate(byteCount: 1 << 62, alignment: 64)
            p.storeBytes(of: 1, as: UInt8.self)
            _exit(0)
        }
        // Exited (not killed by a signal) with 71.
        XCTAssertEqual(status & 0x7F, 0, "killed by signal \(status & 0x7F): \(stderr)")
        XCTAssertEqual((status >> 8) & 0xFF, 71, stderr)
        XCTAssertTrue(stderr.contains(": out of memory: the system refused 4611686018427.4 MB"), stderr)
        XCTAssertEqual(stderr.filter { $0 == "\n" }.count, 1, "one line: \(stderr)")
        XCTAssertFalse(FileManager.default.fileExists(atPath: temporary), "the temporary file was left")
    }

    func testSmallAndZeroSizedRequestsStillWork() {
        let (status, stderr) = inChild {
            // realloc(p, 0) frees and may return NULL: not a refusal.
            let p = malloc(100)
            _ = realloc(p, 0)
            var q: UnsafeMutableRawPointer?
            let bad = posix_memalign(&q, 3, 64)        // not a power of two: EINVAL, no exit
            let good = posix_memalign(&q, 64, 1 << 20)
            let aligned = q.map { Int(bitPattern: $0) % 64 == 0 } ?? false
            free(q)
            _exit(bad == EINVAL && good == 0 && aligned && calloc(0, 8) != nil ? 0 : 1)
        }
        XCTAssertEqual(status, 0, stderr)
    }

    /// The other ways in: reallocarray (whose overflowed count × size glibc's own would refuse
    /// inside libc, past the stand-in realloc), valloc and pvalloc.
    func testEveryAllocatingFunctionEndsTheSameWay() {
        // pvalloc is in <malloc.h>, which the Glibc module does not import.
        typealias PValloc = @convention(c) (Int) -> UnsafeMutableRawPointer?
        let pvalloc = unsafeBitCast(dlsym(UnsafeMutableRawPointer(bitPattern: 0), "pvalloc")!, to: PValloc.self)
        let requests: [(String, () -> Void)] = [
            ("reallocarray overflowed", { _ = reallocarray(nil, Int.max, 16) }),
            ("reallocarray", { _ = reallocarray(nil, 1 << 31, 1 << 31) }),
            ("valloc", { _ = valloc(1 << 62) }),
            ("pvalloc", { _ = pvalloc(1 << 62) }),
        ]
        for (name, request) in requests {
            let (status, stderr) = inChild { request(); _exit(0) }
            XCTAssertEqual(status & 0x7F, 0, "\(name): killed by signal \(status & 0x7F): \(stderr)")
            XCTAssertEqual((status >> 8) & 0xFF, 71, "\(name): \(stderr)")
            XCTAssertTrue(stderr.contains(": out of memory: the system refused "), "\(name): \(stderr)")
        }
        // And they still allocate.
        let (status, stderr) = inChild {
            let a = reallocarray(nil, 100, 8), v = valloc(100), p = pvalloc(0)
            let page = Int(sysconf(Int32(_SC_PAGESIZE)))
            let ok = a != nil && v.map { Int(bitPattern: $0) % page == 0 } == true && p.map { Int(bitPattern: $0) % page == 0 } == true
            _exit(ok ? 0 : 1)
        }
        XCTAssertEqual(status, 0, stderr)
    }
}

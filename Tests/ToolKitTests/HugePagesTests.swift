import XCTest
import Failure
#if canImport(Glibc)
import Glibc
#endif

/// Large buffers are advised onto huge pages (Failure/HugePages.swift): the kernel records the
/// advice as the flag "hg" of the mapping that holds them (/proc/self/smaps), whether or not it
/// has a free huge page at the moment.
final class HugePagesTests: XCTestCase {
    /// The VmFlags of the mapping that contains `address`, from /proc/self/smaps.
    func vmFlags(at address: UnsafeRawPointer) throws -> [String] {
        // (Read with stdio: /proc files say they are empty, which some readers believe.)
        guard let f = fopen("/proc/self/smaps", "r") else { throw XCTSkip("no /proc/self/smaps") }
        defer { fclose(f) }
        var bytes: [UInt8] = [], chunk = [UInt8](repeating: 0, count: 1 << 16)
        while case let n = fread(&chunk, 1, chunk.count, f), n > 0 { bytes += chunk[0..<n] }
        let text = String(decoding: bytes, as: UTF8.self)
        let a = UInt(bitPattern: address)
        var inside = false
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ")
            if let range = fields.first, range.contains("-"), !range.hasSuffix(":") {
                let ends = range.split(separator: "-").compactMap { UInt($0, radix: 16) }
                inside = ends.count == 2 && ends[0] <= a && a < ends[1]
            } else if inside && line.hasPrefix("VmFlags:") {
                return fields.dropFirst().map(String.init)
            }
        }
        throw XCTSkip("no mapping holds \(address) in /proc/self/smaps")
    }

    /// Skips where the kernel takes no huge-page advice (no transparent huge pages).
    func requireHugePageAdvice() throws {
        let size = 4 << 20
        guard let p = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), p != MAP_FAILED else {
            throw XCTSkip("mmap refused")
        }
        defer { munmap(p, size) }
        if madvise(p, size, MADV_HUGEPAGE) != 0 { throw XCTSkip("this kernel takes no MADV_HUGEPAGE") }
    }

    func testLargeBuffersAreAlignedAndAdvised() throws {
        try requireHugePageAdvice()
        let bytes = 6 << 20
        let p = try XCTUnwrap(allocateBuffer(bytes))
        defer { free(p) }
        XCTAssertEqual(Int(bitPattern: p) % (2 << 20), 0, "not on a 2 MiB boundary")
        XCTAssertTrue(try vmFlags(at: p).contains("hg"), "the buffer's first byte is not advised")
        XCTAssertTrue(try vmFlags(at: p + bytes - 1).contains("hg"), "the buffer's last byte is not advised")
        // Still ordinary memory: written and read back.
        p.initializeMemory(as: UInt8.self, repeating: 0xA5, count: bytes)
        XCTAssertEqual(p.load(fromByteOffset: bytes - 1, as: UInt8.self), 0xA5)
    }

    func testReservedArraysAreAdvisedInside() throws {
        try requireHugePageAdvice()
        var a: [Double] = []
        a.reserveCapacityOnHugePages(1 << 20)       // 8 MiB
        XCTAssertGreaterThanOrEqual(a.capacity, 1 << 20)
        let base = try XCTUnwrap(a.withUnsafeBufferPointer { UnsafeRawPointer($0.baseAddress) })
        // The whole 2 MiB pages inside the storage: from the first boundary after its start.
        let firstWhole = UnsafeRawPointer(bitPattern: (Int(bitPattern: base) + (2 << 20) - 1) & ~((2 << 20) - 1))!
        XCTAssertTrue(try vmFlags(at: firstWhole).contains("hg"))
        XCTAssertTrue(try vmFlags(at: base + (8 << 20) - (2 << 20) - 1).contains("hg"))
        a.append(contentsOf: (0..<(1 << 20)).map(Double.init))
        XCTAssertEqual(a[(1 << 20) - 1], Double((1 << 20) - 1))
    }
}

extension HugePagesTests {
    /// UNCERTAINTY_TOOLBOX_HUGEPAGES=0 turns the advice off; anything else leaves it on.
    func testTheEnvironmentTurnsTheAdviceOff() {
        XCTAssertEqual(hugePageThreshold("0"), Int.max)
        XCTAssertEqual(hugePageThreshold(nil), 2 << 20)
        XCTAssertEqual(hugePageThreshold("1"), 2 << 20)
        XCTAssertEqual(hugePageThreshold(""), 2 << 20)
    }
}

/// What kind of failure an error is. Libraries say the kind; ToolKit's runner alone maps a kind to a
/// sysexits(3) status, so that no library knows about exit codes.
public enum FailureKind: Sendable, Equatable {
    /// The input is not what it must be (EX_DATAERR, 65).
    case badData
    /// An input file is missing or unreadable (EX_NOINPUT, 66).
    case missingInput
    /// The command line is wrong (EX_USAGE, 64).
    case usage
    /// An output file cannot be created (EX_CANTCREAT, 73).
    case cannotCreate
    /// Reading or writing failed (EX_IOERR, 74).
    case io
    /// The system refused a resource: memory, threads (EX_OSERR, 71).
    case resources
    /// A bug of ours (EX_SOFTWARE, 70).
    case internalError
}

/// An error that knows what kind of failure it is and says it in one line.
public protocol KindedError: Error {
    var kind: FailureKind { get }
    /// One line, without the program's name: "what went wrong (what to do)".
    var message: String { get }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The system refused memory (or address space) for something a program needs.
public struct ResourceError: KindedError, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var kind: FailureKind { .resources }
    public var description: String { message }
}

/// The product of sizes, or a `.resources` error naming `what` when it does not fit in an Int
/// (a count of elements or bytes that no machine could hold).
public func checkedProduct(_ factors: Int..., what: String) throws -> Int {
    var p = 1
    for f in factors {
        precondition(f >= 0, "checkedProduct: negative size \(f)")
        let (r, overflow) = p.multipliedReportingOverflow(by: f)
        if overflow { throw ResourceError("\(what) would need more than \(Int.max) bytes") }
        p = r
    }
    return p
}

/// The checked allocator: every buffer whose size comes from the input or the command line is
/// sized through here before it is allocated. Swift's own allocation ends the process with a
/// trap when memory runs out; this asks the system first (maps that much memory and
/// `reserveHeadroom` more, untouched, and unmaps it: what `ulimit -v` and the kernel's commit
/// limit refuse) and throws a `.resources` error (exit 71) naming `what` when it says no. Small
/// sizes are not probed.
public func reserveMemory<T>(count: Int, of type: T.Type, what: String) throws {
    let bytes = try checkedProduct(count, max(1, MemoryLayout<T>.stride), what: what)
    try reserveMemory(bytes: bytes, what: what)
}

/// What the checked allocator keeps free beyond each large buffer: room for the buffers of one
/// block of rows (the programs read at most 2^21 values a block: 8 MB as float32, 16 MB as
/// doubles), which are allocated unchecked. Without it a buffer could take the last of the
/// address space and the next block's 1 MB would end the process with a trap: calib-metrics
/// under `ulimit -v 130000` did so in 3 runs of 40 once its program image had shrunk.
public let reserveHeadroom = 32 << 20

/// Probes that `bytes` bytes, and `reserveHeadroom` more, can be allocated now (see
/// `reserveMemory(count:of:what:)`).
public func reserveMemory(bytes: Int, what: String) throws {
    guard bytes > 1 << 24 else { return }
    let probe = bytes.addingReportingOverflow(reserveHeadroom)
    // Not malloc then free: an optimiser may remove that pair (release builds did, and the probe
    // never ran). A mapping is a system call, and its size is what a large allocation maps.
    let p = probe.overflow ? nil : mmap(nil, probe.partialValue, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
    guard let p, p != MAP_FAILED else {
        throw ResourceError("cannot allocate \(describeBytes(bytes)) for \(what) (the system refused: free memory or raise 'ulimit -v')")
    }
    munmap(p, probe.partialValue)
}

/// An array of `count` copies of `value`, allocated through the checked allocator.
public func checkedArray<T>(repeating value: T, count: Int, what: String) throws -> [T] {
    try reserveMemory(count: count, of: T.self, what: what)
    return [T](repeating: value, count: count)
}

/// "1.5 GB", "300 MB": a size for messages.
public func describeBytes(_ n: Int) -> String {
    let units = ["bytes", "kB", "MB", "GB", "TB", "PB", "EB"]
    var v = Double(n), u = 0
    while v >= 1000 && u < units.count - 1 { v /= 1000; u += 1 }
    if u == 0 { return "\(n) bytes" }
    let r = (v * 10).rounded() / 10
    return (r == r.rounded() ? "\(Int(r))" : "\(r)") + " " + units[u]
}

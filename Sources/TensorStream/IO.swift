#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Something bytes are read from: a file descriptor, a byte array.
public protocol ByteSource: AnyObject {
    /// Reads up to `buffer.count` bytes; returns 0 only at the end of the input.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int
}

/// Something bytes are written to.
public protocol ByteSink: AnyObject {
    func write(_ bytes: UnsafeRawBufferPointer) throws
}

/// Raised by `FileSink` when the reader of a pipe went away (EPIPE). Tools end quietly on it.
public struct BrokenPipe: Error, Sendable {}

/// Reads a file descriptor (standard input, an opened file, a pipe).
public final class FileSource: ByteSource {
    public let fd: Int32
    public let label: String
    private let owns: Bool

    public init(fd: Int32, label: String, owns: Bool = false) {
        self.fd = fd; self.label = label; self.owns = owns
    }

    /// Opens `path` for reading; "-" is standard input.
    public convenience init(path: String) throws {
        if path == "-" { self.init(fd: 0, label: "<stdin>"); return }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            throw StreamError.cannotOpen("cannot open \(path): \(String(cString: strerror(errno)))")
        }
        var st = stat()
        if fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR {
            close(fd)
            throw StreamError.io("cannot read \(path): it is a directory")
        }
        self.init(fd: fd, label: path, owns: true)
    }

    deinit { if owns { close(fd) } }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        while true {
            let n = Glibc.read(fd, buffer.baseAddress, buffer.count)
            if n >= 0 { return n }
            if errno == EINTR { continue }
            throw StreamError.io("cannot read \(label): \(String(cString: strerror(errno)))")
        }
    }

    /// Reads everything that is left (for formats that need the whole file, like npz).
    public func readAll(limit: Int = Int.max) throws -> [UInt8] {
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = try chunk.withUnsafeMutableBytes { try read(into: $0) }
            if n == 0 { return out }
            if out.count + n > limit {
                throw StreamError.invalid("\(label) is larger than \(limit) bytes")
            }
            out.append(contentsOf: chunk[0..<n])
        }
    }
}

/// Reads from bytes in memory.
public final class ArraySource: ByteSource {
    private let bytes: [UInt8]
    private var position = 0
    /// At most this many bytes per read call (tests use 1 to exercise every boundary).
    private let step: Int

    public init(_ bytes: [UInt8], step: Int = .max) { self.bytes = bytes; self.step = step }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let n = min(buffer.count, bytes.count - position, step)
        if n <= 0 { return 0 }
        bytes.withUnsafeBytes { src in
            buffer.baseAddress!.copyMemory(from: src.baseAddress! + position, byteCount: n)
        }
        position += n
        return n
    }
}

/// Writes to a file descriptor, retrying short writes. EPIPE becomes `BrokenPipe`.
public final class FileSink: ByteSink {
    public let fd: Int32
    public let label: String

    public init(fd: Int32, label: String) { self.fd = fd; self.label = label }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                if errno == EPIPE { throw BrokenPipe() }
                throw StreamError.io("cannot write \(label): \(String(cString: strerror(errno)))")
            }
            offset += n
        }
    }
}

/// Collects written bytes in memory.
public final class ArraySink: ByteSink {
    public private(set) var bytes: [UInt8] = []
    public init() {}
    public func write(_ b: UnsafeRawBufferPointer) throws { bytes.append(contentsOf: b) }
}

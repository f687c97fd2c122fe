import ArgumentParser
import LinearAlgebra
import TensorStream
#if canImport(Glibc)
import Glibc
#endif

/// Options every tool has: threads.
public struct CommonOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Threads for linear algebra and compression (default: all cores).", valueName: "N"))
    public var threads: Int?

    public init() {}

    public func validate() throws {
        if let t = threads, t < 1 { throw ValidationError("--threads must be at least 1") }
    }

    /// Threads to use: --threads, or every online core.
    public var threadCount: Int { threads ?? max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN))) }

    /// Applies --threads to OpenBLAS.
    public func apply() { setBLASThreads(threadCount) }
}

/// Options of every tool that writes a tensor stream.
public struct OutputOptions: ParsableArguments {
    @Option(name: [.short, .long], help: ArgumentHelp("Write to FILE (atomically: all or nothing) instead of standard output.", valueName: "FILE"))
    public var output: String?

    @Option(name: .long, help: ArgumentHelp("zstd compression level, -7 (fastest) to 19.", valueName: "N"))
    public var level: Int32 = 3

    @Flag(name: .customLong("no-shuffle"), help: "Do not byte-shuffle numbers before compressing them.")
    public var noShuffle = false

    public init() {}

    public func validate() throws {
        if level < -7 || level > 19 { throw ValidationError("--level must be between -7 and 19") }
        if let o = output, o.isEmpty { throw ValidationError("-o needs a file name") }
    }

    public var writerOptions: WriterOptions { WriterOptions(level: level, shuffle: !noShuffle) }

    /// Opens the output (refusing a terminal) and returns a stream writer on it.
    public func open() throws -> OutputStream {
        try OutputStream(path: output, options: writerOptions)
    }
}

/// A tensor stream being written to standard output or, atomically, to a file.
public final class OutputStream {
    public let writer: TensorStreamWriter
    private let file: OutputFile

    public init(path: String?, options: WriterOptions) throws {
        file = try OutputFile(path: path, binary: true)
        writer = try TensorStreamWriter(sink: file.sink, options: options)
    }

    /// Writes the end record and makes the file appear under its name.
    public func finish() throws {
        try writer.finish()
        try file.commit()
    }
}

/// An output destination: standard output, or a file written under a temporary name and
/// renamed into place only on success, so that a failure never leaves a partial file.
public final class OutputFile {
    public let sink: FileSink
    private let finalPath: String?
    private let tempPath: String?
    private var pending: UnsafeMutablePointer<CChar>?
    private let fd: Int32
    private var ownsFD = false

    public init(path: String?, binary: Bool) throws {
        guard let path, path != "-" else {
            if binary && isTerminal(1) {
                throw ToolError.usage("refusing to write a binary tensor stream to a terminal (redirect it, pipe it, or use -o FILE)")
            }
            fd = 1; finalPath = nil; tempPath = nil
            sink = FileSink(fd: 1, label: "standard output")
            return
        }
        // A device, FIFO or socket (/dev/null, a named pipe) is written in place: renaming a
        // file over it would replace the device itself.
        var st = stat()
        if stat(path, &st) == 0 && (st.st_mode & S_IFMT) != S_IFREG {
            let dfd = Glibc.open(path, O_WRONLY | O_CLOEXEC)
            guard dfd >= 0 else {
                throw ToolError(.cantCreate, "cannot open \(path): \(String(cString: strerror(errno)))")
            }
            if binary && isatty(dfd) == 1 {
                close(dfd)
                throw ToolError.usage("refusing to write a binary tensor stream to a terminal (\(path))")
            }
            fd = dfd; finalPath = nil; tempPath = nil; ownsFD = true
            sink = FileSink(fd: dfd, label: path)
            return
        }
        let dir = path.contains("/") ? String(path[..<path.lastIndex(of: "/")!]) : "."
        let base = basename(path)
        var template = Array("\(dir.isEmpty ? "/" : dir)/.\(base).tmp.XXXXXX".utf8CString)
        let tfd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard tfd >= 0 else {
            throw ToolError(.cantCreate, "cannot create \(path): \(String(cString: strerror(errno)))")
        }
        fchmod(tfd, 0o644 & ~currentUmask())
        let temp = String(cString: template.withUnsafeBufferPointer { $0.baseAddress! })
        fd = tfd; finalPath = path; tempPath = temp; ownsFD = true
        pending = registerPendingOutput(temp)
        sink = FileSink(fd: tfd, label: path)
    }

    deinit {
        if let p = pending {
            unlink(p)
            unregisterPendingOutput(p)
        }
        if ownsFD { close(fd) }
    }

    /// Renames the temporary file into place (a no-op on standard output).
    public func commit() throws {
        guard let finalPath, let tempPath, let p = pending else { return }
        if fsync(fd) != 0 && errno != EINVAL {
            throw ToolError.io("cannot write \(finalPath): \(String(cString: strerror(errno)))")
        }
        guard rename(tempPath, finalPath) == 0 else {
            throw ToolError(.cantCreate, "cannot create \(finalPath): \(String(cString: strerror(errno)))")
        }
        unregisterPendingOutput(p)
        pending = nil
    }
}

private func currentUmask() -> mode_t {
    let m = umask(0)
    umask(m)
    return m
}

/// Opens a tensor stream for reading: a file, or "-" for standard input (refused when it is
/// a terminal, where nobody would type binary).
public func openStream(_ path: String = "-") throws -> TensorStreamReader {
    if path == "-" && isTerminal(0) {
        throw ToolError.usage("standard input is a terminal: pipe a tensor stream in or name a file")
    }
    do {
        return try TensorStreamReader(path: path)
    } catch let e as StreamError {
        if case .io(let m) = e { throw ToolError.noInput(m) }
        throw e
    }
}

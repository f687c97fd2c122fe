import ArgumentParser
import CCleanup
import TensorStream
#if canImport(Glibc)
import Glibc
#endif

/// Options every tool that computes has: threads. A program that uses BLAS passes `threadCount`
/// to LinearAlgebra's `prepareBLAS(threads:)` before its first BLAS call (ToolKit itself does not
/// link OpenBLAS, so that `tensor` and `calib-metrics` do not load it and its 128 MB buffer).
/// A tool that has these options conforms to `ThreadedTool`, so that `--threads 1` also keeps its
/// reading and writing on the one thread (see `ThreadBudget`).
public struct CommonOptions: ParsableArguments {
    @Option(name: .long, parsing: .unconditional, help: ArgumentHelp(
        "Threads to use (default: all cores). With 1 the program runs on one thread: its computing, and the reading and the compressing of streams, which otherwise run beside it.",
        valueName: "N"))
    public var threads: Int?

    public init() {}

    public func validate() throws {
        if let t = threads, t < 1 || t > 1024 { throw ValidationError("--threads must be between 1 and 1024") }
    }

    /// Threads to use: --threads, or every online core.
    public var threadCount: Int { threads ?? ThreadBudget.cores }

}

/// Options of every tool that writes a tensor stream.
public struct OutputOptions: ParsableArguments {
    @Option(name: [.short, .long], help: ArgumentHelp("Write to FILE (atomically: all or nothing) instead of standard output.", valueName: "FILE"))
    public var output: String?

    @Option(name: .long, parsing: .unconditional, help: ArgumentHelp("zstd compression level, -7 (fastest) to 19 (on float data, the default 1 is as small as 3 at half the time).", valueName: "N"))
    public var level: Int32?

    @Flag(name: .customLong("no-shuffle"), help: "Do not byte-shuffle numbers before compressing them.")
    public var noShuffle = false

    public init() {}

    public func validate() throws {
        if let level, level < -7 || level > 19 { throw ValidationError("--level must be between -7 and 19") }
        if let o = output, o.isEmpty { throw ValidationError("-o needs a file name") }
    }

    /// Tools compress on a thread of the writer's own while they compute the next rows, unless
    /// they were asked to keep to one thread.
    public var writerOptions: WriterOptions {
        WriterOptions(level: level ?? WriterOptions.defaultLevel, shuffle: !noShuffle, background: ThreadBudget.allowsHelpers)
    }

    /// Whether the encoding of the output was left to the program (no --level, no --no-shuffle):
    /// a program may then copy records of its input that it writes unchanged, encoded as they
    /// came (`TensorStreamWriter.write(_:copying:)`).
    public var leavesEncodingToTheProgram: Bool { level == nil && !noShuffle }

    /// Opens the output (refusing a terminal) and returns a stream writer on it; `compressors`
    /// threads compress its records at once when the program may use helper threads (for a
    /// program with little else to do meanwhile: `ThreadBudget.compressors`).
    public func open(compressors: Int = 1) throws -> OutputStream {
        var options = writerOptions
        if options.background { options.compressors = max(1, compressors) }
        return try OutputStream(path: output, options: options)
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
/// renamed into place only on success, so that a failure never leaves a partial file. Every
/// file a program writes goes through here (streams, text reports, SVG).
///
/// - A device, FIFO or socket (`/dev/null`, a named pipe) is written in place: renaming a file
///   over it would replace the device itself.
/// - An existing regular file keeps its permission bits (and, when allowed, its owner and group).
/// - A symbolic link is replaced by a regular file (the file it pointed to is left unchanged),
///   and a hard link is broken (the other names keep the old contents), as with `mv`.
public final class OutputFile {
    public let sink: FileSink
    private let finalPath: String?
    private let tempPath: String?
    private var slot: Int32 = -1
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
        var st = stat()
        let exists = stat(path, &st) == 0
        if exists && (st.st_mode & S_IFMT) == S_IFDIR {
            throw ToolError.cantCreate("cannot create \(path): it is a directory")
        }
        if exists && (st.st_mode & S_IFMT) != S_IFREG {
            let dfd = Glibc.open(path, O_WRONLY | O_CLOEXEC)
            guard dfd >= 0 else {
                throw ToolError.cantCreate("cannot open \(path): \(String(cString: strerror(errno)))")
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
        var template = Array("\(dir.isEmpty ? "" : dir)/.\(base).tmp.XXXXXX".utf8CString)
        // The temporary name is registered for removal before the file is created: a signal at
        // any moment leaves no temporary file behind.
        var registered: Int32 = -1
        let tfd = template.withUnsafeMutableBufferPointer { cleanup_create_temp($0.baseAddress!, &registered) }
        guard tfd >= 0 else {
            if tfd == -2 {
                throw ToolError.resources("cannot create \(path): too many output files at once (at most \(cleanup_capacity()))")
            }
            throw ToolError.cantCreate("cannot create \(path): \(String(cString: strerror(errno)))")
        }
        slot = registered
        let temp = String(cString: template.withUnsafeBufferPointer { $0.baseAddress! })
        if exists {
            // Keep the target's mode and, where permitted (as root, or for one's own group), its owner.
            _ = fchown(tfd, st.st_uid, st.st_gid)
            fchmod(tfd, st.st_mode & 0o7777)
        } else {
            fchmod(tfd, 0o644 & ~currentUmask())
        }
        fd = tfd; finalPath = path; tempPath = temp; ownsFD = true
        sink = FileSink(fd: tfd, label: path)
    }

    deinit {
        if slot >= 0, let tempPath {
            unlink(tempPath)
            cleanup_unregister(slot)
        }
        if ownsFD { close(fd) }
    }

    /// Renames the temporary file into place (a no-op on standard output and devices).
    public func commit() throws {
        guard let finalPath, let tempPath, slot >= 0 else { return }
        if fsync(fd) != 0 && errno != EINVAL {
            throw ToolError.io("cannot write \(finalPath): \(String(cString: strerror(errno)))")
        }
        guard rename(tempPath, finalPath) == 0 else {
            throw ToolError.cantCreate("cannot create \(finalPath): \(String(cString: strerror(errno)))")
        }
        cleanup_unregister(slot)
        slot = -1
    }

    /// Writes `text` to `path` (standard output for nil or "-") through an `OutputFile`: all or
    /// nothing for a file, in place for a device or FIFO.
    public static func write(_ text: String, to path: String?) throws {
        let out = try TextOutput(path: path)
        try out.write(text)
        try out.finish()
    }
}

/// Text output (reports, tables, JSON, lists of names) to standard output or, through
/// `OutputFile`, to a file. Every write goes straight to the file descriptor and is checked: a
/// failed write (a full disk, a closed descriptor) throws an I/O error (exit 74) instead of
/// being lost in a buffer; a reader that went away ends the program quietly.
public final class TextOutput {
    private let file: OutputFile

    /// Standard output for nil or "-".
    public init(path: String? = nil) throws {
        file = try OutputFile(path: path, binary: false)
    }

    /// Writes `text` now (unbuffered).
    public func write(_ text: String) throws {
        var text = text
        try text.withUTF8 { try file.sink.write(UnsafeRawBufferPointer($0)) }
    }

    /// Writes `text` and a newline.
    public func line(_ text: String) throws { try write(text + "\n") }

    /// Makes a file appear under its name (nothing to do for standard output).
    public func finish() throws { try file.commit() }
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
    return try TensorStreamReader(path: path)  // a file that cannot be opened is .missingInput (66)
}

/// `-q/--quiet`: notes and warnings on standard error are silenced (errors never are).
public struct NoteOptions: ParsableArguments {
    @Flag(name: [.short, .long], help: "Print no notes or warnings on standard error (errors are always printed).")
    public var quiet = false

    public init() {}

    /// Writes `program: text` on standard error unless --quiet.
    public func note(_ program: String, _ text: String) {
        if !quiet { writeStderr("\(program): \(text)\n") }
    }
}

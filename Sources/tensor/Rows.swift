import ArgumentParser
import TensorStream
import ToolKit

/// Copies streams into one writer, tensor by tensor and chunk by chunk (bounded memory).
/// `rename` decides, per tensor, whether it is copied and under which name; `rowRange` limits
/// the rows of row tensors (0-d tensors are always copied whole). With `copyingRecords`, a
/// record that is copied whole goes out as it came, still compressed, when its tensor keeps its
/// id (`TensorStreamWriter.write(_:copying:)`); the others are compressed again.
func copyStreams(_ readers: [TensorStreamReader], to writer: TensorStreamWriter,
                 rename: (TensorInfo) -> String? = { $0.name },
                 rowRange: Range<Int> = 0 ..< Int.max, copyingRecords: Bool) throws {
    var ids: [ObjectIdentifier: [Int?]] = [:]
    var byName: [String: Int] = [:]
    for reader in readers {
        let key = ObjectIdentifier(reader)
        ids[key] = []
        while let event = try reader.next() {
            switch event {
            case .tensor(let i):
                var info = reader.tensors[i]
                guard let newName = rename(info) else { ids[key]!.append(nil); continue }
                info.name = newName
                info.rows = nil
                if let existing = byName[newName] {
                    let old = writer.declared[existing]
                    guard old.dtype == info.dtype, old.rowShape == info.rowShape, !old.isScalar, !info.isScalar else {
                        let n = escaped(newName), here = escaped(reader.label)
                        if old.isScalar || info.isScalar {
                            throw ToolError.data("0-d tensor '\(n)' appears in \(here) and before it: a 0-d tensor has one value and cannot be joined (drop or rename one with 'tensor drop' or 'tensor rename')")
                        }
                        let what = old.dtype != info.dtype ? "dtype \(info.dtype.name) in \(here) but \(old.dtype.name) before it (convert one with --dtype)"
                            : "rows of shape [\(info.rowShape.map(String.init).joined(separator: ", "))] in \(here) but [\(old.rowShape.map(String.init).joined(separator: ", "))] before it"
                        throw ToolError.data("tensor '\(n)' has \(what)")
                    }
                    ids[key]!.append(existing)
                } else {
                    let id = try writer.add(info)
                    byName[newName] = id
                    ids[key]!.append(id)
                }
            case .data(let i, let rows, let bytes):
                guard let id = ids[key]![i] else { continue }
                let info = reader.tensors[i]
                if info.isScalar {
                    try writer.write(id, rows: rows, bytes: bytes)
                    continue
                }
                // Rows [start, start+rows) of this tensor, counted over all inputs so far.
                let end = totalRows(byName: id, readers: readers, upTo: reader, current: reader.rowsRead[i], name: info.name)
                let start = end - rows
                let lo = max(start, rowRange.lowerBound), hi = min(end, rowRange.upperBound)
                guard lo < hi else { continue }
                // A whole record is written as it came, still compressed, when it can be (it was
                // decoded, and so checked, all the same).
                let rb = info.rowBytes
                try writer.write(id, rows: hi - lo,
                                 bytes: UnsafeRawBufferPointer(rebasing: bytes[(lo - start) * rb ..< (hi - start) * rb]),
                                 orCopying: copyingRecords && lo == start && hi == end ? reader.lastCompressedData : nil)
            }
        }
    }
}

/// Rows of the tensor named `name` read so far: all of it from earlier readers, plus the
/// current reader's count.
private func totalRows(byName id: Int, readers: [TensorStreamReader], upTo current: TensorStreamReader,
                       current count: Int, name: String) -> Int {
    var total = count
    for r in readers {
        if r === current { break }
        if let i = r.index(of: name) { total += r.rowsRead[i] }
    }
    return total
}

func openAll(_ files: [String]) throws -> [TensorStreamReader] {
    let paths = files.isEmpty ? ["-"] : files
    if paths.filter({ $0 == "-" }).count > 1 { throw ToolError.usage("standard input ('-') can be named only once") }
    return try paths.map { try openStream($0) }
}

struct Cat: Tool {
    static let configuration = CommandConfiguration(
        commandName: "cat",  // given, not derived from the type name: that costs start-up time
        abstract: "Concatenate streams: rows of tensors with the same name follow each other.",
        discussion: """
            'cat a.tsr b.tsr' (the shell's) already gives a valid stream; 'tensor cat' also checks every \
            input and writes one segment. Tensors with the same name must have the same dtype and row shape.

            Like every tensor command that copies rows (head, slice, select, drop, rename, split, paste), \
            it writes a record that it copies whole as it came, still compressed, once it has \
            decoded and checked it, when its tensor keeps its number in the stream; --level or \
            --no-shuffle asks for every record to be compressed anew.

            Example:
              tensor cat part-000.tsr part-001.tsr > whole.tsr
            """)

    @Argument(help: ArgumentHelp("Streams ('-' or nothing: standard input).", valueName: "FILE"))
    var files: [String] = []

    @OptionGroup var output: OutputOptions

    func run() throws {
        let readers = try openAll(files)
        let out = try output.open(compressors: ThreadBudget.compressors)
        try copyStreams(readers, to: out.writer, copyingRecords: output.leavesEncodingToTheProgram)
        try out.finish()
    }
}

struct Head: Tool {
    static let configuration = CommandConfiguration(
        commandName: "head",  // given, not derived from the type name: that costs start-up time
        abstract: "The first rows of every tensor.",
        discussion: "Example:\n  tensor head -n 5 < emb.tsr | tensor to csv")

    // .unconditional: "-n -1" reaches the range check instead of "missing value".
    @Option(name: [.short, .customLong("rows")], parsing: .unconditional, help: "Rows to keep.")
    var n: Int = 10

    @Argument(help: ArgumentHelp("Stream ('-' or nothing: standard input).", valueName: "FILE"))
    var file: String = "-"

    @OptionGroup var output: OutputOptions

    func validate() throws { if n < 0 { throw ValidationError("-n must be 0 or more") } }

    func run() throws {
        let out = try output.open(compressors: ThreadBudget.compressors)
        try copyStreams([try openStream(file)], to: out.writer, rowRange: 0 ..< n, copyingRecords: output.leavesEncodingToTheProgram)
        try out.finish()
    }
}

struct Slice: Tool {
    static let configuration = CommandConfiguration(
        commandName: "slice",  // given, not derived from the type name: that costs start-up time
        abstract: "Rows START..<END of every tensor (0-based, END excluded).",
        discussion: "Example:\n  tensor slice --start 1000 --end 2000 < emb.tsr > part.tsr")

    @Option(parsing: .unconditional, help: "First row (0-based).")
    var start: Int = 0

    @Option(parsing: .unconditional, help: "Row after the last (default: to the end).")
    var end: Int?

    @Argument(help: ArgumentHelp("Stream ('-' or nothing: standard input).", valueName: "FILE"))
    var file: String = "-"

    @OptionGroup var output: OutputOptions

    func validate() throws {
        if start < 0 { throw ValidationError("--start must be 0 or more") }
        if let end, end < start { throw ValidationError("--end must not be less than --start") }
    }

    func run() throws {
        let out = try output.open(compressors: ThreadBudget.compressors)
        try copyStreams([try openStream(file)], to: out.writer, rowRange: start ..< (end ?? Int.max), copyingRecords: output.leavesEncodingToTheProgram)
        try out.finish()
    }
}

struct Select: Tool {
    static let configuration = CommandConfiguration(
        commandName: "select",  // given, not derived from the type name: that costs start-up time
        abstract: "Keep only the named tensors.",
        discussion: "Example:\n  emb-fuse a.tsr b.tsr | tensor select weights | tensor to csv")

    @Argument(help: "Names of the tensors to keep.")
    var names: [String]

    @Option(name: .customLong("input"), help: ArgumentHelp("Stream to read (default: standard input).", valueName: "FILE"))
    var file: String = "-"

    @OptionGroup var output: OutputOptions

    func run() throws {
        let reader = try openStream(file)
        let out = try output.open(compressors: ThreadBudget.compressors)
        let keep = Set(names)
        try copyStreams([reader], to: out.writer, rename: { keep.contains($0.name) ? $0.name : nil }, copyingRecords: output.leavesEncodingToTheProgram)
        let missing = names.filter { reader.index(of: $0) == nil }
        if !missing.isEmpty {
            throw ToolError.data("input has no tensor '\(escaped(missing[0]))' (it has: \(reader.tensors.map { escaped($0.name) }.joined(separator: ", ")))")
        }
        try out.finish()
    }
}

struct Drop: Tool {
    static let configuration = CommandConfiguration(
        commandName: "drop",  // given, not derived from the type name: that costs start-up time
        abstract: "Remove the named tensors.",
        discussion: "Example:\n  tensor drop weights < fused.tsr > fused-slim.tsr")

    @Argument(help: "Names of the tensors to remove.")
    var names: [String]

    @Option(name: .customLong("input"), help: ArgumentHelp("Stream to read (default: standard input).", valueName: "FILE"))
    var file: String = "-"

    @OptionGroup var output: OutputOptions

    func run() throws {
        let out = try output.open(compressors: ThreadBudget.compressors)
        let drop = Set(names)
        try copyStreams([try openStream(file)], to: out.writer, rename: { drop.contains($0.name) ? nil : $0.name }, copyingRecords: output.leavesEncodingToTheProgram)
        try out.finish()
    }
}

struct Rename: Tool {
    static let configuration = CommandConfiguration(
        commandName: "rename",  // given, not derived from the type name: that costs start-up time
        abstract: "Rename tensors.",
        discussion: "Example:\n  tensor rename mean=embedding < fused.tsr | emb-sim --corpus c.tsr --top-k 10")

    @Argument(help: ArgumentHelp("Renamings.", valueName: "OLD=NEW"))
    var pairs: [String]

    @Option(name: .customLong("input"), help: ArgumentHelp("Stream to read (default: standard input).", valueName: "FILE"))
    var file: String = "-"

    @OptionGroup var output: OutputOptions

    func validate() throws { _ = try mapping() }

    func mapping() throws -> [String: String] {
        var m: [String: String] = [:]
        for p in pairs {
            let parts = p.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw ValidationError("renamings are OLD=NEW, got '\(escaped(p))'")
            }
            m[parts[0]] = parts[1]
        }
        return m
    }

    func run() throws {
        let m = try mapping()
        let reader = try openStream(file)
        let out = try output.open(compressors: ThreadBudget.compressors)
        try copyStreams([reader], to: out.writer, rename: { m[$0.name] ?? $0.name }, copyingRecords: output.leavesEncodingToTheProgram)
        if let missing = m.keys.sorted().first(where: { reader.index(of: $0) == nil }) {
            throw ToolError.data("input has no tensor '\(escaped(missing))' (it has: \(reader.tensors.map { escaped($0.name) }.joined(separator: ", ")))")
        }
        try out.finish()
    }
}

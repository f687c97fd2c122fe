import ArgumentParser
import TensorFormats
import TensorStream
import ToolKit

enum ImportFormat: String, ExpressibleByArgument, CaseIterable {
    case npy, npz, safetensors, csv, tsv
}

enum ExportFormat: String, ExpressibleByArgument, CaseIterable {
    case npy, npz, safetensors, csv, tsv
}

/// Parses repeated `--meta key=value` options.
func parseMeta(_ items: [String]) throws -> [String: String] {
    var m: [String: String] = [:]
    for item in items {
        guard let eq = item.firstIndex(of: "="), eq != item.startIndex else {
            throw ValidationError("--meta takes key=value, got '\(escaped(item))'")
        }
        m[String(item[..<eq])] = String(item[item.index(after: eq)...])
    }
    return m
}

func stem(_ path: String) -> String {
    let base = path.split(separator: "/").last.map(String.init) ?? path
    if let dot = base.lastIndex(of: "."), dot != base.startIndex { return String(base[..<dot]) }
    return base
}

struct From: Tool {
    static let configuration = CommandConfiguration(
        commandName: "from",  // given, not derived from the type name: that costs start-up time
        abstract: "Convert npy, npz, safetensors, CSV or TSV into a tensor stream.",
        discussion: """
            npy: versions 1.0-3.0, C or Fortran order, float16/32/64, (u)int8-64, bool, either byte order. \
            The tensor is named by --name (default: the file's name without extension). \
            npz: every numeric array, named as in the archive (stored or deflated); string and object \
            arrays are skipped with a note on standard error. \
            safetensors: every tensor with its name, F64/F32/F16/BF16/I64/I32/I16/I8/U8/BOOL. \
            csv/tsv: one numeric table; a first line that is not numeric is taken as column names; \
            a single column gives a vector. From npz and safetensors, arrays with the same number of \
            rows are written interleaved, a chunk of rows of each in turn (as 'tensor paste' writes \
            them), so that a program reads their rows together in bounded memory.

            Examples:
              tensor from npy emb.npy --name embedding --meta model=minilm > emb.tsr
              tensor from safetensors model.safetensors | tensor info
              tensor from csv --name labels labels.csv > labels.tsr
            """)

    @Argument(help: "Input format.")
    var format: ImportFormat

    @Argument(help: ArgumentHelp("Input file ('-' or nothing: standard input).", valueName: "FILE"))
    var file: String = "-"

    @Option(help: "Name of the tensor (npy, csv, tsv).")
    var name: String?

    @Option(help: ArgumentHelp("Convert elements to this dtype (f32, f64, f16, bf16, i64, ...).", valueName: "DTYPE"))
    var dtype: String?

    @Option(help: ArgumentHelp("Add metadata to every tensor (repeatable).", valueName: "KEY=VALUE"))
    var meta: [String] = []

    @Flag(help: "With --dtype, store values the dtype cannot hold as its nearest (NaN as 0, beyond the range as the largest or smallest, fractions truncated, overflowing floats as inf); CSV/TSV: read numbers beyond a double's range as inf. Without it such values are refused, naming the row.")
    var saturate = false

    @Flag(name: [.short, .long], help: "Do not print notes (npz: the arrays skipped).")
    var quiet = false

    @OptionGroup var output: OutputOptions

    func validate() throws {
        if let d = dtype, DType(name: d) == nil { throw ValidationError("unknown dtype '\(escaped(d))'") }
        if name != nil && (format == .npz || format == .safetensors) {
            throw ValidationError("--name applies to npy, csv and tsv; npz and safetensors keep their own names")
        }
        _ = try parseMeta(meta)
    }

    func run() throws {
        let extra = try parseMeta(meta)
        let target = dtype.flatMap { DType(name: $0) }
        let tensorName = name ?? (file == "-" ? "tensor" : stem(file))
        let source = try openInput(file)
        let out = try output.open(compressors: ThreadBudget.compressors)
        func converted(_ t: Tensor) throws -> Tensor {
            var t = try convert(t, to: target, saturate: saturate)
            for (k, v) in extra { t.meta[k] = v }
            return t
        }
        do {
            switch format {
            case .npy:
                try importNpy(source, name: tensorName, target: target, meta: extra, saturate: saturate, writer: out.writer)
            case .npz:
                var (tensors, skipped) = try Npz.read(try source.readAll(), skipUnsupported: true)
                if !quiet { for (name, why) in skipped { writeStderr("tensor: skipping '\(escaped(name))': \(why)\n") } }
                for t in tensors {
                    // A member name is a path inside the archive: one that could not be written
                    // back safely (directories, "..", control characters) is refused here too.
                    if let why = unsafeMemberReason(t.name) {
                        throw ToolError.data("\(escaped(source.label)): member '\(escaped(t.name))' is not a safe tensor name: \(why)")
                    }
                }
                // Arrays of the same row count interleaved, so that a program reads their rows
                // together in bounded memory (emb-laplace fit's query and positive, say).
                for i in tensors.indices { tensors[i] = try converted(tensors[i]) }   // (one copy at a time)
                try out.writer.write(interleaving: tensors)
            case .safetensors:
                let src = file == "-" ? nil : stem(file) + ".safetensors"
                var tensors = try Safetensors.read(try source.readAll(), source: src)
                for i in tensors.indices { tensors[i] = try converted(tensors[i]) }
                try out.writer.write(interleaving: tensors)
            case .csv, .tsv:
                try importDelimited(source, separator: format == .csv ? UInt8(ascii: ",") : 9,
                                    name: tensorName, target: target ?? .f32, meta: extra, saturate: saturate, writer: out.writer)
            }
        } catch let e as FormatError {
            throw ToolError.data("\(source.label): \(e.description)")
        }
        try out.finish()
    }
}

func openInput(_ path: String) throws -> FileSource {
    if path == "-" && isTerminal(0) {
        throw ToolError.usage("standard input is a terminal: pipe a file in or name one")
    }
    do { return try FileSource(path: path) } catch { throw ToolError.noInput("\(error)") }
}

/// Refuses the first value of `values` that `target` cannot hold (unless `saturate`), naming
/// its row: the first row is `firstRow`.
func checkConversion(_ values: [Double], to target: DType, name: String, rowElements: Int, firstRow: Int = 0,
                     saturate: Bool) throws {
    guard !saturate else { return }
    for (k, v) in values.enumerated() {
        if let why = conversionLoss(v, to: target) {
            throw ToolError.data("tensor '\(escaped(name))' row \(firstRow + k / max(rowElements, 1)): \(why) (use --saturate to store the nearest \(target.name) value)")
        }
    }
}

func convert(_ t: Tensor, to target: DType?, saturate: Bool) throws -> Tensor {
    guard let target, target != t.dtype else { return t }
    try checkConversion(t.doubles(), to: target, name: t.name, rowElements: t.info.rowElements, saturate: saturate)
    var info = t.info
    info.dtype = target
    let data = target.isFloat && target != .f64 ? convertFromFloat(t.floats(), to: target)
                                                : convertFromDouble(t.doubles(), to: target)
    return Tensor(info: info, data: data)
}

/// Streams a C-order .npy file row block by row block (bounded memory); Fortran order and
/// big-endian data are read whole and reordered.
func importNpy(_ src: FileSource, name: String, target: DType?, meta: [String: String], saturate: Bool,
               writer: TensorStreamWriter) throws {
    var head = [UInt8](repeating: 0, count: 0)
    var buf = [UInt8](repeating: 0, count: 1 << 16)
    // Read enough for the header: magic, version, length, then the header itself.
    func fill(to n: Int) throws {
        while head.count < n {
            let got = try buf.withUnsafeMutableBytes { try src.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<min($0.count, n - head.count)])) }
            if got == 0 { break }
            head += buf[0..<got]
        }
    }
    try fill(to: 12)
    guard head.count >= 10, head.starts(with: [0x93] + Array("NUMPY".utf8)) else {
        throw FormatError("not a .npy file (no \\x93NUMPY magic)")
    }
    let headerLen = head[6] == 1 ? Int(head[8]) | Int(head[9]) << 8
        : Int(head[8]) | Int(head[9]) << 8 | Int(head[10]) << 16 | Int(head[11]) << 24
    try fill(to: (head[6] == 1 ? 10 : 12) + min(headerLen, 1 << 20))
    let h = try Npy.parseHeader(head)
    let leftover = Array(head[h.dataOffset...])
    if h.fortranOrder || h.bigEndian || target != nil && target != h.dtype {
        let rest = try src.readAll(limit: h.dataBytes + 1)
        var t = try Npy.read(head + rest, name: name)
        t = try convert(t, to: target, saturate: saturate)
        for (k, v) in meta { t.meta[k] = v }
        try writer.write(t)
        return
    }
    let info = TensorInfo(name: name, dtype: h.dtype, shape: h.shape, meta: meta)
    let id = try writer.add(info)
    let rowBytes = info.rowBytes
    let totalRows = info.isScalar ? 1 : h.shape[0]
    if rowBytes == 0 || totalRows == 0 {
        try writer.write(id, rows: totalRows, bytes: UnsafeRawBufferPointer(start: nil, count: 0))
        return
    }
    // About 4 MiB a write, a whole number of the writer's records: every record but the last then
    // holds the same rows (writes of 4 MiB of 10 float32 a row left a record of one row after
    // every four of 26 214; a reader whose blocks are records then had to copy one block in five).
    let perRecord = writer.rowsPerRecord(id)
    let rowsPerBlock = max(1, (4 << 20) / rowBytes / perRecord) * perRecord
    var block = leftover
    var done = 0
    while done < totalRows {
        let want = min(rowsPerBlock, totalRows - done) * rowBytes
        while block.count < want {
            let got = try buf.withUnsafeMutableBytes { try src.read(into: $0) }
            if got == 0 {
                throw FormatError("truncated .npy data: \(done * rowBytes + block.count) of \(h.dataBytes) bytes")
            }
            block += buf[0..<got]
        }
        let rows = want / rowBytes
        try block.withUnsafeBytes { try writer.write(id, rows: rows, bytes: UnsafeRawBufferPointer(rebasing: $0[0..<want])) }
        block.removeFirst(want)
        done += rows
    }
}

func importDelimited(_ src: FileSource, separator: UInt8, name: String, target: DType,
                     meta: [String: String], saturate: Bool, writer: TensorStreamWriter) throws {
    let reader = DelimitedReader(src, label: src.label, separator: separator)
    reader.saturate = saturate
    var rows: [[Double]] = []
    var id: Int? = nil
    var flat: [Double] = []
    func flush() throws {
        guard let id, !rows.isEmpty else { return }
        flat.removeAll(keepingCapacity: true)
        for r in rows { flat += r }
        let bytes = convertFromDouble(flat, to: target)
        try bytes.withUnsafeBytes { try writer.write(id, rows: rows.count, bytes: $0) }
        rows.removeAll(keepingCapacity: true)
    }
    while let r = try reader.next() {
        if id == nil {
            var m = meta
            if let names = reader.columnNames { m["columns"] = names.joined(separator: ",") }
            let rowShape = r.count == 1 ? [] : [r.count]
            id = try writer.add(TensorInfo(name: name, dtype: target, rowShape: rowShape, rows: nil, meta: m))
        }
        if !saturate, let bad = r.first(where: { conversionLoss($0, to: target) != nil }) {
            throw ToolError.data("\(escaped(src.label)):\(reader.line): \(conversionLoss(bad, to: target)!) (use --saturate to store the nearest \(target.name) value)")
        }
        rows.append(r)
        if rows.count * r.count >= 1 << 18 { try flush() }
    }
    guard id != nil else { throw FormatError("no numeric rows") }
    try flush()
}

struct To: Tool {
    static let configuration = CommandConfiguration(
        commandName: "to",  // given, not derived from the type name: that costs start-up time
        abstract: "Convert a tensor stream to npy, npz, safetensors, CSV or TSV.",
        discussion: """
            npy, csv and tsv take one tensor: the only one in the stream, or the one named by --tensor. \
            npz takes every tensor (--compress for numpy.savez_compressed). CSV/TSV stream row by row: \
            a vector gives one value per line, a matrix one row per line, higher ranks are flattened per row. \
            safetensors takes every tensor (so that weights edited in a pipeline go back to Hugging Face \
            tools); metadata 'safetensors.KEY' (what 'tensor from safetensors' keeps of a file's \
            __metadata__) becomes the file's __metadata__ again.

            Examples:
              tensor to npy -o emb.npy < emb.tsr
              emb-sim --corpus c.tsr --top-k 5 < q.tsr | tensor to csv --tensor indices
              tensor to npz --compress -o all.npz < posterior.tsr
              emb-sim --corpus docs.tsr --top-k 5 < q.tsr | tensor to tsv --lines docs.txt
            """)

    @Argument(help: "Output format.")
    var format: ExportFormat

    @Argument(help: ArgumentHelp("Input stream ('-' or nothing: standard input).", valueName: "FILE"))
    var file: String = "-"

    @Option(help: "The tensor to write (npy, csv, tsv).")
    var tensor: String?

    @Flag(help: "Deflate the members of an npz archive.")
    var compress = false

    @Flag(help: "CSV/TSV: start with a line of column names.")
    var header = false

    @Option(help: ArgumentHelp("CSV/TSV: replace each line number of the integer tensor ('indices', 'id' or --tensor) by that line of FILE (0-based).", valueName: "FILE"))
    var lines: String?

    @Option(name: [.short, .long], help: ArgumentHelp("Write to FILE (atomically) instead of standard output.", valueName: "FILE"))
    var output: String?

    func validate() throws {
        if compress && format != .npz { throw ValidationError("--compress applies to npz") }
        if lines != nil && format != .csv && format != .tsv { throw ValidationError("--lines applies to csv and tsv") }
        if tensor != nil && (format == .npz || format == .safetensors) {
            throw ValidationError("--tensor applies to npy, csv and tsv; \(format.rawValue) takes every tensor")
        }
    }

    func run() throws {
        let reader = try openStream(file)
        let out = try OutputFile(path: output, binary: format == .npy || format == .npz || format == .safetensors)
        switch format {
        case .npz, .npy, .safetensors:
            try writeNumpy(reader, sink: out.sink)
        case .csv, .tsv:
            if let lines {
                try writeWithLines(reader, tensor: tensor, linesPath: lines, separator: format == .csv ? "," : "\t", header: header, sink: out.sink)
                break
            }
            try writeDelimited(reader, separator: format == .csv ? "," : "\t", sink: out.sink)
        }
        try out.commit()
    }

    /// npy and npz in flat memory: the rows go to a temporary file as they arrive (a stream
    /// interleaves tensors, and an array needs its row count in its header); then each array
    /// is written whole, header first. Costs the data's size in TMPDIR, not in memory.
    func writeNumpy(_ reader: TensorStreamReader, sink: ByteSink) throws {
        let spool = try Spool()
        var chosen: Int? = nil
        while let event = try reader.next() {
            switch event {
            case .tensor(let i):
                let info = reader.tensors[i]
                if format == .safetensors { continue }
                if format == .npz {
                    if let why = unsafeMemberReason(info.name) {
                        throw ToolError.data("tensor '\(escaped(info.name))' cannot be an npz member: \(why) (rename it with 'tensor rename')")
                    }
                    continue
                }
                if let tensor, info.name != tensor { continue }
                if tensor == nil && i > 0 {
                    throw ToolError.usage("input has several tensors (\(reader.tensors.map { escaped($0.name) }.joined(separator: ", "))): choose one with --tensor")
                }
                chosen = i
            case .data(let i, _, let bytes):
                if format == .npz || format == .safetensors || i == chosen { try spool.append(i, bytes) }
            }
        }
        func header(_ i: Int) throws -> [UInt8] {
            let t = reader.tensors[i]
            return try Npy.header(dtype: t.dtype, shape: t.shape(rows: reader.rowsRead[i]))
        }
        if format == .npy {
            guard let chosen else {
                if let tensor {
                    throw ToolError.data("input has no tensor '\(escaped(tensor))' (it has: \(reader.tensors.map { escaped($0.name) }.joined(separator: ", ")))")
                }
                throw ToolError.data("input holds no tensors")
            }
            try header(chosen).withUnsafeBytes { try sink.write($0) }
            try spool.forEachPiece(chosen) { try sink.write($0) }
            return
        }
        if format == .safetensors {
            let entries = reader.tensors.indices.map { i in
                (name: reader.tensors[i].name, dtype: reader.tensors[i].dtype, shape: reader.tensors[i].shape(rows: reader.rowsRead[i]))
            }
            var fileMeta: [String: String] = [:]
            for (k, v) in reader.tensors.first?.meta ?? [:] where k.hasPrefix("safetensors.") {
                fileMeta[String(k.dropFirst("safetensors.".count))] = v
            }
            let head = try inContext("safetensors") { try Safetensors.header(entries, metadata: fileMeta) }
            try head.withUnsafeBytes { try sink.write($0) }
            for i in reader.tensors.indices { try spool.forEachPiece(i) { try sink.write($0) } }
            return
        }
        var zip = NpzStreamWriter(sink: sink, compress: compress)
        for i in reader.tensors.indices {
            try zip.add(name: reader.tensors[i].name, header: try header(i), spool: spool, index: i)
        }
        try zip.finish()
    }

    func writeDelimited(_ reader: TensorStreamReader, separator: String, sink: ByteSink) throws {
        var chosen: Int? = nil
        var text = ""
        func flushText() throws {
            var t = text
            try t.withUTF8 { try sink.write(UnsafeRawBufferPointer($0)) }
            text.removeAll(keepingCapacity: true)
        }
        while let event = try reader.next() {
            switch event {
            case .tensor(let i):
                let info = reader.tensors[i]
                if let tensor, info.name != tensor { continue }
                if tensor == nil && i > 0 {
                    throw ToolError.usage("input has several tensors (\(reader.tensors.map { escaped($0.name) }.joined(separator: ", "))): choose one with --tensor")
                }
                chosen = i
                if header {
                    let cols = info.meta["columns"]?.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
                        ?? (0..<info.rowElements).map { "c\($0)" }
                    text += cols.map { quoteField($0, separator: separator) }.joined(separator: separator) + "\n"
                }
            case .data(let i, let rows, let bytes):
                guard i == chosen else { continue }
                let info = reader.tensors[i]
                let per = info.rowElements
                for r in 0..<rows {
                    for c in 0..<per {
                        if c > 0 { text += separator }
                        text += formatElement(bytes, at: r * per + c, dtype: info.dtype)
                    }
                    text += "\n"
                    if text.utf8.count > 1 << 16 { try flushText() }
                }
            }
        }
        if chosen == nil {
            if let tensor {
                throw ToolError.data("input has no tensor '\(escaped(tensor))' (it has: \(reader.tensors.map { escaped($0.name) }.joined(separator: ", ")))")
            }
            throw ToolError.data("input holds no tensors")
        }
        try flushText()
    }
}

/// A CSV/TSV field as RFC 4180 writes it: quoted (with quotes doubled) when it holds the
/// separator, a quote, a line break or leading/trailing space, so that no name from the data can
/// add a row or a column.
func quoteField(_ f: String, separator: String) -> String {
    let special = f.contains(separator) || f.contains("\"") || f.contains("\n") || f.contains("\r")
        || f.first == " " || f.last == " "
    return special ? "\"" + f.split(separator: "\"", omittingEmptySubsequences: false).joined(separator: "\"\"") + "\"" : f
}

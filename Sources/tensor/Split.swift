import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif
import TensorStream
import ToolKit

struct Split: Tool {
    static let configuration = CommandConfiguration(
        commandName: "split",  // given, not derived from the type name: that costs start-up time
        abstract: "Shard the rows of a stream into several files, for parallel work.",
        discussion: """
            Every shard gets consecutive rows of every row tensor (with its first row recorded as the \
            metadata 'row_offset'), and a copy of every 0-d tensor. \
            The files are PREFIX000.tsr, PREFIX001.tsr, ...; their names are printed one per line, \
            ready for xargs or GNU parallel. --shards K needs the row count: from the headers, or by \
            reading FILE twice; --rows N streams. \
            Shards of an earlier run under the same prefix (PREFIX followed by digits and .tsr) are \
            not overwritten: the command refuses to run, unless --force, which replaces them and removes \
            those the new run does not make, so that PREFIX*.tsr is always exactly one set. \
            If the names cannot be printed (standard output closed or failing), no shard is left \
            behind and the exit status is 74.

            Examples:
              tensor split --shards 4 --prefix part- corpus.tsr
              tensor split --rows 100000 --prefix chunk- < big.tsr \\
                | parallel 'emb-laplace apply --posterior post.tsr {} -o {.}.out.tsr'
            """)

    @Argument(help: ArgumentHelp("Stream to split ('-' or nothing: standard input).", valueName: "FILE"))
    var file: String = "-"

    @Option(help: "Number of shards (rows divided as evenly as possible).")
    var shards: Int?

    @Option(help: "Rows per shard (the last may have fewer).")
    var rows: Int?

    @Option(help: "Prefix of the shard files (may include a directory).")
    var prefix: String = "shard-"

    @Option(name: .long, parsing: .unconditional, help: ArgumentHelp("zstd compression level, -7 to 19 (default 1). Without it, a record that goes whole to one shard is copied as it came, still compressed.", valueName: "N"))
    var level: Int32?

    @Flag(help: "Replace the shards of an earlier run under the same prefix (and remove the extra ones).")
    var force = false

    func validate() throws {
        guard (shards == nil) != (rows == nil) else { throw ValidationError("give exactly one of --shards and --rows") }
        if let s = shards, s < 1 || s > 100_000 { throw ValidationError("--shards must be 1 to 100000") }
        if let r = rows, r < 1 { throw ValidationError("--rows must be at least 1") }
        if let level, level < -7 || level > 19 { throw ValidationError("--level must be between -7 and 19") }
    }

    /// Existing files PREFIX<digits>.tsr, as paths.
    func existingShards() -> [String] {
        let slash = prefix.lastIndex(of: "/")
        let dir = slash.map { String(prefix[...$0]) } ?? ""
        let stemPrefix = slash.map { String(prefix[prefix.index(after: $0)...]) } ?? prefix
        guard let d = opendir(dir.isEmpty ? "." : dir) else { return [] }
        defer { closedir(d) }
        var found: [String] = []
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard name.hasPrefix(stemPrefix), name.hasSuffix(".tsr") else { continue }
            let middle = name.dropFirst(stemPrefix.count).dropLast(4)
            if !middle.isEmpty && middle.allSatisfy({ $0.isASCII && $0.isNumber }) { found.append(dir + name) }
        }
        return found.sorted()
    }

    func run() throws {
        // Standard output must be open: the shard names go there, and a shard opened on
        // descriptor 1 would receive them.
        guard fcntl(1, F_GETFD) != -1 else {
            throw ToolError.io("standard output is closed: the shard names could not be printed")
        }
        let earlier = existingShards()
        if !earlier.isEmpty && !force {
            throw ToolError(.cannotCreate, "\(escaped(earlier[0])) and \(earlier.count - 1) more shard(s) of an earlier run exist under prefix '\(escaped(prefix))' (remove them, choose another --prefix, or --force to replace the set)")
        }
        var perShard: Int
        if let rows {
            perShard = rows
        } else {
            let total = try countRows()
            perShard = max(1, (total + shards! - 1) / shards!)
        }
        let reader = try openStream(file)
        var writers: [(OutputFile, TensorStreamWriter)] = []
        var scalars: [Tensor] = []
        var infos: [TensorInfo] = []
        func shard(_ k: Int) throws -> TensorStreamWriter {
            while writers.count <= k {
                let name = prefix + String(format3(writers.count)) + ".tsr"
                let f = try OutputFile(path: name, binary: true)
                let w = try TensorStreamWriter(sink: f.sink, options: WriterOptions(level: level ?? WriterOptions.defaultLevel))
                // Each shard's row tensors record where the shard starts in the whole stream.
                for info in infos { try w.add(shardInfo(info, first: writers.count * perShard)) }
                for s in scalars { try s.data.withUnsafeBytes { try w.write(scalarId(w, s.name), rows: 1, bytes: $0) } }
                writers.append((f, w))
            }
            return writers[k].1
        }
        var scalarIndex: [Int: Tensor] = [:]
        while let event = try reader.next() {
            switch event {
            case .tensor(let i):
                var info = reader.tensors[i]
                if !info.isScalar { info.rows = nil }
                infos.append(info)
                for (k, (_, w)) in writers.enumerated() { try w.add(shardInfo(info, first: k * perShard)) }
            case .data(let i, let n, let bytes):
                let info = reader.tensors[i]
                if info.isScalar {
                    let t = Tensor(info: info, data: Array(bytes))
                    scalars.append(t); scalarIndex[i] = t
                    for (_, w) in writers { try w.write(i, rows: 1, bytes: bytes) }
                    continue
                }
                let end = reader.rowsRead[i], start = end - n
                // A record that goes whole to one shard is copied as it came, when it can be.
                if level == nil, n > 0, start / perShard == (end - 1) / perShard {
                    try shard(start / perShard).write(i, rows: n, bytes: bytes, orCopying: reader.lastCompressedData)
                    continue
                }
                var r = start
                while r < end {
                    let k = r / perShard
                    let stop = min(end, (k + 1) * perShard)
                    let rb = info.rowBytes
                    try shard(k).write(i, rows: stop - r, bytes: UnsafeRawBufferPointer(rebasing: bytes[(r - start) * rb ..< (stop - start) * rb]))
                    r = stop
                }
            }
        }
        if writers.isEmpty { _ = try shard(0) }
        if let s = shards { while writers.count < s { _ = try shard(writers.count) } }
        var names: [String] = []
        for (k, (f, w)) in writers.enumerated() {
            try w.finish()
            try f.commit()
            names.append(prefix + format3(k) + ".tsr")
        }
        for old in earlier where !names.contains(old) { unlink(old) }
        do {
            let out = try TextOutput()
            try out.write(names.map { $0 + "\n" }.joined())
            try out.finish()
        } catch {
            // Shards nobody can name are lost work: remove them, and say so.
            for n in names { unlink(n) }
            throw error
        }
    }

    func shardInfo(_ info: TensorInfo, first: Int) -> TensorInfo {
        var i = info
        if !i.isScalar { i.meta["row_offset"] = String(first) }
        return i
    }

    /// Scalars are declared in order; their id in a shard is their index among all tensors.
    func scalarId(_ w: TensorStreamWriter, _ name: String) -> Int {
        w.declared.firstIndex { $0.name == name }!
    }

    func countRows() throws -> Int {
        guard file != "-" else {
            throw ToolError.usage("--shards needs to know the row count: name a FILE (read twice) or use --rows")
        }
        let reader = try openStream(file)
        while try reader.next() != nil {}
        return reader.tensors.indices.filter { !reader.tensors[$0].isScalar }.map { reader.rowsRead[$0] }.max() ?? 0
    }
}

func format3(_ k: Int) -> String {
    let s = String(k)
    return s.count >= 3 ? s : String(repeating: "0", count: 3 - s.count) + s
}

import ArgumentParser
import TensorStream
import ToolKit

struct Take: Tool {
    static let configuration = CommandConfiguration(
        commandName: "take",  // given, not derived from the type name: that costs start-up time
        abstract: "The rows at given indices, in their order (repeats allowed), of every row tensor.",
        discussion: """
            The indices are the integer vector of --indices FILE (its only tensor, or the one named by \
            --index-name). Negative indices count from the end. 0-d tensors pass through. The input is \
            held in memory (rows may be taken in any order); use 'tensor where' to filter a stream.

            Examples:
              tensor take --indices pairs.tsr --index-name i < docs.tsr > left.tsr
              emb-sim --corpus c.tsr --top-k 1 < q.tsr | tensor select indices > best.tsr
            """)

    @Option(help: ArgumentHelp("Stream holding the row indices.", valueName: "FILE"))
    var indices: String

    @Option(name: .customLong("index-name"), help: "Name of the index tensor in --indices (default: its only tensor).")
    var indexName: String?

    @Argument(help: ArgumentHelp("Stream to take rows from ('-' or nothing: standard input).", valueName: "FILE"))
    var file: String = "-"

    @OptionGroup var output: OutputOptions

    func run() throws {
        let idxStream = try openStream(indices).readAll()
        let idx: Tensor
        if let indexName {
            guard let t = idxStream.first(where: { $0.name == indexName }) else {
                throw ToolError.data("\(indices) has no tensor '\(escaped(indexName))' (it has: \(idxStream.map { escaped($0.name) }.joined(separator: ", ")))")
            }
            idx = t
        } else {
            guard idxStream.count == 1 else {
                throw ToolError.usage("\(indices) has \(idxStream.count) tensors (\(idxStream.map { escaped($0.name) }.joined(separator: ", "))): name one with --index-name")
            }
            idx = idxStream[0]
        }
        guard idx.shape.count == 1 || (idx.shape.count == 2 && idx.shape[1] == 1) else {
            throw ToolError.data("index tensor '\(escaped(idx.name))' must be a vector, not \(idx.shape)")
        }
        let wanted = try idx.int64s()
        let all = try openStream(file).readAll()
        let out = try output.open(compressors: ThreadBudget.compressors)
        for t in all {
            if t.info.isScalar { try out.writer.write(t); continue }
            var info = t.info
            info.rows = wanted.count
            let rb = t.info.rowBytes
            var data: [UInt8] = []
            data.reserveCapacity(wanted.count * rb)
            for w in wanted {
                let r = w < 0 ? t.rows + Int(w) : Int(w)
                guard r >= 0 && r < t.rows else {
                    throw ToolError.data("index \(w) is out of range for '\(escaped(t.name))' (\(t.rows) rows)")
                }
                data.append(contentsOf: t.data[r * rb ..< (r + 1) * rb])
            }
            try out.writer.write(Tensor(info: info, data: data))
        }
        try out.finish()
    }
}

struct Where: Tool {
    static let configuration = CommandConfiguration(
        commandName: "where",  // given, not derived from the type name: that costs start-up time
        abstract: "Keep the rows where an integer tensor has a given value (a streaming filter).",
        discussion: """
            The condition NAME=VALUE (or NAME!=VALUE) tests the integer vector NAME row by row; every \
            tensor with the same number of rows keeps the rows that pass, in order; 0-d tensors pass \
            through. Streams in bounded memory when the tensors' chunks are interleaved (as 'tensor \
            paste' writes them).

            Examples:
              tensor from npz bbc.npz | tensor where split=0 > train.tsr
              tensor where 'split!=2' --drop-condition < all.tsr > train-and-val.tsr
            """)

    @Argument(help: ArgumentHelp("The condition.", valueName: "NAME=VALUE"))
    var condition: String

    @Argument(help: ArgumentHelp("Stream to filter ('-' or nothing: standard input).", valueName: "FILE"))
    var file: String = "-"

    @Flag(name: .customLong("drop-condition"), help: "Leave the condition tensor out of the output.")
    var dropCondition = false

    @OptionGroup var output: OutputOptions

    func parsed() throws -> (name: String, value: Int64, equal: Bool) {
        let negate = condition.contains("!=")
        var parts = condition.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        if negate, parts.count == 2, parts[0].hasSuffix("!") { parts[0].removeLast() }
        guard parts.count == 2, !parts[0].isEmpty, let v = Int64(parts[1]) else {
            throw ValidationError("the condition is NAME=VALUE or NAME!=VALUE with an integer VALUE, got '\(escaped(condition))'")
        }
        return (parts[0], v, !negate)
    }

    func validate() throws { _ = try parsed() }

    func run() throws {
        let (name, value, equal) = try parsed()
        let reader = try openStream(file)
        let out = try output.open(compressors: ThreadBudget.compressors)
        var keep: [Bool] = []           // the condition, row by row, as far as it has arrived
        var condIndex: Int? = nil
        var ids: [Int?] = []            // reader index -> writer id (nil: dropped)
        var pending: [Int: [UInt8]] = [:]  // buffered rows of tensors ahead of the condition
        var emitted: [Int: Int] = [:]      // rows of each tensor already examined
        var buffered = 0

        func flush(_ i: Int) throws {
            guard let id = ids[i], var bytes = pending[i], !bytes.isEmpty else { return }
            let info = reader.tensors[i]
            let rb = info.rowBytes
            let start = emitted[i, default: 0]
            let available = rb == 0 ? 0 : bytes.count / rb
            let n = min(available, keep.count - start)
            guard n > 0 else { return }
            var kept: [UInt8] = []
            var rows = 0
            for r in 0..<n where keep[start + r] {
                kept.append(contentsOf: bytes[r * rb ..< (r + 1) * rb])
                rows += 1
            }
            if rows > 0 { try kept.withUnsafeBytes { try out.writer.write(id, rows: rows, bytes: $0) } }
            bytes.removeFirst(n * rb)
            buffered -= n * rb
            pending[i] = bytes
            emitted[i] = start + n
        }

        while let event = try reader.next() {
            switch event {
            case .tensor(let i):
                var info = reader.tensors[i]
                if info.name == name {
                    guard info.dtype.isInteger || info.dtype == .bool, info.rowShape.isEmpty, !info.isScalar else {
                        throw ToolError.data("condition tensor '\(escaped(name))' must be an integer vector, not \(info.signature)")
                    }
                    condIndex = i
                }
                if info.name == name && dropCondition { ids.append(nil); continue }
                if !info.isScalar { info.rows = nil }
                ids.append(try out.writer.add(info))
            case .data(let i, let rows, let bytes):
                let info = reader.tensors[i]
                if info.isScalar {
                    if let id = ids[i] { try out.writer.write(id, rows: rows, bytes: bytes) }
                    continue
                }
                if i == condIndex {
                    let values = try convertToInt64(bytes, from: info.dtype, name: name)
                    keep += values.map { ($0 == value) == equal }
                    if ids[i] != nil {
                        pending[i, default: []].append(contentsOf: bytes)
                        buffered += bytes.count
                    }
                    for j in pending.keys.sorted() { try flush(j) }
                } else if ids[i] != nil {
                    pending[i, default: []].append(contentsOf: bytes)
                    buffered += bytes.count
                    try flush(i)
                    if buffered > 1 << 30 {
                        throw ToolError.data("more than 1 GiB of rows arrived before the condition '\(escaped(name))': put it first or interleave it ('tensor paste')")
                    }
                }
            }
        }
        guard let c = condIndex else {
            throw ToolError.data("input has no tensor '\(escaped(name))' (it has: \(reader.tensors.map { escaped($0.name) }.joined(separator: ", ")))")
        }
        for (i, t) in reader.tensors.enumerated() where !t.isScalar && ids[i] != nil {
            guard reader.rowsRead[i] == reader.rowsRead[c] else {
                throw ToolError.data("tensor '\(escaped(t.name))' has \(reader.rowsRead[i]) rows but the condition '\(escaped(name))' has \(reader.rowsRead[c])")
            }
        }
        try out.finish()
    }
}

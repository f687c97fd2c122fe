extension TensorStreamReader {
    /// Reads the rest of the stream into memory, every tensor whole, in order of appearance.
    /// Memory grows with the bytes that actually arrive, never with what headers declare.
    public func readAll() throws -> [Tensor] {
        var data: [[UInt8]] = []
        while let event = try next() {
            switch event {
            case .tensor:
                data.append([])
            case .data(let i, _, let bytes):
                data[i].append(contentsOf: bytes)
            }
        }
        return tensors.indices.map { i in
            var info = tensors[i]
            info.rows = info.isScalar ? 1 : rowsRead[i]
            return Tensor(info: info, data: data[i])
        }
    }

    /// Reads the whole stream and returns the tensors with the given names (in that order),
    /// with an error that lists what the stream holds when one is missing.
    public func readTensors(_ names: [String]) throws -> [Tensor] {
        let all = try readAll()
        return try names.map { name in
            guard let t = all.first(where: { $0.name == name }) else {
                throw StreamError.usage(missingMessage(name, have: all.map(\.name)))
            }
            return t
        }
    }
}

func missingMessage(_ name: String, have: [String], label: String = "input") -> String {
    let list = have.isEmpty ? "no tensors" : have.joined(separator: ", ")
    return "\(label) has no tensor '\(name)' (it has: \(list))"
}

/// Reads several row-aligned tensors of one stream (`mean` and `var`, say) in blocks of
/// rows, holding only what a block needs. Tensors not asked for are skipped.
///
/// Writers interleave the chunks of row-aligned tensors; a stream that holds all of one
/// tensor before the next is still read, buffering up to `maxBufferedBytes`.
public final class RowBlockReader {
    public let reader: TensorStreamReader
    public let names: [String]
    public let blockRows: Int
    public let maxBufferedBytes: Int
    private var buffers: [[UInt8]]
    private var bufferedRows: [Int]
    private var consumed: [Int]
    private var indices: [Int?]
    private var ended = false
    /// Rows handed out so far.
    public private(set) var rowsDone = 0

    public init(_ reader: TensorStreamReader, names: [String], blockRows: Int,
                maxBufferedBytes: Int = 1 << 30) {
        precondition(blockRows > 0)
        self.reader = reader
        self.names = names
        self.blockRows = blockRows
        self.maxBufferedBytes = maxBufferedBytes
        buffers = Array(repeating: [], count: names.count)
        bufferedRows = Array(repeating: 0, count: names.count)
        consumed = Array(repeating: 0, count: names.count)
        indices = Array(repeating: nil, count: names.count)
    }

    /// Descriptions of the tensors, once their headers have been read (after the first block).
    public func info(_ k: Int) -> TensorInfo? { indices[k].map { reader.tensors[$0] } }

    /// Reads until every requested tensor's header has arrived; returns their descriptions.
    public func headers() throws -> [TensorInfo] {
        while indices.contains(where: { $0 == nil }) && !ended { try pump() }
        return try names.indices.map { k in
            guard let i = indices[k] else {
                throw StreamError.usage(missingMessage(names[k], have: reader.tensors.map(\.name), label: reader.label))
            }
            return reader.tensors[i]
        }
    }

    /// The next block (one tensor per name, the same rows each), or nil at the end.
    public func next() throws -> [Tensor]? {
        let infos = try headers()
        while !ended && bufferedRows.contains(where: { $0 < blockRows }) {
            try pump()
        }
        let n = min(blockRows, bufferedRows.min() ?? 0)
        if n == 0 {
            if ended, let (k, r) = bufferedRows.enumerated().first(where: { $0.element > 0 }) {
                let other = bufferedRows.firstIndex(of: 0)!
                throw StreamError.invalid("\(reader.label): tensors '\(names[k])' and '\(names[other])' have different row counts (\(rowsDone + r) and \(rowsDone))")
            }
            return nil
        }
        var block: [Tensor] = []
        for k in names.indices {
            var info = infos[k]
            info.rows = n
            let rb = info.rowBytes
            let start = consumed[k]
            block.append(Tensor(info: info, data: Array(buffers[k][start ..< start + n * rb])))
            consumed[k] += n * rb
            bufferedRows[k] -= n
            if consumed[k] > (1 << 22) && consumed[k] * 2 > buffers[k].count {
                buffers[k].removeFirst(consumed[k])
                consumed[k] = 0
            }
        }
        rowsDone += n
        return block
    }

    private func pump() throws {
        guard let event = try reader.next() else { ended = true; return }
        switch event {
        case .tensor(let i):
            if let k = names.firstIndex(of: reader.tensors[i].name) { indices[k] = i }
        case .data(let i, let rows, let bytes):
            guard let k = indices.firstIndex(where: { $0 == i }) else { return }
            buffers[k].append(contentsOf: bytes)
            bufferedRows[k] += rows
            let total = buffers.reduce(0) { $0 + $1.count }
            if total > maxBufferedBytes {
                throw StreamError.invalid("\(reader.label): tensors \(names.joined(separator: ", ")) are not interleaved: more than \(maxBufferedBytes >> 20) MiB of one arrived before the others (write them with 'tensor paste', which interleaves)")
            }
        }
    }
}

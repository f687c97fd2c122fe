import TensorStream
import ToolKit

/// Reads row-aligned tensors of one stream in blocks, like RowBlockReader, but each slot takes
/// the first tensor whose name is among its alternatives (`probs` or `member_probs`, say), so
/// the kind of input is known without reading the stream twice. Memory: one block per slot,
/// plus whatever arrives out of step (bounded, with a clear error beyond 1 GiB).
final class BlockSource {
    let reader: TensorStreamReader
    let slots: [[String]]
    /// Slots that may be absent: used when their header comes before the first rows of data
    /// (writers declare every tensor first), ignored otherwise.
    let optional: Set<Int>
    private(set) var infos: [TensorInfo?]
    private var sawData = false
    private var index: [Int?]
    private var buffers: [[UInt8]]
    private var consumed: [Int]
    private var rowsBuffered: [Int]
    private var ended = false
    private(set) var rowsDone = 0
    let maxBuffered = 1 << 30

    init(_ reader: TensorStreamReader, slots: [[String]], optional: Set<Int> = []) {
        self.reader = reader
        self.slots = slots
        self.optional = optional
        infos = Array(repeating: nil, count: slots.count)
        index = Array(repeating: nil, count: slots.count)
        buffers = Array(repeating: [], count: slots.count)
        consumed = Array(repeating: 0, count: slots.count)
        rowsBuffered = Array(repeating: 0, count: slots.count)
    }

    /// The description of every slot's tensor (nil for an absent optional one), reading until
    /// each required one has appeared and the data has begun.
    func headers() throws -> [TensorInfo?] {
        while !ended && (!sawData || slots.indices.contains(where: { index[$0] == nil && !optional.contains($0) })) {
            try pump()
        }
        return try slots.indices.map { k in
            guard let i = infos[k] else {
                if optional.contains(k) { return nil }
                let have = reader.tensors.map(\.name)
                let want = slots[k].map { "'\($0)'" }.joined(separator: " or ")
                let hint = slots[k] == ["labels"] ? "; or give --labels FILE" : ""
                throw ToolError.data("\(reader.label) has no tensor \(want) (it has: \(have.isEmpty ? "no tensors" : have.joined(separator: ", "))\(hint))")
            }
            return i
        }
    }

    /// The next `rows` rows (fewer only at the end of the stream), or nil at the end; nil
    /// entries for absent optional slots.
    func next(rows want: Int) throws -> [Tensor?]? {
        let infos = try headers()
        let active = slots.indices.filter { infos[$0] != nil }
        while !ended && active.contains(where: { rowsBuffered[$0] < want }) { try pump() }
        let n = min(want, active.map { rowsBuffered[$0] }.min() ?? 0)
        if n == 0 {
            if ended, let k = active.first(where: { rowsBuffered[$0] > 0 }), let z = active.first(where: { rowsBuffered[$0] == 0 }) {
                throw ToolError.data("\(reader.label): '\(infos[k]!.name)' has \(rowsDone + rowsBuffered[k]) rows but '\(infos[z]!.name)' has \(rowsDone)")
            }
            return nil
        }
        var block: [Tensor?] = []
        for k in slots.indices {
            guard var info = infos[k] else { block.append(nil); continue }
            info.rows = n
            let rb = info.rowBytes
            block.append(Tensor(info: info, data: Array(buffers[k][consumed[k] ..< consumed[k] + n * rb])))
            consumed[k] += n * rb
            rowsBuffered[k] -= n
            if consumed[k] > (1 << 22) && consumed[k] * 2 > buffers[k].count {
                buffers[k].removeFirst(consumed[k]); consumed[k] = 0
            }
        }
        rowsDone += n
        return block
    }

    private func pump() throws {
        guard let event = try reader.next() else { ended = true; return }
        switch event {
        case .tensor(let i):
            let t = reader.tensors[i]
            for k in slots.indices where index[k] == nil && slots[k].contains(t.name) && !(sawData && optional.contains(k)) {
                index[k] = i; infos[k] = t
                break
            }
        case .data(let i, let rows, let bytes):
            sawData = true
            guard let k = index.firstIndex(where: { $0 == i }) else { return }
            buffers[k].append(contentsOf: bytes)
            rowsBuffered[k] += rows
            if buffers.reduce(0, { $0 + $1.count }) > maxBuffered {
                throw ToolError.data("\(reader.label): tensors \(infos.compactMap { $0?.name }.joined(separator: ", ")) are not interleaved: more than 1 GiB of one arrived before the others (write them with 'tensor paste', which interleaves)")
            }
        }
    }
}

/// Reads one named tensor (or, failing that, the only tensor) of a side file whole.
func readSideTensor(_ path: String, preferred names: [String], option: String) throws -> Tensor {
    let reader = try openStream(path)
    let all = try reader.readAll()
    if let t = all.first(where: { names.contains($0.name) }) { return t }
    if all.count == 1 { return all[0] }
    let have = all.map(\.name).joined(separator: ", ")
    throw ToolError.data("\(option) \(path): no tensor \(names.map { "'\($0)'" }.joined(separator: " or ")) and more than one tensor to choose from (it has: \(have.isEmpty ? "no tensors" : have))")
}

/// Labels or OOD flags as one integer per row from an N or N×1 tensor.
func vectorOfInts(_ t: Tensor, what: String) throws -> [Int64] {
    guard t.shape.count == 1 || (t.shape.count == 2 && t.shape[1] == 1) else {
        throw ToolError.data("\(what) '\(t.name)' has shape [\(t.shape.map(String.init).joined(separator: ", "))], expected [N] (one value per row)")
    }
    do { return try t.int64s() } catch let e as StreamError { throw ToolError.data("\(e)") }
}

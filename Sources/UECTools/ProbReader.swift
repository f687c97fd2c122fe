import LinearAlgebra
import TensorStream
import ToolKit
import UEC

/// Reads the probabilistic embeddings of one stream in row blocks: `mean` with its `var`, or
/// `mean` alone, or `embedding` (no variance). Which tensors are there is decided from the
/// headers that arrive before a block's worth of rows; row-aligned tensors must be
/// interleaved (as every toolbox tool and `tensor paste` write them). Memory: one block, plus
/// what an uninterleaved writer forces to be buffered (bounded by `maxBufferedBytes`).
public final class ProbReader {
    public let reader: TensorStreamReader
    public let blockRows: Int
    public var label: String { reader.label }
    public private(set) var meanName: String = ""
    public private(set) var hasVariance = false
    public private(set) var dimension = 0
    /// Metadata of the mean tensor (model name and so on).
    public private(set) var meanMeta: [String: String] = [:]
    public private(set) var rowsDone = 0

    private let candidates = ["mean", "var", "embedding"]
    private var index: [String: Int] = [:]      // name → tensor index in the stream
    private var buffers: [String: [UInt8]] = [:]
    private var consumed: [String: Int] = [:]
    private var rows: [String: Int] = [:]
    private var ended = false
    private var resolved = false
    private let maxBufferedBytes: Int
    private let wantVariance: Bool

    /// `wantVariance: false` ignores a `var` tensor (plain means).
    public init(_ reader: TensorStreamReader, blockRows: Int, wantVariance: Bool = true,
                maxBufferedBytes: Int = 1 << 30) {
        self.reader = reader; self.blockRows = blockRows; self.wantVariance = wantVariance
        self.maxBufferedBytes = maxBufferedBytes
    }

    private var selected: [String] { hasVariance ? [meanName, "var"] : [meanName] }

    private func pump() throws {
        guard let event = try reader.next() else { ended = true; return }
        switch event {
        case .tensor(let i):
            let name = reader.tensors[i].name
            if candidates.contains(name) && (!resolved || selected.contains(name)) { index[name] = i }
        case .data(let i, let n, let bytes):
            guard let name = index.first(where: { $0.value == i })?.key else { return }
            buffers[name, default: []].append(contentsOf: bytes)
            rows[name, default: 0] += n
            if buffers.values.reduce(0, { $0 + $1.count }) > maxBufferedBytes {
                throw ToolError.data("\(label): tensors \(selected.joined(separator: " and ")) are not interleaved (write them with 'tensor paste')")
            }
        }
    }

    /// Reads until it knows which tensors hold the means and variances; returns D.
    @discardableResult
    public func resolve() throws -> Int {
        if resolved { return dimension }
        while !ended {
            let m = index["mean"] != nil ? "mean" : (index["embedding"] != nil ? "embedding" : nil)
            if index["mean"] != nil && (index["var"] != nil || !wantVariance) { break }
            if let m, rows[m, default: 0] >= blockRows { break }
            try pump()
        }
        if index["mean"] != nil { meanName = "mean" } else if index["embedding"] != nil { meanName = "embedding" } else {
            let have = reader.tensors.map(\.name)
            throw ToolError.data("\(label) has neither 'mean' nor 'embedding' (it has: \(have.isEmpty ? "no tensors" : have.joined(separator: ", ")))")
        }
        hasVariance = wantVariance && meanName == "mean" && index["var"] != nil
        for name in Array(index.keys) where !selected.contains(name) {
            index[name] = nil; buffers[name] = nil; rows[name] = nil
        }
        let info = reader.tensors[index[meanName]!]
        guard info.rowShape.count == 1, !info.isScalar, info.rowShape[0] > 0 else {
            throw ToolError.data("\(label): '\(meanName)' must be a matrix N×D, it is \(info.signature)")
        }
        dimension = info.rowShape[0]
        meanMeta = info.meta
        if hasVariance {
            let v = reader.tensors[index["var"]!]
            guard v.rowShape == info.rowShape, !v.isScalar else {
                throw ToolError.data("\(label): 'var' is \(v.signature) but '\(meanName)' is \(info.signature)")
            }
        }
        resolved = true
        return dimension
    }

    /// The next block of rows, or nil at the end. Non-finite values are refused; a negative
    /// variance too.
    public func next() throws -> ProbBlock? {
        try resolve()
        let names = selected
        while !ended && names.contains(where: { rows[$0, default: 0] < blockRows }) { try pump() }
        let n = min(blockRows, names.map { rows[$0, default: 0] }.min() ?? 0)
        if n == 0 {
            if hasVariance, rows[meanName, default: 0] != rows["var", default: 0] {
                throw ToolError.data("\(label): '\(meanName)' and 'var' have different row counts (\(rowsDone + rows[meanName, default: 0]) and \(rowsDone + rows["var", default: 0]))")
            }
            return nil
        }
        var mats: [Matrix<Float>] = []
        for name in names {
            var info = reader.tensors[index[name]!]
            info.rows = n
            let rb = info.rowBytes, start = consumed[name, default: 0]
            let t = Tensor(info: info, data: Array(buffers[name]![start ..< start + n * rb]))
            consumed[name] = start + n * rb
            rows[name]! -= n
            if consumed[name]! > (1 << 22) && consumed[name]! * 2 > buffers[name]!.count {
                buffers[name]!.removeFirst(consumed[name]!)
                consumed[name] = 0
            }
            let f = t.floats()
            if let bad = f.firstIndex(where: { !$0.isFinite }) {
                throw ToolError.data("\(label): '\(name)' row \(rowsDone + bad / dimension) holds \(f[bad]) (expected finite numbers)")
            }
            if name == "var", let bad = f.firstIndex(where: { $0 < 0 }) {
                throw ToolError.data("\(label): 'var' row \(rowsDone + bad / dimension) holds a negative variance \(f[bad])")
            }
            mats.append(Matrix(rows: n, cols: dimension, data: f))
        }
        rowsDone += n
        return ProbBlock(mean: mats[0], variance: hasVariance ? mats[1] : nil)
    }
}

/// A tensor as a float matrix N×cols, checking its shape.
public func floatMatrix(_ t: Tensor, label: String) throws -> Matrix<Float> {
    guard !t.info.isScalar, t.info.rowShape.count == 1 else {
        throw ToolError.data("\(label): '\(t.name)' must be a matrix N×D, it is \(t.info.signature)")
    }
    let f = t.floats()
    if let bad = f.firstIndex(where: { !$0.isFinite }) {
        throw ToolError.data("\(label): '\(t.name)' holds \(f[bad]) at row \(bad / max(1, t.info.rowShape[0])) (expected finite numbers)")
    }
    return Matrix(rows: t.rows, cols: t.info.rowShape[0], data: f)
}

/// Writes a block of rows of float tensors, interleaved (one block of each in turn).
public func writeRows(_ writer: TensorStreamWriter, _ items: [(id: Int, matrix: Matrix<Float>)]) throws {
    for item in items { try writer.write(item.id, rows: item.matrix.rows, values: item.matrix.data) }
}

import LinearAlgebra
import TensorStream
import ToolKit
import UEC

/// Reads the probabilistic embeddings of one stream in row blocks: `mean` with its `var`, or
/// `mean` alone, or `embedding` (no variance). A thin adapter over TensorStream's
/// `RowBlockReader` (slots `mean` | `embedding` and an optional `var`) that checks shapes and
/// values and builds ProbBlocks. Memory: one block, plus what an uninterleaved writer forces to
/// be buffered (bounded by `maxBufferedBytes`).
public final class ProbReader {
    public let rows: RowBlockReader
    public var label: String { rows.label }
    public var rowsDone: Int { rows.rowsDone }
    public private(set) var meanName: String = ""
    public private(set) var hasVariance = false
    public private(set) var dimension = 0
    /// Metadata of the mean tensor (model name and so on).
    public private(set) var meanMeta: [String: String] = [:]
    private var resolved = false

    /// `wantVariance: false` ignores a `var` tensor (plain means).
    public init(_ reader: TensorStreamReader, blockRows: Int, wantVariance: Bool = true,
                maxBufferedBytes: Int = 1 << 30) {
        var slots = [RowSlot("mean", "embedding")]
        if wantVariance { slots.append(RowSlot("var", optional: true)) }
        rows = RowBlockReader(reader, slots: slots, blockRows: blockRows, maxBufferedBytes: maxBufferedBytes)
    }

    /// Reads until it knows which tensors hold the means and variances; returns D.
    @discardableResult
    public func resolve() throws -> Int {
        if resolved { return dimension }
        let infos = try rows.slotHeaders()
        let info = infos[0]!
        try requireFloat(info, in: label)
        if let v = infos.count > 1 ? infos[1] : nil { try requireFloat(v, in: label) }
        meanName = info.name
        // A variance belongs to a 'mean'; next to a plain 'embedding' it is ignored.
        if infos.count > 1, infos[1] != nil, meanName != "mean" { rows.drop(slot: 1) }
        hasVariance = infos.count > 1 && infos[1] != nil && meanName == "mean"
        guard info.rowShape.count == 1, !info.isScalar, info.rowShape[0] > 0 else {
            throw ToolError.data("\(label): '\(meanName)' must be a matrix N×D, it is \(info.signature)")
        }
        dimension = info.rowShape[0]
        meanMeta = info.meta
        if hasVariance, let v = infos[1] {
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
        guard var block = try rows.nextSlots() else { return nil }
        let n = block[0]!.rows, first = rowsDone - n
        var mats: [Matrix<Float>] = []
        for k in block.indices {
            guard var t = block[k] else { continue }
            var f = spares.popLast() ?? []
            t.floats(into: &f)
            // The floats are a copy: the bytes go back to the reader for the next block.
            block[k] = nil
            rows.recycle(&t.data)
            if let bad = firstNonFinite(f) {
                throw ToolError.data("\(label): '\(t.name)' row \(first + bad / dimension) holds \(f[bad]) (expected finite numbers)")
            }
            if t.name == "var", let bad = firstNegative(f) {
                throw ToolError.data("\(label): 'var' row \(first + bad / dimension) holds a negative variance \(f[bad])")
            }
            mats.append(Matrix(rows: n, cols: dimension, data: f))
        }
        return ProbBlock(mean: mats[0], variance: hasVariance ? mats[1] : nil)
    }

    /// Gives a block's arrays back: the next blocks are filled into them (the same pages for
    /// every block, instead of pages touched anew) once the caller holds no other copy of them.
    /// From the thread that calls `next()`.
    public func recycle(_ block: consuming ProbBlock) {
        spares.append(block.mean.data)
        if let v = block.variance { spares.append(v.data) }
    }

    /// Arrays of blocks given back by `recycle`.
    private var spares: [[Float]] = []
}

/// A tensor as a float matrix N×cols, checking its shape and that its values are finite
/// (`firstRow`: the number of its first row in the stream, for messages), in the storage of
/// `storage` (taken, leaving it empty): a loop over blocks that gives each matrix's `data` back
/// to `storage` when done with it fills the same pages for every block (a page touched for the
/// first time costs ~1.6 µs on a VM: 6,000 of them for a block of 4096 rows of 1536 floats).
public func floatMatrix(_ t: Tensor, label: String, firstRow: Int, reusing storage: inout [Float]) throws -> Matrix<Float> {
    guard !t.info.isScalar, t.info.rowShape.count == 1 else {
        throw ToolError.data("\(label): '\(t.name)' must be a matrix N×D, it is \(t.info.signature)")
    }
    var f: [Float] = []
    swap(&f, &storage)
    t.floats(into: &f)
    if let bad = firstNonFinite(f) {
        throw ToolError.data("\(label): '\(t.name)' holds \(f[bad]) at row \(firstRow + bad / max(1, t.info.rowShape[0])) (expected finite numbers)")
    }
    return Matrix(rows: t.rows, cols: t.info.rowShape[0], data: f)
}

/// Writes a block of rows of float tensors, interleaved (one block of each in turn).
public func writeRows(_ writer: TensorStreamWriter, _ items: [(id: Int, matrix: Matrix<Float>)]) throws {
    for item in items { try writer.write(item.id, rows: item.matrix.rows, values: item.matrix.data) }
}

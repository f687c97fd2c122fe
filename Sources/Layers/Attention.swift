import LinearAlgebra
import Probability

/// Multi-head self-attention (BERT's): Q, K, V projections, softmax(Q Kᵀ / √d_head) V per head,
/// then the output projection. The residual and LayerNorm that follow belong to TransformerLayer.
///
/// The padding mask is the list of sequences: rows `sequences[i]` of the input are the real tokens
/// of sequence i, and attention runs only among them. A packed batch (sequences back to back, no
/// padding at all) and a padded batch (sequence i at rows i·S ..< i·S + L_i; the padding rows are
/// never read and come out unspecified) are both such lists.
public struct SelfAttention<T: BLASScalar>: Sendable {
    public var query: Linear<T>
    public var key: Linear<T>
    public var value: Linear<T>
    public var output: Linear<T>
    public let heads: Int

    public init(query: Linear<T>, key: Linear<T>, value: Linear<T>, output: Linear<T>, heads: Int) {
        let h = query.outFeatures
        precondition(heads >= 1 && h % heads == 0, "SelfAttention: \(h) features do not split into \(heads) heads")
        precondition(key.outFeatures == h && value.outFeatures == h && output.inFeatures == h,
                     "SelfAttention: projections disagree in width")
        self.query = query; self.key = key; self.value = value; self.output = output; self.heads = heads
    }

    public var hidden: Int { query.outFeatures }
    public var headDim: Int { hidden / heads }

    /// x (rows × hidden) → rows × hidden (after the output projection).
    @inlinable
    public func forward(_ x: Matrix<T>, sequences: [Range<Int>]) -> Matrix<T> {
        let ctx = context(x, sequences: sequences)
        return output.forward(ctx)
    }

    /// The heads' concatenated attention outputs, before the output projection.
    @inlinable
    public func context(_ x: Matrix<T>, sequences: [Range<Int>]) -> Matrix<T> {
        let h = hidden, dh = headDim, n = x.rows
        let q = query.forward(x), k = key.forward(x), v = value.forward(x)
        var ctx = Matrix<T>(rows: n, cols: h)
        let longest = sequences.map(\.count).max() ?? 0
        var scores = [T](repeating: 0, count: longest * longest)
        let scale = T(1) / T(dh).squareRoot()
        q.data.withUnsafeBufferPointer { pq in
            k.data.withUnsafeBufferPointer { pk in
                v.data.withUnsafeBufferPointer { pv in
                    ctx.data.withUnsafeMutableBufferPointer { pc in
                        scores.withUnsafeMutableBufferPointer { ps in
                            for seq in sequences where !seq.isEmpty {
                                precondition(seq.lowerBound >= 0 && seq.upperBound <= n, "SelfAttention: sequence \(seq) outside \(n) rows")
                                let L = seq.count, o = seq.lowerBound * h
                                for head in 0..<heads {
                                    let off = o + head * dh
                                    // S = scale · Q_h K_hᵀ (L × L)
                                    T.gemm(false, true, L, L, dh, scale, pq.baseAddress! + off, h,
                                           pk.baseAddress! + off, h, 0, ps.baseAddress!, L)
                                    for r in 0..<L {
                                        SelfAttention.softmax(UnsafeMutableBufferPointer(rebasing: ps[r * L ..< (r + 1) * L]))
                                    }
                                    // C_h = P V_h (L × dh), written into the head's columns.
                                    T.gemm(false, false, L, dh, L, 1, ps.baseAddress!, L,
                                           pv.baseAddress! + off, h, 0, pc.baseAddress! + off, h)
                                }
                            }
                        }
                    }
                }
            }
        }
        return ctx
    }

    @inlinable
    @usableFromInline
    static func softmax(_ row: UnsafeMutableBufferPointer<T>) {
        if T.self == Float.self {
            row.withMemoryRebound(to: Float.self) { softmaxInPlace($0) }
        } else {
            row.withMemoryRebound(to: Double.self) { softmaxInPlace($0) }
        }
    }
}

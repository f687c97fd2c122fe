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

    /// Q, K and V as one linear layer of 3·hidden outputs ([Q K V] side by side in each output row),
    /// so that one GEMM makes all three; `attend(rows:…ld:)` reads the heads from its views.
    public func stackedProjections() -> Linear<T> {
        let h = hidden, d = query.inFeatures
        var w = Matrix<T>(rows: 3 * h, cols: d)
        w.data = query.weight.data + key.weight.data + value.weight.data
        let zeros = [T](repeating: 0, count: h)
        let bias = query.bias.isEmpty && key.bias.isEmpty && value.bias.isEmpty ? []
            : (query.bias.isEmpty ? zeros : query.bias) + (key.bias.isEmpty ? zeros : key.bias) + (value.bias.isEmpty ? zeros : value.bias)
        return Linear(weight: w, bias: bias)
    }

    /// x (rows × hidden) → rows × hidden (after the output projection).
    @inlinable
    public func forward(_ x: Matrix<T>, sequences: [Range<Int>]) -> Matrix<T> {
        let ctx = context(x, sequences: sequences)
        return output.forward(ctx)
    }

    /// The heads' concatenated attention outputs, before the output projection.
    @inlinable
    public func context(_ x: Matrix<T>, sequences: [Range<Int>]) -> Matrix<T> {
        let q = query.forward(x), k = key.forward(x), v = value.forward(x)
        return SelfAttention.attend(q: q, k: k, v: v, heads: heads, sequences: sequences, probabilities: nil)
    }

    /// What backward needs: the layer's input, the projections and the attention probabilities.
    public struct Cache: Sendable {
        public var input = Matrix<T>(rows: 0, cols: 0)
        public var q = Matrix<T>(rows: 0, cols: 0), k = Matrix<T>(rows: 0, cols: 0), v = Matrix<T>(rows: 0, cols: 0)
        public var context = Matrix<T>(rows: 0, cols: 0)
        public var probabilities: [T] = []
        public var sequences: [Range<Int>] = []
        public init() {}
    }

    /// The gradients of the four projections.
    public struct Gradients: Sendable {
        public var query: (weight: Matrix<T>, bias: [T]), key: (weight: Matrix<T>, bias: [T])
        public var value: (weight: Matrix<T>, bias: [T]), output: (weight: Matrix<T>, bias: [T])
        public init(hidden h: Int) {
            let z = (weight: Matrix<T>(rows: h, cols: h), bias: [T](repeating: 0, count: h))
            query = z; key = z; value = z; output = z
        }
    }

    /// forward, keeping what backward needs.
    public func forward(_ x: Matrix<T>, sequences: [Range<Int>], cache: inout Cache) -> Matrix<T> {
        cache.input = x; cache.sequences = sequences
        cache.q = query.forward(x); cache.k = key.forward(x); cache.v = value.forward(x)
        cache.context = SelfAttention.attend(q: cache.q, k: cache.k, v: cache.v, heads: heads, sequences: sequences,
                                             probabilities: &cache.probabilities)
        return output.forward(cache.context)
    }

    /// Backward of `forward(_:sequences:cache:)`: accumulates the projections' gradients and
    /// returns dL/dx.
    public func backward(_ dy: Matrix<T>, cache: Cache, gradients g: inout Gradients) -> Matrix<T> {
        let dctx = output.backward(dy, input: cache.context, weightGrad: &g.output.weight, biasGrad: &g.output.bias)
        let (dq, dk, dv) = SelfAttention.attendBackward(dctx, q: cache.q, k: cache.k, v: cache.v, heads: heads,
                                                        sequences: cache.sequences, probabilities: cache.probabilities)
        var dx = query.backward(dq, input: cache.input, weightGrad: &g.query.weight, biasGrad: &g.query.bias)
        let dxk = key.backward(dk, input: cache.input, weightGrad: &g.key.weight, biasGrad: &g.key.bias)
        let dxv = value.backward(dv, input: cache.input, weightGrad: &g.value.weight, biasGrad: &g.value.bias)
        for i in dx.data.indices { dx.data[i] += dxk.data[i] + dxv.data[i] }
        return dx
    }

    /// The attention itself, on projections Q, K, V (rows × hidden, heads side by side): for each
    /// sequence and head, C_h = softmax(Q_h K_hᵀ / √d_head) V_h over the sequence's rows only (the
    /// padding mask). Rows outside every sequence come out zero. With `probabilities`, the softmax
    /// matrices are kept for backward: sequence by sequence, head by head, L×L each.
    @inlinable
    public static func attend(q: Matrix<T>, k: Matrix<T>, v: Matrix<T>, heads: Int, sequences: [Range<Int>],
                              probabilities: UnsafeMutablePointer<[T]>?) -> Matrix<T> {
        let h = q.cols, n = q.rows
        precondition(h % heads == 0 && k.cols == h && v.cols == h && k.rows == n && v.rows == n, "attend: Q, K, V disagree")
        var ctx = Matrix<T>(rows: n, cols: h)
        if n == 0 { probabilities?.pointee = []; return ctx }
        let keep = probabilities != nil
        let longest = sequences.map(\.count).max() ?? 0
        var scores = [T](repeating: 0, count: keep ? heads * sequences.reduce(0) { $0 + $1.count * $1.count } : longest * longest)
        withQKV(q, k, v) { pq, pk, pv in
            ctx.data.withUnsafeMutableBufferPointer { pc in
                scores.withUnsafeMutableBufferPointer { ps in
                    attend(rows: n, hidden: h, heads: heads, sequences: sequences, q: pq, k: pk, v: pv, ld: h,
                           context: pc.baseAddress!, ldc: h, scores: ps.baseAddress!, keep: keep)
                }
            }
        }
        if let probabilities { probabilities.pointee = scores }
        return ctx
    }

    /// The kernel of `attend` on raw storage. Q, K and V are rows of `ld` values whose first
    /// `hidden` columns hold the heads side by side (ld > hidden when they are views into one
    /// [Q K V] product, as emb-encode's stacked projection makes); the heads' outputs go into the
    /// first `hidden` columns of `context`'s rows (ldc values each). `scores` holds L×L values: the
    /// longest sequence's, reused, or with `keep` every (sequence, head)'s probabilities in turn.
    @inlinable
    public static func attend(rows n: Int, hidden h: Int, heads: Int, sequences: [Range<Int>],
                              q pq: UnsafePointer<T>, k pk: UnsafePointer<T>, v pv: UnsafePointer<T>, ld: Int,
                              context pc: UnsafeMutablePointer<T>, ldc: Int, scores: UnsafeMutablePointer<T>, keep: Bool) {
        let dh = h / heads
        let scale = T(1) / T(dh).squareRoot()
        var po = 0
        for seq in sequences where !seq.isEmpty {
            precondition(seq.lowerBound >= 0 && seq.upperBound <= n, "SelfAttention: sequence \(seq) outside \(n) rows")
            let L = seq.count
            for head in 0..<heads {
                let off = seq.lowerBound * ld + head * dh
                let ps = scores + po
                // S = scale · Q_h K_hᵀ (L × L)
                T.gemm(false, true, L, L, dh, scale, pq + off, ld, pk + off, ld, 0, ps, L)
                for r in 0..<L {
                    SelfAttention.softmax(UnsafeMutableBufferPointer(start: ps + r * L, count: L))
                }
                // C_h = P V_h (L × dh), written into the head's columns.
                T.gemm(false, false, L, dh, L, 1, ps, L, pv + off, ld, 0, pc + seq.lowerBound * ldc + head * dh, ldc)
                if keep { po += L * L }
            }
        }
    }

    /// `attend` keeping the probabilities in `probabilities`.
    @inlinable
    public static func attend(q: Matrix<T>, k: Matrix<T>, v: Matrix<T>, heads: Int, sequences: [Range<Int>],
                              probabilities: inout [T]) -> Matrix<T> {
        withUnsafeMutablePointer(to: &probabilities) { attend(q: q, k: k, v: v, heads: heads, sequences: sequences, probabilities: $0) }
    }

    /// Backward of `attend`: given dL/dC, returns dL/dQ, dL/dK, dL/dV. Per sequence and head:
    /// dV = Pᵀ dC, dP = dC Vᵀ, dS = P ∘ (dP − rowsum(dP ∘ P)), dQ = scale · dS K, dK = scale · dSᵀ Q.
    @inlinable
    public static func attendBackward(_ dctx: Matrix<T>, q: Matrix<T>, k: Matrix<T>, v: Matrix<T>, heads: Int,
                                      sequences: [Range<Int>], probabilities: [T]) -> (dq: Matrix<T>, dk: Matrix<T>, dv: Matrix<T>) {
        let h = q.cols, dh = h / heads, n = q.rows
        precondition(dctx.rows == n && dctx.cols == h)
        var dq = Matrix<T>(rows: n, cols: h), dk = Matrix<T>(rows: n, cols: h), dv = Matrix<T>(rows: n, cols: h)
        if n == 0 { return (dq, dk, dv) }
        let longest = sequences.map(\.count).max() ?? 0
        var dp = [T](repeating: 0, count: longest * longest)
        let scale = T(1) / T(dh).squareRoot()
        withQKV(q, k, v) { pq, pk, pv in
        dctx.data.withUnsafeBufferPointer { pc in
        probabilities.withUnsafeBufferPointer { pp in
        dq.data.withUnsafeMutableBufferPointer { gq in
        dk.data.withUnsafeMutableBufferPointer { gk in
        dv.data.withUnsafeMutableBufferPointer { gv in
        dp.withUnsafeMutableBufferPointer { pd in
            var po = 0
            for seq in sequences where !seq.isEmpty {
                let L = seq.count, o = seq.lowerBound * h
                for head in 0..<heads {
                    let off = o + head * dh, P = pp.baseAddress! + po, D = pd.baseAddress!
                    // dV_h = Pᵀ dC_h
                    T.gemm(true, false, L, dh, L, 1, P, L, pc.baseAddress! + off, h, 0, gv.baseAddress! + off, h)
                    // dP = dC_h V_hᵀ
                    T.gemm(false, true, L, L, dh, 1, pc.baseAddress! + off, h, pv + off, h, 0, D, L)
                    for r in 0..<L {
                        var dot = 0.0
                        for c in 0..<L { dot += Double(D[r * L + c]) * Double(P[r * L + c]) }
                        let t = T(dot)
                        for c in 0..<L { D[r * L + c] = P[r * L + c] * (D[r * L + c] - t) }
                    }
                    // dQ_h = scale dS K_h;  dK_h = scale dSᵀ Q_h
                    T.gemm(false, false, L, dh, L, scale, D, L, pk + off, h, 0, gq.baseAddress! + off, h)
                    T.gemm(true, false, L, dh, L, scale, D, L, pq + off, h, 0, gk.baseAddress! + off, h)
                    po += L * L
                }
            }
        }}}}}}}
        return (dq, dk, dv)
    }

    /// The base addresses of Q, K and V for `body`.
    @inlinable
    static func withQKV<R>(_ q: Matrix<T>, _ k: Matrix<T>, _ v: Matrix<T>,
                           _ body: (UnsafePointer<T>, UnsafePointer<T>, UnsafePointer<T>) -> R) -> R {
        q.data.withUnsafeBufferPointer { pq in
            k.data.withUnsafeBufferPointer { pk in
                v.data.withUnsafeBufferPointer { pv in body(pq.baseAddress!, pk.baseAddress!, pv.baseAddress!) }
            }
        }
    }

    @inlinable
    static func softmax(_ row: UnsafeMutableBufferPointer<T>) {
        if T.self == Float.self {
            row.withMemoryRebound(to: Float.self) { softmaxInPlace($0) }
        } else {
            row.withMemoryRebound(to: Double.self) { softmaxInPlace($0) }
        }
    }
}

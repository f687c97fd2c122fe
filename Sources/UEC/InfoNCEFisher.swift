import LinearAlgebra
import Parallel
import Probability
#if canImport(Glibc)
import Glibc
#endif

/// The last linear layer z(x) = W h(x) + b whose weights get a Laplace posterior
/// (methods.md 1.1). `weight == nil` is the identity adapter: h(x) = e(x), W = I, b = 0.
public struct LastLayer: Sendable {
    /// W, D×P, or nil for the identity adapter (then P = D).
    public var weight: Matrix<Double>?
    /// b, D values (all zero for the identity adapter).
    public var bias: [Double]
    /// Output dimension D.
    public let outputs: Int
    /// Input dimension P.
    public let inputs: Int

    /// The identity adapter of dimension D (methods.md 1.1, the default).
    public static func identity(_ d: Int) -> LastLayer {
        LastLayer(weight: nil, bias: Array(repeating: 0, count: d), outputs: d, inputs: d)
    }

    /// A real last layer with weights W (D×P) and bias b (D).
    public init(weight: Matrix<Double>, bias: [Double]) {
        precondition(bias.count == weight.rows, "bias has \(bias.count) values, W has \(weight.rows) rows")
        self.weight = weight; self.bias = bias; outputs = weight.rows; inputs = weight.cols
    }

    private init(weight: Matrix<Double>?, bias: [Double], outputs: Int, inputs: Int) {
        self.weight = weight; self.bias = bias; self.outputs = outputs; self.inputs = inputs
    }

    public var isIdentity: Bool { weight == nil }

    /// ‖θ̂‖² = ‖W‖²_F + ‖b‖² (= D for the identity adapter), used by MacKay's update.
    public var squaredNorm: Double {
        guard let w = weight else { return Double(outputs) }
        return w.data.reduce(0) { $0 + $1 * $1 } + bias.reduce(0) { $0 + $1 * $1 }
    }

    /// z = H Wᵀ + b for a block of inputs H (rows × P).
    public func forward(_ h: Matrix<Double>) -> Matrix<Double> {
        guard let w = weight else { return h }
        var z = Matrix<Double>(rows: h.rows, cols: outputs)
        gemm(h, w, transB: true, into: &z)
        for r in 0..<z.rows { for d in 0..<outputs { z.data[r * outputs + d] += bias[d] } }
        return z
    }
}

/// Accumulates the diagonal empirical Fisher F = Σ_batches Σ_n (∂ℓ_n/∂θ)² of in-batch InfoNCE
/// for θ = (W, b), in float64, by the exact three-GEMM closed form of methods.md 1.1:
///
///     s_nj = z(q_n)·z(p_j)/τ,  R_nj = softmax_j(s_nj) − δ_nj
///     A = R Z_p / τ,  C = R H_p / τ
///     F_W += (A∘A)ᵀ(H∘H) + 2 (A∘Z)ᵀ(H∘C) + (Z∘Z)ᵀ(C∘C),   F_b += Σ_n a_n∘a_n
///
/// where Z, H are the query side's outputs and inputs of the layer.
public struct InfoNCEFisher: Sendable {
    public let layer: LastLayer
    public let temperature: Double
    /// F_W, D×P.
    public private(set) var weight: Matrix<Double>
    /// F_b, D.
    public private(set) var bias: [Double]
    /// Pairs and batches seen, and the summed loss Σ ℓ_n (for reports).
    public private(set) var pairs = 0
    public private(set) var batches = 0
    public private(set) var lossSum = 0.0

    public init(layer: LastLayer, temperature: Double = 1) {
        precondition(temperature > 0)
        self.layer = layer; self.temperature = temperature
        weight = Matrix(rows: layer.outputs, cols: layer.inputs)
        bias = Array(repeating: 0, count: layer.outputs)
    }

    /// Adds one batch of B positive pairs: layer inputs of the queries and of the positives
    /// (B×P each; for the identity adapter, the embeddings). A batch of one pair has no
    /// negatives, its gradient is zero; it is counted and contributes nothing.
    public mutating func add(queries hq: Matrix<Double>, positives hp: Matrix<Double>) {
        add(queries: hq, positives: hp, batchSize: max(1, hq.rows))
    }

    /// Adds consecutive batches of `batchSize` pairs (the last one may be shorter): the batches
    /// of `add(queries:positives:)` one after the other, with their GEMMs at shapes where a GEMM
    /// runs near the machine's rate instead of B-row slivers, on `threads` threads of its own
    /// with OpenBLAS on one thread each (no OpenBLAS workers spinning between small products).
    ///
    /// The work is cut at fixed places, whatever the threads: the layer's forward pass and a
    /// batch's factors in groups of whole batches (about `groupRows` pairs), then the one Fisher
    /// GEMM of all the groups in `fisherPieces` pieces of F_W's columns; F_b and the loss are added
    /// afterwards row by row in order. So the sums have the same bits on any number of threads.
    public mutating func add(queries hq: Matrix<Double>, positives hp: Matrix<Double>, batchSize: Int, threads: Int = 1) {
        precondition(hq.rows == hp.rows && hq.cols == layer.inputs && hp.cols == layer.inputs && batchSize >= 1)
        let rows = hq.rows, d = layer.outputs, p = layer.inputs
        guard rows > 0 else { return }
        // The three GEMMs (A∘A)ᵀ(H∘H) + 2 (A∘Z)ᵀ(H∘C) + (Z∘Z)ᵀ(C∘C) of every batch run as one
        // GEMM over the stacked factors [A∘A; 2 A∘Z; Z∘Z]ᵀ · [H∘H; H∘C; C∘C] (rows n, rows + n
        // and 2·rows + n for pair n): the same sum, at a GEMM shape with a long inner dimension.
        var x = Matrix<Double>(rows: 3 * rows, cols: d), y = Matrix<Double>(rows: 3 * rows, cols: p)
        var rowLoss = [Double](repeating: 0, count: rows)
        let perGroup = max(1, Self.groupRows / batchSize) * batchSize
        let groups = stride(from: 0, to: rows, by: perGroup).map { $0 ..< min($0 + perGroup, rows) }
        let layer = self.layer, temperature = self.temperature
        let width = (p + Self.fisherPieces - 1) / Self.fisherPieces
        let pieces = stride(from: 0, to: p, by: width).map { $0 ..< min($0 + width, p) }
        x.data.withUnsafeMutableBufferPointer { xb in
            y.data.withUnsafeMutableBufferPointer { yb in
                rowLoss.withUnsafeMutableBufferPointer { lb in
                    weight.data.withUnsafeMutableBufferPointer { wb in
                        let out = FactorRows(x: xb.baseAddress!, y: yb.baseAddress!, loss: lb.baseAddress!, weight: wb.baseAddress!)
                        func run() {
                            onChunks(groups.count, threads: threads) { g in
                                Self.factors(of: groups[g], queries: hq, positives: hp, batchSize: batchSize, layer: layer,
                                             temperature: temperature, stride: rows, into: out)
                            }
                            // F_W[:, piece] += Xᵀ Y[:, piece], each piece one GEMM on one thread.
                            onChunks(pieces.count, threads: threads) { j in
                                let c = pieces[j]
                                Double.gemm(true, false, d, c.count, 3 * rows, 1, out.x, d, out.y + c.lowerBound, p,
                                            1, out.weight + c.lowerBound, p)
                            }
                        }
                        if threads > 1 { BLASThreading.singleThreaded(run) } else { run() }
                    }
                }
            }
        }
        for n in 0..<rows {
            for k in 0..<d { bias[k] += x.data[n * d + k] }
            lossSum += rowLoss[n]
        }
        pairs += rows
        batches += (rows + batchSize - 1) / batchSize
    }

    /// Pairs per group of whole batches whose forward pass is one GEMM (fewer when a batch is larger).
    static let groupRows = 64
    /// Pieces of F_W's columns, one Fisher GEMM each.
    static let fisherPieces = 8

    /// Where the groups write their rows of the stacked factors and their losses, and the Fisher
    /// GEMM its pieces: each group and each piece touches only its own part.
    private struct FactorRows: @unchecked Sendable {
        let x: UnsafeMutablePointer<Double>, y: UnsafeMutablePointer<Double>
        let loss: UnsafeMutablePointer<Double>, weight: UnsafeMutablePointer<Double>
    }

    /// The factors of the pairs `group` (whole batches of `batchSize`, from the first): the layer's
    /// outputs, R = softmax(s) − I per batch, A = R Z_p / τ and C = R H_p / τ, and their rows
    /// A∘A, 2 A∘Z, Z∘Z (of X) and H∘H, H∘C, C∘C (of Y) at n, stride + n, 2·stride + n; −log of
    /// each pair's softmax on its positive in `loss`.
    private static func factors(of group: Range<Int>, queries: Matrix<Double>, positives: Matrix<Double>, batchSize: Int,
                                layer: LastLayer, temperature: Double, stride rows: Int, into out: FactorRows) {
        let d = layer.outputs, p = layer.inputs
        let hq = queries.rows(group), hp = positives.rows(group)
        let zq = layer.forward(hq), zp = layer.forward(hp)
        for start in Swift.stride(from: 0, to: group.count, by: batchSize) {
            let batch = start ..< min(start + batchSize, group.count), b = batch.count
            let zpb = zp.rows(batch)
            var r = Matrix<Double>(rows: b, cols: b)
            gemm(zq.rows(batch), zpb, transB: true, alpha: 1 / temperature, into: &r)
            // R = softmax(s) − I, row by row (stable), and the loss −s_nn + logsumexp_j s_nj.
            for m in 0..<b {
                let o = m * b
                r.data.withUnsafeMutableBufferPointer { softmaxInPlace(UnsafeMutableBufferPointer(rebasing: $0[o ..< o + b])) }
                out.loss[group.lowerBound + start + m] = -log(r.data[o + m])
                r.data[o + m] -= 1
            }
            var a = Matrix<Double>(rows: b, cols: d)
            gemm(r, zpb, alpha: 1 / temperature, into: &a)
            let c: Matrix<Double>
            if layer.isIdentity {
                c = a  // h = z on the positive side, so C = A
            } else {
                var cc = Matrix<Double>(rows: b, cols: p)
                gemm(r, hp.rows(batch), alpha: 1 / temperature, into: &cc)
                c = cc
            }
            for m in 0..<b {
                let local = start + m, n = group.lowerBound + local
                for k in 0..<d {
                    let av = a.data[m * d + k], zv = zq.data[local * d + k]
                    out.x[n * d + k] = av * av
                    out.x[(rows + n) * d + k] = 2 * av * zv
                    out.x[(2 * rows + n) * d + k] = zv * zv
                }
                for i in 0..<p {
                    let hv = hq.data[local * p + i], cv = c.data[m * p + i]
                    out.y[n * p + i] = hv * hv
                    out.y[(rows + n) * p + i] = hv * cv
                    out.y[(2 * rows + n) * p + i] = cv * cv
                }
            }
        }
    }

    /// The Fisher as one flat vector (W row-major, then b), as MacKay's update sees it.
    public var flat: [Double] { weight.data + bias }
}

/// Element-wise product of two matrices of the same shape.
@inlinable
public func hadamard<T: BLASScalar>(_ x: Matrix<T>, _ y: Matrix<T>) -> Matrix<T> {
    precondition(x.rows == y.rows && x.cols == y.cols)
    var out = x
    for i in out.data.indices { out.data[i] *= y.data[i] }
    return out
}

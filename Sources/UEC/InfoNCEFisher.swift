import Failure
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
        guard weight != nil else { return h }
        precondition(h.cols == inputs, "forward: inputs have \(h.cols) columns, the layer \(inputs)")
        return Matrix(rows: h.rows, cols: outputs, data: h.data.withUnsafeBufferPointer { forward(rows: $0.baseAddress!, count: h.rows) })
    }

    /// z = H Wᵀ + b for `count` rows of P inputs at `h` (row-major), as count × D values; the same
    /// bits as `forward(_:)` on those rows. Not for the identity adapter.
    func forward(rows h: UnsafePointer<Double>, count: Int) -> [Double] {
        let w = weight!, d = outputs
        guard count > 0 else { return [] }
        return [Double](unsafeUninitializedCapacity: count * d) { z, initialized in
            w.data.withUnsafeBufferPointer { wb in
                Double.gemm(false, true, count, d, inputs, 1, h, inputs, wb.baseAddress!, inputs, 0, z.baseAddress!, d)
            }
            for r in 0..<count { for k in 0..<d { z[r * d + k] += bias[k] } }
            initialized = count * d
        }
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
    ///
    /// `alongside`, when given, runs once, as one more task among the Fisher GEMM's pieces (the
    /// first one taken): a caller that reads its input block by block reads the next block there,
    /// on one thread while the other threads take the pieces, instead of leaving them idle while
    /// it reads. It must not touch the matrices given.
    public mutating func add(queries hq: Matrix<Double>, positives hp: Matrix<Double>, batchSize: Int, threads: Int = 1,
                             alongside: (@Sendable () -> Void)? = nil) {
        precondition(hq.rows == hp.rows && hq.cols == layer.inputs && hp.cols == layer.inputs && batchSize >= 1)
        let rows = hq.rows, d = layer.outputs, p = layer.inputs
        guard rows > 0 else { alongside?(); return }
        // The three GEMMs (A∘A)ᵀ(H∘H) + 2 (A∘Z)ᵀ(H∘C) + (Z∘Z)ᵀ(C∘C) of every batch run as one
        // GEMM over the stacked factors [A∘A; 2 A∘Z; Z∘Z]ᵀ · [H∘H; H∘C; C∘C] (rows n, rows + n
        // and 2·rows + n for pair n): the same sum, at a GEMM shape with a long inner dimension.
        // Every element of X and Y is written by `factors` before the GEMM reads it: no zeros first.
        var x = Matrix<Double>(rows: 3 * rows, cols: d, data: .uninitializedOnHugePages(3 * rows * d))
        var y = Matrix<Double>(rows: 3 * rows, cols: p, data: .uninitializedOnHugePages(3 * rows * p))
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
                            // F_W[:, piece] += Xᵀ Y[:, piece], each piece one GEMM on one thread;
                            // `alongside` first, the longest task.
                            let extra = alongside == nil ? 0 : 1
                            onChunks(pieces.count + extra, threads: threads) { j in
                                if j < extra { alongside?(); return }
                                let c = pieces[j - extra]
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
    static let groupRows = 128
    /// Pieces of F_W's columns, one Fisher GEMM each.
    static let fisherPieces = 4

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
        let d = layer.outputs, p = layer.inputs, count = group.count, first = group.lowerBound
        let scale = 1 / temperature
        // The group's rows are read in place (no copies); the layer's outputs of both sides and a
        // batch's R, A and C are held once per group and overwritten batch after batch.
        queries.data.withUnsafeBufferPointer { qb in
        positives.data.withUnsafeBufferPointer { pb in
            let hq = qb.baseAddress! + first * p, hp = pb.baseAddress! + first * p
            let identity = layer.isIdentity
            let zqStore = identity ? [] : layer.forward(rows: hq, count: count)
            let zpStore = identity ? [] : layer.forward(rows: hp, count: count)
            let b0 = min(batchSize, count)
            var r = [Double](repeating: 0, count: b0 * b0), a = [Double](repeating: 0, count: b0 * d)
            var cc = [Double](repeating: 0, count: identity ? 0 : b0 * p)
            zqStore.withUnsafeBufferPointer { zqs in
            zpStore.withUnsafeBufferPointer { zps in
            r.withUnsafeMutableBufferPointer { rb in
            a.withUnsafeMutableBufferPointer { ab in
            cc.withUnsafeMutableBufferPointer { cb in
                let zq = identity ? hq : zqs.baseAddress!, zp = identity ? hp : zps.baseAddress!
                let rp = rb.baseAddress!, ap = ab.baseAddress!
                for start in Swift.stride(from: 0, to: count, by: batchSize) {
                    let b = min(batchSize, count - start)
                    let zqb = zq + start * d, zpb = zp + start * d
                    // S = Z_q Z_pᵀ / τ, then R = softmax(S) − I row by row (stable), and the loss
                    // −s_nn + logsumexp_j s_nj.
                    Double.gemm(false, true, b, b, d, scale, zqb, d, zpb, d, 0, rp, b)
                    for m in 0..<b {
                        let row = UnsafeMutableBufferPointer(start: rp + m * b, count: b)
                        softmaxInPlace(row)
                        out.loss[first + start + m] = -log(row[m])
                        row[m] -= 1
                    }
                    // A = R Z_p / τ; C = R H_p / τ (h = z on the positive side of the identity
                    // adapter, so there C = A).
                    Double.gemm(false, false, b, d, b, scale, rp, b, zpb, d, 0, ap, d)
                    let c: UnsafePointer<Double>
                    if identity {
                        c = UnsafePointer(ap)
                    } else {
                        Double.gemm(false, false, b, p, b, scale, rp, b, hp + start * p, p, 0, cb.baseAddress!, p)
                        c = UnsafePointer(cb.baseAddress!)
                    }
                    let hqb = hq + start * p
                    for m in 0..<b {
                        let n = first + start + m
                        let x0 = out.x + n * d, x1 = out.x + (rows + n) * d, x2 = out.x + (2 * rows + n) * d
                        let am = ap + m * d, zm = zqb + m * d
                        for k in 0..<d {
                            let av = am[k], zv = zm[k]
                            x0[k] = av * av
                            x1[k] = 2 * av * zv
                            x2[k] = zv * zv
                        }
                        let y0 = out.y + n * p, y1 = out.y + (rows + n) * p, y2 = out.y + (2 * rows + n) * p
                        let hm = hqb + m * p, cm = c + m * p
                        for i in 0..<p {
                            let hv = hm[i], cv = cm[i]
                            y0[i] = hv * hv
                            y1[i] = hv * cv
                            y2[i] = cv * cv
                        }
                    }
                }
            }}}}}
        }}
    }

    /// The Fisher as one flat vector (W row-major, then b), as MacKay's update sees it.
    public var flat: [Double] { weight.data + bias }
}


import LinearAlgebra
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
        precondition(hq.rows == hp.rows && hq.cols == layer.inputs && hp.cols == layer.inputs)
        let b = hq.rows, d = layer.outputs, p = layer.inputs
        guard b > 0 else { return }
        let zq = layer.forward(hq), zp = layer.forward(hp)
        var r = Matrix<Double>(rows: b, cols: b)
        gemm(zq, zp, transB: true, alpha: 1 / temperature, into: &r)
        // R = softmax(s) − I, row by row (stable), and the loss −s_nn + logsumexp_j s_nj.
        for n in 0..<b {
            let o = n * b
            r.data.withUnsafeMutableBufferPointer { softmaxInPlace(UnsafeMutableBufferPointer(rebasing: $0[o ..< o + b])) }
            lossSum += -log(r.data[o + n])
            r.data[o + n] -= 1
        }
        var a = Matrix<Double>(rows: b, cols: d)
        gemm(r, zp, alpha: 1 / temperature, into: &a)
        let c: Matrix<Double>
        if layer.isIdentity {
            c = a  // h = z on the positive side, so C = A
        } else {
            var cc = Matrix<Double>(rows: b, cols: p)
            gemm(r, hp, alpha: 1 / temperature, into: &cc)
            c = cc
        }
        // The three GEMMs (A∘A)ᵀ(H∘H) + 2 (A∘Z)ᵀ(H∘C) + (Z∘Z)ᵀ(C∘C) run as one GEMM of inner
        // dimension 3B over the stacked factors [A∘A; 2 A∘Z; Z∘Z]ᵀ · [H∘H; H∘C; C∘C]:
        // the same sum, at a better GEMM shape (B alone is a short inner dimension).
        var x = Matrix<Double>(rows: 3 * b, cols: d), y = Matrix<Double>(rows: 3 * b, cols: p)
        for n in 0..<b {
            for k in 0..<d {
                let av = a.data[n * d + k], zv = zq.data[n * d + k]
                x.data[n * d + k] = av * av
                x.data[(b + n) * d + k] = 2 * av * zv
                x.data[(2 * b + n) * d + k] = zv * zv
                bias[k] += av * av
            }
            for i in 0..<p {
                let hv = hq.data[n * p + i], cv = c.data[n * p + i]
                y.data[n * p + i] = hv * hv
                y.data[(b + n) * p + i] = hv * cv
                y.data[(2 * b + n) * p + i] = cv * cv
            }
        }
        gemm(x, transA: true, y, beta: 1, into: &weight)
        pairs += b
        batches += 1
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

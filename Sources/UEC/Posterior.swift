import CElementwise
import LinearAlgebra
import Parallel
#if canImport(Glibc)
import Glibc
#endif

/// MacKay's fixed point for the prior precision λ that maximises the Laplace evidence
/// (methods.md 1.1): the λ > 0 with λ‖θ̂‖² = γ(λ), γ(λ) = Σ_j F_j/(F_j + λ), the point where
/// MacKay's update λ ← γ(λ)/‖θ̂‖² stops. Returns λ, γ(λ) (the effective number of parameters) and
/// the passes over the Fisher taken.
///
/// The root is found by Newton's method, not by iterating the update: the update lands on
/// alternate sides of the root and, when |γ′| is close to ‖θ̂‖², closes in on it by a factor near
/// 1 per pass (878 passes over 590 208 entries for a 384 × 1536 layer, half a second, for a λ
/// whose last digits were still moving). Newton works on g(u) = ln γ(λ) − ln ‖θ̂‖² − u with
/// u = ln λ: where λ is far below the F_j, γ ≈ m and g is a straight line; far above them,
/// γ ≈ Σ F_j / λ and g is a straight line again, so a Fisher whose entries span a hundred
/// decades (a saturated InfoNCE) costs a few passes, not one per doubling of λ. Every pass keeps
/// a bracket [lo, hi] with g(lo) > 0 > g(hi), and a Newton step that would leave it is replaced
/// by halving it, so the search always ends: hi = ln(m/‖θ̂‖²) (m the number of F_j > 0, and γ < m),
/// lo = the update from there, which is below the root. It ends when a step or the bracket is
/// at most `tolerance` (relative to λ) and returns γ at the λ returned.
/// A Fisher with no positive entry has no root: λ = 0 is returned.
public func fitPriorPrecision(fisher: [Double], squaredNorm: Double, tolerance: Double = 1e-12,
                              maxIterations: Int = 200) -> (lambda: Double, gamma: Double, iterations: Int) {
    precondition(squaredNorm > 0 && tolerance >= 0 && maxIterations >= 1)
    let positive = fisher.reduce(0) { $0 + ($1 > 0 ? 1 : 0) }
    guard positive > 0 else { return (0, 0, 1) }
    return fisher.withUnsafeBufferPointer { f in
        let logS = log(squaredNorm)
        var hi = log(Double(positive)) - logS
        let first = evidenceTerms(f, lambda: exp(hi)).gamma
        guard first.isFinite else { return (.nan, first, 1) }
        var lo = max(log(first) - logS, log(Double.leastNormalMagnitude))
        var u = lo, iterations = 1
        while true {
            let lambda = exp(u)
            let (gamma, slope) = evidenceTerms(f, lambda: lambda)
            iterations += 1
            guard gamma.isFinite, slope.isFinite else { return (.nan, gamma, iterations) }
            let g = log(gamma) - logS - u                  // −∞ when γ underflows: above the root
            if g == 0 || iterations >= maxIterations || hi - lo <= tolerance { return (lambda, gamma, iterations) }
            if g > 0 { lo = u } else { hi = u }
            // g′(u) = −λ Σ F/(F+λ)² / γ − 1
            let newton = u + g / (lambda * slope / gamma + 1)
            let next = newton > lo && newton < hi ? newton : (lo + hi) / 2
            let step = abs(next - u)
            u = next
            if step <= tolerance {                          // taken, then γ at the new λ
                let last = evidenceTerms(f, lambda: exp(u))
                return (exp(u), last.gamma, iterations + 1)
            }
        }
    }
}

/// γ(λ) = Σ F_j/(F_j + λ) and −γ′(λ) = Σ F_j/(F_j + λ)², in one pass with one division per entry,
/// summed in eight lanes in a fixed order (the same bits on every run).
func evidenceTerms(_ f: UnsafeBufferPointer<Double>, lambda: Double) -> (gamma: Double, slope: Double) {
    var g = SIMD8<Double>(), d = SIMD8<Double>()
    let lam = SIMD8<Double>(repeating: lambda), base = f.baseAddress!
    let whole = f.count / 8 * 8
    var i = 0
    while i < whole {
        let x = UnsafeRawPointer(base + i).loadUnaligned(as: SIMD8<Double>.self)
        let r = 1 / (x + lam), t = x * r
        g += t; d += t * r
        i += 8
    }
    var gamma = g.sum(), slope = d.sum()
    while i < f.count {
        let r = 1 / (f[i] + lambda), t = f[i] * r
        gamma += t; slope += t * r
        i += 1
    }
    return (gamma, slope)
}

/// The diagonal Laplace posterior of the last layer: per-parameter variances v = 1/(F + λ)
/// (methods.md 1.1), the MAP layer, and the variance scale c applied to predictions.
public struct LaplacePosterior: Sendable {
    public var layer: LastLayer
    /// V_W = 1/(F_W + λ), D×P.
    public var weightVariance: Matrix<Double>
    /// V_b = 1/(F_b + λ), D.
    public var biasVariance: [Double]
    public var priorPrecision: Double
    /// c: predictive variances are multiplied by it (methods.md 1.1, "Variance scale").
    public var varianceScale: Double = 1

    /// Posterior variance v = 1/(F + λ) (methods.md 1.1).
    public init(fisher: InfoNCEFisher, priorPrecision lambda: Double) {
        precondition(lambda > 0)
        layer = fisher.layer
        priorPrecision = lambda
        weightVariance = Matrix(rows: fisher.weight.rows, cols: fisher.weight.cols,
                                data: fisher.weight.data.map { 1 / ($0 + lambda) })
        biasVariance = fisher.bias.map { 1 / ($0 + lambda) }
    }

    public init(layer: LastLayer, weightVariance: Matrix<Double>, biasVariance: [Double],
                priorPrecision: Double, varianceScale: Double) {
        self.layer = layer; self.weightVariance = weightVariance; self.biasVariance = biasVariance
        self.priorPrecision = priorPrecision; self.varianceScale = varianceScale
    }

    /// A float copy of V_W for the predictive GEMM, made once per use site.
    public var weightVarianceFloat: Matrix<Float> {
        Matrix(rows: weightVariance.rows, cols: weightVariance.cols, data: weightVariance.data.map { Float($0) })
    }

    /// Mean and per-input variance for a block of layer inputs H (rows × P), methods.md 1.1:
    /// μ = W h + b, and var_d(x) = c · ( Σ_i V_W[d,i] h_i(x)² + V_b[d] ), one GEMM (H∘H) V_Wᵀ.
    /// Pass `vw` (weightVarianceFloat) to avoid converting V_W at every block.
    ///
    /// The rows are cut into chunks of `predictChunkRows` at fixed places, each chunk's products
    /// one GEMM on one thread (OpenBLAS on one thread meanwhile), the chunks on up to `threads`
    /// threads: the same bits on any number of threads (OpenBLAS's own threading rounds
    /// differently depending on how many threads split the product).
    public func predict(_ h: Matrix<Float>, vw: Matrix<Float>? = nil, threads: Int = 1) -> (mean: Matrix<Float>, variance: Matrix<Float>) {
        let d = layer.outputs, p = layer.inputs, rows = h.rows
        precondition(h.cols == p)
        let vwf = vw ?? weightVarianceFloat
        let c = Float(varianceScale)
        let vb = biasVariance.map { Float($0) }
        let w = layer.weight.map { w in w.data.map { Float($0) } }
        let b = layer.bias.map { Float($0) }
        guard rows > 0 else { return (w == nil ? h : Matrix(rows: 0, cols: d), Matrix(rows: 0, cols: d)) }
        // Every element of these is written below before it is read.
        var v = Matrix<Float>(rows: rows, cols: d, data: .uninitializedOnHugePages(rows * d))
        var z = Matrix<Float>(rows: w == nil ? 0 : rows, cols: d, data: .uninitializedOnHugePages(w == nil ? 0 : rows * d))
        var squares = [Float].uninitializedOnHugePages(rows * p)
        let chunks = (rows + Self.predictChunkRows - 1) / Self.predictChunkRows
        h.data.withUnsafeBufferPointer { hb in
        vwf.data.withUnsafeBufferPointer { vwb in
        v.data.withUnsafeMutableBufferPointer { vb0 in
        z.data.withUnsafeMutableBufferPointer { zb in
        squares.withUnsafeMutableBufferPointer { sb in
            let at = PredictBuffers(h: hb.baseAddress!, vw: vwb.baseAddress!, v: vb0.baseAddress!, z: zb.baseAddress, squares: sb.baseAddress!)
            let work = { @Sendable (k: Int) in
                let first = k * Self.predictChunkRows, n = min(Self.predictChunkRows, rows - first)
                let hk = at.h + first * p, sk = at.squares + first * p, vk = at.v + first * d
                celem_square_f32(sk, hk, n * p)
                Float.gemm(false, true, n, d, p, 1, sk, p, at.vw, p, 0, vk, d)
                vb.withUnsafeBufferPointer { celem_add_row_scale_f32(vk, d, $0.baseAddress!, c, n, d) }
                if let w, let zk = at.z.map({ $0 + first * d }) {
                    w.withUnsafeBufferPointer { wb in Float.gemm(false, true, n, d, p, 1, hk, p, wb.baseAddress!, p, 0, zk, d) }
                    b.withUnsafeBufferPointer { celem_add_row_f32(zk, d, $0.baseAddress!, n, d) }
                }
            }
            if threads > 1 && chunks > 1 {
                BLASThreading.singleThreaded { onChunks(chunks, threads: threads, work) }
            } else {
                BLASThreading.singleThreaded { for k in 0 ..< chunks { work(k) } }
            }
        }}}}}
        return (w == nil ? h : z, v)
    }

    /// Rows per GEMM of `predict`: its chunks of work, cut at the same rows whatever the threads.
    public static let predictChunkRows = 512

    private struct PredictBuffers: @unchecked Sendable {
        let h: UnsafePointer<Float>, vw: UnsafePointer<Float>
        let v: UnsafeMutablePointer<Float>, z: UnsafeMutablePointer<Float>?, squares: UnsafeMutablePointer<Float>
    }
}

/// Maximum-likelihood variance scale from held-out positive pairs (methods.md 1.1): with
/// μ(q) − μ(p) ~ N(0, c·(var(q) + var(p))) per dimension, ĉ is the mean over pairs and
/// dimensions of (μ_qd − μ_pd)² / (var_qd + var_pd). Accumulated block by block.
public struct VarianceScaleEstimator: Sendable {
    public private(set) var sum = 0.0
    public private(set) var count = 0
    public init() {}

    /// Adds pairs given by their means and UNSCALED variances (rows × D each).
    public mutating func add(queryMean mq: Matrix<Float>, queryVar vq: Matrix<Float>,
                             positiveMean mp: Matrix<Float>, positiveVar vp: Matrix<Float>) {
        precondition(mq.data.count == vq.data.count && mq.data.count == mp.data.count && mp.data.count == vp.data.count)
        for i in mq.data.indices {
            let diff = Double(mq.data[i]) - Double(mp.data[i])
            let v = Double(vq.data[i]) + Double(vp.data[i])
            if v > 0 { sum += diff * diff / v; count += 1 }
        }
    }

    /// ĉ, or nil before any pair.
    public var scale: Double? { count > 0 ? sum / Double(count) : nil }
}

/// How `normalize` transforms variances.
public enum VarianceNormalization: String, Sendable, CaseIterable {
    /// The diagonal of the delta-method covariance of μ/‖μ‖ (methods.md 1.1).
    case delta
    /// var/‖μ‖², the simpler option.
    case simple
}

/// Normalises each row's mean, u = μ/‖μ‖, and its variance (methods.md 1.1, "Normalisation"):
///
///     delta:  var_u,d = ( var_d (1 − 2 u_d²) + u_d² Σ_j u_j² var_j ) / ‖μ‖²
///     simple: var_u,d = var_d / ‖μ‖²
///
/// A zero row stays zero (mean and variance).
public func normalize(mean: inout Matrix<Float>, variance: inout Matrix<Float>?, method: VarianceNormalization = .delta) {
    let d = mean.cols, rows = mean.rows
    // Through pointers: the same arithmetic in the same order as element by element, without a
    // bounds and uniqueness check per element (they took most of emb-sim --paired's time).
    var none: [Float] = []
    mean.data.withUnsafeMutableBufferPointer { mb in
    withVarianceStorage(&variance, else: &none) { vb in
        for r in 0..<rows {
            let m = mb.baseAddress! + r * d
            var n2 = 0.0
            for k in 0..<d { n2 += Double(m[k]) * Double(m[k]) }
            guard n2 > 0 else { continue }
            let inv = 1 / n2.squareRoot()
            for k in 0..<d { m[k] = Float(Double(m[k]) * inv) }
            guard let vbase = vb.baseAddress, vb.count > 0 else { continue }
            let v = vbase + r * d
            switch method {
            case .simple:
                for k in 0..<d { v[k] = Float(Double(v[k]) / n2) }
            case .delta:
                var s = 0.0
                for k in 0..<d { let u = Double(m[k]); s += u * u * Double(v[k]) }
                for k in 0..<d {
                    let u = Double(m[k]), x = Double(v[k])
                    v[k] = Float((x * (1 - 2 * u * u) + u * u * s) / n2)
                }
            }
        }
    }}
}

/// `body` with the variance's storage, or with `none`'s (empty) when there is no variance.
private func withVarianceStorage(_ variance: inout Matrix<Float>?, else none: inout [Float],
                                 _ body: (UnsafeMutableBufferPointer<Float>) -> Void) {
    if variance != nil { variance!.data.withUnsafeMutableBufferPointer { body($0) } } else { none.withUnsafeMutableBufferPointer { body($0) } }
}

import Failure
import LinearAlgebra
import Probability
#if canImport(Glibc)
import Glibc
#endif

/// How emb-fuse chooses the per-row coefficients π_k (methods.md 1.2).
public enum FusionWeights: Sendable, Equatable {
    /// The paper: π_k(x) = softmax_k(−tr Σ_k(x) / T), tr Σ_k(x) = Σ_d var_kd(x).
    case uncertainty(temperature: Double)
    /// The public code's variant: π_k = softmax_k(Σ_d (1/var_kd) / T).
    case precision(temperature: Double)
    /// π_k = 1/K.
    case uniform
    /// User weights, the same for every row (used as given; normalise them yourself).
    case fixed([Double])
}

/// Per-row coefficients π (K values) from each model's variance row (methods.md 1.2).
public func fusionCoefficients(_ variances: [ArraySlice<Float>], weights: FusionWeights) -> [Double] {
    var pi = [Double](repeating: 0, count: variances.count)
    pi.withUnsafeMutableBufferPointer { out in
        fillCoefficients(out, weights: weights) { i, reciprocal in
            variances[i].withUnsafeBufferPointer { rowSum($0, reciprocal: reciprocal) }
        }
    }
    return pi
}

/// π of one row into `out` (K values), where `sum(i, reciprocal)` is Σ_d var_id, or Σ_d 1/var_id,
/// of model i's row: the one place where the modes of methods.md 1.2 are computed.
@inline(__always)
func fillCoefficients(_ out: UnsafeMutableBufferPointer<Double>, weights: FusionWeights, sum: (Int, Bool) -> Double) {
    let k = out.count
    switch weights {
    case .uniform:
        for i in 0..<k { out[i] = 1 / Double(k) }
    case .fixed(let w):
        precondition(w.count == k)
        for i in 0..<k { out[i] = w[i] }
    case .uncertainty(let t):
        // π = softmax(−tr Σ / T)
        for i in 0..<k { out[i] = -sum(i, false) / t }
        softmaxInPlace(out)
    case .precision(let t):
        // A zero variance is an infinite precision: those models share all the weight.
        for i in 0..<k { out[i] = sum(i, true) / t }
        softmaxInPlace(out)
    }
}

/// Σ v_d (or Σ 1/v_d) in Double, in eight lanes and then across them.
@inline(__always)
func rowSum(_ v: UnsafeBufferPointer<Float>, reciprocal: Bool) -> Double {
    var lanes = SIMD8<Double>()
    let whole = v.count / 8 * 8, base = UnsafeRawPointer(v.baseAddress!)
    var j = 0
    while j < whole {
        let x = SIMD8<Double>(base.loadUnaligned(fromByteOffset: 4 * j, as: SIMD8<Float>.self))
        lanes += reciprocal ? 1 / x : x
        j += 8
    }
    var s = lanes.sum()
    while j < v.count { s += reciprocal ? 1 / Double(v[j]) : Double(v[j]); j += 1 }
    return s
}

/// Fuses K probabilistic embeddings of the same rows (methods.md 1.2): the weighted sum of
/// independent Gaussians, μ = Σ_k π_k μ_k, var = Σ_k π_k² var_k, per row and dimension.
/// Returns the fused mean, variance and the coefficients (rows × K).
public func fuse(means: [Matrix<Float>], variances: [Matrix<Float>], weights: FusionWeights)
    -> (mean: Matrix<Float>, variance: Matrix<Float>, coefficients: Matrix<Float>) {
    let k = means.count
    precondition(k > 0 && variances.count == k)
    let n = means[0].rows, d = means[0].cols
    for i in 0..<k { precondition(means[i].rows == n && means[i].cols == d && variances[i].rows == n && variances[i].cols == d) }
    // Written whole below (the first model's terms are assigned), so left uninitialised.
    var mu = Matrix<Float>(rows: n, cols: d, data: .uninitializedOnHugePages(n * d))
    var v = Matrix<Float>(rows: n, cols: d, data: .uninitializedOnHugePages(n * d))
    var pi = Matrix<Float>(rows: n, cols: k, data: .uninitializedOnHugePages(n * k))
    withMatrixPointers(means) { m in
    withMatrixPointers(variances) { va in
    mu.data.withUnsafeMutableBufferPointer { mub in
    v.data.withUnsafeMutableBufferPointer { vb in
    pi.data.withUnsafeMutableBufferPointer { pib in
    withUnsafeTemporaryAllocation(of: Double.self, capacity: k) { coef in
        let mo = mub.baseAddress!, vo = vb.baseAddress!
        for r in 0..<n {
            let o = r * d
            fillCoefficients(coef, weights: weights) { i, reciprocal in
                rowSum(UnsafeBufferPointer(start: va[i] + o, count: d), reciprocal: reciprocal)
            }
            for i in 0..<k {
                pib[r * k + i] = Float(coef[i])
                let c = Float(coef[i]), c2 = Float(coef[i] * coef[i])
                let mi = m[i] + o, vi = va[i] + o
                if i == 0 {
                    for j in 0..<d { mo[o + j] = 0 + c * mi[j]; vo[o + j] = 0 + c2 * vi[j] }
                } else {
                    for j in 0..<d { mo[o + j] += c * mi[j]; vo[o + j] += c2 * vi[j] }
                }
            }
        }
    }}}}}}
    return (mu, v, pi)
}

/// `body` with the base addresses of the matrices' storage (they stay valid during the call).
private func withMatrixPointers<R>(_ ms: [Matrix<Float>], _ body: ([UnsafePointer<Float>]) -> R) -> R {
    func go(_ i: Int, _ acc: [UnsafePointer<Float>]) -> R {
        if i == ms.count { return body(acc) }
        return ms[i].data.withUnsafeBufferPointer { go(i + 1, acc + [$0.baseAddress!]) }
    }
    return go(0, [])
}

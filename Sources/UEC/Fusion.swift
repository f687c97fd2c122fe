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
    let k = variances.count
    switch weights {
    case .uniform:
        return Array(repeating: 1 / Double(k), count: k)
    case .fixed(let w):
        precondition(w.count == k)
        return w
    case .uncertainty(let t):
        return softmax(variances.map { v in -v.reduce(0.0) { $0 + Double($1) } / t })
    case .precision(let t):
        // A zero variance is an infinite precision: those models share all the weight.
        return softmax(variances.map { v in v.reduce(0.0) { $0 + 1 / Double($1) } / t })
    }
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
    var mu = Matrix<Float>(rows: n, cols: d), v = Matrix<Float>(rows: n, cols: d)
    var pi = Matrix<Float>(rows: n, cols: k)
    for r in 0..<n {
        let coef = fusionCoefficients(variances.map { $0.row(r) }, weights: weights)
        for i in 0..<k {
            pi.data[r * k + i] = Float(coef[i])
            let c = Float(coef[i]), c2 = Float(coef[i] * coef[i])
            let o = r * d
            for j in 0..<d {
                mu.data[o + j] += c * means[i].data[o + j]
                v.data[o + j] += c2 * variances[i].data[o + j]
            }
        }
    }
    return (mu, v, pi)
}

// When UEC's uncertainty is not informative (issue 13): figures the tools report so that a user
// can tell a signal from a number.
//
// With the identity adapter, var_d(x) = Σ_i V_W[d,i] e_i(x)² + V_b[d] depends on x only through
// e∘e: flipping the sign of any coordinate leaves the variance unchanged while the embedding
// changes completely. When moreover every Fisher entry is below λ, V_W ≈ 1/λ and the trace is
// nearly a constant times ‖e‖²: the variance then says no more than the embedding's norm, and
// fusion weights built from it are nearly per-model constants.

/// How much the data moved the diagonal posterior away from the prior.
public struct PosteriorDiagnostics: Sendable, Equatable {
    /// γ = Σ_j F_j / (F_j + λ): the effective number of parameters the data determine.
    public var gamma: Double
    /// How many parameters (Fisher entries) there are.
    public var parameters: Int
    /// The share of Fisher entries below λ (those whose posterior variance is mostly the prior's).
    public var shareBelowPrior: Double

    public init(fisher: [Double], priorPrecision lambda: Double) {
        var g = 0.0, below = 0
        for f in fisher {
            g += f / (f + lambda)
            if f < lambda { below += 1 }
        }
        gamma = g
        parameters = fisher.count
        shareBelowPrior = fisher.isEmpty ? 0 : Double(below) / Double(fisher.count)
    }

    /// True when the prior dominates (at least 90 % of the entries below λ).
    public var priorDominated: Bool { shareBelowPrior >= 0.9 }
}

/// The spread of fusion weights over rows: per model, the standard deviation of π_k(x) across
/// rows, accumulated block by block (Welford, float64).
public struct WeightSpread: Sendable {
    /// Below this mean per-model row std the weights count as "barely varying per row": they move
    /// by less than a hundredth around their mean, so a fixed weight per model does as well.
    public static let threshold = 0.01

    public private(set) var rows = 0
    private var mean: [Double]
    private var m2: [Double]

    public init(models: Int) {
        mean = Array(repeating: 0, count: models)
        m2 = Array(repeating: 0, count: models)
    }

    /// Adds rows of coefficients (rows × K).
    public mutating func add(_ pi: [Float], models k: Int) {
        precondition(k == mean.count && pi.count % max(k, 1) == 0)
        for r in 0..<(k == 0 ? 0 : pi.count / k) {
            rows += 1
            for i in 0..<k {
                let x = Double(pi[r * k + i]), delta = x - mean[i]
                mean[i] += delta / Double(rows)
                m2[i] += delta * (x - mean[i])
            }
        }
    }

    /// Per model, the mean weight over rows.
    public var meanWeight: [Double] { mean }
    /// Per model, the population standard deviation of its weight over rows.
    public var rowStd: [Double] { m2.map { rows > 0 ? ($0 / Double(rows)).squareRoot() : 0 } }
    /// The mean over models of `rowStd`.
    public var meanRowStd: Double { rowStd.isEmpty ? 0 : rowStd.reduce(0, +) / Double(rowStd.count) }
    /// True when the weights barely vary per row (mean row std below `threshold`).
    public var barelyVaries: Bool { rows > 1 && meanRowStd < WeightSpread.threshold }
}

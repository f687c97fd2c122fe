// Seeded bootstrap confidence intervals and numpy-compatible quantiles (methods.md section 3,
// "seeded bootstrap confidence intervals"; equal-mass bins). The generator is Probability's.

import Probability

/// The q-quantile (q in [0, 1]) of sorted values with numpy's default "linear" method,
/// reproducing numpy's arithmetic (virtual index (n−1)·q, its two-sided lerp).
public func numpyQuantile(sorted a: [Double], _ q: Double) -> Double {
    numpyQuantile(count: a.count, q) { a[$0] }
}

/// `numpyQuantile` of the n values a(0) ≤ … ≤ a(n − 1).
@inline(__always)
func numpyQuantile(count n: Int, _ q: Double, _ a: (Int) -> Double) -> Double {
    precondition(n > 0)
    let vi = Double(n - 1) * q
    if vi >= Double(n - 1) { return a(n - 1) }
    if vi <= 0 { return a(0) }
    let prev = Int(vi.rounded(.down))
    let gamma = vi - Double(prev)
    let lo = a(prev), hi = a(prev + 1)
    let diff = hi - lo
    return gamma >= 0.5 ? hi - diff * (1 - gamma) : lo + diff * gamma
}

/// The quantile levels of equal-mass bin edges as scikit-learn's calibration_curve forms them:
/// numpy.percentile(x, numpy.linspace(0, 1, n + 1) * 100), i.e. (linspace · 100) / 100.
public func percentileLevels(_ n: Int) -> [Double] {
    numpyLinspaceEdges(n).map { ($0 * 100) / 100 }
}

/// A confidence interval from bootstrap replicates: the percentile method.
public struct Interval: Sendable, Codable, Equatable {
    public var low: Double
    public var high: Double
}

/// Runs `replicates` bootstrap resamples of `n` rows. Each resample is given as a count per
/// row (how often the row was drawn) to `statistics`, which returns one value per metric.
/// Returns, per metric, the percentile interval at `level` (nil entries when a replicate gave nil,
/// or, with `skipUndefined`, when every replicate did: the others then make the interval).
public func bootstrapIntervals(rows n: Int, replicates: Int, seed: UInt64, level: Double = 0.95,
                               skipUndefined: Bool = false,
                               statistics: ([UInt32]) -> [Double?]) -> [Interval?] {
    var rng = SeededGenerator(seed: seed)
    var values: [[Double]] = []
    var valid: [Bool] = []
    var counts = [UInt32](repeating: 0, count: n)
    for _ in 0..<replicates {
        for i in 0..<n { counts[i] = 0 }
        for _ in 0..<n { counts[rng.below(n)] += 1 }
        let s = statistics(counts)
        if values.isEmpty {
            values = Array(repeating: [], count: s.count)
            valid = Array(repeating: true, count: s.count)
        }
        for (k, v) in s.enumerated() {
            if let v { values[k].append(v) } else if !skipUndefined { valid[k] = false }
        }
    }
    let alpha = (1 - level) / 2
    return values.indices.map { k in
        guard valid[k], !values[k].isEmpty else { return nil }
        let sorted = values[k].sorted()
        return Interval(low: numpyQuantile(sorted: sorted, alpha), high: numpyQuantile(sorted: sorted, 1 - alpha))
    }
}

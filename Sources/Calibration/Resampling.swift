// Seeded bootstrap confidence intervals and numpy-compatible quantiles (methods.md section 3,
// "seeded bootstrap confidence intervals"; equal-mass bins).

/// xoshiro256** seeded through SplitMix64: the same seed gives the same draws on every machine.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var s: (UInt64, UInt64, UInt64, UInt64)

    public init(seed: UInt64) {
        var x = seed
        func splitmix() -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s = (splitmix(), splitmix(), splitmix(), splitmix())
    }

    public mutating func next() -> UInt64 {
        let result = ((s.1 &* 5) << 7 | (s.1 &* 5) >> 57) &* 9
        let t = s.1 << 17
        s.2 ^= s.0; s.3 ^= s.1; s.1 ^= s.2; s.0 ^= s.3
        s.2 ^= t
        s.3 = (s.3 << 45) | (s.3 >> 19)
        return result
    }

    /// A uniform integer in 0..<n (Lemire's multiply-shift with rejection: unbiased).
    @inline(__always)
    public mutating func below(_ n: Int) -> Int {
        let bound = UInt64(n)
        var m = next().multipliedFullWidth(by: bound)
        if m.low < bound {
            let threshold = (0 &- bound) % bound
            while m.low < threshold { m = next().multipliedFullWidth(by: bound) }
        }
        return Int(m.high)
    }
}

/// The q-quantile (q in [0, 1]) of sorted values with numpy's default "linear" method,
/// reproducing numpy's arithmetic (virtual index (n−1)·q, its two-sided lerp).
public func numpyQuantile(sorted a: [Double], _ q: Double) -> Double {
    let n = a.count
    precondition(n > 0)
    let vi = Double(n - 1) * q
    if vi >= Double(n - 1) { return a[n - 1] }
    if vi <= 0 { return a[0] }
    let prev = Int(vi.rounded(.down))
    let gamma = vi - Double(prev)
    let lo = a[prev], hi = a[prev + 1]
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
/// Returns, per metric, the percentile interval at `level` (nil entries when a replicate gave nil).
public func bootstrapIntervals(rows n: Int, replicates: Int, seed: UInt64, level: Double = 0.95,
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
            if let v { values[k].append(v) } else { valid[k] = false }
        }
    }
    let alpha = (1 - level) / 2
    return values.indices.map { k in
        guard valid[k], !values[k].isEmpty else { return nil }
        let sorted = values[k].sorted()
        return Interval(low: numpyQuantile(sorted: sorted, alpha), high: numpyQuantile(sorted: sorted, 1 - alpha))
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// The one place where probabilities are made from scores and summarised (softmax, log-sum-exp,
// entropy, mutual information, NLL), and where seeded random numbers come from (Random.swift).
// UEC, SVE, Calibration and the encoder's attention all use these.

/// Softmax of one row in place, by log-sum-exp: the row's maximum is subtracted first, so no exp
/// overflows; the sum is accumulated in order and each term divided by it. Scores of +∞ (an
/// infinite precision, say) share all the probability equally.
@inlinable
public func softmaxInPlace(_ row: UnsafeMutableBufferPointer<Double>) {
    guard let m = row.max() else { return }
    if m == .infinity {
        let n = Double(row.filter { $0 == .infinity }.count)
        for i in row.indices { row[i] = row[i] == .infinity ? 1 / n : 0 }
        return
    }
    var s = 0.0
    for i in row.indices { let e = exp(row[i] - m); row[i] = e; s += e }
    for i in row.indices { row[i] /= s }
}

/// Softmax of one row of Float in place (sum accumulated in Double).
@inlinable
public func softmaxInPlace(_ row: UnsafeMutableBufferPointer<Float>) {
    guard let m = row.max() else { return }
    var s = 0.0
    for i in row.indices { let e = expf(row[i] - m); row[i] = e; s += Double(e) }
    let inv = Float(1 / s)
    for i in row.indices { row[i] *= inv }
}

/// Softmax of one row, as a new array.
@inlinable
public func softmax(_ x: [Double]) -> [Double] {
    var p = x
    p.withUnsafeMutableBufferPointer { softmaxInPlace($0) }
    return p
}

/// Softmax of each row of a row-major rows × width array, in place.
@inlinable
public func softmaxRows(_ v: inout [Double], width: Int) {
    precondition(width > 0 && v.count % width == 0)
    v.withUnsafeMutableBufferPointer { b in
        var o = 0
        while o < b.count {
            softmaxInPlace(UnsafeMutableBufferPointer(rebasing: b[o..<(o + width)]))
            o += width
        }
    }
}

/// log Σ exp(x_i), stable: m + log Σ exp(x_i − m) with m the maximum.
@inlinable
public func logSumExp(_ x: UnsafeBufferPointer<Double>) -> Double {
    guard let m = x.max() else { return -.infinity }
    if m == -.infinity { return -.infinity }
    var s = 0.0
    for v in x { s += exp(v - m) }
    return m + log(s)
}

/// Shannon entropy −Σ p ln p in nats, with 0 · ln 0 = 0; summed in Double whatever the input type.
@inlinable
public func entropy<C: Collection>(_ p: C) -> Double where C.Element: BinaryFloatingPoint {
    var h = 0.0
    for v in p where v > 0 { let d = Double(v); h -= d * log(d) }
    return h
}

/// The mutual information between prediction and ensemble member (epistemic uncertainty):
/// H[p̄] − (1/M) Σ_m H[p_m], clamped at 0 (rounding can make it slightly negative).
@inlinable
public func mutualInformation(entropyOfMean h: Double, expectedEntropy e: Double) -> Double {
    max(0, h - e)
}

/// The machine epsilon of a floating-point type, as numpy.finfo(dtype).eps: the NLL clip.
@inlinable
public func machineEpsilon<T: BinaryFloatingPoint>(_: T.Type) -> Double { Double(T.ulpOfOne) }

/// The negative log-likelihood −ln p of the probability given to the true class, with THE clip
/// of the toolbox: p is clipped to [eps, 1 − eps], eps the machine epsilon of the dtype the
/// probabilities are held in (Float: 2⁻²³ ≈ 1.19e−7; Double: 2⁻⁵² ≈ 2.22e−16), like
/// scikit-learn's log_loss. Every NLL the toolbox reports (sve-train -v, calib-metrics, the
/// temperature fit) goes through here, so the same predictions give the same NLL.
@inlinable
public func negativeLogLikelihood(_ p: Double, eps: Double) -> Double {
    -log(min(max(p, eps), 1 - eps))
}

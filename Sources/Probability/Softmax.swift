import Foundation

// The one place where probabilities are made from scores and summarised (softmax, entropy, mutual
// information, NLL). UEC, SVE, Calibration and the encoder's attention all use these.

/// Softmax of one row in place, by log-sum-exp (the row's maximum is subtracted first, so no
/// exp overflows). Accumulates in Double.
@inlinable
public func softmaxInPlace(_ row: UnsafeMutableBufferPointer<Double>) {
    guard let m = row.max() else { return }
    var s = 0.0
    for i in row.indices { let e = exp(row[i] - m); row[i] = e; s += e }
    let inv = 1 / s
    for i in row.indices { row[i] *= inv }
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

/// log Σ exp(x_i), stable.
@inlinable
public func logSumExp(_ x: UnsafeBufferPointer<Double>) -> Double {
    guard let m = x.max() else { return -.infinity }
    if m == -.infinity { return -.infinity }
    var s = 0.0
    for v in x { s += exp(v - m) }
    return m + log(s)
}

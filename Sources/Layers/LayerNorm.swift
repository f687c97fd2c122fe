import LinearAlgebra

/// Layer normalisation over each row: y = (x − mean) / sqrt(var + eps) ∘ weight + bias, with the
/// biased variance (as PyTorch). Mean and variance are accumulated in Double.
public struct LayerNorm<T: BLASScalar>: Sendable {
    public var weight: [T]
    public var bias: [T]
    public var eps: T

    public init(weight: [T], bias: [T], eps: T) {
        precondition(weight.count == bias.count, "LayerNorm: weight has \(weight.count) values, bias \(bias.count)")
        self.weight = weight; self.bias = bias; self.eps = eps
    }

    public var features: Int { weight.count }

    /// What backward needs: the normalised input x̂ and 1/σ of each row.
    public struct Cache: Sendable {
        public var xhat: Matrix<T>
        public var invStd: [T]
        public init(xhat: Matrix<T> = Matrix(rows: 0, cols: 0), invStd: [T] = []) { self.xhat = xhat; self.invStd = invStd }
    }

    @inlinable
    public func forward(_ x: Matrix<T>) -> Matrix<T> {
        var y = x
        forwardInPlace(&y)
        return y
    }

    @inlinable
    public func forwardInPlace(_ x: inout Matrix<T>) {
        precondition(x.cols == features, "LayerNorm: input has \(x.cols) features, expected \(features)")
        let d = features
        x.data.withUnsafeMutableBufferPointer { p in
            weight.withUnsafeBufferPointer { w in
                bias.withUnsafeBufferPointer { b in
                    for r in 0..<x.rows {
                        LayerNorm.normalize(p.baseAddress! + r * d, d, w.baseAddress!, b.baseAddress!, eps, xhat: nil)
                    }
                }
            }
        }
    }

    /// forward, keeping x̂ and 1/σ for backward.
    @inlinable
    public func forward(_ x: Matrix<T>, cache: inout Cache) -> Matrix<T> {
        precondition(x.cols == features, "LayerNorm: input has \(x.cols) features, expected \(features)")
        let d = features
        var y = x
        var xhat = Matrix<T>(rows: x.rows, cols: d)
        var inv = [T](repeating: 0, count: x.rows)
        y.data.withUnsafeMutableBufferPointer { p in
            xhat.data.withUnsafeMutableBufferPointer { h in
                weight.withUnsafeBufferPointer { w in
                    bias.withUnsafeBufferPointer { b in
                        for r in 0..<x.rows {
                            inv[r] = LayerNorm.normalize(p.baseAddress! + r * d, d, w.baseAddress!, b.baseAddress!, eps,
                                                         xhat: h.baseAddress! + r * d)
                        }
                    }
                }
            }
        }
        cache = Cache(xhat: xhat, invStd: inv)
        return y
    }

    /// Normalises one row of d values in place (writing x̂ too when asked); returns 1/σ. On raw
    /// storage, for callers that keep several LayerNorms' parameters in one buffer (ensembles).
    @inlinable @discardableResult
    public static func normalize(_ p: UnsafeMutablePointer<T>, _ d: Int, _ w: UnsafePointer<T>, _ b: UnsafePointer<T>, _ eps: T,
                                 xhat: UnsafeMutablePointer<T>?) -> T {
        var mean = 0.0
        for j in 0..<d { mean += Double(p[j]) }
        mean /= Double(d)
        var v = 0.0
        for j in 0..<d { let c = Double(p[j]) - mean; v += c * c }
        v /= Double(d)
        let inv = 1 / (v + Double(eps)).squareRoot()
        let m = T(mean), s = T(inv)
        if let xhat {
            for j in 0..<d { let h = (p[j] - m) * s; xhat[j] = h; p[j] = h * w[j] + b[j] }
        } else {
            for j in 0..<d { p[j] = (p[j] - m) * s * w[j] + b[j] }
        }
        return s
    }
}

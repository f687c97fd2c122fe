import CElementwise
import LinearAlgebra

/// Layer normalisation over each row: y = (x − mean) / sqrt(var + eps) ∘ weight + bias, with the
/// biased variance (as PyTorch). Mean, variance and x̂ are computed in Double, x̂ then rounded to T
/// (the arithmetic SVE has always trained with: its models stay byte-identical).
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
                    LayerNorm.normalize(rows: x.rows, p.baseAddress!, d, w.baseAddress!, b.baseAddress!, eps, xhat: nil, invStd: nil)
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
                        inv.withUnsafeMutableBufferPointer { pi in
                            LayerNorm.normalize(rows: x.rows, p.baseAddress!, d, w.baseAddress!, b.baseAddress!, eps,
                                                xhat: h.baseAddress!, invStd: pi.baseAddress!)
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
        for j in 0..<d {
            let h = T((Double(p[j]) - mean) * inv)
            xhat?[j] = h
            p[j] = h * w[j] + b[j]
        }
        return T(inv)
    }

    /// `normalize` of `rows` consecutive rows of d values that share w and b, writing x̂ (rows × d)
    /// and 1/σ of each row when asked: the same bits, Float's in C (CElementwise) with several
    /// rows' sums interleaved (each row's sum is a chain of additions in index order).
    public static func normalize(rows: Int, _ p: UnsafeMutablePointer<T>, _ d: Int, _ w: UnsafePointer<T>, _ b: UnsafePointer<T>,
                                 _ eps: T, xhat: UnsafeMutablePointer<T>?, invStd: UnsafeMutablePointer<T>?) {
        guard rows > 0 else { return }
        if T.self == Float.self {
            func f(_ q: UnsafePointer<T>) -> UnsafePointer<Float> { UnsafeRawPointer(q).assumingMemoryBound(to: Float.self) }
            func f(_ q: UnsafeMutablePointer<T>) -> UnsafeMutablePointer<Float> { UnsafeMutableRawPointer(q).assumingMemoryBound(to: Float.self) }
            celem_layer_norm_f32(f(p), rows, d, f(w), f(b), unsafeBitCast(eps, to: Float.self), xhat.map(f), invStd.map(f))
        } else {
            for r in 0..<rows {
                let inv = normalize(p + r * d, d, w, b, eps, xhat: xhat.map { $0 + r * d })
                invStd?[r] = inv
            }
        }
    }

    /// Backward of `forward(_:cache:)`: given dL/dy, accumulates dL/dweight += Σ dy ∘ x̂ and
    /// dL/dbias += Σ dy, and returns dL/dx.
    public func backward(_ dy: Matrix<T>, cache: Cache, weightGrad: inout [T], biasGrad: inout [T]) -> Matrix<T> {
        let d = features, rows = dy.rows
        precondition(dy.cols == d && cache.xhat.rows == rows && cache.invStd.count == rows)
        precondition(weightGrad.count == d && biasGrad.count == d)
        var dx = Matrix<T>(rows: rows, cols: d)
        dy.data.withUnsafeBufferPointer { pd in
            cache.xhat.data.withUnsafeBufferPointer { ph in
                weight.withUnsafeBufferPointer { w in
                    weightGrad.withUnsafeMutableBufferPointer { gw in
                        biasGrad.withUnsafeMutableBufferPointer { gb in
                            dx.data.withUnsafeMutableBufferPointer { px in
                                for r in 0..<rows {
                                    let o = r * d
                                    LayerNorm.accumulateGradients(dy: pd.baseAddress! + o, xhat: ph.baseAddress! + o, d,
                                                                  weightGrad: gw.baseAddress!, biasGrad: gb.baseAddress!)
                                    LayerNorm.backwardRow(dy: pd.baseAddress! + o, xhat: ph.baseAddress! + o, invStd: cache.invStd[r],
                                                          d, weight: w.baseAddress!, dx: px.baseAddress! + o)
                                }
                            }
                        }
                    }
                }
            }
        }
        return dx
    }

    /// dL/dweight += dy ∘ x̂ and dL/dbias += dy for one row.
    @inlinable
    public static func accumulateGradients(dy: UnsafePointer<T>, xhat: UnsafePointer<T>, _ d: Int,
                                           weightGrad: UnsafeMutablePointer<T>, biasGrad: UnsafeMutablePointer<T>) {
        for j in 0..<d {
            weightGrad[j] += dy[j] * xhat[j]
            biasGrad[j] += dy[j]
        }
    }

    /// dL/dx of one row: (1/σ) (g − mean(g) − x̂ mean(g ∘ x̂)) with g = dy ∘ weight, in Double.
    @inlinable
    public static func backwardRow(dy: UnsafePointer<T>, xhat: UnsafePointer<T>, invStd: T, _ d: Int,
                                   weight w: UnsafePointer<T>, dx: UnsafeMutablePointer<T>) {
        var mean1 = 0.0, mean2 = 0.0
        for j in 0..<d {
            let g = Double(dy[j] * w[j])
            mean1 += g; mean2 += g * Double(xhat[j])
        }
        mean1 /= Double(d); mean2 /= Double(d)
        let s = Double(invStd)
        for j in 0..<d {
            let g = Double(dy[j] * w[j])
            dx[j] = T(s * (g - mean1 - Double(xhat[j]) * mean2))
        }
    }
}


import LinearAlgebra

// The building blocks a transformer layer is made of. Each type holds its own parameters and has a
// `forward`; the ones whose backward needs more than the input return what it needs (a cache) when
// asked, so that a `backward` can be added beside each `forward` without a second implementation.
// Activations are row-major matrices: one row per token (or per example), features along the row.

/// A dense layer y = x Wᵀ + b, with W stored out × in as PyTorch and safetensors store it.
/// Every product goes through cblas (sgemm/dgemm).
public struct Linear<T: BLASScalar>: Sendable {
    /// out × in.
    public var weight: Matrix<T>
    /// out values, or empty for a layer without bias.
    public var bias: [T]

    public init(weight: Matrix<T>, bias: [T] = []) {
        precondition(bias.isEmpty || bias.count == weight.rows, "Linear: bias has \(bias.count) values for \(weight.rows) outputs")
        self.weight = weight; self.bias = bias
    }

    public var inFeatures: Int { weight.cols }
    public var outFeatures: Int { weight.rows }

    /// x (rows × in) → rows × out.
    @inlinable
    public func forward(_ x: Matrix<T>) -> Matrix<T> {
        var y = Matrix<T>(rows: x.rows, cols: outFeatures)
        forward(x, into: &y)
        return y
    }

    /// y = x Wᵀ + b into an existing rows × out matrix.
    @inlinable
    public func forward(_ x: Matrix<T>, into y: inout Matrix<T>) {
        precondition(x.cols == inFeatures, "Linear: input has \(x.cols) features, expected \(inFeatures)")
        precondition(y.rows == x.rows && y.cols == outFeatures, "Linear: output is \(y.rows)×\(y.cols), expected \(x.rows)×\(outFeatures)")
        x.data.withUnsafeBufferPointer { px in
            weight.data.withUnsafeBufferPointer { pw in
                bias.withUnsafeBufferPointer { pb in
                    y.data.withUnsafeMutableBufferPointer { py in
                        Linear.apply(rows: x.rows, inFeatures: inFeatures, outFeatures: outFeatures,
                                     x: px.baseAddress!, ldx: inFeatures, weight: pw.baseAddress!,
                                     bias: pb.isEmpty ? nil : pb.baseAddress!, y: py.baseAddress!, ldy: outFeatures)
                    }
                }
            }
        }
    }

    /// The kernel on raw storage, for callers that keep several layers' weights in one buffer
    /// (ensembles) or write into a slice of a wider matrix: Y = X Wᵀ (+ b on every row).
    /// The bias is broadcast into Y first, then one GEMM accumulates onto it.
    @inlinable
    public static func apply(rows: Int, inFeatures: Int, outFeatures: Int,
                             x: UnsafePointer<T>, ldx: Int, weight: UnsafePointer<T>,
                             bias: UnsafePointer<T>?, y: UnsafeMutablePointer<T>, ldy: Int) {
        if rows == 0 || outFeatures == 0 { return }
        if let bias {
            for r in 0..<rows { (y + r * ldy).update(from: bias, count: outFeatures) }
        }
        if inFeatures == 0 {
            if bias == nil { for r in 0..<rows { (y + r * ldy).update(repeating: 0, count: outFeatures) } }
            return
        }
        T.gemm(false, true, rows, outFeatures, inFeatures, 1, x, ldx, weight, inFeatures,
               bias == nil ? 0 : 1, y, ldy)
    }

    /// Backward of `forward`: given dL/dy (rows × out) and the input x, accumulates dL/dW += dyᵀ x
    /// and dL/db += Σ_rows dy, and returns dL/dx = dy W (rows × in).
    public func backward(_ dy: Matrix<T>, input x: Matrix<T>, weightGrad: inout Matrix<T>, biasGrad: inout [T]) -> Matrix<T> {
        precondition(dy.rows == x.rows && dy.cols == outFeatures && x.cols == inFeatures)
        precondition(weightGrad.rows == outFeatures && weightGrad.cols == inFeatures)
        var dx = Matrix<T>(rows: x.rows, cols: inFeatures)
        if x.rows == 0 { return dx }
        dy.data.withUnsafeBufferPointer { pd in
            x.data.withUnsafeBufferPointer { px in
                weightGrad.data.withUnsafeMutableBufferPointer { gw in
                    Linear.accumulateWeightGradient(rows: x.rows, inFeatures: inFeatures, outFeatures: outFeatures,
                                                    dy: pd.baseAddress!, ldy: outFeatures, x: px.baseAddress!, ldx: inFeatures,
                                                    weightGrad: gw.baseAddress!)
                }
            }
            weight.data.withUnsafeBufferPointer { pw in
                dx.data.withUnsafeMutableBufferPointer { px in
                    Linear.backwardInput(rows: x.rows, inFeatures: inFeatures, outFeatures: outFeatures, dy: pd.baseAddress!,
                                         ldy: outFeatures, weight: pw.baseAddress!, dx: px.baseAddress!, ldx: inFeatures)
                }
            }
        }
        if !bias.isEmpty {
            if biasGrad.isEmpty { biasGrad = [T](repeating: 0, count: outFeatures) }
            for r in 0..<dy.rows { for j in 0..<outFeatures { biasGrad[j] += dy.data[r * outFeatures + j] } }
        }
        return dx
    }

    /// The input gradient on raw storage: dX (rows × in) = dY (rows × out) · W (out × in).
    @inlinable
    public static func backwardInput(rows: Int, inFeatures: Int, outFeatures: Int, dy: UnsafePointer<T>, ldy: Int,
                                     weight: UnsafePointer<T>, dx: UnsafeMutablePointer<T>, ldx: Int) {
        if rows == 0 || inFeatures == 0 { return }
        if outFeatures == 0 {
            for r in 0..<rows { (dx + r * ldx).update(repeating: 0, count: inFeatures) }
            return
        }
        T.gemm(false, false, rows, inFeatures, outFeatures, 1, dy, ldy, weight, inFeatures, 0, dx, ldx)
    }

    /// The weight gradient on raw storage, accumulated: dW (out × in) += dYᵀ · X.
    @inlinable
    public static func accumulateWeightGradient(rows: Int, inFeatures: Int, outFeatures: Int, dy: UnsafePointer<T>, ldy: Int,
                                                x: UnsafePointer<T>, ldx: Int, weightGrad: UnsafeMutablePointer<T>) {
        if rows == 0 || inFeatures == 0 || outFeatures == 0 { return }
        T.gemm(true, false, outFeatures, inFeatures, rows, 1, dy, ldy, x, ldx, 1, weightGrad, inFeatures)
    }
}

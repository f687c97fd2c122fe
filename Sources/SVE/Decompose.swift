import LinearAlgebra

/// One pretrained linear layer in its SVD basis (methods.md 2.1): W = U diag(S) Vᵀ, with the
/// pretrained bias kept. U is out×k, S has k values (descending), Vᵀ is k×in.
public struct LayerBasis: Sendable {
    public var u: Matrix<Float>
    public var s: [Float]
    public var vt: Matrix<Float>
    public var bias: [Float]

    public init(u: Matrix<Float>, s: [Float], vt: Matrix<Float>, bias: [Float]) throws {
        guard u.cols == s.count, vt.rows == s.count else {
            throw SVEError.shape("basis: U is \(u.rows)×\(u.cols), S has \(s.count) values, Vt is \(vt.rows)×\(vt.cols): the rank does not agree")
        }
        guard bias.count == u.rows else {
            throw SVEError.shape("basis: bias has \(bias.count) values, the layer has \(u.rows) outputs")
        }
        self.u = u; self.s = s; self.vt = vt; self.bias = bias
    }

    public var outDim: Int { u.rows }
    public var inDim: Int { vt.cols }
    public var rank: Int { s.count }

    /// U diag(S) Vᵀ: the (possibly truncated) weight.
    public func weight() -> Matrix<Float> {
        var us = u
        for i in 0..<us.rows { for j in 0..<us.cols { us.data[i * us.cols + j] *= s[j] } }
        return matmul(us, vt)
    }
}

/// Thin SVD of a weight W (out×in) by LAPACK gesdd (jobz 'S'), computed in float64 and stored
/// in float32, optionally truncated to `rank` (methods.md 2.1; truncation is an extension).
/// Returns the basis and the relative reconstruction error ‖W − U diag(S) Vᵀ‖_F / ‖W‖_F
/// (measured in float64 against the float32 factors that are stored).
public func decompose(weight w: Matrix<Float>, bias: [Float]?, rank: Int? = nil) throws -> (basis: LayerBasis, relativeError: Double) {
    guard w.rows > 0, w.cols > 0 else { throw SVEError.shape("weight is \(w.rows)×\(w.cols): nothing to decompose") }
    if let b = bias, b.count != w.rows {
        throw SVEError.shape("bias has \(b.count) values but the weight has \(w.rows) rows (out×in)")
    }
    if w.data.contains(where: { !$0.isFinite }) { throw SVEError.data("weight holds NaN or infinity") }
    let wd = Matrix<Double>(rows: w.rows, cols: w.cols, data: w.data.map(Double.init))
    let (u, s, vt) = try svd(wd)
    let k = min(rank ?? s.count, s.count)
    guard k >= 1 else { throw SVEError.shape("rank must be at least 1") }
    var uk = Matrix<Float>(rows: u.rows, cols: k)
    for i in 0..<u.rows { for j in 0..<k { uk.data[i * k + j] = Float(u.data[i * u.cols + j]) } }
    let vtk = Matrix<Float>(rows: k, cols: vt.cols, data: vt.data[0 ..< k * vt.cols].map(Float.init))
    let basis = try LayerBasis(u: uk, s: s[0..<k].map(Float.init), vt: vtk, bias: bias ?? [Float](repeating: 0, count: w.rows))
    // Error of the stored float32 factors, in float64.
    var us = Matrix<Double>(rows: uk.rows, cols: k, data: uk.data.map(Double.init))
    for i in 0..<us.rows { for j in 0..<k { us.data[i * k + j] *= Double(basis.s[j]) } }
    let rec = matmul(us, Matrix<Double>(rows: k, cols: vtk.cols, data: vtk.data.map(Double.init)))
    var num = 0.0, den = 0.0
    for i in wd.data.indices {
        let d = wd.data[i] - rec.data[i]
        num += d * d; den += wd.data[i] * wd.data[i]
    }
    return (basis, den > 0 ? (num / den).squareRoot() : num.squareRoot())
}

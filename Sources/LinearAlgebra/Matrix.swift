import CBLAS
import Failure

/// A dense row-major matrix of Float or Double: the one matrix type the method libraries
/// share. Storage is a plain array so that callers can fill it without copies.
public struct Matrix<T: BLASScalar>: Equatable, Sendable {
    public var rows: Int
    public var cols: Int
    public var data: [T]

    public init(rows: Int, cols: Int, data: [T]) {
        precondition(data.count == rows * cols, "matrix data has \(data.count) elements, expected \(rows)×\(cols)")
        self.rows = rows; self.cols = cols; self.data = data
    }

    public init(rows: Int, cols: Int, repeating v: T = 0) {
        self.init(rows: rows, cols: cols, data: Array(repeating: v, count: rows * cols))
    }

    /// A rows × cols matrix whose elements are not initialised: only for an output that is then
    /// written in full before it is read (a GEMM with β = 0 writes every element, reading none).
    public init(uninitializedRows rows: Int, cols: Int) {
        let n = rows * cols
        self.init(rows: rows, cols: cols, data: [T](unsafeUninitializedCapacity: n) { _, count in count = n })
    }

    public subscript(r: Int, c: Int) -> T {
        get { data[r * cols + c] }
        set { data[r * cols + c] = newValue }
    }

    /// Row `r` as an array.
    public func row(_ r: Int) -> ArraySlice<T> { data[r * cols ..< (r + 1) * cols] }

    /// Rows `range` as a new matrix.
    public func rows(_ range: Range<Int>) -> Matrix {
        Matrix(rows: range.count, cols: cols, data: Array(data[range.lowerBound * cols ..< range.upperBound * cols]))
    }
}

/// Float and Double, with their BLAS/LAPACK entry points.
public protocol BLASScalar: BinaryFloatingPoint, Sendable {
    static func gemm(_ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Self,
                     _ a: UnsafePointer<Self>, _ lda: Int, _ b: UnsafePointer<Self>, _ ldb: Int,
                     _ beta: Self, _ c: UnsafeMutablePointer<Self>, _ ldc: Int)
    static func gesdd(_ m: Int, _ n: Int, _ a: UnsafeMutablePointer<Self>, _ s: UnsafeMutablePointer<Self>,
                      _ u: UnsafeMutablePointer<Self>, _ vt: UnsafeMutablePointer<Self>) -> Int32
}

/// `values` as an array of T: the array itself for Float (no copy), converted in one specialised
/// loop for Double. Generic code that wrote `values.map { T($0) }` converted element by element
/// through the generic initialiser (sve-predict spent half of its start-up there).
@inlinable
public func converted<T: BLASScalar>(_ values: [Float], to: T.Type = T.self) -> [T] {
    if T.self == Float.self { return unsafeBitCast(values, to: [T].self) }
    if T.self == Double.self { return unsafeBitCast(values.map { Double($0) }, to: [T].self) }
    return values.map { T($0) }
}

/// `values` as Float: the array itself for Float, converted in one specialised loop for Double.
@inlinable
public func asFloats<T: BLASScalar>(_ values: [T]) -> [Float] {
    if T.self == Float.self { return unsafeBitCast(values, to: [Float].self) }
    if T.self == Double.self { return unsafeBitCast(values, to: [Double].self).map { Float($0) } }
    return values.map { Float($0) }
}

extension Float: BLASScalar {
    public static func gemm(_ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Float,
                            _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
                            _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
        BLASThreading.gemm(m, n, k) {
            blas_sgemm(transA ? 1 : 0, transB ? 1 : 0, Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb),
                        beta, c, Int32(ldc))
        }
    }
    public static func gesdd(_ m: Int, _ n: Int, _ a: UnsafeMutablePointer<Float>, _ s: UnsafeMutablePointer<Float>,
                             _ u: UnsafeMutablePointer<Float>, _ vt: UnsafeMutablePointer<Float>) -> Int32 {
        let k = min(m, n)
        return blas_sgesdd(Int32(m), Int32(n), a, Int32(n), s, u, Int32(k), vt, Int32(n))
    }
}

extension Double: BLASScalar {
    public static func gemm(_ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Double,
                            _ a: UnsafePointer<Double>, _ lda: Int, _ b: UnsafePointer<Double>, _ ldb: Int,
                            _ beta: Double, _ c: UnsafeMutablePointer<Double>, _ ldc: Int) {
        BLASThreading.gemm(m, n, k) {
            blas_dgemm(transA ? 1 : 0, transB ? 1 : 0, Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb),
                        beta, c, Int32(ldc))
        }
    }
    public static func gesdd(_ m: Int, _ n: Int, _ a: UnsafeMutablePointer<Double>, _ s: UnsafeMutablePointer<Double>,
                             _ u: UnsafeMutablePointer<Double>, _ vt: UnsafeMutablePointer<Double>) -> Int32 {
        let k = min(m, n)
        return blas_dgesdd(Int32(m), Int32(n), a, Int32(n), s, u, Int32(k), vt, Int32(n))
    }
}

/// C = alpha · op(A) · op(B) + beta · C, with op = transpose when asked. Shapes are checked.
public func gemm<T: BLASScalar>(_ a: Matrix<T>, transA: Bool = false, _ b: Matrix<T>, transB: Bool = false,
                                alpha: T = 1, beta: T = 0, into c: inout Matrix<T>) {
    let m = transA ? a.cols : a.rows, k = transA ? a.rows : a.cols
    let kb = transB ? b.cols : b.rows, n = transB ? b.rows : b.cols
    precondition(k == kb, "gemm: inner dimensions \(k) and \(kb) differ")
    precondition(c.rows == m && c.cols == n, "gemm: output is \(c.rows)×\(c.cols), expected \(m)×\(n)")
    if m == 0 || n == 0 { return }
    if k == 0 {
        for i in c.data.indices { c.data[i] = beta == 0 ? 0 : beta * c.data[i] }
        return
    }
    a.data.withUnsafeBufferPointer { pa in
        b.data.withUnsafeBufferPointer { pb in
            c.data.withUnsafeMutableBufferPointer { pc in
                T.gemm(transA, transB, m, n, k, alpha, pa.baseAddress!, a.cols, pb.baseAddress!, b.cols,
                       beta, pc.baseAddress!, n)
            }
        }
    }
}

/// op(A) · op(B) as a new matrix.
public func matmul<T: BLASScalar>(_ a: Matrix<T>, transA: Bool = false, _ b: Matrix<T>, transB: Bool = false) -> Matrix<T> {
    var c = Matrix<T>(rows: transA ? a.cols : a.rows, cols: transB ? b.rows : b.cols)
    gemm(a, transA: transA, b, transB: transB, into: &c)
    return c
}

/// Why a LAPACK routine failed: a routine that does not converge was given a matrix it cannot
/// handle (bad data); an invalid argument is a bug of ours.
public struct LinearAlgebraError: KindedError, CustomStringConvertible, Sendable {
    public let kind: FailureKind
    public let description: String
    public init(kind: FailureKind, description: String) { self.kind = kind; self.description = description }
    public var message: String { description }
}

/// Thin SVD A = U diag(S) Vᵀ (LAPACK gesdd, jobz 'S'): U is m×k, S has k values in
/// descending order, Vᵀ is k×n, k = min(m, n).
public func svd<T: BLASScalar>(_ a: Matrix<T>) throws -> (u: Matrix<T>, s: [T], vt: Matrix<T>) {
    let m = a.rows, n = a.cols, k = min(m, n)
    var work = a.data
    var s = [T](repeating: 0, count: k)
    var u = Matrix<T>(rows: m, cols: k)
    var vt = Matrix<T>(rows: k, cols: n)
    if k == 0 { return (u, s, vt) }
    let info = work.withUnsafeMutableBufferPointer { pa in
        s.withUnsafeMutableBufferPointer { ps in
            u.data.withUnsafeMutableBufferPointer { pu in
                vt.data.withUnsafeMutableBufferPointer { pv in
                    T.gesdd(m, n, pa.baseAddress!, ps.baseAddress!, pu.baseAddress!, pv.baseAddress!)
                }
            }
        }
    }
    if info < 0 { throw LinearAlgebraError(kind: .internalError, description: "gesdd: argument \(-info) is invalid") }
    if info > 0 {
        throw LinearAlgebraError(kind: .badData, description: "the SVD did not converge (LAPACK gesdd, \(info) superdiagonals): the matrix is too ill-conditioned")
    }
    return (u, s, vt)
}

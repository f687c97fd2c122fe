#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CElementwise
import LinearAlgebra

/// The exact GELU BERT uses, x · Φ(x) = x · ½(1 + erf(x/√2)) (not the tanh approximation).
/// In single precision erf is a rational approximation (fastErf) in loops at the CPU's vector
/// width; in double precision it is the C library's erf.
public struct GELU<T: BLASScalar>: Sendable {
    public init() {}

    @inlinable
    public func forward(_ x: Matrix<T>) -> Matrix<T> {
        var y = x
        forwardInPlace(&y)
        return y
    }

    @inlinable
    public func forwardInPlace(_ x: inout Matrix<T>) {
        x.data.withUnsafeMutableBufferPointer { GELU.apply($0) }
    }

    /// forward, writing GELU'(x) = Φ(x) + x φ(x) into `derivative` for backward.
    @inlinable
    public func forwardInPlace(_ x: inout Matrix<T>, derivative: inout [T]) {
        let n = x.data.count
        derivative = [T](unsafeUninitializedCapacity: n) { _, count in count = n }  // written in full by apply
        x.data.withUnsafeMutableBufferPointer { p in
            derivative.withUnsafeMutableBufferPointer { d in GELU.apply(p, derivative: d) }
        }
    }

    /// Backward: dL/dx = dL/dy ∘ GELU'(x), in place, with the derivative kept by forward.
    public func backward(_ dy: inout Matrix<T>, derivative: [T]) {
        precondition(dy.data.count == derivative.count)
        dy.data.withUnsafeMutableBufferPointer { pd in
            derivative.withUnsafeBufferPointer { d in for j in pd.indices { pd[j] *= d[j] } }
        }
    }

    /// GELU and its derivative of every element (the training path). Float — SVE's hot path — uses
    /// fastErf and fastExp, branch-free, in C loops at the CPU's vector width (the C library's erff
    /// and expf were 5–6.5 % of sve-train); Double uses the C library's erf and exp.
    @inlinable
    public static func apply(_ p: UnsafeMutableBufferPointer<T>, derivative d: UnsafeMutableBufferPointer<T>) {
        precondition(d.count == p.count)
        if T.self == Float.self {
            p.withMemoryRebound(to: Float.self) { pf in
                d.withMemoryRebound(to: Float.self) { df in geluFloat(pf, derivative: df) }
            }
        } else {
            for i in p.indices {
                let v = Double(p[i])
                let cdf = 0.5 * (1 + Glibc.erf(v * 0.7071067811865476))
                d[i] = T(cdf + v * Glibc.exp(-0.5 * v * v) * 0.3989422804014327)
                p[i] = T(v * cdf)
            }
        }
    }

    /// GELU of every element, in place.
    @inlinable
    public static func apply(_ p: UnsafeMutableBufferPointer<T>) {
        if T.self == Float.self {
            p.withMemoryRebound(to: Float.self) { geluFloat($0) }
        } else {
            for i in p.indices {
                let v = Double(p[i])
                p[i] = T(v * 0.5 * (1 + Glibc.erf(v * 0.7071067811865476)))
            }
        }
    }
}

/// GELU over Float, in C at the CPU's vector width (Sources/CElementwise).
@usableFromInline
func geluFloat(_ p: UnsafeMutableBufferPointer<Float>) {
    guard let base = p.baseAddress else { return }
    celem_gelu_f32(base, p.count)
}

/// GELU and GELU' over Float, in C at the CPU's vector width (Sources/CElementwise).
@usableFromInline
func geluFloat(_ p: UnsafeMutableBufferPointer<Float>, derivative d: UnsafeMutableBufferPointer<Float>) {
    guard let base = p.baseAddress, let db = d.baseAddress else { return }
    celem_gelu_derivative_f32(base, db, p.count)
}

/// e^x in single precision, branch-free (celem_exp_f32: Cephes' degree-6 polynomial on
/// x = k ln 2 + r, 2^k put into the exponent bits). Relative error below 2e-7 (tested against the
/// C library's exp in Double on [−87, 88]); x is clamped to that range, so the result is never
/// 0, infinite or subnormal (e^−87 ≈ 1.6e-38 stands for anything smaller).
public func fastExp(_ a: Float) -> Float { celem_exp_f32(a) }

/// erf in single precision (celem_erf_f32: a ratio of an odd degree-13 and an even degree-8
/// polynomial on [−4, 4], ±1 outside: the approximation of Eigen and XLA). Absolute error below
/// 5e-7 everywhere (4.2e-7 at worst, near ±3.3, against the C library's erf in Double).
public func fastErf(_ a: Float) -> Float { celem_erf_f32(a) }

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import LinearAlgebra

/// The exact GELU BERT uses, x · Φ(x) = x · ½(1 + erf(x/√2)) (not the tanh approximation).
/// In single precision erf is a vectorised rational approximation (fastErf); in double precision
/// it is the C library's erf.
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
        derivative = [T](repeating: 0, count: x.data.count)
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
    /// fastErf and fastExp, branch-free, in a loop the compiler vectorises (the C library's erff
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

/// GELU over Float: a loop without calls or branches, which the compiler vectorises.
@usableFromInline
func geluFloat(_ p: UnsafeMutableBufferPointer<Float>) {
    for i in p.indices {
        let v = p[i]
        p[i] = v * 0.5 * (1 + fastErf(v * 0.70710678118654752))
    }
}

/// GELU and GELU' over Float: no calls, no branches, so the loop vectorises.
@usableFromInline
func geluFloat(_ p: UnsafeMutableBufferPointer<Float>, derivative d: UnsafeMutableBufferPointer<Float>) {
    for i in p.indices {
        let v = p[i]
        let cdf = 0.5 * (1 + fastErf(v * 0.70710678118654752))
        d[i] = cdf + v * fastExp(-0.5 * v * v) * 0.39894228040143268
        p[i] = v * cdf
    }
}

/// e^x in single precision, branch-free: x = k ln 2 + r with |r| ≤ ln 2 / 2 (k by the
/// 1.5 · 2^23 rounding trick, ln 2 split in two for an exact r), e^r by Cephes' degree-6
/// polynomial, 2^k put into the exponent bits. Relative error below 2e-7 (tested against the
/// C library's exp in Double on [−87, 88]); x is clamped to that range, so the result is never
/// 0, infinite or subnormal (e^−87 ≈ 1.6e-38 stands for anything smaller).
@inlinable @inline(__always)
public func fastExp(_ a: Float) -> Float {
    let x = a > 88 ? 88 : (a < -87 ? -87 : a)
    // Adding 1.5 · 2^23 rounds x / ln 2 to the integer k, which then sits in the low bits of
    // t's pattern: 2^k is built from them with wrapping integer operations (no conversion that
    // could trap, so nothing stops the loop from vectorising).
    let t = x * 1.44269504088896341 + 12582912
    let k = t - 12582912
    let r = (x - k * 0.693359375) - k * -2.12194440e-4
    var q = r * 1.9875691500e-4 + 1.3981999507e-3
    q = q * r + 8.3334519073e-3
    q = q * r + 4.1665795894e-2
    q = q * r + 1.6666665459e-1
    q = q * r + 5.0000001201e-1
    let er = q * (r * r) + r + 1
    return er * Float(bitPattern: (t.bitPattern &- 0x4B40_0000 &+ 127) &<< 23)
}

/// erf in single precision as a ratio of an odd degree-13 and an even degree-8 polynomial on
/// [−4, 4] (outside, erf is ±1 in Float): the approximation of Eigen and XLA. Absolute error
/// below 5e-7 everywhere (4.2e-7 at worst, near ±3.3, against the C library's erf in Double; a few
/// Float ulps of 1); branch-free, so that loops over it vectorise.
@inlinable @inline(__always)
public func fastErf(_ a: Float) -> Float {
    let x = a > 4 ? 4 : (a < -4 ? -4 : a)
    let x2 = x * x
    var p = x2 * -2.72614225801306e-10 + 2.77068142495902e-08
    p = x2 * p + -2.10102402082508e-06
    p = x2 * p + -5.69250639462346e-05
    p = x2 * p + -7.34990630326855e-04
    p = x2 * p + -2.95459980854025e-03
    p = x2 * p + -1.60960333262415e-02
    p = x * p
    var q = x2 * -1.45660718464996e-05 + -2.13374055278905e-04
    q = x2 * q + -1.68282697438203e-03
    q = x2 * q + -7.37332916720468e-03
    q = x2 * q + -1.42647390514189e-02
    return p / q
}

import LinearAlgebra
import Parallel

/// AdamW as in PyTorch (decoupled weight decay: p ← p − lr·wd·p, then the Adam step with bias
/// correction), with the reference defaults of methods.md 2.2. Weight decay applies to every
/// trainable parameter, the singular values s included (as the reference code does).
public struct AdamW<T: BLASScalar> {
    public var beta1 = 0.9, beta2 = 0.999, eps = 1e-8
    public var weightDecay: Double
    public private(set) var step = 0
    private var m: [[Double]]
    private var v: [[Double]]

    public init(parameters: [Parameter<T>], weightDecay: Double = 0.05) {
        self.weightDecay = weightDecay
        m = parameters.map { [Double](repeating: 0, count: $0.count) }
        v = m
    }

    /// One step with learning rate `lr` over `parameters` (the same list, same order, as at init).
    /// Every element is updated on its own, so large parameters are cut into pieces updated on
    /// up to `threads` threads: the same bits on any number of threads.
    @_specialize(exported: true, where T == Float)
    @_specialize(exported: true, where T == Double)
    public mutating func update(_ parameters: [Parameter<T>], lr: Double, threads: Int = 1) {
        step += 1
        let bc1 = 1 - ipow(beta1, Double(step)), bc2 = 1 - ipow(beta2, Double(step))
        let rule = Rule(b1: beta1, b2: beta2, e: eps, decay: 1 - lr * weightDecay, lr: lr, bc1: bc1, bc2: bc2)
        for (i, p) in parameters.enumerated() {
            m[i].withUnsafeMutableBufferPointer { pm in
                v[i].withUnsafeMutableBufferPointer { pv in
                    p.grad.withUnsafeBufferPointer { g in
                        p.value.withUnsafeMutableBufferPointer { x in
                            let piece = Self.pieceElements, n = x.count
                            let at = Pointers(m: pm.baseAddress!, v: pv.baseAddress!, g: g.baseAddress!, x: x.baseAddress!)
                            if n < 2 * piece || threads < 2 {
                                rule.apply(at, 0 ..< n)
                            } else {
                                onChunks((n + piece - 1) / piece, threads: threads) { c in
                                    rule.apply(at, c * piece ..< min(n, (c + 1) * piece))
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Elements per piece updated on one thread (a parameter of at least two pieces is shared out).
    static var pieceElements: Int { 1 << 16 }

    /// The moments, gradient and value of one parameter.
    private struct Pointers: @unchecked Sendable {
        let m: UnsafeMutablePointer<Double>, v: UnsafeMutablePointer<Double>
        let g: UnsafePointer<T>, x: UnsafeMutablePointer<T>
    }

    /// The update of one step, element by element.
    private struct Rule: Sendable {
        let b1: Double, b2: Double, e: Double, decay: Double, lr: Double, bc1: Double, bc2: Double

        func apply(_ p: Pointers, _ range: Range<Int>) {
            // Four elements at a time in vector registers (the compiler leaves the scalar loop
            // scalar: a division and a square root each), then the rest one by one; every lane
            // does the scalar loop's operations in its order, so the bits are the same.
            typealias V = SIMD4<Double>
            var j = range.lowerBound
            let db1 = V(repeating: b1), cb1 = V(repeating: 1 - b1), db2 = V(repeating: b2), cb2 = V(repeating: 1 - b2)
            let vdecay = V(repeating: decay), vlr = V(repeating: lr), vbc1 = V(repeating: bc1), vbc2 = V(repeating: bc2)
            let ve = V(repeating: e)
            while j + 4 <= range.upperBound {
                let g = V(Double(p.g[j]), Double(p.g[j + 1]), Double(p.g[j + 2]), Double(p.g[j + 3]))
                var x = V(Double(p.x[j]), Double(p.x[j + 1]), Double(p.x[j + 2]), Double(p.x[j + 3])) * vdecay
                let mv = UnsafeMutableRawPointer(p.m + j), vv = UnsafeMutableRawPointer(p.v + j)
                let mj = db1 * mv.loadUnaligned(as: V.self) + cb1 * g
                let vj = db2 * vv.loadUnaligned(as: V.self) + cb2 * g * g
                mv.storeBytes(of: mj, as: V.self)
                vv.storeBytes(of: vj, as: V.self)
                x -= vlr * (mj / vbc1) / ((vj / vbc2).squareRoot() + ve)
                p.x[j] = T(x[0]); p.x[j + 1] = T(x[1]); p.x[j + 2] = T(x[2]); p.x[j + 3] = T(x[3])
                j += 4
            }
            for j in j ..< range.upperBound {
                let gj = Double(p.g[j])
                var xj = Double(p.x[j]) * decay
                let mj = b1 * p.m[j] + (1 - b1) * gj
                let vj = b2 * p.v[j] + (1 - b2) * gj * gj
                p.m[j] = mj
                p.v[j] = vj
                xj -= lr * (mj / bc1) / ((vj / bc2).squareRoot() + e)
                p.x[j] = T(xj)
            }
        }
    }
}

private func ipow(_ a: Double, _ b: Double) -> Double {
    var r = 1.0
    var n = Int(b)
    var x = a
    while n > 0 { if n & 1 == 1 { r *= x }; x *= x; n >>= 1 }
    return r
}

/// Global gradient-norm clipping as torch.nn.utils.clip_grad_norm_: when the L2 norm of all the
/// gradients exceeds `maxNorm`, scale them by maxNorm / (norm + 1e-6). Returns the norm before.
@discardableResult
@_specialize(exported: true, where T == Float)
public func clipGradientNorm<T: BLASScalar>(_ parameters: [Parameter<T>], maxNorm: Double,
                                            member: Int? = nil) -> Double {
    // Through buffer pointers: an element access through the class property is an exclusivity
    // check each.
    var sq = 0.0
    for p in parameters {
        let range = member.map { p.offset($0) ..< p.offset($0) + p.memberCount } ?? 0 ..< p.count
        p.grad.withUnsafeBufferPointer { g in
            for j in range { let x = Double(g[j]); sq += x * x }
        }
    }
    let norm = sq.squareRoot()
    let coef = maxNorm / (norm + 1e-6)
    if coef < 1 {
        for p in parameters {
            let range = member.map { p.offset($0) ..< p.offset($0) + p.memberCount } ?? 0 ..< p.count
            p.grad.withUnsafeMutableBufferPointer { g in
                for j in range { g[j] = T(Double(g[j]) * coef) }
            }
        }
    }
    return norm
}

/// Linear warm-up from lr/warmup to lr over `warmup` steps, then cosine decay to 0 at `total`.
public func learningRate(step t: Int, total: Int, warmup: Int, base: Double) -> Double {
    if t < warmup { return base * Double(t + 1) / Double(warmup) }
    let span = max(1, total - warmup)
    let progress = min(1, Double(t - warmup) / Double(span))
    return base * 0.5 * (1 + cos(Double.pi * progress))
}

#if canImport(Glibc)
import Glibc
#endif

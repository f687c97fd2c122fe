import LinearAlgebra

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
    @_specialize(exported: true, where T == Float)
    @_specialize(exported: true, where T == Double)
    public mutating func update(_ parameters: [Parameter<T>], lr: Double) {
        step += 1
        let bc1 = 1 - ipow(beta1, Double(step)), bc2 = 1 - ipow(beta2, Double(step))
        let b1 = beta1, b2 = beta2, e = eps, decay = 1 - lr * weightDecay
        for (i, p) in parameters.enumerated() {
            m[i].withUnsafeMutableBufferPointer { pm in
                v[i].withUnsafeMutableBufferPointer { pv in
                    p.grad.withUnsafeBufferPointer { g in
                        p.value.withUnsafeMutableBufferPointer { x in
                            for j in x.indices {
                                let gj = Double(g[j])
                                var xj = Double(x[j]) * decay
                                pm[j] = b1 * pm[j] + (1 - b1) * gj
                                pv[j] = b2 * pv[j] + (1 - b2) * gj * gj
                                xj -= lr * (pm[j] / bc1) / ((pv[j] / bc2).squareRoot() + e)
                                x[j] = T(xj)
                            }
                        }
                    }
                }
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
    var sq = 0.0
    for p in parameters {
        let range = member.map { p.offset($0) ..< p.offset($0) + p.memberCount } ?? 0 ..< p.count
        for j in range { let g = Double(p.grad[j]); sq += g * g }
    }
    let norm = sq.squareRoot()
    let coef = maxNorm / (norm + 1e-6)
    if coef < 1 {
        for p in parameters {
            let range = member.map { p.offset($0) ..< p.offset($0) + p.memberCount } ?? 0 ..< p.count
            for j in range { p.grad[j] = T(Double(p.grad[j]) * coef) }
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

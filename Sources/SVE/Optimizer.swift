import COptim
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

    /// The update of one step, element by element: COptim's kernel (the rule is written out
    /// there, in the order of PyTorch's AdamW; four lanes at a time where the CPU has AVX).
    private struct Rule: Sendable {
        let b1: Double, b2: Double, e: Double, decay: Double, lr: Double, bc1: Double, bc2: Double

        func apply(_ p: Pointers, _ range: Range<Int>) {
            var step = coptim_adamw_step(b1: b1, c1: 1 - b1, b2: b2, c2: 1 - b2, eps: e, decay: decay, lr: lr, bc1: bc1, bc2: bc2)
            let o = range.lowerBound, n = range.count
            if T.self == Float.self {
                coptim_adamw_f32(UnsafeMutableRawPointer(p.x + o).assumingMemoryBound(to: Float.self),
                                 UnsafeRawPointer(p.g + o).assumingMemoryBound(to: Float.self), p.m + o, p.v + o, n, &step)
            } else {
                precondition(T.self == Double.self)
                coptim_adamw_f64(UnsafeMutableRawPointer(p.x + o).assumingMemoryBound(to: Double.self),
                                 UnsafeRawPointer(p.g + o).assumingMemoryBound(to: Double.self), p.m + o, p.v + o, n, &step)
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

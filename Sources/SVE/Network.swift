import LinearAlgebra
import Probability
#if canImport(Glibc)
import Glibc
#endif

/// How the members are built (methods.md 2.2).
public enum EnsembleMethod: String, Sendable, CaseIterable {
    /// Singular Value Ensemble: U, Vᵀ frozen and shared; per member s_m and b_m. With one
    /// member this is plain singular-value fine-tuning (SVF).
    case sve
    /// Deep ensemble: M independent copies of the dense pretrained stack, every weight trainable.
    case deepEnsemble = "deep-ensemble"
}

/// A named parameter. Per-member parameters are stacked: their first axis is the member.
public final class Parameter<T: BLASScalar> {
    public let name: String
    public let shape: [Int]
    public var value: [T]
    public var grad: [T]
    public let trainable: Bool
    public let perMember: Bool

    init(name: String, shape: [Int], trainable: Bool, perMember: Bool) {
        self.name = name; self.shape = shape; self.trainable = trainable; self.perMember = perMember
        let n = shape.reduce(1, *)
        value = [T](repeating: 0, count: n)
        grad = trainable ? [T](repeating: 0, count: n) : []
    }

    public var count: Int { value.count }
    /// Elements of one member's slice (all of it when shared).
    public var memberCount: Int { perMember ? value.count / shape[0] : value.count }
    /// Where member m's slice starts.
    @inline(__always) func offset(_ m: Int) -> Int { perMember ? m * memberCount : 0 }
}

/// Pretrained LayerNorm weights.
public struct LayerNormWeights: Sendable {
    public var weight: [Float]
    public var bias: [Float]
    public init(weight: [Float], bias: [Float]) { self.weight = weight; self.bias = bias }
}

/// Options of the random initialisation (methods.md 2.2).
public struct InitOptions: Sendable {
    /// σ_init: s_m = S ∘ (1 + ε_m), ε_m ~ N(0, σ_init²).
    public var sigmaInit: Double = 0.01
    /// b_m = b + η_m, η_m ~ N(0, biasNoise²).
    public var biasNoise: Double = 0.01
    /// Head weights ~ N(0, headStd²), head bias 0.
    public var headStd: Double = 0.01
    public init(sigmaInit: Double = 0.01, biasNoise: Double = 0.01, headStd: Double = 0.01) {
        self.sigmaInit = sigmaInit; self.biasNoise = biasNoise; self.headStd = headStd
    }
}

/// The ensemble network of methods.md 2.2: the pretrained stack with every linear layer wrapped,
/// M member heads on top, forward and hand-written backward.
///
/// Activations of the members are stacked row-wise: a batch of B rows becomes an (M·B)×d matrix
/// whose row block m belongs to member m. Because U and Vᵀ are shared, one GEMM serves all the
/// members: Z = X Vᵀᵀ is computed once while the input is still the same for every member (the
/// first layer), H = Z ∘ s_m⁺ per block, Y = H Uᵀ + b_m for all blocks at once. The cost of a
/// wrapped layer is B·k·(in+out) multiply-adds per member, never a dense out×in weight per member.
public final class EnsembleNetwork<T: BLASScalar> {
    public let spec: StackSpec
    public let method: EnsembleMethod
    public let members: Int
    public let inputDim: Int
    public let classes: Int
    /// Width of the features the heads see.
    public let featureDim: Int
    /// Every parameter, frozen ones included, in a fixed order.
    public private(set) var parameters: [Parameter<T>] = []

    enum Node {
        case factored(u: Parameter<T>, vt: Parameter<T>, s: Parameter<T>, b: Parameter<T>)
        case dense(w: Parameter<T>, b: Parameter<T>)
        case activation(Activation)
        case layerNorm(w: Parameter<T>, b: Parameter<T>, eps: T)
        case residualBegin
        case residualEnd
    }
    let nodes: [Node]

    /// An activation matrix: B rows shared by every member, or M·B rows (block m = member m).
    struct Act {
        var m: Matrix<T>
        var shared: Bool
        /// False while nothing trainable has touched it (the features themselves).
        var needsGrad: Bool
    }
    struct Cache {
        var input: Act
        var z: Matrix<T>? = nil         // factored: Vᵀx
        var xhat: Matrix<T>? = nil      // layernorm
        var invStd: [T] = []            // layernorm
        var deriv: [T] = []             // activation: f'(x)
    }
    private var caches: [Cache] = []
    private var batchRows = 0

    /// Builds the network's structure with zero parameters; `initialise` or `load` fills them.
    public init(spec: StackSpec, method: EnsembleMethod, members: Int, inputDim: Int, classes: Int,
                shapes: [String: (out: Int, in: Int, rank: Int)], layerNormDims: [String: Int]) throws {
        guard members >= 1 else { throw SVEError.spec("members must be at least 1") }
        guard classes >= 2 else { throw SVEError.data("need at least 2 classes, got \(classes)") }
        self.spec = spec; self.method = method; self.members = members
        self.inputDim = inputDim; self.classes = classes
        var params: [Parameter<T>] = []
        func param(_ name: String, _ shape: [Int], trainable: Bool, perMember: Bool) -> Parameter<T> {
            let p = Parameter<T>(name: name, shape: perMember ? [members] + shape : shape,
                                 trainable: trainable, perMember: perMember)
            params.append(p)
            return p
        }
        var nodes: [Node] = []
        var dim = inputDim
        var saved: [Int] = []
        for op in spec.ops {
            switch op {
            case .linear(let name):
                guard let sh = shapes[name] else { throw SVEError.data("the basis has no layer '\(name)'") }
                guard sh.in == dim else {
                    throw SVEError.shape("layer '\(name)' takes \(sh.in) inputs but receives \(dim) (check the order of the stack and the feature width)")
                }
                switch method {
                case .sve:
                    nodes.append(.factored(u: param("\(name).U", [sh.out, sh.rank], trainable: false, perMember: false),
                                           vt: param("\(name).Vt", [sh.rank, sh.in], trainable: false, perMember: false),
                                           s: param("\(name).s", [sh.rank], trainable: true, perMember: true),
                                           b: param("\(name).b", [sh.out], trainable: true, perMember: true)))
                case .deepEnsemble:
                    nodes.append(.dense(w: param("\(name).weight", [sh.out, sh.in], trainable: true, perMember: true),
                                        b: param("\(name).bias", [sh.out], trainable: true, perMember: true)))
                }
                dim = sh.out
            case .activation(let a):
                nodes.append(.activation(a))
            case .layerNorm(let name, let eps):
                guard let d = layerNormDims[name] else { throw SVEError.data("no LayerNorm '\(name)' (need \(name).weight and \(name).bias)") }
                guard d == dim else { throw SVEError.shape("LayerNorm '\(name)' has \(d) features but receives \(dim)") }
                // SVE keeps the pretrained LayerNorm frozen and shared; a deep ensemble trains everything.
                let trainable = method == .deepEnsemble
                nodes.append(.layerNorm(w: param("\(name).weight", [d], trainable: trainable, perMember: trainable),
                                        b: param("\(name).bias", [d], trainable: trainable, perMember: trainable),
                                        eps: T(eps)))
            case .residualBegin:
                saved.append(dim)
                nodes.append(.residualBegin)
            case .residualEnd:
                let d0 = saved.removeLast()
                guard d0 == dim else { throw SVEError.shape("a residual block maps \(d0) features to \(dim): it must keep the width") }
                nodes.append(.residualEnd)
            }
        }
        featureDim = dim
        nodes.append(.dense(w: param("head.weight", [classes, dim], trainable: true, perMember: true),
                            b: param("head.bias", [classes], trainable: true, perMember: true)))
        self.nodes = nodes
        self.parameters = params
    }

    /// Convenience: structure from pretrained weights, then the random initialisation.
    public convenience init(spec: StackSpec, method: EnsembleMethod, members: Int, inputDim: Int, classes: Int,
                            bases: [String: LayerBasis], layerNorms: [String: LayerNormWeights],
                            options: InitOptions = InitOptions(), rng: inout SeededGenerator) throws {
        var shapes: [String: (out: Int, in: Int, rank: Int)] = [:]
        for (k, b) in bases { shapes[k] = (b.outDim, b.inDim, b.rank) }
        var lnd: [String: Int] = [:]
        for (k, l) in layerNorms {
            guard l.weight.count == l.bias.count else {
                throw SVEError.shape("LayerNorm '\(k)': weight has \(l.weight.count) values, bias \(l.bias.count)")
            }
            lnd[k] = l.weight.count
        }
        try self.init(spec: spec, method: method, members: members, inputDim: inputDim, classes: classes,
                      shapes: shapes, layerNormDims: lnd)
        initialise(bases: bases, layerNorms: layerNorms, options: options, rng: &rng)
    }

    /// The random initialisation of methods.md 2.2, in a fixed order (member by member, layer by
    /// layer: ε then η, then the head) so that a seed always gives the same network.
    func initialise(bases: [String: LayerBasis], layerNorms: [String: LayerNormWeights],
                    options: InitOptions, rng: inout SeededGenerator) {
        // Shared, frozen parts and the deep ensemble's dense copies.
        for node in nodes {
            switch node {
            case .factored(let u, let vt, _, _):
                let base = String(u.name.dropLast(2))
                let b = bases[base]!
                u.value = b.u.data.map { T($0) }
                vt.value = b.vt.data.map { T($0) }
            case .dense(let w, _) where w.name != "head.weight":
                let base = String(w.name.dropLast(7))
                let dense = bases[base]!.weight().data.map { T($0) }
                for m in 0..<members { w.value.replaceSubrange(w.offset(m) ..< w.offset(m) + dense.count, with: dense) }
            case .layerNorm(let w, let b, _):
                let base = String(w.name.dropLast(7))
                let l = layerNorms[base]!
                for m in 0..<(w.perMember ? members : 1) {
                    for j in 0..<l.weight.count {
                        w.value[w.offset(m) + j] = T(l.weight[j])
                        b.value[b.offset(m) + j] = T(l.bias[j])
                    }
                }
            default: break
            }
        }
        for m in 0..<members {
            for node in nodes {
                switch node {
                case .factored(let u, _, let s, let b):
                    let basis = bases[String(u.name.dropLast(2))]!
                    for j in 0..<basis.rank {
                        s.value[s.offset(m) + j] = T(Double(basis.s[j]) * (1 + options.sigmaInit * rng.normal()))
                    }
                    for o in 0..<basis.outDim {
                        b.value[b.offset(m) + o] = T(Double(basis.bias[o]) + options.biasNoise * rng.normal())
                    }
                case .dense(let w, let b):
                    if w.name == "head.weight" {
                        for i in 0..<w.memberCount { w.value[w.offset(m) + i] = T(options.headStd * rng.normal()) }
                        for i in 0..<b.memberCount { b.value[b.offset(m) + i] = 0 }
                    } else {
                        let basis = bases[String(w.name.dropLast(7))]!
                        for o in 0..<basis.outDim {
                            b.value[b.offset(m) + o] = T(Double(basis.bias[o]) + options.biasNoise * rng.normal())
                        }
                    }
                default: break
                }
            }
        }
    }

    /// The parameter with this name.
    public func parameter(_ name: String) -> Parameter<T>? { parameters.first { $0.name == name } }

    /// Trainable parameters (the optimiser's view).
    public var trainable: [Parameter<T>] { parameters.filter(\.trainable) }

    public func zeroGradients() {
        for p in parameters where p.trainable {
            p.grad.withUnsafeMutableBufferPointer { g in for i in g.indices { g[i] = 0 } }
        }
    }

    // MARK: - Forward

    /// Logits, (M·B)×C, row block m = member m. `x` is B×inputDim shared by every member, or
    /// (M·B)×inputDim with one batch per member (`shared: false`). Keeps what backward needs.
    @_specialize(exported: true, where T == Float)
    @_specialize(exported: true, where T == Double)
    public func forward(_ x: Matrix<T>, shared: Bool = true) -> Matrix<T> {
        precondition(x.cols == inputDim, "forward: input has \(x.cols) columns, expected \(inputDim)")
        let B = shared ? x.rows : x.rows / members
        precondition(shared || x.rows == B * members)
        batchRows = B
        caches.removeAll(keepingCapacity: true)
        var act = Act(m: x, shared: shared, needsGrad: false)
        var savedStack: [Act] = []
        for node in nodes {
            var cache = Cache(input: act)
            switch node {
            case .factored(let u, let vt, let s, let b):
                let k = s.memberCount, out = b.memberCount
                var z = Matrix<T>(rows: act.m.rows, cols: k)
                vt.value.withUnsafeBufferPointer { pv in
                    gemmRaw(act.m, transB: true, pv, rows: k, cols: vt.shape[1], into: &z)
                }
                var h = Matrix<T>(rows: members * B, cols: k)
                h.data.withUnsafeMutableBufferPointer { ph in
                    z.data.withUnsafeBufferPointer { pz in
                        s.value.withUnsafeBufferPointer { ps in
                            for m in 0..<members {
                                for r in 0..<B {
                                    let zr = (act.shared ? r : m * B + r) * k, hr = (m * B + r) * k
                                    for j in 0..<k { ph[hr + j] = pz[zr + j] * max(ps[m * k + j], 0) }
                                }
                            }
                        }
                    }
                }
                var y = Matrix<T>(rows: members * B, cols: out)
                u.value.withUnsafeBufferPointer { pu in gemmRaw(h, transB: true, pu, rows: out, cols: k, into: &y) }
                addMemberBias(&y, b, B)
                cache.z = z
                act = Act(m: y, shared: false, needsGrad: true)
            case .dense(let w, let b):
                let out = b.memberCount, inD = act.m.cols
                var y = Matrix<T>(rows: members * B, cols: out)
                act.m.data.withUnsafeBufferPointer { pa in
                    w.value.withUnsafeBufferPointer { pw in
                        y.data.withUnsafeMutableBufferPointer { py in
                            for m in 0..<members {
                                let aOff = act.shared ? 0 : m * B * inD
                                T.gemm(false, true, B, out, inD, 1, pa.baseAddress! + aOff, inD,
                                       pw.baseAddress! + w.offset(m), inD, 0, py.baseAddress! + m * B * out, out)
                            }
                        }
                    }
                }
                addMemberBias(&y, b, B)
                act = Act(m: y, shared: false, needsGrad: true)
            case .activation(let a):
                // The derivative is kept for backward (so that erf and exp run once per element).
                var deriv = [T](repeating: 0, count: a == .relu ? 0 : act.m.data.count)
                if a != .relu { cache.input.m = Matrix(rows: 0, cols: 0) }  // not needed: no copy
                act.m.data.withUnsafeMutableBufferPointer { p in
                    deriv.withUnsafeMutableBufferPointer { d in
                        switch a {
                        case .relu: for i in p.indices { p[i] = max(p[i], 0) }
                        case .tanh:
                            for i in p.indices { let t = Glibc.tanh(Double(p[i])); p[i] = T(t); d[i] = T(1 - t * t) }
                        case .gelu:
                            if T.self == Float.self {
                                // Single precision erf/exp: the hot path of sve-train.
                                p.withMemoryRebound(to: Float.self) { pf in
                                    d.withMemoryRebound(to: Float.self) { df in
                                        for i in pf.indices {
                                            let v = pf[i]
                                            let cdf = 0.5 * (1 + erff(v * 0.70710678))
                                            df[i] = cdf + v * expf(-0.5 * v * v) * 0.39894228
                                            pf[i] = v * cdf
                                        }
                                    }
                                }
                            } else {
                                for i in p.indices {
                                    let v = Double(p[i])
                                    let cdf = 0.5 * (1 + erf(v * 0.7071067811865476))
                                    d[i] = T(cdf + v * exp(-0.5 * v * v) * 0.3989422804014327)
                                    p[i] = T(v * cdf)
                                }
                            }
                        }
                    }
                }
                cache.deriv = deriv
            case .layerNorm(let w, let b, let eps):
                if w.perMember && act.shared {
                    act = Act(m: replicate(act.m), shared: false, needsGrad: act.needsGrad)
                    cache.input = act
                }
                let d = act.m.cols, rows = act.m.rows
                var xhat = Matrix<T>(rows: rows, cols: d)
                var inv = [T](repeating: 0, count: rows)
                var y = Matrix<T>(rows: rows, cols: d)
                act.m.data.withUnsafeBufferPointer { px in
                    xhat.data.withUnsafeMutableBufferPointer { ph in
                        y.data.withUnsafeMutableBufferPointer { py in
                            for r in 0..<rows {
                                let o = r * d
                                var mean = 0.0
                                for j in 0..<d { mean += Double(px[o + j]) }
                                mean /= Double(d)
                                var v = 0.0
                                for j in 0..<d { let c = Double(px[o + j]) - mean; v += c * c }
                                v /= Double(d)
                                let is_ = 1 / (v + Double(eps)).squareRoot()
                                inv[r] = T(is_)
                                let m = act.shared ? 0 : r / B
                                let wo = w.offset(m), bo = b.offset(m)
                                for j in 0..<d {
                                    let xh = T((Double(px[o + j]) - mean) * is_)
                                    ph[o + j] = xh
                                    py[o + j] = xh * w.value[wo + j] + b.value[bo + j]
                                }
                            }
                        }
                    }
                }
                cache.xhat = xhat
                cache.invStd = inv
                act = Act(m: y, shared: act.shared, needsGrad: act.needsGrad || w.trainable)
            case .residualBegin:
                savedStack.append(act)
            case .residualEnd:
                let s = savedStack.removeLast()
                if s.shared && !act.shared {
                    let d = act.m.cols
                    act.m.data.withUnsafeMutableBufferPointer { p in
                        s.m.data.withUnsafeBufferPointer { ps in
                            for r in 0..<act.m.rows {
                                let so = (r % B) * d, o = r * d
                                for j in 0..<d { p[o + j] += ps[so + j] }
                            }
                        }
                    }
                } else {
                    act.m.data.withUnsafeMutableBufferPointer { p in
                        s.m.data.withUnsafeBufferPointer { ps in for i in p.indices { p[i] += ps[i] } }
                    }
                }
                act.needsGrad = act.needsGrad || s.needsGrad
            }
            caches.append(cache)
        }
        if act.shared { act.m = replicate(act.m) }  // cannot happen: the heads are per member
        return act.m
    }

    private func replicate(_ x: Matrix<T>) -> Matrix<T> {
        var out = Matrix<T>(rows: x.rows * members, cols: x.cols)
        let n = x.data.count
        for m in 0..<members { out.data.replaceSubrange(m * n ..< (m + 1) * n, with: x.data) }
        return out
    }

    private func addMemberBias(_ y: inout Matrix<T>, _ b: Parameter<T>, _ B: Int) {
        let out = y.cols
        y.data.withUnsafeMutableBufferPointer { py in
            b.value.withUnsafeBufferPointer { pb in
                for m in 0..<members {
                    let bo = b.offset(m)
                    for r in 0..<B {
                        let o = (m * B + r) * out
                        for j in 0..<out { py[o + j] += pb[bo + j] }
                    }
                }
            }
        }
    }

    // MARK: - Backward

    /// Accumulates into each trainable parameter's `grad` the gradient of a loss whose gradient
    /// with respect to the last forward's logits is `dLogits` ((M·B)×C). methods.md 2.2:
    /// δh = Uᵀδy; ∇s = Σ_rows δh∘z where s ≥ 0; ∇b = Σ_rows δy; δx = V(δh∘s⁺).
    @_specialize(exported: true, where T == Float)
    @_specialize(exported: true, where T == Double)
    public func backward(_ dLogits: Matrix<T>) {
        let B = batchRows
        var delta = dLogits
        var pending: [Matrix<T>] = []
        for i in stride(from: nodes.count - 1, through: 0, by: -1) {
            let cache = caches[i]
            let input = cache.input
            let propagate = input.needsGrad
            switch nodes[i] {
            case .factored(let u, let vt, let s, let b):
                let k = s.memberCount, out = b.memberCount
                accumulateBiasGrad(delta, b, B)
                var dh = Matrix<T>(rows: delta.rows, cols: k)
                u.value.withUnsafeBufferPointer { pu in gemmRaw(delta, transB: false, pu, rows: out, cols: k, into: &dh) }
                let z = cache.z!
                s.grad.withUnsafeMutableBufferPointer { gs in
                    s.value.withUnsafeBufferPointer { ps in
                        dh.data.withUnsafeMutableBufferPointer { pd in
                            z.data.withUnsafeBufferPointer { pz in
                                for m in 0..<members {
                                    for r in 0..<B {
                                        let zr = (input.shared ? r : m * B + r) * k, hr = (m * B + r) * k
                                        for j in 0..<k where ps[m * k + j] >= 0 { gs[m * k + j] += pd[hr + j] * pz[zr + j] }
                                    }
                                }
                                if propagate {
                                    for m in 0..<members {
                                        for r in 0..<B {
                                            let hr = (m * B + r) * k
                                            for j in 0..<k { pd[hr + j] *= max(ps[m * k + j], 0) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                if propagate {
                    var dx = Matrix<T>(rows: delta.rows, cols: vt.shape[1])
                    vt.value.withUnsafeBufferPointer { pv in gemmRaw(dh, transB: false, pv, rows: k, cols: vt.shape[1], into: &dx) }
                    delta = dx
                }
            case .dense(let w, let b):
                let out = b.memberCount, inD = input.m.cols
                accumulateBiasGrad(delta, b, B)
                var dx = Matrix<T>(rows: propagate ? members * B : 0, cols: inD)
                delta.data.withUnsafeBufferPointer { pd in
                    input.m.data.withUnsafeBufferPointer { pa in
                        w.grad.withUnsafeMutableBufferPointer { gw in
                            for m in 0..<members {
                                let aOff = input.shared ? 0 : m * B * inD
                                // ∇W_m += δY_mᵀ A_m
                                T.gemm(true, false, out, inD, B, 1, pd.baseAddress! + m * B * out, out,
                                       pa.baseAddress! + aOff, inD, 1, gw.baseAddress! + w.offset(m), inD)
                            }
                        }
                    }
                    if propagate {
                        w.value.withUnsafeBufferPointer { pw in
                            dx.data.withUnsafeMutableBufferPointer { px in
                                for m in 0..<members {
                                    T.gemm(false, false, B, inD, out, 1, pd.baseAddress! + m * B * out, out,
                                           pw.baseAddress! + w.offset(m), inD, 0, px.baseAddress! + m * B * inD, inD)
                                }
                            }
                        }
                    }
                }
                if propagate { delta = dx }
            case .activation(let a):
                if propagate {
                    delta.data.withUnsafeMutableBufferPointer { pd in
                        if a == .relu {
                            input.m.data.withUnsafeBufferPointer { px in for j in pd.indices where px[j] <= 0 { pd[j] = 0 } }
                        } else {
                            // tanh' = 1 − tanh²; GELU' = Φ(x) + x φ(x), kept by forward.
                            cache.deriv.withUnsafeBufferPointer { d in for j in pd.indices { pd[j] *= d[j] } }
                        }
                    }
                }
            case .layerNorm(let w, let b, _):
                let xhat = cache.xhat!, inv = cache.invStd
                let d = xhat.cols, rows = xhat.rows
                var dx = Matrix<T>(rows: propagate ? rows : 0, cols: d)
                delta.data.withUnsafeBufferPointer { pd in
                    xhat.data.withUnsafeBufferPointer { ph in
                        if w.trainable {
                            for r in 0..<rows {
                                let m = input.shared ? 0 : r / B
                                let wo = w.offset(m), bo = b.offset(m), o = r * d
                                for j in 0..<d {
                                    w.grad[wo + j] += pd[o + j] * ph[o + j]
                                    b.grad[bo + j] += pd[o + j]
                                }
                            }
                        }
                        if propagate {
                            dx.data.withUnsafeMutableBufferPointer { px in
                                for r in 0..<rows {
                                    let m = input.shared ? 0 : r / B
                                    let wo = w.offset(m), o = r * d
                                    var mean1 = 0.0, mean2 = 0.0
                                    for j in 0..<d {
                                        let g = Double(pd[o + j] * w.value[wo + j])
                                        mean1 += g; mean2 += g * Double(ph[o + j])
                                    }
                                    mean1 /= Double(d); mean2 /= Double(d)
                                    let is_ = Double(inv[r])
                                    for j in 0..<d {
                                        let g = Double(pd[o + j] * w.value[wo + j])
                                        px[o + j] = T(is_ * (g - mean1 - Double(ph[o + j]) * mean2))
                                    }
                                }
                            }
                        }
                    }
                }
                if propagate { delta = dx }
            case .residualEnd:
                pending.append(delta)
            case .residualBegin:
                let skip = pending.removeLast()
                if propagate {
                    delta.data.withUnsafeMutableBufferPointer { p in
                        skip.data.withUnsafeBufferPointer { ps in for j in p.indices { p[j] += ps[j] } }
                    }
                }
            }
            if !propagate { break }  // everything before is frozen and sees only the features
        }
    }

    private func accumulateBiasGrad(_ delta: Matrix<T>, _ b: Parameter<T>, _ B: Int) {
        let out = delta.cols
        delta.data.withUnsafeBufferPointer { pd in
            b.grad.withUnsafeMutableBufferPointer { gb in
                for m in 0..<members {
                    let bo = b.offset(m)
                    for r in 0..<B {
                        let o = (m * B + r) * out
                        for j in 0..<out { gb[bo + j] += pd[o + j] }
                    }
                }
            }
        }
    }

    // MARK: - Loss

    /// The training loss of methods.md 2.2, mean over members of the mean cross-entropy, and its
    /// gradient (accumulated into the parameters' `grad`). `labels` has B entries (shared input)
    /// or M·B entries (one batch per member, aligned with the rows of `x`).
    @discardableResult
    @_specialize(exported: true, where T == Float)
    @_specialize(exported: true, where T == Double)
    public func lossAndGradient(_ x: Matrix<T>, labels: [Int], shared: Bool = true) -> Double {
        let logits = forward(x, shared: shared)
        let B = batchRows, C = classes
        var d = Matrix<T>(rows: logits.rows, cols: C)
        var loss = 0.0
        let scale = 1.0 / Double(members * B)
        var z = [Double](repeating: 0, count: C)
        for r in 0..<logits.rows {
            let y = shared ? labels[r % B] : labels[r]
            let o = r * C
            for c in 0..<C { z[c] = Double(logits.data[o + c]) }
            // Cross-entropy −log softmax(z)_y = lse(z) − z_y; its gradient softmax(z) − 1[y].
            let lse = z.withUnsafeBufferPointer { logSumExp($0) }
            loss += lse - z[y]
            for c in 0..<C {
                let p = exp(z[c] - lse)
                d.data[o + c] = T((p - (c == y ? 1 : 0)) * scale)
            }
        }
        backward(d)
        return loss * scale
    }
}

/// C (rows×n) = A · op(P) where P is a raw rows×cols block: op = transpose when `transB`
/// (then n = rows of P, inner = cols) else n = cols (inner = rows).
@inline(__always)
func gemmRaw<T: BLASScalar>(_ a: Matrix<T>, transB: Bool, _ p: UnsafeBufferPointer<T>, rows: Int, cols: Int,
                            into c: inout Matrix<T>) {
    let n = transB ? rows : cols, inner = transB ? cols : rows
    precondition(a.cols == inner && c.cols == n && c.rows == a.rows)
    if a.rows == 0 || n == 0 { return }
    a.data.withUnsafeBufferPointer { pa in
        c.data.withUnsafeMutableBufferPointer { pc in
            T.gemm(false, transB, a.rows, n, inner, 1, pa.baseAddress!, a.cols, p.baseAddress!, cols, 0, pc.baseAddress!, n)
        }
    }
}

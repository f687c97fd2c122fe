import CElementwise
import Layers
import LinearAlgebra
import Probability
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

// The nodes of an ensemble network (methods.md 2.2), one type each: factored linear (SVE), dense
// linear (deep ensemble), LayerNorm, activation, residual, head. Each owns its parameters (named
// from the stack), its initialisation, its forward (keeping what its backward needs) and its
// backward. The math is the Layers module's (Linear's GEMM kernels, LayerNorm, GELU): these types
// add what an ensemble needs around it — M members stacked row-wise, per-member parameters.

/// Activations between nodes: B rows shared by every member (the features, before anything per
/// member has touched them), or M·B rows whose row block m belongs to member m.
struct Activations<T: BLASScalar> {
    var m: Matrix<T>
    var shared: Bool
    /// False while nothing trainable has touched it (the features themselves): backward stops there.
    var needsGrad: Bool
}

/// The layout of one pass: M members, B rows each. At token level, `sequences` are the texts'
/// rows within one member's block (back to back, every row in one); after mean-pool, nil.
struct Batch {
    let members: Int
    let rows: Int
    var sequences: [Range<Int>]? = nil
    /// No backward follows this forward (prediction, validation): nodes may skip what only
    /// backward needs, or compute the same function another way (FactoredLinear's dense weights).
    var inference = false
    /// Inference with parameters that stay the same over many calls (sve-predict): a linear layer
    /// forms its dense member weights whenever a row costs less through them.
    var parametersStay = false

    /// The layout after mean-pool: one row per text.
    var pooled: Batch {
        Batch(members: members, rows: sequences?.count ?? rows, inference: inference, parametersStay: parametersStay)
    }

    /// Every member's sequences, in the (M·B)-row layout.
    var allSequences: [Range<Int>] {
        let seqs = sequences ?? []
        return (0..<members).flatMap { m in seqs.map { ($0.lowerBound + m * rows) ..< ($0.upperBound + m * rows) } }
    }
}

/// Makes the network's parameters in the order the nodes ask for them (the archive's order).
struct ParameterFactory<T: BLASScalar> {
    let members: Int
    private(set) var made: [Parameter<T>] = []
    /// Frozen parameters to reuse rather than make (a replica's, shared with its original).
    private let frozen: [String: Parameter<T>]

    init(members: Int, sharing: [Parameter<T>] = []) {
        self.members = members
        frozen = Dictionary(sharing.filter { !$0.trainable }.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
    }

    mutating func make(_ name: String, _ shape: [Int], trainable: Bool, perMember: Bool) -> Parameter<T> {
        let fullShape = perMember ? [members] + shape : shape
        if !trainable, let p = frozen[name], p.shape == fullShape, p.perMember == perMember {
            made.append(p)
            return p
        }
        let p = Parameter<T>(name: name, shape: fullShape, trainable: trainable, perMember: perMember)
        made.append(p)
        return p
    }
}

/// Pretrained weights the nodes initialise from, by layer name.
struct Pretrained {
    var bases: [String: LayerBasis]
    var layerNorms: [String: LayerNormWeights]
}

/// A node of the network, composed by `EnsembleNetwork.init` from the stack.
enum Node<T: BLASScalar> {
    case factored(FactoredLinear<T>)
    case dense(DenseLinear<T>)
    case layerNorm(LayerNormNode<T>)
    case activation(ActivationNode<T>)
    case residual(Residual<T>)
    case head(Head<T>)
    case attention(AttentionNode<T>)
    case meanPool(MeanPool<T>)

    var parameters: [Parameter<T>] {
        switch self {
        case .factored(let n): return [n.u, n.vt, n.s, n.b]
        case .dense(let n): return [n.weight, n.bias]
        case .layerNorm(let n): return [n.weight, n.bias]
        case .activation: return []
        case .residual(let n): return n.body.flatMap(\.parameters)
        case .head(let n): return [n.linear.weight, n.linear.bias]
        case .attention(let n): return n.projections.flatMap(\.parameters)
        case .meanPool: return []
        }
    }

    /// Uses `other`'s dense inference weights in every factored layer (`other`: the same node of
    /// the network this one is a replica of).
    func shareDenseWeights(with other: Node<T>) {
        switch (self, other) {
        case (.factored(let a), .factored(let b)): a.shareDenseWeights(with: b)
        case (.residual(let a), .residual(let b)): for (x, y) in zip(a.body, b.body) { x.shareDenseWeights(with: y) }
        case (.attention(let a), .attention(let b)):
            for (x, y) in zip(a.projections, b.projections) { x.shareDenseWeights(with: y) }
        default: break
        }
    }

    /// Frozen pretrained values (and the deep ensemble's dense copies); draws no random numbers.
    func loadPretrained(_ p: Pretrained) {
        switch self {
        case .factored(let n): n.loadPretrained(p)
        case .dense(let n): n.loadPretrained(p)
        case .layerNorm(let n): n.loadPretrained(p)
        case .residual(let n): for c in n.body { c.loadPretrained(p) }
        case .attention(let n): for c in n.projections { c.loadPretrained(p) }
        case .activation, .head, .meanPool: break
        }
    }

    /// Member m's random initialisation, drawing in a fixed order.
    func initialise(member m: Int, _ p: Pretrained, options: InitOptions, rng: inout SeededGenerator) {
        switch self {
        case .factored(let n): n.initialise(member: m, p, options: options, rng: &rng)
        case .dense(let n): n.initialise(member: m, p, options: options, rng: &rng)
        case .head(let n): n.initialise(member: m, options: options, rng: &rng)
        case .residual(let n): for c in n.body { c.initialise(member: m, p, options: options, rng: &rng) }
        case .attention(let n): for c in n.projections { c.initialise(member: m, p, options: options, rng: &rng) }
        case .layerNorm, .activation, .meanPool: break
        }
    }

    func forward(_ x: consuming Activations<T>, _ batch: Batch) -> Activations<T> {
        switch self {
        case .factored(let n): return n.forward(x, batch)
        case .dense(let n): return n.forward(x, batch)
        case .layerNorm(let n): return n.forward(x, batch)
        case .activation(let n): return n.forward(consume x, batch)
        case .residual(let n): return n.forward(x, batch)
        case .head(let n): return n.linear.forward(x, batch)
        case .attention(let n): return n.forward(x, batch)
        case .meanPool(let n): return n.forward(x, batch)
        }
    }

    /// Accumulates the node's parameter gradients from dL/d(output) and returns dL/d(input), or
    /// nil when the input needs none (it is the features: nothing before is trainable).
    func backward(_ delta: Matrix<T>, _ batch: Batch) -> Matrix<T>? {
        switch self {
        case .factored(let n): return n.backward(delta, batch)
        case .dense(let n): return n.backward(delta, batch)
        case .layerNorm(let n): return n.backward(delta, batch)
        case .activation(let n): return n.backward(delta)
        case .residual(let n): return n.backward(delta, batch)
        case .head(let n): return n.linear.backward(delta, batch)
        case .attention(let n): return n.backward(delta, batch)
        case .meanPool(let n): return n.backward(delta, batch)
        }
    }
}

extension Node {
    /// The factored linear layers of this node and of the nodes inside it.
    var factoredLayers: [FactoredLinear<T>] {
        switch self {
        case .factored(let n): return [n]
        case .residual(let n): return n.body.flatMap(\.factoredLayers)
        case .attention(let n): return n.projections.flatMap(\.factoredLayers)
        case .dense, .layerNorm, .activation, .head, .meanPool: return []
        }
    }
}

/// Runs nodes in order (`batch` is the input's layout; after mean-pool, one row per text).
func forward<T>(_ nodes: [Node<T>], _ x: consuming Activations<T>, _ batch: Batch) -> Activations<T> {
    // Each node's output is handed on, not shared, so a node that works in place (an
    // activation) does not copy its input block first.
    var b = batch
    for n in nodes {
        x = n.forward(consume x, b)
        if case .meanPool = n { b = b.pooled }
    }
    return x
}

/// Runs nodes' backward in reverse order; nil once an input needs no gradient. `batch` is the
/// layout of the nodes' input, as given to `forward`.
func backward<T>(_ nodes: [Node<T>], _ delta: Matrix<T>, _ batch: Batch) -> Matrix<T>? {
    var d = delta
    let pool = nodes.lastIndex { if case .meanPool = $0 { return true } else { return false } }
    for (i, n) in nodes.enumerated().reversed() {
        guard let next = n.backward(d, pool.map { i > $0 } == true ? batch.pooled : batch) else { return nil }
        d = next
    }
    return d
}

// The element-wise loops of the layers below: Float's in C at the CPU's vector width
// (Sources/CElementwise), the same bits as the generic loops other scalar types use.

@inline(__always)
private func floats<T>(_ p: UnsafePointer<T>) -> UnsafePointer<Float> { UnsafeRawPointer(p).assumingMemoryBound(to: Float.self) }
@inline(__always)
private func floats<T>(_ p: UnsafeMutablePointer<T>) -> UnsafeMutablePointer<Float> {
    UnsafeMutableRawPointer(p).assumingMemoryBound(to: Float.self)
}

/// y_m += b_m for every member's row block.
private func addMemberBias<T>(_ y: inout Matrix<T>, _ b: Parameter<T>, _ batch: Batch) {
    let out = y.cols, B = batch.rows
    guard B > 0, out > 0 else { return }
    y.data.withUnsafeMutableBufferPointer { py in
        b.value.withUnsafeBufferPointer { pb in
            for m in 0..<batch.members {
                let ym = py.baseAddress! + m * B * out, bm = pb.baseAddress! + b.offset(m)
                if T.self == Float.self {
                    celem_add_row_f32(floats(ym), out, floats(bm), B, out)
                } else {
                    for r in 0..<B { for j in 0..<out { ym[r * out + j] += bm[j] } }
                }
            }
        }
    }
}

/// ∇b_m += Σ_rows of block m of δ.
private func accumulateBiasGrad<T>(_ delta: Matrix<T>, _ b: Parameter<T>, _ batch: Batch) {
    let out = delta.cols, B = batch.rows
    guard B > 0, out > 0 else { return }
    delta.data.withUnsafeBufferPointer { pd in
        b.grad.withUnsafeMutableBufferPointer { gb in
            for m in 0..<batch.members {
                let dm = pd.baseAddress! + m * B * out, gm = gb.baseAddress! + b.offset(m)
                if T.self == Float.self {
                    celem_sum_rows_f32(floats(gm), floats(dm), out, B, out)
                } else {
                    for r in 0..<B { for j in 0..<out { gm[j] += dm[r * out + j] } }
                }
            }
        }
    }
}

/// y[r][j] = x[r][j] · max(s[j], 0) for a rows × cols block (y may be x).
private func scaleByRelu<T: BLASScalar>(_ y: UnsafeMutablePointer<T>, _ x: UnsafePointer<T>, _ s: UnsafePointer<T>, rows: Int, cols: Int) {
    if T.self == Float.self {
        celem_scale_relu_f32(floats(y), cols, floats(x), cols, floats(s), rows, cols)
    } else {
        for r in 0..<rows { for j in 0..<cols { y[r * cols + j] = x[r * cols + j] * max(s[j], 0) } }
    }
}

/// acc[j] += Σ_r a[r][j] · b[r][j] (row after row) for the j with s[j] ≥ 0, over a rows × cols block.
private func sumProductsWhereNonnegative<T: BLASScalar>(_ acc: UnsafeMutablePointer<T>, _ a: UnsafePointer<T>, _ b: UnsafePointer<T>,
                                                        _ s: UnsafePointer<T>, rows: Int, cols: Int) {
    if T.self == Float.self {
        celem_sum_products_where_nonnegative_f32(floats(acc), floats(a), cols, floats(b), cols, floats(s), rows, cols)
    } else {
        for r in 0..<rows { for j in 0..<cols where s[j] >= 0 { acc[j] += a[r * cols + j] * b[r * cols + j] } }
    }
}

/// The members' copies of shared activations, stacked.
private func replicate<T>(_ x: Matrix<T>, members: Int) -> Matrix<T> {
    var out = Matrix<T>(rows: x.rows * members, cols: x.cols)
    let n = x.data.count
    for m in 0..<members { out.data.replaceSubrange(m * n ..< (m + 1) * n, with: x.data) }
    return out
}

// MARK: - Factored linear

/// A layer's dense member weights (out×in each, back to back) and the singular values they were
/// formed from, shared by a network and its replicas on other threads: formed once, under a lock,
/// by the first thread that needs them; formed again when the singular values change.
final class DenseWeights<T: BLASScalar>: @unchecked Sendable {
    private let lock = Mutex(())
    private var from: [T] = []
    private var weights: [T] = []

    /// Whether weights are kept for singular values `s`.
    func areFormed(for s: [T]) -> Bool { lock.withLock { _ in !weights.isEmpty && from == s } }

    /// The weights for singular values `s`: those kept, or (when `formIf`) new ones from `form`;
    /// nil when none are kept for `s` and `formIf` is false.
    func weights(for s: [T], formIf: Bool, _ form: () -> [T]) -> [T]? {
        lock.withLock { _ -> [T]? in
            if weights.isEmpty || from != s {
                guard formIf else { return nil }
                weights = form()
                from = s
            }
            return weights
        }
    }
}

/// A pretrained linear layer as SVE trains it: W = U diag(s) Vᵀ with U and Vᵀ frozen and shared,
/// per member singular values s_m and bias b_m: y = ((x V) ∘ s_m⁺) Uᵀ + b_m, s⁺ = max(s, 0).
/// Z = x V is one GEMM for every member while the input is still shared; the cost is B·k·(in+out)
/// multiply-adds per member, never a dense out×in weight per member. Backward (methods.md 2.2):
/// δh = δy U; ∇s = Σ_rows δh ∘ z where s ≥ 0; ∇b = Σ_rows δy; δx = (δh ∘ s⁺) Vᵀ.
final class FactoredLinear<T: BLASScalar> {
    let name: String
    let u: Parameter<T>, vt: Parameter<T>, s: Parameter<T>, b: Parameter<T>
    private var input = Activations<T>(m: Matrix(rows: 0, cols: 0), shared: true, needsGrad: false)
    private var z = Matrix<T>(rows: 0, cols: 0)
    /// Inference only: the members' dense weights W_m = U diag(s_m⁺) Vᵀ, shared with the
    /// layer's replicas on other threads (`shareDenseWeights`).
    private(set) var dense = DenseWeights<T>()
    private var lastWasInference = false

    /// Whether the dense inference weights are formed for the current singular values.
    var hasDenseWeights: Bool { dense.areFormed(for: s.value) }

    /// Uses `other`'s dense inference weights (formed once for both, by whichever needs them
    /// first): for a replica of this layer, whose singular values are kept equal to its own.
    func shareDenseWeights(with other: FactoredLinear<T>) { dense = other.dense }

    init(name: String, out: Int, in inD: Int, rank: Int, _ f: inout ParameterFactory<T>) {
        self.name = name
        u = f.make("\(name).U", [out, rank], trainable: false, perMember: false)
        vt = f.make("\(name).Vt", [rank, inD], trainable: false, perMember: false)
        s = f.make("\(name).s", [rank], trainable: true, perMember: true)
        b = f.make("\(name).b", [out], trainable: true, perMember: true)
    }

    var rank: Int { s.memberCount }
    var inFeatures: Int { vt.shape[1] }
    var outFeatures: Int { b.memberCount }

    func loadPretrained(_ p: Pretrained) {
        let basis = p.bases[name]!
        u.value = converted(basis.u.data)
        vt.value = converted(basis.vt.data)
    }

    /// s_m = S ∘ (1 + σ_init ε), then b_m = b + η.
    func initialise(member m: Int, _ p: Pretrained, options: InitOptions, rng: inout SeededGenerator) {
        let basis = p.bases[name]!
        for j in 0..<basis.rank {
            s.value[s.offset(m) + j] = T(Double(basis.s[j]) * (1 + options.sigmaInit * rng.normal()))
        }
        for o in 0..<basis.outDim {
            b.value[b.offset(m) + o] = T(Double(basis.bias[o]) + options.biasNoise * rng.normal())
        }
    }

    func forward(_ x: Activations<T>, _ batch: Batch) -> Activations<T> {
        lastWasInference = batch.inference
        if batch.inference, let y = denseForward(x, batch) {
            input = Activations(m: Matrix(rows: 0, cols: 0), shared: true, needsGrad: false)
            z = Matrix(rows: 0, cols: 0)
            return y
        }
        input = x
        let k = rank, out = outFeatures, inD = inFeatures, M = batch.members, B = batch.rows
        // Every element of z, h and y is written below (GEMMs with β = 0, the scaled copy).
        z = Matrix<T>(uninitializedRows: x.m.rows, cols: k)
        var h = Matrix<T>(uninitializedRows: M * B, cols: k)
        var y = Matrix<T>(uninitializedRows: M * B, cols: out)
        if B == 0 { return Activations(m: y, shared: false, needsGrad: true) }
        x.m.data.withUnsafeBufferPointer { px in
            vt.value.withUnsafeBufferPointer { pv in
                z.data.withUnsafeMutableBufferPointer { pz in
                    Linear<T>.apply(rows: x.m.rows, inFeatures: inD, outFeatures: k, x: px.baseAddress!, ldx: inD,
                                    weight: pv.baseAddress!, bias: nil, y: pz.baseAddress!, ldy: k)
                }
            }
        }
        h.data.withUnsafeMutableBufferPointer { ph in
            z.data.withUnsafeBufferPointer { pz in
                s.value.withUnsafeBufferPointer { ps in
                    for m in 0..<M {
                        scaleByRelu(ph.baseAddress! + m * B * k, pz.baseAddress! + (x.shared ? 0 : m * B * k),
                                    ps.baseAddress! + m * k, rows: B, cols: k)
                    }
                }
            }
        }
        h.data.withUnsafeBufferPointer { ph in
            u.value.withUnsafeBufferPointer { pu in
                y.data.withUnsafeMutableBufferPointer { py in
                    Linear<T>.apply(rows: M * B, inFeatures: k, outFeatures: out, x: ph.baseAddress!, ldx: k,
                                    weight: pu.baseAddress!, bias: nil, y: py.baseAddress!, ldy: out)
                }
            }
        }
        addMemberBias(&y, b, batch)
        return Activations(m: y, shared: false, needsGrad: true)
    }

    /// The same function through dense member weights, for inference: a row costs out·in
    /// multiply-adds instead of k·(in + out), half for a square layer of full rank (4 of the 6
    /// linear layers of a BERT layer), 0.8 for its FFN's. The weights are formed (M·out·in·k) when
    /// this call's factored products would cost as much, i.e. B·(in + out) ≥ out·in rows per
    /// member, or, when the parameters stay the same over many calls (`Batch.parametersStay`),
    /// when a row costs less through them than through the factors (x V is computed once for all
    /// members when the input is shared); they are kept while the singular values stay the same
    /// (sve-predict forms them once); never above 2^26 values. nil: use the factored path.
    /// Rounding differs from it at the level of the float type's epsilon.
    private func denseForward(_ x: Activations<T>, _ batch: Batch) -> Activations<T>? {
        let k = rank, out = outFeatures, inD = inFeatures, M = batch.members, B = batch.rows
        guard B > 0, M * out * inD <= 1 << 26 else { return nil }
        let paysNow = B * (inD + out) >= out * inD
        let cheaperPerRow = M * out * inD < (x.shared ? 1 : M) * inD * k + M * k * out
        let formed = dense.weights(for: s.value, formIf: paysNow || (batch.parametersStay && cheaperPerRow)) { () -> [T] in
            var w = [T](repeating: 0, count: M * out * inD)
            var us = [T](repeating: 0, count: out * k)
            for m in 0..<M {
                for o in 0..<out { for j in 0..<k { us[o * k + j] = u.value[o * k + j] * max(s.value[m * k + j], 0) } }
                us.withUnsafeBufferPointer { pu in
                    vt.value.withUnsafeBufferPointer { pv in
                        w.withUnsafeMutableBufferPointer { pw in
                            T.gemm(false, false, out, inD, k, 1, pu.baseAddress!, k, pv.baseAddress!, inD, 0,
                                   pw.baseAddress! + m * out * inD, inD)
                        }
                    }
                }
            }
            return w
        }
        guard let weights = formed else { return nil }
        // Every element is written by the members' products below (beta 0): not zeroed first.
        var y = Matrix<T>(uninitializedRows: M * B, cols: out)
        x.m.data.withUnsafeBufferPointer { px in
            weights.withUnsafeBufferPointer { pw in
                y.data.withUnsafeMutableBufferPointer { py in
                    for m in 0..<M {
                        Linear<T>.apply(rows: B, inFeatures: inD, outFeatures: out, x: px.baseAddress! + (x.shared ? 0 : m * B * inD),
                                        ldx: inD, weight: pw.baseAddress! + m * out * inD, bias: nil,
                                        y: py.baseAddress! + m * B * out, ldy: out)
                    }
                }
            }
        }
        addMemberBias(&y, b, batch)
        return Activations(m: y, shared: false, needsGrad: true)
    }

    func backward(_ delta: Matrix<T>, _ batch: Batch) -> Matrix<T>? {
        precondition(!lastWasInference, "FactoredLinear: backward after an inference forward")
        let k = rank, out = outFeatures, inD = inFeatures, M = batch.members, B = batch.rows
        let propagate = input.needsGrad
        accumulateBiasGrad(delta, b, batch)
        if B == 0 { return propagate ? Matrix(rows: 0, cols: inD) : nil }
        var dh = Matrix<T>(uninitializedRows: delta.rows, cols: k)  // written in full by backwardInput, as dx below
        delta.data.withUnsafeBufferPointer { pd in
            u.value.withUnsafeBufferPointer { pu in
                dh.data.withUnsafeMutableBufferPointer { ph in
                    Linear<T>.backwardInput(rows: delta.rows, inFeatures: k, outFeatures: out, dy: pd.baseAddress!, ldy: out,
                                            weight: pu.baseAddress!, dx: ph.baseAddress!, ldx: k)
                }
            }
        }
        let shared = input.shared
        s.grad.withUnsafeMutableBufferPointer { gs in
            s.value.withUnsafeBufferPointer { ps in
                dh.data.withUnsafeMutableBufferPointer { pd in
                    z.data.withUnsafeBufferPointer { pz in
                        for m in 0..<M {
                            sumProductsWhereNonnegative(gs.baseAddress! + m * k, pd.baseAddress! + m * B * k,
                                                        pz.baseAddress! + (shared ? 0 : m * B * k), ps.baseAddress! + m * k,
                                                        rows: B, cols: k)
                        }
                        if propagate {
                            for m in 0..<M {
                                let dm = pd.baseAddress! + m * B * k
                                scaleByRelu(dm, UnsafePointer(dm), ps.baseAddress! + m * k, rows: B, cols: k)
                            }
                        }
                    }
                }
            }
        }
        guard propagate else { return nil }
        var dx = Matrix<T>(uninitializedRows: delta.rows, cols: inD)
        dh.data.withUnsafeBufferPointer { ph in
            vt.value.withUnsafeBufferPointer { pv in
                dx.data.withUnsafeMutableBufferPointer { px in
                    Linear<T>.backwardInput(rows: delta.rows, inFeatures: inD, outFeatures: k, dy: ph.baseAddress!, ldy: k,
                                            weight: pv.baseAddress!, dx: px.baseAddress!, ldx: inD)
                }
            }
        }
        return dx
    }
}

// MARK: - Dense linear

/// A dense linear layer with one weight and bias per member, y_m = x_m W_mᵀ + b_m (Layers'
/// Linear kernel for each member's block): the deep ensemble's copies of a pretrained layer, and
/// the members' heads.
final class DenseLinear<T: BLASScalar> {
    let name: String
    let weight: Parameter<T>, bias: Parameter<T>
    private var input = Activations<T>(m: Matrix(rows: 0, cols: 0), shared: true, needsGrad: false)

    init(name: String, out: Int, in inD: Int, _ f: inout ParameterFactory<T>) {
        self.name = name
        weight = f.make("\(name).weight", [out, inD], trainable: true, perMember: true)
        bias = f.make("\(name).bias", [out], trainable: true, perMember: true)
    }

    var inFeatures: Int { weight.shape[2] }
    var outFeatures: Int { bias.memberCount }

    /// Every member starts from the pretrained dense weight.
    func loadPretrained(_ p: Pretrained) {
        let dense: [T] = converted(p.bases[name]!.weight().data)
        for m in 0..<weight.shape[0] {
            weight.value.replaceSubrange(weight.offset(m) ..< weight.offset(m) + dense.count, with: dense)
        }
    }

    /// b_m = b + η.
    func initialise(member m: Int, _ p: Pretrained, options: InitOptions, rng: inout SeededGenerator) {
        let basis = p.bases[name]!
        for o in 0..<basis.outDim {
            bias.value[bias.offset(m) + o] = T(Double(basis.bias[o]) + options.biasNoise * rng.normal())
        }
    }

    func forward(_ x: Activations<T>, _ batch: Batch) -> Activations<T> {
        input = x
        let out = outFeatures, inD = x.m.cols, M = batch.members, B = batch.rows
        var y = Matrix<T>(uninitializedRows: M * B, cols: out)  // written in full by the members' products
        if B > 0 {
            x.m.data.withUnsafeBufferPointer { pa in
                weight.value.withUnsafeBufferPointer { pw in
                    y.data.withUnsafeMutableBufferPointer { py in
                        for m in 0..<M {
                            let aOff = x.shared ? 0 : m * B * inD
                            Linear<T>.apply(rows: B, inFeatures: inD, outFeatures: out, x: pa.baseAddress! + aOff, ldx: inD,
                                            weight: pw.baseAddress! + weight.offset(m), bias: nil,
                                            y: py.baseAddress! + m * B * out, ldy: out)
                        }
                    }
                }
            }
        }
        addMemberBias(&y, bias, batch)
        return Activations(m: y, shared: false, needsGrad: true)
    }

    func backward(_ delta: Matrix<T>, _ batch: Batch) -> Matrix<T>? {
        let out = outFeatures, inD = input.m.cols, M = batch.members, B = batch.rows
        let propagate = input.needsGrad, shared = input.shared
        accumulateBiasGrad(delta, bias, batch)
        var dx = Matrix<T>(uninitializedRows: propagate ? M * B : 0, cols: inD)  // written in full by backwardInput
        if B == 0 { return propagate ? dx : nil }
        delta.data.withUnsafeBufferPointer { pd in
            input.m.data.withUnsafeBufferPointer { pa in
                weight.grad.withUnsafeMutableBufferPointer { gw in
                    for m in 0..<M {
                        let aOff = shared ? 0 : m * B * inD
                        Linear<T>.accumulateWeightGradient(rows: B, inFeatures: inD, outFeatures: out,
                                                           dy: pd.baseAddress! + m * B * out, ldy: out,
                                                           x: pa.baseAddress! + aOff, ldx: inD,
                                                           weightGrad: gw.baseAddress! + weight.offset(m))
                    }
                }
            }
            if propagate {
                weight.value.withUnsafeBufferPointer { pw in
                    dx.data.withUnsafeMutableBufferPointer { px in
                        for m in 0..<M {
                            Linear<T>.backwardInput(rows: B, inFeatures: inD, outFeatures: out, dy: pd.baseAddress! + m * B * out,
                                                    ldy: out, weight: pw.baseAddress! + weight.offset(m),
                                                    dx: px.baseAddress! + m * B * inD, ldx: inD)
                        }
                    }
                }
            }
        }
        return propagate ? dx : nil
    }
}

// MARK: - Head

/// Each member's linear head on the features: a dense linear layer named `head`, weights
/// ~ N(0, headStd²), bias 0.
final class Head<T: BLASScalar> {
    let linear: DenseLinear<T>

    init(classes: Int, features: Int, _ f: inout ParameterFactory<T>) {
        linear = DenseLinear(name: "head", out: classes, in: features, &f)
    }

    func initialise(member m: Int, options: InitOptions, rng: inout SeededGenerator) {
        let w = linear.weight, b = linear.bias
        for i in 0..<w.memberCount { w.value[w.offset(m) + i] = T(options.headStd * rng.normal()) }
        for i in 0..<b.memberCount { b.value[b.offset(m) + i] = 0 }
    }
}

// MARK: - LayerNorm

/// A pretrained LayerNorm (Layers' LayerNorm per row). SVE keeps it frozen and shared; a deep
/// ensemble trains one copy per member (the input is then replicated per member first).
final class LayerNormNode<T: BLASScalar> {
    let name: String
    let weight: Parameter<T>, bias: Parameter<T>
    let eps: T
    private var input = Activations<T>(m: Matrix(rows: 0, cols: 0), shared: true, needsGrad: false)
    private var cache = LayerNorm<T>.Cache()

    init(name: String, features d: Int, eps: T, trainable: Bool, _ f: inout ParameterFactory<T>) {
        self.name = name; self.eps = eps
        weight = f.make("\(name).weight", [d], trainable: trainable, perMember: trainable)
        bias = f.make("\(name).bias", [d], trainable: trainable, perMember: trainable)
    }

    var features: Int { bias.memberCount }

    func loadPretrained(_ p: Pretrained) {
        let l = p.layerNorms[name]!
        for m in 0..<(weight.perMember ? weight.shape[0] : 1) {
            for j in 0..<l.weight.count {
                weight.value[weight.offset(m) + j] = T(l.weight[j])
                bias.value[bias.offset(m) + j] = T(l.bias[j])
            }
        }
    }

    func forward(_ x: Activations<T>, _ batch: Batch) -> Activations<T> {
        var a = x
        if weight.perMember && a.shared { a = Activations(m: replicate(a.m, members: batch.members), shared: false, needsGrad: a.needsGrad) }
        input = a
        let d = features, rows = a.m.rows, B = batch.rows, shared = a.shared
        var y = a.m
        // Every element of x̂ and 1/σ is written below (rows of a member's block share its parameters).
        var xhat = Matrix<T>(uninitializedRows: rows, cols: d)
        var inv = [T](unsafeUninitializedCapacity: rows) { _, n in n = rows }
        let blockRows = shared ? rows : B
        if rows > 0 && blockRows > 0 {
            y.data.withUnsafeMutableBufferPointer { py in
            xhat.data.withUnsafeMutableBufferPointer { ph in
            inv.withUnsafeMutableBufferPointer { pi in
            weight.value.withUnsafeBufferPointer { pw in
            bias.value.withUnsafeBufferPointer { pb in
                for first in stride(from: 0, to: rows, by: blockRows) {
                    let m = shared ? 0 : first / B
                    LayerNorm<T>.normalize(rows: min(blockRows, rows - first), py.baseAddress! + first * d, d,
                                           pw.baseAddress! + weight.offset(m), pb.baseAddress! + bias.offset(m), eps,
                                           xhat: ph.baseAddress! + first * d, invStd: pi.baseAddress! + first)
                }
            }}}}}
        }
        cache = LayerNorm<T>.Cache(xhat: xhat, invStd: inv)
        return Activations(m: y, shared: shared, needsGrad: a.needsGrad || weight.trainable)
    }

    func backward(_ delta: Matrix<T>, _ batch: Batch) -> Matrix<T>? {
        let xhat = cache.xhat, d = xhat.cols, rows = xhat.rows, B = batch.rows
        let propagate = input.needsGrad, shared = input.shared
        var dx = Matrix<T>(rows: propagate ? rows : 0, cols: d)
        delta.data.withUnsafeBufferPointer { pd in
            xhat.data.withUnsafeBufferPointer { ph in
                if weight.trainable {
                    weight.grad.withUnsafeMutableBufferPointer { gw in
                        bias.grad.withUnsafeMutableBufferPointer { gb in
                            for r in 0..<rows {
                                let m = shared ? 0 : r / B
                                LayerNorm<T>.accumulateGradients(dy: pd.baseAddress! + r * d, xhat: ph.baseAddress! + r * d, d,
                                                                 weightGrad: gw.baseAddress! + weight.offset(m),
                                                                 biasGrad: gb.baseAddress! + bias.offset(m))
                            }
                        }
                    }
                }
                if propagate {
                    weight.value.withUnsafeBufferPointer { pw in
                        dx.data.withUnsafeMutableBufferPointer { px in
                            for r in 0..<rows {
                                let m = shared ? 0 : r / B
                                LayerNorm<T>.backwardRow(dy: pd.baseAddress! + r * d, xhat: ph.baseAddress! + r * d,
                                                         invStd: cache.invStd[r], d, weight: pw.baseAddress! + weight.offset(m),
                                                         dx: px.baseAddress! + r * d)
                            }
                        }
                    }
                }
            }
        }
        return propagate ? dx : nil
    }
}

// MARK: - Activation

/// An element-wise activation: GELU (Layers' GELU, with its derivative kept for backward), ReLU,
/// tanh.
final class ActivationNode<T: BLASScalar> {
    let kind: Activation
    private var needsGrad = false
    /// ReLU: the input (its sign gates the gradient); GELU and tanh: f'(x), kept by forward so
    /// that erf and exp run once per element.
    private var input = Matrix<T>(rows: 0, cols: 0)
    private var derivative: [T] = []

    init(_ kind: Activation) { self.kind = kind }

    /// In place when the caller hands its block over (as the loop over a stack's nodes does).
    func forward(_ x: consuming Activations<T>, _ batch: Batch) -> Activations<T> {
        needsGrad = x.needsGrad && !batch.inference
        var y = consume x
        if batch.inference && kind == .gelu {  // nothing to keep for backward
            GELU<T>().forwardInPlace(&y.m)
            return y
        }
        switch kind {
        case .relu:
            input = y.m
            y.m.data.withUnsafeMutableBufferPointer { p in for i in p.indices { p[i] = max(p[i], 0) } }
        case .tanh:
            derivative = [T](repeating: 0, count: y.m.data.count)
            y.m.data.withUnsafeMutableBufferPointer { p in
                for i in p.indices { let t = Glibc.tanh(Double(p[i])); p[i] = T(t); derivative[i] = T(1 - t * t) }
            }
        case .gelu:
            GELU<T>().forwardInPlace(&y.m, derivative: &derivative)
        }
        return y
    }

    func backward(_ delta: Matrix<T>) -> Matrix<T>? {
        guard needsGrad else { return nil }
        var d = delta
        switch kind {
        case .relu:
            d.data.withUnsafeMutableBufferPointer { pd in
                input.data.withUnsafeBufferPointer { px in for j in pd.indices where px[j] <= 0 { pd[j] = 0 } }
            }
        case .tanh, .gelu:
            // tanh' = 1 − tanh²; GELU' = Φ(x) + x φ(x).
            d.data.withUnsafeMutableBufferPointer { pd in
                derivative.withUnsafeBufferPointer { dv in for j in pd.indices { pd[j] *= dv[j] } }
            }
        }
        return d
    }
}

// MARK: - Residual

/// x + body(x): the body's nodes, then the skip connection (a shared input is broadcast to every
/// member's block).
final class Residual<T: BLASScalar> {
    let body: [Node<T>]
    private var inputNeedsGrad = false

    init(body: [Node<T>]) { self.body = body }

    func forward(_ x: Activations<T>, _ batch: Batch) -> Activations<T> {
        inputNeedsGrad = x.needsGrad
        var a = SVE.forward(body, x, batch)
        let B = batch.rows
        if x.shared && !a.shared {
            let d = a.m.cols
            a.m.data.withUnsafeMutableBufferPointer { p in
                x.m.data.withUnsafeBufferPointer { ps in
                    for r in 0..<a.m.rows {
                        let so = (r % B) * d, o = r * d
                        for j in 0..<d { p[o + j] += ps[so + j] }
                    }
                }
            }
        } else {
            a.m.data.withUnsafeMutableBufferPointer { p in
                x.m.data.withUnsafeBufferPointer { ps in for i in p.indices { p[i] += ps[i] } }
            }
        }
        a.needsGrad = a.needsGrad || x.needsGrad
        return a
    }

    func backward(_ delta: Matrix<T>, _ batch: Batch) -> Matrix<T>? {
        guard var d = SVE.backward(body, delta, batch), inputNeedsGrad else { return nil }
        d.data.withUnsafeMutableBufferPointer { p in
            delta.data.withUnsafeBufferPointer { ps in for j in p.indices { p[j] += ps[j] } }
        }
        return d
    }
}

// MARK: - Attention

/// BERT's self-attention core over token rows (Layers' SelfAttention.attend and its backward):
/// the query, key and value projections as nodes (factored for SVE, dense copies for a deep
/// ensemble), then softmax(Q Kᵀ/√d) V within each text of each member's block. The output
/// projection is a separate linear node of the stack.
final class AttentionNode<T: BLASScalar> {
    let projections: [Node<T>]
    let heads: Int
    private var inputNeedsGrad = false
    private var q = Matrix<T>(rows: 0, cols: 0), k = Matrix<T>(rows: 0, cols: 0), v = Matrix<T>(rows: 0, cols: 0)
    private var probabilities: [T] = []

    init(query: Node<T>, key: Node<T>, value: Node<T>, heads: Int) {
        projections = [query, key, value]; self.heads = heads
    }

    func forward(_ x: Activations<T>, _ batch: Batch) -> Activations<T> {
        inputNeedsGrad = x.needsGrad
        q = projections[0].forward(x, batch).m
        k = projections[1].forward(x, batch).m
        v = projections[2].forward(x, batch).m
        let ctx = SelfAttention<T>.attend(q: q, k: k, v: v, heads: heads, sequences: batch.allSequences,
                                          probabilities: &probabilities)
        return Activations(m: ctx, shared: false, needsGrad: true)
    }

    func backward(_ delta: Matrix<T>, _ batch: Batch) -> Matrix<T>? {
        let (dq, dk, dv) = SelfAttention<T>.attendBackward(delta, q: q, k: k, v: v, heads: heads,
                                                           sequences: batch.allSequences, probabilities: probabilities)
        let parts = [projections[0].backward(dq, batch), projections[1].backward(dk, batch), projections[2].backward(dv, batch)]
        guard inputNeedsGrad, var dx = parts[0] else { return nil }
        for p in parts.dropFirst() {
            guard let p else { continue }
            dx.data.withUnsafeMutableBufferPointer { a in p.data.withUnsafeBufferPointer { b in for i in a.indices { a[i] += b[i] } } }
        }
        return dx
    }
}

// MARK: - Mean pooling

/// The mean of each text's token rows (the sentence-transformers pooling of MiniLM): (M·B)
/// token rows in, (M·S) rows out, S texts per member.
final class MeanPool<T: BLASScalar> {
    private var inputNeedsGrad = false
    private var inputShared = false

    func forward(_ x: Activations<T>, _ batch: Batch) -> Activations<T> {
        inputNeedsGrad = x.needsGrad; inputShared = x.shared
        let d = x.m.cols, seqs = x.shared ? (batch.sequences ?? []) : batch.allSequences
        var y = Matrix<T>(rows: seqs.count, cols: d)
        x.m.data.withUnsafeBufferPointer { px in
            y.data.withUnsafeMutableBufferPointer { py in
                var acc = [Double](repeating: 0, count: d)
                for (i, s) in seqs.enumerated() where !s.isEmpty {
                    for j in 0..<d { acc[j] = 0 }
                    for r in s { for j in 0..<d { acc[j] += Double(px[r * d + j]) } }
                    let inv = 1 / Double(s.count)
                    for j in 0..<d { py[i * d + j] = T(acc[j] * inv) }
                }
            }
        }
        return Activations(m: y, shared: x.shared, needsGrad: x.needsGrad)
    }

    func backward(_ delta: Matrix<T>, _ batch: Batch) -> Matrix<T>? {
        guard inputNeedsGrad else { return nil }
        let d = delta.cols, seqs = inputShared ? (batch.sequences ?? []) : batch.allSequences
        var dx = Matrix<T>(rows: inputShared ? batch.rows : batch.members * batch.rows, cols: d)
        delta.data.withUnsafeBufferPointer { pd in
            dx.data.withUnsafeMutableBufferPointer { px in
                for (i, s) in seqs.enumerated() where !s.isEmpty {
                    let inv = T(1) / T(s.count)
                    for r in s { for j in 0..<d { px[r * d + j] = pd[i * d + j] * inv } }
                }
            }
        }
        return dx
    }
}

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
/// M member heads on top. Its nodes (Nodes.swift: factored or dense linear, LayerNorm, activation,
/// residual, head) each own their parameters, forward and backward; this type composes them from
/// the stack and runs the passes.
///
/// Activations of the members are stacked row-wise: a batch of B rows becomes an (M·B)×d matrix
/// whose row block m belongs to member m; the input stays B rows shared by every member until
/// something per member touches it.
public final class EnsembleNetwork<T: BLASScalar> {
    public let spec: StackSpec
    public let method: EnsembleMethod
    public let members: Int
    public let inputDim: Int
    public let classes: Int
    /// Width of the features the heads see.
    public let featureDim: Int
    /// Every parameter, frozen ones included, in a fixed order (the stack's, then the head).
    public let parameters: [Parameter<T>]

    /// The stack's nodes, the head last.
    let nodes: [Node<T>]
    /// The layout of the last forward's input, and the rows per member of its logits.
    private var batch = Batch(members: 1, rows: 0)
    private var outputRows = 0

    /// The layer shapes and LayerNorm widths the network was built from (for replicas).
    private let shapes: [String: (out: Int, in: Int, rank: Int)]
    private let layerNormDims: [String: Int]
    /// Copies of the network that threads run shards of a batch on (Parallel.swift).
    var replicaPool: [EnsembleNetwork<T>] = []
    /// Set by a program that only predicts, with parameters that no longer change, over many rows
    /// (sve-predict): inference forwards then run each linear layer through dense member weights,
    /// formed once, whenever a row costs less through them than through the factors.
    public var parametersStay = false

    /// Builds the network's structure with zero parameters; `initialise` or `load` fills them.
    public convenience init(spec: StackSpec, method: EnsembleMethod, members: Int, inputDim: Int, classes: Int,
                            shapes: [String: (out: Int, in: Int, rank: Int)], layerNormDims: [String: Int]) throws {
        try self.init(spec: spec, method: method, members: members, inputDim: inputDim, classes: classes,
                      shapes: shapes, layerNormDims: layerNormDims, sharing: [])
    }

    /// The network's structure; frozen parameters named in `sharing` are reused (the same
    /// objects), every other parameter is made with zero values.
    init(spec: StackSpec, method: EnsembleMethod, members: Int, inputDim: Int, classes: Int,
         shapes: [String: (out: Int, in: Int, rank: Int)], layerNormDims: [String: Int], sharing: [Parameter<T>]) throws {
        guard members >= 1 else { throw SVEError.spec("members must be at least 1") }
        guard classes >= 2 else { throw SVEError.data("need at least 2 classes, got \(classes)") }
        self.spec = spec; self.method = method; self.members = members
        self.inputDim = inputDim; self.classes = classes
        self.shapes = shapes; self.layerNormDims = layerNormDims
        var factory = ParameterFactory<T>(members: members, sharing: sharing)
        // The stack's ops, composed: a residual block's nodes become one Residual node.
        var open: [[Node<T>]] = [[]]
        var widths: [Int] = []
        var dim = inputDim
        func linear(_ name: String) throws -> Node<T> {
            guard let sh = shapes[name] else { throw SVEError.data("the basis has no layer '\(name)'") }
            guard sh.in == dim else {
                throw SVEError.shape("layer '\(name)' takes \(sh.in) inputs but receives \(dim) (check the order of the stack and the feature width)")
            }
            switch method {
            case .sve: return .factored(FactoredLinear(name: name, out: sh.out, in: sh.in, rank: sh.rank, &factory))
            case .deepEnsemble: return .dense(DenseLinear(name: name, out: sh.out, in: sh.in, &factory))
            }
        }
        for op in spec.ops {
            switch op {
            case .linear(let name):
                open[open.count - 1].append(try linear(name))
                dim = shapes[name]!.out
            case .attention(let name, let heads):
                let qkv = try ["query", "key", "value"].map { p -> Node<T> in
                    let n = "\(name).\(p)"
                    let node = try linear(n)
                    guard shapes[n]!.out == dim else {
                        throw SVEError.shape("attention '\(name)': '\(n)' maps \(dim) features to \(shapes[n]!.out): attention keeps the width")
                    }
                    return node
                }
                guard dim % heads == 0 else { throw SVEError.shape("attention '\(name)': \(dim) features do not split into \(heads) heads") }
                open[open.count - 1].append(.attention(AttentionNode(query: qkv[0], key: qkv[1], value: qkv[2], heads: heads)))
            case .meanPool:
                open[open.count - 1].append(.meanPool(MeanPool()))
            case .activation(let a):
                open[open.count - 1].append(.activation(ActivationNode(a)))
            case .layerNorm(let name, let eps):
                guard let d = layerNormDims[name] else { throw SVEError.data("no LayerNorm '\(name)' (need \(name).weight and \(name).bias)") }
                guard d == dim else { throw SVEError.shape("LayerNorm '\(name)' has \(d) features but receives \(dim)") }
                // SVE keeps the pretrained LayerNorm frozen and shared; a deep ensemble trains everything.
                open[open.count - 1].append(.layerNorm(LayerNormNode(name: name, features: d, eps: T(eps),
                                                                     trainable: method == .deepEnsemble, &factory)))
            case .residualBegin:
                widths.append(dim)
                open.append([])
            case .residualEnd:
                let d0 = widths.removeLast()
                guard d0 == dim else { throw SVEError.shape("a residual block maps \(d0) features to \(dim): it must keep the width") }
                let body = open.removeLast()
                open[open.count - 1].append(.residual(Residual(body: body)))
            }
        }
        featureDim = dim
        nodes = open[0] + [.head(Head(classes: classes, features: dim, &factory))]
        parameters = factory.made
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

    /// The random initialisation of methods.md 2.2, in a fixed order (member by member, node by
    /// node: ε then η, then the head) so that a seed always gives the same network.
    func initialise(bases: [String: LayerBasis], layerNorms: [String: LayerNormWeights],
                    options: InitOptions, rng: inout SeededGenerator) {
        let pretrained = Pretrained(bases: bases, layerNorms: layerNorms)
        for node in nodes { node.loadPretrained(pretrained) }
        for m in 0..<members {
            for node in nodes { node.initialise(member: m, pretrained, options: options, rng: &rng) }
        }
    }

    /// A copy of the network's structure for another thread: the frozen parameters are the same
    /// objects (read-only while training), the trainable ones its own (values copied, gradients
    /// zero), and so are the nodes with what they keep for backward.
    func replica() -> EnsembleNetwork<T> {
        let r = try! EnsembleNetwork(spec: spec, method: method, members: members, inputDim: inputDim, classes: classes,
                                     shapes: shapes, layerNormDims: layerNormDims, sharing: parameters)
        for (a, b) in zip(r.parameters, parameters) where a !== b { a.value = b.value }
        r.parametersStay = parametersStay
        for (a, b) in zip(r.nodes, nodes) { a.shareDenseWeights(with: b) }
        return r
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

    // MARK: - Forward and backward

    /// Logits, (M·B)×C, row block m = member m. `x` is B×inputDim shared by every member, or
    /// (M·B)×inputDim with one batch per member (`shared: false`). Keeps what backward needs.
    /// A token-level stack (`spec.tokenLevel`) takes token rows and `sequences`, the texts' rows
    /// (back to back, covering every row); its logits have one row per text: (M·S)×C.
    @_specialize(exported: true, where T == Float)
    @_specialize(exported: true, where T == Double)
    /// `inference`: no backward follows (prediction, validation), so that nodes may compute the
    /// same function another way (the factored layers through dense member weights, when that is
    /// cheaper); the logits agree with the training path's to rounding.
    public func forward(_ x: Matrix<T>, shared: Bool = true, sequences: [Range<Int>]? = nil, inference: Bool = false) -> Matrix<T> {
        precondition(x.cols == inputDim, "forward: input has \(x.cols) columns, expected \(inputDim)")
        let B = shared ? x.rows : x.rows / members
        precondition(shared || x.rows == B * members)
        precondition(spec.tokenLevel == (sequences != nil), "forward: a token-level stack needs the sequences, a pooled one none")
        if let sequences { precondition(sequences.allSatisfy { $0.lowerBound >= 0 && $0.upperBound <= B }) }
        batch = Batch(members: members, rows: B, sequences: sequences, inference: inference,
                      parametersStay: inference && parametersStay)
        outputRows = sequences?.count ?? B
        let out = SVE.forward(nodes, Activations(m: x, shared: shared, needsGrad: false), batch)
        precondition(!out.shared)  // the heads are per member
        return out.m
    }

    /// Accumulates into each trainable parameter's `grad` the gradient of a loss whose gradient
    /// with respect to the last forward's logits is `dLogits` ((M·B)×C), node by node from the head
    /// down to the first node whose input is the features.
    @_specialize(exported: true, where T == Float)
    @_specialize(exported: true, where T == Double)
    public func backward(_ dLogits: Matrix<T>) {
        _ = SVE.backward(nodes, dLogits, batch)
    }

    // MARK: - Loss

    /// The training loss of methods.md 2.2, mean over members of the mean cross-entropy, and its
    /// gradient (accumulated into the parameters' `grad`). `labels` has B entries (shared input)
    /// or M·B entries (one batch per member, aligned with the rows of `x`); at token level, one
    /// per sequence. `meanOver` (default: the batch's rows per member) is the number of rows the
    /// mean is taken over: a larger batch processed in parts, whose losses and gradients add up.
    @discardableResult
    @_specialize(exported: true, where T == Float)
    @_specialize(exported: true, where T == Double)
    public func lossAndGradient(_ x: Matrix<T>, labels: [Int], shared: Bool = true, sequences: [Range<Int>]? = nil,
                                meanOver: Int? = nil) -> Double {
        let logits = forward(x, shared: shared, sequences: sequences)
        let B = outputRows, C = classes
        var d = Matrix<T>(rows: logits.rows, cols: C)
        var loss = 0.0
        let scale = 1.0 / Double(members * (meanOver ?? B))
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

import LinearAlgebra
import Parallel
import Probability

/// Training options; the defaults are the reference defaults of methods.md 2.2.
public struct TrainOptions: Sendable {
    public var epochs = 10
    public var learningRate = 1e-3
    public var weightDecay = 0.05
    public var batchSize = 16
    public var clipNorm = 1.0
    /// Warm-up steps as a fraction of all steps.
    public var warmupFraction = 0.1
    /// Every member sees the same mini-batch (the SVE reference). When false, each member
    /// draws its own order of the training rows (the deep ensemble's default: independent runs).
    public var sharedBatches = true
    /// Token level: a mini-batch is run in parts of at most this many token rows, whose
    /// gradients add up (the activations kept for backward are those of one part).
    public var maxTokens = 8192
    /// Token level: the threads a mini-batch's texts are shared out to (each runs its shard's
    /// forward and backward; Parallel.swift). The pooled path ignores it.
    public var threads = 1
    public init() {}
}

public struct EpochReport: Sendable {
    public var epoch: Int
    public var trainLoss: Double
    /// Validation accuracy and NLL of the probability-averaged ensemble at T = 1 (nil without validation).
    public var valAccuracy: Double?
    public var valNLL: Double?
}

public struct TrainResult: Sendable {
    public var temperature: Double
    /// 1-based epoch whose parameters were kept (the last one without validation).
    public var bestEpoch: Int
    public var history: [EpochReport]
}

/// Examples to train or evaluate on: one row of `x` each (pooled features), or, for a token-level
/// stack, each text's token rows back to back with `lengths` (one label per text either way).
public struct Examples<T: BLASScalar> {
    public var x: Matrix<T>
    public var labels: [Int]
    /// Token rows of each text (nil: one row per example).
    public let lengths: [Int]?
    /// Where each text's rows start.
    let offsets: [Int]

    public init(x: Matrix<T>, labels: [Int], lengths: [Int]? = nil) {
        self.x = x; self.labels = labels; self.lengths = lengths
        var o: [Int] = [], t = 0
        for l in lengths ?? [] { o.append(t); t += l }
        offsets = o
        precondition(lengths == nil || (t == x.rows && lengths!.count == labels.count), "Examples: lengths disagree with the rows")
    }

    public var count: Int { lengths?.count ?? x.rows }

    /// The examples `ids`' rows, in that order, and their sequences (token level).
    func gather(_ ids: ArraySlice<Int>) -> (x: Matrix<T>, sequences: [Range<Int>]?) {
        let D = x.cols
        guard let lengths else {
            var m = Matrix<T>(rows: ids.count, cols: D)
            for (i, r) in ids.enumerated() { m.data.replaceSubrange(i * D ..< (i + 1) * D, with: x.data[r * D ..< (r + 1) * D]) }
            return (m, nil)
        }
        var seqs: [Range<Int>] = [], total = 0
        for i in ids { seqs.append(total ..< total + lengths[i]); total += lengths[i] }
        var m = Matrix<T>(rows: total, cols: D)
        for (i, r) in ids.enumerated() {
            let o = offsets[r] * D
            m.data.replaceSubrange(seqs[i].lowerBound * D ..< seqs[i].upperBound * D, with: x.data[o ..< o + lengths[r] * D])
        }
        return (m, seqs)
    }

    /// The examples `ids`, in that order.
    public func subset(_ ids: [Int]) -> Examples {
        Examples(x: gather(ids[...]).x, labels: ids.map { labels[$0] }, lengths: lengths.map { l in ids.map { l[$0] } })
    }

    /// `ids` in consecutive parts of at most `chunk` examples and, at token level, at most
    /// `maxTokens` token rows (a longer text is a part of its own).
    func parts(_ ids: ArraySlice<Int>, chunk: Int, maxTokens: Int) -> [ArraySlice<Int>] {
        var out: [ArraySlice<Int>] = [], start = ids.startIndex, tokens = 0
        for i in ids.indices {
            let t = lengths?[ids[i]] ?? 1
            if i > start && (i - start >= chunk || tokens + t > maxTokens) { out.append(ids[start ..< i]); start = i; tokens = 0 }
            tokens += t
        }
        if start < ids.endIndex { out.append(ids[start...]) }
        return out
    }
}

/// The texts' token counts of a token-level input, checked: each at least 1, adding up to `rows`.
public func checkedLengths(_ raw: [Int64], name: String, rows: Int) throws -> [Int] {
    if let bad = raw.firstIndex(where: { $0 < 1 || $0 > Int64(rows) }) {
        throw SVEError.data("'\(name)' gives text \(bad) \(raw[bad]) tokens (each text has from 1 to \(rows), the token rows)")
    }
    let lengths = raw.map { Int($0) }
    let total = lengths.reduce(0, +)
    guard total == rows else { throw SVEError.data("'\(name)' adds up to \(total) tokens but there are \(rows) token rows") }
    return lengths
}

/// Token rows fit the model: their width is its hidden size, no text is longer than its positions.
public func checkTokens(lengths: [Int], width: Int, hidden: Int, maxPositions: Int?) throws {
    guard width == hidden else {
        throw SVEError.data("token rows are \(width) wide but the model's hidden size is \(hidden) (hidden states of another model?)")
    }
    if let maxPositions, let i = lengths.firstIndex(where: { $0 > maxPositions }) {
        throw SVEError.data("text \(i) has \(lengths[i]) tokens but the model has \(maxPositions) positions (texts of another model?)")
    }
}

/// Member logits of rows `x` in the layout (M·N)×K, row block m = member m, computed in chunks.
@_specialize(exported: true, where T == Float)
public func memberLogits<T: BLASScalar>(_ net: EnsembleNetwork<T>, _ x: Matrix<T>, chunk: Int = 256, threads: Int = 1) -> [Double] {
    memberLogits(net, Examples(x: x, labels: [Int](repeating: 0, count: x.rows)), chunk: chunk, threads: threads)
}

/// Member logits of examples in the layout (M·N)×K, in parts of at most `chunk` examples and
/// `maxTokens` token rows. Rows: each part is one forward pass on one thread, the parts on up to
/// `threads` threads (each with a network of its own, OpenBLAS on one thread), so the logits
/// have the same bits on any number of threads (a GEMM's rounding depends on its shape, and
/// OpenBLAS's on how many threads split it). Texts: each part's texts shared out to the threads.
@_specialize(exported: true, where T == Float)
public func memberLogits<T: BLASScalar>(_ net: EnsembleNetwork<T>, _ data: Examples<T>, chunk: Int = 256,
                                        maxTokens: Int = 8192, threads: Int = 1) -> [Double] {
    let N = data.count, K = net.classes, M = net.members
    var out = [Double](repeating: 0, count: M * N * K)
    func store(_ part: ArraySlice<Int>, _ logits: Matrix<T>) {
        let start = part.startIndex, b = part.count
        for m in 0..<M {
            for r in 0..<b {
                for k in 0..<K { out[(m * N + start + r) * K + k] = Double(logits.data[(m * b + r) * K + k]) }
            }
        }
    }
    let parts = data.parts(Array(0..<N)[...], chunk: chunk, maxTokens: maxTokens)
    guard data.lengths == nil else {
        for part in parts { store(part, shardedForward(net, data, ids: part, threads: threads)) }
        return out
    }
    let workers = max(1, min(threads, parts.count))
    let nets = net.shardNetworks(workers)
    // A thread takes the next part whenever it is done with one, with the network of its own: a
    // thread slowed by the program's reader or writer does not hold the other back.
    let logits = BLASThreading.singleThreaded {
        Parallel.mapChunks(parts.count, threads: workers) { p, w in nets[w].forward(data.gather(parts[p]).x, inference: true) }
    }
    for (p, l) in logits.enumerated() { store(parts[p], l) }
    return out
}

/// Accuracy of the probability-averaged ensemble at temperature T.
public func ensembleAccuracy(memberLogits: [Double], members M: Int, rows N: Int, classes K: Int,
                             labels: [Int], temperature T: Double = 1, averaging: Averaging = .probs) -> Double {
    let p = ensemblePrediction(memberLogits: memberLogits, members: M, rows: N, classes: K,
                               temperature: T, averaging: averaging).probs
    var correct = 0
    for n in 0..<N where argmax(p[n * K ..< (n + 1) * K]) == labels[n] { correct += 1 }
    return N == 0 ? 0 : Double(correct) / Double(N)
}

/// The training loop of methods.md 2.2: mean cross-entropy over members, AdamW, global
/// gradient-norm clipping, linear warm-up then cosine decay to 0, the checkpoint with the best
/// validation accuracy (ties: lower validation NLL), then one temperature fitted on validation.
///
/// A deep ensemble is M independent models: each member's gradient is that of its own loss
/// (the mean loss's gradient times M) and is clipped on its own norm. SVE clips the global norm.
/// `rng` draws the batch order (continue it from the initialisation for reproducibility).
@_specialize(exported: true, where T == Float)
public func train<T: BLASScalar>(_ net: EnsembleNetwork<T>, x: Matrix<T>, labels: [Int],
                                 validation: (x: Matrix<T>, labels: [Int])?, options: TrainOptions,
                                 rng: inout SeededGenerator,
                                 progress: ((_ step: Int, _ total: Int, _ loss: Double, _ valAccuracy: Double?) -> Void)? = nil) throws -> TrainResult {
    guard labels.count == x.rows else { throw SVEError.shape("\(labels.count) labels for \(x.rows) rows") }
    return try train(net, data: Examples(x: x, labels: labels), validation: validation.map { Examples(x: $0.x, labels: $0.labels) },
                     options: options, rng: &rng, progress: progress)
}

/// `train` on examples: pooled rows, or texts' token rows for a token-level stack (every member
/// then sees the same mini-batch, run in parts of at most `options.maxTokens` token rows).
@_specialize(exported: true, where T == Float)
public func train<T: BLASScalar>(_ net: EnsembleNetwork<T>, data: Examples<T>,
                                 validation: Examples<T>?, options: TrainOptions,
                                 rng: inout SeededGenerator,
                                 progress: ((_ step: Int, _ total: Int, _ loss: Double, _ valAccuracy: Double?) -> Void)? = nil) throws -> TrainResult {
    let N = data.count, M = net.members, K = net.classes, D = data.x.cols
    let x = data.x, labels = data.labels
    guard N > 0 else { throw SVEError.data("no training rows") }
    guard labels.count == N else { throw SVEError.shape("\(labels.count) labels for \(N) rows") }
    guard (data.lengths != nil) == net.spec.tokenLevel else {
        throw SVEError.data(net.spec.tokenLevel ? "a token-level stack needs token rows with lengths" : "token rows need a stack with mean-pool")
    }
    let sharedBatches = options.sharedBatches || data.lengths != nil
    let B = max(1, min(options.batchSize, N))
    let stepsPerEpoch = (N + B - 1) / B
    let total = stepsPerEpoch * options.epochs
    let warmup = Int((options.warmupFraction * Double(total)).rounded())
    let params = net.trainable
    var opt = AdamW<T>(parameters: params, weightDecay: options.weightDecay)
    var history: [EpochReport] = []
    var best: (acc: Double, nll: Double, epoch: Int, values: [[T]])? = nil
    var step = 0
    var lastVal: Double? = nil
    for epoch in 1...max(1, options.epochs) where options.epochs > 0 {
        let perms: [[Int]] = sharedBatches ? [rng.permutation(N)] : (0..<M).map { _ in rng.permutation(N) }
        var lossSum = 0.0
        for s in 0..<stepsPerEpoch {
            let lo = s * B, hi = min(N, lo + B), b = hi - lo
            net.zeroGradients()
            var loss = 0.0
            if data.lengths != nil || (sharedBatches && options.threads > 1) {
                // Texts, or rows every member shares, in shards on threads of their own.
                loss = shardedLossAndGradient(net, data, ids: perms[0][lo ..< hi], meanOver: b,
                                              maxTokens: options.maxTokens, threads: options.threads)
            } else {
                let rowsPerInput = sharedBatches ? b : M * b
                var batch = Matrix<T>(rows: rowsPerInput, cols: D)
                var y = [Int](repeating: 0, count: rowsPerInput)
                for (pi, perm) in perms.enumerated() {
                    for r in 0..<b {
                        let src = perm[lo + r], dst = pi * b + r
                        for j in 0..<D { batch.data[dst * D + j] = x.data[src * D + j] }
                        y[dst] = labels[src]
                    }
                }
                loss = net.lossAndGradient(batch, labels: y, shared: sharedBatches)
            }
            guard loss.isFinite else { throw SVEError.numeric("the training loss became \(loss) at step \(step + 1) (lower --lr?)") }
            lossSum += loss
            switch net.method {
            case .sve:
                clipGradientNorm(params, maxNorm: options.clipNorm)
            case .deepEnsemble:
                for p in params { p.grad.withUnsafeMutableBufferPointer { g in for j in g.indices { g[j] *= T(M) } } }
                for m in 0..<M { clipGradientNorm(params, maxNorm: options.clipNorm, member: m) }
            }
            opt.update(params, lr: learningRate(step: step, total: total, warmup: warmup, base: options.learningRate),
                       threads: options.threads)
            step += 1
            progress?(step, total, lossSum / Double(s + 1), lastVal)
        }
        var report = EpochReport(epoch: epoch, trainLoss: lossSum / Double(stepsPerEpoch))
        if let v = validation, v.count > 0 {
            let logits = memberLogits(net, v, maxTokens: options.maxTokens, threads: options.threads)
            let acc = ensembleAccuracy(memberLogits: logits, members: M, rows: v.count, classes: K, labels: v.labels)
            let nll = ensembleNLL(memberLogits: logits, members: M, rows: v.count, classes: K, labels: v.labels, temperature: 1,
                                  eps: machineEpsilon(T.self))
            report.valAccuracy = acc; report.valNLL = nll
            lastVal = acc
            if best == nil || acc > best!.acc || (acc == best!.acc && nll < best!.nll) {
                best = (acc, nll, epoch, params.map(\.value))
            }
            progress?(step, total, report.trainLoss, acc)
        }
        history.append(report)
    }
    var bestEpoch = options.epochs
    if let best {
        for (p, v) in zip(params, best.values) { p.value = v }
        bestEpoch = best.epoch
    }
    var temperature = 1.0
    if let v = validation, v.count > 0 {
        let logits = memberLogits(net, v, maxTokens: options.maxTokens, threads: options.threads)
        temperature = fitTemperature(memberLogits: logits, members: M, rows: v.count, classes: K, labels: v.labels,
                                     eps: machineEpsilon(T.self))
    }
    return TrainResult(temperature: temperature, bestEpoch: bestEpoch, history: history)
}

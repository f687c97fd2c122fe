import LinearAlgebra
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

/// Member logits of rows `x` in the layout (M·N)×K, row block m = member m, computed in chunks.
@_specialize(exported: true, where T == Float)
public func memberLogits<T: BLASScalar>(_ net: EnsembleNetwork<T>, _ x: Matrix<T>, chunk: Int = 256) -> [Double] {
    let N = x.rows, K = net.classes, M = net.members
    var out = [Double](repeating: 0, count: M * N * K)
    var start = 0
    while start < N {
        let end = min(N, start + chunk)
        let logits = net.forward(x.rows(start..<end))
        let b = end - start
        for m in 0..<M {
            for r in 0..<b {
                for k in 0..<K { out[(m * N + start + r) * K + k] = Double(logits.data[(m * b + r) * K + k]) }
            }
        }
        start = end
    }
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
    let N = x.rows, M = net.members, K = net.classes, D = x.cols
    guard N > 0 else { throw SVEError.data("no training rows") }
    guard labels.count == N else { throw SVEError.shape("\(labels.count) labels for \(N) rows") }
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
        let perms: [[Int]] = options.sharedBatches ? [rng.permutation(N)] : (0..<M).map { _ in rng.permutation(N) }
        var lossSum = 0.0
        for s in 0..<stepsPerEpoch {
            let lo = s * B, hi = min(N, lo + B), b = hi - lo
            let rowsPerInput = options.sharedBatches ? b : M * b
            var batch = Matrix<T>(rows: rowsPerInput, cols: D)
            var y = [Int](repeating: 0, count: rowsPerInput)
            for (pi, perm) in perms.enumerated() {
                for r in 0..<b {
                    let src = perm[lo + r], dst = pi * b + r
                    for j in 0..<D { batch.data[dst * D + j] = x.data[src * D + j] }
                    y[dst] = labels[src]
                }
            }
            net.zeroGradients()
            let loss = net.lossAndGradient(batch, labels: y, shared: options.sharedBatches)
            guard loss.isFinite else { throw SVEError.numeric("the training loss became \(loss) at step \(step + 1) (lower --lr?)") }
            lossSum += loss
            switch net.method {
            case .sve:
                clipGradientNorm(params, maxNorm: options.clipNorm)
            case .deepEnsemble:
                for p in params { for j in p.grad.indices { p.grad[j] *= T(M) } }
                for m in 0..<M { clipGradientNorm(params, maxNorm: options.clipNorm, member: m) }
            }
            opt.update(params, lr: learningRate(step: step, total: total, warmup: warmup, base: options.learningRate))
            step += 1
            progress?(step, total, lossSum / Double(s + 1), lastVal)
        }
        var report = EpochReport(epoch: epoch, trainLoss: lossSum / Double(stepsPerEpoch))
        if let v = validation, v.x.rows > 0 {
            let logits = memberLogits(net, v.x)
            let acc = ensembleAccuracy(memberLogits: logits, members: M, rows: v.x.rows, classes: K, labels: v.labels)
            let nll = ensembleNLL(memberLogits: logits, members: M, rows: v.x.rows, classes: K, labels: v.labels, temperature: 1,
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
    if let v = validation, v.x.rows > 0 {
        let logits = memberLogits(net, v.x)
        temperature = fitTemperature(memberLogits: logits, members: M, rows: v.x.rows, classes: K, labels: v.labels,
                                     eps: machineEpsilon(T.self))
    }
    return TrainResult(temperature: temperature, bestEpoch: bestEpoch, history: history)
}

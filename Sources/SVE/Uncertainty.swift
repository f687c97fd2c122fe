import Probability
#if canImport(Glibc)
import Glibc
#endif

/// How members are combined (methods.md 2.3).
public enum Averaging: String, Sendable, CaseIterable {
    /// p̄ = (1/M) Σ_m softmax(logits_m / T): the paper.
    case probs
    /// p̄ = softmax((1/M) Σ_m logits_m / T): the public code.
    case logits
}

/// Predictions and uncertainties of one row block (methods.md 2.3). Natural log, 0·log 0 = 0.
public struct EnsemblePrediction: Sendable {
    /// N×K, the ensemble's probabilities.
    public var probs: [Double]
    /// N×M×K, each member's softmax(logits_m / T).
    public var memberProbs: [Double]
    /// H[p̄].
    public var entropy: [Double]
    /// (1/M) Σ_m H[p_m] (aleatoric).
    public var expectedEntropy: [Double]
    /// H[p̄] − expected entropy, clamped at 0 (epistemic).
    public var mutualInfo: [Double]
}

/// Combines member logits laid out as the network returns them ((M·N)×K, row block m = member m)
/// into the predictions and uncertainties of methods.md 2.3, with temperature T.
public func ensemblePrediction(memberLogits: [Double], members M: Int, rows N: Int, classes K: Int,
                               temperature T: Double = 1, averaging: Averaging = .probs) -> EnsemblePrediction {
    precondition(memberLogits.count == M * N * K)
    var probs = [Double](repeating: 0, count: N * K)
    var memberProbs = [Double](repeating: 0, count: N * M * K)
    var entropy = [Double](repeating: 0, count: N)
    var expected = [Double](repeating: 0, count: N)
    var mi = [Double](repeating: 0, count: N)
    var scaled = [Double](repeating: 0, count: K)
    var meanLogits = [Double](repeating: 0, count: K)
    for n in 0..<N {
        for k in 0..<K { meanLogits[k] = 0 }
        var eh = 0.0
        for m in 0..<M {
            let o = (m * N + n) * K
            for k in 0..<K { scaled[k] = memberLogits[o + k] / T; meanLogits[k] += scaled[k] / Double(M) }
            let p = softmax(scaled)
            let mo = (n * M + m) * K
            for k in 0..<K {
                memberProbs[mo + k] = p[k]
                probs[n * K + k] += p[k] / Double(M)
            }
            eh += Probability.entropy(p)
        }
        if averaging == .logits {
            let p = softmax(meanLogits)
            for k in 0..<K { probs[n * K + k] = p[k] }
        }
        entropy[n] = Probability.entropy(probs[n * K ..< (n + 1) * K])
        expected[n] = eh / Double(M)
        mi[n] = mutualInformation(entropyOfMean: entropy[n], expectedEntropy: expected[n])
    }
    return EnsemblePrediction(probs: probs, memberProbs: memberProbs, entropy: entropy,
                              expectedEntropy: expected, mutualInfo: mi)
}

/// Argmax with ties to the lowest index.
public func argmax(_ row: ArraySlice<Double>) -> Int {
    var best = row.startIndex
    for i in row.indices where row[i] > row[best] { best = i }
    return best - row.startIndex
}

/// Mean negative log-likelihood of the ensemble (probability averaging or logit averaging)
/// at temperature T, with the toolbox's one clip (`negativeLogLikelihood`): eps is the machine
/// epsilon of the dtype the predictions are held in, float32 by default as sve-predict writes
/// them, so that calib-metrics reports the same NLL for them.
public func ensembleNLL(memberLogits: [Double], members M: Int, rows N: Int, classes K: Int,
                        labels: [Int], temperature T: Double, averaging: Averaging = .probs,
                        eps: Double = machineEpsilon(Float.self)) -> Double {
    let p = ensemblePrediction(memberLogits: memberLogits, members: M, rows: N, classes: K,
                               temperature: T, averaging: averaging).probs
    var nll = 0.0
    for n in 0..<N { nll += negativeLogLikelihood(p[n * K + labels[n]], eps: eps) }
    return nll / Double(max(N, 1))
}

/// One temperature T for every member, fitted on validation logits by minimising the NLL of
/// the ensemble prediction (methods.md 2.2): golden-section search on log T over [1/20, 20].
public func fitTemperature(memberLogits: [Double], members M: Int, rows N: Int, classes K: Int,
                           labels: [Int], averaging: Averaging = .probs,
                           eps: Double = machineEpsilon(Float.self)) -> Double {
    if N == 0 { return 1 }
    func f(_ lt: Double) -> Double {
        ensembleNLL(memberLogits: memberLogits, members: M, rows: N, classes: K, labels: labels,
                    temperature: exp(lt), averaging: averaging, eps: eps)
    }
    var a = log(0.05), b = log(20.0)
    let g = (5.0.squareRoot() - 1) / 2
    var c = b - g * (b - a), d = a + g * (b - a)
    var fc = f(c), fd = f(d)
    for _ in 0..<60 {
        if fc < fd { b = d; d = c; fd = fc; c = b - g * (b - a); fc = f(c) }
        else { a = c; c = d; fc = fd; d = a + g * (b - a); fd = f(d) }
    }
    return exp((a + b) / 2)
}

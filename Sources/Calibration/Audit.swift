// Does an uncertainty signal mean anything here? (issue 13.) Given one number per row (a
// confidence: higher = more trust; or an uncertainty: higher = less) and whether each row's
// prediction was right, measure how well the signal ranks the errors, always beside a trivial
// baseline (max probability, score margin): AUROC for predicting an error, the risk–coverage
// curve, AURC and E-AURC, with paired bootstrap intervals.

import Failure

/// Which way a signal points.
public enum SignalDirection: String, Sendable, Codable {
    /// Higher = more trust (margin, max probability).
    case confidence
    /// Higher = less trust (σ, trace, entropy, mutual information).
    case uncertainty
}

/// A per-row signal to audit.
public struct Signal: Sendable {
    public var name: String
    public var direction: SignalDirection
    public var values: [Double]
    public init(name: String, direction: SignalDirection, values: [Double]) {
        self.name = name; self.direction = direction; self.values = values
    }
    /// Higher = more trust, whatever the direction.
    public var confidence: [Double] { direction == .confidence ? values : values.map { -$0 } }
}

/// One signal's figures.
public struct SignalAudit: Sendable, Codable, Equatable {
    public var name: String
    public var direction: SignalDirection
    /// P(an error is less trusted than a correct row), ties ½ (Mann-Whitney): 0.5 = no better than
    /// chance, 1 = every error below every correct row. nil without both errors and correct rows.
    public var aurocErrors: Double?
    /// Area under the risk–coverage curve: the mean selective risk over coverages 1/N … N/N.
    public var aurc: Double
    /// AURC minus that of a perfect ranking (errors last).
    public var eaurc: Double
    /// Selective risk (error rate of the most trusted rows) at coverages 0.50, 0.80, 0.90, 0.95.
    public var riskAtCoverage: [String: Double]
    /// The curve at coverages 0.01, 0.02, …, 1.00: (coverage, risk).
    public var curve: [[Double]]
    /// 95 % bootstrap intervals of auroc_errors, aurc, eaurc.
    public var intervals: [String: Interval]?
}

/// The audit of one signal against the baseline on the same rows and outcome.
public struct UncertaintyAudit: Sendable, Codable, Equatable {
    /// What "correct" means ("argmax == label", "hit@1").
    public var outcome: String
    public var rows: Int
    public var errors: Int
    public var errorRate: Double
    public var signal: SignalAudit
    public var baseline: SignalAudit?
    /// Paired bootstrap intervals of signal − baseline (auroc_errors, aurc, eaurc): an interval
    /// that excludes 0 says the two differ on resamples of these rows.
    public var difference: [String: Interval]?
    public var bootstrap: Int?
    public var seed: UInt64?
}

/// Audits `signal` (and `baseline`) against per-row correctness. With `bootstrap` > 0, percentile
/// intervals from that many resamples of the rows (the same resamples for both signals, so the
/// difference is paired), seeded like every bootstrap of the toolbox; resamples in which AUROC is
/// undefined (no error, or no correct row) are left out of the AUROC intervals.
public func auditUncertainty(signal: Signal, baseline: Signal?, correct: [Bool], outcome: String,
                             bootstrap: Int = 0, seed: UInt64 = 0) throws -> UncertaintyAudit {
    let n = correct.count
    guard n > 0 else { throw MetricsError.data("no rows to audit: N = 0") }
    for s in [signal] + (baseline.map { [$0] } ?? []) {
        precondition(s.values.count == n)
        if let i = s.values.firstIndex(where: { !$0.isFinite }) {
            throw MetricsError.data("\(s.name): row \(i) holds \(s.values[i]) (the audit needs a finite value per row)")
        }
    }
    let errors = correct.lazy.filter { !$0 }.count
    var a = UncertaintyAudit(outcome: outcome, rows: n, errors: errors, errorRate: Double(errors) / Double(n),
                             signal: signalAudit(signal, correct: correct), baseline: baseline.map { signalAudit($0, correct: correct) })
    guard bootstrap > 0 else { return a }
    let names = ["auroc_errors", "aurc", "eaurc"]
    let rankings = ([signal] + (baseline.map { [$0] } ?? [])).map { WeightedRanking(confidence: $0.confidence, correct: correct) }
    // One pass per resample: the signal's figures, the baseline's, and their differences.
    // A resample without an error (or without a correct row) has no AUROC: it is left out of
    // that interval, as it is of the difference's.
    let iv = bootstrapIntervals(rows: n, replicates: bootstrap, seed: seed, skipUndefined: true) { w in
        let v = rankings.map { r -> [Double?] in let (auroc, aurc, eaurc) = r.figures(weights: w); return [auroc, aurc, eaurc] }
        guard v.count == 2 else { return v[0] }
        return v[0] + v[1] + zip(v[0], v[1]).map { x, y in x.flatMap { x in y.map { x - $0 } } }
    }
    func pick(_ offset: Int) -> [String: Interval] {
        var out: [String: Interval] = [:]
        for (k, name) in names.enumerated() { if let i = iv[offset + k] { out[name] = i } }
        return out
    }
    a.signal.intervals = pick(0)
    if baseline != nil {
        a.baseline!.intervals = pick(3)
        a.difference = pick(6)
    }
    a.bootstrap = bootstrap
    a.seed = seed
    return a
}

/// The point estimates: the library's `auroc` and `RiskCoverage`.
func signalAudit(_ s: Signal, correct: [Bool]) -> SignalAudit {
    let c = s.confidence
    let rc = RiskCoverage(confidence: c, correct: correct)
    let levels = [0.5, 0.8, 0.9, 0.95]
    return SignalAudit(
        name: s.name, direction: s.direction,
        aurocErrors: auroc(scores: c.map { -$0 }, positive: correct.map { !$0 }),
        aurc: rc.aurc, eaurc: rc.excessAURC,
        riskAtCoverage: Dictionary(uniqueKeysWithValues: levels.map { (cFormat("%.2f", $0), rc.risk(atCoverage: $0) ?? .nan) }),
        curve: (1...100).map { j in let cov = Double(j) / 100; return [cov, rc.risk(atCoverage: cov) ?? .nan] },
        intervals: nil)
}

/// AUROC (errors vs correct rows), AURC and E-AURC of a bootstrap resample given as a count per
/// row, in O(N) per resample: the rows are sorted once, into groups of equal confidence.
struct WeightedRanking {
    /// Row numbers, most trusted first.
    let order: [Int]
    /// Start of each group of equal confidence in `order` (and `order.count` at the end).
    let groupStarts: [Int]
    let correct: [Bool]

    init(confidence: [Double], correct: [Bool]) {
        order = confidence.indices.sorted { confidence[$0] > confidence[$1] || (confidence[$0] == confidence[$1] && $0 < $1) }
        var starts: [Int] = []
        for (k, i) in order.enumerated() where k == 0 || confidence[order[k - 1]] != confidence[i] { starts.append(k) }
        groupStarts = starts + [order.count]
        self.correct = correct
    }

    /// As `auroc` and `RiskCoverage` on the sample in which row i appears `weights[i]` times.
    func figures(weights w: [UInt32]) -> (auroc: Double?, aurc: Double, eaurc: Double) {
        var correctAbove = 0.0, pairs = 0.0          // (error, correct) pairs ordered right, ties ½
        var position = 0.0, errorsBefore = 0.0, aurcSum = 0.0
        for g in 0..<(groupStarts.count - 1) {
            var e = 0.0, c = 0.0
            for k in groupStarts[g]..<groupStarts[g + 1] {
                let i = order[k], v = Double(w[i])
                if correct[i] { c += v } else { e += v }
            }
            pairs += e * correctAbove + 0.5 * e * c
            correctAbove += c
            // Within a tie group the errors are spread evenly (the expectation over orderings).
            let size = e + c
            if size > 0 {
                let rate = e / size
                var t = 1.0
                while t <= size { aurcSum += (errorsBefore + t * rate) / (position + t); t += 1 }
            }
            position += size; errorsBefore += e
        }
        let total = position, errors = errorsBefore
        let auroc: Double? = errors > 0 && correctAbove > 0 ? pairs / (errors * correctAbove) : nil
        let aurc = aurcSum / total
        // A perfect ranking: every correct row first.
        var optimal = 0.0
        if errors > 0 {
            let firstError = total - errors
            var i = firstError + 1
            while i <= total { optimal += (i - firstError) / i; i += 1 }
        }
        return (auroc, aurc, aurc - optimal / total)
    }
}

extension ClassificationAccumulator {
    /// Per in-distribution row, in input order: the top-label confidence (max probability)…
    /// (not after a report with `reportSortsRowsInPlace`).
    public var rowConfidence: [Double] {
        precondition(!rowKeysSorted, "rowConfidence after a report that sorted the kept rows in place (reportSortsRowsInPlace)")
        return rowKeys.isEmpty ? confidence : rowKeys.map { float32RowValues($0).confidence }
    }
    /// …and whether the argmax was the label (empty unless `keepRows`).
    public var rowCorrect: [Bool] {
        precondition(!rowKeysSorted, "rowCorrect after a report that sorted the kept rows in place (reportSortsRowsInPlace)")
        return rowKeys.isEmpty ? correct : rowKeys.map { $0 & 1 == 1 }
    }
}

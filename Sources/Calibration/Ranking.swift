// Rank-based metrics: OOD detection, selective prediction, correlations (methods.md section 3).
// All sums in Float64.

/// Average ranks (1-based), ties sharing the mean of their positions, like
/// scipy.stats.rankdata(method="average").
public func averageRanks(_ x: [Double]) -> [Double] {
    let order = x.indices.sorted { x[$0] < x[$1] || (x[$0] == x[$1] && $0 < $1) }
    var ranks = [Double](repeating: 0, count: x.count)
    var i = 0
    while i < order.count {
        var j = i
        while j + 1 < order.count && x[order[j + 1]] == x[order[i]] { j += 1 }
        let r = Double(i + j) / 2 + 1
        for k in i...j { ranks[order[k]] = r }
        i = j + 1
    }
    return ranks
}

/// Pearson's correlation coefficient (two-pass, Float64); nil when either side is constant
/// or there are fewer than two values.
public func pearson(_ x: [Double], _ y: [Double]) -> Double? {
    precondition(x.count == y.count)
    let n = x.count
    guard n >= 2 else { return nil }
    let mx = x.reduce(0, +) / Double(n), my = y.reduce(0, +) / Double(n)
    var sxy = 0.0, sxx = 0.0, syy = 0.0
    for i in 0..<n {
        let dx = x[i] - mx, dy = y[i] - my
        sxy += dx * dy; sxx += dx * dx; syy += dy * dy
    }
    guard sxx > 0, syy > 0 else { return nil }
    return max(-1, min(1, sxy / (sxx.squareRoot() * syy.squareRoot())))
}

/// Spearman's rank correlation: Pearson on average ranks (ties share their mean rank).
public func spearman(_ x: [Double], _ y: [Double]) -> Double? {
    pearson(averageRanks(x), averageRanks(y))
}

/// Area under the ROC curve by the Mann-Whitney statistic: the probability that a positive
/// scores higher than a negative, ties counted one half. nil without both classes.
public func auroc(scores: [Double], positive: [Bool]) -> Double? {
    precondition(scores.count == positive.count)
    let nPos = positive.lazy.filter { $0 }.count
    let nNeg = positive.count - nPos
    guard nPos > 0, nNeg > 0 else { return nil }
    let ranks = averageRanks(scores)
    var sum = 0.0
    for i in ranks.indices where positive[i] { sum += ranks[i] }
    let u = sum - Double(nPos) * Double(nPos + 1) / 2
    return u / (Double(nPos) * Double(nNeg))
}

/// Cumulative true/false positive counts at each distinct score, from the highest score down
/// (the points of sklearn's roc_curve / precision_recall_curve, without intermediate dropping).
func thresholdCounts(scores: [Double], positive: [Bool]) -> (tp: [Int], fp: [Int]) {
    let order = scores.indices.sorted { scores[$0] > scores[$1] }
    var tp: [Int] = [], fp: [Int] = []
    var t = 0, f = 0
    for (k, i) in order.enumerated() {
        if positive[i] { t += 1 } else { f += 1 }
        if k + 1 == order.count || scores[order[k + 1]] != scores[i] {
            tp.append(t); fp.append(f)
        }
    }
    return (tp, fp)
}

/// Average precision, step-wise: Σ_n (R_n − R_{n−1}) P_n over the distinct score thresholds
/// (sklearn.metrics.average_precision_score). nil without positives.
public func averagePrecision(scores: [Double], positive: [Bool]) -> Double? {
    let (tp, fp) = thresholdCounts(scores: scores, positive: positive)
    guard let total = tp.last, total > 0 else { return nil }
    var ap = 0.0, prevRecall = 0.0
    for i in tp.indices {
        let recall = Double(tp[i]) / Double(total)
        let precision = Double(tp[i]) / Double(tp[i] + fp[i])
        ap += (recall - prevRecall) * precision
        prevRecall = recall
    }
    return ap
}

/// False-positive rate at the first ROC point whose true-positive rate reaches `tpr`
/// (default 95 %), positives being the in-distribution rows and `scores` their confidence.
/// nil without both classes.
public func fprAtTPR(scores: [Double], positive: [Bool], tpr target: Double = 0.95) -> Double? {
    let (tp, fp) = thresholdCounts(scores: scores, positive: positive)
    guard let p = tp.last, let n = fp.last, p > 0, n > 0 else { return nil }
    for i in tp.indices where Double(tp[i]) / Double(p) >= target {
        return Double(fp[i]) / Double(n)
    }
    return 1
}

/// OOD detection quality of one uncertainty score (higher = more likely out of distribution).
public struct OODScores: Sendable, Codable, Equatable {
    /// P(score of an OOD row > score of an in-distribution row), ties ½.
    public var auroc: Double?
    /// Average precision with in-distribution rows as positives, ranked by −score.
    public var auprIn: Double?
    /// Average precision with OOD rows as positives, ranked by score.
    public var auprOut: Double?
    /// Fraction of OOD rows kept when the threshold keeps 95 % of in-distribution rows.
    public var fpr95: Double?

    public init(uncertainty: [Double], ood: [Bool]) {
        let confidence = uncertainty.map { -$0 }
        let id = ood.map { !$0 }
        auroc = Calibration.auroc(scores: uncertainty, positive: ood)
        auprIn = averagePrecision(scores: confidence, positive: id)
        auprOut = averagePrecision(scores: uncertainty, positive: ood)
        fpr95 = fprAtTPR(scores: confidence, positive: id)
    }
}

/// Selective prediction (risk-coverage): rows sorted by confidence, most confident first; the
/// selective risk at coverage i/N is the error rate of the first i rows. Tied confidences
/// have no order: the curve takes the expectation over their orderings (errors spread evenly
/// within a tie group), so the result does not depend on how a sort breaks ties.
public struct RiskCoverage: Sendable {
    /// Expected errors among the first i rows, i = 0...N.
    public let cumulativeErrors: [Double]

    public init(confidence: [Double], correct: [Bool]) {
        precondition(confidence.count == correct.count)
        var rows = zip(confidence, correct).map { (c: $0, ok: $1) }
        rows.sort { $0.c > $1.c }
        self.init(sortedDescending: rows)
    }

    /// From rows already sorted by confidence, highest first.
    public init<Rows: RandomAccessCollection>(sortedDescending all: Rows)
        where Rows.Element == (c: Double, ok: Bool), Rows.Index == Int {
        let count = all.count
        // Every element is written below (cum[i] for every point i ≥ 1), so not zeroed first.
        var cum = [Double](unsafeUninitializedCapacity: count + 1) { c, n in c[0] = 0; n = count + 1 }
        cum.withUnsafeMutableBufferPointer { c in Self.walk(all) { i, v in c[i] = v } }
        cumulativeErrors = cum
    }

    /// Calls `body(i, E_i)` for i = 1...N in order, E_i the expected errors among the first i
    /// rows: a tie group's errors spread evenly over it, its last point the exact count.
    /// Returns the rows' errors.
    @inline(__always)
    @discardableResult
    static func walk<Rows: RandomAccessCollection>(_ all: Rows, _ body: (Int, Double) -> Void) -> Int
        where Rows.Element == (c: Double, ok: Bool), Rows.Index == Int {
        let first = all.startIndex, count = all.count
        return walk(count: count, { i in
            var j = i
            let head = all[first + i]
            var e = 1 &- Int(head.ok.bit)
            while j + 1 < count, case let next = all[first + j + 1], next.c == head.c { j += 1; e &+= 1 &- Int(next.ok.bit) }
            return (j, e)
        }, body)
    }

    /// `walk` of `count` rows whose tie groups `group(i)` gives: the last row of the group that
    /// starts at row i, and its wrong rows.
    @inline(__always)
    static func walk(count: Int, _ group: (Int) -> (last: Int, errors: Int), _ body: (Int, Double) -> Void) -> Int {
        var i = 0, errorsBefore = 0
        while i < count {
            let (j, e) = group(i)
            let rate = Double(e) / Double(j - i + 1)
            for k in i..<j { body(k + 1, Double(errorsBefore) + Double(k - i + 1) * rate) }
            body(j + 1, Double(errorsBefore + e))
            errorsBefore += e
            i = j + 1
        }
        return errorsBefore
    }

    /// The point of coverage c among N rows: the ceil(c · N) most confident, at least one.
    static func point(atCoverage c: Double, count: Int) -> Int {
        min(count, max(1, Int((c * Double(count)).rounded(.up))))
    }

    /// N · AURC of a perfect ranking of N rows with `errors` wrong: all correct rows first.
    static func optimalSum(count n: Int, errors: Int) -> Double {
        var s = 0.0
        if errors > 0 {
            for i in (n - errors + 1)...n { s += Double(i - (n - errors)) / Double(i) }
        }
        return s
    }

    public var count: Int { cumulativeErrors.count - 1 }

    /// Selective risk of the ceil(coverage · N) most confident rows.
    public func risk(atCoverage c: Double) -> Double? {
        guard count > 0 else { return nil }
        let i = Self.point(atCoverage: c, count: count)
        return cumulativeErrors[i] / Double(i)
    }

    /// AURC: the mean of the selective risk over coverages 1/N ... N/N.
    public var aurc: Double {
        var s = 0.0
        for i in 1..<cumulativeErrors.count { s += cumulativeErrors[i] / Double(i) }
        return s / Double(count)
    }

    /// AURC of a perfect ranking (all correct rows first), computed exactly on the same N
    /// points. (The often-copied r + (1 − r) ln(1 − r) is its continuous approximation.)
    public var optimalAURC: Double {
        let n = count
        return Self.optimalSum(count: n, errors: Int(cumulativeErrors[n].rounded())) / Double(n)
    }

    /// E-AURC = AURC − AURC of a perfect ranking.
    public var excessAURC: Double { aurc - optimalAURC }

    /// AURC, E-AURC and the selective risk at each of `coverages`, the values of
    /// `RiskCoverage(sortedDescending:)` to the last bit (the same terms, summed in the same
    /// order) in one pass that keeps no curve: calib-metrics needs these four figures, not the
    /// N + 1 points (80 MB and their page faults at 10^7 rows).
    public static func summary<Rows: RandomAccessCollection>(sortedDescending all: Rows, coverages: [Double])
        -> (aurc: Double, excessAURC: Double, risks: [Double?])
        where Rows.Element == (c: Double, ok: Bool), Rows.Index == Int {
        let w = walkSummary(sortedDescending: all, coverages: coverages)
        return (w.aurc, excessAURC(aurc: w.aurc, count: all.count, optimalSum: optimalSum(count: all.count, errors: w.errors)), w.risks)
    }

    /// E-AURC from the AURC and the perfect ranking's `optimalSum`, as `excessAURC` computes it.
    static func excessAURC(aurc: Double, count: Int, optimalSum: Double) -> Double {
        count > 0 ? aurc - optimalSum / Double(count) : .nan
    }

    /// `summary`'s walk alone: AURC, the rows' errors and the risks, without the perfect
    /// ranking's sum (a second loop as long as the errors, which another thread can add
    /// meanwhile from the error count alone).
    static func walkSummary<Rows: RandomAccessCollection>(sortedDescending all: Rows, coverages: [Double])
        -> (aurc: Double, errors: Int, risks: [Double?])
        where Rows.Element == (c: Double, ok: Bool), Rows.Index == Int {
        let first = all.startIndex, count = all.count
        return walkSummary(count: count, coverages: coverages) { i in
            var j = i
            let head = all[first + i]
            var e = 1 &- Int(head.ok.bit)
            while j + 1 < count, case let next = all[first + j + 1], next.c == head.c { j += 1; e &+= 1 &- Int(next.ok.bit) }
            return (j, e)
        }
    }

    /// `walkSummary` of rows sorted by `sortedByConfidenceDescending`: the same figures, the tie
    /// groups found from the keys (no confidence decoded: a third of the walk's time).
    static func walkSummary(sortedDescending all: RowsByConfidence, coverages: [Double]) -> (aurc: Double, errors: Int, risks: [Double?]) {
        walkSummary(count: all.count, coverages: coverages, all.tieGroup(from:))
    }

    @inline(__always)
    static func walkSummary(count: Int, coverages: [Double], _ group: (Int) -> (last: Int, errors: Int)) -> (aurc: Double, errors: Int, risks: [Double?]) {
        guard count > 0 else { return (.nan, 0, coverages.map { _ in nil }) }
        // The points asked for, in the order the walk reaches them.
        let targets = coverages.indices.map { (at: point(atCoverage: coverages[$0], count: count), slot: $0) }.sorted { $0.at < $1.at }
        var risks = [Double?](repeating: nil, count: coverages.count)
        var t = 0, s = 0.0
        let errors = walk(count: count, group) { i, v in
            s += v / Double(i)
            while t < targets.count && targets[t].at == i { risks[targets[t].slot] = v / Double(i); t += 1 }
        }
        return (s / Double(count), errors, risks)
    }
}

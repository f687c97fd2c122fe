// Metrics of predicted class probabilities against labels (methods.md section 3), accumulated
// row by row so that a stream of any length is scored in bounded memory: only a few numbers per
// row are kept (confidence, correctness; losses when bootstrapping), never the N×K probabilities.
import Failure
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Parallel
import Probability

/// Input that cannot be scored; the message names the tensor and row.
public enum MetricsError: KindedError, CustomStringConvertible, Sendable {
    case data(String)
    public var description: String { if case .data(let m) = self { return m }; return "" }
    public var kind: FailureKind { .badData }
    public var message: String { description }
}

public struct ClassificationOptions: Sendable {
    /// Number of equal-width (and equal-mass) bins.
    public var bins = 15
    /// The binning reported as `ece` (all three conventions are computed anyway).
    public var convention: BinningConvention = .standard
    /// The dtype the probabilities came in: eps for NLL clipping and netcal, torchmetrics' edges.
    public var precision: InputPrecision = .float32
    /// Classwise ECE (costs one bin lookup per probability).
    public var classwise = true
    /// Keep confidence and correctness per row: equal-mass ECE, AURC, risk-coverage.
    public var keepRows = true
    /// The report sorts the kept float32 rows where they are instead of a copy of them (4
    /// bytes a row): for a caller that reports once, and then neither adds rows nor reads
    /// `rowConfidence` or `rowCorrect` (calib-metrics without an audit).
    public var reportSortsRowsInPlace = false
    /// Keep per-row losses for bootstrap intervals.
    public var keepLosses = false
    /// Compute the predictive entropy of every row (OOD scores, ensembles).
    public var entropy = false
    /// Keep per-row uncertainty scores and OOD flags for OOD detection metrics.
    public var ood = false
    /// More than 1: a large block's classwise sums are added on a second thread, meanwhile
    /// (the same sums to the last bit).
    public var threads = 1

    public init() {}
}

/// Classwise ECE's sums, per class and bin (class-major): rows, summed p_k, and rows labelled k.
/// Held by fixed pointers, not arrays, so that two threads can add the sums of different
/// classes at once (an array's `withUnsafeMutableBufferPointer` moves its storage out while it
/// runs, and another thread would then find it empty).
final class ClasswiseSums: @unchecked Sendable {
    let count: UnsafeMutableBufferPointer<Int>
    let sumP: UnsafeMutableBufferPointer<Double>, labelled: UnsafeMutableBufferPointer<Double>

    init(_ n: Int) {
        count = .allocate(capacity: n); count.initialize(repeating: 0)
        sumP = .allocate(capacity: n); sumP.initialize(repeating: 0)
        labelled = .allocate(capacity: n); labelled.initialize(repeating: 0)
    }

    deinit { count.deallocate(); sumP.deallocate(); labelled.deallocate() }
}

/// The totals of the rows scored so far: a value, so that a loop over a block holds them in
/// registers and stores them once (`addRows`).
struct RowTotals {
    var rows = 0, correct = 0
    var nllSum = 0.0, brierSum = 0.0, clipped = 0
    /// Rows whose sum is off one by more than the tolerance, and the sum farthest from one.
    var offSum = 0, worstSum = 1.0

    /// Counts a row whose sum is off one by more than `tolerance`.
    @inline(__always)
    mutating func noteSum(_ sum: Double, tolerance: Double) {
        if abs(sum - 1) > tolerance {
            offSum &+= 1
            if abs(sum - 1) > abs(worstSum - 1) { worstSum = sum }
        }
    }

    /// NLL, with the toolbox's one clip (eps of the input dtype, like scikit-learn's log_loss),
    /// and Brier in the multiclass sum form Σ_k (p_k − 1[y = k])², of a row whose label has
    /// probability `py`; added to the sums.
    /// `nll`: the row's `negativeLogLikelihood(py, eps: eps)` when already computed.
    @inline(__always)
    mutating func losses(_ py: Double, sumsq: Double, eps: Double, nll: Double? = nil) -> (nll: Double, brier: Double) {
        if py < eps { clipped &+= 1 }
        let rowNLL = nll ?? negativeLogLikelihood(py, eps: eps)
        nllSum += rowNLL
        let rowBrier = sumsq - py * py + (1 - py) * (1 - py)
        brierSum += rowBrier
        return (rowNLL, rowBrier)
    }
}

/// Accumulates every classification metric of methods.md section 3 over rows of probabilities.
///
/// Not for concurrent use: its per-row state is excluded from dynamic exclusivity checks
/// (they cost more than the arithmetic), so one thread at a time must own an accumulator; the
/// one exception is a block's classwise sums of some classes (`addClasswise(block:labels:classes:)`)
/// beside the rest of the block (`add(block:labels:firstRow:classwiseOf:)`), see `ClasswiseSplit`.
public final class ClassificationAccumulator {
    public let classes: Int
    public let options: ClassificationOptions
    let binnings: [Binning]                 // indexed like BinningConvention.allCases
    @exclusivity(unchecked) var topLabel: [BinAccumulator]
    let positiveBinnings: [Binning]
    @exclusivity(unchecked) var positive: [BinAccumulator]
    let standard: Binning                   // classwise binning

    @exclusivity(unchecked) var totals = RowTotals()
    /// In-distribution rows scored.
    public var rows: Int { totals.rows }
    @exclusivity(unchecked) public private(set) var oodRows = 0
    @exclusivity(unchecked) var entropySum = 0.0
    @exclusivity(unchecked) var expectedEntropySum = 0.0, mutualInfoSum = 0.0, ensembleRows = 0
    @exclusivity(unchecked) var labelCounts: [Int]
    /// Classwise ECE's sums.
    let classwiseSums: ClasswiseSums
    /// `standard.float32Slots()` when classwise sums are kept.
    let classwiseSlots: [UInt8]?
    /// Every top-label binning's `float32Slots()`, once float32 rows arrive (`addRows`).
    @exclusivity(unchecked) var topLabelSlots: [[UInt8]?] = []

    // Per-row records. Confidence and correctness: of float32 rows, a `float32RowKey` each
    // (4 bytes, sorted where they are for the report); of Double rows, or of every row once one
    // is a Double row, in the two arrays (9 bytes).
    @exclusivity(unchecked) var rowKeys: [UInt32] = []
    @exclusivity(unchecked) var confidence: [Double] = []
    @exclusivity(unchecked) var correct: [Bool] = []
    /// Whether the report has sorted `rowKeys` (they are then no longer in row order).
    @exclusivity(unchecked) var rowKeysSorted = false
    @exclusivity(unchecked) var slot: [UInt16] = []
    @exclusivity(unchecked) var binConfidence: [Double] = []
    @exclusivity(unchecked) var nll: [Double] = []
    @exclusivity(unchecked) var brier: [Double] = []
    @exclusivity(unchecked) var oodFlag: [Bool] = []
    @exclusivity(unchecked) var scoreMaxProb: [Double] = []
    @exclusivity(unchecked) var scoreEntropy: [Double] = []
    @exclusivity(unchecked) var scoreMutualInfo: [Double] = []

    public init(classes: Int, options: ClassificationOptions = ClassificationOptions()) {
        precondition(classes >= 1 && options.bins >= 1 && options.bins < Int(UInt16.max))
        self.classes = classes
        self.options = options
        binnings = BinningConvention.allCases.map { Binning($0, bins: options.bins, precision: options.precision) }
        topLabel = binnings.map { BinAccumulator(slots: $0.slots) }
        positiveBinnings = classes == 2
            ? BinningConvention.allCases.map { Binning($0, bins: options.bins, precision: options.precision, positiveClass: true) }
            : []
        positive = positiveBinnings.map { BinAccumulator(slots: $0.slots) }
        standard = binnings[0]
        labelCounts = Array(repeating: 0, count: classes)
        let cw = options.classwise ? classes * options.bins : 0
        classwiseSums = ClasswiseSums(cw)
        classwiseSlots = options.classwise ? standard.float32Slots() : nil
    }

    var primary: Int { BinningConvention.allCases.firstIndex(of: options.convention)! }

    /// Makes room in the per-row records for `rows` rows in all (a caller that has asked the
    /// system for the memory first grows them here, at a moment of its choosing, instead of at
    /// some append).
    public func reserveRows(_ rows: Int) {
        if options.keepRows {
            if options.precision == .float32 { rowKeys.reserveCapacityOnHugePages(rows) }
            else { confidence.reserveCapacityOnHugePages(rows); correct.reserveCapacityOnHugePages(rows) }
        }
        if options.keepLosses {
            slot.reserveCapacityOnHugePages(rows); binConfidence.reserveCapacityOnHugePages(rows)
            nll.reserveCapacityOnHugePages(rows); brier.reserveCapacityOnHugePages(rows)
        }
        if options.ood {
            for a in [\ClassificationAccumulator.scoreMaxProb, \.scoreEntropy, \.scoreMutualInfo] { self[keyPath: a].reserveCapacityOnHugePages(rows) }
            oodFlag.reserveCapacityOnHugePages(rows)
        }
    }

    /// Tolerance on |Σp − 1| before a row counts as not summing to one (like scikit-learn:
    /// sqrt(eps) relative, 1e-8 absolute).
    var sumTolerance: Double { options.precision.eps.squareRoot() + 1e-8 }

    /// Checks one row: finite, in [0, 1]; returns its sum.
    @inline(__always)
    func check<T: BinaryFloatingPoint>(_ p: UnsafeBufferPointer<T>, row: Int, tensor: String) throws -> Double {
        var sum = 0.0
        for v in p {
            let d = Double(v)
            guard d >= 0 && d <= 1 else {
                if d.isNaN { throw MetricsError.data("\(tensor): row \(row) holds NaN") }
                throw MetricsError.data("\(tensor): row \(row) holds \(d), outside [0, 1] (logits? pass --logits)")
            }
            sum += d
        }
        return sum
    }

    /// One pass over a row: range check, sum, sum of squares, argmax (ties to the lowest index).
    @inline(__always)
    static func scan<T: BinaryFloatingPoint>(_ p: UnsafePointer<T>, classes: Int, row: Int, tensor: String) throws
        -> (sum: Double, sumsq: Double, best: Int, conf: Double) {
        var sum = 0.0, sumsq = 0.0
        var best = 0
        var conf = -1.0
        for k in 0..<classes {
            let d = Double(p[k])
            guard d >= 0 && d <= 1 else {
                if d.isNaN { throw MetricsError.data("\(tensor): row \(row) holds NaN") }
                throw MetricsError.data("\(tensor): row \(row) holds \(d), outside [0, 1] (logits? pass --logits)")
            }
            sum += d
            sumsq += d * d
            if d > conf { conf = d; best = k }
        }
        return (sum, sumsq, best, conf)
    }

    /// `scan` of four float32 rows at once, one row a lane: the same additions in the same
    /// order, so the same sum, sum of squares, argmax and confidence per row; `ok` is false for
    /// a row that `scan` would refuse (a value outside [0, 1] or NaN), whose other results
    /// then mean nothing.
    @inline(__always)
    static func scanFour(_ p: UnsafePointer<Float>, classes: Int)
        -> (sum: SIMD4<Double>, sumsq: SIMD4<Double>, best: SIMD4<Int64>, conf: SIMD4<Double>, ok: SIMDMask<SIMD4<Int64>>) {
        var sum = SIMD4<Double>(), sumsq = SIMD4<Double>()
        var best = SIMD4<Int64>(), conf = SIMD4<Double>(repeating: -1)
        var ok = SIMDMask<SIMD4<Int64>>(repeating: true)
        let r1 = p + classes, r2 = r1 + classes, r3 = r2 + classes
        for k in 0..<classes {
            let d = SIMD4<Double>(Double(p[k]), Double(r1[k]), Double(r2[k]), Double(r3[k]))
            ok = ok .& (d .>= 0) .& (d .<= 1)
            sum += d
            sumsq += d * d
            let up = d .> conf
            conf.replace(with: d, where: up)
            best.replace(with: Int64(k), where: up)
        }
        return (sum, sumsq, best, conf, ok)
    }

    /// Checks a row's label and counts the row, its label (in `labelCounts`) and whether argmax
    /// `best` hit it.
    @inline(__always)
    static func countRow(label: Int64, best: Int, row: Int, classes: Int, totals: inout RowTotals,
                         labelCounts: UnsafeMutablePointer<Int>) throws -> (y: Int, hit: Bool) {
        guard label >= 0 && label < Int64(classes) else {
            throw MetricsError.data("labels: row \(row) has label \(label), outside [0, \(classes)) for \(classes) classes")
        }
        let y = Int(label)
        totals.rows &+= 1
        labelCounts[y] &+= 1
        let hit = best == y
        totals.correct &+= Int(hit.bit)
        return (y, hit)
    }

    /// Classwise ECE's sums for one row: per class and bin, rows and summed p_k, and the rows
    /// whose label is k.
    @inline(__always)
    static func addClasswise<T: BinaryFloatingPoint>(_ p: UnsafePointer<T>, classes: Int, y: Int, binning: Binning,
                                                     count: UnsafeMutableBufferPointer<Int>, sumP: UnsafeMutableBufferPointer<Double>,
                                                     labelled: UnsafeMutableBufferPointer<Double>) {
        let nb = binning.bins
        for k in 0..<classes {
            let d = Double(p[k])
            let j = k * nb + binning.index(d)
            count[j] += 1
            sumP[j] += d
        }
        labelled[y * nb + binning.index(Double(p[y]))] += 1
    }

    /// `addClasswise` for the rows of a block, in row order, up to the first row that `scan` or
    /// `countRow` would refuse (a value outside [0, 1] or NaN, a label outside the classes):
    /// the sums that adding the rows one by one leaves, whether or not the block is refused.
    /// `float32Slots`: `binning.float32Slots()`, for float32 rows. `of`: the classes whose sums
    /// to add (every class's sums are its own, added in row order); all when nil. `validRows`:
    /// the block's `rowsBeforeRefusal`, when known.
    static func addClasswise<T: BinaryFloatingPoint>(rows p: UnsafeBufferPointer<T>, labels: [Int64], classes: Int, binning: Binning,
                                                     float32Slots: [UInt8]? = nil, of part: Range<Int>? = nil, validRows: Int? = nil,
                                                     count: UnsafeMutableBufferPointer<Int>, sumP: UnsafeMutableBufferPointer<Double>,
                                                     labelled: UnsafeMutableBufferPointer<Double>) {
        let nb = binning.bins
        if T.self == Float.self, let float32Slots {
            // The same sums in the same order; the rows are checked first (vectorised), and
            // most values find their slot by their bits (one byte load, no conversion).
            let part = part ?? 0..<classes
            guard !part.isEmpty else { return }
            let f = UnsafeRawBufferPointer(p).bindMemory(to: Float.self)
            let valid = validRows ?? rowsBeforeRefusal(f, labels: labels, classes: classes)
            // A stretch of rows at a time, the slots first, then the sums: a sum's address then
            // comes from a plain byte load, not from the lookup's chain (2.6 instead of 6.7 ns
            // a value here, 10 classes, Zen 1).
            let width = part.count, first = part.lowerBound
            let stretch = max(1, Self.classwiseSlotBytes / width)
            binning.withSlotTable { table in
                float32Slots.withUnsafeBufferPointer { byKey in
                    var sink = 0.0
                    withUnsafeMutablePointer(to: &sink) { elsewhere in
                    withUnsafeTemporaryAllocation(of: UInt8.self, capacity: stretch &* width) { slotOf in
                        var r0 = 0
                        while r0 < valid {
                            let rows = min(stretch, valid &- r0)
                            var o = 0
                            for r in r0..<(r0 &+ rows) {
                                let row = f.baseAddress! + (r &* classes &+ first)
                                for k in 0..<width {
                                    let v = row[k]
                                    var s = byKey[Binning.float32SlotKey(v)]
                                    if s == 0xFF { s = UInt8(truncatingIfNeeded: table.index(Double(v))) }
                                    slotOf[o &+ k] = s
                                }
                                o &+= width
                            }
                            o = 0
                            for r in r0..<(r0 &+ rows) {
                                let row = f.baseAddress! + (r &* classes &+ first)
                                var j = first &* nb
                                for k in 0..<width {
                                    let at = j &+ Int(slotOf[o &+ k])
                                    count[at] &+= 1
                                    sumP[at] += Double(row[k])
                                    j &+= nb
                                }
                                // Whether the label is one of these classes is a coin toss when the
                                // classes are split: the count goes to a cell of its own otherwise,
                                // chosen without a branch (never to another class's, which the other
                                // thread may be adding to).
                                let y = Int(labels[r])
                                let mine = part.contains(y)
                                let at = mine ? labelled.baseAddress! + (y &* nb &+ Int(slotOf[o &+ (mine ? y &- first : 0)])) : elsewhere
                                at.pointee += 1
                                o &+= width
                            }
                            r0 &+= rows
                        }
                    }}
                }
            }
            return
        }
        let part = part ?? 0..<classes
        binning.withSlotTable { table in
            for r in labels.indices {
                let row = p.baseAddress! + r &* classes
                var valid = labels[r] >= 0 && labels[r] < Int64(classes)
                for k in 0..<classes {
                    let d = Double(row[k])
                    valid = valid && d >= 0 && d <= 1
                }
                guard valid else { return }
                var j = part.lowerBound &* nb
                for k in part {
                    let d = Double(row[k])
                    let at = j &+ table.index(d)
                    count[at] &+= 1
                    sumP[at] += d
                    j &+= nb
                }
                let y = Int(labels[r])
                if part.contains(y) { labelled[y &* nb &+ table.index(Double(row[y]))] += 1 }
            }
        }
    }

    /// The slots `addClasswise` looks up at a time (a stretch of rows' worth, at least one row).
    static let classwiseSlotBytes = 4096

    /// The number of rows of a block before the first that `scan` or `countRow` would refuse:
    /// a value outside [0, 1] or NaN, a label outside the classes.
    static func rowsBeforeRefusal(_ p: UnsafeBufferPointer<Float>, labels: [Int64], classes: Int) -> Int {
        let k = Int64(classes)
        let rows = labels.firstIndex { $0 < 0 || $0 >= k } ?? labels.count
        let end = rows * classes
        guard end > 0 else { return 0 }
        let base = p.baseAddress!
        var i = 0
        while i &+ 16 <= end {
            let v = UnsafeRawPointer(base + i).loadUnaligned(as: SIMD16<Float>.self)
            guard all((v .>= 0) .& (v .<= 1)) else { break }
            i &+= 16
        }
        while i < end && base[i] >= 0 && base[i] <= 1 { i &+= 1 }
        return i / classes
    }

    /// Adds one row of K probabilities. `row` is the row's number in the input (for messages);
    /// an OOD row only contributes its uncertainty scores. `ensemble` passes the row's expected
    /// entropy and mutual information when the probabilities are an ensemble mean.
    public func add<T: BinaryFloatingPoint>(_ p: UnsafeBufferPointer<T>, label: Int64, row: Int,
                                            isOOD: Bool = false, tensor: String = "probs",
                                            ensemble: (expectedEntropy: Double, mutualInfo: Double)? = nil) throws {
        precondition(p.count == classes)
        let (sum, sumsq, best, conf) = try Self.scan(p.baseAddress!, classes: classes, row: row, tensor: tensor)
        totals.noteSum(sum, tolerance: sumTolerance)
        let h = options.entropy || options.ood ? entropy(p) : 0
        if options.ood {
            oodFlag.append(isOOD)
            scoreMaxProb.append(-conf)
            scoreEntropy.append(h)
            scoreMutualInfo.append(ensemble?.mutualInfo ?? 0)
        }
        if isOOD { oodRows += 1; return }
        let (y, hit) = try labelCounts.withUnsafeMutableBufferPointer {
            try Self.countRow(label: label, best: best, row: row, classes: classes, totals: &totals, labelCounts: $0.baseAddress!)
        }
        entropySum += h
        if let e = ensemble {
            ensembleRows += 1; expectedEntropySum += e.expectedEntropy; mutualInfoSum += e.mutualInfo
        }

        let py = Double(p[y])
        let (rowNLL, rowBrier) = totals.losses(py, sumsq: sumsq, eps: options.precision.eps)

        let c = hit ? 1.0 : 0.0
        for (i, b) in binnings.enumerated() {
            let pc = b.prepare(conf)
            let s = b.index(pc)
            topLabel[i].add(slot: s, confidence: pc, correct: c)
            if i == primary && options.keepLosses { slot.append(UInt16(s)); binConfidence.append(pc) }
        }
        if classes == 2 {
            let p1 = Double(p[1]), yy = y == 1 ? 1.0 : 0.0
            for (i, b) in positiveBinnings.enumerated() {
                let pc = b.prepare(p1)
                positive[i].add(slot: b.index(pc), confidence: pc, correct: yy)
            }
        }
        if options.classwise {
            let cw = classwiseSums
            Self.addClasswise(p.baseAddress!, classes: classes, y: y, binning: standard, count: cw.count, sumP: cw.sumP, labelled: cw.labelled)
        }
        if options.keepRows {
            if T.self == Float.self && confidence.isEmpty { rowKeys.append(float32RowKey(confidence: Float(conf), correct: hit)) }
            else { keepInTwoArrays(); confidence.append(conf); correct.append(hit) }
        }
        if options.keepLosses { nll.append(rowNLL); brier.append(rowBrier) }
    }

    /// Moves the rows kept as keys to the two arrays (before a Double row is kept).
    func keepInTwoArrays() {
        precondition(!rowKeysSorted, "rows added after a report that sorted the kept rows in place (reportSortsRowsInPlace)")
        guard !rowKeys.isEmpty else { return }
        confidence.reserveCapacity(rowKeys.count); correct.reserveCapacity(rowKeys.count)
        for k in rowKeys { let (c, ok) = float32RowValues(k); confidence.append(c); correct.append(ok) }
        rowKeys = []
    }

    /// Whether kept row `i` was correct.
    @inline(__always)
    func keptCorrect(_ i: Int) -> Bool { rowKeys.isEmpty ? correct[i] : rowKeys[i] & 1 == 1 }

    /// Adds a block of rows (row-major, `labels.count` rows of K values).
    /// `uncertainty`: per row, the expected entropy and mutual information of an ensemble whose
    /// mean these probabilities are (the tensors sve-predict writes next to `probs`).
    public func add(block p: UnsafeBufferPointer<Float>, labels: [Int64], firstRow: Int, ood: [Bool]? = nil,
                    uncertainty: (expectedEntropy: [Double], mutualInfo: [Double])? = nil) throws {
        try addBlock(p, labels: labels, firstRow: firstRow, ood: ood, uncertainty: uncertainty)
    }

    public func add(block p: UnsafeBufferPointer<Double>, labels: [Int64], firstRow: Int, ood: [Bool]? = nil,
                    uncertainty: (expectedEntropy: [Double], mutualInfo: [Double])? = nil) throws {
        try addBlock(p, labels: labels, firstRow: firstRow, ood: ood, uncertainty: uncertainty)
    }

    /// Whether a block of rows without OOD flags or ensemble terms is added as plain rows (no
    /// entropy, no OOD scores kept): then `add(block:classwiseOf:)` and
    /// `addClasswise(block:labels:classes:)` may split its work between two threads.
    public var addsPlainRows: Bool { !options.entropy && !options.ood }

    /// `add(block:)` of plain rows (`addsPlainRows`) with the classwise sums of the classes
    /// `classwiseOf` only, after the rest; the caller adds the other classes' with
    /// `addClasswise(block:labels:classes:)`, block after block in the same order, possibly on
    /// another thread at the same time: the two write separate sums, and leave the sums
    /// `add(block:)` leaves, bit for bit. `validRows`: the block's `validRows(block:labels:)`,
    /// when counted already.
    public func add(block p: UnsafeBufferPointer<Float>, labels: [Int64], firstRow: Int, classwiseOf part: Range<Int>,
                    validRows: Int? = nil) throws {
        precondition(addsPlainRows && part.clamped(to: 0..<classes) == part)
        precondition(p.count == labels.count * classes)
        try addRows(p, labels: labels, firstRow: firstRow, classwiseOf: part, validRows: validRows)
    }

    /// The classwise ECE sums of the classes `part` of a block of plain rows, up to the first
    /// row `add` refuses (see `add(block:classwiseOf:)`). `validRows`: the block's
    /// `validRows(block:labels:)`, when counted already.
    public func addClasswise(block p: UnsafeBufferPointer<Float>, labels: [Int64], classes part: Range<Int>, validRows: Int? = nil) {
        precondition(p.count == labels.count * classes && part.clamped(to: 0..<classes) == part)
        guard options.classwise else { return }
        let cw = classwiseSums
        Self.addClasswise(rows: p, labels: labels, classes: classes, binning: standard, float32Slots: classwiseSlots, of: part,
                          validRows: validRows, count: cw.count, sumP: cw.sumP, labelled: cw.labelled)
    }

    /// The number of rows of a block before the first that `add` refuses (a value outside
    /// [0, 1] or NaN, a label outside the classes), for `validRows` of `addClasswise` and
    /// `add(block:classwiseOf:validRows:)`: counted once for both.
    public func validRows(block p: UnsafeBufferPointer<Float>, labels: [Int64]) -> Int {
        precondition(p.count == labels.count * classes)
        return Self.rowsBeforeRefusal(p, labels: labels, classes: classes)
    }

    func addBlock<T: BinaryFloatingPoint>(_ p: UnsafeBufferPointer<T>, labels: [Int64], firstRow: Int, ood: [Bool]?,
                                          uncertainty: (expectedEntropy: [Double], mutualInfo: [Double])?) throws {
        precondition(p.count == labels.count * classes)
        if ood == nil && uncertainty == nil && addsPlainRows {
            try addRows(p, labels: labels, firstRow: firstRow)
            return
        }
        for i in labels.indices {
            let row = UnsafeBufferPointer(rebasing: p[(i * classes)..<((i + 1) * classes)])
            try add(row, label: labels[i], row: firstRow + i, isOOD: ood?[i] ?? false,
                    ensemble: uncertainty.map { ($0.expectedEntropy[i], $0.mutualInfo[i]) })
        }
    }

    /// `add` for a block of plain rows (no OOD flags, no ensemble terms, no entropy): the same
    /// arithmetic in the same order, so the same sums to the last bit, with the per-row array
    /// bookkeeping (bins, per-row records) hoisted out of the loop: 3–4× faster. The
    /// accumulators are written back even when a row is refused, so that the state is the one
    /// `add` row by row would leave.
    func addRows<T: BinaryFloatingPoint>(_ p: UnsafeBufferPointer<T>, labels: [Int64], firstRow: Int, classwiseOf part: Range<Int>? = nil,
                                         validRows: Int? = nil) throws {
        let k = classes
        // A bin's rows and correct rows of one call share an Int (`scoreRows`): a larger block
        // goes in pieces.
        if labels.count > Self.maxRowsPerCall {
            for at in stride(from: 0, to: labels.count, by: Self.maxRowsPerCall) {
                let end = min(labels.count, at + Self.maxRowsPerCall)
                try addRows(UnsafeBufferPointer(rebasing: p[(at * k)..<(end * k)]), labels: Array(labels[at..<end]), firstRow: firstRow + at,
                            classwiseOf: part, validRows: validRows.map { min(max($0 - at, 0), end - at) })
            }
            return
        }
        let keepRows = options.keepRows, classwise = options.classwise
        let conventions = binnings.count
        let slotsPer = binnings.map(\.slots).max()!
        precondition(conventions == 3)
        let bin0 = binnings[0], bin1 = binnings[1], bin2 = binnings[2], std = standard
        // Classwise ECE's sums are written by nothing else, so they can be added on a second
        // thread while this one does the rest, in the same order: the same bits.
        let slots = classwise && T.self == Float.self ? classwiseSlots : nil
        func classwisePass() {
            guard classwise else { return }
            let cw = classwiseSums
            Self.addClasswise(rows: p, labels: labels, classes: k, binning: std, float32Slots: slots, of: part, validRows: validRows,
                              count: cw.count, sumP: cw.sumP, labelled: cw.labelled)
        }
        func rowPass() throws {
            // What the rows add to, in locals for the pass, stored back when it ends, refused row
            // or not: the bins of every convention flat, top-label then positive-class (the
            // block's rows and correct rows, see `scoreRows`, and the summed confidence); the
            // label counts; this block's per-row records (`scoreRows` holds the totals).
            let flat = 2 * conventions * slotsPer
            let cnt = UnsafeMutableBufferPointer<Int>.allocate(capacity: flat), sc = UnsafeMutableBufferPointer<Double>.allocate(capacity: flat)
            cnt.initialize(repeating: 0); sc.initialize(repeating: 0)
            for (i, a) in (topLabel + positive).enumerated() {
                for s in a.count.indices { sc[i * slotsPer + s] = a.sumConfidence[s] }
            }
            let counts = UnsafeMutableBufferPointer<Int>.allocate(capacity: k)
            _ = counts.initialize(from: labelCounts)
            // Float32 rows are kept as keys (unless Double rows came before).
            let asKeys = keepRows && T.self == Float.self && confidence.isEmpty
            if keepRows && !asKeys { keepInTwoArrays() }
            let kept = keepRows ? labels.count : 0
            let keptKey = UnsafeMutableBufferPointer<UInt32>.allocate(capacity: asKeys ? kept : 0)
            let keptConf = UnsafeMutableBufferPointer<Double>.allocate(capacity: asKeys ? 0 : kept)
            let keptHit = UnsafeMutableBufferPointer<Bool>.allocate(capacity: asKeys ? 0 : kept)
            var r = 0
            defer {
                // A sum of 1s and 0s is a count: adding the block's at once leaves the bits that
                // adding its rows one by one leaves (below 2^53).
                func write(_ a: inout BinAccumulator, _ j: Int) {
                    for s in a.count.indices {
                        let rows = cnt[j * slotsPer + s]
                        a.count[s] += rows & 0xFFFF_FFFF; a.sumCorrect[s] += Double(rows >> 32); a.sumConfidence[s] = sc[j * slotsPer + s]
                    }
                }
                for i in topLabel.indices { write(&topLabel[i], i) }
                for i in positive.indices { write(&positive[i], conventions + i) }
                labelCounts = Array(counts)
                if asKeys {
                    rowKeys.append(contentsOf: UnsafeBufferPointer(rebasing: keptKey[..<r]))
                } else if keepRows {
                    confidence.append(contentsOf: UnsafeBufferPointer(rebasing: keptConf[..<r]))
                    correct.append(contentsOf: UnsafeBufferPointer(rebasing: keptHit[..<r]))
                }
                for b in [cnt.baseAddress!, counts.baseAddress!] as [UnsafeMutablePointer<Int>] { b.deallocate() }
                sc.deallocate(); keptKey.deallocate(); keptConf.deallocate(); keptHit.deallocate()
            }
            if T.self == Float.self && topLabelSlots.isEmpty { topLabelSlots = binnings.map { $0.float32Slots() } }
            let bytes = T.self == Float.self ? topLabelSlots : [nil, nil, nil]
            try bin0.withSlotTable(float32Slots: bytes[0]) { table0 in
            try bin1.withSlotTable(float32Slots: bytes[1]) { table1 in
            try bin2.withSlotTable(float32Slots: bytes[2]) { table2 in
                try scoreRows(p, labels: labels, firstRow: firstRow, from: &r, totals: &totals, counts: counts.baseAddress!,
                              bins: (cnt.baseAddress!, sc.baseAddress!, slotsPer), tables: (table0, table1, table2),
                              kept: keepRows && !asKeys ? (keptConf.baseAddress!, keptHit.baseAddress!) : nil,
                              keptKeys: asKeys ? keptKey.baseAddress! : nil)
            }}}
        }
        if classwise && part == nil && options.threads > 1 && labels.count >= Self.concurrentClasswiseRows {
            try onTwoThreads(rowPass, classwisePass)
        } else {
            defer { classwisePass() }
            try rowPass()
        }
    }

    /// Blocks of at least this many rows add their classwise sums on a second thread.
    static let concurrentClasswiseRows = 4096

    /// The most rows `addRows` scores in one call (internal: tests lower it).
    nonisolated(unsafe) static var maxRowsPerCall = Int(Int32.max)

    /// `addRows`' pass over the rows of a block from row `r`, but the classwise sums: into the
    /// `totals`, the label `counts`, the top-label and positive-class `bins` (`count`: the rows
    /// that fall in the bin plus 2^32 times the correct ones; `sumC`: the summed confidence;
    /// `slots` a convention) and, when given, the `kept` confidence and correctness of each row
    /// (at its index in the block). `r` ends at the row that stopped it: the block's end, or
    /// the refused row when it throws. Everything arrives by argument, so that the loop keeps
    /// it in registers (a captured variable costs an exclusivity check a row).
    @inline(__always)
    func scoreRows<T: BinaryFloatingPoint>(_ p: UnsafeBufferPointer<T>, labels: [Int64], firstRow: Int, from r: inout Int,
                                           totals: inout RowTotals, counts: UnsafeMutablePointer<Int>,
                                           bins: (count: UnsafeMutablePointer<Int>, sumC: UnsafeMutablePointer<Double>, slots: Int),
                                           tables: (Binning.SlotTable, Binning.SlotTable, Binning.SlotTable),
                                           kept: (confidence: UnsafeMutablePointer<Double>, correct: UnsafeMutablePointer<Bool>)?,
                                           keptKeys: UnsafeMutablePointer<UInt32>? = nil) throws {
        let k = classes, tolerance = sumTolerance, eps = options.precision.eps
        let primary = self.primary, keepLosses = options.keepLosses
        let (cnt, sc, slotsPer) = bins
        var t = totals
        defer { totals = t }
        let positiveBins = positiveBinnings, conventions = binnings.count
        // The rest of a row, once scanned (and its NLL, when computed).
        @inline(__always) func score(_ r: Int, sumsq: Double, best: Int, conf: Double, knownNLL: Double? = nil, t: inout RowTotals) throws {
            let row = p.baseAddress! + r * k
            let (y, hit) = try Self.countRow(label: labels[r], best: best, row: firstRow + r, classes: k, totals: &t, labelCounts: counts)
            let py = Double(row[y])
            let (rowNLL, rowBrier) = t.losses(py, sumsq: sumsq, eps: eps, nll: knownNLL)
            let counted = 1 &+ Int(hit.bit) << 32
            @inline(__always) func bin(_ b: Binning.SlotTable, _ i: Int) {
                let pc = b.prepare(conf)
                let s = b.slot(pc)
                let at = i &* slotsPer &+ s
                cnt[at] &+= counted; sc[at] += pc
                if i == primary && keepLosses { slot.append(UInt16(s)); binConfidence.append(pc) }
            }
            bin(tables.0, 0); bin(tables.1, 1); bin(tables.2, 2)
            if k == 2 {
                let p1 = Double(row[1]), one = y == 1 ? 1 &+ 1 << 32 : 1
                for i in 0..<positiveBins.count {
                    let b = positiveBins[i]
                    let pc = b.prepare(p1)
                    let s = (conventions + i) * slotsPer + b.index(pc)
                    cnt[s] &+= one; sc[s] += pc
                }
            }
            if let keptKeys { keptKeys[r] = float32RowKey(confidence: Float(conf), correct: hit) }
            else if let kept { kept.confidence[r] = conf; kept.correct[r] = hit }
            if keepLosses { nll.append(rowNLL); brier.append(rowBrier) }
        }
        if T.self == Float.self {
            // A stretch of rows at a time: scanned four at once, their NLLs (a call to log each,
            // which would have every register saved around it in the loop below), then the
            // rest. A stretch ends before a row the scan or the label check refuses; from
            // there, row by row (where `scan` or `countRow` throws).
            let f = UnsafeRawPointer(p.baseAddress!).assumingMemoryBound(to: Float.self)
            let stretch = 64
            try withUnsafeTemporaryAllocation(of: (sum: Double, sumsq: Double, conf: Double, nll: Double, best: Int).self,
                                              capacity: stretch) { row in
                while r &+ 4 <= labels.count {
                    var n = 0
                    scan: while n &+ 4 <= stretch && r &+ n &+ 4 <= labels.count {
                        let s = Self.scanFour(f + (r &+ n) &* k, classes: k)
                        for i in 0..<4 {
                            let y = labels[r &+ n]
                            guard s.ok[i] && y >= 0 && y < Int64(k) else { break scan }
                            row[n] = (s.sum[i], s.sumsq[i], s.conf[i], Double(f[(r &+ n) &* k &+ Int(y)]), Int(s.best[i]))
                            n &+= 1
                        }
                    }
                    for i in 0..<n { row[i].nll = negativeLogLikelihood(row[i].nll, eps: eps) }
                    for i in 0..<n {
                        t.noteSum(row[i].sum, tolerance: tolerance)
                        try score(r, sumsq: row[i].sumsq, best: row[i].best, conf: row[i].conf, knownNLL: row[i].nll, t: &t)
                        r &+= 1
                    }
                    if n < stretch { break }
                }
            }
        }
        while r < labels.count {
            let (sum, sumsq, best, conf) = try Self.scan(p.baseAddress! + r * k, classes: k, row: firstRow + r, tensor: "probs")
            t.noteSum(sum, tolerance: tolerance)
            try score(r, sumsq: sumsq, best: best, conf: conf, t: &t)
            r += 1
        }
    }

    /// The report; nil values are undefined (for example AUROC without OOD rows).
    /// With `reportSortsRowsInPlace`, once per accumulator, and the last call.
    public func report(bootstrap: Int = 0, seed: UInt64 = 0) throws -> ClassificationReport {
        precondition(!rowKeysSorted, "a second report of rows the first has sorted in place (reportSortsRowsInPlace)")
        guard rows > 0 else {
            throw MetricsError.data(oodRows > 0 ? "every row is marked out of distribution: nothing to calibrate"
                                               : "no rows: N = 0")
        }
        let n = Double(rows)
        var r = ClassificationReport()
        r.rows = rows
        r.oodRows = oodRows
        r.classes = classes
        r.bins = options.bins
        r.convention = options.convention
        r.accuracy = Double(totals.correct) / n
        r.nll = totals.nllSum / n
        r.nllClippedRows = totals.clipped
        r.brier = totals.brierSum / n
        if classes == 2 { r.brierSklearnBinary = totals.brierSum / n / 2 }
        let errors = binnings.indices.map { CalibrationErrors(topLabel[$0], edges: binnings[$0].edges) }
        r.calibration = errors[primary]
        r.eceByConvention = Dictionary(uniqueKeysWithValues: BinningConvention.allCases.enumerated().map { ($1.rawValue, errors[$0].ece) })
        if classes == 2 {
            let pos = positiveBinnings.indices.map { CalibrationErrors(positive[$0], edges: positiveBinnings[$0].edges) }
            r.positiveClass = pos[primary]
            r.positiveClassECEByConvention = Dictionary(uniqueKeysWithValues: BinningConvention.allCases.enumerated().map { ($1.rawValue, pos[$0].ece) })
        }
        if options.classwise {
            var total = 0.0
            let nb = options.bins
            for k in 0..<classes {
                var e = 0.0
                for b in 0..<nb {
                    let j = k * nb + b
                    let m = classwiseSums.count[j]
                    guard m > 0 else { continue }
                    e += Double(m) / n * abs(classwiseSums.labelled[j] / Double(m) - classwiseSums.sumP[j] / Double(m))
                }
                total += e
            }
            r.classwiseECE = total / Double(classes)
        }
        if options.keepRows {
            let sorted: RowsByConfidence
            if rowKeys.isEmpty {
                sorted = sortedByConfidenceDescending(confidence, correct, threads: options.threads)
            } else if options.reportSortsRowsInPlace && !options.keepLosses {
                // The keys are handed over, not copied (the bootstrap below needs them in order).
                rowKeysSorted = true
                sorted = sortedByConfidenceDescending(float32Keys: &rowKeys, threads: options.threads)
            } else {
                var copy = rowKeys
                sorted = sortedByConfidenceDescending(float32Keys: &copy, threads: options.threads)
            }
            let coverages = [0.5, 0.8, 0.9, 0.95], bins = options.bins
            var equalMass = 0.0
            var rc: (aurc: Double, errors: Int, risks: [Double?]) = (0, 0, [])
            // Two passes over the sorted rows that share nothing, on two threads when allowed;
            // the perfect ranking's sum for E-AURC needs only the number of wrong rows, so the
            // shorter pass adds it.
            let wrong = sorted.count - totals.correct
            var optimal = 0.0
            let a = {
                equalMass = equalMassECE(sortedDescending: sorted, bins: bins)
                optimal = RiskCoverage.optimalSum(count: sorted.count, errors: wrong)
            }
            let b = { rc = RiskCoverage.walkSummary(sortedDescending: sorted, coverages: coverages) }
            if options.threads > 1 && rows >= Self.concurrentClasswiseRows { try onTwoThreads(a, b) } else { a(); b() }
            // The counts and the rows are added together, so they agree (the tests check it);
            // were they not to, the rows' own count decides.
            assert(rc.errors == wrong, "the sorted rows hold \(rc.errors) wrong, the counts \(wrong)")
            if rc.errors != wrong { optimal = RiskCoverage.optimalSum(count: sorted.count, errors: rc.errors) }
            r.equalMassECE = equalMass
            r.aurc = rc.aurc
            r.eaurc = RiskCoverage.excessAURC(aurc: rc.aurc, count: sorted.count, optimalSum: optimal)
            r.riskAtCoverage = Dictionary(uniqueKeysWithValues: coverages.indices.map {
                (cFormat("%.2f", coverages[$0]), rc.risks[$0] ?? .nan)
            })
        }
        r.rowsNotSummingToOne = totals.offSum
        if totals.offSum > 0 { r.worstRowSum = totals.worstSum }
        r.classesNeverOccurring = labelCounts.indices.filter { labelCounts[$0] == 0 }
        if options.entropy || options.ood { r.meanEntropy = entropySum / n }
        if ensembleRows > 0 {
            r.meanExpectedEntropy = expectedEntropySum / Double(ensembleRows)
            r.meanMutualInfo = mutualInfoSum / Double(ensembleRows)
        }
        if options.ood {
            var o: [String: OODScores] = [:]
            o["max_prob"] = OODScores(uncertainty: scoreMaxProb, ood: oodFlag)
            o["entropy"] = OODScores(uncertainty: scoreEntropy, ood: oodFlag)
            if ensembleRows > 0 { o["mutual_info"] = OODScores(uncertainty: scoreMutualInfo, ood: oodFlag) }
            r.ood = o
        }
        if bootstrap > 0 {
            precondition(options.keepLosses && options.keepRows)
            r.intervals = bootstrapReport(replicates: bootstrap, seed: seed)
            r.bootstrap = bootstrap
            r.seed = seed
        }
        return r
    }

    /// Percentile intervals (95 %) of accuracy, ECE (the primary binning), NLL and Brier over
    /// bootstrap resamples of the in-distribution rows.
    func bootstrapReport(replicates: Int, seed: UInt64) -> [String: Interval] {
        let slots = binnings[primary].slots
        let names = ["accuracy", "ece", "nll", "brier"]
        let iv = bootstrapIntervals(rows: rows, replicates: replicates, seed: seed) { w in
            var acc = BinAccumulator(slots: slots)
            var hits = 0.0, l = 0.0, b = 0.0, total = 0.0
            for i in 0..<w.count where w[i] > 0 {
                let c = Double(w[i])
                total += c
                let h = self.keptCorrect(i) ? c : 0
                hits += h
                l += c * self.nll[i]
                b += c * self.brier[i]
                let s = Int(self.slot[i])
                acc.count[s] += Int(w[i]); acc.sumConfidence[s] += c * self.binConfidence[i]; acc.sumCorrect[s] += h
            }
            let ece = CalibrationErrors(acc, edges: self.binnings[self.primary].edges).ece
            return [hits / total, ece, l / total, b / total]
        }
        var out: [String: Interval] = [:]
        for (k, v) in iv.enumerated() { if let v { out[names[k]] = v } }
        return out
    }
}

/// Equal-mass ECE of rows sorted by confidence, highest first: bin edges are the quantiles of the
/// confidences (linear interpolation, as numpy.percentile), bins (lo, hi] — the binning of
/// sklearn.calibration.calibration_curve (strategy="quantile"); then Σ_b n_b/N |acc_b − conf_b|
/// over non-empty bins.
public func equalMassECE<Rows: RandomAccessCollection>(sortedDescending rows: Rows, bins: Int) -> Double
    where Rows.Element == (c: Double, ok: Bool), Rows.Index == Int {
    let n = rows.count
    guard n > 0 else { return .nan }
    let first = rows.startIndex
    let edges = percentileLevels(bins).map { q in numpyQuantile(count: n, q) { rows[first + n - 1 - $0].c } }
    let interior = Array(edges[1..<bins])
    var acc = BinAccumulator(slots: bins)
    // searchsorted(interior, c, side="left"), the number of interior edges < c, falls as c does:
    // walked down from the top instead of searched for every row. A slot's rows come one after
    // the other, so its sums are kept in registers until the walk leaves it: the same additions
    // from 0 in the same order, so the same bits as adding into the slot row by row.
    var slot = interior.count
    var count = 0, sumC = 0.0, sumY = 0.0
    for row in rows {
        if slot > 0 && !(interior[slot - 1] < row.c) {
            acc.count[slot] = count; acc.sumConfidence[slot] = sumC; acc.sumCorrect[slot] = sumY
            count = 0; sumC = 0; sumY = 0
            repeat { slot -= 1 } while slot > 0 && !(interior[slot - 1] < row.c)
        }
        count += 1; sumC += row.c; sumY += Double(row.ok.bit)
    }
    acc.count[slot] = count; acc.sumConfidence[slot] = sumC; acc.sumCorrect[slot] = sumY
    return CalibrationErrors(acc, edges: edges).ece
}

/// Everything calib-metrics reports for class probabilities.
public struct ClassificationReport: Sendable, Codable {
    public var rows = 0
    public var oodRows = 0
    public var classes = 0
    public var bins = 15
    public var convention = BinningConvention.standard
    public var accuracy = 0.0
    /// Mean −ln p_y, p clipped to [eps, 1 − eps] of the input dtype.
    public var nll = 0.0
    /// Rows whose true-class probability was below eps (raised to eps).
    public var nllClippedRows = 0
    /// Mean Σ_k (p_k − 1[y = k])², in [0, 2].
    public var brier = 0.0
    /// For two classes: scikit-learn's brier_score_loss, which halves it ((p_1 − y)²).
    public var brierSklearnBinary: Double?
    /// Top-label ECE, MCE, RMSCE and bins under `convention`.
    public var calibration = CalibrationErrors(BinAccumulator(slots: 0), edges: [0, 1])
    public var eceByConvention: [String: Double] = [:]
    /// Two classes: positive-class (class 1) calibration, torchmetrics' binary ECE, netcal's.
    public var positiveClass: CalibrationErrors?
    public var positiveClassECEByConvention: [String: Double]?
    public var equalMassECE: Double?
    public var classwiseECE: Double?
    public var aurc: Double?
    public var eaurc: Double?
    public var riskAtCoverage: [String: Double]?
    public var rowsNotSummingToOne = 0
    public var worstRowSum: Double?
    public var classesNeverOccurring: [Int] = []
    public var meanEntropy: Double?
    public var meanExpectedEntropy: Double?
    public var meanMutualInfo: Double?
    public var ood: [String: OODScores]?
    public var bootstrap: Int?
    public var seed: UInt64?
    public var intervals: [String: Interval]?
    public var members: [MemberReport]?

    public init() {}
}

/// Metrics of one ensemble member.
public struct MemberReport: Sendable, Codable {
    public var member: Int
    public var accuracy: Double
    public var ece: Double
    public var nll: Double
    public var brier: Double
}

// Brute force and edge cases of the Calibration library.
import Foundation
import XCTest
import Parallel
import Probability
@testable import Calibration

final class PropertyTests: XCTestCase {
    func accumulate(_ p: [Double], _ y: [Int64], k: Int, _ configure: (inout ClassificationOptions) -> Void = { _ in }) throws -> ClassificationAccumulator {
        var o = ClassificationOptions(); o.precision = .float64
        configure(&o)
        let a = ClassificationAccumulator(classes: k, options: o)
        try p.withUnsafeBufferPointer { try a.add(block: $0, labels: y, firstRow: 0) }
        return a
    }

    func testErrorsNameTheProblem() throws {
        XCTAssertThrowsError(try accumulate([0.5, 0.5], [2], k: 2)) {
            XCTAssertEqual("\($0)", "labels: row 0 has label 2, outside [0, 2) for 2 classes")
        }
        XCTAssertThrowsError(try accumulate([0.5, 0.5, 0.2, 0.8], [0, -1], k: 2)) {
            XCTAssertTrue("\($0)".contains("row 1 has label -1"))
        }
        XCTAssertThrowsError(try accumulate([0.5, .nan], [0], k: 2)) { XCTAssertEqual("\($0)", "probs: row 0 holds NaN") }
        XCTAssertThrowsError(try accumulate([1.5, -0.5], [0], k: 2)) { XCTAssertTrue("\($0)".contains("outside [0, 1]")) }
        XCTAssertThrowsError(try accumulate([], [], k: 3).report()) { XCTAssertEqual("\($0)", "no rows: N = 0") }
    }

    func testRowsNotSummingToOneAreCountedNotRenormalised() throws {
        let r = try accumulate([0.5, 0.3, 0.9, 0.1], [0, 0], k: 2).report()
        XCTAssertEqual(r.rowsNotSummingToOne, 1)
        XCTAssertEqual(r.worstRowSum!, 0.8, accuracy: 1e-15)
        XCTAssertEqual(r.brier, ((0.25 + 0.09) + (0.01 + 0.01)) / 2, accuracy: 1e-15)
    }

    func testNLLClipsLikeSklearnAndCounts() throws {
        let r = try accumulate([1, 0, 0, 1], [1, 1], k: 2).report()
        XCTAssertEqual(r.nllClippedRows, 1)
        XCTAssertEqual(r.nll, (-log(Double.ulpOfOne) - log(1 - Double.ulpOfOne)) / 2, accuracy: 1e-12)
        XCTAssertEqual(r.accuracy, 0.5)   // argmax of [1, 0] is 0, of [0, 1] is 1
        // Ties go to the lowest index.
        XCTAssertEqual(try accumulate([0.5, 0.5], [0], k: 2).report().accuracy, 1)
        XCTAssertEqual(try accumulate([0.5, 0.5], [1], k: 2).report().accuracy, 0)
    }

    func testBinningConventionsAtEdges() {
        let d = Binning(.standard, bins: 10, precision: .float64)
        XCTAssertEqual(d.index(0), 0)
        XCTAssertEqual(d.index(1), 9)
        XCTAssertEqual(d.index(d.edges[3]), 2)          // (lo, hi]
        XCTAssertEqual(d.index(d.edges[3].nextUp), 3)
        let t = Binning(.torchmetrics, bins: 10, precision: .float64)
        XCTAssertEqual(t.index(t.prepare(1)), 10)       // the extra bin
        XCTAssertEqual(t.index(t.edges[3]), 3)          // [lo, hi)
        let n = Binning(.netcal, bins: 10, precision: .float32)
        XCTAssertEqual(n.prepare(1), 1 - Double(Float.ulpOfOne))
        XCTAssertEqual(n.prepare(0), Double(Float.ulpOfOne))
        XCTAssertEqual(n.index(n.prepare(1)), 9)
        XCTAssertEqual(n.index(n.edges[3]), 3)
    }

    /// The branch-free slot lookup (one step from c·B) against the definition of each
    /// convention, counting edges by brute force: at every edge, its neighbours one ulp away in
    /// float64 and in float32, and random confidences, for bin counts up to 65 534.
    func testSlotLookupMatchesCountingEdges() {
        var rng = SystemRandomNumberGenerator()
        for bins in Array(1...40) + [97, 100, 1000, 4097, 65_534] {
            for convention in BinningConvention.allCases {
                for precision in [InputPrecision.float32, .float64] {
                    for positive in [false, true] {
                        let b = Binning(convention, bins: bins, precision: precision, positiveClass: positive)
                        let e = b.edges
                        // How many of the edges e[1..<last] lie below c (strictly or not):
                        // counted one by one for few bins, by bisection for many.
                        func below(_ c: Double, last: Int, strictly: Bool) -> Int {
                            let inside = { (x: Double) in strictly ? x < c : x <= c }
                            if bins <= 100 { return e[1..<last].filter(inside).count }
                            var lo = 1, hi = last
                            while lo < hi { let m = (lo + hi) / 2; if inside(e[m]) { lo = m + 1 } else { hi = m } }
                            return lo - 1
                        }
                        func expected(_ c: Double) -> Int {
                            switch convention {
                            case .standard: return below(c, last: bins, strictly: true)
                            case .torchmetrics: return below(c, last: bins + 1, strictly: false)
                            case .netcal: return below(c, last: bins, strictly: false)
                            }
                        }
                        var probes: [Double] = [0, 1, Double(Float(1).nextDown), Double.leastNonzeroMagnitude]
                        let sampled = bins <= 100 ? Array(e.indices) : (0..<200).map { _ in Int.random(in: e.indices, using: &rng) }
                        for i in sampled {
                            probes += [e[i], e[i].nextUp, e[i].nextDown, Double(Float(e[i]).nextUp), Double(Float(e[i]).nextDown)]
                        }
                        probes += (0..<200).map { _ in Double.random(in: 0...1, using: &rng) }
                        for c in probes where c >= 0 && c <= 1 {
                            let pc = b.prepare(c)
                            XCTAssertEqual(b.index(pc), expected(pc), "\(convention) bins \(bins) \(precision) positive \(positive) c \(pc)")
                            XCTAssertEqual(b.slotBySearch(pc), expected(pc))
                        }
                    }
                }
            }
        }
    }

    /// The slots of float32 values by their bits: at every key's lowest and highest value, at
    /// random values under it, and at the float32 neighbours of every edge, the table's slot is
    /// `index`'s (or 0xFF, only for keys an edge splits: at most one per interior edge).
    func testFloat32SlotTableMatchesIndex() {
        var rng = SystemRandomNumberGenerator()
        for bins in Array(1...40) + [97, 100, 254] {
            let b = Binning(.standard, bins: bins, precision: .float32)
            guard let table = b.float32Slots() else { return XCTFail("no table for \(bins) bins") }
            XCTAssertEqual(table.count, Int(Float(1).bitPattern >> 16) + 1)
            XCTAssertLessThanOrEqual(table.filter { $0 == 0xFF }.count, bins - 1, "bins \(bins)")
            func check(_ v: Float) {
                let s = table[Binning.float32SlotKey(v)]
                if s != 0xFF { XCTAssertEqual(Int(s), b.index(Double(v)), "bins \(bins) v \(v)") }
            }
            for key in UInt32(0)..<UInt32(table.count) {
                let low = key << 16, high = min(low | 0xFFFF, Float(1).bitPattern)
                check(Float(bitPattern: low)); check(Float(bitPattern: high))
                check(Float(bitPattern: UInt32.random(in: low...high, using: &rng)))
            }
            for e in b.edges {
                let f = Float(e)
                for v in [f, f.nextUp, f.nextDown] where v >= 0 && v <= 1 { check(v) }
            }
            check(-0.0)
            XCTAssertEqual(Int(table[Binning.float32SlotKey(-0.0)]), b.index(0))
        }
        XCTAssertNil(Binning(.standard, bins: 255, precision: .float32).float32Slots())
    }

    /// `SlotTable.slot` (by the bits of float32 values, with each convention's `float32Slots()`)
    /// is `index` for every prepared confidence: float32 values at and beside every edge and at
    /// random, doubles between them, and what preparing makes of them (torchmetrics rounds to
    /// float32; netcal clips, for float64 inputs to 1 − 2⁻⁵², which no float32 holds).
    func testSlotByBitsIsIndexForEveryConvention() {
        var rng = SystemRandomNumberGenerator()
        for convention in BinningConvention.allCases {
            for precision in [InputPrecision.float32, .float64] {
                for bins in [1, 2, 7, 10, 15, 100, 253] {
                    let b = Binning(convention, bins: bins, precision: precision)
                    let bytes = b.float32Slots()
                    XCTAssertNotNil(bytes, "\(convention) bins \(bins)")
                    var values: [Double] = [0, -0.0, 1, precision.eps, 1 - precision.eps, Double(Float(1).nextDown)]
                    for e in b.edges {
                        let f = Float(e)
                        values += [f, f.nextUp, f.nextDown].map(Double.init) + [e, e.nextUp, e.nextDown]
                    }
                    for _ in 0..<1000 { values += [Double(Float.random(in: 0...1, using: &rng)), Double.random(in: 0...1, using: &rng)] }
                    b.withSlotTable(float32Slots: bytes) { table in
                        for v in values where v >= 0 && v <= 1 {
                            let pc = b.prepare(v)
                            XCTAssertEqual(table.slot(pc), b.index(pc), "\(convention) \(precision) bins \(bins) v \(v)")
                        }
                    }
                }
            }
        }
    }

    /// `ClasswiseSplit` gives each thread half the classes until both have reported, then the
    /// split at which the reading thread's share d + x·c of a row's cost equals the scoring
    /// thread's s + (K − x)·c, from the costs they report: fed back block after block it stays
    /// there, follows a change of costs within a few blocks, and keeps to 0...K.
    func testClasswiseSplitBalancesTheReportedCosts() {
        // Per row, in ns: d to read, s to score, c to add one class's sums.
        func run(classes K: Int, blocks: Int, rows: Int = 65_536, costs: (Int) -> (d: Double, s: Double, c: Double)) -> [Int] {
            let split = ClasswiseSplit(classes: K)
            var splits: [Int] = []
            for j in 0..<blocks {
                let x = split.reading()
                XCTAssert((0...K).contains(x))
                splits.append(x)
                let (d, s, c) = costs(j)
                split.read(seconds: d * Double(rows) * 1e-9, rows: rows)
                split.added(seconds: c * Double(x * rows) * 1e-9, classes: x, rows: rows)
                split.scored(split: x, rows: rows, seconds: (s + c * Double(K - x)) * Double(rows) * 1e-9)
            }
            return splits
        }
        // x = (K + (s − d) / c) / 2 = (10 + 8 / 4) / 2 = 6.
        let steady = run(classes: 10, blocks: 12) { _ in (47, 55, 4) }
        XCTAssertEqual(steady[0], 5)
        XCTAssertEqual(Array(steady[1...]), Array(repeating: 6, count: 11))
        // The scoring thread slows down after block 6 (s 55 → 71: x = 8); the old costs fade.
        let change = run(classes: 10, blocks: 20) { j in (47, j < 6 ? 55 : 71, 4) }
        XCTAssertEqual(change[5], 6)
        XCTAssertEqual(Array(change[12...]), Array(repeating: 8, count: 8))
        XCTAssert(change[6...].allSatisfy { (6...8).contains($0) })
        // Reading far slower than scoring: every class to the scoring thread, and the reverse.
        XCTAssertEqual(run(classes: 10, blocks: 5) { _ in (200, 10, 4) }.last, 0)
        XCTAssertEqual(run(classes: 10, blocks: 5) { _ in (10, 200, 4) }.last, 10)
        // One class: it goes to the reading thread when that balances better than not.
        XCTAssertEqual(run(classes: 1, blocks: 4) { _ in (40, 50, 6) }.last, 1)
        XCTAssertEqual(run(classes: 1, blocks: 4) { _ in (50, 40, 6) }.last, 0)
        XCTAssertEqual(run(classes: 1, blocks: 1) { _ in (50, 40, 6) }, [1])
    }

    /// AURC with ties equals the mean of AURC over every ordering of the tied rows.
    func testAURCIsTheExpectationOverTieOrders() {
        let conf: [Double] = [0.9, 0.7, 0.7, 0.7, 0.5, 0.9]
        let ok: [Bool] = [true, false, true, false, true, false]
        func aurc(_ order: [Int]) -> Double {
            var e = 0, s = 0.0
            for (i, j) in order.enumerated() { if !ok[j] { e += 1 }; s += Double(e) / Double(i + 1) }
            return s / Double(order.count)
        }
        func permutations(_ a: [Int]) -> [[Int]] {
            a.count <= 1 ? [a] : a.indices.flatMap { i in permutations(Array(a[..<i] + a[(i + 1)...])).map { [a[i]] + $0 } }
        }
        // All orders consistent with descending confidence.
        let all = permutations(Array(0..<6)).filter { o in zip(o, o.dropFirst()).allSatisfy { conf[$0] >= conf[$1] } }
        let expected = all.map(aurc).reduce(0, +) / Double(all.count)
        let rc = RiskCoverage(confidence: conf, correct: ok)
        XCTAssertEqual(rc.aurc, expected, accuracy: 1e-12)
        XCTAssertEqual(rc.optimalAURC, aurc([0, 2, 4, 1, 3, 5]), accuracy: 1e-12)
        XCTAssertEqual(rc.risk(atCoverage: 1)!, 0.5, accuracy: 1e-15)
        XCTAssertGreaterThanOrEqual(rc.excessAURC, 0)
    }

    /// The one-pass summary calib-metrics uses gives the curve's AURC, E-AURC and risks bit for
    /// bit: ties (heavy and none), all rows right, all wrong, one row, coverages that round to the
    /// same point and to the ends, and the curve's own `risk(atCoverage:)` at each.
    func testRiskCoverageSummaryIsTheCurvesFiguresBitForBit() {
        var g = SeededGenerator(seed: 17)
        let coverages = [0.95, 0.5, 0.5001, 0.8, 1e-9, 1, 0.9]
        for (n, levels, wrongPer1000) in [(1, 1, 500), (7, 3, 400), (1000, 10, 300), (1000, 1_000_000, 300),
                                          (5000, 50, 0), (5000, 50, 1000), (20_000, 7, 120)] {
            let conf = (0..<n).map { _ in Double(g.next() % UInt64(levels)) / Double(levels) }
            let ok = (0..<n).map { _ in g.next() % 1000 >= UInt64(wrongPer1000) }
            let sorted = sortedByConfidenceDescending(conf, ok)
            let curve = RiskCoverage(sortedDescending: sorted)
            let s = RiskCoverage.summary(sortedDescending: sorted, coverages: coverages)
            XCTAssertEqual(s.aurc.bitPattern, curve.aurc.bitPattern, "n \(n) levels \(levels)")
            XCTAssertEqual(s.excessAURC.bitPattern, curve.excessAURC.bitPattern, "n \(n) levels \(levels)")
            for (c, r) in zip(coverages, s.risks) {
                XCTAssertEqual(r?.bitPattern, curve.risk(atCoverage: c)?.bitPattern, "n \(n) coverage \(c)")
            }
            // The walk that finds tie groups from the sort's keys gives the generic walk's
            // figures bit for bit, in every form of the keys: wide (the flag beside the keys or
            // in them), narrow from Double patterns, float32 keys.
            var keys = zip(conf, ok).map { float32RowKey(confidence: Float($0), correct: $1) }
            for (form, rows) in [("as given", sorted), ("widened float32", sortedByConfidenceDescending(conf.map { Double(Float($0)) }, ok)),
                                 ("float32 keys", sortedByConfidenceDescending(float32Keys: &keys))] {
                let fast = RiskCoverage.walkSummary(sortedDescending: rows, coverages: coverages)
                let generic = RiskCoverage.walkSummary(sortedDescending: Array(rows), coverages: coverages)
                XCTAssertEqual(fast.aurc.bitPattern, generic.aurc.bitPattern, "\(form): n \(n) levels \(levels)")
                XCTAssertEqual(fast.errors, generic.errors, "\(form): n \(n) levels \(levels)")
                XCTAssertEqual(fast.risks.map { $0?.bitPattern }, generic.risks.map { $0?.bitPattern }, "\(form): n \(n) levels \(levels)")
                XCTAssertEqual(fast.errors, ok.filter { !$0 }.count)
            }
        }
        // One tie group of 49 rows, one wrong: a share of errors (1/49) that binary does not hold.
        let tied = sortedByConfidenceDescending([Double](repeating: 0.7, count: 49), (0..<49).map { $0 != 20 })
        let s = RiskCoverage.summary(sortedDescending: tied, coverages: [1])
        XCTAssertEqual(s.risks[0]!.bitPattern, RiskCoverage(sortedDescending: tied).risk(atCoverage: 1)!.bitPattern)
        XCTAssertEqual(s.risks[0]!, 1.0 / 49)
        let empty = RiskCoverage.summary(sortedDescending: sortedByConfidenceDescending([], []), coverages: [0.5])
        XCTAssertTrue(empty.aurc.isNaN)
        XCTAssertNil(empty.risks[0])
    }

    func testBootstrapIsSeededAndBracketsTheEstimate() throws {
        var p: [Double] = [], y: [Int64] = []
        var g = SeededGenerator(seed: 3)
        for i in 0..<400 {
            let a = Double(g.next() % 1000) / 1000
            p += [a, 1 - a]; y.append(Int64(i % 2))
        }
        let r1 = try accumulate(p, y, k: 2) { $0.keepLosses = true }.report(bootstrap: 50, seed: 11)
        let r2 = try accumulate(p, y, k: 2) { $0.keepLosses = true }.report(bootstrap: 50, seed: 11)
        let r3 = try accumulate(p, y, k: 2) { $0.keepLosses = true }.report(bootstrap: 50, seed: 12)
        XCTAssertEqual(r1.intervals, r2.intervals)
        XCTAssertNotEqual(r1.intervals, r3.intervals)
        for (name, v) in [("accuracy", r1.accuracy), ("nll", r1.nll), ("brier", r1.brier), ("ece", r1.calibration.ece)] {
            let iv = r1.intervals![name]!
            XCTAssertLessThan(iv.low, v, name); XCTAssertGreaterThan(iv.high, v, name)
        }
    }

    func testSeededGeneratorBelowIsUniform() {
        var g = SeededGenerator(seed: 1)
        var counts = [Int](repeating: 0, count: 7)
        for _ in 0..<70_000 { counts[g.below(7)] += 1 }
        for c in counts { XCTAssertEqual(Double(c), 10_000, accuracy: 400) }
    }

    func testOODRowsOnlyScoreUncertainty() throws {
        var o = ClassificationOptions(); o.precision = .float64; o.ood = true
        let a = ClassificationAccumulator(classes: 2, options: o)
        let p: [Double] = [0.9, 0.1, 0.8, 0.2, 0.5, 0.5, 0.6, 0.4]
        try p.withUnsafeBufferPointer {
            try a.add(block: $0, labels: [0, 0, -1, -1], firstRow: 0, ood: [false, false, true, true])
        }
        let r = try a.report()
        XCTAssertEqual(r.rows, 2); XCTAssertEqual(r.oodRows, 2)
        XCTAssertEqual(r.accuracy, 1)
        XCTAssertEqual(r.ood!["max_prob"]!.auroc!, 1)
        XCTAssertEqual(r.ood!["entropy"]!.fpr95!, 0)
    }

    func testClassThatNeverOccursIsReported() throws {
        let r = try accumulate([0.7, 0.2, 0.1, 0.1, 0.8, 0.1], [0, 1], k: 3).report()
        XCTAssertEqual(r.classesNeverOccurring, [2])
    }

    func testRetrievalByHand() {
        let m = RetrievalMetrics(retrieved: [[5, 3, 9], [1, 2, 3]], relevant: [[3, -1], [7, 8]], ks: [1, 2, 3])
        XCTAssertEqual(m.mrr, (0.5 + 0) / 2)
        XCTAssertEqual(m.atK[1].ndcg, (1 / log2(3.0)) / 1 / 2, accuracy: 1e-15)
        XCTAssertEqual(m.atK[0].recall, 0)
        XCTAssertEqual(m.atK[2].recall, 0.5)
    }

    /// Equal-mass ECE's walk (a slot's sums kept in registers while the walk is in it) gives
    /// the bits of adding every row into the slot that numpy's searchsorted(interior edges, c,
    /// side="left") names, found here by counting edges: ties on the edges, few and many rows,
    /// more bins than distinct values.
    func testEqualMassWalkIsTheRowByRowSumsBitForBit() {
        var x: UInt64 = 7
        func next() -> UInt64 { x = x &* 6364136223846793005 &+ 1442695040888963407; return x >> 11 }
        for (n, levels, bins) in [(1, 1, 15), (2, 2, 3), (40, 3, 15), (1000, 10, 15), (1000, 1 << 40, 15), (5000, 7, 4), (20_000, 1000, 30)] {
            var c = (0..<n).map { _ in Double(next() % UInt64(levels) + 1) / Double(levels) }
            let ok = (0..<n).map { _ in next() % 3 != 0 }
            c[0] = 1
            let sorted = sortedByConfidenceDescending(c, ok)
            let edges = percentileLevels(bins).map { q in numpyQuantile(count: n, q) { sorted[n - 1 - $0].c } }
            let interior = Array(edges[1..<bins])
            var acc = BinAccumulator(slots: bins)
            for row in sorted {
                acc.add(slot: interior.filter { $0 < row.c }.count, confidence: row.c, correct: row.ok ? 1 : 0)
            }
            let expected = CalibrationErrors(acc, edges: edges).ece
            XCTAssertEqual(equalMassECE(sortedDescending: sorted, bins: bins).bitPattern, expected.bitPattern,
                           "n \(n) levels \(levels) bins \(bins)")
        }
    }

    /// The radix sort gives exactly the stable comparison sort's order (ties kept in input
    /// order): float32-widened and full double confidences, many ties, 0, −0 and 1; in one part
    /// and in two halves sorted at once.
    func testRadixSortMatchesTheStableSort() {
        var x: UInt64 = 12345
        func next() -> UInt64 { x = x &* 6364136223846793005 &+ 1442695040888963407; return x >> 11 }
        for n in [0, 1, 2, 3, 100, 4097] {
            for kind in 0..<6 {
                var c: [Double] = [], ok: [Bool] = []
                for i in 0..<n {
                    let u = Double(next()) / Double(1 << 53)
                    switch kind {
                    case 0: c.append(Double(Float(u)))                       // float32 input (32-bit keys)
                    case 1: c.append(u)                                      // float64 input
                    case 2: c.append([0, -0.0, 1, 0.5, 0.25][Int(next() % 5)])   // ties everywhere
                    // Confidences in [0.5, 1) that differ in bits 1...31 (the widest 32-bit
                    // keys hold) and in bits 1...32 (one too many: 64-bit keys).
                    case 3: c.append(Double(bitPattern: 0x3FE0_0000_0000_0000 | (next() & 0x7FFF_FFFF) << 1))
                    case 4: c.append(Double(bitPattern: 0x3FE0_0000_0000_0000 | (next() & 0xFFFF_FFFF) << 1))
                    // float32 confidences of all sizes down to 2^-126, some shared high bits.
                    default: c.append(Double(Float(sign: .plus, exponent: -Int(next() % 126), significand: 1 + Float(u))))
                    }
                    ok.append(next() % 3 == 0 || i % 7 == 0)
                }
                var expected = zip(c, ok).map { (c: $0, ok: $1) }
                expected.sort { $0.c > $1.c }
                // One part; two halves from the smallest sizes up (on two threads).
                for splitFrom in [Int.max, 2] {
                    let got = sortedByConfidenceDescending(c, ok, threads: 2, splitFrom: splitFrom)
                    XCTAssertEqual(got.map(\.c), expected.map(\.c), "n \(n) kind \(kind) split from \(splitFrom)")
                    XCTAssertEqual(got.map(\.ok), expected.map(\.ok), "n \(n) kind \(kind) split from \(splitFrom)")
                    // Float32 confidences kept as keys, sorted where they are.
                    guard c.allSatisfy({ Double(Float($0)) == $0 }) else { continue }
                    var keys = zip(c, ok).map { float32RowKey(confidence: Float($0), correct: $1) }
                    XCTAssertTrue(keys.map(float32RowValues).elementsEqual(zip(c, ok)) { $0.confidence == $1.0 && $0.correct == $1.1 })
                    let fromKeys = sortedByConfidenceDescending(float32Keys: &keys, threads: 2, splitFrom: splitFrom)
                    XCTAssertTrue(keys.isEmpty)
                    XCTAssertEqual(fromKeys.map(\.c), expected.map(\.c), "float32 keys: n \(n) kind \(kind) split from \(splitFrom)")
                    XCTAssertEqual(fromKeys.map(\.ok), expected.map(\.ok), "float32 keys: n \(n) kind \(kind) split from \(splitFrom)")
                    XCTAssertTrue(fromKeys.allSatisfy { $0.c.sign == .plus }, "−0 read back as +0")
                }
            }
        }
    }

    /// A block goes through the hoisted fast path; row by row through `add`: the reports agree
    /// to the last bit (the same sums in the same order), for 2 and 7 classes, with and
    /// without the per-row losses, in float32 and float64.
    func testBlockPathMatchesRowByRow() throws {
        var x: UInt64 = 99
        func next() -> Double { x = x &* 6364136223846793005 &+ 1442695040888963407; return Double(x >> 11) / Double(1 << 53) }
        for k in [2, 7] {
            // 9000 rows: the second block is large enough for classwise sums on a second thread.
            let n = 9000
            var p: [Double] = [], y: [Int64] = []
            for _ in 0..<n {
                var row = (0..<k).map { _ in pow(next(), 3) }
                let total = row.reduce(0, +)
                row = row.map { Double(Float($0 / total)) }
                p += row
                y.append(Int64(next() * Double(k)))
            }
            for keepLosses in [false, true] {
                for precision in [InputPrecision.float32, .float64] {
                    var o = ClassificationOptions(); o.precision = precision; o.keepLosses = keepLosses
                    // 300 bins: too many for the byte table, the classwise sums by exact lookup.
                    o.bins = keepLosses ? 300 : 15
                    var threaded = o; threaded.threads = 2
                    let block = ClassificationAccumulator(classes: k, options: threaded)
                    try p.withUnsafeBufferPointer { b in
                        try block.add(block: UnsafeBufferPointer(rebasing: b[0..<(1000 * k)]), labels: Array(y[0..<1000]), firstRow: 0)
                        try block.add(block: UnsafeBufferPointer(rebasing: b[(1000 * k)...]), labels: Array(y[1000...]), firstRow: 1000)
                    }
                    // The same rows as float32 (they are float32 values): the classwise sums'
                    // path that finds slots by the values' bits.
                    let floats = ClassificationAccumulator(classes: k, options: threaded)
                    try p.map { Float($0) }.withUnsafeBufferPointer { b in
                        try floats.add(block: UnsafeBufferPointer(rebasing: b[0..<(1000 * k)]), labels: Array(y[0..<1000]), firstRow: 0)
                        try floats.add(block: UnsafeBufferPointer(rebasing: b[(1000 * k)...]), labels: Array(y[1000...]), firstRow: 1000)
                    }
                    let rows = ClassificationAccumulator(classes: k, options: o)
                    try p.withUnsafeBufferPointer { b in
                        for i in 0..<n { try rows.add(UnsafeBufferPointer(rebasing: b[(i * k)..<((i + 1) * k)]), label: y[i], row: i) }
                    }
                    // The float32 rows in calls of at most 333 rows (a bin's rows and correct rows
                    // of one call share an Int; a larger block goes in pieces).
                    let pieces = ClassificationAccumulator(classes: k, options: threaded)
                    let most = ClassificationAccumulator.maxRowsPerCall
                    ClassificationAccumulator.maxRowsPerCall = 333
                    try p.map { Float($0) }.withUnsafeBufferPointer { b in
                        try pieces.add(block: b, labels: y, firstRow: 0)
                    }
                    ClassificationAccumulator.maxRowsPerCall = most
                    // The rows and the classwise sums of some classes on this thread, the other
                    // classes' on another at the same time, block after block, with a split that
                    // moves from block to block (calib-metrics' way).
                    let split = ClassificationAccumulator(classes: k, options: o)
                    try p.map { Float($0) }.withUnsafeBufferPointer { b in
                        for (i, first) in stride(from: 0, to: n, by: 500).enumerated() {
                            let rows = first..<min(n, first + 500)
                            let block = UnsafeBufferPointer(rebasing: b[(rows.lowerBound * k)..<(rows.upperBound * k)])
                            let labels = Array(y[rows])
                            let there = [k / 2, 0, k, 1][i % 4]
                            // Every other block with its rows counted once for both (`validRows`).
                            let valid = i % 2 == 1 ? split.validRows(block: block, labels: labels) : nil
                            try onTwoThreads({ try split.add(block: block, labels: labels, firstRow: first, classwiseOf: there..<k, validRows: valid) },
                                             { split.addClasswise(block: block, labels: labels, classes: 0..<there, validRows: valid) })
                        }
                    }
                    let a = try block.report(bootstrap: keepLosses ? 20 : 0, seed: 3)
                    let b = try rows.report(bootstrap: keepLosses ? 20 : 0, seed: 3)
                    let f = try floats.report(bootstrap: keepLosses ? 20 : 0, seed: 3)
                    let enc = JSONEncoder(); enc.outputFormatting = .sortedKeys
                    enc.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
                    XCTAssertEqual(String(decoding: try enc.encode(a), as: UTF8.self), String(decoding: try enc.encode(b), as: UTF8.self),
                                   "k \(k) losses \(keepLosses) \(precision)")
                    XCTAssertEqual(String(decoding: try enc.encode(f), as: UTF8.self), String(decoding: try enc.encode(b), as: UTF8.self),
                                   "float32 rows: k \(k) losses \(keepLosses) \(precision)")
                    XCTAssertEqual(String(decoding: try enc.encode(try pieces.report(bootstrap: keepLosses ? 20 : 0, seed: 3)), as: UTF8.self),
                                   String(decoding: try enc.encode(b), as: UTF8.self), "calls of 333 rows: k \(k) losses \(keepLosses) \(precision)")
                    XCTAssertEqual(String(decoding: try enc.encode(try split.report(bootstrap: keepLosses ? 20 : 0, seed: 3)), as: UTF8.self),
                                   String(decoding: try enc.encode(b), as: UTF8.self), "classwise sums on another thread: k \(k) losses \(keepLosses) \(precision)")
                    // Float32 rows (kept as keys), then float64 ones: the kept keys move to the
                    // Double arrays, and the report is the one of the same rows all in float64.
                    let mixed = ClassificationAccumulator(classes: k, options: threaded)
                    try p.map { Float($0) }.withUnsafeBufferPointer { b in
                        try mixed.add(block: UnsafeBufferPointer(rebasing: b[0..<(1000 * k)]), labels: Array(y[0..<1000]), firstRow: 0)
                    }
                    try p.withUnsafeBufferPointer { b in
                        try mixed.add(block: UnsafeBufferPointer(rebasing: b[(1000 * k)...]), labels: Array(y[1000...]), firstRow: 1000)
                    }
                    XCTAssertEqual(String(decoding: try enc.encode(try mixed.report(bootstrap: keepLosses ? 20 : 0, seed: 3)), as: UTF8.self),
                                   String(decoding: try enc.encode(b), as: UTF8.self), "float32 then float64 rows: k \(k) losses \(keepLosses) \(precision)")
                    // The rows kept as keys read back in row order, before the report and after
                    // it: the Double path's values; a report that sorts them in place is the same.
                    let kept = ClassificationAccumulator(classes: k, options: threaded)
                    try p.map { Float($0) }.withUnsafeBufferPointer { try kept.add(block: $0, labels: y, firstRow: 0) }
                    let before = (kept.rowConfidence, kept.rowCorrect)
                    let first = try kept.report(bootstrap: keepLosses ? 20 : 0, seed: 3)
                    XCTAssertEqual(String(decoding: try enc.encode(first), as: UTF8.self), String(decoding: try enc.encode(b), as: UTF8.self))
                    XCTAssertEqual(String(decoding: try enc.encode(try kept.report(bootstrap: keepLosses ? 20 : 0, seed: 3)), as: UTF8.self),
                                   String(decoding: try enc.encode(b), as: UTF8.self), "a second report")
                    var inPlace = threaded; inPlace.reportSortsRowsInPlace = true
                    let once = ClassificationAccumulator(classes: k, options: inPlace)
                    try p.map { Float($0) }.withUnsafeBufferPointer { try once.add(block: $0, labels: y, firstRow: 0) }
                    XCTAssertEqual(String(decoding: try enc.encode(try once.report(bootstrap: keepLosses ? 20 : 0, seed: 3)), as: UTF8.self),
                                   String(decoding: try enc.encode(b), as: UTF8.self), "sorted in place: k \(k) losses \(keepLosses) \(precision)")
                    XCTAssertEqual(before.0, rows.rowConfidence, "k \(k) \(precision)")
                    XCTAssertEqual(before.1, rows.rowCorrect, "k \(k) \(precision)")
                    XCTAssertEqual(kept.rowConfidence, before.0, "k \(k) \(precision)")
                    XCTAssertEqual(kept.rowCorrect, before.1, "k \(k) \(precision)")
                }
            }
        }
        // A refused row leaves the state row-by-row adding leaves, in blocks large enough for
        // classwise sums on a second thread (which must stop at the same row), and in a small one.
        for (k, rows, badRow, badLabel) in [(3, 6000, 4321, false), (3, 6000, 4500, true), (40, 5000, 4400, false),
                                            (40, 5000, 4100, true), (3, 10, 7, false)] {
            var p: [Float] = [], y: [Int64] = []
            for i in 0..<rows {
                var row = (0..<k).map { _ in Float(next()) }
                let total = row.reduce(0, +)
                row = row.map { $0 / total }
                p += row
                y.append(Int64(i % k))
            }
            if badLabel { y[badRow] = Int64(k) } else { p[badRow * k + 1] = .nan }
            var o = ClassificationOptions(); o.threads = 2
            let block = ClassificationAccumulator(classes: k, options: o), byRow = ClassificationAccumulator(classes: k)
            try p.withUnsafeBufferPointer { b in
                XCTAssertThrowsError(try block.add(block: b, labels: y, firstRow: 0))
                for i in 0..<badRow { try byRow.add(UnsafeBufferPointer(rebasing: b[(i * k)..<((i + 1) * k)]), label: y[i], row: i) }
            }
            // Shared between two threads by classes, the rows counted once for both.
            let shared = ClassificationAccumulator(classes: k, options: o)
            try p.withUnsafeBufferPointer { b in
                let valid = shared.validRows(block: b, labels: y)
                XCTAssertEqual(valid, badRow)
                try onTwoThreads({ XCTAssertThrowsError(try shared.add(block: b, labels: y, firstRow: 0, classwiseOf: 1..<k, validRows: valid)) },
                                 { shared.addClasswise(block: b, labels: y, classes: 0..<1, validRows: valid) })
            }
            let enc = JSONEncoder(); enc.outputFormatting = .sortedKeys
            XCTAssertEqual(String(decoding: try enc.encode(try block.report()), as: UTF8.self),
                           String(decoding: try enc.encode(try byRow.report()), as: UTF8.self), "refused at row \(badRow)")
            XCTAssertEqual(String(decoding: try enc.encode(try shared.report()), as: UTF8.self),
                           String(decoding: try enc.encode(try byRow.report()), as: UTF8.self), "shared, refused at row \(badRow)")
            XCTAssertEqual(block.rows, badRow)
        }
        let bad = ClassificationAccumulator(classes: 2)
        XCTAssertThrowsError(try [0.3, 0.7, 0.9, 0.1].withUnsafeBufferPointer { try bad.add(block: $0, labels: [1, 5], firstRow: 10) }) {
            XCTAssertEqual("\($0)", "labels: row 11 has label 5, outside [0, 2) for 2 classes")
        }
        XCTAssertEqual(bad.rows, 1)
        XCTAssertEqual(try bad.report().calibration.bins.map(\.count).reduce(0, +), 1)
    }
}

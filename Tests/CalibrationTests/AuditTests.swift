// The uncertainty audit against golden values from scikit-learn and numpy
// (scripts/fixtures/audit.py → Fixtures/audit.json), and its O(N) bootstrap figures against the
// library's own AUROC and risk–coverage on the expanded resample.
import Foundation
import Probability
import XCTest
@testable import Calibration

final class AuditTests: XCTestCase {
    let cases: [J] = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/audit.json")
        guard case .array(let a) = try! JSONDecoder().decode(JSONValue.self, from: Data(contentsOf: url)) else { fatalError() }
        return a.map { if case .object(let o) = $0 { return o }; fatalError() }
    }()

    func bools(_ a: Any?) -> [Bool] { arr(a).map { if case .bool(let b) = $0 { return b }; fatalError() } }

    func check(_ got: SignalAudit, _ want: J, _ label: String) {
        XCTAssertEqual(got.aurocErrors!, num(want["auroc_errors"]), accuracy: 1e-12, label)
        XCTAssertEqual(got.aurc, num(want["aurc"]), accuracy: 1e-12, label)
        XCTAssertEqual(got.eaurc, num(want["eaurc"]), accuracy: 1e-12, label)
        for (k, v) in obj(want["risk_at_coverage"])! { XCTAssertEqual(got.riskAtCoverage[k]!, num(v), accuracy: 1e-12, "\(label) risk@\(k)") }
        let curve = doubles(want["curve"])
        XCTAssertEqual(got.curve.count, curve.count)
        for (p, w) in zip(got.curve, curve) { XCTAssertEqual(p[1], w, accuracy: 1e-12, "\(label) curve at \(p[0])") }
    }

    func testAuditMatchesScikitLearnAndNumpy() throws {
        XCTAssertEqual(cases.count, 2)
        for c in cases {
            let name = str(c["name"])
            let correct = bools(c["correct"])
            let a = try auditUncertainty(
                signal: Signal(name: "u", direction: .uncertainty, values: doubles(c["uncertainty"])),
                baseline: Signal(name: "b", direction: .confidence, values: doubles(c["baseline_confidence"])),
                correct: correct, outcome: "test", bootstrap: int(c["bootstrap_replicates"]), seed: UInt64(int(c["bootstrap_seed"])))
            XCTAssertEqual(a.rows, correct.count)
            XCTAssertEqual(a.errors, correct.filter { !$0 }.count)
            check(a.signal, obj(c["signal"])!, "\(name) signal")
            check(a.baseline!, obj(c["baseline"])!, "\(name) baseline")
            let iv = obj(c["intervals"])!
            for (part, got) in [("signal", a.signal.intervals), ("baseline", a.baseline!.intervals), ("difference", a.difference)] {
                for (k, v) in obj(iv[part])! {
                    let want = doubles(v)
                    XCTAssertEqual(got?[k]?.low ?? .nan, want[0], accuracy: 1e-10, "\(name) \(part) \(k) low")
                    XCTAssertEqual(got?[k]?.high ?? .nan, want[1], accuracy: 1e-10, "\(name) \(part) \(k) high")
                }
            }
        }
    }

    /// The weighted figures of a resample equal AUROC and RiskCoverage on the rows repeated.
    func testWeightedFiguresEqualTheExpandedSample() {
        var g = SeededGenerator(seed: 5)
        for trial in 0..<20 {
            let n = 5 + trial * 3
            let conf = (0..<n).map { _ in Double(g.below(6)) }          // many ties
            let correct = (0..<n).map { _ in g.below(3) != 0 }
            let w = (0..<n).map { _ in UInt32(g.below(3)) }
            let r = WeightedRanking(confidence: conf, correct: correct).figures(weights: w)
            var c: [Double] = [], ok: [Bool] = []
            for i in 0..<n { for _ in 0..<w[i] { c.append(conf[i]); ok.append(correct[i]) } }
            guard !c.isEmpty else { continue }
            let rc = RiskCoverage(confidence: c, correct: ok)
            XCTAssertEqual(r.aurc, rc.aurc, accuracy: 1e-12, "trial \(trial)")
            XCTAssertEqual(r.eaurc, rc.excessAURC, accuracy: 1e-12, "trial \(trial)")
            let want = auroc(scores: c.map { -$0 }, positive: ok.map { !$0 })
            XCTAssertEqual(r.auroc == nil, want == nil, "trial \(trial)")
            if let a = r.auroc, let b = want { XCTAssertEqual(a, b, accuracy: 1e-12, "trial \(trial)") }
        }
    }

    /// With one error in 20 rows a third of the resamples have none: AUROC's interval comes from
    /// the others (recomputed here by drawing the same resamples and expanding them).
    func testResamplesWithoutAnErrorAreLeftOutOfTheAUROCInterval() throws {
        let n = 20
        let correct = (0..<n).map { $0 != 7 }
        let u = (0..<n).map { Double(($0 * 7) % n) }
        let a = try auditUncertainty(signal: Signal(name: "u", direction: .uncertainty, values: u), baseline: nil,
                                     correct: correct, outcome: "test", bootstrap: 300, seed: 3)
        var g = SeededGenerator(seed: 3)
        var values: [Double] = []
        for _ in 0..<300 {
            var counts = [Int](repeating: 0, count: n)
            for _ in 0..<n { counts[g.below(n)] += 1 }
            var s: [Double] = [], err: [Bool] = []
            for i in 0..<n { for _ in 0..<counts[i] { s.append(u[i]); err.append(!correct[i]) } }
            if let v = auroc(scores: s, positive: err) { values.append(v) }
        }
        XCTAssertTrue(values.count > 100 && values.count < 250, "\(values.count)")
        values.sort()
        let iv = try XCTUnwrap(a.signal.intervals?["auroc_errors"])
        XCTAssertEqual(iv.low, numpyQuantile(sorted: values, 0.025), accuracy: 1e-12)
        XCTAssertEqual(iv.high, numpyQuantile(sorted: values, 0.975), accuracy: 1e-12)
    }

    func testARefusedSignalSaysWhichRow() {
        XCTAssertThrowsError(try auditUncertainty(signal: Signal(name: "trace", direction: .uncertainty, values: [0.1, .nan]),
                                                  baseline: nil, correct: [true, false], outcome: "test")) {
            XCTAssertEqual("\($0)", "trace: row 1 holds nan (the audit needs a finite value per row)")
        }
    }
}

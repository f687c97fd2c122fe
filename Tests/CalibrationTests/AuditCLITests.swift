// calib-metrics --confidence / --uncertainty end to end: the audit in the JSON equals the golden
// values of scripts/fixtures/audit.py, in classification and in retrieval mode.
import Foundation
import TensorStream
import TestSupport
import XCTest
@testable import Calibration

extension CLITests {
    /// The fixture's "continuous" case: correctness, an uncertainty, and a baseline confidence
    /// mapped strictly increasingly into [0.4, 0.9] (the audit depends on its order only).
    func auditCase() throws -> (c: J, correct: [Bool], u: [Double], base: [Double]) {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/audit.json")
        guard case .array(let a) = try JSONDecoder().decode(JSONValue.self, from: Data(contentsOf: url)),
              case .object(let c) = a[0] else { throw CocoaError(.fileReadCorruptFile) }
        let correct = arr(c["correct"]).map { v -> Bool in if case .bool(let b) = v { return b }; return false }
        let b = doubles(c["baseline_confidence"])
        let lo = b.min()!, hi = b.max()!
        return (c, correct, doubles(c["uncertainty"]), b.map { 0.4 + 0.5 * ($0 - lo) / (hi - lo) })
    }

    func checkAudit(_ d: J, _ c: J, baseline: String, file: StaticString = #filePath, line: UInt = #line) {
        let a = obj(d["audit"])!
        let s = obj(a["signal"])!, b = obj(a["baseline"])!
        XCTAssertEqual(str(b["name"]), baseline, file: file, line: line)
        for (got, want) in [(s, obj(c["signal"])!), (b, obj(c["baseline"])!)] {
            for k in ["auroc_errors", "aurc", "eaurc"] { XCTAssertEqual(num(got[k]), num(want[k]), accuracy: 1e-12, k, file: file, line: line) }
        }
        let iv = obj(c["intervals"])!
        for (part, got) in [("signal", obj(s["intervals"])!), ("difference", obj(a["difference"])!)] {
            for (k, v) in obj(iv[part])! {
                XCTAssertEqual(num(obj(got[k])!["low"]), doubles(v)[0], accuracy: 1e-10, "\(part) \(k)", file: file, line: line)
                XCTAssertEqual(num(obj(got[k])!["high"]), doubles(v)[1], accuracy: 1e-10, "\(part) \(k)", file: file, line: line)
            }
        }
    }

    func testAuditOfAClassificationSignal() throws {
        let (c, correct, u, base) = try auditCase()
        let n = correct.count
        // Class 0 is always the argmax (its probability is the baseline); the label says if it was right.
        let probs = base.flatMap { [$0, (1 - $0) / 2, (1 - $0) / 2] }
        let input = try stream([Tensor(name: "probs", shape: [n, 3], doubles: probs),
                                Tensor(name: "labels", shape: [n], int64s: correct.map { $0 ? 0 : 1 }),
                                Tensor(name: "trace", shape: [n], doubles: u)])
        let d = try json(runTool("calib-metrics", ["--json", "--uncertainty", "trace", "--bootstrap", "200", "--seed", "9"], stdin: input))
        checkAudit(d, c, baseline: "max_prob")
        XCTAssertEqual(str(obj(d["audit"])!["outcome"]), "argmax == label")
        XCTAssertNotNil(d["ece"] ?? d["calibration"], "the usual report is still there")
        // The same signal as a confidence (negated) gives the same figures.
        let neg = try stream([Tensor(name: "probs", shape: [n, 3], doubles: probs),
                              Tensor(name: "labels", shape: [n], int64s: correct.map { $0 ? 0 : 1 }),
                              Tensor(name: "conf", shape: [n], doubles: u.map { -$0 })])
        let e = try json(runTool("calib-metrics", ["--json", "--confidence", "conf"], stdin: neg))
        XCTAssertEqual(num(obj(obj(e["audit"])!["signal"])!["auroc_errors"]), num(obj(c["signal"])!["auroc_errors"]), accuracy: 1e-12)
        // A tensor calib-metrics already reads for itself (sve-predict's mutual_info) can be audited too.
        let mi = try interleaved([Tensor(name: "probs", shape: [n, 3], doubles: probs),
                             Tensor(name: "labels", shape: [n], int64s: correct.map { $0 ? 0 : 1 }),
                             Tensor(name: "expected_entropy", shape: [n], doubles: Array(repeating: 0.1, count: n)),
                             Tensor(name: "mutual_info", shape: [n], doubles: u)])
        let f = try json(runTool("calib-metrics", ["--json", "--uncertainty", "mutual_info"], stdin: mi))
        XCTAssertEqual(num(obj(obj(f["audit"])!["signal"])!["auroc_errors"]), num(obj(c["signal"])!["auroc_errors"]), accuracy: 1e-12)
    }

    func testAuditOfARetrievalSignalWithTheMarginBaseline() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (c, correct, u, base) = try auditCase()
        let n = correct.count
        // Top hit q (relevant) when correct, else 1000 + q; the margin of the scores is the baseline.
        let indices = (0..<n).flatMap { q in [Int64(correct[q] ? q : 1000 + q), Int64(2000 + q)] }
        let scores = (0..<n).flatMap { q in [0.5 + base[q], 0.5] }
        let hits = try stream([Tensor(name: "indices", shape: [n, 2], int64s: indices),
                               Tensor(name: "scores", shape: [n, 2], doubles: scores),
                               Tensor(name: "top1_sigma", shape: [n], doubles: u)])
        let rel = dir.appendingPathComponent("rel.tsr")
        try stream([Tensor(name: "relevant", shape: [n], int64s: (0..<n).map { Int64($0) })]).write(to: rel)
        let d = try json(runTool("calib-metrics", ["--json", "--relevant", rel.path, "--uncertainty", "top1_sigma",
                                                   "--bootstrap", "200", "--seed", "9"], stdin: hits))
        checkAudit(d, c, baseline: "margin of scores")
        XCTAssertEqual(int(obj(d["audit"])!["errors"]), correct.filter { !$0 }.count)
        // The table and the curves.
        let svg = dir.appendingPathComponent("rc.svg")
        let t = try runTool("calib-metrics", ["--relevant", rel.path, "--uncertainty", "top1_sigma", "--risk-coverage-svg", svg.path], stdin: hits)
        XCTAssertEqual(t.status, 0, t.stderr)
        let text = String(decoding: t.stdout, as: UTF8.self)
        XCTAssertTrue(text.contains("Does the signal predict errors?") && text.contains("margin of scores (baseline)"), text)
        XCTAssertTrue(text.contains(String(format: "%.4f", num(obj(c["signal"])!["auroc_errors"]))), text)
        let drawn = try String(contentsOf: svg, encoding: .utf8)
        XCTAssertTrue(drawn.hasPrefix("<svg") && drawn.contains("top1_sigma (uncertainty)") && drawn.contains("perfect ranking"))
    }

    func testAuditUsageAndDataErrors() throws {
        let input = try stream([Tensor(name: "probs", shape: [2, 2], doubles: [0.9, 0.1, 0.2, 0.8]),
                                Tensor(name: "labels", shape: [2], int64s: [0, 0])])
        let both = try runTool("calib-metrics", ["--confidence", "a", "--uncertainty", "b"], stdin: input)
        XCTAssertEqual(both.status, 64)
        XCTAssertTrue(both.stderr.contains("not both"), both.stderr)
        XCTAssertEqual(try runTool("calib-metrics", ["--risk-coverage-svg", "x.svg"], stdin: input).status, 64)
        let missing = try runTool("calib-metrics", ["--uncertainty", "trace"], stdin: input)
        XCTAssertEqual(missing.status, 65)
        XCTAssertTrue(missing.stderr.hasPrefix("calib-metrics: ") && missing.stderr.contains("'trace'"), missing.stderr)
        XCTAssertEqual(missing.stdout.count, 0)
    }
}

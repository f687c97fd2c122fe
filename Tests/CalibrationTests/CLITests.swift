// The calib-metrics executable: output that parses and agrees with the library, one-line errors
// with the right exit status. Needs the built products (`swift build`; `swift test` builds them).
import Foundation
import TensorStream
import TestSupport
import XCTest
@testable import Calibration

final class CLITests: XCTestCase {
    func stream(_ tensors: [Tensor]) throws -> Data {
        let sink = ArraySink()
        let w = try TensorStreamWriter(sink: sink)
        for t in tensors { try w.write(t) }
        try w.finish()
        return Data(sink.bytes)
    }

    /// Every header first, then the data: how tools that write row-aligned tensors lay them out.
    func interleaved(_ tensors: [Tensor]) throws -> Data {
        let sink = ArraySink()
        let w = try TensorStreamWriter(sink: sink)
        let ids = try tensors.map { try w.add($0.info) }
        for (id, t) in zip(ids, tensors) { try t.data.withUnsafeBytes { try w.write(id, rows: t.rows, bytes: $0) } }
        try w.finish()
        return Data(sink.bytes)
    }

    /// A fixture case as tensors.
    func fixtureCase(_ name: String) -> (probs: Tensor, labels: Tensor, c: J) {
        let c = arr(fixture["classification"]).map { obj($0)! }.first { str($0["name"]) == name }!
        let k = int(c["classes"])
        let p = doubles(c["probs"]), y = ints(c["labels"])
        return (Tensor(name: "probs", shape: [y.count, k], doubles: p), Tensor(name: "labels", shape: [y.count], int64s: y), c)
    }

    func json(_ run: ToolRun) throws -> J {
        XCTAssertEqual(run.status, 0, run.stderr)
        return try JSONDecoder().decode(J.self, from: run.stdout)
    }

    func testJSONMatchesGoldenInEveryMode() throws {
        let (p, y, c) = fixtureCase("random_k5")
        let input = try stream([p, y])
        let d = try json(runTool("calib-metrics", ["--json"], stdin: input))
        XCTAssertEqual(num(obj(d["calibration"])!["ece"]), num(obj(c["default"])!["ece"]), accuracy: 1e-12)
        XCTAssertEqual(num(d["nll"]), num(c["nll"]), accuracy: 1e-12)
        XCTAssertEqual(num(d["brier"]), num(c["brier"]), accuracy: 1e-12)
        XCTAssertEqual(int(d["rows"]), 300)
        let t = try json(runTool("calib-metrics", ["--json", "--mode", "torchmetrics"], stdin: input))
        XCTAssertEqual(num(obj(t["calibration"])!["ece"]), num(obj(c["torchmetrics"])!["ece"]), accuracy: 1e-9)
        let n = try json(runTool("calib-metrics", ["--json", "--mode", "netcal"], stdin: input))
        XCTAssertEqual(num(obj(n["calibration"])!["ece"]), num(obj(c["netcal"])!["ece"]), accuracy: 1e-9)
    }

    func testTableAndLabelsFromAFile() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let (p, y, c) = fixtureCase("random_binary")
        let labels = dir.appendingPathComponent("labels.tsr")
        try stream([y]).write(to: labels)
        let svg = dir.appendingPathComponent("rel.svg")
        let run = try runTool("calib-metrics", ["--labels", labels.path, "--reliability-svg", svg.path], stdin: try stream([p]))
        XCTAssertEqual(run.status, 0, run.stderr)
        let text = String(decoding: run.stdout, as: UTF8.self)
        XCTAssertTrue(text.contains("ece positive-class"), text)
        XCTAssertTrue(text.contains(String(format: "%.4f", num(c["accuracy"]))), text)
        XCTAssertTrue(text.contains("brier (sklearn binary)"), text)
        let drawn = try String(contentsOf: svg, encoding: .utf8)
        XCTAssertTrue(drawn.hasPrefix("<svg") && drawn.contains("Reliability diagram"))
    }

    /// --labels and --ood are streams of their own, read a block at a time beside the
    /// predictions: the same report as labels inside the stream, over several blocks; a side
    /// stream's only tensor is taken whatever its name; row counts that differ are refused.
    func testSideStreamsAreReadInStepWithThePredictions() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        func file(_ name: String, _ tensors: [Tensor]) throws -> String {
            let url = dir.appendingPathComponent(name)
            try stream(tensors).write(to: url)
            return url.path
        }
        // 70,000 rows of 2 classes: two blocks of the reader (65,536 rows each at most).
        let n = 70_000
        var x: UInt64 = 5
        func next() -> Float { x = x &* 6364136223846793005 &+ 1442695040888963407; return Float(x >> 40) / Float(1 << 24) }
        let p1 = (0..<n).map { _ in next() }
        let probs = Tensor(name: "probs", shape: [n, 2], floats: p1.flatMap { [1 - $0, $0] })
        let y = p1.map { Int64(next() < $0 ? 1 : 0) }
        let ood = (0..<n).map { Int64($0 % 7 == 0 ? 1 : 0) }
        let inStream = try runTool("calib-metrics", ["--json"], stdin: try stream([probs, Tensor(name: "labels", shape: [n], int64s: y)]))
        XCTAssertEqual(inStream.status, 0, inStream.stderr)
        let side = try runTool("calib-metrics", ["--json", "--labels", try file("y.tsr", [Tensor(name: "y", shape: [n], int64s: y)])],
                               stdin: try stream([probs]))
        XCTAssertEqual(side.status, 0, side.stderr)
        XCTAssertEqual(side.stdout, inStream.stdout)
        let flags = try file("ood.tsr", [Tensor(name: "other", shape: [n], floats: Array(repeating: 0, count: n)),
                                         Tensor(name: "ood", shape: [n], int64s: ood)])
        let withOOD = try json(runTool("calib-metrics", ["--json", "--ood", flags], stdin: try stream([probs, Tensor(name: "labels", shape: [n], int64s: y)])))
        XCTAssertEqual(int(withOOD["ood_rows"]), ood.filter { $0 == 1 }.count)

        let p = Tensor(name: "probs", shape: [3, 2], floats: [0.5, 0.5, 0.2, 0.8, 0.9, 0.1])
        try assertFails(["--labels", try file("short.tsr", [Tensor(name: "labels", shape: [2], int64s: [0, 1])])], [p],
                        status: 65, contains: "'probs' has more rows than --labels (2)")
        try assertFails(["--labels", try file("long.tsr", [Tensor(name: "labels", shape: [4], int64s: [0, 1, 0, 1])])], [p],
                        status: 65, contains: "'probs' has 3 rows but --labels has 4")
        try assertFails(["--labels", try file("two.tsr", [Tensor(name: "y", shape: [3], int64s: [0, 1, 0]),
                                                           Tensor(name: "z", shape: [3], int64s: [0, 1, 0])])], [p],
                        status: 65, contains: "no tensor 'labels' (it has: y, z; --labels takes a stream of one tensor, or one named 'labels')")
        try assertFails(["--labels", try file("wide.tsr", [Tensor(name: "labels", shape: [3, 2], int64s: [0, 1, 0, 1, 0, 1])])], [p],
                        status: 65, contains: "has shape [N, 2], expected [N]")
        try assertFails(["--ood", try file("bad.tsr", [Tensor(name: "ood", shape: [3], int64s: [0, 2, 0])])],
                        [p, Tensor(name: "labels", shape: [3], int64s: [0, 1, 0])],
                        status: 65, contains: "row 1 holds 2, expected 0 (in distribution) or 1")
    }

    func testEnsembleOODAndBootstrap() throws {
        let e = obj(fixture["ensemble"])!
        let m = int(e["members"]), k = int(e["classes"])
        let y = ints(e["labels"])
        let mp = Tensor(name: "member_probs", shape: [y.count, m, k], doubles: doubles(e["member_probs"]))
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let oodFile = dir.appendingPathComponent("ood.tsr")
        try stream([Tensor(name: "ood", shape: [y.count], int64s: y.indices.map { $0 % 5 == 0 ? 1 : 0 })]).write(to: oodFile)
        let args = ["--json", "--ood", oodFile.path, "--bootstrap", "30", "--seed", "4"]
        let a = try runTool("calib-metrics", args, stdin: try stream([mp, Tensor(name: "labels", shape: [y.count], int64s: y)]))
        let b = try runTool("calib-metrics", args, stdin: try stream([mp, Tensor(name: "labels", shape: [y.count], int64s: y)]))
        XCTAssertEqual(a.stdout, b.stdout)   // seeded: byte-identical
        let d = try json(a)
        XCTAssertEqual(int(d["ood_rows"]), 10)
        XCTAssertEqual(arr(d["members"]).count, m)
        XCTAssertNotNil(obj(obj(d["ood"])!["mutual_info"]))
        XCTAssertNotNil(obj(obj(d["intervals"])!["ece"]))
    }

    /// sve-predict's output: the mean 'probs' with per-row 'expected_entropy' and 'mutual_info'
    /// scores like 'member_probs' does.
    func testUncertaintyTensorsNextToProbs() throws {
        let e = obj(fixture["ensemble"])!
        let m = int(e["members"]), k = int(e["classes"])
        let y = ints(e["labels"])
        let member = doubles(e["member_probs"])
        var mean = [Double](repeating: 0, count: y.count * k)
        var ee = [Double](repeating: 0, count: y.count), mi = ee
        for i in y.indices {
            var h = 0.0
            for j in 0..<m {
                let row = Array(member[((i * m + j) * k)..<((i * m + j + 1) * k)])
                for c in 0..<k { mean[i * k + c] += row[c] / Double(m) }
                h += row.reduce(0) { $1 > 0 ? $0 - $1 * log($1) : $0 } / Double(m)
            }
            ee[i] = h
            let hm = mean[(i * k)..<((i + 1) * k)].reduce(0) { $1 > 0 ? $0 - $1 * log($1) : $0 }
            mi[i] = max(0, hm - h)
        }
        let d = try json(runTool("calib-metrics", ["--json"], stdin: try interleaved([
            Tensor(name: "probs", shape: [y.count, k], doubles: mean),
            Tensor(name: "expected_entropy", shape: [y.count], doubles: ee),
            Tensor(name: "mutual_info", shape: [y.count], doubles: mi),
            Tensor(name: "labels", shape: [y.count], int64s: y)])))
        XCTAssertEqual(num(d["mean_mutual_info"]), num(e["mean_mutual_info"]), accuracy: 1e-12)
        XCTAssertEqual(num(d["mean_expected_entropy"]), num(e["mean_expected_entropy"]), accuracy: 1e-12)
        XCTAssertEqual(num(d["nll"]), num(e["nll"]), accuracy: 1e-12)
    }

    func testLogitsAreSoftmaxed() throws {
        let logits: [Double] = [2, 0, -1, 0.5, 0.5, 3]
        let y: [Int64] = [0, 2]
        let run = try runTool("calib-metrics", ["--json", "--logits"],
                              stdin: try stream([Tensor(name: "logits", shape: [2, 3], doubles: logits),
                                                 Tensor(name: "labels", shape: [2], int64s: y)]))
        let d = try json(run)
        let p0 = exp(2.0) / (exp(2.0) + 1 + exp(-1.0)), p1 = exp(3.0) / (2 * exp(0.5) + exp(3.0))
        XCTAssertEqual(num(d["nll"]), -(log(p0) + log(p1)) / 2, accuracy: 1e-12)
        XCTAssertEqual(num(d["accuracy"]), 1)
    }

    func testSimilarityAndRetrievalModes() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let c = arr(fixture["correlation"]).map { obj($0)! }[1]
        let gold = dir.appendingPathComponent("gold.tsr")
        try stream([Tensor(name: "gold", shape: [doubles(c["y"]).count], doubles: doubles(c["y"]))]).write(to: gold)
        let s = try json(runTool("calib-metrics", ["--json", "--gold", gold.path],
                                 stdin: try stream([Tensor(name: "scores", shape: [doubles(c["x"]).count], doubles: doubles(c["x"]))])))
        XCTAssertEqual(num(s["spearman"]), num(c["spearman"]), accuracy: 1e-12)
        XCTAssertEqual(num(s["pearson"]), num(c["pearson"]), accuracy: 1e-12)

        let r = obj(fixture["retrieval"])!
        let retrieved = arr(r["retrieved"]).map { ints($0) }
        let relevant = arr(r["relevant"]).map { ints($0) }
        let width = relevant.map(\.count).max()!
        let padded = relevant.flatMap { $0 + Array(repeating: -1, count: width - $0.count) }
        let relFile = dir.appendingPathComponent("rel.tsr")
        try stream([Tensor(name: "relevant", shape: [relevant.count, width], int64s: padded)]).write(to: relFile)
        let idx = Tensor(name: "indices", shape: [retrieved.count, retrieved[0].count], int64s: retrieved.flatMap { $0 })
        let d = try json(runTool("calib-metrics", ["--json", "--relevant", relFile.path, "--k", "1,3,5,10"], stdin: try stream([idx])))
        XCTAssertEqual(num(d["mrr"]), num(r["mrr"]), accuracy: 1e-6)
        let ten = arr(d["at_k"]).map { obj($0)! }.first { int($0["k"]) == 10 }!
        XCTAssertEqual(num(ten["ndcg"]), num(obj(obj(r["by_k"])!["10"])!["ndcg_sklearn"]), accuracy: 1e-12)
    }

    func assertFails(_ args: [String], _ tensors: [Tensor], status: Int32, contains: String,
                     file: StaticString = #filePath, line: UInt = #line) throws {
        let run = try runTool("calib-metrics", args, stdin: try stream(tensors))
        XCTAssertEqual(run.status, status, run.stderr, file: file, line: line)
        XCTAssertTrue(run.stderr.hasPrefix("calib-metrics: ") && run.stderr.contains(contains), run.stderr, file: file, line: line)
        XCTAssertEqual(run.stderr.split(separator: "\n").count, 1, run.stderr, file: file, line: line)
        XCTAssertTrue(run.stdout.isEmpty, file: file, line: line)
    }

    func testBadInputIsRefusedWithOneLine() throws {
        let p = Tensor(name: "probs", shape: [3, 2], floats: [0.5, 0.5, 0.2, 0.8, 0.9, 0.1])
        try assertFails([], [p, Tensor(name: "labels", shape: [3], int64s: [0, 1, 2])], status: 65, contains: "row 2 has label 2, outside [0, 2)")
        try assertFails([], [p, Tensor(name: "labels", shape: [3], int64s: [0, -1, 1])], status: 65, contains: "label -1")
        try assertFails([], [Tensor(name: "probs", shape: [2, 2], floats: [0.5, .nan, 0.2, 0.8]),
                             Tensor(name: "labels", shape: [2], int64s: [0, 1])], status: 65, contains: "row 0 holds NaN")
        try assertFails([], [p, Tensor(name: "labels", shape: [2], int64s: [0, 1])], status: 65, contains: "rows")
        try assertFails([], [Tensor(name: "probs", shape: [0, 3], floats: []), Tensor(name: "labels", shape: [0], int64s: [])],
                        status: 65, contains: "N = 0")
        try assertFails([], [p], status: 65, contains: "no tensor 'labels'")
        try assertFails([], [Tensor(name: "probs", shape: [3, 2, 2], floats: Array(repeating: 0.5, count: 12)),
                             Tensor(name: "labels", shape: [3], int64s: [0, 1, 1])], status: 65, contains: "expected [N, K]")
        try assertFails([], [p, Tensor(name: "labels", shape: [3], floats: [0, 1.5, 1])], status: 65, contains: "not a whole number")
        try assertFails(["--bins", "0"], [p], status: 64, contains: "--bins")
        try assertFails(["--gold", "x", "--relevant", "y"], [p], status: 64, contains: "different modes")
    }

    func testRowsNotSummingToOneWarnButScore() throws {
        let p = Tensor(name: "probs", shape: [2, 2], floats: [0.5, 0.4, 0.2, 0.8])
        let run = try runTool("calib-metrics", ["--json"], stdin: try stream([p, Tensor(name: "labels", shape: [2], int64s: [0, 1])]))
        XCTAssertEqual(run.status, 0)
        XCTAssertTrue(run.stderr.contains("warning: 1 of 2 rows"), run.stderr)
        let d = try json(run)
        XCTAssertEqual(int(d["rows_not_summing_to_one"]), 1)
        XCTAssertEqual(num(d["brier"]), ((0.25 + 0.16) + (0.04 + 0.04)) / 2, accuracy: 1e-7)
    }

    func testHelpHasExamples() throws {
        let run = try runTool("calib-metrics", ["--help"])
        let text = String(decoding: run.stdout, as: UTF8.self)
        XCTAssertEqual(run.status, 0)
        XCTAssertTrue(text.contains("Examples:") && text.contains("--reliability-svg"), text)
    }
}

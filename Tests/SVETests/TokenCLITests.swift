import Foundation
import LinearAlgebra
import TensorStream
import TestSupport
import XCTest
@testable import SVE
import Probability

/// sve-decompose --layers, sve-train --layers and sve-predict on token-level input, on a tiny
/// random BERT checkpoint (hidden 8, 2 heads, FFN 12, two layers, 16 positions).
final class TokenCLITests: XCTestCase {
    var dir: URL!
    override func setUpWithError() throws { dir = try temporaryDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    func checkpoint() throws -> Data {
        var r = SeededGenerator(seed: 3)
        func v(_ n: Int, _ s: Double, _ c: Float = 0) -> [Float] { (0..<n).map { _ in c + Float(r.normal() * s) } }
        var ts = [Tensor(name: "embeddings.position_embeddings.weight", shape: [16, 8], floats: v(128, 0.1))]
        for l in 0..<2 {
            let p = "encoder.layer.\(l)."
            for (n, o, i) in [("attention.self.query", 8, 8), ("attention.self.key", 8, 8), ("attention.self.value", 8, 8),
                              ("attention.output.dense", 8, 8), ("intermediate.dense", 12, 8), ("output.dense", 8, 12)] {
                ts += [Tensor(name: p + n + ".weight", shape: [o, i], floats: v(o * i, 0.4)), Tensor(name: p + n + ".bias", shape: [o], floats: v(o, 0.1))]
            }
            for n in ["attention.output.LayerNorm", "output.LayerNorm"] {
                ts += [Tensor(name: p + n + ".weight", shape: [8], floats: v(8, 0.1, 1)), Tensor(name: p + n + ".bias", shape: [8], floats: v(8, 0.1))]
            }
        }
        return try encode(ts)
    }

    /// 60 texts of 2 to 7 tokens, 2 classes told apart by the mean of their tokens.
    func tokens(width: Int = 8, longest: Int = 7) -> [Tensor] {
        var r = SeededGenerator(seed: 9)
        var x: [Float] = [], lengths: [Int64] = [], labels: [Int64] = []
        for i in 0..<60 {
            let c = i % 2, L = 2 + r.below(longest - 1)
            lengths.append(Int64(L)); labels.append(Int64(c))
            for _ in 0..<L { for j in 0..<width { x.append(Float(r.normal() + (c == 1 && j < 3 ? 1.5 : 0))) } }
        }
        return [Tensor(name: "features", shape: [x.count / width, width], floats: x),
                Tensor(name: "lengths", shape: [60], int64s: lengths), Tensor(name: "labels", shape: [60], int64s: labels)]
    }

    func basis(_ layers: String) throws -> String {
        let out = path("basis\(layers).tsr")
        let r = try runTool("sve-decompose", ["--layers", layers, "-q", "-o", out], stdin: checkpoint())
        XCTAssertEqual(r.status, 0, r.stderr)
        return out
    }

    func train(_ basis: String, _ extra: [String], _ data: [Tensor]) throws -> ToolRun {
        try runTool("sve-train", ["--basis", basis, "--layers", "0-1", "--heads", "2", "--epochs", "4", "--batch-size", "8",
                                  "--lr", "0.01", "--threads", "1"] + extra, stdin: encode(data))
    }

    /// Train and predict: one row per text, accuracy well above chance; a batch run in parts of
    /// at most 10 token rows gives the model of a batch run whole (gradients add up); the deep
    /// ensemble and M = 1 run too.
    func testTrainAndPredictOverWholeLayers() throws {
        let b = try basis("0-1")
        let info = try decode(try Data(contentsOf: URL(fileURLWithPath: b)))
        XCTAssertEqual(info["encoder.layer.1.attention.self.key.U"]?.meta[LayerRange.maxPositionsKey], "16")
        XCTAssertNotNil(info["encoder.layer.0.output.LayerNorm.weight"])
        var models: [String: [String: Tensor]] = [:]
        for (name, extra) in [("whole", ["--max-tokens", "1000"]), ("parts", ["--max-tokens", "10"]),
                              ("de", ["--method", "deep-ensemble", "--members", "2"]), ("svf", ["--members", "1"])] {
            let r = try train(b, extra + ["--seed", "1", "-o", path("\(name).tsr")], tokens())
            XCTAssertEqual(r.status, 0, "\(name): \(r.stderr)")
            models[name] = try decode(try Data(contentsOf: URL(fileURLWithPath: path("\(name).tsr"))))
        }
        XCTAssertEqual(models["whole"]!["temperature"]!.meta["sve.stack"],
                       "residual(attention:encoder.layer.0.attention.self:2 linear:encoder.layer.0.attention.output.dense) layernorm:encoder.layer.0.attention.output.LayerNorm residual(linear:encoder.layer.0.intermediate.dense gelu linear:encoder.layer.0.output.dense) layernorm:encoder.layer.0.output.LayerNorm residual(attention:encoder.layer.1.attention.self:2 linear:encoder.layer.1.attention.output.dense) layernorm:encoder.layer.1.attention.output.LayerNorm residual(linear:encoder.layer.1.intermediate.dense gelu linear:encoder.layer.1.output.dense) layernorm:encoder.layer.1.output.LayerNorm mean-pool")
        let a = models["whole"]!["encoder.layer.0.attention.self.query.s"]!.floats(), p = models["parts"]!["encoder.layer.0.attention.self.query.s"]!.floats()
        XCTAssertNotEqual(a, models["svf"]!["encoder.layer.0.attention.self.query.s"]!.floats())
        for i in a.indices { XCTAssertEqual(a[i], p[i], accuracy: 1e-4 * max(1, abs(a[i]))) }
        XCTAssertEqual(models["de"]!["encoder.layer.1.intermediate.dense.weight"]?.shape, [2, 12, 8])
        let data = tokens()
        for name in ["whole", "de"] {
            let r = try runTool("sve-predict", ["--model", path("\(name).tsr"), "--pass", "labels", "--max-tokens", "9"], stdin: encode(data))
            XCTAssertEqual(r.status, 0, r.stderr)
            let out = try decode(r.stdout)
            let probs = out["probs"]!.floats(), labels = try out["labels"]!.int64s()
            XCTAssertEqual(out["mutual_info"]!.shape, [60])
            let correct = (0..<60).filter { (probs[2 * $0 + 1] > 0.5 ? 1 : 0) == labels[$0] }.count
            XCTAssertGreaterThan(correct, 45, name)
        }
    }

    /// --threads 2 (the texts of each mini-batch in two shards on two threads) trains the model of
    /// --threads 1 (singular values within 1e-4 relative: f32 sums in another order, see
    /// ParallelTests), and sve-predict --threads 2 gives --threads 1's probabilities (1e-5).
    func testTwoThreadsTrainAndPredictAsOne() throws {
        let b = try basis("0-1")
        var models: [String: [String: Tensor]] = [:]
        for threads in ["1", "2"] {
            let r = try train(b, ["--seed", "1", "--threads", threads, "-o", path("t\(threads).tsr")], tokens())
            XCTAssertEqual(r.status, 0, r.stderr)
            models[threads] = try decode(try Data(contentsOf: URL(fileURLWithPath: path("t\(threads).tsr"))))
        }
        for name in ["encoder.layer.0.attention.self.query.s", "encoder.layer.1.output.dense.s", "head.weight"] {
            let a = models["1"]![name]!.floats(), c = models["2"]![name]!.floats()
            XCTAssertEqual(a.count, c.count)
            for i in a.indices { XCTAssertEqual(c[i], a[i], accuracy: 1e-4 * max(1, abs(a[i])), name) }
        }
        var probs: [[Float]] = []
        for threads in ["1", "2"] {
            let r = try runTool("sve-predict", ["--model", path("t1.tsr"), "--max-tokens", "40", "--threads", threads], stdin: encode(tokens()))
            XCTAssertEqual(r.status, 0, r.stderr)
            probs.append(try decode(r.stdout)["member_probs"]!.floats())
        }
        XCTAssertEqual(probs[0].count, 60 * 4 * 2)  // texts × members (the default 4) × classes
        for (a, c) in zip(probs[0], probs[1]) { XCTAssertEqual(c, a, accuracy: 1e-5) }
    }

    /// Bad input: one line, status 65, nothing written.
    func testBadInput() throws {
        let b = try basis("0-1")
        func refused(_ r: ToolRun, _ message: String, file: StaticString = #filePath, line: UInt = #line) {
            XCTAssertEqual(r.status, 65, r.stderr, file: file, line: line)
            XCTAssertTrue(r.stderr.contains(message), r.stderr, file: file, line: line)
            XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, file: file, line: line)
            XCTAssertTrue(r.stdout.isEmpty, file: file, line: line)
        }
        // Layers the checkpoint lacks.
        let d = try runTool("sve-decompose", ["--layers", "1-2", "-o", path("no.tsr")], stdin: checkpoint())
        refused(d, "input has no layer encoder.layer.2 (it has layers 0, 1; check --layers)")
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("no.tsr")))
        // Token rows of another width; a text longer than the positions; lengths that do not add up.
        refused(try train(b, [], tokens(width: 6)), "token rows are 6 wide but the model's hidden size is 8")
        refused(try train(b, [], tokens(longest: 20)), "tokens but the model has 16 positions")
        var t = tokens()
        t[1] = Tensor(name: "lengths", shape: [60], int64s: [Int64](repeating: 3, count: 60))
        refused(try train(b, [], t), "'lengths' adds up to 180 tokens but there are")
        // A basis of other layers than the stack's.
        refused(try train(try basis("1"), [], tokens()), "the basis has no layer 'encoder.layer.0.attention.self.query'")
        // Predict: a model, then token rows of the wrong width and too-long texts.
        XCTAssertEqual(try train(b, ["-o", path("m.tsr")], tokens()).status, 0)
        refused(try runTool("sve-predict", ["--model", path("m.tsr")], stdin: encode(tokens(width: 6))), "token rows are 6 wide")
        refused(try runTool("sve-predict", ["--model", path("m.tsr")], stdin: encode(tokens(longest: 20))), "16 positions")
    }
}

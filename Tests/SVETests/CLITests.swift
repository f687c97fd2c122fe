import Foundation
import LinearAlgebra
import TensorStream
import TestSupport
import XCTest
@testable import SVE
import Probability

/// Tensors as a stream.
func encode(_ tensors: [Tensor]) throws -> Data {
    let sink = ArraySink()
    let w = try TensorStreamWriter(sink: sink)
    for t in tensors { try w.write(t) }
    try w.finish()
    return Data(sink.bytes)
}

/// A stream's tensors by name.
func decode(_ data: Data) throws -> [String: Tensor] {
    var out: [String: Tensor] = [:]
    for t in try TensorStreamReader(ArraySource([UInt8](data))).readAll() { out[t.name] = t }
    return out
}

/// The three executables, run as users run them.
final class CLITests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws { dir = try temporaryDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func file(_ name: String, _ tensors: [Tensor]) throws -> String {
        let url = dir.appendingPathComponent(name)
        try encode(tensors).write(to: url)
        return url.path
    }

    /// Pretrained weights of a tiny block: a (8×5), b (5×8), LayerNorm n (5).
    func weights(seed: UInt64 = 1) -> [Tensor] {
        var r = SeededGenerator(seed: seed)
        func v(_ n: Int, _ s: Double) -> [Float] { (0..<n).map { _ in Float(r.normal() * s) } }
        return [
            Tensor(name: "blk.a.weight", shape: [8, 5], floats: v(40, 0.5)),
            Tensor(name: "blk.a.bias", shape: [8], floats: v(8, 0.1)),
            Tensor(name: "blk.b.weight", shape: [5, 8], floats: v(40, 0.3)),
            Tensor(name: "blk.b.bias", shape: [5], floats: v(5, 0.1)),
            Tensor(name: "blk.n.weight", shape: [5], floats: v(5, 0.1).map { $0 + 1 }),
            Tensor(name: "blk.n.bias", shape: [5], floats: v(5, 0.1)),
        ]
    }

    /// 3 separable classes in 5 dimensions.
    func dataset(n: Int = 150, classes: Int = 3) -> [Tensor] {
        var r = SeededGenerator(seed: 77)
        let centers = (0..<(classes * 5)).map { _ in r.normal() * 2 }
        var x: [Float] = [], y: [Int64] = []
        for i in 0..<n {
            let c = i % classes
            y.append(Int64(c))
            for j in 0..<5 { x.append(Float(centers[c * 5 + j] + r.normal())) }
        }
        return [Tensor(name: "features", shape: [n, 5], floats: x), Tensor(name: "labels", shape: [n], int64s: y)]
    }

    let stack = "residual(linear:blk.a gelu linear:blk.b) layernorm:blk.n"

    func basisFile() throws -> String {
        let run = try runTool("sve-decompose", ["--prefix", "blk."], stdin: encode(weights()))
        XCTAssertEqual(run.status, 0, run.stderr)
        let path = dir.appendingPathComponent("basis.tsr")
        try run.stdout.write(to: path)
        return path.path
    }

    func testDecomposeReconstructsAndReports() throws {
        let run = try runTool("sve-decompose", ["--prefix", "blk."], stdin: encode(weights()))
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertTrue(run.stderr.contains("blk.a: 8×5, rank 5, relative reconstruction error"), run.stderr)
        let out = try decode(run.stdout)
        XCTAssertEqual(Set(out.keys), ["blk.a.U", "blk.a.S", "blk.a.Vt", "blk.a.bias", "blk.b.U", "blk.b.S", "blk.b.Vt",
                                       "blk.b.bias", "blk.n.weight", "blk.n.bias"])
        XCTAssertEqual(out["blk.a.U"]!.shape, [8, 5]); XCTAssertEqual(out["blk.b.Vt"]!.shape, [5, 8])
        let b = try LayerBasis(u: Matrix(rows: 8, cols: 5, data: out["blk.a.U"]!.floats()), s: out["blk.a.S"]!.floats(),
                               vt: Matrix(rows: 5, cols: 5, data: out["blk.a.Vt"]!.floats()), bias: out["blk.a.bias"]!.floats())
        let w = weights()[0].floats()
        for (i, v) in b.weight().data.enumerated() { XCTAssertEqual(v, w[i], accuracy: 1e-5) }
        XCTAssertEqual(out["blk.n.weight"]!.floats(), weights()[4].floats())

        let r2 = try runTool("sve-decompose", ["--layer", "blk.a", "--rank", "2", "-q"], stdin: encode(weights()))
        XCTAssertEqual(r2.status, 0, r2.stderr)
        XCTAssertEqual(r2.stderr, "")
        XCTAssertEqual(try decode(r2.stdout)["blk.a.U"]!.shape, [8, 2])
    }

    func testDecomposeErrors() throws {
        var run = try runTool("sve-decompose", ["--layer", "blk.zzz"], stdin: encode(weights()))
        XCTAssertEqual(run.status, 65)
        XCTAssertTrue(run.stderr.hasPrefix("sve-decompose: input has no tensor 'blk.zzz.weight'"), run.stderr)
        XCTAssertEqual(run.stderr.split(separator: "\n").count, 1)
        var w = weights()
        w[1] = Tensor(name: "blk.a.bias", shape: [7], floats: [Float](repeating: 0, count: 7))
        run = try runTool("sve-decompose", ["--layer", "blk.a"], stdin: encode(w))
        XCTAssertEqual(run.status, 65)
        XCTAssertTrue(run.stderr.contains("expected 8"), run.stderr)
        run = try runTool("sve-decompose", ["--rank", "0"], stdin: encode(weights()))
        XCTAssertEqual(run.status, 64)
        XCTAssertTrue(run.stdout.isEmpty)
    }

    func testTrainIsReproducibleAndPredictDecomposes() throws {
        let basis = try basisFile()
        let data = try encode(dataset())
        let args = ["--basis", basis, "--stack", stack, "--members", "3", "--epochs", "3", "--lr", "0.01", "--seed", "4"]
        let a = try runTool("sve-train", args, stdin: data)
        XCTAssertEqual(a.status, 0, a.stderr)
        XCTAssertEqual(a.stderr, "")  // silent in pipelines
        let b = try runTool("sve-train", args, stdin: data)
        XCTAssertEqual(a.stdout, b.stdout, "same seed, same bytes")
        let c = try runTool("sve-train", args.dropLast() + ["5"], stdin: data)
        XCTAssertNotEqual(a.stdout, c.stdout)
        let model = try decode(a.stdout)
        XCTAssertEqual(model["blk.a.s"]!.shape, [3, 5])
        XCTAssertEqual(model["blk.a.U"]!.shape, [8, 5])
        XCTAssertEqual(model["head.weight"]!.shape, [3, 3, 5])
        XCTAssertEqual(model["temperature"]!.meta["sve.stack"], stack)
        let modelPath = dir.appendingPathComponent("model.tsr")
        try a.stdout.write(to: modelPath)

        let p = try runTool("sve-predict", ["--model", modelPath.path, "--pass", "labels", "--chunk", "40"], stdin: data)
        XCTAssertEqual(p.status, 0, p.stderr)
        let out = try decode(p.stdout)
        let probs = out["probs"]!.doubles(), member = out["member_probs"]!.doubles()
        let h = out["entropy"]!.doubles(), eh = out["expected_entropy"]!.doubles(), mi = out["mutual_info"]!.doubles()
        XCTAssertEqual(out["probs"]!.shape, [150, 3]); XCTAssertEqual(out["member_probs"]!.shape, [150, 3, 3])
        XCTAssertEqual(try out["labels"]!.int64s(), try dataset()[1].int64s())
        var correct = 0
        for n in 0..<150 {
            XCTAssertEqual(probs[n * 3 ..< n * 3 + 3].reduce(0, +), 1, accuracy: 1e-5)
            for k in 0..<3 {  // probs = mean of member probs
                let mean = (0..<3).map { member[(n * 3 + $0) * 3 + k] }.reduce(0, +) / 3
                XCTAssertEqual(probs[n * 3 + k], mean, accuracy: 1e-5)
            }
            XCTAssertEqual(mi[n], max(0, h[n] - eh[n]), accuracy: 1e-5)
            XCTAssertGreaterThanOrEqual(mi[n], 0)
            if argmax(probs[n * 3 ..< n * 3 + 3]) == n % 3 { correct += 1 }
        }
        XCTAssertGreaterThan(correct, 135)
        let pl = try runTool("sve-predict", ["--model", modelPath.path, "--average", "logits"], stdin: data)
        XCTAssertEqual(pl.status, 0, pl.stderr)
        XCTAssertNotEqual(try decode(pl.stdout)["probs"]!.floats(), out["probs"]!.floats())
    }

    func testDeepEnsembleAndSplitFile() throws {
        let basis = try basisFile()
        let split = try file("split.tsr", [Tensor(name: "split", shape: [150], int64s: (0..<150).map { Int64($0 % 5 == 0 ? 1 : $0 % 5 == 1 ? 2 : 0) })])
        let run = try runTool("sve-train", ["--basis", basis, "--stack", stack, "--members", "2", "--epochs", "2",
                                            "--method", "deep-ensemble", "--split", split], stdin: encode(dataset()))
        XCTAssertEqual(run.status, 0, run.stderr)
        let model = try decode(run.stdout)
        XCTAssertEqual(model["blk.a.weight"]!.shape, [2, 8, 5])
        XCTAssertEqual(model["blk.n.weight"]!.shape, [2, 5])
        XCTAssertNil(model["blk.a.U"])
    }

    func testTrainErrors() throws {
        let basis = try basisFile()
        func train(_ extra: [String], _ tensors: [Tensor], stack s: String? = nil) throws -> ToolRun {
            try runTool("sve-train", ["--basis", basis, "--stack", s ?? stack, "--epochs", "1"] + extra, stdin: encode(tensors))
        }
        var d = dataset()
        // Label out of range.
        var r = try train(["--classes", "2"], d)
        XCTAssertEqual(r.status, 65); XCTAssertTrue(r.stderr.contains("label 2 in row 2 is out of range [0, 2)"), r.stderr)
        d[1] = Tensor(name: "labels", shape: [150], int64s: (0..<150).map { $0 == 7 ? -1 : Int64($0 % 3) })
        r = try train([], d)
        XCTAssertEqual(r.status, 65); XCTAssertTrue(r.stderr.contains("label -1 in row 7"), r.stderr)
        // Missing tensor.
        r = try train([], [dataset()[0]])
        XCTAssertEqual(r.status, 65); XCTAssertTrue(r.stderr.contains("no tensor 'labels'"), r.stderr)
        // Shape mismatch: features of the wrong width for the stack; labels of the wrong length.
        r = try train([], [Tensor(name: "features", shape: [150, 4], floats: [Float](repeating: 0, count: 600)), dataset()[1]])
        XCTAssertEqual(r.status, 65); XCTAssertTrue(r.stderr.contains("takes 5 inputs but receives 4"), r.stderr)
        r = try train([], [dataset()[0], Tensor(name: "labels", shape: [149], int64s: [Int64](repeating: 0, count: 149))])
        XCTAssertEqual(r.status, 65); XCTAssertTrue(r.stderr.contains("shape [149]"), r.stderr)
        // A layer the basis does not have; a malformed stack; NaN features.
        r = try train([], dataset(), stack: "linear:blk.q")
        XCTAssertEqual(r.status, 65); XCTAssertTrue(r.stderr.contains("no layer 'blk.q'"), r.stderr)
        r = try train([], dataset(), stack: "residual(linear:blk.a")
        XCTAssertEqual(r.status, 64); XCTAssertTrue(r.stderr.contains("not closed"), r.stderr)
        var nan = dataset()
        var xs = nan[0].floats(); xs[12] = .nan
        nan[0] = Tensor(name: "features", shape: [150, 5], floats: xs)
        r = try train([], nan)
        XCTAssertEqual(r.status, 65); XCTAssertTrue(r.stderr.contains("row 2"), r.stderr)
        for run in [r] { XCTAssertEqual(run.stderr.split(separator: "\n").count, 1); XCTAssertTrue(run.stdout.isEmpty) }
        // A missing basis file.
        r = try runTool("sve-train", ["--basis", "/nonexistent.tsr", "--stack", stack], stdin: encode(dataset()))
        XCTAssertEqual(r.status, 66)
    }

    func testPredictErrors() throws {
        let basis = try basisFile()
        let t = try runTool("sve-train", ["--basis", basis, "--stack", stack, "--members", "2", "--epochs", "1"], stdin: encode(dataset()))
        XCTAssertEqual(t.status, 0, t.stderr)
        let model = dir.appendingPathComponent("m.tsr")
        try t.stdout.write(to: model)
        var r = try runTool("sve-predict", ["--model", model.path],
                            stdin: encode([Tensor(name: "features", shape: [3, 4], floats: [Float](repeating: 0, count: 12))]))
        XCTAssertEqual(r.status, 65); XCTAssertTrue(r.stderr.contains("takes 5 features"), r.stderr)
        r = try runTool("sve-predict", ["--model", basis], stdin: encode(dataset()))
        XCTAssertEqual(r.status, 65); XCTAssertTrue(r.stderr.contains("not an sve-train model"), r.stderr)
        r = try runTool("sve-predict", ["--model", dir.appendingPathComponent("none.tsr").path], stdin: encode(dataset()))
        XCTAssertEqual(r.status, 66)
        r = try runTool("sve-predict", ["--model", model.path], stdin: encode([dataset()[1]]))
        XCTAssertEqual(r.status, 65); XCTAssertTrue(r.stderr.contains("'features'"), r.stderr)
        // A truncated model is refused.
        let bytes = try Data(contentsOf: model)
        try bytes.prefix(bytes.count / 2).write(to: model)
        r = try runTool("sve-predict", ["--model", model.path], stdin: encode(dataset()))
        XCTAssertEqual(r.status, 65)
    }
}

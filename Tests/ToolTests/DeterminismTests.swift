import Foundation
import XCTest
import TestSupport
import TensorStream

/// The same input and seed give byte-identical output, for every program; results agree across
/// --threads values within 1e-4 (relative; BLAS may sum in another order with more threads), and
/// are byte-identical for the programs that cut their work at fixed places (README).
final class DeterminismTests: XCTestCase {
    func testSameInputSameBytesAndThreadsAgree() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try makeSideInputs(dir)
        let p = { (name: String) in dir.appendingPathComponent(name).path }
        let wave = { (n: Int, d: Int, phase: Double) in (0..<n * d).map { Float(sin(Double($0) * 0.37 + phase) + 0.1 * cos(Double($0 / d) * 1.3)) } }
        let corpus = Array(try Data(contentsOf: URL(fileURLWithPath: p("corpus.tsr"))))
        let probs: [Float] = (0..<300).flatMap { i -> [Float] in
            let a = Float(i % 7) + 1, b = Float(i % 5) + 1, c = Float(i % 3) + 1
            return [a / (a + b + c), b / (a + b + c), c / (a + b + c)]
        }
        let cases: [(String, [String], [UInt8])] = [
            ("tensor", ["cat"], try encodeStream([Tensor(name: "embedding", shape: [50, 4], floats: wave(50, 4, 0))])),
            ("emb-laplace", ["fit", "--batch-size", "16"],
             try encodeStream([Tensor(name: "query", shape: [256, 4], floats: wave(256, 4, 0)),
                               Tensor(name: "positive", shape: [256, 4], floats: wave(256, 4, 0.2))])),
            ("emb-laplace", ["apply", "--posterior", p("post.tsr"), "--normalize", "delta"],
             try encodeStream([Tensor(name: "embedding", shape: [1100, 4], floats: wave(1100, 4, 1))])),
            ("emb-fuse", ["-", p("corpus.tsr")], corpus),
            ("emb-sim", ["--corpus", p("corpus.tsr"), "--top-k", "3"], corpus),
            ("emb-sim", ["--matrix"], corpus),
            ("sve-decompose", ["--quiet"],
             try encodeStream([Tensor(name: "l.weight", shape: [40, 30], floats: wave(40, 30, 2)),
                               Tensor(name: "l.bias", shape: [40], floats: wave(40, 1, 3))])),
            ("sve-train", ["--basis", p("basis.tsr"), "--stack", "linear:l", "--members", "3", "--epochs", "2", "--seed", "7"],
             try encodeStream([Tensor(name: "features", shape: [60, 4], floats: wave(60, 4, 3)),
                               Tensor(name: "labels", shape: [60], int64s: (0..<60).map { Int64($0 % 3) })])),
            ("sve-predict", ["--model", p("model.tsr")],
             try encodeStream([Tensor(name: "features", shape: [600, 4], floats: wave(600, 4, 4))])),
            ("calib-metrics", ["--json", "--bootstrap", "50", "--seed", "3"],
             try encodeStream([Tensor(name: "probs", shape: [300, 3], floats: probs),
                               Tensor(name: "labels", shape: [300], int64s: (0..<300).map { Int64($0 % 3) })])),
        ]
        for (tool, args, input) in cases {
            let label = "\(tool) \(args.joined(separator: " "))"
            // tensor (I/O and zstd) has no --threads.
            let threaded = tool != "tensor"
            // Chunks, parts and shards cut at the same places whatever the threads: the same bytes.
            let sameBytes = ["emb-laplace fit", "emb-laplace apply", "emb-fuse", "emb-sim --corpus", "sve-predict", "calib-metrics"]
                .contains { label.hasPrefix($0) }
            let two = threaded ? ["--threads", "2"] : [], single = threaded ? ["--threads", "1"] : []
            let a = try runTool(tool, args + two, stdin: Data(input))
            let b = try runTool(tool, args + two, stdin: Data(input))
            let one = try runTool(tool, args + single, stdin: Data(input))
            XCTAssertEqual(a.status, 0, "\(label): \(a.stderr)")
            XCTAssertFalse(a.stdout.isEmpty, label)
            XCTAssertEqual(a.stdout, b.stdout, "\(label): two runs differ")
            if sameBytes { XCTAssertEqual(a.stdout, one.stdout, "\(label): --threads 1 and 2 give different bytes") }
            guard let ta = try? TensorStreamReader(ArraySource(Array(a.stdout))).readAll(),
                  let t1 = try? TensorStreamReader(ArraySource(Array(one.stdout))).readAll() else {
                XCTAssertEqual(a.stdout, one.stdout, "\(label): text output differs across --threads")
                continue
            }
            XCTAssertEqual(ta.map(\.name), t1.map(\.name), label)
            for (x, y) in zip(ta, t1) {
                XCTAssertEqual(x.shape, y.shape, "\(label) \(x.name)")
                if x.dtype.isFloat {
                    for (u, v) in zip(x.doubles(), y.doubles()) {
                        XCTAssertEqual(u, v, accuracy: 1e-4 * max(1, abs(u)), "\(label) \(x.name): --threads 1 and 2 disagree")
                    }
                } else {
                    XCTAssertEqual(x.data, y.data, "\(label) \(x.name)")
                }
            }
        }
    }
}

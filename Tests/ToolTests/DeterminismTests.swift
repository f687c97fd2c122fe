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

    /// calib-metrics reads blocks on one thread and scores them on another, which share each
    /// block's classwise sums by a split that follows their timings, in blocks of a record's
    /// rows when records are near the block size: whatever the records (of a block's size, of
    /// several blocks, a few straddled by every block), the threads and so the splits, the same
    /// rows give the same bytes.
    func testCalibMetricsGivesTheSameBytesWhateverItsRecordsAndThreads() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let n = 300_000, k = 10
        var x: UInt64 = 11
        func next() -> Double { x = x &* 6364136223846793005 &+ 1442695040888963407; return Double(x >> 11) / Double(1 << 53) }
        var probs = [Float](), labels = [Int64]()
        probs.reserveCapacity(n * k)
        for _ in 0..<n {
            let row = (0..<k).map { _ in pow(next(), 3) }
            let total = row.reduce(0, +)
            probs += row.map { Float($0 / total) }
            labels.append(Int64(next() * Double(k)))
        }
        try Data(try encodeStream([Tensor(name: "labels", shape: [n], int64s: labels)])).write(to: dir.appendingPathComponent("labels.tsr"))
        var outputs: [(String, Data)] = []
        for chunk in [4 << 20, 1 << 20, 333_333] {
            let sink = ArraySink()
            var options = WriterOptions(); options.chunkBytes = chunk
            let w = try TensorStreamWriter(sink: sink, options: options)
            try w.write(Tensor(name: "probs", shape: [n, k], floats: probs))
            try w.finish()
            for threads in ["1", "2"] {
                let r = try runTool("calib-metrics", ["--json", "--threads", threads, "--labels", dir.appendingPathComponent("labels.tsr").path],
                                    stdin: Data(sink.bytes))
                XCTAssertEqual(r.status, 0, r.stderr)
                outputs.append(("records of \(chunk) bytes, --threads \(threads)", r.stdout))
            }
        }
        for (what, out) in outputs.dropFirst() { XCTAssertEqual(out, outputs[0].1, "\(what) against \(outputs[0].0)") }
        // The same values as float64 take the path that adds every class's sums on one thread,
        // row by row: the same classwise ECE, to the last digit (NLL and netcal's ECE differ:
        // float64 has another eps).
        let f64 = try runTool("calib-metrics", ["--json", "--labels", dir.appendingPathComponent("labels.tsr").path],
                              stdin: Data(try encodeStream([Tensor(name: "probs", shape: [n, k], doubles: probs.map(Double.init))])))
        XCTAssertEqual(f64.status, 0, f64.stderr)
        func classwise(_ d: Data) -> Substring? {
            String(decoding: d, as: UTF8.self).split(separator: "\n").first { $0.contains("\"classwise_ece\"") }
        }
        XCTAssertNotNil(classwise(f64.stdout))
        XCTAssertEqual(classwise(outputs[0].1), classwise(f64.stdout))
    }
}

import Foundation
import TensorStream
import TestSupport
import XCTest

/// The three UEC executables end to end: streams in, streams out, errors as one line with
/// the right sysexits status.
final class UECToolTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws { dir = try temporaryDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func stream(_ tensors: [Tensor]) throws -> Data {
        let sink = ArraySink()
        let w = try TensorStreamWriter(sink: sink)
        for t in tensors { try w.write(t) }
        try w.finish()
        return Data(sink.bytes)
    }

    /// Writes interleaved row blocks of several tensors (as the tools do).
    func interleaved(_ tensors: [Tensor], block: Int) throws -> Data {
        let sink = ArraySink()
        let w = try TensorStreamWriter(sink: sink)
        var ids: [Int] = []
        for t in tensors { var i = t.info; i.rows = nil; ids.append(try w.add(i)) }
        let n = tensors[0].rows
        for s in stride(from: 0, to: n, by: block) {
            for (k, t) in tensors.enumerated() {
                let part = t.rows(s ..< min(s + block, n))
                try part.data.withUnsafeBytes { try w.write(ids[k], rows: part.rows, bytes: $0) }
            }
        }
        try w.finish()
        return Data(sink.bytes)
    }

    func file(_ name: String, _ data: Data) throws -> String {
        let url = dir.appendingPathComponent(name)
        try data.write(to: url)
        return url.path
    }

    func read(_ data: Data) throws -> [String: Tensor] {
        let r = try TensorStreamReader(ArraySource([UInt8](data)))
        return Dictionary(uniqueKeysWithValues: try r.readAll().map { ($0.name, $0) })
    }

    var rng = SystemRandomNumberGenerator()
    func randomMatrix(_ n: Int, _ d: Int, seed: Int) -> [Float] {
        // Deterministic, no dependency: a simple LCG mapped to [-1, 1].
        var s = UInt64(seed) &* 6364136223846793005 &+ 1442695040888963407
        return (0..<n * d).map { _ in
            s = s &* 6364136223846793005 &+ 1442695040888963407
            return Float(Double(s >> 11) / Double(1 << 53) * 2 - 1)
        }
    }

    func pairsFile(_ name: String, n: Int, d: Int, seed: Int) throws -> String {
        let q = randomMatrix(n, d, seed: seed)
        let noise = randomMatrix(n, d, seed: seed + 1)
        let p = zip(q, noise).map { $0 + 0.3 * $1 }
        return try file(name, stream([Tensor(name: "query", shape: [n, d], floats: q),
                                      Tensor(name: "positive", shape: [n, d], floats: p)]))
    }

    func fitPosterior(d: Int = 8) throws -> String {
        let train = try pairsFile("train.tsr", n: 64, d: d, seed: 1)
        let val = try pairsFile("val.tsr", n: 32, d: d, seed: 5)
        let post = dir.appendingPathComponent("post.tsr").path
        let r = try runTool("emb-laplace", ["fit", "--heldout", val, "--batch-size", "16", "-o", post, train])
        XCTAssertEqual(r.status, 0, r.stderr)
        return post
    }

    /// Pairs whose in-batch softmax is saturated (norms of ~20 in 16 dimensions, each positive a
    /// near copy of its query): the Fisher is all but zero, or zero. fit refuses to write a
    /// posterior whose variances would be infinite, and says why; with λ given it writes one.
    func testFitRefusesASaturatedFisher() throws {
        let n = 64, d = 16
        for (scale, noise, why) in [(Float(15), Float(0.05), "all but zero"), (Float(60), Float(0.01), "the Fisher is zero")] {
            let q = randomMatrix(n, d, seed: 11).map { $0 * scale }
            let p = zip(q, randomMatrix(n, d, seed: 12)).map { $0 + noise * $1 }
            let pairs = try file("sat\(scale).tsr", stream([Tensor(name: "query", shape: [n, d], floats: q),
                                                            Tensor(name: "positive", shape: [n, d], floats: p)]))
            let post = dir.appendingPathComponent("sat.tsr").path
            let r = try runTool("emb-laplace", ["fit", "--batch-size", "32", "-o", post, pairs])
            XCTAssertEqual(r.status, 65, "scale \(scale): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains(why) && r.stderr.contains("saturated") && r.stderr.contains("--prior-precision"), r.stderr)
            XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
            XCTAssertFalse(FileManager.default.fileExists(atPath: post))
            let given = try runTool("emb-laplace", ["fit", "--batch-size", "32", "--prior-precision", "1", "-o", post, pairs])
            XCTAssertEqual(given.status, 0, given.stderr)
            try FileManager.default.removeItem(atPath: post)
        }
        // A λ that small given for the zero Fisher: apply names the posterior as the cause, not the row.
        let post = dir.appendingPathComponent("tiny.tsr").path
        let fit = try runTool("emb-laplace", ["fit", "--prior-precision", "1e-45", "-o", post, dir.appendingPathComponent("sat60.0.tsr").path])
        XCTAssertEqual(fit.status, 0, fit.stderr)
        let r = try runTool("emb-laplace", ["apply", "--posterior", post],
                            stdin: try stream([Tensor(name: "embedding", shape: [2, 16], floats: Array(repeating: 1, count: 32))]))
        XCTAssertEqual(r.status, 65, r.stderr)
        XCTAssertTrue(r.stderr.contains("variance beyond float32 from the posterior") && r.stderr.contains("λ = 1e-45"), r.stderr)
    }

    func testFitWritesAPosteriorWithItsProvenance() throws {
        let post = try fitPosterior()
        let t = try read(Data(contentsOf: URL(fileURLWithPath: post)))
        XCTAssertEqual(t["var_weight"]?.shape, [8, 8])
        XCTAssertEqual(t["var_bias"]?.shape, [8])
        XCTAssertEqual(t["var_weight"]?.meta["pairs"], "64")
        XCTAssertEqual(t["var_weight"]?.meta["prior"], "fitted (MacKay)")
        XCTAssertEqual(t["variance_scale"]?.meta["source"], "maximum likelihood on held-out pairs")
        let lambda = t["prior_precision"]!.doubles()[0], c = t["variance_scale"]!.doubles()[0]
        XCTAssertTrue(lambda > 0 && c > 0)
        XCTAssertTrue(t["var_weight"]!.doubles().allSatisfy { $0 > 0 && $0 <= 1 / lambda + 1e-12 })
    }

    func testStreamingApplyEqualsWholeBatchApply() throws {
        let post = try fitPosterior()
        let n = 103
        let emb = try file("emb.tsr", stream([Tensor(name: "embedding", shape: [n, 8], floats: randomMatrix(n, 8, seed: 9))]))
        let whole = try runTool("emb-laplace", ["apply", "--posterior", post, "--normalize", "delta", emb])
        let blocks = try runTool("emb-laplace", ["apply", "--posterior", post, "--normalize", "delta", "--block-rows", "7", emb])
        XCTAssertEqual(whole.status, 0, whole.stderr)
        XCTAssertEqual(blocks.status, 0, blocks.stderr)
        let a = try read(whole.stdout), b = try read(blocks.stdout)
        XCTAssertEqual(a["mean"]?.shape, [n, 8])
        // Equal up to the rounding of differently blocked GEMMs.
        for name in ["mean", "var"] {
            let x = a[name]!.floats(), y = b[name]!.floats()
            XCTAssertEqual(x.count, y.count)
            let worst = zip(x, y).map { abs($0 - $1) / max(abs($1), 1e-30) }.max() ?? 0
            XCTAssertLessThan(worst, 1e-5, name)
        }
        XCTAssertTrue(a["var"]!.floats().allSatisfy { $0 >= 0 })
        // Unit means after --normalize.
        let m = a["mean"]!.floats()
        let norm = (0..<8).reduce(Float(0)) { $0 + m[$1] * m[$1] }
        XCTAssertEqual(norm, 1, accuracy: 1e-5)
    }

    /// With the identity adapter the means are the input rows: apply copies the input's records
    /// (large ones whose tensor id is the mean's) to its output still compressed, and compresses
    /// the others. Whatever it copies, its output reads as the same tensors, bit for bit, as
    /// with --level given (everything compressed again), at any --block-rows; the variances are
    /// computed in the same blocks either way.
    func testApplyCopiesTheInputRecordsOfTheMeansAndWritesTheSameTensors() throws {
        let d = 96
        let post = try fitPosterior(d: d)
        func segment(_ tensors: [Tensor], chunk: Int) throws -> [UInt8] {
            let sink = ArraySink()
            let w = try TensorStreamWriter(sink: sink, options: WriterOptions(chunkBytes: chunk))
            for t in tensors { try w.write(t) }
            try w.finish()
            return sink.bytes
        }
        let rows = [1500, 500, 600]
        let e = (0..<3).map { Tensor(name: "embedding", shape: [rows[$0], d], floats: randomMatrix(rows[$0], d, seed: 20 + $0)) }
        // Records of 800 and 700 rows (300 and 269 KB: copied); of 1000 rows but the tensor's id is
        // 1 (not copied); of 21 rows (8 KB: compressed again).
        let first = try segment([e[0]], chunk: 300 << 10)
        let bytes = first + (try segment([Tensor(name: "ids", dtype: .u8, shape: [500], data: [UInt8](repeating: 1, count: 500)), e[1]], chunk: 400 << 10))
            + (try segment([e[2]], chunk: 8 << 10))
        let input = try file("records.tsr", Data(bytes))
        var outputs: [String: [String: Tensor]] = [:]
        var written: [String: [UInt8]] = [:]
        for (name, extra) in [("copied", []), ("level", ["--level", "1"]), ("copied-300", ["--block-rows", "300"]),
                              ("level-300", ["--block-rows", "300", "--level", "1"]), ("no-shuffle", ["--no-shuffle"])] {
            let r = try runTool("emb-laplace", ["apply", "--posterior", post, "--trace", input] + extra)
            XCTAssertEqual(r.status, 0, r.stderr)
            outputs[name] = try read(r.stdout)
            written[name] = [UInt8](r.stdout)
        }
        let all = e.flatMap { $0.floats() }
        for (name, t) in outputs {
            XCTAssertEqual(t["mean"]?.floats().map(\.bitPattern), all.map(\.bitPattern), name)
            XCTAssertEqual(t["var"]?.shape, [2600, d], name)
        }
        for (a, b) in [("copied", "level"), ("copied-300", "level-300"), ("copied", "no-shuffle")] {
            XCTAssertEqual(outputs[a]!["var"]!.data, outputs[b]!["var"]!.data, "\(a) vs \(b)")
            XCTAssertEqual(outputs[a]!["trace"]!.data, outputs[b]!["trace"]!.data, "\(a) vs \(b)")
        }
        // The first segment's two records are in the output as they were in the input, unless
        // --level or --no-shuffle asked for the records to be written anew.
        let reader = try TensorStreamReader(ArraySource(first))
        var frames = 0
        while let event = try reader.next() {
            guard case .data = event, let c = reader.lastCompressedData else { continue }
            XCTAssertNotNil(written["copied"]!.firstRange(of: Array(c.frame)), "record \(frames) was not copied")
            XCTAssertNil(written["level"]!.firstRange(of: Array(c.frame)), "record \(frames) copied despite --level")
            XCTAssertNil(written["no-shuffle"]!.firstRange(of: Array(c.frame)), "record \(frames) copied despite --no-shuffle")
            frames += 1
        }
        XCTAssertEqual(frames, 2)
        // A value that is not finite in a copied record is refused, and its row named.
        var bad = e[0].floats()
        bad[1234 * d + 5] = .nan
        let badInput = try file("bad.tsr", Data(try segment([Tensor(name: "embedding", shape: [1500, d], floats: bad)], chunk: 300 << 10)))
        // ...and in a record written anew, in any block (the row in the stream, not in its block).
        for extra in [[], ["--level", "1"], ["--block-rows", "1000"], ["--block-rows", "1000", "--level", "1"]] {
            let r = try runTool("emb-laplace", ["apply", "--posterior", post, badInput] + extra)
            XCTAssertEqual(r.status, 65, "\(extra)")
            XCTAssertTrue(r.stderr.contains("holds nan at row 1234"), "\(extra): \(r.stderr)")
        }
        // emb-laplace fit names the pair's row in the stream too, past its first block of pairs.
        var q = randomMatrix(300, d, seed: 3)
        q[270 * d] = .infinity
        let pairs = try file("badpairs.tsr", stream([Tensor(name: "query", shape: [300, d], floats: q),
                                                     Tensor(name: "positive", shape: [300, d], floats: randomMatrix(300, d, seed: 4))]))
        let fit = try runTool("emb-laplace", ["fit", "--batch-size", "16", "--prior-precision", "1", pairs])
        XCTAssertEqual(fit.status, 65)
        XCTAssertTrue(fit.stderr.contains("holds inf at row 270"), fit.stderr)
    }

    func testTopKOverCorpusBlocksEqualsFullMatrix() throws {
        let n = 50, m = 230, d = 6
        let qm = randomMatrix(n, d, seed: 11), qv = randomMatrix(n, d, seed: 12).map { abs($0) * 0.1 }
        var cm = randomMatrix(m, d, seed: 13)
        let cv = randomMatrix(m, d, seed: 14).map { abs($0) * 0.1 }
        for k in 0..<d { cm[100 * d + k] = cm[3 * d + k] }  // a duplicate row: ties
        var cvt = cv
        for k in 0..<d { cvt[100 * d + k] = cv[3 * d + k] }
        let queries = try interleaved([Tensor(name: "mean", shape: [n, d], floats: qm), Tensor(name: "var", shape: [n, d], floats: qv)], block: 9)
        let corpus = try file("corpus.tsr", interleaved([Tensor(name: "mean", shape: [m, d], floats: cm),
                                                        Tensor(name: "var", shape: [m, d], floats: cvt)], block: 17))
        let full = try runTool("emb-sim", ["--matrix", "--corpus", corpus, "--beta", "0.5"], stdin: queries)
        XCTAssertEqual(full.status, 0, full.stderr)
        let s = try read(full.stdout)["scores"]!
        XCTAssertEqual(s.shape, [n, m])
        let sf = s.floats()
        let top = try runTool("emb-sim", ["--corpus", corpus, "--top-k", "7", "--beta", "0.5",
                                          "--query-block", "13", "--corpus-block", "19"], stdin: queries)
        XCTAssertEqual(top.status, 0, top.stderr)
        let t = try read(top.stdout)
        let idx = try t["indices"]!.int64s(), sc = t["scores"]!.floats()
        XCTAssertEqual(t["indices"]!.shape, [n, 7])
        for q in 0..<n {
            let want = (0..<m).sorted { (sf[q * m + $0], -$0) > (sf[q * m + $1], -$1) }.prefix(7)
            XCTAssertEqual(Array(idx[q * 7 ..< q * 7 + 7]), want.map { Int64($0) }, "query \(q)")
            for (j, c) in want.enumerated() { XCTAssertEqual(sc[q * 7 + j], sf[q * m + c], accuracy: 1e-6) }
        }
    }

    func testPairedAndPlainCosineWithoutVariance() throws {
        let n = 5, d = 3
        let a = randomMatrix(n, d, seed: 21), b = randomMatrix(n, d, seed: 22)
        let bf = try file("b.tsr", stream([Tensor(name: "embedding", shape: [n, d], floats: b)]))
        let r = try runTool("emb-sim", ["--paired", bf], stdin: try stream([Tensor(name: "embedding", shape: [n, d], floats: a)]))
        XCTAssertEqual(r.status, 0, r.stderr)
        let s = try read(r.stdout)["scores"]!
        XCTAssertEqual(s.shape, [n])
        XCTAssertEqual(s.meta["similarity"], "cosine")
        for i in 0..<n {
            let x = a[i * d ..< i * d + d], y = b[i * d ..< i * d + d]
            let dot = zip(x, y).reduce(Float(0)) { $0 + $1.0 * $1.1 }
            let nx = x.reduce(Float(0)) { $0 + $1 * $1 }.squareRoot(), ny = y.reduce(Float(0)) { $0 + $1 * $1 }.squareRoot()
            XCTAssertEqual(s.floats()[i], dot / (nx * ny), accuracy: 1e-5)
        }
    }

    func testFuseWritesWeightsAndRefusesMismatches() throws {
        let n = 10, d = 4
        func prob(_ name: String, rows: Int, dim: Int, v: Float) throws -> String {
            try file(name, interleaved([Tensor(name: "mean", shape: [rows, dim], floats: randomMatrix(rows, dim, seed: rows + dim)),
                                        Tensor(name: "var", shape: [rows, dim], floats: Array(repeating: v, count: rows * dim))], block: 3))
        }
        let a = try prob("a.tsr", rows: n, dim: d, v: 0.1), b = try prob("b.tsr", rows: n, dim: d, v: 0.5)
        let r = try runTool("emb-fuse", [a, b])
        XCTAssertEqual(r.status, 0, r.stderr)
        let t = try read(r.stdout)
        let w = t["weights"]!.floats()
        XCTAssertEqual(t["weights"]!.shape, [n, 2])
        // softmax(−[0.4, 2.0]) for every row.
        let e0 = exp(-0.4), e1 = exp(-2.0)
        XCTAssertEqual(Double(w[0]), e0 / (e0 + e1), accuracy: 1e-5)
        XCTAssertEqual(t["var"]!.floats()[0], Float(pow(e0 / (e0 + e1), 2) * 0.1 + pow(e1 / (e0 + e1), 2) * 0.5), accuracy: 1e-5)

        let wrongD = try prob("c.tsr", rows: n, dim: d + 1, v: 0.1)
        let r2 = try runTool("emb-fuse", [a, wrongD])
        XCTAssertEqual(r2.status, 65)
        XCTAssertTrue(r2.stderr.hasPrefix("emb-fuse: dimensions differ") && r2.stderr.contains("c.tsr"), r2.stderr)
        XCTAssertEqual(r2.stdout.count, 0)

        let short = try prob("short.tsr", rows: n - 3, dim: d, v: 0.1)
        let r3 = try runTool("emb-fuse", [a, short])
        XCTAssertEqual(r3.status, 65)
        XCTAssertTrue(r3.stderr.contains("row counts differ") && r3.stderr.contains("short.tsr has 7"), r3.stderr)
        XCTAssertEqual(r3.stderr.split(separator: "\n").count, 1)
    }

    /// Every row of every block, the short last one too, against the formula computed here: the
    /// blocks are read into the arrays of the blocks before (ProbReader.recycle), and the
    /// outputs written whole without zeros first.
    func testFuseOverManyBlocksMatchesTheFormulaRowByRow() throws {
        let n = 23, d = 5, k = 3
        var means: [[Float]] = [], vars: [[Float]] = [], files: [String] = []
        for m in 0..<k {
            means.append(randomMatrix(n, d, seed: 40 + m))
            vars.append(randomMatrix(n, d, seed: 50 + m).map { 0.05 + abs($0) })
            files.append(try file("m\(m).tsr", interleaved([Tensor(name: "mean", shape: [n, d], floats: means[m]),
                                                            Tensor(name: "var", shape: [n, d], floats: vars[m])], block: 4)))
        }
        for block in ["3", "1", "4096"] {
            let r = try runTool("emb-fuse", ["--block-rows", block, "--temperature", "0.7"] + files)
            XCTAssertEqual(r.status, 0, r.stderr)
            let t = try read(r.stdout)
            let mean = t["mean"]!.floats(), variance = t["var"]!.floats(), weights = t["weights"]!.floats()
            for row in 0..<n {
                let scores = (0..<k).map { m in -(0..<d).reduce(0.0) { $0 + Double(vars[m][row * d + $1]) } / 0.7 }
                let top = scores.max()!, e = scores.map { exp($0 - top) }, pi = e.map { $0 / e.reduce(0, +) }
                for m in 0..<k { XCTAssertEqual(Double(weights[row * k + m]), pi[m], accuracy: 1e-6, "block \(block) row \(row)") }
                for j in 0..<d {
                    let mu = (0..<k).reduce(0.0) { $0 + pi[$1] * Double(means[$1][row * d + j]) }
                    let v = (0..<k).reduce(0.0) { $0 + pi[$1] * pi[$1] * Double(vars[$1][row * d + j]) }
                    XCTAssertEqual(Double(mean[row * d + j]), mu, accuracy: 1e-5, "block \(block) row \(row)")
                    XCTAssertEqual(Double(variance[row * d + j]), v, accuracy: 1e-5, "block \(block) row \(row)")
                }
            }
        }
    }

    func testErrorsAreOneLineWithSysexitsStatus() throws {
        let post = try fitPosterior()
        let cases: [(String, [String], Data, Int32, String)] = [
            ("emb-sim", ["--top-k", "3"], Data(), 64, "needs --corpus"),
            ("emb-sim", ["--matrix", "--paired", "x"], Data(), 64, "choose one mode"),
            ("emb-sim", ["--matrix", "--beta", "-1"], Data(), 64, "--beta"),
            ("emb-fuse", [], Data(), 64, "Missing expected argument"),
            ("emb-fuse", ["--weights", "0.5", "a", "b"], Data(), 64, "1 numbers for 2 inputs"),
            ("emb-laplace", ["fit", "--batch-size", "1"], Data(), 64, "--batch-size"),
            ("emb-laplace", ["apply", "--posterior", dir.appendingPathComponent("missing.tsr").path], try stream([Tensor(name: "embedding", shape: [1, 8], floats: Array(repeating: 1, count: 8))]), 66, "missing.tsr"),
            ("emb-laplace", ["apply", "--posterior", post], try stream([Tensor(name: "embedding", shape: [2, 5], floats: Array(repeating: 1, count: 10))]), 65, "expects 8"),
            ("emb-laplace", ["apply", "--posterior", post], try stream([Tensor(name: "other", shape: [2, 8], floats: Array(repeating: 1, count: 16))]), 65, "no tensor 'embedding'"),
            ("emb-laplace", ["fit"], try stream([Tensor(name: "query", shape: [2, 3], floats: [1, 2, 3, 4, 5, 6]),
                                                  Tensor(name: "positive", shape: [2, 4], floats: Array(repeating: 1, count: 8))]), 65, "'query' is"),
            ("emb-sim", ["--matrix"], try stream([Tensor(name: "embedding", shape: [2, 2], floats: [1, .nan, 0, 1])]), 65, "nan"),
            ("emb-sim", ["--matrix"], Data([1, 2, 3]), 65, "not a tensor stream"),
        ]
        for (tool, args, input, status, needle) in cases {
            let r = try runTool(tool, args, stdin: input)
            XCTAssertEqual(r.status, status, "\(tool) \(args): \(r.stderr)")
            XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, "\(tool) \(args): \(r.stderr)")
            XCTAssertTrue(r.stderr.hasPrefix("\(tool): "), r.stderr)
            XCTAssertTrue(r.stderr.contains(needle), "\(tool) \(args): \(r.stderr)")
            XCTAssertEqual(r.stdout.count, 0)
        }
    }
}

extension UECToolTests {
    /// The real-last-layer path through the CLI: the posterior variances of the numpy fixture
    /// (brute-force per-sample Fisher, scripts/fixtures/uec.py) with its prior precision.
    func testFitWithARealLayerMatchesTheNumpyFixture() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../UECTests/Fixtures/uec_layer.json")
        let obj = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: [String: Any]]
        func a(_ k: String) -> (shape: [Int], data: [Double]) {
            ((obj[k]!["shape"] as! [NSNumber]).map(\.intValue), (obj[k]!["data"] as! [NSNumber]).map(\.doubleValue))
        }
        let w = a("W"), b = a("b"), q = a("query"), p = a("positive"), fw = a("fisher_W"), fb = a("fisher_b")
        let lam = a("lam").data[0], batch = Int(a("batch").data[0]), tau = a("tau").data[0]
        let layer = try file("layer.tsr", stream([Tensor(name: "dense.weight", shape: w.shape, doubles: w.data),
                                                  Tensor(name: "dense.bias", shape: b.shape, doubles: b.data)]))
        let pairs = try stream([Tensor(name: "query", shape: q.shape, doubles: q.data),
                                Tensor(name: "positive", shape: p.shape, doubles: p.data)])
        let r = try runTool("emb-laplace", ["fit", "--layer", layer, "--weight-name", "dense.weight", "--bias-name", "dense.bias",
                                            "--batch-size", "\(batch)", "--temperature", "\(tau)", "--prior-precision", "\(lam)"],
                            stdin: pairs)
        XCTAssertEqual(r.status, 0, r.stderr)
        let t = try read(r.stdout)
        XCTAssertEqual(t["var_weight"]?.meta["adapter"], "layer")
        let vw = t["var_weight"]!.doubles(), vb = t["var_bias"]!.doubles()
        XCTAssertEqual(vw.count, fw.data.count)
        for i in vw.indices { XCTAssertEqual(vw[i], 1 / (fw.data[i] + lam), accuracy: 1e-9 * vw[i]) }
        for i in vb.indices { XCTAssertEqual(vb[i], 1 / (fb.data[i] + lam), accuracy: 1e-9 * vb[i]) }
        XCTAssertEqual(t["weight"]!.doubles(), w.data)
        // apply: the mean is W h + b.
        let x = a("x")
        let ap = try runTool("emb-laplace", ["apply", "--posterior", try file("post.tsr", r.stdout), "--variance-scale", "\(a("scale").data[0])"],
                             stdin: try stream([Tensor(name: "embedding", shape: x.shape, doubles: x.data)]))
        XCTAssertEqual(ap.status, 0, ap.stderr)
        let out = try read(ap.stdout)
        let mean = out["mean"]!.floats(), want = a("mean").data
        for i in want.indices { XCTAssertEqual(Double(mean[i]), want[i], accuracy: 1e-5) }
    }
}

import Foundation
import TensorStream
import TestSupport
import XCTest

/// emb-sim's per-query confidence ('margin', 'top1_sigma') against a brute-force computation.
extension UECToolTests {
    /// Unit-norm rows (so that --normalize none leaves them as the brute force sees them).
    func unitRows(_ n: Int, _ d: Int, seed: Int) -> [Float] {
        var x = randomMatrix(n, d, seed: seed)
        for r in 0..<n {
            let norm = (0..<d).reduce(Float(0)) { $0 + x[r * d + $1] * x[r * d + $1] }.squareRoot()
            for k in 0..<d { x[r * d + k] /= norm }
        }
        return x
    }

    /// Per query: every corpus row's (ŝ, σ_s²) in Float64, sorted best first (ties to the lower row).
    func bruteForce(_ qm: [Float], _ qv: [Float], _ cm: [Float], _ cv: [Float], n: Int, m: Int, d: Int,
                    beta: Double) -> [[(s: Double, sigma2: Double, i: Int)]] {
        (0..<n).map { q in
            (0..<m).map { c -> (s: Double, sigma2: Double, i: Int) in
                var mu = 0.0, s2 = 0.0
                for k in 0..<d {
                    let a = Double(qm[q * d + k]), b = Double(cm[c * d + k])
                    let va = Double(qv[q * d + k]), vb = Double(cv[c * d + k])
                    mu += a * b
                    s2 += a * a * vb + va * b * b + va * vb
                }
                return (mu / (1 + beta * Double.pi / 8 * s2).squareRoot(), s2, c)
            }.sorted { ($0.s, -$0.i) > ($1.s, -$1.i) }
        }
    }

    func testTopKConfidenceMatchesBruteForce() throws {
        let n = 23, m = 61, d = 5, k = 4
        let qm = unitRows(n, d, seed: 31), qv = randomMatrix(n, d, seed: 32).map { abs($0) * 0.2 }
        let cm = unitRows(m, d, seed: 33), cv = randomMatrix(m, d, seed: 34).map { abs($0) * 0.2 }
        let queries = try interleaved([Tensor(name: "mean", shape: [n, d], floats: qm), Tensor(name: "var", shape: [n, d], floats: qv)], block: 6)
        let corpus = try file("corpus.tsr", interleaved([Tensor(name: "mean", shape: [m, d], floats: cm),
                                                        Tensor(name: "var", shape: [m, d], floats: cv)], block: 11))
        let r = try runTool("emb-sim", ["--corpus", corpus, "--top-k", "\(k)", "--beta", "0.7", "--normalize", "none",
                                        "--query-block", "5", "--corpus-block", "9", "--threads", "3"], stdin: queries)
        XCTAssertEqual(r.status, 0, r.stderr)
        let t = try read(r.stdout)
        XCTAssertEqual(t["margin"]?.shape, [n])
        XCTAssertEqual(t["top1_sigma"]?.shape, [n])
        let margin = t["margin"]!.floats(), sigma = t["top1_sigma"]!.floats(), idx = try t["indices"]!.int64s()
        let want = bruteForce(qm, qv, cm, cv, n: n, m: m, d: d, beta: 0.7)
        for q in 0..<n {
            XCTAssertEqual(idx[q * k], Int64(want[q][0].i), "query \(q)")
            XCTAssertEqual(Double(margin[q]), want[q][0].s - want[q][1].s, accuracy: 2e-6, "query \(q)")
            XCTAssertEqual(Double(sigma[q]), want[q][0].sigma2.squareRoot(), accuracy: 2e-6, "query \(q)")
        }
        // The margin is not a constant: the test would not see a wrong column otherwise.
        XCTAssertGreaterThan(Set(margin).count, n / 2)

        // Sharded corpus, merged: the same confidence as the single run (the merged top-1 σ is taken
        // from the shard that holds the top hit).
        let a = try file("a.tsr", interleaved([Tensor(name: "mean", shape: [30, d], floats: Array(cm[0 ..< 30 * d])),
                                               Tensor(name: "var", shape: [30, d], floats: Array(cv[0 ..< 30 * d]))], block: 7))
        let b = try file("b.tsr", interleaved([Tensor(name: "mean", shape: [m - 30, d], floats: Array(cm[30 * d ..< m * d])),
                                               Tensor(name: "var", shape: [m - 30, d], floats: Array(cv[30 * d ..< m * d]))], block: 7))
        var parts: [String] = []
        for (name, shard, offset) in [("ha.tsr", a, 0), ("hb.tsr", b, 30)] {
            let h = try runTool("emb-sim", ["--corpus", shard, "--top-k", "\(k)", "--beta", "0.7", "--normalize", "none",
                                            "--corpus-offset", "\(offset)"], stdin: queries)
            XCTAssertEqual(h.status, 0, h.stderr)
            parts.append(try file(name, h.stdout))
        }
        let merged = try runTool("emb-sim", ["--merge"] + parts + ["--top-k", "\(k)"])
        XCTAssertEqual(merged.status, 0, merged.stderr)
        let mt = try read(merged.stdout)
        XCTAssertEqual(try mt["indices"]!.int64s(), idx)
        // Equal up to the rounding of differently blocked GEMMs.
        for (got, want) in [(mt["margin"]!.floats(), margin), (mt["top1_sigma"]!.floats(), sigma)] {
            XCTAssertEqual(got.count, n)
            for q in 0..<n { XCTAssertEqual(got[q], want[q], accuracy: 1e-6) }
        }
        XCTAssertEqual(mt["top1_sigma"]!.meta["beta"], "0.7")
    }

    func testConfidenceOnlyWhereItIsDefined() throws {
        let n = 6, m = 9, d = 4
        let q = try stream([Tensor(name: "embedding", shape: [n, d], floats: randomMatrix(n, d, seed: 41))])
        let corpus = try file("c.tsr", stream([Tensor(name: "embedding", shape: [m, d], floats: randomMatrix(m, d, seed: 42))]))
        // Plain embeddings: a margin, no σ; it equals the difference of the first two scores.
        let plain = try read(try runTool("emb-sim", ["--corpus", corpus, "--top-k", "3"], stdin: q).stdout)
        XCTAssertNil(plain["top1_sigma"])
        let s = plain["scores"]!.floats()
        XCTAssertEqual(plain["margin"]!.floats(), (0..<n).map { s[$0 * 3] - s[$0 * 3 + 1] })
        // k = 1: no margin; --no-confidence: neither.
        XCTAssertNil(try read(try runTool("emb-sim", ["--corpus", corpus, "--top-k", "1"], stdin: q).stdout)["margin"])
        let off = try read(try runTool("emb-sim", ["--corpus", corpus, "--top-k", "3", "--no-confidence"], stdin: q).stdout)
        XCTAssertNil(off["margin"])
        XCTAssertNotNil(off["indices"])
        // A one-row corpus: one hit per query, no margin to take.
        let one = try file("one.tsr", stream([Tensor(name: "embedding", shape: [1, d], floats: randomMatrix(1, d, seed: 43))]))
        XCTAssertNil(try read(try runTool("emb-sim", ["--corpus", one, "--top-k", "3"], stdin: q).stdout)["margin"])
    }
}

/// emb-laplace and emb-fuse say when the uncertainty is not informative.
extension UECToolTests {
    func testFitAndApplyReportHowInformativeThePosteriorIs() throws {
        let train = try pairsFile("train.tsr", n: 64, d: 8, seed: 1)
        let post = dir.appendingPathComponent("post.tsr").path
        let fit = try runTool("emb-laplace", ["fit", "-v", "--batch-size", "16", "-o", post, train])
        XCTAssertEqual(fit.status, 0, fit.stderr)
        XCTAssertTrue(fit.stderr.contains("of 72 parameters") && fit.stderr.contains("of Fisher entries below λ"), fit.stderr)
        let meta = try read(Data(contentsOf: URL(fileURLWithPath: post)))["var_weight"]!.meta
        let gamma = Double(meta["gamma"] ?? "")!, share = Double(meta["fisher_below_prior"] ?? "")!
        XCTAssertEqual(meta["parameters"], "72")                 // 8×8 weights and 8 biases
        XCTAssertTrue(gamma > 0 && gamma < 72 && share >= 0 && share <= 1, "\(gamma) \(share)")

        // The identity adapter's variance sees e∘e only: flipping signs of coordinates changes nothing.
        let n = 40, d = 8
        let e = randomMatrix(n, d, seed: 51)
        let flipped = e.enumerated().map { $0.offset % 3 == 0 ? -$0.element : $0.element }
        var vars: [[Float]] = []
        var stderr = ""
        for x in [e, flipped] {
            let r = try runTool("emb-laplace", ["apply", "-v", "--trace", "--posterior", post],
                                stdin: try stream([Tensor(name: "embedding", shape: [n, d], floats: x)]))
            XCTAssertEqual(r.status, 0, r.stderr)
            let out = try read(r.stdout)
            vars.append(out["var"]!.floats())
            // --trace: Σ_d var_d per row.
            let tr = out["trace"]!.floats()
            XCTAssertEqual(out["trace"]!.shape, [n])
            for i in 0..<n { XCTAssertEqual(tr[i], vars.last![i * d ..< (i + 1) * d].reduce(0, +), accuracy: 1e-5 * tr[i]) }
            stderr = r.stderr
        }
        XCTAssertEqual(vars[0], vars[1])
        // -v: the Spearman correlation of the trace with 1/‖e‖², computed here by brute force.
        let trace = (0..<n).map { r in (0..<d).reduce(0.0) { $0 + Double(vars[0][r * d + $1]) } }
        let inv = (0..<n).map { r in 1 / (0..<d).reduce(0.0) { $0 + Double(e[r * d + $1]) * Double(e[r * d + $1]) } }
        func ranks(_ x: [Double]) -> [Double] {         // no ties in these data
            var out = [Double](repeating: 0, count: x.count)
            for (rank, i) in x.indices.sorted(by: { x[$0] < x[$1] }).enumerated() { out[i] = Double(rank + 1) }
            return out
        }
        let ra = ranks(trace), rb = ranks(inv)
        let dsq = zip(ra, rb).reduce(0.0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
        let rho = 1 - 6 * dsq / Double(n * (n * n - 1))
        let printed = stderr.components(separatedBy: "with 1/‖e‖²: ").last!.prefix(while: { $0 != " " && $0 != "\n" })
        XCTAssertEqual(Double(printed)!, rho, accuracy: 1e-4, stderr)
    }

    func testFuseWarnsOnceWhenTheWeightsBarelyVaryPerRow() throws {
        let n = 30, d = 4
        func prob(_ name: String, _ v: (Int) -> Float) throws -> String {
            try file(name, interleaved([Tensor(name: "mean", shape: [n, d], floats: randomMatrix(n, d, seed: 61)),
                                        Tensor(name: "var", shape: [n, d], floats: (0..<n * d).map { v($0 / d) })], block: 7))
        }
        // Variances that scale together: the same weights for every row.
        let a = try prob("a.tsr") { _ in 0.01 }, b = try prob("b.tsr") { _ in 0.02 }
        let flat = try runTool("emb-fuse", [a, b, "--block-rows", "8"])
        XCTAssertEqual(flat.status, 0, flat.stderr)
        XCTAssertEqual(flat.stderr.components(separatedBy: "barely vary per row").count, 2, flat.stderr)
        XCTAssertTrue(flat.stderr.hasPrefix("emb-fuse: warning: ") && flat.stderr.contains("over 30 rows"), flat.stderr)
        let meta = try read(flat.stdout)["weights"]!.meta
        XCTAssertTrue(meta["varies_per_row"]?.hasPrefix("no:") ?? false, "\(meta)")
        XCTAssertEqual(meta["row_std_rows"], "8")                // the first block
        XCTAssertEqual(try runTool("emb-fuse", ["-q", a, b]).stderr, "")
        XCTAssertEqual(try runTool("emb-fuse", ["--weights", "uniform", a, b]).stderr, "")
        // Variances that differ by row: weights that move, no warning.
        let c = try prob("c.tsr") { r in r % 2 == 0 ? 0.01 : 0.5 }
        let varied = try runTool("emb-fuse", [a, c])
        XCTAssertEqual(varied.stderr, "")
        XCTAssertTrue(try read(varied.stdout)["weights"]!.meta["varies_per_row"]?.hasPrefix("yes") ?? false)
    }
}

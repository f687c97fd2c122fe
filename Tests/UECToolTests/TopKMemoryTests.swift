import Foundation
import TensorStream
import TestSupport
import XCTest

/// emb-sim --top-k's memory plan: a corpus kept decoded between blocks of queries, or decoded again
/// for each block, one block of queries or many, must give byte-identical results.
extension UECToolTests {
    func topKInputs(n: Int, m: Int, d: Int) throws -> (queries: Data, corpus: String) {
        let qm = randomMatrix(n, d, seed: 31), qv = randomMatrix(n, d, seed: 32).map { abs($0) * 0.05 }
        var cm = randomMatrix(m, d, seed: 33)
        var cv = randomMatrix(m, d, seed: 34).map { abs($0) * 0.05 }
        // Duplicate rows far apart (ties across corpus blocks) and rounded values (many ties).
        for k in 0..<d { cm[(m - 1) * d + k] = cm[2 * d + k]; cv[(m - 1) * d + k] = cv[2 * d + k] }
        for i in stride(from: 0, to: m * d, by: 7) { cm[i] = (cm[i] * 4).rounded() / 4 }
        let queries = try interleaved([Tensor(name: "mean", shape: [n, d], floats: qm), Tensor(name: "var", shape: [n, d], floats: qv)], block: 11)
        let corpus = try file("corpus.tsr", interleaved([Tensor(name: "mean", shape: [m, d], floats: cm),
                                                        Tensor(name: "var", shape: [m, d], floats: cv)], block: 23))
        return (queries, corpus)
    }

    func testTopKCorpusKeptOrDecodedAgainGivesIdenticalResults() throws {
        // 40000 × 8 floats: more than --memory 1M holds.
        let (queries, corpus) = try topKInputs(n: 40, m: 40000, d: 8)
        for beta in ["0", "0.7"] {
            let base = ["--corpus", corpus, "--top-k", "6", "--beta", beta, "--corpus-block", "37", "-v"]
            // The reference: one block of queries (the corpus is decoded once, nothing kept).
            let one = try runTool("emb-sim", base + ["--query-block", "41"], stdin: queries)
            XCTAssertEqual(one.status, 0, one.stderr)
            XCTAssertTrue(one.stderr.contains("is decoded once (one block of queries)"), one.stderr)
            let kept = try runTool("emb-sim", base + ["--query-block", "7", "--memory", "1G"], stdin: queries)
            XCTAssertEqual(kept.status, 0, kept.stderr)
            XCTAssertTrue(kept.stderr.contains("is kept in memory"), kept.stderr)
            let again = try runTool("emb-sim", base + ["--query-block", "7", "--memory", "1M"], stdin: queries)
            XCTAssertEqual(again.status, 0, again.stderr)
            XCTAssertTrue(again.stderr.contains("decoded again for each block of queries"), again.stderr)
            let auto = try runTool("emb-sim", base + ["--memory", "5%"], stdin: queries)
            XCTAssertEqual(auto.status, 0, auto.stderr)
            XCTAssertTrue(auto.stderr.contains("one block of queries"), auto.stderr)
            let t = try read(one.stdout)
            // Bit for bit where the GEMMs have the same shapes (tiles of --query-block rows, or
            // 1024 by default; corpus blocks of --corpus-block rows), whatever is kept; else equal
            // indices and scores within float rounding.
            for (run, ref, exact, what) in [(kept, again, true, "corpus kept / decoded again"), (auto, one, true, "automatic blocks"),
                                            (again, one, false, "blocks of 7 / one block")] {
                let u = try read(run.stdout), v = try read(ref.stdout)
                XCTAssertEqual(Set(u.keys), Set(v.keys), what)
                XCTAssertEqual(try u["indices"]!.int64s(), try v["indices"]!.int64s(), "β \(beta): \(what)")
                for name in ["scores", "margin", "top1_sigma"] where v[name] != nil {
                    let a = u[name]!.floats(), b = v[name]!.floats()
                    if exact { XCTAssertEqual(a.map(\.bitPattern), b.map(\.bitPattern), "β \(beta): \(what): \(name)") }
                    else { for (x, y) in zip(a, b) { XCTAssertEqual(x, y, accuracy: 1e-5, "β \(beta): \(what): \(name)") } }
                }
            }
            XCTAssertEqual(t["indices"]!.shape, [40, 6])
            if beta != "0" { XCTAssertNotNil(t["top1_sigma"]) }
        }
    }

    func testMemoryOptionIsValidated() throws {
        let (queries, corpus) = try topKInputs(n: 3, m: 10, d: 4)
        for bad in ["0", "12", "1X", "101%", "G", "0.5K"] {
            let r = try runTool("emb-sim", ["--corpus", corpus, "--top-k", "2", "--memory", bad], stdin: queries)
            XCTAssertEqual(r.status, 64, "--memory \(bad): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains("--memory"), r.stderr)
        }
    }
}

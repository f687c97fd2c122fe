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

    func testASmallBudgetStillTakesBlocksOfManyQueries() throws {
        // --memory 1M is less than one tile's score buffers: the automatic blocks were of 1 query.
        let (queries, corpus) = try topKInputs(n: 600, m: 3000, d: 8)
        let base = ["--corpus", corpus, "--top-k", "5", "-v"]
        let small = try runTool("emb-sim", base + ["--memory", "1M"], stdin: queries)
        XCTAssertEqual(small.status, 0, small.stderr)
        XCTAssertTrue(small.stderr.contains("blocks of up to 256 queries"), small.stderr)
        // And it says that it holds more than the budget (one tile's score buffers: 32 MB).
        XCTAssertTrue(small.stderr.contains("warning: the memory budget (1 MB) is less than the least this search holds"), small.stderr)
        let one = try runTool("emb-sim", base + ["--query-block", "600"], stdin: queries)
        XCTAssertEqual(one.status, 0, one.stderr)
        XCTAssertFalse(one.stderr.contains("warning"), one.stderr)
        try assertSameTopK(small, one)
    }

    /// Two top-k runs over the same inputs found the same rows, with scores equal within float
    /// rounding (blocks of other shapes sum in another order).
    func assertSameTopK(_ a: ToolRun, _ b: ToolRun, file: StaticString = #filePath, line: UInt = #line) throws {
        let u = try read(a.stdout), v = try read(b.stdout)
        XCTAssertEqual(try u["indices"]!.int64s(), try v["indices"]!.int64s(), file: file, line: line)
        for (x, y) in zip(u["scores"]!.floats(), v["scores"]!.floats()) { XCTAssertEqual(x, y, accuracy: 1e-5, file: file, line: line) }
    }

    func testASmallBudgetTakesSmallerCorpusBlocks() throws {
        // 8-dimensional probabilistic rows: one tile's score buffer is 32 MiB with corpus blocks of
        // 4096 rows (σ_s² is computed for the candidates alone, no buffer of its own); the least
        // the search holds is 4.3 MiB with 512, which --memory 5M holds, and 8.4 MiB with 1024.
        let (queries, corpus) = try topKInputs(n: 600, m: 3000, d: 8)
        let base = ["--corpus", corpus, "--top-k", "5", "-v"]
        let small = try runTool("emb-sim", base + ["--memory", "5M"], stdin: queries)
        XCTAssertEqual(small.status, 0, small.stderr)
        XCTAssertTrue(small.stderr.contains("corpus blocks of 512 rows"), small.stderr)
        XCTAssertFalse(small.stderr.contains("warning"), small.stderr)
        // --corpus-block is taken as given, and the warning then says it could be smaller.
        let given = try runTool("emb-sim", base + ["--memory", "5M", "--corpus-block", "4096"], stdin: queries)
        XCTAssertEqual(given.status, 0, given.stderr)
        XCTAssertTrue(given.stderr.contains("corpus blocks of 4096 rows"), given.stderr)
        XCTAssertTrue(given.stderr.contains("a smaller --corpus-block needs less"), given.stderr)
        // The default budget keeps blocks of 4096 rows; the results are the same.
        let wide = try runTool("emb-sim", base, stdin: queries)
        XCTAssertEqual(wide.status, 0, wide.stderr)
        XCTAssertTrue(wide.stderr.contains("corpus blocks of 4096 rows"), wide.stderr)
        for r in [given, wide] { try assertSameTopK(small, r) }
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

/// --precision int16 and int8 on real embeddings (the bundled BBC titles and bodies, three models,
/// and the Lee background pairs): the same top-k as the f32 search.
extension UECToolTests {
    func npzStream(_ file: String, _ array: String) throws -> Data {
        let path = repositoryRoot().appendingPathComponent("examples/data/\(file)").path
        let r = try runTool("tensor", ["from", "npz", path])
        XCTAssertEqual(r.status, 0, r.stderr)
        let s = try runTool("tensor", ["select", array], stdin: r.stdout)
        let n = try runTool("tensor", ["rename", "\(array)=embedding"], stdin: s.stdout)
        XCTAssertEqual(n.status, 0, n.stderr)
        return n.stdout
    }

    func testIntegerPrecisionsGiveTheF32TopKOnRealEmbeddings() throws {
        let cases = [("bbc.npz", "title", "body", "minilm"), ("bbc.npz", "title", "body", "paraphrase"), ("bbc.npz", "title", "body", "e5"),
                     ("bbc.npz", "body", "body", "minilm"), ("leebg.npz", "query", "positive", "e5")]
        for (npz, qName, cName, model) in cases {
            let queries = try npzStream(npz, "\(qName)_\(model)")
            let corpus = try file("corpus-\(model).tsr", npzStream(npz, "\(cName)_\(model)"))
            let base = ["--corpus", corpus, "--top-k", "10", "--corpus-block", "100", "--query-block", "128"]
            let f32 = try runTool("emb-sim", base, stdin: queries)
            XCTAssertEqual(f32.status, 0, f32.stderr)
            let a = try read(f32.stdout), ia = try a["indices"]!.int64s()
            // Exact cosines (double) of the pairs where the lists differ.
            let qt = try read(queries)["embedding"]!, ct = try read(Data(contentsOf: URL(fileURLWithPath: corpus)))["embedding"]!
            let d = qt.info.rowShape[0]
            func unit(_ t: Tensor) -> [[Double]] {
                let f = t.floats()
                return (0..<t.rows).map { r in
                    let v = (0..<d).map { Double(f[r * d + $0]) }
                    let n = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
                    return v.map { $0 / n }
                }
            }
            let qv = unit(qt), cv = unit(ct)
            func exact(_ q: Int, _ c: Int64) -> Double { zip(qv[q], cv[Int(c)]).reduce(0) { $0 + $1.0 * $1.1 } }
            var lows: [String: Data] = [:]
            for precision in ["int16", "int8"] {
                let low = try runTool("emb-sim", base + ["--precision", precision, "-v"], stdin: queries)
                XCTAssertEqual(low.status, 0, low.stderr)
                XCTAssertTrue(low.stderr.contains("emb-sim: \(precision) pass") && low.stderr.contains("scored again exactly"), low.stderr)
                lows[precision] = low.stdout
                let b = try read(low.stdout), ib = try b["indices"]!.int64s()
                let what = "\(npz) \(qName) → \(cName), \(model), \(precision)"
                // The f32 GEMM's rounding may order rows whose exact cosines tie (duplicate texts)
                // either way: elsewhere the lists are identical.
                var differ = 0
                for (j, (x, y)) in zip(ia, ib).enumerated() where x != y {
                    differ += 1
                    XCTAssertEqual(exact(j / 10, x), exact(j / 10, y), accuracy: 1e-6, "\(what): f32 and \(precision) differ beyond a tie")
                }
                XCTAssertLessThan(differ, ia.count / 100, what)
                for (x, y) in zip(b["scores"]!.floats(), a["scores"]!.floats()) { XCTAssertEqual(x, y, accuracy: 2e-6, what) }
            }
            // Both integer passes end in the same exact scores of the same pairs: the same bytes.
            XCTAssertEqual(lows["int16"], lows["int8"], "\(npz) \(qName) → \(cName), \(model)")
        }
    }

    func testIntegerPrecisionsRefuseTheUncertaintyAwareScore() throws {
        let (queries, corpus) = try topKInputs(n: 3, m: 10, d: 4)
        for precision in ["int16", "int8"] {
            let r = try runTool("emb-sim", ["--corpus", corpus, "--top-k", "2", "--precision", precision], stdin: queries)
            XCTAssertEqual(r.status, 64, r.stderr)
            XCTAssertTrue(r.stderr.contains("--precision \(precision) scores plain cosine only") && r.stderr.contains("--beta 0"), r.stderr)
            XCTAssertEqual(r.stdout.count, 0)
            let ok = try runTool("emb-sim", ["--corpus", corpus, "--top-k", "2", "--precision", precision, "--beta", "0"], stdin: queries)
            XCTAssertEqual(ok.status, 0, ok.stderr)
            let bad = try runTool("emb-sim", ["--paired", corpus, "--precision", precision], stdin: queries)
            XCTAssertEqual(bad.status, 64, bad.stderr)
        }
    }
}

import LinearAlgebra
import XCTest
import Probability
@testable import UEC

final class FusionSimilarityTests: XCTestCase {
    func testFusionMatchesNumpy() throws {
        let f = try Fixture("fusion")
        let mu = f.arrays["mean"]!, va = f.arrays["var"]!
        let k = mu.shape[0], n = mu.shape[1], d = mu.shape[2]
        let means = (0..<k).map { i in Matrix(rows: n, cols: d, data: mu.data[i * n * d ..< (i + 1) * n * d].map { Float($0) }) }
        let vars = (0..<k).map { i in Matrix(rows: n, cols: d, data: va.data[i * n * d ..< (i + 1) * n * d].map { Float($0) }) }
        let t = f.scalar("T")
        let modes: [(String, FusionWeights)] = [("uncertainty", .uncertainty(temperature: t)),
                                               ("precision", .precision(temperature: t)),
                                               ("uniform", .uniform), ("fixed", .fixed(f.doubles("fixed")))]
        for (name, w) in modes {
            let out = fuse(means: means, variances: vars, weights: w)
            assertClose(out.coefficients.data, f.floats("\(name)_weights"), rtol: 1e-5, atol: 1e-7, "\(name) weights")
            assertClose(out.mean.data, f.floats("\(name)_mean"), rtol: 1e-5, atol: 1e-6, "\(name) mean")
            assertClose(out.variance.data, f.floats("\(name)_var"), rtol: 1e-5, atol: 1e-7, "\(name) var")
        }
    }

    func testUncertaintyWeightsPreferTheCertainModel() {
        let pi = fusionCoefficients([[0.1, 0.1][...], [1.0, 1.0][...]], weights: .uncertainty(temperature: 1))
        XCTAssertGreaterThan(pi[0], pi[1])
        XCTAssertEqual(pi[0] + pi[1], 1, accuracy: 1e-12)
        // A huge temperature tends to uniform weights.
        let flat = fusionCoefficients([[0.1][...], [1.0][...]], weights: .uncertainty(temperature: 1e9))
        XCTAssertEqual(flat[0], 0.5, accuracy: 1e-6)
    }

    func testPrecisionWeightsWithAZeroVariance() {
        let pi = fusionCoefficients([[0, 1][...], [1, 1][...]], weights: .precision(temperature: 1))
        XCTAssertEqual(pi, [1, 0])
    }

    func sim(_ f: Fixture) -> (ProbBlock, ProbBlock) {
        (ProbBlock(mean: f.matrixF("query_mean"), variance: f.matrixF("query_var")),
         ProbBlock(mean: f.matrixF("corpus_mean"), variance: f.matrixF("corpus_var")))
    }

    func testSimilarityMatrixPairedAndCosineMatchNumpy() throws {
        let f = try Fixture("sim")
        let (q, c) = sim(f)
        let beta = Float(f.scalar("beta"))
        assertClose(similarityMatrix(q, c, beta: beta).data, f.floats("scores"), rtol: 1e-5, atol: 1e-6, "scores")
        assertClose(similarityMatrix(q, c, beta: 0).data, f.floats("cosine"), rtol: 1e-5, atol: 1e-6, "β=0")
        let noVar = ProbBlock(mean: c.mean, variance: nil)
        assertClose(similarityMatrix(q, noVar, beta: beta).data, f.floats("cosine"), rtol: 1e-5, atol: 1e-6, "no var")
        let firstRows = ProbBlock(mean: c.mean.rows(0 ..< q.rows), variance: c.variance!.rows(0 ..< q.rows))
        assertClose(pairedSimilarity(q, firstRows, beta: beta), f.floats("paired"), rtol: 1e-5, atol: 1e-6, "paired")
    }

    func testTopKOverBlocksMatchesNumpyAndFullMatrix() throws {
        let f = try Fixture("sim")
        let (q, c) = sim(f)
        let beta = Float(f.scalar("beta")), k = f.int("k")
        for blockRows in [1, 2, 3, 5, 11] {
            var top = TopK(queries: q.rows, k: k)
            for s in stride(from: 0, to: c.rows, by: blockRows) {
                let r = s ..< min(s + blockRows, c.rows)
                let block = ProbBlock(mean: c.mean.rows(r), variance: c.variance!.rows(r))
                try top.add(similarityMatrix(q, block, beta: beta), offset: s)
            }
            let res = top.results()
            XCTAssertEqual(res.indices, f.doubles("topk_indices").map { Int64($0) }, "block \(blockRows)")
            assertClose(res.scores, f.floats("topk_scores"), rtol: 1e-5, atol: 1e-6, "top-k scores")
        }
        var cos = TopK(queries: q.rows, k: k)
        try cos.add(similarityMatrix(q, c, beta: 0), offset: 0)
        XCTAssertEqual(cos.results().indices, f.doubles("cos_topk_indices").map { Int64($0) })
    }

    func testParallelBlockTopKMatchesNumpy() throws {
        let f = try Fixture("sim")
        let (q, c) = sim(f)
        for threads in [1, 2, 3, 5] {
            for beta in [Float(f.scalar("beta")), 0] {
                let top = BlockTopK(queries: q, k: f.int("k"), beta: beta, threads: threads)
                for s in stride(from: 0, to: c.rows, by: 4) {
                    let r = s ..< min(s + 4, c.rows)
                    try top.add(ProbBlock(mean: c.mean.rows(r), variance: c.variance!.rows(r)))
                }
                let want = beta == 0 ? "cos_topk" : "topk"
                let res = top.results()
                XCTAssertEqual(res.indices, f.doubles("\(want)_indices").map { Int64($0) }, "threads \(threads)")
                assertClose(res.scores, f.floats("\(want)_scores"), rtol: 1e-5, atol: 1e-6, "scores")
                XCTAssertEqual(top.corpusRows, c.rows)
            }
        }
    }

    func testTopKTiesGoToTheLowerIndexAndShortCorpusIsPadded() throws {
        var top = TopK(queries: 1, k: 3)
        try top.add(Matrix(rows: 1, cols: 2, data: [0.5, 0.9]), offset: 0)
        try top.add(Matrix(rows: 1, cols: 2, data: [0.5, .nan]), offset: 2)
        try top.add(Matrix(rows: 1, cols: 1, data: [0.5]), offset: 4)
        let r = top.results()
        XCTAssertEqual(r.indices, [1, 0, 2])
        var small = TopK(queries: 1, k: 4)
        try small.add(Matrix(rows: 1, cols: 2, data: [0.1, 0.2]), offset: 0)
        XCTAssertEqual(small.results().indices, [1, 0, -1, -1])
        XCTAssertEqual(small.results().scores[3], -.infinity)
        // A k far beyond the corpus costs memory for the corpus rows only.
        var huge = TopK(queries: 3, k: 1 << 60)
        try huge.add(Matrix(rows: 3, cols: 2, data: [0.1, 0.2, 0.4, 0.3, 0, 0]), offset: 0)
        XCTAssertEqual(huge.capacity, 2)
        XCTAssertEqual(huge.results(width: 2).indices, [1, 0, 0, 1, 0, 1])
    }

    func testRandomTopKAgreesWithSorting() throws {
        var g = SeededGenerator(seed: 3)
        let nq = 7, nc = 200, k = 10
        // Rounded scores make many ties.
        let m = Matrix<Float>(rows: nq, cols: nc, data: (0..<nq * nc).map { _ in Float((g.uniform() * 20).rounded()) })
        var top = TopK(queries: nq, k: k)
        for s in stride(from: 0, to: nc, by: 37) { try top.add(m.rows(0 ..< nq).columns(s ..< min(s + 37, nc)), offset: s) }
        let r = top.results()
        for q in 0..<nq {
            let want = (0..<nc).sorted { (m[q, $0], -$0) > (m[q, $1], -$1) }.prefix(k).map { Int64($0) }
            XCTAssertEqual(Array(r.indices[q * k ..< (q + 1) * k]), want)
        }
    }
}

extension Matrix {
    func columns(_ r: Range<Int>) -> Matrix {
        var out = Matrix(rows: rows, cols: r.count)
        for i in 0..<rows { for j in r { out[i, j - r.lowerBound] = self[i, j] } }
        return out
    }
}

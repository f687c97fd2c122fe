import LinearAlgebra
import Probability
import XCTest
@testable import UEC

/// The fast top-k paths (query tiles, threshold test before the heap, fused top-1 σ tracking)
/// against the plain reference: the full score matrix (similarityMatrix, scalar formula), sorted.
final class TopKSearchTests: XCTestCase {
    func randomBlock(_ g: inout SeededGenerator, rows: Int, d: Int, ties: Bool) -> ProbBlock {
        var mean = Matrix<Float>(rows: rows, cols: d), variance = Matrix<Float>(rows: rows, cols: d)
        for r in 0..<rows {
            var norm: Float = 0
            for k in 0..<d {
                var x = Float(g.normal())
                if ties { x = (x * 2).rounded() / 2 }  // few distinct rows: many equal scores
                mean[r, k] = x; norm += x * x
                variance[r, k] = Float(g.uniform()) * 0.02
            }
            if norm == 0 { mean[r, 0] = 1; norm = 1 }
            for k in 0..<d { mean[r, k] /= norm.squareRoot() }
        }
        return ProbBlock(mean: mean, variance: variance)
    }

    /// The reference: per query, every corpus row sorted by (score desc, index asc), NaN excluded.
    func reference(_ q: ProbBlock, _ c: ProbBlock, beta: Float, k: Int) -> (scores: [Float], indices: [Int64], sigma2: [Float]) {
        let s = similarityMatrix(q, c, beta: beta)
        var sig = Matrix<Float>(rows: q.rows, cols: c.rows)
        gemm(q.querySide(), c.corpusSide(), transB: true, into: &sig)
        var scores: [Float] = [], indices: [Int64] = [], sigma2: [Float] = []
        for i in 0..<q.rows {
            let order = (0..<c.rows).sorted { (s[i, $0], -$0) > (s[i, $1], -$1) }.prefix(k)
            scores += order.map { s[i, $0] }; indices += order.map { Int64($0) }
            sigma2.append(sig[i, order.first!])
        }
        return (scores, indices, sigma2)
    }

    func testTilesThresholdAndTopOneAreExact() throws {
        var g = SeededGenerator(seed: 11)
        for ties in [false, true] {
            let q = randomBlock(&g, rows: 37, d: 5, ties: ties), c = randomBlock(&g, rows: 403, d: 5, ties: ties)
            for beta: Float in [0, 0.8] {
                for k in [1, 3, 40] {
                    let want = reference(q, c, beta: beta, k: k)
                    var previous: [Int: (scores: [Float], indices: [Int64], sigma2: [Float]?)] = [:]
                    for (tile, threads, block) in [(1, 1, 403), (4, 2, 19), (4, 3, 19), (7, 3, 64), (2048, 2, 8), (2048, 5, 8), (10, 5, 1)] {
                        let top = BlockTopK(queries: q, k: k, beta: beta, threads: threads, tileRows: tile)
                        for s in stride(from: 0, to: c.rows, by: block) {
                            let r = s ..< min(s + block, c.rows)
                            try top.add(ProbBlock(mean: c.mean.rows(r), variance: c.variance!.rows(r)))
                        }
                        let got = top.results()
                        let what = "ties \(ties) β \(beta) k \(k) tile \(tile) threads \(threads) block \(block)"
                        XCTAssertEqual(got.indices, want.indices, what)
                        // GEMMs of other shapes round differently (OpenBLAS): equal within rounding.
                        for (a, b) in zip(got.scores, want.scores) { XCTAssertEqual(a, b, accuracy: 1e-6, what) }
                        if beta != 0 {
                            for (a, b) in zip(top.topOne!.sigma2, want.sigma2) { XCTAssertEqual(a, b, accuracy: 1e-6, what) }
                        } else { XCTAssertNil(top.topOne) }
                        // The same shapes on more threads: bit for bit.
                        let key = tile * 10_000 + block
                        if let p = previous[key] {
                            XCTAssertEqual(got.scores.map(\.bitPattern), p.scores.map(\.bitPattern), what)
                            XCTAssertEqual(got.indices, p.indices, what)
                            XCTAssertEqual(top.topOne?.sigma2.map(\.bitPattern), p.sigma2?.map(\.bitPattern), what)
                        }
                        previous[key] = (got.scores, got.indices, top.topOne?.sigma2)
                    }
                }
            }
        }
    }

    func testThresholdScanSkipsNaNAndFindsEveryScoreAbove() {
        var g = SeededGenerator(seed: 5)
        for n in [1, 7, 8, 9, 31, 32, 33, 100] {
            var s = (0..<n).map { _ in Float(g.uniform()) }
            if n > 3 { s[3] = .nan }
            for t: Float in [-1, 0.3, 0.9, 2] {
                var found: [Int] = [], j = 0
                s.withUnsafeBufferPointer { p in
                    while true {
                        j = nextAbove(p.baseAddress!, from: j, count: n, threshold: t)
                        if j >= n { break }
                        found.append(j); j += 1
                    }
                }
                XCTAssertEqual(found, (0..<n).filter { s[$0] > t }, "n \(n) t \(t)")
            }
        }
    }
}

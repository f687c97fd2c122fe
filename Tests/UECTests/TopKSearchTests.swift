import CSearch
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

    /// The GEMMs are cut at fixed query rows and corpus columns, each run on one thread: the
    /// scores are the same to the last bit on 1, 2, 3 or 8 threads (the fused path, a chunk per
    /// thread, and the two-phase one, fewer chunks than threads), and right.
    func testChunksGiveTheSameBitsOnAnyNumberOfThreads() throws {
        var g = SeededGenerator(seed: 12)
        let q = randomBlock(&g, rows: 61, d: 24, ties: false), c = randomBlock(&g, rows: 517, d: 24, ties: false)
        // Tiles of 32 queries hold 7 chunks of 5 (the last of 2): fewer than 8 threads, more than 3.
        for beta: Float in [0, 0.8] {
            let want = reference(q, c, beta: beta, k: 7)
            var first: (scores: [Float], indices: [Int64])?
            for threads in [1, 2, 3, 8] {
                let top = BlockTopK(queries: q, k: 7, beta: beta, threads: threads, tileRows: 32, chunkRows: 5, pieceCols: 30)
                for s in stride(from: 0, to: c.rows, by: 100) {
                    let r = s ..< min(s + 100, c.rows)
                    try top.add(ProbBlock(mean: c.mean.rows(r), variance: c.variance!.rows(r)))
                }
                let got = top.results()
                XCTAssertEqual(got.indices, want.indices, "β \(beta) threads \(threads)")
                for (a, b) in zip(got.scores, want.scores) { XCTAssertEqual(a, b, accuracy: 1e-5) }
                if let first {
                    XCTAssertEqual(got.scores.map(\.bitPattern), first.scores.map(\.bitPattern), "β \(beta) threads \(threads)")
                    XCTAssertEqual(got.indices, first.indices)
                } else { first = got }
            }
        }
    }

    /// Adjusting only the scores that can enter the heap, σ_s² computed there alone from the
    /// pair's σ² sides, keeps the same heaps and top-1 trackers, bit for bit, as adjusting every
    /// score first with every σ_s² computed beforehand: thresholds below and above 0, negative
    /// means, equal scores, a NaN σ², a zero σ², several blocks; and without the promise of
    /// σ_s² ≥ 0 (every score adjusted in place), the same again. Sides 2100 wide are scored in
    /// pieces of 31 columns (all queries against a piece that stays in the cache, then the next).
    func testPenalisingOnlyCandidatesKeepsTheSameHeaps() {
        var g = SeededGenerator(seed: 21)
        let queries = 3, m = 257
        for (width, k) in [(10, 1), (10, 5), (10, 50), (10, 300), (10, 700), (2100, 5), (2100, 700)] {   // 700 of 771 rows: the final threshold stays below 0
            let qSide = (0..<(queries * width)).map { _ in Float(g.uniform()) * 0.6 }
            for candidatesOnly in [true, false] {
                var a = TopK(queries: queries, k: k), b = TopK(queries: queries, k: k)
                let oneA = TopOneVariance(queries: queries), oneB = TopOneVariance(queries: queries)
                for block in 0..<3 {
                    var mu = (0..<(queries * m)).map { _ in Float(g.uniform() * 2 - 1) }
                    var cSide = (0..<(m * width)).map { _ in Float(g.uniform()) * 0.6 }
                    mu[7] = mu[8]; for w in 0..<width { cSide[7 * width + w] = cSide[8 * width + w] }
                    cSide[20 * width + 3] = .nan
                    for w in 0..<width { cSide[21 * width + w] = 0 }
                    // Every σ_s², then every ŝ: the reference.
                    var v = [Float](repeating: 0, count: queries * m)
                    qSide.withUnsafeBufferPointer { pq in cSide.withUnsafeBufferPointer { pc in
                        for q in 0..<queries { for j in 0..<m {
                            v[q * m + j] = sigma2(querySide: pq.baseAddress! + q * width, corpusSide: pc.baseAddress! + j * width, width: width)
                        } }
                    }}
                    XCTAssertTrue(v[20].isNaN); XCTAssertEqual(v[21], 0)
                    XCTAssertNoThrow(try a.reserve(rows: (block + 1) * m)); XCTAssertNoThrow(try b.reserve(rows: (block + 1) * m))
                    var adjusted = mu
                    adjusted.withUnsafeMutableBufferPointer { s in v.withUnsafeBufferPointer { pv in
                        penalty(s.baseAddress!, pv.baseAddress!, count: s.count, beta: 0.7)
                        withTopOneSlots(oneB) { one in b.add(s.baseAddress!, cols: m, offset: block * m, sigma2: pv.baseAddress!, topOne: one) }
                    }}
                    mu.withUnsafeMutableBufferPointer { s in qSide.withUnsafeBufferPointer { pq in cSide.withUnsafeBufferPointer { pc in
                        withTopOneSlots(oneA) { one in
                            a.addPenalised(s.baseAddress!, cols: m, offset: block * m, querySide: pq.baseAddress!, corpusSide: pc.baseAddress!,
                                           width: width, beta: 0.7, candidatesOnly: candidatesOnly, topOne: one)
                        }
                    }}}
                }
                let ra = a.results(), rb = b.results(), what = "width \(width) k \(k) candidatesOnly \(candidatesOnly)"
                XCTAssertEqual(ra.indices, rb.indices, what)
                XCTAssertEqual(ra.scores.map(\.bitPattern), rb.scores.map(\.bitPattern), what)
                XCTAssertEqual(oneA.index, oneB.index, what)
                XCTAssertEqual(oneA.sigma2.map(\.bitPattern), oneB.sigma2.map(\.bitPattern), what)
            }
        }
    }

    /// σ_s² of a pair (csearch_dot32): the AVX2 kernel and the generic loop give the same bits, for
    /// every length (tails of 0-31 elements), at unaligned addresses, with zeros and signed
    /// values; and the value is the dot product within float rounding (against a double sum).
    func testSigma2DotHasOneSetOfBits() {
        var g = SeededGenerator(seed: 31)
        let kernels = csearch_scores_kernels()
        for n in [0, 1, 7, 8, 31, 32, 33, 63, 64, 65, 100, 768, 777] {
            for offset in [0, 1, 3] {
                let a = (0..<(n + offset)).map { i in i % 11 == 5 ? 0 : Float(g.normal()) }
                let b = (0..<(n + offset)).map { _ in Float(g.uniform()) * 3 }
                a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in
                    let x = pa.baseAddress! + offset, y = pb.baseAddress! + offset
                    let generic = csearch_dot32_with(Int32(CSEARCH_KERNEL_GENERIC), x, y, n)
                    let best = csearch_dot32(x, y, n)
                    if kernels & Int32(CSEARCH_KERNEL_AVX2) != 0 {
                        let avx2 = csearch_dot32_with(Int32(CSEARCH_KERNEL_AVX2), x, y, n)
                        XCTAssertEqual(avx2.bitPattern, generic.bitPattern, "n \(n) offset \(offset)")
                    }
                    XCTAssertEqual(best.bitPattern, generic.bitPattern, "n \(n) offset \(offset)")
                    var exact = 0.0, size = 0.0
                    for i in 0..<n { exact += Double(x[i]) * Double(y[i]); size += abs(Double(x[i]) * Double(y[i])) }
                    XCTAssertEqual(Double(generic), exact, accuracy: 1e-6 * size + 1e-30, "n \(n)")
                }}
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

/// --precision int16 and int8: the reduced-precision pass plus exact re-scoring returns the exact top-k.
final class ReducedPrecisionTests: XCTestCase {
    /// Exact top-k by double-precision dot products (ties to the lower row).
    func exactTopK(_ q: Matrix<Float>, _ c: Matrix<Float>, k: Int) -> [Int64] {
        var out: [Int64] = []
        for i in 0..<q.rows {
            let s = (0..<c.rows).map { j in (0..<q.cols).reduce(0.0) { $0 + Double(q[i, $1]) * Double(c[j, $1]) } }
            out += (0..<c.rows).sorted { (s[$0], -$0) > (s[$1], -$1) }.prefix(k).map { Int64($0) }
        }
        return out
    }

    func unitRows(_ g: inout SeededGenerator, _ n: Int, _ d: Int) -> Matrix<Float> {
        var m = Matrix<Float>(rows: n, cols: d)
        for r in 0..<n {
            var norm: Float = 0
            for k in 0..<d { m[r, k] = Float(g.normal()); norm += m[r, k] * m[r, k] }
            for k in 0..<d { m[r, k] /= norm.squareRoot() }
        }
        return m
    }

    func run(_ q: Matrix<Float>, _ c: Matrix<Float>, k: Int, block: Int, threads: Int, tile: Int = 1024,
             precision: CodePrecision = .int16)
        throws -> (res: (scores: [Float], indices: [Int64]), stats: ReducedPrecisionStats) {
        let top = ReducedTopK(queries: q, k: k, threads: threads, precision: precision, tileRows: tile, measureRecall: true)
        for s in stride(from: 0, to: c.rows, by: block) {
            let r = s ..< min(s + block, c.rows)
            try top.add(CorpusBlock(ProbBlock(mean: c.mean(r), variance: nil), withSide: false, codes: precision))
        }
        return (top.results(), top.stats)
    }

    func testRandomAndDuplicateRowsGiveTheExactTopK() throws {
        var g = SeededGenerator(seed: 21)
        for d in [5, 64, 383] {
            let q = unitRows(&g, 23, d)
            var c = unitRows(&g, 700, d)
            for k in 0..<d { c[650, k] = c[10, k]; c[651, k] = q[3, k] }  // a duplicate row, a query itself
            let want = exactTopK(q, c, k: 10)
            for precision in CodePrecision.allCases {
                for (block, threads, tile) in [(700, 1, 1024), (64, 2, 5), (9, 3, 7)] {
                    let got = try run(q, c, k: 10, block: block, threads: threads, tile: tile, precision: precision)
                    XCTAssertEqual(got.res.indices, want, "\(precision) d \(d) block \(block)")
                    XCTAssertLessThan(got.stats.rescored, got.stats.pairs, "\(precision) d \(d): the bound prunes")
                }
            }
            // The f32 search (sgemm) finds the same rows, with scores equal within rounding. Rows
            // whose scores tie may trade places there: sgemm can round two equal rows' dot products
            // differently by their position in its blocks and its thread count (rows 10 and 650,
            // duplicates, came out 650 first once), where the int16 pass's exact re-scoring keeps
            // the lower row first, as the brute force above checks.
            let f32 = BlockTopK(queries: ProbBlock(mean: q, variance: nil), k: 10, beta: 0, threads: 2)
            try f32.add(ProbBlock(mean: c, variance: nil))
            let got = try run(q, c, k: 10, block: 128, threads: 2)
            let f = f32.results()
            XCTAssertEqual(got.res.indices.count, f.indices.count)
            for (a, b) in zip(got.res.scores, f.scores) { XCTAssertEqual(a, b, accuracy: 2e-6) }
            for i in 0..<q.rows {
                let mine = got.res.indices[(i * 10)..<((i + 1) * 10)], theirs = f.indices[(i * 10)..<((i + 1) * 10)]
                XCTAssertEqual(Set(mine), Set(theirs), "d \(d) query \(i)")
                for j in (i * 10)..<((i + 1) * 10) where got.res.indices[j] != f.indices[j] {
                    let a = Int(got.res.indices[j]), b = Int(f.indices[j])
                    let sa = (0..<d).reduce(0.0) { $0 + Double(q[i, $1]) * Double(c[a, $1]) }
                    let sb = (0..<d).reduce(0.0) { $0 + Double(q[i, $1]) * Double(c[b, $1]) }
                    XCTAssertEqual(sa, sb, accuracy: 1e-6, "d \(d) query \(i): rows \(a) and \(b) trade places but do not tie")
                }
            }
        }
    }

    /// Every kernel of the integer pass this CPU runs (generic C, AVX2, AVX-512 VNNI), for int16
    /// and int8 codes, gives the same bits, and the int32 sums are the exact sums of the codes
    /// (brute force in Int64): shapes with tails of queries and of corpus rows that fill no block
    /// of any kernel, odd dimensions, codes at ±limit (the largest sums), and an output stride
    /// wider than the corpus block. int8's packed rows also carry their sums of codes.
    func testEveryIntegerKernelGivesTheExactSums() throws {
        var g = SeededGenerator(seed: 8)
        let available = csearch_scores_kernels()
        XCTAssertNotEqual(available & Int32(CSEARCH_KERNEL_GENERIC), 0)
        for precision in CodePrecision.allCases {
            for (nq, nc, d) in [(1, 1, 1), (5, 17, 7), (13, 50, 64), (4, 64, 384), (7, 33, 383), (25, 100, 2), (9, 70, 130)] {
                var q = unitRows(&g, nq, d), c = unitRows(&g, nc, d)
                if nq > 1 { for k in 0..<d { q[1, k] = k % 2 == 0 ? 1 : -1 } }   // every code at ±limit
                if nc > 2 { for k in 0..<d { c[2, k] = k % 3 == 0 ? 1 : -1 } }
                let qc = IntegerCodes(q, precision: precision, packed: false), cc = IntegerCodes(c, precision: precision, packed: true)
                let w = qc.width, limit = precision.codeLimit(d), ldo = nc + 3
                let what = "\(precision) nq \(nq) nc \(nc) d \(d)"
                XCTAssertEqual(w, precision == .int16 ? (d + 1) / 2 * 2 : (d + 3) / 4 * 4)
                XCTAssertEqual(cc.codes16.count + cc.codes8.count, (nc + 15) / 16 * 16 * w)
                // The layouts, read back: query i's code k, corpus row j's code k.
                func qcode(_ i: Int, _ k: Int) -> Int { precision == .int16 ? Int(qc.codes16[i * w + k]) : Int(qc.codes8[i * w + k]) }
                func code(_ j: Int, _ k: Int) -> Int {
                    precision == .int16 ? Int(cc.codes16[(j / 16) * 16 * w + (k / 2) * 32 + (j % 16) * 2 + k % 2])
                        : Int(cc.codes8[(j / 16) * 16 * w + (k / 4) * 64 + (j % 16) * 4 + k % 4])
                }
                if precision == .int8 {
                    XCTAssertEqual(cc.sums.count, (nc + 15) / 16 * 16)
                    for j in 0..<cc.sums.count { XCTAssertEqual(Int(cc.sums[j]), j < nc ? (0..<d).reduce(0) { $0 + code(j, $1) } : 0, what) }
                }
                var outs: [[Float]] = []
                for kernel in [CSEARCH_KERNEL_GENERIC, CSEARCH_KERNEL_AVX2, CSEARCH_KERNEL_AVX512_VNNI] where available & Int32(kernel) != 0 {
                    var out = [Float](repeating: .nan, count: nq * ldo)
                    out.withUnsafeMutableBufferPointer { o in
                        qc.scores(first: 0, count: nq, against: cc, into: o.baseAddress!, ldo: ldo, kernel: Int32(kernel))
                    }
                    for i in 0..<nq { for j in nc..<ldo { XCTAssert(out[i * ldo + j].isNaN, "\(what) kernel \(kernel): wrote past the corpus block") } }
                    outs.append(out)
                }
                for i in 0..<nq {
                    for j in 0..<nc {
                        var sum: Int64 = 0
                        for k in 0..<d {
                            let a = qcode(i, k), b = code(j, k)
                            XCTAssertLessThanOrEqual(max(abs(a), abs(b)), limit)
                            sum += Int64(a * b)
                        }
                        let want = (qc.scales[i] * cc.scales[j]) * Float(sum)
                        for out in outs { XCTAssertEqual(out[i * ldo + j].bitPattern, want.bitPattern, "\(what) pair \(i),\(j)") }
                    }
                }
                // A query row from the middle: the same scores as its row in the whole.
                if nq > 2 {
                    var one = [Float](repeating: .nan, count: ldo)
                    one.withUnsafeMutableBufferPointer { qc.scores(first: 2, count: 1, against: cc, into: $0.baseAddress!, ldo: ldo) }
                    for j in 0..<nc { XCTAssertEqual(one[j].bitPattern, outs[0][2 * ldo + j].bitPattern, what) }
                }
                if nq > 1 && nc > 2 {
                    XCTAssertEqual(Int((qc.codes16.map { abs(Int($0)) } + qc.codes8.map { abs(Int($0)) }).max()!), limit, what)
                    XCTAssertEqual(Int((cc.codes16.map { abs(Int($0)) } + cc.codes8.map { abs(Int($0)) }).max()!), limit, what)
                }
            }
        }
    }

    /// The code limits: int16 at most 2047 (12 bits), int8 at most 127, each the largest that
    /// keeps the kernels' int32 sums from overflowing (int8's VNNI kernel sums (q + 128)·c).
    func testCodeLimitsKeepTheSumsWithinInt32() {
        let top = Double(Int32.max)
        for d in [1, 2, 384, 512, 513, 4096, 66_000, 66_500, 100_000, 1_000_000, 16_647_160, 16_647_161, 20_000_000] {
            let l16 = Double(CodePrecision.int16.codeLimit(d)), l8 = Double(CodePrecision.int8.codeLimit(d)), dd = Double(max(d, 2))
            XCTAssertLessThanOrEqual(l16, 2047); XCTAssertGreaterThanOrEqual(l16, 1)
            XCTAssertLessThanOrEqual(dd * l16 * l16, top, "int16 d \(d)")
            XCTAssert(l16 == 2047 || dd * (l16 + 1) * (l16 + 1) > top, "int16 d \(d): not the largest")
            XCTAssertLessThanOrEqual(l8, 127)
            XCTAssertLessThanOrEqual(Double(d) * (128 + l8) * l8, top, "int8 d \(d)")
            XCTAssert(l8 == 127 || Double(d) * (129 + l8) * (l8 + 1) > top, "int8 d \(d): not the largest")
        }
        XCTAssertEqual(CodePrecision.int8.codeLimit(384), 127)
        XCTAssertEqual(CodePrecision.int8.codeLimit(16_647_160), 1)
        XCTAssertEqual(CodePrecision.int8.codeLimit(16_647_161), 0)
    }

    /// Near-ties far below the integer pass's resolution: 60 corpus rows whose cosines with the
    /// query differ by 2e-6 to 1e-4, so that the approximate scores reorder them.
    func testAdversarialNearTiesKeepTheExactOrder() throws {
        var g = SeededGenerator(seed: 4)
        let d = 384
        let q = unitRows(&g, 4, d)
        let noise = unitRows(&g, 2000, d)
        var c = noise
        for i in 0..<q.rows {
            // A direction orthogonal to query i.
            var w = (0..<d).map { _ in Float(g.normal()) }
            let dot = (0..<d).reduce(Float(0)) { $0 + w[$1] * q[i, $1] }
            for k in 0..<d { w[k] -= dot * q[i, k] }
            let wn = w.reduce(Float(0)) { $0 + $1 * $1 }.squareRoot()
            for j in 0..<60 {
                // cos = 0.9 − j·δ with δ from 2e-6 to 1e-4: c = cos·q + sin·w/‖w‖ (+ tiny noise).
                let cosine = 0.9 - Double(j) * (j % 2 == 0 ? 2e-6 : 1e-4)
                let sine = (1 - cosine * cosine).squareRoot()
                let row = 100 + i * 60 + (j * 37) % 60
                for k in 0..<d { c[row, k] = Float(cosine) * q[i, k] + Float(sine) * w[k] / wn + 1e-7 * noise[row, k] }
            }
        }
        let want = exactTopK(q, c, k: 20)
        let f32 = BlockTopK(queries: ProbBlock(mean: q, variance: nil), k: 20, beta: 0, threads: 2)
        try f32.add(ProbBlock(mean: c, variance: nil))
        for precision in CodePrecision.allCases {
            let got = try run(q, c, k: 20, block: 256, threads: 2, precision: precision)
            XCTAssertEqual(got.res.indices, want, "\(precision)")
            // The integer pass alone gets these wrong: the re-scoring is what makes the result exact.
            XCTAssertLessThan(got.stats.recall!, 1, "\(precision)")
            XCTAssertEqual(got.res.indices, f32.results().indices, "\(precision)")
        }
    }
}

private extension Matrix where T == Float {
    func mean(_ r: Range<Int>) -> Matrix<Float> { rows(r) }
}

import CSearch
import Failure
import LinearAlgebra
import Parallel

/// Uncertainty-aware similarity of methods.md 1.3. Means are unit vectors (normalise first),
/// variances diagonal; β = 0 or no variances gives plain cosine.
///
///     μ_s  = μ_qᵀ μ_c
///     σ_s² = Σ_d ( μ_qd² var_cd + var_qd μ_cd² + var_qd var_cd )
///     ŝ    = μ_s / sqrt( 1 + β·(π/8)·σ_s² )
@inline(__always)
public func adjustedScore(mu: Float, sigma2: Float, beta: Float) -> Float {
    mu / (1 + beta * (Float.pi / 8) * sigma2).squareRoot()
}

/// The same formula for eight scores at once (the top-k inner loop).
@inline(__always)
public func adjustedScore(mu: SIMD8<Float>, sigma2: SIMD8<Float>, beta: Float) -> SIMD8<Float> {
    mu / (1 + beta * (Float.pi / 8) * sigma2).squareRoot()
}

/// A block of probabilistic embeddings: unit means and, optionally, variances.
public struct ProbBlock: Sendable {
    public var mean: Matrix<Float>
    public var variance: Matrix<Float>?
    public init(mean: Matrix<Float>, variance: Matrix<Float>?) {
        if let v = variance { precondition(v.rows == mean.rows && v.cols == mean.cols) }
        self.mean = mean; self.variance = variance
    }
    public var rows: Int { mean.rows }

    /// [μ∘μ, var] (rows × 2D): the query side of the σ_s² GEMM.
    func querySide() -> Matrix<Float> {
        let d = mean.cols
        var out = Matrix<Float>(rows: rows, cols: 2 * d)
        for r in 0..<rows {
            for k in 0..<d {
                let m = mean.data[r * d + k]
                out.data[r * 2 * d + k] = m * m
                out.data[r * 2 * d + d + k] = variance?.data[r * d + k] ?? 0
            }
        }
        return out
    }

    /// [var, μ∘μ + var] (rows × 2D): the corpus side of the σ_s² GEMM.
    func corpusSide() -> Matrix<Float> {
        let d = mean.cols, n = rows
        var out = Matrix<Float>(rows: n, cols: 2 * d)
        if n == 0 || d == 0 { return out }
        let zeros = variance == nil ? [Float](repeating: 0, count: n * d) : []
        out.data.withUnsafeMutableBufferPointer { po in
            mean.data.withUnsafeBufferPointer { pm in
                (variance?.data ?? zeros).withUnsafeBufferPointer { pv in
                    let o = po.baseAddress!, m = pm.baseAddress!, v = pv.baseAddress!
                    for r in 0..<n {
                        let row = o + r * 2 * d, mr = m + r * d, vr = v + r * d
                        for k in 0..<d { row[k] = vr[k]; row[d + k] = mr[k] * mr[k] + vr[k] }
                    }
                }
            }
        }
        return out
    }
}

/// Scores of every query of a block against every corpus row of a block (q.rows × c.rows),
/// by two GEMMs: μ_s = μ_q μ_cᵀ (inner D) and σ_s² = [μ_q∘μ_q, var_q]·[var_c, μ_c∘μ_c + var_c]ᵀ
/// (inner 2D), then one element-wise pass (methods.md 1.3). Plain cosine when β = 0 or
/// either side has no variance.
public func similarityMatrix(_ q: ProbBlock, _ c: ProbBlock, beta: Float) -> Matrix<Float> {
    var s = Matrix<Float>(rows: q.rows, cols: c.rows)
    similarityMatrix(q, c, beta: beta, into: &s, scratch: nil)
    return s
}

/// As `similarityMatrix`, writing into `s` (q.rows × c.rows). `corpusSide` may be passed
/// precomputed ([var_c, μ_c∘μ_c + var_c]); `querySide` likewise.
public func similarityMatrix(_ q: ProbBlock, _ c: ProbBlock, beta: Float, into s: inout Matrix<Float>,
                             scratch: inout Matrix<Float>?, querySide: Matrix<Float>? = nil,
                             corpusSide: Matrix<Float>? = nil) {
    precondition(q.mean.cols == c.mean.cols && s.rows == q.rows && s.cols == c.rows)
    gemm(q.mean, c.mean, transB: true, into: &s)
    guard beta != 0, q.variance != nil, c.variance != nil else { return }
    if scratch == nil || scratch!.rows != q.rows || scratch!.cols != c.rows {
        scratch = Matrix(rows: q.rows, cols: c.rows)
    }
    gemm(querySide ?? q.querySide(), corpusSide ?? c.corpusSide(), transB: true, into: &scratch!)
    s.data.withUnsafeMutableBufferPointer { ps in
        scratch!.data.withUnsafeBufferPointer { pv in
            for i in 0..<ps.count { ps[i] = adjustedScore(mu: ps[i], sigma2: pv[i], beta: beta) }
        }
    }
}

/// Overload without scratch reuse.
public func similarityMatrix(_ q: ProbBlock, _ c: ProbBlock, beta: Float, into s: inout Matrix<Float>,
                             scratch: Matrix<Float>?) {
    var sc = scratch
    similarityMatrix(q, c, beta: beta, into: &s, scratch: &sc)
}

/// Paired scores: row i of `a` with row i of `b` (methods.md 1.3, paired mode).
public func pairedSimilarity(_ a: ProbBlock, _ b: ProbBlock, beta: Float) -> [Float] {
    precondition(a.rows == b.rows && a.mean.cols == b.mean.cols)
    let d = a.mean.cols
    let useVar = beta != 0 && a.variance != nil && b.variance != nil
    return (0..<a.rows).map { r in
        var mu: Float = 0, s2: Float = 0
        for k in 0..<d {
            let mq = a.mean.data[r * d + k], mc = b.mean.data[r * d + k]
            mu += mq * mc
            if useVar {
                let vq = a.variance!.data[r * d + k], vc = b.variance!.data[r * d + k]
                s2 += mq * mq * vc + vq * mc * mc + vq * vc
            }
        }
        return useVar ? adjustedScore(mu: mu, sigma2: s2, beta: beta) : mu
    }
}

/// The k best corpus rows of each query, kept in bounded heaps while corpus blocks stream
/// by. Order: higher score first; equal scores go to the lower corpus index (deterministic,
/// whatever the block sizes). NaN scores are never selected.
public struct TopK: Sendable {
    public let k: Int
    public let queries: Int
    // Per query a min-heap of (score, index) whose root is the worst kept entry, in `capacity`
    // slots: min(k, corpus rows offered so far), grown as blocks arrive, so that a k larger than
    // the corpus costs memory for the corpus rows only.
    private var scores: [Float] = []
    private var indices: [Int64] = []
    private var counts: [Int]
    public private(set) var capacity = 0

    public init(queries: Int, k: Int) {
        precondition(k > 0)
        self.k = k; self.queries = queries
        counts = Array(repeating: 0, count: queries)
    }

    /// Makes room for the best min(k, rows) entries per query, before a block that brings the
    /// corpus rows offered so far to `rows`. Throws a `.resources` error when the heaps would not
    /// fit in memory.
    public mutating func reserve(rows: Int) throws {
        let want = min(k, rows)
        guard want > capacity else { return }
        let cap = min(k, max(want, capacity * 2))
        let count = try checkedProduct(queries, cap, what: "the top-\(k) heaps of \(queries) queries")
        var newS = try checkedArray(repeating: Float(0), count: count, what: "the top-\(k) heaps of \(queries) queries")
        var newI = try checkedArray(repeating: Int64(0), count: count, what: "the top-\(k) heaps of \(queries) queries")
        for q in 0..<queries {
            for j in 0..<counts[q] {
                newS[q * cap + j] = scores[q * capacity + j]
                newI[q * cap + j] = indices[q * capacity + j]
            }
        }
        scores = newS; indices = newI; capacity = cap
    }

    /// True when (s1, i1) ranks below (s2, i2).
    @inline(__always)
    static func worse(_ s1: Float, _ i1: Int64, _ s2: Float, _ i2: Int64) -> Bool {
        s1 < s2 || (s1 == s2 && i1 > i2)
    }

    /// Adds (s, idx) to the heap of `n` entries at (hs, hi) (sift up); room for n + 1 is there.
    @inline(__always)
    static func push(_ hs: UnsafeMutablePointer<Float>, _ hi: UnsafeMutablePointer<Int64>, count n: Int, _ s: Float, _ idx: Int64) {
        var c = n
        while c > 0 {
            let p = (c - 1) / 2
            if TopK.worse(s, idx, hs[p], hi[p]) { hs[c] = hs[p]; hi[c] = hi[p]; c = p } else { break }
        }
        hs[c] = s; hi[c] = idx
    }

    /// Replaces the root of the full heap of `k` entries at (hs, hi) by (s, idx) (sift down).
    @inline(__always)
    static func replaceRoot(_ hs: UnsafeMutablePointer<Float>, _ hi: UnsafeMutablePointer<Int64>, count k: Int, _ s: Float, _ idx: Int64) {
        var c = 0
        while true {
            let l = 2 * c + 1
            if l >= k { break }
            var w = l
            if l + 1 < k && TopK.worse(hs[l + 1], hi[l + 1], hs[l], hi[l]) { w = l + 1 }
            if TopK.worse(hs[w], hi[w], s, idx) { hs[c] = hs[w]; hi[c] = hi[w]; c = w } else { break }
        }
        hs[c] = s; hi[c] = idx
    }

    /// Entries kept for query q.
    func count(_ q: Int) -> Int { counts[q] }

    /// The worst kept score of query q (its heap's root); only when count(q) > 0.
    func worst(_ q: Int) -> Float { scores[q * capacity] }

    /// Offers one (score, corpus row) to query q's heap, the row past every row offered before;
    /// true when it was kept. After `reserve(rows:)` covering the row.
    @discardableResult
    mutating func offer(_ q: Int, _ s: Float, _ idx: Int64) -> Bool {
        if s.isNaN { return false }
        let n = counts[q], base = q * capacity, k = self.k
        if n < k {
            scores.withUnsafeMutableBufferPointer { hs in
                indices.withUnsafeMutableBufferPointer { hi in TopK.push(hs.baseAddress! + base, hi.baseAddress! + base, count: n, s, idx) }
            }
            counts[q] = n + 1
            return true
        }
        guard s > scores[base] else { return false }
        scores.withUnsafeMutableBufferPointer { hs in
            indices.withUnsafeMutableBufferPointer { hi in TopK.replaceRoot(hs.baseAddress! + base, hi.baseAddress! + base, count: k, s, idx) }
        }
        return true
    }

    /// Offers a block of scores (queries × block.cols) whose column j is corpus row offset + j;
    /// blocks in increasing corpus order.
    public mutating func add(_ block: Matrix<Float>, offset: Int) throws {
        precondition(block.rows == queries)
        try reserve(rows: offset + block.cols)
        block.data.withUnsafeBufferPointer { add($0.baseAddress!, cols: block.cols, offset: offset) }
    }

    /// Offers `queries` rows of `cols` scores starting at `pb` (row-major). Blocks must come in
    /// increasing corpus order (each offset past the previous block), as a streamed corpus does,
    /// after `reserve(rows: offset + cols)`.
    public mutating func add(_ pb: UnsafePointer<Float>, cols m: Int, offset: Int) {
        add(pb, cols: m, offset: offset, sigma2: nil, topOne: nil)
    }

    /// As `add(_:cols:offset:)`, also updating `topOne` (this heap's queries' top-1 trackers:
    /// score, corpus row, σ_s² of that pair, from `sigma2`, laid out like the scores) in the same
    /// pass.
    ///
    /// Once a query's heap is full, a block's scores are compared eight at a time with the heap's
    /// worst kept score (csearch_next_above) and only those above it reach the heap: a later corpus
    /// row ranks below an equal score, so "strictly above the root" is exactly the heap's own test,
    /// and NaN never passes. A new top-1 always enters the heap, so the trackers see it.
    public mutating func add(_ pb: UnsafePointer<Float>, cols m: Int, offset: Int, sigma2 pv: UnsafePointer<Float>?,
                             topOne: TopOneSlots?) {
        precondition(topOne == nil || pv != nil)
        offerRows(cols: m, columns: 0 ..< m, offset: offset, topOne: topOne) { q in PlainScores(row: pb + q * m, sigma2: pv.map { $0 + q * m }) }
    }

    /// As `add(_:cols:offset:sigma2:topOne:)` on the adjusted scores ŝ = adjustedScore(μ, σ², β)
    /// of the means `pb`, σ_s² of a pair being `sigma2(querySide row, corpusSide row)`: the
    /// queries' σ² sides at `qSide` and the block's corpus sides at `cSide`, `width` (2D) floats
    /// each. σ_s² and ŝ are computed only where ŝ can enter the heap when `candidatesOnly` (the
    /// caller's promise that β ≥ 0 and every σ_s² ≥ 0): ŝ lies between 0 and μ then, so once the
    /// heap's worst kept score t is ≥ 0, a μ ≤ t gives ŝ ≤ t, which the heap refuses anyway, and
    /// only the μ above t (found eight at a time) are adjusted and offered; while t < 0 every
    /// column is (a μ ≤ 0 gives μ ≤ ŝ ≤ 0). Without that promise every score is adjusted in
    /// place first (the means overwritten by ŝ). Either way the same heaps, to the last bit, as
    /// adjusting every score (σ_s² is the same function of the same two rows wherever it is
    /// computed).
    public mutating func addPenalised(_ pb: UnsafeMutablePointer<Float>, cols m: Int, offset: Int,
                                      querySide qSide: UnsafePointer<Float>, corpusSide cSide: UnsafePointer<Float>, width: Int,
                                      beta: Float, candidatesOnly: Bool, topOne: TopOneSlots?) {
        precondition(!candidatesOnly || beta >= 0)
        // Every query against a piece of the corpus sides that stays in the L2 cache (~256 kB),
        // then the next piece: a candidate's σ_s² then reads its corpus side from the cache, not
        // from memory (3 kB a row at D = 384; 4× the time of the whole search with large
        // variances, where many pairs are candidates). Each query's columns in order as before.
        let step = max(16, (1 << 16) / max(1, width))
        for p in stride(from: 0, to: max(m, 1), by: step) {
            let columns = p ..< min(p + step, m)
            offerRows(cols: m, columns: columns, offset: offset, topOne: topOne) { q in
                PenalisedScores(mean: pb + q * m, columns: columns, querySide: qSide + q * width, corpusSide: cSide, width: width,
                                beta: beta, candidatesOnly: candidatesOnly)
            }
        }
    }

    /// The one loop of `add` and `addPenalised`: per query, its row's scores (`scores(q)`) fill
    /// the heap, then only the candidates the row names (those that can beat the worst kept
    /// score) are offered; the top-1 trackers follow when there are variances (σ_s² of a new
    /// best from the row). Only the `columns` of the rows are read, in order.
    @inline(__always)
    private mutating func offerRows<S: RowScores>(cols m: Int, columns: Range<Int>, offset: Int,
                                                  topOne: TopOneSlots?, _ scoresOf: (Int) -> S) {
        let first = columns.lowerBound, end = columns.upperBound
        let k = self.k, cap = capacity
        precondition(cap >= min(k, offset + m), "TopK.add: reserve(rows:) first")
        scores.withUnsafeMutableBufferPointer { hs in
            indices.withUnsafeMutableBufferPointer { hi in
                for q in 0..<queries {
                    let base = q * cap
                    let row = scoresOf(q)
                    var n = counts[q]
                    var best: Float = 0, bestIndex: Int64 = 0, bestVar: Float = 0
                    if let t = topOne { best = t.best[q]; bestIndex = t.index[q]; bestVar = t.sigma2[q] }
                    var j = first
                    // Filling: every score goes in (sift up).
                    while n < k && j < end {
                        let s = row.score(j)
                        if !s.isNaN {
                            let idx = Int64(offset + j)
                            TopK.push(hs.baseAddress! + base, hi.baseAddress! + base, count: n, s, idx)
                            n += 1
                            if topOne != nil, bestIndex < 0 || s > best { best = s; bestIndex = idx; bestVar = row.sigma2(j) }
                        }
                        j += 1
                    }
                    if n == k {
                        // Full: only scores above the root go in (replace the root, sift down).
                        var threshold = hs[base]
                        while true {
                            j = row.nextCandidate(from: j, count: end, threshold: threshold)
                            if j >= end { break }
                            let s = row.score(j)
                            if s > threshold {
                                let idx = Int64(offset + j)
                                TopK.replaceRoot(hs.baseAddress! + base, hi.baseAddress! + base, count: k, s, idx)
                                threshold = hs[base]
                                if topOne != nil, s > best { best = s; bestIndex = idx; bestVar = row.sigma2(j) }
                            }
                            j += 1
                        }
                    }
                    counts[q] = n
                    if let t = topOne { t.best[q] = best; t.index[q] = bestIndex; t.sigma2[q] = bestVar }
                }
            }
        }
    }

    /// Results sorted best first, `width` columns per query (width ≤ k); slots never filled
    /// (a corpus smaller than k) get index −1 and score −∞.
    public func results(width: Int? = nil) -> (scores: [Float], indices: [Int64]) {
        let w = width ?? k
        var outS = [Float](repeating: -.infinity, count: queries * w)
        var outI = [Int64](repeating: -1, count: queries * w)
        for q in 0..<queries {
            let n = counts[q]
            var entries = (0..<n).map { (scores[q * capacity + $0], indices[q * capacity + $0]) }
            entries.sort { TopK.worse($1.0, $1.1, $0.0, $0.1) }
            for j in 0..<min(n, w) { outS[q * w + j] = entries[j].0; outI[q * w + j] = entries[j].1 }
        }
        return (outS, outI)
    }
}

/// A corpus block ready for `BlockTopK`: unit means and, when σ_s² applies, its corpus side
/// [var, μ∘μ + var] (the variances themselves are not kept). What a decoded corpus kept in
/// memory between blocks of queries is made of.
public struct CorpusBlock: Sendable {
    public let mean: Matrix<Float>
    public let side: Matrix<Float>?
    /// Whether every variance is ≥ 0 (not NaN): σ_s² ≥ 0 then, which lets `BlockTopK` adjust
    /// only the scores that can enter a heap (`TopK.addPenalised`).
    public let varianceNonNegative: Bool
    /// The integer codes of the means, for the reduced-precision search (ReducedPrecision.swift).
    public let codes: IntegerCodes?
    public var rows: Int { mean.rows }

    /// `withSide`: keep the σ_s² side (β ≠ 0 and the queries have variances); a block without
    /// variances has none. `codes`: quantise the means for `ReducedTopK` of that precision.
    public init(_ c: ProbBlock, withSide: Bool, codes precision: CodePrecision? = nil) {
        mean = c.mean
        side = withSide && c.variance != nil ? c.corpusSide() : nil
        varianceNonNegative = side != nil && c.variance!.data.allSatisfy { $0 >= 0 }
        codes = precision.map { IntegerCodes(c.mean, precision: $0, packed: true) }
    }

    /// Bytes held.
    public var bytes: Int { (mean.data.count + (side?.data.count ?? 0)) * MemoryLayout<Float>.size + (codes?.bytes ?? 0) }
}

/// Bounded top-k retrieval of one block of queries over corpus blocks that arrive one by one
/// (methods.md 1.3). Per corpus block and per tile of at most `tileRows` queries, each chunk of
/// `chunkRows` queries on one of `threads` threads: the GEMM of the means, μ_s (OpenBLAS on one
/// thread), then the threshold test and the heap updates in one pass. With variances, σ_s² and
/// ŝ are computed only for the pairs that can enter a heap (ŝ ≤ μ_s when β ≥ 0 and σ_s² ≥ 0),
/// each from its two σ² sides (`sigma2(querySide:corpusSide:width:)`): on real embeddings a
/// few hundred pairs per query in a corpus of 10⁵, where the GEMM of inner dimension 2D that
/// gave σ_s² for every pair cost twice the means' GEMM. Memory: the score buffer of one tile ×
/// one corpus block, reused, the queries' σ² side and the heaps.
public final class BlockTopK {
    public let queries: ProbBlock
    public let beta: Float
    public let k: Int
    private let tiles: [Range<Int>]
    /// Per tile, its chunks of queries (global query rows), one heap each.
    private let chunks: [[Range<Int>]]
    private var tops: [[TopK]]
    private let threads: Int
    private let pieceCols: Int
    private var s = Matrix<Float>(rows: 0, cols: 0)
    private let querySide: Matrix<Float>?
    private let queryVarianceNonNegative: Bool
    /// Corpus rows seen so far.
    public private(set) var corpusRows = 0
    /// The top-1 pair's σ_s² per query (RetrievalConfidence.swift); nil unless both sides have
    /// variances and β ≠ 0.
    public private(set) var topOne: TopOneVariance?

    /// The default number of queries per tile (scored against a corpus block before the next
    /// tile): it bounds the score buffers, not the GEMMs' shapes, which are the chunks'.
    public static let defaultTileRows = 2048

    /// - Parameters: chunkRows, pieceCols: queries and corpus rows per GEMM (`queryChunkRows`,
    ///   `corpusPieceRows`; smaller in tests).
    public init(queries: ProbBlock, k: Int, beta: Float, threads: Int, tileRows: Int = BlockTopK.defaultTileRows,
                chunkRows: Int = queryChunkRows, pieceCols: Int = corpusPieceRows) {
        precondition(tileRows > 0 && chunkRows > 0 && pieceCols > 0)
        self.pieceCols = pieceCols
        self.queries = queries; self.k = k; self.beta = beta; self.threads = max(1, threads)
        let n = queries.rows
        (tiles, chunks) = queryTiles(n, tileRows: tileRows, chunkRows: chunkRows)
        tops = chunks.map { $0.map { TopK(queries: $0.count, k: k) } }
        querySide = beta != 0 && queries.variance != nil ? queries.querySide() : nil
        queryVarianceNonNegative = querySide != nil && queries.variance!.data.allSatisfy { $0 >= 0 }
        topOne = querySide != nil ? TopOneVariance(queries: n) : nil
    }

    /// Bytes a block of `queries` rows of dimension `d` costs here beside the heaps: the σ² side
    /// when `variances`, and the score buffer of one tile against `corpusBlock` rows.
    public static func workBytes(queries: Int, d: Int, corpusBlock: Int, variances: Bool,
                                 tileRows: Int = BlockTopK.defaultTileRows) -> Int {
        let tile = min(queries, tileRows)
        let perQuery = variances ? 2 * d + 3 : 0
        return MemoryLayout<Float>.size * (queries * perQuery + tile * corpusBlock)
    }

    /// Scores the queries against the next corpus block (rows corpusRows ..< corpusRows + c.rows).
    public func add(_ c: ProbBlock) throws {
        try add(CorpusBlock(c, withSide: querySide != nil))
    }

    /// Scores the queries against the next prepared corpus block.
    public func add(_ c: CorpusBlock) throws {
        let m = c.rows, d = queries.mean.cols
        precondition(c.mean.cols == d)
        for t in tops.indices { for i in tops[t].indices { try tops[t][i].reserve(rows: corpusRows + m) } }
        let penalise = querySide != nil && c.side != nil
        if !penalise { topOne = nil }
        let tileMax = tiles.map(\.count).max() ?? 0
        if s.data.count < tileMax * m { s = Matrix(rows: tileMax, cols: m) }
        let offset = corpusRows, beta = self.beta
        // The scores of a chunk of queries against a piece of the corpus block are one GEMM on one
        // thread (OpenBLAS on one thread): chunks and pieces are cut at fixed rows and columns,
        // so the scores are the same to the last bit on any number of threads (OpenBLAS's own
        // threads, and its rounding, depend on how it splits the work). With a chunk per thread
        // or more, each thread multiplies its chunks and selects from their scores at once: no
        // OpenBLAS workers spinning between GEMM and selection (they took 7–10 % of the CPU,
        // perf), and the decoding thread gets a core whenever a chunk is done. With fewer chunks
        // than threads (few queries), the pieces' GEMMs run in parallel first, then the selection.
        let pieces = stride(from: 0, to: max(m, 1), by: pieceCols).map { $0 ..< min($0 + pieceCols, m) }
        // σ_s² ≥ 0 and β ≥ 0: only the scores that can enter a heap need σ_s² and the penalty.
        let onlyCandidates = penalise && beta >= 0 && queryVarianceNonNegative && c.varianceNonNegative
        BLASThreading.singleThreaded {
            for (t, tile) in tiles.enumerated() where !tile.isEmpty {
                let tileChunks = chunks[t]
                s.data.withUnsafeMutableBufferPointer { ps in
                    tops[t].withUnsafeMutableBufferPointer { pt in
                        queries.mean.data.withUnsafeBufferPointer { pq in
                            c.mean.data.withUnsafeBufferPointer { pc in
                                withTopOneSlots(penalise ? topOne : nil) { one in
                                withBase(penalise ? querySide : nil) { qSide in
                                withBase(penalise ? c.side : nil) { cSide in
                                    let box = Pointers(s: ps.baseAddress!, tops: pt.baseAddress!, one: one,
                                                       q: pq.baseAddress!, c: pc.baseAddress!, qSide: qSide, cSide: cSide)
                                    @Sendable func multiply(_ i: Int, _ p: Range<Int>) {
                                        let r = tileChunks[i], at = (r.lowerBound - tile.lowerBound) * m + p.lowerBound
                                        Float.gemm(false, true, r.count, p.count, d, 1, box.q + r.lowerBound * d, d,
                                                   box.c + p.lowerBound * d, d, 0, box.s + at, m)
                                    }
                                    @Sendable func select(_ i: Int) {
                                        let r = tileChunks[i], first = (r.lowerBound - tile.lowerBound) * m
                                        if let qSide = box.qSide, let cSide = box.cSide {
                                            box.tops[i].addPenalised(box.s + first, cols: m, offset: offset,
                                                                     querySide: qSide + r.lowerBound * 2 * d, corpusSide: cSide, width: 2 * d,
                                                                     beta: beta, candidatesOnly: onlyCandidates,
                                                                     topOne: box.one?.advanced(by: r.lowerBound))
                                        } else {
                                            box.tops[i].add(box.s + first, cols: m, offset: offset, sigma2: nil, topOne: nil)
                                        }
                                    }
                                    if tileChunks.count >= threads {
                                        onChunks(tileChunks.count, threads: threads) { i in
                                            for p in pieces { multiply(i, p) }
                                            select(i)
                                        }
                                    } else {
                                        onChunks(tileChunks.count * pieces.count, threads: threads) { w in
                                            multiply(w / pieces.count, pieces[w % pieces.count])
                                        }
                                        onChunks(tileChunks.count, threads: threads) { select($0) }
                                    }
                                }}}
                            }
                        }
                    }
                }
            }
        }
        corpusRows += m
    }

    /// The results, best first, `width` (≤ k) columns per query, in query order.
    public func results(width: Int? = nil) -> (scores: [Float], indices: [Int64]) {
        joinedResults(tops, width: width)
    }
}

/// Queries per chunk: a chunk is the unit of work of one thread (its GEMMs, its heaps). Chunks are
/// cut at fixed rows, so that the GEMMs, and hence the scores to the last bit, are the same
/// whatever the number of threads.
public let queryChunkRows = 1024

/// Corpus rows per GEMM (a piece of a corpus block), fixed for the same reason.
public let corpusPieceRows = 2048

/// Tiles of at most `tileRows` of n queries, and per tile its chunks of at most `chunkRows`
/// queries (cut from the tile's start).
func queryTiles(_ n: Int, tileRows: Int, chunkRows: Int = queryChunkRows) -> ([Range<Int>], [[Range<Int>]]) {
    let tiles = stride(from: 0, to: max(n, 1), by: tileRows).map { $0 ..< min($0 + tileRows, n) }
    let chunks = tiles.map { tile in
        stride(from: tile.lowerBound, to: max(tile.upperBound, tile.lowerBound + 1), by: chunkRows)
            .map { $0 ..< min($0 + chunkRows, tile.upperBound) }
    }
    return (tiles, chunks)
}

/// The results of heaps over consecutive queries, in query order.
func joinedResults(_ tops: [[TopK]], width: Int?) -> (scores: [Float], indices: [Int64]) {
    var outS: [Float] = [], outI: [Int64] = []
    for t in tops.joined() {
        let r = t.results(width: width)
        outS += r.scores; outI += r.indices
    }
    return (outS, outI)
}

/// The first index in from..<count whose score is above `threshold` (NaN never is), or `count`.
@inline(__always)
func nextAbove(_ s: UnsafePointer<Float>, from: Int, count: Int, threshold: Float) -> Int {
    csearch_next_above(s, from, count, threshold)
}

/// ŝ = adjustedScore(μ, σ²) in place of the `count` scores μ at `s`, eight at a time: every score
/// adjusted, the reference the tests hold `TopK.addPenalised` to.
@inline(__always)
func penalty(_ s: UnsafeMutablePointer<Float>, _ v: UnsafePointer<Float>, count: Int, beta: Float) {
    var j = 0
    while j + 8 <= count {
        let mu = UnsafeRawPointer(s + j).loadUnaligned(as: SIMD8<Float>.self)
        let s2 = UnsafeRawPointer(v + j).loadUnaligned(as: SIMD8<Float>.self)
        UnsafeMutableRawPointer(s + j).storeBytes(of: adjustedScore(mu: mu, sigma2: s2, beta: beta), as: SIMD8<Float>.self)
        j += 8
    }
    while j < count { s[j] = adjustedScore(mu: s[j], sigma2: v[j], beta: beta); j += 1 }
}

/// Raw pointers handed to the worker threads; every thread touches disjoint rows and heaps.
private struct Pointers: @unchecked Sendable {
    let s: UnsafeMutablePointer<Float>
    let tops: UnsafeMutablePointer<TopK>
    let one: TopOneSlots?
    /// The GEMM's operands, query and corpus means, and the σ² sides when penalising.
    let q: UnsafePointer<Float>, c: UnsafePointer<Float>
    let qSide: UnsafePointer<Float>?, cSide: UnsafePointer<Float>?
}

/// `body` with the address of a matrix's values, or nil for no matrix.
private func withBase<R>(_ m: Matrix<Float>?, _ body: (UnsafePointer<Float>?) -> R) -> R {
    guard let m else { return body(nil) }
    return m.data.withUnsafeBufferPointer { body($0.baseAddress) }
}

/// Merges the top-k lists of the same queries against disjoint parts of a corpus (shards whose
/// indices are already global) into the top-k against the whole corpus: per query, the K best
/// candidates by score, ties to the lower corpus row (the order `TopK` keeps), so the result equals
/// a single run over the whole corpus.
/// - Parameters: `lists` holds, per shard, (scores, indices, width) of `queries` rows each.
public func mergeTopK(_ lists: [(scores: [Float], indices: [Int64], width: Int)], queries: Int, k: Int)
    -> (scores: [Float], indices: [Int64]) {
    var scores: [Float] = [], indices: [Int64] = []
    scores.reserveCapacity(queries * k)
    indices.reserveCapacity(queries * k)
    var candidates: [(Float, Int64)] = []
    for q in 0..<queries {
        candidates.removeAll(keepingCapacity: true)
        for l in lists {
            for j in 0..<l.width {
                let s = l.scores[q * l.width + j]
                if !s.isNaN { candidates.append((s, l.indices[q * l.width + j])) }
            }
        }
        candidates.sort { TopK.worse($1.0, $1.1, $0.0, $0.1) }
        for j in 0..<k {
            if j < candidates.count { scores.append(candidates[j].0); indices.append(candidates[j].1) }
            else { scores.append(-.infinity); indices.append(-1) }
        }
    }
    return (scores, indices)
}

/// A query's row of scores as `TopK`'s loop reads it: the score at j, σ_s² at j (for the top-1
/// tracker), and past j the first candidate that can beat a heap whose worst kept score is
/// `threshold` (the rest cannot).
protocol RowScores {
    func score(_ j: Int) -> Float
    func sigma2(_ j: Int) -> Float
    func nextCandidate(from j: Int, count: Int, threshold: Float) -> Int
}

/// Plain scores (and σ_s² beside them, when the caller has them): a candidate is a score above
/// the threshold.
struct PlainScores: RowScores {
    let row: UnsafePointer<Float>
    let sigma2s: UnsafePointer<Float>?
    init(row: UnsafePointer<Float>, sigma2: UnsafePointer<Float>?) { self.row = row; sigma2s = sigma2 }
    @inline(__always) func score(_ j: Int) -> Float { row[j] }
    @inline(__always) func sigma2(_ j: Int) -> Float { sigma2s![j] }
    @inline(__always) func nextCandidate(from j: Int, count: Int, threshold: Float) -> Int {
        nextAbove(row, from: j, count: count, threshold: threshold)
    }
}

/// σ_s² of a pair from its two σ² sides, [μ_q∘μ_q, var_q] and [var_c, μ_c∘μ_c + var_c]
/// (`width` = 2D floats each): one fixed order of operations (csearch_dot32), so the same bits
/// wherever and on whatever CPU it is computed.
@inline(__always)
public func sigma2(querySide q: UnsafePointer<Float>, corpusSide c: UnsafePointer<Float>, width: Int) -> Float {
    csearch_dot32(q, c, width)
}

/// Adjusted scores ŝ = adjustedScore(μ, σ_s², β), σ_s² computed from the pair's σ² sides where it
/// is needed. With `candidatesOnly` (β ≥ 0 and σ_s² ≥ 0), ŝ lies between 0 and μ, so with a
/// threshold ≥ 0 only a μ above it is a candidate (ŝ is computed there alone); with a threshold
/// < 0 every column is one (a μ ≤ 0 gives μ ≤ ŝ ≤ 0), which lasts only until the heap holds k
/// positive scores, usually a few dozen columns into the corpus. Without `candidatesOnly`, the
/// columns to be read are adjusted in place at once.
struct PenalisedScores: RowScores {
    let mean: UnsafeMutablePointer<Float>
    let querySide: UnsafePointer<Float>, corpusSide: UnsafePointer<Float>, width: Int, beta: Float
    /// Whether `mean` holds ŝ (every column adjusted in place at the start).
    let adjusted: Bool

    /// `columns`: the part of the row that will be read (adjusted at once without `candidatesOnly`).
    init(mean: UnsafeMutablePointer<Float>, columns: Range<Int>, querySide: UnsafePointer<Float>, corpusSide: UnsafePointer<Float>,
         width: Int, beta: Float, candidatesOnly: Bool) {
        self.mean = mean; self.querySide = querySide; self.corpusSide = corpusSide; self.width = width; self.beta = beta
        adjusted = !candidatesOnly
        if adjusted {
            for j in columns { mean[j] = adjustedScore(mu: mean[j], sigma2: sigma2(j), beta: beta) }
        }
    }

    @inline(__always) func sigma2(_ j: Int) -> Float {
        UEC.sigma2(querySide: querySide, corpusSide: corpusSide + j * width, width: width)
    }
    @inline(__always) func score(_ j: Int) -> Float {
        adjusted ? mean[j] : adjustedScore(mu: mean[j], sigma2: sigma2(j), beta: beta)
    }
    @inline(__always) func nextCandidate(from j: Int, count: Int, threshold: Float) -> Int {
        adjusted || threshold >= 0 ? nextAbove(mean, from: j, count: count, threshold: threshold) : j
    }
}

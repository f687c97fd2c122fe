import Dispatch
import Failure
import LinearAlgebra

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
        let d = mean.cols
        var out = Matrix<Float>(rows: rows, cols: 2 * d)
        for r in 0..<rows {
            for k in 0..<d {
                let m = mean.data[r * d + k], v = variance?.data[r * d + k] ?? 0
                out.data[r * 2 * d + k] = v
                out.data[r * 2 * d + d + k] = m * m + v
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
        let k = self.k, cap = capacity
        precondition(cap >= min(k, offset + m), "TopK.add: reserve(rows:) first")
        scores.withUnsafeMutableBufferPointer { hs in
            indices.withUnsafeMutableBufferPointer { hi in
                for q in 0..<queries {
                    let base = q * cap
                    var n = counts[q]
                    let row = q * m
                    for j in 0..<m {
                        let s = pb[row + j]
                        if s.isNaN { continue }
                        let idx = Int64(offset + j)
                        if n < k {
                            // sift up
                            var c = n
                            n += 1
                            while c > 0 {
                                let p = (c - 1) / 2
                                if TopK.worse(s, idx, hs[base + p], hi[base + p]) {
                                    hs[base + c] = hs[base + p]; hi[base + c] = hi[base + p]; c = p
                                } else { break }
                            }
                            hs[base + c] = s; hi[base + c] = idx
                        } else if TopK.worse(hs[base], hi[base], s, idx) {
                            // replace the root, sift down
                            var c = 0
                            while true {
                                let l = 2 * c + 1
                                if l >= k { break }
                                var w = l
                                if l + 1 < k && TopK.worse(hs[base + l + 1], hi[base + l + 1], hs[base + l], hi[base + l]) { w = l + 1 }
                                if TopK.worse(hs[base + w], hi[base + w], s, idx) {
                                    hs[base + c] = hs[base + w]; hi[base + c] = hi[base + w]; c = w
                                } else { break }
                            }
                            hs[base + c] = s; hi[base + c] = idx
                        }
                    }
                    counts[q] = n
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

/// Bounded top-k retrieval of one block of queries over corpus blocks that arrive one by one
/// (methods.md 1.3): per corpus block, the two GEMMs (threaded by BLAS), then the element-wise
/// penalty and the heap updates in parallel over `threads` chunks of queries. Memory: the
/// score and σ² buffers of one query block × one corpus block, reused, and the heaps.
public final class BlockTopK {
    public let queries: ProbBlock
    public let beta: Float
    public let k: Int
    private let chunks: [Range<Int>]
    private var tops: [TopK]
    private var s = Matrix<Float>(rows: 0, cols: 0)
    private var s2 = Matrix<Float>(rows: 0, cols: 0)
    private let querySide: Matrix<Float>?
    /// Corpus rows seen so far.
    public private(set) var corpusRows = 0
    /// The top-1 pair's σ_s² per query (RetrievalConfidence.swift); nil unless both sides have
    /// variances and β ≠ 0.
    public private(set) var topOne: TopOneVariance?

    public init(queries: ProbBlock, k: Int, beta: Float, threads: Int) {
        self.queries = queries; self.k = k; self.beta = beta
        let n = queries.rows, t = max(1, min(threads, n))
        chunks = (0..<t).map { i in (i * n / t) ..< ((i + 1) * n / t) }
        tops = chunks.map { TopK(queries: $0.count, k: k) }
        querySide = beta != 0 && queries.variance != nil ? queries.querySide() : nil
        topOne = querySide != nil ? TopOneVariance(queries: n) : nil
    }

    /// Scores the queries against the next corpus block (rows corpusRows ..< corpusRows + c.rows).
    public func add(_ c: ProbBlock) throws {
        let nq = queries.rows, m = c.rows
        for i in tops.indices { try tops[i].reserve(rows: corpusRows + m) }
        if s.rows != nq || s.cols != m { s = Matrix(rows: nq, cols: m) }
        gemm(queries.mean, c.mean, transB: true, into: &s)
        let penalise = querySide != nil && c.variance != nil
        if penalise {
            if s2.rows != nq || s2.cols != m { s2 = Matrix(rows: nq, cols: m) }
            gemm(querySide!, c.corpusSide(), transB: true, into: &s2)
        }
        let offset = corpusRows, beta = self.beta
        let chunks = self.chunks
        s.data.withUnsafeMutableBufferPointer { ps in
            s2.data.withUnsafeBufferPointer { pv in
                tops.withUnsafeMutableBufferPointer { pt in
                    let box = Pointers(s: ps.baseAddress!, v: pv.baseAddress, tops: pt.baseAddress!)
                    DispatchQueue.concurrentPerform(iterations: chunks.count) { i in
                        let r = chunks[i]
                        let start = r.lowerBound * m, count = r.count * m
                        if penalise, let v = box.v {
                            var j = start
                            let end = start + count
                            while j + 8 <= end {
                                let mu = UnsafeRawPointer(box.s + j).loadUnaligned(as: SIMD8<Float>.self)
                                let s2 = UnsafeRawPointer(v + j).loadUnaligned(as: SIMD8<Float>.self)
                                UnsafeMutableRawPointer(box.s + j).storeBytes(of: adjustedScore(mu: mu, sigma2: s2, beta: beta),
                                                                             as: SIMD8<Float>.self)
                                j += 8
                            }
                            while j < end { box.s[j] = adjustedScore(mu: box.s[j], sigma2: v[j], beta: beta); j += 1 }
                        }
                        box.tops[i].add(UnsafePointer(box.s + start), cols: m, offset: offset)
                    }
                }
            }
        }
        if penalise, let t = topOne {
            s.data.withUnsafeBufferPointer { ps in
                s2.data.withUnsafeBufferPointer { t.add(scores: ps.baseAddress!, sigma2: $0.baseAddress!, cols: m, offset: offset, chunks: chunks) }
            }
        } else {
            topOne = nil
        }
        corpusRows += m
    }

    /// The results, best first, `width` (≤ k) columns per query, in query order.
    public func results(width: Int? = nil) -> (scores: [Float], indices: [Int64]) {
        var outS: [Float] = [], outI: [Int64] = []
        for t in tops {
            let r = t.results(width: width)
            outS += r.scores; outI += r.indices
        }
        return (outS, outI)
    }
}

/// Raw pointers handed to the worker threads; every thread touches disjoint rows and heaps.
private struct Pointers: @unchecked Sendable {
    let s: UnsafeMutablePointer<Float>
    let v: UnsafePointer<Float>?
    let tops: UnsafeMutablePointer<TopK>
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

import Dispatch

// Per-query confidence of a top-k list: numbers that say whether a query's top hit is to be
// trusted, cheap enough to write beside every result.
//
//   margin      the best score minus the second best. On BBC titles → bodies it predicts a missed
//               top hit at AUROC ≈ 0.9, where the posterior's trace does not (issue 13).
//   top-1 σ     σ_s = sqrt(σ_s²) of the top-1 pair (methods.md 1.3): how uncertain the top score
//               itself is under the probabilistic embeddings.

/// The margin of each query's list (`width` scores per query, best first): scores[0] − scores[1],
/// NaN when the query has fewer than two hits (index −1 in either slot) or `width` < 2.
public func topKMargins(scores: [Float], indices: [Int64], width: Int) -> [Float] {
    precondition(width >= 0 && scores.count == indices.count && (width == 0 || scores.count % width == 0))
    guard width > 0 else { return [] }
    let n = scores.count / width
    guard width >= 2 else { return Array(repeating: .nan, count: n) }
    return (0..<n).map { q in
        let b = q * width
        guard indices[b] >= 0, indices[b + 1] >= 0 else { return .nan }
        return scores[b] - scores[b + 1]
    }
}

/// Tracks, per query, the top-1 corpus row in `TopK`'s order (higher score first, ties to the
/// lower corpus row, NaN never selected) together with the σ_s² of that pair, while corpus blocks
/// stream by. It runs beside the heaps: one more pass over the block's scores, in parallel over
/// the same chunks of queries.
public final class TopOneVariance {
    public let queries: Int
    /// Per query, the best score so far (−∞ before any).
    public private(set) var best: [Float]
    /// Per query, the corpus row of `best` (−1 before any).
    public private(set) var index: [Int64]
    /// Per query, σ_s² of the pair (query, `index`) (NaN before any).
    public private(set) var sigma2: [Float]

    public init(queries: Int) {
        self.queries = queries
        best = Array(repeating: -.infinity, count: queries)
        index = Array(repeating: -1, count: queries)
        sigma2 = Array(repeating: .nan, count: queries)
    }

    /// Offers a block: `scores` and `sigma2` are queries × `m` (row-major), column j being corpus
    /// row `offset + j`; blocks in increasing corpus order. `chunks` split the queries for threads.
    public func add(scores: UnsafePointer<Float>, sigma2 v: UnsafePointer<Float>, cols m: Int, offset: Int,
                    chunks: [Range<Int>]) {
        best.withUnsafeMutableBufferPointer { pb in
            index.withUnsafeMutableBufferPointer { pi in
                sigma2.withUnsafeMutableBufferPointer { ps in
                    let box = TopOnePointers(scores: scores, v: v, best: pb.baseAddress!, index: pi.baseAddress!,
                                             sigma2: ps.baseAddress!)
                    DispatchQueue.concurrentPerform(iterations: chunks.count) { c in
                        for q in chunks[c] {
                            var b = box.best[q], bi = box.index[q], bv = box.sigma2[q]
                            let row = q * m
                            for j in 0..<m {
                                let s = box.scores[row + j]
                                // Strictly better: a later (higher) corpus row never wins a tie.
                                if !s.isNaN && (bi < 0 || s > b) { b = s; bi = Int64(offset + j); bv = box.v[row + j] }
                            }
                            box.best[q] = b; box.index[q] = bi; box.sigma2[q] = bv
                        }
                    }
                }
            }
        }
    }

    /// σ_s of each query's top-1 pair (NaN for a query without a hit).
    public var sigma: [Float] { sigma2.map { $0.squareRoot() } }
}

/// Raw pointers handed to the worker threads; every thread touches disjoint queries.
private struct TopOnePointers: @unchecked Sendable {
    let scores: UnsafePointer<Float>
    let v: UnsafePointer<Float>
    let best: UnsafeMutablePointer<Float>
    let index: UnsafeMutablePointer<Int64>
    let sigma2: UnsafeMutablePointer<Float>
}

/// The top-1 σ after `mergeTopK`: the merged top-1 is the best of the shards' top-1s (in
/// `TopK`'s order), so its σ is the one that shard reported. `sigmas[s]` holds shard s's σ per
/// query; NaN for a query no shard has a hit for.
public func mergeTopOneSigma(_ lists: [(scores: [Float], indices: [Int64], width: Int)], sigmas: [[Float]],
                             queries: Int) -> [Float] {
    precondition(lists.count == sigmas.count)
    return (0..<queries).map { q in
        var best: (s: Float, i: Int64, sigma: Float)? = nil
        for (l, sig) in zip(lists, sigmas) where l.width > 0 {
            let s = l.scores[q * l.width], i = l.indices[q * l.width]
            guard i >= 0, !s.isNaN else { continue }
            if best == nil || TopK.worse(best!.s, best!.i, s, i) { best = (s, i, sig[q]) }
        }
        return best?.sigma ?? .nan
    }
}

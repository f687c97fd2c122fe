
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
/// stream by. `TopK.add(_:cols:offset:sigma2:topOne:)` and `addPenalised` update it in their pass over the
/// block's scores (a new best always goes into the heap too).
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

    /// Calls `body` with pointers to the trackers of every query.
    func withSlots<R>(_ body: (TopOneSlots) -> R) -> R {
        best.withUnsafeMutableBufferPointer { pb in
            index.withUnsafeMutableBufferPointer { pi in
                sigma2.withUnsafeMutableBufferPointer { ps in
                    body(TopOneSlots(best: pb.baseAddress!, index: pi.baseAddress!, sigma2: ps.baseAddress!))
                }
            }
        }
    }

    /// σ_s of each query's top-1 pair (NaN for a query without a hit).
    public var sigma: [Float] { sigma2.map { $0.squareRoot() } }
}

/// Calls `body` with the trackers of `t`, or nil.
func withTopOneSlots<R>(_ t: TopOneVariance?, _ body: (TopOneSlots?) -> R) -> R {
    guard let t else { return body(nil) }
    return t.withSlots { body($0) }
}

/// Pointers to the top-1 trackers of consecutive queries (score, corpus row, σ_s²), handed to the
/// worker threads; each thread updates disjoint queries.
public struct TopOneSlots: @unchecked Sendable {
    let best: UnsafeMutablePointer<Float>
    let index: UnsafeMutablePointer<Int64>
    let sigma2: UnsafeMutablePointer<Float>

    /// The trackers from query `n` on.
    func advanced(by n: Int) -> TopOneSlots {
        TopOneSlots(best: best + n, index: index + n, sigma2: sigma2 + n)
    }
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

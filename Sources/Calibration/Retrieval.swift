// Retrieval quality of top-k output against relevance (methods.md section 3, last paragraph).
// Binary relevance: a retrieved index is relevant when it is in the query's relevant set.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// nDCG@k, Recall@k and MRR averaged over the queries that have at least one relevant item.
public struct RetrievalMetrics: Sendable, Codable, Equatable {
    public struct AtK: Sendable, Codable, Equatable {
        public var k: Int
        /// DCG@k / IDCG@k with gains 1/log2(rank + 1), IDCG over min(|relevant|, k) hits.
        public var ndcg: Double
        /// |relevant ∩ top k| / |relevant|.
        public var recall: Double
    }
    public var queries: Int
    /// Queries with no relevant item (left out of every average).
    public var queriesWithoutRelevant: Int
    public var atK: [AtK]
    /// Mean reciprocal rank of the first relevant item among all retrieved (0 when none is).
    public var mrr: Double

    /// - Parameters:
    ///   - retrieved: per query, corpus indices in rank order.
    ///   - relevant: per query, the relevant corpus indices (negative values are padding).
    ///   - ks: cut-offs; each is capped at the number retrieved.
    public init(retrieved: [[Int64]], relevant: [[Int64]], ks: [Int]) {
        precondition(retrieved.count == relevant.count)
        let width = retrieved.map(\.count).max() ?? 0
        let cuts = Array(Set(ks.map { min($0, width) }.filter { $0 > 0 })).sorted()
        var ndcg = [Double](repeating: 0, count: cuts.count)
        var recall = [Double](repeating: 0, count: cuts.count)
        var rr = 0.0, used = 0, skipped = 0
        for q in retrieved.indices {
            let rel = Set(relevant[q].filter { $0 >= 0 })
            guard !rel.isEmpty else { skipped += 1; continue }
            used += 1
            var seen = Set<Int64>()
            var hitsAt = [Bool](repeating: false, count: retrieved[q].count)
            var first: Int? = nil
            for (r, idx) in retrieved[q].enumerated() where rel.contains(idx) && !seen.contains(idx) {
                seen.insert(idx)
                hitsAt[r] = true
                if first == nil { first = r }
            }
            if let f = first { rr += 1 / Double(f + 1) }
            for (c, k) in cuts.enumerated() {
                var dcg = 0.0, hits = 0
                for r in 0..<min(k, hitsAt.count) where hitsAt[r] {
                    dcg += 1 / log2(Double(r + 2)); hits += 1
                }
                var idcg = 0.0
                for r in 0..<min(rel.count, k) { idcg += 1 / log2(Double(r + 2)) }
                ndcg[c] += dcg / idcg
                recall[c] += Double(hits) / Double(rel.count)
            }
        }
        let d = Double(max(used, 1))
        queries = retrieved.count
        queriesWithoutRelevant = skipped
        atK = cuts.indices.map { AtK(k: cuts[$0], ndcg: ndcg[$0] / d, recall: recall[$0] / d) }
        mrr = rr / d
    }
}

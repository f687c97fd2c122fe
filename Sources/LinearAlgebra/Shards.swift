/// Items (by index) cut into at most `count` shards of about equal work, for threads that each
/// take one: heaviest first, each to the shard with the least work so far (ties: the lowest
/// shard). Each shard lists its items in increasing order; empty shards are dropped. With
/// `count` ≤ 1, one shard of every item. Deterministic for given work and count.
public func balancedShards(work: [Double], count: Int) -> [[Int]] {
    guard count > 1 else { return [Array(work.indices)] }
    var load = [Double](repeating: 0, count: count)
    var out = [[Int]](repeating: [], count: count)
    for t in work.indices.sorted(by: { work[$0] > work[$1] || (work[$0] == work[$1] && $0 < $1) }) {
        let s = load.indices.min { load[$0] < load[$1] }!
        out[s].append(t); load[s] += work[t]
    }
    return out.filter { !$0.isEmpty }.map { $0.sorted() }
}

/// The work of a transformer layer on a text of `length` tokens, `hidden` wide with an FFN
/// `intermediate` wide: the GEMMs cost in proportion to the tokens, attention to their square.
public func transformerWork(length l: Int, hidden h: Int, intermediate i: Int) -> Double {
    Double(l) * Double(4 * h * h + 2 * h * i) + Double(2 * l * l * h)
}

import LinearAlgebra

// Data parallelism over examples (texts at token level, rows otherwise): a mini-batch's examples
// are cut into T shards of about equal work (a text's tokens, and their square for attention; a
// row's work is one), each shard runs its forward and backward on a thread of its own, on a
// replica of the network (its own nodes, with what they keep for backward, and its own
// gradients; the frozen bases shared), OpenBLAS on one thread meanwhile.
// The shards' gradients are then added in shard order, so a run is deterministic for a given T.

extension EnsembleNetwork {
    /// The network itself and `count − 1` replicas whose trainable values equal its own (copied
    /// now; the replicas are kept for the next call).
    func shardNetworks(_ count: Int) -> [EnsembleNetwork<T>] {
        while replicaPool.count < count - 1 { replicaPool.append(replica()) }
        let used = Array(replicaPool.prefix(max(0, count - 1)))
        let mine = trainable
        for r in used {
            for (a, b) in zip(r.trainable, mine) { a.value = b.value }
        }
        return [self] + used
    }

    /// The texts `ids` (positions into `lengths`) cut into at most `count` shards of about equal work.
    func textShards(_ lengths: [Int], count: Int) -> [[Int]] {
        balancedShards(work: lengths.map { transformerWork(length: $0, hidden: inputDim, intermediate: 4 * inputDim) },
                       count: min(count, lengths.count))
    }
}

extension Examples {
    /// The token lengths of examples `ids`.
    func lengths(of ids: ArraySlice<Int>) -> [Int] { ids.map { lengths?[$0] ?? 1 } }
}

/// The loss of the mini-batch `ids` (mean over `meanOver` examples and the members) and its
/// gradient, accumulated into `net`'s parameters: the examples (texts of a token-level input, or
/// rows that every member shares) in at most `threads` shards run concurrently, each in parts of
/// at most `maxTokens / shards` token rows (so that the activations kept for backward stay within
/// `maxTokens` rows in all), the shards' losses and gradients added in shard order. With one
/// thread: the parts of `ids`, in order, on `net` itself.
@_specialize(exported: true, where T == Float)
func shardedLossAndGradient<T: BLASScalar>(_ net: EnsembleNetwork<T>, _ data: Examples<T>, ids: ArraySlice<Int>,
                                           meanOver: Int, maxTokens: Int, threads: Int) -> Double {
    let shards = net.textShards(data.lengths(of: ids), count: threads)
    let nets = net.shardNetworks(shards.count)
    for r in nets.dropFirst() { r.zeroGradients() }
    let budget = max(1, maxTokens / shards.count)
    let losses = BLASThreading.onThreads(shards.count) { s -> Double in
        let mine = shards[s].map { ids[ids.startIndex + $0] }
        var loss = 0.0
        for part in data.parts(mine[...], chunk: mine.count, maxTokens: budget) {
            let (xb, seqs) = data.gather(part)
            loss += nets[s].lossAndGradient(xb, labels: part.map { data.labels[$0] }, sequences: seqs, meanOver: meanOver)
        }
        return loss
    }
    let params = net.trainable
    for r in nets.dropFirst() {
        for (p, q) in zip(params, r.trainable) {
            p.grad.withUnsafeMutableBufferPointer { g in
                q.grad.withUnsafeBufferPointer { h in for i in g.indices { g[i] += h[i] } }
            }
        }
    }
    return losses.reduce(0, +)
}

/// Logits of the examples `ids` ((M·b)×K, row block m = member m, rows in the order of `ids`):
/// the examples (rows, or a token-level input's texts) in at most `threads` shards run
/// concurrently, each on a network of its own with OpenBLAS on one thread; an example's logits
/// depend on the shards only through the GEMMs' rounding (a product's sums depend on its shape).
/// `memberLogits` uses it for texts; rows go in parts at fixed places, the same bits on any
/// number of threads.
@_specialize(exported: true, where T == Float)
func shardedForward<T: BLASScalar>(_ net: EnsembleNetwork<T>, _ data: Examples<T>, ids: ArraySlice<Int>,
                                   threads: Int) -> Matrix<T> {
    let shards = net.textShards(data.lengths(of: ids), count: threads)
    if shards.count <= 1 {
        let (xb, seqs) = data.gather(ids)
        return net.forward(xb, sequences: seqs, inference: true)
    }
    let nets = net.shardNetworks(shards.count)
    let parts = BLASThreading.onThreads(shards.count) { s -> Matrix<T> in
        let (xb, seqs) = data.gather(shards[s].map { ids[ids.startIndex + $0] }[...])
        return nets[s].forward(xb, sequences: seqs, inference: true)
    }
    let M = net.members, K = net.classes, b = ids.count
    var out = Matrix<T>(rows: M * b, cols: K)
    for (s, texts) in shards.enumerated() {
        let n = texts.count
        for m in 0..<M {
            for (r, t) in texts.enumerated() {
                for k in 0..<K { out.data[(m * b + t) * K + k] = parts[s].data[(m * n + r) * K + k] }
            }
        }
    }
    return out
}

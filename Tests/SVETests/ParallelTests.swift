import LinearAlgebra
import XCTest
@testable import SVE
import Probability

/// Data parallelism over texts at token level (Parallel.swift): the sharded passes against the
/// unsharded ones on a tiny random two-layer stack, in float32.
final class ParallelTests: XCTestCase {
    /// Texts of uneven lengths (so that the shards differ in size), token rows 6 wide.
    func examples(texts: Int, seed: UInt64) -> Examples<Float> {
        var rng = SeededGenerator(seed: seed)
        let lengths = (0..<texts).map { 1 + ($0 * 7 + 3) % 9 }
        let rows = lengths.reduce(0, +)
        return Examples(x: Matrix(rows: rows, cols: 6, data: (0..<(rows * 6)).map { _ in Float(rng.normal()) }),
                        labels: (0..<texts).map { ($0 * 5) % 3 }, lengths: lengths)
    }

    func norm(_ a: [Float]) -> Double { sqrt(a.reduce(0) { $0 + Double($1) * Double($1) }) }
    func distance(_ a: [Float], _ b: [Float]) -> Double { norm(zip(a, b).map { $0 - $1 }) }

    /// The loss and every trainable gradient with the mini-batch in 1, 2 and 3 shards (each on its
    /// thread, each in parts of at most max-tokens / shards rows) equal those of one forward and
    /// backward over the whole mini-batch, within 1e-5 relative (f32 sums in another order):
    /// ‖Δg_p‖ ≤ 1e-5 ‖g_p‖ per parameter, plus 1e-6 of the whole gradient's norm for the key
    /// biases, whose true gradient is 0 (softmax ignores a shift common to a query's scores) and
    /// whose computed one is rounding noise.
    func checkShardedGradients(_ method: EnsembleMethod) throws {
        let net = try tinyTokenNetwork(of: Float.self, method: method, members: 3)
        let data = examples(texts: 9, seed: 4)
        let ids = [7, 2, 0, 5, 8, 1][...]
        let (x, seqs) = data.gather(ids)
        net.zeroGradients()
        let reference = net.lossAndGradient(x, labels: ids.map { data.labels[$0] }, sequences: seqs)
        let refGrads = net.trainable.map(\.grad)
        let total = norm(refGrads.flatMap { $0 })
        XCTAssertGreaterThan(refGrads.map { $0.map { abs($0) }.max()! }.min()!, 0)
        for threads in [1, 2, 3] {
            XCTAssertEqual(net.textShards(data.lengths(of: ids), count: threads).count, threads)
            for maxTokens in [8192, 12] {
                net.zeroGradients()
                let loss = shardedLossAndGradient(net, data, ids: ids, meanOver: ids.count, maxTokens: maxTokens, threads: threads)
                XCTAssertEqual(loss, reference, accuracy: 1e-5 * abs(reference), "\(method) T=\(threads) max-tokens \(maxTokens)")
                for (p, g) in zip(net.trainable, refGrads) {
                    XCTAssertLessThanOrEqual(distance(p.grad, g), 1e-5 * norm(g) + 1e-6 * total,
                                             "\(method) \(p.name) T=\(threads) max-tokens \(maxTokens)")
                }
            }
        }
    }

    func testSVEShardedGradientsEqualUnsharded() throws { try checkShardedGradients(.sve) }
    func testDeepEnsembleShardedGradientsEqualUnsharded() throws { try checkShardedGradients(.deepEnsemble) }

    /// Member logits with 2 and 3 threads equal those with one, in parts of 4 texts.
    func testShardedPredictionsEqual() throws {
        let net = try tinyTokenNetwork(of: Float.self, method: .sve, members: 3)
        let data = examples(texts: 11, seed: 8)
        let one = memberLogits(net, data, chunk: 4, threads: 1)
        XCTAssertEqual(one.count, 3 * 11 * 3)
        for threads in [2, 3] {
            let many = memberLogits(net, data, chunk: 4, threads: threads)
            for (a, b) in zip(many, one) { XCTAssertEqual(a, b, accuracy: 1e-5 * max(1, abs(b)), "T=\(threads)") }
        }
    }

    /// Pooled rows (sve-predict's usual input): parts of rows shared out to 1, 2 or 3 threads
    /// give the logits of one forward over every row (float64, within 1e-12), and the same bits
    /// on any number of threads. Parts of 2 rows do not pay for dense member weights by
    /// themselves, so without `parametersStay` inference stays on the factored path; with it,
    /// every layer forms them, once: the replicas that the threads run on use the network's own
    /// (the same object), not copies.
    func testRowLevelShardedPredictionsShareTheDenseWeights() throws {
        let net = try smallNetwork(method: .sve, stack: "residual(linear:a gelu linear:b) layernorm:n", members: 3)
        var rng = SeededGenerator(seed: 2)
        let x = Matrix<Double>(rows: 23, cols: 5, data: (0..<115).map { _ in rng.normal() })
        let reference = net.forward(x).data
        let layers = net.nodes.flatMap(\.factoredLayers)
        XCTAssertEqual(layers.count, 2)
        func check(_ logits: [Double], _ what: String) {
            XCTAssertEqual(logits.count, reference.count)
            for (a, b) in zip(logits, reference) { XCTAssertEqual(a, b, accuracy: 1e-12 * max(1, abs(b)), what) }
        }
        for threads in [1, 3] { check(memberLogits(net, x, chunk: 2, threads: threads), "factored, T=\(threads)") }
        XCTAssertFalse(layers.contains { $0.hasDenseWeights }, "2-row parts formed dense weights")
        net.parametersStay = true
        var first: [Double]? = nil
        for threads in [1, 2, 3] {
            let logits = memberLogits(net, x, chunk: 2, threads: threads)
            check(logits, "dense, T=\(threads)")
            if let first { XCTAssertEqual(logits, first, "T=\(threads): not the bits of one thread") } else { first = logits }
            XCTAssertTrue(layers.allSatisfy { $0.hasDenseWeights }, "T=\(threads)")
            XCTAssertEqual(net.replicaPool.count, 2)  // a network per thread beyond the first, kept since T = 3 above
            for replica in net.replicaPool {
                for (a, b) in zip(replica.nodes.flatMap(\.factoredLayers), layers) {
                    XCTAssertTrue(a.dense === b.dense, "T=\(threads): a replica formed dense weights of its own")
                }
            }
        }
    }

    /// Pooled rows that every member shares (SVE's mini-batches): with 2 threads each mini-batch's
    /// rows are cut into two shards trained on two threads (the network and a replica), and the
    /// model is that of one thread to float64 rounding (every trainable value within 1e-9 of its
    /// parameter's largest magnitude; the same best epoch and temperature to 1e-9 relative); two
    /// runs with 2 threads are identical. Independent batches (a deep ensemble's) stay unsharded.
    func testRowLevelTrainingWithTwoThreadsMatchesOne() throws {
        var rng = SeededGenerator(seed: 17)
        let x = Matrix<Double>(rows: 40, cols: 5, data: (0..<200).map { _ in rng.normal() })
        let labels = (0..<40).map { ($0 * 7) % 4 }
        let vx = Matrix<Double>(rows: 9, cols: 5, data: (0..<45).map { _ in rng.normal() })
        let validation = (x: vx, labels: (0..<9).map { $0 % 4 })
        func run(_ method: EnsembleMethod, threads: Int) throws -> (EnsembleNetwork<Double>, TrainResult) {
            let net = try smallNetwork(method: method, stack: "residual(linear:a gelu linear:b) layernorm:n", members: 3)
            var options = TrainOptions()
            options.epochs = 3; options.batchSize = 8; options.learningRate = 0.01; options.threads = threads
            options.sharedBatches = method == .sve
            var rng = SeededGenerator(seed: 4)
            return (net, try train(net, x: x, labels: labels, validation: validation, options: options, rng: &rng))
        }
        let (one, r1) = try run(.sve, threads: 1)
        let (two, r2) = try run(.sve, threads: 2)
        let (again, _) = try run(.sve, threads: 2)
        // A replica's gradients are those of its shard in the last step (validation, which runs
        // on the replicas too, computes none).
        func trainedOnShards(_ net: EnsembleNetwork<Double>) -> Bool {
            net.replicaPool.contains { $0.trainable.contains { $0.grad.contains { $0 != 0 } } }
        }
        XCTAssertFalse(trainedOnShards(one))
        XCTAssertTrue(trainedOnShards(two), "2 threads did not train on shards")
        XCTAssertEqual(r1.bestEpoch, r2.bestEpoch)
        XCTAssertEqual(r2.temperature, r1.temperature, accuracy: 1e-9 * r1.temperature)
        var moved = 0.0
        let start = try smallNetwork(method: .sve, stack: "residual(linear:a gelu linear:b) layernorm:n", members: 3)
        for (((p, q), r), s) in zip(zip(zip(one.trainable, two.trainable), again.trainable), start.trainable) {
            XCTAssertEqual(q.value, r.value, "\(p.name): two runs with 2 threads differ")
            let scale = p.value.map { abs($0) }.max()!
            for j in p.value.indices {
                XCTAssertEqual(q.value[j], p.value[j], accuracy: 1e-9 * scale, "\(p.name)[\(j)]")
                moved = max(moved, abs(p.value[j] - s.value[j]))
            }
        }
        XCTAssertGreaterThan(moved, 0.01)  // training did change the model
        let (deep, _) = try run(.deepEnsemble, threads: 2)
        XCTAssertFalse(trainedOnShards(deep), "independent batches were sharded")
    }

    /// A short training run (3 epochs of 4-text mini-batches, validation each epoch) with 2
    /// threads gives the model of the run with one: every trainable value within 1e-4 of the
    /// parameter's largest magnitude, member logits on held-out texts within 1e-4 (relative, at
    /// least 1), the same best epoch, the temperature within 1e-4 relative. Why not closer: the
    /// gradients differ by f32 rounding (≈1e-7 relative, checked above), and AdamW divides by √v,
    /// so a coordinate whose gradient is near zero can move by a rounding-sized fraction of the
    /// learning rate (0.01) per step, far below 1e-4 over 9 steps; a wrong sum or shard (a
    /// gradient off by a text) moves values by the learning rate itself. The key biases are left
    /// out of the value check: their true gradient is exactly 0 (softmax ignores the shift q·b_k
    /// common to a query's scores), so AdamW turns rounding noise into full-size steps there —
    /// and they do not change the function, which the logits check. Two runs with 2 threads are
    /// identical, key biases included (a fixed order of sums).
    func testTrainingWithTwoThreadsMatchesOne() throws {
        let data = examples(texts: 12, seed: 3), validation = examples(texts: 5, seed: 9)
        func run(threads: Int) throws -> (EnsembleNetwork<Float>, TrainResult) {
            let net = try tinyTokenNetwork(of: Float.self, method: .sve, members: 3)
            var options = TrainOptions()
            options.epochs = 3; options.batchSize = 4; options.learningRate = 0.01; options.threads = threads
            var rng = SeededGenerator(seed: 21)
            return (net, try train(net, data: data, validation: validation, options: options, rng: &rng))
        }
        let (one, r1) = try run(threads: 1)
        let (two, r2) = try run(threads: 2)
        let (again, _) = try run(threads: 2)
        let start = try tinyTokenNetwork(of: Float.self, method: .sve, members: 3)
        XCTAssertEqual(r1.bestEpoch, r2.bestEpoch)
        XCTAssertEqual(r2.temperature, r1.temperature, accuracy: 1e-4 * r1.temperature)
        var moved = 0.0, checked = 0
        for (((p, q), r), s) in zip(zip(zip(one.trainable, two.trainable), again.trainable), start.trainable) {
            XCTAssertEqual(q.value, r.value, "\(p.name): two runs with 2 threads differ")
            if p.name.hasSuffix(".key.b") { continue }
            let scale = Double(p.value.map { abs($0) }.max()!)
            for j in p.value.indices {
                XCTAssertEqual(Double(q.value[j]), Double(p.value[j]), accuracy: 1e-4 * scale, "\(p.name)[\(j)]")
                moved = max(moved, Double(abs(p.value[j] - s.value[j])))
                checked += 1
            }
        }
        XCTAssertGreaterThan(checked, 100)
        XCTAssertGreaterThan(moved, 0.01)  // training did change the model
        let held = examples(texts: 7, seed: 30)
        let l1 = memberLogits(one, held), l2 = memberLogits(two, held, threads: 2)
        for (a, b) in zip(l2, l1) { XCTAssertEqual(a, b, accuracy: 1e-4 * max(1, abs(b))) }
    }
}

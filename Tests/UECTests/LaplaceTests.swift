import Synchronization
import LinearAlgebra
import XCTest
import Probability
@testable import UEC

final class LaplaceTests: XCTestCase {
    /// Runs the closed form over a fixture's pairs in its batches.
    func fisher(_ f: Fixture) -> InfoNCEFisher {
        let layer = f.int("identity") == 1 ? LastLayer.identity(f.int("D"))
                                           : LastLayer(weight: f.matrixD("W"), bias: f.doubles("b"))
        var acc = InfoNCEFisher(layer: layer, temperature: f.scalar("tau"))
        let q = f.matrixD("query"), p = f.matrixD("positive"), b = f.int("batch")
        for s in stride(from: 0, to: q.rows, by: b) {
            let r = s ..< min(s + b, q.rows)
            acc.add(queries: q.rows(r), positives: p.rows(r))
        }
        return acc
    }

    func testFisherMatchesNumpyBruteForce() throws {
        for name in ["identity", "layer"] {
            let f = try Fixture(name)
            let acc = fisher(f)
            assertClose(acc.weight.data, f.doubles("fisher_W"), rtol: 1e-10, atol: 1e-12, "\(name) F_W")
            assertClose(acc.bias, f.doubles("fisher_b"), rtol: 1e-10, atol: 1e-12, "\(name) F_b")
            XCTAssertEqual(acc.lossSum, f.scalar("loss"), accuracy: 1e-10)
            XCTAssertEqual(acc.pairs, f.matrixD("query").rows)
        }
    }

    /// Independent of the fixtures: per-sample gradients by central finite differences of the
    /// InfoNCE loss, squared and summed, against the closed form.
    func testFisherMatchesFiniteDifferences() {
        var g = SeededGenerator(seed: 7)
        let d = 3, p = 4, b = 4, tau = 0.7
        let w = Matrix<Double>(rows: d, cols: p, data: (0..<d * p).map { _ in g.normal() * 0.5 })
        let bias = (0..<d).map { _ in g.normal() * 0.1 }
        let hq = Matrix<Double>(rows: b, cols: p, data: (0..<b * p).map { _ in g.normal() })
        let hp = Matrix<Double>(rows: b, cols: p, data: hq.data.map { $0 + 0.4 * g.normal() })
        var acc = InfoNCEFisher(layer: LastLayer(weight: w, bias: bias), temperature: tau)
        acc.add(queries: hq, positives: hp)

        func loss(_ w: Matrix<Double>, _ bias: [Double], _ n: Int) -> Double {
            let l = LastLayer(weight: w, bias: bias)
            let zq = l.forward(hq), zp = l.forward(hp)
            let s = (0..<b).map { j in (0..<d).reduce(0.0) { $0 + zq[n, $1] * zp[j, $1] } / tau }
            let m = s.max()!
            return -s[n] + m + log(s.reduce(0.0) { $0 + exp($1 - m) })
        }
        var fw = [Double](repeating: 0, count: d * p), fb = [Double](repeating: 0, count: d)
        let eps = 1e-5
        for n in 0..<b {
            for i in 0..<(d * p) {
                var wp = w, wm = w
                wp.data[i] += eps; wm.data[i] -= eps
                let gi = (loss(wp, bias, n) - loss(wm, bias, n)) / (2 * eps)
                fw[i] += gi * gi
            }
            for i in 0..<d {
                var bp = bias, bm = bias
                bp[i] += eps; bm[i] -= eps
                let gi = (loss(w, bp, n) - loss(w, bm, n)) / (2 * eps)
                fb[i] += gi * gi
            }
        }
        assertClose(acc.weight.data, fw, rtol: 1e-6, atol: 1e-9, "F_W vs finite differences")
        assertClose(acc.bias, fb, rtol: 1e-6, atol: 1e-9, "F_b vs finite differences")
    }

    /// Many batches at once (groups of batches, the Fisher GEMM in column pieces, on 1–3
    /// threads) against one batch at a time: the same bits on any number of threads; F_b and the
    /// loss, added in the same order, to the last bit; F_W, summed in another grouping, to 1e-12.
    /// 203 pairs in batches of 6: several groups, a short last group and a short last batch.
    /// `predict` over blocks of several chunks (and a short last one): the same bits on any
    /// number of threads, and the formula of methods.md 1.1 computed here in float64.
    func testPredictGivesTheSameBitsOnAnyNumberOfThreads() {
        var g = SeededGenerator(seed: 5)
        let chunk = LaplacePosterior.predictChunkRows
        for identity in [false, true] {
            let d = 7, p = identity ? 7 : 13
            let layer = identity ? LastLayer.identity(d)
                : LastLayer(weight: Matrix(rows: d, cols: p, data: (0..<d * p).map { _ in g.normal() * 0.4 }),
                            bias: (0..<d).map { _ in g.normal() * 0.1 })
            let vw = Matrix<Double>(rows: d, cols: p, data: (0..<d * p).map { _ in 0.01 + abs(g.normal()) })
            let vb = (0..<d).map { _ in 0.01 + abs(g.normal()) }
            var post = LaplacePosterior(layer: layer, weightVariance: vw, biasVariance: vb, priorPrecision: 1, varianceScale: 1)
            post.varianceScale = 0.75
            for rows in [0, 1, chunk, 2 * chunk + 77] {
                let h = Matrix<Float>(rows: rows, cols: p, data: (0..<rows * p).map { _ in Float(g.normal()) })
                let one = post.predict(h, threads: 1)
                XCTAssertEqual(one.mean.rows, rows); XCTAssertEqual(one.variance.rows, rows)
                for threads in [2, 3] {
                    let many = post.predict(h, threads: threads)
                    XCTAssertEqual(many.mean.data, one.mean.data, "identity \(identity), \(rows) rows, \(threads) threads: mean")
                    XCTAssertEqual(many.variance.data, one.variance.data, "identity \(identity), \(rows) rows, \(threads) threads: var")
                }
                for r in 0..<rows {
                    for k in 0..<d {
                        var v = vb[k], m = layer.bias[k]
                        for i in 0..<p {
                            let x = Double(h.data[r * p + i])
                            v += vw[k, i] * x * x
                            m += (layer.weight?[k, i] ?? (i == k ? 1 : 0)) * x
                        }
                        XCTAssertEqual(Double(one.variance.data[r * d + k]), 0.75 * v, accuracy: 1e-5 * 0.75 * v)
                        XCTAssertEqual(Double(one.mean.data[r * d + k]), m, accuracy: 1e-5 * (1 + abs(m)))
                    }
                }
            }
        }
    }

    func testManyBatchesAtOnceMatchOneAtATime() {
        var g = SeededGenerator(seed: 11)
        let rows = 203, batch = 6, tau = 0.8
        for identity in [false, true] {
            let d = 5, p = identity ? 5 : 12
            let layer = identity ? LastLayer.identity(d)
                : LastLayer(weight: Matrix(rows: d, cols: p, data: (0..<d * p).map { _ in g.normal() * 0.4 }),
                            bias: (0..<d).map { _ in g.normal() * 0.1 })
            let hq = Matrix<Double>(rows: rows, cols: p, data: (0..<rows * p).map { _ in g.normal() })
            let hp = Matrix<Double>(rows: rows, cols: p, data: hq.data.map { $0 + 0.5 * g.normal() })
            var one = InfoNCEFisher(layer: layer, temperature: tau)
            for s in stride(from: 0, to: rows, by: batch) {
                let r = s ..< min(s + batch, rows)
                one.add(queries: hq.rows(r), positives: hp.rows(r))
            }
            var first: InfoNCEFisher? = nil
            for threads in [1, 2, 3] {
                var many = InfoNCEFisher(layer: layer, temperature: tau)
                many.add(queries: hq.rows(0 ..< 100), positives: hp.rows(0 ..< 100), batchSize: batch, threads: threads)
                many.add(queries: hq.rows(100 ..< rows), positives: hp.rows(100 ..< rows), batchSize: batch, threads: threads)
                XCTAssertEqual(many.pairs, rows)
                XCTAssertEqual(many.batches, one.batches + 1)   // 100 is not a multiple of 6: one more short batch
                if let first {
                    XCTAssertEqual(many.weight.data, first.weight.data, "threads \(threads)")
                    XCTAssertEqual(many.bias, first.bias)
                    XCTAssertEqual(many.lossSum, first.lossSum)
                }
                first = first ?? many
            }
            // Cut at the same batches as one at a time: 102 = 17 batches.
            var many = InfoNCEFisher(layer: layer, temperature: tau)
            many.add(queries: hq.rows(0 ..< 102), positives: hp.rows(0 ..< 102), batchSize: batch, threads: 2)
            many.add(queries: hq.rows(102 ..< rows), positives: hp.rows(102 ..< rows), batchSize: batch, threads: 2)
            XCTAssertEqual(many.batches, one.batches)
            XCTAssertEqual(many.bias, one.bias, "identity \(identity)")
            XCTAssertEqual(many.lossSum, one.lossSum)
            assertClose(many.weight.data, one.weight.data, rtol: 1e-12, atol: 1e-15, "identity \(identity) F_W")
            XCTAssertGreaterThan(one.weight.data.max()!, 0)
        }
    }

    /// Blocks added overlapped (block k + 1 read and factored while block k's Fisher GEMM runs)
    /// give the same bits as the same blocks added one after the other on one thread, on any
    /// number of threads, with blocks of any sizes (a larger one after smaller ones, an empty one);
    /// `next` is called one call at a time and never again after it gave nil.
    func testOverlappedBlocksMatchBlockAfterBlock() throws {
        var g = SeededGenerator(seed: 12)
        let d = 4, p = 9, batch = 8
        let sizes = [30, 50, 16, 0, 70, 24, 5]
        let layer = LastLayer(weight: Matrix(rows: d, cols: p, data: (0..<d * p).map { _ in g.normal() * 0.4 }),
                              bias: (0..<d).map { _ in g.normal() * 0.1 })
        let blocks = sizes.map { n -> (Matrix<Double>, Matrix<Double>) in
            let hq = Matrix<Double>(rows: n, cols: p, data: (0..<n * p).map { _ in g.normal() })
            return (hq, Matrix(rows: n, cols: p, data: hq.data.map { $0 + 0.5 * g.normal() }))
        }
        var plain = InfoNCEFisher(layer: layer)
        for (hq, hp) in blocks { plain.add(queries: hq, positives: hp, batchSize: batch, threads: 1) }
        XCTAssertEqual(plain.pairs, sizes.reduce(0, +))
        for threads in [1, 2, 3] {
            let inside = Atomic<Int>(0), overlapping = Atomic<Int>(0), calls = Atomic<Int>(0)
            var acc = InfoNCEFisher(layer: layer)
            try acc.add(blocks: {
                if inside.wrappingAdd(1, ordering: .sequentiallyConsistent).newValue > 1 { overlapping.add(1, ordering: .relaxed) }
                defer { inside.subtract(1, ordering: .sequentiallyConsistent) }
                let i = calls.wrappingAdd(1, ordering: .relaxed).oldValue
                usleep(UInt32(200 * (i % 3)))   // reads of different lengths
                return i < blocks.count ? blocks[i] : nil
            }, batchSize: batch, threads: threads)
            XCTAssertEqual(calls.load(ordering: .relaxed), blocks.count + 1, "threads \(threads)")
            XCTAssertEqual(overlapping.load(ordering: .relaxed), 0, "two calls of next at once, threads \(threads)")
            XCTAssertEqual(acc.weight.data, plain.weight.data, "threads \(threads)")
            XCTAssertEqual(acc.bias, plain.bias, "threads \(threads)")
            XCTAssertEqual(acc.lossSum, plain.lossSum, "threads \(threads)")
            XCTAssertEqual(acc.pairs, plain.pairs)
            XCTAssertEqual(acc.batches, plain.batches)
        }
        XCTAssertGreaterThan(plain.weight.data.max()!, 0)
    }

    /// An error of `next` is thrown once the blocks read before it are added, and `next` is not
    /// called again.
    func testAnErrorWhileReadingEndsTheBlocksAfterAddingThoseBefore() {
        struct Broken: Error {}
        var g = SeededGenerator(seed: 13)
        let d = 3, p = 6, batch = 4
        let layer = LastLayer(weight: Matrix(rows: d, cols: p, data: (0..<d * p).map { _ in g.normal() * 0.4 }),
                              bias: (0..<d).map { _ in g.normal() * 0.1 })
        let blocks = (0..<3).map { _ -> (Matrix<Double>, Matrix<Double>) in
            let hq = Matrix<Double>(rows: 12, cols: p, data: (0..<12 * p).map { _ in g.normal() })
            return (hq, Matrix(rows: 12, cols: p, data: hq.data.map { $0 + 0.5 * g.normal() }))
        }
        var plain = InfoNCEFisher(layer: layer)
        for (hq, hp) in blocks.prefix(2) { plain.add(queries: hq, positives: hp, batchSize: batch) }
        for threads in [1, 2] {
            let calls = Atomic<Int>(0)
            var acc = InfoNCEFisher(layer: layer)
            XCTAssertThrowsError(try acc.add(blocks: {
                let i = calls.wrappingAdd(1, ordering: .relaxed).oldValue
                if i == 2 { throw Broken() }
                return blocks[i]
            }, batchSize: batch, threads: threads)) { XCTAssertTrue($0 is Broken) }
            XCTAssertEqual(calls.load(ordering: .relaxed), 3, "threads \(threads)")
            XCTAssertEqual(acc.pairs, 24)
            XCTAssertEqual(acc.weight.data, plain.weight.data)
            XCTAssertEqual(acc.bias, plain.bias)
            XCTAssertEqual(acc.lossSum, plain.lossSum)
        }
    }

    func testOnePairBatchContributesNothing() {
        var acc = InfoNCEFisher(layer: .identity(3))
        acc.add(queries: Matrix(rows: 1, cols: 3, data: [1, 2, 3]), positives: Matrix(rows: 1, cols: 3, data: [3, 2, 1]))
        XCTAssertEqual(acc.flat.max(), 0)
        XCTAssertEqual(acc.pairs, 1)
    }

    func testPriorPosteriorScaleAndNormalisationMatchNumpy() throws {
        for name in ["identity", "layer"] {
            let f = try Fixture(name)
            let acc = fisher(f)
            let fit = fitPriorPrecision(fisher: acc.flat, squaredNorm: acc.layer.squaredNorm, tolerance: 1e-13)
            XCTAssertEqual(fit.lambda, f.scalar("lam"), accuracy: 1e-9 * f.scalar("lam"), name)
            XCTAssertEqual(fit.gamma, f.scalar("gamma"), accuracy: 1e-8, name)
            // The fixed point satisfies λ = γ(λ)/‖θ̂‖².
            let gamma = acc.flat.reduce(0.0) { $0 + $1 / ($1 + fit.lambda) }
            XCTAssertEqual(fit.lambda, gamma / acc.layer.squaredNorm, accuracy: 1e-9 * fit.lambda)

            var post = LaplacePosterior(fisher: acc, priorPrecision: fit.lambda)
            var est = VarianceScaleEstimator()
            let q = post.predict(f.matrixF("heldout_query")), p = post.predict(f.matrixF("heldout_positive"))
            est.add(queryMean: q.mean, queryVar: q.variance, positiveMean: p.mean, positiveVar: p.variance)
            XCTAssertEqual(est.scale!, f.scalar("scale"), accuracy: 1e-4 * f.scalar("scale"), name)
            post.varianceScale = f.scalar("scale")
            let out = post.predict(f.matrixF("x"))
            assertClose(out.mean.data, f.floats("mean"), rtol: 1e-5, atol: 1e-6, "\(name) mean")
            assertClose(out.variance.data, f.floats("var"), rtol: 1e-5, atol: 1e-9, "\(name) var")

            var m = out.mean
            var v: Matrix<Float>? = out.variance
            normalize(mean: &m, variance: &v, method: .delta)
            assertClose(m.data, f.floats("unit_delta"), rtol: 1e-5, atol: 1e-6, "\(name) unit mean")
            assertClose(v!.data, f.floats("var_delta"), rtol: 1e-4, atol: 1e-9, "\(name) delta var")
            var m2 = out.mean
            var v2: Matrix<Float>? = out.variance
            normalize(mean: &m2, variance: &v2, method: .simple)
            assertClose(v2!.data, f.floats("var_simple"), rtol: 1e-5, atol: 1e-9, "\(name) simple var")
        }
    }

    func testDeltaVarianceIsNonNegativeAndShrinksAlongTheMean() {
        // A variance purely along μ vanishes after normalisation (the direction does not change).
        var m = Matrix<Float>(rows: 1, cols: 2, data: [3, 0])
        var v: Matrix<Float>? = Matrix(rows: 1, cols: 2, data: [5, 0])
        normalize(mean: &m, variance: &v)
        XCTAssertEqual(m.data, [1, 0])
        XCTAssertEqual(v!.data[0], 0, accuracy: 1e-7)
        XCTAssertEqual(v!.data[1], 0, accuracy: 1e-7)
        var m2 = Matrix<Float>(rows: 1, cols: 2, data: [3, 4])
        var v2: Matrix<Float>? = Matrix(rows: 1, cols: 2, data: [1, 2])
        normalize(mean: &m2, variance: &v2)
        XCTAssertTrue(v2!.data.allSatisfy { $0 >= 0 })
    }

    /// Without a variance only the means are normalised; a zero row stays zero, with its variance.
    func testNormalisingMeansAloneAndZeroRows() {
        var m = Matrix<Float>(rows: 3, cols: 2, data: [3, 4, 0, 0, -5, 12])
        var none: Matrix<Float>? = nil
        normalize(mean: &m, variance: &none)
        XCTAssertNil(none)
        XCTAssertEqual(m.data, [0.6, 0.8, 0, 0, Float(-5.0 / 13), Float(12.0 / 13)])
        var m2 = Matrix<Float>(rows: 2, cols: 2, data: [0, 0, 0, 2])
        var v2: Matrix<Float>? = Matrix(rows: 2, cols: 2, data: [1, 2, 3, 4])
        normalize(mean: &m2, variance: &v2, method: .simple)
        XCTAssertEqual(m2.data, [0, 0, 0, 1])
        XCTAssertEqual(v2!.data, [1, 2, 0.75, 1])      // row 0 untouched, row 1 divided by ‖μ‖² = 4
    }

    func testZeroFisherGivesNoPositivePrior() {
        let fit = fitPriorPrecision(fisher: [0, 0, 0], squaredNorm: 3)
        XCTAssertFalse(fit.lambda > 0)
        XCTAssertFalse(fitPriorPrecision(fisher: [], squaredNorm: 3).lambda > 0)
    }

    /// The root of λ‖θ̂‖² = γ(λ) against bisection on hard spectra: Fisher entries spread over
    /// 16 decades with zeros among them, a spectrum where MacKay's update closes in by a factor
    /// near −1 per pass, a saturated one 140 decades wide and far below the root, one entry.
    /// Newton gets there in a few passes, and to the bisection's digits.
    func testPriorPrecisionIsTheRootOfTheEvidenceEquation() {
        var rng = SeededGenerator(seed: 7)
        let spread = (0..<100_003).map { i -> Double in i % 3 == 0 ? 0 : pow(10, -12 + 16 * rng.uniform()) }
        // At the root the update λ ← γ(λ)/‖θ̂‖² has the slope −Σ F/(F+λ)² / ‖θ̂‖², here −λ/(F+λ) ≈ −0.999:
        // λ* ≈ 10⁹ for entries of 10⁶.
        let flat = Array(repeating: 1e6, count: 1000)
        // A saturated InfoNCE (every loss 0): entries of 10⁻³⁰⁰ to 10⁻¹⁶⁰, the root far above them.
        let saturated = (0..<50_000).map { _ in pow(10, -300 + 140 * rng.uniform()) }
        let cases: [(String, [Double], Double)] = [
            ("spread", spread, 50), ("spread, large norm", spread, 1e9), ("spread, small norm", spread, 1e-6),
            ("saturated", saturated, 384),
            ("flat", flat, 1e-9), ("one entry", [2.5], 0.1),
        ]
        for (name, f, s) in cases {
            let fit = fitPriorPrecision(fisher: f, squaredNorm: s)
            func h(_ l: Double) -> Double { f.reduce(0.0) { $0 + $1 / ($1 + l) } - l * s }
            // Bisection in log λ between bounds of opposite sign, 200 halvings.
            var lo = 1e-300, hi = Double(f.filter { $0 > 0 }.count) / s
            XCTAssertGreaterThan(h(lo), 0, name); XCTAssertLessThan(h(hi), 0, name)
            for _ in 0..<200 { let mid = (lo * hi).squareRoot(); if h(mid) > 0 { lo = mid } else { hi = mid } }
            XCTAssertEqual(fit.lambda, lo, accuracy: 1e-12 * lo, name)
            XCTAssertEqual(fit.gamma, f.reduce(0.0) { $0 + $1 / ($1 + fit.lambda) }, accuracy: 1e-9 * fit.gamma, name)
            XCTAssertLessThanOrEqual(fit.iterations, 10, name)
        }
        // The one-entry case by hand: λ·0.1 = 2.5/(2.5 + λ) → λ² + 2.5λ − 25 = 0.
        XCTAssertEqual(fitPriorPrecision(fisher: [2.5], squaredNorm: 0.1).lambda, (-2.5 + (6.25 + 100).squareRoot()) / 2,
                       accuracy: 1e-13)
    }
}

